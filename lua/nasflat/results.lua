--- The one results writer: run records as a JSON file and a CSV file, written as a pair that readers can check.
--
--   results.write{dir = "results", stem = "ND-seed1", value = record_or_table, csv = text}  -> json_path, csv_path
--   results.read("results/ND-seed1.json")   -> value (the CSV beside it checked) or nil, message
--   results.csv{records = {...}}           -> the CSV text of run records (one line per target, budget, trial,
--                                             predictor), cells quoted per RFC 4180
--
-- The pair: the CSV is written first (temporary file, rename), then the JSON, whose `files.csv` entry holds the
-- CSV's name, size and CRC-32 — the JSON is the manifest, renamed into place last. A reader (results.read) refuses a
-- JSON whose CSV is missing or differs, so a kill between the two renames, or a failed second one, never passes off
-- one run's CSV as another's; the previous run's JSON is left as it was. Numbers are exact (nasflat.json); a metric
-- that is NaN (e.g. Spearman of a constant column) is written as null, and counted in the record's `nan_metrics`.
local core = require "nasflat.core"
local util = require "nasflat.util"
local json = require "nasflat.json"

local M = {}

M.COLUMNS = {"task", "space", "target", "budget", "trial", "predictor", "spearman", "kendall", "mae_ms", "mape",
  "acc10", "interval_coverage", "interval_width", "seed"}

--- One CSV cell: numbers exact, text quoted when it holds a comma, quote, CR or LF, and a text that a spreadsheet
-- would take for a formula (leading =, +, -, @, tab, CR) prefixed with a single quote.
function M.cell(v)
  if v == nil then return "" end
  if type(v) == "number" then
    if v ~= v then return "" end
    return json.number(v)
  end
  local s = tostring(v)
  if s:match("^[=+%-@\t\r]") and not tonumber(s) then s = "'" .. s end
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- A CSV text from a header (list of names) and rows (lists of values).
function M.csv_text(header, rows)
  local lines = {}
  local cells = {}
  for i, h in ipairs(header) do cells[i] = M.cell(h) end
  lines[1] = table.concat(cells, ",")
  for _, r in ipairs(rows) do
    cells = {}
    for i = 1, #header do cells[i] = M.cell(r[i]) end
    lines[#lines + 1] = table.concat(cells, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

--- The rows of one run record: {target, budget, trial, predictor, metrics..., seed} per trial and predictor, in the
-- record's predictor order.
function M.trial_rows(rec)
  local out = {}
  for _, t in ipairs(rec.targets) do
    for _, b in ipairs(t.budgets) do
      for _, run in ipairs(b.trials) do
        for _, p in ipairs(rec.predictors or {}) do
          local m = run[p]
          if m then
            local iv = m.interval or {}
            out[#out + 1] = {rec.task, rec.space, t.device, b.budget, run.trial, p, m.spearman, m.kendall, m.mae_ms,
              m.mape, m.acc10, iv.coverage, iv.median_width, run.seed}
          end
        end
      end
    end
  end
  return out
end

--- The CSV of run records (M.COLUMNS).
function M.csv(records)
  local rows = {}
  for _, rec in ipairs(records) do
    for _, r in ipairs(M.trial_rows(rec)) do rows[#rows + 1] = r end
  end
  return M.csv_text(M.COLUMNS, rows)
end

--- Write <dir>/<stem>.csv, then <dir>/<stem>.json (the manifest; see the module comment). opts: dir, stem, value
-- (a table: the JSON object; a field `files` is added), csv (text). Returns the two paths, or nil and a message.
function M.write(opts)
  opts = util.options("results.write", opts, {dir = util.REQUIRED, stem = util.REQUIRED, value = util.REQUIRED,
    csv = util.REQUIRED})
  if type(opts.dir) ~= "string" or opts.dir == "" then return nil, "results: the output directory name is empty" end
  if type(opts.stem) ~= "string" or opts.stem == "" or opts.stem:find("/") then
    error("results.write: option 'stem' must be a file name without '/'", 2)
  end
  local ok, err = util.mkdirs(opts.dir)
  if not ok then return nil, err end
  local base = opts.dir .. "/" .. opts.stem
  ok, err = util.atomic_write(base .. ".csv", opts.csv)
  if not ok then return nil, err end
  local value = opts.value
  value.files = {csv = {name = opts.stem .. ".csv", bytes = #opts.csv, crc32 = core.crc32(opts.csv)}}
  ok, err = util.atomic_write(base .. ".json", json.encode(value) .. "\n")
  if not ok then return nil, err end
  return base .. ".json", base .. ".csv"
end

--- Read a results JSON written by M.write, checking the CSV beside it. Returns the value or nil, message.
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, string.format("%s: cannot open (%s)", path, err) end
  local text = f:read("a")
  f:close()
  local v, jerr = require("cjson.safe").decode(text)
  if type(v) ~= "table" then return nil, string.format("%s: not a results file (%s)", path, tostring(jerr)) end
  local c = type(v.files) == "table" and v.files.csv
  if type(c) ~= "table" then return nil, path .. ": not a results file (no files.csv entry)" end
  local dir = path:match("^(.*)/[^/]*$") or "."
  local cf = io.open(dir .. "/" .. c.name, "rb")
  if not cf then return nil, string.format("%s: its CSV %s is missing", path, c.name) end
  local ctext = cf:read("a")
  cf:close()
  if #ctext ~= c.bytes or core.crc32(ctext) ~= c.crc32 then
    return nil, string.format("%s: its CSV %s is not the one written with it (an interrupted or mixed run)", path,
      c.name)
  end
  return v
end

return M
