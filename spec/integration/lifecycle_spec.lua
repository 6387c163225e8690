-- The connection lifecycle under Lua code that runs in the middle of an
-- fsdb call: parameter metamethods returning fresh strings, metamethods
-- and finalizers that close the connection or run another statement,
-- finalizers while the server is stopped, debug hooks interrupting at every
-- instruction, and an on_connect that raises. Run under ASan too.
local db = require("helpers.db")
local th = require("fsdb_testhelper")

local unpack = table.unpack or unpack

-- A string made at call time, never stored anywhere else: if fsdb kept
-- only its pointer, the collection right after would free it.
local function fresh(tag, i)
  return ("%s-%d-%s"):format(tag, i, ("x"):rep(40 + i % 7))
end

-- A parameter table whose every value comes from __index, fresh, with a
-- full collection after each lookup.
local function lazy_named(tag, names)
  return setmetatable({}, { __index = function(_, k)
    local v = nil
    for i, name in ipairs(names) do
      if name == k then v = fresh(tag, i) end
    end
    collectgarbage()
    return v
  end })
end

-- An object whose finalizer is fn, dropped at once (LuaJIT runs __gc for
-- userdata only).
local function on_collect(fn)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = fn
    return p
  end
  return setmetatable({}, { __gc = fn })
end

local function values_of(conn, tbl)
  local res = db.must(conn, "SELECT v FROM " .. tbl .. " ORDER BY id")
  local out = {}
  for i, row in ipairs(res) do out[i] = row.v end
  return out
end

