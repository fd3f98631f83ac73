/* nf_vae.c — the arch2vec-style graph autoencoder (see nf_vae.h for the model and its loss). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nf_nn.h"
#include "nf_optim.h"
#include "nf_util.h"
#include "nf_vae.h"

/* ---------------------------------------------------------------- the model */
typedef struct {
    float *eps, *W1, *b1, *W2, *b2;    /* slices of the parameter block */
    float *M, *A, *H;                  /* activations: aggregated input, first and second ReLU */
    int in;
} gin_layer;

struct nf_vae {
    nf_vae_config cfg;
    int in0;                           /* input feature width */
    int64_t np;                        /* parameters */
    float *block;                      /* params | grads | adam m | adam v */
    float *p, *g, *m, *v;
    gin_layer *gl;                     /* cfg.layers entries (pointers into block and arena) */
    float *We, *be, *Wo, *bo, *Wa, *c;        /* parameter slices */
    float *gWe, *gbe, *gWo, *gbo, *gWa, *gc;  /* matching gradient slices */
    /* arena, sized for cfg.batch graphs (R = batch·N rows) */
    float *arena;
    size_t arena_n;
    float *X0, *S, *Ab, *E, *noise, *Z, *Q, *LOG;
    float *dZ, *dQ, *dE, *dLOG, *dH, *dA, *dM;
    int32_t *ops;
    int64_t t;                         /* Adam steps */
};

nf_vae_config nf_vae_config_default(int nodes, int vocab)
{
    nf_vae_config c;
    c.nodes = nodes;
    c.vocab = vocab;
    c.positions = 1;
    c.skip = 1;
    c.hidden = 64;
    c.layers = 3;
    c.latent = 32;
    c.batch = 32;
    c.lr = 1e-3f;
    c.beta = 0.005f;
    return c;
}

