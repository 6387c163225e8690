-- Autogenerate against a real server (DESIGN.md "Migrations"): what it
-- detects, what it refuses to propose, that a table made by op.create_table
-- compares equal to the declaration it came from, and that the rendered
-- code, run with a real op, takes the database to the declared schema and
-- back. Every test runs in a private database created for this file.

local fsdb = require("fsdb")
local db = require("helpers.db")
local ops = require("fsdb.migrate.ops")
local schema = require("fsdb.schema")
local autogen = require("fsdb.migrate.autogen")

local raw = ops.raw

-- FSDB_TEST_URL with another database in its path.
local function url_for(dbname)
  return (db.url:gsub("^([%w+.-]+://[^/]*/)[^?]*", "%1" .. dbname))
end

-- A schema whose declarations can be replayed through op.create_table:
-- the same arguments go to both.
local function declaration()
  local s = schema.new()
  local calls = {}
  local d = { schema = s, calls = calls }
  function d.table(name, columns, options)
    calls[#calls + 1] = { name, columns, options }
    s:table(name, columns, options)
    return d
  end
  return d
end

local function summary(diffs)
  local out = {}
  for _, x in ipairs(diffs) do
    out[#out + 1] = x.kind .. " " .. x.table .. (x.column and ("." .. x.column) or "")
      .. (x.name and (" " .. x.name) or "")
  end
  return out
end

-- The op calls of one diff (diffs are plain data; render writes code).
local function code(d)
  local up, down = autogen.render_diff(d)
  return { up = up, down = down }
end

local function dump(diffs)
  local out = {}
  for _, x in ipairs(diffs) do
    out[#out + 1] = x.kind .. ": " .. code(x).up
  end
  return table.concat(out, "\n")
end

local function has(list, item)
  for _, v in ipairs(list) do
    if v == item then return true end
  end
  return false
end

-- The schema the round-trip tests use: most column kinds, defaults of
-- every spelling, a self reference, a composite key, a JSON column.
local function catalog()
  return declaration()
    .table("categories", {
      { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
      { "name", "VARCHAR(100)", nullable = false, unique = true },
      { "parent_id", "INT UNSIGNED" },
      { "created_at", "TIMESTAMP", nullable = false, default = raw("CURRENT_TIMESTAMP") },
      { "updated_at", "DATETIME(6)", default = raw("CURRENT_TIMESTAMP(6)"), on_update = raw("CURRENT_TIMESTAMP(6)") },
    }, {
      foreign_keys = { { columns = { "parent_id" }, ref_table = "categories", ref_columns = { "id" }, ondelete = "SET NULL" } },
    })
    .table("products", {
      { "id", "BIGINT UNSIGNED", primary_key = true, auto_increment = true },
      { "sku", "CHAR(12)", nullable = false },
      { "name", "VARCHAR(200)", nullable = false, default = "" },
      { "price", "DECIMAL(10, 2)", nullable = false, default = "0.00" },
      { "discount", "decimal(5,2)", default = 1.5 },
      { "weight", "FLOAT" },
      { "ratio", "DOUBLE PRECISION", default = 0.25 },
      { "in_stock", "BOOLEAN", nullable = false, default = true },
      { "tiny", "TINYINT", default = 3 },
      { "status", "ENUM('draft', 'in-stock', 'sold out')", nullable = false, default = "draft" },
      { "notes", "TEXT" },
      { "attrs", "JSON" },
      { "quirky", "VARCHAR(50)", default = "it's a \\ test\nline" },
      { "nothing", "VARCHAR(10)", default = fsdb.null },
      { "category_id", "INT UNSIGNED", nullable = false },
      { "qty", "Integer", nullable = false, default = 0, comment = "units on hand" },
      { "made", "YEAR" },
      { "flags", "BIT(3)" },
      { "code", "Char" },
      { "added", "DATETIME", default = raw("now()") },
      { "uuid", "CHAR(36)", default = raw("(uuid())") },
      { "blob", "LONGBLOB" },
    }, {
      unique = { { columns = { "sku" } } },
      indexes = {
        { columns = { "category_id", "price" } },
        { name = "ix_products_name", columns = { "name" } },
        { name = "uq_products_code", columns = { "code" }, unique = true },
      },
      foreign_keys = { { columns = { "category_id" }, ref_table = "categories", ref_columns = { "id" }, ondelete = "CASCADE" } },
      comment = "what we sell",
    })
    .table("order_items", {
      { "order_id", "INT UNSIGNED" },
      { "product_id", "BIGINT UNSIGNED" },
      { "quantity", "SMALLINT UNSIGNED", nullable = false, default = 1 },
    }, {
      primary_key = { "order_id", "product_id" },
      foreign_keys = { { name = "fk_item_product", columns = { "product_id" }, ref_table = "products", ref_columns = { "id" } } },
    })
end

describe("autogenerate #mariadb", function()
  local dbname = db.unique("fsdb_autogen")
  local engine, conn

  setup(function()
    local admin = db.engine()
    db.must(admin, ("CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"):format(dbname))
    admin:dispose()
    engine = fsdb.engine.new(url_for(dbname))
    conn = assert(engine:connect())
  end)

  teardown(function()
    if conn then conn:close() end
    if engine then engine:dispose() end
    local admin = db.engine()
    admin:execute(("DROP DATABASE IF EXISTS `%s`"):format(dbname))
    admin:dispose()
  end)

  before_each(function()
    local rows = db.must(conn,
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    db.must(conn, "SET FOREIGN_KEY_CHECKS = 0")
    for _, r in ipairs(rows) do
      db.must(conn, "DROP TABLE `" .. r.name .. "`")
    end
    db.must(conn, "SET FOREIGN_KEY_CHECKS = 1")
  end)

  local function new_op()
    return ops.new(function(sql, params)
      if params == nil then return conn:execute(sql) end
      return conn:execute(sql, params)
    end)
  end

  -- Creates the declared tables with op.create_table, in declaration order.
  local function create(d, only)
    local op = new_op()
    for _, call in ipairs(d.calls) do
      if not only or has(only, call[1]) then
        op.create_table(call[1], call[2], call[3])
      end
    end
  end

  local function compare(d, opts)
    local diffs, err, errno, sqlstate = autogen.compare(conn, d.schema, opts)
    assert(diffs, ("%s [%s %s]"):format(tostring(err), tostring(errno), tostring(sqlstate)))
    return diffs
  end

  local function no_diffs(d, opts)
    local diffs = compare(d, opts)
    assert.are.equal(0, #diffs, "expected no differences, got:\n" .. dump(diffs))
    return diffs
  end

  -- Loads a rendered body as `function(op) … end`.
  local function compile(body)
    local chunk, err = (loadstring or load)("return function(op)\n" .. body .. "end")
    assert(chunk, err)
    return chunk()
  end

  describe("round trip", function()
    it("a schema created by op.create_table compares equal to its declaration", function()
      local d = catalog()
      create(d)
      no_diffs(d)
    end)

    it("ignores the version table, by default alembic_version or the one named", function()
      local d = catalog()
      create(d)
      db.must(conn, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
      db.must(conn, "CREATE TABLE fsdb_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
      local diffs = compare(d, { drop_tables = true })
      assert.are.same({ "drop_table fsdb_version" }, summary(diffs))
      no_diffs(d, { version_table = "fsdb_version" })
      assert.are.same({ "drop_table alembic_version" },
        summary(compare(d, { drop_tables = true, version_table = "fsdb_version" })))
    end)

    it("treats server spellings as equal to the declared ones", function()
      db.must(conn, [[CREATE TABLE spelled (
        id int(10) unsigned NOT NULL AUTO_INCREMENT,
        flag tinyint(1) NOT NULL DEFAULT 0,
        amount numeric(8) DEFAULT NULL,
        label varchar(20) DEFAULT 'x',
        ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
        small smallint(6) DEFAULT '7',
        PRIMARY KEY (id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci]])
      local d = declaration().table("spelled", {
        { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
        { "flag", "BOOL", nullable = false, default = false },
        { "amount", "DECIMAL(8,0)", default = fsdb.null },
        { "label", "VARCHAR(20)", default = raw("'x'") },
        { "ts", "TIMESTAMP", nullable = false, default = raw("NOW()"), on_update = raw("CURRENT_TIMESTAMP") },
        { "small", "SMALLINT", default = 7 },
      })
      no_diffs(d)
    end)

    it("adopts a foreign key that has another name but does the same", function()
      db.must(conn, "CREATE TABLE a (id INT NOT NULL PRIMARY KEY)")
      db.must(conn, "CREATE TABLE b (id INT NOT NULL PRIMARY KEY, a_id INT, FOREIGN KEY (a_id) REFERENCES a (id))")
      local d = declaration()
        .table("a", { { "id", "INT", primary_key = true } })
        .table("b", { { "id", "INT", primary_key = true }, { "a_id", "INT" } },
          { foreign_keys = { { columns = { "a_id" }, ref_table = "a", ref_columns = { "id" } } } })
      no_diffs(d)
    end)
  end)

  describe("detects", function()
    it("a new table, created after the tables it references", function()
      local d = catalog()
      create(d, { "categories" })
      local diffs = compare(d)
      assert.are.same({ "add_table products", "add_table order_items" }, summary(diffs))
      assert.is_truthy(code(diffs[1]).up:find('op.create_table("products", {', 1, true))
      assert.are.equal('op.drop_table("products")', code(diffs[1]).down)
    end)

    it("new, dropped and changed columns", function()
      local old = declaration().table("items", {
        { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
        { "name", "VARCHAR(100)" },
        { "legacy", "INT", nullable = false },
        { "price", "DECIMAL(10,2)", default = "1.00" },
        { "note", "VARCHAR(20)", comment = "old" },
      })
      create(old)
      local new = declaration().table("items", {
        { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
        { "name", "VARCHAR(200)", nullable = false },
        { "price", "DECIMAL(10,2)", default = "2.50" },
        { "note", "VARCHAR(20)", comment = "new" },
        { "stock", "INT", nullable = false, default = 0 },
      })
      local diffs = compare(new)
      assert.are.same({
        "add_column items.stock",
        "modify_type items.name",
        "modify_nullable items.name",
        "modify_default items.price",
        "modify_comment items.note",
        "drop_column items.legacy",
      }, summary(diffs))
      assert.are.same({ "add_column items.stock", "modify_nullable items.name", "modify_comment items.note",
        "drop_column items.legacy" }, summary(compare(new, { compare_type = false, compare_default = false })))
      local by = {}
      for _, x in ipairs(diffs) do by[x.kind .. " " .. (x.column or "")] = x end
      assert.are.equal("VARCHAR(100)", by["modify_type name"].from)
      assert.are.equal("VARCHAR(200)", by["modify_type name"].to)
      assert.are.equal(true, by["modify_nullable name"].from)
      assert.are.equal(false, by["modify_nullable name"].to)
      assert.are.equal("1.00", by["modify_default price"].from)
      assert.are.equal("'2.50'", by["modify_default price"].to)
      assert.are.equal('op.add_column("items", {"stock", "INT", nullable = false, default = 0})',
        code(by["add_column stock"]).up)
      assert.are.equal('op.drop_column("items", "legacy")', code(by["drop_column legacy"]).up)
      assert.are.equal('op.add_column("items", {"legacy", "INT", nullable = false})',
        code(by["drop_column legacy"]).down)
      -- each change alone restates the column as it is at that point
      assert.are.equal('op.alter_column("items", "name", {type = "VARCHAR(200)", existing_type = "VARCHAR(100)",'
        .. ' existing_nullable = true})', code(by["modify_type name"]).up)
      assert.are.equal('op.alter_column("items", "name", {existing_type = "VARCHAR(200)", nullable = false,'
        .. ' existing_nullable = true})', code(by["modify_nullable name"]).up)
      assert.are.equal('op.alter_column("items", "price", {existing_type = "DECIMAL(10,2)", existing_nullable = true,'
        .. ' default = "2.50", existing_default = "1.00"})', code(by["modify_default price"]).up)
    end)

    it("a new index, a new unique constraint and a new foreign key", function()
      local old = declaration()
        .table("owners", { { "id", "INT", primary_key = true } })
        .table("pets", {
          { "id", "INT", primary_key = true },
          { "owner_id", "INT" },
          { "name", "VARCHAR(50)" },
          { "chip", "VARCHAR(20)" },
        })
      create(old)
      local new = declaration()
        .table("owners", { { "id", "INT", primary_key = true } })
        .table("pets", {
          { "id", "INT", primary_key = true },
          { "owner_id", "INT" },
          { "name", "VARCHAR(50)" },
          { "chip", "VARCHAR(20)", unique = true },
        }, {
          indexes = { { columns = { "name" } } },
          foreign_keys = { { columns = { "owner_id" }, ref_table = "owners", ref_columns = { "id" }, ondelete = "cascade" } },
        })
      local diffs = compare(new)
      -- the foreign key's index is made openly, so that the downgrade removes it
      assert.are.same({ "add_index pets ix_pets_name", "add_unique pets chip", "add_index pets fk_pets_owner_id_owners",
        "add_fk pets fk_pets_owner_id_owners" }, summary(diffs))
      assert.are.equal('op.create_index("ix_pets_name", "pets", {"name"})', code(diffs[1]).up)
      assert.are.equal('op.drop_index("ix_pets_name", "pets")', code(diffs[1]).down)
      assert.are.equal('op.create_unique_constraint("chip", "pets", {"chip"})', code(diffs[2]).up)
      assert.are.equal('op.create_index("fk_pets_owner_id_owners", "pets", {"owner_id"})', code(diffs[3]).up)
      assert.are.equal('op.create_foreign_key("fk_pets_owner_id_owners", "pets", "owners", {"owner_id"}, {"id"},'
        .. ' {ondelete = "CASCADE"})', code(diffs[4]).up)
      assert.are.equal('op.drop_constraint("fk_pets_owner_id_owners", "pets", "foreignkey")', code(diffs[4]).down)
      local up, down = autogen.render(diffs)
      compile(up)(new_op())
      no_diffs(new)
      compile(down)(new_op())
      no_diffs(old)
    end)

    it("dropped indexes and foreign keys, dropping the foreign key first", function()
      local new = declaration()
        .table("owners", { { "id", "INT", primary_key = true } })
        .table("pets", { { "id", "INT", primary_key = true }, { "owner_id", "INT" }, { "name", "VARCHAR(50)" } })
      db.must(conn, "CREATE TABLE owners (id INT NOT NULL PRIMARY KEY)")
      db.must(conn, [[CREATE TABLE pets (id INT NOT NULL PRIMARY KEY, owner_id INT NULL, name VARCHAR(50) NULL,
        KEY ix_name (name), UNIQUE KEY uq_name (name, id),
        CONSTRAINT fk_owner FOREIGN KEY (owner_id) REFERENCES owners (id))]])
      local diffs = compare(new)
      -- fk_owner's own index goes with it
      assert.are.same({ "drop_fk pets fk_owner", "drop_index pets fk_owner", "drop_index pets ix_name",
        "drop_unique pets uq_name" }, summary(diffs))
      local up, down = autogen.render(diffs)
      compile(up)(new_op())
      no_diffs(new)
      compile(down)(new_op())
      local fks = db.must(conn, "SELECT CONSTRAINT_NAME AS n FROM information_schema.REFERENTIAL_CONSTRAINTS"
        .. " WHERE CONSTRAINT_SCHEMA = DATABASE()")
      assert.are.equal("fk_owner", fks[1].n)
    end)

    it("does not propose dropping an index a foreign key needs", function()
      db.must(conn, "CREATE TABLE owners (id INT NOT NULL PRIMARY KEY)")
      db.must(conn, [[CREATE TABLE pets (id INT NOT NULL PRIMARY KEY, owner_id INT NULL,
        KEY ix_owner (owner_id), CONSTRAINT fk_owner FOREIGN KEY (owner_id) REFERENCES owners (id))]])
      local new = declaration()
        .table("owners", { { "id", "INT", primary_key = true } })
        .table("pets", { { "id", "INT", primary_key = true }, { "owner_id", "INT" } },
          { foreign_keys = { { name = "fk_owner", columns = { "owner_id" }, ref_table = "owners", ref_columns = { "id" } } } })
      local diffs = compare(new)
      assert.are.equal(0, #diffs, dump(diffs))
      assert.is_truthy(diffs.notes[1]:find("index ix_owner on `pets` is not declared but foreign key fk_owner needs it", 1, true),
        diffs.notes[1])
    end)
  end)

  describe("table options", function()
    local function notes_table(opts)
      return declaration().table("notes", { { "id", "INT", primary_key = true }, { "body", "TEXT" } }, opts)
    end

    it("proposes comment, engine, collation and row format changes, and they round-trip", function()
      create(notes_table({ comment = "old words" }))
      local want = notes_table({ comment = "new words", engine = "Aria", charset = "utf8mb4",
                                 collate = "utf8mb4_bin", row_format = "PAGE" })
      local diffs = compare(want)
      assert.are.same({ "modify_table notes" }, summary(diffs))
      local d = diffs[1].description
      for _, part in ipairs({ "comment 'old words' -> 'new words'", "engine 'InnoDB' -> 'Aria'",
                              "collation 'utf8mb4_unicode_ci' -> 'utf8mb4_bin'", "row_format" }) do
        assert.matches(part, d, 1, true)
      end
      local up, down = autogen.render(diffs)
      assert.matches('op.alter_table("notes", { engine = "Aria", charset = "utf8mb4", collate = "utf8mb4_bin", '
        .. 'comment = "new words", row_format = "PAGE" })', up, 1, true)
      compile(up)(new_op())
      no_diffs(want)
      compile(down)(new_op())
      no_diffs(notes_table({ comment = "old words" }))
    end)

    it("a removed comment is proposed as an empty one; compare_comment = false ignores it", function()
      create(notes_table({ comment = "gone soon" }))
      local diffs = compare(notes_table())
      assert.are.same({ "modify_table notes" }, summary(diffs))
      assert.matches('comment = ""', code(diffs[1]).up, 1, true)
      no_diffs(notes_table(), { compare_comment = false })
      compile(autogen.render(diffs))(new_op())
      no_diffs(notes_table())
    end)
  end)

  describe("safety", function()
    it("keeps a table that is not declared, unless told to drop it", function()
      local d = catalog()
      create(d)
      db.must(conn, "CREATE TABLE legacy (id INT NOT NULL PRIMARY KEY, note VARCHAR(10) DEFAULT 'a''b')")
      local diffs = compare(d)
      assert.are.equal(0, #diffs, dump(diffs))
      assert.are.same({ "legacy" }, diffs.kept_tables)
      assert.are.same({
        "table `legacy` is in the database but not declared: kept (set drop_tables = true, or have include_object"
          .. " return true for it, to drop it)",
      }, diffs.notes)
      local up, down, header = autogen.render(diffs)
      -- the notes go once into the file's header, not into both bodies
      assert.are.equal("    -- No changes in schema detected.\n", up)
      assert.are.equal(up, down)
      assert.are.equal(table.concat({
        "-- Not proposed by autogenerate (review before applying):",
        "--   " .. diffs.notes[1],
        "",
      }, "\n"), header)
      -- many undeclared tables are one line
      db.must(conn, "CREATE TABLE legacy2 (id INT PRIMARY KEY)")
      db.must(conn, "CREATE TABLE legacy3 (id INT PRIMARY KEY)")
      diffs = compare(d)
      assert.are.same({
        "tables `legacy`, `legacy2`, `legacy3` are in the database but not declared: kept (set drop_tables = true,"
          .. " or have include_object return true for a table, to drop it)",
      }, diffs.notes)
      db.must(conn, "DROP TABLE legacy2, legacy3")

      diffs = compare(d, { drop_tables = true })
      assert.are.same({ "drop_table legacy" }, summary(diffs))
      assert.are.equal('op.drop_table("legacy")', code(diffs[1]).up)
      assert.are.equal(table.concat({
        'op.create_table("legacy", {',
        '  {"id", "INT", primary_key = true},',
        '  {"note", "VARCHAR(10)", default = "a\'b"},',
        '})',
      }, "\n"), code(diffs[1]).down)

      local seen = {}
      diffs = compare(d, { include_object = function(kind, name, reflected, compare_to)
        seen[#seen + 1] = kind .. " " .. name .. " " .. tostring(reflected) .. " " .. tostring(compare_to ~= nil)
        return kind == "table" and name == "legacy" or nil
      end })
      assert.are.same({ "drop_table legacy" }, summary(diffs))
      assert.is_truthy(has(seen, "table legacy true false"))
      assert.is_truthy(has(seen, "table products false true"))

      -- include_object returning false wins over drop_tables
      diffs = compare(d, { drop_tables = true, include_object = function(kind, name)
        return not (kind == "table" and name == "legacy")
      end })
      assert.are.equal(0, #diffs, dump(diffs))
    end)

    it("refuses an empty declared schema against a database with tables", function()
      create(catalog(), { "categories", "products" })
      db.must(conn, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
      local diffs, err = autogen.compare(conn, schema.new(), { drop_tables = true })
      assert.is_nil(diffs)
      assert.are.equal("fsdb: the declared schema is empty but the database has 2 tables; refusing to generate drops"
        .. " (is the schema module loaded? see env.lua)", err)
    end)

    it("accepts an empty declared schema against an empty database", function()
      local diffs = assert(autogen.compare(conn, schema.new()))
      assert.are.equal(0, #diffs)
    end)

    it("compares only the tables of the bind asked for", function()
      local s = schema.new()
      s:table("here", { { "id", "INT", primary_key = true } })
      s:table("elsewhere", { { "id", "INT", primary_key = true } }, { bind = "auth" })
      local diffs = assert(autogen.compare(conn, s))
      assert.are.same({ "add_table here" }, summary(diffs))
      diffs = assert(autogen.compare(conn, s, { bind = "auth" }))
      assert.are.same({ "add_table elsewhere" }, summary(diffs))
    end)

    it("raises on misuse", function()
      assert.has_error(function() autogen.compare(conn, {}) end,
        "fsdb: autogenerate: bad argument #2 to 'compare' (a schema from fsdb.schema.new() expected, got table)")
      assert.has_error(function() autogen.compare(conn, schema.new(), { drop_table = true }) end,
        "fsdb: autogenerate: unknown option 'drop_table'")
      assert.has_error(function() autogen.render({}, { indnt = "" }) end,
        "fsdb: autogenerate: unknown render option 'indnt'")
    end)
  end)

  describe("rendered code", function()
    local function old_schema()
      return declaration()
        .table("categories", {
          { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
          { "name", "VARCHAR(50)" },
          { "legacy_code", "CHAR(4)", nullable = false, default = "none" },
        })
        .table("products", {
          { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
          { "name", "VARCHAR(100)", nullable = false },
          { "category_id", "INT UNSIGNED" },
          { "price", "DECIMAL(8,2)", default = 0 },
        }, { indexes = { { name = "ix_old", columns = { "name" } } } })
        .table("legacy", {
          { "id", "INT", primary_key = true },
          { "product_id", "INT UNSIGNED" },
        }, { foreign_keys = { { columns = { "product_id" }, ref_table = "products", ref_columns = { "id" } } } })
    end

    local function new_schema()
      return declaration()
        .table("categories", {
          { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
          { "name", "VARCHAR(100)", nullable = false, unique = true, comment = "shown in the shop" },
          { "created_at", "TIMESTAMP", nullable = false, default = raw("CURRENT_TIMESTAMP") },
        })
        .table("products", {
          { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
          { "name", "VARCHAR(200)", nullable = false },
          { "category_id", "INT UNSIGNED", nullable = false },
          { "price", "DECIMAL(10,2)", nullable = false, default = "9.99" },
          { "updated", "DATETIME", on_update = raw("CURRENT_TIMESTAMP") },
        }, {
          indexes = { { columns = { "name", "price" } } },
          foreign_keys = { { columns = { "category_id" }, ref_table = "categories", ref_columns = { "id" }, ondelete = "RESTRICT" } },
        })
        .table("reviews", {
          { "id", "BIGINT UNSIGNED", primary_key = true, auto_increment = true },
          { "product_id", "INT UNSIGNED", nullable = false },
          { "stars", "TINYINT UNSIGNED", nullable = false },
          { "body", "TEXT" },
        }, { foreign_keys = { { columns = { "product_id" }, ref_table = "products", ref_columns = { "id" }, ondelete = "CASCADE" } } })
        .table("answers", {
          { "id", "BIGINT UNSIGNED", primary_key = true, auto_increment = true },
          { "review_id", "BIGINT UNSIGNED", nullable = false },
        }, { foreign_keys = { { columns = { "review_id" }, ref_table = "reviews", ref_columns = { "id" } } } })
    end

    it("upgrades the database to the declared schema and downgrades it back", function()
      local old, new = old_schema(), new_schema()
      create(old)
      db.must(conn, "INSERT INTO categories (name) VALUES ('chairs')")
      db.must(conn, "INSERT INTO products (name, category_id, price) VALUES ('Ølstrup', 1, 12.5)")

      local diffs = compare(new, { drop_tables = true })
      local up, down = autogen.render(diffs)
      -- reviews before answers; one alter_column for the two changes of products.name
      local r, a = up:find("\"reviews\"", 1, true), up:find("\"answers\"", 1, true)
      assert.is_truthy(r and a and r < a, up)
      local n = 0
      for _ in up:gmatch('op%.alter_column%("products", "name"') do n = n + 1 end
      assert.are.equal(1, n, up)

      local op = new_op()
      compile(up)(op)
      local calls = 0
      for _ in up:gmatch("\n%s*op%.") do calls = calls + 1 end
      if up:match("^%s*op%.") then calls = calls + 1 end
      assert.are.equal(calls, #op.statements)
      no_diffs(new, { drop_tables = true })
      -- the data is still there
      local rows = db.must(conn, "SELECT name, price FROM products")
      assert.are.same({ name = "Ølstrup", price = "12.50" }, { name = rows[1].name, price = rows[1].price })

      compile(down)(new_op())
      no_diffs(old, { drop_tables = true })
    end)

    it("renders one op call per line, indented, in a body that loads", function()
      local d = catalog()
      local diffs = compare(d)
      local up, down = autogen.render(diffs, { indent = "  " })
      assert.is_truthy(up:match('^  op%.create_table%("categories", {\n    {"id", "INT UNSIGNED", primary_key = true, auto_increment = true},\n'), up)
      assert.are.equal('  op.drop_table("order_items")\n  op.drop_table("products")\n  op.drop_table("categories")\n', down)
      compile(up)(new_op())
      no_diffs(d)
      compile(down)(new_op())
      local rows = db.must(conn, "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
      assert.are.equal(0, rows[1].n)
    end)

    it("adds a new table's foreign key after the column it references", function()
      local old = declaration().table("products", { { "id", "INT", primary_key = true } })
      create(old)
      local new = declaration()
        .table("products", { { "id", "INT", primary_key = true }, { "sku", "VARCHAR(20)", unique = true } })
        .table("stock", { { "id", "INT", primary_key = true }, { "sku", "VARCHAR(20)" } },
          { foreign_keys = { { columns = { "sku" }, ref_table = "products", ref_columns = { "sku" } } } })
      local diffs = compare(new)
      assert.are.same({ "add_table stock", "add_column products.sku", "add_fk stock fk_stock_sku_products" },
        summary(diffs))
      assert.are.equal('op.add_column("products", {"sku", "VARCHAR(20)", unique = true})', code(diffs[2]).up)
      local up, down = autogen.render(diffs)
      compile(up)(new_op())
      no_diffs(new)
      compile(down)(new_op())
      no_diffs(old, { drop_tables = true })
    end)

    it("splits a foreign key cycle out of create_table", function()
      local d = declaration()
        .table("a", { { "id", "INT", primary_key = true }, { "b_id", "INT" } },
          { foreign_keys = { { columns = { "b_id" }, ref_table = "b", ref_columns = { "id" } } } })
        .table("b", { { "id", "INT", primary_key = true }, { "a_id", "INT" } },
          { foreign_keys = { { columns = { "a_id" }, ref_table = "a", ref_columns = { "id" } } } })
      local diffs = compare(d)
      assert.are.same({ "add_table a", "add_table b", "add_fk a fk_a_b_id_b" }, summary(diffs))
      local up, down = autogen.render(diffs)
      compile(up)(new_op())
      no_diffs(d)

      -- dropping the pair: the cycle is broken first, and rebuilt on the way back
      local other = declaration().table("other", { { "id", "INT", primary_key = true } })
      local drops = compare(other, { drop_tables = true })
      assert.are.same({ "drop_fk a fk_a_b_id_b", "add_table other", "drop_table b", "drop_table a" }, summary(drops))
      local up2, down2 = autogen.render(drops)
      compile(up2)(new_op())
      no_diffs(other, { drop_tables = true })
      compile(down2)(new_op())
      no_diffs(d, { drop_tables = true })

      compile(down)(new_op())
      local rows = db.must(conn, "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
      assert.are.equal(0, rows[1].n)
    end)
  end)

  describe("normalisation", function()
    local cases = {
      { "int(10) unsigned", "INT UNSIGNED" },
      { "int(11)", "INTEGER" },
      { "bigint(20) unsigned", "bigint unsigned" },
      { "tinyint(1)", "BOOLEAN" },
      { "tinyint(1)", "bool" },
      { "tinyint(4)", "TINYINT" },
      { "varchar(100)", "VARCHAR( 100 )" },
      { "decimal(10,2)", "DECIMAL(10, 2)" },
      { "decimal(10,0)", "DECIMAL" },
      { "decimal(5,0)", "NUMERIC(5)" },
      { "double", "DOUBLE PRECISION" },
      { "double", "REAL" },
      { "double", "FLOAT(30)" },
      { "float", "FLOAT(10)" },
      { "char(1)", "CHAR" },
      { "year(4)", "YEAR" },
      { "datetime", "DATETIME(0)" },
      { "datetime(6)", "DATETIME(6)" },
      { "enum('a','B c')", "ENUM('a', 'B c')" },
      { "int(10) unsigned zerofill", "INT ZEROFILL" },
      { "longtext", "JSON" },
      { "varchar(10)", "VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" },
    }
    for _, c in ipairs(cases) do
      it(("%s = %s"):format(c[1], c[2]), function()
        assert.are.equal(autogen.normalize_type(c[1], true), autogen.normalize_type(c[2], true))
      end)
    end
    local different = {
      { "int(11)", "INT UNSIGNED" },
      { "tinyint(1)", "TINYINT" },
      { "varchar(100)", "VARCHAR(200)" },
      { "enum('a','b')", "ENUM('A','b')" },
      { "decimal(10,2)", "DECIMAL(10,3)" },
      { "text", "LONGTEXT" },
    }
    for _, c in ipairs(different) do
      it(("%s ~= %s"):format(c[1], c[2]), function()
        assert.are_not.equal(autogen.normalize_type(c[1], true), autogen.normalize_type(c[2], true))
      end)
    end
    it("JSON is its own type on MySQL", function()
      assert.are.equal("json", autogen.normalize_type("JSON", false))
    end)
    it("expressions", function()
      assert.are.equal("current_timestamp", autogen.normalize_expr("current_timestamp()"))
      assert.are.equal("current_timestamp", autogen.normalize_expr("NOW()"))
      assert.are.equal("current_timestamp", autogen.normalize_expr("CURRENT_TIMESTAMP"))
      assert.are.equal("current_timestamp(6)", autogen.normalize_expr("current_timestamp(6)"))
      assert.are.equal("current_timestamp", autogen.normalize_expr("(localtimestamp(0))"))
      assert.are.equal("1+1", autogen.normalize_expr("( 1 + 1 )"))
      assert.are.equal("uuid()", autogen.normalize_expr("UUID( )"))
      assert.are.equal("concat('A b',x)", autogen.normalize_expr("CONCAT('A b', x)"))
    end)
  end)
end)
