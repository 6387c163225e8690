/*
 * test_uri.c — table-driven tests of csrc/uri.c (no framework, no Lua).
 *
 * Build and run from the repository root:
 *   gcc -Wall -Wextra -Icsrc tests/c/test_uri.c csrc/uri.c csrc/error.c -o test_uri
 *   ./test_uri
 * Prints one line per failure and ends with "N passed, N failed".
 *
 * Each parse case gives the whole expected result as one line (see
 * describe()) or the exact error text; errors are also checked for the
 * password text, which must never appear in them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "uri.h"


/* fsdb.options' values, as the Lua glue hands them in. */
static const fsdb_uri_defaults D = { "localhost", 3306, "utf8mb4", 10, 300, 60, 10 };

static void check(int ok, const char *what, const char *input, const char *got,
                  const char *want)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s: %s\n  got:  %s\n  want: %s\n", what, input,
           got ? got : "(null)", want ? want : "(null)");
}

/* One line with every field the URL set (the scheme always): no field
 * appears that the URL left out, so a default creeping back into the parser
 * shows up in every case. */
static void describe(const fsdb_uri *u, char *buf, size_t cap)
{
    size_t n = 0;

#define ADD(...) (n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__))
    ADD("%s", u->scheme);
    if (u->user)
        ADD(" user=%s", u->user);
    if (u->password)
        ADD(" password=%s", u->password);
    if (u->host)
        ADD(" host=%s", u->host);
    if (u->port)
        ADD(" port=%u", u->port);
    if (u->database)
        ADD(" db=%s", u->database);
    if (u->unix_socket)
        ADD(" socket=%s", u->unix_socket);
    if (u->charset)
        ADD(" charset=%s", u->charset);
    if (u->collation)
        ADD(" collation=%s", u->collation);
    if (u->connect_timeout)
        ADD(" connect_timeout=%u", u->connect_timeout);
    if (u->read_timeout)
        ADD(" read_timeout=%u", u->read_timeout);
    if (u->write_timeout)
        ADD(" write_timeout=%u", u->write_timeout);
    if (u->ssl_mode)
        ADD(" ssl_mode=%s", fsdb_ssl_mode_name(u->ssl_mode));
    if (u->ssl_ca)
        ADD(" ssl_ca=%s", u->ssl_ca);
    if (u->ssl_cert)
        ADD(" ssl_cert=%s", u->ssl_cert);
    if (u->ssl_key)
        ADD(" ssl_key=%s", u->ssl_key);
    if (u->ssl_capath)
        ADD(" ssl_capath=%s", u->ssl_capath);
    if (u->ssl_cipher)
        ADD(" ssl_cipher=%s", u->ssl_cipher);
    if (u->local_infile)
        ADD(" local_infile=%d", u->local_infile);
    if (fsdb_uri_host_count(u) > 1) {
        unsigned i, port;

        ADD(" hosts=");
        for (i = 0; i < fsdb_uri_host_count(u); i++) {
            const char *h = fsdb_uri_host_at(u, i, &port);

            ADD("%s%s", i ? "," : "", h);
            if (port)
                ADD(":%u", port);
        }
    }
    if (u->target_session_attrs)
        ADD(" tsa=%s", fsdb_tsa_name(u->target_session_attrs));
    if (u->load_balance_hosts)
        ADD(" lb=%s", fsdb_lb_name(u->load_balance_hosts));
    if (u->host_recheck_seconds)
        ADD(" recheck=%u", u->host_recheck_seconds);
#undef ADD
}

typedef struct parse_case {
    const char *in;
    const char *want;   /* describe() of the result, or NULL when an error is expected */
    const char *error;  /* exact message when want is NULL */
    const char *secret; /* must not appear in the error (NULL: nothing to check) */
} parse_case;

#define E_INVALID "fsdb: invalid URL: expected mysql://user:password@host:port/database"
#define E_GUARDED E_INVALID " (percent-encode '/', '?' and '@' in the user name " \
    "and password as %2F, %3F and %40)"
#define HINT_HOSTLESS "; a user name and password go before an '@' and the host: " \
    "mysql://user:password@host/db"
#define E_HOSTLESS_PORT "fsdb: invalid port in URL (expected 1-65535)" HINT_HOSTLESS
#define E_PCT "fsdb: invalid percent-encoding in URL"
#define E_KNOWN "(known: charset, collation, connect_timeout, read_timeout, write_timeout, ssl_mode, " \
    "ssl_ca, ssl_cert, ssl_key, ssl_capath, ssl_cipher, auth_plugins, local_infile, unix_socket, " \
    "target_session_attrs, load_balance_hosts, host_recheck_seconds)"
