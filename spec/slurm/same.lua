-- same.lua A.json B.json: the two `--json` outputs of nasflat run / sweep merge are equal but for timings, peak
-- memory and the results-file entry (exit 1 naming the first difference).
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
local function strip(r)
  unnull(r)
  r.timings, r.peak_rss_mib, r.files = nil, nil, nil
  for _, t in ipairs(r.tasks or {}) do strip(t) end
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
