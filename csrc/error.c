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

const char *fsdb_fixed(char *buf, size_t size, double v, int decimals)
{
    static const unsigned scale[] = {1, 10, 100, 1000};
    unsigned long long units;
    double x;
    int neg = v < 0;

    if (decimals < 0)
        decimals = 0;
    if (decimals > 3)
        decimals = 3;
    if (!(v > -1e15 && v < 1e15)) { /* NaN, infinities, huge: no point to write */
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    x = (neg ? -v : v) * scale[decimals] + 0.5;
    units = (unsigned long long)x;
    if (neg && units == 0)
        neg = 0;
    if (decimals == 0)
        snprintf(buf, size, "%s%llu", neg ? "-" : "", units);
    else
        snprintf(buf, size, "%s%llu.%0*llu", neg ? "-" : "", units / scale[decimals], decimals,
                 units % scale[decimals]);
    return buf;
}

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

/* Scrubbing. The secret is matched as written or percent-encoded, byte by
 * byte ('%' and two hex digits of either case), since a URL may hold it
 * either way. Besides every whole occurrence, a piece of the secret that
 * was cut short is masked: the text just before a place where a message
 * can be cut that matches the start of the secret. Such places are the end
 * of the message, the start of an appended "; hint: ", an ellipsis ("...",
 * how the server and fsdb shorten a quoted value) and where Connector/C's
 * 512-byte error buffer ended (SCRUB_CONNECTOR_CUT: fsdb_error_server puts
 * its message right after "fsdb: "). A piece there of at least
 * SCRUB_MIN_PIECE bytes is masked; when the buffer is known to be full (the
 * message reaches that cut, or fills fsdb's own buffer) a piece of any
 * length is, since then the text surely went on: masking a lone byte that
 * only looks like the secret's first costs little, showing it costs more.
 * Three bytes: shorter pieces are everywhere in ordinary text ("t'", "ab"),
 * and masking them at every cut would garble messages for nothing. */
#define SCRUB_MIN_PIECE 3
#define SCRUB_CONNECTOR_CUT (6 + 511)
#define SCRUB_MAX_CUTS 16

static int scrub_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Does s start with byte c of the secret, as itself or as "%XX"? Returns
 * the bytes of s it takes (1 or 3), or 0. avail: bytes of s that count. */
static size_t scrub_byte(const char *s, size_t avail, unsigned char c)
{
    if (avail >= 1 && (unsigned char)s[0] == c)
        return 1;
    if (avail >= 3 && s[0] == '%' && scrub_hex((unsigned char)s[1]) == (c >> 4)
        && scrub_hex((unsigned char)s[2]) == (c & 15))
        return 3;
    return 0;
}

/* The length of the whole secret matched at s[0..n), or 0. */
static size_t scrub_whole(const char *s, size_t n, const char *secret, size_t slen)
{
    size_t i, k = 0, step;

    for (i = 0; i < slen; i++) {
        step = scrub_byte(s + k, n - k, (unsigned char)secret[i]);
        if (step == 0)
            return 0;
        k += step;
    }
    return k;
}

/* Is s[0..n) the start of the secret? An escape cut after '%' or after its
 * first hex digit counts. */
static int scrub_is_start(const char *s, size_t n, const char *secret, size_t slen)
{
    size_t i = 0, k = 0, step;

    while (k < n) {
        unsigned char c;

        if (i == slen)
            return 0;
        c = (unsigned char)secret[i++];
        step = scrub_byte(s + k, n - k, c);
        if (step == 0) {
            /* "%" or "%X" at the very end: an escape of c cut short. */
            return s[k] == '%' && (n - k == 1 || (n - k == 2 && scrub_hex((unsigned char)s[k + 1]) == (c >> 4)));
        }
        k += step;
    }
    return 1;
}

/* Records in mask_end[] the longest piece ending at cut that is the start
 * of the secret and at least min bytes long. */
static void scrub_cut(const char *msg, size_t cut, size_t min, const char *secret, size_t slen,
                      unsigned short *mask_end)
{
    size_t from = cut > 3 * slen ? cut - 3 * slen : 0, s;

    if (strncmp(msg, "fsdb: ", 6) == 0 && from < 6)
        from = 6; /* never fsdb's own prefix */
    for (s = from; s + min <= cut; s++) {
        if (scrub_is_start(msg + s, cut - s, secret, slen)) {
            if (mask_end[s] < cut)
                mask_end[s] = (unsigned short)cut;
            return;
        }
    }
}

void fsdb_error_scrub(fsdb_error *e, const char *secret)
{
    static const char *const markers[] = { "; hint: ", "..." };
    char out[FSDB_ERRMSG_SIZE];
    unsigned short mask_end[FSDB_ERRMSG_SIZE];
    const char *msg = e->message, *m;
    size_t slen, len, n = 0, i, k, step;

    if (secret == NULL || (slen = strlen(secret)) == 0)
        return;
    len = strlen(msg);
    memset(mask_end, 0, sizeof mask_end);
    scrub_cut(msg, len, len + 1 >= sizeof e->message ? 1 : SCRUB_MIN_PIECE, secret, slen,
              mask_end);
    if (len >= SCRUB_CONNECTOR_CUT)
        scrub_cut(msg, SCRUB_CONNECTOR_CUT, 1, secret, slen, mask_end);
    for (k = 0; k < sizeof markers / sizeof markers[0]; k++)
        for (i = 0, m = msg; i < SCRUB_MAX_CUTS && (m = strstr(m, markers[k])) != NULL; i++, m++)
            scrub_cut(msg, (size_t)(m - msg), SCRUB_MIN_PIECE, secret, slen, mask_end);

    /* One forward pass into a copy, so a secret that contains '*' cannot
     * match its own replacement. */
    i = 0;
    while (i < len && n + 1 < sizeof out) {
        if (mask_end[i] > i)
            step = mask_end[i] - i;
        else
            step = scrub_whole(msg + i, len - i, secret, slen);
        if (step > 0) {
            if (n + 3 + 1 > sizeof out)
                n = sizeof out - 4; /* no room: the mask ends the message */
            memcpy(out + n, "***", 3);
            n += 3;
            i += step;
        } else {
            out[n++] = msg[i++];
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
