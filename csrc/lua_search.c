/* lua_search.c — nasflat.core.search: Pareto ranks and the 2-D hypervolume of nf_search.c for Lua.
 *   search.pareto_rank(points) -> ranks (list), fronts     points: Tensor(n × m) or a list of n lists of m numbers
 *   search.hypervolume2(xs, ys, rx, ry) -> area            xs, ys: Tensors or lists of numbers of equal length
 *   search.select(obj, logms, {budgets =, sigmas =, skip =, incumbent =, k =}) -> rows (1-based), scores
 *       obj: Tensor or list (n, higher is better); logms: a list of m Tensors (n predicted log ms each);
 *       budgets: m log budgets; sigmas: m log-error sds (0 = hard test, default); skip: list of 1-based rows
 *       to exclude; incumbent: the best feasible objective so far (default none); k: how many (default 1).
 *   search.children(space, parents, rng [, mates]) -> arch strings: each parent (crossed uniformly with its mate
 *       when mates is given) with one position changed; parents and mates are lists of arch strings (either form).
 * Every objective is minimised; NaN marks a missing value (rank 0, no volume). Buffers are userdata pushed on
 * the stack, so an error never leaks them. */
#include "lua_nf.h"
#include <math.h>
#include "nf_search.h"
#include "nf_space.h"

static void *scratch(lua_State *L, size_t bytes)
{
    return lua_newuserdatauv(L, bytes ? bytes : 1, 0);
}

/* A flat double copy of a number list or Tensor at idx (pushed as userdata). */
static double *check_numbers(lua_State *L, int idx, const char *fname, int64_t *n)
{
    nf_tensor *t = nf_lua_test_tensor(L, idx);
    if (t) {
        double *buf = scratch(L, (size_t)t->size * sizeof *buf);
        for (int64_t i = 0; i < t->size; i++) buf[i] = t->data[i];
        *n = t->size;
        return buf;
    }
    if (luaL_testudata(L, idx, NF_TENSOR_MT)) luaL_error(L, "nasflat: attempt to use a closed tensor");
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: argument %d must be a Tensor or a list of numbers (got %s)", fname, idx, luaL_typename(L, idx));
    lua_Integer len = luaL_len(L, idx);
    if (len < 0 || len > ((lua_Integer)1 << 40)) luaL_error(L, "%s: argument %d has a length of %I", fname, idx, len);
    double *buf = scratch(L, (size_t)len * sizeof *buf);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        int ok;
        lua_Number v = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "%s: argument %d entry %I is not a number (%s)", fname, idx, i, luaL_typename(L, -1));
        buf[i - 1] = v;
        lua_pop(L, 1);
    }
    *n = (int64_t)len;
    return buf;
}

