/* nf_train.c — losses, the training loop, batched inference and the whole-model gradient check:
 * the layer above nf_model.c (which never calls in here); the optimiser is nf_optim.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nf_model.h"
#include "nf_util.h"

/* ---------------------------------------------------------------- losses */
size_t nf_hinge_scratch_bytes(int64_t n)
{
    int64_t pairs = n * (n - 1) / 2;
    if (pairs < 1) pairs = 1;
    /* pair list (2 int32 each), sampling scratch and draws (int64 each) */
    return (size_t)pairs * (2 * sizeof(int32_t) + 2 * sizeof(int64_t));
}

nf_status nf_loss_hinge(const float *s, const float *y, int64_t n, float margin, int64_t max_pairs, nf_rng *rng,
                        void *scratch, double *loss, float *ds, nf_err *err)
{
    int64_t cap = n * (n - 1) / 2;
    if (cap < 1) cap = 1;
    int32_t *pr = scratch;
    int64_t *samp = (int64_t *)(void *)(pr + 2 * cap), *draw = samp + cap;
    int64_t np = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            if (y[i] != y[j]) { pr[2 * np] = (int32_t)i; pr[2 * np + 1] = (int32_t)j; np++; }
    memset(ds, 0, (size_t)n * sizeof(float));
    *loss = 0.0;
    if (np == 0) return NF_OK;
    int64_t use = np;
    const int64_t *pick = NULL;
    if (max_pairs > 0 && np > max_pairs) {
        nf_status st = nf_rng_sample(rng, np, max_pairs, draw, samp, err);
        if (st) return st;
        use = max_pairs;
        pick = draw;
    }
    double sum = 0.0;
    const float inv = 1.0f / (float)use;
    for (int64_t k = 0; k < use; k++) {
        int64_t q = pick ? pick[k] : k;
        int32_t i = pr[2 * q], j = pr[2 * q + 1];
        float sg = y[i] > y[j] ? 1.0f : -1.0f;
        float h = margin - sg * (s[i] - s[j]);
        if (h > 0.0f) {
            sum += h;
            ds[i] -= sg * inv;
            ds[j] += sg * inv;
        }
    }
    *loss = sum / (double)use;
    return NF_OK;
}

void nf_loss_mse(const float *s, const float *y, int64_t n, double *loss, float *ds)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float d = s[i] - y[i];
        sum += (double)d * d;
        ds[i] = 2.0f * d / (float)n;
    }
    *loss = n ? sum / (double)n : 0.0;
}

/* ---------------------------------------------------------------- training loop */
void nf_train_opts_default(nf_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 150;
    o->batch = 128;
    o->lr = 1e-3f;
    o->lr_min = 1e-6f;
    o->weight_decay = 1e-5f;
    o->clip = 0.0f;
    o->loss = NF_LOSS_HINGE;
    o->margin = 0.1f;
    o->seed = 1;
}

static nf_status check_dataset(const nf_model *m, const nf_dataset *d, nf_err *err)
{
    const nf_model_cfg *c = nf_model_config(m);
    if (d->n < 1) return nf_seterr(err, NF_EINVAL, "train: no examples");
    if (c->z_dim > 0 && !d->z) return nf_seterr(err, NF_EINVAL, "train: the model needs z (z_dim = %d)", c->z_dim);
    for (int64_t k = 0; k < d->n; k++) {
        if (d->rows[k] < 0 || d->rows[k] >= d->n_graphs)
            return nf_seterr(err, NF_ERANGE, "train: example %lld refers to graph row %lld (1..%lld)",
                             (long long)k + 1, (long long)d->rows[k] + 1, (long long)d->n_graphs);
        if (c->device_at != NF_DEV_NONE && (d->dev[k] < 0 || d->dev[k] >= nf_model_ndev(m)))
            return nf_seterr(err, NF_ERANGE, "train: example %lld has device index %d (1..%d)",
                             (long long)k + 1, (int)d->dev[k] + 1, nf_model_ndev(m));
        if (!isfinite(d->y[k]))
            return nf_seterr(err, NF_EINVAL, "train: target of example %lld is not finite", (long long)k + 1);
    }
    return NF_OK;
}

