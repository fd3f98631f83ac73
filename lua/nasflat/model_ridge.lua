--- The structural ridge (kind "ridge", METHOD §10; the interface is nasflat.model's): ridge regression of log
-- latency on a nasflat.features matrix (default "struct"), fitted on the target's samples alone, the ridge
-- strength chosen by leave-one-out. No source devices, no pre-training: what to try first with 20 measurements.
-- Residuals for intervals: the closed-form leave-one-out residuals of log latency at the chosen strength.
local core = require "nasflat.core"
local ridge = require "nasflat.ridge"

local M = {}
M.MIN_SAMPLES = 3

M.DEFAULTS = {
  features = "struct",   -- a nasflat.features name
  link = "log",          -- "log" (log ms) or "identity" (ms)
}

--- Leave-one-out residuals by refitting without each sample (k small fits at the chosen strength).
local function loo_residuals(X, ms, fit)
  local k = X:size(1)
  local r = {}
  for i = 1, k do
    local keep = {}
    for j = 1, k do if j ~= i then keep[#keep + 1] = j end end
    local f = ridge.fit{features = X:index(keep), targets_ms = ms:index(keep), link = fit.link, lambdas = {fit.lambda}}
    local p = f:predict(X:index{i}):get(1)
    r[i] = math.abs(math.log(ms:get(i)) - math.log(math.max(p, 1e-30)))
  end
  table.sort(r)
  return r
end

function M.fit(o, space, archs, ms)
  if not require("nasflat.features").KNOWN[o.features] then
    error("model.fit: option 'features' must be one of " .. table.concat(require("nasflat.features").NAMES, ", "), 3)
  end
  if o.link ~= "log" and o.link ~= "identity" then error("model.fit: option 'link' must be \"log\" or \"identity\"", 3) end
  local X = require("nasflat.features").matrix(space, o.features, archs)
  local fit = ridge.fit{features = X, targets_ms = ms, link = o.link}
  local res = loo_residuals(X, ms, fit)
  X:free()
  return {fit = fit, features = o.features, options = {features = o.features, link = o.link}, residuals = res}
end

function M.logms(m, cache)
  local X = cache:get(m.features)
  if m.fit.link == "log" then return m.fit:linear(X) end
  return m.fit:predict(X):clamp(1e-30):log()
end

function M.refit_options(m)
  return {features = m.options.features, link = m.options.link}
end

function M.state(m)
  return {features = m.features, ridge = m.fit:state(), options = m.options}
end

function M.from_state(t)
  local fit, err = ridge.from_state(t.ridge)
  if not fit then return nil, err end
  if not require("nasflat.features").KNOWN[t.features] then return nil, "unknown features " .. tostring(t.features) end
  return {fit = fit, features = t.features, options = t.options or {}}
end

function M.describe(m)
  return {string.format("ridge on %s features (%d), %s link, lambda %.4g", m.features, m.fit.n_features, m.fit.link,
    m.fit.lambda)}
end

local _ = core
return M
