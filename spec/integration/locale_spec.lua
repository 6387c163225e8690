-- A comma-decimal LC_NUMERIC (de_DE.UTF-8, as an application like nginx or
-- a GUI may set it) must not change a number that fsdb reads or writes:
-- text- and binary-protocol floats, migration defaults and `--sql` output.
-- scripts/deps generates the locale; without it this spec fails (it cannot
-- show anything in the C locale).
local cli = require("fsdb.cli")
local ops = require("fsdb.migrate.ops")
local sqltext = require("fsdb.sqltext")
local db = require("helpers.db")

local LOCALES = { "de_DE.UTF-8", "de_DE.utf8", "de_DE" }

local function comma_locale()
  for _, name in ipairs(LOCALES) do
    local got = os.setlocale(name, "numeric")
    if got then return got end
  end
  return nil
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

describe("numbers under a comma-decimal locale #mariadb", function()
  local before, engine
  setup(function()
    before = os.setlocale(nil, "numeric")
    engine = db.engine({ pool_size = 1 })
  end)
  before_each(function()
    assert(comma_locale(), "no de_DE locale: run scripts/deps (it generates de_DE.UTF-8)")
  end)
  after_each(function() os.setlocale(before, "numeric") end)
  teardown(function() engine:dispose() end)

  it("is really in effect for the C library", function()
    assert.matches("^de_DE", os.setlocale(nil, "numeric"))
    if not jit then
      -- Lua 5.4 formats through the C library: the locale shows.
      assert.are.equal("0,5", ("%.1f"):format(0.5))
    end
  end)

  it("reads text-protocol DOUBLE and FLOAT values as written", function()
    local row = db.must(engine, "SELECT 1.5e0 AS d, -2.25e-3 AS e, CAST(1.5 AS FLOAT) AS f, 2.5 AS n")[1]
    assert.are.equal(1.5, row.d)
    assert.are.equal(-2.25e-3, row.e)
    assert.are.equal(1.5, row.f)
    assert.are.equal("2.5", row.n)  -- DECIMAL stays text, with its point
  end)

  it("reads binary-protocol DOUBLE and FLOAT values as written", function()
    local t = db.unique("loc")
    db.must(engine, "CREATE TABLE `" .. t .. "` (d DOUBLE, f FLOAT)")
    finally(function() db.must(engine, "DROP TABLE `" .. t .. "`") end)
    db.must(engine, "INSERT INTO `" .. t .. "` VALUES (?, ?)", 1.5, 0.25)
    local row = db.must(engine, "SELECT d, f FROM `" .. t .. "` WHERE d > ?", 1)[1]
    assert.are.equal(1.5, row.d)
    assert.are.equal(0.25, row.f)
  end)

  it("writes migration defaults and inlined values in C form", function()
    local op = ops.new(function() return true end)
    op.add_column("t", { "x", "DOUBLE", default = 1.5 })
    op.bulk_insert("t", { { x = 0.5 } })
    assert.are.equal("ALTER TABLE `t` ADD COLUMN `x` DOUBLE NULL DEFAULT 1.5", op.statements[1])
    assert.are.equal("INSERT INTO `t` (`x`) VALUES (0.5)", ops.inline("INSERT INTO `t` (`x`) VALUES (?)", { 0.5 }))
    assert.are.equal("0.1", sqltext.number(0.1))
    assert.are.equal("-1.5e-300", sqltext.literal(-1.5e-300))
  end)

  it("fsdb upgrade writes DEFAULT 1.5 online and VALUES (0.5) with --sql", function()
    local name = db.unique("fsdb_loc")
    db.must(engine, "CREATE DATABASE `" .. name .. "`")
    local tmp = os.tmpname()
    os.remove(tmp)
    local e
    finally(function()  -- (busted keeps one finally per test)
      if e then e:dispose() end
      db.must(engine, "DROP DATABASE IF EXISTS `" .. name .. "`")
      os.execute("rm -rf " .. shell_quote(tmp))
    end)
    local url = db.url:gsub("/[^/]*$", "/" .. name)
    local function run(argv)
      local out, err = {}, {}
      argv[#argv + 1] = "-d"
      argv[#argv + 1] = tmp .. "/m"
      local status = cli.main(argv, {
        out = function(s) out[#out + 1] = s end,
        err = function(s) err[#err + 1] = s end,
        getenv = function(k) if k == "DATABASE_URL" then return url end end,
        dotenv = "/nonexistent/fsdb-spec/.env",
      })
      return status, table.concat(out), table.concat(err)
    end
    assert.are.equal(0, (run({ "init" })))
    local status, out, err = run({ "revision", "-m", "floats" })
    assert.are.equal(0, status, err)
    local path = out:match("Generating (.-) %.%.%.  done")
    local f = assert(io.open(path, "rb"))
    local text = f:read("*a")
    f:close()
    text = text:gsub("  up = function%(op%)\n.-\n  end,", function()
      return '  up = function(op)\n    op.create_table("f", { { "x", "DOUBLE", default = 1.5 } })\n'
        .. '    op.bulk_insert("f", { { x = 0.5 } })\n  end,'
    end)
    f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()

    status, out, err = run({ "upgrade", "--sql", "base:head" })
    assert.are.equal(0, status, err)
    assert.matches("`x` DOUBLE NULL DEFAULT 1.5)", out, 1, true)
    assert.matches("INSERT INTO `f` (`x`) VALUES (0.5);", out, 1, true)

    status, out, err = run({ "upgrade" })
    assert.are.equal(0, status, err .. out)
    e = db.engine({ pool_size = 1 }, url)
    db.must(e, "INSERT INTO f () VALUES ()")
    local res = db.must(e, "SELECT x FROM f ORDER BY x")
    assert.are.equal(0.5, res[1].x)
    assert.are.equal(1.5, res[2].x)
  end)

  it("echo lines print parameters and milliseconds with a point", function()
    local lines = {}
    local e = db.engine({ echo = true, echo_parameters = true,
      logger = function(_, msg) lines[#lines + 1] = msg end })
    finally(function() e:dispose() end)
    db.must(e, "SELECT ? AS x", 1.5)
    assert.is_nil(e:execute("SELECT * FROM fsdb_no_such_table WHERE x = ?", 0.25))
    assert.are.equal(2, #lines)
    assert.matches("%[1%.5%] %-%- %d+%.%d%d%d ms, 1 row$", lines[1])
    assert.matches("%[0%.25%] %-%- failed after %d+%.%d%d%d ms: ", lines[2])
  end)

  it("a pool timeout message prints pool_timeout with a point", function()
    local e = db.engine({ pool_size = 1, max_overflow = 0, pool_timeout = 0.25 })
    finally(function() e:dispose() end)
    local c = assert(e:connect())
    local none, err, errno = e:connect()
    c:close()
    assert.is_nil(none)
    assert.are.equal(9002, errno)
    assert.matches("timeout 0.25", err, 1, true)
  end)

  it("so does the cqueues transport's pool", function()
    local e = require("fsdb").engine.new(db.url, { transport = "cqueues", pool_size = 1,
      max_overflow = 0, pool_timeout = 0.25 })
    finally(function() e:dispose() end)
    local got
    db.in_cqueues(function()
      local held = assert(e:connect())
      got = { e:connect() }
      held:close()
    end)
    assert.is_nil(got[1])
    assert.are.equal(9002, got[3])
    assert.matches("timeout 0.25", got[2], 1, true)
  end)
end)
