--- fsdb.replicas — the read replicas of an engine: which one serves a read.
--
-- Each replica is an engine of its own (its own pool). A read that may go
-- to a replica (engine.lua and session.lua decide which) asks this module:
--   * round robin over the replicas in rotation;
--   * a replica whose lag (Seconds_Behind_Master) is above replica_max_lag,
--     or unknown (replication stopped, status refused), is out of rotation;
--     the lag is read at checkout at most every replica_check_interval;
--   * a replica that cannot be reached is left out for DOWN_SECONDS;
--   * read-your-writes: a session that committed passes the GTID of its
--     last write; the replica first waits for it (MASTER_GTID_WAIT, at most
--     replica_wait_timeout). A timeout, an unusable replica or no replica
--     at all sends the read to the primary — never an error for that. Each
--     such fallback is counted (status()) and reported to the engine's
--     replica_fallback handlers (set.notify, given by engine.lua).

local core = require("fsdb.core")
local sqltext = require("fsdb.sqltext")

local _M = {}

local Set = {}
Set.__index = Set

-- A replica that could not be reached is not tried again for this long.
local DOWN_SECONDS = 5
-- A replica engine waits at most this long for a connection: a replica that
-- cannot give one soon is skipped, the read goes elsewhere.
local REPLICA_POOL_TIMEOUT = 1

-- Failures that say the replica is unusable, not that the statement is
-- wrong: the read goes to the primary instead (a plain SELECT has no
-- effect, so running it again is safe).
local UNAVAILABLE = { [1040] = true, [1045] = true, [1047] = true, [1053] = true, [1290] = true,
                      [1927] = true, [4031] = true, [9002] = true, [9005] = true, [9021] = true }

local function unavailable(errno)
  return UNAVAILABLE[errno] or (type(errno) == "number" and errno >= 2000 and errno < 3000)
end

--- A replica set for the engine options opts (replicas, replica_max_lag,
--- replica_check_interval, replica_wait_timeout); make(url, options, i)
--- creates replica i's engine.
-- syntax: set = replicas.new(opts, make)
function _M.new(opts, make)
  local set = setmetatable({
    list = {}, turn = 0,
    max_lag = opts.replica_max_lag, interval = opts.replica_check_interval,
    wait = opts.replica_wait_timeout,
    reads = 0, fallbacks = 0, fallback_reasons = {},
  }, Set)
  local ropts = {}
  for k, v in pairs(opts) do ropts[k] = v end
  ropts.replicas = nil
  ropts.pool_timeout = math.min(opts.pool_timeout, REPLICA_POOL_TIMEOUT)
  for i, url in ipairs(opts.replicas) do
    set.list[i] = { engine = make(url, ropts, i), state = "unknown", checked = -math.huge,
                    down_until = -math.huge, reads = 0, gtid_waits = 0 }
  end
  return set
end

-- r: the replica concerned (nil when none was picked); why: what made it
-- unusable, as a message (never a password: URLs are shown redacted).
local function count_fallback(set, reason, r, why)
  set.fallbacks = set.fallbacks + 1
  set.fallback_reasons[reason] = (set.fallback_reasons[reason] or 0) + 1
  if set.notify then
    local url = r and r.engine:url()
    set.notify(reason, url, why)
  end
end

-- Reads the replica's lag and records whether it is in rotation.
local function check_lag(r, max_lag, now)
  r.checked = now
  local res, err, errno = r.engine:query("SHOW SLAVE STATUS")
  if not res then
    if unavailable(errno) then
      r.state, r.down_until, r.why = "down", now + DOWN_SECONDS, err
    else
      r.state, r.lag, r.why = "lagging", nil, "lag unknown: " .. tostring(err)
    end
    return
  end
  local row = res[1]
  local lag = row and row.Seconds_Behind_Master
  if row == nil then
    r.state, r.lag, r.why = "up", 0, nil -- not replicating: nothing to be behind
  elseif type(lag) ~= "number" and not tonumber(lag) then
    r.state, r.lag, r.why = "lagging", nil, "replication stopped (Seconds_Behind_Master is NULL)"
  else
    lag = tonumber(lag)
    r.lag = lag
    if lag > max_lag then
      r.state, r.why = "lagging", ("%d s behind (replica_max_lag %s)"):format(lag, sqltext.number_text(max_lag) or "?")
    else
      r.state, r.why = "up", nil
    end
  end
