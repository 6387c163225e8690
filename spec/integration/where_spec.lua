-- Store helpers' where tables against the server: every operator selects
-- the rows it documents, and a nil or empty where never widens a write.
local fsdb = require("fsdb")
local db = require("helpers.db")

local null, any = fsdb.null, fsdb.sql.any

local function ids(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.id end
  return out
end

-- The error text without the "file:line: " a raise at the caller adds.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

describe("#mariadb store helpers' where", function()
  local engine, t, s

  local function count()
    return #db.must(engine, "SELECT id FROM " .. t)
  end

  setup(function()
    engine = db.engine()
    t = db.unique("where")
    db.must(engine, "CREATE TABLE " .. t .. " (id INT PRIMARY KEY, name VARCHAR(40), "
      .. "price DECIMAL(10,2), note VARCHAR(40) NULL) DEFAULT CHARSET=utf8mb4")
  end)

  teardown(function()
    db.must(engine, "DROP TABLE IF EXISTS " .. t)
    engine:dispose()
  end)

  before_each(function()
    db.must(engine, "DELETE FROM " .. t)
    db.must(engine, "INSERT INTO " .. t .. " VALUES (1, 'Sofa', 899.00, NULL), (2, 'Chair', 49.50, 'sale'), "
      .. "(3, 'Table', 250.00, NULL), (4, 'Lamp > 5', 5.00, 'x'), (5, 'Kanapé', 1299.00, 'sale')")
    s = fsdb.session.new(engine)
  end)

  after_each(function()
    s:close()
  end)

  local cases = {
    { "=", { name = "Chair" }, { 2 } },
    { "IS NULL", { note = null }, { 1, 3 } },
    { "IS NOT NULL", { note = { ne = null } }, { 2, 4, 5 } },
    { "IN", { id = { 5, 1, 9 } }, { 1, 5 } },
    { "empty IN", { id = {} }, {} },
    { "NOT IN", { id = { not_in = { 1, 2 } } }, { 3, 4, 5 } },
    { "> and <= on one column", { price = { gt = 49.5, le = 899 } }, { 1, 3 } },
    { ">= and <", { price = { ge = 49.5, lt = 250 } }, { 2 } },
    { "<> (NULLs excluded, as in SQL)", { note = { ne = "sale" } }, { 4 } },
    { "LIKE", { name = { like = "%a%" } }, { 1, 2, 3, 4, 5 } },
    { "LIKE with a prefix", { name = { like = "Ka%" } }, { 5 } },
    { "NOT LIKE", { name = { not_like = "%a%" } }, {} },
    { "BETWEEN (inclusive)", { price = { between = { "49.50", "250.00" } } }, { 2, 3 } },
    { "NOT BETWEEN", { price = { not_between = { 10, 1000 } } }, { 4, 5 } },
    { "an OR group", { any({ id = 1 }, { note = "x" }) }, { 1, 4 } },
    { "AND with an OR group", { note = null, any({ id = 3 }, { price = { gt = 800 } }) }, { 1, 3 } },
    { "an operator word is a value when bound", { name = "Lamp > 5" }, { 4 } },
    { "a quote in a value is only a value", { name = "x' OR '1'='1" }, {} },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local rows = assert(s:select(t, { columns = { "id" }, where = c[2], order_by = "id" }))
      assert.are.same(c[3], ids(rows))
    end)
  end

  it("update with a where updates only those rows", function()
    assert.are.equal(2, s:update(t, { note = "cheap" }, { price = { lt = 100 } }))
    assert.is_true(s:commit())
    assert.are.equal(2, #db.must(engine, "SELECT id FROM " .. t .. " WHERE note = 'cheap'"))
  end)

  it("a nil variable in delete's where raises and deletes nothing", function()
    local loan_id = nil
    assert.are.equal("fsdb: empty where table for delete (a nil value, as in {id = nil}, leaves its key out); "
      .. "to delete every row say so: where = fsdb.all", raised(s.delete, s, t, { id = loan_id }))
    assert.matches("delete needs a where table", raised(s.delete, s, t))
    assert.matches("OR group entry 2 is empty", raised(s.delete, s, t, { any({ id = 1 }, { id = loan_id }) }))
    assert.is_true(s:commit())
    assert.are.equal(5, count())
  end)

  it("a nil variable in update's where raises and updates nothing", function()
    assert.matches("empty where table for update", raised(s.update, s, t, { note = "gone" }, { id = nil }))
    assert.matches("update needs a where table", raised(s.update, s, t, { note = "gone" }))
    assert.is_true(s:commit())
    assert.are.equal(0, #db.must(engine, "SELECT id FROM " .. t .. " WHERE note = 'gone'"))
  end)

  it("{price = {'>', 5}} raises instead of becoming IN ('>', 5)", function()
    assert.matches("write the comparison as {price = {gt = value}}",
      raised(s.delete, s, t, { price = { ">", 5 } }))
    assert.are.equal(5, count())
  end)

  it("an empty where in select raises; no where selects every row", function()
    assert.matches("empty where table for select", raised(s.select, s, t, { where = {} }))
    assert.are.equal(5, #assert(s:select(t)))
    assert.are.equal(5, #assert(s:select(t, { where = fsdb.all })))
  end)

  it("fsdb.all updates and deletes every row", function()
    assert.are.equal(5, s:update(t, { note = "all" }, fsdb.all))
    assert.are.equal(5, s:delete(t, fsdb.all))
    assert.is_true(s:commit())
    assert.are.equal(0, count())
  end)
end)
