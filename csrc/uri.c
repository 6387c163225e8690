/*
 * uri.c — database URLs: parse and render (no Lua, no libmariadb).
 *
 * Owns: the URL grammar of uri.h and the wording of its errors.
 *
 * Two promises shape this file:
 *   - A password never reaches an error message. Nothing is echoed before
 *     the scheme is known to be well-formed, and when the URL looks like a
 *     password held a raw '/' or '?' (an '@' appears after the end of the
 *     authority), every error that would echo a piece of the URL is replaced
 *     by one generic message, because that piece may be part of the password.
 *     A host-less URL ("mysql://user:secret/db": no '@', but a ':') reads as
 *     host "user" and port "secret": its host and port are never quoted, as
 *     they may be the user name and the password.
 *   - The password is wiped from memory before it is freed, including the
 *     partial buffer of a password whose percent-decoding failed.
 */
#include "uri.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Not a default: the one host name Connector/C lets a socket go with. */
#define LOCALHOST "localhost"
#define MAX_TIMEOUT 31536000u /* one year, in seconds */
#define ECHO_MAX 60           /* longest piece of a URL quoted in a message */

#define MSG_INVALID "invalid URL: expected mysql://user:password@host:port/database"
/* Said when the host and port might be a user name and password. */
#define HINT_HOSTLESS "; a user name and password go before an '@' and the host: " \
    "mysql://user:password@host/db"

#define MSG_GUARDED MSG_INVALID \
    " (percent-encode '/', '?' and '@' in the user name and password as %%2F, %%3F and %%40)"

#define KNOWN_OPTIONS "charset, collation, connect_timeout, read_timeout, write_timeout, " \
    "ssl_mode, ssl_ca, ssl_cert, ssl_key, ssl_capath, ssl_cipher, auth_plugins, local_infile, " \
    "unix_socket, target_session_attrs, load_balance_hosts, host_recheck_seconds"

/* ------------------------------------------------------------------ */
/* Options                                                            */

enum opt_kind { OPT_CHARSET, OPT_COLLATION, OPT_TIMEOUT, OPT_SSL_MODE, OPT_PATH, OPT_BOOL,
                OPT_SOCKET, OPT_PLUGINS, OPT_TSA, OPT_LB };

/* Kinds whose field is a char * the URL owns. */
#define OWNS_STRING(kind) ((kind) == OPT_CHARSET || (kind) == OPT_COLLATION || \
                           (kind) == OPT_PATH || (kind) == OPT_SOCKET || (kind) == OPT_PLUGINS)
#define MAX_NAME 64 /* the server's limit for character set and collation names */

typedef struct option_def {
    const char *name;
    enum opt_kind kind;
    size_t offset; /* of the field in fsdb_uri */
} option_def;

/* Names of the enumerated options: value i+1 is names[i]. */
static const char *const tsa_names[] = {
    "any", "read-write", "read-only", "prefer-standby", NULL
};
static const char *const lb_names[] = { "disable", "random", NULL };

static const char *const *enum_names(enum opt_kind kind)
{
    return kind == OPT_TSA ? tsa_names : lb_names;
}

/* The order is the rendering order (after unix_socket, which leads). */
static const option_def option_defs[] = {
    { "charset", OPT_CHARSET, offsetof(fsdb_uri, charset) },
    { "collation", OPT_COLLATION, offsetof(fsdb_uri, collation) },
    { "connect_timeout", OPT_TIMEOUT, offsetof(fsdb_uri, connect_timeout) },
    { "read_timeout", OPT_TIMEOUT, offsetof(fsdb_uri, read_timeout) },
    { "write_timeout", OPT_TIMEOUT, offsetof(fsdb_uri, write_timeout) },
    { "ssl_mode", OPT_SSL_MODE, offsetof(fsdb_uri, ssl_mode) },
    { "ssl_ca", OPT_PATH, offsetof(fsdb_uri, ssl_ca) },
    { "ssl_cert", OPT_PATH, offsetof(fsdb_uri, ssl_cert) },
    { "ssl_key", OPT_PATH, offsetof(fsdb_uri, ssl_key) },
    { "ssl_capath", OPT_PATH, offsetof(fsdb_uri, ssl_capath) },
    { "ssl_cipher", OPT_PATH, offsetof(fsdb_uri, ssl_cipher) },
    { "auth_plugins", OPT_PLUGINS, offsetof(fsdb_uri, auth_plugins) },
    { "local_infile", OPT_BOOL, offsetof(fsdb_uri, local_infile) },
    { "unix_socket", OPT_SOCKET, offsetof(fsdb_uri, unix_socket) },
    { "target_session_attrs", OPT_TSA, offsetof(fsdb_uri, target_session_attrs) },
    { "load_balance_hosts", OPT_LB, offsetof(fsdb_uri, load_balance_hosts) },
    { "host_recheck_seconds", OPT_TIMEOUT, offsetof(fsdb_uri, host_recheck_seconds) },
};
#define N_OPTIONS (sizeof option_defs / sizeof option_defs[0])

