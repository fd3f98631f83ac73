-- make bench: sampler kernels on a full-size NB201-like encoding (15,625 × 40).
local nf = require "nasflat"
local stats = nf.core.stats
local samplers = require "nasflat.samplers"
local now = nf.core.now

local rng = nf.Rng(7)
local X = nf.Tensor.new(15625, 40)
for i = 1, 15625 do for j = 1, 40 do X:set(i, j, rng:normal()) end end
local function best(reps, f)
  local b = math.huge
  for _ = 1, reps do
    local t0 = now()
    f()
    b = math.min(b, now() - t0)
  end
  return b * 1000
end
print(string.format("k-means k=20 on 15625x40 (100 Lloyd iterations): %.0f ms (best of 3)",
  best(3, function() stats.kmeans(X, 20, {seed = 1}) end)))
print(string.format("kmeancosine n=20 on 15625x40: %.0f ms (best of 3)",
  best(3, function() samplers.select{method = "kmeancosine", n = 20, encoding = X, seed = 1} end)))
