--- HELP (Lee et al., NeurIPS 2021) as a latency model (kind "help"; the interface is nasflat.model's): a device is
-- described by its latencies on 10 fixed reference architectures (the data's help/*_hardware_embedding_index.csv);
-- an MLP on [architecture encoding ; that hardware vector] is meta-learned over the source devices with MAML
-- (nasflat.core.Mlp, csrc/nf_mlp.c), then adapted on the target's samples by the same inner loop.
--
-- Following the reference code (HayeonLee/HELP, net.py, help.py, loader.py):
--   network   HELP's Net: the encoding through fc1, fc2 (100 wide, ReLU), the hardware vector through fc_hw1,
--             fc_hw2 (100, ReLU), concatenated, fc3, fc4 (200, ReLU), fc5 -> 1 score; MSE loss.
--   encoding  FBNet: HELP's 132 floats (per layer: k3, k5 flags and e1, e1_g2, e3, e6 one-hot; skip all zero).
--             NB201: the one-hot op of each of the 6 edges (30 floats) — HELP reads the cell with a 4-layer GCN
--             instead; every NB201 cell has the same 8-node graph, so the one-hot ops carry the same information.
--   hardware  the 10 reference latencies min-max normalised over themselves (HELP's normalization(portion=1)).
--   episodes  2000, 8 devices each, 10 support + 200 query rows per device, 2 inner steps, inner lr 1e-3 learned
--             per parameter (Meta-SGD, HELP's alpha_on default), Adam meta lr 1e-4, second-order.
-- Not followed, and why:
--   labels    HELP min-max normalises each device over its whole meta-training pool (0.05..0.95), the target
--             too — knowledge of the target's 900 latencies a few-shot user does not have. Here every device's
--             labels are min-max normalised by its own 10 reference latencies (the same frame as its hardware
--             vector), which the target has too: the same transform at meta-training and at transfer.
--   outliers  HELP drops the 10 % fastest and slowest architectures of every pool and query set; nothing is
--             dropped here (targets are scored on every measured architecture, as every other kind is).
--   z         HELP's amortised inference network z (a KL-regularised modulation of fc3..fc5 from the hardware
--             vector, averaged over 10 Monte-Carlo draws at test time) is left out: it is a further conditioning
--             on the same 10 numbers the network already reads, and its sampling would make predictions random.
-- Predictions: ms = lo + (hi − lo) × score, the inverse of the label normalisation (lo, hi: the target's fastest and
-- slowest reference latency), floored at 1 % of lo; no fit on the samples is needed (the adaptation fitted them).
-- Residuals for intervals: none (predict with an interval gives an infinite one), as for the graph network.
--
-- Protocols (option `protocol`): HELP's 10 reference measurements are measurements on the target. "extra" (default):
-- the k samples and the 10; "equal": k − 10 of the samples (a seeded random subset; reference architectures among
-- the samples count among the 10) and the 10, at the same budget k as the other kinds.
local core = require "nasflat.core"
local util = require "nasflat.util"

local M = {}
M.MIN_SAMPLES = 1
M.N_REFERENCE = 10
M.REFERENCE_FILES = {nb201 = "help/nasbench201_hardware_embedding_index.csv",
  fbnet = "help/fbnet_hardware_embedding_index.csv"}

M.DEFAULTS = {
  pretrained = util.NIL,     -- a meta-trained network (M.pretrain / pretrain_shared); nil: meta-train here
  protocol = "extra",        -- "extra" (k samples + the 10 reference measurements) or "equal" (k − 10 + the 10)
  reference_ms = util.NIL,   -- the target's ms on the 10 reference architectures (a list in rank order); nil:
                             -- taken from the samples when all 10 are among them, else from the data's column of
                             -- the target when the target is a device of the data
  pretrain_samples = 512,    -- meta-training pool: architectures per source device (the GNN's pre-training rows)
  episodes = 2000,
  tasks = 8,                 -- devices per episode (meta-batch)
  support = 10,              -- support rows per device and episode
  query = 200,               -- query rows per device and episode
  inner_steps = 2,           -- inner-loop steps at meta-training (and at transfer unless transfer_steps)
  transfer_steps = util.NIL, -- inner-loop steps at transfer (HELP's num_eval_updates); nil: inner_steps
  inner_lr = 1e-3,           -- inner learning rate (the initial value when learn_inner_lr)
  learn_inner_lr = true,     -- Meta-SGD: one learned inner learning rate per parameter (HELP's alpha_on)
  meta_lr = 1e-4,            -- Adam learning rate of the outer update
  second_order = true,       -- exact MAML gradient through the inner steps (false: first-order MAML)
  hidden = 100,              -- HELP's layer_size
  progress = util.NIL,       -- function(fmt, ...) for progress lines of the meta-training
}

-- options that change the meta-trained network (the rest act at transfer)
M.PRETRAIN_KEYS = {"pretrain_samples", "episodes", "tasks", "support", "query", "inner_steps", "inner_lr",
  "learn_inner_lr", "meta_lr", "second_order", "hidden"}

--------------------------------------------------------------------------------------------------- encodings
local FBNET_TABLE = {   -- HELP's arch_enc: [k3, k5, e1, e1_g2, e3, e6] per block id 0..8
  {1, 0, 1, 0, 0, 0}, {1, 0, 0, 1, 0, 0}, {1, 0, 0, 0, 1, 0}, {1, 0, 0, 0, 0, 1},
  {0, 1, 1, 0, 0, 0}, {0, 1, 0, 1, 0, 0}, {0, 1, 0, 0, 1, 0}, {0, 1, 0, 0, 0, 1},
  {0, 0, 0, 0, 0, 0}}

local function lookup_table(space)
  if space.name == "fbnet" then return core.Tensor.from(FBNET_TABLE) end
  local n = #space:choices()
  local t = {}
  for i = 1, n do
    t[i] = {}
    for j = 1, n do t[i][j] = i == j and 1 or 0 end
  end
  return core.Tensor.from(t)
end

--- The network's input encoding of canonical arch strings: Tensor(#list × width).
function M.encode(space, list)
  local codes = space:codes(list)
  local tab = lookup_table(space)
  local x = core.codes_lookup(codes, tab)
  codes:free()
  tab:free()
  return x
end

--------------------------------------------------------------------------------------------------- reference archs
--- Read a hardware-embedding index file (columns rank, arch_index; ranks 0..9 in order). Returns the list of
-- arch_index numbers, or nil and a message naming the file and line.
function M.read_reference(path)
  local f, err = io.open(path, "r")
  if not f then return nil, string.format("%s: cannot open (%s)", path, tostring(err)) end
  local text = f:read("a")
  f:close()
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = (line:gsub("\r$", "")) end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  if lines[1] ~= "rank,arch_index" then
    return nil, string.format("%s:1: header must be 'rank,arch_index' (got '%s')", path, tostring(lines[1] or ""))
  end
  local out, seen = {}, {}
  for i = 2, #lines do
    local a, b = lines[i]:match("^%s*([^,]*),([^,]*)%s*$")
    local rank, idx = math.tointeger(tonumber(a or "")), math.tointeger(tonumber(b or ""))
    if not rank or not idx then
      return nil, string.format("%s:%d: expected two integers 'rank,arch_index' (got '%s')", path, i, lines[i])
    end
    if rank ~= #out then return nil, string.format("%s:%d: rank %d out of order (expected %d)", path, i, rank, #out) end
    if idx < 0 then return nil, string.format("%s:%d: arch_index %d is negative", path, i, idx) end
    if seen[idx] then return nil, string.format("%s:%d: arch_index %d listed twice", path, i, idx) end
    seen[idx] = true
    out[#out + 1] = idx
  end
  if #out ~= M.N_REFERENCE then
    return nil, string.format("%s: %d reference architectures (HELP uses %d)", path, #out, M.N_REFERENCE)
  end
  return out
end

--- The reference architectures of a Source: {rows = data rows, archs = canonical arch strings}, or nil, message.
function M.reference(src)
  if src.synthetic or type(src.info.data) ~= "string" then
    return nil, "HELP needs the reference architectures of a data directory (help/*_hardware_embedding_index.csv); " ..
      "the synthetic zoo has none"
  end
  local path = src.info.data .. "/" .. M.REFERENCE_FILES[src.space_name]
  local idx, err = M.read_reference(path)
  if not idx then return nil, err end
  local rows, archs = {}, {}
  for i, a in ipairs(idx) do
    local r = src.latency:row_of(a)
    if not r then return nil, string.format("%s: arch_index %d (rank %d) is not in the data", path, a, i - 1) end
    rows[i], archs[i] = r, src.arch_strings[r]
  end
  return {rows = rows, archs = src.space:canonical(archs), file = path}
end

--- A device's frame from its 10 reference latencies: lo, hi and the hardware vector (a Tensor of 10), or nil, msg.
local function frame(ref_ms)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(ref_ms) do
    if type(v) ~= "number" or not (v > 0 and v < math.huge) then
      return nil, "a reference latency is not a positive finite number (" .. tostring(v) .. ")"
    end
    lo, hi = math.min(lo, v), math.max(hi, v)
  end
  if hi <= lo then return nil, "the 10 reference latencies are all equal" end
  local h = {}
  for i, v in ipairs(ref_ms) do h[i] = (v - lo) / (hi - lo) end
  return {lo = lo, hi = hi, h = core.Tensor.from(h)}
end

--------------------------------------------------------------------------------------------------- meta-training
local function network(in_x, hidden, rows, steps)
  return core.Mlp{widths = {in_x + M.N_REFERENCE, 2 * hidden, 2 * hidden, 2 * hidden, 2 * hidden, 1}, in_x = in_x,
    in_h = M.N_REFERENCE, split = {hidden, hidden}, max_rows = rows, max_steps = steps}
end

local function check_options(o, fname)
  local function posint(k)
    if math.type(o[k]) ~= "integer" or o[k] < 1 then error(string.format("%s: option '%s' must be a positive integer",
      fname, k), 4) end
  end
  for _, k in ipairs{"pretrain_samples", "tasks", "support", "query", "inner_steps", "hidden"} do posint(k) end
  if math.type(o.episodes) ~= "integer" or o.episodes < 0 then
    error(fname .. ": option 'episodes' must be an integer >= 0", 4)
  end
  if o.protocol ~= "extra" and o.protocol ~= "equal" then
    error(string.format("%s: option 'protocol' must be \"extra\" or \"equal\" (got %s)", fname, tostring(o.protocol)), 4)
  end
  for _, k in ipairs{"inner_lr", "meta_lr"} do
    if type(o[k]) ~= "number" or o[k] ~= o[k] or o[k] <= 0 then
      error(fname .. ": option '" .. k .. "' must be positive", 4)
    end
  end
  if o.transfer_steps ~= nil and (math.type(o.transfer_steps) ~= "integer" or o.transfer_steps < 0 or
    o.transfer_steps > 100) then
    error(fname .. ": option 'transfer_steps' must be an integer in 0..100", 4)
  end
  if o.reference_ms ~= nil and (type(o.reference_ms) ~= "table" or #o.reference_ms ~= M.N_REFERENCE) then
    error(string.format("%s: option 'reference_ms' must be a list of %d latencies", fname, M.N_REFERENCE), 4)
  end
end

--- Meta-train the network on the source devices of a Source. o: the DEFAULTS' meta-training fields and seed.
-- Returns {net, space, ref_archs, devices, skipped, options, seconds}, or nil and a message.
function M.pretrain(src, devices, o)
  local t0 = util.now()
  local ref, err = M.reference(src)
  if not ref then return nil, err end
  local pool = require("nasflat.source_models").pretrain_rows(src, devices, o.pretrain_samples, o.seed)
  local used, skipped, frames = {}, {}, {}
  for _, d in ipairs(devices) do
    if not src:has_device(d) then return nil, "source device " .. tostring(d) .. " is not in the data" end
    local col = src:ms(d)
    local ref_ms = {}
    for i, r in ipairs(ref.rows) do ref_ms[i] = col:get(r) end
    local fr = frame(ref_ms)
    if fr then used[#used + 1] = d; frames[#frames + 1] = fr else skipped[#skipped + 1] = d end
  end
  if #used == 0 then return nil, "no source device is measured on all 10 reference architectures" end
  local tasks = math.min(o.tasks, #used)
  if #pool < o.support + o.query then
    return nil, string.format("the meta-training pool has %d architectures, an episode needs %d (support %d + " ..
      "query %d)", #pool, o.support + o.query, o.support, o.query)
  end
  local list = {}
  for i, r in ipairs(pool) do list[i] = src.arch_strings[r] end
  local x = M.encode(src.space, list)
  local N, D = #pool, #used
  local y, hw = core.Tensor.new(D, N), core.Tensor.new(D, M.N_REFERENCE)
  for di, d in ipairs(used) do
    local col, fr = src:ms(d), frames[di]
    for j, r in ipairs(pool) do
      local v = col:get(r)
      y:set(di, j, v == v and (v - fr.lo) / (fr.hi - fr.lo) or 0 / 0)
    end
    for k = 1, M.N_REFERENCE do hw:set(di, k, fr.h:get(k)) end
    fr.h:free()
  end
  local net = network(x:size(2), o.hidden, math.max(o.support, o.query, 256), o.inner_steps)
  net:init{seed = core.derive_seed(o.seed, 2001), alpha = o.inner_lr}
  local rng = core.Rng(core.derive_seed(o.seed, 2002))
  local report = type(o.progress) == "function" and o.progress or function() end
  local chunk, done, loss = 50, 0, 0 / 0
  while done < o.episodes do
    local n = math.min(chunk, o.episodes - done)
    loss = net:meta_train{x = x, y = y, hw = hw, episodes = n, tasks = tasks, support = o.support, query = o.query,
      steps = o.inner_steps, second_order = o.second_order, learn_alpha = o.learn_inner_lr, lr = o.meta_lr, rng = rng}
    done = done + n
    report("meta-training: episode %d/%d outer loss %.4f", done, o.episodes, loss)
  end
  x:free(); y:free(); hw:free()
  local opts = {}
  for _, k in ipairs(M.PRETRAIN_KEYS) do opts[k] = o[k] end
  return {net = net, space = src.space_name, ref_archs = ref.archs, devices = used, skipped = skipped,
    options = opts, last_loss = loss, seconds = util.now() - t0, help_pretrained = true}
end

--- experiment.lua's shared pre-training hook: once per task, the result is every fit's `pretrained` option.
-- opts: source, devices, seed, samples (pretrain_samples), options (the kind's fit options), progress.
function M.pretrain_shared(opts)
  opts = util.options("model_help.pretrain_shared", opts, {source = util.REQUIRED, devices = util.REQUIRED,
    seed = 1, samples = util.NIL, options = {}, progress = util.NIL})
  local o = util.options("model_help.pretrain_shared", opts.options, M.DEFAULTS)
  check_options(o, "model_help.pretrain_shared")
  if opts.samples then o.pretrain_samples = opts.samples end
  o.seed, o.progress = opts.seed, opts.progress
  return M.pretrain(opts.source, opts.devices, o)
end

--------------------------------------------------------------------------------------------------- the kind
--- The target's 10 reference latencies: from reference_ms, the samples, or the data's column of the target.
local function target_reference(o, ref_archs, archs, ms)
  if o.reference_ms then return o.reference_ms, "given" end
  local at = {}
  for i, a in ipairs(archs) do at[a] = ms:get(i) end
  local out = {}
  for i, a in ipairs(ref_archs) do out[i] = at[a] end
  if #out == M.N_REFERENCE then return out, "samples" end
  local src = o.data
  if type(src) ~= "table" then
    local ok, s = pcall(require("nasflat.source").open, {data = src, space = o.space_name})
    src = ok and s or nil
  end
  if src and src.has_device and src:has_device(o.target) then
    local col = src:ms(o.target)
    for i, a in ipairs(ref_archs) do
      local r = src:row(a)
      local v = r and col:get(r)
      if not v or v ~= v then
        return nil, string.format("target %s is not measured on reference architecture %d (%s)", o.target, i, a)
      end
      out[i] = v
    end
    return out, "data"
  end
  return nil, "HELP needs the target's latencies on its 10 reference architectures: measure them (`nasflat fit` " ..
    "takes them among the samples) or pass reference_ms; the reference architectures are:\n  " ..
    table.concat(ref_archs, "\n  ")
end

--- A clone of the meta-trained network with room for `rows` rows and `steps` inner steps.
local function with_rows(net, rows, steps)
  local cfg = net:config()
  if cfg.max_rows >= rows and cfg.max_steps >= steps then return net:clone() end
  cfg.max_rows, cfg.max_steps = math.max(rows, cfg.max_rows), math.max(steps, cfg.max_steps)
  local c = core.Mlp(cfg)
  c:set_params(net:params())
  c:set_alpha(net:alpha())
  return c
end

function M.fit(o, space, archs, ms)
  check_options(o, "model.fit")
  o.space_name = space.name
  local pre = o.pretrained
  if type(pre) == "string" then
    return nil, "a pre-trained file is a graph network's: the help kind meta-trains on the source devices itself"
  end
  if pre ~= nil and (type(pre) ~= "table" or not pre.help_pretrained) then
    error("model.fit: option 'pretrained' of kind help must be what model_help.pretrain returns", 3)
  end
  if not pre then
    local src = o.data
    if type(src) ~= "table" then
      local err
      src, err = require("nasflat.source").open{data = src, space = space.name}
      if not src then return nil, "source devices: " .. err end
    end
    local devices = o.sources
    if type(devices) ~= "table" or #devices == 0 then devices = src:devices_except(o.target) end
    local po = {}
    for k, v in pairs(o) do po[k] = v end
    local err
    pre, err = M.pretrain(src, devices, po)
    if not pre then return nil, err end
  end
  if pre.space ~= space.name then
    return nil, string.format("the meta-trained network is for %s, the samples are %s", pre.space, space.name)
  end
  local ref_ms, how = target_reference(o, pre.ref_archs, archs, ms)
  if not ref_ms then return nil, how end
  local fr, ferr = frame(ref_ms)
  if not fr then return nil, "target reference latencies: " .. ferr end
  -- the adaptation set: the samples (all, or k − 10 of those that are not reference architectures), then the 10
  local is_ref = {}
  for _, a in ipairs(pre.ref_archs) do is_ref[a] = true end
  local keep = {}
  for i, a in ipairs(archs) do
    if o.protocol == "extra" or not is_ref[a] then keep[#keep + 1] = i end
  end
  if o.protocol == "equal" then
    local n = math.max(0, #archs - M.N_REFERENCE)
    if n < #keep then
      local pick = core.Rng(core.derive_seed(o.seed, 2003)):sample(#keep, n)
      local sub = {}
      for j, p in ipairs(pick) do sub[j] = keep[p] end
      table.sort(sub)
      keep = sub
    end
  end
  local list, lab, seen = {}, {}, {}
  local n_samples_used = 0   -- samples that are not reference architectures
  for _, i in ipairs(keep) do
    if not seen[archs[i]] then
      seen[archs[i]] = true
      list[#list + 1] = archs[i]
      lab[#lab + 1] = (ms:get(i) - fr.lo) / (fr.hi - fr.lo)
      if not is_ref[archs[i]] then n_samples_used = n_samples_used + 1 end
    end
  end
  for i, a in ipairs(pre.ref_archs) do
    if not seen[a] then
      seen[a] = true
      list[#list + 1] = a
      lab[#lab + 1] = (ref_ms[i] - fr.lo) / (fr.hi - fr.lo)
    end
  end
  local x = M.encode(space, list)
  local y = core.Tensor.from(lab)
  local steps = o.transfer_steps or pre.options.inner_steps
  local net = with_rows(pre.net, math.max(#list, 256), steps)
  net:adapt(x, fr.h, y, steps)
  x:free(); y:free()
  local opts = {}
  for k in pairs(M.DEFAULTS) do
    if k ~= "pretrained" and k ~= "progress" and k ~= "reference_ms" then opts[k] = o[k] end
  end
  for k, v in pairs(pre.options) do opts[k] = v end
  return {net = net, lo = fr.lo, hi = fr.hi, h = fr.h, ref_archs = pre.ref_archs, ref_ms = ref_ms, ref_from = how,
    adapt_rows = #list, samples_used = n_samples_used, meta_devices = pre.devices, options = opts, pretrained = pre}
end

function M.logms(m, cache)
  local x = M.encode(cache.space, cache.list)
  local s = m.net:predict(x, m.h)
  x:free()
  return s:affine(m.hi - m.lo, m.lo):clamp(0.01 * m.lo):log()
end

function M.refit_options(m)
  local o = {}
  for k, v in pairs(m.options) do
    local is_pre = false
    for _, pk in ipairs(M.PRETRAIN_KEYS) do is_pre = is_pre or pk == k end
    if not (is_pre and m.pretrained) then o[k] = v end
  end
  o.pretrained = m.pretrained
  if m.ref_from == "given" then o.reference_ms = m.ref_ms end
  return o
end

function M.state(m)
  local h = {}
  for i = 1, M.N_REFERENCE do h[i] = m.h:get(i) end
  return {options = m.options, lo = m.lo, hi = m.hi, h = h, ref_archs = m.ref_archs, ref_ms = m.ref_ms,
    ref_from = m.ref_from, adapt_rows = m.adapt_rows, samples_used = m.samples_used, meta_devices = m.meta_devices,
    network = m.net:config(), float_order = string.unpack("<I4", string.pack("=f", 1.0))}, m.net:state()
end

function M.from_state(t, payload)
  if type(t.network) ~= "table" or type(t.h) ~= "table" or #t.h ~= M.N_REFERENCE or type(t.lo) ~= "number" or
    type(t.hi) ~= "number" then
    return nil, "malformed HELP state"
  end
  if t.float_order ~= string.unpack("<I4", string.pack("=f", 1.0)) then
    return nil, "the network was saved on a machine of the other byte order"
  end
  local cfg = {}
  for _, k in ipairs{"widths", "split"} do
    cfg[k] = {}
    for i, v in ipairs(t.network[k] or {}) do cfg[k][i] = math.tointeger(v) end
  end
  for _, k in ipairs{"in_x", "in_h", "max_rows", "max_steps"} do cfg[k] = math.tointeger(t.network[k]) end
  local ok, net = pcall(core.Mlp, cfg)
  if not ok then return nil, "HELP network: " .. tostring(net) end
  local sok, serr = net:set_state(payload)
  if not sok then net:free() return nil, "HELP network: " .. serr end
  return {net = net, lo = t.lo, hi = t.hi, h = core.Tensor.from(t.h), ref_archs = t.ref_archs, ref_ms = t.ref_ms,
    ref_from = t.ref_from, adapt_rows = t.adapt_rows, samples_used = t.samples_used, meta_devices = t.meta_devices,
    options = t.options or {}}
end

function M.describe(m)
  local o = m.options
  return {
    string.format("HELP: MAML-trained MLP (%s order, %s inner lr), %d inner steps, %d at transfer; protocol %s",
      o.second_order and "second" or "first", o.learn_inner_lr and "learned" or "fixed", o.inner_steps or 0,
      o.transfer_steps or o.inner_steps or 0, tostring(o.protocol)),
    string.format("adapted on %d architectures: %d samples and the 10 reference ones (their latencies from %s)",
      m.adapt_rows or 0, m.samples_used or 0, tostring(m.ref_from)),
    string.format("reference latencies %.4g .. %.4g ms; meta-trained on %d devices", m.lo, m.hi,
      #(m.meta_devices or {})),
  }
end

function M.free(m)
  if m.net then m.net:free() end
end

return M