#define E_SSL "(expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)"
#define E_BOOL "(expected 1, 0, true, false, on, off, yes or no)"

static const parse_case parse_cases[] = {
    /* schemes */
    { "mysql://u:p@h/db", "mysql user=u password=p host=h db=db", NULL, NULL },
    { "MySQL://h", "mysql host=h", NULL, NULL },
    { "mariadb://h", "mariadb host=h", NULL, NULL },
    { "mysql+pymysql://h", "mysql+pymysql host=h", NULL, NULL },
    { "MYSQL+MySQLdb://h", "mysql+mysqldb host=h", NULL, NULL },
    { "mariadb+mariadbconnector://h", "mariadb+mariadbconnector host=h", NULL, NULL },
    { "postgresql://u:p@h/db", NULL, "fsdb: unsupported URL scheme 'postgresql' (use mysql:// or mariadb://)", "p@h" },
    { "mysqlx://h", NULL, "fsdb: unsupported URL scheme 'mysqlx' (use mysql:// or mariadb://)", NULL },
    { "mysql+://h", NULL, "fsdb: unsupported URL scheme 'mysql+' (use mysql:// or mariadb://)", NULL },
    { "sqlite:///x.db", NULL, "fsdb: unsupported URL scheme 'sqlite' (use mysql:// or mariadb://)", NULL },
    { "u:secret@h/db", NULL, E_INVALID, "secret" },
    { "mysql:/h", NULL, E_INVALID, NULL },
    { "", NULL, E_INVALID, NULL },
    { "://h", NULL, E_INVALID, NULL },
    { "user:secret://h", NULL, E_INVALID, "secret" },
    { "mysql://h/db\n", NULL, "fsdb: invalid URL: control characters must be percent-encoded", NULL },

    /* host lists (libpq's multi-host form) */
    { "mysql://u:p@h1:3306,h2:3307,[::1]:3308/db",
      "mysql user=u password=p host=h1 port=3306 db=db "
      "hosts=h1:3306,h2:3307,::1:3308", NULL, NULL },
    { "mysql://h1,h2", "mysql host=h1 hosts=h1,h2", NULL, NULL },
    { "mysql://[::1],[::2]:7", "mysql host=::1 hosts=::1,::2:7", NULL, NULL },
    { "mysql://u:a,b@h1,h2", "mysql user=u password=a,b host=h1 "
      "hosts=h1,h2", NULL, NULL },
    { "mysql://h1,h2/db?target_session_attrs=read-write&load_balance_hosts=random&host_recheck_seconds=5",
      "mysql host=h1 db=db hosts=h1,h2 tsa=read-write lb=random "
      "recheck=5", NULL, NULL },
    { "mysql://h?target_session_attrs=READ-ONLY", "mysql host=h tsa=read-only",
      NULL, NULL },
    { "mysql://h?target_session_attrs=prefer-standby&load_balance_hosts=disable",
      "mysql host=h tsa=prefer-standby lb=disable", NULL, NULL },
    { "mysql://h?target_session_attrs=any", "mysql host=h tsa=any", NULL, NULL },
    { "mysql://h?target_session_attrs=primary", NULL, "fsdb: invalid value 'primary' for option "
      "target_session_attrs (expected any, read-write, read-only or prefer-standby)", NULL },
    { "mysql://h?load_balance_hosts=round", NULL, "fsdb: invalid value 'round' for option "
      "load_balance_hosts (expected disable or random)", NULL },
    { "mysql://h1,,h2", NULL, "fsdb: invalid URL: every host of a host list needs a name "
      "(no empty host, no socket path)", NULL },
    { "mysql://h1,", NULL, "fsdb: invalid URL: every host of a host list needs a name "
      "(no empty host, no socket path)", NULL },
    { "mysql://h1,:3307", NULL, "fsdb: invalid URL: every host of a host list needs a name "
      "(no empty host, no socket path)", NULL },
    { "mysql://h1,%2Ftmp%2Fs.sock", NULL, "fsdb: invalid URL: every host of a host list needs a name "
      "(no empty host, no socket path)", NULL },
    /* no '@': the port is not quoted (it could be a password) */
    { "mysql://h1,h2:0", NULL, "fsdb: invalid port in URL (expected 1-65535); a user name and password go before an '@' and the host: mysql://user:password@host/db", NULL },
    { "mysql://h1,bad host", NULL, "fsdb: invalid host 'bad host' in URL", NULL },
    { "mysql://localhost,h2?unix_socket=/s", NULL,
      "fsdb: invalid URL: option unix_socket cannot be combined with a host list", NULL },
    { "mysql://u:se/cret@h1,h2:x/db", NULL, E_GUARDED, "cret" },
    { "mysql://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", NULL, "fsdb: invalid URL: more than 16 hosts", NULL },
    { "mysql://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p",
      "mysql host=a hosts=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", NULL, NULL },

    /* userinfo */
    { "mysql://u@h", "mysql user=u host=h", NULL, NULL },
    { "mysql://u:@h", "mysql user=u password= host=h", NULL, NULL },
    { "mysql://:pw@h", "mysql password=pw host=h", NULL, NULL },
    { "mysql://@h", "mysql host=h", NULL, NULL },
    { "mysql://us%65r:p%40ss%3Aw%2Frd%2542@h/db",
      "mysql user=user password=p@ss:w/rd%42 host=h db=db", NULL, NULL },
    { "mysql://u:p@ss@h:3307/db", "mysql user=u password=p@ss host=h port=3307 db=db", NULL, NULL },
    { "mysql://u:a:b+c@h", "mysql user=u password=a:b+c host=h", NULL, NULL },
    { "mysql://u:%E2%82%AC@h", "mysql user=u password=\xE2\x82\xAC host=h", NULL, NULL },
    { "mysql://u:se%ZZcret@h", NULL, E_PCT, "se" },
    { "mysql://u:secret%4@h", NULL, E_PCT, "secret" },
    { "mysql://u:secret%@h", NULL, E_PCT, "secret" },
    { "mysql://u:se%00cret@h", NULL, E_PCT, "cret" },
    { "mysql://u%ZZ@h", NULL, E_PCT, NULL },

    /* hosts */
    { "mysql://", "mysql", NULL, NULL },
    { "mysql://u:p@/db", "mysql user=u password=p db=db", NULL, NULL },
    { "mysql://:3307", "mysql port=3307", NULL, NULL },
    { "mysql://db-1.example.com", "mysql host=db-1.example.com", NULL, NULL },
    { "mysql://[::1]", "mysql host=::1", NULL, NULL },
    { "mysql://u:p@[::1]:3307/db", "mysql user=u password=p host=::1 port=3307 db=db", NULL, NULL },
    { "mysql://[fe80::1%25eth0]:3307", "mysql host=fe80::1%eth0 port=3307", NULL, NULL },
    { "mysql://[::ffff:10.0.0.1]/db", "mysql host=::ffff:10.0.0.1 db=db", NULL, NULL },
    { "mysql://[::1/db", NULL, "fsdb: invalid IPv6 host in URL (missing ']')", NULL },
    { "mysql://[]/db", NULL, "fsdb: invalid IPv6 host '[]' in URL", NULL },
    { "mysql://[db.example]/db", NULL, "fsdb: invalid IPv6 host '[db.example]' in URL", NULL },
    { "mysql://[::1]x/db", NULL, "fsdb: invalid URL: expected ':' or '/' after the IPv6 host's ']'", NULL },
    { "mysql://bad host/db", NULL, "fsdb: invalid host 'bad host' in URL", NULL },
    { "mysql://u:p@%2Ftmp%2Fmy.sock/db",
      "mysql user=u password=p db=db socket=/tmp/my.sock", NULL, NULL },
    { "mysql://%2fvar%2frun%2fmysqld%2fmysqld.sock",
      "mysql socket=/var/run/mysqld/mysqld.sock", NULL, NULL },

    /* ports */
    { "mysql://h:1", "mysql host=h port=1", NULL, NULL },
    { "mysql://h:65535", "mysql host=h port=65535", NULL, NULL },
    { "mysql://h:03306", "mysql host=h port=3306", NULL, NULL },
    { "mysql://u@h:0", NULL, "fsdb: invalid port '0' in URL (expected 1-65535)", NULL },
    { "mysql://u@h:65536", NULL, "fsdb: invalid port '65536' in URL (expected 1-65535)", NULL },
    { "mysql://@h:-1", NULL, "fsdb: invalid port '-1' in URL (expected 1-65535)", NULL },
    { "mysql://u:p@h:abc/db", NULL, "fsdb: invalid port 'abc' in URL (expected 1-65535)", NULL },
    { "mysql://u@h:/db", NULL, "fsdb: invalid port '' in URL (expected 1-65535)", NULL },
    { "mysql://u@h:+3306", NULL, "fsdb: invalid port '+3306' in URL (expected 1-65535)", NULL },
    { "mysql://u@h:99999999999999999999", NULL,
      "fsdb: invalid port '99999999999999999999' in URL (expected 1-65535)", NULL },
    { "mysql://u@[::1]:", NULL, "fsdb: invalid port '' in URL (expected 1-65535)", NULL },

    /* no '@': host and port may be a user name and password, never quoted */
    { "mysql://h:0", NULL, E_HOSTLESS_PORT, NULL },
    { "mysql://h:65536", NULL, E_HOSTLESS_PORT, NULL },
    { "mysql://user:secret/db", NULL, E_HOSTLESS_PORT, "secret" },
    { "mysql://user:123456/db", NULL, E_HOSTLESS_PORT, "123456" },
    { "mysql://user:sec%20ret", NULL, E_HOSTLESS_PORT, "sec" },
    { "mysql://user:/db", NULL, E_HOSTLESS_PORT, NULL },
    { "mysql://us er:secret/db", NULL, "fsdb: invalid host in URL" HINT_HOSTLESS, "us er" },
    { "mysql://[us:secret]/db", NULL, "fsdb: invalid IPv6 host in URL" HINT_HOSTLESS, "secret" },
    { "mysql://[::1]:secret/db", NULL, E_HOSTLESS_PORT, "secret" },
    { "mysql://us:secret?unix_socket=/s", NULL, E_HOSTLESS_PORT, "secret" },
    { "mysql://usr9:3306/db?unix_socket=/s", NULL,
      "fsdb: invalid URL: option unix_socket needs host localhost or no host" HINT_HOSTLESS, "usr9" },
    { "mysql://user:3306/db", "mysql host=user port=3306 db=db", NULL, NULL },

    /* a raw '/' or '?' in the password: nothing after it may be quoted */
    { "mysql://u:zq/wk@h/db", NULL, E_GUARDED, "zq" },
    { "mysql://u:123/wk@h/db", NULL, E_GUARDED, "wk" },
    { "mysql://u:123?wk@h/db", NULL, E_GUARDED, "wk" },
    { "mysql://u:zq@x9/y@h/db", NULL, E_GUARDED, "x9" },
    { "mysql://u:zq@x9?y@h/db", NULL, E_GUARDED, "x9" },
    /* ... and any ':' before the late '@': the password may have spilled
     * into the host, port, database or options */
    { "mysql://u:3306/x@y", NULL, E_GUARDED, "3306/x" },
    { "mysql://u:3306?x@y", NULL, E_GUARDED, "3306?x" },
    { "mysql://u@h/x:pw@y", NULL, E_GUARDED, "pw" },
    { "mysql://h:3306/db@2", NULL, E_GUARDED, NULL },
    { "mysql://h:3306/db%402", "mysql host=h port=3306 db=db@2", NULL, NULL },
    { "mysql://u:p@h:3306/db@2", NULL, E_GUARDED, NULL },
    { "mysql://u:@h:1/@x", NULL, E_GUARDED, NULL },
    { "mysql://u:p@h:3306/db%402", "mysql user=u password=p host=h port=3306 db=db@2",
      NULL, NULL },

    /* database */
    { "mysql://h/", "mysql host=h", NULL, NULL },
    { "mysql://h/my%20db", "mysql host=h db=my db", NULL, NULL },
    { "mysql://h/db@2", "mysql host=h db=db@2", NULL, NULL },
    { "mysql://h/a/b", NULL, "fsdb: invalid URL: the database name must not contain '/'", NULL },
    { "mysql://h/a%2Fb", NULL, "fsdb: invalid URL: the database name must not contain '/'", NULL },

    /* options */
    { "mysql://h/db?", "mysql host=h db=db", NULL, NULL },
    { "mysql://h?charset=latin1", "mysql host=h charset=latin1", NULL, NULL },
    { "mysql://h/db?charset=utf8mb4&&connect_timeout=5&",
      "mysql host=h db=db charset=utf8mb4 connect_timeout=5", NULL, NULL },
    { "mysql://h?charset=", NULL,
      "fsdb: invalid value '' for option charset (expected a character set name such as utf8mb4)", NULL },
    { "mysql://h?charset=utf8;drop", NULL,
      "fsdb: invalid value 'utf8;drop' for option charset (expected a character set name such as utf8mb4)", NULL },
    { "mysql://h?collation=utf8mb4_unicode_ci",
      "mysql host=h collation=utf8mb4_unicode_ci", NULL, NULL },
    { "mysql://h?charset=latin1&collation=latin1_bin",
      "mysql host=h charset=latin1 collation=latin1_bin", NULL, NULL },
    { "mysql://h?collation=", NULL,
      "fsdb: invalid value '' for option collation (expected a collation name such as utf8mb4_unicode_ci)", NULL },
    { "mysql://h?collation=utf8mb4_bin%27%3B%20DROP", NULL,
      "fsdb: invalid value 'utf8mb4_bin'; DROP' for option collation "
      "(expected a collation name such as utf8mb4_unicode_ci)", NULL },
    { "mysql://h?collation=a1234567890123456789012345678901234567890123456789012345678901234", NULL,
      "fsdb: invalid value 'a12345678901234567890123456789012345678901234567890123456789...' for option collation "
      "(expected a collation name such as utf8mb4_unicode_ci)", NULL },
    { "mysql://h?collation=a123456789012345678901234567890123456789012345678901234567890123",
      "mysql host=h collation=a123456789012345678901234567890123456789012345678901234567890123",
      NULL, NULL },
    { "mysql://h?collation=utf8mb4_bin&collation=utf8mb4_bin", NULL,
      "fsdb: option 'collation' is given more than once in URL", NULL },
    { "mysql://h?connect_timeout=10&read_timeout=0&write_timeout=31536000",
      "mysql host=h connect_timeout=10 write_timeout=31536000", NULL, NULL },
    { "mysql://h?read_timeout=x", NULL,
      "fsdb: invalid value 'x' for option read_timeout (expected whole seconds)", NULL },
    { "mysql://h?connect_timeout=1.5", NULL,
      "fsdb: invalid value '1.5' for option connect_timeout (expected whole seconds)", NULL },
    { "mysql://h?write_timeout=31536001", NULL,
      "fsdb: invalid value '31536001' for option write_timeout (expected whole seconds)", NULL },
    { "mysql://h?read_timeout=-1", NULL,
      "fsdb: invalid value '-1' for option read_timeout (expected whole seconds)", NULL },
    { "mysql://h?ssl_mode=verify_identity", "mysql host=h ssl_mode=VERIFY_IDENTITY", NULL, NULL },
    { "mysql://h?ssl_mode=DISABLED", "mysql host=h ssl_mode=DISABLED", NULL, NULL },
    { "mysql://h?ssl_mode=Preferred", "mysql host=h ssl_mode=PREFERRED", NULL, NULL },
    { "mysql://h?ssl_mode=required", "mysql host=h ssl_mode=REQUIRED", NULL, NULL },
    { "mysql://h?ssl_mode=VERIFY_CA", "mysql host=h ssl_mode=VERIFY_CA", NULL, NULL },
    { "mysql://h?ssl_mode=on", NULL, "fsdb: invalid value 'on' for option ssl_mode " E_SSL, NULL },
    { "mysql://h?ssl_ca=/etc/ssl/ca.pem&ssl_cert=c%20d.pem&ssl_key=k.pem&ssl_capath=/etc/ssl/certs"
      "&ssl_cipher=ECDHE-RSA-AES128-GCM-SHA256:AES+256",
      "mysql host=h ssl_ca=/etc/ssl/ca.pem ssl_cert=c d.pem ssl_key=k.pem "
      "ssl_capath=/etc/ssl/certs ssl_cipher=ECDHE-RSA-AES128-GCM-SHA256:AES+256", NULL, NULL },
    { "mysql://h?ssl_ca=", NULL, "fsdb: invalid value '' for option ssl_ca (expected a non-empty value)", NULL },
    { "mysql://h?ssl_cipher=", NULL, "fsdb: invalid value '' for option ssl_cipher (expected a non-empty value)", NULL },
    { "mysql://h?ssl_cert=%ZZ", NULL, E_PCT, NULL },
    { "mysql://h?local_infile=1", "mysql host=h local_infile=1", NULL, NULL },
    { "mysql://h?local_infile=TRUE", "mysql host=h local_infile=1", NULL, NULL },
    { "mysql://h?local_infile=off", "mysql host=h", NULL, NULL },
    { "mysql://h?local_infile=2", NULL, "fsdb: invalid value '2' for option local_infile " E_BOOL, NULL },
    { "mysql://u:p@localhost/db?unix_socket=/tmp/my%20.sock",
      "mysql user=u password=p host=localhost db=db socket=/tmp/my .sock", NULL, NULL },
    { "mysql://u:p@/db?unix_socket=%2Ftmp%2Fmy.sock",
      "mysql user=u password=p db=db socket=/tmp/my.sock", NULL, NULL },
    { "mysql://h?unix_socket=", NULL, "fsdb: invalid value '' for option unix_socket (expected a non-empty value)", NULL },
    { "mysql://%2Ftmp%2Fa.sock?unix_socket=/tmp/b.sock", NULL,
      "fsdb: invalid URL: a socket path is given both as host and as option unix_socket; give it once", NULL },
    { "mysql://db.example/x?unix_socket=/tmp/b.sock", NULL,
      "fsdb: invalid URL: option unix_socket needs host localhost or no host, not 'db.example'", NULL },
    { "mysql://u:secret@h?foo=1", NULL, "fsdb: unknown option 'foo' in URL " E_KNOWN, "secret" },
    { "mysql://h?Charset=utf8", NULL, "fsdb: unknown option 'Charset' in URL " E_KNOWN, NULL },
    { "mysql://h?ssl=true", NULL, "fsdb: unknown option 'ssl' in URL " E_KNOWN, NULL },
    { "mysql://h?charset=utf8&charset=latin1", NULL,
      "fsdb: option 'charset' is given more than once in URL", NULL },
    { "mysql://h?read_timeout=1&read_timeout=1", NULL,
      "fsdb: option 'read_timeout' is given more than once in URL", NULL },
    { "mysql://h?local_infile", NULL,
      "fsdb: option 'local_infile' in URL has no value (expected local_infile=value)", NULL },
    { "mysql://u:secret@h?charset", NULL,
      "fsdb: option 'charset' in URL has no value (expected charset=value)", "secret" },
    { "mysql://h?ssl_ca=/etc/a@b/ca.pem", "mysql host=h ssl_ca=/etc/a@b/ca.pem", NULL, NULL },
    { "mysql://h?ssl_ca=/etc/a@b/ca.pem&bogus=1", NULL, E_GUARDED, NULL },
    { "mysql://u:secret@h?charset=utf9", NULL,
      "fsdb: unknown charset 'utf9' in URL (use utf8mb4; SHOW CHARACTER SET lists the others)", "secret" },
    { "mysql://h?charset=ucs2", NULL,
      "fsdb: charset ucs2 cannot be a connection charset; use charset=utf8mb4 (the default)", NULL },
    { "mysql://u:pa/ss@h?charset=utf9", NULL, E_GUARDED, "pa/ss" },
    { "mysql://h?charset=Latin2", "mysql host=h charset=Latin2", NULL, NULL },
};

