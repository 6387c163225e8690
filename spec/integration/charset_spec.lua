-- Hostile values, defaults, comments and names against the throwaway server,
-- under the charsets whose multibyte characters can end in an ASCII byte
-- (gbk, big5, sjis, cp932): fsdb refuses them as connection charsets, and
-- the text it writes for others to run (`fsdb upgrade --sql`) is applied
-- with the real `mariadb` client reading it in each of them. Whatever way
-- they go in (--sql, online migrations, the store helpers), values are
-- stored byte for byte or refused, and nothing but the intended objects is
-- ever created. Each describe works in private databases (fsdb_cs_<unique>),
-- dropped at the end.
local cli = require("fsdb.cli")
local fsdb = require("fsdb")
local session = require("fsdb.session")
local db = require("helpers.db")

local CHARSETS = { "gbk", "big5", "sjis", "cp932" }

local files = require("helpers.files")
local shell_quote, read, write = files.shell_quote, files.read, files.write

local counter = 0
local function unique_db()
  counter = counter + 1
  math.randomseed(os.time() + counter)
  return ("fsdb_cs_%d_%d_%d"):format(os.time() % 100000, counter, math.random(1, 999999))
end

local function url_for(name)
  return (db.url:gsub("/[^/]*$", "/" .. name))
end

