-- The rockspec must build the same module as the Makefile: every C source and Lua module listed.
describe("rockspec", function()
  local function read(path)
    local f = assert(io.open(path, "r"))
    local s = f:read("a")
    f:close()
    return s
  end

  local function ls(pattern)
    local p = io.popen("ls " .. pattern .. " 2>/dev/null")
    local out = {}
    for line in p:lines() do out[#out + 1] = line end
    p:close()
    return out
  end

  it("lists every csrc/*.c file and every lua/nasflat/*.lua module", function()
    local spec = read("rockspec/nasflat-scm-1.rockspec")
    for _, c in ipairs(ls("csrc/*.c")) do
      assert.is_truthy(spec:find('"' .. c .. '"', 1, true), c .. " is missing from the rockspec")
    end
    for _, l in ipairs(ls("lua/nasflat/*.lua")) do
      assert.is_truthy(spec:find('"' .. l .. '"', 1, true), l .. " is missing from the rockspec")
    end
  end)
end)
