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

-- The graph network's transfer (`nasflat run --predictor nasflat`, k = 20): per target and trial, the fine-tuning of
-- the default copies and the scoring of all 15,625 cells, against one copy. The network is the default
-- architecture pre-trained briefly (its size, not its training, sets the transfer's cost).
local G = require "nasflat.model_gnn"
local pre = assert(G.pretrain(src, task.train, {pretrain_samples = 64, epochs = 1, batch = G.DEFAULTS.batch,
  lr = G.DEFAULTS.lr, weight_decay = G.DEFAULTS.weight_decay, seed = 1}))
local function gnn_transfer(members)
  local o = {source = src, task = task, predictors = {"nasflat"}, budgets = {20}, trials = 1, pretrained = pre,
    transfer_members = members}
  local t0 = now()
  assert(experiment.run(o))
  return (now() - t0) / #task.test
end
local members = G.DEFAULTS.transfer_members
local tg, t1g = gnn_transfer(members), gnn_transfer(1)
print(string.format("graph network transfer (k=20, %d epochs, all 15625 cells scored): %.2f s per target and trial " ..
  "with the default %d copies, %.2f s with one (%.1fx)", G.TRANSFER.nb201.epochs, tg, members, t1g, tg / t1g))
