/* lua_nn.c — binding for the predictor engine: nasflat.core.Model userdata (training,
 * inference, devices, model files), nasflat.core.nn_gradcheck, nasflat.core.model_load.
 * The friendly API (names, graph tables, documented defaults) is lua/nasflat/predictor.lua. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lua_nf.h"
#include "nf_model.h"

#define NF_MODEL_MT "nasflat.Model"

typedef struct {
    nf_model *m;
    int training;     /* 1 during model:train: its on_epoch may not free the model or add devices */
    size_t accounted; /* the model's bytes the collector has been told of */
} lmodel;

static nf_model *check_model(lua_State *L, int idx)
{
    lmodel *u = luaL_checkudata(L, idx, NF_MODEL_MT);
    if (!u->m) luaL_error(L, "nasflat: attempt to use a closed model");
    return u->m;
}

/* Methods that free or reallocate the model refuse while it trains (its on_epoch runs inside the C loop). */
static nf_model *check_model_idle(lua_State *L, int idx, const char *what)
{
    lmodel *u = luaL_checkudata(L, idx, NF_MODEL_MT);
    if (u->m && u->training) luaL_error(L, "nasflat: cannot %s a model while it trains (from on_epoch)", what);
    return check_model(L, idx);
}

static lmodel *push_model(lua_State *L, nf_model *m)
{
    lmodel *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->m = m;
    u->training = 0;
    u->accounted = nf_model_bytes(m);
    luaL_setmetatable(L, NF_MODEL_MT);
    nf_lua_account(L, u->accounted);
    return u;
}

/* A model grows after it is made: its activation arena at the first forward of a larger batch (a fine-tuned FBNet
 * network is 19 MB, 7 of them parameters), its tables when a device is added. The growth is accounted too. */
static void account_growth(lua_State *L, int idx)
{
    lmodel *u = luaL_checkudata(L, idx, NF_MODEL_MT);
    if (!u->m) return;
    size_t now = nf_model_bytes(u->m);
    if (now > u->accounted) {
        nf_lua_account(L, now - u->accounted);
        u->accounted = now;
    }
}

/* ---------------------------------------------------------------- config tables */
static void read_widths(lua_State *L, int idx, const char *key, int *n, int *w)
{
    lua_pushstring(L, key);
    if (lua_rawget(L, idx) == LUA_TNIL) { lua_pop(L, 1); return; }
    if (!lua_istable(L, -1)) luaL_error(L, "Model: option '%s' must be a list of widths", key);
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);   /* raw, like the options table it sits in */
    if (len > NF_MAXL) luaL_error(L, "Model: option '%s' has %I layers (at most %d)", key, len, NF_MAXL);
    int k = (int)len;
    for (int i = 0; i < k; i++) {
        lua_rawgeti(L, -1, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "Model: option '%s' entry %d is not an integer", key, i + 1);
        w[i] = (int)v;
        lua_pop(L, 1);
    }
    *n = k;
    lua_pop(L, 1);
}

static int opt_int(lua_State *L, int idx, const char *key, int def)
{
    lua_Integer v = nf_lua_opt_integer(L, idx, key, def);
    if (v < -1000000000 || v > 1000000000) luaL_error(L, "Model: option '%s' out of range", key);
    return (int)v;
}

