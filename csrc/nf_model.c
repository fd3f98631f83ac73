/* nf_model.c — the NASFLAT predictor: parameter layout, initialisation, devices, metadata,
 * the activation arena, forward and backward over a batch (METHOD §4). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nf_model.h"

enum { I_UNI, I_NORMAL, I_ZERO, I_ONE };

typedef struct {
    /* embeddings */
    int64_t op_emb, dev_emb, io_out, node_in, node_other, xW, xb;
    /* graph passes */
    int64_t opL[NF_MAXL], mainL[NF_MAXL];
    int64_t op_gW, op_gb, main_gW, main_gb;
    /* MLPs: W and b offsets */
    int64_t gmW[NF_MAXL], gmb[NF_MAXL];
    int64_t up1W, up1b, up2W, up2b;
    int64_t zW[NF_MAXL + 1], zb[NF_MAXL + 1];
    int64_t dW[2], db[2];
    int64_t hW[NF_MAXL + 1], hb[NF_MAXL + 1];
} offsets;

/* Activations of one batch: pointers into the arena (see act_layout). */
typedef struct {
    float *Es, *Dg, *tabE, *tabD, *NE, *X, *Zop, *Zmain;
    float *opY[NF_MAXL], *opWS[NF_MAXL], *mainY[NF_MAXL], *mainWS[NF_MAXL];
    float *gm[NF_MAXL], *mW, *U, *Gp;
    float *row, *rden, *ro;
    float *zh[NF_MAXL], *zmask[NF_MAXL], *zo;
    float *din, *dh, *dout;
    float *hin, *hh[NF_MAXL], *hmask[NF_MAXL], *score;
    /* backward scratch */
    float *dA, *dB, *dZ, *dEs, *dDg, *dGp, *dU, *dX, *dNE, *s1, *s2, *dhin;
    int64_t total;
} act;

struct nf_model {
    nf_model_cfg cfg;
    int gd;
    int n_dev;
    char (*dev_names)[NF_NAME_MAX + 1];
    int64_t n_params;
    float *mem, *params, *grads, *m1, *m2;
    int64_t adam_t;
    nf_pslice *slices;
    int *sinit;
    float *sbound;
    int n_slices, cap_slices;
    offsets o;
    nf_glayer_cfg opc[NF_MAXL], mainc[NF_MAXL];
    int64_t Sop, Smain, opco[NF_MAXL], mainco[NF_MAXL];
    int n_meta;
    char (*meta_keys)[64];
    double *meta_vals;
    float *arena;
    int64_t arena_floats, arena_B;
    act a;
    /* the last forward */
    int64_t B;
    const int32_t *ops, *dev;
    const float *adj, *z;
    int train, have_fwd;
};

/* ---------------------------------------------------------------- configuration */
void nf_model_cfg_default(nf_model_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->nodes = 8;
    c->n_ops = 7;
    c->z_dim = 0;
    c->arch = NF_ARCH_GRAPH;
    c->layer = NF_GL_ENSEMBLE;
    c->op_encoding = NF_OPENC_LEARNED;
    c->heads = 4;
    c->device_at = NF_DEV_NODE;
    c->op_dim = 40;
    c->hw_dim = 8;
    c->node_dim = 48;
    c->hid = 96;
    c->n_op_layers = 2;
    c->op_layers[0] = c->op_layers[1] = 128;
    c->n_main_layers = 3;
    c->main_layers[0] = c->main_layers[1] = c->main_layers[2] = 128;
    c->n_gate_mlp = 3;
    c->gate_mlp[0] = c->gate_mlp[1] = c->gate_mlp[2] = 128;
    c->upd_hidden = 128;
    c->n_z_hidden = 2;
    c->z_hidden[0] = c->z_hidden[1] = 128;
    c->z_out = 48;
    c->dev_out = 48;
    c->n_head = 3;
    c->head[0] = c->head[1] = c->head[2] = 200;
    c->dropout = 0.1f;
    c->readout = NF_READOUT_MEAN;
    c->none_op = -1;
    c->gat_slope = 0.2f;
}

int nf_model_op_width(const nf_model_cfg *c)
{
    return c->op_encoding == NF_OPENC_ONEHOT ? c->n_ops : c->op_dim;
}

int nf_model_gate_dim(const nf_model_cfg *c)
{
    if (c->arch == NF_ARCH_MLP) return 0;
    return nf_model_op_width(c) + (c->device_at == NF_DEV_NODE ? c->hw_dim : 0);
}

int64_t nf_model_readout_dim(const nf_model_cfg *c)
{
    if (c->arch == NF_ARCH_MLP) return (int64_t)c->nodes * c->n_ops + (int64_t)c->nodes * c->nodes;
    return c->main_layers[c->n_main_layers - 1];
}

/* The gate inputs G0 (METHOD §4, step 1): row (b, i) is [op part of node i of graph b ; device row of graph b].
 * The op part is one of gate_parts(c) rows: the n_ops op rows (learned or one-hot), then under quirk_io_emb a zero
 * row for the input node and the io_out row for the output node. */
static int64_t gate_parts(const nf_model_cfg *c) { return (int64_t)c->n_ops + 2; }

static int64_t gate_part(const nf_model_cfg *c, const int32_t *ops, int64_t b, int64_t i)
{
    const int64_t N = c->nodes;
    if (c->op_encoding == NF_OPENC_LEARNED && c->quirk_io_emb) {
        if (i == 0) return c->n_ops;
        if (i == N - 1) return (int64_t)c->n_ops + 1;
    }
    return ops[b * N + i];
}

/* Head input width: readout, then the z embedder's output and the raw z columns, then the device embedder's. */
static int64_t head_in(const nf_model_cfg *c)
{
    return nf_model_readout_dim(c) + (c->z_dim > 0 ? c->z_out + c->z_raw : 0) +
           (c->device_at == NF_DEV_HEAD ? c->dev_out : 0);
}

const char *nf_op_encoding_name(nf_op_encoding e) { return e == NF_OPENC_ONEHOT ? "onehot" : "learned"; }

const char *nf_model_layer_name(const nf_model_cfg *c)
{
    return c->arch == NF_ARCH_MLP ? "mlp" : nf_gl_kind_name(c->layer);
}

int nf_model_layer_parse(nf_model_cfg *c, const char *name)
{
    if (strcmp(name, "mlp") == 0) {
        c->arch = NF_ARCH_MLP;
        return 0;
    }
    int k = nf_gl_kind_from_name(name);
    if (k < 0) return -1;
    c->arch = NF_ARCH_GRAPH;
    c->layer = (nf_gl_kind)k;
    return 0;
}

const char *nf_dev_at_name(nf_dev_at d)
{
    return d == NF_DEV_NODE ? "node" : d == NF_DEV_HEAD ? "head" : "none";
}

const char *nf_readout_name(nf_readout_kind r)
{
    return r == NF_READOUT_MASKED ? "masked" : r == NF_READOUT_REFERENCE ? "reference" : "mean";
}

static nf_status check_stack(const char *name, int n, const int *w, int min_n, nf_err *err)
{
    if (n < min_n || n > NF_MAXL)
        return nf_seterr(err, NF_EINVAL, "model config: %s needs %d..%d layers (got %d)", name, min_n, NF_MAXL, n);
    for (int i = 0; i < n; i++)
        if (w[i] < 1 || w[i] > 65536)
            return nf_seterr(err, NF_EINVAL, "model config: %s width %d is %d (must be 1..65536)", name, i + 1, w[i]);
    return NF_OK;
}

