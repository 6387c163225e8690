/*
 * stmtcache.h — the per-connection cache of prepared statements.
 *
 * Owns: finding a statement by its SQL text (LRU, statement_cache_size
 * entries, at least one), dropping one or all, and running a cached
 * statement again once when the server re-prepared it (1615) or its
 * result changed shape (2057). stmt.c knows one statement; this file knows
 * the set of them on a connection; conn.c only clears it.
 */
#ifndef FSDB_STMTCACHE_H
#define FSDB_STMTCACHE_H

#include <stddef.h>
#include "error.h"

struct fsdb_conn;
struct fsdb_stmt;
struct fsdb_param;

/* Finds or prepares the statement for sql on c. NULL with err set. */
struct fsdb_stmt *fsdb_stmt_get(struct fsdb_conn *c, const char *sql, size_t len,
                                fsdb_error *err);

/* Drops one statement from c's cache (after an error that spoils it). */
void fsdb_stmt_forget(struct fsdb_conn *c, struct fsdb_stmt *s);

/* Binds params (exactly s->nparams) and executes. 0 or -1 with err set.
 * Re-prepares once, transparently, when the server asks for it; *sp is
 * then the new statement. */
int fsdb_stmt_execute(struct fsdb_conn *c, struct fsdb_stmt **sp,
                      const struct fsdb_param *params, fsdb_error *err);

/* Drops every cached statement (closing the server's copies). */
void fsdb_stmtcache_clear(struct fsdb_conn *c);

#endif
