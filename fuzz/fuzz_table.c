/* fuzz_table.c — libFuzzer harness for the generic CSV table loader (csrc/nf_csv.c, csrc/nf_data.c).
 * The first byte picks the options (key column, duplicates, forced string / number columns); the
 * rest is the CSV file. The loader must return a status, leave out untouched on failure with a
 * message naming the input, and on success give a table with the invariants of nf_data.h. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "nf_data.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Messages quote the input with control bytes escaped: none may reach a terminal raw. */
static int printable(const char *msg)
{
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const strings[] = {"arch_string", NULL};
    static const char *const numbers[] = {"b", NULL};
    static const char *const keys[] = {NULL, "", "arch_index", "a"};
    nf_table_opts o;
    memset(&o, 0, sizeof o);
    if (size > 0) {
        uint8_t b = data[0];
        o.key = keys[b & 3];
        o.allow_duplicates = (b >> 2) & 1;
        o.string_cols = (b >> 3) & 1 ? strings : NULL;
        o.number_cols = (b >> 4) & 1 ? numbers : NULL;
        data++;
        size--;
    }
    nf_table T;
    nf_err e;
    memset(&T, 0x5a, sizeof T);
    nf_table snap = T;
    nf_status st = nf_table_load_text("fuzz.csv", (const char *)data, size, &o, &T, &e);
    if (st != NF_OK) {
        REQUIRE(st == NF_EFORMAT || st == NF_EINVAL || st == NF_ENOMEM);
        REQUIRE(memcmp(&T, &snap, sizeof T) == 0);
        REQUIRE(memchr(e.msg, '\0', sizeof e.msg) && printable(e.msg));
        REQUIRE(st == NF_EINVAL || strncmp(e.msg, "fuzz.csv", 8) == 0);   /* EINVAL: contradictory options */
        return 0;
    }
    REQUIRE(T.n_rows >= 1 && T.n_cols >= 1 && T.n_cols <= NF_TABLE_MAX_COLUMNS);
    for (int c = 0; c < T.n_cols; c++) {
        REQUIRE(T.names[c][0] && nf_table_column(&T, T.names[c]) == c);   /* non-empty, unique */
        REQUIRE(T.is_string[c] == (T.num[c] == NULL) && T.is_string[c] == (T.str[c] != NULL));
        for (int64_t i = 0; i < T.n_rows; i++) {
            if (T.is_string[c]) REQUIRE(strlen(T.str[c][i]) <= size);
            else { double v = T.num[c][i]; REQUIRE(v == v || isnan(v)); }
        }
    }
    if (T.key >= 0) {
        REQUIRE(!T.is_string[T.key]);
        for (int64_t i = 0; i < T.n_rows; i++) {
            REQUIRE(T.arch_index[i] >= 0 && (double)T.arch_index[i] == T.num[T.key][i]);
            int64_t a = T.arch_index[T.order[i]];
            if (i > 0) {
                int64_t pa = T.arch_index[T.order[i - 1]];
                REQUIRE(pa < a || (pa == a && T.order[i - 1] < T.order[i] && o.allow_duplicates));
            }
            const int64_t *rows;
            int64_t k = nf_table_rows(&T, T.arch_index[i], &rows);
            int found = 0;
            for (int64_t j = 0; j < k; j++) found |= rows[j] == i;
            REQUIRE(found && nf_table_row(&T, T.arch_index[i]) == rows[0]);
        }
    } else {
        REQUIRE(T.arch_index == NULL && nf_table_rows(&T, 0, NULL) == 0);
    }
    nf_table_free(&T);
    nf_table_free(&T);
    return 0;
}
