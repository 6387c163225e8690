/*
 * conn.c — one server connection; see conn.h for the contract.
 */
#include "conn.h"
#include "auth.h"
#include "deadline.h"
#include "failover.h"
#include "hosts.h"
#include "stmtcache.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* MariaDB Connector/C defines SERVER_STATUS_IN_TRANS in mariadb_com.h. */

const char *fsdb_conn_secret(const fsdb_conn *c)
{
    return c->cfg ? c->cfg->uri.password : NULL;
}

void fsdb_conn_error(fsdb_conn *c, fsdb_error *err)
{
    fsdb_error_server(err, mysql_errno(c->my), mysql_sqlstate(c->my), mysql_error(c->my),
                      fsdb_conn_secret(c));
}

static int run_setup(fsdb_conn *c, const char *sql, fsdb_error *err)
{
    if (mysql_real_query(c->my, sql, (unsigned long)strlen(sql)) != 0) {
        fsdb_conn_error(c, err);
        return -1;
    }
    return 0;
}

/* Every wait of the connection goes through here: a pool checkout bounds
 * its connects and pings by what is left of pool_timeout (deadline.h). */
static int io_wait(my_socket fd, my_bool is_read, int timeout_ms)
{
    return fsdb_deadline_wait((int)fd, is_read != 0, timeout_ms);
}

/* What the pool re-applies after COM_RESET_CONNECTION too: the collation
 * (the handshake can only name a character set, whose default collation
 * the server then uses) and the isolation level. Both names were checked
 * (URL parser, engine options) to be bare words. */
static int apply_session_settings(fsdb_conn *c, fsdb_error *err)
{
    const fsdb_uri *u = &c->cfg->uri;
    char sql[192];

    if (u->collation) {
        snprintf(sql, sizeof sql, "SET NAMES %s COLLATE %s",
                 u->charset, u->collation);
        if (run_setup(c, sql, err) < 0)
            return -1;
    }
    if (c->cfg->isolation_level) {
        snprintf(sql, sizeof sql, "SET SESSION TRANSACTION ISOLATION LEVEL %s",
                 c->cfg->isolation_level);
        if (run_setup(c, sql, err) < 0)
            return -1;
    }
    /* Whole milliseconds, printed as integers: no locale decimal point. */
    if (c->cfg->max_statement_ms) {
        snprintf(sql, sizeof sql, "SET SESSION max_statement_time = %u.%03u",
                 c->cfg->max_statement_ms / 1000, c->cfg->max_statement_ms % 1000);
        if (run_setup(c, sql, err) < 0)
            return -1;
    }
    if (c->cfg->wsrep_sync_wait >= 0) {
        snprintf(sql, sizeof sql, "SET SESSION wsrep_sync_wait = %d", c->cfg->wsrep_sync_wait);
        if (run_setup(c, sql, err) < 0)
            return -1;
    }
    /* Read-your-writes on an engine with replicas: COMMIT's OK packet then
     * carries the transaction's GTID (lconn.c's tracked_gtid), saving a
     * SELECT @@last_gtid per commit. The list keeps the server's own
     * entries (Connector/C follows character_set_client through them). A
     * server that refuses it costs nothing but that query. */
    if (c->cfg->track_gtid) {
        fsdb_error ignored;
        (void)run_setup(c, "SET SESSION session_track_system_variables = "
                           "CONCAT_WS(',', NULLIF(@@session_track_system_variables, ''), 'last_gtid')",
                        &ignored);
    }
    return 0;
}

/* The server drops connections idle for wait_timeout seconds; knowing it
 * lets the pool replace them before "server has gone away" can happen.
 * max_allowed_packet sizes executemany's batches. */
static int read_session_limits(fsdb_conn *c, fsdb_error *err)
{
    MYSQL_RES *res;
    MYSQL_ROW row;
    if (run_setup(c, "SELECT @@SESSION.wait_timeout, @@SESSION.max_allowed_packet", err) < 0)
        return -1;
    if ((res = mysql_store_result(c->my)) == NULL) {
        fsdb_conn_error(c, err);
        return -1;
    }
    if ((row = mysql_fetch_row(res)) != NULL) {
        if (row[0])
            c->item.idle_limit = strtod(row[0], NULL);
        if (row[1])
            c->max_packet = strtoul(row[1], NULL, 10);
    }
    mysql_free_result(res);
    return 0;
}

/* True when the URL asks for no TLS at all, so a refusal may be the server
 * (require_secure_transport) or the account (REQUIRE SSL/X509) insisting on
 * it. Connector/C turns TLS on by itself once any ssl_* file is given. */
