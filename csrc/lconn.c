/*
 * lconn.c — Lua glue for a checked-out connection ("fsdb.conn"):
 * execute/query with Lua parameters, close (return to the pool), lifetime.
 *
 * The userdata keeps a *pointer* to the pooled connection (which outlives
 * it) and the engine userdata in its uservalue, so the engine cannot be
 * collected while a connection is out. Every method but close runs under
 * lcall.c's guard; a string read from a parameter table is kept in an
 * anchor table until the statement ran (the table's __index may return a
 * fresh string, and Lua code may drop it from the table meanwhile);
 * executemany copies its strings out of Lua instead (copies.h).
 */
#include "codec.h"
#include "copies.h"
#include "lcore.h"
#include "param.h"
#include "result.h"
#include "sqlscan.h"
#include "stmt.h"
#include "stmtcache.h"

#include <stdio.h>
#include <string.h>


static lconn *self(lua_State *L)
{
    return lua_touserdata(L, 1); /* checked by the guard */
}

static const char *plural(unsigned n) { return n == 1 ? "" : "s"; }

/* One Lua value at idx into p (param.c's rules); raises on a value SQL
 * has no place for. A string is stored at anchor[slot] (anchor 0: it
 * stays on the stack); one on top of the stack is moved there (callers
 * reset the stack top). */
static void to_param(lua_State *L, int idx, fsdb_param *p, unsigned pos, const char *name,
                     int anchor, int slot)
{
    fsdb_param_check(L, idx, p, pos, name);
    if (anchor && p->type == FSDB_P_STRING) {
        if (idx != lua_gettop(L))
            lua_pushvalue(L, idx);
        lua_rawseti(L, anchor, slot);
    }
}

/* Collects s->nparams values from varargs (first..top) or from the table at
 * tidx (tidx > 0). Strings stay alive on the stack (varargs) or in an
 * anchor table left on the stack, so the stack needs no room per
 * parameter (LuaJIT's is small). */
static void collect_params(lua_State *L, fsdb_stmt *s, int first, int nargs, int tidx,
                           fsdb_param *out)
{
    unsigned i, n = s->nparams;
    int anchor = 0;

    luaL_checkstack(L, 4, "fsdb: parameters");
    if (tidx == 0) {
        if (s->scan.style == FSDB_SCAN_NAMED)
            luaL_error(L, "fsdb: statement uses :name placeholders; pass one table of values");
        if ((unsigned)nargs != n)
            luaL_error(L, "fsdb: statement has %d placeholder%s but %d parameter%s given",
                       (int)n, plural(n), nargs, nargs == 1 ? " was" : "s were");
        for (i = 0; i < n; i++)
            to_param(L, first + (int)i, &out[i], i + 1, NULL, 0, 0);
        return;
    }
    lua_createtable(L, (int)n, 0);
    anchor = lua_gettop(L);
    if (s->scan.style == FSDB_SCAN_NAMED) {
        for (i = 0; i < n; i++) {
            const char *name = s->scan.names[i];
            lua_getfield(L, tidx, name);
            if (lua_isnil(L, -1))
                luaL_error(L, "fsdb: no value for parameter :%s (use fsdb.null for NULL)", name);
            to_param(L, lua_gettop(L), &out[i], i + 1, name, anchor, (int)i + 1);
            lua_settop(L, anchor);
        }
    } else {
        size_t count;
        lua_getfield(L, tidx, "n");
        count = lua_isnumber(L, -1) ? (size_t)lua_tonumber(L, -1) : fsdb_rawlen(L, tidx);
        lua_pop(L, 1);
        if (count != n)
            luaL_error(L, "fsdb: statement has %d placeholder%s but %d parameter%s given",
                       (int)n, plural(n), (int)count, count == 1 ? " was" : "s were");
        for (i = 0; i < n; i++) {
            lua_rawgeti(L, tidx, (int)i + 1);
            to_param(L, lua_gettop(L), &out[i], i + 1, NULL, anchor, (int)i + 1);
            lua_settop(L, anchor);
        }
    }
}

