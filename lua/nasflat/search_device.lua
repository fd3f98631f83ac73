--- Devices for architecture search: "measure this architecture, return ms", and the measurement log.
--
--   local dev = require "nasflat.search_device"
--   local d = dev.dataset{source = src, device = "pixel2", cost_s = 2}      -- simulated: the measured table
--   local d = dev.fn{name = "board", fn = function(arch) return ms end}     -- any Lua function
--   local d = dev.command{template = "ssh board bench {arch}", timeout = 60} -- a shell command per architecture
--   local ms, err = d:measure(arch)        -- a positive number, or nil and what went wrong
--
-- Every device: name, kind, measure(arch) -> ms | nil, msg; cost (simulated seconds charged so far, dataset),
-- measured (count). Failures are values, never errors: a function that raises, a command that fails, times out
-- or prints no number, an architecture the dataset did not measure. dev.measure (below) retries a failure once.
--
--   local log = assert(dev.log("run.csv"))   -- appends; header written when the file is new or empty
--   log:write{arch =, device =, ms =, status =, seconds =, attempt =, round =}   -- one line, flushed at once
--   dev.read_log("run.csv") -> list of records (ms a number or nil), or nil, msg
-- The log is the CSV `time,device,arch,ms,status,seconds,attempt,round` (RFC 4180 cells): each measurement is on
-- disk as soon as it is made, so a killed search loses nothing measured; a search given the same log with
-- resume = true takes earlier successful measurements from it instead of measuring again.
local util = require "nasflat.util"
local results = require "nasflat.results"

local M = {}

M.LOG_HEADER = {"time", "device", "arch", "ms", "status", "seconds", "attempt", "round"}

local function positive_ms(v)
  return type(v) == "number" and v > 0 and v < math.huge
end

--------------------------------------------------------------------------------------------------- dataset
local Dataset = {}
Dataset.__index = Dataset

--- A simulated device: the measured column `device` of a nasflat.source Source; each measurement charges
-- cost_s seconds (simulated, added to self.cost; nothing sleeps). An architecture the data did not measure on
-- the device is a failure.
function M.dataset(opts)
  opts = util.options("search_device.dataset", opts, {source = util.REQUIRED, device = util.REQUIRED, cost_s = 0})
  local src = opts.source
  if type(src) ~= "table" or not src.has_device then
    error("search_device.dataset: option 'source' must be a nasflat.source Source", 2)
  end
  if type(opts.cost_s) ~= "number" or not (opts.cost_s >= 0 and opts.cost_s < math.huge) then
    error("search_device.dataset: option 'cost_s' must be a number of seconds >= 0 (got " .. tostring(opts.cost_s) ..
      ")", 2)
  end
  if not src:has_device(opts.device) then
    return nil, string.format("unknown device '%s' (the %s data has: %s)", tostring(opts.device), src.space_name,
      table.concat(src.devices, ", "))
  end
  return setmetatable({name = opts.device, kind = "dataset", source = src, cost_s = opts.cost_s, cost = 0,
    measured = 0, _ms = src:ms(opts.device)}, Dataset)
end

function Dataset:measure(arch)
  self.measured = self.measured + 1
  self.cost = self.cost + self.cost_s
  local row = self.source:row(arch)
  if not row then return nil, "not an architecture of the " .. self.source.space_name .. " data" end
  local v = self._ms:get(row)
  if v ~= v then return nil, "not measured on " .. self.name .. " in the data" end
  return v
end

--- The true latency of every row of the source (Tensor), for oracles.
function Dataset:truth() return self._ms end

--------------------------------------------------------------------------------------------------- function
local Fn = {}
Fn.__index = Fn

--- A device that calls fn(arch) -> ms (or nil, message). An error raised by fn is a failed measurement.
function M.fn(opts)
  opts = util.options("search_device.fn", opts, {fn = util.REQUIRED, name = "function"})
  if type(opts.fn) ~= "function" then error("search_device.fn: option 'fn' must be a function", 2) end
  return setmetatable({name = opts.name, kind = "function", fn = opts.fn, cost = 0, measured = 0}, Fn)
end

function Fn:measure(arch)
  self.measured = self.measured + 1
  local ok, v, msg = pcall(self.fn, arch)
  if not ok then return nil, "the measuring function raised: " .. tostring(v) end
  if v == nil then return nil, tostring(msg or "the measuring function returned nil") end
  if not positive_ms(v) then return nil, "the measuring function returned " .. tostring(v) .. ", not a positive ms" end
  return v
end

--------------------------------------------------------------------------------------------------- command
local Cmd = {}
Cmd.__index = Cmd

--- A device that runs a shell command per architecture: `template` with {arch} replaced by the architecture
-- (shell-quoted); the last number the command prints on stdout is the latency in ms. A non-zero exit, no number,
-- or more than `timeout` seconds (the command is killed) is a failure, with the command's last line of output.
function M.command(opts)
  opts = util.options("search_device.command", opts, {template = util.REQUIRED, timeout = 600, name = "command"})
  if type(opts.template) ~= "string" or not opts.template:find("{arch}", 1, true) then
    error("search_device.command: option 'template' must be a string containing {arch}", 2)
  end
  if type(opts.timeout) ~= "number" or not (opts.timeout > 0 and opts.timeout < math.huge) then
    error("search_device.command: option 'timeout' must be a positive number of seconds", 2)
  end
  return setmetatable({name = opts.name, kind = "command", template = opts.template, timeout = opts.timeout,
    cost = 0, measured = 0}, Cmd)
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function Cmd:measure(arch)
  self.measured = self.measured + 1
  local cmd = self.template:gsub("{arch}", function() return shell_quote(arch) end)
  local line = string.format("timeout -k 2 %g sh -c %s 2>&1", self.timeout, shell_quote(cmd))
  local p = io.popen(line, "r")
  if not p then return nil, "cannot run the command" end
  local out = p:read("a") or ""
  local _, how, code = p:close()
  if how == "exit" and code == 124 then return nil, string.format("timed out after %g s", self.timeout) end
  local last = out:match("([^\n]*)\n*$") or ""
  if how ~= "exit" or code ~= 0 then
    return nil, string.format("the command failed (%s %s): %s", tostring(how), tostring(code), last:sub(1, 200))
  end
  local v
  for num in out:gmatch("[-+]?%d*%.?%d+[eE][-+]?%d+") do v = num end
  if not v then for num in out:gmatch("[-+]?%d*%.?%d+") do v = num end end
  v = tonumber(v)
  if not positive_ms(v) then return nil, "the command printed no positive number of ms: " .. last:sub(1, 200) end
  return v