static int tls_not_asked(const fsdb_uri *u)
{
    if (u->ssl_mode == FSDB_SSL_DISABLED)
        return 1;
    return u->ssl_mode == FSDB_SSL_UNSET && !u->ssl_ca && !u->ssl_capath && !u->ssl_cert &&
           !u->ssl_key && !u->ssl_cipher;
}

/* What each ssl_mode asks of Connector/C 3.3 (docs/SECURITY.md has the
 * table). Its rules, found by experiment and in its source:
 *   - ssl_ca or ssl_capath makes it verify the server's chain against
 *     them (SSL_VERIFY_PEER) in every mode that uses TLS;
 *   - MYSQL_OPT_SSL_VERIFY_SERVER_CERT verifies the chain (against the
 *     system's store when no CA is given) AND the host name (subjectAltName
 *     DNS or IP, else CN): there is no flag for the chain alone;
 *   - MYSQL_OPT_SSL_ENFORCE asks for TLS but does not refuse a server that
 *     offers none (tls_missing does, for REQUIRED and VERIFY_CA).
 * So VERIFY_CA is "TLS + a CA of the user's": chain checked, host name
 * not; without a CA it would check nothing, hence refused here. */
static int set_tls(MYSQL *my, const fsdb_uri *u, fsdb_error *err)
{
    my_bool yes = 1;

    /* A CA or key file next to DISABLED must not switch TLS on. */
    if (u->ssl_mode == FSDB_SSL_DISABLED)
        return 0;
    if (u->ssl_mode == FSDB_SSL_VERIFY_CA && !u->ssl_ca && !u->ssl_capath) {
        fsdb_error_set(err, FSDB_ERR_URL, NULL,
                       "ssl_mode=VERIFY_CA needs ssl_ca or ssl_capath (the CA that signed the "
                       "server's certificate); hint: add ssl_ca=/path/to/ca.pem, or use "
                       "ssl_mode=VERIFY_IDENTITY to verify against the system's CA store");
        return -1;
    }
    if (u->ssl_ca) mysql_optionsv(my, MYSQL_OPT_SSL_CA, u->ssl_ca);
    if (u->ssl_capath) mysql_optionsv(my, MYSQL_OPT_SSL_CAPATH, u->ssl_capath);
    if (u->ssl_cert) mysql_optionsv(my, MYSQL_OPT_SSL_CERT, u->ssl_cert);
    if (u->ssl_key) mysql_optionsv(my, MYSQL_OPT_SSL_KEY, u->ssl_key);
    if (u->ssl_cipher) mysql_optionsv(my, MYSQL_OPT_SSL_CIPHER, u->ssl_cipher);
    switch (u->ssl_mode) {
    case FSDB_SSL_REQUIRED:
    case FSDB_SSL_VERIFY_CA:
        mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &yes);
        break;
    case FSDB_SSL_VERIFY_IDENTITY:
        mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &yes);
        mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
        break;
    case FSDB_SSL_PREFERRED:
        /* Ask for TLS when the server offers it, carry on without. */
        mysql_ssl_set(my, NULL, NULL, NULL, NULL, NULL);
        break;
    default:
        break;
    }
    return 0;
}

/* Connector/C 3.3 refuses a server without TLS before logging in only when
 * it also verifies the host name (VERIFY_IDENTITY): MYSQL_OPT_SSL_ENFORCE
 * alone quietly carries on in plain text. So REQUIRED and VERIFY_CA are
 * enforced here, once connected: no statement ever runs over such a
 * connection (the login did; docs/SECURITY.md says what that exposes). A
 * unix socket is local and counts as secure transport, as the server
 * counts it: not refused. */
static int tls_missing(fsdb_conn *c, const fsdb_uri *u, fsdb_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd;

    if (u->ssl_mode < FSDB_SSL_REQUIRED || mysql_get_ssl_cipher(c->my) != NULL)
        return 0;
    fd = (int)mysql_get_socket(c->my);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_UNIX)
        return 0;
    fsdb_error_set(err, 2026, "HY000",
                   "TLS/SSL error: SSL is required, but the server does not support it "
                   "(ssl_mode=%s)", fsdb_ssl_mode_name(u->ssl_mode));
    return -1;
}

/* Appends a TLS remedy to a failed connect's error: Connector/C's TLS
 * messages name the symptom, not the URL option that fixes it. */
