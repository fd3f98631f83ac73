--- `nasflat tasks ...`: generate, list, show and compare transfer tasks (docs/tasks.md), and the SVG heatmap of
-- `nasflat data --svg`. Options are parsed by cli.lua's parser (cli._parse, cli._usage_of); results on stdout
-- (a table, or JSON with --json), errors as `nasflat: <message>` on stderr with a non-zero exit status.
local util = require "nasflat.util"

local M = {}

-- cli.fail: the one way a command reports a failure (cli.lua requires this module while it loads: look it up late)
local function fail(msg, code) return require("nasflat.cli").fail(msg, code) end

local function fmt(x, digits)
  if x == nil or x ~= x then return "-" end
  return string.format("%." .. (digits or 3) .. "f", x)
end

local function json_out(v)
  io.stdout:write(require("nasflat.json").encode(v), "\n")
end

local function open_source(data, space)
  if not data then
    local dir = require("nasflat.data").dir()
    data = dir or "synthetic"
  end
  return require("nasflat.source").open{data = data, space = space}
end

local DATA_OPT = {name = "data", arg = "DIR", help = "data directory, or 'synthetic' for the device zoo " ..
  "(default: $NASFLAT_DATA, else ../shared/data, else synthetic)"}
local SPACE_OPT = {name = "space", arg = "NAME", help = "nb201 or fbnet", default = "nb201"}
local JSON_OPT = {name = "json", help = "print one JSON object instead of the table"}

local SUB = {}

SUB.generate = {
  name = "tasks generate",
  synopsis = "--sources M --targets K [options]",
  summary = "Generate hard transfer tasks from a latency data set (METHOD §6): the device × device Spearman\n" ..
    "matrix, Kernighan–Lin bisections of the device graph (minimum correlation across the sides), each side\n" ..
    "trimmed to M sources and K targets by removing the device most correlated with the other side. Each\n" ..
    "task's difficulty is computed: mean cross-side rho, the copy-best-source baseline and the structural\n" ..
    "ridge with 20 samples. Writes the suite file that `nasflat run --task-file FILE --task NAME` reads.",
  options = {
    DATA_OPT, SPACE_OPT,
    {name = "sources", arg = "M", number = true, int = 1, help = "source devices per task"},
    {name = "targets", arg = "K", number = true, int = 1, help = "target devices per task"},
    {name = "count", arg = "N", number = true, int = 1, help = "distinct tasks wanted", default = 1},
    {name = "devices", arg = "D,..", help = "candidate devices (default: all of the data's)"},
    {name = "exclude", arg = "D,..", help = "devices left out (e.g. the metric device 1080ti_32 or gold_6240)"},
    {name = "seed", arg = "S", number = true, int = 0, help = "seed of the restarts and difficulty draws",
      default = 1},
    {name = "restarts", arg = "R", number = true, int = 1, help = "Kernighan–Lin restarts", default = 32},
    {name = "weight", arg = "W", help = "rho: the cut minimises the correlation across the sides; -rho: the " ..
      "reference code's call (maximises it)", default = "rho"},
    {name = "method", arg = "HOW", help = "kl, or exact (every bisection; at most 24 devices)", default = "kl"},
    {name = "prefix", arg = "P", help = "task names P1, P2.. (default NG for nb201, FG for fbnet)"},
    {name = "samples", arg = "K", number = true, int = 2, help = "samples of the difficulty baselines",
      default = 20},
    {name = "draws", arg = "N", number = true, int = 1, help = "random draws of those samples", default = 3},
    {name = "no-difficulty", help = "skip the baselines (only the correlations)"},
    {name = "out", arg = "FILE", help = "write the suite file here (atomically)"},
    {name = "svg", arg = "FILE", help = "write the Spearman heatmap, ordered by the first task, as SVG"},
    JSON_OPT,
  },
  epilog = "examples:\n  nasflat tasks generate --space nb201 --sources 5 --targets 5 --count 3 --out gen.json\n" ..
    "  nasflat tasks generate --data synthetic --sources 3 --targets 3 --out zoo.json\n" ..
    "  nasflat run --task-file gen.json --task NG1 --predictor hybrid",
}

