/*
 * stmt.h — server-side prepared statements (libmariadb, no Lua).
 *
 * Owns: preparing one statement, binding fsdb_param values (binary protocol, binary-safe strings), and fetching
 * rows into per-column buffers that grow for long values. result.c turns
 * those buffers into Lua values. The cache of statements per connection
 * is stmtcache.c's.
 */
#ifndef FSDB_STMT_H
#define FSDB_STMT_H

#include <mysql.h>
#include "conn.h"
#include "error.h"
#include "sqlscan.h"

enum { FSDB_P_NULL = 0, FSDB_P_INT, FSDB_P_DOUBLE, FSDB_P_STRING };

typedef struct fsdb_param {
    int type;
    union {            /* by type: 32 bytes a value, executemany keeps many */
        long long i;
        double d;
        const char *s; /* not owned */
    };
    unsigned long len;
} fsdb_param;

/* What a column turns into; shared by the text and the binary protocol so
 * both give identical Lua values. */
enum {
    FSDB_K_BYTES = 0, /* strings, blobs, DECIMAL, BIT, ENUM, SET, JSON */
    FSDB_K_INT,
    FSDB_K_UINT,
    FSDB_K_FLOAT,
    FSDB_K_DOUBLE,
    FSDB_K_DATE,
    FSDB_K_TIME,
    FSDB_K_DATETIME,
    FSDB_K_NULL
};

int fsdb_column_kind(const MYSQL_FIELD *f);

typedef struct fsdb_colbuf {
    union {
        long long i;
        double d;
        float f;
        MYSQL_TIME t;
    } v;
    char *buf;          /* FSDB_K_BYTES */
    unsigned long cap;
    unsigned long length;
    my_bool is_null;
    my_bool error;
    int kind;
    unsigned decimals;
    int ftype;          /* the MYSQL_FIELD type and flags kind came from */
    unsigned fflags;
    char *name;         /* our copy: see refresh_results in stmt.c */
    unsigned long name_len;
} fsdb_colbuf;

typedef struct fsdb_stmt {
    char *key;              /* SQL as the caller wrote it */
    size_t key_len;
    unsigned long hash;
    unsigned long used;     /* LRU tick */
    MYSQL_STMT *st;
    fsdb_sqlscan scan;      /* placeholder style and names */
    unsigned nparams;
    MYSQL_BIND *pbind;      /* nparams */
    fsdb_param *pval;       /* nparams: what pbind points at, bound once (stmt.c) */
    my_bool *pnull;         /* nparams: NULL sent in a bind that keeps its type */
    char **pbuf;            /* nparams: copies of short string parameters */
    unsigned long *pcap;    /* their capacities */
    int bound;              /* pbind is bound with pval's types and buffers */
    char *bulk;             /* array binding's column arrays, kept and grown only */
    size_t bulk_cap;
    unsigned ncols;         /* columns currently bound */
    MYSQL_FIELD *fields;    /* Connector/C's metadata the binds follow */
    MYSQL_BIND *rbind;
    fsdb_colbuf *cols;
    unsigned long long shape; /* changes with the column names: result.c's cache key */
} fsdb_stmt;

/* Prepares sql on c (not cached: stmtcache.c does that). NULL with err set. */
fsdb_stmt *fsdb_stmt_prepare(fsdb_conn *c, const char *sql, size_t len, fsdb_error *err);

/* Binds params (exactly s->nparams) and executes once. 0 or -1 with err
 * set. stmtcache.c's fsdb_stmt_execute adds the re-prepare. */
int fsdb_stmt_run(fsdb_conn *c, fsdb_stmt *s, const fsdb_param *params, fsdb_error *err);

/* Executes s once for nrows parameter sets in one round trip (MariaDB
 * array binding; the caller checks c->bulk). params holds nrows rows of
 * s->nparams values; types[i] is the one type of column i (FSDB_P_INT,
 * _DOUBLE, _STRING, or _NULL when every value is NULL), with INT values
 * allowed in a DOUBLE column. Adds to *affected; sets *first_id. */
int fsdb_stmt_execute_bulk(fsdb_conn *c, fsdb_stmt *s, const fsdb_param *params,
                           unsigned nrows, const int *types, unsigned long long *affected,
                           unsigned long long *first_id, fsdb_error *err);

/* After a successful execute with columns: 1 = a row is in s->cols,
 * 0 = no more rows, -1 = error (err set). */
int fsdb_stmt_fetch(fsdb_conn *c, fsdb_stmt *s, fsdb_error *err);

void fsdb_stmt_free(fsdb_stmt *s); /* closes the server handle too */

#endif
