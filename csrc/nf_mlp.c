/* nf_mlp.c — the MAML-trained MLP of the HELP baseline: forward, backward, Pearlmutter's R-operator for exact
 * Hessian-vector products, the inner loop, first- and second-order outer gradients, meta-training episodes.
 * See nf_mlp.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nf_mlp.h"
#include "nf_nn.h"
#include "nf_optim.h"

struct nf_mlp {
    nf_mlp_cfg c;
    int64_t P;                        /* parameters */
    int64_t offW[NF_MLP_MAXL], offb[NF_MLP_MAXL];
    int64_t R;                        /* rows per batch */
    int T;                            /* inner steps */
    int64_t maxw;
    int64_t adam_t;
    size_t nfloats;
    float *buf;                       /* the one allocation: everything below points into it */
    float *theta, *alpha;             /* contiguous: θ then α (2P) — one Adam step over both */
    float *grad;                      /* 2P: ∂/∂θ then ∂/∂α */
    float *am, *av;                   /* 2P each: Adam moments */
    float *mask;                      /* P */
    /* workspace */
    float *xs, *xq;                   /* R × width0: input rows (support / generic, query) */
    float *ys, *yq;                   /* R × width[L]: labels of meta-training episodes */
    float *act[NF_MLP_MAXL];          /* act[l]: R × width[l+1], layer l's output (after ReLU but the last) */
    float *ract[NF_MLP_MAXL];         /* R-operator of act[l] */
    float *D[2], *RD[2];              /* R × maxw: δ and R(δ), ping-pong */
    float *th;                        /* (T+1) × P: θ_0..θ_T of the inner loop */
    float *gs;                        /* T × P: ∇L_s(θ_t) */
    float *lam, *tmp, *hv;            /* P each */
};

static int64_t w_in(const nf_mlp *m, int l) { return m->c.width[l]; }
static int64_t w_out(const nf_mlp *m, int l) { return m->c.width[l + 1]; }
static int64_t split_in(const nf_mlp *m, int l) { return l == 0 ? m->c.in_x : m->c.split_out[l - 1]; }

static nf_status check_cfg(const nf_mlp_cfg *c, nf_err *err)
{
    if (c->n_layers < 1 || c->n_layers > NF_MLP_MAXL)
        return nf_seterr(err, NF_EINVAL, "mlp: %d layers (1..%d)", c->n_layers, NF_MLP_MAXL);
    for (int l = 0; l <= c->n_layers; l++)
        if (c->width[l] < 1 || c->width[l] > 1000000)
            return nf_seterr(err, NF_EINVAL, "mlp: width %d of layer boundary %d (1..1000000)", c->width[l], l);
    if (c->in_x < 1 || c->in_h < 0 || c->in_x + c->in_h != c->width[0])
        return nf_seterr(err, NF_EINVAL, "mlp: in_x %d + in_h %d must be the input width %d (in_x >= 1)", c->in_x,
                         c->in_h, c->width[0]);
    if (c->n_split < 0 || c->n_split >= c->n_layers)
        return nf_seterr(err, NF_EINVAL, "mlp: %d block-diagonal layers of %d (0..%d)", c->n_split, c->n_layers,
                         c->n_layers - 1);
    if (c->n_split > 0 && c->in_h == 0)
        return nf_seterr(err, NF_EINVAL, "mlp: block-diagonal layers need a hardware input (in_h > 0)");
    for (int l = 0; l < c->n_split; l++)
        if (c->split_out[l] < 1 || c->split_out[l] >= c->width[l + 1])
            return nf_seterr(err, NF_EINVAL, "mlp: split %d of layer %d must be in 1..%d", c->split_out[l], l + 1,
                             c->width[l + 1] - 1);
    return NF_OK;
}

