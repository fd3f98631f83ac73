/* nf_nn.h — neural-network layers of the NASFLAT predictor, THNN style.
 *
 * Every layer is a pair of plain functions over caller-owned buffers:
 *   forward(params, inputs..., outputs, workspace)
 *   backward(params, grads, inputs..., d_outputs, d_inputs, workspace)
 * Nothing allocates. Parameter gradients ACCUMULATE (+=) into the grads buffers, so one
 * zeroed gradient buffer collects a whole batch. Input gradients are OVERWRITTEN unless a
 * function says otherwise (`acc` flags). Activations are batched over graphs: a tensor
 * "B×N×F" is B·N rows of F floats, row-major; all dense products are one GEMM over B·N rows
 * through nf_gemm. Per-graph N×N work (aggregation, attention) is plain C loops.
 */
#ifndef NF_NN_H
#define NF_NN_H

#include "nf.h"

/* The hottest element-wise kernels (NF_CLONES) are compiled three times, for x86-64-v4 (AVX-512),
 * AVX2 and baseline x86-64, and the loader picks one per machine (GCC function multiversioning):
 * the default build stays portable. All clones do the same IEEE operations in the same order (ISO
 * C mode does not contract a*b+c into FMA; reductions keep their 8 partial sums whatever the
 * vector width), so results do not depend on the machine. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && !defined(NF_NO_CLONES)
#define NF_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#define NF_KERNEL static inline __attribute__((always_inline))   /* inlined into each clone */
#else
#define NF_CLONES
#define NF_KERNEL static inline
#endif

/* ---------------------------------------------------------------- dense layers */
/* Y(rows×out) = X(rows×in)·W(in×out) + b (b may be NULL). X has leading dimension ldx. */
nf_status nf_linear_forward(const float *X, int64_t ldx, const float *W, const float *b,
                            int64_t rows, int64_t in, int64_t out, float *Y, nf_err *err);
/* dW += Xᵀ·dY, db += Σrows dY (db may be NULL); dX = dY·Wᵀ (+= when acc; dX may be NULL). */
nf_status nf_linear_backward(const float *X, int64_t ldx, const float *W, const float *dY,
                             int64_t rows, int64_t in, int64_t out, float *dW, float *db,
                             float *dX, int64_t lddx, int acc, nf_err *err);

/* Y[r] = table[idx[r]] (rows × dim); dtable[idx[r]] += dY[r]. Indices are checked. */
nf_status nf_embedding_forward(const float *table, int64_t n_rows, int64_t dim, const int32_t *idx,
                               int64_t rows, float *Y, int64_t ldy, nf_err *err);
void nf_embedding_backward(float *dtable, int64_t dim, const int32_t *idx, int64_t rows,
                           const float *dY, int64_t lddy);

/* Element-wise activations over n floats; in-place allowed (Y == X). Backward from the output. */
void nf_relu_forward(const float *X, float *Y, size_t n);
void nf_relu_backward(const float *Y, const float *dY, float *dX, size_t n);   /* dX = dY·[Y>0] */
void nf_leaky_relu_forward(const float *X, float *Y, size_t n, float slope);
void nf_leaky_relu_backward(const float *X, const float *dY, float *dX, size_t n, float slope);
void nf_sigmoid_forward(const float *X, float *Y, size_t n);
void nf_sigmoid_backward(const float *Y, const float *dY, float *dX, size_t n);

/* y = a + b, and e += x with d += x: rows of n floats, no two of them overlapping (the gate products of nf_model
 * from their distinct rows, and the gradient sums back to them). */
void nf_row_add(float *restrict y, const float *restrict a, const float *restrict b, int64_t n);
void nf_row_acc2(float *restrict e, float *restrict d, const float *restrict x, int64_t n);

/* X[g·per + i] = relu(X[g·per + i] + w[g]) for g < groups, i < per: rows of F floats (X: groups·per rows). */
void nf_add_rows_relu(float *X, const float *w, int64_t groups, int64_t per, int64_t F);

/* Inverted dropout: mask[k] ∈ {0, 1/(1-p)} drawn from rng; Y = X·mask (in place allowed).
 * p == 0: mask filled with 1 and rng untouched. */
void nf_dropout_forward(const float *X, float *Y, float *mask, size_t n, float p, nf_rng *rng);
void nf_dropout_backward(const float *mask, const float *dY, float *dX, size_t n);

/* Layer norm over the last dimension (rows × dim), affine gamma/beta, eps 1e-5.
 * Saves xhat (rows×dim) and rstd (rows) for the backward. */
void nf_layernorm_forward(const float *X, const float *gamma, const float *beta, int64_t rows, int64_t dim,
                          float *Y, float *xhat, float *rstd);
void nf_layernorm_backward(const float *gamma, const float *xhat, const float *rstd, const float *dY,
                           int64_t rows, int64_t dim, float *dgamma, float *dbeta, float *dX);

/* Masked mean readout: Y[b] = Σ_i w[b,i]·H[b,i] / den[b] (B×N×F → B×F). */
void nf_readout_forward(const float *H, const float *w, const float *den, int64_t B, int64_t N, int64_t F, float *Y);
void nf_readout_backward(const float *w, const float *den, const float *dY, int64_t B, int64_t N, int64_t F, float *dH);

