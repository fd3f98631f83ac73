--- The machine's sgemm peak that make bench measures the kernels against: OpenBLAS C = A·B at two shapes, 1024×128×128
-- (the size of the network's products) and 1024³, at the default thread count and at one thread; the peak at each
-- thread count is the faster shape (on some machines OpenBLAS runs the small shape on one thread far below the
-- core's peak, which would flatter the ratios). Used by bench/bench.lua and by bench_nn.lua run alone.
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

--- Measures and prints the peaks; returns the context table the bench files take:
-- {peak_gflops = (default threads), peak_gflops_1t = (one thread), threads = n}.
return function()
  local threads = nf.get_threads()
  nf.set_threads(1)
  local small1, big1 = sgemm_gflops(1024, 128, 128, 5, 0.3), sgemm_gflops(1024, 1024, 1024, 3, 0.5)
  nf.set_threads(threads)
  local small, big = sgemm_gflops(1024, 128, 128, 5, 0.3), sgemm_gflops(1024, 1024, 1024, 3, 0.5)
  print(string.format("sgemm 1024x128x128: %.1f GFLOP/s (%d threads), %.1f GFLOP/s (1 thread)", small, threads, small1))
  print(string.format("sgemm 1024x1024x1024: %.1f GFLOP/s (%d threads), %.1f GFLOP/s (1 thread)", big, threads, big1))
  local peak, peak1 = math.max(small, big), math.max(small1, big1)
  print(string.format("sgemm peak: %.1f GFLOP/s (%d threads), %.1f GFLOP/s (1 thread)", peak, threads, peak1))
  return {peak_gflops = peak, peak_gflops_1t = peak1, threads = threads}
end
