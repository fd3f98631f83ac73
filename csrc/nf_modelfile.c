/* nf_modelfile.c — save/load of predictor models: a versioned binary with a JSON header
 * and a CRC-32, written atomically (temporary file + rename). Every malformed file is
 * refused with a message naming the problem. Layout in nf_model.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nf_frame.h"
#include "nf_model.h"
#include "nf_util.h"

static const char MAGIC[8] = {'N', 'F', 'M', 'O', 'D', 'E', 'L', '\0'};

/* ---------------------------------------------------------------- the JSON header */
static void json_str(nf_wbuf *b, const char *s)
{
    nf_wbuf_bytes(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; nf_wbuf_bytes(b, e, 2); }
        else if (c < 0x20) nf_wbuf_printf(b, "\\u%04x", c);
        else nf_wbuf_bytes(b, s, 1);
    }
    nf_wbuf_bytes(b, "\"", 1);
}

static void json_ints(nf_wbuf *b, const char *key, int n, const int *v)
{
    nf_wbuf_printf(b, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) nf_wbuf_printf(b, "%s%d", i ? "," : "", v[i]);
    nf_wbuf_bytes(b, "]", 1);
}

static void header_json(const nf_model *m, nf_wbuf *b)
{
    const nf_model_cfg *c = nf_model_config(m);
    nf_wbuf_printf(b, "{\"format\":\"nasflat-model\",\"library\":\"%s\",\"config\":{", NF_VERSION);
    nf_wbuf_printf(b, "\"nodes\":%d,\"n_ops\":%d,\"z_dim\":%d,\"layer\":\"%s\",\"heads\":%d,\"device_at\":\"%s\"",
              c->nodes, c->n_ops, c->z_dim, nf_model_layer_name(c), c->heads, nf_dev_at_name(c->device_at));
    nf_wbuf_printf(b, ",\"op_encoding\":\"%s\"", nf_op_encoding_name(c->op_encoding));
    if (c->z_raw) nf_wbuf_printf(b, ",\"z_raw\":%d", c->z_raw);   /* absent: 0 (files written before it existed) */
    nf_wbuf_printf(b, ",\"op_dim\":%d,\"hw_dim\":%d,\"node_dim\":%d,\"hid\":%d,\"upd_hidden\":%d,\"z_out\":%d,\"dev_out\":%d",
              c->op_dim, c->hw_dim, c->node_dim, c->hid, c->upd_hidden, c->z_out, c->dev_out);
    json_ints(b, "op_layers", c->n_op_layers, c->op_layers);
    json_ints(b, "main_layers", c->n_main_layers, c->main_layers);
    json_ints(b, "gate_mlp", c->n_gate_mlp, c->gate_mlp);
    json_ints(b, "z_hidden", c->n_z_hidden, c->z_hidden);
    json_ints(b, "head", c->n_head, c->head);
    nf_wbuf_printf(b, ",\"dropout\":%.9g,\"readout\":\"%s\",\"none_op\":%d,\"gat_slope\":%.9g", (double)c->dropout,
              nf_readout_name(c->readout), c->none_op, (double)c->gat_slope);
    nf_wbuf_printf(b, ",\"quirk_io_emb\":%s,\"quirk_gat_mask_zero\":%s}",
              c->quirk_io_emb ? "true" : "false", c->quirk_gat_mask_zero ? "true" : "false");
    nf_wbuf_bytes(b, ",\"devices\":[", 12);
    for (int i = 0; i < nf_model_ndev(m); i++) {
        if (i) nf_wbuf_bytes(b, ",", 1);
        json_str(b, nf_model_dev_name(m, i));
    }
    nf_wbuf_bytes(b, "],\"meta\":{", 10);
    for (int i = 0; i < nf_model_nmeta(m); i++) {
        if (i) nf_wbuf_bytes(b, ",", 1);
        json_str(b, nf_model_meta_key(m, i));
        double v = nf_model_meta_value(m, i);
        if (isfinite(v)) nf_wbuf_printf(b, ":%.17g", v);
        else nf_wbuf_bytes(b, ":null", 5);
    }
    nf_wbuf_printf(b, "},\"n_params\":%lld,\"slices\":[", (long long)nf_model_nparams(m));
    for (int i = 0; i < nf_model_nslices(m); i++) {
        const nf_pslice *s = nf_model_slice(m, i);
        nf_wbuf_printf(b, "%s[\"%s\",%lld,%lld]", i ? "," : "", s->name, (long long)s->off, (long long)s->n);
    }
    nf_wbuf_bytes(b, "]}", 2);
}