nf_status nf_model_cfg_check(const nf_model_cfg *c, nf_err *err)
{
    nf_status st;
    if (c->nodes < 2 || c->nodes > 1024)
        return nf_seterr(err, NF_EINVAL, "model config: nodes must be in 2..1024 (got %d)", c->nodes);
    if (c->n_ops < 1 || c->n_ops > 100000)
        return nf_seterr(err, NF_EINVAL, "model config: n_ops must be in 1..100000 (got %d)", c->n_ops);
    if (c->z_dim < 0 || c->z_dim > 65536)
        return nf_seterr(err, NF_EINVAL, "model config: z_dim must be in 0..65536 (got %d)", c->z_dim);
    if (c->z_raw < 0 || (c->z_raw > 0 && c->z_raw >= c->z_dim))
        return nf_seterr(err, NF_EINVAL, "model config: z_raw must be in 0..z_dim-1 (got %d, z_dim %d)", c->z_raw,
                         c->z_dim);
    if (c->arch != NF_ARCH_GRAPH && c->arch != NF_ARCH_MLP)
        return nf_seterr(err, NF_EINVAL, "model config: unknown architecture %d", (int)c->arch);
    if (c->layer < NF_GL_DGF || c->layer > NF_GL_ENSEMBLE)
        return nf_seterr(err, NF_EINVAL, "model config: unknown graph layer %d", (int)c->layer);
    if (c->op_encoding != NF_OPENC_LEARNED && c->op_encoding != NF_OPENC_ONEHOT)
        return nf_seterr(err, NF_EINVAL, "model config: unknown op encoding %d", (int)c->op_encoding);
    if (c->layer == NF_GL_GAT_MH && (c->heads < 1 || c->heads > 16))
        return nf_seterr(err, NF_EINVAL, "model config: heads must be in 1..16 (got %d)", c->heads);
    if (c->device_at < NF_DEV_NONE || c->device_at > NF_DEV_HEAD)
        return nf_seterr(err, NF_EINVAL, "model config: unknown device placement %d", (int)c->device_at);
    const struct { const char *n; int v; } dims[] = {
        {"op_dim", c->op_dim}, {"node_dim", c->node_dim}, {"hid", c->hid}, {"upd_hidden", c->upd_hidden},
        {"z_out", c->z_out}, {"dev_out", c->dev_out},
        {"hw_dim", c->device_at == NF_DEV_NONE ? 1 : c->hw_dim},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < 1 || dims[i].v > 65536)
            return nf_seterr(err, NF_EINVAL, "model config: %s must be in 1..65536 (got %d)", dims[i].n, dims[i].v);
    if ((st = check_stack("op_layers", c->n_op_layers, c->op_layers, 1, err))) return st;
    if ((st = check_stack("main_layers", c->n_main_layers, c->main_layers, 1, err))) return st;
    if ((st = check_stack("gate_mlp", c->n_gate_mlp, c->gate_mlp, 1, err))) return st;
    if ((st = check_stack("z_hidden", c->n_z_hidden, c->z_hidden, 0, err))) return st;
    if ((st = check_stack("head", c->n_head, c->head, 0, err))) return st;
    if (c->gate_mlp[c->n_gate_mlp - 1] < 1)
        return nf_seterr(err, NF_EINVAL, "model config: gate_mlp is empty");
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return nf_seterr(err, NF_EINVAL, "model config: dropout must be in [0, 1) (got %g)", (double)c->dropout);
    if (!(c->gat_slope >= 0.0f && c->gat_slope <= 1.0f))
        return nf_seterr(err, NF_EINVAL, "model config: gat_slope must be in [0, 1] (got %g)", (double)c->gat_slope);
    if (c->readout < NF_READOUT_MEAN || c->readout > NF_READOUT_REFERENCE)
        return nf_seterr(err, NF_EINVAL, "model config: unknown readout %d", (int)c->readout);
    if (c->readout != NF_READOUT_MEAN && (c->none_op < 0 || c->none_op >= c->n_ops))
        return nf_seterr(err, NF_EINVAL, "model config: readout '%s' needs none_op in 0..%d (got %d)",
                         nf_readout_name(c->readout), c->n_ops - 1, c->none_op);
    if (c->arch == NF_ARCH_MLP && c->device_at == NF_DEV_NODE)
        return nf_seterr(err, NF_EINVAL, "model config: layer 'mlp' has no nodes to carry the device "
                         "(device_at must be head or none)");
    if (c->arch == NF_ARCH_MLP && c->op_encoding != NF_OPENC_ONEHOT)
        return nf_seterr(err, NF_EINVAL, "model config: layer 'mlp' reads the ops one-hot (op_encoding must be onehot)");
    if (c->arch == NF_ARCH_MLP && nf_model_readout_dim(c) > (1 << 20))
        return nf_seterr(err, NF_EINVAL, "model config: the MLP input N*n_ops + N*N = %lld is too wide (at most %d)",
                         (long long)nf_model_readout_dim(c), 1 << 20);
    if (c->op_encoding == NF_OPENC_ONEHOT && c->quirk_io_emb)
        return nf_seterr(err, NF_EINVAL, "model config: quirk_io_emb replaces learned op embeddings "
                         "(it needs op_encoding learned)");
    return NF_OK;
}

/* ---------------------------------------------------------------- parameter layout */
static nf_status add_slice(nf_model *m, const char *name, int64_t rows, int64_t cols, int init, float bound,
                           int64_t *off, nf_err *err)
{
    if (m->n_slices == m->cap_slices) {
        int cap = m->cap_slices ? 2 * m->cap_slices : 64;
        nf_pslice *s = realloc(m->slices, (size_t)cap * sizeof *s);
        if (s) m->slices = s;
        int *si = realloc(m->sinit, (size_t)cap * sizeof *si);
        if (si) m->sinit = si;
        float *sb = realloc(m->sbound, (size_t)cap * sizeof *sb);
        if (sb) m->sbound = sb;
        if (!s || !si || !sb) return nf_seterr(err, NF_ENOMEM, "model: out of memory (parameter table)");
        m->cap_slices = cap;
    }
    nf_pslice *s = &m->slices[m->n_slices];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->off = m->n_params;
    s->rows = rows;
    s->cols = cols;
    s->n = rows * cols;
    m->sinit[m->n_slices] = init;
    m->sbound[m->n_slices] = bound;
    m->n_slices++;
    *off = m->n_params;
    m->n_params += rows * cols;
    return NF_OK;
}

static nf_status add_linear(nf_model *m, const char *name, int64_t in, int64_t out, int64_t *W, int64_t *b, nf_err *err)
{
    char buf[128];
    float bound = 1.0f / sqrtf((float)in);
    nf_status st;
    snprintf(buf, sizeof buf, "%s.W", name);
    if ((st = add_slice(m, buf, in, out, I_UNI, bound, W, err))) return st;
    snprintf(buf, sizeof buf, "%s.b", name);
    return add_slice(m, buf, 1, out, I_UNI, bound, b, err);
}

static nf_status add_glayer(nf_model *m, const char *name, const nf_glayer_cfg *c, int64_t *off, nf_err *err)
{
    /* the slices of one graph layer are contiguous, in the order nf_glayer_forward expects */
    char buf[128];
    nf_status st;
    int nb = nf_glayer_branches(c);
    int64_t o;
    snprintf(buf, sizeof buf, "%s.W", name);
    if ((st = add_slice(m, buf, c->in, (int64_t)nb * c->out, I_UNI, 1.0f / sqrtf((float)c->in), off, err))) return st;
    for (int k = 0; k < nb; k++) {
        float bo = 1.0f / sqrtf((float)c->out);
        if (nf_glayer_branch_is_gat(c, k)) {
            snprintf(buf, sizeof buf, "%s.%d.a", name, k);
            if ((st = add_slice(m, buf, 1, c->out, I_UNI, bo, &o, err))) return st;
            snprintf(buf, sizeof buf, "%s.%d.ln_g", name, k);
            if ((st = add_slice(m, buf, 1, c->out, I_ONE, 0, &o, err))) return st;
            snprintf(buf, sizeof buf, "%s.%d.ln_b", name, k);
            if ((st = add_slice(m, buf, 1, c->out, I_ZERO, 0, &o, err))) return st;
        } else {
            snprintf(buf, sizeof buf, "%s.%d.b", name, k);
            if ((st = add_slice(m, buf, 1, c->out, I_UNI, bo, &o, err))) return st;
        }
    }
    return NF_OK;
}

