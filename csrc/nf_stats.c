/* nf_stats.c — k-means, cosine similarities, bucket selection, ridge with LOO (see nf_stats.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nf_metrics.h"
#include "nf_stats.h"

static nf_status oom(const char *name, nf_err *err)
{
    return nf_seterr(err, NF_ENOMEM, "%s: out of memory", name);
}

static nf_status check_finite(const char *name, const float *X, int64_t n, int64_t d, nf_err *err)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            if (!isfinite(X[i * d + j]))
                return nf_seterr(err, NF_EINVAL, "%s: non-finite value at row %lld, column %lld", name,
                                 (long long)i + 1, (long long)j + 1);
    return NF_OK;
}

static double sqdist_fd(const float *x, const double *c, int64_t d)
{
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
        double t = (double)x[j] - c[j];
        s += t * t;
    }
    return s;
}

/* ------------------------------------------------------------------ k-means */

static void kmeanspp(const float *X, int64_t n, int64_t d, int64_t k, nf_rng *rng, double *cd,
                     double *D, unsigned char *chosen)
{
    memset(chosen, 0, (size_t)n);
    for (int64_t j = 0; j < k; j++) {
        int64_t pick = -1;
        double total = 0;
        if (j > 0)
            for (int64_t i = 0; i < n; i++) total += D[i];
        if (j == 0 || !(total > 0)) {
            /* uniform over the rows not chosen yet */
            int64_t r = (int64_t)nf_rng_below(rng, (uint64_t)(n - j));
            for (int64_t i = 0; i < n; i++)
                if (!chosen[i] && r-- == 0) { pick = i; break; }
        } else {
            double r = nf_rng_uniform(rng) * total, cum = 0;
            for (int64_t i = 0; i < n; i++) {
                if (D[i] <= 0) continue;
                cum += D[i];
                pick = i;
                if (cum > r) break;
            }
        }
        chosen[pick] = 1;
        for (int64_t c = 0; c < d; c++) cd[j * d + c] = X[pick * d + c];
        for (int64_t i = 0; i < n; i++) {
            double dd = sqdist_fd(X + i * d, cd + j * d, d);
            if (j == 0 || dd < D[i]) D[i] = dd;
        }
    }
}

