local report = require "nasflat.report"
local tasks = require "nasflat.tasks"

-- two hand-made records: ND where the hybrid beats both rows, N2 where it beats NASFLAT only
local function rec(task, nasflat, hybrid, ridge)
  return {task = task, config = {budgets = {20}, hybrid = {"nasflat", "ridge"}, hybrid_weights = "cv"},
    mean = {nasflat = {["20"] = nasflat}, hybrid = {["20"] = hybrid}, ridge = {["20"] = ridge}}}
end
local records = {rec("ND", 0.90, 0.97, 0.93), rec("N2", 0.86, 0.92, 0.95)}

describe("report", function()
  it("prints our rows beside the published ones, with the mean over the tasks present", function()
    local t = report.paper_table(records, 20)
    assert.truthy(t:find("| predictor | ND | N2 | mean |", 1, true))
    assert.truthy(t:find("| nasflat GNN (ours) | 0.900 | 0.860 | 0.880 |", 1, true))
    assert.truthy(t:find("| hybrid (ours): cv-weighted nasflat+ridge | 0.970 | 0.920 | 0.945 |", 1, true))
    local pub = tasks.PUBLISHED.NASFLAT
    assert.truthy(t:find(string.format("| NASFLAT (published) | %.3f | %.3f |", pub.ND, pub.N2), 1, true))
  end)

  it("averages the hybrid's weights per task", function()
    local function run(w) return {hybrid = {weights = w}} end
    local r = {task = "ND", config = {budgets = {20}, hybrid = {"nasflat", "ridge"}}, mean = {},
      targets = {{budgets = {{budget = 20, trials = {run{nasflat = 0.2, ridge = 0.8}, run{nasflat = 0.4, ridge = 0.6}}}}},
                 {budgets = {{budget = 20, trials = {run{nasflat = 0, ridge = 1}}}}}}}
    assert.equal("| task | nasflat | ridge |\n|---|---|---|\n| ND | 0.20 | 0.80 |\n", report.hybrid_weights({r}, 20))
  end)

  it("counts wins against NASFLAT and against max(NASFLAT, our ridge), with the mean margin", function()
    local pub = tasks.PUBLISHED.NASFLAT
    local w = report.wins(records, 20, "hybrid")
    assert.equal(2, w.tasks)
    assert.equal(2, w.at_least_nasflat)          -- 0.97 >= 0.959, 0.92 >= 0.857
    assert.equal(1, w.above_both)                -- N2: our ridge 0.95 is above the hybrid
    assert.equal("our", w.ridge_source)
    assert.near(((0.97 - math.max(pub.ND, 0.93)) + (0.92 - 0.95)) / 2, w.margin, 1e-12)
    local g = report.wins(records, 20)
    assert.equal(1, g.at_least_nasflat)          -- the GNN: 0.86 >= 0.857 only
    -- without ridge results the METHOD §10 table's ridge is the reference
    local bare = {{task = "ND", config = {budgets = {20}}, mean = {hybrid = {["20"] = 0.97}}}}
    assert.equal("the METHOD §10 table's", report.wins(bare, 20, "hybrid").ridge_source)
  end)
end)
