/*
 * pool.c — connection pool bookkeeping; see pool.h for the contract.
 *
 * The idle list is a doubly linked queue: checkin appends at the tail,
 * FIFO checkout takes the head (spreads use, lets idle ones age out),
 * LIFO takes the tail (keeps few connections warm).
 */
#include "pool.h"
#include "deadline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fsdb_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fsdb_pool_config cfg;
    const fsdb_pool_ops *ops;
    void *ud;
    fsdb_pool_item *head, *tail; /* idle connections */
    int idle;
    int total;          /* idle + checked out, this process only */
    int waiting;        /* threads inside a timed wait */
    int closing;        /* owner gone: free when total and waiting reach 0 */
    unsigned gen;       /* fork generation the state belongs to */
    double stale_before; /* connections created before this are not reused */
    int reached;        /* a connect has succeeded once: failures are an outage */
    double down_since;  /* first failed connect of the current outage; 0 = none */
    fsdb_pool_status counters;
};

/* Bumped in the child after fork(); compared, never locked: the child runs
 * one thread when the handler fires. */
static volatile unsigned fork_generation = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { fork_generation++; }
static void install_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

double fsdb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int fsdb_pool_item_foreign(const fsdb_pool_item *it)
{
    return it->fork_gen != fork_generation;
}

static void init_sync(fsdb_pool *p)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
}

fsdb_pool *fsdb_pool_new(const fsdb_pool_config *cfg, const fsdb_pool_ops *ops, void *ud)
{
    fsdb_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    pthread_once(&atfork_once, install_atfork);
    p->cfg = *cfg;
    p->ops = ops;
    p->ud = ud;
    p->gen = fork_generation;
    p->stale_before = -1.0;
    init_sync(p);
    return p;
}

static void unlink_item(fsdb_pool *p, fsdb_pool_item *it)
{
    if (it->prev) it->prev->next = it->next; else p->head = it->next;
    if (it->next) it->next->prev = it->prev; else p->tail = it->prev;
    it->prev = it->next = NULL;
    p->idle--;
}

static void append_item(fsdb_pool *p, fsdb_pool_item *it)
{
    it->next = NULL;
    it->prev = p->tail;
    if (p->tail) p->tail->next = it; else p->head = it;
    p->tail = it;
    p->idle++;
}

/* In a forked child the inherited state describes the parent's sockets:
 * forget it (abandon, never COM_QUIT) and start empty. The mutex may have
 * been held by a parent thread that does not exist here: re-create it. */
static void adopt_after_fork(fsdb_pool *p)
{
    fsdb_pool_item *it, *next;
    if (p->gen == fork_generation)
        return;
    init_sync(p);
    for (it = p->head; it; it = next) {
        next = it->next;
        p->ops->abandon(p->ud, it);
    }
    p->head = p->tail = NULL;
    p->idle = p->total = p->waiting = 0;
    memset(&p->counters, 0, sizeof p->counters);
    p->gen = fork_generation;
}

static void destroy(fsdb_pool *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    if (p->ops->release)
        p->ops->release(p->ud);
    free(p);
}

/* Call with the lock held; unlocks. Frees the pool if it is finished. */
static void unlock_and_maybe_destroy(fsdb_pool *p)
{
    int done = p->closing && p->total == 0 && p->waiting == 0;
    pthread_mutex_unlock(&p->mu);
    if (done)
        destroy(p);
}

/* Why an idle connection may not be handed out, or NULL. No I/O. At
 * checkin the idle test is skipped: the connection was in use until now,
 * whenever it was last returned. */
static const char *unusable(const fsdb_pool *p, const fsdb_pool_item *it, double now,
                            int at_checkin)
{
    if (it->invalid)
        return "invalidated";
    if (it->created <= p->stale_before)
        return "stale";
    if (p->cfg.recycle >= 0 && now - it->created > p->cfg.recycle)
        return "recycled";
    /* The server drops a connection idle for wait_timeout seconds; replace
     * it a second early rather than let "server has gone away" through. */
    if (!at_checkin && it->idle_limit > 0 && now - it->returned >= it->idle_limit - 1.0)
        return "expired";
    return NULL;
}

