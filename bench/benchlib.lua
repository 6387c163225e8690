-- benchlib.lua — what the Lua stacks of the benchmark share (fsdb, LuaSQL,
-- luadbi): the clock, the connection settings, the rows written by W4/W5,
-- the ids looked up by W2, the check sums and the report format. The same
-- rules are written in bench/raw.c and bench/sqla.py.
local M = {}

M.now = require("fsdb_testhelper").now

-- Under bench/profile_lua (callgrind) the timed sections are the only
-- part collected; elsewhere this is a no-op (and no module search).
local toggle = function() end
if package.preload.bench_callgrind then toggle = require("bench_callgrind").toggle end

-- Starts timing; the returned function stops it and gives the wall-clock
-- and the process CPU (user + system) seconds in between.
function M.timer()
  toggle()
  local c0, t0 = os.clock(), M.now()
  return function()
    local t, c = M.now() - t0, os.clock() - c0
    toggle()
    return t, c
  end
end

M.SEL_ROW = "SELECT id, name, price, qty, created, note FROM items"
M.INS_ROW = "INSERT INTO items_w (name, price, qty, created, note) VALUES "
M.INS_ONE = M.INS_ROW .. "(?, ?, ?, ?, ?)"
M.WARMUP = 200 -- untimed round trips before W1, W2 and W6

function M.env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then error(name .. " is not set (run through bench/run)", 2) end
  return v
end

function M.count(default)
  return tonumber(arg and arg[2]) or default
end

-- Peak resident set size of this process so far (VmHWM), in KiB.
function M.rss_kib()
  local f = io.open("/proc/self/status")
  if not f then return -1 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or -1
end

--- The timed loop of W1, W2 and W6: run(k) does k operations and returns
--- their check sum; B.WARMUP untimed ones first, then n timed.
-- syntax: seconds, cpu_seconds, check = B.measure(n, run)
function M.measure(n, run)
  run(M.WARMUP)
  local stop = M.timer()
  local check = run(n)
  local t, cpu = stop()
  return t, cpu, check
end

--- W3s and its variants: times open() — which sends the query and returns
--- an iterator over keyed rows — and the loop over the rows, then reports.
function M.stream(open)
  local check, n, item_check = 0, 0, M.item_check
  local stop = M.timer()
  for r in open() do
    check = check + item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
    n = n + 1
  end
  local t, cpu = stop()
  M.report(n, t, check, cpu)
end

function M.report(ops, seconds, check, cpu_seconds)
  io.write(("ops %d\nseconds %.6f\ncpu_seconds %.6f\ncheck %.0f\nrss_kib %d\n"):format(
    ops, seconds, cpu_seconds or -1, check, M.rss_kib()))
end

-- Process start (BENCH_T0, set by bench/launch) until now.
function M.since_launch()
  return M.now() - tonumber(M.env("BENCH_T0"))
end

-- Row i of a write workload: name, price (exact, as a string), qty,
-- created, note (nil every fifth row).
function M.gen_row(i)
  local note
  if i % 5 ~= 0 then note = "note " .. i end
  return "item " .. i, ("%d.%02d"):format(i % 1000, i % 100), i % 50,
    ("2026-%02d-%02d %02d:%02d:%02d"):format(1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60),
    note
end

-- Rows 1..n as arrays {name, price, qty, created, note}; null stands for
-- SQL NULL (nil leaves a hole, which some drivers want).
function M.gen_rows(n, null)
  local rows = {}
  for i = 1, n do
    local name, price, qty, created, note = M.gen_row(i)
    if note == nil then note = null end
    rows[i] = { name, price, qty, created, note }
  end
  return rows
end

-- The ids W2 looks up, the same in every stack.
function M.w2_id(i)
  return (i * 7919) % 100000 + 1
end

-- What every stack adds up for a fetched item row: id + qty + the length
-- of each text value as the server prints it; a NULL note counts 0.
function M.item_check(id, name, price, qty, created, note)
  local n = 0
  if type(note) == "string" then n = #note end
  return tonumber(id) + tonumber(qty) + #name + #price + #created + n
end

return M
