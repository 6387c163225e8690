/*
 * luri.c — Lua glue for database URLs: parse_url, render_url, and moving a
 * URL given on the command line out of argv (exec_with_env, take_env).
 *
 * Owns: turning an fsdb_uri into a Lua table and an fsdb_error into
 * `nil, err, errno, sqlstate`. Parsing itself lives in uri.c.
 *
 * The parsed URL is held in a userdata whose __gc frees it, created before
 * parsing: if building the result table raises (out of memory), the
 * strings, and the password, are still wiped and freed.
 *
 * Defaults: C states none. Without a defaults table the result is what the
 * URL says; fsdb.url passes fsdb.options' values, which fill the rest.
 */
#include "luri.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    set_string(L, "host", u->host);
    set_uint(L, "port", u->port);
    set_string(L, "database", u->database);
    set_string(L, "unix_socket", u->unix_socket);
    set_string(L, "charset", u->charset);
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
            set_uint(L, "port", port);
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_setfield(L, -2, "hosts");
    }
}

/* Field name of t (at idx): a whole number in [min, max]. */
static unsigned default_uint(lua_State *L, int idx, const char *name, unsigned min, unsigned max)
{
    lua_Number v;

    lua_getfield(L, idx, name);
    v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || v != v || v < (lua_Number)min || v > (lua_Number)max
        || v != (lua_Number)(unsigned)v)
        luaL_error(L, "fsdb: URL default '%s' missing or bad (fsdb.options states it)", name);
    lua_pop(L, 1);
    return (unsigned)v;
}

/* Field name of t (at idx): a string, left on the stack as its anchor. */
static const char *default_string(lua_State *L, int idx, const char *name)
{
    lua_getfield(L, idx, name);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "fsdb: URL default '%s' missing or bad (fsdb.options states it)", name);
    return lua_tostring(L, -1);
}

void fsdb_luri_check_defaults(lua_State *L, int idx, fsdb_uri_defaults *d)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    d->port = default_uint(L, idx, "port", 1, 65535);
    d->connect_timeout = default_uint(L, idx, "connect_timeout", 1, 31536000);
    d->read_timeout = default_uint(L, idx, "read_timeout", 1, 31536000);
    d->write_timeout = default_uint(L, idx, "write_timeout", 1, 31536000);
    d->host_recheck_seconds = default_uint(L, idx, "host_recheck_seconds", 1, 31536000);
    d->host = default_string(L, idx, "host");
    d->charset = default_string(L, idx, "charset");
}

