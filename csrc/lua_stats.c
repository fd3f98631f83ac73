/* lua_stats.c — nasflat.core.stats: k-means, cosine similarities, bucket selection, row gathering
 * and ridge regression kernels (nf_stats.c) for the Lua samplers and the ridge baseline.
 * Buffers handed to the core are Lua userdata, so an error raised here leaks nothing. */
#include <string.h>
#include "lua_nf.h"
#include "nf_stats.h"

static nf_tensor *check_matrix(lua_State *L, int idx, const char *fname, const char *what)
{
    nf_tensor *t = nf_lua_check_tensor(L, idx);
    if (t->ndim != 2) luaL_error(L, "%s: %s must be a 2-D Tensor (got %d dimensions)", fname, what, t->ndim);
    return t;
}

/* The random stream of an options table: {rng = Rng} or {seed = integer} (default seed 0). */
static nf_rng *opt_rng(lua_State *L, int idx, const char *fname, nf_rng *local)
{
    if (!lua_isnoneornil(L, idx) && lua_getfield(L, idx, "rng") != LUA_TNIL) {
        nf_rng *r = luaL_testudata(L, -1, NF_RNG_MT);
        if (!r) luaL_error(L, "%s: option 'rng' must be a nasflat.Rng (got %s)", fname, luaL_typename(L, -1));
        lua_pop(L, 1);   /* the options table keeps it alive */
        return r;
    }
    if (!lua_isnoneornil(L, idx)) lua_pop(L, 1);
    nf_rng_seed(local, (uint64_t)nf_lua_opt_integer(L, idx, "seed", 0));
    return local;
}

/* Doubles from a Tensor (read flat) or a table of numbers, in a userdata pushed on the stack. */
static double *check_doubles(lua_State *L, int idx, const char *fname, const char *what, int64_t *n)
{
    nf_tensor *t = nf_lua_test_tensor(L, idx);
    if (t) {
        double *buf = lua_newuserdatauv(L, (size_t)(t->size ? t->size : 1) * sizeof *buf, 0);
        for (int64_t i = 0; i < t->size; i++) buf[i] = t->data[i];
        *n = t->size;
        return buf;
    }
    if (luaL_testudata(L, idx, NF_TENSOR_MT)) luaL_error(L, "nasflat: attempt to use a closed tensor");
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: %s must be a Tensor or a table of numbers (got %s)", fname, what, luaL_typename(L, idx));
    lua_Integer len = luaL_len(L, idx);   /* read once; each entry below read once into buf */
    if (len < 0 || len > ((lua_Integer)1 << 40)) luaL_error(L, "%s: %s has a length of %I", fname, what, len);
    double *buf = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *buf, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        int ok;
        buf[i - 1] = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "%s: %s entry %I is not a number (%s)", fname, what, (lua_Integer)i, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    *n = (int64_t)len;
    return buf;
}

static void push_positions(lua_State *L, const int64_t *v, int64_t n)
{
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)v[i] + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* kmeans(X, k [, {rng=, seed=0, max_iter=100}]) -> {assign = {cluster 1..k per row},
 *   centroids = Tensor(k×d), inertia = {per Lloyd iteration}, iterations = n} */
static int l_kmeans(lua_State *L)
{
    static const char *const opts[] = {"rng", "seed", "max_iter", NULL};
    const char *fname = "stats.kmeans";
    nf_tensor *X = check_matrix(L, 1, fname, "X");
    lua_Integer k = luaL_checkinteger(L, 2);
    nf_lua_check_options(L, 3, fname, opts);
    nf_rng local, *rng = opt_rng(L, 3, fname, &local);
    lua_Integer max_iter = nf_lua_opt_integer(L, 3, "max_iter", 100);
    if (max_iter < 1 || max_iter > 100000) luaL_error(L, "%s: option 'max_iter' must be in 1..100000 (got %I)", fname, max_iter);
    int64_t n = X->shape[0], d = X->shape[1];
    if (k < 1 || k > n) luaL_error(L, "%s: cannot make %I clusters from %I rows", fname, k, (lua_Integer)n);
    int64_t *assign = lua_newuserdatauv(L, (size_t)n * sizeof *assign, 0);
    double *inertia = lua_newuserdatauv(L, (size_t)max_iter * sizeof *inertia, 0);
    int64_t cshape[2] = {k, d};
    nf_lua_tensor *C = nf_lua_tensor_new(L, 2, cshape);
    int it = 0;
    nf_err err;
    if (nf_kmeans(X->data, n, d, k, (int)max_iter, rng, assign, C->t.data, inertia, &it, &err))
        return nf_lua_raise(L, &err);
    lua_createtable(L, 0, 4);
    lua_insert(L, -2);
    lua_setfield(L, -2, "centroids");
    push_positions(L, assign, n);
    lua_setfield(L, -2, "assign");
    lua_createtable(L, it, 0);
    for (int t = 0; t < it; t++) {
        lua_pushnumber(L, inertia[t]);
        lua_rawseti(L, -2, t + 1);
    }
    lua_setfield(L, -2, "inertia");
    lua_pushinteger(L, it);
    lua_setfield(L, -2, "iterations");
    return 1;
}

