/* nf_data.c — latency tables, generic tables and the data directory (see nf_data.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "nf_data.h"

/* ---------------------------------------------------------------- helpers */

/* Text quoted in an error message: at most 60 bytes (longer: the first 57 and "..."), control bytes
 * and DEL as \xNN (a terminal would obey them), a backslash doubled; other bytes (UTF-8) kept. */
typedef struct { char s[256]; } shown;

static shown show_text(const char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    shown o;
    size_t k = 0, n = len > 60 ? 57 : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f) {
            o.s[k++] = '\\';
            o.s[k++] = 'x';
            o.s[k++] = hex[c >> 4];
            o.s[k++] = hex[c & 15];
        } else {
            if (c == '\\') o.s[k++] = '\\';
            o.s[k++] = (char)c;
        }
    }
    if (len > 60) { memcpy(o.s + k, "...", 3); k += 3; }
    o.s[k] = '\0';
    return o;
}

/* A field's text (unescaped) for an error message. */
static shown show(const nf_csv_field *f)
{
    char raw[64];
    size_t len = nf_csv_copy(f, raw, 61);   /* raw holds the first min(len, 60) bytes */
    return show_text(raw, len);
}

/* A header name for an error message. */
static shown show_name(const char *name) { return show_text(name, strlen(name)); }

static size_t count_newlines(const char *b, size_t n)
{
    size_t k = 0;
    const char *p = b, *e = b + n;
    while (p < e && (p = memchr(p, '\n', (size_t)(e - p)))) { k++; p++; }
    return k;
}

/* An upper bound on the data rows left in r when every row has nh fields: the lines left, and no more
 * than one row per nh bytes (nh - 1 commas and a line end; the last row may lack its line end), so
 * that row buffers stay proportional to the file however many blank lines it has. */
static size_t row_cap(const nf_csv *r, int nh)
{
    size_t rem = r->n - r->pos, lines = count_newlines(r->buf + r->pos, rem) + 1;
    size_t by_bytes = (rem + 1) / (size_t)nh + 1;
    return lines < by_bytes ? lines : by_bytes;
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Bump allocation inside one block. */
typedef struct { char *base; size_t used; } bump;

static void *take(bump *b, size_t bytes)
{
    void *p = b->base + b->used;
    b->used += align8(bytes);
    return p;
}

/* a*b, refusing products whose 8-byte arrays would overflow size_t. */
static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > ((size_t)-1) / 8 / a) return 0;
    *out = a * b;
    return 1;
}

typedef struct { int64_t key; int64_t row; } keyrow;

static int cmp_keyrow(const void *pa, const void *pb)
{
    const keyrow *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->row > b->row) - (a->row < b->row);
}

/* Sorted (key,row) pairs: the duplicate whose second occurrence comes first in the file.
 * Returns the index j in kr of that second occurrence and sets *first to its group's first row. */
static int64_t first_duplicate(const keyrow *kr, int64_t n, int64_t *first)
{
    int64_t best = -1, gstart = 0;
    for (int64_t j = 1; j < n; j++) {
        if (kr[j].key != kr[j - 1].key) { gstart = j; continue; }
        if (j == gstart + 1 && (best < 0 || kr[j].row < kr[best].row)) {
            best = j;
            *first = kr[gstart].row;
        }
    }
    return best;
}

/* Read the header row, keeping at most max_keep + 1 of its fields (a huge header allocates nothing big
 * before the caller refuses it): on success *fields is malloc'ed and holds min(k, max_keep + 1) fields,
 * and *nh is the header's true field count k. */
static nf_status read_header(nf_csv *r, int max_keep, nf_csv_field **fields, int *nh, nf_err *err)
{
    nf_csv save = *r;
    int k;
    nf_status st = nf_csv_row(r, NULL, 0, &k, err);
    if (st) return st;
    if (k == 0) return nf_seterr(err, NF_EFORMAT, "%s:1:1: empty file (expected a header line)", r->path);
    *r = save;
    int keep = k < max_keep ? k : max_keep;
    nf_csv_field *f = malloc(sizeof *f * ((size_t)keep + 1));
    if (!f) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", r->path);
    st = nf_csv_row(r, f, keep + 1, &k, err);
    if (st) { free(f); return st; }
    *fields = f;
    *nh = k;
    return NF_OK;
}

/* 1 when field f (unescaped) is the string w. */
static int field_is(const nf_csv_field *f, const char *w)
{
    char tmp[32];
    size_t n = strlen(w);
    return n < sizeof tmp && nf_csv_copy(f, NULL, 0) == n && (nf_csv_copy(f, tmp, sizeof tmp), strcmp(tmp, w) == 0);
}

/* A set of names (strings owned by the caller) for finding duplicates in linear time: open addressing
 * over FNV-1a hashes, at most half full. */
typedef struct { const char *const *names; int *slot; size_t mask; } name_set;