/* A statement the server would refuse for its size (and close the
 * connection over) is refused here instead, keeping the connection. */
static int too_big(fsdb_conn *c, unsigned long long bytes, fsdb_error *err)
{
    if (c->max_packet == 0 || bytes <= c->max_packet)
        return 0;
    fsdb_error_set(err, 1153, "08S01",
                   "the statement needs a %llu-byte packet, more than the server's "
                   "max_allowed_packet (%lu bytes)", bytes, c->max_packet);
    return 1;
}

static unsigned long long params_bytes(const fsdb_param *p, unsigned n)
{
    unsigned long long bytes = 16; /* command, statement id, flags, null map */
    unsigned i;
    for (i = 0; i < n; i++)
        bytes += 10 + (p[i].type == FSDB_P_STRING ? p[i].len : 0);
    return bytes;
}

static int run_text(lua_State *L, lconn *lc, const char *sql, size_t len, int array_rows,
                    int multi, int stream)
{
    fsdb_conn *c = lc->c;
    fsdb_error err;
    MYSQL_RES *res;

    if (too_big(c, (unsigned long long)len + 1, &err))
        return fsdb_push_error(L, &err);
    if (mysql_real_query(c->my, sql, (unsigned long)len) != 0) {
        fsdb_conn_error(c, &err);
        if (multi)
            fsdb_error_hint_multi(&err);
        return fsdb_lconn_fail(L, lc, &err);
    }
    if ((res = mysql_use_result(c->my)) == NULL) {
        if (mysql_field_count(c->my) != 0) {
            fsdb_conn_error(c, &err);
            return fsdb_lconn_fail(L, lc, &err);
        }
        fsdb_conn_ok(c);
        fsdb_result_push_ok(L, mysql_affected_rows(c->my), mysql_insert_id(c->my),
                            mysql_warning_count(c->my));
        return 1;
    }
    fsdb_conn_ok(c);
    /* Until every row is read the connection cannot take another command;
     * if building Lua values raises, the guard sees the pending result and
     * the connection is broken (discarded on close). */
    c->pending = res;
    if (stream) {
        fsdb_lcursor_push(L, 1, res, NULL, array_rows);
        return 1;
    }
    if (fsdb_result_push_text(L, c->my, res, 2, array_rows, &err) < 0) {
        fsdb_error_scrub(&err, fsdb_conn_secret(c));
        mysql_free_result(res);
        c->pending = NULL;
        return fsdb_lconn_fail(L, lc, &err);
    }
    mysql_free_result(res);
    c->pending = NULL;
    return 1;
}

static int run_prepared(lua_State *L, lconn *lc, const char *sql, size_t len, int first,
                        int nargs, int tidx, int array_rows, int stream)
{
    fsdb_conn *c = lc->c;
    fsdb_error err;
    fsdb_param small[16], *params = small;
    fsdb_stmt *s = fsdb_stmt_get(c, sql, len, &err);
    int rc;

    if (s == NULL) {
        if (err.code == FSDB_ERR_PARAMS)
            return luaL_error(L, "%s", err.message);
        return fsdb_lconn_fail(L, lc, &err);
    }
    if (s->nparams > sizeof small / sizeof small[0])
        params = lua_newuserdata(L, s->nparams * sizeof *params);
    collect_params(L, s, first, nargs, tidx, params);
    if (too_big(c, params_bytes(params, s->nparams), &err))
        return fsdb_push_error(L, &err);
    if (fsdb_stmt_execute(c, &s, params, &err) < 0)
        return fsdb_lconn_fail(L, lc, &err);
    fsdb_conn_ok(c);
    if (mysql_stmt_field_count(s->st) > 0) {
        c->pending_stmt = s->st;
        if (stream) {
            fsdb_lcursor_push(L, 1, NULL, s, array_rows);
            return 1;
        }
        rc = fsdb_result_push_stmt(L, c, s, array_rows, &err);
        mysql_stmt_free_result(s->st);
        c->pending_stmt = NULL;
        if (rc < 0)
            return fsdb_lconn_fail(L, lc, &err);
    } else {
        fsdb_result_push_ok(L, mysql_stmt_affected_rows(s->st), mysql_stmt_insert_id(s->st),
                            mysql_warning_count(c->my));
    }
    return 1;
}

