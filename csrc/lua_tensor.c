/* lua_tensor.c — nasflat.Tensor userdata: data lives inside the userdata (the GC sees it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lua_nf.h"

nf_lua_tensor *nf_lua_tensor_new(lua_State *L, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    if (ndim < 0 || ndim > NF_MAXDIM) luaL_error(L, "nasflat: tensor: %d dimensions (at most %d)", ndim, NF_MAXDIM);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) luaL_error(L, "nasflat: tensor: dimension %d is negative", i + 1);
        if (shape[i] && n > ((int64_t)1 << 40) / shape[i]) luaL_error(L, "nasflat: tensor: shape too large");
        n *= shape[i];
    }
    size_t bytes = sizeof(nf_lua_tensor) + (size_t)n * sizeof(float);
    nf_lua_tensor *u = lua_newuserdatauv(L, bytes, 1);
    memset(u, 0, bytes);
    u->t.data = (float *)(u + 1);
    u->t.ndim = ndim;
    for (int i = 0; i < ndim; i++) u->t.shape[i] = shape[i];
    u->t.size = n;
    u->t.owns = 0;
    luaL_setmetatable(L, NF_TENSOR_MT);
    return u;
}

nf_tensor *nf_lua_test_tensor(lua_State *L, int idx)
{
    nf_lua_tensor *u = luaL_testudata(L, idx, NF_TENSOR_MT);
    return u && !u->closed ? &u->t : NULL;
}

nf_tensor *nf_lua_check_tensor(lua_State *L, int idx)
{
    nf_lua_tensor *u = luaL_checkudata(L, idx, NF_TENSOR_MT);
    if (u->closed) luaL_error(L, "nasflat: attempt to use a closed tensor");
    return &u->t;
}

static void read_shape(lua_State *L, int first, int last, int *ndim, int64_t *shape)
{
    /* Tensor.new(d1, d2, ...) or Tensor.new({d1, d2, ...}) */
    if (lua_istable(L, first)) {
        int n = (int)luaL_len(L, first);
        if (n > NF_MAXDIM) luaL_error(L, "nasflat: tensor: %d dimensions (at most %d)", n, NF_MAXDIM);
        for (int i = 0; i < n; i++) {
            lua_geti(L, first, i + 1);
            int ok;
            shape[i] = (int64_t)lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_error(L, "nasflat: tensor: shape entry %d is not an integer", i + 1);
            lua_pop(L, 1);
        }
        *ndim = n;
        return;
    }
    int n = last - first + 1;
    if (n > NF_MAXDIM) luaL_error(L, "nasflat: tensor: %d dimensions (at most %d)", n, NF_MAXDIM);
    for (int i = 0; i < n; i++) shape[i] = (int64_t)luaL_checkinteger(L, first + i);
    *ndim = n;
}

static int l_new(lua_State *L)
{
    int ndim;
    int64_t shape[NF_MAXDIM];
    read_shape(L, 1, lua_gettop(L), &ndim, shape);
    nf_lua_tensor_new(L, ndim, shape);
    return 1;
}

/* Depth-first flatten of nested tables; checks the tree is rectangular. Raw access (no __len, no
 * __index), as in the shape pass: the lengths checked here are the lengths the writes follow. */
static void flatten(lua_State *L, int idx, int depth, int ndim, const int64_t *shape, float *out, int64_t *pos)
{
    int64_t n = (int64_t)lua_rawlen(L, idx);
    if (n != shape[depth]) luaL_error(L, "nasflat: tensor.from: ragged table (%I vs %I entries at depth %d)",
                                      (lua_Integer)n, (lua_Integer)shape[depth], depth + 1);
    for (int64_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (depth + 1 < ndim) {
            if (!lua_istable(L, -1)) luaL_error(L, "nasflat: tensor.from: expected a table at depth %d", depth + 2);
            flatten(L, lua_gettop(L), depth + 1, ndim, shape, out, pos);
        } else {
            int ok;
            lua_Number v = lua_tonumberx(L, -1, &ok);
            if (!ok) luaL_error(L, "nasflat: tensor.from: entry %I is not a number (%s)", (lua_Integer)(*pos + 1), luaL_typename(L, -1));
            out[(*pos)++] = (float)v;
        }
        lua_pop(L, 1);
    }
}

