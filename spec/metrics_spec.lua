local nf = require "nasflat"
local metrics = require "nasflat.metrics"
local support = require "support"

local NaN = 0 / 0
local function isnan(x) return x ~= x end

local function near(expected, got, tol)
  assert(math.abs(expected - got) <= (tol or 1e-9),
    string.format("expected %.12g, got %.12g", expected, got))
end

-- Kendall's tau-b by direct pair counting, written independently of the C code.
local function tau_b_naive(x, y)
  local c, d, tx, ty, n = 0, 0, 0, 0, 0
  local xs, ys = {}, {}
  for i = 1, #x do
    if x[i] == x[i] and y[i] == y[i] then n = n + 1; xs[n] = x[i]; ys[n] = y[i] end
  end
  for i = 1, n do
    for j = i + 1, n do
      local dx, dy = xs[i] - xs[j], ys[i] - ys[j]
      if dx == 0 and dy == 0 then
        c = c + 0 -- tied in both: in neither denominator term
      elseif dx == 0 then tx = tx + 1
      elseif dy == 0 then ty = ty + 1
      elseif (dx > 0) == (dy > 0) then c = c + 1
      else d = d + 1 end
    end
  end
  local den = math.sqrt((c + d + tx) * (c + d + ty))
  if den == 0 then return NaN end
  return (c - d) / den
end

