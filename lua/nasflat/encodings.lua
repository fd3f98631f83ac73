--- nasflat.encodings — per-architecture encodings for the samplers and the predictor's supplementary
-- input (METHOD §5), selected by name; "a+b" concatenates columns in the order named.
--
--   local enc = require "nasflat.encodings"
--   local X, info = enc.get{space = "nb201", name = "zcp+arch2vec", arch_strings = list}
--   -- X: Tensor(#list × D), row i for list[i]; info.columns names the D columns
--
-- Base encodings (enc.names()). All are label-free: nothing here reads latency or accuracy.
-- Every column is finite. Scales, computed over the space's POPULATION (nb201: all 15,625 cells, so a
-- row does not depend on which other architectures are listed; fbnet: the listed architectures, or
-- for zcp the 5,000 rows of the proxy file):
--   zcp       13 zero-cost proxies (epe_nas, fisher, flops, grad_norm, grasp, jacov, l2_norm, nwot,
--             params, plain, snip, synflow, zen), METHOD §5: log1p first for fisher, flops, grad_norm,
--             params, snip, synflow; then min-max to [0, 1], except grasp: z-score (mean 0, sd 1).
--             NaN never appears: see "Missing proxies" below. Needs the data directory. Mind grasp's
--             tails: unit variance, but it spans -3.2..122 on nb201 and -22..19 on fbnet, so it can
--             dominate Euclidean distances (k-means) over the [0, 1] columns.
--   arch2vec  32-dim graph embedding from the variational graph autoencoder of csrc/nf_vae.h, trained
--             in C on the population's graphs alone (one BLAS thread, so the numbers depend on the
--             settings and the seed only); min-max to [0, 1] per column. Trained once per (space,
--             settings, seed[, fbnet list]) and cached (see Cache).
--   path      nb201: the path encoding (BANANAS): for each op sequence over {skip, conv1x1, conv3x3,
--             pool} of length 1-3, how many input->output paths of the cell carry it (84 columns; a
--             `none` edge breaks a path), min-max to [0, 1]. A graph encoding of a different nature:
--             fixed, combinatorial, no training. fbnet: a chain has exactly one input->output path,
--             the whole architecture; its path encoding is written position by position, i.e. the
--             one-hot of the block at each of the 22 layers (198 columns, 0/1), the same as onehot.
--   onehot    the choice at each position, one-hot: nb201 6 edges × 5 ops (30 columns), fbnet
--             22 layers × 9 blocks (198 columns); values 0/1.
--   params    one column: ln(parameter count) (nb201 CIFAR-10, fbnet CIFAR-100 macro network, from
--             nasflat.space), min-max to [0, 1].
--   struct    the structural features of METHOD §10 (space:struct_features), min-max to [0, 1] per column.
--   phys      physical "roofline" features from the per-layer breakdown (space:phys_features): ln(1+x) of
--             kernel launches, bytes moved, FLOPs and bytes per layer kind, over every layer an eager
--             framework runs (dead branches and nb201 zero ops too); min-max to [0, 1] per column.
--   phys_live the same over the layers a graph compiler keeps (live, no zero ops).
--   roof      roofline-time features (space:roof_features: kernel launches and, for six machine balances,
--             the sum over every executed layer of max(MFLOPs, balance × MB)): ln(1+x), min-max to [0, 1].
--   roofw     the same with each layer's fp32 weights counted in its MB moved (space:roof_features
--             variant "weights"; 7 columns).
--   floor     roof, then for each per-layer floor f of 0.003, 0.01, 0.03, 0.1, 0.3, 1 MB the sums of
--             max(MFLOPs, balance × MB, balance × f): every kernel costs at least the time to move f MB
--             (variant "floors"; 43 columns).
-- A constant column (e.g. a one-hot cell no listed architecture uses) scales to 0.
--
-- Missing proxies (nb201). zcp/nb201_zcp_partial.csv holds exactly the 9,445 canonical cells: those in
-- which every non-`none` edge lies on an input->output path. Each of the other 6,180 cells has dead
-- edges (fed by nothing, or feeding nothing); replacing them with `none` gives its canonical cell, which
-- computes the same function. Rule:
--   * flops, params: computed exactly for the cell itself (nasflat.space costs; the file's values equal
--     them to the last digit on the 9,445);
--   * l2_norm (it sums weight norms, dead weights included): the canonical cell's value plus the
--     per-conv contribution, fitted by least squares on the file (l2 ≈ a + b1·#conv1x1 + b3·#conv3x3
--     over all 6 edges; median relative error of the fit 0.1%);
--   * every other proxy: the canonical cell's value (dead weights get no gradient and do not reach
--     the output, so gradient and output based proxies see the same network).
-- Measured with enc.zcp_check{} against NASLib's independent CIFAR-10 proxies for 491 cells (188 of
-- them with dead edges), and compared there with the obvious alternative (copy the nearest cell).
-- NASLib's failure value -1e8 (the all-`none` cell's epe_nas, jacov, nwot, zen; after the rule, the
-- 341 cells without any input->output path) is replaced by the column's lowest real value before
-- scaling: "failed" ranks worst, as NASLib intends, without squashing every other value to 1.
-- Counts are returned in info.
--
-- Cache (arch2vec): <cache_dir>/arch2vec-<space>-<settings hash>.nfenc, a binary file (csrc/nf_enccache.h:
-- magic, version, space, settings hash, rows, dims, CRC-32s), written atomically. The hash covers the
-- model version, every autoencoder setting, the seed and (fbnet) the list of architectures, so changed
-- settings never read a stale file; a file whose header or CRC does not match is rebuilt and
-- overwritten. cache_dir = false disables the cache. A cache that cannot be written is not an error
-- (the embedding is returned; info.parts[k].cache_error says why).
--
-- Errors: unknown names, bad options and malformed arch strings raise; failures of the world (no data
-- directory, proxy file missing or malformed, an fbnet architecture absent from the proxy file)
-- return nil, message.
local core = require "nasflat.core"
local util = require "nasflat.util"

