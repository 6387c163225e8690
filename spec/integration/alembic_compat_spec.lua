-- fsdb next to the real Alembic (Debian's python3-alembic, through
-- python3-pymysql) on the same server: one revision graph written twice —
-- as Alembic Python scripts and as fsdb Lua revisions, same ids,
-- down_revisions, branch_labels and depends_on, each revision creating
-- one table — and the same verbs run through `python3 -m alembic` on one
-- database and `bin/fsdb` on its twin. After every verb the two must
-- agree on the exit status (success or failure), the version-table rows
-- and the tables present. Then the hand-over: a database one tool left at
-- a head is carried on by the other.
--
-- The graph (two bases, a branch point, a merge, labels, a dependency):
--
--   ae1000000001 ─┬─ ae1000000002 (main) ─────────────┬─ cc3000000001 (merge) ─ ee5000000001
--                 └─ bb2000000001 (side) ─ bb2000000002 ┘
--   dd4000000001 (lib, depends_on ae1000000002) ─ dd4000000002
--
-- The URL reaches both tools through a file (mode 600) in the temporary
-- directory: never argv, never the environment.
local db = require("helpers.db")

-- Without the sanitizer preload of `make asan`: Python is not under test.
local PYTHON = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS /usr/bin/python3"

local files = require("helpers.files")
local shell_quote, write, read = files.shell_quote, files.write, files.read_or_empty
local checkout_root = files.checkout_root

local function have_alembic()
  return os.execute(PYTHON .. " -c 'import alembic, pymysql' >/dev/null 2>&1") == true
    or os.execute(PYTHON .. " -c 'import alembic, pymysql' >/dev/null 2>&1") == 0
end

-- id, down_revision, branch_labels, depends_on
local GRAPH = {
  { "ae1000000001", nil, nil, nil },
  { "ae1000000002", "ae1000000001", "main", nil },
  { "bb2000000001", "ae1000000001", "side", nil },
  { "bb2000000002", "bb2000000001", nil, nil },
  { "cc3000000001", { "ae1000000002", "bb2000000002" }, nil, nil },
  { "ee5000000001", "cc3000000001", nil, nil },
  { "dd4000000001", nil, "lib", "ae1000000002" },
  { "dd4000000002", "dd4000000001", nil, nil },
}

local function py_value(v)
  if v == nil then return "None" end
  if type(v) == "string" then return ("%q"):format(v) end
  local t = {}
  for _, x in ipairs(v) do t[#t + 1] = ("%q"):format(x) end
  return "(" .. table.concat(t, ", ") .. ",)"
end

local function lua_value(v)
  if v == nil then return "nil" end
  if type(v) == "string" then return ("%q"):format(v) end
  local t = {}
  for _, x in ipairs(v) do t[#t + 1] = ("%q"):format(x) end
  return "{ " .. table.concat(t, ", ") .. " }"
end

local ENV_PY = [[
import os
from alembic import context
from sqlalchemy import create_engine

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "alembic.url")) as f:
    url = f.read().strip()
connectable = create_engine(url)
with connectable.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
]]

local ENV_LUA = [[
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
return {
  url = function()
    local f = assert(io.open(here .. "/../fsdb.url"))
    local u = f:read("l")
    f:close()
    return u
  end,
}
]]

-- Writes the graph for both tools under dir.
local function write_graph(dir)
  assert(os.execute("mkdir -p " .. shell_quote(dir .. "/alembic/versions") .. " "
    .. shell_quote(dir .. "/fsdb/versions")))
  write(dir .. "/alembic.ini", "[alembic]\nscript_location = %(here)s/alembic\n")
  write(dir .. "/alembic/env.py", ENV_PY)
  write(dir .. "/alembic/script.py.mako", "")
  write(dir .. "/fsdb/env.lua", ENV_LUA)
  for _, r in ipairs(GRAPH) do
    local id, down, label, dep = r[1], r[2], r[3], r[4]
    write(("%s/alembic/versions/%s_r.py"):format(dir, id), table.concat({
      "from alembic import op",
      ("revision = %q"):format(id),
      "down_revision = " .. py_value(down),
      "branch_labels = " .. (label and py_value({ label }) or "None"),
      "depends_on = " .. py_value(dep),
      "",
      "def upgrade():",
      ("    op.execute('CREATE TABLE t_%s (id INT PRIMARY KEY)')"):format(id),
      "",
      "def downgrade():",
      ("    op.execute('DROP TABLE t_%s')"):format(id),
      "",
    }, "\n"))
    write(("%s/fsdb/versions/%s_r.lua"):format(dir, id), table.concat({
      "return {",
      ("  revision = %q,"):format(id),
      "  down_revision = " .. lua_value(down) .. ",",
      "  branch_labels = " .. lua_value(label) .. ",",
      "  depends_on = " .. lua_value(dep) .. ",",
      ("  message = %q,"):format("r " .. id),
      ("  up = function(op) op.execute('CREATE TABLE t_%s (id INT PRIMARY KEY)') end,"):format(id),
      ("  down = function(op) op.execute('DROP TABLE t_%s') end,"):format(id),
      "}",
      "",
    }, "\n"))
  end
