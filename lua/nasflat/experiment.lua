--- Few-shot transfer experiments (METHOD §1, §5, §6): for each target device of a task, k samples chosen by a
-- sampler among its measured architectures, a model fitted on them through nasflat.model (exactly what a user
-- gets), every measured architecture predicted and scored against the measurements.
--
--   local rec = assert(experiment.run{source = src, task = task})   -- src: nasflat.source; task: nasflat.tasks
--
-- Per task, what the fits share is built once: the source-device models (nasflat.source_models, for the hybrid's
-- "source" component) and the pre-trained graph network (for "nasflat"), both on the same `pretrain_samples`
-- architectures of the task's source devices.
local core = require "nasflat.core"
local util = require "nasflat.util"
local model = require "nasflat.model"
local H = require "nasflat.model_hybrid"
local G = require "nasflat.model_gnn"

local M = {}

M.DEFAULTS = {
  source = util.REQUIRED,        -- a nasflat.source Source
  task = util.REQUIRED,          -- {name, space, train = {...}, test = {...}} (nasflat.tasks.resolve)
  predictors = {model.DEFAULT_KIND}, -- model kinds to evaluate side by side (nasflat.model.KINDS)
  hybrid = H.DEFAULTS.components,    -- the hybrid's options (nasflat.model_hybrid)
  hybrid_weights = H.DEFAULTS.weights,
  hybrid_step = H.DEFAULTS.step,
  hybrid_folds = H.DEFAULTS.folds,
  hybrid_bags = H.DEFAULTS.bags,
  hybrid_bag_fraction = H.DEFAULTS.bag_fraction,
  hybrid_bagging = H.DEFAULTS.bagging,
  budgets = {20},                -- transfer samples per target
  trials = 3,                    -- repetitions with derived seeds
  trial_ids = util.NIL,          -- run only these trials of 1..trials (a job of a sweep: the same seeds and numbers)
  seed = 1,
  interval = 0.9,                -- nominal coverage of the prediction intervals scored (false: none)
  pretrain_samples = util.NIL,   -- architectures per source device: nasflat.model_gnn's, M.ZOO_PRETRAIN's on the zoo
  epochs = util.NIL,             -- GNN pre-training epochs: nasflat.model_gnn's, M.ZOO_PRETRAIN's on the zoo
  batch = G.DEFAULTS.batch,      -- the graph network's options (nasflat.model_gnn)
  lr = G.DEFAULTS.lr,
  weight_decay = G.DEFAULTS.weight_decay,
  transfer_epochs = G.DEFAULTS.transfer_epochs,
  transfer_batch = G.DEFAULTS.transfer_batch,
  transfer_lr = G.DEFAULTS.transfer_lr,
  transfer_members = G.DEFAULTS.transfer_members,
  init_device = G.DEFAULTS.init_device,
  supplementary = G.DEFAULTS.supplementary,
  graph = G.DEFAULTS.graph,
  model = {},                    -- extra options for nasflat.predictor.new
  kind_options = {},             -- fit options of the other kinds, by kind: {help = {...}} (see each kind's DEFAULTS)
  sampler = "kmeans",            -- transfer-sample sampler (nasflat.samplers); chosen by measurement, docs/study.md
  encoding = "struct+phys",      -- encoding the sampler works on (nasflat.encodings names, or "struct")
  pretrained = util.NIL,         -- a pre-trained network to reuse instead of training
  save_pretrained = util.NIL,    -- path: save the pre-trained network there (atomically)
  cache_dir = util.NIL,          -- keep pre-trained networks here by their pre-training key and reuse them
                                 -- (nasflat.pretrain_cache; the design study's cache has the same keys and files)
  progress = util.NIL,           -- function(fmt, ...) for progress lines
}

--- The graph network's pre-training on the synthetic zoo (smaller than nasflat.model_gnn's for real data).
M.ZOO_PRETRAIN = {pretrain_samples = 256, epochs = 50}

--- Pre-training settings for a source: nasflat.model_gnn's on real data, M.ZOO_PRETRAIN on the synthetic zoo.
function M.pretrain_defaults(src)
  local z = M.ZOO_PRETRAIN
  if src.synthetic then return {pretrain_samples = z.pretrain_samples, epochs = z.epochs} end
  return {pretrain_samples = G.DEFAULTS.pretrain_samples, epochs = G.DEFAULTS.epochs}
end

--- Scores of a prediction against the truth (ranking on the predicted ms).
-- A rank correlation with a constant side is undefined (NaN): it is kept as NaN (null in JSON, empty in CSV) with
-- the reason, counted in the record's nan_metrics, and left out of the means.
local function evaluate(pred, truth)
  local m = require "nasflat.metrics"
  local r = {spearman = m.spearman(pred, truth), kendall = m.kendall(pred, truth), mae_ms = m.mae(pred, truth),
    mape = m.mape(pred, truth), acc10 = m.acc10(pred, truth)}
  if r.spearman ~= r.spearman then
    r.nan_reason = (truth:max() == truth:min()) and "the measured latencies are all equal" or
      (pred:max() == pred:min()) and "every prediction is the same" or "a metric is not finite"
  end
  return r
end

--- Coverage and median relative width of the intervals over the measured rows that were not samples.
local function interval_scores(info, measured, sample_rows, truth_all)
  local is_sample = {}
  for _, r in ipairs(sample_rows) do is_sample[r] = true end
  local inside, n, widths = 0, 0, {}
  for _, r in ipairs(measured) do
    if not is_sample[r] then
      local t, lo, hi = truth_all:get(r), info.lo:get(r), info.hi:get(r)
      n = n + 1
      if t >= lo and t <= hi then inside = inside + 1 end
      widths[#widths + 1] = (hi - lo) / math.sqrt(lo * hi)
    end
  end
  table.sort(widths)
  return {coverage = n > 0 and inside / n or 0 / 0, median_width = widths[(#widths + 1) // 2] or 0 / 0,
    factor = math.exp(info.halfwidth_log)}
end

local function check_predictors(list)
  if type(list) ~= "table" or #list == 0 then error("experiment.run: option 'predictors' must be a non-empty list", 3) end
  for _, p in ipairs(list) do
    if not model.KINDS[p] then
      error(string.format("experiment.run: unknown predictor '%s' (known: %s)", tostring(p),
        table.concat(model.KIND_NAMES, ", ")), 3)
    end
  end
end

--- What the task's fits share: source models and the pre-trained network, when some predictor needs them.
local function shared(o, src, task, record)
  local uses = {}
  for _, p in ipairs(o.predictors) do uses[p] = true end
  for _, c in ipairs(uses.hybrid and o.hybrid or {}) do uses["hybrid:" .. c] = true end
  local sh = {}
  local t0 = util.now()
  if uses["hybrid:source"] then
    local err
    sh.sm, err = require("nasflat.source_models").fit{source = src, devices = task.train,
      samples = o.pretrain_samples, seed = o.seed}
    if not sh.sm then return nil, err end
  end
  if uses.nasflat or uses["hybrid:nasflat"] then
    local pre, cached = o.pretrained, nil
    if not pre and o.cache_dir then
      local PC = require "nasflat.pretrain_cache"
      cached = PC.path(o.cache_dir, task.name, PC.key(src, task, o))
      local f = io.open(cached, "rb")
      if f then
        f:close()
        local err
        pre, err = require("nasflat.predictor").load(cached)
        if not pre then return nil, err end
        record.pretrained_cache = "loaded"
      end
    end
    if pre then
      local z_dim = 0
      local zname = G.supplementary_form(o.supplementary, src.space_name)
      if zname ~= "none" then
        local z, zerr = src:supplementary(zname)
        if not z then return nil, zerr end
        z_dim = z:size(2)
      end
      local ok, err = G.check_network(pre, src.space_name, z_dim)
      if not ok then return nil, (cached or "pretrained model") .. ": " .. err end
    else
      local err
      pre, err = G.pretrain(src, task.train, {supplementary = o.supplementary, pretrain_samples = o.pretrain_samples,
        epochs = o.epochs, batch = o.batch, lr = o.lr, weight_decay = o.weight_decay, network = o.model, seed = o.seed,
        graph = o.graph,
        progress = o.progress and function(fmt, ...) o.progress(task.name .. " " .. fmt, ...) end})
      if not pre then return nil, err end
      if cached then
        local ok, merr = util.mkdirs(o.cache_dir)
        if ok then ok, merr = pre:save(cached) end
        if not ok then return nil, merr end
        record.pretrained_cache = "trained"
      end
    end
    record.pretrained_model = cached
    if o.save_pretrained then
      local ok, err = pre:save(o.save_pretrained)
      if not ok then return nil, err end
      record.pretrained_model = o.save_pretrained
    end
    sh.gnn = {pretrained = pre, transfer_epochs = o.transfer_epochs, transfer_batch = o.transfer_batch,
      transfer_lr = o.transfer_lr, transfer_members = o.transfer_members, weight_decay = o.weight_decay,
      init_device = o.init_device}
  end
  -- kinds whose module pre-trains on the source devices once per task (kind.pretrain_shared): the result is every
  -- fit's `pretrained` option
  sh.kinds = {}
  for _, p in ipairs(o.predictors) do
    local K = model.kind_module(p)
    if p ~= "nasflat" and K.pretrain_shared then
      local pre, err = K.pretrain_shared{source = src, devices = task.train, seed = o.seed,
        samples = o.pretrain_samples, options = o.kind_options[p] or {},
        progress = o.progress and function(fmt, ...) o.progress(task.name .. " " .. p .. " " .. fmt, ...) end}
      if not pre then return nil, string.format("%s: %s", p, err) end
      sh.kinds[p] = pre
    end
  end
  record.timings.pretrain_s = util.now() - t0
  return sh
end

--- The nasflat.model.fit options of predictor `p` for one trial.
local function fit_options(p, o, src, sh, target, samples, seed, features)
  local f = {kind = p, space = src.space, samples = samples, target = target, seed = seed, data = src}
  if p == "hybrid" then
    f.components, f.weights, f.step, f.folds = o.hybrid, o.hybrid_weights, o.hybrid_step, o.hybrid_folds
    f.bags, f.bag_fraction, f.bagging = o.hybrid_bags, o.hybrid_bag_fraction, o.hybrid_bagging
    f.sources, f.gnn, f.feature_cache = sh.sm, sh.gnn, features
  elseif p == "nasflat" then
    for k, v in pairs(sh.gnn) do f[k] = v end
  else
    for k, v in pairs(o.kind_options[p] or {}) do f[k] = v end
    if sh.kinds[p] then f.pretrained = sh.kinds[p] end
  end
  return f
end

--- The mean and std of Spearman and Kendall over a budget's trials, per predictor (summary[p]); NaN trials are left
-- out. `nasflat sweep merge` rebuilds records with this and M.summarize.
function M.summarize_budget(summary, predictors)
  for _, p in ipairs(predictors) do
    local sp, kt = {}, {}
    for _, r in ipairs(summary.trials) do sp[#sp + 1] = r[p].spearman; kt[#kt + 1] = r[p].kendall end
    local m, s = util.mean_std(sp)
    local km, ks = util.mean_std(kt)
    summary[p] = {spearman = m, spearman_std = s, kendall = km, kendall_std = ks}
  end
end

--- A record's nan_metrics (trials whose Spearman is undefined) and mean (per predictor and budget, over targets).
function M.summarize(record, predictors, budgets)
  record.nan_metrics = 0
  for _, e in ipairs(record.targets) do
    for _, b in ipairs(e.budgets) do
      for _, r in ipairs(b.trials) do
        for _, p in ipairs(predictors) do
          if r[p] and r[p].nan_reason then record.nan_metrics = record.nan_metrics + 1 end
        end
      end
    end
  end
  record.mean = {}
  for _, p in ipairs(predictors) do
    record.mean[p] = {}
    for bi, k in ipairs(budgets) do
      local xs = {}
      for _, e in ipairs(record.targets) do xs[#xs + 1] = e.budgets[bi][p].spearman end
      record.mean[p][tostring(k)] = util.mean_std(xs)
    end
  end
end

--- Run one task. Returns the result record (README, "Results"), or nil and a message.
function M.run(opts)
  local o = util.options("experiment.run", opts, M.DEFAULTS)
  local src, task = o.source, o.task
  check_predictors(o.predictors)
  G.check_transfer(o, "experiment.run")
  if o.cache_dir ~= nil and type(o.cache_dir) ~= "string" then
    error("experiment.run: option 'cache_dir' must be a directory path (string)", 2)
  end
  if math.type(o.trials) ~= "integer" or o.trials < 1 then error("experiment.run: option 'trials' must be an integer >= 1", 2) end
  local trial_list = {}
  for t = 1, o.trials do trial_list[t] = t end
  if o.trial_ids ~= nil then
    if type(o.trial_ids) ~= "table" or #o.trial_ids == 0 then
      error("experiment.run: option 'trial_ids' must be a non-empty list of trial numbers", 2)
    end
    for _, t in ipairs(o.trial_ids) do
      if math.type(t) ~= "integer" or t < 1 or t > o.trials then
        error(string.format("experiment.run: trial_ids entry %s is not a trial of 1..%d", tostring(t), o.trials), 2)
      end
    end
    trial_list = o.trial_ids
  end
  for k, v in pairs(M.pretrain_defaults(src)) do if o[k] == nil then o[k] = v end end
  local report = o.progress or function() end
  local t_start = util.now()
  local record = {task = task.name, space = src.space_name, train = task.train, test = task.test, config = {},
    targets = {}, timings = {}, version = core.version, predictors = o.predictors, data = src.info, seed = o.seed}
  for k, v in pairs(o) do
    if k ~= "source" and k ~= "task" and k ~= "progress" and k ~= "pretrained" then record.config[k] = v end
  end
  local sh, serr = shared(o, src, task, record)
  if not sh then return nil, serr end
  local t_transfer = util.now()
  local enc, eerr = src:encoding(o.encoding)
  if not enc then return nil, eerr end
  local cache = src:features()
  for _, target in ipairs(task.test) do
    local truth_all, measured = src:ms(target), src:measured(target)
    local truth = truth_all:index(measured)
    local entry = {device = target, n_measured = #measured, budgets = {}}
    record.targets[#record.targets + 1] = entry
    for _, k in ipairs(o.budgets) do
      if k > #measured then
        return nil, string.format("target %s has %d measured architectures, fewer than the budget %d", target,
          #measured, k)
      end
      local summary = {budget = k, trials = {}}
      for _, trial in ipairs(trial_list) do
        report("%s: %s, %d samples, trial %d", task.name, target, k, trial)
        local tseed = core.derive_seed(o.seed, 10000 * trial + k)
        local rows = require("nasflat.samplers").select{method = o.sampler, n = k, encoding = enc,
          candidates = measured, seed = tseed}
        local archs = {}
        for i, r in ipairs(rows) do archs[i] = src.arch_strings[r] end
        local samples = {archs = archs, ms = truth_all:index(rows)}
        local run = {trial = trial, seed = tseed, rows = rows}
        local view = require("nasflat.features").view(cache, rows)
        for _, p in ipairs(o.predictors) do
          local P, ferr = model.fit(fit_options(p, o, src, sh, target, samples, tseed, view))
          if not P then return nil, string.format("%s on %s: %s", p, target, ferr) end
          local ms, info = P:predict(src.arch_strings, {features = cache, interval = o.interval or nil})
          run[p] = evaluate(ms:index(measured), truth)
          if o.interval then run[p].interval = interval_scores(info, measured, rows, truth_all) end
          if p == "hybrid" then
            run[p].weights, run[p].cv_mse = {}, P.cv_mse
            for ci, c in ipairs(P.components) do run[p].weights[c] = P.weights[ci] end
          elseif p == "nasflat" then
            run[p].init_device = P.init_device_from
          end
          P:free()
        end
        view:free()
        summary.trials[#summary.trials + 1] = run
      end
      M.summarize_budget(summary, o.predictors)
      entry.budgets[#entry.budgets + 1] = summary
    end
  end
  record.timings.transfer_s = util.now() - t_transfer
  record.timings.total_s = util.now() - t_start
  record.peak_rss_mib = util.peak_rss_mib()
  M.summarize(record, o.predictors, o.budgets)
  return record
end

return M
