-- fsdb.sqltext without a server: what each value and name becomes, what is
-- refused, and that the text means the same under every charset a client
-- may read it in and with or without NO_BACKSLASH_ESCAPES (the server side
-- of those claims is spec/integration/charset_spec.lua).
local sqltext = require("fsdb.sqltext")
local core = require("fsdb.core")

local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^.-:%d+: ", ""))
end

local NBE = sqltext.dialect{ sql_mode = "STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", portable = false }
local ONLINE = sqltext.dialect{ portable = false }

describe("fsdb.sqltext", function()
  describe("literal", function()
    local cases = {
      { nil, "NULL" },
      { core.null, "NULL" },
      { true, "1" },
      { false, "0" },
      { 42, "42" },
      { -7, "-7" },
      { 0.5, "0.5" },
      { 0.1, "0.1" },
      { 1 / 3, "0.3333333333333333" },
      { 2.0, "2" },
      { 1e300, "1e+300" },
      { -2.5e-10, "-2.5e-10" },
      { "", "''" },
      { "plain text 123", "'plain text 123'" },
      { "it's", "'it''s'" },
      { "''", "''''''" },
      -- Anything else is hex: the digits read the same in every charset and
      -- SQL mode.
      { "C:\\temp", "_utf8mb4 X'433A5C74656D70'" },
      { "\\", "_utf8mb4 X'5C'" },
      { "a\nb", "_utf8mb4 X'610A62'" },
      { "\0", "_utf8mb4 X'00'" },
      { "\26", "_utf8mb4 X'1A'" },
      { "\127", "_utf8mb4 X'7F'" },
      { "é", "_utf8mb4 X'C3A9'" },
      { "中`", "_utf8mb4 X'E4B8AD60'" },
      -- Not UTF-8: a binary string, stored byte for byte or refused by a
      -- text column in strict mode.
      { "\191\92", "X'BF5C'" },
      { "\255", "X'FF'" },
      { "\237\160\128", "X'EDA080'" },       -- a surrogate
      { "\192\128", "X'C080'" },             -- an overlong NUL
      { "\244\144\128\128", "X'F4908080'" }, -- above U+10FFFF
    }
    for _, c in ipairs(cases) do
      it(("%q → %s"):format(tostring(c[1]), c[2]), function()
        assert.are.equal(c[2], sqltext.literal(c[1]))
        assert.are.equal(c[2], sqltext.literal(c[1], NBE))
      end)
    end

    it("writes integers exactly", function()
      if math.type then
        assert.are.equal("9223372036854775807", sqltext.literal(math.maxinteger))
        assert.are.equal("-9223372036854775808", sqltext.literal(math.mininteger))
      end
      assert.are.equal("9007199254740991", sqltext.literal(2 ^ 53 - 1))
    end)

    it("round-trips every float it writes", function()
      for _, v in ipairs({ 0.1, 1 / 3, 2 ^ 60 + 0.0, 1e-300, 123456.789, -0.0001, 2 ^ -1074 }) do
        assert.are.equal(v, tonumber(sqltext.literal(v)))
      end
    end)

    it("refuses NaN, infinities and values that have no literal", function()
      assert.matches("cannot be written as a SQL value", raised(sqltext.literal, 0 / 0))
      assert.matches("cannot be written as a SQL value", raised(sqltext.literal, math.huge))
      assert.matches("cannot be written as a SQL value", raised(sqltext.literal, -math.huge))
      assert.matches("got table", raised(sqltext.literal, {}))
      assert.matches("got function", raised(sqltext.literal, print))
    end)

    it("never writes a byte outside printable ASCII, nor a backslash", function()
      for b = 0, 255 do
        for _, s in ipairs({ string.char(b), "x" .. string.char(b) .. "'", string.char(b, 92, 39) }) do
          local lit = sqltext.literal(s)
          assert.is_nil(lit:find("[^\32-\126]"), lit)
          assert.is_nil(lit:find("\\", 1, true), lit)
        end
      end
    end)
  end)

  describe("number", function()
    it("writes C-locale text and refuses what is not a finite number", function()
      assert.are.equal("0.5", sqltext.number(0.5))
      assert.are.equal("10", sqltext.number(10))
      assert.matches("cannot be written as a SQL number", raised(sqltext.number, 0 / 0))
      assert.matches("cannot be written as a SQL number", raised(sqltext.number, "1"))
      assert.is_nil(sqltext.number_text(math.huge))
    end)
  end)

  describe("ident", function()
    local cases = {
      { "products", "`products`" },
      { "order", "`order`" },
      { "we`ird", "`we``ird`" },
      { "x`; DROP TABLE t; --", "`x``; DROP TABLE t; --`" },
      { "a b", "`a b`" },
      { "café", "`café`" },
      { "中中", "`中中`" },
    }
    for _, c in ipairs(cases) do
      it(("%q → %s"):format(c[1], c[2]), function()
        assert.are.equal(c[2], sqltext.ident(c[1]))
        assert.are.equal(c[2], sqltext.ident(c[1], ONLINE))
      end)
    end

    local bad = {
      { 1, "an identifier must be a string, got number" },
      { "", "an identifier must not be empty" },
      { "a\0b", "an identifier cannot contain a NUL byte" },
      { "a\255", "well%-formed UTF%-8" },
      { "\191`", "well%-formed UTF%-8" },
      { "🛋", "without characters above U%+FFFF" },
    }
    for _, c in ipairs(bad) do
      it("refuses " .. ("%q"):format(tostring(c[1])), function()
        assert.matches(c[2], raised(sqltext.ident, c[1]))
        assert.matches(c[2], raised(sqltext.ident, c[1], ONLINE))
      end)
    end

    -- 中 is E4 B8 AD: a gbk reader takes AD and the closing backtick (60) for
    -- one character, and the name does not end where the server's does.
    local unsafe = {
      { "中", "gbk" },
      { "x中y", "gbk" },
      { "Ølstrup", "sjis/cp932" },    -- C3 98 6C: 98 6C is one sjis character
      { "中``", "gbk" },
    }
    for _, c in ipairs(unsafe) do
      it(("refuses %q for --sql (a %s reader would run past it) but not online"):format(c[1], c[2]), function()
        local msg = raised(sqltext.ident, c[1])
        assert.matches("cannot be written for %-%-sql", msg)
        assert.matches(c[2], msg, 1, true)
        assert.is_string(sqltext.ident(c[1], ONLINE))
      end)
    end

    it("refuses non-ASCII names on a connection that is not UTF-8", function()
      local latin1 = sqltext.dialect{ charset = "latin1", portable = false }
      assert.are.equal("`plain`", sqltext.ident("plain", latin1))
      assert.matches("needs a utf8mb4 connection", raised(sqltext.ident, "café", latin1))
    end)

    it("accepts for --sql only names that every double-byte charset reads to their end", function()
      -- Every two-character name from a spread of BMP characters: the check
      -- and an independent walk over each charset agree.
      local sample = { "a", "é", "Ø", "ß", "ж", "Ω", "中", "表", "ソ", "한", "€", "ｱ" }
      local leads = {
        gbk = function(b) return b >= 0x81 and b <= 0xFE end,
        big5 = function(b) return b >= 0xA1 and b <= 0xF9 end,
        sjis = function(b) return (b >= 0x81 and b <= 0x9F) or (b >= 0xE0 and b <= 0xFC) end,
      }
      local trails = {
        gbk = function(b) return (b >= 0x40 and b <= 0x7E) or (b >= 0x80 and b <= 0xFE) end,
        big5 = function(b) return (b >= 0x40 and b <= 0x7E) or (b >= 0xA1 and b <= 0xFE) end,
        sjis = function(b) return (b >= 0x40 and b <= 0x7E) or (b >= 0x80 and b <= 0xFC) end,
      }
      local function ends_cleanly(q)
        for cs in pairs(leads) do
          local i = 1
          while i <= #q do
            local b, n = q:byte(i), q:byte(i + 1)
            if n and leads[cs](b) and trails[cs](n) then
              if n < 0x80 then return false end
              i = i + 2
            else
              i = i + 1
            end
          end
        end
        return true
      end
      local accepted, refused = 0, 0
      for _, x in ipairs(sample) do
        for _, y in ipairs(sample) do
          local name = x .. y
          local ok = pcall(sqltext.ident, name)
          assert.are.equal(ends_cleanly("`" .. name .. "`"), ok, name)
          if ok then accepted = accepted + 1 else refused = refused + 1 end
        end
      end
      assert.is_true(accepted > 0 and refused > 0)
    end)
  end)

  describe("text (COMMENT)", function()
    it("doubles quotes and keeps UTF-8 as it is", function()
      assert.are.equal("'it''s 中'", sqltext.text("it's 中"))
      assert.are.equal("'a\nb'", sqltext.text("a\nb"))
    end)
    it("writes a backslash for the connection's SQL mode", function()
      assert.are.equal("'C:\\\\temp'", sqltext.text("C:\\temp", ONLINE))
      assert.are.equal("'C:\\temp'", sqltext.text("C:\\temp", NBE))
    end)
    it("refuses what it cannot write safely", function()
      assert.matches("cannot be written for %-%-sql", raised(sqltext.text, "C:\\temp"))
      assert.matches("NUL", raised(sqltext.text, "a\0b", ONLINE))
      assert.matches("UTF%-8", raised(sqltext.text, "\191\92", ONLINE))
      assert.matches("needs a utf8mb4 connection",
        raised(sqltext.text, "é", sqltext.dialect{ charset = "latin1", portable = false }))
    end)
  end)

  describe("dialect", function()
    it("reads NO_BACKSLASH_ESCAPES from the SQL mode", function()
      assert.is_true(NBE.no_backslash_escapes)
      assert.is_false(ONLINE.no_backslash_escapes)
      assert.is_true(sqltext.dialect{ sql_mode = "no_backslash_escapes" }.no_backslash_escapes)
      assert.is_false(sqltext.dialect{ sql_mode = "NO_BACKSLASH_ESCAPES_X" }.no_backslash_escapes)
    end)
    it("refuses the charsets whose characters can hold ASCII bytes", function()
      for _, cs in ipairs({ "gbk", "big5", "sjis", "cp932", "GBK", "utf16", "ucs2", "utf32", "utf16le" }) do
        assert.matches("use utf8mb4", raised(sqltext.dialect, { charset = cs }))
        assert.is_string(sqltext.charset_problem(cs))
      end
      for _, cs in ipairs({ "utf8mb4", "utf8mb3", "latin1", "ujis", "euckr", "gb2312", "binary" }) do
        assert.is_nil(sqltext.charset_problem(cs))
        assert.are.equal(cs, sqltext.dialect{ charset = cs }.charset)
      end
    end)
    it("refuses unknown options and foreign dialects", function()
      assert.matches("unknown option 'mode'", raised(sqltext.dialect, { mode = "" }))
      assert.matches("must come from sqltext.dialect", raised(sqltext.literal, "x", {}))
      assert.matches("must come from sqltext.dialect", raised(sqltext.ident, "x", { charset = "gbk" }))
    end)
    it("is what ops.new takes as its dialect", function()
      assert.is_true(sqltext.is_dialect(ONLINE))
      assert.is_false(sqltext.is_dialect({ charset = "utf8mb4" }))
      local ops = require("fsdb.migrate.ops")
      local ok, err = pcall(ops.new, function() return true end, { dialect = { charset = "gbk" } })
      assert.is_false(ok)
      assert.matches("dialect must come from fsdb.sqltext", err)
      -- Online (not portable), a name --sql refuses is written.
      local op = ops.new(function() return true end, { dialect = ONLINE })
      op.drop_table("中")
      assert.are.equal("DROP TABLE `中`", op.statements[1])
      assert.has_error(function() ops.new(function() return true end).drop_table("中") end)
    end)
    it("starts --sql output with SET NAMES", function()
      assert.are.equal("SET NAMES utf8mb4;", sqltext.header())
      assert.are.equal("SET NAMES latin1;", sqltext.header(sqltext.dialect{ charset = "latin1" }))
    end)
  end)
end)
