/* nf_mlp.h — a small ReLU MLP meta-learned with MAML over devices (the HELP baseline: Lee et al., NeurIPS 2021).
 *
 * The network reads one input row [x ; h]: x an architecture encoding (in_x floats), h a device's hardware
 * embedding (in_h floats, the same for every row of a device). Its weight layers l = 1..L map width[l-1] to
 * width[l] (ReLU between, none after the last). The first n_split layers are block-diagonal in two blocks, so that
 * x and h go through separate towers before they meet (HELP's fc1/fc2 and fc_hw1/fc_hw2, then fc3..fc5 on the
 * concatenation): layer l's rows [0, s_in) feed only its columns [0, split_out[l]), its rows [s_in, width[l-1])
 * only the others (s_in = in_x for layer 1, split_out[l-1] after). The off-block weights are held at zero by a
 * fixed 0/1 mask over the parameters: every gradient and Hessian-vector product below is masked.
 *
 * Parameters θ: one allocation of P floats, W1 (width0 × width1, row-major, Y = X·W + b), b1, W2, b2, ... Beside
 * them the per-parameter inner learning rates α (P floats; Meta-SGD when learned, a constant for plain MAML).
 *
 * Loss: mean squared error over the rows (and output columns).
 * Inner loop (MAML): θ_0 = θ, θ_{t+1} = θ_t − α ⊙ ∇L_s(θ_t), t < T, on a device's support rows.
 * Outer loss: L_q(θ_T) on the device's query rows. Its gradient, by reverse accumulation through the steps:
 *   λ_T = ∇L_q(θ_T);  λ_t = λ_{t+1} − H_s(θ_t)·(α ⊙ λ_{t+1})   (second order; first order: λ_t = λ_{t+1});
 *   ∂/∂θ = λ_0,  ∂/∂α = −Σ_t ∇L_s(θ_t) ⊙ λ_{t+1}.
 * The Hessian-vector products H_s·v are exact, by Pearlmutter's R-operator (a forward and a backward pass over
 * the support rows in the direction v; ReLU's second derivative is zero almost everywhere).
 *
 * The object owns its parameters, Adam moments and one workspace sized at creation for `max_rows` rows and
 * `max_steps` inner steps: nothing allocates after nf_mlp_new except nf_mlp_meta_train's per-call index lists.
 * Every dense product is a GEMM through nf_linear_forward/backward or nf_gemm. No global state. */
#ifndef NF_MLP_H
#define NF_MLP_H

#include "nf.h"

#define NF_MLP_MAXL 8

typedef struct {
    int n_layers;                   /* weight layers L, 1..NF_MLP_MAXL */
    int width[NF_MLP_MAXL + 1];     /* width[0] = in_x + in_h (input), width[L] = outputs */
    int in_x, in_h;                 /* input columns: the encoding, then the hardware embedding (in_h may be 0) */
    int n_split;                    /* the first n_split layers are block-diagonal (0: a plain MLP); < L */
    int split_out[NF_MLP_MAXL];     /* layer l's first block has split_out[l] output columns (0-based l) */
} nf_mlp_cfg;

typedef struct nf_mlp nf_mlp;

/* A network with zero parameters, α filled with 1e-3; max_rows >= 1 rows per batch, max_steps >= 1 inner steps. */
nf_status nf_mlp_new(const nf_mlp_cfg *cfg, int64_t max_rows, int max_steps, nf_mlp **out, nf_err *err);
void nf_mlp_free(nf_mlp *m);    /* NULL allowed */
/* A deep copy (parameters, α, mask, Adam state). */
nf_status nf_mlp_clone(const nf_mlp *m, nf_mlp **out, nf_err *err);
const nf_mlp_cfg *nf_mlp_config(const nf_mlp *m);
int64_t nf_mlp_nparams(const nf_mlp *m);
int64_t nf_mlp_max_rows(const nf_mlp *m);
int nf_mlp_max_steps(const nf_mlp *m);
size_t nf_mlp_bytes(const nf_mlp *m);
float *nf_mlp_params(nf_mlp *m);          /* θ, P floats (writes: keep masked entries zero) */
float *nf_mlp_alpha(nf_mlp *m);           /* α, P floats */
const float *nf_mlp_mask(const nf_mlp *m);
/* PyTorch's nn.Linear initialisation per block: W and b uniform in ±1/√fan_in (fan_in of the block); off-block
 * weights zero; α filled with alpha0; Adam state reset. */