/* The client authentication plugins of Connector/C 3.3 that auth_plugins
 * may name (csrc/auth.c decides which of them a connection may use). */
static const char *const auth_plugin_names[] = {
    "mysql_native_password", "client_ed25519", "auth_gssapi_client", "caching_sha2_password",
    "sha256_password", "mysql_clear_password", "dialog"
};
#define AUTH_PLUGIN_LIST "mysql_native_password, client_ed25519, auth_gssapi_client, " \
    "caching_sha2_password, sha256_password, mysql_clear_password or dialog"

static const char *const ssl_mode_names[] = {
    NULL, "DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"
};

const char *fsdb_ssl_mode_name(fsdb_ssl_mode m)
{
    if ((int)m <= (int)FSDB_SSL_UNSET || (int)m > (int)FSDB_SSL_VERIFY_IDENTITY)
        return NULL;
    return ssl_mode_names[m];
}

const char *fsdb_tsa_name(fsdb_tsa t)
{
    if ((int)t <= (int)FSDB_TSA_UNSET || (int)t > (int)FSDB_TSA_PREFER_STANDBY)
        return NULL;
    return tsa_names[t - 1];
}

const char *fsdb_lb_name(fsdb_lb l)
{
    if ((int)l <= (int)FSDB_LB_UNSET || (int)l > (int)FSDB_LB_RANDOM)
        return NULL;
    return lb_names[l - 1];
}

unsigned fsdb_uri_host_count(const fsdb_uri *u)
{
    return u->n_hosts > 1 ? u->n_hosts : 1;
}

