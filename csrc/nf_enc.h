/* nf_enc.h — label-free architecture encoding kernels (no training, no labels). */
#ifndef NF_ENC_H
#define NF_ENC_H

#include "nf.h"

/* One-hot of the choice at each position (node_ops as from nf_space_graphs, B×N floats): out (B × n_pos·n_choices); position p is graph node
 * first_node + p, whose choice is node_op − vocab_offset (must lie in 0..n_choices-1).
 * nb201 (raw graph): first_node 1, n_pos 6, vocab_offset 2, 5 choices; fbnet: 0, 22, 0, 9. */
nf_status nf_enc_onehot(const float *node_ops, int64_t B, int N, int first_node, int n_pos, int vocab_offset,
                        int n_choices, float *out, nf_err *err);
/* NB201 path encoding (BANANAS): the cell's input→output paths are the edge sequences
 * (0→3), (0→1→3), (0→2→3), (0→1→2→3); a path exists when none of its edges is `none`; it is
 * counted under its op sequence over {skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3}:
 * 4 + 16 + 64 = 84 columns (length 1, then 2, then 3; base-4 digits, first op most
 * significant). Values are counts (0..2). Input: the 6 edge op ids per arch (B×6 floats, 0..4). */
#define NF_ENC_NB201_PATHS 84
nf_status nf_enc_nb201_paths(const float *edge_ops, int64_t B, float *out, nf_err *err);
/* Column scaling in place over the B rows of X (B×D): mode[c] = NF_SCALE_MINMAX ((x−min)/(max−min);
 * a constant column becomes 0), NF_SCALE_ZSCORE ((x−mean)/sd, population sd; constant → 0) or
 * NF_SCALE_NONE. A non-finite entry is NF_EINVAL naming its row and column (0-based). */
enum { NF_SCALE_NONE = 0, NF_SCALE_MINMAX = 1, NF_SCALE_ZSCORE = 2 };
nf_status nf_enc_scale(float *X, int64_t B, int64_t D, const int *mode, nf_err *err);

#endif
