-- luasql_stack.lua — the benchmark workloads on LuaSQL (Debian's
-- lua-sql-mysql, LuaSQL 2.6, Lua 5.4 or LuaJIT). LuaSQL has no prepared statements
-- and no pool: every statement is text, values are quoted with
-- conn:escape(), and W6 does not apply.
--   usage: lua5.4 bench/luasql_stack.lua WORKLOAD [N]     (or luajit)
-- WORKLOAD: w1 w2 w3 w4 w5 start; see bench/README.md.
local B = require("benchlib")
local workload = assert(arg and arg[1], "usage: luasql_stack.lua WORKLOAD [N]")

local driver = require("luasql.mysql")

local function connect()
  local env = assert(driver.mysql())
  local conn = assert(env:connect(B.env("FSDB_TEST_DB"), B.env("FSDB_TEST_USER"),
    B.env("FSDB_TEST_PASSWORD"), B.env("FSDB_TEST_HOST"), tonumber(B.env("FSDB_TEST_PORT"))))
  assert(conn:execute("SET NAMES utf8mb4"))
  return env, conn
end

local function must(conn, sql)
  local res, err = conn:execute(sql)
  if not res then error(err, 2) end
  return res
end

local W = {}

function W.start()
  local env, conn = connect()
  local cur = must(conn, "SELECT 1")
  assert(cur:fetch() == "1")
  cur:close()
  local t = B.since_launch()
  conn:close()
  env:close()
  B.report(1, t, 1)
end

function W.w1(conn, n)
  local t, cpu, check = B.measure(n, function(k)
    local check = 0
    for _ = 1, k do
      local cur = must(conn, "SELECT 1")
      check = check + tonumber(cur:fetch())
      cur:close()
    end
    return check
  end)
  B.report(n, t, check, cpu)
end

-- No bound parameters in LuaSQL: the id goes into the SQL text.
function W.w2(conn, n)
  local sql = B.SEL_ROW .. " WHERE id = %d"
  local item_check, w2_id = B.item_check, B.w2_id
  local t, cpu, check = B.measure(n, function(k)
    local check = 0
    for i = 0, k - 1 do
      local cur = must(conn, sql:format(w2_id(i)))
      local r = cur:fetch({}, "a")
      cur:close()
      check = check + item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
    end
    return check
  end)
  B.report(n, t, check, cpu)
end

function W.w3(conn)
  local stop = B.timer()
  local cur = must(conn, B.SEL_ROW)
  local rows, n = {}, 0
  local r = cur:fetch({}, "a")
  while r do
    n = n + 1
    rows[n] = r
    r = cur:fetch({}, "a")
  end
  cur:close()
  local t, cpu = stop()
  local check = 0
  for i = 1, n do
    r = rows[i]
    check = check + B.item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
  end
  B.report(n, t, check, cpu)
end

local function tuple(conn, r)
  local note = r[5] and ("'" .. conn:escape(r[5]) .. "'") or "NULL"
  return ("('%s','%s',%d,'%s',%s)"):format(conn:escape(r[1]), conn:escape(r[2]), r[3],
    conn:escape(r[4]), note)
end

function W.w4(conn, n)
  local rows = B.gen_rows(n, nil)
  local affected = 0
  local stop = B.timer()
  must(conn, "START TRANSACTION")
  for i = 1, n do
    affected = affected + must(conn, B.INS_ROW .. tuple(conn, rows[i]))
  end
  must(conn, "COMMIT")
  local t, cpu = stop()
  B.report(n, t, affected, cpu)
end

-- Multi-row INSERTs of about 1 MiB each (LuaSQL's fastest way).
function W.w5(conn, n)
  local rows = B.gen_rows(n, nil)
  local affected, i = 0, 1
  local stop = B.timer()
  must(conn, "START TRANSACTION")
  while i <= n do
    local parts, bytes = {}, 0
    while i <= n and bytes < 1048576 do
      local t = tuple(conn, rows[i])
      parts[#parts + 1] = t
      bytes = bytes + #t + 1
      i = i + 1
    end
    affected = affected + must(conn, B.INS_ROW .. table.concat(parts, ","))
  end
  must(conn, "COMMIT")
  local t, cpu = stop()
  B.report(n, t, affected, cpu)
end

local DEFAULT_N = { w1 = 20000, w2 = 20000, w4 = 10000, w5 = 100000 }
local fn = W[workload] or error("unknown workload " .. workload)
if workload == "start" then
  fn()
else
  local env, conn = connect()
  fn(conn, B.count(DEFAULT_N[workload]))
  conn:close()
  env:close()
end
