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
local NOT_PLANNED = {out = true, ["save-model"] = true, pretrained = true, cache = true, threads = true, json = true,
  quiet = true}

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

SUB["plan study"] = {
  name = "sweep plan study",
  synopsis = "[options of nasflat study] --out DIR",
  summary = "Split a design study (`nasflat study`) into independent jobs: one per axis setting x task x trial\n" ..
    "(a setting the study computes once, e.g. the base setting recurring in several axes, is one set of jobs),\n" ..
    "and one pre-training of the graph network per task and pre-training key, which the trial jobs wait for.\n" ..
    "Merged, the jobs give what `nasflat study` with the same options prints.",
  options = nil,   -- filled on first use (nasflat study's options)
  epilog = "examples:\n  nasflat sweep plan study --tasks N2 --axes device,budget --trials 3 --out sw\n" ..
    "  nasflat sweep slurm sw --time 2:00:00 && nasflat sweep merge sw",
}

SUB["plan search"] = {
  name = "sweep plan search",
  synopsis = "[options of nasflat search --bar] --out DIR",
  summary = "Split the search bar (`nasflat search --bar`: every target of the tasks, budgets at quantiles of its\n" ..
    "measured latencies, trials; the adaptive search and three baselines) into independent jobs, one per\n" ..
    "task x target x budget quantile x trial, seeded by the trial as the bar seeds them. Merged, the jobs give\n" ..
    "what `nasflat search --bar` with the same options prints.",
  options = nil,   -- filled on first use (nasflat search's bar options)
  epilog = "examples:\n  nasflat sweep plan search --tasks ND,N1 --trials 3 --out sw && nasflat sweep run sw --jobs 2",
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
  summary = "Merge the jobs' results into what the single-process command prints for the same options\n" ..
    "(`nasflat run`: the table, and the paper table for paper tasks; `nasflat study`: a table per axis;\n" ..
    "`nasflat search --bar`: the bar's tables) or the JSON, and the results JSON + CSV written atomically into\n" ..
    "DIR2 (default DIR). A sweep with jobs not done is refused, naming them, unless --partial.",
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
  summary = "Sweeps beyond one process: a run, a design study or the search bar split into independent jobs, run\n" ..
    "on a local process pool or a Slurm job array, merged into one results set. `nasflat sweep <subcommand> --help`\n" ..
    "shows a subcommand's options (`nasflat sweep plan study --help`, `nasflat sweep plan search --help`).",
  options = {},
  epilog = "subcommands:\n" ..
    "  plan    write the job list of a run (the options of nasflat run) into a directory;\n" ..
    "          `plan study` (nasflat study's options), `plan search` (nasflat search --bar's)\n" ..
    "  run     run the jobs not done, on N local processes (or --only some, here)\n" ..
    "  slurm   write and submit one sbatch --array script for the jobs not done\n" ..
    "  status  done / failed (why) / missing, per job\n" ..
    "  merge   what nasflat run / study / search --bar prints, from the jobs' results",
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

--- The data directory a plan records: --data, else the default directory, else the synthetic zoo (absolute, so
-- that workers started elsewhere find it).
local function plan_data(o)
  local data = o.data
  if not data then
    data = require("nasflat.data").dir() or "synthetic"
  end
  if data ~= "synthetic" then data = abspath(data) end
  return data
end

--- What `sweep plan` prints: the plan file, its jobs by kind.
local function print_plan(o, plan, ntasks)
  local counts = {pretrain = 0, work = 0}
  for _, j in ipairs(plan.jobs) do
    if j.kind == "pretrain" then counts.pretrain = counts.pretrain + 1 else counts.work = counts.work + 1 end
  end
  local noun = plan.kind == "search" and "searches" or "trials"
  if o.json then
    io.stdout:write(json.encode({plan = plan.path, kind = plan.kind, jobs = #plan.jobs, pretrain_jobs = counts.pretrain,
      trial_jobs = counts.work, tasks = ntasks, data = plan.data}), "\n")
  else
    io.stdout:write(string.format("%s: %d jobs (%d task%s; %d pre-trainings, %d %s), data %s\n", plan.path,
      #plan.jobs, ntasks, ntasks == 1 and "" or "s", counts.pretrain, counts.work, noun, plan.data))
  end
  return 0
end

local function plan_main(o)
  if not o.out then return fail("sweep plan: --out DIR is required (the sweep directory)", 2) end
  local run, rerr = cli().run_settings(o)
  if not run then return fail(rerr, 2) end
  local data = plan_data(o)
  local tasks, sources, code = plan_tasks(o, data)
  if not tasks then return fail(sources, code) end
  local info = {}
  for space, src in pairs(sources) do info[space] = src.info end
  local plan, err = sweep.plan{dir = o.out, data = data, tasks = tasks, run = run, data_info = info}
  if not plan then return fail(err) end
  return print_plan(o, plan, #plan.tasks)
end

local function plan_study_main(o)
  if not o.out then return fail("sweep plan study: --out DIR is required (the sweep directory)", 2) end
  local cs = require "nasflat.cli_study"
  local s, serr = cs.study_options(o)
  if not s then return fail(serr, 2) end
  s.data = plan_data(o)
  if io.open(o.out .. "/" .. sweep.PLAN_FILE, "rb") then
    return fail(string.format("sweep plan: %s already holds a plan (%s/%s); choose another --out, or remove it",
      o.out, o.out, sweep.PLAN_FILE))
  end
  local ok, fields, info = pcall(require("nasflat.sweep_study").plan, s)
  if not ok then
    local msg = tostring(fields)
    if msg:find("study.run: ", 1, true) then return fail((msg:gsub("^[^:]*%.lua:%d+: ", "")), 2) end
    error(fields, 0)
  end
  if not fields then return fail(info) end
  local plan, err = sweep.plan{dir = o.out, data = s.data, data_info = info, kind = "study", fields = fields}
  if not plan then return fail(err) end
  local n = 0
  for _ in pairs(plan.task_defs) do n = n + 1 end
  return print_plan(o, plan, n)
end

local function plan_search_main(o)
  if not o.out then return fail("sweep plan search: --out DIR is required (the sweep directory)", 2) end
  local bo, berr = require("nasflat.cli_search").bar_options(o)
  if not bo then return fail(berr, 2) end
  bo.data = plan_data(o)
  local fields, info = require("nasflat.sweep_search").plan(bo)
  if not fields then return fail(info) end
  local plan, err = sweep.plan{dir = o.out, data = bo.data, data_info = info, kind = "search", fields = fields}
  if not plan then return fail(err) end
  return print_plan(o, plan, #plan.tasks)
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
  for _, k in ipairs({"LUA_PATH", "LUA_CPATH", "NASFLAT_DATA", "NASFLAT_BUILD"}) do env[k] = os.getenv(k) end
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
          budget = s.job.budget, trial = s.job.trial, what = s.job.what, state = s.state, reason = s.reason}
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
--- "partial: ..." on stderr and the result's `partial` entry, when jobs are missing from a partial merge.
local function partial_note(plan, info)
  if #info.missing == 0 then return nil end
  local ids = {}
  for i, m in ipairs(info.missing) do ids[i] = m.job.id end
  io.stderr:write(string.format("nasflat: sweep merge: partial: %d of %d jobs missing (jobs %s)\n", #info.missing,
    #plan.jobs, sweep.ranges(ids)))
  return {jobs = #plan.jobs, missing = #info.missing, missing_jobs = sweep.ranges(ids)}
end

--- A study plan merged: what `nasflat study` prints (nasflat.cli_study), its files in --out (default DIR).
local function merge_study(o, plan, result, info)
  result.partial = partial_note(plan, info)
  local stamp = os.date("!%Y%m%dT%H%M%SZ") .. (result.partial and "-partial" or "")
  return require("nasflat.cli_study").print_result(result, {json = o.json, out = o.out or plan.dir,
    quiet = o.quiet}, stamp)
end

--- A search plan merged: what `nasflat search --bar` prints; the JSON and a CSV of the rows in --out (default DIR).
local function merge_search(o, plan, res, info)
  res.partial = partial_note(plan, info)
  local bar = require "nasflat.search_bar"
  local results = require "nasflat.results"
  local rows = {}
  for _, r in ipairs(res.rows) do
    for _, m in ipairs(bar.METHODS) do
      local e = r[m]
      rows[#rows + 1] = {r.task, r.target, r.q, r.budget_ms, r.trial, m, e.arch, e.valid, e.test, e.ms, e.regret,
        e.over and 1 or 0, e.none and 1 or 0}
    end
  end
  local csv = results.csv_text({"task", "target", "q", "budget_ms", "trial", "method", "arch", "objective",
    "reported", "ms", "regret", "over", "none"}, rows)
  local stem = "search-bar" .. (res.partial and "-partial" or "")
  local jp, werr = results.write{dir = o.out or plan.dir, stem = stem, value = res, csv = csv}
  if not jp then return fail(werr) end
  if not o.quiet and core.isatty(2) then io.stderr:write("results: ", jp, ", ", werr, "\n") end
  res.files = nil
  local text = o.json and (json.encode(res) .. "\n") or bar.format(res)
  local ok, werr2 = io.stdout:write(text)
  if ok then ok, werr2 = io.stdout:flush() end
  if not ok then return fail("cannot write the results to standard output (" .. tostring(werr2) .. ")") end
  return 0
end

local function merge_main(o, pos)
  local plan, err, code = load_plan(pos, "sweep merge")
  if not plan then return fail(err, code) end
  local records, info = sweep.merge{plan = plan, partial = o.partial or false}
  if not records then return fail(info) end
  if plan.kind == "study" then return merge_study(o, plan, records, info) end
  if plan.kind == "search" then return merge_search(o, plan, records, info) end
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
local MAIN = {plan = plan_main, run = run_main, slurm = slurm_main, status = status_main, merge = merge_main,
  ["plan study"] = plan_study_main, ["plan search"] = plan_search_main}
local TAKES_DIR = {run = true, slurm = true, status = true, merge = true}

local function with_out(list)
  local out = {}
  for _, o in ipairs(list) do out[#out + 1] = o end
  out[#out + 1] = {name = "out", arg = "DIR", help = "the sweep directory (DIR/plan.json; results go to DIR/jobs)"}
  out[#out + 1] = JSON_OPT
  return out
end

--- nasflat search's options that describe the bar (the rest are one search's or one process's).
local BAR_OPTIONS = {data = true, tasks = true, targets = true, quantiles = true, trials = true, measurements = true,
  init = true, batch = true, objective = true, sampler = true, ["cost-s"] = true}

--- Run `nasflat sweep <argv...>` (argv without "sweep"); returns the exit status.
function M.command.dispatch(argv)
  SUB.plan.options = SUB.plan.options or plan_options()
  if not SUB["plan study"].options then
    SUB["plan study"].options = with_out(require("nasflat.cli_study").STUDY_OPTIONS)
    local bar = {}
    for _, o in ipairs(require("nasflat.cli_search").command.options) do
      if BAR_OPTIONS[o.name] then
        local c = {}
        for k, v in pairs(o) do c[k] = v end
        c.help = c.help:gsub("^%-%-bar: ", "")
        bar[#bar + 1] = c
      end
    end
    SUB["plan search"].options = with_out(bar)
  end
  -- `sweep plan study ...` and `sweep plan search ...`: subcommands of plan, with their own options
  if argv[1] == "plan" and SUB["plan " .. tostring(argv[2])] then
    local rest = {"plan " .. argv[2]}
    for i = 3, #argv do rest[#rest + 1] = argv[i] end
    argv = rest
  end
  return cli().dispatch_subcommands({command = M.command, sub = SUB, order = ORDER, main = MAIN,
    positional = TAKES_DIR}, argv)
end

return M
