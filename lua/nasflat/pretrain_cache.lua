--- Pre-trained graph networks kept in a directory and found again by what made them.
--
-- A network's key is the canonical text of: the library version, the data (its directory and the checksums of its
-- files; the zoo's seed and version on the synthetic zoo), the task (space, name, source devices) and the
-- experiment options that change the pre-trained network (M.KEYS; of the network options only those that differ
-- from nasflat.predictor's defaults). Its file is DIR/pretrained-<task>-<hash>.nfm.
-- `nasflat run --cache DIR` (experiment.run{cache_dir = DIR}) and `nasflat study --cache DIR` use the same keys, so a
-- network pre-trained by one is reused by the other.
local M = {}

--- Options of experiment.run that change the pre-trained network.
M.KEYS = {"model", "supplementary", "graph", "pretrain_samples", "epochs", "seed", "batch", "lr", "weight_decay"}

--- A canonical text of a value: tables with sorted keys, numbers as %.17g (integers as integers).
function M.canon(v)
  local ty = type(v)
  if ty == "table" then
    if getmetatable(v) then error("pretrain_cache: cannot key a value with a metatable", 3) end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) == type(b) then return a < b end
      return type(a) == "number"
    end)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = M.canon(k) .. "=" .. M.canon(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif ty == "number" then
    if math.type(v) == "integer" or (v == math.floor(v) and math.abs(v) < 2 ^ 53) then
      return string.format("%d", math.tointeger(v) or v)
    end
    return string.format("%.17g", v)
  elseif ty == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

--- FNV-1a, 64 bits, as 16 hex digits.
function M.fnv64(s)
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 1099511628211 end
  return string.format("%016x", h)
end

local function data_key(src)
  local info = src.info
  if src.synthetic then return M.canon({"zoo", info.zoo_seed, info.zoo_version, src.space_name}) end
  local files = {}
  for name, f in pairs(info.files or {}) do files[name] = f.crc32 end
  return M.canon({info.data, files, src.space_name})
end

--- The pre-training key of a task's network: `options` are experiment.run's (pre-training sizes resolved).
function M.key(src, task, options)
  local k = {}
  for _, name in ipairs(M.KEYS) do k[name] = options[name] end
  -- the form the network reads ("auto" resolved), so that an explicit form and the default share a network
  if k.graph ~= nil then k.graph = require("nasflat.model_gnn").graph_form(k.graph, task.space) end
  if k.supplementary ~= nil then
    k.supplementary = require("nasflat.model_gnn").supplementary_form(k.supplementary, task.space)
  end
  if k.model then k.model = require("nasflat.predictor").canonical_options(k.model) end
  return M.canon({version = require("nasflat.core").version, data = data_key(src),
    task = {task.space, task.name, task.train}, options = k})
end

--- The file of a key in `dir`; `label` names the task in the file name.
function M.path(dir, label, key)
  return string.format("%s/pretrained-%s-%s.nfm", dir, (label:gsub("[^%w]", "_")), M.fnv64(key))
end

return M
