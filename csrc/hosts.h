/*
 * hosts.h — the hosts of a multi-host URL: the order to try them in and a
 * back-off for the ones that failed (no Lua, no libmariadb).
 *
 * Owns: libpq's load_balance_hosts order (the URL's, or a fresh random
 * one per connect), skipping a host that failed within the last
 * host_recheck_seconds (it is still tried last, so an outage of every host
 * ends as soon as one answers), whether a server's role matches
 * target_session_attrs, and since when no host has answered (for the
 * error that says how long the server has been unreachable).
 *
 * One fsdb_hosts belongs to an engine and is shared by every connect of
 * its pool, which may run on several threads: a mutex guards it.
 */
#ifndef FSDB_HOSTS_H
#define FSDB_HOSTS_H

#include "uri.h"

typedef struct fsdb_hosts fsdb_hosts;

/* For the hosts of u; NULL when out of memory. */
fsdb_hosts *fsdb_hosts_new(const fsdb_uri *u);
void fsdb_hosts_free(fsdb_hosts *h);

/* Fills order (room for fsdb_uri_host_count entries) with host indexes in
 * the order to try at time now: hosts not in back-off first (URL order, or
 * shuffled for load_balance_hosts=random), then the ones in back-off, the
 * one that failed longest ago first. Returns the number of entries. */
unsigned fsdb_hosts_order(fsdb_hosts *h, double now, unsigned *order);

/* Host i answered (ok != 0: also in the wanted role) or failed at now. */
void fsdb_hosts_report(fsdb_hosts *h, unsigned i, int ok, double now);

/* Seconds since every connect has been failing, or 0 when the last one
 * succeeded. */
double fsdb_hosts_down_for(fsdb_hosts *h, double now);

/* Whether a server with this @@read_only fits tsa. prefer-standby takes
 * only a read-only server on the first pass (pass 0) and any on pass 1. */
int fsdb_hosts_role_fits(fsdb_tsa tsa, int read_only, int pass);

/* Passes over the host list tsa needs (2 for prefer-standby, else 1). */
int fsdb_hosts_passes(fsdb_tsa tsa);

/* Whether a role check is needed at all (tsa other than any). */
int fsdb_hosts_checks_role(fsdb_tsa tsa);

#endif
