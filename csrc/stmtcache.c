/*
 * stmtcache.c — prepared statements cached per connection; see
 * stmtcache.h.
 */
#include "stmtcache.h"
#include "conn.h"
#include "stmt.h"

#include <stdlib.h>
#include <string.h>

struct fsdb_stmtcache {
    fsdb_stmt **items;
    unsigned n;
    unsigned long tick; /* LRU clock */
};

static unsigned long hash_sql(const char *s, size_t n)
{
    unsigned long h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

fsdb_stmt *fsdb_stmt_get(fsdb_conn *c, const char *sql, size_t len, fsdb_error *err)
{
    unsigned long h = hash_sql(sql, len);
    unsigned i, victim = 0;
    struct fsdb_stmtcache *sc = c->stmts;
    fsdb_stmt *s;

    if (sc == NULL) {
        if ((sc = calloc(1, sizeof *sc)) == NULL) {
            fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory caching a statement");
            return NULL;
        }
        c->stmts = sc;
    }
    for (i = 0; i < sc->n; i++) {
        s = sc->items[i];
        if (s->hash == h && s->key_len == len && memcmp(s->key, sql, len) == 0) {
            s->used = ++sc->tick;
            return s;
        }
    }
    if ((s = fsdb_stmt_prepare(c, sql, len, err)) == NULL)
        return NULL;
    s->hash = h;
    s->used = ++sc->tick;
    /* Every statement lives in the cache (at least one slot), so it is
     * freed with its connection whatever happens to the caller. */
    if (sc->n < c->cfg->stmt_cache_size || sc->n == 0) {
        fsdb_stmt **grown = realloc(sc->items, (sc->n + 1) * sizeof *grown);
        if (grown == NULL) {
            fsdb_stmt_free(s);
            fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory caching a statement");
            return NULL;
        }
        sc->items = grown;
        sc->items[sc->n++] = s;
        return s;
    }
    for (i = 1; i < sc->n; i++)
        if (sc->items[i]->used < sc->items[victim]->used)
            victim = i;
    fsdb_stmt_free(sc->items[victim]);
    sc->items[victim] = s;
    return s;
}

void fsdb_stmt_forget(fsdb_conn *c, fsdb_stmt *s)
{
    struct fsdb_stmtcache *sc = c->stmts;
    unsigned i;
    for (i = 0; sc && i < sc->n; i++) {
        if (sc->items[i] == s) {
            sc->items[i] = sc->items[--sc->n];
            break;
        }
    }
    if (c->pending_stmt == s->st)
        c->pending_stmt = NULL;
    fsdb_stmt_free(s);
}

int fsdb_stmt_execute(fsdb_conn *c, fsdb_stmt **sp, const fsdb_param *params, fsdb_error *err)
{
    fsdb_stmt *s = *sp;
    int attempt;

    for (attempt = 0;; attempt++) {
        if (fsdb_stmt_run(c, s, params, err) == 0)
            return 0;
        /* The table changed under a cached statement. 1615: the server
         * refused to run it. 2057: it ran a read whose column count
         * changed, and Connector/C cannot rebind an open result; closing
         * the statement drains that result. Only statements that return
         * rows get 2057, so running it again repeats a read. */
        if ((err->code != 1615 && err->code != 2057) || attempt == 1)
            return -1;
        {
            char *sql = s->key;
            size_t len = s->key_len;
            s->key = NULL;
            fsdb_stmt_forget(c, s);
            s = *sp = fsdb_stmt_get(c, sql, len, err);
            free(sql);
            if (s == NULL)
                return -1;
        }
    }
}

void fsdb_stmtcache_clear(fsdb_conn *c)
{
    struct fsdb_stmtcache *sc = c->stmts;
    unsigned i;
    if (sc == NULL)
        return;
    for (i = 0; i < sc->n; i++)
        fsdb_stmt_free(sc->items[i]);
    free(sc->items);
    free(sc);
    c->stmts = NULL;
    c->pending_stmt = NULL;
}