/* cosine_matrix(A, B) -> Tensor(m×n) of cosine similarities between rows */
static int l_cosine_matrix(lua_State *L)
{
    const char *fname = "stats.cosine_matrix";
    nf_tensor *A = check_matrix(L, 1, fname, "A"), *B = check_matrix(L, 2, fname, "B");
    if (A->shape[1] != B->shape[1])
        luaL_error(L, "%s: column counts differ (%I vs %I)", fname, (lua_Integer)A->shape[1], (lua_Integer)B->shape[1]);
    int64_t shape[2] = {A->shape[0], B->shape[0]};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err err;
    if (nf_cosine_matrix(A->data, A->shape[0], B->data, B->shape[0], A->shape[1], out->t.data, &err))
        return nf_lua_raise(L, &err);
    return 1;
}

/* mean_cosine(X) -> Tensor(n): mean cosine similarity of each row to every other row */
static int l_mean_cosine(lua_State *L)
{
    nf_tensor *X = check_matrix(L, 1, "stats.mean_cosine", "X");
    int64_t n = X->shape[0];
    double *m = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *m, 0);
    nf_err err;
    if (nf_mean_cosine(X->data, n, X->shape[1], m, &err)) return nf_lua_raise(L, &err);
    nf_lua_tensor *out = nf_lua_tensor_new(L, 1, &n);
    for (int64_t i = 0; i < n; i++) out->t.data[i] = (float)m[i];
    return 1;
}

/* bucket_select(values, k [, {rng=, seed=0}]) -> k positions (1-based) into values, one per bucket */
static int l_bucket_select(lua_State *L)
{
    static const char *const opts[] = {"rng", "seed", NULL};
    const char *fname = "stats.bucket_select";
    int64_t n;
    double *v = check_doubles(L, 1, fname, "values", &n);
    lua_Integer k = luaL_checkinteger(L, 2);
    nf_lua_check_options(L, 3, fname, opts);
    nf_rng local, *rng = opt_rng(L, 3, fname, &local);
    if (k < 1 || k > n) luaL_error(L, "%s: cannot make %I buckets from %I values", fname, k, (lua_Integer)n);
    int64_t *out = lua_newuserdatauv(L, (size_t)k * sizeof *out, 0);
    nf_err err;
    if (nf_bucket_select(v, n, k, rng, out, &err)) return nf_lua_raise(L, &err);
    push_positions(L, out, k);
    return 1;
}

