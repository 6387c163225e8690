--- fsdb.migrate.ops — Alembic's `op` for MySQL and MariaDB.
--
--   local ops = require("fsdb.migrate.ops")
--   local op = ops.new(function(sql, params) … end)
--   op.create_table("products", {
--     {"id", "INT UNSIGNED", primary_key = true, auto_increment = true},
--     {"name", "VARCHAR(200)", nullable = false},
--   })
--
-- This module owns the DDL text: every method checks its arguments, builds
-- one statement (bulk_insert: one per 65,535 parameters) and hands it to
-- the `run` callback the caller gave. Whether that executes it or prints it
-- (`--sql`) is the caller's business; this file never sees a connection.
--
-- The rules:
--   * identifiers, literals and comments are written by fsdb.sqltext, for
--     the dialect given to ops.new (default: the offline one, for --sql);
--     a name must be a non-empty string without a NUL byte;
--   * a column type is MySQL text and must look like one ("INT UNSIGNED",
--     "DECIMAL(10,2)", "ENUM('a','b')"): letters, digits, _, spaces, parens
--     and commas outside quoted ENUM/SET values;
--   * default values are rendered as SQL literals by fsdb.sqltext;
--     op.raw(s) is the only way to put text in verbatim;
--   * bulk_insert and execute bind their values as parameters;
--   * misuse (a bad name, an unknown option) raises "fsdb: <op>: …" at the
--     caller's line; a failed statement raises
--     "fsdb: <op> failed: <err> [errno N, sqlstate S] in: <sql>" and leaves
--     the details in op.last_failure.

local core = require("fsdb.core")
local sqltext = require("fsdb.sqltext")

local NULL = core.null

local _M = {}

-- Lua 5.1/LuaJIT and 5.4 alike: no integer division, no goto.
local floor = math.floor

local function fail(fmt, ...)
  error("fsdb: " .. fmt:format(...), 0)
end

---------------------------------------------------------------------------
-- Values the caller can hand in besides plain Lua values.

local Raw = {}
Raw.__index = Raw
Raw.__tostring = function(r) return r.sql end

--- SQL text used verbatim where a value would be quoted (defaults,
--- ON UPDATE): op.raw("CURRENT_TIMESTAMP").
-- syntax: r = ops.raw(sql_text)
function _M.raw(s)
  if type(s) ~= "string" or s == "" then
    fail("raw: expected a non-empty string of SQL, got %s", s == "" and "an empty string" or type(s))
  end
  return setmetatable({ sql = s }, Raw)
end

--- True for a value made by ops.raw.
-- syntax: b = ops.is_raw(v)
function _M.is_raw(v)
  return getmetatable(v) == Raw
end

local is_raw = _M.is_raw

--- SQL NULL (fsdb.null): `default = op.null` renders DEFAULT NULL.
_M.null = NULL

--- "No default at all": alter_column(t, c, {default = op.no_default})
--- drops the column's default.
_M.no_default = setmetatable({}, { __tostring = function() return "op.no_default" end })

local NO_DEFAULT = _M.no_default

---------------------------------------------------------------------------
-- Names, literals and types.

local function check_name(where, what, v)
  if type(v) ~= "string" then
    fail("%s: %s must be a string, got %s", where, what, type(v))
  end
  if v == "" then
    fail("%s: %s must not be empty", where, what)
  end
  if v:find("\0", 1, true) then
    fail("%s: %s contains a NUL byte", where, what)
  end
  return v
end

-- The dialect of the op whose builder is running (set around each build).
local current_dialect = nil

--- Quotes one identifier with backticks (fsdb.sqltext.ident).
-- syntax: s = ops.quote(name)
local function quote(name)
  return sqltext.ident(name, current_dialect)
end
_M.quote = quote

local function check_names(where, what, list)
  if type(list) ~= "table" then
    fail("%s: %s must be a list of column names, got %s", where, what, type(list))
  end
  if #list == 0 then
    fail("%s: %s must name at least one column", where, what)
  end
  local n = 0
  for _ in pairs(list) do n = n + 1 end
  if n ~= #list then
    fail("%s: %s must be a list of column names (no other keys)", where, what)
  end
  for i = 1, #list do
    check_name(where, ("%s[%d]"):format(what, i), list[i])
  end
  return list
end

local function quote_list(list)
  local out = {}
  for i = 1, #list do out[i] = quote(list[i]) end
  return "(" .. table.concat(out, ", ") .. ")"
end

--- A string as a SQL literal (fsdb.sqltext.literal).
-- syntax: s = ops.sql_string(str)
local function sql_string(s)
  return sqltext.literal(s, current_dialect)
end
_M.sql_string = sql_string

-- The shortest decimal text that reads back as the same number (nil for
-- NaN and infinities), whatever the C locale.
local number_text = sqltext.number_text
_M.number_text = number_text

