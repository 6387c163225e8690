-- The migrations environment of the furniture store's main database (the
-- default bind). Run from the checkout:
--
--   bin/fsdb upgrade -d examples/furniture_store/migrations
--   bin/fsdb migrate -d examples/furniture_store/migrations -m "…"
--
-- The database comes from --url, else DATABASE_URL (or DB_USER, DB_PASSWORD,
-- DB_HOST, DB_PORT, DB_NAME, DB_SOCKET), else ./.env — as for the store.

-- This file's directory, so that it works from any working directory.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

return {
  version_table = "alembic_version",

  -- What `fsdb migrate` compares with the database: the tables of the
  -- default bind in ../schema.lua.
  schema = function()
    return dofile(here .. "/../schema.lua")
  end,

  -- Never propose dropping a table schema.lua does not declare (the
  -- default; tables of other applications in the same database are safe).
  drop_tables = false,

  lock_timeout = 60,
}
