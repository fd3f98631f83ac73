/* lua_core.c — luaopen_nasflat_core: one table, filled by each binding file's *_open. */
#include "lua_nf.h"

static int l_set_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 256, 1, "thread count must be in 1..256");
    nf_blas_set_threads((int)n);
    return 0;
}

static int l_get_threads(lua_State *L)
{
    lua_pushinteger(L, nf_blas_get_threads());
    return 1;
}

int luaopen_nasflat_core(lua_State *L);
int luaopen_nasflat_core(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"set_threads", l_set_threads},
        {"get_threads", l_get_threads},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_pushstring(L, NF_VERSION);
    lua_setfield(L, -2, "version");
    nf_lua_tensor_open(L);
    nf_lua_rng_open(L);
    nf_lua_data_open(L);
    nf_lua_space_open(L);
    nf_lua_metrics_open(L);
    nf_lua_nn_open(L);
    return 1;
}
