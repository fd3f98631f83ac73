#!/usr/bin/env lua5.4
--- The Lua API in one page: train the predictor on two source devices, transfer it to a target device
-- with 20 measured architectures, and rank every architecture on the target.
--   lua5.4 examples/quickstart.lua        (from the repository root, after `make`)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/lua/?.so;" .. package.cpath
local nf = require "nasflat"

-- real data when present, else the synthetic zoo (same Latency object either way)
local lat, sources, target
local dir = nf.data.dir()
if dir then
  lat = assert(nf.data.load_latency(dir .. "/nb201_latency.csv"))
  sources, target = {"1080ti_1", "silver_4114"}, "pixel3"
else
  lat = assert(nf.zoo.latency{space = "nb201", seed = 1})
  sources, target = {"gpu_server_a_b1", "cpu_desktop_8c"}, "cpu_mobile_big"
end
local space = nf.space.get("nb201")
local archs = {}
for row = 1, lat:n_archs() do archs[row] = lat:arch_string(row) end
local graphs = space:graphs(archs)

-- pre-train on 256 random architectures per source device (normalised latency as the target)
local rng = nf.Rng(1)
local rows, devices, targets = {}, {}, {}
for _, d in ipairs(sources) do
  local norm = lat:norm(d)
  for _, r in ipairs(rng:sample(lat:n_archs(), 256)) do
    if norm:get(r) == norm:get(r) then          -- skip unmeasured cells (NaN)
      rows[#rows + 1], devices[#devices + 1], targets[#targets + 1] = r, d, norm:get(r)
    end
  end
end
local P = nf.predictor.new(space:predictor_options{devices = sources, seed = 1})
P:fit{graphs = graphs, rows = rows, devices = devices, targets = nf.Tensor.from(targets), epochs = 20}

-- transfer: 20 measured architectures on the target, its embedding copied from the first source
local measured = lat:measured(target)
local picked = {}
for i, k in ipairs(rng:sample(#measured, 20)) do picked[i] = measured[k] end
local ms = lat:ms(target)
local y = ms:index(picked)
local lo, hi = y:min(), y:max()
local ynorm = {}
for i = 1, #picked do ynorm[i] = (y:get(i) - lo) / (hi - lo) end
P:add_device(target, {copy_from = sources[1]})
P:fit{graphs = graphs, rows = picked, devices = target, targets = nf.Tensor.from(ynorm), epochs = 30, batch = 16}

-- rank every measured architecture on the target
local scores = P:predict{graphs = graphs, rows = measured, device = target}
local truth = ms:index(measured)
print(string.format("%s -> %s: Spearman %.3f, Kendall %.3f over %d architectures", table.concat(sources, "+"),
  target, nf.metrics.spearman(scores, truth), nf.metrics.kendall(scores, truth), #measured))
P:free()
