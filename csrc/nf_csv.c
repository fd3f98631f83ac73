/* nf_csv.c — an RFC 4180 CSV reader over a file held in memory, and number parsing.
 * See nf_data.h for the accepted syntax. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "nf_data.h"

/* ------------------------------------------------------------- file input */

static nf_status start(nf_csv *r, const char *path, char *buf, size_t n)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->buf = buf;
    r->n = n;
    buf[n] = '\0';
    if (n >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        r->pos = 3;   /* UTF-8 byte-order mark */
    r->row_off = r->pos;
    r->row_line = 1;
    r->next_line = 1;
    return NF_OK;
}

/* What kind of non-regular file st_mode is, for the refusal message. */
static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a pipe (FIFO)";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

nf_status nf_csv_open(nf_csv *r, const char *path, nf_err *err)
{
    if (!r || !path) return nf_seterr(err, NF_EINVAL, "nf_csv_open: NULL argument");
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below); no effect on regular files */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return nf_seterr(err, NF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return nf_seterr(err, NF_EIO, "%s: cannot read: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) { close(fd); return nf_seterr(err, NF_EIO, "%s: cannot read: %s", path, strerror(EISDIR)); }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return nf_seterr(err, NF_EIO, "%s: cannot read: %s, not a regular file (CSV files are read only from "
                         "regular files)", path, file_kind(sb.st_mode));
    }
    if (sb.st_size < 0 || (uintmax_t)sb.st_size > NF_CSV_MAX_FILE_BYTES) {
        close(fd);
        return nf_seterr(err, NF_EFORMAT, "%s: file too large (%jd bytes; the limit is %lld bytes, "
                         "NF_CSV_MAX_FILE_BYTES)", path, (intmax_t)sb.st_size, (long long)NF_CSV_MAX_FILE_BYTES);
    }
    /* +1: a file that grew since fstat is seen growing (and refused past the limit) instead of cut */
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { close(fd); return nf_seterr(err, NF_ENOMEM, "%s: out of memory reading the file", path); }
    for (;;) {
        if (n == cap) {
            if (cap > NF_CSV_MAX_FILE_BYTES) {
                free(buf);
                close(fd);
                return nf_seterr(err, NF_EFORMAT, "%s: file too large (more than %lld bytes, NF_CSV_MAX_FILE_BYTES)",
                                 path, (long long)NF_CSV_MAX_FILE_BYTES);
            }
            size_t ncap = cap < NF_CSV_MAX_FILE_BYTES / 2 ? 2 * cap : NF_CSV_MAX_FILE_BYTES + 1;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) { free(buf); close(fd); return nf_seterr(err, NF_ENOMEM, "%s: out of memory reading the file", path); }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return nf_seterr(err, NF_EIO, "%s: cannot read: %s", path, strerror(e));
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    close(fd);
    return start(r, path, buf, n);
}

nf_status nf_csv_open_text(nf_csv *r, const char *path, const char *text, size_t len, nf_err *err)
{
    if (!r || !path || (!text && len)) return nf_seterr(err, NF_EINVAL, "nf_csv_open_text: NULL argument");
    if (len > NF_CSV_MAX_FILE_BYTES)
        return nf_seterr(err, NF_EFORMAT, "%s: text too large (%zu bytes; the limit is %lld bytes, NF_CSV_MAX_FILE_BYTES)",
                         path, len, (long long)NF_CSV_MAX_FILE_BYTES);
    char *buf = malloc(len + 1);
    if (!buf) return nf_seterr(err, NF_ENOMEM, "%s: out of memory", path);
    if (len) memcpy(buf, text, len);
    return start(r, path, buf, len);
}

void nf_csv_close(nf_csv *r)
{
    if (!r) return;
    free(r->buf);
    r->buf = NULL;
    r->n = r->pos = 0;
}

/* ------------------------------------------------------------------ rows */

void nf_csv_where(const nf_csv *r, size_t off, int64_t *line, int64_t *col)
{
    int64_t ln = r->row_line;
    size_t bol = r->row_off;   /* rows start at the beginning of a line */
    if (off > r->n) off = r->n;
    for (size_t i = r->row_off; i < off; i++)
        if (r->buf[i] == '\n') { ln++; bol = i + 1; }
    if (line) *line = ln;
    if (col) *col = (int64_t)(off - bol) + 1;
}

nf_status nf_csv_error(const nf_csv *r, size_t off, nf_err *err, nf_status code, const char *fmt, ...)
{
    if (!err) return code;
    int64_t line, col;
    nf_csv_where(r, off, &line, &col);
    int k = snprintf(err->msg, sizeof err->msg, "%s:%lld:%lld: ", r->path, (long long)line, (long long)col);
    if (k < 0) k = 0;
    if ((size_t)k < sizeof err->msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg + k, sizeof err->msg - (size_t)k, fmt, ap);
        va_end(ap);
    }
    err->code = code;
    return code;
}