static int holder_gc(lua_State *L)
{
    fsdb_uri *u = (fsdb_uri *)fsdb_checkudata(L, 1, HOLDER_MT);

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

    lua_settop(L, 2); /* the holder goes to 3, after the optional defaults */
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

/* Fills *u from the defaults table at index 2, if one is given. */
static void fill_from_arg(lua_State *L, fsdb_uri *u)
{
    fsdb_uri_defaults d;

    if (lua_isnoneornil(L, 2))
        return;
    fsdb_luri_check_defaults(L, 2, &d);
    if (fsdb_uri_fill(u, &d) != 0)
        luaL_error(L, "fsdb: out of memory");
    lua_pop(L, 2);
}

/* syntax: t, err, errno, sqlstate = core.parse_url(url [, defaults]) */
static int l_parse_url(lua_State *L)
{
    fsdb_error err;
    fsdb_uri *u = check_and_parse(L, &err);

    if (u == NULL)
        return fsdb_luri_push_error(L, &err);
    fill_from_arg(L, u);
    fsdb_luri_push_uri(L, u);
    fsdb_uri_free(u);
    return 1;
}

/* syntax: s, err, errno, sqlstate = core.render_url(url [, defaults])
 * With defaults, the canonical form (uri.h); without, what the URL says. */
static int l_render_url(lua_State *L)
{
    fsdb_error err;
    fsdb_uri *u = check_and_parse(L, &err);
    fsdb_uri_defaults d, *dp = NULL;
    char small[256];
    size_t n;

    if (u == NULL)
        return fsdb_luri_push_error(L, &err);
    if (!lua_isnoneornil(L, 2)) {
        fsdb_luri_check_defaults(L, 2, &d); /* its strings stay anchored */
        dp = &d;
    }
    n = fsdb_uri_render(u, dp, small, sizeof small);
    if (n < sizeof small) {
        lua_pushlstring(L, small, n);
    } else {
        char *big = (char *)lua_newuserdata(L, n + 1);

        fsdb_uri_render(u, dp, big, n + 1);
        lua_pushlstring(L, big, n);
    }
    fsdb_uri_free(u);
    return 1;
}

/* ------------------------------------------------------------------ */
/* A URL out of argv. /proc/PID/cmdline shows argv to every local user for
 * the whole run, and Lua cannot rewrite it; the CLI re-executes itself with
 * the URL in one environment variable instead (readable only by the same
 * user and root), and the new process takes it out of the environment at
 * once. The policy (which words, which variable) is cli.lua's. */

/* Overwrites s in place; volatile so it is not optimised away. */
static void wipe_bytes(char *s, size_t n)
{
    volatile char *v = s;

    while (n--)
        *v++ = 0;
}

static void free_argv(char **argv, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(argv[i]);
    free(argv);
}

/* syntax: nil, err = core.exec_with_env(argv, name, value)
 * Replaces the process with the running interpreter (/proc/self/exe) given
 * argv (a list of strings, argv[1] being its argv[0]) and name=value added
 * to the environment. Returns only on failure, with the variable removed
 * again. The strings are copied before anything else happens, so no Lua
 * runs while C holds them. */
static int l_exec_with_env(lua_State *L)
{
    size_t n, i;
    char **argv;
    const char *name, *value;
    char *set;
    int saved;

    luaL_checktype(L, 1, LUA_TTABLE);
    name = luaL_checkstring(L, 2);
    value = luaL_checkstring(L, 3);
    if (name[0] == '\0' || strchr(name, '=') != NULL)
        return luaL_argerror(L, 2, "not a variable name");
    n = (size_t)fsdb_rawlen(L, 1);
    if (n == 0)
        return luaL_argerror(L, 1, "empty argv");
    argv = (char **)calloc(n + 1, sizeof *argv);
    if (argv == NULL)
        return luaL_error(L, "fsdb: out of memory");
    for (i = 0; i < n; i++) {
        const char *a;

        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            free_argv(argv, i);
            return luaL_argerror(L, 1, "argv must be a list of strings");
        }
        a = lua_tostring(L, -1);
        argv[i] = strdup(a);
        lua_pop(L, 1);
        if (argv[i] == NULL) {
            free_argv(argv, i);
            return luaL_error(L, "fsdb: out of memory");
        }
    }
    if (setenv(name, value, 1) != 0) {
        saved = errno;
        free_argv(argv, n);
        lua_pushnil(L);
        lua_pushstring(L, strerror(saved));
        return 2;
    }
    execv("/proc/self/exe", argv);
    saved = errno;
    /* Still here: take the value back out of the environment. */
    if ((set = getenv(name)) != NULL)
        wipe_bytes(set, strlen(set));
    unsetenv(name);
    free_argv(argv, n);
    lua_pushnil(L);
    lua_pushstring(L, strerror(saved));
    return 2;
}

/* syntax: value = core.take_env(name)
 * Returns the variable's value (nil when unset), then overwrites it in the
 * process's environment block, so /proc/PID/environ no longer shows it, and
 * unsets it, so no child process inherits it. */
static int l_take_env(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    char *value = getenv(name);

    if (value == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, value);
    wipe_bytes(value, strlen(value));
    unsetenv(name);
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
    lua_pushcfunction(L, l_exec_with_env);
    lua_setfield(L, -2, "exec_with_env");
    lua_pushcfunction(L, l_take_env);
    lua_setfield(L, -2, "take_env");
}
