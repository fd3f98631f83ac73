/* test_engine.c — the inference engine: its executed ops and counts equal the space's per-layer breakdown and
 * cost for every NB201 cell and 2,000 random FBNet architectures; the zero op and dead branches; batch rows
 * equal single runs; depthwise direct equals depthwise through sgemm; error paths. Deterministic. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "nf_engine.h"

/* Compare the engine's ops with nf_space_layers and its totals with nf_space_cost; returns mismatches. */
static int compare(nf_space_id s, const uint8_t *code, int verbose)
{
    nf_engine_opts o = {1, 0, 0, 1};
    nf_engine *e = NULL;
    nf_err err;
    if (nf_engine_new(s, code, &o, &e, &err)) {
        fprintf(stderr, "engine_new: %s\n", err.msg);
        return 1;
    }
    nf_layer L[NF_SPACE_MAX_LAYERS];
    int n = 0, bad = 0;
    if (nf_space_layers(s, code, 0, L, NF_SPACE_MAX_LAYERS, &n, &err)) {
        nf_engine_free(e);
        return 1;
    }
    if (n != nf_engine_n_ops(e)) {
        if (verbose) fprintf(stderr, "op count %d vs layers %d\n", nf_engine_n_ops(e), n);
        bad++;
    }
    for (int i = 0; i < n && i < nf_engine_n_ops(e); i++) {
        const nf_layer *a = nf_engine_op(e, i), *b = &L[i];
        int same = a->kind == b->kind && a->cin == b->cin && a->cout == b->cout && a->hin == b->hin &&
                   a->hout == b->hout && a->kernel == b->kernel && a->stride == b->stride && a->groups == b->groups &&
                   a->arity == b->arity && a->relu_in == b->relu_in && a->bn == b->bn && a->relu_out == b->relu_out &&
                   a->flops == b->flops && a->params == b->params && a->in_bytes == b->in_bytes &&
                   a->out_bytes == b->out_bytes;
        if (!same) {
            bad++;
            if (verbose)
                fprintf(stderr, "op %d: engine %s %d->%d %d->%d k%d s%d g%d flops %.0f params %.0f | layers %s %d->%d %d->%d k%d s%d "
                                "g%d flops %.0f params %.0f\n",
                        i, nf_layer_kind_name(a->kind), a->cin, a->cout, a->hin, a->hout, a->kernel, a->stride, a->groups,
                        a->flops, a->params, nf_layer_kind_name(b->kind), b->cin, b->cout, b->hin, b->hout, b->kernel,
                        b->stride, b->groups, b->flops, b->params);
        }
    }
    double pmb, fm;
    nf_space_cost(s, code, 0, &pmb, &fm, NULL);
    if (fabs(nf_engine_flops(e) - fm * 1e6) > 1e-6 * fm * 1e6 || fabs(nf_engine_params(e) - pmb * 1e6) > 1e-6 * pmb * 1e6) {
        bad++;
        if (verbose) fprintf(stderr, "totals: flops %.0f vs %.0f, params %.0f vs %.0f\n", nf_engine_flops(e), fm * 1e6,
                             nf_engine_params(e), pmb * 1e6);
    }
    nf_engine_free(e);
    return bad;
}

static void test_nb201_all_counts(void)
{
    int bad_archs = 0;
    for (int64_t i = 0; i < NF_NB201_SIZE; i++) {
        uint8_t code[6];
        nf_space_from_index(NF_SPACE_NB201, i, code, NULL);
        if (compare(NF_SPACE_NB201, code, bad_archs < 2)) bad_archs++;
    }
    CHECK(bad_archs == 0);
}

