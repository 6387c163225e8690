--- fsdb.schema — the database schema declared in Lua, for autogenerate.
--
--   local schema = require("fsdb.schema")
--   local s = schema.new()
--   s:table("products", {
--     {"id", "INT UNSIGNED", primary_key = true, auto_increment = true},
--     {"name", "VARCHAR(200)", nullable = false},
--     {"category_id", "INT UNSIGNED", nullable = false},
--   }, {
--     indexes = { {columns = {"name"}} },
--     foreign_keys = { {columns = {"category_id"}, ref_table = "categories", ref_columns = {"id"}} },
--   })
--
-- A table is declared with exactly the arguments op.create_table takes
-- (plus `bind`, the name of the database it lives in; nil = the default
-- one), and checked by the same code (fsdb.migrate.model, the table model
-- op shares), so what a migration creates and what the schema declares
-- cannot drift apart in spelling. Unnamed indexes, unique constraints and
-- foreign keys get fsdb's default names (ix_/uq_/fk_<table>_<columns>),
-- the same names create_table gives them.

local core = require("fsdb.core")
local model = require("fsdb.migrate.model")

local _M = {}

--- op.raw and op.null, for defaults in declarations.
_M.raw = model.raw
_M.null = core.null
_M.no_default = model.no_default

local Schema = {}
Schema.__index = Schema

--- An empty schema.
-- syntax: s = schema.new()
function _M.new()
  return setmetatable({ tables = {}, order = {} }, Schema)
end

--- True for a schema made by schema.new.
-- syntax: b = schema.is_schema(v)
function _M.is_schema(v)
  return getmetatable(v) == Schema
end

local function check_bind(name, bind)
  if bind ~= nil and (type(bind) ~= "string" or bind == "") then
    error(("fsdb: schema: table '%s': bind must be a non-empty string (a bind name) or nil, got %s")
      :format(name, bind == "" and "an empty string" or type(bind)), 0)
  end
  if bind == "default" then return nil end
  return bind
end

--- Declares a table: the same columns and options as op.create_table, and
--- `bind`. Returns the checked definition (also in s.tables[name]; s.order
--- lists the names in declaration order). Raises on a bad declaration.
-- syntax: def = s:table(name, columns, options)
function Schema:table(name, columns, options)
  if not _M.is_schema(self) then
    error("fsdb: schema: call s:table(name, columns, options) with a colon", 2)
  end
  local ok, def = pcall(model.table_definition, name, columns, options, "schema", { bind = true })
  if not ok then error(def, 2) end
  if self.tables[name] then
    error(("fsdb: schema: table '%s' is declared twice"):format(name), 2)
  end
  local okb, bind = pcall(check_bind, name, options and options.bind)
  if not okb then error(bind, 2) end
  def.bind = bind
  self.tables[name] = def
  self.order[#self.order + 1] = name
  return def
end

--- The definitions of one bind (nil or "default": the default database),
--- in declaration order.
-- syntax: defs = s:tables_for(bind)
function Schema:tables_for(bind)
  if bind == "default" then bind = nil end
  local out = {}
  for _, name in ipairs(self.order) do
    local def = self.tables[name]
    if def.bind == bind then out[#out + 1] = def end
  end
  return out
end

--- Checks what spans tables: a foreign key to a declared table must name
--- columns that table has, and stay within one bind. (A foreign key to a
--- table that is not declared is allowed: it may exist in the database.)
--- Returns true, or nil and the first problem.
-- syntax: ok, err = s:validate()
function Schema:validate()
  for _, name in ipairs(self.order) do
    local def = self.tables[name]
    for i, fk in ipairs(def.foreign_keys) do
      local ref = self.tables[fk.ref_table]
      if ref then
        if ref.bind ~= def.bind then
          return nil, ("fsdb: schema: table '%s': foreign_keys[%d] references table '%s' of another bind")
            :format(name, i, fk.ref_table)
        end
        for _, c in ipairs(fk.ref_columns) do
          if not ref.column_index[c] then
            return nil, ("fsdb: schema: table '%s': foreign_keys[%d] references column '%s',"
              .. " which table '%s' does not have"):format(name, i, c, fk.ref_table)
          end
        end
      end
    end
  end
  return true
end

_M.Schema = Schema
return _M
