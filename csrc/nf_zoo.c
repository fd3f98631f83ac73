/* nf_zoo.c — the synthetic device zoo (see nf_zoo.h). Every number below is a modelling choice,
 * chosen to give plausible magnitudes and, above all, the ranking disagreements real device classes
 * show; none is a measurement. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nf_zoo.h"

/* efficiency classes of a layer */
enum { E_CONVK, E_CONV1, E_GCONV, E_DW, E_LINEAR, E_POOL, E_ELEM, E_N };

typedef struct {
    const char *name, *cls, *about;
    int batch;
    double fixed_us;        /* per inference (framework, RPC, host<->device) */
    double launch_us;       /* per kernel launched */
    double conv_us;         /* extra per convolution (framework dispatch, algorithm selection) */
    double gmacs;           /* peak multiply-accumulates per second (1e9) */
    double eff[E_N];        /* fraction of peak reached by each kind of layer */
    double bw_gbs;          /* memory bandwidth, GB/s */
    double cache_mb;        /* activation working sets above this run at bw / miss */
    double miss;
    double sat_work;        /* output elements (x batch) needed to fill the machine */
    int pad;                /* channels are processed in multiples of this */
    int bpe;                /* bytes per activation / weight element (4 fp32, 2 fp16, 1 int8) */
    int fused;              /* 1: graph compiler: BN/ReLU folded into the conv, one kernel per layer;
                               0: eager framework, every module its own kernel and memory pass */
    int prune;              /* 1: zero ops and their sum inputs dropped, dead branches removed */
    double pool_host_us;    /* >0: pooling is not supported on the device and runs on the host */
    double noise;           /* log-normal sigma of the measurement noise */
    double quantum_ms;      /* reported latency rounded to this (0: not rounded) */
    int skip_disconnected;  /* NB201 cells with no input->output path are not run (NAN) */
} zoo_device;

/*  name, class, about,
 *  batch fixed launch conv  gmacs  {convK conv1 gconv dw  linear pool elem}  bw  cache miss sat  pad bpe fused prune host noise quant skip */
