/*
 * lcursor.c — Lua glue for streaming results ("fsdb.cursor"), the object
 * behind conn:rows().
 *
 * A cursor reads one row per call from an unbuffered result, so memory
 * stays bounded whatever the result size. While it is open its connection
 * is STREAMING (conn.c): only the cursor's own calls may use it. Closing
 * it early drains the rest of the result so the connection stays usable;
 * rows are read in small batches (1, 2, 4, … up to ROWS_MAX) under one
 * guarded call, then handed out one per call from the batch;
 * if the connection went back to the pool meanwhile (discarded, as a
 * connection with an unread result is), the cursor is simply dead. The
 * collector never drains (no I/O in finalizers): an abandoned open cursor
 * leaves its connection broken, to be discarded on return. The cursor
 * keeps the connection userdata alive through its uservalue, together
 * with the column names, the text result's conversion kinds, the batch
 * and an error that ended the stream after the batch's rows.
 */
#include "lcore.h"
#include "result.h"
#include "stmt.h"

#define FSDB_CURSOR_MT "fsdb.cursor"

typedef struct lcursor {
    lconn *owner;     /* userdata, kept alive by our uservalue */
    fsdb_conn *c;     /* the connection the result belongs to; NULL = closed */
    MYSQL_RES *res;   /* text protocol result, or */
    fsdb_stmt *s;     /* a prepared statement's result */
    int *kinds;       /* text: conversion kind per column (uservalue[3]) */
    unsigned ncols;
    int array_rows;
    int reuse;           /* one row table, refilled (query_rows' opts.reuse) */
    unsigned long nrows; /* rows read so far */
    int head, count;     /* batch: rows head+1..count are still to hand out */
    int batch;           /* rows to read next time */
    int failed;          /* an error (uservalue[UV_ERROR]) follows the batch */
} lcursor;

/* The uservalue's slots; the batch's rows follow them (UV_ROWS + k), or,
 * for a cursor that refills one row table (UV_ROW), their values
 * (UV_ROWS + (k - 1) * ncols + column). */
enum { UV_CONN = 1, UV_COLUMNS, UV_KINDS, UV_ERROR, UV_ROW, UV_ROWS = UV_ROW };

/* Rows per guarded call at most: the guard (a protected call) is paid
 * per batch, not per row, and memory stays bounded. */
#define ROWS_MAX 64

/* Rows come in faster than the incremental collector's pace assumes: one
 * small collection step every so many rows keeps the garbage of a long
 * stream from piling up (rows() promises bounded memory). */
#define GC_STEP_EVERY 4096

/* A refilling cursor's batch holds about this many values at most. */
#define VALUES_MAX 1024

/* Still attached to a live connection? */
static int attached(const lcursor *cur)
{
    return cur->c != NULL && cur->owner->c == cur->c;
}

/* Ends the stream inside a call on the connection: the rest of the rows
 * is read and dropped, so the connection can take the next statement.
 * Returns 0, or -1 with err set when draining failed. */
static int finish(lcursor *cur, fsdb_error *err)
{
    fsdb_conn *c = cur->c;
    int rc = 0;

    cur->c = NULL;
    cur->kinds = NULL;
    if (c == NULL || cur->owner->c != c)
        return 0; /* the connection went back without us: nothing to do */
    /* An error that ended the stream is on the handle now; draining
     * below would overwrite it. */
    if (mysql_errno(c->my) != 0) {
        fsdb_conn_error(c, err);
        rc = -1;
    }
    if (cur->res) {
        mysql_free_result(cur->res); /* reads what is left */
        c->pending = NULL;
    } else if (cur->s) {
        mysql_stmt_free_result(cur->s->st);
        c->pending_stmt = NULL;
    }
    cur->res = NULL;
    cur->s = NULL;
    if (rc == 0 && mysql_errno(c->my) != 0) {
        fsdb_conn_error(c, err); /* draining failed */
        rc = -1;
    }
    fsdb_conn_stream(c, 0);
    return rc;
}

