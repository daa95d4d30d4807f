/* A host whose wall clock is ahead (or behind): LD_PRELOAD this and set SAGE200_WALL_CLOCK_OFFSET (seconds, e.g.
 * "2" or "-1.5"). Only the wall clock moves (CLOCK_REALTIME and its coarse variant, gettimeofday, time); the
 * monotonic clocks and every sleep and timeout stay as they are, as on a real host whose clock is set wrong.
 * Debian's libfaketime 0.9.10 is not used because Python 3.11's time.sleep() fails under it with EINVAL
 * (FAKETIME_DONT_FAKE_MONOTONIC=1) or never returns (without it). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_ns(void) {
    static int read;
    static long long offset;
    if (!read) {
        const char *text = getenv("SAGE200_WALL_CLOCK_OFFSET");
        offset = text ? (long long)(strtod(text, NULL) * 1e9) : 0;
        read = 1;
    }
    return offset;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns();
    ts->tv_sec = (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
    if (ts->tv_nsec < 0) {
        ts->tv_sec -= 1;
        ts->tv_nsec += 1000000000L;
    }
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(clock, ts);
    if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) shift(ts);
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    (void)tz;
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
