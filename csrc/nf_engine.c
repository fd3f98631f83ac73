/* nf_engine.c — the inference engine of nf_engine.h: network construction for both spaces, the
 * buffer plan, seeded weights with batch-norm folding, the kernels and the export for PyTorch. */
/* The kernels' inner loops have run-time trip counts: GCC's -O2 cost model ("very cheap") leaves them scalar,
 * the dynamic one vectorises them (im2col with ReLU, depthwise rows, sums: 2-4x faster here). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nf_engine.h"
#include "nf_util.h"

#define MAXOPS NF_SPACE_MAX_LAYERS
#define MAXVALS (NF_SPACE_MAX_LAYERS + 2)
#define BN_EPS 1e-5
#define SKELETON ((uint64_t)1 << 40)

typedef struct {
    nf_layer L;          /* kind, shapes, counts (per image) */
    int in[3];           /* value ids (arity of them for ADD) */
    int out;             /* value id */
    int pad;             /* convs and 3×3 pools */
    int count_relu;      /* whether the output ReLU counts in FLOPs (FBNet's convention) */
    int shuffle_groups;  /* SHUFFLE: groups (the layer record keeps groups = 1, like nf_space_layers) */
    int has_bias;        /* folded BN (or BNRELU shift, linear bias) present */
    int64_t w_off;       /* folded weights in e->w (floats): conv weights / BNRELU scale / linear weight */
    int64_t b_off;       /* bias / BNRELU shift / linear bias; -1 if none */
    int64_t raw_off, raw_n;   /* unfolded parameters in e->raw (export order) */
    uint64_t stream;     /* its weights come from nf_rng_derive(seed, stream) */
} eop;

struct nf_engine {
    nf_space_id space;
    uint8_t code[NF_SPACE_MAX_CODE];
    int batch, classes, n_ops, n_vals, dw_gemm, in_ch, in_hw, count_only;
    eop ops[MAXOPS];
    int64_t val_size[MAXVALS];   /* floats per image */
    float *val_ptr[MAXVALS];     /* planned buffer of each value */
    float *w, *raw, *col;
    int64_t n_w, n_raw, n_col, slot_floats;
    int n_slots;
    float *mem;                  /* the one allocation */
    size_t bytes;
    int input_val, output_val;
    uint64_t stream_base, stream_k, skel_k;   /* role of the next op (see set_role) */
    double flops, params, macs;
};

/* ------------------------------------------------------------------ construction */
static int new_value(nf_engine *e, int c, int h)
{
    e->val_size[e->n_vals] = (int64_t)c * h * h;
    return e->n_vals++;
}

static eop *push(nf_engine *e, nf_layer_kind kind, int in, int cin, int cout, int hin, int hout, int block)
{
    eop *o = &e->ops[e->n_ops++];
    memset(o, 0, sizeof *o);
    nf_layer_init(&o->L, kind, cin, cout, hin, hout, block, 1);
    o->in[0] = in;
    o->in[1] = o->in[2] = -1;
    o->out = new_value(e, cout, hout);
    o->b_off = -1;
    o->stream = e->stream_base + e->stream_k++;
    if (e->stream_base == SKELETON) e->skel_k = e->stream_k;
    return o;
}

/* Weights are drawn per op from a stream named by its role: NB201 (cell, edge), FBNet (layer, op within the
 * block), the fixed skeleton (stem, reductions, head) in order. So the skeleton has the same weights in every
 * architecture, and an op's weights do not depend on the ops before it (a dead branch or a zero op can be
 * compared with the cell without it). */
static void set_role(nf_engine *e, int block, int edge)
{
    e->stream_base = block < 0 ? SKELETON : ((uint64_t)(block + 1) << 16) + ((uint64_t)(edge + 1) << 8);
    e->stream_k = block < 0 ? e->skel_k : 0;
}

/* conv k×k / stride, groups, padding k/2; the counts follow the space's convention (nf_space.h). */
static int conv(nf_engine *e, int in, int cin, int cout, int hin, int k, int stride, int groups, int relu_in, int bn,
                int relu_out, int count_relu, int block)
{
    int pad = k / 2, hout = (hin + 2 * pad - k) / stride + 1;
    nf_layer_kind kind = groups > 1 && groups == cin && groups == cout ? NF_LAYER_DWCONV : NF_LAYER_CONV;
    eop *o = push(e, kind, in, cin, cout, hin, hout, block);
    o->pad = pad;
    o->count_relu = count_relu;
    o->L.kernel = k;
    o->L.stride = stride;
    o->L.groups = groups;
    o->L.relu_in = relu_in;
    o->L.bn = bn;
    o->L.relu_out = relu_out;
    double out = (double)cout * hout * hout;
    double macs = (double)(cin / groups) * k * k * out;
    o->L.flops = macs + (relu_in ? (double)cin * hin * hin : 0) + (bn ? 2 * out : 0) + (relu_out && count_relu ? out : 0);
    o->L.params = (double)(cin / groups) * k * k * cout + (bn ? 2.0 * cout : 0);
    o->has_bias = bn;
    o->raw_n = (int64_t)(cin / groups) * k * k * cout + (bn ? 4 * cout : 0);
    return o->out;
}

