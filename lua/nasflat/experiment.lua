--- Few-shot transfer experiments (METHOD §1, §4 transfer, §5, §6): pre-train on source devices, transfer to
-- each target with k measured samples, score every measured architecture of the target.
local util = require "nasflat.util"
local core = require "nasflat.core"

local M = {}

local function lazy(name) return function() return require(name) end end
local space_mod, data_mod, metrics_mod = lazy "nasflat.space", lazy "nasflat.data", lazy "nasflat.metrics"
local samplers_mod, ridge_mod, predictor_mod = lazy "nasflat.samplers", lazy "nasflat.ridge", lazy "nasflat.predictor"

--------------------------------------------------------------------------------------------------- sources
--- A latency source: the real data of a space, or the synthetic zoo. Fields:
--   space (Space), space_name, devices (names), n (architectures), arch_strings, synthetic (bool),
--   info (data dir, file checksums), tasks_file (path or nil); methods :ms(device) and :graphs().
local Source = {}
Source.__index = Source

function Source:ms(device)
  local t = self._ms[device]
  if not t then
    t = self.latency:ms(device)
    self._ms[device] = t
  end
  return t
end

--- Row indices (1-based) where `device` was measured.
function Source:measured(device)
  local r = self._measured[device]
  if not r then
    r = self.latency:measured(device)
    self._measured[device] = r
  end
  return r
end

--- The graph batch of every architecture, built once; with `z` (a Tensor(n × Z)) as the supplementary input.
function Source:graphs(z)
  if not self._graphs then self._graphs = self.space:graphs(self.arch_strings) end
  if z == nil then return self._graphs end
  return {ops = self._graphs.ops, adj = self._graphs.adj, z = z}
end

--- Column-wise z-score of a Tensor(n × F) (constant columns become 0), with the column means and standard
-- deviations; given `means` and `sds`, applies those instead of the columns' own.
local function standardize(t, means, sds)
  local n, f = t:size(1), t:size(2)
  local out = t:clone()
  local rows = out:totable()
  means, sds = means or {}, sds or {}
  for j = 1, f do
    if means[j] == nil then
      local s, s2 = 0, 0
      for i = 1, n do local v = rows[i][j]; s = s + v; s2 = s2 + v * v end
      means[j] = s / n
      sds[j] = math.sqrt(math.max(s2 / n - means[j] * means[j], 0))
    end
    local m, sd = means[j], sds[j]
    for i = 1, n do out:set(i, j, sd > 0 and (rows[i][j] - m) / sd or 0) end
  end
  return out, means, sds
end

--- A per-architecture encoding by name: "struct" (METHOD §10 features, standardised), or one of
-- nasflat.encodings (when that module is present).
function Source:encoding(name)
  self._enc = self._enc or {}
  local e = self._enc[name]
  if e then return e end
  if name == "struct" then
    local means, sds
    e, means, sds = standardize(self:features())
    self._struct_stats = {means = means, sds = sds}
  else
    local ok, enc = pcall(require, "nasflat.encodings")
    if not ok then error("experiment: unknown encoding '" .. tostring(name) .. "' (known: struct)", 3) end
    local err
    e, err = enc.get{space = self.space_name, name = name, arch_strings = self.arch_strings,
      data_dir = not self.synthetic and self.info.data or nil}
    if not e then return nil, err end
  end
  self._enc[name] = e
  return e
end

--- Physical (roofline) features of every architecture (space:phys_features), built once: over every layer
-- an eager framework runs, or with `live_only` over the layers a graph compiler keeps.
function Source:phys(live_only)
  local key = live_only and "_phys_live" or "_phys"
  if not self[key] then self[key] = self.space:phys_features(self.arch_strings, nil, live_only) end
  return self[key]
end

--- Roofline-time features of every architecture (space:roof_features, `variant` nil / "weights" / "floors"),
-- built once: over the layers an eager framework runs and those a compiler keeps, side by side (fbnet: every
-- layer is live, so the eager ones only).
function Source:roof(variant)
  local key = "_roof_" .. (variant or "plain")
  if not self[key] then
    local eager = self.space:roof_features(self.arch_strings, nil, false, variant)
    if self.space_name == "fbnet" then
      self[key] = eager
    else
      self[key] = core.hcat{eager, self.space:roof_features(self.arch_strings, nil, true, variant)}
      eager:free()
    end
  end
  return self[key]
end

