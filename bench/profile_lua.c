/*
 * profile_lua.c — a Lua 5.4 interpreter for profiling the fsdb workloads
 * with callgrind (bench/profile). Debian's lua5.4 and libmariadb.so are
 * stripped, so a profile of them shows addresses instead of functions.
 * This program links the same code statically — liblua5.4.a and
 * libmariadb.a keep their symbols — and has fsdb's core (csrc/, built
 * from the same sources with the same flags as build/lua5.4/fsdb/core.so)
 * and fsdb_testhelper compiled in, in package.preload, with the thin
 * binding of bench/thin.c (bench_thin) and one more module,
 * bench_callgrind: toggle() switches callgrind's collection, so that with
 * --collect-atstart=no only the timed sections of a workload
 * (bench/benchlib.lua's timer) are counted.
 *
 *   usage: profile_lua SCRIPT [ARGS...]     (arg[0] = SCRIPT, like lua5.4)
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <valgrind/callgrind.h>

int luaopen_fsdb_core(lua_State *L);
int luaopen_fsdb_testhelper(lua_State *L);
int luaopen_bench_thin(lua_State *L);

static int l_toggle(lua_State *L)
{
    (void)L;
    CALLGRIND_TOGGLE_COLLECT;
    return 0;
}

static int luaopen_bench_callgrind(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_toggle);
    lua_setfield(L, -2, "toggle");
    return 1;
}

static int report(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int i, rc;

    if (argc < 2) {
        fputs("usage: profile_lua SCRIPT [ARGS...]\n", stderr);
        return 2;
    }
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_fsdb_core);
    lua_setfield(L, -2, "fsdb.core");
    lua_pushcfunction(L, luaopen_fsdb_testhelper);
    lua_setfield(L, -2, "fsdb_testhelper");
    lua_pushcfunction(L, luaopen_bench_thin);
    lua_setfield(L, -2, "bench_thin");
    lua_pushcfunction(L, luaopen_bench_callgrind);
    lua_setfield(L, -2, "bench_callgrind");
    lua_pop(L, 1);

    lua_createtable(L, argc, 0);
    for (i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, report);
    rc = luaL_loadfile(L, argv[1]);
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, -2);
    if (rc != LUA_OK)
        fprintf(stderr, "profile_lua: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc == LUA_OK ? 0 : 1;
}
