-- The migration verbs of `fsdb` against the throwaway server: in-process
-- through fsdb.cli.main, and as two real bin/fsdb processes racing for the
-- migration lock. Every describe migrates its own database
-- (fsdb_mig_<unique>, dropped at the end) from its own temporary
-- migrations directory, and every step is checked in the database through
-- a separate connection.
local cli = require("fsdb.cli")
local fsdb = require("fsdb")
local db = require("helpers.db")

local files = require("helpers.files")
local shell_quote, read, write = files.shell_quote, files.read, files.write
local exists, checkout_root = files.exists, files.checkout_root

local function url_for(name)
  return (db.url:gsub("/[^/]*$", "/" .. name))
end

local counter = 0
local function unique_db()
  counter = counter + 1
  math.randomseed(os.time() + counter)
  return ("fsdb_mig_%d_%d_%d"):format(os.time() % 100000, counter, math.random(1, 999999))
end

-- A private database and migrations directory for one describe block.
local function sandbox()
  local box = {}
  box.name = unique_db()
  db.must(db.engine(), "CREATE DATABASE `" .. box.name .. "` CHARACTER SET utf8mb4")
  box.url = url_for(box.name)
  box.check = fsdb.engine.new(box.url, { pool_size = 1 })
  box.tmp = os.tmpname()
  os.remove(box.tmp)
  assert(os.execute("mkdir -p " .. shell_quote(box.tmp)))
  box.dir = box.tmp .. "/migrations"

  -- Runs the CLI in-process with DATABASE_URL set to the private
  -- database; returns status, stdout, stderr.
  function box.fsdb(argv, vars)
    local out, err = {}, {}
    local args = {}
    for i, a in ipairs(argv) do args[i] = a end
    args[#args + 1] = "-d"
    args[#args + 1] = box.dir
    vars = vars or { DATABASE_URL = box.url }
    local status = cli.main(args, {
      out = function(s) out[#out + 1] = s end,
      err = function(s) err[#err + 1] = s end,
      getenv = function(name) return vars[name] end,
      dotenv = "/nonexistent/fsdb-spec/.env",
    })
    local o, e = table.concat(out), table.concat(err)
    assert.is_nil((o .. e):find(db.password, 1, true), "password in output")
    return status, o, e
  end

  -- fsdb revision -m msg [extra…] with up/down bodies; returns id, path.
  function box.revision(msg, up, down, extra)
    local argv = { "revision", "-m", msg }
    for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
    local status, out, err = box.fsdb(argv)
    assert.are.equal(0, status, err)
    local path = out:match("Generating (.-) %.%.%.  done")
    assert.is_string(path, out)
    local id = path:match("/versions/(%x+)_")
    assert.matches("^%x%x%x%x%x%x%x%x%x%x%x%x$", id)
    if up or down then box.set_body(path, up, down) end
    return id, path
  end

  function box.set_body(path, up, down)
    local text = read(path)
    local replaced
    text, replaced = text:gsub("  up = function%(op%)\n.-\n  end,\n\n  down = function%(op%)\n.-\n  end,\n}",
      function()
        return "  up = function(op)\n    " .. (up or "") .. "\n  end,\n\n  down = function(op)\n    "
          .. (down or "") .. "\n  end,\n}"
      end)
    assert.are.equal(1, replaced)
    write(path, text)
  end

  -- The version table's rows (sorted), or nil when it does not exist.
  function box.rows(table_name)
    local res, err, errno = box.check:execute("SELECT version_num FROM `"
      .. (table_name or "alembic_version") .. "` ORDER BY version_num")
    if not res then
      assert.are.equal(1146, errno, err)
      return nil
    end
    local t = {}
    for _, r in ipairs(res) do t[#t + 1] = r.version_num end
    return t
  end

  function box.has_table(name)
    local res = db.must(box.check, "SELECT COUNT(*) AS n FROM information_schema.TABLES "
      .. "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", box.name, name)
    return res[1].n == 1
  end

  function box.has_column(tname, cname)
    local res = db.must(box.check, "SELECT COUNT(*) AS n FROM information_schema.COLUMNS "
      .. "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?", box.name, tname, cname)
    return res[1].n == 1
  end

  function box.close()
    box.check:dispose()
    db.must(db.engine(), "DROP DATABASE IF EXISTS `" .. box.name .. "`")
    os.execute("rm -rf " .. shell_quote(box.tmp))
  end
  return box
end

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

describe("fsdb migrations #mariadb", function()
  describe("init, revision, upgrade, current, history, downgrade, stamp", function()
    local box, r1, r2
    setup(function() box = sandbox() end)
    teardown(function() box.close() end)

    it("init creates env.lua and versions/; a second init refuses", function()
      local _
      local status, out, err = box.fsdb({ "init" })
      assert.are.equal(0, status, err)
      assert.matches("Creating directory " .. box.dir .. " ...  done", out, 1, true)
      assert.is_true(exists(box.dir .. "/env.lua"))
      assert.is_true(exists(box.dir .. "/versions/"))
      local env = dofile(box.dir .. "/env.lua")
      assert.are.equal("alembic_version", env.version_table)
      assert.are.equal(60, env.lock_timeout)
      status, _, err = box.fsdb({ "init" })
      assert.are.equal(1, status)
      assert.matches("^fsdb init: Directory .* already exists and is not empty; hint: ", err)
    end)

    it("revision writes versions/<rev>_<slug>.lua on top of the head, without the database", function()
      r1 = box.revision("Create products",
        'op.execute("CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(50))")',
        'op.execute("DROP TABLE products")')
      r2 = box.revision("add price",
        'op.execute("ALTER TABLE products ADD COLUMN price DECIMAL(10,2)")',
        'op.execute("ALTER TABLE products DROP COLUMN price")')
      assert.is_true(exists(box.dir .. "/versions/" .. r1 .. "_create_products.lua"))
      local rev2 = dofile(box.dir .. "/versions/" .. r2 .. "_add_price.lua")
      assert.are.equal(r1, rev2.down_revision)
      assert.are.equal("add price", rev2.message)
      assert.is_nil(box.rows(), "revision must not touch the database")
    end)

    it("current before anything ran says <base>", function()
      local status, out, err = box.fsdb({ "current" })
      assert.are.equal(0, status, err)
      assert.matches("^<base> %(no revision applied", out)
    end)

    it("upgrade applies each revision with Alembic's progress lines", function()
      local status, out, err = box.fsdb({ "upgrade" })
      assert.are.equal(0, status, err)
      assert.matches("Running upgrade  -> " .. r1 .. ", Create products\n", out, 1, true)
      assert.matches("Running upgrade " .. r1 .. " -> " .. r2 .. ", add price\n", out, 1, true)
      assert.are.same({ r2 }, box.rows())
      assert.is_true(box.has_column("products", "price"))
    end)

    it("upgrade again has nothing to do", function()
      local status, out = box.fsdb({ "upgrade", "head" })
      assert.are.equal(0, status)
      assert.matches("Nothing to upgrade: the database is at " .. r2, out, 1, true)
      assert.are.same({ r2 }, box.rows())
    end)

    it("current names the row and marks the head", function()
      local status, out, err = box.fsdb({ "current" })
      assert.are.equal(0, status, err)
      assert.are.equal(r2 .. " (head), add price\n", out)
    end)

    it("history lists newest first; -r limits it; heads and show describe revisions", function()
      local status, out, err = box.fsdb({ "history" })
      assert.are.equal(0, status, err)
      assert.are.equal(r1 .. " -> " .. r2 .. " (head), add price\n<base> -> " .. r1 .. ", Create products\n", out)
      status, out = box.fsdb({ "history", "-r", r2:sub(1, 6) .. ":" })
      assert.are.equal(0, status)
      assert.are.equal(r1 .. " -> " .. r2 .. " (head), add price\n", out)
      status, out = box.fsdb({ "history", "-r", ":current" })
      assert.are.equal(0, status)
      assert.matches(r2 .. " (head) (current), add price", out, 1, true)
      status, out = box.fsdb({ "heads" })
      assert.are.equal(0, status)
      assert.are.equal(r2 .. " (head), add price\n", out)
      status, out = box.fsdb({ "show", r1:sub(1, 4) })
      assert.are.equal(0, status)
      assert.matches("^Rev: " .. r1 .. "\nParent: <base>\nPath: .*" .. r1 .. "_create_products%.lua\n\n    Create products\n$", out)
      status, out, err = box.fsdb({ "branches" })
      assert.are.equal(0, status, err)
      assert.are.equal("", out)
    end)

    it("downgrade (default -1) undoes the last revision", function()
      local status, out, err = box.fsdb({ "downgrade" })
      assert.are.equal(0, status, err)
      assert.matches("Running downgrade " .. r2 .. " -> " .. r1 .. ", add price", out, 1, true)
      assert.are.same({ r1 }, box.rows())
      assert.is_false(box.has_column("products", "price"))
      assert.is_true(box.has_table("products"))
    end)

    it("downgrade base undoes everything and empties the version table", function()
      local status, out, err = box.fsdb({ "downgrade", "base" })
      assert.are.equal(0, status, err)
      assert.matches("Running downgrade " .. r1 .. " -> , Create products", out, 1, true)
      assert.are.same({}, box.rows())
      assert.is_false(box.has_table("products"))
    end)

    it("stamp head writes the version table without running anything", function()
      local _
      local status, out, err = box.fsdb({ "stamp", "head" })
      assert.are.equal(0, status, err)
      assert.matches("Running stamp_revision <base> -> " .. r2, out, 1, true)
      assert.are.same({ r2 }, box.rows())
      assert.is_false(box.has_table("products"))
      status, _, err = box.fsdb({ "stamp", "base" })
      assert.are.equal(0, status, err)
      assert.are.same({}, box.rows())
    end)

    it("+N / -N and partial ids move step by step", function()
      local status, _, err = box.fsdb({ "upgrade", "+1" })
      assert.are.equal(0, status, err)
      assert.are.same({ r1 }, box.rows())
      status, _, err = box.fsdb({ "upgrade", r2:sub(1, 5) })
      assert.are.equal(0, status, err)
      assert.are.same({ r2 }, box.rows())
      status, _, err = box.fsdb({ "downgrade", "-2" })
      assert.are.equal(0, status, err)
      assert.are.same({}, box.rows())
      status, _, err = box.fsdb({ "downgrade", "-1" })
      assert.are.equal(1, status)
      assert.matches("Relative revision -1 didn't produce 1 migrations", err, 1, true)
    end)

    it("an unknown target is Can't locate revision identified by '…' with a hint", function()
      local status, out, err = box.fsdb({ "upgrade", "feedfacecafe" })
      assert.are.equal(1, status)
      assert.are.equal("", out)
      assert.matches("^fsdb upgrade: Can't locate revision identified by 'feedfacecafe'; hint: ", err)
    end)

    it("a connection failure exits 1 naming the URL without its password", function()
      local status, _, err = box.fsdb({ "upgrade", "--url", "mysql://u:secretpw@127.0.0.1:1/nowhere" })
      assert.are.equal(1, status)
      assert.matches("^fsdb upgrade: ", err)
      assert.matches("mysql://u:***@127.0.0.1:1/nowhere from --url", err, 1, true)
      assert.is_nil(err:find("secretpw", 1, true))
    end)
  end)

  describe("upgrade --sql", function()
    local box, r1, r2
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
      r1 = box.revision("create items", 'op.execute("CREATE TABLE items (id INT)")', 'op.execute("DROP TABLE items")')
      r2 = box.revision("seed items", 'op.execute("INSERT INTO items (id) VALUES (?)", { 7 })',
        'op.execute("DELETE FROM items WHERE id = ?", { 7 })')
    end)
    teardown(function() box.close() end)

    it("prints the DDL and the version-table writes and changes nothing", function()
      local status, out, err = box.fsdb({ "upgrade", "--sql" })
      assert.are.equal(0, status, err)
      assert.matches("CREATE TABLE IF NOT EXISTS `alembic_version` (version_num VARCHAR(32) NOT NULL, "
        .. "CONSTRAINT `alembic_version_pkc` PRIMARY KEY (version_num));\n", out, 1, true)
      assert.matches("-- Running upgrade  -> " .. r1 .. ", create items", out, 1, true)
      assert.matches("CREATE TABLE items (id INT);\n", out, 1, true)
      assert.matches("INSERT INTO `alembic_version` (version_num) VALUES ('" .. r1 .. "');\n", out, 1, true)
      assert.matches("INSERT INTO items (id) VALUES (7);\n", out, 1, true)
      assert.matches("UPDATE `alembic_version` SET version_num = '" .. r2 .. "' WHERE version_num = '"
        .. r1 .. "';\n", out, 1, true)
      assert.is_nil(box.rows(), "--sql must not create the version table")
      assert.is_false(box.has_table("items"))
    end)

    it("starts from what the database says", function()
      assert.are.equal(0, (box.fsdb({ "upgrade", r1 })))
      local status, out, err = box.fsdb({ "upgrade", "--sql" })
      assert.are.equal(0, status, err)
      assert.is_nil(out:find("CREATE TABLE items", 1, true))
      assert.matches("INSERT INTO items (id) VALUES (7);", out, 1, true)
      assert.are.same({ r1 }, box.rows())
      local res = db.must(box.check, "SELECT COUNT(*) AS n FROM items")
      assert.are.equal(0, res[1].n)
    end)

    it("downgrade --sql prints the down statements and the version-table delete", function()
      local status, out, err = box.fsdb({ "downgrade", "--sql" })
      assert.are.equal(0, status, err)
      assert.matches("DROP TABLE items;\nDELETE FROM `alembic_version` WHERE version_num = '" .. r1 .. "';",
        out, 1, true)
      assert.are.same({ r1 }, box.rows())
      assert.is_true(box.has_table("items"))
    end)

    it("FROM:TO needs no database at all", function()
      local status, out, err = box.fsdb({ "upgrade", "--sql", "base:head" }, {})
      assert.are.equal(0, status, err)
      assert.matches("CREATE TABLE items (id INT);", out, 1, true)
      status, out, err = box.fsdb({ "upgrade", "--sql", r1 .. ":" .. r2 }, {})
      assert.are.equal(0, status, err)
      assert.is_nil(out:find("CREATE TABLE items", 1, true))
      assert.matches("UPDATE `alembic_version`", out, 1, true)
    end)
  end)

  describe("two heads and a merge", function()
    local box, r1, a, b, m
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
      r1 = box.revision("root", 'op.execute("CREATE TABLE root_t (id INT)")', 'op.execute("DROP TABLE root_t")')
      a = box.revision("branch a", 'op.execute("CREATE TABLE a_t (id INT)")', 'op.execute("DROP TABLE a_t")')
    end)
    teardown(function() box.close() end)

    it("a revision on a non-head needs --splice", function()
      local status, _, err = box.fsdb({ "revision", "-m", "branch b", "--head", r1 })
      assert.are.equal(1, status)
      assert.matches("Revision " .. r1 .. " is not a head revision; please specify --splice", err, 1, true)
      b = box.revision("branch b", 'op.execute("CREATE TABLE b_t (id INT)")', 'op.execute("DROP TABLE b_t")',
        { "--head", r1, "--splice" })
    end)

    it("heads shows both, branches the branch point", function()
      local status, out = box.fsdb({ "heads" })
      assert.are.equal(0, status)
      assert.matches(a .. " (head), branch a\n", out, 1, true)
      assert.matches(b .. " (head), branch b\n", out, 1, true)
      status, out = box.fsdb({ "branches" })
      assert.are.equal(0, status)
      assert.matches("^" .. r1 .. " %(branchpoint%), root\n", out)
      assert.matches("  -> " .. a .. " (head), branch a", out, 1, true)
    end)

    it("upgrade head fails with the multiple-heads message and its hint", function()
      local _
      local status, out, err = box.fsdb({ "upgrade" })
      assert.are.equal(1, status)
      assert.are.equal("", out)
      assert.matches("fsdb upgrade: Multiple head revisions are present for given argument 'head'; please "
        .. "specify a specific target revision, '<branchname>@head' to narrow to a specific head, or "
        .. "'heads' for all heads; hint: ", err, 1, true)
      assert.matches("fsdb merge heads", err, 1, true)
      assert.is_nil(box.rows() and box.rows()[1])
      -- revision on top of "head" refuses the same way
      status, _, err = box.fsdb({ "revision", "-m", "x" })
      assert.are.equal(1, status)
      assert.matches("Multiple heads are present; please specify the head revision", err, 1, true)
    end)

    it("one branch can be applied; the version table then names it", function()
      local status, _, err = box.fsdb({ "upgrade", a })
      assert.are.equal(0, status, err)
      assert.are.same({ a }, box.rows())
    end)

    it("merge produces one head; upgrade then succeeds and leaves one row", function()
      local _
      local status, out, err = box.fsdb({ "merge", "-m", "join a and b" })
      assert.are.equal(0, status, err)
      local path = out:match("Generating (.-) %.%.%.  done")
      m = path:match("/versions/(%x+)_join_a_and_b%.lua$")
      assert.is_string(m, out)
      local rev = dofile(path)
      assert.are.same(sorted({ a, b }), sorted(rev.down_revision))
      _, out = box.fsdb({ "heads" })
      assert.are.equal(m .. " (head) (mergepoint), join a and b\n", out)
      status, out, err = box.fsdb({ "upgrade" })
      assert.are.equal(0, status, err)
      assert.matches("Running upgrade " .. r1 .. " -> " .. b .. ", branch b", out, 1, true)
      assert.matches("Running upgrade " .. table.concat(sorted({ a, b }), ", ") .. " -> " .. m, out, 1, true)
      assert.are.same({ m }, box.rows())
      assert.is_true(box.has_table("b_t"))
    end)

    it("downgrading the merge brings both rows back; upgrade heads-wise joins them again", function()
      local _
      -- -1 from a merge point is Alembic's "Ambiguous walk"; a downgrade to
      -- one parent undoes only what builds on it: the merge.
      local status, out0, err = box.fsdb({ "downgrade", "-1" })
      assert.are.equal(1, status, out0)
      assert.matches("Ambiguous walk", err, 1, true)
      status, _, err = box.fsdb({ "downgrade", a })
      assert.are.equal(0, status, err)
      assert.are.same(sorted({ a, b }), box.rows())
      local out
      status, out = box.fsdb({ "downgrade", b }) -- already there: nothing to undo
      assert.are.equal(0, status)
      assert.matches("Nothing to downgrade", out, 1, true)
      status, _, err = box.fsdb({ "downgrade", r1 })
      assert.are.equal(0, status, err)
      assert.are.same({ r1 }, box.rows())
      status, _, err = box.fsdb({ "upgrade", "heads" })
      assert.are.equal(0, status, err)
      assert.are.same({ m }, box.rows())
    end)
  end)

  describe("a revision file deleted after it was applied", function()
    local box, r1, r2, path2
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
      r1 = box.revision("one", 'op.execute("CREATE TABLE one_t (id INT)")', 'op.execute("DROP TABLE one_t")')
      r2, path2 = box.revision("two", 'op.execute("CREATE TABLE two_t (id INT)")', 'op.execute("DROP TABLE two_t")')
      assert.are.equal(0, (box.fsdb({ "upgrade" })))
      assert(os.remove(path2))
    end)
    teardown(function() box.close() end)

    it("upgrade and current say Can't locate revision identified by '<id>' with a hint", function()
      for _, verb in ipairs({ "upgrade", "current", "downgrade" }) do
        local status, out, err = box.fsdb({ verb })
        assert.are.equal(1, status, verb)
        assert.are.equal("", out)
        assert.matches("^fsdb " .. verb .. ": Can't locate revision identified by '" .. r2 .. "'; hint: ", err)
        assert.matches("stamp --purge", err, 1, true)
      end
      assert.are.same({ r2 }, box.rows())
    end)

    it("history -r current: and migrate say Can't locate too (no crash, exit 1)", function()
      write(box.dir .. "/env.lua", 'return { schema = function() return require("fsdb.schema").new() end }')
      for _, argv in ipairs({ { "history", "-r", "current:" }, { "history", "-i" }, { "migrate", "-m", "x" },
                              { "check", "--schema" } }) do
        local status, out, err = box.fsdb(argv)
        local want = argv[2] == "--schema" and 2 or 1
        assert.are.equal(want, status, table.concat(argv, " ") .. ": " .. out .. err)
        assert.matches("Can't locate revision identified by '" .. r2 .. "'", err, 1, true)
        assert.is_nil(err:find("attempt to", 1, true))
        assert.is_nil(err:find("not up to date", 1, true))
      end
    end)

    it("stamp without --purge points at --purge", function()
      local status, _, err = box.fsdb({ "stamp", "head" })
      assert.are.equal(1, status)
      assert.matches("Can't locate revision identified by '" .. r2 .. "'; hint: `fsdb stamp --purge head`", err, 1, true)
      assert.are.same({ r2 }, box.rows())
    end)

    it("stamp --purge recovers", function()
      local status, out, err = box.fsdb({ "stamp", "--purge", "head" })
      assert.are.equal(0, status, err)
      assert.matches("Running stamp_revision " .. r2 .. " -> " .. r1, out, 1, true)
      assert.are.same({ r1 }, box.rows())
      status, out = box.fsdb({ "current" })
      assert.are.equal(0, status)
      assert.are.equal(r1 .. " (head), one\n", out)
    end)
  end)

  describe("a revision failing midway", function()
    local box, r1, r2, r3
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
      r1 = box.revision("good one", 'op.execute("CREATE TABLE good_t (id INT)")', 'op.execute("DROP TABLE good_t")')
      r2 = box.revision("bad one",
        'op.execute("CREATE TABLE half_t (id INT)")\n    op.execute("INSERT INTO missing_t (id) VALUES (?)", { 42 })',
        'op.execute("DROP TABLE half_t")')
      r3 = box.revision("never reached", 'op.execute("CREATE TABLE never_t (id INT)")', "")
    end)
    teardown(function() box.close() end)

    it("exits 1 naming the revision, the operation, its SQL and the state left", function()
      local status, out, err = box.fsdb({ "upgrade" })
      assert.are.equal(1, status)
      assert.matches("Running upgrade  -> " .. r1, out, 1, true)
      assert.matches("Running upgrade " .. r1 .. " -> " .. r2, out, 1, true)
      assert.is_nil(out:find(r3, 1, true))
      assert.matches("^fsdb upgrade: FAILED in revision " .. r2 .. " %(bad one%)\n", err)
      assert.matches("\noperation: +execute\n", err)
      assert.matches("\nsql: +INSERT INTO missing_t %(id%) VALUES %(42%)\n", err)
      assert.matches("\nerror: +[^\n]*missing_t' doesn't exist", err)
      assert.matches("\nerrno: +1146\n", err)
      assert.matches("\nsqlstate: +42S02\n", err)
      assert.matches("\ndatabase is at: +" .. r1 .. "\n", err)
      assert.matches("MySQL commits DDL implicitly", err, 1, true)
      assert.matches("\n  CREATE TABLE half_t (id INT)\n", err, 1, true)
    end)

    it("the version table still names the previous revision", function()
      assert.are.same({ r1 }, box.rows())
      assert.is_true(box.has_table("good_t"))
      assert.is_true(box.has_table("half_t")) -- DDL is not transactional: the report said so
      assert.is_false(box.has_table("never_t"))
    end)

    it("a Lua error in up() is reported as such", function()
      local path = box.dir .. "/versions/"
      local name
      local ls = io.popen("ls " .. shell_quote(path))
      for n in ls:lines() do
        if n:find(r2, 1, true) then name = n end
      end
      ls:close()
      box.set_body(path .. name, 'local t = nil\n    return t.field', 'op.execute("DROP TABLE half_t")')
      local status, _, err = box.fsdb({ "upgrade" })
      assert.are.equal(1, status)
      assert.matches("FAILED in revision " .. r2, err, 1, true)
      assert.matches("\noperation: +%(Lua error in up%)\n", err)
      assert.matches("\nsql: +%-\n", err)
      assert.matches("nothing of " .. r2 .. " ran before the failure", err, 1, true)
      assert.are.same({ r1 }, box.rows())
    end)
  end)

  describe("a data-only revision failing midway", function()
    local box, r1, r2
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
      r1 = box.revision("table", 'op.execute("CREATE TABLE d_t (id INT PRIMARY KEY)")', 'op.execute("DROP TABLE d_t")')
      r2 = box.revision("rows", 'op.execute("INSERT INTO d_t (id) VALUES (1)")\n    op.execute("INSERT INTO d_t (id) VALUES (1)")',
        'op.execute("DELETE FROM d_t")')
    end)
    teardown(function() box.close() end)

    it("says nothing of it stays: its INSERT was rolled back", function()
      local status, _, err = box.fsdb({ "upgrade" })
      assert.are.equal(1, status)
      assert.matches("FAILED in revision " .. r2, err, 1, true)
      assert.matches("nothing of " .. r2 .. " stays: it changed only data", err, 1, true)
      assert.matches("\n  INSERT INTO d_t (id) VALUES (1)\n", err, 1, true)
      assert.is_nil(err:find("half-applied", 1, true))
      assert.is_nil(err:find("by hand", 1, true))
      assert.are.same({ r1 }, box.rows())
      local res = db.must(box.check, "SELECT COUNT(*) AS n FROM d_t")
      assert.are.equal(0, tonumber(res[1].n))
    end)
  end)

  describe("the migration lock", function()
    local box, r1, r2
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
      r1 = box.revision("slow table", 'op.execute("CREATE TABLE slow_t (id INT AUTO_INCREMENT PRIMARY KEY, pid INT)")',
        'op.execute("DROP TABLE slow_t")')
      r2 = box.revision("slow insert", 'op.execute("SELECT SLEEP(2)")\n    op.execute("INSERT INTO slow_t (pid) VALUES (1)")',
        'op.execute("DELETE FROM slow_t")')
      assert.are.equal(0, (box.fsdb({ "upgrade", r1 })))
    end)
    teardown(function() box.close() end)

    it("a held lock makes upgrade wait and then fail with a clear message", function()
      local _
      local holder = fsdb.engine.new(box.url, { pool_size = 1 })
      local conn = assert(holder:connect())
      local lock = "fsdb_migrate:" .. box.name
      assert.are.equal(1, db.must(conn, "SELECT GET_LOCK(?, 0) AS got", lock)[1].got)
      local status, out, err = box.fsdb({ "upgrade", "--lock-timeout", "1" })
      assert.are.equal(1, status)
      assert.matches("Waiting up to 1 s for the migration lock '" .. lock .. "'", out, 1, true)
      assert.matches("fsdb upgrade: another migration is running on database '" .. box.name .. "' (lock '"
        .. lock .. "' held; waited 1 s); hint: ", err, 1, true)
      assert.are.same({ r1 }, box.rows())
      -- stamp and downgrade take the same lock
      status, _, err = box.fsdb({ "stamp", "head", "--lock-timeout", "0" })
      assert.are.equal(1, status)
      assert.matches("another migration is running", err, 1, true)
      db.must(conn, "SELECT RELEASE_LOCK(?)", lock)
      conn:close()
      holder:dispose()
    end)

    -- Decided behaviour: the second process waits for the lock (up to
    -- lock_timeout), then finds the database at head and exits 0 with
    -- "Nothing to upgrade". The revision runs exactly once.
    it("two bin/fsdb upgrade processes started together apply the slow revision exactly once", function()
      local root = checkout_root()
      local interpreter = jit and "luajit" or "lua5.4"
      local base = box.tmp .. "/proc"
      local function cmd(n)
        return ("(env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 DATABASE_URL=%s %s %s "
          .. "upgrade -d %s > %s 2>&1; echo $? > %s)"):format(shell_quote(box.url), interpreter,
          shell_quote(root .. "/bin/fsdb"), shell_quote(box.dir), shell_quote(base .. n .. ".out"),
          shell_quote(base .. n .. ".rc"))
      end
      os.execute(cmd(1) .. " & " .. cmd(2) .. " & wait")
      local outs, ran, waited_or_nothing = {}, 0, 0
      for n = 1, 2 do
        local rc = tonumber(read(base .. n .. ".rc"))
        outs[n] = read(base .. n .. ".out")
        assert.are.equal(0, rc, outs[n])
        if outs[n]:find("Running upgrade " .. r1 .. " -> " .. r2, 1, true) then ran = ran + 1 end
        if outs[n]:find("Nothing to upgrade: the database is at " .. r2, 1, true) then
          waited_or_nothing = waited_or_nothing + 1
          assert.matches("Waiting up to 60 s for the migration lock", outs[n], 1, true)
        end
        assert.is_nil(outs[n]:find(db.password, 1, true))
      end
      assert.are.equal(1, ran, outs[1] .. "\n----\n" .. outs[2])
      assert.are.equal(1, waited_or_nothing, outs[1] .. "\n----\n" .. outs[2])
      assert.are.equal(1, db.must(box.check, "SELECT COUNT(*) AS n FROM slow_t")[1].n)
      assert.are.same({ r2 }, box.rows())
    end)
  end)

  describe("autogenerate (revision --autogenerate, migrate)", function()
    local has_autogen = pcall(require, "fsdb.migrate.autogen")
    local box, r1
    local SCHEMA_ENV = [[
return {
  version_table = "alembic_version",
  schema = function()
    local schema = require("fsdb.schema")
    local s = schema.new()
    s:table("gadgets", {
      {"id", "INT UNSIGNED", primary_key = true, auto_increment = true},
      {"name", "VARCHAR(80)", nullable = false},
    })
    return s
  end,
}
]]
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
    end)
    teardown(function() box.close() end)

    local test = has_autogen and it or pending

    test("without a schema in env.lua it refuses instead of seeing no changes", function()
      local status, _, err = box.fsdb({ "migrate", "-m", "nothing" })
      assert.are.equal(1, status)
      assert.matches("env.lua names no schema to compare; hint: ", err, 1, true)
    end)

    test("writes a revision with the detected operations", function()
      write(box.dir .. "/env.lua", SCHEMA_ENV)
      local status, out, err = box.fsdb({ "migrate", "-m", "add gadgets" })
      assert.are.equal(0, status, err)
      local path = out:match("Generating (.-) %.%.%.  done")
      assert.is_string(path, out)
      r1 = path:match("/versions/(%x+)_add_gadgets%.lua$")
      local text = read(path)
      assert.matches("create_table", text, 1, true)
      assert.matches("gadgets", text, 1, true)
      assert.matches("drop_table", text, 1, true)
      assert.is_nil(box.rows() and box.rows()[1])
    end)

    test("Target database is not up to date. while revisions are pending", function()
      local status, _, err = box.fsdb({ "revision", "--autogenerate", "-m", "again" })
      assert.are.equal(1, status)
      assert.matches("fsdb revision: Target database is not up to date.; hint: ", err, 1, true)
      assert.matches("fsdb upgrade", err, 1, true)
    end)

    test("No changes in schema detected. once the database matches (exit 0, no file)", function()
      local status, _, err = box.fsdb({ "upgrade" })
      assert.are.equal(0, status, err)
      assert.is_true(box.has_table("gadgets"))
      assert.are.same({ r1 }, box.rows())
      local before = #(require("fsdb.migrate.script").list_dir(box.dir .. "/versions"))
      local out
      status, out, err = box.fsdb({ "migrate", "-m", "nothing new" })
      assert.are.equal(0, status, err)
      assert.are.equal("No changes in schema detected.\n", out)
      assert.are.equal(before, #(require("fsdb.migrate.script").list_dir(box.dir .. "/versions")))
    end)

    test("the drift check: 0 in sync, 1 naming the column, 0 again after migrate + upgrade", function()
      local _
      local status, out, err = box.fsdb({ "check", "--schema" })
      assert.are.equal(0, status, err)
      assert.are.equal("No new upgrade operations detected.\n", out)
      -- a column added in the schema, no revision yet
      write(box.dir .. "/env.lua", (SCHEMA_ENV:gsub('{"name", "VARCHAR%(80%)", nullable = false},',
        '%0 {"colour", "VARCHAR(20)"},')))
      for _, argv in ipairs({ { "check", "--schema" }, { "migrate", "--check" } }) do
        status, out, err = box.fsdb(argv)
        assert.are.equal(1, status, out .. err)
        assert.matches("Detected added column `gadgets`.`colour`", out, 1, true)
        assert.matches('op.add_column("gadgets", {"colour", "VARCHAR(20)"', out, 1, true)
        assert.matches("FAILED: 1 new upgrade operation detected; hint: ", err, 1, true)
      end
      -- --check wrote nothing
      assert.is_nil(box.has_column("gadgets", "colour") or nil)
      status, _, err = box.fsdb({ "migrate", "-m", "colour" })
      assert.are.equal(0, status, err)
      status, out, err = box.fsdb({ "check", "--schema" })
      assert.are.equal(2, status, out) -- the new revision is not applied yet
      assert.matches("Target database is not up to date.", err, 1, true)
      status, _, err = box.fsdb({ "upgrade" })
      assert.are.equal(0, status, err)
      status, out, err = box.fsdb({ "check", "--schema" })
      assert.are.equal(0, status, err)
      assert.are.equal("No new upgrade operations detected.\n", out)
      -- the connection test is unchanged
      status, out = box.fsdb({ "check" })
      assert.are.equal(0, status)
      assert.matches("\nOK\n$", out)
    end)

    test("table comment, engine and collation changes: proposed, migrated, then in sync", function()
      local _
      write(box.dir .. "/env.lua", (SCHEMA_ENV:gsub('{"name", "VARCHAR%(80%)", nullable = false},',
        '%0 {"colour", "VARCHAR(20)"},'):gsub('%}%)\n    return s', '}, { comment = "things we sell", engine = "Aria", '
        .. 'charset = "utf8mb4", collate = "utf8mb4_bin" })\n    return s')))
      local status, out, err = box.fsdb({ "check", "--schema" })
      assert.are.equal(1, status, out .. err)
      assert.matches("Detected changed table options of `gadgets`: comment '' -> 'things we sell', engine "
        .. "'InnoDB' -> 'Aria', collation 'utf8mb4_unicode_ci' -> 'utf8mb4_bin'", out, 1, true)
      assert.matches('op.alter_table("gadgets", { engine = "Aria", charset = "utf8mb4", collate = "utf8mb4_bin", '
        .. 'comment = "things we sell" })', out, 1, true)
      status, _, err = box.fsdb({ "migrate", "-m", "table options" })
      assert.are.equal(0, status, err)
      status, _, err = box.fsdb({ "upgrade" })
      assert.are.equal(0, status, err)
      status, out, err = box.fsdb({ "check", "--schema" })
      assert.are.equal(0, status, out .. err)
      local res = db.must(box.check, "SELECT ENGINE AS e, TABLE_COLLATION AS c, TABLE_COMMENT AS m FROM "
        .. "information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'gadgets'", box.name)
      assert.are.same({ e = "Aria", c = "utf8mb4_bin", m = "things we sell" }, { e = res[1].e, c = res[1].c, m = res[1].m })
      -- and back
      status, _, err = box.fsdb({ "downgrade" })
      assert.are.equal(0, status, err)
      res = db.must(box.check, "SELECT ENGINE AS e, TABLE_COMMENT AS m FROM information_schema.TABLES "
        .. "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'gadgets'", box.name)
      assert.are.same({ e = "InnoDB", m = "" }, { e = res[1].e, m = res[1].m })
      assert.are.equal(0, (box.fsdb({ "upgrade" })))
    end)

    test("the drift check exits 2 when it cannot compare", function()
      local status, _, err = box.fsdb({ "check", "--schema" }, { DATABASE_URL = "mysql://nobody:x@127.0.0.1:1/nodb" })
      assert.are.equal(2, status)
      assert.matches("fsdb check: ", err, 1, true)
      status, _, err = box.fsdb({ "check", "--schema", "--bogus" })
      assert.are.equal(2, status, err)
    end)
  end)

  describe("adopting a database Alembic migrated", function()
    local box, mine
    local ALEMBIC = "ae1027a6acf1"
    setup(function()
      box = sandbox()
      assert.are.equal(0, (box.fsdb({ "init" })))
      db.must(box.check, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        .. "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
      db.must(box.check, "INSERT INTO alembic_version (version_num) VALUES (?)", ALEMBIC)
      db.must(box.check, "CREATE TABLE legacy_accounts (id INT PRIMARY KEY)")
    end)
    teardown(function() box.close() end)

    it("current names the Alembic revision it cannot locate and how to adopt it", function()
      local status, _, err = box.fsdb({ "current" })
      assert.are.equal(1, status)
      assert.matches("Can't locate revision identified by '" .. ALEMBIC .. "'; hint: ", err, 1, true)
      assert.matches("--head " .. ALEMBIC, err, 1, true)
    end)

    it("a first fsdb revision can be based on it (--head <alembic id>, or a partial id of it)", function()
      local status, _, err = box.fsdb({ "revision", "-m", "x", "--head", "ae1" })
      assert.are.equal(1, status) -- 3 characters: too short for a partial id
      assert.matches("at least four characters", err, 1, true)
      mine = box.revision("first fsdb revision", 'op.execute("ALTER TABLE legacy_accounts ADD COLUMN email VARCHAR(100)")',
        'op.execute("ALTER TABLE legacy_accounts DROP COLUMN email")', { "--head", ALEMBIC:sub(1, 6) })
      local out
      status, out = box.fsdb({ "history" })
      assert.are.equal(0, status)
      assert.are.equal(ALEMBIC .. " -> " .. mine .. " (head), first fsdb revision\n", out)
    end)

    it("show of the adopted revision does not claim it starts at <base>", function()
      local status, out, err = box.fsdb({ "show", ALEMBIC })
      assert.are.equal(0, status, err)
      assert.matches("^Rev: " .. ALEMBIC .. " %(adopted%)\n", out)
      assert.matches("\nParent: %(unknown: applied by another tool", out)
      assert.is_nil(out:find("<base>", 1, true))
    end)

    it("upgrade runs from there and replaces the Alembic row", function()
      local status, out, err = box.fsdb({ "upgrade" })
      assert.are.equal(0, status, err)
      assert.matches("Running upgrade " .. ALEMBIC .. " -> " .. mine, out, 1, true)
      assert.are.same({ mine }, box.rows())
      assert.is_true(box.has_column("legacy_accounts", "email"))
    end)

    it("downgrade goes back to the Alembic revision but not below it", function()
      local status, _, err = box.fsdb({ "downgrade" })
      assert.are.equal(0, status, err)
      assert.are.same({ ALEMBIC }, box.rows())
      local out
      status, out = box.fsdb({ "current" })
      assert.are.equal(0, status)
      assert.matches("^" .. ALEMBIC .. " %(adopted%)", out)
      status, _, err = box.fsdb({ "downgrade", "base" })
      assert.are.equal(1, status)
      assert.matches("Can't locate revision identified by '" .. ALEMBIC .. "'", err, 1, true)
      assert.are.same({ ALEMBIC }, box.rows())
    end)
  end)

  describe("a named bind (multi-database)", function()
    local main, auth, r1
    setup(function()
      main = sandbox()
      auth = sandbox()
      assert.are.equal(0, (main.fsdb({ "init" })))
      write(main.dir .. "/env.lua", 'return { bind = "auth" }\n')
      r1 = main.revision("auth users", 'op.execute("CREATE TABLE users (id INT)")', 'op.execute("DROP TABLE users")')
    end)
    teardown(function()
      main.close()
      auth.close()
    end)

    it("without DATABASE_URL_<BIND> it says which variable to set", function()
      local status, _, err = main.fsdb({ "upgrade" })
      assert.are.equal(1, status)
      assert.matches("no database URL for bind 'auth'; hint: set DATABASE_URL_AUTH", err, 1, true)
    end)

    it("migrates the bind's database, not the default one", function()
      local vars = { DATABASE_URL = main.url, DATABASE_URL_AUTH = auth.url }
      local status, _, err = main.fsdb({ "upgrade" }, vars)
      assert.are.equal(0, status, err)
      assert.are.same({ r1 }, auth.rows())
      assert.is_true(auth.has_table("users"))
      assert.is_nil(main.rows())
      assert.is_false(main.has_table("users"))
      local out
      status, out = main.fsdb({ "current" }, vars)
      assert.are.equal(0, status)
      assert.are.equal(r1 .. " (head), auth users\n", out)
    end)
  end)

  describe("usage", function()
    local box
    setup(function() box = sandbox() end)
    teardown(function() box.close() end)

    for _, verb in ipairs({ "init", "revision", "migrate", "upgrade", "downgrade", "stamp", "current",
                            "history", "heads", "branches", "merge", "show", "check" }) do
      it(verb .. " --help prints its usage and exits 0", function()
        local status, out, err = box.fsdb({ verb, "--help" })
        assert.are.equal(0, status)
        assert.are.equal("", err)
        assert.matches("^usage: fsdb " .. verb, out)
      end)
    end

    it("--help lists every migration command and no placeholder", function()
      local status, out = box.fsdb({ "--help" })
      assert.are.equal(0, status)
      for _, verb in ipairs({ "init", "revision", "migrate", "upgrade", "downgrade", "stamp", "current",
                              "history", "heads", "branches", "merge", "show" }) do
        assert.matches("\n  " .. verb .. " ", out, 1, true)
      end
      assert.is_nil(out:find("not available yet", 1, true))
    end)

    it("missing or extra arguments and foreign options are usage errors (exit 2)", function()
      local status, _, err = box.fsdb({ "stamp" })
      assert.are.equal(2, status)
      assert.matches("'stamp' needs a target revision", err, 1, true)
      status, _, err = box.fsdb({ "upgrade", "head", "extra" })
      assert.are.equal(2, status)
      assert.matches("'upgrade' takes at most 1 argument", err, 1, true)
      status, _, err = box.fsdb({ "current", "--purge" })
      assert.are.equal(2, status)
      assert.matches("option '--purge' is not valid for 'current'", err, 1, true)
      status, _, err = box.fsdb({ "upgrade", "--lock-timeout", "soon" })
      assert.are.equal(2, status)
      assert.matches("--lock-timeout needs a number", err, 1, true)
    end)

    it("every verb takes --url, as the README says", function()
      local b = sandbox()
      local status, _, err = b.fsdb({ "init", "--url", b.url })
      assert.are.equal(0, status, err)
      local r1 = b.revision("one")
      b.revision("two")
      b.revision("three", nil, nil, { "--head", r1, "--splice" })
      for _, verb in ipairs({ "heads", "branches", "history", "current", "show head" }) do
        local argv = {}
        for w in verb:gmatch("%S+") do argv[#argv + 1] = w end
        if verb == "show head" then argv[2] = r1 end
        argv[#argv + 1] = "--url"
        argv[#argv + 1] = b.url
        status, _, err = b.fsdb(argv)
        assert.are.equal(0, status, verb .. ": " .. err)
      end
      status, _, err = b.fsdb({ "merge", "-m", "join", "--url", b.url })
      assert.are.equal(0, status, err)
      b.close()
    end)

    it("-v on current, history, heads and branches; history -i marks the database's revisions", function()
      local _
      local b = sandbox()
      assert.are.equal(0, (b.fsdb({ "init" })))
      local r1 = b.revision("first step")
      local r2 = b.revision("second step")
      assert.are.equal(0, (b.fsdb({ "upgrade", r1 })))
      local status, out, err = b.fsdb({ "history", "-i" })
      assert.are.equal(0, status, err)
      assert.are.equal(r1 .. " -> " .. r2 .. " (head), second step\n<base> -> " .. r1 .. " (current), first step\n", out)
      status, out, err = b.fsdb({ "history", "-v" })
      assert.are.equal(0, status, err)
      assert.matches("^Rev: " .. r2 .. " %(head%)\nParent: " .. r1 .. "\nPath: [^\n]*" .. r2
        .. "_second_step%.lua\n\n    second step\n\nRev: " .. r1 .. "\nParent: <base>\n", out)
      for _, verb in ipairs({ "current", "heads", "branches" }) do
        status, out, err = b.fsdb({ verb, "-v" })
        assert.are.equal(0, status, err)
        if verb ~= "branches" then assert.matches("^Rev: ", out) end
      end
      _, out = b.fsdb({ "current", "--verbose" })
      assert.matches("^Rev: " .. r1 .. "\nParent: <base>\n", out)
      b.close()
    end)

    it("LABEL@+1 and LABEL@-1 walk the labelled branch", function()
      local b = sandbox()
      assert.are.equal(0, (b.fsdb({ "init" })))
      local r1 = b.revision("root")
      local x = b.revision("x", nil, nil, { "--branch-label", "xb" })
      local y = b.revision("y", nil, nil, { "--head", r1, "--splice", "--branch-label", "yb" })
      -- from nothing, +1 on yb's line is the root it grows from
      local status, _, err = b.fsdb({ "upgrade", "yb@+1" })
      assert.are.equal(0, status, err)
      assert.are.same({ r1 }, b.rows())
      status, _, err = b.fsdb({ "upgrade", "yb@+1" })
      assert.are.equal(0, status, err)
      assert.are.same({ y }, b.rows())
      status, _, err = b.fsdb({ "upgrade", "xb@+1" })
      assert.are.equal(0, status, err)
      assert.are.same(sorted({ x, y }), b.rows())
      status, _, err = b.fsdb({ "downgrade", "yb@-1" })
      assert.are.equal(0, status, err)
      assert.are.same({ x }, b.rows())
      b.close()
    end)

    it("env.lua takes Alembic's compare_type, compare_server_default and compare_comment", function()
      local _
      local b = sandbox()
      assert.are.equal(0, (b.fsdb({ "init" })))
      write(b.dir .. "/env.lua", "return { compare_type = false, compare_server_default = true, compare_comment = false }")
      local status, out, err = b.fsdb({ "heads" })
      assert.are.equal(0, status, out .. err)
      write(b.dir .. "/env.lua", "return { compare_type = 'no' }")
      status, _, err = b.fsdb({ "heads" })
      assert.are.equal(1, status)
      assert.matches("compare_type in .* must be true or false", err)
      b.close()
    end)

    it("a verb without a migrations directory says to run init", function()
      local status, _, err = box.fsdb({ "upgrade" })
      assert.are.equal(1, status)
      assert.matches("Path doesn't exist: " .. box.dir .. ". Please use the 'init' command", err, 1, true)
    end)
  end)
end)