--- The columns of ln(1 + roof features), each a Tensor(n × 1), built once (the "roof1" component's fits).
function Source:roof_log_columns()
  if not self._roof_cols then
    local L = self:roof():clone():affine(1, 1):log()
    local F = L:size(2)
    local cols = {}
    for j = 1, F do
      local e = core.Tensor.new(F, 1):fill(0)
      e:set(j, 1, 1)
      cols[j] = core.matmul(L, e)   -- column j (times 1, plus zeros: exact)
      e:free()
    end
    L:free()
    self._roof_cols = cols
  end
  return self._roof_cols
end

--- Structural features (METHOD §10) of every architecture, built once.
function Source:features()
  if not self._features then self._features = self.space:struct_features(self.arch_strings) end
  return self._features
end

--- Open a source. opts: data (a directory, or "synthetic"; default: nasflat.data.dir()), space ("nb201"),
-- seed (synthetic zoo seed, 1). Returns a Source or nil, msg.
function M.open_source(opts)
  opts = util.options("experiment.open_source", opts, {data = util.NIL, space = "nb201", seed = 1})
  if opts.space ~= "nb201" and opts.space ~= "fbnet" then
    error("experiment.open_source: space must be 'nb201' or 'fbnet' (got '" .. tostring(opts.space) .. "')", 2)
  end
  local src = setmetatable({space_name = opts.space, _ms = {}, _measured = {}}, Source)
  src.space = space_mod().get(opts.space)
  if opts.data == "synthetic" then
    local zoo = require "nasflat.zoo"
    local lat, err = zoo.latency{space = opts.space, seed = opts.seed}
    if not lat then return nil, err end
    src.latency, src.synthetic = lat, true
    src.info = {data = "synthetic", zoo_seed = opts.seed, zoo_version = zoo.VERSION}
  else
    local dir = opts.data
    if not dir then
      local err
      dir, err = data_mod().dir()
      if not dir then return nil, err end
    end
    local path = dir .. "/" .. opts.space .. "_latency.csv"
    local lat, lerr = data_mod().load_latency(path)
    if not lat then return nil, lerr end
    src.latency = lat
    local crc, size = core.crc32_file(path)
    src.info = {data = dir, files = {[opts.space .. "_latency.csv"] = {crc32 = crc, bytes = size}}}
    local tf = dir .. "/nasflat_tasks.json"
    local f = io.open(tf, "r")
    if f then
      f:close()
      src.tasks_file = tf
      local tcrc, tsize = core.crc32_file(tf)
      src.info.files["nasflat_tasks.json"] = {crc32 = tcrc, bytes = tsize}
    end
  end
  src.devices = src.latency:devices()
  src.n = src.latency:n_archs()
  src.arch_strings = {}
  for i = 1, src.n do src.arch_strings[i] = src.latency:arch_string(i) end
  return src
end

--------------------------------------------------------------------------------------------------- pieces
local function gather(t, rows) return t:index(rows) end

--- Min-max normalise a list of values over themselves (the k target samples: no oracle knowledge).
local function minmax(t)
  local lo, hi = t:min(), t:max()
  local out = t:clone()
  if hi > lo then
    out:add(core.Tensor.new(t:size()):fill(-lo)):scale(1 / (hi - lo))
  else
    out:fill(0.5)
  end
  return out
end

--- Least-squares fit of log(ms) = a + b*score on the k samples; returns a, b (see apply_calibration).
local function calibrate(scores, ms)
  local n, sx, sy, sxx, sxy = scores:size(), 0, 0, 0, 0
  for i = 1, n do
    local x, y = scores:get(i), math.log(ms:get(i))
    sx, sy, sxx, sxy = sx + x, sy + y, sxx + x * x, sxy + x * y
  end
  local den = n * sxx - sx * sx
  local b = den > 0 and (n * sxy - sx * sy) / den or 0
  local a = (sy - b * sx) / n
  return a, b
end

local function apply_calibration(scores, a, b)
  return scores:clone():affine(b, a):exp()
end

--- Score a prediction (ms, or a score for the rank metrics) against the truth on the measured rows.
local function evaluate(pred_rank, pred_ms, truth)
  local m = metrics_mod()
  local r = {spearman = m.spearman(pred_rank, truth), kendall = m.kendall(pred_rank, truth)}
  if pred_ms then
    r.mae_ms = m.mae(pred_ms, truth)
    r.mape = m.mape(pred_ms, truth)
    r.acc10 = m.acc10(pred_ms, truth)
  end
  return r
end

--- Fine-tune a copy of the pre-trained model on the target's samples `rows` (latencies ms_k): device row
-- initialised per opts.init_device, then opts.transfer_* epochs. Returns the model and the source copied.
local function transfer(ctx, rows, ms_k, seed)
  local opts, src, task, target = ctx.opts, ctx.src, ctx.task, ctx.target
  local model = ctx.pre:clone()
  local init_from
  if opts.init_device == "correlation" then
    local best, best_rho = nil, -math.huge
    for _, s in ipairs(task.train) do
      local rho = metrics_mod().spearman(gather(src:ms(s), rows), ms_k)
      if rho == rho and rho > best_rho then best, best_rho = s, rho end
    end
    init_from = best or task.train[1]
  end
  model:add_device(target, {copy_from = init_from})
  model:fit{graphs = ctx.graphs, rows = rows, devices = target, targets = minmax(ms_k),
    epochs = opts.transfer_epochs, batch = opts.transfer_batch, lr = opts.transfer_lr,
    weight_decay = opts.weight_decay, seed = seed}
  return model, init_from
end

--- The GNN fine-tuned on `rows` (latencies ms_k), scoring `out_rows`: the scores, the log-linear calibration
-- a, b fitted on `rows` (log ms = a + b*score), and the source device its embedding was copied from.
local function gnn_scores(ctx, rows, ms_k, out_rows, seed)
  local model, init_from = transfer(ctx, rows, ms_k, seed)
  local g = ctx.graphs
  local a, b = calibrate(model:predict{graphs = g, device = ctx.target, rows = rows}, ms_k)
  local s = model:predict{graphs = g, device = ctx.target, rows = out_rows}
  model:free()
  return s, a, b, init_from
end

--- A ridge component ("ridge", "phys", "phys_live", "roof", "roofw", "floor", each optionally "_ms"; or "roof1")
-- fitted on `rows`:
-- the fit and its predictions in ms for `out_rows`.
local function ridge_component(c, ctx, rows, ms_k, out_rows)
  local X
  if c == "roof1" then
    -- one roofline column (launches included), log-log: the column whose single-feature fit has the smallest
    -- leave-one-out error; rank-wise the prediction is that column itself (a positive slope) or its reverse
    local cols = ctx.src:roof_log_columns()
    local best, best_loo, best_fit
    for j = 1, #cols do
      local fit = ridge_mod().fit{features = cols[j]:index(rows), targets_ms = ms_k, link = "log"}
      local loo = math.huge
      for _, e in ipairs(fit.loo_mse) do if e < loo then loo = e end end
      if not best_loo or loo < best_loo then best, best_loo, best_fit = j, loo, fit end
    end
    return best_fit, best_fit:predict(cols[best]:index(out_rows))
  end
  if c:match("^ridge") then X = ctx.src:features()
  elseif c:match("^floor") then X = ctx.src:roof("floors")
  elseif c:match("^roofw") then X = ctx.src:roof("weights")
  elseif c:match("^roof") then X = ctx.src:roof()
  else X = ctx.src:phys(c:match("^phys_live") ~= nil) end
  local fit = ridge_mod().fit{features = X:index(rows), targets_ms = ms_k,
    link = c:match("_ms$") and "identity" or "log"}
  return fit, fit:predict(X:index(out_rows))
end

--- The pre-training architectures: `pretrain_samples` rows measured on every source device, drawn with the
-- run's seed (the same rows for the GNN's pre-training and the source-device ridges).
local function pretrain_rows(src, task, opts)
  local rng = core.Rng(core.derive_seed(opts.seed, 1000))
  local ok_rows = {}
  for r = 1, src.n do
    local all = true
    for _, d in ipairs(task.train) do
      local v = src:ms(d):get(r)
      if v ~= v then all = false break end
    end
    if all then ok_rows[#ok_rows + 1] = r end
  end
  local pick = rng:sample(#ok_rows, math.min(opts.pretrain_samples, #ok_rows))
  local rows = {}
  for i, p in ipairs(pick) do rows[i] = ok_rows[p] end
  return rows
end

--- The "source" component's inputs: per source device, a ridge of log ms fitted on the pre-training
-- architectures (the GNN's; `pretrain_samples` per device) over every label-free feature we have (phys and
-- phys_live, the METHOD §10 features, roof, and the one-hot choice per position); Tensor(n × sources) of
-- their log-ms predictions for every architecture, built once per run. The target then fits a ridge on
-- these columns: its latency as a combination of what the source devices would measure.
local function source_logms(ctx)
  local cache = ctx.cache
  if cache.source_logms then return cache.source_logms end
  local src = ctx.src
  local onehot = assert(src:encoding("onehot"))
  local X = core.hcat{src:phys(false), src:phys(true), src:features(), src:roof(), onehot}
  local rows = pretrain_rows(src, ctx.task, ctx.opts)
  local Xr = X:index(rows)
  local cols = {}
  for _, d in ipairs(ctx.task.train) do
    local fit = ridge_mod().fit{features = Xr, targets_ms = gather(src:ms(d), rows), link = "log"}
    cols[#cols + 1] = fit:predict(X):log()
  end
  cache.source_logms = core.hcat(cols)
  for _, t in ipairs(cols) do t:free() end
  X:free()
  Xr:free()
  return cache.source_logms
end

--- Log-latency predictions of one hybrid component for `out_rows`, fitted on `rows` (latencies ms_k).
-- GNN: fine-tune, then a log-linear calibration of its scores on the fitted rows.
local function component_logms(c, ctx, rows, ms_k, out_rows, seed)
  if c == "nasflat" then
    local s, a, b = gnn_scores(ctx, rows, ms_k, out_rows, seed)
    return s:affine(b, a)
  end
  if c == "source" then
    local S = source_logms(ctx)
    local fit = ridge_mod().fit{features = S:index(rows), targets_ms = ms_k, link = "log"}
    return fit:predict(S:index(out_rows)):log()
  end
  local fit, p = ridge_component(c, ctx, rows, ms_k, out_rows)
  -- an additive (identity-link) fit can go below zero far from its samples: floor at a tenth of the fastest sample
  if fit.link == "identity" then p:clamp(ms_k:min() / 10) end
  return p:log()
end

local hybrid_weights_once

--- opts.hybrid_bags random subsets of 1..k, each of opts.hybrid_bag_fraction × k members, drawn from `seed`.
local function bag_picks(k, opts, seed)
  local m = math.max(2, math.floor(opts.hybrid_bag_fraction * k + 0.5))
  local rng = core.Rng(core.derive_seed(seed, 5))
  local picks = {}
  for b = 1, opts.hybrid_bags do picks[b] = rng:sample(k, m) end
  return picks
end

--- hybrid_weights_once, or with opts.hybrid_bags = B > 1 (and hybrid_bagging "refit") the mean of its weights
-- over B random subsets of opts.hybrid_bag_fraction (80 %) of the k samples, the components refitted inside
-- each: with 20 samples the choice of weights is the unstable step, and averaging over subsets steadies it
-- (docs/study.md §1). "oof" bags only the weight search, over one K-fold's out-of-fold predictions: no
-- refits, so it suits a hybrid with the GNN, whose fine-tuning dominates the cost.
local function hybrid_weights(comps, ctx, rows, ms_k, seed)
  local B = ctx.opts.hybrid_bags
  if B <= 1 or ctx.opts.hybrid_bagging == "oof" or #comps == 1 or ctx.opts.hybrid_weights == "equal" then
    return hybrid_weights_once(comps, ctx, rows, ms_k, seed)
  end
  local wsum, esum = {}, 0
  for ci = 1, #comps do wsum[ci] = 0 end
  for b, pick in ipairs(bag_picks(#rows, ctx.opts, seed)) do
    local sub = {}
    for j, i in ipairs(pick) do sub[j] = rows[i] end
    local w, e = hybrid_weights_once(comps, ctx, sub, gather(ms_k, pick), core.derive_seed(seed, 10 + b))
    for ci = 1, #comps do wsum[ci] = wsum[ci] + w[ci] / B end
    esum = esum + (e or 0) / B
  end
  return wsum, esum
end

--- Weights of the hybrid's components: "equal", or "cv": the point of the simplex grid (step opts.hybrid_step)
-- with the smallest K-fold cross-validated squared error of log latency on the k samples, over
-- opts.hybrid_repeats splits (ties: the first found, in an order that starts from equal weights); "subsets":
-- the best plain mean of a subset. With hybrid_bagging "oof", the search is bagged over the out-of-fold
-- predictions (see hybrid_weights). Returns the weights and the CV mean squared error.
function hybrid_weights_once(comps, ctx, rows, ms_k, seed)
  local C = #comps
  if ctx.opts.hybrid_weights == "equal" or C == 1 then
    local w = {}
    for i = 1, C do w[i] = 1 / C end
    return w
  end
  local k = #rows
  local folds = math.min(ctx.opts.hybrid_folds, k)
  local R = ctx.opts.hybrid_repeats
  local rng = core.Rng(seed)
  -- oof[c][i]: out-of-fold log-ms predictions of sample i by component c, one per repeat of the K-fold split
  -- (the GNN, costly to fine-tune, keeps its first split's predictions in every repeat)
  local oof = {}
  for ci = 1, C do oof[ci] = {} end
  local y = {}
  for i = 1, k do y[i] = math.log(ms_k:get(i)) end
  local n_oof = 0
  for r = 1, R do
    local perm = rng:permutation(k)
    for f = 1, folds do
      local tr, te, tri, tei = {}, {}, {}, {}
      for j = 1, k do
        local i = perm[j]
        if (j - 1) % folds == f - 1 then te[#te + 1] = rows[i]; tei[#tei + 1] = i
        else tr[#tr + 1] = rows[i]; tri[#tri + 1] = i end
      end
      local ms_tr = gather(ms_k, tri)
      for ci, c in ipairs(comps) do
        if r == 1 or c ~= "nasflat" then
          local p = component_logms(c, ctx, tr, ms_tr, te, core.derive_seed(seed, 100 * f + ci))
          for j, i in ipairs(tei) do oof[ci][n_oof + i] = p:get(j) end
        else
          for _, i in ipairs(tei) do oof[ci][n_oof + i] = oof[ci][i] end
        end
      end
    end
    n_oof = n_oof + k
  end
  local yy = {}
  for j = 1, n_oof do yy[j] = y[(j - 1) % k + 1] end
  -- the weights with the smallest squared error over the out-of-fold predictions `idx`
  local function search(idx)
    if ctx.opts.hybrid_weights ~= "subsets" then
      -- every w with w_c in {0, step, 2 step, ..., 1}, sum 1, after equal weights (C: the same sums as in Lua)
      local w, sse = core.stats.simplex_search(oof, yy, idx, math.floor(1 / ctx.opts.hybrid_step + 0.5))
      return w, sse / #idx
    end
    local best, best_err
    local function try(w)
      local err = 0
      for _, i in ipairs(idx) do
        local p = 0
        for ci = 1, C do p = p + w[ci] * oof[ci][i] end
        err = err + (p - yy[i]) ^ 2
      end
      if not best_err or err < best_err - 1e-12 then best, best_err = {table.unpack(w)}, err end
    end
    local eq = {}
    for i = 1, C do eq[i] = 1 / C end
    try(eq)
    -- the plain mean of every non-empty subset of the components
    for mask = 1, (1 << C) - 1 do
      local w, m = {}, 0
      for ci = 1, C do w[ci] = (mask >> (ci - 1)) & 1; m = m + w[ci] end
      for ci = 1, C do w[ci] = w[ci] / m end
      try(w)
    end
    return best, best_err / #idx
  end
  local all = {}
  for i = 1, n_oof do all[i] = i end
  local B = ctx.opts.hybrid_bags
  if B <= 1 or ctx.opts.hybrid_bagging ~= "oof" then return search(all) end
  -- bagged over subsets of the samples' out-of-fold predictions (no refits)
  local wsum = {}
  for ci = 1, C do wsum[ci] = 0 end
  for _, pick in ipairs(bag_picks(k, ctx.opts, seed)) do
    local idx = {}
    for _, i in ipairs(pick) do
      for r = 0, R - 1 do idx[#idx + 1] = r * k + i end
    end
    local w = search(idx)
    for ci = 1, C do wsum[ci] = wsum[ci] + w[ci] / B end
  end
  local _, err = search(all)
  return wsum, err
end

M._internal = {gather = gather, minmax = minmax, calibrate = calibrate, standardize = standardize,
  hybrid_weights = hybrid_weights}

-- The space a predictor was built for: its space_fbnet metadata, else told by its node count.
local function model_space(model)
  local fb = model:meta().space_fbnet
  if fb == nil then fb = model:config().nodes == space_mod().get("fbnet").info.nodes and 1 or 0 end
  return fb == 1 and "fbnet" or "nb201"
end

--- Whether a predictor fits a space and a supplementary width: true, or nil and what differs.
function M.check_model(model, space_name, z_dim)
  local have = model_space(model)
  if have ~= space_name then return nil, string.format("it is for %s, the data is %s", have, space_name) end
  local want = space_mod().get(space_name):predictor_options{}
  local cfg = model:config()
  if cfg.nodes ~= want.nodes or cfg.n_ops ~= want.n_ops then
    return nil, string.format("it has %d nodes and %d ops, %s graphs have %d and %d", cfg.nodes, cfg.n_ops,
      space_name, want.nodes, want.n_ops)
  end
  if cfg.z_dim ~= z_dim then
    return nil, string.format("its supplementary input has width %d, this run's has %d", cfg.z_dim, z_dim)
  end
  return true
end

--- The graph batch a model saved by M.run scores: arch strings of the model's space, with the supplementary
-- input rebuilt from the statistics the model records. Returns graphs, space name; or nil, message.
function M.model_graphs(model, arch_strings)
  local space_name = model_space(model)
  local space = space_mod().get(space_name)
  for i, a in ipairs(arch_strings) do
    local ok, perr = space:parse(a)
    if not ok then return nil, string.format("architecture %d: %s", i, perr) end
  end
  local g = space:graphs(arch_strings)
  local z_dim = model:config().z_dim
  if z_dim == 0 then return g, space_name end
  local meta = model:meta()
  if meta.z_struct ~= 1 then
    return nil, string.format("the model takes a supplementary input of width %d but does not record how it " ..
      "was built (only struct inputs saved by nasflat.experiment can be rebuilt)", z_dim)
  end
  local means, sds = {}, {}
  for j = 1, z_dim do means[j], sds[j] = meta["z_mean_" .. j], meta["z_sd_" .. j] end
  local f = space:struct_features(arch_strings)
  if f:size(2) ~= z_dim or #means ~= z_dim or #sds ~= z_dim then
    return nil, string.format("the model's supplementary input has width %d, %s struct features %d", z_dim,
      space_name, f:size(2))
  end
  return {ops = g.ops, adj = g.adj, z = standardize(f, means, sds)}, space_name
end

--------------------------------------------------------------------------------------------------- run
M.DEFAULTS = {
  source = util.REQUIRED,        -- a Source (M.open_source)
  task = util.REQUIRED,          -- {name, space, train = {...}, test = {...}} (nasflat.tasks.resolve)
  predictors = {"nasflat", "ridge"}, -- which predictors to evaluate: nasflat (GNN), ridge (§10), hybrid
  -- the hybrid's components (M.HYBRID_COMPONENT_NAMES): the fine-tuned GNN ("nasflat"), the §10 ridge ("ridge"),
  -- ridges on physical features ("phys": every layer an eager framework runs; "phys_live": the layers a graph
  -- compiler keeps) and on roofline-time features ("roof"; "roofw": with each layer's weights in its bytes moved;
  -- "floor": roof plus sums with a minimum time per kernel; "roof1": a power law of the one roofline column that
  -- fits best, 2 parameters for noisy devices); "_ms": the same ridge fitted to milliseconds
  -- (additive costs) instead of log milliseconds; "source": a ridge on the predictions of per-source-device
  -- models fitted on the pre-training architectures. The hybrid predicts the weighted mean of the components'
  -- log latencies. The default has no GNN: with it the 12 tasks score the same (docs/study.md §1), without it
  -- no pre-training is needed.
  hybrid = {"ridge", "phys", "phys_live", "ridge_ms", "phys_ms", "phys_live_ms", "floor", "floor_ms", "roofw", "roofw_ms",
    "roof1", "source"},
  hybrid_weights = "cv",         -- by K-fold CV on the k samples: "cv" (a point of the simplex grid) or "subsets"
                                 -- (the mean of a subset of the components); or "equal"
  hybrid_step = 0.2,             -- grid step of "cv"
  hybrid_folds = 5,
  hybrid_repeats = 1,            -- K-fold splits averaged by "cv" and "subsets" (the GNN keeps its first split's)
  hybrid_bags = 20,              -- "cv"/"subsets" weights averaged over this many random subsets of the samples
  hybrid_bag_fraction = 0.8,     -- the size of those subsets, a fraction of the k samples
  hybrid_bagging = "refit",      -- "refit": CV within each subset; "oof": one CV, the weight search bagged over it
  budgets = {20},                -- transfer samples per target
  trials = 3,                    -- repetitions with derived seeds
  seed = 1,
  pretrain_samples = 512,        -- architectures per source device
  epochs = 150,                  -- pre-training epochs
  batch = 128,
  lr = 1e-3,
  weight_decay = 1e-5,
  transfer_epochs = 30,
  transfer_batch = 16,
  transfer_lr = 1e-3,
  sampler = "kmeans",            -- transfer-sample sampler (nasflat.samplers); chosen by measurement, see docs/study.md
  encoding = "struct+phys",      -- encoding the sampler works on (nasflat.encodings names, or "struct")
  supplementary = "struct",      -- encoding fed to the GNN as z ("none" for no supplementary input)
  model = {},                    -- extra options for nasflat.predictor.new
  init_device = "correlation",   -- "correlation" (METHOD §4) or "mean" of the source rows... or "none"
  pretrained = util.NIL,         -- a pre-trained predictor to reuse instead of training
  save_pretrained = util.NIL,    -- path: save the pre-trained model there (atomically)
  progress = util.NIL,           -- function(fmt, ...) for progress lines
}

M.HYBRID_COMPONENT_NAMES = {"nasflat", "ridge", "phys", "phys_live", "ridge_ms", "phys_ms", "phys_live_ms",
  "roof", "roof_ms", "roofw", "roofw_ms", "floor", "floor_ms", "roof1", "source"}
M.HYBRID_COMPONENTS = {}
for _, c in ipairs(M.HYBRID_COMPONENT_NAMES) do M.HYBRID_COMPONENTS[c] = true end
M.HYBRID_WEIGHTS = {cv = true, subsets = true, equal = true}
M.HYBRID_BAGGING = {refit = true, oof = true}

--- CSV cells of a run record, one string per (target, budget, trial, predictor):
-- "target,budget,trial,predictor,spearman,kendall,mae_ms,mape,acc10,seed"; `missing` (default "-") for a metric
-- that is absent or NaN. Callers prefix and suffix their own columns.
function M.csv_cells(rec, missing)
  missing = missing or "-"
  local function f(x, digits)
    if x == nil or x ~= x then return missing end
    return string.format("%." .. digits .. "f", x)
  end
  local out = {}
  for _, t in ipairs(rec.targets) do
    for _, b in ipairs(t.budgets) do
      for _, run in ipairs(b.trials) do
        for _, p in ipairs({"hybrid", "nasflat", "ridge"}) do
          local m = run[p]
          if m then
            out[#out + 1] = string.format("%s,%d,%d,%s,%s,%s,%s,%s,%s,%d", t.device, b.budget, run.trial, p,
              f(m.spearman, 6), f(m.kendall, 6), f(m.mae_ms, 6), f(m.mape, 4), f(m.acc10, 4), run.seed)
          end
        end
      end
    end
  end
  return out
end

--- Run one task. Returns the result record (see README, "Results").
function M.run(opts)
  opts = util.options("experiment.run", opts, M.DEFAULTS)
  local src, task = opts.source, opts.task
  local report = opts.progress or function() end
  local t_start = util.now()
  local want = {}
  for _, p in ipairs(opts.predictors) do
    if p ~= "nasflat" and p ~= "ridge" and p ~= "hybrid" then
      error("experiment.run: unknown predictor '" .. tostring(p) .. "' (known: nasflat, ridge, hybrid)", 2)
    end
    want[p] = true
  end
  local hybrid_gnn = false
  if want.hybrid then
    if type(opts.hybrid) ~= "table" or #opts.hybrid == 0 then
      error("experiment.run: option 'hybrid' must be a non-empty list of components (" ..
        table.concat(M.HYBRID_COMPONENT_NAMES, ", ") .. ")", 2)
    end
    for _, c in ipairs(opts.hybrid) do
      if not M.HYBRID_COMPONENTS[c] then
        error("experiment.run: unknown hybrid component '" .. tostring(c) .. "' (known: " ..
          table.concat(M.HYBRID_COMPONENT_NAMES, ", ") .. ")", 2)
      end
      if c == "nasflat" then hybrid_gnn = true end
    end
    if not M.HYBRID_WEIGHTS[opts.hybrid_weights] then
      error("experiment.run: option 'hybrid_weights' must be \"cv\", \"subsets\" or \"equal\" (got " ..
        tostring(opts.hybrid_weights) .. ")", 2)
    end
    if type(opts.hybrid_step) ~= "number" or opts.hybrid_step <= 0 or opts.hybrid_step > 1 then
      error("experiment.run: option 'hybrid_step' must be a number in (0, 1]", 2)
    end
    if math.type(opts.hybrid_folds) ~= "integer" or opts.hybrid_folds < 2 then
      error("experiment.run: option 'hybrid_folds' must be an integer >= 2", 2)
    end
    if math.type(opts.hybrid_repeats) ~= "integer" or opts.hybrid_repeats < 1 then
      error("experiment.run: option 'hybrid_repeats' must be an integer >= 1", 2)
    end
    if math.type(opts.hybrid_bags) ~= "integer" or opts.hybrid_bags < 1 then
      error("experiment.run: option 'hybrid_bags' must be an integer >= 1", 2)
    end
    if not M.HYBRID_BAGGING[opts.hybrid_bagging] then
      error("experiment.run: option 'hybrid_bagging' must be \"refit\" or \"oof\" (got " ..
        tostring(opts.hybrid_bagging) .. ")", 2)
    end
    local f = opts.hybrid_bag_fraction
    if type(f) ~= "number" or not (f > 0 and f < 1) then
      error("experiment.run: option 'hybrid_bag_fraction' must be a number in (0, 1)", 2)
    end
  end
  local gnn = want.nasflat or hybrid_gnn
  local record = {
    task = task.name, space = src.space_name, train = task.train, test = task.test,
    config = {}, targets = {}, timings = {}, version = core.version,
  }
  for k, v in pairs(opts) do
    if k ~= "source" and k ~= "task" and k ~= "progress" and k ~= "pretrained" then record.config[k] = v end
  end

  local zenc
  if gnn and opts.supplementary ~= "none" then
    local err
    zenc, err = src:encoding(opts.supplementary)
    if not zenc then return nil, err end
  end

  -- pre-training on the source devices, once
  local pre
  if gnn then
    local t0 = util.now()
    if opts.pretrained then
      pre = opts.pretrained
      local ok, perr = M.check_model(pre, src.space_name, zenc and zenc:size(2) or 0)
      if not ok then return nil, "pretrained model: " .. perr end
    else
      -- one set of architectures, measured on every source device
      local pick = pretrain_rows(src, task, opts)
      local n = #pick
      local rows, devs, targets = {}, {}, core.Tensor.new(n * #task.train)
      local k = 0
      for di, d in ipairs(task.train) do
        local norm = src.latency:norm(d)
        for _, r in ipairs(pick) do
          k = k + 1
          rows[k] = r
          devs[k] = di
          targets:set(k, norm:get(r))
        end
      end
      local model_opts = {}
      for kk, v in pairs(opts.model) do model_opts[kk] = v end
      model_opts.devices = task.train
      model_opts.seed = model_opts.seed or opts.seed
      model_opts.z_dim = zenc and zenc:size(2) or 0
      pre = predictor_mod().new(src.space:predictor_options(model_opts))
      pre:set_meta("space_fbnet", src.space_name == "fbnet" and 1 or 0)
      if zenc and opts.supplementary == "struct" then
        -- what M.model_graphs needs to rebuild z for new architectures
        pre:set_meta("z_struct", 1)
        for j, m in ipairs(src._struct_stats.means) do
          pre:set_meta("z_mean_" .. j, m)
          pre:set_meta("z_sd_" .. j, src._struct_stats.sds[j])
        end
      end
      pre:fit{graphs = src:graphs(zenc), rows = rows, devices = devs, targets = targets, epochs = opts.epochs,
        batch = opts.batch, lr = opts.lr, weight_decay = opts.weight_decay, seed = core.derive_seed(opts.seed, 1001),
        on_epoch = function(info)
          report("pre-training %s: epoch %d/%d loss %.4f", task.name, info.epoch, opts.epochs, info.loss)
        end}
    end
    record.timings.pretrain_s = util.now() - t0
    if opts.save_pretrained then
      local ok, err = pre:save(opts.save_pretrained)
      if not ok then return nil, err end
      record.pretrained_model = opts.save_pretrained
    end
  end

  local t_transfer = util.now()
  local enc, eerr = src:encoding(opts.encoding)
  if not enc then return nil, eerr end
  local graphs = gnn and src:graphs(zenc) or nil
  local run_cache = {}
  for _, target in ipairs(task.test) do
    local truth_all = src:ms(target)
    local measured = src:measured(target)
    local truth = gather(truth_all, measured)
    local entry = {device = target, n_measured = #measured, budgets = {}}
    record.targets[#record.targets + 1] = entry
    local ctx = {pre = pre, opts = opts, src = src, task = task, target = target, graphs = graphs,
      cache = run_cache}
    for _, k in ipairs(opts.budgets) do
      local runs = {}
      for trial = 1, opts.trials do
        local tseed = core.derive_seed(opts.seed, 10000 * trial + k)
        local rows = samplers_mod().select{method = opts.sampler, n = k, encoding = enc,
          candidates = measured, seed = tseed}
        local ms_k = gather(truth_all, rows)
        local run = {trial = trial, seed = tseed, rows = rows}
        local logms = {}   -- per component: log-ms predictions on the measured rows
        if gnn then
          report("%s: transfer to %s, %d samples, trial %d", task.name, target, k, trial)
          local scores, a, b, init_from = gnn_scores(ctx, rows, ms_k, measured, tseed)
          if want.nasflat then
            run.nasflat = evaluate(scores, apply_calibration(scores, a, b), truth)
            run.nasflat.init_device = init_from
          end
          logms.nasflat = scores:affine(b, a)
        end
        if want.ridge then
          local fit, pred = ridge_component("ridge", ctx, rows, ms_k, measured)
          run.ridge = evaluate(pred, pred, truth)
          run.ridge.lambda = fit.lambda
          logms.ridge = pred:log()
        end
        if want.hybrid then
          local w, cv_mse = hybrid_weights(opts.hybrid, ctx, rows, ms_k, core.derive_seed(tseed, 77))
          local pred = core.Tensor.new(#measured):fill(0)
          local weights = {}
          for ci, c in ipairs(opts.hybrid) do
            if not logms[c] then logms[c] = component_logms(c, ctx, rows, ms_k, measured, tseed) end
            if w[ci] > 0 then pred:add(logms[c], w[ci]) end
            weights[c] = w[ci]
          end
          pred:exp()
          run.hybrid = evaluate(pred, pred, truth)
          run.hybrid.weights, run.hybrid.cv_mse = weights, cv_mse
        end
        runs[#runs + 1] = run
      end
      local summary = {budget = k, trials = runs}
      for p in pairs(want) do
        local sp, kt = {}, {}
        for _, r in ipairs(runs) do sp[#sp + 1] = r[p].spearman; kt[#kt + 1] = r[p].kendall end
        local m, s = util.mean_std(sp)
        local km, ks = util.mean_std(kt)
        summary[p] = {spearman = m, spearman_std = s, kendall = km, kendall_std = ks}
      end
      entry.budgets[#entry.budgets + 1] = summary
    end
  end
  record.timings.transfer_s = util.now() - t_transfer
  record.timings.total_s = util.now() - t_start
  record.peak_rss_mib = util.peak_rss_mib()
  -- overall means per predictor and budget
  record.mean = {}
  for p in pairs(want) do
    record.mean[p] = {}
    for bi, k in ipairs(opts.budgets) do
      local xs = {}
      for _, e in ipairs(record.targets) do xs[#xs + 1] = e.budgets[bi][p].spearman end
      record.mean[p][tostring(k)] = util.mean_std(xs)
    end
  end
  return record
end

return M
