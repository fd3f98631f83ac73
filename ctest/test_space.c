/* test_space.c — search spaces: parsing, formatting, hand-checked NB201 graphs, cost, sampling. */
#include <string.h>
#include "ctest.h"
#include "nf_space.h"
#include "nf_zoo.h"

#define NB NF_SPACE_NB201
#define FB NF_SPACE_FBNET

static int graph_is(const char *arch, int flags, const int32_t want_ops[8], const char *const edges)
{
    /* edges: "a>b a>b ..." over node indices 0..7 */
    uint8_t code[6];
    int32_t ops[8];
    float adj[64];
    if (nf_space_parse(NB, arch, code, NULL) != NF_OK) return 0;
    if (nf_space_graph(NB, code, flags, ops, adj, NULL) != NF_OK) return 0;
    float want[64] = {0};
    for (const char *p = edges; *p; p++)
        if (p[1] == '>') want[(p[0] - '0') * 8 + (p[2] - '0')] = 1;
    int ok = memcmp(ops, want_ops, sizeof ops) == 0 && memcmp(adj, want, sizeof adj) == 0;
    if (!ok) {
        fprintf(stderr, "graph of %s:\n ops", arch);
        for (int i = 0; i < 8; i++) fprintf(stderr, " %d", ops[i]);
        fprintf(stderr, "\n edges");
        for (int i = 0; i < 64; i++)
            if (adj[i] != 0) fprintf(stderr, " %d>%d", i / 8, i % 8);
        fprintf(stderr, "\n");
    }
    return ok;
}

/* Node order: 0 input, 1..6 = edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3, 7 output.
 * Vocabulary: input 0, output 1, none 2, skip 3, conv1x1 4, conv3x3 5, avgpool 6. */
static void test_nb201_graphs_by_hand(void)
{
    /* all conv3x3: nothing pruned, the base graph of METHOD §2 */
    CHECK(graph_is("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", 0,
                   (const int32_t[]){0, 5, 5, 5, 5, 5, 5, 1}, "0>1 0>2 0>4 1>3 1>5 2>6 3>6 4>7 5>7 6>7"));
    /* the raw flag keeps the base graph whatever the ops */
    CHECK(graph_is("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|", NF_GRAPH_NB201_RAW,
                   (const int32_t[]){0, 2, 3, 2, 2, 2, 2, 1}, "0>1 0>2 0>4 1>3 1>5 2>6 3>6 4>7 5>7 6>7"));
    /* all none: every edge-op cut, no path, nothing left */
    CHECK(graph_is("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 0,
                   (const int32_t[]){0, 2, 2, 2, 2, 2, 2, 1}, ""));
    /* all skip_connect: every node bypassed, input wired straight to output */
    CHECK(graph_is("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|", 0,
                   (const int32_t[]){0, 3, 3, 3, 3, 3, 3, 1}, "0>7"));
    /* no input->output path: conv 0->1 leads only into none edges, conv 2->3 has no input */
    CHECK(graph_is("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|", 0,
                   (const int32_t[]){0, 5, 2, 2, 2, 2, 5, 1}, ""));
    /* dead branch: conv3x3 on 0->1 feeds only none edges and is dropped; skip 0->3 becomes input->output */
    CHECK(graph_is("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|", 0,
                   (const int32_t[]){0, 5, 4, 2, 3, 2, 6, 1}, "0>2 0>7 2>6 6>7"));
    CHECK(graph_is("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|", NF_GRAPH_DEAD_AS_NONE,
                   (const int32_t[]){0, 2, 4, 2, 2, 2, 6, 1}, "0>2 0>7 2>6 6>7"));
    /* a chain of skips contracts: input -skip-> 1 -skip-> 2 -conv1x1-> 3 */
    CHECK(graph_is("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|", 0,
                   (const int32_t[]){0, 3, 2, 3, 2, 2, 4, 1}, "0>6 6>7"));
    /* data row 0: skips on 1->2, 1->3, 2->3 are bypassed */
    CHECK(graph_is("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|", 0,
                   (const int32_t[]){0, 6, 4, 3, 4, 3, 3, 1}, "0>1 0>2 0>4 1>7 2>7 4>7"));
}

