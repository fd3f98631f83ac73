/* fuzz_arch.c — libFuzzer harness for the arch-string parsers of both spaces (csrc/nf_space.c,
 * csrc/nf_nb201.c, csrc/nf_fbnet.c). The input is parsed as an NB201 and as an FBNet string:
 * a success must format and parse back to the same code (and agree with the NUL-terminated API);
 * a failure must leave the code untouched and give a message of printable ASCII only (the bytes
 * it quotes are escaped). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "nf_space.h"

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(nf_space_id s, const char *str, size_t len)
{
    uint8_t code[NF_SPACE_MAX_CODE], again[NF_SPACE_MAX_CODE];
    int L = nf_space_code_len(s);
    nf_err e;
    memset(code, 0xee, sizeof code);
    nf_status st = nf_space_parse_n(s, str, len, code, &e);
    if (st != NF_OK) {
        REQUIRE(st == NF_EFORMAT);
        for (int i = 0; i < NF_SPACE_MAX_CODE; i++) REQUIRE(code[i] == 0xee);
        size_t m = strnlen(e.msg, sizeof e.msg);
        REQUIRE(m < sizeof e.msg && m > 0);
        for (size_t i = 0; i < m; i++) REQUIRE((unsigned char)e.msg[i] >= 0x20 && (unsigned char)e.msg[i] < 0x7f);
    } else {
        REQUIRE(nf_space_check(s, code, NULL) == NF_OK);
        char buf[NF_SPACE_MAX_STRING];
        int n = nf_space_format(s, code, buf, sizeof buf);
        REQUIRE(n > 0 && (size_t)n == strlen(buf));
        REQUIRE(nf_space_parse(s, buf, again, NULL) == NF_OK && memcmp(code, again, (size_t)L) == 0);
        if (s == NF_SPACE_NB201) {
            int64_t idx = nf_space_index(s, code);
            REQUIRE(idx >= 0 && idx < NF_NB201_SIZE);
        }
    }
    /* the NUL-terminated API agrees when the input has no NUL byte */
    if (!memchr(str, '\0', len)) {
        char *z = malloc(len + 1);
        if (!z) return;
        memcpy(z, str, len);
        z[len] = '\0';
        memset(again, 0xee, sizeof again);
        nf_status st2 = nf_space_parse(s, z, again, &e);
        REQUIRE(st2 == st && (st != NF_OK || memcmp(code, again, (size_t)L) == 0));
        free(z);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(NF_SPACE_NB201, (const char *)data, size);
    check(NF_SPACE_FBNET, (const char *)data, size);
    return 0;
}