static int l_pareto_rank(lua_State *L)
{
    const char *fname = "search.pareto_rank";
    int64_t n;
    int m;
    double *obj;
    nf_tensor *t = nf_lua_test_tensor(L, 1);
    if (t) {
        if (t->ndim != 2) luaL_error(L, "%s: the Tensor must be 2-D (n × m), got %d dimensions", fname, t->ndim);
        n = t->shape[0];
        m = (int)t->shape[1];
        obj = scratch(L, (size_t)t->size * sizeof *obj);
        for (int64_t i = 0; i < t->size; i++) obj[i] = t->data[i];
    } else {
        if (luaL_testudata(L, 1, NF_TENSOR_MT)) luaL_error(L, "nasflat: attempt to use a closed tensor");
        if (!lua_istable(L, 1))
            luaL_error(L, "%s: argument 1 must be a Tensor or a list of points (got %s)", fname, luaL_typename(L, 1));
        lua_Integer len = luaL_len(L, 1);
        if (len < 0 || len > ((lua_Integer)1 << 31)) luaL_error(L, "%s: the list has a length of %I", fname, len);
        n = (int64_t)len;
        m = 0;
        obj = NULL;
        for (lua_Integer i = 1; i <= len; i++) {
            if (lua_geti(L, 1, i) != LUA_TTABLE) luaL_error(L, "%s: point %I is not a list of numbers", fname, i);
            lua_Integer k = luaL_len(L, -1);
            if (i == 1) {
                if (k < 1 || k > 64) luaL_error(L, "%s: point 1 has %I objectives (1..64 allowed)", fname, k);
                m = (int)k;
                lua_pop(L, 1);
                obj = scratch(L, (size_t)n * (size_t)m * sizeof *obj);   /* below the loop's temporaries */
                lua_geti(L, 1, i);
            } else if (k != m) {
                luaL_error(L, "%s: point %I has %I objectives, point 1 has %d", fname, i, k, m);
            }
            for (int j = 0; j < m; j++) {
                lua_geti(L, -1, j + 1);
                int ok;
                lua_Number v = lua_tonumberx(L, -1, &ok);
                if (!ok) luaL_error(L, "%s: point %I objective %d is not a number", fname, i, j + 1);
                obj[(size_t)(i - 1) * (size_t)m + (size_t)j] = v;
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        if (n == 0) m = 1;
    }
    int32_t *rank = scratch(L, (size_t)n * sizeof *rank);
    int64_t *work = scratch(L, (size_t)n * 3 * sizeof *work);
    int32_t fronts = 0;
    nf_err err;
    if (nf_pareto_rank(obj, n, m, rank, work, &fronts, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, rank[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushinteger(L, fronts);
    return 2;
}

static int l_hypervolume2(lua_State *L)
{
    const char *fname = "search.hypervolume2";
    int64_t nx, ny;
    double *x = check_numbers(L, 1, fname, &nx);
    double *y = check_numbers(L, 2, fname, &ny);
    if (nx != ny) luaL_error(L, "%s: %I x values but %I y values", fname, (lua_Integer)nx, (lua_Integer)ny);
    double rx = luaL_checknumber(L, 3), ry = luaL_checknumber(L, 4);
    int64_t *work = scratch(L, (size_t)nx * 2 * sizeof *work);
    double area;
    nf_err err;
    if (nf_hypervolume2(x, y, nx, rx, ry, &area, work, &err)) return nf_lua_raise(L, &err);
    lua_pushnumber(L, area);
    return 1;
}

static int l_select(lua_State *L)
{
    const char *fname = "search.select";
    static const char *const opts[] = {"budgets", "sigmas", "skip", "incumbent", "k", NULL};
    nf_lua_check_options(L, 3, fname, opts);
    int64_t n;
    double *obj = check_numbers(L, 1, fname, &n);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer m = luaL_len(L, 2);
    if (m < 0 || m > 64) luaL_error(L, "%s: %I constraints (0..64 allowed)", fname, m);
    float *logms = scratch(L, (size_t)m * (size_t)n * sizeof *logms);
    double *lb = scratch(L, (size_t)(m ? m : 1) * sizeof *lb), *sd = scratch(L, (size_t)(m ? m : 1) * sizeof *sd);
    lua_getfield(L, 3, "budgets");
    int ib = lua_gettop(L);
    lua_getfield(L, 3, "sigmas");
    int is = lua_gettop(L);
    if (m > 0 && !lua_istable(L, ib)) luaL_error(L, "%s: option 'budgets' must list one log budget per constraint", fname);
    for (lua_Integer j = 1; j <= m; j++) {
        lua_geti(L, 2, j);
        nf_tensor *t = nf_lua_test_tensor(L, -1);
        if (!t || t->size != n) luaL_error(L, "%s: logms %I must be a Tensor of %I predictions", fname, j, (lua_Integer)n);
        for (int64_t i = 0; i < n; i++) logms[(size_t)(j - 1) * (size_t)n + (size_t)i] = t->data[i];
        lua_pop(L, 1);
        lua_geti(L, ib, j);
        int ok;
        lb[j - 1] = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "%s: budget %I is not a number", fname, j);
        lua_pop(L, 1);
        sd[j - 1] = 0;
        if (lua_istable(L, is)) {
            lua_geti(L, is, j);
            if (!lua_isnil(L, -1)) sd[j - 1] = luaL_checknumber(L, -1);
            lua_pop(L, 1);
        }
    }
    uint8_t *skip = NULL;
    if (lua_getfield(L, 3, "skip") == LUA_TTABLE) {
        int iskip = lua_gettop(L);
        skip = scratch(L, (size_t)n);
        for (int64_t i = 0; i < n; i++) skip[i] = 0;
        lua_Integer ns = luaL_len(L, iskip);
        for (lua_Integer j = 1; j <= ns; j++) {
            lua_geti(L, iskip, j);
            lua_Integer r = lua_tointeger(L, -1);
            if (r < 1 || r > n) luaL_error(L, "%s: skip entry %I is not a row in 1..%I", fname, j, (lua_Integer)n);
            skip[r - 1] = 1;
            lua_pop(L, 1);
        }
    }
    double inc = -INFINITY;
    if (lua_getfield(L, 3, "incumbent") != LUA_TNIL) inc = luaL_checknumber(L, -1);
    lua_Integer k = nf_lua_opt_integer(L, 3, "k", 1);
    if (k < 0 || k > n + 1) k = k < 0 ? -1 : n;
    int64_t *out = scratch(L, (size_t)(k > 0 ? k : 1) * sizeof *out);
    double *score = scratch(L, (size_t)(k > 0 ? k : 1) * sizeof *score);
    int64_t got = 0;
    nf_err err;
    if (nf_search_select(obj, logms, (int)m, n, lb, sd, skip, inc, (int64_t)k, out, score, &got, &err))
        return nf_lua_raise(L, &err);
    lua_createtable(L, (int)got, 0);
    lua_createtable(L, (int)got, 0);
    for (int64_t i = 0; i < got; i++) {
        lua_pushinteger(L, (lua_Integer)out[i] + 1);
        lua_rawseti(L, -3, (lua_Integer)i + 1);
        lua_pushnumber(L, score[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 2;
}

/* Codes of a list of arch strings at idx (pushed as userdata). */
static uint8_t *check_arch_list(lua_State *L, int idx, nf_space_id sp, int len, const char *fname, const char *what,
                                int64_t *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer cnt = luaL_len(L, idx);
    if (cnt < 0 || cnt > ((lua_Integer)1 << 31)) luaL_error(L, "%s: %s has a length of %I", fname, what, cnt);
    uint8_t *codes = scratch(L, (size_t)cnt * (size_t)len);
    for (lua_Integer i = 1; i <= cnt; i++) {
        lua_geti(L, idx, i);
        size_t sl;
        const char *str = lua_tolstring(L, -1, &sl);
        if (!str || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: %s entry %I is not an arch string", fname, what, i);
        nf_err err;
        if (nf_space_parse_n(sp, str, sl, codes + (size_t)(i - 1) * (size_t)len, &err))
            luaL_error(L, "%s: %s entry %I: %s", fname, what, i, err.msg);
        lua_pop(L, 1);
    }
    *n = (int64_t)cnt;
    return codes;
}

static int l_children(lua_State *L)
{
    const char *fname = "search.children";
    lua_settop(L, 4);   /* the buffers pushed below sit above the arguments */
    int sid = nf_space_from_name(luaL_checkstring(L, 1));
    if (sid < 0) luaL_error(L, "%s: unknown space '%s'", fname, lua_tostring(L, 1));
    nf_space_id sp = (nf_space_id)sid;
    int len = nf_space_code_len(sp);
    int64_t n, nm = 0;
    uint8_t *parents = check_arch_list(L, 2, sp, len, fname, "parents", &n);
    nf_rng *rng = nf_lua_check_rng(L, 3);
    uint8_t *mates = NULL;
    if (!lua_isnoneornil(L, 4)) {
        mates = check_arch_list(L, 4, sp, len, fname, "mates", &nm);
        if (nm != n) luaL_error(L, "%s: %I parents but %I mates", fname, (lua_Integer)n, (lua_Integer)nm);
    }
    uint8_t *out = scratch(L, (size_t)n * (size_t)len);
    nf_err err;
    if (nf_search_children(parents, mates, n, len, nf_space_n_choices(sp), rng, out, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, (int)n, 0);
    char buf[NF_SPACE_MAX_STRING];
    for (int64_t i = 0; i < n; i++) {
        if (nf_space_format(sp, out + (size_t)i * (size_t)len, buf, sizeof buf) < 0)
            luaL_error(L, "%s: cannot format child %I", fname, (lua_Integer)i + 1);
        lua_pushstring(L, buf);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

void nf_lua_search_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"pareto_rank", l_pareto_rank}, {"hypervolume2", l_hypervolume2}, {"select", l_select}, {"children", l_children}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "search");
}
