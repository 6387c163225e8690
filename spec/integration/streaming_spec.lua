-- conn:rows() (unbuffered streaming) and conn:executemany() (array binding).
local fsdb = require("fsdb")
local db = require("helpers.db")
local th = require("fsdb_testhelper")

local function rss_kb()
  local f = assert(io.open("/proc/" .. th.getpid() .. "/status"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmRSS:%s+(%d+)"))
end

describe("conn:rows() #mariadb", function()
  local e, c

  before_each(function()
    e = db.engine()
    c = assert(e:connect())
  end)

  after_each(function()
    c:close()
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)

  it("streams rows through both protocols with the same values", function()
    local text, bin = {}, {}
    for row in c:rows("SELECT seq AS n, CONCAT('row ', seq) AS s, NULL AS z FROM seq_1_to_1000") do
      text[#text + 1] = row
    end
    for row in c:rows("SELECT seq AS n, CONCAT('row ', seq) AS s, NULL AS z FROM seq_1_to_1000 WHERE seq >= ?", 1) do
      bin[#bin + 1] = row
    end
    assert.are.equal(1000, #text)
    assert.are.same(text, bin)
    assert.are.same({ n = 1000, s = "row 1000", z = fsdb.null }, text[1000])
  end)

  it("gives array rows and the column list on request", function()
    local cur = assert(c:rows("SELECT 1 AS a, 2 AS a"))
    assert.are.same({ "a", "a" }, cur:columns())
    cur:close()
    local rows = {}
    for row in c:query_rows("SELECT 1 AS a, 2 AS a", nil, { array = true }) do rows[#rows + 1] = row end
    assert.are.same({ { 1, 2 } }, rows)
  end)

  it("opts.reuse refills one row table: every row's values, keyed or arrays, both protocols", function()
    for _, array in ipairs({ false, true }) do
      for _, params in ipairs({ nil, { 0 } }) do
        local sql = "SELECT seq AS n, CONCAT('row ', seq) AS s, IF(seq % 3 = 0, NULL, seq * 2) AS z "
          .. "FROM seq_1_to_1000" .. (params and " WHERE seq > ?" or "")
        local first, n = nil, 0
        for row in c:query_rows(sql, params, { reuse = true, array = array }) do
          n = n + 1
          first = first or row
          assert.are.equal(first, row) -- the same table every time
          local want = n % 3 == 0 and fsdb.null or n * 2
          if array then
            assert.are.same({ n, "row " .. n, want }, row)
          else
            assert.are.same({ n = n, s = "row " .. n, z = want }, row)
          end
          row.extra = true -- callers may scribble on it; the next row rewrites the columns
          row.n = nil
        end
        assert.are.equal(1000, n)
      end
    end
    -- without reuse, every row is its own table
    local seen = {}
    for row in c:query_rows("SELECT seq FROM seq_1_to_100", nil, { reuse = false }) do
      assert.is_nil(seen[row])
      seen[row] = true
    end
  end)

  it("opts.reuse: a wide row, an early break, an error midway still raises", function()
    local cols = {}
    for i = 1, 300 do cols[i] = ("seq + %d AS c%d"):format(i, i) end
    local n = 0
    for row in c:query_rows("SELECT " .. table.concat(cols, ", ") .. " FROM seq_1_to_50", nil, { reuse = true }) do
      n = n + 1
      assert.are.equal(n + 300, row.c300)
      assert.are.equal(n + 1, row.c1)
    end
    assert.are.equal(50, n)
    local cur = c:query_rows("SELECT seq FROM seq_1_to_1000", nil, { reuse = true })
    for row in cur do
      if row.seq == 70 then break end
    end
    assert.is_true(cur:close())
    assert.are.equal(1, db.must(c, "SELECT 1 AS one")[1].one)
    local got = 0
    local ok, err = pcall(function()
      for _ in c:query_rows("SELECT CAST(5 AS UNSIGNED) - seq AS v FROM seq_1_to_10", nil, { reuse = true }) do
        got = got + 1
      end
    end)
    assert.is_false(ok)
    assert.matches("errno 1690, sqlstate 22003", err, 1, true)
    assert.is_true(got < 10)
    assert.are.equal(1, db.must(c, "SELECT 1 AS one")[1].one)
  end)

  it("keeps memory bounded over 2,000,000 rows", function()
    collectgarbage(); collectgarbage()
    local before, peak, n, sum = rss_kb(), 0, 0, 0
    for row in c:rows("SELECT seq AS n, REPEAT('x', 40) AS pad FROM seq_1_to_2000000") do
      n = n + 1
      sum = sum + row.n
      if n % 200000 == 0 then
        local now = rss_kb()
        if now > peak then peak = now end
      end
    end
    assert.are.equal(2000000, n)
    assert.are.equal(2000000 * 2000001 / 2, sum)
    if not os.getenv("FSDB_ASAN") then
      assert.is_true(peak - before < 40 * 1024, ("RSS grew by %d KiB"):format(peak - before))
    end
  end)

  it("refuses another statement while a cursor is open, names the way out", function()
    local cur = assert(c:rows("SELECT seq FROM seq_1_to_100"))
    assert.are.equal(1, cur().seq)
    local ok, err = pcall(c.execute, c, "SELECT 1")
    assert.is_false(ok)
    assert.matches("fsdb: connection is busy streaming rows (conn:rows); finish the loop or call cursor:close() first", err, 1, true)
    assert.is_true(cur:close())
    assert.is_true(cur:close()) -- twice is harmless
    assert.are.equal(1, db.must(c, "SELECT 1 AS one")[1].one)
  end)

  it("an early break leaves the connection usable (Lua 5.4 closes the cursor itself)", function()
    if jit then
      -- LuaJIT has no to-be-closed variables: close the cursor after break.
      local cur = c:rows("SELECT seq FROM seq_1_to_100000")
      for row in cur do if row.seq == 10 then break end end
      cur:close()
    else
      local f = assert(load([[
        local c = ...
        local seen = 0
        for row in c:rows("SELECT seq FROM seq_1_to_100000") do
          seen = row.seq
          if seen == 10 then break end
        end
        return seen
      ]]))
      assert.are.equal(10, f(c))
    end
    assert.are.equal(2, db.must(c, "SELECT 2 AS two")[1].two)
    local again = 0
    for _ in c:rows("SELECT seq FROM seq_1_to_5 WHERE seq > ?", 2) do again = again + 1 end
    assert.are.equal(3, again)
  end)

  it("hands out every row once across its read batches (1, 2, 4, … 64 rows)", function()
    for _, n in ipairs({ 0, 1, 2, 3, 4, 7, 8, 63, 64, 65, 127, 128, 130, 300 }) do
      for _, params in ipairs({ {}, { 0 } }) do
        local sql = "SELECT seq FROM seq_1_to_1000 WHERE seq <= " .. n
          .. (#params > 0 and " AND seq > ?" or "")
        local got = {}
        for row in c:rows(sql, (table.unpack or unpack)(params)) do got[#got + 1] = row.seq end
        assert.are.equal(n, #got)
        for i = 1, n do assert.are.equal(i, got[i]) end
      end
    end
    assert.are.equal(1, db.must(c, "SELECT 1 AS one")[1].one)
  end)

  it("an abandoned cursor is not drained by the collector: its connection is discarded on close", function()
    do
      local cur = c:rows("SELECT seq FROM seq_1_to_1000")
      cur()
    end
    collectgarbage(); collectgarbage()
    local ok, err = pcall(c.execute, c, "SELECT 3 AS three")
    assert.is_false(ok)
    assert.matches("connection is broken", err, 1, true)
    local connects = e:status().connects
    c:close()
    assert.are.equal(0, e:status().idle)
    c = assert(e:connect())
    assert.are.equal(3, db.must(c, "SELECT 3 AS three")[1].three)
    assert.are.equal(connects + 1, e:status().connects)
  end)

  it("raises when the stream fails midway, with errno and sqlstate, never ends silently", function()
    for _, args in ipairs({ { "SELECT CAST(5 AS UNSIGNED) - seq AS v FROM seq_1_to_10" },
                            { "SELECT CAST(5 AS UNSIGNED) - seq AS v FROM seq_1_to_10 WHERE seq > ?", 0 } }) do
      local got = 0
      local ok, err = pcall(function()
        for _ in c:rows((table.unpack or unpack)(args)) do got = got + 1 end
      end)
      assert.is_false(ok)
      assert.matches("errno 1690, sqlstate 22003", err, 1, true)
      assert.is_true(got < 10)
      assert.are.equal(1, db.must(c, "SELECT 1 AS one")[1].one) -- still usable
    end
  end)

  it("raises up front, with errno and sqlstate, when the statement is wrong", function()
    local ok, err = pcall(function()
      for _ in c:rows("SELECT * FROM no_such_table_here") do end
    end)
    assert.is_false(ok)
    assert.matches("^fsdb: Table", err)
    assert.matches("(errno 1146, sqlstate 42S02)", err, 1, true)
    assert.are.equal(1, db.must(c, "SELECT 1 AS one")[1].one) -- still usable
  end)

  it("for row in conn:rows(\"SELEC 1\") raises with 1064 and the server's text", function()
    for _, form in ipairs({
      function() for _ in c:rows("SELEC 1") do end end,
      function() for _ in c:rows("SELEC ?", 1) do end end,
      function() for _ in c:query_rows("SELEC 1") do end end,
      function() for _ in c:query_rows("SELEC ?", { 1 }, { array = true }) do end end,
    }) do
      local ok, err = pcall(form)
      assert.is_false(ok)
      assert.matches("You have an error in your SQL syntax", err, 1, true)
      assert.matches("1064", err, 1, true)
      assert.matches("sqlstate 42000", err, 1, true)
    end
  end)

  it("a statement without rows gives an empty cursor", function()
    local n = 0
    for _ in c:rows("DO 1") do n = n + 1 end
    assert.are.equal(0, n)
  end)

  it("a connection returned while streaming is discarded, the cursor dies cleanly", function()
    local cur = c:rows("SELECT seq FROM seq_1_to_100000")
    cur()
    c:close()
    local ok, err = pcall(cur)
    assert.is_false(ok)
    assert.matches("the cursor's connection was closed", err, 1, true)
    assert.is_true(cur:close())
    assert.are.same({ 0, 0 }, { e:status().checked_out, e:status().idle })
    c = assert(e:connect()) -- for after_each
  end)
end)

-- Every mode: "auto" is MariaDB's array binding here; "values" the
-- multi-row INSERT that servers without it (MySQL) get; "each" one execute
-- per set. Checked through the server's own count of executes.
for _, mode in ipairs({ "auto", "values", "each" }) do
describe("conn:executemany() (executemany_mode " .. mode .. ") #mariadb", function()
  local e, c, tbl

  before_each(function()
    e = db.engine({ executemany_mode = mode })
    c = assert(e:connect())
    tbl = db.unique("many")
    db.must(c, "CREATE TABLE " .. tbl .. " (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), "
      .. "price DECIMAL(10,2), qty INT, note TEXT)")
  end)

  after_each(function()
    db.must(c, "DROP TABLE IF EXISTS " .. tbl)
    c:close()
    e:dispose()
  end)

  local function checksum(t)
    return db.must(c, "SELECT COUNT(*) AS n, SUM(qty) AS q, SUM(price) AS p, SUM(note IS NULL) AS nulls, "
      .. "SUM(CRC32(CONCAT_WS('|', name, price, qty, note))) AS crc FROM " .. t)[1]
  end

  local function executes()
    return tonumber(db.must(c, "SHOW SESSION STATUS LIKE 'Com_stmt_execute'")[1].Value)
  end

  -- One execute per set is slow by nature: fewer rows for it.
  local N = mode == "each" and 3000 or 100000
  -- Round trips: array binding sends 20,000 sets per batch; a multi-row
  -- INSERT with 4 placeholders a row takes 16,383 rows (the server allows
  -- 65,535 placeholders per statement).
  local EXECUTES = { auto = 5, values = 7, each = N }

  it(("lands %d rows exactly (count and checksum against the same rows made by the server)"):format(N), function()
    local sets = {}
    for i = 1, N do
      sets[i] = { "item " .. i, ((i % 1000) + 0.25), i % 7, (i % 3 == 0) and fsdb.null or ("n'" .. i) }
    end
    db.must(c, "START TRANSACTION")
    local before = executes()
    local r, err = c:executemany("INSERT INTO " .. tbl .. " (name, price, qty, note) VALUES (?, ?, ?, ?)", sets)
    local round_trips = executes() - before
    db.must(c, "COMMIT")
    assert.is_truthy(r, err)
    assert.are.equal(N, r.affected_rows)
    assert.are.equal(EXECUTES[mode], round_trips)
    local bulk = checksum(tbl)
    assert.are.equal(N, bulk.n)
    -- The same rows computed by the server itself must give the same checksum
    -- (ids left out: InnoDB may leave gaps between the batches' id blocks).
    local ref = tbl .. "_ref"
    db.must(c, "CREATE TABLE " .. ref .. " LIKE " .. tbl)
    db.must(c, "INSERT INTO " .. ref .. " (id, name, price, qty, note) SELECT seq, CONCAT('item ', seq), "
      .. "(seq % 1000) + 0.25, seq % 7, IF(seq % 3 = 0, NULL, CONCAT('n''', seq)) FROM seq_1_to_" .. N)
    local expected = checksum(ref)
    db.must(c, "DROP TABLE " .. ref)
    assert.are.same(expected, bulk)
  end)

  it("takes :name sets, mixed column types and a single set", function()
    local r = assert(c:executemany("INSERT INTO " .. tbl .. " (name, qty) VALUES (:name, :qty)",
      { { name = "a", qty = 1 }, { name = "b", qty = "2" }, { name = fsdb.null, qty = 3.0 } }))
    assert.are.equal(3, r.affected_rows)
    assert.are.equal(1, assert(c:executemany("UPDATE " .. tbl .. " SET qty = ? WHERE name = ?", { { 10, "a" } })).affected_rows)
    local rows = db.must(c, "SELECT name, qty FROM " .. tbl .. " ORDER BY id")
    rows.columns = nil
    assert.are.same({ { name = "a", qty = 10 }, { name = "b", qty = 2 }, { name = fsdb.null, qty = 3 } }, rows)
    assert.are.same({ affected_rows = 0, insert_id = 0, warnings = 0 },
      assert(c:executemany("DELETE FROM " .. tbl .. " WHERE id = ?", {})))
  end)

  it("reports a failing set with the server's four values", function()
    local r, err, errno, sqlstate = c:executemany("INSERT INTO " .. tbl .. " (id, qty) VALUES (?, ?)",
      { { 1, 1 }, { 2, 2 }, { 1, 3 } })
    assert.is_nil(r)
    assert.matches("^fsdb: Duplicate entry '1'", err)
    assert.are.same({ 1062, "23000" }, { errno, sqlstate })
    assert.are.equal(1, db.must(c, "SELECT 1 AS one")[1].one)
  end)

  it("NULLs that first appear in a later batch, a column of NULLs only, and none at all", function()
    -- two batches of array binding (20,000 sets each); one execute per set is slow
    local n, cut = 25000, 20000
    if mode == "each" then n, cut = 3000, 2000 end
    local sets = {}
    for i = 1, n do
      sets[i] = { "item " .. i, fsdb.null, i % 7, i > cut and i % 2 == 0 and fsdb.null or ("n" .. i) }
    end
    local r = assert(c:executemany("INSERT INTO " .. tbl .. " (name, price, qty, note) VALUES (?, ?, ?, ?)", sets))
    assert.are.equal(n, r.affected_rows)
    local got = db.must(c, "SELECT COUNT(*) AS n, SUM(price IS NULL) AS p, SUM(note IS NULL) AS nn, "
      .. "SUM(note IS NULL AND CAST(SUBSTRING(name, 6) AS UNSIGNED) <= " .. cut .. ") AS early, SUM(qty) AS q, "
      .. "SUM(CRC32(CONCAT_WS('|', name, qty, note))) AS crc FROM " .. tbl)[1]
    local q = 0
    for i = 1, n do q = q + i % 7 end
    local want = db.must(c, "SELECT SUM(CRC32(CONCAT_WS('|', CONCAT('item ', seq), seq % 7, "
      .. "IF(seq > " .. cut .. " AND seq % 2 = 0, NULL, CONCAT('n', seq))))) AS crc FROM seq_1_to_" .. n)[1]
    assert.are.same({ n = n, p = n, nn = math.floor((n - cut) / 2), early = 0, q = q, crc = want.crc },
      { n = got.n, p = tonumber(got.p), nn = tonumber(got.nn), early = tonumber(got.early),
        q = tonumber(got.q), crc = got.crc })
  end)

  it("leaves the collector as it found it: after rows, a failing set and a raise", function()
    local sql = "INSERT INTO " .. tbl .. " (id, qty, name) VALUES (?, ?, ?)"
    local function sets(bad)
      local t = {}
      for i = 1, 3000 do t[i] = { i, i, "x" .. i } end
      if bad == "raise" then t[2999] = { 2999, {}, "x" } end
      if bad == "dup" then t[2999] = { 1, 1, "x" } end
      return t
    end
    for _, stopped in ipairs({ false, true }) do
      if stopped then collectgarbage("stop") end
      assert(c:executemany(sql, sets()))
      assert.are.equal(not stopped, collectgarbage("isrunning"))
      db.must(c, "DELETE FROM " .. tbl)
      local r, err = c:executemany(sql, sets("dup"))
      assert.is_nil(r)
      assert.matches("Duplicate entry", err)
      assert.are.equal(not stopped, collectgarbage("isrunning"))
      db.must(c, "DELETE FROM " .. tbl)
      local ok, msg = pcall(c.executemany, c, sql, sets("raise"))
      assert.is_false(ok)
      assert.matches("bad parameter #2 (table cannot be bound", msg, 1, true)
      assert.are.equal(not stopped, collectgarbage("isrunning"))
      db.must(c, "DELETE FROM " .. tbl)
      collectgarbage("restart")
    end
  end)

  it("raises on misuse", function()
    local cases = {
      { "SELECT ?", { { 1 } }, "executemany() is for statements without a result" },
      { "INSERT INTO " .. tbl .. " (qty) VALUES (1)", { {} }, "needs a statement with placeholders" },
      { "INSERT INTO " .. tbl .. " (qty) VALUES (?)", { { 1 }, { 1, 2 } }, "parameter set #2 has 2 values, the statement has 1 placeholder" },
      { "INSERT INTO " .. tbl .. " (qty) VALUES (?)", { { 1 }, 5 }, "bad parameter set #2 (table expected, got number)" },
      { "INSERT INTO " .. tbl .. " (qty) VALUES (:q)", { { q = 1 }, { r = 2 } }, "parameter set #2 has no value for :q" },
      { "INSERT INTO " .. tbl .. " (qty) VALUES (?)", { { {} } }, "bad parameter #1 (table cannot be bound" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(c.executemany, c, case[1], case[2])
      assert.is_false(ok)
      assert.matches(case[3], err, 1, true)
    end
    assert.are.equal(0, db.must(c, "SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
  end)
end)
end

describe("session:rows() #mariadb", function()
  it("streams 2,000,000 rows with bounded memory; after an early break the session goes on", function()
    local e = db.engine()
    local s = fsdb.session.new(e)
    collectgarbage(); collectgarbage()
    local before, peak, n = rss_kb(), 0, 0
    for _ in s:rows("SELECT seq AS n, REPEAT('y', 40) AS pad FROM seq_1_to_2000000") do
      n = n + 1
      if n % 250000 == 0 then
        local now = rss_kb()
        if now > peak then peak = now end
      end
    end
    assert.are.equal(2000000, n)
    if not os.getenv("FSDB_ASAN") then
      assert.is_true(peak - before < 40 * 1024, ("RSS grew by %d KiB"):format(peak - before))
    end
    if jit then
      local cur = s:rows("SELECT seq FROM seq_1_to_2000000")
      for row in cur do if row.seq == 3 then break end end
      cur:close() -- LuaJIT: no to-be-closed variables
    else
      assert(load([[
        local s = ...
        for row in s:rows("SELECT seq FROM seq_1_to_2000000") do
          if row.seq == 3 then break end
        end
      ]]))(s)
    end
    assert.are.equal(7, db.must(s, "SELECT ? AS seven", 7)[1].seven)
    assert.is_true(s:commit())
    s:close()
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)
end)