local V = core.vae
local M = {}

M.NAMES = {"zcp", "arch2vec", "path", "onehot", "params", "struct", "phys", "phys_live", "roof", "roofw", "floor"}
local KNOWN = {}
for _, n in ipairs(M.NAMES) do KNOWN[n] = true end

--- The known base encoding names (combine with '+').
function M.names()
  local out = {}
  for i, n in ipairs(M.NAMES) do out[i] = n end
  return out
end

M.ZCP_COLUMNS = {"epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params", "plain",
  "snip", "synflow", "zen"}
local ZCP_LOG = {fisher = true, flops = true, grad_norm = true, params = true, snip = true, synflow = true}
local ZCP_ZSCORE = {grasp = true}
--- NASLib writes -1e8 when a proxy fails; values at or below this are failures.
M.ZCP_FAILED = -1e7

--- Autoencoder settings (the arch2vec option of get overrides any of them).
M.ARCH2VEC_DEFAULTS = {hidden = 64, layers = 3, latent = 32, positions = true, skip = true, batch = 32,
  lr = 1e-3, beta = 0.005, epochs = 10}
local ARCH2VEC_VERSION = 1   -- bump whenever the model, its training or the embedding changes
local SPACE_ID = {nb201 = 0, fbnet = 1}

local function space_of(name, fname)
  if name ~= "nb201" and name ~= "fbnet" then
    error(string.format("%s: option 'space' must be \"nb201\" or \"fbnet\" (got %s)", fname, tostring(name)), 3)
  end
  return require("nasflat.space").get(name)
end

local function minmax_modes(d)
  local m = {}
  for j = 1, d do m[j] = "minmax" end
  return m
end

--------------------------------------------------------------------------------------------- nb201 cells
-- Edges in arch-string order: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3 (cell nodes 0..3).
local EDGES = {{0, 1}, {0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 3}}

--- The canonical cell of an nb201 code (a table of 6 op ids, 0 = none): every edge that is not on an
-- input->output path through non-none edges becomes none. Exposed for the spec.
function M.nb201_canonical(code)
  local fwd, bwd = {[0] = true}, {[3] = true}
  for k, e in ipairs(EDGES) do
    if code[k] ~= 0 and fwd[e[1]] then fwd[e[2]] = true end
  end
  for k = 6, 1, -1 do
    local e = EDGES[k]
    if code[k] ~= 0 and bwd[e[2]] then bwd[e[1]] = true end
  end
  local out = {}
  for k, e in ipairs(EDGES) do out[k] = (code[k] ~= 0 and fwd[e[1]] and bwd[e[2]]) and code[k] or 0 end
  return out
end

local function count_op(code, op)
  local n = 0
  for k = 1, #code do if code[k] == op then n = n + 1 end end
  return n
end

-- Solve the 3×3 system A x = b (Gaussian elimination, partial pivoting).
local function solve3(A, b)
  local m = {}
  for i = 1, 3 do m[i] = {A[i][1], A[i][2], A[i][3], b[i]} end
  for c = 1, 3 do
    local p = c
    for r = c + 1, 3 do if math.abs(m[r][c]) > math.abs(m[p][c]) then p = r end end
    m[c], m[p] = m[p], m[c]
    if m[c][c] == 0 then return nil end
    for r = 1, 3 do
      if r ~= c then
        local f = m[r][c] / m[c][c]
        for k = c, 4 do m[r][k] = m[r][k] - f * m[c][k] end
      end
    end
  end
  return {m[1][4] / m[1][1], m[2][4] / m[2][2], m[3][4] / m[3][3]}
