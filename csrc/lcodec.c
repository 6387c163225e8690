/*
 * lcodec.c — Lua glue for the protocol codec ("fsdb.codec"): the state of
 * one connection's conversation, with the bytes moved by a Lua transport
 * (lua/fsdb/transport/). Every call either consumes whole packets from what
 * was fed and returns a result, or returns false for "feed me more".
 *
 * Row values go through result.c, the same rules as the libmariadb path.
 * Packet payloads live in the codec's own buffer: while a call reads them
 * the codec is marked busy, so a finalizer that ran during an allocation
 * and touched this codec would raise instead of moving the buffer.
 */
#include "lcore.h"
#include "codec.h"
#include "param.h"
#include "result.h"
#include "columnar.h"

#include <stdlib.h>
#include <string.h>

#define FSDB_CODEC_MT "fsdb.codec"
#define MAX_COLUMNS 4096

enum { S_IDLE = 0, S_HANDSHAKE, S_AUTH, S_FIRST, S_COLS, S_COLS_EOF, S_ROWS, S_P_FIRST, S_P_SKIP };

typedef struct lcodec {
    fsdb_reader rd;
    unsigned long long server_caps;
    unsigned long caps; /* what this client asked for */
    unsigned status;    /* the server's status flags of the last reply */
    unsigned warnings;
    int state, busy, broken, binary;
    fsdb_error broken_err;
    unsigned char scramble[64];
    size_t scramble_len;
    unsigned ncols, got;
    fsdb_coldef *defs;
    int *kinds;
    fsdb_slice *cells;
    fsdb_colbuf *cols;
    lua_Integer nrows;
    fsdb_prepare_ok prep;
    unsigned skip;
    /* last_gtid of the current command's final OK (session tracking);
     * gtid_len 0 for none. A plain GTID is at most 64 bytes. */
    char gtid[64];
    size_t gtid_len;
} lcodec;

static void free_columns(lcodec *c)
{
    unsigned i;
    if (c->defs)
        for (i = 0; i < c->got; i++)
            fsdb_coldef_free(&c->defs[i]);
    free(c->defs);
    free(c->kinds);
    free(c->cells);
    free(c->cols);
    c->defs = NULL;
    c->kinds = NULL;
    c->cells = NULL;
    c->cols = NULL;
    c->ncols = c->got = 0;
}

static lcodec *check_codec(lua_State *L)
{
    lcodec *c = fsdb_checkudata(L, 1, FSDB_CODEC_MT);
    if (c->busy)
        luaL_error(L, "fsdb: the connection is in use (re-entrant call)");
    return c;
}

/* A broken conversation stays broken: the caller discards the socket. */
static int push_broken(lua_State *L, lcodec *c, const fsdb_error *err)
{
    if (!c->broken) {
        c->broken = 1;
        c->broken_err = *err;
    }
    c->busy = 0;
    c->state = S_IDLE;
    return fsdb_push_error(L, &c->broken_err);
}

static int push_server_error(lua_State *L, lcodec *c, fsdb_error *err)
{
    fsdb_error_add_hint(err);
    c->busy = 0;
    c->state = S_IDLE;
    return fsdb_push_error(L, err);
}

/* The next whole packet: 1, 0 (need more) or -1 (broken, err set). */
static int next_packet(lcodec *c, fsdb_slice *pkt, fsdb_error *err)
{
    if (c->broken) {
        *err = c->broken_err;
        return -1;
    }
    return fsdb_reader_next(&c->rd, pkt, err);
}

/* Frames w's payload with the conversation's next sequence id and pushes
 * the bytes to send. */
static int push_frame(lua_State *L, lcodec *c, fsdb_wbuf *w)
{
    fsdb_wbuf out = {0};
    unsigned seq = c->rd.seq;
    if (w->oom || fsdb_codec_frame(&out, w->p, w->len, &seq) < 0) {
        fsdb_wbuf_free(w);
        fsdb_wbuf_free(&out);
        return luaL_error(L, "fsdb: out of memory building a packet");
    }
    c->rd.seq = seq;
    /* Anchor nothing: out is C memory, copied by lua_pushlstring, which
     * may raise on memory errors: free first into a Lua string. */
    lua_pushlstring(L, (const char *)out.p, out.len);
    fsdb_wbuf_free(w);
    fsdb_wbuf_free(&out);
    return 1;
}

