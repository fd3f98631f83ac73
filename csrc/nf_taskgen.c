/* nf_taskgen.c — device Spearman matrix, Kernighan–Lin bisection, trimming (see nf_taskgen.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nf_metrics.h"
#include "nf_taskgen.h"

static nf_status oom(const char *name, nf_err *err)
{
    return nf_seterr(err, NF_ENOMEM, "%s: out of memory", name);
}

static double wt(const double *w, int d, int i, int j)
{
    double v = w[(size_t)i * (size_t)d + (size_t)j];
    return isnan(v) ? 0.0 : v;
}

/* ------------------------------------------------------------- Spearman matrix */

/* Ranks of column c over the rows measured in column g (a subset of c's), cached per (c, group of g). */
static const double *ranks_on(const float *col, double **cache, double *vals, int d, int64_t n, size_t nn, int c,
                              int g, nf_err *err, nf_status *st)
{
    double **slot = &cache[(size_t)c * (size_t)d + (size_t)g];
    if (*slot) return *slot;
    double *r = malloc(nn * sizeof *r);
    if (!r) { *st = oom("taskgen_spearman_matrix", err); return NULL; }
    const float *cc = col + (size_t)c * nn, *gc = col + (size_t)g * nn;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(gc[i])) vals[m++] = cc[i];
    *st = nf_rank_average(vals, m, r, err);
    *slot = r;
    return *st ? NULL : r;
}

nf_status nf_taskgen_spearman_matrix(const float *x, int64_t n, int d, int64_t ld, double *rho, int64_t *count,
                                     nf_err *err)
{
    const char *fn = "taskgen_spearman_matrix";
    if (n < 0 || d < 0) return nf_seterr(err, NF_EINVAL, "%s: negative size (n %lld, d %d)", fn, (long long)n, d);
    if (ld < d) return nf_seterr(err, NF_EINVAL, "%s: row stride %lld < %d columns", fn, (long long)ld, d);
    if ((n > 0 && d > 0 && !x) || (d > 0 && !rho)) return nf_seterr(err, NF_EINVAL, "%s: NULL array", fn);
    if (d == 0) return NF_OK;
    size_t nn = (size_t)(n ? n : 1), dd = (size_t)d;
    /* per column: its values (NaN kept), measured count, mask group (the first column with the same missing
     * rows); cache[c * d + g]: ranks of column c over the rows measured in group g (when they are a subset
     * of c's), so a pair costs two cached rankings and one pass unless neither set contains the other */
    float *col = malloc(dd * nn * sizeof *col);
    double *vals = malloc(nn * sizeof *vals);
    int64_t *nm = malloc(dd * sizeof *nm);
    int *group = malloc(dd * sizeof *group);
    signed char *sub = malloc(dd * dd);          /* sub[g * d + h]: group g's rows within group h's (-1 unknown) */
    double **cache = calloc(dd * dd, sizeof *cache);
    if (!col || !vals || !nm || !group || !sub || !cache) {
        free(col); free(vals); free(nm); free(group); free(sub); free(cache);
        return oom(fn, err);
    }
    memset(sub, -1, dd * dd);
    nf_status st = NF_OK;
    for (int c = 0; c < d; c++) {
        float *cc = col + (size_t)c * nn;
        int64_t m = 0;
        for (int64_t r = 0; r < n; r++) {
            cc[r] = x[(size_t)r * (size_t)ld + (size_t)c];
            m += !isnan(cc[r]);
        }
        nm[c] = m;
        group[c] = c;
        for (int p = 0; p < c && group[c] == c; p++) {
            if (group[p] != p || nm[p] != m) continue;
            const float *pc = col + (size_t)p * nn;
            int same = 1;
            for (int64_t r = 0; r < n && same; r++) same = isnan(pc[r]) == isnan(cc[r]);
            if (same) group[c] = p;
        }
    }
    for (int i = 0; i < d && !st; i++) {
        const double *ri = ranks_on(col, cache, vals, d, n, nn, i, group[i], err, &st);
        if (!ri) break;
        rho[(size_t)i * dd + (size_t)i] = isnan(nf_pearson_d(ri, ri, nm[i])) ? NAN : 1.0;
        if (count) count[(size_t)i * dd + (size_t)i] = nm[i];
        for (int j = i + 1; j < d && !st; j++) {
            int gi = group[i], gj = group[j];
            /* the common rows are one column's own measured rows when that set lies within the other's */
            int common = -1;
            for (int t = 0; t < 2 && common < 0; t++) {
                int g = t ? gi : gj, h = t ? gj : gi;
                signed char *sv = &sub[(size_t)g * dd + (size_t)h];
                if (*sv < 0) {
                    const float *a = col + (size_t)g * nn, *b = col + (size_t)h * nn;
                    int in = 1;
                    for (int64_t r = 0; r < n && in; r++) in = isnan(a[r]) || !isnan(b[r]);
                    *sv = (signed char)in;
                }
                if (*sv) common = g;
            }
            double r;
            int64_t m;
            if (common >= 0) {
                m = nm[common];
                const double *a = ranks_on(col, cache, vals, d, n, nn, i, common, err, &st);
                const double *b = a ? ranks_on(col, cache, vals, d, n, nn, j, common, err, &st) : NULL;
                if (!b) break;
                r = nf_pearson_d(a, b, m);
            } else {
                const float *a = col + (size_t)i * nn, *b = col + (size_t)j * nn;
                m = nf_metric_count_valid(a, b, n);
                st = nf_spearman(a, b, n, &r, err);
            }
            rho[(size_t)i * dd + (size_t)j] = rho[(size_t)j * dd + (size_t)i] = r;
            if (count) count[(size_t)i * dd + (size_t)j] = count[(size_t)j * dd + (size_t)i] = m;
        }
    }
    for (size_t t = 0; t < dd * dd; t++) free(cache[t]);
    free(col); free(vals); free(nm); free(group); free(sub); free(cache);
    return st;
}