/* average pooling k×k / stride (padding 1 for 3×3, count_include_pad=False). */
static int pool(nf_engine *e, int in, int c, int hin, int k, int stride, int block)
{
    int pad = k == 3 ? 1 : 0, hout = (hin + 2 * pad - k) / stride + 1;
    eop *o = push(e, NF_LAYER_POOL, in, c, c, hin, hout, block);
    o->pad = pad;
    o->L.kernel = k;
    o->L.stride = stride;
    o->L.flops = (double)k * k * c * hout * hout;   /* NB201 tables: k² per output element */
    return o->out;
}

static int add(nf_engine *e, const int *ins, int arity, int c, int h, int block)
{
    eop *o = push(e, NF_LAYER_ADD, ins[0], c, c, h, h, block);
    for (int i = 1; i < arity; i++) o->in[i] = ins[i];
    o->L.arity = o->L.arity_nonzero = arity;
    o->L.in_bytes *= arity;
    return o->out;
}

static int nb201_edge(nf_engine *e, int op, int in, int C, int H, int block, int edge)
{
    set_role(e, block, edge);
    switch (op) {
    case 0: return push(e, NF_LAYER_ZERO, in, C, C, H, H, block)->out;
    case 1: return in;   /* skip: the edge is its input */
    case 2: return conv(e, in, C, C, H, 1, 1, 1, 1, 1, 0, 0, block);
    case 3: return conv(e, in, C, C, H, 3, 1, 1, 1, 1, 0, 0, block);
    default: return pool(e, in, C, H, 3, 1, block);
    }
}

static void build_nb201(nf_engine *e, const uint8_t *code)
{
    int H = 32, C = 16;
    e->classes = 10;
    set_role(e, -1, 0);
    int x = conv(e, e->input_val, 3, C, H, 3, 1, 1, 0, 1, 0, 0, -1);
    for (int stage = 0, cell = 0; stage < 3; stage++) {
        if (stage > 0) {
            int Cp = C, Hp = H;
            C *= 2;
            H /= 2;
            int a = conv(e, x, Cp, C, Hp, 3, 2, 1, 1, 1, 0, 0, -1);
            int b = conv(e, a, C, C, H, 3, 1, 1, 1, 1, 0, 0, -1);
            int p = pool(e, x, Cp, Hp, 2, 2, -1);
            int s = conv(e, p, Cp, C, H, 1, 1, 1, 0, 0, 0, 0, -1);
            int ins[2] = {s, b};
            x = add(e, ins, 2, C, H, -1);
        }
        for (int c = 0; c < 5; c++, cell++) {
            int n1 = nb201_edge(e, code[0], x, C, H, cell, 0);
            int in2[2];
            in2[0] = nb201_edge(e, code[1], x, C, H, cell, 1);
            in2[1] = nb201_edge(e, code[2], n1, C, H, cell, 2);
            int n2 = add(e, in2, 2, C, H, cell);
            int in3[3];
            in3[0] = nb201_edge(e, code[3], x, C, H, cell, 3);
            in3[1] = nb201_edge(e, code[4], n1, C, H, cell, 4);
            in3[2] = nb201_edge(e, code[5], n2, C, H, cell, 5);
            x = add(e, in3, 3, C, H, cell);
            set_role(e, -1, 0);
        }
    }
    eop *o = push(e, NF_LAYER_BNRELU, x, C, C, H, H, -1);
    o->L.bn = 1;
    o->L.relu_out = 1;
    o->L.flops = 3.0 * C * H * H;
    o->L.params = 2.0 * C;
    o->has_bias = 1;
    o->raw_n = 4 * C;
    o = push(e, NF_LAYER_GPOOL, o->out, C, C, H, 1, -1);
    o->L.kernel = o->L.stride = H;
    o->L.flops = (double)C * (H + 1) * (H + 1);   /* the benchmark tables' convention */
    o = push(e, NF_LAYER_LINEAR, o->out, C, e->classes, 1, 1, -1);
    o->L.flops = (double)C * e->classes;
    o->L.params = (double)C * e->classes + e->classes;
    o->has_bias = 1;
    o->raw_n = (int64_t)C * e->classes + e->classes;
}

/* FBNet blocks 0..7: kernel, expansion, groups (nf_fbnet.c's table; block 8 is skip). */
static const int FB_K[8] = {3, 3, 3, 3, 5, 5, 5, 5};
static const int FB_E[8] = {1, 1, 3, 6, 1, 1, 3, 6};
static const int FB_G[8] = {1, 2, 1, 1, 1, 2, 1, 1};
static const int FB_LAYERS[7] = {1, 4, 4, 4, 4, 4, 1};
static const int FB_CH[7] = {16, 24, 32, 64, 112, 184, 352};
static const int FB_STRIDE[7] = {1, 1, 2, 2, 1, 2, 1};

