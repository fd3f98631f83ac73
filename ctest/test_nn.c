/* test_nn.c — C unit tests of the predictor engine: layer and model gradient checks (graph
 * network, flat MLP, one-hot op encoding), losses against hand-computed values, AdamW, cosine
 * schedule, model files, embeddings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctest.h"
#include "nf_model.h"
#include "nf_util.h"

static void test_layer_gradients(void)
{
    const char *layers[] = {"linear", "embedding", "relu", "leaky_relu", "sigmoid", "dropout", "layernorm",
                            "readout", "dgf", "gat", "gat_mh", "ensemble"};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        for (int variant = 0; variant < 3; variant++) {
            nf_gradcheck_opts o;
            memset(&o, 0, sizeof o);
            o.layer = layers[i];
            o.seed = 9 + (uint64_t)variant;
            o.h_shared = variant == 1 && i >= 8;
            if (variant == 2) { o.quirk_gat_mask_zero = 1; o.gat_slope = 0.01f; }
            nf_gradcheck_result r;
            nf_err err;
            CHECK(nf_gradcheck_layer(&o, &r, &err) == NF_OK);
            CHECK(r.rel < 1e-3);
            CHECK(r.max_rel < 0.1);
            if (r.rel >= 1e-3 || r.max_rel >= 0.1) fprintf(stderr, "  layer %s variant %d: rel %g max %g\n", layers[i], variant, r.rel, r.max_rel);
            o.breakit = 1;   /* the check must fail on a wrong gradient */
            CHECK(nf_gradcheck_layer(&o, &r, &err) == NF_OK);
            CHECK(r.rel > 1e-2 && r.max_rel > 0.1);
        }
    }
    nf_gradcheck_opts o;
    memset(&o, 0, sizeof o);
    o.layer = "conv";
    nf_gradcheck_result r;
    nf_err err;
    CHECK(nf_gradcheck_layer(&o, &r, &err) == NF_EINVAL);
    CHECK(strstr(err.msg, "unknown layer 'conv'") != NULL);
}

static void small_cfg(nf_model_cfg *c, nf_gl_kind layer, nf_dev_at at, int z)
{
    nf_model_cfg_default(c);
    c->layer = layer;
    c->device_at = at;
    c->z_dim = z;
    c->nodes = 6;
    c->n_ops = 5;
    c->hid = 12;
    c->op_dim = at == NF_DEV_NODE ? 10 : 12;
    c->hw_dim = 4;
    c->node_dim = 9;
    c->op_layers[0] = c->op_layers[1] = 11;
    for (int k = 0; k < 3; k++) { c->main_layers[k] = 10; c->gate_mlp[k] = 9; c->head[k] = 13; }
    c->upd_hidden = 8;
    c->z_hidden[0] = c->z_hidden[1] = 7;
    c->z_out = 6;
    c->dev_out = 5;
}

/* node_other starts at zero, so at initialisation every node but the input has the same small
 * hidden state and the gates barely matter: their path's gradients (~1e-4) sit under the check's
 * absolute floor (1e-2), and dropping the device's gradient through the gates went unnoticed.
 * Livelier node states and gate weights (node_other 1.5, gate and graph-layer weights x3) make
 * that path visible: the same broken backward then fails on dev_emb for every layer kind. */
static void liven_gates(nf_model *m)
{
    float *P = nf_model_params(m);
    for (int i = 0; i < nf_model_nslices(m); i++) {
        const nf_pslice *sl = nf_model_slice(m, i);
        int node = strcmp(sl->name, "node_other") == 0;
        int scale = strstr(sl->name, "gate") || ((strncmp(sl->name, "op", 2) == 0 || strncmp(sl->name, "main", 4) == 0)
                                                 && sl->name[sl->name[0] == 'o' ? 2 : 4] >= '1'
                                                 && sl->name[sl->name[0] == 'o' ? 2 : 4] <= '9');
        for (int64_t k = 0; k < sl->n; k++)
            if (node) P[sl->off + k] = 1.5f;
            else if (scale) P[sl->off + k] *= 3.0f;
    }
}

