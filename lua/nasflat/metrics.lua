--- Prediction-quality metrics. The work is done in C (csrc/nf_metrics.c); this module is the API.
--
-- Every function takes `pred, truth`: two Tensors (any shape, read flat) or two Lua sequences of
-- numbers (rounded to float32), of equal length. Missing values are NaN (`0/0`) in either
-- argument: such pairs are dropped before anything is computed. A nil hole or a non-number in a
-- table raises an error ("argument 2 entry 3 is not a number (nil); mark missing values with 0/0").
--
-- A metric that is undefined on the data returns NaN, never an error:
--   correlations (spearman, kendall, pearson): fewer than 2 valid pairs, or a constant side;
--   errors (mae, rmse, mape, within/acc10): no valid pair;
--   precision_at_k, topk_overlap: k larger than the number of valid pairs.
--
-- Definitions:
--   spearman        Pearson correlation of average ranks (ties share the mean rank).
--   kendall         Kendall's tau-b (tie-corrected), O(n log n) (Knight's algorithm).
--   pearson         linear correlation.
--   mae, rmse       mean absolute / root mean squared error, units of the inputs.
--   mape            100 * mean |pred - truth| / |truth| (percent; a truth of 0 gives +inf).
--   within          share in [0,1] of pairs with |pred - truth| <= tol * |truth|; acc10 = within at tol 0.1.
--   precision_at_k  the fastest = the SMALLEST values. Of the k pairs with the smallest prediction
--                   (ties by position), the share whose measurement is <= the k-th smallest
--                   measurement (ties at that boundary all count as "among the fastest k").
--   topk_overlap    Jaccard index |P ∩ T| / |P ∪ T| of the tie-inclusive fastest-k sets: P = pairs
--                   whose prediction is <= the k-th smallest prediction, T = likewise for the
--                   measurement. Without ties and c common members: precision c/k, overlap c/(2k-c).
local core = require "nasflat.core"
local util = require "nasflat.util"

local C = core.metrics

local M = {}

--- spearman(pred, truth) -> rho
M.spearman = C.spearman
--- kendall(pred, truth) -> tau-b
M.kendall = C.kendall
--- kendall_naive(pred, truth) -> tau-b by O(n^2) pair counting (the reference for tests)
M.kendall_naive = C.kendall_naive
--- pearson(pred, truth) -> r
M.pearson = C.pearson
--- mae(pred, truth) -> mean absolute error
M.mae = C.mae
--- rmse(pred, truth) -> root mean squared error
M.rmse = C.rmse
--- mape(pred, truth) -> mean absolute percentage error, in percent
M.mape = C.mape
--- within(pred, truth [, {tol = 0.1}]) -> share of predictions within tol (relative) of the truth
M.within = C.within
--- acc10(pred, truth) -> share of predictions within ±10 % of the measurement
function M.acc10(pred, truth) return C.within(pred, truth, {tol = 0.1}) end
--- precision_at_k(pred, truth [, {k = 10}])
M.precision_at_k = C.precision_at_k
--- topk_overlap(pred, truth [, {k = 10}])
M.topk_overlap = C.topk_overlap
--- count_valid(pred, truth) -> number of pairs with neither value NaN
M.count_valid = C.count_valid

M.ALL_DEFAULTS = {k = 10}

--- all(pred, truth [, {k = 10}]) -> {n, k, spearman, kendall, pearson, mae, rmse, mape, acc10,
-- precision_at_k, topk_overlap}; n is the number of valid pairs.
function M.all(pred, truth, opts)
  opts = util.options("metrics.all", opts, M.ALL_DEFAULTS)
  local k = opts.k
  if math.type(k) ~= "integer" or k < 1 then
    error(string.format("metrics.all: option 'k' must be an integer >= 1 (got %s)", tostring(k)), 2)
  end
  return {
    n = C.count_valid(pred, truth),
    k = k,
    spearman = C.spearman(pred, truth),
    kendall = C.kendall(pred, truth),
    pearson = C.pearson(pred, truth),
    mae = C.mae(pred, truth),
    rmse = C.rmse(pred, truth),
    mape = C.mape(pred, truth),
    acc10 = C.within(pred, truth, {tol = 0.1}),
    precision_at_k = C.precision_at_k(pred, truth, {k = k}),
    topk_overlap = C.topk_overlap(pred, truth, {k = k}),
  }
end

return M
