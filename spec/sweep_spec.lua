-- nasflat sweep: job seeds from what a job is, merged results identical to one `nasflat run`, a killed and a
-- failed job (status, re-run, merge), --partial, malformed plans, the Slurm script (with a stand-in sbatch), and the
-- command line's messages. Everything runs on the synthetic device zoo with small settings.
local support = require "support"
local cjson = require "cjson"
local json = require "nasflat.json"
local core = require "nasflat.core"
local sweep = require "nasflat.sweep"

local quote = support.quote
local HYBRID = {"--data", "synthetic", "--predictor", "hybrid,ridge", "--budget", "10,20", "--trials", "2"}
local GNN = {"--data", "synthetic", "--predictor", "nasflat,ridge", "--budget", "10", "--trials", "2", "--epochs", "3",
  "--samples", "32", "--transfer-epochs", "3"}

local function nasflat(args, env)
  local parts = {env or "", "./bin/nasflat"}
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  return support.capture(table.concat(parts, " "))
end

local function cat(...)
  local out = {}
  for _, list in ipairs({...}) do
    for _, x in ipairs(list) do out[#out + 1] = x end
  end
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function ok(r)
  assert.equal(0, r.code, r.err)
  return r
end

local function fails(code, message, r)
  assert.equal(message .. "\n", r.err)
  assert.equal(code, r.code)
  return r
end

--- A run's JSON without what differs between processes (timings, peak memory, the results-file entry).
local function comparable(path)
  local v = cjson.decode(read(path))
  local function unnull(t)
    for k, x in pairs(t) do
      if x == cjson.null then t[k] = 0 / 0 elseif type(x) == "table" then unnull(x) end
    end
  end
  unnull(v)
  local function strip(r)
    r.timings, r.peak_rss_mib, r.files = nil, nil, nil
    for _, t in ipairs(r.tasks or {}) do strip(t) end
  end
  strip(v)
  return json.encode(v)
end

local function plan_dir(args)
  local dir = support.tmpdir() .. "/sw"
  local r = ok(nasflat(cat({"sweep", "plan"}, args, {"--out", dir})))
  return dir, r
end

describe("sweep plan", function()
  it("derives each job's seed from what the job is, not from its position", function()
    local d1 = plan_dir({"--data", "synthetic", "--task", "Z1,Z2", "--predictor", "ridge", "--budget", "10,20",
      "--trials", "3"})
    local d2 = plan_dir({"--data", "synthetic", "--task", "Z2,Z1", "--predictor", "ridge", "--budget", "20,10",
      "--trials", "3"})
    local p1, p2 = assert(sweep.load(d1)), assert(sweep.load(d2))
    assert.equal(#p1.jobs, #p2.jobs)
    local moved = 0
    for _, j in ipairs(p1.jobs) do
      local other = assert(p2.by_key[j.key])
      assert.equal(j.seed, other.seed)
      assert.equal(core.derive_seed(1, 10000 * j.trial + j.budget), j.seed)
      if other.id ~= j.id then moved = moved + 1 end
    end
    assert.is_true(moved > 0)
    -- the plan file holds every job with its seed, exactly
    local v = cjson.decode(read(d1 .. "/plan.json"))
    assert.equal("nasflat-sweep", v.format)
    assert.equal(p1.jobs[5].seed, math.tointeger(v.jobs[5].seed))
  end)

  it("makes one pre-training job per task when the graph network is used, first", function()
    local d = plan_dir(cat(GNN, {"--task", "Z1,Z2"}))
    local p = assert(sweep.load(d))
    assert.equal("pretrain", p.jobs[1].kind)
    assert.equal("pretrain.Z1", p.jobs[1].key)
    assert.equal("pretrain.Z2", p.jobs[2].key)
    assert.equal("trial", p.jobs[3].kind)
  end)

  it("refuses a directory that holds a plan, and usage errors", function()
    local d = plan_dir(HYBRID)
    fails(1, string.format("nasflat: sweep plan: %s already holds a plan (%s/plan.json); choose another --out, or " ..
      "remove it", d, d), nasflat(cat({"sweep", "plan"}, HYBRID, {"--out", d})))
    fails(2, "nasflat: sweep plan: --out DIR is required (the sweep directory)", nasflat(cat({"sweep", "plan"}, HYBRID)))
    fails(2, "nasflat: --budget: 'x' is not a positive integer",
      nasflat({"sweep", "plan", "--budget", "x", "--out", d .. "2"}))
    fails(2, "nasflat: unknown option '--save-model' (see `nasflat sweep plan --help`)",
      nasflat({"sweep", "plan", "--save-model", "m.nfm", "--out", d .. "2"}))
    fails(1, "nasflat: task ND needs the real data; the synthetic zoo has tasks ZD, Z1, Z2, Z3, Z4",
      nasflat({"sweep", "plan", "--data", "synthetic", "--task", "ND", "--out", d .. "2"}))
  end)
end)

describe("sweep run and merge", function()
  it("give exactly what one `nasflat run` gives (hybrid and ridge, two budgets)", function()
    local d = plan_dir(HYBRID)
    local r = ok(nasflat({"sweep", "run", d, "--jobs", "2"}))
    assert.matches("^20 jobs: 20 done, 0 failed, 0 missing %(%d+%.%d s%)\n$", r.out)
    local m = ok(nasflat({"sweep", "merge", d, "--out", d .. "/merged"}))
    local s = ok(nasflat(cat({"run"}, HYBRID, {"--quiet", "--out", d .. "/single"})))
    assert.equal(read(d .. "/single/ZD-seed1.csv"), read(d .. "/merged/ZD-seed1.csv"))
    assert.equal(comparable(d .. "/single/ZD-seed1.json"), comparable(d .. "/merged/ZD-seed1.json"))
    assert.equal((s.out:gsub("time: [^\n]*", "")), (m.out:gsub("time: [^\n]*", "")))
    -- a second run does nothing: every job is done
    r = ok(nasflat({"sweep", "run", d, "--only", "1-4"}))
    assert.equal("1-4: 0 jobs run, 4 already done\n", r.out)
  end)

  it("give exactly what one `nasflat run` gives with the graph network (pre-trained once, by its own job)", function()
    local d = plan_dir(GNN)
    ok(nasflat({"sweep", "run", d, "--jobs", "2"}))
    local p = assert(sweep.load(d))
    assert.equal("pretrain", p.jobs[1].kind)
    assert.is_not_nil(io.open(d .. "/pretrained/ZD.nfm", "rb"))
    ok(nasflat({"sweep", "merge", d, "--json", "--out", d .. "/merged"}))
    ok(nasflat(cat({"run"}, GNN, {"--quiet", "--out", d .. "/single"})))
    assert.equal(read(d .. "/single/ZD-seed1.csv"), read(d .. "/merged/ZD-seed1.csv"))
    assert.equal(comparable(d .. "/single/ZD-seed1.json"), comparable(d .. "/merged/ZD-seed1.json"))
  end)

  it("a trial job waits for its pre-training", function()
    local d = plan_dir(GNN)
    local r = nasflat({"sweep", "run", d, "--only", "2"})
    fails(1, "nasflat: job 2 (ZD gpu_server_b_b1 k=10 trial 1): the pre-trained model of ZD is not ready " ..
      "(job 1 (pre-training for ZD) is missing)", r)
    local st = ok(nasflat({"sweep", "status", d}))
    assert.matches("\nfailed   job 2 %(ZD gpu_server_b_b1 k=10 trial 1%): the pre%-trained model of ZD is not ready",
      st.out)
  end)
end)

describe("faults", function()
  it("a killed job is reported by status, re-run without redoing finished jobs, then merged", function()
    local d = plan_dir(HYBRID)
    ok(nasflat({"sweep", "run", d, "--only", "1-2"}))
    -- kill -9 a worker once it has marked its jobs as running
    local bg = support.capture("./bin/nasflat sweep run " .. quote(d) .. " --only 3-4 >/dev/null 2>&1 & echo $!")
    local pid = assert(tonumber(bg.out:match("(%d+)")))
    local marker = d .. "/jobs/ZD.gpu_server_b_b1.k20.t1.running"
    for _ = 1, 400 do
      if io.open(marker, "rb") then break end
      support.capture("sleep 0.02")
    end
    local m = cjson.decode(read(marker))
    assert.equal(pid, math.tointeger(m.pid))
    support.capture("kill -9 " .. pid)
    support.capture("sleep 0.2")
    local st = ok(nasflat({"sweep", "status", d}))
    assert.matches("20 jobs: 2 done, 0 failed, 18 missing\n", st.out, 1, true)
    assert.matches("\nmissing  job 3 %(ZD gpu_server_b_b1 k=20 trial 1%): killed: pid " .. pid .. " on [^,]+, started " ..
      "[%dT:Z%-]+, ended without a result\n", st.out)
    -- merge refuses, naming what is missing
    fails(1, "nasflat: sweep merge: 18 of 20 jobs are not done (18 missing): jobs 3-20; see `nasflat sweep status " ..
      d .. "`, or merge what exists with --partial", nasflat({"sweep", "merge", d}))
    -- --partial merges what exists, under another name
    local pr = ok(nasflat({"sweep", "merge", d, "--partial", "--json", "--out", d .. "/partial"}))
    assert.equal("nasflat: sweep merge: partial: 18 of 20 jobs missing (jobs 3-20)\n", pr.err)
    local pv = cjson.decode(pr.out)
    assert.equal(18, pv.partial.missing)
    assert.equal(1, #pv.targets)
    assert.equal(2, #pv.targets[1].budgets[1].trials)
    assert.equal(0, #pv.targets[1].budgets[2].trials)
    assert.is_not_nil(io.open(d .. "/partial/ZD-seed1-partial.json", "rb"))
    -- the finished jobs are not redone
    local before = read(d .. "/jobs/ZD.gpu_server_b_b1.k10.t1.json")
    local r = ok(nasflat({"sweep", "run", d, "--jobs", "2"}))
    assert.matches("^20 jobs: 20 done", r.out)
    assert.equal(before, read(d .. "/jobs/ZD.gpu_server_b_b1.k10.t1.json"))
    assert.is_nil(io.open(marker, "rb"))
    ok(nasflat({"sweep", "merge", d, "--out", d .. "/merged"}))
    ok(nasflat(cat({"run"}, HYBRID, {"--quiet", "--out", d .. "/single"})))
    assert.equal(read(d .. "/single/ZD-seed1.csv"), read(d .. "/merged/ZD-seed1.csv"))
  end)

  it("a failed job is reported with its reason and re-run", function()
    local d = plan_dir({"--data", "synthetic", "--predictor", "ridge", "--budget", "10", "--trials", "2"})
    ok(nasflat({"sweep", "run", d, "--only", "1"}))
    -- the data of the plan goes missing: the jobs fail with the loader's message
    local text = read(d .. "/plan.json")
    write(d .. "/plan.json", (text:gsub('"data":"synthetic"', '"data":"/nonexistent-nasflat"')))
    local r = nasflat({"sweep", "run", d, "--only", "2-3"})
    assert.equal(1, r.code)
    assert.matches("^nasflat: job 2 %(ZD gpu_server_b_b1 k=10 trial 2%): .*/nonexistent%-nasflat/nb201_latency%.csv", r.err)
    local st = ok(nasflat({"sweep", "status", d}))
    assert.matches("10 jobs: 1 done, 2 failed, 7 missing\n", st.out, 1, true)
    assert.matches("\nfailed   job 3 %(ZD gpu_server_b_b64 k=10 trial 1%): [^\n]*nonexistent%-nasflat", st.out)
    local sj = cjson.decode(ok(nasflat({"sweep", "status", d, "--json"})).out)
    assert.equal(2, sj.failed)
    assert.equal("failed", sj.list[1].state)
    write(d .. "/plan.json", text)
    r = ok(nasflat({"sweep", "run", d, "--only", "1-3"}))
    assert.equal("1-3: 2 jobs run, 1 already done\n", r.out)
    st = ok(nasflat({"sweep", "status", d}))
    assert.matches("10 jobs: 3 done, 0 failed, 7 missing\n", st.out, 1, true)
  end)

  it("a damaged result is a failed job, not a done one", function()
    local d = plan_dir({"--data", "synthetic", "--predictor", "ridge", "--budget", "10", "--trials", "1"})
    ok(nasflat({"sweep", "run", d, "--only", "1"}))
    local csv = d .. "/jobs/ZD.gpu_server_b_b1.k10.t1.csv"
    write(csv, read(csv) .. "x\n")
    local st = ok(nasflat({"sweep", "status", d}))
    assert.matches("\nfailed   job 1 %(ZD gpu_server_b_b1 k=10 trial 1%): its result does not check: [^\n]*: its CSV " ..
      "ZD%.gpu_server_b_b1%.k10%.t1%.csv is not the one written with it", st.out)
  end)
end)

describe("real data", function()
  local DATA = support.data_dir()
  it("a job checks that the data is the one the plan was made with", function()
    if not DATA then pending(support.NO_DATA) return end
    local d = plan_dir({"--data", DATA, "--task", "N1", "--predictor", "ridge", "--budget", "10", "--trials", "1"})
    ok(nasflat({"sweep", "run", d, "--only", "1"}))
    local text = read(d .. "/plan.json")
    local v = cjson.decode(text)
    assert.equal(5, #v.jobs)
    v.data_info.nb201.files["nb201_latency.csv"].crc32 = "00000000"
    write(d .. "/plan.json", json.encode(v))
    fails(1, "nasflat: job 2 (N1 titan_rtx_32 k=10 trial 1): " .. v.data .. "/nb201_latency.csv is not the file the " ..
      "plan was made with (CRC-32 or size differ)", nasflat({"sweep", "run", d, "--only", "2"}))
  end)
end)

describe("malformed plans", function()
  local d
  before_each(function() d = plan_dir({"--data", "synthetic", "--predictor", "ridge", "--budget", "10",
    "--trials", "2"}) end)
  local function with(text) write(d .. "/plan.json", text) return nasflat({"sweep", "status", d}) end

  it("are refused with a message naming the file and the problem", function()
    local good = read(d .. "/plan.json")
    local p = d .. "/plan.json"
    fails(1, "nasflat: " .. p .. ": not a sweep plan (Expected value but found invalid token at character 1)",
      with("nope"))
    fails(1, "nasflat: " .. p .. ": not a sweep plan (format is missing, expected \"nasflat-sweep\")", with("{}"))
    fails(1, "nasflat: " .. p .. ": not a sweep plan (format is \"other\", expected \"nasflat-sweep\")",
      with('{"format":"other"}'))
    fails(1, "nasflat: " .. p .. ": sweep plan version 9; this nasflat reads version 1",
      with((good:gsub('"version":1', '"version":9'))))
    fails(1, "nasflat: " .. p .. ": unknown run option 'bogus'", with((good:gsub('"run":{', '"run":{"bogus":1,'))))
    fails(1, "nasflat: " .. p .. ": run.trials must be an integer >= 1", with((good:gsub('"trials":2', '"trials":0'))))
    local v = cjson.decode(good)
    v.jobs[2].seed = 12345
    fails(1, string.format("nasflat: %s: job 2: seed is 12345, but its run and tasks make %d (an edited plan?)", p,
      core.derive_seed(1, 10000 * 2 + 10)), with(json.encode(v)))
    v = cjson.decode(good)
    v.jobs[#v.jobs] = nil
    fails(1, "nasflat: " .. p .. ": 9 jobs, but its run and tasks make 10 (an edited plan?)", with(json.encode(v)))
    os.remove(p)
    fails(1, string.format("nasflat: %s: no sweep plan (%s: No such file or directory); write one with `nasflat sweep " ..
      "plan ... --out %s`", d, p, d), nasflat({"sweep", "status", d}))
  end)
end)

describe("sweep slurm", function()
  it("writes one array script; the pre-training array first, the others depend on it", function()
    local d = plan_dir(cat(GNN, {"--task", "Z1"}))
    local log = support.tmpfile("")
    local fake = support.tmpfile("#!/bin/sh\necho \"$@\" >> " .. quote(log) .. "\necho 4242\n")
    assert(os.execute("chmod +x " .. quote(fake)))
    local r = ok(nasflat({"sweep", "slurm", d, "--partition", "cpu", "--time", "0:30:00", "--mem", "2G",
      "--array-max", "4"}, "NASFLAT_SBATCH=" .. quote(fake)))
    assert.equal(string.format("script: %s/slurm/sweep.sbatch\n" ..
      "submitted: '%s' '--parsable' '--array=1%%4' '%s/slurm/sweep.sbatch'  -> 4242\n" ..
      "submitted: '%s' '--parsable' '--array=2-11%%4' '--dependency=afterok:4242' '%s/slurm/sweep.sbatch'  -> 4242\n" ..
      "11 jobs in 2 arrays\n", d, fake, d, fake, d), r.out)
    assert.equal(string.format("--parsable --array=1%%4 %s/slurm/sweep.sbatch\n" ..
      "--parsable --array=2-11%%4 --dependency=afterok:4242 %s/slurm/sweep.sbatch\n", d, d), read(log))
    local script = read(d .. "/slurm/sweep.sbatch")
    assert.matches("\n#SBATCH %-%-partition=cpu\n#SBATCH %-%-time=0:30:00\n#SBATCH %-%-mem=2G\n", script)
    assert.matches("\nexec '[^']+' '[^']*/bin/nasflat' sweep run '" .. d:gsub("%p", "%%%0") ..
      "' %-%-only \"%$SLURM_ARRAY_TASK_ID\"\n$", script)
    -- once a job is done, only --resume submits, and only the rest
    ok(nasflat({"sweep", "run", d, "--only", "1"}))
    fails(1, "nasflat: sweep slurm: 1 of 11 jobs of " .. d .. " are done already; --resume submits the 10 others",
      nasflat({"sweep", "slurm", d, "--dry-run"}))
    r = ok(nasflat({"sweep", "slurm", d, "--resume", "--dry-run"}))
    assert.equal(string.format("script: %s/slurm/sweep.sbatch\n" ..
      "would run: 'sbatch' '--parsable' '--array=2-11' '%s/slurm/sweep.sbatch'\n10 jobs in 1 array\n", d, d), r.out)
  end)

  it("reports sbatch's failure", function()
    local d = plan_dir({"--data", "synthetic", "--predictor", "ridge", "--budget", "10", "--trials", "1"})
    local fake = support.tmpfile("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    assert(os.execute("chmod +x " .. quote(fake)))
    fails(1, "nasflat: sweep slurm: sbatch failed (exit 1): sbatch: error: invalid partition specified: nope",
      nasflat({"sweep", "slurm", d, "--partition", "nope"}, "NASFLAT_SBATCH=" .. quote(fake)))
  end)
end)

describe("the sweep command line", function()
  it("has --help on the command and every subcommand", function()
    local r = ok(nasflat({"sweep", "--help"}))
    assert.matches("^usage: nasflat sweep <plan|run|slurm|status|merge>", r.out)
    for _, sub in ipairs({"plan", "run", "slurm", "status", "merge"}) do
      r = ok(nasflat({"sweep", sub, "--help"}))
      assert.matches("^usage: nasflat sweep " .. sub, r.out)
    end
    r = ok(nasflat({"sweep", "plan", "--help"}))
    assert.matches("\n  %-%-hybrid%-bags N ", r.out)     -- nasflat run's options
    assert.matches("\n  %-%-out DIR +the sweep directory", r.out)
  end)

  it("usage errors exit 2 with one message", function()
    fails(2, "nasflat: sweep: unknown subcommand 'go' (subcommands: plan, run, slurm, status, merge)",
      nasflat({"sweep", "go"}))
    fails(2, "nasflat: sweep run: the sweep directory is required (see `nasflat sweep run --help`)",
      nasflat({"sweep", "run"}))
    local d = plan_dir({"--data", "synthetic", "--predictor", "ridge", "--budget", "10", "--trials", "1"})
    fails(2, "nasflat: --only: job 9 does not exist (the plan has 5 jobs)", nasflat({"sweep", "run", d, "--only", "9"}))
    fails(2, "nasflat: --only: '2-1' is not a job number or range (i or i-j)",
      nasflat({"sweep", "run", d, "--only", "2-1"}))
    fails(2, "nasflat: sweep status: unexpected argument 'x'", nasflat({"sweep", "status", d, "x"}))
  end)
end)

--------------------------------------------------------------------------------------------------- study sweeps
-- a tiny study on the zoo: the sampler axis (2 settings) and a 2-budget curve, 2 trials, one pre-training
local STUDY = {"--data", "synthetic", "--axes", "sampler_encoding,budget", "--samplers", "random,kmeancosine",
  "--encodings", "struct", "--curve", "5,10", "--budget", "5", "--trials", "2", "--samples", "16", "--epochs", "1",
  "--transfer-epochs", "1", "--hidden", "8"}

--- A study's or a search bar's JSON without what differs between processes (timings, wall times, peak memory,
-- the tables' text that prints the wall times, the results-file entry).
local function comparable_any(text)
  local v = cjson.decode(text)
  local DROP = {timings = true, timing = true, wall_s = true, peak_rss_mib = true, table = true, files = true}
  local function clean(t)
    for k, x in pairs(t) do
      if DROP[k] then t[k] = nil
      elseif x == cjson.null then t[k] = 0 / 0
      elseif type(x) == "table" then clean(x) end
    end
  end
  clean(v)
  return json.encode(v)
end

--- The printed tables without the wall-clock figures.
local function no_times(text)
  return (text:gsub("; %d+ s\n", "; - s\n"):gsub("wall %d+ s", "wall - s"):gsub("\nwall clock per[^\n]*", "")
    :gsub("\nbar run: [^\n]*", ""))
end

local function only_file(dir, pattern)
  local p = io.popen("ls " .. quote(dir))
  local found
  for name in p:lines() do if name:match(pattern) then assert.is_nil(found, "two files match " .. pattern) found = name end end
  p:close()
  assert.is_not_nil(found, "no file matches " .. pattern .. " in " .. dir)
  return dir .. "/" .. found
end

describe("study sweeps", function()
  local single_run
  --- `nasflat study` of STUDY in one process (once): its stdout and its results directory.
  local function single()
    if not single_run then
      local dir = support.tmpdir() .. "/single"
      single_run = {r = ok(nasflat(cat({"study"}, STUDY, {"--quiet", "--out", dir}))), dir = dir}
    end
    return single_run.r, single_run.dir
  end

  local function study_plan(args)
    local dir = support.tmpdir() .. "/sw"
    local r = ok(nasflat(cat({"sweep", "plan", "study"}, args, {"--out", dir})))
    return dir, r
  end

  it("plan one pre-training per task and key first, then setting x task x trial, seeded by what each job is", function()
    local d, r = study_plan(STUDY)
    assert.equal(d .. "/plan.json: 7 jobs (1 task; 1 pre-trainings, 6 trials), data synthetic\n", r.out)
    local p = assert(sweep.load(d))
    assert.equal("study", p.kind)
    local keys = {}
    for i, j in ipairs(p.jobs) do keys[i] = j.key end
    assert.same({"pretrain.ZD." .. p.units[1].pretrain, "ZD.sampler_encoding.random.t1", "ZD.sampler_encoding.random.t2",
      "ZD.sampler_encoding.kmeancosine%2Fstruct.t1", "ZD.sampler_encoding.kmeancosine%2Fstruct.t2",
      "ZD.budget.curve.t1", "ZD.budget.curve.t2"}, keys)
    for _, j in ipairs(p.jobs) do
      if j.kind == "trial" then
        assert.equal(p.jobs[1].key, j.needs)
        assert.equal(core.derive_seed(1, 10000 * j.trial + p.units[j.unit].options.budgets[1]), j.seed)
      end
    end
    -- the axes in the other order: every job keeps its key and seed
    local d2 = study_plan(cat(STUDY, {"--axes", "budget,sampler_encoding"}))
    local p2 = assert(sweep.load(d2))
    assert.equal(#p.jobs, #p2.jobs)
    local moved = 0
    for _, j in ipairs(p.jobs) do
      local other = assert(p2.by_key[j.key], j.key)
      assert.equal(j.seed, other.seed)
      if other.id ~= j.id then moved = moved + 1 end
    end
    assert.is_true(moved > 0)
  end)

  it("run and merge into exactly what one `nasflat study` prints and writes", function()
    local d = study_plan(STUDY)
    local r = ok(nasflat({"sweep", "run", d, "--jobs", "2"}))
    assert.matches("^7 jobs: 7 done, 0 failed, 0 missing", r.out)
    local m = ok(nasflat({"sweep", "merge", d, "--out", d .. "/merged"}))
    local s, sdir = single()
    assert.matches("\n| random | %-?%d%.%d%d%d ± %d%.%d%d%d |", s.out)
    assert.matches("pre%-trainings: 1 trained, 2 reused, 0 loaded; 0 results reused; wall %d+ s\n$", s.out)
    assert.equal(no_times(s.out), no_times(m.out))
    assert.equal(read(only_file(sdir, "^study%-.*%.csv$")), read(only_file(d .. "/merged", "^study%-.*%.csv$")))
    local sjson = comparable_any(read(only_file(sdir, "^study%-.*%.json$")))
    assert.equal(sjson, comparable_any(read(only_file(d .. "/merged", "^study%-.*%.json$"))))
    local mj = ok(nasflat({"sweep", "merge", d, "--json", "--out", d .. "/merged2"}))
    assert.equal(sjson, comparable_any(mj.out))
  end)

  it("a trial job waits for its pre-training; a killed job is reported, merge refuses, --resume redoes it", function()
    local d = study_plan(STUDY)
    fails(1, "nasflat: job 2 (ZD sampler_encoding:random trial 1): the pre-trained model of ZD is not ready " ..
      "(job 1 (pre-training for ZD, sampler_encoding:random) is missing)", nasflat({"sweep", "run", d, "--only", "2"}))
    ok(nasflat({"sweep", "run", d, "--only", "1,3-7"}))
    local st = ok(nasflat({"sweep", "status", d}))
    assert.equal(d .. "/plan.json: 7 jobs: 6 done, 1 failed, 0 missing\nfailed   job 2 (ZD sampler_encoding:random " ..
      "trial 1): the pre-trained model of ZD is not ready (job 1 (pre-training for ZD, sampler_encoding:random) is " ..
      "missing)\n", st.out)
    fails(1, "nasflat: sweep merge: 1 of 7 jobs are not done (1 failed): jobs 2; see `nasflat sweep status " .. d ..
      "`, or merge what exists with --partial", nasflat({"sweep", "merge", d}))
    local pr = ok(nasflat({"sweep", "merge", d, "--partial", "--json", "--out", d .. "/partial"}))
    assert.equal("nasflat: sweep merge: partial: 1 of 7 jobs missing (jobs 2)\n", pr.err)
    local pv = cjson.decode(pr.out)
    assert.equal(1, pv.partial.missing)
    assert.equal(1, #pv.axes[1].settings[1].tasks.ZD.record.targets[1].budgets[1].trials)
    only_file(d .. "/partial", "^study%-.*%-partial%.json$")
    -- the slurm path submits only the job not done, with no pre-training array
    local r = ok(nasflat({"sweep", "slurm", d, "--resume", "--dry-run"}))
    assert.equal(string.format("script: %s/slurm/sweep.sbatch\nwould run: 'sbatch' '--parsable' '--array=2' " ..
      "'%s/slurm/sweep.sbatch'\n1 jobs in 1 array\n", d, d), r.out)
    local before = read(d .. "/jobs/ZD.budget.curve.t1.json")
    r = ok(nasflat({"sweep", "run", d, "--jobs", "2"}))
    assert.matches("^7 jobs: 7 done", r.out)
    assert.equal(before, read(d .. "/jobs/ZD.budget.curve.t1.json"))
    local m = ok(nasflat({"sweep", "merge", d, "--out", d .. "/merged"}))
    assert.equal(no_times(single().out), no_times(m.out))
  end)

  it("submit the pre-trainings as a first Slurm array and the trials after it (afterok)", function()
    local d = study_plan(STUDY)
    local r = ok(nasflat({"sweep", "slurm", d, "--dry-run"}))
    assert.equal(string.format("script: %s/slurm/sweep.sbatch\n" ..
      "would run: 'sbatch' '--parsable' '--array=1' '%s/slurm/sweep.sbatch'\n" ..
      "would run: 'sbatch' '--parsable' '--array=2-7' '--dependency=afterok:<first array'\\''s job id>' " ..
      "'%s/slurm/sweep.sbatch'\n7 jobs in 2 arrays\n", d, d, d), r.out)
  end)

  it("refuse bad study options as usage errors, and an edited plan", function()
    fails(2, "nasflat: study.run: unknown axis 'foo' (known: " .. table.concat(require("nasflat.study").AXES, ", ") ..
      ")", nasflat({"sweep", "plan", "study", "--data", "synthetic", "--axes", "foo", "--out",
      support.tmpdir() .. "/x"}))
    fails(2, "nasflat: unknown option '--predictor' (see `nasflat sweep plan study --help`)",
      nasflat({"sweep", "plan", "study", "--predictor", "ridge"}))
    fails(2, "nasflat: sweep plan study: --out DIR is required (the sweep directory)",
      nasflat({"sweep", "plan", "study", "--data", "synthetic"}))
    local d = study_plan(STUDY)
    local v = cjson.decode(read(d .. "/plan.json"))
    v.jobs[3].seed = 12345
    write(d .. "/plan.json", json.encode(v))
    fails(1, string.format("nasflat: %s/plan.json: job 3: seed is 12345, but its study makes %d (an edited plan?)", d,
      core.derive_seed(1, 10000 * 2 + 5)), nasflat({"sweep", "status", d}))
  end)
end)

--------------------------------------------------------------------------------------------------- search sweeps
-- the search bar on the zoo: a cost objective, two targets of ZD, two budget quantiles, two trials, 22 measurements
local BAR = {"--data", "synthetic", "--tasks", "ZD", "--objective", "flops", "--targets", "gpu_server_b_b1,cpu_mobile_mid",
  "--quantiles", "0.25,0.5", "--trials", "2", "--measurements", "22"}

describe("search sweeps", function()
  it("plan task x target x budget x trial, run, and merge into exactly what `nasflat search --bar` prints", function()
    local d = support.tmpdir() .. "/sw"
    local r = ok(nasflat(cat({"sweep", "plan", "search"}, BAR, {"--out", d})))
    assert.equal(d .. "/plan.json: 8 jobs (1 task; 0 pre-trainings, 8 searches), data synthetic\n", r.out)
    local p = assert(sweep.load(d))
    assert.equal("ZD.gpu_server_b_b1.q25.t1", p.jobs[1].key)
    assert.equal("ZD.cpu_mobile_mid.q50.t2", p.jobs[8].key)
    for _, j in ipairs(p.jobs) do assert.equal(j.trial, j.seed) end
    -- the jobs of the second target first, on another process than the first's
    ok(nasflat({"sweep", "run", d, "--only", "5-8"}))
    fails(1, "nasflat: sweep merge: 4 of 8 jobs are not done (4 missing): jobs 1-4; see `nasflat sweep status " .. d ..
      "`, or merge what exists with --partial", nasflat({"sweep", "merge", d}))
    local pr = ok(nasflat({"sweep", "merge", d, "--partial", "--json"}))
    assert.equal(4, #cjson.decode(pr.out).rows)
    r = ok(nasflat({"sweep", "run", d, "--jobs", "2"}))
    assert.matches("^8 jobs: 8 done, 0 failed, 0 missing", r.out)
    local m = ok(nasflat({"sweep", "merge", d}))
    local s = ok(nasflat(cat({"search", "--bar", "--quiet"}, BAR)))
    assert.matches("\nZD q25 +4 ", s.out)
    assert.matches("\nall +8 ", s.out)
    assert.equal(no_times(s.out), no_times(m.out))
    local sj = ok(nasflat(cat({"search", "--bar", "--quiet", "--json"}, BAR)))
    local mj = ok(nasflat({"sweep", "merge", d, "--json"}))
    assert.equal(comparable_any(sj.out), comparable_any(mj.out))
    assert.is_not_nil(io.open(d .. "/search-bar.json", "rb"))
  end)

  it("refuse what the bar cannot do", function()
    fails(1, "nasflat: the search bar needs the real data for an accuracy objective (the synthetic zoo has none: " ..
      "--objective params or flops)", nasflat({"sweep", "plan", "search", "--data", "synthetic", "--tasks", "ZD",
      "--out", support.tmpdir() .. "/x"}))
    fails(1, "nasflat: target 'pixel9' is not a target of the tasks ZD", nasflat({"sweep", "plan", "search", "--data",
      "synthetic", "--tasks", "ZD", "--objective", "flops", "--targets", "pixel9", "--out", support.tmpdir() .. "/x"}))
    fails(2, "nasflat: --quantiles: '2' is not a quantile in (0, 1]", nasflat({"sweep", "plan", "search",
      "--quantiles", "2", "--out", support.tmpdir() .. "/x"}))
  end)
end)