/* ---------------------------------------------------------------- graph layers
 * Inputs per layer: node states H (B×N×in, or N×in shared by all graphs when h_shared),
 * adjacency A (B×N×N, A[i][j] = 1 for the edge i→j; predecessors of i are the j with A[j][i]),
 * and the GATE PRE-ACTIVATION Zg (B×N×(nb·out), leading dimension ldz) = G·Wg + bg, which the
 * model computes for all layers of a pass in one GEMM. The forward overwrites Zg with the gates
 * σ(Zg) (no copy of them in the workspace); the backward reads them there.
 *
 * A layer is nb "branches" whose outputs are averaged: DGF (nb=1), GAT (nb=1), GAT-MH (nb=heads,
 * all GAT), ensemble (nb=2: DGF, GAT). The projections of all branches share one GEMM:
 * P = H·W with W (in × nb·out); branch k owns columns [k·out, (k+1)·out).
 *   DGF branch:  S = P_k;  out_k = σ(Z_k) ⊙ (Aᵀ·S) + S + b_k
 *   GAT branch:  K = P_k;  e_ij = c·Σ_f a_f K_if K_jf,  c = 1/√out;
 *                l_ij = M_ij·leaky(e_ij) for edges j→i, masked entries −∞ (or 0 with quirk_gat_mask_zero);
 *                α = softmax_j(l) (a row without any edge attends to nothing: zero);
 *                out_k = LayerNorm(σ(Z_k) ⊙ Σ_j α_ij K_j; γ_k, β_k)
 * Parameters of a layer, in order (nf_glayer_nparams floats): W (in × nb·out), then per branch:
 *   DGF: b (out);  GAT: a (out), γ (out), β (out). */
typedef enum { NF_GL_DGF = 0, NF_GL_GAT = 1, NF_GL_GAT_MH = 2, NF_GL_ENSEMBLE = 3 } nf_gl_kind;

typedef struct {
    nf_gl_kind kind;
    int in, out;
    int heads;              /* GAT-MH head count (default 4) */
    float gat_slope;        /* leaky-ReLU slope on attention logits (0.2; reference quirk 0.01) */
    int quirk_gat_mask_zero; /* masked logits are 0, not −∞ (every node attends to every node) */
} nf_glayer_cfg;

const char *nf_gl_kind_name(nf_gl_kind k);
int nf_gl_kind_from_name(const char *name);   /* -1 if unknown */
int nf_glayer_branches(const nf_glayer_cfg *c);
int nf_glayer_branch_is_gat(const nf_glayer_cfg *c, int k);
int64_t nf_glayer_nparams(const nf_glayer_cfg *c);
/* Workspace floats for B graphs of N nodes (forward saves + backward scratch). */
int64_t nf_glayer_ws_floats(const nf_glayer_cfg *c, int64_t B, int64_t N);
/* Forward FLOPs per graph (GEMM + graph loops, not counting the gate GEMM). */
double nf_glayer_flops(const nf_glayer_cfg *c, int64_t N);

/* Zg: the gate pre-activations on entry, the gates σ(Zg) on return (columns [0, nb·out) of each row). */
nf_status nf_glayer_forward(const nf_glayer_cfg *c, const float *p, int64_t B, int64_t N,
                            const float *H, int h_shared, const float *A, float *Zg, int64_t ldz,
                            float *out, float *ws, nf_err *err);
/* Zg: the gates the forward left there. dp += parameter gradients; dZg (ldz, not Zg) overwritten;
 * dH (B×N×in, or N×in when h_shared) overwritten or accumulated (acc_dh), may be NULL. dout is read-only. */
nf_status nf_glayer_backward(const nf_glayer_cfg *c, const float *p, float *dp, int64_t B, int64_t N,
                             const float *H, int h_shared, const float *A, const float *dout,
                             const float *Zg, float *dZg, int64_t ldz, float *dH, int acc_dh, float *ws, nf_err *err);

/* ---------------------------------------------------------------- finite-difference checks
 * nf_gradcheck_layer builds one layer with random parameters and inputs (from seed), sets
 * L = Σ w ⊙ output for fixed random w (accumulated in double), and compares the analytic
 * gradient of every parameter and input with central differences.
 * layer: "linear", "embedding", "relu", "leaky_relu", "sigmoid", "dropout", "layernorm",
 * "readout", "dgf", "gat", "gat_mh", "ensemble" (graph layers include their gate linear).
 * Results: max_rel = max over entries of |a−n| / max(|a|, |n|, floor) and
 * rel = ‖a−n‖ / (‖a‖ + ‖n‖) over all entries. `breakit` (tests only) perturbs the analytic
 * gradient (×1.5 + 0.01), to show the check fails on a wrong backward. */
typedef struct {
    const char *layer;
    int B, N, in, out;
    int quirk_gat_mask_zero;
    int h_shared;           /* graph layers: H is N×in, shared by all graphs */
    float gat_slope;
    double eps;
    uint64_t seed;
    int breakit;
} nf_gradcheck_opts;

typedef struct {
    double max_rel, rel;
    int64_t checked;
    /* robust summary: the largest fraction of "bad" entries (error > 5 %) within one
     * parameter slice or input array, and its name. An isolated bad entry is a kink of a
     * ReLU crossed by the step; a wrong backward makes most entries of a slice bad. */
    double worst_bad;
    char worst[48];
} nf_gradcheck_result;

nf_status nf_gradcheck_layer(const nf_gradcheck_opts *o, nf_gradcheck_result *res, nf_err *err);

#endif
