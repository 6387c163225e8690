-- The ambiguous COMMIT: a fault proxy cuts the connection right before
-- COMMIT reaches the server (so it is rolled back) or right after the
-- server answered it (so it is committed), and the client sees the same
-- lost connection either way. Without commit markers fsdb says so (errno
-- 9020, "commit outcome unknown"); with them it tells the two apart, and
-- transaction(fn, {retries}) completes every transfer exactly once.
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")
local tp = require("fsdb_testproxy")

local UNKNOWN = 9020
local TRIALS = 100

describe("ambiguous COMMIT #mariadb", function()
  local proxy, tbl, admin

  setup(function()
    proxy = assert(tp.start("127.0.0.1", db.port))
    admin = db.engine()
    tbl = db.unique("commit_cut")
    db.must(admin, "CREATE TABLE " .. tbl .. " (id VARCHAR(40) PRIMARY KEY)")
  end)

  teardown(function()
    proxy:close()
    db.must(admin, "DROP TABLE IF EXISTS " .. tbl)
    admin:dispose()
  end)

  local function engine(options)
    return fsdb.engine.new(h.url({ port = proxy:port(), params = { "read_timeout=5" } }), options)
  end

  local function present(id)
    local res = db.must(admin, "SELECT COUNT(*) AS n FROM " .. tbl .. " WHERE id = ?", id)
    return tonumber(res[1].n) == 1
  end

  -- One transaction inserting id, its COMMIT cut in the given mode.
  local function trial(e, mode, id)
    proxy:set("pass")
    local s = fsdb.session.new(e)
    db.must(s, "INSERT INTO " .. tbl .. " VALUES (?)", id)
    proxy:set(mode)
    local ok, err, errno, sqlstate = s:commit()
    proxy:set("pass")
    s:close()
    return ok, err, errno, sqlstate
  end

  for _, case in ipairs({ { "cut_before_commit", false }, { "cut_after_commit", true } }) do
    local mode, lands = case[1], case[2]

    it(mode .. ", no markers: 'commit outcome unknown' (9020) every time", function()
      local e = engine({ pool_size = 1 })
      local unknown, landed = 0, 0
      for i = 1, TRIALS do
        local id = ("%s-plain-%d"):format(mode, i)
        local ok, err, errno, sqlstate = trial(e, mode, id)
        assert.is_nil(ok)
        if errno == UNKNOWN then unknown = unknown + 1 end
        assert.are.equal(UNKNOWN, errno, err)
        assert.are.equal("08007", sqlstate)
        assert.matches("commit outcome unknown", err)
        if present(id) then landed = landed + 1 end
      end
      print(("\n  %s without markers: %d/%d reported unknown; %d committed in fact"):format(mode, unknown, TRIALS,
        landed))
      assert.are.equal(lands and TRIALS or 0, landed)
      e:dispose()
    end)

    it(mode .. ", markers: committed / not committed told apart", function()
      local e = engine({ pool_size = 1, commit_markers = true })
      local right = 0
      for i = 1, TRIALS do
        local id = ("%s-marker-%d"):format(mode, i)
        local ok, err, errno = trial(e, mode, id)
        assert.are.equal(lands, present(id))
        if lands then
          assert.is_true(ok, err)
        else
          assert.is_nil(ok)
          assert.matches("not committed", err)
          assert.are_not.equal(UNKNOWN, errno)
        end
        right = right + 1
      end
      print(("\n  %s with markers: %d/%d outcomes right"):format(mode, right, TRIALS))
      e:dispose()
    end)
  end

  it("markers: transaction(fn, {retries = 3}) completes every transfer exactly once", function()
    local e = engine({ pool_size = 1, commit_markers = true })
    local attempts = 0
    for i = 1, TRIALS do
      local id = "retry-" .. i
      local mode = (i % 2 == 0) and "cut_after_commit" or "cut_before_commit"
      local s = fsdb.session.new(e)
      local first = true
      local ok, err = s:transaction(function(tx)
        attempts = attempts + 1
        assert(tx:execute("INSERT INTO " .. tbl .. " VALUES (?)", id))
        -- Only the first attempt's COMMIT is cut.
        proxy:set(first and mode or "pass")
        first = false
        return true
      end, { retries = 3 })
      proxy:set("pass")
      s:close()
      assert.is_true(ok, err)
      assert.is_true(present(id))
    end
    print(("\n  transaction retries with markers: %d transfers, %d attempts, each committed once"):format(TRIALS,
      attempts))
    assert.are.equal(TRIALS + TRIALS / 2, attempts) -- the cuts before COMMIT ran twice
    e:dispose()
  end)
end)
