/*
 * test_pool.c — pool.c without Lua or a server: items are plain structs.
 * Single-threaded semantics first (size, overflow, timeout, FIFO/LIFO,
 * recycle, idle expiry, invalidation, dispose, free with items out, fork),
 * then several threads checking out and in concurrently. Ends with the
 * line "N passed, N failed".
 */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) passed++;                                                      \
        else { failed++; printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

typedef struct fake {
    fsdb_pool_item item; /* first, as in fsdb_conn */
    int id;
    int in_use;
} fake;

typedef struct world {
    pthread_mutex_t mu;
    int next_id, live, closed, abandoned, pings, fail_connect, dead_ping, released;
    int checks; /* every ping call, deep or not */
} world;

static fsdb_pool_item *w_connect(void *ud, fsdb_error *err)
{
    world *w = ud;
    fake *f;
    pthread_mutex_lock(&w->mu);
    if (w->fail_connect) {
        pthread_mutex_unlock(&w->mu);
        fsdb_error_set(err, 2003, "HY000", "can't connect");
        return NULL;
    }
    f = calloc(1, sizeof *f);
    f->id = ++w->next_id;
    w->live++;
    pthread_mutex_unlock(&w->mu);
    return &f->item;
}

static int w_ping(void *ud, fsdb_pool_item *it, int deep)
{
    world *w = ud;
    int dead;
    (void)it;
    pthread_mutex_lock(&w->mu);
    w->checks++;
    if (deep)
        w->pings++;
    dead = w->dead_ping;
    pthread_mutex_unlock(&w->mu);
    return dead ? -1 : 0;
}

static void w_close(void *ud, fsdb_pool_item *it)
{
    world *w = ud;
    pthread_mutex_lock(&w->mu);
    w->live--;
    w->closed++;
    pthread_mutex_unlock(&w->mu);
    free(it);
}

static void w_abandon(void *ud, fsdb_pool_item *it)
{
    world *w = ud;
    w->abandoned++;
    w->live--;
    free(it);
}

static void w_release(void *ud) { ((world *)ud)->released++; }

static const fsdb_pool_ops ops = {w_connect, w_ping, w_close, w_abandon, w_release};

static fsdb_pool_config config(int size, int overflow, double timeout)
{
    fsdb_pool_config c;
    memset(&c, 0, sizeof c);
    c.size = size;
    c.max_overflow = overflow;
    c.timeout = timeout;
    c.recycle = -1;
    c.pre_ping = 1;
    c.ping_window = 0;
    return c;
}

static void init_world(world *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
}

static void test_limits(void)
{
    world w;
    fsdb_pool_config c = config(2, 1, 0.2);
    fsdb_pool *p;
    fsdb_pool_item *a, *b, *d, *e;
    fsdb_error err;
    fsdb_pool_status st;
    int is_new;
    double t0;

    init_world(&w);
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(a && is_new);
    b = fsdb_pool_checkout(p, &is_new, &err);
    d = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b && d);
    fsdb_pool_get_status(p, &st);
    CHECK(st.checked_out == 3 && st.overflow == 1 && st.idle == 0);
    t0 = fsdb_now();
    e = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(e == NULL);
    CHECK(err.code == FSDB_ERR_POOL_TIMEOUT);
    CHECK(strstr(err.message, "fsdb: pool limit of size 2 overflow 1 reached, connection timed out, timeout 0.20") == err.message);
    CHECK(fsdb_now() - t0 >= 0.18 && fsdb_now() - t0 < 0.5);
    fsdb_pool_get_status(p, &st);
    CHECK(st.timeouts == 1 && st.waits == 1);

    fsdb_pool_checkin(p, a, 0);
    fsdb_pool_checkin(p, b, 0);
    fsdb_pool_checkin(p, d, 0); /* overflow: pool already holds size=2 */
    fsdb_pool_get_status(p, &st);
    CHECK(st.idle == 2 && st.checked_out == 0 && st.overflow == 0);
    CHECK(w.closed == 1 && w.live == 2);

    /* Reuse, not reconnect, and a ping for each reused one. */
    a = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(a && !is_new && w.pings == 1);
    fsdb_pool_checkin(p, a, 0);

    /* Discard closes even when there is room. */
    a = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_checkin(p, a, 1);
    fsdb_pool_get_status(p, &st);
    CHECK(st.idle == 1 && w.live == 1);

    fsdb_pool_free(p);
    CHECK(w.live == 0 && w.released == 1);
}