/* One gradient check; returns 1 when it passes (and says which slice failed otherwise). */
static int model_gradcheck_ok(const nf_model_cfg *c, int loss, int breakit, const char *what)
{
    nf_model *m;
    nf_err err;
    CHECK(nf_model_new(c, c->device_at == NF_DEV_NONE ? 0 : 3, NULL, 42, &m, &err) == NF_OK);
    if (c->arch == NF_ARCH_GRAPH) liven_gates(m);
    nf_model_gradcheck_opts o;
    memset(&o, 0, sizeof o);
    o.B = 5;
    o.per_slice = 6;
    o.loss = loss;
    o.eps = 2e-3;
    o.seed = 3;
    o.breakit = breakit;
    nf_gradcheck_result r;
    CHECK(nf_model_gradcheck(m, &o, &r, &err) == NF_OK);
    CHECK(r.checked > 30);
    int ok = r.worst_bad < 0.5 && r.rel < 0.05;
    if (!ok && !breakit)
        fprintf(stderr, "  model %s/%s z=%d loss=%d: %s bad %.2f rel %g\n", what, nf_dev_at_name(c->device_at),
                c->z_dim, loss, r.worst, r.worst_bad, r.rel);
    nf_model_free(m);
    return ok;
}

static void test_model_gradients(void)
{
    for (int layer = 0; layer < 4; layer++)
        for (int at = 0; at < 3; at++)
            for (int z = 0; z < 2; z++)
                for (int loss = 0; loss < 3; loss++) {
                    if (loss && (layer != NF_GL_ENSEMBLE || at != NF_DEV_NODE)) continue;
                    nf_model_cfg c;
                    small_cfg(&c, (nf_gl_kind)layer, (nf_dev_at)at, z ? 5 : 0);
                    nf_model *m;
                    nf_err err;
                    CHECK(nf_model_new(&c, at == NF_DEV_NONE ? 0 : 3, NULL, 42, &m, &err) == NF_OK);
                    nf_model_gradcheck_opts o;
                    memset(&o, 0, sizeof o);
                    o.B = 5;
                    o.per_slice = 6;
                    o.loss = loss;
                    o.eps = 2e-3;
                    o.seed = 3;
                    nf_gradcheck_result r;
                    CHECK(nf_model_gradcheck(m, &o, &r, &err) == NF_OK);
                    CHECK(r.worst_bad < 0.5);
                    CHECK(r.rel < 0.05);
                    if (r.worst_bad >= 0.5 || r.rel >= 0.05)
                        fprintf(stderr, "  model %s/%s z=%d loss=%d: %s bad %.2f rel %g\n", nf_gl_kind_name(c.layer),
                                nf_dev_at_name(c.device_at), z, loss, r.worst, r.worst_bad, r.rel);
                    if (layer == NF_GL_ENSEMBLE && at == NF_DEV_NODE && !z && !loss) {
                        o.breakit = 1;
                        CHECK(nf_model_gradcheck(m, &o, &r, &err) == NF_OK);
                        CHECK(r.worst_bad >= 0.5);
                    }
                    nf_model_free(m);
                }
}

/* The design-study variants: the flat MLP (device at the head or none, with and without z, all
 * three losses) and the one-hot op encoding with every graph layer (device per node and at the head). */
static void test_variant_gradients(void)
{
    for (int at = NF_DEV_NONE; at <= NF_DEV_HEAD; at += 2)
        for (int z = 0; z < 2; z++)
            for (int loss = 0; loss < 3; loss++) {
                nf_model_cfg c;
                small_cfg(&c, NF_GL_ENSEMBLE, (nf_dev_at)at, z ? 5 : 0);
                c.arch = NF_ARCH_MLP;
                c.op_encoding = NF_OPENC_ONEHOT;
                CHECK(model_gradcheck_ok(&c, loss, 0, "mlp"));
                if (at == NF_DEV_HEAD && z && loss == 0) CHECK(!model_gradcheck_ok(&c, loss, 1, "mlp"));
            }
    for (int layer = 0; layer < 4; layer++)
        for (int at = NF_DEV_NODE; at <= NF_DEV_HEAD; at++) {
            nf_model_cfg c;
            small_cfg(&c, (nf_gl_kind)layer, (nf_dev_at)at, at == NF_DEV_HEAD ? 5 : 0);
            c.op_encoding = NF_OPENC_ONEHOT;
            CHECK(model_gradcheck_ok(&c, 0, 0, nf_gl_kind_name(c.layer)));
            if (layer == NF_GL_ENSEMBLE) {
                CHECK(model_gradcheck_ok(&c, 1, 0, "ensemble (hinge)"));
                CHECK(!model_gradcheck_ok(&c, 0, 1, "ensemble"));
            }
            /* the learned table through the same livelier gates: test_model_gradients' initial
             * gates hide a dropped op_emb gradient in 27 of its 28 configurations */
            if (at == NF_DEV_NODE) {
                c.op_encoding = NF_OPENC_LEARNED;
                CHECK(model_gradcheck_ok(&c, 0, 0, nf_gl_kind_name(c.layer)));
                /* the input node's zero row and the output node's io_out row among the gate inputs */
                c.quirk_io_emb = 1;
                CHECK(model_gradcheck_ok(&c, 0, 0, "io_emb"));
            }
        }
}

