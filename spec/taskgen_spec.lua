-- Task generation (METHOD §6): the device Spearman matrix, Kernighan–Lin against exhaustive search, trimming,
-- generate's determinism, files round-tripping through the loader and `nasflat run`, errors, the zoo, user data,
-- the SVG heatmap and the `nasflat tasks` command.
local support = require "support"
local cjson = require "cjson"
local core = require "nasflat.core"
local tasks = require "nasflat.tasks"
local metrics = require "nasflat.metrics"
local zoo = require "nasflat.zoo"
local svg = require "nasflat.svg"

local TG = core.taskgen
local DATA = support.data_dir()

-- the CLI in a child process with this process's module paths (LUA_PATH / LUA_CPATH are inherited)
local RUNNER = support.tmpfile('os.exit(require("nasflat.cli").main(arg))\n', ".lua")
local function nasflat(args)
  local parts = {"lua5.4 -"}
  for _, a in ipairs(args) do parts[#parts + 1] = support.quote(a) end
  return support.capture(table.concat(parts, " ") .. " <" .. RUNNER)
end

local function random_graph(rng, d)
  local w = {}
  for i = 1, d do w[i] = {} end
  for i = 1, d do
    w[i][i] = 1
    for j = i + 1, d do
      local v = rng:uniform() * 2 - 1
      w[i][j], w[j][i] = v, v
    end
  end
  return w
end

-- the minimum cut over every side vector with n0 nodes on side 0 (plain Lua enumeration of all 2^d vectors)
local function brute_min_cut(w, d, n0)
  local best = math.huge
  for mask = 0, (1 << d) - 1 do
    local side, z = {}, 0
    for i = 1, d do
      side[i] = (mask >> (i - 1)) & 1
      if side[i] == 0 then z = z + 1 end
    end
    if z == n0 then
      local c = 0
      for i = 1, d do for j = i + 1, d do if side[i] ~= side[j] then c = c + w[i][j] end end end
      if c < best then best = c end
    end
  end
  return best
end

local function strip_seconds(suite)
  suite.generated.seconds = nil
  return suite
end

describe("core.taskgen.spearman_matrix", function()
  it("equals pairwise nasflat.metrics.spearman, with missing cells dropped pair by pair", function()
    local lat = zoo.latency{space = "nb201", archs = 400}   -- the phone devices miss the disconnected cells
    local devs = lat:devices()
    local rho, count = TG.spearman_matrix(lat)
    assert.equal(#devs, #rho)
    local nan_pairs = 0
    for i = 1, #devs do
      for j = 1, #devs do
        local a, b = lat:ms(i), lat:ms(j)
        if i == j then
          assert.equal(1, rho[i][j])
        else
          assert.equal(metrics.spearman(a, b), rho[i][j])   -- exactly: the same ranks and sums
        end
        assert.equal(metrics.count_valid(a, b), count[i][j])
        if count[i][j] < 400 then nan_pairs = nan_pairs + 1 end
      end
    end
    assert.is_true(nan_pairs > 0)
    -- a device subset, in the order given
    local sub = TG.spearman_matrix(lat, {devs[3], devs[1]})
    assert.equal(rho[3][1], sub[1][2])
    -- a Tensor with its own missing cells, and a constant column (undefined: NaN)
    local t = core.Tensor.from{{1, 5, 2}, {2, 0 / 0, 2}, {3, 4, 2}, {4, 1, 2}, {0 / 0, 2, 2}}
    local r, c = TG.spearman_matrix(t)
    assert.equal(metrics.spearman({1, 2, 3, 4, 0 / 0}, {5, 0 / 0, 4, 1, 2}), r[1][2])
    assert.equal(3, c[1][2])
    assert.is_true(r[1][3] ~= r[1][3])
    assert.is_true(r[3][3] ~= r[3][3])
    support.raises("taskgen.spearman_matrix: unknown device 'nope'", TG.spearman_matrix, lat, {"nope"})
  end)

  it("matches pairwise Spearman on the real data (NB201: 13 devices miss 341+ cells)", function()
    if not DATA then return pending(support.NO_DATA) end
    local m = assert(tasks.matrix{data = DATA, space = "nb201"})
    local src = m.source
    for _, pair in ipairs{{1, 2}, {5, 17}, {8, 30}, {17, 22}, {22, 23}} do
      local a, b = m.devices[pair[1]], m.devices[pair[2]]
      assert.equal(metrics.spearman(src:ms(a), src:ms(b)), m.rho[pair[1]][pair[2]])
      assert.equal(metrics.count_valid(src:ms(a), src:ms(b)), m.count[pair[1]][pair[2]])
    end
  end)
end)

describe("Kernighan–Lin bisection", function()
  it("reaches the exhaustive minimum cut on random graphs of 2..12 nodes, every side size", function()
    local rng = core.Rng(11)
    local graphs = 0
    for d = 2, 12 do
      for _ = 1, 3 do
        local w = random_graph(rng, d)
        for n0 = 1, d // 2 do
          local side, cut = TG.bisect_exact(w, {n0 = n0})
          if d <= 10 then assert.near(brute_min_cut(w, d, n0), cut, 1e-9) end
          local zeros = 0
          for _, s in ipairs(side) do if s == 0 then zeros = zeros + 1 end end
          assert.equal(n0, zeros)
          assert.near(TG.cut(w, side), cut, 1e-12)
          local runs = TG.kl_restarts(w, {n0 = n0, restarts = 40, rng = rng})
          local best = math.huge
          for _, r in ipairs(runs) do
            assert.is_true(r.cut >= cut - 1e-9)
            best = math.min(best, r.cut)
          end
          assert.near(cut, best, 1e-9)
          graphs = graphs + 1
        end
      end
    end
    assert.equal(3 * 36, graphs)
  end)

  it("is a local optimum from any start, and the same seed gives the same restarts", function()
    local w = random_graph(core.Rng(3), 9)
    local side, cut = TG.kl(w, {0, 1, 0, 1, 0, 1, 0, 1, 1})
    for a = 1, 9 do
      for b = 1, 9 do
        if side[a] == 0 and side[b] == 1 then
          local s = {table.unpack(side)}
          s[a], s[b] = 1, 0
          assert.is_true(TG.cut(w, s) >= cut - 1e-9)
        end
      end
    end
    assert.same(TG.kl_restarts(w, {n0 = 4, restarts = 6, rng = core.Rng(5)}),
      TG.kl_restarts(w, {n0 = 4, restarts = 6, rng = core.Rng(5)}))
    support.raises("taskgen.kl_restarts: option 'rng' is required (a nasflat.Rng)", TG.kl_restarts, w, {n0 = 4})
    support.raises("taskgen.kl_restarts: unknown option 'seed' (allowed: n0, restarts, rng)", TG.kl_restarts, w,
      {seed = 1})
    support.raises("nasflat: taskgen_kl: one side is empty", TG.kl, w, {0, 0, 0, 0, 0, 0, 0, 0, 0})
  end)
end)

describe("trimming", function()
  it("removes, side by side, the device most correlated with the other side (hand-made matrix)", function()
    -- side 0 = {1,2,3,4}, side 1 = {5,6,7}; cross correlations (rows 1..4, columns 5..7):
    local cross = {{0.9, 0.8, 0.7}, {0.1, 0.2, 0.1}, {0.3, 0.2, 0.1}, {0.5, 0.0, 0.6}}
    local w = {}
    for i = 1, 7 do w[i] = {} for j = 1, 7 do w[i][j] = 0.95 end end
    for i = 1, 4 do for j = 1, 3 do w[i][4 + j], w[4 + j][i] = cross[i][j], cross[i][j] end end
    -- round 1: 1 (sum 2.4) goes; against {2,3,4} node 5 (0.9) beats 7 (0.8) and 6 (0.4).
    -- round 2: against {6,7}: 2 = 0.3, 3 = 0.3, 4 = 0.6 -> 4 goes. Left: {2,3} and {6,7}.
    local side, removed = TG.trim(w, {0, 0, 0, 0, 1, 1, 1}, 2, 2)
    assert.same({-1, 0, 0, -1, -1, 1, 1}, side)
    assert.same({1, 5, 4}, removed)
    -- a tie (2 and 3 at 0.3) goes to the lower index
    side = TG.trim(w, {-1, 0, 0, -1, -1, 1, 1}, 1, 2)
    assert.same({-1, -1, 0, -1, -1, 1, 1}, side)
    support.raises("nasflat: taskgen_trim: sides of 4 and 3 nodes cannot give 2 and 4", TG.trim, w,
      {0, 0, 0, 0, 1, 1, 1}, 2, 4)
  end)
end)

describe("tasks.generate", function()
  it("makes distinct tasks over the synthetic zoo's 13 devices, deterministic for a seed", function()
    local a = assert(tasks.generate{data = "synthetic", sources = 3, targets = 3, count = 3, seed = 7, draws = 1})
    local b = assert(tasks.generate{data = "synthetic", sources = 3, targets = 3, count = 3, seed = 7, draws = 1})
    local json = require "nasflat.json"
    assert.equal(json.encode(strip_seconds(a)), json.encode(strip_seconds(b)))
    local g = a.generated
    assert.equal(3, g.found)
    assert.same({"NG1", "NG2", "NG3"}, g.order)
    assert.equal(13, #g.devices)
    assert.is_true(g.synthetic)
    local seen = {}
    for _, name in ipairs(g.order) do
      local e = a.tasks.nb201[name]
      assert.equal(3, #e.train)
      assert.equal(3, #e.test)
      local key = table.concat(e.train, ",") .. "|" .. table.concat(e.test, ",")
      assert.is_nil(seen[key])
      seen[key] = true
      local df = e.difficulty
      for _, k in ipairs{"mean_cross_rho", "copy_best_source", "copy_oracle", "ridge"} do
        assert.is_number(df[k], k)
        assert.is_true(df[k] >= -1 and df[k] <= 1, k)
      end
      assert.is_true(df.copy_best_source <= df.copy_oracle + 1e-12)
    end
    -- the first task comes from the best cut; "exact" (13 devices) finds the same bisection
    local ex = assert(tasks.generate{data = "synthetic", sources = 3, targets = 3, method = "exact",
      difficulty = false})
    assert.near(a.tasks.nb201.NG1.bisection.cut, ex.tasks.nb201.NG1.bisection.cut, 1e-9)
    assert.same(a.tasks.nb201.NG1.train, ex.tasks.nb201.NG1.train)
  end)

  it("refuses impossible requests and unknown devices with clear messages", function()
    local function no(opts, msg)
      local s, err = tasks.generate(opts)
      assert.is_nil(s)
      assert.equal(msg, err)
    end
    no({data = "synthetic", sources = 7, targets = 7},
      "cannot pick 7 sources and 7 targets from 13 devices (sources + targets must be at most the device count)")
    no({data = "synthetic", sources = 2, targets = 2, exclude = {"gpu_server_a_b1", "gpu_nope"}},
      "unknown device 'gpu_nope' in exclude; the dataset has: " .. table.concat(zoo.names(), ", "))
    no({data = "synthetic", sources = 1, targets = 1, devices = {"fpga_dataflow", "tpu"}},
      "unknown device 'tpu'; the dataset has: " .. table.concat(zoo.names(), ", "))
    no({data = "synthetic", sources = 2, targets = 2, devices = {"fpga_dataflow", "dsp_a_int8", "gpu_mobile"}},
      "cannot pick 2 sources and 2 targets from 3 devices (sources + targets must be at most the device count)")
    support.raises("tasks.generate: unknown option 'target' (allowed: count, data, devices, difficulty, draws, " ..
      "exclude, method, prefix, restarts, samples, seed, sources, space, targets, weight)", tasks.generate,
      {sources = 1, target = 1})
    support.raises("tasks.generate: option 'sources' is required", tasks.generate, {targets = 1})
    support.raises("tasks.generate: option 'targets' must be an integer >= 1 (got 0)", tasks.generate,
      {sources = 1, targets = 0})
    support.raises("tasks.generate: option 'weight' must be \"rho\" or \"-rho\" (got cut)", tasks.generate,
      {sources = 1, targets = 1, weight = "cut"})
  end)

  it("works on user data: one extra user-measured device column", function()
    -- a small data set: the zoo's first 300 NB201 cells, plus "my_board" (a made-up measured device)
    local lat = zoo.latency{space = "nb201", archs = 300}
    local devs = lat:devices()
    local dir = support.tmpdir()
    local lines = {"arch_index,arch_string," .. table.concat(devs, ",") .. ",my_board"}
    for r = 1, 300 do
      local cells = {tostring(lat:arch_index(r)), lat:arch_string(r)}
      for _, d in ipairs(devs) do
        local v = lat:get(r, d)
        cells[#cells + 1] = v and string.format("%.6g", v) or ""
      end
      local a = lat:get(r, "fpga_dataflow")
      cells[#cells + 1] = (r % 10 == 0) and "" or string.format("%.6g", 1 + (a or 1) * 0.5 + (r % 7) * 0.01)
      lines[#lines + 1] = table.concat(cells, ",")
    end
    local f = assert(io.open(dir .. "/nb201_latency.csv", "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local s = assert(tasks.generate{data = dir, sources = 4, targets = 4, count = 2, samples = 10, draws = 1})
    assert.equal(14, #s.generated.devices)
    assert.equal("my_board", s.generated.devices[14])
    assert.is_string(s.generated.files["nb201_latency.csv"].crc32)
    local m = assert(tasks.matrix{data = dir})
    assert.equal(270, m.count[14][14])
    -- the CLI over the same directory, the file round trip
    local out = dir .. "/gen.json"
    local r = nasflat{"tasks", "generate", "--data", dir, "--sources", "4", "--targets", "4", "--count", "2",
      "--samples", "10", "--out", out}
    assert.equal(0, r.code, r.err)
    local list = assert(tasks.load_all{file = out, devices = m.devices})
    assert.equal(2, #list)
    os.execute("rm -rf " .. support.quote(dir))
  end)
end)

describe("generated task files", function()
  local dir = support.tmpdir()
  local file = dir .. "/zoo_tasks.json"
  local suite = assert(tasks.generate{data = "synthetic", sources = 3, targets = 4, count = 2, seed = 3, draws = 1})
  assert(tasks.write(suite, file))
  local names = zoo.names()

  it("round-trip through load_all and resolve, exact numbers kept", function()
    local list = assert(tasks.load_all{file = file, devices = names})
    assert.equal(2, #list)
    for i, t in ipairs(list) do
      local e = suite.tasks.nb201[suite.generated.order[i]]
      assert.equal(e.name, t.name)
      assert.equal("nb201", t.space)
      assert.same(e.train, t.train)
      assert.same(e.test, t.test)
      assert.equal(e.difficulty.mean_cross_rho, t.difficulty.mean_cross_rho)   -- bit for bit
      local r = assert(tasks.resolve{file = file, name = t.name, devices = names})
      assert.same(e.train, r.train)
    end
    local obj = assert(tasks.load_file(file))
    assert.equal("nasflat-tasks/1", obj.format)
    assert.equal(3, obj.generated.seed)
    assert.equal("NG1", obj.generated.order[1])
    local _, err = tasks.resolve{file = file, name = "NG9", devices = names}
    assert.equal(file .. ": has no task 'NG9' (it has: NG1, NG2)", err)
    _, err = tasks.resolve{file = file, name = "NG1", devices = names, space = "fbnet"}
    assert.equal("task NG1 is an nb201 task, the data is fbnet", err)
    _, err = tasks.load_all{file = file, devices = {"gpu_server_a_b1"}}
    assert.is_truthy(err:find("^unknown source device '"))
  end)

  it("run through `nasflat run --task-file FILE --task NAME`", function()
    local r = nasflat{"run", "--data", "synthetic", "--task-file", file, "--task", "NG2", "--predictor", "ridge",
      "--trials", "1", "--json", "--quiet"}
    assert.equal(0, r.code, r.err)
    local rec = cjson.decode(r.out)
    assert.equal("NG2", rec.task)
    local got = {}
    for _, t in ipairs(rec.targets) do got[#got + 1] = t.device end
    assert.same(suite.tasks.nb201.NG2.test, got)
  end)

  it("refuses malformed, huge and non-regular files with the reason", function()
    local function bad(text, msg)
      local p = support.tmpfile(text, ".json")
      local list, err = tasks.load_all{file = p, devices = names}
      assert.is_nil(list)
      assert.equal(p .. ": " .. msg, err)
      os.remove(p)
    end
    bad('{"tasks": {"nb201": {"NG1": {"name": "NG1", "train": ["fpga_dataflow"]}}}}',
      "task NG1: 'test' must be a non-empty list of device names")
    bad('{"tasks": {"nb201": {"NG1": {"name": "NG1", "train": ["fpga_dataflow", 3], "test": ["dsp_a_int8"]}}}}',
      "task NG1: 'train' entry 2 is not a device name")
    bad('{"tasks": {"darts": {"X": {"train": ["a"], "test": ["b"]}}}}',
      "'tasks' has an unknown space 'darts' (nb201 or fbnet)")
    bad('{"tasks": {"nb201": {"NG1": 5}}}', "task nb201.NG1 is not an object")
    bad('{"tasks": {"fbnet": [1]}}', "task fbnet.1 is not an object")
    bad('{"tasks": {"nb201": 3}}', "'tasks.nb201' must be an object")
    bad('{"tasks": [1, 2]}', "'tasks' has an unknown space '1' (nb201 or fbnet)")
    local both = support.tmpfile('{"tasks": {"nb201": {"NG1": {"train": ["fpga_dataflow"], "test": ' ..
      '["fpga_dataflow"]}}}}', ".json")
    local _, berr = tasks.load_all{file = both, devices = names}
    assert.equal("device 'fpga_dataflow' is both a source and a target", berr)
    os.remove(both)
    bad('{"tasks": "x"}', "'tasks' must be an object")
    bad("{}", "'train' must be a non-empty list of device names")
    bad('{"tasks": {}}', "no tasks")
    local _, err = tasks.load_all{file = "/dev/zero"}
    assert.equal("/dev/zero: not a regular file", err)
    _, err = tasks.load_all{file = dir}
    assert.equal(dir .. ": not a regular file", err)
    local huge = dir .. "/huge.json"
    assert(os.execute("truncate -s 17M " .. support.quote(huge)))
    _, err = tasks.load_all{file = huge}
    assert.equal(huge .. ": larger than the limit of 16777216 bytes for a task file", err)
    _, err = tasks.resolve{file = "/dev/zero", devices = names}
    assert.equal("/dev/zero: not a regular file", err)
    _, err = tasks.load_all{file = dir .. "/missing.json"}
    assert.equal(dir .. "/missing.json: cannot open (No such file or directory)", err)
    support.raises("tasks.load_all: option 'file' is required", tasks.load_all, {})
    support.raises("tasks.load_all: unknown option 'path' (allowed: devices, file, space)", tasks.load_all,
      {path = file})
  end)

  it("the paper's suite file loads in file order with its names", function()
    if not DATA then return pending(support.NO_DATA) end
    local list = assert(tasks.load_all{file = DATA .. "/nasflat_tasks.json", space = "fbnet"})
    local got = {}
    for _, t in ipairs(list) do got[#got + 1] = t.name end
    assert.same({"FD", "F1", "F2", "F3", "F4", "FA", "FQ"}, got)
  end)
end)

describe("nasflat tasks (CLI) and the SVG heatmap", function()
  it("generates, lists and shows; errors go to stderr with the exit status", function()
    local dir = support.tmpdir()
    local out, pic = dir .. "/t.json", dir .. "/t.svg"
    local r = nasflat{"tasks", "generate", "--data", "synthetic", "--sources", "3", "--targets", "3", "--count", "2",
      "--draws", "1", "--out", out, "--svg", pic}
    assert.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("^2 nb201 tasks %(3 sources, 3 targets; kl 32 restarts, seed 1, weight rho%) from 13 " ..
      "devices %-> "))
    local f = assert(io.open(pic, "r"))
    local text = f:read("a")
    f:close()
    assert.is_truthy(text:find('^<svg xmlns="http://www.w3.org/2000/svg"'))
    assert.is_truthy(text:find(">gpu_server_a_b1</text>", 1, true))
    assert.is_truthy(text:find("</svg>\n$"))
    r = nasflat{"tasks", "list", "--task-file", out}
    assert.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("\nNG1      nb201        3       3  %-?%d%.%d%d%d     ", 1))
    r = nasflat{"tasks", "show", "NG2", "--task-file", out, "--json"}
    assert.equal(0, r.code, r.err)
    assert.equal("NG2", cjson.decode(r.out).name)
    r = nasflat{"tasks", "show", "ZD", "--data", "synthetic"}
    assert.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("^task ZD %(nb201, 7 sources, 5 targets; synthetic zoo%)"))
    r = nasflat{"tasks", "generate", "--data", "synthetic", "--sources", "10", "--targets", "10"}
    assert.equal(1, r.code)
    assert.equal("nasflat: cannot pick 10 sources and 10 targets from 13 devices (sources + targets must be at " ..
      "most the device count)\n", r.err)
    assert.equal("", r.out)
    r = nasflat{"tasks", "frobnicate"}
    assert.equal(2, r.code)
    assert.equal("nasflat: tasks: unknown subcommand 'frobnicate' (subcommands: generate, list, show, compare)\n", r.err)
    r = nasflat{"tasks", "show", "NOPE", "--task-file", out}
    assert.equal(1, r.code)
    assert.equal("nasflat: unknown task 'NOPE' (known: NG1, NG2)\n", r.err)
    r = nasflat{"tasks", "list", "--task-file", "/dev/zero"}
    assert.equal(1, r.code)
    assert.equal("nasflat: /dev/zero: not a regular file\n", r.err)
    r = nasflat{"tasks", "generate", "--sources", "2"}
    assert.equal(2, r.code)
    assert.equal("nasflat: tasks generate: --sources and --targets are required\n", r.err)
    r = nasflat{"tasks", "generate", "--help"}
    assert.equal(0, r.code)
    assert.is_truthy(r.out:find("^usage: nasflat tasks generate %-%-sources M %-%-targets K"))
    r = nasflat{"data", "--data", "synthetic", "--svg", pic}
    assert.equal(0, r.code, r.err)
    os.execute("rm -rf " .. support.quote(dir))
  end)

  it("escapes text and scales colours", function()
    assert.equal("a&lt;b&gt; &amp; &quot;c&quot;", svg.escape('a<b> & "c"'))
    assert.equal("#2166ac", svg.diverging(-1))
    assert.equal("#f7f7f7", svg.diverging(0))
    assert.equal("#b2182b", svg.diverging(1))
    assert.equal("#bdbdbd", svg.diverging(0 / 0))
    local doc = svg.heatmap{labels = {"a<1", "b"}, values = {{1, 0.5}, {0.5, 0 / 0}}, title = "t"}
    local text = doc:render()
    assert.is_truthy(text:find(">a&lt;1</text>", 1, true))
    assert.is_truthy(text:find('fill="#bdbdbd"', 1, true))
    support.raises("svg.heatmap: unknown option 'label' (allowed: ", svg.heatmap, {label = {}})
  end)
end)