--- A Lua value as a SQL literal (for defaults and --sql output).
-- syntax: s = ops.literal(v)
local function literal(v, where)
  local t = type(v)
  if t == "number" and not number_text(v) then
    fail("%s: %s cannot be stored in SQL", where or "literal", tostring(v))
  elseif t == "string" or t == "number" or t == "boolean" or v == NULL then
    return sqltext.literal(v, current_dialect)
  elseif is_raw(v) then
    return v.sql
  end
  fail("%s: a value must be a string, number, boolean, op.null or op.raw(...), got %s",
    where or "literal", t)
end
_M.literal = literal

-- Outside of quoted values a type is words, digits, spaces, parens and
-- commas; inside '…' (ENUM and SET members) anything but a quote that is
-- not doubled, a backslash, a NUL or a line break.
local function valid_type(s)
  local i, n = 1, #s
  local outside = {}
  while i <= n do
    local c = s:sub(i, i)
    if c == "'" then
      i = i + 1
      local closed = false
      while i <= n do
        local d = s:sub(i, i)
        if d == "'" then
          if s:sub(i + 1, i + 1) == "'" then
            i = i + 2
          else
            closed = true
            i = i + 1
            break
          end
        elseif d == "\\" or d == "\0" or d == "\n" or d == "\r" then
          return false
        else
          i = i + 1
        end
      end
      if not closed then return false end
      outside[#outside + 1] = " "
    else
      outside[#outside + 1] = c
      i = i + 1
    end
  end
  local rest = table.concat(outside)
  return rest:find("%w") ~= nil and rest:match("^[%w_ (),]+$") ~= nil
end

local function check_type(where, v)
  if type(v) ~= "string" then
    fail("%s: type must be a string such as \"INT UNSIGNED\" or \"VARCHAR(100)\", got %s", where, type(v))
  end
  if not valid_type(v) then
    fail("%s: bad type %s (expected a MySQL type such as INT UNSIGNED, VARCHAR(100), DECIMAL(10,2), ENUM('a','b'))",
      where, sql_string(v))
  end
  return v
end
_M.valid_type = valid_type

local function check_value(where, what, v)
  if v == nil or v == NO_DEFAULT or v == NULL or is_raw(v) then return v end
  local t = type(v)
  if t == "string" or t == "boolean" then return v end
  if t == "number" then
    if not number_text(v) then fail("%s: %s %s cannot be stored in SQL", where, what, tostring(v)) end
    return v
  end
  fail("%s: %s must be a string, number, boolean, op.null or op.raw(...), got %s", where, what, t)
end

-- ON UPDATE takes an expression: op.raw(...) or a bare word like
-- CURRENT_TIMESTAMP(6).
local function check_on_update(where, v)
  if v == nil or v == false or is_raw(v) then return v end
  if type(v) == "string" and v:match("^[%w_]+%(?%d*%)?$") then
    return _M.raw(v)
  end
  fail("%s: on_update must be op.raw(\"CURRENT_TIMESTAMP\") or similar, got %s", where,
    type(v) == "string" and sql_string(v) or type(v))
end

-- v, when given, must be of the Lua type lua_type ("boolean", "string").
local function check_is(lua_type, where, what, v)
  if v ~= nil and type(v) ~= lua_type then
    fail("%s: %s must be a %s, got %s", where, what, lua_type, type(v))
  end
  return v
end

local function check_word(where, what, v)
  if v ~= nil and (type(v) ~= "string" or not v:match("^[%w_]+$")) then
    fail("%s: %s must be a word such as InnoDB or utf8mb4, got %s", where, what,
      type(v) == "string" and sql_string(v) or type(v))
  end
  return v
end

local function check_keys(where, what, t, known)
  for k in pairs(t) do
    if not known[k] then
      if type(k) == "string" then
        fail("%s: unknown %s '%s'", where, what, k)
      end
      fail("%s: unknown %s %s", where, what, tostring(k))
    end
  end
end

---------------------------------------------------------------------------
-- Default constraint names: deterministic, so that what create_table made
-- and what autogenerate expects agree. MySQL allows 64 characters; a
-- longer name keeps its start and gets a hash of the whole.

local function hash_hex(s)
  local h = 5381
  for i = 1, #s do
    h = (h * 33 + s:byte(i)) % 4294967296
  end
  return ("%08x"):format(h)
end

local function shorten(name)
  if #name <= 64 then return name end
  local cut = 55
  -- never split a UTF-8 sequence
  while cut > 1 do
    local b = name:byte(cut + 1)
    if not b or b < 0x80 or b >= 0xC0 then break end
    cut = cut - 1
  end
  return name:sub(1, cut) .. "_" .. hash_hex(name)
end

--- The name fsdb gives an unnamed index ("ix"), unique constraint ("uq")
--- or foreign key ("fk"): ix_<table>_<cols>, uq_<table>_<cols>,
--- fk_<table>_<cols>_<ref_table>, hashed down to 64 characters.
-- syntax: name = ops.default_name(kind, table, columns, ref_table)
function _M.default_name(kind, tname, columns, ref_table)
  local name = kind .. "_" .. tname .. "_" .. table.concat(columns, "_")
  if ref_table then name = name .. "_" .. ref_table end
  return shorten(name)
end

---------------------------------------------------------------------------
-- Column specs and table definitions (shared with fsdb.schema).

local COLUMN_KEYS = {
  [1] = true, [2] = true, nullable = true, default = true, auto_increment = true,
  primary_key = true, unique = true, comment = true, on_update = true,
}

--- Checks a column spec {name, type, nullable=, default=, …} and returns
--- a clean copy: {name, type, nullable, default, auto_increment,
--- primary_key, unique, comment, on_update, nullable_given}.
-- syntax: col = ops.column(spec, where)
function _M.column(spec, where)
  where = where or "column"
  if type(spec) ~= "table" then
    fail("%s: a column must be a table {name, type, ...}, got %s", where, type(spec))
  end
  local name = check_name(where, "column name (the first element)", spec[1])
  local cw = ("%s: column '%s'"):format(where, name)
  if spec[2] == nil then
    fail("%s: the type (second element) is missing", cw)
  end
  check_type(cw, spec[2])
  for k in pairs(spec) do
    if not COLUMN_KEYS[k] then
      if type(k) == "number" then
        fail("%s: unexpected element #%s (a column is {name, type, key = value, ...})", cw, tostring(k))
      end
      fail("%s: unknown option '%s'", cw, tostring(k))
    end
  end
  check_is("boolean", cw, "nullable", spec.nullable)
  check_is("boolean", cw, "auto_increment", spec.auto_increment)
  check_is("boolean", cw, "primary_key", spec.primary_key)
  check_is("boolean", cw, "unique", spec.unique)
  check_is("string", cw, "comment", spec.comment)
  check_value(cw, "default", spec.default)
  if spec.primary_key and spec.nullable == true then
    fail("%s: a primary key column cannot be nullable", cw)
  end
  local nullable = spec.nullable
  if nullable == nil then nullable = not spec.primary_key end
  local default = spec.default
  if default == NO_DEFAULT then default = nil end
  local on_update = check_on_update(cw, spec.on_update)
  if on_update == false then on_update = nil end
  return {
    name = name,
    type = spec[2],
    nullable = nullable,
    nullable_given = spec.nullable ~= nil,
    default = default,
    auto_increment = spec.auto_increment or false,
    primary_key = spec.primary_key or false,
    unique = spec.unique or false,
    comment = spec.comment,
    on_update = on_update,
  }
end

local function value_sql(v)
  return literal(v)
end

-- `name` TYPE [NOT] NULL [DEFAULT …] [ON UPDATE …] [AUTO_INCREMENT]
-- [UNIQUE] [PRIMARY KEY] [COMMENT '…']
local function column_sql(col, name, keys)
  local parts = { quote(name or col.name), col.type, col.nullable and "NULL" or "NOT NULL" }
  if col.default ~= nil and col.default ~= NO_DEFAULT then
    parts[#parts + 1] = "DEFAULT " .. value_sql(col.default)
  end
  if col.on_update then
    parts[#parts + 1] = "ON UPDATE " .. col.on_update.sql
  end
  if col.auto_increment then
    parts[#parts + 1] = "AUTO_INCREMENT"
  end
  if keys and keys.unique and col.unique then
    parts[#parts + 1] = "UNIQUE"
  end
  if keys and keys.primary_key and col.primary_key then
    parts[#parts + 1] = "PRIMARY KEY"
  end
  if col.comment and col.comment ~= "" then
    parts[#parts + 1] = "COMMENT " .. sqltext.text(col.comment, current_dialect)
  end
  return table.concat(parts, " ")
end

local RULES = {
  ["CASCADE"] = true, ["SET NULL"] = true, ["RESTRICT"] = true,
  ["NO ACTION"] = true, ["SET DEFAULT"] = true,
}

local function check_rule(where, what, v)
  if v == nil then return nil end
  local norm = type(v) == "string" and v:upper():gsub("_", " "):gsub("%s+", " ") or nil
  if not norm or not RULES[norm] then
    fail("%s: %s must be CASCADE, SET NULL, RESTRICT, NO ACTION or SET DEFAULT, got %s", where, what,
      type(v) == "string" and sql_string(v) or type(v))
  end
  return norm
end

local function check_list(where, what, v)
  if v == nil then return {} end
  if type(v) ~= "table" then
    fail("%s: %s must be a list of tables, got %s", where, what, type(v))
  end
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > #v or k ~= floor(k) then
      fail("%s: %s must be a list of tables (no other keys)", where, what)
    end
  end
  for i = 1, #v do
    if type(v[i]) ~= "table" then
      fail("%s: %s[%d] must be a table, got %s", where, what, i, type(v[i]))
    end
  end
  return v
end

local INDEX_KEYS = { name = true, columns = true, unique = true }
local UNIQUE_KEYS = { name = true, columns = true }
local FK_KEYS = {
  name = true, columns = true, ref_table = true, ref_columns = true,
  ondelete = true, onupdate = true,
}

local TABLE_KEYS = {
  primary_key = true, indexes = true, foreign_keys = true, unique = true,
  engine = true, charset = true, collate = true, comment = true,
}

local function known_column(where, def, what, names)
  for i = 1, #names do
    if not def.column_index[names[i]] then
      fail("%s: %s names column '%s', which the table does not have", where, what, names[i])
    end
  end
end

--- Checks a whole table declaration (create_table's and schema:table's
--- arguments) and returns a clean definition: {name, columns (clean
--- column specs), column_index, primary_key, primary_key_given, indexes,
--- unique, foreign_keys (names filled in), engine, charset, collate,
--- comment}. `extra` lists further option keys the caller handles.
-- syntax: def = ops.table_definition(name, columns, options, where, extra)
function _M.table_definition(name, columns, options, where, extra)
  where = where or "create_table"
  check_name(where, "table name", name)
  local tw = ("%s: table '%s'"):format(where, name)
  if type(columns) ~= "table" then
    fail("%s: columns must be a list of column specs, got %s", tw, type(columns))
  end
  if #columns == 0 then
    fail("%s: a table needs at least one column", tw)
  end
  for k in pairs(columns) do
    if type(k) ~= "number" then
      fail("%s: columns must be a list of column specs; table options (%s) go in the third argument",
        tw, tostring(k))
    end
  end
  if options ~= nil and type(options) ~= "table" then
    fail("%s: options must be a table, got %s", tw, type(options))
  end
  options = options or {}
  for k in pairs(options) do
    if not TABLE_KEYS[k] and not (extra and extra[k]) then
      fail("%s: unknown option '%s'", tw, tostring(k))
    end
  end

  local def = { name = name, columns = {}, column_index = {} }
  local pk_cols = {}
  for i = 1, #columns do
    local col = _M.column(columns[i], tw)
    if def.column_index[col.name] then
      fail("%s: column '%s' is declared twice", tw, col.name)
    end
    def.columns[i] = col
    def.column_index[col.name] = col
    if col.primary_key then pk_cols[#pk_cols + 1] = col.name end
  end

  if options.primary_key ~= nil then
    if #pk_cols > 0 then
      fail("%s: primary key given both as primary_key = {...} and on column '%s'", tw, pk_cols[1])
    end
    check_names(tw, "primary_key", options.primary_key)
    known_column(tw, def, "primary_key", options.primary_key)
    for i = 1, #options.primary_key do
      local col = def.column_index[options.primary_key[i]]
      if col.nullable_given and col.nullable then
        fail("%s: column '%s': a primary key column cannot be nullable", tw, col.name)
      end
      col.nullable = false
      pk_cols[i] = col.name
    end
    def.primary_key_given = true
  end
  def.primary_key = pk_cols

  local used = {}
  local function take_name(kind, n)
    if used[n] then
      fail("%s: the name '%s' is used twice (%s)", tw, n, kind)
    end
    used[n] = true
  end

  def.unique = {}
  for i, u in ipairs(check_list(tw, "unique", options.unique)) do
    local uw = ("%s: unique[%d]"):format(tw, i)
    check_keys(uw, "key", u, UNIQUE_KEYS)
    check_names(uw, "columns", u.columns)
    known_column(uw, def, "columns", u.columns)
    local n = u.name == nil and _M.default_name("uq", name, u.columns) or check_name(uw, "name", u.name)
    take_name("unique", n)
    def.unique[i] = { name = n, columns = u.columns, name_given = u.name ~= nil }
  end

  def.indexes = {}
  for i, ix in ipairs(check_list(tw, "indexes", options.indexes)) do
    local iw = ("%s: indexes[%d]"):format(tw, i)
    check_keys(iw, "key", ix, INDEX_KEYS)
    check_names(iw, "columns", ix.columns)
    check_is("boolean", iw, "unique", ix.unique)
    known_column(iw, def, "columns", ix.columns)
    local n = ix.name == nil and _M.default_name(ix.unique and "uq" or "ix", name, ix.columns)
      or check_name(iw, "name", ix.name)
    take_name("index", n)
    def.indexes[i] = { name = n, columns = ix.columns, unique = ix.unique or false, name_given = ix.name ~= nil }
  end

  def.foreign_keys = {}
  for i, fk in ipairs(check_list(tw, "foreign_keys", options.foreign_keys)) do
    local fw = ("%s: foreign_keys[%d]"):format(tw, i)
    check_keys(fw, "key", fk, FK_KEYS)
    check_names(fw, "columns", fk.columns)
    known_column(fw, def, "columns", fk.columns)
    check_name(fw, "ref_table", fk.ref_table)
    check_names(fw, "ref_columns", fk.ref_columns)
    if #fk.ref_columns ~= #fk.columns then
      fail("%s: columns has %d names but ref_columns has %d", fw, #fk.columns, #fk.ref_columns)
    end
    local n = fk.name == nil and _M.default_name("fk", name, fk.columns, fk.ref_table)
      or check_name(fw, "name", fk.name)
    take_name("foreign key", n)
    def.foreign_keys[i] = {
      name = n, columns = fk.columns, ref_table = fk.ref_table, ref_columns = fk.ref_columns,
      ondelete = check_rule(fw, "ondelete", fk.ondelete),
      onupdate = check_rule(fw, "onupdate", fk.onupdate),
      name_given = fk.name ~= nil,
    }
  end

  def.engine = check_word(tw, "engine", options.engine) or "InnoDB"
  def.charset = check_word(tw, "charset", options.charset)
  def.collate = check_word(tw, "collate", options.collate)
  if def.charset == nil then
    def.charset = "utf8mb4"
    def.collate = def.collate or "utf8mb4_unicode_ci"
  end
  def.comment = check_is("string", tw, "comment", options.comment)
  return def
end

local function fk_sql(fk)
  local s = ("CONSTRAINT %s FOREIGN KEY %s REFERENCES %s %s"):format(
    quote(fk.name), quote_list(fk.columns), quote(fk.ref_table), quote_list(fk.ref_columns))
  if fk.ondelete then s = s .. " ON DELETE " .. fk.ondelete end
  if fk.onupdate then s = s .. " ON UPDATE " .. fk.onupdate end
  return s
end

--- The CREATE TABLE statement for a definition made by table_definition.
-- syntax: sql = ops.create_table_sql(def)
function _M.create_table_sql(def)
  local items = {}
  for i = 1, #def.columns do
    -- the primary key is written once, as a table constraint after the
    -- columns; UNIQUE stays on its column (MySQL names that index after it)
    items[#items + 1] = column_sql(def.columns[i], nil, { unique = true })
  end
  if #def.primary_key > 0 then
    items[#items + 1] = "PRIMARY KEY " .. quote_list(def.primary_key)
  end
  for _, u in ipairs(def.unique) do
    items[#items + 1] = ("UNIQUE KEY %s %s"):format(quote(u.name), quote_list(u.columns))
  end
  for _, ix in ipairs(def.indexes) do
    items[#items + 1] = ("%s %s %s"):format(ix.unique and "UNIQUE KEY" or "KEY", quote(ix.name), quote_list(ix.columns))
  end
  for _, fk in ipairs(def.foreign_keys) do
    items[#items + 1] = fk_sql(fk)
  end
  local s = ("CREATE TABLE %s (%s) ENGINE=%s DEFAULT CHARSET=%s"):format(
    quote(def.name), table.concat(items, ", "), def.engine, def.charset)
  if def.collate then s = s .. " COLLATE=" .. def.collate end
  if def.comment then s = s .. " COMMENT=" .. sqltext.text(def.comment, current_dialect) end
  return s
end

---------------------------------------------------------------------------
-- Statement builders: arguments in, a list of {sql, params} out. They
-- raise (level 0) on misuse; the op wrappers re-raise at the caller.

local build = {}

local function one(sql, params)
  return { { sql = sql, params = params } }
end

function build.create_table(name, columns, options)
  return one(_M.create_table_sql(_M.table_definition(name, columns, options, "create_table")))
end

function build.drop_table(name)
  check_name("drop_table", "table name", name)
  return one("DROP TABLE " .. quote(name))
end

function build.rename_table(old, new)
  check_name("rename_table", "old table name", old)
  check_name("rename_table", "new table name", new)
  return one(("RENAME TABLE %s TO %s"):format(quote(old), quote(new)))
end

function build.add_column(tname, spec)
  check_name("add_column", "table name", tname)
  local col = _M.column(spec, "add_column")
  local def = column_sql(col, nil, { unique = true, primary_key = true })
  return one(("ALTER TABLE %s ADD COLUMN %s"):format(quote(tname), def))
end

function build.drop_column(tname, cname)
  check_name("drop_column", "table name", tname)
  check_name("drop_column", "column name", cname)
  return one(("ALTER TABLE %s DROP COLUMN %s"):format(quote(tname), quote(cname)))
end

local ALTER_KEYS = {
  type = true, nullable = true, default = true, new_name = true, comment = true,
  on_update = true, auto_increment = true,
  existing_type = true, existing_nullable = true, existing_default = true,
  existing_comment = true, existing_on_update = true, existing_auto_increment = true,
}

-- What SET DEFAULT accepts everywhere: a literal, or an expression in
-- parentheses (MySQL 8 wants those; MariaDB takes both).
local function set_default_sql(v)
  if not is_raw(v) then return literal(v) end
  local s = v.sql
  local up = s:upper()
  if up == "NULL" or s:match("^%(.*%)$") or s:match("^'.*'$") or s:match("^[-+]?[%d.]+$") then
    return s
  end
  return "(" .. s .. ")"
end

local function pick(new, existing)
  if new ~= nil then return new end
  return existing
end

function build.alter_column(tname, cname, o)
  local where = "alter_column"
  check_name(where, "table name", tname)
  check_name(where, "column name", cname)
  if type(o) ~= "table" then
    fail("%s: the third argument must be a table of changes, got %s", where, type(o))
  end
  check_keys(where, "option", o, ALTER_KEYS)
  local cw = ("%s: column '%s' of table '%s'"):format(where, cname, tname)
  if o.type ~= nil then check_type(cw, o.type) end
  if o.existing_type ~= nil then check_type(cw, o.existing_type) end
  check_is("boolean", cw, "nullable", o.nullable)
  check_is("boolean", cw, "existing_nullable", o.existing_nullable)
  check_value(cw, "default", o.default)
  check_value(cw, "existing_default", o.existing_default)
  check_is("string", cw, "comment", o.comment)
  check_is("string", cw, "existing_comment", o.existing_comment)
  check_is("boolean", cw, "auto_increment", o.auto_increment)
  check_is("boolean", cw, "existing_auto_increment", o.existing_auto_increment)
  local on_update = check_on_update(cw, o.on_update)
  local existing_on_update = check_on_update(cw, o.existing_on_update)
  if o.new_name ~= nil then check_name(cw, "new_name", o.new_name) end

  local changes = {}
  for _, k in ipairs({ "type", "nullable", "default", "comment", "on_update", "auto_increment", "new_name" }) do
    if o[k] ~= nil then changes[#changes + 1] = k end
  end
  if #changes == 0 then
    fail("%s: nothing to change (give type, nullable, default, new_name, comment, on_update or auto_increment)", cw)
  end

  if #changes == 1 and changes[1] == "new_name" then
    return one(("ALTER TABLE %s RENAME COLUMN %s TO %s"):format(quote(tname), quote(cname), quote(o.new_name)))
  end
  if #changes == 1 and changes[1] == "default" then
    if o.default == NO_DEFAULT then
      return one(("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT"):format(quote(tname), quote(cname)))
    end
    return one(("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s"):format(
      quote(tname), quote(cname), set_default_sql(o.default)))
  end

  local ctype = o.type or o.existing_type
  if not ctype then
    fail("%s: changing %s needs type= or existing_type= (MySQL's MODIFY restates the whole column;"
      .. " give existing_nullable, existing_default and existing_comment too, or they are reset)",
      cw, table.concat(changes, ", "))
  end
  local nullable = pick(o.nullable, o.existing_nullable)
  if nullable == nil then nullable = true end
  local col = {
    type = ctype,
    nullable = nullable,
    default = pick(o.default, o.existing_default),
    comment = pick(o.comment, o.existing_comment),
    on_update = pick(on_update, existing_on_update) or nil,
    auto_increment = pick(o.auto_increment, o.existing_auto_increment) or false,
  }
  if o.new_name ~= nil then
    return one(("ALTER TABLE %s CHANGE COLUMN %s %s"):format(
      quote(tname), quote(cname), column_sql(col, o.new_name)))
  end
  return one(("ALTER TABLE %s MODIFY COLUMN %s"):format(quote(tname), column_sql(col, cname)))
end

local function check_opts(where, o, known)
  if o == nil then return {} end
  if type(o) ~= "table" then
    fail("%s: options must be a table, got %s", where, type(o))
  end
  check_keys(where, "option", o, known)
  return o
end

function build.create_index(name, tname, columns, o)
  local where = "create_index"
  check_name(where, "table name", tname)
  check_names(where, "columns", columns)
  o = check_opts(where, o, { unique = true })
  check_is("boolean", where, "unique", o.unique)
  if name == nil then
    name = _M.default_name(o.unique and "uq" or "ix", tname, columns)
  end
  check_name(where, "index name", name)
  return one(("CREATE %sINDEX %s ON %s %s"):format(o.unique and "UNIQUE " or "",
    quote(name), quote(tname), quote_list(columns)))
end

function build.drop_index(name, tname)
  check_name("drop_index", "index name", name)
  check_name("drop_index", "table name", tname)
  return one(("DROP INDEX %s ON %s"):format(quote(name), quote(tname)))
end

function build.create_unique_constraint(name, tname, columns)
  local where = "create_unique_constraint"
  check_name(where, "table name", tname)
  check_names(where, "columns", columns)
  if name == nil then name = _M.default_name("uq", tname, columns) end
  check_name(where, "constraint name", name)
  return one(("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE %s"):format(quote(tname), quote(name), quote_list(columns)))
end

function build.create_primary_key(name, tname, columns)
  local where = "create_primary_key"
  if name ~= nil then check_name(where, "constraint name", name) end
  check_name(where, "table name", tname)
  check_names(where, "columns", columns)
  -- MySQL's primary key is always called PRIMARY; the name is ignored
  return one(("ALTER TABLE %s ADD PRIMARY KEY %s"):format(quote(tname), quote_list(columns)))
end

function build.create_check_constraint(name, tname, condition)
  local where = "create_check_constraint"
  check_name(where, "constraint name", name)
  check_name(where, "table name", tname)
  if type(condition) ~= "string" or condition == "" then
    fail("%s: condition must be a non-empty string of SQL, got %s", where,
      condition == "" and "an empty string" or type(condition))
  end
  return one(("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s)"):format(quote(tname), quote(name), condition))
end

function build.create_foreign_key(name, source, ref, local_cols, remote_cols, o)
  local where = "create_foreign_key"
  check_name(where, "source table", source)
  check_name(where, "referenced table", ref)
  check_names(where, "local columns", local_cols)
  check_names(where, "remote columns", remote_cols)
  if #local_cols ~= #remote_cols then
    fail("%s: %d local columns but %d remote columns", where, #local_cols, #remote_cols)
  end
  o = check_opts(where, o, { ondelete = true, onupdate = true })
  if name == nil then name = _M.default_name("fk", source, local_cols, ref) end
  check_name(where, "constraint name", name)
  local fk = {
    name = name, columns = local_cols, ref_table = ref, ref_columns = remote_cols,
    ondelete = check_rule(where, "ondelete", o.ondelete),
    onupdate = check_rule(where, "onupdate", o.onupdate),
  }
  return one(("ALTER TABLE %s ADD %s"):format(quote(source), fk_sql(fk)))
end

local DROP_KINDS = { foreignkey = true, unique = true, primary = true, check = true }

function build.drop_constraint(name, tname, kind)
  local where = "drop_constraint"
  check_name(where, "table name", tname)
  if kind == nil then
    fail("%s: MySQL needs the constraint type: \"foreignkey\", \"unique\", \"primary\" or \"check\"", where)
  end
  if not DROP_KINDS[kind] then
    fail("%s: unknown constraint type %s (expected \"foreignkey\", \"unique\", \"primary\" or \"check\")",
      where, type(kind) == "string" and sql_string(kind) or tostring(kind))
  end
  if kind == "primary" then
    if name ~= nil then check_name(where, "constraint name", name) end
    return one(("ALTER TABLE %s DROP PRIMARY KEY"):format(quote(tname)))
  end
  check_name(where, "constraint name", name)
  if kind == "foreignkey" then
    return one(("ALTER TABLE %s DROP FOREIGN KEY %s"):format(quote(tname), quote(name)))
  elseif kind == "unique" then
    return one(("ALTER TABLE %s DROP INDEX %s"):format(quote(tname), quote(name)))
  end
  return one(("ALTER TABLE %s DROP CONSTRAINT %s"):format(quote(tname), quote(name)))
end

function build.execute(sql, params)
  if type(sql) ~= "string" or sql:match("^%s*$") then
    fail("execute: sql must be a non-empty string, got %s", type(sql) == "string" and "an empty string" or type(sql))
  end
  if params ~= nil and type(params) ~= "table" then
    fail("execute: params must be a table (array for ?, keys for :name), got %s", type(params))
  end
  return one(sql, params)
end

-- Prepared statements take at most 65,535 parameters.
local MAX_PARAMS = 65535

function build.bulk_insert(tname, rows)
  local where = "bulk_insert"
  check_name(where, "table name", tname)
  if type(rows) ~= "table" then
    fail("%s: rows must be a list of tables keyed by column name, got %s", where, type(rows))
  end
  if #rows == 0 then
    if next(rows) ~= nil then
      fail("%s: rows must be a list of tables keyed by column name", where)
    end
    return {}
  end
  local seen, cols = {}, {}
  for i = 1, #rows do
    local row = rows[i]
    if type(row) ~= "table" then
      fail("%s: row %d must be a table keyed by column name, got %s", where, i, type(row))
    end
    for k in pairs(row) do
      if type(k) ~= "string" then
        fail("%s: row %d: keys must be column names, got %s", where, i, type(k))
      end
      if not seen[k] then
        check_name(where, "column name", k)
        seen[k] = true
        cols[#cols + 1] = k
      end
    end
  end
  table.sort(cols)
  local per = floor(MAX_PARAMS / #cols)
  local group = "(" .. ("?, "):rep(#cols - 1) .. "?)"
  local head = ("INSERT INTO %s %s VALUES "):format(quote(tname), quote_list(cols))
  local out = {}
  local first = 1
  while first <= #rows do
    local last = math.min(#rows, first + per - 1)
    local params, groups = {}, {}
    for i = first, last do
      local row = rows[i]
      for _, c in ipairs(cols) do
        local v = row[c]
        if v == nil then
          fail("%s: row %d has no value for column '%s' (use op.null for NULL)", where, i, c)
        end
        if v ~= NULL then
          local t = type(v)
          if t ~= "string" and t ~= "number" and t ~= "boolean" then
            fail("%s: row %d, column '%s': a value must be a string, number, boolean or op.null, got %s",
              where, i, c, t)
          end
        end
        params[#params + 1] = v
      end
      groups[#groups + 1] = group
    end
    out[#out + 1] = { sql = head .. table.concat(groups, ", "), params = params }
    first = last + 1
  end
  return out
end

_M.build = build

---------------------------------------------------------------------------
-- Inlining parameters, for --sql output of execute and bulk_insert.

--- The statement with each placeholder replaced by value(key): key is the
--- position (1, 2, …) for `?` and the name for `:name`. Placeholders inside
--- quotes, backticks and comments are left alone: the C core finds them
--- (core.placeholders), by the rules of the statements it prepares.
-- syntax: sql = ops.substitute(sql, value)
function _M.substitute(sql, value)
  local out, pos, n = {}, 1, 0
  for _, p in ipairs(core.placeholders(sql)) do
    local key = p[3]
    if key == nil then
      n = n + 1
      key = n
    end
    out[#out + 1] = sql:sub(pos, p[1] - 1)
    out[#out + 1] = value(key)
    pos = p[2] + 1
  end
  out[#out + 1] = sql:sub(pos)
  return table.concat(out)
end

--- The statement with its parameters written in as SQL literals: `?` from
--- the array part, `:name` from the string keys; raises when they do not
--- match the placeholders.
-- syntax: sql = ops.inline(sql, params)
function _M.inline(sql, params)
  if params == nil then return sql end
  local positional, used_named = 0, false
  local text = _M.substitute(sql, function(key)
    local v = params[key]
    if type(key) == "number" then
      positional = key
      if v == nil then
        fail("inline: statement has more placeholders than the %d parameters given", #params)
      end
    else
      used_named = true
      if v == nil then fail("inline: no parameter for :%s", key) end
    end
    return literal(v, "inline")
  end)
  if positional < #params and not used_named then
    fail("inline: statement has %d placeholders but %d parameters were given", positional, #params)
  end
  return text
end

---------------------------------------------------------------------------
-- The op object.

local OPS = {
  "create_table", "drop_table", "rename_table", "add_column", "drop_column",
  "alter_column", "create_index", "drop_index", "create_unique_constraint",
  "create_primary_key", "create_check_constraint", "create_foreign_key",
  "drop_constraint", "execute", "bulk_insert",
}
_M.names = OPS

local function failure_message(name, sql, err, errno, sqlstate)
  local msg = tostring(err or "unknown error"):gsub("^fsdb: ", "")
  local codes = ""
  if errno ~= nil or sqlstate ~= nil then
    codes = (" [errno %s, sqlstate %s]"):format(tostring(errno or "?"), tostring(sqlstate or "?"))
  end
  return ("fsdb: %s failed: %s%s in: %s"):format(name, msg, codes, sql)
end

local NEW_KEYS = { dialect = true }

--- Creates an op whose methods hand each statement to run(sql, params)
--- (params only for execute and bulk_insert). run returns a true value on
--- success, or nil, err, errno, sqlstate. Every statement is appended to
--- op.statements before it runs; a failed one raises
--- "fsdb: <op> failed: <err> [errno N, sqlstate S] in: <sql>" and is
--- described in op.last_failure = {op, sql, params, err, errno, sqlstate}.
--- opts.dialect (fsdb.sqltext) is what the text is written for; nil means
--- --sql output.
-- syntax: op = ops.new(run, {dialect = d})
function _M.new(run, opts)
  if type(run) ~= "function" then
    error("fsdb: ops.new: run must be a function(sql, params), got " .. type(run), 2)
  end
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("fsdb: ops.new: options must be a table, got " .. type(opts), 2)
    end
    for k in pairs(opts) do
      if not NEW_KEYS[k] then
        error(("fsdb: ops.new: unknown option '%s'"):format(tostring(k)), 2)
      end
    end
  end

  local dialect = opts and opts.dialect
  if dialect ~= nil and not sqltext.is_dialect(dialect) then
    error("fsdb: ops.new: dialect must come from fsdb.sqltext, got " .. type(dialect), 2)
  end

  local op = {
    statements = {},
    last_failure = nil,
    raw = _M.raw,
    null = NULL,
    no_default = NO_DEFAULT,
    f = function(name) return name end,  -- Alembic's op.f: a name used as given
  }

  local function perform(name, stmt)
    local sql, params = stmt.sql, stmt.params
    op.statements[#op.statements + 1] = sql
    op.last_failure = nil
    local ok, res, err, errno, sqlstate
    if params == nil then
      ok, res, err, errno, sqlstate = pcall(run, sql)
    else
      ok, res, err, errno, sqlstate = pcall(run, sql, params)
    end
    if not ok then
      op.last_failure = { op = name, sql = sql, params = params, err = res }
      error(res, 0)
    end
    if not res then
      op.last_failure = { op = name, sql = sql, params = params, err = err, errno = errno, sqlstate = sqlstate }
      error(failure_message(name, sql, err, errno, sqlstate), 0)
    end
    return res
  end

  for _, name in ipairs(OPS) do
    local builder = build[name]
    op[name] = function(...)
      local outer = current_dialect
      current_dialect = dialect
      local ok, stmts = pcall(builder, ...)
      current_dialect = outer
      if not ok then
        error(stmts, 2)
      end
      local res
      for i = 1, #stmts do
        res = perform(name, stmts[i])
      end
      return res
    end
  end
  return op
end

return _M
