/*
 * fuzz_sqlscan.c — libFuzzer target for the placeholder scanner
 * (sqlscan.c), run on every input with both settings of
 * NO_BACKSLASH_ESCAPES.
 *
 * The input is passed with its exact length and no terminating NUL, so
 * ASan sees any read past the end. Every input is held to sqlscan.h's
 * promises:
 *   - an error is one "fsdb: " line and leaves the result empty;
 *   - NAMED: one non-empty name per placeholder, each a word that starts
 *     with a letter or '_'; the rewritten text is NUL-terminated, no
 *     longer than the input, and scanning it again finds as many '?' as
 *     there were names;
 *   - POSITIONAL and NONE: no names, no rewritten text;
 *   - free is idempotent.
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlscan.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "fuzz_sqlscan: broken promise: %s (line %d)\n", #cond,  \
                    __LINE__);                                                       \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static int name_ok(const char *n)
{
    unsigned char c = (unsigned char)n[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
        return 0;
    for (; *n; n++) {
        c = (unsigned char)*n;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c >= 0x80))
            return 0;
    }
    return 1;
}

static void scan(const char *sql, size_t len, int no_backslash)
{
    static const fsdb_sqlscan empty;
    fsdb_sqlscan s, again;
    fsdb_error err;
    unsigned i;

    memset(&err, 0, sizeof err);
    if (fsdb_sqlscan_run(sql, len, no_backslash, &s, &err) != 0) {
        CHECK(err.code == FSDB_ERR_PARAMS || err.code == FSDB_ERR_NOMEM);
        CHECK(strncmp(err.message, "fsdb: ", 6) == 0);
        CHECK(memcmp(&s, &empty, sizeof s) == 0);
        return;
    }
    CHECK(s.multi == 0 || s.multi == 1);
    if (s.style == FSDB_SCAN_NAMED) {
        CHECK(s.nparams > 0 && s.names != NULL && s.sql != NULL);
        for (i = 0; i < s.nparams; i++)
            CHECK(s.names[i] != NULL && name_ok(s.names[i]));
        CHECK(s.sql_len <= len);
        CHECK(s.sql[s.sql_len] == '\0');
        /* The server sees the rewritten text: it must hold exactly one '?'
         * per name, where the names were. */
        if (fsdb_sqlscan_run(s.sql, s.sql_len, no_backslash, &again, &err) == 0) {
            CHECK(again.style == FSDB_SCAN_POSITIONAL);
            CHECK(again.nparams == s.nparams);
            fsdb_sqlscan_free(&again);
        } else {
            CHECK(0 && "the rewritten text does not scan");
        }
    } else {
        CHECK(s.style == FSDB_SCAN_POSITIONAL || s.style == FSDB_SCAN_NONE);
        CHECK(s.names == NULL && s.sql == NULL);
        CHECK((s.style == FSDB_SCAN_NONE) == (s.nparams == 0));
    }
    fsdb_sqlscan_free(&s);
    CHECK(memcmp(&s, &empty, sizeof s) == 0);
    fsdb_sqlscan_free(&s);
}

/* executemany's VALUES group: inside the text, parentheses at both ends,
 * and repeating it must keep the placeholder count a multiple. */
static void values_group(const char *sql, size_t len, int no_backslash)
{
    size_t start = 0, end = 0, k;
    unsigned inside = 0;
    fsdb_sqlscan s;
    fsdb_error err;

    if (!fsdb_sqlscan_values_group(sql, len, no_backslash, &start, &end))
        return;
    CHECK(start < end && end <= len);
    CHECK(sql[start] == '(' && sql[end - 1] == ')');
    for (k = start; k < end; k++)
        inside += sql[k] == '?';
    CHECK(inside > 0);
    if (fsdb_sqlscan_run(sql, len, no_backslash, &s, &err) == 0) {
        CHECK(s.style == FSDB_SCAN_POSITIONAL && s.nparams <= inside);
        fsdb_sqlscan_free(&s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: no NUL after the text, so an over-read shows. */
    char *sql = malloc(size ? size : 1);
    if (sql == NULL)
        return 0;
    memcpy(sql, data, size);
    scan(sql, size, 0);
    scan(sql, size, 1);
    values_group(sql, size, 0);
    values_group(sql, size, 1);
    free(sql);
    return 0;
}
