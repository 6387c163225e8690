--- fsdb.migrate.inline — parameters written into a statement as SQL
--- literals, for `--sql` output of op.execute and op.bulk_insert.
--
-- The placeholders are found by the C core's scanner (core.placeholders),
-- by the rules of the statements it prepares; each value is written by
-- ops.literal (fsdb.sqltext underneath).

local core = require("fsdb.core")
local ops = require("fsdb.migrate.ops")

local literal = ops.literal

local _M = {}

local function fail(fmt, ...)
  error("fsdb: " .. fmt:format(...), 0)
end


--- The statement with each placeholder replaced by value(key): key is the
--- position (1, 2, …) for `?` and the name for `:name`. Placeholders inside
--- quotes, backticks and comments are left alone: the C core finds them
--- (core.placeholders), by the rules of the statements it prepares.
-- syntax: sql = inline.substitute(sql, value)
function _M.substitute(sql, value)
  local out, pos, n = {}, 1, 0
  for _, p in ipairs(core.placeholders(sql)) do
    local key = p[3]
    if key == nil then
      n = n + 1
      key = n
    end
    out[#out + 1] = sql:sub(pos, p[1] - 1)
    out[#out + 1] = value(key)
    pos = p[2] + 1
  end
  out[#out + 1] = sql:sub(pos)
  return table.concat(out)
end

--- The statement with its parameters written in as SQL literals: `?` from
--- the array part, `:name` from the string keys; raises when they do not
--- match the placeholders.
-- syntax: sql = inline.inline(sql, params)
function _M.inline(sql, params)
  if params == nil then return sql end
  local positional, used_named = 0, false
  local text = _M.substitute(sql, function(key)
    local v = params[key]
    if type(key) == "number" then
      positional = key
      if v == nil then
        fail("inline: statement has more placeholders than the %d parameters given", #params)
      end
    else
      used_named = true
      if v == nil then fail("inline: no parameter for :%s", key) end
    end
    return literal(v, "inline")
  end)
  if positional < #params and not used_named then
    fail("inline: statement has %d placeholders but %d parameters were given", positional, #params)
  end
  return text
end

return _M
