/*
 * lcall.c — the one way into a checked-out connection from Lua: the
 * "fsdb.conn" handle's life (created closed, filled after the checkout,
 * released once) and the guard every method of a connection or a cursor
 * runs under.
 *
 * Lua code can run in the middle of any fsdb call: a parameter table's
 * __index, a finalizer at any allocation, a debug hook. The guard gives
 * that code one answer (conn.c's state machine: "in use by another fsdb
 * call"), runs the body under lua_pcall so a raise cannot leave the state
 * behind, and carries out a close that code asked for once the call is
 * over.
 */
#include "lcore.h"
#include "luri.h"

#include <stdio.h>

int fsdb_push_error(lua_State *L, const fsdb_error *e)
{
    return fsdb_luri_push_error(L, e);
}

lconn *fsdb_lconn_new(lua_State *L, int engine_idx, fsdb_engine *e)
{
    lconn *lc;
    engine_idx = engine_idx < 0 ? lua_gettop(L) + engine_idx + 1 : engine_idx;
    lc = fsdb_newuserdata(L, sizeof *lc);
    lc->c = NULL;
    lc->pool = e->pool;
    lc->e = e;
    lc->checked_out_at = 0;
    luaL_getmetatable(L, FSDB_CONN_MT);
    lua_setmetatable(L, -2);
#ifdef FSDB_LUA51
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, engine_idx);
    lua_rawseti(L, -2, 1);
#else
    lua_pushvalue(L, engine_idx);
#endif
    fsdb_setuservalue(L, -2);
    return lc;
}

void fsdb_lconn_fill(lconn *lc, fsdb_conn *c)
{
    fsdb_conn_checked_out(c);
    lc->checked_out_at = fsdb_now();
    lc->c = c;
}

static void warn_if_held_too_long(lconn *lc, fsdb_conn *c)
{
    double held;
    if (lc->e->leak_threshold <= 0)
        return;
    /* Asked for by pool_leak_threshold: say so loudly, on stderr. */
    held = fsdb_now() - lc->checked_out_at;
    if (held > lc->e->leak_threshold) {
        __atomic_add_fetch(&lc->e->held_too_long, 1, __ATOMIC_RELAXED);
        char n1[32], n2[32];
        fprintf(stderr, "fsdb: warning: connection (thread %lu) was held for %s s, longer than "
                        "pool_leak_threshold %s s; return connections promptly (conn:close())\n",
                c->thread_id, fsdb_fixed(n1, sizeof n1, held, 1),
                fsdb_fixed(n2, sizeof n2, lc->e->leak_threshold, 1));
    }
}

void fsdb_lconn_release(lconn *lc, int how)
{
    fsdb_conn *c = lc->c;
    int discard = how == FSDB_RELEASE_DISCARD, owed = 0;

    lc->c = NULL;
    if (c == NULL)
        return;
    warn_if_held_too_long(lc, c);
    if (fsdb_pool_item_foreign(&c->item)) {
        fsdb_pool_checkin(lc->pool, &c->item, 1); /* abandons it */
        return;
    }
    if (!discard && how == FSDB_RELEASE_QUIET) {
        int r = fsdb_conn_release_quietly(c);
        discard = r < 0;
        owed = r > 0;
    } else if (!discard) {
        discard = fsdb_conn_reset(c) < 0;
    }
    if (!discard)
        c->state = FSDB_CONN_CLOSED;
    c->item.needs_reset = owed;
    fsdb_pool_checkin(lc->pool, &c->item, discard);
}

int fsdb_lconn_fail(lua_State *L, lconn *lc, fsdb_error *err)
{
    if (lc->c && fsdb_conn_failed(lc->c, err))
        fsdb_pool_invalidate(lc->pool, &lc->c->item);
    return fsdb_push_error(L, err);
}

int fsdb_lcall(lua_State *L, lconn *lc, int cursor)
{
    fsdb_conn *c = lc->c;
    int n = lua_gettop(L), status;
    const char *why;

    if (c == NULL)
        return luaL_error(L, cursor ? "fsdb: the cursor's connection was closed"
                                    : "fsdb: connection is closed");
    if (fsdb_pool_item_foreign(&c->item))
        return luaL_error(L, "fsdb: this connection was checked out by the parent process "
                             "before fork(); check out a new one in this process");
    /* [self, body, args…]: the body's frame keeps its arguments (the SQL,
     * parameter tables) alive until it is over; the copy of self keeps the
     * handle alive after it. Moved, not copied: a call may have thousands
     * of arguments, and LuaJIT's stack is small. */
    luaL_checkstack(L, 2, "fsdb: arguments");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
#if LUA_VERSION_NUM >= 503
    lua_rotate(L, 1, 2); /* one pass over the arguments, not two */
#else
    lua_insert(L, 1);
    lua_insert(L, 1);
#endif
    if ((why = fsdb_conn_enter(c, cursor)) != NULL)
        return luaL_error(L, "%s", why);
    status = lua_pcall(L, n, LUA_MULTRET, 0);
    if (fsdb_conn_leave(c, status != 0) && lc->c == c)
        fsdb_lconn_release(lc, FSDB_RELEASE_RESET);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - 1;
}

lconn *fsdb_lconn_check(lua_State *L, int mt_upvalue)
{
    /* Never a light userdata, whatever its metatable (the debug library
     * can give them all one; luaL_checkudata would take it). */
    if (mt_upvalue)
        return fsdb_checkudata_up(L, 1, mt_upvalue, FSDB_CONN_MT);
    return fsdb_checkudata(L, 1, FSDB_CONN_MT);
}

static int conn_guard(lua_State *L)
{
    return fsdb_lcall(L, fsdb_lconn_check(L, 2), 0);
}

void fsdb_lconn_push_method(lua_State *L, lua_CFunction body)
{
    lua_pushcfunction(L, body);
    luaL_getmetatable(L, FSDB_CONN_MT);
    lua_pushcclosure(L, conn_guard, 2);
}
