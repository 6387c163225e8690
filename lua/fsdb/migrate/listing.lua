--- fsdb.migrate.listing — the verbs that only look: current, heads,
--- branches, history, show (Alembic's command.current/heads/branches/
--- history/show), as methods of the object fsdb.migrate.open returns.
--
-- Each returns entries (tables describing a revision: id, message, flags,
-- the one-line `line`, Alembic's `history_line` and, for -v, the
-- multi-line `text`) or `nil, err`.

local graph_mod = require("fsdb.migrate.graph")

local _M = {}

local function fail(fmt, ...)
  return nil, "fsdb: " .. fmt:format(...)
end

function _M.extend(M)
  -- The multi-line description of a revision (show, and -v listings), as
  -- Alembic prints it: Rev, Parent, Branches into, Path, the message.
  function M:detail(id)
    local g = self.graph
    local n = g:node(id)
    local t = { "Rev: " .. id .. g:tags(id) }
    if n.external then
      t[#t + 1] = "Parent: (unknown: applied by another tool; its history is not in versions/)"
    else
      t[#t + 1] = "Parent: " .. (#n.downs == 0 and "<base>" or table.concat(n.downs, ", "))
    end
    if #n.children > 1 then t[#t + 1] = "Branches into: " .. table.concat(n.children, ", ") end
    if #n.deps > 0 then t[#t + 1] = "Also depends on: " .. table.concat(n.deps, ", ") end
    if #n.labels > 0 then t[#t + 1] = "Branch names: " .. table.concat(n.labels, ", ") end
    t[#t + 1] = "Path: " .. (n.path or "(none: adopted revision, applied by another tool)")
    t[#t + 1] = ""
    for l in ((n.message or "") .. "\n"):gmatch("([^\n]*)\n") do
      t[#t + 1] = (l == "" and "" or "    " .. l)
    end
    return (table.concat(t, "\n"):gsub("\n+$", "")) .. "\n"
  end

  -- An entry for listings: id, message, flags and the display lines.
  function M:entry(id, current)
    local g = self.graph
    local n = g:node(id)
    local msg = n.external and "applied by another tool (no file in versions/)"
      or graph_mod.short_message(n.message)
    return {
      revision = id,
      down_revision = n.downs,
      message = n.message,
      path = n.path,
      branch_labels = n.labels,
      depends_on = n.deps,
      is_head = g:is_head(id),
      is_branch_point = #n.children > 1,
      is_merge_point = #n.downs > 1,
      external = n.external or false,
      line = id .. g:tags(id, current) .. (msg ~= "" and (", " .. msg) or ""),
      history_line = g:line(id, current),
      text = self:detail(id),
    }
  end

  -- The version table's rows, checked against the revision files.
  function M:checked_rows()
    return self:with_conn(false, function(conn)
      local rows, missing, errno, sqlstate = self:read_rows(conn)
      if not rows then return nil, missing, errno, sqlstate end
      local ok, err = self.graph:check_rows(rows)
      if not ok then return nil, err end
      return rows, missing
    end)
  end

  --- The version table's rows, as entries ({} = base); second value true
  --- when the version table does not exist yet.
  -- syntax: entries, err = m:current()
  function M:current()
    local rows, missing = self:checked_rows()
    if not rows then return nil, missing end
    local t = {}
    for _, r in ipairs(rows) do t[#t + 1] = self:entry(r) end
    return t, missing and true or false
  end

  --- The head revisions.
  -- syntax: entries = m:heads()
  function M:heads()
    local t = {}
    for _, id in ipairs(self.graph:heads()) do t[#t + 1] = self:entry(id) end
    return t
  end

  --- The branch points, each with `children` (entries).
  -- syntax: entries = m:branches()
  function M:branches()
    local t = {}
    for _, id in ipairs(self.graph:branchpoints()) do
      local e = self:entry(id)
      e.children = {}
      for _, c in ipairs(self.graph:node(id).children) do e.children[#e.children + 1] = self:entry(c) end
      t[#t + 1] = e
    end
    return t
  end

  --- Revisions newest first, optionally in a range "a:b" (ends included;
  --- "current" reads the database). indicate_current (Alembic's -i) reads
  --- the database and marks its revisions "(current)".
  -- syntax: entries, err = m:history(range, { indicate_current = bool })
  function M:history(range, o)
    o = o or {}
    local current
    if (range and range:find("current", 1, true)) or o.indicate_current then
      local rows, err = self:checked_rows()
      if not rows then return nil, err end
      current = rows
    end
    local ids, err = self.graph:range(range, current)
    if not ids then return nil, err end
    local cur
    if current then
      cur = {}
      for _, r in ipairs(current) do cur[r] = true end
    end
    local t = {}
    for _, id in ipairs(ids) do t[#t + 1] = self:entry(id, cur) end
    return t
  end

  --- One revision in detail; entry.text is the display.
  -- syntax: entry, err = m:show(rev)
  function M:show(rev)
    local g = self.graph
    local current
    -- current, +N / -N and LABEL@+N / LABEL@-N count from the database
    if rev == "current" or (type(rev) == "string" and (rev:match("^[+-]%d+$") or rev:match("^[^@]*@[+-]%d+$"))) then
      local rows, err = self:checked_rows()
      if not rows then return nil, err end
      current = rows
    end
    local ids, err = g:resolve(rev, current)
    if not ids then return nil, err end
    if #ids == 0 then return fail("'%s' is <base>, not a revision", tostring(rev)) end
    if #ids > 1 then
      return fail("'%s' names more than one revision (%s); hint: show them one at a time", rev,
        table.concat(ids, ", "))
    end
    return self:entry(ids[1])
  end
end

return _M
