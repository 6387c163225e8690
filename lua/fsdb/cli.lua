--- fsdb.cli — the `fsdb` command line.
--
--   fsdb [--url URL] [-d DIR] <command> [options]
--
-- `main(argv, env)` runs one command and returns the exit status:
-- 0 success, 1 failure (the database, the network, the configuration),
-- 2 usage error. Nothing here calls os.exit; bin/fsdb does.
--
-- The database is found as the library finds it: --url, else DATABASE_URL,
-- else DB_USER, DB_PASSWORD, DB_HOST, DB_PORT, DB_NAME, DB_SOCKET (real
-- environment first, then ./.env). Passwords are never printed: URLs are
-- rendered with the password as ***, and every line written is scrubbed of
-- the password as a last line of defence.
--
-- Commands live in `_M.commands`, keyed by name, each
-- `{ summary = "…", usage = "…", options = { name = true, … },
--    min_args = n, max_args = n, run = function(ctx) … end }`;
-- run returns the exit status. The migration commands are thin: the work
-- is fsdb.migrate's (lua/fsdb/migrate.lua), which returns `nil, err` on
-- any failure; the command prints err on stderr as "fsdb <verb>: …".

local _M = {}

_M.VERSION = "0.1.0"

local EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

-- The order `fsdb --help` lists the commands in (others follow, sorted).
local COMMAND_ORDER = { "check", "init", "revision", "migrate", "upgrade", "downgrade", "stamp",
                        "current", "history", "heads", "branches", "merge", "show" }

-- The pool options `check` shows next to the pool status; names and
-- defaults come from fsdb.options, the one table of options.
local POOL_SHOWN = { "pool_timeout", "pool_recycle", "pool_pre_ping", "pool_reset_on_return", "pool_use_lifo" }

-- Options every command understands, and whether they take a value.
-- name → { key in ctx.opts, takes_value }
local OPTIONS = {
  ["--url"] = { "url", true },
  ["--url-file"] = { "url_file", true },
  ["-d"] = { "directory", true },
  ["--directory"] = { "directory", true },
  ["-h"] = { "help", false },
  ["--help"] = { "help", false },
  ["--version"] = { "version", false },
  -- migration commands (each command says which it accepts)
  ["-m"] = { "message", true },
  ["--message"] = { "message", true },
  ["--autogenerate"] = { "autogenerate", false },
  ["--sql"] = { "sql", false },
  ["--purge"] = { "purge", false },
  ["-r"] = { "rev_range", true },
  ["--rev-range"] = { "rev_range", true },
  ["--head"] = { "head", true },
  ["--splice"] = { "splice", false },
  ["--branch-label"] = { "branch_label", true },
  ["--depends-on"] = { "depends_on", true },
  ["--rev-id"] = { "rev_id", true },
  ["--bind"] = { "bind", true },
  ["--lock-timeout"] = { "lock_timeout", true },
  ["--schema"] = { "schema", false },
  ["--check"] = { "check", false },
  ["-v"] = { "verbose", false },
  ["--verbose"] = { "verbose", false },
  ["-i"] = { "indicate_current", false },
  ["--indicate-current"] = { "indicate_current", false },
}

-- How each option key is spelled in messages.
local OPTION_NAMES = {
  url = "--url", url_file = "--url-file", help = "--help", version = "--version", message = "-m",
  autogenerate = "--autogenerate",
  sql = "--sql", purge = "--purge", rev_range = "-r", head = "--head", splice = "--splice",
  branch_label = "--branch-label", depends_on = "--depends-on", rev_id = "--rev-id", bind = "--bind",
  lock_timeout = "--lock-timeout", schema = "--schema", check = "--check", verbose = "-v",
  indicate_current = "-i",
}

_M.commands = {}

------------------------------------------------------------------------
-- Output
------------------------------------------------------------------------