static const zoo_device DEV[] = {
    {"gpu_server_a_b1", "gpu_b1", "server GPU (recent), eager framework, batch 1: launch-bound",
     1, 300, 12, 50, 7000, {0.2, 0.3, 0.1, 0.05, 0.2, 0.01, 0.05}, 600, 6, 1, 1 << 14, 1, 4, 0, 0, 0, 0.01, 0, 0},
    {"gpu_server_b_b1", "gpu_b1", "server GPU (older), eager framework, batch 1: launch-bound",
     1, 400, 16, 60, 3500, {0.2, 0.3, 0.1, 0.05, 0.2, 0.01, 0.05}, 330, 3, 1, 1 << 14, 1, 4, 0, 0, 0, 0.012, 0, 0},
    {"gpu_server_a_b64", "gpu_batch", "server GPU (recent), eager framework, batch 64: throughput-bound",
     64, 300, 12, 50, 7000, {0.2, 0.3, 0.1, 0.05, 0.2, 0.01, 0.05}, 600, 6, 1, 1 << 14, 1, 4, 0, 0, 0, 0.015, 0, 0},
    {"gpu_server_b_b64", "gpu_batch", "server GPU (older), eager framework, batch 64: throughput-bound",
     64, 400, 16, 60, 3500, {0.2, 0.3, 0.1, 0.05, 0.2, 0.01, 0.05}, 330, 3, 1, 1 << 14, 1, 4, 0, 0, 0, 0.015, 0, 0},
    {"cpu_desktop_8c", "cpu_desktop", "desktop CPU, 8 cores AVX2 fp32, eager framework",
     1, 40, 2, 4, 250, {0.45, 0.3, 0.12, 0.06, 0.25, 0.03, 0.04}, 40, 8, 2.5, 4096, 8, 4, 0, 0, 0, 0.015, 0, 0},
    {"cpu_server_16c", "cpu_desktop", "server CPU, 16 cores AVX-512 fp32, eager framework",
     1, 60, 3, 5, 600, {0.4, 0.28, 0.1, 0.05, 0.25, 0.03, 0.04}, 80, 22, 2.5, 8192, 16, 4, 0, 0, 0, 0.015, 0, 0},
    {"cpu_mobile_big", "cpu_mobile", "phone big CPU cores, int8 graph runtime (TFLite-like)",
     1, 300, 3, 5, 40, {0.8, 0.45, 0.25, 0.35, 0.3, 0.2, 0.1}, 10, 0.5, 3, 512, 4, 1, 1, 1, 0, 0.03, 0, 1},
    {"cpu_mobile_mid", "cpu_mobile", "mid-range phone CPU, int8 graph runtime, whole-ms timer",
     1, 400, 5, 8, 12, {0.8, 0.45, 0.25, 0.35, 0.3, 0.2, 0.1}, 5, 0.25, 3, 256, 4, 1, 1, 1, 0, 0.04, 1.0, 1},
    {"gpu_mobile", "gpu_mobile", "phone GPU, OpenCL fp16, compiled graph",
     1, 1500, 25, 10, 200, {0.25, 0.5, 0.1, 0.15, 0.1, 0.1, 0.1}, 15, 1, 1.5, 8192, 4, 2, 1, 1, 0, 0.03, 0, 1},
    {"dsp_a_int8", "dsp", "phone DSP (HVX-like), int8, channels in blocks of 32, compiled graph",
     1, 2000, 10, 2, 150, {0.7, 0.6, 0.2, 0.08, 0.1, 0.1, 0.1}, 20, 0.125, 4, 4096, 32, 1, 1, 1, 0, 0.01, 0, 1},
    {"dsp_b_int8", "dsp", "newer phone DSP (HVX-like), int8, channels in blocks of 32, compiled graph",
     1, 1200, 7, 2, 300, {0.75, 0.65, 0.2, 0.07, 0.1, 0.1, 0.1}, 30, 0.25, 3, 8192, 32, 1, 1, 1, 0, 0.01, 0, 1},
    {"npu_edge_int8", "npu", "edge NPU (64-wide systolic array), int8, pooling falls back to the host CPU",
     1, 800, 5, 2, 2000, {0.8, 0.8, 0.3, 0.05, 0.2, 0.1, 0.1}, 20, 4, 4, 16384, 64, 1, 1, 1, 60, 0.01, 0, 1},
    {"fpga_dataflow", "fpga", "FPGA-like dataflow accelerator, 16x16 PE array, 16-bit, simulated",
     1, 100, 0, 0, 250, {0.9, 0.25, 0.15, 0.12, 0.5, 0.05, 5.0}, 100, 4, 3, 1, 16, 2, 1, 0, 0, 0.002, 0, 0},
};
#define N_DEV ((int)(sizeof DEV / sizeof DEV[0]))

int nf_zoo_n_devices(void) { return N_DEV; }
const char *nf_zoo_device_name(int d) { return d >= 0 && d < N_DEV ? DEV[d].name : NULL; }
const char *nf_zoo_device_class(int d) { return d >= 0 && d < N_DEV ? DEV[d].cls : NULL; }
const char *nf_zoo_device_about(int d) { return d >= 0 && d < N_DEV ? DEV[d].about : NULL; }

int nf_zoo_device_index(const char *name)
{
    if (!name) return -1;
    for (int d = 0; d < N_DEV; d++)
        if (strcmp(DEV[d].name, name) == 0) return d;
    return -1;
}

static double roundup(int c, int pad) { return (double)(((c + pad - 1) / pad) * pad); }