/* The graph network's slices: node embeddings, the two graph passes, their gates, the gate update. */
static nf_status graph_layout(nf_model *m, nf_err *err)
{
    const nf_model_cfg *c = &m->cfg;
    offsets *o = &m->o;
    nf_status st;
    char buf[48];
#define TRY(x) do { if ((st = (x))) return st; } while (0)
    TRY(add_slice(m, "node_in", 1, c->node_dim, I_NORMAL, 0, &o->node_in, err));
    TRY(add_slice(m, "node_other", 1, c->node_dim, I_ZERO, 0, &o->node_other, err));
    TRY(add_linear(m, "x", c->node_dim, c->hid, &o->xW, &o->xb, err));
    /* graph passes: layer configs and the column offsets of their gates */
    for (int pass = 0; pass < 2; pass++) {
        int nl = pass ? c->n_main_layers : c->n_op_layers;
        const int *w = pass ? c->main_layers : c->op_layers;
        nf_glayer_cfg *gc = pass ? m->mainc : m->opc;
        int64_t *co = pass ? m->mainco : m->opco, S = 0;
        for (int l = 0; l < nl; l++) {
            gc[l].kind = c->layer;
            gc[l].in = l ? w[l - 1] : c->hid;
            gc[l].out = w[l];
            gc[l].heads = c->heads;
            gc[l].gat_slope = c->gat_slope;
            gc[l].quirk_gat_mask_zero = c->quirk_gat_mask_zero;
            co[l] = S;
            S += (int64_t)nf_glayer_branches(&gc[l]) * w[l];
            snprintf(buf, sizeof buf, "%s%d", pass ? "main" : "op", l + 1);
            TRY(add_glayer(m, buf, &gc[l], pass ? &o->mainL[l] : &o->opL[l], err));
        }
        if (pass) m->Smain = S; else m->Sop = S;
        float bound = 1.0f / sqrtf((float)m->gd);
        TRY(add_slice(m, pass ? "main_gate.W" : "op_gate.W", m->gd, S, I_UNI, bound, pass ? &o->main_gW : &o->op_gW, err));
        TRY(add_slice(m, pass ? "main_gate.b" : "op_gate.b", 1, S, I_UNI, bound, pass ? &o->main_gb : &o->op_gb, err));
        if (pass == 0) {
            int64_t in = c->op_layers[c->n_op_layers - 1];
            for (int k = 0; k < c->n_gate_mlp; k++) {
                snprintf(buf, sizeof buf, "gate_mlp%d", k + 1);
                TRY(add_linear(m, buf, in, c->gate_mlp[k], &o->gmW[k], &o->gmb[k], err));
                in = c->gate_mlp[k];
            }
            TRY(add_linear(m, "gate_upd1", m->gd + in, c->upd_hidden, &o->up1W, &o->up1b, err));
            TRY(add_linear(m, "gate_upd2", c->upd_hidden, m->gd, &o->up2W, &o->up2b, err));
        }
    }
#undef TRY
    return NF_OK;
}

static nf_status build_layout(nf_model *m, nf_err *err)
{
    const nf_model_cfg *c = &m->cfg;
    const int graph = c->arch == NF_ARCH_GRAPH;
    offsets *o = &m->o;
    nf_status st;
    char buf[48];
    m->n_params = 0;
    m->n_slices = 0;
    m->gd = nf_model_gate_dim(c);
    m->Sop = m->Smain = 0;
    memset(o, 0, sizeof *o);
#define TRY(x) do { if ((st = (x))) return st; } while (0)
    /* the one-hot op encoding and the MLP's flattened input have no parameters */
    if (graph && c->op_encoding == NF_OPENC_LEARNED)
        TRY(add_slice(m, "op_emb", c->n_ops, c->op_dim, I_NORMAL, 0, &o->op_emb, err));
    if (c->device_at != NF_DEV_NONE)
        TRY(add_slice(m, "dev_emb", m->n_dev, c->hw_dim, I_NORMAL, 0, &o->dev_emb, err));
    if (graph && c->quirk_io_emb) TRY(add_slice(m, "io_out", 1, c->op_dim, I_NORMAL, 0, &o->io_out, err));
    if (graph) TRY(graph_layout(m, err));
    if (c->z_dim > 0) {
        int64_t in = c->z_dim - c->z_raw;
        for (int k = 0; k <= c->n_z_hidden; k++) {
            int64_t out = k < c->n_z_hidden ? c->z_hidden[k] : c->z_out;
            snprintf(buf, sizeof buf, "z%d", k + 1);
            TRY(add_linear(m, buf, in, out, &o->zW[k], &o->zb[k], err));
            in = out;
        }
    }
    if (c->device_at == NF_DEV_HEAD) {
        TRY(add_linear(m, "dev1", c->hw_dim, c->dev_out, &o->dW[0], &o->db[0], err));
        TRY(add_linear(m, "dev2", c->dev_out, c->dev_out, &o->dW[1], &o->db[1], err));
    }
    int64_t in = head_in(c);
    for (int k = 0; k <= c->n_head; k++) {
        int64_t out = k < c->n_head ? c->head[k] : 1;
        snprintf(buf, sizeof buf, "head%d", k + 1);
        TRY(add_linear(m, buf, in, out, &o->hW[k], &o->hb[k], err));
        in = out;
    }
#undef TRY
    return NF_OK;
}

static void init_params(nf_model *m, uint64_t seed)
{
    nf_rng r;
    nf_rng_seed(&r, seed);
    for (int s = 0; s < m->n_slices; s++) {
        float *p = m->params + m->slices[s].off;
        int64_t n = m->slices[s].n;
        float bd = m->sbound[s];
        switch (m->sinit[s]) {
        case I_UNI: for (int64_t i = 0; i < n; i++) p[i] = (float)((2.0 * nf_rng_uniform(&r) - 1.0) * bd); break;
        case I_NORMAL: for (int64_t i = 0; i < n; i++) p[i] = (float)nf_rng_normal(&r); break;
        case I_ZERO: nf_fill(p, (size_t)n, 0.0f); break;
        case I_ONE: nf_fill(p, (size_t)n, 1.0f); break;
        }
    }
}

static nf_status alloc_params(nf_model *m, nf_err *err)
{
    m->mem = calloc((size_t)(4 * m->n_params), sizeof(float));
    if (!m->mem) return nf_seterr(err, NF_ENOMEM, "model: cannot allocate %lld parameters", (long long)m->n_params);
    m->params = m->mem;
    m->grads = m->mem + m->n_params;
    m->m1 = m->mem + 2 * m->n_params;
    m->m2 = m->mem + 3 * m->n_params;
    return NF_OK;
}

static nf_status set_dev_names(nf_model *m, int n, const char *const *names, nf_err *err)
{
    m->dev_names = calloc((size_t)(n ? n : 1), sizeof *m->dev_names);
    if (!m->dev_names) return nf_seterr(err, NF_ENOMEM, "model: out of memory (device names)");
    for (int i = 0; i < n; i++) {
        char def[32];
        const char *s = names && names[i] ? names[i] : (snprintf(def, sizeof def, "dev%d", i + 1), def);
        if (!*s || strlen(s) > NF_NAME_MAX)
            return nf_seterr(err, NF_EINVAL, "model: device name %d must have 1..%d bytes", i + 1, NF_NAME_MAX);
        for (int j = 0; j < i; j++)
            if (strcmp(m->dev_names[j], s) == 0)
                return nf_seterr(err, NF_EINVAL, "model: device name '%s' appears twice", s);
        snprintf(m->dev_names[i], NF_NAME_MAX + 1, "%s", s);
    }
    return NF_OK;
}

