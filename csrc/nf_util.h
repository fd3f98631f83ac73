/* nf_util.h — CRC-32, a monotonic clock and mkdir -p. */
#ifndef NF_UTIL_H
#define NF_UTIL_H
#include "nf.h"

uint32_t nf_crc32(uint32_t crc, const void *buf, size_t n);   /* start with crc = 0 */
/* CRC-32 and size of a regular file (NF_EIO "<path>: not a regular file" for directories, devices, FIFOs). */
nf_status nf_crc32_file(const char *path, uint32_t *out, int64_t *size, nf_err *err);
double nf_now(void);   /* seconds, monotonic */
/* mkdir -p (mode 0777 & umask); an existing directory is fine. NF_EIO names the component that failed:
 * "<path>: cannot create directory '<part>' (<reason>)", "<path>: '<part>' exists and is not a directory". */
nf_status nf_mkdirs(const char *path, nf_err *err);
#endif
