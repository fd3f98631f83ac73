/* test_vae.c — the graph autoencoder: finite-difference gradient checks of every layer and of
 * the whole loss, hand-computed layer values, determinism, learning on small graphs, argument
 * errors; the encoding kernels (one-hot, NB201 paths, scaling) and the encoding cache. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctest.h"
#include "nf_enc.h"
#include "nf_enccache.h"
#include "nf_frame.h"
#include "nf_util.h"
#include "nf_vae.h"

static void test_gradcheck(void)
{
    nf_vae_gradcheck_opts o = {.B = 3, .nodes = 5, .vocab = 4, .hidden = 6, .layers = 2, .latent = 3, .seed = 1, .h = 1e-3};
    nf_vae_gradcheck_result r;
    nf_err err;
    CHECK(nf_vae_gradcheck(&o, &r, &err) == NF_OK);
    CHECK(r.aggregate < 1e-2);
    CHECK(r.adj_decoder < 1e-2);
    CHECK(r.op_decoder < 1e-2);
    CHECK(r.reparam_kl < 1e-2);
    CHECK(r.model < 1e-2);
    CHECK(r.model_dir < 1e-2);
    CHECK(r.checked > 500);
    /* the size used for nb201 graphs (8 nodes, 7 ops, 3 layers): layers entry by entry, the model
     * by directions (single small entries drown in float32 noise at this size) */
    nf_vae_gradcheck_opts big = {.B = 2, .nodes = 8, .vocab = 7, .hidden = 8, .layers = 3, .latent = 6, .seed = 5, .h = 1e-3};
    CHECK(nf_vae_gradcheck(&big, &r, &err) == NF_OK);
    CHECK(r.aggregate < 1e-2 && r.adj_decoder < 1e-2 && r.op_decoder < 1e-2 && r.reparam_kl < 1e-2);
    CHECK(r.model_dir < 2e-2);
    /* a 5% error in the analytic gradient is caught by both model checks */
    o.sabotage = 1;
    CHECK(nf_vae_gradcheck(&o, &r, &err) == NF_OK);
    CHECK(r.model > 0.04);
    CHECK(r.model_dir > 0.04);
}

static void test_layers_by_hand(void)
{
    /* aggregate: 3 nodes, edges 0-1 and 1-2 (symmetric), F = 1, eps = 0.5 */
    const float S[9] = {0, 1, 0, 1, 0, 1, 0, 1, 0}, H[3] = {1, 2, 4};
    float out[3], dH[3], deps = 0;
    nf_vae_aggregate_forward(S, H, 0.5f, 1, 3, 1, out);
    CHECK_NEAR(out[0], 1.5 + 2, 1e-6);
    CHECK_NEAR(out[1], 3 + 1 + 4, 1e-6);
    CHECK_NEAR(out[2], 6 + 2, 1e-6);
    const float dOut[3] = {1, 10, 100};
    nf_vae_aggregate_backward(S, H, dOut, 0.5f, 1, 3, 1, dH, &deps);
    CHECK_NEAR(dH[0], 1.5 + 10, 1e-5);
    CHECK_NEAR(dH[1], 15 + 1 + 100, 1e-5);
    CHECK_NEAR(dH[2], 150 + 10, 1e-5);
    CHECK_NEAR(deps, 1 * 1 + 10 * 2 + 100 * 4, 1e-4);

    /* bilinear decoder with Q = Z (Wa = I): z = (1, 2), edge 0->1 only, c = 0.
     * pair (0,1): logit 2, target 1 -> log(1 + e^-2); pair (1,0): logit 2, target 0 -> 2 + log(1 + e^-2) */
    const float Z[2] = {1, 2}, A[4] = {0, 1, 0, 0};
    float dZ[2], dQ[2], dc = 0;
    double l = nf_vae_adj_loss(Z, Z, A, 0.0f, 1, 2, 1, 1.0, dZ, dQ, &dc);
    CHECK_NEAR(l, 2 + 2 * log1p(exp(-2.0)), 1e-6);
    double s = 1 / (1 + exp(-2.0));
    CHECK_NEAR(dc, (s - 1) + s, 1e-6);
    CHECK_NEAR(dZ[0], (s - 1) * 2, 1e-6);   /* d/dz0 of z0·q1 */
    CHECK_NEAR(dQ[1], (s - 1) * 1, 1e-6);

    /* op loss: equal logits over 2 classes -> log 2 per row */
    const float lg[4] = {0, 0, 3, 3};
    const int32_t ops[2] = {0, 1};
    float dl[4];
    CHECK_NEAR(nf_vae_op_loss(lg, ops, 2, 2, 0.5, dl), log(2.0), 1e-6);
    CHECK_NEAR(dl[0], 0.5 * (0.5 - 1), 1e-6);
    CHECK_NEAR(dl[1], 0.25, 1e-6);

    /* KL: μ = 1, log σ² = 0 -> 0.5; μ = 0, log σ² = 0 -> 0; z = μ + σ·noise */
    const float E[4] = {1, 0, 0, 0}, noise[2] = {2, -1};
    float Zr[2];
    CHECK_NEAR(nf_vae_reparam_forward(E, noise, 2, 1, Zr), 0.5, 1e-6);
    CHECK_NEAR(Zr[0], 3, 1e-6);
    CHECK_NEAR(Zr[1], -1, 1e-6);
}

