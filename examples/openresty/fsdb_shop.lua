--- The HTTP side of the OpenResty example: nginx phases, routing, the
--- mapping of fsdb errors to HTTP statuses, and the two ways of running
--- the database work (see README.md next to this file).
--
--   init_by_lua_block        { require("fsdb_shop").init{ mode = "blocking" } }
--   init_worker_by_lua_block { require("fsdb_shop").init_worker() }
--   content_by_lua_block     { require("fsdb_shop").products() }   -- etc.
--   log_by_lua_block         { require("fsdb_shop").log() }
--
-- mode = "blocking": the work runs in the request's own Lua VM on a
-- scoped session (one per request, keyed by ngx.ctx) that the log phase
-- closes. Every query blocks the worker's event loop while it runs.
--
-- mode = "cosocket": the work runs in the request's own Lua VM on the
-- non-blocking transport (engine option transport = "cosocket": fsdb's
-- protocol codec over ngx.socket.tcp), one session per request, closed at
-- the end of the content phase (cosockets are not available in the log
-- phase). A wait for the database yields to nginx's event loop.
--
-- mode = "thread": the work runs on nginx's thread pool through
-- ngx.run_worker_thread (fsdb_thread.lua), with one fsdb pool per thread
-- VM; the event loop stays free while the database works.
--
-- The units of work themselves (fsdb_shop_work.lua) are the same in both.

local fsdb = require("fsdb")
local cjson = require("cjson.safe")
local work = require("fsdb_shop_work")

local _M = {}

local cfg = {
  mode = "blocking",      -- "blocking", "cosocket" or "thread"
  thread_pool = "fsdb",   -- the `thread_pool` name in nginx.conf (thread mode)
  threads = 4,            -- calls in flight per worker (thread mode): the
                          -- pool's threads = lua_worker_thread_vm_pool_size
  thread_wait = 5,        -- seconds a request waits for a free thread VM
  expose_ids = false,     -- X-Fsdb-Conn / X-Fsdb-Worker headers (diagnostics)
}

local db              -- engines made in init_by_lua (the master)
local registry        -- scoped sessions, one per request (blocking mode)
local master_conn_id  -- CONNECTION_ID() of the master's own connection
local master_pid
local sema            -- bounds thread calls per worker (thread mode)

local function pack(...)
  return { n = select("#", ...), ... }
end

----------------------------------------------------------------------------
-- Start-up
----------------------------------------------------------------------------

--- init_by_lua: runs in the nginx master, BEFORE the workers are forked.
--- Creates the db and runs one query, so the master's pool holds a live
--- connection at fork time (the preload case of preforking servers).
--- fsdb's pool is fork-safe: each worker starts with an empty pool and
--- opens its own connections; the master's connection is never used,
--- closed or shut down by a worker.
-- syntax: fsdb_shop.init{ mode =, thread_pool =, threads =, thread_wait =, expose_ids = }
function _M.init(opts)
  for k, v in pairs(opts or {}) do
    if cfg[k] == nil then
      error("fsdb_shop.init: unknown option '" .. tostring(k) .. "'", 2)
    end
    cfg[k] = v
  end
  if cfg.mode ~= "blocking" and cfg.mode ~= "thread" and cfg.mode ~= "cosocket" then
    error("fsdb_shop.init: mode must be \"blocking\", \"cosocket\" or \"thread\", got " .. tostring(cfg.mode), 2)
  end
  if cfg.mode == "thread" and not ngx.run_worker_thread then
    error("fsdb_shop.init: this nginx Lua module has no ngx.run_worker_thread "
      .. "(needs 0.10.20+ and nginx --with-threads)", 2)
  end
  local options = work.engine_options()
  if cfg.mode == "cosocket" then
    -- Connections are cheap to hold here (no thread each): room for slow
    -- queries without making fast ones wait for the pool.
    options.transport = "cosocket"
    options.pool_size = 20
    options.max_overflow = 30
    options.pool_timeout = 5
  end
  db = fsdb.new{ url = os.getenv("DATABASE_URL"), engine_options = options }
  registry = fsdb.session.ngx_scoped(db)
  master_pid = ngx.worker.pid()
  if cfg.mode == "cosocket" then
    -- No cosockets in init_by_lua: each worker's pool connects on first use.
    ngx.log(ngx.NOTICE, "fsdb_shop: cosocket mode; each worker opens its own connections")
    return
  end
  local rows, err, errno, sqlstate = db.engine:execute("SELECT CONNECTION_ID() AS id")
  if rows then
    master_conn_id = rows[1].id
    ngx.log(ngx.NOTICE, "fsdb_shop: ", cfg.mode, " mode; the master (pid ", master_pid,
      ") holds connection ", master_conn_id, " from init_by_lua; workers start with an empty pool")
  else
    -- Not fatal: nginx starts, and requests answer 503 until the database is back.
    ngx.log(ngx.WARN, "fsdb_shop: the database did not answer in init_by_lua: ", err,
      " (errno ", tostring(errno), ", sqlstate ", tostring(sqlstate), ")")
  end
