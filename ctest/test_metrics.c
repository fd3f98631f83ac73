/* test_metrics.c — metrics, k-means, cosine, bucket selection and ridge kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "nf_metrics.h"
#include "nf_stats.h"

typedef nf_status (*corr_fn)(const float *, const float *, int64_t, double *, nf_err *);

static double call(corr_fn f, const float *a, const float *b, int64_t n)
{
    double out = -99;
    nf_err err;
    CHECK(f(a, b, n, &out, &err) == NF_OK);
    return out;
}

/* Values from an independent pure-Python implementation of the textbook definitions
 * (average ranks; tau-b from explicit pair counts). */
static void test_correlations_hand(void)
{
    const float a[] = {1, 2, 3, 4, 5}, b[] = {2, 1, 4, 3, 5};
    CHECK_NEAR(call(nf_spearman, a, b, 5), 0.8, 1e-12);
    CHECK_NEAR(call(nf_kendall, a, b, 5), 0.6, 1e-12);
    CHECK_NEAR(call(nf_pearson, a, b, 5), 0.8, 1e-12);
    /* ties: C=3, D=1, one tie in x only, one in y only -> tau_b = 2/sqrt(5*5) */
    const float c[] = {1, 2, 2, 3}, d[] = {1, 3, 2, 2};
    CHECK_NEAR(call(nf_spearman, c, d, 4), 0.5, 1e-12);
    CHECK_NEAR(call(nf_kendall, c, d, 4), 0.4, 1e-12);
    const float e[] = {1, 1, 2, 2, 3, 3, 4}, f[] = {2, 1, 1, 3, 3, 3, 4};
    CHECK_NEAR(call(nf_spearman, e, f, 7), 0.827076026721, 1e-10);
    CHECK_NEAR(call(nf_kendall, e, f, 7), 0.743160535618, 1e-10);
    CHECK_NEAR(call(nf_pearson, e, f, 7), 0.811465207804, 1e-10);
    const float g[] = {3, 1, 4, 1, 5, 9, 2, 6}, h[] = {2, 7, 1, 8, 2, 8, 1, 8};
    CHECK_NEAR(call(nf_spearman, g, h, 8), 0.198853681210, 1e-10);
    CHECK_NEAR(call(nf_kendall, g, h, 8), 0.160514470781, 1e-10);
    CHECK_NEAR(call(nf_kendall_naive, g, h, 8), 0.160514470781, 1e-10);
    CHECK_NEAR(call(nf_pearson, g, h, 8), 0.209655319073, 1e-10);
    /* perfect and reversed orders */
    const float r[] = {5, 4, 3, 2, 1};
    CHECK_NEAR(call(nf_spearman, a, r, 5), -1.0, 1e-12);
    CHECK_NEAR(call(nf_kendall, a, r, 5), -1.0, 1e-12);
    CHECK_NEAR(call(nf_kendall, a, a, 5), 1.0, 1e-12);
}

