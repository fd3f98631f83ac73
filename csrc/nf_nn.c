/* nf_nn.c — layers of the NASFLAT predictor: dense, element-wise, layer norm, readout,
 * and the graph layers (DGF, GAT, GAT-MH, ensemble), forward and backward. See nf_nn.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nf_nn.h"

/* Runs the statements for f = 0..n-1: blocks of 16 with a fixed-length inner loop (one AVX-512
 * vector, two AVX2 ones), then a scalar tail. Element-wise statements only: the block length
 * does not change a result. GCC vectorises the fixed-length loop at -O2 (its "very cheap" cost
 * model refuses loops of unknown length, which need an epilogue); the kernels below take
 * restrict-qualified rows so that no alias check is needed either. */
#define VLOOP(f, n, ...)                                              \
    do {                                                              \
        int64_t f##0_ = 0;                                            \
        for (; f##0_ + 16 <= (n); f##0_ += 16)                        \
            for (int f##k_ = 0; f##k_ < 16; f##k_++) {                \
                const int64_t f = f##0_ + f##k_;                      \
                __VA_ARGS__                                           \
            }                                                         \
        for (int64_t f = f##0_; f < (n); f++) { __VA_ARGS__ }         \
    } while (0)

NF_KERNEL void v_axpy(float *restrict y, float a, const float *restrict x, int64_t n)
{
    VLOOP(f, n, y[f] += a * x[f];);
}

/* y = Σ_j w[j·ws]·X_j over the rows X_j = X + j·ld (j < N) with a weight ≠ 0, j ascending, from y = 0 (or, with add,
 * from y's value): the sums of a memset (none with add) and one v_axpy per row, in the same order (the same bits), with
 * y held in registers, 32 floats at a time, instead of stored and reloaded for every row. */
NF_KERNEL void v_wsum_rows(float *restrict y, int add, const float *restrict w, int64_t ws, const float *restrict X,
                           int64_t ld, int64_t N, int64_t F)
{
    int64_t f0 = 0;
    for (; f0 + 32 <= F; f0 += 32) {
        float acc[32];
        for (int k = 0; k < 32; k++) acc[k] = add ? y[f0 + k] : 0.0f;
        for (int64_t j = 0; j < N; j++) {
            const float a = w[j * ws];
            if (a == 0.0f) continue;
            const float *x = X + j * ld + f0;
            for (int k = 0; k < 32; k++) acc[k] += a * x[k];
        }
        for (int k = 0; k < 32; k++) y[f0 + k] = acc[k];
    }
    for (; f0 < F; f0++) {
        float acc = add ? y[f0] : 0.0f;
        for (int64_t j = 0; j < N; j++)
            if (w[j * ws] != 0.0f) acc += w[j * ws] * X[j * ld + f0];
        y[f0] = acc;
    }
}

NF_KERNEL void v_mul(float *restrict y, const float *restrict a, const float *restrict b, int64_t n)
{
    VLOOP(f, n, y[f] = a[f] * b[f];);
}

NF_KERNEL void v_add(float *restrict y, const float *restrict x, int64_t n)
{
    VLOOP(f, n, y[f] += x[f];);
}

/* ---------------------------------------------------------------- dense layers */
nf_status nf_linear_forward(const float *X, int64_t ldx, const float *W, const float *b,
                            int64_t rows, int64_t in, int64_t out, float *Y, nf_err *err)
{
    /* the bias rows first, then Y += X·W: one pass fewer than Y = X·W (a BLAS beta pass) then + b */
    if (b)
        for (int64_t r = 0; r < rows; r++) memcpy(Y + r * out, b, (size_t)out * sizeof(float));
    return nf_gemm(NF_NOTRANS, NF_NOTRANS, rows, out, in, 1.0f, X, ldx, W, out, b ? 1.0f : 0.0f, Y, out, err);
}

nf_status nf_linear_backward(const float *X, int64_t ldx, const float *W, const float *dY,
                             int64_t rows, int64_t in, int64_t out, float *dW, float *db,
                             float *dX, int64_t lddx, int acc, nf_err *err)
{
    nf_status st = nf_gemm(NF_TRANS, NF_NOTRANS, in, out, rows, 1.0f, X, ldx, dY, out, 1.0f, dW, out, err);
    if (st) return st;
    if (db)
        for (int64_t r = 0; r < rows; r++) v_add(db, dY + r * out, out);
    if (dX) return nf_gemm(NF_NOTRANS, NF_TRANS, rows, in, out, 1.0f, dY, out, W, out, acc ? 1.0f : 0.0f, dX, lddx, err);
    return NF_OK;
}

nf_status nf_embedding_forward(const float *table, int64_t n_rows, int64_t dim, const int32_t *idx,
                               int64_t rows, float *Y, int64_t ldy, nf_err *err)
{
    for (int64_t r = 0; r < rows; r++) {
        if (idx[r] < 0 || idx[r] >= n_rows)
            return nf_seterr(err, NF_ERANGE, "embedding: index %d at row %lld out of range 0..%lld",
                             (int)idx[r], (long long)r, (long long)n_rows - 1);
        memcpy(Y + r * ldy, table + (int64_t)idx[r] * dim, (size_t)dim * sizeof(float));
    }
    return NF_OK;
}

void nf_embedding_backward(float *dtable, int64_t dim, const int32_t *idx, int64_t rows,
                           const float *dY, int64_t lddy)
{
    for (int64_t r = 0; r < rows; r++) {
        float *d = dtable + (int64_t)idx[r] * dim;
        const float *s = dY + r * lddy;
        for (int64_t c = 0; c < dim; c++) d[c] += s[c];
    }
}

/* Element-wise kernels: in place (one restrict pointer) or out of place (distinct arrays);
 * the public functions pick one, so both vectorise. Operands are loaded before the select
 * (a conditional load would stop if-conversion). */
static void relu_ip(float *restrict x, int64_t n) { VLOOP(i, n, const float v = x[i]; x[i] = v > 0.0f ? v : 0.0f;); }
static void relu_op(const float *restrict x, float *restrict y, int64_t n)
{
    VLOOP(i, n, const float v = x[i]; y[i] = v > 0.0f ? v : 0.0f;);
}

void nf_relu_forward(const float *X, float *Y, size_t n)
{
    if (X == Y) relu_ip(Y, (int64_t)n);
    else relu_op(X, Y, (int64_t)n);
}

static void relu_bwd_ip(const float *restrict y, float *restrict d, int64_t n)
{
    VLOOP(i, n, const float v = d[i]; d[i] = y[i] > 0.0f ? v : 0.0f;);
}
static void relu_bwd_op(const float *restrict y, const float *restrict dy, float *restrict dx, int64_t n)
{
    VLOOP(i, n, const float v = dy[i]; dx[i] = y[i] > 0.0f ? v : 0.0f;);
}

void nf_relu_backward(const float *Y, const float *dY, float *dX, size_t n)
{
    if (dX == dY) relu_bwd_ip(Y, dX, (int64_t)n);
    else relu_bwd_op(Y, dY, dX, (int64_t)n);
}

static void add_relu_row(float *restrict x, const float *restrict w, int64_t n)
{
    VLOOP(f, n, const float v = x[f] + w[f]; x[f] = v > 0.0f ? v : 0.0f;);
}

NF_CLONES void nf_row_add(float *restrict y, const float *restrict a, const float *restrict b, int64_t n)
{
    VLOOP(f, n, y[f] = a[f] + b[f];);
}

NF_CLONES void nf_row_acc2(float *restrict e, float *restrict d, const float *restrict x, int64_t n)
{
    VLOOP(f, n, e[f] += x[f]; d[f] += x[f];);
}

void nf_add_rows_relu(float *X, const float *w, int64_t groups, int64_t per, int64_t F)
{
    for (int64_t g = 0; g < groups; g++)
        for (int64_t i = 0; i < per; i++) add_relu_row(X + (g * per + i) * F, w + g * F, F);
}

void nf_leaky_relu_forward(const float *X, float *Y, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++) Y[i] = X[i] > 0.0f ? X[i] : slope * X[i];
}

void nf_leaky_relu_backward(const float *X, const float *dY, float *dX, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++) dX[i] = X[i] > 0.0f ? dY[i] : slope * dY[i];
}

