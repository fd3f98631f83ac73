/* nf_space.c — the space-independent layer over nf_nb201.c and nf_fbnet.c: names, validation,
 * enumeration, sampling, batched graphs, cost and structural features. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nf_space.h"

static int valid(nf_space_id s) { return s == NF_SPACE_NB201 || s == NF_SPACE_FBNET; }

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

int nf_space_from_name(const char *name)
{
    if (!name) return -1;
    if (ieq(name, "nb201") || ieq(name, "nasbench201") || ieq(name, "nas-bench-201")) return NF_SPACE_NB201;
    if (ieq(name, "fbnet")) return NF_SPACE_FBNET;
    return -1;
}

const char *nf_space_name(nf_space_id s)
{
    return s == NF_SPACE_NB201 ? "nb201" : s == NF_SPACE_FBNET ? "fbnet" : NULL;
}

int nf_space_code_len(nf_space_id s)
{
    return s == NF_SPACE_NB201 ? NF_NB201_EDGES : s == NF_SPACE_FBNET ? NF_FBNET_LAYERS : 0;
}

int nf_space_nodes(nf_space_id s)
{
    return s == NF_SPACE_NB201 ? NF_NB201_NODES : s == NF_SPACE_FBNET ? NF_FBNET_LAYERS : 0;
}

int nf_space_vocab(nf_space_id s)
{
    return s == NF_SPACE_NB201 ? NF_NB201_VOCAB : s == NF_SPACE_FBNET ? NF_FBNET_BLOCKS : 0;
}

int nf_space_n_choices(nf_space_id s)
{
    return s == NF_SPACE_NB201 ? NF_NB201_OPS : s == NF_SPACE_FBNET ? NF_FBNET_BLOCKS : 0;
}

int nf_space_feature_dim(nf_space_id s)
{
    return s == NF_SPACE_NB201 ? NF_NB201_FEATURES : s == NF_SPACE_FBNET ? NF_FBNET_FEATURES : 0;
}

double nf_space_size(nf_space_id s)
{
    if (!valid(s)) return 0;
    double n = 1;
    for (int i = 0; i < nf_space_code_len(s); i++) n *= nf_space_n_choices(s);
    return n;
}

const char *nf_space_choice_name(nf_space_id s, int c)
{
    return s == NF_SPACE_NB201 ? nf_nb201_op_name(c) : s == NF_SPACE_FBNET ? nf_fbnet_block_name(c) : NULL;
}

const char *nf_space_vocab_name(nf_space_id s, int v)
{
    if (s == NF_SPACE_NB201) return v == 0 ? "input" : v == 1 ? "output" : nf_nb201_op_name(v - 2);
    return nf_space_choice_name(s, v);
}

nf_status nf_space_check(nf_space_id s, const uint8_t *code, nf_err *err)
{
    if (!valid(s)) return nf_seterr(err, NF_EINVAL, "unknown search space id %d", (int)s);
    int L = nf_space_code_len(s), C = nf_space_n_choices(s);
    for (int i = 0; i < L; i++)
        if (code[i] >= C)
            return nf_seterr(err, NF_EINVAL, "%s code: position %d holds %d (expected 0..%d)",
                             nf_space_name(s), i + 1, code[i], C - 1);
    return NF_OK;
}

const char *nf_space_escape(const char *s, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    if (!cap) return out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[4];
        size_t n = 0;
        if (c == '\\') { e[0] = e[1] = '\\'; n = 2; }
        else if (c >= 0x20 && c < 0x7f) e[n++] = (char)c;
        else { e[0] = '\\'; e[1] = 'x'; e[2] = hex[c >> 4]; e[3] = hex[c & 15]; n = 4; }
        if (k + n >= cap) break;
        memcpy(out + k, e, n);
        k += n;
    }
    out[k] = '\0';
    return out;
}

nf_status nf_space_parse_n(nf_space_id s, const char *str, size_t len, uint8_t *code, nf_err *err)
{
    if (!valid(s)) return nf_seterr(err, NF_EINVAL, "unknown search space id %d", (int)s);
    if (!str) return nf_seterr(err, NF_EINVAL, "%s arch string: NULL pointer", nf_space_name(s));
    const char *z = memchr(str, '\0', len);
    if (z)
        return nf_seterr(err, NF_EFORMAT, "%s arch string: NUL byte at column %zu (an arch string cannot contain NUL bytes)",
                         nf_space_name(s), (size_t)(z - str) + 1);
    if (len >= NF_SPACE_MAX_PARSE)
        return nf_seterr(err, NF_EFORMAT, "%s arch string: too long (%zu bytes; at most %d)", nf_space_name(s), len,
                         NF_SPACE_MAX_PARSE - 1);
    char buf[NF_SPACE_MAX_PARSE];
    memcpy(buf, str, len);
    buf[len] = '\0';
    return s == NF_SPACE_NB201 ? nf_nb201_parse(buf, code, err) : nf_fbnet_parse(buf, code, err);
}

nf_status nf_space_parse(nf_space_id s, const char *str, uint8_t *code, nf_err *err)
{
    if (!valid(s)) return nf_seterr(err, NF_EINVAL, "unknown search space id %d", (int)s);
    if (!str) return nf_seterr(err, NF_EINVAL, "%s arch string: NULL pointer", nf_space_name(s));
    return nf_space_parse_n(s, str, strlen(str), code, err);
}

int nf_space_format(nf_space_id s, const uint8_t *code, char *buf, size_t n)
{
    if (nf_space_check(s, code, NULL) != NF_OK) {
        if (n) buf[0] = 0;
        return -1;
    }
    return s == NF_SPACE_NB201 ? nf_nb201_format(code, buf, n) : nf_fbnet_format(code, buf, n);
}

/* ------------------------------------------------------- enumeration, sampling */
int64_t nf_space_index(nf_space_id s, const uint8_t *code)
{
    if (s != NF_SPACE_NB201 || nf_space_check(s, code, NULL) != NF_OK) return -1;
    int64_t idx = 0;
    for (int i = 0; i < NF_NB201_EDGES; i++) idx = idx * NF_NB201_OPS + code[i];
    return idx;
}