void fsdb_lcursor_push(lua_State *L, int conn_idx, MYSQL_RES *res, fsdb_stmt *s, int rows)
{
    lcursor *cur;
    lconn *owner = lua_touserdata(L, conn_idx);

    conn_idx = conn_idx < 0 ? lua_gettop(L) + conn_idx + 1 : conn_idx;
    cur = fsdb_newuserdata(L, sizeof *cur);
    cur->owner = owner;
    cur->c = NULL;
    cur->res = NULL;
    cur->s = NULL;
    cur->kinds = NULL;
    cur->ncols = 0;
    cur->array_rows = (rows & FSDB_ROWS_ARRAY) != 0;
    cur->reuse = (rows & FSDB_ROWS_REUSE) != 0;
    cur->nrows = 0;
    cur->head = cur->count = cur->failed = 0;
    cur->batch = 1;
    luaL_getmetatable(L, FSDB_CURSOR_MT);
    lua_setmetatable(L, -2);

    /* uservalue = {conn, columns, kinds, error, row…} */
    lua_createtable(L, UV_ROWS + (cur->reuse ? VALUES_MAX : ROWS_MAX), 0);
    lua_pushvalue(L, conn_idx);
    lua_rawseti(L, -2, 1);
    if (res) {
        cur->ncols = mysql_num_fields(res);
        fsdb_result_push_columns(L, mysql_fetch_fields(res), NULL, cur->ncols);
    } else if (s) {
        cur->ncols = s->ncols;
        fsdb_result_push_columns(L, NULL, s->cols, cur->ncols);
    } else {
        lua_newtable(L);
    }
    lua_rawseti(L, -2, 2);
    if (res) {
        int *kinds = fsdb_result_text_kinds(L, res);
        lua_rawseti(L, -2, UV_KINDS);
        cur->kinds = kinds;
    }
    if (cur->reuse) {
        lua_createtable(L, cur->array_rows ? (int)cur->ncols : 0,
                        cur->array_rows ? 0 : (int)cur->ncols);
        lua_rawseti(L, -2, UV_ROW);
    }
    fsdb_setuservalue(L, -2);

    if (res == NULL && s == NULL)
        return; /* empty: closed from the start */
    cur->res = res;
    cur->s = s;
    cur->c = owner->c;
    fsdb_conn_stream(owner->c, 1);
}

static lcursor *check_cursor(lua_State *L)
{
    return fsdb_checkudata(L, 1, FSDB_CURSOR_MT);
}

/* check_cursor for the guarded methods (push_guarded), run once per row. */
static lcursor *check_cursor_up(lua_State *L)
{
    return fsdb_checkudata_up(L, 1, 2, FSDB_CURSOR_MT);
}

/* The stream failed: the error is kept (uservalue[UV_ERROR]) and raised once the
 * rows read before it were handed out. */
static void keep_error(lua_State *L, lcursor *cur, fsdb_error *err, int uv)
{
    lconn *owner = cur->owner;
    if (owner->c && fsdb_conn_failed(owner->c, err))
        fsdb_pool_invalidate(owner->pool, &owner->c->item);
    lua_pushfstring(L, "%s (errno %d, sqlstate %s)", err->message, (int)err->code,
                    err->sqlstate);
    lua_rawseti(L, uv, UV_ERROR);
    cur->failed = 1;
}

/* Under the guard: reads the next batch of rows into the uservalue. An
 * error in the middle of the stream ends it; the front raises it (a for
 * loop has no other channel, and a silent end would pass partial data off
 * as complete). */
static int cursor_fill(lua_State *L)
{
    lcursor *cur = lua_touserdata(L, 1); /* checked in front of the guard */
    fsdb_error err;
    int uv, names_idx, k;

    luaL_checkstack(L, 8, "fsdb: cursor");
    fsdb_getuservalue(L, 1);
    uv = lua_gettop(L);
    lua_rawgeti(L, uv, UV_COLUMNS);
    names_idx = lua_gettop(L);
    cur->head = cur->count = 0;
    if (cur->reuse && (unsigned)cur->batch * cur->ncols > VALUES_MAX)
        cur->batch = cur->ncols < VALUES_MAX ? (int)(VALUES_MAX / cur->ncols) : 1;
    for (k = 0; k < cur->batch; k++) {
        if (++cur->nrows % GC_STEP_EVERY == 0)
            lua_gc(L, LUA_GCSTEP, 0);
        if (cur->res) {
            MYSQL_ROW row = mysql_fetch_row(cur->res);
            if (row != NULL && cur->reuse) {
                fsdb_result_text_store(L, row, mysql_fetch_lengths(cur->res), cur->kinds,
                                       cur->ncols, uv, UV_ROWS + cur->count++ * (int)cur->ncols);
                continue;
            }
            if (row != NULL) {
                fsdb_result_text_row(L, row, mysql_fetch_lengths(cur->res), cur->kinds,
                                     cur->ncols, names_idx, cur->array_rows);
                lua_rawseti(L, uv, UV_ROWS + ++cur->count);
                continue;
            }
        } else {
            int rc = fsdb_stmt_fetch(cur->c, cur->s, &err);
            if (rc == 1 && cur->reuse) {
                fsdb_result_stmt_store(L, cur->s, uv, UV_ROWS + cur->count++ * (int)cur->ncols);
                continue;
            }
            if (rc == 1) {
                fsdb_result_stmt_row(L, cur->s, names_idx, cur->array_rows);
                lua_rawseti(L, uv, UV_ROWS + ++cur->count);
                continue;
            }
            if (rc < 0) {
                fsdb_error ignored;
                finish(cur, &ignored);
                keep_error(L, cur, &err, uv);
                break;
            }
        }
        /* End of rows, or an error the text protocol reports at the end. */
        if (finish(cur, &err) < 0)
            keep_error(L, cur, &err, uv);
        break;
    }
    if (cur->batch < ROWS_MAX)
        cur->batch *= 2;
    return 0;
}

/* Hands out row head+1 of the batch: its table, or the one row table
 * refilled with its values. */
