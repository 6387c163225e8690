/*
 * fuzz_uri.c — libFuzzer target for the URL parser and renderer (uri.c).
 *
 * Besides what the sanitizers catch (overflows, leaks, undefined
 * behaviour), every input is held to uri.h's promises:
 *   - an error is one "fsdb: " line with code FSDB_ERR_URL (or NOMEM) and
 *     leaves the output empty;
 *   - a parsed URL renders to exactly the length fsdb_uri_render reports,
 *     and a short buffer gets a NUL-terminated prefix of it;
 *   - the password never shows: the rendering differs from the rendering
 *     of the same URL without a password only by the mask ":***" (and the
 *     '@' when there is no user name either);
 *   - the rendering parses again, to the same fields (password "***");
 *   - what the URL leaves out stays out (NULL, 0) until fsdb_uri_fill fills
 *     it; the canonical rendering of a filled URL parses and fills back
 *     to the same fields;
 *   - copy and free are exact (ASan's leak check sees the rest);
 *   - no error and no rendering shows the password (see check_secret).
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

/* fsdb.options' values (lua/fsdb/options.lua). */
static const fsdb_uri_defaults D = { "localhost", 3306, "utf8mb4", 10, 300, 60 };

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_uri: broken promise: %s (line %d)\n", #cond,  \
                    __LINE__);                                                   \
            abort();                                                             \
        }                                                                        \
    } while (0)

static int same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void check_error(const fsdb_error *err, const fsdb_uri *u)
{
    static const fsdb_uri empty;
    CHECK(err->code == FSDB_ERR_URL || err->code == FSDB_ERR_NOMEM);
    CHECK(strncmp(err->message, "fsdb: ", 6) == 0);
    CHECK(strchr(err->message, '\n') == NULL && strchr(err->message, '\r') == NULL);
    CHECK(memcmp(u, &empty, sizeof *u) == 0);
}

static char *render_with(const fsdb_uri *u, const fsdb_uri_defaults *d)
{
    size_t need = fsdb_uri_render(u, d, NULL, 0), cut;
    char *buf = malloc(need + 1), small[8];
    CHECK(buf != NULL);
    CHECK(fsdb_uri_render(u, d, buf, need + 1) == need);
    CHECK(strlen(buf) == need);
    /* A short buffer: a terminated prefix, the same length reported. */
    cut = need < sizeof small ? need : sizeof small - 1;
    CHECK(fsdb_uri_render(u, d, small, sizeof small) == need);
    CHECK(strlen(small) == cut && memcmp(small, buf, cut) == 0);
    return buf;
}

