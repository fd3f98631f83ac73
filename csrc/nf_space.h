/* nf_space.h — the two search spaces: NAS-Bench-201 cells and FBNet chains.
 *
 * An architecture is a code: one uint8_t per searchable position.
 *  - NB201: 6 op ids, one per cell edge in arch-string order (edges 0→1, 0→2, 1→2, 0→3, 1→3, 2→3),
 *    numbered like the data's op_vector: none=0, skip_connect=1, nor_conv_1x1=2, nor_conv_3x3=3,
 *    avg_pool_3x3=4.
 *  - FBNet: 22 block ids, one per searchable layer, in the data's order: k3_e1=0, k3_e1_g2=1,
 *    k3_e3=2, k3_e6=3, k5_e1=4, k5_e1_g2=5, k5_e3=6, k5_e6=7, skip=8.
 *
 * Arch strings (parse accepts both forms of each space, format writes the first):
 *  - NB201: "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|", or the op_vector form "4-2-1-2-1-1";
 *  - FBNet: the 22 block ids joined by '-' ("7-8-1-..."), or the 22 block names joined by '-'
 *    ("k5_e6-skip-k3_e1_g2-...").
 *
 * Graphs (METHOD §2). NB201: 8 nodes = input, the six edge-ops in string order, output; node-op
 * vocabulary input=0, output=1, then op id + 2 (none=2, skip_connect=3, nor_conv_1x1=4,
 * nor_conv_3x3=5, avg_pool_3x3=6). Edges of the op-on-node graph: input→{n1,n2,n4}, n1→{n3,n5},
 * n2→n6, n3→n6, n4→out, n5→out, n6→out; then none nodes are cut, skip_connect nodes bypassed
 * (each predecessor wired to each successor; done node by node, so chains of skips contract), and
 * nodes on no input→output path dropped (row and column zeroed; every node keeps its op label
 * unless NF_GRAPH_DEAD_AS_NONE). FBNet: 22 nodes labelled by block id (vocabulary 9), adjacency
 * a chain i→i+1 (default) or, with NF_GRAPH_FBNET_IDENTITY, the identity (the reference's).
 * A[i*N + j] = 1 for an edge i→j.
 *
 * Cost (params in MB = count/1e6, FLOPs in M = count/1e6) from the real macro networks:
 *  - NB201 (cifar10, cifar100: 32×32; ImageNet16-120: 16×16, 120 classes): stem conv3x3(3→16)+BN;
 *    3 stages of 5 cells at C = 16, 32, 64; a residual reduction block (ReLU-conv3x3/2-BN,
 *    ReLU-conv3x3-BN, shortcut avgpool2x2 + conv1x1) between stages; BN+ReLU; global average pool;
 *    linear. Cell ops: nor_conv_k = ReLU-conv k×k-BN, avg_pool_3x3 (stride 1), skip = identity,
 *    none = zero. FLOP convention of the benchmark tables (reproduces nb201_cost.csv exactly):
 *    conv = MACs (no bias), BN = 2 per output element, ReLU = 1 per element, avgpool k×k =
 *    k² per output element, global pool over an H×H map = C·(H+1)², linear = in·out (bias not
 *    counted), identity/zero/sums = 0. Params: conv weights, BN 2 per channel, linear with bias.
 *  - FBNet (HW-NAS-Bench's CIFAR-100 macro network, the one the data was measured on): stem
 *    conv3x3(3→16)+BN+ReLU; 7 stages of [1,4,4,4,4,4,1] layers with [16,24,32,64,112,184,352]
 *    channels and strides [1,1,2,2,1,2,1] (first layer of a stage); a block = 1×1 expand (groups g)
 *    +BN+ReLU, channel shuffle when g=2, k×k depthwise (stride)+BN+ReLU, 1×1 project (groups g)+BN,
 *    residual add when shape is kept; skip = identity, or conv1x1(stride)+BN+ReLU when the shape
 *    changes; header conv1x1(352→1504)+BN+ReLU; global pool; linear 1504→100. FLOP convention of
 *    flopth (used for zcp/fbnet_zcp.csv): conv MACs, BN 2/element, ReLU 1/element counted once per
 *    ReLU module (a block's ReLU module runs twice but is counted once, after the depthwise conv),
 *    pools 1 per input element, linear in·out, adds/shuffles 0.
 */
#ifndef NF_SPACE_H
#define NF_SPACE_H

#include <stddef.h>
#include <stdint.h>
#include "nf.h"

typedef enum { NF_SPACE_NB201 = 0, NF_SPACE_FBNET = 1 } nf_space_id;

