/* lua_vae.c — core.vae: the graph autoencoder (nasflat.Vae userdata, csrc/nf_vae.h), its gradient
 * check, the label-free encoding kernels (nf_enc.h), the encoding cache (nf_enccache.h) and mkdir -p
 * (nf_util.h). Columns side by side: core.hcat (lua_tensor.c).
 *
 *   core.vae.new{nodes=, vocab=, positions=true, hidden=64, layers=3, latent=32, batch=32,
 *                lr=1e-3, beta=0.005, seed=1} -> Vae   (parameters drawn from seed; training
 *                continues the same random stream)
 *   vae:train{ops=Tensor(B×N), adj=Tensor(B×N×N), rows=nil|{1-based}, epochs=1, on_epoch=nil}
 *       -> {loss per epoch}; on_epoch(epoch, loss) is called after each epoch
 *   vae:embed(ops, adj) -> Tensor(B×latent);  vae:accuracy(ops, adj[, rows]) -> {ops=, adj=, graph=, n=}
 *   vae:loss(ops, adj[, noise]) -> loss, {op=, adj=, kl=}
 *   vae:nparams(), vae:steps(), vae:config() -> table, vae:free() (idempotent; __gc, __close), tostring
 *   core.vae.gradcheck{B=3, nodes=5, vocab=4, hidden=6, layers=2, latent=3, seed=1, h=1e-3, sabotage=false}
 *       -> {aggregate=, adj_decoder=, op_decoder=, reparam_kl=, model=, model_dir=, checked=}
 *   core.vae.onehot(ops, first_node, n_pos, vocab_offset, n_choices) -> Tensor
 *   core.vae.nb201_paths(edge_ops Tensor(B×6)) -> Tensor(B×84)
 *   core.vae.scale(X, {"minmax"|"zscore"|"none", ...}) -> X (in place)
 *   core.vae.cache_write(path, {space=, hash=}, X) -> true | nil, msg
 *   core.vae.cache_read(path, {space=, hash=, rows=, dims=}) -> Tensor | nil, msg, "missing"|"corrupt"
 *   core.vae.mkdirs(path) -> true | nil, msg
 */
#include <string.h>
#include "lua_nf.h"
#include "nf_enc.h"
#include "nf_enccache.h"
#include "nf_util.h"
#include "nf_vae.h"

#define NF_VAE_MT "nasflat.Vae"

typedef struct {
    nf_vae *v;
    nf_rng rng;
    int closed;
} lua_vae;

static lua_vae *check_vae(lua_State *L, int idx)
{
    lua_vae *u = luaL_checkudata(L, idx, NF_VAE_MT);
    if (u->closed) luaL_error(L, "nasflat: attempt to use a closed Vae");
    return u;
}

static int vae_free(lua_State *L)
{
    lua_vae *u = luaL_checkudata(L, 1, NF_VAE_MT);
    if (!u->closed) {
        nf_vae_free(u->v);
        u->v = NULL;
        u->closed = 1;
    }
    return 0;
}

static int vae_tostring(lua_State *L)
{
    lua_vae *u = luaL_checkudata(L, 1, NF_VAE_MT);
    if (u->closed) { lua_pushliteral(L, "nasflat.Vae (closed)"); return 1; }
    const nf_vae_config *c = nf_vae_get_config(u->v);
    lua_pushfstring(L, "nasflat.Vae(%d nodes, vocab %d, %d GIN layers × %d, latent %d, %I parameters, %I steps)",
                    c->nodes, c->vocab, c->layers, c->hidden, c->latent, (lua_Integer)nf_vae_nparams(u->v),
                    (lua_Integer)nf_vae_steps(u->v));
    return 1;
}

