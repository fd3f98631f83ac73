/* lua_space.c — binding for the search spaces (nf_space.h): core.space.<fn>(space_name, ...), and for
 * the synthetic device zoo built on them (nf_zoo.h): core.zoo.<fn>.
 * lua/nasflat/space.lua wraps these into Space objects; this layer only converts.
 *
 * A code argument is an arch string (either form nf_space_parse accepts) or a table of the
 * 0-based choice ids (NB201 op_vector numbering / FBNet block ids). A malformed code here is a
 * programmer error (raises naming the argument); space.parse is the non-raising validator. */
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include "lua_nf.h"
#include "nf_space.h"
#include "nf_zoo.h"

static nf_space_id check_space(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int s = nf_space_from_name(name);
    if (s < 0) luaL_error(L, "nasflat: unknown search space '%s' (expected nb201 or fbnet)", name);
    return (nf_space_id)s;
}

/* Read the code at idx into code; what names it in errors ("code", "entry 5"). */
static void read_code(lua_State *L, int idx, nf_space_id s, uint8_t *code, const char *fname, const char *what)
{
    int len = nf_space_code_len(s), C = nf_space_n_choices(s);
    if (lua_type(L, idx) == LUA_TSTRING) {
        nf_err e;
        size_t n;
        const char *str = lua_tolstring(L, idx, &n);   /* with its length: a NUL inside is refused, not a cut */
        if (nf_space_parse_n(s, str, n, code, &e) != NF_OK)
            luaL_error(L, "nasflat: %s: %s: %s", fname, what, e.msg);
        return;
    }
    if (!lua_istable(L, idx))
        luaL_error(L, "nasflat: %s: %s must be an arch string or a table of %d ids (got %s)", fname, what, len,
                   luaL_typename(L, idx));
    lua_Integer have = luaL_len(L, idx);   /* read once: the message shows the length that was checked */
    if (have != len)
        luaL_error(L, "nasflat: %s: %s has %I ids (a %s code has %d)", fname, what, have, nf_space_name(s), len);
    for (int i = 0; i < len; i++) {
        lua_geti(L, idx, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 0 || v >= C)
            luaL_error(L, "nasflat: %s: %s: id %d must be an integer in 0..%d", fname, what, i + 1, C - 1);
        code[i] = (uint8_t)v;
        lua_pop(L, 1);
    }
}

/* A list (table) of codes at idx -> a scratch userdata of B×len bytes, pushed on the stack. */
static uint8_t *read_codes(lua_State *L, int idx, nf_space_id s, int64_t *B, const char *fname)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int64_t n = (int64_t)luaL_len(L, idx);   /* read once; each entry read once below */
    if (n < 0 || n > ((int64_t)1 << 32)) luaL_error(L, "nasflat: %s: a list of %I codes", fname, (lua_Integer)n);
    int len = nf_space_code_len(s);
    uint8_t *codes = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * (size_t)len, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, idx, (lua_Integer)(i + 1));
        char what[48];
        snprintf(what, sizeof what, "entry %lld", (long long)(i + 1));
        read_code(L, lua_gettop(L), s, codes + i * len, fname, what);
        lua_pop(L, 1);
    }
    *B = n;
    return codes;
}