#define NF_NB201_EDGES 6
#define NF_NB201_OPS 5
#define NF_NB201_NODES 8
#define NF_NB201_VOCAB 7
#define NF_NB201_SIZE 15625
#define NF_NB201_FEATURES 8
#define NF_FBNET_LAYERS 22
#define NF_FBNET_BLOCKS 9
#define NF_FBNET_FEATURES 11
#define NF_SPACE_MAX_CODE 22     /* longest code of any space */
#define NF_SPACE_MAX_NODES 22    /* most graph nodes of any space */
#define NF_SPACE_MAX_STRING 256  /* enough for any formatted arch string (with its NUL) */
#define NF_SPACE_MAX_LAYERS 160  /* enough for any per-layer breakdown */

/* Graph flags (OR them; flags that do not apply to a space are ignored). */
enum {
    NF_GRAPH_DEFAULT = 0,
    NF_GRAPH_FBNET_IDENTITY = 1,   /* FBNet: identity adjacency (reference quirk) instead of a chain */
    NF_GRAPH_NB201_RAW = 2,        /* NB201: the 8-node graph before any pruning */
    NF_GRAPH_DEAD_AS_NONE = 4      /* NB201: relabel the dropped edge-op nodes as none (2) */
};

/* Space by name ("nb201" / "fbnet", also "nasbench201"); -1 if unknown. */
int nf_space_from_name(const char *name);
const char *nf_space_name(nf_space_id s);
int nf_space_code_len(nf_space_id s);      /* 6 / 22; 0 for an invalid id */
int nf_space_nodes(nf_space_id s);         /* 8 / 22 */
int nf_space_vocab(nf_space_id s);         /* 7 / 9 */
int nf_space_n_choices(nf_space_id s);     /* choices per position: 5 / 9 */
int nf_space_feature_dim(nf_space_id s);   /* 8 / 11 */
double nf_space_size(nf_space_id s);       /* 15625 / 9^22 (≈9.85e20, exceeds int64) */
/* Name of node-op id v in the graph vocabulary ("input", "output", "none"... / "k3_e1"...); NULL if out of range. */
const char *nf_space_vocab_name(nf_space_id s, int v);
/* Name of choice c at a position ("none"... / "k3_e1"...); NULL if out of range. */
const char *nf_space_choice_name(nf_space_id s, int c);
/* NF_OK when every entry of code is a valid choice; else names the first bad position. */
nf_status nf_space_check(nf_space_id s, const uint8_t *code, nf_err *err);

/* Parse an arch string (either accepted form); on failure code is untouched and err (NF_EFORMAT)
 * names the bad part and its 1-based byte column, e.g.
 * "nb201 arch string: unknown op 'conv_3x3' at column 2 (edge 1, 0→1)". */
nf_status nf_space_parse(nf_space_id s, const char *str, uint8_t *code, nf_err *err);
/* The same for len bytes of str (a Lua string, a CSV field): a NUL byte among them is an error
 * ("nb201 arch string: NUL byte at column 5 (an arch string cannot contain NUL bytes)"), never a
 * shorter string; at most NF_SPACE_MAX_PARSE - 1 bytes. str need not be NUL-terminated. Parts of the
 * string quoted in an error are escaped: printable ASCII as is, a backslash doubled, any other byte
 * (control bytes, DEL, non-ASCII) as \xNN, e.g. "unknown op 'a\x1b[2J'". */
#define NF_SPACE_MAX_PARSE 1024
nf_status nf_space_parse_n(nf_space_id s, const char *str, size_t len, uint8_t *code, nf_err *err);
/* Write the canonical arch string into buf (n bytes, NUL-terminated). Returns its length, or -1
 * if code is invalid or buf too small (buf then holds "" if n > 0). */
int nf_space_format(nf_space_id s, const uint8_t *code, char *buf, size_t n);

/* NB201 enumeration order: index = Σ code[i]·5^(5−i), 0..15624 (code[0] most significant).
 * This is NOT the benchmark's arch_index (take that from nb201_archs.csv). */
int64_t nf_space_index(nf_space_id s, const uint8_t *code);                     /* -1 unless NB201 and valid */
nf_status nf_space_from_index(nf_space_id s, int64_t index, uint8_t *code, nf_err *err);

/* n distinct codes drawn uniformly (NB201: without replacement from the 15,625; FBNet: uniform
 * blocks per layer, duplicates redrawn). codes: n × code_len. Errors: n > size (NF_ERANGE). */
nf_status nf_space_sample(nf_space_id s, nf_rng *rng, int64_t n, uint8_t *codes, nf_err *err);

/* Graph of one arch: node_ops (N) and adj (N×N, row-major, 1 for edge i→j, else 0). */
nf_status nf_space_graph(nf_space_id s, const uint8_t *code, int flags, int32_t *node_ops, float *adj, nf_err *err);
/* B graphs; codes B × code_len; node_ops B×N (int32) and/or node_ops_f B×N (float), either may be NULL;
 * adj B×N×N. On an invalid code: NF_EINVAL naming the row (0-based). */
