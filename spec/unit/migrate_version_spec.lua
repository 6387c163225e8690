-- The version-table object (fsdb.migrate.version) with a statement runner
-- that records what it is given: which statements a revision's write and
-- a stamp send, in which order, and what happens when one fails — above
-- all that a stamp whose START TRANSACTION failed writes nothing (it used
-- to carry on and write outside any transaction).
local version = require("fsdb.migrate.version")

-- A runner recording every statement; fail_on = SQL text that fails.
local function recorder(fail_on, affected)
  local log = {}
  local function exec(sql, params)
    log[#log + 1] = params and (sql .. " <- " .. table.concat(params, ",")) or sql
    if sql == fail_on then return nil, "Lost connection to server during query", 2013, "HY000" end
    return { affected_rows = affected or 1 }
  end
  return exec, log
end

describe("fsdb.migrate.version", function()
  local vt = version.new("alembic_version")

  it("owns Alembic's table and statements", function()
    assert.are.equal("CREATE TABLE IF NOT EXISTS `alembic_version` (version_num VARCHAR(32) NOT NULL, "
      .. "CONSTRAINT `alembic_version_pkc` PRIMARY KEY (version_num))", vt.sql.create)
    assert.are.equal("`we``ird`", version.new("we`ird").sql.select:match("FROM (.*)$"))
  end)

  it("writes a step as an UPDATE, a new branch as an INSERT, a merge as DELETE + UPDATE", function()
    local exec, log = recorder()
    assert.is_true(vt:write(exec, { "a1" }, { "a2" }))
    assert.is_true(vt:write(exec, { "a2" }, { "a2", "b1" }))
    assert.is_true(vt:write(exec, { "a2", "b1" }, { "m1" }))
    assert.are.same({
      "UPDATE `alembic_version` SET version_num = ? WHERE version_num = ? <- a2,a1",
      "INSERT INTO `alembic_version` (version_num) VALUES (?) <- b1",
      "DELETE FROM `alembic_version` WHERE version_num = ? <- b1",
      "UPDATE `alembic_version` SET version_num = ? WHERE version_num = ? <- m1,a2",
    }, log)
  end)

  it("online, an UPDATE that matched no row is Alembic's error", function()
    local exec = recorder(nil, 0)
    local ok, f = vt:write(exec, { "a1" }, { "a2" }, { online = true })
    assert.is_nil(ok)
    assert.matches("Online migration expected to match one row when updating 'a1' to 'a2' in "
      .. "'alembic_version'; 0 found", f.err, 1, true)
  end)

  it("a stamp whose START TRANSACTION fails writes nothing and returns the error", function()
    local exec, log = recorder("START TRANSACTION")
    local ok, f = vt:stamp(exec, { "a1" }, { "a2" }, { online = true })
    assert.is_nil(ok)
    assert.are.equal("START TRANSACTION", f.sql)
    assert.are.equal(2013, f.errno)
    assert.are.same({ "START TRANSACTION" }, log)
  end)

  it("a stamp whose write fails rolls back; one that works commits", function()
    local exec, log = recorder("DELETE FROM `alembic_version`")
    local ok, f = vt:stamp(exec, { "a1" }, { "b1" }, { purge = true })
    assert.is_nil(ok)
    assert.are.equal("DELETE FROM `alembic_version`", f.sql)
    assert.are.same({ "START TRANSACTION", "DELETE FROM `alembic_version`", "ROLLBACK" }, log)
    exec, log = recorder()
    assert.is_true(vt:stamp(exec, {}, { "a1" }))
    assert.are.same({ "START TRANSACTION", "INSERT INTO `alembic_version` (version_num) VALUES (?) <- a1",
                      "COMMIT" }, log)
  end)
end)