/* e^x without branches or libm calls, so that loops over it vectorise at -O2: |x| clamped
 * to 87 (in the integer domain: float compares may trap and stop if-conversion; NaN passes
 * through), Cody-Waite reduction x = k·ln2 + r with k rounded to nearest by adding 1.5·2^23,
 * Cephes' polynomial for e^r, and 2^k built in the exponent bits. Within 3 ulp of e^x. */
NF_KERNEL float expf_fast(float x)
{
    union { float f; uint32_t i; } q = {x}, u, v;
    const uint32_t ax = q.i & 0x7fffffffu;   /* 0x42AE0000 = 87.0f, 0x7F800000 = inf */
    q.i = ((ax > 0x42AE0000u) & (ax <= 0x7F800000u)) ? (q.i & 0x80000000u) | 0x42AE0000u : q.i;
    x = q.f;
    u.f = x * 1.44269504088896341f + 12582912.0f;
    const float k = u.f - 12582912.0f;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v.i = (u.i - 0x4B400000u + 127u) << 23;   /* the low mantissa bits of u hold k */
    return p * v.f;
}

NF_KERNEL float sigmoidf(float x) { return 1.0f / (1.0f + expf_fast(-x)); }

/* In place (one restrict pointer) or out of place (distinct arrays), as the other element-wise
 * kernels: both vectorise and store straight from the vector registers (a block through a local
 * array stored lane by lane and stalled on store forwarding). */
NF_KERNEL void sigmoid_ip(float *restrict x, int64_t n) { VLOOP(i, n, x[i] = sigmoidf(x[i]);); }
NF_KERNEL void sigmoid_op(const float *restrict x, float *restrict y, int64_t n) { VLOOP(i, n, y[i] = sigmoidf(x[i]);); }

NF_CLONES void nf_sigmoid_forward(const float *X, float *Y, size_t n)
{
    if (X == Y) sigmoid_ip(Y, (int64_t)n);
    else sigmoid_op(X, Y, (int64_t)n);
}

void nf_sigmoid_backward(const float *Y, const float *dY, float *dX, size_t n)
{
    for (size_t i = 0; i < n; i++) dX[i] = dY[i] * Y[i] * (1.0f - Y[i]);
}

void nf_dropout_forward(const float *X, float *Y, float *mask, size_t n, float p, nf_rng *rng)
{
    if (p <= 0.0f) {
        nf_fill(mask, n, 1.0f);
        if (Y != X) nf_copy(Y, X, n);
        return;
    }
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        mask[i] = nf_rng_uniform(rng) < (double)p ? 0.0f : keep;
        Y[i] = X[i] * mask[i];
    }
}

static void mul_ip(float *restrict y, const float *restrict x, int64_t n) { VLOOP(i, n, y[i] *= x[i];); }

void nf_dropout_backward(const float *mask, const float *dY, float *dX, size_t n)
{
    if (dX == dY) mul_ip(dX, mask, (int64_t)n);
    else v_mul(dX, dY, mask, (int64_t)n);
}

void nf_layernorm_forward(const float *X, const float *gamma, const float *beta, int64_t rows, int64_t dim,
                          float *Y, float *xhat, float *rstd)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *x = X + r * dim;
        float *xh = xhat + r * dim, *y = Y + r * dim;
        float m = 0.0f, v = 0.0f;
        for (int64_t c = 0; c < dim; c++) m += x[c];
        m /= (float)dim;
        for (int64_t c = 0; c < dim; c++) { float d = x[c] - m; v += d * d; }
        float rs = 1.0f / sqrtf(v / (float)dim + 1e-5f);
        rstd[r] = rs;
        for (int64_t c = 0; c < dim; c++) {
            xh[c] = (x[c] - m) * rs;
            y[c] = xh[c] * gamma[c] + beta[c];
        }
    }
}

