--- fsdb.migrate.compare — autogenerate's comparison: a declared schema
--- (fsdb.schema) against a reflected database (fsdb.migrate.reflect).
--- Returns diffs as plain data, in a dependency-safe order: each
--- { kind, table, column?, name?, description, phase, and what render
--- needs: definition / skip_fk (tables), spec (columns), alter (column
--- changes), index, fk, from / to (table options) }.

local schema_mod = require("fsdb.schema")
local types = require("fsdb.migrate.types")
local reflect = require("fsdb.migrate.reflect")
local keys = require("fsdb.migrate.compare_keys")

local ATTRS, differs, show, mix = types.ATTRS, types.differs, types.show, types.mix
local declared_state = types.declared_state
local same_list, starts_with, qname = keys.same_list, keys.starts_with, keys.qname
local plan_foreign_keys, compare_keys = keys.plan_foreign_keys, keys.compare_keys

local _M = {}

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
  modify_table = 4, modify_type = 5, modify_nullable = 5, modify_default = 5, modify_on_update = 5,
  modify_comment = 5, modify_auto_increment = 5,
  add_index = 6, add_unique = 6, add_fk = 7, drop_column = 8, drop_table = 9,
}

local COMPARE_KEYS = {
  version_table = true, drop_tables = true, include_object = true, bind = true,
  compare_type = true, compare_default = true, compare_comment = true,
}


-- character set and collation, row format (only when declared). One
-- op.alter_table each way with the options that differ.
local function compare_table_options(ctx, def, rt)
  local lower = function(v) return v and tostring(v):lower() or nil end
  local new, old, what = {}, {}, {}
  local function differ(key, declared, reflected, shown_d, shown_r)
    new[key], old[key] = declared, reflected
    what[#what + 1] = ("%s %s -> %s"):format(key, shown_r or ("'" .. tostring(reflected) .. "'"),
      shown_d or ("'" .. tostring(declared) .. "'"))
  end
  if not ctx.skip.comment and (def.comment or "") ~= (rt.comment or "") then
    differ("comment", def.comment or "", rt.comment or "")
  end
  if lower(def.engine or "InnoDB") ~= lower(rt.engine) and rt.engine then
    differ("engine", def.engine or "InnoDB", rt.engine)
  end
  local dcollate = def.collate
  local dcharset = def.charset or "utf8mb4"
  if def.charset == nil and dcollate == nil then dcollate = "utf8mb4_unicode_ci" end
  if rt.collate and ((dcollate and lower(dcollate) ~= lower(rt.collate))
      or (not dcollate and lower(dcharset) ~= lower(rt.charset))) then
    new.charset, old.charset = dcharset, rt.charset
    new.collate, old.collate = dcollate, rt.collate
    what[#what + 1] = ("collation '%s' -> '%s'"):format(rt.collate, dcollate or dcharset)
  end
  if def.row_format and lower(def.row_format) ~= lower(rt.actual_row_format) then
    differ("row_format", def.row_format, rt.actual_row_format)
  end
  if #what == 0 then return end
  ctx.add({
    kind = "modify_table", table = def.name, from = old, to = new,
    description = ("changed table options of %s: %s"):format(qname(def.name), table.concat(what, ", ")),
  })
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
          spec = col,
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
          add({
            kind = a.kind, table = tname, column = col.name,
            from = show(a.attr, rc), to = show(a.attr, d),
            description = ("%s changed on %s: %s -> %s"):format((a.attr:gsub("_", " ")),
              qname(tname, col.name), tostring(show(a.attr, rc)), tostring(show(a.attr, d))),
            alter = { attr = a.attr, reflected = rc, declared = d, before = before, after = after },
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
          spec = spec,
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
      kind = "add_table", table = name, definition = def, skip_fk = skip,
      description = ("added table %s"):format(qname(name)),
    })
  end
  for _, item in ipairs(late) do
    add({
      kind = "add_fk", table = item.table, name = item.fk.name,
      description = ("added foreign key %s on %s"):format(item.fk.name, qname(item.table)),
      fk = item.fk,
    })
  end
end

-- A reflected table as create_table arguments, to recreate it on the way
-- down; skip: foreign keys left out (dropped and re-added on their own).
local function reflected_definition(ctx, rt, skip)
  local t = {
    name = rt.name, columns = {}, primary_key = rt.primary_key, unique = {}, indexes = {},
    foreign_keys = rt.foreign_keys, engine = rt.engine, charset = rt.charset, collate = rt.collate,
    comment = rt.comment, row_format = rt.row_format, primary_key_given = #rt.primary_key > 1,
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
  local excluded, undeclared = {}, {}
  for _, name in ipairs(db.order) do
    if not declared_by_name[name] then
      local verdict = include and include("table", name, true, nil, db.tables[name])
      if verdict == true or (verdict ~= false and ctx.drop_tables) then
        names[#names + 1] = name
        set[name] = true
      elseif verdict == false then
        excluded[#excluded + 1] = qname(name)
        kept[#kept + 1] = name
      else
        undeclared[#undeclared + 1] = qname(name)
        kept[#kept + 1] = name
      end
    end
  end
  -- One line for all of them, however many there are.
  if #undeclared > 0 then
    local one = #undeclared == 1
    note(("%s %s %s in the database but not declared: kept (set drop_tables = true, or have include_object"
      .. " return true for %s, to drop it)"):format(one and "table" or "tables", table.concat(undeclared, ", "),
      one and "is" or "are", one and "it" or "a table"))
  end
  if #excluded > 0 then
    note(("%s %s not declared and include_object excludes %s: kept"):format(
      #excluded == 1 and "table" or "tables", table.concat(excluded, ", ") .. (#excluded == 1 and " is" or " are"),
      #excluded == 1 and "it" or "them"))
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
          fk = fk,
        })
      end
    end
    add({
      kind = "drop_table", table = name,
      description = ("removed table %s"):format(qname(name)),
      definition = reflected_definition(ctx, rt, skip), skip_fk = skip,
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

  local db, err, errno, sqlstate = reflect.database(conn, version_table)
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
    compare_table_options(ctx, def, rt)
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

_M.PHASES = PHASES
return _M