describe("lifecycle: parameters stay alive until the statement ran #mariadb", function()
  local e, c, tbl

  before_each(function()
    e = db.engine()
    c = assert(e:connect())
    tbl = db.unique("life")
    db.must(c, "CREATE TABLE " .. tbl .. " (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200))")
  end)

  after_each(function()
    if c then
      pcall(db.must, c, "DROP TABLE IF EXISTS " .. tbl)
      c:close()
    end
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)

  it("execute with :name values from __index stores them exactly", function()
    for i = 1, 3 do
      db.must(c, "INSERT INTO " .. tbl .. " (v) VALUES (:a)", lazy_named("n" .. i, { "a" }))
    end
    assert.are.same({ fresh("n1", 1), fresh("n2", 1), fresh("n3", 1) }, values_of(c, tbl))
  end)

  it("a query's and a cursor's :name values from __index are compared exactly", function()
    db.must(c, "INSERT INTO " .. tbl .. " (v) VALUES (?)", fresh("q", 1))
    local res = assert(c:query("SELECT COUNT(*) AS n FROM " .. tbl .. " WHERE v = :a",
      lazy_named("q", { "a" })))
    assert.are.equal(1, res[1].n)
    local got = 0
    for row in c:query_rows("SELECT v FROM " .. tbl .. " WHERE v = :a", lazy_named("q", { "a" })) do
      assert.are.equal(fresh("q", 1), row.v)
      got = got + 1
    end
    assert.are.equal(1, got)
    got = 0
    for row in c:rows("SELECT v FROM " .. tbl .. " WHERE v = :a", lazy_named("q", { "a" })) do
      assert.are.equal(fresh("q", 1), row.v)
      got = got + 1
    end
    assert.are.equal(1, got)
  end)

  it("positional values survive an 'n' lookup that drops them from their table", function()
    local t = { fresh("p", 1), fresh("p", 2) }
    setmetatable(t, { __index = function(_, k)
      if k == "n" then
        -- The values are read after n: they must come from the table, and
        -- nothing may point at strings that are gone.
        collectgarbage()
        return 2
      end
    end })
    db.must(c, "INSERT INTO " .. tbl .. " (v) VALUES (?), (?)", t)
    assert.are.same({ fresh("p", 1), fresh("p", 2) }, values_of(c, tbl))
  end)

  for _, mode in ipairs({ "auto", "values", "each" }) do
    it("executemany (" .. mode .. ") keeps named and positional strings of every set", function()
      c:close()
      e:dispose()
      e = db.engine({ executemany_mode = mode })
      c = assert(e:connect())
      -- Named sets whose values come from __index.
      local sets = {}
      for i = 1, 50 do sets[i] = lazy_named("m" .. i, { "a" }) end
      local res = assert(c:executemany("INSERT INTO " .. tbl .. " (v) VALUES (:a)", sets))
      assert.are.equal(50, res.affected_rows)
      -- Positional sets: a later set's 'n' lookup drops the earlier sets
      -- from the list (already read) and collects them.
      local arr = {}
      for i = 1, 20 do
        local set = { fresh("s" .. i, i) }
        if i > 1 then
          setmetatable(set, { __index = function(_, k)
            if k == "n" then
              for j = 1, i - 1 do arr[j] = false end
              collectgarbage()
            end
          end })
        end
        arr[i] = set
      end
      local ok, err = pcall(c.executemany, c, "INSERT INTO " .. tbl .. " (v) VALUES (?)", arr)
      assert.is_true(ok, err)
      local want = {}
      for i = 1, 50 do want[i] = fresh("m" .. i, 1) end
      for i = 1, 20 do want[50 + i] = fresh("s" .. i, i) end
      assert.are.same(want, values_of(c, tbl))
    end)

    it("executemany (" .. mode .. ") sends what a set held when it was read, with the collector running", function()
      c:close()
      e:dispose()
      e = db.engine({ executemany_mode = mode })
      c = assert(e:connect())
      -- 30 plain sets, then one whose 'n' lookup rewrites every earlier
      -- set in place (their old strings unreachable) and collects.
      local arr, running = {}, nil
      for i = 1, 30 do arr[i] = { fresh("a" .. i, i) } end
      arr[31] = setmetatable({ fresh("a31", 31) }, { __index = function(_, k)
        if k == "n" then
          running = collectgarbage("isrunning")
          for j = 1, 30 do arr[j][1] = fresh("b" .. j, j) end
          collectgarbage()
          collectgarbage()
        end
      end })
      local res = assert(c:executemany("INSERT INTO " .. tbl .. " (v) VALUES (?)", arr))
      assert.are.equal(31, res.affected_rows)
      local want = {}
      for i = 1, 31 do want[i] = fresh("a" .. i, i) end
      assert.are.same(want, values_of(c, tbl))
      -- executemany never stops the application's collector.
      assert.is_true(running)
    end)
  end
end)

