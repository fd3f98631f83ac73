/* nf_nb201.c — NAS-Bench-201: arch strings, the 8-node op graph of METHOD §2, and the macro
 * network's per-layer breakdown (conventions in nf_space.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "nf_space.h"

static const char *const OPS[NF_NB201_OPS] = {
    "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
};
enum { OP_NONE = 0, OP_SKIP = 1, OP_CONV1 = 2, OP_CONV3 = 3, OP_POOL = 4 };

/* Cell edge k goes from cell node EFROM[k] to cell node ETO[k] (string order). */
static const int EFROM[NF_NB201_EDGES] = {0, 0, 1, 0, 1, 2};
static const int ETO[NF_NB201_EDGES] = {1, 2, 2, 3, 3, 3};

const char *nf_nb201_op_name(int op) { return op >= 0 && op < NF_NB201_OPS ? OPS[op] : NULL; }

static int lookup_op(const char *s, size_t len)
{
    for (int i = 0; i < NF_NB201_OPS; i++)
        if (strlen(OPS[i]) == len && memcmp(OPS[i], s, len) == 0) return i;
    return -1;
}

static nf_status bad(nf_err *err, const char *fmt, const char *part, size_t len, size_t col, int edge)
{
    char piece[4 * 40 + 4];   /* at most 40 bytes of the string, escaped */
    nf_space_escape(part, len > 40 ? 40 : len, piece, sizeof piece);
    char what[320];
    snprintf(what, sizeof what, fmt, piece);
    if (edge >= 0)
        return nf_seterr(err, NF_EFORMAT, "nb201 arch string: %s at column %zu (edge %d, %d->%d)",
                         what, col + 1, edge + 1, EFROM[edge], ETO[edge]);
    return nf_seterr(err, NF_EFORMAT, "nb201 arch string: %s at column %zu", what, col + 1);
}

/* "4-2-1-2-1-1": six op ids joined by '-'. */
static nf_status parse_vector(const char *s, uint8_t *code, nf_err *err)
{
    uint8_t tmp[NF_NB201_EDGES];
    size_t pos = 0;
    int k = 0;
    for (;;) {
        size_t start = pos;
        while (s[pos] && s[pos] != '-') pos++;
        if (k == NF_NB201_EDGES)
            return nf_seterr(err, NF_EFORMAT, "nb201 arch string: more than 6 op ids at column %zu", start + 1);
        size_t len = pos - start;
        if (len == 0) return bad(err, "missing op id%s", "", 0, start, k);
        if (len != 1 || s[start] < '0' || s[start] > '4')
            return bad(err, "op id '%s' is not one of 0..4", s + start, len, start, k);
        tmp[k++] = (uint8_t)(s[start] - '0');
        if (!s[pos]) break;
        pos++;   /* the '-' */
    }
    if (k != NF_NB201_EDGES)
        return nf_seterr(err, NF_EFORMAT, "nb201 arch string: expected 6 op ids joined by '-' (got %d)", k);
    memcpy(code, tmp, sizeof tmp);
    return NF_OK;
}

nf_status nf_nb201_parse(const char *s, uint8_t *code, nf_err *err)
{
    if (!s || !*s) return nf_seterr(err, NF_EFORMAT, "nb201 arch string: empty string");
    if (isdigit((unsigned char)s[0])) return parse_vector(s, code, err);
    uint8_t tmp[NF_NB201_EDGES];
    size_t pos = 0;
    int edge = 0;
    for (int node = 1; node <= 3; node++) {
        if (node > 1) {
            if (s[pos] != '+') return bad(err, "expected '+' between nodes, found '%s'", s + pos, s[pos] ? 1 : 0, pos, -1);
            pos++;
        }
        if (s[pos] != '|') return bad(err, "expected '|', found '%s'", s + pos, s[pos] ? 1 : 0, pos, -1);
        pos++;
        for (int from = 0; from < node; from++, edge++) {
            size_t start = pos;
            while (s[pos] && s[pos] != '~' && s[pos] != '|' && s[pos] != '+') pos++;
            size_t len = pos - start;
            if (len == 0) return bad(err, "missing op%s", "", 0, start, edge);
            int op = lookup_op(s + start, len);
            if (op < 0)
                return bad(err, "unknown op '%s' (expected none, skip_connect, nor_conv_1x1, nor_conv_3x3 or avg_pool_3x3)",
                           s + start, len, start, edge);
            if (s[pos] != '~') {
                char want[64];
                snprintf(want, sizeof want, "expected '~%d' after the op, found '%%s'", from);
                return bad(err, want, s + pos, s[pos] ? 1 : 0, pos, edge);
            }
            size_t nstart = ++pos;
            while (isdigit((unsigned char)s[pos])) pos++;
            if (pos - nstart != 1 || s[nstart] - '0' != from) {
                char want[64];
                snprintf(want, sizeof want, "expected input node ~%d, found '~%%s'", from);
                return bad(err, want, s + nstart, pos - nstart, nstart, edge);
            }
            if (s[pos] != '|') return bad(err, "expected '|', found '%s'", s + pos, s[pos] ? 1 : 0, pos, edge);
            pos++;
            tmp[edge] = (uint8_t)op;
        }
    }
    if (s[pos]) return bad(err, "unexpected trailing text '%s'", s + pos, strlen(s + pos), pos, -1);
    memcpy(code, tmp, sizeof tmp);
    return NF_OK;
}

