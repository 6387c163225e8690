--- fsdb.migrate.render — the only place autogenerate writes code: the
--- Lua source of the op calls for diffs that fsdb.migrate.compare made
--- (plain data), one diff at a time or as the bodies of up() and down().

local core = require("fsdb.core")
local model = require("fsdb.migrate.model")
local sqltext = require("fsdb.sqltext")
local types = require("fsdb.migrate.types")

local NULL = core.null
local NO_DEFAULT = model.no_default
local ATTR_BY_KIND, mix = types.ATTR_BY_KIND, types.mix

local _M = {}

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
  if model.is_raw(v) then return "op.raw(" .. lua_string(v.sql) .. ")" end
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
  if t.row_format then
    opt[#opt + 1] = "  row_format = " .. lua_string(t.row_format) .. ","
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

-- The op calls of one diff: kind → function(d) returning up, down.
local function column_change(d)
  local only = { [d.alter.attr] = true }
  return alter_lua(d.table, d.column, d.alter.before, d.alter.after, only),
    alter_lua(d.table, d.column, d.alter.after, d.alter.before, only)
end

local function drop_table(d)
  return ("op.drop_table(%s)"):format(lua_string(d.table))
end

local function table_options(d, o)
  local t = {}
  for _, k in ipairs({ "engine", "charset", "collate", "comment", "row_format" }) do
    if o[k] ~= nil then t[#t + 1] = ("%s = %s"):format(k, lua_string(o[k])) end
  end
  return ("op.alter_table(%s, { %s })"):format(lua_string(d.table), table.concat(t, ", "))
end

local CODE = {
  add_table = function(d) return create_table_lua(d.definition, d.skip_fk), drop_table(d) end,
  drop_table = function(d) return drop_table(d), create_table_lua(d.definition, d.skip_fk) end,
  add_fk = function(d) return fk_up(d.table, d.fk), fk_down(d.table, d.fk) end,
  drop_fk = function(d) return fk_down(d.table, d.fk), fk_up(d.table, d.fk) end,
  add_column = function(d)
    return ("op.add_column(%s, %s)"):format(lua_string(d.table), column_lua(d.spec, d.spec.primary_key)),
      ("op.drop_column(%s, %s)"):format(lua_string(d.table), lua_string(d.column))
  end,
  drop_column = function(d)
    return ("op.drop_column(%s, %s)"):format(lua_string(d.table), lua_string(d.column)),
      ("op.add_column(%s, %s)"):format(lua_string(d.table), column_lua(d.spec, false))
  end,
  add_index = function(d) return index_create(d.table, d.index), index_drop(d.table, d.index) end,
  drop_index = function(d) return index_drop(d.table, d.index), index_create(d.table, d.index) end,
  add_unique = function(d) return unique_create(d.table, d.index), unique_drop(d.table, d.index) end,
  drop_unique = function(d) return unique_drop(d.table, d.index), unique_create(d.table, d.index) end,
  modify_table = function(d) return table_options(d, d.to), table_options(d, d.from) end,
}
for kind in pairs(ATTR_BY_KIND) do CODE[kind] = column_change end

--- The Lua source of one diff's op call(s): up, down.
-- syntax: up, down = render.diff(d)
function _M.diff(d)
  local code = type(d) == "table" and CODE[d.kind]
  if not code then
    error(("fsdb: autogenerate: cannot render a diff of kind %s"):format(tostring(type(d) == "table" and d.kind)), 2)
  end
  return code(d)
end

---------------------------------------------------------------------------
-- Rendering.

local function indent_lines(text, indent)
  return indent .. text:gsub("\n", "\n" .. indent)
end

--- The bodies of up(op) and down(op) for a list of diffs from compare:
--- one op call per line (create_table spans several), in a dependency-safe
--- order (down in the reverse order), column changes of one column merged
--- into one alter_column. The third value is a comment listing
--- diffs.notes (nil without notes), for the top of the revision file.
--- opts.indent (default four spaces) prefixes every line.
-- syntax: up_body, down_body, notes_comment = autogen.render(diffs, opts)
function _M.bodies(diffs, opts)
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

  -- compare's order is already dependency-safe: it is kept as it is.
  local entries = {}
  local k = 1
  while k <= #diffs do
    local d = diffs[k]
    if d.alter and ATTR_BY_KIND[d.kind] then
      local group, changed = { d }, { [d.alter.attr] = true }
      local j = k + 1
      while j <= #diffs do
        local e = diffs[j]
        if e.alter and e.table == d.table and e.column == d.column and ATTR_BY_KIND[e.kind] then
          group[#group + 1] = e
          changed[e.alter.attr] = true
          j = j + 1
        else
          break
        end
      end
      if #group == 1 then
        local up, down = _M.diff(d)
        entries[#entries + 1] = { up = up, down = down }
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
      local up, down = _M.diff(d)
      entries[#entries + 1] = { up = up, down = down }
      k = k + 1
    end
  end

  -- What was not proposed goes once into the file's header comment (the
  -- third value), never into both bodies.
  local header = {}
  local notes = diffs.notes or {}
  if #notes > 0 then
    header[#header + 1] = "-- Not proposed by autogenerate (review before applying):"
    for _, n in ipairs(notes) do
      header[#header + 1] = "--   " .. tostring(n):gsub("[\r\n]", " ")
    end
  end

  local up, down = {}, {}
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
  return table.concat(up, "\n") .. "\n", table.concat(down, "\n") .. "\n",
    #header > 0 and (table.concat(header, "\n") .. "\n") or nil
end

return _M

