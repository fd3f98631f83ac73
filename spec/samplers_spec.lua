local nf = require "nasflat"
local samplers = require "nasflat.samplers"
local support = require "support"

local stats = nf.core.stats
local NaN = 0 / 0

local function random_encoding(seed, n, d)
  local rng = nf.Rng(seed)
  local t = nf.Tensor.new(n, d)
  for i = 1, n do for j = 1, d do t:set(i, j, rng:normal()) end end
  return t
end

local function assert_distinct_in(rows, n, allowed)
  assert.equal(n, #rows)
  local seen = {}
  for _, r in ipairs(rows) do
    assert.equal("integer", math.type(r))
    assert.is_nil(seen[r], "duplicate row " .. tostring(r))
    seen[r] = true
    if allowed then assert.is_true(allowed[r] == true, "row " .. r .. " not allowed") end
  end
end

local function cos(t, a, b)
  local d, na, nb = 0, 0, 0
  for j = 1, t:size(2) do
    local x, y = t:get(a, j), t:get(b, j)
    d, na, nb = d + x * y, na + x * x, nb + y * y
  end
  return d / math.sqrt(na * nb)
end

describe("samplers.select", function()
  local enc = random_encoding(1, 200, 5)
  local params, latency = {}, {}
  for i = 1, 200 do params[i] = (i * 37) % 200; latency[i] = (i * 53) % 200 + 0.5 end

  it("returns n distinct rows, deterministic for a seed, for every method", function()
    for _, method in ipairs(samplers.METHODS) do
      local opts = {method = method, n = 20, encoding = enc, params = params, latency = latency, seed = 7}
      local a = samplers.select(opts)
      assert_distinct_in(a, 20)
      for _, r in ipairs(a) do assert.is_true(r >= 1 and r <= 200) end
      assert.same(a, samplers.select(opts), method)
      opts.seed = 8
      assert.not_same(a, samplers.select(opts), method)
      -- every row when the budget is the whole population
      opts.n = 200
      assert_distinct_in(samplers.select(opts), 200)
      opts.n = 0
      assert.same({}, samplers.select(opts))
    end
  end)

  it("picks only candidates, and advances a caller's Rng", function()
    local cands, allowed = {}, {}
    for r = 3, 200, 4 do cands[#cands + 1] = r; allowed[r] = true end
    for _, method in ipairs(samplers.METHODS) do
      local rows = samplers.select{method = method, n = 15, encoding = enc, params = params, latency = latency,
        candidates = cands, seed = 1}
      assert_distinct_in(rows, 15, allowed)
      assert_distinct_in(samplers.select{method = method, n = #cands, encoding = enc, params = params,
        latency = latency, candidates = cands}, #cands, allowed)
    end
    local rng = nf.Rng(5)
    local a = samplers.select{method = "random", n = 10, candidates = cands, rng = rng}
    local b = samplers.select{method = "random", n = 10, candidates = cands, rng = rng}
    assert.not_same(a, b)
    assert.same(a, samplers.select{method = "random", n = 10, candidates = cands, rng = nf.Rng(5)})
  end)

  it("params and latency: one pick per value bucket (numpy.array_split sizes), NaN never picked", function()
    -- values 1..10 scrambled; 3 buckets hold the 4, 3 and 3 smallest/middle/largest values
    local v = {7, 3, 10, 1, 5, 9, 2, 8, 4, 6}
    for seed = 1, 30 do
      local rows = samplers.select{method = "params", n = 3, params = v, seed = seed}
      assert.is_true(v[rows[1]] <= 4)
      assert.is_true(v[rows[2]] >= 5 and v[rows[2]] <= 7)
      assert.is_true(v[rows[3]] >= 8)
    end
    local lat = nf.Tensor.from{5, NaN, 1, NaN, 3, 2}
    local rows = samplers.select{method = "latency", n = 4, latency = lat, seed = 3}
    table.sort(rows)
    assert.same({1, 3, 5, 6}, rows)
    support.raises("samplers.select: budget 5 is larger than the 4 candidates with a value",
      samplers.select, {method = "latency", n = 5, latency = lat})
  end)

  it("kmeans: one pick per well-separated cluster", function()
    local t = nf.Tensor.new(40, 2)
    local rng = nf.Rng(9)
    local centres = {{0, 0}, {100, 0}, {0, 100}, {100, 100}}
    for i = 1, 40 do
      local c = centres[(i - 1) % 4 + 1]
      t:set(i, 1, c[1] + rng:normal()); t:set(i, 2, c[2] + rng:normal())
    end
    for seed = 1, 10 do
      local rows = samplers.select{method = "kmeans", n = 4, encoding = t, seed = seed}
      local blobs = {}
      for _, r in ipairs(rows) do blobs[(r - 1) % 4 + 1] = true end
      assert.same({true, true, true, true}, blobs)
    end
    -- fewer distinct rows than the budget: still n distinct rows
    local dup = nf.Tensor.from{{1, 1}, {1, 1}, {1, 1}, {2, 2}, {2, 2}}
    assert_distinct_in(samplers.select{method = "kmeans", n = 4, encoding = dup, seed = 1}, 4)
  end)

  it("cosine: one pick per bucket of mean cosine similarity to the other candidates", function()
    -- rows 1-2 point along x, 3-4 close to x, 5-6 along y: ranked by mean similarity to the others
    local t = nf.Tensor.from{{1, 0}, {1, 0}, {1, 0.2}, {1, 0.3}, {0, 1}, {0, 1}}
    local m = stats.mean_cosine(t)
    for i = 1, 6 do
      local s = 0
      for j = 1, 6 do if j ~= i then s = s + cos(t, i, j) end end
      assert.is_true(math.abs(m:get(i) - s / 5) < 1e-6)
    end
    -- ascending mean similarity: rows 5,6 (least similar to the rest) form the first bucket of 2
    for seed = 1, 20 do
      local rows = samplers.select{method = "cosine", n = 3, encoding = t, seed = seed}
      assert.is_true(rows[1] == 5 or rows[1] == 6)
      assert.is_true(rows[2] <= 4 and rows[3] <= 4)
    end
  end)

  it("cosine_greedy: each pick is the unchosen row least similar to the previous pick", function()
    local e = random_encoding(4, 60, 6)
    local rows = samplers.select{method = "cosine_greedy", n = 12, encoding = e, seed = 2}
    assert_distinct_in(rows, 12)
    local taken = {[rows[1]] = true}
    for k = 2, #rows do
      local best_s = math.huge
      for i = 1, 60 do
        if not taken[i] then
          local s = cos(e, rows[k - 1], i)
          if s < best_s then best_s = s end
        end
      end
      assert.is_true(math.abs(cos(e, rows[k - 1], rows[k]) - best_s) < 1e-5, "pick " .. k)
      taken[rows[k]] = true
    end
    -- two antipodal directions: the reference would alternate between two rows; this never repeats
    local anti = nf.Tensor.from{{1, 0}, {-1, 0}, {0.9, 0.1}, {-0.9, 0.1}}
    assert_distinct_in(samplers.select{method = "cosine_greedy", n = 4, encoding = anti, seed = 1}, 4)
  end)

  it("kmeancosine: floor(n/2) kmeans picks, then ceil(n/2) cosine picks among the others", function()
    local rows = samplers.select{method = "kmeancosine", n = 7, encoding = enc, seed = 11}
    assert_distinct_in(rows, 7)
    local rng = nf.Rng(11)
    local km = samplers.select{method = "kmeans", n = 3, encoding = enc, rng = rng}
    assert.same(km, {rows[1], rows[2], rows[3]})
    assert_distinct_in(samplers.select{method = "kmeancosine", n = 1, encoding = enc}, 1)
  end)

  it("raises on programmer errors, naming the problem", function()
    support.raises("samplers.select: unknown method 'foo' (known: random, params, kmeans, cosine, cosine_greedy, "
      .. "kmeancosine, latency)", samplers.select, {method = "foo", n = 1, encoding = enc})
    support.raises("samplers.select: unknown option 'budget' (allowed: candidates, encoding, latency, method, n, "
      .. "params, rng, seed)", samplers.select, {method = "random", n = 1, budget = 3})
    support.raises("samplers.select: option 'method' is required", samplers.select, {n = 1})
    support.raises("samplers.select: budget 201 is larger than the 200 candidates",
      samplers.select, {method = "kmeans", n = 201, encoding = enc})
    support.raises("samplers.select: budget 3 is larger than the 2 candidates",
      samplers.select, {method = "random", n = 3, candidates = {4, 9}})
    support.raises("samplers.select: method 'kmeancosine' needs option 'encoding' (a Tensor N×D)",
      samplers.select, {method = "kmeancosine", n = 3, params = params})
    support.raises("samplers.select: method 'params' needs option 'params'",
      samplers.select, {method = "params", n = 3, encoding = enc})
    support.raises("samplers.select: encoding has 200 rows but params has 3",
      samplers.select, {method = "random", n = 1, encoding = enc, params = {1, 2, 3}})
    support.raises("samplers.select: candidate 2 (201) is not a row in 1..200",
      samplers.select, {method = "random", n = 1, encoding = enc, candidates = {1, 201}})
    support.raises("samplers.select: candidate row 4 is listed twice",
      samplers.select, {method = "random", n = 1, candidates = {4, 4}})
    support.raises("samplers.select: give 'seed' or 'rng', not both",
      samplers.select, {method = "random", n = 1, candidates = {1}, seed = 1, rng = nf.Rng(1)})
    support.raises("samplers.select: option 'n' must be an integer >= 0 (got 2.5)",
      samplers.select, {method = "random", n = 2.5, candidates = {1, 2, 3}})
    support.raises("samplers.select: give 'candidates', or 'encoding', 'params' or 'latency' to define the rows",
      samplers.select, {method = "random", n = 1})
    local bad = enc:clone()
    bad:set(150, 2, NaN)
    support.raises("samplers.select: encoding row 150 column 2 is not finite (NaN)",
      samplers.select, {method = "kmeancosine", n = 4, encoding = bad, candidates = {1, 150, 3, 4, 5}})
    support.raises("samplers.select: encoding row 150 column 2 is not finite",
      samplers.select, {method = "cosine_greedy", n = 4, encoding = bad})
    assert_distinct_in(samplers.select{method = "cosine", n = 4, encoding = bad, candidates = {1, 2, 3, 4, 5}}, 4)
  end)
end)

describe("stats kernels", function()
  it("k-means: the objective never increases across Lloyd iterations", function()
    for seed = 1, 5 do
      local X = random_encoding(100 + seed, 1500, 6)
      local res = stats.kmeans(X, 25, {seed = seed, max_iter = 300})
      assert.is_true(res.iterations >= 3, "too few iterations to test anything")
      assert.equal(res.iterations, #res.inertia)
      for t = 2, #res.inertia do
        assert.is_true(res.inertia[t] <= res.inertia[t - 1] * (1 + 1e-12),
          string.format("iteration %d: %.9g > %.9g", t, res.inertia[t], res.inertia[t - 1]))
      end
      assert.is_true(res.inertia[#res.inertia] < res.inertia[1])
      -- the final inertia is the sum of squared distances to the returned centroids
      local s = 0
      for i = 1, 1500 do
        local c = res.assign[i]
        for j = 1, 6 do s = s + (X:get(i, j) - res.centroids:get(c, j)) ^ 2 end
      end
      assert.is_true(math.abs(s - res.inertia[#res.inertia]) < 1e-3 * s)
    end
    support.raises("stats.kmeans: cannot make 5 clusters from 4 rows", stats.kmeans, nf.Tensor.new(4, 2), 5)
    support.raises("stats.kmeans: unknown option 'iters' (allowed: rng, seed, max_iter)",
      stats.kmeans, nf.Tensor.new(4, 2), 2, {iters = 3})
  end)

  it("runs k-means and kmeancosine on a full-size 15,625 × 40 encoding (timed by make bench)", function()
    local X = random_encoding(7, 15625, 40)
    local res = stats.kmeans(X, 20, {seed = 1})   -- Gaussian noise: runs all 100 Lloyd iterations
    assert.equal(15625, #res.assign)
    local rows = samplers.select{method = "kmeancosine", n = 20, encoding = X, seed = 1}
    assert_distinct_in(rows, 20)
  end)
end)