end

------------------------------------------------------------------------------------------------- zcp
-- The proxy file of a space: {path, map = canonical arch string -> row, raw = {row -> {13 doubles}},
-- archs = {row -> canonical string}, codes}, or nil, msg.
local function load_zcp_file(space, data_dir)
  local data = require "nasflat.data"
  local ds, msg = data.open{space = space.name, dir = data_dir}
  if not ds then return nil, msg end
  local tab
  tab, msg = ds:zcp()
  if not tab then ds:free() return nil, msg end
  local path = tab:path()
  local out = {path = path, map = {}, raw = {}, archs = {}, codes = {}}
  for _, name in ipairs(M.ZCP_COLUMNS) do
    local ty, terr = tab:column_type(name)
    if ty ~= "number" then
      ds:free()
      local what = ty and "is not numeric" or ("missing (" .. tostring(terr) .. ")")
      return nil, string.format("%s: column '%s' %s", path, name, what)
    end
  end
  local strings, serr = tab:column("arch_string")
  if type(strings) ~= "table" then
    ds:free()
    return nil, string.format("%s: no arch_string column (%s)", path, tostring(serr))
  end
  for r = 1, tab:n_rows() do
    local code, perr = space:parse(strings[r])
    if not code then
      ds:free()
      return nil, string.format("%s: row %d: %s", path, r + 1, perr)
    end
    local canon = space:format(code)
    out.map[canon] = r
    out.archs[r] = canon
    out.codes[r] = code
    local v = {}
    for j, name in ipairs(M.ZCP_COLUMNS) do
      local x = tab:get(r, name)
      if x == nil then
        ds:free()
        return nil, string.format("%s: row %d: empty '%s' cell (a missing proxy; nasflat never fills it with 0)", path,
          r + 1, name)
      end
      v[j] = x
    end
    out.raw[r] = v
  end
  ds:free()
  return out
end

local ZCP_INDEX = {}
for j, n in ipairs(M.ZCP_COLUMNS) do ZCP_INDEX[n] = j end

-- l2_norm ≈ a + b1·#conv1x1 + b3·#conv3x3 over the file's cells (least squares).
local function fit_l2(file)
  local A = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}}
  local b = {0, 0, 0}
  local l2 = ZCP_INDEX.l2_norm
  for r, code in ipairs(file.codes) do
    local x = {1, count_op(code, 2), count_op(code, 3)}
    local y = file.raw[r][l2]
    for i = 1, 3 do
      b[i] = b[i] + x[i] * y
      for k = 1, 3 do A[i][k] = A[i][k] + x[i] * x[k] end
    end
  end
  return solve3(A, b)
end

-- Raw proxies (doubles, before the failure replacement and scaling) for a list of canonical arch
-- strings. nb201 cells absent from the file are filled by the documented rule. Returns rows
-- ({list index -> {13 values}}), stats {imputed, l2_coef} or nil, msg.
local function zcp_rows(space, file, list)
  local rows, imputed = {}, 0
  local coef
  for i, arch in ipairs(list) do
    local r = file.map[arch]
    if r then
      local v = {}
      for j = 1, #M.ZCP_COLUMNS do v[j] = file.raw[r][j] end
      rows[i] = v
    elseif space.name == "nb201" then
      local code = space:parse(arch)
      local canon = M.nb201_canonical(code)
      local cr = file.map[space:format(canon)]
      if not cr then
        return nil, string.format("%s: no proxies for cell '%s' nor for its canonical cell '%s'", file.path, arch,
          space:format(canon))
      end
      coef = coef or fit_l2(file)
      if not coef then return nil, file.path .. ": cannot fit the l2_norm model (singular)" end
      local v = {}
      for j = 1, #M.ZCP_COLUMNS do v[j] = file.raw[cr][j] end
      local params, flops = space:cost(arch)
      v[ZCP_INDEX.params], v[ZCP_INDEX.flops] = params, flops
      v[ZCP_INDEX.l2_norm] = v[ZCP_INDEX.l2_norm] + coef[2] * (count_op(code, 2) - count_op(canon, 2))
        + coef[3] * (count_op(code, 3) - count_op(canon, 3))
      rows[i] = v
      imputed = imputed + 1
    else
      return nil, string.format("%s: architecture '%s' (entry %d) has no zero-cost proxies", file.path, arch, i)
    end
  end
  return rows, {imputed = imputed, l2_coef = coef}
end

