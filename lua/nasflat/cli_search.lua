--- `nasflat search`: the most accurate architecture under a latency budget on a device, with few measurements
-- (nasflat.search's adaptive loop), and `nasflat search --bar` (docs/search.md). Options are parsed by cli.lua's
-- parser (cli._parse); results on stdout (a table, or JSON with --json), progress on stderr only on a terminal,
-- errors as `nasflat: <message>` with a non-zero exit status (2 for usage errors).
local util = require "nasflat.util"

local M = {}

-- cli.fail: the one way a command reports a failure (cli.lua requires this module while it loads: look it up late)
local function fail(msg, code) return require("nasflat.cli").fail(msg, code) end

M.command = {
  name = "search",
  synopsis = "--target DEV --budget-ms MS [--task T | --sources D,.. | --model FILE] [options]",
  summary = "Hardware-aware NAS: find the best architecture (by --objective) whose latency on the target device is\n" ..
    "under --budget-ms, measuring at most --measurements architectures on it: --init random ones, then the ones the\n" ..
    "predictor proposes (best expected gain × predicted probability of being under the budget), refitting after\n" ..
    "each --batch. The pick is always an architecture whose latency was MEASURED under the budget. The device is\n" ..
    "the dataset's measured column (a simulated device) unless --measure-cmd runs a command per architecture.\n" ..
    "Several devices at once: --target A,B --budget-ms 10,2 (one model and one budget per device).",
  options = {
    {name = "space", arg = "NAME", help = "nb201 or fbnet", default = "nb201"},
    {name = "target", arg = "DEV,..", help = "the device(s) to search for (a device of the data, or any name " ..
      "with --measure-cmd)"},
    {name = "budget-ms", arg = "MS,..", help = "the latency constraint(s) in ms, one per target"},
    {name = "objective", arg = "NAME", help = "cifar10, cifar100, imagenet16 (NB201: search on validation, " ..
      "report test accuracy), params, flops (a leading - minimises); FBNet has no accuracy table", default = "cifar10"},
    {name = "measurements", arg = "N", number = true, int = 1, help = "measurements on each target, the initial " ..
      "ones included", default = 30},
    {name = "init", arg = "N", number = true, int = 0, help = "initial random measurements (default 20; 0 with " ..
      "--model)"},
    {name = "batch", arg = "N", number = true, int = 1, help = "measurements between refits", default = 2},
    {name = "task", arg = "NAME", help = "the source devices of a task (e.g. ND)"},
    {name = "sources", arg = "DEV,..", help = "source devices of the predictor (default: every device of the " ..
      "data except the targets)"},
    {name = "model", arg = "FILE,..", help = "start from saved model(s) (nasflat fit), one per target"},
    {name = "predictor", arg = "KIND", help = "hybrid, ridge or nasflat", default = "hybrid"},
    {name = "data", arg = "DIR", help = "data directory (default: $NASFLAT_DATA, else ../shared/data)"},
    {name = "pool", arg = "N", number = true, int = 1, help = "fbnet with --measure-cmd: random candidates to " ..
      "start from (each round adds an evolution's population over the whole 9^22 space)", default = 2000},
    {name = "measure-cmd", arg = "CMD", help = "measure with a shell command: {arch} becomes the architecture, " ..
      "{device} the target; the last number printed is the ms"},
    {name = "measure", arg = "WHERE", help = "'local': measure on this machine, each network run in nasflat's " ..
      "C engine (batch 1, one thread, 5 warm-up + 20 timed runs, the median; appended to --measure-out)"},
    {name = "measure-out", arg = "FILE", help = "--measure local: the measurement CSV (nasflat measure's schema; " ..
      "reused when it already holds an architecture)", default = "local.csv"},
    {name = "timeout", arg = "S", number = true, positive = true, help = "--measure-cmd: seconds before a " ..
      "measurement is killed (then retried once)", default = 600},
    {name = "cost-s", arg = "S", number = true, help = "simulated seconds charged per dataset measurement",
      default = 0},
    {name = "log", arg = "FILE", help = "append every measurement to this CSV as it is made"},
    {name = "resume", help = "take the measurements already in --log instead of measuring again"},
    {name = "seed", arg = "N", number = true, int = 0, help = "seed of the initial draw and the fits", default = 1},
    {name = "json", help = "print one JSON object"},
    {name = "svg", arg = "FILE", help = "plot the true front (dataset devices), the predicted front, the " ..
      "measurements and the pick"},
    {name = "bar", help = "run the NB201 bar of docs/search.md instead (--tasks, --trials); with --space fbnet, " ..
      "the FBNet run (a user objective, evolution over the whole space)"},
    {name = "tasks", arg = "T,..", help = "--bar: tasks (zoo tasks such as ZD with --data synthetic and " ..
      "--objective params or flops)", default = "ND,N1,N2,N3,N4,NA"},
    {name = "targets", arg = "DEV,..", help = "--bar: only these targets of the tasks"},
    {name = "quantiles", arg = "Q,..", help = "--bar: the budgets, as quantiles of each target's measured " ..
      "latencies", default = "0.1,0.25,0.5"},
    {name = "trials", arg = "N", number = true, int = 1, help = "--bar: trials per constraint", default = 3},
    {name = "sampler", arg = "NAME", help = "--bar: how the transfer samples are drawn (random, or a " ..
      "nasflat.samplers method such as kmeans on the struct+phys encoding)", default = "random"},
    {name = "quiet", help = "no progress on stderr"},
  },
  epilog = "examples:\n" ..
    "  nasflat search --task ND --target pixel2 --budget-ms 12 --measurements 30 --objective cifar10\n" ..
    "  nasflat search --task ND --target pixel2,raspi4 --budget-ms 12,40 --json\n" ..
    "  nasflat search --model board.nfm --target board --budget-ms 8 --measure-cmd 'ssh board bench {arch}' " ..
    "--log board.csv --resume\n" ..
    "  nasflat search --bar --tasks ND --trials 1",
}

-- util.progress's `enabled`: false with --quiet, else nil (shown only when stderr is a terminal)
local function quiet_flag(o)
  if o.quiet then return false end
  return nil
end

local function fmt(x, d)
  if x == nil or x ~= x then return "-" end
  return string.format("%." .. (d or 3) .. "f", x)
end

local function open_source(data, space)
  return require("nasflat.source").open{data = data, space = space}
end

--- search_bar.run options (NB201 bar) from parsed command-line options, without progress; `nasflat sweep plan
-- search` plans the same bar. Returns the table, or nil and a usage message.
function M.bar_options(o)
  local quantiles = {}
  for i, piece in ipairs(util.split(o.quantiles)) do
    local q = tonumber(piece)
    if not q or not (q > 0 and q <= 1) then
      return nil, string.format("--quantiles: '%s' is not a quantile in (0, 1]", piece)
    end
    quantiles[i] = q
  end
  if #quantiles == 0 then return nil, "--quantiles: empty list" end
  if o["cost-s"] < 0 then return nil, "--cost-s must be >= 0" end
  local init = o.init or 20
  if init < 2 or init > o.measurements then
    return nil, string.format("--bar: --init must be between 2 and --measurements (%d)", o.measurements)
  end
  return {tasks = util.split(o.tasks), targets = o.targets and util.split(o.targets) or nil, quantiles = quantiles,
    trials = o.trials, data = o.data, measurements = o.measurements, init = init, batch = o.batch,
    objective = o.objective, cost_s = o["cost-s"], sampler = o.sampler}
end

local function bar_main(o)
  local bar = require "nasflat.search_bar"
  if o.space == "fbnet" then   -- --trials runs, seeds --seed, --seed + 1, ...
    local runs = {}
    for t = 1, o.trials do
      local report, finish = util.progress{enabled = quiet_flag(o)}
      local f, err = bar.fbnet{data = o.data, measurements = o.measurements, init = o.init or 20, batch = o.batch,
        seed = o.seed + t - 1, progress = report}
      finish()
      if not f then return fail(err) end
      local r = f.result
      f.result = {n_measurements = r.n_measurements, measurements = r.measurements, timing = r.timing, stop = r.stop,
        pick_reason = r.pick_reason}
      f.seed = o.seed + t - 1
      runs[t] = f
      if not o.json then
        io.stdout:write(t > 1 and "\n" or "", string.format("seed %d\n", f.seed), bar.format_fbnet(f))
      end
    end
    if o.json then io.stdout:write(require("nasflat.json").encode(runs), "\n") end
    return 0
  end
  local bo, berr = M.bar_options(o)
  if not bo then return fail(berr, 2) end
  local report, finish = util.progress{enabled = quiet_flag(o)}
  bo.progress = report
  local res, err = bar.run(bo)
  finish()
  if not res then return fail(err) end
  if o.json then io.stdout:write(require("nasflat.json").encode(res), "\n")
  else io.stdout:write(bar.format(res)) end
  return 0
end

local function write_svg(path, r, pool, values, targets, budgets, src, obj)
  local search = require "nasflat.search"
  local svg = require "nasflat.svg"
  local t = targets[1]
  local series = {}
  if src and src:has_device(t) then
    local truth = src:ms(t)
    local v, m = {}, {}
    for i, a in ipairs(pool) do
      local row = src:row(a)
      local ms = row and truth:get(row)
      if ms and ms == ms then v[#v + 1] = values[i]; m[#m + 1] = ms end
    end
    local fr = search.front(v, m)
    local pts = {}
    for _, i in ipairs(fr) do pts[#pts + 1] = {m[i], v[i]} end
    series[#series + 1] = {name = "true front (" .. t .. ")", points = pts, color = "#2b6cb0", line = true}
  end
  local P = r.models[1]
  local pm = P:predict(pool):totable()
  local fr = search.front(values, pm)
  local pts = {}
  for _, i in ipairs(fr) do pts[#pts + 1] = {pm[i], values[i]} end
  series[#series + 1] = {name = "predicted front", points = pts, color = "#dd6b20", line = true, dash = "5 3"}
  local init, adapt = {}, {}
  for _, rec in ipairs(r.measurements) do
    local ms = rec.ms[t]
    if ms then
      local p = {ms, rec.objective, string.format("%s: %.3f ms, %.3f", rec.arch, ms, rec.objective)}
      if rec.round == 0 then init[#init + 1] = p else adapt[#adapt + 1] = p end
    end
  end
  series[#series + 1] = {name = "initial samples", points = init, color = "#718096", hollow = true}
  series[#series + 1] = {name = "adaptive measurements", points = adapt, color = "#38a169"}
  if r.pick then
    series[#series + 1] = {name = "pick", points = {{r.pick.ms[t], r.pick.objective, r.pick.arch}}, color = "#e53e3e",
      size = 6}
  end
  local doc = svg.scatter{series = series, xlabel = t .. " latency (ms)",
    ylabel = obj.name .. (obj.report and " (validation)" or ""), title = string.format("search on %s under %g ms: %d " ..
    "measurements", t, budgets[1], r.n_measurements), vlines = {{x = budgets[1], label = "budget"}}}
  return doc:write(path)
end

function M.command.main(o)
  if o.bar then return bar_main(o) end
  local search = require "nasflat.search"
  local dev = require "nasflat.search_device"
  local model = require "nasflat.model"
  if o.space ~= "nb201" and o.space ~= "fbnet" then
    return fail("--space must be nb201 or fbnet (got '" .. tostring(o.space) .. "')", 2)
  end
  if not o.target then return fail("search: --target is required (the device to search for)", 2) end
  if not o["budget-ms"] then return fail("search: --budget-ms is required (the latency constraint in ms)", 2) end
  local targets = util.split(o.target)
  local budgets = {}
  for i, b in ipairs(util.split(o["budget-ms"])) do
    local v = tonumber(b)
    if not v or v ~= v or v <= 0 or v == math.huge then
      return fail(string.format("--budget-ms: '%s' is not a positive number of ms", b), 2)
    end
    budgets[i] = v
  end
  if #budgets ~= #targets then
    return fail(string.format("--budget-ms has %d values for %d targets (one budget per target)", #budgets, #targets), 2)
  end
  local models = {}
  if o.model then
    for i, path in ipairs(util.split(o.model)) do
      local P, err = model.load(path)
      if not P then return fail(err) end
      if P.space ~= o.space then
        return fail(string.format("%s: a %s model, but --space is %s", path, tostring(P.space), o.space), 2)
      end
      models[i] = P
    end
    if #models ~= #targets then
      return fail(string.format("--model has %d files for %d targets (one model per target)", #models, #targets), 2)
    end
  end
  local init = o.init or (o.model and 0 or 20)
  if init > o.measurements then
    return fail(string.format("--init %d exceeds --measurements %d", init, o.measurements), 2)
  end
  if not o.model and init < 2 then return fail("--init must be at least 2 without --model", 2) end
  if o["cost-s"] < 0 then return fail("--cost-s must be >= 0", 2) end
  -- the data: needed for dataset devices, sources, and accuracy objectives
  local src, serr
  if o.measure and o.measure ~= "local" then return fail("--measure must be 'local' (got '" .. o.measure .. "')", 2) end
  if o.measure and o["measure-cmd"] then return fail("give --measure local or --measure-cmd, not both", 2) end
  local need_data = not (o["measure-cmd"] or o.measure) or not o.model
  if need_data then
    src, serr = open_source(o.data, o.space)
    if not src then return fail(serr) end
  end
  local obj, oerr
  local ok_obj, perr = pcall(function()
    obj, oerr = search.objective(o.objective, {space = o.space, data = src and src.info.data or o.data})
  end)
  if not ok_obj then return fail((tostring(perr):gsub("^.-search%.objective: ", "")), 2) end
  if not obj then return fail(oerr, 2) end
  -- devices
  local cons = {}
  for i, t in ipairs(targets) do
    local d, derr
    if o.measure then
      d = dev.engine{space = o.space, out = o["measure-out"], name = t}
    elseif o["measure-cmd"] then
      local tmpl = o["measure-cmd"]:gsub("{device}", function() return t end)
      if not tmpl:find("{arch}", 1, true) then return fail("--measure-cmd must contain {arch}", 2) end
      d = dev.command{template = tmpl, timeout = o.timeout, name = t}
    else
      d, derr = dev.dataset{source = src, device = t, cost_s = o["cost-s"]}
      if not d then return fail(derr, 2) end
    end
    cons[i] = {device = d, budget_ms = budgets[i], model = models[i]}
  end
  -- the predictor's sources
  local fit
  if not o.model then
    local devices
    if o.task and o.sources then return fail("give --task or --sources, not both", 2) end
    if o.task then
      local task, terr = require("nasflat.tasks").resolve{name = o.task, devices = src.devices,
        tasks_file = src.tasks_file}
      if not task then return fail(terr, 2) end
      devices = task.train
    elseif o.sources then
      devices = util.split(o.sources)
      for _, d in ipairs(devices) do
        if not src:has_device(d) then return fail(string.format("unknown source device '%s'", d), 2) end
      end
    else
      devices = {}
      local skip = {}
      for _, t in ipairs(targets) do skip[t] = true end
      for _, d in ipairs(src.devices) do if not skip[d] then devices[#devices + 1] = d end end
    end
    local sm
    if o.predictor ~= "ridge" then
      local sm_err
      sm, sm_err = require("nasflat.source_models").fit{source = src, devices = devices}
      if not sm then return fail(sm_err) end
    end
    fit = {kind = o.predictor, data = src, sources = sm}
  end
  -- the pool: nb201 every cell the dataset devices measured; fbnet a random draw
  local space = require("nasflat.space").get(o.space)
  local pool
  if o.space == "nb201" then
    pool = space:enumerate()
    if not (o["measure-cmd"] or o.measure) then
      local keep = {}
      for _, a in ipairs(pool) do
        local okall = true
        for _, c in ipairs(cons) do
          local row = src:row(a)
          local v = row and src:ms(c.device.name):get(row)
          if not v or v ~= v then okall = false end
        end
        if okall then keep[#keep + 1] = a end
      end
      pool = keep
    end
  else
    if not (o["measure-cmd"] or o.measure) and src then
      pool = {}   -- a dataset device only knows its measured architectures
      for _, r in ipairs(src:measured(targets[1])) do pool[#pool + 1] = src.arch_strings[r] end
    else
      pool = space:sample(require("nasflat.core").Rng(o.seed), o.pool)
    end
  end
  -- fbnet on a device that measures anything: each round the pool grows with a predictor-only aging evolution
  -- over the whole space under the current models
  local propose
  if o.space == "fbnet" and (o["measure-cmd"] or o.measure) then
    propose = function(current, round)
      local ev = assert(search.evolve{space = "fbnet", models = current, budgets = budgets, objective = obj,
        cycles = 1000, population = 100, sample = 25, seed = o.seed * 1000 + round, margin = "none"})
      local out = {}
      for i, m in ipairs(ev.population) do out[i] = m.arch end
      return out
    end
  end
  local report, finish = util.progress{enabled = quiet_flag(o)}
  local r, err = search.adaptive{space = o.space, objective = obj, pool = pool, constraints = cons,
    measurements = o.measurements, init = init, batch = o.batch, seed = o.seed, fit = fit, log = o.log,
    resume = o.resume or false, progress = report, data = src and src.info.data or nil, propose = propose}
  finish()
  if not r then return fail(err) end
  local values = obj.values(pool)
  if o.svg then
    local ok, werr = write_svg(o.svg, r, pool, values, targets, budgets, src, obj)
    if not ok then return fail(werr) end
  end
  local state = {}
  for i, P in ipairs(r.models) do
    state[i] = {target = targets[i], kind = P.kind, n_samples = P.n_samples,
      interval90_factor = math.exp(P:interval_halfwidth(0.9)), description = tostring(P)}
  end
  if o.json then
    local meas = {}
    for i, rec in ipairs(r.measurements) do
      meas[i] = {arch = rec.arch, round = rec.round, objective = rec.objective, ms = rec.ms, status = rec.status,
        predicted = rec.predicted, feasible = rec.feasible}
    end
    -- no pick: `pick` is null (NaN encodes as null) and pick_reason says why
    local out = {space = o.space, objective = obj.name, targets = targets, budgets_ms = budgets,
      pick = r.pick and {arch = r.pick.arch, ms = r.pick.ms, objective = r.pick.objective, report = r.pick.report}
        or 0 / 0, pick_reason = r.pick_reason, measurements = meas, n_measurements = r.n_measurements,
      rounds = r.rounds, stop = r.stop, resumed = r.resumed, predictor = state, timing = r.timing,
      predicted_best = r.predicted_best, seed = o.seed}
    io.stdout:write(require("nasflat.json").encode(out), "\n")
    return 0
  end
  local w = io.stdout
  w:write(string.format("search %s on %s, objective %s (%s)\n", o.space, table.concat(targets, ","), obj.name,
    obj.about or ""))
  for i, t in ipairs(targets) do w:write(string.format("  budget %s: %g ms\n", t, budgets[i])) end
  if r.pick then
    w:write(string.format("pick: %s\n  objective %s", r.pick.arch, fmt(r.pick.objective)))
    if r.pick.report then w:write(string.format(" (reported: %s)", fmt(r.pick.report))) end
    for _, t in ipairs(targets) do w:write(string.format(", %s %s ms measured", t, fmt(r.pick.ms[t]))) end
    w:write("\n")
  else
    w:write("pick: none: ", r.pick_reason, "\n")
  end
  if r.predicted_best and not r.predicted_best.verified and (not r.pick or r.predicted_best.objective > r.pick.objective)
    then
    w:write(string.format("  (unverified: the predictor's best with its interval under the budget is %s, objective %s; " ..
      "not measured, so not a pick)\n", r.predicted_best.arch, fmt(r.predicted_best.objective)))
  end
  w:write(string.format("measurements: %d on each target (%d initial), %d rounds, stop: %s%s\n", r.n_measurements,
    init, r.rounds, tostring(r.stop), r.resumed > 0 and string.format(", %d taken from the log", r.resumed) or ""))
  for _, s in ipairs(state) do
    w:write(string.format("predictor %s: %s on %d samples, 90%% interval ×/÷ %.3f\n", s.target, s.kind, s.n_samples,
      s.interval90_factor))
  end
  local tm = r.timing
  w:write(string.format("time: fit %.2f s, predict %.2f s, select %.3f s, measure %.2f s (simulated cost %g s), " ..
    "total %.2f s\n", tm.fit, tm.predict, tm.select, tm.measure, tm.measure_cost, tm.total))
  w:write(string.format("\n%3s %5s  %-9s %s\n", "#", "round", "objective", "arch, then per target: measured ms " ..
    "[predicted ms, 90% interval]"))
  for i, rec in ipairs(r.measurements) do
    local cells = {}
    for _, t in ipairs(targets) do
      local p = rec.predicted and rec.predicted[t]
      cells[#cells + 1] = string.format("%s %s%s", t, rec.ms[t] and fmt(rec.ms[t]) or ("failed: " ..
        tostring(rec.status[t])), p and string.format(" [%s, %s-%s]", fmt(p.ms), fmt(p.lo), fmt(p.hi)) or "")
    end
    w:write(string.format("%3d %5d  %-9s %s  %s%s\n", i, rec.round, fmt(rec.objective), rec.arch,
      table.concat(cells, "  "), rec.feasible and "" or "  (over)"))
  end
  local ok, werr = w:flush()
  if not ok then return fail("cannot write the results to standard output (" .. tostring(werr) .. ")") end
  return 0
end

return M
