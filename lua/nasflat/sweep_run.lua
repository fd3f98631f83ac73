--- The run sweep (`nasflat sweep plan [options of nasflat run]`): the jobs of `nasflat run`, for the job
-- machinery of nasflat.sweep (docs/sweeps.md).
--
-- A job is one (task, target, budget, trial) of the run's one setting (its experiment options), or the
-- pre-training of the graph network for one task's source devices. A trial job's seed is the one
-- experiment.run derives for that trial, core.derive_seed(seed, 10000 * trial + budget): it depends on what the
-- job is, never on its position in the list. A job runs experiment.run restricted to its target, budget and trial
-- (task.test = {target}, budgets = {k}, trial_ids = {t}), which gives the numbers of the same trial inside the
-- whole run (spec/sweep_spec.lua checks it), and writes its one-trial record into DIR/jobs/.
local core = require "nasflat.core"
local util = require "nasflat.util"
local results = require "nasflat.results"
local experiment = require "nasflat.experiment"
local sweep = require "nasflat.sweep"

local M = {}

M.MAKER = "its run and tasks"
M.JOB_FIELDS = {"kind", "task", "target", "budget", "trial", "seed", "key"}

-- The experiment options a plan carries (its one setting): every option of experiment.run but the ones that name
-- objects of one process or select what to run.
local NOT_RUN = {source = true, task = true, trial_ids = true, pretrained = true, save_pretrained = true,
  progress = true}
local RUN_DEFAULTS = {}
for k, v in pairs(experiment.DEFAULTS) do
  if not NOT_RUN[k] then RUN_DEFAULTS[k] = v end
end
-- Options that are integers (JSON numbers come back as floats).
M.INT_OPTS = {trials = true, seed = true, hybrid_bags = true, hybrid_folds = true, pretrain_samples = true,
  epochs = true, transfer_epochs = true, batch = true, transfer_batch = true,
  transfer_members = true}
local INT_OPTS = M.INT_OPTS
local safe, ints = sweep.safe, sweep.ints

--- Integer options back to integers (after a JSON round trip).
local function run_options(run)
  local o = {}
  for k, v in pairs(run) do
    if INT_OPTS[k] then o[k] = math.tointeger(v) or v
    elseif k == "budgets" then o[k] = ints(v)
    else o[k] = v end
  end
  return o
end

