--- fsdb.migrate.graph — the revision graph and target resolution.
--
-- Pure Lua, no connection and no files: it takes the revisions as tables
-- and answers the questions Alembic's revision map answers — heads, bases,
-- branch points, what a target like "head", "ae10", "+2" or "auth@head"
-- means, and which revisions an upgrade, a downgrade or a stamp runs and
-- which version-table rows it leaves behind.
--
-- A down_revision that names no revision file becomes an *external* node:
-- a revision applied by another tool (an Alembic-managed database being
-- adopted). It may sit in the version table and be the parent of fsdb
-- revisions, but nothing can be run through it: an upgrade that would have
-- to apply it, or a downgrade below it, fails with "Can't locate revision
-- identified by '…'".
--
-- Errors are returned as `nil, message`, the message in Alembic's wording
-- followed by "; hint: …", starting with "fsdb: ".

local _M = {}

local Graph = {}
Graph.__index = Graph

local MIN_PARTIAL = 4

local function fail(fmt, ...)
  return nil, "fsdb: " .. fmt:format(...)
end

local function as_list(v)
  if v == nil then return {} end
  if type(v) == "table" then
    local t = {}
    for i = 1, #v do t[i] = v[i] end
    return t
  end
  return { v }
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function sorted_keys(s)
  local t = {}
  for k in pairs(s) do t[#t + 1] = k end
  table.sort(t)
  return t
end

--- The message of a revision in one line (the first line of it).
local function short_message(msg)
  msg = tostring(msg or "")
  return (msg:match("^[^\n]*"))
end

_M.CANT_LOCATE = "Can't locate revision identified by '%s'"
_M.MULTIPLE_HEADS = "Multiple head revisions are present for given argument '%s'; please specify a "
  .. "specific target revision, '<branchname>@head' to narrow to a specific head, or 'heads' for all heads"

--- Builds a graph from revision tables.
-- syntax: g, err = graph.new(revisions)
-- Each revision: { revision = id, down_revision = nil | id | {ids},
-- branch_labels = nil | label | {labels}, depends_on = nil | id | {ids},
-- message = "…", path = "…" (for messages), … } — other fields are kept.
function _M.new(revisions)
  local g = setmetatable({ nodes = {}, files = {}, labels = {}, order = {} }, Graph)
  for i, r in ipairs(revisions or {}) do
    local id = r.revision
    if type(id) ~= "string" or id == "" then
      return fail("revision #%d (%s) has no revision id", i, tostring(r.path or "?"))
    end
    local prev = g.nodes[id]
    if prev then
      return fail("Revision %s is present more than once (%s and %s); hint: give one of them a new "
        .. "revision id", id, tostring(prev.path or "?"), tostring(r.path or "?"))
    end
    local node = {
      id = id,
      downs = as_list(r.down_revision),
      deps = as_list(r.depends_on),
      labels = as_list(r.branch_labels),
      message = r.message,
      path = r.path,
      rev = r,
      children = {},   -- revisions naming this one as down_revision
      dependents = {}, -- revisions naming this one in depends_on
    }
    g.nodes[id] = node
    g.files[#g.files + 1] = node
  end
  for _, node in ipairs(g.files) do
    for _, label in ipairs(node.labels) do
      if g.labels[label] and g.labels[label] ~= node then
        return fail("Branch name '%s' is used by revisions %s and %s; hint: branch labels must be unique",
          label, g.labels[label].id, node.id)
      end
      if g.nodes[label] then
        return fail("Branch name '%s' of revision %s is also a revision id", label, node.id)
      end
      g.labels[label] = node
    end
  end
  -- Parents without a file become external nodes (adopted revisions).
  for _, node in ipairs(g.files) do
    for _, d in ipairs(node.downs) do
      if d == node.id then
        return fail("Cycle is detected in revisions (%s); hint: a revision cannot be its own "
          .. "down_revision", d)
      end
      if not g.nodes[d] then
        g.nodes[d] = { id = d, external = true, downs = {}, deps = {}, labels = {},
                       children = {}, dependents = {}, message = nil }
      end
      table.insert(g.nodes[d].children, node.id)
    end
  end
  -- depends_on must name a revision file or a branch label.
  for _, node in ipairs(g.files) do
    for i, d in ipairs(node.deps) do
      local target = g.nodes[d] or g.labels[d]
      if not target then
        return fail(_M.CANT_LOCATE .. " (depends_on of %s in %s); hint: fix depends_on, or restore "
          .. "the revision file it names", d, node.id, tostring(node.path or "?"))
      end
      node.deps[i] = target.id
      table.insert(target.dependents, node.id)
    end
  end
  for _, node in pairs(g.nodes) do
    table.sort(node.children)
    table.sort(node.dependents)
  end
  -- Topological order (parents and dependencies first; ties by id).
  local indeg, ready = {}, {}
  for id, node in pairs(g.nodes) do
    indeg[id] = #node.downs + #node.deps
    if indeg[id] == 0 then ready[#ready + 1] = id end
  end
  while #ready > 0 do
    table.sort(ready, function(a, b) return a > b end)
    local id = table.remove(ready)
    g.order[#g.order + 1] = id
    local node = g.nodes[id]
    for _, list in ipairs({ node.children, node.dependents }) do
      for _, c in ipairs(list) do
        indeg[c] = indeg[c] - 1
        if indeg[c] == 0 then ready[#ready + 1] = c end
      end
    end
  end
  local count = 0
  for _ in pairs(g.nodes) do count = count + 1 end
  if #g.order ~= count then
    local stuck = {}
    for id, d in pairs(indeg) do
      if d > 0 then stuck[#stuck + 1] = id end
    end
    table.sort(stuck)
    return fail("Cycle is detected in revisions (%s); hint: each of these is (through down_revision "
      .. "or depends_on) its own ancestor; fix the down_revision of one of them",
      table.concat(stuck, ", "))
  end
  g.pos = {}
  for i, id in ipairs(g.order) do g.pos[id] = i end
  return g
end

------------------------------------------------------------------------
-- Structure
------------------------------------------------------------------------

-- ids in topological order
function Graph:sort(ids)
  local t = {}
  for _, id in ipairs(ids) do t[#t + 1] = id end
  table.sort(t, function(a, b) return self.pos[a] < self.pos[b] end)
  return t
end

--- The revision node of an id (nil for an unknown one).
function Graph:node(id)
  return self.nodes[id]
end

-- A revision file nothing names as down_revision.
local function head_node(n)
  return not n.external and #n.children == 0
end

-- The ids, in topological order, of the nodes keep(node) accepts.
local function ids_where(g, keep)
  local t = {}
  for _, id in ipairs(g.order) do
    if keep(g.nodes[id]) then t[#t + 1] = id end
  end
  return t
end

--- Heads: revisions nothing names as down_revision, in topological order.
-- syntax: ids = g:heads()
function Graph:heads()
  return ids_where(self, head_node)
end

--- Bases: revision files without a down_revision.
function Graph:bases()
  return ids_where(self, function(n) return not n.external and #n.downs == 0 end)
end

--- Branch points: revisions that are the down_revision of more than one.
function Graph:branchpoints()
  return ids_where(self, function(n) return #n.children > 1 end)
end

function Graph:is_head(id)
  local n = self.nodes[id]
  return n ~= nil and head_node(n)
end

--- Revision files, newest first (reverse topological order).
function Graph:newest_first()
  local t = {}
  for i = #self.order, 1, -1 do
    local n = self.nodes[self.order[i]]
    if not n.external then t[#t + 1] = n.id end
  end
  return t
end

-- Ancestors-or-self of ids, through down_revision and depends_on.
function Graph:closure(ids)
  local seen, stack = {}, {}
  for _, id in ipairs(ids) do stack[#stack + 1] = id end
  while #stack > 0 do
    local id = table.remove(stack)
    if not seen[id] then
      seen[id] = true
      local n = self.nodes[id]
      if n then
        for _, d in ipairs(n.downs) do stack[#stack + 1] = d end
        for _, d in ipairs(n.deps) do stack[#stack + 1] = d end
      end
    end
  end
  return seen
end

-- Strict descendants of ids (through children and dependents).
function Graph:descendants(ids)
  local seen, stack = {}, {}
  for _, id in ipairs(ids) do
    local n = self.nodes[id]
    for _, c in ipairs(n.children) do stack[#stack + 1] = c end
    for _, c in ipairs(n.dependents) do stack[#stack + 1] = c end
  end
  while #stack > 0 do
    local id = table.remove(stack)
    if not seen[id] then
      seen[id] = true
      local n = self.nodes[id]
      for _, c in ipairs(n.children) do stack[#stack + 1] = c end
      for _, c in ipairs(n.dependents) do stack[#stack + 1] = c end
    end
  end
  return seen
end

--- The version-table rows for a set of applied revisions: the applied
--- revisions that no other applied revision names as down_revision.
-- syntax: rows = g:rows_for(applied_set)
function Graph:rows_for(applied)
  local covered = {}
  for id in pairs(applied) do
    local n = self.nodes[id]
    if n then
      for _, d in ipairs(n.downs) do covered[d] = true end
    end
  end
  local rows = {}
  for id in pairs(applied) do
    if not covered[id] then rows[#rows + 1] = id end
  end
  return self:sort(rows)
end

------------------------------------------------------------------------
-- Formatting
------------------------------------------------------------------------

--- "a, b" or "<base>" for a list of ids.
function _M.format_ids(ids, empty)
  if #ids == 0 then return empty or "<base>" end
  return table.concat(ids, ", ")
end

--- The one-line description of a revision, as in Alembic's history:
--- "<down> -> <rev> (label) (head) (branchpoint) (mergepoint), message".
-- syntax: s = g:line(id)
function Graph:line(id, current)
  local n = self.nodes[id]
  local down
  if #n.downs == 0 then
    down = "<base>"
  elseif #n.downs == 1 then
    down = n.downs[1]
  else
    down = "(" .. table.concat(n.downs, ", ") .. ")"
  end
  return ("%s -> %s%s, %s"):format(down, id, self:tags(id, current), short_message(n.message))
end

--- " (label) (head) (branchpoint) (mergepoint) (current)" for a revision.
function Graph:tags(id, current)
  local n = self.nodes[id]
  local t = {}
  if #n.labels > 0 then t[#t + 1] = " (" .. table.concat(n.labels, ", ") .. ")" end
  if n.external then t[#t + 1] = " (adopted)" end
  if self:is_head(id) then t[#t + 1] = " (head)" end
  if #n.children > 1 then t[#t + 1] = " (branchpoint)" end
  if #n.downs > 1 then t[#t + 1] = " (mergepoint)" end
  if current and current[id] then t[#t + 1] = " (current)" end
  return table.concat(t)
end

-- "abc (msg), def (msg)" for hints.
function Graph:describe_list(ids)
  local t = {}
  for _, id in ipairs(ids) do
    local n = self.nodes[id]
    local m = n and short_message(n.message) or ""
    t[#t + 1] = m ~= "" and ("%s (%s)"):format(id, m) or id
  end
  return table.concat(t, ", ")
end

------------------------------------------------------------------------
-- Resolving names
------------------------------------------------------------------------

local function cant_locate(id, hint)
  return fail(_M.CANT_LOCATE .. "; hint: %s", id, hint or
    "`fsdb history` lists the revisions; a partial id needs at least 4 characters")
end
_M.cant_locate = cant_locate

--- One revision by full id, branch label or unique partial id (≥ 4 chars).
-- syntax: node, err = g:get(name)
function Graph:get(name)
  if type(name) ~= "string" or name == "" then
    return fail("no revision given")
  end
  local n = self.nodes[name] or self.labels[name]
  if n then return n end
  if #name < MIN_PARTIAL then
    return fail("No such revision or branch '%s'; please ensure at least four characters are "
      .. "present for partial revision identifier matches; hint: `fsdb history` lists the revisions", name)
  end
  local found = {}
  for id in pairs(self.nodes) do
    if id:sub(1, #name) == name then found[#found + 1] = id end
  end
  if #found == 1 then return self.nodes[found[1]] end
  if #found == 0 then return cant_locate(name) end
  table.sort(found)
  return fail("Multiple revisions start with '%s': %s; hint: give more characters of the id",
    name, table.concat(found, ", "))
end

local function multiple_heads(self, arg, heads)
  return fail(_M.MULTIPLE_HEADS .. "; hint: the heads are %s; `fsdb merge heads -m \"merge\"` joins "
    .. "them into one, `fsdb upgrade heads` applies every branch", arg, self:describe_list(heads))
end

-- Heads that are descendants-or-self of a node.
function Graph:heads_of(id)
  local t = {}
  local desc = self:descendants({ id })
  desc[id] = true
  for _, h in ipairs(self:heads()) do
    if desc[h] then t[#t + 1] = h end
  end
  return t
end

-- The single "head": nil (no revisions) or the id; error with several.
function Graph:single_head(arg)
  local heads = self:heads()
  if #heads > 1 then return multiple_heads(self, arg or "head", heads) end
  return heads[1] or false
end

-- Walks n steps from the revisions in `from` (a list): forward to the one
-- child at each step, backward to the down_revisions. Returns the list of
-- ids reached.
function Graph:walk(from, n, arg)
  if #from > 1 then
    return fail("Relative revision %s is ambiguous: it starts from more than one revision (%s); "
      .. "hint: give the starting revision, e.g. %s%s", arg, table.concat(from, ", "), from[1],
      arg:match("[+-]%d+$"))
  end
  local steps = math.abs(n)
  if n > 0 then
    local cur = from[1]
    for _ = 1, steps do
      local nexts
      if cur then
        nexts = self.nodes[cur].children
      else
        nexts = self:bases()
      end
      if #nexts == 0 then
        return fail("Relative revision %s didn't produce %d migrations; hint: `fsdb history` shows "
          .. "how far the revisions go", arg, steps)
      end
      if #nexts > 1 then
        return fail("Relative revision %s is ambiguous: %s has more than one next revision (%s); hint: "
          .. "name the target revision or '<branchname>@head'", arg, cur or "<base>",
          table.concat(nexts, ", "))
      end
      cur = nexts[1]
    end
    return { cur }
  end
  local cur = from
  for i = 1, steps do
    if #cur == 0 then
      return fail("Relative revision %s didn't produce %d migrations; hint: the walk reached <base> "
        .. "after %d", arg, steps, i - 1)
    end
    if #cur > 1 then
      return fail("Relative revision %s is ambiguous: the walk reached the merge of %s; hint: name "
        .. "the target revision", arg, table.concat(cur, ", "))
    end
    local node = self.nodes[cur[1]]
    if node.external then
      return cant_locate(node.id, "it is an adopted revision (applied by another tool, no file in "
        .. "versions/); fsdb cannot walk below it")
    end
    cur = node.downs
  end
  return cur
end

--- Resolves a target to a list of revision ids ({} = base).
-- syntax: ids, err = g:resolve(target, current_rows)
-- target: "head", "heads", "base", a full or partial (≥ 4 chars) id, a
-- branch label, "<label or id>@head", "current", "+N"/"-N" (from the
-- current rows), "<rev>+N"/"<rev>-N". current_rows is needed only for the
-- relative forms and "current".
function Graph:resolve(target, current)
  if type(target) ~= "string" or target == "" then
    return fail("no target revision given")
  end
  if target == "base" then return {} end
  if target == "heads" then return self:heads() end
  if target == "head" then
    local h, err = self:single_head("head")
    if h == nil then return nil, err end
    return h and { h } or {}
  end
  if target == "current" then
    if not current then return fail("'current' needs the database") end
    return self:sort(current)
  end
  local sign, num = target:match("^([+-])(%d+)$")
  if sign then
    if not current then return fail("relative revision '%s' needs the database", target) end
    return self:walk(self:sort(current), tonumber(sign .. num), target)
  end
  local what, suffix = target:match("^(.+)@(%w+)$")
  if what and suffix == "head" then
    local n, err = self:get(what)
    if not n then return nil, err end
    local heads = self:heads_of(n.id)
    if #heads > 1 then return multiple_heads(self, target, heads) end
    return heads
  elseif what and suffix == "base" then
    -- The root(s) of the branch the revision belongs to.
    local n, err = self:get(what)
    if not n then return nil, err end
    local roots = {}
    for id in pairs(self:closure({ n.id })) do
      local node = self.nodes[id]
      if #node.downs == 0 and not node.external then roots[#roots + 1] = id end
    end
    return self:sort(roots)
  end
  local base, rsign, rnum = target:match("^(.-)([+-])(%d+)$")
  if base and base ~= "" then
    local from, err = self:resolve(base, current)
    if not from then return nil, err end
    return self:walk(from, tonumber(rsign .. rnum), target)
  end
  local n, err = self:get(target)
  if not n then return nil, err end
  return { n.id }
end

--- Checks that every row of the version table names a known revision.
-- syntax: ok, err = g:check_rows(rows)
function Graph:check_rows(rows)
  for _, r in ipairs(rows) do
    if not self.nodes[r] then
      return cant_locate(r, ("the version table names a revision that has no file in versions/: "
        .. "restore that file, or overwrite the version table with `fsdb stamp --purge <target>`; "
        .. "to adopt a database migrated by Alembic, base the first fsdb revision on it: "
        .. "`fsdb revision -m \"…\" --head %s`"):format(r))
    end
  end
  return true
end

------------------------------------------------------------------------
-- Plans
------------------------------------------------------------------------

--- The revisions an upgrade from `rows` to `targets` runs, in order.
-- syntax: ids, err = g:upgrade_plan(rows, targets)
function Graph:upgrade_plan(rows, targets)
  local applied = self:closure(rows)
  local need = self:closure(targets)
  local plan = {}
  for _, id in ipairs(self.order) do
    if need[id] and not applied[id] then
      local n = self.nodes[id]
      if n.external then
        local child = n.children[1]
        return cant_locate(id, ("it is the down_revision of %s but has no file in versions/; fsdb can "
          .. "only start above it when the version table already names it (a database adopted from "
          .. "Alembic); otherwise fix the down_revision of %s"):format(child, child))
      end
      plan[#plan + 1] = id
    end
  end
  return plan
end

--- The revisions a downgrade from `rows` to `targets` undoes, in order
--- (newest first). Only descendants of the targets are undone; other
--- branches stay.
-- syntax: ids, err = g:downgrade_plan(rows, targets)
function Graph:downgrade_plan(rows, targets)
  local applied = self:closure(rows)
  for _, t in ipairs(targets) do
    if not applied[t] then
      return fail("Destination %s is not a valid downgrade target from current head(s); hint: the "
        .. "database is at %s; `fsdb history` shows the revisions below it", t, _M.format_ids(self:sort(rows)))
    end
  end
  local remove
  if #targets == 0 then
    remove = applied
  else
    remove = {}
    for id in pairs(self:descendants(targets)) do
      if applied[id] then remove[id] = true end
    end
  end
  local plan = {}
  for i = #self.order, 1, -1 do
    local id = self.order[i]
    if remove[id] then
      if self.nodes[id].external then
        return cant_locate(id, "it is an adopted revision (applied by another tool, no file in "
          .. "versions/); fsdb cannot downgrade below it — downgrade to it instead")
      end
      plan[#plan + 1] = id
    end
  end
  return plan
end

--- The rows a stamp to `targets` leaves. Without purge, current rows on
--- branches unrelated to the targets are kept.
-- syntax: rows = g:stamp_rows(rows, targets, purge)
function Graph:stamp_rows(rows, targets, purge)
  local applied = self:closure(targets)
  if not purge and #targets > 0 then
    local below = self:closure(targets)
    local above = self:descendants(targets)
    for _, r in ipairs(rows) do
      if self.nodes[r] and not below[r] and not above[r] then
        -- unrelated unless r is an ancestor of a target (then below[r])
        -- or a descendant (above[r])
        for id in pairs(self:closure({ r })) do applied[id] = true end
      end
    end
  end
  return self:rows_for(applied)
end

--- The version-table changes from one row set to another:
--- { {"update", old, new}, {"delete", old}, {"insert", new} … }.
-- syntax: changes = graph.row_changes(old_rows, new_rows)
function _M.row_changes(old, new)
  local olds, news = set_of(old), set_of(new)
  local gone, added = {}, {}
  for _, r in ipairs(old) do
    if not news[r] then gone[#gone + 1] = r end
  end
  for _, r in ipairs(new) do
    if not olds[r] then added[#added + 1] = r end
  end
  local changes = {}
  local n = math.min(#gone, #added)
  -- Deletes first, so an update never collides with a row about to go.
  for i = n + 1, #gone do changes[#changes + 1] = { "delete", gone[i] } end
  for i = 1, n do changes[#changes + 1] = { "update", gone[i], added[i] } end
  for i = n + 1, #added do changes[#changes + 1] = { "insert", added[i] } end
  return changes
end

--- Revisions between two targets, newest first, for `history -r a:b`.
-- syntax: ids, err = g:range(spec, current_rows)
-- spec "a:b", "a:", ":b" or nil (everything); both ends included.
function Graph:range(spec, current)
  local all = self:newest_first()
  if spec == nil or spec == "" or spec == ":" then return all end
  local lo, hi = spec:match("^([^:]*):([^:]*)$")
  if not lo then
    return fail("bad revision range '%s'; hint: use start:end, e.g. base:head, ae10:, :current", spec)
  end
  local keep_hi, keep_lo
  if hi ~= "" then
    local ids, err = self:resolve(hi, current)
    if not ids then return nil, err end
    keep_hi = self:closure(ids)
  end
  if lo ~= "" then
    local ids, err = self:resolve(lo, current)
    if not ids then return nil, err end
    keep_lo = self:descendants(ids)
    for _, id in ipairs(ids) do keep_lo[id] = true end
    if #ids == 0 then keep_lo = nil end
  end
  local t = {}
  for _, id in ipairs(all) do
    if (not keep_hi or keep_hi[id]) and (not keep_lo or keep_lo[id]) then t[#t + 1] = id end
  end
  return t
end

_M.Graph = Graph
_M.short_message = short_message
_M.sorted_keys = sorted_keys
return _M
