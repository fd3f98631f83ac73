/* lua_mlp.c — binding of nf_mlp (the HELP baseline's MAML-trained MLP): nasflat.core.Mlp userdata and
 * nasflat.core.codes_lookup. The kind that uses it is lua/nasflat/model_help.lua.
 *
 *   local m = core.Mlp{widths = {142, 200, 200, 200, 200, 1}, in_x = 132, in_h = 10, split = {100, 100},
 *                      max_rows = 256, max_steps = 2}
 *   m:init{seed = 1, alpha = 1e-3}
 *   m:meta_train{x = X, y = Y, hw = HW, episodes = 100, ...} -> mean outer loss
 *   m:adapt(xa, h, y, steps); m:predict(xa, h) -> Tensor(n × out)
 *   m:loss_grad(xa, h, y) -> loss, grad; m:hvp(xa, h, y, v) -> Tensor; m:maml_grad{...} -> loss, gθ, gα
 *   m:params(), m:set_params(t), m:alpha(), m:set_alpha(t), m:mask(), m:state() -> string, m:set_state(s)
 * Shapes and options are programmer errors (raised). */
#include <string.h>
#include "lua_nf.h"
#include "nf_mlp.h"

#define NF_MLP_MT "nasflat.Mlp"

typedef struct {
    nf_mlp *m;
} lmlp;

static nf_mlp *check_mlp(lua_State *L, int idx)
{
    lmlp *u = luaL_checkudata(L, idx, NF_MLP_MT);
    if (!u->m) luaL_error(L, "nasflat: attempt to use a closed mlp");
    return u->m;
}

static void push_mlp(lua_State *L, nf_mlp *m)
{
    lmlp *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->m = m;
    luaL_setmetatable(L, NF_MLP_MT);
    nf_lua_account(L, nf_mlp_bytes(m));
}

static int int_field(lua_State *L, int t, const char *key, int def, int lo, int hi)
{
    lua_Integer v = nf_lua_opt_integer(L, t, key, def);
    if (v < lo || v > hi) luaL_error(L, "Mlp: option '%s' must be in %d..%d (got %I)", key, lo, hi, v);
    return (int)v;
}

static int read_list(lua_State *L, int t, const char *key, int *out, int max)
{
    lua_getfield(L, t, key);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
    if (!lua_istable(L, -1)) luaL_error(L, "Mlp: option '%s' must be a list of integers", key);
    int n = (int)lua_rawlen(L, -1);
    if (n > max) luaL_error(L, "Mlp: option '%s' has %d entries (at most %d)", key, n, max);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "Mlp: option '%s' entry %d is not an integer", key, i + 1);
        out[i] = (int)v;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return n;
}