/* core.codec() */
static int l_codec_new(lua_State *L)
{
    lcodec *c = fsdb_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->state = S_HANDSHAKE;
    luaL_getmetatable(L, FSDB_CODEC_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_codec_gc(lua_State *L)
{
    lcodec *c = fsdb_checkudata(L, 1, FSDB_CODEC_MT);
    free_columns(c);
    fsdb_reader_free(&c->rd);
    memset(c->scramble, 0, sizeof c->scramble);
    return 0;
}

/* codec:feed(bytes) */
static int l_codec_feed(lua_State *L)
{
    lcodec *c = check_codec(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    fsdb_error err;
    if (fsdb_reader_feed(&c->rd, s, n, &err) < 0)
        return luaL_error(L, "%s", err.message);
    return 0;
}

/* codec:handshake() -> false | {server_version, thread_id, plugin, …} */
static int l_codec_handshake(lua_State *L)
{
    lcodec *c = check_codec(L);
    fsdb_slice pkt;
    fsdb_handshake h;
    fsdb_error err;
    int rc;

    if (c->state != S_HANDSHAKE)
        return luaL_error(L, "fsdb: codec: handshake already read");
    if ((rc = next_packet(c, &pkt, &err)) <= 0)
        return rc == 0 ? (lua_pushboolean(L, 0), 1) : push_broken(L, c, &err);
    if (fsdb_codec_parse_handshake(pkt.p, pkt.n, &h, &err) < 0)
        return push_broken(L, c, &err);
    c->server_caps = h.caps;
    c->status = h.status;
    memcpy(c->scramble, h.scramble, h.scramble_len);
    c->scramble_len = h.scramble_len;
    c->state = S_AUTH;
    lua_createtable(L, 0, 8);
    lua_pushstring(L, h.server_version);
    lua_setfield(L, -2, "server_version");
    lua_pushinteger(L, (lua_Integer)h.thread_id);
    lua_setfield(L, -2, "thread_id");
    lua_pushstring(L, h.plugin);
    lua_setfield(L, -2, "plugin");
    lua_pushboolean(L, (h.caps & FSDB_CLIENT_SSL) != 0);
    lua_setfield(L, -2, "ssl");
    lua_pushboolean(L, (h.caps & FSDB_CLIENT_PROTOCOL_41) != 0 &&
                           (h.caps & FSDB_CLIENT_SECURE_CONNECTION) != 0);
    lua_setfield(L, -2, "protocol_41");
    lua_pushboolean(L, (h.caps & (1ULL << 34)) != 0); /* MARIADB_CLIENT_STMT_BULK_OPERATIONS */
    lua_setfield(L, -2, "bulk");
    return 1;
}

static unsigned long client_caps(const lcodec *c, int with_db)
{
    unsigned long want = FSDB_CLIENT_LONG_PASSWORD | FSDB_CLIENT_FOUND_ROWS |
                         FSDB_CLIENT_LONG_FLAG | FSDB_CLIENT_PROTOCOL_41 |
                         FSDB_CLIENT_TRANSACTIONS | FSDB_CLIENT_SECURE_CONNECTION |
                         FSDB_CLIENT_PLUGIN_AUTH | FSDB_CLIENT_PLUGIN_AUTH_LENENC |
                         FSDB_CLIENT_SESSION_TRACK; /* COMMIT's GTID in its OK packet */
    if (with_db)
        want |= FSDB_CLIENT_CONNECT_WITH_DB;
    return want & (unsigned long)(c->server_caps & 0xffffffffULL);
}

/* codec:ssl_request(charset, with_db) -> bytes */
static int l_codec_ssl_request(lua_State *L)
{
    lcodec *c = check_codec(L);
    unsigned charset = (unsigned)luaL_checkinteger(L, 2);
    fsdb_wbuf w = {0};
    c->caps = client_caps(c, lua_toboolean(L, 3)) | FSDB_CLIENT_SSL;
    fsdb_codec_ssl_request(&w, c->caps, charset);
    return push_frame(L, c, &w);
}

/* The answer of plugin to the current scramble into out; -1 unknown. */
static int scramble_for(lcodec *c, const char *plugin, const char *pw, size_t pwlen,
                        unsigned char out[64])
{
    if (strcmp(plugin, "client_ed25519") == 0)
        return fsdb_codec_ed25519(pw, pwlen, c->scramble, c->scramble_len, out);
    if (strcmp(plugin, "mysql_native_password") == 0)
        return fsdb_codec_native_password(pw, pwlen, c->scramble, c->scramble_len, out);
    if (strcmp(plugin, "caching_sha2_password") == 0)
        return fsdb_codec_sha2_password(pw, pwlen, c->scramble, c->scramble_len, out);
    return -1;
}

/* codec:login(user, password, database, plugin, charset) -> bytes */
static int l_codec_login(lua_State *L)
{
    lcodec *c = check_codec(L);
    const char *user = luaL_optstring(L, 2, "");
    size_t pwlen = 0;
    const char *pw = luaL_optlstring(L, 3, "", &pwlen);
    const char *db = luaL_optstring(L, 4, NULL);
    const char *plugin = luaL_checkstring(L, 5);
    unsigned charset = (unsigned)luaL_checkinteger(L, 6);
    unsigned char auth[64];
    int n;
    fsdb_wbuf w = {0};

    if (c->state != S_AUTH)
        return luaL_error(L, "fsdb: codec: login out of turn");
    if ((n = scramble_for(c, plugin, pw, pwlen, auth)) < 0)
        return luaL_error(L, "fsdb: codec: no scramble for plugin %s", plugin);
    if (!(c->caps & FSDB_CLIENT_SSL))
        c->caps = client_caps(c, db != NULL);
    fsdb_codec_handshake_response(&w, c->caps, charset, user, auth, (size_t)n, db, plugin);
    memset(auth, 0, sizeof auth);
    return push_frame(L, c, &w);
}

/* codec:auth() -> false | true (logged in) | "switch", plugin | "full" |
 * nil, err, errno, sqlstate */
static int l_codec_auth(lua_State *L)
{
    lcodec *c = check_codec(L);
    fsdb_slice pkt;
    fsdb_error err;
    int rc;

    if (c->state != S_AUTH)
        return luaL_error(L, "fsdb: codec: not logging in");
    for (;;) {
        if ((rc = next_packet(c, &pkt, &err)) <= 0)
            return rc == 0 ? (lua_pushboolean(L, 0), 1) : push_broken(L, c, &err);
        if (pkt.n == 0)
            return push_broken(L, c, (fsdb_error_set(&err, 2027, "08S01", "empty auth reply"), &err));
        switch (pkt.p[0]) {
        case FSDB_PKT_OK: {
            fsdb_ok ok;
            if (fsdb_codec_parse_ok(pkt.p, pkt.n, &ok, &err) < 0)
                return push_broken(L, c, &err);
            c->status = ok.status;
            c->state = S_IDLE;
            lua_pushboolean(L, 1);
            return 1;
        }
        case FSDB_PKT_ERR:
            fsdb_codec_parse_err(pkt.p, pkt.n, &err);
            c->state = S_IDLE;
            c->broken = 1;
            c->broken_err = err;
            return push_server_error(L, c, &err);
        case FSDB_PKT_EOF: {
            char plugin[64];
            fsdb_slice data;
            if (fsdb_codec_parse_auth_switch(pkt.p, pkt.n, plugin, &data, &err) < 0)
                return push_broken(L, c, &err);
            if (data.n > sizeof c->scramble)
                data.n = sizeof c->scramble;
            memcpy(c->scramble, data.p, data.n);
            c->scramble_len = data.n;
            lua_pushliteral(L, "switch");
            lua_pushstring(L, plugin);
            return 2;
        }
        case 0x01: /* more data: caching_sha2_password's verdict */
            if (pkt.n == 2 && pkt.p[1] == 3)
                continue; /* fast auth succeeded; the OK follows */
            if (pkt.n == 2 && pkt.p[1] == 4) {
                lua_pushliteral(L, "full");
                return 1;
            }
            return push_broken(L, c, (fsdb_error_set(&err, 2027, "08S01",
                                                     "unexpected authentication data"), &err));
        default:
            return push_broken(L, c, (fsdb_error_set(&err, 2027, "08S01",
                                                     "unexpected authentication reply"), &err));
        }
    }
}

/* Frames bytes as they are, with the conversation's next sequence id. */
static int push_raw(lua_State *L, lcodec *c, const char *bytes, size_t n)
{
    unsigned seq = c->rd.seq;
    fsdb_wbuf out = {0};
    if (fsdb_codec_frame(&out, (const unsigned char *)bytes, n, &seq) < 0) {
        fsdb_wbuf_free(&out);
        return luaL_error(L, "fsdb: out of memory building a packet");
    }
    c->rd.seq = seq;
    lua_pushlstring(L, (const char *)out.p, out.len);
    fsdb_wbuf_free(&out);
    return 1;
}

/* codec:auth_reply(plugin, password) -> bytes: the switched-to plugin's
 * answer to its new scramble; codec:auth_reply(nil, bytes) sends bytes as
 * they are (full authentication over TLS). */
static int l_codec_auth_reply(lua_State *L)
{
    lcodec *c = check_codec(L);
    size_t pwlen = 0;
    const char *pw = luaL_optlstring(L, 3, "", &pwlen);
    unsigned char auth[64];
    int n;

    if (c->state != S_AUTH)
        return luaL_error(L, "fsdb: codec: not logging in");
    if (lua_isnil(L, 2))
        return push_raw(L, c, pw, pwlen);
    if ((n = scramble_for(c, luaL_checkstring(L, 2), pw, pwlen, auth)) < 0)
        return luaL_error(L, "fsdb: codec: no scramble for plugin %s", lua_tostring(L, 2));
    n = push_raw(L, c, (const char *)auth, (size_t)n);
    memset(auth, 0, sizeof auth);
    return n;
}

/* codec:command(name, arg) -> bytes; starts a command (sequence id 0). */
static int l_codec_command(lua_State *L)
{
    static const char *const names[] = {"query", "prepare", "ping", "reset", "quit", "close_stmt",
                                        NULL};
    static const unsigned char cmds[] = {FSDB_COM_QUERY, FSDB_COM_STMT_PREPARE, FSDB_COM_PING,
                                         FSDB_COM_RESET_CONNECTION, FSDB_COM_QUIT,
                                         FSDB_COM_STMT_CLOSE};
    lcodec *c = check_codec(L);
    int which = luaL_checkoption(L, 2, NULL, names);
    size_t n = 0;
    const char *arg = "";
    unsigned char id[4];
    fsdb_wbuf w = {0};

    if (c->state != S_IDLE || c->broken)
        return luaL_error(L, "fsdb: connection is busy reading a result; finish or close it first");
    if (cmds[which] == FSDB_COM_STMT_CLOSE) {
        unsigned long v = (unsigned long)luaL_checknumber(L, 3);
        id[0] = (unsigned char)v;
        id[1] = (unsigned char)(v >> 8);
        id[2] = (unsigned char)(v >> 16);
        id[3] = (unsigned char)(v >> 24);
        arg = (const char *)id;
        n = 4;
    } else if (!lua_isnoneornil(L, 3)) {
        arg = luaL_checklstring(L, 3, &n);
    }
    fsdb_codec_command(&w, cmds[which], arg, n);
    c->rd.seq = 0;
    c->gtid_len = 0; /* a GTID never outlives its command */
    free_columns(c);
    c->nrows = 0;
    if (cmds[which] == FSDB_COM_STMT_PREPARE)
        c->state = S_P_FIRST;
    else if (cmds[which] == FSDB_COM_QUERY || cmds[which] == FSDB_COM_PING ||
             cmds[which] == FSDB_COM_RESET_CONNECTION)
        c->state = S_FIRST;
    c->binary = 0;
    return push_frame(L, c, &w);
}

/* One Lua value into p, by the libmariadb path's rules (param.c). */
static void to_param(lua_State *L, int idx, fsdb_param *p, int pos, int names_idx)
{
    const char *why = fsdb_param_from_lua(L, idx, p);
    if (why == NULL)
        return;
    if (names_idx) {
        lua_rawgeti(L, names_idx, pos);
        if (lua_type(L, -1) == LUA_TSTRING)
            fsdb_param_refuse(L, idx, (unsigned)pos, lua_tostring(L, -1), why);
        lua_pop(L, 1);
    }
    fsdb_param_refuse(L, idx, (unsigned)pos, NULL, why);
}

/* codec:execute(stmt_id, values, n [, names]) -> bytes. values[1..n]
 * (nil = NULL) stay in their table, which anchors the strings. */
static int l_codec_execute(lua_State *L)
{
    lcodec *c = check_codec(L);
    unsigned long id = (unsigned long)luaL_checknumber(L, 2);
    int n = (int)luaL_checkinteger(L, 4), i, names_idx = lua_istable(L, 5) ? 5 : 0;
    fsdb_param small[16], *params = small;
    fsdb_wbuf w = {0};

    luaL_checktype(L, 3, LUA_TTABLE);
    if (c->state != S_IDLE || c->broken)
        return luaL_error(L, "fsdb: connection is busy reading a result; finish or close it first");
    if (n < 0 || n > 65535)
        return luaL_error(L, "fsdb: bad parameter count %d", n);
    if (n > (int)(sizeof small / sizeof small[0]))
        params = lua_newuserdata(L, (size_t)n * sizeof *params);
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, 3, i + 1);
        to_param(L, lua_gettop(L), &params[i], i + 1, names_idx);
        lua_pop(L, 1); /* the table keeps the string */
    }
    fsdb_codec_stmt_execute(&w, id, params, (unsigned)n);
    c->rd.seq = 0;
    c->gtid_len = 0;
    free_columns(c);
    c->nrows = 0;
    c->state = S_FIRST;
    c->binary = 1;
    return push_frame(L, c, &w);
}

/* Keeps the GTID an OK packet reported (only when session tracking was
 * agreed: without it the packet's tail is plain info text). */
static void keep_gtid(lcodec *c, const fsdb_ok *ok)
{
    c->gtid_len = 0;
    if ((c->caps & FSDB_CLIENT_SESSION_TRACK) && ok->gtid.p && ok->gtid.n <= sizeof c->gtid) {
        memcpy(c->gtid, ok->gtid.p, ok->gtid.n);
        c->gtid_len = ok->gtid.n;
    }
}

static void push_ok(lua_State *L, lcodec *c, const fsdb_ok *ok)
{
    c->status = ok->status;
    c->warnings = ok->warnings;
    fsdb_result_push_ok(L, ok->affected, ok->insert_id, ok->warnings);
}

static int start_columns(lcodec *c, const fsdb_slice *pkt, fsdb_error *err)
{
    unsigned long long n;
    if (fsdb_codec_parse_count(pkt->p, pkt->n, &n, err) < 0)
        return -1;
    c->ncols = (unsigned)n;
    c->got = 0;
    c->defs = calloc(n, sizeof *c->defs);
    c->kinds = calloc(n, sizeof *c->kinds);
    c->cells = calloc(n, sizeof *c->cells);
    c->cols = calloc(n, sizeof *c->cols);
    if (!c->defs || !c->kinds || !c->cells || !c->cols) {
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory reading a result");
        return -1;
    }
    return 0;
}

static int add_column(lcodec *c, const fsdb_slice *pkt, fsdb_error *err)
{
    fsdb_coldef *d = &c->defs[c->got];
    MYSQL_FIELD f;
    if (fsdb_codec_parse_coldef(pkt->p, pkt->n, d, err) < 0)
        return -1;
    c->got++;
    memset(&f, 0, sizeof f);
    f.type = (enum enum_field_types)d->type;
    f.flags = d->flags;
    c->kinds[c->got - 1] = fsdb_column_kind(&f);
    c->cols[c->got - 1].kind = c->kinds[c->got - 1];
    c->cols[c->got - 1].decimals = d->decimals;
    return 0;
}

/* acc.columns = {name…}; leaves it on the stack. */
static void push_columns(lua_State *L, lcodec *c, int acc)
{
    unsigned i;
    lua_createtable(L, (int)c->ncols, 0);
    for (i = 0; i < c->ncols; i++) {
        lua_pushlstring(L, c->defs[i].name, c->defs[i].name_len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, acc, "columns");
}

/* Decodes pkt into c->cols (binary) or c->cells (text); -1 with err set. */
static int decode_row(lcodec *c, const fsdb_slice *pkt, fsdb_error *err)
{
    if (c->binary)
        return fsdb_codec_binary_row(pkt->p, pkt->n, c->defs, c->ncols, c->cols, err);
    return fsdb_codec_text_row(pkt->p, pkt->n, c->ncols, c->cells, err);
}

/* Pushes column i's value of the row decode_row read. */
static void push_cell(lua_State *L, lcodec *c, unsigned i)
{
    if (c->binary) {
        fsdb_result_push_bin_value(L, &c->cols[i]);
    } else if (c->cells[i].p == NULL || c->kinds[i] == FSDB_K_BYTES ||
               c->kinds[i] >= FSDB_K_DATE) {
        fsdb_result_push_text_value(L, c->kinds[i], (const char *)c->cells[i].p,
                                    (unsigned long)c->cells[i].n);
    } else {
        /* Numbers are parsed from a NUL-terminated copy. */
        char num[72];
        size_t len = c->cells[i].n < sizeof num - 1 ? c->cells[i].n : sizeof num - 1;
        memcpy(num, c->cells[i].p, len);
        num[len] = 0;
        fsdb_result_push_text_value(L, c->kinds[i], num, (unsigned long)len);
    }
}

/* Pushes one row table built from pkt, or returns -1 (err set). */
static int push_row(lua_State *L, lcodec *c, const fsdb_slice *pkt, int names_idx,
                    int array_rows, fsdb_error *err)
{
    unsigned i, n = c->ncols;
    if (decode_row(c, pkt, err) < 0)
        return -1;
    lua_createtable(L, array_rows ? (int)n : 0, array_rows ? 0 : (int)n);
    for (i = 0; i < n; i++) {
        if (!array_rows)
            lua_rawgeti(L, names_idx, (int)i + 1);
        push_cell(L, c, i);
        if (array_rows)
            lua_rawseti(L, -2, (int)i + 1);
        else
            lua_rawset(L, -3);
    }
    return 0;
}

/* Appends pkt's values to the column arrays at cols_idx.. (columnar.h),
 * or returns -1 (err set). */
static int store_row(lua_State *L, lcodec *c, const fsdb_slice *pkt, int cols_idx,
                     fsdb_error *err)
{
    unsigned i;
    if (decode_row(c, pkt, err) < 0)
        return -1;
    c->nrows++;
    for (i = 0; i < c->ncols; i++) {
        push_cell(L, c, i);
        lua_rawseti(L, cols_idx + (int)i, (int)c->nrows);
    }
    return 0;
}

/* The rows form of codec:read's third argument: false/true (rows keyed or
 * as arrays) or "columnar". */
static int rows_form(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        if (strcmp(lua_tostring(L, idx), "columnar") != 0)
            luaL_error(L, "fsdb: codec: unknown rows form '%s'", lua_tostring(L, idx));
        return FSDB_ROWS_COLUMNAR;
    }
    return lua_toboolean(L, idx) ? FSDB_ROWS_ARRAY : 0;
}

/* codec:read(acc, array_rows, stream) — the reply to query, execute, ping
 * or reset. Returns false (feed more), the OK table {affected_rows, …},
 * acc completed with its rows and columns, or nil, err, errno, sqlstate.
 * With stream: one row table per call, then true at the end of the rows
 * (acc.columns is set before the first row). array_rows = "columnar"
 * (not with stream) completes acc as columnar.h's form instead. */
static int l_codec_read(lua_State *L)
{
    lcodec *c = check_codec(L);
    int form = rows_form(L, 3), stream = lua_toboolean(L, 4), names_idx = 0, cols_idx = 0, rc;
    int array_rows = form == FSDB_ROWS_ARRAY, columnar = form == FSDB_ROWS_COLUMNAR;
    fsdb_slice pkt;
    fsdb_error err;
    fsdb_ok ok;
    unsigned i;

    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checkstack(L, 10, "fsdb: result");
    if (columnar && stream)
        return luaL_error(L, "fsdb: codec: columnar results are not streamed");
    lua_settop(L, 4);
    if (c->state < S_FIRST || c->state > S_ROWS)
        return luaL_error(L, "fsdb: codec: no result to read");
    if (c->state == S_ROWS) {
        lua_getfield(L, 2, "columns");
        names_idx = lua_gettop(L);
        if (columnar) {
            /* acc's column arrays, on the stack for the rows to come */
            luaL_checkstack(L, (int)c->ncols + 2, "fsdb: result");
            cols_idx = lua_gettop(L) + 1;
            for (i = 1; i <= c->ncols; i++)
                lua_rawgeti(L, 2, (int)i);
        }
    }
    c->busy = 1;
    for (;;) {
        if ((rc = next_packet(c, &pkt, &err)) <= 0) {
            c->busy = 0;
            if (rc == 0) {
                lua_pushboolean(L, 0);
                return 1;
            }
            return push_broken(L, c, &err);
        }
        if (pkt.n == 0) {
            fsdb_error_set(&err, 2027, "08S01", "malformed packet from the server (empty)");
            return push_broken(L, c, &err);
        }
        switch (c->state) {
        case S_FIRST:
            if (pkt.p[0] == FSDB_PKT_OK) {
                if (fsdb_codec_parse_ok(pkt.p, pkt.n, &ok, &err) < 0)
                    return push_broken(L, c, &err);
                c->state = S_IDLE;
                c->busy = 0;
                keep_gtid(c, &ok);
                if (stream) {
                    lua_pushboolean(L, 1);
                    return 1;
                }
                push_ok(L, c, &ok);
                return 1;
            }
            if (pkt.p[0] == FSDB_PKT_ERR) {
                fsdb_codec_parse_err(pkt.p, pkt.n, &err);
                return push_server_error(L, c, &err);
            }
            if (pkt.p[0] == 0xfb) {
                fsdb_error_set(&err, 2027, "08S01",
                               "the server asked for a local file (LOAD DATA LOCAL INFILE), "
                               "which this transport never sends");
                return push_broken(L, c, &err);
            }
            if (start_columns(c, &pkt, &err) < 0)
                return push_broken(L, c, &err);
            c->state = S_COLS;
            break;
        case S_COLS:
            if (add_column(c, &pkt, &err) < 0)
                return push_broken(L, c, &err);
            if (c->got == c->ncols)
                c->state = S_COLS_EOF;
            break;
        case S_COLS_EOF:
            if (!fsdb_codec_is_eof(pkt.p, pkt.n)) {
                fsdb_error_set(&err, 2027, "08S01", "malformed packet from the server "
                                                    "(more columns than announced)");
                return push_broken(L, c, &err);
            }
            c->state = S_ROWS;
            push_columns(L, c, 2);
            names_idx = lua_gettop(L);
            if (columnar) {
                cols_idx = names_idx + 1;
                fsdb_columnar_begin(L, 2, names_idx, c->ncols);
            }
            break;
        default: /* S_ROWS */
            if (fsdb_codec_is_eof(pkt.p, pkt.n)) {
                if (fsdb_codec_parse_eof(pkt.p, pkt.n, &ok, &err) < 0)
                    return push_broken(L, c, &err);
                c->status = ok.status;
                c->warnings = ok.warnings;
                c->state = S_IDLE;
                c->busy = 0;
                if (ok.status & 0x0008) { /* SERVER_MORE_RESULTS_EXISTS: never asked for */
                    fsdb_error_set(&err, 2027, "08S01", "the server sent several results");
                    return push_broken(L, c, &err);
                }
                if (stream)
                    lua_pushboolean(L, 1);
                else
                    lua_pushvalue(L, 2);
                return 1;
            }
            if (pkt.p[0] == FSDB_PKT_ERR) {
                fsdb_codec_parse_err(pkt.p, pkt.n, &err);
                return push_server_error(L, c, &err);
            }
            if (columnar) {
                if (store_row(L, c, &pkt, cols_idx, &err) < 0)
                    return push_broken(L, c, &err);
                break;
            }
            if (push_row(L, c, &pkt, names_idx, array_rows, &err) < 0)
                return push_broken(L, c, &err);
            if (stream) {
                c->busy = 0;
                return 1;
            }
            lua_rawseti(L, 2, (int)++c->nrows);
            break;
        }
    }
}

/* codec:read_prepare() -> false | {id, nparams, ncols} | nil, err, … */
static int l_codec_read_prepare(lua_State *L)
{
    lcodec *c = check_codec(L);
    fsdb_slice pkt;
    fsdb_error err;
    int rc;

    if (c->state != S_P_FIRST && c->state != S_P_SKIP)
        return luaL_error(L, "fsdb: codec: no prepare reply to read");
    for (;;) {
        if (c->state == S_P_SKIP && c->skip == 0)
            break;
        if ((rc = next_packet(c, &pkt, &err)) <= 0)
            return rc == 0 ? (lua_pushboolean(L, 0), 1) : push_broken(L, c, &err);
        if (c->state == S_P_FIRST) {
            if (pkt.n > 0 && pkt.p[0] == FSDB_PKT_ERR) {
                fsdb_codec_parse_err(pkt.p, pkt.n, &err);
                return push_server_error(L, c, &err);
            }
            if (fsdb_codec_parse_prepare_ok(pkt.p, pkt.n, &c->prep, &err) < 0)
                return push_broken(L, c, &err);
            c->skip = c->prep.nparams + (c->prep.nparams > 0) + c->prep.ncols + (c->prep.ncols > 0);
            c->state = S_P_SKIP;
        } else {
            c->skip--; /* definitions: the execute reply repeats the columns */
        }
    }
    c->state = S_IDLE;
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, (lua_Number)c->prep.stmt_id);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, (lua_Integer)c->prep.nparams);
    lua_setfield(L, -2, "nparams");
    lua_pushinteger(L, (lua_Integer)c->prep.ncols);
    lua_setfield(L, -2, "ncols");
    return 1;
}

