#!/usr/bin/env lua5.4
--- Reproduce the paper's table (METHOD §9) on the real data: the 12 tasks, 512 pre-training samples per source
-- device, 150 epochs, 20 transfer samples, 3 trials; our GNN, our hybrid and our structural ridge beside the
-- published NASFLAT, MultiPredict and HELP numbers.
--
--   lua5.4 examples/reproduce_paper.lua [--data DIR] [--epochs N] [--samples N] [--trials N] [--tasks ND,N1,...]
--          [--budgets 10,20] [--pretrained DIR] [--out DIR] [--predictors hybrid,nasflat,ridge]
--          [--hybrid C,..] [--hybrid-weights cv|subsets|equal] [--hybrid-folds N] [--hybrid-repeats N]
--          [--hybrid-step X] [--hybrid-bags N] [--hybrid-bag-fraction X] [--sampler NAME] [--encoding NAME]
--          [--pretrain-only yes] (with --pretrained DIR: only fill DIR with the pre-trained models)
--   lua5.4 examples/reproduce_paper.lua --from a.json,b.json [--budgets 10,20]
--          print the tables of earlier runs' results files together (e.g. one run per space, in parallel)
--
-- --predictors ridge,hybrid with a --hybrid list without nasflat needs no pre-training (seconds per task).
-- --pretrained DIR: reuse DIR/<task>-<samples>x<epochs>.nfm when it exists, else pre-train and save it there,
-- so a second run (other transfer settings, other budgets) skips the pre-training.
-- Run from the repository root after `make` (or with nasflat installed). Writes results/paper-<date>.json.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/lua/?.so;" .. package.cpath

local cjson = require "cjson"
local experiment = require "nasflat.experiment"
local tasks = require "nasflat.tasks"
local report = require "nasflat.report"
local util = require "nasflat.util"

local opts = {data = nil, epochs = 150, trials = 3, tasks = table.concat(tasks.PAPER, ","), out = "results",
  samples = 512, budgets = "20", pretrained = false, predictors = "hybrid,nasflat,ridge",
  hybrid = table.concat(experiment.DEFAULTS.hybrid, ","), ["hybrid-weights"] = "cv",
  ["hybrid-folds"] = experiment.DEFAULTS.hybrid_folds,
  ["hybrid-repeats"] = experiment.DEFAULTS.hybrid_repeats, ["hybrid-step"] = experiment.DEFAULTS.hybrid_step,
  ["hybrid-bags"] = experiment.DEFAULTS.hybrid_bags,
  ["hybrid-bag-fraction"] = experiment.DEFAULTS.hybrid_bag_fraction, ["hybrid-bagging"] = experiment.DEFAULTS.hybrid_bagging,
  sampler = experiment.DEFAULTS.sampler, encoding = experiment.DEFAULTS.encoding, ["pretrain-only"] = "no", from = false}
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or opts[k] == nil and k ~= "data" or arg[i + 1] == nil then
    io.stderr:write("usage: reproduce_paper.lua [--data DIR] [--epochs N] [--samples N] [--trials N] [--tasks A,B] " ..
      "[--budgets 10,20] [--pretrained DIR] [--out DIR] [--predictors P,..] [--hybrid C,..] " ..
      "[--hybrid-weights cv|subsets|equal] [--hybrid-folds N] [--hybrid-repeats N] [--hybrid-step X] " ..
      "[--hybrid-bags N] [--hybrid-bag-fraction X] " ..
      "[--sampler NAME] [--encoding NAME] " ..
      "[--pretrain-only yes] [--from A.json,B.json]\n")
    os.exit(2)
  end
  opts[k] = tonumber(arg[i + 1]) or arg[i + 1]
  i = i + 2
end

