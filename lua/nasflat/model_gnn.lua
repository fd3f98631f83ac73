--- The NASFLAT graph network as a latency model (kind "nasflat"; the interface is nasflat.model's), and what the
-- experiments share of it: pre-training on source devices, fine-tuning on a target's samples (METHOD §4), the
-- graph batch of any list of architectures.
--
-- A fit starts from a copy of a pre-trained network (option `pretrained`: a nasflat.predictor, or a path; without
-- it, one is pre-trained here on the source devices of the data), adds the target device, its embedding copied from
-- the source device whose latencies on the samples correlate best (METHOD §4), fine-tunes every weight on the
-- samples (min-max normalised over themselves), then fits log ms = a + b × score on the samples: predictions are in
-- ms. Residuals for intervals: none (the network has no cross-validation; predict with an interval gives an
-- infinite one) — the hybrid is the model with intervals.
local core = require "nasflat.core"
local util = require "nasflat.util"

local M = {}
M.MIN_SAMPLES = 2

M.DEFAULTS = {
  pretrained = util.NIL,          -- a pre-trained nasflat.predictor (or a path to one); nil: pre-train here
  pretrain_samples = 512,         -- architectures per source device (pre-training here)
  epochs = 50,                    -- pre-training epochs: the paper's 150 give the same accuracy after the transfer
                                  -- at three times the cost (docs/study.md 7.3)
  batch = 128,
  lr = 1e-3,
  weight_decay = 1e-5,
  transfer_epochs = "auto",       -- fine-tuning epochs and rate, or "auto": the space's M.TRANSFER
  transfer_batch = 16,
  transfer_lr = "auto",
  transfer_members = 3,           -- fine-tuned copies, each with its own seed; the prediction is their mean score
                                  -- (docs/study.md 7.2c: every task up on both spaces)
  init_device = "correlation",    -- "correlation" (METHOD §4; needs the sources' data) or "mean" of the source rows
  supplementary = "auto",         -- input z of the network: "none", or nasflat.features names joined by "+", z-scored
                                  -- ("struct": METHOD §10 features; "struct+floor": with the roofline floors), or
                                  -- "auto": nb201 struct, fbnet struct+floor (docs/study.md 7.2d)
  graph = "auto",                 -- the graphs the network reads: "pruned" (METHOD §2; fbnet: the chain),
                                  -- "unpruned" (nb201's 8-node graph before pruning: dead ops keep their edges),
                                  -- "identity" (fbnet: layers without edges, the reference's adjacency) or "auto":
                                  -- nb201 pruned, fbnet identity (docs/study.md 7.2b)
  network = {},                   -- extra options for nasflat.predictor.new
  progress = util.NIL,            -- function(fmt, ...) for progress lines of the pre-training
}

local function predictor_mod() return require "nasflat.predictor" end

--- The transfer schedule of each space (docs/study.md 7.2c): on all six NB201 tasks 3e-3 × 80 epochs beats a faster
-- transfer; on FBNet, whose network reads layers without edges and the per-layer costs in z, 1e-2 × 40 is higher on
-- five of the six tasks (the phones of FA by 0.06) and costs each NB201 task 0.01 to 0.03.
M.TRANSFER = {nb201 = {lr = 3e-3, epochs = 80}, fbnet = {lr = 1e-2, epochs = 40}}

--- The transfer learning rate and epochs of options o for `space_name` ("auto" resolved by M.TRANSFER).
function M.transfer_form(o, space_name)
  local t = M.TRANSFER[space_name] or M.TRANSFER.nb201
  local lr, e = o.transfer_lr, o.transfer_epochs
  if lr == nil or lr == "auto" then lr = t.lr end
  if e == nil or e == "auto" then e = t.epochs end
  return lr, e
end

--- Check the transfer options of a fit or an experiment (raises: they are programmer input).
function M.check_transfer(o, fname)
  local e, lr = o.transfer_epochs, o.transfer_lr
  if e ~= nil and e ~= "auto" and (math.type(e) ~= "integer" or e < 1) then
    error(string.format("%s: option 'transfer_epochs' must be \"auto\" or an integer >= 1 (got %s)", fname,
      tostring(e)), 3)
  end
  if lr ~= nil and lr ~= "auto" and (type(lr) ~= "number" or lr ~= lr or lr <= 0 or lr == math.huge) then
    error(string.format("%s: option 'transfer_lr' must be \"auto\" or a number > 0 (got %s)", fname, tostring(lr)), 3)
  end
  local m = o.transfer_members
  if m ~= nil and (math.type(m) ~= "integer" or m < 1) then
    error(string.format("%s: option 'transfer_members' must be an integer >= 1 (got %s)", fname, tostring(m)), 3)
  end
end

--- The space a network was built for: its space_fbnet metadata, else told by its node count.
function M.network_space(net)
  local fb = net:meta().space_fbnet
  if fb == nil then fb = net:config().nodes == require("nasflat.space").get("fbnet").info.nodes and 1 or 0 end
  return fb == 1 and "fbnet" or "nb201"
end

--- Whether a network fits a space and a supplementary width: true, or nil and what differs.
function M.check_network(net, space_name, z_dim)
  local have = M.network_space(net)
  if have ~= space_name then return nil, string.format("it is for %s, the data is %s", have, space_name) end
  local want = require("nasflat.space").get(space_name):predictor_options{}
  local cfg = net:config()
  if cfg.nodes ~= want.nodes or cfg.n_ops ~= want.n_ops then
    return nil, string.format("it has %d nodes and %d ops, %s graphs have %d and %d", cfg.nodes, cfg.n_ops,
      space_name, want.nodes, want.n_ops)
  end
  if cfg.z_dim ~= z_dim then
    return nil, string.format("its supplementary input has width %d, this run's has %d", cfg.z_dim, z_dim)
  end
  return true
end

--- The graph batch of canonical arch strings for a network: with the supplementary input rebuilt from the
-- statistics the network records; its features are read from `fc`, a nasflat.features cache of `list`, when one is
-- given (the caller's matrices, built once), else from a temporary one. Returns graphs or nil, message.
function M.graphs(net, space, list, fc)
  local meta = net:meta()
  local g = space:graphs(list, {pruned = meta.graph_unpruned ~= 1,
    adjacency = meta.graph_identity == 1 and "identity" or "chain"})
  local z_dim = net:config().z_dim
  if z_dim == 0 then return g end
  -- the features z is made of: z_feat_<name> = position (struct alone: z_struct = 1)
  local parts = {}
  for k, v in pairs(meta) do
    local name = k:match("^z_feat_(.+)$")
    if name then parts[v] = name end
  end
  if #parts == 0 and meta.z_struct == 1 then parts = {"struct"} end
  if #parts == 0 then
    return nil, string.format("the network takes a supplementary input of width %d but does not record how it " ..
      "was built (only feature inputs saved by nasflat can be rebuilt)", z_dim)
  end
  local means, sds = {}, {}
  for j = 1, z_dim do means[j], sds[j] = meta["z_mean_" .. j], meta["z_sd_" .. j] end
  local own = fc == nil
  if own then fc = require("nasflat.features").cache(space, list) end
  local f = require("nasflat.source").feature_matrix(fc, parts)
  if own then fc:free() end
  if f:size(2) ~= z_dim or #means ~= z_dim or #sds ~= z_dim then
    return nil, string.format("the network's supplementary input has width %d, %s %s features %d", z_dim,
      space.name, table.concat(parts, "+"), f:size(2))
  end
  return {ops = g.ops, adj = g.adj, z = require("nasflat.source").standardize(f, means, sds)}
end

--- The supplementary input a network of `space_name` reads for the option `supplementary` ("auto" resolved).
function M.supplementary_form(name, space_name)
  if name == "auto" then return space_name == "fbnet" and "struct+floor" or "struct" end
  return name
end

--- The graph form a network of `space_name` reads for the option `graph` ("auto" resolved; the others as given).
function M.graph_form(graph, space_name)
  if graph ~= "auto" and graph ~= "pruned" and graph ~= "unpruned" and graph ~= "identity" then
    error(string.format("model_gnn: option 'graph' must be \"auto\", \"pruned\", \"unpruned\" or \"identity\" " ..
      "(got %s)", tostring(graph)), 3)
  end
  if graph == "auto" then return space_name == "fbnet" and "identity" or "pruned" end
  return graph
end

--- Pre-train a network on the source devices of a Source (o: the DEFAULTS' pre-training fields, seed, devices).
-- Returns the network or nil, message.
function M.pretrain(src, devices, o)
  local zname = M.supplementary_form(o.supplementary or M.DEFAULTS.supplementary, src.space_name)
  local zparts = zname ~= "none" and require("nasflat.source").feature_parts(zname)
  if zname ~= "none" and not zparts then
    error(string.format("model_gnn: option 'supplementary' must be \"auto\", \"none\" or nasflat.features names " ..
      "joined by '+' such as \"struct\" (got %s): the input must be rebuilt for architectures never measured",
      tostring(zname)), 2)
  end
  local zenc
  if zparts then
    local err
    zenc, err = src:supplementary(zname)
    if not zenc then return nil, err end
  end
  local pick = require("nasflat.source_models").pretrain_rows(src, devices, o.pretrain_samples, o.seed)
  local n = #pick
  local rows, devs, targets = {}, {}, core.Tensor.new(n * #devices)
  local k = 0
  for di, d in ipairs(devices) do
    local norm = src.latency:norm(d)
    for _, r in ipairs(pick) do
      k = k + 1
      rows[k] = r
      devs[k] = di
      targets:set(k, norm:get(r))
    end
  end
  local model_opts = {}
  for kk, v in pairs(o.network or {}) do model_opts[kk] = v end
  model_opts.devices = devices
  model_opts.seed = model_opts.seed or o.seed
  model_opts.z_dim = zenc and zenc:size(2) or 0
  local graph = M.graph_form(o.graph or M.DEFAULTS.graph, src.space_name)
  local net = predictor_mod().new(src.space:predictor_options(model_opts))
  net:set_meta("space_fbnet", src.space_name == "fbnet" and 1 or 0)
  if graph == "unpruned" then net:set_meta("graph_unpruned", 1) end
  if graph == "identity" then
    if src.space_name ~= "fbnet" then
      net:free()
      return nil, "graph 'identity' (layers without edges) is an FBNet form; " .. src.space_name .. " has pruned and unpruned"
    end
    net:set_meta("graph_identity", 1)
  end
  if zenc then
    if zname == "struct" then
      net:set_meta("z_struct", 1)
    else
      for i, p in ipairs(zparts) do net:set_meta("z_feat_" .. p, i) end
    end
    local st = src.z_stats[zname]
    for j, m in ipairs(st.means) do
      net:set_meta("z_mean_" .. j, m)
      net:set_meta("z_sd_" .. j, st.sds[j])
    end
  end
  local report = type(o.progress) == "function" and o.progress or function() end
  net:fit{graphs = src:graphs(zenc, graph), rows = rows, devices = devs, targets = targets, epochs = o.epochs,
    batch = o.batch, lr = o.lr, weight_decay = o.weight_decay, seed = core.derive_seed(o.seed, 1001),
    on_epoch = function(info) report("pre-training: epoch %d/%d loss %.4f", info.epoch, o.epochs, info.loss) end}
  return net
end

--- Min-max normalise a list of values over themselves (the samples: no knowledge of the whole column).
local function minmax(t)
  local lo, hi = t:min(), t:max()
  local out = t:clone()
  if hi > lo then
    out:add(core.Tensor.new(t:size()):fill(-lo)):scale(1 / (hi - lo))
  else
    out:fill(0.5)
  end
  return out
end

--- Least-squares fit of log(ms) = a + b*score on the samples.
local function calibrate(scores, ms)
  local n, sx, sy, sxx, sxy = scores:size(), 0, 0, 0, 0
  for i = 1, n do
    local x, y = scores:get(i), math.log(ms:get(i))
    sx, sy, sxx, sxy = sx + x, sy + y, sxx + x * x, sxy + x * y
  end
  local den = n * sxx - sx * sx
  local b = den > 0 and (n * sxy - sx * sy) / den or 0
  local a = (sy - b * sx) / n
  return a, b
end
M._calibrate, M._minmax = calibrate, minmax

--- What a fit needs beyond the samples: the pre-trained network, its graphs of the samples, the source devices'
-- latencies on the samples (for the device initialisation). o: fit options (with o.gnn for the hybrid).
function M.component_context(o, space, archs)
  local g = o.gnn or o
  local pre = g.pretrained
  if type(pre) == "string" then
    local err
    pre, err = predictor_mod().load(pre)
    if not pre then return nil, err end
  end
  local src = o.data
  local init = g.init_device or M.DEFAULTS.init_device
  if not pre or (init == "correlation" and type(src) ~= "table") then
    if type(src) ~= "table" then
      local err
      src, err = require("nasflat.source").open{data = src, space = space.name}
      if not src then return nil, "source devices: " .. err end
    end
  end
  if not pre then
    local devices = o.sources
    if type(devices) ~= "table" or #devices == 0 then
      devices = src:devices_except(o.target)
    end
    local po = {}
    for k, v in pairs(M.DEFAULTS) do
      if g[k] ~= nil then po[k] = g[k] elseif v ~= util.NIL then po[k] = v end
    end
    po.seed = o.seed
    local err
    pre, err = M.pretrain(src, devices, po)
    if not pre then return nil, err end
  end
  local z_dim = pre:config().z_dim
  local ok, cerr = M.check_network(pre, space.name, z_dim)
  if not ok then return nil, "pre-trained network: " .. cerr end
  local graphs, gerr = M.graphs(pre, space, archs)
  if not graphs then return nil, gerr end
  local source_ms = {}
  if init == "correlation" then
    for _, d in ipairs(pre:devices()) do
      local t = core.Tensor.new(#archs):fill(0 / 0)
      if src:has_device(d) then
        local col = src:ms(d)
        for i, a in ipairs(archs) do
          local r = src:row(a)
          if r then t:set(i, col:get(r)) end
        end
      end
      source_ms[#source_ms + 1] = {device = d, ms = t}
    end
  end
  local function get(key) if g[key] == nil then return M.DEFAULTS[key] end return g[key] end
  local transfer_lr, transfer_epochs = M.transfer_form(g, space.name)
  return {pre = pre, graphs = graphs, source_ms = source_ms, target = o.target, init_device = init,
    transfer_epochs = transfer_epochs, transfer_batch = get("transfer_batch"), transfer_lr = transfer_lr,
    transfer_members = get("transfer_members"), weight_decay = get("weight_decay"), space = space}
end

local Tuned = {}
Tuned.__index = Tuned

--- The mean score of networks `nets` for device `target` on rows idx (nil: all) of graphs g.
local function mean_score(nets, g, target, idx)
  local s = nets[1]:predict{graphs = g, device = target, rows = idx}
  for i = 2, #nets do s:add(nets[i]:predict{graphs = g, device = target, rows = idx}) end
  if #nets > 1 then s:scale(1 / #nets) end
  return s
end

--- Log-ms predictions of the tuned networks for the rows idx (nil: all) of a nasflat.features cache.
function Tuned:apply(cache, idx)
  cache._graphs = cache._graphs or setmetatable({}, {__mode = "k"})
  local g = cache._graphs[self.pre]
  if not g then
    g = assert(M.graphs(self.nets[1], cache.space, cache.list, cache))
    cache._graphs[self.pre] = g
  end
  return mean_score(self.nets, g, self.target, idx):affine(self.b, self.a)
end

--- Free the tuned copies now, not when collected (idempotent).
function Tuned:free()
  for _, net in ipairs(self.nets) do net:free() end
end

--- A copy of the pre-trained network with the target device added (its embedding row copied from init_from) and
-- fine-tuned for `epochs` on the rows idx (latencies ms).
local function tune(g, init_from, idx, ms, epochs, seed)
  local net = g.pre:clone()
  net:add_device(g.target, {copy_from = init_from})
  net:fit{graphs = g.graphs, rows = idx, devices = g.target, targets = minmax(ms), epochs = epochs,
    batch = g.transfer_batch, lr = g.transfer_lr, weight_decay = g.weight_decay, seed = seed}
  return net
end

--- Fine-tune a copy of the pre-trained network on the sample rows idx (latencies ms) of a component context
-- (ctx.gnn), seeded by `seed`; calibrated on those rows.
function M.fit_component(ctx, idx, ms, seed)
  local g = ctx.gnn
  local init_from
  if g.init_device == "correlation" then
    local best, best_rho = nil, -math.huge
    for _, s in ipairs(g.source_ms) do
      local rho = require("nasflat.metrics").spearman(s.ms:index(idx), ms)
      if rho == rho and rho > best_rho then best, best_rho = s.device, rho end
    end
    init_from = best or g.pre:devices()[1]
  end
  -- member 1 keeps the fit's seed: one member is the plain fine-tuning
  local nets = {}
  for i = 1, g.transfer_members do
    nets[i] = tune(g, init_from, idx, ms, g.transfer_epochs, i == 1 and seed or core.derive_seed(seed, 7000 + i))
  end
  local a, b = calibrate(mean_score(nets, g.graphs, g.target, idx), ms)
  return setmetatable({nets = nets, pre = g.pre, target = g.target, a = a, b = b, init_from = init_from,
    epochs = g.transfer_epochs}, Tuned)
end

--------------------------------------------------------------------------------------------------- the kind
function M.fit(o, space, archs, ms)
  M.check_transfer(o, "model.fit")
  local ctx = {}
  local g, err = M.component_context(o, space, archs)
  if not g then return nil, err end
  ctx.gnn = g
  local all = {}
  for i = 1, #archs do all[i] = i end
  local t = M.fit_component(ctx, all, ms, o.seed)
  local opts = {}
  for k in pairs(M.DEFAULTS) do if k ~= "pretrained" and k ~= "progress" then opts[k] = o[k] end end
  return {tuned = t, init_device_from = t.init_from, options = opts, pretrained = g.pre}
end

function M.logms(m, cache)
  if not m.tuned.a then
    error("model:predict: this graph network was loaded from a pre-trained file: it has no target calibration " ..
      "(fit it on samples first, or score with nasflat.predictor)", 3)
  end
  return m.tuned:apply(cache, nil)
end

function M.refit_options(m)
  local o = {}
  for k, v in pairs(m.options) do o[k] = v end
  o.pretrained = m.pretrained
  return o
end

--- A network as the bytes of its file (a model file's payload); raises on a failed save (reported as model:save).
local function net_bytes(net)
  local tmp = os.tmpname()
  local ok, err = net:save(tmp)
  if not ok then os.remove(tmp) error("model:save: " .. tostring(err), 4) end
  local f = assert(io.open(tmp, "rb"))
  local bytes = f:read("a")
  f:close()
  os.remove(tmp)
  return bytes
end

--- The network of such bytes, or nil and a message.
local function net_of(bytes)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(bytes)
  f:close()
  local net, err = predictor_mod().load(tmp)
  os.remove(tmp)
  return net, err
end

M.net_bytes, M.net_of = net_bytes, net_of

--- The state of a fitted network: its members' files one after another, their sizes in member_bytes.
function M.state(m)
  local t = m.tuned
  local parts, sizes = {}, {}
  for i, net in ipairs(t.nets) do
    parts[i] = net_bytes(net)
    sizes[i] = #parts[i]
  end
  return {target_device = t.target, a = t.a, b = t.b, init_from = t.init_from, epochs = t.epochs,
    member_bytes = sizes, options = m.options}, table.concat(parts)
end

function M.from_state(t, payload)
  local sizes = t.member_bytes or {#payload}
  if type(sizes) ~= "table" or #sizes == 0 then return nil, "graph network: member_bytes must be a non-empty list" end
  local nets, at = {}, 1
  local function fail(fmt, ...)
    for _, net in ipairs(nets) do net:free() end
    return nil, "graph network: " .. string.format(fmt, ...)
  end
  for i, size in ipairs(sizes) do
    local n = math.tointeger(size)  -- JSON numbers come back as floats
    if not n or n < 1 or at + n - 1 > #payload then
      return fail("member %d: size %s does not fit the payload of %d bytes", i, tostring(size), #payload)
    end
    local net, err = net_of(payload:sub(at, at + n - 1))
    if not net then return fail("member %d: %s", i, tostring(err)) end
    nets[i], at = net, at + n
  end
  if at ~= #payload + 1 then return fail("%d bytes after the last member", #payload + 1 - at) end
  return {tuned = setmetatable({nets = nets, pre = nets[1], target = t.target_device, a = t.a, b = t.b,
    init_from = t.init_from, epochs = t.epochs}, Tuned), options = t.options or {}}
end

--- A network file saved by nasflat.predictor (pre-trained: no calibration) as a "nasflat" model.
function M.load_network(path)
  local net, err = predictor_mod().load(path)
  if not net then return nil, err end
  local space = M.network_space(net)
  local m = {kind = "nasflat", space = space, target = nil, n_samples = 0, options = {}, network_file = true,
    tuned = setmetatable({nets = {net}, pre = net}, Tuned)}
  return setmetatable(m, require("nasflat.model").Model)
end

function M.describe(m)
  local t = m.tuned
  local lines = {"devices: " .. table.concat(t.nets[1]:devices(), ", ")}
  if t.a then
    lines[#lines + 1] = string.format("calibration: log ms = %.4g + %.4g × score; embedding initialised from %s",
      t.a, t.b, tostring(t.init_from))
    if t.epochs then
      lines[#lines + 1] = string.format("fine-tuned for %d epochs%s", t.epochs,
        #t.nets > 1 and string.format(", %d members averaged", #t.nets) or "")
    end
  else
    lines[#lines + 1] = "pre-trained network (no target calibration)"
  end
  return lines
end

function M.free(m)
  if m.tuned then m.tuned:free() end
end

return M
