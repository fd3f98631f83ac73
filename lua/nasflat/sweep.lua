--- Sweeps: one run of the transfer experiment split into independent jobs (docs/sweeps.md).
--
--   sweep.plan{dir = "sw", data = "/data", tasks = {{name, space, train, test}, ...}, run = {experiment options}}
--   local plan = assert(sweep.load("sw"))
--   sweep.work{plan = plan, ids = {3, 4}}        -- run jobs in this process, each result written atomically
--   sweep.pool{plan = plan, workers = 2, command = {"lua5.4", "bin/nasflat"}}   -- the same on N processes
--   sweep.status{plan = plan}                    -- done / failed (with the reason) / missing, per job
--   sweep.merge{plan = plan}                     -- the records `nasflat run` would have produced
--   sweep.slurm{plan = plan, command = ...}      -- one `sbatch --array` script; pre-training array first
--
-- A job is one (task, target, budget, trial) of the run's one setting (its experiment options), or the
-- pre-training of the graph network for one task's source devices. A trial job's seed is the one
-- experiment.run derives for that trial, core.derive_seed(seed, 10000 * trial + budget): it depends on what the
-- job is, never on its position in the list. A job runs experiment.run restricted to its target, budget and trial
-- (task.test = {target}, budgets = {k}, trial_ids = {t}), which gives the numbers of the same trial inside the
-- whole run (spec/sweep_spec.lua checks it), and writes its record with nasflat.results into DIR/jobs/.
--
-- Files in DIR: plan.json (written once, atomically); jobs/<key>.json + .csv (a job's result, the pair checked by
-- results.read); jobs/<key>.failed (why the last attempt failed); jobs/<key>.running (pid, host and Slurm ids of
-- an attempt under way: left behind by a killed job, which status then reports); pretrained/<task>.nfm.
local core = require "nasflat.core"
local util = require "nasflat.util"
local json = require "nasflat.json"
local results = require "nasflat.results"
local experiment = require "nasflat.experiment"

local M = {}

M.FORMAT = "nasflat-sweep"
M.VERSION = 1
M.PLAN_FILE = "plan.json"

-- The experiment options a plan carries (its one setting): every option of experiment.run but the ones that name
-- objects of one process or select what to run.
local NOT_RUN = {source = true, task = true, trial_ids = true, pretrained = true, save_pretrained = true,
  progress = true}
local RUN_DEFAULTS = {}
for k, v in pairs(experiment.DEFAULTS) do
  if not NOT_RUN[k] then RUN_DEFAULTS[k] = v end
end
-- Options that are integers (JSON numbers come back as floats).
local INT_OPTS = {trials = true, seed = true, hybrid_bags = true, hybrid_folds = true, pretrain_samples = true,
  epochs = true, transfer_epochs = true, batch = true, transfer_batch = true}

