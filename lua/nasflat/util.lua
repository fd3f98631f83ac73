--- Small shared helpers: option tables, atomic writes, progress, timing, memory.
local core = require "nasflat.core"

local M = {}

--- Validate an options table against a table of defaults and return a merged copy.
-- Unknown keys raise "<fname>: unknown option 'k' (allowed: a, b, c)". A default of
-- `M.REQUIRED` makes the option mandatory; `M.NIL` documents an option whose default is nil.
M.REQUIRED = setmetatable({}, {__tostring = function() return "<required>" end})
M.NIL = setmetatable({}, {__tostring = function() return "<nil>" end})

function M.options(fname, opts, defaults)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(string.format("%s: options must be a table (got %s)", fname, type(opts)), 3)
  end
  for k in pairs(opts) do
    if type(k) ~= "string" then
      error(string.format("%s: option keys must be strings (got a %s key)", fname, type(k)), 3)
    end
    if defaults[k] == nil then
      local names = {}
      for name in pairs(defaults) do names[#names + 1] = name end
      table.sort(names)
      error(string.format("%s: unknown option '%s' (allowed: %s)", fname, k, table.concat(names, ", ")), 3)
    end
  end
  local out = {}
  for k, def in pairs(defaults) do
    local v = opts[k]
    if v == nil then
      if def == M.REQUIRED then error(string.format("%s: option '%s' is required", fname, k), 3) end
      if def ~= M.NIL then v = def end
    end
    out[k] = v
  end
  return out
end

--- Write `content` to `path` atomically: a temporary file beside it, synced, then renamed (core.write_file, the C
-- core's one atomic writer). Returns true, or nil and a message; on failure nothing is left at `path` or beside it.
-- An empty name, or an existing target that is not a regular file (a device, a directory), is refused.
function M.atomic_write(path, content)
  if type(path) ~= "string" or path == "" then return nil, "cannot write to an empty file name" end
  return core.write_file(path, content)
end

--- Create a directory and its parents (like mkdir -p). Returns true or nil, message.
function M.mkdirs(path)
  if type(path) ~= "string" or path == "" then return nil, "cannot create a directory with an empty name" end
  return core.vae.mkdirs(path)
end

--- Wall-clock seconds (monotonic).
M.now = core.now

--- Peak resident memory of this process in MiB (VmHWM), or nil where /proc is absent.
function M.peak_rss_mib()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local kb = text:match("VmHWM:%s*(%d+)%s*kB")
  return kb and tonumber(kb) / 1024 or nil
end

--- A progress reporter on stderr: silent unless stderr is a terminal (or `force`),
-- rate-limited to one line per `interval` seconds. Returns a function(fmt, ...) and a finish().
function M.progress(opts)
  opts = M.options("progress", opts, {enabled = M.NIL, interval = 0.5})
  local enabled = opts.enabled
  if enabled == nil then enabled = core.isatty(2) end
  local last, shown = -math.huge, false
  local function report(fmt, ...)
    if not enabled then return end
    local t = core.now()
    if t - last < opts.interval then return end
    last = t
    io.stderr:write("\r\027[K", string.format(fmt, ...))
    io.stderr:flush()
    shown = true
  end
  local function finish()
    if enabled and shown then io.stderr:write("\r\027[K") io.stderr:flush() end
  end
  return report, finish
end

--- mean and sample standard deviation of a list (NaN entries skipped); nil when empty.
function M.mean_std(xs)
  local n, s = 0, 0
  for _, x in ipairs(xs) do if x == x then n = n + 1; s = s + x end end
  if n == 0 then return nil end
  local m = s / n
  if n == 1 then return m, 0 end
  local v = 0
  for _, x in ipairs(xs) do if x == x then v = v + (x - m) ^ 2 end end
  return m, math.sqrt(v / (n - 1))
end

--- Split "a,b,c" into {"a","b","c"} (empty pieces dropped, spaces trimmed).
function M.split(s, sep)
  local out = {}
  for piece in string.gmatch(s, "[^" .. (sep or ",") .. "]+") do
    piece = piece:match("^%s*(.-)%s*$")
    if piece ~= "" then out[#out + 1] = piece end
  end
  return out
end

return M