/* codec:status() -> the server status flags of the last reply, and
 * whether the conversation is idle (a new command may start). */
static int l_codec_status(lua_State *L)
{
    lcodec *c = fsdb_checkudata(L, 1, FSDB_CODEC_MT);
    lua_pushinteger(L, (lua_Integer)c->status);
    lua_pushboolean(L, c->state == S_IDLE && !c->broken && c->rd.off == c->rd.len);
    lua_pushinteger(L, (lua_Integer)c->warnings);
    return 3;
}

/* codec:set_status(flags): after a deadlock the server has rolled back
 * though its ERR reply carries no flags (see lconn.c). */
static int l_codec_set_status(lua_State *L)
{
    lcodec *c = check_codec(L);
    c->status = (unsigned)luaL_checkinteger(L, 2);
    return 0;
}

/* codec:tracked_gtid() -> the last_gtid the last command's OK packet
 * reported, or nil. */
static int l_codec_tracked_gtid(lua_State *L)
{
    lcodec *c = check_codec(L);
    if (c->gtid_len == 0)
        lua_pushnil(L);
    else
        lua_pushlstring(L, c->gtid, c->gtid_len);
    return 1;
}

/* core.codec_error(code, sqlstate, message [, secret]) -> nil, "fsdb: …
 * hint", code, sqlstate: the transports' failures in the same words as
 * the libmariadb path's (hints and password scrubbing from error.c). */