--- The seed of trial `trial` at budget `budget` (experiment.run's derivation).
function M.trial_seed(seed, budget, trial)
  return core.derive_seed(seed, 10000 * trial + budget)
end

local function trial_key(task, target, budget, trial)
  return string.format("%s.%s.k%d.t%d", safe(task), safe(target), budget, trial)
end

--- The jobs of a run: pre-trainings first (when the graph network is used), then task x target x budget x trial.
function M.jobs(f)
  local tasks, run = f.tasks, f.run
  local jobs = {}
  local gnn = sweep.uses_gnn(run)
  if gnn then
    for _, t in ipairs(tasks) do
      jobs[#jobs + 1] = {kind = "pretrain", task = t.name, seed = run.seed, key = "pretrain." .. safe(t.name),
        model = safe(t.name) .. ".nfm", what = "pre-training for " .. t.name}
    end
  end
  for _, t in ipairs(tasks) do
    for _, target in ipairs(t.test) do
      for _, k in ipairs(run.budgets) do
        for trial = 1, run.trials do
          jobs[#jobs + 1] = {kind = "trial", task = t.name, target = target, budget = k, trial = trial,
            seed = M.trial_seed(run.seed, k, trial), key = trial_key(t.name, target, k, trial),
            needs = gnn and ("pretrain." .. safe(t.name)) or nil,
            what = string.format("%s %s k=%d trial %d", t.name, target, k, trial)}
        end
      end
    end
  end
  return jobs
end

--- Plan fields from {tasks, run}: the run options checked and completed with experiment.run's defaults.
function M.prepare(f)
  if type(f.tasks) ~= "table" or #f.tasks == 0 then error("sweep.plan: option 'tasks' must be a non-empty list", 3) end
  local run = util.options("sweep.plan: run", f.run, RUN_DEFAULTS)
  if type(run.budgets) ~= "table" or #run.budgets == 0 then error("sweep.plan: run.budgets must be a non-empty list", 3) end
  if math.type(run.trials) ~= "integer" or run.trials < 1 then error("sweep.plan: run.trials must be an integer >= 1", 3) end
  local names, tasks = {}, {}
  for i, t in ipairs(f.tasks) do
    if type(t.name) ~= "string" or type(t.train) ~= "table" or type(t.test) ~= "table" then
      error(string.format("sweep.plan: tasks[%d] must be {name, space, train, test}", i), 3)
    end
    if names[t.name] then return nil, "sweep plan: task " .. t.name .. " is named twice" end
    names[t.name] = true
    tasks[i] = {name = t.name, space = t.space, train = t.train, test = t.test}
  end
  return {run = run, tasks = tasks}
end

--- The fields of a plan file read back, checked: {run, tasks, tasks_by}, or nil, message (through `bad`).
function M.check(v, bad)
  if type(v.run) ~= "table" or type(v.tasks) ~= "table" then return bad("'run', 'tasks' and 'jobs' must be present") end
  for k in pairs(v.run) do
    if RUN_DEFAULTS[k] == nil then return bad("unknown run option '%s'", tostring(k)) end
  end
  local run = run_options(v.run)
  if math.type(run.trials) ~= "integer" or run.trials < 1 then return bad("run.trials must be an integer >= 1") end
  if math.type(run.seed) ~= "integer" or run.seed < 0 then return bad("run.seed must be an integer >= 0") end
  if type(run.predictors) ~= "table" or #run.predictors == 0 then return bad("run.predictors must be a non-empty list") end
  if type(run.budgets) ~= "table" or #run.budgets == 0 then return bad("run.budgets must be a non-empty list") end
  for _, k in ipairs(run.budgets) do
    if math.type(k) ~= "integer" or k < 1 then return bad("run.budgets must hold positive integers") end
  end
  local tasks_by = {}
  for i, t in ipairs(v.tasks) do
    if type(t) ~= "table" or type(t.name) ~= "string" or type(t.space) ~= "string" or type(t.train) ~= "table" or
      type(t.test) ~= "table" then
      return bad("task %d must be {name, space, train, test}", i)
    end
    tasks_by[t.name] = t
  end
  return {run = run, tasks = v.tasks, tasks_by = tasks_by}
end

--- Jobs of one (task, target, budget) make a cell; cells of one (task, budget) with the same trials to run go
-- together in one experiment.run (they share its source models). Pre-trainings alone.
function M.group(_, todo)
  local cells, where = {}, {}
  for _, j in ipairs(todo) do
    local g = j.kind == "pretrain" and ("p" .. j.id) or table.concat({j.task, j.target, j.budget}, "\0")
    if not where[g] then where[g] = #cells + 1; cells[#cells + 1] = {} end
    local list = cells[where[g]]
    list[#list + 1] = j
  end
  local groups, gwhere = {}, {}
  for _, cell in ipairs(cells) do
    local j = cell[1]
    local trials = {}
    for i, c in ipairs(cell) do trials[i] = c.trial end
    local g = j.kind == "pretrain" and ("p" .. j.id) or
      table.concat({j.task, j.budget, table.concat(trials, ",")}, "\0")
    if not gwhere[g] then gwhere[g] = #groups + 1; groups[#groups + 1] = {} end
    local list = groups[gwhere[g]]
    for _, c in ipairs(cell) do list[#list + 1] = c end
  end
  return groups
end

--- A pool worker takes the jobs of one task (they share the source, its features and, per budget, the source
-- models).
function M.batch_key(j) return j.task end

--- Run one group of jobs of the same task and budget with one experiment.run; each job's single-trial record is
-- written on its own.
function M.run_group(plan, group, cache, me)
  local first = group[1]
  local task = plan.tasks_by[first.task]
  local src, err = sweep.open_source(plan, task.space, cache)
  if not src then return nil, err end
  local o = {}
  for k, v in pairs(plan.run) do o[k] = v end
  o.source = src
  if first.kind == "pretrain" then
    o.task = task
    return sweep.pretrain(plan, first, o, me)
  end
  if first.needs then
    local pre, perr = sweep.pretrained_for(plan, first)
    if not pre then return nil, perr end
    o.pretrained = pre
  end
  -- the group: the same trials of several targets at one budget (M.group makes it so)
  local targets, jobs_of, trial_ids = {}, {}, {}
  for _, j in ipairs(group) do
    if not jobs_of[j.target] then targets[#targets + 1] = j.target; jobs_of[j.target] = {} end
    local list = jobs_of[j.target]
    list[#list + 1] = j
    if j.target == first.target then trial_ids[#trial_ids + 1] = j.trial end
  end
  o.task = {name = task.name, space = task.space, train = task.train, test = targets}
  o.budgets, o.trial_ids = {first.budget}, trial_ids
  local rec, rerr = experiment.run(o)
  if o.pretrained then o.pretrained:free() end
  if not rec then return nil, rerr end
  local n = #group
  for ti, target in ipairs(targets) do
    local got = rec.targets[ti]
    for i, j in ipairs(jobs_of[target]) do
      local r = got.budgets[1].trials[i]
      if got.device ~= j.target or r.trial ~= j.trial or r.seed ~= j.seed then
        error(string.format("sweep: %s: experiment.run gave %s trial %s seed %s, the plan says %s trial %d seed %d",
          sweep.describe(j), tostring(got.device), tostring(r.trial), tostring(r.seed), j.target, j.trial, j.seed))
      end
      local one = {}
      for k, v in pairs(rec) do one[k] = v end
      local entry = {}
      for k, v in pairs(got) do entry[k] = v end
      local summary = {}
      for k, v in pairs(got.budgets[1]) do summary[k] = v end
      summary.trials = {r}
      entry.budgets = {summary}
      one.task = task.name
      one.test, one.targets = {j.target}, {entry}
      one.config = {}
      for k, v in pairs(rec.config) do one.config[k] = v end
      one.config.trial_ids = {j.trial}
      one.nan_metrics = 0
      for _, p in ipairs(plan.run.predictors) do
        if r[p] and r[p].nan_reason then one.nan_metrics = one.nan_metrics + 1 end
      end
      -- the group's time, shared equally among its jobs (merge sums them)
      one.timings = {total_s = rec.timings.total_s / n, pretrain_s = (rec.timings.pretrain_s or 0) / n,
        transfer_s = (rec.timings.transfer_s or 0) / n, group_jobs = n}
      one.mean = nil
      local ok, werr = sweep.write_result(plan, j, one, results.csv({one}), me)
      if not ok then return nil, werr end
    end
  end
  return true
end

--- A trial's table read back from JSON: integers as integers.
local function to_int_fields(run)
  run.trial = math.tointeger(run.trial) or run.trial
  run.seed = math.tointeger(run.seed) or run.seed
  if run.rows then run.rows = ints(run.rows) end
  return run
end

--- One experiment record from one-trial records read back (job results): for each of `targets`, each of
-- `budgets`, the trials found in `parts` (a list of records, each holding some targets, budgets and trials), in
-- trial order; the summaries (experiment.summarize_budget, summarize) computed again. `base`: the record whose
-- other fields are kept (its config without trial_ids). Returns the record and the number of targets with a trial.
function M.combine(base, parts, targets, budgets, predictors)
  local found = {}   -- target -> budget -> list of trials
  for _, v in ipairs(parts) do
    for _, e in ipairs(v.targets) do
      found[e.device] = found[e.device] or {n_measured = math.tointeger(e.n_measured) or e.n_measured}
      for _, b in ipairs(e.budgets) do
        local k = math.tointeger(b.budget) or b.budget
        found[e.device][k] = found[e.device][k] or {}
        for _, r in ipairs(b.trials) do table.insert(found[e.device][k], to_int_fields(r)) end
      end
    end
  end
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  out.job, out.worker, out.files = nil, nil, nil
  local list = {}
  for _, target in ipairs(targets) do
    local f = found[target]
    if f then
      local entry = {device = target, n_measured = f.n_measured, budgets = {}}
      for _, k in ipairs(budgets) do
        local trials = f[k] or {}
        table.sort(trials, function(a, b) return a.trial < b.trial end)
        local summary = {budget = k, trials = trials}
        experiment.summarize_budget(summary, predictors)
        entry.budgets[#entry.budgets + 1] = summary
      end
      list[#list + 1] = entry
    end
  end
  out.targets = list
  out.config = {}
  for k, v in pairs(base.config) do out.config[k] = v end
  out.config.trial_ids = nil
  for k in pairs(INT_OPTS) do
    if out.config[k] ~= nil then out.config[k] = math.tointeger(out.config[k]) or out.config[k] end
  end
  out.config.budgets = budgets
  out.seed = math.tointeger(base.seed) or base.seed
  experiment.summarize(out, predictors, budgets)
  return out, #list
end

--- The records `nasflat run` gives for the plan's run, from the jobs' results (`got`: key -> result).
function M.merge(plan, got, info)
  local run = plan.run
  local records = {}
  for _, task in ipairs(plan.tasks) do
    local pretrain_s = 0
    local pj = plan.by_key["pretrain." .. safe(task.name)]
    if pj and got[pj.key] then pretrain_s = got[pj.key].timings.total_s end
    local total_s = pretrain_s
    local parts = {}
    for _, target in ipairs(task.test) do
      for _, k in ipairs(run.budgets) do
        for trial = 1, run.trials do
          local v = got[trial_key(task.name, target, k, trial)]
          if v then
            parts[#parts + 1] = v
            total_s = total_s + v.timings.total_s
          end
        end
      end
    end
    if #parts > 0 then
      local out, n = M.combine(parts[1], parts, task.test, run.budgets, run.predictors)
      out.test = task.test
      out.seed = run.seed
      out.timings = {total_s = total_s, pretrain_s = pretrain_s, jobs_s = total_s}
      out.peak_rss_mib = info.peak_rss_mib
      if n < #task.test then out.partial_targets = n end
      records[#records + 1] = out
    end
  end
  if #records == 0 then return nil, "sweep merge: no job of " .. plan.dir .. " is done yet; nothing to merge" end
  return records
end

return M
