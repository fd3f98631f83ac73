local nf = require "nasflat"
local support = require "support"
local space = require "nasflat.space"

local NB, FB = space.get("nb201"), space.get("fbnet")

-- Read a CSV with a header into a list of rows (tables keyed by column name); plain Lua io.
local function read_csv(path)
  local f = assert(io.open(path, "r"))
  local header
  local rows = {}
  for line in f:lines() do
    local fields = {}
    for v in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = v end
    if not header then
      header = fields
    else
      local r = {}
      for i, name in ipairs(header) do r[name] = fields[i] end
      rows[#rows + 1] = r
    end
  end
  f:close()
  return rows
end

local function edges_of(adj)
  local out = {}
  local t = adj:totable()
  for i = 1, #t do
    for j = 1, #t do
      if t[i][j] ~= 0 then out[#out + 1] = (i - 1) .. ">" .. (j - 1) end
    end
  end
  return table.concat(out, " ")
end

local function ints(t)
  local out = {}
  for i, v in ipairs(t:totable()) do out[i] = math.tointeger(v) end
  return out
end

describe("space.get", function()
  it("returns one object per space and rejects unknown names", function()
    assert.equal(NB, space.get("NB201"))
    assert.equal(NB, space.get("nasbench201"))
    support.raises("space.get: unknown search space 'darts' (expected nb201 or fbnet)", space.get, "darts")
    assert.equal("nasflat.Space(nb201: 6 positions, 8 graph nodes)", tostring(NB))
    assert.equal("nasflat.Space(fbnet: 22 positions, 22 graph nodes)", tostring(FB))
  end)

  it("describes sizes and vocabularies", function()
    assert.equal(15625, NB:size())
    assert.is_true(math.abs(FB:size() / 9 ^ 22 - 1) < 1e-12)
    assert.same({"input", "output", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}, NB:vocab())
    assert.same({"k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"}, FB:vocab())
    assert.same({"cifar10", "cifar100", "ImageNet16-120"}, NB:datasets())
    assert.same({"cifar100"}, FB:datasets())
    assert.equal(8, NB:feature_dim())
    assert.equal(11, FB:feature_dim())
    assert.equal(11, #FB:feature_names())
  end)
end)

describe("nb201 arch strings", function()
  local s = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"

  it("parses both forms and formats the canonical one", function()
    assert.same({4, 2, 1, 2, 1, 1}, NB:parse(s))
    assert.same({4, 2, 1, 2, 1, 1}, NB:parse("4-2-1-2-1-1"))
    assert.equal(s, NB:format({4, 2, 1, 2, 1, 1}))
    assert.equal(s, NB:format("4-2-1-2-1-1"))
  end)

  it("returns nil and a message naming the bad part for malformed strings", function()
    local code, err = NB:parse("|nor_conv_3x3~0|+|none~0|conv_3x3~1|+|none~0|none~1|none~2|")
    assert.is_nil(code)
    assert.equal("nb201 arch string: unknown op 'conv_3x3' (expected none, skip_connect, nor_conv_1x1, " ..
      "nor_conv_3x3 or avg_pool_3x3) at column 26 (edge 3, 1->2)", err)
    code, err = NB:parse("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|")
    assert.is_nil(code)
    assert.equal("nb201 arch string: expected input node ~1, found '~2' at column 23 (edge 3, 1->2)", err)
    code, err = NB:parse("|none~0|+|none~0|none~1|+|none~0|none~1|")
    assert.is_nil(code)
    assert.equal("nb201 arch string: missing op at column 41 (edge 6, 2->3)", err)
    code, err = NB:parse("0-1-2-3-4")
    assert.is_nil(code)
    assert.equal("nb201 arch string: expected 6 op ids joined by '-' (got 5)", err)
    support.raises("nb201:parse: expected an arch string (got table)", NB.parse, NB, {1, 2})
  end)

  it("escapes control bytes, DEL and non-ASCII bytes it quotes in a message (issue 15)", function()
    local code, err = NB:parse("|nor_conv\27[2J~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert.is_nil(code)
    assert.equal("nb201 arch string: unknown op 'nor_conv\\x1b[2J' (expected none, skip_connect, nor_conv_1x1, "
      .. "nor_conv_3x3 or avg_pool_3x3) at column 2 (edge 1, 0->1)", err)
    code, err = NB:parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\r\n\\\127\195\169")
    assert.is_nil(code)
    assert.equal("nb201 arch string: unexpected trailing text '\\x0d\\x0a\\\\\\x7f\\xc3\\xa9' at column 48", err)
    code, err = FB:parse("7-8-1-8-\7\8-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5")
    assert.is_nil(code)
    assert.equal("fbnet arch string: unknown block '\\x07\\x08' at column 9 (layer 5; expected 0..8 or a block name)", err)
  end)

  it("raises, naming the entry, when other methods get a malformed architecture", function()
    support.raises("nasflat: graphs: entry 2: nb201 arch string: unknown op 'conv'",
      function() NB:graphs({s, "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"}) end)
    support.raises("nasflat: cost: code: id 3 must be an integer in 0..4", function() NB:cost({0, 0, 9, 0, 0, 0}) end)
    support.raises("nasflat: graphs: entry 1 has 5 ids (a nb201 code has 6)", function() NB:graphs({{0, 0, 0, 0, 0}}) end)
    support.raises("nasflat: struct_features: entry 1 must be an arch string or a table of 6 ids (got number)",
      function() NB:struct_features({7}) end)
  end)

  it("enumerates every cell once, with a 1-based index", function()
    local all = NB:enumerate()
    assert.equal(15625, #all)
    local seen = {}
    for i, a in ipairs(all) do
      assert.is_nil(seen[a])
      seen[a] = true
      if i % 1000 == 1 then
        assert.equal(i, NB:index(a))
        assert.equal(a, NB:at(i))
      end
    end
    assert.equal("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", all[1])
    support.raises("nasflat: at: index 15626 out of range 1..15625", NB.at, NB, 15626)
  end)
end)

describe("nb201 graphs (METHOD §2), checked by hand", function()
  -- nodes: 0 input, 1..6 the edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3, 7 output
  -- vocab: input 0, output 1, none 2, skip 3, conv1x1 4, conv3x3 5, avgpool 6
  local cases = {
    {"all conv3x3: the unpruned base graph",
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     {0, 5, 5, 5, 5, 5, 5, 1}, "0>1 0>2 0>4 1>3 1>5 2>6 3>6 4>7 5>7 6>7"},
    {"all none: everything cut", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     {0, 2, 2, 2, 2, 2, 2, 1}, ""},
    {"all skip_connect: input wired to output",
     "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
     {0, 3, 3, 3, 3, 3, 3, 1}, "0>7"},
    {"no input->output path", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|",
     {0, 5, 2, 2, 2, 2, 5, 1}, ""},
    {"dead branch: conv3x3 on 0->1 feeds only none edges",
     "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
     {0, 5, 4, 2, 3, 2, 6, 1}, "0>2 0>7 2>6 6>7"},
    {"a chain of two skips contracts", "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|",
     {0, 3, 2, 3, 2, 2, 4, 1}, "0>6 6>7"},
    {"data row 0", "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     {0, 6, 4, 3, 4, 3, 3, 1}, "0>1 0>2 0>4 1>7 2>7 4>7"},
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local g = NB:graph(c[2])
      assert.same({8}, g.ops:shape())
      assert.same({8, 8}, g.adj:shape())
      assert.same(c[3], ints(g.ops))
      assert.equal(c[4], edges_of(g.adj))
    end)
  end

  it("can keep the raw graph or relabel pruned nodes as none", function()
    local dead = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    local raw = NB:graph(dead, {pruned = false})
    assert.same({0, 5, 4, 2, 3, 2, 6, 1}, ints(raw.ops))
    assert.equal("0>1 0>2 0>4 1>3 1>5 2>6 3>6 4>7 5>7 6>7", edges_of(raw.adj))
    assert.same({0, 2, 4, 2, 2, 2, 6, 1}, ints(NB:graph(dead, {dead_as_none = true}).ops))
    support.raises("nb201:graph: unknown option 'prune' (allowed: adjacency, dead_as_none, pruned)",
      function() NB:graph(dead, {prune = false}) end)
  end)

  it("builds all 15,625 graphs in one batch, equal to the single builds", function()
    local all = NB:enumerate()
    local g = NB:graphs(all)
    assert.same({15625, 8}, g.ops:shape())
    assert.same({15625, 8, 8}, g.adj:shape())
    for _, i in ipairs({1, 2, 777, 15625}) do
      local one = NB:graph(all[i])
      assert.same(one.ops:totable(), g.ops:rows(i, i):reshape(8):totable())
      assert.same(one.adj:totable(), g.adj:rows(i, i):reshape(8, 8):totable())
    end
  end)
end)

describe("nb201 cost, layers and features", function()
  local s = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"

  it("matches data row 0 of nb201_cost.csv on the three datasets", function()
    local want = {cifar10 = {0.129306, 17.958592}, cifar100 = {0.135156, 17.964352},
                  ["ImageNet16-120"] = {0.136456, 4.497472}}
    for ds, w in pairs(want) do
      local p, f = NB:cost(s, ds)
      assert.is_true(math.abs(p - w[1]) < 1e-9, ds)
      assert.is_true(math.abs(f - w[2]) < 1e-9, ds)
    end
    local p = NB:cost(s)
    assert.equal(select(1, NB:cost(s, "cifar10")), p)
    support.raises("nasflat: cost: unknown nb201 dataset 'svhn' (expected cifar10, cifar100, ImageNet16-120)",
      NB.cost, NB, s, "svhn")
  end)

  it("lists layers whose FLOPs and params sum to the cost", function()
    for _, ds in ipairs(NB:datasets()) do
      local layers = NB:layers(s, ds)
      local p, f = 0, 0
      for _, l in ipairs(layers) do p, f = p + l.params, f + l.flops end
      local cp, cf = NB:cost(s, ds)
      assert.is_true(math.abs(p / 1e6 - cp) < 1e-12)
      assert.is_true(math.abs(f / 1e6 - cf) < 1e-12)
    end
    local layers = NB:layers(s)
    assert.equal("conv", layers[1].kind)
    assert.equal(3, layers[1].cin)
    assert.equal(16, layers[1].cout)
    assert.equal(4 * 16 * 32 * 32, layers[1].out_bytes)
    assert.equal("linear", layers[#layers].kind)
    assert.equal(10, layers[#layers].cout)
    local counts = {}
    for _, l in ipairs(layers) do counts[l.kind] = (counts[l.kind] or 0) + 1 end
    -- 1 stem + 15 cells × 2 conv1x1 + 2 reductions × 3 convs; pools: 15 cell pools + 2 shortcut pools
    assert.same({conv = 37, pool = 17, add = 32, bnrelu = 1, gpool = 1, linear = 1}, counts)
  end)

  it("gives physical features: ln(1+x) sums over the layers an eager framework or a compiler runs", function()
    local dead = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    local names = NB:phys_feature_names()
    assert.equal(20, #names)
    assert.same({"launches", "mb_moved", "mflops_conv"}, {names[1], names[2], names[3]})
    for _, live_only in ipairs{false, true} do
      local f = NB:phys_features({s, dead}, nil, live_only)
      assert.same({2, 20}, f:shape())
      for r, arch in ipairs{s, dead} do
        -- recompute from the per-layer breakdown
        local want = {}
        for j = 1, 20 do want[j] = 0 end
        for _, l in ipairs(NB:layers(arch)) do
          if not live_only or (l.live and l.kind ~= "zero") then
            local mb = (l.in_bytes + l.out_bytes) / 1e6
            local j = 0
            for i, n in ipairs(names) do if n == "mflops_" .. l.kind then j = i end end
            want[1], want[2] = want[1] + 1, want[2] + mb
            want[j] = want[j] + l.flops / 1e6
            want[j + 9] = want[j + 9] + mb
          end
        end
        for j = 1, 20 do assert.near(math.log(1 + want[j]), f:get(r, j), 1e-4 * (1 + math.log(1 + want[j]))) end
      end
    end
    -- the dead branch (cell 2: node 1's conv1x1 feeds only none edges) and the none edges run eagerly only
    local eager, live = NB:phys_features({dead}), NB:phys_features({dead}, nil, true)
    assert.is_true(eager:get(1, 1) > live:get(1, 1))
    assert.is_true(eager:get(1, 3) > live:get(1, 3))
    support.raises("unknown nb201 dataset 'x'", function() NB:phys_features({s}, "x") end)
  end)

  it("gives roofline-time features: launches and sums of max(MFLOPs, balance x MB) over the layers", function()
    local dead = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    local bal = NB.roof_balances()
    assert.same({0.25, 1, 4, 16, 64, 256}, bal)
    assert.same({"launches", "roof_0.25", "roof_1", "roof_4", "roof_16", "roof_64", "roof_256"},
      NB.roof_feature_names())
    for _, sp in ipairs{{NB, {s, dead}}, {FB, {"0-1-2-3-4-5-6-7-8-0-1-2-3-4-5-6-7-8-0-1-2-3", string.rep("8-", 21) .. "8"}}} do
      local sp_, list = sp[1], sp[2]
      for _, live_only in ipairs{false, true} do
        local f = sp_:roof_features(list, nil, live_only)
        assert.same({2, 7}, f:shape())
        for r, arch in ipairs(list) do
          local want = {0, 0, 0, 0, 0, 0, 0}
          for _, l in ipairs(sp_:layers(arch)) do
            if not live_only or (l.live and l.kind ~= "zero") then
              local mb, mflops = (l.in_bytes + l.out_bytes) / 1e6, l.flops / 1e6
              want[1] = want[1] + 1
              for j, b in ipairs(bal) do want[j + 1] = want[j + 1] + math.max(mflops, b * mb) end
            end
          end
          for j = 1, 7 do assert.near(want[j], f:get(r, j), 1e-5 * want[j]) end
        end
      end
    end
    -- memory-bound at high balance: the column grows with the balance; the dead branch runs eagerly only
    local f = NB:roof_features({dead}):totable()[1]
    for j = 2, 6 do assert.is_true(f[j + 1] >= f[j]) end
    assert.is_true(f[1] > NB:roof_features({dead}, nil, true):get(1, 1))
    support.raises("unknown nb201 dataset 'x'", function() NB:roof_features({s}, "x") end)
  end)

  it("gives the roofline variants: weight traffic, and per-layer floors", function()
    local arch = "0-1-2-3-4-5-6-7-8-0-1-2-3-4-5-6-7-8-0-1-2-3"
    local bal, floors = FB.roof_balances(), FB.roof_floors()
    assert.same({0.003, 0.01, 0.03, 0.1, 0.3, 1}, floors)
    local names = FB.roof_feature_names("floors")
    assert.equal(43, #names)
    assert.equal("roof_256", names[7])
    assert.equal("roof_0.25_floor_0.003", names[8])
    assert.equal("roof_256_floor_1", names[43])
    assert.same({"launches", "roofw_0.25", "roofw_1", "roofw_4", "roofw_16", "roofw_64", "roofw_256"},
      FB.roof_feature_names("weights"))
    local w = FB:roof_features({arch}, nil, false, "weights")
    local fl = FB:roof_features({arch}, nil, false, "floors")
    assert.same({1, 7}, w:shape())
    assert.same({1, 43}, fl:shape())
    local want_w, want_f = {}, {}
    for j = 1, 43 do want_w[j], want_f[j] = 0, 0 end
    for _, l in ipairs(FB:layers(arch)) do
      local mf, mb = l.flops / 1e6, (l.in_bytes + l.out_bytes) / 1e6
      local mbw = mb + 4 * l.params / 1e6
      want_w[1], want_f[1] = want_w[1] + 1, want_f[1] + 1
      for j, b in ipairs(bal) do
        local t = math.max(mf, b * mb)
        want_w[1 + j] = want_w[1 + j] + math.max(mf, b * mbw)
        want_f[1 + j] = want_f[1 + j] + t
        for k, f in ipairs(floors) do
          local c = 1 + 6 * k + j
          want_f[c] = want_f[c] + math.max(t, b * f)
        end
      end
    end
    for j = 1, 7 do assert.near(want_w[j], w:get(1, j), 1e-5 * want_w[j]) end
    for j = 1, 43 do assert.near(want_f[j], fl:get(1, j), 1e-5 * want_f[j]) end
    -- the plain variant is the default and the first 7 columns of "floors"
    local plain = FB:roof_features({arch})
    for j = 1, 7 do assert.near(plain:get(1, j), fl:get(1, j), 1e-6 * plain:get(1, j)) end
    support.raises("invalid option 'ceilings'", function() FB:roof_features({arch}, nil, false, "ceilings") end)
  end)

  it("gives the structural features of METHOD §10", function()
    local f = NB:struct_features({s, "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"})
    assert.same({2, 8}, f:shape())
    assert.same({{0, 3, 2, 0, 1, 2, 0, 1}, {2, 1, 1, 1, 1, 1, 0, 1}}, f:totable())
  end)

  it("samples distinct cells, the same for the same seed", function()
    local a = NB:sample(nf.Rng(4), 200)
    assert.same(a, NB:sample(nf.Rng(4), 200))
    assert.not_same(a, NB:sample(nf.Rng(5), 200))
    local seen = {}
    for _, x in ipairs(a) do
      assert.is_nil(seen[x])
      seen[x] = true
      assert.is_table(NB:parse(x))
    end
    assert.equal(15625, #NB:sample(nf.Rng(1), 15625))
    support.raises("nasflat: sample: cannot draw 15626 distinct nb201 architectures from 15625", NB.sample, NB, nf.Rng(1), 15626)
    support.raises("nb201:sample: count must be an integer (got 1.5)", NB.sample, NB, nf.Rng(1), 1.5)
  end)
end)

describe("fbnet", function()
  local s = "7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5"

  it("parses ids and block names and reports malformed strings", function()
    local code = FB:parse(s)
    assert.equal(22, #code)
    assert.equal(7, code[1])
    assert.same(code, FB:parse("k5_e6-skip-k3_e1_g2-skip-k5_e1-skip-skip-skip-k5_e6-k5_e1-k3_e1_g2-k5_e1-k5_e6-" ..
      "k3_e6-k3_e3-k5_e6-k3_e6-k3_e3-k5_e1-k3_e3-k5_e1-k5_e1_g2"))
    assert.equal(s, FB:format(code))
    local _, err = FB:parse("7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-k7_e1")
    assert.equal("fbnet arch string: unknown block 'k7_e1' at column 43 (layer 22; expected 0..8 or a block name)", err)
    _, err = FB:parse("7-8")
    assert.equal("fbnet arch string: expected 22 blocks joined by '-' (got 2)", err)
  end)

  it("builds chain graphs by default and identity graphs on request", function()
    local g = FB:graph(s)
    assert.same({22}, g.ops:shape())
    assert.same(FB:parse(s), ints(g.ops))
    assert.equal(21, g.adj:sum())
    assert.equal(1, g.adj:get(1, 2))
    assert.equal(0, g.adj:get(2, 1))
    local id = FB:graph(s, {adjacency = "identity"})
    assert.equal(22, id.adj:sum())
    assert.equal(1, id.adj:get(5, 5))
    support.raises("fbnet:graph: option 'adjacency' must be 'chain' or 'identity' (got ring)",
      function() FB:graph(s, {adjacency = "ring"}) end)
  end)

  it("computes params and FLOPs of the CIFAR-100 network (data row 0 of zcp/fbnet_zcp.csv)", function()
    local p, f = FB:cost(s)
    assert.is_true(math.abs(p - 1.7905) < 1e-12)
    assert.is_true(math.abs(f - 70.098816) < 1e-9)
    support.raises("nasflat: cost: unknown fbnet dataset 'cifar10' (expected cifar100)", FB.cost, FB, s, "cifar10")
    local ft = FB:struct_features({s})
    local row = ft:totable()[1]
    assert.same({0, 2, 3, 2, 5, 1, 0, 4, 5}, {table.unpack(row, 1, 9)})
    assert.is_true(math.abs(row[10] - math.log(70.098816)) < 1e-5)
    assert.is_true(math.abs(row[11] - math.log(1.7905)) < 1e-5)
  end)

  it("cannot be enumerated; samples distinct uniform codes", function()
    support.raises("nasflat: enumerate: fbnet has 9^22 architectures and cannot be enumerated (use sample)", FB.enumerate, FB)
    support.raises("nasflat: index: only nb201 is enumerable", FB.index, FB, s)
    local a = FB:sample(nf.Rng(2), 500)
    assert.equal(500, #a)
    assert.same(a, FB:sample(nf.Rng(2), 500))
    local seen = {}
    for _, x in ipairs(a) do
      assert.is_nil(seen[x])
      seen[x] = true
    end
  end)

  it("lists layers that sum to the cost, with shuffles for g2 blocks", function()
    local layers = FB:layers(s)
    local p, f, shuffles = 0, 0, 0
    for _, l in ipairs(layers) do
      p, f = p + l.params, f + l.flops
      if l.kind == "shuffle" then shuffles = shuffles + 1 end
    end
    assert.equal(1790500, p)
    assert.equal(70098816, f)
    assert.equal(3, shuffles)   -- two k3_e1_g2, one k5_e1_g2
  end)
end)

describe("space vs the real data", function()
  local DATA = support.data_dir()

  it("nb201 params and FLOPs equal nb201_cost.csv for all 15,625 cells and 3 datasets", function()
    if not DATA then return pending(support.NO_DATA) end
    local rows = read_csv(DATA .. "/nb201_cost.csv")
    assert.equal(15625, #rows)
    local cols = {cifar10 = "cifar10", cifar100 = "cifar100", ["ImageNet16-120"] = "ImageNet16-120"}
    local worst = 0
    for _, r in ipairs(rows) do
      for ds, c in pairs(cols) do
        local p, f = NB:cost(r.arch_string, ds)
        worst = math.max(worst, math.abs(p - tonumber(r["params_MB_" .. c])), math.abs(f - tonumber(r["flops_M_" .. c])))
      end
    end
    assert.is_true(worst < 1e-6, "worst difference " .. worst)
  end)

  it("nb201 op vectors match the parsed strings; disconnected cells have empty graphs", function()
    if not DATA then return pending(support.NO_DATA) end
    local rows = read_csv(DATA .. "/nb201_archs.csv")
    local list = {}
    for i, r in ipairs(rows) do
      list[i] = r.arch_string
      assert.same(NB:parse(r.op_vector), NB:parse(r.arch_string))
    end
    local g = NB:graphs(list)
    local sums = g.adj:reshape(#list, 64)
    local disconnected = 0
    for i, r in ipairs(rows) do
      local empty = sums:rows(i, i):sum() == 0
      assert.equal(r.connected == "0", empty, r.arch_string)
      if empty then disconnected = disconnected + 1 end
    end
    assert.equal(341, disconnected)
  end)

  it("fbnet params and FLOPs equal the zcp file's flops/params columns for all 5,000", function()
    if not DATA then return pending(support.NO_DATA) end
    local rows = read_csv(DATA .. "/zcp/fbnet_zcp.csv")
    assert.equal(5000, #rows)
    local list = {}
    for i, r in ipairs(rows) do list[i] = r.arch_string end
    local P, F = FB:costs(list)
    for i, r in ipairs(rows) do
      local p, f = FB:cost(r.arch_string)
      assert.equal(tonumber(r.params), math.floor(p * 1e6 + 0.5))
      assert.equal(tonumber(r.flops), math.floor(f * 1e6 + 0.5))
      assert.is_true(math.abs(P:get(i) - p) <= 1e-6 * p)
      assert.is_true(math.abs(F:get(i) - f) <= 1e-6 * f)
    end
  end)
end)

describe("space parsers and Lua strings", function()
  it("refuse a NUL byte inside an arch string instead of parsing the part before it", function()
    local nb, fb = require("nasflat.space").get("nb201"), require("nasflat.space").get("fbnet")
    local code, err = nb:parse("4-2-1-2-1-1\0junk")
    assert.is_nil(code)
    assert.equal("nb201 arch string: NUL byte at column 12 (an arch string cannot contain NUL bytes)", err)
    code, err = fb:parse(string.rep("0-", 21) .. "0\0")
    assert.is_nil(code)
    assert.matches("^fbnet arch string: NUL byte at column 44", err)
    local ok, msg = pcall(nb.graphs, nb, {"4-2-1-2-1-1\0junk"})
    assert.is_false(ok)
    assert.matches("graphs: entry 1: nb201 arch string: NUL byte at column 12", msg)
  end)
end)

describe("space:codes and space:canonical", function()
  it("give every list entry's choice ids and canonical string in one call; a bad entry raises by name", function()
    local nb = require("nasflat.space").get("nb201")
    local list = {nb:at(1), "4-2-1-2-1-1", nb:at(15625)}
    local C = nb:codes(list):totable()
    for i, a in ipairs(list) do
      local code = nb:parse(a)
      for j = 1, 6 do assert.equal(code[j], C[i][j]) end
    end
    assert.same({nb:at(1), nb:format(nb:parse("4-2-1-2-1-1")), nb:at(15625)}, nb:canonical(list))
    support.raises("canonical: entry 2: nb201 arch string", nb.canonical, nb, {nb:at(1), "x"})
  end)
end)
