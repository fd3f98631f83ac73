/* nf_search.h — the hot kernels of architecture search: Pareto (non-dominated) ranks and the 2-D hypervolume.
 *
 * Every objective is MINIMISED (negate an accuracy before calling). Points with a NaN coordinate are never
 * on any front (rank 0) and add no volume. The caller owns every output and scratch buffer; nothing is
 * allocated, nothing is global, and every sort is a stable merge sort on indices (no qsort, so results do not
 * depend on the platform).
 */
#ifndef NF_SEARCH_H
#define NF_SEARCH_H

#include "nf.h"

/* Non-dominated sorting of n points with m objectives (obj row-major, n × m): rank[i] = 1 for the first
 * front, 2 for the next, ...; 0 for a point with a NaN objective. a dominates b when a <= b in every
 * objective and a < b in one; equal points share a front. m == 2 is O(F n log n) (sort once, sweep per
 * front); m > 2 peels fronts with pairwise tests, O(F n^2 m). scratch: 3 n int64s. Returns the number of
 * fronts in *n_fronts (may be NULL). NF_EINVAL: n < 0, m < 1, NULL buffers with n > 0. */
nf_status nf_pareto_rank(const double *obj, int64_t n, int m, int32_t *rank, int64_t *scratch,
                         int32_t *n_fronts, nf_err *err);

/* Hypervolume of n 2-D points (x[i], y[i]) against the reference point (rx, ry), both objectives minimised:
 * the area of the union of the boxes [x, rx] × [y, ry] of the points with x < rx and y < ry. Dominated and
 * repeated points add nothing. scratch: 2 n int64s. NF_EINVAL: n < 0, NULL buffers with n > 0, a NaN or
 * infinite reference. */
nf_status nf_hypervolume2(const double *x, const double *y, int64_t n, double rx, double ry, double *out,
                          int64_t *scratch, nf_err *err);

/* Constrained selection over n candidates: the k best by score, in decreasing score (ties: lower index first).
 * obj[n]: the objective (higher is better; NaN: never chosen). logms: m rows of n predicted log latencies
 * (row-major m × n; m >= 0 constraints), log_budget[m] the log of each constraint, sigma[m] the standard
 * deviation of each prediction's log error (0: a hard test logms <= log_budget). skip[n] (NULL: none): nonzero
 * excludes a candidate (already measured). score = gain × prod_j P(feasible_j), P = Phi((log_budget - logms) /
 * sigma) or the hard test; gain = obj - incumbent, or, when incumbent is -INFINITY (nothing feasible yet),
 * obj - min(obj) + 1. Only candidates with score > 0 are returned: *n_out <= k of them in out (0-based
 * indices), their scores in score (k doubles). With sigma 0 and no incumbent this is exhaustive constrained
 * selection: the k best objectives predicted feasible. NF_EINVAL: n < 0, m < 0, k < 0, NULL buffers, a NaN
 * budget or a negative sigma. */
nf_status nf_search_select(const double *obj, const float *logms, int m, int64_t n, const double *log_budget,
                           const double *sigma, const uint8_t *skip, double incumbent, int64_t k, int64_t *out,
                           double *score, int64_t *n_out, nf_err *err);

/* Children for evolution: child i is parents[i] (or, with mates, a uniform crossover of parents[i] and mates[i]:
 * each position from either with probability 1/2), then one uniformly drawn position changed to a different
 * choice drawn uniformly among the other n_choices - 1. Codes are rows of len bytes (n × len); out may not alias
 * the inputs. Draws come from rng only. NF_EINVAL: n < 0, len < 1, n_choices < 2, NULL buffers, a parent or
 * mate entry >= n_choices. */
nf_status nf_search_children(const uint8_t *parents, const uint8_t *mates, int64_t n, int len, int n_choices,
                             nf_rng *rng, uint8_t *out, nf_err *err);

#endif
