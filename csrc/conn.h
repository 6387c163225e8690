/*
 * conn.h — one server connection (libmariadb, no Lua).
 *
 * Owns: connecting with fsdb's fixed client settings (charset, timeouts,
 * TLS, no LOCAL INFILE, no multi-statements, found-rows, no auto-reconnect),
 * per-connection setup (isolation level, init command, reading the
 * server's wait_timeout), liveness checks, reset on return, the two ways
 * to close (politely, or — for a connection inherited across fork() —
 * without a byte reaching the server), and the one state machine every
 * fsdb call on a checked-out connection goes through:
 *
 *   IDLE --enter--> IN_CALL --leave--> IDLE | STREAMING | BROKEN
 *   STREAMING --enter(cursor)--> IN_CALL
 *   any --return to the pool--> CLOSED
 *
 * A close asked for while IN_CALL (by Lua code the call ran: a metamethod,
 * a finalizer) is recorded and carried out by whoever called leave.
 */
#ifndef FSDB_CONN_H
#define FSDB_CONN_H

#include <mysql.h>
#include "error.h"
#include "pool.h"
#include "uri.h"

struct fsdb_stmtcache;
struct fsdb_hosts;

typedef enum fsdb_conn_state {
    FSDB_CONN_IDLE = 0,  /* checked out, ready for a statement */
    FSDB_CONN_IN_CALL,   /* an fsdb call runs on it (Lua code may run meanwhile) */
    FSDB_CONN_STREAMING, /* a cursor reads its result: only the cursor may use it */
    FSDB_CONN_BROKEN,    /* a disconnect, or a result left unread: discard on return */
    FSDB_CONN_CLOSED     /* back in the pool: no handle may use it */
} fsdb_conn_state;

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
    struct fsdb_hosts *hosts; /* the URL's hosts: order and back-off (hosts.c) */
    unsigned max_statement_ms; /* engine option max_statement_time; 0 = none */
    int wsrep_sync_wait;     /* engine option wsrep_sync_wait; -1 = not set */
    int track_gtid;          /* engine with replicas: the server reports last_gtid */
} fsdb_conn_config;

typedef struct fsdb_conn {
    fsdb_pool_item item;     /* first: the pool only sees this */
    MYSQL *my;
    const fsdb_conn_config *cfg;
    unsigned long thread_id;
    fsdb_conn_state state;
    fsdb_conn_state after;   /* IN_CALL returns to this: IDLE or STREAMING */
    int close_requested;     /* asked for while IN_CALL */
    int rolled_back;         /* the server ended the transaction (deadlock) */
    MYSQL_RES *pending;      /* text result being read (freed on close) */
    MYSQL_STMT *pending_stmt; /* prepared statement whose rows are being read */
    int bulk;                /* server takes array binding (MariaDB >= 10.2) */
    unsigned long max_packet; /* the session's max_allowed_packet */
    struct fsdb_stmtcache *stmts; /* prepared statements (stmtcache.c) */
    unsigned host_index;     /* which of the URL's hosts it is connected to */
} fsdb_conn;

/* Connects to one of the URL's hosts (failover.c chooses which). */
fsdb_conn *fsdb_conn_open(const fsdb_conn_config *cfg, fsdb_error *err);

/* Connects to host i of the URL (0 for a one-host URL). */
fsdb_conn *fsdb_conn_open_at(const fsdb_conn_config *cfg, unsigned i, fsdb_error *err);

/* 0 alive, -1 dead. deep adds a COM_PING round trip. */
int fsdb_conn_ping(fsdb_conn *c, int deep);

/* Makes the connection clean for the next user; -1 = discard it. */
int fsdb_conn_reset(fsdb_conn *c);

/* The handle let go of c from a finalizer, where no I/O may happen:
 * 0 = it can go back as it is, 1 = it owes a reset (item.needs_reset;
 * the pool's next checkout does it), -1 = discard it. */
int fsdb_conn_release_quietly(fsdb_conn *c);

/* Handed out by the pool: IDLE. */
void fsdb_conn_checked_out(fsdb_conn *c);

/* Starts a call: IDLE -> IN_CALL, or for a cursor STREAMING -> IN_CALL.
 * Returns NULL, or why the call may not start (the Lua glue raises it). */
const char *fsdb_conn_enter(fsdb_conn *c, int cursor);

/* Ends the call. raised: it ended by a Lua error, so a result it left
 * half read breaks the connection. Returns 1 when a close was asked for
 * meanwhile (the caller closes now). */
int fsdb_conn_leave(fsdb_conn *c, int raised);

/* Inside a call: a close is asked for. 1 = deferred to leave, 0 = the
 * caller closes now. */
int fsdb_conn_request_close(fsdb_conn *c);

/* Inside a call: the result just started is read by a cursor (the call
 * leaves to STREAMING), or the cursor is done with it (back to IDLE). */
void fsdb_conn_stream(fsdb_conn *c, int on);

/* STREAMING? (a cursor's result is open) */
int fsdb_conn_streaming(const fsdb_conn *c);

/* A finalizer let go of an open stream: the connection is BROKEN (no I/O
 * now; it is discarded when it goes back). */
void fsdb_conn_abandon_stream(fsdb_conn *c);

/* Records a failed command: a disconnect breaks the connection, a
 * deadlock ends the transaction. Returns 1 for a disconnect. */
int fsdb_conn_failed(fsdb_conn *c, const fsdb_error *err);

/* A command succeeded: the status flags in its reply are current again. */
void fsdb_conn_ok(fsdb_conn *c);

/* Fills err from the connection's last error (with hint, no password). */
void fsdb_conn_error(fsdb_conn *c, fsdb_error *err);

/* The password, for scrubbing messages (NULL = none). */
const char *fsdb_conn_secret(const fsdb_conn *c);

int fsdb_conn_in_transaction(const fsdb_conn *c);

/* The session's sql_mode has NO_BACKSLASH_ESCAPES (the server says so in
 * every reply). */
int fsdb_conn_no_backslash_escapes(const fsdb_conn *c);

/* COM_QUIT, never waiting for a reply: a result left unread is cut off,
 * not drained. */
void fsdb_conn_close(fsdb_conn *c);
void fsdb_conn_abandon(fsdb_conn *c); /* fork child: nothing reaches the server */

void fsdb_conn_config_free(fsdb_conn_config *cfg);

#endif
