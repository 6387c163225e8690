--- The worker-thread side of the OpenResty example.
--
-- ngx.run_worker_thread("fsdb", "fsdb_thread", "call", op, args) runs
-- call(op, args) on a thread of nginx's thread pool, inside a separate Lua
-- VM that the Lua module keeps in a per-worker pool of VMs
-- (lua_worker_thread_vm_pool_size). That VM:
--   * shares nothing with the request's VM: arguments and results are
--     copied, and only nil, booleans, numbers, strings and tables of those
--     cross (no functions, no userdata such as sessions or connections);
--   * has almost no `ngx` API, so this module uses none;
--   * runs one call at a time, but not always on the same OS thread.
--
-- Each VM has its own fsdb engine (and so its own connection pool), made
-- on the first call from DATABASE_URL (listed with `env` in nginx.conf).
-- A call is one unit of work: a session is opened, used and closed inside
-- the call, so nothing is left open between calls; the response body is
-- turned into JSON here, off the event loop.

local fsdb = require("fsdb")
local work = require("fsdb_shop_work")

local _M = {}

local db -- this VM's engines (one pool per VM)

local function get_db()
  if not db then
    db = fsdb.new{ url = os.getenv("DATABASE_URL"), engine_options = work.engine_options() }
  end
  return db
end

local function pack(...)
  return { n = select("#", ...), ... }
end

--- Runs work[op](session, args) and returns plain values:
---   "ok", conn_id, status, json_body           success or refusal
---   "db", conn_id, err, errno, sqlstate        a database failure
---   "error", conn_id, message                  a Lua error (a bug)
--- (conn_id: the server's id of the connection used, or nil.)
--- The session is closed (rolled back if still open) before returning.
-- syntax: kind, conn_id, a, b, c = fsdb_thread.call(op, args)
function _M.call(op, args)
  if not work.OPS[op] then
    return "error", nil, "unknown operation " .. tostring(op)
  end
  local made, d = pcall(get_db)
  if not made then
    return "error", nil, tostring(d)
  end
  local s = d:session()
  local meta = {}
  local r = pack(pcall(work[op], s, args or {}, meta))
  s:close()
  if not r[1] then
    return "error", meta.conn_id, tostring(r[2])
  end
  if r[2] == nil then
    return "db", meta.conn_id, r[3], r[4], r[5]
  end
  if op == "whoami" and type(r[3]) == "table" then
    r[3].pool = d.engine:status() -- this VM's pool
  end
  local encoded, body = pcall(work.to_json, r[3])
  if not encoded then
    return "error", meta.conn_id, tostring(body)
  end
  return "ok", meta.conn_id, r[2], body
end

return _M
