--- fsdb.migrate — the migration runner (Alembic semantics, MySQL reality).
--
--   local migrate = require("fsdb.migrate")
--   local m = assert(migrate.open{ dir = "migrations" })
--   assert(m:upgrade("head"))
--   m:close()
--
-- This file owns running revisions against a database: the connection
-- (one dedicated connection, --url / env.lua / the environment), the named
-- server lock, the version table, applying and stamping each revision on
-- its own, the failure report, offline (--sql) output and autogenerate's
-- wiring. The revision graph lives in fsdb.migrate.graph, the files in
-- fsdb.migrate.script, the operations in fsdb.migrate.ops and the schema
-- comparison in fsdb.migrate.autogen.
--
-- Why each revision on its own: MySQL commits every DDL statement
-- implicitly, so a run of several revisions cannot be one transaction.
-- Each revision runs inside START TRANSACTION … COMMIT together with its
-- version-table write: a data-only revision is atomic, and a failing
-- revision leaves the version table naming the revision before it (its
-- DDL statements that already ran stay — the report lists them).
--
-- Every failure is `nil, err` (err starts with "fsdb: ", keeps Alembic's
-- wording and ends with "; hint: …"); nothing here raises for a database
-- or file problem.

local graph_mod = require("fsdb.migrate.graph")
local script = require("fsdb.migrate.script")
local ops = require("fsdb.migrate.ops")
local sqltext = require("fsdb.sqltext")

local unpack = table.unpack or unpack

local _M = {}

local M = {}
M.__index = M

_M.DEFAULT_DIR = "migrations"
_M.DEFAULT_VERSION_TABLE = "alembic_version"
_M.DEFAULT_LOCK_TIMEOUT = 60
_M.NOT_UP_TO_DATE = "Target database is not up to date."
_M.NO_CHANGES = "No changes in schema detected."

local ENV_KEYS = {
  url = true, bind = true, version_table = true, schema = true, include_object = true,
  drop_tables = true, lock_timeout = true,
}

local function pack(...)
  return { n = select("#", ...), ... }
end

local function fail(fmt, ...)
  return nil, "fsdb: " .. fmt:format(...)
end

-- Inserts text before "; hint: …" (or appends it).
local function with_detail(err, detail)
  err = tostring(err)
  local head, hint = err:match("^(.-)(; hint: .*)$")
  if head then return head .. detail .. hint end
  return err .. detail
end

------------------------------------------------------------------------
-- SQL text for display (--sql and failure reports)
------------------------------------------------------------------------

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

------------------------------------------------------------------------
-- Opening a migrations directory
------------------------------------------------------------------------

