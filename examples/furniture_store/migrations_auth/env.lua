-- The migrations environment of the furniture store's `auth` database
-- (users and their logins; a bind of its own, like the store's
-- SQLALCHEMY_BINDS = {"auth": …}). Run from the checkout:
--
--   bin/fsdb upgrade -d examples/furniture_store/migrations_auth
--
-- The database comes from --url, else the same place the store takes it
-- from (../config.lua): DATABASE_URL_AUTH, else the main database's URL
-- with "_auth" appended to the database name.

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

return {
  bind = "auth",

  url = function()
    local config = dofile(here .. "/../config.lua")
    local url, err = config.auth_url()
    if not url then error(err, 0) end
    return url
  end,

  version_table = "alembic_version",

  -- The tables of the auth bind in ../schema.lua.
  schema = function()
    return dofile(here .. "/../schema.lua")
  end,

  drop_tables = false,
  lock_timeout = 60,
}
