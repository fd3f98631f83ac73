-- nasflat.measure and `nasflat measure`: the CSV in the data's schema, its spread and sidecar files, resuming (after
-- a clean stop, a line cut short, and a real kill -9), errors. Latencies are not asserted (timing-free): only that
-- they are positive numbers and that every architecture appears exactly once.
local support = require "support"
local measure = require "nasflat.measure"
local cjson = require "cjson"

local NB = {
  "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
  "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|",
  "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|",
  "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
  "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
  "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
}
local FAST = {repeats = 1, warmup = 0}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function lines(path)
  local out = {}
  for l in read(path):gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

local function run(opts)
  local o = {space = "nb201", repeats = FAST.repeats, warmup = FAST.warmup}
  for k, v in pairs(opts) do o[k] = v end
  return measure.run(o)
end

--- A Lua script that runs the CLI with this process's module paths.
local function cli_script()
  return support.tmpfile(string.format("package.path = %q\npackage.cpath = %q\nos.exit(require('nasflat.cli').main(arg))\n",
    package.path, package.cpath), ".lua")
end

local function nasflat(script, args)
  local parts = {"lua5.4", support.quote(script)}
  for _, a in ipairs(args) do parts[#parts + 1] = support.quote(a) end
  return support.capture(table.concat(parts, " "))
end

describe("measure.run", function()
  local dir
  before_each(function() dir = support.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. support.quote(dir)) end)

  it("writes the data's schema, the spread file and the sidecar, and resumes", function()
    local out = dir .. "/local.csv"
    local r = assert(run{archs = {NB[1], NB[2], NB[3], NB[4], NB[1]}, out = out, device = "here_b1_t1"})
    assert.are.equal(4, r.measured)   -- the duplicate dropped
    assert.are.equal(0, r.skipped)
    local L = lines(out)
    assert.are.equal("arch_index,arch_string,here_b1_t1", L[1])
    assert.are.equal(5, #L)
    local seen = {}
    for i = 2, #L do
      local idx, a, ms = L[i]:match("^(%-?%d+),([^,]+),([^,]+)$")
      assert.truthy(idx, L[i])
      assert.is_true(tonumber(ms) > 0)
      assert.is_nil(seen[a])
      seen[a] = true
      if support.data_dir() then assert.is_true(tonumber(idx) >= 0) end   -- every NB201 cell is in the data
    end
    local S = lines(out .. ".spread.csv")
    assert.are.equal("arch_string,median_ms,min_ms,q25_ms,q75_ms,max_ms,repeats,cpu_median_ms", S[1])
    assert.are.equal(5, #S)
    local side = cjson.decode(read(out .. ".json"))
    assert.are.equal(1, #side.sessions)
    local s1 = side.sessions[1]
    assert.are.equal("here_b1_t1", s1.device)
    assert.are.equal(4, s1.measured)
    assert.are.equal(1, s1.threads)
    assert.are.equal(1, s1.batch)
    assert.truthy(s1.cpu)
    assert.truthy(s1.versions.openblas:find("OpenBLAS", 1, true))

    -- a second run with two new architectures measures only those
    r = assert(run{archs = NB, out = out, device = "here_b1_t1", seed = 9})
    assert.are.equal(2, r.measured)
    assert.are.equal(4, r.skipped)
    assert.are.equal(7, #lines(out))
    assert.are.equal(2, #cjson.decode(read(out .. ".json")).sessions)
    -- nothing left: nothing measured
    r = assert(run{archs = NB, out = out, device = "here_b1_t1"})
    assert.are.equal(0, r.measured)
    assert.are.equal(7, #lines(out))
  end)

  it("drops a line cut short by a kill and measures that architecture again", function()
    local out = dir .. "/cut.csv"
    assert(run{archs = {NB[1], NB[2]}, out = out, device = "d"})
    local f = assert(io.open(out, "ab"))
    f:write("-1,", NB[3]:sub(1, 20))   -- no newline: the write a kill interrupted
    f:close()
    local prev = assert(measure.read{path = out, space = "nb201"})
    assert.is_true(prev.partial)
    assert.are.equal(2, #prev.archs)
    local r = assert(run{archs = {NB[1], NB[2], NB[3]}, out = out, device = "d"})
    assert.are.equal(1, r.measured)
    local text = read(out)
    assert.are.equal(4, #lines(out))
    assert.are.equal("\n", text:sub(-1))
    assert.truthy(text:find("\n%-?%d+," .. NB[3]:gsub("%p", "%%%0") .. ",[%d%.e%-]+\n$"))
  end)

  it("stops after limit architectures and resumes later", function()
    local out = dir .. "/lim.csv"
    local r = assert(run{archs = NB, out = out, device = "d", limit = 2})
    assert.are.equal(2, r.measured)
    r = assert(run{archs = NB, out = out, device = "d"})
    assert.are.equal(4, r.measured)
    assert.are.equal(2, r.skipped)
    assert.are.equal(7, #lines(out))
  end)

  it("returns nil, message for failures of the world and raises on programmer errors", function()
    local ok, err = run{archs = {NB[1]}, out = "/nonexistent-dir/x.csv"}
    assert.is_nil(ok)
    assert.truthy(err:find("/nonexistent-dir/x.csv: cannot write", 1, true))
    ok, err = run{archs = {NB[1], "|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|"}, out = dir .. "/b.csv"}
    assert.is_nil(ok)
    assert.truthy(err:find("archs[2]: nb201 arch string: unknown op 'bogus'", 1, true))
    assert.is_nil(io.open(dir .. "/b.csv", "r"))   -- nothing written
    local other = support.tmpfile("arch_index,arch_string,pixel3\n")
    ok, err = run{archs = {NB[1]}, out = other, device = "d"}
    assert.is_nil(ok)
    assert.truthy(err:find("holds device column 'pixel3', this run measures 'd'", 1, true))
    local junk = support.tmpfile("a,b\n")
    ok, err = run{archs = {NB[1]}, out = junk, device = "d"}
    assert.is_nil(ok)
    assert.truthy(err:find(":1: expected the header arch_index,arch_string,<device>", 1, true))
    os.remove(other)
    os.remove(junk)
    support.raises("measure.run: option 'clock' must be wall or cpu", run, {archs = {NB[1]}, out = dir .. "/c.csv",
      clock = "tsc"})
    support.raises("measure.run: option 'threads' must be an integer in 1..256", run, {archs = {NB[1]},
      out = dir .. "/c.csv", threads = 0})
    support.raises("measure.run: unknown option 'repeat'", run, {archs = {NB[1]}, out = dir .. "/c.csv", ["repeat"] = 3})
  end)

  it("names the device after the CPU, batch, threads and clock", function()
    local name = measure.device_name{batch = 8, threads = 2}
    assert.truthy(name:match("^local_[%w_]+_b8_t2$"), name)
    assert.truthy(measure.device_name{clock = "cpu"}:match("_b1_t1_cpu$"))
  end)
end)

describe("nasflat measure", function()
  local dir, script
  before_each(function()
    dir = support.tmpdir()
    script = cli_script()
  end)
  after_each(function()
    os.execute("rm -rf " .. support.quote(dir))
    os.remove(script)
  end)

  it("measures, prints a summary and resumes", function()
    local out = dir .. "/m.csv"
    local args = {"measure", "--space", "fbnet", "--random", "2", "--seed", "3", "--repeats", "1", "--warmup", "0",
      "--out", out, "--device", "box"}
    local r = nasflat(script, args)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^measured 2 architectures on box in"), r.out)
    assert.are.equal("", r.err)   -- no progress when stderr is not a terminal
    r = nasflat(script, args)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^measured 0 architectures on box in [%d%.]+ s %(2 already in"), r.out)
    assert.are.equal(3, #lines(out))
  end)

  it("--print gives arch,ms for each architecture asked for, from the file or measured now", function()
    local out = dir .. "/p.csv"
    local list = support.tmpfile(NB[1] .. "\n")
    local r = nasflat(script, {"measure", "--archs", list, "--repeats", "1", "--warmup", "0", "--out", out, "--print"})
    assert.are.equal(0, r.code, r.err)
    local ms1 = tonumber(r.out:match("^arch,ms\n" .. NB[1]:gsub("%p", "%%%0") .. ",([^\n]+)\n$"))
    assert.truthy(ms1, r.out)
    local f = assert(io.open(list, "w"))
    f:write(NB[2], "\n", NB[1], "\n")
    f:close()
    r = nasflat(script, {"measure", "--archs", list, "--repeats", "1", "--warmup", "0", "--out", out, "--print"})
    assert.are.equal(0, r.code, r.err)
    local L = {}
    for l in r.out:gmatch("([^\n]+)") do L[#L + 1] = l end
    assert.are.equal(3, #L)
    assert.truthy(L[2]:find(NB[2], 1, true) == 1)
    assert.are.equal(ms1, tonumber(L[3]:match(",(.*)$")))   -- the first run's value, read back from the file
    os.remove(list)
  end)

  it("gives usage errors (exit 2) and input errors (exit 1)", function()
    local r = nasflat(script, {"measure", "--help"})
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("usage: nasflat measure", 1, true))
    r = nasflat(script, {"measure", "--random", "2"})
    assert.are.equal(2, r.code)
    assert.are.equal("nasflat: measure: --out FILE is required\n", r.err)
    r = nasflat(script, {"measure", "--out", dir .. "/x.csv"})
    assert.are.equal(2, r.code)
    assert.are.equal("nasflat: measure: give the architectures one way: --archs FILE, --random N or --all\n", r.err)
    r = nasflat(script, {"measure", "--space", "fbnet", "--all", "--out", dir .. "/x.csv"})
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("fbnet has 9^22 architectures", 1, true))
    r = nasflat(script, {"measure", "--random", "1", "--clock", "tsc", "--out", dir .. "/x.csv"})
    assert.are.equal(2, r.code)
    assert.are.equal("nasflat: measure: --clock must be wall or cpu (got 'tsc')\n", r.err)
    local list = support.tmpfile("# picks\n" .. NB[1] .. "\n|nor_conv_3x3~0|+|none~0|none~1\n")
    r = nasflat(script, {"measure", "--archs", list, "--out", dir .. "/x.csv"})
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("^nasflat: " .. list:gsub("%p", "%%%0") .. ":3: nb201 arch string:"), r.err)
    os.remove(list)
    r = nasflat(script, {"measure", "--random", "1", "--out", "/nonexistent-dir/x.csv"})
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("nasflat: /nonexistent-dir/x.csv: cannot write", 1, true))
  end)

  it("survives kill -9 mid-run: a re-run completes the file, each architecture once", function()
    local out = dir .. "/k.csv"
    local list = support.tmpfile(table.concat(NB, "\n") .. "\n")
    local args = {"measure", "--archs", list, "--repeats", "30", "--warmup", "0", "--out", out, "--device", "k"}
    local parts = {"lua5.4", support.quote(script)}
    for _, a in ipairs(args) do parts[#parts + 1] = support.quote(a) end
    local pidfile = dir .. "/pid"
    -- started in the background; killed (by its own pid) once it has written a row, or after it finished
    os.execute(string.format("sh -c 'echo $$ > %s; exec %s >/dev/null 2>&1' &", support.quote(pidfile),
      table.concat(parts, " "):gsub("'", "'\\''")))
    local pid
    for _ = 1, 600 do
      local f = io.open(pidfile, "r")
      pid = f and f:read("n")
      if f then f:close() end
      local rows = io.open(out, "r") and #lines(out) or 0
      if pid and rows >= 2 then break end
      os.execute("sleep 0.05")
    end
    assert.truthy(pid)
    os.execute("kill -9 " .. math.tointeger(pid) .. " 2>/dev/null")
    os.execute("sleep 0.2")
    local r = nasflat(script, {"measure", "--archs", list, "--repeats", "1", "--warmup", "0", "--out", out,
      "--device", "k"})
    assert.are.equal(0, r.code, r.err)
    local L = lines(out)
    assert.are.equal(#NB + 1, #L)
    local seen = {}
    for i = 2, #L do
      local a = L[i]:match("^%-?%d+,([^,]+),[^,]+$")
      assert.truthy(a, L[i])
      assert.is_nil(seen[a])
      seen[a] = true
    end
    os.remove(list)
  end)
end)
