/* lua_engine.c — nasflat.core.engine: the inference engine of nf_engine.c for Lua.
 *   engine.new{space = "nb201"|"fbnet", arch = STRING, batch = 1, seed = 0, dw_gemm = false, count_only = false}
 *       -> Engine | nil, message (a malformed arch string is a failure of the input: nil, message)
 *   e:run()                                   one forward pass (raises on an internal failure)
 *   e:bench{warmup = 5, repeats = 20}         -> wall ms, CPU ms: two lists, one entry per timed run
 *   e:profile{repeats = 1}                    -> list of seconds per op (summed over the repeats)
 *   e:layers()                                -> list of {kind, cin, cout, hin, hout, kernel, stride, groups, arity,
 *                                                 relu_in, bn, relu_out, block, flops, params}
 *   e:info()                                  -> {ops, flops, params, conv_macs, bytes, batch, classes, space}
 *   e:output()                                -> list of batch × classes logits (after a run)
 *   e:export(path)                            -> true | nil, message
 *   e:free() (idempotent; __gc, __close), tostring(e)
 *   engine.blas_config()                      -> OpenBLAS's configuration string (version, target, threading)
 */
#include <string.h>
#include "lua_nf.h"
#include "nf_engine.h"

#define NF_ENGINE_MT "nasflat.Engine"

typedef struct {
    nf_engine *e;
    int closed;
} lua_engine;

static lua_engine *check_engine(lua_State *L, int idx)
{
    lua_engine *u = luaL_checkudata(L, idx, NF_ENGINE_MT);
    if (u->closed) luaL_error(L, "nasflat: attempt to use a closed Engine");
    return u;
}

static int engine_free(lua_State *L)
{
    lua_engine *u = luaL_checkudata(L, 1, NF_ENGINE_MT);
    if (!u->closed) {
        nf_engine_free(u->e);
        u->e = NULL;
        u->closed = 1;
    }
    return 0;
}

static int engine_tostring(lua_State *L)
{
    lua_engine *u = luaL_checkudata(L, 1, NF_ENGINE_MT);
    if (u->closed) { lua_pushliteral(L, "nasflat.Engine (closed)"); return 1; }
    lua_pushfstring(L, "nasflat.Engine(%d ops, batch %d, %f MFLOPs, %f M params, %f MiB)", nf_engine_n_ops(u->e),
                    nf_engine_batch(u->e), (lua_Number)(nf_engine_flops(u->e) / 1e6),
                    (lua_Number)(nf_engine_params(u->e) / 1e6), (lua_Number)nf_engine_bytes(u->e) / 1048576.0);
    return 1;
}

static int l_new(lua_State *L)
{
    static const char *const allowed[] = {"space", "arch", "batch", "seed", "dw_gemm", "count_only", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    nf_lua_check_options(L, 1, "engine.new", allowed);
    const char *sname = nf_lua_opt_string(L, 1, "space", NULL);
    if (!sname) luaL_error(L, "engine.new: option 'space' is required (nb201 or fbnet)");
    int s = nf_space_from_name(sname);
    if (s < 0) luaL_error(L, "engine.new: unknown space '%s' (nb201 or fbnet)", sname);
    lua_getfield(L, 1, "arch");
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "engine.new: option 'arch' must be a string (got %s)", luaL_typename(L, -1));
    size_t alen;
    const char *arch = lua_tolstring(L, -1, &alen);
    lua_Integer batch = nf_lua_opt_integer(L, 1, "batch", 1);
    if (batch < 1 || batch > 4096) luaL_error(L, "engine.new: option 'batch' must be in 1..4096 (got %I)", batch);
    lua_Integer seed = nf_lua_opt_integer(L, 1, "seed", 0);
    nf_engine_opts o = {(int)batch, (uint64_t)seed, nf_lua_opt_boolean(L, 1, "dw_gemm", 0),
                        nf_lua_opt_boolean(L, 1, "count_only", 0)};
    uint8_t code[NF_SPACE_MAX_CODE];
    nf_err err;
    if (alen >= NF_SPACE_MAX_PARSE) {
        nf_seterr(&err, NF_EFORMAT, "%s arch string: too long (%zu bytes)", nf_space_name((nf_space_id)s), alen);
        return nf_lua_fail(L, &err);
    }
    if (nf_space_parse_n((nf_space_id)s, arch, alen, code, &err)) return nf_lua_fail(L, &err);
    lua_engine *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    u->closed = 1;   /* no metatable until the engine exists */
    if (nf_engine_new((nf_space_id)s, code, &o, &u->e, &err)) {
        if (err.code == NF_ENOMEM) return nf_lua_fail(L, &err);
        return nf_lua_raise(L, &err);
    }
    u->closed = 0;
    luaL_setmetatable(L, NF_ENGINE_MT);
    nf_lua_account(L, nf_engine_bytes(u->e));
    return 1;
}

static int engine_run(lua_State *L)
{
    lua_engine *u = check_engine(L, 1);
    nf_err err;
    if (nf_engine_run(u->e, &err)) return nf_lua_raise(L, &err);
    return 0;
}