static void read_config(lua_State *L, int idx, nf_model_cfg *c)
{
    static const char *const allowed[] = {
        "nodes", "n_ops", "z_dim", "layer", "heads", "device_at", "op_dim", "hw_dim", "node_dim", "hid",
        "op_layers", "main_layers", "gate_mlp", "upd_hidden", "z_hidden", "z_out", "z_raw", "dev_out", "head", "dropout",
        "readout", "none_op", "quirk_io_emb", "quirk_gat_mask_zero", "gat_slope", "op_encoding",
        NULL};
    nf_lua_check_options(L, idx, "Model", allowed);
    nf_model_cfg_default(c);
    c->nodes = opt_int(L, idx, "nodes", c->nodes);
    c->n_ops = opt_int(L, idx, "n_ops", c->n_ops);
    c->z_dim = opt_int(L, idx, "z_dim", c->z_dim);
    const char *layer = nf_lua_opt_string(L, idx, "layer", "ensemble");
    if (nf_model_layer_parse(c, layer) < 0)
        luaL_error(L, "Model: option 'layer' must be one of ensemble, dgf, gat, gat_mh, mlp (got '%s')", layer);
    const int mlp = c->arch == NF_ARCH_MLP;
    c->heads = opt_int(L, idx, "heads", c->heads);
    /* the MLP has no nodes to carry the device, and reads the ops one-hot */
    const char *da = nf_lua_opt_string(L, idx, "device_at", mlp ? "head" : "node");
    if (strcmp(da, "node") == 0) c->device_at = NF_DEV_NODE;
    else if (strcmp(da, "head") == 0) c->device_at = NF_DEV_HEAD;
    else if (strcmp(da, "none") == 0) c->device_at = NF_DEV_NONE;
    else luaL_error(L, "Model: option 'device_at' must be one of node, head, none (got '%s')", da);
    if (mlp && c->device_at == NF_DEV_NODE)
        luaL_error(L, "Model: option 'device_at' must be head or none with layer 'mlp' (got 'node')");
    const char *oe = nf_lua_opt_string(L, idx, "op_encoding", mlp ? "onehot" : "learned");
    if (strcmp(oe, "learned") == 0) c->op_encoding = NF_OPENC_LEARNED;
    else if (strcmp(oe, "onehot") == 0) c->op_encoding = NF_OPENC_ONEHOT;
    else luaL_error(L, "Model: option 'op_encoding' must be one of learned, onehot (got '%s')", oe);
    if (mlp && c->op_encoding != NF_OPENC_ONEHOT)
        luaL_error(L, "Model: option 'op_encoding' must be onehot with layer 'mlp' (got 'learned')");
    c->op_dim = opt_int(L, idx, "op_dim", c->device_at == NF_DEV_NODE ? 40 : 48);
    c->hw_dim = opt_int(L, idx, "hw_dim", c->hw_dim);
    c->node_dim = opt_int(L, idx, "node_dim", c->node_dim);
    c->hid = opt_int(L, idx, "hid", c->hid);
    read_widths(L, idx, "op_layers", &c->n_op_layers, c->op_layers);
    read_widths(L, idx, "main_layers", &c->n_main_layers, c->main_layers);
    read_widths(L, idx, "gate_mlp", &c->n_gate_mlp, c->gate_mlp);
    read_widths(L, idx, "z_hidden", &c->n_z_hidden, c->z_hidden);
    read_widths(L, idx, "head", &c->n_head, c->head);
    c->upd_hidden = opt_int(L, idx, "upd_hidden", c->upd_hidden);
    c->z_out = opt_int(L, idx, "z_out", c->z_out);
    c->z_raw = opt_int(L, idx, "z_raw", c->z_raw);
    c->dev_out = opt_int(L, idx, "dev_out", c->dev_out);
    c->dropout = (float)nf_lua_opt_number(L, idx, "dropout", c->dropout);
    const char *ro = nf_lua_opt_string(L, idx, "readout", "mean");
    if (strcmp(ro, "mean") == 0) c->readout = NF_READOUT_MEAN;
    else if (strcmp(ro, "masked") == 0) c->readout = NF_READOUT_MASKED;
    else if (strcmp(ro, "reference") == 0) c->readout = NF_READOUT_REFERENCE;
    else luaL_error(L, "Model: option 'readout' must be one of mean, masked, reference (got '%s')", ro);
    c->none_op = opt_int(L, idx, "none_op", c->none_op);
    c->quirk_io_emb = nf_lua_opt_boolean(L, idx, "quirk_io_emb", 0);
    c->quirk_gat_mask_zero = nf_lua_opt_boolean(L, idx, "quirk_gat_mask_zero", 0);
    c->gat_slope = (float)nf_lua_opt_number(L, idx, "gat_slope", c->gat_slope);
}

static void push_widths(lua_State *L, const char *key, int n, const int *w)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) { lua_pushinteger(L, w[i]); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, key);
}

static void push_config(lua_State *L, const nf_model_cfg *c)
{
    lua_newtable(L);
#define SETI(k, v) (lua_pushinteger(L, (v)), lua_setfield(L, -2, k))
#define SETS(k, v) (lua_pushstring(L, (v)), lua_setfield(L, -2, k))
#define SETB(k, v) (lua_pushboolean(L, (v)), lua_setfield(L, -2, k))
    SETI("nodes", c->nodes); SETI("n_ops", c->n_ops); SETI("z_dim", c->z_dim);
    SETS("layer", nf_model_layer_name(c)); SETI("heads", c->heads); SETS("device_at", nf_dev_at_name(c->device_at));
    SETS("op_encoding", nf_op_encoding_name(c->op_encoding));
    SETI("op_dim", c->op_dim); SETI("hw_dim", c->hw_dim); SETI("node_dim", c->node_dim); SETI("hid", c->hid);
    push_widths(L, "op_layers", c->n_op_layers, c->op_layers);
    push_widths(L, "main_layers", c->n_main_layers, c->main_layers);
    push_widths(L, "gate_mlp", c->n_gate_mlp, c->gate_mlp);
    push_widths(L, "z_hidden", c->n_z_hidden, c->z_hidden);
    push_widths(L, "head", c->n_head, c->head);
    SETI("upd_hidden", c->upd_hidden); SETI("z_out", c->z_out); SETI("z_raw", c->z_raw); SETI("dev_out", c->dev_out);
    lua_pushnumber(L, (double)c->dropout); lua_setfield(L, -2, "dropout");
    SETS("readout", nf_readout_name(c->readout)); SETI("none_op", c->none_op);
    SETB("quirk_io_emb", c->quirk_io_emb); SETB("quirk_gat_mask_zero", c->quirk_gat_mask_zero);
    lua_pushnumber(L, (double)c->gat_slope); lua_setfield(L, -2, "gat_slope");
#undef SETI
#undef SETS
#undef SETB
}