nf_status nf_model_new(const nf_model_cfg *cfg, int n_dev, const char *const *dev_names, uint64_t seed,
                       nf_model **out, nf_err *err)
{
    nf_status st;
    *out = NULL;
    if ((st = nf_model_cfg_check(cfg, err))) return st;
    if (n_dev < (cfg->device_at == NF_DEV_NONE ? 0 : 1) || n_dev > 100000)
        return nf_seterr(err, NF_EINVAL, "model: needs 1..100000 devices (got %d)", n_dev);
    nf_model *m = calloc(1, sizeof *m);
    if (!m) return nf_seterr(err, NF_ENOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->n_dev = n_dev;
    if ((st = set_dev_names(m, n_dev, dev_names, err)) || (st = build_layout(m, err)) || (st = alloc_params(m, err))) {
        nf_model_free(m);
        return st;
    }
    init_params(m, seed);
    *out = m;
    return NF_OK;
}

nf_status nf_model_count_params(const nf_model_cfg *cfg, int n_dev, int64_t *n_params, nf_err *err)
{
    nf_status st;
    *n_params = 0;
    if ((st = nf_model_cfg_check(cfg, err))) return st;
    if (n_dev < (cfg->device_at == NF_DEV_NONE ? 0 : 1) || n_dev > 100000)
        return nf_seterr(err, NF_EINVAL, "model: needs 1..100000 devices (got %d)", n_dev);
    nf_model m;   /* the layout only: the slice table, no parameters */
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    m.n_dev = n_dev;
    st = build_layout(&m, err);
    if (!st) *n_params = m.n_params;
    free(m.slices);
    free(m.sinit);
    free(m.sbound);
    return st;
}

void nf_model_free(nf_model *m)
{
    if (!m) return;
    free(m->mem);
    free(m->slices);
    free(m->sinit);
    free(m->sbound);
    free(m->dev_names);
    free(m->meta_keys);
    free(m->meta_vals);
    free(m->arena);
    free(m);
}

nf_status nf_model_clone(const nf_model *src, nf_model **out, nf_err *err)
{
    nf_status st;
    const char **names = calloc((size_t)(src->n_dev ? src->n_dev : 1), sizeof *names);
    if (!names) return nf_seterr(err, NF_ENOMEM, "model: out of memory");
    for (int i = 0; i < src->n_dev; i++) names[i] = src->dev_names[i];
    st = nf_model_new(&src->cfg, src->n_dev, names, 0, out, err);
    free(names);
    if (st) return st;
    nf_model *m = *out;
    memcpy(m->mem, src->mem, (size_t)(4 * src->n_params) * sizeof(float));
    m->adam_t = src->adam_t;
    for (int i = 0; i < src->n_meta; i++)
        if ((st = nf_model_set_meta(m, src->meta_keys[i], src->meta_vals[i], err))) {
            nf_model_free(m);
            *out = NULL;
            return st;
        }
    return NF_OK;
}

const nf_model_cfg *nf_model_config(const nf_model *m) { return &m->cfg; }
int64_t nf_model_nparams(const nf_model *m) { return m->n_params; }
float *nf_model_params(nf_model *m) { return m->params; }
float *nf_model_grads(nf_model *m) { return m->grads; }
int nf_model_nslices(const nf_model *m) { return m->n_slices; }
const nf_pslice *nf_model_slice(const nf_model *m, int i) { return i >= 0 && i < m->n_slices ? &m->slices[i] : NULL; }

const nf_pslice *nf_model_find_slice(const nf_model *m, const char *name)
{
    for (int i = 0; i < m->n_slices; i++)
        if (strcmp(m->slices[i].name, name) == 0) return &m->slices[i];
    return NULL;
}

size_t nf_model_bytes(const nf_model *m)
{
    return sizeof *m + (size_t)(4 * m->n_params + m->arena_floats) * sizeof(float)
           + (size_t)m->cap_slices * (sizeof(nf_pslice) + sizeof(int) + sizeof(float))
           + (size_t)m->n_dev * (NF_NAME_MAX + 1);
}

int nf_model_ndev(const nf_model *m) { return m->n_dev; }
const char *nf_model_dev_name(const nf_model *m, int i) { return i >= 0 && i < m->n_dev ? m->dev_names[i] : NULL; }

int nf_model_dev_index(const nf_model *m, const char *name)
{
    for (int i = 0; i < m->n_dev; i++)
        if (strcmp(m->dev_names[i], name) == 0) return i;
    return -1;
}

nf_status nf_model_add_device(nf_model *m, const char *name, int copy_from, uint64_t seed, nf_err *err)
{
    nf_status st;
    if (!name || !*name || strlen(name) > NF_NAME_MAX)
        return nf_seterr(err, NF_EINVAL, "add_device: name must have 1..%d bytes", NF_NAME_MAX);
    if (nf_model_dev_index(m, name) >= 0)
        return nf_seterr(err, NF_EINVAL, "add_device: device '%s' already exists", name);
    if (copy_from >= m->n_dev)
        return nf_seterr(err, NF_ERANGE, "add_device: copy_from %d out of range (%d devices)", copy_from + 1, m->n_dev);
    /* a new model with one more device row; every slice is copied by name */
    nf_model tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = m->cfg;
    tmp.n_dev = m->n_dev + 1;
    char (*names)[NF_NAME_MAX + 1] = realloc(m->dev_names, (size_t)tmp.n_dev * sizeof *names);
    if (!names) return nf_seterr(err, NF_ENOMEM, "add_device: out of memory");
    m->dev_names = names;
    if ((st = build_layout(&tmp, err)) || (st = alloc_params(&tmp, err))) {
        free(tmp.slices); free(tmp.sinit); free(tmp.sbound); free(tmp.mem);
        return st;
    }
    for (int s = 0; s < m->n_slices; s++) {
        const nf_pslice *a = &m->slices[s];
        const nf_pslice *b = nf_model_find_slice(&tmp, a->name);
        for (int k = 0; k < 4; k++)   /* params, grads, m1, m2 */
            memcpy(tmp.mem + k * tmp.n_params + b->off, m->mem + k * m->n_params + a->off, (size_t)a->n * sizeof(float));
    }
    if (m->cfg.device_at != NF_DEV_NONE) {
        float *row = tmp.params + tmp.o.dev_emb + (int64_t)m->n_dev * m->cfg.hw_dim;
        if (copy_from >= 0) memcpy(row, tmp.params + tmp.o.dev_emb + (int64_t)copy_from * m->cfg.hw_dim,
                                   (size_t)m->cfg.hw_dim * sizeof(float));
        else {
            nf_rng r;
            nf_rng_seed(&r, seed);
            for (int i = 0; i < m->cfg.hw_dim; i++) row[i] = (float)nf_rng_normal(&r);
        }
    }
    free(m->mem); free(m->slices); free(m->sinit); free(m->sbound);
    m->mem = tmp.mem; m->params = tmp.params; m->grads = tmp.grads; m->m1 = tmp.m1; m->m2 = tmp.m2;
    m->slices = tmp.slices; m->sinit = tmp.sinit; m->sbound = tmp.sbound;
    m->n_slices = tmp.n_slices; m->cap_slices = tmp.cap_slices; m->n_params = tmp.n_params;
    m->o = tmp.o;
    snprintf(m->dev_names[m->n_dev], NF_NAME_MAX + 1, "%s", name);
    m->n_dev++;
    m->have_fwd = 0;
    return NF_OK;
}

nf_status nf_model_copy_device(nf_model *m, int from, int to, nf_err *err)
{
    if (from < 0 || from >= m->n_dev || to < 0 || to >= m->n_dev)
        return nf_seterr(err, NF_ERANGE, "copy_device: device index out of range 1..%d (from %d, to %d)",
                         m->n_dev, from + 1, to + 1);
    if (m->cfg.device_at == NF_DEV_NONE) return NF_OK;
    int64_t h = m->cfg.hw_dim;
    memcpy(m->params + m->o.dev_emb + to * h, m->params + m->o.dev_emb + from * h, (size_t)h * sizeof(float));
    return NF_OK;
}

nf_status nf_model_set_meta(nf_model *m, const char *key, double value, nf_err *err)
{
    if (!key || !*key || strlen(key) >= 64)
        return nf_seterr(err, NF_EINVAL, "meta: key must have 1..63 bytes");
    for (const char *p = key; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return nf_seterr(err, NF_EINVAL, "meta: key '%s' has a quote, backslash or control character", key);
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_keys[i], key) == 0) { m->meta_vals[i] = value; return NF_OK; }
    char (*k)[64] = realloc(m->meta_keys, (size_t)(m->n_meta + 1) * sizeof *k);
    if (k) m->meta_keys = k;
    double *v = realloc(m->meta_vals, (size_t)(m->n_meta + 1) * sizeof *v);
    if (v) m->meta_vals = v;
    if (!k || !v) return nf_seterr(err, NF_ENOMEM, "meta: out of memory");
    snprintf(m->meta_keys[m->n_meta], 64, "%s", key);
    m->meta_vals[m->n_meta++] = value;
    return NF_OK;
}

int nf_model_nmeta(const nf_model *m) { return m->n_meta; }
const char *nf_model_meta_key(const nf_model *m, int i) { return i >= 0 && i < m->n_meta ? m->meta_keys[i] : NULL; }
double nf_model_meta_value(const nf_model *m, int i) { return i >= 0 && i < m->n_meta ? m->meta_vals[i] : 0.0; }

/* ---------------------------------------------------------------- activation arena */
static int64_t max_width(const nf_model *m)
{
    const nf_model_cfg *c = &m->cfg;
    int64_t w = c->hid > m->gd ? c->hid : m->gd;
    for (int l = 0; l < c->n_op_layers; l++) if (c->op_layers[l] > w) w = c->op_layers[l];
    for (int l = 0; l < c->n_main_layers; l++) if (c->main_layers[l] > w) w = c->main_layers[l];
    if (c->upd_hidden > w) w = c->upd_hidden;
    return w;
}

static void act_layout(const nf_model *m, int64_t B, float *base, act *a)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t N = c->nodes, BN = B * N;
    const int graph = c->arch == NF_ARCH_GRAPH;
    int64_t o = 0;
    memset(a, 0, sizeof *a);   /* the MLP leaves the graph network's buffers NULL */