/* B random ordered DAGs on N nodes with V op labels */
static void random_graphs(uint64_t seed, int64_t B, int N, int V, float *ops, float *adj)
{
    nf_rng r;
    nf_rng_seed(&r, seed);
    for (int64_t b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            ops[b * N + i] = (float)nf_rng_below(&r, (uint64_t)V);
            for (int j = 0; j < N; j++) adj[(b * N + i) * N + j] = (j > i && nf_rng_uniform(&r) < 0.35) ? 1.0f : 0.0f;
        }
}

static nf_vae *trained(uint64_t seed, const float *ops, const float *adj, int64_t B, const int64_t *rows, int64_t n,
                       int epochs, double *loss)
{
    nf_vae_config c = nf_vae_config_default(6, 4);
    c.hidden = 32;
    c.latent = 16;
    c.batch = 16;
    c.lr = 1e-2f;
    nf_rng rng;
    nf_rng_seed(&rng, seed);
    nf_vae *v = NULL;
    nf_err err;
    if (nf_vae_new(&c, &rng, &v, &err)) return NULL;
    for (int e = 0; e < epochs; e++)
        if (nf_vae_train_epoch(v, ops, adj, B, rows, n, &rng, &loss[e], &err)) { nf_vae_free(v); return NULL; }
    return v;
}

