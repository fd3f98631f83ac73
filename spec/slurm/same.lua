-- same.lua A.json B.json: two JSON results (of nasflat run, nasflat study, nasflat search --bar and their sweep
-- merges) are equal but for timings, wall times, peak memory, the tables' text (it prints wall times) and the
-- results-file entry, at any depth (exit 1 naming the first difference).
local cjson = require "cjson"
local json = require "nasflat.json"
local function load(p)
  local f = assert(io.open(p, "rb"))
  local v = cjson.decode(f:read("a"))
  f:close()
  return v
end
local function unnull(v)
  for k, x in pairs(v) do
    if x == cjson.null then v[k] = 0 / 0 elseif type(x) == "table" then unnull(x) end
  end
end
local DROP = {timings = true, timing = true, wall_s = true, peak_rss_mib = true, files = true, table = true}
local function drop(v)
  for k, x in pairs(v) do
    if DROP[k] then v[k] = nil elseif type(x) == "table" then drop(x) end
  end
end
local function strip(r)
  unnull(r)
  drop(r)
  return json.encode(r)
end
local a, b = strip(load(arg[1])), strip(load(arg[2]))
if a == b then os.exit(0) end
for i = 1, math.max(#a, #b) do
  if a:sub(i, i) ~= b:sub(i, i) then
    io.stderr:write("first difference at byte ", i, ":\n", a:sub(math.max(1, i - 120), i + 80), "\n",
      b:sub(math.max(1, i - 120), i + 80), "\n")
    break
  end
end
os.exit(1)
