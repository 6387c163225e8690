--- fsdb.transport.pool — the engine's pool for the codec transports.
--
-- The same contract as the C pool (csrc/pool.c) — pool_size,
-- max_overflow, pool_timeout, pool_recycle, pool_pre_ping (+ window),
-- pool_reset_on_return, pool_use_lifo, expiry before the server's
-- wait_timeout, status counters — for one Lua state: a process under
-- cqueues, or one nginx worker. Waiting for a connection yields to the
-- scheduler (cqueues condition, ngx.semaphore) instead of blocking. The
-- object answers the calls fsdb.engine makes on its C handle (checkout,
-- status, dispose, url, observe), so engine:connect/execute/query, sessions,
-- the store helpers, echo and engine events run unchanged on top.

local core = require("fsdb.core")
local fixed = require("fsdb.sqltext").fixed
local transport = require("fsdb.transport.conn")

local _M = {}

local Pool = {}
Pool.__index = Pool

local engines = 0

local function scheduler(name)
  if name == "cosocket" then
    return require("fsdb.transport.ngx")
  elseif name == "cqueues" then
    return require("fsdb.transport.cqueues")
  end
  error("fsdb: unknown transport '" .. tostring(name) .. "'", 3)
end

--- pool.new(url, options, url_defaults) with options.transport "cosocket"
--- or "cqueues"; url_defaults (fsdb.options) fill what the URL leaves out.
function _M.new(url, opts, url_defaults)
  local u, err = core.parse_url(url, url_defaults)
  if not u then error(err, 2) end
  local sched = scheduler(opts.transport)
  engines = engines + 1
  local reset = opts.pool_reset_on_return
  if reset == nil then reset = "rollback" end
  local self = setmetatable({
    sched = sched,
    cfg = {
      url = u,
      init_command = opts.init_command,
      isolation_level = opts.isolation_level,
      statement_cache_size = opts.statement_cache_size or 64,
      max_statement_time = opts.max_statement_time,
      wsrep_sync_wait = opts.wsrep_sync_wait,
      track_gtid = opts.track_gtid,
    },
    reset = reset,
    url_text = url,
    url_defaults = url_defaults,
    size = opts.pool_size or 5,
    max_overflow = opts.max_overflow or 10,
    timeout = opts.pool_timeout or 30,
    recycle = opts.pool_recycle or -1,
    pre_ping = opts.pool_pre_ping ~= false,
    ping_window = opts.pool_pre_ping_window or 1.0,
    lifo = opts.pool_use_lifo or false,
    leak_threshold = opts.pool_leak_threshold or 0,
    idle = {},
    total = 0,
    out = 0,
    stale_before = -1,
    seq = 0,
    name = "fsdb" .. engines,
    cond = sched.cond(),
    counters = { connects = 0, pings = 0, invalidated = 0, timeouts = 0, waits = 0,
      recycled = 0, expired = 0, held_too_long = 0 },
  }, Pool)
  return self
end

-- Why an idle link may not be handed out, or nil (no I/O).
function Pool:unusable(link, now)
  if link.dead then return "invalidated" end
  if link.created <= self.stale_before then return "stale" end
  if self.recycle >= 0 and now - link.created > self.recycle then return "recycled" end
  if (link.idle_limit or 0) > 0 and now - link.returned >= link.idle_limit - 1.0 then
    return "expired"
  end
end

function Pool:close_link(link, why)
  self.total = self.total - 1
  if why == "recycled" then
    self.counters.recycled = self.counters.recycled + 1
  elseif why == "invalidated" or why == "stale" then
    self.counters.invalidated = self.counters.invalidated + 1
  elseif why == "expired" then
    self.counters.expired = self.counters.expired + 1
  end
  -- A polite close where the socket API allows it; never a raise.
  if link.parked then
    pcall(self.sched.forget, link)
  else
    pcall(link.quit, link)
  end
  link:drop()
end

local function too_many(self)
  return self.max_overflow >= 0 and self.total >= self.size + self.max_overflow
end

local unpack = table.unpack or unpack