/* Shared by execute and query. Text protocol when there are no
 * parameters, prepared statements otherwise. */
/* The SQL argument: a string, never a number Lua would turn into one. */
static const char *check_sql(lua_State *L, size_t *len)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        luaL_error(L, "fsdb: bad argument #1 (SQL string expected, got %s)", luaL_typename(L, 2));
    return lua_tolstring(L, 2, len);
}

static int run(lua_State *L, lconn *lc, int first, int nargs, int tidx, int array_rows,
               int stream)
{
    size_t len;
    const char *sql = check_sql(L, &len);

    if (nargs == 0 && tidx == 0) {
        fsdb_sqlscan scan;
        fsdb_error err;
        int multi;
        if (fsdb_sqlscan_plain(sql, len)) /* most statements: nothing to scan for */
            return run_text(L, lc, sql, len, array_rows, 0, stream);
        if (fsdb_sqlscan_run(sql, len, fsdb_conn_no_backslash_escapes(lc->c), &scan, &err) < 0)
            return luaL_error(L, "%s", err.message);
        multi = scan.multi;
        if (scan.nparams > 0) {
            unsigned n = scan.nparams;
            fsdb_sqlscan_free(&scan);
            return luaL_error(L, "fsdb: statement has %d placeholder%s but no parameters were given",
                              (int)n, plural(n));
        }
        fsdb_sqlscan_free(&scan);
        return run_text(L, lc, sql, len, array_rows, multi, stream);
    }
    return run_prepared(L, lc, sql, len, first, nargs, tidx, array_rows, stream);
}

/* conn:execute(sql, ...) — varargs fill '?', or one table argument. */
static int l_conn_execute(lua_State *L)
{
    lconn *lc = self(L);
    int nargs = lua_gettop(L) - 2;
    if (nargs == 1 && lua_istable(L, 3))
        return run(L, lc, 3, 0, 3, 0, 0);
    return run(L, lc, 3, nargs < 0 ? 0 : nargs, 0, 0, 0);
}

/* After run(..., stream = 1): what a generic for wants — cursor, nil, nil,
 * cursor (the 4th is the to-be-closed value: Lua 5.4 closes it on break);
 * a statement without rows gives an empty cursor. A for loop has no
 * channel for nil, err (it would only see "attempt to call a nil value"):
 * a failure raises, as io.lines does, in the format of a failure in the
 * middle of the stream (lcursor.c). */
static int for_loop(lua_State *L, int nresults)
{
    if (nresults != 1) {
        lua_pushfstring(L, "%s (errno %d, sqlstate %s)", lua_tostring(L, -3),
                        (int)lua_tointeger(L, -2), lua_tostring(L, -1));
        return lua_error(L);
    }
    if (!lua_isuserdata(L, -1))
        fsdb_lcursor_push(L, 1, NULL, NULL, 0);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, -3);
    return 4;
}

/* conn:rows(sql, ...) — like execute, but returns a cursor that streams
 * the rows (unbuffered: memory stays bounded whatever the result size):
 *   for row in conn:rows(sql, ...) do … end */
static int l_conn_rows(lua_State *L)
{
    lconn *lc = self(L);
    int nargs = lua_gettop(L) - 2;
    if (nargs == 1 && lua_istable(L, 3))
        return for_loop(L, run(L, lc, 3, 0, 3, 0, 1));
    return for_loop(L, run(L, lc, 3, nargs < 0 ? 0 : nargs, 0, 0, 1));
}

/* A string parameter is copied out of Lua into the batch's store the
 * moment it is read (copies.h): nothing of the batch points into Lua
 * memory afterwards, whatever Lua code runs before the batch is sent. */
static void keep_copy(lua_State *L, fsdb_copies *copies, fsdb_param *p)
{
    if (p->type == FSDB_P_STRING && (p->s = fsdb_copies_put(copies, p->s, p->len)) == NULL)
        luaL_error(L, "fsdb: not enough memory for the parameter sets");
}