nf_status nf_model_save(const nf_model *m, const char *path, nf_err *err)
{
    nf_wbuf h = {0};
    header_json(m, &h);
    if (h.oom) { nf_wbuf_free(&h); return nf_seterr(err, NF_ENOMEM, "%s: out of memory writing the header", path); }
    const int64_t np = nf_model_nparams(m);
    nf_wbuf b = {0};
    nf_wbuf_bytes(&b, MAGIC, 8);
    nf_wbuf_u32(&b, NF_MODELFILE_VERSION);
    nf_wbuf_u32(&b, (uint32_t)h.n);
    nf_wbuf_bytes(&b, h.p, h.n);
    nf_wbuf_u64(&b, (uint64_t)np);
    nf_wbuf_f32s(&b, nf_model_params((nf_model *)m), (size_t)np);
    if (!b.oom) nf_wbuf_u32(&b, nf_crc32(0, b.p, b.n));
    nf_wbuf_free(&h);
    if (b.oom) {
        nf_wbuf_free(&b);
        return nf_seterr(err, NF_ENOMEM, "%s: out of memory (%lld parameters)", path, (long long)np);
    }
    nf_status st = nf_write_file_atomic(path, b.p, b.n, err);
    nf_wbuf_free(&b);
    return st;
}

/* ---------------------------------------------------------------- a small JSON reader */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct {
    int type;
    double num;
    char *str;          /* J_STR value, or key for a member of an object */
    char *key;
    int first, next;    /* child list */
} jnode;

typedef struct {
    const char *s;
    size_t n, pos;
    jnode *nodes;
    int count, cap;
    char *strs;         /* decoded strings, one arena */
    size_t spos;
    const char *fail;
} jparser;

static void jskip(jparser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r' || p->s[p->pos] == '\t'))
        p->pos++;
}

static int jnew(jparser *p, int type)
{
    if (p->count == p->cap) { p->fail = "too many values"; return -1; }
    jnode *n = &p->nodes[p->count];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->first = n->next = -1;
    return p->count++;
}

static char *jstring(jparser *p)
{
    if (p->s[p->pos] != '"') { p->fail = "expected a string"; return NULL; }
    p->pos++;
    char *out = p->strs + p->spos;
    while (p->pos < p->n && p->s[p->pos] != '"') {
        char c = p->s[p->pos++];
        if ((unsigned char)c < 0x20) { p->fail = "control character in a string"; return NULL; }
        if (c == '\\') {
            if (p->pos >= p->n) break;
            char e = p->s[p->pos++];
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    char h = p->pos < p->n ? p->s[p->pos++] : 0;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else { p->fail = "bad \\u escape"; return NULL; }
                }
                if (v == 0 || v > 0x7f) { p->fail = "unsupported \\u escape"; return NULL; }
                c = (char)v;
                break;
            }
            default: p->fail = "bad escape"; return NULL;
            }
        }
        p->strs[p->spos++] = c;
    }
    if (p->pos >= p->n) { p->fail = "unterminated string"; return NULL; }
    p->pos++;
    p->strs[p->spos++] = 0;
    return out;
}

