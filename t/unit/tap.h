
/*
 * A tiny TAP producer for projkey's C unit tests, read by prove(1).
 *
 *     int
 *     main(void)
 *     {
 *         plan(2);                    (or no plan, then done_testing())
 *         ok(1 + 1 == 2, "adds");
 *         is_int(f(), 3, "f() is %d", 3);
 *         return done_testing();
 *     }
 *
 * done_testing() returns the process exit status: 0 when every test passed
 * and the count matches the plan, else 1.  Header-only: one test program is
 * one translation unit, so the state is static.
 */


#ifndef _PROJKEY_TAP_H_INCLUDED_
#define _PROJKEY_TAP_H_INCLUDED_


#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#if defined(__GNUC__)
#define TAP_PRINTF(f, a)  __attribute__((format(printf, f, a)))
#else
#define TAP_PRINTF(f, a)
#endif


static int  tap_planned = -1;
static int  tap_run;
static int  tap_failed;


static inline void plan(int n);
static inline void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline int ok(int cond, const char *fmt, ...) TAP_PRINTF(2, 3);
static inline int is_int(long long got, long long expected,
    const char *fmt, ...) TAP_PRINTF(3, 4);
static inline int is_str(const char *got, const char *expected,
    const char *fmt, ...) TAP_PRINTF(3, 4);
static inline int is_mem(const void *got, size_t got_len,
    const void *expected, size_t expected_len, const char *fmt, ...)
    TAP_PRINTF(5, 6);
static inline void bail_out(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline int done_testing(void);

static inline int tap_result(int cond, const char *fmt, va_list args);
static inline void tap_diag_mem(const char *what, const void *p, size_t len);


static inline void
plan(int n)
{
    tap_planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}


static inline void
diag(const char *fmt, ...)
{
    va_list  args;

    fflush(stdout);

    fputs("# ", stderr);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}


static inline int
ok(int cond, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    cond = tap_result(cond, fmt, args);
    va_end(args);

    return cond;
}


static inline int
is_int(long long got, long long expected, const char *fmt, ...)
{
    int      cond;
    va_list  args;

    va_start(args, fmt);
    cond = tap_result(got == expected, fmt, args);
    va_end(args);

    if (!cond) {
        diag("         got: %lld", got);
        diag("    expected: %lld", expected);
    }

    return cond;
}


static inline int
is_str(const char *got, const char *expected, const char *fmt, ...)
{
    int      cond;
    va_list  args;

    if (got == NULL || expected == NULL) {
        cond = (got == expected);

    } else {
        cond = (strcmp(got, expected) == 0);
    }

    va_start(args, fmt);
    cond = tap_result(cond, fmt, args);
    va_end(args);

    if (!cond) {
        diag("         got: \"%s\"", got != NULL ? got : "(null)");
        diag("    expected: \"%s\"", expected != NULL ? expected : "(null)");
    }

    return cond;
}


static inline int
is_mem(const void *got, size_t got_len, const void *expected,
    size_t expected_len, const char *fmt, ...)
{
    int      cond;
    va_list  args;

    cond = (got_len == expected_len
            && (got_len == 0 || memcmp(got, expected, got_len) == 0));

    va_start(args, fmt);
    cond = tap_result(cond, fmt, args);
    va_end(args);

    if (!cond) {
        tap_diag_mem("         got: ", got, got_len);
        tap_diag_mem("    expected: ", expected, expected_len);
    }

    return cond;
}


static inline void
bail_out(const char *fmt, ...)
{
    va_list  args;

    printf("Bail out! ");
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
    fflush(stdout);

    exit(255);
}


static inline int
done_testing(void)
{
    if (tap_planned < 0) {
        printf("1..%d\n", tap_run);
        tap_planned = tap_run;
    }

    fflush(stdout);

    if (tap_run != tap_planned) {
        diag("planned %d tests but ran %d", tap_planned, tap_run);
        return 1;
    }

    if (tap_failed) {
        diag("failed %d of %d tests", tap_failed, tap_run);
        return 1;
    }

    return 0;
}


static inline int
tap_result(int cond, const char *fmt, va_list args)
{
    tap_run++;

    if (!cond) {
        tap_failed++;
        printf("not ");
    }

    printf("ok %d - ", tap_run);
    vprintf(fmt, args);
    printf("\n");
    fflush(stdout);

    return cond;
}


/* printable bytes as is, others as \xNN; long buffers are cut short */
static inline void
tap_diag_mem(const char *what, const void *p, size_t len)
{
    size_t                i, n;
    const unsigned char  *s;

    if (p == NULL) {
        diag("%s(null)", what);
        return;
    }

    s = p;
    n = len < 200 ? len : 200;

    fflush(stdout);
    fprintf(stderr, "# %s\"", what);

    for (i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' && s[i] != '"') {
            fputc(s[i], stderr);

        } else {
            fprintf(stderr, "\\x%02x", s[i]);
        }
    }

    fprintf(stderr, "\"%s (%zu bytes)\n", n < len ? "..." : "", len);
}


#endif /* _PROJKEY_TAP_H_INCLUDED_ */
