--- nasflat: few-shot hardware latency prediction for neural architecture search.
-- The C core is `nasflat.core`; this module adds the API people use.
local core = require "nasflat.core"

local M = {
  core = core,
  version = core.version,
  Tensor = core.Tensor,
  Rng = core.Rng,
  matmul = core.matmul,
  set_threads = core.set_threads,
  get_threads = core.get_threads,
  derive_seed = core.derive_seed,
}

-- Sub-modules load lazily so `require "nasflat"` stays cheap.
local lazy = {
  data = "nasflat.data",
  space = "nasflat.space",
  metrics = "nasflat.metrics",
  samplers = "nasflat.samplers",
  ridge = "nasflat.ridge",
  encodings = "nasflat.encodings",
  predictor = "nasflat.predictor",
  experiment = "nasflat.experiment",
  model = "nasflat.model",
  features = "nasflat.features",
  source = "nasflat.source",
  source_models = "nasflat.source_models",
  results = "nasflat.results",
  json = "nasflat.json",
  tasks = "nasflat.tasks",
  search = "nasflat.search",
  zoo = "nasflat.zoo",
  util = "nasflat.util",
}

return setmetatable(M, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})
