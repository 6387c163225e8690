/*
 * lengine.c — Lua glue for the engine ("fsdb.engine"): construction from a
 * URL and an options table, checkout, status, dispose.
 *
 * Option names and values are validated in lua/fsdb/engine.lua (policy);
 * this file only reads the already-checked fields.
 */
#include "lcore.h"
#include "deadline.h"
#include "failover.h"
#include "hosts.h"
#include "luri.h"

#include <stdlib.h>
#include <string.h>

typedef struct lengine {
    fsdb_engine *e; /* NULL once closed */
    /* fsdb.options' URL defaults, for the canonical rendering (url,
     * tostring); the URL itself was filled with them at construction. */
    fsdb_uri_defaults shown;
    char *shown_charset; /* owned copy of shown.charset */
} lengine;

static fsdb_pool_item *op_connect(void *ud, fsdb_error *err)
{
    fsdb_engine *e = ud;
    fsdb_conn *c = fsdb_conn_open(&e->cfg, err);
    return c ? &c->item : NULL;
}

static int op_ping(void *ud, fsdb_pool_item *it, int deep)
{
    fsdb_conn *c = (fsdb_conn *)it;
    (void)ud;
    /* Returned by a finalizer without its reset: done now, outside it. */
    if (it->needs_reset) {
        if (fsdb_conn_ping(c, 0) != 0 || fsdb_conn_reset(c) != 0)
            return -1;
        it->needs_reset = 0;
    }
    if (fsdb_conn_ping(c, deep) != 0)
        return -1;
    /* After a switch-over the server may no longer be in the wanted role. */
    return deep ? fsdb_failover_recheck(c) : 0;
}

static void op_close(void *ud, fsdb_pool_item *it)
{
    (void)ud;
    fsdb_conn_close((fsdb_conn *)it);
}

static void op_abandon(void *ud, fsdb_pool_item *it)
{
    (void)ud;
    fsdb_conn_abandon((fsdb_conn *)it);
}

static void op_release(void *ud)
{
    fsdb_engine *e = ud;
    fsdb_conn_config_free(&e->cfg);
    free(e);
}

static const fsdb_pool_ops engine_ops = {op_connect, op_ping, op_close, op_abandon, op_release};

/* The options table comes complete from fsdb.options (lua/fsdb/options.lua),
 * which owns every default: a missing value here is a caller's bug. */
static lua_Number opt_number(lua_State *L, int idx, const char *name)
{
    lua_Number v;
    lua_getfield(L, idx, name);
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "fsdb: engine option '%s' missing (fsdb.options fills it in)", name);
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, int idx, const char *name)
{
    int v;
    lua_getfield(L, idx, name);
    if (!lua_isboolean(L, -1))
        luaL_error(L, "fsdb: engine option '%s' missing (fsdb.options fills it in)", name);
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static char *opt_string(lua_State *L, int idx, const char *name)
{
    char *v = NULL;
    lua_getfield(L, idx, name);
    if (lua_isstring(L, -1)) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if ((v = malloc(len + 1)) != NULL)
            memcpy(v, s, len + 1);
    }
    lua_pop(L, 1);
    return v;
}

static int reset_mode(lua_State *L, int idx)
{
    int mode = FSDB_RESET_ROLLBACK;
    lua_getfield(L, idx, "pool_reset_on_return");
    if (lua_isstring(L, -1)) {
        const char *s = lua_tostring(L, -1);
        if (strcmp(s, "commit") == 0) mode = FSDB_RESET_COMMIT;
        else if (strcmp(s, "reset") == 0) mode = FSDB_RESET_CONNECTION;
    } else if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
        mode = FSDB_RESET_NONE;
    }
    lua_pop(L, 1);
    return mode;
}

/* Validated in Lua (fsdb.engine): "auto", "values" or "each". */
static int many_mode(lua_State *L, int idx)
{
    int mode = FSDB_MANY_AUTO;
    lua_getfield(L, idx, "executemany_mode");
    if (lua_isstring(L, -1)) {
        const char *s = lua_tostring(L, -1);
        if (strcmp(s, "values") == 0) mode = FSDB_MANY_VALUES;
        else if (strcmp(s, "each") == 0) mode = FSDB_MANY_EACH;
    }
    lua_pop(L, 1);
    return mode;
}