static int jvalue(jparser *p, int depth)
{
    if (depth > 16) { p->fail = "nesting too deep"; return -1; }
    jskip(p);
    if (p->pos >= p->n) { p->fail = "unexpected end"; return -1; }
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        int obj = c == '{', id = jnew(p, obj ? J_OBJ : J_ARR), last = -1;
        if (id < 0) return -1;
        p->pos++;
        jskip(p);
        if (p->pos < p->n && p->s[p->pos] == (obj ? '}' : ']')) { p->pos++; return id; }
        for (;;) {
            char *key = NULL;
            jskip(p);
            if (obj) {
                if (p->pos >= p->n || !(key = jstring(p))) { if (!p->fail) p->fail = "expected a key"; return -1; }
                jskip(p);
                if (p->pos >= p->n || p->s[p->pos] != ':') { p->fail = "expected ':'"; return -1; }
                p->pos++;
            }
            int ch = jvalue(p, depth + 1);
            if (ch < 0) return -1;
            p->nodes[ch].key = key;
            if (last < 0) p->nodes[id].first = ch; else p->nodes[last].next = ch;
            last = ch;
            jskip(p);
            if (p->pos < p->n && p->s[p->pos] == ',') { p->pos++; continue; }
            if (p->pos < p->n && p->s[p->pos] == (obj ? '}' : ']')) { p->pos++; return id; }
            p->fail = obj ? "expected ',' or '}'" : "expected ',' or ']'";
            return -1;
        }
    }
    if (c == '"') {
        int id = jnew(p, J_STR);
        if (id < 0) return -1;
        char *s = jstring(p);
        if (!s) return -1;
        p->nodes[id].str = s;
        return id;
    }
    const char *words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t L = strlen(words[w]);
        if (p->n - p->pos >= L && memcmp(p->s + p->pos, words[w], L) == 0) {
            int id = jnew(p, w == 2 ? J_NULL : J_BOOL);
            if (id < 0) return -1;
            p->nodes[id].num = w == 0;
            p->pos += L;
            return id;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64];
        size_t k = 0;
        while (p->pos < p->n && k < sizeof tmp - 1 && strchr("+-0123456789.eE", p->s[p->pos])) tmp[k++] = p->s[p->pos++];
        tmp[k] = 0;
        char *end;
        double v = strtod(tmp, &end);
        if (*end || !k) { p->fail = "bad number"; return -1; }
        int id = jnew(p, J_NUM);
        if (id < 0) return -1;
        p->nodes[id].num = v;
        return id;
    }
    p->fail = "unexpected character";
    return -1;
}

static const jnode *jget(const jparser *p, const jnode *obj, const char *key)
{
    if (!obj || obj->type != J_OBJ) return NULL;
    for (int c = obj->first; c >= 0; c = p->nodes[c].next)
        if (p->nodes[c].key && strcmp(p->nodes[c].key, key) == 0) return &p->nodes[c];
    return NULL;
}

/* ---------------------------------------------------------------- load */
typedef struct {
    const char *path;
    const jparser *p;
    const jnode *cfg;
    nf_err *err;
} cfgread;

static nf_status cfg_int(cfgread *r, const char *key, int *out)
{
    const jnode *n = jget(r->p, r->cfg, key);
    if (!n || n->type != J_NUM || n->num != floor(n->num) || fabs(n->num) > 1e9)
        return nf_seterr(r->err, NF_EFORMAT, "%s: header: config field '%s' missing or not an integer", r->path, key);
    *out = (int)n->num;
    return NF_OK;
}

static nf_status cfg_num(cfgread *r, const char *key, float *out)
{
    const jnode *n = jget(r->p, r->cfg, key);
    if (!n || n->type != J_NUM)
        return nf_seterr(r->err, NF_EFORMAT, "%s: header: config field '%s' missing or not a number", r->path, key);
    *out = (float)n->num;
    return NF_OK;
}

static nf_status cfg_bool(cfgread *r, const char *key, int *out)
{
    const jnode *n = jget(r->p, r->cfg, key);
    if (!n || n->type != J_BOOL)
        return nf_seterr(r->err, NF_EFORMAT, "%s: header: config field '%s' missing or not a boolean", r->path, key);
    *out = n->num != 0;
    return NF_OK;
}

static nf_status cfg_str(cfgread *r, const char *key, const char **out)
{
    const jnode *n = jget(r->p, r->cfg, key);
    if (!n || n->type != J_STR)
        return nf_seterr(r->err, NF_EFORMAT, "%s: header: config field '%s' missing or not a string", r->path, key);
    *out = n->str;
    return NF_OK;
}

