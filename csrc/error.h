/*
 * error.h — the one error record every core file fills.
 *
 * Owns: the shape of an fsdb error (message, errno, sqlstate) and fsdb's own
 * error codes. Core files never talk through the Lua stack; they fill an
 * fsdb_error and the Lua glue turns it into `nil, err, errno, sqlstate`.
 * Every message starts with "fsdb: " and is one line.
 */
#ifndef FSDB_ERROR_H
#define FSDB_ERROR_H

#include <stddef.h>

#define FSDB_ERRMSG_SIZE 640

/* fsdb's own error numbers (documented in README.md, "Error codes").
 * They sit above every server and Connector/C range. */
enum {
    FSDB_ERR_URL = 9001,          /* malformed URL or bad option value */
    FSDB_ERR_POOL_TIMEOUT = 9002, /* no connection within pool_timeout */
    FSDB_ERR_NOMEM = 9003,        /* allocation failed */
    FSDB_ERR_PARAMS = 9004,       /* parameter count/name mismatch */
    FSDB_ERR_CLOSED = 9005,       /* engine disposed / handle closed */
    FSDB_ERR_FORKED = 9006,       /* connection belongs to another process */
    FSDB_ERR_INTERNAL = 9007,     /* should not happen; please report */
    FSDB_ERR_ON_CONNECT = 9008,   /* the engine's on_connect raised */
    FSDB_ERR_COMMIT_UNKNOWN = 9020, /* the connection died during COMMIT */
    FSDB_ERR_NO_HOST = 9021       /* no host in the role target_session_attrs wants */
};

typedef struct fsdb_error {
    unsigned code;      /* 0 = no error */
    char sqlstate[6];   /* five chars + NUL; "HY000" for client-side errors */
    char message[FSDB_ERRMSG_SIZE];
} fsdb_error;

void fsdb_error_clear(fsdb_error *e);

/* Formats "fsdb: <fmt…>" into e->message, with the hint for a well-known
 * code. sqlstate NULL means "HY000". For fsdb's own messages. */
void fsdb_error_set(fsdb_error *e, unsigned code, const char *sqlstate,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The one setter for what the server or Connector/C reports: message,
 * the hint for a well-known code, and secret (the password, if non-empty)
 * replaced by "***". */
void fsdb_error_server(fsdb_error *e, unsigned code, const char *sqlstate, const char *msg,
                       const char *secret);

/* Appends "; hint: <hint>" when the error has a well-known remedy. */
void fsdb_error_add_hint(fsdb_error *e);

/* For a syntax error in text that holds several statements: says that
 * fsdb runs one statement per call. */
void fsdb_error_hint_multi(fsdb_error *e);

/* Replaces every occurrence of secret (if non-empty), as written or
 * percent-encoded, with "***", and a piece of it cut short where a message
 * can be cut (error.c says where). */
void fsdb_error_scrub(fsdb_error *e, const char *secret);

/* True for the codes that mean the connection is unusable. */
int fsdb_error_is_disconnect(unsigned code);

/* v with decimals (0-3) digits after a point, into buf; returns buf. The
 * C library's %f writes the decimal point of LC_NUMERIC (a comma under
 * de_DE, which a Lua program may set): this never does. For the figures
 * in messages (timeouts, durations). */
const char *fsdb_fixed(char *buf, size_t size, double v, int decimals);

#endif
