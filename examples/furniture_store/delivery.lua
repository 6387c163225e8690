--- A delivery being booked in, as its own OS process: adds stock for each
--- line of the delivery note in one transaction, in the order of the note,
--- pausing before the last line (a clerk scanning boxes).
---
---   lua5.4 examples/furniture_store/delivery.lua PAUSE SKU:+N [SKU:+N …]
---
--- Unlike store.place_order, which locks its rows in product-id order, this
--- locks them in the order of the note. An order that locks the same rows
--- the other way round then deadlocks with it: InnoDB rolls one of the two
--- transactions back (errno 1213) — the one that has done less work — and
--- place_order runs its transaction again (demo.lua shows it).
---
--- During the pause the process holds the named lock
--- "furniture_store.delivery" (GET_LOCK, until it exits), so others can see
--- that the first rows are locked. Prints one line; exits 0 when booked in,
--- 1 otherwise.

local here = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = here .. "/../?.lua;" .. package.path

local store = require("furniture_store.store")

local pause = tonumber(arg[1] or "")
local lines = {}
for i = 2, #arg do
  local sku, n = arg[i]:match("^([%w_-]+):%+(%d+)$")
  if not sku then pause = nil break end
  lines[#lines + 1] = { sku = sku, quantity = tonumber(n) }
end
if not pause or #lines == 0 then
  io.stderr:write("usage: delivery.lua PAUSE SKU:+N [SKU:+N ...]\n")
  os.exit(2)
end

local db, derr = store.open{ engine_options = { pool_size = 1, max_overflow = 0, pool_timeout = 10 } }
if not db then
  io.stdout:write("delivery: FAILED: " .. tostring(derr) .. "\n")
  os.exit(1)
end

local attempts = 0
local booked, err, errno = store.with_session(db, function(s)
  return s:transaction(function()
    attempts = attempts + 1
    local names = {}
    for i, line in ipairs(lines) do
      if i == #lines and pause > 0 then
        -- The first lines are locked now: tell the world, then pause.
        local ok, e3, n3 = s:execute("DO GET_LOCK('furniture_store.delivery', 10)")
        if ok then ok, e3, n3 = s:execute("DO SLEEP(?)", pause) end
        if not ok then return nil, e3, n3 end
      end
      local upd, e4, n4 = s:execute("UPDATE products SET stock = stock + ? WHERE sku = ?", line.quantity, line.sku)
      if not upd then return nil, e4, n4 end
      if upd.affected_rows == 0 then return nil, "no product with the SKU " .. line.sku end
      names[#names + 1] = ("+%d %s"):format(line.quantity, line.sku)
    end
    return names
  end, { retries = 3 })
end)
-- Disconnecting also releases the named lock.
db:dispose()

if booked then
  io.stdout:write(("delivery: booked in %s (attempt %d)\n"):format(table.concat(booked, ", "), attempts))
  os.exit(0)
end
io.stdout:write(("delivery: FAILED: %s%s\n"):format(tostring(err), errno and (" (errno " .. errno .. ")") or ""))
os.exit(1)