void nf_layernorm_backward(const float *gamma, const float *xhat, const float *rstd, const float *dY,
                           int64_t rows, int64_t dim, float *dgamma, float *dbeta, float *dX)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xh = xhat + r * dim, *dy = dY + r * dim;
        float *dx = dX + r * dim;
        float s1 = 0.0f, s2 = 0.0f;
        for (int64_t c = 0; c < dim; c++) {
            float g = dy[c] * gamma[c];
            dgamma[c] += dy[c] * xh[c];
            dbeta[c] += dy[c];
            s1 += g;
            s2 += g * xh[c];
        }
        s1 /= (float)dim;
        s2 /= (float)dim;
        for (int64_t c = 0; c < dim; c++) dx[c] = rstd[r] * (dy[c] * gamma[c] - s1 - xh[c] * s2);
    }
}

void nf_readout_forward(const float *H, const float *w, const float *den, int64_t B, int64_t N, int64_t F, float *Y)
{
    for (int64_t b = 0; b < B; b++) {
        float *y = Y + b * F;
        memset(y, 0, (size_t)F * sizeof(float));
        for (int64_t i = 0; i < N; i++) {
            float wi = w[b * N + i] / den[b];
            if (wi == 0.0f) continue;
            const float *h = H + (b * N + i) * F;
            for (int64_t c = 0; c < F; c++) y[c] += wi * h[c];
        }
    }
}

void nf_readout_backward(const float *w, const float *den, const float *dY, int64_t B, int64_t N, int64_t F, float *dH)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < N; i++) {
            float wi = w[b * N + i] / den[b];
            float *d = dH + (b * N + i) * F;
            const float *dy = dY + b * F;
            for (int64_t c = 0; c < F; c++) d[c] = wi * dy[c];
        }
}

/* ---------------------------------------------------------------- graph layers */
#define NF_GL_MAXBR 16

const char *nf_gl_kind_name(nf_gl_kind k)
{
    switch (k) {
    case NF_GL_DGF: return "dgf";
    case NF_GL_GAT: return "gat";
    case NF_GL_GAT_MH: return "gat_mh";
    case NF_GL_ENSEMBLE: return "ensemble";
    }
    return "?";
}

int nf_gl_kind_from_name(const char *name)
{
    for (int k = 0; k <= NF_GL_ENSEMBLE; k++)
        if (strcmp(name, nf_gl_kind_name((nf_gl_kind)k)) == 0) return k;
    return -1;
}

int nf_glayer_branches(const nf_glayer_cfg *c)
{
    switch (c->kind) {
    case NF_GL_DGF: case NF_GL_GAT: return 1;
    case NF_GL_GAT_MH: return c->heads;
    case NF_GL_ENSEMBLE: return 2;
    }
    return 1;
}

int nf_glayer_branch_is_gat(const nf_glayer_cfg *c, int k)
{
    return c->kind == NF_GL_GAT || c->kind == NF_GL_GAT_MH || (c->kind == NF_GL_ENSEMBLE && k == 1);
}

int64_t nf_glayer_nparams(const nf_glayer_cfg *c)
{
    int nb = nf_glayer_branches(c);
    int64_t n = (int64_t)c->in * nb * c->out;
    for (int k = 0; k < nb; k++) n += (int64_t)c->out * (nf_glayer_branch_is_gat(c, k) ? 3 : 1);
    return n;
}

/* Pointers into one layer's workspace. */
typedef struct {
    float *P, *dP, *red;                  /* B·N·nb·F each (red: N·nb·F) */
    float *agg[NF_GL_MAXBR];              /* DGF: Aᵀ·S */
    float *V[NF_GL_MAXBR], *xhat[NF_GL_MAXBR], *rstd[NF_GL_MAXBR], *alpha[NF_GL_MAXBR], *e[NF_GL_MAXBR];
    float *scr;                           /* scratch: N·F + N·N + 2·F */
    int64_t total;
} gl_ws;

static void gl_layout(const nf_glayer_cfg *c, int64_t B, int64_t N, float *base, gl_ws *w)
{
    int nb = nf_glayer_branches(c);
    int64_t F = c->out, rows = B * N, o = 0;
#define TAKE(ptr, n) do { (ptr) = base ? base + o : NULL; o += (n); } while (0)
    TAKE(w->P, rows * nb * F);
    TAKE(w->dP, rows * nb * F);
    TAKE(w->red, N * nb * F);
    for (int k = 0; k < nb; k++) {
        if (nf_glayer_branch_is_gat(c, k)) {
            TAKE(w->V[k], rows * F);
            TAKE(w->xhat[k], rows * F);
            TAKE(w->rstd[k], rows);
            TAKE(w->alpha[k], B * N * N);
            TAKE(w->e[k], B * N * N);
        } else {
            TAKE(w->agg[k], rows * F);
        }
    }
    TAKE(w->scr, N * F + N * N + 2 * F);
#undef TAKE
    w->total = o;
}

int64_t nf_glayer_ws_floats(const nf_glayer_cfg *c, int64_t B, int64_t N)
{
    gl_ws w;
    gl_layout(c, B, N, NULL, &w);
    return w.total;
}

double nf_glayer_flops(const nf_glayer_cfg *c, int64_t N)
{
    int nb = nf_glayer_branches(c);
    double F = c->out, n = (double)N;
    double fl = 2.0 * n * c->in * nb * F;              /* projection GEMM */
    for (int k = 0; k < nb; k++) {
        if (nf_glayer_branch_is_gat(c, k))
            fl += 3.0 * n * n * F + 2.0 * n * n * F + 10.0 * n * F;   /* logits, α·K, gate+LN */
        else
            fl += 2.0 * n * n * F + 4.0 * n * F;
    }
    return fl;
}

