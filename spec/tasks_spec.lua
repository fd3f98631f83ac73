local support = require "support"
local tasks = require "nasflat.tasks"
local cjson = require "cjson"

local DATA = support.data_dir()

-- a small suite file in the format of nasflat_tasks.json, over made-up devices
local DEVICES = {"a1", "a2", "b1", "b2", "c1"}
local SUITE = support.tmpfile(cjson.encode{tasks = {
  nb201 = {["0"] = {train = {"a1", "a2"}, test = {"b1", "c1"}}, ["1"] = {train = {"a1"}, test = {"a1"}},
           ["2"] = {train = {"a1", "zz"}, test = {"b1"}}, ["3"] = {train = {"a1"}, test = {"b1", "b1"}},
           ["4"] = {train = {}, test = {"b1"}}},
  fbnet = {["0"] = {train = {"a1"}, test = {"b2"}}},
}}, ".json")

local function resolve(opts)
  opts.devices = opts.devices or DEVICES
  return tasks.resolve(opts)
end

local function fails(needle, opts)
  local t, err = resolve(opts)
  assert.is_nil(t)
  assert.is_string(err)
  assert(err:find(needle, 1, true), "error was: " .. tostring(err) .. "\nexpected to contain: " .. needle)
  return err
end

describe("tasks tables", function()
  it("names the 12 paper tasks, 6 per space, each with a published NASFLAT number", function()
    assert.equal(12, #tasks.PAPER)
    local per = {}
    for _, name in ipairs(tasks.PAPER) do
      local ref = tasks.NAMES[name]
      per[ref[1]] = (per[ref[1]] or 0) + 1
      for _, method in ipairs{"NASFLAT", "MultiPredict", "HELP", "ridge (METHOD §10)"} do
        assert.is_number(tasks.PUBLISHED[method][name], method .. " " .. name)
      end
    end
    assert.same({nb201 = 6, fbnet = 6}, per)
    -- keys 0..5 of the suite file; D is key 0 and A is key 5 in both spaces
    assert.same({"nb201", "0"}, tasks.NAMES.ND)
    assert.same({"nb201", "5"}, tasks.NAMES.NA)
    assert.same({"fbnet", "0"}, tasks.NAMES.FD)
    assert.same({"fbnet", "5"}, tasks.NAMES.FA)
    assert.same({"nb201", "9999"}, tasks.NAMES.NQ)
  end)
end)

describe("tasks.resolve", function()
  it("resolves a paper name through the suite file", function()
    local t = assert(resolve{name = "ND", tasks_file = SUITE})
    assert.same({name = "ND", space = "nb201", train = {"a1", "a2"}, test = {"b1", "c1"}}, t)
    t = assert(resolve{name = "FD", tasks_file = SUITE, space = "fbnet"})
    assert.same({name = "FD", space = "fbnet", train = {"a1"}, test = {"b2"}}, t)
    -- the suite file may also come as `file` together with a name
    assert.same({"a1", "a2"}, assert(resolve{name = "ND", file = SUITE}).train)
  end)

  it("defaults to ND", function()
    assert.equal("ND", assert(resolve{tasks_file = SUITE}).name)
  end)

  it("lists the known tasks for an unknown name", function()
    local err = fails("unknown task 'XD' (known: ", {name = "XD", tasks_file = SUITE})
    assert.equal("unknown task 'XD' (known: F1, F2, F3, F4, FA, FD, FQ, N1, N2, N3, N4, NA, ND, NQ, NQ2)", err)
  end)

  it("lists the dataset's devices for an unknown device", function()
    assert.equal("unknown source device 'zz'; the dataset has: a1, a2, b1, b2, c1",
      fails("unknown source device", {name = "N2", tasks_file = SUITE}))
    assert.equal("unknown target device 'nope'; the dataset has: a1, a2, b1, b2, c1",
      fails("unknown target device", {train = {"a1"}, test = {"b1", "nope"}}))
  end)

  it("refuses a device that is both a source and a target, or listed twice", function()
    fails("device 'a1' is both a source and a target", {name = "N1", tasks_file = SUITE})
    fails("device 'b2' is both a source and a target", {train = {"a1", "b2"}, test = {"b2"}})
    fails("target device 'b1' is listed twice", {name = "N3", tasks_file = SUITE})
    fails("source device 'a2' is listed twice", {train = {"a2", "a2"}, test = {"b1"}})
  end)

  it("builds ad-hoc tasks from device lists", function()
    local t = assert(resolve{train = {"a1", "b1"}, test = {"c1"}, space = "nb201"})
    assert.same({name = "custom", space = "nb201", train = {"a1", "b1"}, test = {"c1"}}, t)
    assert.equal("mine", assert(resolve{name = "mine", train = {"a1"}, test = {"c1"}}).name)
    fails("an ad-hoc task needs both train and test devices", {train = {"a1"}})
    fails("an ad-hoc task needs both train and test devices", {test = {"a1"}})
  end)

  it("reads an ad-hoc task file", function()
    local path = support.tmpfile(cjson.encode{name = "phones", space = "fbnet", train = {"a1", "a2"},
      test = {"c1"}}, ".json")
    local t = assert(resolve{file = path, space = "fbnet"})
    assert.same({name = "phones", space = "fbnet", train = {"a1", "a2"}, test = {"c1"}}, t)
    -- without a name the task is "custom"; without a space it takes the data's
    local bare = support.tmpfile('{"train": ["a1"], "test": ["b1"]}', ".json")
    assert.same({name = "custom", space = "nb201", train = {"a1"}, test = {"b1"}},
      assert(resolve{file = bare, space = "nb201"}))
    fails(path .. ": the task is for fbnet, the data is nb201", {file = path, space = "nb201"})
    os.remove(path)
    os.remove(bare)
  end)

  it("names the file and the problem for a bad task file", function()
    local missing = os.tmpname() .. "-missing.json"
    fails(missing .. ": cannot open (", {file = missing})
    local bad = support.tmpfile('{"train": ["a1"], "test": ', ".json")
    fails(bad .. ": invalid JSON (", {file = bad})
    local cases = {
      {'["a1"]', "'train' must be a non-empty list of device names"},
      {'{"train": "a1", "test": ["b1"]}', "'train' must be a non-empty list of device names"},
      {'{"train": ["a1"], "test": []}', "'test' must be a non-empty list of device names"},
      {'{"train": ["a1"], "test": ["b1", 3]}', "'test' entry 2 is not a device name"},
      {'{"space": "darts", "train": ["a1"], "test": ["b1"]}', "'space' must be \"nb201\" or \"fbnet\" (got darts)"},
    }
    for _, c in ipairs(cases) do
      local f = support.tmpfile(c[1], ".json")
      fails(f .. ": " .. c[2], {file = f})
      os.remove(f)
    end
    fails(SUITE .. ": a task suite file; name a task (e.g. ND) to pick one", {file = SUITE})
    fails(SUITE .. ": has no task nb201.5", {name = "NA", tasks_file = SUITE})
    fails(SUITE .. ": 'train' must be a non-empty list of device names", {name = "N4", tasks_file = SUITE})
    os.remove(bad)
  end)

  it("needs the suite file for paper names, and the right space", function()
    fails("task ND needs the task file nasflat_tasks.json (no data directory)", {name = "ND"})
    fails("task FD is an fbnet task, the data is nb201", {name = "FD", tasks_file = SUITE, space = "nb201"})
  end)

  it("raises on programmer errors", function()
    support.raises("tasks.resolve: unknown option 'nmae' (allowed: devices, file, name, space, tasks_file, test, train)",
      tasks.resolve, {nmae = "ND", devices = DEVICES})
    support.raises("tasks.resolve: option 'devices' is required", tasks.resolve, {name = "ND"})
    support.raises("tasks.resolve: options must be a table (got string)", tasks.resolve, "ND")
  end)

  it("resolves every paper task on the real data to devices the data has", function()
    if not DATA then return pending(support.NO_DATA) end
    local data = require "nasflat.data"
    local file = DATA .. "/nasflat_tasks.json"
    local suite = assert(tasks.load_file(file))
    local devices = {}
    for _, space in ipairs{"nb201", "fbnet"} do
      local lat = assert(data.load_latency(DATA .. "/" .. space .. "_latency.csv"))
      devices[space] = lat:devices()
      lat:free()
    end
    for name, ref in pairs(tasks.NAMES) do
      local t = assert(tasks.resolve{name = name, tasks_file = file, devices = devices[ref[1]]})
      assert.equal(ref[1], t.space)
      assert.same(suite.tasks[ref[1]][ref[2]].train, t.train)
      assert.same(suite.tasks[ref[1]][ref[2]].test, t.test)
    end
    -- the quick split, as the data's README and the file give it
    local nq = assert(tasks.resolve{name = "NQ", tasks_file = file, devices = devices.nb201})
    assert.same({"1080ti_1", "1080ti_32"}, nq.train)
    assert.same({"titan_rtx_256", "gold_6226"}, nq.test)
    -- an fbnet task against nb201 devices: named, not a crash
    local _, err = tasks.resolve{name = "FD", tasks_file = file, devices = devices.nb201, space = "nb201"}
    assert.equal("task FD is an fbnet task, the data is nb201", err)
  end)
end)
