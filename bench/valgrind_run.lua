-- A small end-to-end workload for `make valgrind` (memcheck): every userdata type is created, used,
-- freed explicitly and collected; nothing here needs the real data.
local nf = require "nasflat"

local A = nf.Tensor.from{{1, 2}, {3, 4}, {5, 6}}
local B = nf.Tensor.from{{1, 0, 2}, {0, 1, 3}}
local C = nf.matmul(A, B)
assert(C:get(3, 3) == 28)
local r = nf.Rng(5)
local s = r:sample(100, 10)
assert(#s == 10)
A:free()

local ok_space, space = pcall(require, "nasflat.space")
if ok_space then
  local sp = space.get("nb201")
  local archs = {}
  local rng = nf.Rng(1)
  for i, code in ipairs(sp:sample(rng, 16)) do archs[i] = code end
  local g = sp:graphs(archs)
  assert(g.ops:size(1) == 16)
  -- physical features (eager and compiled) and a ridge on them, both links; tensor element-wise ops
  local ms = {}
  for i = 1, 16 do ms[i] = 1 + i / 4 end
  local ridge = require "nasflat.ridge"
  for _, live in ipairs{false, true} do
    local X = sp:phys_features(archs, nil, live)
    for _, link in ipairs{"log", "identity"} do
      local fit = ridge.fit{features = X, targets_ms = ms, link = link}
      assert(fit:predict(X):clamp(1e-3):log():affine(2, 1):exp():size() == 16)
    end
  end
  local fb = space.get("fbnet")
  local fx = fb:phys_features({"7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5"})
  assert(fx:size(2) == 20)
  -- roofline features (eager and compiled), concatenated as the hybrid's roof component uses them
  local R = nf.core.hcat{sp:roof_features(archs), sp:roof_features(archs, nil, true)}
  assert(R:size(2) == 14 and ridge.fit{features = R, targets_ms = ms, link = "identity"}:predict(R):size() == 16)
  assert(fb:roof_features({"7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5"}):size(2) == 7)
  -- the variants: weights in the bytes moved, and per-layer floors
  assert(sp:roof_features(archs, nil, true, "weights"):size(2) == 7)
  assert(fb:roof_features({"7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5"}, nil, false, "floors"):size(2) == 43)
  local ok_pred, predictor = pcall(require, "nasflat.predictor")
  if ok_pred then
    local p = predictor.new{nodes = 8, n_ops = #sp:vocab(), devices = {"a", "b"}, seed = 1}
    local t = nf.Tensor.new(16):fill(0.5)
    for i = 1, 16 do t:set(i, i / 16) end
    p:fit{graphs = g, rows = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, devices = 1, targets = t,
      epochs = 2, batch = 8}
    local scores = p:predict{graphs = g, device = "a"}
    assert(scores:size() == 16)
    assert(p:embed{graphs = g, device = "a", layer = "head"}:size(1) == 16)
    local m = predictor.new{nodes = 8, n_ops = #sp:vocab(), devices = {"a"}, layer = "mlp", seed = 2}
    m:fit{graphs = g, devices = 1, targets = t, epochs = 1, batch = 8}
    m:free()
    local path = os.tmpname()
    assert(p:save(path))
    local q = assert(predictor.load(path))
    os.remove(path)
    q:free()
    p:free()
  end
end
collectgarbage()
collectgarbage()
print("valgrind workload done")
