-- Exact value comparison for the value specs: type included (integer vs
-- float where Lua 5.3+ tells them apart), with short, binary-safe
-- failure messages.
local fsdb = require("fsdb")

local M = {}

-- Lua 5.3+ has 64-bit integers; LuaJIT has doubles only.
local INT64 = math.type ~= nil
M.INT64 = INT64

-- The Lua type of a value, telling integers from floats where Lua can.
function M.kind(v)
  if INT64 and type(v) == "number" then
    return math.type(v)
  end
  return type(v)
end

-- Shows a value in a failure message (binary-safe, and short).
function M.show(v)
  if type(v) == "string" then
    if #v > 200 then
      return ("<%d bytes>"):format(#v)
    end
    return ("%q"):format(v)
  end
  if type(v) == "number" then
    return M.kind(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  end
  if v == fsdb.null then
    return "fsdb.null"
  end
  return tostring(v)
end

-- Asserts want == got, type included.
function M.same(want, got, label)
  local kind, show = M.kind, M.show
  assert(kind(want) == kind(got),
    ("%s: expected %s %s, got %s %s"):format(label, kind(want), show(want), kind(got), show(got)))
  assert(want == got, ("%s: expected %s, got %s"):format(label, show(want), show(got)))
end

return M
