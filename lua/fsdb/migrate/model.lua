--- fsdb.migrate.model — the table model: what a column spec and a table
--- declaration are, checked once for both places that take them —
--- op.create_table / op.add_column (fsdb.migrate.ops) and schema:table
--- (fsdb.schema) — so that what a migration creates and what the schema
--- declares cannot drift apart in spelling. Also op.raw, op.null,
--- op.no_default and fsdb's default constraint names.
--
-- Misuse raises "fsdb: <where>: …" (level 0; callers re-raise at their
-- caller's line). Nothing here writes SQL.

local core = require("fsdb.core")
local sqltext = require("fsdb.sqltext")

local NULL = core.null

local _M = {}

-- Lua 5.1/LuaJIT and 5.4 alike: no integer division, no goto.
local floor = math.floor

local function fail(fmt, ...)
  error("fsdb: " .. fmt:format(...), 0)
end

-- A bad value as it is shown in a message.
local function sql_string(s)
  return sqltext.literal(s)
end

local number_text = sqltext.number_text

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
  engine = true, charset = true, collate = true, comment = true, row_format = true,
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
  def.row_format = check_word(tw, "row_format", options.row_format)
  return def
end


_M.check_name = check_name
_M.check_names = check_names
_M.check_type = check_type
_M.check_value = check_value
_M.check_on_update = check_on_update
_M.check_is = check_is
_M.check_word = check_word
_M.check_keys = check_keys
_M.check_rule = check_rule
_M.check_list = check_list
_M.fail = fail
return _M
