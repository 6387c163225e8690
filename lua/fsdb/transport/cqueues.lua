--- fsdb.transport.cqueues — OpenResty's cosocket interface over lua-cqueues.
--
-- The codec transport (fsdb.transport.conn) talks to one socket interface,
-- ngx.socket.tcp's; this module gives plain Lua the same one: inside a
-- cqueues controller every wait yields to the scheduler; outside one,
-- cqueues blocks in poll(), so the same code also runs plainly.
--
-- Besides tcp(), a scheduler module gives the pool what it needs to wait:
-- now(), cond() (wait with a timeout / signal one waiter) and the way
-- sockets are kept between checkouts (here: the socket object itself).

local cqueues = require("cqueues")
local socket = require("cqueues.socket")
local condition = require("cqueues.condition")
local errno = require("cqueues.errno")

local _M = { name = "cqueues" }

local Sock = {}
Sock.__index = Sock

local function reason(err)
  if err == nil then return "closed" end
  if err == errno.ETIMEDOUT then return "timeout" end
  if err == errno.EPIPE or err == errno.ECONNRESET then return "closed" end
  if type(err) == "number" then return errno.strerror(err) end
  return tostring(err)
end

function _M.tcp()
  return setmetatable({ timeouts = { 60, 60, 60 } }, Sock)
end

--- settimeouts(connect_ms, send_ms, read_ms), like a cosocket.
function Sock:settimeouts(c, s, r)
  self.timeouts = { (c or 60000) / 1000, (s or 60000) / 1000, (r or 60000) / 1000 }
end

--- connect(host, port) or connect("unix:/path").
function Sock:connect(host, port)
  if type(port) == "table" then port = nil end
  local s, err
  local path = type(host) == "string" and host:match("^unix:(.+)$")
  if path then
    s, err = socket.connect({ path = path, mode = "bn" })
  else
    s, err = socket.connect({ host = host, port = port, mode = "bn", nodelay = true })
  end
  if not s then return nil, reason(err) end
  s:setmode("bn", "bn")
  s:onerror(function(_, _, code) return code end)
  s:settimeout(self.timeouts[1])
  local ok, cerr = s:connect(self.timeouts[1])
  if not ok then
    s:close()
    return nil, reason(cerr)
  end
  self.s = s
  return 1
end

function Sock:send(data)
  local s = self.s
  if not s then return nil, "closed" end
  s:settimeout(self.timeouts[2])
  local ok, err = s:write(data)
  if ok then ok, err = s:flush() end
  if not ok then return nil, reason(err) end
  return #data
end

--- receiveany(max): whatever is there, at least one byte.
function Sock:receiveany(max)
  local s = self.s
  if not s then return nil, "closed" end
  s:settimeout(self.timeouts[3])
  local data, err = s:xread(-max, "b", self.timeouts[3])
  if not data then return nil, reason(err) end
  return data
end

--- sslhandshake(reused_session, server_name, verify, tls): tls carries what
--- a cosocket takes from nginx.conf (CA, client certificate and key).
-- The contents of a PEM file, or nil when it cannot be read.
local function read_pem(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local pem = f:read("*a")
  f:close()
  return pem
end

function Sock:sslhandshake(_, server_name, verify, tls)
  local ctxmod = require("openssl.ssl.context")
  local ctx = ctxmod.new("TLS", false)
  tls = tls or {}
  if verify then
    local store = require("openssl.x509.store").new()
    if tls.ca then store:add(tls.ca) end
    if tls.capath then store:add(tls.capath) end
    if not tls.ca and not tls.capath then store:addDefaults() end
    ctx:setStore(store)
    ctx:setVerify(ctxmod.VERIFY_PEER)
  else
    ctx:setVerify(ctxmod.VERIFY_NONE)
  end
  if tls.cert then
    local pem = read_pem(tls.cert)
    if not pem then return nil, "cannot read ssl_cert" end
    ctx:setCertificate(require("openssl.x509").new(pem))
  end
  if tls.key then
    local pem = read_pem(tls.key)
    if not pem then return nil, "cannot read ssl_key" end
    ctx:setPrivateKey(require("openssl.pkey").new(pem))
  end
  if tls.cipher then ctx:setCipherList(tls.cipher) end
  local ssl = require("openssl.ssl").new(ctx)
  if server_name and tls.verify_name then
    local param = require("openssl.x509.verify_param").new()
    if server_name:match("^[%d.]+$") or server_name:find(":", 1, true) then
      param:setIP(server_name)
    else
      param:setHost(server_name)
    end
    ssl:setParam(param)
  end
  if server_name and not server_name:match("^[%d.:]+$") then ssl:setHostName(server_name) end
  local ok, err = self.s:starttls(ssl, self.timeouts[1])
  if not ok then return nil, "TLS handshake failed: " .. reason(err) end
  if verify then
    local peer = self.s:checktls()
    local good, why = peer:getVerifyResult()
    if good ~= 0 and good ~= true then return nil, "certificate verify failed: " .. tostring(why or good) end
  end
  self.tls = true
  return true
end

--- The TLS cipher in use, or nil.
function Sock:cipher()
  if not self.tls then return nil end
  local ssl = self.s:checktls()
  local info = ssl and ssl.getCipherInfo and ssl:getCipherInfo()
  return info and info.name or "TLS"
end

function Sock:close()
  if self.s then
    self.s:close()
    self.s = nil
  end
  return 1
end

-- ---- what the pool needs from the scheduler ----

_M.now = cqueues.monotime

local Cond = {}
Cond.__index = Cond

function _M.cond()
  return setmetatable({ c = condition.new() }, Cond)
end

--- wait(seconds): true when signalled, false on timeout.
function Cond:wait(timeout)
  if not cqueues.running() then
    -- Outside a controller nothing else runs to signal us: wait it out.
    cqueues.sleep(timeout)
    return false
  end
  local r = self.c:wait(timeout)
  return r == true or r == self.c
end

function Cond:signal()
  self.c:signal(1)
end

--- Sockets stay in the pool's slots between checkouts.
function _M.attach(slot)
  return slot.sock ~= nil
end

function _M.detach(_)
  return true
end

function _M.forget(link)
  link:quit()
end

return _M
