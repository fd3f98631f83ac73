-- The HELP baseline (csrc/nf_mlp.c through nasflat.core.Mlp, lua/nasflat/model_help.lua): finite-difference checks
-- of the MLP's gradient, its Hessian-vector products (Pearlmutter's R-operator) and the MAML outer gradient through
-- the inner steps (second order; first order must fail the same check), the reference-architecture file reader on
-- malformed input, and the kind through nasflat.model (fit, predict, save/load, protocols) on the real data.
local nf = require "nasflat"
local support = require "support"
local core = nf.core
local T = core.Tensor
local H = require "nasflat.model_help"

local function rand_rows(rng, n, c)
  local t = {}
  for i = 1, n do
    t[i] = {}
    for j = 1, c do t[i][j] = rng:normal() end
  end
  return T.from(t)
end

-- a small HELP-shaped network: 4 encoding + 3 hardware inputs, two block-diagonal layers, a trunk, one output
local function small(alpha, split)
  local m = core.Mlp{widths = {7, 6, 6, 5, 1}, in_x = 4, in_h = 3, split = split or {3, 2}, max_rows = 16,
    max_steps = 3}
  m:init{seed = 3, alpha = alpha or 0.3}
  return m
end

local function data(seed)
  local rng = core.Rng(seed)
  return {xs = rand_rows(rng, 6, 4), ys = rand_rows(rng, 6, 1), xq = rand_rows(rng, 9, 4), yq = rand_rows(rng, 9, 1),
    h = T.from{0.2, -0.5, 0.9}}
end

