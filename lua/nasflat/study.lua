--- nasflat.study — the ablation study runner (issue 5, item 4): sweep one axis at a time from a base
-- configuration over a list of tasks and trials, and tabulate mean ± std Spearman per task.
--
--   local study = require "nasflat.study"
--   local result = study.run{data = DIR, tasks = {"N2", "F3"}, trials = 3, axes = {"predictor", "budget"}}
--   io.stdout:write(study.tables(result))
--   study.save(result, "results")           -- results/study-<UTC time>.json and .csv, both or neither
--
-- Axes (M.AXES, in this order by default); every setting is a name plus experiment.run option overrides
-- on top of the base (`model` overrides merge key by key into the base model options):
--   predictor         graph layer: dense (dgf), gat, gat4 (gat_mh), ensemble, mlp (an MLP on the flattened
--                     one-hot ops + adjacency; skipped, with the reason, while nasflat.predictor rejects it)
--   sampler_encoding  the transfer samples: each sampler of `samplers` × each encoding of `encodings`
--                     ("random" ignores the encoding: one setting)
--   device            where the device embedding enters (per node, at the MLP head, none), with and without
--                     the correlation-based initialisation of the target's embedding (METHOD §4)
--   op_supplementary  learned op embedding vs one-hot (model.op_encoding), and the supplementary input z:
--                     each of `supplementaries` (none, struct, struct+floor: the inputs a network can rebuild for any
--                     architecture; zcp, arch2vec and their combinations lost, docs/study.md §7.2, and went)
--   budget            the transfer budget curve: the base setting at each of `budgets` samples
-- An axis may also be given as a table {name =, title =, settings = {{name =, label =, overrides = {...}}}}.
-- Setting names are unique across the default axes, so `settings = {"gat", "head"}` picks finalists.
--
-- Every setting is evaluated with the structural ridge (METHOD §10) on the same transfer samples, so each
-- table has a ridge row: one row when all settings of the axis draw the same samples (predictor, device,
-- op_supplementary), one per sampling otherwise (sampler_encoding, budget).
--
-- Cells: for each trial, the mean Spearman over the task's target devices; the cell is the mean ± sample std of
-- that over the trials ("0.912 ± 0.010"). The mean column does the same with the per-trial mean over the tasks
-- (shown only when every task has a result).
--
-- Pre-training reuse. The options that change the pre-trained model — model, supplementary, pretrain_samples,
-- epochs, seed, batch, lr, weight_decay — together with the task (space, name, source devices) and the data
-- (directory and file checksums, or the zoo seed) form a key (nasflat.pretrain_cache). Every setting runs
-- experiment.run{cache_dir = <dir>}: the first that needs a (task, key) pre-trains and saves the network there;
-- every later setting with the same key loads that file and only transfers. So the transfer-only axes (sampler ×
-- encoding, init_device, the budget curve) pre-train nothing beyond the base model, and the base setting, which
-- recurs in every axis, is computed once (identical experiment options → the same record, counted as
-- results_reused). result.pretraining = {trained, reused, loaded}; each axis has its own counts and wall time.
-- Models live in a temporary directory removed at the end, or in `cache_dir` (kept, with nasflat.pretrain_cache's
-- keys and files, which `nasflat run --cache` shares; a later study with the same key loads them: "loaded").
-- Same seed → same numbers whether a model was trained in this run or loaded.
--
-- Default task subset for the wide sweeps (M.SUBSET = N2, F3, F4, FA), from the first reduced-settings
-- measurements (pre-training 256 × 30, GAT mask −∞, transfer 1e-3 × 30: GNN / ridge Spearman):
--   N2  NB201, edge and mobile accelerators as targets (Jetson, edge TPU, two Hexagon DSPs, Pixel 3): the NB201
--       task where the published NASFLAT is weakest (0.857) and our GNN trails our ridge (.904 / .928);
--   F3  FBNet, server GPUs as targets: the largest GNN–ridge gap of all twelve (.809 / .906);
--   F4  FBNet, GPU + phones: the one task where the published GNN clearly beats ridge (0.734 vs 0.659), so a
--       setting that only imitates ridge does not win the sweep;
--   FA  FBNet, the hardest task for every predictor (.676 / .718).
-- Together they cover server-GPU, phone and accelerator targets in both spaces. Cost balance for two processes:
-- one NB201 transfer trial scores 5 targets × 15,625 cells, the three FBNet tasks 12 × 5,000, so `--tasks N2`
-- and `--tasks F3,F4,FA` take about the same time. The full 12-task table (tasks = nasflat.tasks.PAPER) is for
-- the finalists: `settings = {...}` with the few winning names.
-- On the synthetic zoo the default is {"ZD"}.
local core = require "nasflat.core"
local util = require "nasflat.util"
local experiment = require "nasflat.experiment"
local PC = require "nasflat.pretrain_cache"

local M = {}