typedef struct render_case {
    const char *in;
    const char *want;
} render_case;

static const render_case render_cases[] = {
    { "mysql://u:p@h/db", "mysql://u:***@h:3306/db" },
    { "MariaDB://h", "mariadb://h:3306" },
    { "mysql+pymysql://u:@h:3307/db", "mysql+pymysql://u:***@h:3307/db" },
    { "mysql://u@h", "mysql://u@h:3306" },
    { "mysql://:pw@h", "mysql://:***@h:3306" },
    { "mysql://us%40er%3A:p%40ss%3Aw%2Frd%2542@h/db", "mysql://us%40er%3A:***@h:3306/db" },
    { "mysql://u:p@ss@h/db", "mysql://u:***@h:3306/db" },
    { "mysql://[::1]:3307/db", "mysql://[::1]:3307/db" },
    { "mysql://u:p@h1,h2:3307,[::1]:3308/db?load_balance_hosts=random&target_session_attrs=read-write",
      "mysql://u:***@h1:3306,h2:3307,[::1]:3308/db?target_session_attrs=read-write"
      "&load_balance_hosts=random" },
    { "mysql://[fe80::1%25eth0]", "mysql://[fe80::1%25eth0]:3306" },
    { "mysql://u:p@%2Ftmp%2Fmy.sock:3307/db", "mysql://u:***@localhost/db?unix_socket=/tmp/my.sock" },
    { "mysql://localhost?unix_socket=/tmp/a%26b.sock&charset=latin1",
      "mysql://localhost?unix_socket=/tmp/a%26b.sock&charset=latin1" },
    { "mysql://h/my%20db%3F?charset=utf8mb4", "mysql://h:3306/my%20db%3F" },
    { "mysql://h?collation=utf8mb4_unicode_ci&charset=utf8mb4",
      "mysql://h:3306?collation=utf8mb4_unicode_ci" },
    { "mysql://h?local_infile=on&ssl_mode=verify_ca&write_timeout=3&read_timeout=2&connect_timeout=1"
      "&charset=UTF8MB4&ssl_cipher=AES+256&ssl_capath=/c&ssl_key=/k&ssl_cert=/c%20t&ssl_ca=/a",
      "mysql://h:3306?connect_timeout=1&read_timeout=2&write_timeout=3&ssl_mode=VERIFY_CA"
      "&ssl_ca=/a&ssl_cert=/c%20t&ssl_key=/k&ssl_capath=/c&ssl_cipher=AES+256&local_infile=1" },
    { "mysql://h?local_infile=no&read_timeout=0", "mysql://h:3306" },
    /* '@' past the authority is encoded, so the rendering parses back */
    { "mysql://h/db@2?ssl_ca=/a@b", "mysql://h:3306/db%402?ssl_ca=/a%40b" },
};

