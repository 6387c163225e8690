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
local replicas = require("fsdb.replicas")

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

-- The URL's read_timeout (seconds): a lost connection that came sooner than
-- half of it was a server closing it, not a server that stopped answering.
local function read_timeout(url)
  local defaults = optlist.url_defaults()
  local ok, t = pcall(core.parse_url, url, defaults)
  return ok and type(t) == "table" and tonumber(t.read_timeout) or defaults.read_timeout
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
    if opts.replicas == nil then opts.replicas = config.replica_urls() end
  end
  -- The codec transports (lua/fsdb/transport/) answer the same calls as
  -- the C engine handle.
  local make = core.engine
  if opts.transport and opts.transport ~= "libmariadb" then
    make = require("fsdb.transport.pool").new
  end
  -- What the URL leaves out (host, port, charset, timeouts) comes from
  -- fsdb.options, the only place that states it.
  -- With replicas, the primary's connections report each COMMIT's GTID
  -- (session tracking): read-your-writes needs no SELECT @@last_gtid.
  local copts = opts
  if opts.replicas then
    copts = { track_gtid = true }
    for k, v in pairs(opts) do copts[k] = v end
  end
  local ok, handle = pcall(make, url, copts, optlist.url_defaults())
  if not ok then error(handle, 2) end
  local engine = setmetatable({ _core = handle, _on_connect = opts.on_connect, options = opts,
                                _read_timeout = read_timeout(url) }, Engine)
  if opts.replicas then
    local made, set = pcall(replicas.new, opts, function(u, o, i)
      local fine, e = pcall(_M.new, u, o)
      if not fine then
        error(("fsdb: replica #%d: %s"):format(i, (tostring(e):gsub("^.-:%d+: ", ""):gsub("^fsdb: ", ""))), 0)
      end
      return e
    end)
    if not made then error(set, 2) end
    engine._replicas = set
    -- A read sent to the primary instead is an event (replica_fallback).
    set.notify = function(reason, replica_url, why)
      local state = engine._events
      if state then state.replica_fallback(reason, replica_url, why) end
    end
  end
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
--- a failure retired the connection; replica_fallback(reason, replica_url,
--- why) on an engine with replicas when a read meant for a replica went to
--- the primary (reason: "gtid_unknown", "no_replica", "unavailable" or
--- "gtid_wait"; replica_url redacted, nil when no replica was picked).
--- Handlers run in registration order,
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
-- nothing runs twice. Not 1180 ("Got error 6 during COMMIT" from a Galera
-- node leaving the primary component): in the Galera drill an autocommit
-- INSERT that got it had been applied (running it again hit 1062). A
-- lost connection (2013, 2006, 2055) is retried once only for a plain
-- SELECT (core.plain_select: no locks, no writes, no per-connection
-- state; the option retry_reads) and only when it came
-- sooner than half the read_timeout — a server that closed the connection
-- (a restart), not one that stopped answering (that wait is not doubled).
-- Any other statement may have run: a write may have committed.
local REFUSED = { [1047] = true, [1053] = true, [1927] = true }
local REFUSED_TRIES = 3
local LOST = { [2013] = true, [2006] = true, [2055] = true }

-- A lost connection while a statement ran, not a connect that failed (a
-- checkout has already retried those until pool_timeout).
local function lost_in_statement(errno, err)
  if not LOST[errno] then return false end
  err = tostring(err)
  return not (err:find("handshake", 1, true) or err:find("communication packet", 1, true)
              or err:find("authorization packet", 1, true) or err:find("unreachable for", 1, true)
              or err:find("hosts tried", 1, true))
end

local function run(self, method, sql, ...)
  local t0 = core.monotime()
  local res, err, errno, sqlstate = self._core:run(self._on_connect, method, sql, ...)
  local tries = 1
  while res == nil and REFUSED[errno] and tries < REFUSED_TRIES do
    tries = tries + 1
    res, err, errno, sqlstate = self._core:run(self._on_connect, method, sql, ...)
  end
  if res == nil and lost_in_statement(errno, err) and self.options.retry_reads and method ~= "executemany"
      and type(sql) == "string" and core.monotime() - t0 < self._read_timeout / 2
      and core.plain_select(sql) then
    res, err, errno, sqlstate = self._core:run(self._on_connect, method, sql, ...)
  end
  return res, err, errno, sqlstate
end

-- Whether a statement may go to a replica: the engine has replicas, the
-- route is not "primary", and the statement is a plain SELECT (or the
-- route says "replica").
local function to_replica(self, route, sql)
  if not self._replicas or route == "primary" then return false end
  return route == "replica" or (type(sql) == "string" and core.plain_select(sql))
end

-- The route of a query's options, and the options without it (conn:query
-- knows no route). Anything but nil, "primary" and "replica" raises.
local function split_route(opts, level)
  if type(opts) ~= "table" or opts.route == nil then return nil, opts end
  local route = opts.route
  if route ~= "primary" and route ~= "replica" then
    error(("fsdb: bad value for query option 'route' (expected \"primary\" or \"replica\", got %s)")
      :format(tostring(route)), level + 1)
  end
  local rest, any = {}, false
  for k, v in pairs(opts) do
    if k ~= "route" then rest[k], any = v, true end
  end
  return route, any and rest or nil
end
_M.split_route = split_route

-- Runs a read that may go to a replica (fresh: the session's
-- read-your-writes record) there, or — no replica usable, or the session's
-- last write not there in time — on the primary, outside any transaction
-- as well. false when it may not go to a replica at all.
function Engine:_replica_read(route, fresh, method, sql, ...)
  if not to_replica(self, route, sql) then return false end
  local res, err, errno, sqlstate = self._replicas:read(fresh, method, sql, ...)
  if res ~= false then return res, err, errno, sqlstate end
  return run(self, method, sql, ...)
end

--- A plain SELECT on an engine with replicas goes to a replica (see
--- "Replicas" in the README); everything else to the primary.
function Engine:execute(sql, ...)
  if self._replicas then
    local res, err, errno, sqlstate = self:_replica_read(nil, nil, "execute", sql, ...)
    if res ~= false then return res, err, errno, sqlstate end
  end
  return run(self, "execute", sql, ...)
end

--- Same as conn:query, on a pooled connection (one C call, as execute).
--- opts.route = "primary" keeps a read on the primary, "replica" sends a
--- statement the scanner cannot classify to a replica (with replicas).
-- syntax: res, err, errno, sqlstate = engine:query(sql, params, opts)
function Engine:query(sql, params, opts)
  local route
  route, opts = split_route(opts, 2)
  if self._replicas then
    local res, err, errno, sqlstate = self:_replica_read(route, nil, "query", sql, params, opts)
    if res ~= false then return res, err, errno, sqlstate end
  end
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
  local t = self._core:status()
  if self._replicas then self._replicas:status(t) end
  return t
end

--- Closes idle connections; checked-out ones are closed when returned.
-- syntax: engine:dispose()
function Engine:dispose()
  if self._replicas then self._replicas:dispose() end
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