static nf_status check_config(const nf_vae_config *c, nf_err *err)
{
#define RANGE(field, lo, hi) \
    if (c->field < (lo) || c->field > (hi)) \
        return nf_seterr(err, NF_EINVAL, "vae: " #field " = %d out of range %d..%d", c->field, lo, hi)
    RANGE(nodes, 1, 64);
    RANGE(vocab, 1, 256);
    RANGE(hidden, 1, 4096);
    RANGE(layers, 1, 16);
    RANGE(latent, 1, 1024);
    RANGE(batch, 1, 65536);
#undef RANGE
    if (c->positions != 0 && c->positions != 1)
        return nf_seterr(err, NF_EINVAL, "vae: positions = %d (expected 0 or 1)", c->positions);
    if (c->skip != 0 && c->skip != 1) return nf_seterr(err, NF_EINVAL, "vae: skip = %d (expected 0 or 1)", c->skip);
    if (!(c->lr > 0) || !isfinite(c->lr)) return nf_seterr(err, NF_EINVAL, "vae: lr = %g (must be finite and > 0)", (double)c->lr);
    if (!(c->beta >= 0) || !isfinite(c->beta)) return nf_seterr(err, NF_EINVAL, "vae: beta = %g (must be finite and >= 0)", (double)c->beta);
    return NF_OK;
}

static void xavier(float *W, int64_t in, int64_t out, nf_rng *rng)
{
    double a = sqrt(6.0 / (double)(in + out));
    for (int64_t k = 0; k < in * out; k++) W[k] = (float)((2.0 * nf_rng_uniform(rng) - 1.0) * a);
}

nf_status nf_vae_new(const nf_vae_config *cfg, nf_rng *rng, nf_vae **out, nf_err *err)
{
    if (out) *out = NULL;
    if (!cfg || !rng || !out) return nf_seterr(err, NF_EINVAL, "vae: NULL argument");
    nf_status st = check_config(cfg, err);
    if (st) return st;
    nf_vae *v = calloc(1, sizeof *v);
    if (!v) return nf_seterr(err, NF_ENOMEM, "vae: out of memory");
    v->cfg = *cfg;
    const int64_t N = cfg->nodes, V = cfg->vocab, Hd = cfg->hidden, Zd = cfg->latent, L = cfg->layers;
    v->in0 = cfg->vocab + (cfg->positions ? cfg->nodes : 0);
    int64_t np = 0;
    for (int64_t l = 0; l < L; l++) {
        int64_t in = l ? Hd : v->in0;
        np += 1 + in * Hd + Hd + Hd * Hd + Hd;
    }
    const int64_t head_in = Hd + (cfg->skip ? v->in0 : 0);
    np += head_in * 2 * Zd + 2 * Zd + Zd * V + V + Zd * Zd + 1;
    v->np = np;
    const int64_t R = (int64_t)cfg->batch * N;
    const int64_t wide = Hd > v->in0 ? Hd : v->in0;
    size_t an = 0;
    an += (size_t)(R * v->in0);                                   /* X0 */
    an += (size_t)(2 * R * N);                                    /* S, Ab */
    for (int64_t l = 0; l < L; l++) an += (size_t)(R * ((l ? Hd : v->in0) + 2 * Hd));   /* M, A, H */
    an += (size_t)(R * 2 * Zd + 3 * R * Zd + R * V);              /* E, noise, Z, Q, LOG */
    an += (size_t)(2 * R * Zd + R * 2 * Zd + R * V + R * wide + R * Hd + R * wide);   /* dZ dQ dE dLOG dH dA dM */
    v->arena_n = an;
    v->block = calloc((size_t)(4 * np), sizeof(float));
    v->arena = calloc(an, sizeof(float));
    v->gl = calloc((size_t)L, sizeof *v->gl);
    v->ops = calloc((size_t)R, sizeof(int32_t));
    if (!v->block || !v->arena || !v->gl || !v->ops) {
        nf_vae_free(v);
        return nf_seterr(err, NF_ENOMEM, "vae: out of memory (%lld parameters, %lld scratch floats)",
                         (long long)np, (long long)an);
    }
    v->p = v->block;
    v->g = v->block + np;
    v->m = v->block + 2 * np;
    v->v = v->block + 3 * np;
    float *p = v->p, *a = v->arena;
    v->X0 = a; a += R * v->in0;
    v->S = a; a += R * N;
    v->Ab = a; a += R * N;
    for (int64_t l = 0; l < L; l++) {
        gin_layer *g = &v->gl[l];
        g->in = (int)(l ? Hd : v->in0);
        g->eps = p; p += 1;
        g->W1 = p; p += g->in * Hd;
        g->b1 = p; p += Hd;
        g->W2 = p; p += Hd * Hd;
        g->b2 = p; p += Hd;
        g->M = a; a += R * g->in;
        g->A = a; a += R * Hd;
        g->H = a; a += R * Hd;
    }
    v->We = p; p += head_in * 2 * Zd;
    v->be = p; p += 2 * Zd;
    v->Wo = p; p += Zd * V;
    v->bo = p; p += V;
    v->Wa = p; p += Zd * Zd;
    v->c = p; p += 1;
    v->gWe = v->g + (v->We - v->p);
    v->gbe = v->g + (v->be - v->p);
    v->gWo = v->g + (v->Wo - v->p);
    v->gbo = v->g + (v->bo - v->p);
    v->gWa = v->g + (v->Wa - v->p);
    v->gc = v->g + (v->c - v->p);
    v->E = a; a += R * 2 * Zd;
    v->noise = a; a += R * Zd;
    v->Z = a; a += R * Zd;
    v->Q = a; a += R * Zd;
    v->LOG = a; a += R * V;
    v->dZ = a; a += R * Zd;
    v->dQ = a; a += R * Zd;
    v->dE = a; a += R * 2 * Zd;
    v->dLOG = a; a += R * V;
    v->dH = a; a += R * wide;
    v->dA = a; a += R * Hd;
    v->dM = a;
    for (int64_t l = 0; l < L; l++) {
        xavier(v->gl[l].W1, v->gl[l].in, Hd, rng);
        xavier(v->gl[l].W2, Hd, Hd, rng);
    }
    xavier(v->We, head_in, 2 * Zd, rng);
    xavier(v->Wo, Zd, V, rng);
    for (int64_t k = 0; k < Zd; k++) v->Wa[k * Zd + k] = 1.0f;   /* starts as the plain inner product */
    *out = v;
    return NF_OK;
}

void nf_vae_free(nf_vae *v)
{
    if (!v) return;
    free(v->block);
    free(v->arena);
    free(v->gl);
    free(v->ops);
    free(v);
}

const nf_vae_config *nf_vae_get_config(const nf_vae *v) { return &v->cfg; }
int64_t nf_vae_nparams(const nf_vae *v) { return v->np; }
float *nf_vae_params(nf_vae *v) { return v->p; }
float *nf_vae_grads(nf_vae *v) { return v->g; }
int64_t nf_vae_steps(const nf_vae *v) { return v->t; }

size_t nf_vae_bytes(const nf_vae *v)
{
    return sizeof *v + (size_t)(4 * v->np) * sizeof(float) + v->arena_n * sizeof(float)
           + (size_t)v->cfg.layers * sizeof(gin_layer) + (size_t)v->cfg.batch * (size_t)v->cfg.nodes * sizeof(int32_t);
}

nf_status nf_vae_check_graphs(const nf_vae *v, const float *ops, const float *adj, int64_t B, nf_err *err)
{
    const int64_t N = v->cfg.nodes, V = v->cfg.vocab;
    if (B < 0) return nf_seterr(err, NF_EINVAL, "vae: %lld graphs", (long long)B);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t i = 0; i < N; i++) {
            float o = ops[b * N + i];
            if (!(o >= 0 && o < (float)V) || o != floorf(o))
                return nf_seterr(err, NF_EINVAL, "vae: graph %lld, node %lld: op id %g out of range 0..%lld",
                                 (long long)b, (long long)i, (double)o, (long long)V - 1);
            const float *row = adj + (b * N + i) * N;
            for (int64_t j = 0; j < N; j++) {
                if (row[j] != 0.0f && row[j] != 1.0f)
                    return nf_seterr(err, NF_EINVAL, "vae: graph %lld: adjacency entry (%lld, %lld) = %g (expected 0 or 1)",
                                     (long long)b, (long long)i, (long long)j, (double)row[j]);
                if (i == j && row[j] != 0.0f)
                    return nf_seterr(err, NF_EINVAL, "vae: graph %lld: self-loop at node %lld (the autoencoder needs "
                                     "loop-free graphs; fbnet: use the chain adjacency)", (long long)b, (long long)i);
            }
        }
    }
    return NF_OK;
}

