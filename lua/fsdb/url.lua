--- fsdb.url — database URLs.
--
-- Parsing and rendering live in the C core (csrc/uri.c) so that the engine
-- and the CLI agree on one grammar; this module is the Lua face of it, plus
-- `redact`, a best-effort scrubber for text that may hold a URL that does
-- not even parse.
--
--   mysql://user:password@host:port/database?opt=val&...
--
-- Also accepted: mariadb://, mysql+<driver>:// and mariadb+<driver>://
-- (the driver is ignored), percent-encoded user and password, [::1] hosts,
-- a percent-encoded socket path as host (%2Ftmp%2Fmysql.sock) or
-- ?unix_socket=/path. Options: charset, collation, connect_timeout, read_timeout,
-- write_timeout, ssl_mode, ssl_ca, ssl_cert, ssl_key, ssl_capath,
-- ssl_cipher, auth_plugins, local_infile, unix_socket.

local _M = {}

local core -- loaded on first use: redact() works without the C module

local function get_core()
  if core == nil then
    core = require("fsdb.core")
  end
  return core
end

--- Parses a URL.
-- syntax: t, err, errno, sqlstate = url.parse(s)
-- t has scheme, user, password, host, port, database, unix_socket, charset,
-- collation, connect_timeout, read_timeout, write_timeout, ssl_mode, ssl_ca, ssl_cert,
-- ssl_key, ssl_capath, ssl_cipher, auth_plugins, local_infile. Unset fields are nil,
-- except host ("localhost"), port (3306), charset ("utf8mb4") and
-- local_infile (false). On failure: nil, "fsdb: …", 9001, "HY000"; the
-- message never contains the password.
function _M.parse(s)
  return get_core().parse_url(s)
end

--- Renders a URL in canonical form with the password as "***".
-- syntax: s, err, errno, sqlstate = url.render(s)
function _M.render(s)
  return get_core().render_url(s)
end

local SCHEME = "[%a][%w+.-]*://"

-- rest is everything after "scheme://". The password runs from the first
-- ':' of the userinfo to the LAST '@' of the text: a password with a raw
-- '/' or '?' makes the authority look shorter than it is, and hiding too
-- much is better than showing part of a secret.
local function redact_url(scheme, rest)
  local last_at = rest:match("^.*()@")
  if not last_at then
    return scheme .. rest
  end
  local auth_end = rest:find("[/?]") or #rest + 1
  local auth_at = rest:sub(1, auth_end - 1):match("^.*()@")
  if auth_at and not rest:sub(1, auth_at - 1):find(":", 1, true) then
    -- "user@host": the userinfo has no password
    return scheme .. rest
  end
  local colon = rest:sub(1, last_at - 1):find(":", 1, true)
  if not colon then
    return scheme .. rest
  end
  return scheme .. rest:sub(1, colon) .. "***" .. rest:sub(last_at)
end

--- Returns s with the password of any URL in it replaced by "***".
-- Works on text that is not a valid URL, and on messages that quote one.
-- When s itself starts with a URL, all of s is taken as that URL (a
-- password may hold spaces); otherwise a URL ends at whitespace or a quote.
-- Non-string values are returned unchanged.
-- syntax: s = url.redact(s)
function _M.redact(s)
  if type(s) ~= "string" then
    return s
  end
  local lead, scheme, rest = s:match("^(%s*)(" .. SCHEME .. ")(.*)$")
  if lead then
    return lead .. redact_url(scheme, rest)
  end
  return (s:gsub("(" .. SCHEME .. ")([^%s'\"`<>]*)", redact_url))
end

return _M
