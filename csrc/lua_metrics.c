/* lua_metrics.c — nasflat.core.metrics: the metric kernels of nf_metrics.c for Lua.
 * Every function takes (pred, truth [, options]) where pred and truth are Tensors (any shape,
 * read flat) or Lua sequences of numbers (rounded to float32), of equal length. A missing value
 * is NaN (0/0); a nil hole or a non-number in a table is an error. */
#include "lua_nf.h"
#include "nf_metrics.h"

/* Flat float view of argument idx: a Tensor's data, or a table copied into a userdata buffer
 * (pushed on the stack, so the GC frees it; no C allocation to leak on error). */
static const float *check_floats(lua_State *L, int idx, const char *fname, int64_t *n)
{
    nf_tensor *t = nf_lua_test_tensor(L, idx);
    if (t) { *n = t->size; return t->data; }
    if (luaL_testudata(L, idx, NF_TENSOR_MT)) luaL_error(L, "nasflat: attempt to use a closed tensor");
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: argument %d must be a Tensor or a table of numbers (got %s)", fname, idx, luaL_typename(L, idx));
    lua_Integer len = luaL_len(L, idx);   /* read once; each entry below read once into buf */
    if (len < 0 || len > ((lua_Integer)1 << 40))
        luaL_error(L, "%s: argument %d has a length of %I", fname, idx, len);
    float *buf = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *buf, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        int ok;
        lua_Number v = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "%s: argument %d entry %I is not a number (%s); mark missing values with 0/0",
                            fname, idx, (lua_Integer)i, luaL_typename(L, -1));
        buf[i - 1] = (float)v;
        lua_pop(L, 1);
    }
    *n = (int64_t)len;
    return buf;
}

static int64_t check_pair(lua_State *L, const char *fname, const float **a, const float **b)
{
    int64_t na, nb;
    *a = check_floats(L, 1, fname, &na);
    *b = check_floats(L, 2, fname, &nb);
    if (na != nb) luaL_error(L, "%s: sizes differ (%I predictions, %I measurements)", fname, (lua_Integer)na, (lua_Integer)nb);
    return na;
}

typedef nf_status (*pair_fn)(const float *, const float *, int64_t, double *, nf_err *);

static int pair_metric(lua_State *L, const char *fname, pair_fn f)
{
    static const char *const none[] = {NULL};
    nf_lua_check_options(L, 3, fname, none);
    const float *a, *b;
    int64_t n = check_pair(L, fname, &a, &b);
    double out;
    nf_err err;
    if (f(a, b, n, &out, &err)) return nf_lua_raise(L, &err);
    lua_pushnumber(L, out);
    return 1;
}

static int l_spearman(lua_State *L) { return pair_metric(L, "metrics.spearman", nf_spearman); }
static int l_kendall(lua_State *L) { return pair_metric(L, "metrics.kendall", nf_kendall); }
static int l_kendall_naive(lua_State *L) { return pair_metric(L, "metrics.kendall_naive", nf_kendall_naive); }
static int l_pearson(lua_State *L) { return pair_metric(L, "metrics.pearson", nf_pearson); }
static int l_mae(lua_State *L) { return pair_metric(L, "metrics.mae", nf_mae); }
static int l_rmse(lua_State *L) { return pair_metric(L, "metrics.rmse", nf_rmse); }
static int l_mape(lua_State *L) { return pair_metric(L, "metrics.mape", nf_mape); }

/* within(pred, truth [, {tol = 0.1}]) */
static int l_within(lua_State *L)
{
    static const char *const opts[] = {"tol", NULL};
    nf_lua_check_options(L, 3, "metrics.within", opts);
    double tol = nf_lua_opt_number(L, 3, "tol", 0.1);
    const float *a, *b;
    int64_t n = check_pair(L, "metrics.within", &a, &b);
    double out;
    nf_err err;
    if (nf_within(a, b, n, tol, &out, &err)) return nf_lua_raise(L, &err);
    lua_pushnumber(L, out);
    return 1;
}

typedef nf_status (*topk_fn)(const float *, const float *, int64_t, int64_t, double *, nf_err *);

static int topk_metric(lua_State *L, const char *fname, topk_fn f)
{
    static const char *const opts[] = {"k", NULL};
    nf_lua_check_options(L, 3, fname, opts);
    lua_Integer k = nf_lua_opt_integer(L, 3, "k", 10);
    const float *a, *b;
    int64_t n = check_pair(L, fname, &a, &b);
    double out;
    nf_err err;
    if (f(a, b, n, (int64_t)k, &out, &err)) return nf_lua_raise(L, &err);
    lua_pushnumber(L, out);
    return 1;
}

static int l_precision_at_k(lua_State *L) { return topk_metric(L, "metrics.precision_at_k", nf_precision_at_k); }
static int l_topk_overlap(lua_State *L) { return topk_metric(L, "metrics.topk_overlap", nf_topk_overlap); }

/* count_valid(pred, truth) -> number of pairs without NaN */
static int l_count_valid(lua_State *L)
{
    const float *a, *b;
    int64_t n = check_pair(L, "metrics.count_valid", &a, &b);
    lua_pushinteger(L, (lua_Integer)nf_metric_count_valid(a, b, n));
    return 1;
}

void nf_lua_metrics_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"spearman", l_spearman}, {"kendall", l_kendall}, {"kendall_naive", l_kendall_naive},
        {"pearson", l_pearson}, {"mae", l_mae}, {"rmse", l_rmse}, {"mape", l_mape}, {"within", l_within},
        {"precision_at_k", l_precision_at_k}, {"topk_overlap", l_topk_overlap},
        {"count_valid", l_count_valid}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "metrics");
}
