/*
 * result.c — rows to Lua values; see result.h for the rules.
 */
#include "result.h"

#include <float.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TWO_POW_53 9007199254740992LL

static void push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

static void push_i64(lua_State *L, long long v)
{
#ifdef FSDB_HAS_INT64
    lua_pushinteger(L, (lua_Integer)v);
#else
    if (v > TWO_POW_53 || v < -TWO_POW_53) {
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%lld", v);
        lua_pushlstring(L, buf, (size_t)n);
    } else {
        lua_pushnumber(L, (lua_Number)v);
    }
#endif
}

static void push_u64(lua_State *L, unsigned long long v)
{
#ifdef FSDB_HAS_INT64
    const unsigned long long limit = (unsigned long long)LUA_MAXINTEGER;
#else
    const unsigned long long limit = (unsigned long long)TWO_POW_53;
#endif
    if (v > limit) {
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%llu", v);
        lua_pushlstring(L, buf, (size_t)n);
    } else {
        push_i64(L, (long long)v);
    }
}

/*
 * Numbers as text follow LC_NUMERIC, and the locale belongs to the
 * application (nginx, a GUI, a test runner may call setlocale): under a
 * comma-decimal locale strtod("1.5") stops at the '.' and gives 1. Every
 * conversion here runs with the C locale on this thread (uselocale is
 * per thread, so other threads keep theirs).
 */
static locale_t c_numeric;
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;