static void build_fbnet(nf_engine *e, const uint8_t *code)
{
    int H = 32, cin = 16, layer = 0;
    e->classes = 100;
    set_role(e, -1, 0);
    int x = conv(e, e->input_val, 3, cin, H, 3, 1, 1, 0, 1, 1, 1, -1);
    for (int st = 0; st < 7; st++) {
        for (int i = 0; i < FB_LAYERS[st]; i++, layer++) {
            int cout = FB_CH[st], s = i == 0 ? FB_STRIDE[st] : 1, b = code[layer];
            set_role(e, layer, 0);
            if (b == 8) {
                if (s != 1 || cin != cout) x = conv(e, x, cin, cout, H, 1, s, 1, 0, 1, 1, 1, layer);
            } else {
                int m = cin * FB_E[b], g = FB_G[b];
                int y = conv(e, x, cin, m, H, 1, 1, g, 0, 1, 1, 0, layer);   /* ReLU counted once per block */
                if (g > 1) {
                    eop *o = push(e, NF_LAYER_SHUFFLE, y, m, m, H, H, layer);
                    o->shuffle_groups = g;
                    y = o->out;
                }
                y = conv(e, y, m, m, H, FB_K[b], s, m, 0, 1, 1, 1, layer);
                y = conv(e, y, m, cout, H / s, 1, 1, g, 0, 1, 0, 0, layer);
                if (cin == cout && s == 1) {
                    int ins[2] = {y, x};
                    x = add(e, ins, 2, cout, H, layer);
                } else {
                    x = y;
                }
            }
            H /= s;
            cin = cout;
            set_role(e, -1, 0);
        }
    }
    x = conv(e, x, cin, 1504, H, 1, 1, 1, 0, 1, 1, 1, -1);
    eop *o = push(e, NF_LAYER_GPOOL, x, 1504, 1504, H, 1, -1);
    o->L.kernel = o->L.stride = H;
    o->L.flops = 1504.0 * H * H;   /* flopth: pools 1 per input element */
    o = push(e, NF_LAYER_LINEAR, o->out, 1504, e->classes, 1, 1, -1);
    o->L.flops = 1504.0 * e->classes;
    o->L.params = 1504.0 * e->classes + e->classes;
    o->has_bias = 1;
    o->raw_n = 1504 * (int64_t)e->classes + e->classes;
}

/* ------------------------------------------------------------------ plan and weights */
/* Folded weight sizes of op o: conv weights + bias; BNRELU scale + shift; linear weight + bias. */
static void folded_size(const eop *o, int64_t *nw, int64_t *nb)
{
    const nf_layer *l = &o->L;
    *nw = *nb = 0;
    switch (l->kind) {
    case NF_LAYER_CONV:
    case NF_LAYER_DWCONV:
        *nw = (int64_t)(l->cin / l->groups) * l->kernel * l->kernel * l->cout;
        *nb = o->has_bias ? l->cout : 0;
        break;
    case NF_LAYER_BNRELU: *nw = *nb = l->cout; break;
    case NF_LAYER_LINEAR: *nw = (int64_t)l->cin * l->cout; *nb = l->cout; break;
    default: break;
    }
}

static float urand(nf_rng *r, double lo, double hi) { return (float)(lo + (hi - lo) * nf_rng_uniform(r)); }
static float nrand(nf_rng *r, double sd) { return (float)(sd * nf_rng_normal(r)); }

/* Draw op o's unfolded parameters into raw (export order: weight, then gamma, beta, mean, var; linear: weight,
 * bias) and fold them into w / b. */
static void init_weights(nf_engine *e, eop *o, nf_rng *r)
{
    const nf_layer *l = &o->L;
    float *raw = e->raw + o->raw_off, *w = e->w + o->w_off, *b = o->b_off >= 0 ? e->w + o->b_off : NULL;
    if (l->kind == NF_LAYER_CONV || l->kind == NF_LAYER_DWCONV) {
        int64_t per = (int64_t)(l->cin / l->groups) * l->kernel * l->kernel;
        double sd = sqrt(2.0 / (double)per);
        for (int64_t i = 0; i < per * l->cout; i++) raw[i] = nrand(r, sd);
        if (!o->has_bias) {
            memcpy(w, raw, sizeof(float) * (size_t)(per * l->cout));
            return;
        }
        float *g = raw + per * l->cout, *be = g + l->cout, *mu = be + l->cout, *var = mu + l->cout;
        for (int c = 0; c < l->cout; c++) g[c] = urand(r, 0.5, 1.5);
        for (int c = 0; c < l->cout; c++) be[c] = nrand(r, 0.1);
        for (int c = 0; c < l->cout; c++) mu[c] = nrand(r, 0.1);
        for (int c = 0; c < l->cout; c++) var[c] = urand(r, 0.5, 1.5);
        for (int c = 0; c < l->cout; c++) {
            double s = g[c] / sqrt((double)var[c] + BN_EPS);
            for (int64_t j = 0; j < per; j++) w[c * per + j] = (float)(raw[c * per + j] * s);
            b[c] = (float)(be[c] - mu[c] * s);
        }
    } else if (l->kind == NF_LAYER_BNRELU) {
        int C = l->cout;
        float *g = raw, *be = g + C, *mu = be + C, *var = mu + C;
        for (int c = 0; c < C; c++) g[c] = urand(r, 0.5, 1.5);
        for (int c = 0; c < C; c++) be[c] = nrand(r, 0.1);
        for (int c = 0; c < C; c++) mu[c] = nrand(r, 0.1);
        for (int c = 0; c < C; c++) var[c] = urand(r, 0.5, 1.5);
        for (int c = 0; c < C; c++) {
            double s = g[c] / sqrt((double)var[c] + BN_EPS);
            w[c] = (float)s;
            b[c] = (float)(be[c] - mu[c] * s);
        }
    } else if (l->kind == NF_LAYER_LINEAR) {
        int64_t n = (int64_t)l->cin * l->cout;
        double sd = 1.0 / sqrt((double)l->cin);
        for (int64_t i = 0; i < n; i++) raw[i] = nrand(r, sd);
        for (int c = 0; c < l->cout; c++) raw[n + c] = nrand(r, 0.1);
        memcpy(w, raw, sizeof(float) * (size_t)n);
        memcpy(b, raw + n, sizeof(float) * (size_t)l->cout);
    }
}