static void test_fifo_lifo(void)
{
    world w;
    fsdb_pool_config c = config(3, 0, 0);
    fsdb_pool *p;
    fsdb_pool_item *a, *b, *x;
    fsdb_error err;
    int is_new;

    init_world(&w);
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    b = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_checkin(p, a, 0);
    fsdb_pool_checkin(p, b, 0);
    x = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(x == a); /* FIFO: oldest returned first */
    fsdb_pool_checkin(p, x, 0);
    fsdb_pool_free(p);

    init_world(&w);
    c.use_lifo = 1;
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    b = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_checkin(p, a, 0);
    fsdb_pool_checkin(p, b, 0);
    x = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(x == b); /* LIFO: last returned first */
    fsdb_pool_checkin(p, x, 0);
    fsdb_pool_free(p);

    /* Zero timeout fails at once instead of waiting. */
    init_world(&w);
    c = config(1, 0, 0);
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    x = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(x == NULL && err.code == FSDB_ERR_POOL_TIMEOUT);
    fsdb_pool_checkin(p, a, 0);
    fsdb_pool_free(p);
}

static void test_replacement(void)
{
    world w;
    fsdb_pool_config c = config(2, 0, 1);
    fsdb_pool *p;
    fsdb_pool_item *a, *b;
    fsdb_error err;
    fsdb_pool_status st;
    int is_new;

    /* Idle past the server's wait_timeout: replaced without a ping. */
    init_world(&w);
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    a->idle_limit = 1.0; /* wait_timeout=1 → replace after 0 s idle */
    fsdb_pool_checkin(p, a, 0);
    b = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b && is_new && w.pings == 0 && w.closed == 1);
    fsdb_pool_get_status(p, &st);
    CHECK(st.expired == 1 && st.invalidated == 0 && st.recycled == 0);
    fsdb_pool_checkin(p, b, 0);

    /* In use all along: idle expiry counts from its checkin, not from the
     * previous one, so coming back late does not close it. */
    b = fsdb_pool_checkout(p, &is_new, &err);
    b->idle_limit = 2.0;
    b->returned -= 10.0; /* its previous checkin, long ago */
    fsdb_pool_checkin(p, b, 0);
    fsdb_pool_get_status(p, &st);
    CHECK(st.idle == 1 && w.closed == 1);
    a = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(a == b && !is_new);
    fsdb_pool_checkin(p, a, 0);

    /* Recycle age. */
    fsdb_pool_free(p);
    init_world(&w);
    c.recycle = 0.05;
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_checkin(p, a, 0);
    usleep(80000);
    b = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b && is_new);
    fsdb_pool_get_status(p, &st);
    CHECK(st.recycled == 1);
    fsdb_pool_checkin(p, b, 0);
    fsdb_pool_free(p);

    /* A dead ping is replaced transparently. */
    init_world(&w);
    c.recycle = -1;
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_checkin(p, a, 0);
    w.dead_ping = 1;
    b = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b && is_new && w.closed == 1);
    w.dead_ping = 0;
    fsdb_pool_get_status(p, &st);
    CHECK(st.invalidated == 1 && st.checked_out == 1);
    fsdb_pool_checkin(p, b, 0);

    /* Returned by a finalizer without its reset: the checkout runs the
     * check (which resets) even with pre_ping off, and replaces it when
     * that fails. */
    c.pre_ping = 0;
    fsdb_pool_free(p);
    init_world(&w);
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_checkin(p, a, 0);
    b = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b == a && w.checks == 0); /* no check when nothing is owed */
    b->needs_reset = 1;
    fsdb_pool_checkin(p, b, 0);
    b = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b == a && w.checks == 1 && w.pings == 0);
    b->needs_reset = 1;
    fsdb_pool_checkin(p, b, 0);
    w.dead_ping = 1;
    b = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b && is_new && w.closed == 1 && !b->needs_reset);
    w.dead_ping = 0;
    fsdb_pool_checkin(p, b, 0);
    c.pre_ping = 1;

    /* Invalidation: the failed one is closed on return and idle ones
     * opened before it are not reused. */
    a = fsdb_pool_checkout(p, &is_new, &err); /* the idle one */
    b = fsdb_pool_checkout(p, &is_new, &err); /* a new one */
    fsdb_pool_checkin(p, a, 0);
    fsdb_pool_invalidate(p, b);
    fsdb_pool_checkin(p, b, 0);
    fsdb_pool_get_status(p, &st);
    CHECK(st.idle == 1);
    a = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(a && is_new); /* the older idle one was stale */
    fsdb_pool_checkin(p, a, 0);

    /* Connect failure frees the slot and reports the error. */
    fsdb_pool_dispose(p);
    w.fail_connect = 1;
    a = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(a == NULL && err.code == 2003);
    fsdb_pool_get_status(p, &st);
    CHECK(st.checked_out == 0 && st.idle == 0 && st.overflow == 0);
    w.fail_connect = 0;

    /* A server that cannot be reached makes the connections made before
     * stale: one out during the failed connect is closed on return. */
    a = fsdb_pool_checkout(p, &is_new, &err);
    w.fail_connect = 1;
    b = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(b == NULL && err.code == 2003);
    w.fail_connect = 0;
    fsdb_pool_checkin(p, a, 0);
    fsdb_pool_get_status(p, &st);
    CHECK(st.idle == 0 && st.checked_out == 0);
    a = fsdb_pool_checkout(p, &is_new, &err);
    CHECK(a != NULL && is_new);
    fsdb_pool_checkin(p, a, 0);
    fsdb_pool_free(p);
    CHECK(w.live == 0);
}