/* Connect failures that a short outage causes (restart, failover, a
 * Galera node rejoining): a checkout retries them until pool_timeout. */
static int outage(unsigned code)
{
    switch (code) {
    case 1040: /* too many connections */
    case 1047: /* Galera node not ready */
    case 1053: /* server shutdown in progress */
    case 2002: /* cannot connect (refused, on Connector/C 3.3 also TCP) */
    case 2003:
    case FSDB_ERR_NO_HOST: /* a switch-over has no primary yet */
        return 1;
    default:
        return fsdb_error_is_disconnect(code);
    }
}

/* With the lock held: waits up to secs for a checkin (which also ends the
 * nap, as a free connection is better than a new one). */
static void nap(fsdb_pool *p, double secs)
{
    struct timespec ts;
    double until = fsdb_now() + secs, whole;

    /* The condition variable waits on CLOCK_MONOTONIC (see fsdb_pool_new). */
    whole = (double)(long long)until;
    ts.tv_sec = (time_t)whole;
    ts.tv_nsec = (long)((until - whole) * 1e9);
    p->waiting++;
    while (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == EINTR)
        ;
    p->waiting--;
}

/* A connect or ping ran out of the checkout's time: the caller sees a
 * pool timeout, with what the server failed to do as the cause (and for
 * how long it has been unreachable, down_for >= 0). */
static void timed_out(double timeout, double down_for, fsdb_error *err)
{
    char cause[FSDB_ERRMSG_SIZE], since[96] = "", n1[32], n2[32];
    const char *msg = err->message;
    char *hint;

    if (strncmp(msg, "fsdb: ", 6) == 0)
        msg += 6;
    snprintf(cause, sizeof cause, "%s", msg);
    if ((hint = strstr(cause, "; hint: ")) != NULL)
        *hint = '\0';
    if (down_for >= 0)
        snprintf(since, sizeof since, "the server has been unreachable for %s s, and ",
                 fsdb_fixed(n1, sizeof n1, down_for, 1));
    fsdb_error_set(err, FSDB_ERR_POOL_TIMEOUT, NULL,
                   "no connection within pool_timeout %s s: %sthe server did not finish "
                   "opening or checking one in time (%.300s); hint: the server or the network "
                   "is not answering (overloaded, stopped, or a proxy or firewall holding the "
                   "connection); check it, or raise pool_timeout",
                   fsdb_fixed(n2, sizeof n2, timeout, 2), since, cause);
}

/* The checkout itself; deadline is its start plus pool_timeout. *late:
 * the failure in err is an attempt the deadline stopped (the caller makes
 * it a pool timeout). */
