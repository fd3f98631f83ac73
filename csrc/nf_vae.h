/* nf_vae.h — an arch2vec-style variational graph autoencoder trained in C (unsupervised
 * architecture encodings). The label-free encoding kernels are in nf_enc.h, the binary cache of
 * encodings in nf_enccache.h.
 *
 * ------------------------------------------------------------------ the autoencoder
 * Graphs are those of nf_space_graphs: node-op ids (B×N, integers stored as floats, 0..V-1)
 * and a directed adjacency (B×N×N, A[i][j] = 1 for an edge i→j). Messages flow both ways
 * along edges (S = A ∨ Aᵀ); the decoder reconstructs the directed A.
 *
 * Encoder (GIN with a learnt ε per layer, as arch2vec; ε starts at 0):
 *   X⁰ = [one-hot(op) ; one-hot(node position) when cfg.positions]          (R×in0, R = B·N)
 *   for l = 1..layers:  M = (1+ε)·H + S·H (per graph);  H = ReLU(ReLU(M·W1 + b1)·W2 + b2)
 *   [μ | log σ²] = H·We_h + X⁰·We_x (when cfg.skip) + be                       (R×2·latent)
 * Reparameterisation z = μ + exp(½ log σ²)·ε, ε ~ N(0, 1) per node and dimension.
 * Decoders: adjacency logits l_ij = z_iᵀ·Wa·z_j + c for i≠j (bilinear: Wa starts as the identity,
 * i.e. arch2vec's inner product; c, a learnt bias, at 0); op logits z·Wo + bo.
 *
 * Departures from arch2vec, each measured on held-out graphs (10% of the space, seed 7):
 *  - learnt ε (arch2vec has it; GIN-0 is the tempting simplification): with ε = 0 a node of op a
 *    beside op b and a node of op b beside op a aggregate alike; nb201 after 15 epochs: op
 *    accuracy 0.968, whole graphs 0.77 with ε = 0; 1.000 and 0.999 with learnt ε;
 *  - the node-position one-hot (arch2vec: ops only): nb201 15 epochs, ε = 0: whole graphs 0.06
 *    without, 0.71 with; fbnet's chain nodes are otherwise alike;
 *  - the skip X⁰ → latent head and the bilinear adjacency decoder: on fbnet's 22-node chain the
 *    plain inner product (symmetric, so undirected pairs) stalled at 0.75 pair accuracy after 25
 *    epochs, below the all-absent guess (0.91); with the bias c, 0.94 after 30; bilinear without
 *    the skip predicted every directed pair absent (0.954) after 20; bilinear with the skip
 *    reconstructs every held-out fbnet graph exactly after 10 epochs (5,000 graphs), and nb201
 *    too. Deep sum aggregation blurs each node's own position and op; the skip restores them.
 *
 * Loss (each term a mean, so the batch size does not change the balance):
 *   CE(op logits, op) over the R nodes + BCE(σ(l_ij), A_ij) over the B·N·(N−1) pairs i≠j
 *   + beta · KL(N(μ, σ²) ‖ N(0, I)) summed over the latent dims, averaged over the R nodes.
 * Training: Adam (β1 0.9, β2 0.999, ε 1e-8, no weight decay), mini-batches of cfg.batch graphs
 * in an order shuffled per epoch by the caller's rng. Nothing is allocated per step: the model
 * owns one parameter block (params | grads | Adam m | Adam v, llm.c style) and one scratch
 * arena sized for cfg.batch graphs. All dense products go through nf_gemm.
 * Graph embedding (nf_vae_embed): the mean over the N nodes of μ (no sampling), latent dims.
 * Determinism: same config, same rng seed, same data and BLAS thread count → same numbers.
 *
 * The parameter block, in order: per GIN layer ε (1), W1 (in×hidden), b1, W2 (hidden×hidden), b2
 * (in = in0 for the first layer, hidden after); We ((hidden [+ in0 with skip])×2·latent: We_h
 * rows, then We_x rows), be; Wo (latent×V), bo; Wa (latent×latent), c (1).
 */
#ifndef NF_VAE_H
#define NF_VAE_H

#include "nf.h"

typedef struct {
    int nodes;        /* N: nodes per graph, 1..64 (nb201 8, fbnet 22) */
    int vocab;        /* V: node-op vocabulary, 1..256 (nb201 7, fbnet 9) */
    int positions;    /* 1: node-position one-hot in the input features (see nf_vae_config_default) */
    int skip;         /* 1: the latent head also reads the input features X⁰ (see the header comment) */
    int hidden;       /* GIN width, 1..4096 */
    int layers;       /* GIN layers, 1..16 */
    int latent;       /* per-node latent size = embedding size, 1..1024 */
    int batch;        /* graphs per training step (and per chunk when encoding), 1..65536 */
    float lr;         /* Adam step size, > 0 */
    float beta;       /* KL weight, >= 0 */
} nf_vae_config;

/* The defaults: positions 1, skip 1, hidden 64, layers 3, latent 32, batch 32, lr 1e-3,
 * beta 0.005 (nodes and vocab set to the arguments). */
nf_vae_config nf_vae_config_default(int nodes, int vocab);

typedef struct nf_vae nf_vae;

/* A new model with parameters drawn from rng (Xavier-uniform weights, zero biases).
 * Config errors are NF_EINVAL naming the field. *out is NULL on failure. */
nf_status nf_vae_new(const nf_vae_config *cfg, nf_rng *rng, nf_vae **out, nf_err *err);
void nf_vae_free(nf_vae *v);                                 /* NULL allowed */
const nf_vae_config *nf_vae_get_config(const nf_vae *v);
int64_t nf_vae_nparams(const nf_vae *v);
float *nf_vae_params(nf_vae *v);                             /* nparams floats */
float *nf_vae_grads(nf_vae *v);                              /* nparams floats, filled by nf_vae_loss */
size_t nf_vae_bytes(const nf_vae *v);                        /* memory held (for GC accounting) */
int64_t nf_vae_steps(const nf_vae *v);                       /* Adam steps taken so far */

