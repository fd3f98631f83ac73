--- The predictor interface: every latency model nasflat ships answers the same calls.
--
--   local model = require "nasflat.model"
--   local P = assert(model.fit{space = "fbnet", samples = {archs = archs, ms = ms}, target = "myboard"})
--   local ms, info = P:predict({"7-8-1-...", ...}, {interval = 0.9})  -- ms: Tensor; info.logms, info.lo, info.hi
--   assert(P:save("board.nfm"))                                       -- atomic, checksummed
--   local Q = assert(model.load("board.nfm"))                          -- needs no data directory
--   print(Q)                                                           -- kind, space, target, samples, weights...
--
-- Kinds (model.KINDS; `kind` option, default model.DEFAULT_KIND = "hybrid", the shipped predictor):
--   hybrid   ridges on structural, physical and roofline features and on source-device models, weighted by
--            cross-validation on the samples (nasflat.model_hybrid);
--   ridge    the structural ridge of METHOD §10: the samples alone (nasflat.model_ridge);
--   nasflat  the NASFLAT graph network, pre-trained on source devices and fine-tuned on the samples
--            (nasflat.model_gnn).
--   help     the HELP baseline: an MLP conditioned on the target's latencies on 10 reference architectures,
--            meta-learned with MAML over source devices, adapted on the samples (nasflat.model_help).
--   multipredict  the MultiPredict baseline (AutoML-Conf 2023): zero-cost proxies and a learnable device embedding,
--            an MLP pre-trained on source devices, few-shot transfer (nasflat.model_multipredict).
--
-- fit options common to every kind (the rest belong to the kind: see its DEFAULTS):
--   kind      "hybrid" (default), "ridge", "nasflat" or "help".
--   space     "nb201" or "fbnet" (or a Space), required.
--   samples   {archs = list, ms = Tensor or list}: the target device's measurements, required. An arch is an arch
--             string in either form the space accepts, or a code. Each ms must be a positive finite number.
--             An architecture listed twice is measured twice: its rows are merged into one, at the geometric
--             mean of the measurements (fit returns the count in model.duplicates_merged).
--   target    a name for the target device (shown by tostring and saved), default "target".
--   seed      integer, default 1: every random draw of the fit (CV folds, bags, fine-tuning).
--   data      where source devices come from: a nasflat.source Source, a data directory, or nil for
--             nasflat.data.dir(); read only by kinds that use source devices.
--   sources   the source devices: a list of device names of the data (default: every device of the space's
--             data except the target), or a nasflat.source_models object already fitted (shared by many fits).
-- Returns the model, or nil and a message (data missing, too few samples).
--
-- Model methods: predict(archs, opts) -> ms Tensor, info {logms, lo, hi}; archs: arch strings (either form),
-- codes, a graph batch from space:graphs, or arch_index numbers of opts.data (a nasflat.source Source); opts:
-- interval (a probability in (0, 1): lo and hi bound each prediction with that nominal coverage, split-conformal
-- on the fit's cross-validation residuals of log latency), features (a nasflat.features cache over exactly
-- `archs`, to share feature matrices between models), data; save(path) -> true or nil, msg;
-- refit(samples) -> a new model with the same settings on other samples; __tostring. Fields: kind, space,
-- target, n_samples, samples, options.
local core = require "nasflat.core"
local util = require "nasflat.util"
local json = require "nasflat.json"

local M = {}

M.KINDS = {hybrid = "nasflat.model_hybrid", ridge = "nasflat.model_ridge", nasflat = "nasflat.model_gnn",
  multipredict = "nasflat.model_multipredict", help = "nasflat.model_help"}
M.KIND_NAMES = {"hybrid", "nasflat", "ridge", "multipredict", "help"}
M.DEFAULT_KIND = "hybrid"
M.FORMAT = "nasflat-model"
M.FORMAT_VERSION = 1
M.MAX_FILE_BYTES = 1 << 30   -- a model file larger than this is refused before it is read

M.COMMON = {kind = M.DEFAULT_KIND, space = util.REQUIRED, samples = util.REQUIRED, target = "target", seed = 1,
  data = util.NIL, sources = util.NIL}

local Model = {}
Model.__index = Model
M.Model = Model

local function kind_module(kind, fname)
  local name = M.KINDS[kind]
  if not name then
    error(string.format("%s: unknown kind '%s' (known: %s)", fname, tostring(kind), table.concat(M.KIND_NAMES, ", ")), 3)
  end
  return require(name)
