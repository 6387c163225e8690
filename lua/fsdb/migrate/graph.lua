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
  return nil, "fsdb: " .. fmt:format(...), "graph"
end

-- A typed failure: nil, message, code. The codes callers test:
-- "cant_locate" (an unknown revision), "multiple_heads", "ambiguous",
-- "not_ancestor" (a target the database is not related to), "walk" (a
-- relative target that walked off the graph), "usage", "graph" (the
-- revision files themselves are inconsistent).
local function typed(code, fmt, ...)
  return nil, "fsdb: " .. fmt:format(...), code
end
_M.typed = typed

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

-- The ids reachable from ids (included) through the edge lists that
-- edges(node) returns. Unknown ids are kept but lead nowhere.
local function reach(g, ids, edges)
  local seen, stack = {}, {}
  for _, id in ipairs(ids) do stack[#stack + 1] = id end
  while #stack > 0 do
    local id = table.remove(stack)
    if not seen[id] then
      seen[id] = true
      local n = g.nodes[id]
      if n then
        for _, list in ipairs(edges(n)) do
          for _, x in ipairs(list) do stack[#stack + 1] = x end
        end
      end
    end
  end
  return seen
end

local EDGES = {
  down = function(n) return { n.downs } end,
  down_deps = function(n) return { n.downs, n.deps } end,
  up = function(n) return { n.children } end,
  up_deps = function(n) return { n.children, n.dependents } end,
}

--- Ancestors-or-self of ids; with_deps follows depends_on as well (the
--- default for closure, as Alembic's "applied" means).
-- syntax: set = g:ancestors(ids, with_deps)
function Graph:ancestors(ids, with_deps)
  return reach(self, ids, with_deps and EDGES.down_deps or EDGES.down)
end

--- Descendants-or-self of ids (children; with_deps: dependents too).
function Graph:above(ids, with_deps)
  return reach(self, ids, with_deps and EDGES.up_deps or EDGES.up)
end

-- Ancestors-or-self of ids, through down_revision and depends_on.
function Graph:closure(ids)
  return self:ancestors(ids, true)
end

--- The version-table rows for a set of applied revisions: the applied
--- revisions no other applied revision builds on, through down_revision
--- or depends_on. A dependency is an "effective head" in Alembic's terms:
--- it never gets a row of its own while a revision needing it is there.
-- syntax: rows = g:rows_for(applied_set)
function Graph:rows_for(applied)
  local covered = {}
  for id in pairs(applied) do
    local n = self.nodes[id]
    if n then
      for _, d in ipairs(n.downs) do covered[d] = true end
      for _, d in ipairs(n.deps) do covered[d] = true end
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
  return typed("cant_locate", _M.CANT_LOCATE .. "; hint: %s", id, hint or
    "`fsdb history` lists the revisions; a partial id needs at least 4 characters")
end
_M.cant_locate = cant_locate

--- One revision by full id, branch label or unique partial id (≥ 4 chars).
-- syntax: node, err, code = g:get(name)
function Graph:get(name)
  if type(name) ~= "string" or name == "" then
    return typed("usage", "no revision given")
  end
  local n = self.nodes[name] or self.labels[name]
  if n then return n end
  if #name < MIN_PARTIAL then
    return typed("cant_locate", "No such revision or branch '%s'; please ensure at least four characters "
      .. "are present for partial revision identifier matches; hint: `fsdb history` lists the revisions",
      name)
  end
  local found = {}
  for id in pairs(self.nodes) do
    if id:sub(1, #name) == name then found[#found + 1] = id end
  end
  if #found == 1 then return self.nodes[found[1]] end
  if #found == 0 then return cant_locate(name) end
  table.sort(found)
  return typed("ambiguous", "Multiple revisions start with '%s': %s; hint: give more characters of the id",
    name, table.concat(found, ", "))
end

--- Checks that every row of the version table names a known revision.
-- syntax: ok, err, code = g:check_rows(rows)
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

_M.Graph = Graph
require("fsdb.migrate.plan").extend(_M, Graph)
_M.short_message = short_message
_M.sorted_keys = sorted_keys
return _M