--- checkout([on_connect [, holder, key]]) -> conn, is_new | nil, err, errno,
--- sqlstate. A new connection runs on_connect first; when it raises, that
--- connection is discarded and the failure is 9008. With holder, holder[key]
--- = conn before returning (sessions).
function Pool:checkout(on_connect, holder, key)
  local conn, is_new, errno, state = self:take()
  if not conn then return nil, is_new, errno, state end
  local link = conn._link
  if is_new and on_connect then
    -- on_connect's round trips are part of the checkout (pool_timeout)
    local ok, err = pcall(on_connect, conn)
    local late = self.sched.now() >= (link.deadline or math.huge) and link.dead
    if late or not ok then
      conn:_discard()
      if late then return self:timed_out("on_connect did not finish in time") end
      local msg = tostring(err):gsub("^fsdb: ", "")
      return core.codec_error(9008, nil, "on_connect failed: " .. msg, self.cfg.url.password)
    end
  end
  link:limit(nil)
  if holder then holder[key] = conn end
  -- As the C engine: after on_connect and after the holder knows it.
  local obs = self.observer
  if obs then pcall(obs, "checkout", conn, is_new) end
  return conn, is_new
end

--- observe(fn_or_nil): the engine's observer (fsdb.events), called at
--- checkout, at check-in and around each statement, as the C core calls
--- it (csrc/lobserve.c); nil removes it.
function Pool:observe(fn)
  if fn ~= nil and type(fn) ~= "function" then
    error("fsdb: bad argument #1 to 'observe' (function expected, got " .. type(fn) .. ")", 2)
  end
  self.observer = fn
end

--- run(on_connect, method, ...): checkout, conn[method](conn, ...), check-in;
--- a raise in between still returns the connection, then goes on.
function Pool:run(on_connect, method, ...)
  if type(transport.Conn[method]) ~= "function" then
    error("fsdb: no connection method '" .. tostring(method) .. "'", 2)
  end
  local conn, err, errno, state = self:checkout(on_connect)
  if not conn then return nil, err, errno, state end
  local r = { n = 0 }
  local function keep(ok, ...) r.n = select("#", ...); r.ok = ok; for i = 1, r.n do r[i] = (select(i, ...)) end end
  keep(pcall(conn[method], conn, ...))
  conn:close()
  if not r.ok then error(r[1], 0) end
  return unpack(r, 1, r.n)
end

-- A connect, ping or on_connect ran out of the checkout's time (the C
-- pool's message, csrc/pool.c).
function Pool:timed_out(cause)
  self.counters.timeouts = self.counters.timeouts + 1
  cause = tostring(cause):gsub("^fsdb: ", ""):gsub("; hint: .*$", "")
  return core.codec_error(9002, nil, ("no connection within pool_timeout %s s: %s; hint: the "
    .. "server or the network is not answering (overloaded, stopped, or a proxy or firewall "
    .. "holding the connection); check it, or raise pool_timeout"):format(fixed(self.timeout, 2), cause),
    self.cfg.url.password)
end

