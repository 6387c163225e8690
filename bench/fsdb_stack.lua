-- fsdb_stack.lua — the benchmark workloads on fsdb (Lua 5.4 or LuaJIT).
--   usage: lua5.4 bench/fsdb_stack.lua WORKLOAD [N]     (bench/run sets the paths)
-- WORKLOAD: w1 w2 w3 w3a w3c w3s w3r w4 w5 w6q_on w6q_off w6q_ping w6c_on w6c_off
-- w6c_ping start; see bench/README.md.
local B = require("benchlib")
local workload = assert(arg and arg[1], "usage: fsdb_stack.lua WORKLOAD [N]")

-- Timed from here for "start": loading fsdb is part of starting up.
local fsdb = require("fsdb")
-- Plain TCP like every other stack (none of them asks for TLS), whatever
-- fsdb's default becomes.
local url = B.env("FSDB_TEST_URL")
url = url .. (url:find("?", 1, true) and "&" or "?") .. "ssl_mode=DISABLED"

-- Outside the timed loops. Those check each result inline, as an application
-- would: forwarding varargs through a Lua function costs Lua 5.4 about 500
-- instructions per call, the benchmark's cost and not fsdb's.
local function must(conn, ...)
  local res, err = conn:execute(...)
  if not res then error(err, 2) end
  return res
end

local W = {}

function W.start()
  local engine = fsdb.engine.new(url)
  local conn = assert(engine:connect())
  local res = must(conn, "SELECT 1")
  assert(res[1]["1"] == 1)
  local t = B.since_launch()
  conn:close()
  B.report(1, t, 1)
end

-- W1: SELECT 1 (no parameters: the text protocol).
function W.w1(conn, n)
  local t, cpu, check = B.measure(n, function(k)
    local check = 0
    for _ = 1, k do
      local res, err = conn:execute("SELECT 1")
      if not res then error(err) end
      check = check + res[1]["1"]
    end
    return check
  end)
  B.report(n, t, check, cpu)
end

-- W2: primary-key lookup with a bound id (prepared, cached).
function W.w2(conn, n)
  local sql = B.SEL_ROW .. " WHERE id = ?"
  local item_check, w2_id = B.item_check, B.w2_id
  local t, cpu, check = B.measure(n, function(k)
    local check = 0
    for i = 0, k - 1 do
      local res, err = conn:execute(sql, w2_id(i))
      if not res then error(err) end
      local r = res[1]
      check = check + item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
    end
    return check
  end)
  B.report(n, t, check, cpu)
end

-- W3: every row of items into a Lua array of rows.
function W.w3(conn)
  local stop = B.timer()
  local rows = must(conn, B.SEL_ROW)
  local t, cpu = stop()
  local check = 0
  for i = 1, #rows do
    local r = rows[i]
    check = check + B.item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
  end
  B.report(#rows, t, check, cpu)
end

-- W3 as arrays: the same rows, each an array in column order
-- (conn:query's array option).
function W.w3a(conn)
  local stop = B.timer()
  local rows, err = conn:query(B.SEL_ROW, nil, { array = true })
  local t, cpu = stop()
  if not rows then error(err) end
  local check = 0
  for i = 1, #rows do
    local r = rows[i]
    check = check + B.item_check(r[1], r[2], r[3], r[4], r[5], r[6])
  end
  B.report(#rows, t, check, cpu)
end

-- W3 columnar: the same rows as one array per column (conn:query's
-- columnar option), the check computed from the column arrays.
function W.w3c(conn)
  local stop = B.timer()
  local res, err = conn:query(B.SEL_ROW, nil, { columnar = true })
  local t, cpu = stop()
  if not res then error(err) end
  local id, name, price, qty, created, note = res[1], res[2], res[3], res[4], res[5], res[6]
  local check, item_check = 0, B.item_check
  for i = 1, #id do
    check = check + item_check(id[i], name[i], price[i], qty[i], created[i], note[i])
  end
  B.report(#id, t, check, cpu)
end

-- W3 streaming: the same rows through conn:rows(), one at a time.
function W.w3s(conn)
  B.stream(function() return conn:rows(B.SEL_ROW) end)
end

-- W3s with one row table refilled for every row (query_rows' opts.reuse:
-- the caller copies what it keeps).
function W.w3r(conn)
  local opts = { reuse = true }
  B.stream(function() return conn:query_rows(B.SEL_ROW, nil, opts) end)
end

-- W4: single-row INSERTs in one transaction.
function W.w4(conn, n)
  local rows = B.gen_rows(n, fsdb.null)
  local affected = 0
  local stop = B.timer()
  must(conn, "START TRANSACTION")
  for i = 1, n do
    local r = rows[i]
    local res, err = conn:execute(B.INS_ONE, r[1], r[2], r[3], r[4], r[5])
    if not res then error(err) end
    affected = affected + res.affected_rows
  end
  must(conn, "COMMIT")
  local t, cpu = stop()
  B.report(n, t, affected, cpu)
end

-- W5: bulk insert with executemany (MariaDB array binding).
function W.w5(conn, n)
  local rows = B.gen_rows(n, fsdb.null)
  local stop = B.timer()
  must(conn, "START TRANSACTION")
  local res = assert(conn:executemany(B.INS_ONE, rows))
  must(conn, "COMMIT")
  local t, cpu = stop()
  B.report(n, t, res.affected_rows, cpu)
end

-- W6: checkout + SELECT 1 + return (q), or checkout + return alone (c),
-- with pool_pre_ping on (the default: a socket check within
-- pool_pre_ping_window of the last use), off, or "ping" (window 0: a
-- COM_PING round trip at every checkout, as SQLAlchemy's pre-ping does).
local function w6(query, ping)
  return function(_, n)
    local opts = { pool_pre_ping = ping ~= "off" }
    if ping == "ping" then opts.pool_pre_ping_window = 0 end
    local engine = fsdb.engine.new(url, opts)
    local t, cpu, check = B.measure(n, function(k)
      local check = 0
      for _ = 1, k do
        local conn = engine:connect()
        if query then
          local res, err = conn:execute("SELECT 1")
          if not res then error(err) end
          check = check + res[1]["1"]
        end
        conn:close()
      end
      return check
    end)
    local st = engine:status()
    assert(st.connects == 1 and st.checked_out == 0, "the pool opened more than one connection")
    B.report(n, t, query and check or n, cpu)
    engine:dispose()
  end
end
W.w6q_on, W.w6q_off, W.w6q_ping = w6(true, "on"), w6(true, "off"), w6(true, "ping")
W.w6c_on, W.w6c_off, W.w6c_ping = w6(false, "on"), w6(false, "off"), w6(false, "ping")

local DEFAULT_N = { w1 = 20000, w2 = 20000, w4 = 10000, w5 = 100000 }
local fn = W[workload] or error("unknown workload " .. workload)
if workload == "start" then
  fn()
elseif workload:match("^w6") then
  fn(nil, B.count(20000))
else
  local engine = fsdb.engine.new(url)
  local conn = assert(engine:connect())
  fn(conn, B.count(DEFAULT_N[workload]))
  conn:close()
end