end

if not have_alembic() then
  describe("fsdb next to Alembic #mariadb", function()
    pending("skipped: /usr/bin/python3 cannot import alembic and pymysql (scripts/deps installs "
      .. "python3-alembic and python3-pymysql)")
  end)
  return
end

describe("fsdb next to Alembic #mariadb", function()
  local root = checkout_root()
  local lua = jit and "luajit" or "lua5.4"
  local tmp, admin
  local made = {}

  local function url_for(name)
    return (db.url:gsub("/[^/]*$", "/" .. name))
  end

  -- A fresh database; returns its name.
  local function new_db(tag)
    local name = db.unique("fsdb_ac_" .. tag)
    db.must(admin, "CREATE DATABASE `" .. name .. "` CHARACTER SET utf8mb4")
    made[#made + 1] = name
    return name
  end

  -- Points one tool at a database (the URL file both env files read).
  local function point(tool, name)
    local path = tmp .. "/" .. tool .. ".url"
    local u = url_for(name)
    if tool == "alembic" then u = u:gsub("^mysql://", "mysql+pymysql://") end
    os.remove(path)
    local f = assert(io.open(path, "wb"))
    f:close()
    os.execute("chmod 600 " .. shell_quote(path))
    write(path, u .. "\n")
  end

  -- Runs one verb with one tool on the database it points at; returns
  -- ok (exit status 0), the output.
  local function run(tool, args)
    local quoted = {}
    for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
    local cmd
    if tool == "alembic" then
      cmd = ("cd %s && %s -m alembic -c alembic.ini %s"):format(shell_quote(tmp), PYTHON,
        table.concat(quoted, " "))
    else
      cmd = ("%s %s -d %s %s"):format(lua, shell_quote(root .. "/bin/fsdb"), shell_quote(tmp .. "/fsdb"),
        table.concat(quoted, " "))
    end
    local out = tmp .. "/out"
    local r1, _, r3 = os.execute(cmd .. " > " .. shell_quote(out) .. " 2>&1")
    local ok = (r1 == true or r1 == 0) and (r3 == nil or r3 == 0)
    local text = read(out)
    assert.is_nil(text:find(db.password, 1, true), "password in output")
    return ok, text
  end

  -- The state of a database: sorted version rows and tables.
  local function state(name)
    local rows, tables = {}, {}
    local res = admin:execute("SELECT version_num FROM `" .. name .. "`.alembic_version ORDER BY version_num")
    for _, r in ipairs(res or {}) do rows[#rows + 1] = r.version_num end
    res = db.must(admin, "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? "
      .. "AND TABLE_NAME <> 'alembic_version' ORDER BY TABLE_NAME", name)
    for _, r in ipairs(res) do tables[#tables + 1] = r.t end
    return { rows = table.concat(rows, ","), tables = table.concat(tables, ",") }
  end

  setup(function()
    admin = db.engine({ pool_size = 1 })
    tmp = os.tmpname()
    os.remove(tmp)
    write_graph(tmp)
  end)

  teardown(function()
    for _, name in ipairs(made) do admin:execute("DROP DATABASE IF EXISTS `" .. name .. "`") end
    admin:dispose()
    os.execute("rm -rf " .. shell_quote(tmp))
  end)

  -- Runs a verb through both tools on the twins and compares.
  local twin_a, twin_f
  local function both(args, expect_ok)
    point("alembic", twin_a)
    point("fsdb", twin_f)
    local aok, aout = run("alembic", args)
    local fok, fout = run("fsdb", args)
    local verb = table.concat(args, " ")
    assert.are.equal(aok, fok, ("exit status differs on '%s'\nalembic:\n%s\nfsdb:\n%s"):format(verb, aout, fout))
    if expect_ok ~= nil then
      assert.are.equal(expect_ok, fok, ("'%s' %s\nalembic:\n%s\nfsdb:\n%s"):format(verb,
        expect_ok and "failed" or "succeeded", aout, fout))
    end
    local a, f = state(twin_a), state(twin_f)
    assert.are.same(a, f, ("state differs after '%s'\nalembic:\n%s\nfsdb:\n%s"):format(verb, aout, fout))
    return a
  end

  it("the same verbs leave the same version rows and tables", function()
    twin_a, twin_f = new_db("a"), new_db("f")
    -- one branch, step by step; labels walk their own branch
    assert.are.same({ rows = "ae1000000001", tables = "t_ae1000000001" }, both({ "upgrade", "ae1000000001" }, true))
    assert.are.equal("bb2000000001", both({ "upgrade", "side@+1" }, true).rows)
    assert.are.equal("ae1000000002,bb2000000001", both({ "upgrade", "main@+1" }, true).rows)
    both({ "upgrade", "head" }, false) -- two heads: Alembic's MultipleHeads
    -- depends_on: the dependency is an effective head, no row of its own
    assert.are.equal("bb2000000001,dd4000000001", both({ "upgrade", "lib@+1" }, true).rows)
    -- lib@base undoes lib only, never the branch lib depends on (issue #1)
    local s = both({ "downgrade", "lib@base" }, true)
    assert.are.equal("ae1000000002,bb2000000001", s.rows)
    assert.matches("t_ae1000000002", s.tables, 1, true)
    assert.are.equal("bb2000000001,dd4000000002", both({ "upgrade", "lib@head" }, true).rows)
    assert.are.equal("bb2000000001,dd4000000001", both({ "downgrade", "lib@-1" }, true).rows)
    both({ "upgrade", "lib@+5" }, false) -- walks off the branch
    -- heads: the merge and the rest of lib
    assert.are.equal("dd4000000002,ee5000000001", both({ "upgrade", "heads" }, true).rows)
    both({ "upgrade", "heads" }, true) -- nothing left to do
    assert.are.equal("cc3000000001,dd4000000002", both({ "downgrade", "ee5000000001-1" }, true).rows)
    both({ "downgrade", "-1" }, false) -- Ambiguous walk from a merge point
    -- a downgrade to one parent undoes only what builds on it
    assert.are.equal("bb2000000002,dd4000000002", both({ "downgrade", "bb2000000002" }, true).rows)
    assert.are.equal("bb2000000001,dd4000000002", both({ "downgrade", "side@-1" }, true).rows)
    -- side's base is ae1000000001: undoing it undoes everything on it,
    -- lib too (lib depends on ae1000000002)
    assert.are.same({ rows = "", tables = "" }, both({ "downgrade", "side@base" }, true))
    assert.are.equal("cc3000000001", both({ "upgrade", "ae1000000002+1" }, true).rows)
    assert.are.equal("ee5000000001", both({ "upgrade", "+1" }, true).rows)
    both({ "upgrade", "+1" }, false) -- past the head
    assert.are.equal("ae1000000002,bb2000000001", both({ "downgrade", "bb2000000001" }, true).rows)
    both({ "downgrade", "dd4000000001" }, false) -- not applied: not a valid target
    assert.are.equal("bb2000000001,dd4000000002", both({ "upgrade", "dd4000000002" }, true).rows)
    both({ "downgrade", "ae1000000001" }, true)
    assert.are.same({ rows = "ae1000000001", tables = "t_ae1000000001" }, state(twin_f))
    assert.are.same({ rows = "", tables = "" }, both({ "downgrade", "base" }, true))
    both({ "downgrade", "-1" }, false) -- nothing applied
    -- stamps write the version table only
    assert.are.same({ rows = "dd4000000002,ee5000000001", tables = "" }, both({ "stamp", "heads" }, true))
    assert.are.equal("ee5000000001", both({ "stamp", "lib@base" }, true).rows)
    assert.are.equal("dd4000000001", both({ "stamp", "--purge", "dd4000000001" }, true).rows)
    assert.are.equal("bb2000000001,dd4000000001", both({ "stamp", "bb2000000001" }, true).rows)
    assert.are.equal("ae1000000001", both({ "stamp", "ae1000000001" }, true).rows)
    assert.are.same({ rows = "", tables = "" }, both({ "stamp", "base" }, true))
  end)

  -- One tool takes the database to a point, the other carries on there,
  -- compared with a database the second tool did alone.
  local function hand_over(first, second, to, next_args)
    local shared, alone = new_db("h"), new_db("o")
    point(first, shared)
    assert.is_true((run(first, { "upgrade", to })))
    point(second, alone)
    assert.is_true((run(second, { "upgrade", to })))
    assert.are.same(state(alone), state(shared))
    for _, args in ipairs(next_args) do
      point(second, shared)
      local ok1, out1 = run(second, args)
      point(second, alone)
      local ok2, out2 = run(second, args)
      assert.is_true(ok1, out1)
      assert.is_true(ok2, out2)
      assert.are.same(state(alone), state(shared))
    end
    point(second, shared)
    local ok, out = run(second, { "current" })
    assert.is_true(ok, out)
    return state(shared)
  end

  it("fsdb -> Alembic: Alembic carries on from a database fsdb left at a head", function()
    local s = hand_over("fsdb", "alembic", "lib@head", { { "upgrade", "heads" }, { "downgrade", "lib@base" } })
    assert.are.equal("ee5000000001", s.rows)
  end)

  it("Alembic -> fsdb: fsdb carries on from a database Alembic left at a head", function()
    local s = hand_over("alembic", "fsdb", "lib@head", { { "upgrade", "heads" }, { "downgrade", "lib@base" } })
    assert.are.equal("ee5000000001", s.rows)
  end)
end)
