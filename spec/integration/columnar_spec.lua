-- Columnar results: conn:query(sql, params, {columnar = true}) gives one
-- array per column (res[j], res.by_name[name]) instead of rows.
--
-- Every value must read exactly as the same query's keyed rows give it
-- (type included: integer vs float on Lua 5.4), over the text protocol (no
-- parameters) and the binary one (a bound parameter), on libmariadb and on
-- the protocol codec (the cqueues transport, which OpenResty's cosocket
-- transport shares). Some values are also checked against fixed
-- expectations, so that both forms going wrong the same way still fails.

local fsdb = require("fsdb")
local session = require("fsdb.session")
local db = require("helpers.db")
local cqueues = require("cqueues")

local exact = require("helpers.exact")
local INT64, same = exact.INT64, exact.same

local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected a raise")
  return tostring(err)
end

-- The columnar result `col` holds exactly the rows of `keyed` (keyed rows
-- of the same query) and of `arr` (array rows, when given).
local function same_as_rows(col, keyed, arr, label)
  assert.are.same(keyed.columns, col.columns)
  assert.are.equal(#keyed.columns, #col)
  local seen = {}
  for j, name in ipairs(col.columns) do
    local column = col[j]
    assert.are.equal("table", type(column), label .. ": column " .. j)
    assert.are.equal(#keyed, #column, label .. ": rows in column " .. name)
    if not seen[name] then
      assert.are.equal(column, col.by_name[name], label .. ": by_name." .. name)
      seen[name] = true
    end
    for i = 1, #keyed do
      same(keyed[i][name], column[i], ("%s: row %d column %s"):format(label, i, name))
      if arr then same(arr[i][j], column[i], ("%s: array row %d column %d"):format(label, i, j)) end
    end
  end
end

local ZEROS = "a\0b\0\0c\0"

for _, transport in ipairs({ "libmariadb", "cqueues" }) do
  describe(("columnar results #mariadb (%s)"):format(transport), function()
    local engine, conn, t

    setup(function()
      engine = db.engine({ transport = transport })
      conn = assert(engine:connect())
      db.must(conn, "SET time_zone = '+00:00'")
      t = db.unique("columnar")
      db.must(conn, "CREATE TABLE " .. t .. [[ (
        id INT PRIMARY KEY, i INT, big BIGINT, ubig BIGINT UNSIGNED, tiny TINYINT,
        num DECIMAL(30, 10), dbl DOUBLE, flt FLOAT, d DATE, dt DATETIME(6), tm TIME(3),
        ts TIMESTAMP(2) NULL, vc VARCHAR(50), bl BLOB, y YEAR, bits BIT(12)) CHARACTER SET utf8mb4]])
      db.must(conn, "INSERT INTO " .. t .. [[ VALUES
        (1, -2147483648, -9223372036854775808, 18446744073709551615, -128,
         '-12345678901234567890.0123456789', 1.5e300, 1.1, '1000-01-01', '2024-02-29 23:59:59.123456',
         '-838:59:59.000', '2001-02-03 04:05:06.78', 'héllo', ?, 1901, b'101010101010'),
        (2, 2147483647, 9007199254740993, 9223372036854775808, 127,
         '0.0000000001', -0.0, -3.25, '9999-12-31', '1000-01-01 00:00:00', '00:00:00.5',
         '2038-01-19 03:14:07', '', '', 2155, b'0'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (4, 0, 0, 0, 0, '1', 2.5, 0, '2000-01-01', '2000-01-01 00:00:00.000001', '12:34:56.789',
         NULL, 'x', 'plain', 2000, b'1')]], ZEROS)
    end)

    teardown(function()
      if conn then
        conn:execute("DROP TABLE IF EXISTS " .. t)
        conn:close()
      end
      if engine then engine:dispose() end
    end)

    it("every type reads as keyed and array rows give it, text and binary protocol", function()
      local sql = "SELECT * FROM " .. t .. " ORDER BY id"
      local text = assert(conn:query(sql, nil, { columnar = true }))
      same_as_rows(text, assert(conn:query(sql)), assert(conn:query(sql, nil, { array = true })), "text")
      local psql = "SELECT * FROM " .. t .. " WHERE id > ? ORDER BY id"
      local bin = assert(conn:query(psql, { 0 }, { columnar = true }))
      same_as_rows(bin, assert(conn:query(psql, { 0 })), assert(conn:query(psql, { 0 }, { array = true })), "binary")
      -- and the protocols agree with each other
      same_as_rows(bin, assert(conn:query(sql)), nil, "binary vs text rows")
      for _, res in ipairs({ text, bin }) do
        local c = res.by_name
        assert.are.equal(4, #c.id)
        same(ZEROS, c.bl[1], "blob with zero bytes")
        same("", c.bl[2], "empty blob")
        same("18446744073709551615", c.ubig[1], "BIGINT UNSIGNED max")
        same("9223372036854775808", c.ubig[2], "2^63")
        same(INT64 and math.mininteger or "-9223372036854775808", c.big[1], "BIGINT min")
        same(INT64 and 9007199254740993 or "9007199254740993", c.big[2], "2^53 + 1")
        same(-2147483648, c.i[1], "INT min")
        same("-12345678901234567890.0123456789", c.num[1], "DECIMAL")
        same(1.5e300, c.dbl[1], "DOUBLE")
        same(1.1, c.flt[1], "FLOAT")
        same("2024-02-29 23:59:59.123456", c.dt[1], "DATETIME(6)")
        same("-838:59:59.000", c.tm[1], "TIME(3)")
        same("2001-02-03 04:05:06.78", c.ts[1], "TIMESTAMP(2)")
        same("héllo", c.vc[1], "VARCHAR")
        for j = 2, #res.columns do
          same(fsdb.null, res[j][3], "NULL in " .. res.columns[j])
        end
        same(4, c.id[4], "id")
      end
    end)

    it("a result without rows has every column, each an empty array", function()
      local sql = "SELECT id, vc, dbl FROM " .. t .. " WHERE id < 0"
      for _, res in ipairs({
        assert(conn:query(sql, nil, { columnar = true })),
        assert(conn:query(sql .. " AND id > ?", { -10 }, { columnar = true })),
      }) do
        assert.are.same({ "id", "vc", "dbl" }, res.columns)
        assert.are.equal(3, #res)
        for j, name in ipairs(res.columns) do
          assert.are.same({}, res[j])
          assert.are.equal(res[j], res.by_name[name])
        end
      end
    end)

    it("of duplicate column names by_name keeps the first", function()
      for _, res in ipairs({
        assert(conn:query("SELECT 1 AS a, 2 AS b, 3 AS a", nil, { columnar = true })),
        assert(conn:query("SELECT ? AS a, 2 AS b, 3 AS a", { 1 }, { columnar = true })),
      }) do
        assert.are.same({ "a", "b", "a" }, res.columns)
        assert.are.equal(res[1], res.by_name.a)
        same(1, res.by_name.a[1], "first a")
        same(3, res[3][1], "second a")
      end
    end)

    it("a statement without a result set returns the OK table", function()
      local res = assert(conn:query("UPDATE " .. t .. " SET i = i + 1 WHERE id = ?", { -1 }, { columnar = true }))
      assert.are.equal(0, res.affected_rows)
      assert.is_nil(res[1])
      assert.is_nil(res.by_name)
      res = assert(conn:query("DO 1", nil, { columnar = true }))
      assert.are.equal(0, res.affected_rows)
      assert.is_nil(res.columns)
    end)

    it("10,000 rows: every column as long as the result, the collector running after", function()
      local sql = "SELECT seq, seq * 2 AS twice, CONCAT('r', seq) AS name, IF(seq % 7 = 0, NULL, seq / 4) AS q "
        .. "FROM seq_1_to_10000"
      local text = assert(conn:query(sql, nil, { columnar = true }))
      assert.is_true(collectgarbage("isrunning"))
      local bin = assert(conn:query(sql .. " WHERE seq >= ?", { 1 }, { columnar = true }))
      assert.is_true(collectgarbage("isrunning"))
      local keyed = assert(conn:query(sql))
      for _, res in ipairs({ text, bin }) do
        local sum, nulls = 0, 0
        for j = 1, 4 do assert.are.equal(10000, #res[j]) end
        for i = 1, 10000 do
          sum = sum + res[1][i] + res[2][i]
          if res.by_name.q[i] == fsdb.null then nulls = nulls + 1 end
        end
        assert.are.equal(3 * 10000 * 10001 / 2, sum)
        assert.are.equal(1428, nulls)
        same("r10000", res.by_name.name[10000], "last name")
        same_as_rows(res, keyed, nil, "10k")
      end
    end)

    it("a collector the application stopped stays stopped", function()
      collectgarbage("stop")
      local ok, res = pcall(conn.query, conn, "SELECT seq FROM seq_1_to_3000", nil, { columnar = true })
      local running = collectgarbage("isrunning")
      collectgarbage("restart")
      assert(ok, res)
      assert.is_false(running)
      assert.are.equal(3000, #res[1])
    end)

    it("a server error after rows have come returns nil, err and restarts the collector", function()
      -- The statement times out while its rows are being sent.
      local sql = "SET STATEMENT max_statement_time = 0.2 FOR "
        .. "SELECT a.seq AS a, b.seq AS b FROM seq_1_to_100000 a, seq_1_to_100000 b"
      for _, params in ipairs({ false, { 0 } }) do
        local res, err, errno = conn:query(params and sql .. " WHERE a.seq > ?" or sql, params or nil, { columnar = true })
        assert.is_nil(res)
        assert.are.equal(1969, errno, err)
        assert.is_true(collectgarbage("isrunning"))
        same(1, assert(conn:query("SELECT 1 AS one", nil, { columnar = true })).by_name.one[1], "after the error")
      end
    end)

    it("the same form through the engine and a session", function()
      local res = assert(engine:query("SELECT 1 AS one, 'two' AS two", nil, { columnar = true }))
      assert.are.same({ "one", "two" }, res.columns)
      assert.are.same({ 1 }, res.by_name.one)
      local s = session.new(engine)
      res = assert(s:query("SELECT id FROM " .. t .. " WHERE id <= ? ORDER BY id", { 2 }, { columnar = true }))
      assert.are.same({ 1, 2 }, res[1])
      s:close()
    end)

    describe("misuse raises", function()
      it("columnar together with array", function()
        assert.matches("'columnar' and 'array' exclude each other",
          raised(conn.query, conn, "SELECT 1", nil, { columnar = true, array = true }))
        assert.matches("'columnar' and 'array' exclude each other",
          raised(conn.query, conn, "SELECT ?", { 1 }, { columnar = true, array = true }))
      end)

      it("a value that is not a boolean", function()
        for _, v in ipairs({ "yes", 1, 0, {} }) do
          assert.matches("bad value for query option 'columnar' %(expected a boolean%)",
            raised(conn.query, conn, "SELECT 1", nil, { columnar = v }))
          -- array and reuse alike: a "no" must not turn them on
          assert.matches("bad value for query option 'array' %(expected a boolean%)",
            raised(conn.query, conn, "SELECT 1", nil, { array = v }))
          assert.matches("bad value for query option 'reuse' %(expected a boolean%)",
            raised(conn.query_rows, conn, "SELECT 1", nil, { reuse = v }))
        end
      end)

      it("streaming", function()
        assert.matches("'columnar' is for buffered results",
          raised(conn.query_rows, conn, "SELECT 1", nil, { columnar = true }))
        assert.matches("'columnar' is for buffered results",
          raised(conn.query_rows, conn, "SELECT ?", { 1 }, { columnar = true }))
        -- and the connection is still usable
        same(1, assert(conn:query("SELECT 1 AS n"))[1].n, "after the raises")
      end)

      it("columnar = false gives keyed rows", function()
        local res = assert(conn:query("SELECT 5 AS n", nil, { columnar = false }))
        same(5, res[1].n, "keyed")
        assert.is_nil(res.by_name)
      end)
    end)
  end)
end

describe("columnar results #mariadb (cqueues coroutines)", function()
  it("results read across yields, two coroutines interleaved, match keyed rows", function()
    local e = db.engine({ transport = "cqueues", pool_size = 2 })
    local loop = cqueues.new()
    local done = 0
    for w = 1, 2 do
      loop:wrap(function()
        local conn = assert(e:connect())
        local sql = "SELECT seq, REPEAT('x', seq % 50) AS pad, ? AS w FROM seq_1_to_5000"
        for _ = 1, 3 do
          local col = assert(conn:query(sql, { w }, { columnar = true }))
          same_as_rows(col, assert(conn:query(sql, { w })), nil, "coroutine " .. w)
          assert.are.equal(5000, #col.by_name.w)
          assert.are.equal(w, col.by_name.w[5000])
        end
        conn:close()
        done = done + 1
      end)
    end
    local ok, err = loop:loop()
    e:dispose()
    assert(ok, err)
    assert.are.equal(2, done)
  end)
end)
