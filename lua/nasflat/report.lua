--- Result tables: our predictors' mean Spearman per task beside the published numbers (METHOD §9, §10).
local tasks = require "nasflat.tasks"

local M = {}

local function f3(x)
  if x == nil or x ~= x then return "    -" end
  return string.format("%5.3f", x)
end

--- A markdown table: one row per predictor of ours (from run records) and per published row, one column per
-- task, plus the mean over the tasks present. `records` are experiment.run results; `budget` selects the
-- transfer budget (default: the first one of each record).
-- The key of rec.mean[predictor] for `budget` (default: the record's first budget).
local function budget_key(rec, budget)
  return tostring(budget or rec.config.budgets[1])
end

function M.paper_table(records, budget)
  local names, ours = {}, {nasflat = {}, hybrid = {}, ridge = {}}
  for _, rec in ipairs(records) do
    names[#names + 1] = rec.task
    for p, by in pairs(rec.mean) do
      ours[p] = ours[p] or {}
      ours[p][rec.task] = by[budget_key(rec, budget)]
    end
  end
  local lines = {"| predictor | " .. table.concat(names, " | ") .. " | mean |",
    "|---|" .. string.rep("---|", #names + 1)}
  local function row(label, values)
    local cells, s, n = {}, 0, 0
    for i, t in ipairs(names) do
      local v = values[t]
      cells[i] = f3(v)
      if v and v == v then s, n = s + v, n + 1 end
    end
    lines[#lines + 1] = string.format("| %s | %s | %s |", label, table.concat(cells, " | "), n > 0 and f3(s / n) or "-")
  end
  if next(ours.nasflat) then row("nasflat GNN (ours)", ours.nasflat) end
  if next(ours.hybrid) then
    local cfg = records[1].config or {}
    local comps = type(cfg.hybrid) == "table" and table.concat(cfg.hybrid, "+") or "GNN+ridges"
    row(string.format("hybrid (ours): %s-weighted %s", cfg.hybrid_weights or "cv", comps), ours.hybrid)
  end
  if next(ours.ridge) then row("structural ridge (ours)", ours.ridge) end
  for _, p in ipairs(require("nasflat.model").KIND_NAMES) do   -- the other kinds (the baselines), in kind order
    if p ~= "nasflat" and p ~= "hybrid" and p ~= "ridge" and ours[p] then row(p .. " (ours)", ours[p]) end
  end
  for _, label in ipairs({"NASFLAT", "MultiPredict", "HELP"}) do
    row(label .. " (published)", tasks.PUBLISHED[label])
  end
  do
    row("structural ridge (METHOD §10 table)", tasks.PUBLISHED["ridge (METHOD §10)"])
  end
  return table.concat(lines, "\n") .. "\n"
end

--- The hybrid's component weights, averaged over the targets and trials of each task at `budget`: a markdown
-- table, one row per task, one column per component of the first record's configuration.
function M.hybrid_weights(records, budget)
  local comps = (records[1] and records[1].config and records[1].config.hybrid) or {}
  local lines = {"| task | " .. table.concat(comps, " | ") .. " |", "|---|" .. string.rep("---|", #comps)}
  for _, rec in ipairs(records) do
    local sum, n = {}, 0
    for _, t in ipairs(rec.targets) do
      for _, b in ipairs(t.budgets) do
        if b.budget == tonumber(budget_key(rec, budget)) then
          for _, run in ipairs(b.trials) do
            if run.hybrid and run.hybrid.weights then
              n = n + 1
              for c, w in pairs(run.hybrid.weights) do sum[c] = (sum[c] or 0) + w end
            end
          end
        end
      end
    end
    if n > 0 then
      local cells = {}
      for i, c in ipairs(comps) do cells[i] = string.format("%.2f", (sum[c] or 0) / n) end
      lines[#lines + 1] = "| " .. rec.task .. " | " .. table.concat(cells, " | ") .. " |"
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- How `predictor` (default "nasflat") compares, task by task, at `budget`: tasks it matches or beats the
-- published NASFLAT on (at_least_nasflat); tasks it is strictly above max(published NASFLAT, our structural
-- ridge on the same samples) on (above_both; the record must hold ridge results, else the METHOD §10 table's
-- ridge is used and ridge_source says so); and its mean margin over that maximum (margin).
function M.wins(records, budget, predictor)
  local vs_nasflat, vs_both, n, margin = 0, 0, 0, 0
  local ridge_source = "our"
  for _, rec in ipairs(records) do
    local by = rec.mean[predictor or "nasflat"]
    local pub = tasks.PUBLISHED.NASFLAT[rec.task]
    if by and pub then
      local key = budget_key(rec, budget)
      local v = by[key]
      n = n + 1
      if v and v >= pub then vs_nasflat = vs_nasflat + 1 end
      local ridge = rec.mean.ridge and rec.mean.ridge[key]
      if not ridge then
        ridge, ridge_source = tasks.PUBLISHED["ridge (METHOD §10)"][rec.task], "the METHOD §10 table's"
      end
      local best = math.max(pub, ridge)
      if v and v > best then vs_both = vs_both + 1 end
      margin = margin + ((v or 0) - best)
    end
  end
  return {tasks = n, at_least_nasflat = vs_nasflat, above_both = vs_both, margin = n > 0 and margin / n or 0,
    ridge_source = ridge_source}
end

local function fmt(x, digits)
  if x == nil or x ~= x then return "-" end
  return string.format("%." .. (digits or 3) .. "f", x)
end

--- The table `nasflat run` prints for run records: per task, one line per target and budget (each predictor's
-- mean Spearman ± std over the trials, the main predictor's Kendall and interval coverage), the means, the
-- timings. `out(...)` writes text (returns false once a write failed); returns what the last out returned.
function M.print_run_table(records, out)
  local mean_std = require("nasflat.util").mean_std
  local lines = {}
  local function line(s) lines[#lines + 1] = s end
  for _, rec in ipairs(records) do
    line(string.format("task %s (%s): sources %s", rec.task, rec.space, table.concat(rec.train, ", ")))
    local head = {string.format("  %-44s %4s", "target", "k")}
    for _, p in ipairs(rec.predictors) do head[#head + 1] = string.format("%-15s", p .. " rho") end
    head[#head + 1] = "kendall  coverage"
    line(table.concat(head, " "))
    local function cell(m)
      if not m then return "-" end
      if m.spearman_std and m.spearman_std > 0 then return fmt(m.spearman) .. " ± " .. fmt(m.spearman_std) end
      return fmt(m.spearman)
    end
    for _, t in ipairs(rec.targets) do
      for _, b in ipairs(t.budgets) do
        local cells = {string.format("  %-44s %4d", t.device, b.budget)}
        for _, p in ipairs(rec.predictors) do cells[#cells + 1] = string.format("%-15s", cell(b[p])) end
        local main = b[rec.predictors[1]]
        local cov = {}
        for _, r in ipairs(b.trials) do
          local iv = r[rec.predictors[1]].interval
          if iv then cov[#cov + 1] = iv.coverage end
        end
        cells[#cells + 1] = string.format("%-8s %s", fmt(main.kendall), #cov > 0 and fmt((mean_std(cov))) or "-")
        line(table.concat(cells, " "))
      end
    end
    for _, p in ipairs(rec.predictors) do
      for _, k in ipairs(rec.config.budgets) do
        local v = rec.mean[p] and rec.mean[p][tostring(k)]
        if v then line(string.format("  mean Spearman, %s, k=%d: %s", p, k, fmt(v))) end
      end
    end
    if (rec.nan_metrics or 0) > 0 then
      line(string.format("  note: %d trial(s) have no Spearman (a constant prediction or target: see nan_reason in " ..
        "--json); the means leave them out", rec.nan_metrics))
    end
    line(string.format("  time: %.1f s (pre-training %.1f s), peak memory %s MiB", rec.timings.total_s,
      rec.timings.pretrain_s or 0, fmt(rec.peak_rss_mib, 0)))
  end
  return out(table.concat(lines, "\n"), "\n")
end

--- The paper tables of a multi-task run, one per budget, with the win counts and the hybrid's mean weights,
-- written through `out(...)` (as `nasflat run` and `nasflat sweep merge` print them).
function M.print_paper_tables(records, budgets, out)
  for _, b in ipairs(budgets) do
    out(string.format("\nmean Spearman on the target devices, %d transfer samples, beside the published numbers " ..
      "(20 samples)\n", b))
    out(M.paper_table(records, b))
    for _, p in ipairs(records[1].predictors) do
      local w = M.wins(records, b, p)
      if w.tasks > 0 then
        out(string.format("%s: >= published NASFLAT on %d of %d tasks; above max(NASFLAT, %s ridge) on %d, " ..
          "by %+.3f on average\n", p, w.at_least_nasflat, w.tasks, w.ridge_source, w.above_both, w.margin))
      end
      if p == "hybrid" then out("hybrid weights, mean over targets and trials:\n", M.hybrid_weights(records, b)) end
    end
  end
end

return M