const char *fsdb_uri_host_at(const fsdb_uri *u, unsigned i, unsigned *port)
{
    const char *h = i == 0 ? u->host : u->more_host[i - 1];
    unsigned pt = i == 0 ? u->port : u->more_port[i - 1];

    if (port != NULL)
        *port = pt;
    return h;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Case-insensitive comparison of a counted string with a C string. */
static int equal_nocase(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (lit[i] == '\0' || lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return 0;
    return lit[n] == '\0';
}

/* A memset the compiler may not drop because the memory is freed next. */
static void wipe(char *s, size_t n)
{
    volatile char *v = s;

    while (n--)
        *v++ = 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void free_str(char **s)
{
    free(*s);
    *s = NULL;
}

/* ------------------------------------------------------------------ */
/* The parser                                                         */

typedef struct parser {
    fsdb_uri *u;
    fsdb_error *err;
    int guard;       /* echoing pieces of the URL could leak the password */
    int hostless;    /* no '@' but a ':': host and port may be user-info */
    int host_given;  /* a non-empty host was written */
    unsigned seen;   /* bit i: option_defs[i] was given */
} parser;

static int fail_nomem(parser *p)
{
    fsdb_error_set(p->err, FSDB_ERR_NOMEM, NULL, "out of memory while parsing a URL");
    return -1;
}

static int fail_guarded(parser *p)
{
    fsdb_error_set(p->err, FSDB_ERR_URL, NULL, MSG_GUARDED);
    return -1;
}

/* Copies at most ECHO_MAX bytes of s into dst for quoting in a message. */
static void echo(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = n > ECHO_MAX ? ECHO_MAX : n;

    if (k > cap - 4)
        k = cap - 4;
    memcpy(dst, s, k);
    if (k < n)
        memcpy(dst + k, "...", 3), k += 3;
    dst[k] = '\0';
}

/* Percent-decodes s[0..n) into a new string. '+' stays '+'. A '%' not
 * followed by two hex digits, or one that decodes to a NUL byte (which
 * would silently cut a C string short), is an error. */
static int decode(parser *p, const char *s, size_t n, char **out)
{
    char *d = malloc(n + 1);
    size_t i, k = 0;

    *out = NULL;
    if (d == NULL)
        return fail_nomem(p);
    for (i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[k++] = s[i];
            continue;
        }
        if (n - i >= 3) {
            int hi = hex_value((unsigned char)s[i + 1]);
            int lo = hex_value((unsigned char)s[i + 2]);

            if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                d[k++] = (char)(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        /* The buffer may hold the first bytes of a password. */
        wipe(d, n + 1);
        free(d);
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL, "invalid percent-encoding in URL");
        return -1;
    }
    d[k] = '\0';
    *out = d;
    return 0;
}

static int is_hostname(const char *s)
{
    for (; *s; s++)
        if (!is_alnum((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
            return 0;
    return 1;
}

/* An IPv6 literal: hex digits, ':' and '.' (for an embedded IPv4), with at
 * least one ':', optionally followed by a zone "%<name>". */
static int is_ipv6(const char *s)
{
    int colons = 0;

    for (; *s && *s != '%'; s++) {
        if (*s == ':')
            colons++;
        else if (hex_value((unsigned char)*s) < 0 && *s != '.')
            return 0;
    }
    if (*s == '%') {
        if (s[1] == '\0')
            return 0;
        for (s++; *s; s++)
            if (!is_alnum((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
                return 0;
    }
    return colons >= 1;
}

/* Parses a decimal number of at most maxdigits digits, no sign. */
static int parse_uint(const char *s, size_t n, size_t maxdigits, unsigned long *out)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > maxdigits)
        return -1;
    for (i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_port(parser *p, const char *s, size_t n)
{
    unsigned long v;
    char shown[ECHO_MAX + 4];

    /* At most nine digits: no overflow, and a few leading zeros pass. */
    if (parse_uint(s, n, 9, &v) == 0 && v >= 1 && v <= 65535) {
        p->u->port = (unsigned)v;
        return 0;
    }
    if (p->guard)
        return fail_guarded(p);
    if (p->hostless) {
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                       "invalid port in URL (expected 1-65535)" HINT_HOSTLESS);
        return -1;
    }
    echo(shown, sizeof shown, s, n);
    fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                   "invalid port '%s' in URL (expected 1-65535)", shown);
    return -1;
}

/* host[:port], or [ipv6][:port]; s[0..n) is the authority after userinfo. */
static int parse_hostport(parser *p, const char *s, size_t n)
{
    const char *host, *port = NULL;
    size_t hlen, plen = 0;
    char *decoded;

    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);

        if (close == NULL) {
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "invalid IPv6 host in URL (missing ']')");
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < s + n) {
            if (close[1] != ':') {
                if (p->guard)
                    return fail_guarded(p);
                fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                               "invalid URL: expected ':' or '/' after the IPv6 host's ']'");
                return -1;
            }
            port = close + 2;
            plen = (size_t)(s + n - port);
        }
        if (decode(p, host, hlen, &decoded) != 0)
            return -1;
        if (!is_ipv6(decoded)) {
            char shown[ECHO_MAX + 4];

            free(decoded);
            if (p->guard)
                return fail_guarded(p);
            if (p->hostless) {
                fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                               "invalid IPv6 host in URL" HINT_HOSTLESS);
                return -1;
            }
            echo(shown, sizeof shown, host, hlen);
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "invalid IPv6 host '[%s]' in URL", shown);
            return -1;
        }
        p->u->host = decoded;
        p->host_given = 1;
    } else {
        const char *colon = memchr(s, ':', n);

        host = s;
        hlen = colon ? (size_t)(colon - s) : n;
        if (colon) {
            port = colon + 1;
            plen = (size_t)(s + n - port);
        }
        if (decode(p, host, hlen, &decoded) != 0)
            return -1;
        if (decoded[0] == '\0') {
            free(decoded);
        } else if (decoded[0] == '/') {
            p->u->unix_socket = decoded;
        } else if (!is_hostname(decoded)) {
            char shown[ECHO_MAX + 4];

            free(decoded);
            if (p->guard)
                return fail_guarded(p);
            if (p->hostless) {
                fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                               "invalid host in URL" HINT_HOSTLESS);
                return -1;
            }
            echo(shown, sizeof shown, host, hlen);
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL, "invalid host '%s' in URL", shown);
            return -1;
        } else {
            p->u->host = decoded;
            p->host_given = 1;
        }
    }
    if (port != NULL)
        return parse_port(p, port, plen);
    return 0;
}

/* Length of the first host of a list: up to a ',' outside brackets. */
static size_t host_item_len(const char *s, size_t n)
{
    size_t i;
    int bracket = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '[')
            bracket = 1;
        else if (s[i] == ']')
            bracket = 0;
        else if (s[i] == ',' && !bracket)
            break;
    }
    return i;
}

/* One host, or a list "h1[:p1],h2[:p2],…" (libpq's multi-host form).
 * Every host of a list must be named: no empty host, no socket path. */
static int parse_hosts(parser *p, const char *s, size_t n)
{
    fsdb_uri *u = p->u;
    size_t len = host_item_len(s, n);
    char *first = NULL;
    unsigned first_port = 0, k = 0;

    if (len == n)
        return parse_hostport(p, s, n);
    for (;;) {
        if (k == FSDB_URI_MAX_HOSTS) {
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "invalid URL: more than %d hosts", FSDB_URI_MAX_HOSTS);
            goto fail;
        }
        p->host_given = 0;
        u->host = NULL;
        u->port = 0;
        if (parse_hostport(p, s, len) != 0)
            goto fail;
        if (!p->host_given || u->unix_socket != NULL) {
            if (p->guard) {
                fail_guarded(p);
                goto fail;
            }
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "invalid URL: every host of a host list needs a name "
                           "(no empty host, no socket path)");
            goto fail;
        }
        if (k == 0) {
            first = u->host;
            first_port = u->port;
        } else {
            u->more_host[k - 1] = u->host;
            u->more_port[k - 1] = u->port;
        }
        u->host = NULL;
        k++;
        if (len == n)
            break;
        s += len + 1;
        n -= len + 1;
        len = host_item_len(s, n);
    }
    u->host = first;
    u->port = first_port;
    u->n_hosts = k;
    p->host_given = 1;
    return 0;
