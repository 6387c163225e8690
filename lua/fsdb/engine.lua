--- fsdb.engine — a pool of connections to one database.
--
-- The pool itself lives in C (csrc/pool.c): checkout, checkin, pre-ping,
-- recycling and fork safety. This module owns the policy around it: where
-- the URL comes from, which options exist and what values they accept, and
-- the conveniences written in Lua (engine:execute, on_connect).

local core = require("fsdb.core")
local config = require("fsdb.config")

local _M = {}

local Engine = {}
Engine.__index = Engine

local function whole(v) return math.type and math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v)) end

-- name → validator returning nil or the reason the value is wrong
local OPTIONS = {
  pool_size = function(v)
    if type(v) ~= "number" or not whole(v) or v < 0 then return "a whole number >= 0" end
  end,
  max_overflow = function(v)
    if type(v) ~= "number" or not whole(v) or v < -1 then return "a whole number >= -1 (-1 = unlimited)" end
  end,
  pool_timeout = function(v)
    if type(v) ~= "number" or v < 0 then return "a number of seconds >= 0" end
  end,
  pool_recycle = function(v)
    if type(v) ~= "number" then return "a number of seconds (-1 = never)" end
  end,
  pool_pre_ping = function(v)
    if type(v) ~= "boolean" then return "a boolean" end
  end,
  pool_pre_ping_window = function(v)
    if type(v) ~= "number" or v < 0 then return "a number of seconds >= 0" end
  end,
  pool_reset_on_return = function(v)
    if v ~= "rollback" and v ~= "commit" and v ~= "reset" and v ~= false then
      return '"rollback", "commit", "reset" or false'
    end
  end,
  pool_leak_threshold = function(v)
    if type(v) ~= "number" or v < 0 then return "a number of seconds >= 0 (0 = off)" end
  end,
  pool_use_lifo = function(v)
    if type(v) ~= "boolean" then return "a boolean" end
  end,
  isolation_level = function(v)
    local ok = { ["READ UNCOMMITTED"] = true, ["READ COMMITTED"] = true,
                 ["REPEATABLE READ"] = true, ["SERIALIZABLE"] = true }
    if type(v) ~= "string" or not ok[v:upper():gsub("_", " ")] then
      return '"READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ" or "SERIALIZABLE"'
    end
  end,
  init_command = function(v)
    if type(v) ~= "string" then return "a string of SQL" end
  end,
  on_connect = function(v)
    if type(v) ~= "function" then return "a function(conn)" end
  end,
  executemany_mode = function(v)
    if v ~= "auto" and v ~= "values" and v ~= "each" then return '"auto", "values" or "each"' end
  end,
  statement_cache_size = function(v)
    if type(v) ~= "number" or not whole(v) or v < 1 then return "a whole number >= 1" end
  end,
  max_statement_time = function(v)
    if type(v) ~= "number" or v < 0 or v > 31536000 then return "a number of seconds >= 0 (0 = no limit)" end
  end,
  wsrep_sync_wait = function(v)
    if type(v) ~= "number" or not whole(v) or v < 0 or v > 15 then return "a whole number 0-15" end
  end,
  commit_markers = function(v)
    if type(v) ~= "boolean" then return "a boolean" end
  end,
  echo = function(v)
    if type(v) ~= "boolean" and type(v) ~= "function" then return "a boolean or a function(sql)" end
  end,
}

local function known_options()
  local names = {}
  for name in pairs(OPTIONS) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

--- Checks an options table; raises on an unknown name or a bad value.
-- syntax: engine.check_options(options)
function _M.check_options(options)
  if options == nil then return {} end
  if type(options) ~= "table" then
    error("fsdb: engine options must be a table, got " .. type(options), 3)
  end
  local clean = {}
  for name, value in pairs(options) do
    local check = OPTIONS[name]
    if not check then
      error(("fsdb: unknown engine option '%s' (known: %s)"):format(tostring(name), known_options()), 3)
    end
    -- NaN and ±inf pass "v < 0" tests and end as garbage in C (an inf
    -- pool_size became -2147483648): refused for every option.
    if type(value) == "number" and (value ~= value or value == math.huge or value == -math.huge) then
      error(("fsdb: bad value for engine option '%s' (expected a finite number, got %s)")
        :format(name, value ~= value and "NaN" or value > 0 and "inf" or "-inf"), 3)
    end
    local want = check(value)
    if want then
      error(("fsdb: bad value for engine option '%s' (expected %s)"):format(name, want), 3)
    end
    clean[name] = value
  end
  if clean.isolation_level then
    clean.isolation_level = clean.isolation_level:upper():gsub("_", " ")
  end
  return clean
