--- Which architectures to measure (METHOD §5): pick a budget of n rows out of a population.
-- Written in Lua over the C kernels of nasflat.core.stats (k-means++/Lloyd with BLAS distances,
-- cosine similarities through gemm, bucket selection).
--
--   samplers.select{method = "kmeancosine", n = 20, encoding = Tensor(N×D), seed = 1}
--     -> {r1, ..., r20}: n distinct 1-based row indices into the population, in selection order.
--
-- Options (unknown keys raise):
--   method      (required) one of M.METHODS:
--     random         n uniform draws without replacement;
--     params         sort by `params`, cut into n buckets (numpy.array_split sizes: the first
--                    N % n buckets one longer), one uniform pick per bucket;
--     kmeans         k-means (k-means++ seeding, Lloyd) of the encoding rows into n clusters, one
--                    uniform member of each (a cluster left empty — fewer distinct rows than n —
--                    is replaced by a uniform pick among the rows not chosen);
--     cosine         sort by each row's mean cosine similarity to all other candidates, n buckets,
--                    one uniform pick per bucket;
--     cosine_greedy  a uniform first pick, then repeatedly the candidate least similar (cosine) to
--                    the last pick among those not chosen yet (the reference may pick a row twice;
--                    this never does; ties go to the earlier candidate);
--     kmeancosine    floor(n/2) by kmeans, the other ceil(n/2) by cosine buckets over the
--                    candidates kmeans did not take (the paper's default);
--     latency        (oracle, for study only) buckets of the true latency, like params.
--   n           (required) budget, an integer >= 0; larger than the candidate count is an error.
--   encoding    Tensor(N×D), required by kmeans, cosine, cosine_greedy, kmeancosine.
--   params      Tensor(N) or table, required by params.
--   latency     Tensor(N) or table, required by latency.
--   candidates  list of distinct 1-based rows allowed (default: every row of the population).
--               The encoding rows of the candidates must be finite (a NaN raises, naming the row).
--   seed        integer (default 0) or rng = nasflat.Rng (advanced in place); not both.
-- Rows whose params/latency value is NaN are never picked (they are removed from the candidates).
-- The population size N comes from encoding/params/latency (which must agree) or, when none is
-- given (method random), from the candidates.
local core = require "nasflat.core"
local util = require "nasflat.util"

local S = core.stats

local M = {}

M.METHODS = {"random", "params", "kmeans", "cosine", "cosine_greedy", "kmeancosine", "latency"}

M.DEFAULTS = {
  method = util.REQUIRED,
  n = util.REQUIRED,
  encoding = util.NIL,
  params = util.NIL,
  latency = util.NIL,
  candidates = util.NIL,
  seed = util.NIL,
  rng = util.NIL,
}

local FN = "samplers.select"

local function fail(fmt, ...) error(FN .. ": " .. string.format(fmt, ...), 3) end

local function is_tensor(x)
  return type(x) == "userdata" and getmetatable(x) and getmetatable(x).__name == "nasflat.Tensor"
end

-- A per-row value vector (Tensor or table) as a Lua table of numbers.
local function values_of(name, v)
  if is_tensor(v) then
    local t = v:totable()
    if type(t[1]) == "table" then fail("option '%s' must be 1-D (got a %s Tensor)", name, tostring(v)) end
    return t
  end
  if type(v) ~= "table" then fail("option '%s' must be a Tensor or a table of numbers (got %s)", name, type(v)) end
  for i = 1, #v do
    if type(v[i]) ~= "number" then fail("option '%s' entry %d is not a number (%s)", name, i, type(v[i])) end
  end
  return v
end

-- All rows of `X` listed in `rows`, as a new Tensor (one C call).
local function gather(X, rows) return S.gather_rows(X, rows) end

-- The candidate rows of the encoding; a non-finite entry raises naming the population row.
local function gather_encoding(enc, rows)
  local X = gather(enc, rows)
  local s = X:sum()
  if s ~= s or s == math.huge or s == -math.huge then
    for i, r in ipairs(rows) do
      for j = 1, X:size(2) do
        local v = X:get(i, j)
        if v ~= v or v == math.huge or v == -math.huge then
          error(string.format("%s: encoding row %d column %d is not finite (%s)", FN, r, j,
            v ~= v and "NaN" or tostring(v)), 4)
        end
      end
    end
  end
  return X
end

local function pick_random(rng, cands, n)
  local out = {}
  for i, j in ipairs(rng:sample(#cands, n)) do out[i] = cands[j] end
  return out
end

local function pick_buckets(rng, cands, values, n)
  local v = {}
  for i, r in ipairs(cands) do v[i] = values[r] end
  local out = {}
  for i, j in ipairs(S.bucket_select(v, n, {rng = rng})) do out[i] = cands[j] end
  return out
end

local function pick_kmeans(rng, cands, enc, n)
  if n == 0 then return {} end
  local res = S.kmeans(gather_encoding(enc, cands), n, {rng = rng})
  local members = {}
  for c = 1, n do members[c] = {} end
  for i, c in ipairs(res.assign) do
    local m = members[c]
    m[#m + 1] = cands[i]
  end
  local out, taken = {}, {}
  for c = 1, n do
    local m = members[c]
    if #m > 0 then
      local r = m[rng:uniform(#m)]
      out[#out + 1] = r
      taken[r] = true
    end
  end
  if #out < n then -- empty clusters: uniform picks among the rows not chosen
    local rest = {}
    for _, r in ipairs(cands) do if not taken[r] then rest[#rest + 1] = r end end
    for _, j in ipairs(rng:sample(#rest, n - #out)) do out[#out + 1] = rest[j] end
  end
  return out
end

-- Mean cosine similarity of each candidate to the other candidates, keyed by row.
local function mean_cosine_by_row(cands, enc)
  local by_row = {}
  if #cands == 1 then
    by_row[cands[1]] = 0
    return by_row
  end
  local m = S.mean_cosine(gather_encoding(enc, cands))
  for i, r in ipairs(cands) do by_row[r] = m:get(i) end
  return by_row
end

local function pick_cosine(rng, cands, enc, n)
  if n == 0 then return {} end
  return pick_buckets(rng, cands, mean_cosine_by_row(cands, enc), n)
end

local function pick_cosine_greedy(rng, cands, enc, n)
  if n == 0 then return {} end
  local X = gather_encoding(enc, cands)
  local first = rng:uniform(#cands)
  local out, taken = {cands[first]}, {[first] = true}
  local last = first
  for _ = 2, n do
    local sims = S.cosine_matrix(X, gather(X, {last}))
    local best, best_s = nil, math.huge
    for i = 1, #cands do
      if not taken[i] then
        local s = sims:get(i, 1)
        if s < best_s then best, best_s = i, s end
      end
    end
    taken[best] = true
    out[#out + 1] = cands[best]
    last = best
  end
  return out
end

local function pick_kmeancosine(rng, cands, enc, n)
  local nk = n // 2
  local out = pick_kmeans(rng, cands, enc, nk)
  local taken = {}
  for _, r in ipairs(out) do taken[r] = true end
  local sim = mean_cosine_by_row(cands, enc)
  local rest = {}
  for _, r in ipairs(cands) do if not taken[r] then rest[#rest + 1] = r end end
  if n - nk > 0 then
    for _, r in ipairs(pick_buckets(rng, rest, sim, n - nk)) do out[#out + 1] = r end
  end
  return out
end

local NEEDS = {
  params = "params", latency = "latency", kmeans = "encoding", cosine = "encoding",
  cosine_greedy = "encoding", kmeancosine = "encoding",
}

--- select(opts) -> list of n distinct 1-based rows (see the module comment for the options).
function M.select(opts)
  opts = util.options(FN, opts, M.DEFAULTS)
  local method = opts.method
  local known = false
  for _, m in ipairs(M.METHODS) do if m == method then known = true end end
  if not known then fail("unknown method '%s' (known: %s)", tostring(method), table.concat(M.METHODS, ", ")) end
  local n = opts.n
  if math.type(n) ~= "integer" or n < 0 then fail("option 'n' must be an integer >= 0 (got %s)", tostring(n)) end
  local need = NEEDS[method]
  if need and opts[need] == nil then
    fail("method '%s' needs option '%s'%s", method, need, need == "encoding" and " (a Tensor N×D)" or "")
  end

  -- the population: its size from the per-row inputs, which must agree
  local N, N_from
  local function size_from(name, size)
    if N and N ~= size then fail("%s has %d rows but %s has %d", N_from, N, name, size) end
    N, N_from = size, name
  end
  local enc = opts.encoding
  if enc ~= nil then
    if not is_tensor(enc) or #enc:shape() ~= 2 then
      fail("option 'encoding' must be a 2-D Tensor (got %s)", tostring(enc))
    end
    size_from("encoding", enc:size(1))
  end
  local params = opts.params and values_of("params", opts.params)
  if params then size_from("params", #params) end
  local latency = opts.latency and values_of("latency", opts.latency)
  if latency then size_from("latency", #latency) end

  -- candidates
  local cands = {}
  if opts.candidates ~= nil then
    if type(opts.candidates) ~= "table" then fail("option 'candidates' must be a list of rows") end
    local seen = {}
    for i, r in ipairs(opts.candidates) do
      if math.type(r) ~= "integer" or r < 1 or (N and r > N) then
        fail("candidate %d (%s) is not a row in 1..%s", i, tostring(r), N and tostring(N) or "N")
      end
      if seen[r] then fail("candidate row %d is listed twice", r) end
      seen[r] = true
      cands[i] = r
    end
  else
    if not N then fail("give 'candidates', or 'encoding', 'params' or 'latency' to define the rows") end
    for r = 1, N do cands[r] = r end
  end
  local values = method == "params" and params or method == "latency" and latency or nil
  if values then -- NaN rows are never picked
    local kept = {}
    for _, r in ipairs(cands) do if values[r] == values[r] then kept[#kept + 1] = r end end
    cands = kept
  end
  if n > #cands then
    fail("budget %d is larger than the %d candidates%s", n, #cands, values and " with a value" or "")
  end

  -- randomness
  local rng = opts.rng
  if rng ~= nil then
    if opts.seed ~= nil then fail("give 'seed' or 'rng', not both") end
    if not (type(rng) == "userdata" and getmetatable(rng) and getmetatable(rng).__name == "nasflat.Rng") then
      fail("option 'rng' must be a nasflat.Rng (got %s)", type(rng))
    end
  else
    local seed = opts.seed or 0
    if math.type(seed) ~= "integer" then fail("option 'seed' must be an integer (got %s)", tostring(seed)) end
    rng = core.Rng(seed)
  end

  if method == "random" then return pick_random(rng, cands, n) end
  if method == "params" or method == "latency" then
    if n == 0 then return {} end
    return pick_buckets(rng, cands, values, n)
  end
  if method == "kmeans" then return pick_kmeans(rng, cands, enc, n) end
  if method == "cosine" then return pick_cosine(rng, cands, enc, n) end
  if method == "cosine_greedy" then return pick_cosine_greedy(rng, cands, enc, n) end
  return pick_kmeancosine(rng, cands, enc, n)
end

return M
