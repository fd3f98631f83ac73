/* nf_enc.c — label-free encoding kernels: one-hot choices, the NB201 path encoding, column scaling
 * (nf_enc.h). */
#include <math.h>
#include <string.h>
#include "nf_enc.h"

nf_status nf_enc_onehot(const float *node_ops, int64_t B, int N, int first_node, int n_pos, int vocab_offset,
                        int n_choices, float *out, nf_err *err)
{
    if (first_node < 0 || n_pos < 1 || first_node + n_pos > N || n_choices < 1)
        return nf_seterr(err, NF_EINVAL, "onehot: positions %d..%d do not fit %d nodes", first_node, first_node + n_pos - 1, N);
    const int64_t W = (int64_t)n_pos * n_choices;
    memset(out, 0, (size_t)(B * W) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int p = 0; p < n_pos; p++) {
            float f = node_ops[b * N + first_node + p] - (float)vocab_offset;
            if (!(f >= 0 && f < (float)n_choices) || f != floorf(f))
                return nf_seterr(err, NF_EINVAL, "onehot: row %lld, node %d: op id %g is not a choice (offset %d, %d choices)",
                                 (long long)b, first_node + p, (double)node_ops[b * N + first_node + p], vocab_offset, n_choices);
            out[b * W + (int64_t)p * n_choices + (int64_t)f] = 1.0f;
        }
    return NF_OK;
}

nf_status nf_enc_nb201_paths(const float *edge_ops, int64_t B, float *out, nf_err *err)
{
    /* edges in string order: 0:0→1 1:0→2 2:1→2 3:0→3 4:1→3 5:2→3 */
    static const int paths[4][3] = {{3, -1, -1}, {0, 4, -1}, {1, 5, -1}, {0, 2, 5}};
    static const int offset[4] = {0, 0, 4, 20};   /* by path length 1..3 */
    memset(out, 0, (size_t)(B * NF_ENC_NB201_PATHS) * sizeof(float));
    for (int64_t b = 0; b < B; b++) {
        const float *e = edge_ops + b * 6;
        for (int k = 0; k < 6; k++)
            if (!(e[k] >= 0 && e[k] <= 4) || e[k] != floorf(e[k]))
                return nf_seterr(err, NF_EINVAL, "paths: row %lld, edge %d: op id %g out of range 0..4", (long long)b, k, (double)e[k]);
        for (int p = 0; p < 4; p++) {
            int len = 0, code = 0, alive = 1;
            for (int s = 0; s < 3 && paths[p][s] >= 0; s++) {
                int op = (int)e[paths[p][s]];
                if (op == 0) { alive = 0; break; }
                code = code * 4 + (op - 1);
                len++;
            }
            if (alive) out[b * NF_ENC_NB201_PATHS + offset[len] + code] += 1.0f;
        }
    }
    return NF_OK;
}

nf_status nf_enc_scale(float *X, int64_t B, int64_t D, const int *mode, nf_err *err)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < D; c++)
            if (!isfinite(X[b * D + c]))
                return nf_seterr(err, NF_EINVAL, "scale: entry (row %lld, column %lld) is not finite (%g)",
                                 (long long)b, (long long)c, (double)X[b * D + c]);
    for (int64_t c = 0; c < D; c++) {
        if (mode[c] == NF_SCALE_NONE || B == 0) continue;
        double lo = X[c], hi = X[c], s = 0, s2 = 0;
        for (int64_t b = 0; b < B; b++) {
            double x = X[b * D + c];
            if (x < lo) lo = x;
            if (x > hi) hi = x;
            s += x;
        }
        double mean = s / (double)B;
        for (int64_t b = 0; b < B; b++) { double d = X[b * D + c] - mean; s2 += d * d; }
        double sd = sqrt(s2 / (double)B);
        for (int64_t b = 0; b < B; b++) {
            double x = X[b * D + c], y;
            if (mode[c] == NF_SCALE_MINMAX) y = hi > lo ? (x - lo) / (hi - lo) : 0.0;
            else if (mode[c] == NF_SCALE_ZSCORE) y = sd > 0 ? (x - mean) / sd : 0.0;
            else return nf_seterr(err, NF_EINVAL, "scale: column %lld: unknown mode %d", (long long)c, mode[c]);
            X[b * D + c] = (float)y;
        }
    }
    return NF_OK;
}
