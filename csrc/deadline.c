/*
 * deadline.c — a time limit on the network waits of this thread; see
 * deadline.h.
 */
#include "deadline.h"
#include "pool.h"

#include <errno.h>
#include <poll.h>

static __thread double limit; /* monotonic seconds; 0 = none */
static __thread int cut;      /* the limit ended a wait */

void fsdb_deadline_begin(double until, fsdb_deadline_saved *saved)
{
    saved->until = limit;
    saved->hit = cut;
    if (until > 0 && (limit <= 0 || until < limit))
        limit = until;
    cut = 0;
}

int fsdb_deadline_end(const fsdb_deadline_saved *saved)
{
    int hit = cut;
    limit = saved->until;
    cut = saved->hit;
    return hit;
}

int fsdb_deadline_cut(void)
{
    return cut;
}

int fsdb_deadline_wait(int fd, int is_read, int timeout_ms)
{
    struct pollfd pfd;
    double start = fsdb_now(), now = start;
    int rc;

    pfd.fd = fd;
    pfd.events = is_read ? POLLIN : POLLOUT;
    for (;;) {
        int wait = timeout_ms > 0 ? timeout_ms - (int)((now - start) * 1000.0) : -1;
        int by_limit = 0;

        if (timeout_ms > 0 && wait <= 0) {
            rc = 0;
        } else {
            if (limit > 0 && (limit - now) * 1000.0 < 2e9) {
                /* Rounded up: a wait that ended a little early would only
                 * come back for the rest. */
                double left = (limit - now) * 1000.0;
                int left_ms = left <= 0 ? 0 : (int)left + 1;
                if (wait < 0 || left_ms <= wait) {
                    wait = left_ms;
                    by_limit = 1;
                }
            }
            pfd.revents = 0;
            rc = wait == 0 ? 0 : poll(&pfd, 1, wait);
            if (rc < 0 && errno == EINTR) {
                now = fsdb_now();
                continue;
            }
        }
        if (rc == 0) {
            if (by_limit || (limit > 0 && fsdb_now() >= limit))
                cut = 1;
            errno = ETIMEDOUT;
        }
        return rc;
    }
}