static void test_training(void)
{
    /* kept small: `make valgrind` runs this too */
    enum { B = 240, NTR = 216, N = 6, V = 4, EP = 30 };
    float *ops = malloc(sizeof(float) * B * N), *adj = malloc(sizeof(float) * B * N * N);
    random_graphs(3, B, N, V, ops, adj);
    int64_t tr[NTR], te[B - NTR];
    for (int i = 0; i < NTR; i++) tr[i] = i;
    for (int i = 0; i < B - NTR; i++) te[i] = NTR + i;
    double l1[EP], l2[2], l3[2], l4[2];
    nf_vae *a = trained(11, ops, adj, B, tr, NTR, EP, l1);
    nf_vae *b = trained(11, ops, adj, B, tr, NTR, 2, l2);
    nf_vae *b2 = trained(11, ops, adj, B, tr, NTR, 2, l3);
    nf_vae *c = trained(12, ops, adj, B, tr, NTR, 2, l4);
    CHECK(a && b && b2 && c);
    if (!a || !b || !b2 || !c) {
        nf_vae_free(a); nf_vae_free(b); nf_vae_free(b2); nf_vae_free(c); free(ops); free(adj);
        return;
    }
    /* same seed: bit-identical parameters, losses and embeddings; another seed differs */
    CHECK(memcmp(nf_vae_params(b), nf_vae_params(b2), (size_t)nf_vae_nparams(b) * sizeof(float)) == 0);
    CHECK(memcmp(l2, l3, sizeof l2) == 0);
    CHECK(memcmp(nf_vae_params(b), nf_vae_params(c), (size_t)nf_vae_nparams(b) * sizeof(float)) != 0);
    CHECK(l1[0] == l2[0] && l1[1] == l2[1]);   /* the long run starts exactly like the short ones */
    CHECK(nf_vae_steps(a) == EP * ((NTR + 15) / 16));
    /* it learns: the loss falls; its training graphs are reconstructed far above chance (random DAGs:
     * 4 ops uniform -> 0.25 per node, whole graphs ~0). Held-out reconstruction of the real spaces,
     * with the shipped settings, is asserted in spec/encodings_spec.lua (too slow for valgrind here);
     * here the held-out graphs only have to beat the chance level. */
    CHECK(l1[EP - 1] < 0.5 * l1[0]);
    nf_vae_accuracy acc, held;
    nf_err err;
    CHECK(nf_vae_reconstruct_accuracy(a, ops, adj, B, tr, NTR, &acc, &err) == NF_OK);
    CHECK(nf_vae_reconstruct_accuracy(a, ops, adj, B, te, B - NTR, &held, &err) == NF_OK);
    CHECK(acc.n == NTR && held.n == B - NTR);
    printf("small random DAGs: train ops %.4f adj %.4f graph %.4f; held-out ops %.4f adj %.4f graph %.4f "
           "(loss %.3f -> %.3f)\n", acc.ops, acc.adj, acc.graph, held.ops, held.adj, held.graph, l1[0], l1[EP - 1]);
    CHECK(acc.ops > 0.99);
    CHECK(acc.adj > 0.95);
    CHECK(acc.graph > 0.3);
    CHECK(held.ops > 0.9);
    CHECK(held.adj > 0.9);
    CHECK(held.graph > 0.1);
    float e1[2 * 16], e2[2 * 16];
    CHECK(nf_vae_embed(b, ops, adj, 2, e1, &err) == NF_OK);
    CHECK(nf_vae_embed(b2, ops, adj, 2, e2, &err) == NF_OK);
    CHECK(memcmp(e1, e2, sizeof e1) == 0);
    /* chunking does not change the embedding: all B at once equals the first 2 */
    float *all = malloc(sizeof(float) * B * 16);
    CHECK(nf_vae_embed(b, ops, adj, B, all, &err) == NF_OK);
    CHECK(memcmp(all, e1, sizeof e1) == 0);
    free(all);
    nf_vae_free(a);
    nf_vae_free(b);
    nf_vae_free(b2);
    nf_vae_free(c);
    free(ops);
    free(adj);
}

static void test_errors(void)
{
    nf_vae_config c = nf_vae_config_default(3, 2);
    nf_rng rng;
    nf_rng_seed(&rng, 1);
    nf_vae *v = NULL;
    nf_err err;
    c.hidden = 0;
    CHECK(nf_vae_new(&c, &rng, &v, &err) == NF_EINVAL && v == NULL);
    CHECK(strcmp(err.msg, "vae: hidden = 0 out of range 1..4096") == 0);
    c = nf_vae_config_default(3, 2);
    c.lr = -1;
    CHECK(nf_vae_new(&c, &rng, &v, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "lr = -1") != NULL);
    c = nf_vae_config_default(3, 2);
    CHECK(nf_vae_new(&c, &rng, &v, &err) == NF_OK);
    float ops[3] = {0, 1, 2}, adj[9] = {0};
    CHECK(nf_vae_check_graphs(v, ops, adj, 1, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "vae: graph 0, node 2: op id 2 out of range 0..1") == 0);
    ops[2] = 1;
    adj[4] = 1;
    CHECK(nf_vae_check_graphs(v, ops, adj, 1, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "vae: graph 0: self-loop at node 1") == err.msg);
    adj[4] = 0;
    adj[1] = 0.5f;
    CHECK(nf_vae_check_graphs(v, ops, adj, 1, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "vae: graph 0: adjacency entry (0, 1) = 0.5 (expected 0 or 1)") == 0);
    adj[1] = 1;
    int64_t bad = 3;
    CHECK(nf_vae_train_epoch(v, ops, adj, 1, &bad, 1, &rng, NULL, &err) == NF_ERANGE);
    CHECK(strcmp(err.msg, "vae: row 3 (entry 0) out of range 0..0") == 0);
    CHECK(nf_vae_loss(v, ops, adj, 33, NULL, NULL, NULL, &err) == NF_EINVAL);
    CHECK(nf_vae_train_epoch(v, ops, adj, 1, NULL, 0, &rng, NULL, &err) == NF_OK);
    nf_vae_free(v);
    nf_vae_free(NULL);
}

