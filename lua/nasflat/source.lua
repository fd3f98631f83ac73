--- A latency source: the measured data of one space (a data directory), or the synthetic zoo; with the caches
-- the experiments share (latency columns, graph batches, encodings, feature matrices of every architecture).
--
--   local src = assert(require("nasflat.source").open{space = "nb201"})     -- data = nasflat.data.dir()
--   src:ms("pixel3")          -- Tensor(n) of ms, NaN where not measured
--   src:measured("pixel3")    -- row indices (1-based) where it was measured
--   src:features()            -- nasflat.features cache over every architecture: src:features():get("floor")
--   src:row("|nor_conv_3x3~0|+...")  -- the row of an architecture (any accepted form), or nil
--
-- Fields: space (Space), space_name, devices (names), n (architectures), arch_strings, synthetic (bool),
-- info (data dir, file checksums), tasks_file (path or nil).
local core = require "nasflat.core"
local util = require "nasflat.util"

local M = {}

local Source = {}
Source.__index = Source

function Source:ms(device)
  local t = self._ms[device]
  if not t then
    t = self.latency:ms(device)
    self._ms[device] = t
  end
  return t
end

--- Row indices (1-based) where `device` was measured.
function Source:measured(device)
  local r = self._measured[device]
  if not r then
    r = self.latency:measured(device)
    self._measured[device] = r
  end
  return r
end

--- Whether `device` is a column of the data.
function Source:has_device(device)
  if not self._devset then
    self._devset = {}
    for _, d in ipairs(self.devices) do self._devset[d] = true end
  end
  return self._devset[device] == true
end

