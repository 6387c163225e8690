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

/* Each adds its constructor(s) to the module table on top of the stack. */
void fsdb_lengine_register(lua_State *L);
void fsdb_lconn_register(lua_State *L);

/* Wraps a checked-out connection; the engine userdata at engine_idx is
 * kept alive by it. */
void fsdb_lconn_push(lua_State *L, int engine_idx, fsdb_engine *e, fsdb_conn *c);

/* nil, message, errno, sqlstate; returns 4. */
int fsdb_push_error(lua_State *L, const fsdb_error *e);

#endif
