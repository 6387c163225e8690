-- cgtop.lua — callgrind costs per operation: reads a `callgrind_annotate`
-- summary (self or inclusive) of a run that collected only the timed
-- section of a workload (callgrind --collect-atstart=no and the toggles in
-- bench/benchlib.lua / bench/raw.c) and divides by the operation count.
--   usage: lua5.4 bench/cgtop.lua ANNOTATE.txt OPS [TOP]
-- Prints "instructions_per_op TOTAL", then up to TOP lines
-- "instructions_per_op share function".
local path, ops, top = arg[1], tonumber(arg[2]), tonumber(arg[3]) or 25
assert(path and ops and ops > 0, "usage: cgtop.lua ANNOTATE.txt OPS [TOP]")

-- Only the summary table: PROGRAM TOTALS, then one line per function up to
-- the first blank line after it. callgrind_annotate --inclusive=yes may
-- list a function twice (under two spellings of its file): keep the larger.
local costs, total, state = {}, nil, 0
for line in io.lines(path) do
  if state == 2 and line:match("^%s*$") then break end
  local num, rest = line:match("^%s*([%d,]+)%s+%(%s*[%d.]+%%%)%s+(.+)$")
  if state == 1 and line:match("^%-%-%-") then state = 2 end
  if num and (state == 2 or rest:match("PROGRAM TOTALS")) then
    local n = tonumber((num:gsub(",", "")))
    if rest:match("PROGRAM TOTALS") then
      total, state = n, 1
    else
      local fn = rest:gsub("%s+%[.-%]%s*$", ""):gsub("^%./", "")
      -- "dir/file.c:function" -> "function (file.c)"; "???:f" -> "f"
      local file, name = fn:match("^(.-):([^:]+)$")
      if name then
        file = file:gsub("^.-/([^/]+)$", "%1")
        fn = (file == "???" or file == "") and name or (name .. " (" .. file .. ")")
      end
      if n > (costs[fn] or 0) then costs[fn] = n end
    end
  end
end
assert(total, "no PROGRAM TOTALS line in " .. path)
print(("instructions_per_op %.0f"):format(total / ops))
local rows = {}
for fn, n in pairs(costs) do
  if n / ops >= 0.5 then rows[#rows + 1] = { fn = fn, n = n / ops } end
end
table.sort(rows, function(a, b) return a.n > b.n end)
for i = 1, math.min(top, #rows) do
  print(("%.0f %.1f%% %s"):format(rows[i].n, 100 * rows[i].n * ops / total, rows[i].fn))
end