/* nasflat.core.Model(config, {device names...}, seed) */
static int l_model_new(lua_State *L)
{
    nf_model_cfg c;
    luaL_checktype(L, 1, LUA_TTABLE);
    read_config(L, 1, &c);
    luaL_checktype(L, 2, LUA_TTABLE);
    /* raw: the names stay anchored by the table while nf_model_new copies them */
    lua_Integer nd_len = (lua_Integer)lua_rawlen(L, 2);
    if (nd_len > 100000) luaL_argerror(L, 2, "too many devices");
    int nd = (int)nd_len;
    lua_Integer seed = luaL_optinteger(L, 3, 1);
    const char **names = lua_newuserdatauv(L, (size_t)(nd ? nd : 1) * sizeof *names, 0);
    for (int i = 0; i < nd; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "Model: device %d must be a string name", i + 1);
        names[i] = lua_tostring(L, -1);   /* kept alive by the devices table */
        lua_pop(L, 1);
    }
    nf_model *m;
    nf_err err;
    if (nf_model_new(&c, nd, names, (uint64_t)seed, &m, &err)) return nf_lua_raise(L, &err);
    push_model(L, m);
    return 1;
}

static int l_model_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    nf_model *m;
    nf_err err;
    if (nf_model_load(path, &m, &err)) return nf_lua_fail(L, &err);
    push_model(L, m);
    return 1;
}

/* ---------------------------------------------------------------- graph inputs */
typedef struct {
    int32_t *ops;
    float *adj, *z;
    int64_t G;
} graphs;

/* Reads tensors ops (G×N, op ids as floats), adj (G×N×N), z (G×Z or nil) from the options table. */
static void read_graphs(lua_State *L, int idx, const nf_model_cfg *c, const char *fname, graphs *g)
{
    lua_getfield(L, idx, "ops");
    nf_tensor *ops = nf_lua_test_tensor(L, -1);
    if (!ops || ops->ndim != 2 || ops->shape[1] != c->nodes)
        luaL_error(L, "%s: 'ops' must be a Tensor(B, %d) of op ids", fname, c->nodes);
    lua_getfield(L, idx, "adj");
    nf_tensor *adj = nf_lua_test_tensor(L, -1);
    if (!adj || adj->ndim != 3 || adj->shape[0] != ops->shape[0] || adj->shape[1] != c->nodes || adj->shape[2] != c->nodes)
        luaL_error(L, "%s: 'adj' must be a Tensor(%I, %d, %d)", fname, (lua_Integer)ops->shape[0], c->nodes, c->nodes);
    lua_getfield(L, idx, "z");
    nf_tensor *z = nf_lua_test_tensor(L, -1);
    if (c->z_dim > 0 && (!z || z->ndim != 2 || z->shape[0] != ops->shape[0] || z->shape[1] != c->z_dim))
        luaL_error(L, "%s: 'z' must be a Tensor(%I, %d) (the model has z_dim = %d)", fname, (lua_Integer)ops->shape[0],
                   c->z_dim, c->z_dim);
    if (c->z_dim == 0 && z) luaL_error(L, "%s: 'z' given but the model has z_dim = 0", fname);
    lua_pop(L, 3);   /* the tensors stay referenced by the options table */
    g->G = ops->shape[0];
    g->ops = lua_newuserdatauv(L, (size_t)(ops->size ? ops->size : 1) * sizeof(int32_t), 0);
    lua_setfield(L, idx, "_ops32");   /* anchor the scratch in the table: freed by the GC, never leaked */
    for (int64_t k = 0; k < ops->size; k++) {
        float v = ops->data[k];
        if (!(v >= 0.0f && v < (float)c->n_ops) || v != floorf(v)) {
            char num[32];
            snprintf(num, sizeof num, "%.9g", (double)v);
            luaL_error(L, "%s: op id %s at graph %I node %I is not an integer in 0..%d", fname, num,
                       (lua_Integer)(k / c->nodes + 1), (lua_Integer)(k % c->nodes + 1), c->n_ops - 1);
        }
        g->ops[k] = (int32_t)v;
    }
    g->adj = adj->data;
    g->z = z ? z->data : NULL;
}

