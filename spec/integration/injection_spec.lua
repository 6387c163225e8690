-- Parameters are data, never SQL (DESIGN.md "Executing"): hostile values are
-- stored verbatim, placeholders are only found outside quotes, backticks and
-- comments, and a string holding two statements is refused.

local fsdb = require("fsdb")
local db = require("helpers.db")

describe("injection #mariadb", function()
  local engine, conn, t

  local function table_exists()
    local r = db.must(conn, "SELECT COUNT(*) AS n FROM information_schema.tables "
      .. "WHERE table_schema = DATABASE() AND table_name = ?", t)
    return r[1].n == 1
  end

  local function count()
    return db.must(conn, "SELECT COUNT(*) AS n FROM " .. t)[1].n
  end

  local function raises(needle, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error containing: " .. needle)
    assert.is_truthy(tostring(err):find(needle, 1, true),
      ("expected an error containing %q, got %q"):format(needle, tostring(err)))
  end

  setup(function()
    engine = db.engine()
    conn = assert(engine:connect())
    t = db.unique("inj")
    db.must(conn, "CREATE TABLE " .. t .. " (id INT AUTO_INCREMENT PRIMARY KEY, "
      .. "v VARCHAR(200) CHARACTER SET utf8mb4, b VARBINARY(200))")
  end)

  teardown(function()
    if conn then
      conn:execute("DROP TABLE IF EXISTS " .. t)
      conn:close()
    end
    if engine then
      engine:dispose()
    end
  end)

  describe("hostile parameter values are stored verbatim", function()
    local values

    setup(function()
      values = {
        "'",
        "''",
        '"',
        "\\",
        "\\\\'",
        "a\0b",
        "\0",
        "it's \"quoted\" \\ and \0 NUL",
        "'; DROP TABLE " .. t .. "; --",
        "\"; DROP TABLE " .. t .. "; --",
        "\\' OR 1=1 --",
        "' OR '1'='1",
        "1; DELETE FROM " .. t,
        ":name",
        "?",
        "? :x ?",
        "SELECT :v, ? FROM dual",
        "`; DROP TABLE " .. t .. "; -- `",
        "/* ? */ -- :x\n# ?",
        "\26\r\n\t",
      }
    end)

    it("with positional parameters", function()
      for _, v in ipairs(values) do
        local ok = db.must(conn, "INSERT INTO " .. t .. " (v, b) VALUES (?, ?)", v, v)
        assert.are.equal(1, ok.affected_rows)
        local r = db.must(conn, "SELECT v, b FROM " .. t .. " WHERE id = ?", ok.insert_id)
        assert.are.equal(v, r[1].v)
        assert.are.equal(v, r[1].b)
        -- the text protocol reads the same bytes
        r = db.must(conn, "SELECT v, b FROM " .. t .. " WHERE id = " .. ok.insert_id)
        assert.are.equal(v, r[1].v)
        assert.are.equal(v, r[1].b)
        -- and the value matches itself as a parameter in WHERE
        r = db.must(conn, "SELECT COUNT(*) AS n FROM " .. t .. " WHERE b = ? AND id = ?", v, ok.insert_id)
        assert.are.equal(1, r[1].n)
      end
      assert.is_true(table_exists())
      assert.are.equal(#values, count())
    end)

    it("with :name parameters", function()
      db.must(conn, "DELETE FROM " .. t)
      for _, v in ipairs(values) do
        local ok = db.must(conn, "INSERT INTO " .. t .. " (v, b) VALUES (:v, :v)", { v = v })
        local r = db.must(conn, "SELECT v, b FROM " .. t .. " WHERE id = :id", { id = ok.insert_id })
        assert.are.equal(v, r[1].v)
        assert.are.equal(v, r[1].b)
      end
      assert.is_true(table_exists())
      assert.are.equal(#values, count())
    end)

    it("a WHERE with an injection attempt matches nothing", function()
      local r = db.must(conn, "SELECT COUNT(*) AS n FROM " .. t .. " WHERE v = ?", "x' OR '1'='1")
      assert.are.equal(0, r[1].n)
      r = db.must(conn, "SELECT COUNT(*) AS n FROM " .. t .. " WHERE v = :v", { v = "x' OR 1=1 -- " })
      assert.are.equal(0, r[1].n)
      assert.is_true(count() > 0)
    end)
  end)

  describe("placeholders are only found outside quotes, backticks and comments", function()
    it("? and :name in string literals", function()
      local r = db.must(conn, "SELECT '?' AS a, ':name' AS b, \"? :x\" AS c, 'it''s ?' AS d, 'x\\'?' AS e")
      assert.are.same({ a = "?", b = ":name", c = "? :x", d = "it's ?", e = "x'?" }, r[1])
      r = db.must(conn, "SELECT '?' AS a, ':name' AS b, ? AS c, 'it''s :x' AS d, 'x\\' ?' AS e", 5)
      assert.are.same({ a = "?", b = ":name", c = 5, d = "it's :x", e = "x' ?" }, r[1])
      r = db.must(conn, "SELECT '?' AS a, ':name' AS b, :c AS c, \":d\" AS d", { c = 6 })
      assert.are.same({ a = "?", b = ":name", c = 6, d = ":d" }, r[1])
    end)

    it("? and :name in backtick identifiers", function()
      local r = db.must(conn, "SELECT 1 AS `a?`, 2 AS `:b`, 3 AS `c``?`")
      assert.are.same({ "a?", ":b", "c`?" }, r.columns)
      r = db.must(conn, "SELECT ? AS `a?`, 2 AS `:b`", 1)
      assert.are.same({ "a?", ":b" }, r.columns)
      assert.are.equal(1, r[1]["a?"])
      r = db.must(conn, "SELECT :v AS `:v?`", { v = 9 })
      assert.are.same({ ":v?" }, r.columns)
      assert.are.equal(9, r[1][":v?"])
    end)

    it("? and :name in -- , # and /* */ comments", function()
      local r = db.must(conn, "SELECT 1 AS one -- what about ? and :x\n")
      assert.are.equal(1, r[1].one)
      r = db.must(conn, "SELECT 1 AS one # what about ? and :x")
      assert.are.equal(1, r[1].one)
      r = db.must(conn, "SELECT /* ? :x */ 1 AS one")
      assert.are.equal(1, r[1].one)
      r = db.must(conn, "SELECT ? AS a -- ? :x\n, /* ? */ 2 AS b # ?", 1)
      assert.are.same({ a = 1, b = 2 }, r[1])
      r = db.must(conn, "SELECT :a AS a /* :b ? */, 2 AS b -- :c", { a = 1 })
      assert.are.same({ a = 1, b = 2 }, r[1])
    end)

    it("':=' assignments and '12:34' in literals are not :name placeholders", function()
      local r = db.must(conn, "SELECT @fsdb_v := ? AS v, TIME('12:34:56') AS t", 1)
      assert.are.same({ t = "12:34:56", v = 1 }, r[1])
      r = db.must(conn, "SELECT @fsdb_w := :w AS w", { w = 2 })
      assert.are.same({ w = 2 }, r[1])
    end)
  end)

  describe("with sql_mode NO_BACKSLASH_ESCAPES", function()
    -- A backslash is then an ordinary character inside quotes: 'C:\' is a
    -- whole literal and the next quote opens a new one.
    local e2, c2

    setup(function()
      e2 = db.engine({ pool_size = 1 })
      c2 = assert(e2:connect())
      db.must(c2, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
    end)

    teardown(function()
      if c2 then c2:close() end
      if e2 then e2:dispose() end
    end)

    it("no placeholders: literals after one ending in a backslash", function()
      local r = db.must(c2, [[SELECT 'C:\' AS path, ':x' AS lit, '?' AS q]])
      assert.are.same({ path = "C:\\", lit = ":x", q = "?" }, r[1])
    end)

    it("a :name placeholder after such literals", function()
      local r = db.must(c2, [[SELECT 'C:\' AS path, ':x' AS lit, :y AS y]], { y = 1 })
      assert.are.same({ path = "C:\\", lit = ":x", y = 1 }, r[1])
    end)

    it("a ? placeholder after such literals", function()
      local r = db.must(c2, [[SELECT 'C:\' AS path, '?' AS lit, ? AS y]], 2)
      assert.are.same({ path = "C:\\", lit = "?", y = 2 }, r[1])
    end)

    it("hostile values are still stored verbatim", function()
      local v = "\\'; DROP TABLE " .. t .. "; --"
      local ok = db.must(c2, "INSERT INTO " .. t .. " (v) VALUES (?)", v)
      assert.are.equal(v, db.must(c2, "SELECT v FROM " .. t .. " WHERE id = ?", ok.insert_id)[1].v)
      assert.is_true(table_exists())
    end)
  end)

  describe("multiple statements in one string are refused", function()
    it("SELECT 1; SELECT 2", function()
      local res, err, errno, sqlstate = conn:execute("SELECT 1; SELECT 2")
      assert.is_nil(res)
      assert.are.equal(1064, errno)
      assert.are.equal("42000", sqlstate)
      assert.are.equal("fsdb: ", err:sub(1, 6))
      assert.is_truthy(err:find("one statement per call", 1, true), err)
      -- and the connection is still in sync
      assert.are.equal(3, db.must(conn, "SELECT 3 AS n")[1].n)
    end)

    it("INSERT …; DROP TABLE … on the text path", function()
      local before = count()
      local res, err, errno, sqlstate = conn:execute("INSERT INTO " .. t .. " (v) VALUES ('x'); DROP TABLE " .. t)
      assert.is_nil(res)
      assert.are.equal(1064, errno)
      assert.are.equal("42000", sqlstate)
      assert.are.equal("fsdb: ", err:sub(1, 6))
      assert.is_true(table_exists())
      assert.are.equal(before, count())
    end)

    it("INSERT …; DROP TABLE … on the prepared path", function()
      local before = count()
      local res, err, errno, sqlstate = conn:execute("INSERT INTO " .. t .. " (v) VALUES (?); DROP TABLE " .. t, "x")
      assert.is_nil(res)
      assert.are.equal(1064, errno)
      assert.are.equal("42000", sqlstate)
      assert.are.equal("fsdb: ", err:sub(1, 6))
      assert.is_true(table_exists())
      assert.are.equal(before, count())
    end)

    it("through engine:execute", function()
      local res, _, errno = engine:execute("SELECT 1; DROP TABLE " .. t)
      assert.is_nil(res)
      assert.are.equal(1064, errno)
      assert.is_true(table_exists())
      assert.are.equal(1, engine:status().checked_out)
    end)

    it("a trailing semicolon or comment is still one statement", function()
      assert.are.equal(1, db.must(conn, "SELECT 1 AS n;")[1].n)
      assert.are.equal(1, db.must(conn, "SELECT 1 AS n; -- done")[1].n)
    end)
  end)

  it("a placeholder without parameters raises", function()
    raises("statement has 1 placeholder but no parameters were given", conn.execute, conn, "SELECT ?")
    raises("statement has 1 placeholder but no parameters were given", conn.execute, conn, "SELECT :x")
    assert.is_true(table_exists())
    assert.are.equal(1, db.must(conn, "SELECT 1 AS n")[1].n)
  end)

  it("fsdb.null is a value like any other", function()
    local ok = db.must(conn, "INSERT INTO " .. t .. " (v) VALUES (?)", fsdb.null)
    local r = db.must(conn, "SELECT v FROM " .. t .. " WHERE id = ?", ok.insert_id)
    assert.are.equal(fsdb.null, r[1].v)
  end)
end)