local budgets = {}
for _, b in ipairs(util.split(tostring(opts.budgets))) do
  budgets[#budgets + 1] = math.tointeger(tonumber(b)) or error("--budgets: a list of integers, got '" .. b .. "'")
end
local predictors = util.split(opts.predictors)
local uses_gnn = false
for _, p in ipairs(predictors) do uses_gnn = uses_gnn or p == "nasflat" end
for _, c in ipairs(util.split(opts.hybrid)) do
  for _, p in ipairs(predictors) do uses_gnn = uses_gnn or (p == "hybrid" and c == "nasflat") end
end
local predictor = require "nasflat.predictor"
if opts.pretrained then os.execute("mkdir -p '" .. opts.pretrained .. "'") end

local records, sources = {}, {}
local progress, finish = util.progress{}
local t0 = util.now()
local wall, peak
if opts.from then
  -- the tables of saved runs: their records in the order given, their wall times summed
  wall, peak = 0, 0
  for _, path in ipairs(util.split(opts.from)) do
    local f = io.open(path, "rb")
    if not f then io.stderr:write(path, ": cannot read\n") os.exit(1) end
    local ok, obj = pcall(cjson.decode, f:read("a"))
    f:close()
    if not ok or type(obj) ~= "table" or type(obj.tasks) ~= "table" then
      io.stderr:write(path, ": not a reproduce_paper results file\n") os.exit(1)
    end
    for _, rec in ipairs(obj.tasks) do
      records[#records + 1] = rec
      peak = math.max(peak, rec.peak_rss_mib or 0)
    end
    wall = wall + (obj.wall_s or 0)
  end
  predictors = {}
  for _, p in ipairs({"hybrid", "nasflat", "ridge"}) do
    if records[1] and records[1].mean[p] then predictors[#predictors + 1] = p end
  end
end
for _, name in ipairs(opts.from and {} or util.split(opts.tasks)) do
  local ref = tasks.NAMES[name]
  if not ref then io.stderr:write("unknown task ", name, "\n") os.exit(2) end
  local src = sources[ref[1]]
  if not src then
    local err
    src, err = experiment.open_source{data = opts.data, space = ref[1]}
    if not src then io.stderr:write(err, "\n") os.exit(1) end
    sources[ref[1]] = src
  end
  local task = assert(tasks.resolve{name = name, devices = src.devices, tasks_file = src.tasks_file})
  if opts["pretrain-only"] == "yes" then task.test = {} end
  local pre, save
  if opts.pretrained and uses_gnn then
    local path = string.format("%s/%s-%dx%d.nfm", opts.pretrained, name, opts.samples, opts.epochs)
    local f = io.open(path, "rb")
    if f then
      f:close()
      pre = assert(predictor.load(path))
    else
      save = path
    end
  end
  local rec = assert(experiment.run{source = src, task = task, trials = opts.trials, epochs = opts.epochs,
    pretrain_samples = opts.samples, budgets = budgets, predictors = predictors,
    hybrid = util.split(opts.hybrid), hybrid_weights = opts["hybrid-weights"], hybrid_folds = opts["hybrid-folds"],
    hybrid_repeats = opts["hybrid-repeats"], hybrid_step = opts["hybrid-step"],
    hybrid_bags = opts["hybrid-bags"], hybrid_bag_fraction = opts["hybrid-bag-fraction"],
    hybrid_bagging = opts["hybrid-bagging"],
    sampler = opts.sampler, encoding = opts.encoding,
    pretrained = pre, save_pretrained = save, progress = progress})
  finish()
  records[#records + 1] = rec
  local means = {}
  for _, p in ipairs(predictors) do
    for _, b in ipairs(budgets) do means[#means + 1] = string.format("%s@%d %.3f", p, b, rec.mean[p][tostring(b)] or 0 / 0) end
  end
  io.stderr:write(string.format("%s done in %.0f s (pre-training %.0f s, peak %.0f MiB): %s\n", name,
    rec.timings.total_s, rec.timings.pretrain_s or 0, rec.peak_rss_mib or 0, table.concat(means, ", ")))
end
wall = wall or util.now() - t0
if opts["pretrain-only"] == "yes" then
  io.stderr:write(string.format("pre-trained models in %s; wall time %.0f s\n", opts.pretrained or "(nowhere)", wall))
  os.exit(0)
end
for _, b in ipairs(budgets) do
  io.stdout:write(string.format("\n%d transfer samples\n", b))
  io.stdout:write(report.paper_table(records, b))
  for _, p in ipairs(predictors) do
    local w = report.wins(records, b, p)
    io.stdout:write(string.format("%s: >= published NASFLAT on %d of %d tasks; above max(NASFLAT, %s ridge) on %d, " ..
      "by %+.3f on average\n", p, w.at_least_nasflat, w.tasks, w.ridge_source, w.above_both, w.margin))
    if p == "hybrid" then
      io.stdout:write("hybrid weights, mean over targets and trials:\n", report.hybrid_weights(records, b))
    end
  end
end
if opts.from then
  io.stdout:write(string.format("wall time %.0f s summed over the runs; peak memory %.0f MiB (largest)\n", wall, peak))
  os.exit(0)
end
io.stdout:write(string.format("wall time %.0f s; peak memory %.0f MiB\n", wall, util.peak_rss_mib() or 0))
os.execute("mkdir -p '" .. opts.out .. "'")
local path = string.format("%s/paper-%s.json", opts.out, os.date("!%Y%m%dT%H%M%S"))
assert(util.atomic_write(path, cjson.encode({tasks = records, wall_s = wall, settings = opts}) .. "\n"))
io.stderr:write("results: ", path, "\n")