#define TAKE(ptr, n) do { (ptr) = base ? base + o : NULL; o += ((n) + 15) & ~(int64_t)15; } while (0)
    if (graph) {
        const int64_t ne = gate_parts(c), ow = nf_model_op_width(c), Sg = m->Sop > c->upd_hidden ? m->Sop : c->upd_hidden;
        TAKE(a->Es, ne * ow);
        TAKE(a->Dg, B * (m->gd - ow));
        TAKE(a->tabE, ne * Sg);
        TAKE(a->tabD, B * Sg);
        TAKE(a->NE, N * c->node_dim);
        TAKE(a->X, N * c->hid);
        TAKE(a->Zop, BN * m->Sop);
        TAKE(a->Zmain, BN * m->Smain);
        for (int l = 0; l < c->n_op_layers; l++) {
            TAKE(a->opY[l], BN * c->op_layers[l]);
            TAKE(a->opWS[l], nf_glayer_ws_floats(&m->opc[l], B, N));
        }
        for (int k = 0; k < c->n_gate_mlp; k++) TAKE(a->gm[k], B * c->gate_mlp[k]);
        TAKE(a->mW, B * c->upd_hidden);
        TAKE(a->U, BN * c->upd_hidden);
        TAKE(a->Gp, BN * m->gd);
        for (int l = 0; l < c->n_main_layers; l++) {
            TAKE(a->mainY[l], BN * c->main_layers[l]);
            TAKE(a->mainWS[l], nf_glayer_ws_floats(&m->mainc[l], B, N));
        }
        TAKE(a->row, BN);
        TAKE(a->rden, B);
        TAKE(a->ro, B * nf_model_readout_dim(c));
    }
    const int64_t F = nf_model_readout_dim(c), hin = head_in(c);
    for (int k = 0; k < c->n_z_hidden; k++) { TAKE(a->zh[k], B * c->z_hidden[k]); TAKE(a->zmask[k], B * c->z_hidden[k]); }
    TAKE(a->zo, B * c->z_out);
    TAKE(a->din, B * c->hw_dim);
    TAKE(a->dh, B * c->dev_out);
    TAKE(a->dout, B * c->dev_out);
    TAKE(a->hin, B * hin);
    for (int k = 0; k < c->n_head; k++) { TAKE(a->hh[k], B * c->head[k]); TAKE(a->hmask[k], B * c->head[k]); }
    TAKE(a->score, B);
    /* backward */
    int64_t wb = hin;
    for (int k = 0; k < c->n_head; k++) if (c->head[k] > wb) wb = c->head[k];
    for (int k = 0; k < c->n_z_hidden; k++) if (c->z_hidden[k] > wb) wb = c->z_hidden[k];
    if (c->dev_out > wb) wb = c->dev_out;
    if (F > wb) wb = F;
    if (c->z_out > wb) wb = c->z_out;
    if (c->hw_dim > wb) wb = c->hw_dim;
    if (graph) {
        int64_t W = max_width(m), S = m->Sop > m->Smain ? m->Sop : m->Smain;
        for (int k = 0; k < c->n_gate_mlp; k++) if (c->gate_mlp[k] > wb) wb = c->gate_mlp[k];
        if (c->upd_hidden > wb) wb = c->upd_hidden;
        TAKE(a->dA, BN * W);
        TAKE(a->dB, BN * W);
        TAKE(a->dZ, BN * S);
        TAKE(a->dEs, gate_parts(c) * nf_model_op_width(c));
        TAKE(a->dDg, B * (m->gd - nf_model_op_width(c)));
        TAKE(a->dGp, BN * m->gd);
        TAKE(a->dU, BN * c->upd_hidden);
        TAKE(a->dX, N * c->hid);
        TAKE(a->dNE, N * c->node_dim);
    }
    TAKE(a->s1, B * wb);
    TAKE(a->s2, B * wb);
    TAKE(a->dhin, B * wb);
#undef TAKE
    a->total = o;
}

nf_status nf_model_reserve(nf_model *m, int64_t B, nf_err *err)
{
    if (B < 1) return nf_seterr(err, NF_EINVAL, "model: batch size must be >= 1 (got %lld)", (long long)B);
    if (B <= m->arena_B) return NF_OK;
    act a;
    act_layout(m, B, NULL, &a);
    float *p = malloc((size_t)a.total * sizeof(float));
    if (!p) return nf_seterr(err, NF_ENOMEM, "model: cannot allocate activations for a batch of %lld", (long long)B);
    free(m->arena);
    m->arena = p;
    m->arena_floats = a.total;
    m->arena_B = B;
    m->have_fwd = 0;
    return NF_OK;
}

/* ---------------------------------------------------------------- forward */
static void relu_inplace(float *x, size_t n) { nf_relu_forward(x, x, n); }

/* Y (B×out) = dropout(relu(X·W + b)) in training, relu(X·W + b) otherwise. */
static nf_status mlp_hidden(nf_model *m, const float *X, int64_t ldx, int64_t W, int64_t b, int64_t B,
                            int64_t in, int64_t out, float *Y, float *mask, int drop, nf_rng *rng, nf_err *err)
{
    nf_status st = nf_linear_forward(X, ldx, m->params + W, m->params + b, B, in, out, Y, err);
    if (st) return st;
    relu_inplace(Y, (size_t)(B * out));
    if (drop && m->train && m->cfg.dropout > 0.0f) nf_dropout_forward(Y, Y, mask, (size_t)(B * out), m->cfg.dropout, rng);
    return NF_OK;
}

/* The gate inputs' distinct rows: Es (gate_parts × ow) the op parts, Dg (B × hw) each graph's device row. */
static void gate_inputs(nf_model *m, int64_t B)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t ow = nf_model_op_width(c), hw = m->gd - ow, ne = gate_parts(c);
    const float *P = m->params;
    float *Es = m->a.Es;
    nf_fill(Es, (size_t)(ne * ow), 0.0f);
    if (c->op_encoding == NF_OPENC_ONEHOT)
        for (int64_t o = 0; o < c->n_ops; o++) Es[o * ow + o] = 1.0f;
    else memcpy(Es, P + m->o.op_emb, (size_t)(c->n_ops * ow) * sizeof(float));
    if (c->op_encoding == NF_OPENC_LEARNED && c->quirk_io_emb)
        memcpy(Es + (ne - 1) * ow, P + m->o.io_out, (size_t)ow * sizeof(float));
    for (int64_t b = 0; b < B && hw > 0; b++)
        memcpy(m->a.Dg + b * hw, P + m->o.dev_emb + (int64_t)m->dev[b] * hw, (size_t)hw * sizeof(float));
}

/* Y (B·N × S) = G0·W + bias, W (gd × S) at parameter offset Wo, bias at bo: the product of every distinct row once,
 * E = Es·W[op rows] and D = Dg·W[device rows] + bias, then Y(b, i) = E[part(b, i)] + D[b]. The same numbers as the
 * product of the B·N gate rows (up to rounding) at a fraction of its cost: G0 has few distinct rows. */
static nf_status gate_product(nf_model *m, int64_t B, int64_t Wo, int64_t bo, int64_t S, float *Y, nf_err *err)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t N = c->nodes, ow = nf_model_op_width(c), hw = m->gd - ow, ne = gate_parts(c);
    const float *W = m->params + Wo;
    float *E = m->a.tabE, *D = m->a.tabD;
    nf_status st;
    if ((st = nf_gemm(NF_NOTRANS, NF_NOTRANS, ne, S, ow, 1.0f, m->a.Es, ow, W, S, 0.0f, E, S, err))) return st;
    /* without device rows (hw = 0) D is the bias alone */
    if ((st = nf_linear_forward(m->a.Dg, hw > 0 ? hw : 1, W + ow * S, m->params + bo, B, hw, S, D, err))) return st;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < N; i++)
            nf_row_add(Y + (b * N + i) * S, E + gate_part(c, m->ops, b, i) * S, D + b * S, S);
    return NF_OK;
}

/* Steps 1-5 of the graph network (METHOD §4): gates, op pass, gate update, main pass, readout
 * into the first F columns of the head input (leading dimension hin). */
