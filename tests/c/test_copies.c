/*
 * test_copies.c — csrc/copies.c, executemany's store for a batch's
 * parameter strings: copies intact and never moved until reset, blocks
 * reused after a reset, strings larger than a block, nothing leaked
 * (the build runs under ASan/LSan). Ends with "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "copies.h"

#define N_SMALL 20000

static void fill(char *buf, size_t len, unsigned seed)
{
    size_t i;
    for (i = 0; i < len; i++)
        buf[i] = (char)('a' + (seed + i * 7) % 26);
}

static void test_small_and_stable(void)
{
    static const char *got[N_SMALL];
    static char want[N_SMALL][40];
    fsdb_copies c = FSDB_COPIES_INIT;
    int i, intact = 1;

    for (i = 0; i < N_SMALL; i++) {
        size_t len = 1 + (size_t)i % 39;
        fill(want[i], len, (unsigned)i);
        got[i] = fsdb_copies_put(&c, want[i], len);
        if (got[i] == NULL || got[i] == want[i])
            intact = 0;
    }
    /* 20,000 strings span several blocks: the first ones did not move. */
    for (i = 0; i < N_SMALL && intact; i++)
        intact = memcmp(got[i], want[i], 1 + (size_t)i % 39) == 0;
    CHECK(intact, "small strings copied and never moved");
    CHECK(c.first != NULL && c.first != c.cur, "more than one block");
    CHECK(*fsdb_copies_put(&c, "x", 0) == '\0', "an empty string needs no room");

    /* After a reset the first block is filled again from its start. */
    fsdb_copies_reset(&c);
    CHECK(fsdb_copies_put(&c, "abc", 3) == got[0], "a reset reuses the first block");
    fsdb_copies_free(&c);
    CHECK(c.first == NULL && c.cur == NULL && c.used == 0, "free forgets everything");
}

static void test_large(void)
{
    fsdb_copies c = FSDB_COPIES_INIT;
    size_t big = 300 * 1024;
    char *src = malloc(big);
    const char *small, *large, *after;

    if (src == NULL) {
        CHECK(0, "malloc");
        return;
    }
    fill(src, big, 3);
    small = fsdb_copies_put(&c, "head", 4);
    large = fsdb_copies_put(&c, src, big);
    after = fsdb_copies_put(&c, "tail", 4);
    CHECK(small && large && after, "puts succeed");
    CHECK(memcmp(small, "head", 4) == 0 && memcmp(large, src, big) == 0
              && memcmp(after, "tail", 4) == 0,
          "a string larger than a block is copied whole");

    /* A reset, then a string larger than the first block: a block of its
     * own goes in front, and the kept blocks still serve the small ones. */
    fsdb_copies_reset(&c);
    fill(src, big, 5);
    large = fsdb_copies_put(&c, src, big);
    small = fsdb_copies_put(&c, "again", 5);
    CHECK(large && memcmp(large, src, big) == 0, "large string after a reset");
    CHECK(small && memcmp(small, "again", 5) == 0, "small string after it");
    fsdb_copies_free(&c);
    fsdb_copies_free(&c); /* harmless twice */
    CHECK(c.first == NULL, "freed");
    free(src);
}

int main(void)
{
    test_small_and_stable();
    test_large();
    return check_report();
}
