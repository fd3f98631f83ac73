--- The search bar of issue 11 (docs/search.md): for every target of the NB201 tasks, latency constraints at
-- quantiles of the target's measured latencies and a few trials, the adaptive loop and three baselines with
-- the same measurement budget on the target (the dataset as a simulated device), against the oracle pick.
--
--   local bar = require "nasflat.search_bar"
--   local res = assert(bar.run{tasks = {"ND"}, trials = 3})   -- see bar.DEFAULTS
--   io.write(bar.format(res))
--
-- Regret (percentage points) = test accuracy of the oracle pick (the best validation accuracy among the
-- architectures whose measured latency is under the constraint) − test accuracy of the method's pick (chosen
-- by validation accuracy among its measured-feasible architectures). A method without a feasible measured
-- architecture has no pick: counted in `none` and given the regret of the worst feasible architecture. A pick
-- is "over" when its true latency exceeds the constraint (never for a measured pick: the column checks it).
-- "unverified over": how often the adaptive loop's best predicted-feasible architecture (upper bound of the
-- 90 % interval under the budget), taken WITHOUT measuring it, is over the constraint.
-- Hypervolume: of the (validation accuracy, measured ms) points the adaptive search measured at the 50 %
-- constraint, over the hypervolume of the oracle front of the whole table (reference: the worst accuracy and
-- the largest latency of the target), per target; and the same for the random search's 30 points.
local util = require "nasflat.util"
local search = require "nasflat.search"
local dev = require "nasflat.search_device"

local M = {}

M.TASKS = {"ND", "N1", "N2", "N3", "N4", "NA"}
M.METHODS = {"adaptive", "random", "evolution", "predict_once"}
M.DEFAULTS = {tasks = M.TASKS, targets = util.NIL, quantiles = {0.1, 0.25, 0.5}, trials = 3, measurements = 30,
  init = 20, batch = 2, objective = "cifar10", data = util.NIL, cost_s = 10, progress = util.NIL,
  sampler = "random"}

