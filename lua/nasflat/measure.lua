--- nasflat.measure: this machine as a target device (issue 13 item 2). Each architecture's network runs in the C
-- engine (nasflat.engine): warm-up runs, then timed repeats; its median goes to a latency CSV in the data's schema,
-- appended (and flushed) as each architecture finishes, so a killed run loses at most the architecture in flight
-- and a re-run skips every architecture already in the file.
--
--   measure.run{space =, archs =, out =, batch = 1, threads = 1, repeats = 20, warmup = 5, seed = 1,
--               engine_seed = 0, clock = "wall", device = <default name>, data = <data dir or nil>, progress = fn,
--               limit = nil}
--     -> summary | nil, message
--   space: nb201 | fbnet; archs: a list of arch strings (either form; written canonical, duplicates dropped);
--   out: the CSV path. Its columns: arch_index,arch_string,<device> (ms, the median of the repeats). arch_index is
--   the data's index of the architecture (nb201_latency.csv / fbnet_latency.csv of `data`, or of the data
--   directory nasflat.data.dir() finds), -1 when the architecture is not in the data or no data is found;
--   the order of the rows is the (shuffled) measurement order.
--   clock: "wall" (latency: wall-clock time of a forward pass) or "cpu" (the process's CPU time of a pass: on a
--   machine shared with other work, it leaves out the time spent waiting for a core; not latency).
--   Beside it: <out>.spread.csv (arch_string,median_ms,min_ms,q25_ms,q75_ms,max_ms,repeats,cpu_median_ms: the
--   quantiles of the chosen clock, and the median of the CPU clock, same order) and
--   <out>.json (the machine and settings of each session: CPU model, cores, threads, batch, repeats, warm-up,
--   seeds, versions of nasflat, Lua and OpenBLAS, load average at the start and end, counts).
--   The architectures still to measure are shuffled with `seed`, so slow drift of the machine (heat, other
--   load) does not line up with any structure of the list. threads: OpenBLAS threads (set for the run).
--   limit: measure at most this many (then stop; a later run resumes). progress(done, total, arch, ms).
--   Failures of the world (unwritable out, an existing out with another header, a bad arch string) return
--   nil, message; nothing is measured then.
--   summary: {out, device, measured, skipped, total, seconds, medians (this run's, in measurement order), archs (the
--   canonical list, duplicates dropped, in the order given), ms (each one's latency: from the file or this run;
--   nil for those a limit left out), sidecar, spread}
--
--   measure.device_name{batch =, threads =, clock = "wall"} -> "local_<cpu>_b<batch>_t<threads>" (+ "_cpu")
--   measure.cpu_model() -> the "model name" of /proc/cpuinfo (or "unknown"), number of logical CPUs
--   measure.read{path =, space =} -> {archs = {...}, ms = {...}, device = name, index = {arch -> ms}} | nil, message
local core = require "nasflat.core"
local util = require "nasflat.util"
local json = require "nasflat.json"

local M = {}

function M.cpu_model()
  local f = io.open("/proc/cpuinfo", "r")
  if not f then return "unknown", 0 end
  local name, n = nil, 0
  for line in f:lines() do
    local v = line:match("^model name%s*:%s*(.-)%s*$")
    if v then
      name = name or v
      n = n + 1
    end
  end
  f:close()
  return name or "unknown", n
end

--- "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" -> "intel_xeon_platinum_8375c"
local function slug(name)
  local s = name:lower():gsub("%(r%)", ""):gsub("%(tm%)", ""):gsub("@.*$", ""):gsub("%f[%w]cpu%f[%W]", "")
  s = s:gsub("[^%w]+", "_"):gsub("^_+", ""):gsub("_+$", "")
  return s ~= "" and s or "unknown"
end

function M.device_name(opts)
  local o = util.options("measure.device_name", opts, {batch = 1, threads = 1, clock = "wall"})
  return string.format("local_%s_b%d_t%d%s", slug((M.cpu_model())), o.batch, o.threads,
    o.clock == "cpu" and "_cpu" or "")
