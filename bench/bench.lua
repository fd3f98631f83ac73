--- make bench: the machine's sgemm peak, then each area's benchmark (bench/bench_*.lua),
-- each given a context table {peak_gflops=..., peak_gflops_1t=...} as its first argument.
local nf = require "nasflat"

local threads = nf.get_threads()
print(string.format("nasflat %s bench — %d BLAS threads available", nf.version, threads))
local ctx = dofile("bench/sgemm_peak.lua")()
local order = {"bench/bench_data.lua", "bench/bench_space.lua", "bench/bench_samplers.lua", "bench/bench_nn.lua",
  "bench/bench_run.lua", "bench/bench_model.lua"}
for _, path in ipairs(order) do
  local chunk = loadfile(path)
  if chunk then
    print("-- " .. path)
    local ok, err = pcall(chunk, ctx)
    if not ok then
      io.stderr:write(path, ": ", tostring(err), "\n")
      os.exit(1)
    end
  end
end
