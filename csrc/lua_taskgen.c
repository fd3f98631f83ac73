/* lua_taskgen.c — nasflat.core.taskgen: the task-generation kernels of nf_taskgen.c for Lua.
 *
 *   spearman_matrix(latency [, devices]) -> rho, count
 *       latency: a nasflat.Latency (devices: a list of its device names, default all, in this order) or a 2-D
 *       Tensor n × d (columns = devices, NaN = not measured; devices must be nil). rho[i][j] (NaN where
 *       undefined) and count[i][j] (common architectures) are d × d tables.
 *   cut(w, side) -> the cut weight
 *   kl(w, side) -> side, cut, passes          (side: list of 0/1, a new list is returned)
 *   kl_restarts(w, {n0 =, restarts =, rng =}) -> list of {side =, cut =} in run order
 *   bisect_exact(w, {n0 =}) -> side, cut      (at most 24 nodes)
 *   trim(w, side, m, k) -> side, removed      (side: 0/1/-1 per node; removed: 1-based nodes in order)
 *   read_file(path, max_bytes [, what]) -> contents | nil, message   (nf_read_file: regular files of at most
 *       max_bytes only, checked before reading; what names the file kind in the message, "a task file")
 * w is a d × d table of tables of numbers (NaN counts as 0). Programmer errors raise; read_file's
 * failures are failures of the world (nil, message). */
#include <math.h>
#include "lua_nf.h"
#include <stdlib.h>
#include "nf_frame.h"
#include "nf_taskgen.h"

/* The d × d matrix at idx, copied into a userdata buffer pushed on the stack (freed by the GC). */
static double *check_matrix(lua_State *L, int idx, const char *fname, int *d_out)
{
    if (!lua_istable(L, idx)) luaL_error(L, "%s: the weights must be a table of tables (got %s)", fname, luaL_typename(L, idx));
    lua_Integer d = (lua_Integer)lua_rawlen(L, idx);
    if (d < 2 || d > 4096) luaL_error(L, "%s: the weights must have 2..4096 rows (got %I)", fname, d);
    double *w = lua_newuserdatauv(L, (size_t)(d * d) * sizeof *w, 0);
    for (lua_Integer i = 1; i <= d; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TTABLE) luaL_error(L, "%s: weights row %I is not a table", fname, i);
        if ((lua_Integer)lua_rawlen(L, -1) != d) luaL_error(L, "%s: weights row %I has %I entries, expected %I", fname, i, (lua_Integer)lua_rawlen(L, -1), d);
        for (lua_Integer j = 1; j <= d; j++) {
            lua_rawgeti(L, -1, j);
            int ok;
            lua_Number v = lua_tonumberx(L, -1, &ok);
            if (!ok) luaL_error(L, "%s: weights[%I][%I] is not a number", fname, i, j);
            w[(i - 1) * d + (j - 1)] = v;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    *d_out = (int)d;
    return w;
}

static int *check_side(lua_State *L, int idx, int d, const char *fname, int lo)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    if ((lua_Integer)lua_rawlen(L, idx) != d) luaL_error(L, "%s: side has %I entries, expected %d", fname, (lua_Integer)lua_rawlen(L, idx), d);
    int *s = lua_newuserdatauv(L, (size_t)d * sizeof *s, 0);
    for (int i = 0; i < d; i++) {
        lua_rawgeti(L, idx, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < lo || v > 1) luaL_error(L, "%s: side entry %d must be %s", fname, i + 1, lo < 0 ? "-1, 0 or 1" : "0 or 1");
        s[i] = (int)v;
        lua_pop(L, 1);
    }
    return s;
}