static nf_status gl_check(const nf_glayer_cfg *c, int64_t B, int64_t N, nf_err *err)
{
    if (c->in < 1 || c->out < 1 || B < 0 || N < 1)
        return nf_seterr(err, NF_EINVAL, "graph layer: bad sizes (in %d, out %d, B %lld, N %lld)",
                         c->in, c->out, (long long)B, (long long)N);
    if (c->kind < NF_GL_DGF || c->kind > NF_GL_ENSEMBLE)
        return nf_seterr(err, NF_EINVAL, "graph layer: unknown kind %d", (int)c->kind);
    if (c->kind == NF_GL_GAT_MH && (c->heads < 1 || c->heads > NF_GL_MAXBR))
        return nf_seterr(err, NF_EINVAL, "graph layer: heads must be in 1..%d (got %d)", NF_GL_MAXBR, c->heads);
    return NF_OK;
}

/* Dot product with 8 independent partial sums: vectorises without -ffast-math (strict
 * IEEE order would serialise the reduction). The summation order is fixed: deterministic. */
NF_KERNEL float dotf(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t f = 0;
    for (; f + 8 <= n; f += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[f + k] * b[f + k];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; f < n; f++) s += a[f] * b[f];
    return s;
}

/* Σ x (8 partial sums) and Σ (x − m)². */
NF_KERNEL float v_sum(const float *x, int64_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t f = 0;
    for (; f + 8 <= n; f += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[f + k];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; f < n; f++) s += x[f];
    return s;
}

NF_KERNEL float v_sqdev(const float *x, float m, int64_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t f = 0;
    for (; f + 8 <= n; f += 8)
        for (int k = 0; k < 8; k++) { float d = x[f + k] - m; acc[k] += d * d; }
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; f < n; f++) { float d = x[f] - m; s += d * d; }
    return s;
}

static float gat_scale(const nf_glayer_cfg *c, int64_t N)
{
    (void)N;
    return 1.0f / sqrtf((float)c->out);
}

/* ---- row kernels of the graph layers (one node, F features) */
/* DGF output: o (=, or += when acc) s·(gate ⊙ agg + S + bias) */
NF_KERNEL void dgf_out_row(float *restrict o, const float *restrict gt, const float *restrict ag,
                        const float *restrict S, const float *restrict bias, float s, int acc, int64_t F)
{
    if (acc) VLOOP(f, F, o[f] += s * (gt[f] * ag[f] + S[f] + bias[f]););
    else VLOOP(f, F, o[f] = s * (gt[f] * ag[f] + S[f] + bias[f]););
}

/* GAT output: xh = LN-normalised gate ⊙ V (saved), o (= or +=) s·(xh ⊙ γ + β); returns rstd. */
NF_KERNEL float gat_out_row(float *restrict o, float *restrict xh, const float *restrict gt, const float *restrict V,
                         const float *restrict gam, const float *restrict bet, float s, int acc, int64_t F)
{
    v_mul(xh, gt, V, F);
    const float m = v_sum(xh, F) / (float)F;
    const float rs = 1.0f / sqrtf(v_sqdev(xh, m, F) / (float)F + 1e-5f);
    VLOOP(f, F, xh[f] = (xh[f] - m) * rs;);
    if (acc) VLOOP(f, F, o[f] += s * (xh[f] * gam[f] + bet[f]););
    else VLOOP(f, F, o[f] = s * (xh[f] * gam[f] + bet[f]););
    return rs;
}

/* DGF backward of one node: d = s·dy; dbias += d; dz = d·agg·σ'(gate); da = d·gate; dS = d. */
NF_KERNEL void dgf_bwd_row(const float *restrict dy, const float *restrict gt, const float *restrict ag, float s,
                        float *restrict dbias, float *restrict dz, float *restrict da, float *restrict dS, int64_t F)
{
    VLOOP(f, F,
          const float d = s * dy[f];
          dbias[f] += d;
          dz[f] = d * ag[f] * gt[f] * (1.0f - gt[f]);
          da[f] = d * gt[f];
          dS[f] = d;);
}

/* GAT backward of one node's layer norm and gate: dγ, dβ accumulate; dz, dv overwritten. */
NF_KERNEL void gat_ln_bwd_row(const float *restrict dy, const float *restrict xh, const float *restrict V,
                           const float *restrict gt, const float *restrict gam, float s, float rs,
                           float *restrict dgam, float *restrict dbet, float *restrict dz, float *restrict dv, int64_t F)
{
    float a1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, a2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t f = 0;
    for (; f + 8 <= F; f += 8)
        for (int k = 0; k < 8; k++) {
            const float d = s * dy[f + k], gx = d * gam[f + k];
            dgam[f + k] += d * xh[f + k];
            dbet[f + k] += d;
            a1[k] += gx;
            a2[k] += gx * xh[f + k];
        }
    float s1 = ((a1[0] + a1[4]) + (a1[1] + a1[5])) + ((a1[2] + a1[6]) + (a1[3] + a1[7]));
    float s2 = ((a2[0] + a2[4]) + (a2[1] + a2[5])) + ((a2[2] + a2[6]) + (a2[3] + a2[7]));
    for (; f < F; f++) {
        const float d = s * dy[f], gx = d * gam[f];
        dgam[f] += d * xh[f];
        dbet[f] += d;
        s1 += gx;
        s2 += gx * xh[f];
    }
    s1 /= (float)F;
    s2 /= (float)F;
    VLOOP(h, F,
          const float dpre = rs * (s * dy[h] * gam[h] - s1 - xh[h] * s2);
          dz[h] = dpre * V[h] * gt[h] * (1.0f - gt[h]);
          dv[h] = dpre * gt[h];);
}

/* GAT: dK_i += a ⊙ t, da += K_i ⊙ t */
NF_KERNEL void gat_bwd_key_row(float *restrict dKi, float *restrict da, const float *restrict a,
                            const float *restrict Ki, const float *restrict t, int64_t F)
{
    VLOOP(f, F,
          dKi[f] += a[f] * t[f];
          da[f] += Ki[f] * t[f];);
}