end
M.kind_module = kind_module

--- The architectures of a graph batch (space:graphs, pruned or not: the node op labels are kept) as codes.
local function codes_of_graphs(space, g)
  local ops = g.ops:totable()
  local out = {}
  for i, row in ipairs(ops) do
    local code = {}
    if space.name == "nb201" then
      for e = 1, 6 do code[e] = math.tointeger(row[e + 1]) - 2 end   -- node e+1 holds edge e's op as op id + 2
    else
      for l = 1, #row do code[l] = math.tointeger(row[l]) end      -- node l holds layer l's block id
    end
    out[i] = code
  end
  return out
end

--- Canonical arch strings of a list: arch strings in any accepted form, codes, dataset indices (the data's
-- arch_index; `src` a nasflat.source Source), or a graph batch ({ops = Tensor, ...} from space:graphs). A
-- malformed entry raises (a programmer error: callers that read user input check with space:parse first).
function M.canonical(space, archs, fname, src)
  if type(archs) ~= "table" then error(fname .. ": architectures must be a list", 3) end
  if type(archs.ops) == "userdata" then archs = codes_of_graphs(space, archs) end
  -- strings only (the common case): one C call parses and formats them all
  local all_strings = true
  for _, a in ipairs(archs) do if type(a) ~= "string" then all_strings = false break end end
  if all_strings then
    local ok, out = pcall(space.canonical, space, archs)
    if ok then return out end
    if tostring(out):find("interrupted!", 1, true) then error(out, 0) end   -- Ctrl-C is not a malformed entry
  end
  local out = {}
  for i, a in ipairs(archs) do
    local code, err
    if type(a) == "table" then code = a
    elseif type(a) == "string" then code, err = space:parse(a)
    elseif math.type(a) == "integer" then
      if not src then
        error(string.format("%s: architecture %d is a dataset index, but no 'data' source was given", fname, i), 3)
      end
      local row = src.latency:row_of(a)
      if not row then error(string.format("%s: architecture %d: no arch_index %d in the data", fname, i, a), 3) end
      code = space:parse(src.arch_strings[row])
    else error(string.format("%s: architecture %d is a %s (expected an arch string or a code)", fname, i, type(a)), 3)
    end
    if not code then error(string.format("%s: architecture %d: %s", fname, i, err), 3) end
    out[i] = space:format(code)
  end
  return out
end