describe("metrics", function()
  it("match hand-computed values (Python stdlib reference, average ranks, tau-b)", function()
    local a, b = {1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}
    -- d = (-1, 1, -1, 1, 0): rho = 1 - 6*4/(5*24) = 0.8; 8 concordant, 2 discordant: tau = 0.6
    near(0.8, metrics.spearman(a, b))
    near(0.6, metrics.kendall(a, b))
    near(0.8, metrics.pearson(a, b))
    -- ties: C=3, D=1, one pair tied only in x, one only in y: tau_b = 2/sqrt(5*5)
    near(0.5, metrics.spearman({1, 2, 2, 3}, {1, 3, 2, 2}))
    near(0.4, metrics.kendall({1, 2, 2, 3}, {1, 3, 2, 2}))
    local x, y = {1, 1, 2, 2, 3, 3, 4}, {2, 1, 1, 3, 3, 3, 4}
    near(0.827076026721, metrics.spearman(x, y), 1e-10)
    near(0.743160535618, metrics.kendall(x, y), 1e-10)
    near(0.811465207804, metrics.pearson(x, y), 1e-10)
    near(-1, metrics.spearman(a, {5, 4, 3, 2, 1}))
  end)

  it("accept Tensors and tables alike", function()
    local a, b = nf.Tensor.from{3, 1, 4, 1, 5, 9, 2, 6}, nf.Tensor.from{2, 7, 1, 8, 2, 8, 1, 8}
    near(0.198853681210, metrics.spearman(a, b), 1e-10)
    near(0.160514470781, metrics.kendall(a, b), 1e-10)
    near(metrics.spearman(a:totable(), b:totable()), metrics.spearman(a, b), 0)
    near(metrics.kendall(a, b:totable()), metrics.kendall(a, b), 0)
  end)

  it("Kendall tau-b O(n log n) equals the naive O(n^2) count on random inputs with ties and NaN", function()
    local rng = nf.Rng(2024)
    for _ = 1, 40 do
      local n, levels = rng:uniform(300), rng:uniform(10)
      local x, y = {}, {}
      for i = 1, n do
        x[i] = rng:uniform(levels)
        y[i] = rng:uniform(levels) + (rng:uniform() < 0.5 and x[i] or 0)
        if rng:uniform(25) == 1 then x[i] = NaN end
        if rng:uniform(25) == 1 then y[i] = NaN end
      end
      local fast, slow = metrics.kendall(x, y), tau_b_naive(x, y)
      if isnan(slow) then assert.is_true(isnan(fast)) else near(slow, fast, 1e-12) end
      local cref = metrics.kendall_naive(x, y)
      if isnan(slow) then assert.is_true(isnan(cref)) else near(slow, cref, 1e-12) end
    end
  end)

  it("drop pairs with a missing value on either side", function()
    local p, t = {1, NaN, 3, 2, 9}, {1, 5, NaN, 2, 8}
    assert.equal(3, metrics.count_valid(p, t))
    near(metrics.spearman({1, 2, 9}, {1, 2, 8}), metrics.spearman(p, t), 0)
    near(1, metrics.kendall(p, t))
    near(1 / 3, metrics.mae(p, t))
  end)

  it("return NaN for n = 0, n = 1, constant inputs and all-missing data", function()
    for _, name in ipairs{"spearman", "kendall", "pearson"} do
      local f = metrics[name]
      assert.is_true(isnan(f({}, {})), name)
      assert.is_true(isnan(f({1}, {2})), name)
      assert.is_true(isnan(f({2, 2, 2}, {1, 2, 3})), name)
      assert.is_true(isnan(f({1, 2, 3}, {7, 7, 7})), name)
    end
    assert.is_true(isnan(metrics.mae({}, {})))
    assert.is_true(isnan(metrics.rmse({NaN, NaN}, {1, 2})))
    assert.is_true(isnan(metrics.acc10({}, {})))
    assert.equal(3, metrics.mae({4}, {1}))
    assert.is_true(isnan(metrics.precision_at_k({1, 2}, {1, 2}, {k = 3})))
  end)

  it("compute error metrics", function()
    local p, t = {1.05, 2, 2.6}, {1, 2, 3}
    near((0.05 + 0.4) / 3, metrics.mae(p, t), 1e-6)
    near(math.sqrt((0.0025 + 0.16) / 3), metrics.rmse(p, t), 1e-6)
    near(100 * (0.05 + 0.4 / 3) / 3, metrics.mape(p, t), 1e-4)
    near(2 / 3, metrics.acc10(p, t))
    near(1, metrics.within(p, t, {tol = 0.2}))
    assert.equal(math.huge, metrics.mape({1, 1}, {0, 1}))
  end)

  it("define precision@k and top-k overlap on the fastest (smallest) values, ties included", function()
    local p, t = {1, 2, 3, 4, 5, 6}, {2, 1, 6, 3, 5, 4}
    near(1, metrics.precision_at_k(p, t, {k = 2}))
    near(2 / 3, metrics.precision_at_k(p, t, {k = 3}))   -- {1,2,3} vs {1,2,4}
    near(0.5, metrics.topk_overlap(p, t, {k = 3}))       -- 2 common, 4 in the union
    -- three measurements tie for the fastest: any of them counts as "the fastest 1"
    near(1, metrics.precision_at_k({3, 2, 1, 4, 5, 6}, {1, 1, 1, 5, 6, 7}, {k = 1}))
    near(1 / 3, metrics.topk_overlap({3, 2, 1, 4, 5, 6}, {1, 1, 1, 5, 6, 7}, {k = 1}))
    -- a constant prediction: every row ties in P, so the overlap is |T|/n
    near(2 / 6, metrics.topk_overlap({0, 0, 0, 0, 0, 0}, t, {k = 2}))
  end)

  it("all() returns every metric", function()
    local rng = nf.Rng(1)
    local p, t = {}, {}
    for i = 1, 50 do t[i] = i; p[i] = i + rng:normal(0, 5) end
    local r = metrics.all(p, t, {k = 5})
    assert.equal(50, r.n)
    assert.equal(5, r.k)
    for _, name in ipairs{"spearman", "kendall", "pearson", "mae", "rmse", "mape", "acc10", "precision_at_k",
                          "topk_overlap"} do
      assert.equal("number", type(r[name]), name)
      assert.is_false(isnan(r[name]), name)
    end
    near(metrics.spearman(p, t), r.spearman, 0)
    near(metrics.precision_at_k(p, t, {k = 5}), r.precision_at_k, 0)
    assert.equal(10, metrics.all(p, t).k)
  end)

  it("raise on programmer errors, naming the argument", function()
    support.raises("metrics.spearman: sizes differ (3 predictions, 2 measurements)",
      metrics.spearman, {1, 2, 3}, {1, 2})
    support.raises("metrics.kendall: argument 2 entry 2 is not a number (nil); mark missing values with 0/0",
      metrics.kendall, {1, 2, 3}, {1, nil, 3})
    support.raises("metrics.pearson: argument 1 must be a Tensor or a table of numbers (got string)",
      metrics.pearson, "x", {1})
    support.raises("precision_at_k: k must be >= 1 (got 0)", metrics.precision_at_k, {1}, {1}, {k = 0})
    support.raises("metrics.topk_overlap: unknown option 'n' (allowed: k)", metrics.topk_overlap, {1}, {1}, {n = 1})
    support.raises("within: tolerance must be >= 0 (got -1)", metrics.within, {1}, {1}, {tol = -1})
    support.raises("metrics.all: unknown option 'tol' (allowed: k)", metrics.all, {1}, {1}, {tol = 1})
    support.raises("metrics.all: option 'k' must be an integer >= 1 (got 0)", metrics.all, {1}, {1}, {k = 0})
    local t = nf.Tensor.from{1, 2}
    t:free()
    support.raises("attempt to use a closed tensor", metrics.mae, t, {1, 2})
  end)

  it("scale: Kendall and Spearman on 15,625 pairs are fast", function()
    local rng = nf.Rng(3)
    local n = 15625
    local a, b = nf.Tensor.new(n), nf.Tensor.new(n)
    for i = 1, n do
      local v = rng:uniform()
      a:set(i, v); b:set(i, v + rng:normal(0, 0.1))
    end
    local t0 = os.clock()
    local tau = metrics.kendall(a, b)
    local rho = metrics.spearman(a, b)
    assert.is_true(os.clock() - t0 < 0.5)
    assert.is_true(tau > 0.6 and rho > tau)
  end)
end)