nf_tensor *nf_lua_tensor_from_table(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    int ndim = 0;
    int64_t shape[NF_MAXDIM];
    lua_pushvalue(L, idx);
    for (;;) {
        if (ndim == NF_MAXDIM) luaL_error(L, "nasflat: tensor.from: more than %d levels of nesting", NF_MAXDIM);
        shape[ndim++] = (int64_t)lua_rawlen(L, -1);
        if (shape[ndim - 1] == 0) break;
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
        if (!lua_istable(L, -1)) break;
    }
    lua_pop(L, 1);
    nf_lua_tensor *u = nf_lua_tensor_new(L, ndim, shape);
    int64_t pos = 0;
    flatten(L, idx, 0, ndim, shape, u->t.data, &pos);
    return &u->t;
}

static int l_from(lua_State *L)
{
    nf_lua_tensor_from_table(L, 1);
    return 1;
}

static int l_shape(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_size(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, t->size);
        return 1;
    }
    lua_Integer d = luaL_checkinteger(L, 2);
    luaL_argcheck(L, d >= 1 && d <= t->ndim, 2, "dimension out of range");
    lua_pushinteger(L, t->shape[d - 1]);
    return 1;
}

static int64_t flat_index(lua_State *L, nf_tensor *t, int first)
{
    int nargs = lua_gettop(L) - first + 1;
    if (nargs == 1 && t->ndim != 1) {
        lua_Integer i = luaL_checkinteger(L, first);
        luaL_argcheck(L, i >= 1 && i <= t->size, first, "flat index out of range");
        return i - 1;
    }
    if (nargs != t->ndim) luaL_error(L, "nasflat: tensor has %d dimensions, got %d indices", t->ndim, nargs);
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, first + d);
        if (i < 1 || i > t->shape[d])
            luaL_error(L, "nasflat: index %I out of range 1..%I in dimension %d", (lua_Integer)i, (lua_Integer)t->shape[d], d + 1);
        off = off * t->shape[d] + (i - 1);
    }
    return off;
}

static int l_get(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    lua_pushnumber(L, t->data[flat_index(L, t, 2)]);
    return 1;
}

static int l_set(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    lua_Number v = luaL_checknumber(L, lua_gettop(L));
    lua_settop(L, lua_gettop(L) - 1);
    t->data[flat_index(L, t, 2)] = (float)v;
    return 0;
}