static void push_code_table(lua_State *L, nf_space_id s, const uint8_t *code)
{
    int len = nf_space_code_len(s);
    lua_createtable(L, len, 0);
    for (int i = 0; i < len; i++) {
        lua_pushinteger(L, code[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_string(lua_State *L, nf_space_id s, const uint8_t *code)
{
    char buf[NF_SPACE_MAX_STRING];
    nf_space_format(s, code, buf, sizeof buf);
    lua_pushstring(L, buf);
}

/* space.parse(name, str) -> code table | nil, message */
static int l_parse(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    size_t n;
    const char *str = luaL_checklstring(L, 2, &n);
    uint8_t code[NF_SPACE_MAX_CODE];
    nf_err e;
    if (nf_space_parse_n(s, str, n, code, &e) != NF_OK) return nf_lua_fail(L, &e);
    push_code_table(L, s, code);
    return 1;
}

/* space.format(name, code) -> canonical arch string */
static int l_format(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    uint8_t code[NF_SPACE_MAX_CODE];
    read_code(L, 2, s, code, "format", "code");
    push_string(L, s, code);
    return 1;
}

/* space.info(name) -> {name, code_len, nodes, vocab = {...}, choices = {...}, size, feature_dim, datasets = {...}} */
static int l_info(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    lua_newtable(L);
    lua_pushstring(L, nf_space_name(s));
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, nf_space_code_len(s));
    lua_setfield(L, -2, "code_len");
    lua_pushinteger(L, nf_space_nodes(s));
    lua_setfield(L, -2, "nodes");
    lua_pushinteger(L, nf_space_feature_dim(s));
    lua_setfield(L, -2, "feature_dim");
    if (s == NF_SPACE_NB201) lua_pushinteger(L, NF_NB201_SIZE);
    else lua_pushnumber(L, nf_space_size(s));
    lua_setfield(L, -2, "size");
    lua_newtable(L);
    for (int v = 0; v < nf_space_vocab(s); v++) {
        lua_pushstring(L, nf_space_vocab_name(s, v));
        lua_rawseti(L, -2, v + 1);
    }
    lua_setfield(L, -2, "vocab");
    lua_newtable(L);
    for (int c = 0; c < nf_space_n_choices(s); c++) {
        lua_pushstring(L, nf_space_choice_name(s, c));
        lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "choices");
    lua_newtable(L);
    for (int d = 0; d < nf_space_n_datasets(s); d++) {
        lua_pushstring(L, nf_space_dataset_name(s, d));
        lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "datasets");
    return 1;
}

/* space.graphs(name, list, flags) -> ops Tensor(B,N), adj Tensor(B,N,N) */
static int l_graphs(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    int64_t B;
    const uint8_t *codes = read_codes(L, 2, s, &B, "graphs");
    int flags = (int)luaL_optinteger(L, 3, 0);
    int64_t N = nf_space_nodes(s);
    int64_t so[2] = {B, N}, sa[3] = {B, N, N};
    nf_lua_tensor *ops = nf_lua_tensor_new(L, 2, so);
    nf_lua_tensor *adj = nf_lua_tensor_new(L, 3, sa);
    nf_err e;
    if (nf_space_graphs(s, codes, B, flags, NULL, ops->t.data, adj->t.data, &e) != NF_OK) return nf_lua_raise(L, &e);
    return 2;
}

/* space.codes(name, list) -> Tensor(B × code_len) of the choice ids (0-based) of every architecture */
static int l_codes(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    int64_t B;
    const uint8_t *codes = read_codes(L, 2, s, &B, "codes");
    int len = nf_space_code_len(s);
    int64_t shape[2] = {B, len};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    for (int64_t i = 0; i < B * len; i++) out->t.data[i] = (float)codes[i];
    return 1;
}

/* space.canonical(name, list) -> {canonical arch strings}: every entry parsed once and formatted (raises, naming
 * the entry, on a malformed one) */
static int l_canonical(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    int64_t B;
    const uint8_t *codes = read_codes(L, 2, s, &B, "canonical");
    int len = nf_space_code_len(s);
    lua_createtable(L, (int)(B < INT32_MAX ? B : 0), 0);
    char buf[NF_SPACE_MAX_STRING];
    for (int64_t i = 0; i < B; i++) {
        nf_space_format(s, codes + i * len, buf, sizeof buf);
        lua_pushstring(L, buf);
        lua_rawseti(L, -2, (lua_Integer)(i + 1));
    }
    return 1;
}

static int check_dataset(lua_State *L, nf_space_id s, int idx, const char *fname)
{
    const char *name = luaL_optstring(L, idx, NULL);
    int d = nf_space_dataset(s, name);
    if (d < 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int i = 0; i < nf_space_n_datasets(s); i++) {
            if (i) luaL_addstring(&b, ", ");
            luaL_addstring(&b, nf_space_dataset_name(s, i));
        }
        luaL_pushresult(&b);
        luaL_error(L, "nasflat: %s: unknown %s dataset '%s' (expected %s)", fname, nf_space_name(s), name,
                   lua_tostring(L, -1));
    }
    return d;
}

/* space.cost(name, list, dataset) -> params Tensor(B) (MB), flops Tensor(B) (M) */
static int l_cost(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    int d = check_dataset(L, s, 3, "cost");
    int64_t B;
    const uint8_t *codes = read_codes(L, 2, s, &B, "cost");
    int len = nf_space_code_len(s);
    nf_lua_tensor *P = nf_lua_tensor_new(L, 1, &B);
    nf_lua_tensor *F = nf_lua_tensor_new(L, 1, &B);
    for (int64_t i = 0; i < B; i++) {
        double p, f;
        nf_err e;
        if (nf_space_cost(s, codes + i * len, d, &p, &f, &e) != NF_OK) return nf_lua_raise(L, &e);
        P->t.data[i] = (float)p;
        F->t.data[i] = (float)f;
    }
    return 2;
}

/* space.cost1(name, code, dataset) -> params (MB), flops (M) as doubles */
static int l_cost1(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    int d = check_dataset(L, s, 3, "cost");
    uint8_t code[NF_SPACE_MAX_CODE];
    read_code(L, 2, s, code, "cost", "code");
    double p, f;
    nf_err e;
    if (nf_space_cost(s, code, d, &p, &f, &e) != NF_OK) return nf_lua_raise(L, &e);
    lua_pushnumber(L, p);
    lua_pushnumber(L, f);
    return 2;
}

/* space.features(name, list) -> Tensor(B, F) */
static int l_features(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    int64_t B;
    const uint8_t *codes = read_codes(L, 2, s, &B, "struct_features");
    int64_t shape[2] = {B, nf_space_feature_dim(s)};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err e;
    if (nf_space_struct_features(s, codes, B, out->t.data, &e) != NF_OK) return nf_lua_raise(L, &e);
    return 1;
}

/* The arguments of the per-layer feature functions: (name, list, dataset, live_only). */
typedef struct {
    nf_space_id s;
    int64_t B;
    const uint8_t *codes;
    int dataset, live_only;
} layer_args;

static layer_args read_layer_args(lua_State *L, const char *fname)
{
    layer_args a;
    a.s = check_space(L, 1);
    a.codes = read_codes(L, 2, a.s, &a.B, fname);
    a.dataset = check_dataset(L, a.s, 3, fname);
    a.live_only = lua_toboolean(L, 4);
    return a;
}

/* space.phys_features(name, list, dataset, live_only) -> Tensor(B, NF_PHYS_DIM) */
static int l_phys_features(lua_State *L)
{
    layer_args a = read_layer_args(L, "phys_features");
    int64_t shape[2] = {a.B, NF_PHYS_DIM};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err e;
    if (nf_space_phys_features(a.s, a.codes, a.B, a.dataset, a.live_only, out->t.data, &e) != NF_OK)
        return nf_lua_raise(L, &e);
    return 1;
}

/* space.roof_features(name, list, dataset, live_only[, variant]) -> Tensor(B, nf_space_roof_dim(flags));
 * variant: nil or "plain" (flags 0), "weights" (NF_ROOF_WEIGHTS), "floors" (NF_ROOF_FLOORS). */
static int l_roof_features(lua_State *L)
{
    static const char *const variants[] = {"plain", "weights", "floors", NULL};
    static const int flag_of[] = {0, NF_ROOF_WEIGHTS, NF_ROOF_FLOORS};
    int flags = flag_of[luaL_checkoption(L, 5, "plain", variants)];
    layer_args a = read_layer_args(L, "roof_features");
    int64_t shape[2] = {a.B, nf_space_roof_dim(flags)};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err e;
    if (nf_space_roof_features_ex(a.s, a.codes, a.B, a.dataset, a.live_only, flags, out->t.data, &e) != NF_OK)
        return nf_lua_raise(L, &e);
    return 1;
}

static int push_numbers(lua_State *L, const double *v, int n)
{
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) {
        lua_pushnumber(L, v[j]);
        lua_rawseti(L, -2, j + 1);
    }
    return 1;
}

/* space.roof_balances() -> the machine balances (FLOPs per byte) of the roof feature columns 2.. */
static int l_roof_balances(lua_State *L) { return push_numbers(L, NF_ROOF_BALANCE, NF_ROOF_N_BALANCES); }

/* space.roof_floors() -> the per-layer floors (MB) of the "floors" variant's columns */
static int l_roof_floors(lua_State *L) { return push_numbers(L, NF_ROOF_FLOOR_MB, NF_ROOF_N_FLOORS); }

/* space.layers(name, code, dataset) -> list of {kind=, cin=, ...} */
static int l_layers(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    uint8_t code[NF_SPACE_MAX_CODE];
    read_code(L, 2, s, code, "layers", "code");
    int d = check_dataset(L, s, 3, "layers");
    nf_layer *ls = lua_newuserdatauv(L, sizeof(nf_layer) * NF_SPACE_MAX_LAYERS, 0);
    int n;
    nf_err e;
    if (nf_space_layers(s, code, d, ls, NF_SPACE_MAX_LAYERS, &n, &e) != NF_OK) return nf_lua_raise(L, &e);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const nf_layer *l = &ls[i];
        lua_createtable(L, 0, 19);
        lua_pushstring(L, nf_layer_kind_name(l->kind));
        lua_setfield(L, -2, "kind");
#define INT_FIELD(f) (lua_pushinteger(L, l->f), lua_setfield(L, -2, #f))
#define NUM_FIELD(f) (lua_pushnumber(L, l->f), lua_setfield(L, -2, #f))
        INT_FIELD(cin); INT_FIELD(cout); INT_FIELD(hin); INT_FIELD(hout);
        INT_FIELD(kernel); INT_FIELD(stride); INT_FIELD(groups); INT_FIELD(arity); INT_FIELD(arity_nonzero);
        NUM_FIELD(flops); NUM_FIELD(params); NUM_FIELD(in_bytes); NUM_FIELD(out_bytes);
#undef INT_FIELD
#undef NUM_FIELD
        lua_pushboolean(L, l->relu_in); lua_setfield(L, -2, "relu_in");
        lua_pushboolean(L, l->bn); lua_setfield(L, -2, "bn");
        lua_pushboolean(L, l->relu_out); lua_setfield(L, -2, "relu_out");
        lua_pushboolean(L, l->live); lua_setfield(L, -2, "live");
        /* 1-based cell/layer number in Lua, nil for the fixed parts */
        if (l->block >= 0) { lua_pushinteger(L, l->block + 1); lua_setfield(L, -2, "block"); }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* space.sample(name, rng, n) -> list of n distinct arch strings */
static int l_sample(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    nf_rng *r = nf_lua_check_rng(L, 2);
    lua_Integer n = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n >= 0, 3, "count must be >= 0");
    if (s == NF_SPACE_NB201 && n > NF_NB201_SIZE)
        return luaL_error(L, "nasflat: sample: cannot draw %I distinct nb201 architectures from %d", n, NF_NB201_SIZE);
    if (n > ((lua_Integer)1 << 26)) return luaL_error(L, "nasflat: sample: %I architectures is too many for one list", n);
    int len = nf_space_code_len(s);
    uint8_t *codes = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * (size_t)len, 0);
    nf_err e;
    if (nf_space_sample(s, r, n, codes, &e) != NF_OK) return nf_lua_raise(L, &e);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        push_string(L, s, codes + i * len);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* space.index(name, code) -> 1-based enumeration index (NB201 only) */
static int l_index(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    if (s != NF_SPACE_NB201) return luaL_error(L, "nasflat: index: only nb201 is enumerable (fbnet has 9^22 architectures)");
    uint8_t code[NF_SPACE_MAX_CODE];
    read_code(L, 2, s, code, "index", "code");
    lua_pushinteger(L, nf_space_index(s, code) + 1);
    return 1;
}

/* space.at(name, i) -> arch string of the 1-based enumeration index i (NB201 only) */
static int l_at(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    if (s != NF_SPACE_NB201) return luaL_error(L, "nasflat: at: only nb201 is enumerable (fbnet has 9^22 architectures)");
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || i > NF_NB201_SIZE) return luaL_error(L, "nasflat: at: index %I out of range 1..%d", i, NF_NB201_SIZE);
    uint8_t code[NF_SPACE_MAX_CODE];
    nf_space_from_index(s, i - 1, code, NULL);
    push_string(L, s, code);
    return 1;
}

