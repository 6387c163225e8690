--- fsdb — a database layer for Lua over MySQL and MariaDB.
--
--   local fsdb = require("fsdb")
--   local engine = fsdb.engine.new("mysql://user:pass@127.0.0.1/shop")
--   local rows = assert(engine:execute("SELECT id, name FROM products WHERE price < ?", 100))

local core = require("fsdb.core")

local _M = {
  _VERSION = core.version,
  --- SQL NULL: a light userdata equal to cjson.null and ngx.null.
  null = core.null,
  engine = require("fsdb.engine"),
  url = require("fsdb.url"),
  config = require("fsdb.config"),
  client_version = core.client_version,
}

--- True for SQL NULL as fsdb returns it (and for nil).
-- syntax: b = fsdb.is_null(v)
function _M.is_null(v)
  return v == nil or v == core.null
end

return _M
