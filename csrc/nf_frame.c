/* nf_frame.c — little-endian writer and bounds-checked reader, limited whole-file reads, atomic
 * writes (nf_frame.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "nf_frame.h"

/* ---------------------------------------------------------------- writer */
static int reserve(nf_wbuf *b, size_t n)
{
    if (b->oom) return -1;
    if (n <= b->cap - b->n) return 0;
    if (n > ((size_t)-1) / 4 - b->n) { b->oom = 1; return -1; }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->n < n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) { b->oom = 1; return -1; }
    b->p = q;
    b->cap = cap;
    return 0;
}

void nf_wbuf_bytes(nf_wbuf *b, const void *s, size_t n)
{
    if (n == 0 || reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void le32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }

void nf_wbuf_u32(nf_wbuf *b, uint32_t v)
{
    unsigned char q[4];
    le32(q, v);
    nf_wbuf_bytes(b, q, 4);
}

void nf_wbuf_u64(nf_wbuf *b, uint64_t v)
{
    unsigned char q[8];
    for (int i = 0; i < 8; i++) q[i] = (unsigned char)(v >> (8 * i));
    nf_wbuf_bytes(b, q, 8);
}

void nf_wbuf_f32s(nf_wbuf *b, const float *x, size_t n)
{
    if (n > ((size_t)-1) / 8 || reserve(b, 4 * n)) return;
    unsigned char *q = b->p + b->n;
    for (size_t k = 0; k < n; k++) {
        uint32_t u;
        memcpy(&u, x + k, 4);
        le32(q + 4 * k, u);
    }
    b->n += 4 * n;
}

void nf_wbuf_set_u32(nf_wbuf *b, size_t off, uint32_t v)
{
    if (!b->oom && b->n >= 4 && off <= b->n - 4) le32(b->p + off, v);
}

void nf_wbuf_printf(nf_wbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = 1; return; }
    if ((size_t)n < sizeof tmp) { nf_wbuf_bytes(b, tmp, (size_t)n); return; }
    if (reserve(b, (size_t)n + 1)) return;   /* longer than tmp: format again into the buffer itself */
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void nf_wbuf_free(nf_wbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = 0;
}

/* ---------------------------------------------------------------- reader */
nf_rbuf nf_rbuf_of(const void *p, size_t n)
{
    nf_rbuf r = {p, n, 0};
    return r;
}

size_t nf_rbuf_left(const nf_rbuf *r) { return r->n - r->pos; }

const unsigned char *nf_rbuf_bytes(nf_rbuf *r, size_t n)
{
    if (n > r->n - r->pos) return NULL;
    const unsigned char *q = r->p + r->pos;
    r->pos += n;
    return q;
}

uint32_t nf_le_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int nf_rbuf_u32(nf_rbuf *r, uint32_t *v)
{
    const unsigned char *q = nf_rbuf_bytes(r, 4);
    if (!q) return -1;
    *v = nf_le_u32(q);
    return 0;
}

int nf_rbuf_u64(nf_rbuf *r, uint64_t *v)
{
    const unsigned char *q = nf_rbuf_bytes(r, 8);
    if (!q) return -1;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | q[i];
    *v = x;
    return 0;
}

int nf_rbuf_f32s(nf_rbuf *r, float *out, size_t n)
{
    if (n > (r->n - r->pos) / 4) return -1;
    const unsigned char *q = r->p + r->pos;
    for (size_t k = 0; k < n; k++) {
        uint32_t u = nf_le_u32(q + 4 * k);
        memcpy(out + k, &u, 4);
    }
    r->pos += 4 * n;
    return 0;
}

/* ---------------------------------------------------------------- files */
nf_status nf_read_file(const char *path, size_t max_bytes, const char *what, unsigned char **out, size_t *size,
                       int *more, nf_err *err)
{
    *out = NULL;
    *size = 0;
    if (more) *more = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return nf_seterr(err, NF_EIO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return nf_seterr(err, NF_EIO, "%s: not a regular file", path);
    }
    if (!more && sb.st_size > 0 && (uint64_t)sb.st_size > (uint64_t)max_bytes) {
        fclose(f);
        return nf_seterr(err, NF_EFORMAT, "%s: larger than the limit of %zu bytes for %s", path, max_bytes, what);
    }
    /* st_size is only a hint (0 for /proc files): read in growing chunks, at most one byte past the limit */
    size_t cap = sb.st_size > 0 ? ((uint64_t)sb.st_size < (uint64_t)max_bytes ? (size_t)sb.st_size : max_bytes) : 65536;
    if (cap > max_bytes) cap = max_bytes;
    cap += 1;
    size_t n = 0;
    int over = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap > max_bytes) { over = 1; break; }
            size_t nc = cap > max_bytes / 2 ? max_bytes + 1 : 2 * cap;
            unsigned char *q = realloc(buf, nc);
            if (!q) { free(buf); buf = NULL; break; }
            buf = q;
            cap = nc;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (n > max_bytes) over = 1;
    int bad = !over && buf && ferror(f);
    fclose(f);
    if (!buf) return nf_seterr(err, NF_ENOMEM, "%s: out of memory reading the file", path);
    if (bad) { free(buf); return nf_seterr(err, NF_EIO, "%s: read error", path); }
    if (over) {
        if (!more) {
            free(buf);
            return nf_seterr(err, NF_EFORMAT, "%s: larger than the limit of %zu bytes for %s", path, max_bytes, what);
        }
        *more = 1;
        n = max_bytes;
    }
    *out = buf;
    *size = n;
    return NF_OK;
}

nf_status nf_write_file_atomic(const char *path, const void *buf, size_t n, nf_err *err)
{
    if (!path || !*path) return nf_seterr(err, NF_EINVAL, "cannot write to an empty file name");
    struct stat st;
    /* never replace a device node, a directory or a fifo by a regular file (as root, /dev/null would go) */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return nf_seterr(err, NF_EIO, "%s: exists and is not a regular file (not replaced)", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nf_seterr(err, NF_EIO, "%s: cannot write (%s)", path, strerror(e));
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        remove(tmp);
        free(tmp);
        return nf_seterr(err, NF_EIO, "%s: cannot write (%s)", path, strerror(e));
    }
    size_t wr = fwrite(buf, 1, n, f);
    int bad = wr != n || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0) bad = 1;
    if (bad) {
        remove(tmp);
        free(tmp);
        return nf_seterr(err, NF_EIO, "%s: write failed (%s)", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        remove(tmp);
        free(tmp);
        return nf_seterr(err, NF_EIO, "%s: cannot rename into place (%s)", path, strerror(e));
    }
    free(tmp);
    return NF_OK;
}