end

-- The next replica in rotation (round robin), its lag checked if due; nil
-- when none is usable.
local function pick(set)
  local n = #set.list
  local now = core.monotime()
  for _ = 1, n do
    set.turn = set.turn % n + 1
    local r = set.list[set.turn]
    if r.down_until <= now then
      if set.max_lag < 0 then
        if r.state ~= "up" then r.state = "up" end
      elseif now - r.checked >= set.interval then
        check_lag(r, set.max_lag, now)
      end
      if r.state == "up" then return r end
    end
  end
  return nil
end

-- conn[method](conn, ...) with the connection closed whatever happens.
local function on_conn(conn, method, ...)
  local res = { pcall(conn[method], conn, ...) }
  conn:close()
  if not res[1] then error(res[2], 0) end
  return res[2], res[3], res[4], res[5]
end

-- Waits on conn until the replica applied gtid; true when it has, else
-- false and why.
local function caught_up(set, r, conn, gtid)
  r.gtid_waits = r.gtid_waits + 1
  local res, err = conn:query("SELECT MASTER_GTID_WAIT(?, ?) AS w", { gtid, set.wait })
  if not res then return false, tostring(err) end
  local w = res[1] and tonumber(res[1].w)
  if w == 0 then return true end
  return false, ("GTID %s not applied within replica_wait_timeout"):format(gtid)
end

--- Runs method (execute or query) on a replica. fresh, when given, is the
--- session's read-your-writes record {gtid = last GTID or false when
--- unknown, done = {[replica] = true} for replicas known to have it}.
--- Returns false, reason when the read must go to the primary instead
--- (counted); otherwise the statement's own results.
-- syntax: res, err, errno, sqlstate = set:read(fresh, method, sql, ...)
function Set:read(fresh, method, ...)
  if fresh and fresh.gtid == false then
    count_fallback(self, "gtid_unknown", nil, "the GTID of the session's last commit could not be read")
    return false
  end
  local r = pick(self)
  if not r then
    count_fallback(self, "no_replica", nil, "no replica in rotation (down or lagging)")
    return false
  end
  local res, err, errno, sqlstate
  if fresh and fresh.gtid ~= "" and not fresh.done[r] then
    local conn, cerr, cerrno = r.engine:connect()
    if not conn then
      if unavailable(cerrno) then r.state, r.down_until, r.why = "down", core.monotime() + DOWN_SECONDS, cerr end
      count_fallback(self, "unavailable", r, cerr)
      return false
    end
    local ok, done, why = pcall(caught_up, self, r, conn, fresh.gtid)
    if not (ok and done) then
      conn:close()
      count_fallback(self, "gtid_wait", r, ok and why or tostring(done))
      if not ok then error(done, 0) end
      return false
    end
    fresh.done[r] = true
    res, err, errno, sqlstate = on_conn(conn, method, ...)
  else
    res, err, errno, sqlstate = r.engine[method](r.engine, ...)
  end
  if res == nil and unavailable(errno) then
    r.state, r.down_until, r.why = "down", core.monotime() + DOWN_SECONDS, err
    count_fallback(self, "unavailable", r, err)
    return false
  end
  r.reads = r.reads + 1
  self.reads = self.reads + 1
  return res, err, errno, sqlstate
end

--- Counters for engine:status(): replica_reads, replica_fallbacks (and by
--- reason), and per replica its url, state, lag, reads, gtid_waits.
-- syntax: set:status(t)
function Set:status(t)
  t.replica_reads, t.replica_fallbacks = self.reads, self.fallbacks
  local reasons = {}
  for k, v in pairs(self.fallback_reasons) do reasons[k] = v end
  t.replica_fallback_reasons = reasons
  local list = {}
  for i, r in ipairs(self.list) do
    list[i] = { url = r.engine:url(), state = r.state, lag = r.lag, reads = r.reads,
                gtid_waits = r.gtid_waits, why = r.why }
  end
  t.replicas = list
  return t
end

function Set:dispose()
  for _, r in ipairs(self.list) do r.engine:dispose() end
end

return _M