/* A 1-based index list (Tensor or Lua sequence) → 0-based int64 scratch (anchored in the table). */
static int64_t *read_index_list(lua_State *L, int idx, const char *key, int64_t n_expect, int64_t hi, const char *fname,
                                int64_t *n_out)
{
    lua_getfield(L, idx, key);
    nf_tensor *t = nf_lua_test_tensor(L, -1);
    int64_t n;
    if (t) n = t->size;
    else if (lua_istable(L, -1)) n = (int64_t)luaL_len(L, -1);
    else return luaL_error(L, "%s: '%s' must be a Tensor or a list of 1-based indices", fname, key), NULL;
    if (n_expect >= 0 && n != n_expect)
        luaL_error(L, "%s: '%s' has %I entries, expected %I", fname, key, (lua_Integer)n, (lua_Integer)n_expect);
    int64_t *out = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(int64_t), 0);
    for (int64_t k = 0; k < n; k++) {
        double v;
        if (t) v = t->data[k];
        else {
            lua_geti(L, -2, k + 1);
            int ok;
            v = lua_tonumberx(L, -1, &ok);
            if (!ok) v = NAN;
            lua_pop(L, 1);
        }
        if (!(v >= 1 && v <= (double)hi) || v != floor(v)) {
            char num[32];
            snprintf(num, sizeof num, "%.17g", v);
            luaL_error(L, "%s: '%s' entry %I is %s, not an index in 1..%I", fname, key, (lua_Integer)k + 1, num, (lua_Integer)hi);
        }
        out[k] = (int64_t)v - 1;
    }
    char anchor[32];
    snprintf(anchor, sizeof anchor, "_%s64", key);
    lua_setfield(L, idx, anchor);
    lua_pop(L, 1);
    *n_out = n;
    return out;
}

/* ---------------------------------------------------------------- training */
typedef struct {
    lua_State *L;
    int fn, hist;     /* stack indices (fn 0: none) */
    int failed;
} epoch_ud;

static int on_epoch(void *ud, const nf_epoch_info *info)
{
    epoch_ud *e = ud;
    lua_State *L = e->L;
    lua_getfield(L, e->hist, "loss");
    lua_pushnumber(L, info->loss);
    lua_rawseti(L, -2, info->epoch);
    lua_getfield(L, e->hist, "seconds");
    lua_pushnumber(L, info->seconds);
    lua_rawseti(L, -2, info->epoch);
    lua_getfield(L, e->hist, "lr");
    lua_pushnumber(L, info->lr);
    lua_rawseti(L, -2, info->epoch);
    lua_pop(L, 3);
    lua_pushinteger(L, info->epoch);
    lua_setfield(L, e->hist, "epochs");
    if (!e->fn) return 0;
    lua_pushvalue(L, e->fn);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, info->epoch); lua_setfield(L, -2, "epoch");
    lua_pushinteger(L, info->epochs); lua_setfield(L, -2, "epochs");
    lua_pushnumber(L, info->loss); lua_setfield(L, -2, "loss");
    lua_pushnumber(L, info->seconds); lua_setfield(L, -2, "seconds");
    lua_pushnumber(L, info->lr); lua_setfield(L, -2, "lr");
    lua_pushinteger(L, (lua_Integer)info->steps); lua_setfield(L, -2, "steps");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        e->failed = 1;   /* the message stays on the stack; raised after nf_model_train returns */
        return 1;
    }
    int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    return stop;
}

/* The option freeze = {prefix, ...} of model:train: one flag per parameter slice, set for the slices whose name
 * starts with one of the prefixes (a prefix matching no slice raises); NULL when the option is absent. The flags
 * live in a userdata anchored in the scratch table scr. */
static const uint8_t *read_freeze(lua_State *L, int scr, nf_model *m)
{
    if (lua_getfield(L, scr, "freeze") == LUA_TNIL) { lua_pop(L, 1); return NULL; }
    if (!lua_istable(L, -1)) luaL_error(L, "train: option 'freeze' must be a list of parameter slice name prefixes");
    const int ns = nf_model_nslices(m);
    uint8_t *flags = lua_newuserdatauv(L, (size_t)(ns ? ns : 1), 0);
    memset(flags, 0, (size_t)(ns ? ns : 1));
    lua_setfield(L, scr, "_frozen");
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer k = 1; k <= len; k++) {
        lua_rawgeti(L, -1, k);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "train: option 'freeze' entry %I must be a string (a parameter slice name prefix)", k);
        size_t pl;
        const char *pre = lua_tolstring(L, -1, &pl);
        int hit = 0;
        for (int si = 0; si < ns; si++)
            if (strncmp(nf_model_slice(m, si)->name, pre, pl) == 0) { flags[si] = 1; hit = 1; }
        if (!hit) luaL_error(L, "train: option 'freeze': no parameter slice name starts with '%s'", pre);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return flags;
}

/* model:train{ops=, adj=, z=, rows=, dev=, y=, epochs=, batch=, lr=, lr_min=, weight_decay=, clip=,
 *             loss="hinge"|"mse", margin=, seed=, on_epoch=, freeze={prefix,...}} -> history {loss={}, seconds={}, lr={}, epochs=n} */
