-- Short outages are hidden, long ones end in bounded time: the restart
-- drill (a server restart under load with pool_timeout = 5: no error for
-- callers outside a transaction, at most one per transaction in flight)
-- and the blackhole drill (a server that accepts and never answers: calls
-- fail within the configured timeout ±20%).
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")
local proxies = require("helpers.proxy")
local th = require("fsdb_testhelper")
local workers = require("helpers.workers")

describe("outages #mariadb", function()
  it("restart drill: a server restart under load costs callers outside transactions nothing", function()
    local READERS, WRITERS, RUN = 4, 2, 7.0
    db.run_sql(nil, "DROP TABLE IF EXISTS outage_tx", "CREATE TABLE outage_tx (id VARCHAR(40) PRIMARY KEY)")
    local run = workers.start({ count = READERS + WRITERS, seconds = RUN, pause = 0.01,
      init = function() return fsdb.engine.new(db.url, { pool_size = 2, pool_timeout = 5 }) end,
      step = function(e, w, n, out)
        if w <= READERS then
          local r, err, errno = e:query("SELECT ? AS n", { n })
          out:write(r and "ok\n" or ("err " .. tostring(errno) .. " " .. (tostring(err):gsub("\n", " ")) .. "\n"))
        else
          local s = fsdb.session.new(e)
          local id = ("%d-%d"):format(w, n)
          local okc, r, err, errno = pcall(s.transaction, s, function(tx)
            assert(tx:execute("INSERT INTO outage_tx VALUES (?)", id))
            return true
          end)
          if not okc then r, err = nil, r end
          s:close()
          out:write(r and "ok\n" or ("err " .. tostring(errno or s.last_errno) .. " "
            .. (tostring(err):gsub("\n", " ")) .. "\n"))
        end
      end })
    th.sleep(2)
    -- The server stops (SIGTERM), stays down for a second, and starts again
    -- on the same port: about 1.5 s without a server on this machine.
    local t0 = th.now()
    local pf = assert(io.open(os.getenv("FSDB_TEST_PID_FILE")))
    local spid = assert(tonumber(pf:read("*a"):match("%d+")))
    pf:close()
    os.execute("kill -TERM " .. spid)
    local function alive()
      local r = os.execute("env -u LD_PRELOAD kill -0 " .. spid .. " 2>/dev/null")
      return r == true or r == 0 -- 5.4 gives true/nil, LuaJIT the status
    end
    while alive() do th.sleep(0.02) end
    th.sleep(1.0)
    local rc = os.execute("env -u LD_PRELOAD scripts/testdb restart '" .. os.getenv("FSDB_TESTDB_STATE") .. "' >/dev/null 2>&1")
    local down = th.now() - t0
    assert.is_true(rc == true or rc == 0, "restart failed")
    run:wait()
    local reads, read_errors, txs, tx_errors, detail, read_detail = 0, 0, 0, 0, {}, {}
    run:each(function(w, line)
      local isreader = w <= READERS
      if isreader then reads = reads + 1 else txs = txs + 1 end
      if line:sub(1, 3) == "err" then
        if isreader then
          read_errors = read_errors + 1
          read_detail[#read_detail + 1] = line
        else
          tx_errors = tx_errors + 1
        end
        detail[#detail + 1] = line
        if #detail <= 3 then print("  " .. line:sub(1, 200)) end
      end
    end)
    print(("\n  restart drill: the server was down for %.2f s; %d reads outside transactions, %d errors; %d transactions,"
      .. " %d errors"):format(down, reads, read_errors, txs, tx_errors))
    -- Checkouts hide the outage entirely, and a plain SELECT in flight at
    -- the instant of the shutdown runs again on a fresh connection
    -- (retry_reads): no error at all for callers outside transactions.
    assert.are.equal(0, read_errors, table.concat(read_detail, "\n"))
    -- At most one error per transaction in flight: one per writer.
    assert.is_true(tx_errors <= WRITERS, table.concat(detail, "\n"))
  end)

  describe("a lost connection under a plain SELECT", function()
    local proxy = proxies.each(db.port)

    -- An engine through the proxy with one idle connection; the proxy then
    -- cuts every connection at the server's next byte (the statement's
    -- answer, or a new connection's greeting) until a child process puts
    -- it back to "pass" after `after` seconds.
    local function cut_then_heal(options, after)
      local opts = { pool_timeout = 5, pool_pre_ping_window = 60 }
      for k, v in pairs(options or {}) do opts[k] = v end
      local e = fsdb.engine.new(proxy:url({ "connect_timeout=1" }), opts)
      assert(e:query("SELECT 1 AS one"))
      proxy:set("cut", 0)
      local pid = assert(th.fork())
      if pid == 0 then
        th.sleep(after)
        local ok = pcall(proxy.set, proxy, "pass")
        th.exit(ok and 0 or 1)
      end
      return e, pid
    end

    it("runs once more on a fresh connection (retry_reads); other statements do not", function()
      local e, pid = cut_then_heal(nil, 0.5)
      local res, err = e:query("SELECT ? AS n", { 7 })
      assert.are.equal(0, th.waitpid(pid))
      assert.are.equal(7, assert(res, err)[1].n)
      assert.is_true(e:status().connects >= 2)
      e:dispose()

      db.run_sql(nil, "CREATE TABLE IF NOT EXISTS outage_once (id INT PRIMARY KEY)", "DELETE FROM outage_once")
      local cases = {
        { nil, "INSERT INTO outage_once VALUES (1)" },   -- may have run: not again
        { nil, "SELECT @@server_id AS id" },            -- not a plain SELECT
        { { retry_reads = false }, "SELECT 1 AS one" }, -- retries off
      }
      for _, case in ipairs(cases) do
        e, pid = cut_then_heal(case[1], 0.3)
        local r, err2, errno = e:execute(case[2])
        assert.are.equal(0, th.waitpid(pid))
        assert.is_nil(r, case[2])
        assert.are.equal(2013, errno, err2)
        e:dispose()
      end
      -- The INSERT (cut at its prepare or its answer) ran at most once.
      assert.is_true(#db.must(db.engine(), "SELECT id FROM outage_once") <= 1)
    end)
  end)

  describe("bounded waits", function()
    it("max_statement_time as an engine option: 1969 (70100) past the limit", function()
      local e = db.engine({ max_statement_time = 0.5 })
      local t0 = th.now()
      local res, err, errno, sqlstate = e:query("SELECT SLEEP(3) AS s")
      local took = th.now() - t0
      h.failure(res, err, errno, sqlstate, { errno = 1969, sqlstate = "70100",
        contains = { "max_statement_time exceeded" } })
      assert.is_true(took < 2, ("took %.2f s"):format(took))
      assert.are.equal(0.5, tonumber(db.must(e, "SELECT @@max_statement_time AS m")[1].m))
      e:dispose()
    end)

    it("max_statement_time per call (query opts), and a bad value raises", function()
      local e = db.engine()
      local res, err, errno = e:query("SELECT SLEEP(3) AS s", nil, { max_statement_time = 0.3 })
      assert.is_nil(res)
      assert.are.equal(1969, errno, err)
      assert.are.equal(0, tonumber(db.must(e, "SELECT @@max_statement_time AS m")[1].m))
      local conn = assert(e:connect())
      res = assert(conn:query("SELECT ? AS v", { 5 }, { max_statement_time = 2 }))
      assert.are.equal(5, res[1].v)
      conn:close()
      assert.has_error(function() e:query("SELECT 1", nil, { max_statement_time = "soon" }) end,
        "fsdb: bad value for query option 'max_statement_time' (expected a number of seconds > 0)")
      assert.has_error(function() db.engine({ max_statement_time = -1 }) end)
      e:dispose()
    end)

    it("wsrep_sync_wait is set on every connection", function()
      local e = db.engine({ wsrep_sync_wait = 1 })
      assert.are.equal(1, tonumber(db.must(e, "SELECT @@wsrep_sync_wait AS w")[1].w))
      e:dispose()
    end)
  end)

  describe("blackhole drill", function()
    local proxy = proxies.each(db.port)

    local function within(took, want)
      assert.is_true(took >= want * 0.8 and took <= want * 1.2,
        ("took %.2f s for a timeout of %.1f s (±20%%)"):format(took, want))
    end

    it("a new connection to a blackholed server fails after connect_timeout", function()
      proxy:set("freeze")
      local e = fsdb.engine.new(proxy:url({ "connect_timeout=2" }))
      local t0 = th.now()
      local res, err, errno = e:query("SELECT 1")
      within(th.now() - t0, 2)
      assert.is_nil(res)
      assert.is_true(errno == 2013 or errno == 2002 or errno == 2003, tostring(err))
      e:dispose()
    end)

    it("a call on a connection whose server goes dark fails after read_timeout", function()
      local e = fsdb.engine.new(proxy:url({ "read_timeout=2" }),
        { pool_pre_ping_window = 60 })
      assert(e:query("SELECT 1"))
      proxy:set("freeze")
      local t0 = th.now()
      local res, err, errno = e:query("SELECT 2")
      within(th.now() - t0, 2)
      assert.is_nil(res)
      assert.are.equal(2013, errno, err)
      e:dispose()
    end)

    it("a checkout while the server stays dark gives up after pool_timeout and says for how long", function()
      local e = fsdb.engine.new(proxy:url({ "connect_timeout=1" }),
        { pool_timeout = 3 })
      assert(e:query("SELECT 1"))
      e:dispose()
      e = fsdb.engine.new(proxy:url({ "connect_timeout=1" }),
        { pool_timeout = 3 })
      assert(e:query("SELECT 1"))
      proxy:set("drop") -- every connection, and every new one, is closed at once
      local t0 = th.now()
      local res, err = e:query("SELECT 2")
      within(th.now() - t0, 3)
      assert.is_nil(res)
      assert.matches("unreachable for %d+%.%d s", err)
      e:dispose()
    end)
  end)
end)
