/*
 * testhelper.c — process primitives the specs need and neither Lua 5.4 nor
 * Debian's lua-posix (no 5.4 build) provide: fork, waitpid, _exit, sleep,
 * getpid. Built only for the test suites, never installed.
 */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

static int l_fork(lua_State *L)
{
    pid_t pid = fork();
    if (pid < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

/* waitpid(pid) -> exit status (or 128 + signal) */
static int l_waitpid(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status))
        lua_pushinteger(L, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        lua_pushinteger(L, 128 + WTERMSIG(status));
    else
        lua_pushinteger(L, -1);
    return 1;
}

/* Leaves at once: no Lua state teardown, no busted output. */
static int l_exit(lua_State *L)
{
    _exit((int)luaL_optinteger(L, 1, 0));
    return 0;
}

static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 0;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* A light userdata that is not NULL (Lua code cannot make one). */
static int l_lightuserdata(lua_State *L)
{
    static char somewhere;
    lua_pushlightuserdata(L, &somewhere);
    return 1;
}

int luaopen_fsdb_testhelper(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"fork", l_fork}, {"waitpid", l_waitpid}, {"exit", l_exit},
        {"sleep", l_sleep}, {"getpid", l_getpid}, {"now", l_now},
        {"lightuserdata", l_lightuserdata}, {NULL, NULL}};
    lua_newtable(L);
#if LUA_VERSION_NUM < 502
    luaL_register(L, NULL, fns);
#else
    luaL_setfuncs(L, fns, 0);
#endif
    return 1;
}
