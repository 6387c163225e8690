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
 *   - copy and free are exact (ASan's leak check sees the rest).
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

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

static char *render(const fsdb_uri *u)
{
    size_t need = fsdb_uri_render(u, NULL, 0), cut;
    char *buf = malloc(need + 1), small[8];
    CHECK(buf != NULL);
    CHECK(fsdb_uri_render(u, buf, need + 1) == need);
    CHECK(strlen(buf) == need);
    /* A short buffer: a terminated prefix, the same length reported. */
    cut = need < sizeof small ? need : sizeof small - 1;
    CHECK(fsdb_uri_render(u, small, sizeof small) == need);
    CHECK(strlen(small) == cut && memcmp(small, buf, cut) == 0);
    return buf;
}

static int bare_name(const char *s)
{
    static const char word[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && strspn(s, word) == n;
}

static void check_parsed(const fsdb_uri *u)
{
    fsdb_uri copy, bare, again;
    fsdb_error err;
    char *full, *plain, *mask;
    size_t skip;

    CHECK(u->scheme != NULL && u->host != NULL && u->charset != NULL);
    CHECK(u->port >= 1 && u->port <= 65535);
    /* Both go into SET NAMES as they are: bare words only. */
    CHECK(bare_name(u->charset));
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

    /* A deep copy renders the same. */
    CHECK(fsdb_uri_copy(&copy, u) == 0);
    plain = render(&copy);
    CHECK(strcmp(plain, full) == 0);
    free(plain);
    fsdb_uri_free(&copy);
    fsdb_uri_free(&copy); /* idempotent */
    free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
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
    free(text);
    return 0;
}
