-- create the catalog: categories and products
--
-- Revision ID: 4f2a9c1e7b30
-- Revises:
-- Create Date: 2024-03-04 09:12:00
--
-- The store's reference data (its five categories) comes with the table, so
-- a fresh database is usable at once.

return {
  revision = "4f2a9c1e7b30",
  down_revision = nil,
  branch_labels = nil,
  depends_on = nil,
  message = "create the catalog: categories and products",

  up = function(op)
    op.create_table("categories", {
      { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
      { "name", "VARCHAR(100)", nullable = false },
      { "created_at", "DATETIME", nullable = false, default = op.raw("CURRENT_TIMESTAMP") },
    }, {
      unique = { { columns = { "name" } } },
    })
    op.bulk_insert("categories", {
      { name = "Sofas" }, { name = "Tables" }, { name = "Chairs" }, { name = "Beds" }, { name = "Lighting" },
    })

    op.create_table("products", {
      { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
      { "category_id", "INT UNSIGNED", nullable = false },
      { "sku", "VARCHAR(32)", nullable = false },
      { "name", "VARCHAR(200)", nullable = false },
      { "price", "DECIMAL(10,2)", nullable = false },
      { "stock", "INT UNSIGNED", nullable = false, default = 0 },
      { "image", "LONGBLOB", nullable = true, comment = "the image bytes (works; image_path is lighter)" },
      { "created_at", "DATETIME", nullable = false, default = op.raw("CURRENT_TIMESTAMP") },
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
    op.create_check_constraint("ck_products_price", "products", "price >= 0")
  end,

  down = function(op)
    op.drop_table("products")
    op.drop_table("categories")
  end,
}