static nf_status graph_forward(nf_model *m, int64_t B, const int32_t *ops, const float *adj, nf_err *err)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t N = c->nodes, BN = B * N, gd = m->gd;
    const float *P = m->params;
    act *a = &m->a;
    nf_status st;

    /* 1. the gate inputs G0 = [op part ; hw_emb(d)] (their distinct rows: see gate_product) and the hidden node
     *    states X (shared by all graphs); the op part is the learned op_emb row or the fixed one-hot of the op */
    gate_inputs(m, B);
    memcpy(a->NE, P + m->o.node_in, (size_t)c->node_dim * sizeof(float));
    for (int64_t i = 1; i < N; i++) memcpy(a->NE + i * c->node_dim, P + m->o.node_other, (size_t)c->node_dim * sizeof(float));
    if ((st = nf_linear_forward(a->NE, c->node_dim, P + m->o.xW, P + m->o.xb, N, c->node_dim, c->hid, a->X, err))) return st;

    /* 2. op pass: gates of all layers in one product, then the graph layers (which turn them into σ in place) */
    if ((st = gate_product(m, B, m->o.op_gW, m->o.op_gb, m->Sop, a->Zop, err))) return st;
    for (int l = 0; l < c->n_op_layers; l++) {
        const float *H = l ? a->opY[l - 1] : a->X;
        if ((st = nf_glayer_forward(&m->opc[l], P + m->o.opL[l], B, N, H, l == 0, adj, a->Zop + m->opco[l], m->Sop,
                                    a->opY[l], a->opWS[l], err))) return st;
        if (l < c->n_op_layers - 1) relu_inplace(a->opY[l], (size_t)(BN * c->op_layers[l]));
    }
    /* 3. gate update: MLP on the output node's state, broadcast, with G0 → G' */
    const int64_t Fo = c->op_layers[c->n_op_layers - 1];
    const float *mx = a->opY[c->n_op_layers - 1] + (N - 1) * Fo;
    int64_t ldm = N * Fo, in = Fo;
    for (int k = 0; k < c->n_gate_mlp; k++) {
        if ((st = nf_linear_forward(mx, ldm, P + m->o.gmW[k], P + m->o.gmb[k], B, in, c->gate_mlp[k], a->gm[k], err))) return st;
        if (k < c->n_gate_mlp - 1) relu_inplace(a->gm[k], (size_t)(B * c->gate_mlp[k]));
        mx = a->gm[k];
        ldm = in = c->gate_mlp[k];
    }
    const int64_t uh = c->upd_hidden;
    if ((st = nf_gemm(NF_NOTRANS, NF_NOTRANS, B, uh, in, 1.0f, mx, in, P + m->o.up1W + gd * uh, uh, 0.0f, a->mW, uh, err))) return st;
    if ((st = gate_product(m, B, m->o.up1W, m->o.up1b, uh, a->U, err))) return st;
    nf_add_rows_relu(a->U, a->mW, B, N, uh);
    if ((st = nf_linear_forward(a->U, uh, P + m->o.up2W, P + m->o.up2b, BN, uh, gd, a->Gp, err))) return st;

    /* 4. main pass gated by G' */
    if ((st = nf_linear_forward(a->Gp, gd, P + m->o.main_gW, P + m->o.main_gb, BN, gd, m->Smain, a->Zmain, err))) return st;
    for (int l = 0; l < c->n_main_layers; l++) {
        const float *H = l ? a->mainY[l - 1] : a->X;
        if ((st = nf_glayer_forward(&m->mainc[l], P + m->o.mainL[l], B, N, H, l == 0, adj, a->Zmain + m->mainco[l],
                                    m->Smain, a->mainY[l], a->mainWS[l], err))) return st;
        if (l < c->n_main_layers - 1) relu_inplace(a->mainY[l], (size_t)(BN * c->main_layers[l]));
    }

    /* 5. readout */
    const int64_t F = c->main_layers[c->n_main_layers - 1], hin = head_in(c);
    for (int64_t b = 0; b < B; b++) {
        float cnt = 0.0f;
        for (int64_t i = 0; i < N; i++) {
            float w = 1.0f;
            int none = ops[b * N + i] == c->none_op;
            if (c->readout == NF_READOUT_MASKED) w = none ? 0.0f : 1.0f;
            else if (c->readout == NF_READOUT_REFERENCE) w = i == 0 ? 0.0f : (i == N - 1 || !none) ? 1.0f : 0.0f;
            a->row[b * N + i] = w;
            cnt += w;
        }
        a->rden[b] = c->readout == NF_READOUT_REFERENCE ? (float)(N - 1) : c->readout == NF_READOUT_MASKED
                     ? (cnt > 0.0f ? cnt : 1.0f) : (float)N;
    }
    nf_readout_forward(a->mainY[c->n_main_layers - 1], a->row, a->rden, B, N, F, a->ro);
    for (int64_t b = 0; b < B; b++) memcpy(a->hin + b * hin, a->ro + b * F, (size_t)F * sizeof(float));
    return NF_OK;
}

/* The MLP's input: [one-hot(ops) (N·n_ops) ; adjacency (N·N)] per graph, into the head input. */
static void mlp_input(nf_model *m, int64_t B, const int32_t *ops, const float *adj)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t N = c->nodes, V = c->n_ops, hin = head_in(c);
    for (int64_t b = 0; b < B; b++) {
        float *x = m->a.hin + b * hin;
        nf_fill(x, (size_t)(N * V), 0.0f);
        for (int64_t i = 0; i < N; i++) x[i * V + ops[b * N + i]] = 1.0f;
        memcpy(x + N * V, adj + b * N * N, (size_t)(N * N) * sizeof(float));
    }
}

nf_status nf_model_forward(nf_model *m, int64_t B, const int32_t *ops, const float *adj, const float *z,
                           const int32_t *dev, int train, nf_rng *rng, float *scores, nf_err *err)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t N = c->nodes;
    const float *P = m->params;
    nf_status st;
    m->have_fwd = 0;
    if (B < 1) return nf_seterr(err, NF_EINVAL, "forward: batch size must be >= 1");
    if (c->z_dim > 0 && !z) return nf_seterr(err, NF_EINVAL, "forward: the model needs z (z_dim = %d)", c->z_dim);
    if (train && c->dropout > 0.0f && !rng) return nf_seterr(err, NF_EINVAL, "forward: training needs an rng for dropout");
    if ((st = nf_model_reserve(m, B, err))) return st;
    for (int64_t b = 0; b < B; b++) {
        if (c->device_at != NF_DEV_NONE && (dev[b] < 0 || dev[b] >= m->n_dev))
            return nf_seterr(err, NF_ERANGE, "forward: device index %d of example %lld out of range 1..%d",
                             (int)dev[b] + 1, (long long)b + 1, m->n_dev);
        for (int64_t i = 0; i < N; i++)
            if (ops[b * N + i] < 0 || ops[b * N + i] >= c->n_ops)
                return nf_seterr(err, NF_ERANGE, "forward: op id %d at graph %lld node %lld out of range 0..%d",
                                 (int)ops[b * N + i], (long long)b + 1, (long long)i + 1, c->n_ops - 1);
    }
    act *a = &m->a;
    act_layout(m, B, m->arena, a);
    m->B = B; m->ops = ops; m->adj = adj; m->z = z; m->dev = dev; m->train = train;

    /* 1-5. the graph network's readout, or the MLP's flattened input: columns [0, F) of the head input */
    if (c->arch == NF_ARCH_MLP) mlp_input(m, B, ops, adj);
    else if ((st = graph_forward(m, B, ops, adj, err))) return st;

    /* 6. supplementary embedder, device embedder, head */
    const int64_t hin = head_in(c);
    int64_t col = nf_model_readout_dim(c);
    if (c->z_dim > 0) {
        const float *zx = z;
        int64_t zin = c->z_dim - c->z_raw, ld = c->z_dim;   /* the embedder reads the first z_dim − z_raw columns */
        for (int k = 0; k < c->n_z_hidden; k++) {
            if ((st = mlp_hidden(m, zx, ld, m->o.zW[k], m->o.zb[k], B, zin, c->z_hidden[k], a->zh[k], a->zmask[k], 1, rng, err)))
                return st;
            zx = a->zh[k];
            zin = ld = c->z_hidden[k];
        }
        int k = c->n_z_hidden;
        if ((st = nf_linear_forward(zx, ld, P + m->o.zW[k], P + m->o.zb[k], B, zin, c->z_out, a->zo, err))) return st;
        for (int64_t b = 0; b < B; b++) memcpy(a->hin + b * hin + col, a->zo + b * c->z_out, (size_t)c->z_out * sizeof(float));
        col += c->z_out;
        if (c->z_raw > 0) {
            const int64_t r0 = c->z_dim - c->z_raw;
            for (int64_t b = 0; b < B; b++)
                memcpy(a->hin + b * hin + col, z + b * c->z_dim + r0, (size_t)c->z_raw * sizeof(float));
            col += c->z_raw;
        }
    }
    if (c->device_at == NF_DEV_HEAD) {
        for (int64_t b = 0; b < B; b++)
            memcpy(a->din + b * c->hw_dim, P + m->o.dev_emb + (int64_t)dev[b] * c->hw_dim, (size_t)c->hw_dim * sizeof(float));
        if ((st = mlp_hidden(m, a->din, c->hw_dim, m->o.dW[0], m->o.db[0], B, c->hw_dim, c->dev_out, a->dh, NULL, 0, rng, err)))
            return st;
        if ((st = nf_linear_forward(a->dh, c->dev_out, P + m->o.dW[1], P + m->o.db[1], B, c->dev_out, c->dev_out, a->dout, err)))
            return st;
        for (int64_t b = 0; b < B; b++) memcpy(a->hin + b * hin + col, a->dout + b * c->dev_out, (size_t)c->dev_out * sizeof(float));
    }
    const float *hx = a->hin;
    int64_t hw = hin;
    for (int k = 0; k < c->n_head; k++) {
        if ((st = mlp_hidden(m, hx, hw, m->o.hW[k], m->o.hb[k], B, hw, c->head[k], a->hh[k], a->hmask[k], 1, rng, err)))
            return st;
        hx = a->hh[k];
        hw = c->head[k];
    }
    int k = c->n_head;
    if ((st = nf_linear_forward(hx, hw, P + m->o.hW[k], P + m->o.hb[k], B, hw, 1, a->score, err))) return st;
    memcpy(scores, a->score, (size_t)B * sizeof(float));
    m->have_fwd = 1;
    return NF_OK;
}