/* What the URL says, nothing more. */
static char *render(const fsdb_uri *u)
{
    return render_with(u, NULL);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int bare_name(const char *s)
{
    static const char word[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && strspn(s, word) == n;
}

/* Filled with D, every part is there; its canonical rendering parses and
 * fills back to the same. */
static void check_filled(const fsdb_uri *u)
{
    fsdb_uri f, again;
    fsdb_error err;
    unsigned i, pf, pa;
    char *canon;

    CHECK(fsdb_uri_copy(&f, u) == 0);
    CHECK(fsdb_uri_fill(&f, &D) == 0);
    CHECK(f.host != NULL && f.charset != NULL && f.port >= 1);
    CHECK(f.connect_timeout && f.read_timeout && f.write_timeout);
    canon = render_with(&f, &D);
    CHECK(fsdb_uri_parse(canon, &again, &err) == 0);
    CHECK(fsdb_uri_fill(&again, &D) == 0);
    CHECK(fsdb_uri_host_count(&again) == fsdb_uri_host_count(&f));
    for (i = 0; u->unix_socket == NULL && i < fsdb_uri_host_count(&f); i++) {
        CHECK(same_str(fsdb_uri_host_at(&again, i, &pa), fsdb_uri_host_at(&f, i, &pf)));
        CHECK(pa == pf && pf >= 1);
    }
    CHECK(again.connect_timeout == f.connect_timeout);
    CHECK(again.read_timeout == f.read_timeout);
    CHECK(again.write_timeout == f.write_timeout);
    free(canon);
    fsdb_uri_free(&again);
    fsdb_uri_free(&f);
}

static void check_parsed(const fsdb_uri *u)
{
    fsdb_uri copy, bare, again;
    fsdb_error err;
    char *full, *plain, *mask;
    size_t skip;

    CHECK(u->scheme != NULL);
    CHECK(u->port <= 65535);
    /* Both go into SET NAMES as they are: bare words only. */
    CHECK(u->charset == NULL || bare_name(u->charset));
    CHECK(u->collation == NULL || bare_name(u->collation));

    full = render(u);

    /* The rendering without the password, and with it masked: they may
     * only differ by the mask. */
    CHECK(fsdb_uri_copy(&bare, u) == 0);
    if (bare.password != NULL) {
        free(bare.password);
        bare.password = NULL;
        plain = render(&bare);
        /* With no user name either, the '@' goes too. */
        skip = u->user ? 4 : 5;
        mask = strstr(full, ":***@");
        CHECK(mask != NULL);
        CHECK(strlen(full) == strlen(plain) + skip);
        CHECK(memcmp(full, plain, (size_t)(mask - full)) == 0);
        CHECK(strcmp(mask + skip, plain + (mask - full)) == 0);
        free(plain);
    }
    fsdb_uri_free(&bare);

    /* parse(render(x)) gives x back, with the password masked. */
    CHECK(fsdb_uri_parse(full, &again, &err) == 0);
    CHECK(same_str(again.user, u->user));
    CHECK(same_str(again.password, u->password ? "***" : NULL));
    CHECK(same_str(again.database, u->database));
    CHECK(same_str(again.unix_socket, u->unix_socket));
    if (u->unix_socket == NULL) {
        CHECK(same_str(again.host, u->host));
        CHECK(again.port == u->port);
    }
    CHECK(again.connect_timeout == u->connect_timeout);
    CHECK(again.read_timeout == u->read_timeout);
    CHECK(again.write_timeout == u->write_timeout);
    CHECK(again.ssl_mode == u->ssl_mode);
    CHECK(same_str(again.ssl_ca, u->ssl_ca) && same_str(again.ssl_cert, u->ssl_cert));
    CHECK(same_str(again.ssl_key, u->ssl_key) && same_str(again.ssl_capath, u->ssl_capath));
    CHECK(same_str(again.ssl_cipher, u->ssl_cipher));
    CHECK(again.local_infile == u->local_infile);
    fsdb_uri_free(&again);
    check_filled(u);

    /* A deep copy renders the same. */
    CHECK(fsdb_uri_copy(&copy, u) == 0);
    plain = render(&copy);
    CHECK(strcmp(plain, full) == 0);
    free(plain);
    fsdb_uri_free(&copy);
    fsdb_uri_free(&copy); /* idempotent */
    free(full);
}

/* ------------------------------------------------------------------ */
/* The password never shows                                           */

/* Where the password is, as the writer of text may have meant it:
 * [*start, *end) of text, or 0 when there is none.
 *   - With an '@' after "scheme://": from the first ':' before the LAST '@'
 *     to that '@' (a raw '/', '?' or '@' in a password makes the URL look
 *     shorter than it is; the parser itself only reads up to the first
 *     '/' or '?').
 *   - With no '@' at all: a host-less "user:secret/db"; from the first ':'
 *     of the authority to its end.
 * The '@' form wins when both apply. */
static int find_secret(const char *text, size_t *start, size_t *end)
{
    const char *rest = strstr(text, "://"), *at, *colon, *auth_end;

    if (rest == NULL)
        return 0;
    rest += 3;
    at = strrchr(rest, '@');
    if (at != NULL) {
        colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon == NULL)
            return 0;
    } else {
        const char *from = rest;

        auth_end = rest + strcspn(rest, "/?");
        /* "[::1]:x": the port's ':' follows the bracket. */
        if (*rest == '[' && (from = memchr(rest, ']', (size_t)(auth_end - rest))) == NULL)
            return 0;
        colon = memchr(from, ':', (size_t)(auth_end - from));
        if (colon == NULL)
            return 0;
        at = auth_end;
        /* Digits there are a port, by the grammar. */
        if (colon + 1 < at && strspn(colon + 1, "0123456789") == (size_t)(at - colon - 1))
            return 0;
    }
    *start = (size_t)(colon + 1 - text);
    *end = (size_t)(at - text);
    return *end > *start;
}

/* Letters and digits of the secret, blurred: a-f -> a, g-z -> z (and upper
 * case alike), 1-9 -> 1. Hex digits stay hex digits and a zero stays zero,
 * so percent-escapes stay valid (or invalid) and a port stays a number. */
static char blur(char c)
{
    if (c >= 'a' && c <= 'f') return 'a';
    if (c >= 'g' && c <= 'z') return 'z';
    if (c >= 'A' && c <= 'F') return 'A';
    if (c >= 'G' && c <= 'Z') return 'Z';
    if (c >= '1' && c <= '9') return '1';
    return c;
}

/* Everything the parser says about text, as one string: the error, or the
 * rendering users see (canonical, with fsdb.options' defaults). Caller
 * frees. */
static char *outcome(const char *text)
{
    fsdb_uri u;
    fsdb_error err;
    char *out;

    memset(&err, 0, sizeof err);
    if (fsdb_uri_parse(text, &u, &err) == 0) {
        out = render_with(&u, &D);
        fsdb_uri_free(&u);
        return out;
    }
    out = strdup(err.message);
    CHECK(out != NULL);
    return out;
}

/* Percent-decodes s[0..n) leniently (a bad escape stays as it is). */
static char *decoded(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    size_t i, k = 0;

    CHECK(d != NULL);
    for (i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] == '%' && n - i >= 3 && (hi = hex_digit(s[i + 1])) >= 0
            && (lo = hex_digit(s[i + 2])) >= 0) {
            d[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[k++] = s[i];
        }
    }
    d[k] = '\0';
    return d;
}