NF_CLONES nf_status nf_glayer_forward(const nf_glayer_cfg *c, const float *p, int64_t B, int64_t N,
                                      const float *H, int h_shared, const float *A, float *Zg, int64_t ldz,
                                      float *out, float *ws, nf_err *err)
{
    nf_status st = gl_check(c, B, N, err);
    if (st) return st;
    int nb = nf_glayer_branches(c);
    int64_t F = c->out, ld = nb * F, rows = B * N;
    gl_ws w;
    gl_layout(c, B, N, ws, &w);
    const float *W = p;

    /* projections of all branches in one GEMM; with shared node states, N rows used by every graph */
    if ((st = nf_gemm(NF_NOTRANS, NF_NOTRANS, h_shared ? N : rows, ld, c->in, 1.0f, H, c->in, W, ld, 0.0f, w.P, ld, err)))
        return st;

    const float s = 1.0f / (float)nb, csc = gat_scale(c, N), slope = c->gat_slope;
    float *ta = w.scr;   /* a ⊙ K_i */
    for (int64_t g = 0; g < B; g++) {
        const float *Ag = A + g * N * N;
        const float *Pg = h_shared ? w.P : w.P + g * N * ld;
        /* gates of this graph's nodes (all branches), in place of their pre-activations */
        for (int64_t i = 0; i < N; i++) nf_sigmoid_forward(Zg + (g * N + i) * ldz, Zg + (g * N + i) * ldz, (size_t)ld);
        const float *bp = p + (int64_t)c->in * ld;   /* per-branch parameters follow W */
        for (int k = 0; k < nb; k++) {
            const int64_t co = k * F;
            if (!nf_glayer_branch_is_gat(c, k)) {
                const float *bias = bp;
                bp += F;
                float *agg = w.agg[k] + g * N * F;
                for (int64_t i = 0; i < N; i++) v_wsum_rows(agg + i * F, 0, Ag + i, N, Pg + co, ld, N, F);
                for (int64_t i = 0; i < N; i++) {
                    const int64_t r = g * N + i;
                    dgf_out_row(out + r * F, Zg + r * ldz + co, agg + i * F, Pg + i * ld + co, bias, s, k > 0, F);
                }
            } else {
                const float *a = bp, *gam = bp + F, *bet = bp + 2 * F;
                bp += 3 * F;
                float *al = w.alpha[k] + g * N * N, *ee = w.e[k] + g * N * N;
                for (int64_t i = 0; i < N; i++) {
                    const int64_t r = g * N + i;
                    v_mul(ta, a, Pg + i * ld + co, F);
                    float mx = -INFINITY;
                    for (int64_t j = 0; j < N; j++) {
                        /* masked pairs: logit −∞, or m·leaky(e) = 0 under quirk_gat_mask_zero; e unused */
                        const float m = Ag[j * N + i];
                        float l;
                        if (m != 0.0f) {
                            const float d = dotf(ta, Pg + j * ld + co, F) * csc;
                            ee[i * N + j] = d;
                            l = m * (d > 0.0f ? d : slope * d);
                        } else {
                            ee[i * N + j] = 0.0f;
                            l = c->quirk_gat_mask_zero ? 0.0f : -INFINITY;
                        }
                        al[i * N + j] = l;
                        if (l > mx) mx = l;
                    }
                    if (mx == -INFINITY) {
                        for (int64_t j = 0; j < N; j++) al[i * N + j] = 0.0f;
                    } else {
                        float sum = 0.0f;
                        for (int64_t j = 0; j < N; j++) {
                            float v = al[i * N + j] == -INFINITY ? 0.0f : expf(al[i * N + j] - mx);
                            al[i * N + j] = v;
                            sum += v;
                        }
                        for (int64_t j = 0; j < N; j++) al[i * N + j] /= sum;
                    }
                    float *V = w.V[k] + r * F;
                    v_wsum_rows(V, 0, al + i * N, 1, Pg + co, ld, N, F);
                    w.rstd[k][r] = gat_out_row(out + r * F, w.xhat[k] + r * F, Zg + r * ldz + co, V, gam, bet, s, k > 0, F);
                }
            }
        }
    }
    return NF_OK;
}

