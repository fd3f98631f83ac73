/* nf_search.c — Pareto ranks and the 2-D hypervolume (nf_search.h). */
#include <math.h>
#include "nf_search.h"

/* Lexicographic order of points a, b on (x, y): x then y, then index (stable). */
static int before2(const double *obj, int64_t a, int64_t b)
{
    double xa = obj[2 * a], xb = obj[2 * b];
    if (xa != xb) return xa < xb;
    double ya = obj[2 * a + 1], yb = obj[2 * b + 1];
    if (ya != yb) return ya < yb;
    return a < b;
}

/* Stable bottom-up merge sort of idx[0..n) by before2; tmp holds n int64s. */
static void sort2(const double *obj, int64_t *idx, int64_t *tmp, int64_t n)
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = before2(obj, idx[j], idx[i]) ? idx[j++] : idx[i++];
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        for (int64_t k = 0; k < n; k++) idx[k] = tmp[k];
    }
}

static int has_nan(const double *row, int m)
{
    for (int j = 0; j < m; j++) if (isnan(row[j])) return 1;
    return 0;
}

/* a dominates b (minimisation): <= everywhere, < somewhere. */
static int dominates(const double *a, const double *b, int m)
{
    int strict = 0;
    for (int j = 0; j < m; j++) {
        if (a[j] > b[j]) return 0;
        if (a[j] < b[j]) strict = 1;
    }
    return strict;
}

static nf_status rank2(const double *obj, int64_t n, int32_t *rank, int64_t *scratch, int32_t *fronts)
{
    int64_t *idx = scratch, *tmp = scratch + n, *rest = scratch + 2 * n;
    int64_t live = 0;
    for (int64_t i = 0; i < n; i++) {
        rank[i] = 0;
        if (!has_nan(obj + 2 * i, 2)) idx[live++] = i;
    }
    sort2(obj, idx, tmp, live);
    int32_t f = 0;
    while (live > 0) {
        f++;
        /* sweep in (x, y) order: a point is on this front unless an earlier one has y < its y, or an
         * earlier one with a smaller x has y == its y (equal points are not dominated) */
        double best_y = INFINITY, best_x = INFINITY;
        int64_t nrest = 0;
        for (int64_t k = 0; k < live; k++) {
            int64_t i = idx[k];
            double x = obj[2 * i], y = obj[2 * i + 1];
            int dominated = y > best_y || (y == best_y && x > best_x);
            if (dominated) { rest[nrest++] = i; continue; }
            rank[i] = f;
            if (y < best_y) { best_y = y; best_x = x; }
        }
        for (int64_t k = 0; k < nrest; k++) idx[k] = rest[k];   /* still sorted */
        live = nrest;
    }
    if (fronts) *fronts = f;
    return NF_OK;
}

nf_status nf_pareto_rank(const double *obj, int64_t n, int m, int32_t *rank, int64_t *scratch,
                         int32_t *n_fronts, nf_err *err)
{
    if (n < 0 || m < 1) return nf_seterr(err, NF_EINVAL, "pareto_rank: n = %lld, m = %d", (long long)n, m);
    if (n > 0 && (!obj || !rank || !scratch)) return nf_seterr(err, NF_EINVAL, "pareto_rank: NULL buffer");
    if (m == 2) return rank2(obj, n, rank, scratch, n_fronts);
    int64_t *idx = scratch, *rest = scratch + n;
    int64_t live = 0;
    for (int64_t i = 0; i < n; i++) {
        rank[i] = 0;
        if (!has_nan(obj + (size_t)i * (size_t)m, m)) idx[live++] = i;
    }
    int32_t f = 0;
    while (live > 0) {
        f++;
        int64_t nrest = 0;
        for (int64_t a = 0; a < live; a++) {
            const double *pa = obj + (size_t)idx[a] * (size_t)m;
            int dom = 0;
            for (int64_t b = 0; b < live && !dom; b++)
                if (b != a) dom = dominates(obj + (size_t)idx[b] * (size_t)m, pa, m);
            if (dom) rest[nrest++] = idx[a];
            else rank[idx[a]] = f;
        }
        for (int64_t k = 0; k < nrest; k++) idx[k] = rest[k];
        live = nrest;
    }
    if (n_fronts) *n_fronts = f;
    return NF_OK;
}

