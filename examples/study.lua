#!/usr/bin/env lua5.4
--- The design study (issue 5, item 4) from a source checkout: the same as `nasflat study` (lua/nasflat/cli_study.lua:
-- the options, the tables on stdout, --json, --out), which calls nasflat.study (read its header for the axes, the
-- default task subset and why, and the pre-training reuse). Kept so that `lua5.4 examples/study.lua ...` keeps
-- working; `nasflat sweep plan study ...` splits the same study into jobs (docs/sweeps.md).
--
--   lua5.4 examples/study.lua [--data DIR|synthetic] [--tasks N2,F3] [--axes predictor,device] [--trials 3] ...
--
-- Run from the repository root after `make` (or with nasflat installed).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("NASFLAT_BUILD") or "build") .. "/lua/?.so;" .. package.cpath

local argv = {"study"}
for _, a in ipairs(arg) do argv[#argv + 1] = a end
os.exit(require("nasflat.cli").main(argv))
