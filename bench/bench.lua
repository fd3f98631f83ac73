--- make bench: the machine's sgemm peak, then each area's benchmark (bench/bench_*.lua),
-- each given a context table {peak_gflops=..., peak_gflops_1t=...} as its first argument.
local nf = require "nasflat"
local now = nf.core.now

--- GFLOP/s of C(M×N) = A(M×K)·B(K×N), best of `reps` timed runs of at least `min_s` seconds.
local function sgemm_gflops(M, N, K, reps, min_s)
  local A = nf.Tensor.new(M, K):fill(0.5)
  local B = nf.Tensor.new(K, N):fill(0.25)
  local C = nf.Tensor.new(M, N)
  local opts = {out = C}
  nf.matmul(A, B, opts) -- warm up
  local best = 0
  for _ = 1, reps do
    local iters, t0 = 0, now()
    repeat
      for _ = 1, 10 do nf.matmul(A, B, opts) end
      iters = iters + 10
    until now() - t0 >= min_s
    local g = 2 * M * N * K * iters / (now() - t0) / 1e9
    if g > best then best = g end
  end
  return best
end

local threads = nf.get_threads()
print(string.format("nasflat %s bench — %d BLAS threads available", nf.version, threads))
nf.set_threads(1)
local peak1 = sgemm_gflops(1024, 128, 128, 5, 0.3)
nf.set_threads(threads)
local peak = sgemm_gflops(1024, 128, 128, 5, 0.3)
local big = sgemm_gflops(1024, 1024, 1024, 3, 0.5)
print(string.format("sgemm 1024x128x128: %.1f GFLOP/s (%d threads), %.1f GFLOP/s (1 thread)", peak, threads, peak1))
print(string.format("sgemm 1024x1024x1024: %.1f GFLOP/s (%d threads)", big, threads))

local ctx = {peak_gflops = peak, peak_gflops_1t = peak1, threads = threads}
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
