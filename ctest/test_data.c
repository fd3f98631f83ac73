/* test_data.c — the CSV reader, number parsing, latency and table loaders on small inline files. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctest.h"
#include "nf.h"
#include "nf_data.h"

static char tmpdir[64];
static char tmppath[128];

/* Write text to a fresh temporary file; returns its path (valid until the next call). */
static const char *write_tmp(const char *text)
{
    strcpy(tmppath, "/tmp/nf_test_data_XXXXXX");
    int fd = mkstemp(tmppath);
    if (fd < 0) { perror("mkstemp"); exit(2); }
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) { perror("write"); exit(2); }
    close(fd);
    return tmppath;
}

/* The error message of loading text as a latency file, with the temp path replaced by "F". */
static const char *lat_error(const char *text)
{
    static char msg[600];
    const char *p = write_tmp(text);
    nf_latency L;
    nf_err e = {0};
    memset(&L, 0x5a, sizeof L);
    nf_latency snapshot = L;
    nf_status st = nf_latency_load(p, &L, &e);
    unlink(p);
    CHECK(st == NF_EFORMAT);
    CHECK(memcmp(&L, &snapshot, sizeof L) == 0);   /* out untouched on failure */
    size_t pl = strlen(p);
    if (strncmp(e.msg, p, pl) == 0) snprintf(msg, sizeof msg, "F%s", e.msg + pl);
    else snprintf(msg, sizeof msg, "%s", e.msg);
    return msg;
}

#define CHECK_MSG(got, want) do { const char *g_ = (got); CHECK(strcmp(g_, (want)) == 0); \
    if (strcmp(g_, (want))) fprintf(stderr, "  got:  %s\n  want: %s\n", g_, (want)); } while (0)

static void test_parse_double(void)
{
    double v;
    CHECK(nf_parse_double("1.5", 3, &v) && v == 1.5);
    CHECK(nf_parse_double("-2", 2, &v) && v == -2.0);
    CHECK(nf_parse_double("+.5", 3, &v) && v == 0.5);
    CHECK(nf_parse_double("5.", 2, &v) && v == 5.0);
    CHECK(nf_parse_double("1e3", 3, &v) && v == 1000.0);
    CHECK(nf_parse_double("3.401585767886344e+31", 21, &v) && v == 3.401585767886344e+31);
    CHECK(nf_parse_double("0.00018164233188144863", 22, &v) && v == 0.00018164233188144863);
    CHECK(nf_parse_double("-100000000.0", 12, &v) && v == -1e8);
    CHECK(nf_parse_double("0.000", 5, &v) && v == 0.0);
    CHECK(nf_parse_double("NaN", 3, &v) && isnan(v));
    CHECK(nf_parse_double("-inf", 4, &v) && isinf(v) && v < 0);
    CHECK(nf_parse_double("Infinity", 8, &v) && isinf(v) && v > 0);
    CHECK(nf_parse_double("1e400", 5, &v) && isinf(v));
    const char *bad[] = {"", "-", ".", "e5", "1e", "1e+", "1.2.3", " 1", "1 ", "0x10", "1,5", "nana", "1d", "--1", "in", NULL};
    for (int i = 0; bad[i]; i++) CHECK(!nf_parse_double(bad[i], strlen(bad[i]), &v));
    /* the length bounds the parse: "12" of "123" */
    CHECK(nf_parse_double("123", 2, &v) && v == 12.0);

    int64_t k;
    CHECK(nf_parse_index("0", 1, &k) && k == 0);
    CHECK(nf_parse_index("15624", 5, &k) && k == 15624);
    CHECK(nf_parse_index("9223372036854775807", 19, &k) && k == INT64_MAX);
    CHECK(!nf_parse_index("9223372036854775808", 19, &k));
    CHECK(!nf_parse_index("-1", 2, &k));
    CHECK(!nf_parse_index("1.0", 3, &k));
    CHECK(!nf_parse_index("", 0, &k));
}

/* Bit-exact agreement with strtod (C locale) on random decimals: up to 19 significant digits,
 * exponents across the fast, 128-bit and fallback paths. */