fail:
    /* u->host may hold the failed item; the others are freed with u. */
    free(u->host);
    u->host = first;
    return -1;
}

static int parse_userinfo(parser *p, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;

    if (decode(p, s, ulen, &p->u->user) != 0)
        return -1;
    if (p->u->user[0] == '\0')
        free_str(&p->u->user); /* "mysql://:pw@host": no user name */
    if (colon != NULL)
        return decode(p, colon + 1, (size_t)(s + n - colon - 1), &p->u->password);
    return 0;
}

static int parse_database(parser *p, const char *s, size_t n)
{
    char *db;

    if (memchr(s, '/', n) != NULL) {
        if (p->guard)
            return fail_guarded(p);
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                       "invalid URL: the database name must not contain '/'");
        return -1;
    }
    if (decode(p, s, n, &db) != 0)
        return -1;
    if (strchr(db, '/') != NULL) {
        free(db);
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                       "invalid URL: the database name must not contain '/'");
        return -1;
    }
    if (db[0] == '\0')
        free(db);
    else
        p->u->database = db;
    return 0;
}

static int bad_value(parser *p, const option_def *def, const char *value,
                     const char *expected)
{
    char shown[ECHO_MAX + 4];

    if (p->guard)
        return fail_guarded(p);
    echo(shown, sizeof shown, value, strlen(value));
    fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                   "invalid value '%s' for option %s (expected %s)",
                   shown, def->name, expected);
    return -1;
}

/*
 * Connection charsets fsdb refuses: in big5, cp932, gbk and sjis a
 * multibyte character can end in an ASCII byte ('\\', '`', a letter), so
 * SQL text cannot be scanned or written byte by byte (see fsdb.sqltext);
 * the UCS/UTF-16/32 ones are not client charsets at all.
 */
static const char *const refused_charsets[] = {
    "big5", "cp932", "gbk", "sjis", "ucs2", "utf16", "utf16le", "utf32",
};

static int refuse_charset(parser *p, const char *value)
{
    size_t i;

    for (i = 0; i < sizeof refused_charsets / sizeof *refused_charsets; i++) {
        if (!equal_nocase(value, strlen(value), refused_charsets[i]))
            continue;
        if (p->guard)
            return fail_guarded(p);
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                       i < 4 ? "charset %s is not supported: its multibyte characters can "
                               "contain ASCII bytes such as '\\' and '`', so SQL text "
                               "cannot be written or scanned safely in it; use "
                               "charset=utf8mb4 (the default) and convert at the edges"
                             : "charset %s cannot be a connection charset; use "
                               "charset=utf8mb4 (the default)",
                       refused_charsets[i]);
        return -1;
    }
    return 0;
}

/* The character sets MariaDB and MySQL know (SHOW CHARACTER SET), so that a
 * typo fails when the URL is parsed, not at the first connect (the refused
 * ones above are checked first, for their own message). */
static const char *const known_charsets[] = {
    "armscii8", "ascii", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850",
    "cp852", "cp866", "dec8", "eucjpms", "euckr", "gb2312", "geostd8", "greek", "hebrew",
    "hp8", "keybcs2", "koi8r", "koi8u", "latin1", "latin2", "latin5", "latin7", "macce",
    "macroman", "swe7", "tis620", "ujis", "utf8", "utf8mb3", "utf8mb4",
};

static int unknown_charset(parser *p, const char *value)
{
    char shown[ECHO_MAX + 4];
    size_t i;

    for (i = 0; i < sizeof known_charsets / sizeof *known_charsets; i++)
        if (equal_nocase(value, strlen(value), known_charsets[i]))
            return 0;
    if (p->guard)
        return fail_guarded(p);
    echo(shown, sizeof shown, value, strlen(value));
    fsdb_error_set(p->err, FSDB_ERR_URL, "42000",
                   "unknown charset '%s' in URL (use utf8mb4; SHOW CHARACTER SET lists the others)",
                   shown);
    return -1;
}

