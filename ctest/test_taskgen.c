/* test_taskgen.c — device Spearman matrix, Kernighan–Lin against brute force, trimming, status codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "nf_metrics.h"
#include "nf_taskgen.h"

/* A random symmetric weight matrix in [-1, 1] (diagonal 1, never read). */
static void random_graph(nf_rng *r, int d, double *w)
{
    for (int i = 0; i < d; i++) {
        w[i * d + i] = 1;
        for (int j = i + 1; j < d; j++) w[i * d + j] = w[j * d + i] = 2 * nf_rng_uniform(r) - 1;
    }
}

/* The minimum cut over every side vector with n0 zeros, by plain enumeration of all 2^d vectors. */
static double brute_min_cut(const double *w, int d, int n0)
{
    double best = INFINITY;
    int side[16];
    for (uint32_t mask = 0; mask < (1u << d); mask++) {
        if (__builtin_popcount(mask) != n0) continue;
        for (int i = 0; i < d; i++) side[i] = mask >> i & 1u ? 0 : 1;
        double c = 0;
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j < d; j++)
                if (side[i] != side[j]) c += w[i * d + j];
        if (c < best) best = c;
    }
    return best;
}

static void test_spearman_matrix(void)
{
    enum { N = 300, D = 6 };
    static float x[N * D];
    nf_rng r;
    nf_rng_seed(&r, 7);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < D; c++) {
            float v = (float)(i % 17) + (float)(c + 1) * (float)nf_rng_uniform(&r) * 9.0f;
            if (c == 4) v = floorf(v);                          /* ties */
            x[i * D + c] = v;
        }
    /* columns 1 and 2 miss the same rows; column 3 misses others; column 5 is constant */
    for (int i = 0; i < N; i += 7) { x[i * D + 1] = NAN; x[i * D + 2] = NAN; }
    for (int i = 3; i < N; i += 5) x[i * D + 3] = NAN;
    for (int i = 0; i < N; i++) x[i * D + 5] = 2.5f;
    double rho[D * D];
    int64_t cnt[D * D];
    nf_err err;
    CHECK(nf_taskgen_spearman_matrix(x, N, D, D, rho, cnt, &err) == NF_OK);
    float a[N], b[N];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            for (int t = 0; t < N; t++) { a[t] = x[t * D + i]; b[t] = x[t * D + j]; }
            double ref;
            CHECK(nf_spearman(a, b, N, &ref, &err) == NF_OK);
            if (i == j) {
                CHECK(i == 5 ? isnan(rho[i * D + j]) : rho[i * D + j] == 1.0);
            } else if (isnan(ref)) {
                CHECK(isnan(rho[i * D + j]));
            } else {
                CHECK(rho[i * D + j] == ref);                    /* bit-identical to nf_spearman */
            }
            CHECK(cnt[i * D + j] == nf_metric_count_valid(a, b, N));
            CHECK(rho[i * D + j] == rho[j * D + i] || (isnan(rho[i * D + j]) && isnan(rho[j * D + i])));
        }
    CHECK(cnt[1 * D + 2] == N - (N + 6) / 7);
    CHECK(isnan(rho[0 * D + 5]));
    /* a stride wider than the columns; errors */
    static float wide[N * (D + 2)];
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < D; c++) wide[i * (D + 2) + c] = x[i * D + c];
        wide[i * (D + 2) + D] = wide[i * (D + 2) + D + 1] = -1;
    }
    double rho2[D * D];
    CHECK(nf_taskgen_spearman_matrix(wide, N, D, D + 2, rho2, NULL, &err) == NF_OK);
    CHECK(memcmp(rho, rho2, sizeof rho) == 0);
    CHECK(nf_taskgen_spearman_matrix(x, N, D, D - 1, rho, cnt, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "row stride 5 < 6 columns") != NULL);
}