static void test_variant_layout(void)
{
    nf_model_cfg c;
    nf_model *m;
    nf_err err;
    /* MLP: no graph parameters; the head reads N·n_ops + N·N + dev_out (+ z_out) */
    small_cfg(&c, NF_GL_ENSEMBLE, NF_DEV_HEAD, 5);
    c.arch = NF_ARCH_MLP;
    c.op_encoding = NF_OPENC_ONEHOT;
    CHECK(nf_model_new(&c, 2, NULL, 1, &m, &err) == NF_OK);
    const char *want[] = {"dev_emb", "z1.W", "z1.b", "z2.W", "z2.b", "z3.W", "z3.b", "dev1.W", "dev1.b", "dev2.W",
                          "dev2.b", "head1.W", "head1.b", "head2.W", "head2.b", "head3.W", "head3.b", "head4.W", "head4.b"};
    CHECK(nf_model_nslices(m) == (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < nf_model_nslices(m) && i < (int)(sizeof want / sizeof want[0]); i++)
        CHECK(strcmp(nf_model_slice(m, i)->name, want[i]) == 0);
    CHECK(nf_model_find_slice(m, "head1.W")->rows == 6 * 5 + 6 * 6 + c.z_out + c.dev_out);
    CHECK(nf_model_readout_dim(&c) == 66);
    CHECK(strcmp(nf_model_layer_name(&c), "mlp") == 0);
    nf_model_free(m);
    /* one-hot: no op table, gates n_ops (+ hw_dim) wide */
    small_cfg(&c, NF_GL_GAT, NF_DEV_NODE, 0);
    c.op_encoding = NF_OPENC_ONEHOT;
    CHECK(nf_model_new(&c, 2, NULL, 1, &m, &err) == NF_OK);
    CHECK(nf_model_find_slice(m, "op_emb") == NULL);
    CHECK(nf_model_gate_dim(&c) == c.n_ops + c.hw_dim);
    CHECK(nf_model_find_slice(m, "op_gate.W")->rows == c.n_ops + c.hw_dim);
    CHECK(nf_model_find_slice(m, "gate_upd2.W")->cols == c.n_ops + c.hw_dim);
    nf_model_free(m);
    /* refused combinations */
    small_cfg(&c, NF_GL_ENSEMBLE, NF_DEV_NODE, 0);
    c.arch = NF_ARCH_MLP;
    c.op_encoding = NF_OPENC_ONEHOT;
    CHECK(nf_model_new(&c, 2, NULL, 1, &m, &err) == NF_EINVAL && m == NULL);
    CHECK(strcmp(err.msg, "model config: layer 'mlp' has no nodes to carry the device (device_at must be head or none)") == 0);
    c.device_at = NF_DEV_HEAD;
    c.op_encoding = NF_OPENC_LEARNED;
    CHECK(nf_model_new(&c, 2, NULL, 1, &m, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "model config: layer 'mlp' reads the ops one-hot (op_encoding must be onehot)") == 0);
    small_cfg(&c, NF_GL_ENSEMBLE, NF_DEV_NODE, 0);
    c.op_encoding = NF_OPENC_ONEHOT;
    c.quirk_io_emb = 1;
    CHECK(nf_model_new(&c, 2, NULL, 1, &m, &err) == NF_EINVAL);
    CHECK(strcmp(err.msg, "model config: quirk_io_emb replaces learned op embeddings (it needs op_encoding learned)") == 0);
    nf_model_cfg_default(&c);
    CHECK(nf_model_layer_parse(&c, "mlp") == 0 && c.arch == NF_ARCH_MLP);
    CHECK(nf_model_layer_parse(&c, "gat") == 0 && c.arch == NF_ARCH_GRAPH && c.layer == NF_GL_GAT);
    CHECK(nf_model_layer_parse(&c, "gcn") == -1);
}

/* Random graphs for the embedding and file tests. */
static void random_graphs(nf_rng *r, int64_t n, int N, int n_ops, int Z, int32_t *ops, float *adj, float *z)
{
    memset(adj, 0, (size_t)(n * N * N) * sizeof(float));
    for (int64_t b = 0; b < n; b++) {
        for (int i = 0; i < N; i++) {
            ops[b * N + i] = (int32_t)nf_rng_below(r, (uint64_t)n_ops);
            for (int j = i + 1; j < N; j++) adj[(b * N + i) * N + j] = nf_rng_uniform(r) < 0.4 ? 1.0f : 0.0f;
        }
        for (int k = 0; k < Z; k++) z[b * Z + k] = (float)nf_rng_normal(r);
    }
}

/* embed(head)·W + b of the last head slice reproduces predict; embeddings are deterministic and
 * batched like predict (300 graphs: three chunks); the MLP's readout is its flattened input. */
static void test_embed(void)
{
    enum { n = 300, N = 6, V = 5, Z = 5 };
    static int32_t ops[n * N];
    static float adj[n * N * N], z[n * Z], s[n], e[n * 200], e2[n * 200];
    nf_rng r;
    nf_rng_seed(&r, 17);
    random_graphs(&r, n, N, V, Z, ops, adj, z);
    for (int variant = 0; variant < 4; variant++) {
        nf_model_cfg c;
        small_cfg(&c, NF_GL_ENSEMBLE, variant == 0 ? NF_DEV_NODE : NF_DEV_HEAD, variant == 2 ? 0 : Z);
        if (variant >= 2) { c.arch = NF_ARCH_MLP; c.op_encoding = NF_OPENC_ONEHOT; }
        if (variant == 3) c.n_head = 0;   /* no hidden layer: the head input is the feature */
        nf_model *m;
        nf_err err;
        CHECK(nf_model_new(&c, 2, NULL, 5 + (uint64_t)variant, &m, &err) == NF_OK);
        const float *zz = c.z_dim ? z : NULL;
        int64_t d = nf_model_embed_dim(m, NF_EMBED_HEAD);
        CHECK(d == (variant == 3 ? 66 + c.z_out + c.dev_out : 13));
        CHECK(nf_model_predict(m, ops, adj, zz, n, 1, NULL, s, &err) == NF_OK);
        CHECK(nf_model_embed(m, ops, adj, zz, n, 1, NULL, NF_EMBED_HEAD, e, &err) == NF_OK);
        CHECK(nf_model_embed(m, ops, adj, zz, n, 1, NULL, NF_EMBED_HEAD, e2, &err) == NF_OK);
        CHECK(memcmp(e, e2, (size_t)(n * d) * sizeof(float)) == 0);
        char last[16];
        snprintf(last, sizeof last, "head%d", c.n_head + 1);
        char wn[24], bn[24];
        snprintf(wn, sizeof wn, "%s.W", last);
        snprintf(bn, sizeof bn, "%s.b", last);
        const float *W = nf_model_params(m) + nf_model_find_slice(m, wn)->off;
        const float *bias = nf_model_params(m) + nf_model_find_slice(m, bn)->off;
        CHECK(nf_model_find_slice(m, wn)->rows == d);
        double worst = 0;
        int relu_ok = 1;
        for (int b = 0; b < n; b++) {
            double t = bias[0];
            for (int64_t k = 0; k < d; k++) { t += (double)e[b * d + k] * W[k]; relu_ok &= variant == 3 || e[b * d + k] >= 0.0f; }
            if (fabs(t - s[b]) > worst) worst = fabs(t - s[b]);
        }
        CHECK(worst < 1e-4);
        CHECK(relu_ok);
        int64_t dr = nf_model_embed_dim(m, NF_EMBED_READOUT);
        CHECK(dr == (variant >= 2 ? N * V + N * N : 10));
        CHECK(nf_model_embed(m, ops, adj, zz, n, 1, NULL, NF_EMBED_READOUT, e, &err) == NF_OK);
        if (variant >= 2) {
            int same = 1;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < N; i++)
                    for (int k = 0; k < V; k++) same &= e[b * dr + i * V + k] == (ops[b * N + i] == k ? 1.0f : 0.0f);
                same &= memcmp(e + b * dr + N * V, adj + b * N * N, N * N * sizeof(float)) == 0;
            }
            CHECK(same);
        }
        CHECK(nf_model_embed(m, ops, adj, zz, n, 1, NULL, (nf_embed_layer)7, e, &err) == NF_EINVAL);
        CHECK(strcmp(err.msg, "embed: unknown layer 7") == 0);
        nf_model_free(m);
    }
}

