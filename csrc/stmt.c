/*
 * stmt.c — one prepared statement; see stmt.h.
 */
#include "stmt.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_COLBUF 256

int fsdb_column_kind(const MYSQL_FIELD *f)
{
    int is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
    switch (f->type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
        return is_unsigned ? FSDB_K_UINT : FSDB_K_INT;
    case MYSQL_TYPE_FLOAT:
        return FSDB_K_FLOAT;
    case MYSQL_TYPE_DOUBLE:
        return FSDB_K_DOUBLE;
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
        return FSDB_K_DATE;
    case MYSQL_TYPE_TIME:
        return FSDB_K_TIME;
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP:
        return FSDB_K_DATETIME;
    case MYSQL_TYPE_NULL:
        return FSDB_K_NULL;
    default:
        return FSDB_K_BYTES;
    }
}

static void free_result_binds(fsdb_stmt *s)
{
    unsigned i;
    if (s->cols)
        for (i = 0; i < s->ncols; i++) {
            free(s->cols[i].buf);
            free(s->cols[i].name);
        }
    free(s->cols);
    free(s->rbind);
    s->cols = NULL;
    s->rbind = NULL;
    s->ncols = 0;
    s->fields = NULL;
}

void fsdb_stmt_free(fsdb_stmt *s)
{
    unsigned i;
    if (s == NULL)
        return;
    if (s->st)
        mysql_stmt_close(s->st);
    free_result_binds(s);
    free(s->pbind);
    if (s->pbuf)
        for (i = 0; i < s->nparams; i++)
            free(s->pbuf[i]);
    free(s->pbuf);
    free(s->pcap);
    free(s->pval);
    free(s->pnull);
    free(s->bulk);
    fsdb_sqlscan_free(&s->scan);
    free(s->key);
    free(s);
}

static void stmt_error(fsdb_conn *c, MYSQL_STMT *st, fsdb_error *err)
{
    fsdb_error_server(err, mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st),
                      fsdb_conn_secret(c));
}

fsdb_stmt *fsdb_stmt_prepare(fsdb_conn *c, const char *sql, size_t len, fsdb_error *err)
{
    fsdb_stmt *s = calloc(1, sizeof *s);
    const char *text;
    size_t text_len;

    if (s == NULL || (s->key = malloc(len + 1)) == NULL) {
        free(s);
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory preparing a statement");
        return NULL;
    }
    memcpy(s->key, sql, len);
    s->key[len] = '\0';
    s->key_len = len;
    if (fsdb_sqlscan_run(sql, len, fsdb_conn_no_backslash_escapes(c), &s->scan, err) < 0)
        goto fail;
    text = s->scan.style == FSDB_SCAN_NAMED ? s->scan.sql : sql;
    text_len = s->scan.style == FSDB_SCAN_NAMED ? s->scan.sql_len : len;
    if ((s->st = mysql_stmt_init(c->my)) == NULL) {
        fsdb_conn_error(c, err);
        goto fail;
    }
    if (mysql_stmt_prepare(s->st, text, (unsigned long)text_len) != 0) {
        stmt_error(c, s->st, err);
        if (s->scan.multi)
            fsdb_error_hint_multi(err);
        goto fail;
    }
    s->nparams = (unsigned)mysql_stmt_param_count(s->st);
    if (s->scan.style == FSDB_SCAN_NAMED && s->nparams != s->scan.nparams) {
        fsdb_error_set(err, FSDB_ERR_PARAMS, NULL,
                       "server counts %u placeholders where fsdb found %u named ones",
                       s->nparams, s->scan.nparams);
        goto fail;
    }
    if (s->nparams && ((s->pbind = calloc(s->nparams, sizeof *s->pbind)) == NULL ||
                       (s->pval = calloc(s->nparams, sizeof *s->pval)) == NULL ||
                       (s->pnull = calloc(s->nparams, sizeof *s->pnull)) == NULL ||
                       (s->pbuf = calloc(s->nparams, sizeof *s->pbuf)) == NULL ||
                       (s->pcap = calloc(s->nparams, sizeof *s->pcap)) == NULL)) {
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory preparing a statement");
        goto fail;
    }
    return s;

fail:
    fsdb_stmt_free(s);
    return NULL;
}