static int l_new(lua_State *L)
{
    static const char *const allowed[] = {"nodes", "vocab", "positions", "skip", "hidden", "layers", "latent", "batch",
                                          "lr", "beta", "seed", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    nf_lua_check_options(L, 1, "vae.new", allowed);
    lua_Integer nodes = nf_lua_opt_integer(L, 1, "nodes", 0), vocab = nf_lua_opt_integer(L, 1, "vocab", 0);
    if (nodes < 1 || nodes > 64) luaL_error(L, "vae.new: option 'nodes' must be in 1..64 (got %I)", nodes);
    if (vocab < 1 || vocab > 256) luaL_error(L, "vae.new: option 'vocab' must be in 1..256 (got %I)", vocab);
    nf_vae_config c = nf_vae_config_default((int)nodes, (int)vocab);
    c.positions = nf_lua_opt_boolean(L, 1, "positions", c.positions);
    c.skip = nf_lua_opt_boolean(L, 1, "skip", c.skip);
    lua_Integer hidden = nf_lua_opt_integer(L, 1, "hidden", c.hidden), layers = nf_lua_opt_integer(L, 1, "layers", c.layers);
    lua_Integer latent = nf_lua_opt_integer(L, 1, "latent", c.latent), batch = nf_lua_opt_integer(L, 1, "batch", c.batch);
    if (hidden < 1 || hidden > 4096) luaL_error(L, "vae.new: option 'hidden' must be in 1..4096 (got %I)", hidden);
    if (layers < 1 || layers > 16) luaL_error(L, "vae.new: option 'layers' must be in 1..16 (got %I)", layers);
    if (latent < 1 || latent > 1024) luaL_error(L, "vae.new: option 'latent' must be in 1..1024 (got %I)", latent);
    if (batch < 1 || batch > 65536) luaL_error(L, "vae.new: option 'batch' must be in 1..65536 (got %I)", batch);
    c.hidden = (int)hidden;
    c.layers = (int)layers;
    c.latent = (int)latent;
    c.batch = (int)batch;
    c.lr = (float)nf_lua_opt_number(L, 1, "lr", c.lr);
    c.beta = (float)nf_lua_opt_number(L, 1, "beta", c.beta);
    lua_Integer seed = nf_lua_opt_integer(L, 1, "seed", 1);
    lua_vae *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    u->closed = 1;                                     /* no metatable until the model exists */
    nf_rng_seed(&u->rng, (uint64_t)seed);
    nf_err err;
    if (nf_vae_new(&c, &u->rng, &u->v, &err)) return nf_lua_raise(L, &err);
    u->closed = 0;
    luaL_setmetatable(L, NF_VAE_MT);
    nf_lua_account(L, nf_vae_bytes(u->v));
    return 1;
}

/* The graphs argument pair: ops B×N and adj B×N×N, N = the model's nodes. */
static int64_t check_graph_tensors(lua_State *L, int iops, int iadj, const lua_vae *u, const char *fname,
                                   nf_tensor **ops, nf_tensor **adj)
{
    const int64_t N = nf_vae_get_config(u->v)->nodes;
    *ops = nf_lua_check_tensor(L, iops);
    *adj = nf_lua_check_tensor(L, iadj);
    if ((*ops)->ndim != 2 || (*ops)->shape[1] != N)
        luaL_error(L, "%s: ops must be a B×%d Tensor (got %d dimensions, last %I)", fname, (int)N, (*ops)->ndim,
                   (lua_Integer)((*ops)->ndim ? (*ops)->shape[(*ops)->ndim - 1] : 0));
    if ((*adj)->ndim != 3 || (*adj)->shape[0] != (*ops)->shape[0] || (*adj)->shape[1] != N || (*adj)->shape[2] != N)
        luaL_error(L, "%s: adj must be a %I×%d×%d Tensor (matching ops)", fname, (lua_Integer)(*ops)->shape[0], (int)N, (int)N);
    return (*ops)->shape[0];
}

/* A Lua list of 1-based rows into a 0-based int64 buffer (a userdata, so the GC owns it). */
static int64_t *read_rows(lua_State *L, int idx, int64_t B, int64_t *n, const char *fname)
{
    if (lua_isnoneornil(L, idx)) { *n = B; return NULL; }
    if (lua_type(L, idx) != LUA_TTABLE) luaL_error(L, "%s: rows must be a list of 1-based graph indices", fname);
    int64_t k = (int64_t)luaL_len(L, idx);
    if (k < 1) luaL_error(L, "%s: rows is empty", fname);
    int64_t *rows = lua_newuserdatauv(L, (size_t)k * sizeof *rows, 0);
    for (int64_t i = 0; i < k; i++) {
        lua_geti(L, idx, (lua_Integer)(i + 1));
        int ok;
        lua_Integer r = lua_tointegerx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || r < 1 || r > B)
            luaL_error(L, "%s: rows entry %I must be an integer in 1..%I", fname, (lua_Integer)(i + 1), (lua_Integer)B);
        rows[i] = r - 1;
    }
    *n = k;
    return rows;
}

