-- Echo and engine events on the codec transports: the cqueues transport
-- (plain Lua 5.4 / LuaJIT with lua-cqueues) must fire the same events, with
-- the same arguments, and write the same echo lines as the default
-- (libmariadb) engine. The same scenario runs on both and the two traces are
-- compared; the cosocket transport shares this code (transport/conn.lua,
-- transport/pool.lua) and needs nginx.

local fsdb = require("fsdb")
local cqueues = require("cqueues")
local db = require("helpers.db")

local TRANSPORTS = { "libmariadb", "cqueues" }

local function engine(transport, opts)
  opts = opts or {}
  opts.transport = transport
  return db.engine(opts)
end

-- A value as a trace entry: what matters, not what cannot be equal (a
-- connection object, a time, a result table's identity).
local function shape(v)
  local t = type(v)
  if t == "table" then
    local mt = getmetatable(v)
    if mt and mt.__call then return "object" end -- a cursor
    if v.affected_rows ~= nil then
      return ("result(%s affected, %d rows)"):format(tostring(v.affected_rows), #v)
    end
    local keys = {}
    for k in pairs(v) do
      if k ~= "columns" then keys[#keys + 1] = k end -- made on first use: compared below
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. "=" .. shape(v[k]) end
    if type(v.columns) == "table" then out[#out + 1] = "columns=" .. shape(v.columns) end
    return "{" .. table.concat(out, ",") .. "}"
  elseif t == "userdata" then
    return v == fsdb.null and "null" or "object"
  elseif t == "number" then
    return math.type and math.type(v) == "float" and "float" or tostring(v)
  elseif t == "string" then
    return ("%q"):format((v:gsub("^fsdb: ", "")))
  end
  return tostring(v)
end

-- Records every event as one line: name, then each argument's shape.
local function record(e)
  local trace, conns = {}, {}
  for _, name in ipairs(fsdb.events.names) do
    e:on(name, function(conn, ...)
      local line = { name }
      -- the connection: which one of this engine's checkouts (by first sight)
      if not conns[conn] then conns[#conns + 1] = conn; conns[conn] = #conns end
      line[#line + 1] = "conn" .. conns[conn]
      local n = select("#", ...)
      for i = 1, n do
        local v = select(i, ...)
        if name == "after_execute" and i == 4 then
          assert.is_true(type(v) == "number" and v >= 0, "elapsed is seconds")
          v = "elapsed"
        end
        line[#line + 1] = shape(v)
      end
      trace[#trace + 1] = table.concat(line, " ")
    end)
  end
  return trace
end

-- One scenario for a transport: a checkout with every statement method, a
-- failure, engine:execute, a session with a transaction, a KILL.
local function scenario(transport, root)
  local e = engine(transport, { pool_size = 2 })
  local trace = record(e)
  local conn = assert(e:connect())
  assert(conn:execute("CREATE TEMPORARY TABLE ev_t (id INT PRIMARY KEY, v VARCHAR(10))"))
  assert(conn:execute("INSERT INTO ev_t VALUES (?, ?)", 1, "one"))
  assert.is_nil(conn:execute("SELEC ?", 1))
  assert(conn:query("SELECT v FROM ev_t WHERE id = :id", { id = 1 }))
  assert.are.equal(2, conn:executemany("INSERT INTO ev_t VALUES (?, ?)", { { 2, "two" }, { 3, fsdb.null } })
    .affected_rows)
  local seen = 0
  for _ in conn:rows("SELECT id FROM ev_t ORDER BY id") do seen = seen + 1 end
  assert.are.equal(3, seen)
  for _ in conn:query_rows("SELECT id FROM ev_t WHERE id > ?", { 1 }) do seen = seen + 1 end
  assert.are.equal(5, seen)
  conn:close()
  assert.are.equal(7, e:execute("SELECT 7 AS n")[1].n)
  local s = fsdb.session.new(e)
  assert(s:transaction(function() return s:execute("SELECT 1") end))
  s:close()
  conn = assert(e:connect())
  db.must(root, "KILL " .. conn:thread_id())
  assert.is_nil(conn:execute("SELECT 1"))
  conn:close()
  assert(e:execute("SELECT 2")) -- a new connection
  assert.are.equal(0, e:status().checked_out)
  e:dispose()
  return trace
end

describe("echo and events on the codec transports #mariadb", function()
  local root
  setup(function() root = db.root() end)
  teardown(function() root:dispose() end)

  it("fire the same events with the same arguments as the default engine", function()
    local traces = {}
    for _, t in ipairs(TRANSPORTS) do traces[t] = scenario(t, root) end
    local c, q = traces.libmariadb, traces.cqueues
    -- the killed connection's error text is the client library's own; its
    -- errno and the events around it must agree
    local function texts_of_kill(trace)
      for i, line in ipairs(trace) do
        if line:match("^invalidate ") then trace[i] = line:match("^(invalidate conn%d+) ") .. " <lost>" end
        if line:match('^error conn%d+ "SELECT 1"') then
          trace[i] = line:gsub('^(error conn%d+ "SELECT 1" nil) ".-" ', "%1 <lost> ")
        end
      end
      return trace
    end
    c, q = texts_of_kill(c), texts_of_kill(q)
    assert.is_true(#c > 30, "the scenario records every event")
    assert.are.same(c, q)
    -- and the trace is what the README says
    local names = {}
    for _, line in ipairs(q) do
      local n = line:match("^(%S+)")
      names[n] = (names[n] or 0) + 1
    end
    assert.are.same({ connect = 2, checkout = 5, checkin = 5, before_execute = 13, after_execute = 11,
                      error = 2, invalidate = 1 }, names)
  end)

  it("echo writes the same lines, parameters hidden unless echo_parameters", function()
    local out = {}
    for _, t in ipairs(TRANSPORTS) do
      for _, show in ipairs({ false, true }) do
        local lines = {}
        local e = engine(t, { echo = true, echo_parameters = show,
          logger = function(level, msg) lines[#lines + 1] = level .. " " .. (msg:gsub("%d+%.%d+ ms", "N ms")) end })
        assert(e:execute("SELECT ? AS a, ? AS b", 7, "hunter2-param"))
        assert(e:query("SELECT :x AS x", { x = "named-param" }))
        assert.is_nil(e:execute("SELEC ?", "hunter2-param"))
        local conn = assert(e:connect())
        for _ in conn:rows("SELECT 1 UNION SELECT 2") do end
        conn:close()
        e:dispose()
        out[t .. tostring(show)] = lines
        local text = table.concat(lines, "\n")
        assert.is_nil(text:find(db.password, 1, true))
        if show then
          assert.matches('info fsdb: SELECT ? AS a, ? AS b [7, "hunter2-param"] -- N ms, 1 row', text, 1, true)
          assert.matches('info fsdb: SELECT :x AS x [x = "named-param"] -- N ms, 1 row', text, 1, true)
        else
          assert.is_nil(text:find("hunter2-param", 1, true))
          assert.is_nil(text:find("named-param", 1, true))
        end
        assert.matches('error fsdb: SELEC %?.- %-%- failed after N ms: You have an error', text)
        assert.matches("info fsdb: SELECT 1 UNION SELECT 2 -- N ms, streaming", text, 1, true)
      end
    end
    assert.are.same(out.libmariadbfalse, out.cqueuesfalse)
    assert.are.same(out.libmariadbtrue, out.cqueuestrue)
  end)

  it("cqueues: a raising handler is logged, the result stands, the pool stays whole", function()
    local lines = {}
    local e = engine("cqueues", { logger = function(level, msg) lines[#lines + 1] = level .. " " .. msg end })
    for _, name in ipairs(fsdb.events.names) do
      e:on(name, function() error("handler broke on " .. name) end)
    end
    for _ = 1, 3 do
      assert.are.equal(5, e:execute("SELECT 5 AS five")[1].five)
      local conn = assert(e:connect())
      assert.is_nil(conn:execute("SELEC 1"))
      local ok, err = pcall(conn.execute, conn, "SELECT ?") -- misuse raises, through the observer
      assert.is_false(ok)
      assert.matches("placeholder", err)
      conn:close()
    end
    local st = e:status()
    assert.are.same({ 0, 1 }, { st.checked_out, st.idle })
    local text = table.concat(lines, "\n")
    for _, name in ipairs({ "connect", "checkout", "before_execute", "after_execute", "error", "checkin" }) do
      assert.matches("error fsdb: handler of engine event '" .. name .. "' raised: .-handler broke on " .. name, text)
    end
    e:dispose()
  end)

  it("cqueues: handlers may use the connection and run in each coroutine; off() removes the observer",
    function()
      local logged = {}
      local e = engine("cqueues", { pool_size = 3, logger = function(_, msg) logged[#logged + 1] = msg end })
      local ids, after = {}, 0
      local fn = e:on("checkout", function(conn)
        local id = db.must(conn, "SELECT CONNECTION_ID() AS id")[1].id -- yields: the slot after
        ids[#ids + 1] = id
      end)
      local fa = e:on("after_execute", function(conn, sql)
        if sql:find("SLEEP", 1, true) then after = after + 1 end
        assert(conn:thread_id())
      end)
      local checkins = 0
      local fc = e:on("checkin", function(conn)
        checkins = checkins + 1
        conn:close() -- closing from the handler ends the close there, once
      end)
      local loop = cqueues.new()
      local mine = {}
      for i = 1, 3 do
        loop:wrap(function()
          local conn = assert(e:connect())
          mine[i] = conn:thread_id()
          assert(conn:execute("SELECT SLEEP(0.2)"))
          conn:close()
        end)
      end
      local t0 = cqueues.monotime()
      assert(loop:loop())
      assert.are.same({}, logged)
      assert.is_true(cqueues.monotime() - t0 < 0.5, "the three sleeps overlapped")
      table.sort(ids)
      table.sort(mine)
      assert.are.same(mine, ids)
      assert.are.same({ 3, 3 }, { after, checkins })
      assert.are.equal(0, e:status().checked_out)
      assert.is_true(e:off("checkout", fn))
      assert.is_true(e:off("after_execute", fa))
      assert.is_true(e:off("checkin", fc))
      assert.is_nil(e._events)
      assert.is_nil(e._core.observer)
      assert(e:execute("SELECT 1"))
      assert.are.equal(3, #ids)
      e:dispose()
    end)
end)
