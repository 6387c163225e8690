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

local function unquote(v)
  local q = v:sub(1, 1)
  if (q == '"' or q == "'") and v:sub(-1) == q and #v >= 2 then
    v = v:sub(2, -2)
    if q == '"' then
      v = v:gsub("\\([nrt\"\\])", { n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\" })
    end
    return v
  end
  -- Unquoted: a " #" starts a comment.
  return (v:gsub("%s+#.*$", ""):gsub("%s+$", ""))
end

--- Parses the text of a .env file.
-- syntax: vars = config.parse_dotenv(text)
-- Lines are KEY=VALUE, optionally prefixed by `export `; blank lines and
-- lines starting with # are ignored; values may be single- or double-quoted.
function _M.parse_dotenv(text)
  local vars = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    local key, value = line:match("^%s*export%s+([%a_][%w_]*)%s*=%s*(.-)%s*$")
    if not key then
      key, value = line:match("^%s*([%a_][%w_]*)%s*=%s*(.-)%s*$")
    end
    if key then
      vars[key] = unquote(value)
    end
  end
  return vars
end

--- Reads ./.env (or the given path); nil when there is none.
-- syntax: vars = config.read_dotenv(path)
function _M.read_dotenv(path)
  local f = io.open(path or ".env", "rb")
  if not f then
    return nil
  end
  local text = f:read("*a")
  f:close()
  return _M.parse_dotenv(text)
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
    host = "localhost"
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

--- The URL from the environment: real variables first, then .env.
-- syntax: url, err = config.url_from_env(getenv, dotenv_path)
-- getenv defaults to os.getenv (tests pass their own).
function _M.url_from_env(getenv, dotenv_path)
  getenv = getenv or os.getenv
  local file = _M.read_dotenv(dotenv_path) or {}
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
