-- nasflat.study, `nasflat study` and examples/study.lua: a tiny study on the synthetic zoo (task ZD: 7 sources, 5 targets; one
-- pre-training epoch on 16 architectures per source, a small model, one fine-tuning epoch, one trial): a 2-setting
-- sampler axis and a 2-budget curve. Most of the time is the scoring pass over the 15,625 NB201 cells per target.
local support = require "support"
local cjson = require "cjson"
local study = require "nasflat.study"

local DATA = support.data_dir()

local quote = support.quote

-- the base samples with kmeancosine on struct, one of the sampler axis's two settings, so that setting is the base
local TINY_BASE = {budgets = {5}, transfer_epochs = 1, sampler = "kmeancosine", encoding = "struct",
  model = {hidden = 8, head = {8}, z_hidden = {8}, z_out = 8}}
local function tiny(extra)
  local o = {tasks = {"ZD"}, trials = 1, epochs = 1, pretrain_samples = 16, base = TINY_BASE,
    samplers = {"random", "kmeancosine"}, encodings = {"struct"}, budgets = {5, 10}}
  for k, v in pairs(extra) do o[k] = v end
  return o
end

-- the mean over ZD's targets of one predictor's Spearman, straight from the experiment record
local function target_mean(rec, bi, p)
  local s = 0
  for _, e in ipairs(rec.targets) do s = s + e.budgets[bi].trials[1][p].spearman end
  return s / #rec.targets
end

local function labels(ax)
  local out = {}
  for i, r in ipairs(ax.rows) do out[i] = r.label end
  return out
end

local zoo_src
local function source()
  zoo_src = zoo_src or assert(require("nasflat.source").open{data = "synthetic"})
  return zoo_src
end