M.AXES = {"predictor", "sampler_encoding", "device", "op_supplementary", "budget", "visibility", "transfer",
  "pretraining"}
M.SUBSET = {"N2", "F3", "F4", "FA"}
M.SYNTHETIC_SUBSET = {"ZD"}
--- Samplers experiment.run can drive (params and latency need per-architecture values it does not pass).
M.SAMPLERS = {"random", "kmeans", "cosine", "cosine_greedy", "kmeancosine"}

--- The base configuration: experiment.run's defaults, then these, then the `base` option.
M.BASE = {
  budgets = {20},
  predictors = {"nasflat", "ridge"},
}

M.DEFAULTS = {
  data = util.NIL,               -- data directory or "synthetic" (default: nasflat.data.dir())
  sources = util.NIL,            -- an opened Source (nasflat.source.open), or {nb201 = Source, fbnet = Source}
  tasks = util.NIL,              -- names (N2, F3, ..., ZD; "fbnet:ZD" for a zoo task in FBNet) or task tables
  trials = 3,
  seed = 1,
  axes = util.NIL,               -- names of M.AXES and/or axis tables (default: all of M.AXES)
  settings = util.NIL,           -- keep only the settings with these names (axes left empty are dropped)
  base = util.NIL,               -- experiment.run options overriding M.BASE and experiment.DEFAULTS
  samplers = {"random", "kmeans", "cosine", "cosine_greedy", "kmeancosine"},
  encodings = {"struct", "zcp", "arch2vec", "path"},
  supplementaries = {"none", "struct"},
  budgets = {5, 10, 20},         -- the budget curve
  pretrain_samples = 256,        -- reduced settings (5× cheaper than 512 × 150; FBNet transfers better from them:
                                 -- docs/study.md 7.3)
  epochs = 30,
  progress = util.NIL,           -- function(fmt, ...) for progress lines
  on_axis = util.NIL,            -- function(axis_result, result) called when an axis is done
  cache_dir = util.NIL,          -- keep pre-trained models here and reuse them across studies
  experiment = util.NIL,         -- function(options, unit) in place of experiment.run (default); unit = {axis,
                                 -- setting, task, pretrain_key}: how nasflat.sweep_study plans a study as jobs
                                 -- and merges their results through this same loop
}

-- Options the study sets itself and a base may not.
local MANAGED = {source = true, task = true, progress = true, pretrained = true, save_pretrained = true,
  cache_dir = true,
  trials = "trials", seed = "seed", pretrain_samples = "pretrain_samples", epochs = "epochs"}