/* Seconds one layer takes on device D (0 for a layer the device does not run). */
static double layer_seconds(const zoo_device *D, const nf_layer *l)
{
    double b = D->batch, hw = (double)l->hout * l->hout, elems_out = (double)l->cout * hw;
    double in_bytes = l->in_bytes, macs = 0, fixed = 0;
    int e = E_ELEM, kernels = 1, passes = 0;   /* passes: separate BN/ReLU sweeps of an eager framework */
    if (D->prune && !l->live) return 0;     /* dead branches and zero ops are removed */
    switch (l->kind) {
    case NF_LAYER_CONV:
    case NF_LAYER_DWCONV:
        if (l->kind == NF_LAYER_DWCONV) {
            e = E_DW;
            macs = roundup(l->cin, D->pad) * l->kernel * l->kernel * hw;
        } else {
            e = l->groups > 1 ? E_GCONV : l->kernel > 1 ? E_CONVK : E_CONV1;
            macs = roundup(l->cin, D->pad) * roundup(l->cout, D->pad) / l->groups * l->kernel * l->kernel * hw;
        }
        passes = D->fused ? 0 : l->bn + l->relu_in + l->relu_out;
        kernels = 1 + passes;
        fixed = D->conv_us;
        break;
    case NF_LAYER_LINEAR:
        e = E_LINEAR;
        macs = roundup(l->cin, D->pad) * roundup(l->cout, D->pad);
        break;
    case NF_LAYER_POOL:
        e = E_POOL;
        macs = roundup(l->cout, D->pad) * hw * l->kernel * l->kernel;
        break;
    case NF_LAYER_GPOOL:
        e = E_POOL;
        macs = roundup(l->cin, D->pad) * l->hin * l->hin;
        break;
    case NF_LAYER_ADD: {
        int k = D->prune ? l->arity_nonzero : l->arity;
        if (k <= 1) return 0;   /* a sum of one tensor is no operation */
        in_bytes = l->in_bytes / l->arity * k;
        macs = roundup(l->cout, D->pad) * hw * (k - 1);
        kernels = D->fused ? 1 : k - 1;
        break;
    }
    case NF_LAYER_BNRELU:
        macs = 2 * roundup(l->cout, D->pad) * hw;
        kernels = D->fused ? 1 : l->bn + l->relu_out;
        break;
    case NF_LAYER_SHUFFLE:   /* eager: view, permute, contiguous copy, view: four framework ops */
        macs = roundup(l->cout, D->pad) * hw;
        kernels = D->fused ? 1 : 4;
        break;
    default:   /* ZERO (unless pruned above): one pass over the data */
        macs = roundup(l->cout, D->pad) * hw;
        break;
    }
    double scale = D->bpe / 4.0;
    double act = b * (in_bytes + l->out_bytes + 2.0 * 4 * elems_out * passes) * scale;
    if (D->pool_host_us > 0 && l->kind == NF_LAYER_POOL)   /* round trip to the host */
        return D->pool_host_us * 1e-6 + act / 5e9;
    double occ = fmin(1.0, b * elems_out / D->sat_work);
    if (occ < 1e-3) occ = 1e-3;
    double compute = b * macs / (D->gmacs * 1e9 * D->eff[e] * occ);
    double bw = D->bw_gbs * 1e9;
    if (act > D->cache_mb * 1048576.0) bw /= D->miss;
    double memory = (act + l->params * D->bpe) / bw;
    return fmax(compute, memory) + (kernels * D->launch_us + fixed) * 1e-6;
}

/* Is an NB201 cell connected (some input->output path)? */
static int nb201_connected(const uint8_t *code)
{
    float adj[NF_NB201_NODES * NF_NB201_NODES];
    nf_nb201_graph(code, 0, NULL, adj);
    for (int i = 0; i < NF_NB201_NODES * NF_NB201_NODES; i++)
        if (adj[i] != 0) return 1;
    return 0;
}

/* Noise-free ms of a layer list on device d. */
static double device_ms(int d, const nf_layer *L, int n, int connected)
{
    const zoo_device *D = &DEV[d];
    if (D->skip_disconnected && !connected) return NAN;
    double t = D->fixed_us * 1e-6;
    for (int i = 0; i < n; i++) t += layer_seconds(D, &L[i]);
    return t * 1e3;
}

nf_status nf_zoo_latency_one(nf_space_id s, const uint8_t *code, int d, double *ms, nf_err *err)
{
    if (d < 0 || d >= N_DEV) return nf_seterr(err, NF_EINVAL, "zoo: device %d out of range 0..%d", d, N_DEV - 1);
    nf_layer L[NF_SPACE_MAX_LAYERS];
    int n;
    /* NB201 devices run the CIFAR-10 network; FBNet its one (CIFAR-100) network */
    nf_status st = nf_space_layers(s, code, 0, L, NF_SPACE_MAX_LAYERS, &n, err);
    if (st != NF_OK) return st;
    *ms = device_ms(d, L, n, s == NF_SPACE_NB201 ? nb201_connected(code) : 1);
    return NF_OK;
}

nf_zoo_opts nf_zoo_opts_default(nf_space_id space, uint64_t seed)
{
    nf_zoo_opts o;
    memset(&o, 0, sizeof o);
    o.space = space;
    o.seed = seed;
    o.noise = 1;
    return o;
}