nf_status nf_kmeans(const float *X, int64_t n, int64_t d, int64_t k, int max_iter, nf_rng *rng,
                    int64_t *assign, float *centroids, double *inertia, int *n_iter, nf_err *err)
{
    if (!X || !assign || !rng) return nf_seterr(err, NF_EINVAL, "kmeans: NULL argument");
    if (n < 1 || d < 1) return nf_seterr(err, NF_EINVAL, "kmeans: needs at least one row and one column (got %lld x %lld)",
                                         (long long)n, (long long)d);
    if (k < 1 || k > n) return nf_seterr(err, NF_EINVAL, "kmeans: cannot make %lld clusters from %lld rows",
                                         (long long)k, (long long)n);
    if (max_iter < 1) return nf_seterr(err, NF_EINVAL, "kmeans: max_iter must be >= 1 (got %d)", max_iter);
    nf_status st = check_finite("kmeans", X, n, d, err);
    if (st) return st;

    int64_t bs = ((int64_t)1 << 20) / k;
    if (bs < 1) bs = 1;
    if (bs > n) bs = n;
    double *cd = malloc((size_t)(k * d) * sizeof *cd);          /* centres (double, exact distances) */
    double *sums = malloc((size_t)(k * d) * sizeof *sums);
    double *D = malloc((size_t)n * sizeof *D);                  /* distance of each row to its centre */
    float *cf = malloc((size_t)(k * d) * sizeof *cf);           /* centres (float, for the gemm) */
    float *cn = malloc((size_t)k * sizeof *cn), *xn = malloc((size_t)n * sizeof *xn);
    float *G = malloc((size_t)(bs * k) * sizeof *G);
    int64_t *count = malloc((size_t)k * sizeof *count);
    unsigned char *chosen = malloc((size_t)n);
    if (!cd || !sums || !D || !cf || !cn || !xn || !G || !count || !chosen) {
        st = oom("kmeans", err);
        goto done;
    }
    kmeanspp(X, n, d, k, rng, cd, D, chosen);
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t c = 0; c < d; c++) s += (double)X[i * d + c] * X[i * d + c];
        xn[i] = (float)s;
    }
    int it = 0;
    for (int t = 0; t < max_iter; t++) {
        for (int64_t j = 0; j < k * d; j++) cf[j] = (float)cd[j];
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t c = 0; c < d; c++) s += cd[j * d + c] * cd[j * d + c];
            cn[j] = (float)s;
        }
        /* assignment */
        int64_t changed = 0;
        double J = 0;
        for (int64_t r0 = 0; r0 < n; r0 += bs) {
            int64_t rows = r0 + bs <= n ? bs : n - r0;
            st = nf_gemm(NF_NOTRANS, NF_TRANS, rows, k, d, 1.0f, X + r0 * d, d, cf, d, 0.0f, G, k, err);
            if (st) goto done;
            for (int64_t r = 0; r < rows; r++) {
                int64_t i = r0 + r, best = 0;
                float bv = INFINITY;
                for (int64_t j = 0; j < k; j++) {
                    float v = xn[i] - 2.0f * G[r * k + j] + cn[j];
                    if (v < bv) { bv = v; best = j; }
                }
                double db = sqdist_fd(X + i * d, cd + best * d, d);
                if (t > 0 && assign[i] != best) {
                    double dc = sqdist_fd(X + i * d, cd + assign[i] * d, d);
                    if (dc <= db) { best = assign[i]; db = dc; }
                }
                if (t == 0 || assign[i] != best) changed++;
                assign[i] = best;
                D[i] = db;
                J += db;
            }
        }
        if (inertia) inertia[t] = J;
        it = t + 1;
        if (t > 0 && changed == 0) break;
        if (t + 1 == max_iter) break;
        /* update: means; an empty cluster takes the row farthest from its centre */
        memset(sums, 0, (size_t)(k * d) * sizeof *sums);
        memset(count, 0, (size_t)k * sizeof *count);
        for (int64_t i = 0; i < n; i++) {
            count[assign[i]]++;
            for (int64_t c = 0; c < d; c++) sums[assign[i] * d + c] += X[i * d + c];
        }
        for (int64_t j = 0; j < k; j++) {
            if (count[j] > 0) {
                for (int64_t c = 0; c < d; c++) cd[j * d + c] = sums[j * d + c] / (double)count[j];
                continue;
            }
            int64_t far = -1;
            for (int64_t i = 0; i < n; i++)
                if (D[i] > 0 && (far < 0 || D[i] > D[far])) far = i;
            if (far < 0) continue;   /* every row sits on its centre: leave this one empty */
            for (int64_t c = 0; c < d; c++) cd[j * d + c] = X[far * d + c];
            D[far] = 0;              /* not reused by the next empty cluster */
        }
    }
    if (centroids)
        for (int64_t j = 0; j < k * d; j++) centroids[j] = (float)cd[j];
    if (n_iter) *n_iter = it;
    st = NF_OK;
done:
    free(cd); free(sums); free(D); free(cf); free(cn); free(xn); free(G); free(count); free(chosen);
    return st;
}

/* ------------------------------------------------------------------- cosine */

static void normalise_rows(const float *X, int64_t n, int64_t d, float *out, double *selfsim)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t c = 0; c < d; c++) s += (double)X[i * d + c] * X[i * d + c];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
        double ss = 0;
        for (int64_t c = 0; c < d; c++) {
            float v = (float)(X[i * d + c] * inv);
            out[i * d + c] = v;
            ss += (double)v * v;
        }
        if (selfsim) selfsim[i] = ss;
    }
}

nf_status nf_cosine_matrix(const float *A, int64_t m, const float *B, int64_t n, int64_t d,
                           float *out, nf_err *err)
{
    if (m < 0 || n < 0 || d < 1) return nf_seterr(err, NF_EINVAL, "cosine_matrix: bad shape (%lld x %lld, %lld x %lld)",
                                                  (long long)m, (long long)d, (long long)n, (long long)d);
    if ((m && !A) || (n && !B) || (m && n && !out)) return nf_seterr(err, NF_EINVAL, "cosine_matrix: NULL argument");
    if (m == 0 || n == 0) return NF_OK;
    nf_status st = check_finite("cosine_matrix", A, m, d, err);
    if (!st) st = check_finite("cosine_matrix", B, n, d, err);
    if (st) return st;
    float *an = malloc((size_t)((m + n) * d) * sizeof *an);
    if (!an) return oom("cosine_matrix", err);
    float *bn = an + m * d;
    normalise_rows(A, m, d, an, NULL);
    normalise_rows(B, n, d, bn, NULL);
    st = nf_gemm(NF_NOTRANS, NF_TRANS, m, n, d, 1.0f, an, d, bn, d, 0.0f, out, n, err);
    free(an);
    return st;
}