static int is_line_end(const char *b, size_t n, size_t i)
{
    return i >= n || b[i] == '\n' || (b[i] == '\r' && (i + 1 >= n || b[i + 1] == '\n'));
}

/* A NUL byte at offset off, in field k (0-based) of the current row: C strings would cut the field there. */
static nf_status nul_error(const nf_csv *r, size_t off, int k, nf_err *err)
{
    return nf_csv_error(r, off, err, NF_EFORMAT, "NUL byte in field %d (CSV text must not contain NUL bytes; "
                        "is the file binary or UTF-16?)", k + 1);
}

nf_status nf_csv_row(nf_csv *r, nf_csv_field *f, int max, int *nfields, nf_err *err)
{
    const char *b = r->buf;
    size_t n = r->n, i = r->pos;
    r->row_off = i;
    r->row_line = r->next_line;
    *nfields = 0;
    if (i >= n) return NF_OK;
    if (b[i] == '\n' || b[i] == '\r') {   /* blank line: at the end of the file it is no row */
        size_t j = i;
        while (j < n && (b[j] == '\n' || b[j] == '\r')) j++;
        if (j == n) { r->pos = n; return NF_OK; }
    }
    int k = 0;
    int64_t extra_lines = 0;
    for (;;) {
        nf_csv_field fld;
        fld.off = i;
        fld.escapes = 0;
        if (i < n && b[i] == '"') {
            size_t j = i + 1;
            for (;;) {
                const char *q = memchr(b + j, '"', n - j);
                if (!q) {
                    r->pos = i;
                    return nf_csv_error(r, i, err, NF_EFORMAT, "unterminated quoted field");
                }
                size_t qi = (size_t)(q - b);
                if (qi + 1 < n && b[qi + 1] == '"') { fld.escapes = 1; j = qi + 2; continue; }
                j = qi;
                break;
            }
            const char *z = memchr(b + i + 1, '\0', j - (i + 1));
            if (z) { r->pos = i; return nul_error(r, (size_t)(z - b), k, err); }
            for (size_t t = i + 1; t < j; t++) extra_lines += b[t] == '\n';
            fld.quoted = 1;
            fld.p = b + i + 1;
            fld.len = j - (i + 1);
            i = j + 1;
            if (i < n && b[i] != ',' && !is_line_end(b, n, i)) {
                unsigned char c = (unsigned char)b[i];
                r->pos = i;
                if (c >= 0x20 && c < 0x7f)
                    return nf_csv_error(r, i, err, NF_EFORMAT, "unexpected character '%c' after a closing quote", c);
                return nf_csv_error(r, i, err, NF_EFORMAT, "unexpected byte 0x%02x after a closing quote", c);
            }
        } else {
            size_t j = i;
            for (;;) {
                char c = b[j];   /* b[n] == '\0' stops the scan */
                if (c == ',' || c == '\n' || c == '\r' || c == '\0') {
                    if (j >= n || c == ',' || c == '\n') break;
                    if (c == '\0') { r->pos = i; return nul_error(r, j, k, err); }
                    if (c == '\r' && is_line_end(b, n, j)) break;
                }
                j++;
            }
            fld.quoted = 0;
            fld.p = b + i;
            fld.len = j - i;
            i = j;
        }
        fld.end = i;
        if (i - r->row_off > NF_CSV_MAX_ROW_BYTES) {
            r->pos = i;
            return nf_csv_error(r, r->row_off, err, NF_EFORMAT, "row longer than %d bytes (NF_CSV_MAX_ROW_BYTES)",
                                NF_CSV_MAX_ROW_BYTES);
        }
        if (k < max) f[k] = fld;
        if (k == INT_MAX) { r->pos = i; return nf_csv_error(r, fld.off, err, NF_EFORMAT, "too many fields on one row"); }
        k++;
        if (i < n && b[i] == ',') { i++; continue; }
        if (i < n && b[i] == '\r') i++;
        if (i < n && b[i] == '\n') { i++; extra_lines++; }
        break;
    }
    r->pos = i;
    r->next_line += extra_lines;
    *nfields = k;
    return NF_OK;
}

size_t nf_csv_copy(const nf_csv_field *f, char *dst, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < f->len; i++) {
        char c = f->p[i];
        if (f->escapes && c == '"') i++;   /* "" stands for one quote */
        if (dst && len + 1 < cap) dst[len] = c;
        len++;
    }
    if (dst && cap) dst[len < cap ? len : cap - 1] = '\0';
    return len;
}

/* ---------------------------------------------------------------- numbers */

static const double p10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int word_ci(const char *s, size_t len, const char *w)
{
    size_t n = strlen(w);
    if (len != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != w[i]) return 0;
    }
    return 1;
}

