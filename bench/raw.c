/*
 * raw.c — the physical reference for bench/run: the same workloads as the
 * Lua and Python stacks, written straight against libmariadb (Connector/C),
 * with the text protocol or with prepared statements.
 *
 *   usage: raw text|prep WORKLOAD [N]
 *   WORKLOAD: w1 w2 w3 w3s w4 w5 start (see bench/README.md)
 *
 * Connection from FSDB_TEST_HOST/PORT/USER/PASSWORD/DB (written by
 * scripts/testdb). Prints "key value" lines: ops, seconds, check, rss_kib
 * (and startup_us for "start"). Exits non-zero on any error.
 *
 * It does the least a C program must do for each workload — that is the
 * point of a reference — but it does touch every value it fetches.
 */
#include "items.h"

#include <mysql.h>
#ifdef BENCH_CALLGRIND
#include <valgrind/callgrind.h>
#define PROFILE_TOGGLE() CALLGRIND_TOGGLE_COLLECT
#else
#define PROFILE_TOGGLE() ((void)0)
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEL_ROW "SELECT id, name, price, qty, created, note FROM items"
#define INS_ROW "INSERT INTO items_w (name, price, qty, created, note) VALUES "
/* Untimed round trips before w1 and w2, as in every stack. */
#define WARMUP 200

static MYSQL *my;
static int prepared;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("raw: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void die_my(const char *what) { die("%s: %s (%u)", what, mysql_error(my), mysql_errno(my)); }

static void die_st(MYSQL_STMT *st, const char *what)
{
    die("%s: %s (%u)", what, mysql_stmt_error(st), mysql_stmt_errno(st));
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        die("%s is not set (run through bench/run)", name);
    return v;
}

static long rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static void connect_db(void)
{
    if ((my = mysql_init(NULL)) == NULL)
        die("mysql_init failed");
    mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(my, env("FSDB_TEST_HOST"), env("FSDB_TEST_USER"),
                            env("FSDB_TEST_PASSWORD"), env("FSDB_TEST_DB"),
                            (unsigned)atoi(env("FSDB_TEST_PORT")), NULL, 0))
        die_my("connect");
}

static void query(const char *sql, unsigned long len)
{
    if (mysql_real_query(my, sql, len) != 0)
        die_my(sql);
}

static void exec_simple(const char *sql) { query(sql, (unsigned long)strlen(sql)); }

static MYSQL_STMT *prepare(const char *sql)
{
    MYSQL_STMT *st = mysql_stmt_init(my);
    if (st == NULL)
        die_my("mysql_stmt_init");
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0)
        die_st(st, sql);
    return st;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Set while warming up: the run is neither reported nor profiled. */
static int warming;
static double cpu0, cpu_secs;

/* Timing (and, built with -DBENCH_CALLGRIND, callgrind's collection)
 * covers exactly what every stack times. */
static double timer_start(void)
{
    if (!warming)
        PROFILE_TOGGLE();
    cpu0 = cpu_now();
    return now();
}

static double timer_stop(double t0)
{
    double t = now() - t0;
    cpu_secs = cpu_now() - cpu0;
    if (!warming)
        PROFILE_TOGGLE();
    return t;
}

static void report(long ops, double secs, long long check)
{
    if (warming)
        return;
    printf("ops %ld\nseconds %.6f\ncpu_seconds %.6f\ncheck %lld\nrss_kib %ld\n", ops, secs,
           cpu_secs, check, rss_kib());
}

/* ---- rows written by w4/w5: the same values in every stack ---- */

typedef struct row {
    char name[32], price[16], created[24], note[32];
    unsigned long name_len, price_len, created_len, note_len;
    long long qty;
    char note_null;
} row;

