#!/usr/bin/env lua5.4
--- The search bar of docs/search.md: every target of the six NB201 tasks, constraints at the 10/25/50 % latency
-- quantiles, 3 trials, 30 target measurements; the adaptive loop against measure-only random search, regularised
-- evolution and predict-once; then the FBNet run with a user objective. The same as
--   nasflat search --bar   and   nasflat search --bar --space fbnet
--   lua5.4 examples/search_bar.lua        (from the repository root, after `make`; needs the real data; ~15 min)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/lua/?.so;" .. package.cpath
local bar = require "nasflat.search_bar"
local util = require "nasflat.util"

local report, finish = util.progress{}
local res = assert(bar.run{progress = report})
finish()
io.write(bar.format(res), "\n")
io.write(bar.format_fbnet(assert(bar.fbnet{})))
