/* nf_util.c — small helpers: CRC-32 of buffers and files, a monotonic clock. */
#include <stdio.h>
#include <time.h>
#include "nf_util.h"

uint32_t nf_crc32(uint32_t crc, const void *buf, size_t n)
{
    /* bitwise reflected CRC-32 (IEEE 802.3), table-free: the core keeps no static tables to initialise */
    const unsigned char *p = buf;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

nf_status nf_crc32_file(const char *path, uint32_t *out, int64_t *size, nf_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return nf_seterr(err, NF_EIO, "%s: cannot open for reading", path);
    unsigned char buf[1 << 16];
    uint32_t crc = 0;
    int64_t total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        crc = nf_crc32(crc, buf, n);
        total += (int64_t)n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return nf_seterr(err, NF_EIO, "%s: read error", path);
    *out = crc;
    if (size) *size = total;
    return NF_OK;
}

double nf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
