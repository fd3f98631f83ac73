--- `nasflat measure`: this machine as a target device (issue 13). Runs each architecture's real network in the C
-- engine and appends its median latency to a CSV in the data's schema (nasflat.measure). Options are parsed by
-- cli.lua's parser (cli._parse via cli.main); a summary on stdout, progress on stderr only on a terminal, errors as
-- `nasflat: <message>` with a non-zero exit status (2 for usage errors).
local core = require "nasflat.core"
local util = require "nasflat.util"

local M = {}

-- cli.fail: the one way a command reports a failure (cli.lua requires this module while it loads: look it up late)
local function fail(msg, code) return require("nasflat.cli").fail(msg, code) end

M.command = {
  name = "measure",
  synopsis = "--space NAME (--archs FILE | --random N [--seed S] | --all) --out FILE [options]",
  summary = "Measure architectures on this machine: each network (NB201's CIFAR-10 network, FBNet's CIFAR-100\n" ..
    "network) runs in nasflat's C engine with seeded random weights; warm-up runs, then timed repeats; the\n" ..
    "median goes to FILE (arch_index,arch_string,<device>, the data's schema), appended as each architecture\n" ..
    "finishes. The order is shuffled (--seed); re-running the same command skips what FILE already holds.\n" ..
    "Beside FILE: FILE.spread.csv (min, quartiles, max per architecture) and FILE.json (CPU, settings,\n" ..
    "versions, load average). FILE can be turned into `nasflat fit --samples` input (arch,ms).",
  options = {
    {name = "space", arg = "NAME", help = "nb201 or fbnet", default = "nb201"},
    {name = "archs", arg = "FILE", help = "architectures, one per line ('-' for stdin; '#' comments)"},
    {name = "random", arg = "N", number = true, int = 1, help = "N distinct architectures drawn uniformly"},
    {name = "all", help = "every architecture (nb201 only: 15,625)"},
    {name = "seed", arg = "S", number = true, int = 0, help = "seed of --random and of the measurement order",
      default = 1},
    {name = "out", arg = "FILE", help = "the latency CSV (created, or appended to and resumed)"},
    {name = "batch", arg = "B", number = true, int = 1, help = "images per forward pass", default = 1},
    {name = "threads", arg = "T", number = true, int = 1, help = "OpenBLAS threads", default = 1},
    {name = "repeats", arg = "R", number = true, int = 1, help = "timed forward passes per architecture",
      default = 20},
    {name = "warmup", arg = "W", number = true, int = 0, help = "untimed passes first", default = 5},
    {name = "clock", arg = "HOW", help = "wall (latency) or cpu (process CPU time: less noisy on a shared " ..
      "machine, not latency; the column gets _cpu)", default = "wall"},
    {name = "device", arg = "NAME", help = "the device column (default: local_<cpu>_b<B>_t<T>)"},
    {name = "engine-seed", arg = "S", number = true, int = 0, help = "seed of the weights and the input",
      default = 0},
    {name = "limit", arg = "N", number = true, int = 0, help = "stop after N architectures (resume later)"},
    {name = "data", arg = "DIR", help = "data directory, for the arch_index column (default: $NASFLAT_DATA, " ..
      "else ../shared/data; none: -1)"},
    {name = "print", help = "print arch,ms for every architecture asked for (measured now or found in FILE) " ..
      "instead of the summary: a measurement command for `nasflat search --measure-cmd`"},
    {name = "quiet", help = "no progress on stderr"},
  },
  epilog = "examples:\n" ..
    "  nasflat measure --space nb201 --random 1000 --seed 1 --out local.csv\n" ..
    "  nasflat measure --space fbnet --random 500 --seed 2 --repeats 10 --out local_fbnet.csv\n" ..
    "  nasflat measure --space nb201 --archs picks.txt --threads 2 --batch 8 --out b8.csv\n" ..
    "  nasflat search ... --measure-cmd \"echo {arch} | nasflat measure --space nb201 --archs - --out local.csv " ..
    "--print\"\n" ..
    "Run it on a quiet machine (nice -n 0, nothing else running): the latencies are wall-clock times.",
}

