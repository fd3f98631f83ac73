--- MultiPredict (Akhauri & Abdelfattah, "Multi-Predict: Few Shot Predictors For Efficient Neural Architecture
-- Search", AutoML-Conf 2023) as a latency model: kind "multipredict" (the interface is nasflat.model's).
--
-- The network (nasflat.predictor, layer "mlp", csrc/nf_model.c): an architecture encoder MLP over the
-- architecture's encoding (default "onehot+zcp": the one-hot of the choice at every position and the 13 zero-cost
-- proxies of nasflat.encodings, with its rule for the NB201 cells missing from the proxy file), 100 → 100 → 30;
-- a learnable device embedding (8 wide, through the 8 → 8 → 8 device embedder of nasflat.predictor); a head
-- MLP (1000, ReLU) → 1 score on [encoder output ; device embedding]. The network's flattened-graph input is
-- given a constant 2-node graph (6 constant columns: the architecture enters through the encoder only).
--
-- Pre-training (M.pretrain, once per task through M.pretrain_shared): every source device's latencies min-max
-- normalised over all of its measured architectures, `pretrain_samples` architectures measured on every source
-- device (default 900 on NB201, 4000 on FBNet, as the reference), MSE, AdamW lr 4e-4, weight decay 5e-4, cosine
-- to 0 over 250 epochs, batch 128.
-- Transfer (a fit): the target device gets a new embedding row, copied from the source device whose latencies on
-- the samples have the highest Spearman ρ with the target's (the reference's "closest correlator"); the encoder
-- is held fixed and the device embedding, device embedder and head are fitted on the samples (min-max
-- normalised over themselves), MSE, AdamW lr 1e-3, weight decay 5e-4, cosine to 0 over 50 epochs, batches of
-- half the samples; this is done `runs` (10) times from the same pre-trained weights with different shuffles and
-- the scores averaged (the reference's Monte-Carlo repeats). Milliseconds: log ms = a + b × squash(score), fitted
-- by least squares on the samples, squash a strictly increasing map that bounds scores far outside the samples'
-- range (Fitted:squash). No cross-validation residuals: predict with an interval gives an infinite one.
--
-- Predicting needs the zero-cost proxies of the architectures: the proxy files of the data directory the model
-- was fitted with (saved in the model), else nasflat.data.dir(); an FBNet architecture outside the 5,000 of the
-- proxy file cannot be predicted (an error naming it).
local core = require "nasflat.core"
local util = require "nasflat.util"
local T = core.Tensor

local M = {}
M.MIN_SAMPLES = 2

--- The network's widths (the reference's zcp_vec configuration: feat_depth 2, feat_layer_size 1000, nn_emb_dim 30,
-- hw_emb_dim 8, an encoder 100 → 100 → 30); the fit option `network` overrides any of them.
M.NETWORK = {z_hidden = {100, 100}, z_out = 30, hw_dim = 8, dev_out = 8, head = {1000}, dropout = 0}

--- Architectures per source device in pre-training when not given: the reference's dev_train_samples.
M.PRETRAIN_SAMPLES = {nb201 = 900, fbnet = 4000}