static void add_tls_hint(fsdb_error *err, const fsdb_uri *u)
{
    const char *hint = NULL;
    size_t len = strlen(err->message);

    if (err->code == 1045 && tls_not_asked(u)) {
        /* MariaDB answers a plain-text login that require_secure_transport
         * or REQUIRE SSL/X509 refuses with the same 1045 as a bad password. */
        hint = "; or, if the server or the account requires TLS (require_secure_transport, "
               "REQUIRE SSL/X509), add ssl_mode=VERIFY_IDENTITY&ssl_ca=/path/to/ca.pem "
               "to the URL";
    } else if (err->code == 2026) {
        if (strstr(err->message, "server does not support it"))
            hint = "; hint: the server offers no TLS: give it ssl_cert and ssl_key, "
                   "or (on a trusted network only) lower ssl_mode";
        else if (strstr(err->message, "Validation of SSL server certificate failed"))
            hint = "; hint: the server's certificate does not name the host in the URL: "
                   "connect by a name or address its subjectAltName lists "
                   "(ssl_mode=VERIFY_CA checks the CA but not the name)";
        else if ((strstr(err->message, "certificate") || strstr(err->message, "issuer")) &&
                 (u->ssl_ca || u->ssl_capath))
            hint = "; hint: ssl_ca must be the CA that signed the server's certificate";
        else if (strstr(err->message, "certificate") || strstr(err->message, "issuer"))
            hint = "; hint: no CA in the system's store signed the server's certificate: "
                   "add ssl_ca=/path/to/ca.pem (the CA that did)";
        else
            hint = "; hint: check ssl_ca, ssl_cert, ssl_key and ssl_cipher "
                   "(readable files, a key that matches its certificate)";
    }
    if (hint != NULL && strstr(err->message, hint + 2) == NULL)
        snprintf(err->message + len, sizeof err->message - len, "%s", hint);
}

fsdb_conn *fsdb_conn_open(const fsdb_conn_config *cfg, fsdb_error *err)
{
    return fsdb_failover_open(cfg, err);
}

fsdb_conn *fsdb_conn_open_at(const fsdb_conn_config *cfg, unsigned host_i, fsdb_error *err)
{
    const fsdb_uri *u = &cfg->uri;
    unsigned port;
    const char *host = fsdb_uri_host_at(u, host_i, &port);
    fsdb_conn *c;
    my_bool no = 0;
    unsigned int local_infile = u->local_infile ? 1u : 0u;
    unsigned long flags = CLIENT_FOUND_ROWS;

    if ((c = calloc(1, sizeof *c)) == NULL || (c->my = mysql_init(NULL)) == NULL) {
        free(c);
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory opening a connection");
        return NULL;
    }
    c->cfg = cfg;
    /* Charset and timeouts are always set: the engine filled what the URL
     * left out from fsdb.options (finite waits, README "Bounded waits"). */
    mysql_optionsv(c->my, MYSQL_SET_CHARSET_NAME, u->charset);
    mysql_optionsv(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &u->connect_timeout);
    mysql_optionsv(c->my, MYSQL_OPT_READ_TIMEOUT, &u->read_timeout);
    mysql_optionsv(c->my, MYSQL_OPT_WRITE_TIMEOUT, &u->write_timeout);
    mysql_optionsv(c->my, MARIADB_OPT_IO_WAIT, io_wait);
    /* A silent reconnect would lose the transaction and session state. */
    mysql_optionsv(c->my, MYSQL_OPT_RECONNECT, &no);
    mysql_optionsv(c->my, MYSQL_OPT_LOCAL_INFILE, &local_infile);
    if (cfg->init_command) mysql_optionsv(c->my, MYSQL_INIT_COMMAND, cfg->init_command);
    /* Host and port mean TCP, "localhost" included (PyMySQL's rule): left to
     * itself Connector/C would take the default socket and ignore the port.
     * A socket is used only when the URL names one. */
    if (u->unix_socket == NULL) {
        unsigned int tcp = MYSQL_PROTOCOL_TCP;
        mysql_optionsv(c->my, MYSQL_OPT_PROTOCOL, &tcp);
    }
    if (set_tls(c->my, u, err) < 0 || fsdb_auth_apply(c->my, u, err) < 0) {
        mysql_close(c->my);
        free(c);
        return NULL;
    }

    if (!mysql_real_connect(c->my, u->unix_socket ? "localhost" : host, u->user,
                            u->password ? u->password : "", u->database,
                            u->unix_socket ? 0 : port, u->unix_socket, flags)) {
        fsdb_conn_error(c, err);
        add_tls_hint(err, u);
        fsdb_auth_explain(err, u);
        fsdb_error_scrub(err, u->password);
        mysql_close(c->my);
        free(c);
        return NULL;
    }
    c->thread_id = mysql_thread_id(c->my);
    if (tls_missing(c, u, err) < 0) {
        add_tls_hint(err, u);
        goto fail;
    }
    if (apply_session_settings(c, err) < 0)
        goto fail;
    if (read_session_limits(c, err) < 0)
        goto fail;
    {
        unsigned long caps = 0;
        if (mariadb_get_infov(c->my, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &caps) == 0)
            c->bulk = (caps & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
    }
    return c;

fail:
    mysql_close(c->my);
    free(c);
    return NULL;
}

int fsdb_conn_ping(fsdb_conn *c, int deep)
{
    struct pollfd pfd;
    int fd = (int)mysql_get_socket(c->my);

    if (fd < 0)
        return -1;
    /* An idle connection has nothing to read. Readable means the server
     * closed it (KILL, restart, wait_timeout) or sent an error: confirm
     * with a real ping, which also absorbs harmless TLS records. */
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll(&pfd, 1, 0) != 0)
        deep = 1;
    if (deep && mysql_ping(c->my) != 0)
        return -1;
    return 0;
}

