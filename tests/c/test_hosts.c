/*
 * test_hosts.c — the host order, back-off and role fit of csrc/hosts.c.
 * Prints one line per failure and ends with "N passed, N failed".
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "hosts.h"

static void order_str(fsdb_hosts *h, double now, char *buf)
{
    unsigned order[FSDB_URI_MAX_HOSTS], n, i;

    n = fsdb_hosts_order(h, now, order);
    for (i = 0; i < n; i++)
        buf[i] = (char)('0' + order[i]);
    buf[n] = '\0';
}

static fsdb_hosts *make(const char *url, fsdb_uri *u)
{
    fsdb_error err;

    if (fsdb_uri_parse(url, u, &err) != 0) {
        printf("FAIL parse %s: %s\n", url, err.message);
        failed++;
        return NULL;
    }
    return fsdb_hosts_new(u);
}

static void test_sequential(void)
{
    fsdb_uri u;
    fsdb_hosts *h = make("mysql://a,b,c,d?host_recheck_seconds=5", &u);
    char got[32];

    if (h == NULL)
        return;
    order_str(h, 100, got);
    CHECK(strcmp(got, "0123") == 0, "URL order");
    fsdb_hosts_report(h, 1, 0, 100);
    fsdb_hosts_report(h, 0, 0, 101);
    order_str(h, 102, got);
    CHECK(strcmp(got, "2310") == 0, "failed hosts last, oldest failure first");
    CHECK(fsdb_hosts_down_for(h, 102) == 2, "down since the first failure");
    order_str(h, 105.5, got);
    CHECK(strcmp(got, "1230") == 0, "back-off over for host 1 only");
    fsdb_hosts_report(h, 2, 1, 106);
    CHECK(fsdb_hosts_down_for(h, 107) == 0, "up after a success");
    order_str(h, 106.5, got);
    CHECK(strcmp(got, "0123") == 0, "every back-off over");
    fsdb_hosts_report(h, 9, 0, 107); /* out of range: ignored */
    order_str(h, 107, got);
    CHECK(strcmp(got, "0123") == 0, "an index out of range is ignored");
    fsdb_hosts_free(h);
    fsdb_uri_free(&u);
}

static void test_random(void)
{
    fsdb_uri u;
    fsdb_hosts *h = make("mysql://a,b,c?load_balance_hosts=random&host_recheck_seconds=10", &u);
    int first[3] = { 0, 0, 0 }, i, ok = 1;
    char got[32];

    if (h == NULL)
        return;
    for (i = 0; i < 3000; i++) {
        order_str(h, 1, got);
        first[got[0] - '0']++;
        /* A permutation: every host exactly once. */
        ok &= strlen(got) == 3 && strchr(got, '0') && strchr(got, '1') && strchr(got, '2');
    }
    CHECK(ok, "random order is a permutation");
    CHECK(first[0] > 800 && first[1] > 800 && first[2] > 800, "random first host spread");
    fsdb_hosts_report(h, 0, 0, 1);
    for (i = 0, ok = 1; i < 100; i++) {
        order_str(h, 2, got);
        ok &= got[2] == '0';
    }
    CHECK(ok, "random order keeps a failed host last");
    fsdb_hosts_free(h);
    fsdb_uri_free(&u);
}

static void test_single_and_default(void)
{
    fsdb_uri u;
    fsdb_hosts *h = make("mysql://a?host_recheck_seconds=10", &u);
    char got[32];

    if (h == NULL)
        return;
    fsdb_hosts_report(h, 0, 0, 1);
    order_str(h, 2, got);
    CHECK(strcmp(got, "0") == 0, "a single host is always tried");
    order_str(h, 11, got);
    CHECK(fsdb_hosts_down_for(h, 4) == 3, "single host down time");
    fsdb_hosts_free(h);
    fsdb_uri_free(&u);
}

static void test_roles(void)
{
    CHECK(fsdb_hosts_role_fits(FSDB_TSA_UNSET, 1, 0) && fsdb_hosts_role_fits(FSDB_TSA_ANY, 1, 0),
          "any fits all");
    CHECK(fsdb_hosts_role_fits(FSDB_TSA_READ_WRITE, 0, 0)
          && !fsdb_hosts_role_fits(FSDB_TSA_READ_WRITE, 1, 0)
          && !fsdb_hosts_role_fits(FSDB_TSA_READ_WRITE, 1, 1), "read-write");
    CHECK(fsdb_hosts_role_fits(FSDB_TSA_READ_ONLY, 1, 0)
          && !fsdb_hosts_role_fits(FSDB_TSA_READ_ONLY, 0, 0), "read-only");
    CHECK(fsdb_hosts_role_fits(FSDB_TSA_PREFER_STANDBY, 1, 0)
          && !fsdb_hosts_role_fits(FSDB_TSA_PREFER_STANDBY, 0, 0)
          && fsdb_hosts_role_fits(FSDB_TSA_PREFER_STANDBY, 0, 1), "prefer-standby");
    CHECK(fsdb_hosts_passes(FSDB_TSA_PREFER_STANDBY) == 2 && fsdb_hosts_passes(FSDB_TSA_ANY) == 1,
          "passes");
    CHECK(!fsdb_hosts_checks_role(FSDB_TSA_UNSET) && !fsdb_hosts_checks_role(FSDB_TSA_ANY)
          && fsdb_hosts_checks_role(FSDB_TSA_READ_ONLY), "role check needed");
}

int main(void)
{
    test_sequential();
    test_random();
    test_single_and_default();
    test_roles();
    return check_report();
}