nf_status nf_model_train(nf_model *m, const nf_dataset *d, const nf_train_opts *o, int *epochs_run, nf_err *err)
{
    const nf_model_cfg *c = nf_model_config(m);
    const int64_t N = c->nodes, Z = c->z_dim;
    nf_status st;
    if (epochs_run) *epochs_run = 0;
    if (o->epochs < 1 || o->batch < 1)
        return nf_seterr(err, NF_EINVAL, "train: epochs and batch must be >= 1 (got %d, %d)", o->epochs, o->batch);
    if (!(o->lr > 0.0f) || !(o->lr_min >= 0.0f) || !(o->weight_decay >= 0.0f))
        return nf_seterr(err, NF_EINVAL, "train: lr must be > 0, lr_min and weight_decay >= 0");
    if ((st = check_dataset(m, d, err))) return st;
    const int64_t Bmax = o->batch < d->n ? o->batch : d->n;
    if ((st = nf_model_reserve(m, Bmax, err))) return st;

    /* every buffer of the loop, allocated once */
    size_t hs = nf_hinge_scratch_bytes(Bmax);
    /* frozen slices: their values, kept aside and written back after every step */
    int64_t nfrozen = 0;
    if (o->frozen)
        for (int si = 0; si < nf_model_nslices(m); si++)
            if (o->frozen[si]) nfrozen += nf_model_slice(m, si)->n;
    size_t bytes = (size_t)d->n * sizeof(int64_t) + (size_t)Bmax * (N * sizeof(int32_t) + sizeof(int32_t))
                   + (size_t)(Bmax * (N * N + Z + 3) + nfrozen) * sizeof(float) + hs + 64;
    char *mem = malloc(bytes);
    if (!mem) return nf_seterr(err, NF_ENOMEM, "train: out of memory for the batch buffers");
    int64_t *perm = (int64_t *)(void *)mem;
    int32_t *ops = (int32_t *)(perm + d->n);
    int32_t *dev = ops + Bmax * N;
    float *adj = (float *)(dev + Bmax);
    float *z = adj + Bmax * N * N;
    float *y = z + Bmax * Z, *s = y + Bmax, *ds = s + Bmax;
    float *keep = ds + Bmax;
    void *hscr = (void *)(((uintptr_t)(keep + nfrozen) + 15) & ~(uintptr_t)15);
    if (nfrozen) {
        float *k = keep;
        for (int si = 0; si < nf_model_nslices(m); si++) {
            const nf_pslice *sl = nf_model_slice(m, si);
            if (!o->frozen[si]) continue;
            memcpy(k, nf_model_params(m) + sl->off, (size_t)sl->n * sizeof(float));
            k += sl->n;
        }
    }

    nf_rng rng;
    nf_rng_seed(&rng, o->seed);
    nf_model_reset_optimizer(m);
    float *P = nf_model_params(m), *G = nf_model_grads(m);
    int64_t np = nf_model_nparams(m), steps = 0;
    for (int e = 0; e < o->epochs; e++) {
        double t0 = nf_now(), lsum = 0.0;
        int64_t lcount = 0;
        float lr = (float)nf_cosine_lr(o->lr, o->lr_min, e, o->epochs);
        nf_rng_permutation(&rng, perm, d->n);
        for (int64_t b0 = 0; b0 < d->n; b0 += Bmax) {
            int64_t B = d->n - b0 < Bmax ? d->n - b0 : Bmax;
            for (int64_t k = 0; k < B; k++) {
                int64_t ex = perm[b0 + k], r = d->rows[ex];
                memcpy(ops + k * N, d->ops + r * N, (size_t)N * sizeof(int32_t));
                memcpy(adj + k * N * N, d->adj + r * N * N, (size_t)(N * N) * sizeof(float));
                if (Z) memcpy(z + k * Z, d->z + r * Z, (size_t)Z * sizeof(float));
                dev[k] = d->dev ? d->dev[ex] : 0;
                y[k] = d->y[ex];
            }
            if ((st = nf_model_forward(m, B, ops, adj, Z ? z : NULL, dev, 1, &rng, s, err))) goto done;
            double loss;
            if (o->loss == NF_LOSS_MSE) nf_loss_mse(s, y, B, &loss, ds);
            else if ((st = nf_loss_hinge(s, y, B, o->margin, 4 * B, &rng, hscr, &loss, ds, err))) goto done;
            if (!isfinite(loss)) {
                st = nf_seterr(err, NF_ESTATE, "train: loss is not finite at epoch %d (lower the learning rate?)", e + 1);
                goto done;
            }
            nf_model_zero_grad(m);
            if ((st = nf_model_backward(m, ds, err))) goto done;
            if (nfrozen)   /* frozen slices take no part in the gradient norm */
                for (int si = 0; si < nf_model_nslices(m); si++)
                    if (o->frozen[si]) {
                        const nf_pslice *sl = nf_model_slice(m, si);
                        memset(G + sl->off, 0, (size_t)sl->n * sizeof(float));
                    }
            if (o->clip > 0.0f) nf_clip_grad_norm(G, np, o->clip);
            steps++;
            nf_model_adam_step(m, lr, o->weight_decay);
            if (nfrozen) {
                const float *k = keep;
                for (int si = 0; si < nf_model_nslices(m); si++) {
                    const nf_pslice *sl = nf_model_slice(m, si);
                    if (!o->frozen[si]) continue;
                    memcpy(P + sl->off, k, (size_t)sl->n * sizeof(float));
                    k += sl->n;
                }
            }
            lsum += loss * (double)B;
            lcount += B;
        }
        if (epochs_run) *epochs_run = e + 1;
        if (o->on_epoch) {
            nf_epoch_info info = {e + 1, o->epochs, lsum / (double)lcount, nf_now() - t0, lr, steps};
            if (o->on_epoch(o->ud, &info)) break;
        }
    }
    st = NF_OK;
done:
    free(mem);
    (void)P;
    return st;
}