nf_status nf_space_from_index(nf_space_id s, int64_t index, uint8_t *code, nf_err *err)
{
    if (s != NF_SPACE_NB201)
        return nf_seterr(err, NF_EINVAL, "%s: only nb201 has an enumeration index (the space is too large)",
                         valid(s) ? nf_space_name(s) : "?");
    if (index < 0 || index >= NF_NB201_SIZE)
        return nf_seterr(err, NF_ERANGE, "nb201: index %lld out of range 0..%d", (long long)index, NF_NB201_SIZE - 1);
    for (int i = NF_NB201_EDGES - 1; i >= 0; i--) {
        code[i] = (uint8_t)(index % NF_NB201_OPS);
        index /= NF_NB201_OPS;
    }
    return NF_OK;
}

static uint64_t hash_code(const uint8_t *c, int len)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (int i = 0; i < len; i++) h = (h ^ c[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

/* FBNet: uniform codes, a duplicate is redrawn (an open-addressing set of row numbers). */
static nf_status sample_fbnet(nf_rng *rng, int64_t n, uint8_t *codes, nf_err *err)
{
    const int L = NF_FBNET_LAYERS;
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    int64_t *slot = malloc(cap * sizeof *slot);
    if (!slot) return nf_seterr(err, NF_ENOMEM, "fbnet sample: out of memory for %lld codes", (long long)n);
    for (size_t i = 0; i < cap; i++) slot[i] = -1;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *c = codes + i * L;
        for (;;) {
            for (int k = 0; k < L; k++) c[k] = (uint8_t)nf_rng_below(rng, NF_FBNET_BLOCKS);
            size_t j = (size_t)hash_code(c, L) & (cap - 1);
            int dup = 0;
            while (slot[j] >= 0) {
                if (memcmp(codes + slot[j] * L, c, (size_t)L) == 0) { dup = 1; break; }
                j = (j + 1) & (cap - 1);
            }
            if (!dup) { slot[j] = i; break; }
        }
    }
    free(slot);
    return NF_OK;
}

nf_status nf_space_sample(nf_space_id s, nf_rng *rng, int64_t n, uint8_t *codes, nf_err *err)
{
    if (!valid(s)) return nf_seterr(err, NF_EINVAL, "unknown search space id %d", (int)s);
    if (n < 0) return nf_seterr(err, NF_EINVAL, "%s sample: negative count %lld", nf_space_name(s), (long long)n);
    if (s == NF_SPACE_FBNET) {
        if (n > ((int64_t)1 << 40))
            return nf_seterr(err, NF_ERANGE, "fbnet sample: %lld codes is more than this build supports", (long long)n);
        return sample_fbnet(rng, n, codes, err);
    }
    if (n > NF_NB201_SIZE)
        return nf_seterr(err, NF_ERANGE, "nb201 sample: cannot draw %lld distinct architectures from %d",
                         (long long)n, NF_NB201_SIZE);
    int64_t *idx = malloc(sizeof(int64_t) * 2 * NF_NB201_SIZE);   /* draws + scratch */
    if (!idx) return nf_seterr(err, NF_ENOMEM, "nb201 sample: out of memory");
    nf_status st = nf_rng_sample(rng, NF_NB201_SIZE, n, idx, idx + NF_NB201_SIZE, err);
    if (st == NF_OK)
        for (int64_t i = 0; i < n; i++) nf_space_from_index(s, idx[i], codes + i * NF_NB201_EDGES, NULL);
    free(idx);
    return st;
}

/* ------------------------------------------------------------------ graphs */
nf_status nf_space_graph(nf_space_id s, const uint8_t *code, int flags, int32_t *node_ops, float *adj, nf_err *err)
{
    nf_status st = nf_space_check(s, code, err);
    if (st != NF_OK) return st;
    if (s == NF_SPACE_NB201) nf_nb201_graph(code, flags, node_ops, adj);
    else nf_fbnet_graph(code, flags, node_ops, adj);
    return NF_OK;
}

nf_status nf_space_graphs(nf_space_id s, const uint8_t *codes, int64_t B, int flags,
                          int32_t *node_ops, float *node_ops_f, float *adj, nf_err *err)
{
    if (!valid(s)) return nf_seterr(err, NF_EINVAL, "unknown search space id %d", (int)s);
    int L = nf_space_code_len(s), N = nf_space_nodes(s);
    for (int64_t b = 0; b < B; b++) {
        nf_err e;
        if (nf_space_check(s, codes + b * L, &e) != NF_OK)
            return nf_seterr(err, NF_EINVAL, "row %lld: %s", (long long)b, e.msg);
    }
    int32_t ops[NF_SPACE_MAX_NODES];
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *c = codes + b * L;
        float *A = adj ? adj + b * N * N : NULL;
        if (s == NF_SPACE_NB201) nf_nb201_graph(c, flags, ops, A);
        else nf_fbnet_graph(c, flags, ops, A);
        for (int i = 0; i < N; i++) {
            if (node_ops) node_ops[b * N + i] = ops[i];
            if (node_ops_f) node_ops_f[b * N + i] = (float)ops[i];
        }
    }
    return NF_OK;
}