static int64_t col_floats(const eop *o, int dw_gemm)
{
    const nf_layer *l = &o->L;
    if (l->kind == NF_LAYER_POOL) return (int64_t)l->hin * l->hin;   /* pool3's row sums */
    if (l->kind == NF_LAYER_DWCONV && !dw_gemm)   /* the zero-padded plane */
        return (int64_t)(l->hin + 2 * o->pad) * (l->hin + 2 * o->pad);
    if (l->kind != NF_LAYER_CONV && !(l->kind == NF_LAYER_DWCONV && dw_gemm)) return 0;
    if (l->kernel == 1 && l->stride == 1 && !l->relu_in) return 0;   /* reads its input directly */
    return (int64_t)l->cin * l->kernel * l->kernel * l->hout * l->hout;
}

/* Liveness-based slot assignment: a value's slot is free again after the op that last reads it. The input and
 * the output keep buffers of their own (the input is re-read by every run, the output read after it). */
static nf_status plan(nf_engine *e, nf_err *err)
{
    int last_use[MAXVALS], slot_of[MAXVALS], slot_busy[MAXVALS];
    for (int v = 0; v < e->n_vals; v++) last_use[v] = -1, slot_of[v] = -1;
    for (int i = 0; i < e->n_ops; i++)
        for (int a = 0; a < 3; a++)
            if (e->ops[i].in[a] >= 0) last_use[e->ops[i].in[a]] = i;
    e->output_val = e->ops[e->n_ops - 1].out;
    int n_slots = 0;
    int64_t maxv = 0;
    for (int i = 0; i < e->n_ops; i++) {
        int v = e->ops[i].out;
        if (v != e->output_val) {
            int s = -1;
            for (int k = 0; k < n_slots; k++)
                if (!slot_busy[k]) { s = k; break; }
            if (s < 0) s = n_slots++;
            slot_busy[s] = 1;
            slot_of[v] = s;
            if (e->val_size[v] > maxv) maxv = e->val_size[v];
        }
        for (int a = 0; a < 3; a++) {
            int u = e->ops[i].in[a];
            if (u >= 0 && last_use[u] == i && slot_of[u] >= 0) {
                /* an ADD may read one value twice: free once */
                if (slot_busy[slot_of[u]]) slot_busy[slot_of[u]] = 0;
            }
        }
        if (v != e->output_val && last_use[v] < 0) slot_busy[slot_of[v]] = 0;   /* never read (cannot happen) */
    }
    e->n_slots = n_slots;
    e->slot_floats = maxv * e->batch;
    e->n_w = e->n_raw = e->n_col = 0;
    for (int i = 0; i < e->n_ops; i++) {
        eop *o = &e->ops[i];
        int64_t nw, nb;
        folded_size(o, &nw, &nb);
        o->w_off = e->n_w;
        e->n_w += nw;
        o->b_off = nb ? e->n_w : -1;
        e->n_w += nb;
        o->raw_off = e->n_raw;
        e->n_raw += o->raw_n;
        int64_t c = col_floats(o, e->dw_gemm);
        if (c > e->n_col) e->n_col = c;
    }
    int64_t in_n = e->val_size[e->input_val] * e->batch, out_n = e->val_size[e->output_val] * e->batch;
    if (e->count_only) return NF_OK;
    int64_t total = e->n_w + e->n_raw + e->n_col + in_n + out_n + e->slot_floats * n_slots;
    e->bytes = (size_t)total * sizeof(float);
    e->mem = malloc(e->bytes ? e->bytes : 1);
    if (!e->mem) return nf_seterr(err, NF_ENOMEM, "engine: cannot allocate %zu bytes", e->bytes);
    float *p = e->mem;
    e->w = p, p += e->n_w;
    e->raw = p, p += e->n_raw;
    e->col = p, p += e->n_col;
    e->val_ptr[e->input_val] = p, p += in_n;
    e->val_ptr[e->output_val] = p, p += out_n;
    for (int v = 0; v < e->n_vals; v++)
        if (slot_of[v] >= 0) e->val_ptr[v] = p + e->slot_floats * slot_of[v];
    memset(e->mem, 0, e->bytes);   /* touch every page once, outside any timed run */
    return NF_OK;
}

