#!/usr/bin/env lua5.4
--- The Lua API in one page: 20 latencies measured on "your" device, the shipped predictor fitted on them, every
-- architecture of the space predicted (with 90 % intervals), the model saved and loaded back.
--   lua5.4 examples/quickstart.lua        (from the repository root, after `make`)
-- With the real data the 20 measurements are pixel3's, and the source devices every other device of the data;
-- without it, a device of the synthetic zoo.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/lua/?.so;" .. package.cpath
local nf = require "nasflat"

local src = assert(nf.source.open{data = nf.data.dir() or "synthetic", space = "nb201"})
local target = src.synthetic and "cpu_mobile_big" or "pixel3"

-- "measure" 20 architectures on the target (here: read them from the data)
local rng = nf.Rng(1)
local measured = src:measured(target)
local archs, ms = {}, {}
for i, k in ipairs(rng:sample(#measured, 20)) do
  archs[i], ms[i] = src.arch_strings[measured[k]], src:ms(target):get(measured[k])
end

-- fit the hybrid (source devices: every other device of the data), predict all 15,625 cells
local sources = src:devices_except(target)
local P = assert(nf.model.fit{space = "nb201", samples = {archs = archs, ms = ms}, target = target, data = src,
  sources = sources})
print(P)
local all = nf.space.get("nb201"):enumerate()
local pred, info = P:predict(all, {interval = 0.9})

-- how good is it on the architectures the data has measured?
local truth, est, inside = {}, {}, 0
for i, a in ipairs(all) do
  local r = src:row(a)
  local t = r and src:ms(target):get(r)
  if t and t == t then
    truth[#truth + 1], est[#est + 1] = t, pred:get(i)
    if t >= info.lo:get(i) and t <= info.hi:get(i) then inside = inside + 1 end
  end
end
print(string.format("%s: Spearman %.3f over %d architectures; 90%% intervals hold %.1f%% of them",
  target, nf.metrics.spearman(nf.Tensor.from(est), nf.Tensor.from(truth)), #truth, 100 * inside / #truth))

-- keep it: the file carries the source-device models, so it predicts without the data
local path = os.tmpname()
assert(P:save(path))
local Q = assert(nf.model.load(path))
assert(Q:predict({all[1]}):get(1) == pred:get(1))
os.remove(path)
