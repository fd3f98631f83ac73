/* nf_data.h — the data layer: latency tables, generic CSV tables, the data directory.
 *
 * Files are CSV (RFC 4180): comma separated, one header line, optional double quotes
 * ("" inside quotes is a quote; quoted fields may hold commas and newlines), LF or CRLF
 * line endings, the last line may lack its newline, a UTF-8 byte-order mark is skipped,
 * blank lines at the end of the file are ignored (anywhere else they are errors).
 * An empty cell means "not measured" / "no value": NAN in numeric arrays, never 0.
 *
 * Every loader reads the whole file once and parses it in memory; the loaded object is
 * one allocation (freed by one call). On failure the output is untouched, nothing is
 * half-loaded, and err names the file, line and column:
 *     "<path>:<line>:<col>: <what>"      (col = byte column of the field's first character)
 *     "<path>: cannot open: <reason>"    (file-level problems)
 * Numbers: [+-]digits[.digits][(e|E)[+-]digits] (".5" and "5." too), or nan/inf/infinity
 * (any case, optional sign); no surrounding spaces. The result is correctly rounded and does
 * not depend on the C locale.
 *
 * Limits (untrusted files must not exhaust memory or time; each is far above the real data,
 * whose largest file is 9.7 MB with 42 columns and rows under 1 KB). Every one is checked before
 * the memory it bounds is allocated, and its error names the file and the limit:
 *  - only regular files are read: a directory, device (/dev/zero), FIFO or socket is refused
 *    ("<path>: cannot read: a character device, not a regular file ...");
 *  - NF_CSV_MAX_FILE_BYTES (256 MiB) per file (checked with fstat before reading, and again while
 *    reading a file that grows);
 *  - NF_CSV_MAX_ROW_BYTES (1 MiB) per row, header included (a quoted newline does not end a row);
 *  - NF_LATENCY_MAX_DEVICES (1024) device columns in a latency file (a device × device table,
 *    as `nasflat data` builds, stays under 1024² cells), NF_TABLE_MAX_COLUMNS (4096) in a table;
 *  - rows: bounded by the file size; the parse buffers are at most 8 bytes per byte of the file.
 * A NUL byte anywhere in the CSV text is an error ("<path>:<line>:<col>: NUL byte in field <k>
 * ..."), never a silently shortened field. Duplicate names are found with a hash (linear time).
 */
#ifndef NF_DATA_H
#define NF_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "nf.h"

#define NF_CSV_MAX_FILE_BYTES (256LL * 1024 * 1024)
#define NF_CSV_MAX_ROW_BYTES (1024 * 1024)
#define NF_LATENCY_MAX_DEVICES 1024
#define NF_TABLE_MAX_COLUMNS 4096

/* ---------------------------------------------------------------- latency
 * Header: arch_index[,arch_string],<device>,<device>,...  (arch_string is optional; without
 * it every arch string is ""). Every other column is a device: non-empty, unique names.
 * Rows: arch_index a non-negative integer, unique; each device cell empty (not measured)
 * or a finite latency >= 0 in milliseconds that fits a float. Rows are sorted by arch_index
 * whatever their order in the file. At least one data row. */
typedef struct {
    int64_t n_archs; int n_devices;
    int64_t *arch_index;       /* per row, rows sorted by arch_index; in the real files row i has arch_index i */
    char **arch_strings;       /* per row */
    char **devices;            /* device names in file column order */
    float *ms;                 /* n_archs × n_devices row-major, milliseconds, NAN where not measured */
    float *norm;               /* same layout, per-device min-max over measured values → [0,1], NAN where missing;
                                  a device whose measured values are all equal gets 0 */
    float *dev_min, *dev_max;  /* per device, over measured values (NAN if none measured) */
    int64_t *n_measured;       /* per device */
    /* private */
    void *mem_;                /* the one allocation every array above points into */
    size_t bytes;              /* its size (for telling a garbage collector) */
    int dense_;                /* 1 when arch_index[i] == i for every row */
} nf_latency;

nf_status nf_latency_load(const char *path, nf_latency *out, nf_err *err);   /* out untouched on failure */
/* The same from a CSV held in memory (text: len bytes, copied; name stands for the path in messages). */
nf_status nf_latency_load_text(const char *name, const char *text, size_t len, nf_latency *out, nf_err *err);
/* Build a latency table from arrays (all copied), e.g. a synthetic or imported data set: ms is
 * n_archs × n_devices row-major, NAN = not measured, else finite >= 0. arch_index NULL means
 * 0..n_archs-1 (else non-negative, unique; rows get sorted by it); arch_strings NULL (or a NULL
 * entry) means "". Device names non-empty and unique. norm, dev_min, dev_max, n_measured are
 * computed as for a file. Bad input is NF_EINVAL naming the row/device (0-based). Freed by
 * nf_latency_free; out untouched on failure. */
nf_status nf_latency_from_arrays(int64_t n_archs, int n_devices, const int64_t *arch_index,
                                 const char *const *arch_strings, const char *const *devices,
                                 const float *ms, nf_latency *out, nf_err *err);
void nf_latency_free(nf_latency *lat);                                       /* idempotent; zeroes *lat */
int nf_latency_device(const nf_latency *lat, const char *name);              /* -1 if unknown */
int64_t nf_latency_row(const nf_latency *lat, int64_t arch_index);            /* -1 if absent; O(1) when dense */

