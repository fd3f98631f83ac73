/* nf_model.h — the NASFLAT latency predictor (METHOD §4): configuration, one contiguous
 * parameter buffer with named slices, batched forward/backward, losses, AdamW, the training
 * loop, inference, model files.
 *
 * Inputs for a batch of B architectures with N nodes: op ids int32 (B×N, 0..n_ops-1),
 * adjacency float (B×N×N, A[i][j] = 1 for the edge i→j), device index int32 per example,
 * optional supplementary vectors z (B×z_dim).
 *
 * Memory: params, grads and the two AdamW moments are four parallel contiguous buffers of
 * n_params floats (one allocation). Activations of a batch live in one arena, sized for the
 * largest batch seen (nf_model_reserve) and reused: no allocation inside a training step.
 */
#ifndef NF_MODEL_H
#define NF_MODEL_H

#include "nf.h"
#include "nf_nn.h"
#include "nf_optim.h"

#define NF_MAXL 8          /* max layers in any stack */
#define NF_NAME_MAX 64     /* max device-name length (bytes, without the NUL) */

typedef enum { NF_DEV_NONE = 0, NF_DEV_NODE = 1, NF_DEV_HEAD = 2 } nf_dev_at;
typedef enum { NF_READOUT_MEAN = 0, NF_READOUT_MASKED = 1, NF_READOUT_REFERENCE = 2 } nf_readout_kind;
/* NF_ARCH_GRAPH: the NASFLAT graph network (layer kind `layer`). NF_ARCH_MLP: the baseline of the
 * design study: no graph layers, no gates; the head reads [one-hot(ops) (N·n_ops) ; adjacency (N·N)]
 * flattened per graph, with the z embedder and the device embedder (device_at head or none). */
typedef enum { NF_ARCH_GRAPH = 0, NF_ARCH_MLP = 1 } nf_arch;
/* The op part of the gate vector: a learned table (op_dim wide) or the fixed one-hot of the op
 * (n_ops wide, no parameters). */
typedef enum { NF_OPENC_LEARNED = 0, NF_OPENC_ONEHOT = 1 } nf_op_encoding;
/* Which activations nf_model_embed returns. */
typedef enum { NF_EMBED_HEAD = 0, NF_EMBED_READOUT = 1 } nf_embed_layer;

typedef struct {
    int nodes, n_ops, z_dim;
    nf_arch arch;                    /* graph network (default) or the flat MLP baseline */
    nf_gl_kind layer;                /* graph layer kind (NF_ARCH_GRAPH only) */
    nf_op_encoding op_encoding;      /* op part of the gates: learned table (default) or one-hot */
    int heads;                       /* GAT-MH heads */
    nf_dev_at device_at;
    int op_dim, hw_dim, node_dim, hid;
    int n_op_layers, op_layers[NF_MAXL];       /* op pass graph layers (128, 128) */
    int n_main_layers, main_layers[NF_MAXL];   /* main pass graph layers (128, 128, 128) */
    int n_gate_mlp, gate_mlp[NF_MAXL];         /* MLP on the output node's state (128, 128, 128) */
    int upd_hidden;                            /* gate-update MLP hidden width (128) */
    int n_z_hidden, z_hidden[NF_MAXL];         /* z embedder hidden widths (128, 128) */
    int z_out;                                 /* z embedder output (48) */
    int z_raw;                                 /* the last z_raw columns of z skip the embedder: the head reads
                                                * them as they are, after the embedder's output (0: none; the
                                                * embedder reads the first z_dim − z_raw columns) */
    int dev_out;                               /* device embedder width at the head (48) */
    int n_head, head[NF_MAXL];                 /* head MLP (200, 200, 200) */
    float dropout;                             /* head and z embedder (0.1) */
    nf_readout_kind readout;
    int none_op;                               /* op id of `none` for masked readouts (-1: none) */
    int quirk_io_emb;        /* first/last node's op embedding replaced by fixed input (0) / learned output vectors */
    int quirk_gat_mask_zero; /* GAT masked logits are 0, not −∞ */
    float gat_slope;         /* 0.2 (reference code effectively uses 0.01) */
} nf_model_cfg;

/* Defaults of METHOD §4 for NB201 (8 nodes, 7 op labels, ensemble, device per node). */
void nf_model_cfg_default(nf_model_cfg *c);
nf_status nf_model_cfg_check(const nf_model_cfg *c, nf_err *err);
/* Width of the op part of a gate: op_dim (learned) or n_ops (one-hot). */
int nf_model_op_width(const nf_model_cfg *c);
/* Gate width: op width + hw_dim when the device enters per node, else the op width (0 for the MLP). */
int nf_model_gate_dim(const nf_model_cfg *c);
/* Width of the graph readout, the part of the head input before z and device: the last main
 * layer's width, or N·n_ops + N·N for the MLP. */
