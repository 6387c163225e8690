/*
 * lobserve.c — engine events (checkout, checkin, before and after each
 * statement) handed to the engine's observer, a Lua function set by
 * engine.lua when echo is on or a handler is registered.
 *
 * The observer runs only where no connection is IN_CALL: before the
 * guarded call starts and after it has left (conn.c's state machine), and
 * protected, so a raising handler can neither skip the check-in nor leave
 * a state behind. With no observer, a statement pays one flag test.
 */
#include "lcore.h"

/* Pushes the observer of the engine of the "fsdb.conn" at conn_idx and
 * returns 1, or pushes nothing and returns 0. */
static int push_observer(lua_State *L, int conn_idx)
{
    fsdb_getuservalue(L, conn_idx); /* the engine userdata (5.1: {engine}) */
#ifdef FSDB_LUA51
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
#endif
    if (lua_isuserdata(L, -1)) {
        fsdb_getuservalue(L, -1); /* {observer} once set */
        lua_remove(L, -2);
        if (lua_istable(L, -1)) {
            lua_rawgeti(L, -1, 1);
            lua_remove(L, -2);
            if (lua_isfunction(L, -1))
                return 1;
        }
    }
    lua_pop(L, 1);
    return 0;
}

void fsdb_observe(lua_State *L, lconn *lc, int conn_idx, const char *event, int nextra)
{
    conn_idx = conn_idx < 0 ? lua_gettop(L) + conn_idx + 1 : conn_idx;
    if (!lc->e->observed || !push_observer(L, conn_idx)) {
        lua_pop(L, nextra);
        return;
    }
    lua_insert(L, -1 - nextra);
    lua_pushstring(L, event);
    lua_insert(L, -1 - nextra);
    lua_pushvalue(L, conn_idx);
    lua_insert(L, -1 - nextra);
    if (lua_pcall(L, nextra + 2, 0, 0) != 0)
        lua_pop(L, 1); /* the observer reports its handlers' errors itself */
}

static int guarded(lua_State *L)
{
    return fsdb_lcall(L, fsdb_checkudata(L, 1, FSDB_CONN_MT), 0);
}

/* A statement method with the observer: ctx = observer("before", conn,
 * method, args…); the guarded call, timed; observer("after", conn, ctx,
 * elapsed, invalidated, ok, results… or the error raised). */
static int observed_call(lua_State *L, lconn *lc)
{
    int n = lua_gettop(L), i, nres, status, was_invalid, invalidated;
    double t0, elapsed;

    if (!push_observer(L, 1))
        return fsdb_lcall(L, lc, 0);
    luaL_checkstack(L, n + 8, "fsdb: arguments");
    lua_pushvalue(L, -1);
    lua_pushliteral(L, "before");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    for (i = 2; i <= n; i++)
        lua_pushvalue(L, i);
    if (lua_pcall(L, n + 2, 1, 0) != 0) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    /* [self, args…, observer, ctx] → [observer, ctx, self, guarded, self, args…] */
    lua_insert(L, 1);
    lua_insert(L, 1);
    lua_pushvalue(L, 3);
    lua_insert(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, guarded, 1);
    lua_insert(L, 4);
    was_invalid = lc->c ? lc->c->item.invalid : 0;
    t0 = fsdb_now();
    status = lua_pcall(L, n, LUA_MULTRET, 0);
    elapsed = fsdb_now() - t0;
    invalidated = lc->c && lc->c->item.invalid && !was_invalid;
    nres = lua_gettop(L) - 3;
    luaL_checkstack(L, nres + 8, "fsdb: results");
    lua_pushvalue(L, 1);
    lua_pushliteral(L, "after");
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    lua_pushnumber(L, elapsed);
    lua_pushboolean(L, invalidated);
    lua_pushboolean(L, status == 0);
    for (i = 0; i < nres; i++)
        lua_pushvalue(L, 4 + i);
    if (lua_pcall(L, 6 + nres, 0, 0) != 0)
        lua_pop(L, 1);
    if (status != 0) {
        lua_pushvalue(L, 4);
        return lua_error(L);
    }
    return nres;
}

static int stmt_guard(lua_State *L)
{
    lconn *lc = fsdb_lconn_check(L, 3);
    if (lc->c != NULL && lc->e->observed)
        return observed_call(L, lc);
    return fsdb_lcall(L, lc, 0);
}

void fsdb_lconn_push_stmt_method(lua_State *L, lua_CFunction body, const char *name)
{
    lua_pushcfunction(L, body);
    lua_pushstring(L, name);
    luaL_getmetatable(L, FSDB_CONN_MT);
    lua_pushcclosure(L, stmt_guard, 3);
}

/* engine:observe(fn_or_nil): the userdata's uservalue holds it, so that a
 * handler referring to the engine does not keep it alive for ever. */
int fsdb_lengine_observe(lua_State *L, fsdb_engine *e)
{
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 1);
    fsdb_setuservalue(L, 1);
    e->observed = !lua_isnil(L, 2);
    return 0;
}
