-- nasflat.engine: the real networks in C. Counts against the space's own per-layer breakdown and cost, numerics
-- (determinism, batch rows, the zero op), errors, and the independent check against PyTorch
-- (tools/torch_check.py; pending when no python3 with torch is found). Nothing here depends on timing.
local support = require "support"
local engine = require "nasflat.engine"
local core = require "nasflat.core"
local space = require "nasflat.space"

local NB, FB = space.get("nb201"), space.get("fbnet")
local A1 = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
local F1 = "7-1-5-3-8-2-0-4-6-1-8-8-3-2-5-7-0-6-4-8-1-2"

local FIELDS = {"kind", "cin", "cout", "hin", "hout", "kernel", "stride", "groups", "arity", "relu_in", "bn", "relu_out",
  "flops", "params"}

--- Compare the engine's ops with space:layers and its totals with space:cost; returns a mismatch or nil.
local function mismatch(sp, arch)
  local c = assert(engine.counts{space = sp.name, arch = arch})
  local L = sp:layers(arch)
  if #c.layers ~= #L then return string.format("%s: %d ops, %d layers", arch, #c.layers, #L) end
  for i, l in ipairs(L) do
    for _, k in ipairs(FIELDS) do
      if c.layers[i][k] ~= l[k] then
        return string.format("%s: op %d field %s: engine %s, space %s", arch, i, k, tostring(c.layers[i][k]),
          tostring(l[k]))
      end
    end
  end
  local params_mb, flops_m = sp:cost(arch)
  if math.abs(c.flops - flops_m * 1e6) > 1e-6 * c.flops or math.abs(c.params - params_mb * 1e6) > 1e-6 * c.params then
    return string.format("%s: flops %.0f vs %.0f, params %.0f vs %.0f", arch, c.flops, flops_m * 1e6, c.params,
      params_mb * 1e6)
  end
end