--- ‖a − n‖ / ‖n‖ over the free (unmasked) parameters, with n[i] = (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε.
local function fd_error(m, f, analytic, eps)
  local theta, mask = m:params(), m:mask()
  local num, den = 0, 0
  for i = 1, m:nparams() do
    if mask:get(i) == 1 then
      local t = theta:clone()
      t:set(i, theta:get(i) + eps)
      m:set_params(t)
      local fp = f()
      t:set(i, theta:get(i) - eps)
      m:set_params(t)
      local fm = f()
      local fd = (fp - fm) / (2 * eps)
      num, den = num + (fd - analytic:get(i)) ^ 2, den + fd * fd
    end
  end
  m:set_params(theta)
  return math.sqrt(num / den)
end

describe("HELP's MLP (nasflat.core.Mlp)", function()
  it("has a correct gradient (block-diagonal towers and a plain MLP)", function()
    for _, split in ipairs{{3, 2}, {}} do
      local m = small(0.3, split)
      local d = data(5)
      local _, g = m:loss_grad(d.xs, d.h, d.ys)
      local err = fd_error(m, function() return (m:loss_grad(d.xs, d.h, d.ys)) end, g, 1e-3)
      assert.is_true(err < 1e-2, "gradient error " .. err)
      -- the check fails on a wrong gradient
      local bad = g:clone():scale(1.5)
      assert.is_true(fd_error(m, function() return (m:loss_grad(d.xs, d.h, d.ys)) end, bad, 1e-3) > 0.3)
      m:free()
    end
  end)

  it("keeps the towers apart: off-block gradients are zero", function()
    local m = small()
    local d = data(6)
    local _, g = m:loss_grad(d.xs, d.h, d.ys)
    local mask, theta = m:mask(), m:params()
    local off = 0
    for i = 1, m:nparams() do
      if mask:get(i) == 0 then
        off = off + 1
        assert.are.equal(0, g:get(i))
        assert.are.equal(0, theta:get(i))
      end
    end
    -- layer 1: 4×3 + 3×3 in-block weights of 7×6; layer 2: 3×2 + 3×4 of 6×6
    assert.are.equal((42 - 21) + (36 - 18), off)
  end)

  it("multiplies by the Hessian exactly (R-operator against differences of gradients)", function()
    local m = small()
    local d = data(7)
    local rng = core.Rng(8)
    local P, mask = m:nparams(), m:mask()
    local v = T.new(P)
    for i = 1, P do v:set(i, rng:normal() * mask:get(i)) end
    local hv = m:hvp(d.xs, d.h, d.ys, v)
    local theta = m:params()
    local eps = 1e-3
    local function grad_at(s)
      local t = theta:clone()
      for i = 1, P do t:set(i, theta:get(i) + s * eps * v:get(i)) end
      m:set_params(t)
      local _, g = m:loss_grad(d.xs, d.h, d.ys)
      return g
    end
    local gp, gm = grad_at(1), grad_at(-1)
    m:set_params(theta)
    local num, den = 0, 0
    for i = 1, P do
      local fd = (gp:get(i) - gm:get(i)) / (2 * eps)
      num, den = num + (fd - hv:get(i)) ^ 2, den + fd * fd
    end
    assert.is_true(math.sqrt(num / den) < 1e-3, "hvp error " .. math.sqrt(num / den))
  end)

  -- The outer loss is discontinuous where a support row's pre-activation crosses zero (ReLU's derivative jumps, so
  -- θ_T jumps): a difference across such a kink is meaningless. These data (seed 5) have none within ε of θ; other
  -- seeds do (seed 9: the difference quotients grow as ε shrinks, the signature of a jump, not of a wrong gradient).
  it("has an exact second-order MAML gradient through the inner steps; first order fails the same check", function()
    local m = small(0.3)
    local d = data(5)
    local function outer()
      local c = m:clone()
      c:adapt(d.xs, d.h, d.ys, 2)
      local l = c:loss_grad(d.xq, d.h, d.yq)
      c:free()
      return l
    end
    local opts = {xs = d.xs, ys = d.ys, xq = d.xq, yq = d.yq, h = d.h, steps = 2, second_order = true}
    local loss, gt, ga = m:maml_grad(opts)
    assert.is_true(math.abs(loss - outer()) < 1e-6)
    local err2 = fd_error(m, outer, gt, 1e-3)
    assert.is_true(err2 < 1e-2, "second-order error " .. err2)
    opts.second_order = false
    local _, gt1 = m:maml_grad(opts)
    local err1 = fd_error(m, outer, gt1, 1e-3)
    assert.is_true(err1 > 0.5, "first-order error " .. err1 .. " (should differ from the exact gradient)")
    -- the learned inner learning rates (Meta-SGD): ∂/∂α against differences over α
    local alpha = m:alpha()
    local num, den = 0, 0
    for i = 1, m:nparams(), 3 do
      if m:mask():get(i) == 1 then
        local a = alpha:clone()
        a:set(i, alpha:get(i) + 1e-3)
        m:set_alpha(a)
        local lp = outer()
        a:set(i, alpha:get(i) - 1e-3)
        m:set_alpha(a)
        local lm = outer()
        m:set_alpha(alpha)
        local fd = (lp - lm) / 2e-3
        num, den = num + (fd - ga:get(i)) ^ 2, den + fd * fd
      end
    end
    assert.is_true(math.sqrt(num / den) < 0.05, "alpha gradient error " .. math.sqrt(num / den))
  end)

  it("meta-trains: the outer loss falls, masked weights stay zero, same seed same numbers", function()
    local rng = core.Rng(11)
    local N, D = 60, 4
    local x = rand_rows(rng, N, 4)
    local w = {0.5, -1, 0.3, 0.8}
    local y, hw = T.new(D, N), T.new(D, 3)
    for dd = 1, D do
      for k = 1, 3 do hw:set(dd, k, dd / D * k / 3) end
      for r = 1, N do
        local s = 0
        for j = 1, 4 do s = s + w[j] * x:get(r, j) * (1 + 0.3 * dd) end
        y:set(dd, r, r % 7 == 0 and 0 / 0 or s)   -- NaN: not measured, never drawn
      end
    end
    -- plain MAML (a fixed inner lr): on this toy, Meta-SGD's learned inner rates at meta lr 1e-2 overshoot
    local function train()
      local m = small(0.05)
      local first = m:meta_train{x = x, y = y, hw = hw, episodes = 50, tasks = 2, support = 5, query = 10, steps = 2,
        lr = 1e-2, rng = core.Rng(3)}
      local r4 = core.Rng(4)
      m:meta_train{x = x, y = y, hw = hw, episodes = 150, tasks = 2, support = 5, query = 10, steps = 2, lr = 1e-2,
        rng = r4}
      local last = m:meta_train{x = x, y = y, hw = hw, episodes = 50, tasks = 2, support = 5, query = 10, steps = 2,
        lr = 1e-2, rng = r4}
      return m, first, last
    end
    local m, first, last = train()
    assert.is_true(last < 0.5 * first, string.format("outer loss %g -> %g", first, last))
    assert.is_true(math.abs(m:alpha():max() - 0.05) < 1e-8 and math.abs(m:alpha():min() - 0.05) < 1e-8)
    -- Meta-SGD moves the inner learning rates
    local a = small(0.05)
    a:meta_train{x = x, y = y, hw = hw, episodes = 5, tasks = 2, support = 5, query = 10, lr = 1e-3, learn_alpha = true,
      rng = core.Rng(5)}
    assert.is_true(a:alpha():max() > 0.05)
    local mask, theta = m:mask(), m:params()
    for i = 1, m:nparams() do if mask:get(i) == 0 then assert.are.equal(0, theta:get(i)) end end
    local m2 = train()
    assert.are.same(m:params():totable(), m2:params():totable())
    local wide = core.Mlp{widths = {7, 6, 1}, in_x = 4, in_h = 3, max_rows = 64}
    support.raises("device 1 has 52 labelled rows, an episode needs 60", wide.meta_train, wide, {x = x, y = y,
      hw = hw, tasks = 2, support = 30, query = 30, rng = core.Rng(1)})
  end)

  it("saves its state exactly and refuses bad configurations and shapes", function()
    local m = small()
    local c = small(0.1)
    assert.is_true(c:set_state(m:state()))
    assert.are.same(m:params():totable(), c:params():totable())
    assert.are.same(m:alpha():totable(), c:alpha():totable())
    local ok, err = c:set_state("abc")
    assert.is_nil(ok)
    assert.matches("mlp state of 3 bytes", err)
    support.raises("Mlp: unknown option 'depth'", core.Mlp, {widths = {3, 2, 1}, depth = 2})
    support.raises("in_x 2 + in_h 2 must be the input width 3", core.Mlp, {widths = {3, 2, 1}, in_x = 2, in_h = 2})
    support.raises("split 4 of layer 1 must be in 1..3", core.Mlp, {widths = {3, 4, 1}, in_h = 1, split = {4}})
    local d = data(1)
    local big = rand_rows(core.Rng(2), 17, 4)
    support.raises("17 batch rows (1..16", m.loss_grad, m, big, d.h, T.new(17))
    support.raises("the hardware embedding h must have 1 × 3 entries", m.predict, m, d.xs, T.from{1, 2})
    -- predictions in chunks of max_rows equal one batch
    local p = m:predict(big, d.h)
    assert.are.equal(17, p:size())
    assert.are.same(m:predict(big:index{17}, d.h):totable()[1], p:get(17))
    m:free()
    support.raises("attempt to use a closed mlp", m.params, m)
  end)

  it("encodes architectures by a lookup table per choice", function()
    local codes = T.from{{0, 2}, {1, 1}}
    local tab = T.from{{1, 0}, {0, 1}, {5, 5}}
    assert.are.same({{1, 0, 5, 5}, {0, 1, 0, 1}}, core.codes_lookup(codes, tab):totable())
    support.raises("codes: row 1 position 2: 3 is not a choice 0..2", core.codes_lookup, T.from{{0, 3}}, tab)
    local fb = H.encode(nf.space.get("fbnet"), {"0-1-2-3-4-5-6-7-8-0-0-0-0-0-0-0-0-0-0-0-0-0"})
    local row = fb:totable()[1]
    assert.are.equal(132, #row)
    assert.are.same({1, 0, 1, 0, 0, 0}, {table.unpack(row, 1, 6)})        -- k3_e1
    assert.are.same({0, 1, 0, 0, 0, 1}, {table.unpack(row, 43, 48)})      -- k5_e6
    assert.are.same({0, 0, 0, 0, 0, 0}, {table.unpack(row, 49, 54)})      -- skip
    local nb = H.encode(nf.space.get("nb201"), {"|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"})
    assert.are.equal(30, nb:size(2))
    assert.are.equal(6, nb:sum())
  end)
end)

describe("HELP's reference-architecture file", function()
  local function read(text) return H.read_reference(support.tmpfile(text)) end
  local good = "rank,arch_index\n0,5\n1,4\n2,3\n3,2\n4,1\n5,0\n6,10\n7,11\n8,12\n9,13\n"

  it("reads the ranks in order", function()
    assert.are.same({5, 4, 3, 2, 1, 0, 10, 11, 12, 13}, read(good))
    assert.are.same({5, 4, 3, 2, 1, 0, 10, 11, 12, 13}, read(good:gsub("\n", "\r\n")))
  end)

  it("refuses malformed files with the file and line", function()
    local cases = {
      {"index,rank\n", ":1: header must be 'rank,arch_index' (got 'index,rank')"},
      {"", ":1: header must be 'rank,arch_index' (got '')"},
      {good:gsub("3,2\n", "3,two\n"), ":5: expected two integers 'rank,arch_index' (got '3,two')"},
      {good:gsub("3,2\n", "3,2.5\n"), ":5: expected two integers"},
      {good:gsub("3,2\n", "3\n"), ":5: expected two integers 'rank,arch_index' (got '3')"},
      {good:gsub("1,4\n", "2,4\n"), ":3: rank 2 out of order (expected 1)"},
      {good:gsub("1,4\n", "1,-4\n"), ":3: arch_index -4 is negative"},
      {good:gsub("1,4\n", "1,5\n"), ":3: arch_index 5 listed twice"},
      {good:gsub("9,13\n", ""), ": 9 reference architectures (HELP uses 10)"},
      {good .. "10,14\n", ": 11 reference architectures (HELP uses 10)"},
    }
    for _, c in ipairs(cases) do
      local ok, err = read(c[1])
      assert.is_nil(ok)
      assert.is_truthy(err:find(c[2], 1, true), "error was: " .. tostring(err) .. "\nexpected: " .. c[2])
    end
    local ok, err = H.read_reference("/nonexistent/help.csv")
    assert.is_nil(ok)
    assert.matches("/nonexistent/help.csv: cannot open", err, 1, true)
  end)
end)

local dir = support.data_dir()
describe("the help kind (real data)", function()
  if not dir then
    pending(support.NO_DATA)
    return
  end
  local src = assert(nf.source.open{data = dir, space = "nb201"})
  local ref = assert(H.reference(src))
  local pre

  it("maps the reference files to the data's arch_index rows", function()
    -- HELP's index is the position in its latency lists, which is our arch_index (checked on all 15,625 1080ti_1
    -- values against HELP's own file when the data was converted)
    assert.are.equal("|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
      ref.archs[1])
    assert.are.equal(11983, ref.rows[1])
    local fsrc = assert(nf.source.open{data = dir, space = "fbnet"})
    local fref = assert(H.reference(fsrc))
    assert.are.equal("1-8-6-6-8-0-3-4-3-7-8-7-4-3-2-5-7-3-0-1-3-7", fref.archs[1])
  end)

  local sources = {"1080ti_1", "pixel3", "eyeriss", "gold_6226", "raspi4", "titan_rtx_32"}
  local function samples(target, k, seed)
    local measured = src:measured(target)
    local pick = core.Rng(seed):sample(#measured, k)
    local archs, ms = {}, {}
    for i, p in ipairs(pick) do archs[i], ms[i] = src.arch_strings[measured[p]], src:ms(target):get(measured[p]) end
    return {archs = archs, ms = ms}
  end

  it("fits, predicts in ms, saves and loads exactly", function()
    pre = assert(H.pretrain_shared{source = src, devices = sources, seed = 2, samples = 256,
      options = {episodes = 30, query = 50}})
    assert.are.same(sources, pre.devices)
    local P = assert(nf.model.fit{kind = "help", space = "nb201", samples = samples("pixel2", 20, 1),
      target = "pixel2", data = src, pretrained = pre})
    assert.are.equal("data", P.ref_from)
    assert.are.equal(30, P.adapt_rows)
    local list = {table.unpack(src.arch_strings, 1, 300)}
    local ms, info = P:predict(list, {interval = 0.9})
    for i = 1, 300 do assert.is_true(ms:get(i) > 0) end
    assert.are.equal(math.huge, info.hi:get(1))   -- no residuals: an infinite interval
    local path = os.tmpname()
    assert(P:save(path))
    local Q = assert(nf.model.load(path))
    os.remove(path)
    assert.are.same(ms:totable(), Q:predict(list):totable())
    assert.matches("HELP: MAML%-trained MLP %(second order, learned inner lr%)", tostring(Q))
    -- more inner steps at transfer than at meta-training (HELP's num_eval_updates): the network grows its workspace
    local P5 = assert(nf.model.fit{kind = "help", space = "nb201", samples = samples("pixel2", 20, 1),
      target = "pixel2", data = src, pretrained = pre, transfer_steps = 5})
    assert.matches("2 inner steps, 5 at transfer", tostring(P5), 1, true)
    assert.are_not.same(ms:totable(), P5:predict(list):totable())
    support.raises("option 'transfer_steps' must be an integer in 0..100", nf.model.fit, {kind = "help",
      space = "nb201", samples = samples("pixel2", 20, 1), pretrained = pre, transfer_steps = 1.5})
    -- the refit keeps the meta-trained network
    local R = assert(P:refit(samples("pixel2", 12, 3)))
    assert.are.equal(22, R.adapt_rows)
  end)

  it("uses k − 10 samples and the 10 reference measurements under the equal protocol", function()
    local s = samples("pixel2", 20, 4)
    s.archs[1], s.ms[1] = ref.archs[3], src:ms("pixel2"):get(ref.rows[3])   -- a reference among the samples
    local P = assert(nf.model.fit{kind = "help", space = "nb201", samples = s, target = "pixel2", data = src,
      pretrained = pre, protocol = "equal"})
    assert.are.equal(10, P.samples_used)
    assert.are.equal(20, P.adapt_rows)
    local E = assert(nf.model.fit{kind = "help", space = "nb201", samples = s, target = "pixel2", data = src,
      pretrained = pre})
    assert.are.equal(19, E.samples_used)
    assert.are.equal(29, E.adapt_rows)   -- the reference among the samples counted once
    assert.matches("adapted on 29 architectures: 19 samples and the 10 reference ones", tostring(E), 1, true)
  end)

  it("takes the reference latencies from the samples, or says which architectures to measure", function()
    local s = samples("pixel2", 5, 5)
    local P, err = nf.model.fit{kind = "help", space = "nb201", samples = s, target = "my_board", data = src,
      pretrained = pre}
    assert.is_nil(P)
    assert.matches("HELP needs the target's latencies on its 10 reference architectures", err, 1, true)
    assert.matches(ref.archs[10], err, 1, true)
    for i, a in ipairs(ref.archs) do s.archs[#s.archs + 1], s.ms[#s.ms + 1] = a, src:ms("pixel2"):get(ref.rows[i]) end
    P = assert(nf.model.fit{kind = "help", space = "nb201", samples = s, target = "my_board", data = src,
      pretrained = pre})
    assert.are.equal("samples", P.ref_from)
    support.raises("option 'protocol' must be \"extra\" or \"equal\"", nf.model.fit, {kind = "help", space = "nb201",
      samples = s, pretrained = pre, protocol = "same"})
    support.raises("option 'reference_ms' must be a list of 10 latencies", nf.model.fit, {kind = "help",
      space = "nb201", samples = s, pretrained = pre, reference_ms = {1, 2}})
  end)
end)
