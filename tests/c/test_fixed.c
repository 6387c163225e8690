/*
 * test_fixed.c — fsdb_fixed (error.c), the figures in messages: rounding,
 * signs, limits, and a point whatever LC_NUMERIC says (under de_DE, where
 * the C library's %f writes a comma, when that locale exists).
 * Ends with "N passed, N failed".
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "error.h"

static void expect(double v, int decimals, const char *want)
{
    char buf[48];
    fsdb_fixed(buf, sizeof buf, v, decimals);
    if (strcmp(buf, want) == 0) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL fsdb_fixed(%.17g, %d)\n  got:  %s\n  want: %s\n", v, decimals, buf, want);
}

static void cases(void)
{
    expect(0.25, 2, "0.25");
    expect(30, 2, "30.00");
    expect(1.05, 1, "1.1");
    expect(2.0049, 2, "2.00");
    expect(12.3456, 3, "12.346");
    expect(0.0004, 3, "0.000");
    expect(7.5, 0, "8");
    expect(-1.25, 1, "-1.3");
    expect(-0.0001, 2, "0.00");
    expect(123456789.5, 1, "123456789.5");
    expect(0.5, 9, "0.500"); /* at most 3 digits */
    expect(1e16, 2, "10000000000000000"); /* past 1e15: whole, no point */
    {
        char buf[48];
        fsdb_fixed(buf, sizeof buf, 0.0 / 0.0, 2);
        CHECK(strstr(buf, "nan") != NULL, "NaN is written as nan");
    }
}

int main(void)
{
    char probe[16];

    cases();
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "de_DE.utf8")) {
        snprintf(probe, sizeof probe, "%.1f", 0.5);
        CHECK(strcmp(probe, "0,5") == 0, "with de_DE set, the C library's %.1f writes a comma");
        cases(); /* the same figures, still with a point */
        setlocale(LC_NUMERIC, "C");
    } else {
        printf("note: no de_DE locale (scripts/deps generates it): the comma case did not run\n");
    }
    return check_report();
}
