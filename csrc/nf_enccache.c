/* nf_enccache.c — the binary cache of an encoding matrix (layout in nf_enccache.h), written and
 * read through the framing of nf_frame.h. */
#include <stdlib.h>
#include <string.h>
#include "nf_enccache.h"
#include "nf_frame.h"
#include "nf_util.h"

static const char CACHE_MAGIC[8] = {'N', 'F', 'E', 'N', 'C', 'O', 'D', 'E'};
#define CACHE_HEADER 48
#define CACHE_MAX_FLOATS ((int64_t)1 << 36)   /* 256 GiB: only a guard against overflow */

static nf_status check_shape(const char *path, int64_t rows, int64_t dims, nf_err *err)
{
    if (rows < 0 || dims < 0 || (dims && rows > CACHE_MAX_FLOATS / dims))
        return nf_seterr(err, NF_EINVAL, "%s: bad cache shape %lld × %lld", path, (long long)rows, (long long)dims);
    return NF_OK;
}

nf_status nf_enc_cache_write(const char *path, const nf_enc_cache_key *key, const float *data, nf_err *err)
{
    nf_status st;
    if ((st = check_shape(path, key->rows, key->dims, err))) return st;
    const size_t n = (size_t)(key->rows * key->dims);
    nf_wbuf b = {0};
    nf_wbuf_bytes(&b, CACHE_MAGIC, 8);
    nf_wbuf_u32(&b, NF_ENC_CACHE_VERSION);
    nf_wbuf_u32(&b, key->space);
    nf_wbuf_u32(&b, key->hash);
    nf_wbuf_u32(&b, 0);
    nf_wbuf_u64(&b, (uint64_t)key->rows);
    nf_wbuf_u64(&b, (uint64_t)key->dims);
    nf_wbuf_u32(&b, 0);   /* payload CRC, set below */
    nf_wbuf_u32(&b, 0);   /* header CRC, set below */
    nf_wbuf_f32s(&b, data, n);
    if (b.oom) {
        nf_wbuf_free(&b);
        return nf_seterr(err, NF_ENOMEM, "%s: out of memory (%zu bytes)", path, CACHE_HEADER + 4 * n);
    }
    nf_wbuf_set_u32(&b, 40, nf_crc32(0, b.p + CACHE_HEADER, 4 * n));
    nf_wbuf_set_u32(&b, 44, nf_crc32(0, b.p, 44));
    st = nf_write_file_atomic(path, b.p, b.n, err);
    nf_wbuf_free(&b);
    return st;
}

nf_status nf_enc_cache_read(const char *path, const nf_enc_cache_key *want, float *data, nf_err *err)
{
    nf_status st;
    if ((st = check_shape(path, want->rows, want->dims, err))) return st;
    const size_t n = (size_t)(want->rows * want->dims);
    unsigned char *buf;
    size_t size;
    int more;
    /* at most the expected size is read: a longer file is "trailing bytes" */
    if ((st = nf_read_file(path, CACHE_HEADER + 4 * n, "an encoding cache", &buf, &size, &more, err))) return st;
    nf_rbuf r = nf_rbuf_of(buf, size);
    const unsigned char *h = nf_rbuf_bytes(&r, CACHE_HEADER);
    uint32_t version = 0, space = 0, hash = 0, zero = 0, crc_data = 0;
    uint64_t rows = 0, dims = 0;
    if (h) {
        nf_rbuf hr = nf_rbuf_of(h + 8, CACHE_HEADER - 8);
        (void)(nf_rbuf_u32(&hr, &version) || nf_rbuf_u32(&hr, &space) || nf_rbuf_u32(&hr, &hash)
               || nf_rbuf_u32(&hr, &zero) || nf_rbuf_u64(&hr, &rows) || nf_rbuf_u64(&hr, &dims)
               || nf_rbuf_u32(&hr, &crc_data));
    }
    if (!h) st = nf_seterr(err, NF_EFORMAT, "%s: truncated header", path);
    else if (memcmp(h, CACHE_MAGIC, 8) != 0) st = nf_seterr(err, NF_EFORMAT, "%s: not an encoding cache (bad magic)", path);
    else if (nf_crc32(0, h, 44) != nf_le_u32(h + 44)) st = nf_seterr(err, NF_EFORMAT, "%s: header CRC mismatch", path);
    else if (version != NF_ENC_CACHE_VERSION)
        st = nf_seterr(err, NF_EFORMAT, "%s: cache version %u (expected %u)", path, version, NF_ENC_CACHE_VERSION);
    else if (space != want->space)
        st = nf_seterr(err, NF_EFORMAT, "%s: cache of space %u (expected %u)", path, space, want->space);
    else if (hash != want->hash)
        st = nf_seterr(err, NF_EFORMAT, "%s: settings hash %08x (expected %08x): settings changed", path, hash, want->hash);
    else if ((int64_t)rows != want->rows || (int64_t)dims != want->dims)
        st = nf_seterr(err, NF_EFORMAT, "%s: holds %lld × %lld (expected %lld × %lld)", path, (long long)rows,
                       (long long)dims, (long long)want->rows, (long long)want->dims);
    else if (nf_rbuf_left(&r) < 4 * n) st = nf_seterr(err, NF_EFORMAT, "%s: truncated data", path);
    else if (more) st = nf_seterr(err, NF_EFORMAT, "%s: trailing bytes after the data", path);
    else if (nf_crc32(0, r.p + r.pos, 4 * n) != crc_data)
        st = nf_seterr(err, NF_EFORMAT, "%s: data CRC mismatch (corrupt)", path);
    else if (nf_rbuf_f32s(&r, data, n)) st = nf_seterr(err, NF_EFORMAT, "%s: truncated data", path);
    free(buf);
    return st;
}