static void make_c_numeric(void)
{
    c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* Switches this thread to the C locale; returns what to restore, or 0 if
 * the C locale could not be made (then nothing changes). */
static locale_t enter_c_numeric(void)
{
    pthread_once(&c_numeric_once, make_c_numeric);
    return c_numeric ? uselocale(c_numeric) : (locale_t)0;
}

static void leave_c_numeric(locale_t old)
{
    if (old)
        uselocale(old);
}

static double c_strtod(const char *s)
{
    locale_t old = enter_c_numeric();
    double d = strtod(s, NULL);
    leave_c_numeric(old);
    return d;
}

/* The server prints FLOAT with FLT_DIG (6) significant digits in the text
 * protocol; doing the same for binary values makes both protocols agree
 * (a plain (double) cast would give 1.100000023841858 for 1.1). */
static void push_float(lua_State *L, float f)
{
    char buf[32];
    locale_t old = enter_c_numeric();
    double d;
    snprintf(buf, sizeof buf, "%.*g", FLT_DIG, (double)f);
    d = strtod(buf, NULL);
    leave_c_numeric(old);
    lua_pushnumber(L, (lua_Number)d);
}

/* Writes v as exactly `width` decimal digits (zero-padded) at p. */
static char *put_digits(char *p, unsigned long v, int width)
{
    int i;
    for (i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* MySQL's text format for temporal values, written by hand: snprintf was
 * the largest single cost of a primary-key lookup returning a DATETIME. */
static void push_time(lua_State *L, const MYSQL_TIME *t, int kind, unsigned decimals)
{
    char buf[48], *p = buf;
    if (kind == FSDB_K_TIME) {
        unsigned long hours = (unsigned long)t->day * 24 + t->hour;
        if (t->neg)
            *p++ = '-';
        p = put_digits(p, hours, hours > 99 ? (hours > 999 ? 4 : 3) : 2);
    } else {
        p = put_digits(p, t->year % 10000, 4);
        *p++ = '-';
        p = put_digits(p, t->month % 100, 2);
        *p++ = '-';
        p = put_digits(p, t->day % 100, 2);
        if (kind == FSDB_K_DATE) {
            lua_pushlstring(L, buf, (size_t)(p - buf));
            return;
        }
        *p++ = ' ';
        p = put_digits(p, t->hour % 100, 2);
    }
    *p++ = ':';
    p = put_digits(p, t->minute % 100, 2);
    *p++ = ':';
    p = put_digits(p, t->second % 100, 2);
    if (decimals > 0 && decimals <= 6) {
        /* second_part is microseconds; print the column's digits only. */
        char frac[6];
        put_digits(frac, t->second_part % 1000000, 6);
        *p++ = '.';
        memcpy(p, frac, decimals);
        p += decimals;
    }
    lua_pushlstring(L, buf, (size_t)(p - buf));
}

/* Decimal text of an integer column; the server sends only digits and an
 * optional sign, so no strtoll (locale, errno, bases) is needed. */
static long long parse_i64(const char *s)
{
    unsigned long long v = 0;
    int neg = *s == '-';
    if (neg || *s == '+')
        s++;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (unsigned long long)(*s++ - '0');
    return neg ? (long long)(0 - v) : (long long)v;
}

/* Text-protocol value of a given kind. */
static void push_text_value(lua_State *L, int kind, const char *s, unsigned long len)
{
    switch (kind) {
    case FSDB_K_INT: {
        long long v = parse_i64(s);
#ifndef FSDB_HAS_INT64
        if (v > TWO_POW_53 || v < -TWO_POW_53) {
            lua_pushlstring(L, s, len);
            return;
        }
#endif
        push_i64(L, v);
        return;
    }
    case FSDB_K_UINT:
        push_u64(L, strtoull(s, NULL, 10));
        return;
    case FSDB_K_FLOAT:
    case FSDB_K_DOUBLE:
        lua_pushnumber(L, (lua_Number)c_strtod(s));
        return;
    default:
        lua_pushlstring(L, s, len);
        return;
    }
}

static void push_bin_value(lua_State *L, const fsdb_colbuf *col)
{
    if (col->is_null) {
        push_null(L);
        return;
    }
    switch (col->kind) {
    case FSDB_K_INT:
        push_i64(L, col->v.i);
        break;
    case FSDB_K_UINT:
        push_u64(L, (unsigned long long)col->v.i);
        break;
    case FSDB_K_FLOAT:
        push_float(L, col->v.f);
        break;
    case FSDB_K_DOUBLE:
        lua_pushnumber(L, (lua_Number)col->v.d);
        break;
    case FSDB_K_DATE:
    case FSDB_K_TIME:
    case FSDB_K_DATETIME:
        push_time(L, &col->v.t, col->kind, col->decimals);
        break;
    case FSDB_K_NULL:
        push_null(L);
        break;
    default:
        lua_pushlstring(L, col->buf, col->length);
        break;
    }
}

void fsdb_result_push_columns(lua_State *L, const MYSQL_FIELD *fields, const fsdb_colbuf *cols,
                              unsigned n)
{
    unsigned i;
    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n; i++) {
        if (fields)
            lua_pushlstring(L, fields[i].name, fields[i].name_length);
        else
            lua_pushlstring(L, cols[i].name, cols[i].name_len);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

void fsdb_result_text_row(lua_State *L, MYSQL_ROW row, const unsigned long *lengths,
                          const int *kinds, unsigned n, int names_idx, int array_rows)
{
    unsigned i;
    lua_createtable(L, array_rows ? (int)n : 0, array_rows ? 0 : (int)n);
    for (i = 0; i < n; i++) {
        if (!array_rows)
            lua_rawgeti(L, names_idx, (int)i + 1); /* key first: no stack rotation */
        if (row[i] == NULL)
            push_null(L);
        else
            push_text_value(L, kinds[i], row[i], lengths[i]);
        if (array_rows)
            lua_rawseti(L, -2, (int)i + 1);
        else
            lua_rawset(L, -3);
    }
}

void fsdb_result_stmt_row(lua_State *L, const fsdb_stmt *s, int names_idx, int array_rows)
{
    unsigned i, n = s->ncols;
    lua_createtable(L, array_rows ? (int)n : 0, array_rows ? 0 : (int)n);
    for (i = 0; i < n; i++) {
        if (!array_rows)
            lua_rawgeti(L, names_idx, (int)i + 1);
        push_bin_value(L, &s->cols[i]);
        if (array_rows)
            lua_rawseti(L, -2, (int)i + 1);
        else
            lua_rawset(L, -3);
    }
}

int *fsdb_result_text_kinds(lua_State *L, MYSQL_RES *res)
{
    unsigned n = mysql_num_fields(res), i;
    MYSQL_FIELD *fields = mysql_fetch_fields(res);
    /* Lua memory: a raise while rows are converted cannot leak it. */
    int *kinds = lua_newuserdata(L, (n ? n : 1) * sizeof *kinds);
    for (i = 0; i < n; i++)
        kinds[i] = fsdb_column_kind(&fields[i]);
    return kinds;
}

/* Result table with its "columns" list; leaves the table at -2 and the
 * columns at -1. */
static void begin_result(lua_State *L, const MYSQL_FIELD *fields, const fsdb_colbuf *cols,
                         unsigned n)
{
    lua_createtable(L, 1, 1); /* room for the first row: lookups return one */
    fsdb_result_push_columns(L, fields, cols, n);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "columns");
}

int fsdb_result_push_text(lua_State *L, MYSQL *my, MYSQL_RES *res, int array_rows, fsdb_error *err)
{
    unsigned n = mysql_num_fields(res);
    int *kinds, nrows = 0, names_idx;
    MYSQL_ROW row;

    luaL_checkstack(L, 8, "fsdb: result");
    kinds = fsdb_result_text_kinds(L, res);
    begin_result(L, mysql_fetch_fields(res), NULL, n);
    names_idx = lua_gettop(L);
    while ((row = mysql_fetch_row(res)) != NULL) {
        fsdb_result_text_row(L, row, mysql_fetch_lengths(res), kinds, n, names_idx, array_rows);
        lua_rawseti(L, -3, ++nrows);
    }
    lua_pop(L, 1); /* columns */
    lua_remove(L, -2); /* kinds */
    if (mysql_errno(my) != 0) {
        lua_pop(L, 1);
        fsdb_error_server(err, mysql_errno(my), mysql_sqlstate(my), mysql_error(my), NULL);
        return -1;
    }
    return 0;
}

int fsdb_result_push_stmt(lua_State *L, fsdb_conn *c, fsdb_stmt *s, int array_rows,
                          fsdb_error *err)
{
    int nrows = 0, rc, names_idx;

    luaL_checkstack(L, 8, "fsdb: result");
    begin_result(L, NULL, s->cols, s->ncols);
    names_idx = lua_gettop(L);
    while ((rc = fsdb_stmt_fetch(c, s, err)) == 1) {
        fsdb_result_stmt_row(L, s, names_idx, array_rows);
        lua_rawseti(L, -3, ++nrows);
    }
    lua_pop(L, 1);
    if (rc < 0) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

void fsdb_result_push_ok(lua_State *L, unsigned long long affected,
                         unsigned long long insert_id, unsigned warnings)
{
    lua_createtable(L, 0, 3);
    push_u64(L, affected);
    lua_setfield(L, -2, "affected_rows");
    push_u64(L, insert_id);
    lua_setfield(L, -2, "insert_id");
    lua_pushinteger(L, (lua_Integer)warnings);
    lua_setfield(L, -2, "warnings");
}