const float *nf_model_features(const nf_model *m, nf_embed_layer which, int64_t *ld)
{
    if (!m->have_fwd) return NULL;
    const nf_model_cfg *c = &m->cfg;
    if (which == NF_EMBED_READOUT || c->n_head == 0) {
        *ld = head_in(c);
        return m->a.hin;
    }
    *ld = c->head[c->n_head - 1];
    return m->a.hh[c->n_head - 1];
}

/* ---------------------------------------------------------------- backward */
void nf_model_zero_grad(nf_model *m) { memset(m->grads, 0, (size_t)m->n_params * sizeof(float)); }

void nf_model_adam_step(nf_model *m, float lr, float weight_decay)
{
    m->adam_t++;
    nf_adamw_step(m->params, m->grads, m->m1, m->m2, m->n_params, m->adam_t, lr, 0.9f, 0.999f, 1e-8f, weight_decay);
}

void nf_model_reset_optimizer(nf_model *m)
{
    memset(m->m1, 0, (size_t)(2 * m->n_params) * sizeof(float));
    m->adam_t = 0;
}

/* Backward of gate_product for dY (B·N × S): the gradient rows summed by op part (E) and by graph (D), then
 * dW[op rows] += Esᵀ·E, dW[device rows] += Dgᵀ·D, dbias += Σ D, and the inputs' gradients E·W[op rows]ᵀ into the
 * op table (learned) and D·W[device rows]ᵀ into each graph's device row. */
static nf_status gate_product_backward(nf_model *m, int64_t Wo, int64_t bo, int64_t S, const float *dY, nf_err *err)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t B = m->B, N = c->nodes, ow = nf_model_op_width(c), hw = m->gd - ow, ne = gate_parts(c);
    const float *W = m->params + Wo;
    float *dW = m->grads + Wo, *E = m->a.tabE, *D = m->a.tabD;
    act *a = &m->a;
    nf_status st;
    nf_fill(E, (size_t)(ne * S), 0.0f);
    nf_fill(D, (size_t)(B * S), 0.0f);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < N; i++) nf_row_acc2(E + gate_part(c, m->ops, b, i) * S, D + b * S, dY + (b * N + i) * S, S);
    if ((st = nf_gemm(NF_TRANS, NF_NOTRANS, ow, S, ne, 1.0f, a->Es, ow, E, S, 1.0f, dW, S, err))) return st;
    if (c->op_encoding == NF_OPENC_LEARNED) {
        if ((st = nf_gemm(NF_NOTRANS, NF_TRANS, ne, ow, S, 1.0f, E, S, W, S, 0.0f, a->dEs, ow, err))) return st;
        nf_add(m->grads + m->o.op_emb, m->grads + m->o.op_emb, a->dEs, (size_t)(c->n_ops * ow));
        if (c->quirk_io_emb) nf_add(m->grads + m->o.io_out, m->grads + m->o.io_out, a->dEs + (ne - 1) * ow, (size_t)ow);
    }
    /* the device rows and the bias: a linear layer from Dg (only the bias without device rows) */
    const int64_t ldd = hw > 0 ? hw : 1;
    if ((st = nf_linear_backward(a->Dg, ldd, W + ow * S, D, B, hw, S, dW + ow * S, m->grads + bo, hw ? a->dDg : NULL, ldd,
                                 0, err))) return st;
    for (int64_t b = 0; b < B && hw > 0; b++) {
        float *g = m->grads + m->o.dev_emb + (int64_t)m->dev[b] * hw;
        nf_add(g, g, a->dDg + b * hw, (size_t)hw);
    }
    return NF_OK;
}

/* Backward of graph_forward from the readout's gradient (columns [0, F) of a->dhin). */
static nf_status graph_backward(nf_model *m, nf_err *err)
{
    const nf_model_cfg *c = &m->cfg;
    const int64_t B = m->B, N = c->nodes, BN = B * N, gd = m->gd, uh = c->upd_hidden;
    const int64_t F = c->main_layers[c->n_main_layers - 1], hin = head_in(c);
    const float *P = m->params;
    float *G = m->grads;
    act *a = &m->a;
    nf_status st;
    float *d = a->s1, *dn = a->s2;

    /* readout */
    for (int64_t b = 0; b < B; b++) memcpy(d + b * F, a->dhin + b * hin, (size_t)F * sizeof(float));
    float *dcur = a->dA, *dnext = a->dB;
    nf_readout_backward(a->row, a->rden, d, B, N, F, dcur);

    /* main pass */
    for (int l = c->n_main_layers - 1; l >= 0; l--) {
        const float *H = l ? a->mainY[l - 1] : a->X;
        if ((st = nf_glayer_backward(&m->mainc[l], P + m->o.mainL[l], G + m->o.mainL[l], B, N, H, l == 0, m->adj, dcur,
                                     a->Zmain + m->mainco[l], a->dZ + m->mainco[l], m->Smain, l ? dnext : a->dX, 0,
                                     a->mainWS[l], err))) return st;
        if (l) {
            nf_relu_backward(a->mainY[l - 1], dnext, dnext, (size_t)(BN * c->main_layers[l - 1]));
            float *t = dcur; dcur = dnext; dnext = t;
        }
    }
    if ((st = nf_linear_backward(a->Gp, gd, P + m->o.main_gW, a->dZ, BN, gd, m->Smain, G + m->o.main_gW, G + m->o.main_gb,
                                 a->dGp, gd, 0, err))) return st;
    /* gate update MLP */
    if ((st = nf_linear_backward(a->U, uh, P + m->o.up2W, a->dGp, BN, uh, gd, G + m->o.up2W, G + m->o.up2b, a->dU, uh, 0, err)))
        return st;
    nf_relu_backward(a->U, a->dU, a->dU, (size_t)(BN * uh));
    if ((st = gate_product_backward(m, m->o.up1W, m->o.up1b, uh, a->dU, err))) return st;
    for (int64_t b = 0; b < B; b++) {
        float *s = d + b * uh;
        memset(s, 0, (size_t)uh * sizeof(float));
        for (int64_t i = 0; i < N; i++) {
            const float *du = a->dU + (b * N + i) * uh;
            for (int64_t f = 0; f < uh; f++) s[f] += du[f];
        }
    }
    int ng = c->n_gate_mlp;
    if ((st = nf_linear_backward(a->gm[ng - 1], c->gate_mlp[ng - 1], P + m->o.up1W + gd * uh, d, B, c->gate_mlp[ng - 1], uh,
                                 G + m->o.up1W + gd * uh, NULL, dn, c->gate_mlp[ng - 1], 0, err))) return st;
    { float *t = d; d = dn; dn = t; }
    const int64_t Fo = c->op_layers[c->n_op_layers - 1];
    memset(dcur, 0, (size_t)(BN * Fo) * sizeof(float));
    for (int k = ng - 1; k >= 0; k--) {
        int64_t in = k ? c->gate_mlp[k - 1] : Fo, out = c->gate_mlp[k];
        const float *X = k ? a->gm[k - 1] : a->opY[c->n_op_layers - 1] + (N - 1) * Fo;
        int64_t ldx = k ? in : N * Fo;
        float *dX = k ? dn : dcur + (N - 1) * Fo;
        if ((st = nf_linear_backward(X, ldx, P + m->o.gmW[k], d, B, in, out, G + m->o.gmW[k], G + m->o.gmb[k], dX, ldx, 0, err)))
            return st;
        if (k) {
            nf_relu_backward(a->gm[k - 1], dn, dn, (size_t)(B * in));
            float *t = d; d = dn; dn = t;
        }
    }
    /* op pass */
    for (int l = c->n_op_layers - 1; l >= 0; l--) {
        const float *H = l ? a->opY[l - 1] : a->X;
        if ((st = nf_glayer_backward(&m->opc[l], P + m->o.opL[l], G + m->o.opL[l], B, N, H, l == 0, m->adj, dcur,
                                     a->Zop + m->opco[l], a->dZ + m->opco[l], m->Sop, l ? dnext : a->dX, l == 0,
                                     a->opWS[l], err))) return st;
        if (l) {
            nf_relu_backward(a->opY[l - 1], dnext, dnext, (size_t)(BN * c->op_layers[l - 1]));
            float *t = dcur; dcur = dnext; dnext = t;
        }
    }
    if ((st = gate_product_backward(m, m->o.op_gW, m->o.op_gb, m->Sop, a->dZ, err))) return st;
    /* embeddings */
    if ((st = nf_linear_backward(a->NE, c->node_dim, P + m->o.xW, a->dX, N, c->node_dim, c->hid, G + m->o.xW, G + m->o.xb,
                                 a->dNE, c->node_dim, 0, err))) return st;
    for (int64_t f = 0; f < c->node_dim; f++) G[m->o.node_in + f] += a->dNE[f];
    for (int64_t i = 1; i < N; i++)
        for (int64_t f = 0; f < c->node_dim; f++) G[m->o.node_other + f] += a->dNE[i * c->node_dim + f];
    return NF_OK;
}

