/*
 * launch.c — starts a benchmark program for the "process start to first
 * query" measurement: reads CLOCK_MONOTONIC, puts it in BENCH_T0 and execs
 * the program in its own place. The program subtracts BENCH_T0 from the
 * monotonic clock once its first query has returned a row, so the figure
 * covers exec, dynamic loading, interpreter start, module loading,
 * connecting and the first round trip.
 *
 *   usage: launch PROGRAM [ARGS...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct timespec ts;
    char buf[64];

    if (argc < 2) {
        fputs("usage: launch PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, sizeof buf, "%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
    if (setenv("BENCH_T0", buf, 1) != 0) {
        perror("launch: setenv");
        return 1;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "launch: cannot run %s: %s\n", argv[1], strerror(errno));
    return 127;
}
