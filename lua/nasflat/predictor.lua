--- nasflat.predictor: the NASFLAT latency predictor (METHOD §4) — a graph network over
-- op-on-node graphs, conditioned on a device embedding, trained with a pairwise ranking loss.
-- The engine is C (csrc/nf_model.c, nf_train.c); this module adds names, defaults and checks.
--
-- A "graph batch" is a table {ops = Tensor(G, N) of 0-based op ids (as floats),
-- adj = Tensor(G, N, N) with adj[i][j] = 1 for the edge i→j, z = Tensor(G, Z) or nil}.
--
--   local P = predictor.new{nodes = 8, n_ops = 7, devices = {"a", "b"}}
--   P:fit{graphs = G, rows = {1, 2, ...}, devices = {"a", "b", ...}, targets = y}
--   local scores = P:predict{graphs = G, device = "a"}
--   local features = P:embed{graphs = G, device = "a", layer = "head"}   -- Tensor(G, 200), for a linear probe
--
-- predictor.new options (defaults):
--   nodes = 8            node count per graph (8 for NB201, 22 for FBNet)
--   n_ops = 7            op vocabulary (NB201: input, output + 5 ops; FBNet 9 or 11)
--   devices = {}         device names, one embedding row each (required unless device_at = "none")
--   layer = "ensemble"   graph layer: "ensemble" (DGF+GAT)/2, "dgf", "gat", "gat_mh" (4 heads), or "mlp":
--                        the design study's baseline, no graph layers and no gates, the head MLP reads
--                        [one-hot(ops) (nodes*n_ops) ; adjacency (nodes*nodes)] flattened, with the z
--                        embedder and the device embedder appended as usual; the graph options (hidden,
--                        op_layers, main_layers, gate_mlp, op_dim, node_dim, hid, upd_hidden, heads, readout,
--                        none_op, quirks) are then unused and no parameters are allocated for them
--   device_at = "node"   where the device enters: "node" (in every gate), "head" (MLP head), "none";
--                        with layer = "mlp" the default is "head" and "node" raises
--   op_encoding = "learned"  op part of every gate: "learned" (an embedding table, op_dim wide) or
--                        "onehot" (the fixed one-hot of the op, n_ops wide: no parameters, never trained;
--                        op_dim is then unused). layer = "mlp" reads the ops one-hot: there the default is
--                        "onehot" and "learned" raises; quirk_io_emb needs "learned"
--   z_dim = 0            width of the optional supplementary vector z (0: unused)
--   hidden = 128         width of every graph layer and of the gate MLP (shortcut)
--   op_layers, main_layers, gate_mlp   explicit width lists (default {h,h}, {h,h,h}, {h,h,h})
--   head = {200,200,200} head MLP; z_hidden = {128,128}, z_out = 48 (z embedder)
--   z_raw = 0            the last z_raw columns of z skip the z embedder: the head reads them unchanged
--                        (after the embedder's output); the embedder reads the first z_dim - z_raw
--   op_dim = 40 (device per node) or 48; hw_dim = 8; node_dim = 48; hid = 96; upd_hidden = 128;
--   dev_out = 48; heads = 4; dropout = 0.1
--   readout = "mean"     "mean" over all nodes, "masked" (skip none_op nodes), "reference" (the
--                        reference code: drop the input node, zero none nodes, divide by N-1)
--   none_op = nil        op id of `none` (0-based), needed by masked/reference readouts
--   seed = 1             parameter initialisation
--   reference quirks (METHOD marks them; the GAT mask is on by default, measured):
--   quirk_io_emb = false         first/last node op embeddings replaced by fixed input / learned output vectors
--   quirk_gat_mask_zero = true   GAT masked logits are 0, not −∞: every node attends to every node, so ops on dead
--                                branches stay visible (the reference's design; docs/study.md §7.2: +0.023 mean
--                                Spearman over the 12 tasks, N1 +0.07, N3 +0.08); false: the −∞ mask
--   gat_slope = 0.2              leaky-ReLU slope on attention logits (the reference effectively uses 0.01)
local core = require "nasflat.core"
local util = require "nasflat.util"

local M = {}

local Predictor = {}
Predictor.__index = Predictor

local NIL = util.NIL
local NEW_DEFAULTS = {
  nodes = 8, n_ops = 7, devices = NIL, layer = "ensemble", device_at = NIL, op_encoding = NIL, z_dim = 0, hidden = 128,
  op_layers = NIL, main_layers = NIL, gate_mlp = NIL, head = NIL, z_hidden = NIL, z_out = 48, z_raw = 0,
  op_dim = NIL, hw_dim = 8, node_dim = 48, hid = 96, upd_hidden = 128, dev_out = 48, heads = 4, dropout = 0.1,
  readout = "mean", none_op = NIL, seed = 1,
  quirk_io_emb = false, quirk_gat_mask_zero = true, gat_slope = 0.2,
}

local function check_type(fname, key, v, ty)
  if type(v) ~= ty then
    error(string.format("%s: option '%s' must be a %s (got %s)", fname, key, ty, type(v)), 3)
  end
end

local function wrap(m)
  local self = setmetatable({_m = m, _index = {}}, Predictor)
  for i, name in ipairs(m:devices()) do self._index[name] = i end
  return self
end

local function live(self)
  local m = rawget(self, "_m")
  if not m then error("nasflat: attempt to use a closed predictor", 3) end
  return m
end

--- The options of `opts` (for M.new) that are not the defaults: options equal to their default (device_at: the
-- default for the layer) are left out, so two option tables that build the same network give the same table
-- (the keys of nasflat.pretrain_cache and the design study).
function M.canonical_options(opts)
  local out = {}
  local layer = opts.layer or NEW_DEFAULTS.layer
  for k, v in pairs(opts) do
    local d = NEW_DEFAULTS[k]
    if k == "device_at" then d = layer == "mlp" and "head" or "node" end
    if type(v) == "table" or v ~= d then out[k] = v end
  end
  return out
end

--- A new predictor. See the option list at the top of this file.
function M.new(opts)
  local o = util.options("predictor.new", opts, NEW_DEFAULTS)
  local devices = o.devices or {}
  check_type("predictor.new", "devices", devices, "table")
  if o.device_at ~= "none" and #devices == 0 then   -- nil: "node", or "head" for the MLP
    error("predictor.new: option 'devices' must list at least one device name", 2)
  end
  for i, d in ipairs(devices) do
    if type(d) ~= "string" then error(string.format("predictor.new: device %d must be a string name", i), 2) end
  end
  for _, k in ipairs{"nodes", "n_ops", "z_dim", "hidden", "seed"} do check_type("predictor.new", k, o[k], "number") end
  local h = o.hidden
  local cfg = {
    nodes = o.nodes, n_ops = o.n_ops, z_dim = o.z_dim, layer = o.layer, device_at = o.device_at,
    op_encoding = o.op_encoding,
    op_layers = o.op_layers or {h, h}, main_layers = o.main_layers or {h, h, h}, gate_mlp = o.gate_mlp or {h, h, h},
    head = o.head or {200, 200, 200}, z_hidden = o.z_hidden or {128, 128}, z_out = o.z_out, z_raw = o.z_raw,
    op_dim = o.op_dim, hw_dim = o.hw_dim, node_dim = o.node_dim, hid = o.hid, upd_hidden = o.upd_hidden,
    dev_out = o.dev_out, heads = o.heads, dropout = o.dropout, readout = o.readout, none_op = o.none_op,
    quirk_io_emb = o.quirk_io_emb, quirk_gat_mask_zero = o.quirk_gat_mask_zero, gat_slope = o.gat_slope,
  }
  if cfg.none_op == nil then cfg.none_op = -1 end
  return wrap(core.Model(cfg, devices, o.seed))
end

--- Load a model file: a predictor, or nil and a message naming the problem.
function M.load(path)
  if type(path) ~= "string" then error("predictor.load: path must be a string", 2) end
  local m, err = core.model_load(path)
  if not m then return nil, err end
  return wrap(m)
end

M.set_threads = core.set_threads
M.get_threads = core.get_threads
--- Finite-difference check of one layer: nasflat.predictor.gradcheck{layer = "gat", ...}.
M.gradcheck = core.nn_gradcheck

-- Resolve a device given by name or 1-based index; nil, message when unknown.
local function device_index(self, d, fname)
  if type(d) == "number" then
    local n = #live(self):devices()
    if d ~= math.floor(d) or d < 1 or d > n then
      return nil, string.format("%s: device index %s out of range 1..%d", fname, tostring(d), n)
    end
    return d
  elseif type(d) == "string" then
    local i = self._index[d]
    if not i then return nil, string.format("%s: unknown device '%s'", fname, d) end
    return i
  end
  error(string.format("%s: a device must be a name or an index (got %s)", fname, type(d)), 3)
end

local function check_graphs(fname, g)
  if type(g) ~= "table" or g.ops == nil or g.adj == nil then
    error(fname .. ": option 'graphs' must be a graph batch {ops=Tensor(G,N), adj=Tensor(G,N,N), z=...}", 3)
  end
  return g
end

local FIT_DEFAULTS = {
  graphs = util.REQUIRED, rows = NIL, devices = NIL, targets = util.REQUIRED, epochs = 150, batch = 128,
  lr = 1e-3, weight_decay = 1e-5, lr_min = 1e-6, loss = "hinge", clip = NIL, seed = 1, on_epoch = NIL, margin = 0.1,
  freeze = NIL,
}

--- Train on (graph row, device, target) examples. Options (defaults):
--   graphs (required) a graph batch; rows = all graphs (1-based list or Tensor);
--   devices: one name/index for every example, or a list per example (required unless device_at = "none");
--   targets (required) Tensor of normalised latencies, one per example;
--   epochs = 150, batch = 128, lr = 1e-3, weight_decay = 1e-5 (AdamW), lr_min = 1e-6 (cosine annealing),
--   loss = "hinge" (pairwise ranking, margin 0.1) or "mse", clip = nil (gradient-norm clipping),
--   freeze = nil: a list of parameter slice name prefixes (see :slices()) whose values stay fixed (no step, no weight
--   decay), e.g. {"z"} holds the supplementary embedder while the device embedding and the head are fitted;
--   seed = 1 (shuffling, dropout, pair sampling), on_epoch = function(info) ... end (info: epoch, epochs,
--   loss, seconds, lr, steps; return false to stop).
-- Returns a history {loss = {...}, seconds = {...}, lr = {...}, epochs = n}, or nil, message for an unknown device.
function Predictor:fit(opts)
  local m = live(self)
  local o = util.options("fit", opts, FIT_DEFAULTS)
  local g = check_graphs("fit", o.graphs)
  local targets = o.targets
  local n = targets:size()
  local rows = o.rows
  if rows == nil then
    rows = {}
    for i = 1, g.ops:size(1) do rows[i] = i end
  end
  local nrows = type(rows) == "table" and #rows or rows:size()
  if nrows ~= n then
    error(string.format("fit: 'targets' has %d entries, expected one per row (%d)", n, nrows), 2)
  end
  local ndev = nil
  if m:config().device_at ~= "none" then
    local d = o.devices
    if d == nil then error("fit: option 'devices' is required (a device name, or one per example)", 2) end
    ndev = {}
    if type(d) == "table" then
      if #d ~= n then error(string.format("fit: 'devices' has %d entries, expected %d", #d, n), 2) end
      local cache = {}
      for i = 1, n do
        local v = d[i]
        local idx = cache[v]
        if not idx then
          local err
          idx, err = device_index(self, v, "fit")
          if not idx then return nil, err end
          cache[v] = idx
        end
        ndev[i] = idx
      end
    else
      local idx, err = device_index(self, d, "fit")
      if not idx then return nil, err end
      for i = 1, n do ndev[i] = idx end
    end
  end
  return m:train{ops = g.ops, adj = g.adj, z = g.z, rows = rows, dev = ndev, y = targets, epochs = o.epochs,
    batch = o.batch, lr = o.lr, lr_min = o.lr_min, weight_decay = o.weight_decay, clip = o.clip, loss = o.loss,
    margin = o.margin, seed = o.seed, on_epoch = o.on_epoch, freeze = o.freeze}
end

local PREDICT_DEFAULTS = {graphs = util.REQUIRED, rows = NIL, device = NIL}

--- Scores (higher = slower) for the graphs (or the given 1-based rows) on one device, as a Tensor.
-- Batched in C. Returns nil, message for an unknown device.
function Predictor:predict(opts)
  local m = live(self)
  local o = util.options("predict", opts, PREDICT_DEFAULTS)
  local g = check_graphs("predict", o.graphs)
  local dev = nil
  if m:config().device_at ~= "none" then
    if o.device == nil then error("predict: option 'device' is required (a name or an index)", 2) end
    local err
    dev, err = device_index(self, o.device, "predict")
    if not dev then return nil, err end
  end
  return m:predict{ops = g.ops, adj = g.adj, z = g.z, rows = o.rows, device = dev}
end

local EMBED_DEFAULTS = {graphs = util.REQUIRED, rows = NIL, device = NIL, layer = "head"}

--- Learned features for a linear probe: Tensor(n, d), one row per graph (or per given 1-based row),
-- eval mode (no dropout), batched in C like :predict. Options: graphs (required), rows = all,
-- device (required unless device_at = "none"), layer = "head" or "readout":
--   "head"     the last hidden layer of the head MLP after its ReLU (d = last head width): the
--              score is a linear map of it, predict = embed * W + b with W, b the last head slice;
--   "readout"  the graph readout fed to the head, before the z and device parts are appended
--              (d = last main-layer width; for layer = "mlp" the flattened one-hot ops and adjacency).
-- Returns nil, message for an unknown device.
function Predictor:embed(opts)
  local m = live(self)
  local o = util.options("embed", opts, EMBED_DEFAULTS)
  local g = check_graphs("embed", o.graphs)
  if o.layer ~= "head" and o.layer ~= "readout" then
    error(string.format("embed: option 'layer' must be one of head, readout (got '%s')", tostring(o.layer)), 2)
  end
  local dev = nil
  if m:config().device_at ~= "none" then
    if o.device == nil then error("embed: option 'device' is required (a name or an index)", 2) end
    local err
    dev, err = device_index(self, o.device, "embed")
    if not dev then return nil, err end
  end
  return m:embed{ops = g.ops, adj = g.adj, z = g.z, rows = o.rows, device = dev, layer = o.layer}
end

--- Add a device row (for transfer). opts: copy_from = name or index (else a fresh random row), seed = 1.
-- Every other weight is kept. Returns the new device's index.
function Predictor:add_device(name, opts)
  local m = live(self)
  if type(name) ~= "string" then error("add_device: name must be a string", 2) end
  local o = util.options("add_device", opts, {copy_from = NIL, seed = 1})
  local from = nil
  if o.copy_from ~= nil then
    local err
    from, err = device_index(self, o.copy_from, "add_device")
    if not from then return nil, err end
  end
  if self._index[name] then return nil, string.format("add_device: device '%s' already exists", name) end
  local i = m:add_device(name, from, o.seed)
  self._index[name] = i
  return i
end

--- Copy one device's embedding row onto another's (names or indices).
function Predictor:copy_device(from, to)
  local m = live(self)
  local a, err = device_index(self, from, "copy_device")
  if not a then return nil, err end
  local b
  b, err = device_index(self, to, "copy_device")
  if not b then return nil, err end
  m:copy_device(a, b)
  return true
end

function Predictor:devices() return live(self):devices() end
--- A deep copy (parameters, optimiser state, metadata): start every target from the pre-trained weights.
function Predictor:clone() return wrap(live(self):clone()) end
--- Save atomically; true, or nil and a message.
function Predictor:save(path)
  if type(path) ~= "string" then error("save: path must be a string", 2) end
  return live(self):save(path)
end
function Predictor:config() return live(self):config() end
function Predictor:n_params() return live(self):n_params() end
--- All parameters as one Tensor (a copy), and their named slices {name, offset (1-based), size, rows, cols}.
function Predictor:params() return live(self):params() end
function Predictor:set_params(t) return live(self):set_params(t) end
function Predictor:slices() return live(self):slices() end
--- Metadata saved with the model (string → number), e.g. per-device normalisation constants.
function Predictor:meta() return live(self):meta() end
function Predictor:set_meta(key, value) return live(self):set_meta(key, value) end
--- Forward FLOPs per graph at batch B (a training step is about 3×).
function Predictor:flops(B) return live(self):flops(B) end
--- Whole-model finite-difference check (jitters the parameters: use a throw-away predictor).
function Predictor:gradcheck(opts) return live(self):gradcheck(opts) end
--- The core userdata (nasflat.Model), for low-level use.
function Predictor:core() return live(self) end

function Predictor:free()
  local m = rawget(self, "_m")
  if m then m:free() end
  self._m = nil
end
Predictor.__close = Predictor.free
Predictor.__gc = Predictor.free

function Predictor:__tostring()
  local m = rawget(self, "_m")
  if not m then return "nasflat.Predictor (closed)" end
  return (tostring(m):gsub("^nasflat.Model", "nasflat.Predictor"))
end

M.Predictor = Predictor
return M