static int name_set_init(name_set *h, const char *const *names, int n)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    h->names = names;
    h->mask = cap - 1;
    h->slot = malloc(cap * sizeof *h->slot);
    if (!h->slot) return 0;
    for (size_t i = 0; i < cap; i++) h->slot[i] = -1;
    return 1;
}

/* The index of an earlier name equal to names[c], or -1 after adding c. */
static int name_set_add(name_set *h, int c)
{
    uint64_t x = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)h->names[c]; *p; p++) x = (x ^ *p) * 1099511628211ULL;
    size_t j = (size_t)(x ^ (x >> 31)) & h->mask;
    for (; h->slot[j] >= 0; j = (j + 1) & h->mask)
        if (strcmp(h->names[h->slot[j]], h->names[c]) == 0) return h->slot[j];
    h->slot[j] = c;
    return -1;
}

/* Header names copied into one NUL-separated buffer; names[c] points into it. */
static nf_status copy_names(const nf_csv *r, const nf_csv_field *f, int nh, char ***names_out, nf_err *err)
{
    size_t total = 0;
    for (int c = 0; c < nh; c++) total += nf_csv_copy(&f[c], NULL, 0) + 1;
    char **names = malloc(sizeof *names * (size_t)nh + total);
    if (!names) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", r->path);
    char *pool = (char *)(names + nh);
    for (int c = 0; c < nh; c++) {
        size_t len = nf_csv_copy(&f[c], NULL, 0);
        nf_csv_copy(&f[c], pool, len + 1);
        names[c] = pool;
        pool += len + 1;
    }
    *names_out = names;
    return NF_OK;
}

/* Field-count and blank-line checks shared by both loaders. */
static nf_status check_count(const nf_csv *r, const nf_csv_field *f, int k, int nh, nf_err *err)
{
    if (k == nh) return NF_OK;
    if (k == 1 && f[0].len == 0 && !f[0].quoted)
        return nf_csv_error(r, f[0].off, err, NF_EFORMAT, "blank line (expected %d fields as in the header)", nh);
    size_t off = k > nh ? f[nh].off : f[k - 1].end;
    return nf_csv_error(r, off, err, NF_EFORMAT, "expected %d fields as in the header, found %d", nh, k);
}

static int looks_numeric(const nf_csv_field *f)
{
    double v;
    return !f->escapes && nf_parse_double(f->p, f->len, &v);
}

/* ---------------------------------------------------------------- latency */

/* Pack a latency table into one allocation and compute norm/min/max/counts. Row i of the result
 * is source row perm[i] (perm NULL: i). Arch strings come from strs, or fields (CSV, unescaped),
 * or neither (all ""). Inputs are assumed valid. */
static nf_status pack_latency(int64_t n, int nd, const int64_t *idx, const int64_t *perm,
                              const char *const *strs, const nf_csv_field *fields, const char *const *devices,
                              const float *ms, nf_latency *out, nf_err *err)
{
    size_t un = (size_t)n, und = (size_t)nd, ncell;
    if (!mul_ok(un, und, &ncell)) return nf_seterr(err, NF_ENOMEM, "too many cells");
    size_t strbytes = 1, devbytes = 0;   /* 1: the shared "" */
    for (int64_t i = 0; i < n; i++) {
        if (strs) strbytes += (strs[i] ? strlen(strs[i]) : 0) + 1;
        else if (fields) strbytes += nf_csv_copy(&fields[i], NULL, 0) + 1;
    }
    for (int d = 0; d < nd; d++) devbytes += strlen(devices[d]) + 1;
    /* one block: 8-byte arrays first, then floats, then strings */
    size_t bytes = align8(un * 8) * 2 + align8(und * 8) * 2 + align8(ncell * 4) * 2 + align8(und * 4) * 2
                 + align8(strbytes + devbytes);
    bump b = {malloc(bytes), 0};
    if (!b.base) return nf_seterr(err, NF_ENOMEM, "out of memory (%zu bytes)", bytes);
    nf_latency L;
    memset(&L, 0, sizeof L);
    L.n_archs = n;
    L.n_devices = nd;
    L.arch_index = take(&b, un * 8);
    L.arch_strings = take(&b, un * sizeof(char *));
    L.devices = take(&b, und * sizeof(char *));
    L.n_measured = take(&b, und * 8);
    L.ms = take(&b, ncell * 4);
    L.norm = take(&b, ncell * 4);
    L.dev_min = take(&b, und * 4);
    L.dev_max = take(&b, und * 4);
    char *pool = take(&b, strbytes + devbytes);
    L.mem_ = b.base;
    L.bytes = bytes;

    char *empty = pool++;
    *empty = '\0';
    for (int d = 0; d < nd; d++) {
        size_t len = strlen(devices[d]);
        memcpy(pool, devices[d], len + 1);
        L.devices[d] = pool;
        pool += len + 1;
    }
    L.dense_ = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t src = perm ? perm[i] : i;
        L.arch_index[i] = idx ? idx[src] : i;
        if (L.arch_index[i] != i) L.dense_ = 0;
        memcpy(L.ms + (size_t)i * und, ms + (size_t)src * und, und * sizeof(float));
        size_t len = 0;
        if (strs && strs[src]) {
            len = strlen(strs[src]);
            memcpy(pool, strs[src], len + 1);
        } else if (fields) {
            len = nf_csv_copy(&fields[src], pool, (size_t)-1);
        } else {
            L.arch_strings[i] = empty;
            continue;
        }
        L.arch_strings[i] = pool;
        pool += len + 1;
    }

    /* per-device min, max, count; then min-max normalisation */
    for (int d = 0; d < nd; d++) { L.dev_min[d] = INFINITY; L.dev_max[d] = -INFINITY; L.n_measured[d] = 0; }
    for (int64_t i = 0; i < n; i++) {
        const float *row = L.ms + (size_t)i * und;
        for (int d = 0; d < nd; d++) {
            float v = row[d];
            if (isnan(v)) continue;
            if (v < L.dev_min[d]) L.dev_min[d] = v;
            if (v > L.dev_max[d]) L.dev_max[d] = v;
            L.n_measured[d]++;
        }
    }
    for (int d = 0; d < nd; d++)
        if (!L.n_measured[d]) L.dev_min[d] = L.dev_max[d] = NAN;
    for (int64_t i = 0; i < n; i++) {
        const float *row = L.ms + (size_t)i * und;
        float *nrow = L.norm + (size_t)i * und;
        for (int d = 0; d < nd; d++) {
            float v = row[d];
            double lo = L.dev_min[d], span = (double)L.dev_max[d] - lo;
            if (isnan(v)) nrow[d] = NAN;
            else nrow[d] = span > 0 ? (float)((v - lo) / span) : 0.0f;
        }
    }
    *out = L;
    return NF_OK;
}

