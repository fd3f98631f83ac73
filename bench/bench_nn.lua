--- bench_nn: the predictor engine. Training (forward + backward + AdamW) graphs/s at batch 128,
-- forward-only graphs/s over all 15,625 NB201 cells, FLOPs per graph, achieved GFLOP/s and their
-- ratio to the sgemm 1024x128x128 peak measured by bench/bench.lua in the same run (at the same
-- thread count: the default, and one thread), peak memory.
-- The same for the configurations the network may ship with: GAT masked logits 0 instead of −∞
-- (quirk_gat_mask_zero: every node attends to every node), and that with the unpruned 8-node graphs.
-- Run alone: `lua5.4 bench/bench_nn.lua` (then it measures the peak itself).
local nf = require "nasflat"
local util = require "nasflat.util"
local now = nf.core.now

local ctx = ...
if type(ctx) ~= "table" then ctx = dofile("bench/sgemm_peak.lua")() end   -- run alone: measure the peaks here

-- NB201 op-on-node graphs of all 15,625 cells (METHOD §2), built by the space as every run builds them;
-- unpruned: the 8-node cell graph before pruning (every edge, dead ops kept).
local NB201 = require("nasflat.space").get("nb201")
local function all_nb201(unpruned)
  return NB201:graphs(NB201:enumerate(), {pruned = not unpruned})
end

local B = 128
local rows, dev, y = {}, {}, nf.Tensor.new(B)
for i = 1, B do rows[i] = (i * 97) % 15625 + 1; dev[i] = i % 4 + 1; y:set(i, (i * 37 % 128) / 128) end

-- training: batches of 128 (gather, forward, hinge loss, backward, AdamW), one batch per epoch;
-- then forward over every cell. At the default thread count and, when that is more than one,
-- at one thread too (small GEMMs on a shared machine often gain nothing from a second thread).
-- label: "" for the default configuration, else the variant's name after each line.
local function bench(label, P, G)
  local m = P:core()
  local flops = P:flops(B)
  local tag = label == "" and "" or " [" .. label .. "]"
  print(string.format("predictor%s: %d parameters, %.2f MFLOP per graph forward (batch %d), "
    .. "~%.2f MFLOP per graph per training step (3x)", label == "" and ": default ensemble model" or tag,
    P:n_params(), flops / 1e6, B, 3 * flops / 1e6))
  local train = {ops = G.ops, adj = G.adj, rows = rows, dev = dev, y = y, epochs = 3, batch = B, seed = 1}
  local function run(threads, peak)
    nf.set_threads(threads)
    train.epochs = 3
    m:train(train) -- warm up (arena, BLAS buffers)
    local best = math.huge
    for _ = 1, 3 do
      train.epochs = 20
      local t0 = now()
      m:train(train)
      best = math.min(best, (now() - t0) / 20)
    end
    local train_gps = B / best
    local train_gflops = train_gps * 3 * flops / 1e9
    print(string.format("train  (fwd+bwd+AdamW, batch %d, %d thr): %7.0f graphs/s %6.1f GFLOP/s = %3.0f%% of sgemm peak %.1f%s",
      B, threads, train_gps, train_gflops, 100 * train_gflops / peak, peak, tag))
    P:predict{graphs = G, device = "a", rows = {1, 2, 3}}
    local bestf = math.huge
    for _ = 1, 3 do
      local t0 = now()
      P:predict{graphs = G, device = "a"}
      bestf = math.min(bestf, now() - t0)
    end
    local fwd_gps = 15625 / bestf
    local fwd_gflops = fwd_gps * flops / 1e9
    print(string.format("predict (all 15,625 NB201 cells, %d thr): %7.0f graphs/s %6.1f GFLOP/s = %3.0f%% of sgemm peak "
      .. "(%.3f s)%s", threads, fwd_gps, fwd_gflops, 100 * fwd_gflops / peak, bestf, tag))
  end
  run(ctx.threads, ctx.peak_gflops)
  if ctx.threads > 1 and ctx.peak_gflops_1t then run(1, ctx.peak_gflops_1t) end
  nf.set_threads(ctx.threads)
  return m
end

local G = all_nb201()
local m = bench("", nf.predictor.new{devices = {"a", "b", "c", "d"}}, G)
local mem = m:bytes()
bench("GAT mask −∞", nf.predictor.new{devices = {"a", "b", "c", "d"}, quirk_gat_mask_zero = false}, G)
bench("unpruned graphs", nf.predictor.new{devices = {"a", "b", "c", "d"}}, all_nb201(true))
print(string.format("memory: model %.1f MiB (params, grads, AdamW moments, activation arena); peak RSS %.0f MiB",
  mem / 2 ^ 20, util.peak_rss_mib() or -1))
