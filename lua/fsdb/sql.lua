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
--     `col DESC` — anything else raises;
--   * a where table is one documented syntax (README "Store helpers"):
--     column = value, column = fsdb.null, column = {list} (IN), column =
--     {op = value, …} with the operators below, and list entries that are
--     OR groups; anything else raises;
--   * a nil or empty where never widens: update and delete raise unless
--     told where = fsdb.all, select raises on an empty where table.
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

--- Every row, said on purpose: where = fsdb.all (also fsdb.sql.all).
-- update and delete refuse a nil or empty where, so that a nil variable
-- ({id = nil} is {}) can never widen a write to the whole table.
local ALL = setmetatable({}, {
  __tostring = function() return "fsdb.all" end,
  __newindex = function() error("fsdb: fsdb.all is read-only", 2) end,
  __metatable = "fsdb.all",
})
_M.all = ALL

-- The operators of an operator table { gt = 5, le = 10, like = "K%", … }.
local COMPARE = { eq = "=", ne = "<>", lt = "<", le = "<=", gt = ">", ge = ">=",
                  like = "LIKE", not_like = "NOT LIKE" }
local KNOWN_OPS = "between, eq, ge, gt, in, le, like, lt, ne, not_between, not_in, not_like"

-- SQL operator words that open a list by mistake: {price = {">", 5}} is
-- a comparison written the SQL way, not IN ('>', 5).
local OP_WORDS = { ["="] = "eq", ["=="] = "eq", ["!="] = "ne", ["<>"] = "ne", ["<"] = "lt",
                   ["<="] = "le", [">"] = "gt", [">="] = "ge", like = "like",
                   ["not like"] = "not_like", ["in"] = "in", ["not in"] = "not_in",
                   between = "between", ["not between"] = "not_between",
                   is = "eq", ["is not"] = "ne" }

local function scalar(v, col, what)
  local t = type(v)
  if v == NULL then
    fail("where: %s for '%s' cannot be fsdb.null (nothing compares equal to NULL); "
      .. "use {%s = fsdb.null} for IS NULL or {%s = {ne = fsdb.null}} for IS NOT NULL", what, col, col, col)
  end
  if t == "number" and v ~= v then
    fail("where: %s for '%s' is NaN, which matches no row", what, col)
  end
  if t ~= "string" and t ~= "number" and t ~= "boolean" and t ~= "userdata" and t ~= "cdata" then
    fail("where: %s for '%s' must be a value (string, number, boolean), got %s", what, col, t)
  end
  return v
end

