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

int fsdb_sqlscan_walk(const char *sql, size_t len, int no_backslash, fsdb_sqlscan_fn found,
                      void *ud, int *multi)
{
    size_t i = 0, next;
    int after_semicolon = 0;

    if (multi)
        *multi = 0;
    while (i < len) {
        unsigned char c = (unsigned char)sql[i];

        if (c == '\'' || c == '"' || c == '`') {
            if (after_semicolon && multi)
                *multi = 1;
            i = skip_quoted(sql, len, i, no_backslash);
            continue;
        }
        if ((next = skip_comment(sql, len, i)) != i) {
            i = next;
            continue;
        }
        if (c == ';') {
            after_semicolon = 1;
        } else if (c > ' ' && after_semicolon && multi) {
            *multi = 1;
        }
        if (c == '?') {
            if (found(ud, i, 1, NULL, 0) < 0)
                return -1;
        } else if (c == ':' && i + 1 < len && is_name_start((unsigned char)sql[i + 1]) &&
                   (i == 0 || (!is_word((unsigned char)sql[i - 1]) && sql[i - 1] != ':' &&
                               sql[i - 1] != '\\'))) {
            size_t end = i + 1;
            while (end < len && is_word((unsigned char)sql[end]))
                end++;
            if (!(end < len && sql[end] == ':') && /* "a:b:" is not ours */
                found(ud, i, end - i, sql + i + 1, end - i - 1) < 0)
                return -1;
            i = end;
            continue;
        }
        i++;
    }
    return 0;
}

int fsdb_sqlscan_plain(const char *sql, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        switch (sql[i]) {
        case '\'': case '"': case '`': case '#': case '-': case '/': case ';': case '?': case ':':
            return 0;
        default:
            break;
        }
    return 1;
}

/* fsdb_sqlscan_run's first pass: style, count and names. */
typedef struct count_state {
    fsdb_sqlscan *s;
    fsdb_error *err;
} count_state;

static int count_one(void *ud, size_t at, size_t n, const char *name, size_t name_len)
{
    count_state *cs = ud;
    (void)at;
    (void)n;
    if (set_style(cs->s, name ? FSDB_SCAN_NAMED : FSDB_SCAN_POSITIONAL, cs->err) < 0)
        return -1;
    if (name && add_name(cs->s, name, name_len, cs->err) < 0)
        return -1;
    cs->s->nparams++;
    return 0;
}

/* Its second pass, for :name: the text with each placeholder as '?'. */
typedef struct rewrite_state {
    const char *sql;
    char *out;
    size_t copied_to, len;
} rewrite_state;

static int rewrite_one(void *ud, size_t at, size_t n, const char *name, size_t name_len)
{
    rewrite_state *rs = ud;
    (void)name;
    (void)name_len;
    memcpy(rs->out + rs->len, rs->sql + rs->copied_to, at - rs->copied_to);
    rs->len += at - rs->copied_to;
    rs->out[rs->len++] = '?';
    rs->copied_to = at + n;
    return 0;
}

