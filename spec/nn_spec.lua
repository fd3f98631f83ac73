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
      assert_ok(gradcheck{layer = layer, seed = 7, quirk_gat_mask_zero = true,
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

-- Lua code that runs inside a binding (a metamethod of a list it reads, an on_epoch callback) may free
-- the model or grow it. Before, the binding went on with the freed model (AddressSanitizer:
-- heap-use-after-free in nf_model_train / nf_model_predict).
describe("Model and Lua code run during a call", function()
  local space = nf.space.get("nb201")
  local G = space:graphs{space:at(1), space:at(50), space:at(700), space:at(9000)}
  local y = nf.Tensor.from{0.1, 0.5, 0.3, 0.9}
  local function fresh()
    return nf.core.Model({nodes = 8, n_ops = 7, op_layers = {4}, main_layers = {4}, gate_mlp = {4},
      head = {4}, z_hidden = {}, op_dim = 4, hw_dim = 2, node_dim = 4, hid = 4, upd_hidden = 4}, {"a"}, 1)
  end
  local function freeing(m, value)
    return setmetatable({}, {__len = function() return 4 end, __index = function(_, i) m:free(); return value or i end})
  end

  it("train and predict re-check the model after reading the rows list", function()
    local m = fresh()
    support.raises("attempt to use a closed model", m.train, m,
      {ops = G.ops, adj = G.adj, rows = freeing(m), dev = {1, 1, 1, 1}, y = y, epochs = 1})
    m = fresh()
    support.raises("attempt to use a closed model", m.predict, m, {ops = G.ops, adj = G.adj, rows = freeing(m), device = 1})
    m = fresh()
    support.raises("attempt to use a closed model", m.predict, m, {ops = G.ops, adj = G.adj, rows = {1, 2, 3, 4},
      dev = freeing(m, 1)})
  end)

  it("on_epoch may not free the model or add a device while the C loop runs", function()
    local m = fresh()
    support.raises("cannot free a model while it trains (from on_epoch)", m.train, m,
      {ops = G.ops, adj = G.adj, rows = {1, 2, 3, 4}, dev = {1, 1, 1, 1}, y = y, epochs = 3,
       on_epoch = function() m:free() end})
    support.raises("cannot add a device to a model while it trains (from on_epoch)", m.train, m,
      {ops = G.ops, adj = G.adj, rows = {1, 2, 3, 4}, dev = {1, 1, 1, 1}, y = y, epochs = 3, clip = 1,
       on_epoch = function() m:add_device("b") end})
    -- reading it is fine, and afterwards everything is allowed again
    local seen
    m:train{ops = G.ops, adj = G.adj, rows = {1, 2, 3, 4}, dev = {1, 1, 1, 1}, y = y, epochs = 2,
      on_epoch = function() seen = m:predict{ops = G.ops, adj = G.adj, device = 1}:size() end}
    assert.equal(4, seen)
    assert.equal(2, m:add_device("b"))
    m:free()
    m:free()
  end)
end)
