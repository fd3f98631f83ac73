--- Sweeps: work split into independent jobs, run on local processes or Slurm arrays, merged (docs/sweeps.md).
-- This module is the job machinery every kind of sweep shares: the plan file, job states, running jobs in this
-- process or on a local pool, the Slurm arrays, the merge's completeness check. What a job *is*, how it runs and
-- how results merge belong to the kind's module:
--   run     nasflat.sweep_run     `nasflat run`: task x target x budget x trial (+ graph-network pre-trainings)
--   study   nasflat.sweep_study   `nasflat study`: axis setting x task x trial (+ one pre-training per task and key)
--   search  nasflat.sweep_search  `nasflat search --bar`: task x target x budget x trial, the four searches each
--
--   sweep.plan{dir = "sw", data = "/data", kind = "run", tasks = {{name, space, train, test}}, run = {...}}
--   sweep.plan{dir = "sw", data = "/data", kind = "study", fields = {...}}     -- sweep_study.plan makes them
--   local plan = assert(sweep.load("sw"))
--   sweep.work{plan = plan, ids = {3, 4}}        -- run jobs in this process, each result written atomically
--   sweep.pool{plan = plan, workers = 2, command = {"lua5.4", "bin/nasflat"}}   -- the same on N processes
--   sweep.status{plan = plan}                    -- done / failed (with the reason) / missing, per job
--   sweep.merge{plan = plan}                     -- what the single-process command gives (the kind's merge)
--   sweep.slurm{plan = plan, command = ...}      -- one `sbatch --array` script; pre-training array first
--
-- Every job has a key (the name of its files, from what it is), a seed derived from what it is (never its
-- position), and a kind: "pretrain" jobs (stage 1: the graph network pre-trained once and shared) or work jobs
-- (stage 2), which may name the pre-training they need (job.needs). Files in DIR: plan.json (written once,
-- atomically); jobs/<key>.json + .csv (a job's result, the pair checked by results.read); jobs/<key>.failed (why
-- the last attempt failed); jobs/<key>.running (pid, host and Slurm ids of an attempt under way: left behind by a
-- killed job, which status then reports); pretrained/<file>.nfm (a pre-training job's model).
local core = require "nasflat.core"
local util = require "nasflat.util"
local json = require "nasflat.json"
local results = require "nasflat.results"

local M = {}

M.FORMAT = "nasflat-sweep"
M.VERSION = 1
M.PLAN_FILE = "plan.json"
--- The kinds of sweep and their modules.
M.KINDS = {run = "nasflat.sweep_run", study = "nasflat.sweep_study", search = "nasflat.sweep_search"}
M.KIND_NAMES = {"run", "study", "search"}

local function kind_module(name)
  local mod = M.KINDS[name]
  if not mod then return nil end
  return require(mod)
end
M.kind_module = kind_module

--------------------------------------------------------------------------------------------------- helpers
--- Integers of a list back to integers (after a JSON round trip).
function M.ints(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = math.tointeger(v) or v end
  return out
end

--- A file-name-safe text: letters, digits, '_' and '-' kept, anything else as %XX.
function M.safe(s)
  return (tostring(s):gsub("[^%w_%-]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- Does an experiment setting use the graph network (so that its task's pre-training is shared by its jobs)?
function M.uses_gnn(run)
  for _, p in ipairs(run.predictors or {}) do
    if p == "nasflat" then return true end
    if p == "hybrid" then
      for _, c in ipairs(run.hybrid or {}) do if c == "nasflat" then return true end end
    end
  end
  return false
end

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
M.unnull = function(v) unnull(v, 0) return v end

--------------------------------------------------------------------------------------------------- the plan
local function number_jobs(jobs)
  for i, j in ipairs(jobs) do j.id = i end
  return jobs
end

--- Write a new plan into opts.dir (created if needed; a directory that holds a plan is refused). kind "run" (the
-- default) takes `tasks` and `run` (experiment options: the setting every job shares); other kinds take `fields`
-- (what their module's plan function made). Returns the plan (as sweep.load gives it), or nil and a message.
function M.plan(opts)
  opts = util.options("sweep.plan", opts, {dir = util.REQUIRED, data = util.REQUIRED, data_info = util.NIL,
    kind = "run", tasks = util.NIL, run = util.NIL, fields = util.NIL})
  local K = kind_module(opts.kind)
  if not K then error(string.format("sweep.plan: unknown kind '%s' (known: %s)", tostring(opts.kind),
    table.concat(M.KIND_NAMES, ", ")), 2) end
  local fields = opts.fields
  if opts.kind == "run" and not fields then fields = {tasks = opts.tasks, run = opts.run} end
  if type(fields) ~= "table" then error("sweep.plan: option 'fields' is required for kind " .. opts.kind, 2) end
  local f, ferr = K.prepare(fields)
  if not f then return nil, ferr end
  local path = opts.dir .. "/" .. M.PLAN_FILE
  if exists(path) then
    return nil, string.format("sweep plan: %s already holds a plan (%s); choose another --out, or remove it",
      opts.dir, path)
  end
  local value = {format = M.FORMAT, version = M.VERSION, kind = opts.kind, nasflat = core.version, data = opts.data,
    data_info = opts.data_info, jobs = number_jobs(K.jobs(f))}
  for k, v in pairs(f) do value[k] = v end
  local ok, err = util.mkdirs(opts.dir .. "/jobs")
  if not ok then return nil, err end
  ok, err = util.atomic_write(path, json.encode(value) .. "\n")
  if not ok then return nil, err end
  return M.load(opts.dir)
end

--- Read and check DIR/plan.json. Returns the plan (dir, path, kind, data, jobs, by_key, and the kind's fields) or
-- nil and a message.
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
  local kind = v.kind or "run"   -- plans written before the other kinds are run plans
  local K = kind_module(kind)
  if not K then return bad("unknown sweep kind %s (known: %s)", json.encode(kind), table.concat(M.KIND_NAMES, ", ")) end
  if type(v.data) ~= "string" then return bad("'data' must be a string") end
  if type(v.jobs) ~= "table" then return bad("'jobs' must be present") end
  local f, ferr = K.check(v, bad)
  if not f then return nil, ferr end
  local want = number_jobs(K.jobs(f))
  if #v.jobs ~= #want then
    return bad("%d jobs, but %s make%s %d (an edited plan?)", #v.jobs, K.MAKER, K.MAKER:find(" and ") and "" or "s",
      #want)
  end
  local by_key = {}
  for i, j in ipairs(v.jobs) do
    if type(j) ~= "table" then return bad("job %d is not an object", i) end
    local w = want[i]
    for _, fname in ipairs(K.JOB_FIELDS) do
      local have = j[fname]
      if type(have) == "number" then have = math.tointeger(have) or have end
      if have ~= w[fname] then
        return bad("job %d: %s is %s, but %s make%s %s (an edited plan?)", i, fname,
          have == nil and "missing" or json.encode(have), K.MAKER, K.MAKER:find(" and ") and "" or "s",
          json.encode(w[fname]))
      end
    end
    by_key[w.key] = w
  end
  local plan = {dir = dir, path = path, kind = kind, K = K, data = v.data, data_info = v.data_info, jobs = want,
    by_key = by_key, nasflat = v.nasflat}
  for k, x in pairs(f) do plan[k] = x end
  return plan
end

--------------------------------------------------------------------------------------------------- job files
local function jobs_dir(plan) return plan.dir .. "/jobs" end
local function job_base(plan, j) return jobs_dir(plan) .. "/" .. j.key end
--- Where a pre-training job's model goes.
function M.model_path(plan, j) return plan.dir .. "/pretrained/" .. j.model end

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

--- "job 3 (<what the job is>)".
function M.describe(j)
  return string.format("job %d (%s)", j.id, j.what)
end
local describe = M.describe

--- The state of one job: "done", "failed" (reason), "running" or "missing" (reason when an attempt left a
-- marker); for a done job, its result as the third value.
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
      local mp = M.model_path(plan, j)
      local text = read_file(mp)
      if not text or type(v.model) ~= "table" or #text ~= v.model.bytes or core.crc32(text) ~= v.model.crc32 then
        return "failed", "its pre-trained model " .. mp .. " is missing or changed"
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
--- The opened data of a space, checked against the plan: the latency file must have the CRC-32 and size the plan
-- recorded. `cache` keeps one Source per space for the process.
function M.open_source(plan, space, cache)
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

--- Write a job's result (a table: the JSON; `job` and `worker` are added) and its CSV into DIR/jobs, atomically
-- (nasflat.results: CSV first, then the JSON naming it). Returns true or nil, message.
function M.write_result(plan, j, value, csv, me)
  value.job, value.worker = j, me
  local jp, err = results.write{dir = jobs_dir(plan), stem = j.key, value = value, csv = csv}
  if not jp then return nil, err end
  return true
end

--- A pre-training job: experiment.run on the task's source devices only (no target), saving the network to
-- DIR/pretrained/<j.model>; its result names the model's size and CRC-32. `options`: experiment options with
-- source and task; `task_name` for the CSV.
function M.pretrain(plan, j, options, me)
  local o = {}
  for k, v in pairs(options) do o[k] = v end
  o.task = {name = options.task.name, space = options.task.space, train = options.task.train, test = {}}
  o.predictors = {"nasflat"}
  local path = M.model_path(plan, j)
  local ok, merr = util.mkdirs(plan.dir .. "/pretrained")
  if not ok then return nil, merr end
  o.save_pretrained = path
  local t0 = util.now()
  local rec, rerr = require("nasflat.experiment").run(o)
  if not rec then return nil, rerr end
  local text = assert(read_file(path))
  local value = {model = {file = "../pretrained/" .. j.model, bytes = #text, crc32 = core.crc32(text)},
    timings = {total_s = util.now() - t0}}
  return M.write_result(plan, j, value, results.csv_text({"task", "model", "bytes", "crc32"},
    {{j.task, value.model.file, #text, value.model.crc32}}), me)
end

--- The pre-trained network job `j` needs (its job.needs), loaded; or nil and why it is not ready.
function M.pretrained_for(plan, j)
  local pj = plan.by_key[j.needs]
  local state = job_state(plan, pj)
  if state ~= "done" then
    return nil, string.format("the pre-trained model of %s is not ready (%s is %s)", j.task, describe(pj), state)
  end
  return require("nasflat.predictor").load(M.model_path(plan, pj))
end

local function write_marker(path, me)
  return util.atomic_write(path, json.encode(me) .. "\n")
end

--- Run the jobs `ids` (plan job numbers) in this process. The kind decides which jobs go together in one call
-- (K.group: e.g. the trials of one task and budget share the source models). A job already done is skipped
-- unless `redo`. Returns the number of jobs run and a list of failures {job, reason}.
function M.work(opts)
  opts = util.options("sweep.work", opts, {plan = util.REQUIRED, ids = util.REQUIRED, progress = util.NIL,
    redo = false})
  local plan = opts.plan
  local report = opts.progress or function() end
  local todo = {}
  for _, id in ipairs(opts.ids) do
    local j = plan.jobs[id]
    if not j then error(string.format("sweep.work: there is no job %s (the plan has %d)", tostring(id), #plan.jobs), 2) end
    if opts.redo or job_state(plan, j) ~= "done" then todo[#todo + 1] = j end
  end
  local groups = {}
  if plan.K.group then groups = plan.K.group(plan, todo)
  else for i, j in ipairs(todo) do groups[i] = {j} end end
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
    local pok, ok, err = xpcall(plan.K.run_group, debug.traceback, plan, group, cache, me)
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

--- The jobs that are not done, split into batches for workers: pre-trainings one each; the other jobs by the
-- kind's batch key (K.batch_key; the jobs of one batch run in one process and share what it opened).
local function batches_of(plan, todo)
  local pre, rest, where = {}, {}, {}
  for _, j in ipairs(todo) do
    if j.kind == "pretrain" then pre[#pre + 1] = {j.id}
    else
      local g = plan.K.batch_key(j)
      if not where[g] then where[g] = #rest + 1; rest[#rest + 1] = {} end
      local b = rest[where[g]]
      b[#b + 1] = j.id
    end
  end
  return pre, rest
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
  local pre, rest = batches_of(plan, todo)
  for _, stage in ipairs({pre, rest}) do
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
--- The results of the plan's jobs, merged by the kind (K.merge) into what the single-process command gives.
-- Without `partial`, every job must be done (else nil, message naming what is missing); with it, what exists is
-- merged. Returns the kind's merged result and info {missing = {{job, state, reason}...}, jobs_s, peak_rss_mib,
-- counts}, or nil, message.
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
  local jobs_s, peak = 0, 0
  for _, v in pairs(got) do
    jobs_s = jobs_s + (v.timings and v.timings.total_s or 0)
    peak = math.max(peak, v.peak_rss_mib or 0)
  end
  local info = {missing = missing, jobs_s = jobs_s, peak_rss_mib = peak, counts = counts}
  local merged, err = plan.K.merge(plan, got, info)
  if merged == nil then return nil, err end
  return merged, info
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
  local env_keys = {}
  for k in pairs(opts.env or {}) do env_keys[#env_keys + 1] = k end
  table.sort(env_keys)
  for _, k in ipairs(env_keys) do lines[#lines + 1] = "export " .. k .. "=" .. shell_quote(opts.env[k]) end
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
