-- Multi-host URLs on a real loopback cluster (scripts/testdb replication: a
-- primary and two GTID replicas): target_session_attrs picks the server by
-- its role, load_balance_hosts spreads connections, a failed host is
-- skipped for host_recheck_seconds, and the switch-over drill — the
-- primary killed and a replica promoted under 8 workers of transfers.
local fsdb = require("fsdb")
local cluster = require("helpers.cluster")
local db = require("helpers.db")
local th = require("fsdb_testhelper")
local workers = require("helpers.workers")

local NO_HOST = 9021

-- The URL of the given nodes (in that order) with options.
local function url_of(c, nodes, params)
  local hosts = {}
  for _, i in ipairs(nodes) do
    hosts[#hosts + 1] = "127.0.0.1:" .. (type(i) == "number" and c.nodes[i].port or i.port)
  end
  local base = c.nodes[1].url:gsub("@127%.0%.0%.1:%d+/", "@" .. table.concat(hosts, ",") .. "/")
  return base .. (params and ("?" .. table.concat(params, "&")) or "")
end

local function server_id(e)
  local res = assert(e:query("SELECT @@server_id AS id"))
  return tonumber(res[1].id)
end

-- A local TCP port nothing listens on.
local function closed_port()
  for _ = 1, 50 do
    local port = 20000 + math.random(0, 19999)
    local r = os.execute("env -u LD_PRELOAD bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null")
    if r ~= true and r ~= 0 then -- 5.4 gives true/nil, LuaJIT the status
      return port
    end
  end
  error("no closed port")
end

describe("multi-host URLs on a replication cluster #mariadb #cluster", function()
  local c = cluster.shared("replication")

  local function engine(nodes, params, options)
    return c:track(fsdb.engine.new(url_of(c, nodes, params), options or { pool_size = 2 }))
  end

  it("replicates: a row written on the primary shows on both replicas", function()
    c:sql(1, "CREATE TABLE fsdb_test.probe (id INT PRIMARY KEY)")
    c:sql(1, "INSERT INTO fsdb_test.probe VALUES (7)")
    for i = 2, 3 do
      local seen
      for _ = 1, 50 do
        seen = c:sql(i, "SELECT COUNT(*) FROM fsdb_test.probe"):match("(%d+)%s*$")
        if seen == "1" then break end
        th.sleep(0.1)
      end
      assert.are.equal("1", seen, "node" .. i)
    end
  end)

  it("read-write finds the primary wherever it is in the list", function()
    local e = engine({ 2, 3, 1 }, { "target_session_attrs=read-write" })
    assert.are.equal(1, server_id(e))
  end)

  it("read-only and prefer-standby take a replica; any takes the first host", function()
    assert.are_not.equal(1, server_id(engine({ 1, 2, 3 }, { "target_session_attrs=read-only" })))
    assert.are_not.equal(1, server_id(engine({ 1, 2, 3 }, { "target_session_attrs=prefer-standby" })))
    assert.are.equal(1, server_id(engine({ 1, 2, 3 })))
    assert.are.equal(2, server_id(engine({ 2, 1 }, { "target_session_attrs=any" })))
  end)

  it("prefer-standby falls back to the primary when no replica answers", function()
    local e = engine({ { port = closed_port() }, 1 }, { "target_session_attrs=prefer-standby" })
    assert.are.equal(1, server_id(e))
  end)

  it("no server in the wanted role: its own errno, every host named in the count", function()
    local e = engine({ 2, 3 }, { "target_session_attrs=read-write" })
    local res, err, errno, sqlstate = e:query("SELECT 1")
    assert.is_nil(res)
    assert.are.equal(NO_HOST, errno, err)
    assert.are.equal("HY000", sqlstate)
    assert.matches("no host is read%-write %(2 of 2 answered in another role", err)
  end)

  it("load_balance_hosts=random spreads new connections over the replicas", function()
    local seen = {}
    for _ = 1, 30 do
      local e = fsdb.engine.new(url_of(c, { 2, 3 }, { "load_balance_hosts=random" }), { pool_size = 0 })
      local id = server_id(e)
      seen[id] = (seen[id] or 0) + 1
      e:dispose()
    end
    assert.is_true((seen[2] or 0) > 0 and (seen[3] or 0) > 0,
      ("node2 %d, node3 %d of 30"):format(seen[2] or 0, seen[3] or 0))
  end)

  it("a host that does not answer is skipped for host_recheck_seconds", function()
    local tp = require("fsdb_testproxy")
    local proxy = assert(tp.start("127.0.0.1", c.nodes[1].port))
    proxy:set("freeze") -- accepts, never answers: each connect waits connect_timeout
    local e = engine({ { port = proxy:port() }, 1 }, { "connect_timeout=1", "host_recheck_seconds=30" },
      { pool_size = 0 })
    local t0 = th.now()
    assert.are.equal(1, server_id(e))
    local first = th.now() - t0
    t0 = th.now()
    assert.are.equal(1, server_id(e))
    local second = th.now() - t0
    proxy:close()
    assert.is_true(first >= 0.9, ("first connect %.2f s: should have waited for the frozen host"):format(first))
    assert.is_true(second < 0.5, ("second connect %.2f s: the frozen host was not skipped"):format(second))
  end)

  it("a demoted primary: pre-ping and a 1290 stop the pool handing out its connections", function()
    c:sql(1, "CREATE TABLE IF NOT EXISTS fsdb_test.demote (id INT PRIMARY KEY)")
    -- Pre-ping every checkout: the role is asked again.
    local e = engine({ 1, 2 }, { "target_session_attrs=read-write" },
      { pool_size = 1, pool_timeout = 1, pool_pre_ping_window = 0 })
    assert(e:execute("INSERT INTO demote VALUES (1)"))
    -- Never pre-ping: the write itself finds out.
    local e2 = engine({ 1, 2 }, { "target_session_attrs=read-write" },
      { pool_size = 1, pool_timeout = 1, pool_pre_ping_window = 60 })
    assert(e2:execute("INSERT INTO demote VALUES (2)"))
    c:sql(1, "SET GLOBAL read_only = 1")
    local ok, err = pcall(function()
      local res, msg, errno = e:execute("INSERT INTO demote VALUES (3)")
      assert.is_nil(res)
      assert.are.equal(NO_HOST, errno, msg)
      assert.matches("unreachable for", msg) -- it kept trying for pool_timeout
      res, msg, errno = e2:execute("INSERT INTO demote VALUES (4)")
      assert.is_nil(res)
      assert.are.equal(1290, errno, msg)
      res, msg, errno = e2:execute("INSERT INTO demote VALUES (5)")
      assert.is_nil(res)
      assert.are.equal(NO_HOST, errno, msg) -- the read-only connection was not handed out again
    end)
    c:sql(1, "SET GLOBAL read_only = 0")
    assert(ok, err)
    -- Back to read-write: both engines write again once the back-off is over.
    th.sleep(0.2)
  end)

  -- The switch-over drill: 8 forked workers move money between accounts
  -- (each transfer a transaction that also logs its id) through a
  -- read-write multi-host URL; meanwhile the primary is killed and node2 is
  -- promoted (STOP SLAVE, read_only off) and node3 re-pointed at it.
  it("switch-over under 8 workers: they go on on the new primary; 0 lost, 0 duplicated", function()
    local WORKERS, ACCOUNTS, RUN = 8, 20, 8.0
    local schema = { "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
                     "CREATE TABLE transfers (id VARCHAR(40) PRIMARY KEY, amount INT NOT NULL)" }
    for i = 1, ACCOUNTS do
      schema[#schema + 1] = { "INSERT INTO accounts VALUES (?, 1000)", i }
    end
    db.run_sql(c.nodes[1].url, (table.unpack or unpack)(schema))
    local url = url_of(c, { 1, 2, 3 }, { "target_session_attrs=read-write", "connect_timeout=2",
                                        "read_timeout=5", "write_timeout=5", "host_recheck_seconds=2" })
    local run = workers.start({ count = WORKERS, seconds = RUN,
      init = function() return fsdb.engine.new(url, { pool_size = 1, pool_timeout = 15 }) end,
      step = function(e, w, n, out)
        local id = ("%d-%d"):format(w, n)
        local a, b = math.random(ACCOUNTS), math.random(ACCOUNTS)
        local s = fsdb.session.new(e)
        -- A failure inside fn raises (assert); transaction() retries
        -- what is safe and raises the rest, which is counted here.
        local okc, r, err, errno = pcall(s.transaction, s, function(tx)
          assert(tx:execute("UPDATE accounts SET balance = balance - 1 WHERE id = ?", a))
          assert(tx:execute("UPDATE accounts SET balance = balance + 1 WHERE id = ?", b))
          assert(tx:execute("INSERT INTO transfers VALUES (?, 1)", id))
          return true
        end, { retries = 3 })
        if not okc then r, err = nil, r end
        s:close()
        if r then
          out:write("ok ", id, "\n")
        else
          out:write("err ", id, " ", tostring(errno or s.last_errno), " ", (tostring(err):gsub("\n", " ")), "\n")
        end
      end })
    th.sleep(2.0)
    -- Semi-sync must still be on when the primary dies: after
    -- rpl_semi_sync_master_timeout without an acknowledgement (a starved
    -- machine) the primary falls back to asynchronous replication, and
    -- then losing acknowledged commits is what the server promises.
    local semi = c:sql(1, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
    assert(semi:find("\tON", 1, true), "semi-synchronous replication had fallen back: " .. semi)
    -- Promote node2: the primary dies first, node2 applies what it has and
    -- becomes writable, node3 follows node2 from its GTID position.
    c:kill(1)
    -- Apply what node2 received (semi-sync: every acknowledged COMMIT).
    -- RESET SLAVE ALL drops the relay log, so wait until all of it is
    -- applied, however slow the machine (it once took over 5 s under ASan).
    c:sql(2, "STOP SLAVE IO_THREAD")
    local applied = false
    for _ = 1, 1200 do
      if c:sql(2, "SHOW SLAVE STATUS\\G"):find("Slave has read all relay log", 1, true) then
        applied = true
        break
      end
      th.sleep(0.05)
    end
    assert.is_true(applied, "node2 did not apply its relay log within 60 s")
    c:sql(2, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
    c:sql(3, ("STOP SLAVE; CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, "
      .. "MASTER_USE_GTID = slave_pos; START SLAVE"):format(c.nodes[2].port))
    run:wait()
    local ok_ids, errors, by_errno, unknown = {}, 0, {}, 0
    run:each(function(_, line)
      local kind, id, errno = line:match("^(%a+) (%S+) ?(%S*)")
      if kind == "ok" then
        ok_ids[#ok_ids + 1] = id
      else
        if errors < 3 then print("  " .. line) end
        errors = errors + 1
        by_errno[errno] = (by_errno[errno] or 0) + 1
        if errno == "9020" then unknown = unknown + 1 end
      end
    end)
    local e2 = fsdb.engine.new(c.nodes[2].url)
    local total = assert(e2:query("SELECT SUM(balance) AS s, COUNT(*) AS n FROM accounts"))[1]
    local logged = assert(e2:query("SELECT COUNT(*) AS n FROM transfers"))[1].n
    local committed = {}
    for _, row in ipairs(assert(e2:query("SELECT id FROM transfers"))) do committed[row.id] = true end
    e2:dispose()
    local missing = 0
    for _, id in ipairs(ok_ids) do
      if not committed[id] then missing = missing + 1 end
    end
    local parts = {}
    for errno, n in pairs(by_errno) do parts[#parts + 1] = errno .. "×" .. n end
    table.sort(parts)
    print(("\n  switch-over: %d transfers committed and acknowledged, %d errors (%s), %d in the table on the"
      .. " new primary"):format(#ok_ids, errors, table.concat(parts, ", "), logged))
    -- Money is conserved: every transfer moves 1 between two accounts.
    assert.are.equal(ACCOUNTS * 1000, tonumber(total.s))
    -- 0 lost: every acknowledged transfer is on the new primary (the
    -- cluster replicates semi-synchronously, AFTER_SYNC).
    assert.are.equal(0, missing, "acknowledged transfers missing on the new primary")
    -- 0 duplicated: the ids are the primary key; more rows than
    -- acknowledgements only by outcomes the workers were told are unknown.
    assert.is_true(logged >= #ok_ids - missing and logged <= #ok_ids + unknown + errors)
    -- The workers went on after the switch: transfers from after the kill.
    assert.is_true(#ok_ids > WORKERS * 5, "too few transfers: " .. #ok_ids)
    -- No write reached a read-only server: node3's binary log holds only
    -- transactions from node1 and node2 (server ids 1 and 2).
    local pos = c:sql(3, "SELECT @@gtid_binlog_pos")
    for server in pos:gmatch("%d+%-(%d+)%-%d+") do
      assert.is_true(server == "1" or server == "2", "a write on node3: " .. pos)
    end
  end)
end)
