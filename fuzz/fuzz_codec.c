/*
 * fuzz_codec.c — libFuzzer target for the protocol codec (codec.c): what
 * a hostile or broken server can send.
 *
 * The input is a byte stream from the server, as the seeds in
 * fuzz/corpus/codec/ are (whole conversations captured from the test
 * server by fuzz/capture_codec.lua). Two passes:
 *   1. the reader: fed in chunks whose sizes come from the input, asked
 *      for packets until it wants more or fails (sequence ids checked,
 *      16 MB parts joined);
 *   2. each frame's payload through every parser, the rows with the
 *      columns parsed so far.
 * Each payload is also parsed as the tail of an OK packet whose status
 * says SERVER_SESSION_STATE_CHANGED, so every input reaches the session
 * tracker parser (info string, then the state change block).
 * Promises checked: every parser returns 0 or -1; a -1 sets an error
 * code; a row never points outside its packet; byte values stay inside
 * it; a tracked GTID lies inside its packet and is a plain GTID. A broken
 * promise aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "fuzz_codec: broken promise: %s (line %d)\n", #cond,  \
                    __LINE__);                                                     \
            abort();                                                               \
        }                                                                          \
    } while (0)

#define MAX_COLS 32

/* An OK packet's fixed part: no rows, no insert id, autocommit and
 * SERVER_SESSION_STATE_CHANGED, no warnings. */
static const uint8_t OK_HEAD[] = {0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00};

static void check_gtid(const fsdb_ok *ok, const uint8_t *p, size_t n)
{
    if (ok->gtid.p == NULL)
        return;
    CHECK(ok->gtid.p >= p && ok->gtid.p + ok->gtid.n <= p + n);
    CHECK(fsdb_codec_plain_gtid((const char *)ok->gtid.p, ok->gtid.n));
}

/* p as what follows an OK's warning count: its fixed part is good, so the
 * OK parses whatever the tracker block holds. */
static void tracker_pass(const uint8_t *p, size_t n)
{
    fsdb_error err;
    fsdb_ok ok;
    uint8_t *pkt = malloc(sizeof OK_HEAD + n);
    if (!pkt)
        return;
    memcpy(pkt, OK_HEAD, sizeof OK_HEAD);
    if (n)
        memcpy(pkt + sizeof OK_HEAD, p, n);
    CHECK(fsdb_codec_parse_ok(pkt, sizeof OK_HEAD + n, &ok, &err) == 0);
    CHECK(ok.status == 0x4002 && ok.affected == 0 && ok.insert_id == 0);
    check_gtid(&ok, pkt, sizeof OK_HEAD + n);
    free(pkt);
}

static void reader_pass(const uint8_t *data, size_t size)
{
    fsdb_reader r;
    fsdb_error err;
    fsdb_slice pkt;
    size_t at = 0, step = size ? (size_t)data[0] % 61 + 1 : 1;
    int rc = 0;

    memset(&r, 0, sizeof r);
    r.max_payload = 1 << 20;
    while (at < size && rc >= 0) {
        size_t n = size - at < step ? size - at : step;
        CHECK(fsdb_reader_feed(&r, data + at, n, &err) == 0);
        at += n;
        while ((rc = fsdb_reader_next(&r, &pkt, &err)) == 1) {
            CHECK(pkt.n <= size);
            if (pkt.n > 0) /* touch both ends: ASan checks the slice */
                CHECK(pkt.p[0] == pkt.p[0] && pkt.p[pkt.n - 1] == pkt.p[pkt.n - 1]);
            /* a new command restarts the numbering, as the transport does */
            if (pkt.n > 0 && (pkt.p[0] == 0x00 || pkt.p[0] == 0xfe))
                r.seq = 0;
        }
        if (rc < 0)
            CHECK(err.code != 0);
    }
    fsdb_reader_free(&r);
}

