--- Shared helpers for the specs.
local M = {}

--- The real data directory, or nil when it is absent (then data specs are pending).
function M.data_dir()
  local dir = os.getenv("NASFLAT_DATA") or "../shared/data"
  local f = io.open(dir .. "/nb201_latency.csv", "r")
  if not f then return nil end
  f:close()
  return dir
end

M.NO_DATA = "real data not found: set NASFLAT_DATA or place it at ../shared/data"

--- Write `text` to a fresh temporary file and return its path.
function M.tmpfile(text, suffix)
  local path = os.tmpname() .. (suffix or "")
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- A fresh temporary directory.
function M.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -p '" .. path .. "'"))
  return path
end

--- A shell word: `s` in single quotes.
function M.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Run a shell command line; returns {out = stdout, err = stderr, code = exit status}.
function M.capture(cmd)
  local errf = os.tmpname()
  local p = assert(io.popen(cmd .. " 2>" .. errf .. "; echo EXIT=$?", "r"))
  local out = p:read("a")
  p:close()
  local f = assert(io.open(errf, "r"))
  local err = f:read("a")
  f:close()
  os.remove(errf)
  return {out = out:gsub("EXIT=%d+\n$", ""), err = err, code = tonumber(out:match("EXIT=(%d+)\n$"))}
end

--- Assert that f(...) raises an error whose message contains `needle` (plain text).
function M.raises(needle, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing: " .. needle)
  err = tostring(err)
  assert(err:find(needle, 1, true), "error was: " .. err .. "\nexpected to contain: " .. needle)
  return err
end

return M