nf_status nf_mean_cosine(const float *X, int64_t n, int64_t d, double *out, nf_err *err)
{
    if (!X || !out) return nf_seterr(err, NF_EINVAL, "mean_cosine: NULL argument");
    if (n < 2 || d < 1) return nf_seterr(err, NF_EINVAL, "mean_cosine: needs at least 2 rows and 1 column (got %lld x %lld)",
                                         (long long)n, (long long)d);
    nf_status st = check_finite("mean_cosine", X, n, d, err);
    if (st) return st;
    float *xn = malloc((size_t)(n * d + d + n) * sizeof *xn);
    double *self = malloc((size_t)(n + d) * sizeof *self);
    if (!xn || !self) { free(xn); free(self); return oom("mean_cosine", err); }
    float *s = xn + n * d, *dots = s + d;
    double *sd = self + n;
    normalise_rows(X, n, d, xn, self);
    for (int64_t c = 0; c < d; c++) sd[c] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < d; c++) sd[c] += xn[i * d + c];
    for (int64_t c = 0; c < d; c++) s[c] = (float)sd[c];
    st = nf_gemm(NF_NOTRANS, NF_NOTRANS, n, 1, d, 1.0f, xn, d, s, 1, 0.0f, dots, 1, err);
    if (!st)
        for (int64_t i = 0; i < n; i++) out[i] = ((double)dots[i] - self[i]) / (double)(n - 1);
    free(xn); free(self);
    return st;
}

/* ------------------------------------------------------------ bucket select */

nf_status nf_bucket_select(const double *values, int64_t n, int64_t k, nf_rng *rng, int64_t *out, nf_err *err)
{
    if (!values || !rng || !out) return nf_seterr(err, NF_EINVAL, "bucket_select: NULL argument");
    if (k < 1 || k > n) return nf_seterr(err, NF_EINVAL, "bucket_select: cannot make %lld buckets from %lld values",
                                         (long long)k, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (isnan(values[i])) return nf_seterr(err, NF_EINVAL, "bucket_select: value %lld is NaN", (long long)i + 1);
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return oom("bucket_select", err);
    nf_status st = nf_argsort(values, n, idx, err);
    if (!st) {
        int64_t base = n / k, extra = n % k, start = 0;
        for (int64_t b = 0; b < k; b++) {
            int64_t size = base + (b < extra);
            out[b] = idx[start + (int64_t)nf_rng_below(rng, (uint64_t)size)];
            start += size;
        }
    }
    free(idx);
    return st;
}

/* -------------------------------------------------------------------- ridge */

typedef struct {
    int64_t n, p;
    double *Z;      /* n×p standardised design */
    double *yc;     /* n centred targets */
    double *G;      /* p×p Z'Z */
    double *r;      /* p Z'yc */
    double *mu, *sc;
    double ybar;
    double *A;      /* p×p work: Cholesky factor */
    double *v;      /* p work */
    double *beta;   /* p */
} ridge_ws;

static void ridge_ws_free(ridge_ws *w)
{
    free(w->Z);
    memset(w, 0, sizeof *w);
}

/* Centre and scale X into w->Z, centre y into w->yc; with `gram`, also G = Z'Z and r = Z'yc (the p×p route). */
static nf_status ridge_setup(const char *name, const float *X, const double *y, int64_t n, int64_t p,
                             int standardize, int gram, ridge_ws *w, nf_err *err)
{
    memset(w, 0, sizeof *w);
    if (!X || !y) return nf_seterr(err, NF_EINVAL, "%s: NULL argument", name);
    if (n < 2) return nf_seterr(err, NF_EINVAL, "%s: needs at least 2 samples (got %lld)", name, (long long)n);
    if (p < 0) return nf_seterr(err, NF_EINVAL, "%s: negative feature count", name);
    nf_status st = check_finite(name, X, n, p, err);
    if (st) return st;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return nf_seterr(err, NF_EINVAL, "%s: target %lld is not finite", name, (long long)i + 1);
    size_t pp = (size_t)(p ? p : 1);
    size_t total = (size_t)n * pp + (size_t)n + 2 * pp * pp + 5 * pp;
    double *buf = malloc(total * sizeof *buf);
    if (!buf) return oom(name, err);
    w->n = n; w->p = p;
    w->Z = buf; buf += (size_t)n * pp;
    w->yc = buf; buf += n;
    w->G = buf; buf += pp * pp;
    w->A = buf; buf += pp * pp;
    w->r = buf; buf += pp;
    w->mu = buf; buf += pp;
    w->sc = buf; buf += pp;
    w->v = buf; buf += pp;
    w->beta = buf;
    for (int64_t j = 0; j < p; j++) {
        double m = 0, s = 0;
        for (int64_t i = 0; i < n; i++) m += X[i * p + j];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++) { double t = X[i * p + j] - m; s += t * t; }
        s = sqrt(s / (double)n);
        w->mu[j] = m;
        w->sc[j] = standardize && s > 0 ? s : 1.0;
        for (int64_t i = 0; i < n; i++) w->Z[i * p + j] = (X[i * p + j] - m) / w->sc[j];
    }
    double yb = 0;
    for (int64_t i = 0; i < n; i++) yb += y[i];
    yb /= (double)n;
    w->ybar = yb;
    for (int64_t i = 0; i < n; i++) w->yc[i] = y[i] - yb;
    for (int64_t a = 0; gram && a < p; a++) {
        for (int64_t b = 0; b <= a; b++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += w->Z[i * p + a] * w->Z[i * p + b];
            w->G[a * p + b] = w->G[b * p + a] = s;
        }
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += w->Z[i * p + a] * w->yc[i];
        w->r[a] = s;
    }
    return NF_OK;
}

