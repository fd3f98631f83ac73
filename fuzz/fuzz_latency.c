/* fuzz_latency.c — libFuzzer harness for the latency CSV loader (csrc/nf_csv.c, csrc/nf_data.c).
 * Any bytes are a CSV file: the loader must return a status (never crash, leak, hang or overflow),
 * leave out untouched on failure with a message naming the input, and on success give a table
 * with the invariants of nf_data.h. Build and run: make fuzz (see the Makefile). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "nf_data.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Messages quote the input with control bytes escaped: none may reach a terminal raw. */
static int printable(const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nf_latency L;
    nf_err e;
    memset(&L, 0x5a, sizeof L);
    nf_latency snap = L;
    nf_status st = nf_latency_load_text("fuzz.csv", (const char *)data, size, &L, &e);
    if (st != NF_OK) {
        REQUIRE(st == NF_EFORMAT || st == NF_ENOMEM);
        REQUIRE(memcmp(&L, &snap, sizeof L) == 0);
        REQUIRE(memchr(e.msg, '\0', sizeof e.msg) && strncmp(e.msg, "fuzz.csv", 8) == 0 && printable(e.msg));
        return 0;
    }
    int64_t n = L.n_archs;
    int nd = L.n_devices;
    REQUIRE(n >= 1 && nd >= 1 && nd <= NF_LATENCY_MAX_DEVICES);
    for (int64_t i = 0; i < n; i++) {
        REQUIRE(L.arch_index[i] >= 0 && (i == 0 || L.arch_index[i] > L.arch_index[i - 1]));
        REQUIRE(nf_latency_row(&L, L.arch_index[i]) == i);
        REQUIRE(strlen(L.arch_strings[i]) < (size_t)size + 1);
    }
    REQUIRE(nf_latency_row(&L, -1) == -1);
    for (int d = 0; d < nd; d++) {
        REQUIRE(L.devices[d][0] && nf_latency_device(&L, L.devices[d]) == d);   /* non-empty, unique */
        int64_t measured = 0;
        for (int64_t i = 0; i < n; i++) {
            float v = L.ms[i * nd + d], w = L.norm[i * nd + d];
            if (isnan(v)) { REQUIRE(isnan(w)); continue; }
            measured++;
            REQUIRE(v >= 0 && !isinf(v) && v >= L.dev_min[d] && v <= L.dev_max[d]);
            REQUIRE(w >= 0 && w <= 1);
        }
        REQUIRE(measured == L.n_measured[d]);
        REQUIRE(measured > 0 || (isnan(L.dev_min[d]) && isnan(L.dev_max[d])));
    }
    nf_latency_free(&L);
    nf_latency_free(&L);   /* idempotent */
    return 0;
}