/* core.Mlp{widths, in_x, in_h, split, max_rows, max_steps} */
static int l_new(lua_State *L)
{
    static const char *const allowed[] = {"widths", "in_x", "in_h", "split", "max_rows", "max_steps", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    nf_lua_check_options(L, 1, "Mlp", allowed);
    nf_mlp_cfg c;
    memset(&c, 0, sizeof c);
    int nw = read_list(L, 1, "widths", c.width, NF_MLP_MAXL + 1);
    if (nw < 2) luaL_error(L, "Mlp: option 'widths' must list the input width and at least one layer");
    c.n_layers = nw - 1;
    c.in_h = int_field(L, 1, "in_h", 0, 0, 1000000);
    c.in_x = int_field(L, 1, "in_x", c.width[0] - c.in_h, 0, 1000000);
    c.n_split = read_list(L, 1, "split", c.split_out, NF_MLP_MAXL);
    int rows = int_field(L, 1, "max_rows", 256, 1, 1000000);
    int steps = int_field(L, 1, "max_steps", 2, 1, 100);
    nf_mlp *m;
    nf_err err;
    if (nf_mlp_new(&c, rows, steps, &m, &err)) return nf_lua_raise(L, &err);
    push_mlp(L, m);
    return 1;
}

/* m:init{seed = 1, alpha = 1e-3} */
static int l_init(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    static const char *const allowed[] = {"seed", "alpha", NULL};
    nf_lua_check_options(L, 2, "mlp:init", allowed);
    nf_rng rng;
    nf_rng_seed(&rng, (uint64_t)nf_lua_opt_integer(L, 2, "seed", 1));
    nf_mlp_init(m, (float)nf_lua_opt_number(L, 2, "alpha", 1e-3), &rng);
    return 0;
}

static nf_tensor *check_shape(lua_State *L, int idx, int64_t rows, int64_t cols, const char *what)
{
    nf_tensor *t = nf_lua_check_tensor(L, idx);
    if (rows >= 0 && t->size != rows * cols)
        luaL_error(L, "mlp: %s must have %I × %I entries (got %I)", what, (lua_Integer)rows, (lua_Integer)cols,
                   (lua_Integer)t->size);
    return t;
}

/* the rows of an n × in_x tensor (1-D allowed when in_x == 1... and 2-D checked) */
static int64_t rows_of(lua_State *L, int idx, int64_t cols, const char *what)
{
    nf_tensor *t = nf_lua_check_tensor(L, idx);
    int64_t r = t->ndim == 2 ? t->shape[0] : (cols ? t->size / cols : 0);
    if ((t->ndim == 2 && t->shape[1] != cols) || r * cols != t->size)
        luaL_error(L, "mlp: %s must be a tensor of rows of %I floats", what, (lua_Integer)cols);
    return r;
}

static const float *hw_arg(lua_State *L, int idx, const nf_mlp *m)
{
    int64_t ih = nf_mlp_config(m)->in_h;
    if (ih == 0 && lua_isnoneornil(L, idx)) return NULL;
    return check_shape(L, idx, 1, ih, "the hardware embedding h")->data;
}

static nf_tensor *new_tensor(lua_State *L, int64_t r, int64_t c)
{
    int64_t shape[2] = {r, c};
    return &nf_lua_tensor_new(L, c > 0 ? 2 : 1, shape)->t;
}

/* m:predict(xa, h) -> Tensor(n × out), Tensor(n) for one output */
static int l_predict(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    const nf_mlp_cfg *c = nf_mlp_config(m);
    int64_t n = rows_of(L, 2, c->in_x, "xa");
    const float *h = hw_arg(L, 3, m);
    const int wL = c->width[c->n_layers];
    nf_tensor *out = new_tensor(L, n, wL == 1 ? 0 : wL);   /* one output: a vector */
    nf_err err;
    if (nf_mlp_predict(m, NULL, nf_lua_check_tensor(L, 2)->data, h, n, out->data, &err)) return nf_lua_raise(L, &err);
    return 1;
}

/* m:loss_grad(xa, h, y) -> loss, grad */
static int l_loss_grad(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    const nf_mlp_cfg *c = nf_mlp_config(m);
    int64_t n = rows_of(L, 2, c->in_x, "xa");
    const float *h = hw_arg(L, 3, m);
    nf_tensor *y = check_shape(L, 4, n, c->width[c->n_layers], "y");
    nf_tensor *g = new_tensor(L, nf_mlp_nparams(m), 0);
    double loss;
    nf_err err;
    if (nf_mlp_loss_grad(m, NULL, nf_lua_check_tensor(L, 2)->data, h, y->data, n, &loss, g->data, &err))
        return nf_lua_raise(L, &err);
    lua_pushnumber(L, loss);
    lua_insert(L, -2);
    return 2;
}

/* m:hvp(xa, h, y, v) -> Tensor */
static int l_hvp(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    const nf_mlp_cfg *c = nf_mlp_config(m);
    int64_t n = rows_of(L, 2, c->in_x, "xa");
    const float *h = hw_arg(L, 3, m);
    nf_tensor *y = check_shape(L, 4, n, c->width[c->n_layers], "y");
    nf_tensor *v = check_shape(L, 5, nf_mlp_nparams(m), 1, "v");
    nf_tensor *hv = new_tensor(L, nf_mlp_nparams(m), 0);
    nf_err err;
    if (nf_mlp_hvp(m, NULL, nf_lua_check_tensor(L, 2)->data, h, y->data, n, v->data, hv->data, &err))
        return nf_lua_raise(L, &err);
    return 1;
}

/* m:adapt(xa, h, y, steps): the inner loop in place */
static int l_adapt(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    const nf_mlp_cfg *c = nf_mlp_config(m);
    int64_t n = rows_of(L, 2, c->in_x, "xa");
    const float *h = hw_arg(L, 3, m);
    nf_tensor *y = check_shape(L, 4, n, c->width[c->n_layers], "y");
    lua_Integer steps = luaL_checkinteger(L, 5);
    luaL_argcheck(L, steps >= 0 && steps <= nf_mlp_max_steps(m), 5, "steps out of range 0..max_steps");
    nf_err err;
    if (nf_mlp_adapt(m, nf_lua_check_tensor(L, 2)->data, h, y->data, n, (int)steps, nf_mlp_params(m), &err))
        return nf_lua_raise(L, &err);
    return 0;
}

static nf_tensor *field_tensor(lua_State *L, int t, const char *key, const char *fname)
{
    lua_getfield(L, t, key);
    nf_tensor *x = nf_lua_test_tensor(L, -1);
    if (!x) luaL_error(L, "%s: option '%s' must be a Tensor", fname, key);
    lua_pop(L, 1);   /* still referenced by the options table */
    return x;
}

/* m:maml_grad{xs, ys, xq, yq, h, steps, second_order} -> loss, g_theta, g_alpha */
static int l_maml_grad(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    static const char *const allowed[] = {"xs", "ys", "xq", "yq", "h", "steps", "second_order", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    nf_lua_check_options(L, 2, "mlp:maml_grad", allowed);
    const nf_mlp_cfg *c = nf_mlp_config(m);
    nf_tensor *xs = field_tensor(L, 2, "xs", "mlp:maml_grad"), *ys = field_tensor(L, 2, "ys", "mlp:maml_grad");
    nf_tensor *xq = field_tensor(L, 2, "xq", "mlp:maml_grad"), *yq = field_tensor(L, 2, "yq", "mlp:maml_grad");
    const float *h = NULL;
    if (c->in_h > 0) {
        nf_tensor *ht = field_tensor(L, 2, "h", "mlp:maml_grad");
        if (ht->size != c->in_h) luaL_error(L, "mlp:maml_grad: option 'h' must have %d entries", c->in_h);
        h = ht->data;
    }
    const int64_t wL = c->width[c->n_layers];
    int64_t ns = xs->size / c->in_x, nq = xq->size / c->in_x;
    if (ns * c->in_x != xs->size || nq * c->in_x != xq->size || ys->size != ns * wL || yq->size != nq * wL)
        luaL_error(L, "mlp:maml_grad: xs, xq must be rows of %d floats and ys, yq one label row each", c->in_x);
    int steps = (int)nf_lua_opt_integer(L, 2, "steps", 1);
    int so = nf_lua_opt_boolean(L, 2, "second_order", 1);
    nf_tensor *gt = new_tensor(L, nf_mlp_nparams(m), 0);
    nf_tensor *ga = new_tensor(L, nf_mlp_nparams(m), 0);
    double loss;
    nf_err err;
    if (nf_mlp_maml_grad(m, xs->data, ys->data, ns, xq->data, yq->data, nq, h, steps, so, &loss, gt->data, ga->data,
                         &err))
        return nf_lua_raise(L, &err);
    lua_pushnumber(L, loss);
    lua_insert(L, -3);
    return 3;
}

/* m:meta_train{x, y, hw, episodes, tasks, support, query, steps, second_order, learn_alpha, lr, rng} -> mean loss */
static int l_meta_train(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    static const char *const allowed[] = {"x", "y", "hw", "episodes", "tasks", "support", "query", "steps",
                                          "second_order", "learn_alpha", "lr", "rng", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    nf_lua_check_options(L, 2, "mlp:meta_train", allowed);
    const nf_mlp_cfg *c = nf_mlp_config(m);
    nf_tensor *x = field_tensor(L, 2, "x", "mlp:meta_train"), *y = field_tensor(L, 2, "y", "mlp:meta_train");
    nf_tensor *hw = field_tensor(L, 2, "hw", "mlp:meta_train");
    if (x->ndim != 2 || x->shape[1] != c->in_x) luaL_error(L, "mlp:meta_train: 'x' must be N × %d", c->in_x);
    const int64_t N = x->shape[0];
    if (y->ndim != 2 || y->shape[1] != N) luaL_error(L, "mlp:meta_train: 'y' must be devices × %I", (lua_Integer)N);
    const int64_t D = y->shape[0];
    if (hw->size != D * c->in_h) luaL_error(L, "mlp:meta_train: 'hw' must be %I × %d", (lua_Integer)D, c->in_h);
    lua_getfield(L, 2, "rng");
    nf_rng *rng = nf_lua_check_rng(L, -1);
    lua_pop(L, 1);
    nf_mlp_meta_opts o;
    o.episodes = (int)nf_lua_opt_integer(L, 2, "episodes", 1);
    o.tasks = (int)nf_lua_opt_integer(L, 2, "tasks", 8);
    o.support = (int)nf_lua_opt_integer(L, 2, "support", 10);
    o.query = (int)nf_lua_opt_integer(L, 2, "query", 200);
    o.steps = (int)nf_lua_opt_integer(L, 2, "steps", 2);
    o.second_order = nf_lua_opt_boolean(L, 2, "second_order", 1);
    o.learn_alpha = nf_lua_opt_boolean(L, 2, "learn_alpha", 0);
    o.lr = (float)nf_lua_opt_number(L, 2, "lr", 1e-4);
    double loss;
    nf_err err;
    if (nf_mlp_meta_train(m, x->data, N, y->data, hw->data, D, &o, rng, &loss, &err)) return nf_lua_raise(L, &err);
    lua_pushnumber(L, loss);
    return 1;
}

static int push_copy(lua_State *L, const float *p, int64_t n)
{
    nf_tensor *t = new_tensor(L, n, 0);
    memcpy(t->data, p, (size_t)n * sizeof(float));
    return 1;
}

static int l_params(lua_State *L) { nf_mlp *m = check_mlp(L, 1); return push_copy(L, nf_mlp_params(m), nf_mlp_nparams(m)); }
static int l_alpha(lua_State *L) { nf_mlp *m = check_mlp(L, 1); return push_copy(L, nf_mlp_alpha(m), nf_mlp_nparams(m)); }
static int l_mask(lua_State *L) { nf_mlp *m = check_mlp(L, 1); return push_copy(L, nf_mlp_mask(m), nf_mlp_nparams(m)); }

/* m:set_params(t): off-block entries must stay zero (masked) */
static int l_set_params(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    nf_tensor *t = check_shape(L, 2, nf_mlp_nparams(m), 1, "params");
    const float *mask = nf_mlp_mask(m);
    float *p = nf_mlp_params(m);
    for (int64_t k = 0; k < t->size; k++) p[k] = t->data[k] * mask[k];
    return 0;
}

static int l_set_alpha(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    nf_tensor *t = check_shape(L, 2, nf_mlp_nparams(m), 1, "alpha");
    memcpy(nf_mlp_alpha(m), t->data, (size_t)t->size * sizeof(float));
    return 0;
}

/* m:state() -> string: θ then α, float32 in this machine's byte order (the model file records it) */
static int l_state(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    lua_pushlstring(L, (const char *)nf_mlp_params(m), (size_t)(2 * nf_mlp_nparams(m)) * sizeof(float));
    return 1;
}

/* m:set_state(s) -> true | nil, msg (a string of the wrong size is a damaged file: a failure of the world) */
static int l_set_state(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    const size_t want = (size_t)(2 * nf_mlp_nparams(m)) * sizeof(float);
    if (n != want) {
        lua_pushnil(L);
        lua_pushfstring(L, "mlp state of %d bytes, the network needs %d", (int)n, (int)want);
        return 2;
    }
    memcpy(nf_mlp_params(m), s, n);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_clone(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1), *c;
    nf_err err;
    if (nf_mlp_clone(m, &c, &err)) return nf_lua_raise(L, &err);
    push_mlp(L, c);
    return 1;
}

static int l_nparams(lua_State *L) { lua_pushinteger(L, nf_mlp_nparams(check_mlp(L, 1))); return 1; }

static int l_config(lua_State *L)
{
    nf_mlp *m = check_mlp(L, 1);
    const nf_mlp_cfg *c = nf_mlp_config(m);
    lua_createtable(L, 0, 6);
    lua_createtable(L, c->n_layers + 1, 0);
    for (int l = 0; l <= c->n_layers; l++) { lua_pushinteger(L, c->width[l]); lua_rawseti(L, -2, l + 1); }
    lua_setfield(L, -2, "widths");
    lua_createtable(L, c->n_split, 0);
    for (int l = 0; l < c->n_split; l++) { lua_pushinteger(L, c->split_out[l]); lua_rawseti(L, -2, l + 1); }
    lua_setfield(L, -2, "split");
    lua_pushinteger(L, c->in_x); lua_setfield(L, -2, "in_x");
    lua_pushinteger(L, c->in_h); lua_setfield(L, -2, "in_h");
    lua_pushinteger(L, nf_mlp_max_rows(m)); lua_setfield(L, -2, "max_rows");
    lua_pushinteger(L, nf_mlp_max_steps(m)); lua_setfield(L, -2, "max_steps");
    return 1;
}

static int l_gc(lua_State *L)
{
    lmlp *u = luaL_checkudata(L, 1, NF_MLP_MT);
    nf_mlp_free(u->m);
    u->m = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lmlp *u = luaL_checkudata(L, 1, NF_MLP_MT);
    if (!u->m) { lua_pushstring(L, "nasflat.Mlp (closed)"); return 1; }
    const nf_mlp_cfg *c = nf_mlp_config(u->m);
    lua_pushfstring(L, "nasflat.Mlp(%d layers, input %d + %d, %d parameters)", c->n_layers, c->in_x, c->in_h,
                    (int)nf_mlp_nparams(u->m));
    return 1;
}

/* core.codes_lookup(codes n × positions, table choices × dim) -> Tensor(n × positions·dim) */
static int l_codes_lookup(lua_State *L)
{
    nf_tensor *codes = nf_lua_check_tensor(L, 1), *table = nf_lua_check_tensor(L, 2);
    if (codes->ndim != 2 || table->ndim != 2) luaL_error(L, "codes_lookup: codes and table must be 2-D tensors");
    const int64_t n = codes->shape[0], pos = codes->shape[1], dim = table->shape[1];
    nf_tensor *out = new_tensor(L, n, pos * dim);
    nf_err err;
    if (nf_codes_lookup(codes->data, n, pos, table->data, table->shape[0], dim, out->data, &err))
        return nf_lua_raise(L, &err);
    return 1;
}

void nf_lua_mlp_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"init", l_init}, {"predict", l_predict}, {"loss_grad", l_loss_grad}, {"hvp", l_hvp}, {"adapt", l_adapt},
        {"maml_grad", l_maml_grad}, {"meta_train", l_meta_train}, {"params", l_params}, {"alpha", l_alpha},
        {"mask", l_mask}, {"set_params", l_set_params}, {"set_alpha", l_set_alpha}, {"state", l_state},
        {"set_state", l_set_state}, {"clone", l_clone}, {"nparams", l_nparams}, {"config", l_config},
        {"free", l_gc}, {NULL, NULL},
    };
    static const luaL_Reg meta[] = {{"__gc", l_gc}, {"__close", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}};
    luaL_newmetatable(L, NF_MLP_MT);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "Mlp");
    lua_pushcfunction(L, l_codes_lookup);
    lua_setfield(L, -2, "codes_lookup");
}
