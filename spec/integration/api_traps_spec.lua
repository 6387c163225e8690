-- Issue 14's traps in the statement layer: the iterator forms raise (a for
-- loop has no nil, err), a rollback after a lost connection succeeds, and
-- echo and engine events report every statement.
local fsdb = require("fsdb")
local db = require("helpers.db")

local function raises(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "no error raised")
  return tostring(err)
end

-- KILLs the server thread of conn from a root connection.
local function kill(root, conn)
  db.must(root, "KILL " .. conn:thread_id())
end

describe("iterators raise #mariadb", function()
  local e, root
  setup(function()
    e = db.engine()
    root = db.root()
  end)
  teardown(function()
    e:dispose()
    root:dispose()
  end)

  it("for row in conn:rows('SELEC 1') raises with 1064 and the server's text", function()
    local conn = assert(e:connect())
    local err = raises(function() for _ in conn:rows("SELEC 1") do end end)
    assert.matches("^fsdb: You have an error in your SQL syntax", err)
    assert.matches("near 'SELEC 1'", err, 1, true)
    assert.matches("(errno 1064, sqlstate 42000)", err, 1, true)
    -- the connection is still usable
    assert.are.equal(2, db.must(conn, "SELECT 2 AS two")[1].two)
    conn:close()
    assert.are.equal(0, e:status().checked_out)
  end)

  it("s:rows, s:query_rows and a view's rows raise the same way", function()
    local s = fsdb.session.new(e)
    for _, form in ipairs({
      function() for _ in s:rows("SELEC 1") do end end,
      function() for _ in s:rows("SELEC ?", 1) do end end,
      function() for _ in s:query_rows("SELEC ?", { 1 }, { array = true }) do end end,
      function() for _ in s:using("default"):rows("SELEC 1") do end end,
    }) do
      local err = raises(form)
      assert.matches("You have an error in your SQL syntax", err, 1, true)
      assert.matches("(errno 1064, sqlstate 42000)", err, 1, true)
    end
    assert.are.equal(1064, s.last_errno)
    assert.is_true(s:rollback())
    s:close()
    assert.are.equal(0, e:status().checked_out)
  end)

  it("a session whose checkout fails raises from rows too", function()
    local bad = db.engine({ pool_timeout = 1 }, db.url:gsub("://([^:]+):[^@]*@", "://%1:wrong@"))
    local s = fsdb.session.new(bad)
    local err = raises(function() for _ in s:rows("SELECT 1") do end end)
    assert.matches("Access denied", err, 1, true)
    assert.matches("(errno 1045, sqlstate 28000)", err, 1, true)
    assert.is_nil(err:find(db.password, 1, true))
    s:close()
    bad:dispose()
  end)

  it("a KILL in the middle of the stream raises, never ends the loop quietly", function()
    local conn = assert(e:connect())
    local id = conn:thread_id()
    local n = 0
    local err = raises(function()
      for _ in conn:rows("SELECT seq FROM seq_1_to_5000000") do
        n = n + 1
        if n == 10 then db.must(root, "KILL " .. id) end
      end
    end)
    assert.is_true(n < 5000000)
    assert.matches("errno 20%d%d", err)
    conn:close()
    assert.are.equal(0, e:status().checked_out)
  end)
end)

