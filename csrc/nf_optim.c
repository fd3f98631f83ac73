/* nf_optim.c — Adam/AdamW, cosine annealing, gradient clipping (nf_optim.h). */
#include <math.h>
#include "nf_optim.h"

/* The element-wise steps, 4 lanes at a time with SSE (every x86-64 has it): GCC will not vectorise
 * sqrtf without -fno-math-errno, and scalar sqrt + division bound the step. Lane by lane the same
 * IEEE operations in the same order as the scalar tail (SSE division and square root are correctly
 * rounded, and there is no FMA): the same bits on every machine and with or without SSE. */
#ifdef __SSE__
#include <xmmintrin.h>
#define NF_ADAM_SSE 1
#endif

static void adam_moments(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                         float beta1, float beta2, float eps, float lr, float bc1, float bc2, float decay)
{
    const float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
    int64_t i = 0;
#ifdef NF_ADAM_SSE
    const __m128 b1 = _mm_set1_ps(beta1), b2 = _mm_set1_ps(beta2), k1 = _mm_set1_ps(c1), k2 = _mm_set1_ps(c2);
    const __m128 ve = _mm_set1_ps(eps), vl = _mm_set1_ps(lr), vb1 = _mm_set1_ps(bc1), vb2 = _mm_set1_ps(bc2);
    const __m128 vd = _mm_set1_ps(decay);
    for (; i + 4 <= n; i += 4) {
        const __m128 gi = _mm_loadu_ps(g + i);
        const __m128 mi = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + i)), _mm_mul_ps(k1, gi));
        const __m128 vi = _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(k2, gi), gi));
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        const __m128 num = _mm_mul_ps(vl, _mm_div_ps(mi, vb1));
        const __m128 den = _mm_add_ps(_mm_sqrt_ps(_mm_div_ps(vi, vb2)), ve);
        _mm_storeu_ps(p + i, _mm_sub_ps(_mm_mul_ps(_mm_loadu_ps(p + i), vd), _mm_div_ps(num, den)));
    }
#endif
    for (; i < n; i++) {
        const float gi = g[i];
        m[i] = beta1 * m[i] + c1 * gi;
        v[i] = beta2 * v[i] + c2 * gi * gi;
        p[i] = p[i] * decay - lr * (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps);
    }
}

static void adam_folded(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                        float beta1, float beta2, float eps, float step, float rb2, float decay)
{
    const float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
    int64_t i = 0;
#ifdef NF_ADAM_SSE
    const __m128 b1 = _mm_set1_ps(beta1), b2 = _mm_set1_ps(beta2), k1 = _mm_set1_ps(c1), k2 = _mm_set1_ps(c2);
    const __m128 ve = _mm_set1_ps(eps), vs = _mm_set1_ps(step), vr = _mm_set1_ps(rb2), vd = _mm_set1_ps(decay);
    for (; i + 4 <= n; i += 4) {
        const __m128 gi = _mm_loadu_ps(g + i);
        const __m128 mi = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + i)), _mm_mul_ps(k1, gi));
        const __m128 vi = _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(k2, gi), gi));
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        const __m128 den = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(vi), vr), ve);
        _mm_storeu_ps(p + i, _mm_sub_ps(_mm_mul_ps(_mm_loadu_ps(p + i), vd), _mm_div_ps(_mm_mul_ps(vs, mi), den)));
    }
#endif
    for (; i < n; i++) {
        const float gi = g[i];
        m[i] = beta1 * m[i] + c1 * gi;
        v[i] = beta2 * v[i] + c2 * gi * gi;
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) * rb2 + eps);
    }
}

void nf_adam_step(float *p, const float *g, float *m, float *v, int64_t n, int64_t t, const nf_adam_opts *o)
{
    const float beta1 = o->beta1, beta2 = o->beta2, eps = o->eps, lr = o->lr;
    const float bc1 = 1.0f - powf(beta1, (float)t), bc2 = 1.0f - powf(beta2, (float)t);
    const float decay = 1.0f - lr * o->weight_decay;   /* exactly 1 without weight decay: p·1 = p */
    if (o->form == NF_ADAM_MOMENTS) {
        adam_moments(p, g, m, v, n, beta1, beta2, eps, lr, bc1, bc2, decay);
        return;
    }
    const float step = lr / bc1, rb2 = 1.0f / sqrtf(bc2);
    adam_folded(p, g, m, v, n, beta1, beta2, eps, step, rb2, decay);
}

void nf_adamw_step(float *p, const float *g, float *m, float *v, int64_t n, int64_t t,
                   float lr, float beta1, float beta2, float eps, float wd)
{
    const nf_adam_opts o = {lr, beta1, beta2, eps, wd, NF_ADAM_FOLDED};
    nf_adam_step(p, g, m, v, n, t, &o);
}

double nf_cosine_lr(double lr, double lr_min, int e, int epochs)
{
    if (epochs <= 1) return lr;
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + cos(3.14159265358979323846 * (double)e / (double)epochs));
}

double nf_clip_grad_norm(float *g, int64_t n, double max_norm)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    double norm = sqrt(s);
    if (max_norm > 0.0 && norm > max_norm) nf_scale(g, (float)(max_norm / (norm + 1e-12)), (size_t)n);
    return norm;
}