nf_status nf_space_graphs(nf_space_id s, const uint8_t *codes, int64_t B, int flags,
                          int32_t *node_ops, float *node_ops_f, float *adj, nf_err *err);

/* Dataset of a space by name (case-insensitive): NB201 "cifar10"=0, "cifar100"=1, "ImageNet16-120"=2;
 * FBNet "cifar100"=0. NULL or "" = the default (NB201 cifar10, FBNet cifar100). -1 if unknown. */
int nf_space_dataset(nf_space_id s, const char *name);
const char *nf_space_dataset_name(nf_space_id s, int dataset);   /* NULL if out of range */
int nf_space_n_datasets(nf_space_id s);                          /* 3 / 1 */
/* Params (MB) and FLOPs (M) of code on dataset (an index from nf_space_dataset). */
nf_status nf_space_cost(nf_space_id s, const uint8_t *code, int dataset, double *params_mb, double *flops_m, nf_err *err);

/* Structural features of METHOD §10, as float rows (B × feature_dim):
 *  NB201: counts of none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 over the 6 edges,
 *         then the counts of nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 nodes left by the pruning of §2;
 *  FBNet: counts of the 9 blocks over the 22 layers, ln(FLOPs in M), ln(params in MB) (CIFAR-100). */
nf_status nf_space_struct_features(nf_space_id s, const uint8_t *codes, int64_t B, float *out, nf_err *err);

/* ------------------------------------------------------------ per-layer breakdown
 * Every layer the real macro network executes, in execution order (for latency simulation).
 * Element-wise BN/ReLU that follow a conv are folded into it (their FLOPs included; relu_in/bn/
 * relu_out say which); the FLOPs and params of all layers sum to nf_space_cost exactly. NB201 cells
 * list every edge op the reference implementation runs (dead branches too; none edges as ZERO
 * layers, which multiply by 0) and one ADD per cell node with more than one incoming edge. */
typedef enum {
    NF_LAYER_CONV = 0,     /* dense or grouped convolution (groups < channels) */
    NF_LAYER_DWCONV,       /* depthwise convolution (groups == channels) */
    NF_LAYER_POOL,         /* k×k average pooling */
    NF_LAYER_GPOOL,        /* global average pooling */
    NF_LAYER_LINEAR,       /* fully connected */
    NF_LAYER_ADD,          /* element-wise sum of `arity` tensors */
    NF_LAYER_ZERO,         /* NB201 none edge: x * 0 */
    NF_LAYER_SHUFFLE,      /* channel shuffle (FBNet g2 blocks) */
    NF_LAYER_BNRELU,       /* standalone BN (+ReLU) */
    NF_LAYER_N_KINDS
} nf_layer_kind;

typedef struct {
    nf_layer_kind kind;
    int cin, cout;         /* channels (features for LINEAR) */
    int hin, hout;         /* square spatial size (1 for LINEAR) */
    int kernel, stride, groups;
    int arity;             /* ADD: number of inputs; else 1 */
    int arity_nonzero;     /* ADD: inputs that are not NB201 zero ops (what a graph compiler keeps); else 1 */
    int relu_in, bn, relu_out;  /* folded element-wise ops (CONV/DWCONV/BNRELU) */
    int live;              /* 1 if the output can reach the network output (0: dead branch or zero op) */
    int block;             /* NB201: cell 0..14; FBNet: layer 0..21; -1 for stem/reduction/head */
    double flops;          /* FLOPs (count, not M), per the space's convention */
    double params;         /* parameter count */
    double in_bytes;       /* fp32 bytes read (all inputs) */
    double out_bytes;      /* fp32 bytes written */
} nf_layer;

/* Initialise one layer record: kernel 1, stride 1, groups 1, arity 1, float32 activation bytes from the shapes. */
void nf_layer_init(nf_layer *l, nf_layer_kind kind, int cin, int cout, int hin, int hout, int block, int live);
const char *nf_layer_kind_name(nf_layer_kind k);   /* "conv", "dwconv", ...; NULL if out of range */
/* Fill layers[0..*n) (cap entries; NF_SPACE_MAX_LAYERS is always enough). */
nf_status nf_space_layers(nf_space_id s, const uint8_t *code, int dataset, nf_layer *layers, int cap, int *n, nf_err *err);

