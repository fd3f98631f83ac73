--- The structural ridge baseline (METHOD §10): ridge regression of log latency on a few features,
-- fitted on the target device's samples alone, the ridge strength chosen by leave-one-out.
-- The linear algebra is C (nasflat.core.stats: ridge_fit, ridge_loo); this module works on plain
-- tensors, so any feature matrix will do (space:struct_features(list) gives the METHOD §10 ones).
--
--   local model = ridge.fit{features = Tensor(n×F), targets_ms = Tensor(n) or table}
--   model:predict(Tensor(m×F)) -> Tensor(m) of milliseconds
--
-- fit options (unknown keys raise):
--   features     (required) 2-D Tensor n×F.
--   targets_ms   (required) n latencies in ms (Tensor or table). NaN = not measured: the row is left out
--                (model.n counts the rows used); a value <= 0 raises (no logarithm).
--   lambdas      list of ridge strengths >= 0 to choose from (default M.DEFAULT_LAMBDAS: 29 values
--                log-spaced from 1e-4 to 1e3, four per decade).
--   link         "log" (default): regress log latency, predict exp(...); "identity": regress milliseconds
--                themselves (latency as a sum of per-feature costs), predictions may then be <= 0.
--   standardize  true (default): the penalty acts on features centred and scaled to unit standard
--                deviation over the fitted rows (a constant column is left unscaled and gets no
--                weight); false: centred only. The intercept is never penalised.
-- Model fields: lambda (the choice: smallest leave-one-out MSE of log latency, ties to the larger
--   lambda), lambdas and loo_mse (the whole curve), coef (F numbers, original feature units, log-ms
--   per unit), intercept (log ms), n (rows used), n_features, standardize.
-- The leave-one-out errors use the closed form e_i / (1 - h_ii) of the hat matrix; it equals refitting
-- without each row for the fixed design (the centring and scaling use all n rows).
local core = require "nasflat.core"
local util = require "nasflat.util"

local S = core.stats

local M = {}

M.DEFAULT_LAMBDAS = {}
for i = 0, 28 do M.DEFAULT_LAMBDAS[i + 1] = 10 ^ (-4 + i / 4) end

M.DEFAULTS = {features = util.REQUIRED, targets_ms = util.REQUIRED, lambdas = util.NIL, standardize = true,
  link = "log"}

local Model = {}
Model.__index = Model

local function is_tensor(x)
  return type(x) == "userdata" and getmetatable(x) and getmetatable(x).__name == "nasflat.Tensor"
end