int nf_nb201_format(const uint8_t *code, char *buf, size_t n)
{
    char tmp[NF_SPACE_MAX_STRING];
    const char *o[NF_NB201_EDGES];
    for (int k = 0; k < NF_NB201_EDGES; k++) o[k] = OPS[code[k]];
    int len = snprintf(tmp, sizeof tmp, "|%s~0|+|%s~0|%s~1|+|%s~0|%s~1|%s~2|", o[0], o[1], o[2], o[3], o[4], o[5]);
    if (len < 0 || (size_t)len >= n) {
        if (n) buf[0] = 0;
        return -1;
    }
    memcpy(buf, tmp, (size_t)len + 1);
    return len;
}

/* ------------------------------------------------------------------- graph */
#define N NF_NB201_NODES

static void base_adj(uint8_t A[N][N])
{
    memset(A, 0, sizeof(uint8_t[N][N]));
    /* edge-op k (node k+1) feeds every edge-op leaving its head node; ops into cell node 3 feed output */
    for (int k = 0; k < NF_NB201_EDGES; k++) {
        if (EFROM[k] == 0) A[0][k + 1] = 1;
        if (ETO[k] == 3) A[k + 1][N - 1] = 1;
        for (int j = 0; j < NF_NB201_EDGES; j++)
            if (EFROM[j] == ETO[k]) A[k + 1][j + 1] = 1;
    }
}

static void clear_node(uint8_t A[N][N], int k)
{
    for (int i = 0; i < N; i++) A[k][i] = A[i][k] = 0;
}

/* Prune in place (none cut, skip bypass, dead-node drop); keep[k] = node k survives. */
static void prune(const uint8_t *code, uint8_t A[N][N], int keep[N])
{
    for (int k = 0; k < NF_NB201_EDGES; k++)
        if (code[k] == OP_NONE) clear_node(A, k + 1);
    for (int k = 0; k < NF_NB201_EDGES; k++) {
        if (code[k] != OP_SKIP) continue;
        int v = k + 1, pred[N], succ[N], np = 0, ns = 0;
        for (int i = 0; i < N; i++) {
            if (A[i][v]) pred[np++] = i;
            if (A[v][i]) succ[ns++] = i;
        }
        clear_node(A, v);
        for (int a = 0; a < np; a++)
            for (int b = 0; b < ns; b++) A[pred[a]][succ[b]] = 1;
    }
    /* nodes are in topological order (every edge goes from a lower to a higher index) */
    int fwd[N] = {0}, bwd[N] = {0};
    fwd[0] = 1;
    for (int j = 1; j < N; j++)
        for (int i = 0; i < j; i++)
            if (fwd[i] && A[i][j]) { fwd[j] = 1; break; }
    bwd[N - 1] = 1;
    for (int i = N - 2; i >= 0; i--)
        for (int j = i + 1; j < N; j++)
            if (bwd[j] && A[i][j]) { bwd[i] = 1; break; }
    for (int k = 0; k < N; k++) {
        keep[k] = fwd[k] && bwd[k];
        if (!keep[k]) clear_node(A, k);
    }
}

void nf_nb201_graph(const uint8_t *code, int flags, int32_t *node_ops, float *adj)
{
    uint8_t A[N][N];
    int keep[N];
    base_adj(A);
    for (int k = 0; k < N; k++) keep[k] = 1;
    if (!(flags & NF_GRAPH_NB201_RAW)) prune(code, A, keep);
    if (node_ops) {
        node_ops[0] = 0;
        node_ops[N - 1] = 1;
        for (int k = 0; k < NF_NB201_EDGES; k++)
            node_ops[k + 1] = (flags & NF_GRAPH_DEAD_AS_NONE) && !keep[k + 1] ? 2 : code[k] + 2;
    }
    if (adj)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) adj[i * N + j] = A[i][j] ? 1.0f : 0.0f;
}

void nf_nb201_effective(const uint8_t *code, int counts[3])
{
    uint8_t A[N][N];
    int keep[N];
    base_adj(A);
    prune(code, A, keep);
    counts[0] = counts[1] = counts[2] = 0;
    for (int k = 0; k < NF_NB201_EDGES; k++)
        if (keep[k + 1] && code[k] >= OP_CONV1) counts[code[k] - OP_CONV1]++;
}
#undef N

/* ------------------------------------------------------------------ layers */
typedef struct {
    nf_layer *L;
    int n;
} lbuf;

static nf_layer *push(lbuf *b, nf_layer_kind kind, int cin, int cout, int hin, int hout, int block, int live)
{
    nf_layer *l = &b->L[b->n++];
    nf_layer_init(l, kind, cin, cout, hin, hout, block, live);
    return l;
}

