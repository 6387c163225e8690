-- add categories.slug, filled in for the existing rows
--
-- Revision ID: c3d8f0a61e25
-- Revises: 9b7e51d3a2c8
-- Create Date: 2024-03-18 14:05:00
--
-- A NOT NULL column added to a table that already has rows, in three
-- steps inside one revision: add it as NULL, backfill it from the data,
-- then make it NOT NULL and unique. (Adding it as NOT NULL at once would
-- give every existing row '' and the unique key would then fail.)

return {
  revision = "c3d8f0a61e25",
  down_revision = "9b7e51d3a2c8",
  branch_labels = nil,
  depends_on = nil,
  message = "add categories.slug, filled in for the existing rows",

  up = function(op)
    op.add_column("categories", { "slug", "VARCHAR(100)", nullable = true })
    -- "Living Room Sofas" → "living-room-sofas"
    op.execute("UPDATE categories SET slug = LOWER(REPLACE(TRIM(name), ' ', '-')) WHERE slug IS NULL")
    op.alter_column("categories", "slug", { existing_type = "VARCHAR(100)", nullable = false })
    op.create_unique_constraint("uq_categories_slug", "categories", { "slug" })
  end,

  down = function(op)
    op.drop_constraint("uq_categories_slug", "categories", "unique")
    op.drop_column("categories", "slug")
  end,
}