nf_status nf_engine_new(nf_space_id s, const uint8_t *code, const nf_engine_opts *opts, nf_engine **out, nf_err *err)
{
    *out = NULL;
    nf_status st;
    if (s != NF_SPACE_NB201 && s != NF_SPACE_FBNET) return nf_seterr(err, NF_EINVAL, "engine: unknown space %d", (int)s);
    if ((st = nf_space_check(s, code, err))) return st;
    int batch = opts ? opts->batch : 1;
    if (batch < 1 || batch > 4096) return nf_seterr(err, NF_EINVAL, "engine: batch must be in 1..4096 (got %d)", batch);
    nf_engine *e = calloc(1, sizeof *e);
    if (!e) return nf_seterr(err, NF_ENOMEM, "engine: out of memory");
    e->space = s;
    memcpy(e->code, code, (size_t)nf_space_code_len(s));
    e->batch = batch;
    e->dw_gemm = opts ? opts->dw_gemm != 0 : 0;
    e->count_only = opts ? opts->count_only != 0 : 0;
    e->in_ch = 3;
    e->in_hw = 32;
    e->input_val = new_value(e, 3, 32);
    if (s == NF_SPACE_NB201) build_nb201(e, code);
    else build_fbnet(e, code);
    if ((st = plan(e, err))) {
        nf_engine_free(e);
        return st;
    }
    if (!e->count_only) {
        nf_rng r;
        uint64_t seed = opts ? opts->seed : 0;
        for (int i = 0; i < e->n_ops; i++) {
            nf_rng_seed(&r, nf_rng_derive(seed, e->ops[i].stream));
            init_weights(e, &e->ops[i], &r);
        }
        nf_rng_seed(&r, nf_rng_derive(seed, 0));
        float *x = e->val_ptr[e->input_val];
        for (int64_t i = 0; i < e->val_size[e->input_val] * batch; i++) x[i] = nrand(&r, 1.0);
    }
    for (int i = 0; i < e->n_ops; i++) {
        e->flops += e->ops[i].L.flops;
        e->params += e->ops[i].L.params;
        const nf_layer *l = &e->ops[i].L;
        if (l->kind == NF_LAYER_CONV || l->kind == NF_LAYER_DWCONV)
            e->macs += (double)(l->cin / l->groups) * l->kernel * l->kernel * l->cout * l->hout * l->hout;
    }
    *out = e;
    return NF_OK;
}

void nf_engine_free(nf_engine *e)
{
    if (!e) return;
    free(e->mem);
    free(e);
}

/* ------------------------------------------------------------------ kernels */
/* Output columns ox whose input column ox*stride - pad + kx lies in [0, H): [*lo, *hi). */
static void valid_range(int Ho, int H, int stride, int pad, int kx, int *lo, int *hi)
{
    int l = 0, h = Ho;
    while (l < Ho && l * stride - pad + kx < 0) l++;
    while (h > l && (h - 1) * stride - pad + kx >= H) h--;
    *lo = l;
    *hi = h;
}

/* col[(c·k + ky)·k + kx][oy·Ho + ox] = in[c][oy·s − pad + ky][ox·s − pad + kx] (0 outside), ReLU'd if relu. */
static void im2col(const float *in, int C, int H, int k, int stride, int pad, int relu, int Ho, float *col)
{
    int HW = Ho * Ho;
    for (int c = 0; c < C; c++) {
        const float *src = in + (int64_t)c * H * H;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *dst = col + ((int64_t)(c * k + ky) * k + kx) * HW;
                int lo, hi;
                valid_range(Ho, H, stride, pad, kx, &lo, &hi);
                for (int oy = 0; oy < Ho; oy++) {
                    int iy = oy * stride - pad + ky;
                    float *d = dst + oy * Ho;
                    if (iy < 0 || iy >= H || lo >= hi) {
                        memset(d, 0, sizeof(float) * (size_t)Ho);
                        continue;
                    }
                    for (int ox = 0; ox < lo; ox++) d[ox] = 0.0f;
                    for (int ox = hi; ox < Ho; ox++) d[ox] = 0.0f;
                    const float *row = src + (int64_t)iy * H + kx - pad;
                    if (stride == 1) {
                        if (relu)
                            for (int ox = lo; ox < hi; ox++) d[ox] = row[ox] > 0.0f ? row[ox] : 0.0f;
                        else
                            memcpy(d + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
                    } else {
                        for (int ox = lo; ox < hi; ox++) {
                            float v = row[ox * stride];
                            d[ox] = relu && v < 0.0f ? 0.0f : v;
                        }
                    }
                }
            }
    }
}