local function quantile_of(sorted, q)
  return sorted[math.max(1, math.min(#sorted, math.floor(q * #sorted + 0.5)))]
end

local function pct(xs, q)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  if #s == 0 then return 0 / 0 end
  local h = (#s - 1) * q + 1
  local lo = math.floor(h)
  local hi = math.min(lo + 1, #s)
  return s[lo] + (h - lo) * (s[hi] - s[lo])
end
M.percentile = pct

--- A task of the bar: its definition (a paper task, or a zoo task on the synthetic zoo) and the source-device
-- models of its training devices. Returns {name, task, sm, seconds} or nil, message.
function M.task_context(src, tname)
  local task, terr
  if src.synthetic then
    task = require("nasflat.zoo").task("nb201", tname)
    if not task then terr = string.format("unknown zoo task '%s' (the synthetic zoo has: %s)", tostring(tname),
      table.concat(require("nasflat.zoo").task_names("nb201"), ", ")) end
  else
    task, terr = require("nasflat.tasks").resolve{name = tname, devices = src.devices, tasks_file = src.tasks_file}
  end
  if not task then return nil, terr end
  local t0 = util.now()
  local sm, serr = require("nasflat.source_models").fit{source = src, devices = task.train}
  if not sm then return nil, serr end
  return {name = tname, task = task, sm = sm, seconds = util.now() - t0}
end

--- A target of the bar: its measured architectures as the pool, their objective values (searched) and reported
-- values (the test accuracy; the objective itself when it reports nothing else), the oracle front's hypervolume.
-- The caller frees ctx.feats.
function M.target_context(src, obj, tname, target)
  local rows = src:measured(target)
  local feats = require("nasflat.features").view(src:features(), rows)
  local pool = feats.list
  local values = obj.values(pool)
  local test = obj.report and obj.report(pool) or values
  local truth = src:ms(target)
  local lat, sorted = {}, {}
  for i, r in ipairs(rows) do lat[i] = truth:get(r); sorted[i] = lat[i] end
  table.sort(sorted)
  -- oracle front of the whole table: (validation, ms); reference = worst accuracy, largest latency
  local ref_v, ref_ms = math.huge, sorted[#sorted]
  for _, v in ipairs(values) do if v < ref_v then ref_v = v end end
  local fr = search.front(values, lat)
  local fv, fm = {}, {}
  for k, i in ipairs(fr) do fv[k], fm[k] = values[i], lat[i] end
  return {task = tname, target = target, rows = rows, feats = feats, pool = pool, values = values, test = test,
    lat = lat, sorted = sorted, ref_v = ref_v, ref_ms = ref_ms, hv_oracle = search.hypervolume(fv, fm, ref_v, ref_ms)}
end

--- The budget of quantile q of a target (the bar's constraint).
function M.budget_of(ctx, q) return quantile_of(ctx.sorted, q) end

--- One search row of the bar: the four searches on target ctx under the budget of quantile q, trial `trial` (its
-- seed: the trial number, whatever else runs). `with_hv`: also the hypervolume ratios of the adaptive and random
-- searches' measured points (the bar takes them at its last quantile). Returns the row and {adaptive, random}
-- (hypervolume ratios or nil), or nil, message.
function M.search_row(o, src, tc, ctx, q, trial, with_hv)
  local pool, values, test, lat, rows, feats = ctx.pool, ctx.values, ctx.test, ctx.lat, ctx.rows, ctx.feats
  local target = ctx.target
  local budget = quantile_of(ctx.sorted, q)
  local best, worst
  for i = 1, #pool do
    if lat[i] <= budget then
      if not best or values[i] > values[best] then best = i end
      if not worst or test[i] < test[worst] then worst = i end
    end
  end
  local seed = trial
  local row = {task = tc.name, target = target, q = q, budget_ms = budget, trial = trial,
    oracle = {arch = pool[best], valid = values[best], test = test[best], ms = lat[best]}}
  local function score(name, r)
    local e = {n = r.n_measurements, timing = r.timing}
    if r.pick then
      local i = r.pick.index
      e.arch, e.valid, e.test, e.ms = pool[i], values[i], test[i], lat[i]
      e.regret = test[best] - test[i]
      e.over = lat[i] > budget
    else
      e.none = true
      e.regret = test[best] - test[worst]
      e.over = false
    end
    row[name] = e
    return e
  end
  local hv = {}
  local function hv_of(r)
    local v, m = {}, {}
    for _, rec in ipairs(r.measurements) do
      local ms = rec.ms[target]
      if ms then v[#v + 1] = rec.objective; m[#m + 1] = ms end
    end
    return search.hypervolume(v, m, ctx.ref_v, ctx.ref_ms) / ctx.hv_oracle
  end
  local common = {space = "nb201", pool = pool, values = values, seed = seed}
  local function device() return assert(dev.dataset{source = src, device = target, cost_s = o.cost_s}) end
  local function cons() return {{device = device(), budget_ms = budget}} end
  local fit = {data = src, sources = tc.sm, target = target}
  -- the transfer samples: random (default), or a nasflat.samplers method on the struct+phys encoding
  local init_archs
  if o.sampler ~= "random" then
    local enc = assert(src:encoding("struct+phys"))
    local picked = require("nasflat.samplers").select{method = o.sampler, n = o.init, encoding = enc,
      candidates = rows, seed = seed}
    init_archs = {}
    for k, rr in ipairs(picked) do init_archs[k] = src.arch_strings[rr] end
  end
  -- adaptive
  local a = {}
  for k, v in pairs(common) do a[k] = v end
  a.features, a.constraints, a.measurements, a.init, a.batch, a.fit = feats, cons(), o.measurements, o.init,
    o.batch, fit
  a.init_archs = init_archs
  local r, rerr = search.adaptive(a)
  if not r then return nil, rerr end
  local e = score("adaptive", r)
  if r.predicted_best then
    local pi
    for i = 1, #pool do if pool[i] == r.predicted_best.arch then pi = i break end end
    e.unverified_over = lat[pi] > budget
    e.unverified_regret = test[best] - test[pi]
  end
  e.stop = r.stop
  if with_hv then hv.adaptive = hv_of(r) end
  -- baselines
  local rr = assert(search.random_search{space = "nb201", pool = pool, values = values, seed = seed,
    constraints = cons(), measurements = o.measurements})
  score("random", rr)
  if with_hv then hv.random = hv_of(rr) end
  score("evolution", assert(search.evolution{space = "nb201", pool = pool, values = values, seed = seed,
    constraints = cons(), measurements = o.measurements}))
  local po, perr = search.predict_once{space = "nb201", pool = pool, values = values, seed = seed,
    features = feats, constraints = cons(), init = o.init, verify = o.measurements - o.init, fit = fit,
    init_archs = init_archs}
  if not po then return nil, perr end
  score("predict_once", po)
  return row, hv
end

--- The bar's source and objective: NB201 (real data with an accuracy objective, or the synthetic zoo with a
-- cost objective: params, flops). Returns src, objective or nil, message.
function M.open(o)
  local src, err = require("nasflat.source").open{data = o.data, space = "nb201"}
  if not src then return nil, err end
  if src.synthetic and search.ACCURACY[o.objective] then
    return nil, "the search bar needs the real data for an accuracy objective (the synthetic zoo has none: " ..
      "--objective params or flops)"
  end
  local obj, oerr = search.objective(o.objective, {space = "nb201", data = src.info.data})
  if not obj then return nil, oerr end
  return src, obj
end

--- The result table of a bar run (rows and hv filled by the caller).
function M.new_result(o)
  return {rows = {}, hv = {}, objective = o.objective, measurements = o.measurements, init = o.init,
    sampler = o.sampler, batch = o.batch, trials = o.trials, quantiles = o.quantiles, cost_s = o.cost_s, timing = {}}
end

--- Run the bar. opts: see M.DEFAULTS (tasks: names of NB201 tasks, or zoo tasks on the synthetic zoo; targets:
-- restrict to these devices; cost_s: simulated seconds per measurement; sampler: "random" transfer samples, or a
-- nasflat.samplers method on the struct+phys encoding, e.g. "kmeans", for the adaptive loop and predict-once
-- alike). Returns {rows = {per search}, hv = {per target}, timing, ...}.
function M.run(opts)
  local o = util.options("search_bar.run", opts, M.DEFAULTS)
  local report = o.progress or function() end
  local src, obj = M.open(o)
  if not src then return nil, obj end
  local out = M.new_result(o)
  local t_all = util.now()
  local only = {}
  for _, t in ipairs(o.targets or {}) do only[t] = true end
  for _, tname in ipairs(o.tasks) do
    local tc, terr = M.task_context(src, tname)
    if not tc then return nil, terr end
    out.timing["source_models_" .. tname] = tc.seconds
    for _, target in ipairs(tc.task.test) do
      if not o.targets or only[target] then
        local ctx = M.target_context(src, obj, tname, target)
        local hv = {task = tname, target = target, oracle = ctx.hv_oracle, adaptive = {}, random = {}}
        for qi, q in ipairs(o.quantiles) do
          for trial = 1, o.trials do
            local row, h = M.search_row(o, src, tc, ctx, q, trial, qi == #o.quantiles)
            if not row then ctx.feats:free() return nil, h end
            if h.adaptive then hv.adaptive[#hv.adaptive + 1] = h.adaptive end
            if h.random then hv.random[#hv.random + 1] = h.random end
            out.rows[#out.rows + 1] = row
            report("%s %s q%.2f trial %d: adaptive regret %.2f", tname, target, q, trial, row.adaptive.regret)
          end
        end
        out.hv[#out.hv + 1] = hv
        ctx.feats:free()
      end
    end
  end
  -- the whole space scored by one fitted model: cold (features built) and warm (real data: pixel3's samples)
  local space = require("nasflat.space").get("nb201")
  local all = space:enumerate()
  local last = out.rows[#out.rows]
  if last and src:has_device("pixel3") then
    local ms3 = src:ms("pixel3")
    local archs, ms = {}, {}
    for i = 1, 20 do archs[i] = src.arch_strings[i * 700]; ms[i] = ms3:get(i * 700) end
    local P = assert(require("nasflat.model").fit{space = "nb201", data = src, target = "pixel3",
      sources = {"1080ti_1", "pixel2"}, samples = {archs = archs, ms = ms}})
    local t0 = util.now()
    P:predict(all, {interval = 0.9})
    out.timing.space_cold = util.now() - t0
    local cache = require("nasflat.features").cache(space, all)
    P:predict(all, {interval = 0.9, features = cache})
    t0 = util.now()
    P:predict(all, {interval = 0.9, features = cache})
    out.timing.space_warm = util.now() - t0
    cache:free()
  end
  out.timing.total = util.now() - t_all
  return out
end

--- Summaries: per (task, quantile) and overall, for each method: median and 90th percentile regret, picks over
-- the constraint, searches without a pick.
function M.summary(res)
  local groups, order = {}, {}
  local function add(key, row)
    if not groups[key] then groups[key] = {}; order[#order + 1] = key end
    table.insert(groups[key], row)
  end
  for _, r in ipairs(res.rows) do
    add(string.format("%s q%02d", r.task, math.floor(r.q * 100 + 0.5)), r)
  end
  for _, r in ipairs(res.rows) do add("all", r) end
  local out = {}
  for _, key in ipairs(order) do
    local g = groups[key]
    local s = {group = key, n = #g}
    for _, m in ipairs(M.METHODS) do
      local reg, over, none, uover = {}, 0, 0, 0
      for _, r in ipairs(g) do
        reg[#reg + 1] = r[m].regret
        if r[m].over then over = over + 1 end
        if r[m].none then none = none + 1 end
        if r[m].unverified_over then uover = uover + 1 end
      end
      s[m] = {median = pct(reg, 0.5), p90 = pct(reg, 0.9), mean = util.mean_std(reg), over = over, none = none,
        unverified_over = uover}
    end
    out[#out + 1] = s
  end
  return out
end

--- Mean per-search timings of the adaptive loop (seconds): fit, predict, select, measure (wall), simulated cost.
function M.timing(res)
  local keys = {"fit", "predict", "select", "measure", "measure_cost", "total"}
  local sums, n = {}, 0
  for _, k in ipairs(keys) do sums[k] = 0 end
  for _, r in ipairs(res.rows) do
    n = n + 1
    for _, k in ipairs(keys) do sums[k] = sums[k] + (r.adaptive.timing[k] or 0) end
  end
  for _, k in ipairs(keys) do sums[k] = n > 0 and sums[k] / n or 0 / 0 end
  sums.n = n
  return sums
end

--- The bar as text: the regret table, the hypervolume table, the timings.
function M.format(res)
  local lines = {}
  local function p(...) lines[#lines + 1] = string.format(...) end
  local accuracy = search.ACCURACY[res.objective] ~= nil
  p("NB201 search bar: objective %s (%s), %d target measurements (%d transfer " ..
    "samples + %d adaptive, batch %d), %d trials%s", res.objective,
    accuracy and "search on validation, report test" or "searched and reported", res.measurements, res.init,
    res.measurements - res.init, res.batch, res.trials,
    (res.sampler or "random") ~= "random" and (", transfer samples by " .. res.sampler) or "")
  p("regret in %s: median / 90th percentile [picks over the constraint, searches without a pick]",
    accuracy and "pp" or ("units of " .. res.objective))
  p("%-9s %3s  %-22s %-22s %-22s %-22s %s", "group", "n", "adaptive", "random (" .. res.measurements .. ")",
    "evolution (" .. res.measurements .. ")", "predict-once " .. res.init .. "+" .. (res.measurements - res.init),
    "unverified over")
  for _, s in ipairs(M.summary(res)) do
    local cells = {}
    for k, m in ipairs(M.METHODS) do
      local x = s[m]
      cells[k] = string.format("%5.2f / %5.2f [%d,%d]", x.median, x.p90, x.over, x.none)
    end
    p("%-9s %3d  %-22s %-22s %-22s %-22s %d/%d", s.group, s.n, cells[1], cells[2], cells[3], cells[4],
      s.adaptive.unverified_over, s.n)
  end
  p("")
  p("hypervolume of the measured (%s, ms) points / the oracle front's, per target (at the %s " ..
    "constraint; mean over trials)", accuracy and "validation accuracy" or res.objective,
    res.quantiles and string.format("%g%%", 100 * res.quantiles[#res.quantiles]) or "last")
  p("%-5s %-48s %9s %9s", "task", "target", "adaptive", "random")
  for _, h in ipairs(res.hv) do
    p("%-5s %-48s %9.4f %9.4f", h.task, h.target, util.mean_std(h.adaptive) or 0 / 0, util.mean_std(h.random) or 0 / 0)
  end
  local t = M.timing(res)
  p("")
  p("wall clock per adaptive search (mean of %d): fit %.2f s, predict %.2f s, select %.4f s, measure %.4f s " ..
    "(simulated device: %.0f s charged at %g s per measurement), total %.2f s", t.n, t.fit, t.predict, t.select,
    t.measure, t.measure_cost, res.cost_s, t.total)
  if res.timing.space_cold then
    p("the whole NB201 space (15,625 cells) scored with intervals: %.2f s cold (features built), %.2f s warm",
      res.timing.space_cold, res.timing.space_warm)
  end
  p("bar run: %.0f s", res.timing.total)
  return table.concat(lines, "\n") .. "\n"
end

--- The FBNet run: FBNet has no accuracy table, so the objective is a user function, FLOPs-normalised: the
-- network's FLOPs over the largest of a 20,000-architecture sample (a stand-in for capacity, NOT accuracy). The
-- target device is a Lua function: a device of the synthetic zoo (nasflat.zoo, latency computed from the real
-- network structure; the only device here that can measure any of the 9^22 architectures), the predictor's
-- sources the real FBNet devices of task FD. Each round grows the pool with a predictor-only aging evolution over
-- the whole space (search.evolve under the current model). Reference: the same evolution run on the device's
-- TRUE latency with `reference_cycles` evaluations, i.e. as many measurements.
-- opts: target (zoo device, "cpu_mobile_mid"), quantile (0.25 of a 5,000-sample), measurements (30), init (20),
-- batch (2), seed (1), cycles (per round, 1000), reference_cycles (20000), data. Returns a table.
function M.fbnet(opts)
  local o = util.options("search_bar.fbnet", opts, {target = "cpu_mobile_mid", quantile = 0.25, measurements = 30,
    init = 20, batch = 2, seed = 1, cycles = 1000, reference_cycles = 20000, data = util.NIL, progress = util.NIL})
  local core = require "nasflat.core"
  local zoo = require "nasflat.zoo"
  local space = require("nasflat.space").get("fbnet")
  local src, err = require("nasflat.source").open{data = o.data, space = "fbnet"}
  if not src then return nil, err end
  local task, terr = require("nasflat.tasks").resolve{name = "FD", devices = src.devices, tasks_file = src.tasks_file}
  if not task then return nil, terr end
  local t0 = util.now()
  local sm, serr = require("nasflat.source_models").fit{source = src, devices = task.train}
  if not sm then return nil, serr end
  local t_sm = util.now() - t0
  local function truth(a) return zoo.latency_one("fbnet", a, o.target) end
  local rng = core.Rng(o.seed)
  local sample = space:sample(rng, 20000)
  local _, flops = space:costs(sample)
  local fmax = 0
  for _, v in ipairs(flops:totable()) do fmax = math.max(fmax, v) end
  local function objective(list)
    local _, f = space:costs(list)
    local v = f:totable()
    for i = 1, #v do v[i] = v[i] / fmax end
    return v
  end
  local lat = {}
  for i = 1, 5000 do lat[i] = truth(sample[i]) end
  table.sort(lat)
  local budget = lat[math.floor(o.quantile * #lat + 0.5)]
  local device = dev.fn{name = o.target, fn = truth}
  local propose_time = 0
  local function propose(models, round)
    local t1 = util.now()
    local ev = assert(search.evolve{space = "fbnet", models = models, budgets = {budget}, objective = objective,
      cycles = o.cycles, population = 100, sample = 25, seed = o.seed * 1000 + round, margin = "none"})
    propose_time = propose_time + util.now() - t1
    local out = {}
    for i, m in ipairs(ev.population) do out[i] = m.arch end
    return out
  end
  t0 = util.now()
  local r, rerr = search.adaptive{space = "fbnet", pool = space:sample(rng, 2000), objective = objective,
    constraints = {{device = device, budget_ms = budget}}, measurements = o.measurements, init = o.init,
    batch = o.batch, seed = o.seed, fit = {data = src, sources = sm, target = o.target}, propose = propose,
    progress = o.progress}
  if not r then return nil, rerr end
  local t_search = util.now() - t0
  -- the reference: aging evolution on the true latency (every evaluation a measurement)
  local T = {}
  function T.predict(_, archs, popts)
    local l = {}
    for i, a in ipairs(archs) do l[i] = math.log(truth(a)) end
    local logms = core.Tensor.from(l)
    local info = {logms = logms, halfwidth_log = 0}
    if popts and popts.interval then info.lo, info.hi = logms:clone():exp(), logms:clone():exp() end
    return logms:clone():exp(), info
  end
  t0 = util.now()
  local ref = assert(search.evolve{space = "fbnet", models = {T}, budgets = {budget}, objective = objective,
    cycles = o.reference_cycles, population = 100, sample = 25, seed = o.seed, margin = "none"})
  local t_ref = util.now() - t0
  local best_random
  for i = 1, o.measurements do
    local v = objective({sample[i]})[1]
    if truth(sample[i]) <= budget and (not best_random or v > best_random) then best_random = v end
  end
  return {target = o.target, budget_ms = budget, quantile = o.quantile, sources = task.train, result = r,
    pick = r.pick, reference = {objective = ref.best and ref.best.objective, arch = ref.best and ref.best.arch,
    evaluations = ref.evaluated, seconds = t_ref}, random_best = best_random, pool_size = #r.measurements,
    timing = {source_models = t_sm, search = t_search, propose = propose_time, fit = r.timing.fit,
    predict = r.timing.predict, select = r.timing.select, measure = r.timing.measure}}
end

--- The FBNet run as text.
function M.format_fbnet(f)
  local lines = {}
  local function p(...) lines[#lines + 1] = string.format(...) end
  p("FBNet (9^22 architectures): objective = FLOPs-normalised (a user Lua function; FBNet has no accuracy table)")
  p("target %s: a synthetic zoo device (latency computed from the network, any architecture) through a Lua " ..
    "function; sources: the real FBNet devices of task FD", f.target)
  p("budget %.3f ms (the %d %% quantile of 5,000 random architectures)", f.budget_ms, math.floor(f.quantile * 100 + 0.5))
  if f.pick then
    p("pick (measured): %s  objective %.4f, %.3f ms", f.pick.arch, f.pick.objective, f.pick.ms[f.target])
  else
    p("pick: none (%s)", f.result.pick_reason)
  end
  p("with %d measurements; best of %d random measured architectures: %s", f.result.n_measurements,
    f.result.n_measurements, f.random_best and string.format("%.4f", f.random_best) or "none feasible")
  p("reference: aging evolution on the true latency, %d evaluations (= measurements): objective %.4f (%.1f s)",
    f.reference.evaluations, f.reference.objective or 0 / 0, f.reference.seconds)
  p("time: source models %.2f s, search %.2f s (evolution proposals %.2f s, fits %.2f s, predictions %.2f s, " ..
    "selection %.3f s, measurements %.2f s)", f.timing.source_models, f.timing.search, f.timing.propose, f.timing.fit,
    f.timing.predict, f.timing.select, f.timing.measure)
  return table.concat(lines, "\n") .. "\n"
end

return M
