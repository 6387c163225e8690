-- A checkout ends within pool_timeout, whatever the server does: the
-- connects, pings and on_connect round trips made for it are bounded by
-- what is left of pool_timeout, not by connect_timeout/read_timeout each
-- (a server that accepts and never answers once cost a 5 s checkout 20 s).
-- On the libmariadb transport and on the cqueues transport, through the
-- fault proxy in its blackhole mode ("freeze": accepts, forwards nothing).
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")
local proxies = require("helpers.proxy")
local th = require("fsdb_testhelper")

local POOL_TIMEOUT, SLACK = 2, 1.2 -- the bound: pool_timeout + 20%

local transports = { "libmariadb" }
if pcall(require, "cqueues") then transports[#transports + 1] = "cqueues" end

local within_loop = db.within_loop

for _, transport in ipairs(transports) do
  describe("checkout bounded by pool_timeout (" .. transport .. ") #mariadb", function()
    local proxy = proxies.each(db.port)

    local function engine(opts)
      opts = opts or {}
      opts.transport = transport
      opts.pool_timeout = opts.pool_timeout or POOL_TIMEOUT
      return fsdb.engine.new(proxy:url({ "connect_timeout=10" }), opts)
    end

    -- engine:connect() timed; asserts the pool-timeout failure in the bound.
    local function times_out(e, what)
      local t0 = th.now()
      local conn, err, errno, sqlstate = within_loop(transport, function() return e:connect() end)
      local took = th.now() - t0
      h.failure(conn, err, errno, sqlstate, { errno = 9002, sqlstate = "HY000",
        contains = { "pool_timeout 2.00 s", what, "hint: " } })
      assert.is_true(took <= POOL_TIMEOUT * SLACK,
        ("took %.2f s, pool_timeout %d s (connect_timeout 10 s)"):format(took, POOL_TIMEOUT))
      assert.is_true(took >= POOL_TIMEOUT * 0.8, ("gave up early: %.2f s"):format(took))
      return err
    end

    -- After the proxy passes again, a checkout works and so does a query.
    local function heals(e)
      proxy:set("pass")
      local res, err = within_loop(transport, function()
        local conn, cerr = e:connect()
        if not conn then return nil, cerr end
        local r, qerr = conn:query("SELECT 7 AS n")
        conn:close()
        return r, qerr
      end)
      assert.are.equal(7, assert(res, err)[1].n)
    end

    it("a new connection to a server that never answers: 9002 within pool_timeout", function()
      proxy:set("freeze")
      local e = engine()
      times_out(e, "opening")
      assert.are.equal(1, e:status().timeouts)
      heals(e)
      e:dispose()
    end)

    it("the pre-ping of an idle connection whose server went dark: 9002 within pool_timeout", function()
      local e = engine({ pool_pre_ping_window = 0 })
      within_loop(transport, function() assert(e:query("SELECT 1 AS one")) end)
      proxy:set("freeze")
      times_out(e, "checking")
      heals(e)
      e:dispose()
    end)

    it("on_connect's round trips count too: 9002 within pool_timeout, the connection discarded", function()
      local calls = 0
      local e = engine({ on_connect = function(conn)
        calls = calls + 1
        if calls == 1 then
          proxy:set("freeze")
          assert(conn:query("SELECT 1 AS one"))
        end
      end })
      times_out(e, "on_connect")
      assert.are.equal(0, e:status().checked_out)
      heals(e)
      assert.are.equal(2, calls)
      e:dispose()
    end)

    it("transaction(fn, {retries}) runs fn again after a checkout ran out of pool_timeout", function()
      -- Nothing ran on a connection the checkout never got: safe to retry.
      proxy:set("freeze")
      local e = engine()
      local s = fsdb.session.new(e)
      local seen = {}
      local res = within_loop(transport, function()
        return s:transaction(function(tx)
          return assert(tx:execute("SELECT 5 AS n"))[1].n
        end, { retries = 1, on_retry = function(_, errno)
          seen[#seen + 1] = errno
          proxy:set("pass")
        end })
      end)
      assert.are.same({ 9002 }, seen)
      assert.are.equal(5, res)
      s:close()
      e:dispose()
    end)

    it("a server that refuses keeps its own error; connect_timeout still bounds one attempt", function()
      -- Nothing listens on the proxy's port once it is closed.
      local port = proxy:port()
      proxy:close()
      local e = fsdb.engine.new(h.url({ port = port, params = { "connect_timeout=10" } }),
        { transport = transport, pool_timeout = POOL_TIMEOUT })
      local conn, err, errno = within_loop(transport, function() return e:connect() end)
      assert.is_nil(conn)
      assert.is_true(errno == 2002 or errno == 2003, tostring(err))
      e:dispose()
      -- connect_timeout below pool_timeout still ends one attempt first.
      proxy:reopen()
      proxy:set("freeze")
      e = fsdb.engine.new(proxy:url({ "connect_timeout=1" }),
        { transport = transport, pool_timeout = 5 })
      local t0 = th.now()
      conn, err, errno = within_loop(transport, function() return e:connect() end)
      local took = th.now() - t0
      assert.is_nil(conn)
      assert.are_not.equal(9002, errno, err)
      assert.is_true(took >= 0.8 and took <= 1.2 * 1.5, ("took %.2f s for connect_timeout 1"):format(took))
      e:dispose()
    end)
  end)
end