static void bias_relu(float *out, const float *b, int C, int64_t HW, int relu)
{
    for (int c = 0; c < C; c++) {
        float *o = out + c * HW, bc = b ? b[c] : 0.0f;
        if (relu)
            for (int64_t i = 0; i < HW; i++) {
                float v = o[i] + bc;
                o[i] = v > 0.0f ? v : 0.0f;
            }
        else if (b)
            for (int64_t i = 0; i < HW; i++) o[i] += bc;
    }
}

static nf_status run_conv(nf_engine *e, const eop *o, nf_err *err)
{
    const nf_layer *l = &o->L;
    int cin = l->cin, cout = l->cout, k = l->kernel, G = l->groups, Ho = l->hout;
    int64_t HW = (int64_t)Ho * Ho, K = (int64_t)(cin / G) * k * k, M = cout / G;
    const float *W = e->w + o->w_off, *b = o->b_off >= 0 ? e->w + o->b_off : NULL;
    for (int n = 0; n < e->batch; n++) {
        const float *in = e->val_ptr[o->in[0]] + (int64_t)n * cin * l->hin * l->hin;
        float *out = e->val_ptr[o->out] + (int64_t)n * cout * HW;
        const float *col = in;
        if (k != 1 || l->stride != 1 || l->relu_in) {
            im2col(in, cin, l->hin, k, l->stride, o->pad, l->relu_in, Ho, e->col);
            col = e->col;
        }
        for (int g = 0; g < G; g++) {
            nf_status st = nf_gemm(NF_NOTRANS, NF_NOTRANS, M, HW, K, 1.0f, W + g * M * K, K, col + g * K * HW, HW, 0.0f,
                                   out + g * M * HW, HW, err);
            if (st) return st;
        }
        bias_relu(out, b, cout, HW, l->relu_out);
    }
    return NF_OK;
}

/* Depthwise k×k / stride, padding k/2, direct: each channel plane is copied into a zero-padded scratch plane,
 * then every output row starts at the bias and gets k² scaled, shifted input rows added (a fixed trip count of
 * Ho, contiguous for stride 1, so the loop vectorises); then the ReLU. */
static void run_dw(nf_engine *e, const eop *o)
{
    const nf_layer *l = &o->L;
    int C = l->cin, k = l->kernel, s = l->stride, H = l->hin, Ho = l->hout, pad = o->pad, Hp = H + 2 * pad;
    const float *W = e->w + o->w_off, *b = e->w + o->b_off;
    float *P = e->col;
    memset(P, 0, sizeof(float) * (size_t)Hp * (size_t)Hp);   /* the border stays 0 for every plane */
    for (int n = 0; n < e->batch; n++) {
        const float *in = e->val_ptr[o->in[0]] + (int64_t)n * C * H * H;
        float *out = e->val_ptr[o->out] + (int64_t)n * C * Ho * Ho;
        for (int c = 0; c < C; c++) {
            const float *src = in + (int64_t)c * H * H, *w = W + c * k * k;
            for (int y = 0; y < H; y++) memcpy(P + (int64_t)(y + pad) * Hp + pad, src + (int64_t)y * H, sizeof(float) * (size_t)H);
            float *dst = out + (int64_t)c * Ho * Ho;
            for (int oy = 0; oy < Ho; oy++) {
                float *d = dst + oy * Ho;
                for (int ox = 0; ox < Ho; ox++) d[ox] = b[c];
                for (int ky = 0; ky < k; ky++) {
                    const float *prow = P + (int64_t)(oy * s + ky) * Hp;
                    for (int kx = 0; kx < k; kx++) {
                        float wv = w[ky * k + kx];
                        const float *r = prow + kx;
                        if (s == 1)
                            for (int ox = 0; ox < Ho; ox++) d[ox] += wv * r[ox];
                        else
                            for (int ox = 0; ox < Ho; ox++) d[ox] += wv * r[ox * s];
                    }
                }
                if (l->relu_out)
                    for (int ox = 0; ox < Ho; ox++) d[ox] = d[ox] > 0.0f ? d[ox] : 0.0f;
            }
        }
    }
}

/* 3×3 / 1 average pooling, padding 1, count_include_pad=False, separably: row sums of 3 (2 at the edges) into
 * the scratch, then column sums of those times 1 / (valid rows × valid columns). Vectorisable loops. */
