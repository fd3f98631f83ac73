--- nasflat.data — the data layer: latency tables, the other per-architecture files of a search
-- space (architectures, cost, accuracy, zero-cost proxies) and the data directory.
--
-- Parsing is done in C (csrc/nf_data.c); this module adds option checking, the directory
-- lookup and the Dataset bundle. Conventions, as everywhere in nasflat:
--  * a programmer error (wrong argument type, unknown option, row out of range) raises;
--  * a failure of the world (file missing, malformed CSV, unknown device or column name)
--    returns nil, message. Messages about a file name it with line and column:
--    "<path>:<line>:<col>: <what>".
--  * rows and device/column numbers are 1-based; an empty CSV cell means "not measured" and
--    is NaN in tensors, nil from :get().
local core = require "nasflat.core"

local C = core.data
local M = {}

local function check_options(opts, fname, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(fname .. ": options must be a table (got " .. type(opts) .. ")", 3)
  end
  for k in pairs(opts) do
    if type(k) ~= "string" then
      error(fname .. ": option keys must be strings (got a " .. type(k) .. " key)", 3)
    end
    local ok = false
    for _, a in ipairs(allowed) do
      if a == k then ok = true; break end
    end
    if not ok then
      error(fname .. ": unknown option '" .. k .. "' (allowed: " .. table.concat(allowed, ", ") .. ")", 3)
    end
  end
  return opts
end

local function check_string(v, fname, what)
  if type(v) ~= "string" then
    error(fname .. ": " .. what .. " must be a string (got " .. type(v) .. ")", 3)
  end
end

--- The real-data directory.
-- opts (all optional):
--   dir      = an explicit directory (e.g. from a command-line option); used if given
--   env      = the value standing for $NASFLAT_DATA (default: os.getenv("NASFLAT_DATA"));
--              false ignores the environment
--   fallback = directory used when neither is given, if it exists (default "../shared/data");
--              false: no fallback
-- Returns the directory, or nil and a message listing what was tried. An explicit dir or
-- NASFLAT_DATA that is not a directory is reported, never skipped for the next candidate.
function M.dir(opts)
  opts = check_options(opts, "data.dir", {"dir", "env", "fallback"})
  local dir, env, fallback = opts.dir, opts.env, opts.fallback
  if dir ~= nil then check_string(dir, "data.dir", "option 'dir'") end
  if env == nil then env = os.getenv("NASFLAT_DATA")
  elseif env == false then env = nil
  else check_string(env, "data.dir", "option 'env'") end
  if fallback == nil then fallback = "../shared/data"
  elseif fallback == false then fallback = nil
  else check_string(fallback, "data.dir", "option 'fallback'") end
  return C.dir(dir, env, fallback)
end

--- Load a latency CSV: header `arch_index[,arch_string],<device>...`, one row per architecture,
-- milliseconds, empty cell = not measured. Rows are sorted by arch_index.
-- Returns a Latency userdata, or nil, message. Methods (device = name or 1-based number;
-- an unknown device name returns nil, message listing the known devices):
--   lat:n_archs(), lat:n_devices(), lat:devices() -> {names in file order}
--   lat:device_index(name) -> 1-based index | nil, message
--   lat:ms(device), lat:norm(device) -> Tensor(n_archs), NaN where not measured; norm is the
--       per-device min-max normalisation over the measured values, spanning exactly [0,1]
--       (0 everywhere if all measured values are equal)
--   lat:measured(device) -> {rows measured, ascending}, lat:n_measured(device) -> count
--   lat:get(row, device) -> ms, norm | nil when not measured
--   lat:arch_string(row), lat:arch_index(row), lat:row_of(arch_index) -> row | nil
--   lat:range(device) -> min, max over measured values | nil, message if none
--   lat:path(), lat:free() (idempotent; also __close and __gc), tostring(lat)
function M.load_latency(path)
  check_string(path, "data.load_latency", "path")
  return C.load_latency(path)
end

--- Build a Latency from data in memory (e.g. synthetic or imported measurements).
-- ms   = a 2-D Tensor, n_archs x n_devices, milliseconds, NaN = not measured (else finite >= 0)
-- opts = {devices = {names} (required, one per column, unique),
--         arch_index = {integers} (default 0..n_archs-1; unique, rows get sorted by it),
--         arch_strings = {strings} (default "")}
-- The values are copied; norm, ranges and counts are computed as for a file. Bad input raises
-- (it is the caller's data, not a failure of the world).
function M.latency_from(ms, opts)
  opts = check_options(opts, "data.latency_from", {"devices", "arch_index", "arch_strings"})
  if type(opts.devices) ~= "table" then
    error("data.latency_from: option 'devices' (a list of names) is required", 2)
  end
  return C.latency_from(ms, opts.devices, opts.arch_index, opts.arch_strings)
end

--- Load a generic CSV table (archs, cost, accuracy, zero-cost proxies, ...).
-- opts (all optional):
--   strings    = {names}  columns kept as strings even if they look numeric
--   numbers    = {names}  columns that must be numeric (a non-number cell is an error)
--   key        = column of arch indices for lookups (default "arch_index" when the header
--                has it; false for none); its cells must be non-negative integers
--   duplicates = false    true allows a key value on several rows (e.g. the NASLib subset)
-- Other columns are numeric when every non-empty cell is a number, else strings.
-- Returns a Table userdata, or nil, message. Methods (column = name or 1-based number; an
-- unknown column name returns nil, message):
--   tab:n_rows() (also #tab), tab:n_cols(), tab:header() -> {names}, tab:key() -> name | nil
--   tab:column_type(column) -> "number" | "string"
--   tab:column(column) -> Tensor(n_rows) (float32, NaN for empty) | {strings}
--   tab:get(row, column) -> number (double) | string | nil for an empty numeric cell
--   tab:row(row) -> {name = value}
--   tab:arch_index(row), tab:row_of(arch_index) -> first row | nil,
--   tab:rows_of(arch_index) -> {rows}   (these three raise when the table has no key)
--   tab:path(), tab:free() (idempotent; also __close and __gc), tostring(tab)
-- Rows stay in file order.
function M.load_table(path, opts)
  check_string(path, "data.load_table", "path")
  return C.load_table(path, opts)
end

-- The files of each space, relative to the data directory, and the columns kept as strings.
local SPACES = {
  nb201 = {
    latency = {file = "nb201_latency.csv"},
    archs = {file = "nb201_archs.csv", strings = {"arch_string", "op_vector"}},
    cost = {file = "nb201_cost.csv", strings = {"arch_string"}},
    accuracy = {file = "nb201_accuracy.csv", strings = {"arch_string"}},
    zcp = {file = "zcp/nb201_zcp_partial.csv", strings = {"arch_string"}},
  },
  fbnet = {
    latency = {file = "fbnet_latency.csv"},
    archs = {file = "fbnet_archs.csv", strings = {"arch_string", "block_names"}},
    zcp = {file = "zcp/fbnet_zcp.csv", strings = {"arch_string"}},
  },
}
local KINDS = {"latency", "archs", "cost", "accuracy", "zcp"}

local Dataset = {}
Dataset.__index = Dataset

local function check_dataset(self, fname)
  if getmetatable(self) ~= Dataset then
    error("Dataset:" .. fname .. ": expected a Dataset (use ds:" .. fname .. "())", 3)
  end
  if self._closed then error("nasflat: attempt to use a closed Dataset", 3) end
end

--- ds:path(kind) -> the file of `kind` ("latency", "archs", "cost", "accuracy", "zcp"),
-- or nil, message when the space has no such file.
function Dataset:path(kind)
  check_dataset(self, "path")
  local spec = SPACES[self.space][kind]
  if spec == nil then
    local known = false
    for _, k in ipairs(KINDS) do known = known or k == kind end
    if not known then
      error("Dataset:path: unknown file kind '" .. tostring(kind) .. "' (known: "
        .. table.concat(KINDS, ", ") .. ")", 2)
    end
    return nil, self.space .. ": the data set has no " .. kind .. " file"
  end
  return self.dir .. "/" .. spec.file
end

local function loader(kind)
  return function(self)
    check_dataset(self, kind)
    local obj = self._loaded[kind]
    if obj then return obj end
    local path, msg = self:path(kind)
    if not path then return nil, msg end
    if kind == "latency" then obj, msg = M.load_latency(path)
    else obj, msg = M.load_table(path, {strings = SPACES[self.space][kind].strings}) end
    if not obj then return nil, msg end   -- failures are not cached: the file may appear later
    self._loaded[kind] = obj
    return obj
  end
end

--- ds:latency() -> Latency; ds:archs(), ds:cost(), ds:accuracy(), ds:zcp() -> Table.
-- Each file is loaded on first use and kept; a missing or malformed file returns nil, message.
-- fbnet has no cost or accuracy file. nb201's zcp holds only the 9,445 cells without dead
-- branches (look rows up with tab:row_of(arch_index)).
for _, kind in ipairs(KINDS) do Dataset[kind] = loader(kind) end

--- ds:loaded() -> {kinds loaded so far}, in the order latency, archs, cost, accuracy, zcp.
function Dataset:loaded()
  check_dataset(self, "loaded")
  local out = {}
  for _, k in ipairs(KINDS) do
    if self._loaded[k] then out[#out + 1] = k end
  end
  return out
end

--- ds:free(): free every loaded file (idempotent; also __close).
function Dataset:free()
  if getmetatable(self) ~= Dataset then error("Dataset:free: expected a Dataset", 2) end
  if self._closed then return end
  for _, k in ipairs(KINDS) do
    local obj = self._loaded[k]
    if obj then obj:free() end
  end
  self._loaded = {}
  self._closed = true
end
Dataset.__close = Dataset.free

function Dataset:__tostring()
  if self._closed then return "nasflat.Dataset (closed)" end
  local loaded = self:loaded()
  return "nasflat.Dataset(" .. self.space .. " at " .. self.dir .. "; loaded: "
    .. (#loaded > 0 and table.concat(loaded, ", ") or "nothing") .. ")"
end

--- Open a search space's data set: a table bundling its files, each loaded lazily.
-- opts:
--   space    = "nb201" | "fbnet"  (required)
--   dir      = data directory (default: data.dir() — NASFLAT_DATA, else ../shared/data)
--   env, fallback = passed to data.dir when dir is not given (see data.dir)
-- Returns a Dataset (fields: space, dir; methods above), or nil, message when no data directory
-- is found. The files themselves are only opened on first use.
function M.open(opts)
  if type(opts) ~= "table" then
    error("data.open: expected an options table {space = \"nb201\" | \"fbnet\", dir = ...} (got "
      .. type(opts) .. ")", 2)
  end
  check_options(opts, "data.open", {"space", "dir", "env", "fallback"})
  if SPACES[opts.space] == nil then
    error("data.open: option 'space' must be \"nb201\" or \"fbnet\" (got " .. tostring(opts.space) .. ")", 2)
  end
  local dir, msg = M.dir({dir = opts.dir, env = opts.env, fallback = opts.fallback})
  if not dir then return nil, msg end
  return setmetatable({space = opts.space, dir = dir, _loaded = {}, _closed = false}, Dataset)
end

M.Dataset = Dataset

return M