nf_status nf_latency_from_arrays(int64_t n_archs, int n_devices, const int64_t *arch_index,
                                 const char *const *arch_strings, const char *const *devices,
                                 const float *ms, nf_latency *out, nf_err *err)
{
    static const char *fn = "nf_latency_from_arrays";
    if (!out || !devices || !ms) return nf_seterr(err, NF_EINVAL, "%s: out, devices and ms must not be NULL", fn);
    if (n_archs < 1 || n_devices < 1)
        return nf_seterr(err, NF_EINVAL, "%s: need at least one architecture and one device (got %lld x %d)", fn,
                         (long long)n_archs, n_devices);
    if (n_devices > NF_LATENCY_MAX_DEVICES)
        return nf_seterr(err, NF_EINVAL, "%s: %d devices, more than the %d allowed (NF_LATENCY_MAX_DEVICES)", fn,
                         n_devices, NF_LATENCY_MAX_DEVICES);
    name_set h;
    if (!name_set_init(&h, devices, n_devices)) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", fn);
    for (int d = 0; d < n_devices; d++) {
        int e = -1;
        if (!devices[d] || !devices[d][0]) nf_seterr(err, NF_EINVAL, "%s: device %d has no name", fn, d);
        else if ((e = name_set_add(&h, d)) >= 0)
            nf_seterr(err, NF_EINVAL, "%s: duplicate device '%s' (devices %d and %d)", fn, devices[d], e, d);
        else continue;
        free(h.slot);
        return NF_EINVAL;
    }
    free(h.slot);
    size_t und = (size_t)n_devices;
    for (int64_t i = 0; i < n_archs; i++) {
        if (arch_index && arch_index[i] < 0)
            return nf_seterr(err, NF_EINVAL, "%s: arch_index[%lld] = %lld is negative", fn, (long long)i,
                             (long long)arch_index[i]);
        for (int d = 0; d < n_devices; d++) {
            float v = ms[(size_t)i * und + (size_t)d];
            if (!isnan(v) && !(v >= 0 && !isinf(v)))
                return nf_seterr(err, NF_EINVAL, "%s: ms[row %lld, device '%s'] = %g is not a latency "
                                 "(finite >= 0, or NAN for not measured)", fn, (long long)i, devices[d], (double)v);
        }
    }
    int sorted = 1;
    for (int64_t i = 1; arch_index && i < n_archs; i++)
        if (arch_index[i] <= arch_index[i - 1]) { sorted = 0; break; }
    if (sorted) return pack_latency(n_archs, n_devices, arch_index, NULL, arch_strings, NULL, devices, ms, out, err);
    keyrow *kr = malloc(sizeof(keyrow) * (size_t)n_archs);
    if (!kr) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", fn);
    for (int64_t i = 0; i < n_archs; i++) { kr[i].key = arch_index[i]; kr[i].row = i; }
    qsort(kr, (size_t)n_archs, sizeof(keyrow), cmp_keyrow);
    int64_t first = 0, j = first_duplicate(kr, n_archs, &first);
    if (j >= 0) {
        nf_seterr(err, NF_EINVAL, "%s: arch_index %lld appears at rows %lld and %lld", fn, (long long)kr[j].key,
                  (long long)first, (long long)kr[j].row);
        free(kr);
        return NF_EINVAL;
    }
    int64_t *perm = (int64_t *)kr;   /* compact the rows in place: perm[i] is written after kr[i] is read */
    for (int64_t i = 0; i < n_archs; i++) perm[i] = kr[i].row;
    nf_status st = pack_latency(n_archs, n_devices, arch_index, perm, arch_strings, NULL, devices, ms, out, err);
    free(kr);
    return st;
}


