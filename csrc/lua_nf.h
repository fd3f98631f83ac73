/* lua_nf.h — shared helpers for the lua_*.c binding files (the only files that include lua.h). */
#ifndef LUA_NF_H
#define LUA_NF_H

#include <lua.h>
#include <lauxlib.h>
#include "nf.h"

#define NF_TENSOR_MT "nasflat.Tensor"
#define NF_RNG_MT "nasflat.Rng"

/* A tensor userdata: header followed (when it owns) by its float data, so the
 * Lua GC sees the true size. A view keeps its parent alive in user value 1. */
typedef struct {
    nf_tensor t;
    int closed;
} nf_lua_tensor;

/* Raise a Lua error "nasflat: <msg>" (use for programmer errors). */
int nf_lua_raise(lua_State *L, const nf_err *err);
/* Push nil, message; returns 2 (use for failures of the world). */
int nf_lua_fail(lua_State *L, const nf_err *err);

/* Options tables. idx may be absent/nil (treated as empty). Raises
 * "<fname>: unknown option 'x' (allowed: a, b, c)" for unknown keys or non-string keys. */
void nf_lua_check_options(lua_State *L, int idx, const char *fname, const char *const allowed[]);
lua_Integer nf_lua_opt_integer(lua_State *L, int idx, const char *key, lua_Integer def);
lua_Number nf_lua_opt_number(lua_State *L, int idx, const char *key, lua_Number def);
int nf_lua_opt_boolean(lua_State *L, int idx, const char *key, int def);
const char *nf_lua_opt_string(lua_State *L, int idx, const char *key, const char *def);

/* Tensors. */
nf_lua_tensor *nf_lua_tensor_new(lua_State *L, int ndim, const int64_t *shape); /* pushes; zero-filled */
nf_tensor *nf_lua_check_tensor(lua_State *L, int idx);   /* raises on closed/wrong type */
nf_tensor *nf_lua_test_tensor(lua_State *L, int idx);    /* NULL if not an open tensor */
/* Copy a Lua sequence of numbers (or a table of tables for 2-D) into a new tensor (pushed). */
nf_tensor *nf_lua_tensor_from_table(lua_State *L, int idx);

/* RNG. */
nf_rng *nf_lua_check_rng(lua_State *L, int idx);
nf_rng *nf_lua_push_rng(lua_State *L, uint64_t seed);

/* Data (lua_data.c): the C objects inside nasflat.Latency / nasflat.Table userdata; raise on closed/wrong type. */
#include "nf_data.h"
nf_latency *nf_lua_check_latency(lua_State *L, int idx);
/* A new nasflat.Latency: nf_lua_latency_new pushes an empty userdata and returns its nf_latency to fill
 * (nf_latency_load, nf_latency_from_arrays...); on success call nf_lua_latency_done(L, idx, origin). */
nf_latency *nf_lua_latency_new(lua_State *L);
void nf_lua_latency_done(lua_State *L, int idx, const char *origin);
nf_table *nf_lua_check_table(lua_State *L, int idx);

/* Tell the GC of memory held by C outside Lua (large core objects; growth of one too): a full collection once such
 * memory since the last one passes the Lua heap or 64 MiB (lua_util.c says why). */
void nf_lua_account(lua_State *L, size_t bytes);

/* One *_open per binding file; each adds its functions to the table on top of the stack. */
void nf_lua_tensor_open(lua_State *L);
void nf_lua_rng_open(lua_State *L);
void nf_lua_data_open(lua_State *L);
void nf_lua_space_open(lua_State *L);
void nf_lua_metrics_open(lua_State *L);
void nf_lua_stats_open(lua_State *L);
void nf_lua_nn_open(lua_State *L);
void nf_lua_vae_open(lua_State *L);
void nf_lua_taskgen_open(lua_State *L);
void nf_lua_search_open(lua_State *L);
void nf_lua_engine_open(lua_State *L);
void nf_lua_mlp_open(lua_State *L);

#endif
