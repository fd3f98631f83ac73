--- The main job's transfer step: the shipped hybrid (no GNN) on the synthetic zoo's NB201 task ZD, per target
-- device and trial (k = 20 samples, every one of the 15,625 cells scored; the run's source-device models, built
-- once per run, are included), and the same without bagging.
-- Run by `make bench` (bench/bench.lua) or alone: LUA_PATH=... lua5.4 bench/bench_run.lua
local nf = require "nasflat"
local now = nf.core.now
local experiment = require "nasflat.experiment"
local zoo = require "nasflat.zoo"

local src = assert(require("nasflat.source").open{data = "synthetic", space = "nb201"})
local task = assert(zoo.task("nb201", "ZD"))
local function per_transfer(extra)
  local o = {source = src, task = task, predictors = {"hybrid"}, budgets = {20}, trials = 2}
  for k, v in pairs(extra) do o[k] = v end
  experiment.run(o)   -- warm: features and source models of the source, built once
  local t0 = now()
  local rec = assert(experiment.run(o))
  return (now() - t0) / (#task.test * o.trials), rec
end
local t, rec = per_transfer{}
print(string.format("hybrid transfer (%d components, 20 bags, k=20, all 15625 cells scored): %.0f ms per target " ..
  "and trial; ZD mean Spearman %.3f", #experiment.DEFAULTS.hybrid, t * 1000, rec.mean.hybrid["20"]))
local t1 = per_transfer{hybrid_bags = 1}
print(string.format("the same without bagging: %.0f ms per target and trial (bagging costs %.1fx)", t1 * 1000, t / t1))
print(string.format("peak memory: %.0f MiB", require("nasflat.util").peak_rss_mib()))
