-- Finite-difference gradient checks of every layer of the predictor (csrc/nf_nn.c), through
-- nasflat.core.nn_gradcheck: L = Σ w ⊙ output, analytic gradients of parameters and inputs
-- against central differences. Thresholds were set so a deliberately broken backward fails
-- (see the "catches a wrong gradient" test and ctest/test_nn.c).
local nf = require "nasflat"
local support = require "support"
local gradcheck = nf.core.nn_gradcheck

local function assert_ok(r, what)
  assert(r.checked > 0, what .. ": nothing checked")
  assert(r.rel < 1e-3, string.format("%s: relative gradient error %.3g (worst %s)", what, r.rel, r.worst))
  assert(r.max_rel < 0.1, string.format("%s: max element error %.3g (worst %s)", what, r.max_rel, r.worst))
end

describe("nn layers", function()
  for _, layer in ipairs{"linear", "embedding", "relu", "leaky_relu", "sigmoid", "dropout", "layernorm", "readout"} do
    it("has a correct gradient: " .. layer, function()
      assert_ok(gradcheck{layer = layer, seed = 3}, layer)
      assert_ok(gradcheck{layer = layer, seed = 11, B = 2, N = 4, ["in"] = 9, out = 5}, layer)
    end)
  end

  for _, layer in ipairs{"dgf", "gat", "gat_mh", "ensemble"} do
    it("has a correct gradient: graph layer " .. layer, function()
      assert_ok(gradcheck{layer = layer, seed = 5}, layer)
      -- node states shared by all graphs (the model's first layer)
      assert_ok(gradcheck{layer = layer, seed = 6, h_shared = true}, layer .. " (shared H)")
      -- every reference quirk on
      assert_ok(gradcheck{layer = layer, seed = 7, quirk_gat_mask_zero = true, quirk_gat_nscale = true,
        gat_slope = 0.01}, layer .. " (reference quirks)")
    end)
  end

  it("catches a wrong gradient", function()
    for _, layer in ipairs{"linear", "layernorm", "gat", "ensemble"} do
      local r = gradcheck{layer = layer, seed = 5, breakit = true}
      assert.is_true(r.rel > 1e-2 and r.max_rel > 0.1, layer .. " broken gradient passed")
    end
  end)

  it("rejects unknown layers and options", function()
    support.raises("gradcheck: unknown layer 'conv'", gradcheck, {layer = "conv"})
    support.raises("nn_gradcheck: unknown option 'size'", gradcheck, {layer = "gat", size = 3})
    support.raises("nn_gradcheck: option 'layer' is required", gradcheck, {})
  end)
end)