static int vae_train(lua_State *L)
{
    static const char *const allowed[] = {"ops", "adj", "rows", "epochs", "on_epoch", NULL};
    lua_vae *u = check_vae(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    nf_lua_check_options(L, 2, "vae:train", allowed);
    lua_settop(L, 2);
    lua_getfield(L, 2, "ops");        /* 3 */
    lua_getfield(L, 2, "adj");        /* 4 */
    lua_getfield(L, 2, "rows");       /* 5 */
    lua_getfield(L, 2, "on_epoch");   /* 6 */
    if (!lua_isnil(L, 6) && !lua_isfunction(L, 6)) luaL_error(L, "vae:train: option 'on_epoch' must be a function");
    nf_tensor *ops, *adj;
    u = check_vae(L, 1);   /* the option reads may run metamethods (Lua code that could free the Vae) */
    int64_t B = check_graph_tensors(L, 3, 4, u, "vae:train", &ops, &adj);
    lua_Integer epochs = nf_lua_opt_integer(L, 2, "epochs", 1);
    if (epochs < 1 || epochs > 100000) luaL_error(L, "vae:train: option 'epochs' must be in 1..100000 (got %I)", epochs);
    int64_t n;
    int64_t *rows = read_rows(L, 5, B, &n, "vae:train");
    u = check_vae(L, 1);   /* reading the options ran Lua code (metamethods), which may have freed it */
    int top = lua_gettop(L);
    lua_createtable(L, (int)epochs, 0);
    for (lua_Integer e = 1; e <= epochs; e++) {
        double loss;
        nf_err err;
        if (e > 1) check_graph_tensors(L, 3, 4, u, "vae:train", &ops, &adj);   /* on_epoch may have freed them */
        if (nf_vae_train_epoch(u->v, ops->data, adj->data, B, rows, n, &u->rng, &loss, &err))
            return nf_lua_raise(L, &err);
        lua_pushnumber(L, loss);
        lua_rawseti(L, top + 1, e);
        if (!lua_isnil(L, 6)) {
            lua_pushvalue(L, 6);
            lua_pushinteger(L, e);
            lua_pushnumber(L, loss);
            lua_call(L, 2, 0);
            if (u->closed) luaL_error(L, "nasflat: attempt to use a closed Vae");
        }
    }
    return 1;
}

static int vae_embed(lua_State *L)
{
    lua_vae *u = check_vae(L, 1);
    nf_tensor *ops, *adj;
    int64_t B = check_graph_tensors(L, 2, 3, u, "vae:embed", &ops, &adj);
    int64_t shape[2] = {B, nf_vae_get_config(u->v)->latent};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err err;
    if (nf_vae_embed(u->v, ops->data, adj->data, B, out->t.data, &err)) return nf_lua_raise(L, &err);
    return 1;
}

static int vae_accuracy(lua_State *L)
{
    lua_vae *u = check_vae(L, 1);
    nf_tensor *ops, *adj;
    int64_t B = check_graph_tensors(L, 2, 3, u, "vae:accuracy", &ops, &adj);
    int64_t n;
    int64_t *rows = read_rows(L, 4, B, &n, "vae:accuracy");
    u = check_vae(L, 1);   /* reading rows ran metamethods (Lua code that could free the Vae) */
    nf_vae_accuracy acc;
    nf_err err;
    if (nf_vae_reconstruct_accuracy(u->v, ops->data, adj->data, B, rows, n, &acc, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, acc.ops); lua_setfield(L, -2, "ops");
    lua_pushnumber(L, acc.adj); lua_setfield(L, -2, "adj");
    lua_pushnumber(L, acc.graph); lua_setfield(L, -2, "graph");
    lua_pushinteger(L, (lua_Integer)acc.n); lua_setfield(L, -2, "n");
    return 1;
}

static int vae_loss(lua_State *L)
{
    lua_vae *u = check_vae(L, 1);
    nf_tensor *ops, *adj;
    int64_t B = check_graph_tensors(L, 2, 3, u, "vae:loss", &ops, &adj);
    const nf_vae_config *c = nf_vae_get_config(u->v);
    const float *noise = NULL;
    if (!lua_isnoneornil(L, 4)) {
        nf_tensor *t = nf_lua_check_tensor(L, 4);
        if (t->size != B * c->nodes * c->latent)
            luaL_error(L, "vae:loss: noise must hold B·nodes·latent = %I values (got %I)",
                       (lua_Integer)(B * c->nodes * c->latent), (lua_Integer)t->size);
        noise = t->data;
    }
    double loss, parts[3];
    nf_err err;
    if (nf_vae_loss(u->v, ops->data, adj->data, B, noise, &loss, parts, &err)) return nf_lua_raise(L, &err);
    lua_pushnumber(L, loss);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, parts[0]); lua_setfield(L, -2, "op");
    lua_pushnumber(L, parts[1]); lua_setfield(L, -2, "adj");
    lua_pushnumber(L, parts[2]); lua_setfield(L, -2, "kl");
    return 2;
}

static int vae_nparams(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)nf_vae_nparams(check_vae(L, 1)->v));
    return 1;
}