/* ---------------------------------------------------------------- inference */
int64_t nf_model_embed_dim(const nf_model *m, nf_embed_layer which)
{
    const nf_model_cfg *c = nf_model_config(m);
    if (which == NF_EMBED_READOUT) return nf_model_readout_dim(c);
    if (c->n_head > 0) return c->head[c->n_head - 1];
    return nf_model_readout_dim(c) + (c->z_dim > 0 ? c->z_out : 0) + (c->device_at == NF_DEV_HEAD ? c->dev_out : 0);
}

/* Eval-mode forward over n graphs in chunks of 128 (activations stay in L2/L3; 512 was 15 %
 * slower): the scores into out (which < 0), or the activations `which` (rows of d floats). */
static nf_status run_batched(nf_model *m, const int32_t *ops, const float *adj, const float *z, int64_t n,
                             int32_t dev, const int32_t *devs, int which, float *out, const char *fname, nf_err *err)
{
    const nf_model_cfg *c = nf_model_config(m);
    const int64_t N = c->nodes, Z = c->z_dim;
    nf_status st;
    if (n < 0) return nf_seterr(err, NF_EINVAL, "%s: negative count", fname);
    if (n == 0) return NF_OK;
    if (Z > 0 && !z) return nf_seterr(err, NF_EINVAL, "%s: the model needs z (z_dim = %d)", fname, c->z_dim);
    if (which >= 0 && which != NF_EMBED_HEAD && which != NF_EMBED_READOUT)
        return nf_seterr(err, NF_EINVAL, "%s: unknown layer %d", fname, which);
    int64_t chunk = 128;
    if (chunk > n) chunk = n;
    if ((st = nf_model_reserve(m, chunk, err))) return st;
    /* one buffer per call: the device of every row of a chunk, and the chunk's scores when embedding */
    int32_t *dv = malloc((size_t)chunk * (sizeof(int32_t) + (which >= 0 ? sizeof(float) : 0)));
    if (!dv) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", fname);
    float *sc = which >= 0 ? (float *)(void *)(dv + chunk) : NULL;
    const int64_t d = which >= 0 ? nf_model_embed_dim(m, (nf_embed_layer)which) : 1;
    for (int64_t k = 0; k < chunk; k++) dv[k] = dev;
    for (int64_t b0 = 0; b0 < n; b0 += chunk) {
        int64_t B = n - b0 < chunk ? n - b0 : chunk;
        if ((st = nf_model_forward(m, B, ops + b0 * N, adj + b0 * N * N, Z ? z + b0 * Z : NULL,
                                   devs ? devs + b0 : dv, 0, NULL, sc ? sc : out + b0, err))) break;
        if (sc) {
            int64_t ld;
            const float *f = nf_model_features(m, (nf_embed_layer)which, &ld);
            for (int64_t b = 0; b < B; b++) memcpy(out + (b0 + b) * d, f + b * ld, (size_t)d * sizeof(float));
        }
    }
    free(dv);
    return st;
}