static void parse_all(const uint8_t *p, size_t n, fsdb_coldef *defs, unsigned *ndefs)
{
    fsdb_error err;
    fsdb_handshake h;
    fsdb_ok ok;
    fsdb_coldef d;
    fsdb_prepare_ok po;
    fsdb_slice cells[MAX_COLS], data;
    fsdb_colbuf cols[MAX_COLS];
    unsigned long long count;
    char plugin[64];
    unsigned i, k;
    int rc;

    rc = fsdb_codec_parse_handshake(p, n, &h, &err);
    CHECK(rc == 0 || err.code != 0);
    if (rc == 0) {
        CHECK(h.scramble_len <= sizeof h.scramble);
        CHECK(memchr(h.server_version, 0, sizeof h.server_version) != NULL);
        CHECK(memchr(h.plugin, 0, sizeof h.plugin) != NULL);
    }
    rc = fsdb_codec_parse_ok(p, n, &ok, &err);
    CHECK(rc == 0 || err.code != 0);
    if (rc == 0)
        check_gtid(&ok, p, n);
    tracker_pass(p, n);
    rc = fsdb_codec_parse_eof(p, n, &ok, &err);
    CHECK(rc == 0 || err.code != 0);
    fsdb_codec_parse_err(p, n, &err);
    CHECK(err.code != 0 && memchr(err.message, 0, sizeof err.message) != NULL);
    rc = fsdb_codec_parse_auth_switch(p, n, plugin, &data, &err);
    if (rc == 0)
        CHECK(data.p >= p && data.p + data.n <= p + n);
    rc = fsdb_codec_parse_count(p, n, &count, &err);
    CHECK(rc == 0 ? count > 0 && count <= 4096 : err.code != 0);
    rc = fsdb_codec_parse_prepare_ok(p, n, &po, &err);
    CHECK(rc == 0 || err.code != 0);
    rc = fsdb_codec_parse_coldef(p, n, &d, &err);
    if (rc == 0) {
        CHECK(d.name != NULL && d.name[d.name_len] == 0);
        if (*ndefs < MAX_COLS)
            defs[(*ndefs)++] = d;
        else
            fsdb_coldef_free(&d);
    } else {
        CHECK(err.code != 0);
    }
    /* Rows with all the columns so far, and with as many as the first
     * byte says (text rows need no definitions). */
    k = n > 0 ? p[0] % MAX_COLS + 1 : 1;
    if (fsdb_codec_text_row(p, n, k, cells, &err) == 0) {
        for (i = 0; i < k; i++)
            if (cells[i].p)
                CHECK(cells[i].p >= p && cells[i].p + cells[i].n <= p + n);
    }
    for (k = *ndefs; k >= 1 && k == *ndefs; k--) {
        if (fsdb_codec_text_row(p, n, k, cells, &err) == 0) {
            for (i = 0; i < k; i++)
                if (cells[i].p)
                    CHECK(cells[i].p >= p && cells[i].p + cells[i].n <= p + n);
        }
        memset(cols, 0, sizeof cols);
        if (fsdb_codec_binary_row(p, n, defs, k, cols, &err) == 0) {
            for (i = 0; i < k; i++)
                if (!cols[i].is_null && cols[i].buf)
                    CHECK((const uint8_t *)cols[i].buf >= p &&
                          (const uint8_t *)cols[i].buf + cols[i].length <= p + n);
        } else {
            CHECK(err.code != 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fsdb_coldef defs[MAX_COLS];
    unsigned ndefs = 0, i;
    size_t at = 0;

    reader_pass(data, size);
    while (size - at >= 4) {
        size_t len = (size_t)data[at] | (size_t)data[at + 1] << 8 | (size_t)data[at + 2] << 16;
        uint8_t *copy;
        at += 4;
        if (len > size - at)
            len = size - at;
        /* An exact-size heap copy: ASan sees a read one past the end. */
        copy = malloc(len ? len : 1);
        if (!copy)
            break;
        memcpy(copy, data + at, len);
        parse_all(copy, len, defs, &ndefs);
        free(copy);
        at += len;
    }
    for (i = 0; i < ndefs; i++)
        fsdb_coldef_free(&defs[i]);
    return 0;
}