static nf_status cfg_ints(cfgread *r, const char *key, int *n_out, int *v)
{
    const jnode *n = jget(r->p, r->cfg, key);
    if (!n || n->type != J_ARR)
        return nf_seterr(r->err, NF_EFORMAT, "%s: header: config field '%s' missing or not an array", r->path, key);
    int k = 0;
    for (int c = n->first; c >= 0; c = r->p->nodes[c].next) {
        const jnode *e = &r->p->nodes[c];
        if (k == NF_MAXL || e->type != J_NUM || e->num != floor(e->num) || fabs(e->num) > 1e9)
            return nf_seterr(r->err, NF_EFORMAT, "%s: header: config field '%s' must hold at most %d integers", r->path, key, NF_MAXL);
        v[k++] = (int)e->num;
    }
    *n_out = k;
    return NF_OK;
}

static nf_status read_config(cfgread *r, nf_model_cfg *c)
{
    nf_status st;
    const char *layer, *dev_at, *readout;
    nf_model_cfg_default(c);
#define TRY(x) do { if ((st = (x))) return st; } while (0)
    TRY(cfg_int(r, "nodes", &c->nodes));
    TRY(cfg_int(r, "n_ops", &c->n_ops));
    TRY(cfg_int(r, "z_dim", &c->z_dim));
    TRY(cfg_str(r, "layer", &layer));
    TRY(cfg_int(r, "heads", &c->heads));
    TRY(cfg_str(r, "device_at", &dev_at));
    TRY(cfg_int(r, "op_dim", &c->op_dim));
    TRY(cfg_int(r, "hw_dim", &c->hw_dim));
    TRY(cfg_int(r, "node_dim", &c->node_dim));
    TRY(cfg_int(r, "hid", &c->hid));
    TRY(cfg_int(r, "upd_hidden", &c->upd_hidden));
    TRY(cfg_int(r, "z_out", &c->z_out));
    c->z_raw = 0;   /* optional: written only when set */
    if (jget(r->p, r->cfg, "z_raw")) TRY(cfg_int(r, "z_raw", &c->z_raw));
    TRY(cfg_int(r, "dev_out", &c->dev_out));
    TRY(cfg_ints(r, "op_layers", &c->n_op_layers, c->op_layers));
    TRY(cfg_ints(r, "main_layers", &c->n_main_layers, c->main_layers));
    TRY(cfg_ints(r, "gate_mlp", &c->n_gate_mlp, c->gate_mlp));
    TRY(cfg_ints(r, "z_hidden", &c->n_z_hidden, c->z_hidden));
    TRY(cfg_ints(r, "head", &c->n_head, c->head));
    TRY(cfg_num(r, "dropout", &c->dropout));
    TRY(cfg_str(r, "readout", &readout));
    TRY(cfg_int(r, "none_op", &c->none_op));
    TRY(cfg_num(r, "gat_slope", &c->gat_slope));
    TRY(cfg_bool(r, "quirk_io_emb", &c->quirk_io_emb));
    TRY(cfg_bool(r, "quirk_gat_mask_zero", &c->quirk_gat_mask_zero));
    {
        /* quirk_gat_nscale (GAT logits × N) misread the reference and was removed: files written without it
         * set, as every default one was, still load */
        const jnode *ns = jget(r->p, r->cfg, "quirk_gat_nscale");
        if (ns && (ns->type != J_BOOL || ns->num != 0))
            return nf_seterr(r->err, NF_EFORMAT, "%s: header: written with quirk_gat_nscale, which nasflat no longer "
                             "has (it misread the reference's attention)", r->path);
    }
#undef TRY
    if (nf_model_layer_parse(c, layer) < 0)
        return nf_seterr(r->err, NF_EFORMAT, "%s: header: unknown graph layer '%s'", r->path, layer);
    /* op_encoding: absent in files written before it existed, which all used the learned table */
    const char *openc = "learned";
    if (jget(r->p, r->cfg, "op_encoding") && (st = cfg_str(r, "op_encoding", &openc))) return st;
    if (strcmp(openc, "learned") == 0) c->op_encoding = NF_OPENC_LEARNED;
    else if (strcmp(openc, "onehot") == 0) c->op_encoding = NF_OPENC_ONEHOT;
    else return nf_seterr(r->err, NF_EFORMAT, "%s: header: unknown op_encoding '%s'", r->path, openc);
    if (strcmp(dev_at, "node") == 0) c->device_at = NF_DEV_NODE;
    else if (strcmp(dev_at, "head") == 0) c->device_at = NF_DEV_HEAD;
    else if (strcmp(dev_at, "none") == 0) c->device_at = NF_DEV_NONE;
    else return nf_seterr(r->err, NF_EFORMAT, "%s: header: unknown device_at '%s'", r->path, dev_at);
    if (strcmp(readout, "mean") == 0) c->readout = NF_READOUT_MEAN;
    else if (strcmp(readout, "masked") == 0) c->readout = NF_READOUT_MASKED;
    else if (strcmp(readout, "reference") == 0) c->readout = NF_READOUT_REFERENCE;
    else return nf_seterr(r->err, NF_EFORMAT, "%s: header: unknown readout '%s'", r->path, readout);
    nf_err e2;
    if (nf_model_cfg_check(c, &e2)) return nf_seterr(r->err, NF_EFORMAT, "%s: header: %s", r->path, e2.msg);
    return NF_OK;
}