static void push_nested(lua_State *L, const nf_tensor *t, int depth, int64_t *pos)
{
    if (t->ndim == 0) { lua_pushnumber(L, t->data[0]); return; }
    lua_createtable(L, (int)t->shape[depth], 0);
    for (int64_t i = 0; i < t->shape[depth]; i++) {
        if (depth + 1 < t->ndim) push_nested(L, t, depth + 1, pos);
        else {
            float v = t->data[(*pos)++];
            lua_pushnumber(L, v);
        }
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_totable(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    int64_t pos = 0;
    push_nested(L, t, 0, &pos);
    return 1;
}

static int l_fill(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    nf_fill(t->data, (size_t)t->size, (float)luaL_checknumber(L, 2));
    lua_settop(L, 1);
    return 1;
}

static int l_clone(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    nf_lua_tensor *u = nf_lua_tensor_new(L, t->ndim, t->shape);
    nf_copy(u->t.data, t->data, (size_t)t->size);
    return 1;
}

static int l_rows(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    lua_Integer r0 = luaL_checkinteger(L, 2), r1 = luaL_checkinteger(L, 3);
    nf_err err;
    nf_tensor view;
    if (nf_tensor_rows(t, r0 - 1, r1, &view, &err)) return nf_lua_raise(L, &err);
    /* a copy: views into userdata memory would dangle once the parent is collected */
    nf_lua_tensor *u = nf_lua_tensor_new(L, view.ndim, view.shape);
    nf_copy(u->t.data, view.data, (size_t)view.size);
    return 1;
}

/* The shortest text that reads back as the float v: 2.9 (not 2.9000000953674), 1e+30, nan. */
static void float_text(char *buf, size_t n, float v)
{
    if (isnan(v)) { snprintf(buf, n, "nan"); return; }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

/* t:index(rows) -> a new tensor holding rows (1-based, along dimension 1) in the given order.
 * rows: a Lua sequence of integers or a 1-D tensor of integral values. */
static int l_index(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    if (t->ndim < 1) luaL_error(L, "nasflat: index: cannot index a scalar");
    nf_tensor *rt = nf_lua_test_tensor(L, 2);
    lua_Integer n;
    if (rt) n = rt->size;
    else { luaL_checktype(L, 2, LUA_TTABLE); n = luaL_len(L, 2); }
    int64_t shape[NF_MAXDIM];
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    shape[0] = n;
    int64_t row = t->shape[0] ? t->size / t->shape[0] : 0;
    nf_lua_tensor *u = nf_lua_tensor_new(L, t->ndim, shape);
    for (lua_Integer i = 0; i < n; i++) {
        lua_Integer r;
        if (rt) {
            float v = rt->data[i];
            if (v != floorf(v) || !(v >= 1.0f && v <= (float)t->shape[0])) {
                char num[32];
                float_text(num, sizeof num, v);
                if (v != floorf(v)) luaL_error(L, "nasflat: index: entry %I is %s, not an integer", i + 1, num);
                luaL_error(L, "nasflat: index: row %s out of range 1..%I", num, (lua_Integer)t->shape[0]);
            }
            r = (lua_Integer)v;
        } else {
            int ok;
            lua_geti(L, 2, i + 1);
            r = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok) luaL_error(L, "nasflat: index: entry %I is not an integer", i + 1);
        }
        if (r < 1 || r > t->shape[0])
            luaL_error(L, "nasflat: index: row %I out of range 1..%I", r, (lua_Integer)t->shape[0]);
        nf_copy(u->t.data + i * row, t->data + (r - 1) * row, (size_t)row);
    }
    return 1;
}

static int l_reshape(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    int ndim;
    int64_t shape[NF_MAXDIM];
    read_shape(L, 2, lua_gettop(L), &ndim, shape);
    nf_lua_tensor *u = nf_lua_tensor_new(L, t->ndim, t->shape);
    nf_copy(u->t.data, t->data, (size_t)t->size);
    nf_err err;
    if (nf_tensor_reshape(&u->t, ndim, shape, &err)) return nf_lua_raise(L, &err);
    return 1;
}

static int l_sum(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    lua_pushnumber(L, nf_sum(t->data, (size_t)t->size));
    return 1;
}

static int l_max(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    luaL_argcheck(L, t->size > 0, 1, "empty tensor");
    lua_pushnumber(L, nf_max(t->data, (size_t)t->size));
    return 1;
}

static int l_min(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    luaL_argcheck(L, t->size > 0, 1, "empty tensor");
    lua_pushnumber(L, nf_min(t->data, (size_t)t->size));
    return 1;
}

static nf_tensor *same_shape_arg(lua_State *L, nf_tensor *a, int idx)
{
    nf_tensor *b = nf_lua_check_tensor(L, idx);
    if (!nf_tensor_same_shape(a, b)) luaL_error(L, "nasflat: shapes differ (argument %d)", idx);
    return b;
}

static int l_add(lua_State *L)  /* a:add(b [, alpha]) in place: a += alpha*b */
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_tensor *b = same_shape_arg(L, a, 2);
    nf_axpy(a->data, (float)luaL_optnumber(L, 3, 1.0), b->data, (size_t)a->size);
    lua_settop(L, 1);
    return 1;
}

static int l_cmul(lua_State *L)
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_tensor *b = same_shape_arg(L, a, 2);
    nf_mul(a->data, a->data, b->data, (size_t)a->size);
    lua_settop(L, 1);
    return 1;
}

static int l_scale(lua_State *L)
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_scale(a->data, (float)luaL_checknumber(L, 2), (size_t)a->size);
    lua_settop(L, 1);
    return 1;
}