static void push_ints(lua_State *L, const int *v, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_matrix(lua_State *L, const double *m, const int64_t *c, int d)
{
    lua_createtable(L, d, 0);
    for (int i = 0; i < d; i++) {
        lua_createtable(L, d, 0);
        for (int j = 0; j < d; j++) {
            if (m) lua_pushnumber(L, m[(size_t)i * (size_t)d + (size_t)j]);
            else lua_pushinteger(L, (lua_Integer)c[(size_t)i * (size_t)d + (size_t)j]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_spearman_matrix(lua_State *L)
{
    const char *fn = "taskgen.spearman_matrix";
    const float *x;
    int64_t n, ld;
    int d;
    nf_tensor *t = nf_lua_test_tensor(L, 1);
    if (t) {
        if (t->ndim != 2) luaL_error(L, "%s: the Tensor must be 2-D (n × devices)", fn);
        if (!lua_isnoneornil(L, 2)) luaL_error(L, "%s: devices are only for a Latency", fn);
        n = t->shape[0];
        d = (int)t->shape[1];
        ld = d;
        x = t->data;
    } else {
        nf_latency *lat = nf_lua_check_latency(L, 1);
        n = lat->n_archs;
        if (lua_isnoneornil(L, 2)) {
            d = lat->n_devices;
            ld = d;
            x = lat->ms;
        } else {
            luaL_checktype(L, 2, LUA_TTABLE);
            lua_Integer nd = (lua_Integer)lua_rawlen(L, 2);
            if (nd < 1 || nd > 4096) luaL_error(L, "%s: devices must be a non-empty list", fn);
            d = (int)nd;
            int *col = lua_newuserdatauv(L, (size_t)d * sizeof *col, 0);
            for (int j = 0; j < d; j++) {
                /* raw and a string only: the pointer stays valid while the table holds the string */
                const char *name = lua_rawgeti(L, 2, j + 1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
                if (!name) luaL_error(L, "%s: devices entry %d is not a name", fn, j + 1);
                col[j] = nf_latency_device(lat, name);
                if (col[j] < 0) luaL_error(L, "%s: unknown device '%s'", fn, name);
                lua_pop(L, 1);
            }
            float *buf = lua_newuserdatauv(L, (size_t)(n ? n : 1) * (size_t)d * sizeof *buf, 0);
            for (int64_t r = 0; r < n; r++)
                for (int j = 0; j < d; j++)
                    buf[(size_t)r * (size_t)d + (size_t)j] = lat->ms[(size_t)r * (size_t)lat->n_devices + (size_t)col[j]];
            x = buf;
            ld = d;
        }
    }
    size_t dd = (size_t)(d ? d : 1);
    double *rho = lua_newuserdatauv(L, dd * dd * sizeof *rho, 0);
    int64_t *cnt = lua_newuserdatauv(L, dd * dd * sizeof *cnt, 0);
    nf_err err;
    if (nf_taskgen_spearman_matrix(x, n, d, ld, rho, cnt, &err)) return nf_lua_raise(L, &err);
    push_matrix(L, rho, NULL, d);
    push_matrix(L, NULL, cnt, d);
    return 2;
}

static int l_cut(lua_State *L)
{
    int d;
    const double *w = check_matrix(L, 1, "taskgen.cut", &d);
    const int *s = check_side(L, 2, d, "taskgen.cut", -1);
    lua_pushnumber(L, nf_taskgen_cut(w, d, s));
    return 1;
}

static int l_kl(lua_State *L)
{
    int d;
    const double *w = check_matrix(L, 1, "taskgen.kl", &d);
    int *s = check_side(L, 2, d, "taskgen.kl", 0);
    double cut;
    int passes;
    nf_err err;
    if (nf_taskgen_kl(w, d, s, &cut, &passes, &err)) return nf_lua_raise(L, &err);
    push_ints(L, s, d);
    lua_pushnumber(L, cut);
    lua_pushinteger(L, passes);
    return 3;
}

static int l_kl_restarts(lua_State *L)
{
    static const char *const opts[] = {"n0", "restarts", "rng", NULL};
    const char *fn = "taskgen.kl_restarts";
    nf_lua_check_options(L, 2, fn, opts);
    int d;
    const double *w = check_matrix(L, 1, fn, &d);
    lua_Integer n0 = nf_lua_opt_integer(L, 2, "n0", d / 2), restarts = nf_lua_opt_integer(L, 2, "restarts", 10);
    if (n0 < 1 || n0 >= d) luaL_error(L, "%s: option 'n0' must be in 1..%d (got %I)", fn, d - 1, n0);
    if (restarts < 1 || restarts > 100000) luaL_error(L, "%s: option 'restarts' must be in 1..100000 (got %I)", fn, restarts);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "rng") == LUA_TNIL) luaL_error(L, "%s: option 'rng' is required (a nasflat.Rng)", fn);
    nf_rng *rng = nf_lua_check_rng(L, -1);
    int *sides = lua_newuserdatauv(L, (size_t)(restarts * d) * sizeof *sides, 0);
    double *cuts = lua_newuserdatauv(L, (size_t)restarts * sizeof *cuts, 0);
    nf_err err;
    if (nf_taskgen_kl_restarts(w, d, (int)n0, (int)restarts, rng, sides, cuts, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, (int)restarts, 0);
    for (lua_Integer r = 0; r < restarts; r++) {
        lua_createtable(L, 0, 2);
        push_ints(L, sides + r * d, d);
        lua_setfield(L, -2, "side");
        lua_pushnumber(L, cuts[r]);
        lua_setfield(L, -2, "cut");
        lua_rawseti(L, -2, r + 1);
    }
    return 1;
}

static int l_bisect_exact(lua_State *L)
{
    static const char *const opts[] = {"n0", NULL};
    const char *fn = "taskgen.bisect_exact";
    nf_lua_check_options(L, 2, fn, opts);
    int d;
    const double *w = check_matrix(L, 1, fn, &d);
    lua_Integer n0 = nf_lua_opt_integer(L, 2, "n0", d / 2);
    if (n0 < 1 || n0 >= d) luaL_error(L, "%s: option 'n0' must be in 1..%d (got %I)", fn, d - 1, n0);
    int *s = lua_newuserdatauv(L, (size_t)d * sizeof *s, 0);
    double cut;
    nf_err err;
    if (nf_taskgen_bisect_exact(w, d, (int)n0, s, &cut, &err)) return nf_lua_raise(L, &err);
    push_ints(L, s, d);
    lua_pushnumber(L, cut);
    return 2;
}

static int l_trim(lua_State *L)
{
    const char *fn = "taskgen.trim";
    int d;
    const double *w = check_matrix(L, 1, fn, &d);
    int *s = check_side(L, 2, d, fn, -1);
    lua_Integer m = luaL_checkinteger(L, 3), k = luaL_checkinteger(L, 4);
    if (m < 1 || k < 1 || m > d || k > d) luaL_error(L, "%s: m and k must be in 1..%d (got %I, %I)", fn, d, m, k);
    int *removed = lua_newuserdatauv(L, (size_t)d * sizeof *removed, 0);
    nf_err err;
    if (nf_taskgen_trim(w, d, s, (int)m, (int)k, removed, &err)) return nf_lua_raise(L, &err);
    push_ints(L, s, d);
    lua_createtable(L, d, 0);
    for (int i = 0; i < d && removed[i] >= 0; i++) {
        lua_pushinteger(L, removed[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

/* A box owning a malloc'ed buffer until the collector frees it, so that no error leaks it. */
#define BUF_MT "nasflat.taskgen.buffer"

static int buf_gc(lua_State *L)
{
    unsigned char **box = luaL_checkudata(L, 1, BUF_MT);
    free(*box);
    *box = NULL;
    return 0;
}

static int l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = luaL_checkinteger(L, 2);
    const char *what = luaL_optstring(L, 3, "a task file");
    luaL_argcheck(L, max >= 0, 2, "the limit must be >= 0");
    unsigned char **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, BUF_MT);
    size_t size;
    nf_err err;
    if (nf_read_file(path, (size_t)max, what, box, &size, NULL, &err)) return nf_lua_fail(L, &err);
    lua_pushlstring(L, (const char *)*box, size);
    free(*box);
    *box = NULL;
    return 1;
}

void nf_lua_taskgen_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"spearman_matrix", l_spearman_matrix}, {"cut", l_cut}, {"kl", l_kl}, {"kl_restarts", l_kl_restarts},
        {"bisect_exact", l_bisect_exact}, {"trim", l_trim}, {"read_file", l_read_file}, {NULL, NULL},
    };
    luaL_newmetatable(L, BUF_MT);
    lua_pushcfunction(L, buf_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "taskgen");
}