static void test_free_with_items_out(void)
{
    world w;
    fsdb_pool_config c = config(2, 0, 1);
    fsdb_pool *p;
    fsdb_pool_item *a;
    fsdb_error err;
    int is_new;

    init_world(&w);
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_free(p);
    CHECK(w.released == 0); /* still one out */
    fsdb_pool_checkin(p, a, 0);
    CHECK(w.released == 1 && w.live == 0);
}

static void test_fork(void)
{
    world w;
    fsdb_pool_config c = config(2, 0, 1);
    fsdb_pool *p;
    fsdb_pool_item *a, *b;
    fsdb_error err;
    int is_new, status;
    pid_t pid;

    init_world(&w);
    p = fsdb_pool_new(&c, &ops, &w);
    a = fsdb_pool_checkout(p, &is_new, &err);
    b = fsdb_pool_checkout(p, &is_new, &err);
    fsdb_pool_checkin(p, a, 0); /* a idle, b out */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        /* Child: empty pool, inherited items abandoned, never closed. */
        fsdb_pool_status st;
        fsdb_pool_item *x;
        failed = 0;
        fsdb_pool_get_status(p, &st);
        CHECK(st.idle == 0 && st.checked_out == 0);
        CHECK(w.abandoned == 1 && w.closed == 0);
        CHECK(fsdb_pool_item_foreign(b));
        x = fsdb_pool_checkout(p, &is_new, &err);
        CHECK(x != NULL && is_new);
        fsdb_pool_checkin(p, b, 0); /* parent's: abandoned, not counted */
        CHECK(w.abandoned == 2 && w.closed == 0);
        fsdb_pool_checkin(p, x, 0);
        fsdb_pool_get_status(p, &st);
        CHECK(st.idle == 1 && st.checked_out == 0);
        fflush(stdout);
        _exit(failed ? 1 : 0);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Parent untouched. */
    CHECK(!fsdb_pool_item_foreign(b));
    fsdb_pool_checkin(p, b, 0);
    {
        fsdb_pool_status st;
        fsdb_pool_get_status(p, &st);
        CHECK(st.idle == 2 && st.checked_out == 0 && w.abandoned == 0);
    }
    fsdb_pool_free(p);
}

/* Threads hammering a small pool: no item is ever handed to two threads at
 * once, counters stay consistent, every checkout either succeeds or times
 * out cleanly. */
#define THREADS 8
#define ROUNDS 2000

typedef struct shared {
    fsdb_pool *p;
    int errors, timeouts;
    pthread_mutex_t mu;
} shared;

static void *worker(void *arg)
{
    shared *s = arg;
    int i, is_new;
    fsdb_error err;
    for (i = 0; i < ROUNDS; i++) {
        fsdb_pool_item *it = fsdb_pool_checkout(s->p, &is_new, &err);
        fake *f = (fake *)it;
        if (it == NULL) {
            pthread_mutex_lock(&s->mu);
            if (err.code == FSDB_ERR_POOL_TIMEOUT) s->timeouts++; else s->errors++;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (__atomic_exchange_n(&f->in_use, 1, __ATOMIC_SEQ_CST) != 0) {
            pthread_mutex_lock(&s->mu);
            s->errors++;
            pthread_mutex_unlock(&s->mu);
        }
        if (i % 7 == 0)
            sched_yield();
        __atomic_store_n(&f->in_use, 0, __ATOMIC_SEQ_CST);
        fsdb_pool_checkin(s->p, it, i % 97 == 0);
    }
    return NULL;
}

static void test_threads(void)
{
    world w;
    fsdb_pool_config c = config(3, 2, 5.0);
    shared s;
    pthread_t t[THREADS];
    fsdb_pool_status st;
    int i;

    init_world(&w);
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    c.ping_window = 0.001;
    s.p = fsdb_pool_new(&c, &ops, &w);
    for (i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, &s);
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    fsdb_pool_get_status(s.p, &st);
    CHECK(s.errors == 0);
    CHECK(s.timeouts == 0);
    CHECK(st.checked_out == 0 && st.idle <= 3 && st.overflow == 0);
    CHECK(w.live == st.idle);
    CHECK(st.connects >= 3);
    fsdb_pool_free(s.p);
    CHECK(w.live == 0 && w.released == 1);
}

int main(void)
{
    test_limits();
    test_fifo_lifo();
    test_replacement();
    test_free_with_items_out();
    test_fork();
    test_threads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