nf_status nf_model_backward(nf_model *m, const float *dscores, nf_err *err)
{
    if (!m->have_fwd) return nf_seterr(err, NF_ESTATE, "backward: no forward to differentiate (or the model changed since)");
    const nf_model_cfg *c = &m->cfg;
    const int64_t B = m->B;
    const float *P = m->params;
    float *G = m->grads;
    act *a = &m->a;
    nf_status st;
    const int64_t F = nf_model_readout_dim(c), hin = head_in(c);
    const int mlp = c->arch == NF_ARCH_MLP;

    /* head; the MLP's flattened input needs no gradient, only the z and device columns do */
    float *d = a->s1, *dn = a->s2;
    memcpy(d, dscores, (size_t)B * sizeof(float));
    for (int k = c->n_head; k >= 0; k--) {
        int64_t in = k ? c->head[k - 1] : hin, out = k < c->n_head ? c->head[k] : 1;
        const float *X = k ? a->hh[k - 1] : a->hin;
        float *dX = k ? dn : mlp ? NULL : a->dhin;
        if ((st = nf_linear_backward(X, in, P + m->o.hW[k], d, B, in, out, G + m->o.hW[k], G + m->o.hb[k], dX, in, 0, err)))
            return st;
        if (k) {
            if (m->train && c->dropout > 0.0f) nf_dropout_backward(a->hmask[k - 1], dn, dn, (size_t)(B * in));
            nf_relu_backward(a->hh[k - 1], dn, dn, (size_t)(B * in));
            float *t = d; d = dn; dn = t;
        } else if (mlp && hin > F) {
            /* dhin[:, F:] = d · W[F:, :]ᵀ (rows F.. of the first head layer's W) */
            if ((st = nf_gemm(NF_NOTRANS, NF_TRANS, B, hin - F, out, 1.0f, d, out, P + m->o.hW[0] + F * out, out, 0.0f,
                              a->dhin + F, hin, err))) return st;
        }
    }
    /* z embedder (no gradient to z) */
    int64_t col = F;
    if (c->z_dim > 0) {
        for (int64_t b = 0; b < B; b++) memcpy(d + b * c->z_out, a->dhin + b * hin + col, (size_t)c->z_out * sizeof(float));
        for (int k = c->n_z_hidden; k >= 0; k--) {
            int64_t in = k ? c->z_hidden[k - 1] : c->z_dim - c->z_raw, out = k < c->n_z_hidden ? c->z_hidden[k] : c->z_out;
            const float *X = k ? a->zh[k - 1] : m->z;
            if ((st = nf_linear_backward(X, k ? in : c->z_dim, P + m->o.zW[k], d, B, in, out, G + m->o.zW[k], G + m->o.zb[k],
                                         k ? dn : NULL, in, 0, err))) return st;
            if (k) {
                if (m->train && c->dropout > 0.0f) nf_dropout_backward(a->zmask[k - 1], dn, dn, (size_t)(B * in));
                nf_relu_backward(a->zh[k - 1], dn, dn, (size_t)(B * in));
                float *t = d; d = dn; dn = t;
            }
        }
        col += c->z_out + c->z_raw;   /* the raw z columns are inputs: no gradient */
    }
    if (c->device_at == NF_DEV_HEAD) {
        const int64_t dw = c->dev_out;
        for (int64_t b = 0; b < B; b++) memcpy(d + b * dw, a->dhin + b * hin + col, (size_t)dw * sizeof(float));
        if ((st = nf_linear_backward(a->dh, dw, P + m->o.dW[1], d, B, dw, dw, G + m->o.dW[1], G + m->o.db[1], dn, dw, 0, err)))
            return st;
        nf_relu_backward(a->dh, dn, dn, (size_t)(B * dw));
        if ((st = nf_linear_backward(a->din, c->hw_dim, P + m->o.dW[0], dn, B, c->hw_dim, dw, G + m->o.dW[0], G + m->o.db[0],
                                     d, c->hw_dim, 0, err))) return st;
        for (int64_t b = 0; b < B; b++) {
            float *g = G + m->o.dev_emb + (int64_t)m->dev[b] * c->hw_dim;
            for (int64_t f = 0; f < c->hw_dim; f++) g[f] += d[b * c->hw_dim + f];
        }
    }
    return mlp ? NF_OK : graph_backward(m, err);
}

/* ---------------------------------------------------------------- FLOPs */
double nf_model_flops(const nf_model *m, int64_t B)
{
    const nf_model_cfg *c = &m->cfg;
    const double N = c->nodes, gd = m->gd, uh = c->upd_hidden, Bd = (double)(B > 0 ? B : 1);
    double fl = 0.0;
    if (c->arch == NF_ARCH_GRAPH) {
        fl += 2.0 * N * c->node_dim * c->hid / Bd;                     /* X (shared) */
        /* gate products: the op pass's and the gate update's through the distinct rows (gate_product), the main pass's */
        const double ow = nf_model_op_width(c), hw = gd - ow, ne = (double)gate_parts(c);
        fl += (2.0 * ne * ow / Bd + 2.0 * hw + N) * (double)(m->Sop + uh);
        fl += 2.0 * N * gd * (double)m->Smain;
        for (int pass = 0; pass < 2; pass++) {
            int nl = pass ? c->n_main_layers : c->n_op_layers;
            const nf_glayer_cfg *gc = pass ? m->mainc : m->opc;
            for (int l = 0; l < nl; l++) {
                double f = nf_glayer_flops(&gc[l], c->nodes);
                if (l == 0) {   /* the first projection runs on N rows once per batch */
                    double proj = 2.0 * N * gc[l].in * nf_glayer_branches(&gc[l]) * gc[l].out;
                    f = f - proj + proj / Bd;
                }
                fl += f;
            }
        }
        double in = c->op_layers[c->n_op_layers - 1];
        for (int k = 0; k < c->n_gate_mlp; k++) { fl += 2.0 * in * c->gate_mlp[k]; in = c->gate_mlp[k]; }
        fl += 2.0 * in * uh + 2.0 * N * uh * gd;                        /* gate update (its G0 product above) */
    }
    double hin = (double)nf_model_readout_dim(c);
    if (c->z_dim > 0) {
        double zi = c->z_dim - c->z_raw;
        for (int k = 0; k < c->n_z_hidden; k++) { fl += 2.0 * zi * c->z_hidden[k]; zi = c->z_hidden[k]; }
        fl += 2.0 * zi * c->z_out;
        hin += c->z_out + c->z_raw;
    }
    if (c->device_at == NF_DEV_HEAD) {
        fl += 2.0 * c->hw_dim * c->dev_out + 2.0 * c->dev_out * c->dev_out;
        hin += c->dev_out;
    }
    for (int k = 0; k < c->n_head; k++) { fl += 2.0 * hin * c->head[k]; hin = c->head[k]; }
    fl += 2.0 * hin;
    return fl;
}
