/*
 * conn.h — one server connection (libmariadb, no Lua).
 *
 * Owns: connecting with fsdb's fixed client settings (charset, timeouts,
 * TLS, no LOCAL INFILE, no multi-statements, found-rows, no auto-reconnect),
 * per-connection setup (isolation level, init command, reading the
 * server's wait_timeout), liveness checks, reset on return, and the two ways
 * to close: politely, or — for a connection inherited across fork() —
 * without a byte reaching the server.
 */
#ifndef FSDB_CONN_H
#define FSDB_CONN_H

#include <mysql.h>
#include "error.h"
#include "pool.h"
#include "uri.h"

struct fsdb_stmt;

enum { /* pool_reset_on_return */
    FSDB_RESET_NONE = 0,
    FSDB_RESET_ROLLBACK,
    FSDB_RESET_COMMIT,
    FSDB_RESET_CONNECTION
};

/* How executemany sends its sets (engine option executemany_mode). */
enum {
    FSDB_MANY_AUTO = 0, /* array binding, else multi-row VALUES, else one per set */
    FSDB_MANY_VALUES,   /* multi-row VALUES where the statement allows, else one per set */
    FSDB_MANY_EACH      /* one execute per set */
};

typedef struct fsdb_conn_config {
    fsdb_uri uri;
    char *init_command;      /* NULL = none */
    char *isolation_level;   /* e.g. "READ COMMITTED"; NULL = server default */
    unsigned stmt_cache_size; /* prepared statements kept per connection */
    int reset_on_return;
    int executemany_mode;    /* FSDB_MANY_* */
} fsdb_conn_config;

typedef struct fsdb_conn {
    fsdb_pool_item item;     /* first: the pool only sees this */
    MYSQL *my;
    const fsdb_conn_config *cfg;
    unsigned long thread_id;
    int busy;                /* a result is being read: dirty if still set */
    MYSQL_RES *pending;      /* text result being read (freed on close) */
    int bulk;                /* server takes array binding (MariaDB >= 10.2) */
    unsigned long max_packet; /* the session's max_allowed_packet */
    struct fsdb_stmt **stmts; /* statement cache, LRU by use tick */
    unsigned nstmts;
    unsigned long tick;
} fsdb_conn;

fsdb_conn *fsdb_conn_open(const fsdb_conn_config *cfg, fsdb_error *err);

/* 0 alive, -1 dead. deep adds a COM_PING round trip. */
int fsdb_conn_ping(fsdb_conn *c, int deep);

/* Makes the connection clean for the next user; -1 = discard it. */
int fsdb_conn_reset(fsdb_conn *c);

/* Fills err from the connection's last error (with hint, no password). */
void fsdb_conn_error(fsdb_conn *c, fsdb_error *err);

int fsdb_conn_in_transaction(const fsdb_conn *c);

/* The session's sql_mode has NO_BACKSLASH_ESCAPES (the server says so in
 * every reply). */
int fsdb_conn_no_backslash_escapes(const fsdb_conn *c);

void fsdb_conn_close(fsdb_conn *c);   /* polite: COM_QUIT */
void fsdb_conn_abandon(fsdb_conn *c); /* fork child: nothing reaches the server */

/* Drops every cached prepared statement. */
void fsdb_conn_clear_stmts(fsdb_conn *c);

void fsdb_conn_config_free(fsdb_conn_config *cfg);

#endif