static void pool3(const float *src, float *dst, int H, float *rows)
{
    for (int y = 0; y < H; y++) {
        const float *r = src + (int64_t)y * H;
        float *h = rows + (int64_t)y * H;
        if (H == 1) { h[0] = r[0]; continue; }
        h[0] = r[0] + r[1];
        for (int x = 1; x < H - 1; x++) h[x] = r[x - 1] + r[x] + r[x + 1];
        h[H - 1] = r[H - 2] + r[H - 1];
    }
    for (int y = 0; y < H; y++) {
        const float *up = rows + (int64_t)(y > 0 ? y - 1 : y) * H, *mid = rows + (int64_t)y * H,
                    *dn = rows + (int64_t)(y < H - 1 ? y + 1 : y) * H;
        float *d = dst + (int64_t)y * H;
        int ny = 1 + (y > 0) + (y < H - 1);
        float inner = 1.0f / (float)(3 * ny), edge = H > 1 ? 1.0f / (float)(2 * ny) : 1.0f / (float)ny;
        if (ny == 3)
            for (int x = 0; x < H; x++) d[x] = up[x] + mid[x] + dn[x];
        else if (y == 0 && H > 1)
            for (int x = 0; x < H; x++) d[x] = mid[x] + dn[x];
        else if (H > 1)
            for (int x = 0; x < H; x++) d[x] = up[x] + mid[x];
        else
            d[0] = mid[0];
        for (int x = 1; x < H - 1; x++) d[x] *= inner;
        d[0] *= edge;
        if (H > 1) d[H - 1] *= edge;
    }
}

static void run_pool(nf_engine *e, const eop *o)
{
    const nf_layer *l = &o->L;
    int C = l->cin, k = l->kernel, s = l->stride, H = l->hin, Ho = l->hout, pad = o->pad;
    for (int64_t nc = 0; nc < (int64_t)e->batch * C; nc++) {
        const float *src = e->val_ptr[o->in[0]] + nc * H * H;
        float *dst = e->val_ptr[o->out] + nc * Ho * Ho;
        if (k == 3 && s == 1 && pad == 1) {
            pool3(src, dst, H, e->col);
            continue;
        }
        for (int oy = 0; oy < Ho; oy++) {
            int y0 = oy * s - pad, ya = y0 < 0 ? 0 : y0, yb = y0 + k > H ? H : y0 + k;
            for (int ox = 0; ox < Ho; ox++) {
                int x0 = ox * s - pad, xa = x0 < 0 ? 0 : x0, xb = x0 + k > H ? H : x0 + k;
                float acc = 0.0f;
                for (int y = ya; y < yb; y++)
                    for (int x = xa; x < xb; x++) acc += src[y * H + x];
                dst[oy * Ho + ox] = acc / (float)((yb - ya) * (xb - xa));   /* count_include_pad=False */
            }
        }
    }
}

static nf_status run_op(nf_engine *e, const eop *o, nf_err *err)
{
    const nf_layer *l = &o->L;
    const float *in = e->val_ptr[o->in[0]];
    float *out = e->val_ptr[o->out];
    int64_t n_out = e->val_size[o->out] * e->batch;
    switch (l->kind) {
    case NF_LAYER_CONV: return run_conv(e, o, err);
    case NF_LAYER_DWCONV:
        if (e->dw_gemm) return run_conv(e, o, err);
        run_dw(e, o);
        return NF_OK;
    case NF_LAYER_POOL: run_pool(e, o); return NF_OK;
    case NF_LAYER_GPOOL: {
        int64_t HW = (int64_t)l->hin * l->hin;
        for (int64_t nc = 0; nc < (int64_t)e->batch * l->cin; nc++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < HW; i++) acc += in[nc * HW + i];
            out[nc] = acc / (float)HW;
        }
        return NF_OK;
    }
    case NF_LAYER_LINEAR: {
        nf_status st = nf_gemm(NF_NOTRANS, NF_TRANS, e->batch, l->cout, l->cin, 1.0f, in, l->cin, e->w + o->w_off, l->cin,
                               0.0f, out, l->cout, err);
        if (st) return st;
        const float *b = e->w + o->b_off;
        for (int n = 0; n < e->batch; n++)
            for (int c = 0; c < l->cout; c++) out[n * l->cout + c] += b[c];
        return NF_OK;
    }
    case NF_LAYER_ADD: {
        const float *b = e->val_ptr[o->in[1]];
        if (l->arity == 2) {
            for (int64_t i = 0; i < n_out; i++) out[i] = in[i] + b[i];
        } else {
            const float *c = e->val_ptr[o->in[2]];
            for (int64_t i = 0; i < n_out; i++) out[i] = in[i] + b[i] + c[i];
        }
        return NF_OK;
    }
    case NF_LAYER_ZERO:
        for (int64_t i = 0; i < n_out; i++) out[i] = in[i] * 0.0f;   /* x * 0, as NAS-Bench-201 runs it */
        return NF_OK;
    case NF_LAYER_SHUFFLE: {
        int C = l->cin, g = o->shuffle_groups, per = C / g;
        int64_t HW = (int64_t)l->hin * l->hin;
        for (int n = 0; n < e->batch; n++)
            for (int j = 0; j < g; j++)
                for (int i = 0; i < per; i++)
                    memcpy(out + ((int64_t)n * C + i * g + j) * HW, in + ((int64_t)n * C + j * per + i) * HW,
                           sizeof(float) * (size_t)HW);
        return NF_OK;
    }
    case NF_LAYER_BNRELU: {
        int64_t HW = (int64_t)l->hin * l->hin;
        const float *sc = e->w + o->w_off, *sh = e->w + o->b_off;
        for (int n = 0; n < e->batch; n++)
            for (int c = 0; c < l->cin; c++) {
                const float *x = in + ((int64_t)n * l->cin + c) * HW;
                float *y = out + ((int64_t)n * l->cin + c) * HW;
                for (int64_t i = 0; i < HW; i++) {
                    float v = x[i] * sc[c] + sh[c];
                    y[i] = v > 0.0f ? v : 0.0f;
                }
            }
        return NF_OK;
    }
    default: break;
    }
    return nf_seterr(err, NF_EINVAL, "engine: op kind %d cannot run", (int)l->kind);
}