static void test_parse_double_random(void)
{
    nf_rng r;
    nf_rng_seed(&r, 20240601);
    char s[64];
    int mismatches = 0;
    for (int t = 0; t < 200000; t++) {
        int nd = 1 + (int)nf_rng_below(&r, 19);
        int point = (int)nf_rng_below(&r, (uint64_t)nd + 1);
        int k = 0;
        if (nf_rng_below(&r, 4) == 0) s[k++] = '-';
        for (int i = 0; i < nd; i++) {
            if (i == point && i > 0) s[k++] = '.';
            s[k++] = (char)('0' + nf_rng_below(&r, 10));
        }
        if (nf_rng_below(&r, 3) == 0) k += sprintf(s + k, "e%d", (int)nf_rng_below(&r, 81) - 40);
        s[k] = '\0';
        double got, want = strtod(s, NULL);
        if (!nf_parse_double(s, (size_t)k, &got) || memcmp(&got, &want, sizeof got) != 0) {
            if (mismatches++ < 5) fprintf(stderr, "  %s: got %.17g want %.17g\n", s, got, want);
        }
    }
    CHECK(mismatches == 0);
    /* near-halfway cases between doubles */
    const char *hard[] = {"9007199254740993", "9007199254740995", "0.1", "0.30000000000000004",
                          "2.2250738585072014e-308", "1.7976931348623157e308", "4.9406564584124654e-324",
                          "123456789012345678901234567890", "0.000000000000000000000000000001234567890123456789",
                          "8.589973e9", "1.00000000000000011102230246251565404236316680908203125", NULL};
    for (int i = 0; hard[i]; i++) {
        double got = 0, want = strtod(hard[i], NULL);
        CHECK(nf_parse_double(hard[i], strlen(hard[i]), &got) && memcmp(&got, &want, sizeof got) == 0);
    }
}

static void test_csv_reader(void)
{
    nf_csv r;
    nf_err e;
    const char *text = "\xEF\xBB\xBF" "a,\"b,\"\"c\"\"\",d\r\n\"multi\nline\",,\"\"\r\nx,y,z";
    CHECK(nf_csv_open_text(&r, "mem", text, strlen(text), &e) == NF_OK);
    nf_csv_field f[4];
    int k;
    char buf[32];
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_OK && k == 3);
    nf_csv_copy(&f[0], buf, sizeof buf);
    CHECK(strcmp(buf, "a") == 0);
    CHECK(nf_csv_copy(&f[1], buf, sizeof buf) == 5 && strcmp(buf, "b,\"c\"") == 0 && f[1].quoted && f[1].escapes);
    CHECK(f[2].len == 1 && f[2].p[0] == 'd');
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_OK && k == 3);
    CHECK(nf_csv_copy(&f[0], buf, sizeof buf) == 10 && strcmp(buf, "multi\nline") == 0);
    CHECK(f[1].len == 0 && !f[1].quoted && f[2].len == 0 && f[2].quoted);
    CHECK(r.row_line == 2);
    int64_t line, col;
    nf_csv_where(&r, f[1].off, &line, &col);
    CHECK(line == 3 && col == 7);
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_OK && k == 3 && r.row_line == 4);
    CHECK(f[2].len == 1 && f[2].p[0] == 'z');
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_OK && k == 0);
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_OK && k == 0);   /* stays at the end */
    nf_csv_close(&r);
    nf_csv_close(&r);   /* idempotent */

    /* only max fields are stored, all are counted */
    CHECK(nf_csv_open_text(&r, "mem", "1,2,3,4,5\n", 10, &e) == NF_OK);
    CHECK(nf_csv_row(&r, f, 2, &k, &e) == NF_OK && k == 5);
    nf_csv_close(&r);

    CHECK(nf_csv_open_text(&r, "mem", "a,b\n1,\"2\n3\n", 11, &e) == NF_OK);
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_OK);
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "mem:2:3: unterminated quoted field");
    nf_csv_close(&r);

    CHECK(nf_csv_open_text(&r, "mem", "\"a\"b,c\n", 7, &e) == NF_OK);
    CHECK(nf_csv_row(&r, f, 4, &k, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "mem:1:4: unexpected character 'b' after a closing quote");
    nf_csv_close(&r);

    CHECK(nf_csv_open(&r, "/nonexistent/nf.csv", &e) == NF_EIO);
    CHECK_MSG(e.msg, "/nonexistent/nf.csv: cannot open: No such file or directory");
}

