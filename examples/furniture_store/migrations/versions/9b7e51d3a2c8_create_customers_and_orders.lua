-- create customers, orders and order items
--
-- Revision ID: 9b7e51d3a2c8
-- Revises: 4f2a9c1e7b30
-- Create Date: 2024-03-04 09:40:00

return {
  revision = "9b7e51d3a2c8",
  down_revision = "4f2a9c1e7b30",
  branch_labels = nil,
  depends_on = nil,
  message = "create customers, orders and order items",

  up = function(op)
    op.create_table("customers", {
      { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
      { "name", "VARCHAR(200)", nullable = false },
      { "email", "VARCHAR(254)", nullable = false },
      { "created_at", "DATETIME", nullable = false, default = op.raw("CURRENT_TIMESTAMP") },
    }, {
      unique = { { columns = { "email" } } },
    })

    op.create_table("orders", {
      { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
      { "customer_id", "INT UNSIGNED", nullable = false },
      { "status", "ENUM('placed','cancelled')", nullable = false, default = "placed" },
      { "total", "DECIMAL(12,2)", nullable = false, default = "0.00" },
      { "created_at", "DATETIME", nullable = false, default = op.raw("CURRENT_TIMESTAMP") },
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

    op.create_table("order_items", {
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
    op.create_check_constraint("ck_order_items_quantity", "order_items", "quantity > 0")
  end,

  down = function(op)
    op.drop_table("order_items")
    op.drop_table("orders")
    op.drop_table("customers")
  end,
}