static int l_train(lua_State *L)
{
    static const char *const allowed[] = {"ops", "adj", "z", "rows", "dev", "y", "epochs", "batch", "lr", "lr_min",
                                          "weight_decay", "clip", "loss", "margin", "seed", "on_epoch",
                                          "freeze", NULL};
    nf_model *m = check_model(L, 1);
    const nf_model_cfg *c = nf_model_config(m);
    luaL_checktype(L, 2, LUA_TTABLE);
    nf_lua_check_options(L, 2, "train", allowed);
    lua_newtable(L);              /* scratch anchors: a private copy of the options */
    int scr = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_settable(L, scr); }
    graphs g;
    read_graphs(L, scr, c, "train", &g);
    int64_t n, nd;
    int64_t *rows = read_index_list(L, scr, "rows", -1, g.G, "train", &n);
    m = check_model(L, 1);   /* reading rows ran metamethods (Lua code that could free the model) */
    c = nf_model_config(m);
    int32_t *dev = NULL;
    if (c->device_at != NF_DEV_NONE) {
        int64_t *d64 = read_index_list(L, scr, "dev", n, nf_model_ndev(m), "train", &nd);
        dev = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(int32_t), 0);
        lua_setfield(L, scr, "_dev32");
        for (int64_t k = 0; k < n; k++) dev[k] = (int32_t)d64[k];
    }
    lua_getfield(L, scr, "y");
    nf_tensor *y = nf_lua_test_tensor(L, -1);
    if (!y || y->size != n) luaL_error(L, "train: 'y' must be a Tensor of %I targets", (lua_Integer)n);
    lua_pop(L, 1);
    nf_train_opts o;
    nf_train_opts_default(&o);
    o.epochs = (int)nf_lua_opt_integer(L, 2, "epochs", o.epochs);
    o.batch = (int)nf_lua_opt_integer(L, 2, "batch", o.batch);
    o.lr = (float)nf_lua_opt_number(L, 2, "lr", o.lr);
    o.lr_min = (float)nf_lua_opt_number(L, 2, "lr_min", o.lr_min);
    o.weight_decay = (float)nf_lua_opt_number(L, 2, "weight_decay", o.weight_decay);
    o.clip = (float)nf_lua_opt_number(L, 2, "clip", 0.0);
    o.margin = (float)nf_lua_opt_number(L, 2, "margin", o.margin);
    o.seed = (uint64_t)nf_lua_opt_integer(L, 2, "seed", 1);
    const char *loss = nf_lua_opt_string(L, 2, "loss", "hinge");
    if (strcmp(loss, "hinge") == 0) o.loss = NF_LOSS_HINGE;
    else if (strcmp(loss, "mse") == 0) o.loss = NF_LOSS_MSE;
    else luaL_error(L, "train: option 'loss' must be hinge or mse (got '%s')", loss);
    o.frozen = read_freeze(L, scr, m);
    lua_getfield(L, 2, "on_epoch");
    int fn = 0;
    if (!lua_isnil(L, -1)) {
        if (!lua_isfunction(L, -1)) luaL_error(L, "train: option 'on_epoch' must be a function");
        fn = lua_gettop(L);
    }
    lua_createtable(L, 0, 4);
    int hist = lua_gettop(L);
    lua_newtable(L); lua_setfield(L, hist, "loss");
    lua_newtable(L); lua_setfield(L, hist, "seconds");
    lua_newtable(L); lua_setfield(L, hist, "lr");
    lua_pushinteger(L, 0); lua_setfield(L, hist, "epochs");
    epoch_ud ud = {L, fn, hist, 0};
    o.on_epoch = on_epoch;
    o.ud = &ud;
    nf_dataset d = {g.ops, g.adj, g.z, g.G, rows, dev, y->data, n};
    nf_err err;
    /* reading the options ran Lua code (metamethods of the lists), which may have freed the model */
    m = check_model_idle(L, 1, "train");
    lmodel *lm = lua_touserdata(L, 1);
    lm->training = 1;
    nf_status st = nf_model_train(m, &d, &o, NULL, &err);
    lm->training = 0;
    if (ud.failed) return lua_error(L);   /* the callback's error, re-raised now that C holds nothing */
    if (st) return nf_lua_raise(L, &err);
    account_growth(L, 1);
    lua_pushvalue(L, hist);
    return 1;
}

/* Scores (which < 0) or activations (an nf_embed_layer) of the graphs or of the given rows. */
static nf_status run_model(nf_model *m, const int32_t *ops, const float *adj, const float *z, int64_t n, int32_t dev,
                           const int32_t *devs, int which, float *out, nf_err *err)
{
    if (which < 0) return nf_model_predict(m, ops, adj, z, n, dev, devs, out, err);
    return nf_model_embed(m, ops, adj, z, n, dev, devs, (nf_embed_layer)which, out, err);
}