nf_status nf_mlp_new(const nf_mlp_cfg *cfg, int64_t max_rows, int max_steps, nf_mlp **out, nf_err *err)
{
    *out = NULL;
    nf_status st = check_cfg(cfg, err);
    if (st) return st;
    if (max_rows < 1 || max_rows > 1000000)
        return nf_seterr(err, NF_EINVAL, "mlp: max_rows %lld (1..1000000)", (long long)max_rows);
    if (max_steps < 1 || max_steps > 100)
        return nf_seterr(err, NF_EINVAL, "mlp: max_steps %d (1..100)", max_steps);
    nf_mlp *m = calloc(1, sizeof *m);
    if (!m) return nf_seterr(err, NF_ENOMEM, "mlp: out of memory");
    m->c = *cfg;
    m->R = max_rows;
    m->T = max_steps;
    const int L = cfg->n_layers;
    int64_t P = 0;
    m->maxw = 1;
    for (int l = 0; l < L; l++) {
        m->offW[l] = P;
        P += w_in(m, l) * w_out(m, l);
        m->offb[l] = P;
        P += w_out(m, l);
        if (w_out(m, l) > m->maxw) m->maxw = w_out(m, l);
    }
    m->P = P;
    const int64_t R = max_rows, w0 = cfg->width[0], wL = cfg->width[L];
    int64_t acts = 0;
    for (int l = 0; l < L; l++) acts += R * w_out(m, l);
    size_t n = (size_t)(2 * P + 2 * P + 4 * P + P            /* θα, grad, moments, mask */
                        + 2 * R * w0 + 2 * R * wL + 2 * acts + 4 * R * m->maxw
                        + (int64_t)(max_steps + 1) * P + (int64_t)max_steps * P + 3 * P);
    m->nfloats = n;
    m->buf = calloc(n, sizeof(float));
    if (!m->buf) { free(m); return nf_seterr(err, NF_ENOMEM, "mlp: out of memory (%zu floats)", n); }
    float *p = m->buf;
#define TAKE(ptr, count) do { (ptr) = p; p += (count); } while (0)
    TAKE(m->theta, P); TAKE(m->alpha, P); TAKE(m->grad, 2 * P); TAKE(m->am, 2 * P); TAKE(m->av, 2 * P);
    TAKE(m->mask, P);
    TAKE(m->xs, R * w0); TAKE(m->xq, R * w0); TAKE(m->ys, R * wL); TAKE(m->yq, R * wL);
    for (int l = 0; l < L; l++) TAKE(m->act[l], R * w_out(m, l));
    for (int l = 0; l < L; l++) TAKE(m->ract[l], R * w_out(m, l));
    for (int k = 0; k < 2; k++) { TAKE(m->D[k], R * m->maxw); TAKE(m->RD[k], R * m->maxw); }
    TAKE(m->th, (int64_t)(max_steps + 1) * P); TAKE(m->gs, (int64_t)max_steps * P);
    TAKE(m->lam, P); TAKE(m->tmp, P); TAKE(m->hv, P);
#undef TAKE
    /* the mask: biases free, weights free inside their block */
    for (int l = 0; l < L; l++) {
        const int64_t in = w_in(m, l), o = w_out(m, l);
        float *W = m->mask + m->offW[l];
        for (int64_t i = 0; i < in; i++)
            for (int64_t j = 0; j < o; j++) {
                int on = 1;
                if (l < cfg->n_split) on = (i < split_in(m, l)) == (j < cfg->split_out[l]);
                W[i * o + j] = on ? 1.0f : 0.0f;
            }
        nf_fill(m->mask + m->offb[l], (size_t)o, 1.0f);
    }
    nf_fill(m->alpha, (size_t)P, 1e-3f);
    *out = m;
    return NF_OK;
}

void nf_mlp_free(nf_mlp *m)
{
    if (!m) return;
    free(m->buf);
    free(m);
}

nf_status nf_mlp_clone(const nf_mlp *m, nf_mlp **out, nf_err *err)
{
    nf_status st = nf_mlp_new(&m->c, m->R, m->T, out, err);
    if (st) return st;
    /* parameters, α, gradients, moments and mask sit first in the allocation: 9P floats */
    memcpy((*out)->buf, m->buf, (size_t)(9 * m->P) * sizeof(float));
    (*out)->adam_t = m->adam_t;
    return NF_OK;
}

