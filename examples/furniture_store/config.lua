--- Where the furniture store finds its two databases.
---
---   main: DATABASE_URL, else DB_USER / DB_PASSWORD / DB_HOST / DB_PORT /
---         DB_NAME / DB_SOCKET, else the same in ./.env (fsdb's own rules);
---   auth: DATABASE_URL_AUTH, else the main URL with "_auth" appended to
---         the database name (store → store_auth), on the same server with
---         the same account.
---
--- Both come back as URLs; nothing here connects. Used by store.lua and by
--- migrations_auth/env.lua, so the store and `fsdb upgrade` agree.

local fsdb_config = require("fsdb.config")

local config = {}

--- What is appended to the main database's name for the auth database.
config.AUTH_SUFFIX = "_auth"

-- scheme://authority/database?query → the three parts ("" when absent).
local function split(url)
  return url:match("^([%a][%w+.-]*://[^/?#]*)/?([^?#]*)(.*)$")
end

--- The database name in a URL (percent-encoded as written), or nil.
-- syntax: name = config.database_of(url)
function config.database_of(url)
  local _, db = split(url)
  if db == nil or db == "" then return nil end
  return db
end

--- The URL with another database name; options and credentials kept.
-- syntax: url = config.with_database(url, name)
function config.with_database(url, name)
  local authority, _, rest = split(url)
  if not authority then
    error("config.with_database: not a URL", 2)
  end
  return authority .. "/" .. name .. rest
end

--- The main database's URL, from the environment (see above); dotenv is
--- the .env file to read (default ./.env).
-- syntax: url, err = config.main_url(getenv, dotenv)
function config.main_url(getenv, dotenv)
  return fsdb_config.url_from_env(getenv or os.getenv, dotenv)
end

--- The auth database's URL: DATABASE_URL_AUTH, else derived from the main
--- URL given (or from main_url(getenv, dotenv)).
-- syntax: url, err = config.auth_url(getenv, main_url, dotenv)
function config.auth_url(getenv, main_url, dotenv)
  getenv = getenv or os.getenv
  local v = getenv("DATABASE_URL_AUTH")
  if v and v ~= "" then return v end
  local main, err = main_url, nil
  if main == nil then
    main, err = config.main_url(getenv, dotenv)
    if not main then return nil, err end
  end
  local db = config.database_of(main)
  if not db then
    return nil, "furniture store: the main database URL names no database, so the auth database "
      .. "cannot be derived from it; set DATABASE_URL_AUTH"
  end
  return config.with_database(main, db .. config.AUTH_SUFFIX)
end

return config