end

--------------------------------------------------------------------------------------------------- engine
local Engine = {}
Engine.__index = Engine

--- This machine as the device: each architecture's real network run in nasflat's C engine (nasflat.measure: warm-up,
-- repeats, the median), every measurement appended to `out` in the data's schema and reused when asked again.
function M.engine(opts)
  opts = util.options("search_device.engine", opts, {space = util.REQUIRED, out = util.REQUIRED, batch = 1,
    threads = 1, repeats = 20, warmup = 5, name = "local"})
  if type(opts.out) ~= "string" or opts.out == "" then error("search_device.engine: option 'out' must be a file", 2) end
  return setmetatable({name = opts.name, kind = "engine", opts = opts, cost = 0, measured = 0}, Engine)
end

function Engine:measure(arch)
  self.measured = self.measured + 1
  local o = self.opts
  local ok, r, err = pcall(require("nasflat.measure").run, {space = o.space, archs = {arch}, out = o.out,
    batch = o.batch, threads = o.threads, repeats = o.repeats, warmup = o.warmup})
  if not ok then
    if tostring(r):find("interrupted!", 1, true) then error(r, 0) end   -- Ctrl-C stops the search, not one measure
    return nil, "the engine failed: " .. tostring(r)
  end
  if not r then return nil, tostring(err) end
  local v = r.ms[1]
  if not positive_ms(v) then return nil, "the engine measured no positive ms" end
  return v
end

--------------------------------------------------------------------------------------------------- log
local Log = {}
Log.__index = Log

--- Open (append) the measurement log at `path`. Returns a Log or nil, msg.
function M.log(path)
  if type(path) ~= "string" or path == "" then error("search_device.log: path must be a non-empty string", 2) end
  local f, err = io.open(path, "ab")
  if not f then return nil, string.format("%s: cannot open the measurement log (%s)", path, err) end
  local size = f:seek("end")
  if size == 0 then
    f:write(results.csv_text(M.LOG_HEADER, {}))
    f:flush()
  end
  return setmetatable({path = path, f = f}, Log)
end

function Log:write(r)
  local cells = {os.time(), r.device, r.arch, r.ms, r.status or "ok", r.seconds or 0, r.attempt or 1, r.round or 0}
  local text = results.csv_text(M.LOG_HEADER, {cells}):gsub("^[^\n]*\n", "")
  local ok, err = self.f:write(text)
  if ok then ok, err = self.f:flush() end
  if not ok then return nil, self.path .. ": cannot write the measurement log (" .. tostring(err) .. ")" end
  return true
end

function Log:close()
  if self.f then self.f:close() self.f = nil end
end

-- The cells of one CSV line (RFC 4180 quoting: "a ""b"", c" is one cell).
local function split_csv_line(line)
  local cells, i, n = {}, 1, #line
  while i <= n + 1 do
    if line:sub(i, i) == '"' then
      local buf, j = {}, i + 1
      while j <= n do
        local c = line:sub(j, j)
        if c == '"' then
          if line:sub(j + 1, j + 1) == '"' then buf[#buf + 1] = '"'; j = j + 2
          else j = j + 1 break end
        else buf[#buf + 1] = c; j = j + 1 end
      end
      cells[#cells + 1] = table.concat(buf)
      i = j + 1   -- past the comma
    else
      local j = line:find(",", i, true) or n + 1
      cells[#cells + 1] = line:sub(i, j - 1)
      i = j + 1
    end
  end
  return cells
end

--- The records of a log file: list of {device, arch, ms (number or nil), status, seconds, attempt, round}.
function M.read_log(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local out = {}
  local first = true
  for line in text:gmatch("[^\n]+") do
    if first then first = false
    else
      local cells = split_csv_line(line)
      if #cells >= 8 then   -- a half-written last line (killed mid-write) is skipped
        out[#out + 1] = {device = cells[2], arch = cells[3], ms = tonumber(cells[4]), status = cells[5],
          seconds = tonumber(cells[6]), attempt = tonumber(cells[7]), round = tonumber(cells[8])}
      end
    end
  end
  return out
end

--------------------------------------------------------------------------------------------------- measure
--- Measure `arch` on `device`, retrying a failure once; each attempt's outcome is written to `log` (may be nil)
-- before this returns. Returns ms or nil, msg (after the retry), and the wall seconds spent.
function M.measure(device, arch, log, round)
  local spent = 0
  local ms, err
  for attempt = 1, 2 do
    local t0 = util.now()
    ms, err = device:measure(arch)
    local dt = util.now() - t0
    spent = spent + dt
    if log then
      local ok, lerr = log:write{device = device.name, arch = arch, ms = ms, status = ms and "ok" or err,
        seconds = dt, attempt = attempt, round = round}
      if not ok then return nil, lerr, spent end
    end
    if ms then break end
  end
  return ms, err, spent
end

return M