NF_CLONES nf_status nf_glayer_backward(const nf_glayer_cfg *c, const float *p, float *dp, int64_t B, int64_t N,
                                       const float *H, int h_shared, const float *A, const float *dout,
                                       const float *Zg, float *dZg, int64_t ldz, float *dH, int acc_dh, float *ws,
                                       nf_err *err)
{
    nf_status st = gl_check(c, B, N, err);
    if (st) return st;
    int nb = nf_glayer_branches(c);
    int64_t F = c->out, ld = nb * F, rows = B * N;
    gl_ws w;
    gl_layout(c, B, N, ws, &w);
    const float *W = p;
    float *dW = dp;
    const float s = 1.0f / (float)nb, csc = gat_scale(c, N), slope = c->gat_slope;
    float *dV = w.scr, *dal = w.scr + N * F, *tk = w.scr + N * F + N * N, *aK = tk + F;

    for (int64_t g = 0; g < B; g++) {
        const float *Ag = A + g * N * N;
        const float *Pg = h_shared ? w.P : w.P + g * N * ld;
        float *dPg = w.dP + g * N * ld;
        const float *bp = p + (int64_t)c->in * ld;
        float *dbp = dp + (int64_t)c->in * ld;
        for (int k = 0; k < nb; k++) {
            const int64_t co = k * F;
            if (!nf_glayer_branch_is_gat(c, k)) {
                float *dbias = dbp;
                bp += F;
                dbp += F;
                float *dagg = w.scr;   /* N×F */
                for (int64_t i = 0; i < N; i++) {
                    const int64_t r = g * N + i;
                    dgf_bwd_row(dout + r * F, Zg + r * ldz + co, w.agg[k] + r * F, s, dbias, dZg + r * ldz + co,
                                dagg + i * F, dPg + i * ld + co, F);
                }
                for (int64_t j = 0; j < N; j++) v_wsum_rows(dPg + j * ld + co, 1, Ag + j * N, 1, dagg, F, N, F);
            } else {
                const float *a = bp, *gam = bp + F;
                float *da_ = dbp, *dgam = dbp + F, *dbet = dbp + 2 * F;
                bp += 3 * F;
                dbp += 3 * F;
                const float *al = w.alpha[k] + g * N * N, *ee = w.e[k] + g * N * N;
                /* layer norm and gate */
                for (int64_t i = 0; i < N; i++) {
                    const int64_t r = g * N + i;
                    gat_ln_bwd_row(dout + r * F, w.xhat[k] + r * F, w.V[k] + r * F, Zg + r * ldz + co, gam, s,
                                   w.rstd[k][r], dgam, dbet, dZg + r * ldz + co, dV + i * F, F);
                }
                /* V_i = Σ_j α_ij K_j (dα only where α ≠ 0: the softmax backward needs no other) */
                for (int64_t i = 0; i < N; i++)
                    for (int64_t j = 0; j < N; j++)
                        dal[i * N + j] = al[i * N + j] != 0.0f ? dotf(dV + i * F, Pg + j * ld + co, F) : 0.0f;
                /* dK_j = Σ_i α_ij dV_i, i ascending (the logits' gradient adds to it below) */
                for (int64_t j = 0; j < N; j++) v_wsum_rows(dPg + j * ld + co, 0, al + j, N, dV, F, N, F);
                /* softmax, mask, leaky ReLU, bilinear logits */
                for (int64_t i = 0; i < N; i++) {
                    float dot = 0.0f;
                    for (int64_t j = 0; j < N; j++) dot += al[i * N + j] * dal[i * N + j];
                    const float *Ki = Pg + i * ld + co;
                    memset(tk, 0, (size_t)F * sizeof(float));
                    v_mul(aK, a, Ki, F);
                    int any = 0;
                    for (int64_t j = 0; j < N; j++) {
                        float m = Ag[j * N + i];
                        if (m == 0.0f) continue;   /* masked: no gradient (constant 0 or −∞) */
                        float dl = al[i * N + j] * (dal[i * N + j] - dot);
                        float e = ee[i * N + j];
                        float de = dl * m * (e > 0.0f ? 1.0f : slope) * csc;
                        if (de == 0.0f) continue;
                        v_axpy(tk, de, Pg + j * ld + co, F);
                        v_axpy(dPg + j * ld + co, de, aK, F);
                        any = 1;
                    }
                    if (any) gat_bwd_key_row(dPg + i * ld + co, da_, a, Ki, tk, F);
                }
            }
        }
    }

    /* projection GEMM backward: dW += Hᵀ·dP, dH = dP·Wᵀ (shared H: reduce dP over graphs first) */
    const float *dPr = w.dP;
    int64_t nr = rows;
    if (h_shared) {
        memcpy(w.red, w.dP, (size_t)(N * ld) * sizeof(float));
        for (int64_t b = 1; b < B; b++) v_add(w.red, w.dP + b * N * ld, N * ld);
        dPr = w.red;
        nr = N;
    }
    if ((st = nf_gemm(NF_TRANS, NF_NOTRANS, c->in, ld, nr, 1.0f, H, c->in, dPr, ld, 1.0f, dW, ld, err))) return st;
    if (dH && (st = nf_gemm(NF_NOTRANS, NF_TRANS, nr, c->in, ld, 1.0f, dPr, ld, W, ld, acc_dh ? 1.0f : 0.0f, dH, c->in, err)))
        return st;
    return NF_OK;
}

/* ---------------------------------------------------------------- finite-difference checks */
typedef struct {
    const nf_gradcheck_opts *o;
    int kind;                 /* index into gc_names */
    nf_glayer_cfg gl;
    int64_t B, N, in, out, gd, rows;
    float *p, *dp;            /* parameters */
    float *x, *dx;            /* input 1 (X or H) */
    float *g, *dg;            /* input 2 (gate source G) */
    int32_t *idx;
    float *adj, *w, *den;     /* adjacency or readout weights; den */
    float *y, *wy, *dy;       /* output, loss weights, dL/dy (= wy) */
    float *zg, *dzg, *ws, *aux, *aux2;
    int64_t np, nx, ng, ny, nws;
    nf_rng rng;
} gc_ctx;

static const char *const gc_names[] = {"linear", "embedding", "relu", "leaky_relu", "sigmoid", "dropout",
                                       "layernorm", "readout", "dgf", "gat", "gat_mh", "ensemble", NULL};
enum { GC_LINEAR, GC_EMB, GC_RELU, GC_LRELU, GC_SIGMOID, GC_DROPOUT, GC_LN, GC_READOUT, GC_GRAPH };

static nf_status gc_forward(gc_ctx *c, double *L, nf_err *err)
{
    nf_status st = NF_OK;
    switch (c->kind) {
    case GC_LINEAR:
        st = nf_linear_forward(c->x, c->in, c->p, c->p + c->in * c->out, c->rows, c->in, c->out, c->y, err);
        break;
    case GC_EMB:
        st = nf_embedding_forward(c->p, c->in, c->out, c->idx, c->rows, c->y, c->out, err);
        break;
    case GC_RELU: nf_relu_forward(c->x, c->y, (size_t)c->ny); break;
    case GC_LRELU: nf_leaky_relu_forward(c->x, c->y, (size_t)c->ny, 0.2f); break;
    case GC_SIGMOID: nf_sigmoid_forward(c->x, c->y, (size_t)c->ny); break;
    case GC_DROPOUT:
        nf_rng_seed(&c->rng, c->o->seed + 99);   /* the same mask on every evaluation */
        nf_dropout_forward(c->x, c->y, c->aux, (size_t)c->ny, 0.3f, &c->rng);
        break;
    case GC_LN:
        nf_layernorm_forward(c->x, c->p, c->p + c->out, c->rows, c->out, c->y, c->aux, c->aux2);
        break;
    case GC_READOUT:
        nf_readout_forward(c->x, c->w, c->den, c->B, c->N, c->out, c->y);
        break;
    default: {
        int nb = nf_glayer_branches(&c->gl);
        const float *Wg = c->p + nf_glayer_nparams(&c->gl), *bg = Wg + c->gd * nb * c->out;
        st = nf_linear_forward(c->g, c->gd, Wg, bg, c->rows, c->gd, nb * c->out, c->zg, err);
        if (!st) st = nf_glayer_forward(&c->gl, c->p, c->B, c->N, c->x, c->o->h_shared, c->adj, c->zg,
                                        nb * c->out, c->y, c->ws, err);
    }
    }
    double s = 0;
    for (int64_t k = 0; k < c->ny; k++) s += (double)c->wy[k] * c->y[k];
    *L = s;
    return st;
}

