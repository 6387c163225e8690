--- Sessions against a real server: autobegin and isolation, commit,
-- rollback, close, transaction(fn) with savepoints and retries on a real
-- deadlock, begin() objects, binds over two databases, the store helpers,
-- scoped sessions, and that nothing connects before it is used.
local fsdb = require("fsdb")
local session = require("fsdb.session")
local db = require("helpers.db")
local th = require("fsdb_testhelper")

local null = fsdb.null

-- The test URL pointed at the second test database.
local function db2_url()
  local url = assert(db.url, "FSDB_TEST_URL is not set (start scripts/testdb)")
  local name, name2 = db.db or "fsdb_test", db.db2 or "fsdb_test2"
  local base, query = url:match("^(.-)(%?.*)$")
  if not base then base, query = url, "" end
  local swapped, n = base:gsub("/" .. name:gsub("%p", "%%%0") .. "$", "/" .. name2)
  assert(n == 1, "FSDB_TEST_URL does not end in /" .. name)
  return swapped .. query
end

-- Whether the core has a connection method (rows, executemany).
local function conn_has(method)
  local mt = debug.getregistry()["fsdb.conn"]
  return type(mt) == "table" and type(mt.__index) == "table" and mt.__index[method] ~= nil
end
local it_many = conn_has("executemany") and it or pending
local it_rows = conn_has("rows") and it or pending

-- The message of a raise, without "file:line: ".
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