const nf_mlp_cfg *nf_mlp_config(const nf_mlp *m) { return &m->c; }
int64_t nf_mlp_nparams(const nf_mlp *m) { return m->P; }
int64_t nf_mlp_max_rows(const nf_mlp *m) { return m->R; }
int nf_mlp_max_steps(const nf_mlp *m) { return m->T; }
size_t nf_mlp_bytes(const nf_mlp *m) { return sizeof *m + m->nfloats * sizeof(float); }
float *nf_mlp_params(nf_mlp *m) { return m->theta; }
float *nf_mlp_alpha(nf_mlp *m) { return m->alpha; }
const float *nf_mlp_mask(const nf_mlp *m) { return m->mask; }

void nf_mlp_init(nf_mlp *m, float alpha0, nf_rng *rng)
{
    for (int l = 0; l < m->c.n_layers; l++) {
        const int64_t in = w_in(m, l), o = w_out(m, l);
        const int split = l < m->c.n_split;
        const int64_t si = split ? split_in(m, l) : in, so = split ? m->c.split_out[l] : o;
        const double bound[2] = {1.0 / sqrt((double)si), split ? 1.0 / sqrt((double)(in - si)) : 0.0};
        float *W = m->theta + m->offW[l], *b = m->theta + m->offb[l];
        for (int64_t i = 0; i < in; i++)
            for (int64_t j = 0; j < o; j++) {
                const int64_t k = i * o + j;
                W[k] = m->mask[m->offW[l] + k] != 0.0f
                           ? (float)((2.0 * nf_rng_uniform(rng) - 1.0) * bound[split && j >= so]) : 0.0f;
            }
        for (int64_t j = 0; j < o; j++) b[j] = (float)((2.0 * nf_rng_uniform(rng) - 1.0) * bound[split && j >= so]);
    }
    nf_fill(m->alpha, (size_t)m->P, alpha0);
    memset(m->am, 0, (size_t)(4 * m->P) * sizeof(float));
    m->adam_t = 0;
}

/* ---------------------------------------------------------------- passes */
static void build_rows(const nf_mlp *m, const float *xa, const float *h, int64_t n, float *dst)
{
    const int64_t w0 = m->c.width[0], ix = m->c.in_x, ih = m->c.in_h;
    for (int64_t r = 0; r < n; r++) {
        memcpy(dst + r * w0, xa + r * ix, (size_t)ix * sizeof(float));
        if (ih) memcpy(dst + r * w0 + ix, h, (size_t)ih * sizeof(float));
    }
}

static void relu_mask(float *d, const float *a, int64_t count)
{
    for (int64_t k = 0; k < count; k++)
        if (!(a[k] > 0.0f)) d[k] = 0.0f;
}

static const float *layer_input(const nf_mlp *m, int l, const float *X) { return l == 0 ? X : m->act[l - 1]; }

/* act[l] for every layer, from the input rows X (n × width0) */
static nf_status forward(nf_mlp *m, const float *theta, const float *X, int64_t n, nf_err *err)
{
    const int L = m->c.n_layers;
    for (int l = 0; l < L; l++) {
        nf_status st = nf_linear_forward(layer_input(m, l, X), w_in(m, l), theta + m->offW[l], theta + m->offb[l], n,
                                         w_in(m, l), w_out(m, l), m->act[l], err);
        if (st) return st;
        if (l < L - 1) nf_relu_forward(m->act[l], m->act[l], (size_t)(n * w_out(m, l)));
    }
    return NF_OK;
}

/* D[0] = ∂loss/∂output after forward(); returns the loss */
static double output_delta(nf_mlp *m, const float *y, int64_t n)
{
    const int L = m->c.n_layers;
    const int64_t cnt = n * m->c.width[L];
    const float *a = m->act[L - 1];
    const double c = 2.0 / (double)cnt;
    double loss = 0;
    for (int64_t k = 0; k < cnt; k++) {
        const double d = (double)a[k] - (double)y[k];
        loss += d * d;
        m->D[0][k] = (float)(c * d);
    }
    return loss / (double)cnt;
}

