/*
 * sqlscan.c — placeholder scanner; see sqlscan.h for the contract.
 */
#include "sqlscan.h"

#include <stdlib.h>
#include <string.h>

static int is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

static int is_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Index just past a quoted run that starts at i (sql[i] is the quote). */
static size_t skip_quoted(const char *sql, size_t len, size_t i, int no_backslash)
{
    char q = sql[i++];
    while (i < len) {
        if (sql[i] == '\\' && q != '`' && !no_backslash) {
            i += 2;
        } else if (sql[i] == q) {
            if (i + 1 < len && sql[i + 1] == q)
                i += 2; /* doubled quote stays inside */
            else
                return i + 1;
        } else {
            i++;
        }
    }
    return len;
}

/* If a comment starts at i, returns the index past it; otherwise i. */
static size_t skip_comment(const char *sql, size_t len, size_t i)
{
    if (sql[i] == '#' ||
        (sql[i] == '-' && i + 1 < len && sql[i + 1] == '-' &&
         (i + 2 >= len || (unsigned char)sql[i + 2] <= ' '))) {
        while (i < len && sql[i] != '\n')
            i++;
        return i;
    }
    if (sql[i] == '/' && i + 1 < len && sql[i + 1] == '*') {
        const char *end;
        i += 2;
        while (i + 1 < len && !(sql[i] == '*' && sql[i + 1] == '/'))
            i++;
        end = (i + 1 < len) ? sql + i + 2 : sql + len;
        return (size_t)(end - sql);
    }
    return i;
}

static int add_name(fsdb_sqlscan *s, const char *name, size_t n, fsdb_error *err)
{
    char **grown = realloc(s->names, (s->nparams + 1) * sizeof *grown);
    char *copy = malloc(n + 1);
    if (grown)
        s->names = grown;
    if (!grown || !copy) {
        free(copy);
        fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory scanning SQL");
        return -1;
    }
    memcpy(copy, name, n);
    copy[n] = '\0';
    s->names[s->nparams] = copy;
    return 0;
}

static int set_style(fsdb_sqlscan *s, int style, fsdb_error *err)
{
    if (s->style != FSDB_SCAN_NONE && s->style != style) {
        fsdb_error_set(err, FSDB_ERR_PARAMS, NULL,
                       "SQL mixes '?' and ':name' placeholders; use one style per statement");
        return -1;
    }
    s->style = style;
    return 0;
}

int fsdb_sqlscan_run(const char *sql, size_t len, int no_backslash, fsdb_sqlscan *s,
                     fsdb_error *err)
{
    size_t i = 0, next, out = 0;
    int after_semicolon = 0;

    memset(s, 0, sizeof *s);
    while (i < len) {
        unsigned char c = (unsigned char)sql[i];

        if (c == '\'' || c == '"' || c == '`') {
            if (after_semicolon)
                s->multi = 1;
            i = skip_quoted(sql, len, i, no_backslash);
            continue;
        }
        if ((next = skip_comment(sql, len, i)) != i) {
            i = next;
            continue;
        }
        if (c == ';') {
            after_semicolon = 1;
        } else if (c > ' ' && after_semicolon) {
            s->multi = 1;
        }
        if (c == '?') {
            if (set_style(s, FSDB_SCAN_POSITIONAL, err) < 0)
                goto fail;
            s->nparams++;
        } else if (c == ':' && i + 1 < len && is_name_start((unsigned char)sql[i + 1]) &&
                   (i == 0 || (!is_word((unsigned char)sql[i - 1]) && sql[i - 1] != ':' &&
                               sql[i - 1] != '\\'))) {
            size_t start = i + 1, end = start;
            while (end < len && is_word((unsigned char)sql[end]))
                end++;
            if (end < len && sql[end] == ':') { /* "a:b:" is not ours */
                i = end;
                continue;
            }
            if (set_style(s, FSDB_SCAN_NAMED, err) < 0 ||
                add_name(s, sql + start, end - start, err) < 0)
                goto fail;
            s->nparams++;
            i = end;
            continue;
        }
        i++;
    }

    if (s->style == FSDB_SCAN_NAMED) {
        /* Second pass: copy the text, turning each :name into '?'. The
         * positions are found again the same way, so both passes agree. */
        unsigned k = 0;
        s->sql = malloc(len + 1);
        if (!s->sql) {
            fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory scanning SQL");
            goto fail;
        }
        i = 0;
        while (i < len) {
            unsigned char c = (unsigned char)sql[i];
            size_t from = i;
            if (c == '\'' || c == '"' || c == '`')
                i = skip_quoted(sql, len, i, no_backslash);
            else if ((next = skip_comment(sql, len, i)) != i)
                i = next;
            else if (k < s->nparams && c == ':' && i + 1 < len &&
                     is_name_start((unsigned char)sql[i + 1]) &&
                     (i == 0 || (!is_word((unsigned char)sql[i - 1]) && sql[i - 1] != ':' &&
                                 sql[i - 1] != '\\'))) {
                size_t end = i + 1;
                while (end < len && is_word((unsigned char)sql[end]))
                    end++;
                if (end < len && sql[end] == ':') {
                    memcpy(s->sql + out, sql + i, end - i);
                    out += end - i;
                    i = end;
                    continue;
                }
                s->sql[out++] = '?';
                k++;
                i = end;
                continue;
            } else
                i++;
            memcpy(s->sql + out, sql + from, i - from);
            out += i - from;
        }
        s->sql[out] = '\0';
        s->sql_len = out;
    }
    return 0;

fail:
    fsdb_sqlscan_free(s);
    return -1;
}

