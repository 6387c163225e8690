-- Engine and connection lifecycle (DESIGN.md "Engine and pool",
-- "Executing"): connecting, checkout and return, closing, the dirty
-- connection returned to the pool, and the prepared-statement cache.

local fsdb = require("fsdb")
local db = require("helpers.db")

local LUA54 = _VERSION == "Lua 5.4"

local function raises(needle, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error containing: " .. needle)
  assert.is_truthy(tostring(err):find(needle, 1, true),
    ("expected an error containing %q, got %q"):format(needle, tostring(err)))
  return err
end

-- Session counters of the server's COM_STMT_* commands on conn.
local function stmt_counters(conn)
  local res = db.must(conn, "SHOW SESSION STATUS LIKE 'Com_stmt_%'")
  local t = {}
  for _, row in ipairs(res) do
    t[row.Variable_name] = tonumber(row.Value)
  end
  return t
end

describe("engine #mariadb", function()
  local tables = {}

  local function new_table(engine, columns)
    local name = db.unique("eng")
    tables[#tables + 1] = name
    db.must(engine, ("CREATE TABLE %s (%s)"):format(name, columns))
    return name
  end

  teardown(function()
    local engine = db.engine()
    for _, name in ipairs(tables) do
      engine:execute("DROP TABLE IF EXISTS " .. name)
    end
    engine:dispose()
  end)

  describe("connecting", function()
    it("over TCP", function()
      local engine = db.engine()
      local conn = assert(engine:connect())
      local info = conn:info()
      assert.is_truthy(info.host_info:find("TCP/IP", 1, true), info.host_info)
      assert.are.equal("number", type(info.thread_id))
      assert.is_truthy(info.server_version:find("MariaDB", 1, true) or info.server_version:match("^%d"))
      assert.are.equal(1, db.must(conn, "SELECT 1 AS one")[1].one)
      assert.are.equal(info.thread_id, db.must(conn, "SELECT CONNECTION_ID() AS id")[1].id)
      conn:close()
      engine:dispose()
    end)

    it("over the unix socket", function()
      assert.is_string(db.socket_url)
      local engine = db.engine(nil, db.socket_url)
      local conn = assert(engine:connect())
      local info = conn:info()
      assert.is_truthy(info.host_info:lower():find("socket", 1, true), info.host_info)
      assert.are.equal(db.db, db.must(conn, "SELECT DATABASE() AS d")[1].d)
      conn:close()
      engine:dispose()
    end)

    it("speaks utf8mb4", function()
      local engine = db.engine()
      local conn = assert(engine:connect())
      assert.are.equal("utf8mb4", conn:info().charset)
      local r = db.must(conn, "SELECT @@character_set_client AS client, @@character_set_connection AS connection, "
        .. "@@character_set_results AS results, @@collation_connection AS collation")
      assert.are.equal("utf8mb4", r[1].client)
      assert.are.equal("utf8mb4", r[1].connection)
      assert.are.equal("utf8mb4", r[1].results)
      assert.is_truthy(r[1].collation:match("^utf8mb4_"), r[1].collation)
      -- a 4-byte character survives the connection both ways
      assert.are.equal("😀", db.must(conn, "SELECT ? AS s", "😀")[1].s)
      assert.are.equal(1, db.must(conn, "SELECT CHAR_LENGTH('😀') AS n")[1].n)
      conn:close()
      engine:dispose()
    end)

    -- The test URL with more query options.
    local function with_params(params)
      return db.url .. (db.url:find("?", 1, true) and "&" or "?") .. params
    end

    it("?collation= sets the connection collation, also after a COM_RESET_CONNECTION", function()
      local function settings(conn)
        return db.must(conn, "SELECT @@character_set_connection AS cs, @@collation_connection AS coll, "
          .. "'ß' = 'ss' AS eszett_is_ss")[1]
      end
      -- Without the option: the character set's default collation
      -- (utf8mb4_general_ci on MariaDB 10.11, where 'ß' and 'ss' differ);
      -- with utf8mb4_unicode_ci they compare equal.
      local plain = db.engine()
      local pc = assert(plain:connect())
      local r = settings(pc)
      assert.are.equal("utf8mb4", r.cs)
      assert.are_not.equal("utf8mb4_unicode_ci", r.coll)
      -- A user variable carries the connection's collation: against a
      -- utf8mb4_unicode_ci column that is "Illegal mix of collations".
      local function lookup(conn)
        db.must(conn, "CREATE TEMPORARY TABLE coll_t (name VARCHAR(20)) DEFAULT CHARSET=utf8mb4 "
          .. "COLLATE utf8mb4_unicode_ci")
        db.must(conn, "INSERT INTO coll_t VALUES ('Kanapé')")
        db.must(conn, "SET @wanted = 'Kanapé'")
        return conn:execute("SELECT COUNT(*) AS n FROM coll_t WHERE name = @wanted")
      end
      local res, err, errno = lookup(pc)
      assert.is_nil(res)
      assert.are.equal(1267, errno, err)
      pc:close()
      plain:dispose()

      local engine = db.engine({ pool_size = 1, max_overflow = 0, pool_reset_on_return = "reset" },
        with_params("collation=utf8mb4_unicode_ci"))
      local conn = assert(engine:connect())
      local id = conn:thread_id()
      r = settings(conn)
      assert.are.same({ cs = "utf8mb4", coll = "utf8mb4_unicode_ci", eszett_is_ss = 1 }, r)
      assert.are.equal(1, assert(lookup(conn))[1].n)
      db.must(conn, "DROP TEMPORARY TABLE coll_t")
      db.must(conn, "SET NAMES utf8mb4 COLLATE utf8mb4_bin")
      conn:close() -- COM_RESET_CONNECTION, then the collation again
      conn = assert(engine:connect())
      assert.are.equal(id, conn:thread_id())
      assert.are.same({ cs = "utf8mb4", coll = "utf8mb4_unicode_ci", eszett_is_ss = 1 }, settings(conn))
      conn:close()
      engine:dispose()
    end)

    it("a collation of another character set, or none, fails at connect with a hint", function()
      local h = require("support.hardening")
      local engine = db.engine(nil, with_params("collation=latin1_swedish_ci"))
      local conn, err, errno, sqlstate = engine:connect()
      h.failure(conn, err, errno, sqlstate, { errno = 1253, sqlstate = "42000",
        contains = { "latin1_swedish_ci", "hint: the URL's collation option must name a collation of its charset" } })
      assert.are.equal(0, engine:status().checked_out)
      engine:dispose()
      engine = db.engine(nil, with_params("collation=utf8mb4_nonesuch_ci"))
      conn, err, errno, sqlstate = engine:connect()
      h.failure(conn, err, errno, sqlstate, { errno = 1273, sqlstate = "HY000",
        contains = { "utf8mb4_nonesuch_ci", "SHOW COLLATION" } })
      engine:dispose()
      -- Checked before any connection: only a bare name is accepted.
      raises("invalid value 'x'' for option collation", fsdb.engine.new, with_params("collation=x%27"))
    end)

    it("an unknown engine option raises naming it", function()
      raises("unknown engine option 'pool_sise'", fsdb.engine.new, db.url, { pool_sise = 5 })
      raises("'statement_cache'", fsdb.engine.new, db.url, { statement_cache = 4 })
    end)
  end)

  describe("checkout and return", function()
    it("connect and close update checked_out and idle", function()
      local engine = db.engine()
      local s = engine:status()
      assert.are.equal(0, s.checked_out)
      assert.are.equal(0, s.idle)
      local a = assert(engine:connect())
      s = engine:status()
      assert.are.equal(1, s.checked_out)
      assert.are.equal(0, s.idle)
      local b = assert(engine:connect())
      assert.are_not.equal(a:thread_id(), b:thread_id())
      s = engine:status()
      assert.are.equal(2, s.checked_out)
      assert.are.equal(0, s.idle)
      a:close()
      s = engine:status()
      assert.are.equal(1, s.checked_out)
      assert.are.equal(1, s.idle)
      b:close()
      s = engine:status()
      assert.are.equal(0, s.checked_out)
      assert.are.equal(2, s.idle)
      assert.are.equal(2, s.connects)
      -- the next checkout reuses an idle connection
      local c = assert(engine:connect())
      s = engine:status()
      assert.are.equal(1, s.checked_out)
      assert.are.equal(1, s.idle)
      assert.are.equal(2, s.connects)
      c:close()
      engine:dispose()
    end)

    it("closing twice is harmless", function()
      local engine = db.engine()
      local conn = assert(engine:connect())
      conn:close()
      assert.has_no.errors(function() conn:close() end)
      local s = engine:status()
      assert.are.equal(0, s.checked_out)
      assert.are.equal(1, s.idle)
      engine:dispose()
    end)

    it("any other use after close raises 'closed'", function()
      local engine = db.engine()
      local conn = assert(engine:connect())
      assert.is_truthy(tostring(conn):find("fsdb.conn", 1, true))
      assert.is_nil(tostring(conn):find("(closed)", 1, true))
      conn:close()
      raises("closed", conn.execute, conn, "SELECT 1")
      raises("closed", conn.execute, conn, "SELECT ?", 1)
      raises("closed", conn.query, conn, "SELECT 1", nil, { array = true })
      raises("closed", conn.info, conn)
      raises("closed", conn.ping, conn)
      raises("closed", conn.thread_id, conn)
      raises("closed", conn.in_transaction, conn)
      assert.is_truthy(tostring(conn):find("(closed)", 1, true), tostring(conn))
      assert.are.equal(0, engine:status().checked_out)
      engine:dispose()
    end)

    if LUA54 then
      it("a <close> variable returns the connection at scope exit (Lua 5.4)", function()
        local engine = db.engine()
        -- compiled at run time so that LuaJIT can parse this file
        local scoped = assert(load([[
          local engine, out = ...
          local conn <close> = assert(engine:connect())
          out.conn = conn
          out.during = engine:status().checked_out
          out.one = conn:execute("SELECT 1 AS one")[1].one
        ]], "=scoped"))
        local out = {}
        scoped(engine, out)
        assert.are.equal(1, out.during)
        assert.are.equal(1, out.one)
        assert.are.equal(0, engine:status().checked_out)
        assert.are.equal(1, engine:status().idle)
        assert.are.equal("fsdb.conn (closed)", tostring(out.conn))
        raises("closed", out.conn.execute, out.conn, "SELECT 1")

        -- also when the scope is left by an error
        local failing = assert(load([[
          local engine, out = ...
          local conn <close> = assert(engine:connect())
          out.conn = conn
          error("boom")
        ]], "=failing"))
        local ok, err = pcall(failing, engine, out)
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find("boom", 1, true))
        assert.are.equal(0, engine:status().checked_out)
        assert.is_truthy(tostring(out.conn):find("(closed)", 1, true))
        engine:dispose()
      end)
    else
      pending("a <close> variable returns the connection at scope exit (Lua 5.4 only)")
    end

    it("engine:execute checks out, runs and returns", function()
      local engine = db.engine()
      local r = assert(engine:execute("SELECT ? + 1 AS n", 41))
      assert.are.equal(42, r[1].n)
      local s = engine:status()
      assert.are.equal(0, s.checked_out)
      assert.are.equal(1, s.idle)
      r = assert(engine:execute("SELECT 2 AS n"))
      assert.are.equal(2, r[1].n)
      assert.are.equal(0, engine:status().checked_out)
      r = assert(engine:query("SELECT 3 AS n", nil, { array = true }))
      assert.are.equal(3, r[1][1])
      assert.are.equal(0, engine:status().checked_out)
      assert.are.equal(1, engine:status().connects)
      engine:dispose()
    end)

    it("a connection returned inside a transaction is rolled back", function()
      local engine = db.engine({ pool_size = 1 })
      local t = new_table(engine, "id INT PRIMARY KEY") -- InnoDB by default
      local conn = assert(engine:connect())
      local thread = conn:thread_id()
      db.must(conn, "BEGIN")
      db.must(conn, "INSERT INTO " .. t .. " VALUES (?)", 1)
      db.must(conn, "INSERT INTO " .. t .. " VALUES (2)")
      assert.is_true(conn:in_transaction())
      assert.are.equal(1, db.must(conn, "SELECT @@in_transaction AS x")[1].x)
      conn:close()

      local again = assert(engine:connect())
      -- the same server connection, now clean
      assert.are.equal(thread, again:thread_id())
      assert.is_false(again:in_transaction())
      assert.are.equal(0, db.must(again, "SELECT @@in_transaction AS x")[1].x)
      assert.are.equal(0, db.must(again, "SELECT COUNT(*) AS n FROM " .. t)[1].n)
      again:close()
      -- and seen from another connection too
      local other = db.engine()
      assert.are.equal(0, db.must(other, "SELECT COUNT(*) AS n FROM " .. t)[1].n)
      other:dispose()
      engine:dispose()
    end)
  end)

  describe("statement cache", function()
    it("the same prepared SQL 100 times", function()
      local engine = db.engine()
      local conn = assert(engine:connect())
      local before = stmt_counters(conn)
      for i = 1, 100 do
        local r = assert(conn:execute("SELECT ? * 2 AS v, ? AS s", i, "row " .. i))
        assert.are.equal(2 * i, r[1].v)
        assert.are.equal("row " .. i, r[1].s)
      end
      local after = stmt_counters(conn)
      assert.are.equal(1, after.Com_stmt_prepare - before.Com_stmt_prepare)
      assert.are.equal(100, after.Com_stmt_execute - before.Com_stmt_execute)
      conn:close()
      engine:dispose()
    end)

    for _, case in ipairs({ { size = nil, label = "the default cache (64)", evicted = 36 },
                            { size = 4, label = "statement_cache_size = 4", evicted = 96 } }) do
      it("100 different SQL texts with " .. case.label, function()
        local engine = db.engine({ statement_cache_size = case.size })
        local conn = assert(engine:connect())
        local before = stmt_counters(conn)
        for round = 1, 2 do
          for i = 1, 100 do
            local r = assert(conn:execute("SELECT ? + " .. i .. " AS v, '" .. i .. "' AS k", round))
            assert.are.equal(round + i, r[1].v)
            assert.are.equal(tostring(i), r[1].k)
          end
        end
        local after = stmt_counters(conn)
        assert.are.equal(200, after.Com_stmt_execute - before.Com_stmt_execute)
        -- the second round finds none of them cached (LRU, 100 > size)
        assert.are.equal(200, after.Com_stmt_prepare - before.Com_stmt_prepare)
        -- evicted statements are closed on the server, not leaked
        assert.are.equal(100 + case.evicted, after.Com_stmt_close - before.Com_stmt_close)
        conn:close()
        engine:dispose()
      end)
    end

    it("a prepared SELECT * sees a column added by ALTER TABLE", function()
      local engine = db.engine()
      local t = new_table(engine, "id INT PRIMARY KEY, a INT")
      local conn = assert(engine:connect())
      finally(function()
        conn:close()
        engine:dispose()
      end)
      db.must(conn, "INSERT INTO " .. t .. " VALUES (1, 10)")
      local sql = "SELECT * FROM " .. t .. " WHERE id = ?"
      local r = db.must(conn, sql, 1)
      assert.are.same({ "id", "a" }, r.columns)
      db.must(conn, "ALTER TABLE " .. t .. " ADD COLUMN b VARCHAR(10) NOT NULL DEFAULT 'new'")
      r = db.must(conn, sql, 1)
      assert.are.same({ "id", "a", "b" }, r.columns)
      assert.are.same({ id = 1, a = 10, b = "new" }, r[1])
      -- the connection is still in a usable state
      assert.are.equal(1, db.must(conn, "SELECT 1 AS one")[1].one)
      db.must(conn, "ALTER TABLE " .. t .. " DROP COLUMN a")
      r = db.must(conn, sql, 1)
      assert.are.same({ "id", "b" }, r.columns)
      assert.are.same({ id = 1, b = "new" }, r[1])
    end)

    it("whatever the cached SELECT did after ALTER TABLE, the next user gets a clean connection", function()
      local engine = db.engine({ pool_size = 1 })
      local t = new_table(engine, "id INT PRIMARY KEY, a INT")
      finally(function() engine:dispose() end)
      local conn = assert(engine:connect())
      db.must(conn, "INSERT INTO " .. t .. " VALUES (1, 10)")
      local sql = "SELECT * FROM " .. t .. " WHERE id = ?"
      db.must(conn, sql, 1)
      db.must(conn, "ALTER TABLE " .. t .. " ADD COLUMN b INT")
      conn:execute(sql, 1) -- result or failure: either way the connection goes back
      conn:close()
      assert.are.equal(0, engine:status().checked_out)
      local next_user = assert(engine:connect())
      finally(function() next_user:close() end)
      local res, err, errno = next_user:execute("SELECT 1 AS one")
      assert.is_truthy(res, ("first statement of the next user failed: %s (%s)"):format(tostring(err), tostring(errno)))
      assert.are.equal(1, res[1].one)
    end)

    it("a prepared SELECT * sees a column whose type or name ALTER TABLE changed", function()
      local engine = db.engine()
      local t = new_table(engine, "id INT PRIMARY KEY, a INT")
      local conn = assert(engine:connect())
      finally(function()
        conn:close()
        engine:dispose()
      end)
      db.must(conn, "INSERT INTO " .. t .. " VALUES (1, 10)")
      local sql = "SELECT * FROM " .. t .. " WHERE id = ?"
      assert.are.same({ id = 1, a = 10 }, db.must(conn, sql, 1)[1])
      db.must(conn, "ALTER TABLE " .. t .. " MODIFY COLUMN a VARCHAR(10)")
      db.must(conn, "UPDATE " .. t .. " SET a = 'ten'")
      local r = db.must(conn, sql, 1)
      assert.are.same({ "id", "a" }, r.columns)
      assert.are.same({ id = 1, a = "ten" }, r[1])
      db.must(conn, "ALTER TABLE " .. t .. " CHANGE COLUMN a z VARCHAR(10)")
      r = db.must(conn, sql, 1)
      assert.are.same({ "id", "z" }, r.columns)
      assert.are.same({ id = 1, z = "ten" }, r[1])
    end)
  end)
end)