static lengine *check_engine(lua_State *L)
{
    lengine *le = fsdb_checkudata(L, 1, FSDB_ENGINE_MT);
    if (le->e == NULL)
        luaL_error(L, "fsdb: engine is closed");
    return le;
}

/* core.engine(url, options, url_defaults) */
static int l_engine_new(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    lengine *le;
    fsdb_engine *e;
    fsdb_error err;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    le = fsdb_newuserdata(L, sizeof *le);
    le->e = NULL; /* closed until fully built */
    le->shown_charset = NULL;
    luaL_getmetatable(L, FSDB_ENGINE_MT);
    lua_setmetatable(L, -2);

    if ((e = calloc(1, sizeof *e)) == NULL)
        return luaL_error(L, "fsdb: out of memory");
    /* Owned by the userdata from here on: a raise below is cleaned up by
     * __gc, which frees an engine that has no pool yet directly. */
    le->e = e;
    if (fsdb_uri_parse(url, &e->cfg.uri, &err) < 0)
        return luaL_error(L, "%s", err.message);
    e->cfg.init_command = opt_string(L, 2, "init_command");
    e->cfg.isolation_level = opt_string(L, 2, "isolation_level");
    e->cfg.stmt_cache_size = (unsigned)opt_number(L, 2, "statement_cache_size");
    e->cfg.reset_on_return = reset_mode(L, 2);
    e->cfg.executemany_mode = many_mode(L, 2);
    e->cfg.max_statement_ms = (unsigned)(opt_number(L, 2, "max_statement_time") * 1000.0 + 0.5);
    /* unset (nil) leaves the server's wsrep_sync_wait alone */
    lua_getfield(L, 2, "wsrep_sync_wait");
    e->cfg.wsrep_sync_wait = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tonumber(L, -1) : -1;
    lua_pop(L, 1);
    /* set by engine.lua on an engine with replicas, not a user option */
    lua_getfield(L, 2, "track_gtid");
    e->cfg.track_gtid = lua_toboolean(L, -1);
    lua_pop(L, 1);
    e->pool_cfg.size = (int)opt_number(L, 2, "pool_size");
    e->pool_cfg.max_overflow = (int)opt_number(L, 2, "max_overflow");
    e->pool_cfg.timeout = opt_number(L, 2, "pool_timeout");
    e->pool_cfg.recycle = opt_number(L, 2, "pool_recycle");
    e->pool_cfg.pre_ping = opt_bool(L, 2, "pool_pre_ping");
    e->pool_cfg.ping_window = opt_number(L, 2, "pool_pre_ping_window");
    e->pool_cfg.use_lifo = opt_bool(L, 2, "pool_use_lifo");
    e->leak_threshold = opt_number(L, 2, "pool_leak_threshold");
    /* C states no URL default: what the URL leaves out comes from
     * fsdb.options (argument 3). */
    fsdb_luri_check_defaults(L, 3, &le->shown);
    if (fsdb_uri_fill(&e->cfg.uri, &le->shown) != 0
        || (le->shown_charset = malloc(strlen(le->shown.charset) + 1)) == NULL)
        return luaL_error(L, "fsdb: out of memory");
    strcpy(le->shown_charset, le->shown.charset);
    le->shown.charset = le->shown_charset;
    le->shown.host = NULL; /* every host is filled */
    lua_pop(L, 2);
    if (e->cfg.uri.host_recheck_seconds == 0)
        e->cfg.uri.host_recheck_seconds = le->shown.host_recheck_seconds;
    if ((e->cfg.hosts = fsdb_hosts_new(&e->cfg.uri)) == NULL)
        return luaL_error(L, "fsdb: out of memory");
    if ((e->pool = fsdb_pool_new(&e->pool_cfg, &engine_ops, e)) == NULL)
        return luaL_error(L, "fsdb: out of memory");
    return 1;
}

/* Checks a connection out into the closed handle lc (pushed before, so
 * nothing can raise between the checkout and the handle owning it) and
 * runs on_connect (at on_connect_idx, if not nil) on a new connection,
 * protected: when it raises, the half-set-up connection is discarded.
 * Returns 0, or pushes nil, err, errno, sqlstate and returns 4. */