void fsdb_sqlscan_free(fsdb_sqlscan *s)
{
    unsigned i;
    if (s == NULL)
        return;
    if (s->names) {
        for (i = 0; i < s->nparams; i++)
            free(s->names[i]);
        free(s->names);
    }
    free(s->sql);
    memset(s, 0, sizeof *s);
}

/* Index of the next character that is not white space or a comment. */
static size_t skip_blank(const char *sql, size_t len, size_t i)
{
    size_t next;
    while (i < len) {
        if ((unsigned char)sql[i] <= ' ')
            i++;
        else if ((next = skip_comment(sql, len, i)) != i)
            i = next;
        else
            break;
    }
    return i;
}

static int word_is(const char *w, size_t n, const char *upper)
{
    size_t k;
    for (k = 0; k < n; k++) {
        char c = w[k];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (upper[k] == '\0' || c != upper[k])
            return 0;
    }
    return upper[n] == '\0';
}

int fsdb_sqlscan_values_group(const char *sql, size_t len, int no_backslash,
                              size_t *start, size_t *end)
{
    size_t i = skip_blank(sql, len, 0), w;
    unsigned before = 0, inside = 0, after = 0;
    int depth = 0, state = 0; /* 0 before the group, 1 inside, 2 after */

    /* The statement must start with INSERT or REPLACE. */
    for (w = i; w < len && is_word((unsigned char)sql[w]); w++)
        ;
    if (!word_is(sql + i, w - i, "INSERT") && !word_is(sql + i, w - i, "REPLACE"))
        return 0;
    i = w;
    while (i < len) {
        unsigned char c = (unsigned char)sql[i];
        size_t next;
        if (c == '\'' || c == '"' || c == '`') {
            i = skip_quoted(sql, len, i, no_backslash);
            continue;
        }
        if ((next = skip_comment(sql, len, i)) != i) {
            i = next;
            continue;
        }
        if (is_word(c)) {
            for (w = i; w < len && is_word((unsigned char)sql[w]); w++)
                ;
            if (state == 0 && depth == 0 &&
                (word_is(sql + i, w - i, "VALUES") || word_is(sql + i, w - i, "VALUE"))) {
                size_t open = skip_blank(sql, len, w);
                if (open >= len || sql[open] != '(')
                    return 0;
                *start = open;
                state = 1;
                depth = 1;
                i = open + 1;
                continue;
            }
            i = w;
            continue;
        }
        if (c == '?') {
            if (state == 0)
                before++;
            else if (state == 1)
                inside++;
            else
                after++;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            depth--;
            if (state == 1 && depth == 0) {
                size_t more;
                *end = i + 1;
                state = 2;
                /* A second group ("VALUES (?), (?)") is not repeated. */
                more = skip_blank(sql, len, i + 1);
                if (more < len && sql[more] == ',')
                    return 0;
            }
        }
        i++;
    }
    return state == 2 && before == 0 && after == 0 && inside > 0;
}