/* Cholesky of M + lambda I (M symmetric p×p) into L (lower triangle); a pivot below 1e-12 of the largest
 * diagonal entry is a singular system. */
static nf_status chol_factor(const char *name, const double *M, int64_t p, double lambda, double *L, nf_err *err)
{
    if (!(lambda >= 0) || !isfinite(lambda))
        return nf_seterr(err, NF_EINVAL, "%s: lambda must be a finite number >= 0 (got %g)", name, lambda);
    double dmax = 0;
    for (int64_t j = 0; j < p; j++) if (M[j * p + j] + lambda > dmax) dmax = M[j * p + j] + lambda;
    for (int64_t j = 0; j < p; j++) {
        for (int64_t i = j; i < p; i++) {
            double s = M[i * p + j] + (i == j ? lambda : 0.0);
            for (int64_t t = 0; t < j; t++) s -= L[i * p + t] * L[j * p + t];
            if (i == j) {
                if (!(s > 1e-12 * dmax))
                    return nf_seterr(err, NF_EINVAL, "%s: the system is singular at lambda=%g (collinear or constant features?)",
                                     name, lambda);
                L[j * p + j] = sqrt(s);
            } else {
                L[i * p + j] = s / L[j * p + j];
            }
        }
    }
    return NF_OK;
}

/* Cholesky of G + lambda I into w->A (lower triangle). */
static nf_status ridge_factor(const char *name, ridge_ws *w, double lambda, nf_err *err)
{
    return chol_factor(name, w->G, w->p, lambda, w->A, err);
}

/* x = (L L')^-1 b, in place on x (x holds b on entry). */
static void chol_solve(const double *L, int64_t p, double *x)
{
    for (int64_t i = 0; i < p; i++) {
        double s = x[i];
        for (int64_t t = 0; t < i; t++) s -= L[i * p + t] * x[t];
        x[i] = s / L[i * p + i];
    }
    for (int64_t i = p - 1; i >= 0; i--) {
        double s = x[i];
        for (int64_t t = i + 1; t < p; t++) s -= L[t * p + i] * x[t];
        x[i] = s / L[i * p + i];
    }
}

nf_status nf_ridge_fit(const float *X, const double *y, int64_t n, int64_t p, double lambda, int standardize,
                       double *coef, double *intercept, nf_err *err)
{
    if ((p > 0 && !coef) || !intercept) return nf_seterr(err, NF_EINVAL, "ridge_fit: NULL output");
    ridge_ws w;
    nf_status st = ridge_setup("ridge_fit", X, y, n, p, standardize, 1, &w, err);
    if (st) return st;
    st = ridge_factor("ridge_fit", &w, lambda, err);
    if (!st) {
        memcpy(w.beta, w.r, (size_t)p * sizeof *w.beta);
        chol_solve(w.A, p, w.beta);
        double b = w.ybar;
        for (int64_t j = 0; j < p; j++) {
            coef[j] = w.beta[j] / w.sc[j];
            b -= w.mu[j] * coef[j];
        }
        *intercept = b;
    }
    ridge_ws_free(&w);
    return st;
}

