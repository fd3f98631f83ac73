--- The task suite: which devices are sources (many samples) and which are targets (few samples).
-- The paper's 12 tasks come from `nasflat_tasks.json` in the data directory; ad-hoc tasks are lists of
-- device names; the synthetic zoo has tasks of its own (see nasflat.zoo); `generate` builds new hard tasks
-- from any latency data (METHOD §6) and writes them in the suite file's format (docs/tasks.md).
--
--   tasks.resolve{name=, train=, test=, file=, tasks_file=, space=, devices=}  -> task | nil, msg
--   tasks.load_file(path)                       -> decoded JSON object | nil, msg (size-limited, see below)
--   tasks.load_all{file=, devices=, space=}     -> list of tasks of a suite file | nil, msg
--   tasks.matrix{data=, space=, devices=, exclude=}  -> {devices=, rho=, count=, ...} | nil, msg
--   tasks.generate{space=, sources=, targets=, ...} -> suite (a table in the file format) | nil, msg
--   tasks.difficulty{source=, train=, test=, ...} -> difficulty table
--   tasks.write(suite, path)                    -> true | nil, msg (atomic, exact numbers)
--
-- Task files are read only when they are regular files of at most M.MAX_FILE_BYTES (16 MiB; the paper's
-- file is 5 kB): a directory or a device such as /dev/zero is refused before anything is read, and the read
-- stops at the limit (nf_read_file).
local cjson = require "cjson.safe"
local util = require "nasflat.util"
local core = require "nasflat.core"

local M = {}

--- Paper task names → (space, key in nasflat_tasks.json). Q* are the file's quick-test splits.
M.NAMES = {
  ND = {"nb201", "0"}, N1 = {"nb201", "1"}, N2 = {"nb201", "2"}, N3 = {"nb201", "3"}, N4 = {"nb201", "4"},
  NA = {"nb201", "5"}, NQ = {"nb201", "9999"}, NQ2 = {"nb201", "8989"},
  FD = {"fbnet", "0"}, F1 = {"fbnet", "1"}, F2 = {"fbnet", "2"}, F3 = {"fbnet", "3"}, F4 = {"fbnet", "4"},
  FA = {"fbnet", "5"}, FQ = {"fbnet", "9999"},
}
--- The 12 paper tasks in table order.
M.PAPER = {"ND", "N1", "N2", "N3", "N4", "NA", "FD", "F1", "F2", "F3", "F4", "FA"}

--- Published Spearman ρ with 20 transfer samples (METHOD §9) and our reading of METHOD §10.
M.PUBLISHED = {
  NASFLAT = {ND = 0.959, N1 = 0.967, N2 = 0.857, N3 = 0.962, N4 = 0.959, NA = 0.893,
             FD = 0.961, F1 = 0.809, F2 = 0.871, F3 = 0.814, F4 = 0.734, FA = 0.577},
  MultiPredict = {ND = 0.930, N1 = 0.970, N2 = 0.757, N3 = 0.947, N4 = 0.952, NA = 0.820,
                  FD = 0.960, F1 = 0.756, F2 = 0.567, F3 = 0.434, F4 = 0.763, FA = 0.450},
  HELP = {ND = 0.948, N1 = 0.604, N2 = 0.509, N3 = 0.729, N4 = 0.746, NA = 0.410,
          FD = 0.910, F1 = 0.793, F2 = 0.543, F3 = 0.413, F4 = 0.799, FA = 0.370},
  ["ridge (METHOD §10)"] = {ND = 0.922, N1 = 0.969, N2 = 0.926, N3 = 0.964, N4 = 0.967, NA = 0.937,
                            FD = 0.922, F1 = 0.819, F2 = 0.877, F3 = 0.876, F4 = 0.659, FA = 0.638},
}

--- The largest task file read (bytes).
M.MAX_FILE_BYTES = 16 * 1024 * 1024

local task_names, find_named, check_task, candidates   -- defined below

local function read_json(path)
  local text, err = core.taskgen.read_file(path, M.MAX_FILE_BYTES, "a task file")
  if not text then return nil, err end
  local obj, jerr = cjson.decode(text)
  if obj == nil then return nil, string.format("%s: invalid JSON (%s)", path, jerr) end
  return obj
end

local function string_list(v, what, path)
  if type(v) ~= "table" or #v == 0 then
    return nil, string.format("%s: '%s' must be a non-empty list of device names", path, what)
  end
  for i, name in ipairs(v) do
    if type(name) ~= "string" then
      return nil, string.format("%s: '%s' entry %d is not a device name", path, what, i)
    end
  end
  return v
end

--- Load a task file: either nasflat_tasks.json ({tasks={space={key={train,test}}}}) or a single task
-- {space=, train={...}, test={...}, name=}. Returns the decoded table or nil, msg.
function M.load_file(path)
  local obj, err = read_json(path)
  if not obj then return nil, err end
  if type(obj) ~= "table" then return nil, path .. ": expected a JSON object" end
  return obj
end

