/* nf_zoo.h — the synthetic device zoo: simulated hardware latencies for NB201 and FBNet.
 *
 * SYNTHETIC: nothing here was measured. Each device is a small analytic model evaluated on the
 * per-layer breakdown of the real macro network (nf_space_layers): per layer a roofline
 * max(compute, memory) with op-specific efficiencies, channel padding to the device's vector or
 * array width, a parallelism (occupancy) limit, a cache limit on activation traffic, kernel-launch
 * overheads (eager frameworks launch BN and ReLU separately; graph compilers fuse them and may
 * remove dead branches), per-inference fixed overheads and multiplicative log-normal measurement
 * noise (phones: rounded to whole milliseconds). Devices come in classes (server GPU at batch 1 and
 * batch 64, desktop/server CPU, mobile CPU, mobile GPU, DSP, NPU, FPGA-like) that rank architectures
 * differently, as real device classes do. The same seed gives the same numbers on every platform.
 *
 * Architectures: NB201 all 15,625 cells in enumeration order (arch_index = nf_space_index); FBNet a
 * fixed uniform sample (NF_ZOO_FBNET_ARCHS distinct architectures drawn with NF_ZOO_ARCH_SEED,
 * independent of the noise seed, so two seeds measure the same architectures).
 */
#ifndef NF_ZOO_H
#define NF_ZOO_H

#include "nf.h"
#include "nf_data.h"
#include "nf_space.h"

#define NF_ZOO_VERSION 1
#define NF_ZOO_FBNET_ARCHS 5000
#define NF_ZOO_ARCH_SEED 20240311u

int nf_zoo_n_devices(void);
const char *nf_zoo_device_name(int d);    /* NULL if out of range */
const char *nf_zoo_device_class(int d);   /* "gpu_b1", "gpu_batch", "cpu_desktop", "cpu_mobile", "gpu_mobile", "dsp", "npu", "fpga" */
const char *nf_zoo_device_about(int d);   /* one line: what the model stands for */
int nf_zoo_device_index(const char *name);   /* -1 if unknown */

/* Noise-free latency (ms) of one architecture on device d. *ms = NAN when the device does not run
 * it (the phone devices -- mobile CPU/GPU, DSP, NPU -- skip NB201 cells without an input->output path, as the real ones were not measured on them). */
nf_status nf_zoo_latency_one(nf_space_id s, const uint8_t *code, int d, double *ms, nf_err *err);

typedef struct {
    nf_space_id space;
    uint64_t seed;          /* noise seed */
    const int *devices;     /* device indices, or NULL for all */
    int n_devices;          /* with devices; ignored when devices is NULL */
    int64_t n_archs;        /* FBNet: how many architectures (0 = NF_ZOO_FBNET_ARCHS); NB201: 0 = all 15,625,
                               else the first n_archs in enumeration order */
    int noise;              /* 1 (default when built with nf_zoo_opts_default): add measurement noise */
} nf_zoo_opts;

nf_zoo_opts nf_zoo_opts_default(nf_space_id space, uint64_t seed);

/* A synthetic latency dataset in the shape of a real one (nf_data.h): arch_index 0..n-1, canonical
 * arch strings, one column per device (file order = the order asked for), NAN where not run, per-device
 * min-max norm. Freed by nf_latency_free. out untouched on failure. */
nf_status nf_zoo_latency(const nf_zoo_opts *o, nf_latency *out, nf_err *err);

#endif
