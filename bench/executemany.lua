-- executemany vs. single executes: 100,000 rows into one table, each run in
-- one transaction, same statement, same values: executemany with array
-- binding (MariaDB), executemany as multi-row INSERTs (executemany_mode
-- "values": what servers without array binding get), single executes.
-- Prints µs per row for each and the ratios, and checks that every run
-- stored the same rows.
--   usage: lua5.4 bench/executemany.lua   (FSDB_TEST_URL set by bench/run)
local fsdb = require("fsdb")
local now = require("fsdb_testhelper").now

local N = tonumber(arg and arg[1]) or 100000
local url = assert(os.getenv("FSDB_TEST_URL"), "FSDB_TEST_URL is not set")
local engine = fsdb.engine.new(url)
local conn = assert(engine:connect())
local values_engine = fsdb.engine.new(url, { executemany_mode = "values" })
local values_conn = assert(values_engine:connect())

local function must(...)
  local r, err = conn:execute(...)
  return assert(r, err)
end

must("DROP TABLE IF EXISTS bench_many")
must("CREATE TABLE bench_many (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), "
  .. "price DECIMAL(10,2), qty INT, created DATETIME, note TEXT) ENGINE=InnoDB")

local sets = {}
for i = 1, N do
  sets[i] = { "item " .. i, (i % 1000) + 0.99, i % 50, "2026-01-01 00:00:00", (i % 5 == 0) and fsdb.null or "note" }
end
local sql = "INSERT INTO bench_many (name, price, qty, created, note) VALUES (?, ?, ?, ?, ?)"

local function checksum()
  return must("SELECT COUNT(*) AS n, SUM(CRC32(CONCAT_WS('|', name, price, qty, created, note))) AS crc FROM bench_many")[1]
end

local function timed(fn, c)
  c = c or conn
  must("TRUNCATE bench_many")
  assert(c:execute("START TRANSACTION"))
  local t0 = now()
  fn()
  assert(c:execute("COMMIT"))
  return now() - t0, checksum()
end

local t_many, sum_many = timed(function()
  assert(conn:executemany(sql, sets))
end)
local t_values, sum_values = timed(function()
  assert(values_conn:executemany(sql, sets))
end, values_conn)
local t_single, sum_single = timed(function()
  for i = 1, N do
    local s = sets[i]
    assert(conn:execute(sql, s[1], s[2], s[3], s[4], s[5]))
  end
end)

assert(sum_many.n == N and sum_values.n == N and sum_single.n == N, "row counts differ")
assert(sum_many.crc == sum_single.crc and sum_values.crc == sum_single.crc, "checksums differ")
must("DROP TABLE bench_many")
conn:close()
values_conn:close()

local runtime = jit and jit.version or _VERSION
print(("executemany  %s  %d rows: %.2f µs/row (%.3f s)"):format(runtime, N, t_many * 1e6 / N, t_many))
print(("multi-row    %s  %d rows: %.2f µs/row (%.3f s)"):format(runtime, N, t_values * 1e6 / N, t_values))
print(("single       %s  %d rows: %.2f µs/row (%.3f s)"):format(runtime, N, t_single * 1e6 / N, t_single))
print(("ratio        executemany is %.1fx faster (target: >= 3x), as multi-row INSERTs %.1fx; rows and checksums equal")
  :format(t_single / t_many, t_single / t_values))
