--- fsdb.migrate.plan — what a target means and what a verb runs.
--
-- The traversal half of the revision map (fsdb.migrate.graph is the
-- structure half): target names ("heads", "lib@head", "lib@base",
-- "ae10+2", "lib@-1", …), relative walks, and the revisions an upgrade, a
-- downgrade or a stamp touches. The rules are Alembic's, checked against
-- Alembic itself by spec/integration/alembic_compat_spec.lua:
--
-- * lineage: a revision belongs to a branch (a label or a revision id)
--   when it is an ancestor or a descendant of the branch's revision
--   through down_revision alone — depends_on never pulls a revision into
--   another branch;
-- * an upgrade applies every ancestor of the targets (depends_on
--   included) that is not applied yet;
-- * a downgrade to X undoes X's children and everything built on them
--   (depends_on included) that is applied; `label@base` undoes only the
--   label's own root and what builds on it, never a branch the label
--   merely depends on;
-- * the version table holds the applied revisions nothing applied builds
--   on (depends_on included), so a dependency never has a row of its own.
--
-- Failures are `nil, message, code` (see graph.typed).

local _M = {}

local MULTIPLE_HEADS_HINT = "; hint: the heads are %s; `fsdb merge heads -m \"merge\"` joins them into "
  .. "one, `fsdb upgrade heads` applies every branch, LABEL@head picks one branch"

-- The walk's "below every base" position (Alembic's "base" revision).
local BASE = setmetatable({}, { __tostring = function() return "<base>" end })