--- fit(opts) -> model (see the module comment).
function M.fit(opts)
  opts = util.options("ridge.fit", opts, M.DEFAULTS)
  local X = opts.features
  if not is_tensor(X) or #X:shape() ~= 2 then
    error("ridge.fit: option 'features' must be a 2-D Tensor (got " .. tostring(X) .. ")", 2)
  end
  local n, F = X:size(1), X:size(2)
  local t = opts.targets_ms
  if is_tensor(t) then
    t = t:totable()
  elseif type(t) ~= "table" then
    error("ridge.fit: option 'targets_ms' must be a Tensor or a table of numbers (got " .. type(t) .. ")", 2)
  end
  if #t ~= n then
    error(string.format("ridge.fit: %d feature rows but %d targets", n, #t), 2)
  end
  local y, rows = {}, {}
  for i = 1, n do
    local v = t[i]
    if type(v) ~= "number" then
      error(string.format("ridge.fit: target %d is not a number (%s)", i, type(v)), 2)
    end
    if v == v then
      if v <= 0 then error(string.format("ridge.fit: target %d is not a positive latency (%g ms)", i, v), 2) end
      rows[#rows + 1] = i
      y[#y + 1] = opts.link == "log" and math.log(v) or v
    end
  end
  if #rows < 2 then
    error(string.format("ridge.fit: needs at least 2 measured targets (got %d)", #rows), 2)
  end
  if #rows < n then X = S.gather_rows(X, rows) end
  if opts.link ~= "log" and opts.link ~= "identity" then
    error("ridge.fit: option 'link' must be \"log\" or \"identity\" (got " .. tostring(opts.link) .. ")", 2)
  end
  if type(opts.standardize) ~= "boolean" then
    error("ridge.fit: option 'standardize' must be a boolean (got " .. type(opts.standardize) .. ")", 2)
  end
  local lambdas = opts.lambdas or M.DEFAULT_LAMBDAS
  if type(lambdas) ~= "table" or #lambdas == 0 then
    error("ridge.fit: option 'lambdas' must be a non-empty list of numbers", 2)
  end
  local lam = {}
  for i, l in ipairs(lambdas) do
    if type(l) ~= "number" or l ~= l or l < 0 or l == math.huge then
      error(string.format("ridge.fit: lambdas entry %d must be a finite number >= 0 (got %s)", i, tostring(l)), 2)
    end
    lam[i] = l
  end
  local loo = S.ridge_loo(X, y, lam, {standardize = opts.standardize})
  local best
  for i, e in ipairs(loo) do
    if e == e and (not best or e < loo[best] or (e == loo[best] and lam[i] > lam[best])) then best = i end
  end
  if not best then error("ridge.fit: no lambda gives a finite leave-one-out error", 2) end
  local coef, intercept = S.ridge_fit(X, y, {lambda = lam[best], standardize = opts.standardize})
  return setmetatable({
    lambda = lam[best], lambdas = lam, loo_mse = loo, coef = coef, intercept = intercept,
    n = #rows, n_features = F, standardize = opts.standardize, link = opts.link,
  }, Model)
end

--- model:linear(Tensor(m×F)) -> Tensor(m): intercept + x . coef, the prediction before the link (log ms for
-- link "log", ms for "identity").
function Model:linear(X)
  if not is_tensor(X) or #X:shape() ~= 2 then
    error("ridge:predict: expected a 2-D Tensor of features (got " .. tostring(X) .. ")", 3)
  end
  if X:size(2) ~= self.n_features then
    error(string.format("ridge:predict: the model has %d features, the input %d columns", self.n_features,
      X:size(2)), 3)
  end
  local m = X:size(1)
  if m == 0 then return core.Tensor.new(0) end
  if self.n_features == 0 then return core.Tensor.new(m):fill(self.intercept) end
  local w = {}
  for j = 1, self.n_features do w[j] = {self.coef[j]} end
  return core.matmul(X, core.Tensor.from(w)):reshape{m}:affine(1, self.intercept)
end

--- model:predict(Tensor(m×F)) -> Tensor(m) of milliseconds: exp(intercept + x . coef) (link "log") or
-- intercept + x . coef (link "identity").
function Model:predict(X)
  local out = self:linear(X)
  if self.link == "log" then out:exp() end
  return out
end

--- What a saved model keeps (plain numbers and strings; M.from_state reads it back).
function Model:state()
  return {coef = {table.unpack(self.coef)}, intercept = self.intercept, link = self.link, lambda = self.lambda,
    n = self.n, n_features = self.n_features, standardize = self.standardize}
end

--- A model from Model:state(); nil and a message when the state is malformed.
function M.from_state(t)
  local nf = type(t) == "table" and math.tointeger(t.n_features)
  if type(t) ~= "table" or type(t.coef) ~= "table" or type(t.intercept) ~= "number" or
    (t.link ~= "log" and t.link ~= "identity") or not nf or #t.coef ~= nf then
    return nil, "malformed ridge state"
  end
  for _, c in ipairs(t.coef) do
    if type(c) ~= "number" then return nil, "malformed ridge state (a coefficient is not a number)" end
  end
  return setmetatable({coef = t.coef, intercept = t.intercept, link = t.link, lambda = t.lambda,
    n = math.tointeger(t.n) or t.n, n_features = nf, standardize = t.standardize}, Model)
end

function Model:__tostring()
  return string.format("nasflat.RidgeModel(%d features, %d samples, lambda=%g)", self.n_features, self.n, self.lambda)
end

return M
