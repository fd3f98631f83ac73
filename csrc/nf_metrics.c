/* nf_metrics.c — rank correlations, error metrics and top-k agreement (see nf_metrics.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nf_metrics.h"

/* ------------------------------------------------------------------ sorting */

/* Stable bottom-up merge sort of idx by cmp(ctx, a, b) < 0; tmp has n entries. */
typedef int (*cmp_fn)(const void *ctx, int64_t a, int64_t b);

static void merge_sort(int64_t *idx, int64_t *tmp, int64_t n, cmp_fn cmp, const void *ctx)
{
    int64_t *src = idx, *dst = tmp;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = cmp(ctx, src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        int64_t *t = src; src = dst; dst = t;
    }
    if (src != idx) memcpy(idx, src, (size_t)n * sizeof *idx);
}

static int cmp_value(const void *ctx, int64_t a, int64_t b)
{
    const double *v = ctx;
    return v[a] < v[b] ? -1 : v[a] > v[b] ? 1 : 0;
}

typedef struct { const double *x, *y; } xy_ctx;

static int cmp_xy(const void *ctx, int64_t a, int64_t b)
{
    const xy_ctx *c = ctx;
    if (c->x[a] != c->x[b]) return c->x[a] < c->x[b] ? -1 : 1;
    return c->y[a] < c->y[b] ? -1 : c->y[a] > c->y[b] ? 1 : 0;
}

static nf_status check_args(const char *name, const void *a, const void *b, int64_t n, nf_err *err)
{
    if (n < 0) return nf_seterr(err, NF_EINVAL, "%s: length is negative (%lld)", name, (long long)n);
    if (n > 0 && (!a || !b)) return nf_seterr(err, NF_EINVAL, "%s: NULL array with length %lld", name, (long long)n);
    return NF_OK;
}

static nf_status oom(const char *name, nf_err *err)
{
    return nf_seterr(err, NF_ENOMEM, "%s: out of memory", name);
}

nf_status nf_argsort(const double *v, int64_t n, int64_t *idx, nf_err *err)
{
    nf_status st = check_args("argsort", v, idx, n, err);
    if (st) return st;
    int64_t *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!tmp) return oom("argsort", err);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    merge_sort(idx, tmp, n, cmp_value, v);
    free(tmp);
    return NF_OK;
}

/* ranks from a sorted order (shared by nf_rank_average and spearman) */
static void ranks_from_order(const double *v, const int64_t *idx, int64_t n, double *ranks)
{
    int64_t i = 0;
    while (i < n) {
        int64_t j = i + 1;
        while (j < n && v[idx[j]] == v[idx[i]]) j++;
        double r = 0.5 * (double)(i + 1 + j);   /* mean of ranks i+1 .. j */
        for (int64_t t = i; t < j; t++) ranks[idx[t]] = r;
        i = j;
    }
}

nf_status nf_rank_average(const double *v, int64_t n, double *ranks, nf_err *err)
{
    nf_status st = check_args("rank_average", v, ranks, n, err);
    if (st) return st;
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx) return oom("rank_average", err);
    st = nf_argsort(v, n, idx, err);
    if (!st) ranks_from_order(v, idx, n, ranks);
    free(idx);
    return st;
}

/* ------------------------------------------------------------- valid pairs */

int64_t nf_metric_count_valid(const float *pred, const float *truth, int64_t n)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += !isnan(pred[i]) && !isnan(truth[i]);
    return m;
}

/* Copy the valid pairs into doubles: x (pred), y (truth), each m entries. Allocates both in one block. */
static nf_status valid_pairs(const char *name, const float *pred, const float *truth, int64_t n,
                             double **x, double **y, int64_t *m, nf_err *err)
{
    nf_status st = check_args(name, pred, truth, n, err);
    if (st) return st;
    int64_t c = nf_metric_count_valid(pred, truth, n);
    double *buf = malloc((size_t)(c ? 2 * c : 1) * sizeof *buf);
    if (!buf) return oom(name, err);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(pred[i]) || isnan(truth[i])) continue;
        buf[k] = pred[i];
        buf[c + k] = truth[i];
        k++;
    }
    *x = buf;
    *y = buf + c;
    *m = c;
    return NF_OK;
}