local function plain(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function percent_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

-- Wraps a writer so that no registered secret reaches it. Secrets shorter
-- than 4 bytes are not scrubbed (masking every "ab" would garble output);
-- the real protection is that URLs are only ever rendered redacted.
local function scrubbing_writer(write, secrets)
  return function(s)
    s = tostring(s)
    for _, secret in ipairs(secrets) do
      s = s:gsub(plain(secret), "***")
    end
    write(s)
  end
end

local function add_secret(ctx, secret)
  if type(secret) == "string" and #secret >= 4 then
    local list = ctx.secrets
    for _, v in ipairs({ secret, percent_encode(secret) }) do
      local known = false
      for _, s in ipairs(list) do
        if s == v then known = true end
      end
      if not known then list[#list + 1] = v end
    end
    -- Longest first, so an encoded form is not half-masked by a shorter one.
    table.sort(list, function(a, b) return #a > #b end)
  end
end

-- The password exactly as written in a URL (encoded or not) and decoded;
-- works on text that does not parse. Where it is: as fsdb.url.redact
-- sees it (from the first ':' to the last '@'; or, with no '@', the
-- non-numeric "port" of a host-less "user:secret/db").
local function url_secrets(ctx, url)
  if type(url) ~= "string" then return end
  local rest = url:match("^%s*[%a][%w+.-]*:/+(.*)$")
  if not rest then return end
  local raw = rest:match("^[^:]*:(.*)@")
  if not raw and not rest:find("@", 1, true) then
    raw = rest:match("^[^/?:]*:([^/?]*)")
    if raw and raw:match("^%d*$") then raw = nil end
  end
  if raw then
    add_secret(ctx, raw)
    add_secret(ctx, (raw:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)))
  end
end

local function line(write, ...)
  write(table.concat({ ... }) .. "\n")
end

local function field(write, name, value)
  line(write, ("%-13s %s"):format(name .. ":", tostring(value)))
end

------------------------------------------------------------------------
-- Usage
------------------------------------------------------------------------

function _M.usage()
  local names, listed = {}, {}
  for _, name in ipairs(COMMAND_ORDER) do
    if _M.commands[name] then
      names[#names + 1] = name
      listed[name] = true
    end
  end
  local others = {}
  for name in pairs(_M.commands) do
    if not listed[name] then others[#others + 1] = name end
  end
  table.sort(others)
  for _, name in ipairs(others) do names[#names + 1] = name end
  local rows = {}
  for _, name in ipairs(names) do
    rows[#rows + 1] = ("  %-12s %s"):format(name, _M.commands[name].summary)
  end
  local text = {
    "usage: fsdb [--url URL] [-d DIR] <command> [options]",
    "",
    "Commands:",
    table.concat(rows, "\n"),
    ("  %-12s %s"):format("help [CMD]", "show this text, or the help of one command"),
  }
  for _, l in ipairs({
    "",
    "Targets (upgrade, downgrade, stamp, show): head, heads, base, a full or",
    "partial (4+ characters) revision id, a branch label, label@head, +N / -N",
    "(relative to the database), rev+N / rev-N.",
    "",
    "Options:",
    "  --url URL      the database, mysql://user:pass@host:port/db?opt=val",
    "                 (default: DATABASE_URL, else DB_USER, DB_PASSWORD, DB_HOST,",
    "                 DB_PORT, DB_NAME, DB_SOCKET; the environment first, then ./.env);",
    "                 `--url -` reads it from standard input",
    "  --url-file F   the database URL from the first line of file F",
    "  -d DIR         the migrations directory (default ./migrations)",
    "  -h, --help     show help (`fsdb CMD --help` for the options of one command)",
    "  --version      show the version of fsdb, Lua and Connector/C",
    "",
    "Exit status: 0 success, 1 failure, 2 usage error.",
  }) do
    text[#text + 1] = l
  end
  return table.concat(text, "\n") .. "\n"
end

local function usage_error(ctx, msg)
  ctx.err("fsdb: " .. require("fsdb.url").redact(msg) .. "\n")
  ctx.err(_M.usage())
  return EXIT_USAGE
end

------------------------------------------------------------------------
-- check
------------------------------------------------------------------------

local function where_from(ctx)
  if ctx.opts.url then return ctx.url_source or "--url" end
  local getenv = ctx.getenv
  local v = getenv("DATABASE_URL")
  if v and v ~= "" then return "DATABASE_URL" end
  local config = require("fsdb.config")
  local file = config.read_dotenv(ctx.dotenv) or {}
  if v == nil and file.DATABASE_URL and file.DATABASE_URL ~= "" then
    return "DATABASE_URL in .env"
  end
  for _, name in ipairs({ "DB_USER", "DB_NAME", "DB_SOCKET" }) do
    if getenv(name) ~= nil then return "DB_* variables" end
  end
  return "DB_* variables in .env"
end

local function failed(ctx, shown_url, err, errno, sqlstate, hint)
  local w = ctx.err
  line(w, "fsdb check: FAILED")
  if shown_url then field(w, "url", shown_url) end
  field(w, "error", err or "unknown error")
  field(w, "errno", errno or "-")
  field(w, "sqlstate", sqlstate or "-")
  if hint then field(w, "hint", hint) end
  return EXIT_FAILURE
end

-- What the CLI knows beyond the core's hint (where the URL came from).
local function extra_hint(errno, _parsed, source)
  if errno == 1044 then
    return "the database may not exist, or the user lacks privileges on it (SHOW GRANTS)"
  elseif errno == 2002 or errno == 2003 or errno == 2005 then
    return "the URL came from " .. source .. "; is that the server you meant?"
  end
end

local function value(v, null)
  if v == nil or v == null then return "(none)" end
  return tostring(v)
end

local function pool_line(engine)
  local st = engine:status()
  local parts = { ("size %s, max_overflow %s"):format(tostring(st.size), tostring(st.max_overflow)) }
  local optlist = require("fsdb.options")
  local used = engine.options or {}
  local shown = {}
  for _, name in ipairs(POOL_SHOWN) do
    local v = used[name]
    if v == nil then v = optlist.default(name) end
    parts[#parts + 1] = ("%s %s"):format(name, tostring(v))
    shown[name] = true
  end
  local extra = {}
  for k, v in pairs(used) do
    -- other options only when set to something else than their default
    if k ~= "pool_size" and k ~= "max_overflow" and not shown[k] and type(v) ~= "function"
        and type(v) ~= "table" and v ~= optlist.default(k) then
      extra[#extra + 1] = ("%s %s"):format(k, tostring(v))
    end
  end
  table.sort(extra)
  for _, e in ipairs(extra) do parts[#parts + 1] = e end
  return table.concat(parts, ", ")
end

local run_drift -- the drift check (check --schema, migrate --check), below

local function run_check(ctx)
  if ctx.opts.schema then return run_drift(ctx, "check") end
  local ok, fsdb = pcall(require, "fsdb")
  if not ok then
    return failed(ctx, nil, "fsdb: cannot load the fsdb library: " .. tostring(fsdb))
  end

  local url, source = ctx.opts.url, nil
  if not url and ctx.opts.bind then
    url, source = fsdb.config.bind_url(ctx.opts.bind, ctx.getenv, ctx.dotenv)
    if not url then return failed(ctx, nil, source) end
  end
  if not url then
    local err
    url, err = fsdb.config.url_from_env(ctx.getenv, ctx.dotenv)
    if not url then
      return failed(ctx, nil, err)
    end
  end
  url_secrets(ctx, url)
  source = source or where_from(ctx)

  local parsed, perr, perrno, pstate = fsdb.url.parse(url)
  if not parsed then
    return failed(ctx, fsdb.url.redact(url) .. " (from " .. source .. ")", perr, perrno, pstate)
  end
  add_secret(ctx, parsed.password)

  local made, engine = pcall(fsdb.engine.new, url, ctx.engine_options)
  if not made then
    return failed(ctx, fsdb.url.redact(url) .. " (from " .. source .. ")", tostring(engine))
  end
  local shown = engine:url() .. " (from " .. source .. ")"

  local conn, err, errno, sqlstate = engine:connect()
  if not conn then
    engine:dispose()
    return failed(ctx, shown, err, errno, sqlstate, extra_hint(errno, parsed, source))
  end

  local info = conn:info()
  local res
  res, err, errno, sqlstate = conn:execute(
    "SELECT CURRENT_USER() AS user, DATABASE() AS db, @@character_set_connection AS charset, "
    .. "@@collation_connection AS collation, @@session.wait_timeout AS wait_timeout")
  local tls = "off"
  if res and info.tls_cipher then
    tls = info.tls_cipher
    local st = conn:execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
    local row = st and st[1]
    if row and row.Value and row.Value ~= "" then
      tls = row.Value .. " " .. tls
    end
  end
  conn:close()
  if not res then
    engine:dispose()
    return failed(ctx, shown, err, errno, sqlstate)
  end
  local row = res[1]
  local w = ctx.out
  field(w, "url", shown)
  field(w, "server", ("%s (%s)"):format(value(info.server_version), value(info.host_info)))
  field(w, "client", ("fsdb %s, Connector/C %s, %s"):format(
    tostring(fsdb._VERSION), tostring(fsdb.client_version), jit and jit.version or _VERSION))
  field(w, "user", value(row.user, fsdb.null))
  field(w, "database", value(row.db, fsdb.null))
  field(w, "charset", ("%s (collation %s)"):format(value(row.charset, fsdb.null), value(row.collation, fsdb.null)))
  field(w, "tls", tls)
  field(w, "wait_timeout", value(row.wait_timeout, fsdb.null) .. " s")
  field(w, "pool", pool_line(engine))
  engine:dispose()
  line(w, "OK")
  return EXIT_OK
end

_M.commands.check = {
  summary = "test the connection; with --schema: the drift check for CI",
  usage = "usage: fsdb check [--url URL | --bind NAME]\n"
    .. "       fsdb check --schema [-d DIR] [--url URL] [--bind NAME]\n\n"
    .. "Connects as the library would and prints the URL (password as ***), the\n"
    .. "server version, CURRENT_USER(), DATABASE(), the connection's character set\n"
    .. "and collation, TLS, the server's wait_timeout and the pool settings, then OK.\n"
    .. "On failure prints FAILED with the error, errno and sqlstate, and exits 1.\n"
    .. "--bind NAME checks a bind's database (URL from DATABASE_URL_<NAME>).\n\n"
    .. "--schema: the drift check (Alembic's `alembic check`, Flask-Migrate's\n"
    .. "`flask db check`; also spelled `fsdb migrate --check`). Compares the schema\n"
    .. "named in DIR/env.lua with the database, which must be at the head(s), and\n"
    .. "writes nothing. Exit 0: in sync (\"No new upgrade operations detected.\");\n"
    .. "exit 1: `fsdb migrate` would write a revision — each operation is listed;\n"
    .. "exit 2: it could not compare (usage, configuration, connection, a database\n"
    .. "that is not up to date).\n",
  options = { url = true, schema = true, bind = true },
  run = run_check,
}

------------------------------------------------------------------------
-- Migration commands (the work is fsdb.migrate's)
------------------------------------------------------------------------

-- Prints a fsdb.migrate error as "fsdb <verb>: …" (the library's
-- "fsdb: " prefix gives way to the verb).
local function migrate_failed(ctx, verb, err)
  local msg = tostring(err or "unknown error"):gsub("^fsdb: ", "")
  ctx.err(("fsdb %s: %s\n"):format(verb, msg))
  return EXIT_FAILURE
end

local function dir_of(ctx)
  return ctx.opts.directory or "migrations"
end

-- Opens the migrations directory with the command's options; returns m or
-- nil after printing the error.
local function open_migrations(ctx, verb)
  local migrate = require("fsdb.migrate")
  local m, err = migrate.open{
    dir = dir_of(ctx),
    url = ctx.opts.url,
    bind = ctx.opts.bind,
    lock_timeout = ctx.opts.lock_timeout and tonumber(ctx.opts.lock_timeout),
    out = ctx.out,
    getenv = ctx.getenv,
    dotenv = ctx.dotenv,
    engine_options = ctx.engine_options,
    on_url = function(url)
      -- Whatever the source (env.lua, DATABASE_URL_<BIND>, .env), its
      -- password is scrubbed from everything written from now on.
      url_secrets(ctx, url)
      local ok, parsed = pcall(require("fsdb.url").parse, url)
      if ok and type(parsed) == "table" then add_secret(ctx, parsed.password) end
    end,
  }
  if not m then
    migrate_failed(ctx, verb, err)
    return nil
  end
  return m
end

-- Runs fn(m) on an opened migrations directory and closes it.
local function with_migrations(verb, fn)
  return function(ctx)
    local m = open_migrations(ctx, verb)
    if not m then return EXIT_FAILURE end
    local ok, status = pcall(fn, ctx, m)
    m:close()
    if not ok then error(status, 0) end
    return status
  end
end

local COMMON = "\nCommon options: --url URL (the database), -d DIR (the migrations directory,\n"
  .. "default ./migrations), --help.\n"

local LOCKED = "Holds the server lock GET_LOCK('fsdb_migrate:<database>') while it works,\n"
  .. "so two migrators never interleave; another one waits up to lock_timeout\n"
  .. "seconds (env.lua, default 60; --lock-timeout N), then fails naming the lock.\n"

-- One line per entry, or with -v (key "text") Alembic's verbose blocks,
-- a blank line between them.
local function print_lines(ctx, entries, key)
  for i, e in ipairs(entries) do
    if key == "text" then
      if i > 1 then ctx.out("\n") end
      ctx.out(e.text)
    else
      line(ctx.out, e[key or "line"])
    end
  end
end

local VERBOSE = "  -v, --verbose       Alembic's verbose form: parents, path and message\n"

local function revision_result(ctx, verb, res, err)
  if not res then return migrate_failed(ctx, verb, err) end
  -- What autogenerate saw, in Alembic's words.
  local diffs = res.diffs or {}
  for _, d in ipairs(diffs) do
    if d.description then line(ctx.out, "Detected " .. tostring(d.description)) end
  end
  for _, n in ipairs(diffs.notes or {}) do
    line(ctx.out, "Not proposed: " .. tostring(n))
  end
  if res.no_changes then
    line(ctx.out, res.message)
    return EXIT_OK
  end
  line(ctx.out, ("Generating %s ...  done"):format(res.path))
  return EXIT_OK
end

-- The drift check: exit 0 in sync, 1 with the operations `fsdb migrate`
-- would write, 2 when it could not compare.
function run_drift(ctx, verb)
  local m = open_migrations(ctx, verb)
  if not m then return EXIT_USAGE end
  local ok, res, err = pcall(m.check_schema, m)
  m:close()
  if not ok then error(res, 0) end
  if not res then
    migrate_failed(ctx, verb, err)
    return EXIT_USAGE
  end
  for _, n in ipairs(res.diffs.notes or {}) do
    line(ctx.out, "Not proposed: " .. tostring(n))
  end
  if #res.diffs == 0 then
    line(ctx.out, "No new upgrade operations detected.")
    return EXIT_OK
  end
  for _, d in ipairs(res.diffs) do
    line(ctx.out, "Detected " .. tostring(d.description))
  end
  line(ctx.out, "New upgrade operations detected:")
  for l in res.up:gmatch("[^\n]+") do
    if not l:match("^%s*%-%-") then line(ctx.out, l) end
  end
  ctx.err(("fsdb %s: FAILED: %d new upgrade operation%s detected; hint: `fsdb migrate -m \"…\"` writes "
    .. "them as a revision, `fsdb upgrade` applies it\n"):format(verb, #res.diffs, #res.diffs == 1 and "" or "s"))
  return EXIT_FAILURE
end

_M.commands.init = {
  summary = "create a migrations directory (env.lua, versions/)",
  usage = "usage: fsdb init [-d DIR]\n\n"
    .. "Creates DIR (default ./migrations) with env.lua (how to connect, the version\n"
    .. "table, the schema autogenerate compares — every key commented), README and\n"
    .. "versions/. Fails when DIR exists and is not empty.\n" .. COMMON,
  options = { url = true },
  run = function(ctx)
    local ok, err = require("fsdb.migrate").init(dir_of(ctx), ctx.out)
    if not ok then return migrate_failed(ctx, "init", err) end
    return EXIT_OK
  end,
}

local REVISION_OPTIONS = {
  "  -m, --message MSG     the revision's message (also its file name's slug)\n",
  "  --autogenerate        fill up()/down() from the differences between the\n"
    .. "                        schema named in env.lua and the database\n",
  "  --head REV            base the revision on REV (default: the head; 'base'\n"
    .. "                        starts a new branch from nothing; an Alembic revision\n"
    .. "                        id the version table names adopts that database)\n",
  "  --splice              allow --head to name a revision that is not a head\n",
  "  --branch-label NAME   label the new branch (targets NAME@head)\n",
  "  --depends-on REV      a revision this one needs, on another branch\n",
  "  --rev-id ID           use ID instead of 12 random hex characters\n",
  "  --bind NAME           the bind to compare against (overrides env.lua's bind)\n",
}

local function run_revision(verb, autogenerate)
  local write = with_migrations(verb, function(ctx, m)
    local o = ctx.opts
    local res, err = m:revision{
      message = o.message, autogenerate = autogenerate or o.autogenerate, head = o.head,
      splice = o.splice, branch_label = o.branch_label, depends_on = o.depends_on, rev_id = o.rev_id,
    }
    return revision_result(ctx, verb, res, err)
  end)
  return function(ctx)
    if ctx.opts.check then return run_drift(ctx, verb) end
    return write(ctx)
  end
end

_M.commands.revision = {
  summary = "create a new revision file [-m MSG] [--autogenerate]",
  usage = "usage: fsdb revision [-m MSG] [--autogenerate] [--head REV] [--splice]\n"
    .. "                     [--branch-label NAME] [--depends-on REV] [--rev-id ID]\n\n"
    .. "Writes DIR/versions/<rev>_<slug>.lua on top of the current head. Without\n"
    .. "--autogenerate it needs no database. With it, the database must be at the head\n"
    .. "(else \"Target database is not up to date.\"); when the schema and the database\n"
    .. "agree it prints \"No changes in schema detected.\", writes no file and exits 0.\n\n"
    .. "Options:\n" .. table.concat(REVISION_OPTIONS) .. COMMON,
  options = { url = true, message = true, autogenerate = true, head = true, splice = true,
              branch_label = true, depends_on = true, rev_id = true, bind = true },
  run = run_revision("revision", false),
}

_M.commands.migrate = {
  summary = "revision --autogenerate (schema vs. database) [-m MSG]",
  usage = "usage: fsdb migrate [-m MSG] [--head REV] [--rev-id ID]\n\n"
    .. "Flask-Migrate's `migrate`: the same as `fsdb revision --autogenerate`. Compares\n"
    .. "the schema named in env.lua (schema = \"module.name\") with the database and\n"
    .. "writes the differences as a revision. \"No changes in schema detected.\" (exit 0,\n"
    .. "no file) when there are none; \"Target database is not up to date.\" when\n"
    .. "revisions are pending (run `fsdb upgrade` first). It exits 0 whether or not it\n"
    .. "wrote a file, as Flask-Migrate's does; a script that must know uses --check.\n\n"
    .. "--check: write nothing; exit 1 listing the operations a revision would hold,\n"
    .. "0 when there are none, 2 when it could not compare (= fsdb check --schema).\n\n"
    .. "Options:\n" .. REVISION_OPTIONS[1] .. REVISION_OPTIONS[3] .. REVISION_OPTIONS[4]
    .. REVISION_OPTIONS[5] .. REVISION_OPTIONS[6] .. REVISION_OPTIONS[7] .. REVISION_OPTIONS[8] .. COMMON,
  options = { url = true, message = true, head = true, splice = true, branch_label = true,
              depends_on = true, rev_id = true, bind = true, check = true },
  run = run_revision("migrate", true),
}

local function run_migrate(verb, default)
  return with_migrations(verb, function(ctx, m)
    local res, err = m[verb](m, ctx.words[2] or default, { sql = ctx.opts.sql })
    if not res then return migrate_failed(ctx, verb, err) end
    return EXIT_OK
  end)
end

_M.commands.upgrade = {
  summary = "apply revisions up to a target (default head) [--sql]",
  usage = "usage: fsdb upgrade [TARGET] [--sql] [--lock-timeout N]\n\n"
    .. "Applies every revision between the database and TARGET (default head), each\n"
    .. "in its own transaction together with its version-table write, printing\n"
    .. "\"Running upgrade <from> -> <to>, <message>\" for each. MySQL commits DDL\n"
    .. "implicitly: when a revision fails, the command names it, the operation and\n"
    .. "its SQL, what the version table says, and which statements of the revision\n"
    .. "had already run; the revisions before it stay applied. Exit 1 on failure.\n\n"
    .. LOCKED .. "\n"
    .. "TARGET: head, heads, a revision (full or 4+ characters), LABEL@head, +N.\n\n"
    .. "Options:\n"
    .. "  --sql               print the statements (DDL, version-table writes) instead\n"
    .. "                      of running them; starts from what the database says, or\n"
    .. "                      from FROM in FROM:TARGET (base:head) without a database\n"
    .. "  --lock-timeout N    seconds to wait for the lock (default: env.lua, else 60)\n"
    .. "  --bind NAME         migrate this bind (URL from DATABASE_URL_<NAME>)\n" .. COMMON,
  options = { url = true, sql = true, lock_timeout = true, bind = true },
  max_args = 1,
  run = run_migrate("upgrade", "head"),
}

_M.commands.downgrade = {
  summary = "undo revisions down to a target (default -1) [--sql]",
  usage = "usage: fsdb downgrade [TARGET] [--sql] [--lock-timeout N]\n\n"
    .. "Undoes revisions (their down()) newest first until the database is at TARGET\n"
    .. "(default -1: the last revision). `downgrade base` undoes everything. Only\n"
    .. "descendants of TARGET are undone; other branches stay. Progress and failures\n"
    .. "as for upgrade.\n\n"
    .. LOCKED .. "\n"
    .. "TARGET: -N, base, a revision (full or 4+ characters), LABEL, rev-N.\n\n"
    .. "Options:\n"
    .. "  --sql               print the statements instead of running them (FROM:TARGET\n"
    .. "                      gives the start without a database)\n"
    .. "  --lock-timeout N    seconds to wait for the lock\n"
    .. "  --bind NAME         migrate this bind\n" .. COMMON,
  options = { url = true, sql = true, lock_timeout = true, bind = true },
  max_args = 1,
  run = run_migrate("downgrade", "-1"),
}

_M.commands.stamp = {
  summary = "write the version table without running migrations [--purge]",
  usage = "usage: fsdb stamp [--purge] [--sql] TARGET\n\n"
    .. "Writes the version table as if the database had been migrated to TARGET (head,\n"
    .. "heads, base, a revision) without running anything. Rows on branches unrelated\n"
    .. "to TARGET are kept.\n\n"
    .. LOCKED .. "\n"
    .. "Options:\n"
    .. "  --purge             empty the version table first; works when it names\n"
    .. "                      revisions that no longer exist (\"Can't locate …\")\n"
    .. "  --sql               print the statements instead of running them\n"
    .. "  --lock-timeout N    seconds to wait for the lock\n"
    .. "  --bind NAME         stamp this bind\n" .. COMMON,
  options = { url = true, purge = true, sql = true, lock_timeout = true, bind = true },
  min_args = 1, max_args = 1, args_name = "a target revision (e.g. fsdb stamp head)",
  run = with_migrations("stamp", function(ctx, m)
    local res, err = m:stamp(ctx.words[2], { purge = ctx.opts.purge, sql = ctx.opts.sql })
    if not res then return migrate_failed(ctx, "stamp", err) end
    return EXIT_OK
  end),
}

_M.commands.options = {
  summary = "list the engine, pool and URL options with their defaults",
  usage = "usage: fsdb options\n\n"
    .. "Prints every engine and pool option (fsdb.engine.new's options, engine_options\n"
    .. "in fsdb.new and env.lua) and every URL option, with its default and what it\n"
    .. "does: the table fsdb itself validates and fills in from (fsdb.options).\n",
  options = {},
  run = function(ctx)
    ctx.out(require("fsdb.options").describe())
    return EXIT_OK
  end,
}

_M.commands.current = {
  summary = "show the revision(s) the database is at",
  usage = "usage: fsdb current\n\n"
    .. "Prints each row of the version table as \"<rev> (head), <message>\", or\n"
    .. "\"<base> …\" when nothing is applied. Fails with \"Can't locate revision\n"
    .. "identified by '…'\" when the table names a revision without a file.\n\n"
    .. "Options:\n  --bind NAME         the bind to look at\n" .. VERBOSE .. COMMON,
  options = { url = true, bind = true, verbose = true },
  run = with_migrations("current", function(ctx, m)
    local entries, missing = m:current()
    if not entries then return migrate_failed(ctx, "current", missing) end
    if #entries == 0 then
      if missing then
        line(ctx.out, ("<base> (no revision applied: the version table %s does not exist yet)")
          :format(m.version_table))
      else
        line(ctx.out, "<base> (no revision applied)")
      end
    end
    print_lines(ctx, entries, ctx.opts.verbose and "text")
    return EXIT_OK
  end),
}

_M.commands.history = {
  summary = "list the revisions, newest first [-r START:END]",
  usage = "usage: fsdb history [-r START:END] [-v] [-i]\n\n"
    .. "Lists revisions newest first as \"<down> -> <rev> (head), <message>\".\n"
    .. "-r limits to a range, both ends included: base:head, ae10:, :current (current\n"
    .. "reads the database and marks its rows).\n\n"
    .. "Options:\n" .. VERBOSE
    .. "  -i, --indicate-current  read the database and mark its revisions (current)\n" .. COMMON,
  options = { url = true, rev_range = true, bind = true, verbose = true, indicate_current = true },
  run = with_migrations("history", function(ctx, m)
    local entries, err = m:history(ctx.opts.rev_range, { indicate_current = ctx.opts.indicate_current })
    if not entries then return migrate_failed(ctx, "history", err) end
    print_lines(ctx, entries, ctx.opts.verbose and "text" or "history_line")
    return EXIT_OK
  end),
}

_M.commands.heads = {
  summary = "list the head revisions",
  usage = "usage: fsdb heads [-v]\n\nLists the revisions nothing builds on. More than one head means\n"
    .. "branches: `fsdb merge` joins them, `fsdb upgrade heads` applies them all.\n\n"
    .. "Options:\n" .. VERBOSE .. COMMON,
  options = { url = true, verbose = true },
  run = with_migrations("heads", function(ctx, m)
    print_lines(ctx, m:heads(), ctx.opts.verbose and "text")
    return EXIT_OK
  end),
}

_M.commands.branches = {
  summary = "list the branch points",
  usage = "usage: fsdb branches [-v]\n\nLists the revisions more than one revision builds on, each followed\n"
    .. "by those revisions.\n\nOptions:\n" .. VERBOSE .. COMMON,
  options = { url = true, verbose = true },
  run = with_migrations("branches", function(ctx, m)
    for _, e in ipairs(m:branches()) do
      if ctx.opts.verbose then ctx.out(e.text) else line(ctx.out, e.line) end
      for _, c in ipairs(e.children) do line(ctx.out, "  -> " .. c.line) end
    end
    return EXIT_OK
  end),
}

_M.commands.merge = {
  summary = "create a revision that joins several heads [-m MSG] [REV...]",
  usage = "usage: fsdb merge [-m MSG] [--rev-id ID] [REV ...]\n\n"
    .. "Writes a merge revision whose down_revision lists the given revisions (default:\n"
    .. "heads, i.e. all of them), leaving one head. Its up()/down() are empty. Needs no\n"
    .. "database.\n" .. COMMON,
  options = { url = true, message = true, rev_id = true },
  max_args = math.huge,
  run = with_migrations("merge", function(ctx, m)
    local revs = {}
    for i = 2, #ctx.words do revs[#revs + 1] = ctx.words[i] end
    local res, err = m:merge(revs, ctx.opts.message, { rev_id = ctx.opts.rev_id })
    return revision_result(ctx, "merge", res, err)
  end),
}

_M.commands.show = {
  summary = "show one revision",
  usage = "usage: fsdb show REV\n\nShows a revision (full or partial id, label, head, current):\n"
    .. "its parents, branches, labels, file and message.\n" .. COMMON,
  options = { url = true, bind = true },
  min_args = 1, max_args = 1, args_name = "a revision (e.g. fsdb show head)",
  run = with_migrations("show", function(ctx, m)
    local e, err = m:show(ctx.words[2])
    if not e then return migrate_failed(ctx, "show", err) end
    ctx.out(e.text)
    return EXIT_OK
  end),
}

------------------------------------------------------------------------
-- main
------------------------------------------------------------------------

local function version_text()
  local ok, core = pcall(require, "fsdb.core")
  local runtime = jit and jit.version or _VERSION
  if ok then
    return ("fsdb %s (%s, Connector/C %s)\n"):format(tostring(core.version), runtime,
      tostring(core.client_version))
  end
  return ("fsdb %s (%s; the C core is not loadable: %s)\n"):format(_M.VERSION, runtime, tostring(core))
end

-- Splits argv into options and positional words. Returns opts, words or
-- nil, message.
local function parse(argv)
  local opts, words = {}, {}
  local i, n = 1, #argv
  while i <= n do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, n do words[#words + 1] = argv[j] end
      break
    elseif a:match("^[+-]%d+$") then
      words[#words + 1] = a -- a relative target (downgrade -1), not an option
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local spec = OPTIONS[name]
      if not spec then
        return nil, ("unknown option '%s'"):format(name)
      end
      if spec[2] then
        local v = inline
        if v == nil then
          i = i + 1
          v = argv[i]
          if v == nil then
            return nil, ("option '%s' needs a value"):format(name)
          end
        end
        opts[spec[1]] = v
      elseif inline ~= nil then
        return nil, ("option '%s' takes no value"):format(name)
      else
        opts[spec[1]] = true
      end
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  return opts, words
end

-- `--url -` and `--url-file FILE`: the URL from the first line of standard
-- input or of FILE (surrounding blanks and a CR dropped), put in opts.url.
-- Returns true (and, when it read one, where the URL came from), or nil and
-- a message.
local function url_from_input(opts, env)
  local text
  if opts.url_file then
    if opts.url then
      return nil, "give --url or --url-file, not both"
    end
    local f, err = io.open(opts.url_file, "rb")
    if not f then
      return nil, ("cannot read --url-file: %s"):format(err)
    end
    text = f:read("*l")
    f:close()
  elseif opts.url == "-" then
    local read = env.read_stdin or function() return io.stdin:read("*l") end
    text = read()
  else
    return true
  end
  text = text and text:match("^%s*(.-)%s*$")
  if text == nil or text == "" then
    return nil, opts.url_file and "--url-file: the first line holds no URL"
      or "--url -: standard input holds no URL"
  end
  local source = opts.url_file and "--url-file" or "--url -"
  opts.url, opts.url_file = text, nil
  return true, source
end

--- Runs the command line.
-- syntax: status = cli.main(argv, env)
-- argv is the script's `arg` (argv[1] … argv[#argv]). env is optional:
-- out, err (functions taking a string; default io.stdout / io.stderr),
-- getenv (default os.getenv), dotenv (path of the .env file, default
-- ./.env), engine_options (a table for fsdb.engine.new).
function _M.main(argv, env)
  argv = argv or {}
  env = env or {}
  local ctx = {
    secrets = {},
    getenv = env.getenv or os.getenv,
    dotenv = env.dotenv,
    engine_options = env.engine_options,
  }
  -- Flushed: a migration's progress must show while it runs, and in order
  -- with what goes to stderr.
  local out = env.out or function(s) io.stdout:write(s) io.stdout:flush() end
  local err = env.err or function(s) io.stderr:write(s) end
  ctx.out = scrubbing_writer(out, ctx.secrets)
  ctx.err = scrubbing_writer(err, ctx.secrets)

  local args = {}
  for i = 1, #argv do args[i] = tostring(argv[i]) end
  -- The secret of any URL on the command line is known before anything
  -- can fail, so not even a usage error can echo it.
  for i = 1, #args do
    url_secrets(ctx, args[i]:match("[%a][%w+.-]*://.*"))
  end

  local opts, words = parse(args)
  if not opts then
    return usage_error(ctx, words)
  end
  local got, why = url_from_input(opts, env)
  if not got then
    return usage_error(ctx, why)
  end
  ctx.url_source = why
  url_secrets(ctx, opts.url)
  ctx.opts = opts

  if opts.version then
    ctx.out(version_text())
    return EXIT_OK
  end

  local verb = words[1]
  if verb == nil then
    if opts.help then
      ctx.out(_M.usage())
      return EXIT_OK
    end
    return usage_error(ctx, "no command given")
  end

  if verb == "help" then
    local topic = words[2]
    if topic == nil then
      ctx.out(_M.usage())
      return EXIT_OK
    end
    local cmd = _M.commands[topic]
    if cmd then
      ctx.out(cmd.usage or ("usage: fsdb " .. topic .. "\n"))
      return EXIT_OK
    end
    return usage_error(ctx, ("unknown command '%s'"):format(topic))
  end

  local cmd = _M.commands[verb]
  if not cmd then
    return usage_error(ctx, ("unknown command '%s'"):format(verb))
  end

  if opts.help then
    ctx.out(cmd.usage or ("usage: fsdb " .. verb .. "\n"))
    return EXIT_OK
  end
  for key in pairs(opts) do
    if key ~= "directory" and not (cmd.options and cmd.options[key]) then
      return usage_error(ctx, ("option '%s' is not valid for '%s'"):format(OPTION_NAMES[key] or key, verb))
    end
  end
  local nargs = #words - 1
  if not cmd.max_args and nargs > 0 then
    return usage_error(ctx, ("'%s' takes no arguments (got '%s')"):format(verb, words[2]))
  end
  if cmd.max_args and nargs > cmd.max_args then
    return usage_error(ctx, ("'%s' takes at most %d argument%s (got '%s')"):format(verb, cmd.max_args,
      cmd.max_args == 1 and "" or "s", table.concat(words, " ", 2)))
  end
  if cmd.min_args and nargs < cmd.min_args then
    return usage_error(ctx, ("'%s' needs %s"):format(verb, cmd.args_name or "an argument"))
  end
  if opts.lock_timeout and not tonumber(opts.lock_timeout) then
    return usage_error(ctx, ("--lock-timeout needs a number of seconds (got '%s')"):format(opts.lock_timeout))
  end
  ctx.words = words

  local ok, status = pcall(cmd.run, ctx)
  if not ok then
    ctx.err(("fsdb %s: error: %s\n"):format(verb, tostring(status)))
    return EXIT_FAILURE
  end
  return status
end

------------------------------------------------------------------------
-- Start-up: a --url never stays on the command line
------------------------------------------------------------------------

-- Where the re-executed process finds the URL that was on its command line.
_M.URL_VARIABLE = "FSDB_CLI_URL"

-- argv without its --url words (before a "--"), and the URL they gave (the
-- last one, as parse keeps); `--url -` is not a secret and stays.
local function take_url(argv)
  local rest, url = {}, nil
  local i, n = 1, #argv
  while i <= n do
    local a = tostring(argv[i])
    if a == "--" then
      for j = i, n do rest[#rest + 1] = argv[j] end
      break
    end
    local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
    local spec = a:sub(1, 1) == "-" and OPTIONS[name or a]
    local given = inline
    if spec and spec[2] and inline == nil then given = argv[i + 1] end
    if spec and spec[1] == "url" and given ~= nil and given ~= "-" then
      url = given
    else
      rest[#rest + 1] = a
      if spec and spec[2] and inline == nil and given ~= nil then rest[#rest + 1] = given end
    end
    if spec and spec[2] and inline == nil then i = i + 1 end
    i = i + 1
  end
  return rest, url
end

--- What bin/fsdb runs: main(argv) with the process's command line free of
-- the URL. /proc/PID/cmdline (what `ps` shows) is readable by every local
-- user and Lua cannot rewrite it, so a --url on it makes the process
-- re-execute itself at once, without those words and with the URL in the
-- environment variable URL_VARIABLE (readable only by the same user and
-- root); the new process takes it out of the environment (overwritten and
-- unset, so /proc/PID/environ and children do not see it) and runs as if it
-- had been given --url. argv is the script's `arg` (with the interpreter
-- and its options at negative indices).
-- syntax: status = cli.launch(argv)
function _M.launch(argv)
  local core = require("fsdb.core")
  local rest, url = take_url(argv)
  if url ~= nil then
    local full, first = {}, 0
    while argv[first - 1] ~= nil do first = first - 1 end
    for i = first, 0 do full[#full + 1] = tostring(argv[i]) end
    for _, a in ipairs(rest) do full[#full + 1] = a end
    local _, err = core.exec_with_env(full, _M.URL_VARIABLE, url)
    -- Still here: the exec failed; run as we are.
    io.stderr:write(("fsdb: warning: the --url stays visible in the process list (%s); "
      .. "give it in DATABASE_URL or with --url-file instead\n"):format(tostring(err)))
    return _M.main(argv)
  end
  url = core.take_env(_M.URL_VARIABLE)
  if url == nil then
    return _M.main(argv)
  end
  local args = { "--url", url }
  for i = 1, #argv do args[#args + 1] = argv[i] end
  return _M.main(args)
end

return _M
