local support = require "support"
local zoo = require "nasflat.zoo"
local space = require "nasflat.space"
local metrics = require "nasflat.metrics"

local CLASSES = {gpu_b1 = 2, gpu_batch = 2, cpu_desktop = 2, cpu_mobile = 2, gpu_mobile = 1, dsp = 2, npu = 1, fpga = 1}
local PHONE = {cpu_mobile = true, gpu_mobile = true, dsp = true, npu = true}

-- one latency set per space, built once (about half a second for nb201)
local cache = {}
local function lat(space_name)
  if not cache[space_name] then cache[space_name] = assert(zoo.latency{space = space_name, seed = 1}) end
  return cache[space_name]
end

local function rho(l, a, b) return metrics.spearman(l:ms(a), l:ms(b)) end

describe("zoo devices", function()
  it("lists thirteen devices in eight classes", function()
    local devs = zoo.devices()
    assert.equal(13, #devs)
    local per = {}
    local seen = {}
    for _, d in ipairs(devs) do
      assert.is_nil(seen[d.name])
      seen[d.name] = true
      per[d.class] = (per[d.class] or 0) + 1
      assert.is_string(d.about)
    end
    assert.same(CLASSES, per)
    assert.equal("gpu_b1", zoo.classes()["gpu_server_a_b1"])
    assert.equal(13, #zoo.names())
  end)
end)

describe("zoo.latency", function()
  it("has the shape of a real latency dataset", function()
    local nb = lat("nb201")
    assert.equal(15625, nb:n_archs())
    assert.equal(13, nb:n_devices())
    assert.same(zoo.names(), nb:devices())
    assert.equal("synthetic zoo v1 (nb201, seed 1)", nb:path())
    local sp = space.get("nb201")
    for _, i in ipairs({1, 2, 5000, 15625}) do
      assert.equal(sp:at(i), nb:arch_string(i))
      assert.equal(i - 1, nb:arch_index(i))
    end
    local fb = lat("fbnet")
    assert.equal(5000, fb:n_archs())
    local fs = space.get("fbnet")
    for _, i in ipairs({1, 2500, 5000}) do assert.is_table(fs:parse(fb:arch_string(i))) end
    local norm = fb:norm("cpu_mobile_big")
    assert.equal(0, norm:min())
    assert.equal(1, norm:max())
  end)

  it("does not run nb201 cells without an input->output path on phone devices", function()
    local nb = lat("nb201")
    for _, d in ipairs(zoo.devices()) do
      assert.equal(PHONE[d.class] and 15625 - 341 or 15625, nb:n_measured(d.name), d.name)
      assert.equal(5000, lat("fbnet"):n_measured(d.name))
    end
    -- the all-none cell (row 1) is such a cell
    assert.is_nil(nb:get(1, "dsp_a_int8"))
    assert.is_number(nb:get(1, "gpu_server_a_b1"))
  end)

  it("is deterministic for a seed; another seed changes only the noise", function()
    local a = zoo.latency{space = "fbnet", seed = 1, devices = {"gpu_server_a_b1", "npu_edge_int8"}}
    local b = zoo.latency{space = "fbnet", seed = 1, devices = {"gpu_server_a_b1", "npu_edge_int8"}}
    local c = zoo.latency{space = "fbnet", seed = 2, devices = {"gpu_server_a_b1", "npu_edge_int8"}}
    assert.same(a:ms(1):totable(), b:ms(1):totable())
    assert.same(a:ms(2):totable(), b:ms(2):totable())
    assert.not_same(a:ms(1):totable(), c:ms(1):totable())
    assert.equal(a:arch_string(77), c:arch_string(77))   -- same architectures for every seed
    assert.is_true(metrics.spearman(a:ms(1), c:ms(1)) > 0.95)
    -- a device's numbers do not depend on which other devices were asked for
    assert.same(lat("fbnet"):ms("npu_edge_int8"):totable(), a:ms("npu_edge_int8"):totable())
  end)

  it("adds noise on top of the model; noise = false gives the model values", function()
    local clean = zoo.latency{space = "nb201", archs = 50, noise = false, devices = {"cpu_mobile_big", "cpu_mobile_mid"}}
    assert.equal(50, clean:n_archs())
    local sp = space.get("nb201")
    for i = 1, 50, 7 do
      local v = zoo.latency_one("nb201", sp:at(i), "cpu_mobile_big")
      local got = clean:get(i, "cpu_mobile_big")
      if v ~= v then assert.is_nil(got) else assert.is_true(math.abs(got - v) <= 1e-6 * v) end
    end
    -- with noise the mid-range phone reports whole milliseconds, like the real phones of the data
    local noisy = lat("nb201")
    for i = 2, 15625, 997 do
      local v = noisy:get(i, "cpu_mobile_mid")
      if v then assert.equal(math.floor(v), v) end
    end
  end)

  it("reports unknown devices and bad options", function()
    local l, err = zoo.latency{devices = {"gpu_server_a_b1", "tpu_v9"}}
    assert.is_nil(l)
    assert.matches("unknown zoo device 'tpu_v9' %(known: gpu_server_a_b1, ", err)
    support.raises("zoo.latency: unknown option 'device' (allowed: archs, devices, noise, seed, space)",
      zoo.latency, {device = "x"})
    support.raises("zoo.latency: space must be 'nb201' or 'fbnet' (got darts)", zoo.latency, {space = "darts"})
    support.raises("zoo.latency: option 'seed' must be an integer (got 1.5)", zoo.latency, {seed = 1.5})
    support.raises("zoo: device 'cpu_desktop_8c' asked for twice", zoo.latency, {devices = {"cpu_desktop_8c", "cpu_desktop_8c"}})
    assert.is_nil((zoo.latency_one("nb201", "0-0-0-0-0-3", "nope")))
  end)
end)

describe("zoo correlation structure", function()
  for _, sp in ipairs({"nb201", "fbnet"}) do
    it(sp .. ": devices of one class agree (Spearman > 0.9)", function()
      local l, devs = lat(sp), zoo.devices()
      for i = 1, #devs do
        for j = i + 1, #devs do
          if devs[i].class == devs[j].class then
            local r = rho(l, devs[i].name, devs[j].name)
            assert.is_true(r > 0.9, string.format("%s vs %s: %.3f", devs[i].name, devs[j].name, r))
          end
        end
      end
    end)

    it(sp .. ": batch-1 GPUs and phone devices disagree (mean Spearman in 0.3..0.8)", function()
      local l, devs = lat(sp), zoo.devices()
      local sum, n = 0, 0
      for _, g in ipairs(devs) do
        if g.class == "gpu_b1" then
          for _, p in ipairs(devs) do
            if PHONE[p.class] then
              local r = rho(l, g.name, p.name)
              assert.is_true(r > 0.05 and r < 0.9, string.format("%s vs %s: %.3f", g.name, p.name, r))
              sum, n = sum + r, n + 1
            end
          end
        end
      end
      local mean = sum / n
      assert.is_true(mean > 0.3 and mean < 0.8, string.format("mean %.3f", mean))
    end)
  end

  it("has hard pairs in both spaces (some cross-class Spearman below 0.35)", function()
    assert.is_true(rho(lat("nb201"), "gpu_server_a_b1", "npu_edge_int8") < 0.35)
    assert.is_true(rho(lat("fbnet"), "gpu_server_a_b1", "cpu_mobile_mid") < 0.35)
  end)
end)

describe("zoo tasks", function()
  it("splits sources and targets over known devices, never both", function()
    local known = {}
    for _, n in ipairs(zoo.names()) do known[n] = true end
    assert.same({"ZD", "Z1", "Z2", "Z3", "Z4"}, zoo.task_names("nb201"))
    for _, name in ipairs(zoo.task_names("fbnet")) do
      local t = assert(zoo.task("fbnet", name))
      assert.equal(name, t.name)
      assert.equal("fbnet", t.space)
      assert.is_true(t.synthetic)
      local src = {}
      for _, d in ipairs(t.train) do assert.is_true(known[d], d); src[d] = true end
      for _, d in ipairs(t.test) do assert.is_true(known[d], d); assert.is_nil(src[d], d) end
    end
    assert.equal("ZD", zoo.task("nb201").name)
    local t, err = zoo.task("nb201", "ND")
    assert.is_nil(t)
    assert.equal("unknown zoo task 'ND' (known: ZD, Z1, Z2, Z3, Z4)", err)
  end)
end)

describe("zoo calibration against the real data", function()
  local DATA = support.data_dir()

  -- Spearman of two columns of a real latency CSV (plain Lua io), over rows where both are measured.
  local function real_rho(path, a, b)
    local f = assert(io.open(path))
    local header = {}
    for name in (f:read("l") .. ","):gmatch("([^,]*),") do header[#header + 1] = name end
    local ia, ib
    for i, name in ipairs(header) do
      if name == a then ia = i end
      if name == b then ib = i end
    end
    local x, y = {}, {}
    for line in f:lines() do
      local v = {}
      for cell in (line .. ","):gmatch("([^,]*),") do v[#v + 1] = cell end
      x[#x + 1] = v[ia] == "" and 0 / 0 or tonumber(v[ia])
      y[#y + 1] = v[ib] == "" and 0 / 0 or tonumber(v[ib])
    end
    f:close()
    return metrics.spearman(x, y)
  end

  it("the real classes show the spread the zoo imitates", function()
    if not DATA then return pending(support.NO_DATA) end
    local nb, fb = DATA .. "/nb201_latency.csv", DATA .. "/fbnet_latency.csv"
    -- within class: two batch-1 GPUs agree
    assert.is_true(real_rho(nb, "1080ti_1", "titan_rtx_1") > 0.9)
    assert.is_true(real_rho(fb, "2080ti_1", "titanx_1") > 0.9)
    -- batch-1 GPU vs phones: 0.3..0.8 on nb201, lower on fbnet; the edge TPU is the outlier
    local r = real_rho(nb, "1080ti_1", "mobile_cpu_snapdragon_855_kryo_485_int8")
    assert.is_true(r > 0.3 and r < 0.8, r)
    r = real_rho(fb, "1080ti_1", "pixel3")
    assert.is_true(r > 0.1 and r < 0.5, r)
    assert.is_true(real_rho(nb, "1080ti_1", "embedded_tpu_edge_tpu_int8") < 0.35)
  end)
end)
