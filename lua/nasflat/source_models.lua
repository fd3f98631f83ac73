--- Models of the source devices: per source device, a ridge of log ms on every label-free feature
-- (nasflat.features "source": phys, phys_live, struct, roof, onehot), fitted on the pre-training architectures.
-- The hybrid's "source" component fits the target's latency as a combination of what these models say the
-- source devices would measure. A saved hybrid keeps them, so it predicts without the data.
--
--   local sm = require("nasflat.source_models").fit{source = src, devices = {"1080ti_1", "pixel3"}}
--   sm:logms(features_cache)   -- Tensor(n × #devices): each source model's log-ms prediction per architecture
local core = require "nasflat.core"
local util = require "nasflat.util"
local ridge = require "nasflat.ridge"

local M = {}

M.DEFAULTS = {
  source = util.REQUIRED,   -- a nasflat.source Source holding the source devices' measurements
  devices = util.REQUIRED,  -- the source devices (names of the source's columns)
  samples = 512,            -- pre-training architectures (the same on every source device)
  seed = 1,                 -- draws the architectures (derive_seed(seed, 1000), as the GNN's pre-training)
}

local SourceModels = {}
SourceModels.__index = SourceModels

--- The pre-training rows: `samples` rows measured on every device of `devices`, drawn from `seed` (the same
-- rows for the GNN's pre-training and the source-device ridges).
function M.pretrain_rows(src, devices, samples, seed)
  local rng = core.Rng(core.derive_seed(seed, 1000))
  local ok_rows = {}
  for r = 1, src.n do
    local all = true
    for _, d in ipairs(devices) do
      local v = src:ms(d):get(r)
      if v ~= v then all = false break end
    end
    if all then ok_rows[#ok_rows + 1] = r end
  end
  local pick = rng:sample(#ok_rows, math.min(samples, #ok_rows))
  local rows = {}
  for i, p in ipairs(pick) do rows[i] = ok_rows[p] end
  return rows
end

--- Fit one ridge per source device (see M.DEFAULTS). Returns a SourceModels object, or nil and a message.
function M.fit(opts)
  opts = util.options("source_models.fit", opts, M.DEFAULTS)
  local src = opts.source
  if type(opts.devices) ~= "table" or #opts.devices == 0 then
    error("source_models.fit: option 'devices' must be a non-empty list of device names", 2)
  end
  for _, d in ipairs(opts.devices) do
    if not src:has_device(d) then
      return nil, string.format("unknown source device '%s'; the data has: %s", tostring(d),
        table.concat(src.devices, ", "))
    end
  end
  if math.type(opts.samples) ~= "integer" or opts.samples < 2 then
    error("source_models.fit: option 'samples' must be an integer >= 2", 2)
  end
  local rows = M.pretrain_rows(src, opts.devices, opts.samples, opts.seed)
  if #rows < 2 then
    return nil, string.format("the source devices %s have fewer than 2 architectures measured on all of them",
      table.concat(opts.devices, ", "))
  end
  local Xr = src:features():get("source"):index(rows)
  local models = {}
  for i, d in ipairs(opts.devices) do
    models[i] = ridge.fit{features = Xr, targets_ms = src:ms(d):index(rows), link = "log"}
  end
  Xr:free()
  return setmetatable({space = src.space_name, devices = {table.unpack(opts.devices)}, models = models,
    samples = #rows, seed = opts.seed, data = src.info}, SourceModels)
end

--- Each source model's log-ms prediction for every architecture of a nasflat.features cache: Tensor(n × sources),
-- built once per cache (for a view, the parent's rows).
function SourceModels:logms(cache)
  cache._extra = cache._extra or setmetatable({}, {__mode = "k"})
  local by = cache._extra[self]
  if by then return by end
  if cache.parent then
    by = self:logms(cache.parent):index(cache.rows)
  else
    -- one product for every source model: X W + 1 b', then exp and log like each model's own prediction (the
    -- same numbers as one product per model, checked bit for bit in spec/model_spec.lua)
    local X = cache:get("source")
    local n = X:size(1)
    if not self._W then
      local W, b = {}, {{}}
      for j = 1, self.models[1].n_features do
        W[j] = {}
        for s, m in ipairs(self.models) do W[j][s] = m.coef[j] end
      end
      for s, m in ipairs(self.models) do b[1][s] = m.intercept end
      self._W, self._b = core.Tensor.from(W), core.Tensor.from(b)
    end
    local ones = core.Tensor.new(n, 1):fill(1)
    by = core.matmul(ones, self._b)
    ones:free()
    core.matmul(X, self._W, {out = by, beta = 1})
    by:exp():log()
  end
  cache._extra[self] = by
  return by
end

--- What a saved hybrid keeps of the source models.
function SourceModels:state()
  local models = {}
  for i, m in ipairs(self.models) do models[i] = m:state() end
  return {space = self.space, devices = self.devices, models = models, samples = self.samples, seed = self.seed,
    data = self.data}
end

--- SourceModels from SourceModels:state(); nil and a message when malformed.
function M.from_state(t)
  if type(t) ~= "table" or type(t.devices) ~= "table" or type(t.models) ~= "table" or #t.models ~= #t.devices then
    return nil, "malformed source models"
  end
  local models = {}
  for i, m in ipairs(t.models) do
    local r, err = ridge.from_state(m)
    if not r then return nil, "source model " .. i .. ": " .. err end
    models[i] = r
  end
  return setmetatable({space = t.space, devices = t.devices, models = models, samples = t.samples, seed = t.seed,
    data = t.data}, SourceModels)
end

function SourceModels:__tostring()
  return string.format("nasflat.SourceModels(%s: %s; %d architectures each)", self.space,
    table.concat(self.devices, ", "), self.samples or 0)
end

return M