/* The property: no output shows the secret, raw or decoded. A short
 * secret can occur in fsdb's own words by chance ("port" in "invalid
 * port"), so the outcome of text is compared with the outcome of text with
 * the secret blurred: the secret may show in the first only if it shows in
 * the second too, that is when it comes from fsdb's wording or from another
 * part of the URL, not from the secret's own bytes. Secrets of one or two
 * bytes are not checked at all (they occur everywhere). */
static void check_secret(const char *text, const char *out)
{
    size_t start, end, i, len = strlen(text);
    char *blurred, *other, *raw, *plain;

    if (!find_secret(text, &start, &end) || end - start < 3)
        return;
    raw = strndup(text + start, end - start);
    CHECK(raw != NULL);
    plain = decoded(raw, strlen(raw));
    if (strstr(out, raw) == NULL && (strlen(plain) < 3 || strstr(out, plain) == NULL)) {
        free(raw);
        free(plain);
        return;
    }
    blurred = malloc(len + 1);
    CHECK(blurred != NULL);
    memcpy(blurred, text, len + 1);
    for (i = start; i < end; i++)
        blurred[i] = blur(blurred[i]);
    other = outcome(blurred);
    if (strstr(out, raw) != NULL && strstr(other, raw) == NULL) {
        fprintf(stderr, "fuzz_uri: the secret '%s' shows in: %s\n", raw, out);
        CHECK(!"an output shows the password");
    }
    if (strlen(plain) >= 3 && strstr(out, plain) != NULL && strstr(other, plain) == NULL) {
        fprintf(stderr, "fuzz_uri: the decoded secret '%s' shows in: %s\n", plain, out);
        CHECK(!"an output shows the decoded password");
    }
    free(other);
    free(blurred);
    free(raw);
    free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *out;
    fsdb_uri u;
    fsdb_error err;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    memset(&err, 0, sizeof err);
    if (fsdb_uri_parse(text, &u, &err) == 0) {
        check_parsed(&u);
        fsdb_uri_free(&u);
    } else {
        check_error(&err, &u);
    }
    out = outcome(text);
    check_secret(text, out);
    free(out);
    free(text);
    return 0;
}