/* ---------------------------------------------------------------- bisection */

double nf_taskgen_cut(const double *w, int d, const int *side)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j < d; j++)
            if (side[i] >= 0 && side[j] >= 0 && side[i] != side[j]) s += wt(w, d, i, j);
    return s;
}

static nf_status check_graph(const char *fn, const double *w, int d, const int *side, nf_err *err)
{
    if (d < 2) return nf_seterr(err, NF_EINVAL, "%s: needs at least 2 nodes (got %d)", fn, d);
    if (!w || !side) return nf_seterr(err, NF_EINVAL, "%s: NULL array", fn);
    return NF_OK;
}

/* A rounding tolerance for "this pass improves the cut": relative to the largest weight. */
static double gain_tol(const double *w, int d)
{
    double mx = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            if (i != j && fabs(wt(w, d, i, j)) > mx) mx = fabs(wt(w, d, i, j));
    return 1e-12 * (mx > 1 ? mx : 1) * (double)d;
}

nf_status nf_taskgen_kl(const double *w, int d, int *side, double *cut, int *passes, nf_err *err)
{
    const char *fn = "taskgen_kl";
    nf_status st = check_graph(fn, w, d, side, err);
    if (st) return st;
    int n0 = 0;
    for (int i = 0; i < d; i++) {
        if (side[i] != 0 && side[i] != 1)
            return nf_seterr(err, NF_EINVAL, "%s: side of node %d is %d (must be 0 or 1)", fn, i, side[i]);
        n0 += side[i] == 0;
    }
    if (n0 == 0 || n0 == d) return nf_seterr(err, NF_EINVAL, "%s: one side is empty", fn);
    size_t dd = (size_t)d;
    double *D = malloc(dd * sizeof *D), *gains = malloc(dd * sizeof *gains);
    int *locked = malloc(dd * sizeof *locked), *pa = malloc(dd * sizeof *pa), *pb = malloc(dd * sizeof *pb);
    if (!D || !gains || !locked || !pa || !pb) {
        free(D); free(gains); free(locked); free(pa); free(pb);
        return oom(fn, err);
    }
    double tol = gain_tol(w, d);
    int npass = 0, steps = n0 < d - n0 ? n0 : d - n0;
    for (;;) {
        npass++;
        for (int i = 0; i < d; i++) {
            double e = 0, in = 0;
            for (int j = 0; j < d; j++) {
                if (j == i) continue;
                if (side[j] == side[i]) in += wt(w, d, i, j);
                else e += wt(w, d, i, j);
            }
            D[i] = e - in;
            locked[i] = 0;
        }
        for (int s = 0; s < steps; s++) {
            int ba = -1, bb = -1;
            double bg = 0;
            for (int a = 0; a < d; a++) {
                if (locked[a] || side[a] != 0) continue;
                for (int b = 0; b < d; b++) {
                    if (locked[b] || side[b] != 1) continue;
                    double g = D[a] + D[b] - 2 * wt(w, d, a, b);
                    if (ba < 0 || g > bg) { ba = a; bb = b; bg = g; }
                }
            }
            pa[s] = ba;
            pb[s] = bb;
            gains[s] = bg;
            locked[ba] = locked[bb] = 1;
            /* D after a tentative swap of ba and bb (sides not changed yet) */
            for (int v = 0; v < d; v++) {
                if (locked[v]) continue;
                double wa = wt(w, d, v, ba), wb = wt(w, d, v, bb);
                if (side[v] == 0) D[v] += 2 * wa - 2 * wb;
                else D[v] += 2 * wb - 2 * wa;
            }
        }
        double best = 0, run = 0;
        int kbest = 0;
        for (int s = 0; s < steps; s++) {
            run += gains[s];
            if (run > best) { best = run; kbest = s + 1; }
        }
        if (!(best > tol) || npass >= 1000) break;
        for (int s = 0; s < kbest; s++) { side[pa[s]] = 1; side[pb[s]] = 0; }
    }
    if (cut) *cut = nf_taskgen_cut(w, d, side);
    if (passes) *passes = npass;
    free(D); free(gains); free(locked); free(pa); free(pb);
    return NF_OK;
}

/* node 0 on side 0 for equal sides */
static void canonical(int *side, int d, int n0)
{
    if (2 * n0 != d || side[0] == 0) return;
    for (int i = 0; i < d; i++) side[i] = 1 - side[i];
}

