--- Hardware-aware architecture search (METHOD §7): the most accurate architecture under a latency budget on a
-- device, with few measurements. Lua loops over the C kernels of core.search (constrained top-k selection,
-- Pareto ranks, 2-D hypervolume) and the predictor interface (nasflat.model).
--
--   local search = require "nasflat.search"
--   local dev = require "nasflat.search_device"
--   local d = assert(dev.dataset{source = src, device = "pixel2"})
--   local r = assert(search.adaptive{space = "nb201", objective = "cifar10",
--     constraints = {{device = d, budget_ms = 12}}, measurements = 30,
--     fit = {data = src, sources = sm, target = "pixel2"}})
--   r.pick   -- {arch, objective, report, ms = {pixel2 = 11.0}}: MEASURED under the budget, or nil (r.pick_reason)
--
-- Objectives (search.objective; every objective is maximised): "cifar10", "cifar100", "imagenet16" (NB201
-- accuracy of nb201_accuracy.csv: the search sees the validation accuracy, the result reports the test
-- accuracy), "params", "flops" (the space's cost; a leading "-" minimises: "-params"), or a Lua function
-- f(list of arch strings) -> list of numbers (higher is better). FBNet has no accuracy table: use a function.
--
-- Searches (each takes one options table; unknown options raise; failures of the world return nil, msg):
--   adaptive        fit on `init` measured samples, then repeatedly measure the `batch` candidates of best
--                   expected gain (objective gain over the best measured-feasible pick × the predicted
--                   probability of being under every budget, from the predictor's calibrated interval), add
--                   them to the samples, refit; until `measurements` per device are spent. The pick is the
--                   best architecture whose latency was MEASURED under every budget.
--   random_search   measure-only: `measurements` random architectures of the pool.
--   evolution       measure-only regularised (aging) evolution (Real et al. 2019).
--   predict_once    measure `init`, fit once, measure the `verify` best predicted-feasible, pick.
--   select          exhaustive constrained selection over a pool with fitted models (no measurement): the k
--                   best objectives predicted under the budgets (`margin` "hi": the interval's upper bound).
--   evolve          predictor-only aging evolution over the whole space (FBNet's 9^22), batched predictions.
--   pareto_evolve   predictor-only multi-objective evolution (non-dominated sorting + crowding) of the
--                   objective/latency front.
--   front, hypervolume   the measured/true fronts and their 2-D hypervolume.
local core = require "nasflat.core"
local util = require "nasflat.util"
local device_mod = require "nasflat.search_device"

local S = core.search
local M = {}

M.device = device_mod
M.ACCURACY = {cifar10 = "cifar10", cifar100 = "cifar100", imagenet16 = "imagenet16"}
M.OBJECTIVE_NAMES = {"cifar10", "cifar100", "imagenet16", "params", "flops"}

--- The normal quantile z with P(|Z| < z) = p (a two-sided interval of coverage p is ±z sd); bisection on erf.
function M.z_of(p)
  local lo, hi = 0, 10
  for _ = 1, 100 do
    local mid = (lo + hi) / 2
    -- P(|Z| < mid) = erf(mid / sqrt 2), by its Taylor series (converges for every x; 60 terms to x = 7)
    local x = mid / math.sqrt(2)
    local sum, term = x, x
    for n = 1, 60 do term = -term * x * x / n; sum = sum + term / (2 * n + 1) end
    if 2 / math.sqrt(math.pi) * sum < p then lo = mid else hi = mid end
  end
  return (lo + hi) / 2
end

local function space_of(s, fname)
  if type(s) == "table" and s.name then return s end
  if s ~= "nb201" and s ~= "fbnet" then
    error(string.format("%s: option 'space' must be nb201 or fbnet (got %s)", fname, tostring(s)), 3)
  end
  return require("nasflat.space").get(s)
end

--------------------------------------------------------------------------------------------------- objectives
local acc_cache = {}

local function accuracy_table(dir)
  local key = dir or "<default>"
  if acc_cache[key] then return acc_cache[key] end
  local ds, err = require("nasflat.data").open{space = "nb201", dir = dir}
  if not ds then return nil, err end
  local tab, terr = ds:accuracy()
  if not tab then return nil, terr end
  local space = require("nasflat.space").get("nb201")
  local strings = tab:column("arch_string")
  local row = {}
  for i, a in ipairs(strings) do row[space:format(space:parse(a))] = i end
  local cols = {}
  for _, c in ipairs{"cifar10_valid", "cifar10_test", "cifar100_valid", "cifar100_test", "imagenet16_valid",
    "imagenet16_test"} do
    local t = tab:column(c)
    if not t then return nil, "nb201_accuracy.csv has no column " .. c end
    cols[c] = t:totable()
  end
  local out = {row = row, cols = cols}
  acc_cache[key] = out
  return out
end

--- An objective from a name or a function (see the module comment). opts: space (required), data (the data
-- directory of nb201_accuracy.csv; default nasflat.data.dir()). Unknown names raise; returns an objective
-- {name, about, values(list) -> list, report(list) -> list or nil}, or nil, msg (accuracy file missing, an
-- accuracy objective on FBNet).
function M.objective(spec, opts)
  opts = util.options("search.objective", opts, {space = util.REQUIRED, data = util.NIL})
  local space = space_of(opts.space, "search.objective")
  if type(spec) == "table" and type(spec.values) == "function" then return spec end
  if type(spec) == "function" then
    return {name = "function", about = "a user function (higher is better)", values = function(list)
      local v = spec(list)
      if type(v) == "userdata" then v = v:totable() end
      if type(v) ~= "table" or #v ~= #list then
        error(string.format("search: the objective function returned %s for %d architectures (expected a list " ..
          "of %d numbers)", type(v) == "table" and (#v .. " values") or type(v), #list, #list), 0)
      end
      return v
    end}
  end
  if type(spec) ~= "string" then
    error("search.objective: objective must be a name or a function (got " .. type(spec) .. ")", 2)
  end
  local sign, name = 1, spec
  if name:sub(1, 1) == "-" then sign, name = -1, name:sub(2) end
  if M.ACCURACY[name] then
    if sign < 0 then error("search.objective: an accuracy cannot be minimised ('" .. spec .. "')", 2) end
    if space.name ~= "nb201" then
      return nil, string.format("%s has no accuracy table (objective '%s'): pass a Lua function as the objective, " ..
        "e.g. FLOPs-normalised", space.name, spec)
    end
    local dir = opts.data
    if type(dir) == "table" then dir = dir.info and dir.info.data end
    if dir == "synthetic" then return nil, "the synthetic zoo has no accuracy table" end
    local acc, err = accuracy_table(dir)
    if not acc then return nil, err end
    local valid, test = acc.cols[name .. "_valid"], acc.cols[name .. "_test"]
    local function lookup(col)
      return function(list)
        local out = {}
        for i, a in ipairs(list) do
          local r = acc.row[a]
          out[i] = r and col[r] or 0 / 0
        end
        return out
      end
    end
    return {name = name, about = name .. " accuracy (%): search on validation, report test", values = lookup(valid),
      report = lookup(test), unit = "%"}
  end
  if name == "params" or name == "flops" then
    local dataset = space.name == "nb201" and "cifar10" or nil
    return {name = spec, about = (sign > 0 and "maximise " or "minimise ") .. name .. " of the space's network",
      unit = name == "params" and "MB" or "MFLOPs",
      values = function(list)
        local p, f = space:costs(list, dataset)
        local v = (name == "params" and p or f):totable()
        p:free() f:free()
        if sign < 0 then for i = 1, #v do v[i] = -v[i] end end
        return v
      end}
  end
  error(string.format("search.objective: unknown objective '%s' (known: %s, a leading '-' to minimise params or " ..
    "flops, or a Lua function)", spec, table.concat(M.OBJECTIVE_NAMES, ", ")), 2)
end

--------------------------------------------------------------------------------------------------- helpers
local function check_constraints(cons, fname)
  if type(cons) ~= "table" or #cons == 0 then
    error(fname .. ": option 'constraints' must be a non-empty list of {device =, budget_ms =}", 3)
  end
  local seen = {}
  for i, c in ipairs(cons) do
    if type(c) ~= "table" or type(c.device) ~= "table" or type(c.device.measure) ~= "function" then
      error(string.format("%s: constraint %d needs a device (nasflat.search_device)", fname, i), 3)
    end
    local b = c.budget_ms
    if type(b) ~= "number" or not (b > 0 and b < math.huge) then
      error(string.format("%s: constraint %d: budget_ms must be a positive number of ms (got %s)", fname, i,
        tostring(b)), 3)
    end
    if seen[c.device.name] then error(string.format("%s: device '%s' is constrained twice", fname, c.device.name), 3) end
    seen[c.device.name] = true
  end
end

local function check_count(v, name, fname, min)
  if math.type(v) ~= "integer" or v < (min or 0) then
    error(string.format("%s: option '%s' must be an integer >= %d (got %s)", fname, name, min or 0, tostring(v)), 3)
  end
end

--- The pool's objective values and the pool; canonical arch strings (nb201: every cell by default).
local function pool_values(o, space, fname)
  local pool = o.pool
  if pool == nil then
    if space.name ~= "nb201" then error(fname .. ": option 'pool' is required for " .. space.name, 3) end
    pool = space:enumerate()
  end
  if type(pool) ~= "table" or #pool == 0 then error(fname .. ": option 'pool' must be a non-empty list", 3) end
  local values = o.values
  if values == nil then
    local obj, err = M.objective(o.objective, {space = space, data = o.data})
    if not obj then return nil, err end
    values = obj.values(pool)
    o._objective = obj
  elseif #values ~= #pool then
    error(string.format("%s: option 'values' has %d entries for a pool of %d", fname, #values, #pool), 3)
  end
  if not o._objective and o.objective ~= nil then o._objective = M.objective(o.objective, {space = space, data = o.data}) end
  return pool, values
end

--- A search's bookkeeping: measurements per device, the log, the best measured-feasible pick.
local function new_state(o, cons, pool, values)
  local st = {cons = cons, pool = pool, values = values, records = {}, measured_idx = {}, skip = {},
    best = nil, best_value = -math.huge, used = 0, timing = {fit = 0, predict = 0, select = 0, measure = 0},
    round = 0, resumed = 0}
  st.index = {}
  for i, a in ipairs(pool) do st.index[a] = i end
  st.samples = {}
  for ci in ipairs(cons) do st.samples[ci] = {archs = {}, ms = {}} end
  if o.log then
    if type(o.log) == "string" then
      if o.resume then
        local prev = device_mod.read_log(o.log)
        st.previous = {}
        for _, r in ipairs(prev or {}) do
          if r.ms then st.previous[r.device .. "\0" .. r.arch] = r.ms end
        end
      end
      local log, err = device_mod.log(o.log)
      if not log then return nil, err end
      st.log, st.own_log = log, true
    else
      st.log = o.log
    end
  end
  return st
end

--- Measure pool entry i on every constrained device; updates the samples and the pick. Returns the record.
local function measure_one(st, i, pred)
  local arch = st.pool[i]
  st.measured_idx[i] = true
  st.skip[#st.skip + 1] = i
  st.used = st.used + 1
  local rec = {arch = arch, round = st.round, objective = st.values[i], ms = {}, status = {}, feasible = true}
  for ci, c in ipairs(st.cons) do
    local key = c.device.name .. "\0" .. arch
    local ms, err, spent
    if st.previous and st.previous[key] then
      ms, spent = st.previous[key], 0
      st.resumed = st.resumed + 1
    else
      ms, err, spent = device_mod.measure(c.device, arch, st.log, st.round)
      if not ms and err and err:find("measurement log", 1, true) then return nil, err end
    end
    st.timing.measure = st.timing.measure + spent
    rec.ms[c.device.name] = ms
    rec.status[c.device.name] = ms and "ok" or err
    if pred and pred[ci] then rec.predicted = rec.predicted or {}; rec.predicted[c.device.name] = pred[ci] end
    if ms then
      local s = st.samples[ci]
      s.archs[#s.archs + 1] = arch
      s.ms[#s.ms + 1] = ms
      if ms > c.budget_ms then rec.feasible = false end
    else
      rec.feasible = false
    end
  end
  local v = st.values[i]
  if rec.feasible and v == v and v > st.best_value then
    st.best, st.best_value = i, v
  end
  st.records[#st.records + 1] = rec
  return rec
end

local function finish(st, o)
  if st.own_log then st.log:close() end
  local r = {measurements = st.records, n_measurements = st.used, rounds = st.round, timing = st.timing,
    resumed = st.resumed}
  r.timing.measure_cost = 0
  for _, c in ipairs(st.cons) do r.timing.measure_cost = r.timing.measure_cost + (c.device.cost or 0) end
  if st.best then
    local i = st.best
    local rec
    for _, x in ipairs(st.records) do if x.arch == st.pool[i] then rec = x end end
    r.pick = {arch = st.pool[i], objective = st.values[i], ms = rec.ms, index = i}
    local obj = o._objective
    if obj and obj.report then r.pick.report = obj.report({st.pool[i]})[1] end
  else
    r.pick_reason = string.format("no measured architecture was under the budget (%d measured)", st.used)
  end
  return r
end

local function random_order(n, seed)
  local rng = core.Rng(seed)
  return rng:permutation(n)
end

--------------------------------------------------------------------------------------------------- adaptive
M.ADAPTIVE = {space = util.REQUIRED, objective = util.NIL, values = util.NIL, pool = util.NIL, features = util.NIL,
  constraints = util.REQUIRED, measurements = 30, init = 20, batch = 2, interval = 0.9, seed = 1, fit = util.NIL,
  data = util.NIL, log = util.NIL, resume = false, progress = util.NIL, init_archs = util.NIL, propose = util.NIL}

-- model:refit of a model read by model.load: its options come back from the file's JSON with integral numbers
-- as floats (seed 1.0, folds 5.0), which model.fit refuses; the same options with those made integers again.
local function refit_given(P, samples)
  local model = require "nasflat.model"
  local opts = model.kind_module(P.kind, "search").refit_options(P)
  local function norm(t, depth)
    for k, v in pairs(t) do
      if math.type(v) == "float" and math.tointeger(v) then t[k] = math.tointeger(v)
      elseif type(v) == "table" and getmetatable(v) == nil and depth < 3 then norm(v, depth + 1) end
    end
  end
  norm(opts, 0)
  opts.kind, opts.space, opts.target, opts.samples = P.kind, P.space, P.target, samples
  opts.seed = math.tointeger(P.seed) or P.seed
  return model.fit(opts)
end

local function fit_models(st, o, space)
  local t0 = util.now()
  for ci, c in ipairs(st.cons) do
    local s = st.samples[ci]
    local P, err
    if c.given then
      -- a given model: its own samples plus this search's measurements
      if #s.archs == 0 then P = c.given
      else
        local archs, ms = {}, {}
        for k, a in ipairs(c.given.samples.archs) do archs[k] = a; ms[k] = c.given.samples.ms[k] end
        for k, a in ipairs(s.archs) do archs[#archs + 1] = a; ms[#ms + 1] = s.ms[k] end
        if getmetatable(c.given) == require("nasflat.model").Model then
          P, err = refit_given(c.given, {archs = archs, ms = ms})
        else
          P, err = c.given:refit{archs = archs, ms = ms}   -- any object with the predictor interface
        end
      end
    elseif c.model then
      P, err = c.model:refit(s)
    else
      local fo = {}
      for k, v in pairs(o.fit or {}) do fo[k] = v end
      for k, v in pairs(c.fit or {}) do fo[k] = v end
      fo.space, fo.samples = space, s
      if fo.target == nil then fo.target = c.device.name end
      if fo.seed == nil then fo.seed = o.seed end
      P, err = require("nasflat.model").fit(fo)
    end
    if P then c.model = P
    elseif not c.model then
      st.timing.fit = st.timing.fit + util.now() - t0
      return nil, string.format("cannot fit the latency model of %s: %s", c.device.name, tostring(err))
    else
      st.fit_failures = (st.fit_failures or 0) + 1   -- keep the previous model
    end
  end
  st.timing.fit = st.timing.fit + util.now() - t0
  return true
end

--- The adaptive loop (see the module comment). opts (defaults in search.ADAPTIVE):
--   space, objective (name/function/objective; or `values` over the pool), pool (arch strings, canonical;
--   default every nb201 cell), features (a nasflat.features cache over exactly `pool`, reused across searches),
--   constraints {{device =, budget_ms =, model = (optional fitted model), fit = (per-device fit options)}},
--   measurements (per device, the initial samples included), init (initial random measurements; 0 with a
--   given model), init_archs (the initial architectures instead of random ones), batch (measurements per
--   refit), interval (nominal coverage of the interval the probability of feasibility is read from),
--   seed, fit (nasflat.model.fit options: kind, data, sources, target...), data (accuracy directory),
--   log (a CSV path or a search_device log: every measurement appended as it is made), resume (reuse the
--   log's earlier measurements), progress (function(fmt, ...)), propose (function(models, round) -> more
--   candidate arch strings, called before each round: spaces too large to enumerate grow the pool with what a
--   predictor-only search, e.g. search.evolve, finds under the current models; needs an objective, not values).
-- Returns {pick = {arch, objective, report, ms}, pick_reason, measurements = {{arch, round, objective, ms =
-- {device = ms}, status, predicted = {device = {ms, lo, hi}}, feasible}}, n_measurements, rounds, models,
-- predicted_best (unverified: the best pool entry whose interval upper bound is under every budget), timing
-- = {fit, predict, select, measure (wall), measure_cost (simulated), total}}; or nil, msg.
function M.adaptive(opts)
  local fname = "search.adaptive"
  local o = util.options(fname, opts, M.ADAPTIVE)
  local t_start = util.now()
  local space = space_of(o.space, fname)
  check_constraints(o.constraints, fname)
  check_count(o.measurements, "measurements", fname, 1)
  check_count(o.init, "init", fname, 0)
  check_count(o.batch, "batch", fname, 1)
  if type(o.interval) ~= "number" or not (o.interval > 0 and o.interval < 1) then
    error(fname .. ": option 'interval' must be a probability in (0, 1)", 2)
  end
  if o.objective == nil and o.values == nil then error(fname .. ": option 'objective' is required", 2) end
  local has_model = false
  for _, c in ipairs(o.constraints) do if c.model then has_model = true end end
  local n_init = o.init_archs and #o.init_archs or o.init
  if not has_model and n_init < 2 then
    error(fname .. ": option 'init' must be at least 2 without a fitted model (the predictor needs samples)", 2)
  end
  if n_init > o.measurements then
    return nil, string.format("the initial samples (%d) exceed the measurement budget (%d)", n_init, o.measurements)
  end
  local pool, values = pool_values(o, space, fname)
  if not pool then return nil, values end
  if o.propose then   -- the pool grows: a copy, so the caller's list is left as it was
    local copy = {}
    for i, a in ipairs(pool) do copy[i] = a end
    pool = copy
  end
  local cons = {}
  for i, c in ipairs(o.constraints) do
    cons[i] = {device = c.device, budget_ms = c.budget_ms, given = c.model, model = c.model, fit = c.fit,
      log_budget = math.log(c.budget_ms)}
  end
  local st, serr = new_state(o, cons, pool, values)
  if not st then return nil, serr end
  local cache = o.features
  if cache and cache.list ~= pool then error(fname .. ": option 'features' must be a cache over exactly `pool`", 2) end
  if o.propose and (cache or o.values) then
    error(fname .. ": option 'propose' grows the pool: give an objective, not 'values' or 'features'", 2)
  end
  if o.propose and type(o.propose) ~= "function" then error(fname .. ": option 'propose' must be a function", 2) end
  local own_cache = false
  if not cache then cache, own_cache = require("nasflat.features").cache(space, pool), true end
  local report = o.progress or function() end

  -- initial samples
  local init = {}
  if o.init_archs then
    for k, a in ipairs(o.init_archs) do
      local i = st.index[a] or st.index[space:format(space:parse(a) or error(fname .. ": init_archs entry " .. k ..
        " is not an architecture", 2))]
      if not i then error(string.format("%s: init_archs entry %d is not in the pool", fname, k), 2) end
      init[#init + 1] = i
    end
  else
    local perm = random_order(#pool, o.seed)
    for k = 1, math.min(n_init, #pool) do init[k] = perm[k] end
  end
  for _, i in ipairs(init) do
    local rec, merr = measure_one(st, i)
    if not rec then return nil, merr end
    report("measured %d/%d", st.used, o.measurements)
  end
  local ok, ferr = fit_models(st, o, space)
  if not ok then return nil, ferr end

  local stop
  local last_pred
  while true do
    if o.propose and st.used < o.measurements then
      local t0 = util.now()
      local models = {}
      for ci, c in ipairs(cons) do models[ci] = c.model end
      local extra, fresh = o.propose(models, st.round + 1), {}
      for _, a in ipairs(extra or {}) do
        local code = type(a) == "table" and a or space:parse(a)
        local s = code and space:format(code)
        if s and not st.index[s] then st.index[s] = true; fresh[#fresh + 1] = s end
      end
      if #fresh > 0 then
        local v = o._objective.values(fresh)
        for k, a in ipairs(fresh) do
          pool[#pool + 1], values[#values + 1] = a, v[k]
          st.index[a] = #pool
        end
        cache:free()
        cache = require("nasflat.features").cache(space, pool)
      end
      st.timing.propose = (st.timing.propose or 0) + util.now() - t0
    end
    -- predict the pool under every constraint's model
    local t0 = util.now()
    local logms, sigmas, budgets, halves = {}, {}, {}, {}
    for ci, c in ipairs(cons) do
      local _, info = c.model:predict(pool, {interval = o.interval, features = cache})
      logms[ci], halves[ci] = info.logms, info.halfwidth_log
      sigmas[ci] = info.halfwidth_log / M.z_of(o.interval)   -- sd of the log error
      budgets[ci] = c.log_budget
      info.lo:free() info.hi:free()
    end
    st.timing.predict = st.timing.predict + util.now() - t0
    if last_pred then for _, t in ipairs(last_pred.logms) do t:free() end end
    last_pred = {logms = logms, halves = halves}
    local left = o.measurements - st.used
    if left <= 0 then stop = "the measurement budget is spent"; break end
    st.round = st.round + 1
    t0 = util.now()
    local picks = S.select(values, logms, {budgets = budgets, sigmas = sigmas, skip = st.skip,
      incumbent = st.best and st.best_value or nil, k = math.min(o.batch, left)})
    st.timing.select = st.timing.select + util.now() - t0
    if #picks == 0 then stop = "no unmeasured candidate can beat the pick"; break end
    for _, i in ipairs(picks) do
      local pred = {}
      for ci in ipairs(cons) do
        local l = logms[ci]:get(i)
        pred[ci] = {ms = math.exp(l), lo = math.exp(l - halves[ci]), hi = math.exp(l + halves[ci])}
      end
      local rec, merr = measure_one(st, i, pred)
      if not rec then return nil, merr end
      report("round %d: measured %d/%d, best %s", st.round, st.used, o.measurements,
        st.best and string.format("%.3f", st.best_value) or "none")
    end
    ok, ferr = fit_models(st, o, space)
    if not ok then return nil, ferr end
  end
  -- the unverified best: upper bounds under every budget (never reported as the pick)
  local his = {}
  for ci in ipairs(cons) do his[ci] = last_pred.logms[ci]:clone():affine(1, last_pred.halves[ci]) end
  local pb = S.select(values, his, {budgets = (function()
    local b = {} for ci, c in ipairs(cons) do b[ci] = c.log_budget end return b end)(), k = 1})
  for _, t in ipairs(his) do t:free() end
  local r = finish(st, o)
  if pb[1] then
    local i = pb[1]
    r.predicted_best = {arch = pool[i], objective = values[i], verified = st.measured_idx[i] == true, ms = {}}
    for ci, c in ipairs(cons) do r.predicted_best.ms[c.device.name] = math.exp(last_pred.logms[ci]:get(i)) end
  end
  for _, t in ipairs(last_pred.logms) do t:free() end
  if own_cache then cache:free() end
  r.stop = stop
  r.models = {}
  for ci, c in ipairs(cons) do r.models[ci] = c.model end
  r.timing.total = util.now() - t_start
  return r
end

--------------------------------------------------------------------------------------------------- baselines
M.BASELINE = {space = util.REQUIRED, objective = util.NIL, values = util.NIL, pool = util.NIL,
  constraints = util.REQUIRED, measurements = 30, seed = 1, data = util.NIL, log = util.NIL, resume = false}

--- Measure-only random search: `measurements` distinct random pool entries; the best measured-feasible pick.
function M.random_search(opts)
  local fname = "search.random_search"
  local o = util.options(fname, opts, M.BASELINE)
  local t_start = util.now()
  local space = space_of(o.space, fname)
  check_constraints(o.constraints, fname)
  check_count(o.measurements, "measurements", fname, 1)
  local pool, values = pool_values(o, space, fname)
  if not pool then return nil, values end
  local st, serr = new_state(o, o.constraints, pool, values)
  if not st then return nil, serr end
  local perm = random_order(#pool, o.seed)
  for k = 1, math.min(o.measurements, #pool) do
    local rec, err = measure_one(st, perm[k])
    if not rec then return nil, err end
  end
  local r = finish(st, o)
  r.timing.total = util.now() - t_start
  return r
end

-- constrained fitness: feasible beats infeasible; feasible by objective, infeasible by how far over.
local function fitness(rec, cons)
  if rec.feasible then return 1, rec.objective == rec.objective and rec.objective or -math.huge end
  local over = 0
  for _, c in ipairs(cons) do
    local ms = rec.ms[c.device.name]
    over = math.max(over, ms and ms / c.budget_ms or math.huge)
  end
  return 0, -over
end

local function better(a, b, cons)
  local fa, va = fitness(a, cons)
  local fb, vb = fitness(b, cons)
  if fa ~= fb then return fa > fb end
  return va > vb
end

--- A random neighbour of code `code` (one position changed), as a new table.
local function mutate(code, n_choices, rng)
  local child = {}
  for k, v in ipairs(code) do child[k] = v end
  local pos = rng:uniform(#code)
  local v = rng:uniform(n_choices - 1) - 1
  if v >= child[pos] then v = v + 1 end
  child[pos] = v
  return child
end
M.mutate = mutate

--- Measure-only regularised evolution: `population` random measured members, then cycles of a tournament of
-- `sample` members, the winner mutated in one position (a child outside the pool or already measured is
-- redrawn), the child measured, the oldest member removed; until `measurements`.
function M.evolution(opts)
  local fname = "search.evolution"
  local defaults = {}
  for k, v in pairs(M.BASELINE) do defaults[k] = v end
  defaults.population, defaults.sample = 10, 3
  local o = util.options(fname, opts, defaults)
  local t_start = util.now()
  local space = space_of(o.space, fname)
  check_constraints(o.constraints, fname)
  check_count(o.measurements, "measurements", fname, 1)
  check_count(o.population, "population", fname, 1)
  check_count(o.sample, "sample", fname, 1)
  local pool, values = pool_values(o, space, fname)
  if not pool then return nil, values end
  local st, serr = new_state(o, o.constraints, pool, values)
  if not st then return nil, serr end
  local rng = core.Rng(o.seed)
  local perm = rng:permutation(#pool)
  local n_choices = #space:choices()
  local popn = {}
  local k = 0
  while st.used < math.min(o.population, o.measurements) do
    k = k + 1
    if k > #pool then break end
    local rec, err = measure_one(st, perm[k])
    if not rec then return nil, err end
    popn[#popn + 1] = rec
  end
  while st.used < o.measurements and #popn > 0 do
    local parent
    for _ = 1, o.sample do
      local c = popn[rng:uniform(#popn)]
      if not parent or better(c, parent, o.constraints) then parent = c end
    end
    local code = space:parse(parent.arch)
    local child
    for _ = 1, 100 do
      local i = st.index[space:format(mutate(code, n_choices, rng))]
      if i and not st.measured_idx[i] then child = i break end
    end
    if not child then   -- every tried neighbour is measured or outside the pool: a random unmeasured entry
      for _ = 1, 1000 do
        local i = rng:uniform(#pool)
        if not st.measured_idx[i] then child = i break end
      end
    end
    if not child then break end
    local rec, err = measure_one(st, child)
    if not rec then return nil, err end
    popn[#popn + 1] = rec
    if #popn > o.population then table.remove(popn, 1) end
  end
  local r = finish(st, o)
  r.timing.total = util.now() - t_start
  return r
end

--- Predict once: measure `init` random pool entries (or `init_archs`), fit, measure the `verify` best predicted-feasible (point
-- predictions under every budget; margin = "hi": the interval's upper bound), pick the best measured-feasible.
function M.predict_once(opts)
  local fname = "search.predict_once"
  local defaults = {}
  for k, v in pairs(M.BASELINE) do defaults[k] = v end
  defaults.init, defaults.verify, defaults.fit, defaults.features, defaults.margin = 20, 10, util.NIL, util.NIL, "none"
  defaults.interval, defaults.init_archs = 0.9, util.NIL
  local o = util.options(fname, opts, defaults)
  local r, err = M.adaptive{space = o.space, objective = o.objective, values = o.values, pool = o.pool,
    features = o.features, constraints = o.constraints, measurements = o.init, init = o.init, seed = o.seed,
    fit = o.fit, data = o.data, log = o.log, resume = o.resume, interval = o.interval, init_archs = o.init_archs}
  if not r then return nil, err end
  -- the models of the first fit: select the verify best, measure them through a fresh state
  local space = space_of(o.space, fname)
  local pool, values = pool_values(o, space, fname)
  local t0 = util.now()
  local picks = M.select{models = r.models, pool = pool, features = o.features, values = values,
    budgets = (function() local b = {} for i, c in ipairs(o.constraints) do b[i] = c.budget_ms end return b end)(),
    k = o.verify + o.init, margin = o.margin, interval = o.interval}
  local t_pred = util.now() - t0
  local st = new_state({log = o.log}, o.constraints, pool, values)
  st.round = 1
  for _, m in ipairs(r.measurements) do   -- the initial measurements count
    local i = st.index[m.arch]
    st.measured_idx[i] = true
    st.used = st.used + 1
    st.records[#st.records + 1] = m
    if m.feasible and values[i] > st.best_value then st.best, st.best_value = i, values[i] end
  end
  local n = 0
  for _, i in ipairs(picks) do
    if n >= o.verify then break end
    if not st.measured_idx[i] then
      local rec, merr = measure_one(st, i)
      if not rec then return nil, merr end
      n = n + 1
    end
  end
  local out = finish(st, o)
  out.timing.fit, out.timing.predict = r.timing.fit, r.timing.predict + t_pred
  out.timing.measure = out.timing.measure + r.timing.measure
  out.timing.total = r.timing.total + util.now() - t0
  out.models = r.models
  return out
end

--------------------------------------------------------------------------------------------------- predictor only
--- Exhaustive constrained selection with fitted models: the k pool entries of best objective whose predicted
-- latency (margin "none") or interval upper bound (margin "hi") is under every budget, best first.
-- opts: models (list, one per budget), budgets (ms), pool, values (or objective + space), features (cache over
-- pool), k (1), margin ("none"), interval (0.9). Returns a list of pool indices.
function M.select(opts)
  local fname = "search.select"
  local o = util.options(fname, opts, {models = util.REQUIRED, budgets = util.REQUIRED, pool = util.REQUIRED,
    values = util.REQUIRED, features = util.NIL, k = 1, margin = "none", interval = 0.9})
  if o.margin ~= "none" and o.margin ~= "hi" then
    error(fname .. ": option 'margin' must be 'none' or 'hi' (got " .. tostring(o.margin) .. ")", 2)
  end
  if #o.models ~= #o.budgets then error(fname .. ": one budget per model", 2) end
  local logms, lb = {}, {}
  for i, P in ipairs(o.models) do
    local b = o.budgets[i]
    if type(b) ~= "number" or b ~= b or b <= 0 or b == math.huge then
      error(string.format("%s: budget %d must be a positive number of ms (got %s)", fname, i, tostring(b)), 2)
    end
    local _, info = P:predict(o.pool, {features = o.features, interval = o.interval})
    logms[i] = o.margin == "hi" and info.logms:clone():affine(1, info.halfwidth_log) or info.logms
    lb[i] = math.log(b)
  end
  local picks = S.select(o.values, logms, {budgets = lb, k = o.k})
  for _, t in ipairs(logms) do t:free() end
  return picks
end

--- Indices of the non-dominated points of (values maximised, ms minimised), sorted by ms.
function M.front(values, ms)
  local pts = {}
  for i = 1, #values do pts[i] = {-values[i], ms[i]} end
  local rank = S.pareto_rank(pts)
  local out = {}
  for i, r in ipairs(rank) do if r == 1 then out[#out + 1] = i end end
  table.sort(out, function(a, b) if ms[a] ~= ms[b] then return ms[a] < ms[b] end return a < b end)
  return out
end

--- Hypervolume of the points (values maximised, ms minimised) against the reference (ref_value, ref_ms).
function M.hypervolume(values, ms, ref_value, ref_ms)
  local xs = {}
  for i = 1, #values do xs[i] = -values[i] end
  return S.hypervolume2(xs, ms, -ref_value, ref_ms)
end

--- Predictor-only aging evolution over the whole space (no enumeration): a population of `population`
-- random architectures, then `cycles` children made in batches of `batch` (each a tournament of `sample`, the
-- winner mutated in one position), every batch predicted at once; members predicted over a budget (interval
-- upper bound with margin "hi") rank below every feasible one. opts: space, models, budgets, objective,
-- population (100), sample (25), cycles (2000), batch (100), seed (1), margin ("hi"), interval (0.9), data.
-- Returns {best = {arch, objective, ms = {predicted per model}}, evaluated, timing = {predict, objective, total}}.
function M.evolve(opts)
  local fname = "search.evolve"
  local o = util.options(fname, opts, {space = util.REQUIRED, models = util.REQUIRED, budgets = util.REQUIRED,
    objective = util.REQUIRED, population = 100, sample = 25, cycles = 2000, batch = 100, seed = 1, margin = "hi",
    interval = 0.9, data = util.NIL})
  local space = space_of(o.space, fname)
  for _, k in ipairs{"population", "sample", "cycles", "batch"} do check_count(o[k], k, fname, 1) end
  if #o.models ~= #o.budgets then error(fname .. ": one budget per model", 2) end
  local obj, oerr = M.objective(o.objective, {space = space, data = o.data})
  if not obj then return nil, oerr end
  local t_start = util.now()
  local rng = core.Rng(o.seed)
  local timing = {predict = 0, objective = 0}
  local function evaluate(list)
    local t0 = util.now()
    local lat = {}
    local ok = {}
    for i = 1, #list do ok[i] = true end
    for mi, P in ipairs(o.models) do
      local _, info = P:predict(list, {interval = o.interval})
      local l = (o.margin == "hi" and info.hi or info.logms:clone():exp()):totable()
      lat[mi] = l
      for i = 1, #list do if l[i] > o.budgets[mi] then ok[i] = false end end
    end
    timing.predict = timing.predict + util.now() - t0
    t0 = util.now()
    local v = obj.values(list)
    timing.objective = timing.objective + util.now() - t0
    local out = {}
    for i, a in ipairs(list) do
      local ms = {}
      for mi = 1, #o.models do ms[mi] = lat[mi][i] end
      -- the tournament key: a feasible member beats every infeasible one; infeasible ones by their first latency
      local key = ok[i] and (v[i] == v[i] and v[i] or -math.huge) or -1e300 * (1 + ms[1] / (1 + ms[1]))
      out[i] = {arch = a, objective = v[i], feasible = ok[i], ms = ms, key = key}
    end
    return out
  end
  local popn = evaluate(space:sample(rng, o.population))
  local best
  local function consider(m) if m.feasible and (not best or m.objective > best.objective) then best = m end end
  for _, m in ipairs(popn) do consider(m) end
  local evaluated = #popn
  local done = 0
  while done < o.cycles do
    local nb = math.min(o.batch, o.cycles - done)
    local parents = {}
    for b = 1, nb do
      local parent
      for _ = 1, o.sample do
        local c = popn[rng:uniform(#popn)]
        if not parent or c.key > parent.key then parent = c end
      end
      parents[b] = parent.arch
    end
    local kids = S.children(space.name, parents, rng)   -- one position changed each (C)
    for _, m in ipairs(evaluate(kids)) do
      consider(m)
      popn[#popn + 1] = m
      table.remove(popn, 1)
    end
    done, evaluated = done + nb, evaluated + nb
  end
  timing.total = util.now() - t_start
  return {best = best, evaluated = evaluated, timing = timing, population = popn}
end

--- Predictor-only multi-objective evolution of the (objective, predicted latency) front: a population of
-- `population`; each generation `population` children (binary tournaments on rank then crowding, uniform
-- crossover, one-position mutation), parents and children ranked by non-dominated sorting (core.search) and
-- cut by crowding distance. opts: space, model, objective, population (100), generations (30), seed (1), data.
-- Returns {front = {{arch, objective, ms}} sorted by ms, evaluated, timing}.
function M.pareto_evolve(opts)
  local fname = "search.pareto_evolve"
  local o = util.options(fname, opts, {space = util.REQUIRED, model = util.REQUIRED, objective = util.REQUIRED,
    population = 100, generations = 30, seed = 1, data = util.NIL})
  local space = space_of(o.space, fname)
  check_count(o.population, "population", fname, 2)
  check_count(o.generations, "generations", fname, 0)
  local obj, oerr = M.objective(o.objective, {space = space, data = o.data})
  if not obj then return nil, oerr end
  local t_start = util.now()
  local rng = core.Rng(o.seed)
  local t_pred = 0
  local function evaluate(list)
    local t0 = util.now()
    local ms = o.model:predict(list)
    local l = ms:totable()
    ms:free()
    t_pred = t_pred + util.now() - t0
    local v = obj.values(list)
    local out = {}
    for i, a in ipairs(list) do out[i] = {arch = a, objective = v[i], ms = l[i]} end
    return out
  end
  local function rank_and_crowd(members)
    local pts = {}
    for i, m in ipairs(members) do pts[i] = {-m.objective, m.ms} end
    local rank = S.pareto_rank(pts)
    for i, m in ipairs(members) do m.rank, m.crowd = rank[i], 0 end
    local byfront = {}
    for _, m in ipairs(members) do
      byfront[m.rank] = byfront[m.rank] or {}
      table.insert(byfront[m.rank], m)
    end
    for _, f in pairs(byfront) do
      for _, key in ipairs{"objective", "ms"} do
        table.sort(f, function(a, b) return a[key] < b[key] end)
        local span = f[#f][key] - f[1][key]
        f[1].crowd, f[#f].crowd = math.huge, math.huge
        for i = 2, #f - 1 do
          f[i].crowd = f[i].crowd + (span > 0 and (f[i + 1][key] - f[i - 1][key]) / span or 0)
        end
      end
    end
  end
  local function better_member(a, b)
    if a.rank ~= b.rank then return a.rank < b.rank end
    return a.crowd > b.crowd
  end
  local function dedup(members)
    local seen, out = {}, {}
    for _, m in ipairs(members) do if not seen[m.arch] then seen[m.arch] = true; out[#out + 1] = m end end
    return out
  end
  local popn = evaluate(space:sample(rng, o.population))
  rank_and_crowd(popn)
  local evaluated = #popn
  for _ = 1, o.generations do
    local ps, ms = {}, {}
    for b = 1, o.population do
      local function pick()
        local x, y = popn[rng:uniform(#popn)], popn[rng:uniform(#popn)]
        return better_member(x, y) and x or y
      end
      ps[b], ms[b] = pick().arch, pick().arch
    end
    local kids = S.children(space.name, ps, rng, ms)   -- uniform crossover, one position changed (C)
    local all = dedup((function()
      local t = {}
      for _, m in ipairs(popn) do t[#t + 1] = m end
      for _, m in ipairs(evaluate(kids)) do t[#t + 1] = m end
      return t
    end)())
    evaluated = evaluated + #kids
    rank_and_crowd(all)
    table.sort(all, better_member)
    popn = {}
    for i = 1, math.min(o.population, #all) do popn[i] = all[i] end
  end
  local front = {}
  for _, m in ipairs(popn) do if m.rank == 1 then front[#front + 1] = m end end
  table.sort(front, function(a, b) return a.ms < b.ms end)
  return {front = front, population = popn, evaluated = evaluated,
    timing = {predict = t_pred, total = util.now() - t_start}}
end

return M