/* ReLU(optional) → conv k×k/stride → BN, as the benchmark counts it. */
static void conv(lbuf *b, int cin, int cout, int k, int stride, int hin, int relu_in, int bn, int block, int live)
{
    int hout = hin / stride;
    nf_layer *l = push(b, NF_LAYER_CONV, cin, cout, hin, hout, block, live);
    l->kernel = k;
    l->stride = stride;
    l->relu_in = relu_in;
    l->bn = bn;
    double out = (double)cout * hout * hout;
    l->flops = (double)cin * k * k * out + (relu_in ? (double)cin * hin * hin : 0) + (bn ? 2 * out : 0);
    l->params = (double)cin * cout * k * k + (bn ? 2.0 * cout : 0);
}

static const int NB_CLASSES[3] = {10, 100, 120};
static const int NB_HW[3] = {32, 32, 16};

int nf_nb201_layers(const uint8_t *code, int dataset, nf_layer *layers)
{
    lbuf b = {layers, 0};
    int H = NB_HW[dataset];

    /* cell-node reachability through non-none edges: from the cell input, and to the cell output */
    int from_in[4] = {1, 0, 0, 0}, to_out[4] = {0, 0, 0, 1};
    for (int j = 1; j < 4; j++)
        for (int k = 0; k < NF_NB201_EDGES; k++)
            if (ETO[k] == j && code[k] != OP_NONE && from_in[EFROM[k]]) from_in[j] = 1;
    for (int i = 2; i >= 0; i--)
        for (int k = 0; k < NF_NB201_EDGES; k++)
            if (EFROM[k] == i && code[k] != OP_NONE && to_out[ETO[k]]) to_out[i] = 1;

    conv(&b, 3, 16, 3, 1, H, 0, 1, -1, 1);
    int cell = 0, C = 16;
    for (int stage = 0; stage < 3; stage++) {
        if (stage > 0) {
            int Cp = C, Hin = H;
            C *= 2;
            H /= 2;
            conv(&b, Cp, C, 3, 2, Hin, 1, 1, -1, 1);
            conv(&b, C, C, 3, 1, H, 1, 1, -1, 1);
            nf_layer *p = push(&b, NF_LAYER_POOL, Cp, Cp, Hin, H, -1, 1);
            p->kernel = 2;
            p->stride = 2;
            p->flops = 4.0 * Cp * H * H;
            conv(&b, Cp, C, 1, 1, H, 0, 0, -1, 1);
            nf_layer *a = push(&b, NF_LAYER_ADD, C, C, H, H, -1, 1);
            a->arity = a->arity_nonzero = 2;
            a->in_bytes *= 2;
        }
        for (int c = 0; c < 5; c++, cell++) {
            for (int k = 0; k < NF_NB201_EDGES; k++) {
                int live = code[k] != OP_NONE && from_in[EFROM[k]] && to_out[ETO[k]];
                switch (code[k]) {
                case OP_NONE: push(&b, NF_LAYER_ZERO, C, C, H, H, cell, 0); break;
                case OP_SKIP: break;   /* identity: nothing runs */
                case OP_CONV1: conv(&b, C, C, 1, 1, H, 1, 1, cell, live); break;
                case OP_CONV3: conv(&b, C, C, 3, 1, H, 1, 1, cell, live); break;
                default: {
                    nf_layer *p = push(&b, NF_LAYER_POOL, C, C, H, H, cell, live);
                    p->kernel = 3;
                    p->flops = 9.0 * C * H * H;
                }
                }
                /* after the last edge into cell node 2 or 3: the node's sum */
                if (k == 2 || k == 5) {
                    int arity = k == 2 ? 2 : 3, node = k == 2 ? 2 : 3, nonzero = 0;
                    for (int j = 0; j < NF_NB201_EDGES; j++) nonzero += ETO[j] == node && code[j] != OP_NONE;
                    nf_layer *a = push(&b, NF_LAYER_ADD, C, C, H, H, cell, from_in[node] && to_out[node]);
                    a->arity = arity;
                    a->arity_nonzero = nonzero;
                    a->in_bytes *= arity;
                }
            }
        }
    }
    nf_layer *l = push(&b, NF_LAYER_BNRELU, C, C, H, H, -1, 1);
    l->bn = 1;
    l->relu_out = 1;
    l->flops = 3.0 * C * H * H;
    l->params = 2.0 * C;
    l = push(&b, NF_LAYER_GPOOL, C, C, H, 1, -1, 1);
    l->kernel = H;
    l->stride = H;
    l->flops = (double)C * (H + 1) * (H + 1);   /* the benchmark tables' convention */
    int K = NB_CLASSES[dataset];
    l = push(&b, NF_LAYER_LINEAR, C, K, 1, 1, -1, 1);
    l->flops = (double)C * K;
    l->params = (double)C * K + K;
    return b.n;
}
