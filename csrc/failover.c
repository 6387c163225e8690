/*
 * failover.c — connecting to one of a URL's hosts: order, readiness, role.
 */
#include "failover.h"

#include <stdio.h>
#include <string.h>

#include "hosts.h"

/* One round trip: the role, and on MariaDB whether a Galera node may take
 * queries (NULL without wsrep, where WSREP_READY is OFF too). A non-ready node still answers
 * a SELECT without tables, so readiness must be asked for. */
#define ROLE_MARIADB "SELECT @@global.read_only, IF(@@global.wsrep_on, (SELECT VARIABLE_VALUE " \
    "FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY'), NULL)"
#define ROLE_MYSQL "SELECT @@global.read_only OR @@global.super_read_only, NULL"

/* 0 with *read_only set, or -1 with err set (a node that is not ready is
 * reported as the server would: 1047, 08S01). */
static int role(fsdb_conn *c, int *read_only, fsdb_error *err)
{
    const char *q = mariadb_connection(c->my) ? ROLE_MARIADB : ROLE_MYSQL;
    MYSQL_RES *res;
    MYSQL_ROW row;
    int ready = 1;

    if (mysql_real_query(c->my, q, (unsigned long)strlen(q)) != 0
        || (res = mysql_store_result(c->my)) == NULL) {
        fsdb_conn_error(c, err);
        return -1;
    }
    row = mysql_fetch_row(res);
    *read_only = row != NULL && row[0] != NULL && strcmp(row[0], "0") != 0;
    if (row != NULL && row[1] != NULL && strcmp(row[1], "ON") != 0)
        ready = 0;
    mysql_free_result(res);
    if (!ready) {
        fsdb_error_set(err, 1047, "08S01", "WSREP has not yet prepared node for application use "
                       "(wsrep_ready = OFF)");
        return -1;
    }
    return 0;
}

int fsdb_failover_checks(const fsdb_conn_config *cfg)
{
    return fsdb_uri_host_count(&cfg->uri) > 1
           || fsdb_hosts_checks_role(cfg->uri.target_session_attrs);
}

static const char *role_name(fsdb_tsa tsa)
{
    return tsa == FSDB_TSA_READ_WRITE ? "read-write" : "read-only";
}

fsdb_conn *fsdb_failover_open(const fsdb_conn_config *cfg, fsdb_error *err)
{
    const fsdb_uri *u = &cfg->uri;
    fsdb_tsa tsa = u->target_session_attrs;
    unsigned order[FSDB_URI_MAX_HOSTS], n, k, unreachable = 0, wrong = 0;
    int pass, passes = fsdb_hosts_passes(tsa), check = fsdb_failover_checks(cfg);
    fsdb_error last;

    if (cfg->hosts == NULL)
        return fsdb_conn_open_at(cfg, 0, err);
    n = fsdb_hosts_order(cfg->hosts, fsdb_now(), order);
    fsdb_error_clear(&last);
    for (pass = 0; pass < passes; pass++) {
        for (k = 0; k < n; k++) {
            unsigned i = order[k];
            int read_only = 0;
            fsdb_conn *c = fsdb_conn_open_at(cfg, i, &last);

            if (c != NULL && check && role(c, &read_only, &last) != 0) {
                fsdb_conn_close(c);
                c = NULL;
            }
            if (c == NULL) {
                if (pass == 0)
                    unreachable++;
                fsdb_hosts_report(cfg->hosts, i, 0, fsdb_now());
                continue;
            }
            if (!fsdb_hosts_role_fits(tsa, read_only, pass)) {
                fsdb_conn_close(c);
                if (pass == 0)
                    wrong++;
                /* prefer-standby may still take this one on pass 1. */
                if (tsa != FSDB_TSA_PREFER_STANDBY)
                    fsdb_hosts_report(cfg->hosts, i, 0, fsdb_now());
                continue;
            }
            c->host_index = i;
            fsdb_hosts_report(cfg->hosts, i, 1, fsdb_now());
            return c;
        }
    }
    if (wrong > 0 && tsa != FSDB_TSA_PREFER_STANDBY) {
        fsdb_error_set(err, FSDB_ERR_NO_HOST, NULL,
                       "no host is %s (%u of %u answered in another role, %u did not answer "
                       "or were not ready)",
                       role_name(tsa), wrong, n, unreachable);
        return NULL;
    }
    *err = last;
    if (n > 1) {
        size_t len = strlen(err->message);
        snprintf(err->message + len, sizeof err->message - len, " (all %u hosts tried)", n);
    }
    return NULL;
}

int fsdb_failover_recheck(fsdb_conn *c)
{
    const fsdb_conn_config *cfg = c->cfg;
    fsdb_error err;
    int read_only = 0;

    if (!fsdb_failover_checks(cfg))
        return 0;
    /* Any role fits prefer-standby once connected (its second pass). */
    if (role(c, &read_only, &err) != 0
        || !fsdb_hosts_role_fits(cfg->uri.target_session_attrs, read_only, 1)) {
        if (cfg->hosts != NULL)
            fsdb_hosts_report(cfg->hosts, c->host_index, 0, fsdb_now());
        return -1;
    }
    return 0;
}