SUB.list = {
  name = "tasks list",
  synopsis = "[--task-file FILE] [options]",
  summary = "List the tasks of a suite file, or of the built-in suite: the paper's tasks (nasflat_tasks.json in\n" ..
    "the data directory) and the synthetic zoo's tasks.",
  options = {
    DATA_OPT,
    {name = "task-file", arg = "FILE", help = "a suite file (nasflat_tasks.json or one written by generate)"},
    JSON_OPT,
  },
}

SUB.show = {
  name = "tasks show",
  synopsis = "NAME [--task-file FILE] [options]",
  summary = "Show one task: its source and target devices and its difficulty (stored in a generated file, or\n" ..
    "computed on the data with --difficulty).",
  options = {
    DATA_OPT,
    {name = "task-file", arg = "FILE", help = "a suite file (default: the built-in suite)"},
    {name = "difficulty", help = "compute the difficulty on the data (cross rho, copy-best-source, ridge)"},
    {name = "seed", arg = "S", number = true, int = 0, help = "seed of the difficulty draws", default = 1},
    JSON_OPT,
  },
}

SUB.compare = {
  name = "tasks compare",
  synopsis = "[options]",
  summary = "Regenerate each of the paper's tasks of a space (same numbers of sources and targets, same data)\n" ..
    "and compare: device overlap and difficulty side by side (docs/tasks.md).",
  options = {
    DATA_OPT, SPACE_OPT,
    {name = "weight", arg = "W,..", help = "rho, -rho, or both (a comma list)", default = "rho"},
    {name = "seed", arg = "S", number = true, int = 0, help = "seed", default = 1},
    {name = "restarts", arg = "R", number = true, int = 1, help = "Kernighan–Lin restarts", default = 32},
    {name = "count", arg = "N", number = true, int = 1, help = "generate N tasks per paper task and report " ..
      "the one closest to it", default = 1},
    {name = "exclude", arg = "D,..", help = "devices left out"},
    JSON_OPT,
  },
  epilog = "columns: gen = which generated task (by rank) overlaps the paper's most; src/tgt overlap = paper " ..
    "sources among its sources, paper targets among its targets; swapped = the same with its sources and " ..
    "targets exchanged (of m + k)",
}

local ORDER = {"generate", "list", "show", "compare"}

M.command = {
  name = "tasks",
  synopsis = "<generate|list|show|compare> [options]",
  summary = "Transfer tasks: generate hard ones from the data (METHOD §6), list and show suites, compare with\n" ..
    "the paper's suite. `nasflat tasks <subcommand> --help` shows a subcommand's options.",
  options = {},
  epilog = "subcommands:\n" ..
    "  generate  build tasks: Spearman matrix, Kernighan–Lin bisection, trimming, difficulty\n" ..
    "  list      the tasks of the built-in suite or of a file\n" ..
    "  show      one task's devices and difficulty\n" ..
    "  compare   regenerate the paper's tasks and compare",
}

