-- query/query_rows options mean the same on every transport: the codec
-- transports (cosocket, cqueues) once ignored all but `array`, so a
-- max_statement_time did not bound the statement and `reuse` handed out a
-- fresh table per row. Each case runs on the libmariadb transport and on
-- the cqueues transport and compares.
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")
local th = require("fsdb_testhelper")

local transports = { "libmariadb" }
if pcall(require, "cqueues") then transports[#transports + 1] = "cqueues" end

local function engine(transport, opts)
  opts = opts or {}
  opts.transport = transport
  return fsdb.engine.new(db.url, opts)
end

-- Three rows, one with a NULL, as query_rows gives them.
local ROWS_SQL = "SELECT 1 AS id, 'a' AS name UNION ALL SELECT 2, NULL UNION ALL SELECT 3, 'c'"

-- Each row as the loop sees it at that moment (copied), and the tables.
local function walk(conn, opts)
  local seen, tables = {}, {}
  for row in conn:query_rows(ROWS_SQL, nil, opts) do
    local copy = {}
    for k, v in pairs(row) do copy[k] = v end
    seen[#seen + 1] = copy
    tables[#tables + 1] = row
  end
  return seen, tables
end

describe("query options on every transport #mariadb", function()
  local errnos = {}

  for _, transport in ipairs(transports) do
    describe(transport, function()
      it("max_statement_time per call interrupts SELECT SLEEP(2) with 1969", function()
        local e = engine(transport)
        local conn = assert(e:connect())
        local t0 = th.now()
        local res, err, errno, sqlstate = conn:query("SELECT SLEEP(2) AS s", nil, { max_statement_time = 0.3 })
        local took = th.now() - t0
        h.failure(res, err, errno, sqlstate, { errno = 1969, sqlstate = "70100",
          contains = { "max_statement_time exceeded" } })
        assert.is_true(took < 1.5, ("took %.2f s"):format(took))
        errnos[transport] = errno
        -- only that statement: the session's limit is untouched
        assert.are.equal(0, tonumber(assert(conn:query("SELECT @@max_statement_time AS m"))[1].m))
        -- with parameters (a prepared statement) and through query_rows
        res = assert(conn:query("SELECT ? AS v", { 5 }, { max_statement_time = 2 }))
        assert.are.equal(5, res[1].v)
        local ok, rerr = pcall(function()
          for _ in conn:query_rows("SELECT SLEEP(2) AS s", nil, { max_statement_time = 0.3 }) do end
        end)
        assert.is_false(ok)
        assert.matches("1969", tostring(rerr))
        conn:close()
        -- engine:query hands the option through
        res, err, errno = e:query("SELECT SLEEP(2) AS s", nil, { max_statement_time = 0.3 })
        assert.is_nil(res)
        assert.are.equal(1969, errno, err)
        e:dispose()
      end)

      it("a bad max_statement_time raises the same misuse error", function()
        local e = engine(transport)
        local conn = assert(e:connect())
        for _, bad in ipairs({ "soon", 0, -1, 1e9, true }) do
          assert.has_error(function() conn:query("SELECT 1", nil, { max_statement_time = bad }) end,
            "fsdb: bad value for query option 'max_statement_time' (expected a number of seconds > 0)")
        end
        -- the connection is still fine
        assert.are.equal(1, assert(conn:query("SELECT 1 AS one"))[1].one)
        conn:close()
        e:dispose()
      end)

      it("the engine option max_statement_time (and wsrep_sync_wait) is set on each connection", function()
        local e = engine(transport, { max_statement_time = 0.5, wsrep_sync_wait = 1 })
        local res = assert(e:query("SELECT @@max_statement_time AS m, @@wsrep_sync_wait AS w"))
        assert.are.equal(0.5, tonumber(res[1].m))
        assert.are.equal(1, tonumber(res[1].w))
        local r2, err, errno = e:query("SELECT SLEEP(2) AS s")
        assert.is_nil(r2)
        assert.are.equal(1969, errno, err)
        e:dispose()
      end)

      it("reuse hands out one table, refilled per row; without it a fresh one per row", function()
        local e = engine(transport)
        local conn = assert(e:connect())
        for _, array in ipairs({ false, true }) do
          local want = walk(conn, { array = array })
          local seen, tables = walk(conn, { array = array, reuse = true })
          assert.are.same(want, seen)
          assert.are.equal(3, #tables)
          assert.are.equal(tables[1], tables[2])
          assert.are.equal(tables[1], tables[3])
          local _, fresh = walk(conn, { array = array })
          assert.are_not.equal(fresh[1], fresh[2])
        end
        -- reuse on a buffered query changes nothing (as on libmariadb)
        local res = assert(conn:query(ROWS_SQL, nil, { reuse = true }))
        assert.are_not.equal(res[1], res[2])
        conn:close()
        e:dispose()
      end)

      it("an option neither transport knows is ignored alike", function()
        local e = engine(transport)
        local res = assert(e:query("SELECT 1 AS one", nil, { no_such_option = true }))
        assert.are.equal(1, res[1].one)
        e:dispose()
      end)
    end)
  end

  it("the same errno on both transports", function()
    if #transports < 2 then pending("lua-cqueues is not installed") return end
    assert.are.equal(errnos.libmariadb, errnos.cqueues)
  end)
end)
