--- fsdb.session — units of work over one or more pooled connections.
--
--   local s = fsdb.session.new(engine)      -- or db:session()
--   s:execute("UPDATE products SET stock = stock - ? WHERE id = ?", 1, 7)
--   s:commit()                              -- or s:rollback()
--   s:close()                               -- rolls back what is left
--
-- What a session promises:
--   * Lazy: no connection is checked out until the first statement. A
--     session touches one connection per bind (database) it uses and keeps
--     it until commit, rollback or close, which return it to the pool.
--   * Autobegin: the first statement on a bind's connection runs
--     START TRANSACTION first (again after a statement that commits
--     implicitly, such as DDL). On a bind with replicas, a plain SELECT
--     while no transaction is open there goes to a replica instead (after
--     waiting for the session's last committed GTID) and begins nothing.
--   * commit/rollback apply to every bind used, in the order first used.
--   * If the server rolls a transaction back by itself (deadlock, lost
--     connection), the session refuses further statements with that error
--     until rollback(): a silent new transaction would commit half the work.
--   * transaction(fn) commits on success and rolls back on error; nested,
--     it uses SAVEPOINTs (also on a bind first touched inside it), and
--     {retries = n} runs fn again after a deadlock or lock-wait timeout.
--     begin() gives a transaction object for Lua 5.4's
--     `local tx <close> = s:begin()`.
-- Limits: binds are committed one after the other (no two-phase commit);
-- a statement that commits implicitly (DDL) ends the transaction on its bind
-- and with it that bind's savepoints.
-- Misuse (a closed session, an unknown bind, bad arguments) raises; what the
-- server or the network causes returns nil, err, errno, sqlstate.
-- An error raised through a session method called outside transaction() and
-- begin() (misuse, a failing on_connect, an interrupt from a debug hook)
-- first rolls back and returns every connection the session holds, as
-- SQLAlchemy's session does after an exception in its block: the session
-- stays open and its next statement starts a new transaction. Inside
-- transaction(fn) the raise passes to transaction(), which rolls back.

local sqlb = require("fsdb.sql")
local markers = require("fsdb.markers")
local core = require("fsdb.core")
local engine_mod = require("fsdb.engine")

local unpack = table.unpack or unpack

local _M = {}

local DEFAULT = "default"

-- Deadlock and lock-wait timeout: the whole attempt can simply run again.
-- So are failures that certainly rolled the transaction back before any
-- COMMIT was sent: a lost connection or a server that went away (its
-- transaction dies with it), a Galera node that is not ready (1047), a
-- server that became read-only under a switch-over (1290), a shutdown
-- (1053), no host in the wanted role (9021), no connection within
-- pool_timeout (9002: the checkout failed, nothing ran on it). Galera's certification
-- failures are 1213. A lost connection during COMMIT and a Galera 1180 at
-- COMMIT are not among them: they are 9020, outcome unknown — unless
-- commit markers found the transaction not committed (then the original
-- errno, 1180 included, is retried).
local RETRYABLE = { [1213] = true, [1205] = true, [2013] = true, [2006] = true, [2055] = true,
                    [1927] = true, [4031] = true, [1047] = true, [1290] = true, [1053] = true,
                    [2002] = true, [2003] = true, [9021] = true, [9002] = true, [1180] = true }

-- Conflicts (a deadlock, a certification failure) come back when the same
-- transactions run again at once: before the next attempt, a random pause
-- ("full jitter") under a cap that doubles from 5 ms up to the backoff
-- option (default 0.5 s) spreads them apart. core.random, not math.random:
-- forked workers share math.random's state and would pause alike.
local CONFLICT = { [1213] = true }
local BACKOFF_FIRST, BACKOFF_DEFAULT = 0.005, 0.5

-- The connection is gone (gone away, lost, lost at reading, malformed
-- packet, killed, server shutdown, idle disconnect, lost during TLS): the
-- server rolled any open transaction back, and a COMMIT sent on it may or
-- may not have committed.
local LOST = { [2006] = true, [2013] = true, [2055] = true, [2027] = true, [1927] = true,
               [1053] = true, [4031] = true, [5013] = true }
local COMMIT_UNKNOWN = 9020
-- "Got error 6 during COMMIT" from a Galera node leaving the primary
-- component: the write set may have reached the others. The Galera drill
-- saw an autocommit INSERT that got it applied all the same, so it is an
-- unknown outcome like a lost connection, never retried blindly.
local GALERA_COMMIT_FAILED = 1180

local Session = {}
Session.__index = Session

local View = {}
View.__index = View

local Transaction = {}
Transaction.__index = Transaction

local function pack(...)
  return { n = select("#", ...), ... }
end

local function weak_keys()
  return setmetatable({}, { __mode = "k" })
end

local function sorted_names(engines)
  local names = {}
  for name in pairs(engines) do names[#names + 1] = tostring(name) end
  table.sort(names)
  return names
end

--- The error text for a bind name that is not configured.
-- syntax: msg = fsdb.session.unknown_bind(name, engines)
function _M.unknown_bind(name, engines)
  return ("fsdb: unknown bind '%s' (known: %s)"):format(tostring(name),
    table.concat(sorted_names(engines), ", "))
end

-- Raises at the caller of the public method that called it.
local function check_open(s)
  if s._closed then
    error("fsdb: session is closed", 3)
  end
end

-- The message without its "fsdb: " prefix, for embedding in another one.
local function bare(err)
  return (tostring(err):gsub("^fsdb: ", ""))
end

local function aborted_failure(s)
  local a = s._aborted
  s.last_errno = a.errno
  return nil, ("fsdb: the transaction on bind '%s' was rolled back by the server (%s); "
    .. "call rollback() and start over"):format(a.bind, bare(a.err)), a.errno, a.sqlstate
end

-- Records a failed statement. If the connection is no longer inside a
-- transaction, the server has rolled it back (deadlock, disconnect): the
-- session remembers that, so no later statement runs in a fresh
-- transaction of its own.
--
-- An error reply carries no server status, so right after a failure
-- conn:in_transaction() still shows the state from before the statement
-- (true even after a deadlock). A trivial statement refreshes it; it costs a
-- round trip on failures only.
local function failed(s, conn, bind, err, errno, sqlstate)
  s.last_errno = errno
  if not s._aborted then
    local ok, res = pcall(conn.execute, conn, "DO 0")
    local open = ok and res and conn:in_transaction()
    if not open then
      s._aborted = { bind = bind, err = err, errno = errno, sqlstate = sqlstate }
    end
  end
  return nil, err, errno, sqlstate
end

local function release(s, bind)
  local conn = s._conns[bind]
  for i, name in ipairs(s._order) do
    if name == bind then
      table.remove(s._order, i)
      break
    end
  end
  if conn then pcall(conn.close, conn) end
  s._conns[bind] = nil
end

-- The bind's connection, checked out and inside a transaction; savepoints
-- of the open nested transactions are set on a connection that joins late.
local function ensure(s, bind)
  if s._aborted then
    return aborted_failure(s)
  end
  local conn = s._conns[bind]
  local fresh = false
  if not conn then
    -- Listed first and stored by the checkout itself: a raise at any
    -- point leaves no connection out of the session's reach.
    s._order[#s._order + 1] = bind
    local engine = s._engines[bind]
    local c, err, errno, sqlstate
    if engine._checkout_into then
      c, err, errno, sqlstate = engine:_checkout_into(s._conns, bind)
    else
      c, err, errno, sqlstate = engine:connect()
      s._conns[bind] = c
    end
    if not c then
      release(s, bind)
      s.last_errno = errno
      return nil, err, errno, sqlstate
    end
    conn, fresh = c, true
  end
  if not conn:in_transaction() then
    local ok, err, errno, sqlstate = conn:execute("START TRANSACTION")
    if not ok then
      s.last_errno = errno
      if fresh then release(s, bind) end
      return nil, err, errno, sqlstate
    end
    for i = 2, #s._frames do
      local f = s._frames[i]
      local done, err2, errno2, sqlstate2 = conn:execute("SAVEPOINT " .. f.name)
      if not done then
        return failed(s, conn, bind, err2, errno2, sqlstate2)
      end
      if not f.has[bind] then
        f.has[bind] = true
        f.binds[#f.binds + 1] = bind
      end
    end
  end
  return conn
end

-- After a COMMIT on a bind with replicas: the session's read-your-writes
-- record, the GTID its last write got (false when it could not be read:
-- replica reads then go to the primary until a later commit records one).
-- The COMMIT's OK packet carries it when the server tracks last_gtid (the
-- engine asked for that on connect); a commit that wrote nothing, a server
-- without tracking or a transport that does not read it costs a query.
local function last_gtid(conn)
  local tracked = conn.tracked_gtid
  if tracked then
    local fine, g = pcall(tracked, conn)
    if fine and type(g) == "string" then return { gtid = g, done = {} } end
  end
  local ok, res = pcall(conn.query, conn, "SELECT @@last_gtid AS g")
  local g = ok and res and res[1] and res[1].g
  return { gtid = type(g) == "string" and g or false, done = {} }
end

-- GTID positions as MASTER_GTID_WAIT reads them ("domain-server-seq", a
-- comma-separated list with one per domain). A session's position is,
-- per domain, the highest sequence number it has seen: a later COMMIT on
-- another pooled connection (a read-only one reads that connection's own,
-- possibly older @@last_gtid) must not move it back.
local function seq_after(a, b) -- decimal strings without leading zeros
  if #a ~= #b then return #a > #b end
  return a > b
end

local function merge_gtids(old, new)
  if type(old) ~= "string" or old == "" then return new end
  if new == "" then return old end
  local order, by_domain = {}, {}
  for list in pairs({ [old] = true, [new] = true }) do
    for gtid in list:gmatch("[^,%s]+") do
      local domain, seq = gtid:match("^(%d+)%-%d+%-(%d+)$")
      if not domain then return new end -- not a position we can read: trust the newest
      local have = by_domain[domain]
      if not have then order[#order + 1] = domain end
      if not have or seq_after(seq, have.seq) then by_domain[domain] = { gtid = gtid, seq = seq } end
    end
  end
  table.sort(order, function(x, y) return seq_after(y, x) end)
  local out = {}
  for i, domain in ipairs(order) do out[i] = by_domain[domain].gtid end
  return table.concat(out, ",")
end

-- The record after a COMMIT: the merged position, and the replicas known
-- to have it kept only when the position did not move.
local function after_commit(prev, rec)
  if not prev or rec.gtid == false or prev.gtid == false then return rec end
  local merged = merge_gtids(prev.gtid, rec.gtid)
  if merged == prev.gtid then return prev end
  return { gtid = merged, done = {} }
end

-- A read that may go to a replica: the bind has replicas, the session has
-- no transaction open on it (no connection held, no transaction()/begin()
-- frame) or the route forces one, and the statement is a plain SELECT (or
-- the route is "replica"). Returns false when the read goes the usual way.
local function replica_read(s, bind, route, method, ...)
  local engine = s._engines[bind]
  if not engine._replicas or route == "primary" then return false end
  if route ~= "replica" and (s._conns[bind] or #s._frames > 0 or s._aborted) then return false end
  local res, err, errno, sqlstate = engine:_replica_read(route, s._fresh[bind], method, ...)
  if res == nil then s.last_errno = errno end
  return res, err, errno, sqlstate
end

-- One statement through the bind's connection; conn:<method>(...).
local function run(s, bind, method, ...)
  local conn, err, errno, sqlstate = ensure(s, bind)
  if not conn then
    return nil, err, errno, sqlstate
  end
  local res, err2, errno2, sqlstate2 = conn[method](conn, ...)
  if res == nil then
    return failed(s, conn, bind, err2, errno2, sqlstate2)
  end
  return res
end

local function close_cursors(s)
  local open = s._cursors
  s._cursors = weak_keys()
  for cursor in pairs(open) do
    pcall(cursor.close, cursor)
  end
end

-- Ends the session transaction on every bind (verb COMMIT or ROLLBACK) and
-- returns the connections to the pool.
--
-- This is not a two-phase commit: binds are committed one after the other,
-- so when a COMMIT fails, the binds committed before it stay committed; the
-- failing one and those after it are rolled back, and the error says which
-- is which.
local function finish(s, verb)
  close_cursors(s)
  -- The connections stay in s._conns until closed: a raise in between
  -- leaves them for release_all (closing twice is harmless).
  local order, conns, aborted = s._order, s._conns, s._aborted
  s._order, s._aborted, s._sp = {}, nil, 0
  local committed = {}
  local failure, raised
  for _, bind in ipairs(order) do
    local conn = conns[bind]
    if conn then
      local want = (verb == "COMMIT" and not failure and not aborted) and "COMMIT" or "ROLLBACK"
      local ok, res, err, errno, sqlstate
      local engine, marker = s._engines[bind], nil
      if want == "COMMIT" and markers.enabled(engine) then
        -- The marker goes in last, right before COMMIT.
        marker = markers.new_id()
        res, err, errno, sqlstate = markers.prepare(engine)
        if res then res, err, errno, sqlstate = markers.write(conn, marker) end
        if not res then
          failure = { bind = bind, err = err, errno = errno, sqlstate = sqlstate }
          want, marker = "ROLLBACK", nil
        end
      end
      if want == "ROLLBACK" and aborted and aborted.bind == bind and LOST[aborted.errno] then
        -- Nothing to roll back: the server did it when the connection went
        -- (and the broken handle would refuse the statement).
        ok, res = true, true
      else
        ok, res, err, errno, sqlstate = pcall(conn.execute, conn, want)
        if want == "ROLLBACK" and ((ok and not res and LOST[errno])
            or (not ok and tostring(res):find("connection is broken", 1, true))) then
          -- A rollback whose connection is gone has happened: the server
          -- ends a transaction with its connection. The pool drops it.
          ok, res = true, true
        end
      end
      if not ok then
        raised = raised or res
        failure = failure or { bind = bind, err = res }
      elseif not res then
        local outcome
        local unknown = want == "COMMIT" and (LOST[errno] or errno == GALERA_COMMIT_FAILED)
        local what = errno == GALERA_COMMIT_FAILED
          and "the Galera node could not replicate the COMMIT (it left the primary component)"
          or "the connection was lost during COMMIT"
        if unknown and marker then
          outcome = markers.resolve(engine, marker)
        end
        if outcome == true then
          res = true -- committed: the marker is there
        elseif outcome == false then
          failure = failure or { bind = bind, errno = errno, sqlstate = sqlstate,
                                 err = ("not committed (%s and the commit marker is absent): %s")
                                   :format(what, bare(err)) }
        elseif unknown and not failure then
          failure = { bind = bind, errno = COMMIT_UNKNOWN, sqlstate = "08007",
                      err = ("commit outcome unknown: %s, so the server may or may not have committed"
                        .. " (%s [%d])"):format(what, bare(err), errno) }
        end
        if not res then
          failure = failure or { bind = bind, err = err, errno = errno, sqlstate = sqlstate }
        end
      end
      if ok and res and want == "COMMIT" then
        if marker then markers.maybe_clean(engine) end
        if engine._replicas then s._fresh[bind] = after_commit(s._fresh[bind], last_gtid(conn)) end
        committed[#committed + 1] = bind
      end
      pcall(conn.close, conn)
      conns[bind] = nil
    end
  end
  s._conns = {}
  if raised then
    error(raised, 0)
  end
  if verb == "COMMIT" and aborted then
    s.last_errno = aborted.errno
    return nil, ("fsdb: commit failed: the transaction on bind '%s' was rolled back by the server (%s)")
      :format(aborted.bind, bare(aborted.err)), aborted.errno, aborted.sqlstate
  end
  if failure then
    s.last_errno = failure.errno
    local msg
    if verb == "COMMIT" then
      msg = ("fsdb: COMMIT failed on bind '%s': %s"):format(failure.bind, bare(failure.err))
      if #committed > 0 then
        msg = msg .. ("; already committed (no two-phase commit): %s"):format(table.concat(committed, ", "))
      end
    else
      msg = ("fsdb: ROLLBACK failed on bind '%s': %s"):format(failure.bind, bare(failure.err))
    end
    return nil, msg, failure.errno, failure.sqlstate
  end
  return true
end

---------------------------------------------------------------------------
-- Transaction frames: one per open transaction(fn) or begin() object. The
-- outermost frame is the session transaction itself; each inner one is a
-- SAVEPOINT on every connection the session holds (and on connections
-- that join while it is open).
---------------------------------------------------------------------------

local function open_frame(s, kind)
  local f = { kind = kind, binds = {}, has = {}, done = false }
  if #s._frames > 0 then
    s._sp = s._sp + 1
    f.name = "fsdb_sp_" .. s._sp
    for _, bind in ipairs(s._order) do
      local conn, err, errno, sqlstate = ensure(s, bind)
      if not conn then
        return nil, err, errno, sqlstate
      end
      local ok, err2, errno2, sqlstate2 = conn:execute("SAVEPOINT " .. f.name)
      if not ok then
        return failed(s, conn, bind, err2, errno2, sqlstate2)
      end
      f.has[bind] = true
      f.binds[#f.binds + 1] = bind
    end
  end
  s._frames[#s._frames + 1] = f
  return f
end

local function frame_index(s, f)
  for i = #s._frames, 1, -1 do
    if s._frames[i] == f then return i end
  end
end

-- Pops frame i and every frame inside it.
local function pop_frames(s, i)
  local f = s._frames[i]
  for j = #s._frames, i, -1 do
    s._frames[j].done = true
    s._frames[j] = nil
  end
  return f
end

local function on_savepoint(s, f, sql)
  for _, bind in ipairs(f.binds) do
    local conn = s._conns[bind]
    if conn then
      local ok, err, errno, sqlstate = conn:execute(sql .. f.name)
      if not ok then
        return failed(s, conn, bind, err, errno, sqlstate)
      end
    end
  end
  return true
end

-- Ends frame i (and what is inside it): the outermost one with COMMIT or
-- ROLLBACK, a nested one with RELEASE SAVEPOINT or ROLLBACK TO SAVEPOINT.
local function end_frame(s, i, commit)
  local f = pop_frames(s, i)
  if i == 1 then
    return finish(s, commit and "COMMIT" or "ROLLBACK")
  end
  if s._aborted then
    -- The server already rolled back the whole transaction.
    return aborted_failure(s)
  end
  return on_savepoint(s, f, commit and "RELEASE SAVEPOINT " or "ROLLBACK TO SAVEPOINT ")
end

-- Rolls back frame i (and what is inside it).
local function rollback_frame(s, i) return end_frame(s, i, false) end

-- Commits frame i, which must be the innermost one.
local function commit_frame(s, i) return end_frame(s, i, true) end

-- A begin() object collected while active marks its frame; the session rolls
-- it back at its next call, never inside the collector (which may run in the
-- middle of another statement on the same connection).
local function reap(s)
  if not s._reap then return end
  s._reap = false
  for i = 1, #s._frames do
    if s._frames[i].abandoned then
      if warn then
        warn("fsdb: a transaction from session:begin() was garbage-collected while active; rolled back")
      end
      rollback_frame(s, i)
      return
    end
  end
end

-- After an error raised outside any transaction()/begin(): roll back and
-- return every connection the session holds, end every frame.
local function release_all(s)
  close_cursors(s)
  for j = #s._frames, 1, -1 do
    s._frames[j].done = true
    s._frames[j] = nil
  end
  local conns = s._conns
  for bind, conn in pairs(conns) do
    pcall(conn.execute, conn, "ROLLBACK")
    pcall(conn.close, conn)
    conns[bind] = nil
  end
  s._order, s._conns, s._aborted, s._sp = {}, {}, nil, 0
end

-- A public method run protected (see the header: a raise releases the
-- session's connections when no transaction is open). The method's own
-- errors lose their position in pcall; the caller's is put back.
local function guard(method)
  return function(self, ...)
    local s = rawget(self, "_s") or self
    local top = #s._frames == 0
    local r = pack(pcall(method, self, ...))
    if r[1] then
      return unpack(r, 2, r.n)
    end
    local err = r[2]
    if top then release_all(s) end
    if type(err) == "string" and err:sub(1, 6) == "fsdb: " then
      local info = debug.getinfo(2, "Sl")
      if info and info.currentline and info.currentline > 0 then
        err = ("%s:%d: %s"):format(info.short_src, info.currentline, err)
      end
    end
    error(err, 0)
  end
end

---------------------------------------------------------------------------
-- Session
---------------------------------------------------------------------------

-- engine_or_db → the name → engine table the session draws from.
local function engines_of(x)
  if type(x) == "table" and type(rawget(x, "engines")) == "table" and rawget(x, "engine") then
    return x.engines
  end
  if type(x) == "table" and type(x.connect) == "function" then
    return { [DEFAULT] = x }
  end
  error("fsdb: bad argument #1 to 'session.new' (engine or db from fsdb.new expected, got "
    .. type(x) .. ")", 3)
end

--- Creates a session. No connection is checked out until the first statement.
-- syntax: s = fsdb.session.new(engine_or_db)
function _M.new(engine_or_db)
  local engines = engines_of(engine_or_db)
  return setmetatable({
    _engines = engines,
    _conns = {},       -- bind → conn, while a session transaction is open
    _order = {},       -- binds in the order first used
    _frames = {},      -- open transaction(fn) / begin() frames, outermost first
    _sp = 0,           -- savepoint counter
    _aborted = nil,    -- set when the server rolled the transaction back
    _fresh = {},       -- bind → read-your-writes record (binds with replicas)
    _cursors = weak_keys(),
    _views = {},
    _closed = false,
    _reap = false,
    --- errno of the last failed statement (nil if none failed yet).
    last_errno = nil,
  }, Session)
end

-- Store helpers: the SQL comes from fsdb.sql. Builder errors are raised at
-- the user's call: build (1) ← helper (2) ← method (3) ← caller (4).
local function build(kind, ...)
  local ok, sql, params = pcall(sqlb.build[kind], ...)
  if not ok then error(sql, 4) end
  return sql, params
end

local HELPERS = {}

--- Runs one statement in the session transaction.
-- syntax: res, err, errno, sqlstate = s:execute(sql, ...)
function HELPERS.execute(s, bind, sql, ...)
  local res, err, errno, sqlstate = replica_read(s, bind, nil, "execute", sql, ...)
  if res ~= false then return res, err, errno, sqlstate end
  return run(s, bind, "execute", sql, ...)
end

--- Like conn:query, in the session transaction.
-- syntax: res, err, errno, sqlstate = s:query(sql, params, opts)
function HELPERS.query(s, bind, sql, params, opts)
  local route
  route, opts = engine_mod.split_route(opts, 3)
  local res, err, errno, sqlstate = replica_read(s, bind, route, "query", sql, params, opts)
  if res ~= false then return res, err, errno, sqlstate end
  return run(s, bind, "query", sql, params, opts)
end

--- One statement for many parameter sets, in the session transaction.
-- syntax: res, err, errno, sqlstate = s:executemany(sql, sets)
function HELPERS.executemany(s, bind, sql, sets)
  return run(s, bind, "executemany", sql, sets)
end

-- errno and sqlstate of a failure conn:rows raised (nil for misuse).
local function stream_failure(msg)
  local errno, sqlstate = tostring(msg):match("%(errno (%d+), sqlstate (%w+)%)$")
  return tonumber(errno), sqlstate
end

--- Streams rows: for row in s:rows(sql, ...) do … end. The cursor is closed
--- on break under Lua 5.4; on LuaJIT call cursor:close() after an early break
--- (commit, rollback and close also close the session's open cursors).
--- A failure raises (a for loop would lose nil, err), with errno and
--- sqlstate in the message; the session stays as after a failed execute.
-- syntax: for row in s:rows(sql, ...) do … end
function HELPERS.rows(s, bind, sql, ...)
  local conn, err, errno, sqlstate = ensure(s, bind)
  if not conn then
    return nil, err, errno, sqlstate
  end
  local ok, cursor = pcall(conn.rows, conn, sql, ...)
  if not ok then
    local errno2, sqlstate2 = stream_failure(cursor)
    if not errno2 then error(cursor, 0) end -- misuse: raised as it is
    return failed(s, conn, bind, cursor, errno2, sqlstate2)
  end
  s._cursors[cursor] = true
  return cursor, nil, nil, cursor
end

--- rows() with a parameter table and conn:query options ({array = true}).
-- syntax: for row in s:query_rows(sql, params, opts) do … end
function HELPERS.query_rows(s, bind, sql, params, opts)
  local conn, err, errno, sqlstate = ensure(s, bind)
  if not conn then
    return nil, err, errno, sqlstate
  end
  local ok, cursor = pcall(conn.query_rows, conn, sql, params, opts)
  if not ok then
    local errno2, sqlstate2 = stream_failure(cursor)
    if not errno2 then error(cursor, 0) end -- misuse: raised as it is
    return failed(s, conn, bind, cursor, errno2, sqlstate2)
  end
  s._cursors[cursor] = true
  return cursor, nil, nil, cursor
end

--- The bind's connection, inside the session transaction (do not close it).
-- syntax: conn, err, errno, sqlstate = s:connection()
function HELPERS.connection(s, bind)
  return ensure(s, bind)
end

--- INSERT INTO tbl (sorted columns) VALUES (?, …); returns the new id.
-- syntax: id, err, errno, sqlstate = s:insert(tbl, values)
function HELPERS.insert(s, bind, tbl, values)
  local sql, params = build("insert", tbl, values)
  local res, err, errno, sqlstate = run(s, bind, "execute", sql, params)
  if not res then return nil, err, errno, sqlstate end
  return res.insert_id
end

--- UPDATE tbl SET … WHERE …; returns the number of affected rows. where is
--- required (fsdb.all updates every row; nil or {} raises).
-- syntax: n, err, errno, sqlstate = s:update(tbl, values, where)
function HELPERS.update(s, bind, tbl, values, where)
  local sql, params = build("update", tbl, values, where)
  local res, err, errno, sqlstate = run(s, bind, "execute", sql, params)
  if not res then return nil, err, errno, sqlstate end
  return res.affected_rows
end

--- DELETE FROM tbl WHERE …; returns the number of affected rows. where is
--- required (fsdb.all deletes every row; nil or {} raises).
-- syntax: n, err, errno, sqlstate = s:delete(tbl, where)
function HELPERS.delete(s, bind, tbl, where)
  local sql, params = build("delete", tbl, where)
  local res, err, errno, sqlstate = run(s, bind, "execute", sql, params)
  if not res then return nil, err, errno, sqlstate end
  return res.affected_rows
end

--- SELECT with where (fsdb.sql's where tables), order_by, limit, offset, for_update.
-- syntax: rows, err, errno, sqlstate = s:select(tbl, {columns, where, order_by, limit, offset, for_update})
function HELPERS.select(s, bind, tbl, opts)
  local sql, params = build("select", tbl, opts)
  local res, err, errno, sqlstate = replica_read(s, bind, nil, "execute", sql, params)
  if res ~= false then return res, err, errno, sqlstate end
  return run(s, bind, "execute", sql, params)
end

-- Success is one value (rows: four, for the generic for), failure four.
local function results(a, b, c, d)
  if b == nil and c == nil and d == nil then return a end
  return a, b, c, d
end

-- The same methods on the session (default bind) and on using(name) views.
-- Not tail calls, so that error levels count the method's frame.
for name, helper in pairs(HELPERS) do
  Session[name] = guard(function(self, ...)
    check_open(self)
    reap(self)
    local a, b, c, d = helper(self, DEFAULT, ...)
    return results(a, b, c, d)
  end)
  View[name] = guard(function(self, ...)
    check_open(self._s)
    reap(self._s)
    local a, b, c, d = helper(self._s, self._bind, ...)
    return results(a, b, c, d)
  end)
end

-- The iterator forms raise their failures, as io.lines does; outside the
-- guard, so that the session stays as after a failed execute (its
-- transaction is not rolled back for a typo in a query).
local function raising(method)
  return function(self, ...)
    local a, b, c, d = method(self, ...)
    if a == nil then
      if c ~= nil and not tostring(b):find("(errno ", 1, true) then
        b = ("%s (errno %s, sqlstate %s)"):format(tostring(b), tostring(c), tostring(d))
      end
      error(b, 2)
    end
    return a, b, c, d
  end
end
for _, name in ipairs({ "rows", "query_rows" }) do
  Session[name] = raising(Session[name])
  View[name] = raising(View[name])
end

--- The session's view of a bind: execute, query, executemany, rows,
--- query_rows, connection and the store helpers, in the same session transaction.
-- syntax: view = s:using(name)
function Session:using(name)
  check_open(self)
  if name == nil then name = DEFAULT end
  if rawget(self._engines, name) == nil then
    error(_M.unknown_bind(name, self._engines), 2)
  end
  local view = self._views[name]
  if not view then
    view = setmetatable({ _s = self, _bind = name, bind = name }, View)
    self._views[name] = view
  end
  return view
end

function View:__tostring()
  return ("fsdb.session view of bind '%s'"):format(self._bind)
end

-- Reads with a forced route: s:using_replica(name), s:using_primary(name).
local RoutedView = {}
RoutedView.__index = RoutedView

local ROUTED = {
  execute = function(s, bind, route, sql, ...)
    local res, err, errno, sqlstate = replica_read(s, bind, route, "execute", sql, ...)
    if res ~= false then return res, err, errno, sqlstate end
    return run(s, bind, "execute", sql, ...)
  end,
  query = function(s, bind, route, sql, params, opts)
    local r
    r, opts = engine_mod.split_route(opts, 3)
    if r ~= nil and r ~= route then
      error(("fsdb: query option route = \"%s\" on a session:using_%s() view"):format(r, route), 3)
    end
    local res, err, errno, sqlstate = replica_read(s, bind, route, "query", sql, params, opts)
    if res ~= false then return res, err, errno, sqlstate end
    return run(s, bind, "query", sql, params, opts)
  end,
  select = function(s, bind, route, tbl, opts)
    local sql, params = build("select", tbl, opts)
    local res, err, errno, sqlstate = replica_read(s, bind, route, "execute", sql, params)
    if res ~= false then return res, err, errno, sqlstate end
    return run(s, bind, "execute", sql, params)
  end,
}
for name, fn in pairs(ROUTED) do
  RoutedView[name] = guard(function(self, ...)
    check_open(self._s)
    reap(self._s)
    local a, b, c, d = fn(self._s, self._bind, self._route, ...)
    return results(a, b, c, d)
  end)
end

function RoutedView:__tostring()
  return ("fsdb.session %s reads of bind '%s'"):format(self._route, self._bind)
end

local function routed_view(s, name, route)
  if name == nil then name = DEFAULT end
  if rawget(s._engines, name) == nil then
    error(_M.unknown_bind(name, s._engines), 3)
  end
  local key = route .. "\0" .. name
  local view = s._views[key]
  if not view then
    view = setmetatable({ _s = s, _bind = name, _route = route, bind = name }, RoutedView)
    s._views[key] = view
  end
  return view
end

--- Reads (execute, query, select) of a bind sent to one of its replicas,
--- whatever the statement and whether a transaction is open (outside it:
--- autocommit on the replica, after waiting for the session's last
--- committed write). With no replica usable, or none configured, they go
--- to the primary as any session read would.
-- syntax: view = s:using_replica(name)
function Session:using_replica(name)
  check_open(self)
  return routed_view(self, name, "replica")
end

--- Reads (execute, query, select) of a bind kept on the primary, in the
--- session transaction (they begin one, as any session statement).
-- syntax: view = s:using_primary(name)
function Session:using_primary(name)
  check_open(self)
  return routed_view(self, name, "primary")
end

local function no_open_frames(s, what)
  if #s._frames > 0 then
    error(("fsdb: session:%s() inside transaction() or begin(); return from the function, "
      .. "raise, or use the transaction object's %s() instead"):format(what, what), 3)
  end
end

--- Commits every bind used, then returns the connections to the pool.
-- syntax: ok, err, errno, sqlstate = s:commit()
Session.commit = guard(function(self)
  check_open(self)
  reap(self)
  no_open_frames(self, "commit")
  return finish(self, "COMMIT")
end)

--- Rolls back every bind used, then returns the connections to the pool.
-- syntax: ok, err, errno, sqlstate = s:rollback()
Session.rollback = guard(function(self)
  check_open(self)
  reap(self)
  no_open_frames(self, "rollback")
  return finish(self, "ROLLBACK")
end)

--- Rolls back what is uncommitted and returns the connections; the session
--- cannot be used afterwards. Closing twice is harmless.
-- syntax: ok = s:close()
function Session:close()
  if self._closed then return true end
  if #self._frames > 0 then
    pop_frames(self, 1)
  end
  pcall(finish, self, "ROLLBACK")
  release_all(self) -- whatever a raise inside finish left
  self._closed = true
  return true
end

--- Whether the session holds connections with uncommitted work.
-- syntax: b = s:in_transaction()
function Session:in_transaction()
  return #self._order > 0
end

--- The bind names in use right now, in the order first used.
-- syntax: names = s:binds_in_use()
function Session:binds_in_use()
  local names = {}
  for i, name in ipairs(self._order) do names[i] = name end
  return names
end

function Session:__tostring()
  if self._closed then return "fsdb.session (closed)" end
  if #self._order == 0 then return "fsdb.session (idle)" end
  return "fsdb.session (in transaction on " .. table.concat(self._order, ", ") .. ")"
end

-- opts of transaction(): {retries = n, on_retry = function(attempt, errno, err), backoff = s}
local TX_OPTIONS = { retries = true, on_retry = true, backoff = true }

-- A pause that lets an event loop run meanwhile where one is driving this
-- code (OpenResty's yieldable phases, a cqueues coroutine); else a sleep.
local YIELDABLE = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
                    ssl_session_fetch = true }
local function pause(seconds)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" and YIELDABLE[ngx.get_phase()] then
    return ngx.sleep(seconds)
  end
  local cq = package.loaded.cqueues
  if type(cq) == "table" and cq.running and cq.running() then
    return cq.sleep(seconds)
  end
  core.sleep(seconds)
end

local function backoff_option(opts)
  local b = opts.backoff
  if b == nil then return BACKOFF_DEFAULT end
  if b == false then return 0 end
  if type(b) ~= "number" or b ~= b or b < 0 or b > 60 then
    error("fsdb: bad value for transaction option 'backoff' (expected seconds 0-60 or false)", 4)
  end
  return b
end

local function tx_options(opts)
  if opts == nil then return 0, nil, BACKOFF_DEFAULT end
  if type(opts) ~= "table" then
    error("fsdb: bad argument #2 to 'transaction' (table expected, got " .. type(opts) .. ")", 3)
  end
  for k in pairs(opts) do
    if not TX_OPTIONS[k] then
      error(("fsdb: unknown transaction option '%s' (known: backoff, on_retry, retries)"):format(tostring(k)), 3)
    end
  end
  if opts.on_retry ~= nil and type(opts.on_retry) ~= "function" then
    error("fsdb: bad value for transaction option 'on_retry' (expected a function(attempt, errno, err))", 3)
  end
  local backoff = backoff_option(opts)
  local n = opts.retries
  if n == nil then return 0, opts.on_retry, backoff end
  if type(n) ~= "number" or n ~= math.floor(n) or n < 0 or n == math.huge then
    error("fsdb: bad value for transaction option 'retries' (expected a whole number >= 0)", 3)
  end
  return n, opts.on_retry, backoff
end

local function callable(fn)
  if type(fn) == "function" then return true end
  local mt = getmetatable(fn)
  return type(mt) == "table" and mt.__call ~= nil
end

-- A failure returned by fn: first value nil, second not.
local function returned_failure(r)
  return r[1] and r[2] == nil and r[3] ~= nil
end

local function nested(s, fn)
  local f, err, errno, sqlstate = open_frame(s, "fn")
  if not f then
    return nil, err, errno, sqlstate
  end
  local r = pack(pcall(fn, s))
  if f.done then
    -- An enclosing transaction ended (or the session was closed) inside fn.
    if not r[1] then error(r[2], 0) end
    error("fsdb: the enclosing transaction ended inside a nested transaction()", 3)
  end
  local i = frame_index(s, f)
  if i ~= #s._frames then
    rollback_frame(s, i)
    if not r[1] then error(r[2], 0) end
    error("fsdb: a transaction from begin() was left open inside transaction(); rolled back", 3)
  end
  if not r[1] then
    rollback_frame(s, i)
    error(r[2], 0)
  end
  if returned_failure(r) then
    rollback_frame(s, i)
    return unpack(r, 2, r.n)
  end
  local ok, err2, errno2, sqlstate2 = commit_frame(s, i)
  if not ok then
    return nil, err2, errno2, sqlstate2
  end
  return unpack(r, 2, r.n)
end

--- Runs fn(s) in a transaction: commit when it returns, roll back when it
--- raises (re-raised) or returns nil, err, … (returned). Nested calls use a
--- SAVEPOINT. opts.retries = n runs fn again, up to n more times, after a
--- deadlock (1213) or lock-wait timeout (1205) and the other failures that
--- certainly rolled back (RETRYABLE); opts.on_retry(attempt, errno, err)
--- is called before each new attempt. After a conflict (1213) the
--- next attempt waits a random time below min(opts.backoff (0.5 s),
--- 5 ms × 2^(attempt-1)); backoff = false for none.
-- syntax: ... = s:transaction(fn, {retries = n, on_retry = function(attempt, errno, err) end, backoff = s})
local function transaction(self, fn, opts)
  check_open(self)
  if not callable(fn) then
    error("fsdb: bad argument #1 to 'transaction' (function expected, got " .. type(fn) .. ")", 2)
  end
  local retries, on_retry, backoff = tx_options(opts)
  reap(self)
  if #self._frames > 0 then
    -- Retries belong to the outermost transaction: a deadlock has already
    -- rolled back everything, so only the outermost call can start over.
    local a = pack(nested(self, fn))
    return unpack(a, 1, a.n)
  end
  -- Statements run before transaction() are part of the same session
  -- transaction; they cannot be replayed, so they rule out retries.
  if #self._order > 0 then retries = 0 end
  local attempt = 0
  while true do
    attempt = attempt + 1
    self.last_errno = nil
    local f = open_frame(self, "fn")
    local r = pack(pcall(fn, self))
    if f.done then
      if not r[1] then error(r[2], 0) end
      error("fsdb: the session was closed or its transaction ended inside transaction()", 2)
    end
    local errno, failure
    if #self._frames ~= 1 then
      rollback_frame(self, 1)
      if r[1] then
        error("fsdb: a transaction from begin() was left open inside transaction(); rolled back", 2)
      end
    end
    if not r[1] then
      errno, failure = self.last_errno, r[2]
      if not f.done then rollback_frame(self, 1) end
      if not (retries > 0 and RETRYABLE[errno]) then
        error(r[2], 0)
      end
    elseif returned_failure(r) then
      errno, failure = r[4], r[3]
      rollback_frame(self, 1)
      if not (retries > 0 and RETRYABLE[errno]) then
        return unpack(r, 2, r.n)
      end
    else
      local ok, err, errno2, sqlstate = commit_frame(self, 1)
      if ok then
        return unpack(r, 2, r.n)
      end
      if not (retries > 0 and RETRYABLE[errno2]) then
        return nil, err, errno2, sqlstate
      end
      errno, failure = errno2, err
    end
    -- The attempt was rolled back and will run again: say why, if asked.
    if on_retry then on_retry(attempt, errno, failure) end
    if CONFLICT[errno] and backoff > 0 then
      pause(core.random() * math.min(backoff, BACKOFF_FIRST * 2 ^ (attempt - 1)))
    end
    retries = retries - 1
  end
end
Session.transaction = guard(transaction)

---------------------------------------------------------------------------
-- Transaction objects (s:begin())
---------------------------------------------------------------------------

local function mark_abandoned(s, f)
  if not f.done then
    f.abandoned = true
    s._reap = true
  end
end

--- Starts a transaction and returns its object: the session transaction
--- when none is open (its first statement autobegins), a SAVEPOINT when one
--- is. Lua 5.4: `local tx <close> = s:begin()` rolls back at the end of the
--- scope unless tx:commit() ran. LuaJIT has no <close>: call tx:close() (it
--- rolls back unless committed), or use s:transaction(fn), which works the
--- same on both.
-- syntax: tx, err, errno, sqlstate = s:begin()
function Session:begin()
  check_open(self)
  reap(self)
  local f, err, errno, sqlstate = open_frame(self, "tx")
  if not f then
    return nil, err, errno, sqlstate
  end
  local tx = { _s = self, _f = f }
  if newproxy then
    -- Lua 5.1/LuaJIT run __gc only for userdata: a proxy carries it.
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function() mark_abandoned(self, f) end
    tx._gc = proxy
  end
  return setmetatable(tx, Transaction)
end

local function inactive()
  error("fsdb: this transaction is no longer active (committed, rolled back or closed)", 3)
end

--- Commits: the session transaction (every bind), or releases the savepoint.
-- syntax: ok, err, errno, sqlstate = tx:commit()
function Transaction:commit()
  local s, f = self._s, self._f
  if f.done then inactive() end
  reap(s)
  if f.done then inactive() end
  local i = frame_index(s, f)
  if i ~= #s._frames then
    error("fsdb: an inner transaction is still open; commit or close it first", 2)
  end
  return commit_frame(s, i)
end

--- Rolls back (to the savepoint when nested). A no-op on a transaction that
--- is no longer active.
-- syntax: ok, err, errno, sqlstate = tx:rollback()
function Transaction:rollback()
  local s, f = self._s, self._f
  if f.done then return true end
  reap(s)
  if f.done then return true end
  return rollback_frame(s, frame_index(s, f))
end

--- Rolls back unless committed; closing twice is harmless.
-- syntax: tx:close()
function Transaction:close()
  if not self._f.done then
    self:rollback()
  end
  return true
end

--- Whether commit/rollback/close has not happened yet.
-- syntax: b = tx:is_active()
function Transaction:is_active()
  return not self._f.done
end

-- __close must not raise over the error that may be unwinding the scope.
function Transaction:__close()
  if not self._f.done then
    pcall(self.rollback, self)
  end
end

function Transaction:__gc()
  mark_abandoned(self._s, self._f)
end

function Transaction:__tostring()
  local what = self._f.name and ("savepoint " .. self._f.name) or "transaction"
  return ("fsdb.session %s (%s)"):format(what, self._f.done and "done" or "active")
end

---------------------------------------------------------------------------
-- Scoped sessions
---------------------------------------------------------------------------

--- A registry giving one session per scope: registry() returns the current
--- scope's session (made with factory() on first use, or again after it was
--- closed); registry.remove() closes and forgets it. scopefunc() returns the
--- scope key (default: one scope for the whole Lua state); keys are held
--- weakly, so a scope that is collected takes its session with it (whose
--- connections then go back to the pool through their collector).
-- syntax: registry = fsdb.session.scoped(factory, scopefunc)
function _M.scoped(factory, scopefunc)
  if not callable(factory) then
    error("fsdb: bad argument #1 to 'scoped' (function expected, got " .. type(factory) .. ")", 2)
  end
  if scopefunc ~= nil and not callable(scopefunc) then
    error("fsdb: bad argument #2 to 'scoped' (function or nil expected, got " .. type(scopefunc) .. ")", 2)
  end
  local global = {}
  local key_of = scopefunc or function() return global end
  local sessions = weak_keys()

  local function key()
    local k = key_of()
    if k == nil then
      error("fsdb: the scope function returned nil", 3)
    end
    return k
  end

  local registry = {}

  --- The current scope's session, if one exists (nil otherwise).
  -- syntax: s = registry.get()
  function registry.get()
    local s = sessions[key()]
    if s and not s._closed then return s end
    return nil
  end

  --- Closes and forgets the current scope's session.
  -- syntax: registry.remove()
  function registry.remove()
    local k = key()
    local s = sessions[k]
    if s then
      sessions[k] = nil
      s:close()
    end
  end

  return setmetatable(registry, {
    __call = function()
      local k = key()
      local s = sessions[k]
      if not s or s._closed then
        s = factory()
        sessions[k] = s
      end
      return s
    end,
  })
end

--- scoped() for OpenResty: one session per request, keyed by ngx.ctx. Call
--- registry.remove() in log_by_lua* (or another end-of-request hook) so the
--- connections go back to the pool at once rather than at collection.
-- syntax: registry = fsdb.session.ngx_scoped(engine_or_db)
function _M.ngx_scoped(engine_or_db)
  engines_of(engine_or_db)
  local registry = _M.scoped(function() return _M.new(engine_or_db) end, function()
    local ngx = rawget(_G, "ngx")
    if type(ngx) ~= "table" then
      error("fsdb: ngx_scoped needs OpenResty (no ngx global)", 0)
    end
    return ngx.ctx
  end)
  return registry
end

_M.Session = Session
_M.Transaction = Transaction
_M.DEFAULT = DEFAULT
return _M