--------------------------------------------------------------------------------------------------- generate
local function print_suite(suite, out)
  local g = suite.generated
  local lines = {}
  local function line(s) lines[#lines + 1] = s end
  line(string.format("%d %s task%s (%d sources, %d targets; %s%s, seed %d, weight %s) from %d devices%s",
    g.found, g.space, g.found == 1 and "" or "s", g.sources, g.targets, g.method,
    g.restarts and (" " .. g.restarts .. " restarts") or "", g.seed, g.weight, #g.devices,
    out and (" -> " .. out) or ""))
  if g.found < g.count then
    line(string.format("  (asked for %d: only %d distinct tasks found)", g.count, g.found))
  end
  for _, name in ipairs(g.order) do
    local e = suite.tasks[g.space][name]
    local df = e.difficulty
    line(string.format("%-6s cross rho %s  copy-best-source %s (oracle %s)  ridge@%d %s", name,
      fmt(df.mean_cross_rho), fmt(df.copy_best_source), fmt(df.copy_oracle), g.samples, fmt(df.ridge)))
    line("  sources: " .. table.concat(e.train, ", "))
    line("  targets: " .. table.concat(e.test, ", "))
  end
  local sec = g.seconds
  line(string.format("time: matrix %.3f s, bisection + trimming %.3f s, difficulty %.2f s, total %.2f s",
    sec.matrix, sec.bisection_and_trimming, sec.difficulty, sec.total))
  io.stdout:write(table.concat(lines, "\n"), "\n")
end

local function split_opt(v)
  if v == nil then return nil end
  return util.split(v)
end

local function generate_main(o)
  local tasks = require "nasflat.tasks"
  if not o.sources or not o.targets then return fail("tasks generate: --sources and --targets are required", 2) end
  if o.weight ~= "rho" and o.weight ~= "-rho" then
    return fail("--weight must be rho or -rho (got '" .. o.weight .. "')", 2)
  end
  if o.method ~= "kl" and o.method ~= "exact" then
    return fail("--method must be kl or exact (got '" .. o.method .. "')", 2)
  end
  if o.space ~= "nb201" and o.space ~= "fbnet" then
    return fail("--space must be nb201 or fbnet (got '" .. o.space .. "')", 2)
  end
  local src, err = open_source(o.data, o.space)
  if not src then return fail(err) end
  local suite, gerr = tasks.generate{data = src, space = o.space, sources = o.sources, targets = o.targets,
    count = o.count, devices = split_opt(o.devices), exclude = split_opt(o.exclude), seed = o.seed,
    restarts = o.restarts, weight = o.weight, method = o.method, prefix = o.prefix, samples = o.samples,
    draws = o.draws, difficulty = not o["no-difficulty"]}
  if not suite then return fail(gerr) end
  if o.out then
    local ok, werr = tasks.write(suite, o.out)
    if not ok then return fail(werr) end
  end
  if o.svg then
    local g = suite.generated
    local first = suite.tasks[g.space][g.order[1]]
    local mat = tasks.matrix{data = src, space = o.space, devices = g.devices}
    local used = {}
    for _, d in ipairs(first.train) do used[d] = true end
    for _, d in ipairs(first.test) do used[d] = true end
    local function rest(list)
      local out = {}
      for _, d in ipairs(list) do if not used[d] then out[#out + 1] = d end end
      return out
    end
    local b = first.bisection
    local doc = tasks.heatmap(mat, {{label = "source side", devices = rest(b.source_side)},
      {label = "sources", devices = first.train}, {label = "targets", devices = first.test},
      {label = "target side", devices = rest(b.target_side)}},
      string.format("%s: device Spearman matrix, ordered by task %s", g.space, g.order[1]),
      string.format("%s, %d devices; the bisection's source side (trimmed away, then %s's sources) and target " ..
      "side (%s's targets, then trimmed away); cross rho %s", src.synthetic and "synthetic zoo" or
      tostring(src.info and src.info.data), #g.devices, g.order[1], g.order[1], fmt(first.difficulty.mean_cross_rho)))
    local ok, serr = doc:write(o.svg)
    if not ok then return fail(serr) end
  end
  if o.json then json_out(suite) else print_suite(suite, o.out) end
  return 0
end

--------------------------------------------------------------------------------------------------- list / show
--- The tasks of a file, or of the built-in suite: {name, space, train, test, difficulty, origin}.
local function suite_tasks(o, space)
  local tasks = require "nasflat.tasks"
  local out = {}
  if o["task-file"] then
    local list, err = tasks.load_all{file = o["task-file"], space = space}
    if not list then return nil, err end
    for _, t in ipairs(list) do t.origin = o["task-file"]; out[#out + 1] = t end
    return out
  end
  local dir = o.data ~= "synthetic" and (o.data or require("nasflat.data").dir()) or nil
  if dir then
    local file = dir .. "/nasflat_tasks.json"
    local f = io.open(file, "r")
    if f then
      f:close()
      local list, err = tasks.load_all{file = file, space = space}
      if not list then return nil, err end
      for _, t in ipairs(list) do t.origin = "paper (" .. file .. ")"; out[#out + 1] = t end
    end
  end
  local zoo = require "nasflat.zoo"
  for _, sp in ipairs{"nb201", "fbnet"} do
    if space == nil or space == sp then
      for _, name in ipairs(zoo.task_names(sp)) do
        local t = zoo.task(sp, name)
        t.origin = "synthetic zoo"
        out[#out + 1] = t
      end
    end
  end
  return out
end

local function list_main(o)
  local list, err = suite_tasks(o)
  if not list then return fail(err) end
  if o.json then
    local rows = {}
    for i, t in ipairs(list) do
      rows[i] = {name = t.name, space = t.space, train = t.train, test = t.test, origin = t.origin,
        difficulty = t.difficulty}
    end
    json_out({tasks = rows})
    return 0
  end
  io.stdout:write(string.format("%-8s %-6s %7s %7s  %-10s %s\n", "name", "space", "sources", "targets", "cross rho",
    "from"))
  for _, t in ipairs(list) do
    io.stdout:write(string.format("%-8s %-6s %7d %7d  %-10s %s\n", t.name, t.space, #t.train, #t.test,
      fmt(t.difficulty and t.difficulty.mean_cross_rho), t.origin))
  end
  return 0
end

local function show_main(o, pos)
  local name = pos[1]
  if not name then return fail("tasks show: name a task (see `nasflat tasks list`)", 2) end
  if #pos > 1 then return fail("tasks show: unexpected argument '" .. pos[2] .. "'", 2) end
  local list, err = suite_tasks(o)
  if not list then return fail(err) end
  local task
  for _, t in ipairs(list) do if t.name == name then task = t break end end
  if not task then
    local names = {}
    for _, t in ipairs(list) do names[#names + 1] = t.name end
    return fail(string.format("unknown task '%s' (known: %s)", name, table.concat(names, ", ")))
  end
  local df = task.difficulty
  if o.difficulty then
    local data = o.data
    if task.origin == "synthetic zoo" then data = "synthetic" end
    local src, serr = open_source(data, task.space)
    if not src then return fail(serr) end
    local ok, cerr = require("nasflat.tasks").check_devices(task.train, src.devices, "source")
    if ok then ok, cerr = require("nasflat.tasks").check_devices(task.test, src.devices, "target") end
    if not ok then return fail(cerr) end
    df = require("nasflat.tasks").difficulty{source = src, train = task.train, test = task.test, seed = o.seed}
  end
  if o.json then
    json_out({name = task.name, space = task.space, train = task.train, test = task.test, origin = task.origin,
      difficulty = df})
    return 0
  end
  local lines = {string.format("task %s (%s, %d sources, %d targets; %s)", task.name, task.space, #task.train,
    #task.test, task.origin)}
  lines[#lines + 1] = "  sources: " .. table.concat(task.train, ", ")
  lines[#lines + 1] = "  targets: " .. table.concat(task.test, ", ")
  if df then
    lines[#lines + 1] = string.format("  difficulty: mean cross rho %s (min %s, max %s); copy-best-source %s " ..
      "(oracle %s); ridge@%s %s", fmt(df.mean_cross_rho), fmt(df.min_cross_rho), fmt(df.max_cross_rho),
      fmt(df.copy_best_source), fmt(df.copy_oracle), tostring(math.tointeger(df.samples) or df.samples or 20), fmt(df.ridge))
    if df.per_target then
      lines[#lines + 1] = string.format("  %-44s %9s %9s %9s %9s  %s", "target", "cross rho", "copy", "oracle",
        "ridge", "best source (oracle)")
      for _, t in ipairs(task.test) do
        local p = df.per_target[t]
        if p then
          lines[#lines + 1] = string.format("  %-44s %9s %9s %9s %9s  %s", t, fmt(p.mean_cross_rho),
            fmt(p.copy_best_source), fmt(p.copy_oracle), fmt(p.ridge), tostring(p.oracle_source or "-"))
        end
      end
    end
  end
  io.stdout:write(table.concat(lines, "\n"), "\n")
  return 0
end

--------------------------------------------------------------------------------------------------- compare
local function overlap(a, b)
  local set, n = {}, 0
  for _, x in ipairs(a) do set[x] = true end
  for _, x in ipairs(b) do if set[x] then n = n + 1 end end
  return n
end

local function compare_main(o)
  local tasks = require "nasflat.tasks"
  if o.space ~= "nb201" and o.space ~= "fbnet" then
    return fail("--space must be nb201 or fbnet (got '" .. o.space .. "')", 2)
  end
  local weights = util.split(o.weight)
  for _, w in ipairs(weights) do
    if w ~= "rho" and w ~= "-rho" then return fail("--weight must be rho, -rho or both (got '" .. w .. "')", 2) end
  end
  local src, err = open_source(o.data, o.space)
  if not src then return fail(err) end
  if src.synthetic or not src.tasks_file then
    return fail("tasks compare needs the real data and its nasflat_tasks.json (got " ..
      (src.synthetic and "the synthetic zoo" or "no nasflat_tasks.json") .. ")")
  end
  local paper, perr = tasks.load_all{file = src.tasks_file, space = o.space, devices = src.devices}
  if not paper then return fail(perr) end
  local mat = tasks.matrix{data = src, space = o.space}
  local rows = {}
  for _, p in ipairs(paper) do
    if tasks.PUBLISHED.NASFLAT[p.name] then
      local row = {paper = p.name, sources = #p.train, targets = #p.test, train = p.train, test = p.test,
        paper_difficulty = tasks.difficulty{source = src, train = p.train, test = p.test, seed = o.seed, rho = mat},
        generated = {}}
      for _, w in ipairs(weights) do
        local t0 = require("nasflat.core").now()
        local suite, gerr = tasks.generate{data = src, space = o.space, sources = #p.train, targets = #p.test,
          count = o.count, seed = o.seed, restarts = o.restarts, weight = w, exclude = split_opt(o.exclude),
          prefix = p.name .. "g"}
        if not suite then return fail(gerr) end
        local best, best_score, rank
        for i, name in ipairs(suite.generated.order) do
          local e = suite.tasks[o.space][name]
          local same = overlap(p.train, e.train) + overlap(p.test, e.test)
          local swapped = overlap(p.train, e.test) + overlap(p.test, e.train)
          if not best or same > best_score then best, best_score, rank = e, same, i end
          e.swapped_overlap = swapped
        end
        row.generated[#row.generated + 1] = {weight = w, name = best.name, rank = rank, train = best.train,
          test = best.test, source_overlap = overlap(p.train, best.train), target_overlap = overlap(p.test, best.test),
          swapped_overlap = best.swapped_overlap, difficulty = best.difficulty,
          seconds = require("nasflat.core").now() - t0}
      end
      rows[#rows + 1] = row
    end
  end
  if o.json then json_out({space = o.space, seed = o.seed, restarts = o.restarts, rows = rows}) return 0 end
  local out = {}
  out[#out + 1] = string.format("%-5s %-6s %-5s %-5s %-11s %-11s %-8s  %-23s %-23s %-23s", "task", "m/k", "weight",
    "gen", "src overlap", "tgt overlap", "swapped", "cross rho paper / gen", "copy paper / gen", "ridge@20 paper / gen")
  for _, r in ipairs(rows) do
    local pd = r.paper_difficulty
    for _, g in ipairs(r.generated) do
      local gd = g.difficulty
      out[#out + 1] = string.format("%-5s %-6s %-5s %-5s %-11s %-11s %-8s  %-23s %-23s %-23s", r.paper,
        r.sources .. "/" .. r.targets, g.weight, "#" .. g.rank, g.source_overlap .. "/" .. r.sources,
        g.target_overlap .. "/" .. r.targets, g.swapped_overlap .. "/" .. (r.sources + r.targets),
        fmt(pd.mean_cross_rho) .. " / " .. fmt(gd.mean_cross_rho), fmt(pd.copy_best_source) .. " / " ..
        fmt(gd.copy_best_source), fmt(pd.ridge) .. " / " .. fmt(gd.ridge))
    end
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

--------------------------------------------------------------------------------------------------- dispatch
local MAIN = {generate = generate_main, list = list_main, show = show_main, compare = compare_main}

--- Run `nasflat tasks <argv...>` (argv without "tasks"); returns the exit status.
function M.command.dispatch(argv)
  return require("nasflat.cli").dispatch_subcommands({command = M.command, sub = SUB, order = ORDER, main = MAIN,
    positional = {show = true}}, argv)
end

--- `nasflat data --svg FILE`: the device Spearman matrix of an open source as an SVG heatmap, ordered by its
-- best Kernighan–Lin bisection (seed 1). Returns true or nil, msg.
function M.write_matrix_svg(src, path)
  local tasks = require "nasflat.tasks"
  local part, err = tasks.partition{data = src, space = src.space_name}
  if not part then return nil, err end
  local doc = tasks.heatmap(part, {{label = "side A", devices = part.sides[1]}, {label = "side B",
    devices = part.sides[2]}}, string.format("%s: device Spearman matrix (%d devices)", src.space_name,
    #part.devices), string.format("%s; ordered by the best Kernighan-Lin bisection (minimum rho across), " ..
    "each side by its mean rho to the other", src.synthetic and "synthetic zoo" or tostring(src.info and src.info.data)))
  return doc:write(path)
end

return M
