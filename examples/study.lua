#!/usr/bin/env lua5.4
--- The design study (issue 5, item 4): sweep one axis at a time from the base configuration and print one
-- Markdown table per axis (mean ± std Spearman per task), as each axis finishes. A thin command line over
-- nasflat.study (read its header for the axes, the default task subset and why, and the pre-training reuse).
--
--   lua5.4 examples/study.lua [--data DIR|synthetic] [--tasks N2,F3] [--axes predictor,device] [--trials 3] ...
--
-- Run from the repository root after `make` (or with nasflat installed). Writes <out>/study-<UTC time>.json
-- and .csv (atomically, both or neither).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/lua/?.so;" .. package.cpath

local study = require "nasflat.study"
local util = require "nasflat.util"

local D = study.DEFAULTS
local USAGE = string.format([[
usage: lua5.4 examples/study.lua [options]

Sweep one axis at a time from a base configuration over a list of tasks; one Markdown table per axis on
stdout (mean over target devices of the Spearman, ± std over trials), results JSON + CSV in --out.

options:
  --data DIR|synthetic   data directory (default: $NASFLAT_DATA, else ../shared/data)
  --tasks A,B            tasks (default: %s on the real data, %s on the synthetic zoo; 'paper' = the 12)
  --axes A,B             axes (default: %s)
  --settings A,B         keep only these settings (e.g. the finalists: gat,head+corr)
  --trials N             trials per target (default: %d)
  --seed N               master seed (default: %d)
  --samples N            pre-training architectures per source device (default: %d)
  --epochs N             pre-training epochs (default: %d)
  --budget N             transfer samples for every axis but the budget curve (default: 20)
  --curve K,K            the budget curve (default: %s)
  --samplers A,B         samplers of the sampler axis (default: %s)
  --encodings A,B        encodings of the sampler axis (default: %s)
  --supplementaries A,B  supplementary inputs of the op axis (default: %s)
  --transfer-epochs N    fine-tuning epochs (default: experiment's, 30)
  --transfer-lr X        fine-tuning learning rate (default: experiment's, 0.001)
  --threads N            BLAS threads
  --cache DIR            keep pre-trained models in DIR and reuse them in later studies
  --out DIR              results directory (default: results)
  --quiet                no progress on stderr
  -h, --help             show this help
]], table.concat(study.SUBSET, ","), table.concat(study.SYNTHETIC_SUBSET, ","), table.concat(study.AXES, ","),
  D.trials, D.seed, D.pretrain_samples, D.epochs, table.concat(D.budgets, ","), table.concat(D.samplers, ","),
  table.concat(D.encodings, ","), table.concat(D.supplementaries, ","))

local function usage_error(msg)
  if not msg:find("^study%.run: ") then msg = "study: " .. msg end
  io.stderr:write(msg, "\n\n", USAGE)
  os.exit(2)
end

-- flag → kind: "str", "int" (>= 1, or >= 0 for seed), "num" (> 0), "list", "ints", "flag"
local FLAGS = {data = "str", tasks = "list", axes = "list", settings = "list", trials = "int", seed = "int0",
  samples = "int", epochs = "int", budget = "int", curve = "ints", samplers = "list", encodings = "list",
  supplementaries = "list", ["transfer-epochs"] = "int", ["transfer-lr"] = "num", threads = "int", cache = "str",
  out = "str", quiet = "flag"}

local o = {out = "results"}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "-h" or a == "--help" then io.stdout:write(USAGE) os.exit(0) end
  local name, val = a:match("^%-%-([%w%-]+)=(.*)$")
  name = name or a:match("^%-%-([%w%-]+)$")
  local kind = name and FLAGS[name]
  if not kind then usage_error("unknown option '" .. a .. "'") end
  if kind == "flag" then
    if val then usage_error("option '--" .. name .. "' takes no value") end
    o[name] = true
  else
    if not val then
      i = i + 1
      val = arg[i]
      if val == nil then usage_error("option '--" .. name .. "' needs a value") end
    end
    if kind == "int" or kind == "int0" then
      local v = math.tointeger(tonumber(val))
      if not v or v < (kind == "int0" and 0 or 1) then
        usage_error(string.format("option '--%s' expects an integer >= %d, got '%s'", name, kind == "int0" and 0 or 1, val))
      end
      val = v
    elseif kind == "num" then
      local v = tonumber(val)
      if not v or v <= 0 or v == math.huge then
        usage_error(string.format("option '--%s' expects a positive number, got '%s'", name, val))
      end
      val = v
    elseif kind == "list" or kind == "ints" then
      local list = util.split(val)
      if #list == 0 then usage_error("option '--" .. name .. "': empty list") end
      if kind == "ints" then
        for j, piece in ipairs(list) do
          list[j] = math.tointeger(tonumber(piece))
          if not list[j] or list[j] < 1 then
            usage_error(string.format("option '--%s': '%s' is not a positive integer", name, piece))
          end
        end
      end
      val = list
    end
    o[name] = val
  end
  i = i + 1
end

if o.threads then require("nasflat.core").set_threads(o.threads) end
if o.tasks and #o.tasks == 1 and o.tasks[1] == "paper" then o.tasks = require("nasflat.tasks").PAPER end

local progress, finish
if o.quiet then progress, finish = function() end, function() end else progress, finish = util.progress{} end
local base = {}
if o.budget then base.budgets = {o.budget} end
if o["transfer-epochs"] then base.transfer_epochs = o["transfer-epochs"] end
if o["transfer-lr"] then base.transfer_lr = o["transfer-lr"] end

local header = false
local ok, result, err = pcall(study.run, {data = o.data, tasks = o.tasks, axes = o.axes, settings = o.settings,
  trials = o.trials, seed = o.seed, pretrain_samples = o.samples, epochs = o.epochs, budgets = o.curve,
  samplers = o.samplers, encodings = o.encodings, supplementaries = o.supplementaries, base = base,
  cache_dir = o.cache, progress = progress,
  on_axis = function(ax, res)
    finish()
    if not header then
      io.stdout:write(string.format("Spearman ρ, mean over target devices, mean ± std over %d trial(s); tasks %s; " ..
        "seed %d\n\n", res.trials, table.concat(res.tasks, ", "), res.seed))
      header = true
    end
    io.stdout:write(ax.table, "\n")
    io.stdout:flush()
  end})
finish()
if not ok then
  -- the study's own argument checks are usage errors; anything else is a bug: let it raise with its position
  local msg = tostring(result)
  if msg:find("study.run: ", 1, true) then usage_error((msg:gsub("^[^:]*%.lua:%d+: ", ""))) end
  error(result, 0)
end
if not result then io.stderr:write("study: ", err, "\n") os.exit(1) end

local p = result.pretraining
io.stdout:write(string.format("pre-trainings: %d trained, %d reused, %d loaded; %d results reused; wall %.0f s; " ..
  "peak memory %.0f MiB\n", p.trained, p.reused, p.loaded, result.results_reused, result.wall_s,
  result.peak_rss_mib or 0))
local json_path, csv_path = study.save(result, o.out)
if not json_path then io.stderr:write("study: ", csv_path, "\n") os.exit(1) end
io.stderr:write("results: ", json_path, ", ", csv_path, "\n")
