/* nf_optim.c — Adam/AdamW, cosine annealing, gradient clipping (nf_optim.h). */
#include <math.h>
#include "nf_optim.h"

void nf_adam_step(float *p, const float *g, float *m, float *v, int64_t n, int64_t t, const nf_adam_opts *o)
{
    const float beta1 = o->beta1, beta2 = o->beta2, eps = o->eps, lr = o->lr;
    const float bc1 = 1.0f - powf(beta1, (float)t), bc2 = 1.0f - powf(beta2, (float)t);
    const float decay = 1.0f - lr * o->weight_decay;   /* exactly 1 without weight decay: p·1 = p */
    if (o->form == NF_ADAM_MOMENTS) {
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i];
            m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
            v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
            p[i] = p[i] * decay - lr * (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps);
        }
        return;
    }
    const float step = lr / bc1, rb2 = 1.0f / sqrtf(bc2);
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) * rb2 + eps);
    }
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