/* A graph's score does not depend on the batch it is scored in: each of 40 graphs (ops, adjacency and device all
 * varying) alone, in one batch, and in the batch reversed. The gate products are built from per-batch tables (op
 * parts, one device row per graph), so a row taken from the wrong graph, op or device fails here; the gates are
 * made lively first (liven_gates), or a wrong gate would hardly move a score. */
static void test_batch_rows(void)
{
    enum { n = 40, N = 6, V = 5 };
    static int32_t ops[n * N], rops[n * N], dev[n], rdev[n];
    static float adj[n * N * N], radj[n * N * N], s[n], rs[n], one[1];
    nf_rng r;
    nf_rng_seed(&r, 23);
    random_graphs(&r, n, N, V, 0, ops, adj, NULL);
    for (int b = 0; b < n; b++) dev[b] = (int32_t)((b * 7 + 3) % 3);
    for (int b = 0; b < n; b++) {
        memcpy(rops + b * N, ops + (n - 1 - b) * N, N * sizeof(int32_t));
        memcpy(radj + b * N * N, adj + (n - 1 - b) * N * N, N * N * sizeof(float));
        rdev[b] = dev[n - 1 - b];
    }
    for (int variant = 0; variant < 4; variant++) {
        nf_model_cfg c;
        small_cfg(&c, NF_GL_ENSEMBLE, variant == 3 ? NF_DEV_HEAD : NF_DEV_NODE, 0);
        if (variant == 1) c.op_encoding = NF_OPENC_ONEHOT;
        if (variant == 2) c.quirk_io_emb = 1;
        nf_model *m;
        nf_err err;
        CHECK(nf_model_new(&c, 3, NULL, 31 + (uint64_t)variant, &m, &err) == NF_OK);
        liven_gates(m);
        CHECK(nf_model_predict(m, ops, adj, NULL, n, 0, dev, s, &err) == NF_OK);
        CHECK(nf_model_predict(m, rops, radj, NULL, n, 0, rdev, rs, &err) == NF_OK);
        double worst = 0, spread = 0;
        for (int b = 0; b < n; b++) {
            CHECK(nf_model_predict(m, ops + b * N, adj + b * N * N, NULL, 1, 0, dev + b, one, &err) == NF_OK);
            worst = fmax(worst, fabs(one[0] - s[b]) / (1.0 + fabs(s[b])));
            worst = fmax(worst, fabs(rs[n - 1 - b] - s[b]) / (1.0 + fabs(s[b])));
            spread = fmax(spread, fabs(s[b] - s[0]));
        }
        CHECK(worst < 1e-5);
        CHECK(spread > 1e-3);   /* the scores differ between graphs: the check above compares something */
        if (worst >= 1e-5) fprintf(stderr, "  batch rows, variant %d: worst %g\n", variant, worst);
        nf_model_free(m);
    }
}

