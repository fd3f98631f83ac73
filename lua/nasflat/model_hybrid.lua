--- The hybrid latency model (kind "hybrid", the shipped predictor; the interface is nasflat.model's).
-- Components, each a model of log latency fitted on the target's samples (docs/study.md §1 says how each was
-- chosen):
--   ridge, phys, phys_live, roofw, floor   a ridge on a nasflat.features matrix (struct, phys, phys_live, roofw,
--                                          floor), fitted to log ms;
--   ..._ms                                 the same ridge fitted to ms (additive costs), floored at a tenth of the
--                                          fastest sample;
--   roof1                                  a power law of the one roofline column (roof_log) with the smallest
--                                          leave-one-out error: two parameters, for noisy devices;
--   source                                 a ridge on the log-ms predictions of the source-device models
--                                          (nasflat.source_models);
--   nasflat                                the fine-tuned graph network (nasflat.model_gnn), log-linearly
--                                          calibrated on the samples (needs a pre-trained network: option gnn).
-- The prediction is the weighted mean of the components' log ms. Weights ("cv"): the point of a simplex grid
-- (step `step`) with the smallest `folds`-fold cross-validated squared error of log latency on the samples,
-- averaged over `bags` random subsets of `bag_fraction` of the samples, the components refitted in each
-- ("refit"; "oof" bags only the weight search over one K-fold's out-of-fold predictions: the cheap choice with the
-- graph network). "equal": plain mean.
-- Intervals: every out-of-fold prediction of that cross-validation (each bag's), weighted like the model, gives a
-- residual of log latency; nasflat.model turns their distribution into split-conformal intervals.
local core = require "nasflat.core"
local util = require "nasflat.util"
local ridge = require "nasflat.ridge"

local M = {}

M.COMPONENT_NAMES = {"nasflat", "ridge", "phys", "phys_live", "ridge_ms", "phys_ms", "phys_live_ms",
  "roofw", "roofw_ms", "floor", "floor_ms", "roof1", "source"}
M.COMPONENTS = {}
for _, c in ipairs(M.COMPONENT_NAMES) do M.COMPONENTS[c] = true end
M.WEIGHTS = {cv = true, equal = true}
M.BAGGING = {refit = true, oof = true}
M.MIN_SAMPLES = 4

M.DEFAULTS = {
  components = {"ridge", "phys", "phys_live", "ridge_ms", "phys_ms", "phys_live_ms", "floor", "floor_ms", "roofw",
    "roofw_ms", "roof1", "source"},
  weights = "cv",          -- "cv" or "equal"
  step = 0.2,              -- grid step of "cv"
  folds = 5,
  bags = 20,               -- "cv" weights averaged over this many random subsets of the samples (1: no bagging)
  bag_fraction = 0.8,      -- the size of those subsets, a fraction of the samples
  bagging = "refit",       -- "refit": CV within each subset; "oof": one CV, the weight search bagged over it
  pretrain_samples = 512,  -- architectures per source device for the source models (when they are fitted here)
  gnn = util.NIL,          -- with component "nasflat": {pretrained = nasflat.predictor, ...} (nasflat.model_gnn)
  feature_cache = util.NIL, -- a nasflat.features cache (or view) over the samples' architectures, to share matrices
}

local FEATURES = {ridge = "struct", phys = "phys", phys_live = "phys_live", roofw = "roofw", floor = "floor",
  roof = "roof"}

local function unit(F, j)
  local e = core.Tensor.new(F, 1):fill(0)
  e:set(j, 1, 1)
  return e
end

--- Column j of a cache's roof_log matrix, built once per cache.
local roof_column
function roof_column(cache, j)
  cache._roofcols = cache._roofcols or {}
  local c = cache._roofcols[j]
  if not c and cache.parent then
    c = roof_column(cache.parent, j):index(cache.rows)
    cache._roofcols[j] = c
  elseif not c then
    local L = cache:get("roof_log")
    local e = unit(L:size(2), j)
    c = core.matmul(L, e)   -- column j (times 1, plus zeros: exact)
    e:free()
    cache._roofcols[j] = c
  end
  return c
end

local function sub(t, idx) if idx then return t:index(idx) end return t end

--------------------------------------------------------------------------------------------------- components
-- A fitted component: a table with :apply(cache, idx) -> log-ms Tensor for the cache's rows idx (nil: all) and
-- :state(). fit_component(c, ctx, idx, ms) fits on the rows idx of ctx.cache (the samples' features), ms their
-- latencies.
local Fitted = {}
Fitted.__index = Fitted

function Fitted:apply(cache, idx)
  local c = self.name
  if c == "nasflat" then return self.gnn:apply(cache, idx) end
  if c == "source" then return self.fit:predict(sub(self.sm:logms(cache), idx)):log() end
  if c == "roof1" then return self.fit:predict(sub(roof_column(cache, self.column), idx)):log() end
  local p = self.fit:predict(sub(cache:get(FEATURES[c:gsub("_ms$", "")]), idx))
  if self.fit.link == "identity" then p:clamp(self.floor) end
  return p:log()
end

--- Free what the component holds outside Lua (the graph network's tuned copies) now, not when collected.
function Fitted:free()
  if self.gnn then self.gnn:free() end
end

function Fitted:state()
  if self.name == "nasflat" then return {name = self.name} end
  return {name = self.name, ridge = self.fit:state(), column = self.column, floor = self.floor}
end

local function fit_component(c, ctx, idx, ms, seed)
  local cache = ctx.cache
  local f = setmetatable({name = c}, Fitted)
  if c == "nasflat" then
    f.gnn = require("nasflat.model_gnn").fit_component(ctx, idx, ms, seed)
  elseif c == "source" then
    f.sm = ctx.sm
    f.fit = ridge.fit{features = ctx.sm:logms(cache):index(idx), targets_ms = ms, link = "log"}
  elseif c == "roof1" then
    local F = cache:get("roof_log"):size(2)
    local best_loo
    for j = 1, F do
      local fit = ridge.fit{features = roof_column(cache, j):index(idx), targets_ms = ms, link = "log"}
      local loo = math.huge
      for _, e in ipairs(fit.loo_mse) do if e < loo then loo = e end end
      if not best_loo or loo < best_loo then f.column, best_loo, f.fit = j, loo, fit end
    end
  else
    local X = cache:get(FEATURES[c:gsub("_ms$", "")]):index(idx)
    f.fit = ridge.fit{features = X, targets_ms = ms, link = c:match("_ms$") and "identity" or "log"}
    -- an additive (identity-link) fit can go below zero far from its samples: floor at a tenth of the fastest one
    if f.fit.link == "identity" then f.floor = ms:min() / 10 end
  end
  return f
end

--------------------------------------------------------------------------------------------------- weights
--- bags random subsets of 1..k, each of bag_fraction × k members, drawn from `seed`.
local function bag_picks(k, o, seed)
  local m = math.max(2, math.floor(o.bag_fraction * k + 0.5))
  local rng = core.Rng(core.derive_seed(seed, 5))
  local picks = {}
  for b = 1, o.bags do picks[b] = rng:sample(k, m) end
  return picks
end

--- One K-fold CV of every component over the sample rows `rows` (latencies ms): oof[c][i], the out-of-fold log-ms
-- prediction of rows[i] by component c, and y[i] = log ms.
local function cv_oof(ctx, rows, ms, seed)
  local comps = ctx.o.components
  local k = #rows
  local folds = math.min(ctx.o.folds, k)
  local rng = core.Rng(seed)
  local oof = {}
  for ci = 1, #comps do oof[ci] = {} end
  local y = {}
  for i = 1, k do y[i] = math.log(ms:get(i)) end
  local perm = rng:permutation(k)
  for f = 1, folds do
    local tr, te, tri, tei = {}, {}, {}, {}
    for j = 1, k do
      local i = perm[j]
      if (j - 1) % folds == f - 1 then te[#te + 1] = rows[i]; tei[#tei + 1] = i
      else tr[#tr + 1] = rows[i]; tri[#tri + 1] = i end
    end
    local ms_tr = ms:index(tri)
    for ci, c in ipairs(comps) do
      local fc = fit_component(c, ctx, tr, ms_tr, core.derive_seed(seed, 100 * f + ci))
      local p = fc:apply(ctx.cache, te)
      fc:free()
      for j, i in ipairs(tei) do oof[ci][i] = p:get(j) end
    end
  end
  return oof, y
end

--- The simplex-grid weights with the smallest squared error over the out-of-fold predictions `idx`.
local function search(ctx, oof, y, idx)
  local w, sse = core.stats.simplex_search(oof, y, idx, math.floor(1 / ctx.o.step + 0.5))
  return w, sse / #idx
end

local function all_of(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

--- Weights from one CV over `rows` (and, with bagging "oof", bagged over it). Returns the weights, the CV mean
-- squared error and the CV (oof, y, rows).
local function weights_once(ctx, rows, ms, seed)
  local C = #ctx.o.components
  local oof, y = cv_oof(ctx, rows, ms, seed)
  local all = all_of(#rows)
  local cv = {oof = oof, y = y, rows = rows}
  if ctx.o.bags <= 1 or ctx.o.bagging ~= "oof" then
    local w, e = search(ctx, oof, y, all)
    return w, e, cv
  end
  local wsum = {}
  for ci = 1, C do wsum[ci] = 0 end
  for _, pick in ipairs(bag_picks(#rows, ctx.o, seed)) do
    local w = search(ctx, oof, y, pick)
    for ci = 1, C do wsum[ci] = wsum[ci] + w[ci] / ctx.o.bags end
  end
  local _, err = search(ctx, oof, y, all)
  return wsum, err, cv
end

--- The hybrid's weights for the k samples, and the CV runs they came from (for the residuals).
local function weights(ctx, k, ms, seed)
  local C = #ctx.o.components
  if ctx.o.weights == "equal" or C == 1 then
    local w = {}
    for i = 1, C do w[i] = 1 / C end
    return w, nil, {}
  end
  if ctx.o.bags <= 1 or ctx.o.bagging == "oof" then
    local w, e, cv = weights_once(ctx, all_of(k), ms, seed)
    return w, e, {cv}
  end
  local wsum, esum, cvs = {}, 0, {}
  for ci = 1, C do wsum[ci] = 0 end
  for b, pick in ipairs(bag_picks(k, ctx.o, seed)) do
    local w, e, cv = weights_once(ctx, pick, ms:index(pick), core.derive_seed(seed, 10 + b))
    for ci = 1, C do wsum[ci] = wsum[ci] + w[ci] / ctx.o.bags end
    esum = esum + (e or 0) / ctx.o.bags
    cvs[b] = cv
  end
  return wsum, esum, cvs
end

--- Sorted absolute residuals of log latency: every out-of-fold prediction of every CV run (each bag's), weighted like
-- the model, against the sample's log ms. Each is the error of one fit on a part of the samples at an architecture
-- it did not see (pooled, not averaged per sample over the bags: an average of bags' predictions is a better
-- predictor than the model's own fit, and its residuals gave intervals that covered 81-83 % of FD, F1 and F3 at 90 %
-- nominal; docs/study.md §5).
local function residuals(w, cvs, ms)
  local r = {}
  for _, cv in ipairs(cvs) do
    for j, i in ipairs(cv.rows) do
      local p = 0
      for ci = 1, #w do p = p + w[ci] * cv.oof[ci][j] end
      r[#r + 1] = math.abs(math.log(ms:get(i)) - p)
    end
  end
  table.sort(r)
  return r
end

--------------------------------------------------------------------------------------------------- fit / predict
--- Whether hybrid options are valid: true, or nil and what is wrong (the CLI reports it as a usage error; a fit
-- raises it).
function M.validate(o)
  if type(o.components) ~= "table" or #o.components == 0 then
    return nil, "option 'components' must be a non-empty list (" .. table.concat(M.COMPONENT_NAMES, ", ") .. ")"
  end
  for _, c in ipairs(o.components) do
    if not M.COMPONENTS[c] then
      return nil, "unknown hybrid component '" .. tostring(c) .. "' (known: " .. table.concat(M.COMPONENT_NAMES, ", ") ..
        ")"
    end
  end
  if not M.WEIGHTS[o.weights] then
    return nil, "option 'weights' must be \"cv\" or \"equal\" (got " .. tostring(o.weights) .. ")"
  end
  if type(o.step) ~= "number" or o.step <= 0 or o.step > 1 then return nil, "option 'step' must be a number in (0, 1]" end
  if math.type(o.folds) ~= "integer" or o.folds < 2 then return nil, "option 'folds' must be an integer >= 2" end
  if math.type(o.bags) ~= "integer" or o.bags < 1 then return nil, "option 'bags' must be an integer >= 1" end
  if not M.BAGGING[o.bagging] then
    return nil, "option 'bagging' must be \"refit\" or \"oof\" (got " .. tostring(o.bagging) .. ")"
  end
  local f = o.bag_fraction
  if type(f) ~= "number" or not (f > 0 and f < 1) then return nil, "option 'bag_fraction' must be a number in (0, 1)" end
  if type(o.gnn) == "table" then
    local G = require "nasflat.model_gnn"
    for key in pairs(o.gnn) do
      if G.DEFAULTS[key] == nil then
        return nil, string.format("unknown option 'gnn.%s' (the graph network's options are nasflat.model_gnn's)",
          tostring(key))
      end
    end
  end
  return true
end

local function check(o)
  local ok, err = M.validate(o)
  if not ok then error("model.fit: " .. err, 4) end
end

local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

--- Source models for a fit: the given object, or fitted on the data's devices (o.sources names, default all but
-- the target).
function M.source_models(o, space)
  local sm_mod = require "nasflat.source_models"
  if type(o.sources) == "table" and getmetatable(o.sources) and o.sources.logms then
    if o.sources.space ~= space.name then
      return nil, string.format("the source models are for %s, the samples for %s", o.sources.space, space.name)
    end
    return o.sources
  end
  local src = o.data
  if type(src) ~= "table" then
    local err
    src, err = require("nasflat.source").open{data = src, space = space.name}
    if not src then return nil, "source devices: " .. err end
  end
  local devices = o.sources
  if devices == nil then
    devices = src:devices_except(o.target)
  elseif type(devices) ~= "table" or #devices == 0 then
    error("model.fit: option 'sources' must be a non-empty list of device names or source models", 4)
  end
  return sm_mod.fit{source = src, devices = devices, samples = o.pretrain_samples, seed = o.seed}
end

function M.fit(o, space, archs, ms)
  check(o)
  local ctx = {o = o, space = space, cache = o.feature_cache or require("nasflat.features").cache(space, archs),
    archs = archs}
  if has(o.components, "source") then
    local sm, err = M.source_models(o, space)
    if not sm then return nil, err end
    ctx.sm = sm
  end
  if has(o.components, "nasflat") then
    local G = require "nasflat.model_gnn"
    if type(o.gnn) == "table" then G.check_transfer(o.gnn, "model.fit: gnn") end
    local g, err = G.component_context(o, space, archs)
    if not g then return nil, err end
    ctx.gnn = g
  end
  local k = #archs
  local w, cv_mse, cvs = weights(ctx, k, ms, core.derive_seed(o.seed, 77))
  local all = all_of(k)
  if #cvs == 0 then   -- equal weights: one K-fold CV for the residuals
    local oof = cv_oof(ctx, all, ms, core.derive_seed(o.seed, 78))
    cvs = {{oof = oof, rows = all}}
  end
  local fitted = {}
  for ci, c in ipairs(o.components) do fitted[ci] = fit_component(c, ctx, all, ms, o.seed) end
  if not o.feature_cache then ctx.cache:free() end
  local opts = {}
  for key in pairs(M.DEFAULTS) do if key ~= "gnn" and key ~= "feature_cache" then opts[key] = o[key] end end
  return {components = {table.unpack(o.components)}, weights = w, cv_mse = cv_mse, fitted = fitted, sm = ctx.sm,
    options = opts, residuals = residuals(w, cvs, ms)}
end

--- Log-ms predictions for every row of a nasflat.features cache.
function M.logms(m, cache)
  local pred = core.Tensor.new(#cache.list):fill(0)
  for ci, f in ipairs(m.fitted) do
    if m.weights[ci] > 0 then
      local p = f:apply(cache, nil)
      pred:add(p, m.weights[ci])
      p:free()
    end
  end
  return pred
end

function M.free(m)
  for _, f in ipairs(m.fitted) do f:free() end
end

function M.refit_options(m)
  local o = {}
  for k, v in pairs(m.options) do o[k] = v end
  o.sources = m.sm
  return o
end

function M.state(m)
  local comps = {}
  for ci, f in ipairs(m.fitted) do comps[ci] = f:state() end
  if has(m.components, "nasflat") then
    error("model:save: a hybrid with the graph-network component cannot be saved yet", 3)
  end
  return {components = m.components, weights = m.weights, cv_mse = m.cv_mse, fitted = comps, options = m.options,
    source_models = m.sm and m.sm:state() or nil}
end

function M.from_state(t, _, space)
  if type(t.components) ~= "table" or type(t.weights) ~= "table" or type(t.fitted) ~= "table" or
    #t.weights ~= #t.components or #t.fitted ~= #t.components then
    return nil, "malformed hybrid state"
  end
  local sm
  if t.source_models then
    local err
    sm, err = require("nasflat.source_models").from_state(t.source_models)
    if not sm then return nil, err end
  end
  local fitted = {}
  for ci, s in ipairs(t.fitted) do
    if not M.COMPONENTS[s.name] or s.name ~= t.components[ci] or s.name == "nasflat" then
      return nil, "malformed hybrid state (component " .. ci .. ")"
    end
    local r, err = ridge.from_state(s.ridge)
    if not r then return nil, "component " .. s.name .. ": " .. err end
    if s.name == "source" and not sm then return nil, "component source without source models" end
    fitted[ci] = setmetatable({name = s.name, fit = r, column = s.column, floor = s.floor, sm = sm}, Fitted)
  end
  local _ = space
  return {components = t.components, weights = t.weights, cv_mse = t.cv_mse, fitted = fitted, sm = sm,
    options = t.options}
end

function M.describe(m)
  local parts = {}
  for ci, c in ipairs(m.components) do parts[#parts + 1] = string.format("%s %.3f", c, m.weights[ci]) end
  local lines = {"weights: " .. table.concat(parts, ", ")}
  if m.sm then
    lines[#lines + 1] = string.format("sources: %s (%d architectures each)", table.concat(m.sm.devices, ", "),
      m.sm.samples or 0)
    local files = m.sm.data and m.sm.data.files
    if files then
      local cs = {}
      for name, f in pairs(files) do cs[#cs + 1] = string.format("%s crc32 %s", name, f.crc32) end
      table.sort(cs)
      lines[#lines + 1] = "data: " .. table.concat(cs, ", ")
    end
  end
  return lines
end

return M
