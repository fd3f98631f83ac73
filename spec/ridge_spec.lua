local nf = require "nasflat"
local ridge = require "nasflat.ridge"
local metrics = require "nasflat.metrics"
local support = require "support"

local stats = nf.core.stats
local NaN = 0 / 0

local function near(expected, got, tol, what)
  assert(math.abs(expected - got) <= tol,
    string.format("%s: expected %.12g, got %.12g", what or "value", expected, got))
end

-- n×F features with a known log-linear latency law, plus optional noise in log space.
local function synthetic(seed, n, F, w, b, noise)
  local rng = nf.Rng(seed)
  local X, y = nf.Tensor.new(n, F), {}
  for i = 1, n do
    local s = b
    for j = 1, F do
      local v = rng:uniform(0, 6)
      X:set(i, j, v)
      s = s + w[j] * v
    end
    y[i] = math.exp(s + (noise or 0) * rng:normal())
  end
  return X, y
end

describe("ridge.fit", function()
  it("fits milliseconds themselves with link = 'identity' (an additive cost law)", function()
    local rng = nf.Rng(3)
    local X, y = nf.Tensor.new(25, 3), {}
    for i = 1, 25 do
      local s = 2
      for j = 1, 3 do
        local v = rng:uniform(0, 5)
        X:set(i, j, v)
        s = s + ({1.5, 0.25, 0}) [j] * v
      end
      y[i] = s
    end
    local model = ridge.fit{features = X, targets_ms = y, link = "identity"}
    assert.equal("identity", model.link)
    near(1.5, model.coef[1], 1e-3, "coef 1")
    near(0.25, model.coef[2], 1e-3, "coef 2")
    near(2, model.intercept, 1e-3, "intercept")
    local p = model:predict(X)
    for i = 1, 25 do near(y[i], p:get(i), 1e-3, "prediction " .. i) end
    -- the log link cannot represent this law exactly
    local logm = ridge.fit{features = X, targets_ms = y}
    assert.equal("log", logm.link)
    assert.is_true(metrics.rmse(logm:predict(X), y) > 1e-2)
    support.raises("ridge.fit: option 'link' must be \"log\" or \"identity\" (got logit)", function()
      ridge.fit{features = X, targets_ms = y, link = "logit"} end)
  end)

  it("recovers a known log-linear law and predicts milliseconds", function()
    local w = {0.3, -0.2, 0.1, 0}
    local X, y = synthetic(1, 30, 4, w, 0.5)
    local model = ridge.fit{features = X, targets_ms = y}
    assert.equal(ridge.DEFAULT_LAMBDAS[1], model.lambda) -- exact law: the least shrinkage wins LOO
    assert.equal(29, #model.lambdas)
    near(1e-4, model.lambdas[1], 1e-16, "smallest default lambda")
    near(1e3, model.lambdas[29], 1e-9, "largest default lambda")
    for j = 1, 4 do near(w[j], model.coef[j], 1e-4, "coef " .. j) end
    near(0.5, model.intercept, 1e-4, "intercept")
    local Xt, yt = synthetic(2, 50, 4, w, 0.5)
    local pred = model:predict(Xt)
    assert.equal(50, pred:size())
    for i = 1, 50 do near(yt[i], pred:get(i), 1e-3 * yt[i], "prediction " .. i) end
    assert.equal(30, model.n)
    assert.equal("nasflat.RidgeModel(4 features, 30 samples, lambda=0.0001)", tostring(model))
  end)

  it("shrinks more when the data are noisy, and LOO picks an interior lambda", function()
    local X, y = synthetic(3, 20, 8, {0.05, 0, 0, 0, 0, 0, 0, 0}, 1, 0.3)
    local model = ridge.fit{features = X, targets_ms = y}
    assert.is_true(model.lambda > 1e-4, "lambda " .. model.lambda)
    local best = math.huge
    for _, e in ipairs(model.loo_mse) do best = math.min(best, e) end
    for i, l in ipairs(model.lambdas) do
      if l == model.lambda then assert.equal(best, model.loo_mse[i]) end
    end
  end)

  it("leave-one-out by the hat matrix equals brute-force refitting without each row", function()
    local X, y = synthetic(4, 15, 3, {0.2, 0.1, -0.3}, 0.2, 0.2)
    -- standardise with the statistics of all rows first: the design is then fixed across folds
    local n, F = 15, 3
    local Z = nf.Tensor.new(n, F)
    for j = 1, F do
      local m, s = 0, 0
      for i = 1, n do m = m + X:get(i, j) end
      m = m / n
      for i = 1, n do s = s + (X:get(i, j) - m) ^ 2 end
      s = math.sqrt(s / n)
      for i = 1, n do Z:set(i, j, (X:get(i, j) - m) / s) end
    end
    for _, lambda in ipairs{1e-3, 0.1, 1, 10, 100} do
      local model = ridge.fit{features = Z, targets_ms = y, lambdas = {lambda}, standardize = false}
      local sse = 0
      for h = 1, n do
        local rows = {}
        for i = 1, n do if i ~= h then rows[#rows + 1] = i end end
        local ys = {}
        for k, r in ipairs(rows) do ys[k] = y[r] end
        local fold = ridge.fit{features = stats.gather_rows(Z, rows), targets_ms = ys, lambdas = {lambda},
          standardize = false}
        local e = math.log(y[h]) - math.log(fold:predict(stats.gather_rows(Z, {h})):get(1))
        sse = sse + e * e
      end
      near(sse / n, model.loo_mse[1], 1e-5 * sse / n, "LOO at lambda " .. lambda)
      -- already standardised features: standardize = true changes nothing
      local again = ridge.fit{features = Z, targets_ms = y, lambdas = {lambda}}
      near(model.loo_mse[1], again.loo_mse[1], 1e-6 * model.loo_mse[1], "standardize on standardised data")
    end
  end)

  it("leaves out rows whose target is NaN", function()
    local X, y = synthetic(5, 12, 2, {0.3, 0.1}, 0, 0.1)
    local y2 = {}
    for i = 1, 12 do y2[i] = y[i] end
    y2[3], y2[7] = NaN, NaN
    local model = ridge.fit{features = X, targets_ms = nf.Tensor.from(y2)}
    assert.equal(10, model.n)
    local rows, ys = {}, {}
    for i = 1, 12 do if i ~= 3 and i ~= 7 then rows[#rows + 1] = i; ys[#ys + 1] = y[i] end end
    local ref = ridge.fit{features = stats.gather_rows(X, rows), targets_ms = ys}
    assert.equal(ref.lambda, model.lambda)
    near(ref.coef[1], model.coef[1], 1e-6, "coef") -- the Tensor rounds the targets to float32
  end)

  it("raises on programmer errors, naming the argument", function()
    local X = nf.Tensor.new(3, 2)
    support.raises("ridge.fit: unknown option 'lambda' (allowed: features, lambdas, link, standardize, targets_ms)",
      ridge.fit, {features = X, targets_ms = {1, 2, 3}, lambda = 1})
    support.raises("ridge.fit: option 'targets_ms' is required", ridge.fit, {features = X})
    support.raises("ridge.fit: 3 feature rows but 2 targets", ridge.fit, {features = X, targets_ms = {1, 2}})
    support.raises("ridge.fit: target 2 is not a positive latency (0 ms)", ridge.fit,
      {features = X, targets_ms = {1, 0, 3}})
    support.raises("ridge.fit: needs at least 2 measured targets (got 1)", ridge.fit,
      {features = X, targets_ms = {1, NaN, NaN}})
    support.raises("ridge.fit: option 'features' must be a 2-D Tensor", ridge.fit,
      {features = nf.Tensor.new(3), targets_ms = {1, 2, 3}})
    support.raises("ridge.fit: lambdas entry 2 must be a finite number >= 0 (got -1)", ridge.fit,
      {features = X, targets_ms = {1, 2, 3}, lambdas = {1, -1}})
    local model = ridge.fit{features = nf.Tensor.from{{1, 2}, {2, 1}, {3, 5}}, targets_ms = {1, 2, 3}}
    support.raises("ridge:predict: the model has 2 features, the input 3 columns", model.predict, model,
      nf.Tensor.new(4, 3))
  end)
end)

-- Latency CSV -> arch strings (list), per-device columns (name -> list of ms or NaN).
local function read_latency_csv(path)
  local f = assert(io.open(path, "r"))
  local header = f:read("l")
  local names = {}
  for name in header:gmatch("[^,]+") do names[#names + 1] = name end
  local archs, cols = {}, {}
  for j = 3, #names do cols[names[j]] = {} end
  for line in f:lines() do
    local fields, pos = {}, 1
    while true do
      local comma = line:find(",", pos, true)
      fields[#fields + 1] = line:sub(pos, (comma or 0) - 1)
      if not comma then break end
      pos = comma + 1
    end
    local r = #archs + 1
    archs[r] = fields[2]
    for j = 3, #names do cols[names[j]][r] = tonumber(fields[j]) or NaN end
  end
  f:close()
  return archs, cols
end

describe("structural ridge on the real data (METHOD §10)", function()
  it("task ND on NB201, 20 random samples per target: mean Spearman near 0.92", function()
    local DATA = support.data_dir()
    if not DATA then return pending(support.NO_DATA) end
    local ok, space_mod = pcall(require, "nasflat.space")
    if not ok or type(space_mod.get) ~= "function" then return pending("nasflat.space is not available yet") end
    local space = space_mod.get("nb201")
    if type(space.struct_features) ~= "function" then return pending("space:struct_features is not available yet") end
    local cjson = require "cjson"
    local f = assert(io.open(DATA .. "/nasflat_tasks.json", "r"))
    local tasks = cjson.decode(f:read("a"))
    f:close()
    local targets = tasks.tasks.nb201["0"].test
    local archs, cols = read_latency_csv(DATA .. "/nb201_latency.csv")
    assert.equal(15625, #archs)
    local feats = space:struct_features(archs)
    assert.same({15625, 8}, feats:shape())
    local sum, count, draws = 0, 0, 5
    for _, dev in ipairs(targets) do
      local col = assert(cols[dev], "device " .. dev .. " not in the CSV")
      local measured, truth = {}, {}
      for r = 1, #col do
        if col[r] == col[r] then measured[#measured + 1] = r; truth[#truth + 1] = col[r] end
      end
      local Xall = stats.gather_rows(feats, measured)
      for d = 1, draws do
        local rng = nf.Rng(nf.derive_seed(d, #measured))
        local rows, ys = {}, {}
        for k, j in ipairs(rng:sample(#measured, 20)) do rows[k] = measured[j]; ys[k] = col[measured[j]] end
        local model = ridge.fit{features = stats.gather_rows(feats, rows), targets_ms = ys}
        sum = sum + metrics.spearman(model:predict(Xall), truth)
        count = count + 1
      end
    end
    local mean = sum / count
    print(string.format("\nstructural ridge, ND, 20 samples, %d devices x %d draws: mean Spearman %.3f",
      #targets, draws, mean))
    assert.is_true(mean > 0.88, string.format("mean Spearman %.3f", mean))
    assert.is_true(mean < 0.97, string.format("mean Spearman %.3f is implausibly high", mean))
  end)
end)

describe("stats.simplex_search (the hybrid's weight grid)", function()
  local S = stats

  it("finds the mix on the grid that reproduces the target, after trying equal weights", function()
    local a, b, c, y = {}, {}, {}, {}
    for i = 1, 8 do
      a[i], b[i], c[i] = i, (i * 7) % 5, (i * 3) % 4 - 1.5
      y[i] = 0.2 * a[i] + 0.8 * c[i]
    end
    local w, sse = S.simplex_search({a, b, c}, y, {1, 2, 3, 4, 5, 6, 7, 8}, 5)
    assert.near(0.2, w[1], 1e-12)
    assert.near(0, w[2], 1e-12)
    assert.near(0.8, w[3], 1e-12)
    assert.near(0, sse, 1e-18)
    -- identical predictors tie everywhere: the equal weights tried first are kept
    local same = S.simplex_search({y, y}, y, {2, 4}, 10)
    assert.same({0.5, 0.5}, same)
  end)

  it("raises on arguments that do not fit together", function()
    local y = {1, 2, 3}
    support.raises("idx entry 1 (4.0) is not a position in 1..3", function()
      S.simplex_search({y}, y, {4}, 5) end)
    support.raises("prediction list 2 has 2 values, y has 3", function()
      S.simplex_search({y, {1, 2}}, y, {1}, 5) end)
    support.raises("steps must be in 1..1000 (got 0)", function() S.simplex_search({y}, y, {1}, 0) end)
    support.raises("idx is empty", function() S.simplex_search({y}, y, {}, 5) end)
    support.raises("needs 1..64 prediction lists (got 0)", function() S.simplex_search({}, y, {1}, 5) end)
  end)
end)
