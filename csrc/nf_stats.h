/* nf_stats.h — kernels for the samplers and the ridge baseline: k-means (k-means++ seeding),
 * cosine similarities through BLAS, bucket selection, ridge regression with leave-one-out.
 * Conventions of nf.h: nf_status + nf_err, no global state, randomness only via an nf_rng.
 * Matrices are row-major and contiguous (row stride = number of columns). */
#ifndef NF_STATS_H
#define NF_STATS_H

#include "nf.h"

/* ------------------------------------------------------------------ k-means
 * Lloyd's algorithm on the n rows of X (n×d), k clusters, 1 <= k <= n.
 * Seeding: k-means++ (first centre uniform, then each next centre drawn with probability
 * proportional to the squared distance to the nearest chosen centre; when every distance is
 * 0 — fewer than k distinct rows — an unchosen row is drawn uniformly).
 * Iteration t (0-based, at most max_iter): assign every row to its nearest centre, keeping the
 * current centre on ties, and record inertia[t] = sum of squared distances (double precision,
 * exact); stop when no assignment changed; else move each centre to the mean of its rows
 * (an empty cluster takes the row farthest from its centre). The recorded inertia never
 * increases. Distances for the search come from one sgemm per block of rows
 * (|x|^2 - 2 x.c + |c|^2); the winner is confirmed with the exact distance in double.
 * Outputs: assign (n, cluster ids 0..k-1), centroids (k×d, optional), inertia (max_iter
 * entries, optional), *n_iter (optional) iterations run. Non-finite entries of X are NF_EINVAL. */
nf_status nf_kmeans(const float *X, int64_t n, int64_t d, int64_t k, int max_iter, nf_rng *rng,
                    int64_t *assign, float *centroids, double *inertia, int *n_iter, nf_err *err);

/* ------------------------------------------------------------------- cosine
 * out (m×n) = cosine similarity of row i of A (m×d) with row j of B (n×d): rows are
 * L2-normalised into scratch and multiplied with nf_gemm. A zero row has similarity 0 with
 * everything (itself included). */
nf_status nf_cosine_matrix(const float *A, int64_t m, const float *B, int64_t n, int64_t d,
                           float *out, nf_err *err);
/* out[i] = mean over j != i of cos(X_i, X_j), for n >= 2 rows of X (n×d), in O(n d):
 * the normalised rows are summed once and one gemm gives each row's dot with the sum. */
nf_status nf_mean_cosine(const float *X, int64_t n, int64_t d, double *out, nf_err *err);

/* ------------------------------------------------------------ bucket select
 * Sort values (n, no NaN) ascending, ties by position; split the order into k consecutive
 * buckets the way numpy.array_split does (the first n % k buckets hold one more); draw one
 * member of each bucket uniformly. out: k positions (0-based), in bucket order. 1 <= k <= n. */
nf_status nf_bucket_select(const double *values, int64_t n, int64_t k, nf_rng *rng, int64_t *out, nf_err *err);

/* -------------------------------------------------------------------- ridge
 * Ridge regression with an unpenalised intercept: minimise
 *   sum_i (y_i - b - z_i.beta)^2 + lambda |beta|^2,  z_i = (x_i - mean) / scale,
 * where scale is the column's standard deviation when standardize != 0 (1 for a constant
 * column) and 1 otherwise. X is n×p (float), y has n entries; lambda >= 0.
 * nf_ridge_fit: coef (p) and *intercept in the ORIGINAL units of X: y_hat = intercept + x.coef.
 * nf_ridge_loo: for each of nl lambdas, the leave-one-out mean squared error by the closed
 * form e_i / (1 - h_ii) with the hat matrix H = 11'/n + Z (Z'Z + lambda I)^-1 Z' (exact for this
 * fixed design: the centring and scaling use all n rows). n >= 2. A singular system
 * (lambda = 0 with collinear columns) is NF_EINVAL naming lambda. */
nf_status nf_ridge_fit(const float *X, const double *y, int64_t n, int64_t p, double lambda, int standardize,
                       double *coef, double *intercept, nf_err *err);
nf_status nf_ridge_loo(const float *X, const double *y, int64_t n, int64_t p, const double *lambdas, int64_t nl,
                       int standardize, double *loo_mse, nf_err *err);

/* -------------------------------------------------------------------- simplex grid search
 * The weights w (C entries, each a multiple of 1/steps, summing to 1) that minimise the squared error
 *   sse(w) = sum over i in idx[0..m) of (sum_c w_c P[c*n + i] - y[i])^2
 * of a weighted mean of C prediction vectors P (C×n, row c = predictor c). Tried first: equal weights
 * 1/C; then every grid point, (w_1, ..., w_C) in ascending lexicographic order; a point replaces the best
 * only when its error is smaller by more than 1e-12 (so ties keep the earlier point). Writes best_w (C)
 * and *best_sse (the sum, not the mean). Each error sums in double, in the order of idx, each prediction
 * over c in order: the same numbers as the plain loops in Lua. C >= 1, steps >= 1, m >= 1, idx in 0..n-1. */
nf_status nf_simplex_search(const double *P, const double *y, int64_t C, int64_t n, const int64_t *idx, int64_t m,
                            int steps, double *best_w, double *best_sse, nf_err *err);

#endif