static int l_codec_error(lua_State *L)
{
    fsdb_error err;
    fsdb_error_set(&err, (unsigned)luaL_checkinteger(L, 1), luaL_optstring(L, 2, NULL), "%s",
                   luaL_checkstring(L, 3));
    fsdb_error_add_hint(&err);
    if (lua_isstring(L, 4))
        fsdb_error_scrub(&err, lua_tostring(L, 4));
    return fsdb_push_error(L, &err);
}

void fsdb_lcodec_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"feed", l_codec_feed},
        {"handshake", l_codec_handshake},
        {"ssl_request", l_codec_ssl_request},
        {"login", l_codec_login},
        {"auth", l_codec_auth},
        {"auth_reply", l_codec_auth_reply},
        {"command", l_codec_command},
        {"execute", l_codec_execute},
        {"read", l_codec_read},
        {"read_prepare", l_codec_read_prepare},
        {"status", l_codec_status},
        {"set_status", l_codec_set_status},
        {"tracked_gtid", l_codec_tracked_gtid},
        {NULL, NULL}};

    luaL_newmetatable(L, FSDB_CODEC_MT);
    lua_pushcfunction(L, l_codec_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    fsdb_setfuncs(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_codec_new);
    lua_setfield(L, -2, "codec");
    lua_pushcfunction(L, l_codec_error);
    lua_setfield(L, -2, "codec_error");
}
