--- The `nasflat` command: run, predict, data. Results on stdout (a table, or JSON with --json),
-- progress on stderr only when it is a terminal, non-zero exit status on failure.
local util = require "nasflat.util"
local core = require "nasflat.core"
local experiment = require "nasflat.experiment"
local model = require "nasflat.model"
local json = require "nasflat.json"

local M = {}

local USAGE = [[
usage: nasflat <command> [options]

Few-shot latency prediction for neural architecture search.

commands:
  fit       fit a latency model on your device's measurements (CSV arch,ms) and save it
  predict   predict the latency of any architectures with a saved model (CSV or JSON)
  run       the transfer experiment: fit on k samples of each target device of a task, score every measured one
  data      describe a latency dataset (devices, counts, missing values, correlations)
  tasks     generate, list, show and compare transfer tasks (sources and targets)
  sweep     a run as independent jobs: plan, run on local processes or Slurm, status, merge
  measure   measure architectures on this machine (the real networks in nasflat's C engine)
  search    hardware-aware NAS: the best architecture measured under a latency budget, few measurements
  study     the design study: one axis at a time from a base configuration, a table per axis
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
    local v = math.tointeger(tonumber(piece))
    if not v or v < 1 then
      return nil, string.format("%s: '%s' is not a positive integer", what, piece)
    end
    out[#out + 1] = v
  end
  if #out == 0 then return nil, what .. ": empty list" end
  return out
end

--------------------------------------------------------------------------------------------------- commands
local commands = {}

local D = experiment.DEFAULTS
local GD = require("nasflat.model_gnn").DEFAULTS
local TR = require("nasflat.model_gnn").TRANSFER
local function list_text(t) return table.concat(t, ",") end

commands.run = {
  name = "run",
  synopsis = "[options]",
  summary = "For each target device of a task: choose k of its measured architectures, fit the model on them\n" ..
    "(exactly as `nasflat fit` does), predict every measured architecture and score the predictions (Spearman,\n" ..
    "Kendall, MAE, MAPE, interval coverage). --task all prints the paper's table.",
  options = {
    {name = "data", arg = "DIR", help = "data directory, or 'synthetic' for the built-in device zoo " ..
      "(default: $NASFLAT_DATA, else ../shared/data, else synthetic)"},
    {name = "task", arg = "NAME", help = "ND N1..N4 NA FD F1..F4 FA NQ NQ2 FQ, 'all' (the 12 paper tasks), " ..
      "or a synthetic zoo task (ZD, Z1..)"},
    {name = "train", arg = "DEV,..", help = "ad-hoc task: source devices"},
    {name = "test", arg = "DEV,..", help = "ad-hoc task: target devices"},
    {name = "task-file", arg = "FILE", help = "JSON task file ({space, train, test} or a suite file; without " ..
      "--task, every task of a suite file)"},
    {name = "space", arg = "NAME", help = "nb201 or fbnet, for ad-hoc tasks", default = "nb201"},
    {name = "predictor", arg = "KIND,..", help = "model kinds side by side: " .. list_text(model.KIND_NAMES) ..
      ", or 'all'", default = list_text(D.predictors)},
    {name = "hybrid", arg = "C,..", help = "the hybrid's components: " ..
      list_text(require("nasflat.model_hybrid").COMPONENT_NAMES), default = list_text(D.hybrid)},
    {name = "hybrid-weights", arg = "HOW", help = "cv (simplex grid by K-fold CV) or equal",
      default = D.hybrid_weights},
    {name = "hybrid-bags", arg = "N", number = true, int = 1, help = "average the weights over N random " ..
      "subsets of the samples (1: no bagging)", default = D.hybrid_bags},
    {name = "hybrid-bagging", arg = "HOW", help = "refit (the components refitted in each subset) or oof (only the " ..
      "weight search bagged: cheap with the GNN)", default = D.hybrid_bagging},
    {name = "budget", arg = "K,..", help = "transfer samples per target", default = list_text(D.budgets)},
    {name = "trials", arg = "N", number = true, int = 1, help = "trials per target and budget", default = D.trials},
    {name = "seed", arg = "N", number = true, int = 0, help = "master seed", default = D.seed},
    {name = "interval", arg = "P", number = true, positive = true, help = "nominal coverage of the prediction " ..
      "intervals scored", default = D.interval},
    {name = "samples", arg = "N", number = true, int = 2, help = "pre-training architectures per source device " ..
      string.format("(default: %d, the paper's; %d on the synthetic zoo)", GD.pretrain_samples,
        experiment.ZOO_PRETRAIN.pretrain_samples)},
    {name = "epochs", arg = "N", number = true, int = 1, help = string.format("GNN pre-training epochs " ..
      "(default: %d on real data, %d on the synthetic zoo; the paper's 150 gives the same accuracy at three times the cost)",
      GD.epochs, experiment.ZOO_PRETRAIN.epochs)},
    {name = "transfer-epochs", arg = "N", number = true, int = 1, help = string.format("GNN fine-tuning epochs; " ..
      "auto: nb201 %d, fbnet %d", TR.nb201.epochs, TR.fbnet.epochs), default = D.transfer_epochs},
    {name = "lr", arg = "X", number = true, positive = true, help = "GNN pre-training learning rate", default = D.lr},
    {name = "transfer-lr", arg = "X", number = true, positive = true, help = string.format("GNN fine-tuning " ..
      "learning rate; auto: nb201 %g, fbnet %g", TR.nb201.lr, TR.fbnet.lr), default = D.transfer_lr},
    {name = "transfer-members", arg = "N", number = true, int = 1, help = "GNN fine-tuned copies averaged, each " ..
      "with its own seed", default = D.transfer_members},
    {name = "graph", arg = "FORM", help = "the graphs the GNN reads: auto (nb201 pruned, fbnet identity), pruned " ..
      "(METHOD §2; fbnet: the chain), unpruned (nb201: dead ops keep their edges) or identity (fbnet: layers without " ..
      "edges)", default = D.graph},
    {name = "sampler", arg = "NAME", help = "transfer-sample sampler", default = D.sampler},
    {name = "encoding", arg = "NAME", help = "encoding the sampler uses", default = D.encoding},
    {name = "kind-options", arg = "K.OPT=V,..", help = "fit options of a kind (see its DEFAULTS), e.g. " ..
      "help.protocol=equal,help.second_order=false"},
    {name = "threads", arg = "N", number = true, int = 1, help = "BLAS threads (1..256)"},
    {name = "out", arg = "DIR", help = "write results JSON and CSV here (the JSON names and checks its CSV)"},
    {name = "save-model", arg = "FILE", help = "save the pre-trained graph network (single task)"},
    {name = "pretrained", arg = "FILE", help = "reuse a saved pre-trained graph network instead of training"},
    {name = "cache", arg = "DIR", help = "keep pre-trained graph networks in DIR, one per task and pre-training " ..
      "settings, and reuse them (shared with `nasflat study --cache`)"},
    {name = "json", help = "print one JSON object instead of the table"},
    {name = "quiet", help = "no progress on stderr"},
  },
  epilog = "examples:\n  nasflat run --data synthetic\n  nasflat run --task ND --predictor all\n" ..
    "  nasflat run --task all --predictor hybrid,ridge --budget 20,10\n" ..
    "  nasflat run --train 1080ti_1,pixel3 --test raspi4 --budget 10,20 --json",
}

commands.fit = {
  name = "fit",
  synopsis = "--space S --samples FILE --out MODEL [options]",
  summary = "Fit a latency model on your own device's measurements and save it. FILE is a CSV with the columns\n" ..
    "arch (an arch string of the space, or the dataset's arch_index) and ms (the measured latency); the source\n" ..
    "devices (for the hybrid's source models and the graph network) come from the space's dataset.",
  options = {
    {name = "space", arg = "NAME", help = "nb201 or fbnet"},
    {name = "samples", arg = "FILE", help = "CSV of measurements: columns arch, ms"},
    {name = "out", arg = "MODEL", help = "where to save the model (written atomically)"},
    {name = "predictor", arg = "KIND", help = list_text(model.KIND_NAMES), default = model.DEFAULT_KIND},
    {name = "data", arg = "DIR", help = "data directory of the source devices (default: $NASFLAT_DATA, else " ..
      "../shared/data)"},
    {name = "sources", arg = "DEV,..", help = "source devices (default: every device of the data)"},
    {name = "task", arg = "NAME", help = "take the source devices of a paper task (e.g. ND)"},
    {name = "target", arg = "NAME", help = "a name for your device", default = "target"},
    {name = "seed", arg = "N", number = true, int = 0, help = "seed of every random draw of the fit", default = 1},
    {name = "pretrained", arg = "FILE", help = "graph network: a pre-trained network to start from"},
    {name = "kind-options", arg = "K.OPT=V,..", help = "fit options of the kind (see its DEFAULTS), e.g. " ..
      "help.episodes=500"},
    {name = "json", help = "print JSON instead of the description"},
    {name = "quiet", help = "no notes on stderr"},
  },
  epilog = "example:\n  nasflat fit --space nb201 --samples board.csv --out board.nfm\n" ..
    "  nasflat predict --model board.nfm --all --interval 0.9 > board-all.csv",
}

commands.predict = {
  name = "predict",
  synopsis = "--model FILE (ARCH ... | --archs FILE | --all | --random N) [options]",
  summary = "Predict latencies with a saved model: one CSV line per architecture (arch,ms[,lo,hi], the arch in\n" ..
    "the space's canonical form), or JSON. A graph-network file saved by `nasflat run --save-model` (no\n" ..
    "calibration) prints arch,score on one of its devices (--device).",
  options = {
    {name = "model", arg = "FILE", help = "a model saved by `nasflat fit` (or a network file)"},
    {name = "archs", arg = "FILE", help = "architectures, one per line ('-' = stdin; '#' comments)"},
    {name = "all", help = "every architecture of the space (nb201: 15,625)"},
    {name = "random", arg = "N", number = true, int = 1, help = "N random architectures of the space"},
    {name = "seed", arg = "N", number = true, int = 0, help = "seed of --random", default = 1},
    {name = "interval", arg = "P", number = true, positive = true, help = "add lo,hi: an interval of nominal " ..
      "coverage P (e.g. 0.9)"},
    {name = "device", arg = "NAME", help = "network files: the device to score on"},
    {name = "json", help = "print one JSON object"},
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
    {name = "svg", arg = "FILE", help = "write the Spearman matrix as an SVG heatmap (devices ordered by a " ..
      "Kernighan–Lin bisection)"},
    {name = "json", help = "print JSON"},
  },
}

commands.tasks = require("nasflat.cli_tasks").command
commands.sweep = require("nasflat.cli_sweep").command
commands.measure = require("nasflat.cli_measure").command
commands.search = require("nasflat.cli_search").command
commands.study = require("nasflat.cli_study").command

--- Report a failure: "nasflat: <msg>" on stderr; returns the exit status (default 1). Every command uses it.
local function fail(msg, code)
  io.stderr:write("nasflat: ", msg, "\n")
  return code or 1
end
M.fail = fail

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
  return require("nasflat.source").open{data = src_data, space = space}
end

local function progress_for(o)
  if o.quiet then return nil, function() end end
  local report, finish = util.progress{}
  return report, finish
end

--- stdout, with every write checked: out(...) returns false once a write failed (full disk, closed pipe).
local function stdout_writer()
  local failed
  local function out(...)
    if failed then return false end
    local ok, err = io.stdout:write(...)
    if not ok then failed = err or "write error" end
    return not failed
  end
  local function close()
    if not failed then
      local ok, err = io.stdout:flush()
      if not ok then failed = err or "flush failed" end
    end
    if failed then return nil, "cannot write the results to standard output (" .. tostring(failed) .. ")" end
    return true
  end
  return out, close
end

local function print_run_table(records, out)
  return require("nasflat.report").print_run_table(records, out)
end

--- The paper tables of a multi-task run, one per budget, with the win counts and the hybrid's mean weights.
local function print_paper_tables(records, budgets, out)
  return require("nasflat.report").print_paper_tables(records, budgets, out)
end

--- The tasks a run names: paper names, 'all', an ad-hoc task, a task file (one or every task).
local function run_task_specs(o)
  local tasks = require "nasflat.tasks"
  if o.task == "all" then
    local out = {}
    for i, n in ipairs(tasks.PAPER) do out[i] = {name = n, space = tasks.NAMES[n][1]} end
    return out
  end
  if o.train or o.test then return {{adhoc = true, space = o.space}} end
  if o.task then
    local out = {}
    local in_file = {}   -- the space of each task a task file names
    if o["task-file"] then
      for _, t in ipairs(tasks.load_all{file = o["task-file"]} or {}) do in_file[t.name] = t.space end
    end
    for i, n in ipairs(util.split(o.task)) do
      out[i] = {name = n, space = tasks.NAMES[n] and tasks.NAMES[n][1] or in_file[n] or o.space}
    end
    if #out == 0 then return nil, "--task: empty list" end
    return out
  end
  if o["task-file"] and tasks.load_all then return {{file_all = true, space = o.space}} end
  return {{space = o.space}}
end

--- The fit options of `--kind-options K.OPT=V,..` by kind ({help = {protocol = "equal"}}), or nil and a usage error.
-- Values: true, false, numbers, else strings. `nasflat run` and `nasflat fit` take it.
function M.kind_options(text)
  local kind_options = {}
  for _, item in ipairs(text and util.split(text) or {}) do
    local kind, key, value = item:match("^([%w_]+)%.([%w_]+)=(.*)$")
    if not kind then return nil, string.format("--kind-options: '%s' is not KIND.OPTION=VALUE", item) end
    if not model.KINDS[kind] then
      return nil, string.format("--kind-options: unknown kind '%s' (known: %s)", kind, list_text(model.KIND_NAMES))
    end
    if model.kind_module(kind, "run").DEFAULTS[key] == nil then
      return nil, string.format("--kind-options: the %s kind has no option '%s'", kind, key)
    end
    local v
    if value == "true" then v = true elseif value == "false" then v = false
    else v = math.tointeger(tonumber(value)) or tonumber(value) or value end
    kind_options[kind] = kind_options[kind] or {}
    kind_options[kind][key] = v
  end
  return kind_options
end

--- The experiment.run options that `nasflat run`'s command-line options `o` ask for, or nil and a usage error.
-- `nasflat sweep plan` takes the same options and calls this too.
function M.run_settings(o)
  local budgets, berr = int_list(o.budget, "--budget")
  if not budgets then return nil, berr end
  local predictors = o.predictor == "all" and model.KIND_NAMES or util.split(o.predictor)
  if #predictors == 0 then return nil, "--predictor: empty list" end
  for _, p in ipairs(predictors) do
    if not model.KINDS[p] then
      return nil, string.format("--predictor: unknown kind '%s' (known: %s, or all)", p, list_text(model.KIND_NAMES))
    end
  end
  local comps = util.split(o.hybrid)
  local H = require "nasflat.model_hybrid"
  local hopts = {}
  for k, v in pairs(H.DEFAULTS) do hopts[k] = v end
  hopts.components, hopts.weights, hopts.bags, hopts.bagging = comps, o["hybrid-weights"], o["hybrid-bags"],
    o["hybrid-bagging"]
  local hok, herr = H.validate(hopts)
  if not hok then return nil, "--hybrid: " .. herr end
  if o.interval >= 1 then return nil, "--interval must be a probability in (0, 1)" end
  if o.space ~= "nb201" and o.space ~= "fbnet" then return nil, "--space must be nb201 or fbnet (got '" .. o.space .. "')" end
  local methods = require("nasflat.samplers").METHODS
  local known_sampler = false
  for _, m in ipairs(methods) do known_sampler = known_sampler or m == o.sampler end
  if not known_sampler then
    return nil, string.format("--sampler: unknown sampler '%s' (known: %s)", o.sampler, list_text(methods))
  end
  local enc_known = {struct = true}
  for _, e in ipairs(require("nasflat.encodings").NAMES) do enc_known[e] = true end
  for _, piece in ipairs(util.split(o.encoding, "+")) do
    if not enc_known[piece] then
      return nil, string.format("--encoding: unknown encoding '%s' (known: %s, joined with '+')", piece,
        list_text(require("nasflat.encodings").NAMES))
    end
  end
  for _, which in ipairs({"train", "test"}) do
    if o[which] and #util.split(o[which]) == 0 then return nil, "--" .. which .. ": empty list" end
  end
  if o.graph ~= "auto" and o.graph ~= "pruned" and o.graph ~= "unpruned" and o.graph ~= "identity" then
    return nil, "--graph must be auto, pruned, unpruned or identity (got '" .. o.graph .. "')"
  end
  local kind_options, kerr = M.kind_options(o["kind-options"])
  if not kind_options then return nil, kerr end
  for _, p in ipairs(predictors) do
    local need = model.kind_module(p, "run").MIN_SAMPLES
    for _, k in ipairs(budgets) do
      if k < need then return nil, string.format("--budget %d: the %s predictor needs at least %d samples", k, p, need) end
    end
  end
  return {predictors = predictors, budgets = budgets, trials = o.trials, seed = o.seed, interval = o.interval,
    pretrain_samples = o.samples, epochs = o.epochs, transfer_epochs = o["transfer-epochs"],
    lr = o.lr, transfer_lr = o["transfer-lr"], transfer_members = o["transfer-members"], graph = o.graph, sampler = o.sampler,
    encoding = o.encoding, hybrid = comps,
    hybrid_weights = o["hybrid-weights"], hybrid_bags = o["hybrid-bags"], hybrid_bagging = o["hybrid-bagging"],
    kind_options = kind_options}
end

--- The tasks `nasflat run`'s options name, each with its source: a list of {src, task}, or nil, message, exit code.
-- `data`: the data directory or "synthetic" (default: o.data, else the data directory found, else the zoo).
-- `nasflat sweep plan` calls this too.
function M.run_jobs(o, data)
  local tasks = require "nasflat.tasks"
  local zoo = require "nasflat.zoo"
  local specs, serr = run_task_specs(o)
  if not specs then return nil, serr, 2 end
  local sources = {}
  local function source_for(space)
    if not sources[space] then
      local src, err = open_source(data or o.data, space, o.quiet)
      if not src then return nil, err end
      sources[space] = src
    end
    return sources[space]
  end
  local jobs = {}
  for _, spec in ipairs(specs) do
    local src, err = source_for(spec.space)
    if not src then return nil, err, 1 end
    local name = spec.name
    if name and name:match("^Z") and not src.synthetic and zoo.task(spec.space, name) then
      return nil, "task " .. name .. " is a synthetic zoo task: add --data synthetic", 1
    end
    if src.synthetic and name and tasks.NAMES[name] then
      return nil, "task " .. name .. " needs the real data; the synthetic zoo has tasks " ..
        table.concat(zoo.task_names(spec.space), ", "), 1
    end
    if spec.file_all then
      -- every task of the file, each checked against the data of its own space
      local list, lerr = tasks.load_all{file = o["task-file"]}
      if not list then return nil, lerr, 1 end
      for _, t in ipairs(list) do
        local tsrc, terr = source_for(t.space or spec.space)
        if not tsrc then return nil, terr, 1 end
        local ok, derr = tasks.check_devices(t.train, tsrc.devices, "source")
        if ok then ok, derr = tasks.check_devices(t.test, tsrc.devices, "target") end
        if not ok then return nil, o["task-file"] .. ": task " .. tostring(t.name) .. ": " .. derr, 1 end
        jobs[#jobs + 1] = {src = tsrc, task = t}
      end
    else
      local task, terr
      if src.synthetic and not (o.train or o.test or o["task-file"]) then
        task, terr = zoo.task(spec.space, name)
      else
        task, terr = tasks.resolve{name = name, space = spec.space, devices = src.devices,
          train = o.train and util.split(o.train) or nil, test = o.test and util.split(o.test) or nil,
          file = o["task-file"], tasks_file = src.tasks_file}
      end
      if not task then return nil, terr, 1 end
      jobs[#jobs + 1] = {src = src, task = task}
    end
  end
  return jobs
end

function commands.run.main(o)
  local tasks = require "nasflat.tasks"
  local settings, serr = M.run_settings(o)
  if not settings then return fail(serr, 2) end
  local budgets = settings.budgets
  if o.threads then
    if o.threads > 256 then return fail("--threads must be between 1 and 256 (got " .. o.threads .. ")", 2) end
    core.set_threads(o.threads)
  end
  local jobs, jerr, jcode = M.run_jobs(o)
  if not jobs then return fail(jerr, jcode) end
  if #jobs > 1 and o["save-model"] then return fail("--save-model needs a single task (not --task all)", 2) end
  if o.pretrained and o.cache then return fail("--pretrained and --cache exclude each other", 2) end
  local report, finish = progress_for(o)
  local records = {}
  local pretrained
  if o.pretrained then
    local perr
    pretrained, perr = require("nasflat.predictor").load(o.pretrained)
    if not pretrained then finish() return fail(perr) end
  end
  for _, job in ipairs(jobs) do
    local eo = {source = job.src, task = job.task, pretrained = pretrained, save_pretrained = o["save-model"],
      cache_dir = o.cache, progress = report}
    for k, v in pairs(settings) do eo[k] = v end
    local rec, rerr = experiment.run(eo)
    if not rec then finish() return fail(rerr) end
    local main = rec.predictors[1]
    rec.mean_spearman = rec.mean[main][tostring(budgets[1])]
    rec.main_predictor = main
    records[#records + 1] = rec
  end
  finish()
  local result = #records == 1 and records[1] or {tasks = records}
  if #records > 1 then
    local xs = {}
    for _, rec in ipairs(records) do xs[#xs + 1] = rec.mean_spearman end
    result.mean_spearman = util.mean_std(xs)
  end
  if o.out then
    local stem = (#records == 1 and records[1].task or "all") .. "-seed" .. o.seed
    local jp, werr = require("nasflat.results").write{dir = o.out, stem = stem, value = result,
      csv = require("nasflat.results").csv(records)}
    if not jp then return fail(werr) end
    if not o.quiet and core.isatty(2) then io.stderr:write("results: ", jp, ", ", werr, "\n") end
  end
  local out, close = stdout_writer()
  if o.json then
    out(json.encode(result), "\n")
  else
    print_run_table(records, out)
    local published = 0
    for _, rec in ipairs(records) do
      if tasks.PUBLISHED.NASFLAT[rec.task] then published = published + 1 end
    end
    if published > 0 then print_paper_tables(records, budgets, out) end
  end
  local ok, cerr = close()
  if not ok then return fail(cerr) end
  return 0
end

--- The user's samples CSV (columns arch and ms): canonical arch strings and ms, or nil and "FILE:LINE:COL: ...".
local function read_samples_file(path, space, src)
  local tab, err = require("nasflat.data").load_table(path, {strings = {"arch"}, key = false})
  if not tab then return nil, err end
  local header = tab:header()
  local col = {}
  for i, h in ipairs(header) do col[h] = i end
  for _, need in ipairs({"arch", "ms"}) do
    if not col[need] then
      return nil, string.format("%s:1: no column '%s' (the header has: %s; expected arch,ms)", path, need,
        table.concat(header, ","))
    end
  end
  local archs, ms = {}, {}
  for r = 1, tab:n_rows() do
    local line = r + 1
    local a, v = tab:get(r, "arch"), tab:get(r, "ms")
    if a == nil or a == "" then return nil, string.format("%s:%d:%d: empty arch", path, line, col.arch) end
    local idx = tostring(a):match("^%d+$")
    if idx then
      if not src then
        return nil, string.format("%s:%d:%d: '%s' is a dataset index, but there is no data directory to look it up " ..
          "(--data DIR)", path, line, col.arch, a)
      end
      local row = src.latency:row_of(math.tointeger(tonumber(idx)))
      if not row then
        return nil, string.format("%s:%d:%d: no architecture with arch_index %s in the %s data", path, line, col.arch,
          idx, space.name)
      end
      a = src.arch_strings[row]
    else
      local code, perr = space:parse(tostring(a))
      if not code then return nil, string.format("%s:%d:%d: %s", path, line, col.arch, perr) end
      a = space:format(code)
    end
    if type(v) ~= "number" or not (v > 0 and v < math.huge) then
      return nil, string.format("%s:%d:%d: ms must be a positive number (got %s)", path, line, col.ms,
        type(v) == "number" and json.number(v) or v == nil and "an empty cell" or string.format("%q", v))
    end
    archs[#archs + 1], ms[#ms + 1] = a, v
  end
  tab:free()
  if #archs == 0 then return nil, path .. ": no measurements" end
  return archs, ms
end

function commands.fit.main(o)
  for _, need in ipairs({"space", "samples", "out"}) do
    if not o[need] then return fail("fit: --" .. need .. " is required (see `nasflat fit --help`)", 2) end
  end
  if o.space ~= "nb201" and o.space ~= "fbnet" then
    return fail("fit: --space must be nb201 or fbnet (got '" .. o.space .. "')", 2)
  end
  if not model.KINDS[o.predictor] then
    return fail(string.format("fit: --predictor must be one of %s (got '%s')", list_text(model.KIND_NAMES),
      o.predictor), 2)
  end
  if o.sources and o.task then return fail("fit: give --sources or --task, not both", 2) end
  local space = require("nasflat.space").get(o.space)
  local needs_data = o.predictor ~= "ridge"
  local src
  local dir = require("nasflat.data").dir{dir = o.data}
  if dir then
    local err
    src, err = require("nasflat.source").open{data = dir, space = o.space}
    if not src then return fail(err) end
  elseif needs_data then
    return fail("fit: the " .. o.predictor .. " model needs the source devices' data: no data directory found " ..
      "(--data DIR, $NASFLAT_DATA, or ../shared/data); --predictor ridge needs none", 1)
  end
  local archs, ms = read_samples_file(o.samples, space, src)
  if not archs then return fail(archs == nil and ms or "unreadable samples") end
  local sources
  if o.sources then
    sources = util.split(o.sources)
    if #sources == 0 then return fail("fit: --sources: empty list", 2) end
  elseif o.task then
    local task, terr = require("nasflat.tasks").resolve{name = o.task, space = o.space, devices = src and src.devices
      or {}, tasks_file = src and src.tasks_file}
    if not task then return fail(terr, 2) end
    sources = task.train
  end
  if sources and src then
    local ok, derr = require("nasflat.tasks").check_devices(sources, src.devices, "source")
    if not ok then return fail(derr, 2) end
  end
  local fopts = {kind = o.predictor, space = o.space, samples = {archs = archs, ms = ms}, target = o.target,
    seed = o.seed, data = src, sources = sources}
  if o.pretrained then fopts.pretrained = o.pretrained end
  local kopts, kerr = M.kind_options(o["kind-options"])
  if not kopts then return fail(kerr, 2) end
  for kind in pairs(kopts) do
    if kind ~= o.predictor then return fail("fit: --kind-options for " .. kind .. ", the model is " .. o.predictor, 2) end
  end
  for k, v in pairs(kopts[o.predictor] or {}) do fopts[k] = v end
  local P, err = model.fit(fopts)
  if not P then return fail(err) end
  local ok, serr = P:save(o.out)
  if not ok then return fail(serr) end
  if P.duplicates_merged > 0 and not o.quiet then
    io.stderr:write(string.format("nasflat: %d repeated measurements of the same architecture were merged " ..
      "(geometric mean per architecture)\n", P.duplicates_merged))
  end
  local out, close = stdout_writer()
  if o.json then
    local desc = {model = o.out, kind = P.kind, space = P.space, target = P.target, samples = P.n_samples,
      duplicates_merged = P.duplicates_merged, interval90_factor = math.exp(P:interval_halfwidth(0.9))}
    if P.weights then
      desc.weights = {}
      for ci, c in ipairs(P.components) do desc.weights[c] = P.weights[ci] end
    end
    if P.sm then desc.sources = P.sm.devices end
    out(json.encode(desc), "\n")
  else
    out(tostring(P), "\nsaved: ", o.out, "\n")
  end
  local cok, cerr = close()
  if not cok then return fail(cerr) end
  return 0
end

--- The architectures of a predict call, canonical, or nil, message, exit code.
local function predict_archs(o, pos, space)
  local modes = (#pos > 0 and 1 or 0) + (o.archs and 1 or 0) + (o.all and 1 or 0) + (o.random and 1 or 0)
  if modes ~= 1 then
    return nil, "predict: give the architectures one way: arguments, --archs FILE, --all or --random N", 2
  end
  if o.all then
    if space.name ~= "nb201" then
      return nil, "predict: --all needs an enumerable space; fbnet has 9^22 architectures (use --random N)", 2
    end
    return space:enumerate()
  end
  if o.random then return space:sample(core.Rng(o.seed), o.random) end
  local list, where = {}, {}
  if #pos > 0 then
    for i, a in ipairs(pos) do list[i], where[i] = a, "argument " .. i end
  else
    local f, err
    if o.archs == "-" then f = io.stdin else f, err = io.open(o.archs, "r") end
    if not f then return nil, string.format("predict: --archs: cannot open %s", err), 1 end
    local n = 0
    local lines_ok, lines_err = pcall(function()
    for line in f:lines() do
      n = n + 1
      local a = line:match("^%s*(.-)%s*$")
      if a ~= "" and a:sub(1, 1) ~= "#" then
        list[#list + 1], where[#list + 1] = a, (o.archs == "-" and "stdin" or o.archs) .. ":" .. n
      end
    end
    end)
    if f ~= io.stdin then f:close() end
    if not lines_ok then
      return nil, string.format("predict: --archs: cannot read %s (%s)", o.archs,
        tostring(lines_err):gsub("^.-:%d+: ", "")), 1
    end
    if #list == 0 then return nil, "predict: " .. o.archs .. ": no architectures", 1 end
  end
  for i, a in ipairs(list) do
    local code, perr = space:parse(a)
    if not code then return nil, where[i] .. ": " .. perr, #pos > 0 and 2 or 1 end
    list[i] = space:format(code)
  end
  return list
end

function commands.predict.main(o, pos)
  if not o.model then return fail("predict: --model FILE is required", 2) end
  if o.interval and o.interval >= 1 then return fail("predict: --interval must be a probability in (0, 1)", 2) end
  local P, err = model.load(o.model)
  if not P then return fail(err) end
  local space = require("nasflat.space").get(P.space)
  local list, aerr, acode = predict_archs(o, pos, space)
  if not list then return fail(aerr, acode) end
  local out, close = stdout_writer()
  if P.network_file then
    -- a pre-trained network: scores on one of its devices
    local net = P.tuned.nets[1]
    local devs = net:devices()
    local device = o.device or (#devs == 1 and devs[1])
    if not device then return fail("predict: --device is required; the network knows: " .. table.concat(devs, ", "), 2) end
    local known = false
    for _, d in ipairs(devs) do known = known or d == device end
    if not known then
      return fail("predict: unknown device '" .. device .. "'; the network knows: " .. table.concat(devs, ", "))
    end
    local g, gerr = require("nasflat.model_gnn").graphs(net, space, list)
    if not g then return fail(gerr) end
    local s = net:predict{graphs = g, device = device}:totable()
    if o.json then
      local preds = {}
      for i, a in ipairs(list) do preds[i] = {arch = a, score = s[i]} end
      out(json.encode({model = o.model, device = device, predictions = preds}), "\n")
    else
      out("arch,score\n")
      for i, a in ipairs(list) do out(a, ",", json.number(s[i]), "\n") end
    end
  else
    if o.device then return fail("predict: --device is for network files; this model predicts " .. P.target, 2) end
    local CHUNK = 16384   -- architectures per prediction: bounded memory for any --random N
    if o.json then out('{"model":', json.encode(o.model), ',"kind":', json.encode(P.kind), ',"space":',
      json.encode(P.space), ',"target":', json.encode(P.target), ',"predictions":[') end
    if not o.json then out(o.interval and "arch,ms,lo,hi\n" or "arch,ms\n") end
    for c0 = 1, #list, CHUNK do
      local part = table.move(list, c0, math.min(c0 + CHUNK - 1, #list), 1, {})
      local ms, info = P:predict(part, {interval = o.interval})
      local m, lo, hi = ms:totable(), info.lo and info.lo:totable(), info.hi and info.hi:totable()
      local buf = {}
      for i, a in ipairs(part) do
        if o.json then
          buf[#buf + 1] = (c0 + i > 2 and "," or "") .. json.encode({arch = a, ms = m[i], lo = lo and lo[i],
            hi = hi and hi[i]})
        elseif lo then
          buf[#buf + 1] = string.format("%s,%.9g,%.9g,%.9g\n", a, m[i], lo[i], hi[i])
        else
          buf[#buf + 1] = string.format("%s,%.9g\n", a, m[i])
        end
      end
      if not out(table.concat(buf)) then break end
    end
    if o.json then out("]}\n") end
  end
  local ok, cerr = close()
  if not ok then return fail(cerr) end
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
  if o.svg then
    local ok, serr = require("nasflat.cli_tasks").write_matrix_svg(src, o.svg)
    if not ok then return fail(serr) end
  end
  if o.json then
    info.device_names = devs
    local out, close = stdout_writer()
    out(json.encode(info), "\n")
    local ok, cerr = close()
    if not ok then return fail(cerr) end
    return 0
  end
  local out, close = stdout_writer()
  local function print_line(text) out(text, "\n") end
  print_line(string.format("%s: %d architectures, %d devices, data: %s%s", info.space, info.architectures, n,
    tostring(src.info.data), src.synthetic and "  [SYNTHETIC device zoo: computed, not measured]" or ""))
  print_line(string.format("%-48s %8s %7s %10s %10s %7s  %s", "device", "measured", "missing", "min ms", "max ms",
    "mean rho", "least correlated with"))
  for _, d in ipairs(info.devices) do
    print_line(string.format("%-48s %8d %7d %10.3f %10.3f %7.3f  %s (%.3f)", d.name, d.measured, d.missing, d.min_ms,
      d.max_ms, d.mean_spearman_others or 0 / 0, d.least_correlated or "-", d.least_spearman or 0 / 0))
  end
  if o.matrix then
    out("\nSpearman matrix (rows/cols in the order above)\n")
    for i = 1, n do
      local cells = {}
      for j = 1, n do cells[j] = string.format("%5.2f", rho[i][j]) end
      out(string.format("%-3d ", i), table.concat(cells, " "), "\n")
    end
  end
  local ok, cerr = close()
  if not ok then return fail(cerr) end
  return 0
end

--- Run a command with subcommands (`nasflat tasks`, `nasflat sweep`): argv without the command's name; d holds
-- command (the top-level usage), sub (name -> command spec), order (names in usage order), main (name ->
-- function(o, pos)), positional (names that take positional arguments). Returns the exit status.
function M.dispatch_subcommands(d, argv)
  local sub = argv[1]
  if sub == nil or sub == "-h" or sub == "--help" or sub == "help" then
    local which = sub == "help" and argv[2] and d.sub[argv[2]]
    io.stdout:write(which and usage_of(which) or usage_of(d.command))
    return 0
  end
  local cmd = d.sub[sub]
  if not cmd then
    return fail(string.format("%s: unknown subcommand '%s' (subcommands: %s)", d.command.name, sub,
      table.concat(d.order, ", ")), 2)
  end
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  local o, pos = parse(cmd, rest)
  if not o then return fail(pos, 2) end
  if o.help then io.stdout:write(usage_of(cmd)) return 0 end
  if not (d.positional or {})[sub] and #pos > 0 then
    return fail(string.format("%s: unexpected argument '%s'", cmd.name, pos[1]), 2)
  end
  local ok, code = xpcall(d.main[sub], debug.traceback, o, pos)
  if not ok then
    if tostring(code):find("interrupted!", 1, true) then return fail("interrupted", 130) end
    return fail("internal error: " .. tostring(code), 70)
  end
  return code
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
  if not cmd then
    return fail("unknown command '" .. tostring(name) .. "' (commands: fit, predict, run, data, tasks, sweep, measure, " ..
      "search, study, help)", 2)
  end
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  if cmd.dispatch then return cmd.dispatch(rest) end   -- a command with subcommands parses its own
  local o, pos = parse(cmd, rest)
  if not o then return fail(pos, 2) end
  if o.help then io.stdout:write(usage_of(cmd)) return 0 end
  if cmd ~= commands.predict and #pos > 0 then
    return fail(string.format("%s: unexpected argument '%s'", name, pos[1]), 2)
  end
  local ok, code = xpcall(cmd.main, debug.traceback, o, pos)
  if not ok then
    -- lua5.4 turns Ctrl-C into the error "interrupted!": a clean stop, not an internal error
    if tostring(code):find("interrupted!", 1, true) then return fail("interrupted", 130) end
    return fail("internal error: " .. tostring(code), 70)
  end
  return code
end

M._parse = parse
M._usage_of = usage_of
M._commands = commands
return M
