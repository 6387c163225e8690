-- Read replicas of an engine on a real loopback cluster (scripts/testdb
-- replication: a primary and two GTID replicas, semi-synchronous): plain
-- SELECTs outside a transaction go to the replicas round robin; writes,
-- locking reads and everything inside a transaction go to the primary; a
-- session reads its own writes (MASTER_GTID_WAIT) even while a replica's
-- SQL thread is stopped; a lagging replica leaves the rotation and comes
-- back; with no replica usable, reads go to the primary (counted, and a
-- replica_fallback event). The GTID of each COMMIT comes with its OK packet
-- (session tracking of last_gtid) instead of a SELECT @@last_gtid.
local fsdb = require("fsdb")
local cluster = require("helpers.cluster")
local in_cqueues = require("helpers.db").in_cqueues
local th = require("fsdb_testhelper")

describe("read replicas #mariadb #cluster", function()
  local c = cluster.shared("replication")

  setup(function()
    c:sql(1, "CREATE TABLE fsdb_test.ryw (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
    c:sql(1, "INSERT INTO fsdb_test.ryw VALUES (0, 'zero')")
    for i = 2, 3 do
      for _ = 1, 100 do
        if c:sql(i, "SELECT COUNT(*) FROM fsdb_test.ryw"):match("(%d+)%s*$") == "1" then break end
        th.sleep(0.05)
      end
    end
  end)

  local function engine(options)
    local opts = { pool_size = 2, replicas = { c.nodes[2].url, c.nodes[3].url } }
    for k, v in pairs(options or {}) do opts[k] = v end
    return c:track(fsdb.engine.new(c.nodes[1].url, opts))
  end

  local function com_select(i)
    return tonumber(c:sql(i, "SHOW GLOBAL STATUS LIKE 'Com_select'"):match("(%d+)%s*$"))
  end

  local function server_id(res)
    return tonumber(assert(res)[1].id)
  end

  local function session_status(conn, name)
    local res = assert(conn:query("SHOW SESSION STATUS LIKE '" .. name .. "'"))
    return tonumber(res[1].Value)
  end

  -- On a connection of an engine with replicas: the tracker list holds
  -- last_gtid, a statement with a result reports none, an uncommitted
  -- INSERT none, and its COMMIT the GTID @@last_gtid holds (returned).
  local function commit_reports_gtid(conn, id)
    assert.matches("last_gtid", conn:query("SELECT @@session_track_system_variables AS v")[1].v)
    assert.is_nil(conn:tracked_gtid()) -- a result set's statement reported nothing
    assert(conn:execute("BEGIN"))
    assert(conn:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", id, "tracked"))
    assert.is_nil(conn:tracked_gtid()) -- not committed yet: no GTID
    assert(conn:execute("COMMIT"))
    local g = conn:tracked_gtid()
    assert.matches("^%d+%-%d+%-%d+$", g)
    assert.are.equal(conn:query("SELECT @@last_gtid AS g")[1].g, g)
    return g
  end

  -- replica_fallback events of e, as { reason, url, why } in order.
  local function fallbacks(e)
    local seen = {}
    e:on("replica_fallback", function(reason, url, why)
      seen[#seen + 1] = { reason = reason, url = url, why = why }
    end)
    return seen
  end

  it("a COMMIT's GTID comes with its OK packet: N commits cost N round trips fewer", function()
    local e = engine()
    -- The tracked GTID is the one @@last_gtid holds.
    local conn = assert(e:connect())
    commit_reports_gtid(conn, 400000)
    -- A transaction that wrote nothing gets no GTID: nil (the session asks).
    assert(conn:execute("BEGIN"))
    assert(conn:query("SELECT v FROM fsdb_test.ryw WHERE id = 0"))
    assert(conn:execute("COMMIT"))
    assert.is_nil(conn:tracked_gtid())
    conn:close()

    -- N session commits, each followed by a read of its row on a replica.
    local N = 50
    local function commits(eng, base)
      local before, missing = com_select(1), 0
      for i = 1, N do
        local s = fsdb.session.new(eng)
        assert(s:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", base + i, "c" .. i))
        assert(s:commit())
        local rows = assert(s:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { base + i }))
        if not (rows[1] and rows[1].v == "c" .. i) then missing = missing + 1 end
        s:close()
      end
      return com_select(1) - before, missing
    end
    local tracked_cost, tracked_missing = commits(e, 410000)
    -- The same with the tracker list emptied by on_connect (a server that
    -- refused it): each COMMIT is followed by SELECT @@last_gtid.
    local untracked = engine({ on_connect = function(c2)
      assert(c2:execute("SET SESSION session_track_system_variables = ''"))
    end })
    assert(untracked:connect()):close() -- its connect's own SELECT (session limits) is not counted
    local query_cost, query_missing = commits(untracked, 420000)
    print(("\n  %d commits on a replica bind: Com_select +%d on the primary with last_gtid tracked,"
      .. " +%d without; rows missing %d / %d"):format(N, tracked_cost, query_cost, tracked_missing, query_missing))
    assert.are.equal(0, tracked_missing)
    assert.are.equal(0, query_missing)
    assert.are.equal(N, query_cost - tracked_cost)
    assert.are.equal(0, tracked_cost)
    assert.are.equal(2 * N, e:status().replica_reads + untracked:status().replica_reads)
  end)

  it("the cqueues transport reads the GTID from COMMIT's OK packet too: 50 commits cost no SELECT", function()
    local e = engine({ transport = "cqueues" })
    local N, cost, missing = 50, nil, 0
    in_cqueues(function()
      assert(e:connect()):close() -- its connect's own SELECT (session limits) is not counted
      local before = com_select(1)
      for i = 1, N do
        local s = fsdb.session.new(e)
        assert(s:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", 440100 + i, "q" .. i))
        assert(s:commit())
        local rows = assert(s:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { 440100 + i }))
        if not (rows[1] and rows[1].v == "q" .. i) then missing = missing + 1 end
        s:close()
      end
      cost = com_select(1) - before
    end)
    print(("\n  cqueues: %d commits on a replica bind: Com_select +%d on the primary; rows missing %d")
      :format(N, cost, missing))
    assert.are.equal(0, cost)
    assert.are.equal(0, missing)
    assert.are.equal(N, e:status().replica_reads)

    -- The tracked GTID is the one @@last_gtid holds, and never a stale one.
    local resets
    in_cqueues(function()
      local conn = assert(e:connect())
      local g = commit_reports_gtid(conn, 440000)
      assert.is_nil(conn:tracked_gtid()) -- the SELECT's reply reported none
      -- An INSERT with parameters under autocommit commits too.
      assert(conn:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", 440001, "autocommit"))
      local g2 = conn:tracked_gtid()
      assert.matches("^%d+%-%d+%-%d+$", g2)
      assert.are_not.equal(g, g2)
      assert.are.equal(conn:query("SELECT @@last_gtid AS g")[1].g, g2)
      conn:close()
      -- The tracker list is set again after the pool's COM_RESET_CONNECTION.
      local er = engine({ transport = "cqueues", pool_size = 1, pool_reset_on_return = "reset" })
      local first = assert(er:connect())
      local thread = first:thread_id()
      first:close()
      conn = assert(er:connect())
      assert.are.equal(thread, conn:thread_id())
      resets = conn:query("SELECT @@session_track_system_variables AS v")[1].v
      conn:close()
    end)
    assert.matches("last_gtid", resets)
  end)

  it("an engine without replicas sets no tracking on its connections", function()
    local plain = fsdb.engine.new(c.nodes[1].url, { pool_size = 1 })
    c:track(plain)
    local conn = assert(plain:connect())
    assert.are.equal(0, session_status(conn, "Com_set_option")) -- nothing SET at connect
    assert.is_nil(conn:query("SELECT @@session_track_system_variables AS v")[1].v:find("last_gtid", 1, true))
    assert(conn:execute("BEGIN"))
    assert(conn:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", 430000, "plain"))
    assert(conn:execute("COMMIT"))
    assert.is_nil(conn:tracked_gtid())
    assert.matches("^%d+%-%d+%-%d+$", conn:query("SELECT @@last_gtid AS g")[1].g)
    conn:close()
    -- With replicas: one SET (the tracker list) at connect.
    local conn2 = assert(engine():connect())
    assert.are.equal(1, session_status(conn2, "Com_set_option"))
    conn2:close()
  end)

  it("plain SELECTs outside a transaction go to the replicas; writes and locking reads to the primary", function()
    local e = engine()
    local before = { com_select(1), com_select(2), com_select(3) }
    for i = 1, 50 do
      assert.are.equal("zero", assert(e:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { 0 }))[1].v)
      assert.are.equal(1, #assert(e:execute("SELECT v FROM fsdb_test.ryw WHERE id = ?", i - i)))
    end
    local after = { com_select(1), com_select(2), com_select(3) }
    local st = e:status()
    print(("\n  100 reads: Com_select +%d on the primary, +%d / +%d on the replicas; replica_reads %d")
      :format(after[1] - before[1], after[2] - before[2], after[3] - before[3], st.replica_reads))
    assert.are.equal(100, st.replica_reads)
    assert.are.equal(0, st.replica_fallbacks)
    -- Round robin: each replica served half.
    assert.are.equal(50, st.replicas[1].reads)
    assert.are.equal(50, st.replicas[2].reads)
    assert.is_true(after[2] - before[2] >= 50 and after[3] - before[3] >= 50)
    assert.are.equal("up", st.replicas[1].state)
    assert.are.equal(0, st.replicas[1].lag)
    assert.is_nil(st.replicas[1].url:find(c.password, 1, true))
    -- What the scanner cannot call a plain SELECT stays on the primary.
    assert.are.equal(1, server_id(e:query("SELECT @@server_id AS id")))
    assert.are.equal(1, server_id(e:query("SELECT @@server_id AS id FROM fsdb_test.ryw FOR UPDATE")))
    -- route = "replica" forces one, route = "primary" keeps a plain read home.
    assert.are_not.equal(1, server_id(e:query("SELECT @@server_id AS id", nil, { route = "replica" })))
    local reads = e:status().replica_reads
    assert(e:query("SELECT v FROM fsdb_test.ryw", nil, { route = "primary" }))
    assert.are.equal(reads, e:status().replica_reads)
    assert.has_error(function() e:query("SELECT 1", nil, { route = "replicas" }) end,
      'fsdb: bad value for query option \'route\' (expected "primary" or "replica", got replicas)')
    -- Writes go to the primary (a replica is read-only: 1290 otherwise).
    assert(e:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", 100000, "w"))
    assert(e:executemany("INSERT INTO fsdb_test.ryw VALUES (?, ?)", { { 100001, "w" }, { 100002, "w" } }))
  end)

  it("inside a session transaction every read goes to the primary and sees the transaction", function()
    local e = engine()
    local s = fsdb.session.new(e)
    local reads = e:status().replica_reads
    assert(s:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", 200000, "tx"))
    assert.are.equal(1, #assert(s:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { 200000 })))
    assert.are.equal(1, server_id(s:query("SELECT @@server_id AS id")))
    assert.are.equal(reads, e:status().replica_reads)
    -- using_replica() sends a read to a replica even now (outside the
    -- transaction: the uncommitted row is not there).
    assert.are.equal(0, #assert(s:using_replica():query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { 200000 })))
    assert(s:commit())
    assert.are.equal(1, #assert(s:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { 200000 })))
    assert.are.equal(reads + 2, e:status().replica_reads)
    assert.is_false(s:in_transaction()) -- the read after commit began nothing
    assert.are.equal(1, server_id(s:using_primary():query("SELECT @@server_id AS id")))
    assert.is_true(s:in_transaction()) -- a primary read joins the session transaction
    s:close()
    s = fsdb.session.new(e)
    assert(s:transaction(function(tx)
      assert.are.equal(1, server_id(tx:query("SELECT @@server_id AS id")))
      assert.are.equal(1, #assert(tx:select("fsdb_test.ryw", { where = { id = 200000 } })))
      return true
    end))
    assert.are.equal(reads + 2, e:status().replica_reads)
    assert.has_error(function() s:using_replica("nope") end)
    s:close()
  end)

  it("a later COMMIT on a connection with an older @@last_gtid does not move the session's position back", function()
    local e = engine()
    -- Connection A writes first: its @@last_gtid is the older position.
    local a = assert(e:connect())
    assert(a:execute("INSERT INTO fsdb_test.ryw VALUES (?, 'older')", 900001))
    -- The session writes on the other connection (A is held): the newer one.
    local s = fsdb.session.new(e)
    assert(s:transaction(function(tx)
      assert(tx:execute("INSERT INTO fsdb_test.ryw VALUES (?, 'newer')", 900002))
      return true
    end))
    local b = assert(e:connect()) -- the session's connection, now idle
    local newer = assert(b:query("SELECT @@last_gtid AS g"))[1].g
    local older = assert(a:query("SELECT @@last_gtid AS g"))[1].g
    assert.are_not.equal(newer, older)
    assert.are.equal(newer, s._fresh.default.gtid)
    -- A read-only transaction of the session commits on A.
    a:close()
    assert(s:transaction(function(tx) return assert(tx:query("SELECT COUNT(*) AS n FROM fsdb_test.ryw")) end))
    b:close()
    assert.are.equal(newer, s._fresh.default.gtid)
    s:close()
  end)

  it("read-your-writes: 1,000 insert-then-read iterations, a replica's SQL thread stopped midway", function()
    local e = engine({ replica_wait_timeout = 0.3, replica_check_interval = 0.2, replica_max_lag = 2 })
    local N, STOP_AT, START_AT = 1000, 200, 600
    local missing, lagging_seen, stopped = 0, false, false
    local reads_at_start
    local t0 = th.now()
    for i = 1, N do
      if i == STOP_AT then
        c:sql(2, "STOP SLAVE SQL_THREAD")
        stopped = true
      elseif i == START_AT then
        reads_at_start = e:status().replicas[1].reads
        c:sql(2, "START SLAVE SQL_THREAD")
        stopped = false
      end
      local s = fsdb.session.new(e)
      assert(s:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", i, "row" .. i))
      assert(s:commit())
      local rows = assert(s:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { i }))
      if not (rows[1] and rows[1].v == "row" .. i) then missing = missing + 1 end
      assert.is_false(s:in_transaction())
      s:close()
      if stopped and e:status().replicas[1].state == "lagging" then lagging_seen = true end
    end
    local took = th.now() - t0
    -- The stopped replica comes back once it has caught up.
    for _ = 1, 100 do
      assert(e:query("SELECT 1 AS one FROM fsdb_test.ryw LIMIT 1"))
      if e:status().replicas[1].state == "up" then break end
      th.sleep(0.05)
    end
    for _ = 1, 10 do assert(e:query("SELECT 1 AS one FROM fsdb_test.ryw LIMIT 1")) end
    local st = e:status()
    print(("\n  read-your-writes: %d iterations in %.1f s, %d rows missing; replica reads %d / %d"
      .. " (MASTER_GTID_WAITs %d / %d), %d to the primary (%s)")
      :format(N, took, missing, st.replicas[1].reads, st.replicas[2].reads, st.replicas[1].gtid_waits,
        st.replicas[2].gtid_waits, st.replica_fallbacks, (function()
          local parts = {}
          for k, v in pairs(st.replica_fallback_reasons) do parts[#parts + 1] = k .. " " .. v end
          table.sort(parts)
          return table.concat(parts, ", ")
        end)()))
    assert.are.equal(0, missing)
    assert.is_true(lagging_seen, "the stopped replica was never taken out of rotation")
    assert.are.equal("up", st.replicas[1].state)
    assert.is_true(st.replicas[1].reads > reads_at_start, "the restarted replica did not come back")
    assert.is_true(st.replicas[2].reads > N / 2)
  end)

  it("no replica usable: reads go to the primary, counted, never an error", function()
    -- Lag not checked: the replicas stay in rotation and the GTID wait times out.
    local e = engine({ replica_wait_timeout = 0.2, replica_max_lag = -1 })
    local checked = engine({ replica_check_interval = 0 })
    local e_seen, checked_seen = fallbacks(e), fallbacks(checked)
    c:sql(2, "STOP SLAVE SQL_THREAD")
    c:sql(3, "STOP SLAVE SQL_THREAD")
    local ok, err = pcall(function()
      local s = fsdb.session.new(e)
      assert(s:execute("INSERT INTO fsdb_test.ryw VALUES (?, ?)", 300000, "late"))
      assert(s:commit())
      local t0 = th.now()
      assert.are.equal("late", assert(s:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { 300000 }))[1].v)
      assert.is_true(th.now() - t0 < 1.5)
      s:close()
      -- A read with no freshness to wait for (the engine's) sees the stale
      -- replica: the session's GTID wait is what found the row above.
      assert.are.equal(0, #assert(e:query("SELECT v FROM fsdb_test.ryw WHERE id = ?", { 300000 })))
      assert.are.equal(1, e:status().replica_fallback_reasons.gtid_wait)
      -- The event: the reason, the replica waited on (redacted), why.
      assert.are.equal(1, #e_seen)
      assert.are.equal("gtid_wait", e_seen[1].reason)
      local urls = { e:status().replicas[1].url, e:status().replicas[2].url }
      assert.is_truthy(e_seen[1].url == urls[1] or e_seen[1].url == urls[2])
      assert.is_nil(e_seen[1].url:find(c.password, 1, true))
      assert.matches("not applied within replica_wait_timeout", e_seen[1].why)
      -- With the lag checked, both replicas are out (replication stopped).
      assert.are.equal("zero", assert(checked:query("SELECT v FROM fsdb_test.ryw WHERE id = 0"))[1].v)
      local st = checked:status()
      assert.are.equal(1, st.replica_fallback_reasons.no_replica)
      assert.are.equal(1, #checked_seen)
      assert.are.equal("no_replica", checked_seen[1].reason)
      assert.is_nil(checked_seen[1].url)
      assert.matches("no replica in rotation", checked_seen[1].why)
      assert.are.equal("lagging", st.replicas[1].state)
      assert.matches("replication stopped", st.replicas[2].why)
    end)
    c:sql(2, "START SLAVE SQL_THREAD")
    c:sql(3, "START SLAVE SQL_THREAD")
    assert(ok, err)
  end)

  it("fsdb.new: binds.default with replicas, and DATABASE_REPLICA_URLS[_<NAME>]", function()
    local db = fsdb.new({ binds = { default = { url = c.nodes[1].url, pool_size = 2,
                                                replicas = { c.nodes[2].url, c.nodes[3].url } } } })
    local s = db:session()
    assert.are_not.equal(1, server_id(s:using_replica():query("SELECT @@server_id AS id")))
    assert.are.equal(1, #assert(s:query("SELECT v FROM fsdb_test.ryw WHERE id = 0")))
    assert.are.equal(2, db.engine:status().replica_reads)
    s:close()
    db:dispose()
    assert.has_error(function() fsdb.new({ url = c.nodes[1].url, binds = { default = { url = c.nodes[1].url } } }) end,
      "fsdb: bind name 'default' is reserved for the main url")
    local env = { DATABASE_REPLICA_URLS = " " .. c.nodes[2].url .. "\n " .. c.nodes[3].url .. " ",
                  DATABASE_REPLICA_URLS_READ_SIDE = c.nodes[3].url }
    local function getenv(k) return env[k] end
    local urls, var = fsdb.config.replica_urls(nil, getenv, "/nonexistent/.env")
    assert.are.same({ c.nodes[2].url, c.nodes[3].url }, urls)
    assert.are.equal("DATABASE_REPLICA_URLS", var)
    assert.are.same({ c.nodes[3].url }, (fsdb.config.replica_urls("read-side", getenv, "/nonexistent/.env")))
    assert.are.same({ nil, "DATABASE_REPLICA_URLS_X" }, { fsdb.config.replica_urls("x", getenv, "/nonexistent/.env") })
  end)

  it("a replica that cannot be reached is skipped", function()
    local e = fsdb.engine.new(c.nodes[1].url, { pool_size = 2,
      replicas = { (c.nodes[2].url:gsub(":%d+/", ":1/")), c.nodes[3].url } })
    c:track(e)
    local seen = fallbacks(e)
    for _ = 1, 6 do
      assert.are.equal("zero", assert(e:query("SELECT v FROM fsdb_test.ryw WHERE id = 0"))[1].v)
    end
    local st = e:status()
    assert.are.equal("down", st.replicas[1].state)
    assert.are.equal(6, st.replicas[2].reads + (st.replica_fallback_reasons.unavailable or 0))
    assert.is_true(st.replicas[2].reads >= 5)
    assert.are.equal(st.replica_fallback_reasons.unavailable or 0, #seen)
    for _, ev in ipairs(seen) do
      assert.are.equal("unavailable", ev.reason)
      assert.are.equal(st.replicas[1].url, ev.url)
      assert.is_nil(ev.url:find(c.password, 1, true))
      assert.is_nil(tostring(ev.why):find(c.password, 1, true))
    end
  end)
end)