static void test_missing_and_degenerate(void)
{
    /* NaN in either array drops the pair */
    const float p[] = {1, NAN, 3, 2, 9}, t[] = {1, 5, NAN, 2, 8};
    const float p2[] = {1, 2, 9}, t2[] = {1, 2, 8};
    CHECK(nf_metric_count_valid(p, t, 5) == 3);
    CHECK_NEAR(call(nf_spearman, p, t, 5), call(nf_spearman, p2, t2, 3), 0);
    CHECK_NEAR(call(nf_kendall, p, t, 5), 1.0, 1e-12);
    CHECK_NEAR(call(nf_mae, p, t, 5), 1.0 / 3.0, 1e-12);
    /* n = 0, n = 1, constant input: NaN, not an error */
    const float one[] = {4}, k3[] = {2, 2, 2}, v3[] = {1, 2, 3};
    corr_fn fns[] = {nf_spearman, nf_kendall, nf_kendall_naive, nf_pearson};
    for (int i = 0; i < 4; i++) {
        CHECK(isnan(call(fns[i], NULL, NULL, 0)));
        CHECK(isnan(call(fns[i], one, one, 1)));
        CHECK(isnan(call(fns[i], k3, v3, 3)));
        CHECK(isnan(call(fns[i], v3, k3, 3)));
    }
    CHECK(isnan(call(nf_mae, NULL, NULL, 0)));
    CHECK_NEAR(call(nf_mae, one, v3, 1), 3.0, 0);
    const float allnan[] = {NAN, NAN};
    CHECK(isnan(call(nf_rmse, allnan, v3, 2)));
    /* programmer errors */
    nf_err err;
    double out;
    CHECK(nf_spearman(v3, v3, -1, &out, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "spearman: length is negative (-1)") != NULL);
    CHECK(nf_kendall(NULL, v3, 3, &out, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "kendall: NULL array with length 3") != NULL);
    CHECK(nf_precision_at_k(v3, v3, 3, 0, &out, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "precision_at_k: k must be >= 1 (got 0)") != NULL);
    CHECK(nf_within(v3, v3, 3, -0.1, &out, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "within: tolerance must be >= 0") != NULL);
}

static void test_errors(void)
{
    const float p[] = {1.05f, 2, 2.6f}, t[] = {1, 2, 3};
    CHECK_NEAR(call(nf_mae, p, t, 3), (0.05 + 0.4) / 3, 1e-6);
    CHECK_NEAR(call(nf_rmse, p, t, 3), sqrt((0.0025 + 0.16) / 3), 1e-6);
    CHECK_NEAR(call(nf_mape, p, t, 3), 100.0 * (0.05 + 0.4 / 3) / 3, 1e-4);
    double out;
    nf_err err;
    CHECK(nf_within(p, t, 3, 0.1, &out, &err) == NF_OK);
    CHECK_NEAR(out, 2.0 / 3.0, 1e-12);
    CHECK(nf_within(p, t, 3, 0.2, &out, &err) == NF_OK);
    CHECK_NEAR(out, 1.0, 1e-12);
    const float z[] = {0, 1}, q[] = {1, 1};
    CHECK(isinf(call(nf_mape, q, z, 2)));
}

static void test_topk(void)
{
    const float p[] = {1, 2, 3, 4, 5, 6}, t[] = {2, 1, 6, 3, 5, 4};
    double out;
    nf_err err;
    CHECK(nf_precision_at_k(p, t, 6, 2, &out, &err) == NF_OK);
    CHECK_NEAR(out, 1.0, 0);
    CHECK(nf_precision_at_k(p, t, 6, 3, &out, &err) == NF_OK);   /* {1,2,3} vs {1,2,4} */
    CHECK_NEAR(out, 2.0 / 3.0, 1e-12);
    CHECK(nf_topk_overlap(p, t, 6, 3, &out, &err) == NF_OK);     /* 2 common / 4 in the union */
    CHECK_NEAR(out, 0.5, 1e-12);
    CHECK(nf_precision_at_k(p, t, 6, 7, &out, &err) == NF_OK);
    CHECK(isnan(out));
    /* ties in the measurement: all three 1s count as "the fastest 1" */
    const float p2[] = {3, 2, 1, 4, 5, 6}, t2[] = {1, 1, 1, 5, 6, 7};
    CHECK(nf_precision_at_k(p2, t2, 6, 1, &out, &err) == NF_OK);
    CHECK_NEAR(out, 1.0, 0);
    CHECK(nf_topk_overlap(p2, t2, 6, 1, &out, &err) == NF_OK);
    CHECK_NEAR(out, 1.0 / 3.0, 1e-12);
    /* a constant prediction ties everything: precision takes the first k positions */
    const float c[] = {0, 0, 0, 0, 0, 0};
    CHECK(nf_precision_at_k(c, t, 6, 2, &out, &err) == NF_OK);
    CHECK_NEAR(out, 1.0, 0);
    CHECK(nf_topk_overlap(c, t, 6, 2, &out, &err) == NF_OK);
    CHECK_NEAR(out, 2.0 / 6.0, 1e-12);
}

