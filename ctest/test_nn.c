/* test_nn.c — C unit tests of the predictor engine: layer and model gradient checks,
 * losses against hand-computed values, AdamW, cosine schedule, model files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctest.h"
#include "nf_model.h"

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
            if (variant == 2) { o.quirk_gat_mask_zero = 1; o.quirk_gat_nscale = 1; o.gat_slope = 0.01f; }
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

int main(void)
{
    RUN(test_layer_gradients);
    RUN(test_model_gradients);
    RUN(test_losses);
    RUN(test_optimiser);
    RUN(test_files_and_devices);
    return CT_DONE();
}