static void apply_mask(const nf_mlp *m, float *g)
{
    for (int64_t k = 0; k < m->P; k++) g[k] *= m->mask[k];
}

/* loss and gradient (overwritten, masked) at theta over the built rows X */
static nf_status loss_grad(nf_mlp *m, const float *theta, const float *X, const float *y, int64_t n, double *loss,
                           float *grad, nf_err *err)
{
    nf_status st = forward(m, theta, X, n, err);
    if (st) return st;
    const double l0 = output_delta(m, y, n);
    if (loss) *loss = l0;
    memset(grad, 0, (size_t)m->P * sizeof(float));
    int cur = 0;
    for (int l = m->c.n_layers - 1; l >= 0; l--) {
        const int nxt = 1 - cur;
        st = nf_linear_backward(layer_input(m, l, X), w_in(m, l), theta + m->offW[l], m->D[cur], n, w_in(m, l),
                                w_out(m, l), grad + m->offW[l], grad + m->offb[l], l > 0 ? m->D[nxt] : NULL,
                                w_in(m, l), 0, err);
        if (st) return st;
        if (l > 0) relu_mask(m->D[nxt], m->act[l - 1], n * w_in(m, l));
        cur = nxt;
    }
    apply_mask(m, grad);
    return NF_OK;
}

/* hv = H·v at theta over the built rows X (Pearlmutter's R-operator; v is masked first, into m->tmp unless it is
 * m->tmp already) */
static nf_status hvp(nf_mlp *m, const float *theta, const float *X, const float *y, int64_t n, const float *v,
                     float *hv, nf_err *err)
{
    const int L = m->c.n_layers;
    if (v != m->tmp) memcpy(m->tmp, v, (size_t)m->P * sizeof(float));
    apply_mask(m, m->tmp);
    const float *V = m->tmp;
    nf_status st = forward(m, theta, X, n, err);
    if (st) return st;
    /* R-forward: R(z_l) = R(a_{l-1})·W_l + a_{l-1}·V_l + v_b,l; R(a_l) = R(z_l) ⊙ [a_l > 0] */
    for (int l = 0; l < L; l++) {
        st = nf_linear_forward(layer_input(m, l, X), w_in(m, l), V + m->offW[l], V + m->offb[l], n, w_in(m, l),
                               w_out(m, l), m->ract[l], err);
        if (st) return st;
        if (l > 0) {
            st = nf_gemm(NF_NOTRANS, NF_NOTRANS, n, w_out(m, l), w_in(m, l), 1.0f, m->ract[l - 1], w_in(m, l),
                         theta + m->offW[l], w_out(m, l), 1.0f, m->ract[l], w_out(m, l), err);
            if (st) return st;
        }
        if (l < L - 1) relu_mask(m->ract[l], m->act[l], n * w_out(m, l));
    }
    (void)output_delta(m, y, n);
    const int64_t cnt = n * m->c.width[L];
    const float c = (float)(2.0 / (double)cnt);
    for (int64_t k = 0; k < cnt; k++) m->RD[0][k] = c * m->ract[L - 1][k];
    memset(hv, 0, (size_t)m->P * sizeof(float));
    int cur = 0;
    for (int l = L - 1; l >= 0; l--) {
        const int nxt = 1 - cur;
        const int64_t in = w_in(m, l), o = w_out(m, l);
        /* R(gW) = a_{l-1}ᵀ·R(δ) (+ R(a_{l-1})ᵀ·δ below), R(gb) = Σ R(δ), R(da_{l-1}) = R(δ)·Wᵀ (+ δ·Vᵀ below) */
        st = nf_linear_backward(layer_input(m, l, X), in, theta + m->offW[l], m->RD[cur], n, in, o, hv + m->offW[l],
                                hv + m->offb[l], l > 0 ? m->RD[nxt] : NULL, in, 0, err);
        if (st) return st;
        if (l > 0) {
            st = nf_gemm(NF_TRANS, NF_NOTRANS, in, o, n, 1.0f, m->ract[l - 1], in, m->D[cur], o, 1.0f,
                         hv + m->offW[l], o, err);
            if (!st) st = nf_gemm(NF_NOTRANS, NF_TRANS, n, in, o, 1.0f, m->D[cur], o, V + m->offW[l], o, 1.0f,
                                  m->RD[nxt], in, err);
            if (!st) st = nf_gemm(NF_NOTRANS, NF_TRANS, n, in, o, 1.0f, m->D[cur], o, theta + m->offW[l], o, 0.0f,
                                  m->D[nxt], in, err);
            if (st) return st;
            relu_mask(m->D[nxt], m->act[l - 1], n * in);
            relu_mask(m->RD[nxt], m->act[l - 1], n * in);
        }
        cur = nxt;
    }
    apply_mask(m, hv);
    return NF_OK;
}