static void test_kendall_matches_naive(void)
{
    nf_rng rng;
    nf_rng_seed(&rng, 11);
    for (int trial = 0; trial < 30; trial++) {
        int64_t n = 1 + (int64_t)nf_rng_below(&rng, 400);
        int levels = 1 + (int)nf_rng_below(&rng, 12);
        float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
        for (int64_t i = 0; i < n; i++) {
            a[i] = (float)nf_rng_below(&rng, (uint64_t)levels);
            b[i] = (float)nf_rng_below(&rng, (uint64_t)levels) + 0.5f * a[i];
            if (nf_rng_below(&rng, 20) == 0) b[i] = NAN;
        }
        double fast = call(nf_kendall, a, b, n), slow = call(nf_kendall_naive, a, b, n);
        if (isnan(slow)) CHECK(isnan(fast));
        else CHECK_NEAR(fast, slow, 1e-12);
        free(a);
        free(b);
    }
}

static void test_kmeans(void)
{
    /* three well separated blobs: k-means finds them and the inertia never increases */
    enum { N = 300, D = 2, K = 3 };
    float X[N * D];
    nf_rng rng;
    nf_rng_seed(&rng, 5);
    const float cx[K] = {0, 10, 0}, cy[K] = {0, 0, 10};
    for (int i = 0; i < N; i++) {
        X[i * D] = cx[i % K] + (float)nf_rng_normal(&rng);
        X[i * D + 1] = cy[i % K] + (float)nf_rng_normal(&rng);
    }
    int64_t assign[N];
    float C[K * D];
    double inertia[50];
    int it = 0;
    nf_err err;
    CHECK(nf_kmeans(X, N, D, K, 50, &rng, assign, C, inertia, &it, &err) == NF_OK);
    CHECK(it >= 2 && it < 50);
    for (int t = 1; t < it; t++) CHECK(inertia[t] <= inertia[t - 1] * (1 + 1e-12));
    for (int i = K; i < N; i++) CHECK(assign[i] == assign[i % K]);
    CHECK(assign[0] != assign[1] && assign[1] != assign[2] && assign[0] != assign[2]);
    /* k = n: every row its own cluster, inertia 0 */
    CHECK(nf_kmeans(X, 5, D, 5, 10, &rng, assign, NULL, inertia, &it, &err) == NF_OK);
    CHECK_NEAR(inertia[it - 1], 0, 0);
    /* duplicates: fewer distinct rows than clusters still works */
    float dup[8] = {1, 1, 1, 1, 1, 1, 2, 2};
    CHECK(nf_kmeans(dup, 4, 2, 3, 10, &rng, assign, NULL, NULL, NULL, &err) == NF_OK);
    CHECK(nf_kmeans(X, 3, D, 4, 10, &rng, assign, NULL, NULL, NULL, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "kmeans: cannot make 4 clusters from 3 rows") != NULL);
    X[7] = NAN;
    CHECK(nf_kmeans(X, N, D, K, 10, &rng, assign, NULL, NULL, NULL, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "kmeans: non-finite value at row 4, column 2") != NULL);
}