static void test_latency_ok(void)
{
    /* unsorted rows, a missing cell, CRLF, quoted arch string, no final newline */
    const char *p = write_tmp("arch_index,arch_string,gpu,cpu\r\n"
                              "2,\"|a,b|\",3.0,\r\n"
                              "0,x,1.0,10\r\n"
                              "1,y,2.0,30");
    nf_latency L;
    nf_err e = {0};
    CHECK(nf_latency_load(p, &L, &e) == NF_OK);
    unlink(p);
    if (e.code) fprintf(stderr, "  %s\n", e.msg);
    CHECK(L.n_archs == 3 && L.n_devices == 2);
    CHECK(L.arch_index[0] == 0 && L.arch_index[1] == 1 && L.arch_index[2] == 2);
    CHECK(strcmp(L.arch_strings[0], "x") == 0 && strcmp(L.arch_strings[2], "|a,b|") == 0);
    CHECK(strcmp(L.devices[0], "gpu") == 0 && strcmp(L.devices[1], "cpu") == 0);
    CHECK(L.ms[0] == 1.0f && L.ms[1] == 10.0f && L.ms[3] == 30.0f && isnan(L.ms[5]));
    CHECK(L.norm[0] == 0.0f && L.norm[2] == 0.5f && L.norm[4] == 1.0f);
    CHECK(L.norm[1] == 0.0f && L.norm[3] == 1.0f && isnan(L.norm[5]));
    CHECK(L.dev_min[1] == 10.0f && L.dev_max[1] == 30.0f && L.n_measured[1] == 2 && L.n_measured[0] == 3);
    CHECK(nf_latency_device(&L, "cpu") == 1 && nf_latency_device(&L, "tpu") == -1);
    CHECK(nf_latency_row(&L, 2) == 2 && nf_latency_row(&L, 3) == -1 && nf_latency_row(&L, -1) == -1);
    nf_latency_free(&L);
    CHECK(L.ms == NULL && L.n_archs == 0);
    nf_latency_free(&L);   /* idempotent */

    /* no arch_string column, sparse arch indices, a constant device, a device never measured,
     * BOM, trailing blank lines */
    p = write_tmp("\xEF\xBB\xBF" "arch_index,a,b,c\n10,5,1,\n20,5,2,\n7,5,,\n\n\n");
    CHECK(nf_latency_load(p, &L, &e) == NF_OK);
    unlink(p);
    CHECK(L.n_archs == 3 && L.n_devices == 3 && strcmp(L.arch_strings[1], "") == 0);
    CHECK(L.arch_index[0] == 7 && L.arch_index[2] == 20);
    CHECK(nf_latency_row(&L, 10) == 1 && nf_latency_row(&L, 11) == -1 && nf_latency_row(&L, 1) == -1);
    CHECK(L.norm[0] == 0.0f && L.norm[3] == 0.0f && L.dev_min[0] == 5.0f && L.dev_max[0] == 5.0f);
    CHECK(L.n_measured[2] == 0 && isnan(L.dev_min[2]) && isnan(L.dev_max[2]) && isnan(L.norm[2]));
    CHECK(isnan(L.ms[1]) && L.ms[4] == 1.0f);
    nf_latency_free(&L);
}

