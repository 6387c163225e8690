/*
 * thin.c — the thinnest Lua binding bench/run measures: for each workload
 * it does what raw.c does and hands the values to Lua the cheapest way the
 * Lua C API allows (a fresh table per row, lua_pushlstring, raw stores with
 * the keys pushed once). No checks, no pool, no error values (every failure
 * raises), no statement cache, no collector pause, none of fsdb's safety
 * rules: it is not a driver, it is about what any binding that returns
 * fresh Lua rows must spend. Its ratio to raw C is the part of fsdb's
 * distance to raw C that is the Lua values themselves (bench/ANALYSIS.md).
 *
 *   local F = require("bench_thin")      -- Lua 5.4 or LuaJIT
 *   F.connect()                           -- FSDB_TEST_HOST/PORT/USER/PASSWORD/DB
 *   F.exec(sql)                           -- no result (START TRANSACTION, COMMIT)
 *   row = F.lookup(id)                    -- W2: prepared, one keyed row or nil
 *   n = F.insert(name, price, qty, created, note)  -- W4: prepared, affected rows
 *   rows = F.fetch(sql, arrays)           -- W3/W3a: text protocol, all rows
 *   for row in F.stream(sql) do ... end   -- W3s: text protocol, one row at a time
 */
#include "items.h"

#include <lauxlib.h>
#include <lua.h>
#include <mysql.h>

#include <stdlib.h>
#include <string.h>

#define SEL_ONE "SELECT id, name, price, qty, created, note FROM items WHERE id = ?"
#define INS_ONE "INSERT INTO items_w (name, price, qty, created, note) VALUES (?, ?, ?, ?, ?)"
#define NCOLS ITEM_COLS

static MYSQL *my;
static MYSQL_STMT *sel, *ins;

static const char *const KEYS[NCOLS] = { "id", "name", "price", "qty", "created", "note" };

/* The lookup's parameter and result buffers, bound once as raw.c binds them. */
static long long lk_id;
static item_binds lk;

static int fail(lua_State *L, const char *what)
{
    return luaL_error(L, "%s: %s (%d)", what, mysql_error(my), (int)mysql_errno(my));
}

static int fail_st(lua_State *L, MYSQL_STMT *st, const char *what)
{
    return luaL_error(L, "%s: %s (%d)", what, mysql_stmt_error(st), (int)mysql_stmt_errno(st));
}

static const char *env(lua_State *L, const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        luaL_error(L, "%s is not set (run through bench/run)", name);
    return v;
}

static MYSQL_STMT *prepare(lua_State *L, const char *sql)
{
    MYSQL_STMT *st = mysql_stmt_init(my);
    if (st == NULL)
        fail(L, "mysql_stmt_init");
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0)
        fail_st(L, st, sql);
    return st;
}

static void bind_lookup(lua_State *L)
{
    MYSQL_BIND p;
    sel = prepare(L, SEL_ONE);
    memset(&p, 0, sizeof p);
    p.buffer_type = MYSQL_TYPE_LONGLONG;
    p.buffer = &lk_id;
    if (mysql_stmt_bind_param(sel, &p) != 0)
        fail_st(L, sel, "bind_param");
    item_binds_init(&lk);
    if (mysql_stmt_bind_result(sel, lk.b) != 0)
        fail_st(L, sel, "bind_result");
}

static int l_connect(lua_State *L)
{
    if ((my = mysql_init(NULL)) == NULL)
        return luaL_error(L, "mysql_init failed");
    mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(my, env(L, "FSDB_TEST_HOST"), env(L, "FSDB_TEST_USER"),
                            env(L, "FSDB_TEST_PASSWORD"), env(L, "FSDB_TEST_DB"),
                            (unsigned)atoi(env(L, "FSDB_TEST_PORT")), NULL, 0))
        return fail(L, "connect");
    bind_lookup(L);
    ins = prepare(L, INS_ONE);
    return 0;
}

static int l_exec(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 1, &len);
    if (mysql_real_query(my, sql, (unsigned long)len) != 0)
        return fail(L, sql);
    return 0;
}