/* Physical ("roofline") features, B × NF_PHYS_DIM float rows, from the per-layer breakdown on `dataset`
 * of the layers an eager framework executes (all of them, dead branches and NB201 zero ops included), or,
 * with live_only, of the layers a graph compiler keeps (live, not zero ops): ln(1+x) of
 *   [0] layers executed (kernel launches), [1] fp32 bytes moved (MB, read + written),
 *   [2 .. 2+K)   FLOPs (M) per layer kind (nf_layer_kind order, K = NF_LAYER_N_KINDS),
 *   [2+K .. 2+2K) bytes moved (MB) per layer kind.
 * A device's latency is close to a linear function of these (launch overhead + compute + memory traffic
 * per kind); columns that are constant in a space (e.g. the head) carry no information and a ridge
 * regression gives them no weight. */
#define NF_PHYS_DIM (2 + 2 * NF_LAYER_N_KINDS)
nf_status nf_space_phys_features(nf_space_id s, const uint8_t *codes, int64_t B, int dataset, int live_only, float *out,
                                 nf_err *err);

/* Roofline-time features, B × NF_ROOF_DIM float rows (raw sums, not logarithms), over the same layers as
 * nf_space_phys_features (all executed layers, or with live_only the live non-zero ones):
 *   [0] layers executed (kernel launches),
 *   [1 + j] sum over layers of max(MFLOPs, NF_ROOF_BALANCE[j] × MB moved): the layer's time on a machine
 *           whose compute peak is NF_ROOF_BALANCE[j] FLOPs per byte of memory bandwidth, in units of the peak.
 * Unlike per-kind sums of FLOPs and bytes, each layer is compute- or memory-bound on its own, so a device's
 * latency is close to a linear function of a few of these columns (latency as a sum of layer times). */
#define NF_ROOF_N_BALANCES 6
#define NF_ROOF_DIM (1 + NF_ROOF_N_BALANCES)
extern const double NF_ROOF_BALANCE[NF_ROOF_N_BALANCES];
nf_status nf_space_roof_features(nf_space_id s, const uint8_t *codes, int64_t B, int dataset, int live_only, float *out,
                                 nf_err *err);

/* Variants of the roofline-time features (nf_space_roof_features is flags 0), same layers, raw sums:
 *   NF_ROOF_WEIGHTS  a layer's MB moved also counts its fp32 weights (4 bytes per parameter), not only the
 *                    activations it reads and writes: a small-batch layer streams its weights once per call;
 *   NF_ROOF_FLOORS   after the 1 + NF_ROOF_N_BALANCES columns above, for each floor f of NF_ROOF_FLOOR_MB and
 *                    each balance b, the sum over layers of max(MFLOPs, b × MB, b × f): every kernel costs at
 *                    least the time to move f MB (launch and synchronisation latency, which on a GPU at batch 32
 *                    or a lookup-table accelerator dominates the many small layers). Column order: floor-major.
 * nf_space_roof_dim(flags) is the row width. */
#define NF_ROOF_WEIGHTS 1
#define NF_ROOF_FLOORS 2
#define NF_ROOF_N_FLOORS 6
extern const double NF_ROOF_FLOOR_MB[NF_ROOF_N_FLOORS];
#define NF_ROOF_MAX_DIM (1 + NF_ROOF_N_BALANCES * (1 + NF_ROOF_N_FLOORS))
int nf_space_roof_dim(int flags);    /* -1 for unknown flag bits */
nf_status nf_space_roof_features_ex(nf_space_id s, const uint8_t *codes, int64_t B, int dataset, int live_only,
                                    int flags, float *out, nf_err *err);

/* ------------------------------------------------ per-space implementations (internal) */
/* len bytes of s escaped for an error message into out (cap bytes, always NUL-terminated): printable
 * ASCII as is, a backslash as two, every other byte as \xNN; cut at a whole escape. Returns out. */
const char *nf_space_escape(const char *s, size_t len, char *out, size_t cap);
const char *nf_nb201_op_name(int op);      /* NULL if out of range */
const char *nf_fbnet_block_name(int b);    /* NULL if out of range */
nf_status nf_nb201_parse(const char *str, uint8_t *code, nf_err *err);
int nf_nb201_format(const uint8_t *code, char *buf, size_t n);
void nf_nb201_graph(const uint8_t *code, int flags, int32_t *node_ops, float *adj);
int nf_nb201_layers(const uint8_t *code, int dataset, nf_layer *layers);
void nf_nb201_effective(const uint8_t *code, int counts[3]);   /* surviving conv1x1, conv3x3, pool nodes */
nf_status nf_fbnet_parse(const char *str, uint8_t *code, nf_err *err);
int nf_fbnet_format(const uint8_t *code, char *buf, size_t n);
void nf_fbnet_graph(const uint8_t *code, int flags, int32_t *node_ops, float *adj);
int nf_fbnet_layers(const uint8_t *code, nf_layer *layers);

#endif