static int predict_or_embed(lua_State *L, const char *fname, int embed)
{
    static const char *const allowed_p[] = {"ops", "adj", "z", "rows", "device", "dev", NULL};
    static const char *const allowed_e[] = {"ops", "adj", "z", "rows", "device", "dev", "layer", NULL};
    nf_model *m = check_model(L, 1);
    const nf_model_cfg *c = nf_model_config(m);
    luaL_checktype(L, 2, LUA_TTABLE);
    nf_lua_check_options(L, 2, fname, embed ? allowed_e : allowed_p);
    int which = -1;
    if (embed) {
        const char *layer = nf_lua_opt_string(L, 2, "layer", "head");
        if (strcmp(layer, "head") == 0) which = NF_EMBED_HEAD;
        else if (strcmp(layer, "readout") == 0) which = NF_EMBED_READOUT;
        else luaL_error(L, "embed: option 'layer' must be one of head, readout (got '%s')", layer);
    }
    lua_newtable(L);
    int scr = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_settable(L, scr); }
    graphs g;
    read_graphs(L, scr, c, fname, &g);
    int64_t n = g.G, *rows = NULL, nd;
    if (lua_getfield(L, scr, "rows") != LUA_TNIL) rows = read_index_list(L, scr, "rows", -1, g.G, fname, &n);
    lua_pop(L, 1);
    m = check_model(L, 1);   /* reading rows ran metamethods (Lua code that could free the model) */
    c = nf_model_config(m);
    int32_t dev = 0, *devs = NULL;
    if (c->device_at != NF_DEV_NONE) {
        if (lua_getfield(L, scr, "dev") != LUA_TNIL) {
            int64_t *d64 = read_index_list(L, scr, "dev", n, nf_model_ndev(m), fname, &nd);
            devs = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(int32_t), 0);
            lua_setfield(L, scr, "_dev32");
            for (int64_t k = 0; k < n; k++) devs[k] = (int32_t)d64[k];
        } else {
            lua_Integer d = nf_lua_opt_integer(L, scr, "device", 0);
            if (d < 1 || d > nf_model_ndev(m))
                luaL_error(L, "%s: 'device' must be a device index in 1..%d (got %I)", fname, nf_model_ndev(m), d);
            dev = (int32_t)(d - 1);
        }
        lua_pop(L, 1);
        m = check_model(L, 1);   /* and so did reading dev */
    }
    const int64_t dim = embed ? nf_model_embed_dim(m, (nf_embed_layer)which) : 1;
    int64_t shape[2] = {n, dim};
    nf_lua_tensor *out = nf_lua_tensor_new(L, embed ? 2 : 1, shape);
    nf_err err;
    nf_status st;
    if (!rows) {
        st = run_model(m, g.ops, g.adj, g.z, n, dev, devs, which, out->t.data, &err);
    } else {
        /* gather the requested rows in chunks, run each chunk */
        const int64_t N = c->nodes, Z = c->z_dim, chunk = 512;
        int64_t cn = n < chunk ? n : chunk;
        int32_t *ops = lua_newuserdatauv(L, (size_t)(cn ? cn : 1) * (size_t)N * sizeof(int32_t), 0);
        float *adj = lua_newuserdatauv(L, (size_t)(cn ? cn : 1) * (size_t)(N * N + Z) * sizeof(float), 0);
        float *z = adj + cn * N * N;
        st = NF_OK;
        for (int64_t b0 = 0; b0 < n && !st; b0 += chunk) {
            int64_t B = n - b0 < chunk ? n - b0 : chunk;
            for (int64_t k = 0; k < B; k++) {
                int64_t r = rows[b0 + k];
                memcpy(ops + k * N, g.ops + r * N, (size_t)N * sizeof(int32_t));
                memcpy(adj + k * N * N, g.adj + r * N * N, (size_t)(N * N) * sizeof(float));
                if (Z) memcpy(z + k * Z, g.z + r * Z, (size_t)Z * sizeof(float));
            }
            st = run_model(m, ops, adj, Z ? z : NULL, B, dev, devs ? devs + b0 : NULL, which, out->t.data + b0 * dim, &err);
        }
        lua_pop(L, 2);
    }
    if (st) return nf_lua_raise(L, &err);
    account_growth(L, 1);
    return 1;
}

/* model:predict{ops=, adj=, z=, rows=optional, device=1-based | dev=Tensor per row} -> Tensor(n) */
static int l_predict(lua_State *L) { return predict_or_embed(L, "predict", 0); }

/* model:embed{ops=, adj=, z=, rows=, device= | dev=, layer="head"|"readout"} -> Tensor(n, d): eval-mode
 * activations of the head's last hidden layer (after ReLU) or of the graph readout */
static int l_embed(lua_State *L) { return predict_or_embed(L, "embed", 1); }

/* ---------------------------------------------------------------- devices, params, files */
static int l_add_device(lua_State *L)
{
    nf_model *m = check_model_idle(L, 1, "add a device to");
    const char *name = luaL_checkstring(L, 2);
    lua_Integer from = luaL_optinteger(L, 3, 0);
    lua_Integer seed = luaL_optinteger(L, 4, 1);
    nf_err err;
    if (nf_model_add_device(m, name, (int)from - 1, (uint64_t)seed, &err)) return nf_lua_raise(L, &err);
    account_growth(L, 1);
    lua_pushinteger(L, nf_model_ndev(m));
    return 1;
}

static int l_copy_device(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    lua_Integer from = luaL_checkinteger(L, 2), to = luaL_checkinteger(L, 3);
    nf_err err;
    if (nf_model_copy_device(m, (int)from - 1, (int)to - 1, &err)) return nf_lua_raise(L, &err);
    return 0;
}

