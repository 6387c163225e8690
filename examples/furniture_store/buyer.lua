--- One buyer, as its own OS process: looks up the customer and the product,
--- waits for a start time on the server's clock (so that several buyers
--- started together really race), then places the order with
--- store.place_order (SELECT … FOR UPDATE, stock check, commit).
---
---   lua5.4 examples/furniture_store/buyer.lua EMAIL SKU QUANTITY [START_AT [HOLD]]
---
--- START_AT is a server time ("2024-05-01 12:00:00.250000"; default: now).
--- HOLD is how many seconds the buyer keeps the rows locked once it has
--- them and the stock suffices (the time a payment provider takes;
--- default 0). The database comes from the environment, as for the store
--- (DATABASE_URL, DATABASE_URL_AUTH, …).
---
--- Prints one line and exits 0 when the order was placed, 3 when it was
--- refused (a business answer such as "insufficient stock for …"), 1 on
--- any other failure:
---   buyer Ada Lovelace: order #7 placed, total 349.00 (row lock after 0.00 s)
---   buyer Søren Kierkegaard: refused: insufficient stock for Lounge Chair Hygge (row lock after 0.41 s)

local here = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = here .. "/../?.lua;" .. package.path

local store = require("furniture_store.store")

local email, sku, quantity = arg[1], arg[2], tonumber(arg[3])
local start_at, hold = arg[4], tonumber(arg[5] or "0")
if not (email and sku and quantity and hold) then
  io.stderr:write("usage: buyer.lua EMAIL SKU QUANTITY [START_AT [HOLD]]\n")
  os.exit(2)
end

local function fail(what, err, errno)
  io.stdout:write(("buyer %s: FAILED: %s: %s%s\n"):format(email, what, tostring(err),
    errno and (" (errno " .. tostring(errno) .. ")") or ""))
  os.exit(1)
end

local db, derr = store.open{ engine_options = { pool_size = 1, max_overflow = 0, pool_timeout = 10 } }
if not db then fail("configuration", derr) end

-- Who and what, before the start: the race is only about the order itself.
local found, err, errno = store.with_session(db, function(s)
  local c, e1, n1 = s:select("customers", { columns = { "id", "name" }, where = { email = email } })
  if not c then return nil, e1, n1 end
  local p, e2, n2 = s:select("products", { columns = { "id" }, where = { sku = sku } })
  if not p then return nil, e2, n2 end
  if not c[1] then return nil, "no customer with the email " .. email end
  if not p[1] then return nil, "no product with the SKU " .. sku end
  -- Wait for the start line (the server's clock is the one both buyers share).
  if start_at then
    local ok, e3, n3 = s:execute("DO SLEEP(GREATEST(0, TIMESTAMPDIFF(MICROSECOND, SYSDATE(6), ?)) / 1000000)",
      start_at)
    if not ok then return nil, e3, n3 end
  else
    local now, e3, n3 = s:execute("SELECT SYSDATE(6) AS t")
    if not now then return nil, e3, n3 end
    start_at = now[1].t
  end
  return { customer_id = c[1].id, name = c[1].name, product_id = p[1].id }
end)
if not found then fail("lookup", err, errno) end

local waited = "?"
local order_id, total
order_id, total, errno = store.place_order(db, found.customer_id,
  { { product_id = found.product_id, quantity = quantity } }, {
    on_locked = function(s, products)
      -- How long after the start this buyer got the row locks.
      local rows = s:execute("SELECT TIMESTAMPDIFF(MICROSECOND, ?, SYSDATE(6)) / 1000000 AS s", start_at)
      if rows then waited = ("%.2f"):format(tonumber(rows[1].s)) end
      if hold > 0 and products[1] and products[1].stock >= quantity then
        s:execute("DO SLEEP(?)", hold)   -- taking the payment, rows still locked
      end
    end,
  })
db:dispose()

if order_id then
  io.stdout:write(("buyer %s: order #%d placed, total %s (row lock after %s s)\n"):format(
    found.name, order_id, total, waited))
  os.exit(0)
elseif errno == nil then
  io.stdout:write(("buyer %s: refused: %s (row lock after %s s)\n"):format(found.name, total, waited))
  os.exit(3)
end
fail("place_order", total, errno)