int fsdb_conn_in_transaction(const fsdb_conn *c)
{
    /* An error reply carries no status flags: after a deadlock the last
     * OK packet still says "in a transaction" that the server ended. */
    return !c->rolled_back && (c->my->server_status & SERVER_STATUS_IN_TRANS) != 0;
}

void fsdb_conn_checked_out(fsdb_conn *c)
{
    c->state = FSDB_CONN_IDLE;
    c->after = FSDB_CONN_IDLE;
    c->close_requested = 0;
}

const char *fsdb_conn_enter(fsdb_conn *c, int cursor)
{
    switch (c->state) {
    case FSDB_CONN_IDLE:
        if (cursor)
            return "fsdb: the cursor's result is gone (the connection ran another statement)";
        break;
    case FSDB_CONN_STREAMING:
        if (!cursor)
            return "fsdb: connection is busy streaming rows (conn:rows); finish the loop or "
                   "call cursor:close() first";
        break;
    case FSDB_CONN_IN_CALL:
        return "fsdb: connection is in use by another fsdb call (Lua code that ran inside a "
               "call — a metamethod or a finalizer — tried to use it)";
    case FSDB_CONN_BROKEN:
        return "fsdb: connection is broken (lost, or a result was left unread by an error); "
               "close it and check out another";
    default:
        return "fsdb: connection is closed";
    }
    c->after = c->state;
    c->state = FSDB_CONN_IN_CALL;
    return NULL;
}

int fsdb_conn_leave(fsdb_conn *c, int raised)
{
    int close = c->close_requested;
    c->close_requested = 0;
    if (c->state != FSDB_CONN_IN_CALL)
        return close; /* broken meanwhile */
    /* A raise in the middle of reading a result leaves the protocol
     * mid-stream: no other command may follow on this connection. */
    if (raised && (c->after == FSDB_CONN_STREAMING || c->pending || c->pending_stmt))
        c->state = FSDB_CONN_BROKEN;
    else
        c->state = c->after;
    return close;
}

int fsdb_conn_request_close(fsdb_conn *c)
{
    if (c->state != FSDB_CONN_IN_CALL)
        return 0;
    c->close_requested = 1;
    return 1;
}

void fsdb_conn_stream(fsdb_conn *c, int on)
{
    c->after = on ? FSDB_CONN_STREAMING : FSDB_CONN_IDLE;
}

int fsdb_conn_streaming(const fsdb_conn *c)
{
    return c->state == FSDB_CONN_STREAMING;
}

void fsdb_conn_abandon_stream(fsdb_conn *c)
{
    if (c->state == FSDB_CONN_STREAMING)
        c->state = FSDB_CONN_BROKEN;
}

void fsdb_conn_ok(fsdb_conn *c)
{
    c->rolled_back = 0;
}

/* A Galera node that left the primary component (1047; 1180 for a commit
 * it could not replicate, "not connected to Primary Component"), or a
 * server that became read-only under a read-write URL (1290, after a
 * switch-over): the connection is worth nothing and its host goes into
 * back-off, so that what runs next goes elsewhere. */