static nf_status runnable(const nf_engine *e, nf_err *err)
{
    if (!e) return nf_seterr(err, NF_EINVAL, "engine: NULL engine");
    if (e->count_only) return nf_seterr(err, NF_ESTATE, "engine: built with count_only, cannot run");
    return NF_OK;
}

nf_status nf_engine_run(nf_engine *e, nf_err *err)
{
    nf_status st0 = runnable(e, err);
    if (st0) return st0;
    for (int i = 0; i < e->n_ops; i++) {
        nf_status st = run_op(e, &e->ops[i], err);
        if (st) return st;
    }
    return NF_OK;
}

nf_status nf_engine_run_profiled(nf_engine *e, double *op_seconds, nf_err *err)
{
    nf_status st0 = runnable(e, err);
    if (st0) return st0;
    for (int i = 0; i < e->n_ops; i++) {
        double t0 = nf_now();
        nf_status st = run_op(e, &e->ops[i], err);
        op_seconds[i] += nf_now() - t0;
        if (st) return st;
    }
    return NF_OK;
}

static double cpu_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

nf_status nf_engine_bench(nf_engine *e, int warmup, int repeats, double *ms, double *cpu_ms, nf_err *err)
{
    nf_status st0 = runnable(e, err);
    if (st0) return st0;
    if (warmup < 0 || repeats < 1)
        return nf_seterr(err, NF_EINVAL, "engine: bench needs warmup >= 0 and repeats >= 1 (got %d, %d)", warmup, repeats);
    nf_status st;
    for (int i = 0; i < warmup; i++)
        if ((st = nf_engine_run(e, err))) return st;
    for (int i = 0; i < repeats; i++) {
        double c0 = cpu_ms ? cpu_now() : 0.0, t0 = nf_now();
        if ((st = nf_engine_run(e, err))) return st;
        double t1 = nf_now();
        ms[i] = (t1 - t0) * 1e3;
        if (cpu_ms) cpu_ms[i] = (cpu_now() - c0) * 1e3;
    }
    return NF_OK;
}

/* ------------------------------------------------------------------ accessors and export */
float *nf_engine_input(nf_engine *e) { return e->count_only ? NULL : e->val_ptr[e->input_val]; }
const float *nf_engine_output(const nf_engine *e) { return e->count_only ? NULL : e->val_ptr[e->output_val]; }
int nf_engine_classes(const nf_engine *e) { return e->classes; }
int nf_engine_batch(const nf_engine *e) { return e->batch; }
int nf_engine_n_ops(const nf_engine *e) { return e->n_ops; }
const nf_layer *nf_engine_op(const nf_engine *e, int i) { return i >= 0 && i < e->n_ops ? &e->ops[i].L : NULL; }
double nf_engine_flops(const nf_engine *e) { return e->flops; }
double nf_engine_params(const nf_engine *e) { return e->params; }
double nf_engine_conv_macs(const nf_engine *e) { return e->macs; }
size_t nf_engine_bytes(const nf_engine *e) { return e->bytes + sizeof *e; }

nf_status nf_engine_export(const nf_engine *e, const char *path, nf_err *err)
{
    nf_status st0 = runnable(e, err);
    if (st0) return st0;
    FILE *f = fopen(path, "wb");
    if (!f) return nf_seterr(err, NF_EIO, "%s: cannot open for writing", path);
    char arch[NF_SPACE_MAX_STRING] = "";
    nf_space_format(e->space, e->code, arch, sizeof arch);
    int64_t in_n = e->val_size[e->input_val] * e->batch, out_n = e->val_size[e->output_val] * e->batch;
    fprintf(f, "nasflat-engine 1 space=%s arch=%s batch=%d classes=%d input=%lld params=%lld output=%lld\n",
            nf_space_name(e->space), arch, e->batch, e->classes, (long long)in_n, (long long)e->n_raw, (long long)out_n);
    int ok = fwrite(e->val_ptr[e->input_val], sizeof(float), (size_t)in_n, f) == (size_t)in_n;
    ok = ok && fwrite(e->raw, sizeof(float), (size_t)e->n_raw, f) == (size_t)e->n_raw;
    ok = ok && fwrite(e->val_ptr[e->output_val], sizeof(float), (size_t)out_n, f) == (size_t)out_n;
    if (fclose(f) != 0) ok = 0;
    if (!ok) return nf_seterr(err, NF_EIO, "%s: write failed", path);
    return NF_OK;
}