describe("rollback after a lost connection #mariadb", function()
  local e, root, tbl
  setup(function()
    e = db.engine()
    root = db.root()
    tbl = db.unique("trap_rb")
    db.must(e, "CREATE TABLE " .. tbl .. " (id INT PRIMARY KEY)")
  end)
  teardown(function()
    db.must(e, "DROP TABLE " .. tbl)
    e:dispose()
    root:dispose()
  end)

  it("returns true after a KILL; the session works right after, nothing was committed", function()
    local s = fsdb.session.new(e)
    assert(s:execute("INSERT INTO " .. tbl .. " VALUES (1)"))
    kill(root, s:connection())
    local res, err, errno = s:execute("INSERT INTO " .. tbl .. " VALUES (2)")
    assert.is_nil(res)
    assert.matches("Lost connection", err, 1, true)
    assert.is_true(errno == 2013 or errno == 2006)
    assert.are.same({ true }, { s:rollback() })
    assert.are.equal(1, db.must(s, "SELECT 1 AS one")[1].one)
    assert.are.equal(0, #db.must(s, "SELECT id FROM " .. tbl))
    assert.is_true(s:commit())
    s:close()
    assert.are.equal(0, e:status().checked_out)
  end)

  it("returns true when the KILL is only noticed by the ROLLBACK itself", function()
    local s = fsdb.session.new(e)
    assert(s:execute("INSERT INTO " .. tbl .. " VALUES (3)"))
    kill(root, s:connection())
    assert.are.same({ true }, { s:rollback() })
    assert(s:execute("INSERT INTO " .. tbl .. " VALUES (4)"))
    assert.is_true(s:commit())
    local rows = db.must(e, "SELECT id FROM " .. tbl)
    assert.are.same({ 1, 4 }, { #rows, rows[1].id })
    db.must(e, "DELETE FROM " .. tbl)
    s:close()
  end)

  it("commit after a lost connection still fails, naming the server's rollback", function()
    local s = fsdb.session.new(e)
    assert(s:execute("INSERT INTO " .. tbl .. " VALUES (5)"))
    kill(root, s:connection())
    assert.is_nil(s:execute("SELECT 1"))
    local ok, err = s:commit()
    assert.is_nil(ok)
    assert.matches("rolled back by the server", err, 1, true)
    assert.are.equal(0, #db.must(e, "SELECT id FROM " .. tbl))
    s:close()
  end)
end)

describe("echo and events #mariadb", function()
  local root
  setup(function() root = db.root() end)
  teardown(function() root:dispose() end)

  local function capture(opts)
    local lines = {}
    opts = opts or {}
    opts.logger = function(level, msg) lines[#lines + 1] = { level = level, msg = msg } end
    return db.engine(opts), lines
  end

  local function all_text(lines)
    local out = {}
    for _, l in ipairs(lines) do out[#out + 1] = l.level .. " " .. l.msg end
    return table.concat(out, "\n")
  end

  it("logs each statement: SQL, time, row count; never the parameters or the password", function()
    local e, lines = capture({ echo = true })
    local tbl = db.unique("trap_echo")
    db.must(e, "CREATE TABLE " .. tbl .. " (id INT PRIMARY KEY, secret VARCHAR(20))")
    assert(e:execute("INSERT INTO " .. tbl .. " VALUES (?, ?)", 1, "hunter2-param"))
    assert(e:query("SELECT * FROM " .. tbl .. " WHERE secret = ?", { "hunter2-param" }))
    assert.are.equal(2, e:executemany("INSERT INTO " .. tbl .. " VALUES (?, ?)",
      { { 10, "hunter2-param" }, { 11, "y" } }).affected_rows)
    assert.are.equal(2, db.must(e, "DELETE FROM " .. tbl .. " WHERE id >= 10").affected_rows)
    local s = fsdb.session.new(e)
    assert(s:executemany("INSERT INTO " .. tbl .. " VALUES (?, ?)", { { 2, "hunter2-param" }, { 3, "x" } }))
    for _ in s:rows("SELECT id FROM " .. tbl .. " WHERE secret = ?", "hunter2-param") do end
    assert(s:transaction(function()
      return s:transaction(function()
        return s:execute("UPDATE " .. tbl .. " SET secret = ? WHERE id = 3", "hunter2-param")
      end)
    end))
    s:close()
    db.must(e, "DROP TABLE " .. tbl)
    local text = all_text(lines)
    for _, want in ipairs({
      "info fsdb: INSERT INTO " .. tbl .. " VALUES %(%?, %?%) %-%- %d+%.%d+ ms, 1 affected",
      "info fsdb: SELECT %* FROM " .. tbl .. " WHERE secret = %? %-%- %d+%.%d+ ms, 1 row\n",
      "info fsdb: START TRANSACTION %-%- ",
      "info fsdb: INSERT INTO " .. tbl .. " VALUES %(%?, %?%) %-%- %d+%.%d+ ms, 2 affected",
      "info fsdb: SELECT id FROM " .. tbl .. " WHERE secret = %? %-%- %d+%.%d+ ms, streaming",
      "info fsdb: SAVEPOINT fsdb_sp_1 %-%- ",
      "info fsdb: RELEASE SAVEPOINT fsdb_sp_1 %-%- ",
      "info fsdb: COMMIT %-%- ",
    }) do
      assert.matches(want, text)
    end
    assert.is_nil(text:find("hunter2-param", 1, true))
    assert.is_nil(text:find(db.password, 1, true))
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)

  it("echo_parameters = true shows them; failures are logged at error level", function()
    local e, lines = capture({ echo = true, echo_parameters = true })
    assert(e:execute("SELECT ? AS a, ? AS b", 7, "seven"))
    assert(e:query("SELECT :x AS x", { x = "named" }))
    assert.is_nil(e:execute("SELEC ?", "shown"))
    local text = all_text(lines)
    assert.matches('SELECT ? AS a, ? AS b [7, "seven"] -- ', text, 1, true)
    assert.matches('SELECT :x AS x [x = "named"] -- ', text, 1, true)
    assert.matches('error fsdb: SELEC %? %["shown"%] %-%- failed after %d+%.%d+ ms: You have an error', text)
    assert.is_nil(text:find(db.password, 1, true))
    e:dispose()
  end)

  it("echo off and no handler: nothing is logged; a logger object and echo = function work", function()
    local e, lines = capture({})
    assert(e:execute("SELECT 1"))
    assert.are.equal(0, #lines)
    e:dispose()

    local got = {}
    local obj = { info = function(self, msg) got[#got + 1] = { self, msg } end }
    e = db.engine({ echo = true, logger = obj })
    assert(e:execute("SELECT 1 AS one"))
    assert.are.equal(obj, got[1][1])
    assert.matches("^fsdb: SELECT 1 AS one %-%- ", got[1][2])
    e:dispose()

    local fn_lines = {}
    e = db.engine({ echo = function(level, msg) fn_lines[#fn_lines + 1] = level .. " " .. msg end })
    assert(e:execute("SELECT 2"))
    assert.matches("^info fsdb: SELECT 2 %-%- ", fn_lines[1])
    e:dispose()
  end)

  it("each event fires the documented number of times over a checkout/execute/checkin/invalidate cycle", function()
    local e = db.engine()
    local count, seen = {}, {}
    for _, name in ipairs(fsdb.events.names) do
      count[name] = 0
      e:on(name, function(conn, ...)
        count[name] = count[name] + 1
        seen[name] = { conn = conn, ... }
      end)
    end
    local conn = assert(e:connect())
    assert(conn:execute("SELECT ? AS a", 1))
    assert.is_nil(conn:execute("SELEC 1"))
    conn:close()
    assert.are.same({ connect = 1, checkout = 1, before_execute = 2, after_execute = 1, error = 1,
                      invalidate = 0, checkin = 1, replica_fallback = 0 }, count)
    assert.are.equal("SELECT ? AS a", seen.after_execute[1])
    assert.are.same({ n = 1, 1 }, seen.after_execute[2])
    assert.are.equal(1, seen.after_execute[3][1].a)
    assert.is_number(seen.after_execute[4])
    assert.are.same({ "SELEC 1", nil, seen.error[3], 1064, "42000" },
      { seen.error[1], seen.error[2], seen.error[3], seen.error[4], seen.error[5] })

    -- a pooled connection again: no connect; engine:execute is one cycle
    assert(e:execute("SELECT 1"))
    assert.are.equal(1, count.connect)
    assert.are.same({ 2, 2, 3 }, { count.checkout, count.checkin, count.before_execute })

    -- a KILL: the failure retires the connection
    conn = assert(e:connect())
    kill(root, conn)
    assert.is_nil(conn:execute("SELECT 1"))
    conn:close()
    assert.are.equal(1, count.invalidate)
    assert.matches("Lost connection", seen.invalidate[1], 1, true)
    assert.are.same({ 3, 3, 2 }, { count.checkout, count.checkin, count.error })
    assert(e:execute("SELECT 1")) -- a new connection
    assert.are.equal(2, count.connect)
    assert.are.equal(0, e:status().checked_out)
    e:dispose()
  end)

  it("a raising handler is logged; the pool stays whole and the statement's result stands", function()
    local e, lines = capture({})
    for _, name in ipairs(fsdb.events.names) do
      e:on(name, function() error("handler broke on " .. name) end)
    end
    for _ = 1, 3 do
      assert.are.equal(5, e:execute("SELECT 5 AS five")[1].five)
      local conn = assert(e:connect())
      assert.are.equal(6, db.must(conn, "SELECT 6 AS six")[1].six)
      assert.is_nil(conn:execute("SELEC 1"))
      conn:close()
      local s = fsdb.session.new(e)
      for _ in s:rows("SELECT 1") do end
      assert(s:commit())
      s:close()
    end
    local st = e:status()
    assert.are.same({ 0, 1 }, { st.checked_out, st.idle })
    local text = all_text(lines)
    for _, name in ipairs({ "connect", "checkout", "before_execute", "after_execute", "error", "checkin" }) do
      assert.matches("error fsdb: handler of engine event '" .. name .. "' raised: .-handler broke on " .. name, text)
    end
    e:dispose()
  end)

  it("a handler may use the connection; off() removes handlers and the observer", function()
    local e = db.engine()
    local ids = {}
    local fn = e:on("checkout", function(conn) ids[#ids + 1] = db.must(conn, "SELECT CONNECTION_ID() AS id")[1].id end)
    local conn = assert(e:connect())
    assert.are.equal(conn:thread_id(), ids[1])
    conn:close()
    assert.is_true(e:off("checkout", fn))
    assert.is_false(e:off("checkout", fn))
    assert.is_nil(e._events)
    assert(e:execute("SELECT 1"))
    assert.are.equal(1, #ids)
    assert.matches("unknown engine event 'chekout' %(known: connect, checkout", raises(function()
      e:on("chekout", fn)
    end))
    assert.matches("function expected, got nil", raises(function() e:on("checkout") end), 1, true)
    assert.matches("engine option 'logger'", raises(function() db.engine({ logger = 5 }) end), 1, true)
    e:dispose()
  end)
end)
