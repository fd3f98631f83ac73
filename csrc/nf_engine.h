/* nf_engine.h — a small inference engine for the real networks of the two spaces (issue 13).
 *
 * nf_engine_new builds, from an architecture code, the network the space's cost model counts
 * (nf_space.h: NB201's CIFAR network on cifar10, FBNet's CIFAR-100 network of HW-NAS-Bench) with
 * seeded random weights, plans every buffer once (activations, im2col scratch, weights) and then
 * runs it any number of times without allocating. Layout NCHW, float32.
 *
 * What runs (in the order of nf_space_layers, one engine op per layer record):
 *  - dense and grouped convolutions: im2col (with the NB201 input ReLU applied while copying; a 1×1
 *    stride-1 conv without input ReLU reads its input directly) and one OpenBLAS sgemm per image and
 *    group (nf_gemm); batch-norm folded into the weights and a bias; the output ReLU in the epilogue;
 *  - depthwise convolutions: direct loops (bias and ReLU fused);
 *  - average pooling (NB201 3×3, stride 1, padding 1, count_include_pad=False; 2×2 stride 2 in the
 *    reduction shortcut), global average pooling, the classifier (one sgemm over the batch);
 *  - NB201 zero ops (x * 0, as the reference runs them), skip ops (no op: the edge aliases its input),
 *    node sums (ADD), FBNet channel shuffles (g = 2), the final BN + ReLU of NB201.
 * Weights before folding (conv weight, BN gamma/beta/mean/var with eps 1e-5, linear weight and bias)
 * are drawn from an nf_rng seeded by the caller; nf_engine_export writes them, the input and the
 * output to a file that tools/torch_check.py reads to rebuild the network in PyTorch.
 *
 * Counting: every op carries its own FLOPs and parameter count, computed from the shapes the engine
 * executes with the space's conventions (nf_space.h), so a test can compare them with
 * nf_space_layers / nf_space_cost layer by layer.
 *
 * Threads: the sgemms use OpenBLAS's thread setting (nf_blas_set_threads); the engine's own loops
 * run on the calling thread. An engine is not safe to run from two threads at once.
 */
#ifndef NF_ENGINE_H
#define NF_ENGINE_H

#include <stdint.h>
#include "nf.h"
#include "nf_space.h"

typedef struct nf_engine nf_engine;

typedef struct {
    int batch;          /* images per run, >= 1 */
    uint64_t seed;      /* weights and input */
    int dw_gemm;        /* 1: depthwise convs through im2col + one sgemm per channel (for comparison) */
    int count_only;     /* 1: build the op list and counts only (no buffers, no weights; cannot run) */
} nf_engine_opts;

/* Build the network of code (validated) in space s. *out is NULL on failure. */
nf_status nf_engine_new(nf_space_id s, const uint8_t *code, const nf_engine_opts *opts, nf_engine **out, nf_err *err);
void nf_engine_free(nf_engine *e);   /* NULL ok */

/* One forward pass over the engine's input buffer (batch × 3 × 32 × 32); no allocation. */
nf_status nf_engine_run(nf_engine *e, nf_err *err);
/* The same, adding each op's wall time (seconds) to op_seconds[0 .. n_ops). */
nf_status nf_engine_run_profiled(nf_engine *e, double *op_seconds, nf_err *err);
/* warmup untimed runs, then repeats timed runs; ms[i] = wall milliseconds of run i (repeats entries); cpu_ms
 * (NULL: not measured) = the process's CPU milliseconds of run i (all threads; on a machine shared with other
 * work it excludes the time the process waited for a core, so it is far less noisy than wall time, but it is
 * not latency: with several BLAS threads it adds their times). */
nf_status nf_engine_bench(nf_engine *e, int warmup, int repeats, double *ms, double *cpu_ms, nf_err *err);

float *nf_engine_input(nf_engine *e);              /* batch × 3 × 32 × 32, filled from the seed */
const float *nf_engine_output(const nf_engine *e); /* batch × classes (valid after a run) */
int nf_engine_classes(const nf_engine *e);
int nf_engine_batch(const nf_engine *e);
int nf_engine_n_ops(const nf_engine *e);
/* Op i as a layer record (kind, shapes, kernel/stride/groups, arity, flops and params as the engine
 * counts them per image; in/out bytes per image). NULL if out of range. */
const nf_layer *nf_engine_op(const nf_engine *e, int i);
double nf_engine_flops(const nf_engine *e);        /* per image, the space's convention */
double nf_engine_params(const nf_engine *e);
double nf_engine_conv_macs(const nf_engine *e);    /* multiply-adds of all CONV and DWCONV ops, per image */
size_t nf_engine_bytes(const nf_engine *e);        /* memory planned (weights + activations + scratch) */

/* Write the unfolded weights, the input and the output of the last run to path (format in
 * tools/torch_check.py): a text header line, then little-endian float32 arrays. */
nf_status nf_engine_export(const nf_engine *e, const char *path, nf_err *err);

/* OpenBLAS's configuration string ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... SkylakeX MAX_THREADS=64"); in nf_blas.c. */
const char *nf_blas_config(void);

#endif
