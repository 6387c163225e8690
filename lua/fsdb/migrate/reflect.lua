--- fsdb.migrate.reflect — reads the schema of the current database
--- (Alembic's autogenerate "reflection") from information_schema:
--- TABLES, COLUMNS, STATISTICS, KEY_COLUMN_USAGE and
--- REFERENTIAL_CONSTRAINTS of DATABASE(), leaving the version table out.
--
--   local db, err, errno, sqlstate = reflect.database(conn, "alembic_version")
--
-- db = { name, mariadb, order = {table names}, tables = { [name] = { name,
-- engine, charset, collate, comment, row_format (when asked for at
-- creation), actual_row_format, columns, column_index, primary_key,
-- indexes, index_by_name, foreign_keys, fk_by_name } } }.

local core = require("fsdb.core")
local model = require("fsdb.migrate.model")
local types = require("fsdb.migrate.types")

local NULL = core.null
local normalize_type, display_type = types.normalize_type, types.display_type
local reflected_default, default_value = types.reflected_default, types.default_value
local is_numeric, on_update_canon = types.is_numeric, types.on_update_canon

local _M = {}

---------------------------------------------------------------------------
-- Reading the database.

local function query(conn, sql)
  local res, err, errno, sqlstate = conn:execute(sql)
  if not res then return nil, err, errno, sqlstate end
  return res
end

local function str(v)
  if v == nil or v == NULL then return nil end
  return tostring(v)
end

function _M.database(conn, version_table)
  local info, err, errno, sqlstate = query(conn, "SELECT DATABASE() AS db, VERSION() AS version")
  if not info then return nil, err, errno, sqlstate end
  local dbname = str(info[1].db)
  if not dbname then
    return nil, "fsdb: autogenerate needs a current database, and the connection has none;"
      .. " put the database name in the URL"
  end
  local mariadb = (str(info[1].version) or ""):find("MariaDB", 1, true) ~= nil
  local db = { name = dbname, mariadb = mariadb, tables = {}, order = {} }

  local rows
  rows, err, errno, sqlstate = query(conn,
    "SELECT TABLE_NAME AS name, ENGINE AS engine, TABLE_COLLATION AS collation, TABLE_COMMENT AS comment,"
    .. " ROW_FORMAT AS row_format, CREATE_OPTIONS AS create_options"
    .. " FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
    .. " AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')"
    .. " ORDER BY TABLE_NAME")
  if not rows then return nil, err, errno, sqlstate end
  for _, r in ipairs(rows) do
    local name = str(r.name)
    if name ~= version_table then
      local collation = str(r.collation)
      db.tables[name] = {
        name = name, engine = str(r.engine), collate = collation,
        charset = collation and (collation == "binary" and "binary" or collation:match("^([^_]+)")),
        comment = str(r.comment), columns = {}, column_index = {}, primary_key = {},
        -- ROW_FORMAT is what the table has; CREATE_OPTIONS says whether
        -- it was asked for (only then does a recreated table name it)
        actual_row_format = str(r.row_format),
        row_format = (str(r.create_options) or ""):lower():match("row_format=([%w_]+)"),
        indexes = {}, index_by_name = {}, foreign_keys = {}, fk_by_name = {},
      }
      db.order[#db.order + 1] = name
    end
  end

  rows, err, errno, sqlstate = query(conn,
    "SELECT TABLE_NAME AS tname, COLUMN_NAME AS name, COLUMN_TYPE AS ctype, IS_NULLABLE AS nullable,"
    .. " COLUMN_DEFAULT AS cdefault, EXTRA AS extra, COLUMN_COMMENT AS comment"
    .. " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
    .. " ORDER BY TABLE_NAME, ORDINAL_POSITION")
  if not rows then return nil, err, errno, sqlstate end
  for _, r in ipairs(rows) do
    local t = db.tables[str(r.tname)]
    if t then
      local ctype = str(r.ctype)
      local ntype = normalize_type(ctype, mariadb)
      local extra = (str(r.extra) or ""):lower()
      local default = reflected_default(r.cdefault, extra, mariadb)
      local on_update = extra:match("on update ([%w_]+%(?%d*%)?)")
      local comment = str(r.comment)
      local col = {
        name = str(r.name),
        type = display_type(ctype),
        ntype = ntype,
        nullable = str(r.nullable) == "YES",
        dcanon = default,
        default = default_value(default, is_numeric(ntype)),
        auto_increment = extra:find("auto_increment", 1, true) ~= nil,
        on_update = on_update and model.raw(on_update:upper():gsub("%(%)$", "")) or nil,
        comment = comment ~= "" and comment or nil,
        generated = extra:find("virtual generated", 1, true) ~= nil or extra:find("stored generated", 1, true) ~= nil
          or extra:find("persistent generated", 1, true) ~= nil,
      }
      col.ocanon = on_update_canon(col.on_update)
      t.columns[#t.columns + 1] = col
      t.column_index[col.name] = col
    end
  end

  rows, err, errno, sqlstate = query(conn,
    "SELECT TABLE_NAME AS tname, INDEX_NAME AS name, NON_UNIQUE AS non_unique, COLUMN_NAME AS col,"
    .. " SUB_PART AS sub_part FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
    .. " ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX")
  if not rows then return nil, err, errno, sqlstate end
  for _, r in ipairs(rows) do
    local t = db.tables[str(r.tname)]
    if t then
      local name = str(r.name)
      local col = str(r.col)
      if name == "PRIMARY" then
        t.primary_key[#t.primary_key + 1] = col
      else
        local ix = t.index_by_name[name]
        if not ix then
          ix = { name = name, columns = {}, unique = tonumber(tostring(r.non_unique)) == 0 }
          t.index_by_name[name] = ix
          t.indexes[#t.indexes + 1] = ix
        end
        if col == nil or str(r.sub_part) ~= nil then
          ix.partial = true
        end
        ix.columns[#ix.columns + 1] = col or "?"
      end
    end
  end

  rows, err, errno, sqlstate = query(conn,
    "SELECT k.TABLE_NAME AS tname, k.CONSTRAINT_NAME AS name, k.COLUMN_NAME AS col,"
    .. " k.REFERENCED_TABLE_SCHEMA AS ref_schema, k.REFERENCED_TABLE_NAME AS ref_table,"
    .. " k.REFERENCED_COLUMN_NAME AS ref_col, r.UPDATE_RULE AS onupdate, r.DELETE_RULE AS ondelete"
    .. " FROM information_schema.KEY_COLUMN_USAGE k"
    .. " JOIN information_schema.REFERENTIAL_CONSTRAINTS r"
    .. " ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME"
    .. " AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME"
    .. " WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL"
    .. " ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION")
  if not rows then return nil, err, errno, sqlstate end
  for _, r in ipairs(rows) do
    local t = db.tables[str(r.tname)]
    if t then
      local name = str(r.name)
      local fk = t.fk_by_name[name]
      if not fk then
        local ref_schema = str(r.ref_schema)
        local ref_table = str(r.ref_table)
        if ref_schema and ref_schema ~= dbname then ref_table = ref_schema .. "." .. ref_table end
        fk = {
          name = name, columns = {}, ref_table = ref_table, ref_columns = {},
          ondelete = str(r.ondelete), onupdate = str(r.onupdate),
          other_schema = ref_schema ~= nil and ref_schema ~= dbname,
        }
        t.fk_by_name[name] = fk
        t.foreign_keys[#t.foreign_keys + 1] = fk
      end
      fk.columns[#fk.columns + 1] = str(r.col)
      fk.ref_columns[#fk.ref_columns + 1] = str(r.ref_col)
    end
  end
  return db
end


return _M