local function check_env(env, path)
  for k in pairs(env) do
    if not ENV_KEYS[k] then
      local names = {}
      for name in pairs(ENV_KEYS) do names[#names + 1] = name end
      table.sort(names)
      return fail("unknown key '%s' in %s (known: %s)", tostring(k), path, table.concat(names, ", "))
    end
  end
  local vt = env.version_table
  if vt ~= nil and (type(vt) ~= "string" or not vt:match("^[%w_$]+$") or #vt > 60) then
    return fail("version_table in %s must be a table name of letters, digits, _ or $ (got %s)",
      path, tostring(vt))
  end
  if env.bind ~= nil and (type(env.bind) ~= "string" or env.bind == "") then
    return fail("bind in %s must be a bind name (string)", path)
  end
  if env.url ~= nil and type(env.url) ~= "string" and type(env.url) ~= "function" then
    return fail("url in %s must be a string or a function returning one", path)
  end
  if env.lock_timeout ~= nil and (type(env.lock_timeout) ~= "number" or env.lock_timeout < 0) then
    return fail("lock_timeout in %s must be a number of seconds >= 0", path)
  end
  if env.include_object ~= nil and type(env.include_object) ~= "function" then
    return fail("include_object in %s must be a function(kind, name)", path)
  end
  local st = type(env.schema)
  if env.schema ~= nil and st ~= "string" and st ~= "function" and st ~= "table" then
    return fail("schema in %s must be a module name, a function or a table", path)
  end
  return true
end

--- Opens a migrations directory. Connects only when a command needs the
--- database.
-- syntax: m, err = migrate.open{ dir = "migrations", url = nil, out = writer,
--   bind = nil, lock_timeout = nil, getenv = os.getenv, dotenv = ".env",
--   engine_options = nil, on_url = nil }
-- out receives progress text (default: io.stdout). url overrides env.lua's.
-- bind and lock_timeout override env.lua's. on_url(url) is called with the
-- URL before connecting (the CLI uses it to keep the password out of its
-- output).
function _M.open(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("fsdb: bad argument #1 to 'open' (table expected, got " .. type(opts) .. ")", 2)
  end
  local dir = opts.dir or _M.DEFAULT_DIR
  if not script.is_dir(dir) then
    return fail("Path doesn't exist: %s. Please use the 'init' command to create a new migrations "
      .. "directory; hint: `fsdb init -d %s` creates it, or pass -d DIR", dir, dir)
  end
  local env, err = script.load_env(dir)
  if not env then return nil, err end
  local ok
  ok, err = check_env(env, dir .. "/env.lua")
  if not ok then return nil, err end
  local m = setmetatable({
    dir = dir,
    env = env,
    url = opts.url,
    bind = opts.bind or env.bind,
    version_table = env.version_table or _M.DEFAULT_VERSION_TABLE,
    lock_timeout = tonumber(opts.lock_timeout) or env.lock_timeout or _M.DEFAULT_LOCK_TIMEOUT,
    out = opts.out or function(s) io.stdout:write(s) end,
    getenv = opts.getenv or os.getenv,
    dotenv = opts.dotenv,
    engine_options = opts.engine_options,
    on_url = opts.on_url,
  }, M)
  ok, err = m:reload()
  if not ok then return nil, err end
  return m
end

--- Reads versions/ again (after files changed on disk).
-- syntax: ok, err = m:reload()
function M:reload()
  local revs, err
  if script.is_dir(self.dir .. "/versions") then
    revs, err = script.load_versions(self.dir)
    if not revs then return nil, err end
  else
    revs = {}
  end
  local g
  g, err = graph_mod.new(revs)
  if not g then return nil, err end
  self.graph = g
  return true
end

------------------------------------------------------------------------
-- Connection, version table, lock
------------------------------------------------------------------------

local function bind_var(bind)
  return require("fsdb.config").bind_var(bind)
end

-- The URL and where it came from.
function M:resolve_url()
  if self.url then return self.url, "--url" end
  local u = self.env.url
  if type(u) == "function" then
    local ok, v = pcall(u)
    if not ok then return fail("url() in %s/env.lua failed: %s", self.dir, tostring(v)) end
    u = v
  end
  if type(u) == "string" and u ~= "" then return u, "env.lua" end
  local config = require("fsdb.config")
  if self.bind then
    local var = bind_var(self.bind)
    local v = self.getenv(var)
    if v == nil then
      v = (config.read_dotenv(self.dotenv) or {})[var]
    end
    if v and v ~= "" then return v, var end
    return fail("no database URL for bind '%s'; hint: set %s (in the environment or .env), url in "
      .. "%s/env.lua, or pass --url", self.bind, var, self.dir)
  end
  local v, err = config.url_from_env(self.getenv, self.dotenv)
  if not v then return nil, err end
  return v, "the environment (DATABASE_URL, DB_*, .env)"
end

-- A connection on the migration's own engine (one connection, no overflow).
function M:connect()
  local url, source = self:resolve_url()
  if not url then return nil, source end
  if self.on_url then self.on_url(url) end
  if not self.engine then
    local options = {}
    for k, v in pairs(self.engine_options or {}) do options[k] = v end
    options.pool_size = 1
    options.max_overflow = 0
    local engine_mod = require("fsdb.engine")
    local ok, engine = pcall(engine_mod.new, url, options)
    if not ok then
      return nil, (tostring(engine):gsub("^.-:%d+: (fsdb:)", "%1"))
    end
    self.engine = engine
    self.url_source = source
  end
  local conn, err, errno, sqlstate = self.engine:connect()
  if not conn then
    return nil, with_detail(err, (" (database %s from %s)"):format(self.engine:url(), self.url_source)),
      errno, sqlstate
  end
  return conn
end

local function quote(name)
  return sqltext.ident(name)
end

function M:version_sql()
  local t = quote(self.version_table)
  return {
    create = ("CREATE TABLE IF NOT EXISTS %s (version_num VARCHAR(32) NOT NULL, CONSTRAINT %s "
      .. "PRIMARY KEY (version_num))"):format(t, quote(self.version_table .. "_pkc")),
    select = ("SELECT version_num FROM %s"):format(t),
    insert = ("INSERT INTO %s (version_num) VALUES (?)"):format(t),
    update = ("UPDATE %s SET version_num = ? WHERE version_num = ?"):format(t),
    delete = ("DELETE FROM %s WHERE version_num = ?"):format(t),
    purge = ("DELETE FROM %s"):format(t),
  }
end

-- The rows of the version table ({} when it does not exist yet), in the
-- graph's order; second value true when the table is missing.
function M:read_rows(conn)
  local res, err, errno, sqlstate = conn:execute(self:version_sql().select)
  if not res then
    if errno == 1146 then return {}, true end
    return nil, err, errno, sqlstate
  end
  local rows = {}
  for _, r in ipairs(res) do rows[#rows + 1] = r.version_num end
  local g = self.graph
  table.sort(rows, function(a, b)
    local pa, pb = g.pos[a], g.pos[b]
    if pa and pb then return pa < pb end
    if pa or pb then return pb == nil end
    return a < b
  end)
  return rows
end

-- "a, b" or "<base>"
local function show_rows(rows)
  return graph_mod.format_ids(rows)
end

local function first_value(res, key)
  local row = res and res[1]
  return row and row[key]
end

-- Takes the named lock for this database; returns the lock name.
function M:lock(conn)
  local res, err, errno, sqlstate = conn:execute("SELECT DATABASE() AS db, MD5(DATABASE()) AS h")
  if not res then return nil, err, errno, sqlstate end
  local db, h = first_value(res, "db"), first_value(res, "h")
  if type(db) ~= "string" then
    return fail("the database URL names no database; hint: add /dbname to the URL")
  end
  local name = "fsdb_migrate:" .. db
  if #name > 64 then
    name = "fsdb_migrate:" .. db:sub(1, 18) .. ":" .. h -- 13 + 18 + 1 + 32 = 64
  end
  local timeout = self.lock_timeout
  res, err, errno, sqlstate = conn:execute("SELECT GET_LOCK(?, 0) AS got", name)
  if not res then return nil, err, errno, sqlstate end
  local got = first_value(res, "got")
  if got ~= 1 and timeout > 0 then
    local holder = first_value(conn:execute("SELECT IS_USED_LOCK(?) AS id", name), "id")
    self.out(("Waiting up to %s s for the migration lock '%s' (held by connection %s: another "
      .. "migration is running)\n"):format(tostring(timeout), name, tostring(holder)))
    res, err, errno, sqlstate = conn:execute("SELECT GET_LOCK(?, ?) AS got", name, timeout)
    if not res then return nil, err, errno, sqlstate end
    got = first_value(res, "got")
  end
  if got ~= 1 then
    if got == 0 then
      local holder = first_value(conn:execute("SELECT IS_USED_LOCK(?) AS id", name), "id")
      return fail("another migration is running on database '%s' (lock '%s' held; waited %s s); hint: "
        .. "wait for it to finish and try again (the lock is held by connection %s: SHOW PROCESSLIST; "
        .. "raise lock_timeout in env.lua to wait longer)", db, name, tostring(timeout), tostring(holder))
    end
    return fail("GET_LOCK('%s') failed on database '%s'", name, db)
  end
  self.lock_name = name
  return name
end

function M:unlock(conn)
  if self.lock_name then
    conn:execute("SELECT RELEASE_LOCK(?) AS r", self.lock_name)
    self.lock_name = nil
  end
end

-- Runs fn(conn) on a connection, under the lock when `locked`; the lock
-- is released and the connection returned whatever happens.
function M:with_conn(locked, fn)
  local conn, err, errno, sqlstate = self:connect()
  if not conn then return nil, err, errno, sqlstate end
  if locked then
    local name
    name, err, errno, sqlstate = self:lock(conn)
    if not name then
      conn:close()
      return nil, err, errno, sqlstate
    end
  end
  local r = pack(pcall(fn, conn))
  if locked then pcall(self.unlock, self, conn) end
  conn:close()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

------------------------------------------------------------------------
-- Running revisions
------------------------------------------------------------------------

-- The connection behind an online runner, for the dialect of its ops.
local runner_conn = setmetatable({}, { __mode = "k" })

local function runner_dialect(exec)
  local conn = runner_conn[exec]
  if conn == nil then return nil end
  local d, err = sqltext.dialect_of(conn)
  if not d then error(err, 0) end
  return d
end

-- A run(sql, params) for ops that executes on conn and logs every call.
local function online_runner(conn, log)
  local function run(sql, params)
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
  runner_conn[run] = conn
  return run
end

-- A run(sql, params) that prints "sql;" and runs nothing; the output starts
-- with SET NAMES (sqltext.header), so it is read in the charset it was
-- written for.
local function offline_runner(out, log)
  out(sqltext.header() .. "\n")
  return function(sql, params)
    local text = ops.inline(sql, params)
    out(text .. ";\n")
    log[#log + 1] = { sql = text, ok = true }
    return { affected_rows = 1, insert_id = 0, warnings = 0 }
  end
end

local function one_line(s)
  return (tostring(s):gsub("%s*\n%s*", " "))
end

-- The failure report (multi-line; the first line completes "fsdb <verb>: ").
function M:failure_report(direction, node, info, ran, db_rows)
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
        "the " .. direction, node.id, self.version_table)
  elseif #ran > 0 then
    t[#t + 1] = ("hint: MySQL commits DDL implicitly, so %s may be half-applied: these statements "
      .. "of it ran before the failure and any DDL among them stays (data changes since its last DDL "
      .. "statement were rolled back):"):format(node.id)
    for _, s in ipairs(ran) do t[#t + 1] = "  " .. one_line(s) end
    t[#t + 1] = ("undo them by hand (or make the revision re-runnable), fix %s and run `fsdb %s` again")
      :format(node.path or node.id, direction)
  else
    t[#t + 1] = ("hint: nothing of %s ran before the failure; fix %s and run `fsdb %s` again")
      :format(node.id, node.path or node.id, direction)
  end
  return table.concat(t, "\n")
end

-- Runs the revisions of a plan one by one. exec(sql, params) runs (or
-- prints) one statement. Returns the rows left, or nil, report, failure.
function M:run_plan(direction, plan, rows, exec, log, offline, conn)
  local g = self.graph
  local vsql = self:version_sql()
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
      op = ops.new(exec, { dialect = runner_dialect(exec) })
      fn(op)
    end, function(m) return m end)
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
      for _, change in ipairs(graph_mod.row_changes(cur, new_rows)) do
        local sql, params
        if change[1] == "update" then
          sql, params = vsql.update, { change[3], change[2] }
        elseif change[1] == "delete" then
          sql, params = vsql.delete, { change[2] }
        else
          sql, params = vsql.insert, { change[2] }
        end
        local res, werr, errno, sqlstate = exec(sql, params)
        if not res then
          failure = { op = "version table", sql = _M.inline(sql, params), err = werr, errno = errno,
                      sqlstate = sqlstate }
          break
        end
        if change[1] ~= "insert" and not offline and res.affected_rows ~= 1 then
          failure = { op = "version table", sql = _M.inline(sql, params),
            err = ("Online migration expected to match one row when updating '%s' to '%s' in '%s'; "
              .. "%s found"):format(change[2], change[3] or "", self.version_table,
              tostring(res.affected_rows)) }
          break
        end
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
        local now = self:read_rows(conn)
        if now then db_rows = show_rows(now) end
      end
      err = self:failure_report(direction, node, failure, ran, db_rows)
      return nil, err, failure
    end
  end
  return cur
end

-- Resolves a plan: the revisions to run and the target ids.
function M:plan(direction, rows, target)
  local g = self.graph
  local targets, err = g:resolve(target, rows)
  if not targets then return nil, err end
  local plan
  if direction == "upgrade" then
    plan, err = g:upgrade_plan(rows, targets)
  else
    plan, err = g:downgrade_plan(rows, targets)
  end
  if not plan then return nil, err end
  return plan, targets
end

-- upgrade / downgrade, online or offline.
function M:migrate(direction, target, opts)
  opts = opts or {}
  local g = self.graph
  if opts.sql then return self:offline(direction, target) end
  return self:with_conn(true, function(conn)
    local vsql = self:version_sql()
    local res, err, errno, sqlstate = conn:execute(vsql.create)
    if not res then return nil, err, errno, sqlstate end
    local rows
    rows, err, errno, sqlstate = self:read_rows(conn)
    if not rows then return nil, err, errno, sqlstate end
    local ok
    ok, err = g:check_rows(rows)
    if not ok then return nil, err end
    local plan
    plan, err = self:plan(direction, rows, target)
    if not plan then return nil, err end
    if #plan == 0 then
      self.out(("Nothing to %s: the database is at %s\n"):format(direction, show_rows(rows)))
      return { ran = {}, rows = rows }
    end
    local log = {}
    local new_rows, ferr, failure = self:run_plan(direction, plan, rows, online_runner(conn, log), log,
      false, conn)
    if not new_rows then return nil, ferr, failure end
    return { ran = plan, rows = new_rows }
  end)
end

-- The starting rows of an offline run: "from:to" gives them, else the
-- database is read (read only: no lock, no table created).
function M:offline_start(target)
  local from, to = target:match("^([^:]*):([^:]+)$")
  if from then
    if from == "" then return {}, to end
    local ids, err = self.graph:resolve(from)
    if not ids then return nil, err end
    return ids, to
  end
  local rows, err = self:with_conn(false, function(conn)
    local r, e = self:read_rows(conn)
    if not r then return nil, e end
    local ok, cerr = self.graph:check_rows(r)
    if not ok then return nil, cerr end
    return r
  end)
  if not rows then
    return nil, with_detail(err, "; for SQL without a database, give the start: fsdb upgrade --sql base:head")
  end
  return rows, target
end

function M:offline(direction, target)
  local rows, to = self:offline_start(target)
  if not rows then return nil, to end
  local plan, err = self:plan(direction, rows, to)
  if not plan then return nil, err end
  local log = {}
  local exec = offline_runner(self.out, log)
  self.out(("-- fsdb %s %s --sql: the statements that take a database at %s there; nothing was run\n")
    :format(direction, target, show_rows(rows)))
  if direction == "upgrade" then exec(self:version_sql().create) end
  local new_rows, ferr, failure = self:run_plan(direction, plan, rows, exec, log, true, nil)
  if not new_rows then return nil, ferr, failure end
  return { ran = plan, rows = new_rows }
end

--- Applies revisions up to target (default "head").
-- syntax: result, err = m:upgrade(target, { sql = bool })
-- result: { ran = {ids}, rows = {version-table rows after} }
function M:upgrade(target, opts)
  return self:migrate("upgrade", target or "head", opts)
end

--- Undoes revisions down to target (default "-1").
-- syntax: result, err = m:downgrade(target, { sql = bool })
function M:downgrade(target, opts)
  return self:migrate("downgrade", target or "-1", opts)
end

--- Writes the version table without running any revision.
-- syntax: result, err = m:stamp(target, { purge = bool, sql = bool })
-- purge empties the table first and accepts rows naming unknown revisions.
function M:stamp(target, opts)
  opts = opts or {}
  local g = self.graph
  if type(target) ~= "string" or target == "" then
    return fail("stamp needs a target revision; hint: e.g. fsdb stamp head")
  end
  local vsql = self:version_sql()
  local function stamp_with(rows, exec, offline)
    -- With --purge the rows may name unknown revisions: relative targets
    -- count from the known ones.
    local known = {}
    for _, r in ipairs(rows) do
      if g:node(r) then known[#known + 1] = r end
    end
    local targets, err = g:resolve(target, known)
    if not targets then return nil, err end
    local new_rows = g:stamp_rows(rows, targets, opts.purge)
    local line = ("Running stamp_revision %s -> %s"):format(show_rows(rows), show_rows(new_rows))
    self.out(offline and ("-- " .. line .. "\n") or (line .. "\n"))
    local changes
    if opts.purge then
      changes = { { "purge" } }
      for _, r in ipairs(new_rows) do changes[#changes + 1] = { "insert", r } end
    else
      changes = graph_mod.row_changes(rows, new_rows)
    end
    exec("START TRANSACTION")
    for _, c in ipairs(changes) do
      local sql, params
      if c[1] == "purge" then sql = vsql.purge
      elseif c[1] == "update" then sql, params = vsql.update, { c[3], c[2] }
      elseif c[1] == "delete" then sql, params = vsql.delete, { c[2] }
      else sql, params = vsql.insert, { c[2] } end
      local res, werr, errno, sqlstate = exec(sql, params)
      if not res then
        exec("ROLLBACK")
        return nil, werr, errno, sqlstate
      end
    end
    local res, cerr, errno, sqlstate = exec("COMMIT")
    if not res then return nil, cerr, errno, sqlstate end
    return { rows = new_rows }
  end
  if opts.sql then
    local rows, to = {}, target
    if not opts.purge then
      rows, to = self:offline_start(target)
      if not rows then return nil, to end
    end
    target = to
    local exec = offline_runner(self.out, {})
    exec(vsql.create)
    return stamp_with(rows, exec, true)
  end
  return self:with_conn(true, function(conn)
    local res, err, errno, sqlstate = conn:execute(vsql.create)
    if not res then return nil, err, errno, sqlstate end
    local rows
    rows, err, errno, sqlstate = self:read_rows(conn)
    if not rows then return nil, err, errno, sqlstate end
    if not opts.purge then
      local ok, cerr = g:check_rows(rows)
      if not ok then
        return nil, (cerr:gsub("; hint: .*$", "; hint: `fsdb stamp --purge " .. target
          .. "` empties the version table first, whatever it names"))
      end
    end
    local log = {}
    return stamp_with(rows, online_runner(conn, log), false)
  end)
end

------------------------------------------------------------------------
-- Looking
------------------------------------------------------------------------

-- An entry for listings: id, message, flags and the display line.
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
    line = id .. g:tags(id) .. (msg ~= "" and (", " .. msg) or ""),
    history_line = g:line(id, current),
  }
end

--- The version table's rows, as entries ({} = base); second value true
--- when the version table does not exist yet.
-- syntax: entries, err = m:current()
function M:current()
  return self:with_conn(false, function(conn)
    local rows, missing, errno, sqlstate = self:read_rows(conn)
    if not rows then return nil, missing, errno, sqlstate end
    local ok, err = self.graph:check_rows(rows)
    if not ok then return nil, err end
    local t = {}
    for _, r in ipairs(rows) do t[#t + 1] = self:entry(r) end
    return t, missing and true or false
  end)
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
--- "current" reads the database).
-- syntax: entries, err = m:history(range)
function M:history(range)
  local current
  if range and range:find("current", 1, true) then
    local rows, err = self:with_conn(false, function(conn) return self:read_rows(conn) end)
    if not rows then return nil, err end
    current = rows
  end
  local ids, err = self.graph:range(range, current)
  if not ids then return nil, err end
  local cur = {}
  for _, r in ipairs(current or {}) do cur[r] = true end
  local t = {}
  for _, id in ipairs(ids) do t[#t + 1] = self:entry(id, current and cur) end
  return t
end

--- One revision in detail; entry.text is the display.
-- syntax: entry, err = m:show(rev)
function M:show(rev)
  local g = self.graph
  local current
  if rev == "current" or (rev and rev:match("^[+-]%d+$")) then
    local rows, err = self:with_conn(false, function(conn) return self:read_rows(conn) end)
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
  local e = self:entry(ids[1])
  local n = g:node(ids[1])
  local t = { "Rev: " .. e.revision .. g:tags(e.revision) }
  t[#t + 1] = "Parent: " .. (#n.downs == 0 and "<base>" or table.concat(n.downs, ", "))
  if #n.children > 1 then t[#t + 1] = "Branches into: " .. table.concat(n.children, ", ") end
  if #n.deps > 0 then t[#t + 1] = "Also depends on: " .. table.concat(n.deps, ", ") end
  if #n.labels > 0 then t[#t + 1] = "Branch names: " .. table.concat(n.labels, ", ") end
  t[#t + 1] = "Path: " .. (n.path or "(none: adopted revision, applied by another tool)")
  t[#t + 1] = ""
  for l in ((n.message or "") .. "\n"):gmatch("([^\n]*)\n") do
    t[#t + 1] = (l == "" and "" or "    " .. l)
  end
  e.text = table.concat(t, "\n"):gsub("\n+$", "") .. "\n"
  return e
end

------------------------------------------------------------------------
-- Writing revisions
------------------------------------------------------------------------

local function load_schema(self)
  local s = self.env.schema
  if s == nil then
    return fail("%s/env.lua names no schema to compare; hint: set schema = \"myapp.schema\" (a module "
      .. "returning the declared schema) — without it autogenerate would see no changes at all", self.dir)
  end
  if type(s) == "string" then
    local ok, v = pcall(require, s)
    if not ok then return fail("cannot load the schema module '%s' named in env.lua: %s", s, tostring(v)) end
    s = v
  elseif type(s) == "function" then
    local ok, v = pcall(s)
    if not ok then return fail("schema() in %s/env.lua failed: %s", self.dir, tostring(v)) end
    s = v
  end
  if s == nil then
    return fail("the schema named in %s/env.lua is nil; hint: the module or function must return the schema",
      self.dir)
  end
  return s
end

local function autogen_module()
  local ok, autogen = pcall(require, "fsdb.migrate.autogen")
  if not ok then
    return fail("autogenerate is not available: %s", tostring(autogen):match("^[^\n]*"))
  end
  return autogen
end

local function same_set(a, b)
  if #a ~= #b then return false end
  local s = {}
  for _, v in ipairs(a) do s[v] = true end
  for _, v in ipairs(b) do
    if not s[v] then return false end
  end
  return true
end

-- The down_revision(s) of a new revision based on `head`.
function M:parent_of_new(head, splice)
  local g = self.graph
  head = head or "head"
  if head == "base" then return {} end
  if head == "head" then
    local heads = g:heads()
    if #heads > 1 then
      return fail("Multiple heads are present; please specify the head revision on which the new "
        .. "revision should be based, or perform a merge.; hint: the heads are %s; `fsdb merge heads` "
        .. "joins them, --head <rev> picks one", g:describe_list(heads))
    end
    return heads
  end
  local ids, err = g:resolve(head)
  if not ids then
    -- Adopting a database another tool (Alembic) migrated: the new
    -- revision may follow a revision the version table names.
    if err:find("Can't locate", 1, true) and script.valid_id(head) then
      local rows = self:with_conn(false, function(conn) return self:read_rows(conn) end)
      if rows then
        for _, r in ipairs(rows) do
          if r == head then return { head } end
        end
      end
    end
    return nil, err
  end
  if #ids ~= 1 then
    return fail("--head must name one revision ('%s' names %d)", head, #ids)
  end
  if not g:is_head(ids[1]) and not splice then
    return fail("Revision %s is not a head revision; please specify --splice to create a new branch "
      .. "from this revision", ids[1])
  end
  return ids
end

--- Writes a new revision file.
-- syntax: result, err = m:revision{ message =, autogenerate =, head =, splice =,
--   depends_on =, branch_label =, rev_id = }
-- result: { revision =, path =, down_revision = {…}, diffs = autogenerate's
-- diffs or nil } or, when autogenerate finds no difference,
-- { no_changes = true, message = "No changes in schema detected.", diffs = {} }
-- (no file is written). diffs[i].description says what was detected,
-- diffs.notes what was deliberately left out.
function M:revision(o)
  o = o or {}
  local g = self.graph
  local downs, err = self:parent_of_new(o.head, o.splice)
  if not downs then return nil, err end
  local id = o.rev_id
  if id ~= nil then
    if not script.valid_id(id) then
      return fail("--rev-id must be 1 to 32 letters, digits or _ (got '%s')", tostring(id))
    end
    if g:node(id) then return fail("Revision %s is present already; hint: pick another --rev-id", id) end
  else
    repeat id = script.new_id() until not g:node(id)
  end
  local deps
  if o.depends_on then
    deps = {}
    for _, d in ipairs(type(o.depends_on) == "table" and o.depends_on or { o.depends_on }) do
      local n, derr = g:get(d)
      if not n then return nil, derr end
      deps[#deps + 1] = n.id
    end
  end
  local labels
  if o.branch_label then
    labels = type(o.branch_label) == "table" and o.branch_label or { o.branch_label }
    for _, l in ipairs(labels) do
      if g.labels[l] or g:node(l) then return fail("Branch name '%s' is already in use", l) end
    end
  end
  local up_body, down_body, diffs
  if o.autogenerate then
    local autogen
    autogen, err = autogen_module()
    if not autogen then return nil, err end
    local schema
    schema, err = load_schema(self)
    if not schema then return nil, err end
    local result, errno, sqlstate
    result, err, errno, sqlstate = self:with_conn(false, function(conn)
      local rows, e, en, st = self:read_rows(conn)
      if not rows then return nil, e, en, st end
      if not same_set(rows, downs) then
        return fail(_M.NOT_UP_TO_DATE .. "; hint: the database is at %s but the new revision would "
          .. "follow %s; run `fsdb upgrade` first so the comparison starts from the latest revision "
          .. "(`fsdb stamp` only if the schema already matches it)", show_rows(rows), show_rows(downs))
      end
      -- compare raises on a schema it cannot use (misuse): report it.
      local called, diffs, cerr, cerrno, csqlstate = pcall(autogen.compare, conn, schema, {
        version_table = self.version_table,
        include_object = self.env.include_object,
        drop_tables = self.env.drop_tables and true or false,
        bind = self.bind,
      })
      if not called then
        return nil, (tostring(diffs):gsub("^.-:%d+: (fsdb:)", "%1"))
      end
      if not diffs then return nil, cerr, cerrno, csqlstate end
      return { diffs = diffs }
    end)
    if not result then return nil, err, errno, sqlstate end
    diffs = result.diffs
    if #diffs == 0 then
      return { no_changes = true, message = _M.NO_CHANGES, diffs = diffs }
    end
    up_body, down_body = autogen.render(diffs)
  end
  local ok
  ok, err = script.mkdir_p(self.dir .. "/versions")
  if not ok then return nil, err end
  local down_revision = downs
  if #downs == 0 then down_revision = nil elseif #downs == 1 then down_revision = downs[1] end
  local path
  path, err = script.write_revision(self.dir, {
    revision = id, down_revision = down_revision, branch_labels = labels, depends_on = deps,
    message = o.message, up_body = up_body, down_body = down_body,
  })
  if not path then return nil, err end
  ok, err = self:reload()
  if not ok then return nil, err end
  return { revision = id, path = path, down_revision = downs, diffs = diffs }
end

--- Writes a merge revision joining several revisions (default: the heads).
-- syntax: result, err = m:merge(revs, message, { rev_id = })
function M:merge(revs, message, o)
  o = o or {}
  local g = self.graph
  if revs == nil or (type(revs) == "table" and #revs == 0) then revs = { "heads" } end
  if type(revs) == "string" then revs = { revs } end
  local set, ids = {}, {}
  for _, r in ipairs(revs) do
    local got, err = g:resolve(r)
    if not got then return nil, err end
    for _, id in ipairs(got) do
      if not set[id] then
        set[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  ids = g:sort(ids)
  if #ids < 2 then
    return fail("merge needs at least two revisions (got %s); hint: `fsdb heads` lists the heads — "
      .. "there is nothing to merge with one", graph_mod.format_ids(ids))
  end
  for _, a in ipairs(ids) do
    local anc = g:closure({ a })
    for _, b in ipairs(ids) do
      if a ~= b and anc[b] then
        return fail("Revision %s is an ancestor of %s; hint: merge only revisions on different branches", b, a)
      end
    end
  end
  local id = o.rev_id
  if id then
    if not script.valid_id(id) then return fail("--rev-id must be 1 to 32 letters, digits or _") end
    if g:node(id) then return fail("Revision %s is present already", id) end
  else
    repeat id = script.new_id() until not g:node(id)
  end
  local ok, err = script.mkdir_p(self.dir .. "/versions")
  if not ok then return nil, err end
  local path
  path, err = script.write_revision(self.dir, {
    revision = id, down_revision = ids, message = message or ("merge " .. table.concat(ids, ", ")),
    up_body = "    -- a merge point: nothing to do unless the branches conflict",
    down_body = "    -- a merge point: nothing to do",
  })
  if not path then return nil, err end
  ok, err = self:reload()
  if not ok then return nil, err end
  return { revision = id, path = path, down_revision = ids }
end

--- Closes the migration's connection.
-- syntax: m:close()
function M:close()
  if self.engine then
    self.engine:dispose()
    self.engine = nil
  end
end

------------------------------------------------------------------------
-- init
------------------------------------------------------------------------

--- Creates a migrations directory: DIR/env.lua, DIR/README, DIR/versions/.
-- syntax: ok, err = migrate.init(dir, out)
function _M.init(dir, out)
  dir = dir or _M.DEFAULT_DIR
  out = out or function(s) io.stdout:write(s) end
  if script.exists(dir) then
    local names = script.list_dir(dir)
    if names == nil or #names > 0 then
      return fail("Directory %s already exists and is not empty; hint: pick another directory with -d, "
        .. "or remove it first", dir)
    end
  end
  for _, d in ipairs({ dir, dir .. "/versions" }) do
    out(("Creating directory %s ...  "):format(d))
    local ok, err = script.mkdir_p(d)
    if not ok then out("FAILED\n") return nil, err end
    out("done\n")
  end
  for _, f in ipairs({ { "env.lua", script.ENV_TEMPLATE }, { "README", script.README_TEMPLATE } }) do
    local path = dir .. "/" .. f[1]
    out(("Generating %s ...  "):format(path))
    local ok, err = script.write_file(path, f[2])
    if not ok then out("FAILED\n") return nil, err end
    out("done\n")
  end
  out(("Please edit %s/env.lua (the database URL and the schema to compare) before proceeding.\n"):format(dir))
  return true
end

_M.graph = graph_mod
_M.script = script
return _M
