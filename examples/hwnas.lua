#!/usr/bin/env lua5.4
--- Hardware-aware NAS in one screen: the most accurate NB201 cell under 12 ms on pixel2 with 30 measurements.
-- The adaptive loop of nasflat.search.adaptive written out against the API: measure 20, fit, then measure what
-- the predictor proposes, refit, repeat; the pick is the best cell MEASURED under the budget.
--   lua5.4 examples/hwnas.lua            (from the repository root, after `make`; needs the real data)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/lua/?.so;" .. package.cpath
local nf = require "nasflat"
local search, dev = require "nasflat.search", require "nasflat.search_device"

local budget, target, total, batch = 12, "pixel2", 30, 2
local src = assert(nf.source.open{space = "nb201"})                      -- ../shared/data or $NASFLAT_DATA
local task = nf.tasks.resolve{name = "ND", devices = src.devices, tasks_file = src.tasks_file}
local sm = assert(nf.source_models.fit{source = src, devices = task.train})  -- fitted once, shared by the refits
local device = assert(dev.dataset{source = src, device = target})         -- or dev.command{template = ...}
local rows = src:measured(target)
local cache = nf.features.view(src:features(), rows)                      -- the candidates' features, built once
local pool = cache.list
local acc = assert(search.objective("cifar10", {space = "nb201"}))
local valid, test = acc.values(pool), acc.report(pool)                    -- search on validation, report test

local samples, measured, best = {archs = {}, ms = {}}, {}, nil
local function measure(i)
  local ms = device:measure(pool[i])
  measured[#measured + 1] = i
  if ms then
    samples.archs[#samples.archs + 1], samples.ms[#samples.ms + 1] = pool[i], ms
    if ms <= budget and (not best or valid[i] > valid[best]) then best = i end
  end
end
for _, i in ipairs(nf.Rng(1):sample(#pool, 20)) do measure(i) end         -- 20 transfer samples
local P = assert(nf.model.fit{space = "nb201", samples = samples, target = target, data = src, sources = sm})
while #measured < total do
  local _, info = P:predict(pool, {interval = 0.9, features = cache})
  local sd = info.halfwidth_log / search.z_of(0.9)                        -- the interval as a log-error sd
  -- gain over the best measured pick × P(under the budget), top `batch` unmeasured (C kernel over the pool)
  local picks = nf.core.search.select(valid, {info.logms}, {budgets = {math.log(budget)}, sigmas = {sd},
    skip = measured, incumbent = best and valid[best], k = math.min(batch, total - #measured)})
  if #picks == 0 then break end
  for _, i in ipairs(picks) do measure(i) end
  P = assert(P:refit(samples))
end
if best then
  print(string.format("pick %s: %.3f ms measured on %s (budget %g), validation %.2f %%, test %.2f %%", pool[best],
    src:ms(target):get(rows[best]), target, budget, valid[best], test[best]))
else
  print("no measured architecture under the budget")
end
