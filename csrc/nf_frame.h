/* nf_frame.h — the one binary framing of nasflat's files (model files, encoding caches): a growing
 * little-endian writer, a bounds-checked little-endian reader, whole-file reads with a size limit
 * and atomic writes. CRC-32 is nf_crc32 (nf_util.h); each format decides what its CRCs cover.
 *
 * Writer: every put appends; on allocation failure the buffer sets oom and ignores further puts,
 * so a format writes its fields unconditionally and checks oom once. Reader: every get checks the
 * remaining length first; past the end it returns -1 (or NULL) and moves nothing. Floats are IEEE
 * binary32 in little-endian byte order on disk, whatever the host order. */
#ifndef NF_FRAME_H
#define NF_FRAME_H

#include "nf.h"

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;            /* 1 after a failed allocation: the content is incomplete */
} nf_wbuf;

void nf_wbuf_bytes(nf_wbuf *b, const void *s, size_t n);
void nf_wbuf_u32(nf_wbuf *b, uint32_t v);
void nf_wbuf_u64(nf_wbuf *b, uint64_t v);
void nf_wbuf_f32s(nf_wbuf *b, const float *x, size_t n);
/* Overwrite 4 bytes at off (< b->n - 3) with v, little-endian (a field known only later). */
void nf_wbuf_set_u32(nf_wbuf *b, size_t off, uint32_t v);
/* printf-style text (no NUL written); the JSON header of the model file is built with it. */
void nf_wbuf_printf(nf_wbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void nf_wbuf_free(nf_wbuf *b);   /* idempotent; leaves an empty buffer */

typedef struct {
    const unsigned char *p;
    size_t n, pos;
} nf_rbuf;

nf_rbuf nf_rbuf_of(const void *p, size_t n);
size_t nf_rbuf_left(const nf_rbuf *r);
const unsigned char *nf_rbuf_bytes(nf_rbuf *r, size_t n);   /* NULL when fewer than n bytes are left */
int nf_rbuf_u32(nf_rbuf *r, uint32_t *v);                   /* 0, or -1 when fewer than 4 bytes are left */
int nf_rbuf_u64(nf_rbuf *r, uint64_t *v);
int nf_rbuf_f32s(nf_rbuf *r, float *out, size_t n);         /* n floats, or -1 (nothing read) */
uint32_t nf_le_u32(const unsigned char *p);                 /* 4 bytes at p, little-endian */

/* Read the whole of a regular file of at most max_bytes into a new buffer (*out, free() it).
 * Errors: NF_EIO "<path>: cannot open (<reason>)", "<path>: not a regular file" (a directory, a
 * device such as /dev/zero, a FIFO), "<path>: read error"; a file longer than max_bytes:
 * when more is NULL, NF_EFORMAT "<path>: larger than the limit of <max_bytes> bytes for <what>";
 * else the first max_bytes bytes are returned and *more = 1 (0 when the file ended). The size
 * is checked before anything is allocated and the read stops at the limit, whatever stat says. */
nf_status nf_read_file(const char *path, size_t max_bytes, const char *what, unsigned char **out, size_t *size,
                       int *more, nf_err *err);
/* Write n bytes to path atomically: a temporary file beside it (mkstemp), fsync, rename. On failure
 * the temporary file is removed and path is untouched. NF_EIO messages name path. */
nf_status nf_write_file_atomic(const char *path, const void *buf, size_t n, nf_err *err);

#endif