static void run_parse_cases(void)
{
    size_t i;

    for (i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const parse_case *c = &parse_cases[i];
        fsdb_uri u;
        fsdb_error err;
        char got[1024];
        int rc;

        fsdb_error_clear(&err);
        rc = fsdb_uri_parse(c->in, &u, &err);
        if (c->want != NULL) {
            if (rc != 0) {
                check(0, "parse", c->in, err.message, c->want);
                continue;
            }
            describe(&u, got, sizeof got);
            check(strcmp(got, c->want) == 0, "parse", c->in, got, c->want);
            fsdb_uri_free(&u);
            continue;
        }
        if (rc == 0) {
            describe(&u, got, sizeof got);
            check(0, "parse should fail", c->in, got, c->error);
            fsdb_uri_free(&u);
            continue;
        }
        check(strcmp(err.message, c->error) == 0, "error", c->in, err.message, c->error);
        /* An unknown charset carries the server's sqlstate for it. */
        check(err.code == FSDB_ERR_URL
                  && strcmp(err.sqlstate, strstr(c->error, " charset '") ? "42000" : "HY000") == 0,
              "error code", c->in, err.sqlstate, "9001 HY000 (42000 for a charset)");
        check(u.scheme == NULL && u.host == NULL && u.password == NULL && u.charset == NULL,
              "failed parse leaves *out empty", c->in, "fields set", "all NULL");
        if (c->secret != NULL)
            check(strstr(err.message, c->secret) == NULL, "error leaks the password",
                  c->in, err.message, c->secret);
    }
}

