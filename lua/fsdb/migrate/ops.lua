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
local model = require("fsdb.migrate.model")

local NULL = core.null

local _M = {}

-- The table model (fsdb.migrate.model) is part of op's interface.
_M.raw, _M.is_raw, _M.null, _M.no_default = model.raw, model.is_raw, model.null, model.no_default
_M.default_name, _M.column, _M.table_definition = model.default_name, model.column, model.table_definition
_M.valid_type = model.valid_type
local is_raw, NO_DEFAULT = model.is_raw, model.no_default
local check_name, check_names, check_type = model.check_name, model.check_names, model.check_type
local check_value, check_on_update, check_is = model.check_value, model.check_on_update, model.check_is
local check_word, check_keys, check_rule = model.check_word, model.check_keys, model.check_rule

-- Lua 5.1/LuaJIT and 5.4 alike: no integer division, no goto.
local floor = math.floor

local function fail(fmt, ...)
  error("fsdb: " .. fmt:format(...), 0)
end

-- The dialect of the op whose builder is running (set around each build).
local current_dialect = nil

--- Quotes one identifier with backticks (fsdb.sqltext.ident).
-- syntax: s = ops.quote(name)
local function quote(name)
  return sqltext.ident(name, current_dialect)
end
_M.quote = quote

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
  if def.row_format then s = s .. " ROW_FORMAT=" .. def.row_format:upper() end
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

local ALTER_TABLE_KEYS = {
  engine = true, charset = true, collate = true, comment = true, row_format = true, convert = true,
}

-- Table options: ENGINE, the default character set and collation (with
-- convert = true, CONVERT TO: every text column too), COMMENT ('' removes
-- it), ROW_FORMAT.
function build.alter_table(tname, o)
  local where = "alter_table"
  check_name(where, "table name", tname)
  if type(o) ~= "table" then fail("%s: options must be a table, got %s", where, type(o)) end
  check_keys(where, "option", o, ALTER_TABLE_KEYS)
  local parts = {}
  if check_word(where, "engine", o.engine) then parts[#parts + 1] = "ENGINE=" .. o.engine end
  local cs, co = check_word(where, "charset", o.charset), check_word(where, "collate", o.collate)
  check_is("boolean", where, "convert", o.convert)
  if o.convert and not cs then fail("%s: convert needs charset", where) end
  if cs or co then
    local p = o.convert and ("CONVERT TO CHARACTER SET " .. cs) or (cs and ("DEFAULT CHARACTER SET=" .. cs) or "")
    if co then p = p .. (p ~= "" and " " or "DEFAULT ") .. (o.convert and "COLLATE " or "COLLATE=") .. co end
    parts[#parts + 1] = p
  end
  if check_is("string", where, "comment", o.comment) then
    parts[#parts + 1] = "COMMENT=" .. sqltext.text(o.comment, current_dialect)
  end
  if check_word(where, "row_format", o.row_format) then parts[#parts + 1] = "ROW_FORMAT=" .. o.row_format:upper() end
  if #parts == 0 then fail("%s: no table option given (engine, charset, collate, comment, row_format)", where) end
  return one(("ALTER TABLE %s %s"):format(quote(tname), table.concat(parts, ", ")))
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

-- Inlining parameters for --sql output lives in fsdb.migrate.inline (it
-- uses ops.literal, so it is loaded on first use).
function _M.substitute(sql, value)
  return require("fsdb.migrate.inline").substitute(sql, value)
end
function _M.inline(sql, params)
  return require("fsdb.migrate.inline").inline(sql, params)
end

---------------------------------------------------------------------------
-- The op object.

local OPS = {
  "create_table", "drop_table", "rename_table", "alter_table", "add_column", "drop_column",
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