double nf_pearson_d(const double *x, const double *y, int64_t m)
{
    if (m < 2) return NAN;
    double mx = 0, my = 0;
    for (int64_t i = 0; i < m; i++) { mx += x[i]; my += y[i]; }
    mx /= (double)m;
    my /= (double)m;
    double sxx = 0, syy = 0, sxy = 0;
    for (int64_t i = 0; i < m; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    if (!(sxx > 0) || !(syy > 0)) return NAN;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

/* ------------------------------------------------------------- correlations */

nf_status nf_pearson(const float *pred, const float *truth, int64_t n, double *out, nf_err *err)
{
    double *x, *y;
    int64_t m;
    nf_status st = valid_pairs("pearson", pred, truth, n, &x, &y, &m, err);
    if (st) return st;
    *out = nf_pearson_d(x, y, m);
    free(x);
    return NF_OK;
}

nf_status nf_spearman(const float *pred, const float *truth, int64_t n, double *out, nf_err *err)
{
    double *x, *y;
    int64_t m;
    nf_status st = valid_pairs("spearman", pred, truth, n, &x, &y, &m, err);
    if (st) return st;
    size_t cnt = (size_t)(m ? m : 1);
    double *rx = malloc(2 * cnt * sizeof *rx);
    int64_t *idx = malloc(2 * cnt * sizeof *idx);
    if (!rx || !idx) {
        free(x); free(rx); free(idx);
        return oom("spearman", err);
    }
    double *ry = rx + cnt;
    int64_t *tmp = idx + cnt;
    for (int64_t i = 0; i < m; i++) idx[i] = i;
    merge_sort(idx, tmp, m, cmp_value, x);
    ranks_from_order(x, idx, m, rx);
    for (int64_t i = 0; i < m; i++) idx[i] = i;
    merge_sort(idx, tmp, m, cmp_value, y);
    ranks_from_order(y, idx, m, ry);
    *out = nf_pearson_d(rx, ry, m);
    free(x); free(rx); free(idx);
    return NF_OK;
}

/* Sum over groups of equal consecutive values (in sorted order) of t(t-1)/2. */
static int64_t tie_pairs(const double *v, int64_t m)
{
    int64_t s = 0, i = 0;
    while (i < m) {
        int64_t j = i + 1;
        while (j < m && v[j] == v[i]) j++;
        int64_t t = j - i;
        s += t * (t - 1) / 2;
        i = j;
    }
    return s;
}

/* Merge sort of v (ascending) returning the number of inversions (pairs i<j with v[i] > v[j]). */
static int64_t sort_count_inversions(double *v, double *tmp, int64_t m)
{
    int64_t inv = 0;
    double *src = v, *dst = tmp;
    for (int64_t w = 1; w < m; w *= 2) {
        for (int64_t lo = 0; lo < m; lo += 2 * w) {
            int64_t mid = lo + w < m ? lo + w : m, hi = lo + 2 * w < m ? lo + 2 * w : m;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (src[j] < src[i]) { inv += mid - i; dst[k++] = src[j++]; }
                else dst[k++] = src[i++];
            }
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        double *t = src; src = dst; dst = t;
    }
    if (src != v) memcpy(v, src, (size_t)m * sizeof *v);
    return inv;
}

static double tau_b(int64_t m, int64_t n1, int64_t n2, int64_t n3, int64_t discordant)
{
    double n0 = (double)m * (double)(m - 1) / 2.0;
    double den = (n0 - (double)n1) * (n0 - (double)n2);
    if (!(den > 0)) return NAN;
    double num = n0 - (double)n1 - (double)n2 + (double)n3 - 2.0 * (double)discordant;
    double t = num / sqrt(den);
    return t > 1 ? 1 : t < -1 ? -1 : t;
}

nf_status nf_kendall(const float *pred, const float *truth, int64_t n, double *out, nf_err *err)
{
    double *x, *y;
    int64_t m;
    nf_status st = valid_pairs("kendall", pred, truth, n, &x, &y, &m, err);
    if (st) return st;
    if (m < 2) { *out = NAN; free(x); return NF_OK; }
    int64_t *idx = malloc(2 * (size_t)m * sizeof *idx);
    double *sx = malloc(3 * (size_t)m * sizeof *sx);
    if (!idx || !sx) {
        free(x); free(idx); free(sx);
        return oom("kendall", err);
    }
    double *sy = sx + m, *tmp = sy + m;
    for (int64_t i = 0; i < m; i++) idx[i] = i;
    xy_ctx ctx = {x, y};
    merge_sort(idx, idx + m, m, cmp_xy, &ctx);
    for (int64_t i = 0; i < m; i++) { sx[i] = x[idx[i]]; sy[i] = y[idx[i]]; }
    int64_t n1 = tie_pairs(sx, m);
    /* joint ties: runs equal in both x and y (consecutive after the lexicographic sort) */
    int64_t n3 = 0, i = 0;
    while (i < m) {
        int64_t j = i + 1;
        while (j < m && sx[j] == sx[i] && sy[j] == sy[i]) j++;
        n3 += (j - i) * (j - i - 1) / 2;
        i = j;
    }
    /* y is ascending within each x-tie group, so every inversion is a discordant pair */
    int64_t disc = sort_count_inversions(sy, tmp, m);
    int64_t n2 = tie_pairs(sy, m);
    *out = tau_b(m, n1, n2, n3, disc);
    free(x); free(idx); free(sx);
    return NF_OK;
}

nf_status nf_kendall_naive(const float *pred, const float *truth, int64_t n, double *out, nf_err *err)
{
    double *x, *y;
    int64_t m;
    nf_status st = valid_pairs("kendall_naive", pred, truth, n, &x, &y, &m, err);
    if (st) return st;
    int64_t n1 = 0, n2 = 0, n3 = 0, disc = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = i + 1; j < m; j++) {
            double dx = x[i] - x[j], dy = y[i] - y[j];
            n1 += dx == 0;
            n2 += dy == 0;
            n3 += dx == 0 && dy == 0;
            disc += (dx < 0 && dy > 0) || (dx > 0 && dy < 0);
        }
    *out = m < 2 ? NAN : tau_b(m, n1, n2, n3, disc);
    free(x);
    return NF_OK;
}

/* ------------------------------------------------------------------ errors */

typedef enum { ERR_MAE, ERR_RMSE, ERR_MAPE, ERR_WITHIN } err_kind;

static nf_status error_metric(const char *name, err_kind kind, const float *pred, const float *truth,
                              int64_t n, double tol, double *out, nf_err *err)
{
    nf_status st = check_args(name, pred, truth, n, err);
    if (st) return st;
    if (kind == ERR_WITHIN && !(tol >= 0))
        return nf_seterr(err, NF_EINVAL, "%s: tolerance must be >= 0 (got %g)", name, tol);
    double s = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(pred[i]) || isnan(truth[i])) continue;
        double p = pred[i], t = truth[i], d = fabs(p - t);
        m++;
        switch (kind) {
        case ERR_MAE: s += d; break;
        case ERR_RMSE: s += d * d; break;
        case ERR_MAPE: s += d / fabs(t); break;
        case ERR_WITHIN: s += d <= tol * fabs(t); break;
        }
    }
    if (m == 0) { *out = NAN; return NF_OK; }
    s /= (double)m;
    *out = kind == ERR_RMSE ? sqrt(s) : kind == ERR_MAPE ? 100.0 * s : s;
    return NF_OK;
}