int64_t nf_model_readout_dim(const nf_model_cfg *c);
const char *nf_dev_at_name(nf_dev_at d);
const char *nf_readout_name(nf_readout_kind r);
const char *nf_op_encoding_name(nf_op_encoding e);
/* "mlp" for NF_ARCH_MLP, else the graph layer's name; the parse sets arch and layer (-1: unknown). */
const char *nf_model_layer_name(const nf_model_cfg *c);
int nf_model_layer_parse(nf_model_cfg *c, const char *name);

typedef struct {
    char name[48];
    int64_t off, n, rows, cols;
} nf_pslice;

typedef struct nf_model nf_model;

/* The number of parameters nf_model_new would allocate for this configuration and n_dev devices,
 * without allocating them (same checks and messages as nf_model_new, device names aside). */
nf_status nf_model_count_params(const nf_model_cfg *cfg, int n_dev, int64_t *n_params, nf_err *err);

/* A fresh model with n_dev devices (names copied; NULL names give "dev1", "dev2", ...),
 * parameters initialised from seed (PyTorch-style: linear U(±1/√fan_in), embeddings N(0,1)). */
nf_status nf_model_new(const nf_model_cfg *cfg, int n_dev, const char *const *dev_names, uint64_t seed,
                       nf_model **out, nf_err *err);
void nf_model_free(nf_model *m);   /* NULL ok */
nf_status nf_model_clone(const nf_model *m, nf_model **out, nf_err *err);   /* deep copy (params, moments, meta) */

const nf_model_cfg *nf_model_config(const nf_model *m);
int64_t nf_model_nparams(const nf_model *m);
float *nf_model_params(nf_model *m);
float *nf_model_grads(nf_model *m);
int nf_model_nslices(const nf_model *m);
const nf_pslice *nf_model_slice(const nf_model *m, int i);
const nf_pslice *nf_model_find_slice(const nf_model *m, const char *name);
size_t nf_model_bytes(const nf_model *m);   /* params + grads + moments + arena */

/* Devices. */
int nf_model_ndev(const nf_model *m);
const char *nf_model_dev_name(const nf_model *m, int i);
int nf_model_dev_index(const nf_model *m, const char *name);   /* -1 if unknown */
/* Append a device row; copy_from >= 0 copies that row, else a fresh N(0,1) row from seed.
 * Every other weight (and its AdamW moments) is kept. */
nf_status nf_model_add_device(nf_model *m, const char *name, int copy_from, uint64_t seed, nf_err *err);
nf_status nf_model_copy_device(nf_model *m, int from, int to, nf_err *err);

/* Metadata saved with the model: string keys → numbers (e.g. normalisation constants). */
nf_status nf_model_set_meta(nf_model *m, const char *key, double value, nf_err *err);
int nf_model_nmeta(const nf_model *m);
const char *nf_model_meta_key(const nf_model *m, int i);
double nf_model_meta_value(const nf_model *m, int i);

/* Activation arena for batches up to B (grows, never shrinks). */
nf_status nf_model_reserve(nf_model *m, int64_t B, nf_err *err);

/* Forward over a batch. Input arrays must stay alive until the matching backward.
 * train: dropout on (masks from rng). z may be NULL only when z_dim == 0. */
nf_status nf_model_forward(nf_model *m, int64_t B, const int32_t *ops, const float *adj, const float *z,
                           const int32_t *dev, int train, nf_rng *rng, float *scores, nf_err *err);
/* Backward of the last forward: grads += d(Σ dscores·scores)/dθ. */
nf_status nf_model_backward(nf_model *m, const float *dscores, nf_err *err);
void nf_model_zero_grad(nf_model *m);
/* One AdamW step on all parameters from the gradient buffer (β = 0.9, 0.999, ε = 1e-8). */
void nf_model_adam_step(nf_model *m, float lr, float weight_decay);
/* Forget the AdamW moments (a new optimiser; nf_model_train calls it first). */
void nf_model_reset_optimizer(nf_model *m);

/* Forward FLOPs per graph at batch B (GEMMs + graph loops); a training step is ≈ 3×. */
double nf_model_flops(const nf_model *m, int64_t B);

/* ---------------------------------------------------------------- training (nf_train.c)
 * Layering: nf_train.c calls nf_model.c, never the reverse; both use nf_optim.h (AdamW, cosine
 * annealing, clipping), which nf_model.h includes. */
/* Pairwise hinge ranking loss: pairs i<j with y_i ≠ y_j, at most max_pairs drawn at random
 * (rng) when there are more; loss = mean max(0, margin − sign(y_i−y_j)(s_i−s_j)); ds
 * overwritten. scratch: nf_hinge_scratch_bytes(n) bytes. No pairs: loss 0, ds 0. */
size_t nf_hinge_scratch_bytes(int64_t n);
nf_status nf_loss_hinge(const float *s, const float *y, int64_t n, float margin, int64_t max_pairs, nf_rng *rng,
                        void *scratch, double *loss, float *ds, nf_err *err);
/* Mean squared error; ds overwritten. */
void nf_loss_mse(const float *s, const float *y, int64_t n, double *loss, float *ds);


