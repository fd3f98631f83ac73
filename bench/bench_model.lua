--- The product path (nasflat.model): fitting the shipped hybrid on 20 samples of a device, then predicting whole
-- spaces — every NB201 cell, and random FBNet architectures (9^22: none of them need be in the data) — with 90 %
-- intervals; and a save/load round trip. On the real data when it is found, else on the synthetic zoo.
-- Run by `make bench` (bench/bench.lua) or alone: LUA_PATH=... lua5.4 bench/bench_model.lua
local nf = require "nasflat"
local now = nf.core.now
local model = require "nasflat.model"
local source = require "nasflat.source"

local dir = require("nasflat.data").dir()
local data = dir or "synthetic"
for _, sp in ipairs{"nb201", "fbnet"} do
  local src = assert(source.open{data = data, space = sp})
  local target = dir and "pixel3" or src.devices[#src.devices]
  local rows = {}
  for i = 1, 20 do rows[i] = i * 97 end
  local archs = {}
  for i, r in ipairs(rows) do archs[i] = src.arch_strings[r] end
  local sources = src:devices_except(target)
  local t0 = now()
  local sm = assert(require("nasflat.source_models").fit{source = src, devices = sources})
  local t_sm = now() - t0
  t0 = now()
  local P = assert(model.fit{space = sp, samples = {archs = archs, ms = src:ms(target):index(rows)}, sources = sm,
    target = target})
  local t_fit = now() - t0
  local space = nf.space.get(sp)
  local list = sp == "nb201" and space:enumerate() or space:sample(nf.core.Rng(1), 100000)
  P:predict({list[1]})
  local best = math.huge
  for _ = 1, 3 do
    t0 = now()
    P:predict(list, {interval = 0.9})
    best = math.min(best, now() - t0)
  end
  local path = os.tmpname()
  t0 = now()
  assert(P:save(path))
  local t_save = now() - t0
  local f = io.open(path, "rb")
  local bytes = f:seek("end")
  f:close()
  t0 = now()
  assert(model.load(path))
  local t_load = now() - t0
  os.remove(path)
  print(string.format("model %s (%s, target %s): source models of %d devices %.2f s; hybrid fit on 20 samples %.2f s; " ..
    "predict %d archs with intervals %.3f s = %.0f archs/s (best of 3); save %.0f ms (%d KB), load %.0f ms", sp,
    dir and "real data" or "synthetic zoo", target, #sources, t_sm, t_fit, #list, best, #list / best, t_save * 1000,
    bytes // 1024, t_load * 1000))
end
