-- The NASFLAT predictor: whole-model gradient checks, training, reproducibility, devices,
-- model files and the Lua API of nasflat.predictor.
local nf = require "nasflat"
local support = require "support"
local predictor = nf.predictor

-- NB201 op-on-node graphs as METHOD §2 describes them (independent of nasflat.space, so this
-- spec tests the engine alone). Labels: output 0, input 1, none 2, skip 3, conv1x1 4, conv3x3 5, pool 6.
local OPS = {none = 2, skip_connect = 3, nor_conv_1x1 = 4, nor_conv_3x3 = 5, avg_pool_3x3 = 6}
local OPNAMES = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}
local EDGES = {{1, 2}, {1, 3}, {1, 5}, {2, 4}, {2, 6}, {3, 7}, {4, 7}, {5, 8}, {6, 8}, {7, 8}}

local function nb201_graph(arch)
  local ops = {}
  for op in arch:gmatch("|([%w_]+)~%d") do ops[#ops + 1] = op end
  local A = {}
  for i = 1, 8 do A[i] = {0, 0, 0, 0, 0, 0, 0, 0} end
  for _, e in ipairs(EDGES) do A[e[1]][e[2]] = 1 end
  local labels = {1, 0, 0, 0, 0, 0, 0, 0}
  for k = 1, 6 do
    local v = k + 1
    labels[v] = OPS[ops[k]]
    if ops[k] == "none" then
      for j = 1, 8 do A[v][j], A[j][v] = 0, 0 end
    elseif ops[k] == "skip_connect" then
      for p = 1, 8 do
        if A[p][v] == 1 then for s = 1, 8 do if A[v][s] == 1 then A[p][s] = 1 end end end
      end
      for j = 1, 8 do A[v][j], A[j][v] = 0, 0 end
    end
  end
  local fwd, bwd = {[1] = true}, {[8] = true}
  for v = 1, 8 do if fwd[v] then for s = 1, 8 do if A[v][s] == 1 then fwd[s] = true end end end end
  for v = 8, 1, -1 do if bwd[v] then for p = 1, 8 do if A[p][v] == 1 then bwd[p] = true end end end end
  for v = 2, 7 do
    if not (fwd[v] and bwd[v]) then for j = 1, 8 do A[v][j], A[j][v] = 0, 0 end end
  end
  return labels, A
end

local function nb201_batch(archs)
  local ops, adj = nf.Tensor.new(#archs, 8), nf.Tensor.new(#archs, 8, 8)
  for g, s in ipairs(archs) do
    local l, A = nb201_graph(s)
    for i = 1, 8 do
      ops:set(g, i, l[i])
      for j = 1, 8 do if A[i][j] ~= 0 then adj:set(g, i, j, 1) end end
    end
  end
  return {ops = ops, adj = adj}
end

local function arch_string(c)
  local d = {}
  for k = 1, 6 do d[k] = OPNAMES[c % 5 + 1]; c = c // 5 end
  return string.format("|%s~0|+|%s~0|%s~1|+|%s~0|%s~1|%s~2|", d[1], d[2], d[3], d[4], d[5], d[6])
end

local function spearman(a, b)
  local function ranks(v)
    local idx = {}
    for i = 1, #v do idx[i] = i end
    table.sort(idx, function(x, y) return v[x] < v[y] end)
    local r, i = {}, 1
    while i <= #idx do
      local j = i
      while j < #idx and v[idx[j + 1]] == v[idx[i]] do j = j + 1 end
      for k = i, j do r[idx[k]] = (i + j) / 2 end
      i = j + 1
    end
    return r
  end
  local ra, rb, n = ranks(a), ranks(b), #a
  local ma, mb = (n + 1) / 2, (n + 1) / 2
  local sab, saa, sbb = 0, 0, 0
  for i = 1, n do
    sab = sab + (ra[i] - ma) * (rb[i] - mb)
    saa = saa + (ra[i] - ma) ^ 2
    sbb = sbb + (rb[i] - mb) ^ 2
  end
  return sab / math.sqrt(saa * sbb)
end

-- A small configuration for gradient checks (the real widths make each check slow, not stronger).
local SMALL = {nodes = 6, n_ops = 5, hid = 12, node_dim = 9, hw_dim = 4, op_layers = {11, 11},
  main_layers = {10, 10, 10}, gate_mlp = {9, 9, 9}, head = {13, 13, 13}, upd_hidden = 8, z_hidden = {7, 7},
  z_out = 6, dev_out = 5}

local function small(over)
  local o = {devices = {"a", "b", "c"}}
  for k, v in pairs(SMALL) do o[k] = v end
  for k, v in pairs(over) do o[k] = v end
  return o
end

local function assert_grad(r, what)
  -- worst_bad: the largest fraction of entries of one parameter slice whose error exceeds 5 %;
  -- a step that crosses a ReLU kink spoils single entries, a wrong backward a whole slice.
  assert(r.checked > 100, what .. ": too few entries checked")
  assert(r.worst_bad < 0.5, string.format("%s: %.0f%% of slice %s disagree (max error %.3g)", what,
    100 * r.worst_bad, r.worst, r.max_rel))
  assert(r.rel < 0.05, string.format("%s: relative gradient error %.3g", what, r.rel))
end

describe("predictor gradients", function()
  for _, layer in ipairs{"ensemble", "dgf", "gat", "gat_mh"} do
    for _, at in ipairs{"node", "head", "none"} do
      it(string.format("match finite differences: layer=%s device_at=%s, with and without z", layer, at), function()
        for _, z in ipairs{0, 5} do
          local P = predictor.new(small{layer = layer, device_at = at, z_dim = z,
            devices = at ~= "none" and {"a", "b", "c"} or nil, op_dim = at == "node" and 10 or 12})
          assert_grad(P:gradcheck{B = 5, per_slice = 6, seed = 3}, layer .. "/" .. at .. "/z=" .. z)
          P:free()
        end
      end)
    end
  end

  it("match finite differences through both losses and the reference quirks", function()
    for _, loss in ipairs{"hinge", "mse"} do
      local P = predictor.new(small{z_dim = 5, op_dim = 10})
      assert_grad(P:gradcheck{B = 6, per_slice = 6, loss = loss, seed = 4}, loss)
    end
    local P = predictor.new(small{op_dim = 10, quirk_io_emb = true, quirk_gat_mask_zero = true,
      gat_slope = 0.01, readout = "reference", none_op = 2})
    assert_grad(P:gradcheck{B = 5, per_slice = 6, seed = 5}, "quirks")
    P = predictor.new(small{op_dim = 10, readout = "masked", none_op = 2, quirk_gat_mask_zero = false})
    assert_grad(P:gradcheck{B = 5, per_slice = 6, seed = 6}, "masked readout")
    -- with the GAT mask 0 (the default); seed 6 lands 3 of x.b's 6 probed entries on a kink (overall error 8e-4)
    P = predictor.new(small{op_dim = 10, readout = "masked", none_op = 2})
    assert_grad(P:gradcheck{B = 5, per_slice = 6, seed = 7}, "masked readout, mask 0")
  end)

  it("catches a wrong gradient", function()
    local P = predictor.new(small{op_dim = 10})
    local r = P:gradcheck{B = 5, per_slice = 6, seed = 3, breakit = true}
    assert.is_true(r.worst_bad >= 0.5)
  end)
end)

-- 32 NB201 cells whose six edges all carry a real op (conv/pool): distinct graphs that the
-- model can tell apart. (Cells that differ only in ops on pruned, dead branches give the same
-- graph up to the labels of dead nodes, which the model ignores by design.)
local function real_op_cells(n, stride)
  assert(stride % 5 ~= 0, "the stride must not be a multiple of 5")
  local out, c = {}, 0
  while #out < n do
    local s = arch_string(c)
    if not s:find("none") and not s:find("skip") then out[#out + 1] = s end
    c = c + stride
  end
  return out
end

describe("predictor training", function()
  it("overfits 32 NB201 cells (synthetic latency): ranking loss near zero, Spearman >= 0.99", function()
    local archs = real_op_cells(32, 37)
    local G = nb201_batch(archs)
    -- a latency-like target: conv3x3 cost grows with depth, pooling is cheap
    local y, yt = nf.Tensor.new(32), {}
    for g = 1, 32 do
      local v = 0
      for i = 2, 7 do
        local op = G.ops:get(g, i)
        v = v + (op == 5 and 3 * i or op == 4 and i or 0.5) + 0.01 * i * op
      end
      yt[g] = v
    end
    local lo, hi = math.min(table.unpack(yt)), math.max(table.unpack(yt))
    for g = 1, 32 do y:set(g, (yt[g] - lo) / (hi - lo)) end
    local P = predictor.new{devices = {"cpu"}, dropout = 0}
    local h = P:fit{graphs = G, devices = "cpu", targets = y, epochs = 150, batch = 8, weight_decay = 0}
    assert.equal(150, h.epochs)
    assert.is_true(h.loss[150] < 0.005, "final ranking loss " .. h.loss[150])
    local s = P:predict{graphs = G, device = "cpu"}:totable()
    assert.is_true(spearman(s, yt) >= 0.99, "Spearman " .. spearman(s, yt))
  end)

  it("overfits 32 NB201 cells of real latency", function()
    local DATA = support.data_dir()
    if not DATA then return pending(support.NO_DATA) end
    local f = assert(io.open(DATA .. "/nb201_latency.csv"))
    local header = f:read("l")
    local col = 0
    for name in header:gmatch("[^,]+") do
      col = col + 1
      if name == "gold_6240" then break end
    end
    local archs, lat = {}, {}
    for line in f:lines() do
      local fields = {}
      for x in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = x end
      if not fields[2]:find("none") and not fields[2]:find("skip") and tonumber(fields[1]) % 7 == 0 then
        archs[#archs + 1] = fields[2]
        lat[#lat + 1] = assert(tonumber(fields[col]))
      end
      if #archs == 32 then break end
    end
    f:close()
    local lo, hi = math.min(table.unpack(lat)), math.max(table.unpack(lat))
    local y = nf.Tensor.new(32)
    for i = 1, 32 do y:set(i, (lat[i] - lo) / (hi - lo)) end
    -- the −∞ mask: with the mask 0 every node attends to every node and 150 epochs end at a loss of 0.016
    local P = predictor.new{devices = {"gold_6240"}, dropout = 0, quirk_gat_mask_zero = false}
    local G = nb201_batch(archs)
    local h = P:fit{graphs = G, devices = "gold_6240", targets = y, epochs = 150, batch = 8, weight_decay = 0}
    assert.is_true(h.loss[#h.loss] < 0.005, "final ranking loss " .. h.loss[#h.loss])
    assert.is_true(spearman(P:predict{graphs = G, device = 1}:totable(), lat) >= 0.99)
  end)

  it("gives bit-identical predictions for the same seed, different ones for another", function()
    local G = nb201_batch(real_op_cells(24, 11))
    local y = nf.Tensor.new(24)
    for i = 1, 24 do y:set(i, ((i * 7) % 24) / 24) end
    local function run(seed)
      local P = predictor.new{devices = {"a", "b"}, seed = seed, hidden = 32}
      P:fit{graphs = G, devices = "b", targets = y, epochs = 3, batch = 8, seed = seed}
      return P:predict{graphs = G, device = "b"}:totable()
    end
    local a, b, c = run(7), run(7), run(8)
    assert.same(a, b)
    assert.not_same(a, c)
  end)

  it("reports every epoch to Lua, which can stop training; callback errors propagate", function()
    local G = nb201_batch(real_op_cells(16, 7))
    local y = nf.Tensor.new(16)
    for i = 1, 16 do y:set(i, i / 16) end
    local P = predictor.new{devices = {"a"}, hidden = 16}
    local seen = {}
    local h = P:fit{graphs = G, devices = "a", targets = y, epochs = 10, batch = 4, loss = "mse", clip = 1.0,
      on_epoch = function(info)
        seen[#seen + 1] = info.epoch
        assert(info.loss >= 0 and info.seconds >= 0 and info.epochs == 10 and info.steps == 4 * info.epoch)
        return info.epoch < 3
      end}
    assert.same({1, 2, 3}, seen)
    assert.equal(3, h.epochs)
    assert.equal(3, #h.loss)
    support.raises("boom in callback", P.fit, P, {graphs = G, devices = "a", targets = y, epochs = 2,
      on_epoch = function() error("boom in callback") end})
    -- per-example devices, by name or index
    P:add_device("b")
    local devs = {}
    for i = 1, 16 do devs[i] = i % 2 == 0 and "a" or 2 end
    assert.equal(1, P:fit{graphs = G, devices = devs, targets = y, epochs = 1}.epochs)
  end)

  it("scores any subset of rows on any device, batched", function()
    local G = nb201_batch(real_op_cells(40, 3))
    local P = predictor.new{devices = {"a", "b"}, hidden = 16}
    local all = P:predict{graphs = G, device = "a"}
    assert.same({40}, all:shape())
    -- the same rows in another batch: equal up to float rounding (BLAS kernels depend on the
    -- matrix size); the same batch is bit-identical
    local sub = P:predict{graphs = G, rows = {40, 1, 7}, device = "a"}:totable()
    for k, r in ipairs{40, 1, 7} do assert.near(all:get(r), sub[k], 1e-5 * math.abs(all:get(r)) + 1e-7) end
    assert.same(all:totable(), P:predict{graphs = G, device = "a"}:totable())
    assert.not_same(all:totable(), P:predict{graphs = G, device = "b"}:totable())
    local n, msg = P:predict{graphs = G, device = "tpu"}
    assert.is_nil(n)
    assert.equal("predict: unknown device 'tpu'", msg)
  end)
end)

describe("predictor devices", function()
  it("adds a device row keeping every other weight, copies rows", function()
    local P = predictor.new{devices = {"a", "b"}, hidden = 16}
    local before, slices = P:params():totable(), P:slices()
    assert.equal(3, P:add_device("c", {copy_from = "b"}))
    assert.same({"a", "b", "c"}, P:devices())
    local after, slices2 = P:params():totable(), P:slices()
    assert.equal(#before + 8, #after)
    for si, s in ipairs(slices) do
      local s2 = slices2[si]
      assert.equal(s.name, s2.name)
      for k = 0, s.size - 1 do assert.equal(before[s.offset + k], after[s2.offset + k]) end
      if s.name == "dev_emb" then
        for k = 0, 7 do assert.equal(after[s2.offset + 8 + k], after[s2.offset + 16 + k]) end
      end
    end
    local G = nb201_batch(real_op_cells(8, 13))
    assert.same(P:predict{graphs = G, device = "b"}:totable(), P:predict{graphs = G, device = "c"}:totable())
    P:add_device("d")
    assert.not_same(P:predict{graphs = G, device = "a"}:totable(), P:predict{graphs = G, device = "d"}:totable())
    assert.is_true(P:copy_device("a", "d"))
    assert.same(P:predict{graphs = G, device = "a"}:totable(), P:predict{graphs = G, device = "d"}:totable())
    local ok, msg = P:add_device("a")
    assert.is_nil(ok)
    assert.equal("add_device: device 'a' already exists", msg)
    ok, msg = P:copy_device("zz", "a")
    assert.is_nil(ok)
    assert.equal("copy_device: unknown device 'zz'", msg)
  end)

  it("clones deeply: training the clone leaves the original untouched", function()
    local G = nb201_batch(real_op_cells(8, 13))
    local y = nf.Tensor.new(8)
    for i = 1, 8 do y:set(i, i / 8) end
    local P = predictor.new{devices = {"a"}, hidden = 16}
    local before = P:predict{graphs = G, device = "a"}:totable()
    local Q = P:clone()
    Q:fit{graphs = G, devices = "a", targets = y, epochs = 2}
    assert.same(before, P:predict{graphs = G, device = "a"}:totable())
    assert.not_same(before, Q:predict{graphs = G, device = "a"}:totable())
  end)
end)

describe("predictor files", function()
  local G = nb201_batch(real_op_cells(12, 17))
  local z = nf.Tensor.new(12, 3)
  for i = 1, 12 do for k = 1, 3 do z:set(i, k, (i * k) % 5 / 5) end end
  G.z = z

  it("save -> load gives identical predictions, config, devices and metadata", function()
    local P = predictor.new{devices = {"a", "b \"quoted\""}, hidden = 16, z_dim = 3, layer = "gat_mh",
      device_at = "head", readout = "masked", none_op = 2}
    P:set_meta("lat_min.a", 1.25)
    P:set_meta("lat_max.a", 9.5)
    local path = os.tmpname()
    assert.is_true(P:save(path))
    local Q = assert(predictor.load(path))
    assert.same(P:config(), Q:config())
    assert.same(P:devices(), Q:devices())
    assert.same({["lat_min.a"] = 1.25, ["lat_max.a"] = 9.5}, Q:meta())
    assert.same(P:predict{graphs = G, device = 2}:totable(), Q:predict{graphs = G, device = 2}:totable())
    assert.same(P:params():totable(), Q:params():totable())
    os.remove(path)
  end)

  it("refuses truncated, corrupted, foreign and missing files with a clear message", function()
    local P = predictor.new{devices = {"a"}, hidden = 8}
    local path = os.tmpname()
    assert.is_true(P:save(path))
    local f = assert(io.open(path, "rb"))
    local good = f:read("a")
    f:close()
    local function try(bytes, needle)
      local p = support.tmpfile(bytes)
      local m, err = predictor.load(p)
      os.remove(p)
      assert.is_nil(m)
      assert(err:find(needle, 1, true), "message was: " .. tostring(err) .. "\nexpected: " .. needle)
    end
    try(good:sub(1, 10), "truncated model file")
    try(good:sub(1, #good - 1), "truncated model file")
    try(good:sub(1, 200), "truncated model file")
    try(good .. "x", "trailing bytes")
    try("", "truncated model file")
    try("hello world, this is not a model file at all", "not a nasflat model file (bad magic)")
    -- flip one byte in the parameters, then one in the header
    local mid = #good - 100
    try(good:sub(1, mid - 1) .. string.char((good:byte(mid) + 1) % 256) .. good:sub(mid + 1), "checksum mismatch")
    try(good:sub(1, 40) .. string.char((good:byte(41) + 1) % 256) .. good:sub(42), "checksum mismatch")
    -- an unsupported version
    try(good:sub(1, 8) .. "\2\0\0\0" .. good:sub(13), "format version 2 is not supported")
    local m, err = predictor.load("/nonexistent/dir/model.nfm")
    assert.is_nil(m)
    assert.matches("^/nonexistent/dir/model.nfm: cannot open", err)
    os.remove(path)
  end)

  it("writes atomically: a failed save leaves no file behind", function()
    local P = predictor.new{devices = {"a"}, hidden = 8}
    local ok, err = P:save("/nonexistent/dir/model.nfm")
    assert.is_nil(ok)
    assert.matches("cannot write", err)
  end)
end)

describe("predictor API", function()
  it("names a configuration by what differs from the defaults (the key of pre-trained networks)", function()
    assert.same({}, predictor.canonical_options{})
    assert.same({}, predictor.canonical_options{layer = "ensemble", device_at = "node", quirk_gat_mask_zero = true})
    assert.same({layer = "mlp"}, predictor.canonical_options{layer = "mlp", device_at = "head"})
    assert.same({layer = "mlp", device_at = "none"}, predictor.canonical_options{layer = "mlp", device_at = "none"})
    assert.same({device_at = "head", hidden = 64, head = {8}},
      predictor.canonical_options{device_at = "head", hidden = 64, head = {8}, z_out = 48})
    assert.same({quirk_gat_mask_zero = false}, predictor.canonical_options{quirk_gat_mask_zero = false})
  end)

  it("validates options and arguments", function()
    support.raises("predictor.new: unknown option 'widht'", predictor.new, {devices = {"a"}, widht = 3})
    support.raises("predictor.new: option 'devices' must list at least one device name", predictor.new, {})
    support.raises("Model: option 'layer' must be one of ensemble, dgf, gat, gat_mh, mlp (got 'gcn')",
      predictor.new, {devices = {"a"}, layer = "gcn"})
    support.raises("Model: option 'device_at' must be one of node, head, none", predictor.new,
      {devices = {"a"}, device_at = "mlp"})
    support.raises("readout 'masked' needs none_op", predictor.new, {devices = {"a"}, readout = "masked"})
    support.raises("device name 'a' appears twice", predictor.new, {devices = {"a", "a"}})
    local P = predictor.new{devices = {"a"}, hidden = 8}
    local G = nb201_batch(real_op_cells(4, 3))
    support.raises("fit: unknown option 'epoch'", P.fit, P, {graphs = G, targets = nf.Tensor.new(4), epoch = 3})
    support.raises("fit: option 'targets' is required", P.fit, P, {graphs = G})
    support.raises("fit: option 'graphs' must be a graph batch", P.fit, P, {graphs = 3, targets = nf.Tensor.new(4)})
    support.raises("predict: option 'device' is required", P.predict, P, {graphs = G})
    support.raises("fit: 'targets' has 5 entries, expected one per row (4)", P.fit, P, {graphs = G, devices = "a",
      targets = nf.Tensor.new(5)})
    support.raises("train: 'rows' entry 2 is 9, not an index in 1..4", P.fit, P, {graphs = G, devices = "a",
      rows = {1, 9}, targets = nf.Tensor.new(2)})
    local bad = {ops = G.ops:clone(), adj = G.adj}
    bad.ops:set(2, 3, 7)
    support.raises("predict: op id 7 at graph 2 node 3 is not an integer in 0..6", P.predict, P,
      {graphs = bad, device = "a"})
    support.raises("predict: 'z' given but the model has z_dim = 0", P.predict, P,
      {graphs = {ops = G.ops, adj = G.adj, z = nf.Tensor.new(4, 2)}, device = "a"})
    local r, msg = P:fit{graphs = G, devices = "gpu", targets = nf.Tensor.new(4)}
    assert.is_nil(r)
    assert.equal("fit: unknown device 'gpu'", msg)
  end)

  it("has the userdata conventions: tostring, free, closed use, __close", function()
    local P = predictor.new{devices = {"a", "b"}, hidden = 8}
    assert.matches("^nasflat.Predictor%(ensemble, device_at=node, 8 nodes, 2 devices, %d+ params%)$", tostring(P))
    assert.equal(P:n_params(), P:params():size())
    assert.is_true(P:flops(128) > 0)
    P:free()
    P:free()
    assert.equal("nasflat.Predictor (closed)", tostring(P))
    support.raises("attempt to use a closed predictor", P.n_params, P)
    local m = nf.core.Model({hid = 8}, {"x"})
    m:free()
    support.raises("attempt to use a closed model", m.n_params, m)
    do
      local Q <close> = predictor.new{devices = {"a"}, hidden = 8}
      assert.is_true(Q:n_params() > 0)
    end
    assert.equal(nf.predictor.set_threads, nf.core.set_threads)
  end)
end)

-- The design study's variants: the flat MLP baseline (layer = "mlp"), the fixed one-hot op
-- encoding (op_encoding = "onehot"), and learned features for a linear probe (:embed).
local function synthetic_latency(G, n)
  local y, yt = nf.Tensor.new(n), {}
  for g = 1, n do
    local v = 0
    for i = 2, 7 do
      local op = G.ops:get(g, i)
      v = v + (op == 5 and 3 * i or op == 4 and i or 0.5) + 0.01 * i * op
    end
    yt[g] = v
  end
  local lo, hi = math.min(table.unpack(yt)), math.max(table.unpack(yt))
  for g = 1, n do y:set(g, (yt[g] - lo) / (hi - lo)) end
  return y, yt
end

describe("predictor variants", function()
  it("match finite differences: layer=mlp, device at the head or none, with and without z, every loss", function()
    for _, at in ipairs{"head", "none"} do
      for _, z in ipairs{0, 5} do
        for _, loss in ipairs{"sum", "hinge", "mse"} do
          local P = predictor.new(small{layer = "mlp", device_at = at, z_dim = z,
            devices = at ~= "none" and {"a", "b", "c"} or nil})
          local r = P:gradcheck{B = 6, per_slice = 6, seed = 3, loss = loss}
          assert(r.checked > 30, "too few entries checked")
          assert(r.worst_bad < 0.5 and r.rel < 0.05, string.format("mlp/%s/z=%d/%s: slice %s, %.0f%% bad, rel %.3g",
            at, z, loss, r.worst, 100 * r.worst_bad, r.rel))
          P:free()
        end
      end
    end
  end)

  it("match finite differences: op_encoding=onehot with every graph layer", function()
    for _, layer in ipairs{"ensemble", "dgf", "gat", "gat_mh"} do
      for _, at in ipairs{"node", "head"} do
        local P = predictor.new(small{layer = layer, device_at = at, op_encoding = "onehot", z_dim = 5})
        assert_grad(P:gradcheck{B = 5, per_slice = 6, seed = 3}, layer .. "/" .. at .. "/onehot")
        P:free()
      end
    end
  end)

  it("allocate no parameter for what they do not use", function()
    local P = predictor.new{devices = {"a"}, layer = "mlp", z_dim = 4}
    local names = {}
    for _, s in ipairs(P:slices()) do names[#names + 1] = s.name end
    assert.same({"dev_emb", "z1.W", "z1.b", "z2.W", "z2.b", "z3.W", "z3.b", "dev1.W", "dev1.b", "dev2.W", "dev2.b",
      "head1.W", "head1.b", "head2.W", "head2.b", "head3.W", "head3.b", "head4.W", "head4.b"}, names)
    -- head input: one-hot ops (8 x 7) + adjacency (8 x 8) + z embedder (48) + device embedder (48)
    assert.equal(56 + 64 + 48 + 48, P:slices()[12].rows)
    assert.equal("head", P:config().device_at)
    assert.equal("onehot", P:config().op_encoding)
    assert.matches("^nasflat.Predictor%(mlp, device_at=head, 8 nodes, 1 devices, %d+ params%)$", tostring(P))
    local Q = predictor.new{devices = {"a"}, op_encoding = "onehot"}
    local L = predictor.new{devices = {"a"}}
    local qs, ls = {}, {}
    for _, s in ipairs(Q:slices()) do qs[s.name] = s end
    for _, s in ipairs(L:slices()) do ls[s.name] = s end
    assert.is_nil(qs.op_emb)
    assert.equal(7 * 40, ls.op_emb.size)
    -- gate width n_ops + hw_dim = 15 instead of op_dim + hw_dim = 48
    assert.equal(15, qs["op_gate.W"].rows)
    assert.equal(48, ls["op_gate.W"].rows)
    assert.equal(15, qs["main_gate.W"].rows)
    assert.equal(15 + 128, qs["gate_upd1.W"].rows)
    assert.equal(15, qs["gate_upd2.W"].cols)
  end)

  it("keep the one-hot op encoding fixed through :fit", function()
    -- The one-hot encoding has no parameters (nothing for AdamW to touch). Check it from outside:
    -- a learned-table model whose op_emb is the identity and whose other weights are the one-hot
    -- model's predicts bit-identically, before and after the one-hot model is trained.
    local G = nb201_batch(real_op_cells(24, 11))
    local y = synthetic_latency(G, 24)
    local opts = {devices = {"a", "b"}, hidden = 16, op_encoding = "onehot"}
    local P = predictor.new(opts)
    opts.op_encoding, opts.op_dim = "learned", 7
    local function twin()
      local T = predictor.new(opts)
      local tp, pp = T:params(), P:params()
      assert.equal(pp:size() + 49, tp:size())
      assert.equal("op_emb", T:slices()[1].name)
      for i = 1, 7 do tp:set((i - 1) * 7 + i, 1) end
      for i = 1, 49 do if (i - 1) % 8 ~= 0 then tp:set(i, 0) end end
      for k = 1, pp:size() do tp:set(49 + k, pp:get(k)) end
      T:set_params(tp)
      return T
    end
    local slices, s0 = P:slices(), P:predict{graphs = G, device = "b"}:totable()
    assert.same(s0, twin():predict{graphs = G, device = "b"}:totable())
    P:fit{graphs = G, devices = "b", targets = y, epochs = 3, batch = 8}
    assert.same(slices, P:slices())
    local s1 = P:predict{graphs = G, device = "b"}:totable()
    assert.not_same(s0, s1)
    assert.same(s1, twin():predict{graphs = G, device = "b"}:totable())
  end)

  it("layer=mlp overfits 32 NB201 cells (synthetic latency): Spearman >= 0.95", function()
    local G = nb201_batch(real_op_cells(32, 37))
    local y, yt = synthetic_latency(G, 32)
    local P = predictor.new{devices = {"cpu"}, layer = "mlp", dropout = 0}
    local h = P:fit{graphs = G, devices = "cpu", targets = y, epochs = 150, batch = 8, weight_decay = 0}
    assert.is_true(h.loss[150] < 0.01, "final ranking loss " .. h.loss[150])
    local s = P:predict{graphs = G, device = "cpu"}:totable()
    assert.is_true(spearman(s, yt) >= 0.95, "Spearman " .. spearman(s, yt))
    -- MSE as well
    local Q = predictor.new{devices = {"cpu"}, layer = "mlp", dropout = 0}
    Q:fit{graphs = G, devices = "cpu", targets = y, epochs = 150, batch = 8, weight_decay = 0, loss = "mse"}
    assert.is_true(spearman(Q:predict{graphs = G, device = "cpu"}:totable(), yt) >= 0.95)
  end)

  it("clone, add_device, copy_device and save -> load work for both", function()
    local G = nb201_batch(real_op_cells(12, 17))
    local z = nf.Tensor.new(12, 3)
    for i = 1, 12 do for k = 1, 3 do z:set(i, k, (i * k) % 5 / 5) end end
    G.z = z
    local y = synthetic_latency(G, 12)
    for _, o in ipairs{{layer = "mlp"}, {op_encoding = "onehot", layer = "gat"}} do
      o.devices, o.hidden, o.z_dim = {"a", "b"}, 16, 3
      local P = predictor.new(o)
      P:fit{graphs = G, devices = "a", targets = y, epochs = 2, batch = 4}
      local path = os.tmpname()
      assert.is_true(P:save(path))
      local Q = assert(predictor.load(path))
      os.remove(path)
      assert.same(P:config(), Q:config())
      assert.equal(o.layer, Q:config().layer)
      assert.equal("onehot", Q:config().op_encoding)
      assert.same(P:params():totable(), Q:params():totable())
      assert.same(P:predict{graphs = G, device = "b"}:totable(), Q:predict{graphs = G, device = "b"}:totable())
      local C = P:clone()
      C:fit{graphs = G, devices = "b", targets = y, epochs = 1, batch = 4}
      assert.same(Q:predict{graphs = G, device = "b"}:totable(), P:predict{graphs = G, device = "b"}:totable())
      assert.equal(3, P:add_device("c", {copy_from = "a"}))
      assert.same(P:predict{graphs = G, device = "a"}:totable(), P:predict{graphs = G, device = "c"}:totable())
      assert.is_true(P:copy_device("b", "c"))
      assert.same(P:predict{graphs = G, device = "b"}:totable(), P:predict{graphs = G, device = "c"}:totable())
    end
  end)

  it("embed: shapes, determinism, a linear map of the head features is predict", function()
    local G = nb201_batch(real_op_cells(150, 7))   -- two predict chunks (128 + 22)
    local z = nf.Tensor.new(150, 3)
    for i = 1, 150 do for k = 1, 3 do z:set(i, k, math.sin(i * k)) end end
    for _, o in ipairs{{}, {layer = "mlp"}, {layer = "mlp", device_at = "none"}, {op_encoding = "onehot", z_dim = 3}} do
      o.devices = o.device_at ~= "none" and {"a", "b"} or nil
      o.hidden = 16
      local P = predictor.new(o)
      local g = {ops = G.ops, adj = G.adj, z = o.z_dim and z or nil}
      local dev = o.device_at ~= "none" and "b" or nil
      local s = P:predict{graphs = g, device = dev}
      local E = P:embed{graphs = g, device = dev}
      assert.same({150, 200}, E:shape())
      assert.same(E:totable(), P:embed{graphs = g, device = dev, layer = "head"}:totable())
      local W, b
      for _, sl in ipairs(P:slices()) do
        if sl.name == "head4.W" then W = sl elseif sl.name == "head4.b" then b = sl end
      end
      assert.equal(200, W.rows)
      local p = P:params()
      for i = 1, 150 do
        local t = p:get(b.offset)
        for k = 1, 200 do
          local e = E:get(i, k)
          assert(e >= 0, "head features are after the ReLU")
          t = t + e * p:get(W.offset + k - 1)
        end
        assert(math.abs(t - s:get(i)) < 1e-4, string.format("graph %d: embed*W+b = %.7g, predict = %.7g", i, t, s:get(i)))
      end
      local R = P:embed{graphs = g, device = dev, layer = "readout", rows = {150, 3}}
      if o.layer == "mlp" then
        assert.same({2, 8 * 7 + 8 * 8}, R:shape())
        -- the MLP's readout is its input: one-hot ops, then the adjacency, flattened
        for k, r in ipairs{150, 3} do
          for i = 1, 8 do
            for v = 0, 6 do assert.equal(G.ops:get(r, i) == v and 1 or 0, R:get(k, (i - 1) * 7 + v + 1)) end
            for j = 1, 8 do assert.equal(G.adj:get(r, i, j), R:get(k, 56 + (i - 1) * 8 + j)) end
          end
        end
      else
        assert.same({2, 16}, R:shape())
        local full = P:embed{graphs = g, device = dev, layer = "readout"}
        for k = 1, 16 do assert.near(full:get(150, k), R:get(1, k), 1e-5 * math.abs(full:get(150, k)) + 1e-6) end
      end
      P:free()
    end
  end)

  it("refuse bad options with messages naming the option and the allowed values", function()
    support.raises("Model: option 'device_at' must be head or none with layer 'mlp' (got 'node')", predictor.new,
      {devices = {"a"}, layer = "mlp", device_at = "node"})
    support.raises("Model: option 'op_encoding' must be one of learned, onehot (got 'table')", predictor.new,
      {devices = {"a"}, op_encoding = "table"})
    support.raises("Model: option 'op_encoding' must be onehot with layer 'mlp' (got 'learned')", predictor.new,
      {devices = {"a"}, layer = "mlp", op_encoding = "learned"})
    support.raises("nasflat: model config: quirk_io_emb replaces learned op embeddings (it needs op_encoding learned)",
      predictor.new, {devices = {"a"}, op_encoding = "onehot", quirk_io_emb = true})
    local P = predictor.new{devices = {"a"}, hidden = 8}
    local G = nb201_batch(real_op_cells(4, 3))
    support.raises("embed: option 'layer' must be one of head, readout (got 'gates')", P.embed, P,
      {graphs = G, device = "a", layer = "gates"})
    support.raises("embed: unknown option 'dev'", P.embed, P, {graphs = G, dev = "a"})
    support.raises("embed: option 'device' is required (a name or an index)", P.embed, P, {graphs = G})
    support.raises("embed: option 'graphs' must be a graph batch", P.embed, P, {graphs = 1, device = "a"})
    local E, msg = P:embed{graphs = G, device = "gpu"}
    assert.is_nil(E)
    assert.equal("embed: unknown device 'gpu'", msg)
    support.raises("embed: 'device' must be a device index in 1..1 (got 2)", P:core().embed, P:core(),
      {ops = G.ops, adj = G.adj, device = 2})
  end)
end)

-- A model file written by the code before the framing was shared (nf_frame.c): same bytes, still loads.
describe("predictor files: limits and old files", function()
  local OLD = table.concat{
    "4e464d4f44454c0001000000e30500007b22666f726d6174223a226e6173666c61742d6d6f64656c222c226c696272617279",
    "223a22302e312e30222c22636f6e666967223a7b226e6f646573223a382c226e5f6f7073223a372c227a5f64696d223a302c",
    "226c61796572223a22656e73656d626c65222c226865616473223a342c226465766963655f6174223a226e6f6465222c226f",
    "705f656e636f64696e67223a226c6561726e6564222c226f705f64696d223a322c2268775f64696d223a322c226e6f64655f",
    "64696d223a322c22686964223a322c227570645f68696464656e223a322c227a5f6f7574223a322c226465765f6f7574223a",
    "322c226f705f6c6179657273223a5b322c325d2c226d61696e5f6c6179657273223a5b322c322c325d2c22676174655f6d6c",
    "70223a5b322c322c325d2c227a5f68696464656e223a5b5d2c2268656164223a5b335d2c2264726f706f7574223a302e3130",
    "303030303030312c22726561646f7574223a226d65616e222c226e6f6e655f6f70223a2d312c226761745f736c6f7065223a",
    "302e3230303030303030332c22717569726b5f696f5f656d62223a66616c73652c22717569726b5f6761745f6d61736b5f7a",
    "65726f223a66616c73652c22717569726b5f6761745f6e7363616c65223a66616c73657d2c2264657669636573223a5b2261",
    "222c2262225d2c226d657461223a7b226c61745f6d696e2e61223a312e32357d2c226e5f706172616d73223a3236352c2273",
    "6c69636573223a5b5b226f705f656d62222c302c31345d2c5b226465765f656d62222c31342c345d2c5b226e6f64655f696e",
    "222c31382c325d2c5b226e6f64655f6f74686572222c32302c325d2c5b22782e57222c32322c345d2c5b22782e62222c3236",
    "2c325d2c5b226f70312e57222c32382c385d2c5b226f70312e302e62222c33362c325d2c5b226f70312e312e61222c33382c",
    "325d2c5b226f70312e312e6c6e5f67222c34302c325d2c5b226f70312e312e6c6e5f62222c34322c325d2c5b226f70322e57",
    "222c34342c385d2c5b226f70322e302e62222c35322c325d2c5b226f70322e312e61222c35342c325d2c5b226f70322e312e",
    "6c6e5f67222c35362c325d2c5b226f70322e312e6c6e5f62222c35382c325d2c5b226f705f676174652e57222c36302c3332",
    "5d2c5b226f705f676174652e62222c39322c385d2c5b22676174655f6d6c70312e57222c3130302c345d2c5b22676174655f",
    "6d6c70312e62222c3130342c325d2c5b22676174655f6d6c70322e57222c3130362c345d2c5b22676174655f6d6c70322e62",
    "222c3131302c325d2c5b22676174655f6d6c70332e57222c3131322c345d2c5b22676174655f6d6c70332e62222c3131362c",
    "325d2c5b22676174655f757064312e57222c3131382c31325d2c5b22676174655f757064312e62222c3133302c325d2c5b22",
    "676174655f757064322e57222c3133322c385d2c5b22676174655f757064322e62222c3134302c345d2c5b226d61696e312e",
    "57222c3134342c385d2c5b226d61696e312e302e62222c3135322c325d2c5b226d61696e312e312e61222c3135342c325d2c",
    "5b226d61696e312e312e6c6e5f67222c3135362c325d2c5b226d61696e312e312e6c6e5f62222c3135382c325d2c5b226d61",
    "696e322e57222c3136302c385d2c5b226d61696e322e302e62222c3136382c325d2c5b226d61696e322e312e61222c313730",
    "2c325d2c5b226d61696e322e312e6c6e5f67222c3137322c325d2c5b226d61696e322e312e6c6e5f62222c3137342c325d2c",
    "5b226d61696e332e57222c3137362c385d2c5b226d61696e332e302e62222c3138342c325d2c5b226d61696e332e312e6122",
    "2c3138362c325d2c5b226d61696e332e312e6c6e5f67222c3138382c325d2c5b226d61696e332e312e6c6e5f62222c313930",
    "2c325d2c5b226d61696e5f676174652e57222c3139322c34385d2c5b226d61696e5f676174652e62222c3234302c31325d2c",
    "5b2268656164312e57222c3235322c365d2c5b2268656164312e62222c3235382c335d2c5b2268656164322e57222c323631",
    "2c335d2c5b2268656164322e62222c3236342c315d5d7d09010000000000007dbba1bf178a71bfa6b1ce3ee22e56bf18427d",
    "3eb2a48fbfa7fad73e77cc8bbf01a885bf240f783f80fd52b9f0805e3d6db9b3bd8f25b8bf56e93d3f139345bf63a4ca3e0c",
    "5a48bf196268be732898bf000000000000000087d46fbe99c2a0bd725420bfee7b0e3ff016253ea451043f6741eabe3cfc08",
    "bf1d14803d9e2be53e4a43823e1bbd5abed070bf3e1bcd1fbefc92b83db6a90c3ea06031bec5af3f3e0000803f0000803f00",
    "00000000000000750d9fbe5b02f03dad4182bee46c083e45f2a1bdf68201bf9e012e3f41d8c6be8867073fe77b28bf34f01c",
    "3f999f26be0000803f0000803f00000000000000007f42803d3a59edbe88cba9bedc0d9f3df87b823efa90703e0084b13d4f",
    "9e9bbdace98ebea607a53ec68321bd9ae25e3d531edbbea95a8fbd531ddcbd2a9e78bed699183ebd15963e2fc8c03d2db0fe",
    "3edbfc8c3e65fd80be911630bed20afc3e526778be1d3add3e1d2becbdfc92b43e7894ca3ed50ef7beac10fabe1efefe3e75",
    "f675be29505f3d05f8623d6d56b1be9f72adbd768fc9beccc01bbea2c149bed2f9893ed820a73edfddfd3e6a1915bf7645e3",
    "3d620fbcbe4a1f84bc1d9fccbd4a6574befd64edbe9ba71cbf4ef3493e0a1f8b3e08a332bf57fb233ff1deb4be001ec73e16",
    "88bb3e6ed3973e8cd7c93ef12e0cbeb3416cbe73cb85beb5921fbec66579bd23025ebc3a9d81bd6c2f4ebe542bc63e9171a5",
    "bdaf2a623e7d2b2d3e3640aa3e1792adbd0870f9bea93e023faec82ebf72e702bf482cc3bdfdf01ebf871491beb76a0fbf19",
    "a2d9be1ba6fabee30cafbeb188093fcaf381beeae3b7be3316a23c9f4e31bb14665d3e53e5d43ec239e13e6161b63e33bca2",
    "be72e901bf0000803f0000803f0000000000000000b8e0cd3e0d6db93e8ab3babee03e9abd2d96c03ee43d333e40b829bf31",
    "0c90bec01cf2be81ab13bfc732ecbe8f0e30bc0000803f0000803f000000000000000087634dbed1c726bf9705efbe8b93d6",
    "be7531d3be3bcc3d3e2adb22be743c31bfc310a8be913b6bbd64ffb1be6036023f0000803f0000803f0000000000000000dd",
    "61c7be31fa92bee56e2bbe5c96ca3ec43c3d3e07ac9dbec96aec3cb2fa43bddbd9e4be0faf6ebe1ed499bd8f8567bd1308cb",
    "be4ed3ecbe325981be5b8aeebea94be7be05cf3abe15dba83eaa399e3e169d803e0a60f5be5e0649be5c618dbc76e6e33e26",
    "8e813deedbf83e8cf893bc9aecb5bda776373dee16d83e4938f5be0bb3c6be22ce813e49f3da3d4b4987bc69950f3e2a8b99",
    "be7b5bc53e8c2eb6be49bb983e271ae6bd7dccf3be3671db3e7badd13e088cdfbe13e8c83db90ebd3e0500edbe344e95be41",
    "0984be71fefe3e5280cfbd13d1a4bec573523ebf542ebe1f0ddabeb897a8bd20cb9bbe9c40c2be864f47be969084be211dbb",
    "3dccaa153f72bb323f33d57fbe84a399be2078e63daf9f2f3f96921ebd6e8dea3d1005d13ea6c4a7bece84262f",
  }
  local function unhex(h) return (h:gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end

  it("loads a file written before the shared framing and predicts as it did", function()
    local p = support.tmpfile(unhex(OLD))
    local P = assert(predictor.load(p))
    os.remove(p)
    assert.same({"a", "b"}, P:devices())
    assert.same({["lat_min.a"] = 1.25}, P:meta())
    assert.equal(265, P:n_params())
    local space = nf.space.get("nb201")
    local out = P:predict{graphs = space:graphs{space:at(1), space:at(100), space:at(5000)}, device = 2}
    local got = {}
    for i = 1, 3 do got[i] = string.format("%.9g", out:get(i)) end
    assert.same({"-0.0353398919", "-0.0338811874", "-0.0330564976"}, got)
    -- saved again: the same bytes but for the removed quirk_gat_nscale key (false in the old file)
    local q = os.tmpname()
    assert.is_true(P:save(q))
    local f = assert(io.open(q, "rb"))
    local again = f:read("a")
    f:close()
    os.remove(q)
    local old = unhex(OLD)
    local hlen = string.unpack("<I4", old, 13)
    local header = old:sub(17, 16 + hlen):gsub(',"quirk_gat_nscale":false', "")
    local body = old:sub(1, 12) .. string.pack("<I4", #header) .. header .. old:sub(17 + hlen, #old - 4)
    assert.equal(body .. string.pack("<I4", tonumber(nf.core.crc32(body), 16)), again)
    -- a file written with the quirk set is refused by name
    local on = old:sub(17, 16 + hlen):gsub('"quirk_gat_nscale":false', '"quirk_gat_nscale":true')
    local body2 = old:sub(1, 12) .. string.pack("<I4", #on) .. on .. old:sub(17 + hlen, #old - 4)
    local p2 = support.tmpfile(body2 .. string.pack("<I4", tonumber(nf.core.crc32(body2), 16)))
    local m2, err2 = predictor.load(p2)
    os.remove(p2)
    assert.is_nil(m2)
    assert.equal(p2 .. ": header: written with quirk_gat_nscale, which nasflat no longer has (it misread the " ..
      "reference's attention)", err2)
  end)

  it("refuses non-regular files by name, before reading them", function()
    local m, err = predictor.load("/dev/zero")
    assert.is_nil(m)
    assert.equal("/dev/zero: not a regular file", err)
    local dir = support.tmpdir()
    m, err = predictor.load(dir)
    assert.is_nil(m)
    assert.equal(dir .. ": not a regular file", err)
    os.remove(dir)
  end)

  it("checks the size a header asks for against the parameters stored before allocating", function()
    -- the old file with a head of 8 layers of 65536 (30 G parameters, 480 GB with gradients and moments)
    local old = unhex(OLD)
    local hlen = string.unpack("<I4", old, 13)
    local header = old:sub(17, 16 + hlen)
    local wide = header:gsub('"head":%[[%d,]*%]', '"head":[' .. string.rep("65536", 8, ",") .. ']')
    assert.are_not.equal(header, wide)
    local body = old:sub(1, 12) .. string.pack("<I4", #wide) .. wide .. old:sub(17 + hlen, #old - 4)
    local file = body .. string.pack("<I4", tonumber(nf.core.crc32(body), 16))
    local p = support.tmpfile(file)
    local m, err = predictor.load(p)
    os.remove(p)
    assert.is_nil(m)
    assert.matches(": 265 parameters stored, the configuration needs %d+$", err)
  end)
end)

describe("predictor memory", function()
  local function rss_mib()
    local f = io.open("/proc/self/status")
    if not f then return nil end
    local t = f:read("a")
    f:close()
    local kb = t:match("VmRSS:%s*(%d+)")
    return kb and tonumber(kb) / 1024
  end

  -- The lua 5.4 interpreter collects in generational mode, where a step is a minor collection that never frees an
  -- old object: the C memory of networks dropped after they grew old must reach the collector some other way.
  it("frees the C memory of dropped networks that grew old, in generational mode", function()
    if not rss_mib() then return pending("no /proc/self/status here") end
    local was = collectgarbage("generational")
    local P = predictor.new{devices = {"a"}, hidden = 256}
    local mib = P:core():bytes() / 2 ^ 20
    local n = math.ceil(800 / mib)   -- 800 MiB of networks made and dropped
    local before = rss_mib()
    local function make_old_and_drop()
      local Q = P:clone()
      collectgarbage("step")
      collectgarbage("step")         -- two minor collections survived: Q is old
      return Q:n_params()
    end
    for _ = 1, n do make_old_and_drop() end
    local grown = rss_mib() - before
    P:free()
    collectgarbage(was)
    -- bound: 64 MiB of uncollected C memory (or the Lua heap), and AddressSanitizer's 256 MiB quarantine
    assert(grown < 400, string.format("%d dropped networks of %.1f MiB: resident memory grew %.0f MiB", n, mib, grown))
  end)
end)
