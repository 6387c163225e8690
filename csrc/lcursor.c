/*
 * lcursor.c — Lua glue for streaming results ("fsdb.cursor"), the object
 * behind conn:rows().
 *
 * A cursor reads one row per call from an unbuffered result, so memory
 * stays bounded whatever the result size. While it is open its connection
 * takes no other statement (lconn.streaming). Closing it early drains the
 * rest of the result so the connection stays usable; if the connection
 * went back to the pool meanwhile (it was discarded: busy), the cursor is
 * simply dead. The cursor keeps the connection userdata alive through its
 * uservalue, together with the column names.
 */
#include "lcore.h"
#include "result.h"
#include "stmt.h"

#include <stdlib.h>

#define FSDB_CURSOR_MT "fsdb.cursor"

typedef struct lcursor {
    lconn *owner;     /* userdata, kept alive by our uservalue */
    fsdb_conn *c;     /* the connection the result belongs to; NULL = closed */
    MYSQL_RES *res;   /* text protocol result, or */
    fsdb_stmt *s;     /* a prepared statement's result */
    int *kinds;       /* text: conversion kind per column */
    unsigned ncols;
    int array_rows;
    unsigned long nrows; /* rows handed out so far */
} lcursor;

/* Rows come in faster than the incremental collector's pace assumes: one
 * small collection step every so many rows keeps the garbage of a long
 * stream from piling up (rows() promises bounded memory). */
#define GC_STEP_EVERY 4096

/* Still attached to a live connection? */
static int attached(const lcursor *cur)
{
    return cur->c != NULL && cur->owner->c == cur->c;
}

/* Ends the stream: the rest of the rows is read and dropped, so the
 * connection can take the next statement. Returns 0, or -1 with err set
 * when draining failed (then the connection is retired). */
static int finish(lcursor *cur, fsdb_error *err)
{
    fsdb_conn *c = cur->c;
    int rc = 0;

    cur->c = NULL;
    free(cur->kinds);
    cur->kinds = NULL;
    if (c == NULL || cur->owner->c != c)
        return 0; /* the connection went back without us: nothing to do */
    /* An error that ended the stream is on the handle now; draining
     * below would overwrite it. */
    if (mysql_errno(c->my) != 0 && err) {
        fsdb_conn_error(c, err);
        rc = -1;
    }
    if (cur->res) {
        mysql_free_result(cur->res); /* reads what is left */
        c->pending = NULL;
    } else if (cur->s) {
        mysql_stmt_free_result(cur->s->st);
    }
    cur->res = NULL;
    cur->s = NULL;
    if (rc == 0 && mysql_errno(c->my) != 0 && err) {
        fsdb_conn_error(c, err); /* draining failed */
        rc = -1;
    }
    c->busy = 0;
    cur->owner->streaming = 0;
    return rc;
}

void fsdb_lcursor_push(lua_State *L, int conn_idx, MYSQL_RES *res, fsdb_stmt *s, int array_rows)
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
    cur->array_rows = array_rows;
    cur->nrows = 0;
    luaL_getmetatable(L, FSDB_CURSOR_MT);
    lua_setmetatable(L, -2);

    /* uservalue = {conn, columns} */
    lua_createtable(L, 2, 0);
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
    fsdb_setuservalue(L, -2);

    if (res == NULL && s == NULL)
        return; /* empty: closed from the start */
    if (res && (cur->kinds = fsdb_result_text_kinds(res)) == NULL) {
        /* Leave it to close(): the connection is busy and gets discarded. */
        luaL_error(L, "fsdb: out of memory starting a cursor");
        return;
    }
    cur->res = res;
    cur->s = s;
    cur->c = owner->c;
    owner->streaming = 1;
}

static lcursor *check_cursor(lua_State *L)
{
    return luaL_checkudata(L, 1, FSDB_CURSOR_MT);
}

/* The iterator: next row, or nil at the end. An error in the middle of
 * the stream raises (a for loop has no other channel, and a silent end
 * would pass partial data off as complete). */
static int l_cursor_next(lua_State *L)
{
    lcursor *cur = check_cursor(L);
    fsdb_error err;
    int names_idx;

    if (cur->c == NULL)
        return 0;
    if (!attached(cur))
        return luaL_error(L, "fsdb: the cursor's connection was closed");
    luaL_checkstack(L, 8, "fsdb: cursor");
    if (++cur->nrows % GC_STEP_EVERY == 0)
        lua_gc(L, LUA_GCSTEP, 0);
    fsdb_getuservalue(L, 1);
    lua_rawgeti(L, -1, 2);
    names_idx = lua_gettop(L);
    if (cur->res) {
        MYSQL_ROW row = mysql_fetch_row(cur->res);
        if (row != NULL) {
            fsdb_result_text_row(L, row, mysql_fetch_lengths(cur->res), cur->kinds, cur->ncols,
                                 names_idx, cur->array_rows);
            return 1;
        }
    } else {
        int rc = fsdb_stmt_fetch(cur->s, &err);
        if (rc == 1) {
            fsdb_result_stmt_row(L, cur->s, names_idx, cur->array_rows);
            return 1;
        }
        if (rc < 0) {
            lconn *owner = cur->owner;
            finish(cur, NULL);
            fsdb_error_scrub(&err, owner->c->cfg->uri.password);
            if (fsdb_error_is_disconnect(err.code))
                fsdb_pool_invalidate(owner->pool, &owner->c->item);
            return luaL_error(L, "%s (errno %d, sqlstate %s)", err.message, (int)err.code,
                              err.sqlstate);
        }
    }
    /* End of rows, or an error the text protocol reports at the end. */
    {
        lconn *owner = cur->owner;
        if (finish(cur, &err) < 0) {
            if (fsdb_error_is_disconnect(err.code))
                fsdb_pool_invalidate(owner->pool, &owner->c->item);
            return luaL_error(L, "%s (errno %d, sqlstate %s)", err.message, (int)err.code,
                              err.sqlstate);
        }
    }
    return 0;
}

/* cursor:close() — drains what is left; harmless when already closed.
 * Returns true, or nil, err, errno, sqlstate when draining failed. */
static int l_cursor_close(lua_State *L)
{
    lcursor *cur = check_cursor(L);
    lconn *owner = cur->owner;
    fsdb_error err;
    if (finish(cur, &err) < 0)
        return fsdb_lconn_fail(L, owner, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* __close and __gc: like close(), but never raise or return errors. */
static int l_cursor_gc(lua_State *L)
{
    lcursor *cur = check_cursor(L);
    finish(cur, NULL);
    return 0;
}

static int l_cursor_columns(lua_State *L)
{
    check_cursor(L);
    fsdb_getuservalue(L, 1);
    lua_rawgeti(L, -1, 2);
    return 1;
}

static int l_cursor_tostring(lua_State *L)
{
    lcursor *cur = check_cursor(L);
    lua_pushstring(L, cur->c ? "fsdb.cursor (open)" : "fsdb.cursor (closed)");
    return 1;
}

void fsdb_lcursor_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"close", l_cursor_close},
        {"columns", l_cursor_columns},
        {"next", l_cursor_next},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__call", l_cursor_next},
        {"__close", l_cursor_gc},
        {"__gc", l_cursor_gc},
        {"__tostring", l_cursor_tostring},
        {NULL, NULL}};

    luaL_newmetatable(L, FSDB_CURSOR_MT);
    fsdb_setfuncs(L, meta);
    lua_newtable(L);
    fsdb_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
