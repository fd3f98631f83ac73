/* fuzz_modelfile.c — libFuzzer harness for the model-file reader, through its public entry point
 * nf_model_load (csrc/nf_model.h; the reader is csrc/nf_modelfile.c). Each input is written to a
 * temporary file and loaded twice: as given, and with its last 4 bytes replaced by the CRC-32 of
 * the bytes before them (the format's trailer), so that mutations get past the checksum into the
 * header and parameter parsing. A loaded model is saved and loaded again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nf_model.h"
#include "nf_util.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char in_path[64], out_path[80];

static void cleanup(void)
{
    if (in_path[0]) unlink(in_path);
    if (out_path[0]) unlink(out_path);
}

static void put(const uint8_t *data, size_t size)
{
    FILE *f = fopen(in_path, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(data, 1, size, f) == size);
    REQUIRE(fclose(f) == 0);
}

static void load(void)
{
    nf_model *m = NULL;
    nf_err e;
    nf_status st = nf_model_load(in_path, &m, &e);
    if (st != NF_OK) {
        REQUIRE(m == NULL && memchr(e.msg, '\0', sizeof e.msg));
        return;
    }
    REQUIRE(m != NULL);
    if (nf_model_save(m, out_path, &e) == NF_OK) {
        nf_model *m2 = NULL;
        REQUIRE(nf_model_load(out_path, &m2, &e) == NF_OK);
        REQUIRE(nf_model_nparams(m2) == nf_model_nparams(m) && nf_model_ndev(m2) == nf_model_ndev(m));
        nf_model_free(m2);
    }
    nf_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!in_path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(in_path, sizeof in_path, "%s/nf_fuzz_model_%ld.nfm", dir, (long)getpid());
        snprintf(out_path, sizeof out_path, "%s/nf_fuzz_model_%ld.out.nfm", dir, (long)getpid());
        atexit(cleanup);
    }
    put(data, size);
    load();
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        REQUIRE(fixed);
        memcpy(fixed, data, size);
        uint32_t crc = nf_crc32(0, fixed, size - 4);
        for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        if (memcmp(fixed, data, size) != 0) {
            put(fixed, size);
            load();
        }
        free(fixed);
    }
    return 0;
}