/* Save -> load of the MLP and of the one-hot model: identical parameters and predictions. A file
 * without the op_encoding field (as written before it existed) loads as the learned encoding. */
static void test_variant_files(void)
{
    enum { n = 20, N = 6, V = 5, Z = 5 };
    int32_t ops[n * N];
    float adj[n * N * N], z[n * Z], s1[n], s2[n];
    nf_rng r;
    nf_rng_seed(&r, 23);
    random_graphs(&r, n, N, V, Z, ops, adj, z);
    char path[] = "/tmp/nf_test_nnXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    for (int variant = 0; variant < 3; variant++) {
        nf_model_cfg c;
        small_cfg(&c, NF_GL_DGF, variant == 1 ? NF_DEV_NODE : NF_DEV_HEAD, Z);
        if (variant == 0) { c.arch = NF_ARCH_MLP; c.op_encoding = NF_OPENC_ONEHOT; }
        if (variant == 1) c.op_encoding = NF_OPENC_ONEHOT;
        nf_model *m, *l = NULL;
        nf_err err;
        CHECK(nf_model_new(&c, 2, NULL, 9, &m, &err) == NF_OK);
        CHECK(nf_model_save(m, path, &err) == NF_OK);
        if (variant == 2) {
            /* strip the field, fix the header length and the CRC */
            FILE *f = fopen(path, "rb");
            static unsigned char buf[1 << 20];
            size_t size = fread(buf, 1, sizeof buf, f);
            fclose(f);
            const char *key = ",\"op_encoding\":\"learned\"";
            unsigned char *at = NULL;
            for (size_t i = 16; i + strlen(key) < size && !at; i++)
                if (memcmp(buf + i, key, strlen(key)) == 0) at = buf + i;
            CHECK(at != NULL);
            if (at) {
                size_t k = strlen(key), hl = (size_t)buf[12] | (size_t)buf[13] << 8 | (size_t)buf[14] << 16;
                memmove(at, at + k, size - (size_t)(at - buf) - k);
                size -= k;
                hl -= k;
                buf[12] = (unsigned char)hl; buf[13] = (unsigned char)(hl >> 8); buf[14] = (unsigned char)(hl >> 16);
                uint32_t crc = nf_crc32(0, buf, size - 4);
                for (int i = 0; i < 4; i++) buf[size - 4 + i] = (unsigned char)(crc >> (8 * i));
                f = fopen(path, "wb");
                CHECK(fwrite(buf, 1, size, f) == size);
                fclose(f);
            }
        }
        CHECK(nf_model_load(path, &l, &err) == NF_OK);
        if (!l) { fprintf(stderr, "  load: %s\n", err.msg); nf_model_free(m); continue; }
        CHECK(nf_model_config(l)->arch == c.arch && nf_model_config(l)->op_encoding == c.op_encoding);
        CHECK(nf_model_nparams(l) == nf_model_nparams(m));
        CHECK(memcmp(nf_model_params(l), nf_model_params(m), (size_t)nf_model_nparams(m) * sizeof(float)) == 0);
        CHECK(nf_model_predict(m, ops, adj, z, n, 1, NULL, s1, &err) == NF_OK);
        CHECK(nf_model_predict(l, ops, adj, z, n, 1, NULL, s2, &err) == NF_OK);
        CHECK(memcmp(s1, s2, sizeof s1) == 0);
        nf_model_free(l);
        nf_model_free(m);
    }
    remove(path);
}

