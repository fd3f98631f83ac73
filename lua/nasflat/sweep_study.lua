--- The study sweep (`nasflat sweep plan study [options of nasflat study]`): the design study (nasflat.study) as
-- jobs for the job machinery of nasflat.sweep (docs/sweeps.md).
--
-- The plan is made by study.run itself, with its `experiment` option recording instead of running: every
-- (axis setting, task) the study would run — once per distinct experiment setting, as study.run computes a
-- recurring setting once — becomes a unit with its full experiment options. A job is one trial of a unit
-- (unit x trial; its seed is experiment.run's for that trial: core.derive_seed(seed, 10000 * trial + budget),
-- what the job is, never its position), or one pre-training of the graph network per (task, pre-training key):
-- study.lua's key, the options that change the pre-trained model. Trial jobs need their pre-training (a first
-- Slurm array; `--dependency=afterok`). A trial job runs experiment.run with the unit's options restricted to its
-- trial (trial_ids) and the pre-trained network loaded: the numbers of that trial inside the single-process study.
-- The merge runs study.run once more with an `experiment` that answers each unit from its jobs' records (and puts
-- the pre-training job's model where study.run looks for it), so the tables, the pre-training counts and the
-- JSON come out of the same code as `nasflat study`'s.
local util = require "nasflat.util"
local results = require "nasflat.results"
local experiment = require "nasflat.experiment"
local study = require "nasflat.study"
local sweep = require "nasflat.sweep"
local sweep_run = require "nasflat.sweep_run"

local M = {}

M.MAKER = "its study"
M.JOB_FIELDS = {"kind", "task", "axis", "setting", "trial", "seed", "key", "needs"}

local safe = sweep.safe
local PC = require "nasflat.pretrain_cache"
local canon, fnv64 = PC.canon, PC.fnv64

-- experiment options that are objects of one process or say what to run, not what a unit is
local NOT_UNIT = {source = true, task = true, progress = true, pretrained = true, save_pretrained = true,
  cache_dir = true, trial_ids = true}

local function unit_options(eo)
  local out = {}
  for k, v in pairs(eo) do if not NOT_UNIT[k] then out[k] = v end end
  return out
end

