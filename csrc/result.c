/*
 * result.c — rows to Lua values; see result.h for the rules.
 */
#include "result.h"
#include "columnar.h"

#include <float.h>
#include <limits.h>
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

/* Writes v as exactly `width` decimal digits (zero-padded) at p, two at
 * a time (most fields are two digits: one division instead of two). */
static char *put_digits(char *p, unsigned long v, int width)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    int i = width;
    for (; i >= 2; i -= 2) {
        memcpy(p + i - 2, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (i == 1)
        p[0] = (char)('0' + v % 10);
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

/* The column names as a new array, with room for nrec more fields. */
static void push_names(lua_State *L, const MYSQL_FIELD *fields, const fsdb_colbuf *cols,
                       unsigned n, int nrec)
{
    unsigned i;
    lua_createtable(L, (int)n, nrec);
    for (i = 0; i < n; i++) {
        if (fields)
            lua_pushlstring(L, fields[i].name, fields[i].name_length);
        else
            lua_pushlstring(L, cols[i].name, cols[i].name_len);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

void fsdb_result_push_columns(lua_State *L, const MYSQL_FIELD *fields, const fsdb_colbuf *cols,
                              unsigned n)
{
    push_names(L, fields, cols, n, 0);
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

void fsdb_result_text_store(lua_State *L, MYSQL_ROW row, const unsigned long *lengths,
                            const int *kinds, unsigned n, int t, int base)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        if (row[i] == NULL)
            push_null(L);
        else
            push_text_value(L, kinds[i], row[i], lengths[i]);
        lua_rawseti(L, t, base + (int)i + 1);
    }
}

void fsdb_result_stmt_store(lua_State *L, const fsdb_stmt *s, int t, int base)
{
    unsigned i;
    for (i = 0; i < s->ncols; i++) {
        push_bin_value(L, &s->cols[i]);
        lua_rawseti(L, t, base + (int)i + 1);
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

/* A result's shape: a table of its column names (1..n, the keys of its
 * rows) holding at [0] the metatable of every result with those columns,
 * whose __index gives res.columns — a fresh list, kept in the result — on
 * first use; so a result costs no columns list unless one is asked for.
 * The names table itself is only an upvalue of __index: changing a
 * result's metatable cannot change the keys of later rows. Prepared
 * statements keep their shape in a weak-valued registry table keyed by
 * fsdb_stmt.shape (never reused, so never stale); text results keep
 * theirs under their SQL string, checked against the names the server
 * sent. A lookup builds no names, and the collector drops shapes that no
 * result uses. */
static const char shapes_key = 0, text_shapes_key = 0;

static int result_index(lua_State *L)
{
    size_t len, n, i;
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (key == NULL || len != 7 || memcmp(key, "columns", 7) != 0)
        return 0;
    n = fsdb_rawlen(L, lua_upvalueindex(1));
    lua_createtable(L, (int)n, 0);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, lua_upvalueindex(1), (int)i);
        lua_rawseti(L, -2, (int)i);
    }
    lua_pushliteral(L, "columns");
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

static void push_shape(lua_State *L, const MYSQL_FIELD *fields, const fsdb_colbuf *cols,
                       unsigned n)
{
    push_names(L, fields, cols, n, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, result_index, 1);
    lua_setfield(L, -2, "__index");
    lua_rawseti(L, -2, 0);
}

#ifdef FSDB_HAS_INT64
#define push_shape_key(L, k) lua_pushinteger(L, (lua_Integer)(k))
#else
#define push_shape_key(L, k) lua_pushnumber(L, (lua_Number)(k))
#endif

/* The weak-valued registry table at key. */
static void push_cache(lua_State *L, const char *key)
{
    lua_pushlightuserdata(L, (void *)key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, (void *)key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* Whether the shape on top has exactly these column names. */
static int same_names(lua_State *L, const MYSQL_FIELD *fields, unsigned n)
{
    unsigned i;
    if (!lua_istable(L, -1) || fsdb_rawlen(L, -1) != n)
        return 0;
    for (i = 0; i < n; i++) {
        size_t len;
        const char *name;
        int same;
        lua_rawgeti(L, -1, (int)i + 1);
        name = lua_tolstring(L, -1, &len);
        same = name && len == fields[i].name_length && memcmp(name, fields[i].name, len) == 0;
        lua_pop(L, 1);
        if (!same)
            return 0;
    }
    return 1;
}

/* The shape of a text result; sql_idx: the stack index of its SQL string
 * (0: none, not cached). */
static void push_text_shape(lua_State *L, MYSQL_RES *res, int sql_idx)
{
    unsigned n = mysql_num_fields(res);
    const MYSQL_FIELD *fields = mysql_fetch_fields(res);
    if (sql_idx == 0) {
        push_shape(L, fields, NULL, n);
        return;
    }
    push_cache(L, &text_shapes_key);
    lua_pushvalue(L, sql_idx);
    lua_rawget(L, -2);
    if (!same_names(L, fields, n)) {
        lua_pop(L, 1);
        push_shape(L, fields, NULL, n);
        lua_pushvalue(L, sql_idx);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2);
}

/* The shape of s's current columns, from the cache or built. */
static void push_stmt_shape(lua_State *L, const fsdb_stmt *s)
{
    push_cache(L, &shapes_key);
    push_shape_key(L, s->shape);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        push_shape(L, NULL, s->cols, s->ncols);
        push_shape_key(L, s->shape);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2);
}

/* Below the shape on top: the result table, with the shape's metatable.
 * Leaves the table at -2 and the shape (the names) at -1. */
static void begin_result(lua_State *L)
{
    lua_createtable(L, 1, 0); /* room for the first row: lookups return one */
    lua_rawgeti(L, -2, 0);
    lua_setmetatable(L, -2);
    lua_insert(L, -2);
}

/* Filling a buffered result: the rows so far sit in the result table,
 * every one of them live until the call returns. Collecting while they
 * are built only walks them again and again, so a result that passes
 * PAUSE_AFTER rows is finished with the collector stopped (when it was
 * running), and restarted on every way out. Not for small results: on Lua
 * 5.4 a restart resets the collector's debt, a whole step per call. */
#define PAUSE_AFTER 1024

/* LuaJIT cannot grow its string table while its collector sweeps it. A
 * collector stopped in that phase would stay there for the whole fetch,
 * and every value would be interned into ever longer chains (a
 * 100,000-row fetch took 4-5 times as long, depending only on where the
 * application's collector was when the pause began). So on LuaJIT the
 * pause is lifted for POKE_KB steps (about 6,000 string chains swept)
 * every POKE_EVERY rows: that phase ends within a few pokes, for a small
 * part of the work of a collector running throughout (which, measured,
 * cost 30-80% on such a fetch). */
#define POKE_EVERY 8192
#define POKE_KB 32

typedef struct fill {
    MYSQL_RES *res;      /* text protocol, or */
    fsdb_conn *c;        /* prepared: c and s */
    fsdb_stmt *s;
    const int *kinds;
    unsigned n;
    int array_rows;
    int nrows;
    int rc;              /* 1: stopped at the limit, 0: all rows, -1: error (err set) */
    fsdb_error *err;
} fill;

/* Rows into the result at res_idx (names at res_idx + 1), until limit
 * rows are in (limit 0: no limit). */
static void fill_rows(lua_State *L, fill *f, int res_idx, int limit)
{
    int names_idx = res_idx + 1;
    for (;;) {
        if (limit && f->nrows >= limit) {
            f->rc = 1;
            return;
        }
        if (f->res) {
            MYSQL_ROW row = mysql_fetch_row(f->res);
            if (row == NULL) {
                f->rc = 0;
                return;
            }
            fsdb_result_text_row(L, row, mysql_fetch_lengths(f->res), f->kinds, f->n, names_idx,
                                 f->array_rows);
        } else {
            int rc = fsdb_stmt_fetch(f->c, f->s, f->err);
            if (rc <= 0) {
                f->rc = rc;
                return;
            }
            fsdb_result_stmt_row(L, f->s, names_idx, f->array_rows);
        }
        lua_rawseti(L, res_idx, ++f->nrows);
    }
}

typedef struct paused_fill {
    fsdb_fill_step step;
    void *ud;
} paused_fill;

static int fill_rest(lua_State *L) /* the tables from base, then a paused_fill */
{
    paused_fill *p = lua_touserdata(L, lua_gettop(L));
#ifdef FSDB_LUA51
    int limit = PAUSE_AFTER + POKE_EVERY;
    while (p->step(L, p->ud, 1, limit)) {
        lua_gc(L, LUA_GCSTEP, POKE_KB); /* runs the collector again: stopped anew */
        lua_gc(L, LUA_GCSTOP, 0);
        limit = limit < INT_MAX - POKE_EVERY ? limit + POKE_EVERY : 0; /* 0: no limit */
    }
#else
    p->step(L, p->ud, 1, 0);
#endif
    return 0;
}

void fsdb_result_fill(lua_State *L, int base, fsdb_fill_step step, void *ud)
{
    int top = lua_gettop(L), status, i;
    paused_fill p;
    if (!step(L, ud, base, PAUSE_AFTER))
        return;
    if (!lua_gc(L, LUA_GCISRUNNING, 0)) {
        step(L, ud, base, 0);
        return;
    }
    luaL_checkstack(L, top - base + 3, "fsdb: result");
    p.step = step;
    p.ud = ud;
    lua_pushcfunction(L, fill_rest);
    for (i = base; i <= top; i++)
        lua_pushvalue(L, i);
    lua_pushlightuserdata(L, &p);
    lua_gc(L, LUA_GCSTOP, 0);
    status = lua_pcall(L, top - base + 2, 0, 0);
    lua_gc(L, LUA_GCRESTART, 0);
    if (status != 0)
        lua_error(L);
}

static int rows_step(lua_State *L, void *ud, int base, int limit)
{
    fill *f = ud;
    fill_rows(L, f, base, limit);
    return f->rc == 1;
}

/* With the result and its names on top: fills it. */
static void fill_result(lua_State *L, fill *f)
{
    fsdb_result_fill(L, lua_gettop(L) - 1, rows_step, f);
}

#define SMALL_RESULT 32 /* columns */

int fsdb_result_push_text(lua_State *L, MYSQL *my, MYSQL_RES *res, int sql_idx, int array_rows,
                          fsdb_error *err)
{
    fill f;
    int few[SMALL_RESULT], *kinds = few;
    unsigned i;

    if (array_rows & FSDB_ROWS_COLUMNAR)
        return fsdb_columnar_push_text(L, my, res, err);
    luaL_checkstack(L, 8, "fsdb: result");
    memset(&f, 0, sizeof f);
    f.res = res;
    f.n = mysql_num_fields(res);
    f.array_rows = array_rows;
    /* The kinds of a narrow result on the C stack (nothing to free when a
     * raise passes); a wide one's in Lua memory, below the result. */
    if (f.n <= SMALL_RESULT) {
        const MYSQL_FIELD *fields = mysql_fetch_fields(res);
        for (i = 0; i < f.n; i++)
            kinds[i] = fsdb_column_kind(&fields[i]);
    } else {
        kinds = fsdb_result_text_kinds(L, res);
    }
    f.kinds = kinds;
    push_text_shape(L, res, sql_idx);
    begin_result(L);
    fill_result(L, &f);
    lua_pop(L, 1); /* names */
    if (kinds != few)
        lua_remove(L, -2);
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
    fill f;

    if (array_rows & FSDB_ROWS_COLUMNAR)
        return fsdb_columnar_push_stmt(L, c, s, err);
    luaL_checkstack(L, 8, "fsdb: result");
    memset(&f, 0, sizeof f);
    f.c = c;
    f.s = s;
    f.n = s->ncols;
    f.array_rows = array_rows;
    f.err = err;
    push_stmt_shape(L, s);
    begin_result(L);
    fill_result(L, &f);
    lua_pop(L, 1);
    if (f.rc < 0) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* The OK table's keys, made once per Lua state: {"affected_rows",
 * "insert_id", "warnings"} in the registry (an array lookup each is
 * cheaper than interning a C string). */
static const char ok_keys_key = 0;

static void push_ok_keys(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&ok_keys_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_createtable(L, 3, 0);
    lua_pushliteral(L, "affected_rows");
    lua_rawseti(L, -2, 1);
    lua_pushliteral(L, "insert_id");
    lua_rawseti(L, -2, 2);
    lua_pushliteral(L, "warnings");
    lua_rawseti(L, -2, 3);
    lua_pushlightuserdata(L, (void *)&ok_keys_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

void fsdb_result_push_ok(lua_State *L, unsigned long long affected,
                         unsigned long long insert_id, unsigned warnings)
{
    int t;
    lua_createtable(L, 0, 3);
    t = lua_gettop(L);
    push_ok_keys(L);
    /* Raw stores: a fresh table has no metatable to consult. */
    lua_rawgeti(L, t + 1, 1);
    push_u64(L, affected);
    lua_rawset(L, t);
    lua_rawgeti(L, t + 1, 2);
    push_u64(L, insert_id);
    lua_rawset(L, t);
    lua_rawgeti(L, t + 1, 3);
    lua_pushinteger(L, (lua_Integer)warnings);
    lua_rawset(L, t);
    lua_pop(L, 1);
}

/* For the protocol codec (lcodec.c): one value by the same rules. */
void fsdb_result_push_text_value(lua_State *L, int kind, const char *s, unsigned long len)
{
    if (s == NULL)
        push_null(L);
    else
        push_text_value(L, kind, s, len);
}

void fsdb_result_push_bin_value(lua_State *L, const fsdb_colbuf *col)
{
    push_bin_value(L, col);
}