-- The values. Each of the text ones ends a multibyte run so that a gbk,
-- big5 or sjis reader takes its last byte and the next one ('\', a quote)
-- for one character: escaped byte by byte, they close their literal early.
local TEXTS = {
  "中\\'); CREATE TABLE pwned_t1 (x INT); -- ",
  "Ø\\'); CREATE TABLE pwned_t2 (x INT); -- ",
  "中'); CREATE TABLE pwned_t3 (x INT); -- ",
  "C:\\temp\\new",
  "it's \"quoted\" `back` \\ 中文 \n\r\t\26 end",
}
-- Not UTF-8: VARBINARY takes them as bytes.
local BYTES = {
  "\191\\'); CREATE TABLE pwned_b1 (x INT); -- ",
  "\149\\'",
  "\164\\`",
  "\129'",
  "\0\\\n\r\26'\"`\255",
}
local DEFAULT_TEXT = "中\\'); CREATE TABLE pwned_d1 (x INT); -- "
local DEFAULT_BYTES = "\191\\'\0"
-- COMMENT takes only a plain string; --sql refuses a backslash in it.
local COMMENT = "中'`; CREATE TABLE pwned_c1 (x INT); -- Ø"
-- Names --sql accepts: every multibyte run ends cleanly in each charset.
local NAME1 = "x`; CREATE TABLE pwned_n1 (a INT); -- z"
local NAME2 = "中中`); CREATE TABLE pwned_n2 (a INT); -- z"
-- A name --sql refuses (a gbk reader would take its AD and the backtick
-- for one character); online, over utf8mb4, it is stored as it is.
local NAME_UNSAFE = "中`); CREATE TABLE pwned_n3 (a INT); -- z"

-- The revision body creating `t` and filling it with all of the above.
local function hostile_up(extra_column)
  local q = function(s) return ("%q"):format(s) end
  local rows = {}
  for i = 1, #TEXTS do
    rows[#rows + 1] = ("{ id = %d, t = %s, b = %s, [%s] = %d, [%s] = %d }"):format(
      i, q(TEXTS[i]), q(BYTES[i]), q(NAME1), i, q(NAME2), -i)
  end
  local cols = {
    '{ "id", "INT", primary_key = true }',
    '{ "t", "VARCHAR(200)" }',
    '{ "b", "VARBINARY(200)" }',
    ('{ "d", "VARCHAR(200)", default = %s, comment = %s }'):format(q(DEFAULT_TEXT), q(COMMENT)),
    ('{ "db", "VARBINARY(50)", default = %s }'):format(q(DEFAULT_BYTES)),
    ('{ %s, "INT" }'):format(q(NAME1)),
    ('{ %s, "INT" }'):format(q(NAME2)),
  }
  if extra_column then cols[#cols + 1] = ('{ %s, "INT" }'):format(q(extra_column)) end
  return table.concat({
    ('op.create_table("t", { %s }, { comment = %s })'):format(table.concat(cols, ", "), q(COMMENT)),
    ("op.bulk_insert(\"t\", { %s })"):format(table.concat(rows, ", ")),
    ("op.execute(\"INSERT INTO t (id, t, b) VALUES (?, ?, ?)\", { 100, %s, %s })"):format(
      q(TEXTS[1]), q(BYTES[1])),
    ("op.execute(\"INSERT INTO t (id, t, b) VALUES (:id, :t, :b)\", { id = 101, t = %s, b = %s })"):format(
      q(TEXTS[2]), q(BYTES[2])),
  }, "\n    ")
end

-- A private database and migrations directory.
local function sandbox()
  local box = { name = unique_db() }
  db.must(db.engine(), "CREATE DATABASE `" .. box.name .. "` CHARACTER SET utf8mb4")
  box.url = url_for(box.name)
  box.tmp = os.tmpname()
  os.remove(box.tmp)
  assert(os.execute("mkdir -p " .. shell_quote(box.tmp)))
  box.dir = box.tmp .. "/migrations"
  box.dbs = { box.name }

  function box.fsdb(argv, url)
    local out, err = {}, {}
    local args = {}
    for i, a in ipairs(argv) do args[i] = a end
    args[#args + 1] = "-d"
    args[#args + 1] = box.dir
    local status = cli.main(args, {
      out = function(s) out[#out + 1] = s end,
      err = function(s) err[#err + 1] = s end,
      getenv = function(name) if name == "DATABASE_URL" then return url or box.url end end,
      dotenv = "/nonexistent/fsdb-spec/.env",
    })
    return status, table.concat(out), table.concat(err)
  end

  function box.revision(up)
    local status, out, err = box.fsdb({ "revision", "-m", "hostile" })
    assert.are.equal(0, status, err)
    local path = out:match("Generating (.-) %.%.%.  done")
    local text, n = read(path):gsub("  up = function%(op%)\n.-\n  end,",
      function() return "  up = function(op)\n    " .. up .. "\n  end," end)
    assert.are.equal(1, n)
    write(path, text)
  end

  -- A fresh empty database; returns its name.
  function box.database()
    local name = unique_db()
    db.must(db.engine(), "CREATE DATABASE `" .. name .. "` CHARACTER SET utf8mb4")
    box.dbs[#box.dbs + 1] = name
    return name
  end

  -- Runs sql_text with the mariadb client reading it in charset cs;
  -- returns true when it exited 0, and its output. force: go on after an
  -- error (so that any statement a value smuggled in would run too). The
  -- password goes through an option file, never the command line.
  function box.apply(dbname, sql_text, cs, force)
    local cnf, file, out = box.tmp .. "/client.cnf", box.tmp .. "/in.sql", box.tmp .. "/out.txt"
    write(cnf, ("[client]\nuser=%s\npassword=%s\nsocket=%s\n"):format(
      os.getenv("FSDB_TEST_USER"), db.password, db.socket))
    write(file, sql_text)
    local ok = os.execute(("mariadb --defaults-extra-file=%s --default-character-set=%s %s %s < %s > %s 2>&1")
      :format(shell_quote(cnf), cs, force and "--force --binary-mode" or "", shell_quote(dbname), shell_quote(file),
        shell_quote(out)))
    os.remove(cnf)
    return ok == true or ok == 0, read(out)
  end

  function box.engine(name)
    local e = fsdb.engine.new(url_for(name), { pool_size = 1 })
    box.engines = box.engines or {}
    box.engines[#box.engines + 1] = e
    return e
  end

  function box.close()
    for _, e in ipairs(box.engines or {}) do e:dispose() end
    local root = db.engine()
    for _, name in ipairs(box.dbs) do db.must(root, "DROP DATABASE IF EXISTS `" .. name .. "`") end
    os.execute("rm -rf " .. shell_quote(box.tmp))
  end
  return box
end

-- Every table anywhere on the server whose name starts with pwned.
local function pwned()
  local res = db.must(db.engine(), "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n FROM information_schema.TABLES "
    .. "WHERE TABLE_NAME LIKE 'pwned%'")
  local t = {}
  for _, r in ipairs(res) do t[#t + 1] = r.s .. "." .. r.n end
  return t
end

local function tables_of(e)
  local res = db.must(e, "SELECT TABLE_NAME AS n FROM information_schema.TABLES "
    .. "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME")
  local t = {}
  for _, r in ipairs(res) do t[#t + 1] = r.n end
  return t
end

-- Checks that database dbname holds exactly what hostile_up made.
local function assert_hostile_table(e, extra)
  assert.are.same({ "alembic_version", "t" }, tables_of(e))
  local res = db.must(e, "SELECT id, t, b, `" .. NAME1:gsub("`", "``") .. "` AS n1, `"
    .. NAME2:gsub("`", "``") .. "` AS n2 FROM t ORDER BY id")
  assert.are.equal(#TEXTS + 2, #res)
  for i = 1, #TEXTS do
    assert.are.equal(TEXTS[i], res[i].t)
    assert.are.equal(BYTES[i], res[i].b)
    assert.are.equal(i, res[i].n1)
    assert.are.equal(-i, res[i].n2)
  end
  assert.are.equal(TEXTS[1], res[#TEXTS + 1].t)
  assert.are.equal(BYTES[1], res[#TEXTS + 1].b)
  assert.are.equal(TEXTS[2], res[#TEXTS + 2].t)
  assert.are.equal(BYTES[2], res[#TEXTS + 2].b)
  -- The defaults, as a row that takes them.
  db.must(e, "INSERT INTO t (id) VALUES (999)")
  local row = db.must(e, "SELECT d, db FROM t WHERE id = 999")[1]
  assert.are.equal(DEFAULT_TEXT, row.d)
  assert.are.equal(DEFAULT_BYTES, row.db)
  local c = db.must(e, "SELECT COLUMN_COMMENT AS c FROM information_schema.COLUMNS "
    .. "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'd'")[1]
  assert.are.equal(COMMENT, c.c)
  local tc = db.must(e, "SELECT TABLE_COMMENT AS c FROM information_schema.TABLES "
    .. "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't'")[1]
  assert.are.equal(COMMENT, tc.c)
  if extra then
    local n = db.must(e, "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
      .. "AND TABLE_NAME = 't' AND COLUMN_NAME = ?", extra)[1].n
    assert.are.equal(1, n)
  end
end

describe("charsets #mariadb", function()
  local box
  setup(function()
    assert.are.same({}, pwned())
    box = sandbox()
    assert.are.equal(0, (box.fsdb({ "init" })))
    box.revision(hostile_up())
  end)
  teardown(function() box.close() end)
  after_each(function() assert.are.same({}, pwned()) end)

  describe("as the connection charset", function()
    for _, cs in ipairs(CHARSETS) do
      it(cs .. " is refused with a hint to use utf8mb4", function()
        local ok, err = pcall(fsdb.engine.new, db.url .. "?charset=" .. cs)
        assert.is_false(ok)
        assert.matches("charset " .. cs .. " is not supported", err, 1, true)
        assert.matches("use charset=utf8mb4", err, 1, true)
        -- The CLI says the same, and runs nothing.
        local status, out, e = box.fsdb({ "upgrade" }, box.url .. "?charset=" .. cs:upper())
        assert.are.equal(1, status)
        assert.matches("charset " .. cs .. " is not supported", e, 1, true)
        assert.is_nil(out:find("Running upgrade", 1, true))
      end)
    end
  end)

  describe("--sql output", function()
    local text
    setup(function()
      local status, out, err = box.fsdb({ "upgrade", "--sql", "base:head" })
      assert.are.equal(0, status, err)
      text = out
    end)

    it("starts with SET NAMES and writes every value in plain ASCII", function()
      assert.are.equal("SET NAMES utf8mb4;\n", text:sub(1, 19))
      local n = 0
      for values in text:gmatch("\nINSERT INTO `?t`? [^\n]- VALUES (%([^\n]*)") do
        n = n + 1
        assert.is_nil(values:find("[^\32-\126]"), values)
        assert.is_nil(values:find("\\", 1, true), values)
      end
      assert.are.equal(3, n)
    end)

    for _, cs in ipairs(CHARSETS) do
      it("applied by the mariadb client reading it as " .. cs .. " stores every byte", function()
        local name = box.database()
        local ok, out = box.apply(name, text, cs)
        assert.is_true(ok, out)
        assert_hostile_table(box.engine(name))
      end)

      it("without its SET NAMES line, read as " .. cs .. ", still creates nothing else", function()
        local name = box.database()
        box.apply(name, (text:gsub("^SET NAMES [^\n]*\n", "")), cs, true)
        local got = tables_of(box.engine(name))
        for _, t in ipairs(got) do
          assert.is_truthy(t == "t" or t == "alembic_version" or t:match("^t") or t:match("^alembic"), t)
        end
        assert.are.same({}, pwned())
      end)
    end

    it("(control) escaping byte by byte, as before, lets a gbk reader run the value as SQL", function()
      local name = box.database()
      local old = "'" .. TEXTS[1]:gsub("\\", "\\\\"):gsub("'", "''") .. "'"
      box.apply(name, "CREATE TABLE ctl (v VARCHAR(200));\nINSERT INTO ctl (v) VALUES (" .. old .. ");\n", "gbk")
      local got = pwned()
      assert.are.same({ name .. ".pwned_t1" }, got)
      db.must(db.engine(), "DROP TABLE `" .. name .. "`.pwned_t1")
    end)

    it("refuses a name that a double-byte reader would not end at its quote", function()
      local other = sandbox()
      finally(function() other.close() end)
      assert.are.equal(0, (other.fsdb({ "init" })))
      other.revision(hostile_up(NAME_UNSAFE))
      local status, out, err = other.fsdb({ "upgrade", "--sql", "base:head" })
      assert.are.equal(1, status)
      assert.matches("cannot be written for %-%-sql", err)
      assert.matches("gbk", err, 1, true)
      assert.is_nil(out:find("CREATE TABLE `t`", 1, true))
      -- Online, over utf8mb4, the same revision stores everything.
      status, out, err = other.fsdb({ "upgrade" })
      assert.are.equal(0, status, err .. out)
      assert_hostile_table(other.engine(other.name), NAME_UNSAFE)
    end)

    it("refuses a comment with a backslash (online it is written for the server's SQL mode)", function()
      local other = sandbox()
      finally(function() other.close() end)
      assert.are.equal(0, (other.fsdb({ "init" })))
      other.revision('op.create_table("c", { { "a", "INT", comment = "C:\\\\temp\\\\" } })')
      local status, _, err = other.fsdb({ "upgrade", "--sql", "base:head" })
      assert.are.equal(1, status)
      assert.matches("comment with a backslash cannot be written for %-%-sql", err)
      status, _, err = other.fsdb({ "upgrade" })
      assert.are.equal(0, status, err)
      local c = db.must(other.engine(other.name), "SELECT COLUMN_COMMENT AS c FROM information_schema.COLUMNS "
        .. "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'c'")[1].c
      assert.are.equal("C:\\temp\\", c)
    end)
  end)

  describe("online", function()
    it("the migration stores every byte", function()
      local status, out, err = box.fsdb({ "upgrade" })
      assert.are.equal(0, status, err .. out)
      assert_hostile_table(box.engine(box.name))
    end)

    it("the store helpers store every byte, and a hostile name is only ever a name", function()
      local e = box.engine(box.name)
      local s = session.new(e)
      finally(function() s:close() end)
      for i = 1, #TEXTS do
        assert(s:insert("t", { id = 500 + i, t = TEXTS[i], b = BYTES[i], [NAME1] = i, [NAME2] = -i }))
      end
      s:commit()
      for i = 1, #TEXTS do
        local rows = assert(s:select("t", { where = { [NAME1] = i, t = TEXTS[i] },
          columns = { "b", NAME2 }, order_by = "id" }))
        assert.are.equal(2, #rows)  -- the migration's row and this one
        assert.are.equal(BYTES[i], rows[2].b)
        assert.are.equal(-i, rows[2][NAME2])
      end
      assert.are.equal(1, assert(s:update("t", { t = TEXTS[2] }, { [NAME2] = -1, id = 501 })))
      assert.are.equal(TEXTS[2], assert(s:select("t", { where = { id = 501 } }))[1].t)
      -- A name that is not a column is an error from the server, not SQL.
      local res, err, errno = s:insert("t", { id = 600, [NAME_UNSAFE] = 1 })
      assert.is_nil(res)
      assert.are.equal(1054, errno, err)
      s:rollback()
      assert.matches("well%-formed UTF%-8",
        select(2, pcall(s.insert, s, "t", { id = 601, ["\191`"] = 1 })))
    end)
  end)

  describe("under NO_BACKSLASH_ESCAPES", function()
    local other, mode
    local BS = { "C:\\temp\\", "\\", "a\\'b", "\\0\\n" }
    setup(function()
      local root = db.root()
      mode = db.must(root, "SELECT @@GLOBAL.sql_mode AS m")[1].m
      db.must(root, "SET GLOBAL sql_mode = ?", mode .. (mode == "" and "" or ",") .. "NO_BACKSLASH_ESCAPES")
      other = sandbox()
      assert.are.equal(0, (other.fsdb({ "init" })))
      local q = function(v) return ("%q"):format(v) end
      other.revision(table.concat({
        ('op.create_table("nb", { { "id", "INT", primary_key = true }, '
          .. '{ "v", "VARCHAR(50)" }, { "d", "VARCHAR(50)", default = %s } })'):format(q(BS[1])),
        ('op.bulk_insert("nb", { { id = 1, v = %s }, { id = 2, v = %s } })'):format(q(BS[2]), q(BS[3])),
        ('op.execute("INSERT INTO nb (id, v) VALUES (?, ?)", { 3, %s })'):format(q(BS[4])),
      }, "\n    "))
    end)
    teardown(function()
      db.must(db.root(), "SET GLOBAL sql_mode = ?", mode)
      other.close()
    end)

    local function check(e)
      assert.matches("NO_BACKSLASH_ESCAPES", db.must(e, "SELECT @@SESSION.sql_mode AS m")[1].m, 1, true)
      db.must(e, "INSERT INTO nb (id) VALUES (9)")
      local res = db.must(e, "SELECT id, v, d FROM nb ORDER BY id")
      assert.are.same({ BS[2], BS[3], BS[4], fsdb.null },
        { res[1].v, res[2].v, res[3].v, res[4].v })
      assert.are.equal(BS[1], res[4].d)
    end

    it("--sql output keeps every backslash as it is", function()
      local status, out, err = other.fsdb({ "upgrade", "--sql", "base:head" })
      assert.are.equal(0, status, err)
      local name = other.database()
      local ok, o = other.apply(name, out, "utf8mb4")
      assert.is_true(ok, o)
      check(other.engine(name))
    end)

    it("online migrations keep every backslash, in comments too", function()
      local status, out, err = other.fsdb({ "upgrade" })
      assert.are.equal(0, status, err .. out)
      local e = other.engine(other.name)
      check(e)
      local op = require("fsdb.migrate.ops").new(function(sql) return e:execute(sql) end,
        { dialect = assert(require("fsdb.sqltext").dialect_of(e)) })
      op.add_column("nb", { "c", "INT", comment = BS[1], default = 7 })
      local c = db.must(e, "SELECT COLUMN_COMMENT AS c FROM information_schema.COLUMNS "
        .. "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'nb' AND COLUMN_NAME = 'c'")[1].c
      assert.are.equal(BS[1], c)
    end)
  end)
end)