/* A number no other statement's column names ever had (all threads). */
static unsigned long long new_shape(void)
{
    static unsigned long long last;
    return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

static int set_name(fsdb_colbuf *col, const MYSQL_FIELD *f)
{
    char *copy = malloc(f->name_length + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, f->name, f->name_length);
    copy[f->name_length] = '\0';
    free(col->name);
    col->name = copy;
    col->name_len = f->name_length;
    return 0;
}

/* Points each column's bind at a buffer suited to its current type. */
static int bind_columns(fsdb_conn *c, fsdb_stmt *s, fsdb_error *err)
{
    unsigned i;
    for (i = 0; i < s->ncols; i++) {
        MYSQL_BIND *b = &s->rbind[i];
        fsdb_colbuf *col = &s->cols[i];
        const MYSQL_FIELD *f = &s->fields[i];
        memset(b, 0, sizeof *b);
        col->kind = fsdb_column_kind(f);
        col->decimals = f->decimals;
        col->ftype = f->type;
        col->fflags = f->flags;
        b->is_null = &col->is_null;
        b->length = &col->length;
        b->error = &col->error;
        switch (col->kind) {
        case FSDB_K_INT:
        case FSDB_K_UINT:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &col->v.i;
            b->is_unsigned = col->kind == FSDB_K_UINT;
            break;
        case FSDB_K_FLOAT:
            b->buffer_type = MYSQL_TYPE_FLOAT;
            b->buffer = &col->v.f;
            break;
        case FSDB_K_DOUBLE:
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &col->v.d;
            break;
        case FSDB_K_DATE:
        case FSDB_K_TIME:
        case FSDB_K_DATETIME:
            b->buffer_type = f->type;
            b->buffer = &col->v.t;
            break;
        default:
            if (col->buf == NULL) {
                if ((col->buf = malloc(INITIAL_COLBUF)) == NULL) {
                    fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory binding results");
                    return -1;
                }
                col->cap = INITIAL_COLBUF;
            }
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = col->buf;
            b->buffer_length = col->cap;
            break;
        }
    }
    if (mysql_stmt_bind_result(s->st, s->rbind) != 0) {
        stmt_error(c, s->st, err);
        return -1;
    }
    return 0;
}

/* After each execute: make the binds and column names match the result the
 * server is about to send. The server re-prepares silently after DDL, so a
 * cached statement can change under us:
 *  - another column count: Connector/C gives 2057 (handled by the caller);
 *  - another column type (also "SELECT ?" with another parameter type):
 *    Connector/C updates stmt->fields in place, we rebind;
 *  - another column name: Connector/C keeps the names from prepare time
 *    in stmt->fields; the fresh ones arrive in mysql->fields only on the
 *    execute where the server resends metadata, so we keep our own copy. */
static int refresh_results(fsdb_conn *c, fsdb_stmt *s, fsdb_error *err)
{
    unsigned n = mysql_stmt_field_count(s->st), i;
    MYSQL_FIELD *fields = s->st->fields;
    const MYSQL_FIELD *fresh = c->my->fields && c->my->field_count == n ? c->my->fields : NULL;
    int rebind = 0;

    if (fields != s->fields || n != s->ncols) {
        free_result_binds(s);
        if ((s->rbind = calloc(n, sizeof *s->rbind)) == NULL ||
            (s->cols = calloc(n, sizeof *s->cols)) == NULL) {
            free_result_binds(s);
            fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory binding results");
            return -1;
        }
        s->ncols = n;
        s->fields = fields;
        for (i = 0; i < n; i++)
            if (set_name(&s->cols[i], &fields[i]) < 0)
                goto nomem;
        s->shape = new_shape();
        rebind = 1;
    }
    /* One pass: a column's kind is worked out again only when its type,
     * flags or decimals moved; its name is compared with the one the
     * server sent with this execute (when it sent metadata). */
    for (i = 0; i < n; i++) {
        fsdb_colbuf *col = &s->cols[i];
        const MYSQL_FIELD *f = &fields[i];
        if ((int)f->type != col->ftype || f->flags != col->fflags ||
            f->decimals != col->decimals) {
            rebind |= col->kind != fsdb_column_kind(f) || col->decimals != f->decimals;
            col->ftype = f->type;
            col->fflags = f->flags;
        }
        if (fresh && (fresh[i].name_length != col->name_len ||
                      memcmp(fresh[i].name, col->name, col->name_len) != 0)) {
            if (set_name(col, &fresh[i]) < 0)
                goto nomem;
            s->shape = new_shape();
        }
    }
    if (rebind && bind_columns(c, s, err) < 0) {
        free_result_binds(s);
        return -1;
    }
    return 0;

nomem:
    free_result_binds(s);
    fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory binding results");
    return -1;
}

/* Parameters are bound once, as the C API intends: the binds point at
 * s->pval and s->pbuf, and each execute only stores the new values there.
 * Binding again (which also makes the next execute resend the types) only
 * when a type changes, a string outgrows its copy, or a long string is
 * passed in place. */
#define PARAM_COPY_MAX 4096 /* longer strings are bound where they are */
#define FSDB_P_STRING_IN_PLACE (-1) /* in pval: never equal to a new type */

static int store_params(fsdb_stmt *s, const fsdb_param *params)
{
    unsigned i;
    int rebind = !s->bound;
    for (i = 0; i < s->nparams; i++) {
        const fsdb_param *p = &params[i];
        fsdb_param *v = &s->pval[i];
        /* A NULL where a value was: the bind keeps its type and buffer
         * and says NULL through is_null (a column that is sometimes NULL
         * does not rebind twice per toggle). Not for a string bound in
         * place: its pointer is the caller's, gone after this call. */
        if (p->type == FSDB_P_NULL && s->bound && v->type != FSDB_P_NULL &&
            v->type != FSDB_P_STRING_IN_PLACE) {
            s->pnull[i] = 1;
            continue;
        }
        s->pnull[i] = 0;
        if (p->type != v->type)
            rebind = 1;
        v->type = p->type;
        switch (p->type) {
        case FSDB_P_INT:
            v->i = p->i;
            break;
        case FSDB_P_DOUBLE:
            v->d = p->d;
            break;
        case FSDB_P_STRING:
            v->len = p->len;
            if (p->len > PARAM_COPY_MAX) {
                v->type = FSDB_P_STRING_IN_PLACE;
                v->s = p->s;
                rebind = 1;
                break;
            }
            if (s->pbuf[i] == NULL || p->len > s->pcap[i]) {
                unsigned long cap = s->pcap[i] ? s->pcap[i] : 64;
                char *grown;
                while (cap < p->len)
                    cap *= 2;
                if ((grown = realloc(s->pbuf[i], cap)) == NULL)
                    return -1;
                s->pbuf[i] = grown;
                s->pcap[i] = cap;
                rebind = 1;
            }
            memcpy(s->pbuf[i], p->s, p->len);
            break;
        default:
            break;
        }
    }
    return rebind;
}

/* Points every bind at its value in pval / pbuf. */
static void set_binds(fsdb_stmt *s)
{
    unsigned i;
    for (i = 0; i < s->nparams; i++) {
        fsdb_param *v = &s->pval[i];
        MYSQL_BIND *b = &s->pbind[i];
        memset(b, 0, sizeof *b);
        b->is_null = &s->pnull[i];
        switch (v->type) {
        case FSDB_P_INT:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &v->i;
            break;
        case FSDB_P_DOUBLE:
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &v->d;
            break;
        case FSDB_P_STRING:
        case FSDB_P_STRING_IN_PLACE:
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = v->type == FSDB_P_STRING ? s->pbuf[i] : (void *)v->s;
            b->buffer_length = v->len;
            b->length = &v->len;
            break;
        default:
            b->buffer_type = MYSQL_TYPE_NULL;
            break;
        }
    }
}

int fsdb_stmt_run(fsdb_conn *c, fsdb_stmt *s, const fsdb_param *params, fsdb_error *err)
{
    int rebind = store_params(s, params);

    if (rebind < 0) {
        s->bound = 0;
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory binding parameters");
        return -1;
    }
    if (rebind && s->nparams) {
        s->bound = 0;
        set_binds(s);
        if (mysql_stmt_bind_param(s->st, s->pbind) != 0) {
            stmt_error(c, s->st, err);
            return -1;
        }
        s->bound = 1;
    }
    if (mysql_stmt_execute(s->st) != 0) {
        stmt_error(c, s->st, err);
        return -1;
    }
    if (mysql_stmt_field_count(s->st) > 0)
        return refresh_results(c, s, err);
    return 0;
}

/* The column arrays of a batch: kept with the statement and only grown,
 * so batch after batch writes to memory already mapped and warm (a fresh
 * multi-megabyte block each time is fresh pages from the kernel). */
static char *bulk_block(fsdb_stmt *s, size_t need)
{
    if (need > s->bulk_cap) {
        char *grown = realloc(s->bulk, need);
        if (grown == NULL)
            return NULL;
        s->bulk = grown;
        s->bulk_cap = need;
    }
    return s->bulk;
}

int fsdb_stmt_execute_bulk(fsdb_conn *c, fsdb_stmt *s, const fsdb_param *params,
                           unsigned nrows, const int *types, unsigned long long *affected,
                           unsigned long long *first_id, fsdb_error *err)
{
    /* One slice of the block per parameter: nrows values (8 bytes: an
     * integer, a double or a pointer), nrows lengths, nrows indicators;
     * rounded up so every slice stays 8-byte aligned. */
    const size_t vsize = sizeof(long long), lsize = sizeof(unsigned long);
    size_t per_col = (nrows * (vsize + lsize + 1) + 7) & ~(size_t)7;
    unsigned np = s->nparams, i, r, zero = 0;
    char *block = bulk_block(s, np * per_col + 1);
    const fsdb_param *p = params;
    int rc = 0;

    if (block == NULL) {
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory for %u parameter sets", nrows);
        return -1;
    }
    s->bound = 0; /* the binds point at this batch's arrays from here on */
    for (i = 0; i < np; i++) {
        char *base = block + i * per_col;
        MYSQL_BIND *b = &s->pbind[i];
        memset(b, 0, sizeof *b);
        b->buffer = base;
        switch (types[i]) {
        case FSDB_P_INT:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            break;
        case FSDB_P_DOUBLE:
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            break;
        case FSDB_P_STRING:
            b->buffer_type = MYSQL_TYPE_STRING;
            b->length = (unsigned long *)(base + nrows * vsize);
            break;
        default: /* every value NULL */
            b->buffer_type = MYSQL_TYPE_NULL;
            b->u.indicator = base + nrows * (vsize + lsize);
            break;
        }
    }
    /* Row by row, as the sets lie in memory. A column gets indicators
     * only once it has a NULL: without them libmariadb reads no byte per
     * value (as raw C binds a column without NULLs). */
    for (r = 0; r < nrows; r++) {
        for (i = 0; i < np; i++, p++) {
            char *base = block + i * per_col;
            char *ind = base + nrows * (vsize + lsize);
            int t = types[i];
            if (p->type == FSDB_P_NULL) {
                ind[r] = STMT_INDICATOR_NULL;
                s->pbind[i].u.indicator = ind;
                if (t == FSDB_P_STRING) {
                    ((const char **)base)[r] = "";
                    ((unsigned long *)(base + nrows * vsize))[r] = 0;
                }
                continue;
            }
            ind[r] = STMT_INDICATOR_NONE;
            if (t == FSDB_P_INT) {
                ((long long *)base)[r] = p->i;
            } else if (t == FSDB_P_DOUBLE) {
                ((double *)base)[r] = p->type == FSDB_P_INT ? (double)p->i : p->d;
            } else if (t == FSDB_P_STRING) {
                ((const char **)base)[r] = p->s;
                ((unsigned long *)(base + nrows * vsize))[r] = p->len;
            }
        }
    }
    if (mysql_stmt_attr_set(s->st, STMT_ATTR_ARRAY_SIZE, &nrows) != 0 ||
        mysql_stmt_bind_param(s->st, s->pbind) != 0 || mysql_stmt_execute(s->st) != 0) {
        stmt_error(c, s->st, err);
        rc = -1;
    } else {
        *affected += mysql_stmt_affected_rows(s->st);
        *first_id = mysql_stmt_insert_id(s->st);
    }
    /* Back to one set per execute for the cached statement's next use. */
    mysql_stmt_attr_set(s->st, STMT_ATTR_ARRAY_SIZE, &zero);
    return rc;
}

/* A long value did not fit: grow its buffer, fetch the column again. */
static int fetch_long_column(fsdb_conn *c, fsdb_stmt *s, unsigned i, fsdb_error *err)
{
    fsdb_colbuf *col = &s->cols[i];
    MYSQL_BIND *b = &s->rbind[i];
    unsigned long need = col->length;
    char *grown = realloc(col->buf, need ? need : 1);

    if (grown == NULL) {
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory fetching a %lu-byte value", need);
        return -1;
    }
    col->buf = grown;
    col->cap = need ? need : 1;
    b->buffer = col->buf;
    b->buffer_length = col->cap;
    if (mysql_stmt_fetch_column(s->st, b, i, 0) != 0) {
        stmt_error(c, s->st, err);
        return -1;
    }
    col->error = 0;
    return 1;
}

int fsdb_stmt_fetch(fsdb_conn *c, fsdb_stmt *s, fsdb_error *err)
{
    int rc = mysql_stmt_fetch(s->st), rebind = 0;
    unsigned i;

    if (rc == 0)
        return 1;
    if (rc == MYSQL_NO_DATA)
        return 0;
    if (rc == MYSQL_DATA_TRUNCATED) {
        for (i = 0; i < s->ncols; i++) {
            if (s->cols[i].error && s->cols[i].kind == FSDB_K_BYTES) {
                if (fetch_long_column(c, s, i, err) < 0)
                    return -1;
                rebind = 1;
            }
        }
        /* New buffer addresses take effect for the following rows. */
        if (rebind && mysql_stmt_bind_result(s->st, s->rbind) != 0) {
            stmt_error(c, s->st, err);
            return -1;
        }
        return 1;
    }
    /* An error the server sends while rows are produced (e.g. 1690 out of
     * range) is recorded on the connection, not on the statement. */
    if (mysql_stmt_errno(s->st) != 0)
        stmt_error(c, s->st, err);
    else if (mysql_errno(c->my) != 0)
        fsdb_conn_error(c, err);
    else
        fsdb_error_set(err, 2013, "HY000", "Lost connection to server while fetching rows");
    return -1;
}
