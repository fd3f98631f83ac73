/* nf_enccache.h — the binary cache of an encoding matrix (arch2vec embeddings), framed by nf_frame.h. */
#ifndef NF_ENCCACHE_H
#define NF_ENCCACHE_H

#include "nf.h"

/* A binary file: 48-byte header, then rows·dims float32, all little-endian:
 *   "NFENCODE" | u32 version (1) | u32 space id | u32 settings hash | u32 0 | i64 rows | i64 dims
 *   | u32 CRC-32 of the payload | u32 CRC-32 of the preceding 40 header bytes.
 * Written atomically (mkstemp beside the target, fsync, rename). */
#define NF_ENC_CACHE_VERSION 1u
typedef struct { uint32_t space, hash; int64_t rows, dims; } nf_enc_cache_key;
nf_status nf_enc_cache_write(const char *path, const nf_enc_cache_key *key, const float *data, nf_err *err);
/* Read into data (want->rows·want->dims floats). A missing file is NF_EIO ("...: cannot open");
 * any other problem — short file, bad magic, other version, space, settings hash or shape, CRC
 * mismatch, trailing bytes — is NF_EFORMAT with a message saying which; data is then unspecified. */
nf_status nf_enc_cache_read(const char *path, const nf_enc_cache_key *want, float *data, nf_err *err);

#endif