/* Validates value and stores it; takes ownership of value. */
static int set_option(parser *p, const option_def *def, char *value)
{
    void *field = (char *)p->u + def->offset;
    unsigned long v;
    int rc = -1;
    size_t i;

    switch (def->kind) {
    case OPT_CHARSET:
    case OPT_COLLATION:
        /* A bare name: it is written into SET NAMES as it is. */
        for (i = 0; value[i]; i++)
            if (!is_alnum((unsigned char)value[i]) && value[i] != '_')
                break;
        if (i == 0 || i > MAX_NAME || value[i] != '\0') {
            rc = bad_value(p, def, value, def->kind == OPT_CHARSET
                                              ? "a character set name such as utf8mb4"
                                              : "a collation name such as utf8mb4_unicode_ci");
            break;
        }
        if (def->kind == OPT_CHARSET
            && (refuse_charset(p, value) != 0 || unknown_charset(p, value) != 0))
            break;
        *(char **)field = value;
        return 0;
    case OPT_SOCKET:
        if (*(char **)field != NULL) { /* already set from a '/' host */
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "invalid URL: a socket path is given both as host and as "
                           "option unix_socket; give it once");
            break;
        }
        /* fall through */
    case OPT_PATH:
        if (value[0] == '\0') {
            rc = bad_value(p, def, value, "a non-empty value");
            break;
        }
        *(char **)field = value;
        return 0;
    case OPT_TIMEOUT:
        /* At most nine digits: no overflow, and a few leading zeros pass. */
        if (parse_uint(value, strlen(value), 9, &v) != 0 || v > MAX_TIMEOUT) {
            rc = bad_value(p, def, value, "whole seconds");
            break;
        }
        *(unsigned *)field = (unsigned)v;
        rc = 0;
        break;
    case OPT_SSL_MODE:
        for (i = 1; i < sizeof ssl_mode_names / sizeof ssl_mode_names[0]; i++)
            if (equal_nocase(value, strlen(value), ssl_mode_names[i]))
                break;
        if (i == sizeof ssl_mode_names / sizeof ssl_mode_names[0]) {
            rc = bad_value(p, def, value,
                           "DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY");
            break;
        }
        *(fsdb_ssl_mode *)field = (fsdb_ssl_mode)i;
        rc = 0;
        break;
    case OPT_PLUGINS: {
        /* A comma list of known names: Connector/C matches the list it is
         * given by substring, so nothing else may reach it. */
        const char *item = value;

        for (;;) {
            size_t n = strcspn(item, ","), k;

            for (k = 0; k < sizeof auth_plugin_names / sizeof auth_plugin_names[0]; k++)
                if (strlen(auth_plugin_names[k]) == n && strncmp(item, auth_plugin_names[k], n) == 0)
                    break;
            if (k == sizeof auth_plugin_names / sizeof auth_plugin_names[0])
                break;
            item += n;
            if (*item == '\0')
                break;
            item++;
        }
        if (*item != '\0' || item == value || item[-1] == ',') {
            rc = bad_value(p, def, value, "a comma-separated list of " AUTH_PLUGIN_LIST);
            break;
        }
        *(char **)field = value;
        return 0;
    }
    case OPT_TSA:
    case OPT_LB: {
        const char *const *names = enum_names(def->kind);

        for (i = 0; names[i] != NULL; i++)
            if (equal_nocase(value, strlen(value), names[i]))
                break;
        if (names[i] == NULL) {
            rc = bad_value(p, def, value, def->kind == OPT_TSA
                                              ? "any, read-write, read-only or prefer-standby"
                                              : "disable or random");
            break;
        }
        *(int *)field = (int)i + 1;
        rc = 0;
        break;
    }
    case OPT_BOOL: {
        static const char *const yes[] = { "1", "true", "on", "yes" };
        static const char *const no[] = { "0", "false", "off", "no" };
        int b = -1;

        for (i = 0; i < 4; i++) {
            if (equal_nocase(value, strlen(value), yes[i]))
                b = 1;
            if (equal_nocase(value, strlen(value), no[i]))
                b = 0;
        }
        if (b < 0) {
            rc = bad_value(p, def, value, "1, 0, true, false, on, off, yes or no");
            break;
        }
        *(int *)field = b;
        rc = 0;
        break;
    }
    }
    free(value);
    return rc;
}

/* One "key=value" segment of the query. */
static int parse_option(parser *p, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    size_t klen = eq ? (size_t)(eq - s) : n;
    char *key, *value;
    size_t i;

    if (decode(p, s, klen, &key) != 0)
        return -1;
    for (i = 0; i < N_OPTIONS; i++)
        if (strcmp(key, option_defs[i].name) == 0)
            break;
    if (i == N_OPTIONS || eq == NULL || (p->seen & (1u << i))) {
        char shown[ECHO_MAX + 4];

        if (p->guard) {
            free(key);
            return fail_guarded(p);
        }
        echo(shown, sizeof shown, key, strlen(key));
        if (i == N_OPTIONS)
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "unknown option '%s' in URL (known: " KNOWN_OPTIONS ")", shown);
        else if (eq == NULL)
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "option '%s' in URL has no value (expected %s=value)",
                           shown, shown);
        else
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "option '%s' is given more than once in URL", shown);
        free(key);
        return -1;
    }
    free(key);
    p->seen |= 1u << i;
    if (decode(p, eq + 1, (size_t)(s + n - eq - 1), &value) != 0)
        return -1;
    return set_option(p, &option_defs[i], value);
}

