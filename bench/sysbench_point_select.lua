-- sysbench_point_select.lua — sysbench's oltp_point_select, through
-- sysbench's own driver or through fsdb (bench/sysbench runs both).
--   SB_MODE=sysbench  sysbench's script itself (/usr/share/sysbench), unchanged
--   SB_MODE=fsdb      the same events through fsdb's LuaJIT core: the same
--                     statement (prepared once, fsdb's statement cache), the
--                     same table and ids (sysbench.rand), one row per event
-- Either way the worker's CPU time (os.clock: the process's user + system
-- time) from the end of thread_init to thread_done is printed as
-- "cpu_seconds", and the rows fsdb received as "rows", so that start-up,
-- connecting and preparing are left out of the per-event figure.
local mode = os.getenv("SB_MODE") or "sysbench"

-- Options (tables, table_size), thread_init, event, thread_done: sysbench's own.
require("oltp_point_select")

if mode == "fsdb" then
  local fsdb = require("fsdb")
  local url = assert(os.getenv("FSDB_TEST_URL"), "FSDB_TEST_URL is not set")
  -- Plain TCP, as sysbench's driver (--mysql-ssl=off).
  url = url .. (url:find("?", 1, true) and "&" or "?") .. "ssl_mode=DISABLED"
  local engine, conn, sql
  local rows = 0
  local uniform, default = sysbench.rand.uniform, sysbench.rand.default

  function thread_init()
    engine = fsdb.engine.new(url)
    conn = assert(engine:connect())
    sql = {}
    for t = 1, sysbench.opt.tables do
      sql[t] = ("SELECT c FROM sbtest%u WHERE id=?"):format(t)
    end
  end

  -- What execute_point_selects does, one point select per event.
  function event()
    local res, err = conn:execute(sql[uniform(1, sysbench.opt.tables)], default(1, sysbench.opt.table_size))
    if not res then error(err) end
    rows = rows + #res
  end

  function thread_done()
    conn:close()
    engine:dispose()
    print("rows " .. rows)
  end
elseif mode ~= "sysbench" then
  error("SB_MODE must be sysbench or fsdb")
end

local init, done, c0 = thread_init, thread_done, nil
function thread_init(...)
  init(...)
  c0 = os.clock()
end
function thread_done(...)
  print(("cpu_seconds %.6f"):format(os.clock() - c0))
  done(...)
end
