/* nf_rng.c — xoshiro256** with splitmix64 seeding: one explicit state object,
 * identical streams on every platform for one seed. */
#include <math.h>
#include <stdlib.h>
#include "nf.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nf_rng_seed(nf_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0;
}

uint64_t nf_rng_next(nf_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nf_rng_uniform(nf_rng *r) { return (double)(nf_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t nf_rng_below(nf_rng *r, uint64_t n)
{
    /* rejection on the top of the range: unbiased and platform independent */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = nf_rng_next(r); while (x >= limit);
    return x % n;
}

double nf_rng_normal(nf_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do u1 = nf_rng_uniform(r); while (u1 <= 0.0);
    u2 = nf_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

void nf_rng_shuffle(nf_rng *r, int64_t *x, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)nf_rng_below(r, (uint64_t)i + 1);
        int64_t t = x[i]; x[i] = x[j]; x[j] = t;
    }
}

void nf_rng_permutation(nf_rng *r, int64_t *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = i;
    nf_rng_shuffle(r, out, n);
}

nf_status nf_rng_sample(nf_rng *r, int64_t n, int64_t k, int64_t *out, int64_t *scratch, nf_err *err)
{
    if (n < 0 || k < 0 || k > n)
        return nf_seterr(err, NF_EINVAL, "sample: cannot draw %lld distinct values from %lld", (long long)k, (long long)n);
    int64_t *a = scratch ? scratch : malloc((size_t)(n ? n : 1) * sizeof *a);
    if (!a) return nf_seterr(err, NF_ENOMEM, "sample: out of memory");
    for (int64_t i = 0; i < n; i++) a[i] = i;
    /* partial Fisher–Yates from the front: out[i] is the i-th draw */
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)nf_rng_below(r, (uint64_t)(n - i));
        int64_t t = a[i]; a[i] = a[j]; a[j] = t;
        out[i] = a[i];
    }
    if (!scratch) free(a);
    return NF_OK;
}

uint64_t nf_rng_derive(uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
    splitmix64(&x);
    return splitmix64(&x);
}