/* Leave-one-out errors with more features than samples, from the n×n side: with K = Z Z' and
 * M = (K + lambda I)^-1, the hat matrix of the centred fit is Z (Z'Z + lambda I)^-1 Z' = I - lambda M, so the
 * residual is lambda (M yc)_i and 1 - h_ii = lambda M_ii - 1/n: an n×n factorisation per lambda instead of p×p
 * plus n solves. */
static nf_status ridge_loo_dual(const ridge_ws *w, const double *lambdas, int64_t nl, double *loo_mse, nf_err *err)
{
    int64_t n = w->n, p = w->p;
    double *K = malloc((size_t)(3 * n * n + 2 * n) * sizeof *K);
    if (!K) return oom("ridge_loo", err);
    double *L = K + n * n, *Li = L + n * n, *u = Li + n * n, *col = u + n;
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b <= a; b++) {
            double s = 0;
            for (int64_t j = 0; j < p; j++) s += w->Z[a * p + j] * w->Z[b * p + j];
            K[a * n + b] = K[b * n + a] = s;
        }
    nf_status st = NF_OK;
    for (int64_t l = 0; l < nl; l++) {
        double lambda = lambdas[l];
        st = chol_factor("ridge_loo", K, n, lambda, L, err);
        if (st) break;
        memcpy(u, w->yc, (size_t)n * sizeof *u);
        chol_solve(L, n, u);
        /* M_ii = || L^-1 e_i ||^2: the columns of L^-1 by forward substitution */
        for (int64_t i = 0; i < n; i++) {
            for (int64_t r = 0; r < n; r++) col[r] = 0;
            col[i] = 1.0 / L[i * n + i];
            for (int64_t r = i + 1; r < n; r++) {
                double s = 0;
                for (int64_t t = i; t < r; t++) s -= L[r * n + t] * col[t];
                col[r] = s / L[r * n + r];
            }
            double m = 0;
            for (int64_t r = i; r < n; r++) m += col[r] * col[r];
            Li[i] = m;
        }
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = lambda * u[i] / (lambda * Li[i] - 1.0 / (double)n);
            s += e * e;
        }
        loo_mse[l] = s / (double)n;
    }
    free(K);
    return st;
}

/* Leave-one-out errors of a large design (n rows, p <= n features): with A = G + lambda I = L L', the leverage is
 * h_ii = 1/n + |L^-1 z_i|^2, so one triangular solve of all n rows at once (BLAS) replaces 2n scalar solves. */
static nf_status ridge_loo_blas(ridge_ws *w, const double *lambdas, int64_t nl, double *loo_mse, nf_err *err)
{
    int64_t n = w->n, p = w->p;
    double *W = malloc((size_t)(p * n) * sizeof *W);
    if (!W) return oom("ridge_loo", err);
    nf_status st = NF_OK;
    for (int64_t l = 0; l < nl; l++) {
        st = ridge_factor("ridge_loo", w, lambdas[l], err);
        if (st) break;
        memcpy(w->beta, w->r, (size_t)p * sizeof *w->beta);
        chol_solve(w->A, p, w->beta);
        for (int64_t j = 0; j < p; j++)
            for (int64_t i = 0; i < n; i++) W[j * n + i] = w->Z[i * p + j];
        nf_dtrsm_lower(p, n, w->A, W);
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            const double *z = w->Z + i * p;
            double fit = 0, h = 1.0 / (double)n;
            for (int64_t j = 0; j < p; j++) fit += z[j] * w->beta[j];
            for (int64_t j = 0; j < p; j++) h += W[j * n + i] * W[j * n + i];
            double e = (w->yc[i] - fit) / (1.0 - h);
            s += e * e;
        }
        loo_mse[l] = s / (double)n;
    }
    free(W);
    return st;
}

