/* nf_fbnet.c — FBNet (22 layers × 9 blocks): arch strings, chain/identity graphs and the
 * CIFAR-100 macro network of HW-NAS-Bench (conventions in nf_space.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "nf_space.h"

static const char *const BLOCKS[NF_FBNET_BLOCKS] = {
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
};
/* kernel, expansion, groups of the inverted-residual blocks 0..7 */
static const int BK[8] = {3, 3, 3, 3, 5, 5, 5, 5};
static const int BE[8] = {1, 1, 3, 6, 1, 1, 3, 6};
static const int BG[8] = {1, 2, 1, 1, 1, 2, 1, 1};

static const int STAGE_LAYERS[7] = {1, 4, 4, 4, 4, 4, 1};
static const int STAGE_CH[7] = {16, 24, 32, 64, 112, 184, 352};
static const int STAGE_STRIDE[7] = {1, 1, 2, 2, 1, 2, 1};   /* CIFAR setting */
enum { STEM_CH = 16, HEAD_CH = 1504, CLASSES = 100, INPUT_HW = 32 };

nf_status nf_fbnet_parse(const char *s, uint8_t *code, nf_err *err)
{
    if (!s || !*s) return nf_seterr(err, NF_EFORMAT, "fbnet arch string: empty string");
    uint8_t tmp[NF_FBNET_LAYERS];
    size_t pos = 0;
    int k = 0;
    for (;;) {
        size_t start = pos;
        while (s[pos] && s[pos] != '-') pos++;
        size_t len = pos - start;
        if (k == NF_FBNET_LAYERS)
            return nf_seterr(err, NF_EFORMAT, "fbnet arch string: more than 22 blocks at column %zu", start + 1);
        if (len == 0)
            return nf_seterr(err, NF_EFORMAT, "fbnet arch string: missing block at column %zu (layer %d)", start + 1, k + 1);
        int b = -1;
        if (len == 1 && isdigit((unsigned char)s[start])) {
            if (s[start] <= '8') b = s[start] - '0';
        } else {
            for (int i = 0; i < NF_FBNET_BLOCKS; i++)
                if (strlen(BLOCKS[i]) == len && memcmp(BLOCKS[i], s + start, len) == 0) b = i;
        }
        if (b < 0) {
            char shown[4 * 40 + 4];   /* at most 40 bytes of the string, escaped */
            nf_space_escape(s + start, len > 40 ? 40 : len, shown, sizeof shown);
            return nf_seterr(err, NF_EFORMAT,
                             "fbnet arch string: unknown block '%s' at column %zu (layer %d; expected 0..8 or a block name)",
                             shown, start + 1, k + 1);
        }
        tmp[k++] = (uint8_t)b;
        if (!s[pos]) break;
        pos++;
    }
    if (k != NF_FBNET_LAYERS)
        return nf_seterr(err, NF_EFORMAT, "fbnet arch string: expected 22 blocks joined by '-' (got %d)", k);
    memcpy(code, tmp, sizeof tmp);
    return NF_OK;
}

int nf_fbnet_format(const uint8_t *code, char *buf, size_t n)
{
    if (n < 2 * NF_FBNET_LAYERS) {
        if (n) buf[0] = 0;
        return -1;
    }
    for (int k = 0; k < NF_FBNET_LAYERS; k++) {
        buf[2 * k] = (char)('0' + code[k]);
        buf[2 * k + 1] = k + 1 < NF_FBNET_LAYERS ? '-' : 0;
    }
    return 2 * NF_FBNET_LAYERS - 1;
}

void nf_fbnet_graph(const uint8_t *code, int flags, int32_t *node_ops, float *adj)
{
    enum { N = NF_FBNET_LAYERS };
    if (node_ops)
        for (int k = 0; k < N; k++) node_ops[k] = code[k];
    if (adj) {
        memset(adj, 0, sizeof(float) * N * N);
        for (int k = 0; k < N; k++) {
            if (flags & NF_GRAPH_FBNET_IDENTITY) adj[k * N + k] = 1.0f;
            else if (k + 1 < N) adj[k * N + k + 1] = 1.0f;
        }
    }
}

/* ------------------------------------------------------------------ layers */
static nf_layer *push(nf_layer *L, int *n, nf_layer_kind kind, int cin, int cout, int hin, int hout, int block)
{
    nf_layer *l = &L[(*n)++];
    nf_layer_init(l, kind, cin, cout, hin, hout, block, 1);
    return l;
}

/* conv k×k/stride (groups) → BN → optional ReLU; count_relu: whether flopth counts that ReLU. */
static void conv(nf_layer *L, int *n, int cin, int cout, int k, int stride, int groups, int hin,
                 int relu, int count_relu, int block)
{
    int hout = hin / stride;
    nf_layer *l = push(L, n, groups == cin && groups == cout && groups > 1 ? NF_LAYER_DWCONV : NF_LAYER_CONV,
                       cin, cout, hin, hout, block);
    l->kernel = k;
    l->stride = stride;
    l->groups = groups;
    l->bn = 1;
    l->relu_out = relu;
    double out = (double)cout * hout * hout;
    l->flops = (double)k * k * cin * (cout / groups) * hout * hout + 2 * out + (relu && count_relu ? out : 0);
    l->params = (double)k * k * cin * (cout / groups) + 2.0 * cout;
}

int nf_fbnet_layers(const uint8_t *code, nf_layer *L)
{
    int n = 0, H = INPUT_HW;
    conv(L, &n, 3, STEM_CH, 3, 1, 1, H, 1, 1, -1);
    int cin = STEM_CH, layer = 0;
    for (int st = 0; st < 7; st++) {
        for (int i = 0; i < STAGE_LAYERS[st]; i++, layer++) {
            int cout = STAGE_CH[st], s = i == 0 ? STAGE_STRIDE[st] : 1, b = code[layer];
            if (b == 8) {
                if (s != 1 || cin != cout) conv(L, &n, cin, cout, 1, s, 1, H, 1, 1, layer);
            } else {
                int m = cin * BE[b], g = BG[b], k = BK[b];
                /* the block's single ReLU module runs twice; flopth counts it once (after the depthwise) */
                conv(L, &n, cin, m, 1, 1, g, H, 1, 0, layer);
                if (g > 1) push(L, &n, NF_LAYER_SHUFFLE, m, m, H, H, layer);
                conv(L, &n, m, m, k, s, m, H, 1, 1, layer);
                conv(L, &n, m, cout, 1, 1, g, H / s, 0, 0, layer);
                if (cin == cout && s == 1) {
                    nf_layer *a = push(L, &n, NF_LAYER_ADD, cout, cout, H, H, layer);
                    a->arity = a->arity_nonzero = 2;
                    a->in_bytes *= 2;
                }
            }
            H /= s;
            cin = cout;
        }
    }
    conv(L, &n, cin, HEAD_CH, 1, 1, 1, H, 1, 1, -1);
    nf_layer *l = push(L, &n, NF_LAYER_GPOOL, HEAD_CH, HEAD_CH, H, 1, -1);
    l->kernel = H;
    l->stride = H;
    l->flops = (double)HEAD_CH * H * H;
    l = push(L, &n, NF_LAYER_LINEAR, HEAD_CH, CLASSES, 1, 1, -1);
    l->flops = (double)HEAD_CH * CLASSES;
    l->params = (double)HEAD_CH * CLASSES + CLASSES;
    return n;
}

const char *nf_fbnet_block_name(int b) { return b >= 0 && b < NF_FBNET_BLOCKS ? BLOCKS[b] : NULL; }
