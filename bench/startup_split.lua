-- startup_split.lua — where fsdb's "process start to first query" goes,
-- wall clock from BENCH_T0 (bench/launch): interpreter start, require
-- "fsdb", engine.new, connect (TCP, handshake, session set-up), SELECT 1.
--   usage: launch lua5.4 bench/startup_split.lua   (bench/run sets the paths)
local now = require("fsdb_testhelper").now
local t0 = tonumber((assert(os.getenv("BENCH_T0"), "BENCH_T0 is not set")))
local t1 = now()
local fsdb = require("fsdb")
local t2 = now()
local engine = fsdb.engine.new((assert(os.getenv("FSDB_TEST_URL"), "FSDB_TEST_URL is not set")))
local t3 = now()
local conn = assert(engine:connect())
local t4 = now()
assert(conn:execute("SELECT 1"))
local t5 = now()
conn:close()
print(("interpreter %.3f require %.3f engine %.3f connect %.3f query %.3f total %.3f"):format(
  (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3, (t5 - t4) * 1e3, (t5 - t0) * 1e3))
