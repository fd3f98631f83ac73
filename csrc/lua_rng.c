/* lua_rng.c — nasflat.Rng userdata: explicit random state (xoshiro256**). */
#include <string.h>
#include "lua_nf.h"

typedef struct {
    nf_rng r;
    int closed;
} nf_lua_rng;

static uint64_t seed_arg(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return 0;
    int ok;
    lua_Integer s = lua_tointegerx(L, idx, &ok);
    if (!ok) luaL_argerror(L, idx, "seed must be an integer");
    return (uint64_t)s;
}

nf_rng *nf_lua_push_rng(lua_State *L, uint64_t seed)
{
    nf_lua_rng *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->closed = 0;
    nf_rng_seed(&u->r, seed);
    luaL_setmetatable(L, NF_RNG_MT);
    return &u->r;
}

nf_rng *nf_lua_check_rng(lua_State *L, int idx)
{
    nf_lua_rng *u = luaL_checkudata(L, idx, NF_RNG_MT);
    if (u->closed) luaL_error(L, "nasflat: attempt to use a closed rng");
    return &u->r;
}

static int l_new(lua_State *L)
{
    nf_lua_push_rng(L, seed_arg(L, 1));
    return 1;
}

static int l_seed(lua_State *L)
{
    nf_rng_seed(nf_lua_check_rng(L, 1), seed_arg(L, 2));
    return 0;
}

/* rng:uniform() in [0,1); rng:uniform(n) integer in 1..n; rng:uniform(a, b) in [a,b) */
static int l_uniform(lua_State *L)
{
    nf_rng *r = nf_lua_check_rng(L, 1);
    if (lua_isnoneornil(L, 2)) { lua_pushnumber(L, nf_rng_uniform(r)); return 1; }
    if (lua_isnoneornil(L, 3)) {
        lua_Integer n = luaL_checkinteger(L, 2);
        luaL_argcheck(L, n >= 1, 2, "upper bound must be >= 1");
        lua_pushinteger(L, (lua_Integer)nf_rng_below(r, (uint64_t)n) + 1);
        return 1;
    }
    lua_Number a = luaL_checknumber(L, 2), b = luaL_checknumber(L, 3);
    lua_pushnumber(L, a + (b - a) * nf_rng_uniform(r));
    return 1;
}

static int l_normal(lua_State *L)
{
    nf_rng *r = nf_lua_check_rng(L, 1);
    lua_Number mu = luaL_optnumber(L, 2, 0.0), sd = luaL_optnumber(L, 3, 1.0);
    lua_pushnumber(L, mu + sd * nf_rng_normal(r));
    return 1;
}

static int push_index_list(lua_State *L, const int64_t *v, int64_t n)
{
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, v[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* rng:permutation(n) -> shuffled {1..n} */
static int l_permutation(lua_State *L)
{
    nf_rng *r = nf_lua_check_rng(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= (1 << 28), 2, "size out of range");
    int64_t *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);
    nf_rng_permutation(r, v, n);
    return push_index_list(L, v, n);
}

/* rng:sample(n, k) -> k distinct values from 1..n, in draw order */
static int l_sample(lua_State *L)
{
    nf_rng *r = nf_lua_check_rng(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2), k = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n >= 0 && n <= (1 << 28), 2, "population size out of range");
    if (k < 0 || k > n) luaL_error(L, "nasflat: sample: cannot draw %I distinct values from %I", k, n);
    int64_t *scratch = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *scratch, 0);
    int64_t *out = lua_newuserdatauv(L, (size_t)(k ? k : 1) * sizeof *out, 0);
    nf_err err;
    if (nf_rng_sample(r, n, k, out, scratch, &err)) return nf_lua_raise(L, &err);
    return push_index_list(L, out, k);
}

/* rng:shuffle(t) shuffles a Lua sequence in place and returns it */
static int l_shuffle(lua_State *L)
{
    nf_rng *r = nf_lua_check_rng(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    for (lua_Integer i = n; i > 1; i--) {
        lua_Integer j = (lua_Integer)nf_rng_below(r, (uint64_t)i) + 1;
        lua_geti(L, 2, i);
        lua_geti(L, 2, j);
        lua_seti(L, 2, i);
        lua_seti(L, 2, j);
    }
    lua_settop(L, 2);
    return 1;
}

static int l_clone(lua_State *L)
{
    nf_rng *r = nf_lua_check_rng(L, 1);
    nf_lua_rng *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->r = *r;
    u->closed = 0;
    luaL_setmetatable(L, NF_RNG_MT);
    return 1;
}

/* nasflat.core.derive_seed(seed, stream) -> a child seed */
static int l_derive(lua_State *L)
{
    lua_Integer s = luaL_checkinteger(L, 1), k = luaL_checkinteger(L, 2);
    /* 53 bits: exact in a double, so seeds survive JSON */
    lua_pushinteger(L, (lua_Integer)(nf_rng_derive((uint64_t)s, (uint64_t)k) >> 11));
    return 1;
}

static int l_tostring(lua_State *L)
{
    nf_lua_rng *u = luaL_checkudata(L, 1, NF_RNG_MT);
    if (u->closed) lua_pushstring(L, "nasflat.Rng (closed)");
    else lua_pushfstring(L, "nasflat.Rng(%p)", (void *)u);
    return 1;
}

/* The state lives inside the userdata: free only marks it closed (idempotent); __gc has nothing to release. */
static int l_free(lua_State *L)
{
    nf_lua_rng *u = luaL_checkudata(L, 1, NF_RNG_MT);
    u->closed = 1;
    return 0;
}

void nf_lua_rng_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"seed", l_seed}, {"uniform", l_uniform}, {"normal", l_normal}, {"permutation", l_permutation},
        {"sample", l_sample}, {"shuffle", l_shuffle}, {"clone", l_clone}, {"free", l_free}, {NULL, NULL},
    };
    luaL_newmetatable(L, NF_RNG_MT);
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, l_free);
    lua_setfield(L, -2, "__close");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "Rng");
    lua_pushcfunction(L, l_derive);
    lua_setfield(L, -2, "derive_seed");
}
