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
local defaults -- fsdb.options' URL defaults, on first use

local function get_core()
  if core == nil then
    core = require("fsdb.core")
    defaults = require("fsdb.options").url_defaults()
  end
  return core
end

--- Parses a URL.
-- syntax: t, err, errno, sqlstate = url.parse(s)
-- t has scheme, user, password, host, port, database, unix_socket, charset,
-- collation, connect_timeout, read_timeout, write_timeout, ssl_mode, ssl_ca, ssl_cert,
-- ssl_key, ssl_capath, ssl_cipher, auth_plugins, local_infile. Unset fields are nil,
-- except host, port (every host's, for a host list), charset and the three
-- timeouts, which take fsdb.options' URL defaults (localhost, 3306, utf8mb4,
-- 10/300/60 s), and local_infile (false). `raw` true: no defaults, only what
-- the URL says. On failure: nil, "fsdb: …", 9001, "HY000"; the message never
-- contains the password.
-- syntax: t, err, errno, sqlstate = url.parse(s, raw)
function _M.parse(s, raw)
  local c = get_core()
  if raw then return c.parse_url(s) end
  return c.parse_url(s, defaults)
end

--- Renders a URL in canonical form with the password as "***": every
--- host with its port, charset and timeouts only when not the default.
-- syntax: s, err, errno, sqlstate = url.render(s)
function _M.render(s)
  local c = get_core()
  return c.render_url(s, defaults)
end

-- A scheme and its separator: "mysql://" (or "mysql:///"). The malformed
-- "mysql:/" is not taken as one: "app:/pw@h" may be a password after a
-- user name; such text goes to the whole-string rule of redact.
local SCHEME = "[%a][%w+.-]*://+"

-- rest is everything after the scheme's slashes; returns it redacted.
--   With an '@': the password runs from the first ':' to the LAST '@' of
--   the text (a password with a raw '/', '?' or '@' makes the authority look
--   shorter than it is, and hiding too much is better than showing part of
--   a secret). No ':' before it: "user@host", nothing to hide.
--   Without an '@': a host-less "user:secret/db" reads as host "user" and
--   port "secret"; unless a port number follows the ':', everything after
--   it is hidden (the secret may hold a raw '/' or '?', even first).
local function redact_rest(rest)
  local last_at = rest:match("^.*()@")
  if last_at then
    local colon = rest:sub(1, last_at - 1):find(":", 1, true)
    if not colon then
      return rest
    end
    return rest:sub(1, colon) .. "***" .. rest:sub(last_at)
  end
  local auth = rest:match("^[^/?]*")
  local from = 1
  if auth:sub(1, 1) == "[" then
    from = auth:find("]", 1, true) or #auth + 1
  end
  local colon = auth:find(":", from, true)
  local after = colon and rest:sub(colon + 1) or ""
  if after == "" or after:match("^%d+$") or after:match("^%d+[/?]") then
    return rest
  end
  return rest:sub(1, colon) .. "***"
end

--- Returns s with the password of any URL in it replaced by "***".
-- Works on text that is not a valid URL, and on messages that quote one.
-- When s itself starts with a URL, all of s is taken as that URL (a
-- password may hold spaces); otherwise a URL ends at whitespace or a quote.
-- Also covered: host-less URLs ("mysql://user:secret/db"), s starting with
-- a one-slash scheme ("mysql:/user:secret@host") and s as a whole with no
-- scheme and no blanks ("user:secret@host/db"): both from the first ':'. Non-string values are returned
-- unchanged.
-- syntax: s = url.redact(s)
function _M.redact(s)
  if type(s) ~= "string" then
    return s
  end
  local lead, scheme, rest = s:match("^(%s*)(" .. SCHEME .. ")(.*)$")
  if lead then
    return lead .. scheme .. redact_rest(rest)
  end
  lead, rest = s:match("^(%s*)([%a][%w+.-]*:/.*)$") -- "mysql:/…": all of s, like a URL
  if lead then
    return lead .. redact_rest(rest)
  end
  if s:find(":", 1, true) and not s:find("%s") then
    return redact_rest(s)
  end
  return (s:gsub("(" .. SCHEME .. ")([^%s'\"`<>]*)", function(sch, r)
    return sch .. redact_rest(r)
  end))
end

return _M