void nf_mlp_init(nf_mlp *m, float alpha0, nf_rng *rng);

/* Predictions for n rows (any n: processed in chunks of max_rows): xa n × in_x (leading dimension in_x), h the
 * in_h floats of the device; theta NULL = the object's θ. out: n × width[L]. */
nf_status nf_mlp_predict(nf_mlp *m, const float *theta, const float *xa, const float *h, int64_t n, float *out,
                         nf_err *err);
/* MSE loss of n <= max_rows rows against y (n × width[L]) and its gradient (P floats, overwritten, masked). */
nf_status nf_mlp_loss_grad(nf_mlp *m, const float *theta, const float *xa, const float *h, const float *y,
                           int64_t n, double *loss, float *grad, nf_err *err);
/* hv = H·v, the Hessian of the MSE loss of n <= max_rows rows at theta, times v (masked; P floats each). */
nf_status nf_mlp_hvp(nf_mlp *m, const float *theta, const float *xa, const float *h, const float *y, int64_t n,
                     const float *v, float *hv, nf_err *err);
/* The inner loop: theta_out = θ_T after `steps` (<= max_steps) steps from the object's θ with its α, on n rows.
 * theta_out may be the object's own θ (adapt in place). */
nf_status nf_mlp_adapt(nf_mlp *m, const float *xa, const float *h, const float *y, int64_t n, int steps,
                       float *theta_out, nf_err *err);
/* The outer loss L_q(θ_T) of one device and its gradient: g_theta += ∂/∂θ, g_alpha += ∂/∂α (may be NULL), from
 * the object's θ and α. second_order 0: first-order MAML (the Hessian terms dropped). ns, nq <= max_rows. */
nf_status nf_mlp_maml_grad(nf_mlp *m, const float *xs, const float *ys, int64_t ns, const float *xq,
                           const float *yq, int64_t nq, const float *h, int steps, int second_order, double *loss,
                           float *g_theta, float *g_alpha, nf_err *err);

/* Meta-training episodes (HELP's generate_episode / meta_train): each episode draws `tasks` distinct devices,
 * for each a random `support` rows and, after them, `query` more rows of that device's measured rows (y not NaN),
 * accumulates the outer gradients of the devices (mean over them), and takes one Adam step (lr, β 0.9/0.999,
 * ε 1e-8, no weight decay) on θ, and on α when learn_alpha. The Adam state persists in the object across calls.
 * x: N × in_x encodings of every architecture; y: D × N labels of each device (NaN: not measured or left out);
 * hw: D × in_h hardware embeddings. A device with fewer than support + query labelled rows is refused.
 * mean_loss: mean outer loss over the episodes of this call. */
typedef struct {
    int episodes, tasks, support, query, steps, second_order, learn_alpha;
    float lr;
} nf_mlp_meta_opts;
nf_status nf_mlp_meta_train(nf_mlp *m, const float *x, int64_t N, const float *y, const float *hw, int64_t D,
                            const nf_mlp_meta_opts *o, nf_rng *rng, double *mean_loss, nf_err *err);

/* The encoding of architectures by a lookup table per choice: out row r = [table[codes[r,0]], table[codes[r,1]],
 * ...] (codes n × positions, choice ids as floats; table choices × dim). HELP's FBNet encoding is the table
 * k3/k5 flags + e1, e1_g2, e3, e6 one-hot (skip all zero); one-hot is the identity table. */
nf_status nf_codes_lookup(const float *codes, int64_t n, int64_t positions, const float *table, int64_t choices,
                          int64_t dim, float *out, nf_err *err);

#endif
