/*
 * lcore.h — what the Lua glue files (core.c, lengine.c, lconn.c) share.
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

typedef struct fsdb_engine {
    fsdb_conn_config cfg;
    fsdb_pool_config pool_cfg;
    fsdb_pool *pool;
    double leak_threshold;       /* seconds; 0 = no leak warning */
    unsigned long held_too_long; /* returned after leak_threshold (atomic) */
} fsdb_engine;

/* The "fsdb.conn" userdata. It keeps a *pointer* to the pooled connection,
 * which outlives it; c is NULL once the connection went back. */
typedef struct lconn {
    fsdb_conn *c;
    fsdb_pool *pool;
    fsdb_engine *e;   /* alive while c is out: the pool frees it last */
    double checked_out_at;
    int streaming;    /* an open "fsdb.cursor" is reading c's result */
} lconn;

/* Each adds its constructor(s) to the module table on top of the stack. */
void fsdb_lengine_register(lua_State *L);
void fsdb_lconn_register(lua_State *L);
void fsdb_lcursor_register(lua_State *L);
void fsdb_lcodec_register(lua_State *L); /* core.codec(): the protocol codec */

/* A streaming cursor over the result just started on the connection whose
 * userdata is at conn_idx: a text result (res) or a prepared statement's
 * (s). Pushes it. */
void fsdb_lcursor_push(lua_State *L, int conn_idx, MYSQL_RES *res, struct fsdb_stmt *s,
                       int array_rows);

/* The connection failed: a disconnect error also retires it. Pushes
 * nil, err, errno, sqlstate and returns 4. */
int fsdb_lconn_fail(lua_State *L, lconn *lc, fsdb_error *err);

/* Wraps a checked-out connection; the engine userdata at engine_idx is
 * kept alive by it. */
void fsdb_lconn_push(lua_State *L, int engine_idx, fsdb_engine *e, fsdb_conn *c);

/* nil, message, errno, sqlstate; returns 4. */
int fsdb_push_error(lua_State *L, const fsdb_error *e);

#endif