static void gen_row(long i, row *r)
{
    r->name_len = (unsigned long)snprintf(r->name, sizeof r->name, "item %ld", i);
    r->price_len = (unsigned long)snprintf(r->price, sizeof r->price, "%ld.%02ld", i % 1000, i % 100);
    r->qty = i % 50;
    r->created_len = (unsigned long)snprintf(r->created, sizeof r->created,
                                             "2026-%02ld-%02ld %02ld:%02ld:%02ld", 1 + i % 12,
                                             1 + i % 28, i % 24, i % 60, (i * 7) % 60);
    r->note_null = i % 5 == 0;
    r->note_len = r->note_null ? 0 : (unsigned long)snprintf(r->note, sizeof r->note, "note %ld", i);
}

static row *gen_rows(long n)
{
    row *rows = malloc((size_t)n * sizeof *rows);
    long i;
    if (rows == NULL)
        die("out of memory");
    for (i = 0; i < n; i++)
        gen_row(i + 1, &rows[i]);
    return rows;
}

/* ---- result binding for the six item columns (prepared) ---- */

static void bind_items(MYSQL_STMT *st, item_binds *ib)
{
    item_binds_init(ib);
    if (mysql_stmt_bind_result(st, ib->b) != 0)
        die_st(st, "bind_result");
}

/* What every stack adds up for a fetched item row: the id, the quantity
 * and the length of each text value as the server prints it (a DATETIME
 * is 19 characters, a NULL note counts 0). */
static long long item_check_bin(const item_binds *ib)
{
    return ib->id + ib->qty + (long long)ib->len[1] + (long long)ib->len[2] + 19 +
           (ib->is_null[5] ? 0 : (long long)ib->len[5]);
}

static long long item_check_text(MYSQL_ROW r, const unsigned long *len)
{
    return strtoll(r[0], NULL, 10) + strtoll(r[3], NULL, 10) + (long long)len[1] +
           (long long)len[2] + (long long)len[4] + (r[5] ? (long long)len[5] : 0);
}

/* ---- workloads ---- */

static void w1(long n)
{
    long long check = 0;
    double t0;
    long i;
    if (!prepared) {
        t0 = timer_start();
        for (i = 0; i < n; i++) {
            MYSQL_RES *res;
            MYSQL_ROW r;
            query("SELECT 1", 8);
            if ((res = mysql_use_result(my)) == NULL)
                die_my("use_result");
            while ((r = mysql_fetch_row(res)) != NULL)
                check += strtoll(r[0], NULL, 10);
            mysql_free_result(res);
        }
    } else {
        MYSQL_STMT *st = prepare("SELECT 1");
        MYSQL_BIND b;
        long long v;
        memset(&b, 0, sizeof b);
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &v;
        t0 = timer_start();
        for (i = 0; i < n; i++) {
            if (mysql_stmt_execute(st) != 0)
                die_st(st, "execute");
            if (i == 0 && mysql_stmt_bind_result(st, &b) != 0)
                die_st(st, "bind_result");
            while (mysql_stmt_fetch(st) == 0)
                check += v;
            mysql_stmt_free_result(st);
        }
        mysql_stmt_close(st);
    }
    report(n, timer_stop(t0), check);
}

/* The ids looked up by w2, the same in every stack. */
static long w2_id(long i) { return (i * 7919) % 100000 + 1; }

static void w2(long n)
{
    long long check = 0;
    double t0;
    long i;
    if (!prepared) {
        char sql[128];
        t0 = timer_start();
        for (i = 0; i < n; i++) {
            MYSQL_RES *res;
            MYSQL_ROW r;
            int len = snprintf(sql, sizeof sql, SEL_ROW " WHERE id = %ld", w2_id(i));
            query(sql, (unsigned long)len);
            if ((res = mysql_store_result(my)) == NULL)
                die_my("store_result");
            while ((r = mysql_fetch_row(res)) != NULL)
                check += item_check_text(r, mysql_fetch_lengths(res));
            mysql_free_result(res);
        }
    } else {
        MYSQL_STMT *st = prepare(SEL_ROW " WHERE id = ?");
        MYSQL_BIND p;
        long long id;
        item_binds ib;
        memset(&p, 0, sizeof p);
        p.buffer_type = MYSQL_TYPE_LONGLONG;
        p.buffer = &id;
        if (mysql_stmt_bind_param(st, &p) != 0)
            die_st(st, "bind_param");
        bind_items(st, &ib);
        t0 = timer_start();
        for (i = 0; i < n; i++) {
            id = w2_id(i);
            if (mysql_stmt_execute(st) != 0)
                die_st(st, "execute");
            while (mysql_stmt_fetch(st) == 0)
                check += item_check_bin(&ib);
            mysql_stmt_free_result(st);
        }
        mysql_stmt_close(st);
    }
    report(n, timer_stop(t0), check);
}

