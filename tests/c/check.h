/*
 * check.h — what the C tests share: the counters, CHECK(cond, what), and
 * the closing line "N passed, N failed" that scripts/run-tests reads.
 */
#ifndef FSDB_TEST_CHECK_H
#define FSDB_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, what)                                   \
    do {                                                    \
        if (cond) {                                         \
            passed++;                                       \
        } else {                                            \
            failed++;                                       \
            printf("FAIL %s (line %d)\n", what, __LINE__);  \
        }                                                   \
    } while (0)

/* Prints the closing line; main's exit status. */
static inline int check_report(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
