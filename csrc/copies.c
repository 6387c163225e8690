/*
 * copies.c — the parameter strings of an executemany batch; see copies.h.
 */
#include "copies.h"

#include <stdlib.h>
#include <string.h>

/* Big enough that a batch of short strings needs few blocks, small enough
 * that a call with a handful of rows touches little fresh memory. */
#define BLOCK_MIN (64u * 1024u)

struct fsdb_copies_block {
    fsdb_copies_block *next;
    size_t cap;
    char data[];
};

static fsdb_copies_block *new_block(size_t need)
{
    size_t cap = need > BLOCK_MIN ? need : BLOCK_MIN;
    fsdb_copies_block *b;
    if (cap > (size_t)-1 - sizeof *b)
        return NULL;
    b = malloc(sizeof *b + cap);
    if (b) {
        b->next = NULL;
        b->cap = cap;
    }
    return b;
}

const char *fsdb_copies_put(fsdb_copies *c, const char *s, size_t len)
{
    char *at;
    if (len == 0)
        return "";
    if (c->cur == NULL || c->cur->cap - c->used < len) {
        /* The next kept block when it is big enough, else a new one
         * linked in front of it. */
        fsdb_copies_block *next = c->cur ? c->cur->next : c->first;
        if (next == NULL || next->cap < len) {
            fsdb_copies_block *b = new_block(len);
            if (b == NULL)
                return NULL;
            b->next = next;
            if (c->cur)
                c->cur->next = b;
            else
                c->first = b;
            next = b;
        }
        c->cur = next;
        c->used = 0;
    }
    at = c->cur->data + c->used;
    memcpy(at, s, len);
    c->used += len;
    return at;
}

void fsdb_copies_reset(fsdb_copies *c)
{
    c->cur = NULL;
    c->used = 0;
}

void fsdb_copies_free(fsdb_copies *c)
{
    fsdb_copies_block *b = c->first;
    while (b) {
        fsdb_copies_block *next = b->next;
        free(b);
        b = next;
    }
    c->first = c->cur = NULL;
    c->used = 0;
}