nf_status nf_model_predict(nf_model *m, const int32_t *ops, const float *adj, const float *z, int64_t n,
                           int32_t dev, const int32_t *devs, float *out, nf_err *err)
{
    return run_batched(m, ops, adj, z, n, dev, devs, -1, out, "predict", err);
}

nf_status nf_model_embed(nf_model *m, const int32_t *ops, const float *adj, const float *z, int64_t n,
                         int32_t dev, const int32_t *devs, nf_embed_layer which, float *out, nf_err *err)
{
    return run_batched(m, ops, adj, z, n, dev, devs, (int)which, out, "embed", err);
}

/* ---------------------------------------------------------------- whole-model gradient check */
typedef struct {
    nf_model *m;
    const nf_model_gradcheck_opts *o;
    int64_t B;
    int32_t *ops, *dev;
    float *adj, *z, *y, *w, *s, *ds;
    void *hscr;
    nf_rng rng;
} mgc;

static nf_status mgc_loss(mgc *g, double *L, int backward, nf_err *err)
{
    nf_rng_seed(&g->rng, g->o->seed + 1234);   /* the same dropout masks and pairs every time */
    nf_status st = nf_model_forward(g->m, g->B, g->ops, g->adj, g->z, g->dev, 1, &g->rng, g->s, err);
    if (st) return st;
    if (g->o->loss == 1) {
        if ((st = nf_loss_hinge(g->s, g->y, g->B, 0.1f, 4 * g->B, &g->rng, g->hscr, L, g->ds, err))) return st;
    } else if (g->o->loss == 2) {
        nf_loss_mse(g->s, g->y, g->B, L, g->ds);
    } else {
        double t = 0.0;
        for (int64_t b = 0; b < g->B; b++) { t += (double)g->w[b] * g->s[b]; g->ds[b] = g->w[b]; }
        *L = t;
    }
    if (backward) {
        nf_model_zero_grad(g->m);
        st = nf_model_backward(g->m, g->ds, err);
    }
    return st;
}