static void test_latency_errors(void)
{
    CHECK_MSG(lat_error(""), "F:1:1: empty file (expected a header line)");
    CHECK_MSG(lat_error("\n\n"), "F:1:1: empty file (expected a header line)");
    CHECK_MSG(lat_error("0,x,1.5\n"), "F:1:1: header must start with arch_index, found '0' (is the header line missing?)");
    CHECK_MSG(lat_error("arch_string,gpu\nx,1\n"), "F:1:1: header must start with arch_index, found 'arch_string'");
    CHECK_MSG(lat_error("arch_index,arch_string\n0,x\n"), "F:1:23: header names no device columns after arch_index,arch_string");
    CHECK_MSG(lat_error("arch_index,arch_string,gpu,cpu,gpu\n0,x,1,2,3\n"),
              "F:1:32: duplicate device 'gpu' (column 5, first in column 3)");
    CHECK_MSG(lat_error("arch_index,gpu,,cpu\n0,1,2,3\n"), "F:1:16: empty device name (column 3)");
    CHECK_MSG(lat_error("arch_index,gpu\n"), "F:2:1: no data rows after the header");
    CHECK_MSG(lat_error("arch_index,arch_string,gpu\n0,x,1\n1,y,2,3\n"),
              "F:3:7: expected 3 fields as in the header, found 4");
    CHECK_MSG(lat_error("arch_index,arch_string,gpu\n0,x,1\n1,y\n"),
              "F:3:4: expected 3 fields as in the header, found 2");
    CHECK_MSG(lat_error("arch_index,gpu\n0,1\n\n1,2\n"), "F:3:1: blank line (expected 2 fields as in the header)");
    CHECK_MSG(lat_error("arch_index,gpu,cpu\n0,1,2\n1,2,1.2.3\n"), "F:3:5: device 'cpu' (column 3): not a number: '1.2.3'");
    CHECK_MSG(lat_error("arch_index,gpu\n0,-1\n"),
              "F:2:3: device 'gpu' (column 2): latency must be finite and >= 0, found '-1' "
              "(leave the cell empty if it was not measured)");
    CHECK_MSG(lat_error("arch_index,gpu\n0,nan\n"),
              "F:2:3: device 'gpu' (column 2): latency must be finite and >= 0, found 'nan' "
              "(leave the cell empty if it was not measured)");
    CHECK_MSG(lat_error("arch_index,gpu\n0,1e39\n"), "F:2:3: device 'gpu' (column 2): latency '1e39' does not fit a float");
    CHECK_MSG(lat_error("arch_index,gpu\n0,1\nx1,2\n"), "F:3:1: arch_index must be a non-negative integer, found 'x1'");
    CHECK_MSG(lat_error("arch_index,gpu\n0,1\n1,2\n0,3\n"), "F:4:1: duplicate arch_index 0 (first on line 2)");
    CHECK_MSG(lat_error("arch_index,gpu\n5,1\n3,2\n4,1\n3,3\n5,4\n"), "F:5:1: duplicate arch_index 3 (first on line 3)");
    CHECK_MSG(lat_error("arch_index,arch_string,gpu\n0,\"x\n1,y,2\n"), "F:2:3: unterminated quoted field");
    /* the column counts bytes on the physical line after a quoted newline */
    CHECK_MSG(lat_error("arch_index,arch_string,gpu\n0,\"a\nb\",zz\n"), "F:3:4: device 'gpu' (column 3): not a number: 'zz'");
    /* long values are shortened in the message */
    CHECK_MSG(lat_error("arch_index,gpu\n0,1234567890123456789012345678901234567890123456789012345678901234567890x\n"),
              "F:2:3: device 'gpu' (column 2): not a number: "
              "'123456789012345678901234567890123456789012345678901234567...'");

    nf_latency L;
    nf_err e;
    CHECK(nf_latency_load("/nonexistent/lat.csv", &L, &e) == NF_EIO);
    CHECK_MSG(e.msg, "/nonexistent/lat.csv: cannot open: No such file or directory");
    CHECK(nf_latency_load(tmpdir, &L, &e) == NF_EIO);
    CHECK(strstr(e.msg, ": cannot read: Is a directory") != NULL);
    CHECK(nf_latency_load(NULL, &L, &e) == NF_EINVAL);
}

/* Write len bytes to a fresh temporary file; returns its path (valid until the next call). */
static const char *write_tmp_n(const char *text, size_t len)
{
    strcpy(tmppath, "/tmp/nf_test_data_XXXXXX");
    int fd = mkstemp(tmppath);
    if (fd < 0) { perror("mkstemp"); exit(2); }
    if (write(fd, text, len) != (ssize_t)len) { perror("write"); exit(2); }
    close(fd);
    return tmppath;
}

/* The error of loading path as a latency file (table = 0) or a table (1), path replaced by "F". */
static const char *load_error_at(const char *p, int table, nf_status want)
{
    static char msg[600];
    nf_err e = {0};
    nf_status st;
    if (table) {
        nf_table T;
        st = nf_table_load(p, NULL, &T, &e);
        if (st == NF_OK) nf_table_free(&T);
    } else {
        nf_latency L;
        st = nf_latency_load(p, &L, &e);
        if (st == NF_OK) nf_latency_free(&L);
    }
    CHECK(st == want);
    size_t pl = strlen(p);
    if (strncmp(e.msg, p, pl) == 0) snprintf(msg, sizeof msg, "F%s", e.msg + pl);
    else snprintf(msg, sizeof msg, "%s", e.msg);
    return msg;
}

/* The same for len bytes of text written to a temporary file. */
static const char *load_error_n(const char *text, size_t len, int table)
{
    const char *p = write_tmp_n(text, len);
    const char *msg = load_error_at(p, table, NF_EFORMAT);
    unlink(p);
    return msg;
}

/* A header "arch_index,arch_string,d0000,d0001,..." with n devices, then one row of empty cells. */
static char *wide_latency(int n, int dup_at, int dup_of)
{
    char *t = malloc(64 + (size_t)n * 8);
    if (!t) exit(2);
    int k = sprintf(t, "arch_index,arch_string");
    for (int i = 0; i < n; i++) k += sprintf(t + k, ",d%04d", i == dup_at ? dup_of : i);
    k += sprintf(t + k, "\n0,x");
    for (int i = 0; i < n; i++) t[k++] = ',';
    strcpy(t + k, "\n");
    return t;
}