describe("engine counts", function()
  it("equal space:layers and space:cost for 3,000 random NB201 cells (ctest/test_engine.c: all 15,625)", function()
    local bad = {}
    for _, a in ipairs(NB:sample(core.Rng(5), 3000)) do
      local m = mismatch(NB, a)
      if m then bad[#bad + 1] = m end
    end
    assert.are.same({}, bad)
  end)

  it("equal space:layers and space:cost for 1,000 random FBNet architectures and the all-same ones", function()
    local list = FB:sample(core.Rng(13), 1000)
    for b = 0, 8 do list[#list + 1] = (tostring(b) .. "-"):rep(22):sub(1, 43) end
    local bad = {}
    for _, a in ipairs(list) do
      local m = mismatch(FB, a)
      if m then bad[#bad + 1] = m end
    end
    assert.are.same({}, bad)
  end)

  it("run the zero op as a layer and skip as nothing", function()
    local c = assert(engine.counts{space = "nb201", arch = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"})
    local zero, conv = 0, 0
    for _, l in ipairs(c.layers) do
      if l.kind == "zero" then zero = zero + 1 end
      if l.kind == "conv" and l.block >= 0 then conv = conv + 1 end
    end
    assert.are.equal(5 * 15, zero)   -- five none edges per cell, 15 cells
    assert.are.equal(0, conv)
  end)
end)

describe("engine numerics", function()
  it("is deterministic and finite, and batch row 1 equals a batch of one", function()
    for _, case in ipairs{{"nb201", A1, 10}, {"fbnet", F1, 100}} do
      local e1 = assert(engine.new{space = case[1], arch = case[2], seed = 4})
      local e3 = assert(engine.new{space = case[1], arch = case[2], seed = 4, batch = 3})
      e1:run()
      local y1 = e1:output()
      e1:run()
      assert.are.same(y1, e1:output())
      e3:run()
      local y3 = e3:output()
      assert.are.equal(case[3], #y1)
      assert.are.equal(3 * case[3], #y3)
      local scale = 0
      for _, v in ipairs(y1) do
        assert.is_true(v == v and math.abs(v) < math.huge)
        scale = math.max(scale, math.abs(v))
      end
      assert.is_true(scale > 0)
      for k = 1, case[3] do assert.is_true(math.abs(y1[k] - y3[k]) <= 1e-5 * scale) end
      e1:free()
      e3:free()
    end
  end)

  it("gives the same logits to a cell with a dead conv branch and to the cell without it", function()
    local dead = assert(engine.new{space = "nb201", arch = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"})
    local none = assert(engine.new{space = "nb201", arch = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"})
    dead:run()
    none:run()
    assert.are.same(none:output(), dead:output())
  end)

  it("depthwise direct and through sgemm agree", function()
    local a = assert(engine.new{space = "fbnet", arch = F1, seed = 2})
    local b = assert(engine.new{space = "fbnet", arch = F1, seed = 2, dw_gemm = true})
    a:run()
    b:run()
    local ya, yb, scale = a:output(), b:output(), 0
    for _, v in ipairs(ya) do scale = math.max(scale, math.abs(v)) end
    for k = 1, #ya do assert.is_true(math.abs(ya[k] - yb[k]) <= 1e-5 * scale) end
  end)

  it("profiles one time per op and benches wall and CPU times", function()
    local e = assert(engine.new{space = "nb201", arch = A1})
    local sec = e:profile{repeats = 1}
    assert.are.equal(e:info().ops, #sec)
    local wall, cpu = e:bench{warmup = 0, repeats = 2}
    assert.are.equal(2, #wall)
    assert.are.equal(2, #cpu)
    assert.is_true(wall[1] > 0 and cpu[1] >= 0)
    assert.truthy(tostring(e):find("^nasflat.Engine%(%d+ ops, batch 1"))
  end)
end)

describe("engine errors", function()
  it("returns nil, message for a malformed arch string", function()
    local e, err = engine.new{space = "nb201", arch = "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"}
    assert.is_nil(e)
    assert.truthy(err:find("nb201 arch string: unknown op 'bogus' (expected none,", 1, true))
    assert.truthy(err:find("at column 2 (edge 1, 0->1)", 1, true))
    local c, cerr = engine.counts{space = "fbnet", arch = "1-2-3"}
    assert.is_nil(c)
    assert.truthy(cerr:find("expected 22 blocks", 1, true))
  end)

  it("raises on programmer errors", function()
    support.raises("engine.new: unknown option 'batchsize'", engine.new, {space = "nb201", arch = A1, batchsize = 2})
    support.raises("engine.new: option 'space' must be nb201 or fbnet", engine.new, {space = "nb301", arch = A1})
    support.raises("engine.new: option 'batch' must be an integer in 1..4096", engine.new,
      {space = "nb201", arch = A1, batch = 0})
    support.raises("engine.new: option 'arch' is required", engine.new, {space = "nb201"})
    local e = assert(engine.new{space = "nb201", arch = A1})
    support.raises("Engine:bench: option 'repeats' must be in 1..1000000", e.bench, e, {repeats = 0})
    support.raises("Engine:bench: unknown option 'reps'", e.bench, e, {reps = 1})
    e:free()
    e:free()
    support.raises("attempt to use a closed Engine", e.run, e)
    assert.are.equal("nasflat.Engine (closed)", tostring(e))
  end)

  it("export to an unwritable path returns nil, message", function()
    local e = assert(engine.new{space = "nb201", arch = A1})
    e:run()
    local ok, err = e:export("/nonexistent-dir/x.bin")
    assert.is_nil(ok)
    assert.truthy(err:find("cannot open for writing", 1, true))
  end)
end)

--- A python3 that imports torch: $NASFLAT_PYTHON, python3, /usr/bin/python3; nil if none.
local function torch_python()
  for _, py in ipairs{os.getenv("NASFLAT_PYTHON") or "", "python3", "/usr/bin/python3"} do
    if py ~= "" then
      local r = support.capture(support.quote(py) .. " -c 'import torch, numpy' >/dev/null")
      if r.code == 0 then return py end
    end
  end
end

describe("engine against PyTorch (tools/torch_check.py)", function()
  local py = torch_python()
  local nb = {A1, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|",
    "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"}
  local fb = {F1, "0-1-2-3-4-5-6-7-8-0-1-2-3-4-5-6-7-8-0-1-2-3", "8-8-8-8-8-8-8-8-8-8-8-8-8-8-8-8-8-8-8-8-8-8",
    "5-5-1-1-5-1-5-1-5-1-5-1-5-1-5-1-5-1-5-1-5-1"}
  for _, a in ipairs(FB:sample(core.Rng(99), 2)) do fb[#fb + 1] = a end
  if not py then
    pending("python3 with torch and numpy not found (Debian: apt-get install python3-torch; or set NASFLAT_PYTHON)")
    return
  end
  it("agrees within 1e-4 (relative to the largest logit) on 6 NB201 cells and 6 FBNet architectures", function()
    local dir = support.tmpdir()
    local files = {}
    for i, case in ipairs{{"nb201", nb}, {"fbnet", fb}} do
      for j, a in ipairs(case[2]) do
        local e = assert(engine.new{space = case[1], arch = a, batch = 2, seed = 10 * i + j})
        e:run()
        local path = string.format("%s/%s-%d.bin", dir, case[1], j)
        assert(e:export(path))
        e:free()
        files[#files + 1] = support.quote(path)
      end
    end
    local r = support.capture(support.quote(py) .. " tools/torch_check.py --tol 1e-4 " .. table.concat(files, " "))
    os.execute("rm -rf " .. support.quote(dir))
    assert.are.equal(0, r.code, r.out .. r.err)
    local oks = select(2, r.out:gsub("\nok ", "")) + (r.out:sub(1, 3) == "ok " and 1 or 0)
    assert.are.equal(12, oks, r.out)
  end)
end)
