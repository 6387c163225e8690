-- Files and shell words for the specs that run commands (the CLI, python3,
-- Alembic) and write the files they read.
local _M = {}

--- s as one POSIX shell word.
function _M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

--- The whole file; raises when it cannot be read.
function _M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- The whole file, or "" when there is none.
function _M.read_or_empty(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

--- Writes text to path (replacing it); raises on failure.
function _M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function _M.exists(path)
  return os.rename(path, path) and true or false
end

--- The checkout the specs run from (two levels above this file).
function _M.checkout_root()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/spec/helpers/[^/]*$")
  if dir == nil and src:match("^@spec/") then dir = "." end
  return dir or "."
end

return _M
