--- fsdb.config — where the database URL comes from.
--
-- The furniture store's convention: DATABASE_URL, else DB_USER,
-- DB_PASSWORD, DB_HOST (default localhost; a comma-separated list makes a
-- multi-host URL), DB_PORT (default 3306),
-- DB_NAME and optional DB_SOCKET. A `.env` file in the working directory is
-- read when present; real environment variables win over it.

local _M = {}

local VARS = { "DATABASE_URL", "DB_USER", "DB_PASSWORD", "DB_HOST", "DB_PORT",
               "DB_NAME", "DB_SOCKET" }

-- .env parsing follows python-dotenv (what a Flask app's .env is written
-- for), rule by rule:
--   * KEY=VALUE, optional `export ` in front, spaces around `=`; a key is
--     anything up to `=`, `#` or white space, or 'quoted'; blank lines and
--     `# comments` are skipped; a line that does not parse (`BROKEN LINE`,
--     `A="x"y`, an unclosed quote) sets nothing and the next line is read;
--   * unquoted values end at a ` #` comment and lose trailing spaces
--     (`a#b` keeps its `#`);
--   * 'single' and "double" quoted values are taken as written, may span
--     lines and may be followed by a comment; inside double quotes \n \t
--     \r \\ \" \' \a \b \f \v are escapes, inside single quotes \\ and \'
--     (any other backslash stays);
--   * ${VAR} and ${VAR:-default} are expanded in every value, from the real
--     environment first, then from the lines above (load_dotenv's order);
--     a bare $VAR is left alone;
--   * a later line wins over an earlier one; `KEY` without `=` sets nothing.

local HSPACE = "[ \t\f\v]*" -- white space that does not end a line

local DQ_ESCAPES = { a = "\a", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", v = "\v",
                     ["\\"] = "\\", ["'"] = "'", ['"'] = '"' }

-- The end (after the closing quote) and the text of a value quoted with q
-- starting at i; an escaped quote does not close it unless nothing else
-- does (the regex python-dotenv uses backtracks the same way).
local function quoted(text, i, q)
  local j, last_escaped = i + 1, nil
  while j <= #text do
    local c = text:sub(j, j)
    if c == "\\" and text:sub(j + 1, j + 1) == q then
      last_escaped = j + 1
      j = j + 2
    elseif c == q then
      return j + 1, text:sub(i + 1, j - 1)
    else
      j = j + 1
    end
  end
  if last_escaped then
    return last_escaped + 1, text:sub(i + 1, last_escaped - 1)
  end
  return nil
end

-- The value starting at i: its text and where the line goes on; nil when
-- it does not parse.
local function parse_value(text, i)
  local c = text:sub(i, i)
  if c == "'" then
    local e, v = quoted(text, i, "'")
    if not e then return nil end
    return (v:gsub("\\([\\'])", "%1")), e
  elseif c == '"' then
    local e, v = quoted(text, i, '"')
    if not e then return nil end
    return (v:gsub("\\([\\'\"abfnrtv])", DQ_ESCAPES)), e
  end
  local part, e = text:match("^([^\r\n]*)()", i)
  part = part:gsub("%s+#.*$", ""):gsub("%s+$", "")
  return part, e
end

-- One binding from i: key (nil for a blank, a comment or a bad line), its
-- value (nil without `=`) and where the next one starts.
local function parse_binding(text, i)
  i = text:match("^%s*()", i)
  if i > #text then return nil, nil, i end
  i = text:match("^export[ \t\f\v]+()", i) or i
  local key, value
  local c = text:sub(i, i)
  local bad = false
  if c ~= "#" then
    local e
    key, e = text:match(c == "'" and "^'([^']+)'()" or "^([^=#%s]+)()", i)
    if key then i = e else bad = true end
  end
  if not bad then
    i = text:match("^" .. HSPACE .. "()", i)
    if text:sub(i, i) == "=" then
      i = text:match("^=" .. HSPACE .. "()", i)
      local e
      value, e = parse_value(text, i)
      if value then i = e else bad = true end
    end
  end
  if not bad then
    i = text:match("^" .. HSPACE .. "#[^\r\n]*()", i) or i
    local e = text:match("^" .. HSPACE .. "\r?\n()", i) or text:match("^" .. HSPACE .. "\r()", i)
      or (text:match("^" .. HSPACE .. "$", i) and #text + 1)
    if e then return key, value, e end
  end
  -- Not a binding: skip the rest of this line.
  return nil, nil, text:match("^[^\r\n]*\r?\n?()", i)
end

-- ${NAME} and ${NAME:-default} in v; lookup(name) gives a value or nil.
local function expand(v, lookup)
  local out, pos = {}, 1
  while true do
    local s = v:find("${", pos, true)
    if not s then break end
    local name, e = v:match("^%${([^}:]*)}()", s)
    local default
    if not name then
      name, default, e = v:match("^%${([^}:]*):%-([^}]*)}()", s)
    end
    if name then
      out[#out + 1] = v:sub(pos, s - 1)
      local found = lookup(name)
      if found == nil then found = default or "" end
      out[#out + 1] = found
      pos = e
    else
      out[#out + 1] = v:sub(pos, s)
      pos = s + 1
    end
  end
  out[#out + 1] = v:sub(pos)
  return table.concat(out)
end

--- Parses the text of a .env file the way python-dotenv does (rules above).
-- syntax: vars = config.parse_dotenv(text, getenv)
-- getenv (default os.getenv) serves ${VAR}: the real environment wins over
-- the lines above.
function _M.parse_dotenv(text, getenv)
  getenv = getenv or os.getenv
  -- python-dotenv reads the file in text mode: \r\n and \r become \n.
  text = text:gsub("\r\n?", "\n")
  local vars, declared = {}, {}
  local function lookup(name)
    local v = getenv(name)
    if v ~= nil then return v end
    if declared[name] then return vars[name] or "" end
    return nil
  end
  local i = 1
  while i <= #text do
    local key, value, e = parse_binding(text, i)
    if key then
      declared[key] = true
      vars[key] = value and expand(value, lookup)
    end
    i = e
  end
  return vars
end

--- Reads ./.env (or the given path); nil when there is none.
-- syntax: vars = config.read_dotenv(path, getenv)
function _M.read_dotenv(path, getenv)
  local f = io.open(path or ".env", "rb")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return _M.parse_dotenv(text, getenv)
end

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end

--- Builds the URL from DB_* variables (a table of name → value).
-- syntax: url, err = config.url_from_vars(vars)
function _M.url_from_vars(vars)
  if vars.DATABASE_URL and vars.DATABASE_URL ~= "" then
    return vars.DATABASE_URL
  end
  if not vars.DB_USER and not vars.DB_NAME and not vars.DB_SOCKET then
    return nil, "fsdb: no database configured; set DATABASE_URL or DB_USER, DB_PASSWORD, "
      .. "DB_HOST, DB_PORT and DB_NAME (in the environment or a .env file)"
  end
  local parts = { "mysql://" }
  if vars.DB_USER and vars.DB_USER ~= "" then
    parts[#parts + 1] = encode(vars.DB_USER)
    if vars.DB_PASSWORD and vars.DB_PASSWORD ~= "" then
      parts[#parts + 1] = ":" .. encode(vars.DB_PASSWORD)
    end
    parts[#parts + 1] = "@"
  end
  local host = vars.DB_HOST
  if not host or host == "" then
    host = require("fsdb.options").url_defaults().host
  end
  local port = vars.DB_PORT ~= "" and not vars.DB_SOCKET and vars.DB_PORT or nil
  if not host:find(",", 1, true) then
    if host:find(":", 1, true) and not host:find("^%[") then
      host = "[" .. host .. "]" -- a bare IPv6 address
    end
    parts[#parts + 1] = host .. (port and ":" .. port or "")
  else
    -- A host list "h1,h2:3307,[::1]:3308" (also bare "::1"): DB_PORT is
    -- the port of every host that gives none.
    local hosts = {}
    for item in (host .. ","):gmatch("%s*([^,]-)%s*,") do
      local _, colons = item:gsub(":", "")
      if colons > 1 and not item:find("^%[") then
        item = "[" .. item .. "]"
      end
      if port and not item:find(":%d+$") then
        item = item .. ":" .. port
      end
      hosts[#hosts + 1] = item
    end
    parts[#parts + 1] = table.concat(hosts, ",")
  end
  parts[#parts + 1] = "/" .. encode(vars.DB_NAME or "")
  if vars.DB_SOCKET and vars.DB_SOCKET ~= "" then
    parts[#parts + 1] = "?unix_socket=" .. encode(vars.DB_SOCKET)
  end
  return table.concat(parts)
end

--- The variable that holds a bind's URL: DATABASE_URL_<NAME>, the name
--- upper-cased with anything but letters and digits as "_" (auth →
--- DATABASE_URL_AUTH, read-replica → DATABASE_URL_READ_REPLICA). One
--- convention for fsdb.new's binds and the `fsdb` command's --bind.
-- syntax: name = config.bind_var(bind)
function _M.bind_var(bind)
  return "DATABASE_URL_" .. bind:upper():gsub("[^%w]", "_")
end

--- A bind's URL from DATABASE_URL_<NAME>: the real environment first, then
--- .env; nil and a message naming the variable when it is unset or empty.
-- syntax: url, err_or_var = config.bind_url(bind, getenv, dotenv_path)
function _M.bind_url(bind, getenv, dotenv_path)
  getenv = getenv or os.getenv
  local var = _M.bind_var(bind)
  local v = getenv(var)
  if v == nil then
    v = (_M.read_dotenv(dotenv_path, getenv) or {})[var]
  end
  if v == nil or v == "" then
    return nil, ("fsdb: no database URL for bind '%s'; set %s (in the environment or a .env file)")
      :format(bind, var)
  end
  return v, var
end

--- The read replicas' URLs from the environment: DATABASE_REPLICA_URLS for
--- the default engine, DATABASE_REPLICA_URLS_<NAME> for a bind (named as
--- bind_var names it); URLs separated by white space (a multi-host URL
--- holds commas). The real environment first, then .env; nil when unset.
-- syntax: urls, var = config.replica_urls(bind_or_nil, getenv, dotenv_path)
function _M.replica_urls(bind, getenv, dotenv_path)
  getenv = getenv or os.getenv
  local var = "DATABASE_REPLICA_URLS"
  if bind ~= nil then var = var .. _M.bind_var(bind):sub(#"DATABASE_URL" + 1) end
  local v = getenv(var)
  if v == nil then
    v = (_M.read_dotenv(dotenv_path, getenv) or {})[var]
  end
  local urls = {}
  for u in tostring(v or ""):gmatch("%S+") do urls[#urls + 1] = u end
  if #urls == 0 then return nil, var end
  return urls, var
end

--- The URL from the environment: real variables first, then .env.
-- syntax: url, err = config.url_from_env(getenv, dotenv_path)
-- getenv defaults to os.getenv (tests pass their own).
function _M.url_from_env(getenv, dotenv_path)
  getenv = getenv or os.getenv
  local file = _M.read_dotenv(dotenv_path, getenv) or {}
  local vars = {}
  for _, name in ipairs(VARS) do
    local v = getenv(name)
    if v == nil then
      v = file[name]
    end
    vars[name] = v
  end
  return _M.url_from_vars(vars)
end

return _M