--- The samples of a fit as canonical arch strings and a Tensor of ms, duplicates merged (geometric mean).
local function read_samples(space, samples, fname)
  if type(samples) ~= "table" or type(samples.archs) ~= "table" or samples.ms == nil then
    error(fname .. ": option 'samples' must be {archs = list, ms = Tensor or list}", 3)
  end
  local archs = M.canonical(space, samples.archs, fname)
  local ms = samples.ms
  if type(ms) == "userdata" then ms = ms:totable() end
  if type(ms) ~= "table" or #ms ~= #archs then
    error(string.format("%s: samples has %d architectures but %s latencies", fname, #archs,
      type(ms) == "table" and tostring(#ms) or "no list of"), 3)
  end
  local sum, cnt, first, order = {}, {}, {}, {}
  for i, a in ipairs(archs) do
    local v = ms[i]
    if type(v) ~= "number" or not (v > 0 and v < math.huge) then
      error(string.format("%s: sample %d (%s): latency must be a positive finite number of ms (got %s)", fname, i, a,
        tostring(v)), 3)
    end
    if not sum[a] then order[#order + 1] = a; sum[a], cnt[a], first[a] = 0, 0, i end
    sum[a], cnt[a] = sum[a] + math.log(v), cnt[a] + 1
  end
  local out_a, out_ms = {}, {}
  for i, a in ipairs(order) do
    out_a[i] = a
    out_ms[i] = cnt[a] == 1 and ms[first[a]] or math.exp(sum[a] / cnt[a])
  end
  return out_a, core.Tensor.from(out_ms), #archs - #order
end

--- Fit a model (see the module comment). Returns the model or nil, message.
function M.fit(opts)
  if type(opts) ~= "table" then error("model.fit: options must be a table", 2) end
  local K = kind_module(opts.kind or M.DEFAULT_KIND, "model.fit")
  local defaults = {}
  for k, v in pairs(M.COMMON) do defaults[k] = v end
  for k, v in pairs(K.DEFAULTS) do defaults[k] = v end
  local o = util.options("model.fit", opts, defaults)
  local space = type(o.space) == "table" and o.space or require("nasflat.space").get(o.space)
  if type(o.target) ~= "string" or o.target == "" then error("model.fit: option 'target' must be a non-empty string", 2) end
  if math.type(o.seed) ~= "integer" then error("model.fit: option 'seed' must be an integer", 2) end
  local archs, ms, dups = read_samples(space, o.samples, "model.fit")
  if o.feature_cache and (dups > 0 or #o.feature_cache.list ~= #archs) then
    error("model.fit: option 'feature_cache' must be a cache over the samples' architectures, without repeats", 2)
  end
  if #archs < K.MIN_SAMPLES then
    return nil, string.format("%s needs at least %d distinct measured architectures (got %d)", o.kind, K.MIN_SAMPLES,
      #archs)
  end
  local m, err = K.fit(o, space, archs, ms)
  if not m then return nil, err end
  m.kind, m.space, m.target, m.seed = o.kind, space.name, o.target, o.seed
  m.samples = {archs = archs, ms = ms:totable()}
  m.n_samples = #archs
  m.duplicates_merged = dups
  m.version = core.version
  return setmetatable(m, Model)
end

--- The same settings fitted on other samples (e.g. after more measurements); same contract as model.fit.
function Model:refit(samples)
  local K = kind_module(self.kind, "model:refit")
  local opts = K.refit_options(self)
  opts.kind, opts.space, opts.target, opts.seed, opts.samples = self.kind, self.space, self.target, self.seed, samples
  return M.fit(opts)
end

--- Predictions for a list of architectures (see the module comment). The same list gives the same numbers, bit
-- for bit (saved and loaded models too). An architecture predicted within another list can differ in the last bit
-- of float32 (OpenBLAS picks its kernels by matrix size; measured: at most 6e-7 relative between batches of 16,384
-- and 65,536 FBNet architectures).
function Model:predict(archs, opts)
  opts = util.options("model:predict", opts, {interval = util.NIL, features = util.NIL, data = util.NIL})
  local space = require("nasflat.space").get(self.space)
  local cache = opts.features
  if cache then
    if cache.list ~= archs then error("model:predict: option 'features' must be a cache over the same list", 2) end
  else
    cache = require("nasflat.features").cache(space, M.canonical(space, archs, "model:predict", opts.data))
  end
  local K = kind_module(self.kind, "model:predict")
  local logms = K.logms(self, cache)
  if not opts.features then cache:free() end
  local ms = logms:clone():exp()
  local info = {logms = logms}
  if opts.interval ~= nil then
    local a = opts.interval
    if type(a) ~= "number" or not (a > 0 and a < 1) then
      error("model:predict: option 'interval' must be a probability in (0, 1) (got " .. tostring(a) .. ")", 2)
    end
    local q = self:interval_halfwidth(a)
    info.lo = logms:clone():affine(1, -q):exp()
    info.hi = logms:clone():affine(1, q):exp()
    info.halfwidth_log = q
  end
  return ms, info
end

--- The half-width in log ms of the split-conformal interval of nominal coverage `a`: the ceil((n+1) a)-th smallest
-- of the model's n absolute cross-validation residuals (math.huge when n is too small for `a`). The hybrid's n is
-- every out-of-fold prediction of its bags (320 at 20 samples), the ridge's one leave-one-out residual per sample.
function Model:interval_halfwidth(a)
  local r = self.residuals
  if not r or #r == 0 then return math.huge end
  local k = math.ceil((#r + 1) * a - 1e-9)
  if k > #r then return math.huge end
  return r[k]
end

--------------------------------------------------------------------------------------------------- files
--- Save the model (one format for every kind: a magic line, a JSON header with exact numbers, the kind's binary
-- payload if any, a CRC-32 line; written to a temporary file and renamed). Returns true or nil, message.
function Model:save(path)
  if type(path) ~= "string" then error("model:save: path must be a string", 2) end
  local K = kind_module(self.kind, "model:save")
  local state, payload = K.state(self)
  payload = payload or ""
  local header = {format = M.FORMAT, format_version = M.FORMAT_VERSION, kind = self.kind, space = self.space,
    target = self.target, seed = self.seed, samples = self.samples, residuals = self.residuals, state = state,
    version = self.version, nasflat_version = core.version, payload_bytes = #payload}
  local body = M.FORMAT .. " " .. M.FORMAT_VERSION .. "\n" .. json.encode(header) .. "\n" .. payload
  return util.atomic_write(path, body .. string.format("crc32 %s\n", core.crc32(body)))
end

--- Load a model saved by Model:save, or a graph network saved by nasflat.predictor (an older file kind: loaded as
-- a pre-trained "nasflat" model, which scores but has no target calibration). Returns the model or nil, message.
function M.load(path)
  if type(path) ~= "string" then error("model.load: path must be a string", 2) end
  local f, err = io.open(path, "rb")
  if not f then
    return nil, string.format("%s: cannot open (%s)", path, (err:gsub("^" .. path:gsub("%p", "%%%0") .. ": ", "")))
  end
  local head = f:read(#M.FORMAT + 1)
  if head ~= M.FORMAT .. " " then
    f:close()
    return kind_module("nasflat", "model.load").load_network(path)
  end
  local size = f:seek("end")
  if not size or size > M.MAX_FILE_BYTES then
    f:close()
    return nil, string.format("%s: larger than %d bytes (or not a regular file): not a model file", path,
      M.MAX_FILE_BYTES)
  end
  f:seek("set", 0)
  local text = f:read(size)
  f:close()
  if not text or #text ~= size then return nil, path .. ": short read" end
  local body, crc = text:match("^(.*)crc32 (%x%x%x%x%x%x%x%x)\n$")
  if not body then return nil, path .. ": truncated (no checksum line at the end)" end
  if core.crc32(body) ~= crc then return nil, path .. ": checksum mismatch (the file is damaged)" end
  local version, hjson, rest = body:match("^" .. M.FORMAT:gsub("%p", "%%%0") .. " (%d+)\n([^\n]*)\n(.*)$")
  if not version then return nil, path .. ": malformed header" end
  if tonumber(version) ~= M.FORMAT_VERSION then
    return nil, string.format("%s: format version %s, this nasflat reads version %d", path, version, M.FORMAT_VERSION)
  end
  local h = require("cjson.safe").decode(hjson)
  if type(h) ~= "table" or type(h.state) ~= "table" or not M.KINDS[h.kind] then
    return nil, path .. ": malformed header (no known kind or state)"
  end
  -- the JSON reader gives every number as a float: settings that are integers (seed, folds, bags...) become
  -- integers again, so that a loaded model refits like the one saved
  local function integers(t)
    for k, v in pairs(t) do
      if math.type(v) == "float" and math.tointeger(v) then t[k] = math.tointeger(v) end
    end
  end
  h.seed = math.tointeger(h.seed) or h.seed
  if type(h.state.options) == "table" then integers(h.state.options) end
  if h.payload_bytes ~= #rest then
    return nil, string.format("%s: payload of %d bytes, the header says %s", path, #rest, tostring(h.payload_bytes))
  end
  local ok, space = pcall(require("nasflat.space").get, h.space)
  if not ok then return nil, path .. ": unknown space " .. tostring(h.space) end
  local K = kind_module(h.kind, "model.load")
  local m, kerr = K.from_state(h.state, rest, space)
  if not m then return nil, path .. ": " .. kerr end
  m.kind, m.space, m.target, m.seed, m.samples = h.kind, space.name, h.target, h.seed, h.samples
  m.n_samples = h.samples and h.samples.archs and #h.samples.archs or 0
  m.residuals, m.version = h.residuals, h.version
  return setmetatable(m, Model)
end

function Model:__tostring()
  local K = kind_module(self.kind, "model:tostring")
  local lines = {string.format("nasflat.Model(%s, %s, target %s, %d samples)", self.kind, self.space,
    tostring(self.target), self.n_samples or 0)}
  for _, l in ipairs(K.describe(self)) do lines[#lines + 1] = "  " .. l end
  if self.residuals and #self.residuals > 0 then
    lines[#lines + 1] = string.format("  90%% interval: x/÷ %.3f (conformal, %d CV residuals)",
      math.exp(self:interval_halfwidth(0.9)), #self.residuals)
  end
  return table.concat(lines, "\n")
end

--- Release C memory held by the model (idempotent).
function Model:free()
  local K = kind_module(self.kind, "model:free")
  if K.free then K.free(self) end
end

return M
