/*
 * test_scrub.c — fsdb_error_scrub: whole secrets, percent-encoded ones and
 * pieces cut short by a full error buffer.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "error.h"


static void expect(const char *what, const fsdb_error *e, const char *want)
{
    if (strcmp(e->message, want) == 0) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s\n  got:  %s\n  want: %s\n", what, e->message, want);
}

static void scrub_text(const char *what, const char *text, const char *secret, const char *want)
{
    fsdb_error e;

    fsdb_error_clear(&e);
    snprintf(e.message, sizeof e.message, "%s", text);
    fsdb_error_scrub(&e, secret);
    expect(what, &e, want);
}

/* Nothing of secret, not even a piece of 3 bytes, in text. */
static void no_piece(const char *what, const char *text, const char *secret)
{
    size_t i, n = strlen(secret);
    char piece[4];

    for (i = 0; i + 3 <= n; i++) {
        memcpy(piece, secret + i, 3);
        piece[3] = '\0';
        if (strstr(text, piece) != NULL) {
            failed++;
            printf("FAIL %s: '%s' shows in: %s\n", what, piece, text);
            return;
        }
    }
    passed++;
}

/* A Connector/C message cut at its 511th byte right inside the secret,
 * after "fsdb: ", with or without a hint after it. */
static void connector_cut(size_t shown, int hint)
{
    const char *secret = "Zq'\"\\@:/?#%&=;Kx";
    char raw[600], what[64];
    size_t lead = 511 - shown;
    fsdb_error e;

    memset(raw, 'a', lead);
    memcpy(raw + lead, secret, shown);
    raw[511] = '\0';
    fsdb_error_set(&e, 1064, "42000", "%s", raw);
    if (hint) { /* as fsdb_error_add_hint appends one */
        size_t len = strlen(e.message);
        snprintf(e.message + len, sizeof e.message - len, "; hint: look");
    }
    fsdb_error_scrub(&e, secret);
    snprintf(what, sizeof what, "connector cut after %zu bytes%s", shown, hint ? " + hint" : "");
    no_piece(what, e.message, secret);
    /* Not a byte of it either: the message ends in the mask. */
    if (strstr(e.message, hint ? "aaa***; hint: look" : "aaa***") == NULL) {
        failed++;
        printf("FAIL %s: no mask at the cut: ...%s\n", what, e.message + 500);
    } else {
        passed++;
    }
}

int main(void)
{
    size_t k;
    fsdb_error e;

    scrub_text("whole", "fsdb: bad 'hunter22' here", "hunter22", "fsdb: bad '***' here");
    scrub_text("twice", "fsdb: hunter22hunter22", "hunter22", "fsdb: ******");
    scrub_text("encoded", "fsdb: x p%40ss%3Aw%2frd y", "p@ss:w/rd", "fsdb: x *** y");
    scrub_text("encoded where it need not be", "fsdb: %70%41ss", "pAss", "fsdb: ***");
    scrub_text("own mask", "fsdb: ab*** ab***", "ab***", "fsdb: *** ***");
    scrub_text("empty secret", "fsdb: x", "", "fsdb: x");
    scrub_text("NULL secret", "fsdb: x", NULL, "fsdb: x");
    scrub_text("cut at the end", "fsdb: near 'hunt", "hunter22", "fsdb: near '***");
    scrub_text("cut before a hint", "fsdb: near 'hunt; hint: x", "hunter22",
               "fsdb: near '***; hint: x");
    scrub_text("cut by an ellipsis", "fsdb: value 'hunte...' is bad", "hunter22",
               "fsdb: value '***...' is bad");
    scrub_text("encoded, cut inside an escape", "fsdb: 'p%40ss%3", "p@ss:w", "fsdb: '***");
    scrub_text("encoded, cut after '%'", "fsdb: 'p%40ss%", "p@ss:w", "fsdb: '***");
    scrub_text("two bytes at an ordinary end stay", "fsdb: at hu", "hunter22", "fsdb: at hu");
    scrub_text("not the start of the secret", "fsdb: near 'nter", "hunter22", "fsdb: near 'nter");
    scrub_text("never fsdb's prefix", "fsdb: x", "fsdb: x and more", "fsdb: x");
    scrub_text("longest piece", "fsdb: aaaa", "aaaaaaaa", "fsdb: ***");

    for (k = 1; k <= 16; k++) {
        connector_cut(k, 0);
        connector_cut(k, 1);
    }

    /* fsdb's own buffer full: a piece of any length goes. */
    memset(e.message, 'b', sizeof e.message);
    memcpy(e.message, "fsdb: ", 6);
    e.message[sizeof e.message - 2] = 'Z';
    e.message[sizeof e.message - 1] = '\0';
    fsdb_error_scrub(&e, "Zx9");
    k = strlen(e.message);
    if (k > 4 && strcmp(e.message + k - 4, "b***") == 0) {
        passed++;
    } else {
        failed++;
        printf("FAIL full buffer: ends with %s\n", e.message + (k > 8 ? k - 8 : 0));
    }
    /* ... but not when the buffer has room. */
    scrub_text("one byte at an ordinary end stays", "fsdb: bbZ", "Zx9", "fsdb: bbZ");

    return check_report();
}
