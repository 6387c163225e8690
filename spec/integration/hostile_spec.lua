-- Hostile values: bytes that are not UTF-8, packets above
-- max_allowed_packet, parameter lists at and past the server's limit, NUL
-- bytes in SQL text. Each gives the server's (or fsdb's) error as the four
-- values, never a crash, a truncation or a half-stored row, and the
-- connection or the pool goes on.
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")

local unpack = table.unpack or unpack

describe("hostile values #mariadb", function()
  local engine, root
  local engines = {}

  setup(function()
    engine = db.engine({ pool_size = 2 })
    root = db.root()
    engines = { engine, root }
  end)

  teardown(function()
    for _, e in ipairs(engines) do e:dispose() end
  end)

  local function placeholders(n, sep)
    local q = {}
    for i = 1, n do q[i] = "?" end
    return table.concat(q, sep or ",")
  end

  describe("invalid UTF-8 into a utf8mb4 column under STRICT_ALL_TABLES", function()
    local conn, t

    before_each(function()
      conn = assert(engine:connect())
      db.must(conn, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
      t = db.unique("utf8")
      db.must(conn, ("CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, "
        .. "v VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)"):format(t))
      db.must(conn, ("INSERT INTO %s (v) VALUES ('kept')"):format(t))
    end)

    after_each(function()
      db.must(conn, "DROP TABLE " .. t)
      conn:close()
    end)

    -- (MariaDB 10.11 takes an encoded UTF-16 surrogate, ED A0 80, into
    -- utf8mb4: the server's choice, so it is not among these.)
    local BAD = {
      { "a lone 0xFF", "\255" },
      { "a broken two-byte sequence", "a\195(" },
      { "a code point above U+10FFFF", "\244\144\128\128" },
      { "an overlong '/'", "\192\175" },
      { "a truncated three-byte sequence", "x\226\130" },
    }

    for _, case in ipairs(BAD) do
      local name, bytes = case[1], case[2]

      it(name .. ": 1366 with the character-set hint, nothing stored (bound and literal)", function()
        local res, err, errno, sqlstate = conn:execute(("INSERT INTO %s (v) VALUES (?)"):format(t), bytes)
        h.failure(res, err, errno, sqlstate, { errno = 1366, sqlstate = "22007",
          contains = { "Incorrect string value", "hint: the text is not valid in the column's character set" } })
        res, err, errno, sqlstate = conn:execute(("INSERT INTO %s (v) VALUES ('%s')"):format(t, bytes))
        h.failure(res, err, errno, sqlstate, { errno = 1366, sqlstate = "22007" })
        local rows = db.must(conn, ("SELECT v FROM %s ORDER BY id"):format(t))
        assert.are.equal(1, #rows)
        assert.are.equal("kept", rows[1].v)
      end)
    end

    it("a multi-row insert with one bad row stores none of them", function()
      local res, err, errno = conn:execute(("INSERT INTO %s (v) VALUES (?), (?), (?)"):format(t),
        "ok 1", "bad \255", "ok 3")
      assert.is_nil(res)
      assert.are.equal(1366, errno, err)
      assert.are.equal(1, db.must(conn, ("SELECT COUNT(*) AS n FROM %s"):format(t))[1].n)
    end)

    it("valid four-byte UTF-8 round-trips byte for byte", function()
      local s = "chair \240\159\170\145 \226\130\172 \195\169"
      db.must(conn, ("INSERT INTO %s (v) VALUES (?)"):format(t), s)
      assert.are.equal(s, db.must(conn, ("SELECT v FROM %s WHERE id = 2"):format(t))[1].v)
    end)
  end)

  describe("packets above max_allowed_packet", function()
    local saved

    setup(function()
      saved = db.must(root, "SELECT @@GLOBAL.max_allowed_packet AS m")[1].m
      db.must(root, "SET GLOBAL max_allowed_packet = 1048576")
    end)

    teardown(function()
      db.must(root, "SET GLOBAL max_allowed_packet = " .. saved)
    end)

    -- fsdb knows the session's max_allowed_packet (read at connect) and
    -- refuses a statement that would exceed it before sending a byte: the
    -- server would refuse it and hang up. So: 1153 (08S01, the server's own
    -- code for it) with the packet hint, and the connection is kept.
    local function small_engine(options)
      local opts = { pool_size = 2 }
      for k, v in pairs(options or {}) do opts[k] = v end
      local e = db.engine(opts)
      engines[#engines + 1] = e
      local conn = assert(e:connect())
      assert.are.equal(1048576, db.must(conn, "SELECT @@max_allowed_packet AS m")[1].m)
      conn:close()
      return e
    end

    for _, case in ipairs({
      { "a bound parameter", "SELECT LENGTH(?) AS n", true },
      { "statement text", "SELECT LENGTH('%s') AS n", false },
    }) do
      it(case[1] .. " of 2 MB: refused before sending, with the hint; the connection goes on", function()
        local e = small_engine()
        local big = string.rep("z", 2 * 1024 * 1024)
        local conn = assert(e:connect())
        local tid = conn:thread_id()
        local res, err, errno, sqlstate
        if case[3] then
          res, err, errno, sqlstate = conn:execute(case[2], big)
        else
          res, err, errno, sqlstate = conn:execute(case[2]:format(big))
        end
        h.failure(res, err, errno, sqlstate, { errno = 1153, sqlstate = "08S01",
          contains = { "max_allowed_packet (1048576 bytes)", "hint: the packet exceeds max_allowed_packet" } })
        assert.are.equal(900 * 1024, db.must(conn, "SELECT LENGTH(?) AS n", string.rep("y", 900 * 1024))[1].n)
        assert.are.equal(tid, conn:thread_id())
        conn:close()
        assert.are.equal(0, e:status().checked_out)
        assert.are.equal(0, e:status().invalidated)
      end)
    end

    for _, mode in ipairs({ "auto", "values" }) do
    it("executemany (" .. mode .. ") splits 50 sets of 100 KB into batches under a 1 MB max_allowed_packet", function()
      local e = small_engine({ executemany_mode = mode })
      local t = db.unique("packets")
      db.must(e, ("CREATE TABLE %s (id INT PRIMARY KEY, b MEDIUMBLOB)"):format(t))
      local sets = {}
      for i = 1, 50 do sets[i] = { i, string.rep(string.char(i), 100 * 1024) } end
      local conn = assert(e:connect())
      local res, err, errno = conn:executemany(("INSERT INTO %s (id, b) VALUES (?, ?)"):format(t), sets)
      assert.is_truthy(res, tostring(err) .. " " .. tostring(errno))
      assert.are.equal(50, res.affected_rows)
      local r = db.must(conn, ("SELECT COUNT(*) AS n, SUM(LENGTH(b)) AS bytes FROM %s"):format(t))[1]
      assert.are.same({ 50, "5120000" }, { r.n, tostring(r.bytes) })
      db.must(conn, "DROP TABLE " .. t)
      conn:close()
      assert.are.equal(0, e:status().invalidated)
    end)

    it("executemany (" .. mode .. ") keeps a multi-row INSERT's text under a 1 MB max_allowed_packet", function()
      -- A 60 KB literal in the VALUES group: 50 rows of it in one
      -- statement would be 3 MB of SQL. The ids alternate numbers and
      -- strings, so "auto" cannot use array binding either.
      local e = small_engine({ executemany_mode = mode })
      local t = db.unique("packets")
      db.must(e, ("CREATE TABLE %s (id INT PRIMARY KEY, b MEDIUMBLOB)"):format(t))
      local sets = {}
      for i = 1, 50 do sets[i] = { i % 2 == 0 and i or tostring(i) } end
      local conn = assert(e:connect())
      local sql = ("INSERT INTO %s (id, b) VALUES (?, '%s')"):format(t, string.rep("z", 60 * 1024))
      local res, err, errno = conn:executemany(sql, sets)
      assert.is_truthy(res, tostring(err) .. " " .. tostring(errno))
      assert.are.equal(50, res.affected_rows)
      local r = db.must(conn, ("SELECT COUNT(*) AS n, SUM(LENGTH(b)) AS bytes FROM %s"):format(t))[1]
      assert.are.same({ 50, tostring(50 * 60 * 1024) }, { r.n, tostring(r.bytes) })
      db.must(conn, "DROP TABLE " .. t)
      conn:close()
      assert.are.equal(0, e:status().invalidated)
    end)
    end

    it("a result above max_allowed_packet is the server's NULL and warning, not a crash", function()
      local e = small_engine()
      local res = db.must(e, "SELECT REPEAT('a', 2 * 1024 * 1024) AS r")
      assert.are.equal(fsdb.null, res[1].r)
      assert.is_true(res.warnings == nil or res.warnings >= 0)
    end)
  end)

  describe("parameter lists", function()
    -- Parameters are bound without a stack slot each, so these hold on
    -- LuaJIT too (its C stack has about 8,000 slots).
    it("10,000 positional parameters in one statement (table form)", function()
      local params = {}
      for i = 1, 10000 do params[i] = i end
      local res = db.must(engine, "SELECT COUNT(*) AS n, SUM(seq) AS s FROM seq_1_to_20000 WHERE seq IN ("
        .. placeholders(10000) .. ")", params)
      assert.are.equal(10000, res[1].n)
      assert.are.equal("50005000", tostring(res[1].s))
    end)

    it("10,000 named parameters in one statement", function()
      local params, names = {}, {}
      for i = 1, 10000 do
        names[i] = ":p" .. i
        params["p" .. i] = i * 2
      end
      local res = db.must(engine, "SELECT COUNT(*) AS n FROM seq_1_to_20000 WHERE seq IN ("
        .. table.concat(names, ",") .. ")", params)
      assert.are.equal(10000, res[1].n)
    end)

    it("10,000 rows in one multi-row INSERT", function()
      local t = db.unique("many")
      db.must(engine, ("CREATE TABLE %s (v INT NOT NULL)"):format(t))
      local params = {}
      for i = 1, 10000 do params[i] = i end
      local res = db.must(engine, ("INSERT INTO %s (v) VALUES (%s)"):format(t, placeholders(10000, "),(")), params)
      assert.are.equal(10000, res.affected_rows)
      assert.are.equal(10000, db.must(engine, ("SELECT COUNT(DISTINCT v) AS n FROM %s"):format(t))[1].n)
      db.must(engine, "DROP TABLE " .. t)
    end)

    it("65,535 placeholders work; 65,536 fail cleanly with 1390 and the connection goes on", function()
      local params, params65535 = {}, {}
      for i = 1, 65536 do params[i] = i end
      for i = 1, 65535 do params65535[i] = i end
      local conn = assert(engine:connect())
      finally(function() conn:close() end)
      local sql = "SELECT COUNT(*) AS n FROM seq_1_to_70000 WHERE seq IN (%s)"
      assert.are.equal(65535, db.must(conn, sql:format(placeholders(65535)), params65535)[1].n)
      local res, err, errno, sqlstate = conn:execute(sql:format(placeholders(65536)), params)
      h.failure(res, err, errno, sqlstate, { errno = 1390, sqlstate = "HY000",
        contains = { "too many placeholders" } })
      assert.are.equal(1, db.must(conn, "SELECT ? AS x", 1)[1].x)
    end)

    it("7,000 parameters in one statement, on both runtimes", function()
      local params = {}
      for i = 1, 7000 do params[i] = i end
      local res = db.must(engine, "SELECT COUNT(*) AS n FROM seq_1_to_10000 WHERE seq IN ("
        .. placeholders(7000) .. ")", params)
      assert.are.equal(7000, res[1].n)
    end)

    it("thousands of varargs are bound on both runtimes", function()
      local n = 5000
      local params = {}
      for i = 1, n do params[i] = i end
      local sql = "SELECT COUNT(*) AS n FROM seq_1_to_10000 WHERE seq IN (" .. placeholders(n) .. ")"
      local ok, res = pcall(engine.execute, engine, sql, unpack(params))
      assert.is_true(ok, tostring(res))
      assert.are.equal(n, res[1].n)
      assert.are.equal(0, engine:status().checked_out)
    end)

    it("a parameter list with a table in it is a misuse error naming the position", function()
      assert.has_error(function() engine:execute("SELECT ? AS a, ? AS b", { 1, { 2 } }) end,
        "fsdb: bad parameter #2 (table cannot be bound; use nil, fsdb.null, boolean, number or string)")
      assert.has_error(function() engine:execute("SELECT :a AS a", { a = { { { {} } } } }) end,
        "fsdb: bad parameter :a (table cannot be bound; use nil, fsdb.null, boolean, number or string)")
      assert.are.equal(0, engine:status().checked_out)
    end)

    it("an expression nested 2,000 deep is the server's business", function()
      local deep = string.rep("(", 2000) .. "?" .. string.rep(")", 2000)
      local res, err, errno = engine:execute("SELECT " .. deep .. " + 1 AS x", 41)
      if res then
        assert.are.equal(42, res[1].x)
      else
        assert.is_number(errno, err)
        assert.matches("^fsdb: ", err)
      end
      assert.are.equal(0, engine:status().checked_out)
    end)
  end)

  describe("NUL bytes in SQL text", function()
    -- The server stops its parser at a NUL outside a literal: a syntax
    -- error, never the statement cut short at the NUL (which would run).
    for _, case in ipairs({
      { "text protocol", "SELECT 1 AS x\0 garbage", {} },
      { "prepared", "SELECT ? AS x\0 garbage", { 1 } },
      { "text, leading", "\0SELECT 1 AS x", {} },
    }) do
      it(case[1] .. ": the server's 1064, not a truncated statement", function()
        local res, err, errno, sqlstate = engine:execute(case[2], unpack(case[3]))
        h.failure(res, err, errno, sqlstate, { errno = 1064, sqlstate = "42000" })
        assert.are.equal(0, engine:status().checked_out)
      end)
    end

    it("a NUL inside a string literal is kept, text and prepared", function()
      assert.are.equal("a\0b", db.must(engine, "SELECT 'a\0b' AS x")[1].x)
      local res = db.must(engine, "SELECT 'a\0b' AS x, ? AS y", "c\0d")
      assert.are.equal("a\0b", res[1].x)
      assert.are.equal("c\0d", res[1].y)
    end)

    it("a NUL inside a comment does not hide a placeholder count mismatch", function()
      local ok, err = pcall(engine.execute, engine, "SELECT ? AS x /* \0 ? */", 1)
      assert.is_true(ok, tostring(err))
      assert.is_table(err)
      assert.are.equal(1, err[1].x)
    end)

    it("a NUL in a bound string is data, byte for byte", function()
      local s = "\0\1\0\255\0"
      local res = db.must(engine, "SELECT ? AS s, LENGTH(?) AS n", s, s)
      assert.are.equal(s, res[1].s)
      assert.are.equal(5, res[1].n)
    end)
  end)
end)
