--- fsdb.engine — a pool of connections to one database.
--
-- The pool itself lives in C (csrc/pool.c): checkout, checkin, pre-ping,
-- recycling and fork safety. This module owns the policy around it: where
-- the URL comes from, which options exist and what values they accept, and
-- the conveniences written in Lua (engine:execute, on_connect).

local core = require("fsdb.core")
local config = require("fsdb.config")
local events = require("fsdb.events")
local optlist = require("fsdb.options")

local _M = {}

local Engine = {}
Engine.__index = Engine

--- Checks an options table against fsdb.options (the one table of
--- names, defaults and accepted values) and returns it complete, every
--- default filled in; raises on an unknown name or a bad value.
-- syntax: full = engine.check_options(options)
function _M.check_options(options)
  return optlist.check_engine(options, 2)
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
  -- The codec transports (lua/fsdb/transport/) answer the same calls as
  -- the C engine handle.
  local make = core.engine
  if opts.transport and opts.transport ~= "libmariadb" then
    make = require("fsdb.transport.pool").new
  end
  -- What the URL leaves out (host, port, charset, timeouts) comes from
  -- fsdb.options, the only place that states it.
  local ok, handle = pcall(make, url, opts, optlist.url_defaults())
  if not ok then error(handle, 2) end
  local engine = setmetatable({ _core = handle, _on_connect = opts.on_connect, options = opts }, Engine)
  if opts.echo then engine:_observer() end
  return engine
end

-- The engine's observer state, set up on first need (echo, a handler).
function Engine:_observer()
  local state = self._events
  if not state then
    local observe
    observe, state = events.observer(self.options)
    self._events = state
    self._core:observe(observe)
  end
  return state
end

--- Registers fn for an engine event and returns fn (for engine:off).
--- Events and their arguments: connect(conn) for a new connection, after
--- on_connect; checkout(conn); checkin(conn) before it goes back;
--- before_execute(conn, sql, params, method); after_execute(conn, sql,
--- params, result, elapsed_seconds); error(conn, sql, params, err, errno,
--- sqlstate) for a failure returned or raised; invalidate(conn, err) when
--- a failure retired the connection. Handlers run in registration order,
--- outside the C call (they may use conn); one that raises is logged
--- through the logger and the call goes on.
-- syntax: fn = engine:on(name, fn)
function Engine:on(name, fn)
  if not events.is_event(name) then
    error(("fsdb: unknown engine event '%s' (known: %s)")
      :format(tostring(name), table.concat(events.names, ", ")), 2)
  end
  if type(fn) ~= "function" then
    error("fsdb: bad argument #2 to 'on' (function expected, got " .. type(fn) .. ")", 2)
  end
  local handlers = self:_observer().handlers
  local list = {}
  for i, h in ipairs(handlers[name] or {}) do list[i] = h end
  list[#list + 1] = fn
  handlers[name] = list -- a new list: an event being emitted keeps its own
  return fn
end

--- Removes a handler registered with engine:on; returns whether it was
--- there. With no handler left and echo off, the engine has no observer.
-- syntax: removed = engine:off(name, fn)
function Engine:off(name, fn)
  local state = self._events
  local old = state and state.handlers[name]
  if not old then return false end
  local list, removed = {}, false
  for _, h in ipairs(old) do
    if h == fn and not removed then removed = true else list[#list + 1] = h end
  end
  state.handlers[name] = #list > 0 and list or nil
  if not state.echo and next(state.handlers) == nil then
    self._core:observe(nil)
    self._events = nil
  end
  return removed
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

--- Same as conn:executemany, on a pooled connection (one C call, as
--- execute): autocommit, so each batch commits on its own; use a session
--- for all or nothing.
-- syntax: res, err, errno, sqlstate = engine:executemany(sql, sets)
function Engine:executemany(sql, sets)
  return self._core:run(self._on_connect, "executemany", sql, sets)
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