static int checkout_into(lua_State *L, lengine *le, lconn *lc, int conn_idx, int on_connect_idx,
                         int *is_new)
{
    fsdb_error err;
    double timeout = le->e->pool_cfg.timeout, start = fsdb_now();
    fsdb_pool_item *it = fsdb_pool_checkout(le->e->pool, is_new, &err);
    fsdb_deadline_saved saved;
    int status, late;

    if (it == NULL)
        return fsdb_push_error(L, &err);
    fsdb_lconn_fill(lc, (fsdb_conn *)it);
    if (!*is_new || on_connect_idx == 0 || lua_isnoneornil(L, on_connect_idx))
        return 0;
    lua_pushvalue(L, on_connect_idx);
    lua_pushvalue(L, conn_idx);
    /* on_connect's round trips are part of the checkout: pool_timeout
     * bounds them too. */
    fsdb_deadline_begin(timeout > 0 ? start + timeout : 0, &saved);
    status = lua_pcall(L, 1, 0, 0);
    late = fsdb_deadline_end(&saved);
    if (status == 0 && !late)
        return 0;
    fsdb_lconn_release(lc, FSDB_RELEASE_DISCARD);
    if (late) {
        char t[32];
        if (status != 0)
            lua_pop(L, 1);
        fsdb_error_set(&err, FSDB_ERR_POOL_TIMEOUT, NULL,
                       "no connection within pool_timeout %s s: on_connect did not finish "
                       "in time; hint: the server or the network is not answering "
                       "(overloaded, stopped, or a proxy or firewall holding the connection); "
                       "check it, or raise pool_timeout", fsdb_fixed(t, sizeof t, timeout, 2));
        return fsdb_push_error(L, &err);
    }
    {
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL)
            msg = luaL_typename(L, -1);
        if (strncmp(msg, "fsdb: ", 6) == 0)
            msg += 6;
        fsdb_error_set(&err, FSDB_ERR_ON_CONNECT, NULL, "on_connect failed: %s", msg);
    }
    fsdb_error_scrub(&err, le->e->cfg.uri.password);
    lua_pop(L, 1);
    return fsdb_push_error(L, &err);
}

/* engine:checkout([on_connect [, holder, key]]) -> conn, is_new
 *   | nil, err, errno, sqlstate
 * With holder: holder[key] = conn before returning, so no Lua code (an
 * interrupting hook) runs between the checkout and its owner knowing it. */
static int l_engine_checkout(lua_State *L)
{
    lengine *le = check_engine(L);
    lconn *lc;
    int conn_idx, is_new = 0;

    lua_settop(L, 4);
    if (!lua_isnil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lc = fsdb_lconn_new(L, 1, le->e);
    conn_idx = lua_gettop(L);
    if (checkout_into(L, le, lc, conn_idx, 2, &is_new) != 0)
        return 4;
    if (lua_istable(L, 3)) {
        lua_pushvalue(L, 4);
        lua_pushvalue(L, conn_idx);
        lua_rawset(L, 3);
    }
    if (le->e->observed) {
        lua_pushboolean(L, is_new);
        fsdb_observe(L, lc, conn_idx, "checkout", 1);
    }
    lua_pushvalue(L, conn_idx);
    lua_pushboolean(L, is_new);
    return 2;
}

/* engine:run(on_connect, method, ...) — checkout, conn[method](conn, ...),
 * check-in, as one C call: a raise anywhere in between (a parameter's
 * metamethod, a debug hook interrupting) still returns the connection,
 * then goes on. Returns what the method returned, or the checkout's
 * failure. */
static int l_engine_run(lua_State *L)
{
    lengine *le = check_engine(L);
    const char *method = luaL_checkstring(L, 3);
    int n = lua_gettop(L), conn_idx, status, is_new = 0;
    lconn *lc;

    luaL_checkstack(L, LUA_MINSTACK, "fsdb: arguments");
    lc = fsdb_lconn_new(L, 1, le->e);
    conn_idx = lua_gettop(L);
    lua_getfield(L, conn_idx, method);
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "fsdb: no connection method '%s'", method);
    if (checkout_into(L, le, lc, conn_idx, 2, &is_new) != 0)
        return 4;
    if (le->e->observed) {
        lua_pushboolean(L, is_new);
        fsdb_observe(L, lc, conn_idx, "checkout", 1);
    }
    /* [engine, on_connect, method, args…, conn, fn] becomes
     * [engine, conn, fn, conn, args…] without copying the arguments (there
     * may be thousands): slot 2 keeps the handle alive after the call. */
    lua_pushvalue(L, conn_idx);
    lua_replace(L, 2);
    lua_replace(L, 3);
    lua_insert(L, 4);
    status = lua_pcall(L, n - 2, LUA_MULTRET, 0);
    if (lc->c && lc->e->observed) {
        luaL_checkstack(L, 2, "fsdb: results");
        fsdb_observe(L, lc, 2, "checkin", 0);
    }
    fsdb_lconn_release(lc, FSDB_RELEASE_RESET);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - 2;
}

