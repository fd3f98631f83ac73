--- Label-free feature matrices of architectures, by name, computed from the architecture strings alone (the
-- space's network definitions; no data directory): what the latency models fit on, for measured and
-- never-measured architectures alike.
--
--   local features = require "nasflat.features"
--   local X = features.matrix(space, "floor", list)    -- Tensor(#list × F), row i for list[i]
--
-- Names (features.NAMES):
--   struct     METHOD §10 structural features (space:struct_features), raw.
--   phys       physical features of every layer an eager framework runs (space:phys_features).
--   phys_live  the same over the layers a graph compiler keeps.
--   roof       roofline-time features (space:roof_features): nb201 the eager columns, then the compiled
--              (live-only) ones; fbnet (every layer live) the eager ones only.
--   roofw      roof with each layer's fp32 weights in its bytes moved (variant "weights").
--   floor      roof with per-kernel floors (variant "floors").
--   roof_log   ln(1 + roof): the columns the one-column power law ("roof1") chooses from.
--   onehot     the choice at each position, one-hot (nasflat.encodings "onehot").
--   source     what the per-source-device models fit on: phys, phys_live, struct, roof, onehot side by side.
-- Every row depends on its own architecture only, so a row is the same whatever else is listed.
local core = require "nasflat.core"

local M = {}

M.NAMES = {"struct", "phys", "phys_live", "roof", "roofw", "floor", "roof_log", "onehot", "source"}

local function roof(space, list, variant)
  local eager = space:roof_features(list, nil, false, variant)
  if space.name == "fbnet" then return eager end
  local live = space:roof_features(list, nil, true, variant)
  local X = core.hcat{eager, live}
  eager:free()
  live:free()
  return X
end

-- Each builder gets the cache it fills, so a matrix made of others reuses them.
local BUILD = {
  struct = function(c) return c.space:struct_features(c.list) end,
  phys = function(c) return c.space:phys_features(c.list, nil, false) end,
  -- fbnet: every layer is live, the two are equal (checked in spec/model_spec.lua): one matrix for both
  phys_live = function(c)
    if c.space.name == "fbnet" then return c:get("phys") end
    return c.space:phys_features(c.list, nil, true)
  end,
  roof = function(c) return roof(c.space, c.list, nil) end,
  roofw = function(c) return roof(c.space, c.list, "weights") end,
  floor = function(c) return roof(c.space, c.list, "floors") end,
  roof_log = function(c) return c:get("roof"):clone():affine(1, 1):log() end,
  onehot = function(c)
    -- the choice at each position (nasflat.encodings "onehot", without its checks)
    local codes = c.space:codes(c.list)
    local X = core.vae.onehot(codes, 0, c.space:code_len(), 0, #c.space:choices())
    codes:free()
    return X
  end,
  source = function(c)
    return core.hcat{c:get("phys"), c:get("phys_live"), c:get("struct"), c:get("roof"), c:get("onehot")}
  end,
}

M.KNOWN = {}
for _, n in ipairs(M.NAMES) do M.KNOWN[n] = true end

--- A per-list cache: cache:get(name) builds each matrix once for the list. Fields: space, list.
function M.cache(space, list)
  local c = {space = space, list = list, _m = {}}
  function c.get(_, name)
    local X = c._m[name]
    if not X then
      local b = BUILD[name]
      if not b then
        error(string.format("features: unknown features '%s' (known: %s)", tostring(name), table.concat(M.NAMES, ", ")),
          2)
      end
      X = b(c)
      c._m[name] = X
    end
    return X
  end
  function c.free()
    for _, X in pairs(c._m) do X:free() end   -- Tensor:free is idempotent: a shared matrix is freed once
    c._m = {}
  end
  return c
end

--- The feature matrix `name` of the arch strings `list` (Tensor #list × F). Unknown names raise.
function M.matrix(space, name, list)
  if not BUILD[name] then
    error(string.format("features.matrix: unknown features '%s' (known: %s)", tostring(name),
      table.concat(M.NAMES, ", ")), 2)
  end
  local c = M.cache(space, list)
  local X = c:get(name)
  for k, Y in pairs(c._m) do if Y == X then c._m[k] = nil end end
  c:free()
  return X
end

--- A cache over some rows of another cache (its list at `rows`): cache:get(name) is the parent's matrix at those
-- rows, so a model fitted on the view sees exactly the numbers it would see in the parent (the experiments fit on
-- a target's samples with the source's cache of every architecture). Fields: space, list, parent, rows.
function M.view(parent, rows)
  local list = {}
  for i, r in ipairs(rows) do list[i] = parent.list[r] end
  local c = M.cache(parent.space, list)
  c.parent, c.rows = parent, rows
  function c.get(_, name)
    local X = c._m[name]
    if not X then
      X = parent:get(name):index(rows)
      c._m[name] = X
    end
    return X
  end
  return c
end

return M