static void test_kl_against_brute_force(void)
{
    nf_rng r;
    nf_rng_seed(&r, 2024);
    double w[12 * 12];
    int sides[40 * 12], side[12];
    double cuts[40];
    nf_err err;
    int graphs = 0, optimal = 0;
    for (int d = 2; d <= 12; d++) {
        for (int g = 0; g < 12; g++) {
            random_graph(&r, d, w);
            for (int n0 = 1; n0 <= d / 2; n0++) {
                double ref = brute_min_cut(w, d, n0);
                /* the exact enumeration finds the brute-force optimum, with n0 nodes on side 0 */
                double ex;
                CHECK(nf_taskgen_bisect_exact(w, d, n0, side, &ex, &err) == NF_OK);
                CHECK_NEAR(ex, ref, 1e-12);
                int z = 0;
                for (int i = 0; i < d; i++) z += side[i] == 0;
                CHECK(z == n0);
                CHECK_NEAR(nf_taskgen_cut(w, d, side), ex, 1e-12);
                /* KL: every result is a valid partition, no better than the optimum, and a local optimum
                 * (no single swap improves it); 40 restarts reach the optimum */
                CHECK(nf_taskgen_kl_restarts(w, d, n0, 40, &r, sides, cuts, &err) == NF_OK);
                double best = INFINITY;
                for (int t = 0; t < 40; t++) {
                    int *s = sides + t * d, c0 = 0;
                    for (int i = 0; i < d; i++) c0 += s[i] == 0;
                    CHECK(c0 == n0);
                    CHECK(cuts[t] >= ref - 1e-9);
                    CHECK_NEAR(nf_taskgen_cut(w, d, s), cuts[t], 1e-12);
                    for (int a = 0; a < d; a++)
                        for (int b = 0; b < d; b++) {
                            if (s[a] != 0 || s[b] != 1) continue;
                            s[a] = 1; s[b] = 0;
                            double c = nf_taskgen_cut(w, d, s);
                            s[a] = 0; s[b] = 1;
                            if (c < cuts[t] - 1e-9) { CHECK(c >= cuts[t] - 1e-9); a = b = d; }
                        }
                    if (cuts[t] < best) best = cuts[t];
                }
                graphs++;
                optimal += fabs(best - ref) < 1e-9;
            }
        }
    }
    CHECK(graphs == 12 * 36);
    CHECK(optimal == graphs);
    if (optimal != graphs) fprintf(stderr, "KL reached the optimum on %d of %d graphs\n", optimal, graphs);
}

static void test_kl_known_graph(void)
{
    /* two cliques {0,1,2} and {3,4,5} with weight 1 inside, 0.1 across: the minimum cut separates them */
    double w[36];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) w[i * 6 + j] = (i < 3) == (j < 3) ? 1.0 : 0.1;
    int side[6] = {0, 1, 0, 1, 0, 1};
    double cut;
    int passes;
    nf_err err;
    CHECK(nf_taskgen_kl(w, 6, side, &cut, &passes, &err) == NF_OK);
    CHECK(side[0] == side[1] && side[1] == side[2] && side[3] == side[4] && side[4] == side[5]);
    CHECK(side[0] != side[3]);
    CHECK_NEAR(cut, 0.9, 1e-12);
    CHECK(passes >= 2);
    /* NaN weights count as 0 */
    w[0 * 6 + 3] = w[3 * 6 + 0] = NAN;
    CHECK_NEAR(nf_taskgen_cut(w, 6, side), 0.8, 1e-12);
    /* the same seed gives the same restarts; another seed may differ but is as good here */
    int s1[5 * 6], s2[5 * 6];
    double c1[5], c2[5];
    nf_rng r1, r2;
    nf_rng_seed(&r1, 5);
    nf_rng_seed(&r2, 5);
    CHECK(nf_taskgen_kl_restarts(w, 6, 3, 5, &r1, s1, c1, &err) == NF_OK);
    CHECK(nf_taskgen_kl_restarts(w, 6, 3, 5, &r2, s2, c2, &err) == NF_OK);
    CHECK(memcmp(s1, s2, sizeof s1) == 0 && memcmp(c1, c2, sizeof c1) == 0);
    for (int t = 0; t < 5; t++) CHECK(s1[t * 6] == 0);   /* node 0 on side 0 for equal sides */
    /* errors */
    int bad[6] = {0, 0, 0, 0, 0, 0};
    CHECK(nf_taskgen_kl(w, 6, bad, &cut, NULL, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "taskgen_kl: one side is empty") == 0);
    bad[2] = 2;
    CHECK(nf_taskgen_kl(w, 6, bad, &cut, NULL, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "taskgen_kl: side of node 2 is 2 (must be 0 or 1)") == 0);
    CHECK(nf_taskgen_kl(w, 1, bad, &cut, NULL, &err) == NF_EINVAL);
    CHECK(nf_taskgen_kl_restarts(w, 6, 6, 3, &r1, s1, c1, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "taskgen_kl_restarts: side 0 must hold 1..5 nodes (got 6)") == 0);
    CHECK(nf_taskgen_kl_restarts(w, 6, 3, 0, &r1, s1, c1, &err) == NF_EINVAL);
    CHECK(nf_taskgen_bisect_exact(w, 25, 3, s1, &cut, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "taskgen_bisect_exact: at most 24 nodes (got 25)") == 0);
}

