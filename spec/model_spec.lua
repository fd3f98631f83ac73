-- nasflat.model: one predictor interface for every kind (fit, predict, intervals, save, load, refit), its
-- results writer and the `nasflat fit` / `nasflat predict` round trip.
local support = require "support"
local cjson = require "cjson"
local model = require "nasflat.model"
local source = require "nasflat.source"
local metrics = require "nasflat.metrics"
local json = require "nasflat.json"
local results = require "nasflat.results"

local quote = support.quote
local srcs = {}
local function zoo(space)
  srcs[space] = srcs[space] or assert(source.open{data = "synthetic", space = space})
  return srcs[space]
end

--- k architectures of a zoo device (every 97th row) and their latencies.
local function samples(src, device, k, step)
  local archs, ms, rows = {}, {}, {}
  local col = src:ms(device)
  local r = 1
  while #archs < k do
    if col:get(r) == col:get(r) then
      archs[#archs + 1], ms[#ms + 1], rows[#rows + 1] = src.arch_strings[r], col:get(r), r
    end
    r = r + (step or 97)
  end
  return {archs = archs, ms = ms}, rows
end

local FAST = {bags = 3}   -- the hybrid with 3 bags: the same code path, a third of the time

local function fit_hybrid(space, device, extra)
  local src = zoo(space)
  local o = {space = space, samples = (samples(src, device, 20)), target = device, data = src,
    sources = {src.devices[1], src.devices[2]}, pretrain_samples = 128}
  for k, v in pairs(FAST) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(model.fit(o))
end

describe("model.fit and predict", function()
  it("fits the hybrid on samples and predicts any architecture, measured or not, in ms with log ms", function()
    local src = zoo("nb201")
    local P = fit_hybrid("nb201", "cpu_mobile_mid")
    assert.equal("hybrid", P.kind)
    assert.equal("nb201", P.space)
    assert.equal(20, P.n_samples)
    local ms, info = P:predict(src.arch_strings)
    assert.equal(src.n, ms:size())
    local truth, measured = src:ms("cpu_mobile_mid"), src:measured("cpu_mobile_mid")
    local rho = metrics.spearman(ms:index(measured), truth:index(measured))
    assert.is_true(rho > 0.95, tostring(rho))
    for i = 1, 50 do assert.near(math.log(ms:get(i)), info.logms:get(i), 1e-5) end
    local sum = 0
    for _, w in ipairs(P.weights) do sum = sum + w end
    assert.near(1, sum, 1e-9)
    -- the same architectures in the other string form, or as codes: the same numbers
    local space = require("nasflat.space").get("nb201")
    local codes = {space:parse(src.arch_strings[5]), space:parse(src.arch_strings[9])}
    local by_code = P:predict(codes)
    assert.equal(ms:get(5), by_code:get(1))
    assert.equal(ms:get(9), by_code:get(2))
    -- graph batches (pruned or not: the op labels are kept) and the data's arch_index numbers
    for _, pruned in ipairs{true, false} do
      local g = space:graphs({src.arch_strings[5], src.arch_strings[9]}, {pruned = pruned})
      assert.same(by_code:totable(), P:predict(g):totable())
    end
    local i5, i9 = src.latency:arch_index(5), src.latency:arch_index(9)
    assert.same(by_code:totable(), P:predict({i5, i9}, {data = src}):totable())
    support.raises("model:predict: architecture 1 is a dataset index, but no 'data' source was given", function()
      P:predict({i5}) end)
  end)

  it("predicts FBNet architectures outside the data: finite, positive, slower when a block gets heavier", function()
    local P = fit_hybrid("fbnet", "gpu_mobile")
    local space = require("nasflat.space").get("fbnet")
    local rng = require("nasflat.core").Rng(7)
    local list = space:sample(rng, 200)
    local ms = P:predict(list)
    for i = 1, 200 do
      local v = ms:get(i)
      assert.is_true(v == v and v > 0 and v < math.huge, list[i])
    end
    -- every layer k3_e1 (block 0), then one by one the heaviest block k5_e6 (block 7): each step is slower
    local code = {}
    for l = 1, 22 do code[l] = 0 end
    local steps = {space:format(code)}
    for l = 1, 22, 3 do
      code[l] = 7
      steps[#steps + 1] = space:format(code)
    end
    local p = P:predict(steps)
    for i = 2, #steps do assert.is_true(p:get(i) > p:get(i - 1), "step " .. i) end
  end)

  it("gives split-conformal intervals whose coverage on the unsampled architectures is near nominal", function()
    local src = zoo("nb201")
    local P = fit_hybrid("nb201", "gpu_server_b_b1")
    assert.equal(3 * 16, #P.residuals)   -- every out-of-fold prediction of the 3 bags of 16 samples
    for i = 2, #P.residuals do assert.is_true(P.residuals[i] >= P.residuals[i - 1]) end
    local ms, info = P:predict(src.arch_strings, {interval = 0.9})
    local inside = 0
    for i = 1, src.n do
      assert.is_true(info.lo:get(i) <= ms:get(i) and ms:get(i) <= info.hi:get(i))
      local t = src:ms("gpu_server_b_b1"):get(i)
      if t >= info.lo:get(i) and t <= info.hi:get(i) then inside = inside + 1 end
    end
    -- the ceil(49 × 0.9) = 45th of 48 sorted residuals; the coverage bound is loose for one small case
    assert.equal(P.residuals[45], info.halfwidth_log)
    assert.is_true(inside / src.n > 0.75, tostring(inside / src.n))
    assert.equal(math.huge, P:interval_halfwidth(0.99))   -- 48 residuals cannot support 99 %
    support.raises("option 'interval' must be a probability in (0, 1) (got 1)", function()
      P:predict(src.arch_strings, {interval = 1}) end)
  end)

  it("fits the structural ridge with leave-one-out residuals; refit keeps the settings", function()
    local src = zoo("nb201")
    local s = samples(src, "gpu_mobile", 20)
    local R = assert(model.fit{kind = "ridge", space = "nb201", samples = s})
    assert.equal(20, #R.residuals)
    local more = samples(src, "gpu_mobile", 30, 61)
    local R2 = assert(R:refit(more))
    assert.equal("ridge", R2.kind)
    assert.equal(30, R2.n_samples)
    local H = fit_hybrid("nb201", "gpu_mobile")
    local H2 = assert(H:refit(more))
    assert.same(H.components, H2.components)
    assert.equal(H.sm, H2.sm)   -- the source models are kept, not refitted
  end)

  it("merges repeated measurements of an architecture at their geometric mean", function()
    local src = zoo("nb201")
    local s = samples(src, "gpu_mobile", 10)
    s.archs[11], s.ms[11] = s.archs[1], s.ms[1] * 4
    local R = assert(model.fit{kind = "ridge", space = "nb201", samples = s})
    assert.equal(1, R.duplicates_merged)
    assert.equal(10, R.n_samples)
    assert.near(s.ms[1] * 2, R.samples.ms[1], 1e-5 * s.ms[1])
  end)

  it("raises on programmer errors and returns nil, message for too few samples", function()
    local src = zoo("nb201")
    local s = samples(src, "gpu_mobile", 10)
    support.raises("model.fit: unknown kind 'gnn' (known: " .. table.concat(model.KIND_NAMES, ", ") .. ")", model.fit,
      {kind = "gnn", space = "nb201", samples = s})
    support.raises("model.fit: unknown option 'budget'", model.fit, {kind = "ridge", space = "nb201", samples = s,
      budget = 3})
    support.raises("model.fit: option 'samples' is required", model.fit, {kind = "ridge", space = "nb201"})
    support.raises("model.fit: samples has 10 architectures but 2 latencies", model.fit,
      {kind = "ridge", space = "nb201", samples = {archs = s.archs, ms = {1, 2}}})
    local bad = {archs = {s.archs[1], s.archs[2], s.archs[3]}, ms = {1, -2, 3}}
    support.raises("model.fit: sample 2 (" .. s.archs[2] .. "): latency must be a positive finite number of ms " ..
      "(got -2)", model.fit, {kind = "ridge", space = "nb201", samples = bad})
    support.raises("model.fit: architecture 1: nb201 arch string: expected '|', found 'x' at column 1", model.fit,
      {kind = "ridge", space = "nb201", samples = {archs = {"x"}, ms = {1}}})
    local P, err = model.fit{kind = "ridge", space = "nb201", samples = {archs = {s.archs[1], s.archs[2]},
      ms = {1, 2}}}
    assert.is_nil(P)
    assert.equal("ridge needs at least 3 distinct measured architectures (got 2)", err)
    support.raises("unknown hybrid component 'gnn'", model.fit, {space = "nb201", samples = s, components = {"gnn"}})
    -- the hybrid's graph-network options are the network's own, checked as model.fit{kind = "nasflat"} checks them
    local gnn = {space = "nb201", samples = s, data = src, components = {"ridge", "nasflat"}}
    gnn.gnn = {transfer_epoch = 5}
    support.raises("model.fit: unknown option 'gnn.transfer_epoch'", model.fit, gnn)
    gnn.gnn = {transfer_members = 0}
    support.raises("model.fit: gnn: option 'transfer_members' must be an integer >= 1 (got 0)", model.fit, gnn)
    gnn.gnn = {transfer_lr = -1}
    support.raises("model.fit: gnn: option 'transfer_lr' must be \"auto\" or a number > 0 (got -1)", model.fit, gnn)
  end)
end)

describe("features and source models", function()
  it("computes every matrix from the arch strings alone; fbnet's live layers are all its layers", function()
    local space = require("nasflat.space").get("fbnet")
    local list = space:sample(require("nasflat.core").Rng(5), 300)
    local f = require "nasflat.features"
    assert.same(space:phys_features(list, nil, true):totable(), f.matrix(space, "phys_live", list):totable())
    assert.same(space:phys_features(list, nil, false):totable(), f.matrix(space, "phys", list):totable())
    local enc = require("nasflat.encodings").get{space = "fbnet", name = "onehot", arch_strings = list}
    assert.same(enc:totable(), f.matrix(space, "onehot", list):totable())
    local c = f.cache(space, list)
    local R = c:get("roof"):clone():affine(1, 1):log()
    assert.same(R:totable(), c:get("roof_log"):totable())
    support.raises("features.matrix: unknown features 'x'", f.matrix, space, "x", list)
  end)

  it("predicts with one product for all source models, the same numbers as each model alone", function()
    local src = zoo("nb201")
    local sm = assert(require("nasflat.source_models").fit{source = src, devices = {src.devices[1], src.devices[4]},
      samples = 64})
    local cache = require("nasflat.features").cache(src.space, {table.unpack(src.arch_strings, 1, 500)})
    local all = sm:logms(cache):totable()
    for s, m in ipairs(sm.models) do
      local col = m:predict(cache:get("source")):log():totable()
      for i = 1, 500 do assert.equal(col[i], all[i][s]) end
    end
  end)
end)

describe("model files", function()
  it("round-trips every kind: save, load, predict give identical numbers", function()
    local src = zoo("nb201")
    local dir = support.tmpdir()
    local s = samples(src, "cpu_mobile_big", 20)
    local kinds = {
      fit_hybrid("nb201", "cpu_mobile_big"),
      assert(model.fit{kind = "ridge", space = "nb201", samples = s, target = "board"}),
      assert(model.fit{kind = "nasflat", space = "nb201", samples = s, data = src, sources = {src.devices[1]},
        epochs = 2, pretrain_samples = 32, transfer_epochs = 2}),
    }
    local probe = {}
    for i = 1, 300 do probe[i] = src.arch_strings[i * 50] end
    for _, P in ipairs(kinds) do
      local path = dir .. "/" .. P.kind .. ".nfm"
      assert(P:save(path))
      local Q = assert(model.load(path))
      assert.equal(P.kind, Q.kind)
      assert.equal(P.target, Q.target)
      assert.same(P.samples, Q.samples)
      local a, ai = P:predict(probe, {interval = 0.9})
      local b, bi = Q:predict(probe, {interval = 0.9})
      assert.same(a:totable(), b:totable())
      assert.same(ai.hi:totable(), bi.hi:totable())
      assert.equal(tostring(P), tostring(Q))
      -- a loaded model refits like the one saved
      if P.kind ~= "nasflat" then
        local A2 = assert(P:refit(s))
        local B2 = assert(Q:refit(s))
        assert.same(A2:predict(probe):totable(), B2:predict(probe):totable())
      end
    end
    os.execute("rm -r " .. quote(dir))
  end)

  it("keeps a graph network's graph form and transfer epochs through save and load", function()
    local src = zoo("nb201")
    local dir = support.tmpdir()
    local s = samples(src, "cpu_mobile_big", 16)
    local base = {kind = "nasflat", space = "nb201", samples = s, data = src, sources = {src.devices[1]}, epochs = 2,
      pretrain_samples = 32}
    local function fit(extra)
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      for k, v in pairs(extra) do o[k] = v end
      return assert(model.fit(o))
    end
    local P = fit{graph = "unpruned", transfer_epochs = 7}
    assert.equal(1, P.tuned.nets[1]:meta().graph_unpruned)
    assert.matches("fine%-tuned for 7 epochs", tostring(P))
    local path = dir .. "/u.nfm"
    assert(P:save(path))
    local Q = assert(model.load(path))
    local probe = {}
    for i = 1, 200 do probe[i] = src.arch_strings[i * 70] end
    assert.same(P:predict(probe):totable(), Q:predict(probe):totable())
    assert.matches("fine%-tuned for 7 epochs", tostring(Q))
    -- the unpruned graphs reach the network: another graph form, other predictions
    local R = fit{graph = "pruned", transfer_epochs = 7}
    assert.not_same(P:predict(probe):totable(), R:predict(probe):totable())
    support.raises("option 'transfer_epochs' must be \"auto\" or an integer >= 1 (got 0)",
      function() fit{transfer_epochs = 0} end)
    support.raises("option 'transfer_lr' must be \"auto\" or a number > 0 (got -1)", function() fit{transfer_lr = -1} end)
    support.raises("option 'transfer_lr' must be \"auto\" or a number > 0 (got fast)",
      function() fit{transfer_lr = "fast"} end)
    -- "auto" (the default) is the space's schedule: nb201 80 epochs
    assert.equal(require("nasflat.model_gnn").TRANSFER.nb201.epochs, fit{}.tuned.epochs)
    local o
    support.raises("option 'graph' must be \"auto\", \"pruned\", \"unpruned\" or \"identity\"", function() fit{graph = "raw"} end)
    -- identity (layers without edges) is an FBNet form: an NB201 fit says so
    o = {}
    for k, v in pairs(base) do o[k] = v end
    o.graph = "identity"
    local none, why = model.fit(o)
    assert.is_nil(none)
    assert.matches("graph 'identity' %(layers without edges%) is an FBNet form", why)
    os.execute("rm -r " .. quote(dir))
  end)

  it("averages fine-tuned copies of the network (transfer_members) and keeps them through save and load", function()
    local src = zoo("nb201")
    local dir = support.tmpdir()
    local s = samples(src, "cpu_mobile_big", 16)
    local pre = assert(model.fit{kind = "nasflat", space = "nb201", samples = s, data = src,
      sources = {src.devices[1]}, epochs = 2, pretrain_samples = 32}).pretrained
    local function fit(m)
      return assert(model.fit{kind = "nasflat", space = "nb201", samples = s, data = src, pretrained = pre,
        transfer_epochs = 5, transfer_members = m, seed = 3})
    end
    local one, three = fit(1), fit(3)
    assert.equal(3, #three.tuned.nets)
    assert.matches("3 members averaged", tostring(three))
    local probe = {}
    for i = 1, 150 do probe[i] = src.arch_strings[i * 90] end
    -- member 1 is the plain fine-tuning (same seed, same weights); the others are other fine-tunings
    local g = require("nasflat.model_gnn").graphs(pre, src.space, probe)
    local function scores(net) return assert(net:predict{graphs = g, device = one.target}):totable() end
    assert.same(scores(one.tuned.nets[1]), scores(three.tuned.nets[1]))
    assert.not_same(scores(three.tuned.nets[1]), scores(three.tuned.nets[2]))
    assert.not_same(one:predict(probe):totable(), three:predict(probe):totable())
    local path = dir .. "/m.nfm"
    assert(three:save(path))
    local Q = assert(model.load(path))
    assert.equal(3, #Q.tuned.nets)
    assert.same(three:predict(probe):totable(), Q:predict(probe):totable())
    support.raises("option 'transfer_members' must be an integer >= 1 (got 0)", function() fit(0) end)
    support.raises("option 'transfer_members' must be an integer >= 1 (got 1.5)", function() fit(1.5) end)
    -- a header whose member sizes do not add up to the payload is refused with the reason
    local f = assert(io.open(path, "rb"))
    local text = f:read("a")
    f:close()
    local sizes = text:match('"member_bytes":%[([%d,]+)%]')
    local first = tonumber(sizes:match("^%d+"))
    local body = text:gsub("crc32 %x+\n$", ""):gsub('"member_bytes":%[' .. sizes .. '%]',
      '"member_bytes":[' .. first .. "," .. first .. "]")
    local bad = dir .. "/bad.nfm"
    local h = assert(io.open(bad, "wb"))
    h:write(body .. string.format("crc32 %s\n", require("nasflat.core").crc32(body)))
    h:close()
    local none, why = model.load(bad)
    assert.is_nil(none)
    assert.matches("bytes after the last member", why)
    os.execute("rm -r " .. quote(dir))
  end)

  it("reads FBNet layers without edges (graph = identity) through save and load", function()
    local src = zoo("fbnet")
    local dir = support.tmpdir()
    local s = samples(src, src.devices[2], 16)
    local function fit(graph)
      return assert(model.fit{kind = "nasflat", space = "fbnet", samples = s, data = src, sources = {src.devices[1]},
        epochs = 2, pretrain_samples = 32, transfer_epochs = 3, graph = graph})
    end
    local P = fit("identity")
    assert.equal(1, P.tuned.nets[1]:meta().graph_identity)
    local probe = {}
    for i = 1, 100 do probe[i] = src.arch_strings[i * 40] end
    local path = dir .. "/i.nfm"
    assert(P:save(path))
    local Q = assert(model.load(path))
    assert.same(P:predict(probe):totable(), Q:predict(probe):totable())
    -- the chain's edges reach the network: another graph form, other predictions
    assert.not_same(P:predict(probe):totable(), fit("pruned"):predict(probe):totable())
    -- a supplementary input of features side by side (struct + floor), rebuilt for any architecture after a load
    local Z = assert(model.fit{kind = "nasflat", space = "fbnet", samples = s, data = src, sources = {src.devices[1]},
      epochs = 2, pretrain_samples = 32, transfer_epochs = 3, supplementary = "struct+floor"})
    local meta = Z.tuned.nets[1]:meta()
    assert.same({1, 2}, {meta.z_feat_struct, meta.z_feat_floor})
    assert.equal(require("nasflat.features").matrix(src.space, "struct", {probe[1]}):size(2) +
      require("nasflat.features").matrix(src.space, "floor", {probe[1]}):size(2), Z.tuned.nets[1]:config().z_dim)
    assert(Z:save(path))
    local Zl = assert(model.load(path))
    assert.same(Z:predict(probe):totable(), Zl:predict(probe):totable())
    -- the defaults ("auto"): struct + floor on FBNet, and FBNet's transfer schedule
    local G = require "nasflat.model_gnn"
    assert.equal(G.TRANSFER.fbnet.epochs, assert(model.fit{kind = "nasflat", space = "fbnet", samples = s, data = src,
      sources = {src.devices[1]}, epochs = 2, pretrain_samples = 32}).tuned.epochs)
    assert.are_not.equal(G.TRANSFER.nb201.epochs, G.TRANSFER.fbnet.epochs)
    assert.same({1, 2}, {P.tuned.nets[1]:meta().z_feat_struct, P.tuned.nets[1]:meta().z_feat_floor})
    support.raises("option 'supplementary' must be \"auto\", \"none\" or nasflat.features names joined by '+'",
      function()
        model.fit{kind = "nasflat", space = "fbnet", samples = s, data = src, sources = {src.devices[1]}, epochs = 1,
          pretrain_samples = 8, supplementary = "struct+zcp"}
      end)
    os.execute("rm -r " .. quote(dir))
  end)

  it("refuses damaged, truncated, foreign and future files with the reason", function()
    local dir = support.tmpdir()
    local P = assert(model.fit{kind = "ridge", space = "nb201", samples = (samples(zoo("nb201"), "gpu_mobile", 12))})
    local path = dir .. "/m.nfm"
    assert(P:save(path))
    local f = assert(io.open(path, "rb"))
    local text = f:read("a")
    f:close()
    local function with(content)
      local p = dir .. "/bad.nfm"
      local g = assert(io.open(p, "wb"))
      g:write(content)
      g:close()
      local m, err = model.load(p)
      assert.is_nil(m)
      return (err:gsub("^" .. p:gsub("%p", "%%%0") .. ": ", ""))
    end
    assert.equal("checksum mismatch (the file is damaged)", with(text:gsub('"link":"log"', '"link":"lig"')))
    assert.equal("truncated (no checksum line at the end)", with(text:sub(1, #text - 5)))
    local body = text:gsub("crc32 %x+\n$", ""):gsub("^nasflat%-model 1", "nasflat-model 9")
    assert.equal("format version 9, this nasflat reads version 1",
      with(body .. string.format("crc32 %s\n", require("nasflat.core").crc32(body))))
    assert.equal("not a nasflat model file (bad magic)", with(string.rep("hello, world\n", 20)))
    local m, err = model.load(dir .. "/none.nfm")
    assert.is_nil(m)
    assert.equal(dir .. "/none.nfm: cannot open (No such file or directory)", err)
    os.execute("rm -r " .. quote(dir))
  end)
end)

describe("results writer", function()
  it("quotes text cells per RFC 4180 and defuses spreadsheet formulas; numbers are exact", function()
    assert.equal('"a,b"', results.cell("a,b"))
    assert.equal('"say ""hi"""', results.cell('say "hi"'))
    assert.equal('"x\ny"', results.cell("x\ny"))
    assert.equal("'=1+2", results.cell("=1+2"))
    assert.equal("-1.5", results.cell(-1.5))
    assert.equal("656519696374121", results.cell(656519696374121))
    assert.equal("0.1", results.cell(0.1))
    assert.equal("", results.cell(0 / 0))
    assert.equal('{"a":[1,2],"b":null,"s":656519696374121}', json.encode({a = {1, 2}, b = 0 / 0, s = 656519696374121}))
    local x = 0.1 + 0.2
    assert.equal(x, cjson.decode(json.encode({x = x})).x)
  end)

  it("writes the CSV, then the JSON naming it; a reader refuses a JSON beside another run's CSV", function()
    local dir = support.tmpdir()
    local jp, cp = assert(results.write{dir = dir .. "/out", stem = "r", value = {n = 1}, csv = "a,b\n1,2\n"})
    assert.equal(dir .. "/out/r.json", jp)
    assert.equal(dir .. "/out/r.csv", cp)
    assert.equal(1, assert(results.read(jp)).n)
    -- a later run that died between its two renames: a new CSV beside the old JSON
    local f = assert(io.open(cp, "wb"))
    f:write("a,b\n3,4\n")
    f:close()
    local v, err = results.read(jp)
    assert.is_nil(v)
    assert.equal(jp .. ": its CSV r.csv is not the one written with it (an interrupted or mixed run)", err)
    os.remove(cp)
    v, err = results.read(jp)
    assert.is_nil(v)
    assert.equal(jp .. ": its CSV r.csv is missing", err)
    local ok, werr = results.write{dir = "", stem = "r", value = {}, csv = ""}
    assert.is_nil(ok)
    assert.equal("results: the output directory name is empty", werr)
    os.execute("rm -r " .. quote(dir))
  end)
end)

describe("nasflat fit and predict", function()
  local function nasflat(args, env)
    local parts = {(env or "") .. " ./bin/nasflat"}
    for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
    return support.capture(table.concat(parts, " "))
  end

  it("fit on a CSV, predict from another directory with no data: the same numbers as the Lua API", function()
    local dir = support.tmpdir()
    local src = zoo("nb201")
    local s = samples(src, "gpu_mobile", 20)
    local lines = {"arch,ms"}
    for i, a in ipairs(s.archs) do lines[#lines + 1] = a .. "," .. json.number(s.ms[i]) end
    local csv = dir .. "/board.csv"
    local f = assert(io.open(csv, "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local mpath = dir .. "/board.nfm"
    local r = nasflat{"fit", "--space", "nb201", "--samples", csv, "--predictor", "ridge", "--out", mpath, "--json"}
    assert.equal("", r.err)
    assert.equal(0, r.code)
    local desc = cjson.decode(r.out)
    assert.equal("ridge", desc.kind)
    assert.equal(20, desc.samples)
    -- predict from /tmp with no data directory reachable
    local cwd = assert(io.popen("pwd")):read("l")
    local cmd = "cd /tmp && NASFLAT_DATA=/nonexistent-nasflat " .. quote(cwd .. "/bin/nasflat") ..
      " predict --model " .. quote(mpath) .. " --interval 0.9 " .. quote(src.arch_strings[7]) .. " " ..
      quote(src.arch_strings[70])
    r = support.capture(cmd)
    assert.equal("", r.err)
    assert.equal(0, r.code)
    local want_ms, info = assert(model.load(mpath)):predict({src.arch_strings[7], src.arch_strings[70]},
      {interval = 0.9})
    local got = {}
    for line in r.out:gmatch("([^\n]*)\n") do got[#got + 1] = line end
    assert.equal("arch,ms,lo,hi", got[1])
    for i = 1, 2 do
      assert.equal(string.format("%s,%.9g,%.9g,%.9g", src.arch_strings[i == 1 and 7 or 70], want_ms:get(i),
        info.lo:get(i), info.hi:get(i)), got[i + 1])
    end
    -- --all: every NB201 cell, canonical strings; --random N --seed S: reproducible
    r = nasflat{"predict", "--model", mpath, "--all"}
    assert.equal(0, r.code)
    local n = 0
    for _ in r.out:gmatch("\n") do n = n + 1 end
    assert.equal(15626, n)
    local r1, r2 = nasflat{"predict", "--model", mpath, "--random", "5", "--seed", "3", "--json"},
      nasflat{"predict", "--model", mpath, "--random", "5", "--seed", "3", "--json"}
    assert.equal(r1.out, r2.out)
    assert.equal(5, #cjson.decode(r1.out).predictions)
    os.execute("rm -r " .. quote(dir))
  end)

  it("run keeps a trial whose Spearman is undefined: null with the reason, counted, shown, files written", function()
    local dir = support.tmpdir()
    local src = zoo("nb201")
    local lines = {"arch_index,arch_string,a,b,flat"}
    local A, B = src:ms("gpu_server_a_b1"), src:ms("cpu_desktop_8c")
    for i = 1, 300 do
      lines[#lines + 1] = string.format("%d,%s,%s,%s,5", i - 1, src.arch_strings[i], json.number(A:get(i)),
        json.number(B:get(i)))
    end
    local f = assert(io.open(dir .. "/nb201_latency.csv", "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local r = nasflat{"run", "--data", dir, "--train", "a,b", "--test", "flat", "--predictor", "ridge", "--trials", "2",
      "--out", dir .. "/out"}
    assert.equal(0, r.code)
    assert.matches("note: 2 trial%(s%) have no Spearman", r.out)
    local res = assert(results.read(dir .. "/out/custom-seed1.json"))
    assert.equal(2, res.nan_metrics)
    local t = res.targets[1].budgets[1].trials[1].ridge
    assert.equal(cjson.null, t.spearman)   -- null in the JSON
    assert.equal("the measured latencies are all equal", t.nan_reason)
    os.execute("rm -r " .. quote(dir))
  end)

  it("fails (exit 1) when its output cannot be written: a full disk as stdout", function()
    local f = io.open("/dev/full", "w")
    if not f then return pending("no /dev/full here") end
    f:close()
    local msg = "nasflat: cannot write the results to standard output (No space left on device)\n"
    for _, args in ipairs{{"data", "--data", "synthetic"}, {"data", "--data", "synthetic", "--json"},
                          {"run", "--data", "synthetic", "--task", "Z1", "--predictor", "ridge", "--trials", "1"}} do
      local parts = {"./bin/nasflat"}
      for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
      local r = support.capture(table.concat(parts, " ") .. " >/dev/full")
      assert.equal(1, r.code, table.concat(args, " "))
      assert.equal(msg, r.err)
    end
  end)

  it("names the file, line and column of bad samples; refuses impossible requests", function()
    local dir = support.tmpdir()
    local A = zoo("nb201").arch_strings
    local function case(text, code, message, extra)
      local p = dir .. "/s.csv"
      local f = assert(io.open(p, "w"))
      f:write(text)
      f:close()
      local args = {"fit", "--space", "nb201", "--samples", p, "--predictor", "ridge", "--out", dir .. "/m.nfm"}
      for _, a in ipairs(extra or {}) do args[#args + 1] = a end
      local r = nasflat(args, "NASFLAT_DATA=/nonexistent-nasflat")
      assert.equal("nasflat: " .. message:gsub("FILE", p) .. "\n", r.err)
      assert.equal(code, r.code)
      assert.is_nil(io.open(dir .. "/m.nfm", "rb"), "no model written")
    end
    case("arch,latency\n" .. A[1] .. ",1\n", 1, "FILE:1: no column 'ms' (the header has: arch,latency; expected arch,ms)")
    case("arch,ms\n" .. A[1] .. ",1\n" .. A[2] .. ",0\n", 1, "FILE:3:2: ms must be a positive number (got 0)")
    case("arch,ms\n" .. A[1] .. ",abc\n", 1, 'FILE:2:2: ms must be a positive number (got "abc")')
    case("arch,ms\n" .. A[1] .. ",\n", 1, "FILE:2:2: ms must be a positive number (got an empty cell)")
    case("arch,ms\n" .. A[1] .. ",1\n|bogus~0|,2\n", 1, "FILE:3:1: nb201 arch string: unknown op 'bogus' " ..
      "(expected none, skip_connect, nor_conv_1x1, nor_conv_3x3 or avg_pool_3x3) at column 2 (edge 1, 0->1)")
    case("arch,ms\n17,1\n", 1, "FILE:2:1: '17' is a dataset index, but there is no data directory to look it up " ..
      "(--data DIR)")
    case("arch,ms\n" .. A[1] .. ",1\n" .. A[2] .. ",2\n", 1, "ridge needs at least 3 distinct measured " ..
      "architectures (got 2)")
    case("arch,ms\n" .. A[1] .. ",1\n" .. A[1] .. ",2\n" .. A[2] .. ",2\n", 1, "ridge needs at least 3 distinct " ..
      "measured architectures (got 2)")
    case("arch,ms\n" .. A[1] .. ",1\n", 1, "fit: the hybrid model needs the source devices' data: no data directory " ..
      "found (--data DIR, $NASFLAT_DATA, or ../shared/data); --predictor ridge needs none",
      {"--predictor", "hybrid"})
    os.execute("rm -r " .. quote(dir))
  end)
end)
