-- core.random, the source of transaction()'s retry pauses: forked
-- processes (nginx workers, forked job workers) must not draw the same
-- pauses, or workers that collided once collide on every retry.
local core = require("fsdb.core")
local th = require("fsdb_testhelper")

-- Each of n forked children draws one number with draw() and exits with
-- it scaled to 1-200; returns the exit statuses.
local function draws_in_children(n, draw)
  local pids, got = {}, {}
  for i = 1, n do
    local pid = th.fork()
    if pid == 0 then th.exit(1 + math.floor(draw() * 200)) end
    pids[i] = pid
  end
  for i, pid in ipairs(pids) do got[i] = th.waitpid(pid) end
  return got
end

local function all_same(t)
  for i = 2, #t do if t[i] ~= t[1] then return false end end
  return true
end

describe("core.random", function()
  it("is a number in [0, 1)", function()
    local seen = {}
    for _ = 1, 1000 do
      local r = core.random()
      assert.is_true(type(r) == "number" and r >= 0 and r < 1)
      seen[r] = true
    end
    local distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.is_true(distinct > 990)
  end)

  it("differs between processes forked from one state, where math.random does not", function()
    math.random() -- the state the children inherit
    assert.is_true(all_same(draws_in_children(4, math.random)), "control: forked math.random repeats")
    assert.is_false(all_same(draws_in_children(4, core.random)))
  end)
end)