static fsdb_pool_item *take(fsdb_pool *p, int *is_new, fsdb_error *err, double deadline,
                            int *late)
{
    double backoff = 0.05;
    fsdb_pool_item *it;
    double now;
    int waited = 0, have_prev = 0;
    fsdb_error prev; /* the last attempt that failed by itself */
    const char *why;

    adopt_after_fork(p);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->closing) {
            fsdb_error_set(err, FSDB_ERR_CLOSED, NULL, "engine is disposed");
            unlock_and_maybe_destroy(p);
            return NULL;
        }
        if (p->head) {
            it = p->cfg.use_lifo ? p->tail : p->head;
            unlink_item(p, it);
            now = fsdb_now();
            if ((why = unusable(p, it, now, 0)) != NULL) {
                p->total--;
                if (why[0] == 'r')
                    p->counters.recycled++;
                else if (why[0] == 'e')
                    p->counters.expired++;
                else
                    p->counters.invalidated++;
                pthread_mutex_unlock(&p->mu);
                p->ops->close(p->ud, it);
                pthread_mutex_lock(&p->mu);
                continue;
            }
            it->checked_out = 1;
            if (p->cfg.pre_ping || it->needs_reset) {
                int deep = p->cfg.pre_ping && now - it->returned >= p->cfg.ping_window;
                if (deep)
                    p->counters.pings++;
                pthread_mutex_unlock(&p->mu);
                if (p->ops->ping(p->ud, it, deep) != 0) {
                    pthread_mutex_lock(&p->mu);
                    /* Whatever killed it (restart, KILL, idle expiry) likely
                     * killed its idle siblings opened before it too. */
                    if (p->stale_before < now)
                        p->stale_before = now;
                    p->total--;
                    p->counters.invalidated++;
                    pthread_mutex_unlock(&p->mu);
                    p->ops->close(p->ud, it);
                    pthread_mutex_lock(&p->mu);
                    /* Out of time: the other idle ones would fail their
                     * ping at once, as if dead. */
                    if (fsdb_deadline_cut()) {
                        p->counters.timeouts++;
                        fsdb_error_set(err, FSDB_ERR_INTERNAL, NULL,
                                       "an idle connection's pre-ping got no answer");
                        *late = 1;
                        unlock_and_maybe_destroy(p);
                        return NULL;
                    }
                    continue;
                }
                *is_new = 0;
                return it;
            }
            pthread_mutex_unlock(&p->mu);
            *is_new = 0;
            return it;
        }
        if (p->cfg.max_overflow < 0 || p->total < p->cfg.size + p->cfg.max_overflow) {
            p->total++;
            pthread_mutex_unlock(&p->mu);
            it = p->ops->connect(p->ud, err);
            pthread_mutex_lock(&p->mu);
            if (it == NULL) {
                int cut = fsdb_deadline_cut();
                p->total--;
                now = fsdb_now();
                if (cut) {
                    p->counters.timeouts++;
                    /* An attempt that failed by itself (refused, no host
                     * in the role) says more than one the deadline cut. */
                    if (have_prev)
                        *err = prev;
                }
                /* The server cannot be reached: the idle connections to it
                 * are most likely dead too (restart, failover). */
                if (err->code == 2002 || err->code == 2003 || fsdb_error_is_disconnect(err->code))
                    p->stale_before = now;
                pthread_cond_signal(&p->cv);
                /* HikariCP's promise: once the server has been reached, a
                 * checkout rides out an outage until pool_timeout, with a
                 * growing pause between attempts. A server never reached
                 * (a wrong URL) fails at once. */
                if (p->reached && outage(err->code) && !p->closing) {
                    if (p->down_since == 0)
                        p->down_since = now;
                    if (!cut && now + 0.001 < deadline) {
                        prev = *err;
                        have_prev = 1;
                        nap(p, backoff < deadline - now ? backoff : deadline - now);
                        backoff = backoff * 2 < 1.0 ? backoff * 2 : 1.0;
                        continue;
                    }
                    if (cut && !have_prev) {
                        timed_out(p->cfg.timeout, now - p->down_since, err);
                    } else {
                        size_t len = strlen(err->message);
                        char n1[32], n2[32];
                        snprintf(err->message + len, sizeof err->message - len,
                                 " (the server has been unreachable for %s s; gave up after "
                                 "pool_timeout %s s)",
                                 fsdb_fixed(n1, sizeof n1, now - p->down_since, 1),
                                 fsdb_fixed(n2, sizeof n2, p->cfg.timeout, 1));
                    }
                } else if (cut && !have_prev) {
                    *late = 1;
                }
                unlock_and_maybe_destroy(p);
                return NULL;
            }
            p->reached = 1;
            p->down_since = 0;
            p->counters.connects++;
            now = fsdb_now();
            it->created = it->returned = now;
            it->fork_gen = p->gen;
            it->checked_out = 1;
            it->invalid = 0;
            it->needs_reset = 0;
            it->prev = it->next = NULL;
            pthread_mutex_unlock(&p->mu);
            *is_new = 1;
            return it;
        }
        /* Exhausted: wait for a checkin or a freed slot. */
        now = fsdb_now();
        if (!waited) {
            waited = 1;
            p->counters.waits++;
        }
        if (now >= deadline) {
            char t[32];
            p->counters.timeouts++;
            fsdb_fixed(t, sizeof t, p->cfg.timeout, 2);
            if (p->cfg.max_overflow < 0)
                fsdb_error_set(err, FSDB_ERR_POOL_TIMEOUT, NULL,
                               "pool limit of size %d reached, connection timed out, timeout %s",
                               p->cfg.size, t);
            else
                fsdb_error_set(err, FSDB_ERR_POOL_TIMEOUT, NULL,
                               "pool limit of size %d overflow %d reached, connection timed out, timeout %s",
                               p->cfg.size, p->cfg.max_overflow, t);
            pthread_mutex_unlock(&p->mu);
            return NULL;
        } else {
            struct timespec ts;
            double whole = (double)(long long)deadline;
            ts.tv_sec = (time_t)whole;
            ts.tv_nsec = (long)((deadline - whole) * 1e9);
            p->waiting++;
            while (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == EINTR)
                ;
            p->waiting--;
        }
    }
}