--- Integral numbers back to integers, through nested tables (after a JSON round trip).
local function integers(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = integers(x) end
  return out
end

-- the network options as nasflat.predictor.canonical_options (as the study keys its results)
local function unit_id(task, options)
  local o = {}
  for k, v in pairs(options) do o[k] = v end
  if o.model then o.model = require("nasflat.predictor").canonical_options(o.model) end
  return task .. "\0" .. canon(o)
end

--- Plan fields for a study: study.run with a recording `experiment`. `opts`: study.run options (JSON-able: no
-- functions, no opened sources; `data` is required). Returns {study, units, task_defs}, data_info; or nil,
-- message (a failure of the world); raises on bad options as study.run does.
function M.plan(opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.progress or o.on_axis or o.sources or o.cache_dir or o.experiment then
    error("sweep_study.plan: a plan takes the study's options only (no progress, on_axis, sources, cache_dir, " ..
      "experiment)", 2)
  end
  local units, seen = {}, {}
  o.experiment = function(eo, u)
    local opt = unit_options(eo)
    local id = unit_id(u.task, opt)
    if not seen[id] then
      seen[id] = true
      units[#units + 1] = {task = u.task, axis = u.axis, setting = u.setting, options = opt,
        pretrain = sweep.uses_gnn(opt) and fnv64(u.pretrain_key) or nil}
    end
    return nil, "planned"
  end
  local result, err = study.run(o)
  if not result then return nil, err end
  return {study = opts, units = units, task_defs = result.task_defs}, result.data
end

--- The jobs: one pre-training per (task, pre-training key) in the order units first need them, then unit x trial.
function M.jobs(f)
  local jobs, pre = {}, {}
  for _, u in ipairs(f.units) do
    if u.pretrain then
      local key = "pretrain." .. safe(u.task) .. "." .. u.pretrain
      if not pre[key] then
        pre[key] = true
        jobs[#jobs + 1] = {kind = "pretrain", task = u.task, seed = u.options.seed, key = key,
          model = safe(u.task) .. "-" .. u.pretrain .. ".nfm", axis = u.axis, setting = u.setting,
          what = string.format("pre-training for %s, %s:%s", u.task, u.axis, u.setting)}
      end
    end
  end
  for ui, u in ipairs(f.units) do
    for trial = 1, u.options.trials do
      jobs[#jobs + 1] = {kind = "trial", task = u.task, axis = u.axis, setting = u.setting, trial = trial, unit = ui,
        seed = sweep_run.trial_seed(u.options.seed, u.options.budgets[1], trial),
        key = string.format("%s.%s.%s.t%d", safe(u.task), safe(u.axis), safe(u.setting), trial),
        needs = u.pretrain and ("pretrain." .. safe(u.task) .. "." .. u.pretrain) or nil,
        what = string.format("%s %s:%s trial %d", u.task, u.axis, u.setting, trial)}
    end
  end
  return jobs
end

function M.prepare(f) return f end

--- The fields of a plan file read back, checked.
function M.check(v, bad)
  if type(v.study) ~= "table" or type(v.units) ~= "table" or type(v.task_defs) ~= "table" then
    return bad("'study', 'units' and 'task_defs' must be present")
  end
  local units = {}
  for i, u in ipairs(v.units) do
    if type(u) ~= "table" or type(u.task) ~= "string" or type(u.axis) ~= "string" or type(u.setting) ~= "string" or
      type(u.options) ~= "table" then
      return bad("unit %d must be {task, axis, setting, options}", i)
    end
    local opt = integers(u.options)
    if math.type(opt.trials) ~= "integer" or opt.trials < 1 then return bad("unit %d: trials must be an integer >= 1", i) end
    if math.type(opt.seed) ~= "integer" then return bad("unit %d: seed must be an integer", i) end
    if type(opt.budgets) ~= "table" or #opt.budgets == 0 then return bad("unit %d: budgets must be a non-empty list", i) end
    for k in pairs(opt) do
      if experiment.DEFAULTS[k] == nil then return bad("unit %d: unknown experiment option '%s'", i, tostring(k)) end
    end
    local td = v.task_defs[u.task]
    if type(td) ~= "table" or type(td.space) ~= "string" or type(td.train) ~= "table" or type(td.test) ~= "table" then
      return bad("unit %d: task %s has no definition in task_defs", i, u.task)
    end
    if u.pretrain ~= nil and (type(u.pretrain) ~= "string" or not u.pretrain:match("^%x+$")) then
      return bad("unit %d: pretrain must be a hex key", i)
    end
    units[i] = {task = u.task, axis = u.axis, setting = u.setting, options = opt, pretrain = u.pretrain}
  end
  local study_opts = integers(v.study)
  return {study = study_opts, units = units, task_defs = v.task_defs}
end

--- The trial jobs of one unit go together (one experiment.run for their trials); pre-trainings alone.
function M.group(_, todo)
  local groups, where = {}, {}
  for _, j in ipairs(todo) do
    local g = j.kind == "pretrain" and ("p" .. j.id) or ("u" .. j.unit)
    if not where[g] then where[g] = #groups + 1; groups[#groups + 1] = {} end
    local list = groups[where[g]]
    list[#list + 1] = j
  end
  return groups
end

--- A pool worker takes the trials of one unit.
function M.batch_key(j) return "u" .. j.unit end

local function experiment_options(plan, unit, src)
  local o = {}
  for k, v in pairs(unit.options) do o[k] = v end
  local td = plan.task_defs[unit.task]
  o.source, o.task = src, {name = td.name, space = td.space, train = td.train, test = td.test}
  return o
end

local function unit_of(plan, j)
  if j.unit then return plan.units[j.unit] end
  for _, u in ipairs(plan.units) do   -- a pre-training: the first unit that needs it
    if u.pretrain and "pretrain." .. safe(u.task) .. "." .. u.pretrain == j.key then return u end
  end
  error("sweep_study: no unit for " .. sweep.describe(j))
end

--- Run a pre-training, or the trials of one unit (one experiment.run; each trial's record written on its own).
function M.run_group(plan, group, cache, me)
  local first = group[1]
  local unit = unit_of(plan, first)
  local src, err = sweep.open_source(plan, plan.task_defs[unit.task].space, cache)
  if not src then return nil, err end
  local o = experiment_options(plan, unit, src)
  if first.kind == "pretrain" then return sweep.pretrain(plan, first, o, me) end
  if first.needs then
    local pre, perr = sweep.pretrained_for(plan, first)
    if not pre then return nil, perr end
    o.pretrained = pre
  end
  local trial_ids = {}
  for i, j in ipairs(group) do trial_ids[i] = j.trial end
  o.trial_ids = trial_ids
  local rec, rerr = experiment.run(o)
  if o.pretrained then o.pretrained:free() end
  if not rec then return nil, rerr end
  local n = #group
  for i, j in ipairs(group) do
    local one = {}
    for k, v in pairs(rec) do one[k] = v end
    one.targets = {}
    for ti, e in ipairs(rec.targets) do
      local entry = {}
      for k, v in pairs(e) do entry[k] = v end
      entry.budgets = {}
      for bi, b in ipairs(e.budgets) do
        local r = b.trials[i]
        if r.trial ~= j.trial or r.seed ~= sweep_run.trial_seed(unit.options.seed, b.budget, j.trial) then
          error(string.format("sweep: %s: experiment.run gave trial %s seed %s", sweep.describe(j),
            tostring(r.trial), tostring(r.seed)))
        end
        entry.budgets[bi] = {budget = b.budget, trials = {r}}
      end
      one.targets[ti] = entry
    end
    one.config = {}
    for k, v in pairs(rec.config) do one.config[k] = v end
    one.config.trial_ids = {j.trial}
    one.mean, one.nan_metrics = nil, nil
    one.timings = {total_s = rec.timings.total_s / n, pretrain_s = (rec.timings.pretrain_s or 0) / n,
      transfer_s = (rec.timings.transfer_s or 0) / n, group_jobs = n}
    local ok, werr = sweep.write_result(plan, j, one, results.csv({one}), me)
    if not ok then return nil, werr end
  end
  return true
end

--- The result `nasflat study` gives for the plan's study, from the jobs' results: study.run with an experiment
-- answering each unit from its trials' records. Timings: each axis's wall_s is the sum of its jobs' times (the
-- pre-trainings included once, in the axis that first needs them), the study's wall_s the sum of every job's.
function M.merge(plan, got, info)
  local by_id, jobs_of = {}, {}
  for ui, u in ipairs(plan.units) do by_id[unit_id(u.task, u.options)] = ui end
  for _, j in ipairs(plan.jobs) do
    if j.unit then
      jobs_of[j.unit] = jobs_of[j.unit] or {}
      table.insert(jobs_of[j.unit], j)
    end
  end
  local axis_s = {}
  local any = false
  local o = {}
  for k, v in pairs(plan.study) do o[k] = v end
  o.data = plan.data
  o.experiment = function(eo, u)
    local ui = by_id[unit_id(u.task, unit_options(eo))]
    if not ui then
      return nil, string.format("the plan has no unit for %s:%s on %s (a plan of another study?)", u.axis, u.setting,
        u.task)
    end
    local unit = plan.units[ui]
    local parts, spent = {}, 0
    for _, j in ipairs(jobs_of[ui] or {}) do
      local v = got[j.key]
      if v then parts[#parts + 1] = v; spent = spent + v.timings.total_s end
    end
    local pre_s, cached, how = 0, nil, nil
    if unit.pretrain then
      -- study.run trains in one process what the pre-training job made: its model goes where study.run looks
      cached = PC.path(eo.cache_dir, plan.task_defs[unit.task].name, u.pretrain_key)
      local f = io.open(cached, "rb")
      if f then
        f:close()
        how = "loaded"
      else
        local pj = plan.by_key["pretrain." .. safe(unit.task) .. "." .. unit.pretrain]
        if got[pj.key] then
          local text = assert(sweep.read_file(sweep.model_path(plan, pj)))
          local ok, werr = util.atomic_write(cached, text)
          if not ok then return nil, werr end
          pre_s, how = got[pj.key].timings.total_s, "trained"
        end
      end
    end
    axis_s[u.axis] = (axis_s[u.axis] or 0) + spent + pre_s
    if #parts == 0 then return nil, "no job of this setting is done (a partial merge)" end
    any = true
    local td = plan.task_defs[unit.task]
    local rec = sweep_run.combine(parts[1], parts, td.test, unit.options.budgets, unit.options.predictors)
    rec.test = td.test
    rec.timings = {total_s = spent + pre_s, pretrain_s = pre_s, transfer_s = spent}
    if how then rec.pretrained_model, rec.pretrained_cache = cached, how end
    rec.peak_rss_mib = info.peak_rss_mib
    return rec
  end
  local ok, result, err = pcall(study.run, o)
  if not ok then error(result, 0) end
  if not result then return nil, err end
  if not any then return nil, "sweep merge: no job of " .. plan.dir .. " is done yet; nothing to merge" end
  for _, ax in ipairs(result.axes) do
    ax.wall_s = axis_s[ax.name] or 0
    ax.table = study.axis_table(ax, result.tasks)
  end
  result.wall_s = info.jobs_s
  result.peak_rss_mib = info.peak_rss_mib
  return result
end

return M
