-- fsdb.migrate.ops (Alembic's `op` for MySQL/MariaDB) and fsdb.schema: the
-- exact statement every op builds, its parameters, the exact error for
-- every misuse, and the contract with the `run` callback. No server: run
-- records what it is given.

local fsdb = require("fsdb")
local ops = require("fsdb.migrate.ops")
local schema = require("fsdb.schema")

local null = fsdb.null

local TAIL = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"

-- An op whose run records every call and succeeds.
local function recorder()
  local calls = {}
  local op = ops.new(function(...)
    calls[#calls + 1] = { n = select("#", ...), ... }
    return { affected_rows = 0 }
  end)
  return op, calls
end

-- The error text without the "file:line: " a raise at the caller adds.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end

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

describe("fsdb.migrate.ops", function()
  describe("statements", function()
    -- { what, function(op) … end, sql [, params] }
    local cases = {
      -- create_table
      { "create_table, one column", function(op) op.create_table("t", { { "id", "INT" } }) end,
        "CREATE TABLE `t` (`id` INT NULL)" .. TAIL },
      { "create_table, the products table", function(op)
          op.create_table("products", {
            { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
            { "name", "VARCHAR(200)", nullable = false },
            { "price", "DECIMAL(10,2)", nullable = false, default = "0.00" },
            { "status", "ENUM('in-stock','sold out')", default = "in-stock" },
            { "created_at", "TIMESTAMP", nullable = false, default = op.raw("CURRENT_TIMESTAMP"),
              on_update = op.raw("CURRENT_TIMESTAMP") },
            { "sku", "CHAR(12)", unique = true, comment = "stock keeping unit" },
          })
        end,
        "CREATE TABLE `products` (`id` INT UNSIGNED NOT NULL AUTO_INCREMENT, `name` VARCHAR(200) NOT NULL,"
          .. " `price` DECIMAL(10,2) NOT NULL DEFAULT '0.00', `status` ENUM('in-stock','sold out') NULL DEFAULT 'in-stock',"
          .. " `created_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,"
          .. " `sku` CHAR(12) NULL UNIQUE COMMENT 'stock keeping unit', PRIMARY KEY (`id`))" .. TAIL },
      { "create_table, defaults of every kind", function(op)
          op.create_table("d", {
            { "s", "VARCHAR(20)", default = "it's a \\ path" },
            { "i", "INT", default = 42 },
            { "n", "INT", default = -7 },
            { "f", "DOUBLE", default = 0.1 },
            { "w", "DOUBLE", default = 2.0 },
            { "t", "BOOLEAN", default = true },
            { "b", "BOOLEAN", default = false },
            { "z", "INT", default = null },
            { "r", "DATETIME(6)", default = op.raw("CURRENT_TIMESTAMP(6)"), on_update = "CURRENT_TIMESTAMP(6)" },
            { "e", "VARCHAR(5)", default = "" },
            { "x", "CHAR(36)", default = op.raw("(UUID())") },
          })
        end,
        "CREATE TABLE `d` (`s` VARCHAR(20) NULL DEFAULT _utf8mb4 X'697427732061205C2070617468', `i` INT NULL DEFAULT 42,"
          .. " `n` INT NULL DEFAULT -7, `f` DOUBLE NULL DEFAULT 0.1, `w` DOUBLE NULL DEFAULT 2,"
          .. " `t` BOOLEAN NULL DEFAULT 1, `b` BOOLEAN NULL DEFAULT 0, `z` INT NULL DEFAULT NULL,"
          .. " `r` DATETIME(6) NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),"
          .. " `e` VARCHAR(5) NULL DEFAULT '', `x` CHAR(36) NULL DEFAULT (UUID()))" .. TAIL },
      { "create_table, keys, indexes and foreign keys with default names", function(op)
          op.create_table("order_items", {
            { "order_id", "INT UNSIGNED" },
            { "product_id", "INT UNSIGNED" },
            { "qty", "SMALLINT", nullable = false, default = 1 },
            { "note", "VARCHAR(10)" },
          }, {
            primary_key = { "order_id", "product_id" },
            unique = { { columns = { "order_id", "note" } }, { name = "uq_note", columns = { "note" } } },
            indexes = { { columns = { "qty" } }, { name = "ix_u", columns = { "qty", "note" }, unique = true },
              { columns = { "note" }, unique = true } },
            foreign_keys = {
              { columns = { "order_id" }, ref_table = "orders", ref_columns = { "id" }, ondelete = "cascade" },
              { name = "fk_p", columns = { "product_id" }, ref_table = "products", ref_columns = { "id" },
                ondelete = "set_null", onupdate = "No Action" },
            },
          })
        end,
        "CREATE TABLE `order_items` (`order_id` INT UNSIGNED NOT NULL, `product_id` INT UNSIGNED NOT NULL,"
          .. " `qty` SMALLINT NOT NULL DEFAULT 1, `note` VARCHAR(10) NULL, PRIMARY KEY (`order_id`, `product_id`),"
          .. " UNIQUE KEY `uq_order_items_order_id_note` (`order_id`, `note`), UNIQUE KEY `uq_note` (`note`),"
          .. " KEY `ix_order_items_qty` (`qty`), UNIQUE KEY `ix_u` (`qty`, `note`), UNIQUE KEY `uq_order_items_note` (`note`),"
          .. " CONSTRAINT `fk_order_items_order_id_orders` FOREIGN KEY (`order_id`) REFERENCES `orders` (`id`) ON DELETE CASCADE,"
          .. " CONSTRAINT `fk_p` FOREIGN KEY (`product_id`) REFERENCES `products` (`id`) ON DELETE SET NULL ON UPDATE NO ACTION)"
          .. TAIL },
      { "create_table, table options", function(op)
          op.create_table("logs", { { "id", "BIGINT", primary_key = true } },
            { engine = "MyISAM", charset = "latin1", comment = "old 'logs'" })
        end,
        "CREATE TABLE `logs` (`id` BIGINT NOT NULL, PRIMARY KEY (`id`)) ENGINE=MyISAM DEFAULT CHARSET=latin1"
          .. " COMMENT='old ''logs'''" },
      { "create_table, charset and collation", function(op)
          op.create_table("c", { { "a", "INT" } }, { charset = "utf8mb4", collate = "utf8mb4_bin" })
        end,
        "CREATE TABLE `c` (`a` INT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" },
      { "create_table, backticks and odd names", function(op)
          op.create_table("we`ird", { { "a b", "INT" }, { "café Ω", "INT" } })
        end,
        "CREATE TABLE `we``ird` (`a b` INT NULL, `café Ω` INT NULL)" .. TAIL },
      { "create_table, a long default name is shortened with a hash", function(op)
          op.create_table("t", { { ("c"):rep(70), "INT" } }, { indexes = { { columns = { ("c"):rep(70) } } } })
        end,
        "CREATE TABLE `t` (`" .. ("c"):rep(70) .. "` INT NULL, KEY `ix_t_" .. ("c"):rep(50) .. "_"
          .. ops.default_name("ix", "t", { ("c"):rep(70) }):sub(-8) .. "` (`" .. ("c"):rep(70) .. "`))" .. TAIL },

      -- tables
      { "drop_table", function(op) op.drop_table("products") end, "DROP TABLE `products`" },
      { "rename_table", function(op) op.rename_table("old", "new") end, "RENAME TABLE `old` TO `new`" },

      -- columns
      { "add_column", function(op) op.add_column("products", { "sku", "VARCHAR(20)", nullable = false, default = "" }) end,
        "ALTER TABLE `products` ADD COLUMN `sku` VARCHAR(20) NOT NULL DEFAULT ''" },
      { "add_column, unique, comment", function(op)
          op.add_column("products", { "ean", "CHAR(13)", unique = true, comment = "barcode" })
        end,
        "ALTER TABLE `products` ADD COLUMN `ean` CHAR(13) NULL UNIQUE COMMENT 'barcode'" },
      { "add_column, primary key", function(op)
          op.add_column("t", { "id", "INT", primary_key = true, auto_increment = true })
        end,
        "ALTER TABLE `t` ADD COLUMN `id` INT NOT NULL AUTO_INCREMENT PRIMARY KEY" },
      { "drop_column", function(op) op.drop_column("products", "legacy") end,
        "ALTER TABLE `products` DROP COLUMN `legacy`" },

      -- alter_column
      { "alter_column, type", function(op)
          op.alter_column("products", "name", { type = "VARCHAR(300)", existing_nullable = false })
        end,
        "ALTER TABLE `products` MODIFY COLUMN `name` VARCHAR(300) NOT NULL" },
      { "alter_column, nullable restates the rest", function(op)
          op.alter_column("products", "price", { nullable = false, existing_type = "DECIMAL(10,2)",
            existing_default = "0.00", existing_comment = "in euros" })
        end,
        "ALTER TABLE `products` MODIFY COLUMN `price` DECIMAL(10,2) NOT NULL DEFAULT '0.00' COMMENT 'in euros'" },
      { "alter_column, existing_nullable unknown means NULL", function(op)
          op.alter_column("t", "c", { type = "BIGINT" })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `c` BIGINT NULL" },
      { "alter_column, type and default together", function(op)
          op.alter_column("t", "c", { type = "INT", default = 5, existing_nullable = false })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `c` INT NOT NULL DEFAULT 5" },
      { "alter_column, rename and change: CHANGE", function(op)
          op.alter_column("t", "old", { new_name = "new", type = "BIGINT", existing_nullable = false,
            existing_auto_increment = true })
        end,
        "ALTER TABLE `t` CHANGE COLUMN `old` `new` BIGINT NOT NULL AUTO_INCREMENT" },
      { "alter_column, rename alone: RENAME COLUMN", function(op)
          op.alter_column("t", "old", { new_name = "new" })
        end,
        "ALTER TABLE `t` RENAME COLUMN `old` TO `new`" },
      { "alter_column, rename alone keeps the column as it is, whatever existing_* say", function(op)
          op.alter_column("t", "old", { new_name = "new", existing_type = "INT", existing_nullable = false })
        end,
        "ALTER TABLE `t` RENAME COLUMN `old` TO `new`" },
      { "alter_column, default alone", function(op)
          op.alter_column("t", "c", { default = "it's", existing_type = "VARCHAR(10)" })
        end,
        "ALTER TABLE `t` ALTER COLUMN `c` SET DEFAULT 'it''s'" },
      { "alter_column, default NULL", function(op) op.alter_column("t", "c", { default = op.null }) end,
        "ALTER TABLE `t` ALTER COLUMN `c` SET DEFAULT NULL" },
      { "alter_column, expression default gets parentheses", function(op)
          op.alter_column("t", "c", { default = op.raw("CURRENT_TIMESTAMP") })
        end,
        "ALTER TABLE `t` ALTER COLUMN `c` SET DEFAULT (CURRENT_TIMESTAMP)" },
      { "alter_column, parenthesised expression default", function(op)
          op.alter_column("t", "c", { default = op.raw("(uuid())") })
        end,
        "ALTER TABLE `t` ALTER COLUMN `c` SET DEFAULT (uuid())" },
      { "alter_column, no default", function(op) op.alter_column("t", "c", { default = op.no_default }) end,
        "ALTER TABLE `t` ALTER COLUMN `c` DROP DEFAULT" },
      { "alter_column, drop the default inside MODIFY", function(op)
          op.alter_column("t", "c", { default = op.no_default, nullable = false, existing_type = "INT",
            existing_default = 3 })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `c` INT NOT NULL" },
      { "alter_column, comment", function(op)
          op.alter_column("t", "c", { comment = "new", existing_type = "INT", existing_nullable = true,
            existing_comment = "old" })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `c` INT NULL COMMENT 'new'" },
      { "alter_column, remove the comment", function(op)
          op.alter_column("t", "c", { comment = "", existing_type = "INT", existing_comment = "old" })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `c` INT NULL" },
      { "alter_column, on_update", function(op)
          op.alter_column("t", "ts", { on_update = op.raw("CURRENT_TIMESTAMP"), existing_type = "TIMESTAMP",
            existing_nullable = false, existing_default = op.raw("CURRENT_TIMESTAMP") })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `ts` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP" },
      { "alter_column, remove on_update", function(op)
          op.alter_column("t", "ts", { on_update = false, existing_type = "TIMESTAMP",
            existing_on_update = op.raw("CURRENT_TIMESTAMP") })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `ts` TIMESTAMP NULL" },
      { "alter_column, auto_increment", function(op)
          op.alter_column("t", "id", { auto_increment = true, existing_type = "INT", existing_nullable = false })
        end,
        "ALTER TABLE `t` MODIFY COLUMN `id` INT NOT NULL AUTO_INCREMENT" },

      -- indexes and constraints
      { "create_index", function(op) op.create_index("ix_name", "products", { "name" }) end,
        "CREATE INDEX `ix_name` ON `products` (`name`)" },
      { "create_index, unique, two columns", function(op)
          op.create_index("uq_a_b", "t", { "a", "b" }, { unique = true })
        end,
        "CREATE UNIQUE INDEX `uq_a_b` ON `t` (`a`, `b`)" },
      { "create_index, default name", function(op) op.create_index(nil, "t", { "a", "b" }) end,
        "CREATE INDEX `ix_t_a_b` ON `t` (`a`, `b`)" },
      { "drop_index", function(op) op.drop_index("ix_name", "products") end,
        "DROP INDEX `ix_name` ON `products`" },
      { "create_unique_constraint", function(op) op.create_unique_constraint("uq_sku", "products", { "sku" }) end,
        "ALTER TABLE `products` ADD CONSTRAINT `uq_sku` UNIQUE (`sku`)" },
      { "create_foreign_key", function(op)
          op.create_foreign_key("fk_cat", "products", "categories", { "category_id" }, { "id" })
        end,
        "ALTER TABLE `products` ADD CONSTRAINT `fk_cat` FOREIGN KEY (`category_id`) REFERENCES `categories` (`id`)" },
      { "create_foreign_key, rules", function(op)
          op.create_foreign_key("fk_cat", "products", "categories", { "a", "b" }, { "x", "y" },
            { ondelete = "CASCADE", onupdate = "restrict" })
        end,
        "ALTER TABLE `products` ADD CONSTRAINT `fk_cat` FOREIGN KEY (`a`, `b`) REFERENCES `categories` (`x`, `y`)"
          .. " ON DELETE CASCADE ON UPDATE RESTRICT" },
      { "create_foreign_key, default name", function(op)
          op.create_foreign_key(nil, "products", "categories", { "category_id" }, { "id" })
        end,
        "ALTER TABLE `products` ADD CONSTRAINT `fk_products_category_id_categories` FOREIGN KEY (`category_id`)"
          .. " REFERENCES `categories` (`id`)" },
      { "create_primary_key", function(op) op.create_primary_key("pk", "t", { "a", "b" }) end,
        "ALTER TABLE `t` ADD PRIMARY KEY (`a`, `b`)" },
      { "create_check_constraint", function(op) op.create_check_constraint("ck_qty", "t", "qty >= 0") end,
        "ALTER TABLE `t` ADD CONSTRAINT `ck_qty` CHECK (qty >= 0)" },
      { "drop_constraint, foreignkey", function(op) op.drop_constraint("fk_cat", "products", "foreignkey") end,
        "ALTER TABLE `products` DROP FOREIGN KEY `fk_cat`" },
      { "drop_constraint, unique", function(op) op.drop_constraint("uq_sku", "products", "unique") end,
        "ALTER TABLE `products` DROP INDEX `uq_sku`" },
      { "drop_constraint, primary", function(op) op.drop_constraint(nil, "products", "primary") end,
        "ALTER TABLE `products` DROP PRIMARY KEY" },
      { "drop_constraint, check", function(op) op.drop_constraint("ck_qty", "t", "check") end,
        "ALTER TABLE `t` DROP CONSTRAINT `ck_qty`" },

      -- data
      { "execute", function(op) op.execute("UPDATE products SET price = price * 2") end,
        "UPDATE products SET price = price * 2" },
      { "execute, positional parameters", function(op)
          op.execute("UPDATE products SET price = ? WHERE id = ?", { "9.99", 7 })
        end,
        "UPDATE products SET price = ? WHERE id = ?", { "9.99", 7 } },
      { "bulk_insert", function(op)
          op.bulk_insert("categories", {
            { name = "chairs", id = 1, parent_id = null },
            { name = "tables", id = 2, parent_id = 1 },
            { id = 3, parent_id = 1, name = "Kanapé 🛋" },
          })
        end,
        "INSERT INTO `categories` (`id`, `name`, `parent_id`) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)",
        { 1, "chairs", null, 2, "tables", 1, 3, "Kanapé 🛋", 1 } },
      { "bulk_insert, booleans and floats", function(op)
          op.bulk_insert("t", { { flag = true, x = 1.5 } })
        end,
        "INSERT INTO `t` (`flag`, `x`) VALUES (?, ?)", { true, 1.5 } },
    }

    for _, c in ipairs(cases) do
      it(c[1], function()
        local op, calls = recorder()
        c[2](op)
        assert.are.equal(1, #calls)
        assert.are.equal(c[3], calls[1][1])
        assert.are.same({ c[3] }, op.statements)
        if c[4] then
          assert.are.equal(2, calls[1].n)
          same_params(c[4], calls[1][2])
        else
          assert.are.equal(1, calls[1].n, "run gets no params argument for this op")
        end
      end)
    end

    it("execute passes named parameters through", function()
      local op, calls = recorder()
      local params = { price = "9.99", id = 7 }
      op.execute("UPDATE products SET price = :price WHERE id = :id", params)
      assert.are.equal(params, calls[1][2])
    end)

    it("bulk_insert of no rows runs nothing", function()
      local op, calls = recorder()
      assert.is_nil(op.bulk_insert("t", {}))
      assert.are.equal(0, #calls)
      assert.are.same({}, op.statements)
    end)

    it("bulk_insert splits at 65,535 parameters", function()
      local op, calls = recorder()
      local rows = {}
      for i = 1, 30000 do rows[i] = { a = i, b = "x", c = null } end
      op.bulk_insert("t", rows)
      assert.are.equal(2, #calls)
      assert.are.equal(21845 * 3, #calls[1][2])
      assert.are.equal((30000 - 21845) * 3, #calls[2][2])
      assert.are.equal(21846, calls[2][2][1])
      local head = "INSERT INTO `t` (`a`, `b`, `c`) VALUES (?, ?, ?), (?, ?, ?), "
      assert.are.equal(head, calls[2][1]:sub(1, #head))
      assert.are.equal(#head - 2 + (30000 - 21845 - 2) * 11, #calls[2][1])
    end)

    it("keeps every statement in op.statements, in order", function()
      local op = recorder()
      op.create_table("a", { { "id", "INT", primary_key = true } })
      op.add_column("a", { "x", "INT" })
      op.create_index("ix_x", "a", { "x" })
      op.bulk_insert("a", { { id = 1, x = 2 } })
      op.drop_table("a")
      assert.are.same({
        "CREATE TABLE `a` (`id` INT NOT NULL, PRIMARY KEY (`id`))" .. TAIL,
        "ALTER TABLE `a` ADD COLUMN `x` INT NULL",
        "CREATE INDEX `ix_x` ON `a` (`x`)",
        "INSERT INTO `a` (`id`, `x`) VALUES (?, ?)",
        "DROP TABLE `a`",
      }, op.statements)
    end)
  end)

  describe("misuse raises", function()
    local long = ("x"):rep(70)
    -- { function(op) … end, exact message }
    local cases = {
      { function(op) op.create_table("", { { "a", "INT" } }) end, "fsdb: create_table: table name must not be empty" },
      { function(op) op.create_table("a\0b", { { "a", "INT" } }) end, "fsdb: create_table: table name contains a NUL byte" },
      { function(op) op.create_table(42, { { "a", "INT" } }) end, "fsdb: create_table: table name must be a string, got number" },
      { function(op) op.create_table("t", {}) end, "fsdb: create_table: table 't': a table needs at least one column" },
      { function(op) op.create_table("t", "id INT") end,
        "fsdb: create_table: table 't': columns must be a list of column specs, got string" },
      { function(op) op.create_table("t", { { "a", "INT" }, engine = "InnoDB" }) end,
        "fsdb: create_table: table 't': columns must be a list of column specs; table options (engine) go in the third argument" },
      { function(op) op.create_table("t", { { "a", "INT", nulable = false } }) end,
        "fsdb: create_table: table 't': column 'a': unknown option 'nulable'" },
      { function(op) op.create_table("t", { { "a", "INT", "NOT NULL" } }) end,
        "fsdb: create_table: table 't': column 'a': unexpected element #3 (a column is {name, type, key = value, ...})" },
      { function(op) op.create_table("t", { { "a" } }) end,
        "fsdb: create_table: table 't': column 'a': the type (second element) is missing" },
      { function(op) op.create_table("t", { { "", "INT" } }) end,
        "fsdb: create_table: table 't': column name (the first element) must not be empty" },
      { function(op) op.create_table("t", { "a INT" }) end,
        "fsdb: create_table: table 't': a column must be a table {name, type, ...}, got string" },
      { function(op) op.create_table("t", { { "a", "INT; DROP TABLE x" } }) end,
        "fsdb: create_table: table 't': column 'a': bad type 'INT; DROP TABLE x' (expected a MySQL type such as"
          .. " INT UNSIGNED, VARCHAR(100), DECIMAL(10,2), ENUM('a','b'))" },
      { function(op) op.create_table("t", { { "a", "ENUM('a)" } }) end,
        "fsdb: create_table: table 't': column 'a': bad type 'ENUM(''a)' (expected a MySQL type such as"
          .. " INT UNSIGNED, VARCHAR(100), DECIMAL(10,2), ENUM('a','b'))" },
      { function(op) op.create_table("t", { { "a", "INT -- x" } }) end,
        "fsdb: create_table: table 't': column 'a': bad type 'INT -- x' (expected a MySQL type such as"
          .. " INT UNSIGNED, VARCHAR(100), DECIMAL(10,2), ENUM('a','b'))" },
      { function(op) op.create_table("t", { { "a", 5 } }) end,
        "fsdb: create_table: table 't': column 'a': type must be a string such as \"INT UNSIGNED\" or \"VARCHAR(100)\", got number" },
      { function(op) op.create_table("t", { { "a", "INT", nullable = "no" } }) end,
        "fsdb: create_table: table 't': column 'a': nullable must be a boolean, got string" },
      { function(op) op.create_table("t", { { "a", "INT", default = {} } }) end,
        "fsdb: create_table: table 't': column 'a': default must be a string, number, boolean, op.null or op.raw(...), got table" },
      { function(op) op.create_table("t", { { "a", "DOUBLE", default = 0 / 0 } }) end,
        "fsdb: create_table: table 't': column 'a': default " .. tostring(0 / 0) .. " cannot be stored in SQL" },
      { function(op) op.create_table("t", { { "a", "INT", primary_key = true, nullable = true } }) end,
        "fsdb: create_table: table 't': column 'a': a primary key column cannot be nullable" },
      { function(op) op.create_table("t", { { "a", "TIMESTAMP", on_update = "now() + 1" } }) end,
        "fsdb: create_table: table 't': column 'a': on_update must be op.raw(\"CURRENT_TIMESTAMP\") or similar, got 'now() + 1'" },
      { function(op) op.create_table("t", { { "a", "INT" }, { "a", "INT" } }) end,
        "fsdb: create_table: table 't': column 'a' is declared twice" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { engin = "InnoDB" }) end,
        "fsdb: create_table: table 't': unknown option 'engin'" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { bind = "auth" }) end,
        "fsdb: create_table: table 't': unknown option 'bind'" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { engine = "InnoDB; x" }) end,
        "fsdb: create_table: table 't': engine must be a word such as InnoDB or utf8mb4, got 'InnoDB; x'" },
      { function(op) op.create_table("t", { { "a", "INT", primary_key = true } }, { primary_key = { "a" } }) end,
        "fsdb: create_table: table 't': primary key given both as primary_key = {...} and on column 'a'" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { primary_key = { "b" } }) end,
        "fsdb: create_table: table 't': primary_key names column 'b', which the table does not have" },
      { function(op) op.create_table("t", { { "a", "INT", nullable = true } }, { primary_key = { "a" } }) end,
        "fsdb: create_table: table 't': column 'a': a primary key column cannot be nullable" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { indexes = { { columns = {} } } }) end,
        "fsdb: create_table: table 't': indexes[1]: columns must name at least one column" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { indexes = { { columns = { "b" } } } }) end,
        "fsdb: create_table: table 't': indexes[1]: columns names column 'b', which the table does not have" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { indexes = { { column = { "a" } } } }) end,
        "fsdb: create_table: table 't': indexes[1]: unknown key 'column'" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { indexes = { "a" } }) end,
        "fsdb: create_table: table 't': indexes[1] must be a table, got string" },
      { function(op) op.create_table("t", { { "a", "INT" } }, { indexes = { { columns = { "a" } }, { columns = { "a" } } } }) end,
        "fsdb: create_table: table 't': the name 'ix_t_a' is used twice (index)" },
      { function(op)
          op.create_table("t", { { "a", "INT" } }, { foreign_keys = { { columns = { "a" }, ref_table = "r", ref_columns = { "x", "y" } } } })
        end,
        "fsdb: create_table: table 't': foreign_keys[1]: columns has 1 names but ref_columns has 2" },
      { function(op)
          op.create_table("t", { { "a", "INT" } }, { foreign_keys = { { columns = { "a" }, ref_columns = { "x" } } } })
        end,
        "fsdb: create_table: table 't': foreign_keys[1]: ref_table must be a string, got nil" },
      { function(op)
          op.create_table("t", { { "a", "INT" } },
            { foreign_keys = { { columns = { "a" }, ref_table = "r", ref_columns = { "x" }, ondelete = "DROP" } } })
        end,
        "fsdb: create_table: table 't': foreign_keys[1]: ondelete must be CASCADE, SET NULL, RESTRICT, NO ACTION or SET DEFAULT, got 'DROP'" },
      { function(op) op.drop_table(nil) end, "fsdb: drop_table: table name must be a string, got nil" },
      { function(op) op.rename_table("a", "") end, "fsdb: rename_table: new table name must not be empty" },
      { function(op) op.add_column("t", { "c", "INT", after = "b" }) end,
        "fsdb: add_column: column 'c': unknown option 'after'" },
      { function(op) op.drop_column("t", "") end, "fsdb: drop_column: column name must not be empty" },
      { function(op) op.alter_column("t", "c", {}) end,
        "fsdb: alter_column: column 'c' of table 't': nothing to change (give type, nullable, default, new_name, comment,"
          .. " on_update or auto_increment)" },
      { function(op) op.alter_column("t", "c", { nullable = false }) end,
        "fsdb: alter_column: column 'c' of table 't': changing nullable needs type= or existing_type= (MySQL's MODIFY"
          .. " restates the whole column; give existing_nullable, existing_default and existing_comment too, or they are reset)" },
      { function(op) op.alter_column("t", "c", { comment = "x", new_name = "d" }) end,
        "fsdb: alter_column: column 'c' of table 't': changing comment, new_name needs type= or existing_type= (MySQL's MODIFY"
          .. " restates the whole column; give existing_nullable, existing_default and existing_comment too, or they are reset)" },
      { function(op) op.alter_column("t", "c", { server_default = "x" }) end,
        "fsdb: alter_column: unknown option 'server_default'" },
      { function(op) op.alter_column("t", "c", "INT") end,
        "fsdb: alter_column: the third argument must be a table of changes, got string" },
      { function(op) op.alter_column("t", "c", { type = "INT)" .. ";" }) end,
        "fsdb: alter_column: column 'c' of table 't': bad type 'INT);' (expected a MySQL type such as INT UNSIGNED,"
          .. " VARCHAR(100), DECIMAL(10,2), ENUM('a','b'))" },
      { function(op) op.create_index("ix", "t", {}) end, "fsdb: create_index: columns must name at least one column" },
      { function(op) op.create_index("ix", "t", "a") end,
        "fsdb: create_index: columns must be a list of column names, got string" },
      { function(op) op.create_index("ix", "t", { "a" }, { uniq = true }) end, "fsdb: create_index: unknown option 'uniq'" },
      { function(op) op.drop_index("ix", nil) end, "fsdb: drop_index: table name must be a string, got nil" },
      { function(op) op.create_unique_constraint("uq", "t", { "a", "" }) end,
        "fsdb: create_unique_constraint: columns[2] must not be empty" },
      { function(op) op.create_foreign_key("fk", "t", "r", { "a" }, { "x", "y" }) end,
        "fsdb: create_foreign_key: 1 local columns but 2 remote columns" },
      { function(op) op.create_foreign_key("fk", "t", "r", { "a" }, { "x" }, { on_delete = "CASCADE" }) end,
        "fsdb: create_foreign_key: unknown option 'on_delete'" },
      { function(op) op.drop_constraint("fk", "t") end,
        "fsdb: drop_constraint: MySQL needs the constraint type: \"foreignkey\", \"unique\", \"primary\" or \"check\"" },
      { function(op) op.drop_constraint("fk", "t", "foreign") end,
        "fsdb: drop_constraint: unknown constraint type 'foreign' (expected \"foreignkey\", \"unique\", \"primary\" or \"check\")" },
      { function(op) op.drop_constraint(nil, "t", "unique") end,
        "fsdb: drop_constraint: constraint name must be a string, got nil" },
      { function(op) op.execute("  ") end, "fsdb: execute: sql must be a non-empty string, got an empty string" },
      { function(op) op.execute("SELECT ?", 1) end,
        "fsdb: execute: params must be a table (array for ?, keys for :name), got number" },
      { function(op) op.bulk_insert("t", { { a = 1 }, { b = 2 } }) end,
        "fsdb: bulk_insert: row 1 has no value for column 'b' (use op.null for NULL)" },
      { function(op) op.bulk_insert("t", { { a = {} } }) end,
        "fsdb: bulk_insert: row 1, column 'a': a value must be a string, number, boolean or op.null, got table" },
      { function(op) op.bulk_insert("t", { "a" }) end,
        "fsdb: bulk_insert: row 1 must be a table keyed by column name, got string" },
      { function(op) op.bulk_insert("t", { { [1] = "a" } }) end,
        "fsdb: bulk_insert: row 1: keys must be column names, got number" },
      { function(op) op.bulk_insert("t", { a = 1 }) end,
        "fsdb: bulk_insert: rows must be a list of tables keyed by column name" },
      { function(op) op.raw("") end, "fsdb: raw: expected a non-empty string of SQL, got an empty string" },
      { function(op) op.create_table("t", { { long, "INT" } }, { foreign_keys = { { columns = { long },
          ref_table = "r", ref_columns = { "id" }, onupdate = 3 } } }) end,
        "fsdb: create_table: table 't': foreign_keys[1]: onupdate must be CASCADE, SET NULL, RESTRICT, NO ACTION or SET DEFAULT, got number" },
    }
    for i, c in ipairs(cases) do
      it(("#%d: %s"):format(i, c[2]), function()
        local op, calls = recorder()
        assert.are.equal(c[2], raised(c[1], op))
        assert.are.equal(0, #calls, "nothing runs after a misuse")
        assert.are.same({}, op.statements)
      end)
    end

    it("points at the line that called the op", function()
      local op = recorder()
      local ok, err = pcall(function() op.drop_table("") end)
      assert.is_false(ok)
      assert.is_truthy(err:find("migrate_ops_spec.lua:%d+: fsdb: drop_table: table name must not be empty$"), err)
    end)

    it("ops.new wants a function", function()
      assert.are.equal("fsdb: ops.new: run must be a function(sql, params), got nil", raised(ops.new))
      assert.are.equal("fsdb: ops.new: unknown option 'dry'", raised(ops.new, function() end, { dry = true }))
    end)
  end)

  describe("the run contract", function()
    it("returns what run returned", function()
      local res = { affected_rows = 3 }
      local op = ops.new(function() return res end)
      assert.are.equal(res, op.execute("DELETE FROM t"))
    end)

    it("a failed statement raises with the op, the error, the codes and the SQL", function()
      local op = ops.new(function() return nil, "fsdb: Table 'products' already exists", 1050, "42S01" end)
      local ok, err = pcall(op.create_table, "products", { { "id", "INT" } })
      assert.is_false(ok)
      local sql = "CREATE TABLE `products` (`id` INT NULL)" .. TAIL
      assert.are.equal("fsdb: create_table failed: Table 'products' already exists [errno 1050, sqlstate 42S01] in: "
        .. sql, err)
      assert.are.same({ op = "create_table", sql = sql, err = "fsdb: Table 'products' already exists",
        errno = 1050, sqlstate = "42S01" }, op.last_failure)
      assert.are.same({ sql }, op.statements)
    end)

    it("the failure keeps the parameters of a bulk insert", function()
      local op = ops.new(function() return nil, "fsdb: Duplicate entry '1' for key 'PRIMARY'", 1062, "23000" end)
      local ok, err = pcall(op.bulk_insert, "t", { { id = 1 } })
      assert.is_false(ok)
      assert.are.equal("fsdb: bulk_insert failed: Duplicate entry '1' for key 'PRIMARY' [errno 1062, sqlstate 23000]"
        .. " in: INSERT INTO `t` (`id`) VALUES (?)", err)
      assert.are.same({ 1 }, op.last_failure.params)
      assert.are.equal("bulk_insert", op.last_failure.op)
    end)

    it("without codes the brackets are left out", function()
      local op = ops.new(function() return nil, "no luck" end)
      assert.are.equal("fsdb: drop_table failed: no luck in: DROP TABLE `t`", select(2, pcall(op.drop_table, "t")))
      op = ops.new(function() return false end)
      assert.are.equal("fsdb: drop_table failed: unknown error in: DROP TABLE `t`", select(2, pcall(op.drop_table, "t")))
    end)

    it("an error raised by run passes through and is recorded", function()
      local boom = { code = 1 }
      local op = ops.new(function() error(boom) end)
      local ok, err = pcall(op.drop_index, "ix", "t")
      assert.is_false(ok)
      assert.are.equal(boom, err)
      assert.are.same({ op = "drop_index", sql = "DROP INDEX `ix` ON `t`", err = boom }, op.last_failure)
    end)

    it("last_failure is cleared by the next statement", function()
      local fail = true
      local op = ops.new(function() if fail then return nil, "x", 1, "HY000" end return true end)
      pcall(op.drop_table, "a")
      assert.is_table(op.last_failure)
      fail = false
      op.drop_table("b")
      assert.is_nil(op.last_failure)
      assert.are.same({ "DROP TABLE `a`", "DROP TABLE `b`" }, op.statements)
    end)

    it("stops at the first failing chunk of a bulk insert", function()
      local n = 0
      local op = ops.new(function() n = n + 1 return nil, "x", 1, "HY000" end)
      local rows = {}
      for i = 1, 70000 do rows[i] = { a = i } end
      assert.is_false((pcall(op.bulk_insert, "t", rows)))
      assert.are.equal(1, n)
    end)

    it("has op.raw, op.null, op.no_default and op.f", function()
      local op = recorder()
      assert.is_true(ops.is_raw(op.raw("NOW()")))
      assert.are.equal("NOW()", tostring(op.raw("NOW()")))
      assert.are.equal(null, op.null)
      assert.are.equal(ops.no_default, op.no_default)
      assert.are.equal("ix_a", op.f("ix_a"))
    end)
  end)

  describe("inline (for --sql output)", function()
    local cases = {
      { "INSERT INTO `t` (`a`, `b`) VALUES (?, ?), (?, ?)", { 1, "it's", null, true },
        "INSERT INTO `t` (`a`, `b`) VALUES (1, 'it''s'), (NULL, 1)" },
      { "SELECT '?', `?`, \"?\", ? -- ?\n", { 2.5 }, "SELECT '?', `?`, \"?\", 2.5 -- ?\n" },
      { "UPDATE t SET a = :a WHERE b = :b /* :c */", { a = "x\\y", b = false },
        "UPDATE t SET a = _utf8mb4 X'785C79' WHERE b = 0 /* :c */" },
      { "SELECT 1", nil, "SELECT 1" },
      -- The C scanner's rules: ":a:" is not a placeholder, nor what follows it.
      { "SELECT :a:b, :x", { x = 1 }, "SELECT :a:b, 1" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        assert.are.equal(c[3], ops.inline(c[1], c[2]))
      end)
    end
    it("finds placeholders where the C core does (core.placeholders)", function()
      local core = require("fsdb.core")
      assert.are.same({ { 8, 8 }, { 11, 15, "name" } }, core.placeholders("SELECT ?, :name -- ?"))
      assert.are.same({}, core.placeholders("SELECT '?', `:x`, \"?\" /* ? */"))
      -- A backslash ends the string only under NO_BACKSLASH_ESCAPES.
      assert.are.same({}, core.placeholders("SELECT 'C:\\', ?"))
      assert.are.same({ { 15, 15 } }, core.placeholders("SELECT 'C:\\', ?", true))
    end)
    it("raises on a count mismatch", function()
      assert.are.equal("fsdb: inline: statement has more placeholders than the 1 parameters given",
        raised(ops.inline, "SELECT ?, ?", { 1 }))
      assert.are.equal("fsdb: inline: statement has 1 placeholders but 2 parameters were given",
        raised(ops.inline, "SELECT ?", { 1, 2 }))
      assert.are.equal("fsdb: inline: no parameter for :b", raised(ops.inline, "SELECT :a, :b", { a = 1 }))
    end)
  end)

  describe("valid_type", function()
    local good = { "INT", "INT UNSIGNED", "VARCHAR(100)", "DECIMAL(10,2)", "DECIMAL(10, 2)", "ENUM('a','b')",
      "ENUM('in-stock','it''s','sold out')", "SET('x','y')", "LONGBLOB", "DATETIME(6)", "double precision",
      "VARCHAR(10) CHARACTER SET latin1" }
    local bad = { "", "INT;", "INT -- x", "INT/*x*/", "ENUM('a)", "ENUM('a\\')", "VARCHAR(10)`", "INT\nUNSIGNED",
      "DEFAULT 'x'='x'", "()" }
    for _, t in ipairs(good) do
      it("accepts " .. t, function() assert.is_true(ops.valid_type(t)) end)
    end
    for _, t in ipairs(bad) do
      it(("refuses %q"):format(t), function() assert.is_false(ops.valid_type(t)) end)
    end
  end)
end)

describe("fsdb.schema", function()
  it("declares tables in order, with create_table's checks and names", function()
    local s = schema.new()
    local def = s:table("categories", { { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
      { "name", "VARCHAR(100)", nullable = false } }, { indexes = { { columns = { "name" } } } })
    s:table("products", { { "id", "INT", primary_key = true }, { "category_id", "INT UNSIGNED" } },
      { foreign_keys = { { columns = { "category_id" }, ref_table = "categories", ref_columns = { "id" } } }, bind = "shop" })
    assert.are.same({ "categories", "products" }, s.order)
    assert.are.equal(def, s.tables.categories)
    assert.are.same({ "id" }, def.primary_key)
    assert.are.equal("ix_categories_name", def.indexes[1].name)
    assert.are.equal("fk_products_category_id_categories", s.tables.products.foreign_keys[1].name)
    assert.is_false(def.columns[1].nullable)
    assert.is_true(s.tables.products.columns[2].nullable)
    assert.is_nil(def.bind)
    assert.are.equal("shop", s.tables.products.bind)
    assert.are.same({ def }, s:tables_for(nil))
    assert.are.same({ def }, s:tables_for("default"))
    assert.are.same({ s.tables.products }, s:tables_for("shop"))
    assert.is_true(schema.is_schema(s))
    assert.are.equal(ops.raw, schema.raw)
  end)

  it("checks what spans tables", function()
    local s = schema.new()
    s:table("a", { { "id", "INT", primary_key = true } })
    s:table("b", { { "a_id", "INT" } }, { foreign_keys = { { columns = { "a_id" }, ref_table = "a", ref_columns = { "uid" } } } })
    assert.are.same({ nil, "fsdb: schema: table 'b': foreign_keys[1] references column 'uid', which table 'a' does not have" },
      { s:validate() })
    s = schema.new()
    s:table("a", { { "id", "INT", primary_key = true } }, { bind = "auth" })
    s:table("b", { { "a_id", "INT" } }, { foreign_keys = { { columns = { "a_id" }, ref_table = "a", ref_columns = { "id" } } } })
    assert.are.same({ nil, "fsdb: schema: table 'b': foreign_keys[1] references table 'a' of another bind" }, { s:validate() })
    s = schema.new()
    s:table("b", { { "x_id", "INT" } }, { foreign_keys = { { columns = { "x_id" }, ref_table = "elsewhere", ref_columns = { "id" } } } })
    assert.is_true(s:validate())
  end)

  local bad = {
    { function(s) s:table("t", { { "a", "INT" } }) s:table("t", { { "a", "INT" } }) end,
      "fsdb: schema: table 't' is declared twice" },
    { function(s) s:table("t", { { "a", "INT", nul = true } }) end, "fsdb: schema: table 't': column 'a': unknown option 'nul'" },
    { function(s) s:table("t", { { "a", "INT" } }, { bind = 3 }) end,
      "fsdb: schema: table 't': bind must be a non-empty string (a bind name) or nil, got number" },
    { function(s) s:table("t", { { "a", "INT" } }, { bnd = "x" }) end, "fsdb: schema: table 't': unknown option 'bnd'" },
    { function(s) s:table("", { { "a", "INT" } }) end, "fsdb: schema: table name must not be empty" },
    { function(s) s.table("t", { { "a", "INT" } }) end, "fsdb: schema: call s:table(name, columns, options) with a colon" },
  }
  for _, c in ipairs(bad) do
    it("raises: " .. c[2], function()
      local s = schema.new()
      assert.are.equal(c[2], raised(c[1], s))
    end)
  end
end)
