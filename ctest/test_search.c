/* test_search.c — Pareto ranks and the 2-D hypervolume against hand-computed cases and brute force. */
#include <math.h>
#include <stdlib.h>
#include "ctest.h"
#include "nf_search.h"

static void test_hv_hand(void)
{
    int64_t s[16];
    double out = -1;
    /* one point: a box */
    double x1[] = {1}, y1[] = {2};
    CHECK(nf_hypervolume2(x1, y1, 1, 4, 5, &out, s, NULL) == NF_OK);
    CHECK_NEAR(out, 3 * 3, 1e-12);
    /* staircase (1,3) (2,2) (3,1), ref (4,4): 3*1 + 2*1 + 1*1 ... = boxes union = 6 */
    double x3[] = {3, 1, 2}, y3[] = {1, 3, 2};
    CHECK(nf_hypervolume2(x3, y3, 3, 4, 4, &out, s, NULL) == NF_OK);
    CHECK_NEAR(out, 6, 1e-12);
    /* a dominated point, a repeat, a point outside the box and a NaN add nothing */
    double x5[] = {3, 1, 2, 2.5, 1, 9, NAN}, y5[] = {1, 3, 2, 2.5, 3, 0, 0};
    CHECK(nf_hypervolume2(x5, y5, 7, 4, 4, &out, s, NULL) == NF_OK);
    CHECK_NEAR(out, 6, 1e-12);
    /* no point: 0 */
    CHECK(nf_hypervolume2(NULL, NULL, 0, 1, 1, &out, NULL, NULL) == NF_OK);
    CHECK_NEAR(out, 0, 0);
    nf_err err;
    CHECK(nf_hypervolume2(x1, y1, 1, NAN, 1, &out, s, &err) == NF_EINVAL);
    CHECK(nf_hypervolume2(x1, y1, -1, 1, 1, &out, s, &err) == NF_EINVAL);
}

/* Monte-Carlo-free brute force: area on a fine grid of integer points. */
static void test_hv_grid(void)
{
    double x[12], y[12];
    int64_t s[24];
    unsigned seed = 7;
    for (int rep = 0; rep < 50; rep++) {
        int n = 1 + rep % 12;
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u; x[i] = (double)((seed >> 16) % 20);
            seed = seed * 1103515245u + 12345u; y[i] = (double)((seed >> 16) % 20);
        }
        double hv;
        CHECK(nf_hypervolume2(x, y, n, 20, 20, &hv, s, NULL) == NF_OK);
        int cells = 0;   /* unit cells [a, a+1] x [b, b+1] covered by some box */
        for (int a = 0; a < 20; a++)
            for (int b = 0; b < 20; b++) {
                int cov = 0;
                for (int i = 0; i < n && !cov; i++) cov = x[i] <= a && y[i] <= b;
                cells += cov;
            }
        CHECK_NEAR(hv, cells, 1e-9);
    }
}

static int brute_dominated(const double *o, int n, int m, const int *alive, int i)
{
    for (int j = 0; j < n; j++) {
        if (j == i || !alive[j]) continue;
        int le = 1, lt = 0;
        for (int k = 0; k < m; k++) {
            if (o[j * m + k] > o[i * m + k]) le = 0;
            if (o[j * m + k] < o[i * m + k]) lt = 1;
        }
        if (le && lt) return 1;
    }
    return 0;
}

static void brute_rank(const double *o, int n, int m, int32_t *rank)
{
    int alive[64], f = 0, left = n;
    for (int i = 0; i < n; i++) { alive[i] = 1; rank[i] = 0; }
    while (left > 0) {
        f++;
        int on[64];
        for (int i = 0; i < n; i++) on[i] = alive[i] && !brute_dominated(o, n, m, alive, i);
        for (int i = 0; i < n; i++) if (on[i]) { rank[i] = f; alive[i] = 0; left--; }
    }
}

static void test_rank_brute(void)
{
    double o[64 * 3];
    int32_t r[64], b[64];
    int64_t s[64 * 3];
    unsigned seed = 11;
    for (int rep = 0; rep < 200; rep++) {
        int n = 1 + rep % 64, m = rep % 3 == 0 ? 3 : 2;
        for (int i = 0; i < n * m; i++) {
            seed = seed * 1103515245u + 12345u;
            o[i] = (double)((seed >> 16) % 7);   /* many ties */
        }
        int32_t fronts = 0;
        CHECK(nf_pareto_rank(o, n, m, r, s, &fronts, NULL) == NF_OK);
        brute_rank(o, n, m, b);
        int same = 1, maxr = 0;
        for (int i = 0; i < n; i++) { same &= r[i] == b[i]; if (b[i] > maxr) maxr = b[i]; }
        CHECK(same);
        CHECK(fronts == maxr);
    }
}

static void test_rank_hand(void)
{
    /* (1,3) (2,2) (3,1) front 1; (2,3) (3,2) front 2; (3,3) front 3; (1,3) repeated: front 1; NaN: 0 */
    double o[] = {1, 3, 2, 2, 3, 1, 2, 3, 3, 2, 3, 3, 1, 3, NAN, 0};
    int32_t r[8], fronts;
    int64_t s[24];
    CHECK(nf_pareto_rank(o, 8, 2, r, s, &fronts, NULL) == NF_OK);
    int32_t want[] = {1, 1, 1, 2, 2, 3, 1, 0};
    for (int i = 0; i < 8; i++) CHECK(r[i] == want[i]);
    CHECK(fronts == 3);
    nf_err err;
    CHECK(nf_pareto_rank(o, 8, 0, r, s, &fronts, &err) == NF_EINVAL);
    CHECK(nf_pareto_rank(NULL, 0, 2, NULL, NULL, &fronts, &err) == NF_OK && fronts == 0);
}

