-- luacheck: strict globals and unused-variable checks for the Lua front, the CLI and the specs.
std = "lua54"
max_line_length = 130
files["spec/"] = { std = "+busted" }
files["bin/nasflat"] = { globals = {} }
