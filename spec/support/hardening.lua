-- Shared by the hardening specs (tls, faults, hostile, secrets): URLs for
-- the throwaway server's users, the four-value failure check and the
-- password checks. The server and its FSDB_TEST_* variables come from
-- scripts/testdb (spec/helpers/db.lua reads the common ones).
local db = require("helpers.db")
-- busted gives spec files luassert as `assert`; a required module asks for it.
local assert = require("luassert")

local _M = {}

_M.host = os.getenv("FSDB_TEST_HOST") or "127.0.0.1"
_M.alt_host = os.getenv("FSDB_TEST_ALT_HOST") or ""
_M.ca = os.getenv("FSDB_TEST_CA") or ""
_M.client_cert = os.getenv("FSDB_TEST_CLIENT_CERT") or ""
_M.client_key = os.getenv("FSDB_TEST_CLIENT_KEY") or ""
_M.tls_user = os.getenv("FSDB_TEST_TLS_USER") or ""
_M.x509_user = os.getenv("FSDB_TEST_X509_USER") or ""

--- Percent-encodes everything but RFC 3986 unreserved characters.
function _M.encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

--- Every form of the test password a leak could take.
function _M.secrets()
  local pw = assert(db.password, "FSDB_TEST_PASSWORD is not set")
  return { pw, _M.encode(pw) }
end

--- Asserts that text holds no form of the test password (nor of extra).
function _M.no_secret(text, extra)
  text = tostring(text)
  local list = _M.secrets()
  for _, s in ipairs(extra or {}) do list[#list + 1] = s end
  for _, secret in ipairs(list) do
    assert.is_nil(text:find(secret, 1, true), "a password shows in: " .. text)
  end
end

--- A URL for the test server. opts: user (default the test user), host,
--- port, db, password (raw; default the test password), params (a list of
--- "name=value" strings, values already encoded).
function _M.url(opts)
  opts = opts or {}
  local password = opts.password or db.password
  local s = ("mysql://%s:%s@%s:%d/%s"):format(opts.user or "fsdb", _M.encode(password),
    opts.host or _M.host, opts.port or db.port, opts.db or db.db)
  if opts.params and #opts.params > 0 then
    s = s .. "?" .. table.concat(opts.params, "&")
  end
  return s
end

--- Root over the unix socket: still works when TCP demands TLS.
function _M.root_socket_url()
  return "mysql://root@localhost/?unix_socket=" .. _M.encode(assert(db.socket))
end

--- Asserts the four values of a failure: nil, one "fsdb: " line without a
--- password, the errno (a number or a list of accepted ones), the sqlstate.
--- want.contains: substrings err must hold.
function _M.failure(res, err, errno, sqlstate, want)
  assert.is_nil(res, "expected a failure, got a result")
  assert.are.equal("string", type(err))
  assert.are.equal("fsdb: ", err:sub(1, 6), "err must start with 'fsdb: ': " .. err)
  assert.is_nil(err:find("\n", 1, true), "err must be one line: " .. err)
  _M.no_secret(err)
  if type(want.errno) == "table" then
    local seen = false
    for _, code in ipairs(want.errno) do seen = seen or errno == code end
    assert.is_true(seen, ("errno %s is not one of %s; err: %s"):format(
      tostring(errno), table.concat(want.errno, ", "), err))
  else
    assert.are.equal(want.errno, errno, "errno; err was: " .. err)
  end
  if want.sqlstate then
    assert.are.equal(want.sqlstate, sqlstate, "sqlstate; err was: " .. err)
  end
  for _, words in ipairs(want.contains or {}) do
    assert.is_truthy(err:find(words, 1, true), ("err lacks %q: %s"):format(words, err))
  end
end

--- Runs fsdb.cli.main in-process; returns status, stdout, stderr.
function _M.cli(argv, env)
  local cli = require("fsdb.cli")
  local out, err = {}, {}
  env = env or {}
  env.out = function(s) out[#out + 1] = s end
  env.err = function(s) err[#err + 1] = s end
  env.getenv = env.getenv or function() return nil end
  env.dotenv = env.dotenv or "/nonexistent/fsdb-spec/.env"
  local status = cli.main(argv, env)
  return status, table.concat(out), table.concat(err)
end

--- Single-quotes a string for sh.
function _M.shell_quote(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

--- The checkout: two levels above this file (spec/support/hardening.lua).
function _M.checkout_root()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/spec/support/[^/]*$")
  if dir == nil and src:match("^@spec/") then dir = "." end
  return dir or "."
end

--- Runs a shell command; returns its exit status and combined output.
function _M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"__status=$?\""))
  local text = p:read("*a")
  p:close()
  local status = tonumber(text:match("__status=(%d+)%s*$"))
  return status, (text:gsub("__status=%d+%s*$", ""))
end

--- The loopback proxy (spec/support/proxy.c) in front of the test server.
function _M.proxy()
  local tp = require("fsdb_testproxy")
  return assert(tp.start(_M.host, db.port))
end

return _M