M.DEFAULTS = {
  pretrained = util.NIL,          -- M.pretrain's result (what M.pretrain_shared returns), or a path to its network
  encoding = "onehot+zcp",        -- the network's input (nasflat.encodings names joined by '+'); "zcp": proxies only
  proxies_at = "auto",            -- where the zero-cost proxies enter: "head" (raw, beside the encoder's output: the
                                  -- encoder reads the rest of the encoding), "encoder" (with the rest), or "auto":
                                  -- the reference's choice, head on NB201 and encoder on FBNet
  pretrain_samples = util.NIL,    -- architectures per source device (nil: M.PRETRAIN_SAMPLES of the space)
  epochs = 250,                   -- pre-training epochs
  batch = 128,
  lr = 4e-4,
  weight_decay = 5e-4,            -- pre-training and transfer
  loss = "mse",                   -- "mse" (the reference's configured loss) or "hinge" (nasflat's ranking loss)
  transfer_epochs = 50,
  transfer_batch = 0,             -- 0: half the samples (at least 1), as the reference
  transfer_lr = 1e-3,
  freeze_encoder = true,          -- hold the architecture encoder fixed in transfer (the reference freezes it)
  runs = 10,                      -- fine-tunings from the pre-trained weights, scores averaged
  init_device = "correlation",    -- "correlation" (closest correlator; needs the sources' data) or "mean"
  network = {},                   -- overrides of M.NETWORK
  progress = util.NIL,            -- function(fmt, ...) for progress lines of the pre-training
}

local function predictor_mod() return require "nasflat.predictor" end

--- Check the options a fit or a pre-training reads (programmer errors raise, naming the option).
local function check_options(o, fname)
  local function int(k, lo)
    if math.type(o[k]) ~= "integer" or o[k] < lo then
      error(string.format("%s: option '%s' must be an integer >= %d (got %s)", fname, k, lo, tostring(o[k])), 4)
    end
  end
  local function pos(k, zero_ok)
    local v = o[k]
    if type(v) ~= "number" or v ~= v or v == math.huge or v < 0 or (v == 0 and not zero_ok) then
      error(string.format("%s: option '%s' must be a %s number (got %s)", fname, k,
        zero_ok and "non-negative" or "positive", tostring(v)), 4)
    end
  end
  int("epochs", 1); int("batch", 1); int("transfer_epochs", 1); int("transfer_batch", 0); int("runs", 1)
  pos("lr"); pos("transfer_lr"); pos("weight_decay", true)
  if o.pretrain_samples ~= nil then int("pretrain_samples", 2) end
  if o.loss ~= "mse" and o.loss ~= "hinge" then
    error(string.format("%s: option 'loss' must be \"mse\" or \"hinge\" (got %s)", fname, tostring(o.loss)), 4)
  end
  if o.init_device ~= "correlation" and o.init_device ~= "mean" then
    error(string.format("%s: option 'init_device' must be \"correlation\" or \"mean\" (got %s)", fname,
      tostring(o.init_device)), 4)
  end
  if type(o.freeze_encoder) ~= "boolean" then
    error(fname .. ": option 'freeze_encoder' must be a boolean", 4)
  end
  if type(o.encoding) ~= "string" or o.encoding == "" then
    error(fname .. ": option 'encoding' must be a name of nasflat.encodings (or names joined by '+')", 4)
  end
  for piece in (o.encoding .. "+"):gmatch("([^+]*)%+") do
    local known = false
    for _, n in ipairs(require("nasflat.encodings").NAMES) do known = known or n == piece end
    if not known then
      error(string.format("%s: option 'encoding': unknown encoding '%s' (known: %s)", fname, piece,
        table.concat(require("nasflat.encodings").NAMES, ", ")), 4)
    end
  end
  if o.proxies_at ~= "auto" and o.proxies_at ~= "head" and o.proxies_at ~= "encoder" then
    error(string.format("%s: option 'proxies_at' must be \"auto\", \"head\" or \"encoder\" (got %s)", fname,
      tostring(o.proxies_at)), 4)
  end
  if type(o.network) ~= "table" then error(fname .. ": option 'network' must be a table", 4) end
  for k in pairs(o.network) do
    if M.NETWORK[k] == nil then
      local names = {}
      for n in pairs(M.NETWORK) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("%s: option 'network': unknown key '%s' (allowed: %s)", fname, tostring(k),
        table.concat(names, ", ")), 4)
    end
  end
  if o.progress ~= nil and type(o.progress) ~= "function" then
    error(fname .. ": option 'progress' must be a function", 4)
  end
end

