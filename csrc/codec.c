/*
 * codec.c — the client protocol on byte buffers; see codec.h.
 */
#include "codec.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define MALFORMED 2027 /* CR_MALFORMED_PACKET: the connection is discarded */

static int malformed(fsdb_error *err, const char *what)
{
    fsdb_error_set(err, MALFORMED, "HY000", "malformed packet from the server (%s)", what);
    return -1;
}

/* ---- reading fields: a cursor that never passes its end ---- */

typedef struct rd {
    const unsigned char *p, *end;
    int bad;
} rd;

static unsigned long long rd_int(rd *r, size_t n)
{
    unsigned long long v = 0;
    size_t i;
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    for (i = 0; i < n; i++)
        v |= (unsigned long long)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static const unsigned char *rd_bytes(rd *r, size_t n)
{
    const unsigned char *s = r->p;
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    r->p += n;
    return s;
}

/* Length-encoded integer; *is_null for 0xfb (a NULL cell). */
static unsigned long long rd_lenenc(rd *r, int *is_null)
{
    unsigned first = (unsigned)rd_int(r, 1);
    if (is_null)
        *is_null = 0;
    if (r->bad)
        return 0;
    if (first < 0xfb)
        return first;
    switch (first) {
    case 0xfb:
        if (is_null)
            *is_null = 1;
        else
            r->bad = 1;
        return 0;
    case 0xfc:
        return rd_int(r, 2);
    case 0xfd:
        return rd_int(r, 3);
    case 0xfe:
        return rd_int(r, 8);
    default:
        r->bad = 1;
        return 0;
    }
}

static const unsigned char *rd_lenenc_str(rd *r, size_t *n, int *is_null)
{
    unsigned long long len = rd_lenenc(r, is_null);
    if (r->bad || (is_null && *is_null)) {
        *n = 0;
        return NULL;
    }
    if (len > (unsigned long long)(r->end - r->p)) {
        r->bad = 1;
        *n = 0;
        return NULL;
    }
    *n = (size_t)len;
    return rd_bytes(r, (size_t)len);
}

/* NUL-terminated string copied into out (cap bytes, truncated). */
static void rd_cstr(rd *r, char *out, size_t cap)
{
    const unsigned char *z;
    size_t n;
    if (r->bad) {
        out[0] = 0;
        return;
    }
    z = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (z == NULL) {
        r->bad = 1;
        out[0] = 0;
        return;
    }
    n = (size_t)(z - r->p);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, r->p, n);
    out[n] = 0;
    r->p = z + 1;
}

/* ---- framing ---- */