/* Issue 15 item 7: limits checked before allocating; non-regular files refused. Item 9: NUL bytes refused. */
static void test_limits_and_nul(void)
{
    /* non-regular files: /dev/zero was read until memory ran out, a FIFO blocked in fopen */
    CHECK_MSG(load_error_at("/dev/zero", 0, NF_EIO),
              "F: cannot read: a character device, not a regular file (CSV files are read only from regular files)");
    CHECK_MSG(load_error_at("/dev/zero", 1, NF_EIO),
              "F: cannot read: a character device, not a regular file (CSV files are read only from regular files)");
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_MSG(load_error_at(fifo, 0, NF_EIO),
              "F: cannot read: a pipe (FIFO), not a regular file (CSV files are read only from regular files)");
    unlink(fifo);
    /* file size, from fstat before reading (a sparse file: no disk used) */
    const char *p = write_tmp_n("arch_index,gpu\n0,1\n", 19);
    CHECK(truncate(p, NF_CSV_MAX_FILE_BYTES + 1) == 0);
    CHECK_MSG(load_error_at(p, 0, NF_EFORMAT), "F: file too large (268435457 bytes; the limit is 268435456 bytes, "
              "NF_CSV_MAX_FILE_BYTES)");
    CHECK_MSG(load_error_at(p, 1, NF_EFORMAT), "F: file too large (268435457 bytes; the limit is 268435456 bytes, "
              "NF_CSV_MAX_FILE_BYTES)");
    unlink(p);
    /* row length (header and data rows) */
    size_t big = NF_CSV_MAX_ROW_BYTES + 16;
    char *t = malloc(big + 64);
    if (!t) exit(2);
    strcpy(t, "arch_index,");
    memset(t + 11, 'a', big);
    strcpy(t + 11 + big, "\n0,1\n");
    CHECK_MSG(load_error_n(t, strlen(t), 0), "F:1:1: row longer than 1048576 bytes (NF_CSV_MAX_ROW_BYTES)");
    CHECK_MSG(load_error_n(t, strlen(t), 1), "F:1:1: row longer than 1048576 bytes (NF_CSV_MAX_ROW_BYTES)");
    strcpy(t, "arch_index,arch_string,gpu\n0,x,1\n1,\"");   /* a quoted newline does not end a row */
    memset(t + 36, '\n', big);
    strcpy(t + 36 + big, "\",2\n");
    CHECK_MSG(load_error_n(t, strlen(t), 0), "F:3:1: row longer than 1048576 bytes (NF_CSV_MAX_ROW_BYTES)");
    free(t);
    /* device columns: 1024 load, 1025 are refused at the first one over the limit */
    nf_latency L;
    nf_err e;
    t = wide_latency(NF_LATENCY_MAX_DEVICES, -1, 0);
    CHECK(nf_latency_load_text("mem", t, strlen(t), &L, &e) == NF_OK && L.n_devices == 1024 && L.n_archs == 1);
    nf_latency_free(&L);
    free(t);
    t = wide_latency(NF_LATENCY_MAX_DEVICES + 1, -1, 0);
    CHECK_MSG(load_error_n(t, strlen(t), 0), "F:1:6168: 1025 device columns, more than the 1024 allowed "
              "(NF_LATENCY_MAX_DEVICES)");
    free(t);
    t = wide_latency(NF_LATENCY_MAX_DEVICES, 1000, 3);   /* duplicates are still found (by a hash now) */
    CHECK_MSG(load_error_n(t, strlen(t), 0), "F:1:6024: duplicate device 'd0003' (column 1003, first in column 6)");
    free(t);
    /* table columns: 4096 load, 4097 are refused */
    t = malloc(16 + 8 * (size_t)(NF_TABLE_MAX_COLUMNS + 1));
    if (!t) exit(2);
    for (int n = NF_TABLE_MAX_COLUMNS; n <= NF_TABLE_MAX_COLUMNS + 1; n++) {
        int k = 0;
        for (int i = 0; i < n; i++) k += sprintf(t + k, "%sc%04d", i ? "," : "", i);
        k += sprintf(t + k, "\n");
        for (int i = 0; i < n; i++) t[k++] = i ? ',' : '1';
        strcpy(t + k, "\n");
        nf_table T;
        if (n == NF_TABLE_MAX_COLUMNS) {
            CHECK(nf_table_load_text("mem", t, strlen(t), NULL, &T, &e) == NF_OK && T.n_cols == 4096 && T.n_rows == 1);
            nf_table_free(&T);
        } else {
            CHECK_MSG(load_error_n(t, strlen(t), 1), "F:1:24577: 4097 columns, more than the 4096 allowed "
                      "(NF_TABLE_MAX_COLUMNS)");
        }
    }
    free(t);
    const char *devs[NF_LATENCY_MAX_DEVICES + 1];
    for (int d = 0; d <= NF_LATENCY_MAX_DEVICES; d++) devs[d] = "x";
    float ms[NF_LATENCY_MAX_DEVICES + 1] = {0};
    CHECK(nf_latency_from_arrays(1, NF_LATENCY_MAX_DEVICES + 1, NULL, NULL, devs, ms, &L, &e) == NF_EINVAL);
    CHECK_MSG(e.msg, "nf_latency_from_arrays: 1025 devices, more than the 1024 allowed (NF_LATENCY_MAX_DEVICES)");
    CHECK(nf_latency_from_arrays(1, 3, NULL, NULL, (const char *[]){"a", "b", "a"}, ms, &L, &e) == NF_EINVAL);
    CHECK_MSG(e.msg, "nf_latency_from_arrays: duplicate device 'a' (devices 0 and 2)");

    /* NUL bytes: a field was silently cut at them (an arch string or a name) */
    static const char nul_astr[] = "arch_index,arch_string,gpu\n0,ab\0c,1.5\n";
    CHECK_MSG(load_error_n(nul_astr, sizeof nul_astr - 1, 0),
              "F:2:5: NUL byte in field 2 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)");
    CHECK_MSG(load_error_n(nul_astr, sizeof nul_astr - 1, 1),
              "F:2:5: NUL byte in field 2 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)");
    static const char nul_name[] = "arch_index,gp\0u\n0,1\n";
    CHECK_MSG(load_error_n(nul_name, sizeof nul_name - 1, 0),
              "F:1:14: NUL byte in field 2 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)");
    static const char nul_quoted[] = "arch_index,arch_string,gpu\n0,x,1\n1,\"a\nb\0\",2\n";
    CHECK_MSG(load_error_n(nul_quoted, sizeof nul_quoted - 1, 0),
              "F:4:2: NUL byte in field 2 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)");
    static const char nul_num[] = "arch_index,gpu\n0,1.5\0\n";
    CHECK_MSG(load_error_n(nul_num, sizeof nul_num - 1, 0),
              "F:2:6: NUL byte in field 2 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)");
    static const char utf16[] = "a\0r\0c\0h\0";
    CHECK_MSG(load_error_n(utf16, sizeof utf16 - 1, 1),
              "F:1:2: NUL byte in field 1 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)");
    /* control bytes in a quoted name or cell are escaped in the message (a terminal would obey an ESC) */
    CHECK_MSG(lat_error("arch_index,g\x1b[31mpu\n0,x\n"), "F:2:3: device 'g\\x1b[31mpu' (column 2): not a number: 'x'");
    CHECK_MSG(lat_error("arch_index,gpu\n0,1\t2\\\x7f\n"), "F:2:3: device 'gpu' (column 2): not a number: '1\\x092\\\\\\x7f'");
    static const char dup_ctl[] = "a\r\x01,b,\"a\r\x01\"\n1,2,3\n";
    CHECK_MSG(load_error_n(dup_ctl, sizeof dup_ctl - 1, 1), "F:1:7: duplicate column 'a\\x0d\\x01' (column 3, first in column 1)");
    /* the in-memory loaders name the text as given */
    CHECK(nf_latency_load_text("mem.csv", nul_num, sizeof nul_num - 1, &L, &e) == NF_EFORMAT);
    CHECK_MSG(e.msg, "mem.csv:2:6: NUL byte in field 2 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)");
    CHECK(nf_latency_load_text("mem.csv", "arch_index,gpu\n3,1.5\n", 20, &L, &e) == NF_OK);
    CHECK(L.n_archs == 1 && L.arch_index[0] == 3 && L.ms[0] == 1.5f && strcmp(L.devices[0], "gpu") == 0);
    nf_latency_free(&L);
}