/* ---------------------------------------------------------------- layers */
void nf_vae_aggregate_forward(const float *S, const float *H, float eps, int64_t B, int64_t N, int64_t F, float *out)
{
    const float self = 1.0f + eps;
    for (int64_t b = 0; b < B; b++) {
        const float *Sb = S + b * N * N, *Hb = H + b * N * F;
        float *Ob = out + b * N * F;
        for (int64_t k = 0; k < N * F; k++) Ob[k] = self * Hb[k];
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < N; j++) {
                float s = Sb[i * N + j];
                if (s != 0.0f) {
                    const float *hj = Hb + j * F;
                    float *oi = Ob + i * F;
                    for (int64_t f = 0; f < F; f++) oi[f] += s * hj[f];
                }
            }
    }
}

void nf_vae_aggregate_backward(const float *S, const float *H, const float *dOut, float eps, int64_t B, int64_t N,
                               int64_t F, float *dH, float *deps)
{
    if (deps) *deps += (float)nf_dot(dOut, H, (size_t)(B * N * F));
    if (!dH) return;
    const float self = 1.0f + eps;
    for (int64_t b = 0; b < B; b++) {
        const float *Sb = S + b * N * N, *Db = dOut + b * N * F;
        float *Gb = dH + b * N * F;
        for (int64_t k = 0; k < N * F; k++) Gb[k] = self * Db[k];
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < N; j++) {
                float s = Sb[i * N + j];           /* out_i += s·H_j  →  dH_j += s·dOut_i */
                if (s != 0.0f) {
                    const float *di = Db + i * F;
                    float *gj = Gb + j * F;
                    for (int64_t f = 0; f < F; f++) gj[f] += s * di[f];
                }
            }
    }
}

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

double nf_vae_adj_loss(const float *Z, const float *Q, const float *A, float c, int64_t B, int64_t N, int64_t D,
                       double scale, float *dZ, float *dQ, float *dc)
{
    double total = 0, gsum = 0;
    if (dZ) memset(dZ, 0, (size_t)(B * N * D) * sizeof(float));
    if (dQ) memset(dQ, 0, (size_t)(B * N * D) * sizeof(float));
    for (int64_t b = 0; b < B; b++) {
        const float *Zb = Z + b * N * D, *Qb = Q + b * N * D, *Ab = A + b * N * N;
        for (int64_t i = 0; i < N; i++) {
            const float *zi = Zb + i * D;
            for (int64_t j = 0; j < N; j++) {
                if (j == i) continue;
                const float *qj = Qb + j * D;
                double l = c;
                for (int64_t k = 0; k < D; k++) l += (double)zi[k] * qj[k];
                double a = Ab[i * N + j], g = sigmoid(l) - a;
                total += softplus(l) - a * l;
                gsum += g;
                float gs = (float)(scale * g);
                if (dZ) { float *d = dZ + (b * N + i) * D; for (int64_t k = 0; k < D; k++) d[k] += gs * qj[k]; }
                if (dQ) { float *d = dQ + (b * N + j) * D; for (int64_t k = 0; k < D; k++) d[k] += gs * zi[k]; }
            }
        }
    }
    if (dc) *dc += (float)(scale * gsum);
    return scale * total;
}

double nf_vae_op_loss(const float *logits, const int32_t *ops, int64_t R, int64_t V, double scale, float *dlogits)
{
    double total = 0;
    for (int64_t r = 0; r < R; r++) {
        const float *x = logits + r * V;
        double mx = x[0];
        for (int64_t c = 1; c < V; c++) if (x[c] > mx) mx = x[c];
        double se = 0;
        for (int64_t c = 0; c < V; c++) se += exp((double)x[c] - mx);
        double lse = mx + log(se);
        total += lse - x[ops[r]];
        if (dlogits) {
            float *d = dlogits + r * V;
            for (int64_t c = 0; c < V; c++) d[c] = (float)(scale * exp((double)x[c] - lse));
            d[ops[r]] -= (float)scale;
        }
    }
    return scale * total;
}

double nf_vae_reparam_forward(const float *E, const float *noise, int64_t R, int64_t D, float *Z)
{
    double kl = 0;
    for (int64_t r = 0; r < R; r++) {
        const float *mu = E + r * 2 * D, *lv = mu + D;
        for (int64_t k = 0; k < D; k++) {
            double s2 = exp((double)lv[k]);
            Z[r * D + k] = (float)(mu[k] + (noise ? sqrt(s2) * noise[r * D + k] : 0.0));
            kl += 0.5 * ((double)mu[k] * mu[k] + s2 - 1.0 - lv[k]);
        }
    }
    return kl;
}

void nf_vae_reparam_backward(const float *E, const float *noise, const float *dZ, int64_t R, int64_t D,
                             double kl_scale, float *dE)
{
    for (int64_t r = 0; r < R; r++) {
        const float *mu = E + r * 2 * D, *lv = mu + D;
        float *dmu = dE + r * 2 * D, *dlv = dmu + D;
        for (int64_t k = 0; k < D; k++) {
            double s2 = exp((double)lv[k]);
            double dz = dZ[r * D + k];
            dmu[k] = (float)(dz + kl_scale * mu[k]);
            dlv[k] = (float)((noise ? dz * 0.5 * sqrt(s2) * noise[r * D + k] : 0.0) + kl_scale * 0.5 * (s2 - 1.0));
        }
    }
}