static nf_status check_rows(const nf_mlp *m, int64_t n, const char *what, nf_err *err)
{
    if (n < 1 || n > m->R)
        return nf_seterr(err, NF_EINVAL, "mlp: %lld %s rows (1..%lld, the network's max_rows)", (long long)n, what,
                         (long long)m->R);
    return NF_OK;
}

/* θ_0..θ_T (th) and ∇L_s(θ_t) (gs) from theta0 over the support rows m->xs */
static nf_status inner_loop(nf_mlp *m, const float *theta0, const float *ys, int64_t ns, int steps, nf_err *err)
{
    const int64_t P = m->P;
    memcpy(m->th, theta0, (size_t)P * sizeof(float));
    for (int t = 0; t < steps; t++) {
        float *cur = m->th + (int64_t)t * P, *next = cur + P, *g = m->gs + (int64_t)t * P;
        nf_status st = loss_grad(m, cur, m->xs, ys, ns, NULL, g, err);
        if (st) return st;
        for (int64_t k = 0; k < P; k++) next[k] = cur[k] - m->alpha[k] * g[k];
    }
    return NF_OK;
}

/* the outer loss and gradients from the built support (m->xs) and query (m->xq) rows */
static nf_status maml_core(nf_mlp *m, const float *ys, int64_t ns, const float *yq, int64_t nq, int steps,
                           int second_order, double *loss, float *g_theta, float *g_alpha, nf_err *err)
{
    const int64_t P = m->P;
    nf_status st = inner_loop(m, m->theta, ys, ns, steps, err);
    if (st) return st;
    st = loss_grad(m, m->th + (int64_t)steps * P, m->xq, yq, nq, loss, m->lam, err);
    if (st) return st;
    for (int t = steps - 1; t >= 0; t--) {
        const float *g = m->gs + (int64_t)t * P;
        if (g_alpha)
            for (int64_t k = 0; k < P; k++) g_alpha[k] -= g[k] * m->lam[k];
        if (second_order) {
            for (int64_t k = 0; k < P; k++) m->tmp[k] = m->alpha[k] * m->lam[k];
            st = hvp(m, m->th + (int64_t)t * P, m->xs, ys, ns, m->tmp, m->hv, err);
            if (st) return st;
            for (int64_t k = 0; k < P; k++) m->lam[k] -= m->hv[k];
        }
    }
    for (int64_t k = 0; k < P; k++) g_theta[k] += m->lam[k];
    return NF_OK;
}