describe("session #mariadb", function()
  local engine, obs, root, tbl

  local function count(where_id)
    local rows
    if where_id then
      rows = db.must(obs, "SELECT COUNT(*) AS n FROM " .. tbl .. " WHERE id = ?", where_id)
    else
      rows = db.must(obs, "SELECT COUNT(*) AS n FROM " .. tbl)
    end
    return rows[1].n
  end

  local function names(target)
    local out = {}
    for _, r in ipairs(db.must(target or obs, "SELECT name FROM " .. tbl .. " ORDER BY id")) do
      out[#out + 1] = r.name
    end
    return out
  end

  setup(function()
    engine = db.engine({ pool_size = 3, init_command = "SET SESSION innodb_lock_wait_timeout = 10" })
    obs = db.engine({ pool_size = 1 })
    root = db.root({ pool_size = 1 })
    tbl = db.unique("sess")
    db.must(engine, "CREATE TABLE " .. tbl .. " (id INT AUTO_INCREMENT PRIMARY KEY,"
      .. " name VARCHAR(100) NOT NULL, n INT NULL) ENGINE=InnoDB")
  end)

  teardown(function()
    db.must(obs, "DROP TABLE IF EXISTS " .. tbl)
    engine:dispose()
    obs:dispose()
    root:dispose()
  end)

  before_each(function()
    db.must(obs, "TRUNCATE TABLE " .. tbl)
  end)

  after_each(function()
    assert.are.equal(0, engine:status().checked_out)
  end)

  describe("lazy", function()
    it("a session that is never used makes no connection", function()
      local e = db.engine()
      local s = session.new(e)
      assert.are.equal("fsdb.session (idle)", tostring(s))
      assert.is_false(s:in_transaction())
      s:commit()
      s:rollback()
      s:close()
      assert.are.equal(0, e:status().connects)
      e:dispose()
    end)

    it("a db makes no connection until a session uses a bind, and only for that bind", function()
      local d = fsdb.new({ url = db.url, binds = { other = db2_url() } })
      local s = d:session()
      s:using("other")
      assert.are.equal(0, d.engine:status().connects)
      assert.are.equal(0, d.engines.other:status().connects)
      db.must(s, "SELECT 1")
      s:commit()
      assert.are.equal(1, d.engine:status().connects)
      assert.are.equal(0, d.engines.other:status().connects)
      s:close()
      d:dispose()
    end)
  end)

  describe("autobegin, commit, rollback, close", function()
    it("uncommitted rows are invisible to another connection, visible after commit", function()
      local s = session.new(engine)
      local res = db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES (?)", "sofa")
      assert.are.equal(1, res.affected_rows)
      assert.is_true(s:in_transaction())
      assert.is_true(s:connection():in_transaction())
      assert.are.equal(1, engine:status().checked_out)
      assert.matches("in transaction on default", tostring(s))
      -- the session sees its own row; the rest of the world does not
      assert.are.equal(1, db.must(s, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
      assert.are.equal(0, count())
      assert.is_true(s:commit())
      assert.are.equal(1, count())
      assert.are.equal(0, engine:status().checked_out)
      assert.is_false(s:in_transaction())
      s:close()
    end)

    it("a SELECT alone autobegins too (a consistent snapshot until commit)", function()
      local s = session.new(engine)
      assert.are.equal(0, db.must(s, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
      db.must(obs, "INSERT INTO " .. tbl .. " (name) VALUES ('x')")
      assert.are.equal(0, db.must(s, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
      s:commit()
      assert.are.equal(1, db.must(s, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
      s:close()
    end)

    it("rollback discards; the session autobegins again afterwards", function()
      local s = session.new(engine)
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
      assert.is_true(s:rollback())
      assert.are.equal(0, count())
      assert.are.equal(0, engine:status().checked_out)
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('b')")
      assert.are.equal(0, count())
      assert.is_true(s:commit())
      assert.are.same({ "b" }, names())
      s:close()
    end)

    it("close rolls back and returns the connection; closing twice is harmless", function()
      local s = session.new(engine)
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
      assert.are.equal(1, engine:status().checked_out)
      assert.is_true(s:close())
      assert.are.equal(0, engine:status().checked_out)
      assert.are.equal(0, count())
      assert.is_true(s:close())
      assert.are.equal("fsdb.session (closed)", tostring(s))
    end)

    it("using a closed session raises", function()
      local s = session.new(engine)
      s:close()
      local uses = {
        function() return s:execute("SELECT 1") end,
        function() return s:query("SELECT 1") end,
        function() return s:insert(tbl, { name = "x" }) end,
        function() return s:select(tbl) end,
        function() return s:commit() end,
        function() return s:rollback() end,
        function() return s:begin() end,
        function() return s:transaction(function() end) end,
        function() return s:using("default") end,
        function() return s:connection() end,
      }
      for i, use in ipairs(uses) do
        assert.are.equal("fsdb: session is closed", raised(use), "use #" .. i)
      end
    end)

    it("a view of a closed session raises too", function()
      local s = session.new(engine)
      local v = s:using("default")
      s:close()
      assert.are.equal("fsdb: session is closed", raised(function() return v:execute("SELECT 1") end))
    end)

    it("failures come back as four values and set last_errno", function()
      local s = session.new(engine)
      assert.is_nil(s.last_errno)
      db.must(s, "INSERT INTO " .. tbl .. " (id, name) VALUES (1, 'a')")
      local res, err, errno, sqlstate = s:execute("INSERT INTO " .. tbl .. " (id, name) VALUES (1, 'b')")
      assert.is_nil(res)
      assert.matches("^fsdb: Duplicate entry '1' for key 'PRIMARY'", err)
      assert.are.equal(1062, errno)
      assert.are.equal("23000", sqlstate)
      assert.are.equal(1062, s.last_errno)
      -- a failed statement leaves the transaction open: the first row stays
      assert.is_true(s:commit())
      assert.are.same({ "a" }, names())
      s:close()
    end)

    it("misuse from the connection raises through the session", function()
      local s = session.new(engine)
      local err = raised(function() return s:execute("SELECT ?") end)
      assert.matches("fsdb:", err)
      s:close()
    end)

    it("statements that commit implicitly (DDL) are followed by a new transaction", function()
      local s = session.new(engine)
      local t2 = db.unique("sess_ddl")
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('before')")
      db.must(s, "CREATE TABLE " .. t2 .. " (id INT)") -- commits 'before'
      assert.are.equal(1, count())
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('after')")
      assert.is_true(s:connection():in_transaction())
      assert.is_true(s:rollback())
      assert.are.same({ "before" }, names())
      db.must(obs, "DROP TABLE " .. t2)
      s:close()
    end)

    it("query with array rows and connection() work inside the transaction", function()
      local s = session.new(engine)
      db.must(s, "INSERT INTO " .. tbl .. " (name, n) VALUES ('a', 1)")
      local rows = assert(s:query("SELECT name, n FROM " .. tbl .. " WHERE n = ?", { 1 }, { array = true }))
      assert.are.same({ "a", 1 }, { rows[1][1], rows[1][2] })
      local conn = assert(s:connection())
      assert.are.equal(1, db.must(conn, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
      s:close()
      assert.are.equal(0, count())
    end)

    it("session.new rejects what is not an engine or a db", function()
      assert.matches("engine or db from fsdb.new expected, got string", raised(session.new, "mysql://x"))
    end)
  end)

  describe("transaction(fn)", function()
    it("commits what fn did and returns fn's values", function()
      local s = session.new(engine)
      local r = { n = 0 }
      local function collect(...) r = { n = select("#", ...), ... } end
      collect(s:transaction(function(tx)
        assert.are.equal(s, tx)
        db.must(tx, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
        assert.are.equal(0, count())
        return "done", nil, 3
      end))
      assert.are.equal(3, r.n)
      assert.are.equal("done", r[1])
      assert.is_nil(r[2])
      assert.are.equal(3, r[3])
      assert.are.equal(1, count())
      s:close()
    end)

    it("rolls back when fn raises and re-raises the same error object", function()
      local s = session.new(engine)
      local boom = { "boom" }
      local ok, err = pcall(s.transaction, s, function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
        error(boom)
      end)
      assert.is_false(ok)
      assert.are.equal(boom, err)
      assert.are.equal(0, count())
      assert.are.equal(0, engine:status().checked_out)
      -- a string error keeps its text (error level 0 adds nothing)
      ok, err = pcall(s.transaction, s, function() error("plain", 0) end)
      assert.is_false(ok)
      assert.are.equal("plain", err)
      s:close()
    end)

    it("rolls back when fn returns nil, err and returns those values", function()
      local s = session.new(engine)
      local res, err, errno, sqlstate = s:transaction(function()
        db.must(s, "INSERT INTO " .. tbl .. " (id, name) VALUES (1, 'a')")
        local r, e, no, st = s:execute("INSERT INTO " .. tbl .. " (id, name) VALUES (1, 'b')")
        if not r then return nil, e, no, st end
        return true
      end)
      assert.is_nil(res)
      assert.matches("Duplicate entry", err)
      assert.are.equal(1062, errno)
      assert.are.equal("23000", sqlstate)
      assert.are.equal(0, count())
      s:close()
    end)

    it("returns the commit failure when the commit fails", function()
      -- the session's connection is killed from outside before the commit
      local s = session.new(engine)
      local res, err, errno = s:transaction(function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
        local id = s:connection():thread_id()
        db.must(root, "KILL " .. id)
        return "fn done"
      end)
      assert.is_nil(res)
      assert.matches("^fsdb: COMMIT failed on bind 'default': ", err)
      assert.is_number(errno)
      assert.are.equal(0, count())
      assert.are.equal(0, engine:status().checked_out)
      s:close()
    end)

    it("nested: only the inner part is rolled back (SAVEPOINT / ROLLBACK TO)", function()
      local s = session.new(engine)
      s:transaction(function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('outer 1')")
        local ok, err = pcall(s.transaction, s, function()
          db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('inner')")
          error("inner failed", 0)
        end)
        assert.is_false(ok)
        assert.are.equal("inner failed", err)
        -- returned failure: rolled back to its savepoint as well
        local r, e = s:transaction(function()
          db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('inner 2')")
          return nil, "changed my mind"
        end)
        assert.is_nil(r)
        assert.are.equal("changed my mind", e)
        -- success: the savepoint is released, the rows stay
        assert.are.equal("kept", s:transaction(function()
          db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('inner 3')")
          return "kept"
        end))
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('outer 2')")
        assert.are.equal(0, count())
      end)
      assert.are.same({ "outer 1", "inner 3", "outer 2" }, names())
      s:close()
    end)

    it("nested three deep: the middle rollback takes the innermost with it", function()
      local s = session.new(engine)
      s:transaction(function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('1')")
        s:transaction(function()
          db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('2')")
          s:transaction(function()
            db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('3')")
          end)
          return nil, "no"
        end)
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('4')")
      end)
      assert.are.same({ "1", "4" }, names())
      s:close()
    end)

    it("an outer failure rolls back committed-looking inner parts too", function()
      local s = session.new(engine)
      pcall(s.transaction, s, function()
        s:transaction(function()
          db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('inner')")
        end)
        error("outer failed")
      end)
      assert.are.equal(0, count())
      s:close()
    end)

    it("statements before transaction() belong to the same transaction", function()
      local s = session.new(engine)
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('before')")
      pcall(s.transaction, s, function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('inside')")
        error("x")
      end)
      assert.are.equal(0, count())
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('before')")
      s:transaction(function() end)
      assert.are.same({ "before" }, names())
      s:close()
    end)

    it("commit() and rollback() inside transaction() raise", function()
      local s = session.new(engine)
      local err = raised(s.transaction, s, function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
        s:commit()
      end)
      assert.matches("^fsdb: session:commit%(%) inside transaction%(%) or begin%(%)", err)
      err = raised(s.transaction, s, function() s:rollback() end)
      assert.matches("^fsdb: session:rollback%(%) inside transaction%(%)", err)
      assert.are.equal(0, count())
      s:close()
    end)

    it("closing the session inside fn ends it and raises", function()
      local s = session.new(engine)
      local err = raised(s.transaction, s, function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
        s:close()
      end)
      assert.matches("session was closed", err)
      assert.are.equal(0, count())
    end)

    it("checks its arguments", function()
      local s = session.new(engine)
      assert.matches("function expected, got nil", raised(s.transaction, s))
      assert.are.equal("fsdb: unknown transaction option 'retry' (known: backoff, on_retry, retries)",
        raised(s.transaction, s, function() end, { retry = 1 }))
      assert.are.equal("fsdb: bad value for transaction option 'on_retry' (expected a function(attempt, errno, err))",
        raised(s.transaction, s, function() end, { on_retry = 1 }))
      assert.are.equal("fsdb: bad value for transaction option 'retries' (expected a whole number >= 0)",
        raised(s.transaction, s, function() end, { retries = -1 }))
      assert.are.equal("fsdb: bad value for transaction option 'retries' (expected a whole number >= 0)",
        raised(s.transaction, s, function() end, { retries = 1.5 }))
      s:close()
    end)

    it("retries counts attempts: n retries means n + 1 runs, then the failure", function()
      local s = session.new(engine)
      local runs = 0
      local res, err, errno, sqlstate = s:transaction(function()
        runs = runs + 1
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('try')")
        return nil, "fsdb: pretend deadlock", 1213, "40001"
      end, { retries = 2 })
      assert.are.equal(3, runs)
      assert.is_nil(res)
      assert.are.same({ "fsdb: pretend deadlock", 1213, "40001" }, { err, errno, sqlstate })
      assert.are.equal(0, count())
      -- on_retry hears about every attempt that runs again, with its errno
      local heard = {}
      runs = 0
      s:transaction(function()
        runs = runs + 1
        if runs < 3 then return nil, "fsdb: pretend lock wait " .. runs, 1205, "HY000" end
        return true
      end, { retries = 5, on_retry = function(attempt, no, e) heard[#heard + 1] = { attempt, no, e } end })
      assert.are.same({ { 1, 1205, "fsdb: pretend lock wait 1" }, { 2, 1205, "fsdb: pretend lock wait 2" } }, heard)
      -- other errnos are not retried
      runs = 0
      s:transaction(function()
        runs = runs + 1
        return nil, "fsdb: duplicate", 1062, "23000"
      end, { retries = 5 })
      assert.are.equal(1, runs)
      -- a raise is retried when the session's last failed statement was 1205/1213
      runs = 0
      local ok = pcall(s.transaction, s, function()
        runs = runs + 1
        s.last_errno = 1205 -- what a lock-wait timeout leaves behind
        error("timed out")
      end, { retries = 1 })
      assert.is_false(ok)
      assert.are.equal(2, runs)
      s:close()
    end)

    it("no retries when the session had uncommitted work before (it cannot be replayed)", function()
      local s = session.new(engine)
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('before')")
      local runs = 0
      s:transaction(function()
        runs = runs + 1
        return nil, "fsdb: pretend deadlock", 1213, "40001"
      end, { retries = 3 })
      assert.are.equal(1, runs)
      assert.are.equal(0, count())
      s:close()
    end)

    it("retries are the outermost call's: a nested call passes the failure up", function()
      local s = session.new(engine)
      local outer, inner = 0, 0
      s:transaction(function()
        outer = outer + 1
        return s:transaction(function()
          inner = inner + 1
          return nil, "fsdb: pretend deadlock", 1213, "40001"
        end, { retries = 5 })
      end, { retries = 1 })
      assert.are.same({ 2, 2 }, { outer, inner })
      s:close()
    end)
  end)

  describe("begin()", function()
    local is54 = _VERSION == "Lua 5.4" and not rawget(_G, "jit")

    it("tx:commit() commits; the object is then inactive", function()
      local s = session.new(engine)
      local tx = assert(s:begin())
      assert.is_true(tx:is_active())
      assert.are.equal(0, engine:status().checked_out) -- still lazy
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
      assert.are.equal(0, count())
      assert.is_true(tx:commit())
      assert.is_false(tx:is_active())
      assert.are.equal(1, count())
      assert.matches("no longer active", raised(tx.commit, tx))
      assert.is_true(tx:rollback()) -- a no-op now
      assert.is_true(tx:close())
      s:close()
    end)

    it("tx:close() rolls back unless committed (the LuaJIT form of <close>)", function()
      local s = session.new(engine)
      local tx = s:begin()
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
      assert.is_true(tx:close())
      assert.are.equal(0, count())
      assert.are.equal(0, engine:status().checked_out)
      assert.is_true(tx:close())
      assert.matches("%(done%)", tostring(tx))
      s:close()
    end)

    it("nested begin() is a savepoint", function()
      local s = session.new(engine)
      local outer = s:begin()
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('outer')")
      local inner = s:begin()
      assert.matches("savepoint fsdb_sp_1", tostring(inner))
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('inner')")
      assert.matches("inner transaction is still open", raised(outer.commit, outer))
      assert.is_true(inner:rollback())
      assert.is_true(outer:commit())
      assert.are.same({ "outer" }, names())
      s:close()
    end)

    it("session:commit() while a begin() transaction is open raises", function()
      local s = session.new(engine)
      local tx = s:begin()
      assert.matches("inside transaction%(%) or begin%(%)", raised(s.commit, s))
      tx:close()
      s:close()
    end)

    it("a begin() object collected while active is rolled back at the session's next call", function()
      local s = session.new(engine)
      local function forget()
        local tx = s:begin() -- luacheck: ignore 231 (alive until the function returns)
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('lost')")
        tx = nil -- luacheck: ignore
      end
      forget()
      collectgarbage()
      collectgarbage()
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('kept')")
      assert.is_true(s:commit())
      assert.are.same({ "kept" }, names())
      s:close()
    end)

    if is54 then
      it("<close> rolls back at the end of the scope unless committed (Lua 5.4)", function()
        -- compiled at run time so that LuaJIT can still parse this file
        local chunk = assert(load([[
          local s, tbl, must, fail = ...
          do
            local tx <close> = s:begin()
            must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('rolled back')")
          end
          do
            local tx <close> = s:begin()
            must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('committed')")
            assert(tx:commit())
          end
          if fail then
            local tx <close> = s:begin()
            must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('raised')")
            error("boom", 0)
          end
        ]], "=close_chunk"))
        local s = session.new(engine)
        chunk(s, tbl, db.must, false)
        assert.are.same({ "committed" }, names())
        local ok, err = pcall(chunk, s, tbl, db.must, true)
        assert.is_false(ok)
        assert.are.equal("boom", err)
        assert.are.same({ "committed", "committed" }, names())
        assert.are.equal(0, engine:status().checked_out)
        s:close()
      end)
    else
      it("without <close> (LuaJIT), tx:close() in a pcall gives the same guarantee", function()
        local s = session.new(engine)
        local tx = s:begin()
        local ok = pcall(function()
          db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('raised')")
          error("boom")
        end)
        tx:close()
        assert.is_false(ok)
        assert.are.equal(0, count())
        s:close()
      end)
    end
  end)

  describe("deadlocks and lock waits", function()
    local dtbl, heavy

    before_each(function()
      dtbl = db.unique("sess_dl")
      heavy = db.unique("sess_heavy")
      db.must(obs, "CREATE TABLE " .. dtbl .. " (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
      db.must(obs, "CREATE TABLE " .. heavy .. " (id INT AUTO_INCREMENT PRIMARY KEY, pad CHAR(1)) ENGINE=InnoDB")
      db.must(obs, "INSERT INTO " .. dtbl .. " VALUES (1, 0), (2, 0)")
    end)

    after_each(function()
      db.must(obs, "DROP TABLE IF EXISTS " .. dtbl .. ", " .. heavy)
    end)

    local function values()
      local out = {}
      for _, r in ipairs(db.must(obs, "SELECT v FROM " .. dtbl .. " ORDER BY id")) do out[#out + 1] = r.v end
      return out
    end

    -- Call while the parent holds row 1 in a transaction. A child process
    -- locks row 2, does more work (so InnoDB, which rolls back the lighter
    -- transaction, picks the parent), then asks for row 1 and blocks.
    -- Returns once the child has been blocked for a while: the parent's next
    -- request for row 2 closes the cycle, and the parent gets 1213.
    local function child_waiting_for_row1()
      local blocked_sql = "UPDATE " .. dtbl .. " SET v = v + 10 WHERE id = 1"
      local pid = assert(th.fork())
      if pid == 0 then
        local code = 3
        pcall(function()
          local ce = db.engine({ init_command = "SET SESSION innodb_lock_wait_timeout = 10" })
          local c = assert(ce:connect())
          assert(c:execute("START TRANSACTION"))
          assert(c:execute("UPDATE " .. dtbl .. " SET v = v + 10 WHERE id = 2"))
          for _ = 1, 50 do assert(c:execute("INSERT INTO " .. heavy .. " (pad) VALUES ('x')")) end
          if not c:execute(blocked_sql) then
            code = 1
            return
          end
          assert(c:execute("COMMIT"))
          code = 0
        end)
        th.exit(code)
      end
      -- PROCESSLIST is live (INNODB_TRX is a cache refreshed at most every
      -- 0.1 s of quiet, which polling would keep stale).
      for _ = 1, 400 do
        local r = db.must(root, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST"
          .. " WHERE INFO = ? AND TIME_MS > 200", blocked_sql)
        if r[1].n > 0 then return pid end
        th.sleep(0.025)
      end
      th.waitpid(pid)
      error("the child never blocked on row 1")
    end

    it("transaction(fn, {retries = 2}) runs fn again after a real deadlock", function()
      local s = session.new(engine)
      local runs, pid = 0, nil
      local res = s:transaction(function()
        runs = runs + 1
        assert(s:execute("UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 1"))
        if runs == 1 then pid = child_waiting_for_row1() end
        -- the first time: deadlock, raised by assert; the session saw 1213
        assert(s:execute("UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 2"))
        return "done"
      end, { retries = 2 })
      assert.are.equal(0, th.waitpid(pid), "the child's transaction must commit")
      assert.are.equal("done", res)
      assert.are.equal(2, runs)
      assert.are.same({ 11, 11 }, values())
      s:close()
    end)

    it("conn:in_transaction() is false after a deadlock, true again in the next transaction", function()
      local c = assert(engine:connect())
      db.must(c, "START TRANSACTION")
      db.must(c, "UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 1")
      local pid = child_waiting_for_row1()
      local r, _, errno = c:execute("UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 2")
      assert.are.equal(0, th.waitpid(pid))
      assert.is_nil(r)
      assert.are.equal(1213, errno)
      assert.is_false(c:in_transaction())
      db.must(c, "START TRANSACTION")
      assert.is_true(c:in_transaction())
      db.must(c, "ROLLBACK")
      assert.is_false(c:in_transaction())
      c:close()
    end)

    it("without retries the deadlock comes back with errno 1213 and sqlstate 40001", function()
      local s = session.new(engine)
      local runs, pid = 0, nil
      local res, err, errno, sqlstate = s:transaction(function()
        runs = runs + 1
        db.must(s, "UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 1")
        pid = child_waiting_for_row1()
        local r, e, no, st = s:execute("UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 2")
        if not r then return nil, e, no, st end
        return "not reached"
      end)
      assert.are.equal(0, th.waitpid(pid))
      assert.are.equal(1, runs)
      assert.is_nil(res)
      assert.matches("^fsdb: Deadlock found", err)
      assert.are.equal(1213, errno)
      assert.are.equal("40001", sqlstate)
      assert.are.equal(1213, s.last_errno)
      assert.are.same({ 10, 10 }, values())
      s:close()
    end)

    it("after the server rolled back a transaction the session refuses statements until rollback", function()
      local s = session.new(engine)
      db.must(s, "UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 1")
      local pid = child_waiting_for_row1()
      local r, _, errno = s:execute("UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 2")
      assert.is_nil(r)
      assert.are.equal(1213, errno)
      assert.are.equal(0, th.waitpid(pid))
      -- not silently in a new transaction of its own:
      local r2, err2, errno2, sqlstate2 = s:execute("UPDATE " .. dtbl .. " SET v = 99 WHERE id = 1")
      assert.is_nil(r2)
      assert.matches("^fsdb: the transaction on bind 'default' was rolled back by the server %(Deadlock", err2)
      assert.matches("call rollback%(%) and start over$", err2)
      assert.are.same({ 1213, "40001" }, { errno2, sqlstate2 })
      local ok, err3, errno3 = s:commit()
      assert.is_nil(ok)
      assert.matches("^fsdb: commit failed: the transaction on bind 'default' was rolled back by the server", err3)
      assert.are.equal(1213, errno3)
      -- commit ended it: the session works again
      db.must(s, "UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 1")
      assert.is_true(s:commit())
      assert.are.same({ 11, 10 }, values())
      s:close()
    end)

    it("transaction(fn, {retries = n}) runs fn again after a lock-wait timeout (1205)", function()
      local e1 = db.engine({ init_command = "SET SESSION innodb_lock_wait_timeout = 1" })
      local sync = db.unique("sess_sync")
      db.must(obs, "CREATE TABLE " .. sync .. " (name VARCHAR(20) PRIMARY KEY)")
      local function seen(name)
        return db.must(obs, "SELECT COUNT(*) AS n FROM " .. sync .. " WHERE name = ?", name)[1].n > 0
      end
      local pid = assert(th.fork())
      if pid == 0 then
        local code = 3
        pcall(function()
          local ce = db.engine()
          local c, flag = assert(ce:connect()), assert(ce:connect())
          assert(c:execute("START TRANSACTION"))
          assert(c:execute("UPDATE " .. dtbl .. " SET v = v + 10 WHERE id = 1"))
          assert(flag:execute("INSERT INTO " .. sync .. " VALUES ('locked')"))
          for _ = 1, 600 do
            local r = assert(flag:execute("SELECT COUNT(*) AS n FROM " .. sync .. " WHERE name = 'release'"))
            if r[1].n > 0 then break end
            th.sleep(0.02)
          end
          assert(c:execute("COMMIT"))
          code = 0
        end)
        th.exit(code)
      end
      for _ = 1, 500 do
        if seen("locked") then break end
        th.sleep(0.02)
      end
      local s = session.new(e1)
      local runs, errnos = 0, {}
      local res = s:transaction(function()
        runs = runs + 1
        local r, err, errno, sqlstate = s:execute("UPDATE " .. dtbl .. " SET v = v + 1 WHERE id = 1")
        if not r then
          errnos[#errnos + 1] = errno
          if runs == 1 then db.must(obs, "INSERT INTO " .. sync .. " VALUES ('release')") end
          return nil, err, errno, sqlstate
        end
        return "done"
      end, { retries = 5 })
      local code = th.waitpid(pid)
      db.must(obs, "DROP TABLE " .. sync)
      assert.are.equal(0, code)
      assert.are.equal("done", res)
      assert.is_true(runs >= 2)
      assert.are.equal(1205, errnos[1])
      assert.are.same({ 11, 0 }, values())
      s:close()
      e1:dispose()
    end)
  end)

  describe("binds", function()
    local d, other_url, obs2

    local function count2()
      return db.must(obs2, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n
    end

    setup(function()
      other_url = db2_url()
      obs2 = db.engine({ pool_size = 1 }, other_url)
      db.must(obs2, "CREATE TABLE " .. tbl .. " (id INT AUTO_INCREMENT PRIMARY KEY,"
        .. " name VARCHAR(100) NOT NULL, n INT NULL) ENGINE=InnoDB")
      d = fsdb.new({ url = db.url, binds = { other = other_url }, engine_options = { pool_size = 2 } })
    end)

    teardown(function()
      db.must(obs2, "DROP TABLE IF EXISTS " .. tbl)
      obs2:dispose()
      d:dispose()
    end)

    before_each(function()
      db.must(obs2, "TRUNCATE TABLE " .. tbl)
    end)

    after_each(function()
      assert.are.equal(0, d.engine:status().checked_out)
      assert.are.equal(0, d.engines.other:status().checked_out)
    end)

    it("db.engine, db.engines.default and db.engines.other", function()
      assert.are.equal(d.engine, d.engines.default)
      assert.are.equal(d.engine, d:get_engine())
      assert.are.equal(d.engines.other, d:get_engine("other"))
      assert.are.same({ "default", "other" }, d:bind_names())
      assert.are.equal(2, d.engine:status().size)
      assert.are.equal(2, d.engines.other:status().size)
      assert.are.equal("fsdb.db (default, other)", tostring(d))
    end)

    it("one session writes to both; nothing is visible before commit, both after", function()
      local s = d:session()
      assert.are.equal(7, s:insert(tbl, { id = 7, name = "main" }))
      local other = s:using("other")
      assert.are.equal(other, s:using("other"))
      assert.are.equal(1, other:insert(tbl, { name = "auth" }))
      assert.are.same({ "default", "other" }, s:binds_in_use())
      assert.are.equal(0, count())
      assert.are.equal(0, count2())
      assert.are.equal(1, #assert(other:select(tbl, { where = { name = "auth" } })))
      assert.is_true(s:commit())
      assert.are.equal(1, count())
      assert.are.equal(1, count2())
      s:close()
    end)

    it("rollback and close apply to both", function()
      local s = d:session()
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('a')")
      db.must(s:using("other"), "INSERT INTO " .. tbl .. " (name) VALUES ('b')")
      assert.is_true(s:rollback())
      assert.are.same({ 0, 0 }, { count(), count2() })
      db.must(s:using("other"), "INSERT INTO " .. tbl .. " (name) VALUES ('b')")
      s:close()
      assert.are.same({ 0, 0 }, { count(), count2() })
    end)

    it("transaction(fn) covers every bind; a nested one sets its savepoint on a bind that joins late", function()
      local s = d:session()
      s:transaction(function()
        db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('main')")
        pcall(s.transaction, s, function()
          db.must(s:using("other"), "INSERT INTO " .. tbl .. " (name) VALUES ('inner other')")
          db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('inner main')")
          error("inner failed")
        end)
        db.must(s:using("other"), "INSERT INTO " .. tbl .. " (name) VALUES ('outer other')")
      end)
      assert.are.same({ "main" }, names())
      assert.are.same({ "outer other" }, names(obs2))
      s:close()
    end)

    it("a COMMIT that fails on the second bind reports it; the first stays committed", function()
      local s = d:session()
      db.must(s, "INSERT INTO " .. tbl .. " (name) VALUES ('main')")
      local other = s:using("other")
      db.must(other, "INSERT INTO " .. tbl .. " (name) VALUES ('other')")
      db.must(root, "KILL " .. assert(other:connection()):thread_id())
      local ok, err, errno = s:commit()
      assert.is_nil(ok)
      assert.matches("^fsdb: COMMIT failed on bind 'other': ", err)
      assert.matches("; already committed %(no two%-phase commit%): default$", err)
      assert.is_number(errno)
      assert.are.same({ 1, 0 }, { count(), count2() })
      s:close()
    end)

    it("an unknown bind is an error that names it", function()
      local s = d:session()
      assert.are.equal("fsdb: unknown bind 'nope' (known: default, other)", raised(s.using, s, "nope"))
      assert.are.equal("fsdb: unknown bind 'nope' (known: default, other)",
        raised(function() return d.engines.nope end))
      assert.are.equal("fsdb: unknown bind 'nope' (known: default, other)", raised(d.get_engine, d, "nope"))
      local ok, err = pcall(function()
        local v = s:using("auth")
        return v
      end)
      assert.is_false(ok)
      assert.matches("session_spec%.lua:%d+: fsdb: unknown bind 'auth'", err)
      -- a plain engine has only the default bind
      local s2 = session.new(engine)
      assert.are.equal("fsdb: unknown bind 'other' (known: default)", raised(s2.using, s2, "other"))
      assert.is_truthy(s2:using("default"))
      s:close()
      s2:close()
    end)

    it("per-bind options are laid over engine_options", function()
      local d2 = fsdb.new({ url = db.url, engine_options = { pool_size = 4, pool_timeout = 3 },
        binds = { other = { url = other_url, pool_size = 1 } } })
      assert.are.equal(4, d2.engine:status().size)
      assert.are.equal(1, d2.engines.other:status().size)
      assert.are.equal(3, d2.engines.other.options.pool_timeout)
      assert.are.equal(0, d2.engines.other:status().connects)
      d2:dispose()
    end)

    it("fsdb.new checks its configuration", function()
      assert.are.equal("fsdb: unknown fsdb.new option 'bind' (known: binds, engine_options, url)",
        raised(fsdb.new, { url = db.url, bind = {} }))
      assert.are.equal("fsdb: bind name 'default' is reserved for the main url",
        raised(fsdb.new, { url = db.url, binds = { default = db.url } }))
      assert.are.equal("fsdb: no database URL for bind 'x'; set DATABASE_URL_X (in the environment or a .env file)",
        raised(fsdb.new, { url = db.url, binds = { x = { pool_size = 1 } } }))
      assert.matches("^fsdb: bind 'x': unknown engine option 'poolsize'",
        raised(fsdb.new, { url = db.url, binds = { x = { url = db.url, poolsize = 1 } } }))
      assert.matches("^fsdb: bind 'x': ", raised(fsdb.new, { url = db.url, binds = { x = "http://nope" } }))
      assert.matches("^fsdb: unknown engine option 'nope'",
        raised(fsdb.new, { url = db.url, engine_options = { nope = 1 } }))
    end)

    it_many("executemany and rows through a view", function()
      local s = d:session()
      local other = s:using("other")
      local res = assert(other:executemany("INSERT INTO " .. tbl .. " (name, n) VALUES (?, ?)",
        { { "a", 1 }, { "b", 2 }, { "c", 3 } }))
      assert.are.equal(3, res.affected_rows)
      assert.are.equal(0, count2())
      local seen = {}
      for row in other:rows("SELECT name FROM " .. tbl .. " ORDER BY id") do seen[#seen + 1] = row.name end
      assert.are.same({ "a", "b", "c" }, seen)
      assert.is_true(s:commit())
      assert.are.equal(3, count2())
      s:close()
    end)
  end)

  describe("executemany and rows", function()
    it_many("executemany runs in the session transaction", function()
      local s = session.new(engine)
      local res = assert(s:executemany("INSERT INTO " .. tbl .. " (name, n) VALUES (:name, :n)",
        { { name = "a", n = 1 }, { name = "b", n = null } }))
      assert.are.equal(2, res.affected_rows)
      assert.are.equal(0, count())
      assert.is_true(s:commit())
      assert.are.same({ "a", "b" }, names())
      local r, err, errno, sqlstate = s:executemany("INSERT INTO " .. tbl .. " (id, name) VALUES (?, ?)",
        { { 100, "x" }, { 100, "y" } })
      assert.is_nil(r)
      assert.matches("Duplicate entry", err)
      assert.are.same({ 1062, "23000" }, { errno, sqlstate })
      assert.are.equal(1062, s.last_errno)
      s:close()
      assert.are.equal(2, count())
    end)

    it_rows("rows streams inside the session transaction and sees its own rows", function()
      local s = session.new(engine)
      for i = 1, 5 do db.must(s, "INSERT INTO " .. tbl .. " (name, n) VALUES (?, ?)", "r" .. i, i) end
      local total = 0
      for row in s:rows("SELECT n FROM " .. tbl .. " WHERE n > ?", 0) do total = total + row.n end
      assert.are.equal(15, total)
      local arrays = {}
      for row in s:query_rows("SELECT name, n FROM " .. tbl .. " WHERE n = ?", { 2 }, { array = true }) do
        arrays[#arrays + 1] = row
      end
      assert.are.same({ { "r2", 2 } }, arrays)
      assert.is_true(s:commit())
      assert.are.equal(5, count())
      s:close()
    end)

    it_rows("a raise outside a transaction rolls back and returns what the session holds", function()
      local s = session.new(engine)
      db.must(s, "INSERT INTO " .. tbl .. " (name, n) VALUES (?, ?)", "r1", 1)
      local cursor = assert(s:rows("SELECT n FROM " .. tbl .. " ORDER BY n"))
      assert.are.equal(1, cursor().n)
      assert.are.equal(1, engine:status().checked_out)
      assert.matches("busy", raised(s.execute, s, "SELECT 1"))
      assert.are.equal("fsdb.cursor (closed)", tostring(cursor))
      assert.are.equal(0, engine:status().checked_out)
      assert.are.equal(0, count()) -- rolled back
      assert.is_false(s:in_transaction())
      db.must(s, "INSERT INTO " .. tbl .. " (name, n) VALUES (?, ?)", "r2", 2) -- still usable
      assert.is_true(s:commit())
      assert.are.equal(1, count())
      s:close()
    end)

    it_rows("commit and close also close a cursor left open by an early break", function()
      local s = session.new(engine)
      for i = 1, 3 do db.must(s, "INSERT INTO " .. tbl .. " (name, n) VALUES (?, ?)", "r" .. i, i) end
      local cursor = assert(s:rows("SELECT n FROM " .. tbl .. " ORDER BY n"))
      assert.are.equal(1, cursor().n) -- then stop reading, as after a break on LuaJIT
      assert.is_true(s:commit())
      assert.are.equal("fsdb.cursor (closed)", tostring(cursor))
      assert.are.equal(3, count())
      local c2 = assert(s:rows("SELECT n FROM " .. tbl))
      c2()
      s:close()
      assert.are.equal("fsdb.cursor (closed)", tostring(c2))
    end)

    it_rows("a failing rows() raises with errno and sqlstate; the transaction stays", function()
      local s = session.new(engine)
      finally(function() s:close() end)
      assert(s:insert(tbl, { name = "keep", n = 4242 }))
      local ok, err = pcall(function()
        for _ in s:rows("SELECT nope FROM " .. tbl) do end
      end)
      assert.is_false(ok)
      assert.matches("Unknown column 'nope'", err, 1, true)
      assert.matches("(errno 1054, sqlstate 42S22)", err, 1, true)
      assert.are.equal(1054, s.last_errno)
      -- the same for query_rows and a view; the insert is still pending
      ok, err = pcall(function()
        for _ in s:using("default"):query_rows("SELEC 1") do end
      end)
      assert.is_false(ok)
      assert.matches("(errno 1064, sqlstate 42000)", err, 1, true)
      assert.are.equal(1, #assert(s:execute("SELECT n FROM " .. tbl .. " WHERE n = 4242")))
      assert(s:rollback())
      s:close()
    end)
  end)

  describe("store helpers", function()
    local items

    setup(function()
      items = db.unique("sess_items")
      db.must(obs, "CREATE TABLE " .. items .. " (id INT AUTO_INCREMENT PRIMARY KEY,"
        .. " name VARCHAR(100) NOT NULL, price DECIMAL(10,2) NOT NULL, note VARCHAR(100) NULL,"
        .. " `order` INT NOT NULL DEFAULT 0, `we``ird` INT NULL) ENGINE=InnoDB")
    end)

    teardown(function()
      db.must(obs, "DROP TABLE IF EXISTS " .. items)
    end)

    before_each(function()
      db.must(obs, "TRUNCATE TABLE " .. items)
    end)

    local function seed(s)
      local rows = {
        { name = "Sofa", price = "899.00", ["order"] = 3 },
        { name = "Chair", price = "49.90", note = "oak", ["order"] = 1 },
        { name = "Table", price = "249.00", note = null, ["order"] = 2 },
        { name = [[O'Brien "lamp" \ ; -- DROP TABLE x]], price = "19.99", ["we`ird"] = 5 },
      }
      local ids = {}
      for i, r in ipairs(rows) do ids[i] = assert(s:insert(items, r)) end
      return ids
    end

    it("insert returns the new id; values are stored verbatim", function()
      local s = session.new(engine)
      assert.are.same({ 1, 2, 3, 4 }, seed(s))
      assert.is_true(s:commit())
      local r = db.must(obs, "SELECT * FROM " .. items .. " WHERE id = 4")[1]
      assert.are.equal([[O'Brien "lamp" \ ; -- DROP TABLE x]], r.name)
      assert.are.equal("19.99", r.price)
      assert.are.equal(5, r["we`ird"])
      assert.are.equal(null, r.note)
      s:close()
    end)

    it("select with where, IN, NULL, columns, order_by, limit and offset", function()
      local s = session.new(engine)
      seed(s)
      local function pluck(rows)
        local out = {}
        for i, r in ipairs(rows) do out[i] = r.name end
        return out
      end
      assert.are.same({ "Chair", "Table", "Sofa" },
        pluck(assert(s:select(items, { where = { id = { 1, 2, 3 } }, order_by = "order" }))))
      assert.are.same({ "Sofa", "Table" },
        pluck(assert(s:select(items, { where = { note = null, ["we`ird"] = null }, order_by = "price DESC" }))))
      assert.are.same({ "Chair" }, pluck(assert(s:select(items, { where = { note = "oak" } }))))
      assert.are.same({}, pluck(assert(s:select(items, { where = { id = {} } }))))
      assert.are.same({ "Sofa", "Table" },
        pluck(assert(s:select(items, { order_by = { "price desc" }, limit = 2 }))))
      assert.are.same({ "Table", "Chair" },
        pluck(assert(s:select(items, { order_by = { "price desc" }, limit = 2, offset = 1 }))))
      local rows = assert(s:select(items, { columns = { "id", "price" }, where = { name = "Sofa" }, for_update = true }))
      assert.are.same({ "id", "price" }, rows.columns)
      assert.are.same({ id = 1, price = "899.00" }, { id = rows[1].id, price = rows[1].price })
      assert.are.equal(1, #assert(s:select(items, {
        where = { name = [[O'Brien "lamp" \ ; -- DROP TABLE x]] } })))
      s:close()
    end)

    it("update and delete return the affected rows", function()
      local s = session.new(engine)
      seed(s)
      assert.are.equal(2, s:update(items, { note = "sale" }, { id = { 1, 2 } }))
      assert.are.equal(1, s:update(items, { note = null, price = "1.00" }, { name = "Chair" }))
      assert.are.equal(0, s:update(items, { note = "x" }, { name = "Nothing" }))
      assert.are.equal(1, s:delete(items, { note = null, name = "Chair" }))
      assert.are.equal(0, s:delete(items, { id = {} }))
      assert.are.equal(3, s:update(items, { ["order"] = 0 }, fsdb.all))
      assert.is_true(s:commit())
      local left = db.must(obs, "SELECT id, note FROM " .. items .. " ORDER BY id")
      assert.are.same({ 1, "sale" }, { left[1].id, left[1].note })
      assert.are.equal(3, #left)
      assert.are.equal(3, s:delete(items, fsdb.all))
      s:close()
      assert.are.equal(3, #db.must(obs, "SELECT id FROM " .. items))
    end)

    it("failures come back as four values; misuse raises at the caller's line", function()
      local s = session.new(engine)
      seed(s)
      local id, err, errno, sqlstate = s:insert(items, { id = 1, name = "dup", price = "1" })
      assert.is_nil(id)
      assert.matches("Duplicate entry '1'", err)
      assert.are.same({ 1062, "23000" }, { errno, sqlstate })
      local n, err2, errno2 = s:update(items, { nope = 1 }, { id = 1 })
      assert.is_nil(n)
      assert.matches("Unknown column 'nope'", err2)
      assert.are.equal(1054, errno2)
      local ok, e = pcall(function()
        local rows = s:select(items, { order_by = "price; DROP TABLE x" })
        return rows
      end)
      assert.is_false(ok)
      assert.matches("session_spec%.lua:%d+: fsdb: bad order_by entry 'price; DROP TABLE x'", e)
      ok, e = pcall(function()
        local count_ = s:using("default"):delete(items)
        return count_
      end)
      assert.is_false(ok)
      assert.matches("session_spec%.lua:%d+: fsdb: delete needs a where table", e)
      s:close()
    end)
  end)

  describe("scoped sessions", function()
    it("the same session within a scope, a different one across scopes; remove closes it", function()
      local scope = "a"
      local made = 0
      local registry = session.scoped(function()
        made = made + 1
        return session.new(engine)
      end, function() return scope end)
      local a = registry()
      assert.are.equal(a, registry())
      assert.are.equal(a, registry.get())
      scope = "b"
      assert.is_nil(registry.get())
      local b = registry()
      assert.are_not.equal(a, b)
      db.must(b, "INSERT INTO " .. tbl .. " (name) VALUES ('b')")
      registry.remove()
      assert.are.equal("fsdb.session (closed)", tostring(b))
      assert.are.equal(0, count())
      assert.are_not.equal(b, registry())
      scope = "a"
      assert.are.equal(a, registry())
      registry.remove()
      registry.remove() -- harmless
      assert.are.equal(3, made)
    end)

    it("a session closed directly is replaced on the next call", function()
      local registry = session.scoped(function() return session.new(engine) end)
      local s = registry()
      s:close()
      local s2 = registry()
      assert.are_not.equal(s, s2)
      assert.are.equal("fsdb.session (idle)", tostring(s2))
      registry.remove()
    end)

    it("scope keys are held weakly", function()
      local registry = session.scoped(function() return session.new(engine) end, function() return nil end)
      assert.matches("scope function returned nil", raised(registry))
      local key = {}
      local seen = setmetatable({}, { __mode = "k" })
      local r2 = session.scoped(function() return session.new(engine) end, function() return key end)
      seen[r2()] = true
      key = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_nil(next(seen))
    end)

    it("db:scoped and ngx_scoped (keyed by ngx.ctx)", function()
      local d = fsdb.new({ url = db.url })
      local r = d:scoped()
      assert.are.equal(r(), r())
      r.remove()
      local saved = rawget(_G, "ngx")
      local fake = { ctx = {} }
      rawset(_G, "ngx", fake)
      local ok, err = pcall(function()
        local reg = session.ngx_scoped(d)
        local first = reg()
        assert.are.equal(first, reg())
        fake.ctx = {} -- the next request
        local second = reg()
        assert.are_not.equal(first, second)
        reg.remove()
        assert.are.equal("fsdb.session (closed)", tostring(second))
      end)
      rawset(_G, "ngx", saved)
      assert(ok, err)
      rawset(_G, "ngx", nil)
      local reg = session.ngx_scoped(d)
      assert.matches("ngx_scoped needs OpenResty", raised(reg))
      rawset(_G, "ngx", saved)
      d:dispose()
    end)
  end)
end)