static void test_losses(void)
{
    /* hinge: y = (3, 1, 2), s = (0.5, 0.45, 0.9); pairs (1,2): sg=+1, h = 0.1-(0.05) = 0.05;
     * (1,3): sg=+1, h = 0.1-(-0.4) = 0.5; (2,3): sg=-1, h = 0.1+(0.45-0.9) = -0.35 -> 0 */
    float s[3] = {0.5f, 0.45f, 0.9f}, y[3] = {3, 1, 2}, ds[3];
    char scratch[4096];
    nf_rng r;
    nf_rng_seed(&r, 1);
    double loss;
    nf_err err;
    CHECK(nf_hinge_scratch_bytes(3) <= sizeof scratch);
    CHECK(nf_loss_hinge(s, y, 3, 0.1f, 12, &r, scratch, &loss, ds, &err) == NF_OK);
    CHECK_NEAR(loss, (0.05 + 0.5) / 3, 1e-6);
    CHECK_NEAR(ds[0], -2.0 / 3, 1e-6);
    CHECK_NEAR(ds[1], 1.0 / 3, 1e-6);
    CHECK_NEAR(ds[2], 1.0 / 3, 1e-6);
    /* ties give no pair; a single example no loss */
    float yt[3] = {1, 1, 1};
    CHECK(nf_loss_hinge(s, yt, 3, 0.1f, 12, &r, scratch, &loss, ds, &err) == NF_OK);
    CHECK(loss == 0.0 && ds[0] == 0.0f && ds[2] == 0.0f);
    /* at most max_pairs pairs are drawn */
    float s8[8] = {0}, y8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, ds8[8];
    CHECK(nf_loss_hinge(s8, y8, 8, 0.1f, 5, &r, scratch, &loss, ds8, &err) == NF_OK);
    CHECK_NEAR(loss, 0.1, 1e-6);
    double sum = 0;
    for (int i = 0; i < 8; i++) sum += ds8[i];
    CHECK_NEAR(sum, 0.0, 1e-6);
    nf_loss_mse(s, y, 3, &loss, ds);
    CHECK_NEAR(loss, (2.5 * 2.5 + 0.55 * 0.55 + 1.1 * 1.1) / 3, 1e-5);
    CHECK_NEAR(ds[0], 2 * (0.5 - 3) / 3.0, 1e-6);
}

