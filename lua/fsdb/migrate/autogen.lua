--- fsdb.migrate.autogen — compares a schema declared in Lua (fsdb.schema)
--- with the live database and proposes the op calls that close the gap.
--
--   local diffs, err = autogen.compare(conn, schema, { version_table = "alembic_version" })
--   local up, down = autogen.render(diffs)   -- bodies of up(op) and down(op)
--
-- What it reads: information_schema.TABLES, COLUMNS, STATISTICS,
-- KEY_COLUMN_USAGE and REFERENTIAL_CONSTRAINTS of DATABASE(), never the
-- version table. What it compares: tables, columns (type, nullability,
-- default, ON UPDATE, comment, auto_increment), indexes and unique
-- constraints, foreign keys. Server spellings are normalised before
-- comparing (int(10) unsigned = INT UNSIGNED, tinyint(1) = BOOLEAN,
-- current_timestamp() = CURRENT_TIMESTAMP, '…' quoting of defaults, …), so
-- a table made by op.create_table from a declaration compares equal to it.
--
-- Safety: a table that is in the database but not declared is never
-- dropped unless asked (opts.drop_tables, or include_object returning true
-- for it), and an empty declaration against a database with tables is an
-- error rather than "drop everything". What is deliberately not proposed
-- (kept tables, primary key changes, …) is listed in diffs.notes and in a
-- comment at the top of the rendered code.

local core = require("fsdb.core")
local ops = require("fsdb.migrate.ops")
local sqltext = require("fsdb.sqltext")
local schema_mod = require("fsdb.schema")

local NULL = core.null
local NO_DEFAULT = ops.no_default

local _M = {}

---------------------------------------------------------------------------
-- Text helpers.