static int wrong_server(fsdb_conn *c, unsigned code)
{
    if (code != 1047 && code != 1180 &&
        !(code == 1290 && c->cfg->uri.target_session_attrs == FSDB_TSA_READ_WRITE))
        return 0;
    if (c->cfg->hosts != NULL)
        fsdb_hosts_report(c->cfg->hosts, c->host_index, 0, fsdb_now());
    return 1;
}

int fsdb_conn_failed(fsdb_conn *c, const fsdb_error *err)
{
    if (err->code == 1213)
        c->rolled_back = 1;
    if (fsdb_error_is_disconnect(err->code) || wrong_server(c, err->code)) {
        c->state = FSDB_CONN_BROKEN;
        return 1;
    }
    return 0;
}

int fsdb_conn_no_backslash_escapes(const fsdb_conn *c)
{
    return (c->my->server_status & SERVER_STATUS_NO_BACKSLASH_ESCAPES) != 0;
}

/* Anything still unread on the wire makes the connection unusable for the
 * next user: discard rather than hand it over out of sync. */
static int clean(const fsdb_conn *c)
{
    return (c->state == FSDB_CONN_IDLE || c->state == FSDB_CONN_CLOSED) && !c->pending &&
           !c->pending_stmt && !c->item.invalid &&
           !(c->my->server_status & SERVER_MORE_RESULTS_EXIST);
}

int fsdb_conn_release_quietly(fsdb_conn *c)
{
    if (!clean(c))
        return -1;
    switch (c->cfg->reset_on_return) {
    case FSDB_RESET_ROLLBACK:
    case FSDB_RESET_COMMIT:
        return fsdb_conn_in_transaction(c) || c->rolled_back ? 1 : 0;
    case FSDB_RESET_CONNECTION:
        return 1;
    default:
        return 0;
    }
}

int fsdb_conn_reset(fsdb_conn *c)
{
    if (!clean(c))
        return -1;
    c->rolled_back = 0;
    switch (c->cfg->reset_on_return) {
    case FSDB_RESET_ROLLBACK:
        /* No round trip for a clean connection: the server tells us in
         * every OK packet whether a transaction is open. */
        if (fsdb_conn_in_transaction(c) && mysql_rollback(c->my) != 0)
            return -1;
        break;
    case FSDB_RESET_COMMIT:
        if (fsdb_conn_in_transaction(c) && mysql_commit(c->my) != 0)
            return -1;
        break;
    case FSDB_RESET_CONNECTION: {
        fsdb_error ignored;
        /* The reset drops server-side statements and session settings. */
        fsdb_stmtcache_clear(c);
        if (mysql_reset_connection(c->my) != 0)
            return -1;
        if (c->cfg->init_command && run_setup(c, c->cfg->init_command, &ignored) < 0)
            return -1;
        if (apply_session_settings(c, &ignored) < 0)
            return -1;
        break;
    }
    default:
        break;
    }
    return 0;
}

static void release(fsdb_conn *c)
{
    if (c->pending) {
        mysql_free_result(c->pending);
        c->pending = NULL;
    }
    c->pending_stmt = NULL; /* closed with the cache */
    fsdb_stmtcache_clear(c);
    mysql_close(c->my);
    free(c);
}

void fsdb_conn_close(fsdb_conn *c)
{
    int fd;
    if (c == NULL)
        return;
    /* Freeing an unread result would read it to the end (and wait for a
     * stalled server): cut the socket first, so those reads fail at once
     * and only COM_QUIT-style writes remain, which wait for nothing. */
    if (!clean(c) && (fd = (int)mysql_get_socket(c->my)) >= 0)
        shutdown(fd, SHUT_RDWR);
    c->state = FSDB_CONN_CLOSED;
    release(c);
}

void fsdb_conn_abandon(fsdb_conn *c)
{
    int fd, devnull;
    if (c == NULL)
        return;
    /* The socket is shared with the parent process. Point our descriptor at
     * /dev/null so that whatever mysql_close() writes (COM_STMT_CLOSE,
     * COM_QUIT, a TLS close_notify) goes nowhere, while the memory and the
     * descriptor are still released. */
    fd = (int)mysql_get_socket(c->my);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && devnull >= 0)
        dup2(devnull, fd);
    if (devnull >= 0)
        close(devnull);
    release(c);
}

void fsdb_conn_config_free(fsdb_conn_config *cfg)
{
    fsdb_uri_free(&cfg->uri);
    fsdb_hosts_free(cfg->hosts);
    free(cfg->init_command);
    free(cfg->isolation_level);
    memset(cfg, 0, sizeof *cfg);
}