describe("study.run", function()
  local first, second, tables

  it("sweeps the sampler axis and the budget curve, pre-training once", function()
    first = assert(study.run(tiny{data = "synthetic", axes = {"sampler_encoding", "budget"}}))
    assert.same({"ZD"}, first.tasks)
    assert.equal(2, #first.axes)
    local sampler, budget = first.axes[1], first.axes[2]
    assert.equal("sampler_encoding", sampler.name)
    assert.equal("budget", budget.name)
    assert.same({"random", "structural ridge (random samples)", "kmeancosine on struct",
      "structural ridge (kmeancosine/struct samples)"}, labels(sampler))
    assert.same({"nasflat GNN, k = 5", "structural ridge, k = 5", "nasflat GNN, k = 10", "structural ridge, k = 10"},
      labels(budget))
    -- one pre-training for the task; every transfer-only setting reuses it
    assert.same({trained = 1, reused = 2, loaded = 0}, first.pretraining)
    assert.same({trained = 1, reused = 1, loaded = 0}, sampler.pretraining)
    assert.same({trained = 0, reused = 1, loaded = 0}, budget.pretraining)
    assert.equal(0, first.results_reused)
    assert.equal(1, #first.pretrained)
    assert.same({"sampler_encoding:random", "sampler_encoding:kmeancosine/struct", "budget:curve"},
      first.pretrained[1].used_by)
    assert.equal("trained", sampler.settings[1].tasks.ZD.pretrained)
    assert.equal("reused", sampler.settings[2].tasks.ZD.pretrained)
    assert.is_true(sampler.wall_s > 0 and budget.wall_s > 0)
    -- the cells are the target means of the records
    local rec = sampler.settings[1].tasks.ZD.record
    assert.near(target_mean(rec, 1, "nasflat"), sampler.rows[1].cells.ZD.mean, 1e-12)
    assert.near(target_mean(rec, 1, "ridge"), sampler.rows[2].cells.ZD.mean, 1e-12)
    assert.equal(0, sampler.rows[1].cells.ZD.std)
    local curve = budget.settings[1].tasks.ZD.record
    assert.same({5, 10}, curve.config.budgets)
    assert.near(target_mean(curve, 2, "nasflat"), budget.rows[3].cells.ZD.mean, 1e-12)
    assert.near(target_mean(curve, 2, "ridge"), budget.rows[4].cells.ZD.mean, 1e-12)
    -- the same samples and the same pre-trained model give the same numbers in two axes: k = 5 of the curve is
    -- the base setting, kmeancosine on struct
    assert.equal(sampler.rows[3].cells.ZD.mean, budget.rows[1].cells.ZD.mean)
    assert.equal(sampler.rows[4].cells.ZD.mean, budget.rows[2].cells.ZD.mean)
    for _, r in ipairs(sampler.rows) do assert.is_true(r.cells.ZD.mean > -1 and r.cells.ZD.mean <= 1) end
  end)

  it("prints one Markdown table per axis", function()
    assert.is_table(first, "needs the first test")
    tables = study.tables(first)
    local ax = first.axes[1]
    local lines = {}
    for line in ax.table:gmatch("[^\n]*") do lines[#lines + 1] = line end
    assert.matches("^### sampler_encoding — transfer sampler × encoding; pre%-trainings: 1 trained, 1 reused, " ..
      "0 loaded; 0 results reused; %d+ s$", lines[1])
    assert.equal("| setting | ZD | mean |", lines[3])
    assert.equal("|---|---|---|", lines[4])
    local v = string.format("%.3f ± 0.000", ax.rows[1].cells.ZD.mean)
    assert.equal("| random | " .. v .. " | " .. v .. " |", lines[5])
    assert.matches("^| structural ridge %(random samples%) | %-?%d%.%d%d%d ± 0%.000 | %-?%d%.%d%d%d ± 0%.000 |$", lines[6])
    assert.matches("^| kmeancosine on struct | ", lines[7])
    assert.matches("^| structural ridge %(kmeancosine/struct samples%) | ", lines[8])
    assert.matches("\n| nasflat GNN, k = 10 | %-?%d%.%d%d%d ± 0%.000 | ", first.axes[2].table)
    assert.matches("^Spearman ρ, mean over target devices, mean ± std over 1 trial%(s%); tasks ZD; seed 1\n", tables)
    assert.matches("pre%-trainings: 1 trained, 2 reused, 0 loaded; 0 results reused; wall %d+ s\n$", tables)
    assert.truthy(tables:find(first.axes[1].table, 1, true))
    assert.truthy(tables:find(first.axes[2].table, 1, true))
  end)

  it("is deterministic for a seed, whatever the order and whether the model was trained or reused", function()
    assert.is_table(first, "needs the first test")
    local cache = support.tmpdir()
    -- the curve now pre-trains; the predictor axis's ensemble is the base setting already computed: reused
    second = assert(study.run(tiny{sources = source(), axes = {"budget", "sampler_encoding", "predictor"},
      samplers = {"kmeancosine"}, settings = {"curve", "kmeancosine/struct", "ensemble"}, cache_dir = cache}))
    assert.same({trained = 1, reused = 1, loaded = 0}, second.pretraining)
    assert.equal(1, second.results_reused)
    assert.equal("trained", second.axes[1].settings[1].tasks.ZD.pretrained)
    assert.equal("result reused", second.axes[3].settings[1].tasks.ZD.pretrained)
    assert.same(labels(first.axes[2]), labels(second.axes[1]))
    for i, r in ipairs(first.axes[2].rows) do assert.same(r.cells.ZD, second.axes[1].rows[i].cells.ZD) end
    assert.same(first.axes[1].rows[3].cells.ZD, second.axes[2].rows[1].cells.ZD)
    assert.same(first.axes[1].rows[3].cells.ZD, second.axes[3].rows[1].cells.ZD)
    assert.same({"ensemble (DGF + GAT) / 2", "structural ridge"}, labels(second.axes[3]))
    -- the cache keeps the model; a later study loads it instead of training
    local entry = second.pretrained[1]
    assert.matches("^" .. cache:gsub("%p", "%%%0") .. "/pretrained%-ZD%-%x+%.nfm$", entry.file)
    local mf = assert(io.open(entry.file, "rb"))
    mf:close()
    local third = assert(study.run(tiny{sources = source(), axes = {"budget"}, budgets = {5}, cache_dir = cache}))
    assert.same({trained = 0, reused = 0, loaded = 1}, third.pretraining)
    assert.same(first.axes[2].rows[1].cells.ZD, third.axes[1].rows[1].cells.ZD)
    -- a run with the study's base options finds the same file (`nasflat run --cache` shares the keys)
    local eo = {source = source(), task = assert(require("nasflat.zoo").task("nb201", "ZD")), cache_dir = cache,
      trials = 1, epochs = 1, pretrain_samples = 16, predictors = {"nasflat", "ridge"}}
    for k, v in pairs(TINY_BASE) do eo[k] = v end
    local rec = assert(require("nasflat.experiment").run(eo))
    assert.equal("loaded", rec.pretrained_cache)
    assert.equal(entry.file, rec.pretrained_model)
    assert.equal(target_mean(third.axes[1].settings[1].tasks.ZD.record, 1, "nasflat"), target_mean(rec, 1, "nasflat"))
    os.execute("rm -r " .. quote(cache))
  end)

  it("saves JSON and CSV, both or neither", function()
    assert.is_table(first, "needs the first test")
    local dir = support.tmpdir()
    local jpath, cpath = assert(study.save(first, dir, "T1"))
    assert.equal(dir .. "/study-T1.json", jpath)
    assert.equal(dir .. "/study-T1.csv", cpath)
    local f = assert(io.open(jpath, "rb"))
    local doc = cjson.decode(f:read("a"))
    f:close()
    assert.same({"ZD"}, doc.tasks)
    assert.equal(1, doc.pretraining.trained)
    assert.equal(2, #doc.axes)
    assert.equal(first.axes[1].table, doc.axes[1].table)
    local rec = first.axes[1].settings[1].tasks.ZD.record
    local trial = rec.targets[1].budgets[1].trials[1]
    assert.equal(trial.nasflat.spearman, doc.axes[1].settings[1].tasks.ZD.record.targets[1].budgets[1].trials[1]
      .nasflat.spearman)
    -- seeds are 53-bit integers: exact in the JSON text
    local text = study.json(first)
    assert.truthy(text:find('"seed":' .. string.format("%d", trial.seed), 1, true))
    f = assert(io.open(cpath, "rb"))
    local lines = {}
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
    assert.equal("axis,setting,task,space,target,budget,trial,predictor,spearman,kendall,mae_ms,mape,acc10," ..
      "interval_coverage,interval_width,seed,pretrained", lines[1])
    -- 5 targets × 2 predictors: random and kmeancosine at k = 5, the curve at k = 5 and 10
    assert.equal(1 + 10 + 10 + 20, #lines)
    local J = require "nasflat.json"
    assert.equal(string.format("sampler_encoding,random,ZD,nb201,%s,5,1,nasflat,%s,%s,", rec.targets[1].device,
      J.number(trial.nasflat.spearman), J.number(trial.nasflat.kendall)),
      lines[2]:match("^([^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*," ..
      "[^,]*,[^,]*,[^,]*,)"))
    assert.matches(",%d+,trained$", lines[2])
    -- the CSV cannot be written (a directory is in its place): the JSON (written after it) is not written
    assert(os.execute("mkdir -p " .. quote(dir .. "/study-T2.csv")))
    local ok, err = study.save(first, dir, "T2")
    assert.is_nil(ok)
    assert.equal(dir .. "/study-T2.csv: exists and is not a regular file (not replaced)", err)
    assert.is_nil(io.open(dir .. "/study-T2.json", "rb"))
    os.execute("rm -r " .. quote(dir))
  end)

  it("skips a setting the predictor cannot build, with the reason", function()
    local r = assert(study.run(tiny{sources = source(), axes = {{name = "layers", settings = {
      {name = "bogus", label = "a bogus layer", overrides = {model = {layer = "bogus"}}}}}}}))
    assert.equal(0, r.pretraining.trained)
    local row = r.axes[1].rows[1]
    assert.matches("^a bogus layer — skipped: .*'layer'.*bogus", row.label)
    assert.is_nil(row.cells.ZD)
    assert.matches("\n| a bogus layer — skipped: [^|]* | %- | %- |\n", r.axes[1].table)
  end)

  it("raises on unknown options, axes, settings and bad values", function()
    support.raises("study.run: unknown option 'foo' (allowed: axes, base, budgets, cache_dir, data, encodings, " ..
      "epochs, experiment, on_axis, pretrain_samples, progress, samplers, seed, settings, sources, supplementaries, " ..
      "tasks, trials)",
      study.run, {foo = 1})
    support.raises("study.run: unknown axis 'foo' (known: predictor, sampler_encoding, device, op_supplementary, " ..
      "budget, visibility, transfer, pretraining)", study.run, tiny{axes = {"foo"}})
    support.raises("study.run: unknown setting 'nope' (the chosen axes have: random, kmeancosine/struct, curve)",
      study.run, tiny{axes = {"sampler_encoding", "budget"}, settings = {"nope"}})
    support.raises("study.run: unknown sampler 'latency' (known: cosine, cosine_greedy, kmeancosine, kmeans, random)",
      study.run, tiny{samplers = {"latency"}})
    support.raises("study.run: unknown encoding 'zcpp' in encodings 'struct+zcpp' (known: " ..
      table.concat(require("nasflat.encodings").NAMES, ", ") .. ", joined with '+')", study.run,
      tiny{encodings = {"struct+zcpp"}})
    support.raises("study.run: unknown supplementary input 'struct+zcp' (auto, none, or nasflat.features names " ..
      "joined by " ..
      "'+': " .. table.concat(require("nasflat.features").NAMES, ", ") .. ")", study.run,
      tiny{supplementaries = {"struct+zcp"}})
    support.raises("study.run: base: unknown experiment option 'epoch'", study.run, tiny{base = {epoch = 3}})
    support.raises("study.run: base: give 'epochs' as a study option, not in base", study.run, tiny{base = {epochs = 3}})
    support.raises("study.run: base: option 'pretrained' is set by the study", study.run, tiny{base = {pretrained = 1}})
    support.raises("study.run: base.budgets must hold one budget (the budget axis sweeps several: option 'budgets')",
      study.run, tiny{base = {budgets = {5, 10}}})
    support.raises("study.run: axis 'x' setting 'a': unknown experiment option 'foo'", study.run,
      tiny{axes = {{name = "x", settings = {{name = "a", overrides = {foo = 1}}}}}})
    support.raises("study.run: axis 'sampler_encoding' is listed twice", study.run,
      tiny{axes = {"sampler_encoding", "sampler_encoding"}})
    support.raises("study.run: option 'trials' must be an integer >= 1", study.run, tiny{trials = 0})
    support.raises("study.run: base model: ", study.run, tiny{sources = source(), axes = {"budget"},
      base = {budgets = {5}, model = {layer = "bogus"}}})
  end)

  it("returns nil and a message for tasks the data cannot serve", function()
    local r, err = study.run(tiny{sources = source(), tasks = {"QQ"}})
    assert.is_nil(r)
    assert.equal("unknown task 'QQ' (paper tasks: F1, F2, F3, F4, FA, FD, FQ, N1, N2, N3, N4, NA, ND, NQ, NQ2; " ..
      "zoo tasks: ZD, Z1, Z2, Z3, Z4)", err)
    r, err = study.run(tiny{sources = source(), tasks = {"N2"}})
    assert.is_nil(r)
    assert.equal("task N2 needs the real data (the source is the synthetic zoo)", err)
    r, err = study.run(tiny{data = "/nonexistent-nasflat", tasks = {"N2"}})
    assert.is_nil(r)
    assert.equal("/nonexistent-nasflat/nb201_latency.csv: cannot open: No such file or directory", err)
  end)

  it("resolves the default task subset on the real data", function()
    if not DATA then return pending(support.NO_DATA) end
    -- an axis whose only setting is skipped: the tasks resolve, nothing is trained
    local r = assert(study.run{data = DATA, axes = {{name = "x", settings = {{name = "s",
      overrides = {model = {layer = "bogus"}}}}}}})
    assert.same({"N2", "F3", "F4", "FA"}, r.tasks)
    assert.same({"1080ti_1", "1080ti_32", "2080ti_1", "titan_rtx_1", "titan_rtx_32"}, r.task_defs.F3.test)
    assert.equal(0, r.pretraining.trained)
  end)
end)

describe("nasflat study and examples/study.lua", function()
  local function run(args) return support.capture("lua5.4 examples/study.lua " .. args) end
  local function cli(args) return support.capture("./bin/nasflat study " .. args) end

  it("shows its usage with --help", function()
    for _, r in ipairs({run("--help"), cli("--help")}) do
      assert.equal(0, r.code)
      assert.equal("", r.err)
      assert.matches("^usage: nasflat study %[", r.out)
      assert.matches("\n  %-%-tasks A,B +tasks %(default: N2,F3,F4,FA on the real data", r.out)
    end
  end)

  it("exits 2 with one message for bad flags and options", function()
    for _, f in ipairs({run, cli}) do
      local r = f("--bogus")
      assert.equal(2, r.code)
      assert.equal("", r.out)
      assert.equal("nasflat: unknown option '--bogus' (see `nasflat study --help`)\n", r.err)
      r = f("--trials 0")
      assert.equal(2, r.code)
      assert.equal("nasflat: option '--trials' expects an integer >= 1, got '0'\n", r.err)
      r = f("--curve 5,x")
      assert.equal(2, r.code)
      assert.equal("nasflat: --curve: 'x' is not a positive integer\n", r.err)
      r = f("--data synthetic --axes foo")
      assert.equal(2, r.code)
      assert.matches("^nasflat: study%.run: unknown axis 'foo' %(known: ", r.err)
      r = f("--data synthetic --samplers latency")
      assert.equal(2, r.code)
      assert.equal("nasflat: study.run: unknown sampler 'latency' (known: cosine, cosine_greedy, kmeancosine, kmeans, " ..
        "random)\n", r.err)
    end
    local r = cli("--data synthetic --tasks N2")
    assert.equal(1, r.code)
    assert.equal("nasflat: task N2 needs the real data (the source is the synthetic zoo)\n", r.err)
  end)
end)