/* strtod on a copy in which '.' is the current locale's decimal point (as Lua itself does). */
static int slow_strtod(const char *s, size_t len, double *out)
{
    char tmp[400];
    if (len > 300) return 0;
    const char *dp = localeconv()->decimal_point;
    size_t dpl = dp && dp[0] ? strlen(dp) : 1;
    if (dpl > 8) return 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && dp && dp[0]) { memcpy(tmp + k, dp, dpl); k += dpl; }
        else tmp[k++] = s[i];
    }
    tmp[k] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + k) return 0;
    *out = v;
    return 1;
}

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 u128;

static int bitlen128(u128 x)
{
    uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
    return hi ? 128 - __builtin_clzll(hi) : lo ? 64 - __builtin_clzll(lo) : 0;
}

/* q * 2^e2 rounded to the nearest double (ties to even); sticky: the true value is a bit above q. */
static double round128(u128 q, int sticky, int e2)
{
    int shift = bitlen128(q) - 53;
    uint64_t mant;
    if (shift > 0) {
        u128 rest = q & (((u128)1 << shift) - 1), half = (u128)1 << (shift - 1);
        mant = (uint64_t)(q >> shift);
        if (rest > half || (rest == half && (sticky || (mant & 1)))) mant++;
        if (mant == ((uint64_t)1 << 53)) { mant >>= 1; shift++; }
    } else {
        mant = (uint64_t)q;   /* fits exactly; sticky cannot arise here (q has > 53 bits when dividing) */
        shift = 0;
    }
    return ldexp((double)mant, shift + e2);
}

/* m * 10^e10 correctly rounded, for m < 2^64 and |e10| <= 27 (5^27 < 2^63): exact integer
 * arithmetic on 128 bits — a product, or a quotient with enough bits plus a sticky remainder. */
static double exact128(uint64_t m, int e10)
{
    uint64_t p5 = 1;
    for (int i = 0; i < (e10 < 0 ? -e10 : e10); i++) p5 *= 5;
    if (e10 >= 0) return round128((u128)m * p5, 0, e10);
    int s = 127 - bitlen128(m);                 /* m << s < 2^127: the quotient keeps >= 63 bits */
    u128 num = (u128)m << s;
    u128 q = num / p5;
    return round128(q, num % p5 != 0, -s + e10);
}
#endif

int nf_parse_double(const char *s, size_t len, double *out)
{
    size_t i = 0;
    int neg = 0;
    if (len == 0) return 0;
    if (s[0] == '+' || s[0] == '-') { neg = s[0] == '-'; i = 1; }
    if (i < len && !(s[i] >= '0' && s[i] <= '9') && s[i] != '.') {
        const char *w = s + i;
        size_t wl = len - i;
        if (word_ci(w, wl, "nan")) { *out = neg ? -NAN : NAN; return 1; }
        if (word_ci(w, wl, "inf") || word_ci(w, wl, "infinity")) { *out = neg ? -INFINITY : INFINITY; return 1; }
        return 0;
    }
    uint64_t m = 0;
    int nd = 0, any = 0, inexact = 0;
    long exp10 = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        int d = s[i] - '0';
        any = 1;
        if (m == 0 && d == 0) continue;
        if (nd < 19) { m = m * 10 + (uint64_t)d; nd++; }
        else { inexact = 1; exp10++; }
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            int d = s[i] - '0';
            any = 1;
            if (m == 0 && d == 0) { exp10--; continue; }
            if (nd < 19) { m = m * 10 + (uint64_t)d; nd++; exp10--; }
            else inexact = 1;
        }
    }
    if (!any) return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < len && (s[i] == '+' || s[i] == '-')) { eneg = s[i] == '-'; i++; }
        if (i >= len || !(s[i] >= '0' && s[i] <= '9')) return 0;
        long e = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 100000) e = e * 10 + (s[i] - '0');
        exp10 += eneg ? -e : e;
    }
    if (i != len) return 0;
    if (m == 0) { *out = neg ? -0.0 : 0.0; return 1; }
#if FLT_EVAL_METHOD == 0
    /* Clinger's fast path: an exact mantissa times an exact power of ten, rounded once. */
    if (!inexact && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 >= 0 ? v * p10[exp10] : v / p10[-exp10];
        *out = neg ? -v : v;
        return 1;
    }
#else
    (void)p10;
#endif
#ifdef __SIZEOF_INT128__
    if (!inexact && exp10 >= -27 && exp10 <= 27) {
        *out = neg ? -exact128(m, (int)exp10) : exact128(m, (int)exp10);
        return 1;
    }
#else
    (void)inexact;
#endif
    return slow_strtod(s, len, out);
}

int nf_parse_index(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 19) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}
