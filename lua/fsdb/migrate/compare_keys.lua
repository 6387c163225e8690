--- fsdb.migrate.compare_keys — autogenerate's comparison of indexes,
--- unique constraints and foreign keys of a table that is both declared
--- and in the database. Diffs are plain data (kind, table, name, index or
--- fk); fsdb.migrate.render writes their code.

local _M = {}

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

-- RESTRICT and NO ACTION are the same rule in InnoDB (and the default).
local function rule(r)
  if r == nil or r == "RESTRICT" or r == "NO ACTION" then return "RESTRICT" end
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


local function drop_index_diff(tname, rix, description)
  return {
    kind = rix.unique and "drop_unique" or "drop_index", table = tname, name = rix.name,
    description = description,
    index = rix,
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
      fk = r,
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
        index = w,
      })
    else
      add({
        kind = "add_unique", table = tname, name = w.name,
        description = ("added unique constraint %s on %s"):format(w.name, qname(tname)),
        index = w,
      })
    end
  end
  for _, fk in ipairs(plan.add) do
    add({
      kind = "add_fk", table = tname, name = fk.name,
      description = ("added foreign key %s on %s"):format(fk.name, qname(tname)),
      fk = fk,
    })
  end
end

_M.same_list = same_list
_M.starts_with = starts_with
_M.same_fk = same_fk
_M.qname = qname
_M.plan_foreign_keys = plan_foreign_keys
_M.compare_keys = compare_keys
return _M
