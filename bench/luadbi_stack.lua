-- luadbi_stack.lua — the benchmark workloads on luadbi (Debian's
-- lua-dbi-mysql 0.7, Lua 5.4 or LuaJIT). luadbi prepares every statement on the
-- server (binary protocol); statements are prepared once and executed
-- many times, as its documentation shows. It has no pool: W6 does not apply.
--   usage: lua5.4 bench/luadbi_stack.lua WORKLOAD [N]     (or luajit)
-- WORKLOAD: w1 w2 w3 w4 w5 start; see bench/README.md.
local B = require("benchlib")
local workload = assert(arg and arg[1], "usage: luadbi_stack.lua WORKLOAD [N]")

local DBI = require("DBI")
local unpack = table.unpack or unpack -- LuaJIT: unpack

local function connect()
  local conn = assert(DBI.Connect("MySQL", B.env("FSDB_TEST_DB"), B.env("FSDB_TEST_USER"),
    B.env("FSDB_TEST_PASSWORD"), B.env("FSDB_TEST_HOST"), tonumber(B.env("FSDB_TEST_PORT"))))
  assert(DBI.Do(conn, "SET NAMES utf8mb4"))
  return conn
end

local function prepare(conn, sql)
  local st, err = conn:prepare(sql)
  if not st then error(err, 2) end
  return st
end

local function run(st, ...)
  local ok, err = st:execute(...)
  if not ok then error(err, 2) end
end

local W = {}

function W.start()
  local conn = connect()
  local st = prepare(conn, "SELECT 1")
  run(st)
  assert(st:fetch(false)[1] == 1)
  local t = B.since_launch()
  st:close()
  conn:close()
  B.report(1, t, 1)
end

function W.w1(conn, n)
  local st = prepare(conn, "SELECT 1")
  local t, cpu, check = B.measure(n, function(k)
    local check = 0
    for _ = 1, k do
      run(st)
      check = check + st:fetch(false)[1]
    end
    return check
  end)
  B.report(n, t, check, cpu)
end

function W.w2(conn, n)
  local st = prepare(conn, B.SEL_ROW .. " WHERE id = ?")
  local item_check, w2_id = B.item_check, B.w2_id
  local t, cpu, check = B.measure(n, function(k)
    local check = 0
    for i = 0, k - 1 do
      run(st, w2_id(i))
      local r = st:fetch(true)
      check = check + item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
    end
    return check
  end)
  B.report(n, t, check, cpu)
end

function W.w3(conn)
  local stop = B.timer()
  local st = prepare(conn, B.SEL_ROW)
  run(st)
  local rows, n = {}, 0
  for r in st:rows(true) do
    n = n + 1
    rows[n] = r
  end
  local t, cpu = stop()
  local check = 0
  for i = 1, n do
    local r = rows[i]
    check = check + B.item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
  end
  B.report(n, t, check, cpu)
end

function W.w4(conn, n)
  local rows = B.gen_rows(n, nil)
  local st = prepare(conn, B.INS_ONE)
  local affected = 0
  local stop = B.timer()
  assert(conn:autocommit(false))
  for i = 1, n do
    local r = rows[i]
    run(st, r[1], r[2], r[3], r[4], r[5])
    affected = affected + st:affected()
  end
  assert(conn:commit())
  local t, cpu = stop()
  B.report(n, t, affected, cpu)
end

-- Multi-row INSERTs of 1,000 rows (5,000 parameters) on one prepared
-- statement: luadbi's fastest way (it has no batch API).
local BATCH = 1000
function W.w5(conn, n)
  local rows = B.gen_rows(n, nil)
  local function statement(k)
    local tuples = {}
    for j = 1, k do tuples[j] = "(?, ?, ?, ?, ?)" end
    return prepare(conn, B.INS_ROW .. table.concat(tuples, ","))
  end
  local full = statement(math.min(BATCH, n))
  local affected, i = 0, 1
  local stop = B.timer()
  assert(conn:autocommit(false))
  local args = {}
  while i <= n do
    local k = math.min(BATCH, n - i + 1)
    local st = k == BATCH and full or statement(k)
    for j = 0, k - 1 do
      local r = rows[i + j]
      local base = j * 5
      args[base + 1], args[base + 2], args[base + 3], args[base + 4], args[base + 5] =
        r[1], r[2], r[3], r[4], r[5]
    end
    run(st, unpack(args, 1, k * 5))
    affected = affected + st:affected()
    i = i + k
  end
  assert(conn:commit())
  local t, cpu = stop()
  B.report(n, t, affected, cpu)
end

local DEFAULT_N = { w1 = 20000, w2 = 20000, w4 = 10000, w5 = 100000 }
local fn = W[workload] or error("unknown workload " .. workload)
if workload == "start" then
  fn()
else
  local conn = connect()
  fn(conn, B.count(DEFAULT_N[workload]))
  conn:close()
end