/* ---------------------------------------------------------------- forward / backward */
/* ReLU in blocks of 8: a fixed-length inner loop is vectorised (compare + mask) even at -O2;
 * the plain loop compiles to a branch that mispredicts on half of the random signs. */
static void relu_inplace(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) x[i + k] = x[i + k] > 0.0f ? x[i + k] : 0.0f;
    for (; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dX = dY·[Y > 0], in place on dY. */
static void relu_backward_inplace(const float *restrict Y, float *restrict dY, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) dY[i + k] = Y[i + k] > 0.0f ? dY[i + k] : 0.0f;
    for (; i < n; i++) dY[i] = Y[i] > 0.0f ? dY[i] : 0.0f;
}

/* Gather graphs idx[0..Bb) (NULL: graphs 0..Bb-1) into X0, S, Ab and ops. */
static void gather(nf_vae *v, const float *ops, const float *adj, const int64_t *idx, int64_t Bb)
{
    const int64_t N = v->cfg.nodes, in0 = v->in0, V = v->cfg.vocab;
    memset(v->X0, 0, (size_t)(Bb * N * in0) * sizeof(float));
    for (int64_t b = 0; b < Bb; b++) {
        int64_t g = idx ? idx[b] : b;
        const float *A = adj + g * N * N;
        float *S = v->S + b * N * N;
        memcpy(v->Ab + b * N * N, A, (size_t)(N * N) * sizeof(float));
        for (int64_t i = 0; i < N; i++) {
            int32_t o = (int32_t)ops[g * N + i];
            v->ops[b * N + i] = o;
            float *x = v->X0 + (b * N + i) * in0;
            x[o] = 1.0f;
            if (v->cfg.positions) x[V + i] = 1.0f;
            for (int64_t j = 0; j < N; j++) S[i * N + j] = (A[i * N + j] != 0.0f || A[j * N + i] != 0.0f) ? 1.0f : 0.0f;
        }
    }
}

/* Encoder on the gathered batch: fills every layer's M, A, H and E = [μ | log σ²]. */
static nf_status encode(nf_vae *v, int64_t Bb, nf_err *err)
{
    const int64_t N = v->cfg.nodes, Hd = v->cfg.hidden, R = Bb * N;
    const float *Hin = v->X0;
    for (int l = 0; l < v->cfg.layers; l++) {
        gin_layer *g = &v->gl[l];
        nf_vae_aggregate_forward(v->S, Hin, g->eps[0], Bb, N, g->in, g->M);
        nf_status st = nf_linear_forward(g->M, g->in, g->W1, g->b1, R, g->in, Hd, g->A, err);
        if (st) return st;
        relu_inplace(g->A, (size_t)(R * Hd));
        st = nf_linear_forward(g->A, Hd, g->W2, g->b2, R, Hd, Hd, g->H, err);
        if (st) return st;
        relu_inplace(g->H, (size_t)(R * Hd));
        Hin = g->H;
    }
    const int64_t Z2 = 2 * (int64_t)v->cfg.latent;
    nf_status st = nf_linear_forward(Hin, Hd, v->We, v->be, R, Hd, Z2, v->E, err);
    if (st || !v->cfg.skip) return st;
    /* skip connection: the head also reads the node's own input features */
    return nf_gemm(NF_NOTRANS, NF_NOTRANS, R, Z2, v->in0, 1.0f, v->X0, v->in0, v->We + Hd * Z2, Z2, 1.0f, v->E, Z2, err);
}