nf_status nf_taskgen_kl_restarts(const double *w, int d, int n0, int restarts, nf_rng *rng, int *sides,
                                 double *cuts, nf_err *err)
{
    const char *fn = "taskgen_kl_restarts";
    if (d < 2) return nf_seterr(err, NF_EINVAL, "%s: needs at least 2 nodes (got %d)", fn, d);
    if (n0 < 1 || n0 >= d) return nf_seterr(err, NF_EINVAL, "%s: side 0 must hold 1..%d nodes (got %d)", fn, d - 1, n0);
    if (restarts < 1) return nf_seterr(err, NF_EINVAL, "%s: restarts must be >= 1 (got %d)", fn, restarts);
    if (!w || !rng || !sides || !cuts) return nf_seterr(err, NF_EINVAL, "%s: NULL array", fn);
    int64_t *perm = malloc((size_t)d * sizeof *perm);
    if (!perm) return oom(fn, err);
    nf_status st = NF_OK;
    for (int r = 0; r < restarts && !st; r++) {
        int *side = sides + (size_t)r * (size_t)d;
        nf_rng_permutation(rng, perm, d);
        for (int i = 0; i < d; i++) side[perm[i]] = i < n0 ? 0 : 1;
        st = nf_taskgen_kl(w, d, side, &cuts[r], NULL, err);
        canonical(side, d, n0);
    }
    free(perm);
    return st;
}

nf_status nf_taskgen_bisect_exact(const double *w, int d, int n0, int *side, double *cut, nf_err *err)
{
    const char *fn = "taskgen_bisect_exact";
    nf_status st = check_graph(fn, w, d, side, err);
    if (st) return st;
    if (d > 24) return nf_seterr(err, NF_EINVAL, "%s: at most 24 nodes (got %d)", fn, d);
    if (n0 < 1 || n0 >= d) return nf_seterr(err, NF_EINVAL, "%s: side 0 must hold 1..%d nodes (got %d)", fn, d - 1, n0);
    uint32_t mask = (1u << n0) - 1, best_mask = mask, limit = 1u << d;
    double best = INFINITY;
    while (mask < limit) {
        double s = 0;
        for (int i = 0; i < d; i++) {
            if (!(mask >> i & 1u)) continue;
            for (int j = 0; j < d; j++)
                if (!(mask >> j & 1u)) s += wt(w, d, i, j);
        }
        if (s < best) { best = s; best_mask = mask; }
        /* Gosper's hack: the next mask with the same number of bits */
        uint32_t c = mask & (0u - mask), r = mask + c;
        if (r == 0) break;
        mask = (((r ^ mask) >> 2) / c) | r;
    }
    for (int i = 0; i < d; i++) side[i] = best_mask >> i & 1u ? 0 : 1;
    canonical(side, d, n0);
    if (cut) *cut = nf_taskgen_cut(w, d, side);
    return NF_OK;
}

/* ------------------------------------------------------------------ trimming */

static int most_connected(const double *w, int d, const int *side, int from, int to)
{
    int best = -1;
    double bs = 0;
    for (int i = 0; i < d; i++) {
        if (side[i] != from) continue;
        double s = 0;
        for (int j = 0; j < d; j++)
            if (side[j] == to) s += wt(w, d, i, j);
        if (best < 0 || s > bs) { best = i; bs = s; }
    }
    return best;
}

nf_status nf_taskgen_trim(const double *w, int d, int *side, int m, int k, int *removed, nf_err *err)
{
    const char *fn = "taskgen_trim";
    if (d < 2) return nf_seterr(err, NF_EINVAL, "%s: needs at least 2 nodes (got %d)", fn, d);
    if (!w || !side) return nf_seterr(err, NF_EINVAL, "%s: NULL array", fn);
    if (m < 1 || k < 1) return nf_seterr(err, NF_EINVAL, "%s: m and k must be >= 1 (got %d, %d)", fn, m, k);
    int n0 = 0, n1 = 0;
    for (int i = 0; i < d; i++) {
        if (side[i] < -1 || side[i] > 1)
            return nf_seterr(err, NF_EINVAL, "%s: side of node %d is %d (must be -1, 0 or 1)", fn, i, side[i]);
        n0 += side[i] == 0;
        n1 += side[i] == 1;
    }
    if (n0 < m || n1 < k)
        return nf_seterr(err, NF_EINVAL, "%s: sides of %d and %d nodes cannot give %d and %d", fn, n0, n1, m, k);
    int nr = 0;
    while (n0 > m || n1 > k) {
        if (n0 > m) {
            int v = most_connected(w, d, side, 0, 1);
            side[v] = -1;
            n0--;
            if (removed) removed[nr] = v;
            nr++;
        }
        if (n1 > k) {
            int v = most_connected(w, d, side, 1, 0);
            side[v] = -1;
            n1--;
            if (removed) removed[nr] = v;
            nr++;
        }
    }
    if (removed)
        for (int i = nr; i < d; i++) removed[i] = -1;
    return NF_OK;
}