/* -------------------------------------------------------------------- cost */
static const char *const NB_DATASETS[] = {"cifar10", "cifar100", "ImageNet16-120"};

int nf_space_n_datasets(nf_space_id s) { return s == NF_SPACE_NB201 ? 3 : s == NF_SPACE_FBNET ? 1 : 0; }

const char *nf_space_dataset_name(nf_space_id s, int d)
{
    if (s == NF_SPACE_NB201) return d >= 0 && d < 3 ? NB_DATASETS[d] : NULL;
    if (s == NF_SPACE_FBNET) return d == 0 ? "cifar100" : NULL;
    return NULL;
}

int nf_space_dataset(nf_space_id s, const char *name)
{
    if (!valid(s)) return -1;
    if (!name || !*name) return 0;
    for (int d = 0; d < nf_space_n_datasets(s); d++)
        if (ieq(name, nf_space_dataset_name(s, d))) return d;
    if (s == NF_SPACE_NB201 && (ieq(name, "imagenet16") || ieq(name, "imagenet"))) return 2;
    return -1;
}

static const char *const KIND_NAMES[NF_LAYER_N_KINDS] = {
    "conv", "dwconv", "pool", "gpool", "linear", "add", "zero", "shuffle", "bnrelu",
};

const char *nf_layer_kind_name(nf_layer_kind k)
{
    return (int)k >= 0 && k < NF_LAYER_N_KINDS ? KIND_NAMES[k] : NULL;
}