/* exhaustive constrained selection (sigma 0) against a brute-force scan */
static void test_select_brute(void)
{
    enum { N = 300 };
    double obj[N], lb[2] = {log(5.0), log(7.0)}, sd[2] = {0, 0}, sc[10];
    float lm[2 * N];
    uint8_t skip[N];
    int64_t out[10], got;
    unsigned seed = 3;
    for (int rep = 0; rep < 40; rep++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 1103515245u + 12345u; obj[i] = (double)((seed >> 16) % 1000) / 10;
            seed = seed * 1103515245u + 12345u; lm[i] = (float)log(1 + (double)((seed >> 16) % 100) / 10);
            seed = seed * 1103515245u + 12345u; lm[N + i] = (float)log(1 + (double)((seed >> 16) % 100) / 10);
            skip[i] = (uint8_t)(i % 7 == 0);
        }
        int m = 1 + rep % 2;
        CHECK(nf_search_select(obj, lm, m, N, lb, sd, skip, -INFINITY, 10, out, sc, &got, NULL) == NF_OK);
        /* brute force: the best objectives among feasible rows, ties to the lower index */
        int taken[N] = {0};
        int64_t want = 0;
        for (int r = 0; r < 10; r++) {
            int best = -1;
            for (int i = 0; i < N; i++) {
                int ok = !skip[i] && !taken[i] && lm[i] <= lb[0] && (m < 2 || lm[N + i] <= lb[1]);
                if (ok && (best < 0 || obj[i] > obj[best])) best = i;
            }
            if (best < 0) break;
            taken[best] = 1;
            CHECK(r < got && out[r] == best);
            want++;
        }
        CHECK(got == want);
    }
    /* soft constraints: the score is gain × Phi; a sure-feasible smaller gain can beat a doubtful larger one */
    double o2[] = {10, 12, 11}, lb1[] = {0}, sd1[] = {0.1};
    float l2[] = {-1.0f, 0.1f, -0.05f};   /* P = ~1, Phi(-1) = 0.159, Phi(0.5) = 0.691 */
    CHECK(nf_search_select(o2, l2, 1, 3, lb1, sd1, NULL, 9, 3, out, sc, &got, NULL) == NF_OK);
    CHECK(got == 3 && out[0] == 2 && out[1] == 0 && out[2] == 1);
    CHECK_NEAR(sc[0], 2 * 0.691462461274955, 1e-6);
    CHECK_NEAR(sc[1], 1.0, 1e-6);
    CHECK_NEAR(sc[2], 3 * 0.158655253931457, 1e-6);
    /* nothing better than the incumbent: nothing returned */
    CHECK(nf_search_select(o2, l2, 1, 3, lb1, sd1, NULL, 12, 3, out, sc, &got, NULL) == NF_OK && got == 0);
    nf_err err;
    double bad[] = {NAN};
    CHECK(nf_search_select(o2, l2, 1, 3, bad, sd1, NULL, 9, 3, out, sc, &got, &err) == NF_EINVAL);
}

/* children: one position changed (to another valid choice) without mates; with mates every other position
 * comes from the parent or the mate, both used over many draws; the same seed gives the same children */
static void test_children(void)
{
    enum { N = 500, LEN = 22, K = 9 };
    static uint8_t par[N * LEN], mate[N * LEN], out[N * LEN], again[N * LEN];
    nf_rng rng;
    nf_rng_seed(&rng, 5);
    for (int i = 0; i < N * LEN; i++) { par[i] = (uint8_t)nf_rng_below(&rng, K); mate[i] = (uint8_t)nf_rng_below(&rng, K); }
    nf_rng_seed(&rng, 9);
    CHECK(nf_search_children(par, NULL, N, LEN, K, &rng, out, NULL) == NF_OK);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        int diff = 0;
        for (int k = 0; k < LEN; k++) { diff += out[i * LEN + k] != par[i * LEN + k]; ok &= out[i * LEN + k] < K; }
        ok &= diff == 1;
    }
    CHECK(ok);
    nf_rng_seed(&rng, 9);
    CHECK(nf_search_children(par, NULL, N, LEN, K, &rng, again, NULL) == NF_OK);
    int same = 1;
    for (int i = 0; i < N * LEN; i++) same &= out[i] == again[i];
    CHECK(same);
    CHECK(nf_search_children(par, mate, N, LEN, K, &rng, out, NULL) == NF_OK);
    int from_p = 0, from_m = 0, other = 0;
    for (int i = 0; i < N * LEN; i++) {
        if (par[i] == mate[i]) continue;
        if (out[i] == par[i]) from_p++; else if (out[i] == mate[i]) from_m++; else other++;
    }
    CHECK(from_p > 1500 && from_m > 1500);
    CHECK(other <= N);   /* at most the one mutated position per child */
    nf_err err;
    uint8_t bad[LEN] = {9};
    CHECK(nf_search_children(bad, NULL, 1, LEN, K, &rng, out, &err) == NF_EINVAL);
    CHECK(nf_search_children(par, NULL, 1, LEN, 1, &rng, out, &err) == NF_EINVAL);
}

int main(void)
{
    RUN(test_children);
    RUN(test_select_brute);
    RUN(test_hv_hand);
    RUN(test_hv_grid);
    RUN(test_rank_hand);
    RUN(test_rank_brute);
    return CT_DONE();
}
