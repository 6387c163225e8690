/*
 * codec.h — the MySQL/MariaDB client protocol without I/O (no Lua, no
 * libmariadb calls; only its headers for the type numbers).
 *
 * Owns: packet framing (3-byte length, sequence id, 16 MB parts joined),
 * the handshake v10, the handshake response and SSL request, auth
 * scrambles (mysql_native_password, caching_sha2_password's fast path,
 * MariaDB's client_ed25519),
 * OK/ERR/EOF (with the OK's last_gtid session tracker), column
 * definitions, text and binary rows, and the command packets (COM_QUERY,
 * COM_STMT_PREPARE/EXECUTE/CLOSE, COM_PING, COM_RESET_CONNECTION,
 * COM_QUIT). Bytes go in and out of buffers; the
 * caller moves them (lcodec.c, then a Lua transport). Every parser checks
 * every length against its buffer: a hostile packet is an error, never a
 * read past the end.
 */
#ifndef FSDB_CODEC_H
#define FSDB_CODEC_H

#include <stddef.h>
#include "error.h"
#include "stmt.h"

/* Capability flags fsdb uses (protocol constants). */
#define FSDB_CLIENT_LONG_PASSWORD 0x00000001UL
#define FSDB_CLIENT_FOUND_ROWS 0x00000002UL
#define FSDB_CLIENT_LONG_FLAG 0x00000004UL
#define FSDB_CLIENT_CONNECT_WITH_DB 0x00000008UL
#define FSDB_CLIENT_PROTOCOL_41 0x00000200UL
#define FSDB_CLIENT_SSL 0x00000800UL
#define FSDB_CLIENT_TRANSACTIONS 0x00002000UL
#define FSDB_CLIENT_SECURE_CONNECTION 0x00008000UL
#define FSDB_CLIENT_MULTI_RESULTS 0x00020000UL
#define FSDB_CLIENT_PLUGIN_AUTH 0x00080000UL
#define FSDB_CLIENT_PLUGIN_AUTH_LENENC 0x00200000UL
#define FSDB_CLIENT_SESSION_TRACK 0x00800000UL

/* Status flag: the OK packet ends with session state changes. */
#define FSDB_SERVER_SESSION_STATE_CHANGED 0x4000U

#define FSDB_MAX_PART 0xffffffUL

typedef struct fsdb_slice {
    const unsigned char *p; /* NULL for SQL NULL */
    size_t n;
} fsdb_slice;

/* Bytes in, whole packets out. */
typedef struct fsdb_reader {
    unsigned char *buf;    /* fed bytes; [off, len) not yet consumed */
    size_t len, cap, off;
    unsigned char *joined; /* a payload of several 16 MB parts */
    size_t joined_cap;
    unsigned seq;          /* the sequence id the next packet must carry */
    size_t max_payload;    /* refuse larger (0 = 1 GB) */
} fsdb_reader;

int fsdb_reader_feed(fsdb_reader *r, const void *data, size_t n, fsdb_error *err);
/* 1 = one packet's payload in *out (valid until the next call), 0 = need
 * more bytes, -1 = error (bad sequence id, too big). */
int fsdb_reader_next(fsdb_reader *r, fsdb_slice *out, fsdb_error *err);
void fsdb_reader_free(fsdb_reader *r);

/* A growable output buffer. */
typedef struct fsdb_wbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} fsdb_wbuf;

void fsdb_wbuf_free(fsdb_wbuf *w);
/* Frames payload as packets starting at *seq (advanced), appended to out. */
int fsdb_codec_frame(fsdb_wbuf *out, const unsigned char *payload, size_t n, unsigned *seq);

typedef struct fsdb_handshake {
    unsigned protocol;
    char server_version[64];
    unsigned long thread_id;
    unsigned char scramble[64];
    size_t scramble_len;
    unsigned long long caps; /* server capabilities; MariaDB's extended ones at bit 32 */
    unsigned charset;
    unsigned status;
    char plugin[64];
} fsdb_handshake;

int fsdb_codec_parse_handshake(const unsigned char *p, size_t n, fsdb_handshake *h, fsdb_error *err);

/* The handshake response payload (after the SSL request when TLS is on).
 * auth is the plugin's answer to the scramble. */
int fsdb_codec_handshake_response(fsdb_wbuf *out, unsigned long caps, unsigned charset,
                                  const char *user, const unsigned char *auth, size_t auth_len,
                                  const char *database, const char *plugin);