nf_status nf_model_gradcheck(nf_model *m, const nf_model_gradcheck_opts *o, nf_gradcheck_result *res, nf_err *err)
{
    const nf_model_cfg *c = nf_model_config(m);
    const int64_t B = o->B > 0 ? o->B : 4, N = c->nodes, Z = c->z_dim, np = nf_model_nparams(m);
    const int per = o->per_slice > 0 ? o->per_slice : 8;
    const double eps = o->eps > 0 ? o->eps : 1e-3;
    memset(res, 0, sizeof *res);
    mgc g;
    memset(&g, 0, sizeof g);
    g.m = m;
    g.o = o;
    g.B = B;
    size_t hs = nf_hinge_scratch_bytes(B);
    size_t bytes = (size_t)B * N * sizeof(int32_t) + (size_t)B * sizeof(int32_t)
                   + (size_t)(B * N * N + B * Z + 4 * B + np) * sizeof(float) + hs + 64;
    char *mem = calloc(1, bytes);
    if (!mem) return nf_seterr(err, NF_ENOMEM, "gradcheck: out of memory");
    g.ops = (int32_t *)(void *)mem;
    g.dev = g.ops + B * N;
    g.adj = (float *)(g.dev + B);
    g.z = g.adj + B * N * N;
    g.y = g.z + B * Z;
    g.w = g.y + B;
    g.s = g.w + B;
    g.ds = g.s + B;
    float *an = g.ds + B;
    g.hscr = (void *)(((uintptr_t)(an + np) + 15) & ~(uintptr_t)15);
    nf_rng r;
    nf_rng_seed(&r, o->seed);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t i = 0; i < N; i++) {
            g.ops[b * N + i] = (int32_t)nf_rng_below(&r, (uint64_t)c->n_ops);
            for (int64_t j = i + 1; j < N; j++) g.adj[(b * N + i) * N + j] = nf_rng_uniform(&r) < 0.4 ? 1.0f : 0.0f;
        }
        g.dev[b] = nf_model_ndev(m) > 0 ? (int32_t)nf_rng_below(&r, (uint64_t)nf_model_ndev(m)) : 0;
        g.y[b] = (float)nf_rng_uniform(&r);
        g.w[b] = (float)nf_rng_normal(&r);
        for (int64_t k = 0; k < Z; k++) g.z[b * Z + k] = (float)nf_rng_normal(&r);
    }
    if (!Z) g.z = NULL;
    /* jitter the parameters: zero-initialised biases would put ReLUs exactly at their kink */
    for (int64_t k = 0; k < np; k++) nf_model_params(m)[k] += (float)(0.05 * nf_rng_normal(&r));
    double L, num2 = 0, den2 = 0, dif2 = 0;
    nf_status st = mgc_loss(&g, &L, 1, err);
    if (st) goto done;
    memcpy(an, nf_model_grads(m), (size_t)np * sizeof(float));
    float *P = nf_model_params(m);
    for (int si = 0; si < nf_model_nslices(m); si++) {
        const nf_pslice *sl = nf_model_slice(m, si);
        int64_t step = sl->n > per ? sl->n / per : 1, nbad = 0, nchk = 0;
        for (int64_t q = 0; q < sl->n; q += step) {
            int64_t k = sl->off + q;
            /* central differences at eps, eps/2, eps/4, eps/8: the best match counts. With
             * thousands of ReLUs some step crosses a kink; a correct gradient still matches
             * one of the steps, a wrong one matches none. */
            double a = an[k], nd = 0.0, best = INFINITY;
            if (o->breakit) a = a * 1.5 + 1e-2;
            for (int h = 0; h < 4; h++) {
                float keep = P[k];
                double Lp, Lm, e2 = eps / (double)(1 << h);
                P[k] = (float)(keep + e2);
                double hp = (double)P[k] - keep;
                if ((st = mgc_loss(&g, &Lp, 0, err))) goto done;
                P[k] = (float)(keep - e2);
                double hm = keep - (double)P[k];
                if ((st = mgc_loss(&g, &Lm, 0, err))) goto done;
                P[k] = keep;
                double est = (Lp - Lm) / (hp + hm);
                if (fabs(est - a) < best) { best = fabs(est - a); nd = est; }
            }
            double dd = fabs(a - nd), mm = fmax(fmax(fabs(a), fabs(nd)), 1e-2);
            if (dd / mm > res->max_rel) res->max_rel = dd / mm;
            nbad += dd / mm > 0.05;
            nchk++;
            num2 += nd * nd;
            den2 += a * a;
            dif2 += dd * dd;
            res->checked++;
        }
        double fb = nchk ? (double)nbad / (double)nchk : 0.0;
        if (fb > res->worst_bad) {
            res->worst_bad = fb;
            snprintf(res->worst, sizeof res->worst, "%s", sl->name);
        }
    }
    res->rel = sqrt(dif2) / (sqrt(num2) + sqrt(den2) + 1e-30);
done:
    free(mem);
    return st;
}
