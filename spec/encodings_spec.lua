-- nasflat.encodings and the graph autoencoder behind arch2vec (csrc/nf_vae.c).
local nf = require "nasflat"
local enc = require "nasflat.encodings"
local space_mod = require "nasflat.space"
local support = require "support"

local V = nf.core.vae
local DATA = support.data_dir()
local NB = space_mod.get("nb201")
local FB = space_mod.get("fbnet")

local function same_values(a, b)
  if a:size(1) ~= b:size(1) or a:size(2) ~= b:size(2) then return false end
  local ta, tb = a:totable(), b:totable()
  for i = 1, #ta do
    for j = 1, #ta[i] do
      if ta[i][j] ~= tb[i][j] then return false end
    end
  end
  return true
end

local function column_range(X, j)
  local lo, hi = math.huge, -math.huge
  for i = 1, X:size(1) do
    local v = X:get(i, j)
    assert(v == v and v > -math.huge and v < math.huge, "entry " .. i .. "," .. j .. " is not finite")
    lo, hi = math.min(lo, v), math.max(hi, v)
  end
  return lo, hi
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("vae: gradient checks (finite differences)", function()
  it("every layer and the whole loss match central differences", function()
    local r = V.gradcheck{B = 3, nodes = 5, vocab = 4, hidden = 6, layers = 2, latent = 3, seed = 1}
    for _, k in ipairs{"aggregate", "adj_decoder", "op_decoder", "reparam_kl", "model", "model_dir"} do
      assert.is_true(r[k] < 1e-2, k .. " error " .. r[k])
    end
    assert.is_true(r.checked > 500)
    -- nb201-sized model (8 nodes, 7 ops, 3 layers): layers entry by entry, the model along directions
    local big = V.gradcheck{B = 4, nodes = 8, vocab = 7, hidden = 16, layers = 3, latent = 8, seed = 5}
    for _, k in ipairs{"aggregate", "adj_decoder", "op_decoder", "reparam_kl"} do
      assert.is_true(big[k] < 1e-2, k .. " error " .. big[k])
    end
    assert.is_true(big.model_dir < 2e-2, "model_dir " .. big.model_dir)
  end)

  it("catches a 5% error in the analytic gradient", function()
    local r = V.gradcheck{sabotage = true}
    assert.is_true(r.model > 0.04)
    assert.is_true(r.model_dir > 0.04)
  end)
end)