nf_status nf_space_layers(nf_space_id s, const uint8_t *code, int dataset, nf_layer *layers, int cap, int *n, nf_err *err)
{
    nf_status st = nf_space_check(s, code, err);
    if (st != NF_OK) return st;
    if (dataset < 0 || dataset >= nf_space_n_datasets(s))
        return nf_seterr(err, NF_EINVAL, "%s: dataset %d out of range 0..%d", nf_space_name(s), dataset,
                         nf_space_n_datasets(s) - 1);
    nf_layer tmp[NF_SPACE_MAX_LAYERS];
    int m = s == NF_SPACE_NB201 ? nf_nb201_layers(code, dataset, tmp) : nf_fbnet_layers(code, tmp);
    if (m > cap) return nf_seterr(err, NF_ERANGE, "%s layers: %d layers do not fit in %d", nf_space_name(s), m, cap);
    memcpy(layers, tmp, sizeof(nf_layer) * (size_t)m);
    *n = m;
    return NF_OK;
}

nf_status nf_space_cost(nf_space_id s, const uint8_t *code, int dataset, double *params_mb, double *flops_m, nf_err *err)
{
    nf_layer L[NF_SPACE_MAX_LAYERS];
    int n;
    nf_status st = nf_space_layers(s, code, dataset, L, NF_SPACE_MAX_LAYERS, &n, err);
    if (st != NF_OK) return st;
    double p = 0, f = 0;
    for (int i = 0; i < n; i++) {
        p += L[i].params;
        f += L[i].flops;
    }
    if (params_mb) *params_mb = p / 1e6;
    if (flops_m) *flops_m = f / 1e6;
    return NF_OK;
}

nf_status nf_space_struct_features(nf_space_id s, const uint8_t *codes, int64_t B, float *out, nf_err *err)
{
    if (!valid(s)) return nf_seterr(err, NF_EINVAL, "unknown search space id %d", (int)s);
    int L = nf_space_code_len(s), F = nf_space_feature_dim(s);
    for (int64_t b = 0; b < B; b++) {
        nf_err e;
        if (nf_space_check(s, codes + b * L, &e) != NF_OK)
            return nf_seterr(err, NF_EINVAL, "row %lld: %s", (long long)b, e.msg);
    }
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *c = codes + b * L;
        float *row = out + b * F;
        memset(row, 0, sizeof(float) * (size_t)F);
        for (int i = 0; i < L; i++) row[c[i]] += 1.0f;
        if (s == NF_SPACE_NB201) {
            int eff[3];
            nf_nb201_effective(c, eff);
            for (int i = 0; i < 3; i++) row[NF_NB201_OPS + i] = (float)eff[i];
        } else {
            double p, f;
            nf_space_cost(s, c, 0, &p, &f, NULL);
            row[NF_FBNET_BLOCKS] = (float)log(f);
            row[NF_FBNET_BLOCKS + 1] = (float)log(p);
        }
    }
    return NF_OK;
}

/* Sums over the layers of each architecture of a batch (all executed layers, or with live_only the live non-zero
 * ones): add(layer, acc, flags) accumulates into dim doubles, written out as floats, through log1p when log_out. */
typedef void (*layer_adder)(const nf_layer *l, double *acc, int flags);

static nf_status layer_sums(nf_space_id s, const uint8_t *codes, int64_t B, int dataset, int live_only, int dim,
                            layer_adder add, int flags, int log_out, float *out, nf_err *err)
{
    if (!valid(s)) return nf_seterr(err, NF_EINVAL, "unknown search space id %d", (int)s);
    const int L = nf_space_code_len(s);
    nf_layer layers[NF_SPACE_MAX_LAYERS];
    double acc[NF_PHYS_DIM > NF_ROOF_MAX_DIM ? NF_PHYS_DIM : NF_ROOF_MAX_DIM];
    for (int64_t b = 0; b < B; b++) {
        int n;
        nf_err e;
        if (nf_space_layers(s, codes + b * L, dataset, layers, NF_SPACE_MAX_LAYERS, &n, &e) != NF_OK)
            return nf_seterr(err, NF_EINVAL, "row %lld: %s", (long long)b, e.msg);
        memset(acc, 0, sizeof acc);
        for (int i = 0; i < n; i++) {
            const nf_layer *l = &layers[i];
            if (live_only && (!l->live || l->kind == NF_LAYER_ZERO)) continue;
            add(l, acc, flags);
        }
        for (int j = 0; j < dim; j++) out[b * dim + j] = (float)(log_out ? log1p(acc[j]) : acc[j]);
    }
    return NF_OK;
}