-- The checkout itself: an idle connection (checked, maybe pinged), a new
-- one, or a wait. pool_timeout counts from here, for the wait and for every
-- network wait of the connects and pings made for this checkout (0: no
-- wait for a free connection; connects keep connect_timeout).
function Pool:take()
  if self.disposed then
    return core.codec_error(9005, nil, "engine is disposed")
  end
  local waited
  local deadline = self.sched.now() + (self.timeout > 0 and self.timeout or 0)
  local limit = self.timeout > 0 and deadline or nil
  while true do
    local link = table.remove(self.idle, self.lifo and #self.idle or 1)
    if link then
      local now = self.sched.now()
      local why = self:unusable(link, now)
      if not why and link.parked and not self.sched.attach(link) then
        why = "invalidated"
      end
      if why then
        self:close_link(link, why)
      else
        if self.pre_ping and now - link.returned >= self.ping_window then
          self.counters.pings = self.counters.pings + 1
          link:limit(limit)
          local ok, perr = link:simple("ping")
          link:limit(nil)
          if not ok then
            if self.stale_before < now then self.stale_before = now end
            self:close_link(link, "dead")
            self.counters.invalidated = self.counters.invalidated + 1
            if limit and self.sched.now() >= limit then
              return self:timed_out("the server did not finish checking a connection in time ("
                .. tostring(perr):gsub("^fsdb: ", ""):gsub("; hint: .*$", "") .. ")")
            end
            goto continue
          end
        end
        self.out = self.out + 1
        return transport.wrap(self, link), false
      end
    elseif not too_many(self) then
      self.total = self.total + 1
      self.seq = self.seq + 1
      local pool_name = self.name .. ":" .. self.seq
      local new, err, errno, state = transport.open(self.cfg, self.sched, pool_name, limit)
      if not new then
        self.total = self.total - 1
        if errno == 2002 or errno == 2003 or errno == 2013 or errno == 2006 then
          self.stale_before = self.sched.now()
        end
        self.cond:signal()
        if limit and self.sched.now() >= limit then
          return self:timed_out("the server did not finish opening a connection in time ("
            .. tostring(err):gsub("^fsdb: ", ""):gsub("; hint: .*$", "") .. ")")
        end
        return nil, err, errno, state
      end
      self.counters.connects = self.counters.connects + 1
      new.pool_name = pool_name
      new.returned = new.created
      self.out = self.out + 1
      return transport.wrap(self, new), true
    else
      local now = self.sched.now()
      if not waited then
        waited = true
        self.counters.waits = self.counters.waits + 1
      end
      if now >= deadline or not self.cond:wait(deadline - now) and self.sched.now() >= deadline then
        if #self.idle == 0 and too_many(self) then
          self.counters.timeouts = self.counters.timeouts + 1
          local msg
          if self.max_overflow < 0 then
            msg = ("pool limit of size %d reached, connection timed out, timeout %s"):format(
              self.size, fixed(self.timeout, 2))
          else
            msg = ("pool limit of size %d overflow %d reached, connection timed out, timeout %s"):format(
              self.size, self.max_overflow, fixed(self.timeout, 2))
          end
          return core.codec_error(9002, nil, msg)
        end
      end
    end
    ::continue::
  end
end

-- Makes a link clean for the next user (conn.c's fsdb_conn_reset); false
-- means discard it.
function Pool:clean(link)
  local _, idle = link.codec:status()
  if link.dead or not idle then return false end
  local mode = self.reset
  local in_trans = math.floor(link:status() / 1) % 2 == 1
  if mode == "rollback" then
    if in_trans and not link:simple("query", "ROLLBACK") then return false end
  elseif mode == "commit" then
    if in_trans and not link:simple("query", "COMMIT") then return false end
  elseif mode == "reset" then
    link:forget_stmts()
    if not link:simple("reset") then return false end
    if self.cfg.init_command and not link:simple("query", self.cfg.init_command) then return false end
    if not link:session_settings(self.cfg) then return false end
  end
  return true
end

--- Called by conn:close(): back to the idle list, or closed.
function Pool:checkin(link, dirty, out_at)
  self.out = self.out - 1
  local now = self.sched.now()
  if self.leak_threshold > 0 and out_at and now - out_at > self.leak_threshold then
    self.counters.held_too_long = self.counters.held_too_long + 1
    io.stderr:write(("fsdb: warning: connection (thread %d) was held for %s s, longer than "
      .. "pool_leak_threshold %s s; return connections promptly (conn:close())\n"):format(
      link.thread_id or 0, fixed(now - out_at, 1), fixed(self.leak_threshold, 1)))
  end
  -- Cleaning and parking talk to the server; where the socket API is not
  -- available (nginx's log phase, say) that raises: the link is then
  -- dropped without a word, never half-cleaned into the pool.
  local ok, kept = pcall(function()
    if dirty or self.disposed or #self.idle >= self.size or self:unusable(link, now)
      or not self:clean(link) then
      self:close_link(link, link.dead and "invalidated" or nil)
      return false
    end
    link.returned = self.sched.now()
    if not self.sched.detach(link) then
      self:close_link(link, "invalidated")
      return false
    end
    return true
  end)
  if not ok then
    link:drop()
    self.total = self.total - 1
    self.counters.invalidated = self.counters.invalidated + 1
  elseif kept then
    self.idle[#self.idle + 1] = link
  end
  self.cond:signal()
end

--- A conn was collected without close(): its link is gone.
function Pool:forget(_)
  self.out = self.out - 1
  self.total = self.total - 1
  self.counters.invalidated = self.counters.invalidated + 1
end

function Pool:status()
  local c = self.counters
  return {
    size = self.size, max_overflow = self.max_overflow, checked_out = self.out,
    idle = #self.idle, overflow = self.total - self.size, connects = c.connects,
    pings = c.pings, invalidated = c.invalidated, timeouts = c.timeouts, waits = c.waits,
    recycled = c.recycled, expired = c.expired, held_too_long = c.held_too_long,
  }
end

--- Closes the idle links; checked-out ones are closed when returned.
function Pool:dispose()
  local idle = self.idle
  self.idle = {}
  for _, link in ipairs(idle) do
    self:close_link(link)
  end
  -- links opened before now are stale (the C pool's stale marking)
  self.stale_before = self.sched.now()
end

function Pool:close()
  self:dispose()
  self.disposed = true
end

function Pool:url()
  return (core.render_url(self.url_text, self.url_defaults))
end

function Pool:__tostring()
  return ("fsdb.engine (%s; transport %s)"):format(self:url(), self.sched.name)
end

return _M