/* space.enumerate(name) -> list of all arch strings in enumeration order (NB201 only) */
static int l_enumerate(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    if (s != NF_SPACE_NB201)
        return luaL_error(L, "nasflat: enumerate: fbnet has 9^22 architectures and cannot be enumerated (use sample)");
    lua_createtable(L, NF_NB201_SIZE, 0);
    for (int64_t i = 0; i < NF_NB201_SIZE; i++) {
        uint8_t code[NF_SPACE_MAX_CODE];
        nf_space_from_index(s, i, code, NULL);
        push_string(L, s, code);
        lua_rawseti(L, -2, (lua_Integer)(i + 1));
    }
    return 1;
}

/* ------------------------------------------------------------------ zoo
 * core.zoo.devices() -> {{name=, class=, about=}, ...} in zoo order */
static int l_zoo_devices(lua_State *L)
{
    int n = nf_zoo_n_devices();
    lua_createtable(L, n, 0);
    for (int d = 0; d < n; d++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, nf_zoo_device_name(d));
        lua_setfield(L, -2, "name");
        lua_pushstring(L, nf_zoo_device_class(d));
        lua_setfield(L, -2, "class");
        lua_pushstring(L, nf_zoo_device_about(d));
        lua_setfield(L, -2, "about");
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

/* Push nil, "unknown zoo device 'x' (known: ...)"; returns 2. */
static int unknown_device(lua_State *L, const char *name)
{
    luaL_Buffer b;
    lua_pushnil(L);
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "unknown zoo device '%s' (known: ", name);
    luaL_addvalue(&b);
    for (int d = 0; d < nf_zoo_n_devices(); d++) {
        if (d) luaL_addstring(&b, ", ");
        luaL_addstring(&b, nf_zoo_device_name(d));
    }
    luaL_addstring(&b, ")");
    luaL_pushresult(&b);
    return 2;
}