static int parse_query(parser *p, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, "&");

        /* Empty segments ("a=1&&b=2", a trailing '&') are skipped. */
        if (n > 0 && parse_option(p, s, n) != 0)
            return -1;
        s += n;
        if (*s == '&')
            s++;
    }
    return 0;
}

/* Checks "scheme://" and stores the lowercased scheme; returns the text
 * after "://" or NULL. Nothing of the input is echoed unless it is a
 * well-formed scheme (which cannot hold a password). */
static const char *parse_scheme(parser *p, const char *text)
{
    const char *s = text;
    size_t n, i;
    char *scheme;

    if (!is_alpha((unsigned char)*s))
        goto invalid;
    while (is_alnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    if (strncmp(s, "://", 3) != 0)
        goto invalid;
    n = (size_t)(s - text);
    scheme = dup_n(text, n);
    if (scheme == NULL) {
        fail_nomem(p);
        return NULL;
    }
    for (i = 0; i < n; i++)
        scheme[i] = (char)lower((unsigned char)scheme[i]);
    if (strcmp(scheme, "mysql") == 0 || strcmp(scheme, "mariadb") == 0
        || (strncmp(scheme, "mysql+", 6) == 0 && scheme[6] != '\0')
        || (strncmp(scheme, "mariadb+", 8) == 0 && scheme[8] != '\0')) {
        p->u->scheme = scheme;
        return s + 3;
    }
    free(scheme);
    {
        char shown[ECHO_MAX + 4];

        echo(shown, sizeof shown, text, n);
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                       "unsupported URL scheme '%s' (use mysql:// or mariadb://)", shown);
    }
    return NULL;
invalid:
    fsdb_error_set(p->err, FSDB_ERR_URL, NULL, MSG_INVALID);
    return NULL;
}

static int parse(parser *p, const char *text)
{
    const char *rest, *auth_end, *at = NULL, *hp, *q, *s;

    for (s = text; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "invalid URL: control characters must be percent-encoded");
            return -1;
        }
    }
    rest = parse_scheme(p, text);
    if (rest == NULL)
        return -1;

    auth_end = rest + strcspn(rest, "/?");
    /* An '@' past the authority means a user name or password probably held
     * a raw '/' or '?': what looks like host, port, database or options may
     * be pieces of the password, so none of it is quoted in errors. */
    p->guard = strchr(auth_end, '@') != NULL;

    /* The userinfo ends at the LAST '@' of the authority, so that a raw '@'
     * in a password still works. */
    for (s = rest; s < auth_end; s++)
        if (*s == '@')
            at = s;
    p->hostless = at == NULL && memchr(rest, ':', (size_t)(auth_end - rest)) != NULL;
    /* A ':' before that late '@' ("mysql://u:3306/x@y", "mysql://u:p@h:1/x@y")
     * means a password may have spilled past the authority, where the
     * database name, options and even host and port would show it in every
     * rendering. Such a URL is refused; a late '@' is only accepted when
     * nothing before it can be a password. */
    if (p->guard && memchr(rest, ':', (size_t)(strrchr(auth_end, '@') - rest)) != NULL)
        return fail_guarded(p);
    hp = rest;
    if (at != NULL) {
        if (parse_userinfo(p, rest, (size_t)(at - rest)) != 0)
            return -1;
        hp = at + 1;
    }
    if (parse_hosts(p, hp, (size_t)(auth_end - hp)) != 0)
        return -1;

    q = strchr(auth_end, '?');
    if (q == NULL)
        q = auth_end + strlen(auth_end);
    if (*auth_end == '/' && parse_database(p, auth_end + 1, (size_t)(q - auth_end - 1)) != 0)
        return -1;
    if (*q == '?' && parse_query(p, q + 1) != 0)
        return -1;

    if (p->u->unix_socket != NULL && p->u->n_hosts > 1) {
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                       "invalid URL: option unix_socket cannot be combined with a host list");
        return -1;
    }
    /* Connector/C uses the socket only for "localhost": a socket next to
     * another host would be silently ignored. */
    if (p->u->unix_socket != NULL && p->host_given
        && !equal_nocase(p->u->host, strlen(p->u->host), LOCALHOST)) {
        char shown[ECHO_MAX + 4];

        if (p->guard)
            return fail_guarded(p);
        if (p->hostless) {
            fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                           "invalid URL: option unix_socket needs host localhost or no host"
                           HINT_HOSTLESS);
            return -1;
        }
        echo(shown, sizeof shown, p->u->host, strlen(p->u->host));
        fsdb_error_set(p->err, FSDB_ERR_URL, NULL,
                       "invalid URL: option unix_socket needs host localhost "
                       "or no host, not '%s'", shown);
        return -1;
    }
    /* What the URL leaves out stays out: fsdb.options owns the defaults. */
    return 0;
}

