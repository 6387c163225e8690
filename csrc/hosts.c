/*
 * hosts.c — order, back-off and role fit for the hosts of a URL.
 */
#include "hosts.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

struct fsdb_hosts {
    pthread_mutex_t mu;
    unsigned n;
    int random;
    double recheck;          /* seconds a failed host is skipped */
    double failed_at[FSDB_URI_MAX_HOSTS]; /* 0 = not in back-off */
    double down_since;       /* first failure of the current outage; 0 = up */
    uint64_t rng;            /* xorshift64 state for the random order */
};

fsdb_hosts *fsdb_hosts_new(const fsdb_uri *u)
{
    fsdb_hosts *h = calloc(1, sizeof *h);
    struct timespec ts;

    if (h == NULL)
        return NULL;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return NULL;
    }
    h->n = fsdb_uri_host_count(u);
    h->random = u->load_balance_hosts == FSDB_LB_RANDOM;
    h->recheck = (double)u->host_recheck_seconds; /* filled from fsdb.options */
    /* Engines started in the same instant (forked workers) should not all
     * pick the same first host: mix in the address of the state. */
    clock_gettime(CLOCK_REALTIME, &ts);
    h->rng = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec
             ^ ((uint64_t)(uintptr_t)h << 16) ^ 0x9e3779b97f4a7c15u;
    return h;
}

void fsdb_hosts_free(fsdb_hosts *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static uint64_t next_random(fsdb_hosts *h)
{
    uint64_t x = h->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h->rng = x;
    return x;
}

unsigned fsdb_hosts_order(fsdb_hosts *h, double now, unsigned *order)
{
    unsigned i, j, fresh = 0, k;

    pthread_mutex_lock(&h->mu);
    for (i = 0; i < h->n; i++) {
        if (h->failed_at[i] > 0 && now - h->failed_at[i] >= h->recheck)
            h->failed_at[i] = 0; /* the back-off is over */
        if (h->failed_at[i] == 0)
            order[fresh++] = i;
    }
    if (h->random) {
        /* Fisher–Yates over the hosts not in back-off. */
        for (i = fresh; i > 1; i--) {
            unsigned t;

            j = (unsigned)(next_random(h) % i);
            t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    }
    /* The hosts in back-off last, the one that failed longest ago first. */
    k = fresh;
    for (i = 0; i < h->n; i++) {
        if (h->failed_at[i] == 0)
            continue;
        for (j = k; j > fresh && h->failed_at[order[j - 1]] > h->failed_at[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
        k++;
    }
    pthread_mutex_unlock(&h->mu);
    return h->n;
}

void fsdb_hosts_report(fsdb_hosts *h, unsigned i, int ok, double now)
{
    if (i >= h->n)
        return;
    pthread_mutex_lock(&h->mu);
    if (ok) {
        h->failed_at[i] = 0;
        h->down_since = 0;
    } else {
        h->failed_at[i] = now > 0 ? now : 1e-9;
        if (h->down_since == 0)
            h->down_since = h->failed_at[i];
    }
    pthread_mutex_unlock(&h->mu);
}

double fsdb_hosts_down_for(fsdb_hosts *h, double now)
{
    double d;

    pthread_mutex_lock(&h->mu);
    d = h->down_since > 0 ? now - h->down_since : 0;
    pthread_mutex_unlock(&h->mu);
    return d > 0 ? d : 0;
}

int fsdb_hosts_checks_role(fsdb_tsa tsa)
{
    return tsa == FSDB_TSA_READ_WRITE || tsa == FSDB_TSA_READ_ONLY
           || tsa == FSDB_TSA_PREFER_STANDBY;
}

int fsdb_hosts_passes(fsdb_tsa tsa)
{
    return tsa == FSDB_TSA_PREFER_STANDBY ? 2 : 1;
}

int fsdb_hosts_role_fits(fsdb_tsa tsa, int read_only, int pass)
{
    switch (tsa) {
    case FSDB_TSA_READ_WRITE:
        return !read_only;
    case FSDB_TSA_READ_ONLY:
        return read_only;
    case FSDB_TSA_PREFER_STANDBY:
        return pass > 0 || read_only;
    default:
        return 1;
    }
}