static void test_kernels(void)
{
    nf_err err;
    /* NB201 paths of |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|:
     * edges 3,3,4,1,3,1; digits skip 0, conv1x1 1, conv3x3 2, pool 3.
     * 0->3 (skip) col 0; 0->1->3 (conv3, conv3) col 4 + 10; 0->2->3 (conv3, skip) col 4 + 8;
     * 0->1->2->3 (conv3, pool, skip) col 20 + 2*16 + 3*4 + 0 = 64 */
    float e[12] = {3, 3, 4, 1, 3, 1, 0, 3, 4, 1, 3, 1}, p[2 * NF_ENC_NB201_PATHS];
    CHECK(nf_enc_nb201_paths(e, 2, p, &err) == NF_OK);
    float want[NF_ENC_NB201_PATHS] = {0};
    want[0] = want[14] = want[12] = want[64] = 1;
    CHECK(memcmp(p, want, sizeof want) == 0);
    /* second row: edge 0->1 is none, so the paths through node 1 vanish: 0->3 and 0->2->3 remain */
    memset(want, 0, sizeof want);
    want[0] = want[12] = 1;
    CHECK(memcmp(p + NF_ENC_NB201_PATHS, want, sizeof want) == 0);
    /* two paths with the same op sequence count twice */
    float same[6] = {1, 1, 0, 0, 1, 1};
    CHECK(nf_enc_nb201_paths(same, 1, p, &err) == NF_OK);
    CHECK(p[4] == 2.0f && nf_sum(p, NF_ENC_NB201_PATHS) == 2.0);
    e[2] = 5;
    CHECK(nf_enc_nb201_paths(e, 1, p, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "paths: row 0, edge 2: op id 5 out of range 0..4") == 0);

    /* one-hot: 2 rows of 3 nodes, positions = nodes 1..2, offset 1, 2 choices */
    float ops[6] = {9, 1, 2, 9, 2, 2}, oh[8];
    CHECK(nf_enc_onehot(ops, 2, 3, 1, 2, 1, 2, oh, &err) == NF_OK);
    const float ohw[8] = {1, 0, 0, 1, 0, 1, 0, 1};
    CHECK(memcmp(oh, ohw, sizeof oh) == 0);
    ops[2] = 3;
    CHECK(nf_enc_onehot(ops, 2, 3, 1, 2, 1, 2, oh, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "onehot: row 0, node 2: op id 3 is not a choice") == err.msg);

    /* scaling: min-max, z-score (population sd), constant column -> 0, none untouched */
    float X[12] = {1, 5, 7, 2, 3, 5, 7, 2, 5, 5, 7, 2};
    const int mode[4] = {NF_SCALE_MINMAX, NF_SCALE_ZSCORE, NF_SCALE_MINMAX, NF_SCALE_NONE};
    CHECK(nf_enc_scale(X, 3, 4, mode, &err) == NF_OK);
    CHECK_NEAR(X[0], 0, 1e-7);
    CHECK_NEAR(X[4], 0.5, 1e-7);
    CHECK_NEAR(X[8], 1, 1e-7);
    CHECK_NEAR(X[1], 0, 1e-7);                 /* column 1: 5, 5, 5 has sd 0 -> 0 */
    CHECK_NEAR(X[2], 0, 1e-7);
    CHECK_NEAR(X[3], 2, 1e-7);
    float Y[4] = {1, 2, 3, 4};
    const int z2[2] = {NF_SCALE_ZSCORE, NF_SCALE_ZSCORE};
    CHECK(nf_enc_scale(Y, 2, 2, z2, &err) == NF_OK);
    CHECK_NEAR(Y[0], -1, 1e-6);
    CHECK_NEAR(Y[2], 1, 1e-6);
    float Nn[2] = {1, NAN};
    CHECK(nf_enc_scale(Nn, 2, 1, mode, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "scale: entry (row 1, column 0) is not finite (nan)") == 0);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void corrupt_byte(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void test_cache(void)
{
    char dir[] = "/tmp/nf_vae_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[256], path[300], other[400];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    nf_err err;
    CHECK(nf_mkdirs(sub, &err) == NF_OK);
    CHECK(nf_mkdirs(sub, &err) == NF_OK);   /* exists: fine */
    snprintf(path, sizeof path, "%s/enc.bin", sub);
    float X[6] = {1, -2, 3.5f, 1e-30f, 0, 7};
    nf_enc_cache_key k = {.space = 1, .hash = 0xdeadbeef, .rows = 3, .dims = 2};
    CHECK(nf_enc_cache_write(path, &k, X, &err) == NF_OK);
    CHECK(file_size(path) == 48 + 24);
    float Y[6];
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_OK);
    CHECK(memcmp(X, Y, sizeof X) == 0);
    /* a file, not a directory, in the way */
    snprintf(other, sizeof other, "%s/x", path);
    CHECK(nf_mkdirs(other, &err) == NF_EIO);
    /* mismatches */
    nf_enc_cache_key w = k;
    w.hash = 1;
    CHECK(nf_enc_cache_read(path, &w, Y, &err) == NF_EFORMAT);
    CHECK(strstr(err.msg, "settings hash deadbeef (expected 00000001): settings changed") != NULL);
    w = k;
    w.space = 0;
    CHECK(nf_enc_cache_read(path, &w, Y, &err) == NF_EFORMAT && strstr(err.msg, "cache of space 1 (expected 0)"));
    w = k;
    w.rows = 4;
    CHECK(nf_enc_cache_read(path, &w, Y, &err) == NF_EFORMAT && strstr(err.msg, "holds 3 × 2 (expected 4 × 2)"));
    /* corruption: a payload byte, a header byte, truncation, trailing bytes, garbage */
    corrupt_byte(path, 50);
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_EFORMAT && strstr(err.msg, "data CRC mismatch"));
    CHECK(nf_enc_cache_write(path, &k, X, &err) == NF_OK);
    corrupt_byte(path, 30);
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_EFORMAT && strstr(err.msg, "header CRC mismatch"));
    CHECK(nf_enc_cache_write(path, &k, X, &err) == NF_OK);
    CHECK(truncate(path, 60) == 0);
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_EFORMAT && strstr(err.msg, "truncated data"));
    CHECK(truncate(path, 20) == 0);
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_EFORMAT && strstr(err.msg, "truncated header"));
    CHECK(nf_enc_cache_write(path, &k, X, &err) == NF_OK);
    FILE *f = fopen(path, "ab");
    fputc('x', f);
    fclose(f);
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_EFORMAT && strstr(err.msg, "trailing bytes"));
    f = fopen(path, "wb");
    fputs("this is not a cache file at all, but long enough for a header", f);
    fclose(f);
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_EFORMAT && strstr(err.msg, "bad magic"));
    remove(path);
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_EIO && strstr(err.msg, "cannot open"));
    /* nothing but the directories is left behind (no temporary files) */
    snprintf(other, sizeof other, "rm -r '%s'", dir);
    CHECK(rmdir(sub) == 0);
    CHECK(system(other) == 0);
}