static void test_latency_from_arrays(void)
{
    const char *devs[] = {"gpu", "cpu"};
    const int64_t idx[] = {2, 0, 1};
    const char *strs[] = {"|a,b|", "x", NULL};
    const float ms[] = {3.0f, NAN, 1.0f, 10.0f, 2.0f, 30.0f};
    nf_latency L, F;
    nf_err e = {0};
    CHECK(nf_latency_from_arrays(3, 2, idx, strs, devs, ms, &L, &e) == NF_OK);
    /* the same table as a file gives the same object */
    const char *p = write_tmp("arch_index,arch_string,gpu,cpu\n2,\"|a,b|\",3,\n0,x,1,10\n1,,2,30\n");
    CHECK(nf_latency_load(p, &F, &e) == NF_OK);
    unlink(p);
    CHECK(L.n_archs == F.n_archs && L.n_devices == F.n_devices && L.bytes == F.bytes && L.dense_ == 1);
    for (int i = 0; i < 3; i++) {
        CHECK(L.arch_index[i] == F.arch_index[i] && strcmp(L.arch_strings[i], F.arch_strings[i]) == 0);
        for (int d = 0; d < 2; d++) {
            float a = L.ms[i * 2 + d], b = F.ms[i * 2 + d], na = L.norm[i * 2 + d], nb = F.norm[i * 2 + d];
            CHECK((isnan(a) && isnan(b)) || a == b);
            CHECK((isnan(na) && isnan(nb)) || na == nb);
        }
    }
    CHECK(L.dev_min[1] == 10.0f && L.dev_max[1] == 30.0f && L.n_measured[1] == 2 && L.n_measured[0] == 3);
    CHECK(strcmp(L.arch_strings[1], "") == 0 && strcmp(L.arch_strings[2], "|a,b|") == 0);
    nf_latency_free(&L);
    nf_latency_free(&F);

    /* NULL arch_index and strings: 0..n-1 and "" */
    CHECK(nf_latency_from_arrays(3, 2, NULL, NULL, devs, ms, &L, &e) == NF_OK);
    CHECK(L.arch_index[2] == 2 && nf_latency_row(&L, 1) == 1 && strcmp(L.arch_strings[0], "") == 0);
    CHECK(L.ms[0] == 3.0f && isnan(L.norm[1]));
    nf_latency_free(&L);

    memset(&L, 0x5a, sizeof L);
    nf_latency snapshot = L;
    const int64_t dup[] = {4, 1, 4};
    CHECK(nf_latency_from_arrays(3, 2, dup, NULL, devs, ms, &L, &e) == NF_EINVAL);
    CHECK_MSG(e.msg, "nf_latency_from_arrays: arch_index 4 appears at rows 0 and 2");
    const int64_t neg[] = {0, -1, 2};
    CHECK(nf_latency_from_arrays(3, 2, neg, NULL, devs, ms, &L, &e) == NF_EINVAL);
    CHECK_MSG(e.msg, "nf_latency_from_arrays: arch_index[1] = -1 is negative");
    const float bad[] = {1.0f, -2.0f};
    CHECK(nf_latency_from_arrays(1, 2, NULL, NULL, devs, bad, &L, &e) == NF_EINVAL);
    CHECK_MSG(e.msg, "nf_latency_from_arrays: ms[row 0, device 'cpu'] = -2 is not a latency (finite >= 0, or NAN for not measured)");
    const char *twice[] = {"gpu", "gpu"};
    CHECK(nf_latency_from_arrays(1, 2, NULL, NULL, twice, ms, &L, &e) == NF_EINVAL);
    CHECK_MSG(e.msg, "nf_latency_from_arrays: duplicate device 'gpu' (devices 0 and 1)");
    CHECK(nf_latency_from_arrays(0, 2, NULL, NULL, devs, ms, &L, &e) == NF_EINVAL);
    CHECK(memcmp(&L, &snapshot, sizeof L) == 0);
}