end

local function loadavg()
  local f = io.open("/proc/loadavg", "r")
  if not f then return nil end
  local a, b, c = f:read("l"):match("^(%S+)%s+(%S+)%s+(%S+)")
  f:close()
  return {tonumber(a), tonumber(b), tonumber(c)}
end

--- The data's arch_index of each canonical arch string of the space (nil when no data is found).
local function data_index(space, dir)
  dir = dir or require("nasflat.data").dir()
  if not dir then return nil end
  local f = io.open(dir .. "/" .. space.name .. "_latency.csv", "r")
  if not f then return nil end
  local idx = {}
  local first = true
  for line in f:lines() do
    if first then
      first = false
    else
      local i, a = line:match("^(%d+),([^,]+)")
      local code = a and space:parse(a)
      if code then idx[space:format(code)] = tonumber(i) end
    end
  end
  f:close()
  return idx
end

--- Split one CSV line of our own files (no quoting: arch strings hold no commas).
local function fields(line)
  local out = {}
  for v in (line .. ","):gmatch("([^,]*),") do out[#out + 1] = v end
  return out
end

--- Read a measurement file (or any latency CSV with one device column): rows in file order.
function M.read(opts)
  local o = util.options("measure.read", opts, {path = util.REQUIRED, space = util.REQUIRED})
  local space = require("nasflat.space").get(o.space)
  local f, err = io.open(o.path, "rb")
  if not f then return nil, string.format("%s: cannot open (%s)", o.path, err) end
  local text = f:read("a")
  f:close()
  local out = {archs = {}, ms = {}, index = {}, partial = false}
  local n = 0
  local pos = 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    if not nl then out.partial = true break end   -- a line cut by a kill: ignored (and dropped on resume)
    local line = text:sub(pos, nl - 1):gsub("\r$", "")
    pos = nl + 1
    n = n + 1
    local c = fields(line)
    if n == 1 then
      if #c ~= 3 or c[1] ~= "arch_index" or c[2] ~= "arch_string" then
        return nil, string.format("%s:1: expected the header arch_index,arch_string,<device> (got '%s')", o.path,
          line:sub(1, 80))
      end
      out.device = c[3]
    elseif line ~= "" then
      local code, perr = space:parse(c[2] or "")
      if #c ~= 3 or not code then
        return nil, string.format("%s:%d: %s", o.path, n, code and "expected 3 fields" or perr)
      end
      local ms = tonumber(c[3])
      if not ms or ms <= 0 then return nil, string.format("%s:%d: bad latency '%s'", o.path, n, c[3]) end
      local a = space:format(code)
      out.archs[#out.archs + 1], out.ms[#out.ms + 1] = a, ms
      out.index[a] = ms
    end
  end
  if n == 0 then return nil, string.format("%s: empty file (no header)", o.path) end
  out.good_bytes = pos - 1
  return out
end

local function quantile(sorted, q)
  local n = #sorted
  local h = (n - 1) * q + 1
  local lo = math.floor(h)
  local hi = math.min(lo + 1, n)
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo])
end

local function fmt(x) return string.format("%.6g", x) end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local DEFAULTS = {space = util.REQUIRED, archs = util.REQUIRED, out = util.REQUIRED, batch = 1, threads = 1,
  repeats = 20, warmup = 5, seed = 1, engine_seed = 0, clock = "wall", device = util.NIL, data = util.NIL, progress = util.NIL,
  limit = util.NIL}
M.DEFAULTS = DEFAULTS

local function check_int(name, v, lo, hi)
  if math.type(v) ~= "integer" or v < lo or v > hi then
    error(string.format("measure.run: option '%s' must be an integer in %d..%d (got %s)", name, lo, hi, tostring(v)), 3)
  end
end

