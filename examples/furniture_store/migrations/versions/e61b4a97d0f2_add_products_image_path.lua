-- add products.image_path (images as files, the recommended way)
--
-- Revision ID: e61b4a97d0f2
-- Revises: c3d8f0a61e25
-- Create Date: 2024-04-02 10:30:00
--
-- products.image (LONGBLOB) keeps the bytes in the database: it works, but
-- every page that shows a product drags the image through the database
-- and the backups grow with every upload. The usual design keeps the file
-- on disk (or in an object store) and only its path here.

return {
  revision = "e61b4a97d0f2",
  down_revision = "c3d8f0a61e25",
  branch_labels = nil,
  depends_on = nil,
  message = "add products.image_path (images as files)",

  up = function(op)
    op.add_column("products", { "image_path", "VARCHAR(500)", nullable = true,
                                comment = "path of the image file (recommended)" })
  end,

  down = function(op)
    op.drop_column("products", "image_path")
  end,
}