/* ---------------------------------------------------------------- public entry points */
nf_status nf_mlp_predict(nf_mlp *m, const float *theta, const float *xa, const float *h, int64_t n, float *out,
                         nf_err *err)
{
    if (n < 0) return nf_seterr(err, NF_EINVAL, "mlp: %lld rows", (long long)n);
    if (!theta) theta = m->theta;
    const int64_t wL = m->c.width[m->c.n_layers];
    for (int64_t r0 = 0; r0 < n; r0 += m->R) {
        const int64_t k = n - r0 < m->R ? n - r0 : m->R;
        build_rows(m, xa + r0 * m->c.in_x, h, k, m->xs);
        nf_status st = forward(m, theta, m->xs, k, err);
        if (st) return st;
        memcpy(out + r0 * wL, m->act[m->c.n_layers - 1], (size_t)(k * wL) * sizeof(float));
    }
    return NF_OK;
}

nf_status nf_mlp_loss_grad(nf_mlp *m, const float *theta, const float *xa, const float *h, const float *y,
                           int64_t n, double *loss, float *grad, nf_err *err)
{
    nf_status st = check_rows(m, n, "batch", err);
    if (st) return st;
    build_rows(m, xa, h, n, m->xs);
    return loss_grad(m, theta ? theta : m->theta, m->xs, y, n, loss, grad, err);
}

nf_status nf_mlp_hvp(nf_mlp *m, const float *theta, const float *xa, const float *h, const float *y, int64_t n,
                     const float *v, float *hv, nf_err *err)
{
    nf_status st = check_rows(m, n, "batch", err);
    if (st) return st;
    build_rows(m, xa, h, n, m->xs);
    return hvp(m, theta ? theta : m->theta, m->xs, y, n, v, hv, err);
}

nf_status nf_mlp_adapt(nf_mlp *m, const float *xa, const float *h, const float *y, int64_t n, int steps,
                       float *theta_out, nf_err *err)
{
    nf_status st = check_rows(m, n, "support", err);
    if (st) return st;
    if (steps < 0 || steps > m->T)
        return nf_seterr(err, NF_EINVAL, "mlp: %d inner steps (0..%d, the network's max_steps)", steps, m->T);
    build_rows(m, xa, h, n, m->xs);
    if (theta_out != m->theta) memcpy(theta_out, m->theta, (size_t)m->P * sizeof(float));
    for (int t = 0; t < steps; t++) {
        st = loss_grad(m, theta_out, m->xs, y, n, NULL, m->gs, err);
        if (st) return st;
        for (int64_t k = 0; k < m->P; k++) theta_out[k] -= m->alpha[k] * m->gs[k];
    }
    return NF_OK;
}

nf_status nf_mlp_maml_grad(nf_mlp *m, const float *xs, const float *ys, int64_t ns, const float *xq,
                           const float *yq, int64_t nq, const float *h, int steps, int second_order, double *loss,
                           float *g_theta, float *g_alpha, nf_err *err)
{
    nf_status st = check_rows(m, ns, "support", err);
    if (!st) st = check_rows(m, nq, "query", err);
    if (st) return st;
    if (steps < 1 || steps > m->T)
        return nf_seterr(err, NF_EINVAL, "mlp: %d inner steps (1..%d, the network's max_steps)", steps, m->T);
    build_rows(m, xs, h, ns, m->xs);
    build_rows(m, xq, h, nq, m->xq);
    return maml_core(m, ys, ns, yq, nq, steps, second_order, loss, g_theta, g_alpha, err);
}