int fsdb_uri_parse(const char *text, fsdb_uri *out, fsdb_error *err)
{
    parser p;

    memset(out, 0, sizeof *out);
    memset(&p, 0, sizeof p);
    p.u = out;
    p.err = err;
    if (text == NULL) {
        fsdb_error_set(err, FSDB_ERR_URL, NULL, MSG_INVALID);
        return -1;
    }
    if (parse(&p, text) != 0) {
        fsdb_uri_free(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Free and copy                                                      */

void fsdb_uri_free(fsdb_uri *u)
{
    size_t i;

    if (u == NULL)
        return;
    if (u->password != NULL)
        wipe(u->password, strlen(u->password));
    free(u->scheme);
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->database);
    for (i = 0; i < FSDB_URI_MAX_HOSTS - 1; i++)
        free(u->more_host[i]);
    for (i = 0; i < N_OPTIONS; i++) {
        const option_def *d = &option_defs[i];

        if (OWNS_STRING(d->kind))
            free(*(char **)((char *)u + d->offset));
    }
    memset(u, 0, sizeof *u);
}

static int copy_str(char **dst, const char *src)
{
    if (src == NULL) {
        *dst = NULL;
        return 0;
    }
    *dst = dup_n(src, strlen(src));
    return *dst == NULL ? -1 : 0;
}

int fsdb_uri_fill(fsdb_uri *u, const fsdb_uri_defaults *d)
{
    unsigned i;

    if (u->host == NULL && d->host != NULL && (u->host = dup_n(d->host, strlen(d->host))) == NULL)
        return -1;
    if (u->charset == NULL && d->charset != NULL
        && (u->charset = dup_n(d->charset, strlen(d->charset))) == NULL)
        return -1;
    if (u->port == 0)
        u->port = d->port;
    for (i = 1; i < fsdb_uri_host_count(u); i++)
        if (u->more_port[i - 1] == 0)
            u->more_port[i - 1] = d->port;
    if (u->connect_timeout == 0)
        u->connect_timeout = d->connect_timeout;
    if (u->read_timeout == 0)
        u->read_timeout = d->read_timeout;
    if (u->write_timeout == 0)
        u->write_timeout = d->write_timeout;
    return 0;
}

int fsdb_uri_copy(fsdb_uri *dst, const fsdb_uri *src)
{
    size_t i;
    int rc = 0;

    memset(dst, 0, sizeof *dst);
    dst->port = src->port;
    dst->connect_timeout = src->connect_timeout;
    dst->read_timeout = src->read_timeout;
    dst->write_timeout = src->write_timeout;
    dst->ssl_mode = src->ssl_mode;
    dst->local_infile = src->local_infile;
    dst->n_hosts = src->n_hosts;
    dst->target_session_attrs = src->target_session_attrs;
    dst->load_balance_hosts = src->load_balance_hosts;
    dst->host_recheck_seconds = src->host_recheck_seconds;
    for (i = 0; i < FSDB_URI_MAX_HOSTS - 1; i++) {
        dst->more_port[i] = src->more_port[i];
        rc |= copy_str(&dst->more_host[i], src->more_host[i]);
    }
    rc |= copy_str(&dst->scheme, src->scheme);
    rc |= copy_str(&dst->user, src->user);
    rc |= copy_str(&dst->password, src->password);
    rc |= copy_str(&dst->host, src->host);
    rc |= copy_str(&dst->database, src->database);
    for (i = 0; i < N_OPTIONS; i++) {
        const option_def *d = &option_defs[i];

        if (OWNS_STRING(d->kind))
            rc |= copy_str((char **)((char *)dst + d->offset),
                           *(char *const *)((const char *)src + d->offset));
    }
    if (rc != 0) {
        fsdb_uri_free(dst);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Rendering                                                          */

typedef struct writer {
    char *buf;
    size_t cap;
    size_t len; /* what the full rendering needs so far */
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        size_t room = w->cap - 1 - w->len;

        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static void put_str(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

/* Writes s, percent-encoding every byte that is neither alphanumeric nor
 * one of the characters in keep. */
static void put_encoded(writer *w, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (is_alnum(c) || (c < 0x80 && strchr(keep, c) != NULL)) {
            put(w, (const char *)&c, 1);
        } else {
            char e[3];

            e[0] = '%';
            e[1] = hex[c >> 4];
            e[2] = hex[c & 15];
            put(w, e, 3);
        }
    }
}

/* Characters left as they are in each part (all others are encoded). */
#define KEEP_USER "-._~!$&'()*+,;="
#define KEEP_HOST "-._~:"
/* '@' is encoded past the authority: a raw one there marks a URL whose
 * password may have spilled out of the authority (see parse). */
#define KEEP_PATH "-._~!$&'()*+,;=:"
#define KEEP_QUERY "-._~!$'()*+,;:/"

static void put_option(writer *w, int *first, const char *name, const char *value)
{
    put(w, *first ? "?" : "&", 1);
    *first = 0;
    put_str(w, name);
    put(w, "=", 1);
    put_encoded(w, value, KEEP_QUERY);
}

/* d's value for a timeout field (0 without d). */
static unsigned timeout_default(const fsdb_uri_defaults *d, size_t offset)
{
    if (d == NULL)
        return 0;
    if (offset == offsetof(fsdb_uri, connect_timeout))
        return d->connect_timeout;
    if (offset == offsetof(fsdb_uri, read_timeout))
        return d->read_timeout;
    return d->write_timeout;
}

size_t fsdb_uri_render(const fsdb_uri *u, const fsdb_uri_defaults *d, char *buf, size_t cap)
{
    writer w;
    int first = 1;
    size_t i;
    char num[16];

    w.buf = buf;
    w.cap = cap;
    w.len = 0;
    put_str(&w, u->scheme ? u->scheme : "mysql");
    put_str(&w, "://");
    if (u->user != NULL || u->password != NULL) {
        if (u->user != NULL)
            put_encoded(&w, u->user, KEEP_USER);
        if (u->password != NULL)
            put_str(&w, ":***");
        put(&w, "@", 1);
    }
    if (u->unix_socket != NULL) {
        if (u->host != NULL || d != NULL)
            put_str(&w, LOCALHOST);
    } else {
        unsigned h;

        for (h = 0; h < fsdb_uri_host_count(u); h++) {
            unsigned port;
            const char *host = fsdb_uri_host_at(u, h, &port);
            char *e = num + sizeof num; /* at most 10 digits plus ':' */

            if (host == NULL && d != NULL)
                host = d->host;
            if (port == 0 && d != NULL)
                port = d->port;
            if (h > 0)
                put(&w, ",", 1);
            if (host == NULL) {
                /* "mysql://:3307/db" */
            } else if (strchr(host, ':') != NULL) {
                put(&w, "[", 1);
                put_encoded(&w, host, KEEP_HOST);
                put(&w, "]", 1);
            } else {
                put_encoded(&w, host, KEEP_HOST);
            }
            if (port == 0)
                continue;
            *--e = '\0';
            do {
                *--e = (char)('0' + port % 10);
                port /= 10;
            } while (port > 0);
            *--e = ':';
            put_str(&w, e);
        }
    }
    if (u->database != NULL) {
        put(&w, "/", 1);
        put_encoded(&w, u->database, KEEP_PATH);
    }

    if (u->unix_socket != NULL)
        put_option(&w, &first, "unix_socket", u->unix_socket);
    for (i = 0; i < N_OPTIONS; i++) {
        const option_def *od = &option_defs[i];
        const void *field = (const char *)u + od->offset;

        switch (od->kind) {
        case OPT_CHARSET: {
            const char *cs = *(char *const *)field;

            if (cs != NULL && !(d != NULL && d->charset != NULL
                                && equal_nocase(cs, strlen(cs), d->charset)))
                put_option(&w, &first, od->name, cs);
            break;
        }
        case OPT_COLLATION:
        case OPT_PATH:
        case OPT_PLUGINS:
            if (*(char *const *)field != NULL)
                put_option(&w, &first, od->name, *(char *const *)field);
            break;
        case OPT_TIMEOUT: {
            unsigned v = *(const unsigned *)field;
            char *e = num + sizeof num;

            if (v == 0 || v == timeout_default(d, od->offset))
                break;
            *--e = '\0';
            do {
                *--e = (char)('0' + v % 10);
                v /= 10;
            } while (v > 0);
            put_option(&w, &first, od->name, e);
            break;
        }
        case OPT_SSL_MODE: {
            const char *name = fsdb_ssl_mode_name(*(const fsdb_ssl_mode *)field);

            if (name != NULL)
                put_option(&w, &first, od->name, name);
            break;
        }
        case OPT_BOOL:
            if (*(const int *)field)
                put_option(&w, &first, od->name, "1");
            break;
        case OPT_TSA:
        case OPT_LB:
            if (*(const int *)field > 0)
                put_option(&w, &first, od->name, enum_names(od->kind)[*(const int *)field - 1]);
            break;
        case OPT_SOCKET:
            break; /* rendered first, above */
        }
    }

    if (cap > 0)
        buf[w.len < cap ? w.len : cap - 1] = '\0';
    return w.len;
}