typedef struct {
    nf_csv r;
    nf_csv_field *f;       /* header/row fields */
    char **names;          /* header names */
    float *ms;             /* rows_cap × n_dev, file order */
    int64_t *idx;          /* per row */
    int64_t *line;         /* per row */
    nf_csv_field *astr;    /* per row: the arch_string field (if any) */
    keyrow *kr;
} lat_tmp;

static void lat_tmp_free(lat_tmp *t)
{
    nf_csv_close(&t->r);
    free(t->f);
    free(t->names);
    free(t->ms);
    free(t->idx);
    free(t->line);
    free(t->astr);
    free(t->kr);
}

/* The file at path, or (text non-NULL) len bytes of text named path. */
static nf_status open_csv(nf_csv *r, const char *path, const char *text, size_t len, nf_err *err)
{
    return text ? nf_csv_open_text(r, path, text, len, err) : nf_csv_open(r, path, err);
}

static nf_status lat_parse(lat_tmp *t, const char *path, const char *text, size_t text_len, nf_latency *out,
                           nf_err *err)
{
    nf_csv *r = &t->r;
    nf_status st = open_csv(r, path, text, text_len, err);
    if (st) return st;
    int nh;
    if ((st = read_header(r, NF_LATENCY_MAX_DEVICES + 2, &t->f, &nh, err))) return st;
    nf_csv_field *f = t->f;
    if (!field_is(&f[0], "arch_index")) {
        shown s = show(&f[0]);
        return nf_csv_error(r, f[0].off, err, NF_EFORMAT, "header must start with arch_index, found '%s'%s", s.s,
                            looks_numeric(&f[0]) ? " (is the header line missing?)" : "");
    }
    int dev0 = nh > 1 && field_is(&f[1], "arch_string") ? 2 : 1;
    int nd = nh - dev0;
    if (nd == 0)
        return nf_csv_error(r, f[nh - 1].end, err, NF_EFORMAT, "header names no device columns after %s",
                            dev0 == 2 ? "arch_index,arch_string" : "arch_index");
    if (nd > NF_LATENCY_MAX_DEVICES)   /* f holds the first NF_LATENCY_MAX_DEVICES + 3 fields */
        return nf_csv_error(r, f[dev0 + NF_LATENCY_MAX_DEVICES].off, err, NF_EFORMAT,
                            "%d device columns, more than the %d allowed (NF_LATENCY_MAX_DEVICES)", nd,
                            NF_LATENCY_MAX_DEVICES);
    if ((st = copy_names(r, f, nh, &t->names, err))) return st;
    name_set h;
    if (!name_set_init(&h, (const char *const *)t->names, nh)) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);
    for (int c = dev0; c < nh; c++) {
        int e = -1;
        if (t->names[c][0] == '\0')
            st = nf_csv_error(r, f[c].off, err, NF_EFORMAT, "empty device name (column %d)", c + 1);
        else if ((e = name_set_add(&h, c)) >= 0)
            st = nf_csv_error(r, f[c].off, err, NF_EFORMAT, "duplicate device '%s' (column %d, first in column %d)",
                              show_name(t->names[c]).s, c + 1, e + 1);
        if (st) break;
    }
    free(h.slot);
    if (st) return st;

    size_t cap = row_cap(r, nh), cells;
    if (!mul_ok(cap, (size_t)nd, &cells)) return nf_seterr(err, NF_ENOMEM, "%s: too many cells", path);
    t->ms = malloc(sizeof(float) * cells);
    t->idx = malloc(sizeof(int64_t) * cap);
    t->line = malloc(sizeof(int64_t) * cap);
    t->astr = dev0 == 2 ? malloc(sizeof(nf_csv_field) * cap) : NULL;
    if (!t->ms || !t->idx || !t->line || (dev0 == 2 && !t->astr))
        return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);

    int64_t n = 0;
    int sorted = 1;
    for (;;) {
        int k;
        if ((st = nf_csv_row(r, f, nh + 1, &k, err))) return st;
        if (k == 0) break;
        if ((st = check_count(r, f, k, nh, err))) return st;
        if ((size_t)n >= cap) return nf_seterr(err, NF_EFORMAT, "%s: internal error: row count", path);
        int64_t ai;
        if (f[0].escapes || !nf_parse_index(f[0].p, f[0].len, &ai)) {
            shown s = show(&f[0]);
            return nf_csv_error(r, f[0].off, err, NF_EFORMAT, "arch_index must be a non-negative integer, found '%s'", s.s);
        }
        if (n > 0 && ai <= t->idx[n - 1]) sorted = 0;
        t->idx[n] = ai;
        t->line[n] = r->row_line;
        if (dev0 == 2) {
            t->astr[n] = f[1];
        }
        float *row = t->ms + (size_t)n * (size_t)nd;
        for (int d = 0; d < nd; d++) {
            const nf_csv_field *c = &f[dev0 + d];
            if (c->len == 0) { row[d] = NAN; continue; }
            double v;
            if (c->escapes || !nf_parse_double(c->p, c->len, &v)) {
                shown s = show(c);
                return nf_csv_error(r, c->off, err, NF_EFORMAT, "device '%s' (column %d): not a number: '%s'",
                                    show_name(t->names[dev0 + d]).s, dev0 + d + 1, s.s);
            }
            if (!(v >= 0) || isinf(v)) {
                shown s = show(c);
                return nf_csv_error(r, c->off, err, NF_EFORMAT,
                                    "device '%s' (column %d): latency must be finite and >= 0, found '%s' "
                                    "(leave the cell empty if it was not measured)", show_name(t->names[dev0 + d]).s,
                                    dev0 + d + 1, s.s);
            }
            float fv = (float)v;
            if (isinf(fv)) {
                shown s = show(c);
                return nf_csv_error(r, c->off, err, NF_EFORMAT, "device '%s' (column %d): latency '%s' does not fit a float",
                                    show_name(t->names[dev0 + d]).s, dev0 + d + 1, s.s);
            }
            row[d] = fv;
        }
        n++;
    }
    if (n == 0)
        return nf_seterr(err, NF_EFORMAT, "%s:%lld:1: no data rows after the header", path, (long long)r->next_line);

    /* rows sorted by arch_index; duplicates are errors */
    if (!sorted) {
        t->kr = malloc(sizeof(keyrow) * (size_t)n);
        if (!t->kr) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);
        for (int64_t i = 0; i < n; i++) { t->kr[i].key = t->idx[i]; t->kr[i].row = i; }
        qsort(t->kr, (size_t)n, sizeof(keyrow), cmp_keyrow);
        int64_t first = 0, j = first_duplicate(t->kr, n, &first);
        if (j >= 0)
            return nf_seterr(err, NF_EFORMAT, "%s:%lld:1: duplicate arch_index %lld (first on line %lld)", path,
                             (long long)t->line[t->kr[j].row], (long long)t->kr[j].key, (long long)t->line[first]);
    }

    const int64_t *perm = NULL;
    if (!sorted) {
        int64_t *perm_buf = t->line;   /* reuse: the line numbers are no longer needed */
        for (int64_t i = 0; i < n; i++) perm_buf[i] = t->kr[i].row;
        perm = perm_buf;
    }
    st = pack_latency(n, nd, t->idx, perm, NULL, dev0 == 2 ? t->astr : NULL,
                      (const char *const *)(t->names + dev0), t->ms, out, err);
    if (st) return nf_seterr(err, st, "%s: out of memory", path);   /* the only way packing valid input fails */
    return NF_OK;
}