static void run_render_cases(void)
{
    size_t i;

    for (i = 0; i < sizeof render_cases / sizeof render_cases[0]; i++) {
        const render_case *c = &render_cases[i];
        fsdb_uri u, again;
        fsdb_error err;
        char got[1024], twice[1024];
        size_t n;

        if (fsdb_uri_parse(c->in, &u, &err) != 0) {
            check(0, "render (parse)", c->in, err.message, c->want);
            continue;
        }
        n = fsdb_uri_render(&u, &D, got, sizeof got);
        check(strcmp(got, c->want) == 0 && n == strlen(c->want), "render", c->in, got, c->want);
        /* The rendering parses back to the same URL (password aside). */
        if (fsdb_uri_parse(got, &again, &err) != 0) {
            check(0, "render parses back", got, err.message, "success");
        } else {
            fsdb_uri_render(&again, &D, twice, sizeof twice);
            check(strcmp(twice, got) == 0, "render is stable", c->in, twice, got);
            fsdb_uri_free(&again);
        }
        fsdb_uri_free(&u);
    }
}

/* Without defaults the rendering shows what the URL says, nothing more. */
static const render_case raw_render_cases[] = {
    { "mysql://u:p@h/db", "mysql://u:***@h/db" },
    { "mysql://h1,h2:3307", "mysql://h1,h2:3307" },
    { "mysql://:3307/db", "mysql://:3307/db" },
    { "mysql://u@/db?unix_socket=%2Ftmp%2Fs", "mysql://u@/db?unix_socket=/tmp/s" },
    { "mysql://h?charset=utf8mb4&read_timeout=300", "mysql://h?charset=utf8mb4&read_timeout=300" },
};

