--- The search sweep (`nasflat sweep plan search [options of nasflat search --bar]`): the search bar
-- (nasflat.search_bar: every target of the tasks, latency budgets at quantiles of its measured latencies, a few
-- trials, the adaptive search and three baselines) as jobs for the job machinery of nasflat.sweep
-- (docs/sweeps.md).
--
-- A job is one (task, target device, budget quantile, trial): the four searches of that row of the bar, seeded by
-- the trial number as the bar seeds them (what the job is, never its position). A job fits the task's source-device
-- models and builds the target's pool itself (the jobs of one task and target that run in one process share them),
-- so its row is the row of the single-process bar. No job depends on another. The merge puts the rows and the
-- hypervolume ratios (taken at the last quantile) back in the bar's order: `nasflat search --bar`'s tables and JSON.
local util = require "nasflat.util"
local results = require "nasflat.results"
local bar = require "nasflat.search_bar"
local sweep = require "nasflat.sweep"

local M = {}

M.MAKER = "its search"
M.JOB_FIELDS = {"kind", "task", "target", "q", "trial", "seed", "key"}

local safe = sweep.safe

--- The bar options a plan keeps (search_bar.DEFAULTS but the process's own: progress, data).
local KEEP = {tasks = true, targets = true, quantiles = true, trials = true, measurements = true, init = true,
  batch = true, objective = true, cost_s = true, sampler = true}

local function qname(q) return string.format("q%g", q * 100) end

local function job_key(task, target, q, trial)
  return string.format("%s.%s.%s.t%d", safe(task), safe(target), safe(qname(q)), trial)
end

--- Plan fields for a bar: its options checked (search_bar.DEFAULTS) and its tasks resolved to their targets.
-- `opts`: search_bar.run options with `data`. Returns {search, tasks}, data_info; or nil, message.
function M.plan(opts)
  local o = util.options("sweep_search.plan", opts, bar.DEFAULTS)
  if o.progress then error("sweep_search.plan: a plan takes the bar's options only (no progress)", 2) end
  for _, k in ipairs({"trials", "measurements", "init", "batch"}) do
    if math.type(o[k]) ~= "integer" or o[k] < 1 then
      error("sweep_search.plan: option '" .. k .. "' must be an integer >= 1", 2)
    end
  end
  if type(o.quantiles) ~= "table" or #o.quantiles == 0 then
    error("sweep_search.plan: option 'quantiles' must be a non-empty list", 2)
  end
  for _, q in ipairs(o.quantiles) do
    if type(q) ~= "number" or not (q > 0 and q <= 1) then error("sweep_search.plan: quantiles must be in (0, 1]", 2) end
  end
  local src, obj = bar.open(o)
  if not src then return nil, obj end
  local only = {}
  for _, t in ipairs(o.targets or {}) do only[t] = true end
  local tasks, found = {}, {}
  for _, tname in ipairs(o.tasks) do
    local task, terr
    if src.synthetic then
      task = require("nasflat.zoo").task("nb201", tname)
      if not task then terr = string.format("unknown zoo task '%s' (the synthetic zoo has: %s)", tostring(tname),
        table.concat(require("nasflat.zoo").task_names("nb201"), ", ")) end
    else
      task, terr = require("nasflat.tasks").resolve{name = tname, devices = src.devices, tasks_file = src.tasks_file}
    end
    if not task then return nil, terr end
    local test = {}
    for _, t in ipairs(task.test) do
      if not o.targets or only[t] then test[#test + 1] = t; found[t] = true end
    end
    tasks[#tasks + 1] = {name = tname, test = test}
  end
  for _, t in ipairs(o.targets or {}) do
    if not found[t] then return nil, string.format("target '%s' is not a target of the tasks %s", t,
      table.concat(o.tasks, ", ")) end
  end
  local keep = {}
  for k, v in pairs(o) do if KEEP[k] then keep[k] = v end end
  return {search = keep, tasks = tasks}, {nb201 = src.info}
end

--- The jobs: task x target x quantile x trial, in the bar's order.
function M.jobs(f)
  local jobs = {}
  for _, t in ipairs(f.tasks) do
    for _, target in ipairs(t.test) do
      for _, q in ipairs(f.search.quantiles) do
        for trial = 1, f.search.trials do
          jobs[#jobs + 1] = {kind = "search", task = t.name, target = target, q = q, trial = trial, seed = trial,
            key = job_key(t.name, target, q, trial),
            what = string.format("%s %s %s trial %d", t.name, target, qname(q), trial)}
        end
      end
    end
  end
  return jobs
end

function M.prepare(f) return f end

--- The fields of a plan file read back, checked.
function M.check(v, bad)
  local s = v.search
  if type(s) ~= "table" or type(v.tasks) ~= "table" then return bad("'search' and 'tasks' must be present") end
  for k in pairs(s) do
    if not KEEP[k] then return bad("unknown search option '%s'", tostring(k)) end
  end
  local o = {}
  for k, x in pairs(s) do o[k] = x end
  for _, k in ipairs({"trials", "measurements", "init", "batch"}) do
    o[k] = math.tointeger(o[k])
    if not o[k] or o[k] < 1 then return bad("search.%s must be an integer >= 1", k) end
  end
  if type(o.quantiles) ~= "table" or #o.quantiles == 0 then return bad("search.quantiles must be a non-empty list") end
  if type(o.tasks) ~= "table" or type(o.objective) ~= "string" or type(o.sampler) ~= "string" or
    type(o.cost_s) ~= "number" then
    return bad("search.tasks, objective, sampler and cost_s must be present")
  end
  o.cost_s = math.tointeger(o.cost_s) or o.cost_s
  for i, t in ipairs(v.tasks) do
    if type(t) ~= "table" or type(t.name) ~= "string" or type(t.test) ~= "table" then
      return bad("task %d must be {name, test}", i)
    end
  end
  return {search = o, tasks = v.tasks}
end

--- The jobs of one task in one call (they share its source-device models; those of a target share its pool).
function M.group(_, todo)
  local groups, where = {}, {}
  for _, j in ipairs(todo) do
    if not where[j.task] then where[j.task] = #groups + 1; groups[#groups + 1] = {} end
    local list = groups[where[j.task]]
    list[#list + 1] = j
  end
  return groups
end

--- A pool worker takes the jobs of one task and target.
function M.batch_key(j) return j.task .. "\0" .. j.target end

local METHODS = bar.METHODS

--- Run the searches of a group of jobs of one task; each job's row written on its own.
function M.run_group(plan, group, cache, me)
  local o = {}
  for k, v in pairs(plan.search) do o[k] = v end
  local src, err = sweep.open_source(plan, "nb201", cache)
  if not src then return nil, err end
  local obj, oerr = require("nasflat.search").objective(o.objective, {space = "nb201", data = src.info.data})
  if not obj then return nil, oerr end
  local t0 = util.now()
  local tc, terr = bar.task_context(src, group[1].task)
  if not tc then return nil, terr end
  local shared_s = (util.now() - t0) / #group
  local ctx
  for _, j in ipairs(group) do
    local t1 = util.now()
    if not ctx or ctx.target ~= j.target then
      if ctx then ctx.feats:free() end
      ctx = bar.target_context(src, obj, j.task, j.target)
    end
    local row, hv = bar.search_row(o, src, tc, ctx, j.q, j.trial, j.q == o.quantiles[#o.quantiles])
    if not row then ctx.feats:free() return nil, hv end
    local lines = {}
    for i, m in ipairs(METHODS) do
      local e = row[m]
      lines[i] = {j.task, j.target, j.q, row.budget_ms, j.trial, m, e.arch, e.valid, e.test, e.ms, e.regret,
        e.over and 1 or 0, e.none and 1 or 0}
    end
    local csv = results.csv_text({"task", "target", "q", "budget_ms", "trial", "method", "arch", "objective",
      "reported", "ms", "regret", "over", "none"}, lines)
    local value = {row = row, hv = hv, hv_oracle = ctx.hv_oracle, source_models_s = tc.seconds,
      timings = {total_s = util.now() - t1 + shared_s}}
    local ok, werr = sweep.write_result(plan, j, value, csv, me)
    if not ok then ctx.feats:free() return nil, werr end
  end
  if ctx then ctx.feats:free() end
  return true
end

local function int_fields(row)
  row.trial = math.tointeger(row.trial) or row.trial
  for _, m in ipairs(METHODS) do
    local e = row[m]
    if e and e.n then e.n = math.tointeger(e.n) or e.n end
  end
  return row
end

--- The result `nasflat search --bar` gives for the plan's bar, from the jobs' rows (search_bar.format prints it).
-- timing.total is the sum of the jobs' times; there is no whole-space scoring timing (not a job).
function M.merge(plan, got, info)
  local out = bar.new_result(plan.search)
  local n = 0
  for _, t in ipairs(plan.tasks) do
    for _, target in ipairs(t.test) do
      local hv = {task = t.name, target = target, adaptive = {}, random = {}}
      local any = false
      for _, q in ipairs(plan.search.quantiles) do
        for trial = 1, plan.search.trials do
          local v = got[job_key(t.name, target, q, trial)]
          if v then
            any, n = true, n + 1
            hv.oracle = v.hv_oracle
            if v.hv.adaptive then hv.adaptive[#hv.adaptive + 1] = v.hv.adaptive end
            if v.hv.random then hv.random[#hv.random + 1] = v.hv.random end
            out.rows[#out.rows + 1] = int_fields(v.row)
            out.timing["source_models_" .. t.name] = out.timing["source_models_" .. t.name] or v.source_models_s
          end
        end
      end
      if any then out.hv[#out.hv + 1] = hv end
    end
  end
  if n == 0 then return nil, "sweep merge: no job of " .. plan.dir .. " is done yet; nothing to merge" end
  out.timing.total = info.jobs_s
  return out
end

return M