#define SET_CHUNK 16

/* One parameter set of executemany, the table at idx (the stack top),
 * into out[0..np). lua_getfield and lua_gettable may run Lua code (a
 * set's __index): every string is copied before that can happen. nkey
 * holds the string "n" (not interned again for every set). Positional
 * values are read raw, a few at a time on the stack (room made by
 * many_body). */
static void collect_set(lua_State *L, fsdb_stmt *s, int idx, lua_Integer k, fsdb_param *out,
                        fsdb_copies *copies, int nkey)
{
    unsigned i, np = s->nparams;
    size_t count;
    if (!lua_istable(L, idx))
        luaL_error(L, "fsdb: bad parameter set #%d (table expected, got %s)", (int)k,
                   luaL_typename(L, idx));
    if (s->scan.style == FSDB_SCAN_NAMED) {
        for (i = 0; i < np; i++) {
            lua_getfield(L, idx, s->scan.names[i]);
            if (lua_isnil(L, -1))
                luaL_error(L, "fsdb: parameter set #%d has no value for :%s (use fsdb.null for NULL)",
                           (int)k, s->scan.names[i]);
            fsdb_param_check(L, lua_gettop(L), &out[i], i + 1, s->scan.names[i]);
            keep_copy(L, copies, &out[i]);
            lua_settop(L, idx);
        }
        return;
    }
    lua_pushvalue(L, nkey);
    lua_gettable(L, idx);
    count = lua_isnumber(L, -1) ? (size_t)lua_tonumber(L, -1) : fsdb_rawlen(L, idx);
    lua_settop(L, idx);
    if (count != np)
        luaL_error(L, "fsdb: parameter set #%d has %d value%s, the statement has %d placeholder%s",
                   (int)k, (int)count, plural((unsigned)count), (int)np, plural(np));
    for (i = 0; i < np;) {
        unsigned j, chunk = np - i < SET_CHUNK ? np - i : SET_CHUNK;
        for (j = 0; j < chunk; j++)
            lua_rawgeti(L, idx, (int)(i + j) + 1);
        for (j = 0; j < chunk; j++, i++) {
            fsdb_param_check(L, idx + 1 + (int)j, &out[i], i + 1, NULL);
            keep_copy(L, copies, &out[i]);
        }
        lua_settop(L, idx);
    }
}

#define BULK_MAX_ROWS 20000
#define MAX_PLACEHOLDERS 65535 /* the server's limit per prepared statement */
#define KEEP_SQL_MAX 4096      /* longer multi-row statements are not cached */

/* The SQL of a multi-row INSERT: text with its VALUES group at
 * [gstart, gend) repeated rows times; pushed on the Lua stack. */
static const char *push_values_sql(lua_State *L, const char *text, size_t len, size_t gstart,
                                   size_t gend, unsigned rows, size_t *out_len)
{
    luaL_Buffer b;
    unsigned r;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, text, gstart);
    for (r = 0; r < rows; r++) {
        if (r > 0)
            luaL_addchar(&b, ',');
        luaL_addlstring(&b, text + gstart, gend - gstart);
    }
    luaL_addlstring(&b, text + gend, len - gend);
    luaL_pushresult(&b);
    return lua_tolstring(L, -1, out_len);
}

/* executemany's work: [self, sql, sets, copies]. The batch's strings go
 * to copies, which l_conn_executemany frees however the body ends. */