/* Loss of the gathered batch with noise v->noise (or none); gradients into v->g when want_grad. */
static nf_status forward_backward(nf_vae *v, int64_t Bb, int use_noise, int want_grad, double *loss,
                                  double parts[3], nf_err *err)
{
    const int64_t N = v->cfg.nodes, Hd = v->cfg.hidden, Zd = v->cfg.latent, V = v->cfg.vocab, R = Bb * N;
    nf_status st = encode(v, Bb, err);
    if (st) return st;
    const float *noise = use_noise ? v->noise : NULL;
    double kl = nf_vae_reparam_forward(v->E, noise, R, Zd, v->Z);
    st = nf_linear_forward(v->Z, Zd, v->Wo, v->bo, R, Zd, V, v->LOG, err);
    if (st) return st;
    const double s_op = 1.0 / (double)R;
    const double s_adj = N > 1 ? 1.0 / ((double)Bb * (double)N * (double)(N - 1)) : 0.0;
    const double s_kl = (double)v->cfg.beta / (double)R;
    double l_op = nf_vae_op_loss(v->LOG, v->ops, R, V, s_op, want_grad ? v->dLOG : NULL);
    if (want_grad) memset(v->g, 0, (size_t)v->np * sizeof(float));
    st = nf_gemm(NF_NOTRANS, NF_TRANS, R, Zd, Zd, 1.0f, v->Z, Zd, v->Wa, Zd, 0.0f, v->Q, Zd, err);   /* Q = Z·Waᵀ */
    if (st) return st;
    double l_adj = nf_vae_adj_loss(v->Z, v->Q, v->Ab, v->c[0], Bb, N, Zd, s_adj, want_grad ? v->dZ : NULL,
                                   want_grad ? v->dQ : NULL, want_grad ? v->gc : NULL);
    if (loss) *loss = l_op + l_adj + s_kl * kl;
    if (parts) { parts[0] = l_op; parts[1] = l_adj; parts[2] = kl / (double)R; }
    if (!want_grad) return NF_OK;

    /* op decoder: dZ += dLOG·Woᵀ */
    st = nf_linear_backward(v->Z, Zd, v->Wo, v->dLOG, R, Zd, V, v->gWo, v->gbo, v->dZ, Zd, 1, err);
    if (st) return st;
    /* adjacency decoder: dZ += dQ·Wa, dWa += dQᵀ·Z */
    st = nf_gemm(NF_NOTRANS, NF_NOTRANS, R, Zd, Zd, 1.0f, v->dQ, Zd, v->Wa, Zd, 1.0f, v->dZ, Zd, err);
    if (!st) st = nf_gemm(NF_TRANS, NF_NOTRANS, Zd, Zd, R, 1.0f, v->dQ, Zd, v->Z, Zd, 1.0f, v->gWa, Zd, err);
    if (st) return st;
    nf_vae_reparam_backward(v->E, noise, v->dZ, R, Zd, s_kl, v->dE);
    const float *Hlast = v->gl[v->cfg.layers - 1].H;
    st = nf_linear_backward(Hlast, Hd, v->We, v->dE, R, Hd, 2 * Zd, v->gWe, v->gbe, v->dH, Hd, 0, err);
    if (!st && v->cfg.skip)
        st = nf_gemm(NF_TRANS, NF_NOTRANS, v->in0, 2 * Zd, R, 1.0f, v->X0, v->in0, v->dE, 2 * Zd, 1.0f,
                     v->gWe + Hd * 2 * Zd, 2 * Zd, err);
    if (st) return st;
    for (int l = v->cfg.layers - 1; l >= 0; l--) {
        gin_layer *g = &v->gl[l];
        float *gW1 = v->g + (g->W1 - v->p), *gb1 = v->g + (g->b1 - v->p);
        float *gW2 = v->g + (g->W2 - v->p), *gb2 = v->g + (g->b2 - v->p);
        relu_backward_inplace(g->H, v->dH, (size_t)(R * Hd));
        st = nf_linear_backward(g->A, Hd, g->W2, v->dH, R, Hd, Hd, gW2, gb2, v->dA, Hd, 0, err);
        if (st) return st;
        relu_backward_inplace(g->A, v->dA, (size_t)(R * Hd));
        st = nf_linear_backward(g->M, g->in, g->W1, v->dA, R, g->in, Hd, gW1, gb1, v->dM, g->in, 0, err);
        if (st) return st;
        nf_vae_aggregate_backward(v->S, l ? v->gl[l - 1].H : v->X0, v->dM, g->eps[0], Bb, N, g->in,
                                  l ? v->dH : NULL, v->g + (g->eps - v->p));
    }
    return NF_OK;
}

static void adam_step(nf_vae *v)
{
    const nf_adam_opts o = {v->cfg.lr, 0.9f, 0.999f, 1e-8f, 0.0f, NF_ADAM_MOMENTS};
    v->t++;
    nf_adam_step(v->p, v->g, v->m, v->v, v->np, v->t, &o);
}

static nf_status check_rows(const int64_t *rows, int64_t n_rows, int64_t B, nf_err *err)
{
    if (!rows) return n_rows == B ? NF_OK : nf_seterr(err, NF_EINVAL, "vae: rows NULL but n_rows %lld != %lld graphs",
                                                     (long long)n_rows, (long long)B);
    for (int64_t k = 0; k < n_rows; k++)
        if (rows[k] < 0 || rows[k] >= B)
            return nf_seterr(err, NF_ERANGE, "vae: row %lld (entry %lld) out of range 0..%lld",
                             (long long)rows[k], (long long)k, (long long)B - 1);
    return NF_OK;
}

nf_status nf_vae_train_epoch(nf_vae *v, const float *ops, const float *adj, int64_t B,
                             const int64_t *rows, int64_t n_rows, nf_rng *rng, double *loss, nf_err *err)
{
    if (!rows) n_rows = B;
    if (n_rows < 1) return nf_seterr(err, NF_EINVAL, "vae: no graphs to train on");
    nf_status st = check_rows(rows, n_rows, B, err);
    if (st) return st;
    st = nf_vae_check_graphs(v, ops, adj, B, err);
    if (st) return st;
    int64_t *perm = malloc((size_t)n_rows * sizeof *perm);
    if (!perm) return nf_seterr(err, NF_ENOMEM, "vae: out of memory (%lld rows)", (long long)n_rows);
    for (int64_t k = 0; k < n_rows; k++) perm[k] = rows ? rows[k] : k;
    nf_rng_shuffle(rng, perm, n_rows);
    const int64_t N = v->cfg.nodes, Zd = v->cfg.latent;
    double sum = 0;
    int64_t steps = 0;
    for (int64_t s = 0; s < n_rows; s += v->cfg.batch) {
        int64_t Bb = n_rows - s < v->cfg.batch ? n_rows - s : v->cfg.batch;
        gather(v, ops, adj, perm + s, Bb);
        for (int64_t k = 0; k < Bb * N * Zd; k++) v->noise[k] = (float)nf_rng_normal(rng);
        double l;
        st = forward_backward(v, Bb, 1, 1, &l, NULL, err);
        if (st) break;
        if (!isfinite(l)) {
            st = nf_seterr(err, NF_ERANGE, "vae: training diverged at step %lld (loss %g); lower lr",
                           (long long)v->t + 1, l);
            break;
        }
        adam_step(v);
        sum += l;
        steps++;
    }
    free(perm);
    if (st) return st;
    if (loss) *loss = sum / (double)steps;
    return NF_OK;
}