--- Check that every name is a device of the dataset; the error lists what the dataset has.
function M.check_devices(names, available, what)
  local set = {}
  for _, d in ipairs(available) do set[d] = true end
  for _, d in ipairs(names) do
    if not set[d] then
      return nil, string.format("unknown %s device '%s'; the dataset has: %s", what, d, table.concat(available, ", "))
    end
  end
  local seen = {}
  for _, d in ipairs(names) do
    if seen[d] then return nil, string.format("%s device '%s' is listed twice", what, d) end
    seen[d] = true
  end
  return true
end

local function check_devices_of(task, devices)
  if devices == nil then return task end
  local ok, err = M.check_devices(task.train, devices, "source")
  if not ok then return nil, err end
  ok, err = M.check_devices(task.test, devices, "target")
  if not ok then return nil, err end
  for _, t in ipairs(task.test) do
    for _, s in ipairs(task.train) do
      if s == t then return nil, string.format("device '%s' is both a source and a target", t) end
    end
  end
  return task
end

local SPACES = {nb201 = true, fbnet = true}

--- The key order of one space of a suite file: numeric keys by value, then the others by name.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local na, nb = tonumber(a), tonumber(b)
    if na and nb then return na < nb end
    if na or nb then return na ~= nil end
    return a < b
  end)
  return keys
end

--- The paper's name of (space, key) in nasflat_tasks.json, if any.
local function paper_name(space, key)
  for name, ref in pairs(M.NAMES) do
    if ref[1] == space and ref[2] == key then return name end
  end
end