nf_status nf_ridge_loo(const float *X, const double *y, int64_t n, int64_t p, const double *lambdas, int64_t nl,
                       int standardize, double *loo_mse, nf_err *err)
{
    if (nl < 1 || !lambdas || !loo_mse) return nf_seterr(err, NF_EINVAL, "ridge_loo: needs at least one lambda");
    ridge_ws w;
    nf_status st = ridge_setup("ridge_loo", X, y, n, p, standardize, p <= n, &w, err);   /* p > n: the n×n route */
    if (st) return st;
    if (p > n) {
        st = ridge_loo_dual(&w, lambdas, nl, loo_mse, err);
        ridge_ws_free(&w);
        return st;
    }
    if (n >= 64 && p >= 8) {   /* large designs (the source-device models): all rows in one BLAS solve */
        st = ridge_loo_blas(&w, lambdas, nl, loo_mse, err);
        ridge_ws_free(&w);
        return st;
    }
    for (int64_t l = 0; l < nl && !st; l++) {
        st = ridge_factor("ridge_loo", &w, lambdas[l], err);
        if (st) break;
        memcpy(w.beta, w.r, (size_t)p * sizeof *w.beta);
        chol_solve(w.A, p, w.beta);
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            const double *z = w.Z + i * p;
            double fit = 0, h = 1.0 / (double)n;
            for (int64_t j = 0; j < p; j++) { fit += z[j] * w.beta[j]; w.v[j] = z[j]; }
            chol_solve(w.A, p, w.v);
            for (int64_t j = 0; j < p; j++) h += z[j] * w.v[j];
            double e = (w.yc[i] - fit) / (1.0 - h);
            s += e * e;
        }
        loo_mse[l] = s / (double)n;
    }
    ridge_ws_free(&w);
    return st;
}

/* ------------------------------------------------------------------ simplex grid search */
typedef struct {
    const double *P, *y;
    const int64_t *idx;
    int64_t C, n, m;
    int steps;
    double *w, *best_w, best_sse;
    int have_best;
} simplex_ctx;

static void simplex_try(simplex_ctx *s)
{
    double sse = 0;
    for (int64_t k = 0; k < s->m; k++) {
        int64_t i = s->idx[k];
        double p = 0;
        for (int64_t c = 0; c < s->C; c++) p = p + s->w[c] * s->P[c * s->n + i];
        double d = p - s->y[i];
        sse = sse + d * d;
    }
    if (!s->have_best || sse < s->best_sse - 1e-12) {
        memcpy(s->best_w, s->w, (size_t)s->C * sizeof *s->w);
        s->best_sse = sse;
        s->have_best = 1;
    }
}

/* w[c] for c < C-1 takes t/steps, t = 0..left, in order; the last weight takes what is left */
static void simplex_rec(simplex_ctx *s, int64_t c, int left)
{
    if (c == s->C - 1) {
        s->w[c] = (double)left / s->steps;
        simplex_try(s);
        return;
    }
    for (int t = 0; t <= left; t++) {
        s->w[c] = (double)t / s->steps;
        simplex_rec(s, c + 1, left - t);
    }
}

nf_status nf_simplex_search(const double *P, const double *y, int64_t C, int64_t n, const int64_t *idx, int64_t m,
                            int steps, double *best_w, double *best_sse, nf_err *err)
{
    if (C < 1 || n < 1 || m < 1)
        return nf_seterr(err, NF_EINVAL, "simplex search: needs C >= 1 predictors, n >= 1 values and m >= 1 indices "
                         "(got C=%lld n=%lld m=%lld)", (long long)C, (long long)n, (long long)m);
    if (steps < 1) return nf_seterr(err, NF_EINVAL, "simplex search: steps must be >= 1 (got %d)", steps);
    for (int64_t k = 0; k < m; k++)
        if (idx[k] < 0 || idx[k] >= n)
            return nf_seterr(err, NF_EINVAL, "simplex search: index %lld is %lld, outside 0..%lld", (long long)k,
                             (long long)idx[k], (long long)(n - 1));
    double *w = malloc((size_t)C * sizeof *w);
    if (!w) return oom("simplex search", err);
    simplex_ctx s = {P, y, idx, C, n, m, steps, w, best_w, 0, 0};
    for (int64_t c = 0; c < C; c++) w[c] = 1.0 / (double)C;
    simplex_try(&s);
    simplex_rec(&s, 0, steps);
    *best_sse = s.best_sse;
    free(w);
    return NF_OK;
}