-- Failure replacement, log1p and scaling over a population of raw rows: Tensor(#rows × 13), stats.
local function zcp_matrix(rows, path)
  local failed = {}
  local ncol = #M.ZCP_COLUMNS
  for j = 1, ncol do
    local lo = math.huge
    for _, v in ipairs(rows) do
      if v[j] > M.ZCP_FAILED and v[j] < lo then lo = v[j] end
    end
    if lo == math.huge then
      return nil, string.format("%s: proxy '%s' failed (<= %g) for every architecture", path, M.ZCP_COLUMNS[j], M.ZCP_FAILED)
    end
    local n = 0
    for _, v in ipairs(rows) do
      if v[j] <= M.ZCP_FAILED then v[j] = lo; n = n + 1 end
    end
    if n > 0 then failed[M.ZCP_COLUMNS[j]] = n end
  end
  local out, modes = {}, {}
  for j, name in ipairs(M.ZCP_COLUMNS) do modes[j] = ZCP_ZSCORE[name] and "zscore" or "minmax" end
  for i, v in ipairs(rows) do
    local o = {}
    for j, name in ipairs(M.ZCP_COLUMNS) do
      local x = v[j]
      if ZCP_LOG[name] then
        if x ~= x or x <= -1 then
          return nil, string.format("%s: proxy '%s' = %g cannot take log1p (row %d of the population)", path, name, x, i)
        end
        x = math.log(1 + x)   -- math.log(1 + x) is exact enough here: the smallest proxies are ~1e-5
      end
      if x ~= x or x == math.huge or x == -math.huge then
        return nil, string.format("%s: proxy '%s' is not finite (row %d of the population)", path, name, i)
      end
      o[j] = x
    end
    out[i] = o
  end
  local X = core.Tensor.from(out)
  V.scale(X, modes)
  return X, failed
end

--- Raw proxies of a list of arch strings, missing nb201 cells filled by the rule above (before the
-- failure replacement and scaling). opts: space, arch_strings, data_dir. Returns rows (list of
-- {13 numbers}, columns M.ZCP_COLUMNS), stats {imputed, l2_coef}, or nil, msg.
function M.zcp_raw(opts)
  opts = util.options("encodings.zcp_raw", opts, {space = util.REQUIRED, arch_strings = util.REQUIRED,
    data_dir = util.NIL})
  local space = space_of(opts.space, "encodings.zcp_raw")
  local list = {}
  for i, a in ipairs(opts.arch_strings) do list[i] = space:format(a) end
  local file, msg = load_zcp_file(space, opts.data_dir)
  if not file then return nil, msg end
  return zcp_rows(space, file, list)
end

local function build_zcp(ctx)
  local space = ctx.space
  local file, msg = load_zcp_file(space, ctx.data_dir)
  if not file then return nil, msg end
  local pop, pop_rows
  if space.name == "nb201" then
    pop, pop_rows = ctx.pop, ctx.pop_rows
  else
    pop, pop_rows = file.archs, {}
    for i, arch in ipairs(ctx.list) do
      local r = file.map[arch]
      if not r then
        return nil, string.format("%s: architecture '%s' (entry %d) has no zero-cost proxies", file.path, arch, i)
      end
      pop_rows[i] = r
    end
  end
  local rows, stats = zcp_rows(space, file, pop)
  if not rows then return nil, stats end
  local X, failed = zcp_matrix(rows, file.path)
  if not X then return nil, failed end
  ctx.part.imputed, ctx.part.failed, ctx.part.file = stats.imputed, failed, file.path
  local cols = {}
  for j, n in ipairs(M.ZCP_COLUMNS) do cols[j] = "zcp:" .. n end
  return X:index(pop_rows), cols
end

--- Measure the nb201 missing-proxy rule against NASLib's independent CIFAR-10 proxies
-- (zcp/nb201_zcp_naslib_subset491.csv, computed in another run: other data batch and seed).
-- For each proxy both files have: Spearman ρ between NASLib's values and ours, over the cells the
-- file holds (rho_file: the agreement two runs can reach) and over the cells the rule fills
-- (rho_imputed); rho_nearest is what the obvious alternative — copy the file cell nearest in
-- Hamming distance over the 6 edges — would get on those cells. medrel_*: median relative errors.
-- Returns {proxies = {{name, rho_file, rho_imputed, rho_nearest, medrel_file, medrel_imputed}},
-- n_file, n_imputed, l2_coef} or nil, msg.
function M.zcp_check(opts)
  opts = util.options("encodings.zcp_check", opts, {data_dir = util.NIL})
  local data = require "nasflat.data"
  local metrics = require "nasflat.metrics"
  local space = require("nasflat.space").get("nb201")
  local dir, msg = data.dir{dir = opts.data_dir}
  if not dir then return nil, msg end
  local sub
  sub, msg = data.load_table(dir .. "/zcp/nb201_zcp_naslib_subset491.csv",
    {strings = {"arch_string", "dataset", "naslib_key"}, duplicates = true})
  if not sub then return nil, msg end
  local file
  file, msg = load_zcp_file(space, opts.data_dir)
  if not file then sub:free() return nil, msg end
  local archs, dsets = sub:column("arch_string"), sub:column("dataset")
  local list, srow, in_file = {}, {}, {}
  for r = 1, sub:n_rows() do
    if dsets[r] == "cifar10" then
      local a = space:format(archs[r])
      list[#list + 1] = a
      srow[#srow + 1] = r
      in_file[#in_file + 1] = file.map[a] ~= nil
    end
  end
  local ours, stats = zcp_rows(space, file, list)
  if not ours then sub:free() return nil, stats end
  -- the alternative rule, for comparison: the file cell nearest in Hamming distance over the 6 edges
  local nearest = {}
  for k, a in ipairs(list) do
    if not in_file[k] then
      local code, best, bd = space:parse(a), nil, math.huge
      for r, c in ipairs(file.codes) do
        local d = 0
        for e = 1, 6 do if c[e] ~= code[e] then d = d + 1 end end
        if d < bd then best, bd = r, d end
      end
      nearest[k] = file.raw[best]
    end
  end
  local out = {proxies = {}, n_file = 0, n_imputed = 0, l2_coef = stats.l2_coef}
  for _, f in ipairs(in_file) do
    if f then out.n_file = out.n_file + 1 else out.n_imputed = out.n_imputed + 1 end
  end
  local header = {}
  for _, h in ipairs(sub:header()) do header[h] = true end
  for j, name in ipairs(M.ZCP_COLUMNS) do
    if header[name] then
      local a1, b1, a2, b2, b3 = {}, {}, {}, {}, {}
      local rel1, rel2 = {}, {}
      for k, r in ipairs(srow) do
        local truth, mine = sub:get(r, name), ours[k][j]
        if in_file[k] then a1[#a1 + 1], b1[#b1 + 1] = truth, mine
        else a2[#a2 + 1], b2[#b2 + 1], b3[#b3 + 1] = truth, mine, nearest[k][j] end
        local rel = truth ~= 0 and math.abs(mine - truth) / math.abs(truth) or (mine == 0 and 0 or math.huge)
        if in_file[k] then rel1[#rel1 + 1] = rel else rel2[#rel2 + 1] = rel end
      end
      table.sort(rel1)
      table.sort(rel2)
      out.proxies[#out.proxies + 1] = {name = name, rho_file = metrics.spearman(a1, b1),
        rho_imputed = metrics.spearman(a2, b2), rho_nearest = metrics.spearman(a2, b3), medrel_file = rel1[(#rel1 + 1) // 2],
        medrel_imputed = rel2[(#rel2 + 1) // 2]}
    end
  end
  sub:free()
  return out
end

-------------------------------------------------------------------------------------------- arch2vec
local function arch2vec_settings(opts)
  local s = util.options("encodings.get: option 'arch2vec'", opts, M.ARCH2VEC_DEFAULTS)
  local function int(k, lo, hi)
    if math.type(s[k]) ~= "integer" or s[k] < lo or s[k] > hi then
      error(string.format("encodings.get: arch2vec.%s must be an integer in %d..%d (got %s)", k, lo, hi,
        tostring(s[k])), 4)
    end
  end
  int("hidden", 1, 4096); int("layers", 1, 16); int("latent", 1, 1024); int("batch", 1, 65536); int("epochs", 1, 100000)
  for _, k in ipairs{"lr", "beta"} do
    if type(s[k]) ~= "number" or s[k] ~= s[k] or s[k] < 0 or (k == "lr" and s[k] <= 0) then
      error(string.format("encodings.get: arch2vec.%s must be a %s number (got %s)", k,
        k == "lr" and "positive" or "non-negative", tostring(s[k])), 4)
    end
  end
  for _, k in ipairs{"positions", "skip"} do
    if type(s[k]) ~= "boolean" then
      error(string.format("encodings.get: arch2vec.%s must be a boolean (got %s)", k, tostring(s[k])), 4)
    end
  end
  return s
end

--- The cache key of an arch2vec embedding: the settings string, its CRC-32 (hash) and the file name.
function M.arch2vec_key(space_name, settings, seed, population_crc)
  local s = settings
  local key = string.format("arch2vec v%d space=%s population=%s hidden=%d layers=%d latent=%d positions=%s "
    .. "skip=%s batch=%d lr=%.17g beta=%.17g epochs=%d seed=%d", ARCH2VEC_VERSION, space_name, population_crc,
    s.hidden, s.layers, s.latent, tostring(s.positions), tostring(s.skip), s.batch, s.lr, s.beta, s.epochs, seed)
  local hex = core.crc32(key)
  return key, tonumber(hex, 16), string.format("arch2vec-%s-%s.nfenc", space_name, hex)
end

-- Run fn(...) with one BLAS thread, then restore the setting (also on error). OpenBLAS's results
-- depend on its thread count; the autoencoder's products are small, so one thread costs little and
-- makes the embedding a function of the settings and the seed alone.
local function one_thread(fn, ...)
  local before = core.get_threads()
  if before == 1 then return fn(...) end
  core.set_threads(1)
  local res = table.pack(pcall(fn, ...))
  core.set_threads(before)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- Train the autoencoder on graphs (a space:graphs table) and return the Vae (for tests and studies).
-- opts: settings (table as M.ARCH2VEC_DEFAULTS), seed, rows (1-based training rows, default all),
-- progress (function(fmt, ...) or nil), label (for progress lines). Trains with one BLAS thread.
function M.train_vae(space, graphs, opts)
  local s = opts.settings
  local vae = V.new{nodes = space:nodes(), vocab = #space:vocab(), positions = s.positions, skip = s.skip,
    hidden = s.hidden, layers = s.layers, latent = s.latent, batch = s.batch, lr = s.lr, beta = s.beta,
    seed = opts.seed}
  local report = opts.progress or function() end
  one_thread(vae.train, vae, {ops = graphs.ops, adj = graphs.adj, rows = opts.rows, epochs = s.epochs,
    on_epoch = function(e, loss) report("%s: epoch %d/%d, loss %.4f", opts.label or "arch2vec", e, s.epochs, loss) end})
  return vae
end

local function build_arch2vec(ctx)
  local s = ctx.settings
  local space = ctx.space
  local pop_crc = space.name == "nb201" and "all" or
    string.format("%s:%d", core.crc32(table.concat(ctx.pop, "\n")), #ctx.pop)
  local key, hash, file = M.arch2vec_key(space.name, s, ctx.seed, pop_crc)
  local part = ctx.part
  part.settings = key
  local X
  local path = ctx.cache_dir and (ctx.cache_dir .. "/" .. file) or nil
  part.cache_path = path
  if path and not ctx.rebuild then
    local why
    X, why = V.cache_read(path, {space = SPACE_ID[space.name], hash = hash, rows = #ctx.pop, dims = s.latent})
    part.cache_miss = X == nil and why or nil
  end
  part.cached = X ~= nil
  if not X then
    local t0 = util.now()
    local graphs = space:graphs(ctx.pop)
    local vae = M.train_vae(space, graphs, {settings = s, seed = ctx.seed, progress = ctx.report,
      label = "arch2vec " .. space.name})
    X = one_thread(vae.embed, vae, graphs.ops, graphs.adj)
    vae:free()
    part.train_seconds = util.now() - t0
    if path then
      local ok, err = V.mkdirs(ctx.cache_dir)
      if ok then ok, err = V.cache_write(path, {space = SPACE_ID[space.name], hash = hash}, X) end
      if not ok then part.cache_error = err end
    end
  end
  V.scale(X, minmax_modes(s.latent))
  local cols = {}
  for j = 1, s.latent do cols[j] = "arch2vec:" .. j end
  return X:index(ctx.pop_rows), cols
end

---------------------------------------------------------------------------------- cheap encodings
-- nb201 raw graphs: node k+1 (k = 1..6) holds edge k's op as op id + 2.
local function onehot_of(space, list)
  local raw = space:graphs(list, {pruned = false})
  local cols = {}
  if space.name == "nb201" then
    local ops = space:choices()
    for e = 1, 6 do
      for _, o in ipairs(ops) do cols[#cols + 1] = string.format("onehot:e%d=%s", e, o) end
    end
    return V.onehot(raw.ops, 1, 6, 2, 5), cols
  end
  for l = 1, 22 do
    for _, b in ipairs(space:choices()) do cols[#cols + 1] = string.format("onehot:l%d=%s", l, b) end
  end
  return V.onehot(raw.ops, 0, 22, 0, 9), cols
end

local function build_onehot(ctx)
  return onehot_of(ctx.space, ctx.list)
end

local function build_path(ctx)
  local space = ctx.space
  if space.name == "fbnet" then
    local X, cols = onehot_of(space, ctx.list)
    for j, c in ipairs(cols) do cols[j] = "path:" .. c:sub(8) end
    return X, cols
  end
  local edges = {}
  for i, arch in ipairs(ctx.pop) do
    local code = space:parse(arch)
    edges[i] = {code[1], code[2], code[3], code[4], code[5], code[6]}
  end
  local X = V.nb201_paths(core.Tensor.from(edges))
  V.scale(X, minmax_modes(84))
  local names, cols = {"skip", "conv1x1", "conv3x3", "pool"}, {}
  for len = 1, 3 do
    for c = 0, 4 ^ len - 1 do
      local seq, x = {}, c
      for p = len, 1, -1 do seq[p] = names[x % 4 + 1]; x = x // 4 end
      cols[#cols + 1] = "path:" .. table.concat(seq, ">")
    end
  end
  return X:index(ctx.pop_rows), cols
end

local function build_params(ctx)
  local params = ctx.space:costs(ctx.pop)
  local n = params:size(1)
  local X = core.Tensor.new(n, 1)
  for i = 1, n do
    local p = params:get(i)
    if p ~= p or p <= 0 then error(string.format("encodings.get: params of '%s' is %g", ctx.pop[i], p), 3) end
    X:set(i, 1, math.log(p))
  end
  V.scale(X, {"minmax"})
  return X:index(ctx.pop_rows), {"params:log_params"}
end

local function build_struct(ctx)
  local X = ctx.space:struct_features(ctx.pop)
  local names = ctx.space:feature_names()
  V.scale(X, minmax_modes(#names))
  local cols = {}
  for j, n in ipairs(names) do cols[j] = "struct:" .. n end
  return X:index(ctx.pop_rows), cols
end

local function phys_builder(live_only, prefix)
  return function(ctx)
    local X = ctx.space:phys_features(ctx.pop, nil, live_only)
    local names = ctx.space:phys_feature_names()
    V.scale(X, minmax_modes(#names))
    local cols = {}
    for j, n in ipairs(names) do cols[j] = prefix .. n end
    return X:index(ctx.pop_rows), cols
  end
end
local build_phys, build_phys_live = phys_builder(false, "phys:"), phys_builder(true, "phys_live:")

-- roof, roofw, floor: log of the roofline-time sums (they span orders of magnitude), then min-max
local function roof_builder(variant, prefix)
  return function(ctx)
    local X = ctx.space:roof_features(ctx.pop, nil, false, variant):affine(1, 1):log()
    local names = ctx.space.roof_feature_names(variant)
    V.scale(X, minmax_modes(#names))
    local cols = {}
    for j, n in ipairs(names) do cols[j] = prefix .. n end
    return X:index(ctx.pop_rows), cols
  end
end

local BUILD = {zcp = build_zcp, arch2vec = build_arch2vec, path = build_path, onehot = build_onehot,
  params = build_params, struct = build_struct, phys = build_phys,
  phys_live = build_phys_live, roof = roof_builder(nil, "roof:"), roofw = roof_builder("weights", "roofw:"),
  floor = roof_builder("floors", "floor:")}

------------------------------------------------------------------------------------------------ API
local function parse_name(name)
  if type(name) ~= "string" then
    error("encodings.get: option 'name' must be a string such as \"zcp+arch2vec\" (got " .. type(name) .. ")", 3)
  end
  local parts, seen = {}, {}
  for piece in (name .. "+"):gmatch("([^+]*)%+") do
    local p = piece:match("^%s*(.-)%s*$")
    if p == "" then error(string.format("encodings.get: empty encoding name in '%s'", name), 3) end
    if not KNOWN[p] then
      error(string.format("encodings.get: unknown encoding '%s' in '%s' (known: %s; combine with '+')", p, name,
        table.concat(M.NAMES, ", ")), 3)
    end
    if seen[p] then error(string.format("encodings.get: encoding '%s' appears twice in '%s'", p, name), 3) end
    seen[p] = true
    parts[#parts + 1] = p
  end
  return parts
end

M.DEFAULTS = {
  space = util.REQUIRED,          -- "nb201" | "fbnet"
  name = util.REQUIRED,           -- a base name or names joined by '+'
  arch_strings = util.REQUIRED,   -- the architectures, one row each (any order; e.g. the latency data's rows)
  data_dir = util.NIL,            -- data directory for zcp (default: nasflat.data.dir())
  cache_dir = ".nasflat-cache",   -- arch2vec cache (created); false: no cache
  seed = 1,                       -- arch2vec seed
  rebuild = false,                -- retrain arch2vec even if cached (and overwrite the cache)
  arch2vec = util.NIL,            -- overrides of M.ARCH2VEC_DEFAULTS
  progress = util.NIL,            -- function(fmt, ...), or false; default: stderr when it is a terminal
}

--- The encoding `name` of every architecture of `arch_strings`: Tensor(#arch_strings × D), info; or nil, msg
-- for failures of the world. info = {columns = {D names}, parts = {{name, dims, seconds, ...}}, seconds}:
-- zcp parts add imputed (cells filled by the rule), failed ({proxy = count}), file; arch2vec parts add
-- cached, cache_path, cache_miss (why the cache was not used), cache_error, train_seconds, settings.
function M.get(opts)
  opts = util.options("encodings.get", opts, M.DEFAULTS)
  local space = space_of(opts.space, "encodings.get")
  local names = parse_name(opts.name)
  local list = opts.arch_strings
  if type(list) ~= "table" or #list == 0 then
    error("encodings.get: option 'arch_strings' must be a non-empty list of arch strings", 2)
  end
  if math.type(opts.seed) ~= "integer" then
    error("encodings.get: option 'seed' must be an integer (got " .. tostring(opts.seed) .. ")", 2)
  end
  if type(opts.rebuild) ~= "boolean" then error("encodings.get: option 'rebuild' must be a boolean", 2) end
  if opts.cache_dir ~= false and type(opts.cache_dir) ~= "string" then
    error("encodings.get: option 'cache_dir' must be a directory name or false", 2)
  end
  if opts.data_dir ~= nil and type(opts.data_dir) ~= "string" then
    error("encodings.get: option 'data_dir' must be a string", 2)
  end
  local canon = {}
  for i, a in ipairs(list) do
    if type(a) ~= "string" then
      error(string.format("encodings.get: arch_strings entry %d is a %s, not a string", i, type(a)), 2)
    end
    local code, msg = space:parse(a)
    if not code then error(string.format("encodings.get: arch_strings entry %d: %s", i, msg), 2) end
    canon[i] = space:format(code)
  end
  local report, finish
  if type(opts.progress) == "function" then report, finish = opts.progress, function() end
  elseif opts.progress == nil or opts.progress == false then
    report, finish = util.progress{enabled = opts.progress}   -- nil: only on a terminal
  else
    error("encodings.get: option 'progress' must be a function or false", 2)
  end
  local ctx = {space = space, list = canon, data_dir = opts.data_dir, seed = opts.seed, rebuild = opts.rebuild,
    cache_dir = opts.cache_dir or nil, report = report}
  if space.name == "nb201" then
    ctx.pop, ctx.pop_rows = space:enumerate(), {}
    for i, a in ipairs(canon) do ctx.pop_rows[i] = space:index(a) end
  else
    ctx.pop, ctx.pop_rows = canon, {}
    for i = 1, #canon do ctx.pop_rows[i] = i end
  end
  if opts.arch2vec ~= nil and type(opts.arch2vec) ~= "table" then
    error("encodings.get: option 'arch2vec' must be a table of autoencoder settings", 2)
  end
  ctx.settings = arch2vec_settings(opts.arch2vec)
  local t_all = util.now()
  local tensors, info = {}, {columns = {}, parts = {}}
  for _, n in ipairs(names) do
    local t0 = util.now()
    ctx.part = {name = n}
    local X, cols = BUILD[n](ctx)
    if not X then finish() return nil, cols end
    if X:size(1) ~= #list or X:size(2) ~= #cols then
      error(string.format("encodings.get: encoding '%s' built %d × %d for %d architectures and %d column names",
        n, X:size(1), X:size(2), #list, #cols))
    end
    ctx.part.dims, ctx.part.seconds = #cols, util.now() - t0
    info.parts[#info.parts + 1] = ctx.part
    for _, c in ipairs(cols) do info.columns[#info.columns + 1] = c end
    tensors[#tensors + 1] = X
  end
  finish()
  info.seconds = util.now() - t_all
  local X = #tensors == 1 and tensors[1] or core.hcat(tensors)
  return X, info
end

--- Concatenate encodings column-wise: concat{Tensor(n × a), Tensor(n × b), ...} -> Tensor(n × (a+b+...)).
-- Every entry must be a 2-D Tensor with the same number of rows (else an error naming the entry).
function M.concat(list)
  if type(list) ~= "table" or #list == 0 then error("encodings.concat: expected a non-empty list of Tensors", 2) end
  local rows
  for i, t in ipairs(list) do
    local mt = getmetatable(t)
    if type(t) ~= "userdata" or not mt or mt.__name ~= "nasflat.Tensor" then
      error(string.format("encodings.concat: entry %d is a %s, not a Tensor", i, type(t)), 2)
    end
    local shape = t:shape()
    if #shape ~= 2 then
      error(string.format("encodings.concat: entry %d is %d-D (expected rows × columns)", i, #shape), 2)
    end
    rows = rows or shape[1]
    if shape[1] ~= rows then
      error(string.format("encodings.concat: entry %d has %d rows, entry 1 has %d", i, shape[1], rows), 2)
    end
  end
  return core.hcat(list)
end

--- Check an encoding against a population size: raises "<what>: encoding has R rows, expected N"
-- (or "... is not a 2-D Tensor"). Returns the Tensor.
function M.check(X, n, what)
  what = what or "encoding"
  local mt = getmetatable(X)
  if type(X) ~= "userdata" or not mt or mt.__name ~= "nasflat.Tensor" or #X:shape() ~= 2 then
    error(string.format("%s: expected a 2-D Tensor (rows × columns), got %s", what, tostring(X)), 2)
  end
  if X:size(1) ~= n then
    error(string.format("%s: encoding has %d rows, expected %d (one per architecture)", what, X:size(1), n), 2)
  end
  return X
end

return M