/* Check graphs: ops integers in 0..V-1, adjacency entries 0 or 1, no self-loops.
 * Errors (NF_EINVAL) name the graph and node, 0-based: "graph 12, node 3: op id 9 out of range 0..6". */
nf_status nf_vae_check_graphs(const nf_vae *v, const float *ops, const float *adj, int64_t B, nf_err *err);

/* One epoch over the graphs rows[0..n_rows) (0-based indices into the B graphs; rows NULL = all B),
 * shuffled with rng, which also draws the reparameterisation noise. *loss (optional) = the mean
 * of the step losses. A non-finite loss stops with NF_ERANGE ("diverged at step ..."). */
nf_status nf_vae_train_epoch(nf_vae *v, const float *ops, const float *adj, int64_t B,
                             const int64_t *rows, int64_t n_rows, nf_rng *rng, double *loss, nf_err *err);

/* Loss and gradients (into nf_vae_grads, overwritten) of B <= cfg.batch graphs with the given
 * noise (B·N·latent values; NULL = zero noise, i.e. z = μ). parts (optional, 3 values): the op
 * CE, the adjacency BCE and the KL term before its beta weight. No parameter update. */
nf_status nf_vae_loss(nf_vae *v, const float *ops, const float *adj, int64_t B, const float *noise,
                      double *loss, double parts[3], nf_err *err);

/* Graph embeddings: out (B×latent) = mean over nodes of μ. Any B (processed in chunks). */
nf_status nf_vae_embed(nf_vae *v, const float *ops, const float *adj, int64_t B, float *out, nf_err *err);

/* Reconstruction from μ (no sampling) of the graphs rows[0..n_rows) (NULL = all B):
 *  ops  = fraction of nodes whose argmax op equals the true op,
 *  adj  = fraction of ordered node pairs i≠j whose decision l_ij > 0 equals A_ij,
 *  graph = fraction of graphs with every op and every pair right. */
typedef struct { double ops, adj, graph; int64_t n; } nf_vae_accuracy;
nf_status nf_vae_reconstruct_accuracy(nf_vae *v, const float *ops, const float *adj, int64_t B,
                                      const int64_t *rows, int64_t n_rows, nf_vae_accuracy *acc, nf_err *err);

/* ------------------------------------------------------------ layers (for gradient checks)
 * Aggregation, per graph b: out_b = (1+eps)·H_b + S_b·H_b (S: B×N×N, H: B×N×F).
 * Backward: dH_b = (1+eps)·dOut_b + S_bᵀ·dOut_b (dH may be NULL; overwritten), and
 * *deps += Σ dOut ⊙ H (deps may be NULL). */
void nf_vae_aggregate_forward(const float *S, const float *H, float eps, int64_t B, int64_t N, int64_t F, float *out);
void nf_vae_aggregate_backward(const float *S, const float *H, const float *dOut, float eps, int64_t B, int64_t N,
                               int64_t F, float *dH, float *deps);
/* Bilinear adjacency decoder + BCE, given Q = Z·Waᵀ (row j = Wa·z_j): returns
 * scale · Σ_b Σ_{i≠j} BCE(σ(z_i·q_j + c), A_ij). dZ, dQ (optional, B×N×D, overwritten) are its
 * gradients w.r.t. Z and Q; *dc (optional) accumulates the gradient w.r.t. c. */
double nf_vae_adj_loss(const float *Z, const float *Q, const float *A, float c, int64_t B, int64_t N, int64_t D,
                       double scale, float *dZ, float *dQ, float *dc);
/* Softmax cross-entropy: returns scale · Σ_r CE(logits_r, ops_r); dlogits (optional, R×V, overwritten). */
double nf_vae_op_loss(const float *logits, const int32_t *ops, int64_t R, int64_t V, double scale, float *dlogits);
/* Reparameterisation and KL. E is R×2D ([μ | log σ²] per row); Z = μ + exp(½ log σ²)·noise
 * (noise NULL = 0); returns Σ_r 0.5·Σ_k (μ² + σ² − 1 − log σ²). Backward: dE (R×2D, overwritten)
 * from dZ and the KL weight kl_scale (the loss term is kl_scale · KL sum). */
double nf_vae_reparam_forward(const float *E, const float *noise, int64_t R, int64_t D, float *Z);
void nf_vae_reparam_backward(const float *E, const float *noise, const float *dZ, int64_t R, int64_t D,
                             double kl_scale, float *dE);

/* Finite-difference gradient check of every layer and of the whole loss, on a random model
 * and random ordered DAGs (fixed reparameterisation noise). Central differences with step h;
 * error of one entry = |analytic − numeric| / max(|analytic|, |numeric|, 1e-2); each field is
 * the maximum over the checked entries: every input of each layer, every model parameter
 * (model), and the derivative along 8 random unit directions in parameter space (model_dir,
 * floor 1e-3: robust where float32 noise swamps single small entries of a large model).
 * sabotage != 0 scales the analytic model gradient by 1.05 (both model checks must then fail). */
typedef struct { int B, nodes, vocab, hidden, layers, latent; uint64_t seed; double h; int sabotage; } nf_vae_gradcheck_opts;
typedef struct { double aggregate, adj_decoder, op_decoder, reparam_kl, model, model_dir; int64_t checked; } nf_vae_gradcheck_result;
nf_status nf_vae_gradcheck(const nf_vae_gradcheck_opts *o, nf_vae_gradcheck_result *r, nf_err *err);

#endif