int fsdb_sqlscan_run(const char *sql, size_t len, int no_backslash, fsdb_sqlscan *s,
                     fsdb_error *err)
{
    count_state cs;

    memset(s, 0, sizeof *s);
    cs.s = s;
    cs.err = err;
    if (fsdb_sqlscan_walk(sql, len, no_backslash, count_one, &cs, &s->multi) < 0)
        goto fail;
    if (s->style == FSDB_SCAN_NAMED) {
        rewrite_state rs;
        rs.sql = sql;
        rs.copied_to = rs.len = 0;
        if ((rs.out = malloc(len + 1)) == NULL) {
            fsdb_error_set(err, FSDB_ERR_NOMEM, NULL, "out of memory scanning SQL");
            goto fail;
        }
        fsdb_sqlscan_walk(sql, len, no_backslash, rewrite_one, &rs, NULL);
        memcpy(rs.out + rs.len, sql + rs.copied_to, len - rs.copied_to);
        rs.len += len - rs.copied_to;
        rs.out[rs.len] = '\0';
        s->sql = rs.out;
        s->sql_len = rs.len;
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

static size_t word_end(const char *sql, size_t len, size_t i)
{
    while (i < len && is_word((unsigned char)sql[i]))
        i++;
    return i;
}

/*
 * The token walk of fsdb_sqlscan_values_group and plain_select: quoted runs
 * are skipped; every other token — a comment, a word, or any other single
 * byte — goes to fn as [at, *end). fn returns WALK_ON to go on at *end
 * (which it may move forward), or the walk's result.
 */
enum { TOK_COMMENT, TOK_WORD, TOK_BYTE };
#define WALK_ON (-1)

typedef int (*token_fn)(void *ud, int kind, size_t at, size_t *end);

static inline int walk_tokens(const char *sql, size_t len, size_t i, int no_backslash, token_fn fn,
                       void *ud)
{
    while (i < len) {
        unsigned char c = (unsigned char)sql[i];
        size_t end;
        int kind, r;
        if (c == '\'' || c == '"' || c == '`') {
            i = skip_quoted(sql, len, i, no_backslash);
            continue;
        }
        if ((end = skip_comment(sql, len, i)) != i) {
            kind = TOK_COMMENT;
        } else if (is_word(c)) {
            kind = TOK_WORD;
            end = word_end(sql, len, i);
        } else {
            kind = TOK_BYTE;
            end = i + 1;
        }
        if ((r = fn(ud, kind, i, &end)) != WALK_ON)
            return r;
        i = end;
    }
    return WALK_ON;
}

typedef struct group_state {
    const char *sql;
    size_t len, *start, *end;
    unsigned inside, outside; /* placeholders in and out of the group */
    int depth, state;         /* state: 0 before the group, 1 inside, 2 after */
} group_state;

static int group_token(void *ud, int kind, size_t at, size_t *end)
{
    group_state *g = ud;
    const char *sql = g->sql;
    if (kind == TOK_WORD) {
        if (g->state == 0 && g->depth == 0 &&
            (word_is(sql + at, *end - at, "VALUES") || word_is(sql + at, *end - at, "VALUE"))) {
            size_t open = skip_blank(sql, g->len, *end);
            if (open >= g->len || sql[open] != '(')
                return 0;
            *g->start = open;
            g->state = 1;
            g->depth = 1;
            *end = open + 1;
        }
    } else if (kind == TOK_BYTE) {
        if (sql[at] == '?') {
            if (g->state == 1)
                g->inside++;
            else
                g->outside++;
        } else if (sql[at] == '(') {
            g->depth++;
        } else if (sql[at] == ')') {
            g->depth--;
            if (g->state == 1 && g->depth == 0) {
                size_t more;
                *g->end = at + 1;
                g->state = 2;
                /* A second group ("VALUES (?), (?)") is not repeated. */
                more = skip_blank(sql, g->len, at + 1);
                if (more < g->len && sql[more] == ',')
                    return 0;
            }
        }
    }
    return WALK_ON;
}

int fsdb_sqlscan_values_group(const char *sql, size_t len, int no_backslash,
                              size_t *start, size_t *end)
{
    size_t i = skip_blank(sql, len, 0), w = word_end(sql, len, i);
    group_state g = { 0 };

    /* The statement must start with INSERT or REPLACE. */
    if (!word_is(sql + i, w - i, "INSERT") && !word_is(sql + i, w - i, "REPLACE"))
        return 0;
    g.sql = sql;
    g.len = len;
    g.start = start;
    g.end = end;
    if (walk_tokens(sql, len, w, no_backslash, group_token, &g) != WALK_ON)
        return 0;
    return g.state == 2 && g.outside == 0 && g.inside > 0;
}

/* Words that make a SELECT more than a read of shared data. */
static const char *const NOT_PLAIN[] = {
    "INTO", "UPDATE", "SHARE", "NEXTVAL", "SETVAL", "LASTVAL", "GET_LOCK", "RELEASE_LOCK",
    "RELEASE_ALL_LOCKS", "IS_FREE_LOCK", "IS_USED_LOCK", "LAST_INSERT_ID", "FOUND_ROWS",
    "ROW_COUNT", "SQL_CALC_FOUND_ROWS", "CONNECTION_ID", "SLEEP", "BENCHMARK",
    "MASTER_GTID_WAIT", "MASTER_POS_WAIT", "SOURCE_POS_WAIT", "LOAD_FILE", NULL,
};

static int plain_word(const char *w, size_t n, const char *prev, size_t prev_n)
{
    size_t k;
    for (k = 0; NOT_PLAIN[k]; k++)
        if (word_is(w, n, NOT_PLAIN[k]))
            return 0;
    /* LOCK IN SHARE MODE; NEXT/PREVIOUS VALUE FOR a sequence. */
    if (word_is(w, n, "IN") && prev && word_is(prev, prev_n, "LOCK"))
        return 0;
    if (word_is(w, n, "VALUE") && prev &&
        (word_is(prev, prev_n, "NEXT") || word_is(prev, prev_n, "PREVIOUS")))
        return 0;
    return 1;
}

typedef struct select_state {
    const char *sql, *prev; /* prev: the last word seen */
    size_t len, prev_n;
} select_state;

static int select_token(void *ud, int kind, size_t at, size_t *end)
{
    select_state *st = ud;
    const char *sql = st->sql;
    if (kind == TOK_COMMENT)
        /* executable comment: the server runs its text */
        return (sql[at] == '/' && at + 2 < st->len && (sql[at + 2] == '!' || sql[at + 2] == 'M'))
                   ? 0 : WALK_ON;
    if (kind == TOK_WORD) {
        if (!plain_word(sql + at, *end - at, st->prev, st->prev_n))
            return 0;
        st->prev = sql + at;
        st->prev_n = *end - at;
        return WALK_ON;
    }
    if (sql[at] == '@')
        return 0;
    if (sql[at] == ';') {
        size_t i = at;
        do
            i = skip_blank(sql, st->len, i + 1);
        while (i < st->len && sql[i] == ';');
        return i >= st->len; /* anything after is a second statement */
    }
    return WALK_ON;
}

static int plain_select(const char *sql, size_t len, int no_backslash)
{
    size_t i = 0, w;
    select_state st = { 0 };
    for (;;) {
        i = skip_blank(sql, len, i);
        if (i < len && sql[i] == '(')
            i++;
        else
            break;
    }
    w = word_end(sql, len, i);
    if (!word_is(sql + i, w - i, "SELECT"))
        return 0;
    st.sql = sql;
    st.len = len;
    /* 0 stops at a token that is not plain; the end of the text is 1. */
    return walk_tokens(sql, len, w, no_backslash, select_token, &st) != 0;
}

int fsdb_sqlscan_plain_select(const char *sql, size_t len, int no_backslash)
{
    /* The scan depends on NO_BACKSLASH_ESCAPES; a caller that does not
     * know the mode gets 1 only when both readings agree (pass -1). */
    if (no_backslash < 0)
        return plain_select(sql, len, 0) && plain_select(sql, len, 1);
    return plain_select(sql, len, no_backslash);
}