-- Applies fn to the parts of s outside '…' literals; literals are kept.
local function outside_quotes(s, fn)
  local out, i, n, start = {}, 1, #s, 1
  while i <= n do
    if s:sub(i, i) == "'" then
      out[#out + 1] = fn(s:sub(start, i - 1))
      local j = i + 1
      while j <= n do
        local d = s:sub(j, j)
        if d == "\\" then
          j = j + 2
        elseif d == "'" then
          if s:sub(j + 1, j + 1) == "'" then j = j + 2 else break end
        else
          j = j + 1
        end
      end
      out[#out + 1] = s:sub(i, j)
      i = j + 1
      start = i
    else
      i = i + 1
    end
  end
  out[#out + 1] = fn(s:sub(start))
  return table.concat(out)
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Whole-string parentheses go: "((1 + 1))" → "1 + 1".
local function strip_parens(s)
  while s:match("^%b()$") do
    s = trim(s:sub(2, -2))
  end
  return s
end

local function is_number_text(s)
  return s:match("^[-+]?%.?%d") ~= nil and not s:match("^[-+]?0[xX]") and tonumber(s) ~= nil
end

-- The body of a '…' literal as MySQL prints it, back to its value.
local ESCAPES = { n = "\n", t = "\t", r = "\r", ["0"] = "\0", Z = "\26", b = "\b" }
local function unquote(body)
  local out, i, n = {}, 1, #body
  while i <= n do
    local c = body:sub(i, i)
    if c == "\\" and i < n then
      local d = body:sub(i + 1, i + 1)
      out[#out + 1] = ESCAPES[d] or d
      i = i + 2
    elseif c == "'" and body:sub(i + 1, i + 1) == "'" then
      out[#out + 1] = "'"
      i = i + 2
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Types.

local INT_TYPES = { tinyint = true, smallint = true, mediumint = true, int = true, bigint = true }
local NUMERIC_TYPES = {
  tinyint = true, smallint = true, mediumint = true, int = true, bigint = true,
  decimal = true, float = true, double = true,
}
local SYNONYMS = {
  integer = "int", int1 = "tinyint", int2 = "smallint", int3 = "mediumint",
  middleint = "mediumint", int4 = "int", int8 = "bigint",
  dec = "decimal", numeric = "decimal", fixed = "decimal",
  real = "double", float4 = "float", float8 = "double",
  bool = "tinyint", boolean = "tinyint",
}

--- A column type in one canonical spelling, for comparing declared and
--- reflected types: lower case outside quoted values, no display widths
--- on integers (but tinyint(1), which is BOOLEAN), synonyms resolved,
--- implied lengths written out, JSON = LONGTEXT on MariaDB.
-- syntax: s = autogen.normalize_type(type_text, is_mariadb)
function _M.normalize_type(s, mariadb)
  local t = outside_quotes(s, function(p)
    p = p:lower():gsub("%s+", " ")
    p = p:gsub("%s*%(%s*", "("):gsub("%s*,%s*", ","):gsub("%s*%)", ")")
    p = p:gsub(" ?character set [%w_]+", ""):gsub(" ?charset [%w_]+", ""):gsub(" ?collate [%w_]+", "")
    return p
  end)
  t = trim(t)
  local base, args, rest = t:match("^([%a_][%w_]*)(%b())(.*)$")
  if not base then
    base, rest = t:match("^([%a_][%w_]*)(.*)$")
    if not base then return t end
  end
  rest = " " .. trim(rest) .. " "
  local from = base
  base = SYNONYMS[base] or base
  if (from == "bool" or from == "boolean") and not args then args = "(1)" end
  if base == "double" then rest = rest:gsub(" precision ", " ") end
  if from == "character" and rest:match("^ varying ") then
    base, rest = "varchar", rest:gsub("^ varying ", " ")
  end
  rest = rest:gsub(" signed ", " ")
  if INT_TYPES[base] then
    if not (base == "tinyint" and args == "(1)") then args = nil end
    if rest:find(" zerofill ", 1, true) and not rest:find(" unsigned ", 1, true) then
      rest = rest:gsub(" zerofill ", " unsigned zerofill ")
    end
  elseif base == "decimal" then
    if not args then
      args = "(10,0)"
    elseif args:match("^%(%d+%)$") then
      args = args:sub(1, -2) .. ",0)"
    end
  elseif base == "float" and args and args:match("^%(%d+%)$") then
    if tonumber(args:match("%d+")) > 24 then base = "double" end
    args = nil
  elseif base == "char" or base == "binary" or base == "bit" then
    args = args or "(1)"
  elseif base == "year" then
    if args == "(4)" then args = nil end
  elseif base == "datetime" or base == "timestamp" or base == "time" then
    if args == "(0)" then args = nil end
  elseif base == "json" and mariadb then
    base = "longtext"
  end
  rest = trim(rest:gsub("%s+", " "))
  return base .. (args or "") .. (rest ~= "" and " " .. rest or "")
end

local normalize_type = _M.normalize_type

local function is_numeric(ntype)
  return NUMERIC_TYPES[ntype:match("^[%a_]+") or ""] == true
end

-- A reflected type as it is written back into generated code: upper
-- case, without the integer display widths MySQL 8 deprecates
-- (int(10) unsigned → INT UNSIGNED; tinyint(1) and ZEROFILL keep theirs).
local function display_type(ctype)
  local t = outside_quotes(ctype, function(p) return p:upper() end)
  local base, width, rest = t:match("^(%a+)(%(%d+%))(.*)$")
  if base and INT_TYPES[base:lower()] and not rest:find("ZEROFILL", 1, true)
    and not (base == "TINYINT" and width == "(1)") then
    return base .. rest
  end
  return t
end

---------------------------------------------------------------------------
-- Defaults. A default is {kind = "none" | "null" | "literal" | "expr",
-- value = canonical text, text = SQL as written}.

local TIMESTAMP_FUNCS = {
  current_timestamp = true, now = true, localtime = true, localtimestamp = true,
}

--- An SQL expression in one canonical spelling: lower case outside quotes,
--- no spaces around punctuation, outer parentheses removed,
--- now()/current_timestamp()/localtimestamp → current_timestamp.
-- syntax: s = autogen.normalize_expr(sql)
function _M.normalize_expr(s)
  s = outside_quotes(trim(s), function(p)
    return (p:lower():gsub("%s+", " "):gsub(" ?([^%w_ ]) ?", "%1"))
  end)
  s = strip_parens(s)
  local name, arg = s:match("^([%a_]+)%((%d*)%)$")
  if not name then
    name, arg = s:match("^([%a_]+)$"), ""
  end
  if name and TIMESTAMP_FUNCS[name] then
    if arg ~= "" and tonumber(arg) ~= 0 then
      return "current_timestamp(" .. arg .. ")"
    end
    return "current_timestamp"
  end
  return s
end

local normalize_expr = _M.normalize_expr

-- SQL default text as MariaDB prints it (and as op.raw holds it).
local function parse_sql_default(text)
  local s = strip_parens(trim(text))
  if s:upper() == "NULL" then
    return { kind = "null", text = "NULL" }
  end
  local lit = s:match("^'(.*)'$") or s:match("^_[%w]+'(.*)'$")
  if lit and not lit:gsub("''", ""):gsub("\\.", ""):find("'", 1, true) then
    return { kind = "literal", value = unquote(lit), text = s }
  end
  if is_number_text(s) then
    return { kind = "literal", value = s, text = s }
  end
  return { kind = "expr", value = normalize_expr(s), text = trim(text) }
end

-- information_schema.COLUMNS.COLUMN_DEFAULT: MariaDB (10.2.7+) quotes
-- string literals and writes NULL for a NULL default; MySQL writes
-- literals bare and marks expressions DEFAULT_GENERATED in EXTRA.
local function reflected_default(text, extra, mariadb)
  if text == nil or text == NULL then
    return { kind = "none" }
  end
  if mariadb then
    return parse_sql_default(text)
  end
  local e = normalize_expr(text)
  if extra:find("default_generated", 1, true) or e:match("^current_timestamp") then
    return { kind = "expr", value = e, text = text }
  end
  return { kind = "literal", value = text, text = text }
end

local function declared_default(v)
  if v == nil or v == NO_DEFAULT then
    return { kind = "none" }
  elseif v == NULL then
    return { kind = "null", text = "NULL" }
  elseif ops.is_raw(v) then
    return parse_sql_default(v.sql)
  elseif type(v) == "boolean" then
    return { kind = "literal", value = v and "1" or "0", text = v and "1" or "0" }
  elseif type(v) == "number" then
    local s = sqltext.number_text(v)
    return { kind = "literal", value = s, text = s }
  end
  return { kind = "literal", value = v, text = sqltext.literal(v) }
end

local function same_default(a, b, numeric)
  local ka = a.kind == "none" and "null" or a.kind
  local kb = b.kind == "none" and "null" or b.kind
  if ka ~= kb then return false end
  if ka == "null" then return true end
  if a.value == b.value then return true end
  if ka == "literal" and numeric then
    local x, y = tonumber(a.value), tonumber(b.value)
    return x ~= nil and x == y
  end
  return false
end

-- A canonical default back to what op takes.
local function default_value(d, numeric)
  if d.kind == "none" or d.kind == "null" then return nil end
  if d.kind == "literal" then
    if numeric and d.value:match("^-?%d+$") and #d.value <= 15 then
      return tonumber(d.value)
    end
    return d.value
  end
  local arg = d.value:match("^current_timestamp(.*)$")
  if arg then return ops.raw("CURRENT_TIMESTAMP" .. arg:upper()) end
  local text = d.text
  if not text:match("^%(.*%)$") then text = "(" .. text .. ")" end
  return ops.raw(text)
end

local function default_text(d)
  if d.kind == "none" then return "(none)" end
  if d.kind == "null" then return "NULL" end
  if d.kind == "expr" then return d.value:upper() end
  return d.text or sqltext.literal(d.value)
end

local function on_update_canon(raw)
  if raw == nil then return nil end
  return normalize_expr(raw.sql)
end

---------------------------------------------------------------------------
-- Lua source.

local function lua_string(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c)
    if c == "\\" then return "\\\\" end
    if c == '"' then return '\\"' end
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    if c == "\r" then return "\\r" end
    return ("\\%03d"):format(c:byte())
  end) .. '"'
end

local function lua_value(v)
  local t = type(v)
  if v == nil then return "nil" end
  if t == "string" then return lua_string(v) end
  if t == "number" then return sqltext.number(v) end
  if t == "boolean" then return tostring(v) end
  if v == NULL then return "op.null" end
  if v == NO_DEFAULT then return "op.no_default" end
  if ops.is_raw(v) then return "op.raw(" .. lua_string(v.sql) .. ")" end
  if t == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = lua_value(v[i]) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  error("fsdb: autogenerate: cannot render a " .. t, 0)
end

-- {"name", "TYPE", key = value, …}; pk_member: part of the primary key
-- (nullable then defaults to false).
local function column_lua(col, pk_member)
  local parts = { lua_string(col.name), lua_string(col.type) }
  if col.primary_key then parts[#parts + 1] = "primary_key = true" end
  if col.auto_increment then parts[#parts + 1] = "auto_increment = true" end
  if col.nullable == (pk_member and true or false) then
    parts[#parts + 1] = "nullable = " .. tostring(col.nullable)
  end
  if col.default ~= nil and col.default ~= NO_DEFAULT then
    parts[#parts + 1] = "default = " .. lua_value(col.default)
  end
  if col.on_update then parts[#parts + 1] = "on_update = " .. lua_value(col.on_update) end
  if col.unique then parts[#parts + 1] = "unique = true" end
  if col.comment and col.comment ~= "" then parts[#parts + 1] = "comment = " .. lua_value(col.comment) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function is_default_rule(r)
  return r == nil or r == "RESTRICT" or r == "NO ACTION"
end

local function fk_lua(fk)
  local parts = {
    "name = " .. lua_string(fk.name),
    "columns = " .. lua_value(fk.columns),
    "ref_table = " .. lua_string(fk.ref_table),
    "ref_columns = " .. lua_value(fk.ref_columns),
  }
  if not is_default_rule(fk.ondelete) then parts[#parts + 1] = "ondelete = " .. lua_string(fk.ondelete) end
  if not is_default_rule(fk.onupdate) then parts[#parts + 1] = "onupdate = " .. lua_string(fk.onupdate) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function fk_opts_lua(fk)
  local parts = {}
  if not is_default_rule(fk.ondelete) then parts[#parts + 1] = "ondelete = " .. lua_string(fk.ondelete) end
  if not is_default_rule(fk.onupdate) then parts[#parts + 1] = "onupdate = " .. lua_string(fk.onupdate) end
  if #parts == 0 then return "" end
  return ", {" .. table.concat(parts, ", ") .. "}"
end

-- op.create_table(...) over several lines. t: {name, columns, primary_key,
-- primary_key_given, indexes, unique, foreign_keys, engine, charset,
-- collate, comment}; skip_fk: names of foreign keys left out.
local function create_table_lua(t, skip_fk)
  local pk = {}
  for _, c in ipairs(t.primary_key) do pk[c] = true end
  local lines = { "op.create_table(" .. lua_string(t.name) .. ", {" }
  for _, col in ipairs(t.columns) do
    lines[#lines + 1] = "  " .. column_lua(col, pk[col.name]) .. ","
  end
  local opt = {}
  if t.primary_key_given then
    opt[#opt + 1] = "  primary_key = " .. lua_value(t.primary_key) .. ","
  end
  local function list(key, items, render)
    if #items == 0 then return end
    opt[#opt + 1] = "  " .. key .. " = {"
    for _, item in ipairs(items) do
      opt[#opt + 1] = "    " .. render(item) .. ","
    end
    opt[#opt + 1] = "  },"
  end
  list("unique", t.unique, function(u)
    return ("{name = %s, columns = %s}"):format(lua_string(u.name), lua_value(u.columns))
  end)
  list("indexes", t.indexes, function(ix)
    return ("{name = %s, columns = %s%s}"):format(lua_string(ix.name), lua_value(ix.columns),
      ix.unique and ", unique = true" or "")
  end)
  local fks = {}
  for _, fk in ipairs(t.foreign_keys) do
    if not (skip_fk and skip_fk[fk.name]) then fks[#fks + 1] = fk end
  end
  list("foreign_keys", fks, fk_lua)
  if t.engine and t.engine:lower() ~= "innodb" then
    opt[#opt + 1] = "  engine = " .. lua_string(t.engine) .. ","
  end
  if t.charset and (t.charset ~= "utf8mb4" or (t.collate and t.collate ~= "utf8mb4_unicode_ci")) then
    opt[#opt + 1] = "  charset = " .. lua_string(t.charset) .. ","
    if t.collate then opt[#opt + 1] = "  collate = " .. lua_string(t.collate) .. "," end
  end
  if t.comment and t.comment ~= "" then
    opt[#opt + 1] = "  comment = " .. lua_string(t.comment) .. ","
  end
  if #opt == 0 then
    lines[#lines + 1] = "})"
  else
    lines[#lines + 1] = "}, {"
    for _, l in ipairs(opt) do lines[#lines + 1] = l end
    lines[#lines + 1] = "})"
  end
  return table.concat(lines, "\n")
end

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

local function reflect(conn, version_table)
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
    "SELECT TABLE_NAME AS name, ENGINE AS engine, TABLE_COLLATION AS collation, TABLE_COMMENT AS comment"
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
        on_update = on_update and ops.raw(on_update:upper():gsub("%(%)$", "")) or nil,
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

---------------------------------------------------------------------------
-- Comparing.

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

local function starts_with(list, prefix)
  if #prefix > #list then return false end
  for i = 1, #prefix do
    if list[i] ~= prefix[i] then return false end
  end
  return true
end

local function rule(r)
  if is_default_rule(r) then return "RESTRICT" end
  return r
end

local function same_fk(a, b)
  return same_list(a.columns, b.columns) and a.ref_table == b.ref_table
    and same_list(a.ref_columns, b.ref_columns)
    and rule(a.ondelete) == rule(b.ondelete) and rule(a.onupdate) == rule(b.onupdate)
end

local function qname(t, c)
  if c then return ("`%s`.`%s`"):format(t, c) end
  return ("`%s`"):format(t)
end

-- The state of a column as alter_column sees it.
local function declared_state(col, mariadb)
  local ntype = normalize_type(col.type, mariadb)
  local on_update = col.on_update
  return {
    name = col.name,
    type = col.type,
    ntype = ntype,
    nullable = col.nullable,
    default = col.default,
    dcanon = declared_default(col.default),
    on_update = on_update,
    ocanon = on_update_canon(on_update),
    comment = col.comment ~= "" and col.comment or nil,
    auto_increment = col.auto_increment or false,
  }
end

local ATTRS = {
  { attr = "type", kind = "modify_type", fields = { "type", "ntype" } },
  { attr = "nullable", kind = "modify_nullable", fields = { "nullable" } },
  { attr = "default", kind = "modify_default", fields = { "default", "dcanon" } },
  { attr = "on_update", kind = "modify_on_update", fields = { "on_update", "ocanon" } },
  { attr = "comment", kind = "modify_comment", fields = { "comment" } },
  { attr = "auto_increment", kind = "modify_auto_increment", fields = { "auto_increment" } },
}
local ATTR_BY_KIND = {}
for _, a in ipairs(ATTRS) do ATTR_BY_KIND[a.kind] = a end

local function differs(attr, r, d)
  if attr == "type" then return r.ntype ~= d.ntype end
  if attr == "nullable" then return r.nullable ~= d.nullable end
  if attr == "default" then
    if r.auto_increment or d.auto_increment then return false end
    return not same_default(r.dcanon, d.dcanon, is_numeric(d.ntype))
  end
  if attr == "on_update" then return r.ocanon ~= d.ocanon end
  if attr == "comment" then return (r.comment or "") ~= (d.comment or "") end
  if attr == "auto_increment" then return r.auto_increment ~= d.auto_increment end
end

local function show(attr, s)
  if attr == "type" then return s.type end
  if attr == "nullable" then return s.nullable end
  if attr == "default" then return default_text(s.dcanon) end
  if attr == "on_update" then return s.on_update and s.on_update.sql or "(none)" end
  if attr == "comment" then return s.comment or "" end
  return s.auto_increment
end

-- base with the attributes in `set` taken from other.
local function mix(base, other, set)
  local s = {}
  for k, v in pairs(base) do s[k] = v end
  for _, a in ipairs(ATTRS) do
    if set[a.attr] then
      for _, f in ipairs(a.fields) do s[f] = other[f] end
    end
  end
  return s
end

-- op.alter_column(...) taking a column from `before` to `after`; changed:
-- the attributes that change. Everything else is restated as existing_*,
-- because MySQL's MODIFY rewrites the whole column.
local function alter_lua(tname, cname, before, after, changed)
  local items = {}
  local function add(s) items[#items + 1] = s end
  if changed.type then add("type = " .. lua_string(after.type)) end
  add("existing_type = " .. lua_string(before.type))
  if changed.nullable then add("nullable = " .. tostring(after.nullable)) end
  add("existing_nullable = " .. tostring(before.nullable))
  if changed.default then
    local v = after.default
    if v == nil then v = after.nullable and NULL or NO_DEFAULT end
    add("default = " .. lua_value(v))
  end
  if before.default ~= nil then add("existing_default = " .. lua_value(before.default)) end
  if changed.on_update then
    add("on_update = " .. (after.on_update and lua_value(after.on_update) or "false"))
  end
  if before.on_update then add("existing_on_update = " .. lua_value(before.on_update)) end
  if changed.comment then add("comment = " .. lua_string(after.comment or "")) end
  if before.comment then add("existing_comment = " .. lua_string(before.comment)) end
  if changed.auto_increment then add("auto_increment = " .. tostring(after.auto_increment)) end
  if before.auto_increment then add("existing_auto_increment = true") end
  return ("op.alter_column(%s, %s, {%s})"):format(lua_string(tname), lua_string(cname), table.concat(items, ", "))
end

-- Orders tables so that a table comes after the tables it references
-- (within `set`). Foreign keys that close a cycle are returned apart:
-- they must be added after (or dropped before) the tables.
local function dependency_order(names, tables, set)
  local placed, order, cycle = {}, {}, {}
  local remaining = {}
  for i, n in ipairs(names) do remaining[i] = n end
  local function ready(name)
    for _, fk in ipairs(tables[name].foreign_keys) do
      local ref = fk.ref_table
      if ref ~= name and set[ref] and not placed[ref] and not cycle[fk] then
        return false
      end
    end
    return true
  end
  while #remaining > 0 do
    local pick
    for i, n in ipairs(remaining) do
      if ready(n) then pick = i break end
    end
    if not pick then
      pick = 1
      local name = remaining[1]
      for _, fk in ipairs(tables[name].foreign_keys) do
        if fk.ref_table ~= name and set[fk.ref_table] and not placed[fk.ref_table] then
          cycle[fk] = true
        end
      end
    end
    local name = table.remove(remaining, pick)
    placed[name] = true
    order[#order + 1] = name
  end
  return order, cycle
end

local PHASES = {
  drop_fk = 1, drop_index = 2, drop_unique = 2, add_table = 3, add_column = 4,
  modify_type = 5, modify_nullable = 5, modify_default = 5, modify_on_update = 5,
  modify_comment = 5, modify_auto_increment = 5,
  add_index = 6, add_unique = 6, add_fk = 7, drop_column = 8, drop_table = 9,
}

local COMPARE_KEYS = {
  version_table = true, drop_tables = true, include_object = true, bind = true,
  compare_type = true, compare_default = true, compare_comment = true,
}

local function fk_up(tname, fk)
  return ("op.create_foreign_key(%s, %s, %s, %s, %s%s)"):format(lua_string(fk.name), lua_string(tname),
    lua_string(fk.ref_table), lua_value(fk.columns), lua_value(fk.ref_columns), fk_opts_lua(fk))
end

local function fk_down(tname, fk)
  return ("op.drop_constraint(%s, %s, \"foreignkey\")"):format(lua_string(fk.name), lua_string(tname))
end

local function index_create(tname, ix)
  return ("op.create_index(%s, %s, %s%s)"):format(lua_string(ix.name), lua_string(tname),
    lua_value(ix.columns), ix.unique and ", {unique = true}" or "")
end

local function index_drop(tname, ix)
  return ("op.drop_index(%s, %s)"):format(lua_string(ix.name), lua_string(tname))
end

local function unique_create(tname, u)
  return ("op.create_unique_constraint(%s, %s, %s)"):format(lua_string(u.name), lua_string(tname), lua_value(u.columns))
end

local function unique_drop(tname, u)
  return ("op.drop_constraint(%s, %s, \"unique\")"):format(lua_string(u.name), lua_string(tname))
end

-- Matches the declared foreign keys of a table to the reflected ones.
-- Returns the plan {add = declared keys to create, drop = reflected keys
-- to remove} and the keys as they will be after the migration; those left
-- untouched are marked retained (they pin their indexes).
local function plan_foreign_keys(ctx, def, rt)
  local included = ctx.included
  local plan, final, matched = { add = {}, drop = {} }, {}, {}
  local function keep(r)
    final[#final + 1] = { name = r.name, columns = r.columns, ref_table = r.ref_table,
      ref_columns = r.ref_columns, retained = true }
  end
  local declared_names = {}
  for _, fk in ipairs(def.foreign_keys) do declared_names[fk.name] = true end
  for _, fk in ipairs(def.foreign_keys) do
    if included("foreign_key_constraint", fk.name, false, rt.fk_by_name[fk.name], fk, def.name) then
      local r = rt.fk_by_name[fk.name]
      if r and matched[r] then r = nil end
      if not r then
        -- a key under another (undeclared) name that does the same thing
        -- is adopted as it is, not dropped and re-added
        for _, cand in ipairs(rt.foreign_keys) do
          if not matched[cand] and not declared_names[cand.name] and same_fk(cand, fk) then
            r = cand
            break
          end
        end
      end
      if r then matched[r] = true end
      if r and same_fk(r, fk) then
        keep(r)
      else
        if r then plan.drop[#plan.drop + 1] = r end
        plan.add[#plan.add + 1] = fk
        final[#final + 1] = fk
      end
    end
  end
  for _, r in ipairs(rt.foreign_keys) do
    if not matched[r] then
      if included("foreign_key_constraint", r.name, true, nil, r, def.name) then
        plan.drop[#plan.drop + 1] = r
      else
        keep(r)
      end
    end
  end
  return plan, final
end

-- Columns of a table in both places: added, removed, changed. Returns
-- the set of names of the columns being added.
local function compare_columns(ctx, def, rt)
  local add, note, included = ctx.add, ctx.note, ctx.included
  local tname = def.name
  local new_columns = {}

  for _, col in ipairs(def.columns) do
    local rc = rt.column_index[col.name]
    if not rc then
      if included("column", col.name, false, nil, col, tname) then
        new_columns[col.name] = true
        add({
          kind = "add_column", table = tname, column = col.name,
          description = ("added column %s"):format(qname(tname, col.name)),
          up = ("op.add_column(%s, %s)"):format(lua_string(tname), column_lua(col, col.primary_key)),
          down = ("op.drop_column(%s, %s)"):format(lua_string(tname), lua_string(col.name)),
        })
      end
    elseif rc.generated then
      note(("column %s is a generated column: not compared"):format(qname(tname, col.name)))
    elseif included("column", col.name, false, rc, col, tname) then
      local d = declared_state(col, ctx.mariadb)
      local changed = {}
      for _, a in ipairs(ATTRS) do
        if not ctx.skip[a.attr] and differs(a.attr, rc, d) then
          -- each diff on its own takes the column from the state left by
          -- the ones before it (render merges them into one call)
          local before = mix(rc, d, changed)
          changed[a.attr] = true
          local after = mix(rc, d, changed)
          local only = { [a.attr] = true }
          add({
            kind = a.kind, table = tname, column = col.name,
            from = show(a.attr, rc), to = show(a.attr, d),
            description = ("%s changed on %s: %s -> %s"):format((a.attr:gsub("_", " ")),
              qname(tname, col.name), tostring(show(a.attr, rc)), tostring(show(a.attr, d))),
            up = alter_lua(tname, col.name, before, after, only),
            down = alter_lua(tname, col.name, after, before, only),
            alter = { attr = a.attr, reflected = rc, declared = d },
          })
        end
      end
    end
  end

  for _, rc in ipairs(rt.columns) do
    if not def.column_index[rc.name] then
      if rc.generated then
        note(("column %s is a generated column and not declared: kept"):format(qname(tname, rc.name)))
      elseif included("column", rc.name, true, nil, rc, tname) then
        local spec = {}
        for k, v in pairs(rc) do spec[k] = v end
        spec.primary_key = false
        add({
          kind = "drop_column", table = tname, column = rc.name,
          description = ("removed column %s"):format(qname(tname, rc.name)),
          up = ("op.drop_column(%s, %s)"):format(lua_string(tname), lua_string(rc.name)),
          down = ("op.add_column(%s, %s)"):format(lua_string(tname), column_lua(spec, false)),
        })
      end
    end
  end

  if not same_list(def.primary_key, rt.primary_key) then
    note(("primary key of %s differs (database: %s; declared: %s): not proposed"):format(qname(tname),
      #rt.primary_key > 0 and table.concat(rt.primary_key, ", ") or "none",
      #def.primary_key > 0 and table.concat(def.primary_key, ", ") or "none"))
  end
  return new_columns
end

local function drop_index_diff(tname, rix, description)
  return {
    kind = rix.unique and "drop_unique" or "drop_index", table = tname, name = rix.name,
    description = description,
    up = rix.unique and unique_drop(tname, rix) or index_drop(tname, rix),
    down = rix.unique and unique_create(tname, rix) or index_create(tname, rix),
  }
end

-- Indexes, unique constraints and foreign keys of a table in both places.
local function compare_keys(ctx, def, rt, new_columns)
  local add, note, included = ctx.add, ctx.note, ctx.included
  local tname = def.name
  local plan, final_fks = ctx.fk_plan[tname], ctx.final_fks

  for _, r in ipairs(plan.drop) do
    add({
      kind = "drop_fk", table = tname, name = r.name,
      description = ("removed foreign key %s on %s"):format(r.name, qname(tname)),
      up = fk_down(tname, r), down = fk_up(tname, r),
    })
  end

  -- Indexes as declared: named indexes, unique constraints, and unique
  -- columns (MySQL names that index after the column).
  local wanted, matched = {}, {}
  for _, ix in ipairs(def.indexes) do
    wanted[#wanted + 1] = { name = ix.name, columns = ix.columns, unique = ix.unique, kind = "index" }
  end
  for _, u in ipairs(def.unique) do
    wanted[#wanted + 1] = { name = u.name, columns = u.columns, unique = true, kind = "unique" }
  end
  for _, col in ipairs(def.columns) do
    if col.unique then
      local found
      for _, rix in ipairs(rt.indexes) do
        if rix.unique and not matched[rix] and same_list(rix.columns, { col.name }) then
          if not found or rix.name == col.name then found = rix end
        end
      end
      if found then
        matched[found] = true
      elseif not new_columns[col.name] then
        wanted[#wanted + 1] = { name = col.name, columns = { col.name }, unique = true, kind = "unique" }
      end
    end
  end

  -- The column lists of every index there will be after the migration.
  local remaining = {}
  if #def.primary_key > 0 then remaining[#remaining + 1] = def.primary_key end
  for _, w in ipairs(wanted) do remaining[#remaining + 1] = w.columns end
  for rix in pairs(matched) do remaining[#remaining + 1] = rix.columns end

  local to_add = {}
  for _, w in ipairs(wanted) do
    local rix = rt.index_by_name[w.name]
    if not included(w.kind == "index" and "index" or "unique_constraint", w.name, false, rix, w, tname) then
      if rix then matched[rix] = true end
    elseif rix and rix.partial then
      matched[rix] = true
      note(("index %s on %s uses column prefixes or expressions: not compared"):format(w.name, qname(tname)))
    elseif rix and not matched[rix] then
      matched[rix] = true
      if not same_list(rix.columns, w.columns) or rix.unique ~= w.unique then
        add(drop_index_diff(tname, rix, ("changed index %s on %s (removed)"):format(rix.name, qname(tname))))
        to_add[#to_add + 1] = w
      end
    elseif not rix then
      to_add[#to_add + 1] = w
    end
  end

  -- The index MySQL made for a foreign key that stays is not ours to drop.
  local function implicit(rix)
    if rix.unique then return false end
    for _, fk in ipairs(final_fks[tname]) do
      if fk.name == rix.name and starts_with(rix.columns, fk.columns) then return true end
    end
    return false
  end
  -- A foreign key (of this table, or pointing at it) needs an index that
  -- starts with its columns; MySQL refuses to drop the last one.
  local function needed_by_fk(rix)
    local function only_cover(cols)
      if not starts_with(rix.columns, cols) then return false end
      for _, other in ipairs(remaining) do
        if starts_with(other, cols) then return false end
      end
      return true
    end
    for _, fk in ipairs(final_fks[tname]) do
      if fk.retained and only_cover(fk.columns) then return fk.name end
    end
    for other, fks in pairs(final_fks) do
      for _, fk in ipairs(fks) do
        if fk.retained and fk.ref_table == tname and only_cover(fk.ref_columns) then
          return fk.name .. " of " .. qname(other)
        end
      end
    end
    return nil
  end

  for _, rix in ipairs(rt.indexes) do
    if not matched[rix] then
      if implicit(rix) then
        remaining[#remaining + 1] = rix.columns
      elseif rix.partial then
        note(("index %s on %s uses column prefixes or expressions: not compared"):format(rix.name, qname(tname)))
      else
        local by = needed_by_fk(rix)
        if by then
          remaining[#remaining + 1] = rix.columns
          note(("index %s on %s is not declared but foreign key %s needs it: kept"):format(rix.name,
            qname(tname), by))
        elseif included(rix.unique and "unique_constraint" or "index", rix.name, true, nil, rix, tname) then
          add(drop_index_diff(tname, rix, ("removed %s %s on %s"):format(
            rix.unique and "unique constraint" or "index", rix.name, qname(tname))))
        end
      end
    end
  end

  -- A new foreign key needs an index starting with its columns. MySQL
  -- would make one silently and keep it after DROP FOREIGN KEY, so the
  -- downgrade would leave it behind: create it openly instead, under the
  -- key's name (the name MySQL would give it).
  for _, fk in ipairs(plan.add) do
    local covered = false
    for _, cols in ipairs(remaining) do
      if starts_with(cols, fk.columns) then covered = true end
    end
    if not covered then
      remaining[#remaining + 1] = fk.columns
      to_add[#to_add + 1] = { name = fk.name, columns = fk.columns, unique = false, kind = "index", fk = fk.name }
    end
  end

  for _, w in ipairs(to_add) do
    if w.kind == "index" then
      add({
        kind = "add_index", table = tname, name = w.name,
        description = ("added %sindex %s on %s%s"):format(w.unique and "unique " or "", w.name, qname(tname),
          w.fk and " for its foreign key" or ""),
        up = index_create(tname, w), down = index_drop(tname, w),
      })
    else
      add({
        kind = "add_unique", table = tname, name = w.name,
        description = ("added unique constraint %s on %s"):format(w.name, qname(tname)),
        up = unique_create(tname, w), down = unique_drop(tname, w),
      })
    end
  end
  for _, fk in ipairs(plan.add) do
    add({
      kind = "add_fk", table = tname, name = fk.name,
      description = ("added foreign key %s on %s"):format(fk.name, qname(tname)),
      up = fk_up(tname, fk), down = fk_down(tname, fk),
    })
  end
end

-- Declared tables the database does not have, parents first. A foreign
-- key goes into CREATE TABLE when what it references exists by then;
-- otherwise (a cycle, a column or index added later) it follows as add_fk.
local function compare_new_tables(ctx, declared)
  local db, add, included = ctx.db, ctx.add, ctx.included
  local names, set, by_name = {}, {}, {}
  for _, def in ipairs(declared) do
    by_name[def.name] = def
    if not db.tables[def.name] and included("table", def.name, false, nil, def) then
      names[#names + 1] = def.name
      set[def.name] = true
    end
  end
  local order, cycle = dependency_order(names, by_name, set)
  local function ready_now(fk)
    local rt = db.tables[fk.ref_table]
    if not rt or set[fk.ref_table] then return true end
    for _, c in ipairs(fk.ref_columns) do
      if not rt.column_index[c] then return false end
    end
    if starts_with(rt.primary_key, fk.ref_columns) then return true end
    for _, rix in ipairs(rt.indexes) do
      if starts_with(rix.columns, fk.ref_columns) then return true end
    end
    return false
  end
  local late = {}
  for _, name in ipairs(order) do
    local def = by_name[name]
    local skip = {}
    for _, fk in ipairs(def.foreign_keys) do
      if cycle[fk] or not ready_now(fk) then
        skip[fk.name] = true
        late[#late + 1] = { table = name, fk = fk }
      end
    end
    add({
      kind = "add_table", table = name, definition = def,
      description = ("added table %s"):format(qname(name)),
      up = create_table_lua(def, skip),
      down = ("op.drop_table(%s)"):format(lua_string(name)),
    })
  end
  for _, item in ipairs(late) do
    add({
      kind = "add_fk", table = item.table, name = item.fk.name,
      description = ("added foreign key %s on %s"):format(item.fk.name, qname(item.table)),
      up = fk_up(item.table, item.fk), down = fk_down(item.table, item.fk),
    })
  end
end

-- A reflected table as create_table arguments, to recreate it on the way
-- down; skip: foreign keys left out (dropped and re-added on their own).
local function reflected_definition(ctx, rt, skip)
  local t = {
    name = rt.name, columns = {}, primary_key = rt.primary_key, unique = {}, indexes = {},
    foreign_keys = rt.foreign_keys, engine = rt.engine, charset = rt.charset, collate = rt.collate,
    comment = rt.comment, primary_key_given = #rt.primary_key > 1,
  }
  for _, rc in ipairs(rt.columns) do
    local spec = {}
    for k, v in pairs(rc) do spec[k] = v end
    spec.primary_key = #rt.primary_key == 1 and rt.primary_key[1] == rc.name
    t.columns[#t.columns + 1] = spec
  end
  for _, rix in ipairs(rt.indexes) do
    local made_by_fk = false
    for _, fk in ipairs(rt.foreign_keys) do
      if not rix.unique and fk.name == rix.name and starts_with(rix.columns, fk.columns) and not skip[fk.name] then
        made_by_fk = true
      end
    end
    if rix.partial then
      ctx.note(("index %s on %s uses column prefixes or expressions: the downgrade does not recreate it")
        :format(rix.name, qname(rt.name)))
    elseif not made_by_fk then
      t.indexes[#t.indexes + 1] = rix
    end
  end
  return t
end

-- Tables in the database that are not declared: kept (and noted) unless
-- asked for; dropped children first. Returns the names of those kept.
local function compare_dropped_tables(ctx, declared_by_name)
  local db, add, note, include = ctx.db, ctx.add, ctx.note, ctx.include
  local names, set, kept = {}, {}, {}
  for _, name in ipairs(db.order) do
    if not declared_by_name[name] then
      local verdict = include and include("table", name, true, nil, db.tables[name])
      if verdict == true or (verdict ~= false and ctx.drop_tables) then
        names[#names + 1] = name
        set[name] = true
      elseif verdict == false then
        note(("table %s is not declared and include_object excludes it: kept"):format(qname(name)))
        kept[#kept + 1] = name
      else
        note(("table %s is in the database but not declared: kept (set drop_tables = true, or have"
          .. " include_object return true for it, to drop it)"):format(qname(name)))
        kept[#kept + 1] = name
      end
    end
  end
  local parents_first, cycle = dependency_order(names, db.tables, set)
  for i = #parents_first, 1, -1 do
    local name = parents_first[i]
    local rt = db.tables[name]
    local skip = {}
    for _, fk in ipairs(rt.foreign_keys) do
      if cycle[fk] then
        skip[fk.name] = true
        add({
          kind = "drop_fk", table = name, name = fk.name,
          description = ("removed foreign key %s on %s"):format(fk.name, qname(name)),
          up = fk_down(name, fk), down = fk_up(name, fk),
        })
      end
    end
    add({
      kind = "drop_table", table = name,
      description = ("removed table %s"):format(qname(name)),
      up = ("op.drop_table(%s)"):format(lua_string(name)),
      down = create_table_lua(reflected_definition(ctx, rt, skip), skip),
    })
  end
  return kept
end

--- Compares the declared schema with the database of conn. Returns a list
--- of diffs in a dependency-safe order, each {kind, table, column?, name?,
--- from?, to?, description, up, down} (up/down: the Lua source of one op
--- call), with diffs.notes listing what was deliberately not proposed and
--- diffs.kept_tables the undeclared tables left alone; or nil, err (,
--- errno, sqlstate) when the database cannot be read or the declared
--- schema is empty while the database is not.
--- opts: version_table ("alembic_version"), bind (which tables of the
--- schema: nil = the default database), drop_tables (propose dropping
--- tables that are not declared), include_object(type, name, reflected,
--- compare_to, object, table_name) (false skips an object; true for an
--- undeclared table proposes dropping it), compare_type, compare_default,
--- compare_comment (all default true).
-- syntax: diffs, err, errno, sqlstate = autogen.compare(conn, schema, opts)
function _M.compare(conn, schema, opts)
  if conn == nil then
    error("fsdb: autogenerate: bad argument #1 to 'compare' (connection expected, got nil)", 2)
  end
  if not schema_mod.is_schema(schema) then
    error("fsdb: autogenerate: bad argument #2 to 'compare' (a schema from fsdb.schema.new() expected, got "
      .. type(schema) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("fsdb: autogenerate: options must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not COMPARE_KEYS[k] then
      error(("fsdb: autogenerate: unknown option '%s'"):format(tostring(k)), 2)
    end
  end
  if opts.include_object ~= nil and type(opts.include_object) ~= "function" then
    error("fsdb: autogenerate: include_object must be a function, got " .. type(opts.include_object), 2)
  end
  local version_table = opts.version_table or "alembic_version"
  if type(version_table) ~= "string" or version_table == "" then
    error("fsdb: autogenerate: version_table must be a non-empty string", 2)
  end
  local ok, verr = schema:validate()
  if not ok then error(verr, 2) end

  local declared, declared_by_name = {}, {}
  for _, def in ipairs(schema:tables_for(opts.bind)) do
    if def.name ~= version_table then
      declared[#declared + 1] = def
      declared_by_name[def.name] = def
    end
  end

  local db, err, errno, sqlstate = reflect(conn, version_table)
  if not db then return nil, err, errno, sqlstate end

  if #declared == 0 and #db.order > 0 then
    return nil, ("fsdb: the declared schema is empty but the database has %d tables; refusing to generate"
      .. " drops (is the schema module loaded? see env.lua)"):format(#db.order)
  end

  local diffs, notes = {}, {}
  local include = opts.include_object
  local ctx = {
    db = db,
    mariadb = db.mariadb,
    include = include,
    drop_tables = opts.drop_tables,
    skip = { type = opts.compare_type == false, default = opts.compare_default == false,
      comment = opts.compare_comment == false },
    fk_plan = {},
    final_fks = {},
    add = function(d)
      d.phase = PHASES[d.kind] or 5
      diffs[#diffs + 1] = d
    end,
    note = function(s) notes[#notes + 1] = s end,
    included = function(kind, name, reflected, compare_to, object, tname)
      if not include then return true end
      return include(kind, name, reflected, compare_to, object, tname) ~= false
    end,
  }

  compare_new_tables(ctx, declared)

  local both = {}
  for _, def in ipairs(declared) do
    local rt = db.tables[def.name]
    if rt and ctx.included("table", def.name, false, rt, def) then
      both[#both + 1] = def
      ctx.fk_plan[def.name], ctx.final_fks[def.name] = plan_foreign_keys(ctx, def, rt)
    end
  end
  for _, def in ipairs(both) do
    local rt = db.tables[def.name]
    local new_columns = compare_columns(ctx, def, rt)
    compare_keys(ctx, def, rt, new_columns)
  end

  local kept = compare_dropped_tables(ctx, declared_by_name)

  -- Stable sort into the phases.
  for i, d in ipairs(diffs) do d.seq = i end
  table.sort(diffs, function(a, b)
    if a.phase ~= b.phase then return a.phase < b.phase end
    return a.seq < b.seq
  end)
  diffs.notes = notes
  diffs.kept_tables = kept
  return diffs
end

---------------------------------------------------------------------------
-- Rendering.

local function indent_lines(text, indent)
  return indent .. text:gsub("\n", "\n" .. indent)
end

--- The bodies of up(op) and down(op) for a list of diffs from compare:
--- one op call per line (create_table spans several), in a dependency-safe
--- order (down in the reverse order), column changes of one column merged
--- into one alter_column. A comment at the top lists diffs.notes.
--- opts.indent (default four spaces) prefixes every line.
-- syntax: up_body, down_body = autogen.render(diffs, opts)
function _M.render(diffs, opts)
  if type(diffs) ~= "table" then
    error("fsdb: autogenerate: bad argument #1 to 'render' (diffs expected, got " .. type(diffs) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("fsdb: autogenerate: render options must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "indent" then
      error(("fsdb: autogenerate: unknown render option '%s'"):format(tostring(k)), 2)
    end
  end
  local indent = opts.indent or "    "
  if type(indent) ~= "string" or not indent:match("^[ \t]*$") then
    error("fsdb: autogenerate: indent must be a string of spaces or tabs", 2)
  end

  local sorted = {}
  for i, d in ipairs(diffs) do
    sorted[i] = { d = d, i = i, phase = d.phase or PHASES[d.kind] or 5 }
  end
  table.sort(sorted, function(a, b)
    if a.phase ~= b.phase then return a.phase < b.phase end
    return a.i < b.i
  end)

  local entries = {}
  local k = 1
  while k <= #sorted do
    local d = sorted[k].d
    if d.alter and ATTR_BY_KIND[d.kind] then
      local group, changed = { d }, { [d.alter.attr] = true }
      local j = k + 1
      while j <= #sorted do
        local e = sorted[j].d
        if e.alter and e.table == d.table and e.column == d.column and ATTR_BY_KIND[e.kind] then
          group[#group + 1] = e
          changed[e.alter.attr] = true
          j = j + 1
        else
          break
        end
      end
      if #group == 1 then
        entries[#entries + 1] = { up = d.up, down = d.down }
      else
        local before = d.alter.reflected
        local after = mix(before, d.alter.declared, changed)
        entries[#entries + 1] = {
          up = alter_lua(d.table, d.column, before, after, changed),
          down = alter_lua(d.table, d.column, after, before, changed),
        }
      end
      k = j
    else
      entries[#entries + 1] = { up = d.up, down = d.down }
      k = k + 1
    end
  end

  local header = {}
  local notes = diffs.notes or {}
  if #notes > 0 then
    header[#header + 1] = indent .. "-- Not proposed by autogenerate (review before applying):"
    for _, n in ipairs(notes) do
      header[#header + 1] = indent .. "--   " .. tostring(n):gsub("[\r\n]", " ")
    end
  end

  local up, down = {}, {}
  for _, h in ipairs(header) do
    up[#up + 1] = h
    down[#down + 1] = h
  end
  if #entries == 0 then
    up[#up + 1] = indent .. "-- No changes in schema detected."
    down[#down + 1] = indent .. "-- No changes in schema detected."
  end
  for _, e in ipairs(entries) do
    up[#up + 1] = indent_lines(e.up, indent)
  end
  for i = #entries, 1, -1 do
    down[#down + 1] = indent_lines(entries[i].down, indent)
  end
  return table.concat(up, "\n") .. "\n", table.concat(down, "\n") .. "\n"
end

return _M