/* The framing (nf_frame.h): bounds-checked reads, limited whole-file reads, and the cache's bytes on disk
 * equal those of a file written before the framing was shared (hex below, from the previous code). */
static void test_frame(void)
{
    nf_wbuf b = {0};
    nf_wbuf_u32(&b, 0x01020304u);
    nf_wbuf_u64(&b, 0x1122334455667788ull);
    const float fl[2] = {1.0f, -2.5f};
    nf_wbuf_f32s(&b, fl, 2);
    char longtext[400];
    memset(longtext, 'a', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    nf_wbuf_printf(&b, "%s!", longtext);   /* longer than the formatter's stack buffer */
    CHECK(!b.oom && b.n == 4 + 8 + 8 + 400);
    static const unsigned char head[20] = {4, 3, 2, 1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                           0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0};
    CHECK(b.n >= 20 && memcmp(b.p, head, 20) == 0 && b.p[b.n - 1] == '!');
    nf_rbuf r = nf_rbuf_of(b.p, 20);
    uint32_t u;
    uint64_t w;
    float g[3];
    CHECK(nf_rbuf_u32(&r, &u) == 0 && u == 0x01020304u);
    CHECK(nf_rbuf_u64(&r, &w) == 0 && w == 0x1122334455667788ull);
    CHECK(nf_rbuf_f32s(&r, g, 3) == -1 && nf_rbuf_left(&r) == 8);   /* past the end: nothing read */
    CHECK(nf_rbuf_f32s(&r, g, 2) == 0 && g[0] == 1.0f && g[1] == -2.5f);
    CHECK(nf_rbuf_u32(&r, &u) == -1 && nf_rbuf_u64(&r, &w) == -1 && nf_rbuf_bytes(&r, 1) == NULL);
    CHECK(nf_rbuf_left(&r) == 0);
    nf_wbuf_free(&b);
    nf_wbuf_free(&b);   /* idempotent */

    nf_err err;
    unsigned char *data;
    size_t size;
    int more;
    CHECK(nf_read_file("/dev/zero", 100, "a test", &data, &size, NULL, &err) == NF_EIO && data == NULL);
    CHECK(strcmp(err.msg, "/dev/zero: not a regular file") == 0);
    CHECK(nf_read_file("/tmp", 100, "a test", &data, &size, &more, &err) == NF_EIO);
    CHECK(strcmp(err.msg, "/tmp: not a regular file") == 0);
    char path[] = "/tmp/nf_frame_testXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(nf_write_file_atomic(path, "0123456789abcdef", 16, &err) == NF_OK);
    CHECK(nf_read_file(path, 16, "a test", &data, &size, NULL, &err) == NF_OK && size == 16 && memcmp(data, "0123", 4) == 0);
    free(data);
    CHECK(nf_read_file(path, 10, "a test", &data, &size, NULL, &err) == NF_EFORMAT && data == NULL);
    char want[300];
    snprintf(want, sizeof want, "%s: larger than the limit of 10 bytes for a test", path);
    CHECK(strcmp(err.msg, want) == 0);
    CHECK(nf_read_file(path, 10, "a test", &data, &size, &more, &err) == NF_OK && size == 10 && more == 1);
    free(data);
    CHECK(nf_read_file(path, 100, "a test", &data, &size, &more, &err) == NF_OK && size == 16 && more == 0);
    free(data);
    CHECK(nf_read_file("/proc/self/stat", 1 << 20, "a test", &data, &size, NULL, &err) == NF_OK && size > 0);
    free(data);   /* st_size 0, real content: read by chunks */

    /* the cache file of {{1, -2.5}, {3.25, 1e-30}, {0, 7}}, space 1, hash deadbeef, as written before */
    static const char old_hex[] = "4e46454e434f44450100000001000000efbeadde000000000300000000000000020000000000"
                                  "00000e3c298e498f9fe20000803f000020c0000050406042a20d000000000000e040";
    unsigned char old[72];
    for (int i = 0; i < 72; i++) {
        unsigned v;
        sscanf(old_hex + 2 * i, "%2x", &v);
        old[i] = (unsigned char)v;
    }
    const float X[6] = {1, -2.5f, 3.25f, 1e-30f, 0, 7};
    nf_enc_cache_key k = {.space = 1, .hash = 0xdeadbeef, .rows = 3, .dims = 2};
    CHECK(nf_enc_cache_write(path, &k, X, &err) == NF_OK);
    CHECK(nf_read_file(path, 100, "a test", &data, &size, NULL, &err) == NF_OK);
    CHECK(size == 72 && memcmp(data, old, 72) == 0);
    free(data);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(old, 1, 72, f) == 72);
    if (f) fclose(f);
    float Y[6];
    CHECK(nf_enc_cache_read(path, &k, Y, &err) == NF_OK && memcmp(X, Y, sizeof X) == 0);
    /* a directory where the cache should be: not a cache (and not "truncated header" any more) */
    CHECK(nf_enc_cache_read("/tmp", &k, Y, &err) == NF_EIO && strcmp(err.msg, "/tmp: not a regular file") == 0);
    remove(path);
}

int main(void)
{
    RUN(test_gradcheck);
    RUN(test_layers_by_hand);
    RUN(test_training);
    RUN(test_errors);
    RUN(test_kernels);
    RUN(test_cache);
    RUN(test_frame);
    return CT_DONE();
}