static void test_optimiser(void)
{
    /* one AdamW step: m = 0.1 g, v = 0.001 g², bias-corrected m̂ = g, v̂ = g²: p -= lr (sign g) after decay */
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -3.0f}, m[2] = {0}, v[2] = {0};
    nf_adamw_step(p, g, m, v, 2, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f);
    CHECK_NEAR(p[0], 1.0 * (1 - 0.001) - 0.01, 1e-6);
    CHECK_NEAR(p[1], -2.0 * (1 - 0.001) + 0.01, 1e-6);
    CHECK_NEAR(nf_cosine_lr(1e-3, 1e-6, 0, 10), 1e-3, 1e-12);
    CHECK_NEAR(nf_cosine_lr(1e-3, 1e-6, 5, 10), (1e-3 + 1e-6) / 2, 1e-12);
    float gg[2] = {3, 4};
    CHECK_NEAR(nf_clip_grad_norm(gg, 2, 1.0), 5.0, 1e-9);
    CHECK_NEAR(gg[0], 0.6, 1e-6);
}

static void test_files_and_devices(void)
{
    nf_model_cfg c;
    small_cfg(&c, NF_GL_ENSEMBLE, NF_DEV_NODE, 0);
    nf_model *m, *l;
    nf_err err;
    const char *names[] = {"cpu", "gpu"};
    CHECK(nf_model_new(&c, 2, names, 5, &m, &err) == NF_OK);
    CHECK(nf_model_set_meta(m, "lat_min.cpu", 0.5, &err) == NF_OK);
    char path[] = "/tmp/nf_test_nnXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(nf_model_save(m, path, &err) == NF_OK);
    CHECK(nf_model_load(path, &l, &err) == NF_OK);
    CHECK(nf_model_nparams(l) == nf_model_nparams(m));
    CHECK(memcmp(nf_model_params(l), nf_model_params(m), (size_t)nf_model_nparams(m) * sizeof(float)) == 0);
    CHECK(strcmp(nf_model_dev_name(l, 1), "gpu") == 0);
    CHECK(nf_model_nmeta(l) == 1 && nf_model_meta_value(l, 0) == 0.5);
    nf_model_free(l);
    /* truncate the file: refused, no crash */
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CHECK(truncate(path, size / 2) == 0);
    CHECK(nf_model_load(path, &l, &err) == NF_EFORMAT);
    CHECK(strstr(err.msg, "truncated model file") != NULL);
    CHECK(l == NULL);
    remove(path);
    /* devices */
    int64_t n0 = nf_model_nparams(m);
    CHECK(nf_model_add_device(m, "tpu", 1, 3, &err) == NF_OK);
    CHECK(nf_model_nparams(m) == n0 + c.hw_dim);
    const nf_pslice *d = nf_model_find_slice(m, "dev_emb");
    CHECK(d && d->rows == 3);
    CHECK(memcmp(nf_model_params(m) + d->off + 2 * c.hw_dim, nf_model_params(m) + d->off + c.hw_dim,
                 (size_t)c.hw_dim * sizeof(float)) == 0);
    CHECK(nf_model_add_device(m, "tpu", -1, 3, &err) == NF_EINVAL);
    CHECK(nf_model_copy_device(m, 0, 7, &err) == NF_ERANGE);
    nf_model_free(m);
}

