-- nasflat.search: constrained selection, evolution, the adaptive loop, devices, the measurement log, the CLI.
local core = require "nasflat.core"
local search = require "nasflat.search"
local dev = require "nasflat.search_device"
local support = require "support"

local space = require("nasflat.space").get("nb201")

-- A stand-in latency model (the predictor interface's predict): ms = 1 + the number of convolutions, with a
-- log-error sd of `sd` (an interval of ±1.645 sd at 90 %). Deterministic and cheap.
local function fake_model(sd)
  local P = {samples = {archs = {}, ms = {}}, n_samples = 0, kind = "fake"}
  local function ms_of(a)
    local code = type(a) == "table" and a or space:parse(a)
    local n = 0
    for _, v in ipairs(code) do if v == 2 or v == 3 then n = n + (v == 3 and 2 or 1) end end
    return 1 + n
  end
  function P.predict(_, archs, opts)
    local l = {}
    for i, a in ipairs(archs) do l[i] = math.log(ms_of(a)) end
    local logms = core.Tensor.from(l)
    local info = {logms = logms, halfwidth_log = (sd or 0) * search.z_of(opts and opts.interval or 0.9)}
    info.lo = logms:clone():affine(1, -info.halfwidth_log):exp()
    info.hi = logms:clone():affine(1, info.halfwidth_log):exp()
    return logms:clone():exp(), info
  end
  function P.refit(self) return self end
  P.ms_of = ms_of
  return P
end

-- a synthetic objective: convs count, pools penalised; higher is better
local function value_of(a)
  local v = 0
  for _, c in ipairs(space:parse(a)) do v = v + (c == 3 and 3 or c == 2 and 2 or c == 4 and -1 or 0) end
  return v
end

local function code_value(list)
  local out = {}
  for i, a in ipairs(list) do out[i] = value_of(a) end
  return out
end

describe("search kernels", function()
  it("hypervolume of hand-computed cases", function()
    assert.are.equal(9, core.search.hypervolume2({1}, {2}, 4, 5))
    assert.are.equal(6, core.search.hypervolume2({3, 1, 2}, {1, 3, 2}, 4, 4))
    -- dominated, repeated, outside the box and NaN points add nothing
    assert.are.equal(6, core.search.hypervolume2({3, 1, 2, 2.5, 1, 9, 0 / 0}, {1, 3, 2, 2.5, 3, 0, 0}, 4, 4))
    assert.are.equal(0, core.search.hypervolume2({}, {}, 1, 1))
    -- maximised values, minimised ms: (90, 10) and (80, 5) against (70, 20): 20*10 + 10*5 = 250
    assert.are.equal(250, search.hypervolume({90, 80}, {10, 5}, 70, 20))
    support.raises("the reference point (inf, 1) must be finite", core.search.hypervolume2, {1}, {1}, math.huge, 1)
    support.raises("search.hypervolume2: 2 x values but 1 y values", core.search.hypervolume2, {1, 2}, {1}, 3, 3)
  end)

  it("Pareto ranks and fronts", function()
    local r, f = core.search.pareto_rank{{1, 3}, {2, 2}, {3, 1}, {2, 3}, {3, 3}, {1, 3}}
    assert.are.same({1, 1, 1, 2, 3, 1}, r)
    assert.are.equal(3, f)
    assert.are.same({3, 2, 1}, search.front({90, 85, 80, 70}, {10, 8, 5, 9}))
  end)

  it("children: one position changed, crossover from either parent, seeded, clear errors", function()
    local a, b = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+" ..
      "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    local kids = core.search.children("nb201", {a, a, a}, core.Rng(4))
    for _, k in ipairs(kids) do
      local n = 0
      for _, c in ipairs(space:parse(k)) do if c ~= 0 then n = n + 1 end end
      assert.are.equal(1, n)
    end
    assert.are.same(kids, core.search.children("nb201", {a, a, a}, core.Rng(4)))
    local mixed = core.search.children("nb201", {a}, core.Rng(1), {b})
    assert.are.equal(1, #mixed)
    support.raises("search.children: parents entry 2: nb201 arch string", core.search.children, "nb201", {a, "|x~0|"},
      core.Rng(1))
    support.raises("search.children: 1 parents but 2 mates", core.search.children, "nb201", {a}, core.Rng(1), {a, b})
    support.raises("search.children: unknown space 'nb301'", core.search.children, "nb301", {a}, core.Rng(1))
  end)
end)

describe("search.select (exhaustive constrained selection)", function()
  it("matches brute force over every NB201 cell, with and without the interval margin", function()
    local pool = space:enumerate()
    local values = {}
    for i, a in ipairs(pool) do values[i] = value_of(a) + i * 1e-6 end   -- distinct
    local P = fake_model(0.1)
    for _, budget in ipairs{2.5, 4.5, 7.5, 13.5} do
      for _, margin in ipairs{"none", "hi"} do
        local picks = search.select{models = {P}, budgets = {budget}, pool = pool, values = values, k = 5,
          margin = margin}
        local f = margin == "hi" and math.exp(0.1 * search.z_of(0.9)) or 1
        local ok = {}
        for i, a in ipairs(pool) do if P.ms_of(a) * f <= budget * (1 + 1e-6) then ok[#ok + 1] = i end end
        table.sort(ok, function(a, b) return values[a] > values[b] end)
        local want = {table.unpack(ok, 1, 5)}
        assert.are.same(want, picks)
      end
    end
    support.raises("search.select: budget 1 must be a positive number of ms (got -1)", search.select,
      {models = {P}, budgets = {-1}, pool = pool, values = values})
    support.raises("search.select: option 'margin' must be 'none' or 'hi' (got lo)", search.select,
      {models = {P}, budgets = {1}, pool = pool, values = values, margin = "lo"})
  end)
end)

describe("evolution", function()
  it("predictor-only aging evolution finds the optimum of a small synthetic objective (FBNet, 9^22)", function()
    local fb = require("nasflat.space").get("fbnet")
    local goal = {}
    for i = 1, 22 do goal[i] = (i * 5) % 9 end
    local function objective(list)
      local out = {}
      for i, a in ipairs(list) do
        local c, v = fb:parse(a), 0
        for k = 1, 22 do if c[k] == goal[k] then v = v + 1 end end
        out[i] = v
      end
      return out
    end
    local P = {}
    function P.predict(_, archs, opts)
      local z = {}
      for i = 1, #archs do z[i] = 0 end
      local logms = core.Tensor.from(z)
      local info = {logms = logms, halfwidth_log = 0}
      if opts and opts.interval then info.lo, info.hi = logms:clone():exp(), logms:clone():exp() end
      return logms:clone():exp(), info
    end
    local r = assert(search.evolve{space = "fbnet", models = {P}, budgets = {2}, objective = objective,
      population = 50, sample = 10, cycles = 15000, batch = 100, seed = 3})
    assert.are.equal(22, r.best.objective)
    assert.are.equal(fb:format(goal), r.best.arch)
  end)

  it("measure-only regularised evolution finds the best feasible cell of a synthetic objective", function()
    local pool = space:enumerate()
    local P = fake_model(0)
    local d = dev.fn{name = "fake", fn = function(a) return P.ms_of(a) end}
    local r = assert(search.evolution{space = "nb201", pool = pool, objective = code_value,
      constraints = {{device = d, budget_ms = 8}}, measurements = 400, population = 20, sample = 5, seed = 2})
    local best = -math.huge
    for _, a in ipairs(pool) do if P.ms_of(a) <= 8 then best = math.max(best, value_of(a)) end end
    assert.are.equal(best, r.pick.objective)
  end)
end)

describe("search.adaptive", function()
  local pool = space:enumerate()

  it("never reports an unmeasured or over-budget pick", function()
    local P = fake_model(0.2)
    for _, budget in ipairs{0.5, 3, 6} do
      local truth = function(a) return P.ms_of(a) * (1 + (#a % 3) * 0.1) end   -- the model is off by 0-20 %
      local d = dev.fn{name = "board", fn = truth}
      local r = assert(search.adaptive{space = "nb201", pool = pool, objective = code_value,
        constraints = {{device = d, budget_ms = budget, model = P}}, measurements = 12, init = 0, batch = 3})
      if budget < 1 then
        assert.is_nil(r.pick)
        assert.are.equal("no measured architecture was under the budget (12 measured)", r.pick_reason)
      else
        local found
        for _, m in ipairs(r.measurements) do if m.arch == r.pick.arch then found = m end end
        assert.truthy(found)
        assert.is_true(found.ms.board <= budget)
        assert.are.equal(truth(r.pick.arch), r.pick.ms.board)
      end
      assert.is_true(r.n_measurements <= 12)
    end
  end)

  it("grows the pool with proposals (spaces too large to enumerate) and still picks a measured architecture", function()
    local P = fake_model(0.1)
    local d = dev.fn{name = "board", fn = function(a) return P.ms_of(a) end}
    local start = {table.unpack(pool, 1, 50)}
    local proposed = 0
    local r = assert(search.adaptive{space = "nb201", pool = start, objective = code_value, init = 0, measurements = 8,
      constraints = {{device = d, budget_ms = 6, model = P}}, propose = function(models, round)
        assert.are.equal(P, models[1])
        proposed = proposed + 1
        return {pool[1000 + round], pool[2000 + round], pool[1]}
      end})
    assert.are.equal(50, #start)   -- the caller's list is not grown
    assert.is_true(proposed >= 1)
    assert.is_true(r.pick.ms.board <= 6)
  end)

  it("several devices at once: the pick is measured under every budget", function()
    local P = fake_model(0.1)
    local phone = dev.fn{name = "phone", fn = function(a) return P.ms_of(a) end}
    local gpu = dev.fn{name = "gpu", fn = function(a) return 0.5 + #a % 5 / 10 end}
    local Q = fake_model(0.3)
    local r = assert(search.adaptive{space = "nb201", pool = pool, objective = code_value, init = 0, measurements = 10,
      constraints = {{device = phone, budget_ms = 6, model = P}, {device = gpu, budget_ms = 0.75, model = Q}}})
    assert.is_true(r.pick.ms.phone <= 6)
    assert.is_true(r.pick.ms.gpu <= 0.75)
    for _, m in ipairs(r.measurements) do
      assert.are.equal(m.ms.phone <= 6 and m.ms.gpu <= 0.75, m.feasible)
    end
    support.raises("search.adaptive: device 'phone' is constrained twice", search.adaptive, {space = "nb201",
      objective = code_value, constraints = {{device = phone, budget_ms = 1}, {device = phone, budget_ms = 2}}})
  end)

  it("starts from a saved model (read back by model.load) and refits it with its own samples", function()
    local dir = support.data_dir()
    if not dir then pending(support.NO_DATA) return end
    local src = assert(require("nasflat.source").open{data = dir, space = "nb201"})
    local rows = src:measured("raspi4")
    local archs, ms = {}, {}
    for i = 1, 15 do archs[i] = src.arch_strings[rows[i * 900]]; ms[i] = src:ms("raspi4"):get(rows[i * 900]) end
    local P = assert(require("nasflat.model").fit{kind = "ridge", space = "nb201", samples = {archs = archs, ms = ms},
      target = "raspi4"})
    local path = support.tmpdir() .. "/r.nfm"
    assert(P:save(path))
    local L = assert(require("nasflat.model").load(path))
    local d = assert(dev.dataset{source = src, device = "raspi4"})
    local r = assert(search.adaptive{space = "nb201", objective = "cifar10", data = dir, init = 0, measurements = 6,
      batch = 3, constraints = {{device = d, budget_ms = 20, model = L}}})
    assert.are.equal(21, r.models[1].n_samples)
    assert.is_true(r.pick.ms.raspi4 <= 20)
  end)

  it("refuses bad budgets, counts and unknown objectives with clear messages", function()
    local d = dev.fn{name = "b", fn = function() return 1 end}
    support.raises("search.adaptive: constraint 1: budget_ms must be a positive number of ms (got -3)",
      search.adaptive, {space = "nb201", objective = "cifar10", constraints = {{device = d, budget_ms = -3}}})
    support.raises("search.adaptive: constraint 1: budget_ms must be a positive number of ms (got 12)",
      search.adaptive, {space = "nb201", objective = "cifar10", constraints = {{device = d, budget_ms = "12"}}})
    support.raises("search.adaptive: option 'measurements' must be an integer >= 1 (got 0)", search.adaptive,
      {space = "nb201", objective = "cifar10", measurements = 0, constraints = {{device = d, budget_ms = 1}}})
    support.raises("search.adaptive: unknown option 'budget' (allowed:", search.adaptive,
      {space = "nb201", objective = "cifar10", budget = 3, constraints = {{device = d, budget_ms = 1}}})
    support.raises("search.objective: unknown objective 'accuracy' (known: cifar10, cifar100, imagenet16, params, " ..
      "flops, a leading '-' to minimise params or flops, or a Lua function)", search.objective, "accuracy",
      {space = "nb201"})
    local obj, err = search.objective("cifar10", {space = "fbnet"})
    assert.is_nil(obj)
    assert.are.equal("fbnet has no accuracy table (objective 'cifar10'): pass a Lua function as the objective, " ..
      "e.g. FLOPs-normalised", err)
    local r, e2 = search.adaptive{space = "nb201", pool = pool, objective = code_value, init = 25, measurements = 20,
      constraints = {{device = d, budget_ms = 1}}}
    assert.is_nil(r)
    assert.are.equal("the initial samples (25) exceed the measurement budget (20)", e2)
  end)

  it("with the real data: measured pick under the budget; unknown devices refused", function()
    local dir = support.data_dir()
    if not dir then pending(support.NO_DATA) return end
    local src = assert(require("nasflat.source").open{data = dir, space = "nb201"})
    local d, err = dev.dataset{source = src, device = "pixel9"}
    assert.is_nil(d)
    assert.truthy(err:find("unknown device 'pixel9' (the nb201 data has: ", 1, true))
    local sm = assert(require("nasflat.source_models").fit{source = src, devices = {"1080ti_1", "pixel3"}})
    local px = assert(dev.dataset{source = src, device = "pixel2", cost_s = 5})
    local r = assert(search.adaptive{space = "nb201", objective = "cifar10", data = dir, measurements = 24,
      constraints = {{device = px, budget_ms = 12}}, fit = {data = src, sources = sm, kind = "ridge"}, batch = 4})
    assert.truthy(r.pick)
    assert.is_true(r.pick.ms.pixel2 <= 12)
    assert.are.equal(src:ms("pixel2"):get(src:row(r.pick.arch)), r.pick.ms.pixel2)
    assert.is_true(r.pick.report > 80)   -- the test accuracy is reported beside the validation one
    assert.are.equal(24, r.n_measurements)
    assert.are.equal(24 * 5, r.timing.measure_cost)
  end)
end)

describe("devices and the measurement log", function()
  it("a command device: failures and timeouts are reported, retried once, never raise", function()
    local ok = dev.command{template = "echo 'latency: 3.25 ms' # {arch}", name = "echo"}
    assert.are.equal(3.25, ok:measure("1-2"))
    local bad = dev.command{template = "echo boom; exit 3 # {arch}", name = "bad"}
    local ms, err = bad:measure("x")
    assert.is_nil(ms)
    assert.are.equal("the command failed (exit 3): boom", err)
    local slow = dev.command{template = "sleep 5; echo 1 # {arch}", timeout = 0.3, name = "slow"}
    local t0 = core.now()
    ms, err = slow:measure("x")
    assert.is_nil(ms)
    assert.are.equal("timed out after 0.3 s", err)
    assert.is_true(core.now() - t0 < 3)
    local none = dev.command{template = "echo no number here # {arch}"}
    ms, err = none:measure("x")
    assert.is_nil(ms)
    assert.are.equal("the command printed no positive number of ms: no number here", err)
    -- a flaky command: fails once, succeeds on the retry; both attempts are in the log
    local dir = support.tmpdir()
    local flag = dir .. "/flag"
    local flaky = dev.command{template = "if [ -e " .. flag .. " ]; then echo 7; else touch " .. flag ..
      "; exit 1; fi # {arch}", name = "flaky"}
    local log = assert(dev.log(dir .. "/m.csv"))
    ms = dev.measure(flaky, "a1", log, 0)
    log:close()
    assert.are.equal(7, ms)
    local recs = assert(dev.read_log(dir .. "/m.csv"))
    assert.are.equal(2, #recs)
    assert.is_nil(recs[1].ms)
    assert.are.equal(1, recs[1].attempt)
    assert.are.equal(7, recs[2].ms)
    support.raises("search_device.command: option 'template' must be a string containing {arch}", dev.command,
      {template = "bench"})
  end)

  it("a search over failing measurements ends with a message, not an error", function()
    local pool = space:enumerate()
    local bad = dev.command{template = "exit 1 # {arch}", name = "bad"}
    local r, err = search.adaptive{space = "nb201", pool = pool, objective = code_value, measurements = 4, init = 3,
      constraints = {{device = bad, budget_ms = 5}}, fit = {kind = "ridge"}}
    assert.is_nil(r)
    assert.truthy(err:find("cannot fit the latency model of bad", 1, true))
    -- a device function that raises is a failed measurement too
    local P = fake_model(0.1)
    local n = 0
    local d = dev.fn{name = "f", fn = function(a) n = n + 1; if n % 2 == 0 then error("bus error") end return P.ms_of(a) end}
    local r2 = assert(search.adaptive{space = "nb201", pool = pool, objective = code_value, measurements = 6, init = 0,
      constraints = {{device = d, budget_ms = 5, model = P}}})
    assert.are.equal(6, r2.n_measurements)
  end)

  it("the measurement CSV survives a kill, and a resumed search reuses it", function()
    local dir = support.tmpdir()
    local log = dir .. "/run.csv"
    -- a search in another process killed (os.exit without closing anything) at its 5th measurement
    local script = support.tmpfile(string.format([[
      package.path = %q
      package.cpath = %q
      local search = require "nasflat.search"
      local dev = require "nasflat.search_device"
      local space = require("nasflat.space").get("nb201")
      local n = 0
      local d = dev.fn{name = "board", fn = function(a)
        n = n + 1
        if n == 5 then os.exit(9, false) end
        return 1 + #a %% 7
      end}
      search.random_search{space = "nb201", objective = function(l) local t = {} for i = 1, #l do t[i] = i end return t end,
        constraints = {{device = d, budget_ms = 5}}, measurements = 10, log = %q}
    ]], package.path, package.cpath, log), ".lua")
    local res = support.capture("lua5.4 " .. support.quote(script))
    assert.are.equal(9, res.code)
    local recs = assert(dev.read_log(log))
    assert.are.equal(4, #recs)
    for _, r in ipairs(recs) do assert.truthy(r.ms) end
    -- resume: the four are taken from the log, only the rest is measured
    local calls = 0
    local d = dev.fn{name = "board", fn = function(a) calls = calls + 1 return 1 + #a % 7 end}
    local r = assert(search.random_search{space = "nb201", objective = function(l)
      local t = {} for i = 1, #l do t[i] = i end return t end,
      constraints = {{device = d, budget_ms = 5}}, measurements = 10, log = log, resume = true})
    assert.are.equal(4, r.resumed)
    assert.are.equal(6, calls)
    assert.are.equal(10, #assert(dev.read_log(log)))
    os.remove(script)
  end)
end)

describe("nasflat search (CLI)", function()
  local wrapper
  setup(function()
    wrapper = support.tmpfile(string.format("package.path = %q\npackage.cpath = %q\n" ..
      "os.exit(require('nasflat.cli').main(arg))\n", package.path, package.cpath), ".lua")
  end)
  teardown(function() os.remove(wrapper) end)
  local function run(args) return support.capture("lua5.4 " .. support.quote(wrapper) .. " search " .. args) end

  it("--help, and usage errors with exact messages", function()
    local r = run("--help")
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("usage: nasflat search", 1, true))
    r = run("--target pixel2 --budget-ms -3")
    assert.are.equal(2, r.code)
    assert.are.equal("nasflat: --budget-ms: '-3' is not a positive number of ms\n", r.err)
    r = run("--target pixel2 --budget-ms twelve")
    assert.are.equal("nasflat: --budget-ms: 'twelve' is not a positive number of ms\n", r.err)
    r = run("--target pixel2,raspi4 --budget-ms 12")
    assert.are.equal("nasflat: --budget-ms has 1 values for 2 targets (one budget per target)\n", r.err)
    r = run("--budget-ms 12")
    assert.are.equal("nasflat: search: --target is required (the device to search for)\n", r.err)
    r = run("--target pixel2 --budget-ms 12 --measurements 10 --init 20")
    assert.are.equal("nasflat: --init 20 exceeds --measurements 10\n", r.err)
  end)

  it("unknown objectives and devices (real data)", function()
    local dir = support.data_dir()
    if not dir then pending(support.NO_DATA) return end
    local r = run("--data " .. dir .. " --target pixel2 --budget-ms 12 --objective top1")
    assert.are.equal(2, r.code)
    assert.are.equal("nasflat: unknown objective 'top1' (known: cifar10, cifar100, imagenet16, params, flops, a " ..
      "leading '-' to minimise params or flops, or a Lua function)\n", r.err)
    r = run("--data " .. dir .. " --target pixel9 --budget-ms 12")
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("nasflat: unknown device 'pixel9' (the nb201 data has: ", 1, true))
    r = run("--data " .. dir .. " --space fbnet --target pixel2 --budget-ms 12")
    assert.are.equal("nasflat: fbnet has no accuracy table (objective 'cifar10'): pass a Lua function as the " ..
      "objective, e.g. FLOPs-normalised\n", r.err)
  end)

  it("a search with --json, --svg and --log; a failing --measure-cmd is reported", function()
    local dir = support.data_dir()
    if not dir then pending(support.NO_DATA) return end
    local tmp = support.tmpdir()
    local r = run("--data " .. dir .. " --task ND --target pixel2 --budget-ms 12 --measurements 24 --batch 4 " ..
      "--predictor ridge --json --svg " .. tmp .. "/p.svg --log " .. tmp .. "/m.csv")
    assert.are.equal(0, r.code, r.err)
    local out = require("cjson").decode(r.out)
    assert.is_true(out.pick.ms.pixel2 <= 12)
    assert.are.equal(24, #out.measurements)
    assert.are.equal("ridge", out.predictor[1].kind)
    assert.are.equal(24, #assert(dev.read_log(tmp .. "/m.csv")))
    local f = assert(io.open(tmp .. "/p.svg"))
    assert.truthy(f:read("a"):find("true front (pixel2)", 1, true))
    f:close()
    -- every command fails: each measurement tried twice, the search ends with a message (exit 1), nothing raised
    r = run("--data " .. dir .. " --task ND --target board --budget-ms 12 --measurements 3 --init 2 --predictor ridge " ..
      "--measure-cmd 'exit 4 # {arch} {device}' --timeout 5 --log " .. tmp .. "/b.csv")
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("cannot fit the latency model of board", 1, true), r.err)
    local recs = assert(dev.read_log(tmp .. "/b.csv"))
    assert.are.equal(4, #recs)
    assert.are.equal("the command failed (exit 4): ", recs[1].status)
  end)
end)

describe("search_device.engine", function()
  it("measures on this machine through nasflat.measure, appends, and reuses what the file holds", function()
    local out = os.tmpname()
    os.remove(out)
    local d = dev.engine{space = "nb201", out = out, repeats = 2, warmup = 0}
    local a = require("nasflat.space").get("nb201"):at(100)
    local v1 = assert(d:measure(a))
    assert.is_true(v1 > 0)
    local v2 = assert(d:measure(a))   -- read back from the file (6 significant digits), not measured again
    assert.near(v1, v2, 1e-5 * v1)
    local f = assert(io.open(out, "r"))
    local text = f:read("a")
    f:close()
    local lines = 0
    for _ in text:gmatch("\n") do lines = lines + 1 end
    assert.equal(2, lines)   -- the header and one architecture
    local bad, err = d:measure("x")
    assert.is_nil(bad)
    assert.matches("nb201 arch string", err)
    os.remove(out)
    os.remove(out .. ".spread.csv")
    os.remove(out .. ".json")
  end)
end)
