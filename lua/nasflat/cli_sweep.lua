--- `nasflat sweep ...`: plan a run as independent jobs, run them on a local process pool or a Slurm job array,
-- report their state and merge their results (docs/sweeps.md). Options are parsed by cli.lua's parser
-- (cli._parse, cli._usage_of); `sweep plan` takes the options of `nasflat run` (its option table, reused).
local util = require "nasflat.util"
local core = require "nasflat.core"
local json = require "nasflat.json"
local sweep = require "nasflat.sweep"

local M = {}

-- cli.fail: the one way a command reports a failure (cli.lua requires this module while it loads: look it up late)
local function fail(msg, code) return require("nasflat.cli").fail(msg, code) end

local function cli() return require "nasflat.cli" end

local QUIET_OPT = {name = "quiet", help = "no progress on stderr"}
local JSON_OPT = {name = "json", help = "print one JSON object instead of the table"}

-- `nasflat run`'s options that do not describe the jobs: where a single run writes, one process's settings.
local NOT_PLANNED = {out = true, ["save-model"] = true, pretrained = true, threads = true, json = true, quiet = true}

local function plan_options()
  local list = {}
  for _, o in ipairs(cli()._commands.run.options) do
    if not NOT_PLANNED[o.name] then list[#list + 1] = o end
  end
  list[#list + 1] = {name = "out", arg = "DIR", help = "the sweep directory (DIR/plan.json; results go to DIR/jobs)"}
  list[#list + 1] = JSON_OPT
  return list
end

local SUB = {}

SUB.plan = {
  name = "sweep plan",
  synopsis = "[options of nasflat run] --out DIR",
  summary = "Split a run into independent jobs, one per task x target x budget x trial (and one pre-training of\n" ..
    "the graph network per task when a predictor uses it), each with the seed `nasflat run` derives for it,\n" ..
    "and write the job list to DIR/plan.json (atomically). Merged, the jobs give the numbers of `nasflat run`\n" ..
    "with the same options.",
  options = nil,   -- filled on first use (needs cli.lua's run options)
  epilog = "examples:\n  nasflat sweep plan --task all --predictor hybrid,ridge --budget 20 --trials 10 --out sw\n" ..
    "  nasflat sweep run sw --jobs 2 && nasflat sweep merge sw",
}

SUB.run = {
  name = "sweep run",
  synopsis = "DIR [--jobs N] [--only I]",
  summary = "Run the jobs of a sweep that are not done: on a local pool of N worker processes, or, with --only,\n" ..
    "the given jobs in this process (what a Slurm array element does). Each job writes its result atomically\n" ..
    "into DIR/jobs; a job already done is not redone; a failed or killed job is run again.",
  options = {
    {name = "jobs", arg = "N", number = true, int = 1, help = "worker processes", default = 1},
    {name = "only", arg = "I,..", help = "run these jobs here (numbers or ranges i-j, as in `sweep status`)"},
    QUIET_OPT,
  },
}

SUB.slurm = {
  name = "sweep slurm",
  synopsis = "DIR [--partition P --time T --mem M --array-max K] [--resume] [--dry-run]",
  summary = "Write DIR/slurm/sweep.sbatch (array element i runs `nasflat sweep run DIR --only i`) and submit it\n" ..
    "with sbatch: the graph network's pre-trainings (when used) as a first array, every other job as a second\n" ..
    "array that waits for it (--dependency=afterok). Only jobs not done are submitted.",
  options = {
    {name = "partition", arg = "P", help = "Slurm partition"},
    {name = "time", arg = "T", help = "time limit per job (e.g. 0:30:00)"},
    {name = "mem", arg = "M", help = "memory per job (e.g. 2G)"},
    {name = "array-max", arg = "K", number = true, int = 1, help = "at most K array elements running at once"},
    {name = "resume", help = "submit the jobs not done of a sweep some of whose jobs are done"},
    {name = "dry-run", help = "write the script and print the sbatch commands without submitting"},
    JSON_OPT,
  },
}

SUB.status = {
  name = "sweep status",
  synopsis = "DIR [--json]",
  summary = "The state of every job of a sweep: done, failed (with the reason), running (on this machine), or\n" ..
    "missing (never run, or killed: the attempt's pid, host and Slurm job are named).",
  options = {JSON_OPT, {name = "all", help = "list every job, not only those not done"}},
}

SUB.merge = {
  name = "sweep merge",
  synopsis = "DIR [--json] [--partial] [--out DIR2]",
  summary = "Merge the jobs' results into what `nasflat run` prints for the same options: the table (and the\n" ..
    "paper table for paper tasks) or the JSON, and the results JSON + CSV written atomically into DIR2\n" ..
    "(default DIR). A sweep with jobs not done is refused, naming them, unless --partial.",
  options = {
    JSON_OPT,
    {name = "partial", help = "merge the jobs that are done (the results files get a -partial suffix)"},
    {name = "out", arg = "DIR2", help = "where to write the results JSON and CSV (default: the sweep directory)"},
    QUIET_OPT,
  },
}

local ORDER = {"plan", "run", "slurm", "status", "merge"}

M.command = {
  name = "sweep",
  synopsis = "<plan|run|slurm|status|merge> [options]",
  summary = "Sweeps beyond one process: a run split into independent jobs, run on a local process pool or a Slurm\n" ..
    "job array, merged into one results set. `nasflat sweep <subcommand> --help` shows a subcommand's options.",
  options = {},
  epilog = "subcommands:\n" ..
    "  plan    write the job list of a run (the options of nasflat run) into a directory\n" ..
    "  run     run the jobs not done, on N local processes (or --only some, here)\n" ..
    "  slurm   write and submit one sbatch --array script for the jobs not done\n" ..
    "  status  done / failed (why) / missing, per job\n" ..
    "  merge   the results of nasflat run from the jobs' results",
}

--------------------------------------------------------------------------------------------------- plan
--- The data directory of a plan (absolute, so that workers started elsewhere find it) or "synthetic".
local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD")
  if not pwd then
    local h = io.popen("pwd")
    pwd = h and h:read("l")
    if h then h:close() end
  end
  return (pwd or ".") .. "/" .. p:gsub("^%./", "")
end

--- The tasks named by run options (cli.run_jobs: the resolution `nasflat run` does), as {name, space, train,
-- test}, and the open sources by space; or nil, message, exit code.
local function plan_tasks(o, data)
  local jobs, err, code = cli().run_jobs(o, data)
  if not jobs then return nil, err, code end
  local out, sources = {}, {}
  for i, j in ipairs(jobs) do
    out[i] = {name = j.task.name, space = j.src.space_name, train = j.task.train, test = j.task.test}
    sources[j.src.space_name] = j.src
  end
  return out, sources
end

local function plan_main(o)
  if not o.out then return fail("sweep plan: --out DIR is required (the sweep directory)", 2) end
  local run, rerr = cli().run_settings(o)
  if not run then return fail(rerr, 2) end
  local data = o.data
  if not data then
    data = require("nasflat.data").dir() or "synthetic"
  end
  if data ~= "synthetic" then data = abspath(data) end
  local tasks, sources, code = plan_tasks(o, data)
  if not tasks then return fail(sources, code) end
  local info = {}
  for space, src in pairs(sources) do info[space] = src.info end
  local plan, err = sweep.plan{dir = o.out, data = data, tasks = tasks, run = run, data_info = info}
  if not plan then return fail(err) end
  local counts = {pretrain = 0, trial = 0}
  for _, j in ipairs(plan.jobs) do counts[j.kind] = counts[j.kind] + 1 end
  if o.json then
    io.stdout:write(json.encode({plan = plan.path, jobs = #plan.jobs, pretrain_jobs = counts.pretrain,
      trial_jobs = counts.trial, tasks = #plan.tasks, data = plan.data}), "\n")
  else
    io.stdout:write(string.format("%s: %d jobs (%d tasks; %d pre-trainings, %d trials), data %s\n", plan.path,
      #plan.jobs, #plan.tasks, counts.pretrain, counts.trial, plan.data))
  end
  return 0
end

--------------------------------------------------------------------------------------------------- run
--- The command that starts this nasflat again (for workers and Slurm): the interpreter and the script, absolute.
local function self_command()
  local a = rawget(_G, "arg") or {}
  local lua, script = a[-1], a[0]
  if not script then return nil end
  if script:find("/", 1, true) then script = abspath(script) end
  return {lua or "lua5.4", script}
end

local function load_plan(pos, name)
  local dir = pos[1]
  if not dir then return nil, string.format("%s: the sweep directory is required (see `nasflat %s --help`)", name, name), 2 end
  if #pos > 1 then return nil, string.format("%s: unexpected argument '%s'", name, pos[2]), 2 end
  return sweep.load(dir)
end

local function status_line(counts, n)
  return string.format("%d jobs: %d done, %d failed, %d missing%s", n, counts.done, counts.failed, counts.missing,
    counts.running > 0 and (", " .. counts.running .. " running") or "")
end

local function run_main(o, pos)
  local plan, err, code = load_plan(pos, "sweep run")
  if not plan then return fail(err, code) end
  if o.only then
    local ids, ierr = sweep.parse_ids(o.only, #plan.jobs)
    if not ids then return fail(ierr, 2) end
    local report, finish = (o.quiet and function() end), function() end
    if not o.quiet then report, finish = util.progress{} end
    local ran, failures = sweep.work{plan = plan, ids = ids, progress = report}
    finish()
    if not ran then return fail(failures) end
    if #failures > 0 then
      for _, f in ipairs(failures) do fail(sweep.describe(f.job) .. ": " .. f.reason) end
      return 1
    end
    io.stdout:write(string.format("%s: %d jobs run, %d already done\n", sweep.ranges(ids), ran, #ids - ran))
    return 0
  end
  local command = self_command()
  if not command then return fail("sweep run: cannot tell how this nasflat was started (no arg[0])") end
  local t0 = util.now()
  local st, counts = sweep.pool{plan = plan, workers = o.jobs, command = command}
  if not st then return fail(counts) end
  io.stdout:write(status_line(counts, #plan.jobs), string.format(" (%.1f s)\n", util.now() - t0))
  if counts.done < #plan.jobs then
    local shown = 0
    for _, s in ipairs(st) do
      if s.state ~= "done" and shown < 10 then
        shown = shown + 1
        io.stderr:write("nasflat: ", sweep.describe(s.job), ": ", s.state, s.reason and (": " .. s.reason) or "", "\n")
      end
    end
    return fail(string.format("sweep run: %d of %d jobs are not done (see `nasflat sweep status %s`)",
      #plan.jobs - counts.done, #plan.jobs, plan.dir))
  end
  return 0
end

--------------------------------------------------------------------------------------------------- slurm
local function slurm_main(o, pos)
  local plan, err, code = load_plan(pos, "sweep slurm")
  if not plan then return fail(err, code) end
  local command = self_command()
  if not command then return fail("sweep slurm: cannot tell how this nasflat was started (no arg[0])") end
  local env = {}
  for _, k in ipairs({"LUA_PATH", "LUA_CPATH", "NASFLAT_DATA"}) do env[k] = os.getenv(k) end
  local r, serr = sweep.slurm{plan = plan, command = command, partition = o.partition, time = o.time, mem = o.mem,
    array_max = o["array-max"], resume = o.resume or false, dry_run = o["dry-run"] or false, env = env,
    sbatch = os.getenv("NASFLAT_SBATCH") or "sbatch"}
  if not r then return fail(serr) end
  if o.json then
    io.stdout:write(json.encode({script = r.script, commands = r.commands, slurm_jobs = json.array(r.ids),
      jobs = r.jobs, dry_run = o["dry-run"] or false}), "\n")
  else
    io.stdout:write("script: ", r.script, "\n")
    for i, c in ipairs(r.commands) do
      io.stdout:write(o["dry-run"] and "would run: " or "submitted: ", c, r.ids[i] and ("  -> " .. r.ids[i]) or "", "\n")
    end
    io.stdout:write(string.format("%d jobs in %d array%s\n", r.jobs, #r.commands, #r.commands == 1 and "" or "s"))
  end
  return 0
end

--------------------------------------------------------------------------------------------------- status
local function status_main(o, pos)
  local plan, err, code = load_plan(pos, "sweep status")
  if not plan then return fail(err, code) end
  local st, counts = sweep.status{plan = plan}
  if o.json then
    local jobs = {}
    for _, s in ipairs(st) do
      if o.all or s.state ~= "done" then
        jobs[#jobs + 1] = {id = s.job.id, key = s.job.key, kind = s.job.kind, task = s.job.task, target = s.job.target,
          budget = s.job.budget, trial = s.job.trial, state = s.state, reason = s.reason}
      end
    end
    io.stdout:write(json.encode({dir = plan.dir, jobs = #plan.jobs, done = counts.done, failed = counts.failed,
      missing = counts.missing, running = counts.running, list = json.array(jobs)}), "\n")
    return 0
  end
  local lines = {plan.path .. ": " .. status_line(counts, #plan.jobs)}
  for _, s in ipairs(st) do
    if o.all or s.state ~= "done" then
      lines[#lines + 1] = string.format("%-8s %s%s", s.state, sweep.describe(s.job), s.reason and (": " .. s.reason) or "")
    end
  end
  io.stdout:write(table.concat(lines, "\n"), "\n")
  return 0
end

--------------------------------------------------------------------------------------------------- merge
local function merge_main(o, pos)
  local plan, err, code = load_plan(pos, "sweep merge")
  if not plan then return fail(err, code) end
  local records, info = sweep.merge{plan = plan, partial = o.partial or false}
  if not records then return fail(info) end
  local budgets = plan.run.budgets
  for _, rec in ipairs(records) do
    local main = rec.predictors[1]
    rec.mean_spearman = rec.mean[main][tostring(budgets[1])]
    rec.main_predictor = main
  end
  local result = #records == 1 and records[1] or {tasks = records}
  if #records > 1 then
    local xs = {}
    for _, rec in ipairs(records) do xs[#xs + 1] = rec.mean_spearman end
    result.mean_spearman = util.mean_std(xs)
  end
  if #info.missing > 0 then
    local ids = {}
    for i, m in ipairs(info.missing) do ids[i] = m.job.id end
    result.partial = {jobs = #plan.jobs, missing = #info.missing, missing_jobs = sweep.ranges(ids)}
    io.stderr:write(string.format("nasflat: sweep merge: partial: %d of %d jobs missing (jobs %s)\n", #info.missing,
      #plan.jobs, sweep.ranges(ids)))
  end
  local results = require "nasflat.results"
  local stem = (#records == 1 and records[1].task or "all") .. "-seed" .. plan.run.seed ..
    (#info.missing > 0 and "-partial" or "")
  local jp, werr = results.write{dir = o.out or plan.dir, stem = stem, value = result, csv = results.csv(records)}
  if not jp then return fail(werr) end
  if not o.quiet and core.isatty(2) then io.stderr:write("results: ", jp, ", ", werr, "\n") end
  local report = require "nasflat.report"
  local text
  if o.json then
    text = json.encode(result) .. "\n"
  else
    local parts = {}
    local function out(...) for _, s in ipairs({...}) do parts[#parts + 1] = s end return true end
    report.print_run_table(records, out)
    local tasks = require "nasflat.tasks"
    local published = 0
    for _, rec in ipairs(records) do
      if tasks.PUBLISHED.NASFLAT[rec.task] then published = published + 1 end
    end
    if published > 0 then report.print_paper_tables(records, budgets, out) end
    text = table.concat(parts)
  end
  local ok, werr2 = io.stdout:write(text)
  if ok then ok, werr2 = io.stdout:flush() end
  if not ok then return fail("cannot write the results to standard output (" .. tostring(werr2) .. ")") end
  return 0
end

--------------------------------------------------------------------------------------------------- dispatch
local MAIN = {plan = plan_main, run = run_main, slurm = slurm_main, status = status_main, merge = merge_main}
local TAKES_DIR = {run = true, slurm = true, status = true, merge = true}

--- Run `nasflat sweep <argv...>` (argv without "sweep"); returns the exit status.
function M.command.dispatch(argv)
  SUB.plan.options = SUB.plan.options or plan_options()
  return cli().dispatch_subcommands({command = M.command, sub = SUB, order = ORDER, main = MAIN,
    positional = TAKES_DIR}, argv)
end

return M
