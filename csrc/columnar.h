/*
 * columnar.h — a buffered result as one Lua array per column (query's
 * opts.columnar): res.columns = {name…}, res[j] = column j's values in row
 * order (fsdb.null for NULL, so #res[j] is the row count), res.by_name[name]
 * = the same array as res[j] (the first of duplicate names wins). Values
 * follow result.h's rules, as rows do.
 */
#ifndef FSDB_COLUMNAR_H
#define FSDB_COLUMNAR_H

#include "compat.h"
#include "conn.h"
#include "stmt.h"

/* Each pushes the result and returns 0, or pushes nothing and returns -1
 * with err set (a server error met while reading the rows). */
int fsdb_columnar_push_text(lua_State *L, MYSQL *my, MYSQL_RES *res, fsdb_error *err);
int fsdb_columnar_push_stmt(lua_State *L, fsdb_conn *c, fsdb_stmt *s, fsdb_error *err);

/* Makes the table at res_idx such a result for n columns named by the
 * array at names_idx (absolute indices): .columns (that array), .by_name
 * and n empty column arrays, which it also pushes, in order, for the rows
 * to be appended. Shared with the protocol codec (lcodec.c). */
void fsdb_columnar_begin(lua_State *L, int res_idx, int names_idx, unsigned n);

#endif
