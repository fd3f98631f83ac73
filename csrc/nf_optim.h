/* nf_optim.h — optimisation primitives shared by the predictor (nf_model.c, nf_train.c) and the graph
 * autoencoder (nf_vae.c): the one Adam/AdamW step, cosine annealing, gradient-norm clipping.
 * Plain functions over caller-owned float arrays; they sit below every model in the layering. */
#ifndef NF_OPTIM_H
#define NF_OPTIM_H

#include "nf.h"

/* How the bias corrections enter the update. Both compute the same Adam step
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p·(1 − lr·wd) − lr·m̂ / (√v̂ + ε)
 * with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ), and differ only in float rounding:
 *   NF_ADAM_FOLDED   folds the corrections into the step size and the denominator
 *                    (lr/(1−β1ᵗ) · m / (√v · 1/√(1−β2ᵗ) + ε); llm.c's form; the predictor);
 *   NF_ADAM_MOMENTS  divides the moments (lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε); PyTorch's textbook
 *                    form; the autoencoder, whose cached embeddings were computed with it).
 * Keeping both keeps every saved number bit for bit; one form for both would change the
 * autoencoder's embeddings in their last bits (and so need a new arch2vec cache version). */
typedef enum { NF_ADAM_FOLDED = 0, NF_ADAM_MOMENTS = 1 } nf_adam_form;

typedef struct {
    float lr, beta1, beta2, eps;
    float weight_decay;      /* decoupled (AdamW); 0: plain Adam */
    nf_adam_form form;
} nf_adam_opts;

/* One step on n parameters p from gradients g, moments m and v (updated in place); t >= 1 is the
 * step number (bias correction). */
void nf_adam_step(float *p, const float *g, float *m, float *v, int64_t n, int64_t t, const nf_adam_opts *o);
/* The predictor's AdamW step: nf_adam_step with NF_ADAM_FOLDED. */
void nf_adamw_step(float *p, const float *g, float *m, float *v, int64_t n, int64_t t,
                   float lr, float beta1, float beta2, float eps, float wd);
/* Cosine annealing from lr to lr_min over `epochs`, value at epoch e (0-based). */
double nf_cosine_lr(double lr, double lr_min, int e, int epochs);
/* Scale g so that ‖g‖ <= max_norm (no-op when max_norm <= 0); returns the norm before. */
double nf_clip_grad_norm(float *g, int64_t n, double max_norm);

#endif