static void run_raw_render_cases(void)
{
    size_t i;

    for (i = 0; i < sizeof raw_render_cases / sizeof raw_render_cases[0]; i++) {
        const render_case *c = &raw_render_cases[i];
        fsdb_uri u;
        fsdb_error err;
        char got[256];

        if (fsdb_uri_parse(c->in, &u, &err) != 0) {
            check(0, "raw render (parse)", c->in, err.message, c->want);
            continue;
        }
        fsdb_uri_render(&u, NULL, got, sizeof got);
        check(strcmp(got, c->want) == 0, "raw render", c->in, got, c->want);
        fsdb_uri_free(&u);
    }
}

/* fsdb_uri_fill takes every value from its argument (none of them 3306,
 * localhost or utf8mb4 here) and only for what the URL left out. */
static void run_fill(void)
{
    static const fsdb_uri_defaults other = { "dflt.example", 4000, "latin1", 1, 2, 3, 4 };
    fsdb_uri u;
    fsdb_error err;
    unsigned port = 0;
    char got[256];
    const char *in = "mysql://h1,h2:3307/db";

    if (fsdb_uri_parse(in, &u, &err) != 0 || fsdb_uri_fill(&u, &other) != 0) {
        check(0, "fill", in, err.message, "filled");
        return;
    }
    describe(&u, got, sizeof got);
    check(strcmp(got, "mysql host=h1 port=4000 db=db charset=latin1 connect_timeout=1 "
                      "read_timeout=2 write_timeout=3 hosts=h1:4000,h2:3307") == 0,
          "fill", in, got, "the other defaults");
    fsdb_uri_render(&u, &other, got, sizeof got);
    check(strcmp(got, "mysql://h1:4000,h2:3307/db") == 0, "render filled", in, got,
          "mysql://h1:4000,h2:3307/db");
    fsdb_uri_free(&u);

    in = "mysql://:5/d?charset=ascii&read_timeout=9";
    if (fsdb_uri_parse(in, &u, &err) != 0 || fsdb_uri_fill(&u, &other) != 0) {
        check(0, "fill", in, err.message, "filled");
        return;
    }
    describe(&u, got, sizeof got);
    check(strcmp(got, "mysql host=dflt.example port=5 db=d charset=ascii connect_timeout=1 "
                      "read_timeout=9 write_timeout=3") == 0,
          "fill keeps what the URL says", in, got, "port 5, ascii, read_timeout 9");
    check(strcmp(fsdb_uri_host_at(&u, 0, &port), "dflt.example") == 0 && port == 5,
          "host_at after fill", in, "", "dflt.example:5");
    fsdb_uri_free(&u);
}