describe("lifecycle: Lua code inside a call #mariadb", function()
  local e, c

  before_each(function()
    e = db.engine()
    c = assert(e:connect())
  end)

  after_each(function()
    if c then c:close() end
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)

  local function hook_param(fn)
    return setmetatable({}, { __index = function(_, k)
      if k == "a" then
        fn()
        return 1
      end
    end })
  end

  it("running another statement from a parameter's __index raises a clean error", function()
    local ok, err = pcall(c.execute, c, "SELECT :a AS a", hook_param(function()
      c:execute("SELECT 2")
    end))
    assert.is_false(ok)
    assert.matches("connection is in use by another fsdb call", err, 1, true)
    assert.are.equal(3, db.must(c, "SELECT 3 AS n")[1].n) -- still usable
    for _, method in ipairs({ "query", "rows", "executemany", "ping", "info", "in_transaction" }) do
      ok, err = pcall(c.query, c, "SELECT :a AS a", hook_param(function()
        c[method](c, "SELECT 1", {})
      end))
      assert.is_false(ok)
      assert.matches("in use by another fsdb call", err, 1, true)
    end
  end)

  it("closing the connection from __index is deferred until the call returns", function()
    local res = assert(c:query("SELECT :a AS a", hook_param(function() c:close() end)))
    assert.are.equal(1, res[1].a)
    assert.are.equal(0, e:status().checked_out) -- closed when the call returned
    local ok, err = pcall(c.execute, c, "SELECT 1")
    assert.is_false(ok)
    assert.matches("connection is closed", err, 1, true)
    c = nil
  end)

  it("a finalizer that closes the connection mid-call defers the close", function()
    local ok = pcall(c.query, c, "SELECT :a AS a", hook_param(function()
      on_collect(function() c:close() end)
      collectgarbage()
      collectgarbage()
    end))
    assert.is_true(ok)
    assert.are.equal(0, e:status().checked_out)
    c = nil
  end)

  it("a finalizer that runs another statement mid-call gets a clean error", function()
    local seen
    local ok = pcall(c.query, c, "SELECT :a AS a", hook_param(function()
      on_collect(function()
        local ok2, err2 = pcall(c.execute, c, "SELECT 1")
        seen = seen or (not ok2 and err2)
      end)
      collectgarbage()
      collectgarbage()
    end))
    assert.is_true(ok)
    assert.matches("in use by another fsdb call", seen, 1, true)
    assert.are.equal(1, db.must(c, "SELECT 1 AS n")[1].n)
  end)

  it("finalizers closing and using the connection during row conversion", function()
    -- Many guard objects, collected while thousands of rows are built.
    local function guards()
      for i = 1, 200 do
        on_collect(function()
          if i % 2 == 0 then pcall(c.execute, c, "SELECT 1") else c:close() end
        end)
      end
    end
    for _, rows in ipairs({ "text", "binary", "stream" }) do
      if c == nil then c = assert(e:connect()) end
      guards()
      local ok, err = pcall(function()
        if rows == "text" then
          return c:query("SELECT seq, REPEAT('x', 100) AS pad FROM seq_1_to_20000")
        elseif rows == "binary" then
          return c:query("SELECT seq, REPEAT('x', 100) AS pad FROM seq_1_to_20000 WHERE seq > ?", { 0 })
        end
        for _ in c:rows("SELECT seq, REPEAT('x', 100) AS pad FROM seq_1_to_20000") do end
      end)
      -- Either the call finished (then closed: a guard asked for it) or a
      -- finalizer's error surfaced through it (LuaJIT propagates them).
      assert.is_true(ok or type(err) == "string", tostring(err))
      collectgarbage()
      c:close()
      assert.are.equal(0, e:status().checked_out)
      c = nil
    end
  end)

  it("closing the connection while a cursor streams discards it; the cursor is dead", function()
    local cur = c:rows("SELECT seq FROM seq_1_to_1000")
    assert.are.equal(1, cur().seq)
    c:close()
    assert.are.equal(0, e:status().checked_out)
    assert.are.equal(0, e:status().idle) -- an unread result is never reused
    local ok, err = pcall(cur)
    assert.is_false(ok)
    assert.matches("connection was closed", err, 1, true)
    assert.is_true(cur:close())
    c = nil
  end)
end)

