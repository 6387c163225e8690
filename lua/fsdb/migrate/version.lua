--- fsdb.migrate.version — the version table (Alembic's alembic_version).
--
-- One object owns every statement on the table: creating it, reading its
-- rows, and writing the change from one row set to another — after a
-- revision (inside the revision's transaction) or as a stamp (a
-- transaction of its own). The table and its rows are Alembic's, so a
-- database can go back and forth between the two tools:
--
--   CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,
--     CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))
--
-- exec(sql, params) is the run context's statement runner (online: the
-- connection; --sql: print). Failures are `nil, failure` where failure is
-- { op = "version table", sql =, params =, err =, errno =, sqlstate = }.

local graph_mod = require("fsdb.migrate.graph")
local sqltext = require("fsdb.sqltext")

local _M = {}

local V = {}
V.__index = V

local function quote(name)
  return sqltext.ident(name)
end

--- A version table by name.
-- syntax: vt = version.new("alembic_version")
function _M.new(name)
  local t = quote(name)
  return setmetatable({
    name = name,
    sql = {
      create = ("CREATE TABLE IF NOT EXISTS %s (version_num VARCHAR(32) NOT NULL, CONSTRAINT %s "
        .. "PRIMARY KEY (version_num))"):format(t, quote(name .. "_pkc")),
      select = ("SELECT version_num FROM %s"):format(t),
      insert = ("INSERT INTO %s (version_num) VALUES (?)"):format(t),
      update = ("UPDATE %s SET version_num = ? WHERE version_num = ?"):format(t),
      delete = ("DELETE FROM %s WHERE version_num = ?"):format(t),
      purge = ("DELETE FROM %s"):format(t),
    },
  }, V)
end

--- Creates the table when it is missing.
-- syntax: res, err, errno, sqlstate = vt:create(exec)
function V:create(exec)
  return exec(self.sql.create)
end

--- The rows ({} when the table does not exist yet: second value true), in
--- the graph's order (unknown ids last, by id).
-- syntax: rows, missing | nil, err, errno, sqlstate = vt:read(conn, graph)
function V:read(conn, g)
  local res, err, errno, sqlstate = conn:execute(self.sql.select)
  if not res then
    if errno == 1146 then return {}, true end
    return nil, err, errno, sqlstate
  end
  local rows = {}
  for _, r in ipairs(res) do rows[#rows + 1] = r.version_num end
  table.sort(rows, function(a, b)
    local pa, pb = g and g.pos[a], g and g.pos[b]
    if pa and pb then return pa < pb end
    if pa or pb then return pb == nil end
    return a < b
  end)
  return rows, false
end

local function failure(sql, params, err, errno, sqlstate)
  return nil, { op = "version table", sql = sql, params = params, err = err, errno = errno,
                sqlstate = sqlstate }
end

--- Writes the change from rows `old` to rows `new` (purge: empty the
--- table, then insert `new`). online checks that each UPDATE and DELETE
--- matched exactly one row, as Alembic does.
-- syntax: ok | nil, failure = vt:write(exec, old, new, { purge =, online = })
function V:write(exec, old, new, opts)
  opts = opts or {}
  local changes
  if opts.purge then
    changes = { { "purge" } }
    for _, r in ipairs(new) do changes[#changes + 1] = { "insert", r } end
  else
    changes = graph_mod.row_changes(old, new)
  end
  local s = self.sql
  for _, c in ipairs(changes) do
    local sql, params
    if c[1] == "purge" then sql = s.purge
    elseif c[1] == "update" then sql, params = s.update, { c[3], c[2] }
    elseif c[1] == "delete" then sql, params = s.delete, { c[2] }
    else sql, params = s.insert, { c[2] } end
    local res, err, errno, sqlstate = exec(sql, params)
    if not res then return failure(sql, params, err, errno, sqlstate) end
    if opts.online and (c[1] == "update" or c[1] == "delete") and res.affected_rows ~= 1 then
      return failure(sql, params, ("Online migration expected to match one row when %s '%s'%s in '%s'; "
        .. "%s found"):format(c[1] == "update" and "updating" or "deleting", c[2],
        c[3] and (" to '" .. c[3] .. "'") or "", self.name, tostring(res.affected_rows)))
    end
  end
  return true
end

--- A stamp: the change from `old` to `new` in a transaction of its own.
--- Nothing is written unless START TRANSACTION succeeded; a failed write
--- rolls back.
-- syntax: ok | nil, failure = vt:stamp(exec, old, new, { purge =, online = })
function V:stamp(exec, old, new, opts)
  local res, err, errno, sqlstate = exec("START TRANSACTION")
  if not res then return failure("START TRANSACTION", nil, err, errno, sqlstate) end
  local ok, f = self:write(exec, old, new, opts)
  if not ok then
    exec("ROLLBACK")
    return nil, f
  end
  res, err, errno, sqlstate = exec("COMMIT")
  if not res then return failure("COMMIT", nil, err, errno, sqlstate) end
  return true
end

return _M
