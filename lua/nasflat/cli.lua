--- The `nasflat` command: run, predict, data. Results on stdout (a table, or JSON with --json),
-- progress on stderr only when it is a terminal, non-zero exit status on failure.
local cjson = require "cjson"
local util = require "nasflat.util"
local core = require "nasflat.core"
local experiment = require "nasflat.experiment"

local M = {}

local USAGE = [[
usage: nasflat <command> [options]

Few-shot latency prediction for neural architecture search.

commands:
  run       pre-train on source devices, transfer to target devices with a few samples, score them
  predict   score architectures with a saved model
  data      describe a latency dataset (devices, counts, missing values, correlations)
  help      show this text, or `nasflat help <command>`

`nasflat <command> --help` shows the options of a command. Version ]] .. core.version .. "\n"

--------------------------------------------------------------------------------------------------- parsing
-- A command's options: list of {name, arg = "METAVAR" or nil (flag), help, default}.
local function usage_of(cmd)
  local lines = {"usage: nasflat " .. cmd.name .. " " .. cmd.synopsis, "", cmd.summary, "", "options:"}
  for _, o in ipairs(cmd.options) do
    local left = "  --" .. o.name .. (o.arg and (" " .. o.arg) or "")
    local right = o.help .. (o.default ~= nil and (" (default: " .. tostring(o.default) .. ")") or "")
    lines[#lines + 1] = string.format("%-28s %s", left, right)
  end
  lines[#lines + 1] = string.format("%-28s %s", "  -h, --help", "show this help")
  if cmd.epilog then lines[#lines + 1] = "" lines[#lines + 1] = cmd.epilog end
  return table.concat(lines, "\n") .. "\n"
end

--- Parse argv for a command. Returns opts (name -> value), positional list; or nil, message.
local function parse(cmd, argv)
  local byname = {}
  for _, o in ipairs(cmd.options) do byname[o.name] = o end
  local opts, pos = {}, {}
  for _, o in ipairs(cmd.options) do
    if o.default ~= nil then opts[o.name] = o.default end
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then return {help = true}, {} end
    if a == "--" then
      for j = i + 1, #argv do pos[#pos + 1] = argv[j] end
      break
    end
    local name, val = a:match("^%-%-([%w%-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w%-]+)$") end
    if name then
      local o = byname[name]
      if not o then return nil, string.format("unknown option '--%s' (see `nasflat %s --help`)", name, cmd.name) end
      if o.arg then
        if val == nil then
          i = i + 1
          val = argv[i]
          if val == nil then return nil, string.format("option '--%s' needs a value (%s)", name, o.arg) end
        end
        if o.number then
          local v = tonumber(val)
          if not v then return nil, string.format("option '--%s' expects a number, got '%s'", name, val) end
          if o.int then
            v = math.tointeger(v)
            if not v or v < o.int then
              return nil, string.format("option '--%s' expects an integer >= %d, got '%s'", name, o.int, val)
            end
          elseif o.positive and (v <= 0 or v == math.huge) then
            return nil, string.format("option '--%s' expects a positive number, got '%s'", name, val)
          end
          val = v
        end
        opts[name] = val
      else
        if val ~= nil then return nil, string.format("option '--%s' takes no value", name) end
        opts[name] = true
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, string.format("unknown option '%s' (see `nasflat %s --help`)", a, cmd.name)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

local function int_list(s, what)
  local out = {}
  for _, piece in ipairs(util.split(tostring(s))) do
    local v = tonumber(piece)
    if not v or v ~= math.floor(v) or v < 1 then
      return nil, string.format("%s: '%s' is not a positive integer", what, piece)
    end
    out[#out + 1] = math.tointeger(v)
  end
  if #out == 0 then return nil, what .. ": empty list" end
  return out
end

local function fmt(x, digits)
  if x == nil or x ~= x then return "-" end
  return string.format("%." .. (digits or 3) .. "f", x)
end

--------------------------------------------------------------------------------------------------- commands
local commands = {}

commands.run = {
  name = "run",
  synopsis = "[options]",
  summary = "Pre-train the predictor on the task's source devices, transfer it to each target device with k\n" ..
    "measured samples, and score every measured architecture of the target (Spearman, Kendall, MAE, MAPE).",
  options = {
    {name = "data", arg = "DIR", help = "data directory, or 'synthetic' for the built-in device zoo " ..
      "(default: $NASFLAT_DATA, else ../shared/data, else synthetic)"},
    {name = "task", arg = "NAME", help = "ND N1..N4 NA FD F1..F4 FA NQ NQ2 FQ, 'all' (the 12 paper tasks), " ..
      "or a synthetic zoo task (ZD, Z1..)"},
    {name = "train", arg = "DEV,..", help = "ad-hoc task: source devices"},
    {name = "test", arg = "DEV,..", help = "ad-hoc task: target devices"},
    {name = "task-file", arg = "FILE", help = "JSON task file ({space, train, test} or the suite file)"},
    {name = "space", arg = "NAME", help = "nb201 or fbnet, for ad-hoc tasks", default = "nb201"},
    {name = "predictor", arg = "NAME,..", help = "hybrid (the shipped default: ridges on structural, physical " ..
      "and roofline features and on source-device models, weighted by cross-validation on the k samples), " ..
      "nasflat (the GNN alone), ridge (METHOD §10); a comma list, 'both' (nasflat,ridge) or 'all' " ..
      "(hybrid,nasflat,ridge)", default = "all"},
    {name = "hybrid", arg = "C,..", help = "the hybrid's components: " ..
      table.concat(experiment.HYBRID_COMPONENT_NAMES, ", "), default = table.concat(experiment.DEFAULTS.hybrid, ",")},
    {name = "hybrid-weights", arg = "HOW", help = "cv (simplex grid, step 0.2, by 5-fold CV), subsets, or equal",
      default = "cv"},
    {name = "hybrid-bags", arg = "N", number = true, int = 1, help = "average the weights over N random 80% " ..
      "subsets of the samples (1: no bagging)", default = experiment.DEFAULTS.hybrid_bags},
    {name = "hybrid-bagging", arg = "HOW", help = "refit (the components refitted in each subset) or oof (only the " ..
      "weight search bagged: cheap with the GNN)", default = experiment.DEFAULTS.hybrid_bagging},
    {name = "budget", arg = "K,..", help = "transfer samples per target", default = "20"},
    {name = "trials", arg = "N", number = true, int = 1, help = "trials per target and budget", default = 3},
    {name = "seed", arg = "N", number = true, int = 0, help = "master seed", default = 1},
    {name = "samples", arg = "N", number = true, int = 1, help = "pre-training architectures per source device " ..
      "(default: 512, the paper's; 256 on the synthetic zoo)"},
    {name = "epochs", arg = "N", number = true, int = 1, help = "pre-training epochs " ..
      "(default: 150, the paper's; 50 on the synthetic zoo, so the demo finishes in about a minute)"},
    {name = "transfer-epochs", arg = "N", number = true, int = 1, help = "fine-tuning epochs", default = 30},
    {name = "lr", arg = "X", number = true, positive = true, help = "pre-training learning rate", default = 1e-3},
    {name = "transfer-lr", arg = "X", number = true, positive = true, help = "fine-tuning learning rate", default = 1e-3},
    {name = "sampler", arg = "NAME", help = "transfer-sample sampler", default = "kmeans"},
    {name = "encoding", arg = "NAME", help = "encoding the sampler uses", default = "struct+phys"},
    {name = "threads", arg = "N", number = true, int = 1, help = "BLAS threads", default = nil},
    {name = "out", arg = "DIR", help = "write results JSON and CSV here (atomically)", default = nil},
    {name = "save-model", arg = "FILE", help = "save the pre-trained model (single task)"},
    {name = "pretrained", arg = "FILE", help = "reuse a saved pre-trained model instead of training"},
    {name = "json", help = "print one JSON object instead of the table"},
    {name = "quiet", help = "no progress on stderr"},
  },
  epilog = "examples:\n  nasflat run --data synthetic\n  nasflat run --task ND --trials 3\n" ..
    "  nasflat run --train 1080ti_1,pixel3 --test raspi4 --budget 10,20 --json",
}

commands.predict = {
  name = "predict",
  synopsis = "--model FILE --device NAME [ARCH ...]",
  summary = "Score architectures with a saved model on one of its devices. Architectures come from the\n" ..
    "arguments, or --file (one arch string per line; '-' reads stdin). Lower score = faster.",
  options = {
    {name = "model", arg = "FILE", help = "a model saved by `nasflat run --save-model` or Predictor:save"},
    {name = "device", arg = "NAME", help = "device to score on (one the model knows)"},
    {name = "file", arg = "FILE", help = "architectures, one per line ('-' = stdin)"},
    {name = "json", help = "print JSON"},
  },
}

commands.data = {
  name = "data",
  synopsis = "[options]",
  summary = "Describe a latency dataset: devices, measured and missing counts, latency ranges, and how much\n" ..
    "the devices agree on rankings (Spearman of each device with the others).",
  options = {
    {name = "data", arg = "DIR", help = "data directory or 'synthetic' (default as for run)"},
    {name = "space", arg = "NAME", help = "nb201 or fbnet", default = "nb201"},
    {name = "matrix", help = "print the full device × device Spearman matrix"},
    {name = "json", help = "print JSON"},
  },
}

local function fail(msg, code)
  io.stderr:write("nasflat: ", msg, "\n")
  return code or 1
end

local function open_source(data, space, quiet)
  local src_data = data
  if not src_data then
    local dir = require("nasflat.data").dir()
    if dir then src_data = dir
    else
      src_data = "synthetic"
      if not quiet then io.stderr:write("nasflat: no data directory found; using the synthetic device zoo\n") end
    end
  end
  return experiment.open_source{data = src_data, space = space}
end

local function progress_for(o)
  if o.quiet then return nil, function() end end
  local report, finish = util.progress{}
  return report, finish
end

local function print_run_table(records)
  local out = {}
  local function line(s) out[#out + 1] = s end
  for _, rec in ipairs(records) do
    line(string.format("task %s (%s): sources %s", rec.task, rec.space, table.concat(rec.train, ", ")))
    line(string.format("  %-44s %4s  %-15s %-15s %-15s %-7s", "target", "k", "hybrid rho", "nasflat rho", "ridge rho",
      "kendall"))
    local function cell(m)
      if not m then return "-" end
      if m.spearman_std and m.spearman_std > 0 then return fmt(m.spearman) .. " ± " .. fmt(m.spearman_std) end
      return fmt(m.spearman)
    end
    for _, t in ipairs(rec.targets) do
      for _, b in ipairs(t.budgets) do
        local g, h, r = b.nasflat, b.hybrid, b.ridge
        line(string.format("  %-44s %4d  %-15s %-15s %-15s %-7s", t.device, b.budget, cell(h), cell(g), cell(r),
          fmt((h or g or r).kendall)))
      end
    end
    for _, p in ipairs({"hybrid", "nasflat", "ridge"}) do
      for _, k in ipairs(rec.config.budgets) do
        local v = rec.mean[p] and rec.mean[p][tostring(k)]
        if v then line(string.format("  mean Spearman, %s, k=%d: %s", p, k, fmt(v))) end
      end
    end
    line(string.format("  time: %.1f s (pre-training %.1f s), peak memory %s MiB", rec.timings.total_s,
      rec.timings.pretrain_s or 0, fmt(rec.peak_rss_mib, 0)))
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
end

local function csv_rows(records)
  local rows = {"task,space,target,budget,trial,predictor,spearman,kendall,mae_ms,mape,acc10,seed"}
  for _, rec in ipairs(records) do
    for _, cells in ipairs(require("nasflat.experiment").csv_cells(rec, "-")) do
      rows[#rows + 1] = rec.task .. "," .. rec.space .. "," .. cells
    end
  end
  return table.concat(rows, "\n") .. "\n"
end

function commands.run.main(o)
  local tasks = require "nasflat.tasks"
  local budgets, berr = int_list(o.budget, "--budget")
  if not budgets then return fail(berr, 2) end
  local predictors
  if o.predictor == "both" then predictors = {"nasflat", "ridge"}
  elseif o.predictor == "all" then predictors = {"hybrid", "nasflat", "ridge"}
  else
    predictors = util.split(o.predictor)
    for _, p in ipairs(predictors) do
      if p ~= "nasflat" and p ~= "ridge" and p ~= "hybrid" then
        return fail("--predictor must be nasflat, ridge, hybrid, a comma list of them, both or all (got '" ..
          o.predictor .. "')", 2)
      end
    end
    if #predictors == 0 then return fail("--predictor: empty list", 2) end
  end
  local comps = util.split(o.hybrid)
  if #comps == 0 then return fail("--hybrid: empty list", 2) end
  for _, c in ipairs(comps) do
    if not experiment.HYBRID_COMPONENTS[c] then
      return fail("--hybrid: unknown component '" .. c .. "' (known: " ..
        table.concat(experiment.HYBRID_COMPONENT_NAMES, ", ") .. ")", 2)
    end
  end
  if not experiment.HYBRID_WEIGHTS[o["hybrid-weights"]] then
    return fail("--hybrid-weights must be cv, subsets or equal (got '" .. o["hybrid-weights"] .. "')", 2)
  end
  if not experiment.HYBRID_BAGGING[o["hybrid-bagging"]] then
    return fail("--hybrid-bagging must be refit or oof (got '" .. o["hybrid-bagging"] .. "')", 2)
  end
  if o.threads then core.set_threads(o.threads) end
  local names
  if o.task == "all" then names = tasks.PAPER
  elseif o.train or o.test then names = {false}
  else names = {o.task or false} end
  if #names > 1 and o["save-model"] then return fail("--save-model needs a single task (not --task all)", 2) end
  local report, finish = progress_for(o)
  local records, sources = {}, {}
  for _, name in ipairs(names) do
    local space = o.space
    if name and tasks.NAMES[name] then space = tasks.NAMES[name][1] end
    local zoo_task = name and name:match("^Z")
    local src = sources[space]
    if not src then
      local err
      src, err = open_source(o.data, space, o.quiet)
      if not src then finish() return fail(err) end
      sources[space] = src
    end
    if zoo_task and not src.synthetic and require("nasflat.zoo").task(space, name) then
      finish()
      return fail("task " .. name .. " is a synthetic zoo task: add --data synthetic")
    end
    if src.synthetic and name and not zoo_task and tasks.NAMES[name] then
      finish()
      return fail("task " .. name .. " needs the real data; the synthetic zoo has tasks " ..
        table.concat(require("nasflat.zoo").task_names(space), ", "))
    end
    local task, terr
    if src.synthetic and not (o.train or o.test or o["task-file"]) then
      task, terr = require("nasflat.zoo").task(space, name or nil)
    else
      task, terr = tasks.resolve{name = name or nil, space = space, devices = src.devices,
        train = o.train and util.split(o.train) or nil, test = o.test and util.split(o.test) or nil,
        file = o["task-file"], tasks_file = src.tasks_file}
    end
    if not task then finish() return fail(terr) end
    local pretrained
    if o.pretrained then
      local perr
      pretrained, perr = require("nasflat.predictor").load(o.pretrained)
      if not pretrained then finish() return fail(perr) end
    end
    local rec, rerr = experiment.run{source = src, task = task, predictors = predictors, budgets = budgets,
      trials = math.tointeger(o.trials), seed = math.tointeger(o.seed),
      pretrain_samples = math.tointeger(o.samples) or (src.synthetic and 256 or 512),
      epochs = math.tointeger(o.epochs) or (src.synthetic and 50 or 150),
      transfer_epochs = math.tointeger(o["transfer-epochs"]), lr = o.lr,
      transfer_lr = o["transfer-lr"], sampler = o.sampler, encoding = o.encoding, pretrained = pretrained,
      hybrid = comps, hybrid_weights = o["hybrid-weights"], hybrid_bags = math.tointeger(o["hybrid-bags"]),
      hybrid_bagging = o["hybrid-bagging"],
      save_pretrained = o["save-model"], progress = report}
    if not rec then finish() return fail(rerr) end
    rec.data = src.info
    rec.seed = math.tointeger(o.seed)
    records[#records + 1] = rec
  end
  finish()
  -- the main predictor's overall mean Spearman at the first budget
  for _, rec in ipairs(records) do
    local main = rec.mean.hybrid and "hybrid" or rec.mean.nasflat and "nasflat" or "ridge"
    rec.mean_spearman = rec.mean[main][tostring(budgets[1])]
    rec.main_predictor = main
  end
  local result = #records == 1 and records[1] or {tasks = records}
  if #records > 1 then
    local xs = {}
    for _, rec in ipairs(records) do xs[#xs + 1] = rec.mean_spearman end
    result.mean_spearman = util.mean_std(xs)
  end
  if o.out then
    -- mkdir's own complaint is dropped: atomic_write names the path that cannot be written
    os.execute("mkdir -p '" .. o.out:gsub("'", "'\\''") .. "' 2>/dev/null")
    local stem = o.out .. "/" .. (#records == 1 and records[1].task or "all") .. "-seed" .. o.seed
    local ok, err = util.atomic_write(stem .. ".json", cjson.encode(result) .. "\n")
    if not ok then return fail(err) end
    ok, err = util.atomic_write(stem .. ".csv", csv_rows(records))
    if not ok then
      os.remove(stem .. ".json") -- both files or neither
      return fail(err)
    end
    if not o.quiet and core.isatty(2) then io.stderr:write("results: ", stem, ".json, ", stem, ".csv\n") end
  end
  if o.json then
    io.stdout:write(cjson.encode(result), "\n")
  else
    print_run_table(records)
    local tables = require "nasflat.report"
    local published = 0
    for _, rec in ipairs(records) do
      if require("nasflat.tasks").PUBLISHED.NASFLAT[rec.task] then published = published + 1 end
    end
    if published > 0 then
      io.stdout:write("\nmean Spearman on the target devices, k = ", budgets[1], ", beside the published numbers\n")
      io.stdout:write(tables.paper_table(records, budgets[1]))
    end
  end
  return 0
end

local function read_archs(o, pos)
  local archs = {}
  for _, a in ipairs(pos) do archs[#archs + 1] = a end
  if o.file then
    local f, err
    if o.file == "-" then f = io.stdin else f, err = io.open(o.file, "r") end
    if not f then return nil, string.format("--file: cannot open %s", err), 1 end
    for line in f:lines() do
      line = line:match("^%s*(.-)%s*$")
      if line ~= "" and line:sub(1, 1) ~= "#" then archs[#archs + 1] = line end
    end
    if f ~= io.stdin then f:close() end
  end
  if #archs == 0 then return nil, "no architectures given (arguments or --file)", 2 end
  return archs
end

function commands.predict.main(o, pos)
  if not o.model then return fail("predict: --model FILE is required", 2) end
  local predictor = require "nasflat.predictor"
  local model, err = predictor.load(o.model)
  if not model then return fail(err) end
  local device = o.device
  local devs = model:devices()
  if not device then
    if #devs == 1 then device = devs[1]
    else return fail("predict: --device is required; the model knows: " .. table.concat(devs, ", "), 2) end
  end
  local known = false
  for _, d in ipairs(devs) do if d == device then known = true end end
  if not known then
    return fail("predict: unknown device '" .. device .. "'; the model knows: " .. table.concat(devs, ", "))
  end
  local archs, aerr, acode = read_archs(o, pos)
  if not archs then return fail(aerr, acode) end
  local graphs, gerr = require("nasflat.experiment").model_graphs(model, archs)
  if not graphs then return fail(gerr) end
  local scores = model:predict{graphs = graphs, device = device}
  local out = {}
  for i, a in ipairs(archs) do out[i] = {arch = a, score = scores:get(i)} end
  local order = {}
  for i = 1, #out do order[i] = i end
  table.sort(order, function(x, y) return out[x].score < out[y].score end)
  for r, i in ipairs(order) do out[i].rank = r end
  if o.json then
    io.stdout:write(cjson.encode({device = device, model = o.model, predictions = out}), "\n")
  else
    io.stdout:write(string.format("%-6s %-10s %s\n", "rank", "score", "architecture"))
    for _, i in ipairs(order) do
      io.stdout:write(string.format("%-6d %-10.4f %s\n", out[i].rank, out[i].score, out[i].arch))
    end
  end
  return 0
end

function commands.data.main(o)
  local metrics = require "nasflat.metrics"
  local src, err = open_source(o.data, o.space, false)
  if not src then return fail(err) end
  local devs = src.devices
  local info = {space = src.space_name, data = src.info, architectures = src.n, synthetic = src.synthetic or false,
    devices = {}}
  if src.synthetic then
    info.note = "synthetic: latencies computed by nasflat.zoo from the real network structure, not measured"
  end
  local n = #devs
  local rho = {}
  for i = 1, n do
    rho[i] = {}
    for j = 1, n do
      if i == j then rho[i][j] = 1
      elseif j < i then rho[i][j] = rho[j][i]
      else rho[i][j] = metrics.spearman(src:ms(devs[i]), src:ms(devs[j])) end
    end
  end
  for i, d in ipairs(devs) do
    local ms = src:ms(d)
    local measured = #src:measured(d)
    local lo, hi = src.latency:range(d)
    local s, c, worst, worst_dev = 0, 0, math.huge, nil
    for j = 1, n do
      if j ~= i then
        s, c = s + rho[i][j], c + 1
        if rho[i][j] < worst then worst, worst_dev = rho[i][j], devs[j] end
      end
    end
    local _ = ms
    info.devices[i] = {name = d, measured = measured, missing = src.n - measured, min_ms = lo, max_ms = hi,
      mean_spearman_others = c > 0 and s / c or nil, least_correlated = worst_dev,
      least_spearman = worst_dev and worst or nil}
  end
  if o.matrix or o.json then info.spearman = rho end
  if o.json then
    info.device_names = devs
    io.stdout:write(cjson.encode(info), "\n")
    return 0
  end
  print(string.format("%s: %d architectures, %d devices, data: %s%s", info.space, info.architectures, n,
    tostring(src.info.data), src.synthetic and "  [SYNTHETIC device zoo: computed, not measured]" or ""))
  print(string.format("%-48s %8s %7s %10s %10s %7s  %s", "device", "measured", "missing", "min ms", "max ms",
    "mean rho", "least correlated with"))
  for _, d in ipairs(info.devices) do
    print(string.format("%-48s %8d %7d %10.3f %10.3f %7.3f  %s (%.3f)", d.name, d.measured, d.missing, d.min_ms,
      d.max_ms, d.mean_spearman_others or 0 / 0, d.least_correlated or "-", d.least_spearman or 0 / 0))
  end
  if o.matrix then
    io.stdout:write("\nSpearman matrix (rows/cols in the order above)\n")
    for i = 1, n do
      local cells = {}
      for j = 1, n do cells[j] = string.format("%5.2f", rho[i][j]) end
      io.stdout:write(string.format("%-3d ", i), table.concat(cells, " "), "\n")
    end
  end
  return 0
end

--------------------------------------------------------------------------------------------------- main
function M.main(argv)
  argv = argv or {}
  local name = argv[1]
  if name == nil or name == "-h" or name == "--help" or name == "help" then
    local sub = name == "help" and argv[2] and commands[argv[2]]
    io.stdout:write(sub and usage_of(sub) or USAGE)
    return 0
  end
  if name == "--version" then io.stdout:write("nasflat ", core.version, "\n") return 0 end
  local cmd = commands[name]
  if not cmd then return fail("unknown command '" .. tostring(name) .. "' (commands: run, predict, data, help)", 2) end
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  local o, pos = parse(cmd, rest)
  if not o then return fail(pos, 2) end
  if o.help then io.stdout:write(usage_of(cmd)) return 0 end
  if cmd ~= commands.predict and #pos > 0 then
    return fail(string.format("%s: unexpected argument '%s'", name, pos[1]), 2)
  end
  local ok, code = xpcall(cmd.main, debug.traceback, o, pos)
  if not ok then return fail("internal error: " .. tostring(code), 70) end
  return code
end

M._parse = parse
M._commands = commands
return M