static void phys_add(const nf_layer *l, double *acc, int flags)
{
    (void)flags;
    double bytes = (l->in_bytes + l->out_bytes) / 1e6;
    acc[0] += 1.0;
    acc[1] += bytes;
    acc[2 + l->kind] += l->flops / 1e6;
    acc[2 + NF_LAYER_N_KINDS + l->kind] += bytes;
}

nf_status nf_space_phys_features(nf_space_id s, const uint8_t *codes, int64_t B, int dataset, int live_only, float *out,
                                 nf_err *err)
{
    return layer_sums(s, codes, B, dataset, live_only, NF_PHYS_DIM, phys_add, 0, 1, out, err);
}

const double NF_ROOF_BALANCE[NF_ROOF_N_BALANCES] = {0.25, 1.0, 4.0, 16.0, 64.0, 256.0};
const double NF_ROOF_FLOOR_MB[NF_ROOF_N_FLOORS] = {0.003, 0.01, 0.03, 0.1, 0.3, 1.0};

int nf_space_roof_dim(int flags)
{
    if (flags & ~(NF_ROOF_WEIGHTS | NF_ROOF_FLOORS)) return -1;
    return 1 + NF_ROOF_N_BALANCES * ((flags & NF_ROOF_FLOORS) ? 1 + NF_ROOF_N_FLOORS : 1);
}

static void roof_add(const nf_layer *l, double *acc, int flags)
{
    double mb = (l->in_bytes + l->out_bytes + ((flags & NF_ROOF_WEIGHTS) ? 4.0 * l->params : 0.0)) / 1e6;
    double mflops = l->flops / 1e6;
    acc[0] += 1.0;
    for (int j = 0; j < NF_ROOF_N_BALANCES; j++) {
        double t = NF_ROOF_BALANCE[j] * mb;
        if (mflops > t) t = mflops;
        acc[1 + j] += t;
        if (flags & NF_ROOF_FLOORS) {
            for (int f = 0; f < NF_ROOF_N_FLOORS; f++) {
                double floor_t = NF_ROOF_BALANCE[j] * NF_ROOF_FLOOR_MB[f];
                acc[1 + NF_ROOF_N_BALANCES * (1 + f) + j] += t > floor_t ? t : floor_t;
            }
        }
    }
}

nf_status nf_space_roof_features_ex(nf_space_id s, const uint8_t *codes, int64_t B, int dataset, int live_only,
                                    int flags, float *out, nf_err *err)
{
    int dim = nf_space_roof_dim(flags);
    if (dim < 0) return nf_seterr(err, NF_EINVAL, "unknown roof feature flags 0x%x", (unsigned)flags);
    return layer_sums(s, codes, B, dataset, live_only, dim, roof_add, flags, 0, out, err);
}

nf_status nf_space_roof_features(nf_space_id s, const uint8_t *codes, int64_t B, int dataset, int live_only, float *out,
                                 nf_err *err)
{
    return nf_space_roof_features_ex(s, codes, B, dataset, live_only, 0, out, err);
}

void nf_layer_init(nf_layer *l, nf_layer_kind kind, int cin, int cout, int hin, int hout, int block, int live)
{
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->cin = cin;
    l->cout = cout;
    l->hin = hin;
    l->hout = hout;
    l->kernel = 1;
    l->stride = 1;
    l->groups = 1;
    l->arity = 1;
    l->arity_nonzero = 1;
    l->block = block;
    l->live = live;
    l->in_bytes = 4.0 * cin * hin * hin;
    l->out_bytes = 4.0 * cout * hout * hout;
}
