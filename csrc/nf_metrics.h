/* nf_metrics.h — prediction-quality metrics: rank correlations, errors, top-k agreement.
 *
 * Every metric takes a prediction and a measurement array of the same length n and
 * ignores missing values: a pair (pred[i], truth[i]) in which either value is NaN is
 * dropped before anything is computed; "m" below is the number of pairs left.
 *
 * Results are NaN (never an error) when the metric is undefined on the data:
 *  - correlations (Spearman, Kendall, Pearson): m < 2, or either side constant over the pairs;
 *  - errors (MAE, RMSE, MAPE, within-tolerance share): m = 0;
 *  - precision@k and top-k overlap: k > m.
 * Errors (NF_EINVAL) are reserved for programmer mistakes: n < 0, NULL arrays with n > 0,
 * k < 1, a negative tolerance. Memory is allocated internally (O(n)); NF_ENOMEM when it fails.
 * Every sort is O(n log n) and stable, so results do not depend on the platform's qsort.
 */
#ifndef NF_METRICS_H
#define NF_METRICS_H

#include "nf.h"

/* Number of pairs with neither value NaN. */
int64_t nf_metric_count_valid(const float *pred, const float *truth, int64_t n);

/* Spearman's rho: Pearson correlation of the average ranks (ties share the mean of their ranks). */
nf_status nf_spearman(const float *pred, const float *truth, int64_t n, double *out, nf_err *err);
/* Kendall's tau-b, O(n log n) (Knight 1966: sort by (pred, truth), count inversions of truth
 * with a merge sort), with the tie corrections tau_b = (nc - nd) / sqrt((n0 - n1)(n0 - n2)). */
nf_status nf_kendall(const float *pred, const float *truth, int64_t n, double *out, nf_err *err);
/* The same tau-b by direct O(n^2) pair counting: the reference the tests compare against. */
nf_status nf_kendall_naive(const float *pred, const float *truth, int64_t n, double *out, nf_err *err);
/* Pearson's linear correlation. */
nf_status nf_pearson(const float *pred, const float *truth, int64_t n, double *out, nf_err *err);
/* Pearson correlation of two double vectors of length m (NaN when m < 2 or a side is constant), clamped to [-1, 1];
 * nf_spearman applies it to ranks, nf_taskgen to the rank vectors of its device matrix. */
double nf_pearson_d(const double *x, const double *y, int64_t m);

/* Mean absolute error, root mean squared error (units of the inputs). */
nf_status nf_mae(const float *pred, const float *truth, int64_t n, double *out, nf_err *err);
nf_status nf_rmse(const float *pred, const float *truth, int64_t n, double *out, nf_err *err);
/* Mean absolute percentage error in percent: 100 * mean |pred - truth| / |truth|.
 * A measurement of 0 makes the term infinite (so the result is +inf), never skipped. */
nf_status nf_mape(const float *pred, const float *truth, int64_t n, double *out, nf_err *err);
/* Share in [0,1] of pairs with |pred - truth| <= tol * |truth| (tol = 0.1: "±10 % accuracy"). */
nf_status nf_within(const float *pred, const float *truth, int64_t n, double tol, double *out, nf_err *err);

/* Top-k agreement on the FASTEST architectures (smallest values). Over the m valid pairs:
 *   P_k  = the k pairs with the smallest prediction (ties broken by lower position);
 *   T_k+ = every pair whose measurement is <= the k-th smallest measurement (ties at the
 *          boundary all count as "among the fastest k", so |T_k+| >= k);
 *   P_k+ = likewise every pair whose prediction is <= the k-th smallest prediction.
 * precision@k   = |P_k ∩ T_k+| / k: of the k architectures the predictor ranks fastest, the
 *                 share that truly are among the fastest k.
 * top-k overlap = |P_k+ ∩ T_k+| / |P_k+ ∪ T_k+|: the Jaccard index of the two tie-inclusive
 *                 fastest-k sets (symmetric; 1 iff the sets coincide). Without ties and with
 *                 c common members: precision = c/k, overlap = c/(2k - c).
 * k < 1 is NF_EINVAL; k > m gives NaN. */
nf_status nf_precision_at_k(const float *pred, const float *truth, int64_t n, int64_t k, double *out, nf_err *err);
nf_status nf_topk_overlap(const float *pred, const float *truth, int64_t n, int64_t k, double *out, nf_err *err);

/* Helpers shared with the samplers (no NaN handling: NaN values compare as unordered, so
 * callers must not pass them).
 * nf_argsort: idx[0..n) = positions of v in ascending order, ties by position (stable). */
nf_status nf_argsort(const double *v, int64_t n, int64_t *idx, nf_err *err);
/* ranks[i] = average 1-based rank of v[i] (ties get the mean of the ranks they span). */
nf_status nf_rank_average(const double *v, int64_t n, double *ranks, nf_err *err);

#endif