static void test_nb201_parse_errors(void)
{
    uint8_t code[6] = {9, 9, 9, 9, 9, 9};
    nf_err e;
    CHECK(nf_space_parse(NB, "|nor_conv_3x3~0|+|none~0|conv_3x3~1|+|none~0|none~1|none~2|", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: unknown op 'conv_3x3' (expected none, skip_connect, nor_conv_1x1, "
                        "nor_conv_3x3 or avg_pool_3x3) at column 26 (edge 3, 1->2)") == 0);
    CHECK(code[0] == 9);   /* untouched on failure */
    CHECK(nf_space_parse(NB, "|none~0|+|none~1|none~1|+|none~0|none~1|none~2|", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: expected input node ~0, found '~1' at column 16 (edge 2, 0->2)") == 0);
    CHECK(nf_space_parse(NB, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: expected '|', found '' at column 47 (edge 6, 2->3)") == 0);
    CHECK(nf_space_parse(NB, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|x", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: unexpected trailing text 'x' at column 48") == 0);
    CHECK(nf_space_parse(NB, "|none~0|none~0|none~1|+|none~0|none~1|none~2|", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: expected '+' between nodes, found 'n' at column 9") == 0);
    CHECK(nf_space_parse(NB, "", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: empty string") == 0);
    CHECK(nf_space_parse(NB, "4-2-1-2-1-7", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: op id '7' is not one of 0..4 at column 11 (edge 6, 2->3)") == 0);
    CHECK(nf_space_parse(NB, "4-2-1-2-1", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "nb201 arch string: expected 6 op ids joined by '-' (got 5)") == 0);
    CHECK(code[0] == 9);
}

/* Issue 15 item 9: a NUL byte is refused (not a shorter string); quoted bytes are escaped in messages. */
#define CHECK_MSG(got, want) do { const char *g_ = (got); CHECK(strcmp(g_, (want)) == 0); \
    if (strcmp(g_, (want))) fprintf(stderr, "  got:  %s\n  want: %s\n", g_, (want)); } while (0)

static void test_parse_nul_and_escapes(void)
{
    uint8_t code[22] = {9, 9, 9, 9, 9, 9};
    nf_err e;
    /* "4-2-1" then NUL: nf_space_parse would have read "4-2-1" */
    CHECK(nf_space_parse_n(NB, "4-2-1\0-2-1-1", 11, code, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "nb201 arch string: NUL byte at column 6 (an arch string cannot contain NUL bytes)");
    static const char ok201[] = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|";
    CHECK(nf_space_parse_n(NB, ok201, sizeof ok201 - 1, code, &e) == NF_OK && code[0] == 3 && code[5] == 4);
    CHECK(nf_space_parse_n(NB, ok201, 16, code, &e) == NF_EFORMAT);   /* the length, not a NUL, ends it */
    CHECK_MSG(e.msg, "nb201 arch string: expected '+' between nodes, found '' at column 17");
    code[0] = 9;
    CHECK(nf_space_parse_n(FB, "7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5\0", 44, code, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "fbnet arch string: NUL byte at column 44 (an arch string cannot contain NUL bytes)");
    CHECK(code[0] == 9);
    char big[NF_SPACE_MAX_PARSE + 8];
    memset(big, '1', sizeof big);
    CHECK(nf_space_parse_n(FB, big, NF_SPACE_MAX_PARSE, code, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "fbnet arch string: too long (1024 bytes; at most 1023)");
    /* control bytes, DEL, non-ASCII and backslashes are echoed escaped (a terminal would obey a raw ESC) */
    CHECK(nf_space_parse(NB, "|nor_conv\x1b[2J~0|+|none~0|none~1|+|none~0|none~1|none~2|", code, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "nb201 arch string: unknown op 'nor_conv\\x1b[2J' (expected none, skip_connect, nor_conv_1x1, "
                     "nor_conv_3x3 or avg_pool_3x3) at column 2 (edge 1, 0->1)");
    CHECK(nf_space_parse(NB, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\r\n\\\x7f\xc3\xa9", code, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "nb201 arch string: unexpected trailing text '\\x0d\\x0a\\\\\\x7f\\xc3\\xa9' at column 48");
    CHECK(nf_space_parse(FB, "7-8-1-8-\x07\x08-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5", code, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "fbnet arch string: unknown block '\\x07\\x08' at column 9 (layer 5; expected 0..8 or a block name)");
    CHECK(code[0] == 9);
    char out[8];
    CHECK(strcmp(nf_space_escape("ab\x01", 3, out, 6), "ab") == 0);   /* cut at a whole escape */
    CHECK(strcmp(nf_space_escape("ab\x01", 3, out, 7), "ab\\x01") == 0);
}

static void test_nb201_format_index(void)
{
    uint8_t code[6], back[6];
    char buf[NF_SPACE_MAX_STRING];
    const char *s = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";
    CHECK(nf_space_parse(NB, s, code, NULL) == NF_OK);
    CHECK(memcmp(code, (const uint8_t[]){4, 2, 1, 2, 1, 1}, 6) == 0);
    CHECK(nf_space_parse(NB, "4-2-1-2-1-1", back, NULL) == NF_OK);
    CHECK(memcmp(code, back, 6) == 0);
    CHECK(nf_space_format(NB, code, buf, sizeof buf) == (int)strlen(s));
    CHECK(strcmp(buf, s) == 0);
    CHECK(nf_space_format(NB, code, buf, 10) == -1 && buf[0] == 0);
    /* enumeration index <-> code, over the whole space */
    int ok = 1;
    for (int64_t i = 0; i < NF_NB201_SIZE; i++) {
        if (nf_space_from_index(NB, i, code, NULL) != NF_OK || nf_space_index(NB, code) != i) ok = 0;
        if (nf_space_format(NB, code, buf, sizeof buf) < 0 || nf_space_parse(NB, buf, back, NULL) != NF_OK ||
            memcmp(code, back, 6) != 0) ok = 0;
    }
    CHECK(ok);
    nf_err e;
    CHECK(nf_space_from_index(NB, NF_NB201_SIZE, code, &e) == NF_ERANGE);
    CHECK(strcmp(e.msg, "nb201: index 15625 out of range 0..15624") == 0);
    CHECK(nf_space_from_index(FB, 0, code, &e) == NF_EINVAL);
    CHECK(nf_space_index(NB, (const uint8_t[]){0, 0, 0, 0, 0, 5}) == -1);
}

static void test_fbnet(void)
{
    uint8_t code[22], back[22];
    char buf[NF_SPACE_MAX_STRING];
    const char *s = "7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5";
    CHECK(nf_space_parse(FB, s, code, NULL) == NF_OK);
    CHECK(nf_space_parse(FB, "k5_e6-skip-k3_e1_g2-skip-k5_e1-skip-skip-skip-k5_e6-k5_e1-k3_e1_g2-k5_e1-k5_e6-k3_e6-"
                             "k3_e3-k5_e6-k3_e6-k3_e3-k5_e1-k3_e3-k5_e1-k5_e1_g2", back, NULL) == NF_OK);
    CHECK(memcmp(code, back, 22) == 0);
    CHECK(nf_space_format(FB, code, buf, sizeof buf) == 43 && strcmp(buf, s) == 0);
    nf_err e;
    CHECK(nf_space_parse(FB, "7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "fbnet arch string: expected 22 blocks joined by '-' (got 21)") == 0);
    CHECK(nf_space_parse(FB, "7-8-1-8-4-8-8-8-7-9-1-4-7-3-2-7-3-2-4-2-4-5", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "fbnet arch string: unknown block '9' at column 19 (layer 10; expected 0..8 or a block name)") == 0);
    CHECK(nf_space_parse(FB, "7--1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5", code, &e) == NF_EFORMAT);
    CHECK(strcmp(e.msg, "fbnet arch string: missing block at column 3 (layer 2)") == 0);

    /* chain and identity graphs */
    int32_t ops[22];
    float adj[22 * 22];
    CHECK(nf_space_parse(FB, s, code, NULL) == NF_OK);
    CHECK(nf_space_graph(FB, code, 0, ops, adj, NULL) == NF_OK);
    CHECK(ops[0] == 7 && ops[1] == 8 && ops[21] == 5);
    double sum = 0;
    for (int i = 0; i < 22 * 22; i++) sum += adj[i];
    CHECK(sum == 21 && adj[0 * 22 + 1] == 1 && adj[20 * 22 + 21] == 1 && adj[21 * 22 + 0] == 0);
    CHECK(nf_space_graph(FB, code, NF_GRAPH_FBNET_IDENTITY, ops, adj, NULL) == NF_OK);
    sum = 0;
    for (int i = 0; i < 22; i++) sum += adj[i * 22 + i];
    CHECK(sum == 22 && adj[1] == 0);

    /* cost of data row 0 against zcp/fbnet_zcp.csv: params 1790500, flops 70098816 */
    double p, f;
    CHECK(nf_space_cost(FB, code, 0, &p, &f, NULL) == NF_OK);
    CHECK_NEAR(p, 1.7905, 1e-12);
    CHECK_NEAR(f, 70.098816, 1e-9);
    float feat[11];
    CHECK(nf_space_struct_features(FB, code, 1, feat, NULL) == NF_OK);
    CHECK(feat[8] == 5 && feat[7] == 4 && feat[0] == 0);   /* 5 skips, 4 k5_e6, no k3_e1 */
    CHECK_NEAR(feat[9], log(70.098816), 1e-5);
    CHECK_NEAR(feat[10], log(1.7905), 1e-5);
}

static void test_nb201_cost_and_layers(void)
{
    /* data row 0 of nb201_cost.csv */
    uint8_t code[6] = {4, 2, 1, 2, 1, 1};
    const double want[3][2] = {{0.129306, 17.958592}, {0.135156, 17.964352}, {0.136456, 4.497472}};
    for (int d = 0; d < 3; d++) {
        double p, f;
        CHECK(nf_space_cost(NB, code, d, &p, &f, NULL) == NF_OK);
        CHECK_NEAR(p, want[d][0], 1e-9);
        CHECK_NEAR(f, want[d][1], 1e-9);
    }
    CHECK(nf_space_dataset(NB, "ImageNet16-120") == 2 && nf_space_dataset(NB, "CIFAR100") == 1);
    CHECK(nf_space_dataset(NB, NULL) == 0 && nf_space_dataset(NB, "svhn") == -1);
    CHECK(nf_space_dataset(FB, "cifar100") == 0 && nf_space_dataset(FB, "cifar10") == -1);
    nf_err e;
    double p;
    CHECK(nf_space_cost(NB, code, 3, &p, NULL, &e) == NF_EINVAL);
    CHECK(strcmp(e.msg, "nb201: dataset 3 out of range 0..2") == 0);

    /* layers: the dead conv3x3 of the dead-branch cell is not live; zero ops never are */
    nf_layer L[NF_SPACE_MAX_LAYERS];
    int n;
    CHECK(nf_space_parse(NB, "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|", code, NULL) == NF_OK);
    CHECK(nf_space_layers(NB, code, 0, L, NF_SPACE_MAX_LAYERS, &n, NULL) == NF_OK);
    int conv3_dead = 0, conv1_live = 0, zeros = 0;
    for (int i = 0; i < n; i++) {
        if (L[i].block < 0) continue;
        if (L[i].kind == NF_LAYER_CONV && L[i].kernel == 3 && !L[i].live) conv3_dead++;
        if (L[i].kind == NF_LAYER_CONV && L[i].kernel == 1 && L[i].live) conv1_live++;
        if (L[i].kind == NF_LAYER_ZERO && !L[i].live) zeros++;
    }
    CHECK(conv3_dead == 15 && conv1_live == 15 && zeros == 30);
    /* sums of cell nodes 2 (edges 0->2 conv1x1, 1->2 none) and 3 (0->3 skip, 1->3 none, 2->3 pool) */
    int adds = 0, ok_arity = 1;
    for (int i = 0; i < n; i++)
        if (L[i].kind == NF_LAYER_ADD && L[i].block >= 0) {
            adds++;
            if (L[i].arity == 2 && L[i].arity_nonzero != 1) ok_arity = 0;
            if (L[i].arity == 3 && L[i].arity_nonzero != 2) ok_arity = 0;
        }
    CHECK(adds == 30 && ok_arity);
    CHECK(nf_space_layers(NB, code, 0, L, 10, &n, &e) == NF_ERANGE);
    /* the worst case fits: every op a conv */
    CHECK(nf_space_layers(NB, (const uint8_t[]){3, 3, 3, 3, 3, 3}, 0, L, NF_SPACE_MAX_LAYERS, &n, NULL) == NF_OK);
    CHECK(n == 1 + 15 * 8 + 2 * 5 + 3);
    CHECK(strcmp(nf_layer_kind_name(L[0].kind), "conv") == 0 && L[n - 1].kind == NF_LAYER_LINEAR);

    float feat[8];
    CHECK(nf_space_struct_features(NB, code, 1, feat, NULL) == NF_OK);
    /* ops: 2 none, 1 skip, 1 conv1x1, 1 conv3x3, 1 pool; effective: conv1x1 1, conv3x3 0, pool 1 */
    const float wantf[8] = {2, 1, 1, 1, 1, 1, 0, 1};
    CHECK(memcmp(feat, wantf, sizeof feat) == 0);
}

static void test_sample(void)
{
    nf_rng r;
    nf_rng_seed(&r, 5);
    static uint8_t codes[NF_NB201_SIZE * 6];
    CHECK(nf_space_sample(NB, &r, NF_NB201_SIZE, codes, NULL) == NF_OK);
    static char seen[NF_NB201_SIZE];
    int distinct = 1;
    for (int i = 0; i < NF_NB201_SIZE; i++) {
        int64_t k = nf_space_index(NB, codes + i * 6);
        if (k < 0 || seen[k]) distinct = 0;
        else seen[k] = 1;
    }
    CHECK(distinct);
    nf_err e;
    CHECK(nf_space_sample(NB, &r, NF_NB201_SIZE + 1, codes, &e) == NF_ERANGE);
    CHECK(strcmp(e.msg, "nb201 sample: cannot draw 15626 distinct architectures from 15625") == 0);

    static uint8_t fb[2000 * 22], fb2[2000 * 22];
    nf_rng_seed(&r, 9);
    CHECK(nf_space_sample(FB, &r, 2000, fb, NULL) == NF_OK);
    nf_rng_seed(&r, 9);
    CHECK(nf_space_sample(FB, &r, 2000, fb2, NULL) == NF_OK);
    CHECK(memcmp(fb, fb2, sizeof fb) == 0);   /* same seed, same draws */
    int counts[9] = {0}, bad = 0;
    for (int i = 0; i < 2000 * 22; i++) {
        if (fb[i] > 8) bad = 1;
        else counts[fb[i]]++;
    }
    CHECK(!bad);
    for (int b = 0; b < 9; b++) CHECK(counts[b] > 4400 && counts[b] < 5400);   /* 44000/9 ≈ 4889 */
}

static void test_graphs_batched(void)
{
    static uint8_t codes[NF_NB201_SIZE * 6];
    for (int64_t i = 0; i < NF_NB201_SIZE; i++) nf_space_from_index(NB, i, codes + i * 6, NULL);
    static int32_t ops[NF_NB201_SIZE * 8];
    static float opsf[NF_NB201_SIZE * 8], adj[NF_NB201_SIZE * 64];
    CHECK(nf_space_graphs(NB, codes, NF_NB201_SIZE, 0, ops, opsf, adj, NULL) == NF_OK);
    /* batched == one by one */
    int same = 1;
    for (int64_t i = 0; i < NF_NB201_SIZE; i += 97) {
        int32_t o[8];
        float a[64];
        nf_space_graph(NB, codes + i * 6, 0, o, a, NULL);
        if (memcmp(o, ops + i * 8, sizeof o) || memcmp(a, adj + i * 64, sizeof a) || opsf[i * 8 + 3] != (float)o[3]) same = 0;
    }
    CHECK(same);
    /* 341 cells have no input->output path (the data's connected=0 count) */
    int empty = 0;
    for (int64_t i = 0; i < NF_NB201_SIZE; i++) {
        int any = 0;
        for (int j = 0; j < 64; j++) any |= adj[i * 64 + j] != 0;
        empty += !any;
    }
    CHECK(empty == 341);
    codes[5 * 6 + 2] = 7;
    nf_err e;
    CHECK(nf_space_graphs(NB, codes, 10, 0, ops, NULL, adj, &e) == NF_EINVAL);
    CHECK(strcmp(e.msg, "row 5: nb201 code: position 3 holds 7 (expected 0..4)") == 0);
}

static void test_zoo(void)
{
    CHECK(nf_zoo_n_devices() == 13);
    CHECK(nf_zoo_device_index("fpga_dataflow") == 12 && nf_zoo_device_index("nope") == -1);
    CHECK(strcmp(nf_zoo_device_class(0), "gpu_b1") == 0 && nf_zoo_device_name(13) == NULL);
    int devs[2] = {nf_zoo_device_index("dsp_a_int8"), nf_zoo_device_index("gpu_server_a_b1")};
    nf_zoo_opts o = nf_zoo_opts_default(NB, 3);
    o.devices = devs;
    o.n_devices = 2;
    nf_latency a, b;
    nf_err e;
    CHECK(nf_zoo_latency(&o, &a, &e) == NF_OK);
    CHECK(nf_zoo_latency(&o, &b, &e) == NF_OK);
    CHECK(a.n_archs == NF_NB201_SIZE && a.n_devices == 2);
    CHECK(memcmp(a.ms, b.ms, sizeof(float) * (size_t)a.n_archs * 2) == 0);   /* same seed, same numbers */
    CHECK(a.n_measured[0] == NF_NB201_SIZE - 341 && a.n_measured[1] == NF_NB201_SIZE);
    CHECK(strcmp(a.devices[0], "dsp_a_int8") == 0 && strcmp(a.arch_strings[1], "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|") == 0);
    /* the noise is log-normal around the model value */
    double clean;
    uint8_t code[6];
    nf_space_from_index(NB, 1234, code, NULL);
    CHECK(nf_zoo_latency_one(NB, code, devs[1], &clean, NULL) == NF_OK);
    CHECK(fabs(a.ms[1234 * 2 + 1] / clean - 1) < 0.06);
    nf_latency_free(&a);
    nf_latency_free(&b);
    int twice[2] = {1, 1};
    o.devices = twice;
    CHECK(nf_zoo_latency(&o, &a, &e) == NF_EINVAL);
    CHECK(strcmp(e.msg, "zoo: device 'gpu_server_b_b1' asked for twice") == 0);
    o = nf_zoo_opts_default(FB, 1);
    o.n_archs = 20;
    CHECK(nf_zoo_latency(&o, &a, NULL) == NF_OK);
    CHECK(a.n_archs == 20 && a.n_devices == 13 && strlen(a.arch_strings[0]) == 43);
    nf_latency_free(&a);
}

static void test_names(void)
{
    CHECK(nf_space_from_name("nb201") == NB && nf_space_from_name("FBNet") == FB && nf_space_from_name("darts") == -1);
    CHECK(nf_space_code_len(NB) == 6 && nf_space_code_len(FB) == 22);
    CHECK(nf_space_nodes(NB) == 8 && nf_space_nodes(FB) == 22);
    CHECK(nf_space_vocab(NB) == 7 && nf_space_vocab(FB) == 9);
    CHECK(strcmp(nf_space_vocab_name(NB, 0), "input") == 0 && strcmp(nf_space_vocab_name(NB, 1), "output") == 0);
    CHECK(strcmp(nf_space_vocab_name(NB, 6), "avg_pool_3x3") == 0 && nf_space_vocab_name(NB, 7) == NULL);
    CHECK(strcmp(nf_space_vocab_name(FB, 8), "skip") == 0);
    CHECK(nf_space_size(NB) == 15625.0);
    CHECK_NEAR(nf_space_size(FB) / 9.8477090218361123e20, 1.0, 1e-12);
}

/* Roofline features: the all-conv3x3 cell's columns against the layer list, monotone in the balance; eager and
 * compiled equal for a cell without dead branches; errors are status codes. */
static void test_roof_features(void)
{
    uint8_t code[2 * NF_SPACE_MAX_CODE];
    CHECK(nf_space_parse(NB, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                         "nor_conv_3x3~2|", code, NULL) == NF_OK);
    CHECK(nf_space_parse(NB, "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
                         code + nf_space_code_len(NB), NULL) == NF_OK);
    float eager[2 * NF_ROOF_DIM], live[2 * NF_ROOF_DIM];
    CHECK(nf_space_roof_features(NB, code, 2, 0, 0, eager, NULL) == NF_OK);
    CHECK(nf_space_roof_features(NB, code, 2, 0, 1, live, NULL) == NF_OK);
    nf_layer layers[NF_SPACE_MAX_LAYERS];
    int n = 0;
    CHECK(nf_space_layers(NB, code, 0, layers, NF_SPACE_MAX_LAYERS, &n, NULL) == NF_OK);
    double want[NF_ROOF_DIM] = {0};
    for (int i = 0; i < n; i++) {
        double mb = (layers[i].in_bytes + layers[i].out_bytes) / 1e6, mf = layers[i].flops / 1e6;
        want[0] += 1;
        for (int j = 0; j < NF_ROOF_N_BALANCES; j++) want[1 + j] += fmax(mf, NF_ROOF_BALANCE[j] * mb);
    }
    for (int j = 0; j < NF_ROOF_DIM; j++) {
        CHECK_NEAR(eager[j], want[j], 1e-5 * want[j]);
        CHECK_NEAR(live[j], eager[j], 1e-6 * want[j]);   /* no dead branch, no zero op */
        if (j > 1) CHECK(eager[j] >= eager[j - 1]);
    }
    CHECK(eager[NF_ROOF_DIM] > live[NF_ROOF_DIM]);   /* the second cell's dead branch and zero ops */
    nf_err e;
    CHECK(nf_space_roof_features((nf_space_id)7, code, 1, 0, 0, eager, &e) == NF_EINVAL);
    CHECK(strstr(e.msg, "unknown search space id 7") != NULL);
    CHECK(nf_space_roof_features(NB, code, 1, 9, 0, eager, &e) != NF_OK);
}

/* Roofline variants: "weights" adds 4 bytes per parameter to each layer's traffic, "floors" appends
 * max(t, b × f) sums, which equal the plain columns when f is 0 and grow with f; unknown flags are refused. */
static void test_roof_variants(void)
{
    uint8_t code[NF_SPACE_MAX_CODE];
    CHECK(nf_space_parse(FB, "k3_e1-k3_e3-skip-k5_e6-k3_e1_g2-k5_e1_g2-k3_e6-k5_e3-skip-k3_e3-k3_e6-k5_e1-k5_e6-"
                         "k3_e1-k3_e3-k5_e3-k3_e6-skip-k5_e6-k3_e1_g2-k5_e1_g2-k3_e3", code, NULL) == NF_OK);
    CHECK(nf_space_roof_dim(0) == NF_ROOF_DIM);
    CHECK(nf_space_roof_dim(NF_ROOF_WEIGHTS) == NF_ROOF_DIM);
    CHECK(nf_space_roof_dim(NF_ROOF_FLOORS) == NF_ROOF_MAX_DIM);
    CHECK(nf_space_roof_dim(NF_ROOF_FLOORS | NF_ROOF_WEIGHTS) == NF_ROOF_MAX_DIM);
    CHECK(nf_space_roof_dim(4) == -1);
    float plain[NF_ROOF_DIM], w[NF_ROOF_DIM], fl[NF_ROOF_MAX_DIM];
    CHECK(nf_space_roof_features(FB, code, 1, 0, 0, plain, NULL) == NF_OK);
    CHECK(nf_space_roof_features_ex(FB, code, 1, 0, 0, NF_ROOF_WEIGHTS, w, NULL) == NF_OK);
    CHECK(nf_space_roof_features_ex(FB, code, 1, 0, 0, NF_ROOF_FLOORS, fl, NULL) == NF_OK);
    nf_layer layers[NF_SPACE_MAX_LAYERS];
    int n = 0;
    CHECK(nf_space_layers(FB, code, 0, layers, NF_SPACE_MAX_LAYERS, &n, NULL) == NF_OK);
    double want_w[NF_ROOF_DIM] = {0}, want_f[NF_ROOF_MAX_DIM] = {0};
    for (int i = 0; i < n; i++) {
        const nf_layer *l = &layers[i];
        double mf = l->flops / 1e6, mb = (l->in_bytes + l->out_bytes) / 1e6, mbw = mb + 4.0 * l->params / 1e6;
        want_w[0] += 1;
        want_f[0] += 1;
        for (int j = 0; j < NF_ROOF_N_BALANCES; j++) {
            double b = NF_ROOF_BALANCE[j], t = fmax(mf, b * mb);
            want_w[1 + j] += fmax(mf, b * mbw);
            want_f[1 + j] += t;
            for (int f = 0; f < NF_ROOF_N_FLOORS; f++)
                want_f[1 + NF_ROOF_N_BALANCES * (1 + f) + j] += fmax(t, b * NF_ROOF_FLOOR_MB[f]);
        }
    }
    for (int j = 0; j < NF_ROOF_DIM; j++) {
        CHECK_NEAR(w[j], want_w[j], 1e-5 * want_w[j]);
        CHECK_NEAR(fl[j], plain[j], 1e-6 * plain[j]);   /* the floors variant starts with the plain columns */
        if (j > 0) CHECK(w[j] > plain[j]);              /* the convolutions have weights */
    }
    for (int j = 0; j < NF_ROOF_MAX_DIM; j++) CHECK_NEAR(fl[j], want_f[j], 1e-5 * want_f[j]);
    for (int f = 0; f < NF_ROOF_N_FLOORS; f++)   /* a higher floor never lowers a sum */
        for (int j = 0; j < NF_ROOF_N_BALANCES; j++) {
            int c = 1 + NF_ROOF_N_BALANCES * (1 + f) + j;
            CHECK(fl[c] >= fl[c - NF_ROOF_N_BALANCES]);
        }
    CHECK(fl[NF_ROOF_MAX_DIM - 1] > plain[NF_ROOF_DIM - 1]);   /* the 1 MB floor binds on some small layer */
    nf_err e;
    CHECK(nf_space_roof_features_ex(FB, code, 1, 0, 0, 8, fl, &e) == NF_EINVAL);
    CHECK(strstr(e.msg, "unknown roof feature flags 0x8") != NULL);
}

int main(void)
{
    RUN(test_nb201_graphs_by_hand);
    RUN(test_nb201_parse_errors);
    RUN(test_parse_nul_and_escapes);
    RUN(test_nb201_format_index);
    RUN(test_fbnet);
    RUN(test_roof_variants);
    RUN(test_nb201_cost_and_layers);
    RUN(test_sample);
    RUN(test_graphs_batched);
    RUN(test_zoo);
    RUN(test_names);
    RUN(test_roof_features);
    return CT_DONE();
}
