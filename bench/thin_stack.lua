-- thin_stack.lua — the workloads on bench/thin.c, the thinnest Lua binding
-- (Lua 5.4 or LuaJIT): raw C's statements with fresh Lua rows and nothing
-- else, to show what the Lua values alone cost next to raw C.
--   usage: lua5.4 bench/thin_stack.lua WORKLOAD [N]     (or luajit)
-- WORKLOAD: w2 w3 w3a w3s w4; see bench/README.md.
local B = require("benchlib")
local workload = assert(arg and arg[1], "usage: thin_stack.lua WORKLOAD [N]")

local F = require("bench_thin")

local W = {}

-- W2: primary-key lookup, prepared once, one fresh keyed row per call.
function W.w2(n)
  local lookup, item_check, w2_id = F.lookup, B.item_check, B.w2_id
  local t, cpu, check = B.measure(n, function(k)
    local check = 0
    for i = 0, k - 1 do
      local r = lookup(w2_id(i))
      check = check + item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
    end
    return check
  end)
  B.report(n, t, check, cpu)
end

-- W3 and W3a: every row of items into a Lua array, keyed by name or as arrays.
local function fetch_all(arrays)
  local stop = B.timer()
  local rows = F.fetch(B.SEL_ROW, arrays)
  local t, cpu = stop()
  local check, item_check = 0, B.item_check
  for i = 1, #rows do
    local r = rows[i]
    if arrays then
      check = check + item_check(r[1], r[2], r[3], r[4], r[5], r[6])
    else
      check = check + item_check(r.id, r.name, r.price, r.qty, r.created, r.note)
    end
  end
  B.report(#rows, t, check, cpu)
end

function W.w3() fetch_all(false) end
function W.w3a() fetch_all(true) end

-- W3s: every row of items, one fresh keyed row at a time.
function W.w3s()
  B.stream(function() return F.stream(B.SEL_ROW) end)
end

-- W4: N single-row INSERTs in one transaction, prepared once.
function W.w4(n)
  local rows = B.gen_rows(n, nil)
  local insert, affected = F.insert, 0
  local stop = B.timer()
  F.exec("START TRANSACTION")
  for i = 1, n do
    local r = rows[i]
    affected = affected + insert(r[1], r[2], r[3], r[4], r[5])
  end
  F.exec("COMMIT")
  local t, cpu = stop()
  B.report(n, t, affected, cpu)
end

local run = W[workload] or error("thin_stack.lua: unknown workload " .. workload)
F.connect()
run(B.count(20000))