function _M.extend(graph, Graph)
  local typed = graph.typed

  local function list_of(set, g)
    local t = {}
    for id in pairs(set) do t[#t + 1] = id end
    return g:sort(t)
  end

  local function contains(list, v)
    for _, x in ipairs(list) do
      if x == v then return true end
    end
    return false
  end

  -- "label@rest" → label, rest (the first @, as Alembic splits); no @ →
  -- nil, spec.
  local function split_label(spec)
    local label, rest = spec:match("^([^@]*)@(.*)$")
    if not label then return nil, spec end
    if label == "" then label = nil end
    return label, rest
  end

  -- "[label@][rev](+|-)N" → label, rev, n; nil when not relative.
  local function relative(spec)
    local label, rest = split_label(spec)
    local sym, num = rest:match("^([%w_]*)([+-]%d+)$")
    if not sym then return nil end
    return label or false, sym ~= "" and sym or nil, tonumber(num)
  end
  _M.relative = relative

  --- The revision a branch name stands for: a label's revision, or a
  --- revision id (full or partial).
  function Graph:branch_node(name)
    local n = self.labels[name]
    if n then return n end
    local node, err, code = self:get(name)
    if not node and code == "cant_locate" then
      return typed("cant_locate", "No such branch: '%s'; hint: `fsdb branches` and `fsdb history` show "
        .. "the labels and revisions", name)
    end
    return node, err, code
  end

  -- Whether id is an ancestor or a descendant of (or is) one of `of`.
  function Graph:shares_lineage(id, of, with_deps)
    local line = self:ancestors({ id }, with_deps)
    for k in pairs(self:above({ id }, with_deps)) do line[k] = true end
    for _, o in ipairs(of) do
      if line[o] then return true end
    end
    return false
  end

  --- The ids of `ids` in the lineage of `spec` ("label", "label@head",
  --- "rev", "heads", …); a spec naming nothing keeps them all.
  -- syntax: kept, err = g:filter_lineage(ids, spec, with_deps)
  function Graph:filter_lineage(ids, spec, with_deps)
    local label, rest = split_label(spec)
    local of = {}
    if label then
      local n, err, code = self:branch_node(label)
      if not n then return nil, err, code end
      of[1] = n.id
    end
    if not label or (rest ~= "head" and rest ~= "heads" and rest ~= "base" and rest ~= "") then
      local named, err, code = self:resolve_number(rest)
      if not named then return nil, err, code end
      for _, id in ipairs(named) do
        local n, gerr, gcode = self:get(id)
        if not n then return nil, gerr, gcode end
        of[#of + 1] = n.id
      end
    end
    if #of == 0 then return ids end
    local t = {}
    for _, id in ipairs(ids) do
      if self:shares_lineage(id, of, with_deps) then t[#t + 1] = id end
    end
    return t
  end

  local function multiple_heads(g, arg, heads)
    return typed("multiple_heads", graph.MULTIPLE_HEADS .. MULTIPLE_HEADS_HINT, arg, g:describe_list(heads))
  end

  --- The one head (of a branch): its id, false when there is none.
  function Graph:current_head(label)
    local heads = self:heads()
    if label then
      local err, code
      heads, err, code = self:filter_lineage(heads, label)
      if not heads then return nil, err, code end
    end
    if #heads > 1 then return multiple_heads(self, label and (label .. "@head") or "head", heads) end
    return heads[1] or false
  end

  -- The heads nothing builds on, not even through depends_on (Alembic's
  -- "real heads": what `heads` as a target means).
  function Graph:real_heads()
    local t = {}
    for _, id in ipairs(self:heads()) do
      if #self.nodes[id].dependents == 0 then t[#t + 1] = id end
    end
    return t
  end

  --- The names a spec stands for, unchecked: ids, label.
  function Graph:resolve_number(spec)
    local label, rest = split_label(spec)
    if rest == "heads" then
      if label then
        local ids, err, code = self:filter_lineage(self:heads(), label)
        if not ids then return nil, err, code end
        return ids, label
      end
      return self:real_heads(), nil
    elseif rest == "head" then
      local h, err, code = self:current_head(label)
      if h == nil then return nil, err, code end
      return h and { h } or {}, label
    elseif rest == "base" then
      return {}, label
    end
    return { rest }, label
  end

  -- A name checked against the branch it is qualified with.
  function Graph:ident(name, label)
    local n, err, code = self:get(name)
    if not n then return nil, err, code end
    if label then
      local b
      b, err, code = self:branch_node(label)
      if not b then return nil, err, code end
      if not self:shares_lineage(n.id, { b.id }) then
        return typed("cant_locate", "Revision %s is not a member of branch '%s'; hint: `fsdb history` shows "
          .. "which revisions build on %s", n.id, label, b.id)
      end
    end
    return n.id
  end

  --- The revisions a non-relative spec names ({} = base).
  -- syntax: ids, err, code = g:get_revisions(spec)
  function Graph:get_revisions(spec)
    local names, label, code = self:resolve_number(spec)
    if not names then return nil, label, code end
    local t = {}
    for _, name in ipairs(names) do
      local id, err
      id, err, code = self:ident(name, label)
      if not id then return nil, err, code end
      t[#t + 1] = id
    end
    return t
  end

  --- The one revision a spec names; false for base.
  function Graph:get_revision(spec)
    local ids, err, code = self:get_revisions(spec)
    if not ids then return nil, err, code end
    if #ids > 1 then return multiple_heads(self, spec, ids) end
    return ids[1] or false
  end

  --- Walks `steps` revisions up (children) or down (down_revision) from
  --- `start` (false: below the bases / above the heads; BASE: base).
  --- Walking up, a label keeps only revisions of its branch. Returns the
  --- id, BASE, or false when the walk ran off the graph.
  function Graph:walk(start, steps, label, arg)
    local cur = start
    for _ = 1, math.abs(steps) do
      local nexts
      if steps > 0 then
        if cur == BASE then return false end
        nexts = cur and self.nodes[cur].children or self:bases()
        if label then
          local err, code
          nexts, err, code = self:filter_lineage(nexts, label)
          if not nexts then return nil, err, code end
        end
      elseif cur == BASE then
        nexts = {}
      else
        nexts = cur and self.nodes[cur].downs or self:heads()
        if cur and self.nodes[cur].external then
          return graph.cant_locate(cur, "it is an adopted revision (applied by another tool, no file in "
            .. "versions/); fsdb cannot walk below it")
        end
        if #nexts == 0 then nexts = { BASE } end
      end
      if #nexts == 0 then return false end
      if #nexts > 1 then
        return typed("ambiguous", "Ambiguous walk: %s from %s reaches %s; hint: name the target revision, or "
          .. "narrow the walk to a branch with LABEL@%s", arg or tostring(steps), tostring(cur or "<base>"),
          table.concat(nexts, ", "), (arg or ""):match("[+-]%d+$") or tostring(steps))
      end
      cur = nexts[1]
    end
    return cur
  end

  local function too_far(arg, n, how)
    return typed("walk", "Relative revision %s didn't produce %d migrations; hint: %s", arg, math.abs(n),
      how or "`fsdb history` shows how far the revisions go")
  end

  --- The revisions an upgrade to `target` aims at (Alembic's
  --- _parse_upgrade_target): absolute names, "+N" / "label@+N" from the
  --- database, "rev+N", "label@rev+N", "rev-N".
  -- syntax: ids, err, code = g:upgrade_targets(target, rows)
  function Graph:upgrade_targets(target, rows)
    local label, sym, n = relative(target)
    if not n then return self:get_revisions(target) end
    label = label or nil
    local start, err, code
    if n > 0 and not sym then
      start = rows
      if label then
        start, err, code = self:filter_lineage(rows, label)
        if not start then return nil, err, code end
        if #start == 0 then
          -- The branch has no row of its own: start from its newest
          -- applied revision, if any.
          local active
          active, err, code = self:filter_lineage(list_of(self:closure(rows), self), label)
          if not active then return nil, err, code end
          local below = {}
          for _, id in ipairs(active) do
            for _, d in ipairs(self.nodes[id].downs) do below[d] = true end
            for _, d in ipairs(self.nodes[id].deps) do below[d] = true end
          end
          start = {}
          for _, id in ipairs(active) do
            if not below[id] then start[#start + 1] = id end
          end
        end
      end
      if #start > 1 then
        return typed("ambiguous", "Ambiguous upgrade from multiple current revisions (%s); hint: name the "
          .. "branch, e.g. LABEL@%s, or the revision to walk from, e.g. %s%s", table.concat(start, ", "),
          target, start[1], target)
      end
      start = start[1] or false
    elseif not sym then
      return too_far(target, n, "an upgrade cannot go down; use `fsdb downgrade " .. target .. "`")
    else
      start, err, code = self:get_revision((label and n < 0) and (label .. "@" .. sym) or sym)
      if start == nil then return nil, err, code end
    end
    local r
    r, err, code = self:walk(start, n, n > 0 and label or nil, target)
    if r == nil then return nil, err, code end
    if r == false then return too_far(target, n) end
    if r == BASE then return {} end
    return { r }
  end

  --- A downgrade target (Alembic's _parse_downgrade_target): the branch
  --- label it is qualified with (or false) and the revision (false: base).
  -- syntax: label, id, code = g:downgrade_target(target, rows)
  function Graph:downgrade_target(target, rows)
    local label, sym, n = relative(target)
    local err, code
    if n then
      label = label or nil
      local start
      if n >= 0 then
        if not sym then return too_far(target, n, "a downgrade cannot go up; use `fsdb upgrade`") end
        start, err, code = self:get_revision(sym)
        if start == nil then return nil, err, code end
      else
        if not sym then
          local syms
          if label then
            syms, err, code = self:filter_lineage(rows, label)
            if not syms then return nil, err, code end
            if #syms == 0 then
              -- The branch has no row: its newest applied revision.
              local all = self:closure(rows)
              local tips = {}
              for id in pairs(all) do
                local on_top = false
                for c in pairs(self:above({ id })) do
                  if c ~= id and all[c] then on_top = true end
                end
                if not on_top then tips[#tips + 1] = id end
              end
              syms, err, code = self:filter_lineage(self:sort(tips), label)
              if not syms then return nil, err, code end
            end
          else
            syms = rows
          end
          if #syms == 0 then
            return too_far(target, n, "the database is at <base>: nothing to undo")
          end
          if #syms > 1 then
            return typed("ambiguous", "Relative revision %s is ambiguous: the database is at %s; hint: name "
              .. "the branch (LABEL@%s, or a revision id as the label, e.g. %s@%s) or the target revision",
              target, table.concat(syms, ", "), target, syms[1], target)
          end
          sym = syms[1]
          label = label or sym
        end
        start, err, code = self:get_revision(label and (label .. "@" .. sym) or sym)
        if start == nil then return nil, err, code end
      end
      local r
      r, err, code = self:walk(start, n, n > 0 and label or nil, target)
      if r == nil then return nil, err, code end
      if r == false then return too_far(target, n) end
      return label or false, r ~= BASE and r or false
    end
    local blabel, symbol = target:match("^(.*)@([^@]*)$")
    if not blabel then symbol = target end
    if blabel == "" then blabel = nil end
    if blabel then
      local ok
      ok, err, code = self:branch_node(blabel)
      if not ok then return nil, err, code end
    end
    local id
    id, err, code = self:get_revision(symbol)
    if id == nil then return nil, err, code end
    return blabel or false, id
  end

  --- The revisions an upgrade from `rows` to `target` runs, in order, and
  --- the target ids.
  -- syntax: ids, targets | nil, err, code = g:upgrade_plan(rows, target)
  function Graph:upgrade_plan(rows, target)
    local targets, err, code = self:upgrade_targets(target, rows)
    if not targets then return nil, err, code end
    for _, a in ipairs(targets) do
      local anc = self:closure({ a })
      for _, b in ipairs(targets) do
        if a ~= b and anc[b] then
          return typed("ambiguous", "Requested revision %s overlaps with other requested revisions %s; hint: "
            .. "name only the newest of them", a, b)
        end
      end
    end
    local applied = self:closure(rows)
    local need = self:closure(targets)
    local plan = {}
    for _, id in ipairs(self.order) do
      if need[id] and not applied[id] then
        local n = self.nodes[id]
        if n.external then
          local child = n.children[1]
          return graph.cant_locate(id, ("it is the down_revision of %s but has no file in versions/; fsdb "
            .. "can only start above it when the version table already names it (a database adopted "
            .. "from Alembic); otherwise fix the down_revision of %s"):format(child, child))
        end
        plan[#plan + 1] = id
      end
    end
    return plan, targets
  end

  --- The revisions a downgrade from `rows` to `target` undoes, newest
  --- first (Alembic's _collect_downgrade_revisions).
  -- syntax: ids | nil, err, code = g:downgrade_plan(rows, target)
  function Graph:downgrade_plan(rows, target)
    local label, t, code = self:downgrade_target(target, rows)
    if label == nil then return nil, t, code end
    local roots
    if not t then
      roots = {}
      for _, id in ipairs(self.order) do
        if #self.nodes[id].downs == 0 then roots[#roots + 1] = id end
      end
    else
      roots = self.nodes[t].children
    end
    if label and #roots > 1 then
      local b = self:branch_node(label)
      local anc = self:ancestors({ b.id })
      local kept = {}
      for _, id in ipairs(roots) do
        if anc[id] then kept[#kept + 1] = id end
      end
      if #kept == 0 then
        return typed("not_ancestor", "Not a valid downgrade target from current heads: nothing of branch "
          .. "'%s' lies above %s; hint: `fsdb history` shows the branch", label, tostring(t or "<base>"))
      end
      roots = kept
    end
    local active = self:closure(rows)
    local plan = {}
    local remove = self:above(roots, true)
    for i = #self.order, 1, -1 do
      local id = self.order[i]
      if remove[id] and active[id] then
        if self.nodes[id].external then
          return graph.cant_locate(id, "it is an adopted revision (applied by another tool, no file in "
            .. "versions/); fsdb cannot downgrade below it — downgrade to it instead")
        end
        plan[#plan + 1] = id
      end
    end
    if t and #plan == 0 and not contains(rows, t) then
      return typed("not_ancestor", "Destination %s is not a valid downgrade target from current head(s); "
        .. "hint: the database is at %s; `fsdb history` shows the revisions below it", t,
        graph.format_ids(self:sort(rows)))
    end
    return plan
  end

  --- The rows a stamp to `target` leaves (Alembic's _stamp_revs): the
  --- rows in the target's lineage (depends_on included) give way to the
  --- target; other rows stay. purge starts from an empty table.
  -- syntax: rows | nil, err, code = g:stamp_rows(rows, target, purge)
  function Graph:stamp_rows(rows, target, purge)
    if purge then rows = {} end
    local dests, err, code
    local n = select(3, relative(target))
    if n then
      dests, err, code = self:resolve(target, rows)
    else
      dests, err, code = self:get_revisions(target)
    end
    if not dests then return nil, err, code end
    local filtered
    if n then
      filtered = rows
    else
      filtered, err, code = self:filter_lineage(rows, target, true)
      if not filtered then return nil, err, code end
    end
    local cur = {}
    for _, r in ipairs(rows) do cur[r] = true end
    if #dests == 0 then
      for _, r in ipairs(filtered) do cur[r] = nil end
    end
    for _, dest in ipairs(dests) do
      if not contains(filtered, dest) then
        local related = self:closure({ dest })
        for k in pairs(self:above({ dest }, true)) do related[k] = true end
        local any = false
        for _, r in ipairs(filtered) do
          if related[r] then any = true end
        end
        if any then
          for _, r in ipairs(filtered) do cur[r] = nil end
        end
        cur[dest] = true
      end
    end
    return list_of(cur, self)
  end

  --- Resolves a target to a list of revision ids ({} = base) for the verbs
  --- that only look (show, history, merge, --head): absolute names as
  --- above, "+N"/"-N" from the rows given, "rev+N"/"rev-N" from rev.
  -- syntax: ids, err, code = g:resolve(target, current_rows)
  function Graph:resolve(target, current)
    if type(target) ~= "string" or target == "" then
      return typed("usage", "no target revision given")
    end
    if target == "current" then
      if not current then return typed("usage", "'current' needs the database") end
      return self:sort(current)
    end
    local label, sym, n = relative(target)
    if not n then return self:get_revisions(target) end
    label = label or nil
    local start, err, code
    if sym then
      start, err, code = self:get_revision(label and (label .. "@" .. sym) or sym)
      if start == nil then return nil, err, code end
    else
      if not current then return typed("usage", "relative revision '%s' needs the database", target) end
      local from = current
      if label then
        from, err, code = self:filter_lineage(current, label)
        if not from then return nil, err, code end
      end
      if #from > 1 then
        return typed("ambiguous", "Relative revision %s is ambiguous: it starts from more than one revision "
          .. "(%s); hint: give the starting revision, e.g. %s%s", target, table.concat(from, ", "), from[1],
          target:match("[+-]%d+$"))
      end
      start = from[1] or (n < 0 and BASE) or false
    end
    local r
    r, err, code = self:walk(start, n, n > 0 and label or nil, target)
    if r == nil then return nil, err, code end
    if r == false then return too_far(target, n) end
    if r == BASE then return {} end
    return { r }
  end

  --- Revisions between two targets, newest first, for `history -r a:b`.
  -- syntax: ids, err = g:range(spec, current_rows)
  -- spec "a:b", "a:", ":b" or nil (everything); both ends included.
  function Graph:range(spec, current)
    local all = self:newest_first()
    if spec == nil or spec == "" or spec == ":" then return all end
    local lo, hi = spec:match("^([^:]*):([^:]*)$")
    if not lo then
      return typed("usage", "bad revision range '%s'; hint: use start:end, e.g. base:head, ae10:, :current",
        spec)
    end
    local keep_hi, keep_lo
    if hi ~= "" then
      local ids, err, code = self:resolve(hi, current)
      if not ids then return nil, err, code end
      keep_hi = self:closure(ids)
    end
    if lo ~= "" then
      local ids, err, code = self:resolve(lo, current)
      if not ids then return nil, err, code end
      if #ids > 0 then keep_lo = self:above(ids, true) end
    end
    local t = {}
    for _, id in ipairs(all) do
      if (not keep_hi or keep_hi[id]) and (not keep_lo or keep_lo[id]) then t[#t + 1] = id end
    end
    return t
  end
end

_M.BASE = BASE
return _M
