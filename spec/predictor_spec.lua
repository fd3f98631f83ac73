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
      quirk_gat_nscale = true, gat_slope = 0.01, readout = "reference", none_op = 2})
    assert_grad(P:gradcheck{B = 5, per_slice = 6, seed = 5}, "quirks")
    P = predictor.new(small{op_dim = 10, readout = "masked", none_op = 2})
    assert_grad(P:gradcheck{B = 5, per_slice = 6, seed = 6}, "masked readout")
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
    local P = predictor.new{devices = {"gold_6240"}, dropout = 0}
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
      device_at = "head", readout = "masked", none_op = 2, quirk_gat_nscale = true}
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