/* t:affine(a, b): t = a*t + b in place; t:exp(), t:log(): element-wise, in place. Each returns t. */
static int l_affine(lua_State *L)
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_affine(a->data, (float)luaL_checknumber(L, 2), (float)luaL_optnumber(L, 3, 0.0), (size_t)a->size);
    lua_settop(L, 1);
    return 1;
}

/* t:clamp(lo [, hi]): in place, NaN stays NaN */
static int l_clamp(lua_State *L)
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_clamp(a->data, (float)luaL_checknumber(L, 2), (float)luaL_optnumber(L, 3, HUGE_VAL), (size_t)a->size);
    lua_settop(L, 1);
    return 1;
}

static int l_exp(lua_State *L)
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_exp(a->data, (size_t)a->size);
    lua_settop(L, 1);
    return 1;
}

static int l_log(lua_State *L)
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_log(a->data, (size_t)a->size);
    lua_settop(L, 1);
    return 1;
}

static int l_dot(lua_State *L)
{
    nf_tensor *a = nf_lua_check_tensor(L, 1);
    nf_tensor *b = nf_lua_check_tensor(L, 2);
    if (a->size != b->size) luaL_error(L, "nasflat: dot: sizes differ (%I vs %I)", (lua_Integer)a->size, (lua_Integer)b->size);
    lua_pushnumber(L, nf_dot(a->data, b->data, (size_t)a->size));
    return 1;
}

/* 1 when the data of a and b overlap (views share their parent's memory). */
static int overlaps(const nf_tensor *a, const nf_tensor *b)
{
    if (a->size == 0 || b->size == 0) return 0;
    uintptr_t a0 = (uintptr_t)a->data, a1 = (uintptr_t)(a->data + a->size);
    uintptr_t b0 = (uintptr_t)b->data, b1 = (uintptr_t)(b->data + b->size);
    return a0 < b1 && b0 < a1;
}

/* nasflat.core.matmul(A, B [, {ta=bool, tb=bool, out=C, beta=0}]): C must not share memory with A or B. */
static int l_matmul(lua_State *L)
{
    static const char *const opts[] = {"ta", "tb", "out", "beta", NULL};
    nf_tensor *A = nf_lua_check_tensor(L, 1);
    nf_tensor *B = nf_lua_check_tensor(L, 2);
    nf_lua_check_options(L, 3, "matmul", opts);
    int ta = nf_lua_opt_boolean(L, 3, "ta", 0), tb = nf_lua_opt_boolean(L, 3, "tb", 0);
    float beta = (float)nf_lua_opt_number(L, 3, "beta", 0.0);
    if (A->ndim != 2 || B->ndim != 2) luaL_error(L, "nasflat: matmul: expects 2-D tensors");
    int64_t shape[2] = {ta ? A->shape[1] : A->shape[0], tb ? B->shape[0] : B->shape[1]};
    nf_tensor *C;
    if (!lua_isnoneornil(L, 3) && lua_getfield(L, 3, "out") != LUA_TNIL) {
        C = nf_lua_check_tensor(L, -1);
    } else {
        if (beta != 0.0f) luaL_error(L, "nasflat: matmul: beta needs an 'out' tensor");
        C = &nf_lua_tensor_new(L, 2, shape)->t;
    }
    /* the product reads A and B while it writes C: a C sharing memory with either is refused (OpenBLAS
     * gives wrong numbers for n >= 128 with no error) */
    if (overlaps(C, A) || overlaps(C, B))
        luaL_error(L, "nasflat: matmul: 'out' shares memory with %s; pass a separate tensor",
                   overlaps(C, A) ? (overlaps(C, B) ? "A and B" : "A") : "B");
    nf_err err;
    if (nf_matmul(A, ta ? NF_TRANS : NF_NOTRANS, B, tb ? NF_TRANS : NF_NOTRANS, C, beta, &err)) return nf_lua_raise(L, &err);
    return 1;
}

/* core.hcat{a, b, ...}: columns side by side; each is 2-D (n×k) or 1-D (a column of n).
 * The list is read once (raw access: no __len or __index), each entry checked and anchored in a
 * private table, and only those checked entries are copied: a table cannot change under the copy. */
