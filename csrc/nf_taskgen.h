/* nf_taskgen.h — building hard transfer tasks from a device set (METHOD §6).
 *
 *   1. nf_taskgen_spearman_matrix: the device × device Spearman matrix over the architectures measured
 *      on both devices of each pair (missing cells, NaN, are dropped pair by pair), with the number of
 *      common architectures beside each rho;
 *   2. nf_taskgen_kl / nf_taskgen_kl_restarts: Kernighan–Lin bisection of a complete weighted graph
 *      (minimum cut for fixed side sizes), from given or random starting partitions;
 *      nf_taskgen_bisect_exact: the exact minimum cut by enumeration (small graphs, the tests' reference);
 *   3. nf_taskgen_trim: shrink the two sides to m and k nodes by repeatedly removing, from a side still
 *      too large, the node with the largest total weight to the other side.
 *
 * Weight matrices are d × d, row-major, symmetric; the diagonal is never read. A NaN weight counts as 0
 * (a pair of devices without enough common measurements tells nothing). A side vector has d ints: 0 or 1
 * for the two sides, -1 for a node out of the graph (trim only).
 * Ties are broken by the lower node index everywhere, so results depend only on the inputs and the rng.
 * No global state; randomness only through the nf_rng the caller passes. Scratch memory is allocated
 * internally (NF_ENOMEM when that fails); programmer errors are NF_EINVAL with a message.
 */
#ifndef NF_TASKGEN_H
#define NF_TASKGEN_H

#include "nf.h"

/* Spearman rho of every pair of the d columns of x (n rows; x[r * ld + c], ld >= d; NaN = not
 * measured), exactly as nf_spearman computes it on the pair's common rows (same ranks, same sums:
 * bit-identical). rho (d × d) gets NaN where fewer than 2 rows are common or a column is constant on
 * them; the diagonal is 1 (NaN for a column with fewer than 2 measured or constant values).
 * count (d × d, may be NULL) gets the number of common rows (diagonal: the measured rows of the column).
 * Columns with the same missing rows share one ranking (computed once), so a complete data set costs
 * d sorts and d(d-1)/2 dot products. */
nf_status nf_taskgen_spearman_matrix(const float *x, int64_t n, int d, int64_t ld, double *rho, int64_t *count,
                                     nf_err *err);

/* The cut of a bisection: the sum of w[i][j] over pairs with side[i] != side[j] (both >= 0). */
double nf_taskgen_cut(const double *w, int d, const int *side);

/* Kernighan–Lin (1970) from the partition in side (in: 0/1 per node, out: the local optimum; the side
 * sizes never change). Each pass tentatively swaps, one pair at a time, the unlocked pair (a on side 0,
 * b on side 1) of largest gain D[a] + D[b] - 2 w[a][b] (D = external - internal weight), then keeps the
 * prefix of swaps with the largest positive total gain; passes repeat until none improves the cut by
 * more than a rounding tolerance. cut (may be NULL) gets the final cut; passes (may be NULL) the
 * number of passes run. d >= 2, both sides non-empty. */
nf_status nf_taskgen_kl(const double *w, int d, int *side, double *cut, int *passes, nf_err *err);

/* restarts runs of nf_taskgen_kl, each from a random partition with n0 nodes on side 0 (1 <= n0 < d)
 * drawn from rng (a uniform permutation: the first n0 nodes go to side 0). sides: restarts × d outputs,
 * cuts: restarts outputs. When n0 * 2 == d each result is reported with node 0 on side 0 (the two
 * labellings of one bisection are one bisection). */
nf_status nf_taskgen_kl_restarts(const double *w, int d, int n0, int restarts, nf_rng *rng, int *sides,
                                 double *cuts, nf_err *err);

/* The minimum cut over every partition with n0 nodes on side 0, by enumeration (2 <= d <= 24; the number
 * of partitions is C(d, n0)). Ties: the first partition in increasing order of its side-0 bit mask.
 * Reported as nf_taskgen_kl_restarts reports (node 0 on side 0 when n0 * 2 == d). */
nf_status nf_taskgen_bisect_exact(const double *w, int d, int n0, int *side, double *cut, nf_err *err);

/* Trim side 0 to m nodes and side 1 to k nodes (m, k >= 1; each side must hold at least that many).
 * Each round removes, if side 0 has more than m nodes, its node with the largest sum of w to the nodes
 * now on side 1; then, if side 1 has more than k nodes, its node with the largest sum of w to the nodes
 * now on side 0 (the reference's order). Removed nodes get side -1; removed (may be NULL, d entries)
 * lists them in removal order, -1 after the last. */
nf_status nf_taskgen_trim(const double *w, int d, int *side, int m, int k, int *removed, nf_err *err);

#endif
