--- nasflat.engine: the real networks of both spaces, run in C on this machine (csrc/nf_engine.c, docs/engine.md).
--
--   engine.new{space =, arch =, batch = 1, seed = 0, dw_gemm = false}  -> Engine | nil, message
--       space: "nb201" (NAS-Bench-201's CIFAR-10 network) or "fbnet" (FBNet's CIFAR-100 network of HW-NAS-Bench);
--       arch: an arch string of the space (either accepted form); seed: the weights' and the input's seed;
--       dw_gemm: depthwise convolutions through im2col + sgemm instead of the direct loops (for comparison).
--       A malformed arch string returns nil, message; other bad options raise.
--   engine.counts{space =, arch =}  -> {flops =, params =, conv_macs =, ops =, layers = {...}}  | nil, message
--       the engine's own per-op counts (no buffers, no weights), per image
--   engine.blas_config()  -> OpenBLAS's configuration string
--
-- An Engine: e:run(), e:bench{warmup = 5, repeats = 20} -> wall ms, CPU ms (two lists), e:profile{repeats = 1} -> seconds per op,
-- e:layers(), e:info(), e:output(), e:export(path) (read by tools/torch_check.py), e:free(), tostring(e).
-- The sgemm thread count is nasflat.core.set_threads (OpenBLAS's setting); the engine's own loops use one thread.
local core = require "nasflat.core"
local util = require "nasflat.util"

local M = {}

local SPACES = {nb201 = true, fbnet = true}

local function check_space(fname, space)
  if not SPACES[space] then
    error(string.format("%s: option 'space' must be nb201 or fbnet (got %s)", fname, tostring(space)), 3)
  end
end

function M.new(opts)
  local o = util.options("engine.new", opts, {space = util.REQUIRED, arch = util.REQUIRED, batch = 1, seed = 0,
    dw_gemm = false})
  check_space("engine.new", o.space)
  if type(o.arch) ~= "string" then
    error(string.format("engine.new: option 'arch' must be a string (got %s)", type(o.arch)), 2)
  end
  if math.type(o.batch) ~= "integer" or o.batch < 1 or o.batch > 4096 then
    error(string.format("engine.new: option 'batch' must be an integer in 1..4096 (got %s)", tostring(o.batch)), 2)
  end
  if math.type(o.seed) ~= "integer" then
    error(string.format("engine.new: option 'seed' must be an integer (got %s)", tostring(o.seed)), 2)
  end
  return core.engine.new{space = o.space, arch = o.arch, batch = o.batch, seed = o.seed, dw_gemm = o.dw_gemm}
end

function M.counts(opts)
  local o = util.options("engine.counts", opts, {space = util.REQUIRED, arch = util.REQUIRED})
  check_space("engine.counts", o.space)
  if type(o.arch) ~= "string" then
    error(string.format("engine.counts: option 'arch' must be a string (got %s)", type(o.arch)), 2)
  end
  local e, err = core.engine.new{space = o.space, arch = o.arch, count_only = true}
  if not e then return nil, err end
  local info, layers = e:info(), e:layers()
  e:free()
  return {flops = info.flops, params = info.params, conv_macs = info.conv_macs, ops = info.ops, layers = layers}
end

M.blas_config = core.engine.blas_config

return M