static int l_hcat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_Integer m = (lua_Integer)lua_rawlen(L, 1);
    if (m < 1) luaL_error(L, "nasflat: hcat: needs at least one tensor");
    if (m > (1 << 24)) luaL_error(L, "nasflat: hcat: %I tensors (at most %d)", m, 1 << 24);
    nf_tensor **ts = lua_newuserdatauv(L, (size_t)m * sizeof *ts, 1);   /* 2: the checked entries */
    lua_createtable(L, (int)m, 0);                                        /* 3: keeps them alive */
    lua_setiuservalue(L, 2, 1);
    lua_getiuservalue(L, 2, 1);
    int64_t rows = -1, cols = 0;
    for (lua_Integer i = 1; i <= m; i++) {
        lua_rawgeti(L, 1, i);
        nf_tensor *t = nf_lua_test_tensor(L, -1);
        if (!t || t->ndim < 1 || t->ndim > 2) luaL_error(L, "nasflat: hcat: entry %I must be a 1-D or 2-D tensor", i);
        if (rows >= 0 && t->shape[0] != rows)
            luaL_error(L, "nasflat: hcat: entry %I has %I rows, expected %I", i, (lua_Integer)t->shape[0], (lua_Integer)rows);
        rows = t->shape[0];
        cols += t->ndim == 2 ? t->shape[1] : 1;
        ts[i - 1] = t;
        lua_rawseti(L, 3, i);
    }
    int64_t shape[2] = {rows, cols};
    nf_lua_tensor *u = nf_lua_tensor_new(L, 2, shape);
    int64_t off = 0;
    for (lua_Integer i = 0; i < m; i++) {
        const nf_tensor *t = ts[i];   /* its data stays valid even if a finaliser closed it meanwhile */
        int64_t k = t->ndim == 2 ? t->shape[1] : 1;
        for (int64_t r = 0; r < rows; r++) nf_copy(u->t.data + r * cols + off, t->data + r * k, (size_t)k);
        off += k;
    }
    return 1;
}

static int l_free(lua_State *L)
{
    nf_lua_tensor *u = luaL_checkudata(L, 1, NF_TENSOR_MT);
    u->closed = 1;
    return 0;
}

static int l_tostring(lua_State *L)
{
    nf_lua_tensor *u = luaL_checkudata(L, 1, NF_TENSOR_MT);
    if (u->closed) { lua_pushstring(L, "nasflat.Tensor (closed)"); return 1; }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "nasflat.Tensor(");
    for (int i = 0; i < u->t.ndim; i++) {
        if (i) luaL_addstring(&b, "x");
        lua_pushfstring(L, "%I", (lua_Integer)u->t.shape[i]);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, ")");
    luaL_pushresult(&b);
    return 1;
}

static int l_len(lua_State *L)
{
    nf_tensor *t = nf_lua_check_tensor(L, 1);
    lua_pushinteger(L, t->ndim ? t->shape[0] : 1);
    return 1;
}

void nf_lua_tensor_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"shape", l_shape}, {"size", l_size}, {"get", l_get}, {"set", l_set},
        {"totable", l_totable}, {"fill", l_fill}, {"clone", l_clone}, {"rows", l_rows},
        {"reshape", l_reshape}, {"index", l_index}, {"sum", l_sum}, {"max", l_max}, {"min", l_min},
        {"add", l_add}, {"cmul", l_cmul}, {"scale", l_scale}, {"dot", l_dot},
        {"affine", l_affine}, {"exp", l_exp}, {"log", l_log}, {"clamp", l_clamp},
        {"free", l_free}, {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__tostring", l_tostring}, {"__len", l_len}, {"__close", l_free}, {NULL, NULL},
    };
    luaL_newmetatable(L, NF_TENSOR_MT);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_new); lua_setfield(L, -2, "new");
    lua_pushcfunction(L, l_from); lua_setfield(L, -2, "from");
    lua_setfield(L, -2, "Tensor");
    lua_pushcfunction(L, l_matmul);
    lua_setfield(L, -2, "matmul");
    lua_pushcfunction(L, l_hcat);
    lua_setfield(L, -2, "hcat");
}
