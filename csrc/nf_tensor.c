/* nf_tensor.c — float32 tensors and the element-wise kernels over raw arrays. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nf.h"

static nf_status shape_size(int ndim, const int64_t *shape, int64_t *size, nf_err *err)
{
    int64_t n = 1;
    if (ndim < 0 || ndim > NF_MAXDIM)
        return nf_seterr(err, NF_EINVAL, "tensor: %d dimensions (at most %d)", ndim, NF_MAXDIM);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return nf_seterr(err, NF_EINVAL, "tensor: dimension %d is negative (%lld)", i + 1, (long long)shape[i]);
        if (shape[i] && n > INT64_MAX / 4 / shape[i])
            return nf_seterr(err, NF_EINVAL, "tensor: shape too large");
        n *= shape[i];
    }
    *size = n;
    return NF_OK;
}

nf_status nf_tensor_init(nf_tensor *t, int ndim, const int64_t *shape, nf_err *err)
{
    int64_t n;
    nf_status st = shape_size(ndim, shape, &n, err);
    memset(t, 0, sizeof *t);
    if (st) return st;
    t->data = calloc(n ? (size_t)n : 1, sizeof(float));
    if (!t->data) return nf_seterr(err, NF_ENOMEM, "tensor: cannot allocate %lld floats", (long long)n);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->size = n;
    t->owns = 1;
    return NF_OK;
}

nf_status nf_tensor_rows(const nf_tensor *src, int64_t r0, int64_t r1, nf_tensor *view, nf_err *err)
{
    if (src->ndim < 1) return nf_seterr(err, NF_EINVAL, "tensor: cannot slice rows of a scalar");
    if (r0 < 0 || r1 < r0 || r1 > src->shape[0])
        return nf_seterr(err, NF_ERANGE, "tensor: rows [%lld, %lld) out of range (0..%lld)",
                         (long long)r0, (long long)r1, (long long)src->shape[0]);
    int64_t row = src->shape[0] ? src->size / src->shape[0] : 0;
    *view = *src;
    view->owns = 0;
    view->shape[0] = r1 - r0;
    view->size = row * (r1 - r0);
    view->data = src->data + row * r0;
    return NF_OK;
}

nf_status nf_tensor_reshape(nf_tensor *t, int ndim, const int64_t *shape, nf_err *err)
{
    int64_t n;
    nf_status st = shape_size(ndim, shape, &n, err);
    if (st) return st;
    if (n != t->size)
        return nf_seterr(err, NF_EINVAL, "tensor: cannot reshape %lld elements into %lld", (long long)t->size, (long long)n);
    t->ndim = ndim;
    for (int i = 0; i < NF_MAXDIM; i++) t->shape[i] = i < ndim ? shape[i] : 0;
    return NF_OK;
}

void nf_tensor_free(nf_tensor *t)
{
    if (!t) return;
    if (t->owns) free(t->data);
    memset(t, 0, sizeof *t);
}

int nf_tensor_same_shape(const nf_tensor *a, const nf_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

void nf_fill(float *x, size_t n, float v) { for (size_t i = 0; i < n; i++) x[i] = v; }
void nf_copy(float *dst, const float *src, size_t n) { if (n) memmove(dst, src, n * sizeof *dst); }
void nf_axpy(float *y, float a, const float *x, size_t n) { for (size_t i = 0; i < n; i++) y[i] += a * x[i]; }
void nf_scale(float *x, float a, size_t n) { for (size_t i = 0; i < n; i++) x[i] *= a; }
void nf_affine(float *x, float a, float b, size_t n) { for (size_t i = 0; i < n; i++) x[i] = a * x[i] + b; }
void nf_clamp(float *x, float lo, float hi, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}
void nf_exp(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = expf(x[i]); }
void nf_log(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = logf(x[i]); }
void nf_add(float *out, const float *a, const float *b, size_t n) { for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i]; }
void nf_mul(float *out, const float *a, const float *b, size_t n) { for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i]; }

double nf_sum(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

double nf_dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

float nf_max(const float *x, size_t n)
{
    float m = x[0];
    for (size_t i = 1; i < n; i++) if (x[i] > m) m = x[i];
    return m;
}

float nf_min(const float *x, size_t n)
{
    float m = x[0];
    for (size_t i = 1; i < n; i++) if (x[i] < m) m = x[i];
    return m;
}

void nf_add_rowvec(float *out, const float *bias, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) out[r * cols + c] += bias[c];
}

void nf_sum_rows(float *out, const float *x, size_t rows, size_t cols)
{
    for (size_t c = 0; c < cols; c++) out[c] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) out[c] += x[r * cols + c];
}