end

--- Creates an engine. No connection is made until first use.
-- syntax: engine = fsdb.engine.new(url_or_nil, options)
-- url nil means "from the environment" (DATABASE_URL, DB_*, .env).
function _M.new(url, options)
  if url ~= nil and type(url) ~= "string" then
    error("fsdb: bad argument #1 to 'new' (URL string or nil expected, got " .. type(url) .. ")", 2)
  end
  local opts = _M.check_options(options)
  if url == nil then
    local err
    url, err = config.url_from_env()
    if not url then error(err, 2) end
  end
  local ok, handle = pcall(core.engine, url, opts)
  if not ok then error(handle, 2) end
  return setmetatable({ _core = handle, _on_connect = opts.on_connect, options = opts }, Engine)
end

--- Checks a connection out of the pool. A new connection runs on_connect
--- first; when on_connect raises, that connection is discarded (the next
--- checkout opens a fresh one and runs on_connect again) and connect
--- returns nil, "fsdb: on_connect failed: …", 9008, "HY000".
-- syntax: conn, err, errno, sqlstate = engine:connect()
function Engine:connect()
  local conn, err, errno, sqlstate = self._core:checkout(self._on_connect)
  if not conn then
    return nil, err, errno, sqlstate
  end
  return conn
end

-- Checks out into holder[key] (for sessions): the connection is stored by
-- the same C call that checks it out, so an error raised at any point
-- cannot leave it out of its holder's reach.
function Engine:_checkout_into(holder, key)
  return self._core:checkout(self._on_connect, holder, key)
end

--- Runs one statement on a pooled connection (autocommit) and returns it.
--- Checkout, statement and check-in are one C call: an error raised in
--- between (a parameter's metamethod, an interrupting debug hook) still
--- returns the connection before it goes on.
-- syntax: res, err, errno, sqlstate = engine:execute(sql, ...)
-- A statement outside a transaction that the server refused or broke off
-- without effect runs again on a fresh connection: 1047 (a Galera node left
-- the primary component; the refusal put it in back-off, so the checkout
-- goes to another node), 1053 (server shutdown in progress) and 1927 (the
-- connection was killed) — an interrupted statement is rolled back, so
-- nothing runs twice. A lost connection (2013) is not retried: a write may
-- have committed.
local REFUSED = { [1047] = true, [1053] = true, [1927] = true }
local REFUSED_TRIES = 3

local function run(self, method, ...)
  local res, err, errno, sqlstate = self._core:run(self._on_connect, method, ...)
  local tries = 1
  while res == nil and REFUSED[errno] and tries < REFUSED_TRIES do
    tries = tries + 1
    res, err, errno, sqlstate = self._core:run(self._on_connect, method, ...)
  end
  return res, err, errno, sqlstate
end

function Engine:execute(sql, ...)
  return run(self, "execute", sql, ...)
end

--- Same as conn:query, on a pooled connection (one C call, as execute).
-- syntax: res, err, errno, sqlstate = engine:query(sql, params, opts)
function Engine:query(sql, params, opts)
  return run(self, "query", sql, params, opts)
end

--- Pool counters: size, max_overflow, checked_out, idle, overflow,
--- connects, pings, invalidated, timeouts, waits, recycled, expired,
--- held_too_long.
-- syntax: t = engine:status()
function Engine:status()
  return self._core:status()
end

--- Closes idle connections; checked-out ones are closed when returned.
-- syntax: engine:dispose()
function Engine:dispose()
  return self._core:dispose()
end

--- The engine's URL with the password shown as ***.
-- syntax: s = engine:url()
function Engine:url()
  return self._core:url()
end

function Engine:__tostring()
  return tostring(self._core)
end

_M.Engine = Engine
return _M
