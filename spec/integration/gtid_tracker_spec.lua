-- The last_gtid session tracker of a COMMIT's OK packet is server input:
-- a fake server (spec/support/trackserver.py) answers each COMMIT with
-- one payload, good or broken (not a GTID, too long, a name without a
-- value, an entry longer than the packet…). conn:tracked_gtid() takes only
-- a well-formed GTID; nothing crashes; a session whose COMMIT reported
-- none asks SELECT @@last_gtid instead.
local fsdb = require("fsdb")
local h = require("support.hardening")

-- The helper runs outside the sanitizers of `make asan`.
local PLAIN = "env -u LD_PRELOAD "

describe("the last_gtid tracker from a broken server #mariadb", function()
  local root = h.checkout_root()

  -- Starts the fake server; returns its port and a function that waits for
  -- it to finish and returns the queries it received.
  local function fake()
    local p = assert(io.popen(PLAIN .. "/usr/bin/python3 "
      .. h.shell_quote(root .. "/spec/support/trackserver.py") .. " --wait 1"))
    local first = assert(p:read("l"), "the fake server did not start")
    local port = assert(tonumber(first:match("^port (%d+)$")), first)
    return port, function()
      local queries = {}
      for line in p:lines() do
        local q = line:match("^query (.*)$")
        if q then queries[#queries + 1] = q end
      end
      p:close()
      return queries
    end
  end

  local function engine(port)
    -- A replica makes the engine ask for the tracker; it is never used.
    return fsdb.engine.new(("mysql://fsdb@127.0.0.1:%d/fsdb_test?ssl_mode=DISABLED"):format(port), {
      pool_size = 1, pool_pre_ping = false,
      replicas = { ("mysql://fsdb@127.0.0.1:%d/fsdb_test?ssl_mode=DISABLED"):format(port) } })
  end

  it("conn:tracked_gtid takes only a well-formed GTID, whatever the payload", function()
    local port, finish = fake()
    local e = engine(port)
    local conn = assert(e:connect())
    local seen = {}
    for i = 1, 11 do
      local res, err, errno = conn:execute("COMMIT")
      if res then
        local ok, g = pcall(conn.tracked_gtid, conn)
        seen[i] = ok and (g or "nil") or ("raised: " .. tostring(g))
      else
        -- The client library refused the packet: that connection is done.
        seen[i] = ("failed: %s (%s)"):format(err, errno)
        conn:close()
        conn = assert(e:connect())
      end
    end
    conn:close()
    e:dispose()
    local queries = finish()
    print("\n  tracked_gtid for the 11 payloads: " .. table.concat(seen, " | "))
    -- Malformed entries (a name without its value, a value or entry
    -- longer than what holds it): no value taken; the client library may
    -- refuse the packet (2027), never crash.
    for i = 6, 9 do
      assert.is_truthy(seen[i] == "nil" or seen[i]:match("^failed: .*%(2027%)$"), seen[i])
    end
    assert.are.same({ "0-1-7", "nil", "nil", "nil", "nil", seen[6], seen[7], seen[8], seen[9], "nil", "3-2-11" }, seen)
    assert.matches("session_track_system_variables", queries[1])
  end)

  it("a session whose COMMIT reported no usable GTID asks @@last_gtid", function()
    local port, finish = fake()
    local e = engine(port)
    for _ = 1, 2 do
      local s = fsdb.session.new(e)
      assert(s:execute("INSERT INTO t VALUES (1)"))
      assert(s:commit())
      s:close()
    end
    e:dispose()
    local queries = finish()
    local asked, commits = 0, 0
    for _, q in ipairs(queries) do
      if q:find("@@last_gtid", 1, true) then asked = asked + 1 end
      if q == "COMMIT" then commits = commits + 1 end
    end
    -- The first COMMIT carried a good GTID, the second a broken one.
    assert.are.equal(2, commits)
    assert.are.equal(1, asked)
    assert.matches("COMMIT", queries[#queries - 1] or "")
  end)
end)