nf_status nf_latency_load(const char *path, nf_latency *out, nf_err *err)
{
    if (!path || !out) return nf_seterr(err, NF_EINVAL, "nf_latency_load: path and out must not be NULL");
    lat_tmp t;
    memset(&t, 0, sizeof t);
    nf_status st = lat_parse(&t, path, NULL, 0, out, err);
    lat_tmp_free(&t);
    return st;
}

nf_status nf_latency_load_text(const char *name, const char *text, size_t len, nf_latency *out, nf_err *err)
{
    if (!name || !out || (!text && len))
        return nf_seterr(err, NF_EINVAL, "nf_latency_load_text: name, text and out must not be NULL");
    lat_tmp t;
    memset(&t, 0, sizeof t);
    nf_status st = lat_parse(&t, name, text ? text : "", len, out, err);
    lat_tmp_free(&t);
    return st;
}

void nf_latency_free(nf_latency *lat)
{
    if (!lat) return;
    free(lat->mem_);
    memset(lat, 0, sizeof *lat);
}

int nf_latency_device(const nf_latency *lat, const char *name)
{
    if (!lat || !name) return -1;
    for (int d = 0; d < lat->n_devices; d++)
        if (strcmp(lat->devices[d], name) == 0) return d;
    return -1;
}

int64_t nf_latency_row(const nf_latency *lat, int64_t arch_index)
{
    if (!lat || lat->n_archs == 0) return -1;
    if (lat->dense_) return arch_index >= 0 && arch_index < lat->n_archs ? arch_index : -1;
    int64_t lo = 0, hi = lat->n_archs - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2, v = lat->arch_index[mid];
        if (v == arch_index) return mid;
        if (v < arch_index) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* ------------------------------------------------------------------ tables */

enum { COL_AUTO = 0, COL_STRING = 1, COL_NUMBER = 2 };

typedef struct {
    nf_csv r;
    nf_csv_field *f;
    char **names;
    int *force;        /* per column: COL_* */
    int *isnum;        /* per column: still numeric */
    size_t *strbytes;  /* per column: bytes its strings need */
    double *vals;      /* rows_cap × n_cols */
    int64_t *idx, *line;
    keyrow *kr;
} tab_tmp;

static void tab_tmp_free(tab_tmp *t)
{
    nf_csv_close(&t->r);
    free(t->f);
    free(t->names);
    free(t->force);
    free(t->isnum);
    free(t->strbytes);
    free(t->vals);
    free(t->idx);
    free(t->line);
    free(t->kr);
}

static int find_name(char *const *names, int n, const char *name)
{
    for (int c = 0; c < n; c++)
        if (strcmp(names[c], name) == 0) return c;
    return -1;
}

static nf_status force_cols(tab_tmp *t, int nh, const char *const *list, int kind, nf_err *err)
{
    if (!list) return NF_OK;
    for (int i = 0; list[i]; i++) {
        int c = find_name(t->names, nh, list[i]);
        if (c < 0)
            return nf_seterr(err, NF_EFORMAT, "%s: column '%s' (a %s column in the options) is not in the header",
                             t->r.path, list[i], kind == COL_STRING ? "string" : "number");
        if (t->force[c] && t->force[c] != kind)
            return nf_seterr(err, NF_EINVAL, "column '%s' is named both as a string and as a number column", list[i]);
        t->force[c] = kind;
    }
    return NF_OK;
}

static nf_status tab_parse(tab_tmp *t, const char *path, const char *text, size_t text_len,
                           const nf_table_opts *opts, nf_table *out, nf_err *err)
{
    nf_csv *r = &t->r;
    nf_status st = open_csv(r, path, text, text_len, err);
    if (st) return st;
    int nh;
    if ((st = read_header(r, NF_TABLE_MAX_COLUMNS, &t->f, &nh, err))) return st;
    nf_csv_field *f = t->f;
    if (nh > NF_TABLE_MAX_COLUMNS)   /* f holds the first NF_TABLE_MAX_COLUMNS + 1 fields */
        return nf_csv_error(r, f[NF_TABLE_MAX_COLUMNS].off, err, NF_EFORMAT,
                            "%d columns, more than the %d allowed (NF_TABLE_MAX_COLUMNS)", nh, NF_TABLE_MAX_COLUMNS);
    if ((st = copy_names(r, f, nh, &t->names, err))) return st;
    name_set h;
    if (!name_set_init(&h, (const char *const *)t->names, nh)) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);
    for (int c = 0; c < nh; c++) {
        int e = -1;
        if (t->names[c][0] == '\0')
            st = nf_csv_error(r, f[c].off, err, NF_EFORMAT, "empty column name (column %d)", c + 1);
        else if ((e = name_set_add(&h, c)) >= 0)
            st = nf_csv_error(r, f[c].off, err, NF_EFORMAT, "duplicate column '%s' (column %d, first in column %d)",
                              show_name(t->names[c]).s, c + 1, e + 1);
        if (st) break;
    }
    free(h.slot);
    if (st) return st;
    t->force = calloc((size_t)nh, sizeof(int));
    t->isnum = calloc((size_t)nh, sizeof(int));
    t->strbytes = calloc((size_t)nh, sizeof(size_t));
    if (!t->force || !t->isnum || !t->strbytes) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);
    if ((st = force_cols(t, nh, opts ? opts->string_cols : NULL, COL_STRING, err))) return st;
    if ((st = force_cols(t, nh, opts ? opts->number_cols : NULL, COL_NUMBER, err))) return st;
    int key = -1;
    const char *kname = opts ? opts->key : NULL;
    if (!kname) key = find_name(t->names, nh, "arch_index");
    else if (kname[0]) {
        key = find_name(t->names, nh, kname);
        if (key < 0) return nf_seterr(err, NF_EFORMAT, "%s: key column '%s' is not in the header", path, kname);
    }
    if (key >= 0) {
        if (t->force[key] == COL_STRING)
            return nf_seterr(err, NF_EINVAL, "key column '%s' cannot be a string column", t->names[key]);
        t->force[key] = COL_NUMBER;
    }
    for (int c = 0; c < nh; c++) t->isnum[c] = t->force[c] != COL_STRING;

    size_t cap = row_cap(r, nh), cells;
    if (!mul_ok(cap, (size_t)nh, &cells)) return nf_seterr(err, NF_ENOMEM, "%s: too many cells", path);
    t->vals = malloc(sizeof(double) * cells);
    t->line = malloc(sizeof(int64_t) * cap);
    t->idx = key >= 0 ? malloc(sizeof(int64_t) * cap) : NULL;
    if (!t->vals || !t->line || (key >= 0 && !t->idx)) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);

    nf_csv body = *r;   /* the reader positioned after the header, for the string pass */
    int64_t n = 0;
    for (;;) {
        int k;
        if ((st = nf_csv_row(r, f, nh + 1, &k, err))) return st;
        if (k == 0) break;
        if ((st = check_count(r, f, k, nh, err))) return st;
        if ((size_t)n >= cap) return nf_seterr(err, NF_EFORMAT, "%s: internal error: row count", path);
        t->line[n] = r->row_line;
        double *row = t->vals + (size_t)n * (size_t)nh;
        for (int c = 0; c < nh; c++) {
            const nf_csv_field *cf = &f[c];
            t->strbytes[c] += nf_csv_copy(cf, NULL, 0) + 1;
            if (c == key) {
                int64_t ai;
                if (cf->escapes || !nf_parse_index(cf->p, cf->len, &ai)) {
                    shown s = show(cf);
                    return nf_csv_error(r, cf->off, err, NF_EFORMAT, "%s must be a non-negative integer, found '%s'",
                                        show_name(t->names[c]).s, s.s);
                }
                t->idx[n] = ai;
                row[c] = (double)ai;
                continue;
            }
            if (!t->isnum[c]) continue;
            if (cf->len == 0) { row[c] = NAN; continue; }
            if (cf->escapes || !nf_parse_double(cf->p, cf->len, &row[c])) {
                if (t->force[c] == COL_NUMBER) {
                    shown s = show(cf);
                    return nf_csv_error(r, cf->off, err, NF_EFORMAT, "column '%s' (column %d): not a number: '%s'",
                                        show_name(t->names[c]).s, c + 1, s.s);
                }
                t->isnum[c] = 0;
            }
        }
        n++;
    }
    if (n == 0)
        return nf_seterr(err, NF_EFORMAT, "%s:%lld:1: no data rows after the header", path, (long long)r->next_line);

    if (key >= 0) {
        t->kr = malloc(sizeof(keyrow) * (size_t)n);
        if (!t->kr) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);
        for (int64_t i = 0; i < n; i++) { t->kr[i].key = t->idx[i]; t->kr[i].row = i; }
        qsort(t->kr, (size_t)n, sizeof(keyrow), cmp_keyrow);
        if (!(opts && opts->allow_duplicates)) {
            int64_t first = 0, j = first_duplicate(t->kr, n, &first);
            if (j >= 0)
                return nf_seterr(err, NF_EFORMAT, "%s:%lld:1: duplicate %s %lld (first on line %lld)", path,
                                 (long long)t->line[t->kr[j].row], show_name(t->names[key]).s, (long long)t->kr[j].key,
                                 (long long)t->line[first]);
        }
    }

    /* one block */
    size_t un = (size_t)n, unh = (size_t)nh, namebytes = 0, poolbytes = 0;
    int any_string = 0;
    for (int c = 0; c < nh; c++) {
        namebytes += strlen(t->names[c]) + 1;
        if (!t->isnum[c]) { poolbytes += t->strbytes[c]; any_string = 1; }
    }
    size_t bytes = align8(unh * sizeof(char *)) + align8(unh * sizeof(int)) + align8(unh * sizeof(double *))
                 + align8(unh * sizeof(char **)) + (key >= 0 ? 2 * align8(un * 8) : 0)
                 + align8(namebytes + poolbytes);
    for (int c = 0; c < nh; c++) bytes += align8(un * (t->isnum[c] ? sizeof(double) : sizeof(char *)));
    bump b = {malloc(bytes), 0};
    if (!b.base) return nf_seterr(err, NF_ENOMEM, "%s: out of memory (%zu bytes)", path, bytes);
    nf_table T;
    memset(&T, 0, sizeof T);
    T.n_rows = n;
    T.n_cols = nh;
    T.key = key;
    T.mem_ = b.base;
    T.bytes = bytes;
    T.names = take(&b, unh * sizeof(char *));
    T.is_string = take(&b, unh * sizeof(int));
    T.num = take(&b, unh * sizeof(double *));
    T.str = take(&b, unh * sizeof(char **));
    if (key >= 0) {
        T.arch_index = take(&b, un * 8);
        T.order = take(&b, un * 8);
        for (int64_t i = 0; i < n; i++) {
            T.arch_index[i] = t->idx[i];
            T.order[i] = t->kr[i].row;
        }
    }
    for (int c = 0; c < nh; c++) {
        T.is_string[c] = !t->isnum[c];
        if (t->isnum[c]) {
            T.num[c] = take(&b, un * sizeof(double));
            T.str[c] = NULL;
            for (int64_t i = 0; i < n; i++) T.num[c][i] = t->vals[(size_t)i * unh + (size_t)c];
        } else {
            T.num[c] = NULL;
            T.str[c] = take(&b, un * sizeof(char *));
        }
    }
    char *pool = take(&b, namebytes + poolbytes);
    for (int c = 0; c < nh; c++) {
        size_t len = strlen(t->names[c]);
        memcpy(pool, t->names[c], len + 1);
        T.names[c] = pool;
        pool += len + 1;
    }
    if (any_string) {   /* second pass over the rows: copy the string cells */
        *r = body;
        for (int64_t i = 0; i < n; i++) {
            int k;
            if ((st = nf_csv_row(r, f, nh + 1, &k, err)) || k != nh) {
                free(b.base);
                return st ? st : nf_seterr(err, NF_EFORMAT, "%s: internal error: second pass", path);
            }
            for (int c = 0; c < nh; c++) {
                if (!T.is_string[c]) continue;
                size_t len = nf_csv_copy(&f[c], pool, (size_t)-1);
                T.str[c][i] = pool;
                pool += len + 1;
            }
        }
    }
    *out = T;
    return NF_OK;
}

