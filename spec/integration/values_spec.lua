-- Values through both protocols (DESIGN.md "Values" and "Executing").
--
-- Every value is read twice: with the text protocol (conn:execute(sql)
-- without arguments) and with the binary protocol (the same SELECT with a
-- bound `id = ?`). Both reads must be identical, and equal to the exact
-- expected Lua value, type included (integer vs float on Lua 5.4).
--
-- All of it runs twice: on libmariadb (the default) and on the protocol
-- codec (the cqueues transport), so both paths give the same values.

local fsdb = require("fsdb")
local db = require("helpers.db")

local exact = require("helpers.exact")
local INT64, same = exact.INT64, exact.same

-- The expected value of an integer column holding the decimal s: a Lua
-- integer on 5.4 (a string above math.maxinteger); on LuaJIT a number
-- within ±2^53, a string beyond.
local function int(s)
  local digits = s:gsub("^%-", "")
  if INT64 then
    if #digits > 19 or (#digits == 19 and digits > "9223372036854775807" and s:sub(1, 1) ~= "-") then
      return s
    end
    return math.tointeger(tonumber(s))
  end
  if #digits > 16 or (#digits == 16 and digits > "9007199254740992") then
    return s
  end
  return tonumber(s)
end

-- Every byte value, 256 bytes.
local ALL_BYTES
do
  local t = {}
  for i = 0, 255 do
    t[#t + 1] = string.char(i)
  end
  ALL_BYTES = table.concat(t)
end

-- Both paths: Connector/C, and the codec under a socket of lua-cqueues.
for _, transport in ipairs({ "libmariadb", "cqueues" }) do
  describe(("values #mariadb (%s)"):format(transport), function()
    local engine, conn
    local tables = {}

    -- Creates a table with a unique name; dropped in teardown.
    local function create(columns)
      local name = db.unique("vals")
      tables[#tables + 1] = name
      db.must(conn, ("CREATE TABLE %s (id INT PRIMARY KEY, %s) CHARACTER SET utf8mb4"):format(name, columns))
      return name
    end

    -- Reads row `id` of `tbl` with the text and the binary protocol, checks
    -- both give the same columns and the same values, and returns the row.
    local function read(tbl, id, cols)
      local sql = ("SELECT %s FROM %s WHERE id = "):format(cols or "*", tbl)
      local text = db.must(conn, sql .. id)
      local bin = db.must(conn, sql .. "?", id)
      assert.are.equal(1, #text, "text protocol row count")
      assert.are.equal(1, #bin, "binary protocol row count")
      assert.are.same(text.columns, bin.columns)
      for _, name in ipairs(text.columns) do
        same(text[1][name], bin[1][name], ("%s row %d column %s, text vs binary"):format(tbl, id, name))
      end
      return text[1], bin[1]
    end

    -- Checks each column of row `id` against expected = { col = value, … }.
    local function expect_row(tbl, id, expected)
      local text, bin = read(tbl, id)
      for name, want in pairs(expected) do
        same(want, text[name], ("row %d column %s (text)"):format(id, name))
        same(want, bin[name], ("row %d column %s (binary)"):format(id, name))
      end
    end

    -- Every column but id of row `id` is fsdb.null, in both protocols, and
    -- the row has no holes.
    local function expect_nulls(tbl, id)
      local text, bin = read(tbl, id)
      local res = db.must(conn, ("SELECT * FROM %s WHERE id = %d"):format(tbl, id))
      assert.is_true(#res.columns > 1)
      for _, name in ipairs(res.columns) do
        if name ~= "id" then
          same(fsdb.null, text[name], ("NULL in %s (text)"):format(name))
          same(fsdb.null, bin[name], ("NULL in %s (binary)"):format(name))
        end
      end
      local arr = conn:query(("SELECT * FROM %s WHERE id = ?"):format(tbl), { id }, { array = true })
      assert.are.equal(#res.columns, #arr[1])
    end

    setup(function()
      engine = db.engine({ transport = transport })
      conn = assert(engine:connect())
      -- TIMESTAMP values are shown in the session time zone.
      db.must(conn, "SET time_zone = '+00:00'")
    end)

    teardown(function()
      if conn then
        for _, name in ipairs(tables) do
          conn:execute("DROP TABLE IF EXISTS " .. name)
        end
        conn:close()
      end
      if engine then
        engine:dispose()
      end
    end)

    describe("integers", function()
      local t

      setup(function()
        t = create([[bi BIGINT, ubi BIGINT UNSIGNED, i INT, ui INT UNSIGNED,
          mi MEDIUMINT, umi MEDIUMINT UNSIGNED, si SMALLINT, usi SMALLINT UNSIGNED,
          ti TINYINT, uti TINYINT UNSIGNED]])
        db.must(conn, "INSERT INTO " .. t .. [[ VALUES
          (1, -9223372036854775808, 0, -2147483648, 0, -8388608, 0, -32768, 0, -128, 0),
          (2, 9223372036854775807, 18446744073709551615, 2147483647, 4294967295,
              8388607, 16777215, 32767, 65535, 127, 255),
          (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (4, 9007199254740992, 9007199254740992, -1, 1, -1, 1, -1, 1, -1, 1),
          (5, 9007199254740993, 9007199254740993, 0, 0, 0, 0, 0, 0, 0, 0),
          (6, -9007199254740992, 9223372036854775807, 0, 0, 0, 0, 0, 0, 0, 0),
          (7, -9007199254740993, 9223372036854775808, 0, 0, 0, 0, 0, 0, 0, 0)]])
      end)

      it("minimum values", function()
        expect_row(t, 1, {
          bi = int("-9223372036854775808"), ubi = int("0"),
          i = int("-2147483648"), ui = int("0"),
          mi = int("-8388608"), umi = int("0"),
          si = int("-32768"), usi = int("0"),
          ti = int("-128"), uti = int("0"),
        })
      end)

      it("BIGINT min is math.mininteger on Lua 5.4 and a string on LuaJIT", function()
        local text, bin = read(t, 1, "bi")
        if INT64 then
          same(math.mininteger, text.bi, "text")
          same(math.mininteger, bin.bi, "binary")
        else
          same("-9223372036854775808", text.bi, "text")
          same("-9223372036854775808", bin.bi, "binary")
        end
      end)

      it("maximum values", function()
        expect_row(t, 2, {
          bi = int("9223372036854775807"), ubi = "18446744073709551615",
          i = int("2147483647"), ui = int("4294967295"),
          mi = int("8388607"), umi = int("16777215"),
          si = int("32767"), usi = int("65535"),
          ti = int("127"), uti = int("255"),
        })
      end)

      it("BIGINT max is math.maxinteger on Lua 5.4 and a string on LuaJIT", function()
        local text, bin = read(t, 2, "bi, ubi")
        if INT64 then
          same(math.maxinteger, text.bi, "text")
          same(math.maxinteger, bin.bi, "binary")
        else
          same("9223372036854775807", text.bi, "text")
          same("9223372036854775807", bin.bi, "binary")
        end
        same("18446744073709551615", text.ubi, "BIGINT UNSIGNED max (text)")
        same("18446744073709551615", bin.ubi, "BIGINT UNSIGNED max (binary)")
      end)

      it("small signed and unsigned values", function()
        expect_row(t, 4, { i = -1, ui = 1, mi = -1, umi = 1, si = -1, usi = 1, ti = -1, uti = 1 })
        expect_row(t, 5, { i = 0, ui = 0, mi = 0, umi = 0, si = 0, usi = 0, ti = 0, uti = 0 })
      end)

      it("2^53 is a number everywhere; 2^53+1 is exact (an integer on 5.4, a string on LuaJIT)", function()
        expect_row(t, 4, { bi = int("9007199254740992"), ubi = int("9007199254740992") })
        expect_row(t, 5, { bi = int("9007199254740993"), ubi = int("9007199254740993") })
        expect_row(t, 6, { bi = int("-9007199254740992") })
        expect_row(t, 7, { bi = int("-9007199254740993") })
        local at, above = read(t, 4, "bi"), read(t, 5, "bi")
        assert.are.equal("number", type(at.bi))
        if INT64 then
          assert.are.equal(9007199254740993, above.bi)
          assert.are.equal("integer", math.type(above.bi))
        else
          assert.are.equal("9007199254740993", above.bi)
        end
      end)

      it("BIGINT UNSIGNED up to math.maxinteger is an integer on 5.4, above it a string", function()
        if INT64 then
          expect_row(t, 6, { ubi = math.maxinteger })
        else
          expect_row(t, 6, { ubi = "9223372036854775807" })
        end
        expect_row(t, 7, { ubi = "9223372036854775808" })
      end)

      it("NULL in every integer type", function()
        expect_nulls(t, 3)
      end)

      it("bound integer parameters keep all 64 bits", function()
        if INT64 then
          db.must(conn, "INSERT INTO " .. t .. " (id, bi, ubi) VALUES (?, ?, ?)", 10, math.mininteger, math.maxinteger)
          db.must(conn, "INSERT INTO " .. t .. " (id, bi) VALUES (?, ?)", 11, 9007199254740993)
          expect_row(t, 10, { bi = math.mininteger, ubi = math.maxinteger })
          expect_row(t, 11, { bi = 9007199254740993 })
        else
          -- LuaJIT numbers cannot hold these; decimal strings can.
          db.must(conn, "INSERT INTO " .. t .. " (id, bi, ubi) VALUES (?, ?, ?)",
            10, "-9223372036854775808", "9223372036854775807")
          db.must(conn, "INSERT INTO " .. t .. " (id, bi) VALUES (?, ?)", 11, 9007199254740992)
          expect_row(t, 10, { bi = "-9223372036854775808", ubi = "9223372036854775807" })
          expect_row(t, 11, { bi = 9007199254740992 })
        end
      end)
    end)

    describe("DECIMAL", function()
      local t
      local MAX = "99999999999999999999999999999999999.999999999999999999999999999999"
      local TINY = "0.000000000000000000000000000001"
      local MIXED = "12345678901234567890123456789012345.123456789012345678901234567890"

      setup(function()
        t = create("d DECIMAL(65,30), m DECIMAL(10,2)")
        db.must(conn, "INSERT INTO " .. t .. " VALUES (1, " .. MAX .. ", 12.5), (2, -" .. MAX .. ", -0.01), "
          .. "(3, " .. TINY .. ", 0), (4, -" .. TINY .. ", 99999999.99), (5, 0, NULL), (6, NULL, NULL)")
        db.must(conn, "INSERT INTO " .. t .. " VALUES (?, ?, ?)", 7, MIXED, "-12.5")
      end)

      it("extremes come back as exact strings", function()
        expect_row(t, 1, { d = MAX, m = "12.50" })
        expect_row(t, 2, { d = "-" .. MAX, m = "-0.01" })
        expect_row(t, 3, { d = TINY, m = "0.00" })
        expect_row(t, 4, { d = "-" .. TINY, m = "99999999.99" })
        expect_row(t, 5, { d = "0.000000000000000000000000000000" })
      end)

      it("a value bound as a string is stored exactly", function()
        expect_row(t, 7, { d = MIXED, m = "-12.50" })
      end)

      it("NULL", function()
        expect_nulls(t, 6)
      end)
    end)

    describe("DOUBLE and FLOAT", function()
      local t
      local doubles = {
        [1] = { "0.1", 0.1 },
        [2] = { "1e308", 1e308 },
        [3] = { "-2.5e-300", -2.5e-300 },
        [4] = { "0.30000000000000004", 0.30000000000000004 },
        [5] = { "1.7976931348623157e308", 1.7976931348623157e308 },
        [6] = { "4.9406564584124654e-324", 4.9406564584124654e-324 },
        [7] = { "123456789.12345679", 123456789.12345679 },
        [8] = { "2", 2.0 },
      }

      setup(function()
        t = create("d DOUBLE, f FLOAT")
        for id, c in ipairs(doubles) do
          db.must(conn, ("INSERT INTO %s (id, d) VALUES (%d, %s)"):format(t, id, c[1]))
        end
        db.must(conn, "INSERT INTO " .. t .. " VALUES (9, NULL, NULL)")
        db.must(conn, "INSERT INTO " .. t .. " (id, f) VALUES (10, 1.1), (11, 3.4e38), (12, -1.5), (13, 123456.7)")
        db.must(conn, "INSERT INTO " .. t .. " (id, d) VALUES (?, ?), (?, ?), (?, ?)",
          20, 0.1 + 0.2, 21, 1 / 3, 22, math.pi)
      end)

      it("DOUBLE literals, including values that need 17 digits", function()
        for id, c in ipairs(doubles) do
          expect_row(t, id, { d = c[2] })
        end
      end)

      it("DOUBLE values bound as Lua numbers come back bit-exact", function()
        expect_row(t, 20, { d = 0.1 + 0.2 })
        expect_row(t, 21, { d = 1 / 3 })
        expect_row(t, 22, { d = math.pi })
      end)

      it("FLOAT 1.1 and 3.4e38 read the same through both protocols", function()
        expect_row(t, 10, { f = 1.1 })
        expect_row(t, 11, { f = 3.4e38 })
        expect_row(t, 12, { f = -1.5 })
      end)

      it("FLOAT that needs more than 6 significant digits reads the same through both protocols", function()
        -- read() compares the text and the binary value exactly.
        read(t, 13, "f")
      end)

      it("NULL", function()
        expect_nulls(t, 9)
      end)
    end)

    describe("dates and times", function()
      local t

      setup(function()
        t = create([[d DATE, tm TIME, t3 TIME(3), dt DATETIME, dt6 DATETIME(6),
          ts3 TIMESTAMP(3) NULL DEFAULT NULL, y YEAR]])
        db.must(conn, "INSERT INTO " .. t .. [[ VALUES
          (1, '2024-02-29', '-838:59:59', '-01:02:03.456', '2024-01-02 03:04:05',
              '2024-02-29 23:59:59.123456', '2024-06-01 12:00:00.5', 2024),
          (2, '1000-01-01', '838:59:59', '00:00:00.001', '1000-01-01 00:00:00',
              '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', 1901),
          (3, '9999-12-31', '-00:00:01', '-838:59:59', '9999-12-31 23:59:59',
              '1000-01-01 00:00:00.000001', '2000-01-01 00:00:00.01', 2155),
          (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (5, '2024-01-02', '12:34:56', '100:00:00.5', '2024-01-02 03:04:05.9',
              '2024-01-02 03:04:05', '1970-01-01 00:00:01', 2000)]])
        db.must(conn, "INSERT INTO " .. t .. " (id, dt6, tm) VALUES (?, ?, ?)", 6, "2001-02-03 04:05:06.7", "-12:00:00")
      end)

      it("DATE, TIME, DATETIME, TIMESTAMP and YEAR in MySQL's text format", function()
        expect_row(t, 1, {
          d = "2024-02-29", tm = "-838:59:59", t3 = "-01:02:03.456", dt = "2024-01-02 03:04:05",
          dt6 = "2024-02-29 23:59:59.123456", ts3 = "2024-06-01 12:00:00.500", y = 2024,
        })
        expect_row(t, 2, {
          d = "1000-01-01", tm = "838:59:59", t3 = "00:00:00.001", dt = "1000-01-01 00:00:00",
          dt6 = "9999-12-31 23:59:59.999999", ts3 = "2038-01-19 03:14:07.999", y = 1901,
        })
        expect_row(t, 3, {
          d = "9999-12-31", tm = "-00:00:01", t3 = "-838:59:59.000", dt = "9999-12-31 23:59:59",
          dt6 = "1000-01-01 00:00:00.000001", ts3 = "2000-01-01 00:00:00.010", y = 2155,
        })
      end)

      it("fractional digits follow the column, not the value", function()
        expect_row(t, 5, {
          d = "2024-01-02", tm = "12:34:56", t3 = "100:00:00.500",
          -- DATETIME(0) drops the fraction (the server truncates)
          dt = "2024-01-02 03:04:05",
          dt6 = "2024-01-02 03:04:05.000000", ts3 = "1970-01-01 00:00:01.000", y = 2000,
        })
      end)

      it("temporal values bound as strings", function()
        expect_row(t, 6, { dt6 = "2001-02-03 04:05:06.700000", tm = "-12:00:00" })
      end)

      it("NULL", function()
        expect_nulls(t, 4)
      end)
    end)

    describe("strings and other types", function()
      local t
      local EMOJI = "😀🎉 ok"
      local CJK = "漢字かな한국어"
      local MIXED = "naïve — café 😀 中文"
      local JSON = '{"a": [1, 2.5, null, true], "s": "\\u00fc 😀", "n": {"k": ""}}'

      setup(function()
        t = create([[v VARCHAR(100), tx TEXT, j JSON, ok BOOLEAN, b BIT(8),
          e ENUM('small','medium','large'), s SET('a','b','c'), bin BINARY(4), vb VARBINARY(16)]])
        db.must(conn, "INSERT INTO " .. t .. " (id, v, tx) VALUES (?, ?, ?), (?, ?, ?)",
          1, EMOJI, CJK, 2, CJK, MIXED)
        db.must(conn, "INSERT INTO " .. t .. " (id, v, tx) VALUES (3, '" .. EMOJI .. "', '" .. CJK .. "'), "
          .. "(4, '" .. CJK .. "', '" .. MIXED .. "')")
        db.must(conn, "INSERT INTO " .. t .. " (id, j, ok, b, e, s, bin, vb) VALUES "
          .. "(5, '" .. JSON:gsub("\\", "\\\\") .. "', TRUE, b'10000001', 'medium', 'c,a', 'ab', x'00FF00'), "
          .. "(6, '[]', FALSE, b'00000000', 'small', '', x'00000000', ''), "
          .. "(7, '{}', 1, b'11111111', 'large', 'a,b,c', 'abcd', 'x')")
        db.must(conn, "INSERT INTO " .. t .. " (id, j, ok, bin, vb) VALUES (?, ?, ?, ?, ?)",
          8, JSON, true, "\0\1", "\0\255\0")
        db.must(conn, "INSERT INTO " .. t .. " (id) VALUES (9)")
      end)

      it("utf8mb4 emoji and CJK inserted through bound parameters", function()
        expect_row(t, 1, { v = EMOJI, tx = CJK })
        expect_row(t, 2, { v = CJK, tx = MIXED })
      end)

      it("utf8mb4 emoji and CJK inserted as literals", function()
        expect_row(t, 3, { v = EMOJI, tx = CJK })
        expect_row(t, 4, { v = CJK, tx = MIXED })
        local r = db.must(conn, "SELECT CHAR_LENGTH(v) AS n FROM " .. t .. " WHERE id = 3")
        assert.are.equal(5, r[1].n)
      end)

      it("JSON comes back as the stored text", function()
        expect_row(t, 5, { j = JSON })
        expect_row(t, 6, { j = "[]" })
        expect_row(t, 8, { j = JSON })
      end)

      it("BOOLEAN is a TINYINT(1): 1 and 0", function()
        expect_row(t, 5, { ok = 1 })
        expect_row(t, 6, { ok = 0 })
        expect_row(t, 7, { ok = 1 })
        expect_row(t, 8, { ok = 1 })
      end)

      it("BIT(8) comes back as its byte", function()
        expect_row(t, 5, { b = "\129" })
        expect_row(t, 6, { b = "\0" })
        expect_row(t, 7, { b = "\255" })
      end)

      it("ENUM and SET come back as their text", function()
        expect_row(t, 5, { e = "medium", s = "a,c" })
        expect_row(t, 6, { e = "small", s = "" })
        expect_row(t, 7, { e = "large", s = "a,b,c" })
      end)

      it("BINARY(4) keeps its NUL padding; VARBINARY is byte-exact", function()
        expect_row(t, 5, { bin = "ab\0\0", vb = "\0\255\0" })
        expect_row(t, 6, { bin = "\0\0\0\0", vb = "" })
        expect_row(t, 7, { bin = "abcd", vb = "x" })
        expect_row(t, 8, { bin = "\0\1\0\0", vb = "\0\255\0" })
      end)

      it("NULL in every one of these types", function()
        expect_nulls(t, 9)
      end)
    end)

    describe("a 16 MiB LONGBLOB", function()
      it("holding every byte value round-trips byte-exact through both protocols", function()
        local t = create("b LONGBLOB")
        local blob = string.rep(ALL_BYTES, 65536)
        assert.are.equal(16 * 1024 * 1024, #blob)
        local ok = db.must(conn, "INSERT INTO " .. t .. " VALUES (?, ?)", 1, blob)
        assert.are.equal(1, ok.affected_rows)
        local n = db.must(conn, "SELECT LENGTH(b) AS n FROM " .. t .. " WHERE id = 1")
        assert.are.equal(#blob, n[1].n)
        local text = db.must(conn, "SELECT b FROM " .. t .. " WHERE id = 1")
        local bin = db.must(conn, "SELECT b FROM " .. t .. " WHERE id = ?", 1)
        assert.are.equal(#blob, #text[1].b)
        assert.are.equal(#blob, #bin[1].b)
        assert.is_true(text[1].b == blob, "text protocol value differs")
        assert.is_true(bin[1].b == blob, "binary protocol value differs")
      end)
    end)

    describe("NULL in every column type", function()
      it("comes back as fsdb.null, never nil", function()
        local t = create([[bi BIGINT, ubi BIGINT UNSIGNED, i INT, si SMALLINT, ti TINYINT,
          dc DECIMAL(65,30), d DOUBLE, f FLOAT, dt DATE, tm TIME, dtt DATETIME(6),
          ts TIMESTAMP(3) NULL DEFAULT NULL, y YEAR, v VARCHAR(10), tx TEXT, j JSON,
          ok BOOLEAN, b BIT(8), e ENUM('x'), s SET('x'), bin BINARY(4), lb LONGBLOB]])
        db.must(conn, "INSERT INTO " .. t .. " (id) VALUES (1)")
        expect_nulls(t, 1)
        local res = db.must(conn, "SELECT * FROM " .. t)
        assert.are.equal(23, #res.columns)
      end)
    end)

    describe("parameters", function()
      it("an integer travels as BIGINT", function()
        local r = db.must(conn, "SELECT ? AS int_value", 42)
        same(42, r[1].int_value, "42")
        r = db.must(conn, "SELECT ? + 0 AS negative_value", -7)
        same(-7, r[1].negative_value, "-7")
        if INT64 then
          r = db.must(conn, "SELECT ? AS max_value", math.maxinteger)
          same(math.maxinteger, r[1].max_value, "math.maxinteger")
        end
      end)

      it("a float travels as DOUBLE", function()
        local r = db.must(conn, "SELECT ? AS double_value", 0.1)
        same(0.1, r[1].double_value, "0.1")
        r = db.must(conn, "SELECT ? AS third_value", 1 / 3)
        same(1 / 3, r[1].third_value, "1/3")
        if INT64 then
          -- a whole float stays a float
          r = db.must(conn, "SELECT ? AS whole_float", 3.0)
          same(3.0, r[1].whole_float, "3.0")
        end
      end)

      it("a string with NUL bytes travels byte-exact", function()
        local r = db.must(conn, "SELECT ? AS string_value", "a\0b\0")
        same("a\0b\0", r[1].string_value, "a\\0b\\0")
        r = db.must(conn, "SELECT ? AS empty_value", "")
        same("", r[1].empty_value, "empty string")
      end)

      it("a boolean travels as 1 or 0", function()
        local r = db.must(conn, "SELECT ? AS t, ? AS f", true, false)
        same(1, r[1].t, "true")
        same(0, r[1].f, "false")
      end)

      it("nil and fsdb.null travel as NULL", function()
        local r = db.must(conn, "SELECT ? AS a, ? AS b, ? IS NULL AS a_null, ? IS NULL AS b_null",
          nil, fsdb.null, nil, fsdb.null)
        same(fsdb.null, r[1].a, "nil")
        same(fsdb.null, r[1].b, "fsdb.null")
        same(1, r[1].a_null, "nil IS NULL")
        same(1, r[1].b_null, "fsdb.null IS NULL")
      end)

      it("every Lua type round-trips through typed columns", function()
        local t = create("i BIGINT, d DOUBLE, s VARBINARY(16), b1 TINYINT, b0 TINYINT, n1 INT, n2 VARCHAR(5)")
        local ok = db.must(conn, "INSERT INTO " .. t .. " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          1, 42, 2.5, "x\0y", true, false, nil, fsdb.null)
        assert.are.equal(1, ok.affected_rows)
        expect_row(t, 1, { i = 42, d = 2.5, s = "x\0y", b1 = 1, b0 = 0, n1 = fsdb.null, n2 = fsdb.null })
      end)

      it("the same statement text with parameters of different types gives each its own type", function()
        -- One SQL text, so one cached prepared statement, executed with
        -- values whose result column type differs from run to run.
        local sql = "SELECT ? AS v"
        same(42, db.must(conn, sql, 42)[1].v, "integer")
        same("hello", db.must(conn, sql, "hello")[1].v, "string after integer")
        same(2.5, db.must(conn, sql, 2.5)[1].v, "float after string")
        same(7, db.must(conn, sql, 7)[1].v, "integer after float")
        same("x\0y", db.must(conn, sql, "x\0y")[1].v, "string after integer")
      end)

      it("a placeholder that is NULL on some executions and a value on others", function()
        -- One cached statement; a NULL where a value was keeps that
        -- value's bind and sends NULL (nothing of the old value leaks).
        local long = ("L"):rep(5000) -- longer strings are bound in place
        local sql = "SELECT ? AS v, ? IS NULL AS n"
        local seq = { 7, nil, "abc", fsdb.null, 2.5, nil, "abc", "a longer string", nil,
          long, nil, fsdb.null, -3, "", nil }
        for i = 1, 15 do
          local v = seq[i]
          local want = v == nil and fsdb.null or v
          local r = db.must(conn, sql, v, v)[1]
          same(want, r.v, "execution " .. i)
          same(want == fsdb.null and 1 or 0, r.n, "IS NULL, execution " .. i)
        end
        local t = create("i BIGINT, s VARCHAR(20), d DOUBLE")
        local ins = "INSERT INTO " .. t .. " VALUES (?, ?, ?, ?)"
        local rows = { { 1, 5, "x", 1.5 }, { 2, nil, nil, nil }, { 3, 6, nil, 2.5 },
          { 4, nil, "yy", fsdb.null }, { 5, 8, "zzz", 0.5 } }
        for _, r in ipairs(rows) do db.must(conn, ins, r[1], r[2], r[3], r[4]) end
        expect_row(t, 2, { i = fsdb.null, s = fsdb.null, d = fsdb.null })
        expect_row(t, 3, { i = 6, s = fsdb.null, d = 2.5 })
        expect_row(t, 4, { i = fsdb.null, s = "yy", d = fsdb.null })
        expect_row(t, 5, { i = 8, s = "zzz", d = 0.5 })
      end)

      it("a table fills :name placeholders by name", function()
        local r = db.must(conn, "SELECT :a AS a, :b AS b, :a AS a2, :nothing AS n", { a = 7, b = "x", nothing = fsdb.null })
        same(7, r[1].a, ":a")
        same("x", r[1].b, ":b")
        same(7, r[1].a2, ":a again")
        same(fsdb.null, r[1].n, ":nothing")
        assert.are.same({ "a", "b", "a2", "n" }, r.columns)
      end)

      it("a table's array part fills ? placeholders in order", function()
        local r = db.must(conn, "SELECT ? AS first, ? AS second, ? AS third", { 1, "two", true })
        same(1, r[1].first, "first")
        same("two", r[1].second, "second")
        same(1, r[1].third, "third")
      end)

      it("more than 16 parameters, positional and named", function()
        local qs, named, args, values = {}, {}, {}, {}
        for i = 1, 40 do
          qs[i] = "? AS p" .. i
          named[i] = ":n" .. i .. " AS n" .. i
          args[i] = i * 10
          values["n" .. i] = "v" .. i
        end
        local unpack = table.unpack or unpack
        local r = db.must(conn, "SELECT " .. table.concat(qs, ", "), unpack(args))
        local rt = db.must(conn, "SELECT " .. table.concat(qs, ", "), args)
        local rn = db.must(conn, "SELECT " .. table.concat(named, ", "), values)
        for i = 1, 40 do
          same(i * 10, r[1]["p" .. i], "varargs #" .. i)
          same(i * 10, rt[1]["p" .. i], "table #" .. i)
          same("v" .. i, rn[1]["n" .. i], ":n" .. i)
        end
      end)

      it(":name and table parameters work for INSERT and WHERE", function()
        local t = create("name VARCHAR(20), qty INT")
        db.must(conn, "INSERT INTO " .. t .. " VALUES (:id, :name, :qty)", { id = 1, name = "chair", qty = 4 })
        db.must(conn, "INSERT INTO " .. t .. " VALUES (?, ?, ?)", { 2, "table", 1 })
        local r = db.must(conn, "SELECT name, qty FROM " .. t .. " WHERE qty >= :min ORDER BY id", { min = 1 })
        assert.are.equal(2, #r)
        same("chair", r[1].name, "row 1")
        same(1, r[2].qty, "row 2")
      end)
    end)

    describe("row shapes", function()
      it("conn:query with {array = true} gives rows as arrays in column order", function()
        local res = assert(conn:query("SELECT 1 AS one, 'two' AS two, NULL AS three, 4.5e0 AS four", nil, { array = true }))
        assert.are.same({ "one", "two", "three", "four" }, res.columns)
        assert.are.equal(1, #res)
        local row = res[1]
        assert.are.equal(4, #row)
        same(1, row[1], "one")
        same("two", row[2], "two")
        same(fsdb.null, row[3], "three")
        same(4.5, row[4], "four")
        assert.is_nil(row.one)
      end)

      it("array rows through the binary protocol and res.columns in table order", function()
        local t = create("zeta INT, alpha VARCHAR(5), mid DOUBLE")
        db.must(conn, "INSERT INTO " .. t .. " VALUES (1, 10, 'a', 0.5), (2, 20, 'b', NULL)")
        local text = assert(conn:query("SELECT * FROM " .. t .. " ORDER BY id", nil, { array = true }))
        local bin = assert(conn:query("SELECT * FROM " .. t .. " WHERE id > ? ORDER BY id", { 0 }, { array = true }))
        for _, res in ipairs({ text, bin }) do
          assert.are.same({ "id", "zeta", "alpha", "mid" }, res.columns)
          assert.are.equal(2, #res)
          same(1, res[1][1], "id")
          same(10, res[1][2], "zeta")
          same("a", res[1][3], "alpha")
          same(0.5, res[1][4], "mid")
          same(fsdb.null, res[2][4], "NULL mid")
        end
        local keyed = assert(conn:query("SELECT * FROM " .. t .. " WHERE id = :id", { id = 2 }))
        assert.are.same({ "id", "zeta", "alpha", "mid" }, keyed.columns)
        same(20, keyed[1].zeta, "keyed zeta")
      end)

      it("an empty result still has its columns", function()
        local text = assert(conn:execute("SELECT 1 AS a, 2 AS b FROM DUAL WHERE 1 = 0"))
        local bin = assert(conn:execute("SELECT 1 AS a, 2 AS b FROM DUAL WHERE ? = 0", 1))
        assert.are.equal(0, #text)
        assert.are.equal(0, #bin)
        assert.are.same({ "a", "b" }, text.columns)
        assert.are.same({ "a", "b" }, bin.columns)
      end)
    end)

    describe("statements without rows", function()
      local t

      setup(function()
        t = db.unique("vals_ai")
        tables[#tables + 1] = t
        db.must(conn, "CREATE TABLE " .. t .. " (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) UNIQUE)")
      end)

      it("INSERT reports affected_rows, insert_id and warnings (text protocol)", function()
        local r = db.must(conn, "INSERT INTO " .. t .. " (name) VALUES ('a')")
        assert.are.same({ affected_rows = 1, insert_id = 1, warnings = 0 }, r)
        same(1, r.affected_rows, "affected_rows")
        r = db.must(conn, "INSERT INTO " .. t .. " (name) VALUES ('b'), ('c'), ('d')")
        -- insert_id is the first id of a multi-row insert
        assert.are.same({ affected_rows = 3, insert_id = 2, warnings = 0 }, r)
        assert.is_nil(r.columns)
      end)

      it("INSERT reports affected_rows, insert_id and warnings (binary protocol)", function()
        local r = db.must(conn, "INSERT INTO " .. t .. " (name) VALUES (?)", "e")
        assert.are.same({ affected_rows = 1, insert_id = 5, warnings = 0 }, r)
        same(5, r.insert_id, "insert_id")
      end)

      it("UPDATE and DELETE report the rows they changed", function()
        local r = db.must(conn, "UPDATE " .. t .. " SET name = CONCAT(name, '!') WHERE id > ?", 2)
        assert.are.same({ affected_rows = 3, insert_id = 0, warnings = 0 }, r)
        r = db.must(conn, "DELETE FROM " .. t .. " WHERE id = 5")
        assert.are.same({ affected_rows = 1, insert_id = 0, warnings = 0 }, r)
        r = db.must(conn, "DELETE FROM " .. t .. " WHERE id = ?", 999)
        assert.are.same({ affected_rows = 0, insert_id = 0, warnings = 0 }, r)
      end)

      it("warnings are counted in both protocols", function()
        local r = db.must(conn, "DROP TABLE IF EXISTS " .. db.unique("vals_missing"))
        assert.are.same({ affected_rows = 0, insert_id = 0, warnings = 1 }, r)
        r = db.must(conn, "INSERT IGNORE INTO " .. t .. " (id, name) VALUES (?, ?)", 1, "dup")
        assert.are.same({ affected_rows = 0, insert_id = 0, warnings = 1 }, r)
      end)
    end)

    describe("misuse raises", function()
      local function raises(needle, fn, ...)
        local ok, err = pcall(fn, ...)
        assert.is_false(ok, "expected an error containing: " .. needle)
        assert.is_truthy(tostring(err):find(needle, 1, true),
          ("expected an error containing %q, got %q"):format(needle, tostring(err)))
        -- and the connection is still usable afterwards
        local r = assert(conn:execute("SELECT 1 AS one"))
        assert.are.equal(1, r[1].one)
        return err
      end

      it("a parameter of a type SQL cannot take names its position", function()
        raises("bad parameter #2", conn.execute, conn, "SELECT ? AS a, ? AS b", 1, function() end)
        raises("bad parameter #2", conn.execute, conn, "SELECT ? AS a, ? AS b", 1, {})
        raises("bad parameter #2", conn.execute, conn, "SELECT ? AS a, ? AS b", { 1, {} })
        raises("bad parameter #1", conn.execute, conn, "SELECT ? AS a", coroutine.create(function() end))
      end)

      it("a named parameter of a bad type names it", function()
        raises("bad parameter :x", conn.execute, conn, "SELECT :x AS x", { x = {} })
        raises("bad parameter :x", conn.execute, conn, "SELECT :a AS a, :x AS x", { a = 1, x = print })
      end)

      it("NaN and the infinities are refused, naming the parameter", function()
        local nan, inf = 0 / 0, math.huge
        raises("bad parameter #1 (NaN cannot be stored in SQL)", conn.execute, conn, "SELECT ? AS a", nan)
        raises("bad parameter #2 (inf cannot be stored in SQL)", conn.execute, conn, "SELECT ? AS a, ? AS b", 1, inf)
        raises("bad parameter #1 (-inf cannot be stored in SQL)", conn.execute, conn, "SELECT ? AS a", { -inf })
        raises("bad parameter :x (NaN cannot be stored in SQL)", conn.execute, conn, "SELECT :a AS a, :x AS x",
          { a = 1, x = nan })
        raises("bad parameter #1 (inf cannot be stored in SQL)", conn.executemany, conn, "DO ?", { { 1 }, { inf } })
        -- finite doubles at the edges still travel
        local r = assert(conn:execute("SELECT ? AS big, ? AS small", 1.7976931348623157e308, -5e-324))
        assert.are.equal(1.7976931348623157e308, r[1].big)
        assert.is_true(r[1].small < 0 and r[1].small > -1e-300)
      end)

      it("a wrong number of parameters", function()
        raises("statement has 2 placeholders but 1 parameter was given",
          conn.execute, conn, "SELECT ? AS a, ? AS b", 1)
        raises("statement has 1 placeholder but 2 parameters were given",
          conn.execute, conn, "SELECT ? AS a", 1, 2)
        raises("statement has 2 placeholders but 3 parameters were given",
          conn.execute, conn, "SELECT ? AS a, ? AS b", { 1, 2, 3 })
        raises("statement has 0 placeholders but 1 parameter was given",
          conn.execute, conn, "SELECT 1 AS a", 1)
        raises("statement has 1 placeholder but no parameters were given",
          conn.execute, conn, "SELECT ? AS a")
      end)

      it("mixing ? and :name", function()
        raises("mixes '?' and ':name'", conn.execute, conn, "SELECT ? AS a, :b AS b", { 1, b = 2 })
        raises("mixes '?' and ':name'", conn.execute, conn, "SELECT :a AS a, ? AS b", 1, 2)
      end)

      it("a :name without a value", function()
        raises("no value for parameter :b", conn.execute, conn, "SELECT :a AS a, :b AS b", { a = 1 })
        raises("no value for parameter :a", conn.execute, conn, "SELECT :a AS a", {})
      end)

      it(":name placeholders with positional values", function()
        raises(":name placeholders; pass one table", conn.execute, conn, "SELECT :a AS a", 1)
      end)

      it("the SQL must be a string", function()
        local ok = pcall(conn.execute, conn, nil)
        assert.is_false(ok)
        ok = pcall(conn.execute, conn, {})
        assert.is_false(ok)
      end)
    end)

    it("the checks above left no connection out but this one", function()
      assert.are.equal(1, engine:status().checked_out)
    end)

  end)
end