describe("vae userdata", function()
  local archs = NB:sample(nf.Rng(4), 300)
  local g = NB:graphs(archs)

  it("has a name, frees idempotently and refuses use after free", function()
    local v = V.new{nodes = 8, vocab = 7, seed = 1}
    assert.matches("^nasflat%.Vae%(8 nodes, vocab 7, 3 GIN layers × 64, latent 32, %d+ parameters, 0 steps%)$",
      tostring(v))
    assert.equal(v:nparams(), (function()
      local c = v:config()
      local in0 = 7 + 8
      local n = 0
      for l = 1, c.layers do n = n + 1 + (l == 1 and in0 or 64) * 64 + 64 + 64 * 64 + 64 end
      return n + (64 + in0) * 64 + 64 + 32 * 7 + 7 + 32 * 32 + 1
    end)())
    v:free()
    v:free()
    assert.equal("nasflat.Vae (closed)", tostring(v))
    support.raises("nasflat: attempt to use a closed Vae", v.embed, v, g.ops, g.adj)
    do
      local w <close> = V.new{nodes = 8, vocab = 7}
      assert.equal(32, w:embed(g.ops, g.adj):size(2))
    end
  end)

  it("rejects bad options and shapes with messages naming them", function()
    support.raises("vae.new: unknown option 'latnet' (allowed: nodes, vocab, positions, skip, hidden, layers, latent, "
      .. "batch, lr, beta, seed)", V.new, {nodes = 8, vocab = 7, latnet = 3})
    support.raises("vae.new: option 'hidden' must be in 1..4096 (got 0)", V.new, {nodes = 8, vocab = 7, hidden = 0})
    support.raises("vae: lr = -1 (must be finite and > 0)", V.new, {nodes = 8, vocab = 7, lr = -1})
    local v = V.new{nodes = 22, vocab = 9}
    support.raises("vae:train: ops must be a B×22 Tensor (got 2 dimensions, last 8)", v.train, v,
      {ops = g.ops, adj = g.adj})
    support.raises("vae:train: unknown option 'epoch' (allowed: ops, adj, rows, epochs, on_epoch)", v.train, v,
      {ops = g.ops, adj = g.adj, epoch = 1})
    local w = V.new{nodes = 8, vocab = 7}
    support.raises("vae:train: rows entry 2 must be an integer in 1..300", w.train, w,
      {ops = g.ops, adj = g.adj, rows = {1, 301}})
    local bad = g.ops:clone()
    bad:set(3, 2, 9)
    support.raises("nasflat: vae: graph 2, node 1: op id 9 out of range 0..6", w.embed, w, bad, g.adj)
    v:free()
    w:free()
  end)

  it("is deterministic for a seed: same seed, same embedding; another seed, another", function()
    local function run(seed)
      local v = V.new{nodes = 8, vocab = 7, seed = seed, hidden = 16, latent = 8}
      local losses = v:train{ops = g.ops, adj = g.adj, epochs = 2}
      assert.equal(2, #losses)
      assert.equal(2 * math.ceil(300 / 32), v:steps())
      local e = v:embed(g.ops, g.adj)
      v:free()
      return e, losses
    end
    local a, la = run(3)
    local b, lb = run(3)
    local c = run(4)
    assert.is_true(same_values(a, b))
    assert.same(la, lb)
    assert.is_false(same_values(a, c))
  end)

  it("calls on_epoch after each epoch", function()
    local v = V.new{nodes = 8, vocab = 7, hidden = 8, latent = 4}
    local seen = {}
    v:train{ops = g.ops, adj = g.adj, rows = {1, 2, 3}, epochs = 3, on_epoch = function(e, l) seen[#seen + 1] = {e, l} end}
    assert.equal(3, #seen)
    assert.equal(3, seen[3][1])
    v:free()
  end)
end)

-- Reconstruction of graphs the autoencoder never saw (10%, drawn with seed 7), with the shipped
-- settings. Floor: 0.99 of nodes and of ordered node pairs, 0.95 of whole graphs. Why this floor:
-- an embedding that feeds a sampler or a predictor must tell architectures apart, i.e. identify the
-- graph; arch2vec reports near-perfect reconstruction, and we measure 1.000 for both spaces. The
-- best label-free guess (the most common op at each position, the most common value of each pair)
-- is computed alongside and rebuilds no whole graph at all, so the floor measures the model, and
-- its margin only absorbs BLAS/thread-count rounding.
local function majority_baseline(g, test)
  local n = g.ops:size(2)
  local ops, adj = g.ops:totable(), g.adj:totable()
  local count_op, count_adj = {}, {}
  for i = 1, n do count_op[i] = {}; count_adj[i] = {} for j = 1, n do count_adj[i][j] = 0 end end
  local is_test = {}
  for _, r in ipairs(test) do is_test[r] = true end
  local ntrain = 0
  for r = 1, #ops do
    if not is_test[r] then
      ntrain = ntrain + 1
      for i = 1, n do
        local o = ops[r][i]
        count_op[i][o] = (count_op[i][o] or 0) + 1
        for j = 1, n do count_adj[i][j] = count_adj[i][j] + adj[r][i][j] end
      end
    end
  end
  local best = {}
  for i = 1, n do
    local bo, bc = nil, -1
    for o, c in pairs(count_op[i]) do if c > bc or (c == bc and o < bo) then bo, bc = o, c end end
    best[i] = bo
  end
  local ok_ops, ok_adj, ok_graph = 0, 0, 0
  for _, r in ipairs(test) do
    local all = true
    for i = 1, n do
      if ops[r][i] == best[i] then ok_ops = ok_ops + 1 else all = false end
      for j = 1, n do
        if i ~= j then
          local guess = count_adj[i][j] * 2 > ntrain and 1 or 0
          if adj[r][i][j] == guess then ok_adj = ok_adj + 1 else all = false end
        end
      end
    end
    if all then ok_graph = ok_graph + 1 end
  end
  return {ops = ok_ops / (#test * n), adj = ok_adj / (#test * n * (n - 1)), graph = ok_graph / #test}
end

local function held_out(space, archs)
  local g = space:graphs(archs)
  local perm = nf.Rng(7):permutation(#archs)
  local ntr = math.floor(#archs * 0.9)
  local train, test = {}, {}
  for i, r in ipairs(perm) do
    if i <= ntr then train[#train + 1] = r else test[#test + 1] = r end
  end
  local vae = enc.train_vae(space, g, {settings = enc.ARCH2VEC_DEFAULTS, seed = 1, rows = train})
  local acc = vae:accuracy(g.ops, g.adj, test)
  vae:free()
  return acc, majority_baseline(g, test)
end

describe("arch2vec autoencoder: reconstruction of held-out graphs", function()
  it("nb201 (all 15,625 cells, 10% held out) clears the floor", function()
    local acc, base = held_out(NB, NB:enumerate())
    assert.equal(1563, acc.n)
    assert.is_true(acc.ops >= 0.99, "ops " .. acc.ops)
    assert.is_true(acc.adj >= 0.99, "adj " .. acc.adj)
    assert.is_true(acc.graph >= 0.95, "graph " .. acc.graph)
    assert.is_true(base.graph < 0.05 and base.ops < 0.6, "baseline " .. base.ops .. " " .. base.graph)
  end)

  it("fbnet (5,000 sampled chains, 10% held out) clears the floor", function()
    local acc, base = held_out(FB, FB:sample(nf.Rng(3), 5000))
    assert.equal(500, acc.n)
    assert.is_true(acc.ops >= 0.99, "ops " .. acc.ops)
    assert.is_true(acc.adj >= 0.99, "adj " .. acc.adj)
    assert.is_true(acc.graph >= 0.95, "graph " .. acc.graph)
    -- a fixed chain: the pair guess is always right; ops are what the graph carries
    assert.equal(1, base.adj)
    assert.is_true(base.graph < 0.05 and base.ops < 0.3, "baseline " .. base.ops .. " " .. base.graph)
  end)
end)

describe("encodings.get: names and errors", function()
  local list = {"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
    "4-2-1-2-1-1"}

  it("lists the base names", function()
    assert.same({"zcp", "arch2vec", "path", "onehot", "params", "struct", "phys", "phys_live", "roof", "roofw", "floor"},
      enc.names())
    local n = enc.names()
    n[1] = "x"
    assert.equal("zcp", enc.names()[1])
    assert.equal(enc, nf.encodings)
  end)

  it("raises on unknown, repeated or empty names, listing the known ones", function()
    support.raises("encodings.get: unknown encoding 'cate' in 'zcp+cate' (known: zcp, arch2vec, path, onehot, "
      .. "params, struct, phys, phys_live, roof, roofw, floor; combine with '+')", enc.get,
      {space = "nb201", name = "zcp+cate", arch_strings = list})
    support.raises("encodings.get: encoding 'path' appears twice in 'path+onehot+path'", enc.get,
      {space = "nb201", name = "path+onehot+path", arch_strings = list})
    support.raises("encodings.get: empty encoding name in 'path+'", enc.get,
      {space = "nb201", name = "path+", arch_strings = list})
    support.raises("encodings.get: option 'name' must be a string", enc.get, {space = "nb201", name = 3,
      arch_strings = list})
  end)

  it("raises on bad options and arch strings", function()
    support.raises("encodings.get: unknown option 'archs' (allowed: arch2vec, arch_strings, cache_dir, data_dir, name, "
      .. "progress, rebuild, seed, space)", enc.get, {space = "nb201", name = "path", archs = list})
    support.raises("encodings.get: option 'arch_strings' is required", enc.get, {space = "nb201", name = "path"})
    support.raises("encodings.get: option 'space' must be \"nb201\" or \"fbnet\" (got nb101)", enc.get,
      {space = "nb101", name = "path", arch_strings = list})
    support.raises("encodings.get: arch_strings entry 2: nb201 arch string: unknown op 'conv' (expected none,",
      enc.get, {space = "nb201", name = "path", arch_strings = {list[1], "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"}})
    support.raises("encodings.get: option 'arch_strings' must be a non-empty list", enc.get,
      {space = "nb201", name = "path", arch_strings = {}})
    support.raises("encodings.get: option 'arch2vec': unknown option 'epoch' (allowed: batch, beta, epochs, hidden, "
      .. "latent, layers, lr, positions, skip)", enc.get, {space = "nb201", name = "arch2vec", arch_strings = list,
      arch2vec = {epoch = 3}})
    support.raises("encodings.get: arch2vec.latent must be an integer in 1..1024 (got 0)", enc.get,
      {space = "nb201", name = "arch2vec", arch_strings = list, arch2vec = {latent = 0}})
  end)

  it("gives clear errors on shape mismatches", function()
    local a, b = nf.Tensor.new(4, 2), nf.Tensor.new(3, 5)
    support.raises("encodings.concat: entry 2 has 3 rows, entry 1 has 4", enc.concat, {a, b})
    support.raises("encodings.concat: entry 2 is 1-D (expected rows × columns)", enc.concat, {a, nf.Tensor.new(4)})
    support.raises("encodings.concat: entry 1 is a table, not a Tensor", enc.concat, {{1, 2}})
    assert.same({4, 7}, enc.concat{a, nf.Tensor.new(4, 5)}:shape())
    support.raises("samplers: encoding has 4 rows, expected 10 (one per architecture)", enc.check, a, 10, "samplers")
    support.raises("encoding: expected a 2-D Tensor (rows × columns)", enc.check, nf.Tensor.new(4), 4)
    assert.equal(a, enc.check(a, 4))
  end)

  it("fails as a failure of the world when the proxy file is missing", function()
    local X, msg = enc.get{space = "nb201", name = "path+zcp", arch_strings = list, data_dir = "/nonexistent/data"}
    assert.is_nil(X)
    assert.matches("/nonexistent/data", msg, 1, true)
    local dir = support.tmpdir()
    X, msg = enc.get{space = "fbnet", name = "zcp", arch_strings = {"0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0"},
      data_dir = dir}
    assert.is_nil(X)
    assert.matches(dir .. "/zcp/fbnet_zcp.csv", msg, 1, true)
    os.execute("rm -r '" .. dir .. "'")
  end)
end)

describe("encodings.get: path, onehot, params, struct", function()
  local cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"

  it("path: BANANAS counts of input->output op sequences, hand-checked", function()
    local X, info = assert(enc.get{space = "nb201", name = "path", arch_strings = {cell, "1-1-0-0-1-1"}})
    assert.same({2, 84}, X:shape())
    local on = {}
    for j = 1, 84 do if X:get(1, j) ~= 0 then on[#on + 1] = info.columns[j] end end
    table.sort(on)
    assert.same({"path:conv3x3>conv3x3", "path:conv3x3>pool>skip", "path:conv3x3>skip", "path:skip"}, on)
    -- "1-1-0-0-1-1": two skip>skip paths (0->1->3 and 0->2->3); the largest count over the space is 2
    for j = 1, 84 do
      local want = info.columns[j] == "path:skip>skip" and 1 or 0
      assert.equal(want, X:get(2, j), info.columns[j])
    end
  end)

  it("rows depend only on the architecture (nb201 scales over the whole space)", function()
    local a = enc.get{space = "nb201", name = "path+onehot+params+struct", arch_strings = {cell}}
    local b = enc.get{space = "nb201", name = "path+onehot+params+struct", arch_strings = NB:sample(nf.Rng(2), 40)}
    local c = enc.get{space = "nb201", name = "path+onehot+params+struct", arch_strings = {"4-2-1-2-1-1", cell}}
    assert.same(a:totable()[1], c:totable()[2])
    assert.equal(84 + 30 + 1 + 8, b:size(2))
  end)

  it("every column is finite and in [0, 1]; the whole space spans it", function()
    local all = NB:enumerate()
    local X = enc.get{space = "nb201", name = "path+onehot+params+struct", arch_strings = all}
    for j = 1, X:size(2) do
      local lo, hi = column_range(X, j)
      assert.equal(0, lo)
      assert.equal(1, hi)
    end
    local archs = FB:sample(nf.Rng(5), 300)
    local F, info = enc.get{space = "fbnet", name = "path+onehot+params+struct", arch_strings = archs}
    assert.equal(198 + 198 + 1 + 11, F:size(2))
    assert.equal("path:l1=k3_e1", info.columns[1])
    assert.equal("onehot:l1=k3_e1", info.columns[199])
    for j = 1, F:size(2) do
      local lo, hi = column_range(F, j)
      assert.is_true(lo >= 0 and hi <= 1)
      -- fbnet: a chain's single path written per position equals the one-hot
      if j <= 198 then for i = 1, 300 do assert.equal(F:get(i, j), F:get(i, j + 198)) end end
    end
  end)
end)

describe("encodings: the roofline families", function()
  it("roof, roofw and floor: ln(1+x) of space:roof_features variants, min-max scaled, named per column", function()
    local archs = FB:sample(nf.Rng(6), 200)
    local X, info = enc.get{space = "fbnet", name = "roof+roofw+floor", arch_strings = archs}
    assert.equal(7 + 7 + 43, X:size(2))
    assert.equal("roof:launches", info.columns[1])
    assert.equal("roofw:roofw_0.25", info.columns[9])
    assert.equal("floor:roof_256_floor_1", info.columns[57])
    -- each column is a monotone map of the raw sums: same order as ln(1 + raw)
    local raw = FB:roof_features(archs, nil, false, "floors"):totable()
    local Xt = X:totable()
    for _, j in ipairs{16, 30, 57} do
      local r = j - 14
      for i = 2, #archs do
        if raw[i][r] > raw[1][r] * (1 + 1e-6) then assert.is_true(Xt[i][j] >= Xt[1][j]) end
      end
    end
    for j = 2, X:size(2) do
      local lo, hi = column_range(X, j)
      assert.is_true(lo == 0 and hi == 1, "column " .. j)
    end
  end)
end)

describe("arch2vec: cache and determinism", function()
  local small = {epochs = 1, hidden = 16, latent = 8, batch = 64}
  local list = NB:sample(nf.Rng(9), 50)

  it("computes once, reuses the file, rebuilds on changed settings or corruption", function()
    local dir = support.tmpdir() .. "/cache/sub"
    local opts = {space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = dir, arch2vec = small}
    local A, ia = assert(enc.get(opts))
    assert.same({50, 8}, A:shape())
    assert.is_false(ia.parts[1].cached)
    assert.matches("cannot open", ia.parts[1].cache_miss, 1, true)
    local path = ia.parts[1].cache_path
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/arch2vec%-nb201%-%x+%.nfenc$", path)
    assert.is_true(exists(path))
    -- 48-byte header + the whole space, 15,625 × 8 floats
    assert.equal(48 + 15625 * 8 * 4, #read_file(path))
    for j = 1, 8 do
      local lo, hi = column_range(A, j)
      assert.is_true(lo >= 0 and hi <= 1)
    end

    local B, ib = assert(enc.get(opts))
    assert.is_true(ib.parts[1].cached)
    assert.is_true(same_values(A, B))

    -- rebuilding retrains from the same seed: the same numbers
    local R, ir = assert(enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = dir,
      arch2vec = small, rebuild = true})
    assert.is_false(ir.parts[1].cached)
    assert.is_true(same_values(A, R))

    -- other settings (seed, or any autoencoder setting): another key, another file, other numbers
    local S, is = assert(enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = dir,
      arch2vec = small, seed = 2})
    assert.is_false(is.parts[1].cached)
    assert.are_not.equal(path, is.parts[1].cache_path)
    assert.is_false(same_values(A, S))
    local W, iw = assert(enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = dir,
      arch2vec = {epochs = 1, hidden = 16, latent = 8, batch = 64, beta = 0.01}})
    assert.is_false(iw.parts[1].cached)
    assert.is_false(same_values(A, W))

    -- a stale file under the new key (settings changed, file not): detected by the header, rebuilt
    write_file(is.parts[1].cache_path, read_file(path))
    local S2, is2 = assert(enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = dir,
      arch2vec = small, seed = 2})
    assert.is_false(is2.parts[1].cached)
    assert.matches("settings changed", is2.parts[1].cache_miss, 1, true)
    assert.is_true(same_values(S, S2))
    assert.is_true(select(2, enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = dir,
      arch2vec = small, seed = 2}).parts[1].cached)

    -- corruption: one flipped byte in the data, a truncated file, garbage
    local good = read_file(path)
    local pos = 48 + 1000
    write_file(path, good:sub(1, pos - 1) .. string.char((good:byte(pos) + 1) % 256) .. good:sub(pos + 1))
    local C1, ic1 = assert(enc.get(opts))
    assert.is_false(ic1.parts[1].cached)
    assert.matches("data CRC mismatch", ic1.parts[1].cache_miss, 1, true)
    assert.is_true(same_values(A, C1))
    assert.equal(good, read_file(path))
    write_file(path, good:sub(1, 5000))
    local C2, ic2 = assert(enc.get(opts))
    assert.matches("truncated data", ic2.parts[1].cache_miss, 1, true)
    assert.is_true(same_values(A, C2))
    write_file(path, "garbage")
    local _, ic3 = assert(enc.get(opts))
    assert.matches("truncated header", ic3.parts[1].cache_miss, 1, true)
    assert.is_true(select(2, enc.get(opts)).parts[1].cached)
    os.execute("rm -r '" .. dir:gsub("/cache/sub$", "") .. "'")
  end)

  it("does not depend on the BLAS thread count", function()
    local before = nf.get_threads()
    local out = {}
    for _, t in ipairs{1, 2} do
      nf.set_threads(t)
      out[t] = assert(enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = false,
        arch2vec = small})
      assert.equal(t, nf.get_threads())   -- restored after training
    end
    nf.set_threads(before)
    assert.is_true(same_values(out[1], out[2]))
  end)

  it("works without a cache, and when the cache cannot be written", function()
    local X, info = assert(enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = false,
      arch2vec = small})
    assert.is_nil(info.parts[1].cache_path)
    local file = os.tmpname()   -- a file where the directory should be
    local Y, iy = assert(enc.get{space = "nb201", name = "arch2vec", arch_strings = list, cache_dir = file .. "/x",
      arch2vec = small})
    assert.matches("not a directory", iy.parts[1].cache_error, 1, true)
    assert.is_true(same_values(X, Y))
    os.remove(file)
  end)

  it("fbnet: keyed by the list of architectures", function()
    local dir = support.tmpdir()
    local a = FB:sample(nf.Rng(1), 40)
    local b = FB:sample(nf.Rng(2), 40)
    local _, ia = assert(enc.get{space = "fbnet", name = "arch2vec", arch_strings = a, cache_dir = dir, arch2vec = small})
    local _, ib = assert(enc.get{space = "fbnet", name = "arch2vec", arch_strings = b, cache_dir = dir, arch2vec = small})
    assert.is_false(ib.parts[1].cached)
    assert.are_not.equal(ia.parts[1].cache_path, ib.parts[1].cache_path)
    assert.equal(48 + 40 * 8 * 4, #read_file(ia.parts[1].cache_path))
    os.execute("rm -r '" .. dir .. "'")
  end)
end)

describe("zcp (real data)", function()
  it("nb201: 15,625 finite rows normalised per METHOD §5, 6,180 filled by the canonical-cell rule", function()
    if not DATA then return pending(support.NO_DATA) end
    local lat = assert(nf.data.load_latency(DATA .. "/nb201_latency.csv"))
    local list = {}
    for r = 1, lat:n_archs() do list[r] = lat:arch_string(r) end
    lat:free()
    local X, info = assert(enc.get{space = "nb201", name = "zcp", arch_strings = list, data_dir = DATA})
    assert.same({15625, 13}, X:shape())
    local part = info.parts[1]
    assert.equal(6180, part.imputed)
    assert.same({epe_nas = 341, jacov = 341, nwot = 341, zen = 341}, part.failed)
    for j, name in ipairs(enc.ZCP_COLUMNS) do
      local lo, hi = column_range(X, j)
      if name == "grasp" then
        local s, s2 = 0, 0
        for i = 1, 15625 do local v = X:get(i, j); s = s + v; s2 = s2 + v * v end
        assert.is_true(math.abs(s / 15625) < 1e-4)
        assert.is_true(math.abs(s2 / 15625 - 1) < 1e-3)
      else
        assert.equal(0, lo, name)
        assert.equal(1, hi, name)
      end
    end
    -- a cell with dead edges is never 0-filled: it carries its canonical cell's proxies, except flops, params
    -- (its own) and l2_norm (plus its dead convs)
    local dead = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    local canon = NB:format(enc.nb201_canonical(NB:parse(dead)))
    assert.equal("|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|", canon)
    local rows = assert(enc.zcp_raw{space = "nb201", arch_strings = {dead, canon}, data_dir = DATA})
    for j, name in ipairs(enc.ZCP_COLUMNS) do
      if name == "params" or name == "flops" or name == "l2_norm" then
        assert.is_true(rows[1][j] > rows[2][j], name)
      else
        assert.equal(rows[2][j], rows[1][j], name)
      end
    end
    local p, f = NB:cost(dead)
    assert.equal(p, rows[1][9])
    assert.equal(f, rows[1][3])
  end)

  it("nb201: the fill rule agrees with NASLib's independent proxies as well as the file does", function()
    if not DATA then return pending(support.NO_DATA) end
    local r = assert(enc.zcp_check{data_dir = DATA})
    assert.equal(303, r.n_file)
    assert.equal(188, r.n_imputed)
    local by = {}
    for _, p in ipairs(r.proxies) do by[p.name] = p end
    for _, name in ipairs{"fisher", "grad_norm", "jacov", "snip", "synflow", "l2_norm", "flops", "params"} do
      local p = by[name]
      assert.is_true(p.rho_imputed >= 0.9, name .. " " .. p.rho_imputed)
      assert.is_true(p.rho_imputed >= p.rho_file - 0.05, name)
      assert.is_true(p.rho_imputed > p.rho_nearest + 0.05, name .. ": not better than the nearest cell")
    end
    assert.equal(1, by.flops.rho_imputed)
    assert.equal(0, by.params.medrel_imputed)
    assert.is_true(by.l2_norm.medrel_imputed < 0.005)
    -- the run-to-run noise itself: NASLib and the file disagree this much on the cells both hold
    assert.is_true(by.epe_nas.rho_imputed > 0.7 and by.grasp.rho_imputed > 0.5)
  end)

  it("fbnet: 5,000 rows, nothing to fill; an unknown architecture is a failure of the world", function()
    if not DATA then return pending(support.NO_DATA) end
    local lat = assert(nf.data.load_latency(DATA .. "/fbnet_latency.csv"))
    local list = {}
    for r = 1, lat:n_archs() do list[r] = lat:arch_string(r) end
    lat:free()
    local X, info = assert(enc.get{space = "fbnet", name = "zcp+params", arch_strings = list, data_dir = DATA})
    assert.same({5000, 14}, X:shape())
    assert.equal(0, info.parts[1].imputed)
    assert.same({}, info.parts[1].failed)
    assert.equal("zcp:epe_nas", info.columns[1])
    assert.equal("params:log_params", info.columns[14])
    for j = 1, 14 do column_range(X, j) end
    -- the zcp params column and our params column order the architectures identically
    local zp, pp = {}, {}
    for i = 1, 5000 do zp[i] = X:get(i, 9); pp[i] = X:get(i, 14) end
    assert.is_true(nf.metrics.spearman(zp, pp) > 0.999)
    local Y, msg = enc.get{space = "fbnet", name = "zcp", arch_strings = {list[1], "0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0"},
      data_dir = DATA}
    assert.is_nil(Y)
    assert.matches("architecture '0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0' (entry 2) has no zero-cost proxies", msg, 1, true)
  end)

  it("combines zcp and arch2vec in the order named", function()
    if not DATA then return pending(support.NO_DATA) end
    local list = NB:sample(nf.Rng(3), 30)
    local dir = support.tmpdir()
    local X, info = assert(enc.get{space = "nb201", name = "arch2vec+zcp", arch_strings = list, data_dir = DATA,
      cache_dir = dir, arch2vec = {epochs = 1, hidden = 16, latent = 8}})
    assert.same({30, 21}, X:shape())
    assert.equal("arch2vec:1", info.columns[1])
    assert.equal("zcp:epe_nas", info.columns[9])
    local Z = assert(enc.get{space = "nb201", name = "zcp", arch_strings = list, data_dir = DATA})
    for i = 1, 30 do for j = 1, 13 do assert.equal(Z:get(i, j), X:get(i, 8 + j)) end end
    os.execute("rm -r '" .. dir .. "'")
  end)
end)

describe("nb201 canonical cells", function()
  it("turns dead edges into none, by hand", function()
    local function canon(s) return NB:format(enc.nb201_canonical(NB:parse(s))) end
    -- all live
    local live = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert.equal(live, canon(live))
    -- conv on 0->1 feeds only none edges; conv on 2->3 has no input: no path at all
    assert.equal("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
      canon("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"))
    -- 1->2 is live through 2->3 only when 0->1 carries something
    assert.equal("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
      canon("|none~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"))
    assert.equal("|skip_connect~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|",
      canon("|skip_connect~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|"))
  end)

  it("has exactly 9,445 fixed points: the cells the proxy file holds", function()
    local n = 0
    for _, a in ipairs(NB:enumerate()) do
      if NB:format(enc.nb201_canonical(NB:parse(a))) == a then n = n + 1 end
    end
    assert.equal(9445, n)
  end)
end)

-- A rows list whose __index frees the Vae: before, vae:train and vae:accuracy went on with a NULL model
-- (a segmentation fault); now the Vae is checked again after the list is read.
describe("Vae and Lua code run during a call", function()
  local core = require "nasflat.core"
  local space = require("nasflat.space").get("nb201")
  local G = space:graphs{space:at(1), space:at(50), space:at(700), space:at(9000)}
  local function fresh()
    return core.vae.new{nodes = space:nodes(), vocab = #space:vocab(), hidden = 4, layers = 1, latent = 2, batch = 2}
  end
  local function freeing(v)
    return setmetatable({}, {__len = function() return 2 end, __index = function(_, i) v:free(); return i end})
  end
  it("re-checks the Vae after reading rows", function()
    local v = fresh()
    support.raises("attempt to use a closed Vae", v.train, v, {ops = G.ops, adj = G.adj, rows = freeing(v)})
    v = fresh()
    support.raises("attempt to use a closed Vae", v.accuracy, v, G.ops, G.adj, freeing(v))
    v = fresh()
    assert.equal(1, #v:train{ops = G.ops, adj = G.adj, rows = {1, 2}})
    v:free()
  end)
end)
