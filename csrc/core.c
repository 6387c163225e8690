/*
 * core.c — the module `fsdb.core`: the C primitives Lua builds on.
 *
 * Exports: null (light userdata NULL, equal to cjson.null and ngx.null),
 * engine(url, options), parse_url, render_url, placeholders, plain_select,
 * monotime, random, sleep, client_version, and the metatables "fsdb.engine" and "fsdb.conn".
 * Everything else is static.
 */
#define _GNU_SOURCE 1 /* dladdr */
#include "lcore.h"
#include "luri.h"
#include "sqlscan.h"

#include <dlfcn.h>
#include <mysql.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Lua unloads C modules when a state closes. Connector/C keeps
 * process-wide state from mysql_library_init() and the pool registers a
 * fork handler, so neither may vanish while the process lives: pin this
 * library (and with it libmariadb) for good. */
static void pin_self(void)
{
    Dl_info info;
    if (dladdr((void *)pin_self, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void *fsdb_checkudata(lua_State *L, int idx, const char *tname)
{
    if (lua_type(L, idx) != LUA_TUSERDATA)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s expected, got %s", tname, luaL_typename(L, idx)));
    return luaL_checkudata(L, idx, tname);
}

void *fsdb_checkudata_up(lua_State *L, int idx, int mt_upvalue, const char *tname)
{
    if (lua_type(L, idx) == LUA_TUSERDATA && lua_getmetatable(L, idx)) {
        /* Two live tables: the same address is the same table. */
        int same = lua_topointer(L, -1) == lua_topointer(L, lua_upvalueindex(mt_upvalue));
        lua_pop(L, 1);
        if (same)
            return lua_touserdata(L, idx);
    }
    return fsdb_checkudata(L, idx, tname); /* raises its usual message */
}

#ifdef FSDB_LUA51
void *fsdb_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_type(L, ud) == LUA_TUSERDATA ? lua_touserdata(L, ud) : NULL;
    if (p == NULL || !lua_getmetatable(L, ud))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}
#endif

static int push_placeholder(void *ud, size_t at, size_t n, const char *name, size_t name_len)
{
    lua_State *L = ud;
    int k = (int)fsdb_rawlen(L, -1) + 1;
    if (!lua_checkstack(L, 3))
        return -1;
    lua_createtable(L, 3, 0);
    lua_pushinteger(L, (lua_Integer)at + 1);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)(at + n));
    lua_rawseti(L, -2, 2);
    if (name) {
        lua_pushlstring(L, name, name_len);
        lua_rawseti(L, -2, 3);
    }
    lua_rawseti(L, -2, k);
    return 0;
}

/* placeholders(sql [, no_backslash_escapes]) -> { {first, last, name}, … }:
 * where each '?' (name nil) or ':name' stands, as string.sub indexes, by
 * the same rules as the statements fsdb prepares (Lua's migrations use it
 * to write parameters into --sql output). */
static int l_placeholders(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 1, &len);
    int no_backslash = lua_toboolean(L, 2);
    lua_newtable(L);
    if (fsdb_sqlscan_walk(sql, len, no_backslash, push_placeholder, L, NULL) < 0)
        return luaL_error(L, "fsdb: Lua stack overflow listing placeholders");
    return 1;
}

/* plain_select(sql) -> boolean: whether sql is a plain SELECT by the
 * scanner's rules (see sqlscan.h) under either reading of backslashes:
 * what may go to a replica and run again after a lost connection. */
static int l_plain_select(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 1, &len);
    lua_pushboolean(L, fsdb_sqlscan_plain_select(sql, len, -1));
    return 1;
}

/* monotime() -> seconds on a clock that never jumps (replica lag checks). */
static int l_monotime(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* random() -> a number in [0, 1) from the kernel. Not math.random: processes
 * forked from one Lua state (nginx workers, a forked test's workers) share
 * its state, and LuaJIT's starts from the same seed in every process, so
 * their retry pauses would collide again and again. */
static int l_random(lua_State *L)
{
    uint64_t x = 0;
    struct timespec ts;

    if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) {
        /* no entropy yet (early boot): the clock's nanoseconds and the pid */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u) ^ ((uint64_t)getpid() << 32);
    }
    lua_pushnumber(L, (lua_Number)(x >> 11) / 9007199254740992.0); /* 53 bits / 2^53 */
    return 1;
}

/* sleep(seconds): the pause between two attempts of a transaction after a
 * conflict, when no event loop can pause instead (see session.lua). */
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts;
    if (!(s > 0))
        return 0;
    if (s > 60)
        s = 60;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0)
        ; /* interrupted by a signal: sleep the rest */
    return 0;
}

/* The one exported symbol (the build hides every other). */
__attribute__((visibility("default"))) int luaopen_fsdb_core(lua_State *L);

int luaopen_fsdb_core(lua_State *L)
{
    /* Not thread-safe in Connector/C, so do it once, at load. */
    mysql_library_init(0, NULL, NULL);
    pin_self();

    lua_newtable(L);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushstring(L, mysql_get_client_info());
    lua_setfield(L, -2, "client_version");
    lua_pushliteral(L, "0.1.0");
    lua_setfield(L, -2, "version");
    lua_pushcfunction(L, l_placeholders);
    lua_setfield(L, -2, "placeholders");
    lua_pushcfunction(L, l_plain_select);
    lua_setfield(L, -2, "plain_select");
    lua_pushcfunction(L, l_monotime);
    lua_setfield(L, -2, "monotime");
    lua_pushcfunction(L, l_random);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
    fsdb_luri_register(L);
    fsdb_lengine_register(L);
    fsdb_lconn_register(L);
    fsdb_lcursor_register(L);
    fsdb_lcodec_register(L);
    return 1;
}
