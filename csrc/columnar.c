/*
 * columnar.c — a buffered result as one array per column; see columnar.h.
 *
 * A value goes straight into its column's array (one lua_rawseti), with no
 * row table and no key per value: the cheapest form for a large result
 * read column by column. The arrays grow as rows come (neither protocol
 * says how many rows there will be before they are read).
 */
#include "columnar.h"
#include "result.h"

#include <string.h>

void fsdb_columnar_begin(lua_State *L, int res_idx, int names_idx, unsigned n)
{
    unsigned i;

    luaL_checkstack(L, (int)n + 4, "fsdb: result");
    for (i = 1; i <= n; i++) {
        lua_createtable(L, 0, 0);
        lua_rawseti(L, res_idx, (int)i);
    }
    lua_pushvalue(L, names_idx);
    lua_setfield(L, res_idx, "columns");
    /* Backwards, so that of duplicate names the first is stored last. */
    lua_createtable(L, 0, (int)n);
    for (i = n; i >= 1; i--) {
        lua_rawgeti(L, names_idx, (int)i);
        lua_rawgeti(L, res_idx, (int)i);
        lua_rawset(L, -3);
    }
    lua_setfield(L, res_idx, "by_name");
    for (i = 1; i <= n; i++)
        lua_rawgeti(L, res_idx, (int)i);
}

typedef struct cfill {
    MYSQL_RES *res;   /* text protocol, or */
    fsdb_conn *c;     /* prepared: c and s */
    fsdb_stmt *s;
    const int *kinds; /* text: in a userdata kept on the stack */
    unsigned n;
    int nrows;
    int rc;           /* 0: all rows, -1: error (err set) */
    fsdb_error *err;
} cfill;

/* fsdb_fill_step: the result at base, its column arrays above it. */
static int columns_step(lua_State *L, void *ud, int base, int limit)
{
    cfill *f = ud;
    unsigned i;
    for (;;) {
        if (limit && f->nrows >= limit)
            return 1;
        if (f->res) {
            MYSQL_ROW row = mysql_fetch_row(f->res);
            const unsigned long *lengths;
            if (row == NULL)
                return 0;
            lengths = mysql_fetch_lengths(f->res);
            f->nrows++;
            for (i = 0; i < f->n; i++) {
                fsdb_result_push_text_value(L, f->kinds[i], row[i], lengths[i]);
                lua_rawseti(L, base + 1 + (int)i, f->nrows);
            }
        } else {
            int rc = fsdb_stmt_fetch(f->c, f->s, f->err);
            if (rc <= 0) {
                f->rc = rc;
                return 0;
            }
            f->nrows++;
            for (i = 0; i < f->n; i++) {
                fsdb_result_push_bin_value(L, &f->s->cols[i]);
                lua_rawseti(L, base + 1 + (int)i, f->nrows);
            }
        }
    }
}

/* With the names on top: replaces them by the filled result. */
static void fill(lua_State *L, cfill *f)
{
    int names_idx = lua_gettop(L), base = names_idx + 1;
    lua_createtable(L, (int)f->n, 2);
    fsdb_columnar_begin(L, base, names_idx, f->n);
    fsdb_result_fill(L, base, columns_step, f);
    lua_settop(L, base);
    lua_remove(L, names_idx);
}

int fsdb_columnar_push_text(lua_State *L, MYSQL *my, MYSQL_RES *res, fsdb_error *err)
{
    cfill f;

    memset(&f, 0, sizeof f);
    f.res = res;
    f.n = mysql_num_fields(res);
    luaL_checkstack(L, 8, "fsdb: result");
    f.kinds = fsdb_result_text_kinds(L, res);
    fsdb_result_push_columns(L, mysql_fetch_fields(res), NULL, f.n);
    fill(L, &f);
    lua_remove(L, -2); /* kinds */
    if (mysql_errno(my) != 0) {
        lua_pop(L, 1);
        fsdb_error_server(err, mysql_errno(my), mysql_sqlstate(my), mysql_error(my), NULL);
        return -1;
    }
    return 0;
}

int fsdb_columnar_push_stmt(lua_State *L, fsdb_conn *c, fsdb_stmt *s, fsdb_error *err)
{
    cfill f;

    memset(&f, 0, sizeof f);
    f.c = c;
    f.s = s;
    f.n = s->ncols;
    f.err = err;
    luaL_checkstack(L, 8, "fsdb: result");
    fsdb_result_push_columns(L, NULL, s->cols, f.n);
    fill(L, &f);
    if (f.rc < 0) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}