static void test_table(void)
{
    const char *p = write_tmp("arch_index,arch_string,key,score,ops\n"
                              "3,a,\"(1, 2)\",0.5,1-2\n"
                              "1,b,\"(3, \"\"x\"\")\",,2-2\n"
                              "3,c,\"(5, 6)\",-1e8,3-1\n");
    nf_table T;
    nf_err e = {0};
    CHECK(nf_table_load(p, NULL, &T, &e) == NF_EFORMAT);
    CHECK(strstr(e.msg, ":4:1: duplicate arch_index 3 (first on line 2)") != NULL);
    nf_table_opts o = {0};
    o.allow_duplicates = 1;
    CHECK(nf_table_load(p, &o, &T, &e) == NF_OK);
    CHECK(T.n_rows == 3 && T.n_cols == 5 && T.key == 0);
    CHECK(!T.is_string[0] && T.is_string[1] && T.is_string[2] && !T.is_string[3] && T.is_string[4]);
    CHECK(strcmp(T.str[2][1], "(3, \"x\")") == 0 && strcmp(T.str[4][2], "3-1") == 0);
    CHECK(T.num[3][0] == 0.5 && isnan(T.num[3][1]) && T.num[3][2] == -1e8);
    CHECK(nf_table_column(&T, "score") == 3 && nf_table_column(&T, "nope") == -1);
    const int64_t *rows;
    CHECK(nf_table_rows(&T, 3, &rows) == 2 && rows[0] == 0 && rows[1] == 2);
    CHECK(nf_table_row(&T, 1) == 1 && nf_table_row(&T, 2) == -1 && nf_table_rows(&T, 9, NULL) == 0);
    nf_table_free(&T);
    nf_table_free(&T);

    /* forced types, no key */
    static const char *const strs[] = {"score", NULL};
    static const char *const nums[] = {"ops", NULL};
    nf_table_opts o2 = {strs, NULL, "", 0};
    CHECK(nf_table_load(p, &o2, &T, &e) == NF_OK);
    CHECK(T.key == -1 && T.arch_index == NULL && T.is_string[3] && strcmp(T.str[3][1], "") == 0);
    CHECK(nf_table_row(&T, 3) == -1);
    nf_table_free(&T);
    nf_table_opts o3 = {NULL, nums, "", 0};
    CHECK(nf_table_load(p, &o3, &T, &e) == NF_EFORMAT);
    CHECK(strstr(e.msg, ":2:18: column 'ops' (column 5): not a number: '1-2'") != NULL);
    static const char *const missing[] = {"nope", NULL};
    nf_table_opts o4 = {missing, NULL, NULL, 1};
    CHECK(nf_table_load(p, &o4, &T, &e) == NF_EFORMAT);
    CHECK(strstr(e.msg, ": column 'nope' (a string column in the options) is not in the header") != NULL);
    nf_table_opts o5 = {NULL, NULL, "rank", 1};
    CHECK(nf_table_load(p, &o5, &T, &e) == NF_EFORMAT);
    CHECK(strstr(e.msg, ": key column 'rank' is not in the header") != NULL);
    unlink(p);

    /* a key column other than the first; header-only and duplicate-name errors */
    p = write_tmp("rank,arch_index\n0,11982\n1,431\n");
    CHECK(nf_table_load(p, NULL, &T, &e) == NF_OK);
    CHECK(T.key == 1 && nf_table_row(&T, 431) == 1 && T.num[0][1] == 1.0);
    nf_table_free(&T);
    unlink(p);
    p = write_tmp("a,b,a\n1,2,3\n");
    CHECK(nf_table_load(p, NULL, &T, &e) == NF_EFORMAT);
    CHECK(strstr(e.msg, ":1:5: duplicate column 'a' (column 3, first in column 1)") != NULL);
    unlink(p);
    p = write_tmp("arch_index,v\n0,1\n-1,2\n");
    CHECK(nf_table_load(p, NULL, &T, &e) == NF_EFORMAT);
    CHECK(strstr(e.msg, ":3:1: arch_index must be a non-negative integer, found '-1'") != NULL);
    unlink(p);
}

