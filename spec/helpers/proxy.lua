-- The fault proxy (fsdb_testproxy) in front of the test server, a fresh
-- one for every test of a describe block: started in before_each, closed
-- in after_each (also when the test failed or closed it itself).
--
--   local proxy = require("helpers.proxy").each(db.port)  -- inside describe()
--   proxy:set("freeze")                  -- a mode of the proxy (see proxy.c)
--   proxy:port()
--   proxy:url({ "connect_timeout=1" })   -- the test user's URL through it
--   proxy:close()
--   proxy:reopen()                       -- a new proxy (a new port)
local busted = require("busted")
local h = require("support.hardening")

local _M = {}

local Handle = {}
Handle.__index = Handle

local function current(self)
  return assert(self.proxy, "no proxy: used outside a test, or it did not start")
end

function Handle:set(...) return current(self):set(...) end
function Handle:stats() return current(self):stats() end
function Handle:port() return current(self):port() end

--- The test user's URL to the server through the proxy, with params.
function Handle:url(params)
  return h.url({ port = self:port(), params = params })
end

function Handle:close()
  if self.proxy then self.proxy:close() end
end

function Handle:reopen()
  self:close()
  self.proxy = assert(require("fsdb_testproxy").start(self.host, self.target_port))
end

--- Registers before_each/after_each in the enclosing describe block.
function _M.each(port, host)
  local handle = setmetatable({ host = host or "127.0.0.1", target_port = port }, Handle)
  busted.before_each(function() handle:reopen() end)
  busted.after_each(function()
    handle:close()
    handle.proxy = nil
  end)
  return handle
end

return _M
