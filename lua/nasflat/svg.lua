--- Plain SVG text, written by our own code: a document of shapes, and a heatmap built on it.
--
--   local svg = require "nasflat.svg"
--   local doc = svg.new{width = 400, height = 300, title = "..."}
--   doc:rect{x =, y =, w =, h =, fill = "#rrggbb", stroke =, stroke_width =, tip = "hover text"}
--   doc:line{x1 =, y1 =, x2 =, y2 =, stroke = "#000", stroke_width = 1, dash = "4 2"}
--   doc:text{x =, y =, text =, size = 11, anchor = "start"|"middle"|"end", rotate = degrees, fill =, bold =}
--   doc:render() -> the SVG text;  doc:write(path) -> true | nil, msg (atomic)
--   svg.diverging(v, lo, hi) -> "#rrggbb"   (blue at lo, white at the middle, red at hi; grey for NaN)
--   svg.heatmap{labels =, values =, ...} -> a document (see below)
-- Numbers are written with at most two decimals; text is XML-escaped. Every call takes one options table;
-- unknown options raise.
local util = require "nasflat.util"

local M = {}

local Doc = {}
Doc.__index = Doc

--- XML-escape a string (text content and attribute values).
function M.escape(s)
  return (tostring(s):gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&apos;"}))
end

local function num(v)
  if math.type(v) == "integer" then return tostring(v) end
  local s = string.format("%.2f", v):gsub("0+$", ""):gsub("%.$", "")
  if s == "-0" then s = "0" end
  return s
end

--- A new document. opts: width, height (required, pixels), title (nil), background ("#ffffff"),
-- font ("Helvetica, Arial, sans-serif").
function M.new(opts)
  opts = util.options("svg.new", opts, {width = util.REQUIRED, height = util.REQUIRED, title = util.NIL,
    background = "#ffffff", font = "Helvetica, Arial, sans-serif"})
  for _, k in ipairs{"width", "height"} do
    if type(opts[k]) ~= "number" or opts[k] <= 0 then
      error(string.format("svg.new: option '%s' must be a positive number (got %s)", k, tostring(opts[k])), 2)
    end
  end
  local self = setmetatable({width = opts.width, height = opts.height, font = opts.font, parts = {}}, Doc)
  if opts.title then self.parts[#self.parts + 1] = "<title>" .. M.escape(opts.title) .. "</title>" end
  self:rect{x = 0, y = 0, w = opts.width, h = opts.height, fill = opts.background}
  return self
end

function Doc:rect(o)
  o = util.options("svg:rect", o, {x = util.REQUIRED, y = util.REQUIRED, w = util.REQUIRED, h = util.REQUIRED,
    fill = "none", stroke = util.NIL, stroke_width = 1, tip = util.NIL})
  local s = string.format('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"', num(o.x), num(o.y), num(o.w),
    num(o.h), M.escape(o.fill))
  if o.stroke then s = s .. string.format(' stroke="%s" stroke-width="%s"', M.escape(o.stroke), num(o.stroke_width)) end
  if o.tip then s = s .. "><title>" .. M.escape(o.tip) .. "</title></rect>" else s = s .. "/>" end
  self.parts[#self.parts + 1] = s
  return self
end

function Doc:line(o)
  o = util.options("svg:line", o, {x1 = util.REQUIRED, y1 = util.REQUIRED, x2 = util.REQUIRED, y2 = util.REQUIRED,
    stroke = "#000000", stroke_width = 1, dash = util.NIL})
  local s = string.format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"', num(o.x1),
    num(o.y1), num(o.x2), num(o.y2), M.escape(o.stroke), num(o.stroke_width))
  if o.dash then s = s .. string.format(' stroke-dasharray="%s"', M.escape(o.dash)) end
  self.parts[#self.parts + 1] = s .. "/>"
  return self
end

function Doc:text(o)
  o = util.options("svg:text", o, {x = util.REQUIRED, y = util.REQUIRED, text = util.REQUIRED, size = 11,
    anchor = "start", rotate = util.NIL, fill = "#000000", bold = false, baseline = util.NIL})
  local s = string.format('<text x="%s" y="%s" font-size="%s" text-anchor="%s" fill="%s"', num(o.x), num(o.y),
    num(o.size), M.escape(o.anchor), M.escape(o.fill))
  if o.bold then s = s .. ' font-weight="bold"' end
  if o.baseline then s = s .. string.format(' dominant-baseline="%s"', M.escape(o.baseline)) end
  if o.rotate then s = s .. string.format(' transform="rotate(%s %s %s)"', num(o.rotate), num(o.x), num(o.y)) end
  self.parts[#self.parts + 1] = s .. ">" .. M.escape(o.text) .. "</text>"
  return self
end

function Doc:circle(o)
  o = util.options("svg:circle", o, {cx = util.REQUIRED, cy = util.REQUIRED, r = 3, fill = "#000000", stroke = util.NIL,
    stroke_width = 1, tip = util.NIL})
  local s = string.format('<circle cx="%s" cy="%s" r="%s" fill="%s"', num(o.cx), num(o.cy), num(o.r), M.escape(o.fill))
  if o.stroke then s = s .. string.format(' stroke="%s" stroke-width="%s"', M.escape(o.stroke), num(o.stroke_width)) end
  if o.tip then s = s .. "><title>" .. M.escape(o.tip) .. "</title></circle>" else s = s .. "/>" end
  self.parts[#self.parts + 1] = s
  return self
end

--- A polyline through points {{x, y}, ...}.
function Doc:polyline(o)
  o = util.options("svg:polyline", o, {points = util.REQUIRED, stroke = "#000000", stroke_width = 1, dash = util.NIL})
  local pts = {}
  for i, p in ipairs(o.points) do pts[i] = num(p[1]) .. "," .. num(p[2]) end
  local s = string.format('<polyline points="%s" fill="none" stroke="%s" stroke-width="%s"', table.concat(pts, " "),
    M.escape(o.stroke), num(o.stroke_width))
  if o.dash then s = s .. string.format(' stroke-dasharray="%s"', M.escape(o.dash)) end
  self.parts[#self.parts + 1] = s .. "/>"
  return self
end

--- The SVG text of the document.
function Doc:render()
  return table.concat({
    string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" ' ..
      'font-family="%s">', num(self.width), num(self.height), num(self.width), num(self.height), M.escape(self.font)),
    table.concat(self.parts, "\n"),
    "</svg>",
  }, "\n") .. "\n"
end

--- Write the document to path atomically.
function Doc:write(path)
  if type(path) ~= "string" then error("svg:write: path must be a string", 2) end
  return util.atomic_write(path, self:render())
end

--- Split text into lines of at most `width` characters at spaces (a longer word gets a line of its own).
function M.wrap(text, width)
  local lines, cur = {}, ""
  for word in tostring(text):gmatch("%S+") do
    if cur == "" then cur = word
    elseif #cur + 1 + #word <= width then cur = cur .. " " .. word
    else lines[#lines + 1] = cur; cur = word end
  end
  if cur ~= "" then lines[#lines + 1] = cur end
  return lines
end

--- A diverging colour for v in [lo, hi]: blue (lo) - white (middle) - red (hi); NaN is grey.
function M.diverging(v, lo, hi)
  if v ~= v then return "#bdbdbd" end
  lo, hi = lo or -1, hi or 1
  local t = (v - lo) / (hi - lo)
  t = math.max(0, math.min(1, t))
  local a, b
  if t < 0.5 then a, b = {33, 102, 172}, {247, 247, 247}; t = t / 0.5
  else a, b = {247, 247, 247}, {178, 24, 43}; t = (t - 0.5) / 0.5 end
  local c = {}
  for i = 1, 3 do c[i] = math.floor(a[i] + (b[i] - a[i]) * t + 0.5) end
  return string.format("#%02x%02x%02x", c[1], c[2], c[3])
end

--- A heatmap of a square matrix. opts:
--   labels     (required) n row/column labels
--   values     (required) n × n numbers (NaN: grey cell)
--   title      a title line above the map
--   note       a second, smaller line
--   groups     list of {label =, from =, to =} (1-based index ranges, in order): separator lines between
--              groups and the group label beside the rows
--   lo, hi     the colour scale (-1, 1); annotate (true when n <= 45): the value in each cell, two decimals
--   cell       cell size in pixels (22)
--   tips       n × n strings for hover text (default "row / column: value")
-- Returns a document (doc:render(), doc:write(path)).
function M.heatmap(opts)
  opts = util.options("svg.heatmap", opts, {labels = util.REQUIRED, values = util.REQUIRED, title = util.NIL,
    note = util.NIL, groups = util.NIL, lo = -1, hi = 1, annotate = util.NIL, cell = 22, tips = util.NIL})
  local labels, V = opts.labels, opts.values
  local n = #labels
  if type(V) ~= "table" or #V ~= n then error("svg.heatmap: 'values' must have one row per label", 2) end
  local cs, fs = opts.cell, 11
  local longest = 0
  for _, l in ipairs(labels) do longest = math.max(longest, #tostring(l)) end
  local label_w = math.floor(longest * fs * 0.6) + 12
  local group_w = opts.groups and 90 or 0
  local left = group_w + label_w
  local width = math.max(left + n * cs + 20, 420)
  local note_lines = opts.note and M.wrap(opts.note, math.floor((width - 16) / (fs * 0.56))) or {}
  local top = (opts.title and 28 or 8) + 15 * #note_lines + label_w
  local legend_h = 50
  local height = top + n * cs + legend_h
  local doc = M.new{width = width, height = height, title = opts.title}
  local y0 = 8
  if opts.title then doc:text{x = 8, y = 22, text = opts.title, size = 15, bold = true}; y0 = 28 end
  for i, l in ipairs(note_lines) do doc:text{x = 8, y = y0 + 15 * i - 4, text = l, size = fs, fill = "#444444"} end
  local annotate = opts.annotate
  if annotate == nil then annotate = n <= 45 end
  for i = 1, n do
    local row = V[i]
    if type(row) ~= "table" or #row ~= n then error(string.format("svg.heatmap: values row %d must have %d numbers", i, n), 2) end
    local y = top + (i - 1) * cs
    doc:text{x = left - 6, y = y + cs / 2 + 4, text = labels[i], size = fs, anchor = "end"}
    for j = 1, n do
      local v = row[j]
      local x = left + (j - 1) * cs
      local tip = opts.tips and opts.tips[i][j] or
        string.format("%s / %s: %s", labels[i], labels[j], v == v and string.format("%.3f", v) or "n/a")
      doc:rect{x = x, y = y, w = cs, h = cs, fill = M.diverging(v, opts.lo, opts.hi), tip = tip}
      if annotate and v == v then
        local t = (v - opts.lo) / (opts.hi - opts.lo)
        doc:text{x = x + cs / 2, y = y + cs / 2 + 3, text = string.format("%.2f", v):gsub("^0%.", "."):gsub("^%-0%.", "-."),
          size = math.floor(cs * 0.36), anchor = "middle", fill = (t < 0.18 or t > 0.82) and "#ffffff" or "#222222"}
      end
    end
  end
  for j = 1, n do
    local x = left + (j - 1) * cs + cs / 2 + 4
    doc:text{x = x, y = top - 6, text = labels[j], size = fs, anchor = "start", rotate = -90}
  end
  doc:rect{x = left, y = top, w = n * cs, h = n * cs, stroke = "#333333"}
  for gi, g in ipairs(opts.groups or {}) do
    if gi > 1 then
      local p = (g.from - 1) * cs
      doc:line{x1 = left + p, y1 = top - 4, x2 = left + p, y2 = top + n * cs, stroke = "#000000", stroke_width = 2}
      doc:line{x1 = left - label_w, y1 = top + p, x2 = left + n * cs, y2 = top + p, stroke = "#000000", stroke_width = 2}
    end
    local mid = top + ((g.from - 1) + (g.to - g.from + 1) / 2) * cs
    doc:text{x = 8, y = mid + 4, text = g.label, size = 12, bold = true}
  end
  -- colour legend
  local ly, lx, lw = top + n * cs + 18, left, math.min(240, n * cs)
  for s = 0, 23 do
    local v = opts.lo + (opts.hi - opts.lo) * (s + 0.5) / 24
    doc:rect{x = lx + s * lw / 24, y = ly, w = lw / 24 + 0.5, h = 12, fill = M.diverging(v, opts.lo, opts.hi)}
  end
  doc:text{x = lx, y = ly + 26, text = num(opts.lo), size = 10, anchor = "middle"}
  doc:text{x = lx + lw / 2, y = ly + 26, text = num((opts.lo + opts.hi) / 2), size = 10, anchor = "middle"}
  doc:text{x = lx + lw, y = ly + 26, text = num(opts.hi), size = 10, anchor = "middle"}
  doc:text{x = lx + lw + 10, y = ly + 10, text = "Spearman rho (grey: too few common architectures)", size = 10}
  return doc
end

--- A scatter plot: series of points on shared axes, with a legend. opts: series (required: list of {name,
-- points = {{x, y, tip}, ...}, color, line = false (join the points, sorted by x, as a step front), size = 3,
-- hollow = false}), xlabel, ylabel, title, width (640), height (420), vlines ({{x =, label =, color =}}: dashed
-- vertical markers, e.g. a budget). Returns a document.
function M.scatter(opts)
  opts = util.options("svg.scatter", opts, {series = util.REQUIRED, xlabel = "", ylabel = "", title = util.NIL,
    width = 640, height = 420, vlines = {}})
  local W, H = opts.width, opts.height
  local L, R, T, B = 64, 170, opts.title and 30 or 12, 44
  local x0, x1, y0, y1 = math.huge, -math.huge, math.huge, -math.huge
  for _, se in ipairs(opts.series) do
    for _, p in ipairs(se.points) do
      if p[1] == p[1] and p[2] == p[2] then
        x0, x1, y0, y1 = math.min(x0, p[1]), math.max(x1, p[1]), math.min(y0, p[2]), math.max(y1, p[2])
      end
    end
  end
  if x0 > x1 then x0, x1, y0, y1 = 0, 1, 0, 1 end
  if x1 == x0 then x1 = x0 + 1 end
  if y1 == y0 then y1 = y0 + 1 end
  local px, py = (x1 - x0) * 0.03, (y1 - y0) * 0.05
  x0, x1, y0, y1 = x0 - px, x1 + px, y0 - py, y1 + py
  local function X(v) return L + (v - x0) / (x1 - x0) * (W - L - R) end
  local function Y(v) return H - B - (v - y0) / (y1 - y0) * (H - T - B) end
  local doc = M.new{width = W, height = H, title = opts.title}
  if opts.title then doc:text{x = W / 2, y = 18, text = opts.title, size = 13, anchor = "middle", bold = true} end
  doc:rect{x = L, y = T, w = W - L - R, h = H - T - B, stroke = "#999999"}
  for k = 0, 4 do
    local xv, yv = x0 + (x1 - x0) * k / 4, y0 + (y1 - y0) * k / 4
    doc:text{x = X(xv), y = H - B + 14, text = string.format("%.3g", xv), size = 10, anchor = "middle"}
    doc:text{x = L - 4, y = Y(yv) + 3, text = string.format("%.4g", yv), size = 10, anchor = "end"}
  end
  doc:text{x = (L + W - R) / 2, y = H - 8, text = opts.xlabel, anchor = "middle"}
  doc:text{x = 14, y = (T + H - B) / 2, text = opts.ylabel, anchor = "middle", rotate = -90}
  for _, v in ipairs(opts.vlines) do
    if v.x >= x0 and v.x <= x1 then
      doc:line{x1 = X(v.x), y1 = T, x2 = X(v.x), y2 = H - B, stroke = v.color or "#e53e3e", dash = "3 3"}
      if v.label then doc:text{x = X(v.x) + 3, y = T + 12, text = v.label, size = 10, fill = v.color or "#e53e3e"} end
    end
  end
  for si, se in ipairs(opts.series) do
    local color = se.color or "#333333"
    if se.line then
      local pts = {}
      for _, p in ipairs(se.points) do pts[#pts + 1] = {p[1], p[2]} end
      table.sort(pts, function(a, b) return a[1] < b[1] end)
      local path = {}
      for i, p in ipairs(pts) do
        if i > 1 then path[#path + 1] = {X(p[1]), Y(pts[i - 1][2])} end
        path[#path + 1] = {X(p[1]), Y(p[2])}
      end
      if #path > 1 then doc:polyline{points = path, stroke = color, stroke_width = 1.5, dash = se.dash} end
    end
    if not se.line or se.markers then
      for _, p in ipairs(se.points) do
        doc:circle{cx = X(p[1]), cy = Y(p[2]), r = se.size or 3, fill = se.hollow and "none" or color,
          stroke = se.hollow and color or nil, tip = p[3]}
      end
    end
    local ly = T + 14 + (si - 1) * 18
    if se.line and not se.markers then
      doc:line{x1 = W - R + 12, y1 = ly - 4, x2 = W - R + 30, y2 = ly - 4, stroke = color, stroke_width = 1.5, dash = se.dash}
    else
      doc:circle{cx = W - R + 21, cy = ly - 4, r = se.size or 3, fill = se.hollow and "none" or color,
        stroke = se.hollow and color or nil}
    end
    doc:text{x = W - R + 36, y = ly, text = se.name or ("series " .. si), size = 11}
  end
  return doc
end

return M