static void test_data_dir(void)
{
    char out[256];
    nf_err e;
    CHECK(nf_data_dir(tmpdir, "/nonexistent", "/nonexistent", out, sizeof out, &e) == NF_OK && strcmp(out, tmpdir) == 0);
    CHECK(nf_data_dir(NULL, tmpdir, "/nonexistent", out, sizeof out, &e) == NF_OK && strcmp(out, tmpdir) == 0);
    CHECK(nf_data_dir("", NULL, tmpdir, out, sizeof out, &e) == NF_OK && strcmp(out, tmpdir) == 0);
    CHECK(nf_data_dir("/nonexistent", tmpdir, tmpdir, out, sizeof out, &e) == NF_EIO);
    CHECK_MSG(e.msg, "data directory not found: option dir='/nonexistent' is not a directory");
    CHECK(nf_data_dir(NULL, "/nonexistent", tmpdir, out, sizeof out, &e) == NF_EIO);
    CHECK_MSG(e.msg, "data directory not found: option dir not given; NASFLAT_DATA='/nonexistent' is not a directory");
    CHECK(nf_data_dir(NULL, NULL, "/nonexistent", out, sizeof out, &e) == NF_EIO);
    CHECK_MSG(e.msg, "data directory not found: option dir not given; NASFLAT_DATA not set; '/nonexistent' is not a directory");
    CHECK(nf_data_dir(tmpdir, NULL, NULL, out, 4, &e) == NF_ERANGE);
}

int main(void)
{
    strcpy(tmpdir, "/tmp/nf_test_dir_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    RUN(test_parse_double);
    RUN(test_parse_double_random);
    RUN(test_csv_reader);
    RUN(test_latency_ok);
    RUN(test_latency_errors);
    RUN(test_latency_from_arrays);
    RUN(test_limits_and_nul);
    RUN(test_table);
    RUN(test_data_dir);
    rmdir(tmpdir);
    return CT_DONE();
}