nf_status nf_model_load(const char *path, nf_model **out, nf_err *err)
{
    unsigned char *buf = NULL;
    size_t size = 0;
    nf_status st;
    *out = NULL;
    if ((st = nf_read_file(path, NF_MODELFILE_MAX_BYTES, "a model file", &buf, &size, NULL, err))) return st;
    jparser p;
    memset(&p, 0, sizeof p);
    nf_model *m = NULL;
    const size_t fixed = 8 + 4 + 4 + 8 + 4;
    nf_rbuf r = nf_rbuf_of(buf, size);
    const unsigned char *magic = nf_rbuf_bytes(&r, 8), *hdr = NULL;
    uint32_t version = 0, hlen = 0;
    uint64_t np = 0;
#define FAIL(code, ...) do { st = nf_seterr(err, code, __VA_ARGS__); goto done; } while (0)
    if (magic && memcmp(magic, MAGIC, 8) != 0) FAIL(NF_EFORMAT, "%s: not a nasflat model file (bad magic)", path);
    if (size < fixed || nf_rbuf_u32(&r, &version) || nf_rbuf_u32(&r, &hlen))
        FAIL(NF_EFORMAT, "%s: truncated model file (%zu bytes)", path, size);
    if (version != NF_MODELFILE_VERSION)
        FAIL(NF_EFORMAT, "%s: model file format version %u is not supported (this library reads %d)", path,
             (unsigned)version, NF_MODELFILE_VERSION);
    if (hlen > NF_MODELFILE_MAX_HEADER)
        FAIL(NF_EFORMAT, "%s: header of %u bytes is larger than the limit of %d bytes", path, (unsigned)hlen,
             NF_MODELFILE_MAX_HEADER);
    if ((size_t)hlen > size - fixed || !(hdr = nf_rbuf_bytes(&r, hlen)) || nf_rbuf_u64(&r, &np))
        FAIL(NF_EFORMAT, "%s: truncated model file (header of %u bytes, file of %zu)", path, (unsigned)hlen, size);
    const size_t left = nf_rbuf_left(&r);   /* parameters and the CRC */
    if (np > (left - 4) / 4) FAIL(NF_EFORMAT, "%s: truncated model file (%llu parameters announced, file of %zu bytes)",
                                  path, (unsigned long long)np, size);
    if ((size_t)np * 4 + 4 != left) FAIL(NF_EFORMAT, "%s: %zu trailing bytes after the parameters", path,
                                         left - ((size_t)np * 4 + 4));
    if (nf_crc32(0, buf, size - 4) != nf_le_u32(buf + size - 4))
        FAIL(NF_EFORMAT, "%s: checksum mismatch (the file is corrupted)", path);

    /* header */
    p.s = (const char *)hdr;
    p.n = hlen;
    p.cap = 256 + (int)hlen / 2;
    p.nodes = malloc((size_t)p.cap * sizeof *p.nodes);
    p.strs = malloc((size_t)hlen + 1);
    if (!p.nodes || !p.strs) FAIL(NF_ENOMEM, "%s: out of memory", path);
    int root = jvalue(&p, 0);
    if (root >= 0) { jskip(&p); if (p.pos != p.n) p.fail = "trailing characters"; }
    if (root < 0 || p.fail) FAIL(NF_EFORMAT, "%s: header: malformed JSON at byte %zu (%s)", path, p.pos, p.fail ? p.fail : "?");
    const jnode *R = &p.nodes[root];
    const jnode *fmt = jget(&p, R, "format");
    if (!fmt || fmt->type != J_STR || strcmp(fmt->str, "nasflat-model") != 0)
        FAIL(NF_EFORMAT, "%s: header: not a nasflat model (format field)", path);
    cfgread cr = {path, &p, jget(&p, R, "config"), err};
    if (!cr.cfg || cr.cfg->type != J_OBJ) FAIL(NF_EFORMAT, "%s: header: missing config object", path);
    nf_model_cfg cfg;
    if ((st = read_config(&cr, &cfg))) goto done;
    const jnode *devs = jget(&p, R, "devices");
    if (!devs || devs->type != J_ARR) FAIL(NF_EFORMAT, "%s: header: missing devices list", path);
    int nd = 0;
    for (int c = devs->first; c >= 0; c = p.nodes[c].next) {
        if (p.nodes[c].type != J_STR) FAIL(NF_EFORMAT, "%s: header: device %d is not a string", path, nd + 1);
        nd++;
    }
    const char **names = calloc((size_t)(nd ? nd : 1), sizeof *names);
    if (!names) FAIL(NF_ENOMEM, "%s: out of memory", path);
    nd = 0;
    for (int c = devs->first; c >= 0; c = p.nodes[c].next) names[nd++] = p.nodes[c].str;
    /* the size the header asks for is checked against the parameters stored before anything is allocated */
    nf_err e2;
    int64_t need = 0;
    if ((st = nf_model_count_params(&cfg, nd, &need, &e2))) { free(names); FAIL(NF_EFORMAT, "%s: header: %s", path, e2.msg); }
    if ((uint64_t)need != np) {
        free(names);
        FAIL(NF_EFORMAT, "%s: %llu parameters stored, the configuration needs %lld", path, (unsigned long long)np,
             (long long)need);
    }
    st = nf_model_new(&cfg, nd, names, 0, &m, &e2);
    free(names);
    if (st) FAIL(NF_EFORMAT, "%s: header: %s", path, e2.msg);
    const jnode *sl = jget(&p, R, "slices");
    if (!sl || sl->type != J_ARR) FAIL(NF_EFORMAT, "%s: header: missing slices list", path);
    int si = 0;
    for (int c = sl->first; c >= 0; c = p.nodes[c].next, si++) {
        const nf_pslice *ms = nf_model_slice(m, si);
        const jnode *e = &p.nodes[c];
        int a = e->type == J_ARR ? e->first : -1, b = a >= 0 ? p.nodes[a].next : -1, d = b >= 0 ? p.nodes[b].next : -1;
        if (!ms || a < 0 || b < 0 || d < 0 || p.nodes[a].type != J_STR || strcmp(p.nodes[a].str, ms->name) != 0
            || p.nodes[b].num != (double)ms->off || p.nodes[d].num != (double)ms->n)
            FAIL(NF_EFORMAT, "%s: header: parameter slice %d does not match this library's layout", path, si + 1);
    }
    if (si != nf_model_nslices(m)) FAIL(NF_EFORMAT, "%s: header: %d parameter slices, the layout has %d", path, si, nf_model_nslices(m));
    const jnode *meta = jget(&p, R, "meta");
    if (meta && meta->type == J_OBJ)
        for (int c = meta->first; c >= 0; c = p.nodes[c].next)
            if ((st = nf_model_set_meta(m, p.nodes[c].key, p.nodes[c].type == J_NUM ? p.nodes[c].num : NAN, &e2)))
                FAIL(NF_EFORMAT, "%s: header: %s", path, e2.msg);
    if (nf_rbuf_f32s(&r, nf_model_params(m), (size_t)np)) FAIL(NF_EFORMAT, "%s: truncated parameters", path);
    for (uint64_t k = 0; k < np; k++)
        if (!isfinite(nf_model_params(m)[k])) FAIL(NF_EFORMAT, "%s: parameter %llu is not finite", path, (unsigned long long)k + 1);
    st = NF_OK;
#undef FAIL
done:
    free(p.nodes);
    free(p.strs);
    free(buf);
    if (st) nf_model_free(m);
    else *out = m;
    return st;
}