static void run_misc(void)
{
    const char *in = "mysql://user:secret@db.example:3307/shop?ssl_mode=REQUIRED&charset=latin1";
    const char *want = "mysql://user:***@db.example:3307/shop?charset=latin1&ssl_mode=REQUIRED";
    fsdb_uri u, c;
    fsdb_error err;
    char small[8], got[256], tmp[64];
    size_t n, full = strlen(want);

    if (fsdb_uri_parse(in, &u, &err) != 0) {
        check(0, "parse", in, err.message, "success");
        return;
    }

    /* Truncation works like snprintf. */
    memset(small, 'x', sizeof small);
    n = fsdb_uri_render(&u, &D, small, sizeof small);
    check(n == full && strcmp(small, "mysql:/") == 0, "render truncates", in, small, "mysql:/");
    n = fsdb_uri_render(&u, &D, NULL, 0);
    snprintf(tmp, sizeof tmp, "%lu", (unsigned long)n);
    check(n == full, "render with cap 0 returns the length", in, tmp, "length");
    n = fsdb_uri_render(&u, &D, got, full + 1);
    check(n == full && strcmp(got, want) == 0, "render exact fit", in, got, want);
    n = fsdb_uri_render(&u, &D, got, full);
    check(n == full && strlen(got) == full - 1, "render one short", in, got, "cut by one");

    /* Deep copy. */
    if (fsdb_uri_copy(&c, &u) != 0) {
        check(0, "copy", in, "failed", "0");
    } else {
        check(c.password != u.password && strcmp(c.password, "secret") == 0
              && c.host != u.host && strcmp(c.host, "db.example") == 0
              && c.port == 3307 && c.ssl_mode == FSDB_SSL_REQUIRED
              && strcmp(c.charset, "latin1") == 0 && c.ssl_ca == NULL,
              "copy", in, "different", "equal deep copy");
        fsdb_uri_free(&c);
    }

    /* A host list is deep-copied too. */
    {
        fsdb_uri m, mc;
        const char *lin = "mysql://h1,h2:3307/db?target_session_attrs=read-only";
        unsigned port = 0;

        if (fsdb_uri_parse(lin, &m, &err) != 0 || fsdb_uri_copy(&mc, &m) != 0) {
            check(0, "copy host list", lin, err.message, "copied");
        } else {
            check(fsdb_uri_host_count(&mc) == 2 && mc.more_host[0] != m.more_host[0]
                  && strcmp(fsdb_uri_host_at(&mc, 1, &port), "h2") == 0 && port == 3307
                  && mc.target_session_attrs == FSDB_TSA_READ_ONLY,
                  "copy host list", lin, "different", "equal deep copy");
            fsdb_uri_free(&mc);
        }
        fsdb_uri_free(&m);
    }

    /* Free zeroes, and is NULL-safe and idempotent. */
    fsdb_uri_free(&u);
    check(u.scheme == NULL && u.password == NULL && u.port == 0, "free zeroes", in, "set", "zeroed");
    fsdb_uri_free(&u);
    fsdb_uri_free(NULL);
    passed++;

    /* NULL input. */
    check(fsdb_uri_parse(NULL, &u, &err) == -1 && strcmp(err.message, E_INVALID) == 0,
          "parse(NULL)", "(null)", err.message, E_INVALID);

    check(fsdb_ssl_mode_name(FSDB_SSL_UNSET) == NULL
          && strcmp(fsdb_ssl_mode_name(FSDB_SSL_VERIFY_IDENTITY), "VERIFY_IDENTITY") == 0,
          "fsdb_ssl_mode_name", "", "", "");
}

int main(void)
{
    run_parse_cases();
    run_render_cases();
    run_raw_render_cases();
    run_fill();
    run_misc();
    return check_report();
}