static int l_devices(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    lua_createtable(L, nf_model_ndev(m), 0);
    for (int i = 0; i < nf_model_ndev(m); i++) {
        lua_pushstring(L, nf_model_dev_name(m, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_clone(lua_State *L)
{
    nf_model *m = check_model(L, 1), *c;
    nf_err err;
    if (nf_model_clone(m, &c, &err)) return nf_lua_raise(L, &err);
    push_model(L, c);
    return 1;
}

static int l_save(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    nf_err err;
    if (nf_model_save(m, path, &err)) return nf_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_config(lua_State *L)
{
    push_config(L, nf_model_config(check_model(L, 1)));
    return 1;
}

static int l_n_params(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)nf_model_nparams(check_model(L, 1)));
    return 1;
}

static int l_params(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    int64_t shape[1] = {nf_model_nparams(m)};
    nf_lua_tensor *t = nf_lua_tensor_new(L, 1, shape);
    memcpy(t->t.data, nf_model_params(m), (size_t)shape[0] * sizeof(float));
    return 1;
}

static int l_set_params(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    nf_tensor *t = nf_lua_check_tensor(L, 2);
    if (t->size != nf_model_nparams(m))
        luaL_error(L, "nasflat: set_params: %I values for %I parameters", (lua_Integer)t->size, (lua_Integer)nf_model_nparams(m));
    memcpy(nf_model_params(m), t->data, (size_t)t->size * sizeof(float));
    return 0;
}

static int l_slices(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    lua_createtable(L, nf_model_nslices(m), 0);
    for (int i = 0; i < nf_model_nslices(m); i++) {
        const nf_pslice *s = nf_model_slice(m, i);
        lua_createtable(L, 0, 5);
        lua_pushstring(L, s->name); lua_setfield(L, -2, "name");
        lua_pushinteger(L, (lua_Integer)s->off + 1); lua_setfield(L, -2, "offset");
        lua_pushinteger(L, (lua_Integer)s->n); lua_setfield(L, -2, "size");
        lua_pushinteger(L, (lua_Integer)s->rows); lua_setfield(L, -2, "rows");
        lua_pushinteger(L, (lua_Integer)s->cols); lua_setfield(L, -2, "cols");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_meta(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    lua_newtable(L);
    for (int i = 0; i < nf_model_nmeta(m); i++) {
        lua_pushnumber(L, nf_model_meta_value(m, i));
        lua_setfield(L, -2, nf_model_meta_key(m, i));
    }
    return 1;
}

static int l_set_meta(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    const char *k = luaL_checkstring(L, 2);
    lua_Number v = luaL_checknumber(L, 3);
    nf_err err;
    if (nf_model_set_meta(m, k, v, &err)) return nf_lua_raise(L, &err);
    return 0;
}

static int l_flops(lua_State *L)
{
    nf_model *m = check_model(L, 1);
    lua_pushnumber(L, nf_model_flops(m, luaL_optinteger(L, 2, 128)));
    return 1;
}

static int l_bytes(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)nf_model_bytes(check_model(L, 1)));
    return 1;
}

static void push_gc_result(lua_State *L, const nf_gradcheck_result *r)
{
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, r->max_rel); lua_setfield(L, -2, "max_rel");
    lua_pushnumber(L, r->rel); lua_setfield(L, -2, "rel");
    lua_pushinteger(L, (lua_Integer)r->checked); lua_setfield(L, -2, "checked");
    lua_pushnumber(L, r->worst_bad); lua_setfield(L, -2, "worst_bad");
    lua_pushstring(L, r->worst); lua_setfield(L, -2, "worst");
}

/* model:gradcheck{B=4, per_slice=8, loss="sum"|"hinge"|"mse", eps=2e-3, seed=1, breakit=false}
 * Jitters the parameters first: use a throw-away model. */
static int l_model_gradcheck(lua_State *L)
{
    static const char *const allowed[] = {"B", "per_slice", "loss", "eps", "seed", "breakit", NULL};
    nf_model *m = check_model(L, 1);
    nf_lua_check_options(L, 2, "gradcheck", allowed);
    nf_model_gradcheck_opts o;
    memset(&o, 0, sizeof o);
    o.B = (int)nf_lua_opt_integer(L, 2, "B", 4);
    o.per_slice = (int)nf_lua_opt_integer(L, 2, "per_slice", 8);
    o.eps = nf_lua_opt_number(L, 2, "eps", 2e-3);
    o.seed = (uint64_t)nf_lua_opt_integer(L, 2, "seed", 1);
    o.breakit = nf_lua_opt_boolean(L, 2, "breakit", 0);
    const char *loss = nf_lua_opt_string(L, 2, "loss", "sum");
    if (strcmp(loss, "sum") == 0) o.loss = 0;
    else if (strcmp(loss, "hinge") == 0) o.loss = 1;
    else if (strcmp(loss, "mse") == 0) o.loss = 2;
    else luaL_error(L, "gradcheck: option 'loss' must be sum, hinge or mse (got '%s')", loss);
    if (o.B < 1 || o.B > 4096) luaL_error(L, "gradcheck: option 'B' must be in 1..4096");
    nf_gradcheck_result r;
    nf_err err;
    if (nf_model_gradcheck(m, &o, &r, &err)) return nf_lua_raise(L, &err);
    account_growth(L, 1);
    push_gc_result(L, &r);
    return 1;
}

/* nasflat.core.nn_gradcheck{layer=, B=, N=, in=, out=, seed=, eps=, h_shared=, quirk_gat_mask_zero=,
 *                          gat_slope=, breakit=} */
static int l_nn_gradcheck(lua_State *L)
{
    static const char *const allowed[] = {"layer", "B", "N", "in", "out", "seed", "eps", "h_shared",
                                          "quirk_gat_mask_zero", "gat_slope", "breakit", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    nf_lua_check_options(L, 1, "nn_gradcheck", allowed);
    nf_gradcheck_opts o;
    memset(&o, 0, sizeof o);
    o.layer = nf_lua_opt_string(L, 1, "layer", NULL);
    if (!o.layer) luaL_error(L, "nn_gradcheck: option 'layer' is required");
    o.B = (int)nf_lua_opt_integer(L, 1, "B", 3);
    o.N = (int)nf_lua_opt_integer(L, 1, "N", 5);
    o.in = (int)nf_lua_opt_integer(L, 1, "in", 6);
    o.out = (int)nf_lua_opt_integer(L, 1, "out", 7);
    if (o.B < 1 || o.N < 1 || o.in < 1 || o.out < 1 || o.B * o.N > 100000 || o.in > 4096 || o.out > 4096)
        luaL_error(L, "nn_gradcheck: sizes out of range");
    o.seed = (uint64_t)nf_lua_opt_integer(L, 1, "seed", 1);
    o.eps = nf_lua_opt_number(L, 1, "eps", 1e-3);
    o.h_shared = nf_lua_opt_boolean(L, 1, "h_shared", 0);
    o.quirk_gat_mask_zero = nf_lua_opt_boolean(L, 1, "quirk_gat_mask_zero", 0);
    o.gat_slope = (float)nf_lua_opt_number(L, 1, "gat_slope", 0.2);
    o.breakit = nf_lua_opt_boolean(L, 1, "breakit", 0);
    nf_gradcheck_result r;
    nf_err err;
    if (nf_gradcheck_layer(&o, &r, &err)) return nf_lua_raise(L, &err);
    push_gc_result(L, &r);
    return 1;
}

static int l_gc(lua_State *L)
{
    lmodel *u = luaL_checkudata(L, 1, NF_MODEL_MT);
    nf_model_free(u->m);
    u->m = NULL;
    return 0;
}

/* model:free() and __close: idempotent; refused from the model's own on_epoch (the C loop still uses it). */
static int l_free(lua_State *L)
{
    lmodel *u = luaL_checkudata(L, 1, NF_MODEL_MT);
    if (u->m && u->training) luaL_error(L, "nasflat: cannot free a model while it trains (from on_epoch)");
    return l_gc(L);
}

static int l_tostring(lua_State *L)
{
    lmodel *u = luaL_checkudata(L, 1, NF_MODEL_MT);
    if (!u->m) { lua_pushstring(L, "nasflat.Model (closed)"); return 1; }
    const nf_model_cfg *c = nf_model_config(u->m);
    lua_pushfstring(L, "nasflat.Model(%s, device_at=%s, %d nodes, %d devices, %I params)", nf_model_layer_name(c),
                    nf_dev_at_name(c->device_at), c->nodes, nf_model_ndev(u->m), (lua_Integer)nf_model_nparams(u->m));
    return 1;
}

void nf_lua_nn_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"train", l_train}, {"predict", l_predict}, {"embed", l_embed}, {"add_device", l_add_device},
        {"copy_device", l_copy_device},
        {"devices", l_devices}, {"clone", l_clone}, {"save", l_save}, {"config", l_config}, {"n_params", l_n_params},
        {"params", l_params}, {"set_params", l_set_params}, {"slices", l_slices}, {"meta", l_meta},
        {"set_meta", l_set_meta}, {"flops", l_flops}, {"bytes", l_bytes}, {"gradcheck", l_model_gradcheck},
        {"free", l_free}, {NULL, NULL},
    };
    static const luaL_Reg meta[] = {{"__gc", l_gc}, {"__close", l_free}, {"__tostring", l_tostring}, {NULL, NULL}};
    luaL_newmetatable(L, NF_MODEL_MT);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_model_new);
    lua_setfield(L, -2, "Model");
    lua_pushcfunction(L, l_model_load);
    lua_setfield(L, -2, "model_load");
    lua_pushcfunction(L, l_nn_gradcheck);
    lua_setfield(L, -2, "nn_gradcheck");
}