describe("lifecycle: finalizers do no I/O #mariadb", function()
  local pid_file = os.getenv("FSDB_TEST_PID_FILE")

  local function server_pid()
    local f = assert(io.open(pid_file))
    local pid = assert(tonumber(f:read("*l")))
    f:close()
    return pid
  end

  -- Runs fn with the server stopped (SIGSTOP); a watchdog process resumes
  -- it after 3 s whatever fn does. Returns pcall's results and the time.
  local function while_stopped(fn)
    local pid = server_pid()
    local watchdog = assert(th.fork())
    if watchdog == 0 then
      th.sleep(3)
      os.execute("kill -CONT " .. pid)
      th.exit(0)
    end
    assert(os.execute("kill -STOP " .. pid))
    local t0 = th.now()
    local ok, err = pcall(fn)
    local took = th.now() - t0
    os.execute("kill -CONT " .. pid)
    os.execute("kill " .. watchdog)
    th.waitpid(watchdog)
    return ok, err, took
  end

  it("collects a dirty abandoned connection at once with the server stopped; never hands it out dirty", function()
    local e = db.engine({ pool_size = 1, pool_pre_ping = false })
    local root = db.root()
    local tbl = db.unique("gc")
    db.must(e, "CREATE TABLE " .. tbl .. " (id INT PRIMARY KEY)")
    local function rollbacks()
      return tonumber(db.must(root, "SHOW GLOBAL STATUS LIKE 'Com_rollback'")[1].Value)
    end
    do
      local conn = assert(e:connect())
      db.must(conn, "START TRANSACTION")
      db.must(conn, "INSERT INTO " .. tbl .. " VALUES (1)")
      assert.is_true(conn:in_transaction())
    end
    local before = rollbacks()
    local ok, err, took = while_stopped(function()
      collectgarbage("collect")
      collectgarbage("collect")
    end)
    assert.is_true(ok, err)
    assert.is_true(took < 1, ("collection took %.2f s"):format(took))
    assert.are.equal(0, e:status().checked_out)
    assert.are.equal(before, rollbacks()) -- nothing was sent from the collector
    local conn = assert(e:connect())
    assert.are.equal(0, db.must(conn, "SELECT @@in_transaction AS t")[1].t)
    assert.are.equal(0, db.must(conn, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
    assert.are.equal(before + 1, rollbacks()) -- reset at checkout
    conn:close()
    db.must(e, "DROP TABLE " .. tbl)
    e:dispose()
    root:dispose()
  end)

  it("an abandoned open cursor is not drained by the collector", function()
    local e = db.engine()
    do
      local conn = assert(e:connect())
      local cur = conn:rows("SELECT seq FROM seq_1_to_100000")
      cur()
    end
    local ok, err, took = while_stopped(function()
      collectgarbage("collect")
      collectgarbage("collect")
    end)
    assert.is_true(ok, err)
    assert.is_true(took < 1, ("collection took %.2f s"):format(took))
    assert.are.equal(0, e:status().checked_out)
    assert.are.equal(0, e:status().idle) -- discarded, not reused
    assert.are.equal(1, db.must(e, "SELECT 1 AS n")[1].n)
    e:dispose()
  end)
end)

describe("lifecycle: interrupts never leak a connection #mariadb", function()
  local session = require("fsdb.session")
  local e

  before_each(function()
    if jit then jit.off() end -- count hooks do not fire in compiled code
    e = db.engine({ pool_size = 2,
      on_connect = function(conn) conn:execute("SET @fsdb_life = 1") end })
  end)

  after_each(function()
    if jit then jit.on() end
    e:dispose()
  end)

  -- Runs fn with a hook that raises once after n instructions, for
  -- n = 1, 2, … until fn completes before the hook fires; check() after
  -- each run.
  local function sweep(fn, check)
    local n, fired = 0, true
    while fired do
      n = n + 1
      fired = false
      local function hook()
        debug.sethook()
        fired = true
        error("interrupted", 2)
      end
      -- Set and cleared inside the pcall: only fn's instructions count.
      local ok, err = pcall(function()
        debug.sethook(hook, "", n)
        local r = { fn() }
        debug.sethook()
        return unpack(r)
      end)
      debug.sethook()
      if not fired then assert.is_true(ok, err) end
      check(ok, err, n)
    end
    if os.getenv("FSDB_SWEEP_VERBOSE") then io.stderr:write(("sweep: %d instruction counts\n"):format(n)) end
    return n
  end

  local param = setmetatable({}, { __index = function(_, k)
    if k == "a" then return ("v"):rep(3) end
  end })

  local function none_out(_ok, err, n)
    assert.are.equal(0, e:status().checked_out, ("after an interrupt at instruction %d: %s"):format(n, tostring(err)))
  end

  it("engine:execute", function()
    local n = sweep(function() return e:execute("SELECT ? AS a", "x") end, none_out)
    assert.is_true(n > 5)
  end)

  it("engine:query (a parameter's __index runs inside the call)", function()
    local n = sweep(function() return e:query("SELECT :a AS a", param) end, none_out)
    assert.is_true(n > 5)
  end)

  it("engine:execute on new connections (on_connect runs inside the call)", function()
    local e2 = db.engine({ pool_size = 0,
      on_connect = function(conn) conn:execute("SET @fsdb_life = 1") end })
    sweep(function() return e2:execute("SELECT 1") end, function(_, err, n)
      assert.are.equal(0, e2:status().checked_out, ("at instruction %d: %s"):format(n, tostring(err)))
    end)
    e2:dispose()
  end)

  it("s:execute: a raise leaves nothing out, a success only the session's connection", function()
    local s
    sweep(function()
      s = session.new(e)
      return s:execute("SELECT :a AS a", param)
    end, function(_ok, err, n)
      local held = s and #s:binds_in_use() or 0
      assert.are.equal(held, e:status().checked_out, ("at instruction %d: %s"):format(n, tostring(err)))
      if s then s:close() end
      assert.are.equal(0, e:status().checked_out)
    end)
  end)

  it("s:transaction", function()
    local tbl = db.unique("irq")
    db.must(e, "CREATE TABLE " .. tbl .. " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    local s = session.new(e)
    local n = sweep(function()
      return s:transaction(function(tx)
        tx:execute("INSERT INTO " .. tbl .. " (v) VALUES (?)", 1)
        return tx:query("SELECT :a AS a", param)
      end)
    end, none_out)
    assert.is_true(n > 10)
    s:close()
    db.must(e, "DROP TABLE " .. tbl)
  end)
end)

describe("lifecycle: on_connect #mariadb", function()
  it("raising once discards that connection; the next checkout runs it on a fresh one", function()
    for _, how in ipairs({ "connect", "execute" }) do
      local calls = 0
      local e = db.engine({ on_connect = function(conn)
        calls = calls + 1
        conn:execute("SET @fsdb_setup = " .. calls)
        if calls == 1 then error("fsdb: setup failed on purpose") end
      end })
      local res, err, errno, sqlstate
      if how == "connect" then
        res, err, errno, sqlstate = e:connect()
      else
        res, err, errno, sqlstate = e:execute("SELECT 1")
      end
      assert.is_nil(res)
      assert.matches("^fsdb: on_connect failed: .*setup failed on purpose", err)
      assert.are.equal(9008, errno)
      assert.are.equal("HY000", sqlstate)
      local st = e:status()
      assert.are.equal(0, st.checked_out)
      assert.are.equal(0, st.idle)
      assert.are.equal(1, st.connects)
      local conn = assert(e:connect())
      assert.are.equal(2, calls)
      assert.are.equal(2, db.must(conn, "SELECT @fsdb_setup AS n")[1].n)
      conn:close()
      assert.are.equal(2, e:status().connects)
      -- The good connection is reused without running on_connect again.
      assert.are.equal(2, db.must(e, "SELECT @fsdb_setup AS n")[1].n)
      assert.are.equal(2, calls)
      e:dispose()
    end
  end)
end)

describe("lifecycle: arguments refused up front #mariadb", function()
  local e, c

  before_each(function()
    e = db.engine()
    c = assert(e:connect())
  end)

  after_each(function()
    c:close()
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)

  it("SQL that is not a string raises", function()
    for _, method in ipairs({ "execute", "query", "rows", "query_rows" }) do
      local ok, err = pcall(c[method], c, 42)
      assert.is_false(ok)
      assert.matches("bad argument #1 %(SQL string expected, got number%)", err)
    end
    local ok, err = pcall(c.executemany, c, 42, { { 1 } })
    assert.is_false(ok)
    assert.matches("SQL string expected, got number", err, 1, true)
    assert.are.equal(1, db.must(c, "SELECT 1 AS n")[1].n)
  end)

  it("a method called on something else than a connection raises, naming fsdb.conn", function()
    local mt = getmetatable(c)
    -- A light userdata given the connection's metatable is still no connection.
    local light = require("fsdb_testhelper").lightuserdata()
    local old = debug.getmetatable(light)
    debug.setmetatable(light, mt)
    local others = { {}, "x", 42, io.stdout, light, setmetatable({}, mt) }
    for _, method in ipairs({ "execute", "query", "rows", "query_rows", "executemany", "ping",
      "in_transaction", "info", "thread_id", "close" }) do
      for i, other in ipairs(others) do
        local ok, err = pcall(c[method], other, "SELECT 1")
        assert.is_false(ok, method .. " #" .. i)
        assert.matches("bad argument #1 .*fsdb%.conn expected", err, nil, method .. " #" .. i)
      end
    end
    debug.setmetatable(light, old)
    assert.are.equal(1, db.must(c, "SELECT 1 AS n")[1].n)
  end)

  it("no C object takes a light userdata given its metatable for itself", function()
    -- Cursors, engines, codecs and URL holders check their self as
    -- connections do: a light userdata is no object of theirs.
    local cur = c:rows("SELECT 1")
    for _ in cur do end
    require("fsdb.core").codec()
    local light = require("fsdb_testhelper").lightuserdata()
    local old = debug.getmetatable(light)
    local reg, checked = debug.getregistry(), 0
    for _, name in ipairs({ "fsdb.cursor", "fsdb.engine", "fsdb.codec", "fsdb.uri_holder" }) do
      local mt = reg[name]
      if mt then
        debug.setmetatable(light, mt)
        local fns = {}
        for k, f in pairs(mt) do if type(f) == "function" then fns[k] = f end end
        if type(mt.__index) == "table" then
          for k, f in pairs(mt.__index) do if type(f) == "function" then fns[k] = f end end
        end
        for k, f in pairs(fns) do
          local ok, err = pcall(f, light)
          assert.is_false(ok, name .. "." .. k)
          assert.matches(name:gsub("%.", "%%.") .. " expected", err, nil, name .. "." .. k)
          checked = checked + 1
        end
      end
    end
    debug.setmetatable(light, old)
    assert.is_true(checked >= 8, "methods checked: " .. checked)
    assert.are.equal(1, db.must(c, "SELECT 1 AS n")[1].n)
  end)

  it("NaN and infinities are refused, naming the parameter", function()
    local nan, inf = 0 / 0, math.huge
    local cases = {
      { "#1 %(NaN", c.execute, c, "SELECT ?", nan },
      { "#2 %(inf", c.execute, c, "SELECT ?, ?", 1, inf },
      { ":x %(%-inf", c.query, c, "SELECT :x", { x = -inf } },
      { "#1 %(NaN", c.executemany, c, "DO ?", { { 1 }, { nan } } },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(unpack(case, 2))
      assert.is_false(ok)
      assert.matches("fsdb: bad parameter " .. case[1] .. " cannot be stored in SQL%)", err)
    end
    assert.are.equal(1.5, db.must(c, "SELECT ? AS d", 1.5)[1].d)
  end)
end)

describe("lifecycle: executemany's insert_id #mariadb", function()
  it("is the first id of the last batch in every mode", function()
    for _, mode in ipairs({ "auto", "values", "each" }) do
      local e = db.engine({ executemany_mode = mode })
      local c = assert(e:connect())
      local tbl = db.unique("ids")
      db.must(c, "CREATE TABLE " .. tbl .. " (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
      db.must(c, "INSERT INTO " .. tbl .. " (v) VALUES (0)")
      local res = assert(c:executemany("INSERT INTO " .. tbl .. " (v) VALUES (?)", { { 1 }, { 2 }, { 3 } }))
      assert.are.equal(3, res.affected_rows)
      assert.are.equal(2, res.insert_id, mode)
      db.must(c, "DROP TABLE " .. tbl)
      c:close()
      e:dispose()
    end
  end)
end)
