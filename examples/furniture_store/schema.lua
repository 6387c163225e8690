--- The furniture store's tables, declared in Lua.
---
--- This is what the store expects the databases to look like after
--- `fsdb upgrade` (head). The migrations in migrations/ (default bind) and
--- migrations_auth/ (the `auth` bind) create it step by step; their env.lua
--- names this file as the schema `fsdb migrate` compares with the database,
--- so after an upgrade `fsdb migrate` must say "No changes in schema
--- detected." (spec/integration/store_spec.lua checks that). A change to
--- the store's tables is made here first, then `fsdb migrate -m "…"` writes
--- the revision.
---
--- Conventions:
---   * money is DECIMAL (exact; fsdb returns it as a string, never a float);
---   * every table is InnoDB, utf8mb4 (emoji and all of Unicode);
---   * products.image is a LONGBLOB (works, byte-exact), but the recommended
---     way for a web shop is products.image_path: keep the file on disk or
---     in an object store and only its path in the database — pages load
---     faster and backups stay small;
---   * CHECK constraints (price >= 0, quantity > 0) live in the migrations
---     only: autogenerate does not compare CHECK constraints.

local schema = require("fsdb.schema")

local raw = schema.raw
local s = schema.new()

local function created_at()
  return { "created_at", "DATETIME", nullable = false, default = raw("CURRENT_TIMESTAMP") }
end

---------------------------------------------------------------------------
-- Default bind: the store.

s:table("categories", {
  { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
  { "name", "VARCHAR(100)", nullable = false },
  { "slug", "VARCHAR(100)", nullable = false },
  created_at(),
}, {
  unique = { { columns = { "name" } }, { columns = { "slug" } } },
})

s:table("products", {
  { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
  { "category_id", "INT UNSIGNED", nullable = false },
  { "sku", "VARCHAR(32)", nullable = false },
  { "name", "VARCHAR(200)", nullable = false },
  { "price", "DECIMAL(10,2)", nullable = false },
  { "stock", "INT UNSIGNED", nullable = false, default = 0 },
  { "image", "LONGBLOB", nullable = true, comment = "the image bytes (works; image_path is lighter)" },
  { "image_path", "VARCHAR(500)", nullable = true, comment = "path of the image file (recommended)" },
  created_at(),
}, {
  unique = { { columns = { "sku" } } },
  indexes = {
    { columns = { "category_id", "price" } },
    { columns = { "price" } },
  },
  foreign_keys = {
    { columns = { "category_id" }, ref_table = "categories", ref_columns = { "id" },
      ondelete = "RESTRICT", onupdate = "CASCADE" },
  },
})

s:table("customers", {
  { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
  { "name", "VARCHAR(200)", nullable = false },
  { "email", "VARCHAR(254)", nullable = false },
  created_at(),
}, {
  unique = { { columns = { "email" } } },
})

s:table("orders", {
  { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
  { "customer_id", "INT UNSIGNED", nullable = false },
  { "status", "ENUM('placed','cancelled')", nullable = false, default = "placed" },
  { "total", "DECIMAL(12,2)", nullable = false, default = "0.00" },
  created_at(),
  { "cancelled_at", "DATETIME", nullable = true },
}, {
  indexes = {
    { columns = { "customer_id" } },
    { columns = { "status", "created_at" } },
  },
  foreign_keys = {
    { columns = { "customer_id" }, ref_table = "customers", ref_columns = { "id" },
      ondelete = "RESTRICT", onupdate = "CASCADE" },
  },
})

s:table("order_items", {
  { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
  { "order_id", "INT UNSIGNED", nullable = false },
  { "product_id", "INT UNSIGNED", nullable = false },
  { "quantity", "INT UNSIGNED", nullable = false },
  { "unit_price", "DECIMAL(10,2)", nullable = false },
}, {
  unique = { { columns = { "order_id", "product_id" } } },
  indexes = { { columns = { "product_id" } } },
  foreign_keys = {
    { columns = { "order_id" }, ref_table = "orders", ref_columns = { "id" },
      ondelete = "CASCADE", onupdate = "CASCADE" },
    { columns = { "product_id" }, ref_table = "products", ref_columns = { "id" },
      ondelete = "RESTRICT", onupdate = "CASCADE" },
  },
})

---------------------------------------------------------------------------
-- The `auth` bind: credentials live in a database of their own (the
-- store's SQLALCHEMY_BINDS = {"auth": …}). No foreign key crosses
-- databases: users.customer_id is checked by the store code.

s:table("users", {
  { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
  { "customer_id", "INT UNSIGNED", nullable = false },
  { "email", "VARCHAR(254)", nullable = false },
  { "password_salt", "CHAR(32)", nullable = false },
  { "password_hash", "CHAR(64)", nullable = false },
  created_at(),
  { "last_login_at", "DATETIME", nullable = true },
}, {
  bind = "auth",
  unique = { { columns = { "email" } }, { columns = { "customer_id" } } },
})

s:table("logins", {
  { "id", "BIGINT UNSIGNED", primary_key = true, auto_increment = true },
  { "user_id", "INT UNSIGNED", nullable = false },
  { "succeeded", "BOOLEAN", nullable = false, default = true },
  { "at", "DATETIME", nullable = false, default = raw("CURRENT_TIMESTAMP") },
}, {
  bind = "auth",
  indexes = { { columns = { "user_id", "at" } } },
  foreign_keys = {
    { columns = { "user_id" }, ref_table = "users", ref_columns = { "id" }, ondelete = "CASCADE" },
  },
})

assert(s:validate())
return s