nf_status nf_mlp_meta_train(nf_mlp *m, const float *x, int64_t N, const float *y, const float *hw, int64_t D,
                            const nf_mlp_meta_opts *o, nf_rng *rng, double *mean_loss, nf_err *err)
{
    if (m->c.width[m->c.n_layers] != 1) return nf_seterr(err, NF_EINVAL, "mlp: meta-training needs one output");
    if (o->episodes < 0 || o->tasks < 1 || o->tasks > D || o->support < 1 || o->query < 1)
        return nf_seterr(err, NF_EINVAL, "mlp: meta-training needs episodes >= 0, 1 <= tasks <= %lld devices, "
                         "support >= 1 and query >= 1", (long long)D);
    nf_status st = check_rows(m, o->support, "support", err);
    if (!st) st = check_rows(m, o->query, "query", err);
    if (st) return st;
    if (o->steps < 1 || o->steps > m->T)
        return nf_seterr(err, NF_EINVAL, "mlp: %d inner steps (1..%d, the network's max_steps)", o->steps, m->T);
    if (!(o->lr > 0.0f)) return nf_seterr(err, NF_EINVAL, "mlp: meta learning rate must be positive");
    /* per call, not per step: each device's labelled rows, and the draw buffers */
    const int64_t NS = N > D ? N : D;   /* the draw scratch serves draws over rows and over devices */
    int64_t *rows = malloc((size_t)(D * N + D + NS + o->support + o->query + D) * sizeof(int64_t));
    if (!rows) return nf_seterr(err, NF_ENOMEM, "mlp: out of memory (%lld rows)", (long long)(D * N));
    int64_t *cnt = rows + D * N, *scratch = cnt + D, *pick = scratch + NS, *devs = pick + o->support + o->query;
    const int64_t need = o->support + o->query;
    for (int64_t d = 0; d < D; d++) {
        cnt[d] = 0;
        for (int64_t r = 0; r < N; r++)
            if (!isnan(y[d * N + r])) rows[d * N + cnt[d]++] = r;
        if (cnt[d] < need) {
            const long long have = (long long)cnt[d];
            free(rows);
            return nf_seterr(err, NF_EINVAL, "mlp: device %lld has %lld labelled rows, an episode needs %lld",
                             (long long)d + 1, have, (long long)need);
        }
    }
    const int64_t P = m->P, ix = m->c.in_x;
    const nf_adam_opts ao = {o->lr, 0.9f, 0.999f, 1e-8f, 0.0f, NF_ADAM_MOMENTS};
    double total = 0;
    for (int e = 0; e < o->episodes; e++) {
        memset(m->grad, 0, (size_t)(2 * P) * sizeof(float));
        st = nf_rng_sample(rng, D, o->tasks, devs, scratch, err);
        if (st) break;
        double eloss = 0;
        for (int k = 0; k < o->tasks; k++) {
            const int64_t d = devs[k];
            st = nf_rng_sample(rng, cnt[d], need, pick, scratch, err);
            if (st) break;
            const float *h = hw + d * m->c.in_h;
            for (int64_t i = 0; i < need; i++) {
                const int64_t r = rows[d * N + pick[i]];
                const int q = i >= o->support;
                const int64_t j = q ? i - o->support : i;
                build_rows(m, x + r * ix, h, 1, (q ? m->xq : m->xs) + j * m->c.width[0]);
                (q ? m->yq : m->ys)[j] = y[d * N + r];
            }
            double l = 0;
            st = maml_core(m, m->ys, o->support, m->yq, o->query, o->steps, o->second_order, &l, m->grad,
                           o->learn_alpha ? m->grad + P : NULL, err);
            if (st) break;
            eloss += l;
        }
        if (st) break;
        nf_scale(m->grad, 1.0f / (float)o->tasks, (size_t)(2 * P));
        m->adam_t++;
        nf_adam_step(m->theta, m->grad, m->am, m->av, o->learn_alpha ? 2 * P : P, m->adam_t, &ao);
        total += eloss / o->tasks;
    }
    free(rows);
    if (st) return st;
    if (mean_loss) *mean_loss = o->episodes > 0 ? total / o->episodes : 0.0;
    return NF_OK;
}

nf_status nf_codes_lookup(const float *codes, int64_t n, int64_t positions, const float *table, int64_t choices,
                          int64_t dim, float *out, nf_err *err)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t p = 0; p < positions; p++) {
            const float c = codes[r * positions + p];
            if (!(c >= 0.0f && c < (float)choices) || c != floorf(c))
                return nf_seterr(err, NF_ERANGE, "codes: row %lld position %lld: %g is not a choice 0..%lld",
                                 (long long)r + 1, (long long)p + 1, (double)c, (long long)choices - 1);
            memcpy(out + (r * positions + p) * dim, table + (int64_t)c * dim, (size_t)dim * sizeof(float));
        }
    return NF_OK;
}