static int engine_bench(lua_State *L)
{
    static const char *const allowed[] = {"warmup", "repeats", NULL};
    lua_engine *u = check_engine(L, 1);
    nf_lua_check_options(L, 2, "Engine:bench", allowed);
    lua_Integer warmup = nf_lua_opt_integer(L, 2, "warmup", 5), repeats = nf_lua_opt_integer(L, 2, "repeats", 20);
    if (warmup < 0 || warmup > 1000000) luaL_error(L, "Engine:bench: option 'warmup' must be in 0..1000000 (got %I)", warmup);
    if (repeats < 1 || repeats > 1000000) luaL_error(L, "Engine:bench: option 'repeats' must be in 1..1000000 (got %I)", repeats);
    double *ms = lua_newuserdatauv(L, 2 * sizeof(double) * (size_t)repeats, 0);   /* before the timed runs */
    nf_err err;
    if (nf_engine_bench(u->e, (int)warmup, (int)repeats, ms, ms + repeats, &err)) return nf_lua_raise(L, &err);
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, (int)repeats, 0);
        for (lua_Integer i = 0; i < repeats; i++) {
            lua_pushnumber(L, ms[k * repeats + i]);
            lua_rawseti(L, -2, i + 1);
        }
    }
    return 2;
}

static int engine_profile(lua_State *L)
{
    static const char *const allowed[] = {"repeats", NULL};
    lua_engine *u = check_engine(L, 1);
    nf_lua_check_options(L, 2, "Engine:profile", allowed);
    lua_Integer repeats = nf_lua_opt_integer(L, 2, "repeats", 1);
    if (repeats < 1 || repeats > 1000000) luaL_error(L, "Engine:profile: option 'repeats' must be in 1..1000000 (got %I)", repeats);
    int n = nf_engine_n_ops(u->e);
    double *sec = lua_newuserdatauv(L, sizeof(double) * (size_t)n, 0);
    memset(sec, 0, sizeof(double) * (size_t)n);
    nf_err err;
    for (lua_Integer r = 0; r < repeats; r++)
        if (nf_engine_run_profiled(u->e, sec, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, sec[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static void setint(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void setnum(lua_State *L, const char *k, lua_Number v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static int engine_layers(lua_State *L)
{
    lua_engine *u = check_engine(L, 1);
    int n = nf_engine_n_ops(u->e);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const nf_layer *l = nf_engine_op(u->e, i);
        lua_createtable(L, 0, 16);
        lua_pushstring(L, nf_layer_kind_name(l->kind));
        lua_setfield(L, -2, "kind");
        setint(L, "cin", l->cin);
        setint(L, "cout", l->cout);
        setint(L, "hin", l->hin);
        setint(L, "hout", l->hout);
        setint(L, "kernel", l->kernel);
        setint(L, "stride", l->stride);
        setint(L, "groups", l->groups);
        setint(L, "arity", l->arity);
        lua_pushboolean(L, l->relu_in);   /* booleans, as space:layers gives them */
        lua_setfield(L, -2, "relu_in");
        lua_pushboolean(L, l->bn);
        lua_setfield(L, -2, "bn");
        lua_pushboolean(L, l->relu_out);
        lua_setfield(L, -2, "relu_out");
        setint(L, "block", l->block);
        setnum(L, "flops", l->flops);
        setnum(L, "params", l->params);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int engine_info(lua_State *L)
{
    lua_engine *u = check_engine(L, 1);
    lua_createtable(L, 0, 8);
    setint(L, "ops", nf_engine_n_ops(u->e));
    setnum(L, "flops", nf_engine_flops(u->e));
    setnum(L, "params", nf_engine_params(u->e));
    setnum(L, "conv_macs", nf_engine_conv_macs(u->e));
    setint(L, "bytes", (lua_Integer)nf_engine_bytes(u->e));
    setint(L, "batch", nf_engine_batch(u->e));
    setint(L, "classes", nf_engine_classes(u->e));
    return 1;
}

static int engine_output(lua_State *L)
{
    lua_engine *u = check_engine(L, 1);
    const float *y = nf_engine_output(u->e);
    if (!y) luaL_error(L, "Engine:output: the engine was built with count_only");
    int n = nf_engine_batch(u->e) * nf_engine_classes(u->e);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, y[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int engine_export(lua_State *L)
{
    lua_engine *u = check_engine(L, 1);
    const char *path = luaL_checkstring(L, 2);
    nf_err err;
    if (nf_engine_export(u->e, path, &err)) {
        if (err.code == NF_ESTATE) return nf_lua_raise(L, &err);
        return nf_lua_fail(L, &err);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* engine.blas_config() -> OpenBLAS's configuration string */
static int l_blas_config(lua_State *L)
{
    lua_pushstring(L, nf_blas_config());
    return 1;
}

void nf_lua_engine_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"run", engine_run}, {"bench", engine_bench}, {"profile", engine_profile}, {"layers", engine_layers},
        {"info", engine_info}, {"output", engine_output}, {"export", engine_export}, {"free", engine_free},
        {NULL, NULL},
    };
    static const luaL_Reg fns[] = {{"new", l_new}, {"blas_config", l_blas_config}, {NULL, NULL}};
    luaL_newmetatable(L, NF_ENGINE_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, engine_free);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, engine_free);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, engine_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "engine");
}