--- Every device of the data but `name` (the default source devices for a target called `name`).
function Source:devices_except(name)
  local out = {}
  for _, d in ipairs(self.devices) do if d ~= name then out[#out + 1] = d end end
  return out
end

--- The row of an architecture (arch string in any form the space accepts, or a code), or nil.
function Source:row(arch)
  if not self._rows then
    self._rows = {}
    for i, a in ipairs(self.arch_strings) do self._rows[a] = i end
  end
  local r = self._rows[arch]
  if r then return r end
  local code = type(arch) == "table" and arch or self.space:parse(arch)
  if not code then return nil end
  return self._rows[self.space:format(code)]
end

--- The graph batch of every architecture, built once per form; with `z` (a Tensor(n × Z)) as the supplementary
-- input. form: "pruned" (default; the graphs of METHOD §2), "unpruned" (the nb201 8-node graphs before pruning)
-- or "identity" (fbnet layers without edges).
function Source:graphs(z, form)
  form = form or "pruned"
  self._graphs = self._graphs or {}
  local g = self._graphs[form]
  if not g then
    g = self.space:graphs(self.arch_strings, {pruned = form ~= "unpruned",
      adjacency = form == "identity" and "identity" or "chain"})
    self._graphs[form] = g
  end
  if z == nil then return g end
  return {ops = g.ops, adj = g.adj, z = z}
end

--- The nasflat.features names of a supplementary-input name ("struct", "struct+floor"), or nil.
function M.feature_parts(name)
  local known, parts = require("nasflat.features").KNOWN, {}
  for p in tostring(name):gmatch("[^+]+") do
    if not known[p] or p == "source" then return nil end
    parts[#parts + 1] = p
  end
  return #parts > 0 and parts or nil
end

--- The matrices `parts` (nasflat.features names) of a features cache side by side, as a new Tensor.
function M.feature_matrix(fc, parts)
  local mats = {}
  for i, p in ipairs(parts) do mats[i] = fc:get(p) end
  return #mats == 1 and mats[1]:clone() or core.hcat(mats)
end

--- Column-wise z-score of a Tensor(n × F) (constant columns become 0), with the column means and standard
-- deviations; given `means` and `sds`, applies those instead of the columns' own.
function M.standardize(t, means, sds)
  local n, f = t:size(1), t:size(2)
  local out = t:clone()
  local rows = out:totable()
  means, sds = means or {}, sds or {}
  for j = 1, f do
    if means[j] == nil then
      local s, s2 = 0, 0
      for i = 1, n do local v = rows[i][j]; s = s + v; s2 = s2 + v * v end
      means[j] = s / n
      sds[j] = math.sqrt(math.max(s2 / n - means[j] * means[j], 0))
    end
    local m, sd = means[j], sds[j]
    for i = 1, n do out:set(i, j, sd > 0 and (rows[i][j] - m) / sd or 0) end
  end
  return out, means, sds
end

--- A per-architecture encoding by name: "struct" (METHOD §10 features, z-scored over every architecture of the
-- source: the supplementary input "struct"), or one of nasflat.encodings. Built once.
function Source:encoding(name)
  if name == "struct" then return self:supplementary("struct") end
  self._enc = self._enc or {}
  local e = self._enc[name]
  if e then return e end
  local err
  e, err = require("nasflat.encodings").get{space = self.space_name, name = name, arch_strings = self.arch_strings,
    data_dir = not self.synthetic and self.info.data or nil}
  if not e then return nil, err end
  self._enc[name] = e
  return e
end

--- The graph network's supplementary input z of every architecture: the nasflat.features matrices named by
-- `name` ("struct", or names joined by '+', e.g. "struct+floor"), side by side and z-scored over this source's
-- architectures (self.z_stats[name] = {z =, means =, sds =}: the statistics a network records to rebuild z for any
-- architecture). Returns the Tensor, or nil and a message. Built once.
function Source:supplementary(name)
  self.z_stats = self.z_stats or {}
  if self.z_stats[name] then return self.z_stats[name].z end
  local parts = M.feature_parts(name)
  if not parts then
    return nil, string.format("supplementary input '%s': expected nasflat.features names joined by '+' (known: %s)",
      tostring(name), table.concat(require("nasflat.features").NAMES, ", "))
  end
  local z, means, sds = M.standardize(M.feature_matrix(self:features(), parts))
  self.z_stats[name] = {z = z, means = means, sds = sds}
  return z
end

--- The feature matrices of every architecture (a nasflat.features cache over self.arch_strings).
function Source:features()
  if not self._features then self._features = require("nasflat.features").cache(self.space, self.arch_strings) end
  return self._features
end

function Source:__tostring()
  return string.format("nasflat.Source(%s, %s: %d architectures, %d devices)", self.space_name,
    tostring(self.info.data), self.n, #self.devices)
end

--- Open a source. opts: data (a directory, or "synthetic"; default: nasflat.data.dir()), space ("nb201"),
-- seed (synthetic zoo seed, 1). Returns a Source or nil, msg.
function M.open(opts)
  opts = util.options("source.open", opts, {data = util.NIL, space = "nb201", seed = 1})
  if opts.space ~= "nb201" and opts.space ~= "fbnet" then
    error("source.open: space must be 'nb201' or 'fbnet' (got '" .. tostring(opts.space) .. "')", 2)
  end
  local src = setmetatable({space_name = opts.space, _ms = {}, _measured = {}}, Source)
  src.space = require("nasflat.space").get(opts.space)
  if opts.data == "synthetic" then
    local zoo = require "nasflat.zoo"
    local lat, err = zoo.latency{space = opts.space, seed = opts.seed}
    if not lat then return nil, err end
    src.latency, src.synthetic = lat, true
    src.info = {data = "synthetic", zoo_seed = opts.seed, zoo_version = zoo.VERSION}
  else
    local data = require "nasflat.data"
    local dir = opts.data
    if not dir then
      local err
      dir, err = data.dir()
      if not dir then return nil, err end
    end
    local path = dir .. "/" .. opts.space .. "_latency.csv"
    local lat, lerr = data.load_latency(path)
    if not lat then return nil, lerr end
    src.latency = lat
    local crc, size = core.crc32_file(path)
    src.info = {data = dir, files = {[opts.space .. "_latency.csv"] = {crc32 = crc, bytes = size}}}
    local tf = dir .. "/nasflat_tasks.json"
    local f = io.open(tf, "r")
    if f then
      f:close()
      src.tasks_file = tf
      local tcrc, tsize = core.crc32_file(tf)
      src.info.files["nasflat_tasks.json"] = {crc32 = tcrc, bytes = tsize}
    end
  end
  src.devices = src.latency:devices()
  src.n = src.latency:n_archs()
  src.arch_strings = {}
  for i = 1, src.n do
    local a = src.latency:arch_string(i)
    -- a data file's architectures are user input: a bad one is a failure of the world, named by line
    local ok, err = src.space:parse(a)
    if not ok then
      return nil, string.format("%s:%d: arch_string (field 2): %s", src.latency:path() or "data", i + 1, err)
    end
    src.arch_strings[i] = a
  end
  return src
end

M.Source = Source
return M
