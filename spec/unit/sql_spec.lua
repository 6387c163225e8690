-- fsdb.sql: the statements behind the store helpers, exact text and
-- parameters for every builder, and the exact error for every misuse.
local fsdb = require("fsdb")
local sql = require("fsdb.sql")

local null = fsdb.null

-- Lua 5.4 `1.0 == 1` but the parameter types differ; compare exactly.
local function same_params(want, got)
  assert.are.equal(#want, #got, "parameter count")
  for i = 1, #want do
    assert.are.equal(want[i], got[i], "parameter " .. i)
    if math.type then
      assert.are.equal(math.type(want[i]), math.type(got[i]), "type of parameter " .. i)
    end
  end
end

-- The error text without the "file:line: " a raise at the caller adds.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

describe("fsdb.sql", function()
  it("is reachable as fsdb.sql", function()
    assert.are.equal(sql, fsdb.sql)
  end)

  describe("quote_ident", function()
    local cases = {
      { "products", "`products`" },
      { "store.products", "`store`.`products`" },
      { "p.price", "`p`.`price`" },
      { "order", "`order`" },
      { "we`ird", "`we``ird`" },
      { "``", "``````" },
      { "a b", "`a b`" },
      { "Ølstrup ☕", "`Ølstrup ☕`" },
      { "x'); DROP TABLE t; --", "`x'); DROP TABLE t; --`" },
      { "1", "`1`" },
    }
    for _, c in ipairs(cases) do
      it(("%q → %s"):format(c[1], c[2]), function()
        assert.are.equal(c[2], sql.quote_ident(c[1]))
      end)
    end

    local bad = {
      { 42, "fsdb: identifier must be a string, got number" },
      { nil, "fsdb: identifier must be a string, got nil" },
      { "", "fsdb: empty identifier in ''" },
      { "a..b", "fsdb: empty identifier in 'a..b'" },
      { ".a", "fsdb: empty identifier in '.a'" },
      { "a.", "fsdb: empty identifier in 'a.'" },
      { "a\0b", "fsdb: identifier contains a NUL byte" },
      -- The server refuses characters above U+FFFF in names; bytes that are
      -- not UTF-8 would be read differently by another charset.
      { "Ølstrup 🛋", "fsdb: an identifier must be well-formed UTF-8 without characters above U+FFFF" },
      { "a\255b", "fsdb: an identifier must be well-formed UTF-8 without characters above U+FFFF" },
    }
    for _, c in ipairs(bad) do
      it("raises for " .. ("%q"):format(tostring(c[1])), function()
        assert.are.equal(c[2], raised(sql.quote_ident, c[1]))
      end)
    end

    it("raises at the caller's line", function()
      local ok, err = pcall(function()
        local q = sql.quote_ident("")
        return q
      end)
      assert.is_false(ok)
      assert.matches("sql_spec%.lua:%d+: fsdb: empty identifier", err)
    end)
  end)

  describe("insert", function()
    local cases = {
      { "one column", { "t", { name = "x" } },
        "INSERT INTO `t` (`name`) VALUES (?)", { "x" } },
      { "columns sorted by name", { "products", { price = "12.50", name = "Sofa", stock = 3 } },
        "INSERT INTO `products` (`name`, `price`, `stock`) VALUES (?, ?, ?)", { "Sofa", "12.50", 3 } },
      { "NULL is a bound value", { "t", { a = null, b = false } },
        "INSERT INTO `t` (`a`, `b`) VALUES (?, ?)", { null, false } },
      { "qualified table, odd column names", { "store.t", { ["order"] = 1, ["we`ird"] = 2 } },
        "INSERT INTO `store`.`t` (`order`, `we``ird`) VALUES (?, ?)", { 1, 2 } },
      { "values never enter the text", { "t", { s = "x'); DROP TABLE t; --" } },
        "INSERT INTO `t` (`s`) VALUES (?)", { "x'); DROP TABLE t; --" } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local text, params = sql.insert(c[2][1], c[2][2])
        assert.are.equal(c[3], text)
        same_params(c[4], params)
      end)
    end

    local bad = {
      { { "t", {} }, "fsdb: insert needs at least one column value" },
      { { "t", nil }, "fsdb: insert values must be a table of column = value, got nil" },
      { { "t", "a = 1" }, "fsdb: insert values must be a table of column = value, got string" },
      { { "t", { 1, 2 } }, "fsdb: insert keys must be column names (strings), got number" },
      { { "", { a = 1 } }, "fsdb: empty identifier in ''" },
      { { 7, { a = 1 } }, "fsdb: identifier must be a string, got number" },
      { { "t", { ["a\0"] = 1 } }, "fsdb: identifier contains a NUL byte" },
    }
    for i, c in ipairs(bad) do
      it("raises #" .. i .. ": " .. c[2], function()
        assert.are.equal(c[2], raised(sql.insert, c[1][1], c[1][2]))
      end)
    end
  end)

  describe("update", function()
    local cases = {
      { "set and where", { "t", { stock = 2 }, { id = 7 } },
        "UPDATE `t` SET `stock` = ? WHERE `id` = ?", { 2, 7 } },
      { "sorted set and where columns", { "t", { b = 2, a = 1 }, { z = "z", y = "y" } },
        "UPDATE `t` SET `a` = ?, `b` = ? WHERE `y` = ? AND `z` = ?", { 1, 2, "y", "z" } },
      { "fsdb.all updates every row", { "t", { a = 1 }, fsdb.all },
        "UPDATE `t` SET `a` = ?", { 1 } },
      { "NULL in SET is bound, in WHERE is IS NULL", { "t", { note = null }, { deleted_at = null } },
        "UPDATE `t` SET `note` = ? WHERE `deleted_at` IS NULL", { null } },
      { "a list is IN", { "t", { a = 0 }, { id = { 3, 1, 2 } } },
        "UPDATE `t` SET `a` = ? WHERE `id` IN (?, ?, ?)", { 0, 3, 1, 2 } },
      { "an empty list matches nothing", { "t", { a = 0 }, { id = {} } },
        "UPDATE `t` SET `a` = ? WHERE 1 = 0", { 0 } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local text, params = sql.update(c[2][1], c[2][2], c[2][3])
        assert.are.equal(c[3], text)
        same_params(c[4], params)
      end)
    end

    local bad = {
      { { "t", { a = 1 }, nil }, "fsdb: update needs a where table; to update every row say so: where = fsdb.all" },
      { { "t", { a = 1 }, {} }, "fsdb: empty where table for update (a nil value, as in {id = nil}, "
          .. "leaves its key out); to update every row say so: where = fsdb.all" },
      { { "t", {}, { id = 1 } }, "fsdb: update needs at least one column value" },
      { { "t", nil, { id = 1 } }, "fsdb: update values must be a table of column = value, got nil" },
      { { "t", { a = 1 }, "id = 1" }, "fsdb: where must be a table of column = value (or fsdb.all), got string" },
      { { "t", { a = 1 }, { "id = 1 OR 1 = 1" } },
        "fsdb: where: list entries must be OR groups, each a non-empty list of where tables" },
      { { "t", { a = 1 }, { id = { 1, x = 2 } } },
        "fsdb: where value for 'id' must be a list (IN), an operator table or a value, got a table mixing both" },
    }
    for i, c in ipairs(bad) do
      it("raises #" .. i .. ": " .. c[2], function()
        assert.are.equal(c[2], raised(sql.update, c[1][1], c[1][2], c[1][3]))
      end)
    end
  end)

  describe("delete", function()
    local cases = {
      { "where", { "t", { id = 7 } }, "DELETE FROM `t` WHERE `id` = ?", { 7 } },
      { "fsdb.all deletes every row", { "t", fsdb.all }, "DELETE FROM `t`", {} },
      { "fsdb.sql.all is fsdb.all", { "t", sql.all }, "DELETE FROM `t`", {} },
      { "IN, IS NULL and = together, sorted", { "s.t", { c = null, b = { "x", "y" }, a = 1 } },
        "DELETE FROM `s`.`t` WHERE `a` = ? AND `b` IN (?, ?) AND `c` IS NULL", { 1, "x", "y" } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local text, params = sql.delete(c[2][1], c[2][2])
        assert.are.equal(c[3], text)
        same_params(c[4], params)
      end)
    end

    local bad = {
      { { "t", nil }, "fsdb: delete needs a where table; to delete every row say so: where = fsdb.all" },
      { { "t", {} }, "fsdb: empty where table for delete (a nil value, as in {id = nil}, "
          .. "leaves its key out); to delete every row say so: where = fsdb.all" },
      { { "t", { id = nil } }, "fsdb: empty where table for delete (a nil value, as in {id = nil}, "
          .. "leaves its key out); to delete every row say so: where = fsdb.all" },
      { { "t", 5 }, "fsdb: where must be a table of column = value (or fsdb.all), got number" },
      { { "t", true }, "fsdb: where must be a table of column = value (or fsdb.all), got boolean" },
      { { "a..b", fsdb.all }, "fsdb: empty identifier in 'a..b'" },
    }
    for i, c in ipairs(bad) do
      it("raises #" .. i .. ": " .. c[2], function()
        assert.are.equal(c[2], raised(sql.delete, c[1][1], c[1][2]))
      end)
    end
  end)

  describe("select", function()
    local cases = {
      { "everything", { "t" }, "SELECT * FROM `t`", {} },
      { "empty options", { "t", {} }, "SELECT * FROM `t`", {} },
      { "columns in the given order", { "t", { columns = { "name", "id", "p.price" } } },
        "SELECT `name`, `id`, `p`.`price` FROM `t`", {} },
      { "where", { "t", { where = { category_id = 2, active = true } } },
        "SELECT * FROM `t` WHERE `active` = ? AND `category_id` = ?", { true, 2 } },
      { "order_by a string", { "t", { order_by = "price" } },
        "SELECT * FROM `t` ORDER BY `price`", {} },
      { "order_by a list with directions", { "t", { order_by = { "price desc", "t.name ASC", "id" } } },
        "SELECT * FROM `t` ORDER BY `price` DESC, `t`.`name` ASC, `id`", {} },
      { "limit and offset are bound", { "t", { limit = 10, offset = 20 } },
        "SELECT * FROM `t` LIMIT ? OFFSET ?", { 10, 20 } },
      { "limit given as a float becomes an integer", { "t", { limit = 5.0, offset = 0.0 } },
        "SELECT * FROM `t` LIMIT ? OFFSET ?", { 5, 0 } },
      { "for_update", { "t", { where = { id = 1 }, for_update = true } },
        "SELECT * FROM `t` WHERE `id` = ? FOR UPDATE", { 1 } },
      { "for_update false", { "t", { for_update = false } }, "SELECT * FROM `t`", {} },
      { "all together", { "store.products", { columns = { "id", "name" },
          where = { category_id = { 1, 2 }, discontinued_at = null }, order_by = { "name" },
          limit = 3, offset = 1, for_update = true } },
        "SELECT `id`, `name` FROM `store`.`products` WHERE `category_id` IN (?, ?)"
          .. " AND `discontinued_at` IS NULL ORDER BY `name` LIMIT ? OFFSET ? FOR UPDATE",
        { 1, 2, 3, 1 } },
      { "an empty IN list matches nothing", { "t", { where = { id = {} } } },
        "SELECT * FROM `t` WHERE 1 = 0", {} },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local text, params = sql.select(c[2][1], c[2][2])
        assert.are.equal(c[3], text)
        same_params(c[4], params)
      end)
    end

    it("gives the same text for the same shape, whatever the values", function()
      local a = sql.select("t", { where = { x = 1, y = "a" }, limit = 1 })
      local b = sql.select("t", { where = { y = "b", x = 2 }, limit = 99 })
      assert.are.equal(a, b)
    end)

    local bad = {
      { { "t", "id = 1" }, "fsdb: select options must be a table, got string" },
      { { "t", { wehre = {} } },
        "fsdb: unknown select option 'wehre' (known: columns, for_update, limit, offset, order_by, where)" },
      { { "t", { columns = {} } }, "fsdb: columns must be a non-empty list of column names" },
      { { "t", { columns = "id" } }, "fsdb: columns must be a non-empty list of column names" },
      { { "t", { columns = { "id", 2 } } }, "fsdb: identifier must be a string, got number" },
      { { "t", { order_by = "price; DROP TABLE t" } },
        "fsdb: bad order_by entry 'price; DROP TABLE t' (expected a column name, optionally followed by ASC or DESC)" },
      { { "t", { order_by = "RAND()" } },
        "fsdb: bad order_by entry 'RAND()' (expected a column name, optionally followed by ASC or DESC)" },
      { { "t", { order_by = "price DESCENDING" } },
        "fsdb: bad order_by entry 'price DESCENDING' (expected a column name, optionally followed by ASC or DESC)" },
      { { "t", { order_by = "price DESC, id" } },
        "fsdb: bad order_by entry 'price DESC, id' (expected a column name, optionally followed by ASC or DESC)" },
      { { "t", { order_by = "`x`" } },
        "fsdb: bad order_by entry '`x`' (expected a column name, optionally followed by ASC or DESC)" },
      { { "t", { order_by = "" } },
        "fsdb: bad order_by entry '' (expected a column name, optionally followed by ASC or DESC)" },
      { { "t", { order_by = { 1 } } }, "fsdb: order_by entries must be strings, got number" },
      { { "t", { order_by = {} } }, "fsdb: order_by must be a column name or a non-empty list of them" },
      { { "t", { order_by = "a..b" } }, "fsdb: empty identifier in 'a..b'" },
      { { "t", { limit = 0 } }, "fsdb: limit must be a whole number >= 1, got 0" },
      { { "t", { limit = -1 } }, "fsdb: limit must be a whole number >= 1, got -1" },
      { { "t", { limit = 1.5 } }, "fsdb: limit must be a whole number >= 1, got 1.5" },
      { { "t", { limit = "10" } }, "fsdb: limit must be a whole number >= 1, got 10" },
      { { "t", { limit = math.huge } }, "fsdb: limit must be a whole number >= 1, got " .. tostring(math.huge) },
      { { "t", { limit = 1, offset = -1 } }, "fsdb: offset must be a whole number >= 0, got -1" },
      { { "t", { limit = 1, offset = 0.5 } }, "fsdb: offset must be a whole number >= 0, got 0.5" },
      { { "t", { offset = 10 } }, "fsdb: offset needs a limit" },
      { { "t", { for_update = "yes" } }, "fsdb: for_update must be a boolean, got string" },
      { { "t", { where = { [1] = "1 = 1" } } },
        "fsdb: where: list entries must be OR groups, each a non-empty list of where tables" },
      { { "t", { where = {} } }, "fsdb: empty where table for select (a nil value, as in {id = nil}, "
          .. "leaves its key out); to select every row leave where out or pass where = fsdb.all" },
      { { "t", { where = { [true] = 1 } } }, "fsdb: where keys must be column names (strings), got boolean" },
    }
    for i, c in ipairs(bad) do
      it("raises #" .. i .. ": " .. c[2], function()
        assert.are.equal(c[2], raised(sql.select, c[1][1], c[1][2]))
      end)
    end
  end)

  describe("where", function()
    local function where(w) return sql.select("t", { where = w }) end
    local a, b = sql.any, fsdb.null
    local cases = {
      { "= for a value", { id = 7 }, "`id` = ?", { 7 } },
      { "fsdb.null is IS NULL", { d = null }, "`d` IS NULL", {} },
      { "eq = fsdb.null is IS NULL", { d = { eq = null } }, "`d` IS NULL", {} },
      { "ne = fsdb.null is IS NOT NULL", { d = { ne = null } }, "`d` IS NOT NULL", {} },
      { "a list is IN", { id = { 3, 1 } }, "`id` IN (?, ?)", { 3, 1 } },
      { "in spelt out", { s = { ["in"] = { ">", "<" } } }, "`s` IN (?, ?)", { ">", "<" } },
      { "an empty in matches nothing", { s = { ["in"] = {} } }, "1 = 0", {} },
      { "not_in", { id = { not_in = { 1, 2 } } }, "`id` NOT IN (?, ?)", { 1, 2 } },
      { "comparisons", { p = { eq = 1 }, q = { ne = 2 }, r = { lt = 3 }, s = { le = 4 }, u = { gt = 5 }, v = { ge = 6 } },
        "`p` = ? AND `q` <> ? AND `r` < ? AND `s` <= ? AND `u` > ? AND `v` >= ?", { 1, 2, 3, 4, 5, 6 } },
      { "a range on one column, operators sorted", { price = { lt = 100, ge = 10 } },
        "`price` >= ? AND `price` < ?", { 10, 100 } },
      { "like and not_like", { name = { like = "Kan%", not_like = "%XL" } },
        "`name` LIKE ? AND `name` NOT LIKE ?", { "Kan%", "%XL" } },
      { "between and not_between", { p = { between = { 1, 9 } }, q = { not_between = { "a", "m" } } },
        "`p` BETWEEN ? AND ? AND `q` NOT BETWEEN ? AND ?", { 1, 9, "a", "m" } },
      { "an OR group", { a(a and { status = "new" }, { total = { gt = 100 } }) },
        "(`status` = ? OR `total` > ?)", { "new", 100 } },
      { "an OR group written as a list", { { { status = "new" }, { status = "paid" } } },
        "(`status` = ? OR `status` = ?)", { "new", "paid" } },
      { "columns first, then OR groups in order, ANDed",
        { customer_id = 1, a({ x = 1 }, { y = 2, z = b }), a({ p = { lt = 0 } }, { q = { like = "a%" } }) },
        "`customer_id` = ? AND (`x` = ? OR (`y` = ? AND `z` IS NULL)) AND (`p` < ? OR `q` LIKE ?)",
        { 1, 1, 2, 0, "a%" } },
      { "a one-entry OR group is its condition", { a({ x = 1, y = 2 }) }, "(`x` = ? AND `y` = ?)", { 1, 2 } },
      { "nested OR groups", { a({ x = 1 }, { a({ y = 2 }, { z = 3 }) }) },
        "(`x` = ? OR (`y` = ? OR `z` = ?))", { 1, 2, 3 } },
      { "values never enter the text", { name = { like = "x' OR 1=1 --" } }, "`name` LIKE ?", { "x' OR 1=1 --" } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local text, params = where(c[2])
        assert.are.equal("SELECT * FROM `t` WHERE " .. c[3], text)
        same_params(c[4], params)
      end)
    end

    local bad = {
      { { price = { ">", 5 } }, "fsdb: where value for 'price' is a list starting with '>': write the comparison "
          .. "as {price = {gt = value}} (or {price = {[\"in\"] = list}} for an IN list that holds it)" },
      { { name = { "LIKE", "K%" } }, "fsdb: where value for 'name' is a list starting with 'LIKE': write the "
          .. "comparison as {name = {like = value}} (or {name = {[\"in\"] = list}} for an IN list that holds it)" },
      { { d = { "IS NOT", null } }, "fsdb: where value for 'd' is a list starting with 'IS NOT': write the "
          .. "comparison as {d = {ne = value}} (or {d = {[\"in\"] = list}} for an IN list that holds it)" },
      { { p = { gte = 5 } }, "fsdb: where: unknown operator 'gte' for 'p' (known: between, eq, ge, gt, in, le, "
          .. "like, lt, ne, not_between, not_in, not_like)" },
      { { p = { gt = null } }, "fsdb: where: gt for 'p' cannot be fsdb.null (nothing compares equal to NULL); "
          .. "use {p = fsdb.null} for IS NULL or {p = {ne = fsdb.null}} for IS NOT NULL" },
      { { p = { 1, null } }, "fsdb: where: an IN value for 'p' cannot be fsdb.null (nothing compares equal to "
          .. "NULL); use {p = fsdb.null} for IS NULL or {p = {ne = fsdb.null}} for IS NOT NULL" },
      { { p = { gt = 0 / 0 } }, "fsdb: where: gt for 'p' is NaN, which matches no row" },
      { { p = 0 / 0 }, "fsdb: where: the value for 'p' is NaN, which matches no row" },
      { { p = print }, "fsdb: where: the value for 'p' must be a value (string, number, boolean), got function" },
      { { p = { gt = {} } }, "fsdb: where: gt for 'p' must be a value (string, number, boolean), got table" },
      { { p = { like = 5 } }, "fsdb: where: like for 'p' must be a string pattern, got number" },
      { { p = { not_in = {} } }, "fsdb: where: not_in for 'p' is an empty list, which would match every row; "
          .. "use where = fsdb.all for every row" },
      { { p = { not_in = 5 } }, "fsdb: where: not_in for 'p' must be a list of values, got number" },
      { { p = { between = { 1 } } }, "fsdb: where: between for 'p' must be a list of two values {low, high}" },
      { { p = { between = { 1, 2, 3 } } }, "fsdb: where: between for 'p' must be a list of two values {low, high}" },
      { { p = { between = { 1, null } } }, "fsdb: where: between for 'p' cannot be fsdb.null (nothing compares "
          .. "equal to NULL); use {p = fsdb.null} for IS NULL or {p = {ne = fsdb.null}} for IS NOT NULL" },
      { { p = { gt = 1, 2 } }, "fsdb: where value for 'p' must be a list (IN), an operator table or a value, "
          .. "got a table mixing both" },
      { { p = fsdb.all }, "fsdb: where value for 'p' cannot be fsdb.all (it stands for the whole where)" },
      { { {} }, "fsdb: where: list entries must be OR groups, each a non-empty list of where tables" },
      { { { {} } }, "fsdb: where: OR group entry 1 is empty, which would match every row (a nil value leaves its key out)" },
      { { { { x = 1 }, { x = nil } } },
        "fsdb: where: OR group entry 2 is empty, which would match every row (a nil value leaves its key out)" },
      { { { "x = 1" } }, "fsdb: where: OR group entry 1 must be a where table, got string" },
      { { [1] = { { x = 1 } }, [3] = { { y = 1 } } }, "fsdb: where: list entries (OR groups) must be a sequence 1..n" },
    }
    for i, c in ipairs(bad) do
      it("raises #" .. i .. ": " .. c[2], function()
        assert.are.equal(c[2], raised(sql.select, "t", { where = c[1] }))
      end)
    end

    it("a nil in an update or delete where never widens it", function()
      local loan_id = nil
      assert.matches("empty where table for delete", raised(sql.delete, "loans", { id = loan_id }))
      assert.matches("empty where table for update", raised(sql.update, "loans", { a = 1 }, { id = loan_id }))
      assert.matches("OR group entry 1 is empty", raised(sql.delete, "loans", { sql.any({ id = loan_id }) }))
    end)

    it("fsdb.all is one read-only value", function()
      assert.are.equal(fsdb.all, sql.all)
      assert.are.equal("fsdb.all", tostring(fsdb.all))
      assert.has_error(function() fsdb.all.x = 1 end)
    end)

    it("any needs where tables", function()
      assert.matches("any needs one or more where tables", raised(sql.any))
      assert.matches("any needs one or more where tables", raised(sql.any, { x = 1 }, nil))
      assert.matches("any needs one or more where tables", raised(sql.any, nil, { x = 1 }))
    end)
  end)

  it("raise at the caller's line; build.* raise without a position", function()
    local calls = {
      function() local t = sql.insert("t", {}) return t end,
      function() local t = sql.update("t", { a = 1 }) return t end,
      function() local t = sql.delete("", fsdb.all) return t end,
      function() local t = sql.select("t", { limit = 0 }) return t end,
    }
    for _, call in ipairs(calls) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("^[^\n]-sql_spec%.lua:%d+: fsdb: ", err)
    end
    local ok, err = pcall(sql.build.insert, "t", {})
    assert.is_false(ok)
    assert.are.equal("fsdb: insert needs at least one column value", err)
    local text, params = sql.build.delete("t", { id = 1 })
    assert.are.equal("DELETE FROM `t` WHERE `id` = ?", text)
    same_params({ 1 }, params)
  end)
end)
