--- Search spaces: NAS-Bench-201 cells and FBNet chains (C core: csrc/nf_space.h).
--
--   local space = require("nasflat.space").get("nb201")   -- or "fbnet"
--   local g = space:graph("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
--   g.ops   -- Tensor(8): node-op ids;  g.adj -- Tensor(8, 8): adj[i][j] = 1 for an edge i -> j
--
-- Architectures. The canonical, user-facing form is the **arch string**:
--   nb201  "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" (ops none, skip_connect, nor_conv_1x1, nor_conv_3x3,
--          avg_pool_3x3 on the edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3);
--   fbnet  the 22 block ids joined by '-' ("7-8-1-...").
-- Every method taking an architecture also accepts the other string form (nb201 op_vector "4-2-1-2-1-1",
-- fbnet block names "k5_e6-skip-...") or a **code**: a table of the 0-based choice ids (nb201 op_vector
-- numbering none=0 .. avg_pool_3x3=4; fbnet k3_e1=0 .. skip=8). Methods that return architectures return
-- arch strings.
--
-- Errors: `space:parse(s)` is the validator for user input: it returns the code, or nil and a message
-- naming the bad part and its column. Every other method treats a malformed architecture as a
-- programmer error and raises (the message names the list entry).
--
-- Graph vocabulary (`space:vocab()`): nb201 input=0, output=1, then the ops as op id + 2 (none=2 ..
-- avg_pool_3x3=6), 8 nodes: input, the six edge-ops in string order, output, pruned as METHOD §2
-- (none cut, skip_connect bypassed, nodes off every input->output path zeroed; labels kept);
-- fbnet the 9 block ids, 22 nodes, adjacency a chain (default) or the identity.
local core = require "nasflat.core"
local util = require "nasflat.util"

local C = core.space
local M = {}

local Space = {}
Space.__index = Space

local spaces = {}

--- The Space object for "nb201" or "fbnet" (also "nasbench201"). Unknown names raise.
function M.get(name)
  if type(name) ~= "string" then
    error("space.get: name must be a string (got " .. type(name) .. ")", 2)
  end
  local key = name:lower()
  if key == "nasbench201" or key == "nas-bench-201" then key = "nb201" end
  if spaces[key] then return spaces[key] end
  if key ~= "nb201" and key ~= "fbnet" then
    error("space.get: unknown search space '" .. name .. "' (expected nb201 or fbnet)", 2)
  end
  local info = C.info(key)
  local s = setmetatable({name = key, info = info}, Space)
  spaces[key] = s
  return s
end

--- Names of the available spaces.
function M.names() return {"nb201", "fbnet"} end

function Space:__tostring()
  return string.format("nasflat.Space(%s: %d positions, %d graph nodes)", self.name, self.info.code_len, self.info.nodes)
end

--- Parse an arch string. Returns the code (table of 0-based ids), or nil and a message.
function Space:parse(s)
  if type(s) ~= "string" then
    error(string.format("%s:parse: expected an arch string (got %s)", self.name, type(s)), 2)
  end
  return C.parse(self.name, s)
end

--- The choice ids of every architecture of a list (arch strings of either form or codes): Tensor(#list × positions).
function Space:codes(list) return C.codes(self.name, list) end

--- The canonical arch strings of a list (either string form or codes), parsed once each in C; a malformed entry
-- raises, naming it.
function Space:canonical(list) return C.canonical(self.name, list) end

--- The canonical arch string of a code (or of either string form).
function Space:format(code) return C.format(self.name, code) end

--- Number of architectures: 15625 for nb201 (an integer), 9^22 ≈ 9.85e20 for fbnet (a float).
function Space:size() return self.info.size end

--- Node-op names of the graph vocabulary, in id order (Lua list: vocab()[id + 1]).
function Space:vocab()
  local out = {}
  for i, v in ipairs(self.info.vocab) do out[i] = v end
  return out
end

--- Names of the choices at one position (nb201 ops, fbnet blocks), in id order.
function Space:choices()
  local out = {}
  for i, v in ipairs(self.info.choices) do out[i] = v end
  return out
end

--- Datasets :cost accepts (the first is the default).
function Space:datasets()
  local out = {}
  for i, v in ipairs(self.info.datasets) do out[i] = v end
  return out
end

function Space:code_len() return self.info.code_len end
function Space:nodes() return self.info.nodes end
function Space:feature_dim() return self.info.feature_dim end

local function graph_flags(_, fname, opts)
  opts = util.options(fname, opts, {adjacency = "chain", pruned = true, dead_as_none = false})
  local flags = 0
  if opts.adjacency == "identity" then
    flags = flags | C.FBNET_IDENTITY
  elseif opts.adjacency ~= "chain" then
    error(string.format("%s: option 'adjacency' must be 'chain' or 'identity' (got %s)", fname, tostring(opts.adjacency)), 3)
  end
  if type(opts.pruned) ~= "boolean" then error(fname .. ": option 'pruned' must be a boolean", 3) end
  if type(opts.dead_as_none) ~= "boolean" then error(fname .. ": option 'dead_as_none' must be a boolean", 3) end
  if not opts.pruned then flags = flags | C.NB201_RAW end
  if opts.dead_as_none then flags = flags | C.DEAD_AS_NONE end
  return flags
end

--- Graphs of a list of architectures, built in C: {ops = Tensor(B, N), adj = Tensor(B, N, N)}.
-- ops holds integer node-op ids as floats. opts (defaults):
--   adjacency = "chain"     fbnet: "chain" (i -> i+1) or "identity" (the reference's; no message passing)
--   pruned = true           nb201: false gives the 8-node graph before pruning
--   dead_as_none = false    nb201: relabel pruned-away edge-op nodes as none
function Space:graphs(list, opts)
  if type(list) ~= "table" then
    error(string.format("%s:graphs: expected a list of architectures (got %s)", self.name, type(list)), 2)
  end
  local flags = graph_flags(self, self.name .. ":graphs", opts)
  local ops, adj = C.graphs(self.name, list, flags)
  return {ops = ops, adj = adj}
end

--- Graph of one architecture: {ops = Tensor(N), adj = Tensor(N, N)}; opts as :graphs.
function Space:graph(arch, opts)
  local flags = graph_flags(self, self.name .. ":graph", opts)
  local ops, adj = C.graphs(self.name, {arch}, flags)
  local n = self.info.nodes
  return {ops = ops:reshape(n), adj = adj:reshape(n, n)}
end

--- Params (MB) and FLOPs (M) of one architecture on a dataset (nb201: "cifar10" (default), "cifar100",
-- "ImageNet16-120"; fbnet: "cifar100"). Computed from the macro network; equal to nb201_cost.csv.
function Space:cost(arch, dataset) return C.cost1(self.name, arch, dataset) end

--- Params and FLOPs of a list: two Tensors(B) (MB, M).
function Space:costs(list, dataset) return C.cost(self.name, list, dataset) end

--- Structural features (METHOD §10) of a list: Tensor(B, F). nb201 (F = 8): counts of none, skip_connect,
-- nor_conv_1x1, nor_conv_3x3, avg_pool_3x3, then the surviving conv1x1, conv3x3, pool nodes after pruning;
-- fbnet (F = 11): counts of the 9 blocks, ln FLOPs (M), ln params (MB).
function Space:struct_features(list) return C.features(self.name, list) end

--- Names of the structural features, in column order.
function Space:feature_names()
  if self.name == "nb201" then
    return {"n_none", "n_skip_connect", "n_nor_conv_1x1", "n_nor_conv_3x3", "n_avg_pool_3x3",
            "eff_nor_conv_1x1", "eff_nor_conv_3x3", "eff_avg_pool_3x3"}
  end
  local out = {}
  for i, b in ipairs(self.info.choices) do out[i] = "n_" .. b end
  out[#out + 1] = "log_flops"
  out[#out + 1] = "log_params"
  return out
end

--- Physical ("roofline") features of a list: Tensor(B, 20), ln(1+x) of the kernel launches, MB moved, and
-- MFLOPs and MB moved per layer kind, over the layers of the macro network on `dataset` (nil: the space's
-- first) that an eager framework runs (every layer, dead branches and NB201 zero ops included) or, with
-- `live_only`, that a graph compiler keeps. Latency is close to linear in these; see csrc/nf_space.h.
function Space:phys_features(list, dataset, live_only)
  return C.phys_features(self.name, list, dataset, live_only and true or false)
end

--- Roofline-time features of a list: Tensor(B, 7), raw sums over the same layers as phys_features: the
-- kernel launches, then for each machine balance b of Space.roof_balances() (FLOPs per byte: 0.25 .. 256)
-- the sum over layers of max(MFLOPs, b × MB moved), the layers' time on such a machine in units of its peak.
-- Latency is close to linear in a few of these (each layer compute- or memory-bound on its own).
-- `variant` (default "plain"): "weights" counts each layer's fp32 weights in its MB moved (Tensor(B, 7));
-- "floors" appends, for each floor f of Space.roof_floors() (MB) and each balance b, the sum over layers of
-- max(MFLOPs, b × MB, b × f): every kernel costs at least the time to move f MB (Tensor(B, 43)).
function Space:roof_features(list, dataset, live_only, variant)
  return C.roof_features(self.name, list, dataset, live_only and true or false, variant)
end

--- The per-layer floors (MB) of the "floors" roof variant, in column order.
function Space.roof_floors() return C.roof_floors() end

--- The machine balances of the roof feature columns 2..7, in order.
function Space.roof_balances() return C.roof_balances() end

--- Names of the roof features of `variant` (see Space:roof_features), in column order.
function Space.roof_feature_names(variant)
  local out = {"launches"}
  local tag = variant == "weights" and "roofw_" or "roof_"
  for _, b in ipairs(C.roof_balances()) do out[#out + 1] = string.format("%s%g", tag, b) end
  if variant == "floors" then
    for _, f in ipairs(C.roof_floors()) do
      for _, b in ipairs(C.roof_balances()) do out[#out + 1] = string.format("roof_%g_floor_%g", b, f) end
    end
  end
  return out
end

local LAYER_KINDS = {"conv", "dwconv", "pool", "gpool", "linear", "add", "zero", "shuffle", "bnrelu"}

--- Names of the physical features, in column order.
function Space.phys_feature_names()
  local out = {"launches", "mb_moved"}
  for _, k in ipairs(LAYER_KINDS) do out[#out + 1] = "mflops_" .. k end
  for _, k in ipairs(LAYER_KINDS) do out[#out + 1] = "mb_" .. k end
  return out
end

--- Per-layer breakdown of the macro network that runs the architecture: a list of
-- {kind, cin, cout, hin, hout, kernel, stride, groups, arity, arity_nonzero, flops, params, in_bytes, out_bytes,
--  relu_in, bn, relu_out, live, block}. kind is conv, dwconv, pool, gpool, linear, add, zero, shuffle or bnrelu;
-- bytes are fp32 activations; live = false for dead branches and zero ops; block = cell (nb201, 1..15) or
-- searchable layer (fbnet, 1..22), nil for stem/reduction/head; arity_nonzero = inputs of an add that are not
-- nb201 zero ops. FLOPs and params sum to :cost.
function Space:layers(arch, dataset) return C.layers(self.name, arch, dataset) end

--- All architectures in enumeration order (nb201 only; fbnet raises).
function Space:enumerate() return C.enumerate(self.name) end

--- 1-based enumeration index of an architecture (nb201 only). Not the benchmark's arch_index.
function Space:index(arch) return C.index(self.name, arch) end

--- Architecture at a 1-based enumeration index (nb201 only).
function Space:at(i) return C.at(self.name, i) end

--- n distinct architectures drawn uniformly with `rng` (a nasflat.Rng); arch strings.
function Space:sample(rng, n)
  if type(n) ~= "number" or math.type(n) ~= "integer" then
    error(string.format("%s:sample: count must be an integer (got %s)", self.name, tostring(n)), 2)
  end
  return C.sample(self.name, rng, n)
end

--- Predictor options for this space: a copy of opts with nodes and n_ops (vocabulary size) filled in where absent.
function Space:predictor_options(opts)
  local out = {}
  for k, v in pairs(opts or {}) do out[k] = v end
  if out.nodes == nil then out.nodes = self.info.nodes end
  if out.n_ops == nil then out.n_ops = #self.info.vocab end
  return out
end

return M