static int ensure(unsigned char **buf, size_t *cap, size_t need)
{
    size_t ncap = *cap ? *cap : 4096;
    unsigned char *nb;
    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    if ((nb = realloc(*buf, ncap)) == NULL)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

int fsdb_reader_feed(fsdb_reader *r, const void *data, size_t n, fsdb_error *err)
{
    /* Drop the consumed prefix before growing. */
    if (r->off > 0 && r->off == r->len) {
        r->off = r->len = 0;
    } else if (r->off > 0 && r->len + n > r->cap) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (ensure(&r->buf, &r->cap, r->len + n) < 0) {
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory reading from the server");
        return -1;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return 0;
}

int fsdb_reader_next(fsdb_reader *r, fsdb_slice *out, fsdb_error *err)
{
    size_t at = r->off, total = 0, max = r->max_payload ? r->max_payload : (1UL << 30);
    unsigned seq = r->seq;
    int parts = 0;

    /* First pass: are all the parts here? */
    for (;;) {
        size_t len;
        if (r->len - at < 4)
            return 0;
        len = (size_t)r->buf[at] | (size_t)r->buf[at + 1] << 8 | (size_t)r->buf[at + 2] << 16;
        if (r->buf[at + 3] != (seq & 0xff)) {
            fsdb_error_set(err, MALFORMED, "08S01",
                           "packets out of order (sequence id %u, expected %u)",
                           (unsigned)r->buf[at + 3], seq & 0xff);
            return -1;
        }
        if (len > max - total) {
            fsdb_error_set(err, 1153, "08S01", "a packet from the server is larger than %lu bytes",
                           (unsigned long)max);
            return -1;
        }
        if (r->len - at - 4 < len)
            return 0;
        at += 4 + len;
        total += len;
        seq++;
        parts++;
        if (len < FSDB_MAX_PART)
            break;
    }
    if (parts == 1) {
        out->p = r->buf + r->off + 4;
        out->n = total;
    } else {
        size_t pos = r->off, k = 0;
        if (ensure(&r->joined, &r->joined_cap, total ? total : 1) < 0) {
            fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory reading from the server");
            return -1;
        }
        while (pos < at) {
            size_t len = (size_t)r->buf[pos] | (size_t)r->buf[pos + 1] << 8 |
                         (size_t)r->buf[pos + 2] << 16;
            memcpy(r->joined + k, r->buf + pos + 4, len);
            k += len;
            pos += 4 + len;
        }
        out->p = r->joined;
        out->n = total;
    }
    r->off = at;
    r->seq = seq & 0xff;
    return 1;
}

void fsdb_reader_free(fsdb_reader *r)
{
    free(r->buf);
    free(r->joined);
    memset(r, 0, sizeof *r);
}

/* ---- writing ---- */

void fsdb_wbuf_free(fsdb_wbuf *w)
{
    free(w->p);
    memset(w, 0, sizeof *w);
}

static void w_bytes(fsdb_wbuf *w, const void *s, size_t n)
{
    if (w->oom || n == 0)
        return;
    if (ensure(&w->p, &w->cap, w->len + n) < 0) {
        w->oom = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void w_int(fsdb_wbuf *w, unsigned long long v, size_t n)
{
    unsigned char b[8];
    size_t i;
    for (i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, b, n);
}

static void w_lenenc(fsdb_wbuf *w, unsigned long long v)
{
    if (v < 0xfb) {
        w_int(w, v, 1);
    } else if (v < 0x10000) {
        w_int(w, 0xfc, 1);
        w_int(w, v, 2);
    } else if (v < 0x1000000) {
        w_int(w, 0xfd, 1);
        w_int(w, v, 3);
    } else {
        w_int(w, 0xfe, 1);
        w_int(w, v, 8);
    }
}

static int w_done(fsdb_wbuf *w)
{
    return w->oom ? -1 : 0;
}

int fsdb_codec_frame(fsdb_wbuf *out, const unsigned char *payload, size_t n, unsigned *seq)
{
    size_t at = 0;
    for (;;) {
        size_t part = n - at > FSDB_MAX_PART ? FSDB_MAX_PART : n - at;
        w_int(out, part, 3);
        w_int(out, *seq & 0xff, 1);
        w_bytes(out, payload + at, part);
        *seq = (*seq + 1) & 0xff;
        at += part;
        /* A payload of exactly k * 16 MB ends with an empty part. */
        if (part < FSDB_MAX_PART)
            break;
    }
    return w_done(out);
}

/* ---- handshake and auth ---- */

int fsdb_codec_parse_handshake(const unsigned char *p, size_t n, fsdb_handshake *h,
                               fsdb_error *err)
{
    rd r = {p, p + n, 0};
    const unsigned char *s1, *s2;
    size_t len2 = 0;
    unsigned auth_len;

    memset(h, 0, sizeof *h);
    if (n > 0 && p[0] == FSDB_PKT_ERR) {
        fsdb_codec_parse_err(p, n, err);
        return -1;
    }
    h->protocol = (unsigned)rd_int(&r, 1);
    if (r.bad || h->protocol != 10) {
        fsdb_error_set(err, 2027, "08S01", "the server speaks protocol %u, not 10", h->protocol);
        return -1;
    }
    rd_cstr(&r, h->server_version, sizeof h->server_version);
    h->thread_id = (unsigned long)rd_int(&r, 4);
    s1 = rd_bytes(&r, 8);
    rd_int(&r, 1); /* filler */
    h->caps = rd_int(&r, 2);
    if (r.bad)
        return malformed(err, "handshake");
    if (s1)
        memcpy(h->scramble, s1, 8);
    h->scramble_len = 8;
    if (r.p == r.end)
        return 0; /* an old server: nothing more */
    h->charset = (unsigned)rd_int(&r, 1);
    h->status = (unsigned)rd_int(&r, 2);
    h->caps |= rd_int(&r, 2) << 16;
    auth_len = (unsigned)rd_int(&r, 1);
    rd_bytes(&r, 6);
    h->caps |= rd_int(&r, 4) << 32; /* MariaDB's extended capabilities (else filler) */
    if (r.bad)
        return malformed(err, "handshake");
    if (h->caps & FSDB_CLIENT_SECURE_CONNECTION) {
        /* The rest of the scramble: max(13, auth_len - 8), the last byte a NUL. */
        len2 = auth_len > 8 ? auth_len - 8 : 0;
        if (len2 < 13)
            len2 = 13;
        s2 = rd_bytes(&r, len2);
        if (r.bad)
            return malformed(err, "handshake scramble");
        if (len2 > 0 && s2[len2 - 1] == 0)
            len2--;
        if (len2 > sizeof h->scramble - 8)
            len2 = sizeof h->scramble - 8;
        memcpy(h->scramble + 8, s2, len2);
        h->scramble_len = 8 + len2;
    }
    if ((h->caps & FSDB_CLIENT_PLUGIN_AUTH) && r.p < r.end) {
        /* Some servers omit the final NUL. */
        size_t left = (size_t)(r.end - r.p), k = 0;
        while (k < left && r.p[k] != 0 && k < sizeof h->plugin - 1) {
            h->plugin[k] = (char)r.p[k];
            k++;
        }
        h->plugin[k] = 0;
    }
    return 0;
}

int fsdb_codec_ssl_request(fsdb_wbuf *out, unsigned long caps, unsigned charset)
{
    static const unsigned char zeros[23] = {0};
    w_int(out, caps | FSDB_CLIENT_SSL, 4);
    w_int(out, 16UL << 20, 4);
    w_int(out, charset, 1);
    w_bytes(out, zeros, 23);
    return w_done(out);
}

int fsdb_codec_handshake_response(fsdb_wbuf *out, unsigned long caps, unsigned charset,
                                  const char *user, const unsigned char *auth, size_t auth_len,
                                  const char *database, const char *plugin)
{
    static const unsigned char zeros[23] = {0};
    w_int(out, caps, 4);
    w_int(out, 16UL << 20, 4);
    w_int(out, charset, 1);
    w_bytes(out, zeros, 23);
    w_bytes(out, user ? user : "", strlen(user ? user : "") + 1);
    w_lenenc(out, auth_len);
    w_bytes(out, auth, auth_len);
    if (caps & FSDB_CLIENT_CONNECT_WITH_DB)
        w_bytes(out, database ? database : "", strlen(database ? database : "") + 1);
    if (caps & FSDB_CLIENT_PLUGIN_AUTH)
        w_bytes(out, plugin, strlen(plugin) + 1);
    return w_done(out);
}

static int digest(const char *md, const void *a, size_t an, const void *b, size_t bn,
                  unsigned char *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned olen = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_get_digestbyname(md), NULL) == 1 &&
             EVP_DigestUpdate(ctx, a, an) == 1 && (b == NULL || EVP_DigestUpdate(ctx, b, bn) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &olen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? (int)olen : -1;
}

/*
 * Both scrambles are H(pw) XOR H(x), x being H(H(pw)) and the server's
 * scramble concatenated, H the n-byte digest md; only x's order differs:
 *   mysql_native_password:  SHA1(pw)   XOR SHA1(scramble + SHA1(SHA1(pw)))
 *   caching_sha2_password:  SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble)
 */
static int xor_scramble(const char *md, int n, int scramble_first, const char *pw, size_t pwlen,
                        const unsigned char *scramble, size_t slen, unsigned char *out)
{
    unsigned char h1[64], h2[64], h3[64];
    int i, ok;
    if (pwlen == 0)
        return 0;
    if (slen > 20)
        slen = 20;
    ok = digest(md, pw, pwlen, NULL, 0, h1) == n && digest(md, h1, n, NULL, 0, h2) == n &&
         (scramble_first ? digest(md, scramble, slen, h2, n, h3)
                         : digest(md, h2, n, scramble, slen, h3)) == n;
    if (ok)
        for (i = 0; i < n; i++)
            out[i] = h1[i] ^ h3[i];
    /* H(pw) is as good as the password to a server that stores H(H(pw)). */
    memset(h1, 0, sizeof h1);
    return ok ? n : -1;
}

int fsdb_codec_native_password(const char *pw, size_t pwlen, const unsigned char *scramble,
                               size_t slen, unsigned char out[20])
{
    return xor_scramble("SHA1", 20, 1, pw, pwlen, scramble, slen, out);
}

int fsdb_codec_sha2_password(const char *pw, size_t pwlen, const unsigned char *scramble,
                             size_t slen, unsigned char out[32])
{
    return xor_scramble("SHA256", 32, 0, pw, pwlen, scramble, slen, out);
}

/* ---- client_ed25519 (MariaDB) ----
 *
 * MariaDB's variant of Ed25519 signs the server's scramble with a key
 * derived from SHA-512(password) (where Ed25519 hashes a 32-byte seed), so
 * OpenSSL's EVP Ed25519, which only takes a seed, cannot be used; the
 * group arithmetic is done here with BIGNUMs, in extended coordinates with
 * the unified addition law of twisted Edwards curves (a = -1), which also
 * doubles. Not constant-time: a login is not a signing oracle, and the
 * inputs are the client's own. */

typedef struct ed_point {
    BIGNUM *x, *y, *z, *t;
} ed_point;

typedef struct ed_ctx {
    BN_CTX *bn;
    BIGNUM *p, *d2, *l;
    BIGNUM *a, *b, *c, *e, *f, *g, *h, *tmp;
} ed_ctx;

static int ed_point_init(ed_point *q)
{
    q->x = BN_new();
    q->y = BN_new();
    q->z = BN_new();
    q->t = BN_new();
    return q->x && q->y && q->z && q->t;
}

static void ed_point_free(ed_point *q)
{
    BN_clear_free(q->x);
    BN_clear_free(q->y);
    BN_clear_free(q->z);
    BN_clear_free(q->t);
}

/* r = q1 + q2 (r may be q1 or q2). */
static int ed_add(ed_ctx *k, ed_point *r, const ed_point *q1, const ed_point *q2)
{
    BN_CTX *bn = k->bn;
    const BIGNUM *p = k->p;
    return BN_mod_sub(k->a, q1->y, q1->x, p, bn) && BN_mod_sub(k->tmp, q2->y, q2->x, p, bn) &&
           BN_mod_mul(k->a, k->a, k->tmp, p, bn) &&                          /* A */
           BN_mod_add(k->b, q1->y, q1->x, p, bn) && BN_mod_add(k->tmp, q2->y, q2->x, p, bn) &&
           BN_mod_mul(k->b, k->b, k->tmp, p, bn) &&                          /* B */
           BN_mod_mul(k->c, q1->t, q2->t, p, bn) && BN_mod_mul(k->c, k->c, k->d2, p, bn) && /* C */
           BN_mod_mul(k->tmp, q1->z, q2->z, p, bn) && BN_mod_add(k->tmp, k->tmp, k->tmp, p, bn) && /* D */
           BN_mod_sub(k->e, k->b, k->a, p, bn) && BN_mod_sub(k->f, k->tmp, k->c, p, bn) &&
           BN_mod_add(k->g, k->tmp, k->c, p, bn) && BN_mod_add(k->h, k->b, k->a, p, bn) &&
           BN_mod_mul(r->x, k->e, k->f, p, bn) && BN_mod_mul(r->y, k->g, k->h, p, bn) &&
           BN_mod_mul(r->t, k->e, k->h, p, bn) && BN_mod_mul(r->z, k->f, k->g, p, bn);
}

/* out = encoding of scalar * B (scalar: 32 bytes little-endian). */
static int ed_base_mul(ed_ctx *k, const unsigned char scalar[32], unsigned char out[32])
{
    static const char *bx = "216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A";
    static const char *by = "6666666666666666666666666666666666666666666666666666666666666658";
    ed_point r, base;
    BIGNUM *bnx = NULL, *bny = NULL, *zi = BN_new();
    unsigned char be[32];
    int i, ok = ed_point_init(&r) && ed_point_init(&base) && zi != NULL;

    ok = ok && BN_hex2bn(&bnx, bx) && BN_hex2bn(&bny, by) && BN_copy(base.x, bnx) &&
         BN_copy(base.y, bny) && BN_one(base.z) && BN_mod_mul(base.t, bnx, bny, k->p, k->bn) &&
         BN_set_word(r.x, 0) && BN_one(r.y) && BN_one(r.z) && BN_set_word(r.t, 0);
    /* double-and-add from the top bit */
    for (i = 255; ok && i >= 0; i--) {
        ok = ed_add(k, &r, &r, &r);
        if (ok && (scalar[i / 8] >> (i % 8)) & 1)
            ok = ed_add(k, &r, &r, &base);
    }
    ok = ok && BN_mod_inverse(zi, r.z, k->p, k->bn) != NULL &&
         BN_mod_mul(r.x, r.x, zi, k->p, k->bn) && BN_mod_mul(r.y, r.y, zi, k->p, k->bn) &&
         BN_bn2binpad(r.y, be, 32) == 32;
    if (ok) {
        for (i = 0; i < 32; i++)
            out[i] = be[31 - i];
        if (BN_is_odd(r.x))
            out[31] |= 0x80;
    }
    BN_free(bnx);
    BN_free(bny);
    BN_free(zi);
    ed_point_free(&r);
    ed_point_free(&base);
    return ok;
}

/* v = little-endian bytes mod L */
static int ed_reduce(ed_ctx *k, BIGNUM *v, const unsigned char *le, size_t n)
{
    unsigned char be[64];
    size_t i;
    for (i = 0; i < n; i++)
        be[i] = le[n - 1 - i];
    return BN_bin2bn(be, (int)n, v) != NULL && BN_nnmod(v, v, k->l, k->bn);
}

int fsdb_codec_ed25519(const char *pw, size_t pwlen, const unsigned char *msg, size_t mlen,
                       unsigned char out[64])
{
    unsigned char az[64], nonce[64], hram[64], pub[32], be[32];
    ed_ctx k;
    BIGNUM *r = BN_new(), *h = BN_new(), *a = BN_new(), *d = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned len;
    int i, ok;

    memset(&k, 0, sizeof k);
    k.bn = BN_CTX_new();
    k.p = BN_new();
    k.d2 = BN_new();
    k.l = BN_new();
    k.a = BN_new(); k.b = BN_new(); k.c = BN_new(); k.e = BN_new();
    k.f = BN_new(); k.g = BN_new(); k.h = BN_new(); k.tmp = BN_new();
    ok = k.bn && k.p && k.d2 && k.l && k.a && k.b && k.c && k.e && k.f && k.g && k.h && k.tmp &&
         r && h && a && md;
    /* p = 2^255 - 19; d = -121665 / 121666; L = 2^252 + 27742317777372353535851937790883648493 */
    ok = ok && BN_hex2bn(&k.p, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED") &&
         BN_hex2bn(&k.l, "1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED") &&
         BN_hex2bn(&d, "52036CEE2B6FFE738CC740797779E89800700A4D4141D8AB75EB4DCA135978A3") &&
         BN_mod_add(k.d2, d, d, k.p, k.bn);
    /* az = SHA-512(password), clamped: the secret scalar and the nonce key */
    ok = ok && digest("SHA512", pw, pwlen, NULL, 0, az) == 64;
    if (ok) {
        az[0] &= 248;
        az[31] &= 63;
        az[31] |= 64;
    }
    ok = ok && ed_base_mul(&k, az, pub);
    /* r = SHA-512(az[32..64] || M) mod L; R = r * B */
    ok = ok && digest("SHA512", az + 32, 32, msg, mlen, nonce) == 64 &&
         ed_reduce(&k, r, nonce, 64) && BN_bn2binpad(r, be, 32) == 32;
    if (ok)
        for (i = 0; i < 32; i++)
            nonce[i] = be[31 - i];
    ok = ok && ed_base_mul(&k, nonce, out);
    /* h = SHA-512(R || A || M) mod L; S = (r + h * a) mod L */
    ok = ok && EVP_DigestInit_ex(md, EVP_get_digestbyname("SHA512"), NULL) == 1 &&
         EVP_DigestUpdate(md, out, 32) == 1 && EVP_DigestUpdate(md, pub, 32) == 1 &&
         EVP_DigestUpdate(md, msg, mlen) == 1 && EVP_DigestFinal_ex(md, hram, &len) == 1 &&
         ed_reduce(&k, h, hram, 64) && ed_reduce(&k, a, az, 32) &&
         BN_mod_mul(h, h, a, k.l, k.bn) && BN_mod_add(h, h, r, k.l, k.bn) &&
         BN_bn2binpad(h, be, 32) == 32;
    if (ok)
        for (i = 0; i < 32; i++)
            out[32 + i] = be[31 - i];
    memset(az, 0, sizeof az);
    memset(nonce, 0, sizeof nonce);
    EVP_MD_CTX_free(md);
    BN_clear_free(r);
    BN_free(h);
    BN_clear_free(a);
    BN_free(d);
    BN_free(k.p); BN_free(k.d2); BN_free(k.l);
    BN_clear_free(k.a); BN_clear_free(k.b); BN_clear_free(k.c); BN_clear_free(k.e);
    BN_clear_free(k.f); BN_clear_free(k.g); BN_clear_free(k.h); BN_clear_free(k.tmp);
    BN_CTX_free(k.bn);
    return ok ? 64 : -1;
}

int fsdb_codec_parse_auth_switch(const unsigned char *p, size_t n, char plugin[64],
                                 fsdb_slice *data, fsdb_error *err)
{
    rd r = {p, p + n, 0};
    if (rd_int(&r, 1) != FSDB_PKT_EOF || r.bad)
        return malformed(err, "auth switch");
    rd_cstr(&r, plugin, 64);
    if (r.bad)
        return malformed(err, "auth switch");
    data->p = r.p;
    data->n = (size_t)(r.end - r.p);
    if (data->n > 0 && data->p[data->n - 1] == 0)
        data->n--;
    return 0;
}

/* ---- replies ---- */

int fsdb_codec_is_eof(const unsigned char *p, size_t n)
{
    return n > 0 && n < 9 && p[0] == FSDB_PKT_EOF;
}

int fsdb_codec_plain_gtid(const char *s, size_t len)
{
    size_t i, dashes = 0;
    if (s == NULL || len == 0 || len > 64 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '-') {
            if (s[i - 1] == '-')
                return 0;
            dashes++;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return dashes == 2;
}

/* The value of last_gtid in the session state block that ends an OK
 * packet (r after its warning count): the info string, then, with
 * SERVER_SESSION_STATE_CHANGED, one length-encoded block of entries
 * (type byte, length-encoded data). For type 0 (system variables) the
 * data is a length-encoded name and value. Other types and variables are
 * skipped; anything malformed means no GTID, and the last one wins, as
 * Connector/C's list gives it to lconn.c. */
static fsdb_slice tracked_gtid(rd *r, unsigned status)
{
    fsdb_slice none = {NULL, 0}, found = {NULL, 0};
    rd block;
    size_t len;

    if (r->p == r->end || !(status & FSDB_SERVER_SESSION_STATE_CHANGED))
        return none;
    (void)rd_lenenc_str(r, &len, NULL); /* info */
    block.p = rd_lenenc_str(r, &len, NULL);
    if (r->bad)
        return none;
    block.end = block.p + len;
    block.bad = 0;
    while (block.p < block.end) {
        unsigned type = (unsigned)rd_int(&block, 1);
        const unsigned char *data = rd_lenenc_str(&block, &len, NULL);
        rd entry;
        const unsigned char *name, *value;
        size_t nlen, vlen;
        if (block.bad)
            return none;
        if (type != 0) /* SESSION_TRACK_SYSTEM_VARIABLES */
            continue;
        entry.p = data;
        entry.end = data + len;
        entry.bad = 0;
        name = rd_lenenc_str(&entry, &nlen, NULL);
        value = rd_lenenc_str(&entry, &vlen, NULL);
        if (entry.bad)
            return none;
        if (nlen == 9 && memcmp(name, "last_gtid", 9) == 0) {
            found.p = value;
            found.n = vlen;
        }
    }
    if (found.p == NULL || !fsdb_codec_plain_gtid((const char *)found.p, found.n))
        return none;
    return found;
}

int fsdb_codec_parse_ok(const unsigned char *p, size_t n, fsdb_ok *ok, fsdb_error *err)
{
    rd r = {p, p + n, 0};
    unsigned head = (unsigned)rd_int(&r, 1);
    ok->gtid.p = NULL;
    ok->gtid.n = 0;
    if (r.bad || (head != FSDB_PKT_OK && head != FSDB_PKT_EOF))
        return malformed(err, "OK");
    ok->affected = rd_lenenc(&r, NULL);
    ok->insert_id = rd_lenenc(&r, NULL);
    ok->status = (unsigned)rd_int(&r, 2);
    ok->warnings = (unsigned)rd_int(&r, 2);
    if (r.bad)
        return malformed(err, "OK");
    /* The rest never fails the OK: a broken tracker is only no GTID. */
    ok->gtid = tracked_gtid(&r, ok->status);
    return 0;
}

int fsdb_codec_parse_eof(const unsigned char *p, size_t n, fsdb_ok *ok, fsdb_error *err)
{
    rd r = {p, p + n, 0};
    if (!fsdb_codec_is_eof(p, n))
        return malformed(err, "EOF");
    rd_int(&r, 1);
    ok->affected = ok->insert_id = 0;
    ok->gtid.p = NULL;
    ok->gtid.n = 0;
    ok->warnings = (unsigned)rd_int(&r, 2);
    ok->status = (unsigned)rd_int(&r, 2);
    if (r.bad)
        return malformed(err, "EOF");
    return 0;
}

void fsdb_codec_parse_err(const unsigned char *p, size_t n, fsdb_error *err)
{
    rd r = {p, p + n, 0};
    unsigned code;
    char state[6] = "HY000";
    size_t mlen;

    if (rd_int(&r, 1) != FSDB_PKT_ERR) {
        malformed(err, "ERR");
        return;
    }
    code = (unsigned)rd_int(&r, 2);
    if (r.bad || code == 0) { /* an error without a number is no error reply */
        malformed(err, "ERR");
        return;
    }
    if (r.p < r.end && *r.p == '#' && r.end - r.p >= 6) {
        memcpy(state, r.p + 1, 5);
        r.p += 6;
    }
    mlen = (size_t)(r.end - r.p);
    if (mlen > 512)
        mlen = 512;
    /* The same words as the libmariadb path's mysql_error(). */
    fsdb_error_set(err, code, state, "%.*s", (int)mlen, (const char *)r.p);
}

int fsdb_codec_parse_count(const unsigned char *p, size_t n, unsigned long long *v,
                           fsdb_error *err)
{
    rd r = {p, p + n, 0};
    *v = rd_lenenc(&r, NULL);
    if (r.bad || r.p != r.end || *v == 0 || *v > 4096)
        return malformed(err, "column count");
    return 0;
}

int fsdb_codec_parse_coldef(const unsigned char *p, size_t n, fsdb_coldef *c, fsdb_error *err)
{
    rd r = {p, p + n, 0};
    size_t len, i;
    const unsigned char *name = NULL;

    memset(c, 0, sizeof *c);
    /* catalog, schema, table, org_table, name, org_name */
    for (i = 0; i < 6; i++) {
        const unsigned char *s = rd_lenenc_str(&r, &len, NULL);
        if (i == 4) {
            name = s;
            c->name_len = len;
        }
    }
    if (rd_lenenc(&r, NULL) < 0x0c && !r.bad)
        r.bad = 1; /* the fixed part's length */
    c->charset = (unsigned)rd_int(&r, 2);
    c->length = (unsigned long)rd_int(&r, 4);
    c->type = (unsigned)rd_int(&r, 1);
    c->flags = (unsigned)rd_int(&r, 2);
    c->decimals = (unsigned)rd_int(&r, 1);
    if (r.bad)
        return malformed(err, "column definition");
    if ((c->name = malloc(c->name_len + 1)) == NULL) {
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory reading a result");
        return -1;
    }
    if (c->name_len)
        memcpy(c->name, name, c->name_len);
    c->name[c->name_len] = 0;
    return 0;
}

void fsdb_coldef_free(fsdb_coldef *c)
{
    free(c->name);
    c->name = NULL;
}

int fsdb_codec_parse_prepare_ok(const unsigned char *p, size_t n, fsdb_prepare_ok *o,
                                fsdb_error *err)
{
    rd r = {p, p + n, 0};
    if (rd_int(&r, 1) != FSDB_PKT_OK)
        return malformed(err, "prepare OK");
    o->stmt_id = (unsigned long)rd_int(&r, 4);
    o->ncols = (unsigned)rd_int(&r, 2);
    o->nparams = (unsigned)rd_int(&r, 2);
    rd_int(&r, 1);
    o->warnings = r.p < r.end ? (unsigned)rd_int(&r, 2) : 0;
    if (r.bad || o->ncols > 4096)
        return malformed(err, "prepare OK");
    return 0;
}

int fsdb_codec_text_row(const unsigned char *p, size_t n, unsigned ncols, fsdb_slice *cells,
                        fsdb_error *err)
{
    rd r = {p, p + n, 0};
    unsigned i;
    for (i = 0; i < ncols; i++) {
        int is_null;
        cells[i].p = rd_lenenc_str(&r, &cells[i].n, &is_null);
        if (r.bad)
            return malformed(err, "text row");
        if (is_null)
            cells[i].p = NULL;
        else if (cells[i].p == NULL)
            cells[i].p = p; /* an empty value, not NULL */
    }
    if (r.p != r.end)
        return malformed(err, "text row has more columns than announced");
    return 0;
}

static void rd_time(rd *r, int date_part, fsdb_colbuf *col)
{
    unsigned len = (unsigned)rd_int(r, 1);
    MYSQL_TIME *t = &col->v.t;
    memset(t, 0, sizeof *t);
    if (date_part) {
        if (len != 0 && len != 4 && len != 7 && len != 11) {
            r->bad = 1;
            return;
        }
        if (len >= 4) {
            t->year = (unsigned)rd_int(r, 2);
            t->month = (unsigned)rd_int(r, 1);
            t->day = (unsigned)rd_int(r, 1);
        }
        if (len >= 7) {
            t->hour = (unsigned)rd_int(r, 1);
            t->minute = (unsigned)rd_int(r, 1);
            t->second = (unsigned)rd_int(r, 1);
        }
        if (len == 11)
            t->second_part = (unsigned long)rd_int(r, 4);
    } else {
        if (len != 0 && len != 8 && len != 12) {
            r->bad = 1;
            return;
        }
        if (len >= 8) {
            t->neg = rd_int(r, 1) != 0;
            t->day = (unsigned)rd_int(r, 4);
            t->hour = (unsigned)rd_int(r, 1);
            t->minute = (unsigned)rd_int(r, 1);
            t->second = (unsigned)rd_int(r, 1);
            /* result.c prints days * 24 + hours: keep it in range. */
            if (t->day > 100000)
                r->bad = 1;
        }
        if (len == 12)
            t->second_part = (unsigned long)rd_int(r, 4);
    }
}

static long long sign_extend(unsigned long long v, unsigned bytes)
{
    unsigned shift = 64 - 8 * bytes;
    return (long long)(v << shift) >> shift;
}

int fsdb_codec_binary_row(const unsigned char *p, size_t n, const fsdb_coldef *defs,
                          unsigned ncols, fsdb_colbuf *cols, fsdb_error *err)
{
    rd r = {p, p + n, 0};
    const unsigned char *nulls;
    unsigned i;

    if (rd_int(&r, 1) != 0x00)
        return malformed(err, "binary row");
    nulls = rd_bytes(&r, (ncols + 7 + 2) / 8);
    if (r.bad)
        return malformed(err, "binary row");
    for (i = 0; i < ncols; i++) {
        fsdb_colbuf *col = &cols[i];
        unsigned bit = i + 2;
        int is_unsigned = (defs[i].flags & UNSIGNED_FLAG) != 0;
        col->is_null = (nulls[bit / 8] >> (bit % 8)) & 1;
        if (col->is_null)
            continue;
        switch (defs[i].type) {
        case MYSQL_TYPE_TINY:
            col->v.i = is_unsigned ? (long long)rd_int(&r, 1) : sign_extend(rd_int(&r, 1), 1);
            break;
        case MYSQL_TYPE_SHORT:
        case MYSQL_TYPE_YEAR:
            col->v.i = is_unsigned ? (long long)rd_int(&r, 2) : sign_extend(rd_int(&r, 2), 2);
            break;
        case MYSQL_TYPE_LONG:
        case MYSQL_TYPE_INT24:
            col->v.i = is_unsigned ? (long long)rd_int(&r, 4) : sign_extend(rd_int(&r, 4), 4);
            break;
        case MYSQL_TYPE_LONGLONG:
            col->v.i = (long long)rd_int(&r, 8);
            break;
        case MYSQL_TYPE_FLOAT: {
            unsigned long long v = rd_int(&r, 4);
            unsigned u = (unsigned)v;
            memcpy(&col->v.f, &u, 4);
            break;
        }
        case MYSQL_TYPE_DOUBLE: {
            unsigned long long v = rd_int(&r, 8);
            memcpy(&col->v.d, &v, 8);
            break;
        }
        case MYSQL_TYPE_DATE:
        case MYSQL_TYPE_NEWDATE:
        case MYSQL_TYPE_DATETIME:
        case MYSQL_TYPE_TIMESTAMP:
            rd_time(&r, 1, col);
            break;
        case MYSQL_TYPE_TIME:
            rd_time(&r, 0, col);
            break;
        case MYSQL_TYPE_NULL:
            col->is_null = 1;
            break;
        case MYSQL_TYPE_DECIMAL:
        case MYSQL_TYPE_NEWDECIMAL:
        case MYSQL_TYPE_VARCHAR:
        case MYSQL_TYPE_BIT:
        case MYSQL_TYPE_JSON:
        case MYSQL_TYPE_ENUM:
        case MYSQL_TYPE_SET:
        case MYSQL_TYPE_TINY_BLOB:
        case MYSQL_TYPE_MEDIUM_BLOB:
        case MYSQL_TYPE_LONG_BLOB:
        case MYSQL_TYPE_BLOB:
        case MYSQL_TYPE_VAR_STRING:
        case MYSQL_TYPE_STRING:
        case MYSQL_TYPE_GEOMETRY: {
            size_t len;
            const unsigned char *s = rd_lenenc_str(&r, &len, NULL);
            col->buf = (char *)(s ? s : p);
            col->length = (unsigned long)len;
            break;
        }
        default:
            fsdb_error_set(err, MALFORMED, "HY000",
                           "malformed packet from the server (unknown column type %u)",
                           defs[i].type);
            return -1;
        }
        if (r.bad)
            return malformed(err, "binary row");
    }
    if (r.p != r.end)
        return malformed(err, "binary row has more data than its columns");
    return 0;
}

/* ---- commands ---- */

int fsdb_codec_command(fsdb_wbuf *out, unsigned char cmd, const void *arg, size_t n)
{
    w_int(out, cmd, 1);
    w_bytes(out, arg, n);
    return w_done(out);
}

int fsdb_codec_stmt_execute(fsdb_wbuf *out, unsigned long stmt_id, const fsdb_param *params,
                            unsigned n)
{
    unsigned i;
    w_int(out, FSDB_COM_STMT_EXECUTE, 1);
    w_int(out, stmt_id, 4);
    w_int(out, 0, 1); /* no cursor */
    w_int(out, 1, 4); /* iteration count */
    if (n > 0) {
        size_t nb = (n + 7) / 8, at;
        unsigned char *map;
        at = out->len;
        for (i = 0; i < nb; i++)
            w_int(out, 0, 1);
        if (out->oom)
            return -1;
        map = out->p + at;
        for (i = 0; i < n; i++)
            if (params[i].type == FSDB_P_NULL)
                map[i / 8] |= (unsigned char)(1u << (i % 8));
        w_int(out, 1, 1); /* types follow */
        for (i = 0; i < n; i++) {
            switch (params[i].type) {
            case FSDB_P_INT: w_int(out, MYSQL_TYPE_LONGLONG, 2); break;
            case FSDB_P_DOUBLE: w_int(out, MYSQL_TYPE_DOUBLE, 2); break;
            case FSDB_P_STRING: w_int(out, MYSQL_TYPE_STRING, 2); break;
            default: w_int(out, MYSQL_TYPE_NULL, 2); break;
            }
        }
        for (i = 0; i < n; i++) {
            switch (params[i].type) {
            case FSDB_P_INT:
                w_int(out, (unsigned long long)params[i].i, 8);
                break;
            case FSDB_P_DOUBLE: {
                unsigned long long v;
                memcpy(&v, &params[i].d, 8);
                w_int(out, v, 8);
                break;
            }
            case FSDB_P_STRING:
                w_lenenc(out, params[i].len);
                w_bytes(out, params[i].s, params[i].len);
                break;
            default:
                break;
            }
        }
    }
    return w_done(out);
}
