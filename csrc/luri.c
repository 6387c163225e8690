/*
 * luri.c — Lua glue for database URLs: parse_url, render_url.
 *
 * Owns: turning an fsdb_uri into a Lua table and an fsdb_error into
 * `nil, err, errno, sqlstate`. Parsing itself lives in uri.c.
 *
 * The parsed URL is held in a userdata whose __gc frees it, created before
 * parsing: if building the result table raises (out of memory), the
 * strings, and the password, are still wiped and freed.
 */
#include "luri.h"

#include <string.h>

#define HOLDER_MT "fsdb.uri_holder"

int fsdb_luri_push_error(lua_State *L, const fsdb_error *e)
{
    lua_pushnil(L);
    lua_pushstring(L, e->message[0] ? e->message : "fsdb: unknown error");
    lua_pushinteger(L, (lua_Integer)e->code);
    lua_pushstring(L, e->sqlstate[0] ? e->sqlstate : "HY000");
    return 4;
}

static void set_string(lua_State *L, const char *key, const char *value)
{
    if (value != NULL) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

static void set_uint(lua_State *L, const char *key, unsigned value)
{
    if (value != 0) {
        lua_pushinteger(L, (lua_Integer)value);
        lua_setfield(L, -2, key);
    }
}

void fsdb_luri_push_uri(lua_State *L, const fsdb_uri *u)
{
    lua_createtable(L, 0, 18);
    set_string(L, "scheme", u->scheme);
    set_string(L, "user", u->user);
    set_string(L, "password", u->password);
    set_string(L, "host", u->host ? u->host : "localhost");
    lua_pushinteger(L, (lua_Integer)(u->port ? u->port : 3306));
    lua_setfield(L, -2, "port");
    set_string(L, "database", u->database);
    set_string(L, "unix_socket", u->unix_socket);
    set_string(L, "charset", u->charset ? u->charset : "utf8mb4");
    set_string(L, "collation", u->collation);
    set_uint(L, "connect_timeout", u->connect_timeout);
    set_uint(L, "read_timeout", u->read_timeout);
    set_uint(L, "write_timeout", u->write_timeout);
    set_string(L, "ssl_mode", fsdb_ssl_mode_name(u->ssl_mode));
    set_string(L, "ssl_ca", u->ssl_ca);
    set_string(L, "ssl_cert", u->ssl_cert);
    set_string(L, "ssl_key", u->ssl_key);
    set_string(L, "ssl_capath", u->ssl_capath);
    set_string(L, "ssl_cipher", u->ssl_cipher);
    set_string(L, "auth_plugins", u->auth_plugins);
    lua_pushboolean(L, u->local_infile != 0);
    lua_setfield(L, -2, "local_infile");
    set_string(L, "target_session_attrs", fsdb_tsa_name(u->target_session_attrs));
    set_string(L, "load_balance_hosts", fsdb_lb_name(u->load_balance_hosts));
    set_uint(L, "host_recheck_seconds", u->host_recheck_seconds);
    if (fsdb_uri_host_count(u) > 1) {
        unsigned i, port;

        /* Every host in URL order, the first one included. */
        lua_createtable(L, (int)fsdb_uri_host_count(u), 0);
        for (i = 0; i < fsdb_uri_host_count(u); i++) {
            lua_createtable(L, 0, 2);
            set_string(L, "host", fsdb_uri_host_at(u, i, &port));
            lua_pushinteger(L, (lua_Integer)port);
            lua_setfield(L, -2, "port");
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_setfield(L, -2, "hosts");
    }
}

static int holder_gc(lua_State *L)
{
    fsdb_uri *u = (fsdb_uri *)luaL_checkudata(L, 1, HOLDER_MT);

    fsdb_uri_free(u);
    return 0;
}

/* Checks argument 1 and parses it into a fresh holder pushed on the stack.
 * Returns the holder, or NULL with err set (the holder is still pushed). */
static fsdb_uri *check_and_parse(lua_State *L, fsdb_error *err)
{
    const char *s;
    size_t len;
    fsdb_uri *u;

    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_argerror(L, 1, lua_pushfstring(L, "string expected, got %s",
                                            luaL_typename(L, 1)));
    s = lua_tolstring(L, 1, &len);
    u = (fsdb_uri *)lua_newuserdata(L, sizeof *u);
    memset(u, 0, sizeof *u);
    luaL_getmetatable(L, HOLDER_MT);
    lua_setmetatable(L, -2);
    if (strlen(s) != len) {
        /* The C parser would silently stop at the NUL. */
        fsdb_error_set(err, FSDB_ERR_URL, NULL, "invalid URL: it contains a NUL byte");
        return NULL;
    }
    if (fsdb_uri_parse(s, u, err) != 0)
        return NULL;
    return u;
}

/* syntax: t, err, errno, sqlstate = core.parse_url(url) */
static int l_parse_url(lua_State *L)
{
    fsdb_error err;
    fsdb_uri *u = check_and_parse(L, &err);

    if (u == NULL)
        return fsdb_luri_push_error(L, &err);
    fsdb_luri_push_uri(L, u);
    fsdb_uri_free(u);
    return 1;
}

/* syntax: s, err, errno, sqlstate = core.render_url(url) */
static int l_render_url(lua_State *L)
{
    fsdb_error err;
    fsdb_uri *u = check_and_parse(L, &err);
    char small[256];
    size_t n;

    if (u == NULL)
        return fsdb_luri_push_error(L, &err);
    n = fsdb_uri_render(u, small, sizeof small);
    if (n < sizeof small) {
        lua_pushlstring(L, small, n);
    } else {
        char *big = (char *)lua_newuserdata(L, n + 1);

        fsdb_uri_render(u, big, n + 1);
        lua_pushlstring(L, big, n);
    }
    fsdb_uri_free(u);
    return 1;
}

void fsdb_luri_register(lua_State *L)
{
    if (luaL_newmetatable(L, HOLDER_MT)) {
        lua_pushcfunction(L, holder_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "fsdb.uri_holder");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_parse_url);
    lua_setfield(L, -2, "parse_url");
    lua_pushcfunction(L, l_render_url);
    lua_setfield(L, -2, "render_url");
}
