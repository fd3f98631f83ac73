/* nf_util.c — small helpers: CRC-32 of buffers and files, a monotonic clock, mkdir -p. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {   /* /dev/zero or a FIFO would never end */
        fclose(f);
        return nf_seterr(err, NF_EIO, "%s: not a regular file", path);
    }
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

nf_status nf_mkdirs(const char *path, nf_err *err)
{
    size_t n = strlen(path);
    if (n == 0) return nf_seterr(err, NF_EINVAL, "mkdir: empty path");
    char *p = malloc(n + 1);
    if (!p) return nf_seterr(err, NF_ENOMEM, "mkdir: out of memory");
    memcpy(p, path, n + 1);
    nf_status st = NF_OK;
    for (size_t i = 1; i <= n && !st; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        struct stat sb;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            st = nf_seterr(err, NF_EIO, "%s: cannot create directory '%s' (%s)", path, p, strerror(errno));
        else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = nf_seterr(err, NF_EIO, "%s: '%s' exists and is not a directory", path, p);
        p[i] = c;
    }
    free(p);
    return st;
}