static int many_body(lua_State *L)
{
    lconn *lc = self(L);
    fsdb_copies *copies = lua_touserdata(L, 4);
    fsdb_conn *c = lc->c;
    size_t len, gstart = 0, gend = 0, text_len;
    const char *sql = lua_tolstring(L, 2, &len), *text;
    lua_Integer nsets, next = 1;
    fsdb_error err;
    fsdb_stmt *s;
    fsdb_param *params;
    int *types, mode = c->cfg ? c->cfg->executemany_mode : FSDB_MANY_AUTO, values_ok, nkey;
    unsigned np, cap, values_max = 0;
    unsigned long long affected = 0, first_id = 0;
    unsigned long limit;

    nsets = (lua_Integer)fsdb_rawlen(L, 3);
    if ((s = fsdb_stmt_get(c, sql, len, &err)) == NULL) {
        if (err.code == FSDB_ERR_PARAMS)
            return luaL_error(L, "%s", err.message);
        return fsdb_lconn_fail(L, lc, &err);
    }
    if (mysql_stmt_field_count(s->st) > 0)
        return luaL_error(L, "fsdb: executemany() is for statements without a result (INSERT, "
                             "UPDATE, DELETE, REPLACE); use execute() or rows() for queries");
    np = s->nparams;
    if (np == 0)
        return luaL_error(L, "fsdb: executemany() needs a statement with placeholders");
    /* The statement as the server sees it ('?'), kept on the Lua stack:
     * preparing the multi-row form may evict s from the cache. */
    if (s->scan.style == FSDB_SCAN_NAMED)
        lua_pushlstring(L, s->scan.sql, s->scan.sql_len);
    else
        lua_pushlstring(L, sql, len);
    text = lua_tolstring(L, -1, &text_len);
    values_ok = mode != FSDB_MANY_EACH &&
                fsdb_sqlscan_values_group(text, text_len, fsdb_conn_no_backslash_escapes(c),
                                          &gstart, &gend);
    cap = (unsigned)(nsets < BULK_MAX_ROWS ? (nsets > 0 ? nsets : 1) : BULK_MAX_ROWS);
    /* Batches of at most half of max_allowed_packet: room for the framing
     * and the indicator bytes the estimate leaves out. */
    limit = c->max_packet ? c->max_packet / 2 : (1ul << 20);
    if (limit > (16ul << 20))
        limit = 16ul << 20;
    /* The most rows one multi-row INSERT may carry: its placeholders under
     * the server's limit, its text under the packet limit (a group may
     * hold long literals). Without array binding that bounds the batch. */
    if (values_ok) {
        size_t group = gend - gstart + 1, fixed = text_len - (gend - gstart);
        unsigned long by_text = fixed < limit ? (unsigned long)((limit - fixed) / group) : 0;
        values_max = MAX_PLACEHOLDERS / np;
        if (values_max > by_text)
            values_max = (unsigned)by_text;
        if (!(mode == FSDB_MANY_AUTO && c->bulk) && cap > values_max)
            cap = values_max > 0 ? values_max : 1;
    }
    params = lua_newuserdata(L, (size_t)cap * np * sizeof *params);
    types = lua_newuserdata(L, np * sizeof *types);
    luaL_checkstack(L, SET_CHUNK + 4, "fsdb: parameter sets");
    lua_pushliteral(L, "n");
    nkey = lua_gettop(L);

    while (next <= nsets) {
        unsigned rows = 0, i;
        unsigned long bytes = 0;
        int mixed = 0, rc = 0;

        /* Found again each batch: the previous one may have evicted it. */
        if ((s = fsdb_stmt_get(c, sql, len, &err)) == NULL)
            return fsdb_lconn_fail(L, lc, &err);
        fsdb_copies_reset(copies); /* the previous batch was sent */
        for (i = 0; i < np; i++)
            types[i] = FSDB_P_NULL;
        while (next + rows <= nsets && rows < cap) {
            fsdb_param *row = &params[rows * np];
            unsigned long row_bytes = 0;
            lua_rawgeti(L, 3, (int)(next + rows));
            collect_set(L, s, nkey + 1, next + rows, row, copies, nkey);
            lua_settop(L, nkey);
            for (i = 0; i < np; i++)
                row_bytes += 10 + (row[i].type == FSDB_P_STRING ? row[i].len : 0);
            /* This set would overflow the batch: it starts the next one
             * (a single set goes alone, and the server judges it). */
            if (rows > 0 && bytes + row_bytes > limit)
                break;
            bytes += row_bytes;
            for (i = 0; i < np; i++) {
                int t = row[i].type;
                if (t == FSDB_P_NULL || t == types[i])
                    continue;
                if (types[i] == FSDB_P_NULL)
                    types[i] = t;
                else if ((t == FSDB_P_DOUBLE && types[i] == FSDB_P_INT) ||
                         (t == FSDB_P_INT && types[i] == FSDB_P_DOUBLE))
                    types[i] = FSDB_P_DOUBLE;
                else
                    mixed = 1;
            }
            rows++;
        }
        if (mode == FSDB_MANY_AUTO && c->bulk && !mixed && rows > 1) {
            rc = fsdb_stmt_execute_bulk(c, s, params, rows, types, &affected, &first_id, &err);
        } else if (values_ok && rows > 1 && rows <= values_max) {
            size_t many_len;
            const char *many = push_values_sql(L, text, text_len, gstart, gend, rows, &many_len);
            fsdb_stmt *ms = fsdb_stmt_get(c, many, many_len, &err);
            rc = ms ? fsdb_stmt_execute(c, &ms, params, &err) : -1;
            if (rc == 0) {
                affected += mysql_stmt_affected_rows(ms->st);
                first_id = mysql_stmt_insert_id(ms->st);
            }
            /* Big batches rarely repeat with the same row count: free the
             * server's copy now rather than let them fill the cache. */
            if (ms && many_len > KEEP_SQL_MAX)
                fsdb_stmt_forget(c, ms);
            lua_pop(L, 1);
        } else {
            /* insert_id as in the other two ways: the batch's first id. */
            unsigned long long batch_id = 0;
            for (i = 0; i < rows && rc == 0; i++) {
                rc = fsdb_stmt_execute(c, &s, &params[i * np], &err);
                if (rc == 0) {
                    affected += mysql_stmt_affected_rows(s->st);
                    if (batch_id == 0)
                        batch_id = mysql_stmt_insert_id(s->st);
                }
            }
            first_id = batch_id;
        }
        if (rc < 0)
            return fsdb_lconn_fail(L, lc, &err);
        fsdb_conn_ok(c);
        next += rows;
    }
    fsdb_result_push_ok(L, affected, first_id, mysql_warning_count(c->my));
    return 1;
}

