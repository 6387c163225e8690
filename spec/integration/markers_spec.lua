-- The commit-marker lookup (what a COMMIT lost with its connection did) is
-- a causal read on a Galera node: the fresh connection may be on another
-- node, which answers from what it has applied so far. On a plain server
-- nothing changes. The Galera part starts the three-node test cluster
-- (about 10 s here); FSDB_GALERA_MARKERS=0 skips it.
local fsdb = require("fsdb")
local markers = require("fsdb.markers")
local db = require("helpers.db")

-- The statements markers.resolve runs, in order, and its answer.
local function traced_resolve(e, id)
  local seen = {}
  local fn = e:on("before_execute", function(_, sql) seen[#seen + 1] = sql end)
  local outcome, err, errno = markers.resolve(e, id)
  e:off("before_execute", fn)
  return seen, outcome, err, errno
end

local function lookup_of(seen)
  for _, sql in ipairs(seen) do
    if sql:find(markers.TABLE, 1, true) then return sql end
  end
end

describe("commit markers #mariadb", function()
  it("the lookup statement: causal on Galera, locking everywhere", function()
    assert.matches("^SET STATEMENT innodb_lock_wait_timeout = 10, wsrep_sync_wait = 1 FOR SELECT ",
      markers.lookup_sql(true))
    assert.matches("LOCK IN SHARE MODE$", markers.lookup_sql(true))
    assert.is_nil(markers.lookup_sql(false):find("wsrep", 1, true))
    assert.matches("^SET STATEMENT innodb_lock_wait_timeout = 10 FOR SELECT ", markers.lookup_sql(false))
  end)

  for _, transport in ipairs({ "libmariadb", "cqueues" }) do
    it("on a plain server (" .. transport .. "): no wsrep_sync_wait, right answers; the Galera form runs there too",
      function()
        if transport == "cqueues" and not pcall(require, "cqueues") then
          pending("lua-cqueues is not installed")
          return
        end
        local e = fsdb.engine.new(db.url, { transport = transport, commit_markers = true })
        assert(markers.prepare(e))
        local id = markers.new_id()
        assert(e:execute("INSERT INTO " .. markers.TABLE .. " (id) VALUES (?)", id))
        local seen, outcome, err = traced_resolve(e, id)
        assert.is_true(outcome, err)
        local sql = assert(lookup_of(seen), table.concat(seen, "\n"))
        assert.are.equal(markers.lookup_sql(false), sql)
        outcome, err = markers.resolve(e, markers.new_id())
        assert.is_false(outcome, err)
        -- wsrep_sync_wait exists on a MariaDB without a provider: the
        -- Galera form is valid SQL there (and changes nothing)
        local res = assert(e:query(markers.lookup_sql(true), { id }))
        assert.are.equal(1, tonumber(res[1].n))
        e:dispose()
      end)
  end

  it("a lookup that cannot run leaves the outcome unknown (nil, err, errno)", function()
    -- a database without the markers table: the lookup fails, not "false"
    local other = db.engine({}, (db.url:gsub("/[^/?]+(%??[^/]*)$", "/information_schema%1")))
    local outcome, err, errno = markers.resolve(other, markers.new_id())
    assert.is_nil(outcome)
    assert.are.equal(1109, errno, err) -- unknown table in information_schema
    other:dispose()
  end)
end)

describe("commit markers on Galera #mariadb #cluster #galera", function()
  if os.getenv("FSDB_GALERA_MARKERS") == "0" then
    it("skipped (FSDB_GALERA_MARKERS=0)", function() pending("FSDB_GALERA_MARKERS=0") end)
    return
  end
  local cluster = require("helpers.cluster")
  local c

  setup(function()
    c = cluster.start("galera")
  end)

  teardown(function()
    if c then c:stop() end
  end)

  for _, transport in ipairs({ "libmariadb", "cqueues" }) do
    it("the lookup on a node is a causal read and finds a commit made on another node (" .. transport .. ")",
      function()
        if transport == "cqueues" and not pcall(require, "cqueues") then
          pending("lua-cqueues is not installed")
          return
        end
        local writer = fsdb.engine.new(c.nodes[2].url, { transport = transport, commit_markers = true })
        local reader = fsdb.engine.new(c.nodes[1].url, { transport = transport, commit_markers = true })
        assert(markers.prepare(writer))
        for _ = 1, 20 do
          local id = markers.new_id()
          assert(writer:execute("INSERT INTO " .. markers.TABLE .. " (id) VALUES (?)", id))
          local seen, outcome, err = traced_resolve(reader, id)
          assert.is_true(outcome, err)
          assert.are.equal(markers.lookup_sql(true), lookup_of(seen))
        end
        writer:dispose()
        reader:dispose()
      end)
  end
end)
