/* lua_core.c — luaopen_nasflat_core: one table, filled by each binding file's *_open. */
#include <stdio.h>
#include <unistd.h>
#include "lua_nf.h"
#include "nf_frame.h"
#include "nf_util.h"

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

static int l_now(lua_State *L)
{
    lua_pushnumber(L, nf_now());
    return 1;
}

/* core.isatty(fd) for 0, 1, 2 */
static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "fd must be 0, 1 or 2");
    lua_pushboolean(L, isatty((int)fd));
    return 1;
}

/* core.crc32_file(path) -> hex string, size | nil, msg */
static int l_crc32_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uint32_t crc;
    int64_t size;
    nf_err err;
    if (nf_crc32_file(path, &crc, &size, &err)) return nf_lua_fail(L, &err);
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    lua_pushstring(L, hex);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

/* core.write_file(path, content) -> true | nil, msg: written to a temporary file beside it, synced, renamed into
 * place; an existing target that is not a regular file is refused (nf_write_file_atomic) */
static int l_write_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    nf_err err;
    if (nf_write_file_atomic(path, s, n, &err)) return nf_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.crc32(string) -> hex string */
static int l_crc32(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)nf_crc32(0, s, n));
    lua_pushstring(L, hex);
    return 1;
}

int luaopen_nasflat_core(lua_State *L);
int luaopen_nasflat_core(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"set_threads", l_set_threads},
        {"get_threads", l_get_threads},
        {"now", l_now},
        {"isatty", l_isatty},
        {"crc32_file", l_crc32_file},
        {"crc32", l_crc32},
        {"write_file", l_write_file},
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
    nf_lua_stats_open(L);
    nf_lua_nn_open(L);
    nf_lua_vae_open(L);
    nf_lua_taskgen_open(L);
    nf_lua_search_open(L);
    nf_lua_engine_open(L);
    nf_lua_mlp_open(L);
    return 1;
}