/* conn:executemany(sql, sets) — one statement for many parameter sets, in
 * batches under max_allowed_packet (one round trip per batch): MariaDB
 * array binding when the server takes it and every column keeps one type;
 * otherwise, for an INSERT/REPLACE … VALUES (…), one multi-row INSERT per
 * batch; otherwise one execute per set. The engine option
 * executemany_mode ("auto", "values", "each") narrows the choice. Returns
 * {affected_rows = total, insert_id = first id of the last batch,
 * warnings = n}. Not atomic on its own: run it in a transaction (a
 * session) for all-or-nothing. */
static int l_conn_executemany(lua_State *L)
{
    fsdb_copies copies = FSDB_COPIES_INIT;
    int status;
    size_t len;

    check_sql(L, &len);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_pushcfunction(L, many_body);
    lua_insert(L, 1);
    lua_pushlightuserdata(L, &copies);
    status = lua_pcall(L, 4, LUA_MULTRET, 0);
    fsdb_copies_free(&copies);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L);
}

/* opts[name] of query()'s options at 4: nil or a boolean, anything else
 * is misuse (a "no" must not turn the option on). */
static int bool_opt(lua_State *L, const char *name)
{
    int on;
    lua_getfield(L, 4, name);
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        luaL_error(L, "fsdb: bad value for query option '%s' (expected a boolean)", name);
    on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

/* Reads query()'s (params_or_nil, opts_or_nil) at 3 and 4. */
static void query_args(lua_State *L, int *tidx, int *array_rows, int stream)
{
    *tidx = 0;
    *array_rows = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        *array_rows = bool_opt(L, "array") ? FSDB_ROWS_ARRAY : 0;
        if (bool_opt(L, "columnar")) {
            if (stream)
                luaL_error(L, "fsdb: query option 'columnar' is for buffered results "
                              "(conn:query), not for streaming rows");
            if (*array_rows)
                luaL_error(L, "fsdb: query options 'columnar' and 'array' exclude each other");
            *array_rows = FSDB_ROWS_COLUMNAR;
        }
        if (stream && bool_opt(L, "reuse"))
            *array_rows |= FSDB_ROWS_REUSE;
        lua_getfield(L, 4, "max_statement_time");
        if (!lua_isnil(L, -1)) {
            /* A per-call limit: MariaDB's SET STATEMENT … FOR, in whole
             * milliseconds printed as integers (no locale). */
            lua_Number t = lua_tonumber(L, -1);
            unsigned ms;
            char secs[24];

            if (!lua_isnumber(L, -1) || !(t > 0 && t <= 31536000))
                luaL_error(L, "fsdb: bad value for query option 'max_statement_time' "
                              "(expected a number of seconds > 0)");
            ms = (unsigned)(t * 1000.0 + 0.5);
            snprintf(secs, sizeof secs, "%u.%03u", ms / 1000, ms % 1000);
            lua_pushfstring(L, "SET STATEMENT max_statement_time = %s FOR %s", secs,
                            luaL_checkstring(L, 2));
            lua_replace(L, 2);
        }
        lua_pop(L, 1);
    }
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        *tidx = 3;
    }
    lua_settop(L, 4);
}

