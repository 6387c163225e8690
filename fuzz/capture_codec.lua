-- Captures the seed corpus of fuzz_codec (fuzz/corpus/codec/): what a real
-- server sends in whole conversations over the codec transport, one file
-- per conversation (login, results of every value type through both
-- protocols, errors, prepares, pings, resets).
--
--   scripts/testdb start && . .testdb/env
--   lua5.4 fuzz/capture_codec.lua fuzz/corpus/codec
--
-- (LUA_PATH must reach lua/, LUA_CPATH the built fsdb/core.so.)
local outdir = assert(arg[1], "usage: capture_codec.lua OUTDIR")
local cq = require("fsdb.transport.cqueues")
local fsdb = require("fsdb")

local recording = {}
local tcp = cq.tcp
cq.tcp = function()
  local s = tcp()
  local receiveany = s.receiveany
  s.receiveany = function(self, n)
    local data, err = receiveany(self, n)
    if data then recording[#recording + 1] = data end
    return data, err
  end
  return s
end

local function conversation(name, fn)
  recording = {}
  local engine = fsdb.engine.new(os.getenv("FSDB_TEST_URL"), { transport = "cqueues", pool_size = 1 })
  local conn = assert(engine:connect())
  fn(conn)
  conn:close()
  engine:dispose()
  local f = assert(io.open(outdir .. "/" .. name, "wb"))
  f:write(table.concat(recording))
  f:close()
end

local TYPES = [[
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT, iu INT UNSIGNED,
  bi BIGINT, bu BIGINT UNSIGNED, de DECIMAL(30,10), f FLOAT, d DOUBLE, b BIT(8),
  dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP NULL, y YEAR,
  c CHAR(4), vc VARCHAR(20), bin BINARY(4), vb VARBINARY(8), tx TEXT, bl BLOB,
  e ENUM('a','b'), st SET('x','y'), j JSON]]
local ROW = [[(1, -128, 255, -32768, -8388608, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615, '-12345678901234567890.0123456789', 1.1,
  2.2250738585072014e-308, b'10100101', '2024-02-29', '-838:59:59.999',
  '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', 2155, 'ab', '🦊 x', 'a\0b',
  'a\0\xff', 'long text', 'blob', 'b', 'x,y', '{"k": [1, null]}')]]

conversation("results", function(conn)
  assert(conn:execute("CREATE TEMPORARY TABLE cap (id INT PRIMARY KEY, " .. TYPES .. ")"))
  assert(conn:execute("INSERT INTO cap VALUES " .. ROW))
  assert(conn:execute("INSERT INTO cap (id) VALUES (2)"))
  assert(conn:execute("SELECT * FROM cap"))
  assert(conn:execute("SELECT * FROM cap WHERE id > ?", 0))
  assert(conn:query("SELECT * FROM cap WHERE id = :id", { id = 2 }, { array = true }))
end)

conversation("errors", function(conn)
  conn:execute("SELEKT 1")
  conn:execute("SELECT * FROM no_such_table WHERE id = ?", 1)
  conn:execute("SELECT 1 FROM DUAL WHERE 1 = ?", "x")
  assert(conn:execute("SELECT 1/0 AS w, CAST('x' AS SIGNED) AS c"))
end)

conversation("commands", function(conn)
  assert(conn:ping())
  assert(conn:execute("BEGIN"))
  assert(conn:execute("CREATE TEMPORARY TABLE t2 (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))"))
  assert(conn:executemany("INSERT INTO t2 (v) VALUES (?)", { { "a" }, { "b" }, { fsdb.null } }))
  for _ in conn:rows("SELECT * FROM t2") do end
  assert(conn:execute("SELECT ? AS a, ? AS b, ? AS c, ? AS d", 1, 2.5, "s", true))
  assert(conn:execute("ROLLBACK"))
end)

conversation("empty", function(conn)
  assert(conn:execute("SELECT 1 AS a FROM DUAL WHERE 0"))
  assert(conn:execute("SELECT NULL AS n, '' AS e"))
  assert(conn:execute("DO 1"))
end)
print("captured into " .. outdir)
