--- fsdb.transport.ngx — OpenResty's cosockets for the codec transport.
--
-- A cosocket belongs to the request that created it, so a pooled
-- connection cannot be handed from one request to the next as an object.
-- Each pooled connection gets its own name in nginx's keepalive pool
-- (size 1): checkin parks the socket there (setkeepalive), checkout
-- connects by that name and gets the very same server session back, with
-- its prepared statements and settings (the Lua side — codec, statement
-- cache — stays in the fsdb pool). A socket nginx closed meanwhile comes
-- back as a new connection (reused 0 times): the pool discards that link.

local ngx = ngx -- luacheck: ignore (the host's)

local _M = { name = "cosocket" }

local semaphore = require("ngx.semaphore")

function _M.tcp()
  return ngx.socket.tcp()
end

function _M.now()
  ngx.update_time()
  return ngx.now()
end

local Cond = {}
Cond.__index = Cond

function _M.cond()
  return setmetatable({ s = semaphore.new(0) }, Cond)
end

function Cond:wait(timeout)
  return (self.s:wait(timeout)) and true or false
end

function Cond:signal()
  if self.s:count() < 0 then self.s:post(1) end
end

-- The URL's timeouts, fsdb.options' when it gives none (filled at parse).
local function timeouts(sock, u)
  sock:settimeouts(u.connect_timeout * 1000, u.write_timeout * 1000, u.read_timeout * 1000)
end

--- Takes a parked link's socket back out of nginx's keepalive pool.
function _M.attach(link)
  local u = link.cfg.url
  local sock = ngx.socket.tcp()
  timeouts(sock, u)
  local ok
  if u.unix_socket then
    ok = sock:connect("unix:" .. u.unix_socket, { pool = link.pool_name })
  else
    ok = sock:connect(u.host, u.port, { pool = link.pool_name })
  end
  if not ok then return false end
  if (sock:getreusedtimes() or 0) == 0 then
    sock:close() -- nginx closed the parked one: a new socket has no session
    return false
  end
  link.sock = sock
  link.parked = false
  return true
end

--- Parks a link's socket in nginx's keepalive pool under its own name,
--- for a little less than the server's wait_timeout.
function _M.detach(link)
  local idle_ms = 0
  if (link.idle_limit or 0) > 2 then idle_ms = (link.idle_limit - 2) * 1000 end
  local ok = link.sock:setkeepalive(idle_ms, 1)
  if not ok then return false end
  link.sock = nil
  link.parked = true
  return true
end

--- Closes a parked link politely (COM_QUIT), in whatever request runs.
function _M.forget(link)
  if _M.attach(link) then link:quit() end
end

return _M