/* conn:query(sql, params_or_nil, opts_or_nil); opts.array = true gives
 * rows as arrays in column order, opts.columnar = true one array per
 * column (columnar.h). */
static int l_conn_query(lua_State *L)
{
    lconn *lc = self(L);
    int tidx, array_rows;
    query_args(L, &tidx, &array_rows, 0);
    return run(L, lc, 3, 0, tidx, array_rows, 0);
}

/* conn:query_rows(sql, params_or_nil, opts_or_nil) — rows() with the
 * parameters as one table and opts.array = true for array rows. */
static int l_conn_query_rows(lua_State *L)
{
    lconn *lc = self(L);
    int tidx, array_rows;
    query_args(L, &tidx, &array_rows, 1);
    return for_loop(L, run(L, lc, 3, 0, tidx, array_rows, 1));
}

static int l_conn_ping(lua_State *L)
{
    lconn *lc = self(L);
    fsdb_error err;
    if (mysql_ping(lc->c->my) != 0) {
        fsdb_conn_error(lc->c, &err);
        return fsdb_lconn_fail(L, lc, &err);
    }
    fsdb_conn_ok(lc->c);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_conn_in_transaction(lua_State *L)
{
    lconn *lc = self(L);
    lua_pushboolean(L, fsdb_conn_in_transaction(lc->c));
    return 1;
}

static int l_conn_info(lua_State *L)
{
    lconn *lc = self(L);
    MYSQL *my = lc->c->my;
    const char *cipher = mysql_get_ssl_cipher(my);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, (lua_Integer)lc->c->thread_id);
    lua_setfield(L, -2, "thread_id");
    lua_pushstring(L, mysql_get_server_info(my));
    lua_setfield(L, -2, "server_version");
    lua_pushstring(L, mysql_get_host_info(my));
    lua_setfield(L, -2, "host_info");
    lua_pushstring(L, mysql_character_set_name(my));
    lua_setfield(L, -2, "charset");
    if (cipher) {
        lua_pushstring(L, cipher);
        lua_setfield(L, -2, "tls_cipher");
    }
    lua_pushnumber(L, (lua_Number)lc->c->item.idle_limit);
    lua_setfield(L, -2, "wait_timeout");
    lua_pushnumber(L, (lua_Number)(fsdb_now() - lc->c->item.created));
    lua_setfield(L, -2, "age");
    return 1;
}

/* conn:tracked_gtid(): the last_gtid the server reported with the last
 * statement (session tracking, on engines with replicas), nil when it
 * reported none or something that is not a GTID. Connector/C hands the
 * system variable tracker's entries as name, value, name, value… */