static void test_trim_hand_made(void)
{
    /* 7 devices: side 0 = {0,1,2,3}, side 1 = {4,5,6}. Correlations across:
     *        4     5     6
     *   0  0.9   0.8   0.7    (sum 2.4: the most like side 1)
     *   1  0.1   0.2   0.1    (0.4)
     *   2  0.3   0.2   0.1    (0.6)
     *   3  0.5   0.0   0.6    (1.1)
     * m = 2, k = 2. Round 1: remove 0 (2.4); then side 1 against {1,2,3}: 4 = 0.9, 5 = 0.4, 6 = 0.8 -> remove 4.
     * Round 2: side 0 against {5,6}: 1 = 0.3, 2 = 0.3, 3 = 0.6 -> remove 3; side 1 has 2: done.
     * Left: sources {1,2}, targets {5,6}. */
    const double cross[4][3] = {{0.9, 0.8, 0.7}, {0.1, 0.2, 0.1}, {0.3, 0.2, 0.1}, {0.5, 0.0, 0.6}};
    double w[49];
    for (int i = 0; i < 49; i++) w[i] = 0.95;   /* within sides: never read by trim */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) w[i * 7 + 4 + j] = w[(4 + j) * 7 + i] = cross[i][j];
    int side[7] = {0, 0, 0, 0, 1, 1, 1}, removed[7];
    nf_err err;
    CHECK(nf_taskgen_trim(w, 7, side, 2, 2, removed, &err) == NF_OK);
    const int want[7] = {-1, 0, 0, -1, -1, 1, 1};
    CHECK(memcmp(side, want, sizeof want) == 0);
    CHECK(removed[0] == 0 && removed[1] == 4 && removed[2] == 3 && removed[3] == -1);
    /* ties go to the lower index: 1 and 2 tie at 0.3 against {5,6}; trimming to 1 source removes 1 */
    int side2[7] = {-1, 0, 0, -1, -1, 1, 1};
    CHECK(nf_taskgen_trim(w, 7, side2, 1, 2, removed, &err) == NF_OK);
    CHECK(side2[1] == -1 && side2[2] == 0 && removed[0] == 1);
    /* impossible requests */
    int side3[7] = {0, 0, 0, 0, 1, 1, 1};
    CHECK(nf_taskgen_trim(w, 7, side3, 2, 4, NULL, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "taskgen_trim: sides of 4 and 3 nodes cannot give 2 and 4") == 0);
    CHECK(nf_taskgen_trim(w, 7, side3, 0, 1, NULL, &err) == NF_EINVAL);
}

int main(void)
{
    RUN(test_spearman_matrix);
    RUN(test_kl_against_brute_force);
    RUN(test_kl_known_graph);
    RUN(test_trim_hand_made);
    return CT_DONE();
}