/* core.zoo.latency(space, seed, devices|nil, n_archs, noise) -> Latency | nil, message */
static int l_zoo_latency(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    nf_zoo_opts o = nf_zoo_opts_default(s, (uint64_t)luaL_checkinteger(L, 2));
    int idx[64];
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_Integer n = luaL_len(L, 3);
        if (n < 1 || n > nf_zoo_n_devices())
            return luaL_error(L, "nasflat: zoo.latency: devices must list 1..%d device names (got %I)", nf_zoo_n_devices(), n);
        for (lua_Integer i = 0; i < n; i++) {
            if (lua_geti(L, 3, i + 1) != LUA_TSTRING)
                return luaL_error(L, "nasflat: zoo.latency: devices entry %I is not a name", i + 1);
            int d = nf_zoo_device_index(lua_tostring(L, -1));
            if (d < 0) return unknown_device(L, lua_tostring(L, -1));
            lua_pop(L, 1);
            idx[i] = d;
        }
        o.devices = idx;
        o.n_devices = (int)n;
    }
    o.n_archs = (int64_t)luaL_optinteger(L, 4, 0);
    o.noise = lua_isnoneornil(L, 5) ? 1 : lua_toboolean(L, 5);
    char origin[96];
    snprintf(origin, sizeof origin, "synthetic zoo v%d (%s, seed %lld)", NF_ZOO_VERSION, nf_space_name(s),
             (long long)o.seed);
    nf_latency *lat = nf_lua_latency_new(L);
    nf_err e;
    if (nf_zoo_latency(&o, lat, &e) != NF_OK) return nf_lua_raise(L, &e);
    nf_lua_latency_done(L, -1, origin);
    return 1;
}