nf_status nf_table_load(const char *path, const nf_table_opts *opts, nf_table *out, nf_err *err)
{
    if (!path || !out) return nf_seterr(err, NF_EINVAL, "nf_table_load: path and out must not be NULL");
    tab_tmp t;
    memset(&t, 0, sizeof t);
    nf_status st = tab_parse(&t, path, NULL, 0, opts, out, err);
    tab_tmp_free(&t);
    return st;
}

nf_status nf_table_load_text(const char *name, const char *text, size_t len, const nf_table_opts *opts, nf_table *out,
                             nf_err *err)
{
    if (!name || !out || (!text && len))
        return nf_seterr(err, NF_EINVAL, "nf_table_load_text: name, text and out must not be NULL");
    tab_tmp t;
    memset(&t, 0, sizeof t);
    nf_status st = tab_parse(&t, name, text ? text : "", len, opts, out, err);
    tab_tmp_free(&t);
    return st;
}

void nf_table_free(nf_table *t)
{
    if (!t) return;
    free(t->mem_);
    memset(t, 0, sizeof *t);
}

int nf_table_column(const nf_table *t, const char *name)
{
    if (!t || !name) return -1;
    return find_name(t->names, t->n_cols, name);
}

int64_t nf_table_rows(const nf_table *t, int64_t arch_index, const int64_t **rows)
{
    if (rows) *rows = NULL;
    if (!t || t->key < 0 || t->n_rows == 0) return 0;
    int64_t lo = 0, hi = t->n_rows;   /* first position with key >= arch_index */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (t->arch_index[t->order[mid]] < arch_index) lo = mid + 1;
        else hi = mid;
    }
    int64_t end = lo;
    while (end < t->n_rows && t->arch_index[t->order[end]] == arch_index) end++;
    if (rows && end > lo) *rows = t->order + lo;
    return end - lo;
}