end

--- init_worker_by_lua: per-worker state.
-- syntax: fsdb_shop.init_worker()
function _M.init_worker()
  if cfg.mode == "thread" then
    sema = assert(require("ngx.semaphore").new(cfg.threads))
  end
end

--- log_by_lua: closes the request's scoped session, if one is still open
--- (rolling back what it did not commit) and returns its connections to
--- the pool. Units of work end their own transactions; this is the net
--- for a request that failed half-way.
-- syntax: fsdb_shop.log()
function _M.log()
  if cfg.mode == "blocking" and registry then
    registry.remove()
  end
end

----------------------------------------------------------------------------
-- Errors → HTTP
----------------------------------------------------------------------------

-- Deadlock and lock-wait timeout: the client may simply try again.
local RETRYABLE = { [1205] = true, [1213] = true }

-- The database cannot be reached or dropped us: too many connections,
-- server shutdown, connection killed, lost connections (Connector/C's
-- 2000-2999 and 4031, 5013, 5014), fsdb's pool timeout and closed engine.
local UNAVAILABLE = { [1040] = true, [1053] = true, [1927] = true, [4031] = true,
  [5013] = true, [5014] = true, [9002] = true, [9005] = true }

--- The HTTP status for a database failure, and the Retry-After seconds
--- (nil when the client should not retry as is).
---   1205, 1213 → 503, Retry-After 1     1062 (duplicate key) → 409
---   connection and pool errors → 503, Retry-After 5
---   anything else → 500
-- syntax: status, retry_after = fsdb_shop.http_status(errno)
function _M.http_status(errno)
  if RETRYABLE[errno] then return 503, 1 end
  if errno == 1062 then return 409 end
  if UNAVAILABLE[errno] or (type(errno) == "number" and errno >= 2000 and errno < 3000) then
    return 503, 5
  end
  return 500
end

local PUBLIC_MESSAGE = {
  [409] = "already exists",
  [500] = "internal error",
  [503] = "the database is busy or unavailable; retry later",
}

----------------------------------------------------------------------------
-- Running a unit of work
----------------------------------------------------------------------------