/* core.zoo.latency_one(space, arch, device) -> noise-free ms (NaN if the device does not run it) | nil, message */
static int l_zoo_latency_one(lua_State *L)
{
    nf_space_id s = check_space(L, 1);
    uint8_t code[NF_SPACE_MAX_CODE];
    read_code(L, 2, s, code, "zoo.latency_one", "arch");
    const char *name = luaL_checkstring(L, 3);
    int d = nf_zoo_device_index(name);
    if (d < 0) return unknown_device(L, name);
    double ms;
    nf_err e;
    if (nf_zoo_latency_one(s, code, d, &ms, &e) != NF_OK) return nf_lua_raise(L, &e);
    lua_pushnumber(L, ms);
    return 1;
}

void nf_lua_space_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"parse", l_parse}, {"format", l_format}, {"info", l_info}, {"graphs", l_graphs}, {"codes", l_codes},
        {"canonical", l_canonical},
        {"cost", l_cost}, {"cost1", l_cost1}, {"features", l_features}, {"phys_features", l_phys_features},
        {"roof_features", l_roof_features}, {"roof_balances", l_roof_balances},
        {"roof_floors", l_roof_floors}, {"layers", l_layers},
        {"sample", l_sample}, {"index", l_index}, {"at", l_at}, {"enumerate", l_enumerate},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_pushinteger(L, NF_GRAPH_FBNET_IDENTITY);
    lua_setfield(L, -2, "FBNET_IDENTITY");
    lua_pushinteger(L, NF_GRAPH_NB201_RAW);
    lua_setfield(L, -2, "NB201_RAW");
    lua_pushinteger(L, NF_GRAPH_DEAD_AS_NONE);
    lua_setfield(L, -2, "DEAD_AS_NONE");
    lua_setfield(L, -2, "space");
    static const luaL_Reg zoo[] = {
        {"devices", l_zoo_devices}, {"latency", l_zoo_latency}, {"latency_one", l_zoo_latency_one}, {NULL, NULL},
    };
    luaL_newlib(L, zoo);
    lua_pushinteger(L, NF_ZOO_VERSION);
    lua_setfield(L, -2, "VERSION");
    lua_pushinteger(L, NF_ZOO_FBNET_ARCHS);
    lua_setfield(L, -2, "FBNET_ARCHS");
    lua_setfield(L, -2, "zoo");
}
