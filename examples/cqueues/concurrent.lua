-- fsdb under a lua-cqueues scheduler: many coroutines, one pooled
-- connection each, and a wait for the server never blocks the others.
--
--   DATABASE_URL=mysql://user:pass@127.0.0.1/db lua5.4 examples/cqueues/concurrent.lua [workers] [queries]
--
-- Each worker runs its queries (SELECT SLEEP(0.05)) in a session on the
-- cqueues transport; the run takes about queries × 0.05 s, not workers
-- times that.
local cqueues = require("cqueues")
local fsdb = require("fsdb")

local workers = tonumber(arg[1]) or 50
local queries = tonumber(arg[2]) or 20

local engine = fsdb.engine.new(os.getenv("DATABASE_URL"), {
  transport = "cqueues",   -- the codec over cqueues sockets
  pool_size = workers,      -- one connection per coroutine
  max_overflow = 0,
})

local loop = cqueues.new()
local done, failed = 0, 0
local started = cqueues.monotime()

for w = 1, workers do
  loop:wrap(function()
    local conn = assert(engine:connect())
    for q = 1, queries do
      local res, err = conn:execute("SELECT SLEEP(0.05) AS slept, ? AS worker, ? AS n", w, q)
      if res and res[1].worker == w and res[1].n == q then
        done = done + 1
      else
        failed = failed + 1
        io.stderr:write(("worker %d query %d: %s\n"):format(w, q, tostring(err)))
      end
    end
    conn:close()
  end)
end

assert(loop:loop())
local elapsed = cqueues.monotime() - started
local serial = workers * queries * 0.05
print(("%d coroutines x %d queries: %d ok, %d failed in %.2f s (serial: %.1f s, %.0fx faster)")
  :format(workers, queries, done, failed, elapsed, serial, serial / elapsed))
local st = engine:status()
print(("pool: %d connections opened, %d idle"):format(st.connects, st.idle))
engine:dispose()
os.exit(failed == 0 and 0 or 1)
