--- fsdb.migrate.runner — the run context (Alembic's MigrationContext):
--- one object for an online run (statements execute on the migration's
--- connection) and an offline one (--sql: they are printed), so that
--- applying revisions, writing the version table and reporting a failure
--- are the same code either way.
--
-- Why each revision on its own: MySQL commits every DDL statement
-- implicitly, so a run of several revisions cannot be one transaction.
-- Each revision runs inside START TRANSACTION … COMMIT together with its
-- version-table write: a data-only revision is atomic, and a failing
-- revision leaves the version table naming the revision before it (its
-- DDL statements that already ran stay — the report lists them).

local graph_mod = require("fsdb.migrate.graph")
local ops = require("fsdb.migrate.ops")
local sqltext = require("fsdb.sqltext")

local _M = {}

local Run = {}
Run.__index = Run

-- "a, b" or "<base>"
local function show_rows(rows)
  return graph_mod.format_ids(rows)
end

--- A value as a SQL literal (fsdb.sqltext.literal); a value that has none
--- (a table, NaN) shows as `?`, for display only.
local function literal(v)
  local ok, s = pcall(sqltext.literal, v)
  return ok and s or "?"
end
_M.literal = literal

--- The statement with its parameters inlined as literals, for display: `?`
--- from the array part, `:name` from the string keys; a missing value shows
--- as NULL (the statement is shown as run, never refused here).
-- syntax: s = migrate.inline(sql, params)
function _M.inline(sql, params)
  if params == nil or type(params) ~= "table" then return sql end
  return ops.substitute(sql, function(key) return literal(params[key]) end)
end


--- An online run context: statements execute on conn, each logged.
-- syntax: ctx = runner.online(m, conn)
function _M.online(m, conn)
  local ctx = setmetatable({ m = m, conn = conn, log = {}, offline = false, out = m.out }, Run)
  local log = ctx.log
  function ctx.exec(sql, params)
    local res, err, errno, sqlstate
    if params == nil then
      res, err, errno, sqlstate = conn:execute(sql)
    else
      res, err, errno, sqlstate = conn:execute(sql, params)
    end
    log[#log + 1] = { sql = _M.inline(sql, params), ok = res ~= nil, err = err, errno = errno,
                      sqlstate = sqlstate }
    return res, err, errno, sqlstate
  end
  return ctx
end

--- An offline (--sql) run context: statements are printed as "sql;" and
--- nothing runs; the output starts with SET NAMES (sqltext.header), so it
--- is read in the charset it was written for.
-- syntax: ctx = runner.offline(m)
function _M.offline(m)
  local ctx = setmetatable({ m = m, log = {}, offline = true, out = m.out }, Run)
  local log, out = ctx.log, m.out
  out(sqltext.header() .. "\n")
  function ctx.exec(sql, params)
    local text = ops.inline(sql, params)
    out(text .. ";\n")
    log[#log + 1] = { sql = text, ok = true }
    return { affected_rows = 1, insert_id = 0, warnings = 0 }
  end
  return ctx
end

-- The dialect the ops of this run write for: the connection's online,
-- the portable one for --sql.
function Run:dialect()
  if self.offline then return nil end
  if self._dialect == nil then
    local d, err = sqltext.dialect_of(self.conn)
    if not d then error(err, 0) end
    self._dialect = d
  end
  return self._dialect
end

local function one_line(s)
  return (tostring(s):gsub("%s*\n%s*", " "))
end

-- Whether a statement commits implicitly (DDL and the like); comments
-- and parentheses before the first word are skipped.
local IMPLICIT_COMMIT = {
  create = true, alter = true, drop = true, rename = true, truncate = true, grant = true,
  revoke = true, lock = true, unlock = true, analyze = true, optimize = true, repair = true,
}
local function is_ddl(sql)
  local s = tostring(sql):gsub("^%s*", "")
  repeat
    local before = s
    s = s:gsub("^/%*.-%*/%s*", ""):gsub("^%-%-[^\n]*\n?%s*", ""):gsub("^#[^\n]*\n?%s*", "")
      :gsub("^%(%s*", "")
  until s == before
  local word = s:match("^(%a+)")
  return word ~= nil and IMPLICIT_COMMIT[word:lower()] == true
end

-- The failure report (multi-line; the first line completes "fsdb <verb>: ").
function Run:report(direction, node, info, ran, db_rows)
  local t = {}
  local function f(name, value)
    t[#t + 1] = ("%-16s%s"):format(name .. ":", tostring(value))
  end
  local msg = graph_mod.short_message(node.message)
  t[1] = ("fsdb: FAILED in revision %s (%s)"):format(node.id, msg)
  f("operation", info.op or "?")
  f("sql", info.sql and one_line(info.sql) or "-")
  f("error", one_line(info.err or "unknown error"))
  f("errno", info.errno or "-")
  f("sqlstate", info.sqlstate or "-")
  f("database is at", db_rows)
  if info.op == "version table" then
    t[#t + 1] = ("hint: %s of %s ran but the version table could not be written; check the table "
      .. "%s and stamp the revision the schema is at (`fsdb stamp <rev>`)"):format(
        "the " .. direction, node.id, self.m.version_table)
  elseif #ran > 0 then
    -- MySQL commits implicitly at each DDL statement (and at the DML
    -- before it): what ran up to the last DDL stays, the rest was rolled
    -- back with the revision's transaction.
    local last_ddl = 0
    for i, s in ipairs(ran) do
      if is_ddl(s) then last_ddl = i end
    end
    if last_ddl == 0 then
      t[#t + 1] = ("hint: nothing of %s stays: it changed only data, and its statements that ran were "
        .. "rolled back with its transaction:"):format(node.id)
      for _, s in ipairs(ran) do t[#t + 1] = "  " .. one_line(s) end
      t[#t + 1] = ("fix %s and run `fsdb %s` again"):format(node.path or node.id, direction)
    else
      t[#t + 1] = ("hint: MySQL commits DDL implicitly, so %s is half-applied: these statements of it "
        .. "ran before the failure and stay:"):format(node.id)
      for i = 1, last_ddl do t[#t + 1] = "  " .. one_line(ran[i]) end
      if last_ddl < #ran then
        t[#t + 1] = "these ran after its last DDL statement and were rolled back:"
        for i = last_ddl + 1, #ran do t[#t + 1] = "  " .. one_line(ran[i]) end
      end
      t[#t + 1] = ("undo the ones that stay by hand (or make the revision re-runnable), fix %s and run "
        .. "`fsdb %s` again"):format(node.path or node.id, direction)
    end
  else
    t[#t + 1] = ("hint: nothing of %s ran before the failure; fix %s and run `fsdb %s` again")
      :format(node.id, node.path or node.id, direction)
  end
  return table.concat(t, "\n")
end

--- Runs the revisions of a plan one by one, each in its own transaction
--- with its version-table write. Returns the rows left, or nil, report,
--- failure.
-- syntax: rows = ctx:run(direction, plan, rows)
function Run:run(direction, plan, rows)
  local m, exec, log, offline, conn = self.m, self.exec, self.log, self.offline, self.conn
  local g = m.graph
  local applied = g:closure(rows)
  local cur = rows
  for _, id in ipairs(plan) do
    local node = g:node(id)
    local rev = node.rev
    local from, to, fn
    if direction == "upgrade" then
      from, to, fn = table.concat(node.downs, ", "), id, rev.up
    else
      from, to, fn = id, table.concat(node.downs, ", "), rev.down
    end
    local progress = ("Running %s %s -> %s, %s"):format(direction, from, to,
      graph_mod.short_message(node.message))
    if offline then
      self.out("\n-- " .. progress .. "\n\n")
    else
      self.out(progress .. "\n")
    end
    local start = #log + 1
    local failure, err
    local op
    local ok, e = xpcall(function()
      local began, berr = exec("START TRANSACTION")
      if not began then error(berr, 0) end
      if type(fn) ~= "function" then
        error(("fsdb: revision %s has no %s function"):format(id, direction == "upgrade" and "up" or "down"), 0)
      end
      op = ops.new(exec, { dialect = self:dialect() })
      fn(op)
    end, function(msg) return msg end)
    if not ok then
      -- ops describes its failure in op.last_failure; a failed statement
      -- of ours (START TRANSACTION) is the last log entry; anything else is
      -- an error in the revision's Lua code.
      local last = #log >= start and log[#log] or nil
      local failed_stmt = last and not last.ok and last or nil
      failure = type(op) == "table" and type(op.last_failure) == "table" and op.last_failure or nil
      if not failure and failed_stmt then
        failure = { op = "?", err = failed_stmt.err, errno = failed_stmt.errno, sqlstate = failed_stmt.sqlstate }
      end
      if not failure then
        failure = { op = ("(Lua error in %s)"):format(direction == "upgrade" and "up" or "down"), err = tostring(e) }
      end
      if failure.err == nil then failure.err = tostring(e) end
      -- The failing statement with its parameters inlined.
      if failed_stmt then failure.sql = failed_stmt.sql end
    else
      if direction == "upgrade" then
        applied[id] = true
      else
        applied[id] = nil
      end
      local new_rows = g:rows_for(applied)
      local written, f = m.vt:write(exec, cur, new_rows, { online = not offline })
      if not written then
        failure = f
        failure.sql = _M.inline(f.sql, f.params)
      end
      if not failure then
        local res, cerr, errno, sqlstate = exec("COMMIT")
        if not res then
          failure = { op = "COMMIT", sql = "COMMIT", err = cerr, errno = errno, sqlstate = sqlstate }
        else
          cur = new_rows
        end
      end
    end
    if failure then
      -- The statements of this revision that succeeded (for the report).
      local ran = {}
      for i = start, #log do
        local s = log[i].sql
        if log[i].ok and s ~= "START TRANSACTION" then ran[#ran + 1] = s end
      end
      local db_rows = show_rows(cur) .. " (before this revision, in this script)"
      if conn then
        db_rows = "unknown"
        conn:execute("ROLLBACK")
        local now = m:read_rows(conn)
        if now then db_rows = show_rows(now) end
      end
      err = self:report(direction, node, failure, ran, db_rows)
      return nil, err, failure
    end
  end
  return cur
end


--- A stamp: the version table from `rows` to `new_rows` in a transaction
--- of its own (nothing else runs).
-- syntax: ok | nil, err, errno, sqlstate = ctx:stamp(rows, new_rows, purge)
function Run:stamp(rows, new_rows, purge)
  local ok, f = self.m.vt:stamp(self.exec, rows, new_rows, { purge = purge, online = not self.offline })
  if ok then return true end
  local what = f.sql == "COMMIT" and "the version table may or may not have been written; `fsdb current` "
    .. "shows it" or "the version table was not changed"
  return nil, ("fsdb: stamp failed at %s: %s; hint: %s"):format(_M.inline(f.sql, f.params),
    tostring(f.err), what), f.errno, f.sqlstate
end

return _M
