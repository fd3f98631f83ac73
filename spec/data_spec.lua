local nf = require "nasflat"
local support = require "support"
local data = nf.data

local DATA = support.data_dir()
local min, max, ipairs = math.min, math.max, ipairs   -- locals: busted's environment makes globals slow

-- the float32 a CSV value becomes (latencies are stored as float)
local function f32(x) return (string.unpack("f", string.pack("f", x))) end
local function isnan(x) return x ~= x end

local function load_text(text)
  local path = support.tmpfile(text, ".csv")
  local lat, msg = data.load_latency(path)
  os.remove(path)
  return lat, msg, path
end

-- the message of loading `text` as a latency file, with the temp path written as "F"
local function lat_error(text)
  local lat, msg, path = load_text(text)
  assert.is_nil(lat)
  assert.is_string(msg)
  local plain = msg:sub(1, #path) == path and "F" .. msg:sub(#path + 1) or msg
  return plain
end

local DESKTOP_EMBEDDED_MOBILE = {
  "desktop_cpu_core_i7_7820x_fp32", "desktop_gpu_gtx_1080ti_fp32", "embedded_gpu_jetson_nano_fp16",
  "embedded_gpu_jetson_nano_fp32", "embedded_tpu_edge_tpu_int8", "mobile_cpu_snapdragon_450_cortex_a53_int8",
  "mobile_cpu_snapdragon_675_kryo_460_int8", "mobile_cpu_snapdragon_855_kryo_485_int8",
  "mobile_dsp_snapdragon_675_hexagon_685_int8", "mobile_dsp_snapdragon_855_hexagon_690_int8",
  "mobile_gpu_snapdragon_450_adreno_506_int8", "mobile_gpu_snapdragon_675_adreno_612_int8",
  "mobile_gpu_snapdragon_855_adreno_640_int8",
}
-- devices missing more than the 341 unconnected cells (README: Snapdragon 450 +32, 675 +23)
local EXTRA_MISSING = {
  mobile_cpu_snapdragon_450_cortex_a53_int8 = 32, mobile_gpu_snapdragon_450_adreno_506_int8 = 32,
  mobile_cpu_snapdragon_675_kryo_460_int8 = 23, mobile_dsp_snapdragon_675_hexagon_685_int8 = 23,
  mobile_gpu_snapdragon_675_adreno_612_int8 = 23,
}

describe("data on the real files", function()
  local ds, lat
  setup(function()
    if not DATA then return end
    ds = assert(data.open{space = "nb201", dir = DATA})
    lat = assert(ds:latency())
  end)
  teardown(function() if ds then ds:free() end end)

  it("loads nb201_latency.csv: 15,625 archs x 40 devices in file order", function()
    if not DATA then return pending(support.NO_DATA) end
    assert.equal(15625, lat:n_archs())
    assert.equal(40, lat:n_devices())
    local devs = lat:devices()
    assert.equal("1080ti_1", devs[1])
    assert.equal("1080ti_256", devs[2])
    assert.equal("titanxp_32", devs[40])
    assert.equal(25, lat:device_index("pixel2"))
    for _, r in ipairs{1, 2, 1235, 15625} do assert.equal(r - 1, lat:arch_index(r)) end
    assert.equal(1235, lat:row_of(1234))
    assert.is_nil(lat:row_of(15625))
    assert.equal("nasflat.Latency(15625 archs x 40 devices)", tostring(lat))
  end)

  it("reads known values exactly (awk on the CSV)", function()
    if not DATA then return pending(support.NO_DATA) end
    assert.equal("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
      lat:arch_string(1))
    assert.equal(f32(10.75437068939209), (lat:get(1, "1080ti_1")))
    assert.equal(f32(3.6058499999999998), (lat:get(1, "pixel3")))
    assert.equal(9, (lat:get(1, "essential_ph_1")))
    assert.equal(f32(2.965), (lat:get(1, "mobile_gpu_snapdragon_855_adreno_640_int8")))
    assert.equal(f32(5.305148399929749), (lat:get(1235, "raspi4")))
    assert.equal(f32(12.480239868164062), (lat:get(15625, "1080ti_1")))
    assert.equal(f32(18.01667137988261), (lat:get(15625, "raspi4")))
    assert.equal(f32(5.8518242836), (lat:get(7, "desktop_cpu_core_i7_7820x_fp32")))
    local lo, hi = lat:range("1080ti_1")
    assert.equal(f32(3.5966062545776367), lo)
    assert.equal(f32(17.08716869354248), hi)
    local _, norm = lat:get(1, "1080ti_1")
    assert.near((f32(10.75437068939209) - lo) / (hi - lo), norm, 1e-7)
    assert.equal(f32(10.75437068939209), lat:ms("1080ti_1"):get(1))
    assert.equal(f32(10.75437068939209), lat:ms(1):get(1))
  end)

  it("keeps the 341 unconnected cells missing on the desktop_/embedded_/mobile_ devices", function()
    if not DATA then return pending(support.NO_DATA) end
    local archs = assert(ds:archs())
    local unconnected = {}
    local n_unconnected = 0
    local connected = archs:column("connected")
    for r = 1, archs:n_rows() do
      if connected:get(r) == 0 then
        unconnected[archs:arch_index(r)] = true
        n_unconnected = n_unconnected + 1
      end
    end
    assert.equal(341, n_unconnected)
    assert.is_true(unconnected[1234])
    local special = {}
    for _, dev in ipairs(DESKTOP_EMBEDDED_MOBILE) do
      special[dev] = true
      local ms, norm = lat:ms(dev):totable(), lat:norm(dev):totable()
      local missing, nan_mismatch, unconnected_measured = 0, 0, 0
      for r = 1, #ms do
        local gone = isnan(ms[r])
        if gone ~= isnan(norm[r]) then nan_mismatch = nan_mismatch + 1 end   -- missing stays NaN in both
        if gone then missing = missing + 1 end
        if unconnected[lat:arch_index(r)] and (not gone or lat:get(r, dev) ~= nil) then
          unconnected_measured = unconnected_measured + 1
        end
      end
      assert.equal(0, nan_mismatch)
      assert.equal(0, unconnected_measured)
      assert.equal(341 + (EXTRA_MISSING[dev] or 0), missing)
      assert.equal(15625 - missing, lat:n_measured(dev))
      assert.equal(15625 - missing, #lat:measured(dev))
    end
    for _, dev in ipairs(lat:devices()) do
      if not special[dev] then assert.equal(15625, lat:n_measured(dev)) end
    end
  end)

  it("normalises each device to exactly [0,1] over its measured values", function()
    if not DATA then return pending(support.NO_DATA) end
    for d = 1, lat:n_devices() do
      local ms, norm = lat:ms(d):totable(), lat:norm(d):totable()
      local lo, hi = lat:range(d)
      local nlo, nhi, mlo, mhi = math.huge, -math.huge, math.huge, -math.huge
      for _, r in ipairs(lat:measured(d)) do
        local v, n = ms[r], norm[r]
        nlo, nhi = min(nlo, n), max(nhi, n)
        mlo, mhi = min(mlo, v), max(mhi, v)
      end
      assert.equal(0, nlo)
      assert.equal(1, nhi)
      assert.equal(lo, mlo)
      assert.equal(hi, mhi)
    end
  end)

  it("agrees with nb201_archs.csv, cost and accuracy row by row", function()
    if not DATA then return pending(support.NO_DATA) end
    local archs = assert(ds:archs())
    assert.equal(15625, archs:n_rows())
    assert.same({"arch_index", "arch_string", "op_vector", "e0_0to1", "e1_0to2", "e2_1to2", "e3_0to3",
                 "e4_1to3", "e5_2to3", "connected"}, archs:header())
    assert.equal("string", archs:column_type("op_vector"))
    assert.equal("number", archs:column_type("e0_0to1"))
    local strings = archs:column("arch_string")
    for r = 1, 15625, 97 do assert.equal(lat:arch_string(r), strings[r]) end
    assert.equal("2-0-0-0-0-1", archs:get(1235, "op_vector"))
    local cost = assert(ds:cost())
    assert.equal(12.306112, cost:get(cost:row_of(1234), "flops_M_cifar10"))
    local acc = assert(ds:accuracy())
    assert.equal(85.863333, acc:get(acc:row_of(0), "cifar10_test"))
    assert.equal(9.712, acc:row(1235).cifar10_valid)
    assert.same({"latency", "archs", "cost", "accuracy"}, ds:loaded())
    assert.equal(lat, ds:latency())   -- loaded once
  end)

  it("loads the zero-cost proxies, partial and the quoted NASLib subset", function()
    if not DATA then return pending(support.NO_DATA) end
    local zcp = assert(ds:zcp())
    assert.equal(9445, zcp:n_rows())
    assert.equal(1, zcp:row_of(0))
    assert.is_nil(zcp:row_of(10))   -- unconnected: no proxies
    local path = DATA .. "/zcp/nb201_zcp_naslib_subset491.csv"
    local t, msg = data.load_table(path)
    assert.is_nil(t)
    assert.equal(path .. ":493:1: duplicate arch_index 74 (first on line 2)", msg)
    local sub = assert(data.load_table(path, {duplicates = true}))
    assert.equal(1473, sub:n_rows())
    assert.same({1, 492, 983}, sub:rows_of(74))
    assert.equal("(2, 1, 1, 1, 1, 3)", sub:get(1, "naslib_key"))
    assert.equal("cifar10", sub:get(492, "dataset"))
    assert.equal(-100000000.0, sub:get(1, "epe_nas"))
    assert.equal(0.00018164233188144863, sub:get(1, "fisher"))
    sub:free()
  end)

  it("names line 812 and the column of a corrupted cell in a copy of the real file", function()
    if not DATA then return pending(support.NO_DATA) end
    local f = assert(io.open(DATA .. "/nb201_latency.csv", "rb"))
    local lines = {}
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
    -- field 5 (1080ti_32) of line 812 becomes "7.1x"; its column is one past the 4th comma
    local pos = 0
    for _ = 1, 4 do pos = lines[812]:find(",", pos + 1, true) end
    local rest = lines[812]:sub(pos + 1)
    lines[812] = lines[812]:sub(1, pos) .. "7.1x" .. rest:sub((rest:find(",", 1, true)))
    local path = support.tmpfile(table.concat(lines, "\n") .. "\n", ".csv")
    local bad, msg = data.load_latency(path)
    os.remove(path)
    assert.is_nil(bad)
    assert.equal(path .. ":812:" .. (pos + 1) .. ": device '1080ti_32' (column 5): not a number: '7.1x'", msg)
  end)

  it("loads fbnet: 5,000 archs x 27 devices, fully measured", function()
    if not DATA then return pending(support.NO_DATA) end
    local fb = assert(data.open{space = "fbnet", dir = DATA})
    local flat = assert(fb:latency())
    assert.equal(5000, flat:n_archs())
    assert.equal(27, flat:n_devices())
    for d = 1, 27 do assert.equal(5000, flat:n_measured(d)) end
    assert.equal("7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5", flat:arch_string(1))
    assert.equal(f32(10.615349732488394), (flat:get(1, "1080ti_1")))
    assert.equal(31, (flat:get(1, "essential_ph_1")))
    assert.equal(f32(12.274462705254555), (flat:get(5000, "titanxp_64")))
    assert.equal(f32(33.22502228216035), (flat:get(5000, "raspi4")))
    local archs = assert(fb:archs())
    assert.equal("string", archs:column_type("block_names"))
    assert.equal(22, #archs:header() - 3)
    local zcp = assert(fb:zcp())
    assert.equal(71.07379150390625, zcp:get(zcp:row_of(1), "zen"))
    local none, msg = fb:cost()
    assert.is_nil(none)
    assert.equal("fbnet: the data set has no cost file", msg)
    fb:free()
  end)
end)

describe("data: malformed latency files", function()
  it("rejects a row with the wrong field count", function()
    assert.equal("F:3:7: expected 3 fields as in the header, found 4",
      lat_error("arch_index,arch_string,gpu\n0,x,1\n1,y,2,3\n"))
    assert.equal("F:3:4: expected 3 fields as in the header, found 2",
      lat_error("arch_index,arch_string,gpu\n0,x,1\n1,y\n"))
  end)

  it("rejects a non-numeric value", function()
    assert.equal("F:3:5: device 'cpu' (column 3): not a number: '1.2.3'",
      lat_error("arch_index,gpu,cpu\n0,1,2\n1,2,1.2.3\n"))
    assert.equal("F:2:3: device 'gpu' (column 2): not a number: ' 1'", lat_error("arch_index,gpu\n0, 1\n"))
  end)

  it("rejects negative and non-finite latencies", function()
    assert.equal("F:2:3: device 'gpu' (column 2): latency must be finite and >= 0, found '-0.5' "
      .. "(leave the cell empty if it was not measured)", lat_error("arch_index,gpu\n0,-0.5\n"))
    assert.equal("F:3:3: device 'gpu' (column 2): latency must be finite and >= 0, found 'inf' "
      .. "(leave the cell empty if it was not measured)", lat_error("arch_index,gpu\n0,1\n1,inf\n"))
    assert.equal("F:2:3: device 'gpu' (column 2): latency '1e39' does not fit a float",
      lat_error("arch_index,gpu\n0,1e39\n"))
  end)

  it("rejects a duplicate or empty device name", function()
    assert.equal("F:1:32: duplicate device 'gpu' (column 5, first in column 3)",
      lat_error("arch_index,arch_string,gpu,cpu,gpu\n0,x,1,2,3\n"))
    assert.equal("F:1:16: empty device name (column 3)", lat_error("arch_index,gpu,,cpu\n0,1,2,3\n"))
  end)

  it("rejects a duplicate or malformed arch index", function()
    assert.equal("F:4:1: duplicate arch_index 0 (first on line 2)", lat_error("arch_index,gpu\n0,1\n1,2\n0,3\n"))
    assert.equal("F:5:1: duplicate arch_index 3 (first on line 3)",
      lat_error("arch_index,gpu\n5,1\n3,2\n4,1\n3,3\n5,4\n"))
    assert.equal("F:3:1: arch_index must be a non-negative integer, found '1.0'",
      lat_error("arch_index,gpu\n0,1\n1.0,2\n"))
  end)

  it("rejects an empty file and a header-only file", function()
    assert.equal("F:1:1: empty file (expected a header line)", lat_error(""))
    assert.equal("F:1:1: empty file (expected a header line)", lat_error("\r\n\n"))
    assert.equal("F:2:1: no data rows after the header", lat_error("arch_index,gpu\n"))
  end)

  it("rejects a missing header and a header without arch_index or devices", function()
    assert.equal("F:1:1: header must start with arch_index, found '0' (is the header line missing?)",
      lat_error("0,|a~0|,1.5\n1,|b~0|,2.5\n"))
    assert.equal("F:1:1: header must start with arch_index, found 'arch_string'",
      lat_error("arch_string,gpu\nx,1\n"))
    assert.equal("F:1:23: header names no device columns after arch_index,arch_string",
      lat_error("arch_index,arch_string\n0,x\n"))
  end)

  it("rejects a blank line inside the file", function()
    assert.equal("F:3:1: blank line (expected 2 fields as in the header)", lat_error("arch_index,gpu\n0,1\n\n1,2\n"))
  end)

  it("rejects an unterminated quoted field and text after a closing quote", function()
    assert.equal("F:2:3: unterminated quoted field", lat_error("arch_index,arch_string,gpu\n0,\"x\n1,y,2\n"))
    assert.equal("F:2:6: unexpected character 'y' after a closing quote",
      lat_error("arch_index,arch_string,gpu\n0,\"x\"y,2\n"))
    -- lines count inside quoted fields
    assert.equal("F:3:4: device 'gpu' (column 3): not a number: 'zz'",
      lat_error("arch_index,arch_string,gpu\n0,\"a\nb\",zz\n"))
  end)

  it("reports a missing file as a failure, not an error", function()
    local lat, msg = data.load_latency("/nonexistent/nb201_latency.csv")
    assert.is_nil(lat)
    assert.equal("/nonexistent/nb201_latency.csv: cannot open: No such file or directory", msg)
  end)

  it("accepts CRLF line endings, a missing final newline, quotes and a byte-order mark", function()
    local lat = assert(load_text("\239\187\191arch_index,arch_string,gpu,cpu\r\n"
      .. "1,\"|a,\"\"b\"\"|\",2.5,\r\n0,x,0.5,4\r\n2,y,,8"))
    assert.same({"gpu", "cpu"}, lat:devices())
    assert.equal(3, lat:n_archs())
    assert.same({0, 1, 2}, {lat:arch_index(1), lat:arch_index(2), lat:arch_index(3)})   -- sorted
    assert.equal('|a,"b"|', lat:arch_string(2))
    assert.same({0.5, 0}, {lat:get(1, "gpu")})
    assert.same({2.5, 1}, {lat:get(2, "gpu")})
    assert.is_nil(lat:get(3, "gpu"))
    assert.is_nil(lat:get(2, "cpu"))
    assert.same({8, 1}, {lat:get(3, "cpu")})
    assert.same({1, 3}, lat:measured("cpu"))
    assert.same({4, 8}, {lat:range("cpu")})
    local ms = lat:ms("cpu")
    assert.equal(4, ms:get(1))
    assert(isnan(ms:get(2)))
    assert(isnan(lat:norm("gpu"):get(3)))
    lat:free()
  end)
end)

describe("data: limits, non-regular files and NUL bytes (issue 15)", function()
  local NUL_MSG = "NUL byte in field 2 (CSV text must not contain NUL bytes; is the file binary or UTF-16?)"

  it("refuses a device or pipe instead of reading it until memory runs out", function()
    local lat, msg = data.load_latency("/dev/zero")
    assert.is_nil(lat)
    assert.equal("/dev/zero: cannot read: a character device, not a regular file "
      .. "(CSV files are read only from regular files)", msg)
    local tab, tmsg = data.load_table("/dev/zero")
    assert.is_nil(tab)
    assert.equal(msg, tmsg)
  end)

  it("refuses more than 1024 device columns before building anything", function()
    local names = {}
    for i = 1, 1025 do names[i] = string.format("d%04d", i) end
    local text = "arch_index," .. table.concat(names, ",") .. "\n0" .. string.rep(",", 1025) .. "\n"
    assert.equal("F:1:6156: 1025 device columns, more than the 1024 allowed (NF_LATENCY_MAX_DEVICES)",
      lat_error(text))
    names[1025] = nil
    local lat = assert(load_text("arch_index," .. table.concat(names, ",") .. "\n0" .. string.rep(",1", 1024) .. "\n"))
    assert.equal(1024, lat:n_devices())
    lat:free()
  end)

  it("refuses a path with a NUL byte instead of opening the file named by the part before it", function()
    local path = support.tmpfile("arch_index,gpu\n0,1\n", ".csv")
    assert(data.load_latency(path)):free()
    local lat, msg = data.load_latency(path .. "\0.bak")
    assert.is_nil(lat)
    assert.equal(path .. ": the path has a NUL byte at byte " .. (#path + 1) .. " (a file name cannot contain NUL)", msg)
    local tab, tmsg = data.load_table(path .. "\0", {key = false})
    os.remove(path)
    assert.is_nil(tab)
    assert.equal(msg, tmsg)
  end)

  it("refuses a NUL byte in a field instead of cutting the field there", function()
    assert.equal("F:2:5: " .. NUL_MSG, lat_error("arch_index,arch_string,gpu\n0,ab\0c,1.5\n"))
    assert.equal("F:1:14: " .. NUL_MSG, lat_error("arch_index,gp\0u\n0,1\n"))
    local path = support.tmpfile("arch_index,arch_string\n0,\"x\0\"\n", ".csv")
    local tab, msg = data.load_table(path)
    os.remove(path)
    assert.is_nil(tab)
    assert.equal(path .. ":2:5: " .. NUL_MSG, msg)
  end)
end)

describe("data: Latency userdata", function()
  local TEXT = "arch_index,gpu,cpu,npu\n0,1,2,\n1,3,2,\n"

  it("returns nil, message listing the devices for an unknown device", function()
    local lat = assert(load_text(TEXT))
    local msg = "unknown device 'tpu' (known: gpu, cpu, npu)"
    assert.same({nil, msg}, {lat:device_index("tpu")})
    assert.same({nil, msg}, {lat:ms("tpu")})
    assert.same({nil, msg}, {lat:norm("tpu")})
    assert.same({nil, msg}, {lat:measured("tpu")})
    assert.same({nil, msg}, {lat:get(1, "tpu")})
    assert.same({nil, msg}, {lat:range("tpu")})
    assert.same({nil, "device 'npu' has no measured values"}, {lat:range("npu")})
    assert.equal(0, lat:n_measured("npu"))
    assert.equal("", lat:arch_string(1))   -- no arch_string column
    -- constant device: normalised to 0
    assert.same({2, 0}, {lat:get(2, "cpu")})
  end)

  it("raises on programmer errors", function()
    local lat = assert(load_text(TEXT))
    support.raises("bad argument #1 to 'get' (row 0 out of range 1..2)", function() return lat:get(0, "gpu") end)
    support.raises("bad argument #1 to 'ms' (device 4 out of range 1..3)", function() return lat:ms(4) end)
    support.raises("device name or number expected, got table", function() return lat:ms({}) end)
    support.raises("data.load_latency: path must be a string (got nil)", data.load_latency)
  end)

  it("frees idempotently and refuses use after free", function()
    local lat = assert(load_text(TEXT))
    assert.equal("nasflat.Latency(2 archs x 3 devices)", tostring(lat))
    lat:free()
    lat:free()
    assert.equal("nasflat.Latency (closed)", tostring(lat))
    support.raises("attempt to use a closed Latency", function() return lat:n_archs() end)
    do
      local l2 <close> = assert(load_text(TEXT))
      lat = l2
    end
    support.raises("attempt to use a closed Latency", function() return lat:ms("gpu") end)
  end)
end)

describe("data: Latency from arrays", function()
  it("builds the same object as the equivalent file", function()
    local nan = 0 / 0
    local ms = nf.Tensor.from{{3, nan}, {1, 10}, {2, 30}}
    local lat = data.latency_from(ms, {devices = {"gpu", "cpu"}, arch_index = {2, 0, 1},
                                       arch_strings = {"|a,b|", "x", ""}})
    local file = assert(load_text("arch_index,arch_string,gpu,cpu\n2,\"|a,b|\",3,\n0,x,1,10\n1,,2,30\n"))
    for r = 1, 3 do
      assert.equal(file:arch_index(r), lat:arch_index(r))
      assert.equal(file:arch_string(r), lat:arch_string(r))
      for d = 1, 2 do assert.same({file:get(r, d)}, {lat:get(r, d)}) end
    end
    assert.same({1, 2, 3}, lat:measured("gpu"))
    assert.same({1, 2}, lat:measured("cpu"))   -- rows sorted: arch 2 (cpu not measured) is row 3
    assert.equal("(from arrays)", lat:path())
    local plain = data.latency_from(ms, {devices = {"gpu", "cpu"}})
    assert.equal(2, plain:arch_index(3))
    assert.equal("", plain:arch_string(1))
  end)

  it("raises on bad input", function()
    local ms = nf.Tensor.from{{1, 2}, {3, 4}}
    support.raises("nf_latency_from_arrays: arch_index 5 appears at rows 0 and 1",
      data.latency_from, ms, {devices = {"a", "b"}, arch_index = {5, 5}})
    support.raises("nf_latency_from_arrays: ms[row 1, device 'b'] = -4 is not a latency",
      data.latency_from, nf.Tensor.from{{1, 2}, {3, -4}}, {devices = {"a", "b"}})
    support.raises("nf_latency_from_arrays: duplicate device 'a' (devices 0 and 1)",
      data.latency_from, ms, {devices = {"a", "a"}})
    support.raises("(3 device names for 2 tensor columns)", data.latency_from, ms, {devices = {"a", "b", "c"}})
    support.raises("data.latency_from: option 'devices' (a list of names) is required", data.latency_from, ms, {})
    support.raises("data.latency_from: unknown option 'names'",
      data.latency_from, ms, {devices = {"a", "b"}, names = 1})
  end)
end)

describe("data: tables", function()
  local TEXT = "arch_index,arch_string,score,tag\n3,a,0.5,x\n1,\"b,c\",,7\n"

  it("detects numeric and string columns, keeps file order, looks up by arch index", function()
    local path = support.tmpfile(TEXT, ".csv")
    local tab = assert(data.load_table(path))
    assert.equal("nasflat.Table(2 rows x 4 columns)", tostring(tab))
    assert.equal(2, #tab)
    assert.same({"arch_index", "arch_string", "score", "tag"}, tab:header())
    assert.equal("arch_index", tab:key())
    assert.same({"a", "b,c"}, tab:column("arch_string"))
    assert.same({"x", "7"}, tab:column("tag"))
    local score = tab:column("score")
    assert.equal(0.5, score:get(1))
    assert(isnan(score:get(2)))
    assert.is_nil(tab:get(2, "score"))
    assert.equal(3, tab:get(1, 1))
    assert.same({arch_index = 1, arch_string = "b,c", tag = "7"}, tab:row(2))
    assert.equal(2, tab:row_of(1))
    assert.is_nil(tab:row_of(2))
    assert.same({}, tab:rows_of(2))
    assert.same({nil, "unknown column 'nope' (known: arch_index, arch_string, score, tag)"}, {tab:column("nope")})
    tab:free()
    tab:free()
    support.raises("attempt to use a closed Table", function() return tab:n_rows() end)
    os.remove(path)
  end)

  it("applies the options and reports their errors", function()
    local path = support.tmpfile(TEXT, ".csv")
    local tab = assert(data.load_table(path, {strings = {"score"}, key = false}))
    assert.equal("string", tab:column_type("score"))
    assert.is_nil(tab:key())
    support.raises("has no key column", function() return tab:row_of(3) end)
    assert.same({nil, path .. ":2:9: column 'tag' (column 4): not a number: 'x'"},
      {data.load_table(path, {numbers = {"score", "tag"}})})
    assert.same({nil, path .. ": column 'rank' (a number column in the options) is not in the header"},
      {data.load_table(path, {numbers = {"rank"}})})
    assert.same({nil, path .. ": key column 'rank' is not in the header"}, {data.load_table(path, {key = "rank"})})
    support.raises("load_table: unknown option 'string' (allowed: strings, numbers, key, duplicates)",
      data.load_table, path, {string = {"x"}})
    support.raises("column 'score' is named both as a string and as a number column",
      data.load_table, path, {strings = {"score"}, numbers = {"score"}})
    support.raises("option 'strings' entry 1 must be a string (got number)", data.load_table, path, {strings = {1}})
    os.remove(path)
  end)
end)

describe("data: directory and Dataset", function()
  it("resolves the directory: option, then NASFLAT_DATA, then the fallback", function()
    local d = support.tmpdir()
    assert.equal(d, data.dir{dir = d, env = "/nonexistent"})
    assert.equal(d, data.dir{env = d, fallback = "/nonexistent"})
    assert.equal(d, data.dir{env = false, fallback = d})
    assert.same({nil, "data directory not found: option dir='/nonexistent' is not a directory"},
      {data.dir{dir = "/nonexistent", env = d}})
    assert.same({nil, "data directory not found: option dir not given; NASFLAT_DATA='/nonexistent' is not a directory"},
      {data.dir{env = "/nonexistent", fallback = d}})
    assert.same({nil, "data directory not found: option dir not given; NASFLAT_DATA not set; "
      .. "'/nonexistent' is not a directory"},
      {data.dir{env = false, fallback = "/nonexistent"}})
    support.raises("data.dir: unknown option 'path' (allowed: dir, env, fallback)", data.dir, {path = d})
    os.remove(d)
  end)

  it("opens a space lazily and reports missing files on use", function()
    local d = support.tmpdir()
    local ds = assert(data.open{space = "nb201", dir = d})
    assert.same({}, ds:loaded())
    assert.equal(d .. "/nb201_latency.csv", ds:path("latency"))
    assert.same({nil, d .. "/nb201_latency.csv: cannot open: No such file or directory"}, {ds:latency()})
    local f = assert(io.open(d .. "/nb201_latency.csv", "w"))
    f:write("arch_index,gpu\n0,1\n")
    f:close()
    local lat = assert(ds:latency())
    assert.equal(lat, ds:latency())
    assert.same({"latency"}, ds:loaded())
    assert.equal("nasflat.Dataset(nb201 at " .. d .. "; loaded: latency)", tostring(ds))
    ds:free()
    ds:free()
    assert.equal("nasflat.Latency (closed)", tostring(lat))
    support.raises("attempt to use a closed Dataset", function() return ds:latency() end)
    os.remove(d .. "/nb201_latency.csv")
    os.remove(d)
  end)

  it("raises on bad options and returns nil, message without a directory", function()
    support.raises("data.open: option 'space' must be \"nb201\" or \"fbnet\" (got nas101)",
      data.open, {space = "nas101"})
    support.raises("data.open: unknown option 'device' (allowed: space, dir, env, fallback)",
      data.open, {space = "nb201", device = "x"})
    support.raises("data.open: expected an options table", data.open, "nb201")
    assert.same({nil, "data directory not found: option dir='/nonexistent' is not a directory"},
      {data.open{space = "fbnet", dir = "/nonexistent"}})
    local ds = assert(data.open{space = "fbnet", dir = support.tmpdir()})
    support.raises("Dataset:path: unknown file kind 'ops'", function() return ds:path("ops") end)
    assert.same({nil, "fbnet: the data set has no accuracy file"}, {ds:accuracy()})
    os.remove(ds.dir)
  end)
end)

describe("data bindings and hostile tables", function()
  it("read lists raw, once: a proxy table's metamethods are not followed (no dangling names)", function()
    local core = require "nasflat.core"
    local proxy = setmetatable({}, {__len = function() return 2 end,
      __index = function(_, i) return "dev" .. i .. string.rep("x", 40) end})
    local ms = core.Tensor.from{{1, 2}, {3, 4}}
    local ok, err = pcall(data.latency_from, ms, {devices = proxy})
    assert.is_false(ok)
    assert.matches("0 device names for 2 tensor columns", err)
    local lat = data.latency_from(ms, {devices = {"a", "b"}})
    assert.equal(2, lat:n_devices())
    local opts = setmetatable({}, {__index = function(_, k) if k == "strings" then return {"x"} end end})
    local path = support.tmpfile("arch_index,x\n0,1\n")
    local tab = assert(require("nasflat.data").load_table(path, opts))   -- the proxied option is not seen
    assert.equal("number", tab:column_type("x"))
    os.remove(path)
  end)
end)
