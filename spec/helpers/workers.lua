-- Forked worker processes for the drills (switch-over, Galera, restart):
-- each worker runs step() in a loop for a given time and writes what
-- happened, one line per call, to a file of its own; the parent breaks
-- things meanwhile, then waits for every worker and reads the lines back.
--
--   local workers = require("helpers.workers")
--   local run = workers.start({ count = 8, seconds = 6,
--     init = function(w) return fsdb.engine.new(url) end,     -- in the child
--     step = function(engine, w, n, out) out:write("ok ", w, "-", n, "\n") end,
--     pause = 0.01 })                                         -- optional
--   … break things …
--   run:wait()                        -- asserts each worker exited cleanly
--   run:each(function(w, line) … end) -- every line; the files are removed
local th = require("fsdb_testhelper")
local luassert = require("luassert")

local _M = {}

local Run = {}
Run.__index = Run

-- The body of worker w in the child; a raise is written to its fatal file.
local function child(dir, w, spec)
  local ok, err = pcall(function()
    math.randomseed(th.getpid())
    local ctx = spec.init and spec.init(w)
    local out = assert(io.open(dir .. "/w" .. w, "w"))
    local n, t_end = 0, th.now() + spec.seconds
    while th.now() < t_end do
      n = n + 1
      spec.step(ctx, w, n, out)
      out:flush()
      if spec.pause then th.sleep(spec.pause) end
    end
    out:close()
  end)
  if not ok then
    local f = io.open(dir .. "/fatal" .. w, "w")
    if f then f:write(tostring(err)) f:close() end
  end
  th.exit(ok and 0 or 1)
end

--- Forks spec.count workers at once; returns the run.
function _M.start(spec)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("env -u LD_PRELOAD mkdir " .. dir))
  local run = setmetatable({ dir = dir, pids = {} }, Run)
  for w = 1, spec.count do
    local pid = assert(th.fork())
    if pid == 0 then child(dir, w, spec) end
    run.pids[w] = pid
  end
  return run
end

--- Waits for every worker; asserts that each exited 0 (else its error).
function Run:wait()
  for w, pid in ipairs(self.pids) do
    local status = th.waitpid(pid)
    local path = self.dir .. "/fatal" .. w
    local f = io.open(path)
    luassert.are.equal(0, status, f and f:read("*a") or "")
    if f then f:close() os.remove(path) end
  end
end

--- Calls fn(w, line) for every line of every worker, in worker order,
--- then removes the files.
function Run:each(fn)
  for w = 1, #self.pids do
    local path = self.dir .. "/w" .. w
    for line in io.lines(path) do fn(w, line) end
    os.remove(path)
  end
  os.remove(self.dir)
end

return _M