static int l_engine_observe(lua_State *L)
{
    return fsdb_lengine_observe(L, check_engine(L)->e);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static int l_engine_status(lua_State *L)
{
    lengine *le = check_engine(L);
    fsdb_pool_status st;
    fsdb_pool_get_status(le->e->pool, &st);
    lua_createtable(L, 0, 12);
    set_int(L, "size", st.size);
    set_int(L, "max_overflow", st.max_overflow);
    set_int(L, "checked_out", st.checked_out);
    set_int(L, "idle", st.idle);
    set_int(L, "overflow", st.overflow);
    set_int(L, "connects", (lua_Integer)st.connects);
    set_int(L, "pings", (lua_Integer)st.pings);
    set_int(L, "invalidated", (lua_Integer)st.invalidated);
    set_int(L, "timeouts", (lua_Integer)st.timeouts);
    set_int(L, "waits", (lua_Integer)st.waits);
    set_int(L, "recycled", (lua_Integer)st.recycled);
    set_int(L, "expired", (lua_Integer)st.expired);
    set_int(L, "held_too_long", (lua_Integer)__atomic_load_n(&le->e->held_too_long, __ATOMIC_RELAXED));
    return 1;
}

static int l_engine_dispose(lua_State *L)
{
    lengine *le = check_engine(L);
    fsdb_pool_dispose(le->e->pool);
    return 0;
}

/* Renders the URL with the password as ***. */
static int l_engine_url(lua_State *L)
{
    lengine *le = check_engine(L);
    char buf[1024];
    size_t n = fsdb_uri_render(&le->e->cfg.uri, &le->shown, buf, sizeof buf);
    lua_pushlstring(L, buf, n < sizeof buf ? n : sizeof buf - 1);
    return 1;
}

/* Closing clears the handle first; the pool frees the engine once every
 * checked-out connection is back. Serves __gc, __close and close(). */
static int l_engine_close(lua_State *L)
{
    lengine *le = fsdb_checkudata(L, 1, FSDB_ENGINE_MT);
    fsdb_engine *e = le->e;
    le->e = NULL;
    free(le->shown_charset);
    le->shown_charset = NULL;
    le->shown.charset = NULL;
    if (e && e->pool)
        fsdb_pool_free(e->pool);
    else if (e)
        op_release(e);
    return 0;
}

static int l_engine_tostring(lua_State *L)
{
    lengine *le = fsdb_checkudata(L, 1, FSDB_ENGINE_MT);
    if (le->e == NULL) {
        lua_pushliteral(L, "fsdb.engine (closed)");
    } else {
        char buf[1024];
        fsdb_uri_render(&le->e->cfg.uri, &le->shown, buf, sizeof buf);
        lua_pushfstring(L, "fsdb.engine (%s)", buf);
    }
    return 1;
}

void fsdb_lengine_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"checkout", l_engine_checkout},
        {"run", l_engine_run},
        {"observe", l_engine_observe},
        {"status", l_engine_status},
        {"dispose", l_engine_dispose},
        {"url", l_engine_url},
        {"close", l_engine_close},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", l_engine_close},
        {"__close", l_engine_close},
        {"__tostring", l_engine_tostring},
        {NULL, NULL}};

    luaL_newmetatable(L, FSDB_ENGINE_MT);
    fsdb_setfuncs(L, meta);
    lua_newtable(L);
    fsdb_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_engine_new);
    lua_setfield(L, -2, "engine");
}
