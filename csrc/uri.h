/*
 * uri.h — database URLs: parse and render (no Lua, no libmariadb).
 *
 * Owns: the URL grammar of DESIGN.md "Configuration":
 *   scheme://[user[:password]@][host][:port][/database][?opt=val&…]
 * Schemes: mysql, mariadb, mysql+<driver>, mariadb+<driver> (driver ignored).
 * The host part may list several hosts, "h1:3306,h2:3307,[::1]:3308"
 * (libpq's multi-host form), with options target_session_attrs,
 * load_balance_hosts and host_recheck_seconds choosing among them.
 * User, password, host, database and option values are percent-decoded.
 * A host in brackets is IPv6 ("[::1]"); a decoded host starting with '/'
 * is a unix socket path. Every option is validated; an unknown option is an
 * error that names it. The renderer never prints the password.
 *
 * The parser reports what the URL says: a part the URL leaves out stays
 * NULL or 0. The values used instead (host, port, charset, timeouts) are
 * fsdb.options' (lua/fsdb/options.lua), handed in as fsdb_uri_defaults.
 */
#ifndef FSDB_URI_H
#define FSDB_URI_H

#include <stddef.h>
#include "error.h"

typedef enum {
    FSDB_SSL_UNSET = 0, /* not given: Connector/C's default applies */
    FSDB_SSL_DISABLED,
    FSDB_SSL_PREFERRED,
    FSDB_SSL_REQUIRED,
    FSDB_SSL_VERIFY_CA,
    FSDB_SSL_VERIFY_IDENTITY
} fsdb_ssl_mode;

/* libpq's target_session_attrs: which server a multi-host URL connects to. */
typedef enum {
    FSDB_TSA_UNSET = 0,      /* not given: any */
    FSDB_TSA_ANY,
    FSDB_TSA_READ_WRITE,     /* @@read_only = 0 */
    FSDB_TSA_READ_ONLY,      /* @@read_only = 1 */
    FSDB_TSA_PREFER_STANDBY  /* read-only if one answers, else any */
} fsdb_tsa;

/* libpq's load_balance_hosts: the order hosts are tried in. */
typedef enum {
    FSDB_LB_UNSET = 0,       /* not given: disable */
    FSDB_LB_DISABLE,         /* the URL's order */
    FSDB_LB_RANDOM           /* a random order per connect */
} fsdb_lb;

#define FSDB_URI_MAX_HOSTS 16

typedef struct fsdb_uri {
    char *scheme;       /* as written, lowercased, e.g. "mysql+pymysql" */
    char *user;         /* decoded; NULL when absent */
    char *password;     /* decoded; NULL when absent ("" when "user:@") */
    char *host;         /* decoded, brackets stripped; NULL when absent */
    unsigned port;      /* 0 when absent */
    char *database;     /* decoded; NULL when absent or empty */
    char *unix_socket;  /* from ?unix_socket= or a '/' host; NULL otherwise */
    char *charset;      /* NULL when absent */
    char *collation;    /* NULL when absent: the character set's default */
    unsigned connect_timeout; /* seconds; 0 = not given */
    unsigned read_timeout;
    unsigned write_timeout;
    fsdb_ssl_mode ssl_mode;
    char *ssl_ca, *ssl_cert, *ssl_key, *ssl_capath, *ssl_cipher; /* NULL = not given */
    char *auth_plugins; /* comma list of plugin names; NULL = fsdb's safe default */
    int local_infile;   /* 0 (default) or 1 */
    /* A multi-host URL (h1:p1,h2:p2,…): host and port above are the first
     * host, more_host/more_port the others in URL order. n_hosts counts
     * them all (0 in a zeroed struct means 1). A port of 0: not given. */
    unsigned n_hosts;
    char *more_host[FSDB_URI_MAX_HOSTS - 1];
    unsigned more_port[FSDB_URI_MAX_HOSTS - 1];
    fsdb_tsa target_session_attrs;
    fsdb_lb load_balance_hosts;
    unsigned host_recheck_seconds; /* skip a failed host this long; 0 = not given */
} fsdb_uri;

/* What a URL leaves out, as fsdb.options states it (no field may be
 * NULL or 0 where a URL is filled with it). */
typedef struct fsdb_uri_defaults {
    const char *host;
    unsigned port;
    const char *charset;
    unsigned connect_timeout, read_timeout, write_timeout;
} fsdb_uri_defaults;

/* Parses text into *out (which it first zeroes). Returns 0, or -1 with err
 * set (code FSDB_ERR_URL) and *out left empty. Never echoes the password. */
int fsdb_uri_parse(const char *text, fsdb_uri *out, fsdb_error *err);

/* Frees every string in *u (NULL-safe, idempotent) and zeroes it. The
 * password is wiped before it is freed. */
void fsdb_uri_free(fsdb_uri *u);

/* Fills every part *u leaves out (host, each host's port, charset,
 * timeouts) from *d. Returns 0, or -1 on allocation failure (*u unchanged
 * but for the parts already filled). */
int fsdb_uri_fill(fsdb_uri *u, const fsdb_uri_defaults *d);

/* Deep copy; returns 0 or -1 on allocation failure (dst left empty). */
int fsdb_uri_copy(fsdb_uri *dst, const fsdb_uri *src);

/* Renders a URL with the password as "***" into buf (always NUL-terminated
 * when cap > 0). Returns the length the full rendering needs, like
 * snprintf. With d, the canonical form: every host with its port (d's when
 * not given), and the charset and timeouts only when they differ from d's;
 * with d NULL, only what *u holds. */
size_t fsdb_uri_render(const fsdb_uri *u, const fsdb_uri_defaults *d, char *buf, size_t cap);

const char *fsdb_ssl_mode_name(fsdb_ssl_mode m); /* NULL for UNSET */
const char *fsdb_tsa_name(fsdb_tsa t);            /* NULL for UNSET */
const char *fsdb_lb_name(fsdb_lb l);              /* NULL for UNSET */

/* Number of hosts (at least 1) and host i of them (0 = u->host), with its
 * port; NULL and 0 for what the URL left out (fsdb_uri_fill fills them). */
unsigned fsdb_uri_host_count(const fsdb_uri *u);
const char *fsdb_uri_host_at(const fsdb_uri *u, unsigned i, unsigned *port);

#endif