/* All rows of items: buffered (w3: mysql_store_result /
 * mysql_stmt_store_result, the whole result in client memory) or streamed
 * (w3s: one row at a time). */
static void w3(int stream)
{
    long long check = 0;
    long rows = 0;
    double t0 = timer_start();
    if (!prepared) {
        MYSQL_RES *res;
        MYSQL_ROW r;
        query(SEL_ROW, sizeof SEL_ROW - 1);
        res = stream ? mysql_use_result(my) : mysql_store_result(my);
        if (res == NULL)
            die_my("result");
        while ((r = mysql_fetch_row(res)) != NULL) {
            check += item_check_text(r, mysql_fetch_lengths(res));
            rows++;
        }
        if (mysql_errno(my))
            die_my("fetch");
        mysql_free_result(res);
    } else {
        MYSQL_STMT *st = prepare(SEL_ROW);
        item_binds ib;
        int rc;
        if (mysql_stmt_execute(st) != 0)
            die_st(st, "execute");
        if (!stream && mysql_stmt_store_result(st) != 0)
            die_st(st, "store_result");
        bind_items(st, &ib);
        while ((rc = mysql_stmt_fetch(st)) == 0) {
            check += item_check_bin(&ib);
            rows++;
        }
        if (rc != MYSQL_NO_DATA)
            die_st(st, "fetch");
        mysql_stmt_free_result(st);
        mysql_stmt_close(st);
    }
    report(rows, timer_stop(t0), check);
}

/* Appends s as a quoted SQL string (or NULL) to buf at *pos. */
static void put_quoted(char *buf, size_t *pos, const char *s, unsigned long len, int is_null)
{
    if (is_null) {
        memcpy(buf + *pos, "NULL", 4);
        *pos += 4;
        return;
    }
    buf[(*pos)++] = '\'';
    *pos += mysql_real_escape_string(my, buf + *pos, s, len);
    buf[(*pos)++] = '\'';
}

/* One "(…)" tuple of a row, text protocol. */
static void put_tuple(char *buf, size_t *pos, const row *r)
{
    buf[(*pos)++] = '(';
    put_quoted(buf, pos, r->name, r->name_len, 0);
    buf[(*pos)++] = ',';
    put_quoted(buf, pos, r->price, r->price_len, 0);
    *pos += (size_t)sprintf(buf + *pos, ",%lld,", r->qty);
    put_quoted(buf, pos, r->created, r->created_len, 0);
    buf[(*pos)++] = ',';
    put_quoted(buf, pos, r->note, r->note_len, r->note_null);
    buf[(*pos)++] = ')';
}

static void bind_row(MYSQL_BIND *b, row *r)
{
    memset(b, 0, 5 * sizeof *b);
    b[0].buffer_type = MYSQL_TYPE_STRING;
    b[0].buffer = r->name;
    b[0].buffer_length = r->name_len;
    b[0].length = &r->name_len;
    b[1].buffer_type = MYSQL_TYPE_STRING;
    b[1].buffer = r->price;
    b[1].buffer_length = r->price_len;
    b[1].length = &r->price_len;
    b[2].buffer_type = MYSQL_TYPE_LONGLONG;
    b[2].buffer = &r->qty;
    b[3].buffer_type = MYSQL_TYPE_STRING;
    b[3].buffer = r->created;
    b[3].buffer_length = r->created_len;
    b[3].length = &r->created_len;
    if (r->note_null) {
        b[4].buffer_type = MYSQL_TYPE_NULL;
    } else {
        b[4].buffer_type = MYSQL_TYPE_STRING;
        b[4].buffer = r->note;
        b[4].buffer_length = r->note_len;
        b[4].length = &r->note_len;
    }
}