/* Limits of nf_model_load (nf_model.h): checked before anything is allocated for the model. */
static void test_file_limits(void)
{
    nf_model *l = NULL;
    nf_err err;
    char want[600];
    /* not regular files: /dev/zero was read until memory ran out, a directory gave "read error" */
    CHECK(nf_model_load("/dev/zero", &l, &err) == NF_EIO && l == NULL);
    CHECK(strcmp(err.msg, "/dev/zero: not a regular file") == 0);
    CHECK(nf_model_load("/tmp", &l, &err) == NF_EIO && l == NULL);
    CHECK(strcmp(err.msg, "/tmp: not a regular file") == 0);
    char path[] = "/tmp/nf_test_limitsXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    /* larger than the file limit (a sparse file): refused from its size, nothing read */
    CHECK(truncate(path, (off_t)NF_MODELFILE_MAX_BYTES + 1) == 0);
    CHECK(nf_model_load(path, &l, &err) == NF_EFORMAT && l == NULL);
    snprintf(want, sizeof want, "%s: larger than the limit of %zu bytes for a model file", path, NF_MODELFILE_MAX_BYTES);
    CHECK(strcmp(err.msg, want) == 0);
    /* a header announced longer than its limit (the file is long enough to hold it) */
    unsigned char head[16] = {'N', 'F', 'M', 'O', 'D', 'E', 'L', 0, 1, 0, 0, 0};
    uint32_t hl = NF_MODELFILE_MAX_HEADER + 1;
    for (int i = 0; i < 4; i++) head[12 + i] = (unsigned char)(hl >> (8 * i));
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(head, 1, sizeof head, f) == sizeof head);
    if (f) fclose(f);
    CHECK(truncate(path, (off_t)(16 + hl + 12)) == 0);
    CHECK(nf_model_load(path, &l, &err) == NF_EFORMAT && l == NULL);
    snprintf(want, sizeof want, "%s: header of %u bytes is larger than the limit of %d bytes", path, (unsigned)hl,
             NF_MODELFILE_MAX_HEADER);
    CHECK(strcmp(err.msg, want) == 0);
    /* a small valid file whose header (valid CRC) asks for a head of 8 layers of 65536: 30 G parameters.
     * The loader allocated them (480 GB: "cannot allocate") before comparing with the parameters stored. */
    nf_model_cfg c;
    small_cfg(&c, NF_GL_DGF, NF_DEV_NODE, 0);
    nf_model *m;
    CHECK(nf_model_new(&c, 2, NULL, 9, &m, &err) == NF_OK);
    CHECK(nf_model_save(m, path, &err) == NF_OK);
    const int64_t np = nf_model_nparams(m);
    nf_model_free(m);
    static unsigned char buf[1 << 16], out[1 << 16];
    f = fopen(path, "rb");
    size_t size = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    const char *key = "\"head\":[";
    size_t at = 0, end = 0;
    for (size_t i = 16; i + strlen(key) < size && !at; i++)
        if (memcmp(buf + i, key, strlen(key)) == 0) at = i + strlen(key);
    for (end = at; at && end < size && buf[end] != ']'; end++) {}
    CHECK(at > 0 && end < size);
    if (at > 0 && end < size) {
        const char *wide = "65536,65536,65536,65536,65536,65536,65536,65536";
        size_t wl = strlen(wide), n = 0;
        memcpy(out, buf, at); n = at;
        memcpy(out + n, wide, wl); n += wl;
        memcpy(out + n, buf + end, size - end); n += size - end;
        uint32_t hlen = (uint32_t)(buf[12] | buf[13] << 8 | buf[14] << 16) + (uint32_t)wl - (uint32_t)(end - at);
        for (int i = 0; i < 4; i++) out[12 + i] = (unsigned char)(hlen >> (8 * i));
        uint32_t crc = nf_crc32(0, out, n - 4);
        for (int i = 0; i < 4; i++) out[n - 4 + i] = (unsigned char)(crc >> (8 * i));
        f = fopen(path, "wb");
        CHECK(f && fwrite(out, 1, n, f) == n);
        if (f) fclose(f);
        CHECK(nf_model_load(path, &l, &err) == NF_EFORMAT && l == NULL);
        nf_model_cfg big = c;
        for (int k = 0; k < NF_MAXL; k++) big.head[k] = 65536;
        big.n_head = NF_MAXL;
        int64_t need = 0;
        CHECK(nf_model_count_params(&big, 2, &need, &err) == NF_OK && need > ((int64_t)1 << 34));
        snprintf(want, sizeof want, "%s: %lld parameters stored, the configuration needs %lld", path, (long long)np,
                 (long long)need);
        CHECK(strcmp(err.msg, want) == 0);
        if (strcmp(err.msg, want) != 0) fprintf(stderr, "  got: %s\n  want: %s\n", err.msg, want);
    }
    remove(path);
}

int main(void)
{
    RUN(test_layer_gradients);
    RUN(test_model_gradients);
    RUN(test_variant_gradients);
    RUN(test_variant_layout);
    RUN(test_embed);
    RUN(test_batch_rows);
    RUN(test_variant_files);
    RUN(test_losses);
    RUN(test_optimiser);
    RUN(test_files_and_devices);
    RUN(test_file_limits);
    return CT_DONE();
}