-- "(?, ?, ?)" for a list, its values appended to params.
local function placeholders(list, col, what, params)
  local m = {}
  for i = 1, #list do
    m[i] = "?"
    params[#params + 1] = scalar(list[i], col, what)
  end
  return "(" .. table.concat(m, ", ") .. ")"
end

local function check_list(v, col, op)
  if type(v) ~= "table" or not is_list(v) then
    fail("where: %s for '%s' must be a list of values, got %s", op, col, type(v))
  end
end

-- One operator of an operator table as SQL, values appended to params.
local function operator(q, col, op, v, params)
  local cmp = COMPARE[op]
  if cmp then
    if v == NULL and (op == "eq" or op == "ne") then
      return q .. (op == "eq" and " IS NULL" or " IS NOT NULL")
    end
    if (op == "like" or op == "not_like") and type(v) ~= "string" then
      fail("where: %s for '%s' must be a string pattern, got %s", op, col, type(v))
    end
    params[#params + 1] = scalar(v, col, op)
    return q .. " " .. cmp .. " ?"
  elseif op == "in" then
    check_list(v, col, op)
    if #v == 0 then return "1 = 0" end -- IN () is a syntax error; nothing matches
    return q .. " IN " .. placeholders(v, col, "an in value", params)
  elseif op == "not_in" then
    check_list(v, col, op)
    if #v == 0 then
      fail("where: not_in for '%s' is an empty list, which would match every row; "
        .. "use where = fsdb.all for every row", col)
    end
    return q .. " NOT IN " .. placeholders(v, col, "a not_in value", params)
  elseif op == "between" or op == "not_between" then
    if type(v) ~= "table" or not is_list(v) or #v ~= 2 then
      fail("where: %s for '%s' must be a list of two values {low, high}", op, col)
    end
    params[#params + 1] = scalar(v[1], col, op)
    params[#params + 1] = scalar(v[2], col, op)
    return q .. (op == "between" and " BETWEEN ? AND ?" or " NOT BETWEEN ? AND ?")
  end
  fail("where: unknown operator '%s' for '%s' (known: %s)", tostring(op), col, KNOWN_OPS)
end

local conditions

-- An OR group: a non-empty list of where tables, any of which may match.
local function or_group(group, params)
  if type(group) ~= "table" or not is_list(group) or #group == 0 then
    fail("where: list entries must be OR groups, each a non-empty list of where tables")
  end
  local alts = {}
  for i, alt in ipairs(group) do
    if type(alt) ~= "table" then
      fail("where: OR group entry %d must be a where table, got %s", i, type(alt))
    end
    local conds = conditions(alt, params)
    if #conds == 0 then
      fail("where: OR group entry %d is empty, which would match every row "
        .. "(a nil value leaves its key out)", i)
    end
    alts[i] = #conds == 1 and conds[1] or "(" .. table.concat(conds, " AND ") .. ")"
  end
  return #alts == 1 and alts[1] or "(" .. table.concat(alts, " OR ") .. ")"
end

-- The conditions of a where table, ANDed by the caller: its columns sorted
-- by name, then its OR groups in list order.
function conditions(where, params)
  local cols, n = {}, 0
  for k in pairs(where) do
    if type(k) == "string" then
      cols[#cols + 1] = k
    elseif math.type and math.type(k) == "integer" or type(k) == "number" and k == math.floor(k) then
      n = n + 1
    else
      fail("where keys must be column names (strings), got %s", type(k))
    end
  end
  if n ~= #where then
    fail("where: list entries (OR groups) must be a sequence 1..n")
  end
  table.sort(cols)
  local conds = {}
  for _, col in ipairs(cols) do
    local v = where[col]
    local q = quote_ident(col)
    if v == NULL then
      conds[#conds + 1] = q .. " IS NULL"
    elseif v == ALL then
      fail("where value for '%s' cannot be fsdb.all (it stands for the whole where)", col)
    elseif type(v) == "table" then
      local first = next(v)
      if first == nil or type(first) == "number" then
        if not is_list(v) then
          fail("where value for '%s' must be a list (IN), an operator table or a value, "
            .. "got a table mixing both", col)
        end
        local word = type(v[1]) == "string" and OP_WORDS[v[1]:lower():gsub("%s+", " ")]
        if word then
          if word == "in" then word = '["in"]' end
          fail("where value for '%s' is a list starting with '%s': write the comparison as "
            .. "{%s = {%s = value}} (or {%s = {[\"in\"] = list}} for an IN list that holds it)",
            col, v[1], col, word, col)
        end
        if #v == 0 then
          -- IN () is a syntax error; an empty list matches nothing.
          conds[#conds + 1] = "1 = 0"
        else
          conds[#conds + 1] = q .. " IN " .. placeholders(v, col, "an IN value", params)
        end
      else
        local ops = {}
        for op in pairs(v) do
          if type(op) ~= "string" then
            fail("where value for '%s' must be a list (IN), an operator table or a value, "
              .. "got a table mixing both", col)
          end
          ops[#ops + 1] = op
        end
        table.sort(ops)
        for _, op in ipairs(ops) do
          conds[#conds + 1] = operator(q, col, op, v[op], params)
        end
      end
    else
      conds[#conds + 1] = q .. " = ?"
      params[#params + 1] = scalar(v, col, "the value")
    end
  end
  for i = 1, #where do
    conds[#conds + 1] = or_group(where[i], params)
  end
  return conds
end

-- " WHERE …" appended to parts, values to params. what is the statement
-- kind; an update or delete must say which rows.
local function where_clause(where, parts, params, what)
  if where == ALL then return end
  if where == nil then
    if what == "select" then return end
    fail("%s needs a where table; to %s every row say so: where = fsdb.all", what, what)
  end
  if type(where) ~= "table" then
    fail("where must be a table of column = value (or fsdb.all), got %s", type(where))
  end
  local conds = conditions(where, params)
  if #conds == 0 then
    fail("empty where table for %s (a nil value, as in {id = nil}, leaves its key out); "
      .. "to %s every row %s", what, what,
      what == "select" and "leave where out or pass where = fsdb.all" or "say so: where = fsdb.all")
  end
  parts[#parts + 1] = " WHERE " .. table.concat(conds, " AND ")
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

local function build_update(tbl, values, where)
  local target = quote_ident(tbl)
  local cols = check_values(values, "update")
  local sets, params = {}, {}
  for i, col in ipairs(cols) do
    sets[i] = quote_ident(col) .. " = ?"
    params[i] = values[col]
  end
  local parts = { "UPDATE ", target, " SET ", table.concat(sets, ", ") }
  where_clause(where, parts, params, "update")
  return table.concat(parts), params
end

local function build_delete(tbl, where)
  local target = quote_ident(tbl)
  local parts, params = { "DELETE FROM ", target }, {}
  where_clause(where, parts, params, "delete")
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
  where_clause(opts.where, parts, params, "select")

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

--- UPDATE `tbl` SET `a` = ? … WHERE …; where is required (fsdb.all = every row).
-- syntax: sql, params = fsdb.sql.update(tbl, values, where)
function _M.update(tbl, values, where)
  local sql, params = checked(pcall(build_update, tbl, values, where))
  return sql, params
end

--- DELETE FROM `tbl` WHERE …; where is required (fsdb.all = every row).
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

--- An OR group for a where table: any of the where tables may match.
--- fsdb.sql.any(a, b) is the list {a, b}; put it in the where table's list
--- part: where = { customer_id = 1, fsdb.sql.any({status = "new"}, {total = {gt = 100}}) }.
-- syntax: group = fsdb.sql.any(where1, where2, …)
function _M.any(...)
  local n, group = select("#", ...), { ... }
  for i = 1, n do
    if group[i] == nil then n = 0 end
  end
  if n == 0 then
    error("fsdb: any needs one or more where tables (got a nil)", 2)
  end
  return group
end

return _M
