/*
 * deadline.h — a time limit on the network waits of this thread.
 *
 * Owns: the limit a pool checkout puts on every wait its connects, pings
 * and on_connect make (pool_timeout counts from the checkout's start, and
 * connect_timeout/read_timeout are per wait), and whether the limit cut a
 * wait short. Connector/C calls fsdb_deadline_wait for each wait of a
 * connection (MARIADB_OPT_IO_WAIT, set in conn.c); without a limit it is
 * the same poll Connector/C would make.
 *
 * Promises: no allocation, no Lua, no libmariadb; thread-local state, so
 * threads with their own pools never see each other's limits. Limits nest:
 * begin saves the enclosing one, end puts it back.
 */
#ifndef FSDB_DEADLINE_H
#define FSDB_DEADLINE_H

typedef struct fsdb_deadline_saved {
    double until;
    int hit;
} fsdb_deadline_saved;

/* From now on, waits end at until (monotonic seconds, fsdb_now); until <= 0
 * sets no limit. The enclosing limit goes to *saved; the tighter of the two
 * applies. */
void fsdb_deadline_begin(double until, fsdb_deadline_saved *saved);

/* Puts the enclosing limit back; returns 1 when the limit set by begin
 * ended a wait (the wait failed as timed out because of it). */
int fsdb_deadline_end(const fsdb_deadline_saved *saved);

/* Whether a wait was cut short since begin (end also tells). */
int fsdb_deadline_cut(void);

/* One wait for fd to be readable (is_read) or writable, at most
 * timeout_ms (<= 0: no limit of its own) and never past the thread's
 * limit. Returns > 0 ready, 0 timed out (errno ETIMEDOUT), < 0 error. */
int fsdb_deadline_wait(int fd, int is_read, int timeout_ms);

#endif
