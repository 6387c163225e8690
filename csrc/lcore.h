/*
 * lcore.h — what the Lua glue files (core.c, lengine.c, lcall.c, lconn.c,
 * lcursor.c) share.
 *
 * The engine is a C object owned by its pool: the Lua "fsdb.engine"
 * userdata holds a pointer, and the engine is freed when the userdata is
 * collected *and* the last checked-out connection has come back.
 */
#ifndef FSDB_LCORE_H
#define FSDB_LCORE_H

#include "compat.h"
#include "conn.h"
#include "pool.h"

#define FSDB_ENGINE_MT "fsdb.engine"
#define FSDB_CONN_MT "fsdb.conn"

struct fsdb_stmt;

typedef struct fsdb_engine {
    fsdb_conn_config cfg;
    fsdb_pool_config pool_cfg;
    fsdb_pool *pool;
    double leak_threshold;       /* seconds; 0 = no leak warning */
    unsigned long held_too_long; /* returned after leak_threshold (atomic) */
    int observed;                /* an observer is set (lobserve.c) */
} fsdb_engine;

/* The "fsdb.conn" userdata. It keeps a *pointer* to the pooled connection,
 * which outlives it; c is NULL while the handle is closed: before it is
 * filled and once the connection went back. */
typedef struct lconn {
    fsdb_conn *c;
    fsdb_pool *pool;
    fsdb_engine *e;   /* alive while c is out: the pool frees it last */
    double checked_out_at;
} lconn;

/* Each adds its constructor(s) to the module table on top of the stack. */
void fsdb_lengine_register(lua_State *L);
void fsdb_lconn_register(lua_State *L);
void fsdb_lcursor_register(lua_State *L);
void fsdb_lcodec_register(lua_State *L); /* core.codec(): the protocol codec */

/* lcall.c: the one way into a checked-out connection from Lua. */

/* Pushes a closed "fsdb.conn" handle that keeps the engine userdata at
 * engine_idx alive; fsdb_lconn_fill gives it its connection. Created
 * before the checkout, so nothing can raise between the two. */
lconn *fsdb_lconn_new(lua_State *L, int engine_idx, fsdb_engine *e);
void fsdb_lconn_fill(lconn *lc, fsdb_conn *c);

enum { FSDB_RELEASE_RESET = 0, FSDB_RELEASE_QUIET, FSDB_RELEASE_DISCARD };

/* Gives lc's connection back to the pool and closes the handle. RESET
 * makes it clean first (a round trip when needed); QUIET (finalizers)
 * does no I/O and leaves the reset owed to the next checkout; DISCARD
 * closes it. */
void fsdb_lconn_release(lconn *lc, int how);

/* The body of every guarded method: the C function in upvalue 1 of the
 * running closure is called with the same arguments as one fsdb call on
 * lc's connection (cursor: the call of the cursor that streams its
 * result). Raises when the connection is closed or in another state that
 * forbids the call; a close asked for meanwhile happens when it returns;
 * a raise inside is re-raised after the state is settled. */
int fsdb_lcall(lua_State *L, lconn *lc, int cursor);

/* Pushes a guarded method: body under fsdb_lcall, self at 1 being an
 * "fsdb.conn" (registered before any method is pushed). */
void fsdb_lconn_push_method(lua_State *L, lua_CFunction body);

/* The "fsdb.conn" at 1, checked against the metatable in upvalue
 * mt_upvalue of the running closure (0: looked up by name); raises as
 * luaL_checkudata does, and for a light userdata whatever its metatable. */
lconn *fsdb_lconn_check(lua_State *L, int mt_upvalue);

/* The call failed: a disconnect also retires the connection. Pushes
 * nil, err, errno, sqlstate and returns 4. */
int fsdb_lconn_fail(lua_State *L, lconn *lc, fsdb_error *err);

/* nil, message, errno, sqlstate; returns 4. */
int fsdb_push_error(lua_State *L, const fsdb_error *e);

/* lobserve.c: engine events. fsdb_observe hands event and the nextra
 * values on top of the stack (popped) to the observer with the conn at
 * conn_idx, protected; nothing when no observer is set. */
void fsdb_observe(lua_State *L, lconn *lc, int conn_idx, const char *event, int nextra);
/* A statement method (observed when the engine has an observer). */
void fsdb_lconn_push_stmt_method(lua_State *L, lua_CFunction body, const char *name);
int fsdb_lengine_observe(lua_State *L, fsdb_engine *e);

/* lcursor.c: a streaming cursor over the result just started on the
 * connection whose userdata is at conn_idx: a text result (res) or a
 * prepared statement's (s); both NULL gives an empty cursor. Pushes it.
 * rows: FSDB_ROWS_ARRAY and/or FSDB_ROWS_REUSE (result.h). */
void fsdb_lcursor_push(lua_State *L, int conn_idx, MYSQL_RES *res, struct fsdb_stmt *s,
                       int rows);

#endif
