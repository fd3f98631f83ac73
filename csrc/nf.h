/* nf.h — the Lua-free core of nasflat: status codes, errors, float32 tensors,
 * an explicit random-number object and the BLAS wrapper.
 *
 * Conventions (every core file follows them):
 *  - functions that can fail return nf_status and fill an nf_err (may be NULL);
 *  - the core never aborts, exits or longjmps, and owns no global mutable state;
 *  - the caller owns outputs and scratch buffers unless a function says it allocates;
 *  - randomness only through an nf_rng passed by the caller.
 */
#ifndef NF_H
#define NF_H

#include <stddef.h>
#include <stdint.h>

#define NF_VERSION "0.1.0"

typedef enum {
    NF_OK = 0,
    NF_EINVAL,   /* bad argument: programmer error */
    NF_ENOMEM,   /* allocation failed */
    NF_EIO,      /* file could not be opened/read/written */
    NF_EFORMAT,  /* malformed input file or string */
    NF_ERANGE,   /* index or value out of range */
    NF_ESTATE    /* object in the wrong state (freed, not trained...) */
} nf_status;

typedef struct {
    nf_status code;
    char msg[512];
} nf_err;

/* Fill err (if non-NULL) with code and a printf-style message; returns code. */
nf_status nf_seterr(nf_err *err, nf_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *nf_status_name(nf_status s);

/* ---------------------------------------------------------------- tensors */
#define NF_MAXDIM 4

typedef struct {
    float *data;              /* contiguous, row-major */
    int ndim;                 /* 0..NF_MAXDIM (0 = scalar, size 1) */
    int64_t shape[NF_MAXDIM];
    int64_t size;             /* product of shape */
    int owns;                 /* 1: data was allocated by nf_tensor_init */
} nf_tensor;

/* Allocate a zero-filled tensor. shape entries must be >= 0. */
nf_status nf_tensor_init(nf_tensor *t, int ndim, const int64_t *shape, nf_err *err);
/* A view (no ownership) over rows [r0, r1) of the first dimension of src. */
nf_status nf_tensor_rows(const nf_tensor *src, int64_t r0, int64_t r1, nf_tensor *view, nf_err *err);
/* Reshape in place (same size). */
nf_status nf_tensor_reshape(nf_tensor *t, int ndim, const int64_t *shape, nf_err *err);
void nf_tensor_free(nf_tensor *t);   /* idempotent */
int nf_tensor_same_shape(const nf_tensor *a, const nf_tensor *b);

/* Element-wise and reductions over raw float arrays of length n (no shape checks). */
void nf_fill(float *x, size_t n, float v);
void nf_copy(float *dst, const float *src, size_t n);
void nf_axpy(float *y, float a, const float *x, size_t n);          /* y += a*x */
void nf_scale(float *x, float a, size_t n);
void nf_affine(float *x, float a, float b, size_t n);   /* x = a*x + b */
void nf_exp(float *x, size_t n);
void nf_clamp(float *x, float lo, float hi, size_t n);   /* NaN stays NaN */
void nf_log(float *x, size_t n);                        /* ln; NaN for x < 0, -inf for 0 (IEEE) */
void nf_add(float *out, const float *a, const float *b, size_t n);  /* out = a+b */
void nf_mul(float *out, const float *a, const float *b, size_t n);  /* out = a*b */
double nf_sum(const float *x, size_t n);
double nf_dot(const float *a, const float *b, size_t n);
float nf_max(const float *x, size_t n);   /* n>0 */
float nf_min(const float *x, size_t n);   /* n>0 */
/* out[r*cols+c] += bias[c] */
void nf_add_rowvec(float *out, const float *bias, size_t rows, size_t cols);
/* out[c] = sum_r x[r*cols+c] (overwrites) */
void nf_sum_rows(float *out, const float *x, size_t rows, size_t cols);

/* ------------------------------------------------------------------ RNG
 * xoshiro256** seeded with splitmix64: the same seed gives the same stream on
 * every platform. Doubles use the top 53 bits; normals use Box–Muller on doubles. */
typedef struct {
    uint64_t s[4];
    int has_spare;
    double spare;
} nf_rng;

void nf_rng_seed(nf_rng *r, uint64_t seed);
uint64_t nf_rng_next(nf_rng *r);                   /* 64 random bits */
double nf_rng_uniform(nf_rng *r);                  /* [0,1) */
uint64_t nf_rng_below(nf_rng *r, uint64_t n);      /* unbiased in [0,n), n>0 */
double nf_rng_normal(nf_rng *r);                   /* N(0,1) */
void nf_rng_permutation(nf_rng *r, int64_t *out, int64_t n);       /* 0..n-1 shuffled */
void nf_rng_shuffle(nf_rng *r, int64_t *x, int64_t n);
/* k distinct values from [0,n), in draw order; k<=n else NF_EINVAL.
 * scratch: NULL (allocates internally) or n int64s. */
nf_status nf_rng_sample(nf_rng *r, int64_t n, int64_t k, int64_t *out, int64_t *scratch, nf_err *err);
/* A child seed derived from this stream (for per-trial seeds). */
uint64_t nf_rng_derive(uint64_t seed, uint64_t stream);

/* ------------------------------------------------------------------ BLAS
 * All OpenBLAS calls go through nf_blas.c; shapes are checked there.
 * Row-major. C = alpha * op(A) * op(B) + beta * C, op(A) is M×K, op(B) is K×N. */
typedef enum { NF_NOTRANS = 0, NF_TRANS = 1 } nf_trans;

nf_status nf_gemm(nf_trans ta, nf_trans tb, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                  float beta, float *C, int64_t ldc, nf_err *err);
/* batch independent products with fixed strides between matrices. */
nf_status nf_gemm_batched(nf_trans ta, nf_trans tb, int64_t M, int64_t N, int64_t K,
                          float alpha, const float *A, int64_t lda, int64_t strideA,
                          const float *B, int64_t ldb, int64_t strideB,
                          float beta, float *C, int64_t ldc, int64_t strideC,
                          int64_t batch, nf_err *err);
/* Tensor-level product: C(M×N) = op(A) op(B) for 2-D tensors, shapes checked. */
nf_status nf_matmul(const nf_tensor *A, nf_trans ta, const nf_tensor *B, nf_trans tb,
                    nf_tensor *C, float beta, nf_err *err);
/* Solve L X = B in place for X (double): L lower-triangular p×p (row-major, non-unit diagonal; the upper triangle
 * is not read), B p×n row-major. p, n >= 0. */
void nf_dtrsm_lower(int64_t p, int64_t n, const double *L, double *B);
void nf_blas_set_threads(int n);   /* OpenBLAS's own setting; n>=1 */
int nf_blas_get_threads(void);

#endif