int64_t nf_table_row(const nf_table *t, int64_t arch_index)
{
    const int64_t *rows;
    return nf_table_rows(t, arch_index, &rows) ? rows[0] : -1;
}

/* ---------------------------------------------------------- data directory */

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static nf_status put_path(const char *path, char *out, size_t cap, nf_err *err)
{
    size_t len = strlen(path);
    if (!out || len + 1 > cap) return nf_seterr(err, NF_ERANGE, "data directory path '%s' is longer than the buffer (%zu bytes)", path, cap);
    memcpy(out, path, len + 1);
    return NF_OK;
}

nf_status nf_data_dir(const char *opt, const char *env, const char *fallback, char *out, size_t cap, nf_err *err)
{
    if (opt && opt[0]) {
        if (is_dir(opt)) return put_path(opt, out, cap, err);
        return nf_seterr(err, NF_EIO, "data directory not found: option dir='%s' is not a directory", opt);
    }
    if (env && env[0]) {
        if (is_dir(env)) return put_path(env, out, cap, err);
        return nf_seterr(err, NF_EIO, "data directory not found: option dir not given; NASFLAT_DATA='%s' is not a directory", env);
    }
    if (fallback && fallback[0]) {
        if (is_dir(fallback)) return put_path(fallback, out, cap, err);
        return nf_seterr(err, NF_EIO, "data directory not found: option dir not given; NASFLAT_DATA not set; "
                                      "'%s' is not a directory", fallback);
    }
    return nf_seterr(err, NF_EIO, "data directory not found: option dir not given; NASFLAT_DATA not set; no fallback");
}
