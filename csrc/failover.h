/*
 * failover.h — connecting to one of a URL's hosts (libmariadb, no Lua).
 *
 * Owns: walking the hosts in the order hosts.c gives, skipping a host that
 * does not answer, a Galera node that is not ready (wsrep_ready = OFF,
 * error 1047) and, for target_session_attrs, a server in the wrong role
 * (@@global.read_only); and the same role check on a pooled connection at
 * pre-ping, so that after a switch-over the pool stops handing out
 * connections to the demoted primary.
 */
#ifndef FSDB_FAILOVER_H
#define FSDB_FAILOVER_H

#include "conn.h"

/* Opens a connection to the first host that answers in the wanted role.
 * Returns NULL with err set: the last host's error when none answered,
 * FSDB_ERR_NO_HOST when some answered but none in the wanted role. */
fsdb_conn *fsdb_failover_open(const fsdb_conn_config *cfg, fsdb_error *err);

/* Whether the role check runs for this configuration at all: a host list,
 * or a target_session_attrs other than any. */
int fsdb_failover_checks(const fsdb_conn_config *cfg);

/* Re-checks a pooled connection: 0 when its server is ready and still in
 * the wanted role, -1 otherwise (the host is put in back-off). */
int fsdb_failover_recheck(fsdb_conn *c);

#endif
