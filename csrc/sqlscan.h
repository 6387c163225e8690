/*
 * sqlscan.h — finds parameter placeholders in SQL text (no Lua, no I/O).
 *
 * Owns: MySQL's lexical rules for what is *not* a placeholder — '…' and "…"
 * strings (backslash escapes and doubled quotes), `…` identifiers, -- and #
 * line comments, block comments — and the rewrite of :name placeholders to
 * the '?' the server understands. A statement uses either '?' or ':name',
 * never both.
 */
#ifndef FSDB_SQLSCAN_H
#define FSDB_SQLSCAN_H

#include <stddef.h>
#include "error.h"

enum { FSDB_SCAN_NONE = 0, FSDB_SCAN_POSITIONAL = '?', FSDB_SCAN_NAMED = ':' };

typedef struct fsdb_sqlscan {
    int style;          /* FSDB_SCAN_NONE, _POSITIONAL or _NAMED */
    unsigned nparams;   /* placeholders found */
    char **names;       /* NAMED: nparams names, in order (may repeat) */
    char *sql;          /* NAMED: text with each :name replaced by '?' */
    size_t sql_len;
    int multi;          /* a ';' is followed by another statement */
} fsdb_sqlscan;

/* Calls found(ud, at, n, name, name_len) for each placeholder outside
 * quotes and comments, in order: at and n are its place in sql ('?' or
 * ':name'), name is NULL for '?' or points at the name (without ':').
 * found returns 0, or -1 to stop the walk (which then returns -1).
 * *multi (when not NULL) tells whether another statement follows a ';'. */
typedef int (*fsdb_sqlscan_fn)(void *ud, size_t at, size_t n, const char *name, size_t name_len);
int fsdb_sqlscan_walk(const char *sql, size_t len, int no_backslash_escapes, fsdb_sqlscan_fn found,
                      void *ud, int *multi);

/* Returns 0, or -1 with err set (mixed styles; an unterminated quote is
 * NOT an error: the server reports that better). no_backslash_escapes
 * follows the server's sql_mode of that name (reported in every reply):
 * then a backslash inside a string is an ordinary character. */
int fsdb_sqlscan_run(const char *sql, size_t len, int no_backslash_escapes, fsdb_sqlscan *out,
                     fsdb_error *err);
void fsdb_sqlscan_free(fsdb_sqlscan *s);

/* 1 when sql holds none of the characters the walk acts on (quotes,
 * comment starts, ';', '?', ':'): then fsdb_sqlscan_run would find no
 * placeholder and no second statement, and can be skipped. */
int fsdb_sqlscan_plain(const char *sql, size_t len);

/* For executemany's multi-row INSERT: when sql (placeholders written '?')
 * is an INSERT or REPLACE whose row is one VALUES (…) group holding every
 * placeholder, sets [*start, *end) to that group, parentheses included,
 * and returns 1; repeating the group, comma-separated, then inserts many
 * rows in one statement. Returns 0 for any other shape (INSERT … SELECT,
 * SET, several groups, a placeholder outside the group, UPDATE, …). */
int fsdb_sqlscan_values_group(const char *sql, size_t len, int no_backslash_escapes,
                              size_t *start, size_t *end);

/* Whether sql is a plain SELECT: one statement that starts with SELECT
 * (after any opening parentheses), takes no locks (FOR UPDATE, FOR SHARE,
 * LOCK IN SHARE MODE), writes nothing (INTO, NEXT VALUE FOR, NEXTVAL,
 * SETVAL), touches no per-connection or per-server state (@variables,
 * GET_LOCK and the other lock functions, LAST_INSERT_ID, FOUND_ROWS,
 * ROW_COUNT, SQL_CALC_FOUND_ROWS, CONNECTION_ID, SLEEP, BENCHMARK, the
 * replication waits) and holds no executable comment. Such a statement may
 * run on a replica, and again after a lost connection. Conservative: any
 * doubt answers 0. A stored function it calls is not seen. */
int fsdb_sqlscan_plain_select(const char *sql, size_t len, int no_backslash_escapes);

#endif
