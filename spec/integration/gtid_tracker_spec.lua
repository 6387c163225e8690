-- The last_gtid session tracker of a COMMIT's OK packet is server input:
-- a fake server (spec/support/trackserver.py) answers each COMMIT with
-- one payload, good or broken (not a GTID, too long, a name without a
-- value, an entry longer than the packet…). conn:tracked_gtid() takes only
-- a well-formed GTID; nothing crashes; a session whose COMMIT reported
-- none asks SELECT @@last_gtid instead. The same payloads go to the
-- libmariadb transport and to the codec one (cqueues), whose C parser
-- (codec.c) reads the tracker itself; OK packets with an info string and
-- other tracker types keep their affected rows and insert id.
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")

-- The helper runs outside the sanitizers of `make asan`.
local PLAIN = "env -u LD_PRELOAD "

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

for _, transport in ipairs({ "libmariadb", "cqueues" }) do
  local codec = transport ~= "libmariadb"

  local function run(fn) return db.within_loop(transport, fn) end

  local function engine(port)
    local url = ("mysql://fsdb@127.0.0.1:%d/fsdb_test?ssl_mode=DISABLED"):format(port)
    -- A replica makes the engine ask for the tracker; it is never used.
    return fsdb.engine.new(url, { pool_size = 1, pool_pre_ping = false, replicas = { url },
      transport = codec and transport or nil })
  end

  describe("the last_gtid tracker from a broken server, " .. transport .. " transport #mariadb", function()
    it("conn:tracked_gtid takes only a well-formed GTID, whatever the payload", function()
      local port, finish = fake()
      local e = engine(port)
      local seen = {}
      run(function()
        local conn = assert(e:connect())
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
      end)
      e:dispose()
      local queries = finish()
      print(("\n  %s: tracked_gtid for the 11 payloads: %s"):format(transport, table.concat(seen, " | ")))
      if codec then
        -- The codec's parser takes the OK and only drops the tracker.
        assert.are.same({ "0-1-7", "nil", "nil", "nil", "nil", "nil", "nil", "nil", "nil", "nil", "3-2-11" },
          seen)
      else
        -- Malformed entries (a name without its value, a value or entry
        -- longer than what holds it): no value taken; the client library
        -- may refuse the packet (2027), never crash.
        for i = 6, 9 do
          assert.is_truthy(seen[i] == "nil" or seen[i]:match("^failed: .*%(2027%)$"), seen[i])
        end
        assert.are.same({ "0-1-7", "nil", "nil", "nil", "nil", seen[6], seen[7], seen[8], seen[9], "nil", "3-2-11" },
          seen)
      end
      assert.matches("session_track_system_variables", queries[1])
    end)

    it("a session whose COMMIT reported no usable GTID asks @@last_gtid", function()
      local port, finish = fake()
      local e = engine(port)
      run(function()
        for _ = 1, 2 do
          local s = fsdb.session.new(e)
          assert(s:execute("INSERT INTO t VALUES (1)"))
          assert(s:commit())
          s:close()
        end
      end)
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

    it("an OK packet keeps its affected rows and insert id beside info text and other tracker types", function()
      local port, finish = fake()
      local e = engine(port)
      local got = {}
      run(function()
        local conn = assert(e:connect())
        for i = 1, 4 do
          local res = assert(conn:execute("INSERT INTO okcases VALUES (1)"))
          got[i] = { tostring(res.affected_rows), tostring(res.insert_id), conn:tracked_gtid() or "nil" }
        end
        -- A later statement whose OK reports nothing leaves no stale GTID.
        assert(conn:execute("DO 1"))
        got[5] = conn:tracked_gtid() or "nil"
        conn:close()
      end)
      e:dispose()
      finish()
      local big = tostring(math.floor(2 ^ 40))
      assert.are.same({
        { "3", "77", "nil" },          -- the fixed part only
        { "1000", "70000", "nil" },    -- an info string, no tracker
        { "2", big, "nil" },           -- schema, state, GTIDS and transaction entries, no last_gtid
        { "1", "5", "0-2-30" },        -- last_gtid among other types and variables
        "nil",
      }, got)
    end)
  end)
end
