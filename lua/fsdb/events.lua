--- fsdb.events — engine events and SQL echo.
--
--   engine:on("after_execute", function(conn, sql, params, result, elapsed) … end)
--   fsdb.engine.new(url, { echo = true, logger = ngx.log })
--
-- The C core calls one observer per engine (csrc/lobserve.c) before and
-- after each statement, at checkout and at check-in, always outside the
-- guarded region of a call: handlers may use the connection; the codec
-- transports (transport/pool.lua, transport/conn.lua) call it the same
-- way. This module turns those calls into the named events and the echo
-- lines. A handler that raises is reported through the logger and the call
-- goes on: it can neither skip a check-in nor change a result. An engine
-- without echo and without handlers has no observer at all.

local sqltext = require("fsdb.sqltext")

local _M = {}

--- The event names, in the order of a connection's life, then the
--- engine's own (replica_fallback: a replica read went to the primary).
_M.names = { "connect", "checkout", "before_execute", "after_execute", "error", "invalidate", "checkin",
             "replica_fallback" }

local KNOWN = {}
for _, name in ipairs(_M.names) do KNOWN[name] = true end

--- Whether name is an event name.
-- syntax: b = events.is_event(name)
function _M.is_event(name)
  return KNOWN[name] == true
end

local function stderr_logger(_, msg)
  io.stderr:write(msg, "\n")
end

--- A logger as a function(level, message), level being "debug", "info",
--- "warn" or "error". Accepts a function(level, message), ngx.log (levels
--- mapped to ngx.DEBUG, ngx.INFO, ngx.WARN, ngx.ERR), or an object with
--- debug/info/warn/error methods (LuaLogging's, for one). nil: ngx.log
--- under OpenResty, standard error elsewhere.
-- syntax: fn = events.logger(logger_or_nil)
function _M.logger(l)
  local ngx = rawget(_G, "ngx")
  if l == nil then
    if not (type(ngx) == "table" and ngx.log) then return stderr_logger end
    l = ngx.log
  end
  if type(ngx) == "table" and l == ngx.log then
    local map = { debug = ngx.DEBUG, info = ngx.INFO, warn = ngx.WARN, error = ngx.ERR }
    return function(level, msg) ngx.log(map[level] or ngx.INFO, msg) end
  end
  if type(l) == "function" then return l end
  return function(level, msg)
    local m = l[level] or (level == "warn" and l.warning)
    if m then m(l, msg) end
  end
end

local function render_value(v)
  if type(v) == "string" then return ("%q"):format(v) end
  -- tostring(1.5) follows LC_NUMERIC on Lua 5.4 ("1,5" under de_DE).
  if type(v) == "number" then return sqltext.number_text(v) or tostring(v) end
  return tostring(v)
end

-- The parameters for echo_parameters: positional in order, named sorted.
local function render_params(params, method)
  if params == nil then return "" end
  if method == "executemany" then
    return (" [%d parameter sets]"):format(#params)
  end
  local out = {}
  local n = params.n or #params
  for i = 1, n do out[#out + 1] = render_value(params[i]) end
  local names = {}
  for k in pairs(params) do
    if type(k) == "string" and k ~= "n" then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do out[#out + 1] = k .. " = " .. render_value(params[k]) end
  return " [" .. table.concat(out, ", ") .. "]"
end

local function describe(method, res)
  if method == "rows" or method == "query_rows" then return "streaming" end
  if type(res) ~= "table" then return "" end
  if res.affected_rows ~= nil and #res == 0 then
    return ("%d affected"):format(res.affected_rows)
  end
  local n = #res
  return ("%d row%s"):format(n, n == 1 and "" or "s")
end

-- The parameters of one call, as the statement receives them.
local function params_of(method, ...)
  local n = select("#", ...)
  if method == "execute" or method == "rows" then
    local first = ...
    if n == 1 and type(first) == "table" then return first end
    if n == 0 then return nil end
    return { n = n, ... }
  end
  return (...) -- query, query_rows: a table or nil; executemany: the sets
end

--- The observer of one engine: a function for core:observe, and the state
--- it reads (handlers by event name; echo settings; the logger).
-- syntax: obs, state = events.observer{ echo = b, echo_parameters = b, logger = l }
function _M.observer(opts)
  local state = { handlers = {}, echo = opts.echo and true or false,
                  echo_parameters = opts.echo_parameters and true or false }
  local log = _M.logger(opts.logger or (type(opts.echo) == "function" and opts.echo or nil))
  state.log = log

  local function emit(name, ...)
    local list = state.handlers[name]
    if not list then return end
    for i = 1, #list do
      local ok, err = pcall(list[i], ...)
      if not ok then
        pcall(log, "error", ("fsdb: handler of engine event '%s' raised: %s"):format(name, tostring(err)))
      end
    end
  end
  state.emit = emit

  local function echo(level, msg)
    local ok, err = pcall(log, level, msg)
    if not ok then pcall(stderr_logger, "error", "fsdb: the logger raised: " .. tostring(err)) end
  end

  local function before(conn, method, sql, ...)
    local ctx = { method = method, sql = sql, params = params_of(method, ...) }
    emit("before_execute", conn, ctx.sql, ctx.params, ctx.method)
    return ctx
  end

  local function after(conn, ctx, elapsed, invalidated, ok, ...)
    ctx = ctx or {}
    local res, err, errno, sqlstate = ...
    local failed = not ok or res == nil
    if not ok then err, errno, sqlstate = res, nil, nil end
    local ms = elapsed * 1000
    if failed then
      emit("error", conn, ctx.sql, ctx.params, err, errno, sqlstate)
      if state.echo then
        echo("error", ("fsdb: %s%s -- failed after %s ms: %s"):format(tostring(ctx.sql),
          state.echo_parameters and render_params(ctx.params, ctx.method) or "", sqltext.fixed(ms, 3),
          (tostring(err):gsub("^fsdb: ", ""))))
      end
    else
      emit("after_execute", conn, ctx.sql, ctx.params, res, elapsed)
      if state.echo then
        echo("info", ("fsdb: %s%s -- %s ms, %s"):format(tostring(ctx.sql),
          state.echo_parameters and render_params(ctx.params, ctx.method) or "", sqltext.fixed(ms, 3),
          describe(ctx.method, res)))
      end
    end
    if invalidated then emit("invalidate", conn, err) end
  end

  -- Not a C call: replicas.lua reports it through engine.lua.
  function state.replica_fallback(reason, url, why)
    emit("replica_fallback", reason, url, why)
    if state.echo then
      echo("info", ("fsdb: replica read sent to the primary (%s%s)%s"):format(reason,
        url and (" on " .. url) or "", why and (": " .. tostring(why)) or ""))
    end
  end

  local function observe(event, conn, ...)
    if event == "before" then
      return before(conn, ...)
    elseif event == "after" then
      after(conn, ...)
    elseif event == "checkout" then
      if ... then emit("connect", conn) end
      emit("checkout", conn)
    elseif event == "checkin" then
      emit("checkin", conn)
    end
  end
  return observe, state
end

return _M