static void test_cosine(void)
{
    const float A[] = {1, 0, 0, 2, 1, 1, 0, 0};   /* 4 rows × 2 */
    float S[16];
    nf_err err;
    CHECK(nf_cosine_matrix(A, 4, A, 4, 2, S, &err) == NF_OK);
    CHECK_NEAR(S[0 * 4 + 1], 0, 1e-7);
    CHECK_NEAR(S[0 * 4 + 2], 1 / sqrt(2.0), 1e-6);
    CHECK_NEAR(S[1 * 4 + 1], 1, 1e-6);
    CHECK_NEAR(S[3 * 4 + 3], 0, 0);   /* zero row */
    double m[4];
    CHECK(nf_mean_cosine(A, 4, 2, m, &err) == NF_OK);
    for (int i = 0; i < 4; i++) {
        double s = 0;
        for (int j = 0; j < 4; j++) if (j != i) s += S[i * 4 + j];
        CHECK_NEAR(m[i], s / 3, 1e-6);
    }
}

static void test_bucket_select(void)
{
    /* 10 values in 3 buckets of sizes 4, 3, 3 (numpy.array_split) */
    const double v[] = {9, 0, 8, 1, 7, 2, 6, 3, 5, 4};
    nf_rng rng;
    nf_rng_seed(&rng, 1);
    int64_t out[3];
    nf_err err;
    for (int trial = 0; trial < 50; trial++) {
        CHECK(nf_bucket_select(v, 10, 3, &rng, out, &err) == NF_OK);
        CHECK(v[out[0]] <= 3);
        CHECK(v[out[1]] >= 4 && v[out[1]] <= 6);
        CHECK(v[out[2]] >= 7);
    }
    CHECK(nf_bucket_select(v, 10, 11, &rng, out, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "cannot make 11 buckets from 10 values") != NULL);
}