/* The 32-byte SSL request payload. */
int fsdb_codec_ssl_request(fsdb_wbuf *out, unsigned long caps, unsigned charset);

/* Auth answers; out holds 20 (native) or 32 (sha2) bytes, 0 for an empty
 * password. Return the length, -1 when libcrypto fails. */
int fsdb_codec_native_password(const char *pw, size_t pwlen, const unsigned char *scramble,
                               size_t slen, unsigned char out[20]);
int fsdb_codec_sha2_password(const char *pw, size_t pwlen, const unsigned char *scramble,
                             size_t slen, unsigned char out[32]);

/* client_ed25519 (MariaDB): the 64-byte signature of msg with the key
 * derived from the password; 64, or -1 when libcrypto fails. */
int fsdb_codec_ed25519(const char *pw, size_t pwlen, const unsigned char *msg, size_t mlen,
                       unsigned char out[64]);

typedef struct fsdb_ok {
    unsigned long long affected, insert_id;
    unsigned status, warnings;
    /* last_gtid from the session state tracker (CLIENT_SESSION_TRACK),
     * pointing into the packet; p NULL when the packet carries none, a
     * malformed tracker block or a value that is no plain GTID. */
    fsdb_slice gtid;
} fsdb_ok;

enum { FSDB_PKT_OK = 0x00, FSDB_PKT_EOF = 0xfe, FSDB_PKT_ERR = 0xff };

int fsdb_codec_is_eof(const unsigned char *p, size_t n); /* 0xfe and short */
int fsdb_codec_parse_ok(const unsigned char *p, size_t n, fsdb_ok *ok, fsdb_error *err);
/* 1 when s is one GTID as MariaDB writes it (domain-server-sequence,
 * digits, at most 64 bytes); what a session may wait for on a replica. */
int fsdb_codec_plain_gtid(const char *s, size_t len);
int fsdb_codec_parse_eof(const unsigned char *p, size_t n, fsdb_ok *ok, fsdb_error *err);
/* Fills err from an ERR packet (a malformed one too). */
void fsdb_codec_parse_err(const unsigned char *p, size_t n, fsdb_error *err);

/* Auth switch request (0xfe): plugin name and its data. */
int fsdb_codec_parse_auth_switch(const unsigned char *p, size_t n, char plugin[64],
                                 fsdb_slice *data, fsdb_error *err);

typedef struct fsdb_coldef {
    char *name; /* malloc'd copy */
    size_t name_len;
    unsigned charset;
    unsigned long length;
    unsigned type;
    unsigned flags;
    unsigned decimals;
} fsdb_coldef;

int fsdb_codec_parse_coldef(const unsigned char *p, size_t n, fsdb_coldef *c, fsdb_error *err);
/* Reads a length-encoded integer (the column count packet). */
int fsdb_codec_parse_count(const unsigned char *p, size_t n, unsigned long long *v, fsdb_error *err);

/* COM_STMT_PREPARE's first reply. */
typedef struct fsdb_prepare_ok {
    unsigned long stmt_id;
    unsigned ncols, nparams, warnings;
} fsdb_prepare_ok;
int fsdb_codec_parse_prepare_ok(const unsigned char *p, size_t n, fsdb_prepare_ok *r,
                                fsdb_error *err);

/* A text row: cells[i].p NULL for SQL NULL. */
int fsdb_codec_text_row(const unsigned char *p, size_t n, unsigned ncols, fsdb_slice *cells,
                        fsdb_error *err);
/* A binary row into cols (kind and decimals left to the caller; byte
 * values point into p). */
int fsdb_codec_binary_row(const unsigned char *p, size_t n, const fsdb_coldef *defs,
                          unsigned ncols, fsdb_colbuf *cols, fsdb_error *err);

/* Command packets (payload only; frame with seq 0). */
int fsdb_codec_command(fsdb_wbuf *out, unsigned char cmd, const void *arg, size_t n);
int fsdb_codec_stmt_execute(fsdb_wbuf *out, unsigned long stmt_id, const fsdb_param *params,
                            unsigned n);

enum {
    FSDB_COM_QUIT = 0x01,
    FSDB_COM_QUERY = 0x03,
    FSDB_COM_PING = 0x0e,
    FSDB_COM_STMT_PREPARE = 0x16,
    FSDB_COM_STMT_EXECUTE = 0x17,
    FSDB_COM_STMT_CLOSE = 0x19,
    FSDB_COM_RESET_CONNECTION = 0x1f
};

void fsdb_coldef_free(fsdb_coldef *c);

#endif