--- Every task of a suite object in file order: list of {space, key, name, entry}. The order is the file's
-- `generated.order` when present (generated files), else by space (nb201, fbnet, others) and key.
local function suite_entries(obj)
  local out = {}
  if type(obj.tasks) ~= "table" then return out end
  local spaces = {}
  for sp in pairs(obj.tasks) do spaces[#spaces + 1] = sp end
  table.sort(spaces, function(a, b)
    local ra, rb = a == "nb201" and 0 or a == "fbnet" and 1 or 2, b == "nb201" and 0 or b == "fbnet" and 1 or 2
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  for _, sp in ipairs(spaces) do
    local group = obj.tasks[sp]
    if type(group) == "table" then
      for _, key in ipairs(sorted_keys(group)) do
        local entry = group[key]
        local name = type(entry) == "table" and type(entry.name) == "string" and entry.name or paper_name(sp, key) or key
        out[#out + 1] = {space = sp, key = key, name = name, entry = entry}
      end
    end
  end
  local order = type(obj.generated) == "table" and obj.generated.order
  if type(order) == "table" then
    local rank = {}
    for i, n in ipairs(order) do rank[n] = i end
    table.sort(out, function(a, b)
      local ra, rb = rank[a.name] or math.huge, rank[b.name] or math.huge
      if ra ~= rb then return ra < rb end
      return false
    end)
  end
  return out
end

function task_names(obj)
  local names = {}
  for _, e in ipairs(suite_entries(obj)) do names[#names + 1] = e.name end
  return names
end

function find_named(obj, name)
  for _, e in ipairs(suite_entries(obj)) do
    if e.name == name and type(e.entry) == "table" and (e.entry.name == name or e.key == name) then
      return e.space, e.key, e.entry
    end
  end
end

--- Check one suite entry: lists of device names, a known space, the data's space and devices.
function check_task(task, path, space, devices, key)
  local where = string.format("%s: task %s", path, key or task.name)
  if not SPACES[task.space] then
    return nil, string.format("%s: space '%s' must be nb201 or fbnet", where, tostring(task.space))
  end
  local train, e1 = string_list(task.train, "train", where)
  if not train then return nil, e1 end
  local test, e2 = string_list(task.test, "test", where)
  if not test then return nil, e2 end
  if space and space ~= task.space then
    return nil, string.format("task %s is an %s task, the data is %s", task.name, task.space, space)
  end
  return check_devices_of(task, devices)
end

--- Resolve a task. opts:
--   name      paper task name (ND, N1..N4, NA, FD, F1..F4, FA, NQ, NQ2, FQ) or nil
--   train     list of source device names (ad hoc task; with `test`)
--   test      list of target device names
--   file      a JSON task file (single task, or the suite file with `name`)
--   tasks_file the suite file used for paper names (default <data dir>/nasflat_tasks.json)
--   space     the space of an ad-hoc task
--   devices   the devices the dataset has (required: every name is checked against it)
-- Returns {name=, space=, train={...}, test={...}} or nil, msg.
function M.resolve(opts)
  opts = util.options("tasks.resolve", opts, {
    name = util.NIL, train = util.NIL, test = util.NIL, file = util.NIL, tasks_file = util.NIL,
    space = util.NIL, devices = util.REQUIRED,
  })
  local task
  if opts.train or opts.test then
    if not (opts.train and opts.test) then return nil, "an ad-hoc task needs both train and test devices" end
    task = {name = opts.name or "custom", space = opts.space, train = opts.train, test = opts.test}
  elseif opts.file and not opts.name then
    local obj, err = M.load_file(opts.file)
    if not obj then return nil, err end
    if obj.tasks then return nil, opts.file .. ": a task suite file; name a task (e.g. ND) to pick one" end
    local train, e1 = string_list(obj.train, "train", opts.file)
    if not train then return nil, e1 end
    local test, e2 = string_list(obj.test, "test", opts.file)
    if not test then return nil, e2 end
    if obj.space ~= nil and obj.space ~= "nb201" and obj.space ~= "fbnet" then
      return nil, string.format("%s: 'space' must be \"nb201\" or \"fbnet\" (got %s)", opts.file, tostring(obj.space))
    end
    if obj.space and opts.space and obj.space ~= opts.space then
      return nil, string.format("%s: the task is for %s, the data is %s", opts.file, obj.space, opts.space)
    end
    task = {name = obj.name or "custom", space = obj.space or opts.space, train = train, test = test}
  else
    local name = opts.name or "ND"
    local ref = M.NAMES[name]
    if opts.file then
      -- a suite file given with a name: the file's own task of that name first (generated files), then the
      -- paper's name -> key mapping (nasflat_tasks.json)
      local obj, err = M.load_file(opts.file)
      if not obj then return nil, err end
      local space, key, entry = find_named(obj, name)
      if entry then
        return check_task({name = name, space = space, train = entry.train, test = entry.test,
          difficulty = entry.difficulty}, opts.file, opts.space, opts.devices, key)
      end
      if not ref then
        return nil, string.format("%s: has no task '%s' (it has: %s)", opts.file, name,
          table.concat(task_names(obj), ", "))
      end
    end
    if not ref then
      local names = {}
      for k in pairs(M.NAMES) do names[#names + 1] = k end
      table.sort(names)
      return nil, string.format("unknown task '%s' (known: %s)", name, table.concat(names, ", "))
    end
    if opts.space and opts.space ~= ref[1] then
      return nil, string.format("task %s is an %s task, the data is %s", name, ref[1], opts.space)
    end
    local path = opts.file or opts.tasks_file
    if not path then return nil, "task " .. name .. " needs the task file nasflat_tasks.json (no data directory)" end
    local obj, err = M.load_file(path)
    if not obj then return nil, err end
    local entry = obj.tasks and obj.tasks[ref[1]] and obj.tasks[ref[1]][ref[2]]
    if not entry then return nil, string.format("%s: has no task %s.%s", path, ref[1], ref[2]) end
    local train, e1 = string_list(entry.train, "train", path)
    if not train then return nil, e1 end
    local test, e2 = string_list(entry.test, "test", path)
    if not test then return nil, e2 end
    task = {name = name, space = ref[1], train = train, test = test}
  end
  return check_devices_of(task, opts.devices)
end


--- Every task of a suite file, resolved. opts:
--   file     (required) a suite file ({tasks = {space = {key = {train, test, ...}}}}: nasflat_tasks.json or a
--            file written by `generate`); a single-task file ({space, train, test}) gives a list of one
--   devices  the dataset's device names: every task is checked against them (nil: not checked)
--   space    keep only this space's tasks (needed with `devices` when the file mixes spaces)
-- Returns a list of {name =, space =, key =, train =, test =, difficulty = (generated files)} in file
-- order (`generated.order`, else nb201 then fbnet, keys in numeric order), or nil, msg.
function M.load_all(opts)
  opts = util.options("tasks.load_all", opts, {file = util.REQUIRED, devices = util.NIL, space = util.NIL})
  if type(opts.file) ~= "string" then error("tasks.load_all: option 'file' must be a path", 2) end
  local obj, err = M.load_file(opts.file)
  if not obj then return nil, err end
  if obj.tasks == nil then
    local t, terr = M.resolve{file = opts.file, space = opts.space, devices = opts.devices or {}}
    if not t and opts.devices == nil and terr and terr:find("^unknown") then t = nil end
    if not t then
      if opts.devices ~= nil then return nil, terr end
      -- no device list: check the shape only
      local train, e1 = string_list(obj.train, "train", opts.file)
      if not train then return nil, e1 end
      local test, e2 = string_list(obj.test, "test", opts.file)
      if not test then return nil, e2 end
      t = {name = obj.name or "custom", space = obj.space or opts.space, train = train, test = test}
    end
    return {t}
  end
  if type(obj.tasks) ~= "table" then return nil, opts.file .. ": 'tasks' must be an object" end
  for sp, group in pairs(obj.tasks) do
    if not SPACES[sp] then
      return nil, string.format("%s: 'tasks' has an unknown space '%s' (nb201 or fbnet)", opts.file, tostring(sp))
    end
    if type(group) ~= "table" then return nil, string.format("%s: 'tasks.%s' must be an object", opts.file, sp) end
  end
  local out = {}
  for _, e in ipairs(suite_entries(obj)) do
    if opts.space == nil or e.space == opts.space then
      if type(e.entry) ~= "table" then
        return nil, string.format("%s: task %s.%s is not an object", opts.file, e.space, e.key)
      end
      local t, terr = check_task({name = e.name, space = e.space, key = e.key, train = e.entry.train,
        test = e.entry.test, difficulty = e.entry.difficulty}, opts.file, nil, opts.devices, e.key)
      if not t then return nil, terr end
      out[#out + 1] = t
    end
  end
  if #out == 0 then
    return nil, string.format("%s: no tasks%s", opts.file, opts.space and (" for " .. opts.space) or "")
  end
  return out
end

--------------------------------------------------------------------------------------------------- generation
local function open_source(data, space)
  if type(data) == "table" and data.latency then return data end
  return require("nasflat.source").open{data = data, space = space}
end

local function device_pool(src, devices, exclude)
  local have = {}
  for _, d in ipairs(src.devices) do have[d] = true end
  local pool = {}
  for _, d in ipairs(devices or src.devices) do
    if not have[d] then
      return nil, string.format("unknown device '%s'; the dataset has: %s", d, table.concat(src.devices, ", "))
    end
    pool[#pool + 1] = d
  end
  local drop = {}
  for _, d in ipairs(exclude or {}) do
    if not have[d] then
      return nil, string.format("unknown device '%s' in exclude; the dataset has: %s", d,
        table.concat(src.devices, ", "))
    end
    drop[d] = true
  end
  local out, seen = {}, {}
  for _, d in ipairs(pool) do
    if seen[d] then return nil, string.format("device '%s' is listed twice", d) end
    seen[d] = true
    if not drop[d] then out[#out + 1] = d end
  end
  return out
end

local function check_list(fname, what, v)
  if v == nil then return end
  if type(v) ~= "table" then error(string.format("%s: option '%s' must be a list of device names", fname, what), 3) end
  for i, d in ipairs(v) do
    if type(d) ~= "string" then
      error(string.format("%s: option '%s' entry %d is not a device name", fname, what, i), 3)
    end
  end
end

--- The device × device Spearman matrix. opts: data (a directory, "synthetic", or an open source from
-- nasflat.source.open; default: the data directory), space ("nb201"), devices (default all),
-- exclude (none). Returns {devices =, rho = d × d (NaN where undefined), count = d × d common architectures,
-- seconds =} or nil, msg.
function M.matrix(opts)
  opts = util.options("tasks.matrix", opts, {data = util.NIL, space = "nb201", devices = util.NIL,
    exclude = util.NIL})
  check_list("tasks.matrix", "devices", opts.devices)
  check_list("tasks.matrix", "exclude", opts.exclude)
  local src, err = open_source(opts.data, opts.space)
  if not src then return nil, err end
  local pool, perr = device_pool(src, opts.devices, opts.exclude)
  if not pool then return nil, perr end
  if #pool == 0 then return nil, "no devices left" end
  local t0 = core.now()
  local rho, count = core.taskgen.spearman_matrix(src.latency, pool)
  return {devices = pool, rho = rho, count = count, seconds = core.now() - t0, source = src}
end

local function mean_of(xs)
  local s, n = 0, 0
  for _, x in ipairs(xs) do if x == x then s, n = s + x, n + 1 end end
  return n > 0 and s / n or 0 / 0
end

--- Mean, minimum and maximum rho over the (source, target) pairs (NaN pairs skipped).
local function cross_stats(rho, idx, train, test)
  local xs, lo, hi = {}, math.huge, -math.huge
  for _, s in ipairs(train) do
    for _, t in ipairs(test) do
      local r = rho[idx[s]][idx[t]]
      if r == r then
        xs[#xs + 1] = r
        lo, hi = math.min(lo, r), math.max(hi, r)
      end
    end
  end
  return mean_of(xs), #xs > 0 and lo or 0 / 0, #xs > 0 and hi or 0 / 0
end

local STRUCT = setmetatable({}, {__mode = "k"})

--- METHOD §10's structural features of every architecture of a source, built once per source.
local function struct_features(src)
  local X = STRUCT[src]
  if not X then
    X = src.space:struct_features(src.arch_strings)
    STRUCT[src] = X
  end
  return X
end

M.DIFFICULTY_DEFAULTS = {source = util.REQUIRED, train = util.REQUIRED, test = util.REQUIRED, samples = 20,
  draws = 3, seed = 1, rho = util.NIL, ridge = true}

--- How hard a task is, on the data of `source` (an open source: nasflat.source.open). opts:
--   source, train, test (device names)   required
--   samples = 20   target samples per draw (the few-shot budget)
--   draws = 3      random draws of those samples per target (core.Rng seeded from `seed`)
--   seed = 1
--   rho            the device matrix {devices =, rho =} if already computed (else computed here)
--   ridge = true   fit the structural ridge (false: only the correlation numbers)
-- Returns {mean_cross_rho, min_cross_rho, max_cross_rho, copy_best_source, copy_oracle, ridge, samples,
-- draws, seed, per_target = {device = {...}}}:
--   mean_cross_rho     mean Spearman over every (source, target) pair, over the architectures both measured;
--   copy_best_source   the "copy the best-correlated source" baseline: per target and draw, the source whose
--                      latencies on the k drawn architectures rank them most like the target's (Spearman over
--                      the k; ties to the first source in train order) predicts the target by its own ranking;
--                      scored by Spearman against the target over every architecture both measured; mean over
--                      draws, then over targets;
--   copy_oracle        the same with the source chosen by its full-data Spearman (the best a copy can do);
--   ridge              METHOD §10's structural ridge (nasflat.ridge on space:struct_features, log ms) fitted on
--                      the same k architectures, Spearman over every architecture the target measured.
function M.difficulty(opts)
  opts = util.options("tasks.difficulty", opts, M.DIFFICULTY_DEFAULTS)
  local metrics = require "nasflat.metrics"
  local src = opts.source
  local devs = {}
  for _, d in ipairs(opts.train) do devs[#devs + 1] = d end
  for _, d in ipairs(opts.test) do devs[#devs + 1] = d end
  local mat = opts.rho
  if not mat then
    local rho = core.taskgen.spearman_matrix(src.latency, devs)
    mat = {devices = devs, rho = rho}
  end
  local idx = {}
  for i, d in ipairs(mat.devices) do idx[d] = i end
  local out = {samples = opts.samples, draws = opts.draws, seed = opts.seed, per_target = {}}
  out.mean_cross_rho, out.min_cross_rho, out.max_cross_rho = cross_stats(mat.rho, idx, opts.train, opts.test)
  local X = opts.ridge and struct_features(src) or nil
  local copy_all, oracle_all, ridge_all = {}, {}, {}
  for ti, t in ipairs(opts.test) do
    local rng = core.Rng(core.derive_seed(opts.seed, ti))
    local tms = src:ms(t)
    local measured = src:measured(t)
    local per = {copy_sources = {}}
    -- oracle: the source with the best full-data Spearman
    local best, bs = nil, -math.huge
    for _, s in ipairs(opts.train) do
      local r = mat.rho[idx[s]][idx[t]]
      if r == r and r > bs then best, bs = s, r end
    end
    per.copy_oracle, per.oracle_source = best and bs or 0 / 0, best
    local copies, ridges = {}, {}
    if #measured < math.max(opts.samples, 2) then
      per.note = string.format("%d architectures measured, fewer than %d samples", #measured, opts.samples)
    else
      local truth = opts.ridge and tms:index(measured) or nil
      for _ = 1, opts.draws do
        local pick = rng:sample(#measured, opts.samples)
        local rows = {}
        for i, p in ipairs(pick) do rows[i] = measured[p] end
        local tk = tms:index(rows)
        local cb, cr = nil, -math.huge
        for _, s in ipairs(opts.train) do
          local r = metrics.spearman(src:ms(s):index(rows), tk)
          if r == r and r > cr then cb, cr = s, r end
        end
        per.copy_sources[#per.copy_sources + 1] = cb or false
        copies[#copies + 1] = cb and mat.rho[idx[cb]][idx[t]] or 0 / 0
        if opts.ridge then
          local fit = require("nasflat.ridge").fit{features = X:index(rows), targets_ms = tk}
          ridges[#ridges + 1] = metrics.spearman(fit:predict(X:index(measured)), truth)
        end
      end
    end
    per.copy_best_source = mean_of(copies)
    per.ridge = opts.ridge and mean_of(ridges) or nil
    per.mean_cross_rho = cross_stats(mat.rho, idx, opts.train, {t})
    out.per_target[t] = per
    copy_all[#copy_all + 1] = per.copy_best_source
    oracle_all[#oracle_all + 1] = per.copy_oracle
    ridge_all[#ridge_all + 1] = per.ridge or 0 / 0
  end
  out.copy_best_source = mean_of(copy_all)
  out.copy_oracle = mean_of(oracle_all)
  out.ridge = opts.ridge and mean_of(ridge_all) or nil
  return out
end

--- Side sizes of the bisection of d devices for m sources and k targets: balanced when each side can hold
-- its quota in some orientation, else the most balanced sizes that fit.
local function side_sizes(d, m, k)
  local n0 = d // 2
  if not ((m <= n0 and k <= d - n0) or (k <= n0 and m <= d - n0)) then
    n0 = math.max(m, math.min(n0, d - k))
  end
  return n0
end

--- The candidate tasks of one device pool (indices into devs), best first: every distinct bisection found
-- (best cut first, ties to the earlier restart), each trimmed in both orientations, the harder one first.
-- Returns the list and the number of distinct bisections.
function candidates(rho, devs, pool, m, k, opts, pool_no)
  local d = #pool
  local n0 = side_sizes(d, m, k)
  local w, trim_w = {}, {}
  for a = 1, d do
    w[a], trim_w[a] = {}, {}
    for b = 1, d do
      local r = rho[pool[a]][pool[b]]
      if r ~= r then r = 0 end
      w[a][b] = opts.weight == "rho" and r or -r
      trim_w[a][b] = r
    end
  end
  local runs
  if opts.method == "exact" then
    local side, cut = core.taskgen.bisect_exact(w, {n0 = n0})
    runs = {{side = side, cut = cut}}
  else
    local rng = core.Rng(pool_no == 0 and opts.seed or core.derive_seed(opts.seed, pool_no))
    runs = core.taskgen.kl_restarts(w, {n0 = n0, restarts = opts.restarts, rng = rng})
  end
  local distinct, by_key = {}, {}
  for r, run in ipairs(runs) do
    local key = table.concat(run.side)
    if by_key[key] then
      by_key[key].hits = by_key[key].hits + 1
    else
      by_key[key] = {side = run.side, cut = run.cut, restart = r, hits = 1}
      distinct[#distinct + 1] = by_key[key]
    end
  end
  table.sort(distinct, function(x, y)
    if x.cut ~= y.cut then return x.cut < y.cut end
    return x.restart < y.restart
  end)
  local idx = {}
  for _, i in ipairs(pool) do idx[devs[i]] = i end
  local out = {}
  for _, b in ipairs(distinct) do
    local both = {}
    for orient = 0, 1 do
      -- orientation 0: side 0 of the bisection gives the sources; 1: side 1 does
      local side, n_src = {}, 0
      for a = 1, d do
        side[a] = orient == 0 and b.side[a] or 1 - b.side[a]
        if side[a] == 0 then n_src = n_src + 1 end
      end
      if n_src >= m and d - n_src >= k then
        local trimmed, removed = core.taskgen.trim(trim_w, side, m, k)
        local train, test, rem = {}, {}, {}
        for a = 1, d do
          if trimmed[a] == 0 then train[#train + 1] = devs[pool[a]]
          elseif trimmed[a] == 1 then test[#test + 1] = devs[pool[a]] end
        end
        for i, v in ipairs(removed) do rem[i] = devs[pool[v]] end
        local mean = cross_stats(rho, idx, train, test)
        -- the copy oracle: mean over targets of the best source's rho (lower = no source stands in)
        local orc = {}
        for _, t in ipairs(test) do
          local best = -math.huge
          for _, s in ipairs(train) do
            local r = rho[idx[s]][idx[t]]
            if r == r and r > best then best = r end
          end
          orc[#orc + 1] = best > -math.huge and best or 0 / 0
        end
        local src_side, tgt_side = {}, {}
        for a = 1, d do
          if side[a] == 0 then src_side[#src_side + 1] = devs[pool[a]] else tgt_side[#tgt_side + 1] = devs[pool[a]] end
        end
        both[#both + 1] = {train = train, test = test, mean = mean, oracle = mean_of(orc), orient = orient,
          removed = rem, bisection = b, side_sizes = {n0, d - n0}, source_side = src_side, target_side = tgt_side}
      end
    end
    -- harder first: the lower copy oracle (the mean over targets of the best source's rho: how well the best
    -- source stands in for a target, which is asymmetric), then the lower mean cross rho
    table.sort(both, function(x, y)
      if x.oracle ~= y.oracle then return x.oracle < y.oracle end
      if x.mean ~= y.mean then return x.mean < y.mean end
      return x.orient < y.orient
    end)
    for _, c in ipairs(both) do out[#out + 1] = c end
  end
  return out, #distinct
end

M.GENERATE_DEFAULTS = {
  space = "nb201", sources = util.REQUIRED, targets = util.REQUIRED, seed = 1, count = 1,
  devices = util.NIL, exclude = util.NIL, data = util.NIL, restarts = 32, weight = "rho",
  method = "kl", prefix = util.NIL, difficulty = true, samples = 20, draws = 3,
}

local function sorted_copy(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  table.sort(out)
  return out
end

--- Generate hard transfer tasks (METHOD §6; docs/tasks.md). opts (defaults in M.GENERATE_DEFAULTS):
--   space = "nb201"   the search space of the data
--   sources, targets  (required) m source and k target devices per task (integers >= 1)
--   seed = 1          the Kernighan–Lin restarts' rng (core.Rng) and the difficulty draws
--   count = 1         distinct tasks wanted (from the best distinct bisections; fewer when the restarts
--                     find fewer: the suite's generated.found says how many)
--   devices           the candidate devices (default: every device of the data)
--   exclude           devices left out (e.g. the metric device 1080ti_32 / gold_6240)
--   data              a directory, "synthetic", or an open source (source.open); default: the
--                     data directory
--   restarts = 32     Kernighan–Lin runs from random balanced partitions
--   weight = "rho"    what the minimum cut minimises: "rho" (the correlation across the sides: sources and
--                     targets of different device classes) or "-rho" (the reference code's networkx call with
--                     edge weight -rho, which maximises it; docs/tasks.md)
--   method = "kl"     or "exact" (enumerate every bisection: at most 24 devices; restarts unused)
--   prefix            task names prefix..i (default "NG" for nb201, "FG" for fbnet)
--   difficulty = true compute each task's difficulty (M.difficulty, with `samples` and `draws`)
-- Returns the suite (the file's table: {format, tasks = {space = {name = entry}}, generated = {...}}) or
-- nil, msg for data that cannot give such a task (unknown devices, m + k above the device count).
function M.generate(opts)
  opts = util.options("tasks.generate", opts, M.GENERATE_DEFAULTS)
  local fname = "tasks.generate"
  for _, k in ipairs{"sources", "targets", "count", "restarts", "samples", "draws"} do
    if math.type(opts[k]) ~= "integer" or opts[k] < 1 then
      error(string.format("%s: option '%s' must be an integer >= 1 (got %s)", fname, k, tostring(opts[k])), 2)
    end
  end
  if math.type(opts.seed) ~= "integer" then
    error(string.format("%s: option 'seed' must be an integer (got %s)", fname, tostring(opts.seed)), 2)
  end
  if opts.space ~= "nb201" and opts.space ~= "fbnet" then
    error(string.format("%s: option 'space' must be \"nb201\" or \"fbnet\" (got %s)", fname, tostring(opts.space)), 2)
  end
  if opts.weight ~= "rho" and opts.weight ~= "-rho" then
    error(string.format("%s: option 'weight' must be \"rho\" or \"-rho\" (got %s)", fname, tostring(opts.weight)), 2)
  end
  if opts.method ~= "kl" and opts.method ~= "exact" then
    error(string.format("%s: option 'method' must be \"kl\" or \"exact\" (got %s)", fname, tostring(opts.method)), 2)
  end
  check_list(fname, "devices", opts.devices)
  check_list(fname, "exclude", opts.exclude)
  local t0 = core.now()
  local mat, err = M.matrix{data = opts.data, space = opts.space, devices = opts.devices, exclude = opts.exclude}
  if not mat then return nil, err end
  local src, devs, rho = mat.source, mat.devices, mat.rho
  local d, m, k = #devs, opts.sources, opts.targets
  if m + k > d then
    return nil, string.format("cannot pick %d sources and %d targets from %d devices (sources + targets must be " ..
      "at most the device count)", m, k, d)
  end
  if opts.method == "exact" and d > 24 then
    return nil, string.format("method 'exact' enumerates every bisection: at most 24 devices (got %d)", d)
  end
  local idx = {}
  for i, dev in ipairs(devs) do idx[dev] = i end
  local t_bisect = core.now()
  local picked, picked_keys, n_distinct, n_pools = {}, {}, nil, 0
  local function consider(pool, pool_no)
    local cands, nd = candidates(rho, devs, pool, m, k, opts, pool_no)
    n_distinct = n_distinct or nd
    n_pools = n_pools + 1
    for _, c in ipairs(cands) do
      if #picked >= opts.count then return end
      local key = table.concat(sorted_copy(c.train), ",") .. "|" .. table.concat(sorted_copy(c.test), ",")
      if not picked_keys[key] then
        picked_keys[key] = true
        c.pool = pool_no
        picked[#picked + 1] = c
      end
    end
  end
  local full = {}
  for i = 1, d do full[i] = i end
  consider(full, 0)
  -- more tasks than the full pool's distinct bisections give: leave out, in turn, each device of the tasks
  -- found so far (first task's sources, then its targets, then the next task's), one device per pool
  local left_out, pool_no, p = {}, 0, 1
  while #picked < opts.count and p <= #picked and d - 1 >= m + k do
    local task = picked[p]
    for _, dev in ipairs(task.train) do left_out[#left_out + 1] = dev end
    for _, dev in ipairs(task.test) do left_out[#left_out + 1] = dev end
    p = p + 1
    while #left_out > 0 and #picked < opts.count do
      local drop = table.remove(left_out, 1)
      local pool = {}
      for i = 1, d do if devs[i] ~= drop then pool[#pool + 1] = i end end
      pool_no = pool_no + 1
      consider(pool, pool_no)
      picked[#picked].left_out = picked[#picked].pool == pool_no and drop or picked[#picked].left_out
    end
  end
  local t_done = core.now()
  local prefix = opts.prefix or (opts.space == "nb201" and "NG" or "FG")
  local entries, order = {}, {}
  for i, c in ipairs(picked) do
    local name = prefix .. i
    local entry = {name = name, train = c.train, test = c.test,
      bisection = {cut = c.bisection.cut, restart = c.bisection.restart, found_by = c.bisection.hits,
        side_sizes = c.side_sizes, sources_from_side = c.orient, removed = require("nasflat.json").array(c.removed),
        source_side = c.source_side, target_side = c.target_side, left_out = c.left_out}}
    if opts.difficulty then
      entry.difficulty = M.difficulty{source = src, train = c.train, test = c.test, samples = opts.samples,
        draws = opts.draws, seed = opts.seed, rho = mat}
    else
      local mean, lo, hi = cross_stats(rho, idx, c.train, c.test)
      entry.difficulty = {mean_cross_rho = mean, min_cross_rho = lo, max_cross_rho = hi}
    end
    entries[name] = entry
    order[i] = name
  end
  local info = src.info or {}
  local n0 = side_sizes(d, m, k)
  return {
    format = "nasflat-tasks/1",
    tasks = {[opts.space] = entries},
    generated = {
      by = "nasflat " .. core.version, space = opts.space, sources = m, targets = k, seed = opts.seed,
      count = opts.count, found = #picked, restarts = opts.method == "kl" and opts.restarts or nil,
      distinct_bisections = n_distinct, pools = n_pools, method = opts.method, weight = opts.weight, side_sizes = {n0, d - n0},
      devices = devs, exclude = require("nasflat.json").array(opts.exclude or {}), samples = opts.samples, draws = opts.draws,
      order = order, data = info.data, synthetic = src.synthetic or false, files = info.files,
      zoo_seed = info.zoo_seed, zoo_version = info.zoo_version,
      seconds = {matrix = mat.seconds, bisection_and_trimming = t_done - t_bisect,
        difficulty = core.now() - t_done, total = core.now() - t0},
    },
  }
end

--- The best Kernighan–Lin bisection of a device set, for ordering a heatmap. opts: data, space, devices,
-- exclude (as for matrix), seed (1), restarts (32), weight ("rho"). Returns {devices =, rho =, count =,
-- sides = {names of side A, names of side B}, cut =}, each side ordered by its mean rho to the other side
-- (side A ascending, side B descending: the devices most like the other side meet at the boundary), or
-- nil, msg.
function M.partition(opts)
  opts = util.options("tasks.partition", opts, {data = util.NIL, space = "nb201", devices = util.NIL,
    exclude = util.NIL, seed = 1, restarts = 32, weight = "rho"})
  local mat, err = M.matrix{data = opts.data, space = opts.space, devices = opts.devices, exclude = opts.exclude}
  if not mat then return nil, err end
  local devs, rho = mat.devices, mat.rho
  local d = #devs
  if d < 2 then return nil, "a partition needs at least 2 devices" end
  local w = {}
  for i = 1, d do
    w[i] = {}
    for j = 1, d do
      local r = rho[i][j]
      if r ~= r then r = 0 end
      w[i][j] = opts.weight == "rho" and r or -r
    end
  end
  local runs = core.taskgen.kl_restarts(w, {n0 = d // 2, restarts = opts.restarts, rng = core.Rng(opts.seed)})
  local best = runs[1]
  for _, r in ipairs(runs) do if r.cut < best.cut then best = r end end
  local sides, mean = {{}, {}}, {}
  for i = 1, d do
    local s, n = 0, 0
    for j = 1, d do
      if best.side[j] ~= best.side[i] and rho[i][j] == rho[i][j] then s, n = s + rho[i][j], n + 1 end
    end
    mean[devs[i]] = n > 0 and s / n or 0
    table.insert(sides[best.side[i] + 1], devs[i])
  end
  table.sort(sides[1], function(a, b) if mean[a] ~= mean[b] then return mean[a] < mean[b] end return a < b end)
  table.sort(sides[2], function(a, b) if mean[a] ~= mean[b] then return mean[a] > mean[b] end return a < b end)
  mat.sides, mat.cut = sides, best.cut
  return mat
end

--- The matrix of `mat` (from matrix or partition) as an SVG heatmap document (nasflat.svg) over the
-- devices of `groups` in order: a list of {label =, devices = {...}}.
function M.heatmap(mat, groups, title, note)
  local idx = {}
  for i, dev in ipairs(mat.devices) do idx[dev] = i end
  local labels, spans, values, tips = {}, {}, {}, {}
  for _, g in ipairs(groups) do
    if #g.devices > 0 then
      spans[#spans + 1] = {label = g.label, from = #labels + 1, to = #labels + #g.devices}
      for _, dev in ipairs(g.devices) do labels[#labels + 1] = dev end
    end
  end
  for a, da in ipairs(labels) do
    values[a], tips[a] = {}, {}
    for b, db in ipairs(labels) do
      local r, c = mat.rho[idx[da]][idx[db]], mat.count[idx[da]][idx[db]]
      values[a][b] = r
      tips[a][b] = string.format("%s / %s: rho %s over %d common architectures", da, db,
        r == r and string.format("%.3f", r) or "n/a", c)
    end
  end
  return require("nasflat.svg").heatmap{labels = labels, values = values, groups = spans, title = title,
    note = note, tips = tips}
end

--- Write a suite (from generate) to path atomically, with exact numbers (nasflat.json when present).
function M.write(suite, path)
  if type(suite) ~= "table" then error("tasks.write: suite must be a table", 2) end
  if type(path) ~= "string" then error("tasks.write: path must be a string", 2) end
  return util.atomic_write(path, require("nasflat.json").encode(suite) .. "\n")
end

return M