static int next_in_batch(lua_State *L, lcursor *cur)
{
    int uv, row, base, i, n = (int)cur->ncols;
    fsdb_getuservalue(L, 1);
    if (!cur->reuse) {
        lua_rawgeti(L, -1, UV_ROWS + ++cur->head);
        return 1;
    }
    uv = lua_gettop(L);
    base = UV_ROWS + cur->head++ * n;
    luaL_checkstack(L, 4, "fsdb: cursor");
    lua_rawgeti(L, uv, UV_ROW);
    row = uv + 1;
    if (cur->array_rows) {
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, uv, base + i);
            lua_rawseti(L, row, i);
        }
        return 1;
    }
    lua_rawgeti(L, uv, UV_COLUMNS);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, row + 1, i);
        lua_rawgeti(L, uv, base + i);
        lua_rawset(L, row);
    }
    lua_settop(L, row);
    return 1;
}

/* The iterator: next row, or nil at the end (and after it). */
static int l_cursor_next(lua_State *L)
{
    lcursor *cur = check_cursor_up(L);
    if (cur->head < cur->count)
        return next_in_batch(L, cur);
    if (cur->c != NULL) {
        if (!attached(cur))
            return luaL_error(L, "fsdb: the cursor's connection was closed");
        lua_settop(L, 1);
        fsdb_lcall(L, cur->owner, 1);
        lua_settop(L, 1);
        if (cur->head < cur->count)
            return next_in_batch(L, cur);
    }
    if (cur->failed) {
        cur->failed = 0;
        fsdb_getuservalue(L, 1);
        lua_rawgeti(L, -1, UV_ERROR);
        return lua_error(L);
    }
    return 0;
}

static int cursor_close(lua_State *L)
{
    lcursor *cur = lua_touserdata(L, 1); /* checked in front of the guard */
    fsdb_error err;
    cur->head = cur->count = cur->failed = 0;
    if (finish(cur, &err) < 0)
        return fsdb_lconn_fail(L, cur->owner, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* cursor:close() — drains what is left; harmless when already closed.
 * Returns true, or nil, err, errno, sqlstate when draining failed. */
static int l_cursor_close(lua_State *L)
{
    lcursor *cur = check_cursor_up(L);
    if (!attached(cur)) {
        cur->c = NULL;
        cur->head = cur->count = cur->failed = 0;
        lua_pushboolean(L, 1);
        return 1;
    }
    return fsdb_lcall(L, cur->owner, 1);
}

/* __close (the end of a for loop's scope, not a finalizer): like close(),
 * but never raises or returns errors. */
static int l_cursor_toclose(lua_State *L)
{
    lcursor *cur = check_cursor(L);
    lua_settop(L, 1);
    if (attached(cur) && fsdb_conn_streaming(cur->c)) {
        lua_pushvalue(L, lua_upvalueindex(1)); /* the guarded close */
        lua_pushvalue(L, 1);
        lua_pcall(L, 1, 0, 0);
    }
    return 0;
}

/* __gc: no I/O. An open stream's connection is left broken (discarded
 * when it goes back); its result is freed with it. */
static int l_cursor_gc(lua_State *L)
{
    lcursor *cur = check_cursor(L);
    if (attached(cur))
        fsdb_conn_abandon_stream(cur->c);
    cur->c = NULL;
    cur->kinds = NULL;
    return 0;
}

static int l_cursor_columns(lua_State *L)
{
    check_cursor(L);
    fsdb_getuservalue(L, 1);
    lua_rawgeti(L, -1, UV_COLUMNS);
    return 1;
}

static int l_cursor_tostring(lua_State *L)
{
    lcursor *cur = check_cursor(L);
    lua_pushstring(L, cur->c || cur->head < cur->count ? "fsdb.cursor (open)"
                                                       : "fsdb.cursor (closed)");
    return 1;
}

/* A closure running body under the guard, after the checks in front;
 * the cursor metatable (at mt) is its second upvalue. */
static void push_guarded(lua_State *L, int mt, lua_CFunction front, lua_CFunction body)
{
    lua_pushcfunction(L, body);
    lua_pushvalue(L, mt);
    lua_pushcclosure(L, front, 2);
}

void fsdb_lcursor_register(lua_State *L)
{
    int mt;
    luaL_newmetatable(L, FSDB_CURSOR_MT);
    mt = lua_gettop(L);
    push_guarded(L, mt, l_cursor_next, cursor_fill);
    lua_setfield(L, -2, "__call");
    push_guarded(L, mt, l_cursor_close, cursor_close);
    lua_pushcclosure(L, l_cursor_toclose, 1);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_cursor_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_cursor_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_newtable(L);
    push_guarded(L, mt, l_cursor_close, cursor_close);
    lua_setfield(L, -2, "close");
    lua_pushcfunction(L, l_cursor_columns);
    lua_setfield(L, -2, "columns");
    push_guarded(L, mt, l_cursor_next, cursor_fill);
    lua_setfield(L, -2, "next");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
