/*
 * items.h — the result buffers for the six columns of an items row
 * (id, name, price, qty, created, note) read with a prepared statement:
 * shared by raw.c and thin.c, which bind them the same way.
 */
#ifndef BENCH_ITEMS_H
#define BENCH_ITEMS_H

#include <mysql.h>
#include <string.h>

#define ITEM_COLS 6

typedef struct item_binds {
    MYSQL_BIND b[ITEM_COLS];
    long long id, qty;
    char name[256], price[32], note[4096];
    MYSQL_TIME created;
    unsigned long len[ITEM_COLS];
    my_bool is_null[ITEM_COLS];
} item_binds;

/* Points ib->b at ib's buffers; the caller passes ib->b to
 * mysql_stmt_bind_result. */
static inline void item_binds_init(item_binds *ib)
{
    int i;
    memset(ib->b, 0, sizeof ib->b);
    ib->b[0].buffer_type = MYSQL_TYPE_LONGLONG;
    ib->b[0].buffer = &ib->id;
    ib->b[1].buffer_type = MYSQL_TYPE_STRING;
    ib->b[1].buffer = ib->name;
    ib->b[1].buffer_length = sizeof ib->name;
    ib->b[2].buffer_type = MYSQL_TYPE_STRING;
    ib->b[2].buffer = ib->price;
    ib->b[2].buffer_length = sizeof ib->price;
    ib->b[3].buffer_type = MYSQL_TYPE_LONGLONG;
    ib->b[3].buffer = &ib->qty;
    ib->b[4].buffer_type = MYSQL_TYPE_DATETIME;
    ib->b[4].buffer = &ib->created;
    ib->b[5].buffer_type = MYSQL_TYPE_STRING;
    ib->b[5].buffer = ib->note;
    ib->b[5].buffer_length = sizeof ib->note;
    for (i = 0; i < ITEM_COLS; i++) {
        ib->b[i].length = &ib->len[i];
        ib->b[i].is_null = &ib->is_null[i];
    }
}

#endif