function M.run(opts)
  local o = util.options("measure.run", opts, DEFAULTS)
  if o.space ~= "nb201" and o.space ~= "fbnet" then
    error(string.format("measure.run: option 'space' must be nb201 or fbnet (got %s)", tostring(o.space)), 2)
  end
  if type(o.archs) ~= "table" then error("measure.run: option 'archs' must be a list of arch strings", 2) end
  if type(o.out) ~= "string" or o.out == "" then error("measure.run: option 'out' must be a file name", 2) end
  check_int("batch", o.batch, 1, 4096)
  check_int("threads", o.threads, 1, 256)
  check_int("repeats", o.repeats, 1, 1000000)
  check_int("warmup", o.warmup, 0, 1000000)
  check_int("seed", o.seed, -math.maxinteger, math.maxinteger)
  check_int("engine_seed", o.engine_seed, -math.maxinteger, math.maxinteger)
  if o.limit ~= nil then check_int("limit", o.limit, 0, math.maxinteger) end
  if o.progress ~= nil and type(o.progress) ~= "function" then error("measure.run: option 'progress' must be a function", 2) end
  if o.clock ~= "wall" and o.clock ~= "cpu" then
    error(string.format("measure.run: option 'clock' must be wall or cpu (got %s)", tostring(o.clock)), 2)
  end
  local space = require("nasflat.space").get(o.space)
  local device = o.device or M.device_name{batch = o.batch, threads = o.threads, clock = o.clock}
  if type(device) ~= "string" or not device:match("^[%w_%.%-]+$") then
    return nil, string.format("measure: device name '%s' must be letters, digits, '_', '.', '-'", tostring(device))
  end

  -- the architectures, canonical, first occurrence kept
  local list, seen = {}, {}
  for i, a in ipairs(o.archs) do
    if type(a) ~= "string" then error(string.format("measure.run: archs[%d] is not a string", i), 2) end
    local code, perr = space:parse(a)
    if not code then return nil, string.format("archs[%d]: %s", i, perr) end
    local c = space:format(code)
    if not seen[c] then seen[c] = true list[#list + 1] = c end
  end

  -- resume: what the file already holds
  local done, existing = {}, nil
  local ms_of = {}   -- canonical arch -> ms: from the file, then from this run
  if file_exists(o.out) then
    local prev, rerr = M.read{path = o.out, space = o.space}
    if not prev then return nil, rerr end
    if prev.device ~= device then
      return nil, string.format("%s: holds device column '%s', this run measures '%s' (use another --out or --device)",
        o.out, prev.device, device)
    end
    if prev.partial then   -- drop the line a kill cut short, keep the rest
      local f = assert(io.open(o.out, "rb"))
      local text = f:read("a")
      f:close()
      local ok, werr = util.atomic_write(o.out, text:sub(1, prev.good_bytes))
      if not ok then return nil, werr end
    end
    for i, a in ipairs(prev.archs) do
      done[a] = true
      ms_of[a] = prev.ms[i]
    end
    existing = #prev.archs
  end
  local todo = {}
  for _, a in ipairs(list) do
    if not done[a] then todo[#todo + 1] = a end
  end
  local skipped = #list - #todo
  core.Rng(o.seed):shuffle(todo)
  if o.limit and #todo > o.limit then
    for i = #todo, o.limit + 1, -1 do todo[i] = nil end
  end

  -- open the outputs before measuring anything
  local new = not existing
  local f, ferr = io.open(o.out, "ab")
  if not f then return nil, string.format("%s: cannot write (%s)", o.out, ferr) end
  local spread_path = o.out .. ".spread.csv"
  local new_spread = not file_exists(spread_path)
  local g, gerr = io.open(spread_path, "ab")
  if not g then f:close() return nil, string.format("%s: cannot write (%s)", spread_path, gerr) end
  local function put(h, s)
    local ok, werr = h:write(s)
    if ok then ok, werr = h:flush() end
    return ok, werr
  end
  local function close_all() f:close() g:close() end
  if new then
    local ok, werr = put(f, "arch_index,arch_string," .. device .. "\n")
    if not ok then close_all() return nil, string.format("%s: write failed (%s)", o.out, tostring(werr)) end
  end
  if new_spread then
    local ok, werr = put(g, "arch_string,median_ms,min_ms,q25_ms,q75_ms,max_ms,repeats,cpu_median_ms\n")
    if not ok then close_all() return nil, string.format("%s: write failed (%s)", spread_path, tostring(werr)) end
  end

  -- the session record
  local cpu, ncpu = M.cpu_model()
  local sidecar = o.out .. ".json"
  local sessions = {}
  do
    local sf = io.open(sidecar, "rb")
    if sf then
      local prev = require("cjson.safe").decode(sf:read("a") or "")
      sf:close()
      if type(prev) == "table" and type(prev.sessions) == "table" then sessions = prev.sessions end
    end
  end
  local index = data_index(space, o.data)
  local session = {
    started = os.date("!%Y-%m-%dT%H:%M:%SZ"), cpu = cpu, logical_cpus = ncpu, device = device, space = o.space,
    batch = o.batch, threads = o.threads, repeats = o.repeats, warmup = o.warmup, seed = o.seed,
    engine_seed = o.engine_seed, clock = o.clock, to_measure = #todo, already_in_file = existing or 0,
    arch_index = index and "the data's arch_index; -1 when not in the data" or "-1 (no data directory found)",
    versions = {nasflat = core.version, lua = _VERSION, openblas = core.engine.blas_config()},
    loadavg_start = loadavg(),
    timing = (o.clock == "cpu" and "process CPU time" or "wall clock") ..
      " per forward pass; the CSV holds the median of the repeats",
  }
  sessions[#sessions + 1] = session
  local function write_sidecar()
    return util.atomic_write(sidecar, json.encode{file = o.out, sessions = sessions} .. "\n")
  end
  local ok, serr = write_sidecar()
  if not ok then close_all() return nil, serr end

  local old_threads = core.get_threads()
  core.set_threads(o.threads)
  local t0 = core.now()
  local measured, medians = 0, {}
  for i, a in ipairs(todo) do
    local e, eerr = core.engine.new{space = o.space, arch = a, batch = o.batch, seed = o.engine_seed}
    if not e then
      core.set_threads(old_threads)
      close_all()
      return nil, string.format("%s: %s", a, eerr)
    end
    local wall, cpu_ms = e:bench{warmup = o.warmup, repeats = o.repeats}
    e:free()
    local ms = o.clock == "cpu" and cpu_ms or wall
    table.sort(ms)
    table.sort(cpu_ms)
    local med = quantile(ms, 0.5)
    local idx = index and index[a] or -1
    local wok, werr = put(f, string.format("%d,%s,%s\n", idx, a, fmt(med)))
    if wok then
      wok, werr = put(g, string.format("%s,%s,%s,%s,%s,%s,%d,%s\n", a, fmt(med), fmt(ms[1]),
        fmt(quantile(ms, 0.25)), fmt(quantile(ms, 0.75)), fmt(ms[#ms]), #ms, fmt(quantile(cpu_ms, 0.5))))
    end
    if not wok then
      core.set_threads(old_threads)
      close_all()
      return nil, string.format("%s: write failed after %d architectures (%s)", o.out, measured, tostring(werr))
    end
    measured = measured + 1
    medians[#medians + 1] = med
    ms_of[a] = med
    if o.progress then o.progress(i, #todo, a, med) end
  end
  core.set_threads(old_threads)
  close_all()
  session.finished = os.date("!%Y-%m-%dT%H:%M:%SZ")
  session.seconds = core.now() - t0
  session.measured = measured
  session.loadavg_end = loadavg()
  ok, serr = write_sidecar()
  if not ok then return nil, serr end
  local archs_ms = {}
  for i, a in ipairs(list) do archs_ms[i] = ms_of[a] end
  return {out = o.out, device = device, measured = measured, skipped = skipped, total = #list, archs = list,
    ms = archs_ms,
    seconds = session.seconds, medians = medians, sidecar = sidecar, spread = spread_path}
end

return M
