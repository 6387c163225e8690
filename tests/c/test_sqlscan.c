/*
 * test_sqlscan.c — the placeholder scanner against a table of SQL texts:
 * style, count, names, rewritten text and the multi-statement flag, or the
 * exact error. Ends with "N passed, N failed".
 */
#include "sqlscan.h"

#include <stdio.h>
#include <string.h>

typedef struct scase {
    const char *sql;
    int style;
    unsigned nparams;
    const char *names;     /* comma-joined, NULL when not named */
    const char *rewritten; /* NULL when not named */
    int multi;
    const char *error;     /* exact message, or NULL */
    int no_backslash;      /* scan as under sql_mode NO_BACKSLASH_ESCAPES */
} scase;

static const scase cases[] = {
    {"SELECT 1", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0},
    {"SELECT ?, ?, ?", FSDB_SCAN_POSITIONAL, 3, NULL, NULL, 0, NULL, 0},
    {"SELECT '?'", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT \"?\"", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT `a?b` FROM t", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT 'it''s ?' , ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0},
    {"SELECT 'a\\'?' , ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0},
    {"SELECT `a``?` , ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0},
    {"SELECT 1 -- ?\n, ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0},
    {"SELECT 1 # ?\n, ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0},
    {"SELECT 1 /* ? :x */ , ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0},
    {"SELECT 1--?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 0}, /* "--" needs a space */
    {"SELECT 1 /* unterminated ?", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT 'unterminated ?", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT :a", FSDB_SCAN_NAMED, 1, "a", "SELECT ?", 0, NULL, 0},
    {"SELECT :a, :b_2, :a", FSDB_SCAN_NAMED, 3, "a,b_2,a", "SELECT ?, ?, ?", 0, NULL, 0},
    {"SELECT * FROM t WHERE x=:x AND y = ':y'", FSDB_SCAN_NAMED, 1, "x",
     "SELECT * FROM t WHERE x=? AND y = ':y'", 0, NULL, 0},
    {"SELECT '12:30', :when", FSDB_SCAN_NAMED, 1, "when", "SELECT '12:30', ?", 0, NULL, 0},
    {"SET @a := 1", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT a::b", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT x:y", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT :1", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT (:a)", FSDB_SCAN_NAMED, 1, "a", "SELECT (?)", 0, NULL, 0},
    {"SELECT :a /* :b */ -- :c\n", FSDB_SCAN_NAMED, 1, "a", "SELECT ? /* :b */ -- :c\n", 0, NULL, 0},
    {"SELECT ?, :a", 0, 0, NULL, NULL, 0,
     "fsdb: SQL mixes '?' and ':name' placeholders; use one style per statement", 0},
    {"SELECT :a, ?", 0, 0, NULL, NULL, 0,
     "fsdb: SQL mixes '?' and ':name' placeholders; use one style per statement", 0},
    {"SELECT 1;", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT 1;  -- done\n", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT 1; SELECT 2", FSDB_SCAN_NONE, 0, NULL, NULL, 1, NULL, 0},
    {"SELECT ';' ", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"INSERT INTO t VALUES (?); DROP TABLE t", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 1, NULL, 0},
    {"SELECT 1;'x'", FSDB_SCAN_NONE, 0, NULL, NULL, 1, NULL, 0},
    {"", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0},
    {"SELECT \xc3\xa9:a", FSDB_SCAN_NONE, 0, NULL, NULL, 0, NULL, 0}, /* preceded by a word byte */
    /* A trailing backslash ends the string only under NO_BACKSLASH_ESCAPES. */
    {"SELECT 'C:\\', ':x', :y", FSDB_SCAN_NAMED, 1, "y", "SELECT 'C:\\', ':x', ?", 0, NULL, 1},
    {"SELECT 'C:\\', '?', ?", FSDB_SCAN_POSITIONAL, 1, NULL, NULL, 0, NULL, 1},
    {"SELECT 'C:\\', ':x', :y", FSDB_SCAN_NAMED, 1, "x", "SELECT 'C:\\', '?', :y", 0, NULL, 0},
};

/* executemany's multi-row VALUES: the group found, or NULL for "none". */
typedef struct vcase {
    const char *sql;
    const char *group;
    int no_backslash;
} vcase;

static const vcase vcases[] = {
    {"INSERT INTO t (a, b) VALUES (?, ?)", "(?, ?)", 0},
    {"insert into t values(?,?)", "(?,?)", 0},
    {"  /* c */ INSERT IGNORE INTO t (a) VALUE (?)", "(?)", 0},
    {"REPLACE INTO t (a, b) VALUES (?, NOW())", "(?, NOW())", 0},
    {"INSERT INTO t (a, b) VALUES (?, CONCAT(?, ')'))", "(?, CONCAT(?, ')'))", 0},
    {"INSERT INTO t (a) VALUES (?) ON DUPLICATE KEY UPDATE a = VALUES(a)", "(?)", 0},
    {"INSERT INTO t (a) VALUES (?) AS new ON DUPLICATE KEY UPDATE a = new.a", "(?)", 0},
    {"INSERT INTO `values` (`values`) VALUES (?) -- VALUES (?)", "(?)", 0},
    {"INSERT INTO t (a) VALUES ('it''s (', ?)", "('it''s (', ?)", 0},
    /* With backslash escapes the quote is escaped: the string never ends. */
    {"INSERT INTO t (a) VALUES ('C:\\', ?)", NULL, 0},
    {"INSERT INTO t (a) VALUES ('C:\\', ?)", "('C:\\', ?)", 1},
    {"INSERT INTO t (a) VALUES (?) ON DUPLICATE KEY UPDATE a = ?", NULL, 0},
    {"INSERT INTO t (a) VALUES (?), (?)", NULL, 0},
    /* Found by fuzzing: a placeholder in a second statement. */
    {"INSERT INTO t (a) VALUES (?); UPDATE t SET a = ?", NULL, 0},
    {"INSERT INTO t (a) SELECT ?", NULL, 0},
    {"INSERT INTO t SET a = ?", NULL, 0},
    {"INSERT INTO t (a) VALUES (1)", NULL, 0},
    {"UPDATE t SET a = ? WHERE id = ?", NULL, 0},
    {"DELETE FROM t WHERE id = ?", NULL, 0},
    {"SELECT ? AS values_x", NULL, 0},
    {"INSERT INTO t (a) VALUES (?", NULL, 0},
    {"INSERT INTO t (a, values_x) VALUES (?, ?)", "(?, ?)", 0},
};

static int run_values_cases(void)
{
    int failed = 0;
    size_t i;

    for (i = 0; i < sizeof vcases / sizeof vcases[0]; i++) {
        const vcase *c = &vcases[i];
        size_t start = 0, end = 0;
        int found = fsdb_sqlscan_values_group(c->sql, strlen(c->sql), c->no_backslash, &start, &end);
        int ok = c->group ? found == 1 && end - start == strlen(c->group) &&
                                memcmp(c->sql + start, c->group, end - start) == 0
                          : found == 0;
        if (!ok) {
            failed++;
            printf("FAIL values case %zu: %s\n", i, c->sql);
        }
    }
    return failed;
}

/* Plain SELECTs (replica reads, the retry after a lost connection). */
typedef struct pcase {
    const char *sql;
    int plain;
    int no_backslash; /* -1: both readings must agree */
} pcase;

static const pcase pcases[] = {
    {"SELECT id, name FROM t WHERE id = ?", 1, -1},
    {"  /* c */ select * from t -- for update\n", 1, -1},
    {"(SELECT a FROM t) UNION (SELECT a FROM u)", 1, -1},
    {"SELECT 'FOR UPDATE', `into`, \"@x\" FROM t;", 1, -1},
    {"SELECT a FROM t;  ;", 1, -1},
    {"SELECT lock, value, next FROM t", 1, -1},
    {"SELECT a FROM t FOR UPDATE", 0, -1},
    {"SELECT a FROM t for update skip locked", 0, -1},
    {"SELECT a FROM t LOCK IN SHARE MODE", 0, -1},
    {"SELECT a FROM t FOR SHARE", 0, -1},
    {"SELECT a INTO @x FROM t", 0, -1},
    {"SELECT a FROM t INTO OUTFILE '/tmp/x'", 0, -1},
    {"SELECT @@global.read_only", 0, -1},
    {"SELECT @n := 1", 0, -1},
    {"SELECT GET_LOCK('x', 1)", 0, -1},
    {"SELECT SLEEP(1)", 0, -1},
    {"SELECT LAST_INSERT_ID()", 0, -1},
    {"SELECT NEXT VALUE FOR s", 0, -1},
    {"SELECT nextval(s)", 0, -1},
    {"SELECT a FROM t /*! FOR UPDATE */", 0, -1},
    {"SELECT a FROM t /*M!100000 FOR UPDATE */", 0, -1},
    {"SELECT 1; DELETE FROM t", 0, -1},
    {"SELECT 1; -- done", 1, -1},
    {"INSERT INTO t SELECT * FROM u", 0, -1},
    {"UPDATE t SET a = 1", 0, -1},
    {"WITH x AS (SELECT 1) SELECT * FROM x", 0, -1},
    {"SHOW TABLES", 0, -1},
    {"", 0, -1},
    /* 'C:\' ends the string only without backslash escapes. */
    {"SELECT 'C:\\', ' FOR UPDATE'", 1, 1},
    {"SELECT 'C:\\', ' FOR UPDATE'", 0, 0},
    {"SELECT 'C:\\', ' FOR UPDATE'", 0, -1},
    {"SELECT 'C:\\' FOR UPDATE '", 0, 1},
    {"SELECT 'C:\\' FOR UPDATE '", 0, -1},
    {"SELECT 'C:\\' FOR UPDATE '", 1, 0},
};

static int run_plain_cases(void)
{
    int failed = 0;
    size_t i;
    for (i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
        const pcase *c = &pcases[i];
        if (fsdb_sqlscan_plain_select(c->sql, strlen(c->sql), c->no_backslash) != c->plain) {
            failed++;
            printf("FAIL plain case %zu: %s\n", i, c->sql);
        }
    }
    return failed;
}

int main(void)
{
    int passed = 0, failed = 0, vfailed;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const scase *c = &cases[i];
        fsdb_sqlscan s;
        fsdb_error err;
        char names[256] = "";
        int ok = 1;
        int rc = fsdb_sqlscan_run(c->sql, strlen(c->sql), c->no_backslash, &s, &err);
        /* "plain" promises the scan finds nothing: never for a case where it does. */
        int plain = fsdb_sqlscan_plain(c->sql, strlen(c->sql));

        if (plain && (c->error || c->nparams || c->multi || c->style != FSDB_SCAN_NONE)) {
            failed++;
            printf("FAIL case %zu called plain: %s\n", i, c->sql);
            if (rc == 0)
                fsdb_sqlscan_free(&s);
            continue;
        }

        if (c->error) {
            ok = rc < 0 && strcmp(err.message, c->error) == 0 && err.code == FSDB_ERR_PARAMS;
        } else if (rc < 0) {
            ok = 0;
        } else {
            unsigned k;
            for (k = 0; s.names && k < s.nparams; k++) {
                if (k) strcat(names, ",");
                strcat(names, s.names[k]);
            }
            ok = s.style == c->style && s.nparams == c->nparams && s.multi == c->multi;
            if (c->names)
                ok = ok && strcmp(names, c->names) == 0;
            if (c->rewritten)
                ok = ok && s.sql && strcmp(s.sql, c->rewritten) == 0 && s.sql_len == strlen(c->rewritten);
            else
                ok = ok && s.sql == NULL;
            fsdb_sqlscan_free(&s);
        }
        if (ok) {
            passed++;
        } else {
            failed++;
            printf("FAIL case %zu: %s\n", i, c->sql);
        }
    }
    {
        /* Plain: nothing a scan would act on; the others hold something. */
        static const char *const plain[] = {"SELECT 1", "SELECT id, name FROM t WHERE id = 42",
                                            "", "COMMIT"};
        static const char *const not_plain[] = {"SELECT ?", "SELECT :a", "SELECT 'x'",
                                                "SELECT \"x\"", "SELECT `x`", "SELECT 1 -- c",
                                                "SELECT 1 # c", "SELECT /* c */ 1",
                                                "SELECT 1; SELECT 2", "SELECT 1 - 1"};
        for (i = 0; i < sizeof plain / sizeof plain[0]; i++) {
            int ok = fsdb_sqlscan_plain(plain[i], strlen(plain[i]));
            passed += ok;
            failed += !ok;
            if (!ok)
                printf("FAIL plain: %s\n", plain[i]);
        }
        for (i = 0; i < sizeof not_plain / sizeof not_plain[0]; i++) {
            int ok = !fsdb_sqlscan_plain(not_plain[i], strlen(not_plain[i]));
            passed += ok;
            failed += !ok;
            if (!ok)
                printf("FAIL not plain: %s\n", not_plain[i]);
        }
    }
    vfailed = run_values_cases();
    passed += (int)(sizeof vcases / sizeof vcases[0]) - vfailed;
    failed += vfailed;
    vfailed = run_plain_cases();
    passed += (int)(sizeof pcases / sizeof pcases[0]) - vfailed;
    failed += vfailed;
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
