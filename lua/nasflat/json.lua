--- The one JSON writer of nasflat: exact numbers and stable text.
--
--   json.encode(value) -> string (no trailing newline)
--
-- lua-cjson stops at 14 significant digits, which rounds the 53-bit trial seeds and the last bits of model
-- coefficients; this encoder writes integers as integers and other numbers in the fewest digits (14 to 17)
-- that read back equal, so `cjson.decode(json.encode(x))` gives back the same numbers. NaN and infinities are
-- written as null (a reader that needs to know why keeps a reason beside them). Object keys are sorted, so the
-- same value always gives the same text. A table is an array when its keys are exactly 1..#t (an empty table is
-- an object, `{}`; use json.array() for an empty array). Reading is lua-cjson's (`cjson.safe.decode`).
local M = {}

local ARRAY = setmetatable({}, {__mode = "k"})

--- Mark a table as a JSON array (needed only for an empty one).
function M.array(t)
  t = t or {}
  ARRAY[t] = true
  return t
end

local ESC = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t"}

--- The shortest decimal text of a float that reads back equal (14 to 17 significant digits).
function M.number(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if math.type(v) == "integer" then return string.format("%d", v) end
  local txt
  for digits = 14, 17 do
    txt = string.format("%." .. digits .. "g", v)
    if tonumber(txt) == v then break end
  end
  return txt
end

local function string_text(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c) return ESC[c] or string.format("\\u%04x", c:byte()) end) .. '"'
end

local function encode(v, out, depth)
  if depth > 100 then error("json.encode: nesting deeper than 100 (a cycle?)", depth + 2) end
  local ty = type(v)
  if ty == "table" then
    local n = #v
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    if (n > 0 and #keys == n) or (n == 0 and #keys == 0 and ARRAY[v]) then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
      return
    end
    for i, k in ipairs(keys) do
      local tk = type(k)
      if tk ~= "string" and tk ~= "number" then error("json.encode: cannot encode a " .. tk .. " key", depth + 2) end
      keys[i] = tostring(k)
    end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = string_text(k)
      out[#out + 1] = ":"
      local val = v[k]
      if val == nil then val = v[math.tointeger(tonumber(k)) or tonumber(k)] end
      encode(val, out, depth + 1)
    end
    out[#out + 1] = "}"
  elseif ty == "string" then
    out[#out + 1] = string_text(v)
  elseif ty == "number" then
    out[#out + 1] = M.number(v)
  elseif ty == "boolean" then
    out[#out + 1] = tostring(v)
  elseif v == nil then
    out[#out + 1] = "null"
  else
    error("json.encode: cannot encode a " .. ty, depth + 2)
  end
end

--- The JSON text of a Lua value (tables, strings, numbers, booleans, nil).
function M.encode(v)
  local out = {}
  encode(v, out, 0)
  return table.concat(out)
end

return M
