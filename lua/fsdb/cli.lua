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
-- `{ summary = "…", usage = "…", options = { name = true, … }, run = function(ctx) … end }`;
-- run returns the exit status. The migration commands are listed and
-- answer with a clear "not available yet" until fsdb.migrate registers
-- them here.

local _M = {}

_M.VERSION = "0.1.0"

local EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

local MIGRATION_COMMANDS = { "init", "revision", "migrate", "upgrade", "downgrade", "stamp",
                             "current", "history", "heads", "branches", "merge", "show" }

-- The engine's documented defaults, shown by `check` next to the pool
-- status (lua/fsdb/engine.lua validates, csrc/lengine.c applies them).
local POOL_DEFAULTS = {
  { "pool_timeout", 30 },
  { "pool_recycle", -1 },
  { "pool_pre_ping", true },
  { "pool_reset_on_return", "rollback" },
  { "pool_use_lifo", false },
}

-- Options every command understands, and whether they take a value.
-- name → { key in ctx.opts, takes_value }
local OPTIONS = {
  ["--url"] = { "url", true },
  ["-d"] = { "directory", true },
  ["--directory"] = { "directory", true },
  ["-h"] = { "help", false },
  ["--help"] = { "help", false },
  ["--version"] = { "version", false },
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
-- works on text that does not parse.
local function url_secrets(ctx, url)
  if type(url) ~= "string" then return end
  local rest = url:match("^%s*[%a][%w+.-]*://(.*)$")
  if not rest then return end
  local userinfo = rest:match("^(.*)@")
  if not userinfo then return end
  local raw = userinfo:match("^[^:]*:(.*)$")
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

local function wrap_list(names, indent, width)
  local lines, cur = {}, indent
  for i, name in ipairs(names) do
    local piece = name .. (i < #names and "," or "")
    if #cur + #piece + 1 > width and cur ~= indent then
      lines[#lines + 1] = cur
      cur = indent
    end
    cur = cur .. (cur == indent and "" or " ") .. piece
  end
  lines[#lines + 1] = cur
  return table.concat(lines, "\n")
end

function _M.usage()
  local names = {}
  for name in pairs(_M.commands) do names[#names + 1] = name end
  table.sort(names)
  local rows = {}
  for _, name in ipairs(names) do
    rows[#rows + 1] = ("  %-12s %s"):format(name, _M.commands[name].summary)
  end
  local pending = {}
  for _, name in ipairs(MIGRATION_COMMANDS) do
    if not _M.commands[name] then pending[#pending + 1] = name end
  end
  local text = {
    "usage: fsdb [--url URL] [-d DIR] <command> [options]",
    "",
    "Commands:",
    table.concat(rows, "\n"),
    ("  %-12s %s"):format("help [CMD]", "show this text, or the help of one command"),
  }
  if #pending > 0 then
    text[#text + 1] = ""
    text[#text + 1] = "Migration commands (coming with fsdb.migrate; not available yet):"
    text[#text + 1] = wrap_list(pending, "  ", 78)
  end
  for _, l in ipairs({
    "",
    "Options:",
    "  --url URL      the database, mysql://user:pass@host:port/db?opt=val",
    "                 (default: DATABASE_URL, else DB_USER, DB_PASSWORD, DB_HOST,",
    "                 DB_PORT, DB_NAME, DB_SOCKET; the environment first, then ./.env)",
    "  -d DIR         the migrations directory (default ./migrations)",
    "  -h, --help     show help",
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
  if ctx.opts.url then return "--url" end
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
local function extra_hint(errno, parsed, source)
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
  local used = engine.options or {}
  for _, d in ipairs(POOL_DEFAULTS) do
    local v = used[d[1]]
    if v == nil then v = d[2] end
    parts[#parts + 1] = ("%s %s"):format(d[1], tostring(v))
  end
  local extra = {}
  for k, v in pairs(used) do
    if k ~= "pool_size" and k ~= "max_overflow" and type(v) ~= "function" then
      local default = false
      for _, d in ipairs(POOL_DEFAULTS) do
        if d[1] == k then default = true end
      end
      if not default then extra[#extra + 1] = ("%s %s"):format(k, tostring(v)) end
    end
  end
  table.sort(extra)
  for _, e in ipairs(extra) do parts[#parts + 1] = e end
  return table.concat(parts, ", ")
end

local function run_check(ctx)
  local ok, fsdb = pcall(require, "fsdb")
  if not ok then
    return failed(ctx, nil, "fsdb: cannot load the fsdb library: " .. tostring(fsdb))
  end

  local url, source = ctx.opts.url, nil
  if not url then
    local err
    url, err = fsdb.config.url_from_env(ctx.getenv, ctx.dotenv)
    if not url then
      return failed(ctx, nil, err)
    end
  end
  url_secrets(ctx, url)
  source = where_from(ctx)

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
  summary = "test the connection: server version, user, database, charset, TLS, pool",
  usage = "usage: fsdb check [--url URL]\n\n"
    .. "Connects as the library would and prints the URL (password as ***), the\n"
    .. "server version, CURRENT_USER(), DATABASE(), the connection's character set\n"
    .. "and collation, TLS, the server's wait_timeout and the pool settings, then OK.\n"
    .. "On failure prints FAILED with the error, errno and sqlstate, and exits 1.\n",
  options = { url = true },
  run = run_check,
}

local function not_yet(name)
  return function(ctx)
    ctx.err(("fsdb %s: not available yet; the migration commands (%s) come with fsdb.migrate\n")
      :format(name, table.concat(MIGRATION_COMMANDS, ", ")))
    return EXIT_USAGE
  end
end

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
  local out = env.out or function(s) io.stdout:write(s) end
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
    for _, name in ipairs(MIGRATION_COMMANDS) do
      if name == topic then return not_yet(topic)(ctx) end
    end
    return usage_error(ctx, ("unknown command '%s'"):format(topic))
  end

  local cmd = _M.commands[verb]
  if not cmd then
    for _, name in ipairs(MIGRATION_COMMANDS) do
      if name == verb then return not_yet(verb)(ctx) end
    end
    return usage_error(ctx, ("unknown command '%s'"):format(verb))
  end

  if opts.help then
    ctx.out(cmd.usage or ("usage: fsdb " .. verb .. "\n"))
    return EXIT_OK
  end
  for key in pairs(opts) do
    if key ~= "directory" and not (cmd.options and cmd.options[key]) then
      return usage_error(ctx, ("option '%s' is not valid for '%s'"):format(key, verb))
    end
  end
  if not cmd.max_args and #words > 1 then
    return usage_error(ctx, ("'%s' takes no arguments (got '%s')"):format(verb, words[2]))
  end
  ctx.words = words

  local ok, status = pcall(cmd.run, ctx)
  if not ok then
    ctx.err(("fsdb %s: error: %s\n"):format(verb, tostring(status)))
    return EXIT_FAILURE
  end
  return status
end

return _M