--------------------------------------------------------------------------------------------------- helpers
local function copy(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = copy(v) end
  return out
end

local canon = PC.canon

local function merge(base, over)
  local out = copy(base)
  for k, v in pairs(over or {}) do
    if k == "model" then
      out.model = copy(out.model or {})
      for mk, mv in pairs(v) do out.model[mk] = copy(mv) end
    else
      out[k] = copy(v)
    end
  end
  return out
end

local function check_list(name, v, known)
  if type(v) ~= "table" or #v == 0 then error(string.format("study.run: option '%s' must be a non-empty list", name), 3) end
  for i, x in ipairs(v) do
    if type(x) ~= "string" then error(string.format("study.run: %s entry %d must be a string", name, i), 3) end
    if known and not known[x] then
      local names = {}
      for k in pairs(known) do names[#names + 1] = k end
      table.sort(names)
      error(string.format("study.run: unknown %s '%s' (known: %s)", name:gsub("s$", ""), x, table.concat(names, ", ")), 3)
    end
  end
end

local function check_budgets(name, v)
  if type(v) ~= "table" or #v == 0 then error(string.format("study.run: option '%s' must be a non-empty list", name), 3) end
  for _, k in ipairs(v) do
    if math.type(k) ~= "integer" or k < 1 then
      error(string.format("study.run: %s must be positive integers (got %s)", name, tostring(k)), 3)
    end
  end
end

local function check_encoding(what, name)
  local known = {}
  for _, n in ipairs(require("nasflat.encodings").NAMES) do known[n] = true end
  if type(name) ~= "string" or name == "" then error(string.format("study.run: %s must be encoding names", what), 3) end
  for piece in name:gmatch("[^+]+") do
    if not known[piece] then
      error(string.format("study.run: unknown encoding '%s' in %s '%s' (known: %s, joined with '+')", piece, what,
        name, table.concat(require("nasflat.encodings").NAMES, ", ")), 3)
    end
  end
end

--------------------------------------------------------------------------------------------------- axes
--- The default axis `name` as {name, title, settings}, built from the study options `o`.
local function default_axis(name, o, base)
  local settings = {}
  local function add(sname, label, overrides) settings[#settings + 1] = {name = sname, label = label,
    overrides = overrides or {}} end
  if name == "predictor" then
    add("dense", "dense (DGF)", {model = {layer = "dgf"}})
    add("gat", "GAT", {model = {layer = "gat"}})
    add("gat4", "4-head GAT", {model = {layer = "gat_mh"}})
    add("ensemble", "ensemble (DGF + GAT) / 2", {model = {layer = "ensemble"}})
    -- the MLP reads the ops one-hot and takes the device at its head (predictor.new refuses "node" there)
    add("mlp", "MLP on flattened one-hot ops + adjacency (device at the head)", {model = {layer = "mlp",
      device_at = "head", op_encoding = base.model and base.model.op_encoding ~= nil and "onehot" or nil}})
    return {name = name, title = "predictor (graph layer)", settings = settings}
  elseif name == "sampler_encoding" then
    for _, s in ipairs(o.samplers) do
      if s == "random" then
        add("random", "random", {sampler = "random"})
      else
        for _, e in ipairs(o.encodings) do add(s .. "/" .. e, s .. " on " .. e, {sampler = s, encoding = e}) end
      end
    end
    return {name = name, title = "transfer sampler × encoding", settings = settings}
  elseif name == "device" then
    add("node+corr", "per node, correlation init", {model = {device_at = "node"}, init_device = "correlation"})
    add("node", "per node, no init", {model = {device_at = "node"}, init_device = "none"})
    add("head+corr", "at the MLP head, correlation init", {model = {device_at = "head"}, init_device = "correlation"})
    add("head", "at the MLP head, no init", {model = {device_at = "head"}, init_device = "none"})
    add("no-device", "none (no device embedding)", {model = {device_at = "none"}, init_device = "none"})
    return {name = name, title = "device representation", settings = settings}
  elseif name == "op_supplementary" then
    -- the learned embedding is the predictor's default: name it explicitly only when the base changed it
    add("learned", "learned op embedding",
      base.model and base.model.op_encoding ~= nil and {model = {op_encoding = "learned"}} or {})
    add("onehot", "one-hot ops", {model = {op_encoding = "onehot"}})
    for _, z in ipairs(o.supplementaries) do add("z:" .. z, "supplementary z: " .. z, {supplementary = z}) end
    return {name = name, title = "op encoding and supplementary input", settings = settings}
  elseif name == "budget" then
    add("curve", "budget curve", {budgets = copy(o.budgets)})
    return {name = name, title = "transfer budget", settings = settings, budget_rows = true}
  elseif name == "visibility" then
    -- how ops on dead branches (cut by none, skip or a dead end) reach the network (METHOD §2's caution)
    add("mask-inf", "pruned graph, GAT mask −∞", {graph = "pruned", model = {quirk_gat_mask_zero = false}})
    add("mask-zero", "pruned graph, GAT mask 0 (the reference's)", {graph = "pruned",
      model = {quirk_gat_mask_zero = true}})
    add("unpruned", "unpruned graph, GAT mask −∞", {graph = "unpruned", model = {quirk_gat_mask_zero = false}})
    add("unpruned+zero", "unpruned graph, GAT mask 0", {graph = "unpruned", model = {quirk_gat_mask_zero = true}})
    add("identity", "fbnet: layers without edges (the reference's adjacency), GAT mask 0", {graph = "identity"})
    return {name = name, title = "dead operations: graph and attention mask", settings = settings}
  elseif name == "transfer" then
    add("lr1e-4x20", "lr 1e-4 × 20 epochs (the reference's documented)", {transfer_lr = 1e-4, transfer_epochs = 20})
    add("lr1e-3x30", "lr 1e-3 × 30 epochs", {transfer_lr = 1e-3, transfer_epochs = 30})
    add("lr3e-3x40", "lr 3e-3 × 40 epochs (the reference's job list)", {transfer_lr = 3e-3, transfer_epochs = 40})
    add("lr3e-3x80", "lr 3e-3 × 80 epochs", {transfer_lr = 3e-3, transfer_epochs = 80})
    add("lr3e-3x160", "lr 3e-3 × 160 epochs", {transfer_lr = 3e-3, transfer_epochs = 160})
    add("lr1e-2x40", "lr 1e-2 × 40 epochs", {transfer_lr = 1e-2, transfer_epochs = 40})
    add("lr1e-2x20", "lr 1e-2 × 20 epochs", {transfer_lr = 1e-2, transfer_epochs = 20})
    add("lr1e-2x80", "lr 1e-2 × 80 epochs", {transfer_lr = 1e-2, transfer_epochs = 80})
    add("lr5e-3x80", "lr 5e-3 × 80 epochs", {transfer_lr = 5e-3, transfer_epochs = 80})
    add("members3", "the space's schedule, 3 fine-tuned copies averaged", {transfer_members = 3})
    add("members5", "the space's schedule, 5 fine-tuned copies averaged", {transfer_members = 5})
    return {name = name, title = "transfer schedule", settings = settings}
  elseif name == "pretraining" then
    add("256x30", "256 architectures × 30 epochs per source", {pretrain_samples = 256, epochs = 30})
    add("512x50", "512 × 50", {pretrain_samples = 512, epochs = 50})
    add("512x150", "512 × 150 (the paper's)", {pretrain_samples = 512, epochs = 150})
    return {name = name, title = "pre-training length", settings = settings}
  end
  error(string.format("study.run: unknown axis '%s' (known: %s)", tostring(name), table.concat(M.AXES, ", ")), 3)
end

local function check_overrides(where, ov)
  if type(ov) ~= "table" then error(string.format("study.run: %s: overrides must be a table", where), 3) end
  for k, v in pairs(ov) do
    if experiment.DEFAULTS[k] == nil then
      error(string.format("study.run: %s: unknown experiment option '%s'", where, tostring(k)), 3)
    end
    if MANAGED[k] == true then
      error(string.format("study.run: %s: option '%s' is set by the study", where, k), 3)
    end
    if k == "model" and type(v) ~= "table" then error(string.format("study.run: %s: 'model' must be a table", where), 3) end
  end
end

--------------------------------------------------------------------------------------------------- sources, tasks
local function open_sources(o)
  local given = o.sources
  local by = {}
  if given then
    if type(given) ~= "table" then error("study.run: option 'sources' must be a Source or a table of them", 3) end
    if given.space_name then by[given.space_name] = given
    else for k, v in pairs(given) do by[k] = v end end
  end
  local data = o.data
  if data == nil and not given then
    local err
    data, err = require("nasflat.data").dir()
    if not data then return nil, err end
  end
  return function(space)
    if by[space] then return by[space] end
    if not data then return nil, "no source for " .. space .. " (option 'sources' has none; give 'data')" end
    local src, err = require("nasflat.source").open{data = data, space = space}
    if not src then return nil, err end
    by[space] = src
    return src
  end
end

local function resolve_task(spec, source_for)
  local tasks = require "nasflat.tasks"
  if type(spec) == "table" then
    local src, err = source_for(spec.space or "nb201")
    if not src then return nil, err end
    local t, terr = tasks.resolve{name = spec.name, space = spec.space or "nb201", train = spec.train,
      test = spec.test, devices = src.devices}
    if not t then return nil, terr end
    return t, src
  end
  if type(spec) ~= "string" then error("study.run: tasks must be names or task tables", 3) end
  local space, name = spec:match("^(%w+):(%w+)$")
  name = name or spec
  if tasks.NAMES[name] then
    if space and space ~= tasks.NAMES[name][1] then
      return nil, string.format("task %s is an %s task, not %s", name, tasks.NAMES[name][1], space)
    end
    local src, err = source_for(tasks.NAMES[name][1])
    if not src then return nil, err end
    if src.synthetic then return nil, "task " .. name .. " needs the real data (the source is the synthetic zoo)" end
    local t, terr = tasks.resolve{name = name, devices = src.devices, tasks_file = src.tasks_file}
    if not t then return nil, terr end
    return t, src
  end
  space = space or "nb201"
  if space ~= "nb201" and space ~= "fbnet" then return nil, "unknown space '" .. space .. "' in task '" .. spec .. "'" end
  local zoo = require "nasflat.zoo"
  local t = zoo.task(space, name)
  if not t then
    local names = {}
    for k in pairs(tasks.NAMES) do names[#names + 1] = k end
    table.sort(names)
    return nil, string.format("unknown task '%s' (paper tasks: %s; zoo tasks: %s)", spec, table.concat(names, ", "),
      table.concat(zoo.task_names(space), ", "))
  end
  local src, err = source_for(space)
  if not src then return nil, err end
  if not src.synthetic then return nil, "task " .. name .. " is a synthetic zoo task (use data = \"synthetic\")" end
  return t, src
end

--------------------------------------------------------------------------------------------------- cells
--- Per-trial means over the targets of predictor `p` at budget index `bi`: a list (one per trial).
local function trial_means(rec, bi, p)
  local out = {}
  local n_trials = #rec.targets[1].budgets[bi].trials
  for t = 1, n_trials do
    local xs = {}
    for _, e in ipairs(rec.targets) do
      local r = e.budgets[bi].trials[t][p]
      xs[#xs + 1] = r and r.spearman or 0 / 0
    end
    out[t] = util.mean_std(xs) or 0 / 0
  end
  return out
end

local function summary(xs)
  local m, s = util.mean_std(xs)
  return {mean = m, std = s, trials = xs}
end

local function cell_text(c)
  if c == nil then return "-" end
  if c.error then return "error" end
  if c.mean == nil then return "-" end
  return string.format("%.3f ± %.3f", c.mean, c.std)
end

--- Table rows of one axis result: {label, cells = {[task] = {mean, std, trials} | {error}}, mean = {...}}.
local function axis_rows(ax, task_names)
  local rows = {}
  local function row(label, get)
    local r = {label = label, cells = {}}
    local per_trial, complete = {}, true
    for _, tn in ipairs(task_names) do
      local c = get(tn)
      r.cells[tn] = c
      if c and c.trials then
        for t, x in ipairs(c.trials) do per_trial[t] = per_trial[t] or {}; table.insert(per_trial[t], x) end
      else
        complete = false
      end
    end
    if complete and #task_names > 0 then
      local xs = {}
      for t, list in ipairs(per_trial) do xs[t] = util.mean_std(list) or 0 / 0 end
      r.mean = summary(xs)
    end
    rows[#rows + 1] = r
    return r
  end
  local function getter(st, p, bi)
    return function(tn)
      local res = st.tasks[tn]
      if not res then return nil end
      if res.error then return {error = res.error} end
      if not res.record.mean[p] then return nil end
      return summary(trial_means(res.record, bi, p))
    end
  end
  local function ridge_key(st)
    return canon({st.options.sampler, st.options.encoding, st.options.budgets})
  end
  local groups, n_groups = {}, 0
  for _, st in ipairs(ax.settings) do
    if not st.skipped then
      local k = ridge_key(st)
      if not groups[k] then groups[k] = true; n_groups = n_groups + 1 end
    end
  end
  local hybrid = false
  for _, p in ipairs(ax.settings[1] and ax.settings[1].options.predictors or {}) do hybrid = hybrid or p == "hybrid" end
  local seen, ridge_from = {}, nil
  for _, st in ipairs(ax.settings) do
    if st.skipped then
      local r = row(st.label .. " — skipped: " .. st.skipped, function() return nil end)
      r.skipped = st.skipped
    elseif ax.budget_rows then
      for bi, k in ipairs(st.options.budgets) do
        row(string.format("%s, k = %d", "nasflat GNN", k), getter(st, "nasflat", bi))
        if hybrid then row(string.format("hybrid, k = %d", k), getter(st, "hybrid", bi)) end
        row(string.format("structural ridge, k = %d", k), getter(st, "ridge", bi))
      end
    else
      row(st.label, getter(st, "nasflat", 1))
      if hybrid then row(st.label .. " — hybrid", getter(st, "hybrid", 1)) end
      local k = ridge_key(st)
      if n_groups > 1 and not seen[k] then
        seen[k] = true
        row("structural ridge (" .. st.name .. " samples)", getter(st, "ridge", 1))
      end
      ridge_from = ridge_from or st
    end
  end
  if n_groups == 1 and ridge_from and not ax.budget_rows then
    row("structural ridge", getter(ridge_from, "ridge", 1))
  end
  return rows
end

--- The Markdown table of one axis result (with a title line).
function M.axis_table(ax, task_names)
  local lines = {}
  local p = ax.pretraining
  lines[1] = string.format("### %s — %s; pre-trainings: %d trained, %d reused, %d loaded; %d results reused; %.0f s",
    ax.name, ax.title, p.trained, p.reused, p.loaded, ax.results_reused, ax.wall_s)
  lines[2] = ""
  lines[3] = "| setting | " .. table.concat(task_names, " | ") .. " | mean |"
  lines[4] = "|---|" .. string.rep("---|", #task_names + 1)
  for _, r in ipairs(ax.rows) do
    local cells = {}
    for i, tn in ipairs(task_names) do cells[i] = cell_text(r.cells[tn]) end
    lines[#lines + 1] = string.format("| %s | %s | %s |", r.label, table.concat(cells, " | "), cell_text(r.mean))
  end
  local notes = {}
  for _, st in ipairs(ax.settings) do
    for _, tn in ipairs(task_names) do
      local res = st.tasks[tn]
      if res and res.error then notes[#notes + 1] = string.format("error: %s on %s: %s", st.name, tn, res.error) end
    end
  end
  if #notes > 0 then lines[#lines + 1] = "" for _, n in ipairs(notes) do lines[#lines + 1] = n end end
  return table.concat(lines, "\n") .. "\n"
end

--- Every axis table of a study result, with a header line; the text run() also stores per axis.
function M.tables(result)
  local out = {string.format("Spearman ρ, mean over target devices, mean ± std over %d trial(s); tasks %s; seed %d\n",
    result.trials, table.concat(result.tasks, ", "), result.seed)}
  for _, ax in ipairs(result.axes) do out[#out + 1] = ax.table end
  local p = result.pretraining
  out[#out + 1] = string.format("pre-trainings: %d trained, %d reused, %d loaded; %d results reused; wall %.0f s\n",
    p.trained, p.reused, p.loaded, result.results_reused, result.wall_s)
  return table.concat(out, "\n")
end

--------------------------------------------------------------------------------------------------- run
--- Run a study. Returns the result record, or nil and a message when the world fails before any work (data
-- missing, unknown task). A setting whose experiment fails (e.g. an encoding the data cannot provide) is
-- recorded with its error and the study goes on. See the top of this file for the options and the record.
function M.run(opts)
  local o = util.options("study.run", opts, M.DEFAULTS)
  local t_start = util.now()
  local report = o.progress or function() end
  if math.type(o.trials) ~= "integer" or o.trials < 1 then error("study.run: option 'trials' must be an integer >= 1", 2) end
  if math.type(o.seed) ~= "integer" then error("study.run: option 'seed' must be an integer", 2) end
  for _, k in ipairs{"pretrain_samples", "epochs"} do
    if math.type(o[k]) ~= "integer" or o[k] < 1 then error("study.run: option '" .. k .. "' must be an integer >= 1", 2) end
  end
  local known_samplers = {}
  for _, s in ipairs(M.SAMPLERS) do known_samplers[s] = true end
  check_list("samplers", o.samplers, known_samplers)
  check_list("encodings", o.encodings)
  for _, e in ipairs(o.encodings) do check_encoding("encodings", e) end
  check_list("supplementaries", o.supplementaries)
  for _, z in ipairs(o.supplementaries) do
    if z ~= "none" and z ~= "auto" and not require("nasflat.source").feature_parts(z) then
      error(string.format("study.run: unknown supplementary input '%s' (auto, none, or nasflat.features names joined by " ..
        "'+': %s)", z, table.concat(require("nasflat.features").NAMES, ", ")), 2)
    end
  end
  check_budgets("budgets", o.budgets)
  if o.settings ~= nil then check_list("settings", o.settings) end
  if o.progress ~= nil and type(o.progress) ~= "function" then error("study.run: option 'progress' must be a function", 2) end
  if o.on_axis ~= nil and type(o.on_axis) ~= "function" then error("study.run: option 'on_axis' must be a function", 2) end
  if o.cache_dir ~= nil and type(o.cache_dir) ~= "string" then error("study.run: option 'cache_dir' must be a string", 2) end
  if o.experiment ~= nil and type(o.experiment) ~= "function" then
    error("study.run: option 'experiment' must be a function", 2)
  end
  local run_experiment = o.experiment or experiment.run
  if o.tasks ~= nil and (type(o.tasks) ~= "table" or #o.tasks == 0) then
    error("study.run: option 'tasks' must be a non-empty list", 2)
  end

  -- the base configuration
  local base_over = o.base or {}
  if type(base_over) ~= "table" then error("study.run: option 'base' must be a table", 2) end
  for k in pairs(base_over) do
    if experiment.DEFAULTS[k] == nil then
      error(string.format("study.run: base: unknown experiment option '%s'", tostring(k)), 2)
    end
    if MANAGED[k] == true then error(string.format("study.run: base: option '%s' is set by the study", k), 2) end
    if MANAGED[k] then error(string.format("study.run: base: give '%s' as a study option, not in base", k), 2) end
  end
  -- every experiment option explicit, so equal configurations have equal keys
  local defaults = {}
  for k, v in pairs(experiment.DEFAULTS) do
    if v ~= util.REQUIRED and v ~= util.NIL and MANAGED[k] ~= true then defaults[k] = copy(v) end
  end
  local base = merge(merge(defaults, M.BASE), base_over)
  base.trials, base.seed, base.pretrain_samples, base.epochs = o.trials, o.seed, o.pretrain_samples, o.epochs
  check_budgets("base.budgets", base.budgets)
  if #base.budgets ~= 1 then
    error("study.run: base.budgets must hold one budget (the budget axis sweeps several: option 'budgets')", 2)
  end
  local has = {}
  for _, p in ipairs(base.predictors) do has[p] = true end
  if not (has.nasflat and has.ridge) then error("study.run: base.predictors must include nasflat and ridge", 2) end

  -- the axes and their settings
  local axes = {}
  local axis_names = {}
  for i, a in ipairs(o.axes or M.AXES) do
    local ax
    if type(a) == "table" then
      if type(a.name) ~= "string" or type(a.settings) ~= "table" or #a.settings == 0 then
        error(string.format("study.run: axis %d must have a name and a non-empty list of settings", i), 2)
      end
      ax = {name = a.name, title = a.title or a.name, settings = {}, budget_rows = a.budget_rows and true or nil}
      for j, s in ipairs(a.settings) do
        if type(s) ~= "table" or type(s.name) ~= "string" then
          error(string.format("study.run: axis '%s' setting %d must be a table with a name", a.name, j), 2)
        end
        ax.settings[j] = {name = s.name, label = s.label or s.name, overrides = copy(s.overrides or {})}
      end
    else
      ax = default_axis(a, o, base)
    end
    if axis_names[ax.name] then error(string.format("study.run: axis '%s' is listed twice", ax.name), 2) end
    axis_names[ax.name] = true
    local seen = {}
    for _, s in ipairs(ax.settings) do
      if seen[s.name] then error(string.format("study.run: axis '%s' has two settings named '%s'", ax.name, s.name), 2) end
      seen[s.name] = true
      local where = string.format("axis '%s' setting '%s'", ax.name, s.name)
      check_overrides(where, s.overrides)
      s.options = merge(base, s.overrides)
      if s.overrides.sampler and not known_samplers[s.overrides.sampler] then
        error(string.format("study.run: %s: sampler '%s' cannot be driven by experiment.run (use: %s)", where,
          s.overrides.sampler, table.concat(M.SAMPLERS, ", ")), 2)
      end
      check_budgets(where .. " budgets", s.options.budgets)
      if #s.options.budgets ~= 1 and not ax.budget_rows then
        error(string.format("study.run: %s: one budget per setting outside a budget axis", where), 2)
      end
    end
    axes[#axes + 1] = ax
  end
  if o.settings then
    local want, used = {}, {}
    for _, n in ipairs(o.settings) do want[n] = true end
    local kept = {}
    for _, ax in ipairs(axes) do
      local keep = {}
      for _, s in ipairs(ax.settings) do
        if want[s.name] then keep[#keep + 1] = s; used[s.name] = true end
      end
      ax.settings = keep
      if #keep > 0 then kept[#kept + 1] = ax end
    end
    for _, n in ipairs(o.settings) do
      if not used[n] then
        local all = {}
        for _, a in ipairs(o.axes or M.AXES) do
          local ax = type(a) == "table" and a or default_axis(a, o, base)
          for _, s in ipairs(ax.settings) do all[#all + 1] = s.name end
        end
        error(string.format("study.run: unknown setting '%s' (the chosen axes have: %s)", n, table.concat(all, ", ")), 2)
      end
    end
    axes = kept
  end

  -- sources and tasks (failures of the world: nil, message)
  local source_for, serr = open_sources(o)
  if not source_for then return nil, serr end
  local task_specs = o.tasks
  if not task_specs then
    local probe_src = type(o.sources) == "table" and (o.sources.space_name and o.sources or o.sources.nb201 or
      o.sources.fbnet) or nil
    local synthetic = o.data == "synthetic" or (probe_src and probe_src.synthetic)
    task_specs = synthetic and M.SYNTHETIC_SUBSET or M.SUBSET
  end
  local tasks, task_names = {}, {}
  for _, spec in ipairs(task_specs) do
    local t, src = resolve_task(spec, source_for)
    if not t then return nil, src end
    local label = t.name
    if type(spec) == "string" and spec:find(":", 1, true) then label = spec end
    for _, prev in ipairs(task_names) do
      if prev == label then error(string.format("study.run: task '%s' is listed twice", label), 2) end
    end
    tasks[#tasks + 1] = {task = t, source = src, label = label}
    task_names[#task_names + 1] = label
  end

  -- settings the predictor cannot build yet (e.g. layer = "mlp" before it exists) are skipped, with the reason;
  -- the base model must build
  local predictor = require "nasflat.predictor"
  local spaces = {}
  for _, t in ipairs(tasks) do spaces[t.source.space_name] = t.source end
  local function probe(model_opts)
    for _, src in pairs(spaces) do
      local mo = copy(model_opts)
      mo.devices, mo.z_dim = {"probe"}, 0
      local ok, m = pcall(predictor.new, src.space:predictor_options(mo))
      if not ok then return (tostring(m):gsub("^[^:]*%.lua:%d+: ", "")) end
      m:free()
    end
  end
  local probed = {}
  local function probe_cached(model_opts)
    local k = canon(model_opts)
    if probed[k] == nil then probed[k] = probe(model_opts) or false end
    return probed[k] or nil
  end
  local why = probe_cached(base.model)
  if why then error("study.run: base model: " .. why, 2) end
  for _, ax in ipairs(axes) do
    for _, s in ipairs(ax.settings) do s.skipped = probe_cached(s.options.model) end
  end

  -- where pre-trained models go
  local dir = o.cache_dir
  local tmp_dir
  if not dir then
    tmp_dir = os.tmpname()
    os.remove(tmp_dir)
    dir = tmp_dir
  end
  local ok, merr = core.vae.mkdirs(dir)
  if not ok then return nil, merr end
  local written = {}
  local _cleanup <close> = setmetatable({}, {__close = function() -- luacheck: ignore 211
    if tmp_dir then
      for path in pairs(written) do os.remove(path) end
      os.remove(tmp_dir)
    end
  end})

  local result = {
    version = core.version, seed = o.seed, trials = o.trials, tasks = task_names,
    base = copy(base), study = {pretrain_samples = o.pretrain_samples, epochs = o.epochs, budgets = copy(o.budgets),
      samplers = copy(o.samplers), encodings = copy(o.encodings), supplementaries = copy(o.supplementaries),
      settings = o.settings and copy(o.settings) or nil, cache_dir = o.cache_dir},
    task_defs = {}, data = {}, axes = {}, pretrained = {},
    pretraining = {trained = 0, reused = 0, loaded = 0}, results_reused = 0,
  }
  for _, t in ipairs(tasks) do
    result.task_defs[t.label] = {name = t.task.name, space = t.task.space, train = t.task.train, test = t.task.test}
    result.data[t.source.space_name] = t.source.info
  end

  local memo = {}       -- task label → full options key → record
  local models = {}     -- task label → pre-training key → {entry}
  for _, t in ipairs(tasks) do memo[t.label], models[t.label] = {}, {} end

  local function full_key(options)
    local k = {}
    for name, v in pairs(options) do if MANAGED[name] ~= true then k[name] = v end end
    if k.model then k.model = predictor.canonical_options(k.model) end
    return canon(k)
  end

  for ai, ax in ipairs(axes) do
    local t_axis = util.now()
    local axr = {name = ax.name, title = ax.title, budget_rows = ax.budget_rows, settings = {},
      pretraining = {trained = 0, reused = 0, loaded = 0}, results_reused = 0}
    local function count(what)
      axr.pretraining[what] = axr.pretraining[what] + 1
      result.pretraining[what] = result.pretraining[what] + 1
    end
    for si, s in ipairs(ax.settings) do
      local sr = {name = s.name, label = s.label, overrides = s.overrides, options = s.options, skipped = s.skipped,
        tasks = {}}
      axr.settings[si] = sr
      if not s.skipped then
        for _, t in ipairs(tasks) do
          local fk = full_key(s.options)
          local rec = memo[t.label][fk]
          if rec then
            sr.tasks[t.label] = {record = rec, pretrained = "result reused"}
            axr.results_reused = axr.results_reused + 1
            result.results_reused = result.results_reused + 1
          else
            report("study %s %d/%d, %s %d/%d, task %s", ax.name, ai, #axes, s.name, si, #ax.settings, t.label)
            -- experiment.run loads the network from `dir` or trains and saves it there (nasflat.pretrain_cache)
            local pk = PC.key(t.source, t.task, s.options)
            local known = models[t.label][pk]
            local eo = copy(s.options)
            eo.source, eo.task, eo.progress, eo.cache_dir = t.source, t.task, o.progress, dir
            local r, err = run_experiment(eo, {axis = ax.name, setting = s.name, task = t.label, pretrain_key = pk})
            local how = r and r.pretrained_cache
            if how == "loaded" and known then how = "reused" end
            if how then
              local path = r.pretrained_model
              written[path] = true
              if not known then
                local entry = {task = t.label, key = pk, file = o.cache_dir and path or nil, source = how,
                  used_by = {}}
                result.pretrained[#result.pretrained + 1] = entry
                models[t.label][pk] = {entry = entry}
                known = models[t.label][pk]
              end
              local used = known.entry.used_by
              used[#used + 1] = ax.name .. ":" .. s.name
              count(how)
            end
            if r then
              r.config.cache_dir, r.pretrained_model, r.pretrained_cache = nil, nil, nil
              memo[t.label][fk] = r
              sr.tasks[t.label] = {record = r, pretrained = how}
            else
              sr.tasks[t.label] = {error = err}
            end
          end
        end
      end
    end
    axr.wall_s = util.now() - t_axis
    axr.rows = axis_rows(axr, task_names)
    axr.table = M.axis_table(axr, task_names)
    result.axes[ai] = axr
    if o.on_axis then o.on_axis(axr, result) end
  end
  result.wall_s = util.now() - t_start
  result.peak_rss_mib = util.peak_rss_mib()
  return result
end

--------------------------------------------------------------------------------------------------- saving
--- The CSV of a study result: one line per (axis, setting, task, target, budget, trial, predictor).
function M.csv(result)
  local R = require "nasflat.results"
  local header = {"axis", "setting"}
  for _, c in ipairs(R.COLUMNS) do header[#header + 1] = c end
  header[#header + 1] = "pretrained"
  local rows = {}
  for _, ax in ipairs(result.axes) do
    for _, st in ipairs(ax.settings) do
      for _, tn in ipairs(result.tasks) do
        local res = st.tasks[tn]
        if res and res.record then
          for _, r in ipairs(R.trial_rows(res.record)) do
            r[1] = tn   -- the study's task label
            local row = {ax.name, st.name}
            for i = 1, #R.COLUMNS do row[2 + i] = r[i] end
            row[#header] = res.pretrained
            rows[#rows + 1] = row
          end
        end
      end
    end
  end
  return R.csv_text(header, rows)
end

--- The JSON text of a study result.
function M.json(result)
  return require("nasflat.json").encode(result) .. "\n"
end

--- Write <dir>/study-<UTC time>.csv, then .json (nasflat.results: the JSON names and checks its CSV). `stamp`
-- defaults to the UTC time
-- (YYYYmmddTHHMMSSZ). Returns the two paths, or nil and a message.
function M.save(result, dir, stamp)
  if type(result) ~= "table" or not result.axes then error("study.save: result must be a study.run result", 2) end
  if type(dir) ~= "string" then error("study.save: dir must be a string", 2) end
  stamp = stamp or os.date("!%Y%m%dT%H%M%SZ")
  return require("nasflat.results").write{dir = dir, stem = "study-" .. stamp, value = result, csv = M.csv(result)}
end

return M
