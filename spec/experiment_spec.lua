local support = require "support"
local experiment = require "nasflat.experiment"
local source_mod = require "nasflat.source"
local G = require "nasflat.model_gnn"
local predictor = require "nasflat.predictor"
local metrics = require "nasflat.metrics"
local tasks = require "nasflat.tasks"
local nf = require "nasflat"

local DATA = support.data_dir()

-- sources are opened once (the synthetic zoo takes about a second, the real nb201 file less)
local cache = {}
local function source(data)
  if not cache[data] then cache[data] = assert(source_mod.open{data = data}) end
  return cache[data]
end

-- an ad-hoc zoo task with one target keeps the GNN runs to one pass over the 15,625 cells
local ZTASK = {name = "zt", space = "nb201", train = {"gpu_server_a_b1", "cpu_desktop_8c"}, test = {"gpu_server_b_b1"}}
local TINY = {epochs = 3, pretrain_samples = 32, transfer_epochs = 3, trials = 1, budgets = {10}}

local function tiny(extra)
  local o = {source = source("synthetic"), task = ZTASK}
  for k, v in pairs(TINY) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function in_unit(x) return type(x) == "number" and x >= -1 and x <= 1 end

describe("experiment.run hybrid", function()
  it("is the ridge itself when the ridge is its only component", function()
    local rec = assert(experiment.run(tiny{predictors = {"ridge", "hybrid"}, hybrid = {"ridge"}, budgets = {12}}))
    local r = rec.targets[1].budgets[1].trials[1]
    assert.near(r.ridge.spearman, r.hybrid.spearman, 1e-6)
    assert.same({ridge = 1}, r.hybrid.weights)
  end)

  it("weights ridges by cross-validation or equally, without a GNN", function()
    for _, mode in ipairs{"cv", "equal"} do
      local rec = assert(experiment.run(tiny{predictors = {"hybrid"}, hybrid = {"ridge", "phys"}, hybrid_weights = mode,
        hybrid_bags = 1}))
      local r = rec.targets[1].budgets[1].trials[1]
      assert.is_true(rec.timings.pretrain_s < 0.5)   -- no GNN, no source component: nothing pre-trained
      assert.near(1, r.hybrid.weights.ridge + r.hybrid.weights.phys, 1e-9)
      if mode == "equal" then assert.same({ridge = 0.5, phys = 0.5}, r.hybrid.weights) end
      assert.is_true(in_unit(r.hybrid.spearman))
    end
  end)

  it("fits the source component to source-device models: a target that is a source is ranked almost exactly", function()
    -- the target is one of the sources, so a ridge on the source models' predictions needs one column
    local task = {name = "zs", space = "nb201", train = {"gpu_server_a_b1", "cpu_desktop_8c"}, test = {"cpu_desktop_8c"}}
    local rec = assert(experiment.run(tiny{task = task, predictors = {"ridge", "hybrid"}, hybrid = {"source"},
      budgets = {12}, pretrain_samples = 256}))
    local r = rec.targets[1].budgets[1].trials[1]
    assert.same({source = 1}, r.hybrid.weights)
    assert.is_true(r.hybrid.spearman > 0.99, tostring(r.hybrid.spearman))
    assert.is_true(r.hybrid.spearman > r.ridge.spearman)
    -- the same target as a non-source: worse than the copy of itself
    local other = assert(experiment.run(tiny{predictors = {"hybrid"}, hybrid = {"source"}, budgets = {12},
      pretrain_samples = 256, task = {name = "zs2", space = "nb201", train = {"gpu_server_a_b1"},
      test = {"cpu_desktop_8c"}}}))
    assert.is_true(other.targets[1].budgets[1].trials[1].hybrid.spearman < r.hybrid.spearman)
  end)

  it("fits roof1 as a power law of the one roofline column that explains the samples", function()
    -- a device whose latency is exactly 1.3 * roof_16^0.7 (column 5 of the eager roof features)
    local src = source("synthetic")
    local R = src:features():get("roof"):totable()
    local ms, rows = {}, {}
    for i = 1, src.n do ms[i] = 1.3 * (1 + R[i][5]) ^ 0.7; rows[i] = i end
    src._ms.power_law, src._measured.power_law = nf.Tensor.from(ms), rows
    local task = {name = "zp", space = "nb201", train = {"gpu_server_a_b1"}, test = {"power_law"}}
    local rec = assert(experiment.run(tiny{task = task, predictors = {"ridge", "hybrid"}, hybrid = {"roof1", "ridge"},
      budgets = {12}, hybrid_bags = 1}))
    local r = rec.targets[1].budgets[1].trials[1]
    assert.is_true(r.hybrid.spearman > 0.9999, tostring(r.hybrid.spearman))
    assert.is_true(r.hybrid.weights.roof1 >= 0.8, tostring(r.hybrid.weights.roof1))
    assert.is_true(r.hybrid.mape < 1e-3, tostring(r.hybrid.mape))   -- the law itself, in milliseconds too
    assert.is_true(r.ridge.spearman < r.hybrid.spearman)
    src._ms.power_law, src._measured.power_law = nil, nil
  end)

  it("floor components fit a device whose every kernel has a minimum time; the plain roofline cannot", function()
    -- fbnet latency = 0.2 ms + 0.01 ms per unit of sum(max(MFLOPs, 16 MB, 16 x 0.1 MB)): column 29 of "floors"
    local src = assert(source_mod.open{data = "synthetic", space = "fbnet"})
    local F = src:features():get("floor")
    assert.same({src.n, 43}, F:shape())   -- fbnet: every layer is live, the eager columns only
    local R = F:totable()
    local ms, rows = {}, {}
    for i = 1, src.n do ms[i] = 0.2 + 0.01 * R[i][29]; rows[i] = i end
    src._ms.floor_law, src._measured.floor_law = nf.Tensor.from(ms), rows
    local task = {name = "zf", space = "fbnet", train = {src.devices[1]}, test = {"floor_law"}}
    local function run(comps)
      local rec = assert(experiment.run{source = src, task = task, predictors = {"hybrid"}, hybrid = comps,
        budgets = {20}, trials = 1, hybrid_bags = 1})
      return rec.targets[1].budgets[1].trials[1].hybrid
    end
    local floor = run{"floor_ms"}
    assert.is_true(floor.spearman > 0.999, tostring(floor.spearman))
    -- the plain roofline (no floor) in milliseconds, on the same 20 samples, cannot
    local both = run{"floor_ms", "ridge_ms"}
    assert.is_true(both.weights.floor_ms >= 0.6, tostring(both.weights.floor_ms))
    local sample_rows = assert(experiment.run{source = src, task = task, predictors = {"hybrid"},
      hybrid = {"floor_ms"}, budgets = {20}, trials = 1, hybrid_bags = 1}).targets[1].budgets[1].trials[1].rows
    local archs = {}
    for i, r in ipairs(sample_rows) do archs[i] = src.arch_strings[r] end
    local plain = assert(require("nasflat.model").fit{kind = "ridge", features = "roof", link = "identity",
      space = "fbnet", samples = {archs = archs, ms = src:ms("floor_law"):index(sample_rows)}})
    local pm = plain:predict(src.arch_strings)
    local roof_rho = metrics.spearman(pm, src:ms("floor_law"))
    assert.is_true(roof_rho < floor.spearman - 0.005, floor.spearman .. " vs " .. roof_rho)
    -- roofw: the weights variant, a different matrix of the same width as roof
    local W, P = src:features():get("roofw"), src:features():get("roof")
    assert.same(P:shape(), W:shape())
    assert.is_true(W:sum() > P:sum())
  end)

  it("bags the weights over subsets of the samples, refitting or over one CV's out-of-fold predictions", function()
    local comps = {"ridge", "floor", "floor_ms", "phys"}
    local function weights(extra)
      local o = tiny{predictors = {"hybrid"}, hybrid = comps, budgets = {16}}
      for k, v in pairs(extra) do o[k] = v end
      return assert(experiment.run(o)).targets[1].budgets[1].trials[1].hybrid
    end
    local plain = weights{hybrid_bags = 1}
    for _, how in ipairs{"refit", "oof"} do
      local h = weights{hybrid_bags = 7, hybrid_bagging = how}
      local sum, off_grid = 0, false
      for _, c in ipairs(comps) do
        local w = h.weights[c]
        assert.is_true(w >= 0 and w <= 1, c)
        sum = sum + w
        -- a mean of 7 grid points (step 0.2) is a multiple of 0.2/7; the plain CV's are multiples of 0.2
        assert.near(0, (w * 35) - math.floor(w * 35 + 0.5), 1e-9)
        if math.abs(w * 5 - math.floor(w * 5 + 0.5)) > 1e-9 then off_grid = true end
      end
      assert.near(1, sum, 1e-9)
      assert.is_true(off_grid, how .. ": the bags agree on every weight (no averaging seen)")
      assert.same(h, weights{hybrid_bags = 7, hybrid_bagging = how})   -- deterministic
    end
    for _, c in ipairs(comps) do
      local w = plain.weights[c]
      assert.near(0, w * 5 - math.floor(w * 5 + 0.5), 1e-9)
    end
  end)

  it("rejects bad hybrid options", function()
    support.raises("unknown hybrid component 'gnn' (known: nasflat, ridge, phys, phys_live, ridge_ms, phys_ms, " ..
      "phys_live_ms, roofw, roofw_ms, floor, floor_ms, roof1, source)", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid = {"gnn"}}) end)
    support.raises("option 'components' must be a non-empty list", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid = {}}) end)
    support.raises("option 'weights' must be \"cv\" or \"equal\" (got best)", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid_weights = "best"}) end)
    support.raises("option 'folds' must be an integer >= 2", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid_folds = 1}) end)
    support.raises("option 'step' must be a number in (0, 1]", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid_step = 0}) end)
    support.raises("experiment.run: unknown option 'hybrid_repeats'", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid_repeats = 1}) end)
    support.raises("option 'bags' must be an integer >= 1", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid_bags = 1.5}) end)
    support.raises("option 'bagging' must be \"refit\" or \"oof\" (got x)", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid_bagging = "x"}) end)
    support.raises("option 'bag_fraction' must be a number in (0, 1)", function()
      experiment.run(tiny{predictors = {"hybrid"}, hybrid_bag_fraction = 1}) end)
  end)