/* n single-row INSERTs in one transaction. */
static void w4(long n)
{
    row *rows = gen_rows(n);
    long long affected = 0;
    double t0;
    long i;
    if (!prepared) {
        char sql[512];
        t0 = timer_start();
        exec_simple("START TRANSACTION");
        for (i = 0; i < n; i++) {
            size_t pos = sizeof INS_ROW - 1;
            memcpy(sql, INS_ROW, pos);
            put_tuple(sql, &pos, &rows[i]);
            query(sql, (unsigned long)pos);
            affected += (long long)mysql_affected_rows(my);
        }
        exec_simple("COMMIT");
    } else {
        MYSQL_STMT *st = prepare(INS_ROW "(?, ?, ?, ?, ?)");
        MYSQL_BIND b[5];
        t0 = timer_start();
        exec_simple("START TRANSACTION");
        for (i = 0; i < n; i++) {
            bind_row(b, &rows[i]);
            if (mysql_stmt_bind_param(st, b) != 0)
                die_st(st, "bind_param");
            if (mysql_stmt_execute(st) != 0)
                die_st(st, "execute");
            affected += (long long)mysql_stmt_affected_rows(st);
        }
        exec_simple("COMMIT");
        mysql_stmt_close(st);
    }
    report(n, timer_stop(t0), affected);
    free(rows);
}

/* Bulk insert, the fastest way each protocol has: multi-row INSERT
 * statements of about 1 MiB (text), or MariaDB array binding in batches
 * of 20,000 rows (prepared, as fsdb's executemany batches). */
#define TEXT_BATCH_BYTES (1u << 20)
#define BULK_ROWS 20000

static void w5(long n)
{
    row *rows = gen_rows(n);
    long long affected = 0;
    double t0;
    long i;
    if (!prepared) {
        char *sql = malloc(TEXT_BATCH_BYTES + 1024);
        if (sql == NULL)
            die("out of memory");
        t0 = timer_start();
        exec_simple("START TRANSACTION");
        for (i = 0; i < n;) {
            size_t pos = sizeof INS_ROW - 1;
            memcpy(sql, INS_ROW, pos);
            do {
                if (pos > sizeof INS_ROW - 1)
                    sql[pos++] = ',';
                put_tuple(sql, &pos, &rows[i++]);
            } while (i < n && pos < TEXT_BATCH_BYTES);
            query(sql, (unsigned long)pos);
            affected += (long long)mysql_affected_rows(my);
        }
        exec_simple("COMMIT");
        free(sql);
    } else {
        MYSQL_STMT *st = prepare(INS_ROW "(?, ?, ?, ?, ?)");
        MYSQL_BIND b[5];
        char **name = malloc(BULK_ROWS * sizeof *name), **price = malloc(BULK_ROWS * sizeof *price);
        char **created = malloc(BULK_ROWS * sizeof *created), **note = malloc(BULK_ROWS * sizeof *note);
        unsigned long *lens = malloc(4 * BULK_ROWS * sizeof *lens);
        long long *qty = malloc(BULK_ROWS * sizeof *qty);
        char *ind = malloc(BULK_ROWS);
        if (!name || !price || !created || !note || !lens || !qty || !ind)
            die("out of memory");
        t0 = timer_start();
        exec_simple("START TRANSACTION");
        for (i = 0; i < n;) {
            unsigned k, batch = (unsigned)(n - i < BULK_ROWS ? n - i : BULK_ROWS);
            for (k = 0; k < batch; k++) {
                row *r = &rows[i + k];
                name[k] = r->name;
                lens[k] = r->name_len;
                price[k] = r->price;
                lens[BULK_ROWS + k] = r->price_len;
                qty[k] = r->qty;
                created[k] = r->created;
                lens[2 * BULK_ROWS + k] = r->created_len;
                note[k] = r->note;
                lens[3 * BULK_ROWS + k] = r->note_len;
                ind[k] = r->note_null ? STMT_INDICATOR_NULL : STMT_INDICATOR_NONE;
            }
            memset(b, 0, sizeof b);
            b[0].buffer_type = MYSQL_TYPE_STRING;
            b[0].buffer = name;
            b[0].length = lens;
            b[1].buffer_type = MYSQL_TYPE_STRING;
            b[1].buffer = price;
            b[1].length = lens + BULK_ROWS;
            b[2].buffer_type = MYSQL_TYPE_LONGLONG;
            b[2].buffer = qty;
            b[3].buffer_type = MYSQL_TYPE_STRING;
            b[3].buffer = created;
            b[3].length = lens + 2 * BULK_ROWS;
            b[4].buffer_type = MYSQL_TYPE_STRING;
            b[4].buffer = note;
            b[4].length = lens + 3 * BULK_ROWS;
            b[4].u.indicator = ind;
            if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &batch) != 0 ||
                mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0)
                die_st(st, "bulk execute");
            affected += (long long)mysql_stmt_affected_rows(st);
            i += batch;
        }
        exec_simple("COMMIT");
        mysql_stmt_close(st);
        free(name), free(price), free(created), free(note), free(lens), free(qty), free(ind);
    }
    report(n, timer_stop(t0), affected);
    free(rows);
}

