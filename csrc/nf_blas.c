/* nf_blas.c — the one file that calls OpenBLAS. Shapes are checked here. */
#include <cblas.h>
#include "nf.h"

/* OpenBLAS's thread controls (declared in its cblas.h, repeated for other BLAS headers). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static nf_status check_ld(const char *name, int64_t rows, int64_t cols, int64_t ld, nf_err *err)
{
    (void)rows;
    if (ld < (cols > 1 ? cols : 1))
        return nf_seterr(err, NF_EINVAL, "gemm: leading dimension of %s is %lld, needs >= %lld",
                         name, (long long)ld, (long long)cols);
    return NF_OK;
}

nf_status nf_gemm(nf_trans ta, nf_trans tb, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                  float beta, float *C, int64_t ldc, nf_err *err)
{
    nf_status st;
    if (M < 0 || N < 0 || K < 0)
        return nf_seterr(err, NF_EINVAL, "gemm: negative size %lldx%lldx%lld", (long long)M, (long long)N, (long long)K);
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return nf_seterr(err, NF_EINVAL, "gemm: size too large for BLAS");
    /* stored shapes: A is M×K (or K×M when transposed), B is K×N (or N×K). */
    if ((st = check_ld("A", ta ? K : M, ta ? M : K, lda, err))) return st;
    if ((st = check_ld("B", tb ? N : K, tb ? K : N, ldb, err))) return st;
    if ((st = check_ld("C", M, N, ldc, err))) return st;
    if (M == 0 || N == 0) return NF_OK;
    if (K == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return NF_OK;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return NF_OK;
}

nf_status nf_gemm_batched(nf_trans ta, nf_trans tb, int64_t M, int64_t N, int64_t K,
                          float alpha, const float *A, int64_t lda, int64_t strideA,
                          const float *B, int64_t ldb, int64_t strideB,
                          float beta, float *C, int64_t ldc, int64_t strideC,
                          int64_t batch, nf_err *err)
{
    if (batch < 0) return nf_seterr(err, NF_EINVAL, "gemm_batched: negative batch %lld", (long long)batch);
    for (int64_t b = 0; b < batch; b++) {
        nf_status st = nf_gemm(ta, tb, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb,
                               beta, C + b * strideC, ldc, err);
        if (st) return st;
    }
    return NF_OK;
}

nf_status nf_matmul(const nf_tensor *A, nf_trans ta, const nf_tensor *B, nf_trans tb,
                    nf_tensor *C, float beta, nf_err *err)
{
    if (A->ndim != 2 || B->ndim != 2 || C->ndim != 2)
        return nf_seterr(err, NF_EINVAL, "matmul: expects 2-D tensors (got %d, %d, %d dimensions)", A->ndim, B->ndim, C->ndim);
    int64_t M = ta ? A->shape[1] : A->shape[0], K = ta ? A->shape[0] : A->shape[1];
    int64_t K2 = tb ? B->shape[1] : B->shape[0], N = tb ? B->shape[0] : B->shape[1];
    if (K != K2)
        return nf_seterr(err, NF_EINVAL, "matmul: inner dimensions differ (%lld vs %lld)", (long long)K, (long long)K2);
    if (C->shape[0] != M || C->shape[1] != N)
        return nf_seterr(err, NF_EINVAL, "matmul: output is %lldx%lld, expected %lldx%lld",
                         (long long)C->shape[0], (long long)C->shape[1], (long long)M, (long long)N);
    return nf_gemm(ta, tb, M, N, K, 1.0f, A->data, A->shape[1], B->data, B->shape[1], beta, C->data, N, err);
}

void nf_dtrsm_lower(int64_t p, int64_t n, const double *L, double *B)
{
    if (p <= 0 || n <= 0) return;
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (blasint)p, (blasint)n, 1.0, L,
                (blasint)p, B, (blasint)n);
}

void nf_blas_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }
int nf_blas_get_threads(void) { return openblas_get_num_threads(); }

/* OpenBLAS's build configuration (version, target, threading), recorded beside measurements (nf_engine.h). */
char *openblas_get_config(void);
const char *nf_blas_config(void);   /* declared for callers in nf_engine.h */
const char *nf_blas_config(void)
{
    const char *s = openblas_get_config();
    return s ? s : "unknown";
}