static int vae_steps(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)nf_vae_steps(check_vae(L, 1)->v));
    return 1;
}

static int vae_config(lua_State *L)
{
    const nf_vae_config *c = nf_vae_get_config(check_vae(L, 1)->v);
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, c->nodes); lua_setfield(L, -2, "nodes");
    lua_pushinteger(L, c->vocab); lua_setfield(L, -2, "vocab");
    lua_pushboolean(L, c->positions); lua_setfield(L, -2, "positions");
    lua_pushboolean(L, c->skip); lua_setfield(L, -2, "skip");
    lua_pushinteger(L, c->hidden); lua_setfield(L, -2, "hidden");
    lua_pushinteger(L, c->layers); lua_setfield(L, -2, "layers");
    lua_pushinteger(L, c->latent); lua_setfield(L, -2, "latent");
    lua_pushinteger(L, c->batch); lua_setfield(L, -2, "batch");
    lua_pushnumber(L, c->lr); lua_setfield(L, -2, "lr");
    lua_pushnumber(L, c->beta); lua_setfield(L, -2, "beta");
    return 1;
}

static int l_gradcheck(lua_State *L)
{
    static const char *const allowed[] = {"B", "nodes", "vocab", "hidden", "layers", "latent", "seed", "h", "sabotage", NULL};
    nf_lua_check_options(L, 1, "vae.gradcheck", allowed);
    nf_vae_gradcheck_opts o;
    o.B = (int)nf_lua_opt_integer(L, 1, "B", 3);
    o.nodes = (int)nf_lua_opt_integer(L, 1, "nodes", 5);
    o.vocab = (int)nf_lua_opt_integer(L, 1, "vocab", 4);
    o.hidden = (int)nf_lua_opt_integer(L, 1, "hidden", 6);
    o.layers = (int)nf_lua_opt_integer(L, 1, "layers", 2);
    o.latent = (int)nf_lua_opt_integer(L, 1, "latent", 3);
    o.seed = (uint64_t)nf_lua_opt_integer(L, 1, "seed", 1);
    o.h = nf_lua_opt_number(L, 1, "h", 1e-3);
    o.sabotage = nf_lua_opt_boolean(L, 1, "sabotage", 0);
    nf_vae_gradcheck_result r;
    nf_err err;
    if (nf_vae_gradcheck(&o, &r, &err)) return nf_lua_raise(L, &err);
    lua_createtable(L, 0, 6);
    lua_pushnumber(L, r.aggregate); lua_setfield(L, -2, "aggregate");
    lua_pushnumber(L, r.adj_decoder); lua_setfield(L, -2, "adj_decoder");
    lua_pushnumber(L, r.op_decoder); lua_setfield(L, -2, "op_decoder");
    lua_pushnumber(L, r.reparam_kl); lua_setfield(L, -2, "reparam_kl");
    lua_pushnumber(L, r.model); lua_setfield(L, -2, "model");
    lua_pushnumber(L, r.model_dir); lua_setfield(L, -2, "model_dir");
    lua_pushinteger(L, (lua_Integer)r.checked); lua_setfield(L, -2, "checked");
    return 1;
}

/* ------------------------------------------------------------------ encoding kernels */
static int l_onehot(lua_State *L)
{
    nf_tensor *ops = nf_lua_check_tensor(L, 1);
    lua_Integer first = luaL_checkinteger(L, 2), npos = luaL_checkinteger(L, 3);
    lua_Integer off = luaL_checkinteger(L, 4), nch = luaL_checkinteger(L, 5);
    if (ops->ndim != 2) luaL_error(L, "vae.onehot: ops must be a 2-D Tensor (got %d dimensions)", ops->ndim);
    if (npos < 1 || npos > 4096 || nch < 1 || nch > 4096 || first < 0 || off < 0 || off > 4096)
        luaL_error(L, "vae.onehot: bad positions or choices");
    int64_t shape[2] = {ops->shape[0], npos * nch};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err err;
    if (nf_enc_onehot(ops->data, ops->shape[0], (int)ops->shape[1], (int)first, (int)npos, (int)off, (int)nch,
                      out->t.data, &err))
        return nf_lua_raise(L, &err);
    return 1;
}

static int l_nb201_paths(lua_State *L)
{
    nf_tensor *e = nf_lua_check_tensor(L, 1);
    if (e->ndim != 2 || e->shape[1] != 6)
        luaL_error(L, "vae.nb201_paths: expected a B×6 Tensor of edge op ids");
    int64_t shape[2] = {e->shape[0], NF_ENC_NB201_PATHS};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err err;
    if (nf_enc_nb201_paths(e->data, e->shape[0], out->t.data, &err)) return nf_lua_raise(L, &err);
    return 1;
}

