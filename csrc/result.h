/*
 * result.h — turning server rows into Lua values (the only core file that
 * builds Lua values from data).
 *
 * Owns: DESIGN.md "Values". Both protocols go through the same per-kind
 * rules so a value reads the same whether it came as text or binary:
 * NULL → fsdb.null, integers → Lua integers (decimal string when they do not
 * fit: above math.maxinteger on 5.4, beyond ±2^53 on LuaJIT), DECIMAL →
 * string, FLOAT/DOUBLE → number, temporal → MySQL's text format with the
 * column's fractional digits, everything else → byte-exact string.
 */
#ifndef FSDB_RESULT_H
#define FSDB_RESULT_H

#include "compat.h"
#include "conn.h"
#include "stmt.h"

/* Each pushes the result table ({row…}; res.columns comes from its
 * metatable, see result.c; sql_idx: the stack index of the text result's
 * SQL string, which keys its cached column names) and returns 0, or
 * pushes nothing and returns -1
 * with err set. A result past a thousand rows is built with the collector
 * paused; a raise restarts it. FSDB_ROWS_COLUMNAR in array_rows gives
 * columnar.c's form instead. */
int fsdb_result_push_text(lua_State *L, MYSQL *my, MYSQL_RES *res, int sql_idx, int array_rows,
                          fsdb_error *err);
int fsdb_result_push_stmt(lua_State *L, fsdb_conn *c, fsdb_stmt *s, int array_rows,
                          fsdb_error *err);

/* How rows come: arrays in column order instead of keyed by name; for a
 * cursor, one table refilled for every row (query_rows' opts.reuse). */
#define FSDB_ROWS_ARRAY 1
#define FSDB_ROWS_REUSE 2
/* One array per column instead of rows (query's opts.columnar; columnar.c). */
#define FSDB_ROWS_COLUMNAR 4

/* Filling a buffered result (rows or column arrays): a step adds rows to
 * the tables at base.. until limit rows are in (0: no limit) and returns
 * 1 when it stopped at the limit, 0 at the end or on an error it records
 * in ud. fsdb_result_fill runs it with the tables from base to the top of
 * the stack, pausing the collector past a thousand rows (result.c says
 * why); a raise passes through, the collector restarted. */
typedef int (*fsdb_fill_step)(lua_State *L, void *ud, int base, int limit);
void fsdb_result_fill(lua_State *L, int base, fsdb_fill_step step, void *ud);

/* Row by row, for streaming (lcursor.c). names_idx is the absolute stack
 * index of the columns list. Each pushes one row table. */
void fsdb_result_push_columns(lua_State *L, const MYSQL_FIELD *fields, const fsdb_colbuf *cols,
                              unsigned n);
void fsdb_result_text_row(lua_State *L, MYSQL_ROW row, const unsigned long *lengths,
                          const int *kinds, unsigned n, int names_idx, int array_rows);
void fsdb_result_stmt_row(lua_State *L, const fsdb_stmt *s, int names_idx, int array_rows);
/* A row's values, not a table: into t[base + 1 .. base + n] (t an
 * absolute index), for a cursor that refills one row table. */
void fsdb_result_text_store(lua_State *L, MYSQL_ROW row, const unsigned long *lengths,
                            const int *kinds, unsigned n, int t, int base);
void fsdb_result_stmt_store(lua_State *L, const fsdb_stmt *s, int t, int base);
/* The conversion kind of each column, in a userdata it pushes. */
int *fsdb_result_text_kinds(lua_State *L, MYSQL_RES *res);

/* One value, for the protocol codec (lcodec.c): a text cell (NULL = SQL
 * NULL; numeric kinds need s NUL-terminated) or a decoded binary cell. */
void fsdb_result_push_text_value(lua_State *L, int kind, const char *s, unsigned long len);
void fsdb_result_push_bin_value(lua_State *L, const fsdb_colbuf *col);

/* {affected_rows = n, insert_id = n, warnings = n} */
void fsdb_result_push_ok(lua_State *L, unsigned long long affected,
                         unsigned long long insert_id, unsigned warnings);

#endif
