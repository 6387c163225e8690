/*
 * copies.h — an append-only store for the parameter strings of one
 * executemany batch. Each string is copied out of Lua the moment it is
 * read, so no pointer into Lua memory outlives the read: Lua code may run
 * (a set's __index, a finalizer at any allocation) without a string of
 * the batch going away under the statement, and the batch's bytes lie
 * together, in the order the statement sends them.
 *
 * Blocks are malloc'ed, never moved (pointers handed out stay valid
 * until reset), and kept for reuse by the next batch of the same call.
 */
#ifndef FSDB_COPIES_H
#define FSDB_COPIES_H

#include <stddef.h>

typedef struct fsdb_copies_block fsdb_copies_block;

typedef struct fsdb_copies {
    fsdb_copies_block *first, *cur; /* cur: the block being filled */
    size_t used;                    /* bytes used in cur */
} fsdb_copies;

#define FSDB_COPIES_INIT {NULL, NULL, 0}

/* A copy of s[0..len) that lives until the next reset or free; NULL when
 * out of memory. */
const char *fsdb_copies_put(fsdb_copies *c, const char *s, size_t len);

/* Forgets every copy; the blocks stay for the next batch. */
void fsdb_copies_reset(fsdb_copies *c);

void fsdb_copies_free(fsdb_copies *c);

#endif
