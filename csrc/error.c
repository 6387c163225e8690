/*
 * error.c — filling fsdb_error, adding hints, scrubbing secrets.
 *
 * Owns: the wording of hints for the failures users hit most (the seed
 * documents' troubleshooting table) and the list of disconnect codes.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void fsdb_error_clear(fsdb_error *e)
{
    e->code = 0;
    e->sqlstate[0] = '\0';
    e->message[0] = '\0';
}

void fsdb_error_set(fsdb_error *e, unsigned code, const char *sqlstate,
                    const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    e->code = code;
    snprintf(e->sqlstate, sizeof e->sqlstate, "%s", sqlstate ? sqlstate : "HY000");
    n = snprintf(e->message, sizeof e->message, "fsdb: ");
    va_start(ap, fmt);
    vsnprintf(e->message + n, sizeof e->message - (size_t)n, fmt, ap);
    va_end(ap);
    /* Keep it one line: server messages can carry newlines. */
    for (p = e->message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fsdb_error_add_hint(e);
}

void fsdb_error_server(fsdb_error *e, unsigned code, const char *sqlstate, const char *msg,
                       const char *secret)
{
    fsdb_error_set(e, code, sqlstate && *sqlstate ? sqlstate : NULL, "%s", msg ? msg : "");
    fsdb_error_scrub(e, secret);
}

static const char *hint_for(unsigned code)
{
    switch (code) {
    case 2002: /* can't connect through socket */
    case 2003: /* can't connect to TCP host */
    case 2005: /* unknown host */
        return "check DB_HOST/DB_PORT (or DB_SOCKET) and that the server is running";
    case 1045: /* access denied */
    case 1698:
        return "check DB_USER/DB_PASSWORD and the user's grants (SHOW GRANTS FOR 'user'@'host')";
    case 1044: /* access denied to database: also what a missing one looks like */
        return "the database may not exist or the user has no grant on it "
               "(check DB_NAME; SHOW GRANTS FOR 'user'@'host')";
    case 1049:
        return "create it: CREATE DATABASE name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci";
    case 2006:
    case 2013:
    case 4031:
        return "the connection was lost: the server closed it (idle past wait_timeout, restart, "
               "KILL, a packet over max_allowed_packet) or read_timeout/write_timeout expired; "
               "set pool_recycle below the server's wait_timeout and keep pool_pre_ping on";
    case 1153:
    case 2020:
        return "the packet exceeds max_allowed_packet; raise it on the server or send smaller data";
    case 1366:
    case 1300:
        return "the text is not valid in the column's character set; use utf8mb4 columns and connection charset";
    case 1253: /* COLLATION '…' is not valid for CHARACTER SET '…' */
    case 1273: /* Unknown collation */
        return "the URL's collation option must name a collation of its charset "
               "(SHOW COLLATION LIKE 'utf8mb4%' lists them)";
    case FSDB_ERR_POOL_TIMEOUT:
        return "return connections promptly (conn:close()) or raise pool_size/max_overflow";
    default:
        return NULL;
    }
}

void fsdb_error_add_hint(fsdb_error *e)
{
    const char *hint = hint_for(e->code);
    size_t len = strlen(e->message);
    const char *q1, *q2;

    if (hint == NULL || strstr(e->message, "; hint: ") != NULL)
        return;
    /* "Unknown database 'store'": name it in the CREATE DATABASE hint. */
    if (e->code == 1049 && (q1 = strchr(e->message, '\'')) != NULL &&
        (q2 = strchr(q1 + 1, '\'')) != NULL && q2 - q1 - 1 < 200) {
        snprintf(e->message + len, sizeof e->message - len,
                 "; hint: create it: CREATE DATABASE `%.*s` CHARACTER SET utf8mb4 "
                 "COLLATE utf8mb4_unicode_ci",
                 (int)(q2 - q1 - 1), q1 + 1);
        return;
    }
    snprintf(e->message + len, sizeof e->message - len, "; hint: %s", hint);
}

void fsdb_error_hint_multi(fsdb_error *e)
{
    size_t len = strlen(e->message);
    if (e->code != 1064 || strstr(e->message, "; hint: ") != NULL)
        return;
    snprintf(e->message + len, sizeof e->message - len,
             "; hint: one statement per call (multiple statements in one string are refused)");
}

void fsdb_error_scrub(fsdb_error *e, const char *secret)
{
    char out[FSDB_ERRMSG_SIZE];
    const char *src = e->message;
    size_t slen, n = 0;

    if (secret == NULL || (slen = strlen(secret)) == 0)
        return;
    /* One forward pass into a copy, so a secret that contains '*' cannot
     * match its own replacement. */
    while (*src && n + 1 < sizeof out) {
        if (strncmp(src, secret, slen) == 0) {
            if (n + 3 + 1 > sizeof out)
                break;
            memcpy(out + n, "***", 3);
            n += 3;
            src += slen;
        } else {
            out[n++] = *src++;
        }
    }
    out[n] = '\0';
    memcpy(e->message, out, n + 1);
}

int fsdb_error_is_disconnect(unsigned code)
{
    switch (code) {
    case 1153: /* packet over max_allowed_packet: the server hangs up after it */
    case 1927: /* connection was killed */
    case 2006: /* server has gone away */
    case 2013: /* lost connection during query */
    case 2014: /* commands out of sync: the protocol state is unknown */
    case 2026: /* TLS error */
    case 2027: /* malformed packet */
    case 2055: /* lost connection at … system error */
    case 4031: /* disconnected by the server (wait_timeout) */
    case 5013: /* Connector/C: server closed the connection */
    case 5014: /* Connector/C: read error */
        return 1;
    default:
        return 0;
    }
}