typedef struct {
    const int32_t *ops;     /* graphs × N */
    const float *adj;       /* graphs × N × N */
    const float *z;         /* graphs × z_dim, or NULL */
    int64_t n_graphs;
    const int64_t *rows;    /* per example: graph row (0-based) */
    const int32_t *dev;     /* per example: device index */
    const float *y;         /* per example: target */
    int64_t n;
} nf_dataset;

typedef struct {
    int epoch, epochs;      /* epoch is 1-based */
    double loss, seconds, lr;
    int64_t steps;
} nf_epoch_info;

typedef enum { NF_LOSS_HINGE = 0, NF_LOSS_MSE = 1 } nf_loss_kind;

typedef struct {
    int epochs, batch;
    float lr, lr_min, weight_decay, clip;     /* clip <= 0: off */
    nf_loss_kind loss;
    float margin;                             /* hinge margin (0.1) */
    uint64_t seed;
    /* NULL: every parameter is trained. Else one flag per parameter slice (nf_model_nslices): the slices
     * flagged nonzero keep their values (no gradient step, no weight decay), e.g. a pre-trained encoder
     * held fixed while a transfer fits the device embedding and the head. */
    const uint8_t *frozen;
    /* once per epoch; return nonzero to stop. May be NULL. */
    int (*on_epoch)(void *ud, const nf_epoch_info *info);
    void *ud;
} nf_train_opts;

void nf_train_opts_default(nf_train_opts *o);
/* Train on the dataset (shuffled batches from seed). Buffers are allocated once, before the
 * first step. Returns the number of epochs run in *epochs_run (may be NULL). */
nf_status nf_model_train(nf_model *m, const nf_dataset *d, const nf_train_opts *o, int *epochs_run, nf_err *err);

/* Scores for n graphs on device dev (or per-graph devices devs when non-NULL), batched, eval mode. */
nf_status nf_model_predict(nf_model *m, const int32_t *ops, const float *adj, const float *z, int64_t n,
                           int32_t dev, const int32_t *devs, float *out, nf_err *err);

/* Eval-mode (no dropout) activations for n graphs, batched like nf_model_predict, into out
 * (n × nf_model_embed_dim): NF_EMBED_HEAD the last hidden layer of the head after its ReLU (the
 * input of the final linear layer, so score = out·W + b; the head input itself when the head has
 * no hidden layer); NF_EMBED_READOUT the graph readout fed to the head, before the z and device
 * parts are appended (for the MLP: the flattened [one-hot(ops) ; adjacency]). */
int64_t nf_model_embed_dim(const nf_model *m, nf_embed_layer which);
nf_status nf_model_embed(nf_model *m, const int32_t *ops, const float *adj, const float *z, int64_t n,
                         int32_t dev, const int32_t *devs, nf_embed_layer which, float *out, nf_err *err);
/* The activations of the last forward (NULL when there is none): rows of width
 * nf_model_embed_dim(m, which), leading dimension *ld. */
const float *nf_model_features(const nf_model *m, nf_embed_layer which, int64_t *ld);

/* Whole-model finite-difference check: random graphs, L = Σ w·scores (or a loss), compares
 * the analytic gradient of up to `per_slice` entries of every parameter slice.
 * loss: 0 = Σ w·s, 1 = hinge, 2 = mse. Dropout is on with a fixed mask per evaluation.
 * The model's parameters are first jittered by N(0, 0.05²) (zero biases would sit on ReLU kinks):
 * use a throw-away model. */
typedef struct {
    int B, per_slice, loss, breakit;
    double eps;
    uint64_t seed;
} nf_model_gradcheck_opts;
nf_status nf_model_gradcheck(nf_model *m, const nf_model_gradcheck_opts *o, nf_gradcheck_result *res, nf_err *err);

/* ---------------------------------------------------------------- model files (nf_modelfile.c)
 * Binary: "NFMODEL\0", u32 format version, u32 header bytes, JSON header (config, devices,
 * meta, library version, parameter slices), u64 n_params, n_params float32 (little endian),
 * u32 CRC-32 of everything before it. Written to a temporary file, then renamed.
 * Version 1 still: config.layer may be "mlp" and config.op_encoding ("learned" | "onehot") was
 * added; files without op_encoding (written before it existed) load as "learned". */
#define NF_MODELFILE_VERSION 1
/* Limits of nf_model_load, checked before anything is allocated for the model: the file must be a
 * regular file (not a directory, FIFO or device such as /dev/zero) of at most NF_MODELFILE_MAX_BYTES
 * (1 GiB: 268M parameters; the default NB201 predictor takes 1.6 MB); the JSON header at most
 * NF_MODELFILE_MAX_HEADER bytes (1 MiB); and the parameter count the header's configuration implies
 * must equal the count stored, which the file size bounds, before the model is allocated. */
#define NF_MODELFILE_MAX_BYTES ((size_t)1 << 30)
#define NF_MODELFILE_MAX_HEADER (1 << 20)
nf_status nf_model_save(const nf_model *m, const char *path, nf_err *err);
nf_status nf_model_load(const char *path, nf_model **out, nf_err *err);

#endif