static int l_conn_tracked_gtid(lua_State *L)
{
    lconn *lc = self(L);
    MYSQL *my = lc->c->my;
    const char *data = NULL, *gtid = NULL;
    size_t len = 0, glen = 0;
    int is_name = 1, wanted = 0;

    if (mysql_session_track_get_first(my, SESSION_TRACK_SYSTEM_VARIABLES, &data, &len) == 0) {
        do {
            if (is_name)
                wanted = data != NULL && len == 9 && memcmp(data, "last_gtid", 9) == 0;
            else if (wanted)
                gtid = data, glen = len;
            is_name = !is_name;
        } while (mysql_session_track_get_next(my, SESSION_TRACK_SYSTEM_VARIABLES, &data, &len) == 0);
    }
    if (fsdb_codec_plain_gtid(gtid, glen)) /* codec.c: one rule for both transports */
        lua_pushlstring(L, gtid, glen);
    else
        lua_pushnil(L);
    return 1;
}

static int l_conn_thread_id(lua_State *L)
{
    lconn *lc = self(L);
    lua_pushinteger(L, (lua_Integer)lc->c->thread_id);
    return 1;
}

/* Returns the connection to the pool: rolled back (per
 * pool_reset_on_return) or discarded when it cannot be made clean. Clears
 * the handle first; a second close is harmless. Inside a call on this
 * connection (a metamethod or finalizer the call ran) the close happens
 * when the call returns. Serves close and __close. */
static int l_conn_close(lua_State *L)
{
    lconn *lc = fsdb_lconn_check(L, 0);
    if (lc->c && fsdb_conn_request_close(lc->c))
        return 0;
    if (lc->c && lc->e->observed) {
        fsdb_observe(L, lc, 1, "checkin", 0);
        if (lc->c && fsdb_conn_request_close(lc->c)) /* a handler's call still running */
            return 0;
    }
    fsdb_lconn_release(lc, FSDB_RELEASE_RESET);
    return 0;
}

/* The collector's safety net: no I/O here. A connection with an open
 * transaction goes back owing its reset (done at its next checkout,
 * outside any finalizer); one that cannot be made clean is closed. */
static int l_conn_gc(lua_State *L)
{
    lconn *lc = fsdb_lconn_check(L, 0);
    if (lc->c == NULL)
        return 0;
#if LUA_VERSION_NUM >= 504
    lua_warning(L, "fsdb: a connection was garbage-collected without close(); "
                   "it was returned to the pool", 0);
#endif
    fsdb_lconn_release(lc, FSDB_RELEASE_QUIET);
    return 0;
}

static int l_conn_tostring(lua_State *L)
{
    lconn *lc = fsdb_lconn_check(L, 0);
    if (lc->c == NULL)
        lua_pushliteral(L, "fsdb.conn (closed)");
    else
        lua_pushfstring(L, "fsdb.conn (thread %d)", (int)lc->c->thread_id);
    return 1;
}

void fsdb_lconn_register(lua_State *L)
{
    static const luaL_Reg statements[] = {
        {"execute", l_conn_execute},
        {"query", l_conn_query},
        {"rows", l_conn_rows},
        {"query_rows", l_conn_query_rows},
        {"executemany", l_conn_executemany},
        {NULL, NULL}};
    static const luaL_Reg guarded[] = {
        {"ping", l_conn_ping},
        {"in_transaction", l_conn_in_transaction},
        {"info", l_conn_info},
        {"thread_id", l_conn_thread_id},
        {"tracked_gtid", l_conn_tracked_gtid},
        {NULL, NULL}};
    static const luaL_Reg methods[] = {
        {"close", l_conn_close},
        {NULL, NULL}};
    const luaL_Reg *r;
    static const luaL_Reg meta[] = {
        {"__gc", l_conn_gc},
        {"__close", l_conn_close},
        {"__tostring", l_conn_tostring},
        {NULL, NULL}};

    luaL_newmetatable(L, FSDB_CONN_MT);
    fsdb_setfuncs(L, meta);
    lua_newtable(L);
    fsdb_setfuncs(L, methods);
    for (r = guarded; r->name; r++) {
        fsdb_lconn_push_method(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    for (r = statements; r->name; r++) {
        fsdb_lconn_push_stmt_method(L, r->func, r->name);
        lua_setfield(L, -2, r->name);
    }
    lua_setfield(L, -2, "__index");
    /* Lets Lua code (engine.lua) add methods written in Lua. */
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -3, "conn_methods");
    lua_pop(L, 1);
}