local function ints(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = math.tointeger(v) or v end
  return out
end

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

--- A file-name-safe text: letters, digits, '_' and '-' kept, anything else as %XX.
local function safe(s)
  return (tostring(s):gsub("[^%w_%-]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- The name of a job's files, from what it is.
local function job_key(j)
  if j.kind == "pretrain" then return "pretrain." .. safe(j.task) end
  return string.format("%s.%s.k%d.t%d", safe(j.task), safe(j.target), j.budget, j.trial)
end

--- The seed of trial `trial` at budget `budget` (experiment.run's derivation).
function M.trial_seed(seed, budget, trial)
  return core.derive_seed(seed, 10000 * trial + budget)
end

local function needs_pretraining(run)
  for _, p in ipairs(run.predictors) do
    if p == "nasflat" then return true end
    if p == "hybrid" then
      for _, c in ipairs(run.hybrid) do if c == "nasflat" then return true end end
    end
  end
  return false
end

--- The jobs of a run: pre-trainings first (when the graph network is used), then task x target x budget x trial.
function M.jobs(tasks, run)
  local jobs = {}
  local function add(j)
    j.id = #jobs + 1
    j.key = job_key(j)
    jobs[#jobs + 1] = j
  end
  if needs_pretraining(run) then
    for _, t in ipairs(tasks) do add{kind = "pretrain", task = t.name, seed = run.seed} end
  end
  for _, t in ipairs(tasks) do
    for _, target in ipairs(t.test) do
      for _, k in ipairs(run.budgets) do
        for trial = 1, run.trials do
          add{kind = "trial", task = t.name, target = target, budget = k, trial = trial,
            seed = M.trial_seed(run.seed, k, trial)}
        end
      end
    end
  end
  return jobs
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- Write a new plan into opts.dir (created if needed; a directory that holds a plan is refused).
-- opts: dir, data ("synthetic" or a data directory), tasks (list of {name, space, train, test}), run (experiment
-- options: the setting every job shares). Returns the plan (as sweep.load gives it), or nil and a message.
function M.plan(opts)
  opts = util.options("sweep.plan", opts, {dir = util.REQUIRED, data = util.REQUIRED, tasks = util.REQUIRED,
    run = util.REQUIRED, data_info = util.NIL})
  if type(opts.tasks) ~= "table" or #opts.tasks == 0 then error("sweep.plan: option 'tasks' must be a non-empty list", 2) end
  local run = util.options("sweep.plan: run", opts.run, RUN_DEFAULTS)
  if type(run.budgets) ~= "table" or #run.budgets == 0 then error("sweep.plan: run.budgets must be a non-empty list", 2) end
  if math.type(run.trials) ~= "integer" or run.trials < 1 then error("sweep.plan: run.trials must be an integer >= 1", 2) end
  local names = {}
  for i, t in ipairs(opts.tasks) do
    if type(t.name) ~= "string" or type(t.train) ~= "table" or type(t.test) ~= "table" then
      error(string.format("sweep.plan: tasks[%d] must be {name, space, train, test}", i), 2)
    end
    if names[t.name] then return nil, "sweep plan: task " .. t.name .. " is named twice" end
    names[t.name] = true
  end
  local path = opts.dir .. "/" .. M.PLAN_FILE
  if exists(path) then
    return nil, string.format("sweep plan: %s already holds a plan (%s); choose another --out, or remove it",
      opts.dir, path)
  end
  local tasks = {}
  for i, t in ipairs(opts.tasks) do
    tasks[i] = {name = t.name, space = t.space, train = t.train, test = t.test}
  end
  local value = {format = M.FORMAT, version = M.VERSION, nasflat = core.version, data = opts.data,
    data_info = opts.data_info, run = run, tasks = tasks, jobs = M.jobs(tasks, run)}
  local ok, err = util.mkdirs(opts.dir .. "/jobs")
  if not ok then return nil, err end
  ok, err = util.atomic_write(path, json.encode(value) .. "\n")
  if not ok then return nil, err end
  return M.load(opts.dir)
end

--- Read and check DIR/plan.json. Returns the plan (dir, path, run, tasks, jobs, by_key...) or nil and a message.
function M.load(dir)
  if type(dir) ~= "string" then error("sweep.load: the sweep directory must be a string", 2) end
  local path = dir .. "/" .. M.PLAN_FILE
  local text, oerr = read_file(path)
  if not text then
    return nil, string.format("%s: no sweep plan (%s); write one with `nasflat sweep plan ... --out %s`", dir,
      tostring(oerr), dir)
  end
  local v, jerr = require("cjson.safe").decode(text)
  if type(v) ~= "table" then return nil, string.format("%s: not a sweep plan (%s)", path, tostring(jerr or "not an object")) end
  if v.format ~= M.FORMAT then
    return nil, string.format("%s: not a sweep plan (format is %s, expected \"%s\")", path,
      v.format == nil and "missing" or json.encode(v.format), M.FORMAT)
  end
  if v.version ~= M.VERSION then
    return nil, string.format("%s: sweep plan version %s; this nasflat reads version %d", path, json.encode(v.version),
      M.VERSION)
  end
  local function bad(fmt, ...) return nil, path .. ": " .. string.format(fmt, ...) end
  if type(v.data) ~= "string" then return bad("'data' must be a string") end
  if type(v.run) ~= "table" or type(v.tasks) ~= "table" or type(v.jobs) ~= "table" then
    return bad("'run', 'tasks' and 'jobs' must be present")
  end
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
  local want = M.jobs(v.tasks, run)
  if #v.jobs ~= #want then
    return bad("%d jobs, but its run and tasks make %d (an edited plan?)", #v.jobs, #want)
  end
  local by_key = {}
  for i, j in ipairs(v.jobs) do
    if type(j) ~= "table" then return bad("job %d is not an object", i) end
    local w = want[i]
    for _, f in ipairs({"kind", "task", "target", "budget", "trial", "seed", "key"}) do
      local have = j[f]
      if type(have) == "number" then have = math.tointeger(have) or have end
      if have ~= w[f] then
        return bad("job %d: %s is %s, but its run and tasks make %s (an edited plan?)", i, f,
          have == nil and "missing" or json.encode(have), json.encode(w[f]))
      end
    end
    by_key[w.key] = w
  end
  return {dir = dir, path = path, data = v.data, data_info = v.data_info, run = run, tasks = v.tasks,
    tasks_by = tasks_by, jobs = want, by_key = by_key, nasflat = v.nasflat}
end

--------------------------------------------------------------------------------------------------- job files
local function jobs_dir(plan) return plan.dir .. "/jobs" end
local function job_base(plan, j) return jobs_dir(plan) .. "/" .. j.key end
local function pretrained_path(plan, task) return plan.dir .. "/pretrained/" .. safe(task) .. ".nfm" end

--- This process: pid, its start time (to tell a reused pid), host, Slurm ids.
local function whoami()
  local stat = read_file("/proc/self/stat") or ""
  local pid, rest = stat:match("^(%d+) %b() (.*)$")
  local start
  if rest then
    local fields = {}
    for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
    start = fields[20]   -- field 22 of stat: the process's start time in clock ticks
  end
  local host = (read_file("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME") or "?"):gsub("%s+$", "")
  local me = {pid = tonumber(pid), start = start, host = host, time = os.date("!%Y-%m-%dT%H:%M:%SZ")}
  local sj, st = os.getenv("SLURM_ARRAY_JOB_ID"), os.getenv("SLURM_ARRAY_TASK_ID")
  if sj then me.slurm = sj .. "_" .. tostring(st) else me.slurm = os.getenv("SLURM_JOB_ID") end
  return me
end

--- Is the process a marker names still alive (same host, same pid and start time)? nil when it cannot be told.
local function alive(marker)
  local here = (read_file("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME") or "?"):gsub("%s+$", "")
  if marker.host ~= here or not marker.pid then return nil end
  local stat = read_file("/proc/" .. math.tointeger(marker.pid) .. "/stat")
  if not stat then return false end
  local rest = stat:match("^%d+ %b() (.*)$") or ""
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  if fields[1] == "Z" or fields[1] == "X" then return false end   -- killed, not yet reaped
  return fields[20] == marker.start
end

local function describe(j)
  if j.kind == "pretrain" then return string.format("job %d (pre-training for %s)", j.id, j.task) end
  return string.format("job %d (%s %s k=%d trial %d)", j.id, j.task, j.target, j.budget, j.trial)
end
M.describe = describe

--- The state of one job: "done", "failed" (reason), or "missing" (reason when an attempt left a marker).
local function job_state(plan, j)
  local base = job_base(plan, j)
  if exists(base .. ".json") then
    local v, err = results.read(base .. ".json")
    if not v then return "failed", "its result does not check: " .. err end
    local jj = v.job
    if type(jj) ~= "table" or jj.key ~= j.key or math.tointeger(jj.seed) ~= j.seed then
      return "failed", "its result is not this job's (key or seed differ): " .. base .. ".json"
    end
    if j.kind == "pretrain" then
      local text = read_file(pretrained_path(plan, j.task))
      if not text or #text ~= v.model.bytes or core.crc32(text) ~= v.model.crc32 then
        return "failed", "its pre-trained model " .. pretrained_path(plan, j.task) .. " is missing or changed"
      end
    end
    return "done", nil, v
  end
  local ftext = read_file(base .. ".failed")
  if ftext then
    local f = require("cjson.safe").decode(ftext)
    return "failed", type(f) == "table" and tostring(f.reason) or ftext
  end
  local mtext = read_file(base .. ".running")
  if mtext then
    local m = require("cjson.safe").decode(mtext) or {}
    local who = string.format("pid %s on %s%s, started %s", tostring(math.tointeger(m.pid) or m.pid), tostring(m.host),
      m.slurm and (", Slurm job " .. m.slurm) or "", tostring(m.time))
    local live = alive(m)
    if live == false then return "missing", "killed: " .. who .. ", ended without a result" end
    if live then return "running", who end
    return "missing", "started by " .. who .. ", no result yet (still running there, or killed)"
  end
  return "missing"
end

--- Every job's state: list of {job, state, reason}, and counts {done, failed, missing, running}.
function M.status(opts)
  opts = util.options("sweep.status", opts, {plan = util.REQUIRED})
  local out, counts = {}, {done = 0, failed = 0, missing = 0, running = 0}
  for _, j in ipairs(opts.plan.jobs) do
    local state, reason = job_state(opts.plan, j)
    out[#out + 1] = {job = j, state = state, reason = reason}
    counts[state] = counts[state] + 1
  end
  return out, counts
end

--------------------------------------------------------------------------------------------------- working
local function open_source(plan, space, cache)
  if cache[space] then return cache[space] end
  local src, err = require("nasflat.source").open{data = plan.data, space = space}
  if not src then return nil, err end
  local want = plan.data_info and plan.data_info[space]
  if want then
    local have = src.info.files and src.info.files[space .. "_latency.csv"]
    local w = want.files and want.files[space .. "_latency.csv"]
    if w and (not have or w.crc32 ~= have.crc32 or math.tointeger(w.bytes) ~= have.bytes) then
      return nil, string.format("%s/%s_latency.csv is not the file the plan was made with (CRC-32 or size differ)",
        plan.data, space)
    end
  end
  cache[space] = src
  return src
end

local function write_marker(path, me)
  return util.atomic_write(path, json.encode(me) .. "\n")
end

--- Run one group of jobs of the same task, target and budget with one experiment.run (the trials of the group
-- share its source models); each job's single-trial record is written on its own.
local function run_group(plan, group, cache, me)
  local first = group[1]
  local task = plan.tasks_by[first.task]
  local src, err = open_source(plan, task.space, cache)
  if not src then return nil, err end
  local o = {}
  for k, v in pairs(plan.run) do o[k] = v end
  o.source = src
  if first.kind == "pretrain" then
    o.task = {name = task.name, space = task.space, train = task.train, test = {}}
    o.predictors = {"nasflat"}
    local path = pretrained_path(plan, task.name)
    local ok, merr = util.mkdirs(plan.dir .. "/pretrained")
    if not ok then return nil, merr end
    o.save_pretrained = path
    local t0 = util.now()
    local rec, rerr = experiment.run(o)
    if not rec then return nil, rerr end
    local text = assert(read_file(path))
    local value = {job = first, model = {file = "../pretrained/" .. safe(task.name) .. ".nfm", bytes = #text,
      crc32 = core.crc32(text)}, timings = {total_s = util.now() - t0}, worker = me}
    local jp, werr = results.write{dir = jobs_dir(plan), stem = first.key, value = value,
      csv = results.csv_text({"task", "model", "bytes", "crc32"}, {{task.name, value.model.file, #text,
        value.model.crc32}})}
    if not jp then return nil, werr end
    return true
  end
  if needs_pretraining(plan.run) then
    local pj = plan.by_key["pretrain." .. safe(task.name)]
    local state = job_state(plan, pj)
    if state ~= "done" then
      return nil, string.format("the pre-trained model of %s is not ready (%s is %s)", task.name, describe(pj), state)
    end
    local pre, perr = require("nasflat.predictor").load(pretrained_path(plan, task.name))
    if not pre then return nil, perr end
    o.pretrained = pre
  end
  -- the group: the same trials of several targets at one budget (M.work makes it so)
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
          describe(j), tostring(got.device), tostring(r.trial), tostring(r.seed), j.target, j.trial, j.seed))
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
      one.job, one.worker = j, me
      one.mean = nil
      local jp, werr = results.write{dir = jobs_dir(plan), stem = j.key, value = one, csv = results.csv({one})}
      if not jp then return nil, werr end
    end
  end
  return true
end

--- Run the jobs `ids` (plan job numbers) in this process. Jobs of one task and budget whose targets have the same
-- trials to run go together in one experiment.run (they share the source models). A job already done is skipped
-- unless `redo`. Returns the number of jobs run and a list of failures {job, reason}.
function M.work(opts)
  opts = util.options("sweep.work", opts, {plan = util.REQUIRED, ids = util.REQUIRED, progress = util.NIL,
    redo = false})
  local plan = opts.plan
  local report = opts.progress or function() end
  -- cells: the jobs of one (task, target, budget); then cells of one (task, budget) with the same trials merged
  local cells, where = {}, {}
  for _, id in ipairs(opts.ids) do
    local j = plan.jobs[id]
    if not j then error(string.format("sweep.work: there is no job %s (the plan has %d)", tostring(id), #plan.jobs), 2) end
    if opts.redo or job_state(plan, j) ~= "done" then
      local g = j.kind == "pretrain" and ("p" .. j.id) or table.concat({j.task, j.target, j.budget}, "\0")
      if not where[g] then where[g] = #cells + 1; cells[#cells + 1] = {} end
      local list = cells[where[g]]
      list[#list + 1] = j
    end
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
  local me = whoami()
  local cache, ran, failures = {}, 0, {}
  for gi, group in ipairs(groups) do
    report("sweep: group %d of %d: %s", gi, #groups, describe(group[1]))
    for _, j in ipairs(group) do
      local base = job_base(plan, j)
      os.remove(base .. ".failed")
      local ok, err = write_marker(base .. ".running", me)
      if not ok then return nil, err end
    end
    local pok, ok, err = xpcall(run_group, debug.traceback, plan, group, cache, me)
    if not pok then ok, err = nil, "internal error: " .. tostring(ok) end
    for _, j in ipairs(group) do
      local base = job_base(plan, j)
      if not ok then
        local f = {reason = err, worker = me}
        util.atomic_write(base .. ".failed", json.encode(f) .. "\n")
        failures[#failures + 1] = {job = j, reason = err}
      end
      os.remove(base .. ".running")
    end
    ran = ran + #group
  end
  return ran, failures
end

--- Job numbers as compact ranges: {1,2,3,7} -> "1-3,7".
function M.ranges(ids)
  local parts, i = {}, 1
  while i <= #ids do
    local j = i
    while j < #ids and ids[j + 1] == ids[j] + 1 do j = j + 1 end
    parts[#parts + 1] = i == j and tostring(ids[i]) or (ids[i] .. "-" .. ids[j])
    i = j + 1
  end
  return table.concat(parts, ",")
end

--- Parse "3", "1-5,9" into a list of job numbers of the plan, or nil and a message.
function M.parse_ids(text, n)
  local out, seen = {}, {}
  for piece in tostring(text):gmatch("[^,]+") do
    local a, b = piece:match("^%s*(%d+)%s*%-%s*(%d+)%s*$")
    if not a then a = piece:match("^%s*(%d+)%s*$") b = a end
    a, b = math.tointeger(tonumber(a)), math.tointeger(tonumber(b))
    if not a or a < 1 or b < a then return nil, string.format("--only: '%s' is not a job number or range (i or i-j)", piece) end
    if b > n then return nil, string.format("--only: job %d does not exist (the plan has %d jobs)", b, n) end
    for i = a, b do
      if not seen[i] then seen[i] = true; out[#out + 1] = i end
    end
  end
  if #out == 0 then return nil, "--only: empty list" end
  return out
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function command_line(words)
  local q = {}
  for i, w in ipairs(words) do q[i] = shell_quote(w) end
  return table.concat(q, " ")
end

--- The jobs that are not done, split into batches for workers: pre-trainings one each; trial jobs by task (one
-- batch shares its source, features and, per budget, its source models).
local function batches_of(todo)
  local pre, trials, where = {}, {}, {}
  for _, j in ipairs(todo) do
    if j.kind == "pretrain" then pre[#pre + 1] = {j.id}
    else
      local g = j.task
      if not where[g] then where[g] = #trials + 1; trials[#trials + 1] = {} end
      local b = trials[where[g]]
      b[#b + 1] = j.id
    end
  end
  return pre, trials
end

--- Run every job not done on a local pool of `workers` processes (xargs -P: each runs `command... sweep run DIR
-- --only BATCH`); pre-trainings first, then the rest. Returns the status after the pool ran (as M.status).
function M.pool(opts)
  opts = util.options("sweep.pool", opts, {plan = util.REQUIRED, workers = 2, command = util.REQUIRED})
  local plan = opts.plan
  if math.type(opts.workers) ~= "integer" or opts.workers < 1 then error("sweep.pool: workers must be an integer >= 1", 2) end
  local st = M.status{plan = plan}
  local todo = {}
  for _, s in ipairs(st) do
    if s.state ~= "done" and s.state ~= "running" then todo[#todo + 1] = s.job end
  end
  local pre, trials = batches_of(todo)
  for _, stage in ipairs({pre, trials}) do
    if #stage > 0 then
      local list = os.tmpname()
      local lines = {}
      for i, b in ipairs(stage) do lines[i] = M.ranges(b) end
      local ok, err = util.atomic_write(list, table.concat(lines, "\n") .. "\n")
      if not ok then return nil, err end
      -- a worker killed by a signal makes xargs stop launching; `|| exit 1` keeps the pool going
      local cmd = string.format("xargs -P %d -n 1 sh -c %s sh < %s >/dev/null", opts.workers,
        shell_quote(command_line(opts.command) .. " sweep run " .. shell_quote(plan.dir) .. ' --only "$1" || exit 1'),
        shell_quote(list))
      os.execute(cmd)
      os.remove(list)
    end
  end
  return M.status{plan = plan}
end

--------------------------------------------------------------------------------------------------- merging
local NULL = require("cjson.safe").null

--- JSON null back to NaN, everywhere in a value read back (the writer writes NaN and infinities as null, and
-- nothing else: a nil field is left out).
local function unnull(v, depth)
  if depth > 100 then return end
  for k, x in pairs(v) do
    if x == NULL then v[k] = 0 / 0
    elseif type(x) == "table" then unnull(x, depth + 1) end
  end
end

--- A trial's table read back from JSON: integers as integers.
local function to_int_fields(run)
  run.trial = math.tointeger(run.trial) or run.trial
  run.seed = math.tointeger(run.seed) or run.seed
  if run.rows then run.rows = ints(run.rows) end
  return run
end

--- The records `nasflat run` gives for the plan's run, from the jobs' results. Without `partial`, every job must be
-- done (else nil, message naming what is missing); with it, what exists is merged and the second value lists the
-- jobs left out. Returns records, info {missing = {job...}, jobs_s, peak_rss_mib} or nil, message.
function M.merge(opts)
  opts = util.options("sweep.merge", opts, {plan = util.REQUIRED, partial = false})
  local plan = opts.plan
  local got, missing = {}, {}
  local counts = {done = 0, failed = 0, missing = 0, running = 0}
  for _, j in ipairs(plan.jobs) do
    local state, reason, v = job_state(plan, j)
    counts[state] = counts[state] + 1
    if state == "done" then
      unnull(v, 0)
      got[j.key] = v
    else missing[#missing + 1] = {job = j, state = state, reason = reason} end
  end
  if #missing > 0 and not opts.partial then
    local ids = {}
    for i, m in ipairs(missing) do ids[i] = m.job.id end
    local parts = {}
    for _, s in ipairs({"failed", "running", "missing"}) do
      if counts[s] > 0 then parts[#parts + 1] = counts[s] .. " " .. s end
    end
    return nil, string.format("sweep merge: %d of %d jobs are not done (%s): jobs %s; see `nasflat sweep status %s`, " ..
      "or merge what exists with --partial", #missing, #plan.jobs, table.concat(parts, ", "), M.ranges(ids), plan.dir)
  end
  local run = plan.run
  local records, jobs_s, peak = {}, 0, 0
  for _, v in pairs(got) do
    jobs_s = jobs_s + (v.timings and v.timings.total_s or 0)
    peak = math.max(peak, v.peak_rss_mib or 0)
  end
  for _, task in ipairs(plan.tasks) do
    local rec
    local targets = {}
    local pretrain_s = 0
    local pj = plan.by_key["pretrain." .. safe(task.name)]
    if pj and got[pj.key] then pretrain_s = got[pj.key].timings.total_s end
    local total_s = pretrain_s
    for _, target in ipairs(task.test) do
      local entry = {device = target, budgets = {}}
      local any = false
      for _, k in ipairs(run.budgets) do
        local summary = {budget = k, trials = {}}
        for trial = 1, run.trials do
          local v = got[job_key{kind = "trial", task = task.name, target = target, budget = k, trial = trial}]
          if v then
            any = true
            rec = rec or v
            entry.n_measured = math.tointeger(v.targets[1].n_measured)
            summary.trials[#summary.trials + 1] = to_int_fields(v.targets[1].budgets[1].trials[1])
            total_s = total_s + v.timings.total_s
          end
        end
        require("nasflat.experiment").summarize_budget(summary, run.predictors)
        entry.budgets[#entry.budgets + 1] = summary
      end
      if any then targets[#targets + 1] = entry end
    end
    if rec then
      local out = {}
      for k, v in pairs(rec) do out[k] = v end
      out.job, out.worker, out.files = nil, nil, nil
      out.test, out.targets = task.test, targets
      out.seed = run.seed
      out.config = {}
      for k, v in pairs(rec.config) do out.config[k] = v end
      out.config.trial_ids = nil
      for k in pairs(INT_OPTS) do
        if out.config[k] ~= nil then out.config[k] = math.tointeger(out.config[k]) or out.config[k] end
      end
      out.config.budgets = run.budgets
      out.timings = {total_s = total_s, pretrain_s = pretrain_s, jobs_s = total_s}
      out.peak_rss_mib = peak
      require("nasflat.experiment").summarize(out, run.predictors, run.budgets)
      if #targets < #task.test then out.partial_targets = #targets end
      records[#records + 1] = out
    end
  end
  if #records == 0 then return nil, "sweep merge: no job of " .. plan.dir .. " is done yet; nothing to merge" end
  return records, {missing = missing, jobs_s = jobs_s, peak_rss_mib = peak, counts = counts}
end

--------------------------------------------------------------------------------------------------- Slurm
M.SLURM_SCRIPT = "slurm/sweep.sbatch"

--- Write DIR/slurm/sweep.sbatch (array element i runs `command... sweep run DIR --only i`) and submit it: the
-- pre-trainings as one array, the other jobs as a second array that depends on it (--dependency=afterok).
-- Only jobs not done are submitted; when some are done, `resume` must be given. `dry_run`: write the script and
-- return the sbatch command lines without running them. `sbatch`: the command (default "sbatch").
-- Returns {script, commands = {...}, ids = {...}, jobs = n} or nil, message.
function M.slurm(opts)
  opts = util.options("sweep.slurm", opts, {plan = util.REQUIRED, command = util.REQUIRED, partition = util.NIL,
    time = util.NIL, mem = util.NIL, array_max = util.NIL, resume = false, dry_run = false, sbatch = "sbatch",
    env = util.NIL})
  local plan = opts.plan
  local st, counts = M.status{plan = plan}
  if counts.done > 0 and not opts.resume then
    return nil, string.format("sweep slurm: %d of %d jobs of %s are done already; --resume submits the %d others",
      counts.done, #plan.jobs, plan.dir, #plan.jobs - counts.done)
  end
  if counts.running > 0 then
    return nil, string.format("sweep slurm: %d jobs of %s are running on this machine; wait for them, or see " ..
      "`nasflat sweep status %s`", counts.running, plan.dir, plan.dir)
  end
  local pre, rest = {}, {}
  for _, s in ipairs(st) do
    if s.state ~= "done" then
      if s.job.kind == "pretrain" then pre[#pre + 1] = s.job.id else rest[#rest + 1] = s.job.id end
    end
  end
  if #pre + #rest == 0 then
    return nil, string.format("sweep slurm: every job of %s is done; nothing to submit (`nasflat sweep merge %s`)",
      plan.dir, plan.dir)
  end
  local ok, err = util.mkdirs(plan.dir .. "/slurm")
  if not ok then return nil, err end
  local script = plan.dir .. "/" .. M.SLURM_SCRIPT
  local lines = {"#!/bin/sh", "#SBATCH --job-name=nasflat-sweep", "#SBATCH --cpus-per-task=1",
    "#SBATCH --output=" .. plan.dir .. "/slurm/%A_%a.out"}
  if opts.partition then lines[#lines + 1] = "#SBATCH --partition=" .. opts.partition end
  if opts.time then lines[#lines + 1] = "#SBATCH --time=" .. opts.time end
  if opts.mem then lines[#lines + 1] = "#SBATCH --mem=" .. opts.mem end
  lines[#lines + 1] = "# one array element = one job of the plan: nasflat sweep run DIR --only $SLURM_ARRAY_TASK_ID"
  lines[#lines + 1] = "export OPENBLAS_NUM_THREADS=1"
  for k, v in pairs(opts.env or {}) do lines[#lines + 1] = "export " .. k .. "=" .. shell_quote(v) end
  lines[#lines + 1] = "exec " .. command_line(opts.command) .. " sweep run " .. shell_quote(plan.dir) ..
    ' --only "$SLURM_ARRAY_TASK_ID"'
  ok, err = util.atomic_write(script, table.concat(lines, "\n") .. "\n")
  if not ok then return nil, err end
  local function array(ids)
    return "--array=" .. M.ranges(ids) .. (opts.array_max and ("%" .. opts.array_max) or "")
  end
  local out = {script = script, commands = {}, ids = {}, jobs = #pre + #rest, arrays = {}}
  local function submit(ids, dep)
    local words = {opts.sbatch, "--parsable", array(ids)}
    if dep then words[#words + 1] = "--dependency=afterok:" .. dep end
    words[#words + 1] = script
    local line = command_line(words)
    out.commands[#out.commands + 1] = line
    out.arrays[#out.arrays + 1] = ids
    if opts.dry_run then return "DRY" end
    local p = io.popen(line .. " 2>&1")
    local text = p:read("a")
    local pok, _, code = p:close()
    local id = text:match("^(%d+)")
    if not pok or not id then
      return nil, string.format("sweep slurm: sbatch failed (exit %s): %s", tostring(code), (text:gsub("%s+$", "")))
    end
    out.ids[#out.ids + 1] = id
    return id
  end
  local dep
  if #pre > 0 then
    local id, serr = submit(pre)
    if not id then return nil, serr end
    dep = id ~= "DRY" and id or "<first array's job id>"
  end
  if #rest > 0 then
    local id, serr = submit(rest, dep)
    if not id then return nil, serr end
  end
  return out
end

return M