nf_status nf_vae_loss(nf_vae *v, const float *ops, const float *adj, int64_t B, const float *noise,
                      double *loss, double parts[3], nf_err *err)
{
    if (B < 1 || B > v->cfg.batch)
        return nf_seterr(err, NF_EINVAL, "vae: loss of %lld graphs (1..%d per call)", (long long)B, v->cfg.batch);
    nf_status st = nf_vae_check_graphs(v, ops, adj, B, err);
    if (st) return st;
    gather(v, ops, adj, NULL, B);
    const int64_t n = B * v->cfg.nodes * v->cfg.latent;
    if (noise) memcpy(v->noise, noise, (size_t)n * sizeof(float));
    return forward_backward(v, B, noise != NULL, 1, loss, parts, err);
}

nf_status nf_vae_embed(nf_vae *v, const float *ops, const float *adj, int64_t B, float *out, nf_err *err)
{
    nf_status st = nf_vae_check_graphs(v, ops, adj, B, err);
    if (st) return st;
    const int64_t N = v->cfg.nodes, Zd = v->cfg.latent;
    for (int64_t s = 0; s < B; s += v->cfg.batch) {
        int64_t Bb = B - s < v->cfg.batch ? B - s : v->cfg.batch;
        gather(v, ops + s * N, adj + s * N * N, NULL, Bb);
        st = encode(v, Bb, err);
        if (st) return st;
        for (int64_t b = 0; b < Bb; b++) {
            float *o = out + (s + b) * Zd;
            for (int64_t k = 0; k < Zd; k++) {
                double acc = 0;
                for (int64_t i = 0; i < N; i++) acc += v->E[(b * N + i) * 2 * Zd + k];
                o[k] = (float)(acc / (double)N);
            }
        }
    }
    return NF_OK;
}

nf_status nf_vae_reconstruct_accuracy(nf_vae *v, const float *ops, const float *adj, int64_t B,
                                      const int64_t *rows, int64_t n_rows, nf_vae_accuracy *acc, nf_err *err)
{
    if (!rows) n_rows = B;
    if (n_rows < 1) return nf_seterr(err, NF_EINVAL, "vae: no graphs to reconstruct");
    nf_status st = check_rows(rows, n_rows, B, err);
    if (st) return st;
    st = nf_vae_check_graphs(v, ops, adj, B, err);
    if (st) return st;
    const int64_t N = v->cfg.nodes, Zd = v->cfg.latent, V = v->cfg.vocab;
    int64_t ok_ops = 0, ok_adj = 0, ok_graph = 0;
    int64_t *idx = malloc((size_t)v->cfg.batch * sizeof *idx);
    if (!idx) return nf_seterr(err, NF_ENOMEM, "vae: out of memory");
    for (int64_t s = 0; s < n_rows && !st; s += v->cfg.batch) {
        int64_t Bb = n_rows - s < v->cfg.batch ? n_rows - s : v->cfg.batch;
        for (int64_t b = 0; b < Bb; b++) idx[b] = rows ? rows[s + b] : s + b;
        gather(v, ops, adj, idx, Bb);
        st = encode(v, Bb, err);
        if (!st) {
            nf_vae_reparam_forward(v->E, NULL, Bb * N, Zd, v->Z);   /* Z = μ */
            st = nf_linear_forward(v->Z, Zd, v->Wo, v->bo, Bb * N, Zd, V, v->LOG, err);
        }
        if (!st) st = nf_gemm(NF_NOTRANS, NF_TRANS, Bb * N, Zd, Zd, 1.0f, v->Z, Zd, v->Wa, Zd, 0.0f, v->Q, Zd, err);
        for (int64_t b = 0; b < Bb && !st; b++) {
            int all = 1;
            for (int64_t i = 0; i < N; i++) {
                const float *lg = v->LOG + (b * N + i) * V;
                int64_t best = 0;
                for (int64_t c = 1; c < V; c++) if (lg[c] > lg[best]) best = c;
                if (best == v->ops[b * N + i]) ok_ops++; else all = 0;
                for (int64_t j = 0; j < N; j++) {
                    if (j == i) continue;
                    const float *zi = v->Z + (b * N + i) * Zd, *qj = v->Q + (b * N + j) * Zd;
                    double l = v->c[0];
                    for (int64_t k = 0; k < Zd; k++) l += (double)zi[k] * qj[k];
                    int pred = l > 0, truth = v->Ab[b * N * N + i * N + j] != 0.0f;
                    if (pred == truth) ok_adj++; else all = 0;
                }
            }
            ok_graph += all;
        }
    }
    free(idx);
    if (st) return st;
    acc->n = n_rows;
    acc->ops = (double)ok_ops / (double)(n_rows * N);
    acc->adj = N > 1 ? (double)ok_adj / ((double)n_rows * (double)(N * (N - 1))) : 1.0;
    acc->graph = (double)ok_graph / (double)n_rows;
    return NF_OK;
}

/* ---------------------------------------------------------------- gradient check */
static double gc_err(double a, double n)
{
    double d = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    if (d < 1e-2) d = 1e-2;
    return fabs(a - n) / d;
}