/* Process start (BENCH_T0, set by bench/launch just before exec) to the
 * first query's row. */
static void start(void)
{
    const char *t0 = getenv("BENCH_T0");
    MYSQL_RES *res;
    MYSQL_ROW r;
    double t;
    connect_db();
    if (!prepared) {
        query("SELECT 1", 8);
        if ((res = mysql_store_result(my)) == NULL || (r = mysql_fetch_row(res)) == NULL)
            die_my("SELECT 1");
        mysql_free_result(res);
    } else {
        MYSQL_STMT *st = prepare("SELECT 1");
        if (mysql_stmt_execute(st) != 0 || mysql_stmt_fetch(st) != 0)
            die_st(st, "SELECT 1");
        mysql_stmt_close(st);
    }
    t = now();
    if (t0 == NULL)
        die("BENCH_T0 is not set (run through bench/launch)");
    printf("ops 1\nseconds %.6f\ncheck 1\nrss_kib %ld\n", t - atof(t0), rss_kib());
}

int main(int argc, char **argv)
{
    const char *w;
    long n;
    if (argc < 3 || (strcmp(argv[1], "text") != 0 && strcmp(argv[1], "prep") != 0))
        die("usage: raw text|prep w1|w2|w3|w3s|w4|w5|start [N]");
    prepared = strcmp(argv[1], "prep") == 0;
    w = argv[2];
    n = argc > 3 ? atol(argv[3]) : 0;
    if (strcmp(w, "start") == 0) {
        start();
    } else {
        connect_db();
        if (strcmp(w, "w1") == 0) {
            warming = 1, w1(WARMUP), warming = 0;
            w1(n ? n : 20000);
        } else if (strcmp(w, "w2") == 0) {
            warming = 1, w2(WARMUP), warming = 0;
            w2(n ? n : 20000);
        }
        else if (strcmp(w, "w3") == 0)
            w3(0);
        else if (strcmp(w, "w3s") == 0)
            w3(1);
        else if (strcmp(w, "w4") == 0)
            w4(n ? n : 10000);
        else if (strcmp(w, "w5") == 0)
            w5(n ? n : 100000);
        else
            die("unknown workload %s", w);
    }
    mysql_close(my);
    return 0;
}
