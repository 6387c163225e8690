--- fsdb.migrate.types — the lexing half of autogenerate: column types,
--- defaults and expressions in one canonical spelling, and the column
--- state compare and render share.
--
-- MySQL and MariaDB print a column back in their own words (int(10)
-- unsigned, tinyint(1), current_timestamp(), '…' around defaults); a
-- declaration says INT UNSIGNED, BOOLEAN, op.raw("CURRENT_TIMESTAMP").
-- Everything here turns both into one spelling so that equal means equal.
-- Pure functions, no connection.

local core = require("fsdb.core")
local model = require("fsdb.migrate.model")
local sqltext = require("fsdb.sqltext")

local NULL = core.null
local NO_DEFAULT = model.no_default

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
  elseif model.is_raw(v) then
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
  if arg then return model.raw("CURRENT_TIMESTAMP" .. arg:upper()) end
  local text = d.text
  if not text:match("^%(.*%)$") then text = "(" .. text .. ")" end
  return model.raw(text)
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
-- Column state: a column as compared (reflected or declared), and the
-- attributes alter_column changes.

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

_M.is_numeric = is_numeric
_M.display_type = display_type
_M.reflected_default = reflected_default
_M.declared_default = declared_default
_M.same_default = same_default
_M.default_value = default_value
_M.default_text = default_text
_M.on_update_canon = on_update_canon
_M.declared_state = declared_state
_M.ATTRS = ATTRS
_M.ATTR_BY_KIND = ATTR_BY_KIND
_M.differs = differs
_M.show = show
_M.mix = mix
return _M