end)

describe("source.open", function()
  it("opens the synthetic zoo as a source", function()
    local src = source("synthetic")
    assert.is_true(src.synthetic)
    assert.equal("nb201", src.space_name)
    assert.equal(15625, src.n)
    assert.equal(13, #src.devices)
    assert.equal(15625, #src.arch_strings)
    assert.is_nil(src.tasks_file)
    assert.equal("synthetic", src.info.data)
    assert.equal(15625, #src:measured("gpu_server_a_b1"))
    -- phone classes do not run the 341 cells without an input->output path
    assert.equal(15625 - 341, #src:measured("cpu_mobile_mid"))
  end)

  it("returns nil and a message for a missing data directory, raises on bad options", function()
    local src, err = source_mod.open{data = "/nonexistent-nasflat"}
    assert.is_nil(src)
    assert.equal("/nonexistent-nasflat/nb201_latency.csv: cannot open: No such file or directory", err)
    support.raises("source.open: space must be 'nb201' or 'fbnet' (got 'darts')",
      source_mod.open, {data = "synthetic", space = "darts"})
    support.raises("source.open: unknown option 'dir'", source_mod.open, {dir = "x"})
  end)

  it("names the line of a malformed architecture in a data file (a failure of the world, not an error)", function()
    local dir = support.tmpdir()
    local f = assert(io.open(dir .. "/nb201_latency.csv", "w"))
    f:write("arch_index,arch_string,a\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n",
      "1,|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|,2\n")
    f:close()
    local src, err = source_mod.open{data = dir}
    assert.is_nil(src)
    assert.equal(dir .. "/nb201_latency.csv:3: arch_string (field 2): nb201 arch string: unknown op 'bogus' " ..
      "(expected none, skip_connect, nor_conv_1x1, nor_conv_3x3 or avg_pool_3x3) at column 2 (edge 1, 0->1)", err)
    os.execute("rm -r '" .. dir .. "'")
  end)

  it("opens the real data with its task file and checksums", function()
    if not DATA then return pending(support.NO_DATA) end
    local src = source(DATA)
    assert.is_false(not not src.synthetic)
    assert.equal(15625, src.n)
    assert.equal(40, #src.devices)
    assert.equal(DATA .. "/nasflat_tasks.json", src.tasks_file)
    assert.matches("^%x+$", src.info.files["nb201_latency.csv"].crc32)
    assert.is_true(src.info.files["nb201_latency.csv"].bytes > 1e6)
  end)
end)

describe("graph-network and source helpers", function()
  local I = {minmax = G._minmax, calibrate = G._calibrate, standardize = source_mod.standardize}

  it("min-max normalises the k samples over themselves", function()
    assert.same({0, 0.5, 1, 0.25}, I.minmax(nf.Tensor.from{2, 4, 6, 3}):totable())
    assert.same({0.5, 0.5}, I.minmax(nf.Tensor.from{7, 7}):totable())
  end)

  it("calibrates log(ms) = a + b * score by least squares", function()
    local s, ms = nf.Tensor.from{-1, 0, 0.5, 2}, nf.Tensor.new(4)
    for i = 1, 4 do ms:set(i, math.exp(0.3 - 1.7 * s:get(i))) end
    local a, b = I.calibrate(s, ms)
    assert.near(0.3, a, 1e-6) -- tensors hold float32
    assert.near(-1.7, b, 1e-6)
    -- constant scores: no slope, the mean log latency
    a, b = I.calibrate(nf.Tensor.from{1, 1}, nf.Tensor.from{math.exp(1), math.exp(3)})
    assert.equal(0, b)
    assert.near(2, a, 1e-6)
  end)

  it("standardises columns, or applies given statistics", function()
    local t = nf.Tensor.from{{1, 5}, {3, 5}}
    local z, means, sds = I.standardize(t)
    assert.same({{-1, 0}, {1, 0}}, z:totable())
    assert.same({2, 5}, means)
    assert.same({1, 0}, sds)
    assert.same({{-1, 0}, {3, 0}}, I.standardize(nf.Tensor.from{{1, 9}, {5, 9}}, means, sds):totable())
  end)
end)

describe("experiment.run", function()
  it("raises on programmer errors", function()
    support.raises("experiment.run: unknown predictor 'gnn' (known: " ..
      table.concat(require("nasflat.model").KIND_NAMES, ", ") .. ")",
      experiment.run, {source = source("synthetic"), task = ZTASK, predictors = {"gnn"}})
    support.raises("experiment.run: unknown option 'budget'", experiment.run,
      {source = source("synthetic"), task = ZTASK, budget = 20})
    support.raises("experiment.run: option 'task' is required", experiment.run, {source = source("synthetic")})
  end)

  it("scores the ridge baseline per target, budget and trial, reproducibly", function()
    local src = source("synthetic")
    local task = {name = "zr", space = "nb201", train = {"gpu_server_a_b1"}, test = {"gpu_server_b_b1", "cpu_mobile_mid"}}
    local function run(seed)
      return assert(experiment.run{source = src, task = task, predictors = {"ridge"}, budgets = {5, 20}, trials = 2,
        seed = seed})
    end
    local rec = run(7)
    assert.equal("zr", rec.task)
    assert.equal("nb201", rec.space)
    assert.same(task.train, rec.train)
    assert.equal(2, #rec.targets)
    assert.is_nil(rec.config.source)
    assert.same({5, 20}, rec.config.budgets)
    for ti, t in ipairs(rec.targets) do
      assert.equal(task.test[ti], t.device)
      assert.equal(#src:measured(t.device), t.n_measured)
      local measured = {}
      for _, r in ipairs(src:measured(t.device)) do measured[r] = true end
      assert.equal(2, #t.budgets)
      for bi, b in ipairs(t.budgets) do
        local k = ({5, 20})[bi]
        assert.equal(k, b.budget)
        assert.equal(2, #b.trials)
        assert.not_equal(b.trials[1].seed, b.trials[2].seed)
        local sp = {}
        for _, run1 in ipairs(b.trials) do
          assert.is_nil(run1.nasflat)
          assert.equal(k, #run1.rows)
          local seen = {}
          for _, r in ipairs(run1.rows) do
            assert.is_true(measured[r], "sampled an unmeasured row")
            assert.is_nil(seen[r], "sampled a row twice")
            seen[r] = true
          end
          assert.is_true(in_unit(run1.ridge.spearman) and in_unit(run1.ridge.kendall))
          assert.is_true(run1.ridge.mae_ms > 0 and run1.ridge.mape > 0)
          sp[#sp + 1] = run1.ridge.spearman
        end
        assert.near((sp[1] + sp[2]) / 2, b.ridge.spearman, 1e-12)
        assert.near(math.abs(sp[1] - sp[2]) / math.sqrt(2), b.ridge.spearman_std, 1e-12)
      end
    end
    for bi, k in ipairs{5, 20} do
      local m = (rec.targets[1].budgets[bi].ridge.spearman + rec.targets[2].budgets[bi].ridge.spearman) / 2
      assert.near(m, rec.mean.ridge[tostring(k)], 1e-12)
    end
    -- same seed, same samples and numbers; another seed, other samples
    local again = run(7)
    assert.same(rec.targets[2].budgets[2].trials[1].rows, again.targets[2].budgets[2].trials[1].rows)
    assert.equal(rec.mean.ridge["20"], again.mean.ridge["20"])
    assert.are_not.same(rec.targets[2].budgets[2].trials[1].rows, run(8).targets[2].budgets[2].trials[1].rows)
  end)

  it("pre-trains, transfers, saves and reuses the GNN; the hybrid averages it with ridges", function()
    local path = os.tmpname() .. ".nfm"
    local comps = {"nasflat", "ridge", "phys", "floor_ms", "source"}
    local rec = assert(experiment.run(tiny{predictors = {"nasflat", "hybrid"}, hybrid = comps, save_pretrained = path}))
    assert.equal(path, rec.pretrained_model)
    assert.is_true(rec.timings.pretrain_s > 0)
    local run1 = rec.targets[1].budgets[1].trials[1]
    assert.is_nil(run1.ridge)
    assert.is_true(in_unit(run1.nasflat.spearman) and in_unit(run1.hybrid.spearman))
    assert.is_true(run1.nasflat.init_device == "gpu_server_a_b1" or run1.nasflat.init_device == "cpu_desktop_8c")
    local sum = 0
    for _, c in ipairs(comps) do
      local w = run1.hybrid.weights[c]
      assert.is_true(w >= 0 and w <= 1, c)
      sum = sum + w
    end
    assert.near(1, sum, 1e-9)
    assert.is_true(run1.hybrid.cv_mse >= 0)
    assert.is_number(rec.mean.hybrid["10"])
    -- the saved model: source devices, the space, and how to rebuild its supplementary input
    local model = assert(predictor.load(path))
    assert.same(ZTASK.train, model:devices())
    local meta = model:meta()
    assert.equal(0, meta.space_fbnet)
    assert.equal(1, meta.z_struct)
    assert.equal(8, model:config().z_dim)
    -- model_graphs rebuilds exactly the z the run trained on
    local src = source("synthetic")
    local rows = {1, 777, 15625}
    local archs = {}
    for i, r in ipairs(rows) do archs[i] = src.arch_strings[r] end
    local g = assert(G.graphs(model, src.space, archs))
    local want = src:encoding("struct"):index(rows):totable()
    local got = g.z:totable()
    for i = 1, #rows do
      for j = 1, 8 do assert.near(want[i][j], got[i][j], 1e-9) end
    end
    assert.same(src:graphs().ops:index(rows):totable(), g.ops:totable())
    -- reusing the model gives the same transfer results as training it
    local again = assert(experiment.run(tiny{predictors = {"nasflat"}, pretrained = model}))
    assert.equal(run1.nasflat.spearman, again.targets[1].budgets[1].trials[1].nasflat.spearman)
    assert.same(run1.rows, again.targets[1].budgets[1].trials[1].rows)
    model:free()
    os.remove(path)
  end)

  it("keeps pre-trained networks in a cache directory by their pre-training key", function()
    local dir = support.tmpdir() .. "/models"   -- made on first use
    local first = assert(experiment.run(tiny{predictors = {"nasflat"}, cache_dir = dir}))
    assert.equal("trained", first.pretrained_cache)
    assert.matches("/models/pretrained%-zt%-%x+%.nfm$", first.pretrained_model)
    local again = assert(experiment.run(tiny{predictors = {"nasflat"}, cache_dir = dir}))
    assert.equal("loaded", again.pretrained_cache)
    assert.equal(first.pretrained_model, again.pretrained_model)
    assert.is_true(again.timings.pretrain_s < first.timings.pretrain_s)
    assert.equal(first.targets[1].budgets[1].trials[1].nasflat.spearman,
      again.targets[1].budgets[1].trials[1].nasflat.spearman)
    -- the transfer options are not part of the key; the pre-training options are
    local other = assert(experiment.run(tiny{predictors = {"nasflat"}, cache_dir = dir, transfer_epochs = 2}))
    assert.equal("loaded", other.pretrained_cache)
    local longer = assert(experiment.run(tiny{predictors = {"nasflat"}, cache_dir = dir, epochs = 4}))
    assert.equal("trained", longer.pretrained_cache)
    assert.are_not.equal(first.pretrained_model, longer.pretrained_model)
    -- a damaged file is an error naming it, not a silent retraining
    local f = assert(io.open(first.pretrained_model, "wb"))
    f:write("not a model")
    f:close()
    local rec, err = experiment.run(tiny{predictors = {"nasflat"}, cache_dir = dir})
    assert.is_nil(rec)
    assert.truthy(err:find(first.pretrained_model, 1, true), err)
    support.raises("experiment.run: option 'cache_dir' must be a directory path (string)", function()
      experiment.run(tiny{cache_dir = 3})
    end)
    os.execute("rm -r " .. support.quote(dir:match("^(.*)/models$")))
  end)

  it("takes only a supplementary input it can rebuild for any architecture", function()
    support.raises("model_gnn: option 'supplementary' must be \"auto\", \"none\" or nasflat.features names " ..
      "joined by '+' such as \"struct\" (got zcp)", function()
      experiment.run(tiny{predictors = {"nasflat"}, supplementary = "zcp"})
    end)
  end)

  it("refuses a pre-trained model of another space or supplementary width", function()
    local src = source("synthetic")
    local fb = predictor.new(nf.space.get("fbnet"):predictor_options{devices = {"gpu_server_a_b1"}, z_dim = 8})
    local rec, err = experiment.run(tiny{predictors = {"nasflat"}, pretrained = fb})
    assert.is_nil(rec)
    assert.equal("pretrained model: it is for fbnet, the data is nb201", err)
    local noz = predictor.new(src.space:predictor_options{devices = {"gpu_server_a_b1"}})
    rec, err = experiment.run(tiny{predictors = {"nasflat"}, pretrained = noz})
    assert.is_nil(rec)
    assert.equal("pretrained model: its supplementary input has width 0, this run's has 8", err)
    -- a model with a z but no record of how it was built cannot score new architectures
    local bare = predictor.new(src.space:predictor_options{devices = {"gpu_server_a_b1"}, z_dim = 8})
    local g, gerr = G.graphs(bare, src.space, {src.arch_strings[1]})
    assert.is_nil(g)
    assert.matches("takes a supplementary input of width 8 but does not record how it was built", gerr)
    assert.equal(8, select(1, G.graphs(noz, src.space, {src.arch_strings[1]})).ops:size(2))
    fb:free()
    noz:free()
    bare:free()
  end)
end)

describe("experiment on the real data", function()
  -- Ridge, NQ (sources 1080ti_1/_32, targets titan_rtx_256 and gold_6226), k = 20, 3 trials, seed 1.
  -- Measured: 0.974 at seed 1 with one trial; over seeds 1..30 with one trial the mean over the two targets
  -- ranges 0.946..0.990 (mean 0.977); gold_6226 alone dips to 0.906. The floor 0.93 sits below every
  -- measured value by more than the trial-to-trial spread, and well above the best single structural
  -- feature (the 3x3-conv count: Spearman 0.950 and 0.740, mean 0.845), so a ridge that learnt nothing
  -- beyond counting convolutions fails it. Each target must also beat that per-target baseline, computed here.
  it("ridge on the quick split NQ with k = 20 clears 0.93 and beats every single structural feature", function()
    if not DATA then return pending(support.NO_DATA) end
    local src = source(DATA)
    local task = assert(tasks.resolve{name = "NQ", devices = src.devices, tasks_file = src.tasks_file})
    local rec = assert(experiment.run{source = src, task = task, predictors = {"ridge"}, budgets = {20}, trials = 3})
    assert.is_true(rec.mean.ridge["20"] > 0.93, "mean Spearman " .. rec.mean.ridge["20"])
    local F = src:features():get("struct")
    for _, t in ipairs(rec.targets) do
      local m = src:measured(t.device)
      local truth = src:ms(t.device):index(m)
      local cols = F:index(m):totable()
      local best = -1
      for j = 1, F:size(2) do
        local col = nf.Tensor.new(#m)
        for i = 1, #m do col:set(i, cols[i][j]) end
        local rho = math.abs(metrics.spearman(col, truth))
        if rho == rho and rho > best then best = rho end
      end
      assert.is_true(best > 0.7, t.device .. " best single feature " .. best) -- the baseline is not vacuous
      assert.is_true(t.budgets[1].ridge.spearman > best,
        string.format("%s: ridge %.3f vs best single feature %.3f", t.device, t.budgets[1].ridge.spearman, best))
    end
  end)
end)