--- The encoding rows of canonical arch strings: from the Source's cached encoding of every architecture when all
-- are rows of it (the same numbers: nasflat.encodings scales over the space's population, never over the list),
-- else built for the list. Returns a Tensor(#list × D) or nil, message.
local function encode(space, name, list, src, data_dir)
  if type(src) == "table" and src.arch_strings and not src.synthetic then
    local rows = {}
    for i, a in ipairs(list) do
      rows[i] = src:row(a)
      if not rows[i] then rows = nil break end
    end
    if rows then
      local X, err = src:encoding(name)
      if not X then return nil, err end
      return X:index(rows)
    end
  end
  return require("nasflat.encodings").get{space = space.name, name = name, arch_strings = list, data_dir = data_dir,
    progress = false}
end

--- The network's input for encoding rows X: a constant 2-node graph per architecture, z = X.
local function batch_of(X)
  local n = X:size(1)
  return {ops = core.Tensor.new(n, 2):fill(0), adj = core.Tensor.new(n, 2, 2):fill(0), z = X}
end

--- The data directory of a Source (or a directory name), absolute (a model is saved with it and may be used from
-- another working directory), or nil (synthetic zoo: nasflat.data.dir() at prediction time).
local function data_dir_of(src)
  local dir
  if type(src) == "table" and src.info and not src.synthetic and type(src.info.data) == "string" then
    dir = src.info.data
  elseif type(src) == "string" then
    dir = src
  end
  if dir and dir:sub(1, 1) ~= "/" and os.getenv("PWD") then dir = os.getenv("PWD") .. "/" .. dir end
  return dir
end

--- Pre-train a MultiPredict network on the source devices of a Source. o: the DEFAULTS' pre-training fields and
-- seed. Returns {net = nasflat.predictor, encoding, space, devices, data_dir} or nil, message.
function M.pretrain(src, devices, o)
  local n = o.pretrain_samples or M.PRETRAIN_SAMPLES[src.space_name]
  local X, err = src:encoding(o.encoding)
  if not X then return nil, err end
  local pick = require("nasflat.source_models").pretrain_rows(src, devices, n, o.seed)
  if #pick < 2 then return nil, "fewer than 2 architectures are measured on every source device" end
  local rows, devs, targets = {}, {}, core.Tensor.new(#pick * #devices)
  local k = 0
  for _, d in ipairs(devices) do
    local norm = src.latency:norm(d)
    for _, r in ipairs(pick) do
      k = k + 1
      rows[k], devs[k] = r, d
      targets:set(k, norm:get(r))
    end
  end
  local at = o.proxies_at == "auto" and (src.space_name == "nb201" and "head" or "encoder") or o.proxies_at
  local z_raw = 0
  if at == "head" then
    if not o.encoding:match("zcp$") or o.encoding == "zcp" then
      error(string.format("multipredict: proxies_at = \"head\" needs an encoding that ends with zcp after " ..
        "another part (such as onehot+zcp), got '%s'", o.encoding), 3)
    end
    z_raw = #require("nasflat.encodings").ZCP_COLUMNS
  end
  local cfg = {layer = "mlp", nodes = 2, n_ops = 1, device_at = "head", z_dim = X:size(2), z_raw = z_raw,
    devices = devices, seed = core.derive_seed(o.seed, 2001)}
  for key, v in pairs(M.NETWORK) do cfg[key] = v end
  for key, v in pairs(o.network or {}) do cfg[key] = v end
  local net = predictor_mod().new(cfg)
  net:set_meta("multipredict", 1)
  net:set_meta("space_fbnet", src.space_name == "fbnet" and 1 or 0)
  net:set_meta("encoding:" .. o.encoding, 1)
  local report = o.progress or function() end
  local g = batch_of(X)
  local ok, ferr = net:fit{graphs = g, rows = rows, devices = devs, targets = targets, epochs = o.epochs,
    batch = o.batch, lr = o.lr, lr_min = 0, weight_decay = o.weight_decay, loss = o.loss,
    seed = core.derive_seed(o.seed, 2002),
    on_epoch = function(info) report("pre-training: epoch %d/%d loss %.4f", info.epoch, o.epochs, info.loss) end}
  if not ok then net:free() return nil, ferr end
  return {net = net, encoding = o.encoding, space = src.space_name, devices = devices, data_dir = data_dir_of(src),
    samples = #pick, proxies_at = at}
end

--- The experiments' shared pre-training (nasflat.experiment calls it once per task): opts {source, devices, seed,
-- samples (the harness's pretrain_samples, not used: MultiPredict's own default is the reference's count; give
-- options.pretrain_samples to change it), options (this kind's fit options), progress}. Returns M.pretrain's
-- result or nil, message.
function M.pretrain_shared(opts)
  opts = util.options("multipredict.pretrain_shared", opts, {source = util.REQUIRED, devices = util.REQUIRED,
    seed = 1, samples = util.NIL, options = util.NIL, progress = util.NIL})
  local o = util.options("multipredict.pretrain_shared: options", opts.options, M.DEFAULTS)
  check_options(o, "multipredict.pretrain_shared")
  o.seed = opts.seed
  o.progress = opts.progress
  if o.pretrained then return o.pretrained end
  return M.pretrain(opts.source, opts.devices, o)
end

--- A pre-trained network from a path (a nasflat.predictor file written by M.pretrain's network): the table
-- M.pretrain returns, or nil, message.
local function load_pretrained(path)
  local net, err = predictor_mod().load(path)
  if not net then return nil, err end
  local meta = net:meta()
  if meta.multipredict ~= 1 then
    net:free()
    return nil, path .. ": not a MultiPredict network (no 'multipredict' metadata)"
  end
  local enc
  for k in pairs(meta) do enc = enc or k:match("^encoding:(.+)$") end
  return {net = net, encoding = enc, space = meta.space_fbnet == 1 and "fbnet" or "nb201", devices = net:devices()}
end

--- Min-max normalise over the values themselves.
local function minmax(t)
  local lo, hi = t:min(), t:max()
  local out = t:clone()
  if hi > lo then out:affine(1 / (hi - lo), -lo / (hi - lo)) else out:fill(0.5) end
  return out
end

local Fitted = {}
Fitted.__index = Fitted

--- Mean score of the fitted copies for encoding rows X.
function Fitted:scores(X)
  local g = batch_of(X)
  local s
  for _, net in ipairs(self.nets) do
    local p = assert(net:predict{graphs = g, device = self.target})
    if s then s:add(p) else s = p end
  end
  return s:scale(1 / #self.nets)
end

--- Scores mapped smoothly into [c - 2h, c + 2h] (c, h: the centre and half-range of the samples' scores, set by the
-- fit): strictly increasing, nearly the identity over the samples' range, so that log ms = a + b x score cannot run
-- away for an architecture scored far outside the samples (it did: mean MAPE 4e8 % on task N4 without it).
function Fitted:squash(s)
  local t, c, w = s:totable(), self.c, 2 * self.h
  if w ~= w or w <= 0 then return s end
  for i = 1, #t do
    local e = math.exp(2 * (t[i] - c) / w)
    t[i] = c + w * (e == math.huge and 1 or 1 - 2 / (e + 1))   -- c + w tanh((x - c) / w)
  end
  return T.from(t)
end

--------------------------------------------------------------------------------------------------- the kind
function M.fit(o, space, archs, ms)
  check_options(o, "model.fit")
  local src = o.data
  local pre = o.pretrained
  if type(pre) == "string" then
    local err
    pre, err = load_pretrained(pre)
    if not pre then return nil, "pretrained: " .. err end
  elseif pre ~= nil and (type(pre) ~= "table" or not pre.net) then
    error("model.fit: option 'pretrained' must be what multipredict.pretrain returns, or a path to its network", 3)
  end
  if not pre or (o.init_device == "correlation" and type(src) ~= "table") then
    if type(src) ~= "table" then
      local err
      src, err = require("nasflat.source").open{data = src, space = space.name}
      if not src then return nil, "source devices: " .. err end
    end
  end
  if not pre then
    local devices = o.sources
    if type(devices) == "table" and type(devices.devices) == "table" then devices = devices.devices end   -- source_models
    if type(devices) ~= "table" or #devices == 0 then devices = src:devices_except(o.target) end
    local err
    pre, err = M.pretrain(src, devices, o)
    if not pre then return nil, err end
  end
  if pre.space ~= space.name then
    return nil, string.format("pretrained: the network is for %s, the samples are %s", tostring(pre.space), space.name)
  end
  if pre.encoding ~= o.encoding then
    return nil, string.format("pretrained: the network reads encoding '%s', this fit asks for '%s'",
      tostring(pre.encoding), o.encoding)
  end
  local data_dir = data_dir_of(src) or pre.data_dir
  local X, err = encode(space, o.encoding, archs, src, data_dir)
  if not X then return nil, err end
  if X:size(2) ~= pre.net:config().z_dim then
    return nil, string.format("pretrained: the network's input has width %d, encoding '%s' has %d",
      pre.net:config().z_dim, o.encoding, X:size(2))
  end
  -- the new device's embedding: the closest correlator among the source devices on the samples
  local init_from
  if o.init_device == "correlation" then
    local best_rho = -math.huge
    for _, d in ipairs(pre.net:devices()) do
      if src:has_device(d) then
        local col = src:ms(d)
        local t = core.Tensor.new(#archs):fill(0 / 0)
        for i, a in ipairs(archs) do
          local r = src:row(a)
          if r then t:set(i, col:get(r)) end
        end
        local rho = require("nasflat.metrics").spearman(t, ms)
        if rho == rho and rho > best_rho then init_from, best_rho = d, rho end
      end
    end
  end
  local target = o.target
  for _, d in ipairs(pre.net:devices()) do
    if d == target then target = target .. " (target)" end   -- a source's name: the target gets its own row
  end
  local y = minmax(ms)
  local batch = o.transfer_batch > 0 and o.transfer_batch or math.max(1, #archs // 2)
  local g = batch_of(X)
  local fitted = setmetatable({nets = {}, target = target, init_from = init_from, encoding = o.encoding,
    data_dir = data_dir}, Fitted)
  for r = 1, o.runs do
    local net = pre.net:clone()
    if init_from then
      assert(net:add_device(target, {copy_from = init_from}))
    else   -- "mean": the mean of the source rows
      assert(net:add_device(target, {}))
      local P = net:params()
      local sl
      for _, s in ipairs(net:slices()) do if s.name == "dev_emb" then sl = s end end
      local ndev, w = sl.rows, sl.cols
      for j = 1, w do
        local sum = 0
        for d = 1, ndev - 1 do sum = sum + P:get(sl.offset + (d - 1) * w + j - 1) end
        P:set(sl.offset + (ndev - 1) * w + j - 1, sum / (ndev - 1))
      end
      net:set_params(P)
    end
    local ok, ferr = net:fit{graphs = g, devices = target, targets = y, epochs = o.transfer_epochs, batch = batch,
      lr = o.transfer_lr, lr_min = 0, weight_decay = o.weight_decay, loss = o.loss,
      seed = core.derive_seed(o.seed, 3000 + r), freeze = o.freeze_encoder and {"z"} or nil}
    if not ok then
      net:free()
      for _, n2 in ipairs(fitted.nets) do n2:free() end
      return nil, ferr
    end
    fitted.nets[r] = net
  end
  local raw = fitted:scores(X)
  fitted.c, fitted.h = (raw:max() + raw:min()) / 2, (raw:max() - raw:min()) / 2
  fitted.a, fitted.b = require("nasflat.model_gnn")._calibrate(fitted:squash(raw), ms)
  local opts = {}
  for k in pairs(M.DEFAULTS) do if k ~= "pretrained" and k ~= "progress" then opts[k] = o[k] end end
  return {fitted = fitted, init_device_from = init_from, options = opts, pretrained = pre}
end

function M.logms(m, cache)
  local f = m.fitted
  cache._multipredict = cache._multipredict or {}
  local key = f.encoding .. "\0" .. tostring(f.data_dir)
  local X = cache._multipredict[key]
  if not X then
    local space = cache.space
    local err
    X, err = require("nasflat.encodings").get{space = space.name, name = f.encoding, arch_strings = cache.list,
      data_dir = f.data_dir, progress = false}
    if not X then error("model:predict: multipredict needs the architectures' zero-cost proxies: " .. err, 3) end
    cache._multipredict[key] = X
  end
  return f:squash(f:scores(X)):affine(f.b, f.a)
end

function M.refit_options(m)
  local o = {}
  for k, v in pairs(m.options) do o[k] = v end
  o.pretrained = m.pretrained
  return o
end

-- a network's file bytes and back (the model file's payload): model_gnn's
local net_bytes, net_of = require("nasflat.model_gnn").net_bytes, require("nasflat.model_gnn").net_of

function M.state(m)
  local f = m.fitted
  local parts, sizes = {}, {}
  for i, net in ipairs(f.nets) do
    parts[i] = net_bytes(net)
    sizes[i] = #parts[i]
  end
  return {target_device = f.target, a = f.a, b = f.b, c = f.c, h = f.h, init_from = f.init_from, encoding = f.encoding,
    data_dir = f.data_dir, network_bytes = sizes, options = m.options}, table.concat(parts)
end

function M.from_state(t, payload)
  if type(t.network_bytes) ~= "table" or #t.network_bytes == 0 or type(t.a) ~= "number" or type(t.b) ~= "number"
    or type(t.c) ~= "number" or type(t.h) ~= "number"
    or type(t.encoding) ~= "string" or type(t.target_device) ~= "string" then
    return nil, "malformed multipredict state"
  end
  local nets, pos = {}, 1
  local function free_all() for _, n in ipairs(nets) do n:free() end end
  for i, size in ipairs(t.network_bytes) do
    size = math.tointeger(size)
    if not size or size < 1 or pos + size - 1 > #payload then
      free_all()
      return nil, string.format("network %d: payload too short", i)
    end
    local net, err = net_of(payload:sub(pos, pos + size - 1))
    if not net then free_all() return nil, string.format("network %d: %s", i, tostring(err)) end
    nets[i] = net
    pos = pos + size
  end
  if pos ~= #payload + 1 then free_all() return nil, "trailing bytes after the networks" end
  local f = setmetatable({nets = nets, target = t.target_device, init_from = t.init_from, encoding = t.encoding,
    data_dir = t.data_dir, a = t.a, b = t.b, c = t.c, h = t.h}, Fitted)
  return {fitted = f, init_device_from = t.init_from, options = t.options or {}}
end

function M.describe(m)
  local f = m.fitted
  local net = f.nets[1]
  local cfg = net:config()
  local src = {}
  for _, d in ipairs(net:devices()) do if d ~= f.target then src[#src + 1] = d end end
  return {
    string.format("MultiPredict: input %s (%d), encoder %s → %d, device embedding %d, head %s; %d fine-tuned " ..
      "copies averaged", f.encoding, cfg.z_dim, table.concat(cfg.z_hidden, "-"), cfg.z_out, cfg.hw_dim,
      table.concat(cfg.head, "-"), #f.nets),
    "source devices: " .. table.concat(src, ", "),
    string.format("calibration: log ms = %.4g + %.4g × squash(score) (samples' scores %.4g ± %.4g); embedding " ..
      "initialised from %s", f.a, f.b, f.c, f.h,
      tostring(f.init_from or "the mean of the source rows")),
    "proxies read from: " .. tostring(f.data_dir or "nasflat.data.dir()"),
  }
end

function M.free(m)
  if m.fitted then
    for _, net in ipairs(m.fitted.nets) do net:free() end
  end
end

return M