static void test_ridge(void)
{
    /* exact linear law y = 1 + 2 x1 - 3 x2: tiny lambda recovers it */
    enum { N = 12, P = 2 };
    float X[N * P];
    double y[N];
    for (int i = 0; i < N; i++) {
        X[i * P] = (float)(i % 5);
        X[i * P + 1] = (float)((i * 7) % 4);
        y[i] = 1 + 2 * X[i * P] - 3 * X[i * P + 1];
    }
    double coef[P], b;
    nf_err err;
    for (int s = 0; s < 2; s++) {
        CHECK(nf_ridge_fit(X, y, N, P, 1e-9, s, coef, &b, &err) == NF_OK);
        CHECK_NEAR(coef[0], 2, 1e-6);
        CHECK_NEAR(coef[1], -3, 1e-6);
        CHECK_NEAR(b, 1, 1e-6);
    }
    double lam[2] = {1e-9, 10}, loo[2];
    CHECK(nf_ridge_loo(X, y, N, P, lam, 2, 1, loo, &err) == NF_OK);
    CHECK(loo[0] < 1e-10 && loo[1] > loo[0]);
    /* LOO by the hat matrix equals refitting without each row (standardize=0: fixed design) */
    double y2[N];
    for (int i = 0; i < N; i++) y2[i] = y[i] + ((i * 37) % 11) * 0.3 - 1.5;
    CHECK(nf_ridge_loo(X, y2, N, P, lam + 1, 1, 0, loo, &err) == NF_OK);
    double brute = 0;
    for (int h = 0; h < N; h++) {
        float Xs[(N - 1) * P];
        double ys[N - 1];
        int k = 0;
        for (int i = 0; i < N; i++) {
            if (i == h) continue;
            Xs[k * P] = X[i * P];
            Xs[k * P + 1] = X[i * P + 1];
            ys[k++] = y2[i];
        }
        CHECK(nf_ridge_fit(Xs, ys, N - 1, P, 10, 0, coef, &b, &err) == NF_OK);
        double e = y2[h] - (b + coef[0] * X[h * P] + coef[1] * X[h * P + 1]);
        brute += e * e;
    }
    CHECK_NEAR(loo[0], brute / N, 1e-9);
    /* more features than samples (the n×n route): still equal to refitting without each row */
    {
        enum { NW = 7, PW = 19 };
        float Xw[NW * PW];
        double yw[NW], low[3], lw[3] = {1e-3, 0.5, 20};
        for (int i = 0; i < NW; i++) {
            for (int j = 0; j < PW; j++) Xw[i * PW + j] = (float)(((i + 3) * (j + 5) * 7919) % 13) / 4.0f;
            yw[i] = 0.5 + 0.1 * Xw[i * PW] - 0.2 * Xw[i * PW + 3] + ((i * 5) % 3) * 0.05;
        }
        CHECK(nf_ridge_loo(Xw, yw, NW, PW, lw, 3, 0, low, &err) == NF_OK);
        for (int l = 0; l < 3; l++) {
            double bw = 0, cw[PW];
            for (int h = 0; h < NW; h++) {
                float Xs[(NW - 1) * PW];
                double ys[NW - 1];
                int k = 0;
                for (int i = 0; i < NW; i++) {
                    if (i == h) continue;
                    memcpy(Xs + k * PW, Xw + i * PW, PW * sizeof *Xs);
                    ys[k++] = yw[i];
                }
                double bb;
                CHECK(nf_ridge_fit(Xs, ys, NW - 1, PW, lw[l], 0, cw, &bb, &err) == NF_OK);
                double pred = bb;
                for (int j = 0; j < PW; j++) pred += cw[j] * Xw[h * PW + j];
                bw += (yw[h] - pred) * (yw[h] - pred);
            }
            CHECK_NEAR(low[l], bw / NW, 1e-9 * (1 + bw));
        }
        double zero = 0;
        CHECK(nf_ridge_loo(Xw, yw, NW, PW, &zero, 1, 0, low, &err) == NF_EINVAL);   /* rank <= n-1 < p */
        CHECK(strstr(err.msg, "singular at lambda=0") != NULL);
    }
    /* a large design (n >= 64: one BLAS triangular solve for all rows): equal to refitting without each row */
    {
        enum { NB_ = 70, PB = 9 };
        static float Xb[NB_ * PB], Xs[(NB_ - 1) * PB];
        double yb[NB_], ys[NB_ - 1], lb = 0.3, lo, cb[PB], bb;
        for (int i = 0; i < NB_; i++) {
            for (int j = 0; j < PB; j++) Xb[i * PB + j] = (float)(((i + 1) * (j + 2) * 104729) % 17) / 3.0f;
            yb[i] = 1.0 + 0.2 * Xb[i * PB + 1] - 0.1 * Xb[i * PB + 4] + ((i * 11) % 7) * 0.03;
        }
        CHECK(nf_ridge_loo(Xb, yb, NB_, PB, &lb, 1, 0, &lo, &err) == NF_OK);
        double bw = 0;
        for (int h = 0; h < NB_; h++) {
            int k = 0;
            for (int i = 0; i < NB_; i++) {
                if (i == h) continue;
                memcpy(Xs + k * PB, Xb + i * PB, PB * sizeof *Xs);
                ys[k++] = yb[i];
            }
            CHECK(nf_ridge_fit(Xs, ys, NB_ - 1, PB, lb, 0, cb, &bb, &err) == NF_OK);
            double pred = bb;
            for (int j = 0; j < PB; j++) pred += cb[j] * Xb[h * PB + j];
            bw += (yb[h] - pred) * (yb[h] - pred);
        }
        CHECK_NEAR(lo, bw / NB_, 1e-9 * (1 + bw));
    }
    /* collinear columns without a penalty are singular */
    float Xc[N * P];
    for (int i = 0; i < N; i++) { Xc[i * P] = (float)i; Xc[i * P + 1] = (float)(2 * i); }
    CHECK(nf_ridge_fit(Xc, y, N, P, 0, 0, coef, &b, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "singular at lambda=0") != NULL);
    CHECK(nf_ridge_fit(Xc, y, 1, P, 1, 0, coef, &b, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "needs at least 2 samples (got 1)") != NULL);
}

/* Simplex grid search: the exact minimiser on a grid where one mix is perfect; equal weights win ties; the error
 * of the answer equals a direct recomputation; bad arguments are status codes. */
