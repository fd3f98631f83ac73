--- The synthetic device zoo: latency data shipped as code, for when no real data directory is present.
--
-- SYNTHETIC — nothing here was measured. Each device is an analytic model (csrc/nf_zoo.c) evaluated
-- on the real NB201 / FBNet macro networks layer by layer (FLOPs with op-specific efficiency, channel
-- padding, parallelism limits, bytes moved with a cache limit, kernel launches and per-inference
-- overheads, eager vs compiled execution, dead-code removal, log-normal measurement noise, whole-ms
-- timers on one phone). Thirteen devices in eight classes (gpu_b1, gpu_batch, cpu_desktop, cpu_mobile,
-- gpu_mobile, dsp, npu, fpga) rank architectures differently, as real device classes do; the same seed
-- gives the same numbers everywhere.
--
--   local zoo = require "nasflat.zoo"
--   local lat = zoo.latency{space = "nb201", seed = 1}   -- a nasflat.Latency, like data.load_latency
--   lat:ms("gpu_server_a_b1")                             -- Tensor(15625)
--
-- Architectures: nb201 all 15,625 cells in enumeration order (arch_index = Space:index - 1); fbnet a
-- fixed sample of 5,000 distinct architectures (the same for every seed). The phone devices (classes
-- cpu_mobile, gpu_mobile, dsp, npu) do not run the 341 nb201 cells without an input->output path (NaN,
-- "not measured"), as the real phone devices of the data were not measured on them.
local core = require "nasflat.core"
local util = require "nasflat.util"

local C = core.zoo
local M = {}

M.VERSION = C.VERSION
M.NOTE = "synthetic: latencies computed by nasflat.zoo from the real network structure, not measured"

--- The devices: a list of {name =, class =, about =} in zoo order.
function M.devices() return C.devices() end

--- Device names in zoo order.
function M.names()
  local out = {}
  for i, d in ipairs(C.devices()) do out[i] = d.name end
  return out
end

--- Class of every device: {name = class}.
function M.classes()
  local out = {}
  for _, d in ipairs(C.devices()) do out[d.name] = d.class end
  return out
end

local function check_space(fname, space)
  if space ~= "nb201" and space ~= "fbnet" then
    error(string.format("%s: space must be 'nb201' or 'fbnet' (got %s)", fname, tostring(space)), 3)
  end
end

--- A synthetic latency dataset: a nasflat.Latency (see nasflat.data.load_latency for its methods), or
-- nil, message for an unknown device name. opts (defaults):
--   space = "nb201"   "nb201" or "fbnet"
--   seed = 1          noise seed (integer)
--   devices = nil     list of device names (columns in this order); nil = all thirteen
--   archs = nil       fbnet: number of architectures (default 5000); nb201: the first n cells (default all)
--   noise = true      false gives the noise-free model values (and no whole-ms rounding)
function M.latency(opts)
  opts = util.options("zoo.latency", opts, {space = "nb201", seed = 1, devices = util.NIL, archs = util.NIL,
                                            noise = true})
  check_space("zoo.latency", opts.space)
  if math.type(opts.seed) ~= "integer" then
    error("zoo.latency: option 'seed' must be an integer (got " .. tostring(opts.seed) .. ")", 2)
  end
  if opts.devices ~= nil and type(opts.devices) ~= "table" then
    error("zoo.latency: option 'devices' must be a list of device names", 2)
  end
  if opts.archs ~= nil and (math.type(opts.archs) ~= "integer" or opts.archs < 1) then
    error("zoo.latency: option 'archs' must be a positive integer (got " .. tostring(opts.archs) .. ")", 2)
  end
  if type(opts.noise) ~= "boolean" then error("zoo.latency: option 'noise' must be a boolean", 2) end
  return C.latency(opts.space, opts.seed, opts.devices, opts.archs or 0, opts.noise)
end

--- Noise-free latency (ms) of one architecture (arch string or code) on one device; NaN when the device
-- does not run it; nil, message for an unknown device.
function M.latency_one(space, arch, device)
  check_space("zoo.latency_one", space)
  return C.latency_one(space, arch, device)
end

--- Transfer tasks over the zoo, built like the paper's: sources and targets of different classes.
-- The same splits serve both spaces.
local TASKS = {
  ZD = {about = "default: every target has a source of its class",
        train = {"gpu_server_a_b1", "gpu_server_a_b64", "cpu_desktop_8c", "cpu_mobile_big", "dsp_a_int8",
                 "gpu_mobile", "fpga_dataflow"},
        test = {"gpu_server_b_b1", "gpu_server_b_b64", "cpu_server_16c", "cpu_mobile_mid", "dsp_b_int8"}},
  Z1 = {about = "servers to phones: GPUs and CPUs as sources, phone devices as targets",
        train = {"gpu_server_a_b1", "gpu_server_b_b1", "gpu_server_a_b64", "gpu_server_b_b64", "cpu_desktop_8c",
                 "cpu_server_16c"},
        test = {"cpu_mobile_big", "cpu_mobile_mid", "gpu_mobile", "dsp_a_int8", "npu_edge_int8"}},
  Z2 = {about = "phones and accelerators to servers",
        train = {"cpu_mobile_big", "cpu_mobile_mid", "gpu_mobile", "dsp_a_int8", "dsp_b_int8", "npu_edge_int8",
                 "fpga_dataflow"},
        test = {"gpu_server_a_b1", "gpu_server_b_b1", "gpu_server_a_b64", "cpu_server_16c"}},
  Z3 = {about = "batch-1 server GPUs, a class no source belongs to",
        train = {"gpu_server_a_b64", "gpu_server_b_b64", "cpu_desktop_8c", "cpu_server_16c", "cpu_mobile_big",
                 "cpu_mobile_mid", "gpu_mobile", "dsp_a_int8", "dsp_b_int8", "npu_edge_int8", "fpga_dataflow"},
        test = {"gpu_server_a_b1", "gpu_server_b_b1"}},
  Z4 = {about = "accelerators (DSP, NPU, FPGA, phone GPU) from servers and one phone CPU",
        train = {"gpu_server_a_b1", "gpu_server_b_b1", "gpu_server_a_b64", "gpu_server_b_b64", "cpu_desktop_8c",
                 "cpu_server_16c", "cpu_mobile_big"},
        test = {"dsp_a_int8", "dsp_b_int8", "npu_edge_int8", "fpga_dataflow", "gpu_mobile"}},
}
local TASK_ORDER = {"ZD", "Z1", "Z2", "Z3", "Z4"}

--- Names of the zoo's tasks (the same for both spaces).
function M.task_names(space)
  check_space("zoo.task_names", space)
  local out = {}
  for i, k in ipairs(TASK_ORDER) do out[i] = k end
  return out
end

--- A zoo task: {name, space, train = {...}, test = {...}, about, synthetic = true}, or nil, message for an
-- unknown name. name nil = "ZD".
function M.task(space, name)
  check_space("zoo.task", space)
  name = name or "ZD"
  local t = TASKS[name]
  if not t then
    return nil, string.format("unknown zoo task '%s' (known: %s)", tostring(name), table.concat(TASK_ORDER, ", "))
  end
  local function copy(list)
    local out = {}
    for i, v in ipairs(list) do out[i] = v end
    return out
  end
  return {name = name, space = space, train = copy(t.train), test = copy(t.test), about = t.about, synthetic = true}
end

return M
