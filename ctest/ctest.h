/* ctest.h — a tiny C unit-test harness: CHECK, CHECK_NEAR, RUN, and a closing
 * "N passed, N failed" line; the exit status is non-zero on any failure. */
#ifndef CTEST_H
#define CTEST_H
#include <math.h>
#include <stdio.h>

static int ct_pass, ct_fail, ct_cur_fail;
#define CHECK(cond) do { if (cond) ct_pass++; else { ct_fail++; ct_cur_fail++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double ct_a = (a), ct_b = (b); \
    if (fabs(ct_a - ct_b) <= (tol)) ct_pass++; else { ct_fail++; ct_cur_fail++; \
    fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__, __LINE__, #a, ct_a, ct_b, (double)(tol)); } } while (0)
#define RUN(fn) do { ct_cur_fail = 0; fn(); if (ct_cur_fail) fprintf(stderr, "FAILED: %s\n", #fn); } while (0)
#define CT_DONE() (printf("%d passed, %d failed\n", ct_pass, ct_fail), ct_fail ? 1 : 0)
#endif