static nf_status gc_backward(gc_ctx *c, nf_err *err)
{
    nf_status st = NF_OK;
    memset(c->dp, 0, (size_t)c->np * sizeof(float));
    memset(c->dx, 0, (size_t)c->nx * sizeof(float));
    if (c->dg) memset(c->dg, 0, (size_t)c->ng * sizeof(float));
    double L;
    if ((st = gc_forward(c, &L, err))) return st;
    switch (c->kind) {
    case GC_LINEAR:
        st = nf_linear_backward(c->x, c->in, c->p, c->wy, c->rows, c->in, c->out, c->dp, c->dp + c->in * c->out,
                                c->dx, c->in, 0, err);
        break;
    case GC_EMB: nf_embedding_backward(c->dp, c->out, c->idx, c->rows, c->wy, c->out); break;
    case GC_RELU: nf_relu_backward(c->y, c->wy, c->dx, (size_t)c->ny); break;
    case GC_LRELU: nf_leaky_relu_backward(c->x, c->wy, c->dx, (size_t)c->ny, 0.2f); break;
    case GC_SIGMOID: nf_sigmoid_backward(c->y, c->wy, c->dx, (size_t)c->ny); break;
    case GC_DROPOUT: nf_dropout_backward(c->aux, c->wy, c->dx, (size_t)c->ny); break;
    case GC_LN:
        nf_layernorm_backward(c->p, c->aux, c->aux2, c->wy, c->rows, c->out, c->dp, c->dp + c->out, c->dx);
        break;
    case GC_READOUT: nf_readout_backward(c->w, c->den, c->wy, c->B, c->N, c->out, c->dx); break;
    default: {
        int nb = nf_glayer_branches(&c->gl);
        int64_t npl = nf_glayer_nparams(&c->gl);
        const float *Wg = c->p + npl;
        st = nf_glayer_backward(&c->gl, c->p, c->dp, c->B, c->N, c->x, c->o->h_shared, c->adj, c->wy, c->zg, c->dzg,
                                nb * c->out, c->dx, 0, c->ws, err);
        if (!st) st = nf_linear_backward(c->g, c->gd, Wg, c->dzg, c->rows, c->gd, nb * c->out, c->dp + npl,
                                         c->dp + npl + c->gd * nb * c->out, c->dg, c->gd, 0, err);
    }
    }
    return st;
}

static void gc_fill(nf_rng *r, float *x, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * nf_rng_normal(r));
}

/* Compare analytic grad `an` of array `v` (n entries, at most `limit` of them) against central differences. */
static nf_status gc_array(gc_ctx *c, const char *name, float *v, const float *an, int64_t n, int64_t limit, double *num2,
                          double *den2, double *dif2, nf_gradcheck_result *res, nf_err *err)
{
    double eps = c->o->eps > 0 ? c->o->eps : 1e-3;
    int64_t step = n > limit ? n / limit : 1, nbad = 0, nchk = 0;
    for (int64_t i = 0; i < n; i += step) {
        float keep = v[i];
        double Lp, Lm;
        nf_status st;
        v[i] = (float)(keep + eps);
        double hp = (double)v[i] - keep;
        if ((st = gc_forward(c, &Lp, err))) return st;
        v[i] = (float)(keep - eps);
        double hm = keep - (double)v[i];
        if ((st = gc_forward(c, &Lm, err))) return st;
        v[i] = keep;
        double nd = (Lp - Lm) / (hp + hm), a = an[i];
        if (c->o->breakit) a = a * 1.5 + 1e-2;
        double d = fabs(a - nd), m = fmax(fmax(fabs(a), fabs(nd)), 1e-2);
        if (d / m > res->max_rel) res->max_rel = d / m;
        nbad += d / m > 0.05;
        nchk++;
        *num2 += nd * nd;
        *den2 += a * a;
        *dif2 += d * d;
        res->checked++;
    }
    double fb = nchk ? (double)nbad / (double)nchk : 0.0;
    if (fb > res->worst_bad) {
        res->worst_bad = fb;
        snprintf(res->worst, sizeof res->worst, "%s", name);
    }
    return NF_OK;
}

