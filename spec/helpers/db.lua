-- Shared by the integration specs: the throwaway server started by
-- scripts/run-tests (scripts/testdb) publishes its URLs in FSDB_TEST_*.
local fsdb = require("fsdb")

local _M = {}

_M.url = os.getenv("FSDB_TEST_URL")
_M.socket_url = os.getenv("FSDB_TEST_SOCKET_URL")
_M.root_url = os.getenv("FSDB_TEST_ROOT_URL")
_M.password = os.getenv("FSDB_TEST_PASSWORD")
_M.port = tonumber(os.getenv("FSDB_TEST_PORT") or "")
_M.socket = os.getenv("FSDB_TEST_SOCKET")
_M.db = os.getenv("FSDB_TEST_DB")
_M.db2 = os.getenv("FSDB_TEST_DB2")

--- A fresh engine on the test database (options optional).
function _M.engine(options, url)
  return fsdb.engine.new(url or _M.url, options)
end

local unpack = table.unpack or unpack -- LuaJIT: unpack

--- Runs fn as a coroutine of a cqueues controller, as an application on
--- the cqueues transport does; returns what fn returned, raises its error.
function _M.in_cqueues(fn)
  local loop, out = require("cqueues").new(), nil
  loop:wrap(function()
    out = (function(...) return { n = select("#", ...), ... } end)(fn())
  end)
  local ok, err = loop:loop()
  if not ok then error(err, 0) end
  return unpack(out, 1, out.n)
end

--- fn as it must run on transport: in a cqueues controller for the cqueues
--- one, plainly for libmariadb.
function _M.within_loop(transport, fn)
  if transport ~= "cqueues" then return fn() end
  return _M.in_cqueues(fn)
end

--- Root engine (for KILL, SET GLOBAL, processlist).
function _M.root(options)
  return fsdb.engine.new(_M.root_url, options)
end

--- Runs SQL that must succeed; raises with the server's message otherwise.
function _M.must(target, sql, ...)
  local res, err, errno, sqlstate = target:execute(sql, ...)
  if not res then
    error(("%s [%s %s] in: %s"):format(err, tostring(errno), tostring(sqlstate), sql), 2)
  end
  return res
end

--- Runs set-up statements in order on a short-lived engine on url (nil:
--- the test database), raising on the first failure. A statement is SQL
--- text or { sql, arg1, ... }.
function _M.run_sql(url, ...)
  local e = _M.engine(nil, url)
  local ok, err = pcall(function(...)
    for i = 1, select("#", ...) do
      local stmt = select(i, ...)
      if type(stmt) == "table" then
        _M.must(e, stmt[1], (table.unpack or unpack)(stmt, 2))
      else
        _M.must(e, stmt)
      end
    end
  end, ...)
  e:dispose()
  if not ok then error(err, 0) end
end

--- A name unique to this process, for tables that must not collide.
local counter = 0
function _M.unique(prefix)
  counter = counter + 1
  return ("%s_%d_%d"):format(prefix or "t", math.floor(os.time() % 100000), counter)
end

return _M