static char *two_digits(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* "YYYY-MM-DD HH:MM:SS", as every stack hands a DATETIME to Lua. */
static void push_datetime(lua_State *L, const MYSQL_TIME *t)
{
    char s[19], *p = two_digits(two_digits(s, t->year / 100), t->year % 100);
    *p++ = '-';
    p = two_digits(p, t->month);
    *p++ = '-';
    p = two_digits(p, t->day);
    *p++ = ' ';
    p = two_digits(p, t->hour);
    *p++ = ':';
    p = two_digits(p, t->minute);
    *p++ = ':';
    two_digits(p, t->second);
    lua_pushlstring(L, s, sizeof s);
}

/* The lookup's keys are its upvalues 1..6. */
#define KEY(j) lua_pushvalue(L, lua_upvalueindex(1 + (j)))

static int l_lookup(lua_State *L)
{
    int found = 0;
    lk_id = (long long)luaL_checkinteger(L, 1);
    if (mysql_stmt_execute(sel) != 0)
        return fail_st(L, sel, "execute");
    while (mysql_stmt_fetch(sel) == 0) {
        found = 1;
        lua_createtable(L, 0, NCOLS);
        KEY(0);
        lua_pushinteger(L, (lua_Integer)lk.id);
        lua_rawset(L, -3);
        KEY(1);
        lua_pushlstring(L, lk.name, lk.len[1]);
        lua_rawset(L, -3);
        KEY(2);
        lua_pushlstring(L, lk.price, lk.len[2]);
        lua_rawset(L, -3);
        KEY(3);
        lua_pushinteger(L, (lua_Integer)lk.qty);
        lua_rawset(L, -3);
        KEY(4);
        push_datetime(L, &lk.created);
        lua_rawset(L, -3);
        if (!lk.is_null[5]) {
            KEY(5);
            lua_pushlstring(L, lk.note, lk.len[5]);
            lua_rawset(L, -3);
        }
    }
    mysql_stmt_free_result(sel);
    if (!found)
        lua_pushnil(L);
    return 1;
}

static void bind_text(lua_State *L, MYSQL_BIND *b, int idx, unsigned long *len)
{
    size_t n;
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = (void *)lua_tolstring(L, idx, &n); /* no Lua runs before execute */
    b->buffer_length = *len = (unsigned long)n;
    b->length = len;
}

static int l_insert(lua_State *L)
{
    MYSQL_BIND b[5];
    unsigned long len[5];
    long long qty = (long long)luaL_checkinteger(L, 3);
    memset(b, 0, sizeof b);
    bind_text(L, &b[0], 1, &len[0]);
    bind_text(L, &b[1], 2, &len[1]);
    b[2].buffer_type = MYSQL_TYPE_LONGLONG;
    b[2].buffer = &qty;
    bind_text(L, &b[3], 4, &len[3]);
    if (lua_type(L, 5) == LUA_TSTRING)
        bind_text(L, &b[4], 5, &len[4]);
    else
        b[4].buffer_type = MYSQL_TYPE_NULL;
    if (mysql_stmt_bind_param(ins, b) != 0)
        return fail_st(L, ins, "bind_param");
    if (mysql_stmt_execute(ins) != 0)
        return fail_st(L, ins, "execute");
    lua_pushinteger(L, (lua_Integer)mysql_stmt_affected_rows(ins));
    return 1;
}

/* Sends a text query and opens its result for row-by-row reading. */
static MYSQL_RES *open_rows(lua_State *L, const char *sql)
{
    MYSQL_RES *res;
    if (mysql_real_query(my, sql, (unsigned long)strlen(sql)) != 0)
        fail(L, sql);
    if ((res = mysql_use_result(my)) == NULL)
        fail(L, "use_result");
    if (mysql_num_fields(res) != NCOLS)
        luaL_error(L, "expected %d columns", NCOLS);
    return res;
}

/* Integers for the integer columns (id, qty), strings for the rest. */
static void push_cell(lua_State *L, int col, const char *v, unsigned long len)
{
    if (col == 0 || col == 3)
        lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
    else
        lua_pushlstring(L, v, len);
}

/* A fresh row keyed by name; the keys are at stack slots keys..keys+5.
 * A NULL is left out (nil), the cheapest a keyed row can be. */
static void push_keyed(lua_State *L, int keys, MYSQL_ROW r, const unsigned long *len)
{
    int j;
    lua_createtable(L, 0, NCOLS);
    for (j = 0; j < NCOLS; j++) {
        if (r[j] == NULL)
            continue;
        lua_pushvalue(L, keys + j);
        push_cell(L, j, r[j], len[j]);
        lua_rawset(L, -3);
    }
}

/* A fresh array row; a NULL is false, so that the array has no hole. */
static void push_array(lua_State *L, MYSQL_ROW r, const unsigned long *len)
{
    int j;
    lua_createtable(L, NCOLS, 0);
    for (j = 0; j < NCOLS; j++) {
        if (r[j] == NULL)
            lua_pushboolean(L, 0);
        else
            push_cell(L, j, r[j], len[j]);
        lua_rawseti(L, -2, j + 1);
    }
}

static void push_keys(lua_State *L)
{
    int j;
    luaL_checkstack(L, NCOLS + 4, "thin");
    for (j = 0; j < NCOLS; j++)
        lua_pushstring(L, KEYS[j]);
}

static int l_fetch(lua_State *L)
{
    const char *sql = luaL_checkstring(L, 1);
    int arrays = lua_toboolean(L, 2), keys, n = 0;
    MYSQL_RES *res;
    MYSQL_ROW r;
    lua_settop(L, 2);
    push_keys(L);
    keys = 3;
    lua_newtable(L);
    res = open_rows(L, sql);
    while ((r = mysql_fetch_row(res)) != NULL) {
        const unsigned long *len = mysql_fetch_lengths(res);
        if (arrays)
            push_array(L, r, len);
        else
            push_keyed(L, keys, r, len);
        lua_rawseti(L, -2, ++n);
    }
    if (mysql_errno(my)) {
        mysql_free_result(res);
        return fail(L, "fetch");
    }
    mysql_free_result(res);
    return 1;
}

/* The iterator of stream: upvalue 1 the MYSQL_RES (light userdata, freed at
 * the end; the benchmark always reads to the end), 2..7 the keys. It builds
 * its row as push_keyed does, with the keys read from upvalues: fetch keeps
 * them on the stack, which Lua 5.4 reads faster (push_keyed over upvalues
 * cost fetch ~180 instructions per row, measured). */
static int stream_next(lua_State *L)
{
    MYSQL_RES *res = (MYSQL_RES *)lua_touserdata(L, lua_upvalueindex(1));
    MYSQL_ROW r;
    if (res == NULL)
        return 0;
    if ((r = mysql_fetch_row(res)) == NULL) {
        int failed = mysql_errno(my) != 0;
        mysql_free_result(res);
        lua_pushlightuserdata(L, NULL);
        lua_replace(L, lua_upvalueindex(1));
        if (failed)
            return fail(L, "fetch");
        return 0;
    }
    lua_createtable(L, 0, NCOLS);
    {
        const unsigned long *len = mysql_fetch_lengths(res);
        int j;
        for (j = 0; j < NCOLS; j++) {
            if (r[j] == NULL)
                continue;
            lua_pushvalue(L, lua_upvalueindex(2 + j));
            push_cell(L, j, r[j], len[j]);
            lua_rawset(L, -3);
        }
    }
    return 1;
}

static int l_stream(lua_State *L)
{
    MYSQL_RES *res = open_rows(L, luaL_checkstring(L, 1));
    lua_pushlightuserdata(L, res);
    push_keys(L);
    lua_pushcclosure(L, stream_next, 1 + NCOLS);
    return 1;
}

int luaopen_bench_thin(lua_State *L)
{
    static const struct {
        const char *name;
        lua_CFunction fn;
    } fns[] = { { "connect", l_connect }, { "exec", l_exec },     { "insert", l_insert },
                { "fetch", l_fetch },     { "stream", l_stream } };
    size_t i;
    lua_createtable(L, 0, (int)(sizeof fns / sizeof fns[0]) + 1);
    for (i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        lua_pushcfunction(L, fns[i].fn);
        lua_setfield(L, -2, fns[i].name);
    }
    push_keys(L);
    lua_pushcclosure(L, l_lookup, NCOLS);
    lua_setfield(L, -2, "lookup");
    return 1;
}