/* gather_rows(X, rows) -> Tensor of the listed rows (1-based) of a 1-D or 2-D Tensor, in list order */
static int l_gather_rows(lua_State *L)
{
    const char *fname = "stats.gather_rows";
    nf_tensor *X = nf_lua_check_tensor(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (X->ndim != 1 && X->ndim != 2) luaL_error(L, "%s: X must be a 1-D or 2-D Tensor (got %d dimensions)", fname, X->ndim);
    int64_t rows = X->shape[0], d = X->ndim == 2 ? X->shape[1] : 1;
    int64_t m = (int64_t)luaL_len(L, 2);
    int64_t shape[2] = {m, d};
    nf_lua_tensor *out = nf_lua_tensor_new(L, X->ndim, shape);
    for (int64_t i = 0; i < m; i++) {
        lua_geti(L, 2, (lua_Integer)i + 1);
        int ok;
        lua_Integer r = lua_tointegerx(L, -1, &ok);
        if (!ok || r < 1 || r > rows)
            luaL_error(L, "%s: row %I of the list is not an index in 1..%I", fname, (lua_Integer)i + 1, (lua_Integer)rows);
        lua_pop(L, 1);
        nf_copy(out->t.data + i * d, X->data + (r - 1) * d, (size_t)d);
    }
    return 1;
}

/* shared argument reading of ridge_fit / ridge_loo: X (n×p Tensor), y (n numbers) */
static nf_tensor *ridge_args(lua_State *L, const char *fname, double **y)
{
    nf_tensor *X = check_matrix(L, 1, fname, "features");
    int64_t ny;
    *y = check_doubles(L, 2, fname, "targets", &ny);
    lua_replace(L, 2);   /* keep the buffer alive in slot 2 */
    if (ny != X->shape[0])
        luaL_error(L, "%s: %I feature rows but %I targets", fname, (lua_Integer)X->shape[0], (lua_Integer)ny);
    return X;
}

/* ridge_fit(X, y [, {lambda = 1, standardize = true}]) -> coef (table of p numbers), intercept */
static int l_ridge_fit(lua_State *L)
{
    static const char *const opts[] = {"lambda", "standardize", NULL};
    const char *fname = "stats.ridge_fit";
    nf_lua_check_options(L, 3, fname, opts);
    double lambda = nf_lua_opt_number(L, 3, "lambda", 1.0);
    int standardize = nf_lua_opt_boolean(L, 3, "standardize", 1);
    double *y;
    nf_tensor *X = ridge_args(L, fname, &y);
    int64_t p = X->shape[1];
    double *coef = lua_newuserdatauv(L, (size_t)(p ? p : 1) * sizeof *coef, 0), b;
    nf_err err;
    if (nf_ridge_fit(X->data, y, X->shape[0], p, lambda, standardize, coef, &b, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, (int)p, 0);
    for (int64_t j = 0; j < p; j++) {
        lua_pushnumber(L, coef[j]);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_pushnumber(L, b);
    return 2;
}

/* ridge_loo(X, y, lambdas [, {standardize = true}]) -> table of leave-one-out MSE, one per lambda */
static int l_ridge_loo(lua_State *L)
{
    static const char *const opts[] = {"standardize", NULL};
    const char *fname = "stats.ridge_loo";
    nf_lua_check_options(L, 4, fname, opts);
    int standardize = nf_lua_opt_boolean(L, 4, "standardize", 1);
    double *y;
    nf_tensor *X = ridge_args(L, fname, &y);
    int64_t nl;
    double *lam = check_doubles(L, 3, fname, "lambdas", &nl);
    if (nl < 1) luaL_error(L, "%s: lambdas is empty", fname);
    double *loo = lua_newuserdatauv(L, (size_t)nl * sizeof *loo, 0);
    nf_err err;
    if (nf_ridge_loo(X->data, y, X->shape[0], X->shape[1], lam, nl, standardize, loo, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, (int)nl, 0);
    for (int64_t l = 0; l < nl; l++) {
        lua_pushnumber(L, loo[l]);
        lua_rawseti(L, -2, (lua_Integer)l + 1);
    }
    return 1;
}

/* simplex_search(P, y, idx, steps) -> weights (table of C numbers), sse. P: a list of C lists of n numbers (one
 * per predictor), y: n numbers, idx: m 1-based positions into 1..n, steps: grid points per unit (see nf_stats.h). */
static int l_simplex_search(lua_State *L)
{
    const char *fname = "stats.simplex_search";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer C = luaL_len(L, 1);
    int64_t n, m;
    double *y = check_doubles(L, 2, fname, "y", &n);          /* buffers stay on the stack */
    double *pos = check_doubles(L, 3, fname, "idx", &m);
    lua_Integer steps = luaL_checkinteger(L, 4);
    if (C < 1 || C > 64) luaL_error(L, "%s: needs 1..64 prediction lists (got %I)", fname, C);
    if (m < 1) luaL_error(L, "%s: idx is empty", fname);
    if (steps < 1 || steps > 1000) luaL_error(L, "%s: steps must be in 1..1000 (got %I)", fname, steps);
    double *P = lua_newuserdatauv(L, (size_t)C * (size_t)(n ? n : 1) * sizeof *P, 0);
    for (lua_Integer c = 1; c <= C; c++) {
        lua_geti(L, 1, c);
        int64_t nc;
        double *row = check_doubles(L, lua_gettop(L), fname, "a prediction list", &nc);
        if (nc != n) luaL_error(L, "%s: prediction list %I has %I values, y has %I", fname, c, (lua_Integer)nc,
                                (lua_Integer)n);
        memcpy(P + (c - 1) * n, row, (size_t)n * sizeof *P);
        lua_pop(L, 2);
    }
    int64_t *idx = lua_newuserdatauv(L, (size_t)m * sizeof *idx, 0);
    for (int64_t k = 0; k < m; k++) {
        double v = pos[k];
        if (!(v >= 1 && v <= (double)n) || v != (double)(int64_t)v)
            luaL_error(L, "%s: idx entry %I (%f) is not a position in 1..%I", fname, (lua_Integer)k + 1, v,
                       (lua_Integer)n);
        idx[k] = (int64_t)v - 1;
    }
    double *w = lua_newuserdatauv(L, (size_t)C * sizeof *w, 0), sse;
    nf_err err;
    if (nf_simplex_search(P, y, C, n, idx, m, (int)steps, w, &sse, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, (int)C, 0);
    for (lua_Integer c = 0; c < C; c++) {
        lua_pushnumber(L, w[c]);
        lua_rawseti(L, -2, c + 1);
    }
    lua_pushnumber(L, sse);
    return 2;
}

void nf_lua_stats_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"kmeans", l_kmeans}, {"cosine_matrix", l_cosine_matrix}, {"mean_cosine", l_mean_cosine},
        {"bucket_select", l_bucket_select}, {"gather_rows", l_gather_rows},
        {"ridge_fit", l_ridge_fit}, {"ridge_loo", l_ridge_loo},
        {"simplex_search", l_simplex_search}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "stats");
}
