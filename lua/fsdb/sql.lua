--- fsdb.sql — builds the statements behind the store helpers
--- (session:insert, :update, :delete, :select).
--
-- Pure string building, no connection: every builder returns the SQL text
-- and an array of parameters for conn:execute(sql, params).
--
-- The rules that keep it safe:
--   * identifiers (tables, columns) are always quoted by fsdb.sqltext
--     (backticks, a backtick doubled, well-formed UTF-8 only); "db.table" and
--     "t.col" are split on the dots and each part quoted (so a name cannot
--     itself contain a dot);
--   * values are never part of the text: they are always bound as `?`;
--   * the only caller text that reaches the SQL unquoted is an order_by
--     entry, and that must look like `col`, `t.col`, `col ASC` or
--     `col DESC` — anything else raises.
-- Columns come out sorted by name, so the same call shape always gives the
-- same statement text (one entry in the connection's statement cache).

local core = require("fsdb.core")
local sqltext = require("fsdb.sqltext")

local NULL = core.null

local _M = {}

local function fail(fmt, ...)
  error("fsdb: " .. fmt:format(...), 0)
end

local function whole(v)
  return type(v) == "number" and v == math.floor(v) and v > -math.huge and v < math.huge
end

-- Lua 5.4: 10.0 → 10, so LIMIT gets an integer parameter; LuaJIT sends
-- whole numbers as integers anyway.
local function int(v)
  return math.tointeger and math.tointeger(v) or v
end

-- The statements go over a connection in utf8mb4 or another charset fsdb
-- accepts (all ASCII-safe), never to another client: not portable text.
local DIALECT = sqltext.dialect{ portable = false }

--- Quotes an identifier with backticks; "a.b" becomes `a`.`b`.
-- syntax: s = fsdb.sql.quote_ident(name)
local function quote_ident(name)
  if type(name) ~= "string" then
    fail("identifier must be a string, got %s", type(name))
  end
  if name:find("\0", 1, true) then
    fail("identifier contains a NUL byte")
  end
  local parts = {}
  for part in (name .. "."):gmatch("(.-)%.") do
    if part == "" then
      fail("empty identifier in '%s'", name)
    end
    parts[#parts + 1] = sqltext.ident(part, DIALECT)
  end
  return table.concat(parts, ".")
end

-- The string keys of t, sorted; raises on any other key.
local function sorted_columns(t, what)
  local cols = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      fail("%s keys must be column names (strings), got %s", what, type(k))
    end
    cols[#cols + 1] = k
  end
  table.sort(cols)
  return cols
end

local function is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- " WHERE …" (or "" for an empty table) appended to parts; values to params.
local function where_clause(where, parts, params)
  if where == nil then return end
  if type(where) ~= "table" then
    fail("where must be a table of column = value, got %s", type(where))
  end
  local conds = {}
  for _, col in ipairs(sorted_columns(where, "where")) do
    local v = where[col]
    local q = quote_ident(col)
    if v == NULL then
      conds[#conds + 1] = q .. " IS NULL"
    elseif type(v) == "table" then
      if not is_list(v) then
        fail("where value for '%s' must be a list (for IN) or a value, got a table with other keys", col)
      end
      if #v == 0 then
        -- IN () is a syntax error; an empty list matches nothing.
        conds[#conds + 1] = "1 = 0"
      else
        local marks = {}
        for i = 1, #v do
          marks[i] = "?"
          params[#params + 1] = v[i]
        end
        conds[#conds + 1] = q .. " IN (" .. table.concat(marks, ", ") .. ")"
      end
    else
      conds[#conds + 1] = q .. " = ?"
      params[#params + 1] = v
    end
  end
  if #conds > 0 then
    parts[#parts + 1] = " WHERE " .. table.concat(conds, " AND ")
  end
end

local function check_values(values, what)
  if type(values) ~= "table" then
    fail("%s values must be a table of column = value, got %s", what, type(values))
  end
  local cols = sorted_columns(values, what)
  if #cols == 0 then
    fail("%s needs at least one column value", what)
  end
  return cols
end

local function build_insert(tbl, values)
  local target = quote_ident(tbl)
  local cols = check_values(values, "insert")
  local names, marks, params = {}, {}, {}
  for i, col in ipairs(cols) do
    names[i] = quote_ident(col)
    marks[i] = "?"
    params[i] = values[col]
  end
  return ("INSERT INTO %s (%s) VALUES (%s)"):format(target, table.concat(names, ", "),
    table.concat(marks, ", ")), params
end

-- update and delete insist on a where table, so that "every row" is
-- always written out as {} and never happens through a forgotten argument.
local function need_where(where, what)
  if where == nil then
    fail("%s needs a where table (pass {} to %s every row)", what, what)
  end
end

local function build_update(tbl, values, where)
  local target = quote_ident(tbl)
  local cols = check_values(values, "update")
  need_where(where, "update")
  local sets, params = {}, {}
  for i, col in ipairs(cols) do
    sets[i] = quote_ident(col) .. " = ?"
    params[i] = values[col]
  end
  local parts = { "UPDATE ", target, " SET ", table.concat(sets, ", ") }
  where_clause(where, parts, params)
  return table.concat(parts), params
end

local function build_delete(tbl, where)
  local target = quote_ident(tbl)
  need_where(where, "delete")
  local parts, params = { "DELETE FROM ", target }, {}
  where_clause(where, parts, params)
  return table.concat(parts), params
end

local function order_term(entry)
  if type(entry) ~= "string" then
    fail("order_by entries must be strings, got %s", type(entry))
  end
  local col, dir = entry:match("^([%w_%.]+)%s+(%a+)$")
  if col then
    dir = dir:upper()
    if dir ~= "ASC" and dir ~= "DESC" then col = nil end
  else
    col = entry:match("^[%w_%.]+$")
  end
  if not col then
    fail("bad order_by entry '%s' (expected a column name, optionally followed by ASC or DESC)", entry)
  end
  return quote_ident(col) .. (dir and (" " .. dir) or "")
end

local SELECT_OPTIONS = { columns = true, where = true, order_by = true, limit = true,
                         offset = true, for_update = true }

local function build_select(tbl, opts)
  local target = quote_ident(tbl)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    fail("select options must be a table, got %s", type(opts))
  end
  for k in pairs(opts) do
    if not SELECT_OPTIONS[k] then
      fail("unknown select option '%s' (known: columns, for_update, limit, offset, order_by, where)",
        tostring(k))
    end
  end

  local cols = "*"
  if opts.columns ~= nil then
    if type(opts.columns) ~= "table" or #opts.columns == 0 or not is_list(opts.columns) then
      fail("columns must be a non-empty list of column names")
    end
    local quoted = {}
    for i, c in ipairs(opts.columns) do quoted[i] = quote_ident(c) end
    cols = table.concat(quoted, ", ")
  end

  local parts, params = { "SELECT ", cols, " FROM ", target }, {}
  where_clause(opts.where, parts, params)

  local order = opts.order_by
  if order ~= nil then
    if type(order) == "string" then order = { order } end
    if type(order) ~= "table" or #order == 0 or not is_list(order) then
      fail("order_by must be a column name or a non-empty list of them")
    end
    local terms = {}
    for i, entry in ipairs(order) do terms[i] = order_term(entry) end
    parts[#parts + 1] = " ORDER BY " .. table.concat(terms, ", ")
  end

  if opts.limit ~= nil then
    if not whole(opts.limit) or opts.limit < 1 then
      fail("limit must be a whole number >= 1, got %s", tostring(opts.limit))
    end
    parts[#parts + 1] = " LIMIT ?"
    params[#params + 1] = int(opts.limit)
  end
  if opts.offset ~= nil then
    if not whole(opts.offset) or opts.offset < 0 then
      fail("offset must be a whole number >= 0, got %s", tostring(opts.offset))
    end
    if opts.limit == nil then
      fail("offset needs a limit")
    end
    parts[#parts + 1] = " OFFSET ?"
    params[#params + 1] = int(opts.offset)
  end

  if opts.for_update ~= nil and type(opts.for_update) ~= "boolean" then
    fail("for_update must be a boolean, got %s", type(opts.for_update))
  end
  if opts.for_update then
    parts[#parts + 1] = " FOR UPDATE"
  end
  return table.concat(parts), params
end

--- The builders without the caller's position in their errors (for
--- modules that re-raise at their own caller, like fsdb.session).
_M.build = {
  insert = build_insert,
  update = build_update,
  delete = build_delete,
  select = build_select,
}

-- Re-raises a builder's error at the caller of the public function.
local function checked(ok, sql, params)
  if not ok then error(sql, 3) end
  return sql, params
end

--- Quotes an identifier with backticks; "a.b" becomes `a`.`b`.
-- syntax: s = fsdb.sql.quote_ident(name)
function _M.quote_ident(name)
  local ok, q = pcall(quote_ident, name)
  if not ok then error(q, 2) end
  return q
end

--- INSERT INTO `tbl` (`a`, `b`) VALUES (?, ?) with the values as parameters.
-- syntax: sql, params = fsdb.sql.insert(tbl, values)
function _M.insert(tbl, values)
  local sql, params = checked(pcall(build_insert, tbl, values))
  return sql, params
end

--- UPDATE `tbl` SET `a` = ? … WHERE …; where is required ({} = every row).
-- syntax: sql, params = fsdb.sql.update(tbl, values, where)
function _M.update(tbl, values, where)
  local sql, params = checked(pcall(build_update, tbl, values, where))
  return sql, params
end

--- DELETE FROM `tbl` WHERE …; where is required ({} = every row).
-- syntax: sql, params = fsdb.sql.delete(tbl, where)
function _M.delete(tbl, where)
  local sql, params = checked(pcall(build_delete, tbl, where))
  return sql, params
end

--- SELECT … FROM `tbl` [WHERE …] [ORDER BY …] [LIMIT ? [OFFSET ?]] [FOR UPDATE].
-- syntax: sql, params = fsdb.sql.select(tbl, {columns, where, order_by, limit, offset, for_update})
function _M.select(tbl, opts)
  local sql, params = checked(pcall(build_select, tbl, opts))
  return sql, params
end

return _M
