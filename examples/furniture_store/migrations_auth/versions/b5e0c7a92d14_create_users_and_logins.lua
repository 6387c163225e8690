-- create users and logins (the auth database)
--
-- Revision ID: b5e0c7a92d14
-- Revises:
-- Create Date: 2024-03-04 09:15:00

return {
  revision = "b5e0c7a92d14",
  down_revision = nil,
  branch_labels = nil,
  depends_on = nil,
  message = "create users and logins",

  up = function(op)
    op.create_table("users", {
      { "id", "INT UNSIGNED", primary_key = true, auto_increment = true },
      { "customer_id", "INT UNSIGNED", nullable = false },
      { "email", "VARCHAR(254)", nullable = false },
      { "password_salt", "CHAR(32)", nullable = false },
      { "password_hash", "CHAR(64)", nullable = false },
      { "created_at", "DATETIME", nullable = false, default = op.raw("CURRENT_TIMESTAMP") },
      { "last_login_at", "DATETIME", nullable = true },
    }, {
      unique = { { columns = { "email" } }, { columns = { "customer_id" } } },
    })

    op.create_table("logins", {
      { "id", "BIGINT UNSIGNED", primary_key = true, auto_increment = true },
      { "user_id", "INT UNSIGNED", nullable = false },
      { "succeeded", "BOOLEAN", nullable = false, default = true },
      { "at", "DATETIME", nullable = false, default = op.raw("CURRENT_TIMESTAMP") },
    }, {
      indexes = { { columns = { "user_id", "at" } } },
      foreign_keys = {
        { columns = { "user_id" }, ref_table = "users", ref_columns = { "id" }, ondelete = "CASCADE" },
      },
    })
  end,

  down = function(op)
    op.drop_table("logins")
    op.drop_table("users")
  end,
}