static int l_scale(lua_State *L)
{
    nf_tensor *X = nf_lua_check_tensor(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (X->ndim != 2) luaL_error(L, "vae.scale: expected a 2-D Tensor (got %d dimensions)", X->ndim);
    int64_t D = X->shape[1];
    if ((int64_t)luaL_len(L, 2) != D)
        luaL_error(L, "vae.scale: %I modes for %I columns", (lua_Integer)luaL_len(L, 2), (lua_Integer)D);
    int *mode = lua_newuserdatauv(L, (size_t)(D > 0 ? D : 1) * sizeof(int), 0);
    for (int64_t c = 0; c < D; c++) {
        lua_geti(L, 2, (lua_Integer)(c + 1));
        const char *m = lua_tostring(L, -1);
        if (m && strcmp(m, "minmax") == 0) mode[c] = NF_SCALE_MINMAX;
        else if (m && strcmp(m, "zscore") == 0) mode[c] = NF_SCALE_ZSCORE;
        else if (m && strcmp(m, "none") == 0) mode[c] = NF_SCALE_NONE;
        else luaL_error(L, "vae.scale: mode %I must be minmax, zscore or none", (lua_Integer)(c + 1));
        lua_pop(L, 1);
    }
    nf_err err;
    if (nf_enc_scale(X->data, X->shape[0], D, mode, &err)) return nf_lua_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ cache */
static void read_key(lua_State *L, int idx, nf_enc_cache_key *k, int want_shape, const char *fname)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer space = nf_lua_opt_integer(L, idx, "space", -1), hash = nf_lua_opt_integer(L, idx, "hash", -1);
    if (space < 0 || space > 0xffffffffLL || hash < 0 || hash > 0xffffffffLL)
        luaL_error(L, "%s: key needs space and hash (integers in 0..2^32-1)", fname);
    k->space = (uint32_t)space;
    k->hash = (uint32_t)hash;
    if (want_shape) {
        k->rows = (int64_t)nf_lua_opt_integer(L, idx, "rows", -1);
        k->dims = (int64_t)nf_lua_opt_integer(L, idx, "dims", -1);
        if (k->rows < 0 || k->dims < 0 || (k->dims && k->rows > ((int64_t)1 << 36) / k->dims))
            luaL_error(L, "%s: key needs rows and dims (non-negative integers)", fname);
    }
}

static int l_cache_write(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    nf_enc_cache_key k;
    read_key(L, 2, &k, 0, "vae.cache_write");
    nf_tensor *X = nf_lua_check_tensor(L, 3);
    if (X->ndim != 2) luaL_error(L, "vae.cache_write: expected a 2-D Tensor (got %d dimensions)", X->ndim);
    k.rows = X->shape[0];
    k.dims = X->shape[1];
    nf_err err;
    if (nf_enc_cache_write(path, &k, X->data, &err)) return nf_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cache_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    nf_enc_cache_key k;
    read_key(L, 2, &k, 1, "vae.cache_read");
    int64_t shape[2] = {k.rows, k.dims};
    nf_lua_tensor *out = nf_lua_tensor_new(L, 2, shape);
    nf_err err;
    if (nf_enc_cache_read(path, &k, out->t.data, &err)) {
        lua_pushnil(L);
        lua_pushstring(L, err.msg);
        lua_pushstring(L, err.code == NF_EIO ? "missing" : "corrupt");
        return 3;
    }
    return 1;
}

static int l_mkdirs(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    nf_err err;
    if (nf_mkdirs(path, &err)) return nf_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

void nf_lua_vae_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"train", vae_train}, {"embed", vae_embed}, {"accuracy", vae_accuracy}, {"loss", vae_loss},
        {"nparams", vae_nparams}, {"steps", vae_steps}, {"config", vae_config}, {"free", vae_free},
        {NULL, NULL},
    };
    static const luaL_Reg fns[] = {
        {"new", l_new}, {"gradcheck", l_gradcheck}, {"onehot", l_onehot}, {"nb201_paths", l_nb201_paths},
        {"scale", l_scale}, {"cache_write", l_cache_write}, {"cache_read", l_cache_read},
        {"mkdirs", l_mkdirs}, {NULL, NULL},
    };
    luaL_newmetatable(L, NF_VAE_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, vae_free);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, vae_free);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, vae_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "vae");
}