static void random_dags(nf_rng *rng, int64_t B, int64_t N, int64_t V, float *ops, float *adj)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < N; i++) {
            ops[b * N + i] = (float)nf_rng_below(rng, (uint64_t)V);
            for (int64_t j = 0; j < N; j++)
                adj[(b * N + i) * N + j] = (j > i && nf_rng_uniform(rng) < 0.4) ? 1.0f : 0.0f;
        }
}

nf_status nf_vae_gradcheck(const nf_vae_gradcheck_opts *o, nf_vae_gradcheck_result *r, nf_err *err)
{
    memset(r, 0, sizeof *r);
    const int64_t B = o->B, N = o->nodes, V = o->vocab, D = o->latent;
    const double h = o->h > 0 ? o->h : 1e-3;
    if (B < 1 || B > 64 || N < 2 || N > 16 || V < 2 || D < 1 || D > 64)
        return nf_seterr(err, NF_EINVAL, "vae gradcheck: B 1..64, nodes 2..16, vocab >= 2, latent 1..64");
    nf_vae_config cfg = nf_vae_config_default(o->nodes, o->vocab);
    cfg.hidden = o->hidden;
    cfg.layers = o->layers;
    cfg.latent = o->latent;
    cfg.batch = o->B;
    cfg.beta = 0.5f;       /* a large KL weight so the KL path is checked, not drowned */
    nf_rng rng;
    nf_rng_seed(&rng, o->seed);
    nf_vae *v = NULL;
    nf_status st = nf_vae_new(&cfg, &rng, &v, err);
    if (st) return st;
    const int64_t R = B * N, F = 5;
    /* one allocation for every buffer of the check */
    size_t nbuf = (size_t)(R + R * N + R * F * 4 + B * N * N + R * D * 3 + R * V * 2 + R * 2 * D * 2 + R * D);
    float *buf = calloc(nbuf, sizeof(float));
    int32_t *iops = calloc((size_t)R, sizeof(int32_t));
    if (!buf || !iops) {
        free(buf); free(iops); nf_vae_free(v);
        return nf_seterr(err, NF_ENOMEM, "vae gradcheck: out of memory");
    }
    float *ops = buf, *adj = ops + R, *H = adj + R * N, *Wt = H + R * F, *out = Wt + R * F, *dH = out + R * F,
          *S = dH + R * F, *Z = S + B * N * N, *Wz = Z + R * D, *dZ = Wz + R * D, *LG = dZ + R * D,
          *dLG = LG + R * V, *E = dLG + R * V, *dE = E + R * 2 * D, *noise = dE + R * 2 * D;
    random_dags(&rng, B, N, V, ops, adj);
    for (int64_t k = 0; k < R; k++) iops[k] = (int32_t)ops[k];
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < N; j++) {
                float a = adj[(b * N + i) * N + j], at = adj[(b * N + j) * N + i];
                S[(b * N + i) * N + j] = (a != 0.0f || at != 0.0f) ? 1.0f : 0.0f;
            }
    for (int64_t k = 0; k < R * F; k++) { H[k] = (float)nf_rng_normal(&rng); Wt[k] = (float)nf_rng_normal(&rng); }
    for (int64_t k = 0; k < R * D; k++) { Z[k] = (float)(0.5 * nf_rng_normal(&rng)); Wz[k] = (float)nf_rng_normal(&rng); }
    for (int64_t k = 0; k < R * V; k++) { LG[k] = (float)nf_rng_normal(&rng); }
    for (int64_t k = 0; k < R * 2 * D; k++) E[k] = (float)(0.5 * nf_rng_normal(&rng));
    for (int64_t k = 0; k < R * D; k++) noise[k] = (float)nf_rng_normal(&rng);
    int64_t checked = 0;

    /* aggregate: L = Σ Wt ⊙ out(H, eps) — bilinear in (H, eps), so exact up to rounding */
    {
        float eps = 0.3f, deps = 0.0f;
        nf_vae_aggregate_backward(S, H, Wt, eps, B, N, F, dH, &deps);
        for (int64_t k = 0; k <= R * F; k++) {
            float *x = k < R * F ? &H[k] : &eps, x0 = *x;
            double lp, lm;
            *x = x0 + (float)h; nf_vae_aggregate_forward(S, H, eps, B, N, F, out);
            lp = nf_dot(Wt, out, (size_t)(R * F));
            *x = x0 - (float)h; nf_vae_aggregate_forward(S, H, eps, B, N, F, out);
            lm = nf_dot(Wt, out, (size_t)(R * F));
            *x = x0;
            double e = gc_err(k < R * F ? dH[k] : deps, (lp - lm) / (2 * h));
            if (e > r->aggregate) r->aggregate = e;
            checked++;
        }
    }
    /* adjacency decoder, w.r.t. Z, Q (= Z·Waᵀ, an independent input here) and the bias c */
    {
        float c = -0.2f, dc = 0.0f;
        float *Q = Wz;            /* reuse: Wz is refilled below */
        for (int64_t k = 0; k < R * D; k++) Q[k] = (float)(0.5 * nf_rng_normal(&rng));
        float *dQ = E;            /* reuse: E is refilled below */
        nf_vae_adj_loss(Z, Q, adj, c, B, N, D, 0.1, dZ, dQ, &dc);
        for (int64_t k = 0; k <= 2 * R * D; k++) {
            float *x = k < R * D ? &Z[k] : k < 2 * R * D ? &Q[k - R * D] : &c, x0 = *x;
            *x = x0 + (float)h; double lp = nf_vae_adj_loss(Z, Q, adj, c, B, N, D, 0.1, NULL, NULL, NULL);
            *x = x0 - (float)h; double lm = nf_vae_adj_loss(Z, Q, adj, c, B, N, D, 0.1, NULL, NULL, NULL);
            *x = x0;
            double a = k < R * D ? dZ[k] : k < 2 * R * D ? dQ[k - R * D] : dc;
            double e = gc_err(a, (lp - lm) / (2 * h));
            if (e > r->adj_decoder) r->adj_decoder = e;
            checked++;
        }
        for (int64_t k = 0; k < R * D; k++) Wz[k] = (float)nf_rng_normal(&rng);
        for (int64_t k = 0; k < R * 2 * D; k++) E[k] = (float)(0.5 * nf_rng_normal(&rng));
    }
    /* op decoder */
    nf_vae_op_loss(LG, iops, R, V, 0.5, dLG);
    for (int64_t k = 0; k < R * V; k++) {
        float x = LG[k];
        LG[k] = x + (float)h; double lp = nf_vae_op_loss(LG, iops, R, V, 0.5, NULL);
        LG[k] = x - (float)h; double lm = nf_vae_op_loss(LG, iops, R, V, 0.5, NULL);
        LG[k] = x;
        double e = gc_err(dLG[k], (lp - lm) / (2 * h));
        if (e > r->op_decoder) r->op_decoder = e;
        checked++;
    }
    /* reparameterisation + KL: L = Σ Wz ⊙ Z(E) + 0.3·KL(E) */
    nf_vae_reparam_backward(E, noise, Wz, R, D, 0.3, dE);
    for (int64_t k = 0; k < R * 2 * D; k++) {
        float x = E[k];
        E[k] = x + (float)h;
        double lp = 0.3 * nf_vae_reparam_forward(E, noise, R, D, Z);
        lp += nf_dot(Wz, Z, (size_t)(R * D));
        E[k] = x - (float)h;
        double lm = 0.3 * nf_vae_reparam_forward(E, noise, R, D, Z);
        lm += nf_dot(Wz, Z, (size_t)(R * D));
        E[k] = x;
        double e = gc_err(dE[k], (lp - lm) / (2 * h));
        if (e > r->reparam_kl) r->reparam_kl = e;
        checked++;
    }
    /* the whole loss w.r.t. every parameter, with fixed noise */
    double l0;
    st = nf_vae_loss(v, ops, adj, B, noise, &l0, NULL, err);
    if (!st) {
        const int64_t np = nf_vae_nparams(v);
        float *g = malloc((size_t)np * sizeof(float));
        if (!g) st = nf_seterr(err, NF_ENOMEM, "vae gradcheck: out of memory");
        else {
            memcpy(g, nf_vae_grads(v), (size_t)np * sizeof(float));
            if (o->sabotage) nf_scale(g, 1.05f, (size_t)np);
            float *p = nf_vae_params(v);
            for (int64_t k = 0; k < np && !st; k++) {
                float x = p[k];
                double lp, lm;
                p[k] = x + (float)h; st = nf_vae_loss(v, ops, adj, B, noise, &lp, NULL, err);
                p[k] = x - (float)h; if (!st) st = nf_vae_loss(v, ops, adj, B, noise, &lm, NULL, err);
                p[k] = x;
                if (st) break;
                double e = gc_err(g[k], (lp - lm) / (2 * h));
                if (e > r->model) r->model = e;
                checked++;
            }
            /* directional derivatives: g·d against (L(p + h d) − L(p − h d)) / 2h */
            float *p0 = malloc((size_t)np * 2 * sizeof(float));
            if (!p0 && !st) st = nf_seterr(err, NF_ENOMEM, "vae gradcheck: out of memory");
            for (int t = 0; t < 8 && !st; t++) {
                float *d = p0 + np;
                memcpy(p0, p, (size_t)np * sizeof(float));
                double nn = 0, gd = 0, lp = 0, lm = 0;
                for (int64_t k = 0; k < np; k++) { d[k] = (float)nf_rng_normal(&rng); nn += (double)d[k] * d[k]; }
                nn = sqrt(nn);
                for (int64_t k = 0; k < np; k++) { d[k] = (float)(d[k] / nn); gd += (double)g[k] * d[k]; }
                for (int64_t k = 0; k < np; k++) p[k] = p0[k] + (float)h * d[k];
                st = nf_vae_loss(v, ops, adj, B, noise, &lp, NULL, err);
                for (int64_t k = 0; k < np; k++) p[k] = p0[k] - (float)h * d[k];
                if (!st) st = nf_vae_loss(v, ops, adj, B, noise, &lm, NULL, err);
                memcpy(p, p0, (size_t)np * sizeof(float));
                double num = (lp - lm) / (2 * h), den = fmax(fmax(fabs(gd), fabs(num)), 1e-3);
                double e = fabs(gd - num) / den;
                if (!st && e > r->model_dir) r->model_dir = e;
                checked++;
            }
            free(p0);
            free(g);
        }
    }
    r->checked = checked;
    free(buf);
    free(iops);
    nf_vae_free(v);
    return st;
}
