--- Data-layer benchmark: load time of the largest latency CSV.
-- Run by `make bench` (bench/bench.lua) or alone:
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua/?.so;;" lua5.4 bench/bench_data.lua
local nf = require "nasflat"
local data = require "nasflat.data"
local now = nf.core.now

local dir, msg = data.dir()
if not dir then
  print("load nb201_latency.csv: skipped (" .. msg .. ")")
  return
end

--- Median wall time (ms) of `reps` runs of f.
local function median_ms(reps, f)
  local t = {}
  for i = 1, reps do
    collectgarbage()
    local t0 = now()
    f()
    t[i] = (now() - t0) * 1000
  end
  table.sort(t)
  return t[(reps + 1) // 2]
end

local function bench(file, run)
  local path = dir .. "/" .. file
  local ms = median_ms(5, function() run(path) end)
  print(string.format("load %s: %.1f ms (median of 5)", file, ms))
end

local function latency(path) assert(data.load_latency(path)):free() end
local function tab(path) assert(data.load_table(path)):free() end

bench("nb201_latency.csv", latency)
bench("fbnet_latency.csv", latency)
bench("nb201_archs.csv", tab)
bench("zcp/nb201_zcp_partial.csv", tab)