nf_status nf_hypervolume2(const double *x, const double *y, int64_t n, double rx, double ry, double *out,
                          int64_t *scratch, nf_err *err)
{
    if (n < 0) return nf_seterr(err, NF_EINVAL, "hypervolume2: n = %lld", (long long)n);
    if (!out || (n > 0 && (!x || !y || !scratch))) return nf_seterr(err, NF_EINVAL, "hypervolume2: NULL buffer");
    if (!isfinite(rx) || !isfinite(ry))
        return nf_seterr(err, NF_EINVAL, "hypervolume2: the reference point (%g, %g) must be finite", rx, ry);
    /* the points inside the reference box, sorted by x then y; sweep keeping the lowest y so far */
    int64_t *idx = scratch, *tmp = scratch + n;
    int64_t live = 0;
    for (int64_t i = 0; i < n; i++)
        if (x[i] < rx && y[i] < ry) idx[live++] = i;   /* false for NaN */
    for (int64_t w = 1; w < live; w *= 2) {
        for (int64_t lo = 0; lo < live; lo += 2 * w) {
            int64_t mid = lo + w < live ? lo + w : live, hi = lo + 2 * w < live ? lo + 2 * w : live;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int64_t a = idx[i], b = idx[j];
                int jfirst = x[b] < x[a] || (x[b] == x[a] && y[b] < y[a]);
                tmp[k++] = jfirst ? idx[j++] : idx[i++];
            }
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        for (int64_t k = 0; k < live; k++) idx[k] = tmp[k];
    }
    double area = 0, best_y = ry;
    for (int64_t k = 0; k < live; k++) {
        int64_t i = idx[k];
        if (y[i] < best_y) { area += (rx - x[i]) * (best_y - y[i]); best_y = y[i]; }
    }
    *out = area;
    return NF_OK;
}

nf_status nf_search_select(const double *obj, const float *logms, int m, int64_t n, const double *log_budget,
                           const double *sigma, const uint8_t *skip, double incumbent, int64_t k, int64_t *out,
                           double *score, int64_t *n_out, nf_err *err)
{
    if (n < 0 || m < 0 || k < 0)
        return nf_seterr(err, NF_EINVAL, "search_select: n = %lld, m = %d, k = %lld", (long long)n, m, (long long)k);
    if (!n_out || (n > 0 && !obj) || (m > 0 && n > 0 && !logms) || (m > 0 && (!log_budget || !sigma)) ||
        (k > 0 && (!out || !score)))
        return nf_seterr(err, NF_EINVAL, "search_select: NULL buffer");
    for (int j = 0; j < m; j++)
        if (isnan(log_budget[j]) || !(sigma[j] >= 0))
            return nf_seterr(err, NF_EINVAL, "search_select: constraint %d: log budget %g, sigma %g", j + 1,
                             log_budget[j], sigma[j]);
    double base = incumbent;
    if (isinf(incumbent) && incumbent < 0) {
        double lo = INFINITY;
        for (int64_t i = 0; i < n; i++) if (obj[i] < lo) lo = obj[i];
        base = lo - 1;
    }
    int64_t have = 0;
    for (int64_t i = 0; i < n && k > 0; i++) {
        if ((skip && skip[i]) || isnan(obj[i])) continue;
        double s = obj[i] - base;
        if (!(s > 0)) continue;
        for (int j = 0; j < m && s > 0; j++) {
            double l = logms[(size_t)j * (size_t)n + (size_t)i];
            if (isnan(l)) s = 0;
            else if (sigma[j] == 0) s = l <= log_budget[j] ? s : 0;
            else s *= 0.5 * erfc(-(log_budget[j] - l) / (sigma[j] * 1.4142135623730951));
        }
        if (!(s > 0)) continue;
        if (have == k && !(s > score[k - 1])) continue;   /* ties keep the earlier index */
        int64_t pos = have < k ? have++ : k - 1;
        while (pos > 0 && s > score[pos - 1]) {
            score[pos] = score[pos - 1];
            out[pos] = out[pos - 1];
            pos--;
        }
        score[pos] = s;
        out[pos] = i;
    }
    *n_out = have;
    return NF_OK;
}

nf_status nf_search_children(const uint8_t *parents, const uint8_t *mates, int64_t n, int len, int n_choices,
                             nf_rng *rng, uint8_t *out, nf_err *err)
{
    if (n < 0 || len < 1 || n_choices < 2 || n_choices > 256)
        return nf_seterr(err, NF_EINVAL, "search_children: n = %lld, len = %d, n_choices = %d", (long long)n, len,
                         n_choices);
    if (n > 0 && (!parents || !rng || !out)) return nf_seterr(err, NF_EINVAL, "search_children: NULL buffer");
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = parents + (size_t)i * (size_t)len, *q = mates ? mates + (size_t)i * (size_t)len : NULL;
        uint8_t *c = out + (size_t)i * (size_t)len;
        for (int k = 0; k < len; k++) {
            if (p[k] >= n_choices || (q && q[k] >= n_choices))
                return nf_seterr(err, NF_EINVAL, "search_children: child %lld position %d: choice out of range",
                                 (long long)i + 1, k + 1);
            c[k] = (q && (nf_rng_next(rng) >> 63)) ? q[k] : p[k];
        }
        int pos = (int)nf_rng_below(rng, (uint64_t)len);
        int v = (int)nf_rng_below(rng, (uint64_t)(n_choices - 1));
        if (v >= c[pos]) v++;
        c[pos] = (uint8_t)v;
    }
    return NF_OK;
}
