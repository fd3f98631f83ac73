--- Search-space benchmark: building graphs, costs and features for whole spaces.
-- Run by `make bench` (bench/bench.lua) or alone: LUA_PATH=... lua5.4 bench/bench_space.lua
local nf = require "nasflat"
local now = nf.core.now
local space = require "nasflat.space"

--- Best wall time (ms) of `reps` runs of f.
local function best_ms(reps, f)
  local best = math.huge
  for _ = 1, reps do
    local t0 = now()
    f()
    local dt = (now() - t0) * 1000
    if dt < best then best = dt end
  end
  return best
end

local nb, fb = space.get("nb201"), space.get("fbnet")
local all = nb:enumerate()
print(string.format("build 15625 NB201 graphs: %.1f ms", best_ms(5, function() nb:graphs(all) end)))
print(string.format("enumerate 15625 NB201 arch strings: %.1f ms", best_ms(5, function() nb:enumerate() end)))
print(string.format("NB201 params+FLOPs of 15625 cells: %.1f ms", best_ms(3, function() nb:costs(all) end)))
print(string.format("NB201 structural features of 15625 cells: %.1f ms", best_ms(3, function() nb:struct_features(all) end)))
local fbs = fb:sample(nf.Rng(1), 5000)
print(string.format("NB201 physical features of 15625 cells: %.1f ms",
  best_ms(3, function() nb:phys_features(all) end)))
print(string.format("NB201 roofline features of 15625 cells: %.1f ms",
  best_ms(3, function() nb:roof_features(all) end)))
print(string.format("NB201 roofline features with floors (43 columns) of 15625 cells: %.1f ms",
  best_ms(3, function() nb:roof_features(all, nil, false, "floors") end)))
print(string.format("build 5000 FBNet graphs: %.1f ms", best_ms(5, function() fb:graphs(fbs) end)))
print(string.format("FBNet structural features of 5000 archs: %.1f ms", best_ms(3, function() fb:struct_features(fbs) end)))
print(string.format("FBNet physical features of 5000 archs: %.1f ms", best_ms(3, function() fb:phys_features(fbs) end)))
print(string.format("FBNet roofline features of 5000 archs: %.1f ms", best_ms(3, function() fb:roof_features(fbs) end)))
print(string.format("FBNet roofline features with floors (43 columns) of 5000 archs: %.1f ms",
  best_ms(3, function() fb:roof_features(fbs, nil, false, "floors") end)))
local zoo = require "nasflat.zoo"
print(string.format("synthetic zoo, NB201 (15625 archs x 13 devices): %.1f ms",
  best_ms(3, function() zoo.latency{space = "nb201"} end)))
print(string.format("synthetic zoo, FBNet (5000 archs x 13 devices): %.1f ms",
  best_ms(3, function() zoo.latency{space = "fbnet"} end)))
