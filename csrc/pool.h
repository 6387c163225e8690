/*
 * pool.h — the connection pool's bookkeeping (no Lua, no libmariadb).
 *
 * Owns: QueuePool semantics (size, overflow, timeout waits, FIFO/LIFO reuse),
 * the decision whether an idle connection may be handed out without a round
 * trip (recycle age, idle past the server's wait_timeout, stale after a
 * disconnect, opened before a fork), counters, and fork detection.
 *
 * Promises: all state is guarded by one mutex; waiting checkouts sleep on a
 * condition variable (CLOCK_MONOTONIC). Callbacks (connect, close, ping) run
 * with the mutex released. An item created before fork() is never pinged,
 * closed politely or reused by the child: it goes to ops->abandon.
 *
 * Connections embed an fsdb_pool_item as their first member; the pool only
 * sees items, so tests can drive it with plain structs.
 */
#ifndef FSDB_POOL_H
#define FSDB_POOL_H

#include <pthread.h>
#include "error.h"

typedef struct fsdb_pool_item {
    struct fsdb_pool_item *prev, *next; /* idle list links */
    double created;      /* monotonic seconds at connect */
    double returned;     /* monotonic seconds at last checkin */
    double idle_limit;   /* seconds it may sit idle (server wait_timeout); 0 = no limit */
    unsigned fork_gen;   /* process generation that created it */
    int checked_out;
    int invalid;         /* failed with a disconnect error: never reuse */
    int needs_reset;     /* came back from a finalizer without its reset: the
                          * checkout runs ops->ping on it, which resets it */
} fsdb_pool_item;

typedef struct fsdb_pool_ops {
    /* Opens a new connection; returns NULL with err set. */
    fsdb_pool_item *(*connect)(void *ud, fsdb_error *err);
    /* Liveness check; 0 alive, -1 dead. deep = 0 asks only whether the
     * socket is still open (no round trip); deep = 1 adds a COM_PING. It
     * also carries out an owed reset (needs_reset), -1 when that fails. */
    int (*ping)(void *ud, fsdb_pool_item *it, int deep);
    /* Polite close (COM_QUIT) and free. */
    void (*close)(void *ud, fsdb_pool_item *it);
    /* Free without touching the socket's peer: the item belongs to the
     * parent of a fork. */
    void (*abandon)(void *ud, fsdb_pool_item *it);
    /* Called once, when the pool is freed. */
    void (*release)(void *ud);
} fsdb_pool_ops;

typedef struct fsdb_pool_config {
    int size;            /* kept idle; >= 0 */
    int max_overflow;    /* extra beyond size; -1 = unlimited */
    double timeout;      /* seconds to wait when exhausted */
    double recycle;      /* max age in seconds; < 0 = never */
    int pre_ping;        /* ping reused connections at checkout */
    double ping_window;  /* no COM_PING if used within this many seconds
                          * (the socket check still runs); 0 = always ping */
    int use_lifo;
} fsdb_pool_config;

typedef struct fsdb_pool_status {
    int size, max_overflow, checked_out, idle, overflow;
    unsigned long connects, pings, invalidated, timeouts, waits, recycled;
    unsigned long expired; /* replaced for sitting idle past the server's wait_timeout */
} fsdb_pool_status;

typedef struct fsdb_pool fsdb_pool;

/* Returns NULL on allocation failure. The pool holds one reference. */
fsdb_pool *fsdb_pool_new(const fsdb_pool_config *cfg, const fsdb_pool_ops *ops, void *ud);

/* Checks a connection out. *is_new tells whether it was just opened.
 * Returns NULL with err set: the connect error, or FSDB_ERR_POOL_TIMEOUT,
 * or FSDB_ERR_CLOSED after fsdb_pool_free. */
fsdb_pool_item *fsdb_pool_checkout(fsdb_pool *p, int *is_new, fsdb_error *err);

/* Returns a connection. discard != 0 closes it instead of keeping it (an
 * unusable or dirty connection). */
void fsdb_pool_checkin(fsdb_pool *p, fsdb_pool_item *it, int discard);

/* The connection failed with a disconnect error: it is discarded on
 * checkin, and every idle connection opened before it is marked stale. */
void fsdb_pool_invalidate(fsdb_pool *p, fsdb_pool_item *it);

/* Closes idle connections; connections out now are closed on return. */
void fsdb_pool_dispose(fsdb_pool *p);

/* Drops the owner's reference: disposes, and frees the pool once the last
 * checked-out connection comes back. */
void fsdb_pool_free(fsdb_pool *p);

void fsdb_pool_get_status(fsdb_pool *p, fsdb_pool_status *st);

/* True when the item was made in another process (before a fork). */
int fsdb_pool_item_foreign(const fsdb_pool_item *it);

/* Monotonic clock in seconds. */
double fsdb_now(void);

#endif
