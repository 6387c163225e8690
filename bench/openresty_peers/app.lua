--- bench/openresty_peers: one PK lookup and one 100-row listing, served
--- by fsdb (blocking, worker thread, cosocket) or lua-resty-mysql, on the
--- same table, so bench/openresty_peers.sh compares like with like.
--
--   GET /pk?id=N   SELECT id, name, price, qty, created FROM bench_items WHERE id = N
--   GET /list      the same columns, 100 rows from a given id
local cjson = require("cjson.safe")

local _M = {}

-- Connections kept per worker: the same for fsdb's cosocket pool and
-- lua-resty-mysql's keepalive pool (enough for c = 200 over 2 workers).
local POOL = 100
local THREADS = 16 -- lua_worker_thread_vm_pool_size in nginx.conf

local mode, url
local sema
local engine       -- fsdb (blocking, cosocket) in the request VM
local thread_engine -- fsdb in a worker-thread VM
local resty_opts

local PK = "SELECT id, name, price, qty, created FROM bench_items WHERE id = ?"
local LIST = "SELECT id, name, price, qty, created FROM bench_items WHERE id >= ? ORDER BY id LIMIT 100"

function _M.init(m)
  mode = m
  url = os.getenv("DATABASE_URL")
  if mode == "resty" then
    local u = assert(require("fsdb.url").parse(url))
    resty_opts = { host = u.host, port = u.port, user = u.user, password = u.password,
      database = u.database, charset = "utf8mb4", max_packet_size = 1024 * 1024,
      pool = "bench", pool_size = POOL }
  elseif mode ~= "thread" then
    engine = require("fsdb").engine.new(url, {
      transport = mode == "cosocket" and "cosocket" or nil,
      pool_size = mode == "cosocket" and POOL or 2, max_overflow = mode == "cosocket" and 200 or 4,
      pool_timeout = 10,
    })
  end
end

-- In the worker-thread VM (ngx.run_worker_thread): plain values only.
function _M.thread_query(which, id)
  if not thread_engine then
    thread_engine = require("fsdb").engine.new(os.getenv("DATABASE_URL"), { pool_size = 1 })
  end
  local rows, err = thread_engine:execute(which == "pk" and PK or LIST, id)
  if not rows then return nil, err end
  return cjson.encode(rows)
end

local function resty_query(sql)
  local mysql = require("resty.mysql")
  local db = assert(mysql:new())
  db:set_timeout(10000)
  local ok, err = db:connect(resty_opts)
  if not ok then return nil, err end
  local rows
  rows, err = db:query(sql)
  if not rows then db:close(); return nil, err end
  db:set_keepalive(60000, POOL)
  return cjson.encode(rows)
end

local function answer(body, err)
  if not body then
    ngx.status = 500
    ngx.say(cjson.encode({ error = tostring(err) }))
    return
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(body)
end

local function run(which, id)
  if mode == "resty" then
    return answer(resty_query((which == "pk" and PK or LIST):gsub("%?", tostring(id))))
  elseif mode == "thread" then
    -- no more calls in flight than thread VMs (run_worker_thread fails
    -- when none is free)
    sema = sema or require("ngx.semaphore").new(THREADS)
    local got, werr = sema:wait(10)
    if not got then return answer(nil, werr) end
    local ok, body, err = ngx.run_worker_thread("fsdb", "app", "thread_query", which, id)
    sema:post(1)
    if not ok then return answer(nil, body) end
    return answer(body, err)
  end
  local rows, err = engine:execute(which == "pk" and PK or LIST, id)
  if not rows then return answer(nil, err) end
  return answer(cjson.encode(rows))
end

function _M.pk()
  run("pk", tonumber(ngx.var.arg_id) or 1)
end

function _M.list()
  run("list", tonumber(ngx.var.arg_from) or 1)
end

return _M