static void test_simplex_search(void)
{
    /* y = 0.6 a + 0.4 b exactly; c is noise */
    enum { C = 3, N = 6 };
    double P[C * N], y[N];
    for (int i = 0; i < N; i++) {
        double a = i, b = (i * 7) % 5, c = (i * 3) % 4 - 1.5;
        P[0 * N + i] = a;
        P[1 * N + i] = b;
        P[2 * N + i] = c;
        y[i] = 0.6 * a + 0.4 * b;
    }
    int64_t idx[N] = {0, 1, 2, 3, 4, 5};
    double w[C], sse;
    CHECK(nf_simplex_search(P, y, C, N, idx, N, 5, w, &sse, NULL) == NF_OK);
    CHECK_NEAR(w[0], 0.6, 1e-12);
    CHECK_NEAR(w[1], 0.4, 1e-12);
    CHECK_NEAR(w[2], 0.0, 1e-12);
    CHECK_NEAR(sse, 0.0, 1e-18);
    /* a coarser grid cannot hit 0.6: the answer is the grid point with the least error, found by brute force */
    CHECK(nf_simplex_search(P, y, C, N, idx, 4, 2, w, &sse, NULL) == NF_OK);
    double best = 1e300, bw[C] = {0};
    for (int t0 = 0; t0 <= 2; t0++)
        for (int t1 = 0; t0 + t1 <= 2; t1++) {
            double v[C] = {t0 / 2.0, t1 / 2.0, (2 - t0 - t1) / 2.0}, e = 0;
            for (int k = 0; k < 4; k++) {
                double p = v[0] * P[k] + v[1] * P[N + k] + v[2] * P[2 * N + k];
                e += (p - y[k]) * (p - y[k]);
            }
            if (e < best - 1e-12) { best = e; memcpy(bw, v, sizeof bw); }
        }
    double eq = 0;   /* equal weights are tried first; they are off the step-2 grid */
    for (int k = 0; k < 4; k++) {
        double p = (P[k] + P[N + k] + P[2 * N + k]) / 3.0;
        eq += (p - y[k]) * (p - y[k]);
    }
    if (eq < best - 1e-12) { best = eq; bw[0] = bw[1] = bw[2] = 1.0 / 3.0; }
    CHECK_NEAR(sse, best, 1e-9 * (1 + best));
    for (int c = 0; c < C; c++) CHECK_NEAR(w[c], bw[c], 1e-15);
    /* identical predictors: every point ties, equal weights (tried first) stay */
    double Q[2 * N];
    for (int i = 0; i < N; i++) Q[i] = Q[N + i] = y[i];
    CHECK(nf_simplex_search(Q, y, 2, N, idx, N, 10, w, &sse, NULL) == NF_OK);
    CHECK(w[0] == 0.5 && w[1] == 0.5 && sse == 0.0);
    nf_err e;
    int64_t bad[1] = {N};
    CHECK(nf_simplex_search(P, y, C, N, bad, 1, 5, w, &sse, &e) == NF_EINVAL);
    CHECK(strstr(e.msg, "index 0 is 6, outside 0..5") != NULL);
    CHECK(nf_simplex_search(P, y, C, N, idx, N, 0, w, &sse, &e) == NF_EINVAL);
    CHECK(strstr(e.msg, "steps must be >= 1") != NULL);
    CHECK(nf_simplex_search(P, y, 0, N, idx, N, 5, w, &sse, &e) == NF_EINVAL);
}

int main(void)
{
    RUN(test_correlations_hand);
    RUN(test_missing_and_degenerate);
    RUN(test_errors);
    RUN(test_topk);
    RUN(test_kendall_matches_naive);
    RUN(test_kmeans);
    RUN(test_cosine);
    RUN(test_bucket_select);
    RUN(test_ridge);
    RUN(test_simplex_search);
    return CT_DONE();
}