static void test_fbnet_random_counts(void)
{
    nf_rng r;
    nf_rng_seed(&r, 13);
    uint8_t codes[2000 * NF_FBNET_LAYERS];
    CHECK(nf_space_sample(NF_SPACE_FBNET, &r, 2000, codes, NULL) == NF_OK);
    int bad_archs = 0;
    for (int i = 0; i < 2000; i++)
        if (compare(NF_SPACE_FBNET, codes + i * NF_FBNET_LAYERS, bad_archs < 2)) bad_archs++;
    /* every block in every layer at least once: the all-same architectures */
    for (int b = 0; b < NF_FBNET_BLOCKS; b++) {
        uint8_t code[NF_FBNET_LAYERS];
        memset(code, b, sizeof code);
        if (compare(NF_SPACE_FBNET, code, 1)) bad_archs++;
    }
    CHECK(bad_archs == 0);
}

static nf_engine *build(nf_space_id s, const char *arch, int batch, uint64_t seed, int dw_gemm)
{
    uint8_t code[NF_SPACE_MAX_CODE];
    nf_err err;
    if (nf_space_parse(s, arch, code, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    nf_engine_opts o = {batch, seed, dw_gemm, 0};
    nf_engine *e = NULL;
    if (nf_engine_new(s, code, &o, &e, &err)) fprintf(stderr, "%s\n", err.msg);
    return e;
}

static int finite_all(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* All-none cells: every cell outputs 0, so the logits do not depend on the input. A dead branch (a conv whose
 * node never reaches the cell output) runs but does not change the logits. */
static void test_zero_and_dead(void)
{
    nf_engine *e = build(NF_SPACE_NB201, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 1, 3, 0);
    CHECK(e != NULL);
    if (!e) return;
    CHECK(nf_engine_run(e, NULL) == NF_OK);
    float out1[10], out2[10];
    memcpy(out1, nf_engine_output(e), sizeof out1);
    float *x = nf_engine_input(e);
    for (int i = 0; i < 3 * 32 * 32; i++) x[i] = (float)(i % 7) - 3.0f;
    CHECK(nf_engine_run(e, NULL) == NF_OK);
    memcpy(out2, nf_engine_output(e), sizeof out2);
    CHECK(memcmp(out1, out2, sizeof out1) == 0);
    nf_engine_free(e);

    /* node 1 = conv3x3(n0) feeds only none edges: a dead branch. It runs, but the logits equal those of the cell
     * without it (weights are drawn per role, so everything else has the same weights): bit for bit, since the
     * cell output is n0 + 0 + 0 either way. */
    e = build(NF_SPACE_NB201, "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", 1, 3, 0);
    nf_engine *f = build(NF_SPACE_NB201, "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", 1, 3, 0);
    CHECK(e && f);
    if (!e || !f) { nf_engine_free(e); nf_engine_free(f); return; }
    CHECK(nf_engine_run(e, NULL) == NF_OK);
    CHECK(nf_engine_run(f, NULL) == NF_OK);
    CHECK(finite_all(nf_engine_output(e), 10));
    CHECK(memcmp(nf_engine_output(e), nf_engine_output(f), sizeof out1) == 0);
    CHECK(nf_engine_n_ops(e) == nf_engine_n_ops(f) + 0);   /* conv replaces a zero op: same op count */
    CHECK(nf_engine_flops(e) > nf_engine_flops(f));
    /* a live conv changes them */
    nf_engine *g = build(NF_SPACE_NB201, "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|", 1, 3, 0);
    CHECK(g != NULL);
    if (g) {
        CHECK(nf_engine_run(g, NULL) == NF_OK);
        CHECK(memcmp(nf_engine_output(e), nf_engine_output(g), sizeof out1) != 0);
    }
    nf_engine_free(g);
    nf_engine_free(f);
    nf_engine_free(e);
}

/* Row 0 of a batch-3 run equals a batch-1 run with the same seed (same weights, same first image). */
static void test_batch_rows(void)
{
    const char *archs[2][2] = {
        {"|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|", NULL},
        {"7-1-5-3-8-2-0-4-6-1-8-8-3-2-5-7-0-6-4-8-1-2", NULL},
    };
    for (int s = 0; s < 2; s++) {
        nf_engine *a = build((nf_space_id)s, archs[s][0], 1, 11, 0), *b = build((nf_space_id)s, archs[s][0], 3, 11, 0);
        CHECK(a && b);
        if (!a || !b) { nf_engine_free(a); nf_engine_free(b); continue; }
        CHECK(nf_engine_run(a, NULL) == NF_OK);
        CHECK(nf_engine_run(b, NULL) == NF_OK);
        int K = nf_engine_classes(a);
        double md = 0, mx = 0;
        for (int k = 0; k < K; k++) {
            double d = fabs(nf_engine_output(a)[k] - nf_engine_output(b)[k]);
            if (d > md) md = d;
            if (fabs(nf_engine_output(a)[k]) > mx) mx = fabs(nf_engine_output(a)[k]);
        }
        CHECK(finite_all(nf_engine_output(b), 3 * K));
        CHECK(mx > 0);
        CHECK(md <= 1e-4 * (mx + 1));
        nf_engine_free(a);
        nf_engine_free(b);
    }
}

/* Depthwise direct and through im2col + sgemm agree. */
static void test_dw_paths(void)
{
    const char *arch = "7-1-5-3-8-2-0-4-6-1-8-8-3-2-5-7-0-6-4-8-1-2";
    nf_engine *a = build(NF_SPACE_FBNET, arch, 2, 5, 0), *b = build(NF_SPACE_FBNET, arch, 2, 5, 1);
    CHECK(a && b);
    if (a && b) {
        CHECK(nf_engine_run(a, NULL) == NF_OK);
        CHECK(nf_engine_run(b, NULL) == NF_OK);
        double md = 0, mx = 0;
        for (int k = 0; k < 200; k++) {
            double d = fabs(nf_engine_output(a)[k] - nf_engine_output(b)[k]);
            if (d > md) md = d;
            if (fabs(nf_engine_output(a)[k]) > mx) mx = fabs(nf_engine_output(a)[k]);
        }
        CHECK(mx > 0);
        CHECK(md <= 1e-4 * (mx + 1));
    }
    nf_engine_free(a);
    nf_engine_free(b);
}

static void test_errors(void)
{
    nf_err err;
    nf_engine *e = (nf_engine *)1;
    uint8_t bad[6] = {0, 1, 2, 3, 4, 5};
    CHECK(nf_engine_new(NF_SPACE_NB201, bad, NULL, &e, &err) == NF_EINVAL);
    CHECK(e == NULL);
    uint8_t ok[6] = {0, 1, 2, 3, 4, 4};
    nf_engine_opts o = {0, 0, 0, 0};
    CHECK(nf_engine_new(NF_SPACE_NB201, ok, &o, &e, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "batch must be in 1..4096") != NULL);
    o.batch = 1;
    o.count_only = 1;
    CHECK(nf_engine_new(NF_SPACE_NB201, ok, &o, &e, &err) == NF_OK);
    CHECK(nf_engine_run(e, &err) == NF_ESTATE);
    CHECK(nf_engine_input(e) == NULL);
    nf_engine_free(e);
    o.count_only = 0;
    CHECK(nf_engine_new(NF_SPACE_NB201, ok, &o, &e, &err) == NF_OK);
    double ms[2], cpu[2];
    CHECK(nf_engine_bench(e, 0, 0, ms, NULL, &err) == NF_EINVAL);
    CHECK(nf_engine_bench(e, 1, 2, ms, NULL, &err) == NF_OK);
    CHECK(ms[0] > 0 && ms[1] > 0);
    CHECK(nf_engine_bench(e, 0, 2, ms, cpu, &err) == NF_OK);
    CHECK(cpu[0] > 0 && cpu[1] > 0);
    CHECK(nf_engine_export(e, "/nonexistent-dir/x.bin", &err) == NF_EIO);
    CHECK(strstr(err.msg, "cannot open for writing") != NULL);
    nf_engine_free(e);
    nf_engine_free(NULL);
}

int main(void)
{
    RUN(test_nb201_all_counts);
    RUN(test_fbnet_random_counts);
    RUN(test_zero_and_dead);
    RUN(test_batch_rows);
    RUN(test_dw_paths);
    RUN(test_errors);
    return CT_DONE();
}