local function send(status, json, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  for k, v in pairs(headers) do
    ngx.header[k] = v
  end
  ngx.say(json)
end

local function in_blocking(op, args, meta)
  local s = registry() -- this request's session; the log phase closes it
  local r = pack(xpcall(work[op], debug.traceback, s, args, meta))
  if not r[1] then
    return "error", r[2]
  end
  if r[2] == nil then
    return "db", r[3], r[4], r[5]
  end
  if op == "whoami" and type(r[3]) == "table" then
    r[3].pool = db.engine:status()
  end
  local encoded, body = pcall(work.to_json, r[3])
  if not encoded then
    return "error", body
  end
  return "ok", r[2], body
end

-- cosocket mode: a session for this request only, closed before the
-- response is sent (closing returns connections with a round trip, which
-- the log phase could not do).
local function in_cosocket(op, args, meta)
  local s = db:session()
  local r = pack(xpcall(work[op], debug.traceback, s, args, meta))
  s:close()
  if not r[1] then
    return "error", r[2]
  end
  if r[2] == nil then
    return "db", r[3], r[4], r[5]
  end
  if op == "whoami" and type(r[3]) == "table" then
    r[3].pool = db.engine:status()
  end
  local encoded, body = pcall(work.to_json, r[3])
  if not encoded then
    return "error", body
  end
  return "ok", r[2], body
end

local function in_thread(op, args, meta)
  local ok, err = sema:wait(cfg.thread_wait)
  if not ok then
    return "busy", "no free worker-thread VM within " .. cfg.thread_wait .. " s: " .. tostring(err)
  end
  local r = pack(pcall(ngx.run_worker_thread, cfg.thread_pool, "fsdb_thread", "call", op, args))
  sema:post(1)
  if not r[1] then
    return "error", r[2]
  end
  if not r[2] then
    return "error", "ngx.run_worker_thread: " .. tostring(r[3])
  end
  -- r[3..]: kind, conn_id, a, b, c (see fsdb_thread.call)
  meta.conn_id = r[4]
  return r[3], r[5], r[6], r[7]
end

-- Runs work[op](session, args) in the configured mode and answers.
local function run(op, args, decorate)
  local meta = {}
  local kind, a, b, c
  if cfg.mode == "thread" then
    kind, a, b, c = in_thread(op, args, meta)
  elseif cfg.mode == "cosocket" then
    kind, a, b, c = in_cosocket(op, args, meta)
  else
    kind, a, b, c = in_blocking(op, args, meta)
  end

  local headers = {}
  if cfg.expose_ids then
    headers["X-Fsdb-Mode"] = cfg.mode
    headers["X-Fsdb-Worker"] = tostring(ngx.worker.pid())
    if meta.conn_id then headers["X-Fsdb-Conn"] = tostring(meta.conn_id) end
  end

  if kind == "ok" then
    if decorate then b = decorate(b) end
    return send(a, b, headers)
  end

  if kind == "db" then
    -- The four values of the failure, never the password (fsdb's errors
    -- do not carry it; redact() is a second line of defence).
    local err, errno, sqlstate = a, b, c
    local status, retry_after = _M.http_status(errno)
    ngx.log(status >= 500 and ngx.ERR or ngx.WARN, "fsdb_shop: ", op, " -> HTTP ", status,
      ": res=nil err=", fsdb.url.redact(tostring(err)), " errno=", tostring(errno),
      " sqlstate=", tostring(sqlstate))
    if retry_after then headers["Retry-After"] = tostring(retry_after) end
    return send(status, cjson.encode({ error = PUBLIC_MESSAGE[status] }), headers)
  end

  if kind == "busy" then
    ngx.log(ngx.WARN, "fsdb_shop: ", op, " -> HTTP 503: ", a)
    headers["Retry-After"] = "1"
    return send(503, cjson.encode({ error = PUBLIC_MESSAGE[503] }), headers)
  end

  ngx.log(ngx.ERR, "fsdb_shop: ", op, " -> HTTP 500: ", fsdb.url.redact(tostring(a)))
  return send(500, cjson.encode({ error = PUBLIC_MESSAGE[500] }), headers)
end

local function refuse(status, msg, allow)
  if allow then ngx.header["Allow"] = allow end
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode({ error = msg }))
end

-- The request body as a JSON object, or nil after answering 400/413.
local function json_body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if not data then
    if ngx.req.get_body_file() then
      refuse(413, "request body too large")
    else
      refuse(400, "a JSON body is required")
    end
    return nil
  end
  local t = cjson.decode(data)
  if type(t) ~= "table" then
    refuse(400, "the body must be a JSON object")
    return nil
  end
  return t
end

local function method_is(m)
  if ngx.req.get_method() ~= m then
    refuse(405, "method not allowed", m)
    return false
  end
  return true
end

----------------------------------------------------------------------------
-- Locations
----------------------------------------------------------------------------

--- GET /products[?category=&max_price=&in_stock=]
function _M.products()
  if not method_is("GET") then return end
  run("list_products", ngx.req.get_uri_args())
end

--- POST /orders {"customer_id": 1, "items": [{"product_id": 4, "quantity": 1}]}
function _M.orders()
  if not method_is("POST") then return end
  local body = json_body()
  if body then run("place_order", body) end
end

--- GET /orders/<id>
function _M.order(id)
  if not method_is("GET") then return end
  run("get_order", { id = id })
end

--- POST /customers {"name": "…", "email": "…"}
function _M.customers()
  if not method_is("POST") then return end
  local body = json_body()
  if body then run("create_customer", body) end
end

--- GET /_debug/ping — answers without the database (readiness probe).
function _M.ping()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode({ ok = true, mode = cfg.mode, master_pid = master_pid,
    worker_pid = ngx.worker.pid(), master_conn_id = master_conn_id or cjson.null }))
end

--- GET /_debug/whoami — the connection that served this request, the
--- master's connection id and this worker's (or thread VM's) pool status.
function _M.whoami()
  run("whoami", {}, function(json)
    local t = cjson.decode(json)
    if type(t) ~= "table" then return json end
    t.mode = cfg.mode
    t.master_pid = master_pid
    t.master_conn_id = master_conn_id or cjson.null
    t.worker_pid = ngx.worker.pid()
    return cjson.encode(t)
  end)
end

--- GET /_debug/slow?seconds=0.5 — one SELECT SLEEP(seconds).
function _M.slow()
  run("slow", ngx.req.get_uri_args())
end

--- POST /_debug/fail?product_id=N — writes, then fails with a Lua error.
function _M.fail()
  if not method_is("POST") then return end
  run("fail_after_write", ngx.req.get_uri_args())
end

return _M