nf_status nf_gradcheck_layer(const nf_gradcheck_opts *o, nf_gradcheck_result *res, nf_err *err)
{
    gc_ctx c;
    memset(&c, 0, sizeof c);
    memset(res, 0, sizeof *res);
    c.o = o;
    c.kind = -1;
    for (int k = 0; gc_names[k]; k++)
        if (o->layer && strcmp(o->layer, gc_names[k]) == 0) c.kind = k;
    if (c.kind < 0)
        return nf_seterr(err, NF_EINVAL, "gradcheck: unknown layer '%s' (linear, embedding, relu, leaky_relu, "
                         "sigmoid, dropout, layernorm, readout, dgf, gat, gat_mh, ensemble)", o->layer ? o->layer : "(null)");
    c.B = o->B > 0 ? o->B : 3;
    c.N = o->N > 0 ? o->N : 5;
    c.in = o->in > 0 ? o->in : 6;
    c.out = o->out > 0 ? o->out : 7;
    c.gd = 5;
    c.rows = c.B * c.N;
    nf_rng r;
    nf_rng_seed(&r, o->seed);
    int64_t nb = 1;
    if (c.kind >= GC_GRAPH) {
        c.gl.kind = (nf_gl_kind)nf_gl_kind_from_name(o->layer);
        c.gl.in = (int)c.in;
        c.gl.out = (int)c.out;
        c.gl.heads = 4;
        c.gl.gat_slope = o->gat_slope > 0 ? o->gat_slope : 0.2f;
        c.gl.quirk_gat_mask_zero = o->quirk_gat_mask_zero;
        nb = nf_glayer_branches(&c.gl);
    }
    switch (c.kind) {
    case GC_LINEAR: c.np = c.in * c.out + c.out; c.nx = c.rows * c.in; c.ny = c.rows * c.out; break;
    case GC_EMB: c.np = c.in * c.out; c.nx = 1; c.ny = c.rows * c.out; break;
    case GC_LN: c.np = 2 * c.out; c.nx = c.rows * c.out; c.ny = c.nx; break;
    case GC_READOUT: c.np = 1; c.nx = c.rows * c.out; c.ny = c.B * c.out; break;
    case GC_RELU: case GC_LRELU: case GC_SIGMOID: case GC_DROPOUT:
        c.np = 1; c.nx = c.rows * c.out; c.ny = c.nx; break;
    default:
        c.np = nf_glayer_nparams(&c.gl) + c.gd * nb * c.out + nb * c.out;
        c.nx = (o->h_shared ? c.N : c.rows) * c.in;
        c.ng = c.rows * c.gd;
        c.ny = c.rows * c.out;
        c.nws = nf_glayer_ws_floats(&c.gl, c.B, c.N);
    }
    int64_t total = 2 * c.np + 2 * c.nx + 2 * c.ng + 3 * c.ny + 2 * c.rows * nb * c.out + c.nws
                    + 2 * c.rows * c.out + c.B * c.N * c.N + c.B * c.N + c.B + c.rows;
    float *mem = calloc((size_t)total, sizeof(float));
    int32_t *idx = calloc((size_t)c.rows, sizeof(int32_t));
    if (!mem || !idx) {
        free(mem);
        free(idx);
        return nf_seterr(err, NF_ENOMEM, "gradcheck: out of memory");
    }
    float *q = mem;
#define TAKE(ptr, n) do { (ptr) = q; q += (n); } while (0)
    TAKE(c.p, c.np); TAKE(c.dp, c.np); TAKE(c.x, c.nx); TAKE(c.dx, c.nx);
    if (c.ng) { TAKE(c.g, c.ng); TAKE(c.dg, c.ng); }
    TAKE(c.y, c.ny); TAKE(c.wy, c.ny); TAKE(c.dy, c.ny);
    TAKE(c.zg, c.rows * nb * c.out); TAKE(c.dzg, c.rows * nb * c.out);
    TAKE(c.ws, c.nws); TAKE(c.aux, c.rows * c.out); TAKE(c.aux2, c.rows * c.out);
    TAKE(c.adj, c.B * c.N * c.N); TAKE(c.w, c.B * c.N); TAKE(c.den, c.B);
#undef TAKE
    c.idx = idx;
    gc_fill(&r, c.p, c.np, 0.5);
    gc_fill(&r, c.x, c.nx, 1.0);
    if (c.g) gc_fill(&r, c.g, c.ng, 1.0);
    gc_fill(&r, c.wy, c.ny, 1.0);
    if (c.kind == GC_LN) for (int64_t k = 0; k < c.out; k++) c.p[k] += 1.0f;
    for (int64_t k = 0; k < c.rows; k++) idx[k] = (int32_t)nf_rng_below(&r, (uint64_t)c.in);
    /* a random DAG (edges i→j, i<j, half of them) with one isolated node per graph */
    for (int64_t b = 0; b < c.B; b++) {
        int64_t cnt = 0;
        for (int64_t i = 0; i < c.N; i++) {
            for (int64_t j = i + 1; j < c.N; j++)
                if (i != 1 && j != 1) c.adj[(b * c.N + i) * c.N + j] = nf_rng_uniform(&r) < 0.5 ? 1.0f : 0.0f;
            c.w[b * c.N + i] = nf_rng_uniform(&r) < 0.7 ? 1.0f : 0.0f;
            cnt += c.w[b * c.N + i] != 0.0f;
        }
        c.den[b] = (float)(cnt ? cnt : 1);
    }
    if (c.kind == GC_RELU || c.kind == GC_LRELU)   /* keep inputs away from the kink */
        for (int64_t k = 0; k < c.nx; k++) if (fabsf(c.x[k]) < 0.1f) c.x[k] = c.x[k] < 0 ? -0.1f : 0.1f;

    nf_status st = gc_backward(&c, err);
    double num2 = 0, den2 = 0, dif2 = 0;
    if (!st) {
        if (c.kind == GC_LINEAR || c.kind == GC_EMB || c.kind == GC_LN || c.kind >= GC_GRAPH) {
            float *an = malloc((size_t)c.np * sizeof(float));
            if (!an) st = nf_seterr(err, NF_ENOMEM, "gradcheck: out of memory");
            else {
                memcpy(an, c.dp, (size_t)c.np * sizeof(float));
                st = gc_array(&c, "params", c.p, an, c.np, 400, &num2, &den2, &dif2, res, err);
                free(an);
            }
        }
    }
    if (!st && c.kind != GC_EMB) {
        float *an = malloc((size_t)(c.nx + c.ng) * sizeof(float));
        if (!an) st = nf_seterr(err, NF_ENOMEM, "gradcheck: out of memory");
        else {
            memcpy(an, c.dx, (size_t)c.nx * sizeof(float));
            if (c.ng) memcpy(an + c.nx, c.dg, (size_t)c.ng * sizeof(float));
            st = gc_array(&c, "input", c.x, an, c.nx, 200, &num2, &den2, &dif2, res, err);
            if (!st && c.ng) st = gc_array(&c, "gates", c.g, an + c.nx, c.ng, 200, &num2, &den2, &dif2, res, err);
            free(an);
        }
    }
    res->rel = sqrt(dif2) / (sqrt(num2) + sqrt(den2) + 1e-30);
    free(mem);
    free(idx);
    return st;
}