/* ------------------------------------------------------------------ tables
 * A generic CSV table (archs, cost, accuracy, zero-cost proxies...). Each column is numeric
 * (double, NAN for an empty cell) or string. By default a column is numeric when every
 * non-empty cell parses as a number, else string; opts can force either. Rows stay in file
 * order. When the table has a key column (default: "arch_index" if the header has one) its
 * cells must be non-negative integers and rows can be looked up by arch index. */
typedef struct {
    const char *const *string_cols;  /* NULL-terminated column names kept as strings, or NULL */
    const char *const *number_cols;  /* NULL-terminated column names that must be numeric, or NULL */
    const char *key;                 /* key column: NULL = "arch_index" if present; "" = none;
                                        any other name must be in the header */
    int allow_duplicates;            /* 0: a repeated key value is an error (default) */
} nf_table_opts;

typedef struct {
    int64_t n_rows; int n_cols;
    char **names;          /* header, n_cols names */
    int *is_string;        /* per column: 1 string, 0 numeric */
    double **num;          /* per column: n_rows values (NAN = empty cell), NULL for string columns */
    char ***str;           /* per column: n_rows NUL-terminated strings, NULL for numeric columns */
    int key;               /* key column, -1 if none */
    int64_t *arch_index;   /* per row: the key column as integers (NULL if no key) */
    int64_t *order;        /* rows sorted by (arch_index, row) (NULL if no key) */
    /* private */
    void *mem_;
    size_t bytes;
} nf_table;

/* opts may be NULL (all defaults). */
nf_status nf_table_load(const char *path, const nf_table_opts *opts, nf_table *out, nf_err *err);
/* The same from a CSV held in memory (text: len bytes, copied; name stands for the path in messages). */
nf_status nf_table_load_text(const char *name, const char *text, size_t len, const nf_table_opts *opts, nf_table *out,
                             nf_err *err);
void nf_table_free(nf_table *t);                                  /* idempotent; zeroes *t */
int nf_table_column(const nf_table *t, const char *name);         /* -1 if unknown */
/* Rows whose key is arch_index: returns their count (0 if none or no key) and sets *rows to
 * them, ascending (a pointer into t->order). rows may be NULL. */
int64_t nf_table_rows(const nf_table *t, int64_t arch_index, const int64_t **rows);
int64_t nf_table_row(const nf_table *t, int64_t arch_index);      /* first such row, -1 if none */

/* --------------------------------------------------------- data directory
 * The first of: opt (an explicit directory, e.g. a command-line option), env (the value of
 * NASFLAT_DATA, passed by the caller so the core reads no environment), fallback (e.g.
 * "../shared/data"; used only if it is a directory). NULL or "" means "not given".
 * An explicit opt or env that is not a directory is an error, never skipped silently.
 * Writes the chosen path to out (cap bytes). The error lists what was tried. */
nf_status nf_data_dir(const char *opt, const char *env, const char *fallback,
                      char *out, size_t cap, nf_err *err);

/* -------------------------------------------------------------- low level
 * A CSV reader over a whole file held in memory, used by the loaders (and by tests). */
typedef struct {
    const char *p;      /* content (inside the quotes when quoted; may contain "" escapes) */
    size_t len;
    size_t off;         /* byte offset of the field's first character (its quote if quoted) */
    size_t end;         /* byte offset just after the field (after its closing quote) */
    int quoted;         /* 1: was quoted */
    int escapes;        /* 1: contains "" pairs that stand for one quote */
} nf_csv_field;

typedef struct {
    const char *path;
    char *buf;          /* the file, NUL-terminated */
    size_t n;           /* its length (without the NUL) */
    size_t pos;         /* next unread byte */
    size_t row_off;     /* offset of the current row's first byte */
    int64_t row_line;   /* 1-based line of the current row's first byte */
    int64_t next_line;  /* line at pos */
} nf_csv;

/* Read the whole file (skips a UTF-8 BOM); only a regular file of at most NF_CSV_MAX_FILE_BYTES. */
nf_status nf_csv_open(nf_csv *r, const char *path, nf_err *err);
/* Read a CSV held in memory (text is copied). path names it in messages. */
nf_status nf_csv_open_text(nf_csv *r, const char *path, const char *text, size_t len, nf_err *err);
void nf_csv_close(nf_csv *r);   /* idempotent */
/* Next row: stores up to max fields in f and the row's field count in *nfields; *nfields = 0
 * at the end of the file (trailing blank lines are skipped). A blank line inside the file is
 * one empty field. Fails on an unterminated quote, a character after a closing quote, a NUL byte
 * or a row longer than NF_CSV_MAX_ROW_BYTES. */
nf_status nf_csv_row(nf_csv *r, nf_csv_field *f, int max, int *nfields, nf_err *err);
/* Line and column (1-based) of byte offset off, which lies in the current row. */
void nf_csv_where(const nf_csv *r, size_t off, int64_t *line, int64_t *col);
/* Set err to "<path>:<line>:<col>: <message>" for offset off of the current row. */
nf_status nf_csv_error(const nf_csv *r, size_t off, nf_err *err, nf_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Copy field f to dst (cap bytes, NUL-terminated, "" unescaped); returns the unescaped length.
 * dst may be NULL to only measure. */
size_t nf_csv_copy(const nf_csv_field *f, char *dst, size_t cap);
/* Parse a number (the grammar above; at most 300 characters). Returns 1 and sets *out, or 0
 * if s is not a number. */
int nf_parse_double(const char *s, size_t len, double *out);
/* Parse a non-negative decimal integer (digits only, fits int64). Returns 1 or 0. */
int nf_parse_index(const char *s, size_t len, int64_t *out);

#endif