nf_status nf_zoo_latency(const nf_zoo_opts *o, nf_latency *out, nf_err *err)
{
    if (!o || !out) return nf_seterr(err, NF_EINVAL, "nf_zoo_latency: opts and out must not be NULL");
    nf_space_id s = o->space;
    if (s != NF_SPACE_NB201 && s != NF_SPACE_FBNET) return nf_seterr(err, NF_EINVAL, "zoo: unknown space id %d", (int)s);
    int all[N_DEV];
    for (int d = 0; d < N_DEV; d++) all[d] = d;
    const int *devs = o->devices ? o->devices : all;
    int nd = o->devices ? o->n_devices : N_DEV;
    if (nd < 1) return nf_seterr(err, NF_EINVAL, "zoo: no devices asked for");
    for (int i = 0; i < nd; i++) {
        if (devs[i] < 0 || devs[i] >= N_DEV)
            return nf_seterr(err, NF_EINVAL, "zoo: device %d out of range 0..%d", devs[i], N_DEV - 1);
        for (int j = 0; j < i; j++)
            if (devs[j] == devs[i]) return nf_seterr(err, NF_EINVAL, "zoo: device '%s' asked for twice", DEV[devs[i]].name);
    }
    int64_t n = o->n_archs;
    if (n < 0) return nf_seterr(err, NF_EINVAL, "zoo: negative architecture count %lld", (long long)n);
    if (s == NF_SPACE_NB201) {
        if (n == 0) n = NF_NB201_SIZE;
        if (n > NF_NB201_SIZE)
            return nf_seterr(err, NF_ERANGE, "zoo: nb201 has %d architectures, %lld asked for", NF_NB201_SIZE, (long long)n);
    } else {
        if (n == 0) n = NF_ZOO_FBNET_ARCHS;
        if (n > ((int64_t)1 << 24)) return nf_seterr(err, NF_ERANGE, "zoo: %lld fbnet architectures is too many", (long long)n);
    }
    const int L = nf_space_code_len(s);
    size_t un = (size_t)n, und = (size_t)nd;
    uint8_t *codes = malloc(un * (size_t)L);
    float *ms = malloc(sizeof(float) * un * und);
    char *strpool = malloc(un * NF_SPACE_MAX_STRING);
    const char **strs = malloc(sizeof(char *) * un);
    const char *names[N_DEV];
    nf_status st = NF_OK;
    if (!codes || !ms || !strpool || !strs) {
        st = nf_seterr(err, NF_ENOMEM, "zoo: out of memory for %lld architectures", (long long)n);
        goto done;
    }
    if (s == NF_SPACE_NB201) {
        for (int64_t i = 0; i < n; i++) nf_space_from_index(s, i, codes + i * L, NULL);
    } else {
        nf_rng ar;
        nf_rng_seed(&ar, NF_ZOO_ARCH_SEED);
        if ((st = nf_space_sample(s, &ar, n, codes, err)) != NF_OK) goto done;
    }
    for (int i = 0; i < nd; i++) names[i] = DEV[devs[i]].name;

    /* noise streams: one per device, derived from the seed and the device's place in the zoo, so a
     * device's numbers do not depend on which other devices were asked for */
    nf_rng rng[N_DEV];
    for (int i = 0; i < nd; i++) nf_rng_seed(&rng[i], nf_rng_derive(o->seed, (uint64_t)devs[i]));
    nf_layer layers[NF_SPACE_MAX_LAYERS];
    for (int64_t a = 0; a < n; a++) {
        const uint8_t *c = codes + a * L;
        char *sbuf = strpool + (size_t)a * NF_SPACE_MAX_STRING;
        nf_space_format(s, c, sbuf, NF_SPACE_MAX_STRING);
        strs[a] = sbuf;
        int nl;
        nf_space_layers(s, c, 0, layers, NF_SPACE_MAX_LAYERS, &nl, NULL);
        int connected = s == NF_SPACE_NB201 ? nb201_connected(c) : 1;
        for (int i = 0; i < nd; i++) {
            const zoo_device *D = &DEV[devs[i]];
            double v = device_ms(devs[i], layers, nl, connected);
            double z = nf_rng_normal(&rng[i]);   /* drawn for every arch: streams stay aligned */
            if (o->noise && !isnan(v)) {
                v *= exp(D->noise * z);
                if (D->quantum_ms > 0) v = fmax(D->quantum_ms, D->quantum_ms * floor(v / D->quantum_ms + 0.5));
            }
            ms[(size_t)a * und + (size_t)i] = (float)v;
        }
    }
    st = nf_latency_from_arrays(n, nd, NULL, strs, names, ms, out, err);
done:
    free(codes);
    free(ms);
    free(strpool);
    free(strs);
    return st;
}