--- The architectures, or nil, message, exit code.
local function read_archs(o, space)
  local modes = (o.archs and 1 or 0) + (o.all and 1 or 0) + (o.random and 1 or 0)
  if modes ~= 1 then return nil, "measure: give the architectures one way: --archs FILE, --random N or --all", 2 end
  if o.all then
    if space.name ~= "nb201" then
      return nil, "measure: --all needs an enumerable space; fbnet has 9^22 architectures (use --random N)", 2
    end
    return space:enumerate()
  end
  if o.random then
    if space.name == "nb201" and o.random > space:size() then
      return nil, string.format("measure: --random %d exceeds the %d architectures of nb201", o.random, space:size()), 2
    end
    return space:sample(core.Rng(o.seed), o.random)
  end
  local f, err
  if o.archs == "-" then f = io.stdin else f, err = io.open(o.archs, "r") end
  if not f then return nil, string.format("measure: --archs: cannot open %s", err), 1 end
  local name = o.archs == "-" and "stdin" or o.archs
  local list, n = {}, 0
  local okr, rerr = pcall(function()
    for line in f:lines() do
      n = n + 1
      local a = line:match("^%s*(.-)%s*$")
      if a ~= "" and a:sub(1, 1) ~= "#" then
        local code, perr = space:parse(a)
        if not code then error({msg = string.format("%s:%d: %s", name, n, perr)}) end
        list[#list + 1] = space:format(code)
      end
    end
  end)
  if f ~= io.stdin then f:close() end
  if not okr then
    if type(rerr) == "table" then return nil, rerr.msg, 1 end
    return nil, string.format("measure: --archs: cannot read %s (%s)", name, tostring(rerr)), 1
  end
  if #list == 0 then return nil, "measure: " .. name .. ": no architectures", 1 end
  return list
end

function M.command.main(o)
  if o.space ~= "nb201" and o.space ~= "fbnet" then
    return fail("measure: --space must be nb201 or fbnet (got '" .. tostring(o.space) .. "')", 2)
  end
  if not o.out then return fail("measure: --out FILE is required", 2) end
  if o.clock ~= "wall" and o.clock ~= "cpu" then
    return fail("measure: --clock must be wall or cpu (got '" .. tostring(o.clock) .. "')", 2)
  end
  if o.threads > 256 then return fail("measure: --threads must be at most 256", 2) end
  if o.batch > 4096 then return fail("measure: --batch must be at most 4096", 2) end
  local space = require("nasflat.space").get(o.space)
  local archs, aerr, acode = read_archs(o, space)
  if not archs then return fail(aerr, acode) end
  local report, finish = function() end, function() end
  if not o.quiet then report, finish = util.progress{} end
  local r, err = require("nasflat.measure").run{space = o.space, archs = archs, out = o.out, batch = o.batch,
    threads = o.threads, repeats = o.repeats, warmup = o.warmup, seed = o.seed, engine_seed = o["engine-seed"],
    clock = o.clock,
    device = o.device, data = o.data, limit = o.limit,
    progress = function(i, n, _, ms) report("measure: %d/%d  last %.3f ms", i, n, ms) end}
  finish()
  if not r then return fail(err) end
  if o.print then
    local rows = {"arch,ms"}
    for i, a in ipairs(r.archs) do
      if r.ms[i] then rows[#rows + 1] = string.format("%s,%.6g", a, r.ms[i]) end
    end
    local ok, werr = io.stdout:write(table.concat(rows, "\n"), "\n")
    if ok then ok, werr = io.stdout:flush() end
    if not ok then return fail("cannot write to standard output (" .. tostring(werr) .. ")") end
    return 0
  end
  local sorted = {}
  for i, v in ipairs(r.medians) do sorted[i] = v end
  table.sort(sorted)
  local line = string.format("measured %d architecture%s on %s in %.1f s (%d already in %s, %d in the list)",
    r.measured, r.measured == 1 and "" or "s", r.device, r.seconds, r.skipped, r.out, r.total)
  if #sorted > 0 then
    line = line .. string.format("; median latency %.3f ms (min %.3f, max %.3f)", sorted[(#sorted + 1) // 2],
      sorted[1], sorted[#sorted])
  end
  local ok, werr = io.stdout:write(line, "\n")
  if ok then ok, werr = io.stdout:flush() end
  if not ok then return fail("cannot write to standard output (" .. tostring(werr) .. ")") end
  return 0
end

return M
