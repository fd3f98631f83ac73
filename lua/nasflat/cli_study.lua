--- `nasflat study`: the design study (nasflat.study): sweep one axis at a time from a base configuration over a
-- list of tasks and trials; one Markdown table per axis on stdout (or the whole result as JSON with --json), the
-- results JSON + CSV with --out. Options are parsed by cli.lua's parser (cli._parse); `nasflat sweep plan study`
-- takes the same options (M.study_options) and splits the study into jobs (nasflat.sweep_study).
local util = require "nasflat.util"
local core = require "nasflat.core"
local study = require "nasflat.study"

local M = {}

-- cli.fail: the one way a command reports a failure (cli.lua requires this module while it loads: look it up late)
local function fail(msg, code) return require("nasflat.cli").fail(msg, code) end

local D = study.DEFAULTS

--- The options that describe a study (the work): `nasflat study` and `nasflat sweep plan study` share them.
M.STUDY_OPTIONS = {
  {name = "data", arg = "DIR", help = "data directory, or 'synthetic' for the built-in zoo (default: $NASFLAT_DATA, " ..
    "else ../shared/data)"},
  {name = "tasks", arg = "A,B", help = "tasks (default: " .. table.concat(study.SUBSET, ",") .. " on the real " ..
    "data, " .. table.concat(study.SYNTHETIC_SUBSET, ",") .. " on the synthetic zoo; 'paper' = the 12)"},
  {name = "axes", arg = "A,B", help = "axes (default: every axis of nasflat.study.AXES)"},
  {name = "settings", arg = "A,B", help = "keep only these settings (e.g. the finalists: gat,head+corr)"},
  {name = "trials", arg = "N", number = true, int = 1, help = "trials per target", default = D.trials},
  {name = "seed", arg = "N", number = true, int = 0, help = "master seed", default = D.seed},
  {name = "samples", arg = "N", number = true, int = 1, help = "pre-training architectures per source device",
    default = D.pretrain_samples},
  {name = "epochs", arg = "N", number = true, int = 1, help = "pre-training epochs", default = D.epochs},
  {name = "budget", arg = "N", number = true, int = 1, help = "transfer samples for every axis but the budget " ..
    "curve (default: 20)"},
  {name = "curve", arg = "K,K", help = "the budget curve", default = table.concat(D.budgets, ",")},
  {name = "samplers", arg = "A,B", help = "samplers of the sampler axis", default = table.concat(D.samplers, ",")},
  {name = "encodings", arg = "A,B", help = "encodings of the sampler axis", default = table.concat(D.encodings, ",")},
  {name = "supplementaries", arg = "A,B", help = "supplementary inputs of the op axis",
    default = table.concat(D.supplementaries, ",")},
  {name = "transfer-epochs", arg = "N", number = true, int = 1, help = "fine-tuning epochs (default: " ..
    "experiment's)"},
  {name = "transfer-lr", arg = "X", number = true, positive = true, help = "fine-tuning learning rate (default: " ..
    "experiment's)"},
  {name = "hidden", arg = "N", number = true, int = 1, help = "the graph network's width (hidden, head, z " ..
    "layers; default: the predictor's)"},
}