nf_status nf_mae(const float *pred, const float *truth, int64_t n, double *out, nf_err *err)
{
    return error_metric("mae", ERR_MAE, pred, truth, n, 0, out, err);
}

nf_status nf_rmse(const float *pred, const float *truth, int64_t n, double *out, nf_err *err)
{
    return error_metric("rmse", ERR_RMSE, pred, truth, n, 0, out, err);
}

nf_status nf_mape(const float *pred, const float *truth, int64_t n, double *out, nf_err *err)
{
    return error_metric("mape", ERR_MAPE, pred, truth, n, 0, out, err);
}

nf_status nf_within(const float *pred, const float *truth, int64_t n, double tol, double *out, nf_err *err)
{
    return error_metric("within", ERR_WITHIN, pred, truth, n, tol, out, err);
}

/* ------------------------------------------------------------------- top-k */

/* Shared work for precision@k and overlap: membership flags of P_k, P_k+ and T_k+. */
static nf_status topk_sets(const char *name, const float *pred, const float *truth, int64_t n, int64_t k,
                           double *out, int overlap, nf_err *err)
{
    if (k < 1) return nf_seterr(err, NF_EINVAL, "%s: k must be >= 1 (got %lld)", name, (long long)k);
    double *x, *y;
    int64_t m;
    nf_status st = valid_pairs(name, pred, truth, n, &x, &y, &m, err);
    if (st) return st;
    if (k > m) { *out = NAN; free(x); return NF_OK; }
    int64_t *idx = malloc(2 * (size_t)m * sizeof *idx);
    if (!idx) { free(x); return oom(name, err); }
    for (int64_t i = 0; i < m; i++) idx[i] = i;
    merge_sort(idx, idx + m, m, cmp_value, y);
    double ty = y[idx[k - 1]];                       /* k-th smallest measurement */
    for (int64_t i = 0; i < m; i++) idx[i] = i;
    merge_sort(idx, idx + m, m, cmp_value, x);
    double tx = x[idx[k - 1]];                       /* k-th smallest prediction */
    if (!overlap) {
        int64_t hit = 0;
        for (int64_t r = 0; r < k; r++) hit += y[idx[r]] <= ty;
        *out = (double)hit / (double)k;
    } else {
        int64_t inter = 0, uni = 0;
        for (int64_t i = 0; i < m; i++) {
            int in_p = x[i] <= tx, in_t = y[i] <= ty;
            inter += in_p && in_t;
            uni += in_p || in_t;
        }
        *out = (double)inter / (double)uni;
    }
    free(x); free(idx);
    return NF_OK;
}

nf_status nf_precision_at_k(const float *pred, const float *truth, int64_t n, int64_t k, double *out, nf_err *err)
{
    return topk_sets("precision_at_k", pred, truth, n, k, out, 0, err);
}

nf_status nf_topk_overlap(const float *pred, const float *truth, int64_t n, int64_t k, double *out, nf_err *err)
{
    return topk_sets("topk_overlap", pred, truth, n, k, out, 1, err);
}
