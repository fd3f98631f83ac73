/* nf_util.h — CRC-32 and a monotonic clock. */
#ifndef NF_UTIL_H
#define NF_UTIL_H
#include "nf.h"

uint32_t nf_crc32(uint32_t crc, const void *buf, size_t n);   /* start with crc = 0 */
nf_status nf_crc32_file(const char *path, uint32_t *out, int64_t *size, nf_err *err);
double nf_now(void);   /* seconds, monotonic */
#endif