local function options()
  local list = {}
  for _, o in ipairs(M.STUDY_OPTIONS) do list[#list + 1] = o end
  list[#list + 1] = {name = "threads", arg = "N", number = true, int = 1, help = "BLAS threads"}
  list[#list + 1] = {name = "cache", arg = "DIR", help = "keep pre-trained models in DIR and reuse them in later " ..
    "studies"}
  list[#list + 1] = {name = "out", arg = "DIR", help = "also write the results JSON + CSV there " ..
    "(study-<UTC time>.json/.csv, atomically)"}
  list[#list + 1] = {name = "json", help = "print the whole result as one JSON object instead of the tables"}
  list[#list + 1] = {name = "quiet", help = "no progress on stderr"}
  return list
end

M.command = {
  name = "study",
  synopsis = "[--data DIR|synthetic] [--tasks N2,F3] [--axes predictor,device] [--trials 3] [options]",
  summary = "The design study: sweep one axis at a time from the base configuration (the graph network and the\n" ..
    "structural ridge on the same transfer samples) over a list of tasks; one Markdown table per axis on stdout\n" ..
    "(mean over target devices of the Spearman, ± std over trials), as each axis finishes. Pre-trained networks\n" ..
    "are shared by the settings with the same pre-training key. `nasflat sweep plan study` splits it into jobs.",
  options = options(),
  epilog = "examples:\n" ..
    "  nasflat study --data synthetic --axes sampler_encoding,budget --trials 1 --samples 16 --epochs 1\n" ..
    "  nasflat study --tasks N2 --axes predictor --trials 3 --out results\n" ..
    "  nasflat sweep plan study --tasks N2,F3 --axes device --out sw && nasflat sweep run sw --jobs 2",
}

local function list_of(s, what, ints)
  local out = util.split(s)
  if #out == 0 then return nil, string.format("--%s: empty list", what) end
  if ints then
    for i, piece in ipairs(out) do
      out[i] = math.tointeger(tonumber(piece))
      if not out[i] or out[i] < 1 then return nil, string.format("--%s: '%s' is not a positive integer", what, piece) end
    end
  end
  return out
end

--- study.run options from parsed command-line options (M.STUDY_OPTIONS), without the process's own (progress,
-- on_axis, cache_dir): JSON-able, so that a sweep plan can keep them. Returns the table, or nil, message.
function M.study_options(o)
  local s = {data = o.data, trials = o.trials, seed = o.seed, pretrain_samples = o.samples, epochs = o.epochs}
  for _, name in ipairs({"tasks", "axes", "settings", "samplers", "encodings", "supplementaries"}) do
    if o[name] then
      local l, err = list_of(o[name], name)
      if not l then return nil, err end
      s[name] = l
    end
  end
  if s.tasks and #s.tasks == 1 and s.tasks[1] == "paper" then s.tasks = require("nasflat.tasks").PAPER end
  local c, cerr = list_of(o.curve, "curve", true)
  if not c then return nil, cerr end
  s.budgets = c
  local base = {}
  if o.budget then base.budgets = {o.budget} end
  if o["transfer-epochs"] then base.transfer_epochs = o["transfer-epochs"] end
  if o["transfer-lr"] then base.transfer_lr = o["transfer-lr"] end
  if o.hidden then base.model = {hidden = o.hidden, head = {o.hidden}, z_hidden = {o.hidden}, z_out = o.hidden} end
  if next(base) then s.base = base end
  return s
end

--- study.run's own checks raise "study.run: ..." for bad options: usage errors here (exit 2). Anything else is a
-- bug and raises again. Returns the result, or nil, message, exit code.
function M.run_study(opts)
  local ok, result, err = pcall(study.run, opts)
  if not ok then
    local msg = tostring(result)
    if msg:find("study.run: ", 1, true) then return nil, (msg:gsub("^[^:]*%.lua:%d+: ", "")), 2 end
    error(result, 0)
  end
  if not result then return nil, err, 1 end
  return result
end

--- The lines after the axis tables (study.tables' last line).
local function footer(result)
  local p = result.pretraining
  return string.format("pre-trainings: %d trained, %d reused, %d loaded; %d results reused; wall %.0f s\n",
    p.trained, p.reused, p.loaded, result.results_reused, result.wall_s)
end

--- The header line of the tables (study.tables' first line).
local function header(result)
  return string.format("Spearman ρ, mean over target devices, mean ± std over %d trial(s); tasks %s; seed %d\n",
    result.trials, table.concat(result.tasks, ", "), result.seed)
end

--- Print a study result the way `nasflat study` does (the tables, or JSON), and write its files into `out` when
-- given (`stamp`: the file stem's suffix). `nasflat sweep merge` of a study plan prints through this too.
-- Returns the exit status.
function M.print_result(result, o, stamp)
  local text = o.json and require("nasflat.study").json(result) or study.tables(result)
  local ok, werr = io.stdout:write(text)
  if ok then ok, werr = io.stdout:flush() end
  if not ok then return fail("cannot write the results to standard output (" .. tostring(werr) .. ")") end
  if o.out then
    local jp, cp = study.save(result, o.out, stamp)
    if not jp then return fail(cp) end
    if not o.quiet and core.isatty(2) then io.stderr:write("results: ", jp, ", ", cp, "\n") end
  end
  return 0
end

function M.command.main(o)
  if o.threads then core.set_threads(o.threads) end
  local s, err = M.study_options(o)
  if not s then return fail(err, 2) end
  local report, finish = function() end, function() end
  if not o.quiet then report, finish = util.progress{} end
  s.progress, s.cache_dir = report, o.cache
  -- the tables as each axis finishes (a study takes hours on the real data); the same text as study.tables
  local printed, write_ok, write_err = false, true, nil
  if not o.json then
    s.on_axis = function(ax, res)
      finish()
      local parts = {}
      if not printed then parts[1] = header(res) .. "\n" end
      parts[#parts + 1] = ax.table .. "\n"
      printed = true
      if write_ok then
        write_ok, write_err = io.stdout:write(table.concat(parts))
        if write_ok then write_ok, write_err = io.stdout:flush() end
      end
    end
  end
  local result, rerr, code = M.run_study(s)
  finish()
  if not result then return fail(rerr, code) end
  if not write_ok then return fail("cannot write the results to standard output (" .. tostring(write_err) .. ")") end
  if o.json then return M.print_result(result, o) end
  if not printed then io.stdout:write(header(result), "\n") end
  local ok, werr = io.stdout:write(footer(result))
  if ok then ok, werr = io.stdout:flush() end
  if not ok then return fail("cannot write the results to standard output (" .. tostring(werr) .. ")") end
  if o.out then
    local jp, cp = study.save(result, o.out)
    if not jp then return fail(cp) end
    if not o.quiet and core.isatty(2) then io.stderr:write("results: ", jp, ", ", cp, "\n") end
  end
  return 0
end

return M
