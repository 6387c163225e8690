-- Result tables and what is reused between executions (issue "Performance
-- II"): res.columns is built on first use from the result's shape (shared
-- by every result of a prepared statement while its columns stay the
-- same), never shared between results; a large buffered result pauses the
-- garbage collector while it is built and restarts it on every way out.

local fsdb = require("fsdb")
local db = require("helpers.db")

-- Both protocols: text (no parameters) and prepared (a bound parameter).
local function both(conn, sql_text, sql_prep, param)
  return {
    text = db.must(conn, sql_text),
    prepared = db.must(conn, sql_prep, param),
  }
end

describe("#mariadb result tables", function()
  local engine, conn

  before_each(function()
    engine = db.engine()
    conn = assert(engine:connect())
  end)

  after_each(function()
    if conn then conn:close() end
    engine:dispose()
  end)

  it("res.columns lists the names in order, for rows and for no rows, in both protocols", function()
    local sql = "SELECT 1 AS a, 'x' AS b, NULL AS c"
    for proto, res in pairs(both(conn, sql, sql .. " FROM DUAL WHERE ? = 1", 1)) do
      assert.are.same({ "a", "b", "c" }, res.columns, proto)
      assert.are.equal(1, #res, proto)
      assert.are.same({ a = 1, b = "x", c = fsdb.null }, res[1], proto)
    end
    for proto, res in pairs(both(conn, "SELECT 1 AS a FROM DUAL WHERE 1 = 0",
      "SELECT 1 AS a FROM DUAL WHERE ? = 0", 1)) do
      assert.are.equal(0, #res, proto)
      assert.are.same({ "a" }, res.columns, proto)
    end
  end)

  it("res.columns is the same table on every read, and each result has its own", function()
    local sql = "SELECT 1 AS a, 2 AS b FROM DUAL WHERE ? = 1"
    local r1 = db.must(conn, sql, 1)
    local cols = r1.columns
    assert.are.equal(cols, r1.columns)
    cols[1] = "changed"
    cols[3] = "extra"
    local r2 = db.must(conn, sql, 1)
    assert.are_not.equal(cols, r2.columns)
    assert.are.same({ "a", "b" }, r2.columns)
    assert.are.same({ a = 1, b = 2 }, r2[1])
    -- Assigning it keeps the assignment (it is the result's own field).
    r2.columns = { "mine" }
    assert.are.same({ "mine" }, r2.columns)
    assert.are.same({ "a", "b" }, db.must(conn, sql, 1).columns)
  end)

  it("a result is a plain array of rows: ipairs, # and a JSON-style walk see only rows", function()
    local res = db.must(conn, "SELECT seq FROM seq_1_to_3 WHERE seq >= ?", 1)
    local keys = {}
    for k in pairs(res) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.are.same({ 1, 2, 3 }, keys)
    assert.are.same({ "seq" }, res.columns)
    assert.are.equal(nil, res.other)
    assert.are.equal(nil, res[4])
  end)

  it("changing a result's metatable changes neither later rows nor their columns", function()
    local sql = "SELECT 1 AS a, 2 AS b FROM DUAL WHERE ? = 1"
    local r1 = db.must(conn, sql, 1)
    local mt = getmetatable(r1)
    mt.__index = function() return "poked" end
    mt[1], mt[2] = "x", "y"
    setmetatable(r1, nil)
    assert.is_nil(r1.columns)
    local r2 = db.must(conn, sql, 1)
    assert.are.same({ a = 1, b = 2 }, r2[1])
    -- This statement's shape is shared while its columns stay the same,
    -- so r2 sees the poked __index: the names themselves are out of reach.
    assert.are.same({ "a", "b" }, db.must(conn, "SELECT 1 AS a, 2 AS b FROM DUAL WHERE ? = 2", 2).columns)
    -- Results can be given another metatable (e.g. to mark them as lists).
    local mark = {}
    assert.are.equal(r2, setmetatable(r2, mark))
  end)

  it("array rows get the same columns", function()
    local res = assert(conn:query("SELECT 1 AS a, 2 AS b FROM DUAL WHERE ? = 1", { 1 }, { array = true }))
    assert.are.same({ 1, 2 }, res[1])
    assert.are.same({ "a", "b" }, res.columns)
  end)

  it("the same SQL whose columns are renamed gives the new names, in both protocols", function()
    local t = db.unique("shape")
    db.must(conn, ("CREATE TABLE %s (id INT PRIMARY KEY, a INT)"):format(t))
    db.must(conn, ("INSERT INTO %s VALUES (1, 10)"):format(t))
    local text = ("SELECT * FROM %s"):format(t)
    local prep = text .. " WHERE id = ?"
    local before = both(conn, text, prep, 1)
    for proto, res in pairs(before) do
      assert.are.same({ "id", "a" }, res.columns, proto)
      assert.are.same({ id = 1, a = 10 }, res[1], proto)
    end
    db.must(conn, ("ALTER TABLE %s CHANGE a b INT"):format(t))
    for proto, res in pairs(both(conn, text, prep, 1)) do
      assert.are.same({ "id", "b" }, res.columns, proto)
      assert.are.same({ id = 1, b = 10 }, res[1], proto)
    end
    db.must(conn, ("ALTER TABLE %s ADD c INT DEFAULT 7"):format(t))
    for proto, res in pairs(both(conn, text, prep, 1)) do
      assert.are.same({ "id", "b", "c" }, res.columns, proto)
      assert.are.same({ id = 1, b = 10, c = 7 }, res[1], proto)
    end
    -- The older results keep their own names.
    for proto, res in pairs(before) do
      assert.are.same({ "id", "a" }, res.columns, proto)
    end
    db.must(conn, ("DROP TABLE %s"):format(t))
  end)

  it("a column renamed and renamed back gets its first name again (prepared, cached)", function()
    local t = db.unique("shape")
    db.must(conn, ("CREATE TABLE %s (id INT PRIMARY KEY, a INT)"):format(t))
    db.must(conn, ("INSERT INTO %s VALUES (1, 10)"):format(t))
    local prep = ("SELECT * FROM %s WHERE id = ?"):format(t)
    assert.are.same({ id = 1, a = 10 }, db.must(conn, prep, 1)[1])
    db.must(conn, ("ALTER TABLE %s CHANGE a b INT"):format(t))
    assert.are.same({ id = 1, b = 10 }, db.must(conn, prep, 1)[1])
    db.must(conn, ("ALTER TABLE %s CHANGE b a INT"):format(t))
    for _ = 1, 2 do
      local res = db.must(conn, prep, 1)
      assert.are.same({ "id", "a" }, res.columns)
      assert.are.same({ id = 1, a = 10 }, res[1])
    end
    db.must(conn, ("DROP TABLE %s"):format(t))
  end)

  it("the same SQL text in another database gives that database's columns", function()
    local t = db.unique("samename")
    db.must(conn, ("CREATE TABLE %s.%s (x INT)"):format(db.db, t))
    db.must(conn, ("CREATE TABLE %s.%s (y INT, z INT)"):format(db.db2, t))
    db.must(conn, ("INSERT INTO %s.%s VALUES (1)"):format(db.db, t))
    db.must(conn, ("INSERT INTO %s.%s VALUES (2, 3)"):format(db.db2, t))
    local sql = "SELECT * FROM " .. t
    assert.are.same({ "x" }, db.must(conn, sql).columns)
    db.must(conn, "USE " .. db.db2)
    local res = db.must(conn, sql)
    assert.are.same({ "y", "z" }, res.columns)
    assert.are.same({ y = 2, z = 3 }, res[1])
    db.must(conn, "USE " .. db.db)
    assert.are.same({ x = 1 }, db.must(conn, sql)[1])
    db.must(conn, ("DROP TABLE %s.%s"):format(db.db, t))
    db.must(conn, ("DROP TABLE %s.%s"):format(db.db2, t))
  end)

  it("many results of one statement survive collections with the right names", function()
    local sql = "SELECT ? AS n, 'v' AS s"
    local kept = {}
    for i = 1, 300 do
      kept[#kept + 1] = db.must(conn, sql, i)
      if i % 50 == 0 then collectgarbage() end
    end
    collectgarbage()
    for i, res in ipairs(kept) do
      assert.are.same({ n = i, s = "v" }, res[1])
      assert.are.same({ "n", "s" }, res.columns)
    end
  end)

  it("one statement takes parameters of changing types and lengths, in any order", function()
    local sql = "SELECT ? AS v, CAST(? AS CHAR) AS w"
    local long = ("x"):rep(5000) .. "end"
    local cases = {
      { 1, "a" }, { 2, "bb" }, { "three", 3 }, { fsdb.null, ("y"):rep(70) }, { 2.5, "" },
      { long, "short" }, { "short again", long }, { ("z"):rep(300), fsdb.null }, { 7, "seven" },
      { true, "\0binary\0" },
    }
    for i, case in ipairs(cases) do
      local row = db.must(conn, sql, case[1], case[2])[1]
      local want_v = case[1] == true and 1 or case[1]
      local want_w = case[2]
      if type(want_w) == "number" then want_w = tostring(want_w) end
      assert.are.equal(want_v, row.v, "case " .. i)
      assert.are.equal(want_w, row.w, "case " .. i)
    end
  end)

  it("single executes after executemany's array binding use their own values", function()
    local t = db.unique("rebind")
    db.must(conn, ("CREATE TABLE %s (a INT, b VARCHAR(20))"):format(t))
    local ins = ("INSERT INTO %s (a, b) VALUES (?, ?)"):format(t)
    assert(conn:executemany(ins, { { 1, "one" }, { 2, "two" }, { 3, "three" } }))
    db.must(conn, ins, 4, "four")
    assert(conn:executemany(ins, { { 5, "five" }, { 6, fsdb.null } }))
    db.must(conn, ins, 7, "seven")
    local res = db.must(conn, ("SELECT a, b FROM %s ORDER BY a"):format(t))
    local got = {}
    for i, r in ipairs(res) do got[i] = { r.a, r.b } end
    assert.are.same({ { 1, "one" }, { 2, "two" }, { 3, "three" }, { 4, "four" }, { 5, "five" },
      { 6, fsdb.null }, { 7, "seven" } }, got)
    db.must(conn, ("DROP TABLE %s"):format(t))
  end)

  describe("a large buffered result", function()
    -- Past the rows after which the collector pauses, and past two of the
    -- points where LuaJIT lets it run a few steps (result.c).
    local N = 20000
    local text = ("SELECT seq, CONCAT('row ', seq) AS s FROM seq_1_to_%d"):format(N)
    local prepared = text .. " WHERE seq >= ?"

    after_each(function() collectgarbage("restart") end)

    it("leaves the collector running, and every row right, in both protocols", function()
      for proto, res in pairs(both(conn, text, prepared, 1)) do
        assert.is_true(collectgarbage("isrunning"), proto)
        assert.are.equal(N, #res, proto)
        for i = 1, N, 997 do
          assert.are.same({ seq = i, s = "row " .. i }, res[i], proto)
        end
      end
    end)

    it("leaves a collector the caller stopped stopped", function()
      collectgarbage("stop")
      for proto, res in pairs(both(conn, text, prepared, 1)) do
        assert.are.equal(N, #res, proto)
        assert.is_false(collectgarbage("isrunning"), proto)
      end
      collectgarbage("restart")
    end)

    it("restarts the collector when the server fails in the middle", function()
      -- The subquery runs, and fails, only when seq reaches 3000 or
      -- 15000: rows have arrived (past the pause, past LuaJIT's first
      -- collector steps) before the error.
      for _, at in ipairs({ 3000, 15000 }) do
        local bad = ("SELECT seq, IF(seq = %d, (SELECT 1 UNION SELECT 2), seq) AS v FROM seq_1_to_%d"):format(at, N)
        for proto, sql in pairs({ text = bad, prepared = bad .. " WHERE seq >= ?" }) do
          local res, err, errno
          if proto == "text" then
            res, err, errno = conn:execute(sql)
          else
            res, err, errno = conn:execute(sql, 1)
          end
          assert.is_nil(res, proto)
          assert.are.equal(1242, errno, proto .. " at " .. at .. ": " .. tostring(err))
          assert.is_true(collectgarbage("isrunning"), proto)
          -- The connection still works.
          assert.are.equal(1, db.must(conn, "SELECT 1 AS one")[1].one)
        end
      end
    end)
  end)
end)