fsdb_pool_item *fsdb_pool_checkout(fsdb_pool *p, int *is_new, fsdb_error *err)
{
    /* pool_timeout counts from here: for the wait for a free connection,
     * and for every network wait of the connects and pings made for this
     * checkout (a server that accepts and never answers would otherwise
     * cost connect_timeout per attempt). 0 waits for no free connection
     * and leaves connects to connect_timeout. */
    double timeout = p->cfg.timeout; /* p may be gone when take fails */
    double deadline = fsdb_now() + (timeout > 0 ? timeout : 0);
    fsdb_deadline_saved saved;
    fsdb_pool_item *it;
    int late = 0;

    fsdb_deadline_begin(timeout > 0 ? deadline : 0, &saved);
    it = take(p, is_new, err, deadline, &late);
    fsdb_deadline_end(&saved);
    if (it == NULL && late)
        timed_out(timeout, -1.0, err);
    return it;
}

void fsdb_pool_checkin(fsdb_pool *p, fsdb_pool_item *it, int discard)
{
    double now;

    adopt_after_fork(p);
    if (it->fork_gen != p->gen) {
        /* Checked out by the parent before fork(): not ours to count. */
        p->ops->abandon(p->ud, it);
        return;
    }
    pthread_mutex_lock(&p->mu);
    it->checked_out = 0;
    now = fsdb_now();
    if (discard || p->closing || p->idle >= p->cfg.size || unusable(p, it, now, 1)) {
        p->total--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        p->ops->close(p->ud, it);
        pthread_mutex_lock(&p->mu);
        unlock_and_maybe_destroy(p);
        return;
    }
    it->returned = now;
    append_item(p, it);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void fsdb_pool_invalidate(fsdb_pool *p, fsdb_pool_item *it)
{
    adopt_after_fork(p);
    pthread_mutex_lock(&p->mu);
    if (!it->invalid) {
        it->invalid = 1;
        p->counters.invalidated++;
        if (p->stale_before < it->created)
            p->stale_before = it->created;
    }
    pthread_mutex_unlock(&p->mu);
}

/* Detaches the idle list under the lock and closes it outside. */
static void close_idle(fsdb_pool *p)
{
    fsdb_pool_item *it, *next, *list;
    pthread_mutex_lock(&p->mu);
    list = p->head;
    p->total -= p->idle;
    p->head = p->tail = NULL;
    p->idle = 0;
    pthread_mutex_unlock(&p->mu);
    for (it = list; it; it = next) {
        next = it->next;
        p->ops->close(p->ud, it);
    }
}

void fsdb_pool_dispose(fsdb_pool *p)
{
    adopt_after_fork(p);
    pthread_mutex_lock(&p->mu);
    /* Connections out right now are closed when they come back. */
    p->stale_before = fsdb_now();
    pthread_mutex_unlock(&p->mu);
    close_idle(p);
}

void fsdb_pool_free(fsdb_pool *p)
{
    if (p == NULL)
        return;
    adopt_after_fork(p);
    close_idle(p);
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    pthread_cond_broadcast(&p->cv);
    unlock_and_maybe_destroy(p);
}

void fsdb_pool_get_status(fsdb_pool *p, fsdb_pool_status *st)
{
    adopt_after_fork(p);
    pthread_mutex_lock(&p->mu);
    *st = p->counters;
    st->size = p->cfg.size;
    st->max_overflow = p->cfg.max_overflow;
    st->idle = p->idle;
    st->checked_out = p->total - p->idle;
    st->overflow = p->total > p->cfg.size ? p->total - p->cfg.size : 0;
    pthread_mutex_unlock(&p->mu);
}
