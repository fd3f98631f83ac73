--- The task suite: which devices are sources (many samples) and which are targets (few samples).
-- The paper's 12 tasks come from `nasflat_tasks.json` in the data directory; ad-hoc tasks are lists of
-- device names; the synthetic zoo has tasks of its own (see nasflat.zoo).
local cjson = require "cjson.safe"
local util = require "nasflat.util"

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

local function read_json(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, string.format("%s: cannot open (%s)", path, err) end
  local text = f:read("a")
  f:close()
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
  local ok, err = M.check_devices(task.train, opts.devices, "source")
  if not ok then return nil, err end
  ok, err = M.check_devices(task.test, opts.devices, "target")
  if not ok then return nil, err end
  for _, t in ipairs(task.test) do
    for _, s in ipairs(task.train) do
      if s == t then return nil, string.format("device '%s' is both a source and a target", t) end
    end
  end
  return task
end

return M
