--- The furniture store, told as a story: set-up, catalog, orders, two
--- buyers racing for the last chair, a cancellation, the sales report,
--- an image in a BLOB and the pool's state at the end.
---
--- The database comes from the environment, as in the store itself:
--- DATABASE_URL, else DB_USER / DB_PASSWORD / DB_HOST / DB_PORT / DB_NAME
--- (or DB_SOCKET), else a .env file. `make demo` (scripts/demo) starts a
--- throwaway MariaDB and runs this file with lua5.4.
---
--- Every step checks what it did; anything unexpected raises an error, so
--- the process exits non-zero.

local here = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = here .. "/../?.lua;" .. package.path

local fsdb = require("fsdb")
local store = require("furniture_store.store")

local STEPS = 10
local step_no = 0

local function step(title)
  step_no = step_no + 1
  io.write(("\n[%d/%d] %s\n"):format(step_no, STEPS, title))
end

local function say(fmt, ...)
  io.write("  ", fmt:format(...), "\n")
end

-- An unexpected outcome: stop the demo with a non-zero exit.
local function check(cond, fmt, ...)
  if not cond then
    error("demo: unexpected: " .. fmt:format(...), 2)
  end
  return cond
end

-- A store or fsdb call that must succeed.
local function must(v, err, errno, sqlstate)
  if v == nil then
    error(("demo: %s%s"):format(tostring(err),
      errno and (" [errno %s, sqlstate %s]"):format(errno, tostring(sqlstate)) or ""), 2)
  end
  return v, err
end

local function exec(conn, sql, ...)
  return must(conn:execute(sql, ...))
end

-- "1058.80" -> 105880: exact integer cents, for checking sums without floats.
local function cents(s)
  local int, frac = tostring(s):match("^(%d+)%.(%d%d)$")
  check(int, "not a DECIMAL(…,2) string: %s", tostring(s))
  return tonumber(int) * 100 + tonumber(frac)
end

local function stock_of(engine, product_id)
  return must(store.get_product(engine, product_id)).stock
end

local function count(engine, sql, ...)
  return must(engine:execute(sql, ...))[1].n
end

----------------------------------------------------------------------------

local engine = fsdb.engine.new(nil, { pool_size = 2, max_overflow = 2, pool_timeout = 10 })
local schema_path = here .. "/schema.sql"

step("Set-up: schema.sql on the database from the environment")
do
  local info = must(store.with_connection(engine, function(conn) return conn:info() end))
  say("database    %s", engine:url())
  say("server      MariaDB/MySQL %s via %s, charset %s", info.server_version, info.host_info, info.charset)
  local n = must(store.setup(engine, schema_path))
  check(n == #store.TABLES, "schema.sql ran %d statements, expected %d", n, #store.TABLES)
  say("ran %d CREATE TABLE statements; tables %s are ready and empty", n, table.concat(store.TABLES, ", "))
end

step("Seed: categories, products and customers with bound parameters")
local ids = must(store.seed(engine))
do
  local n_cat = count(engine, "SELECT COUNT(*) AS n FROM categories")
  local n_prod = count(engine, "SELECT COUNT(*) AS n FROM products")
  local n_cust = count(engine, "SELECT COUNT(*) AS n FROM customers")
  check(n_cat == #store.CATALOG.categories and n_prod == #store.CATALOG.products
    and n_cust == #store.CATALOG.customers, "seeded %d/%d/%d rows", n_cat, n_prod, n_cust)
  say("%d categories, %d products, %d customers", n_cat, n_prod, n_cust)
  local sofa = must(store.get_product(engine, ids.products["SOF-001"]))
  check(sofa.name == "Kanapé Ølstrup 🛋", "unicode name came back as %q", sofa.name)
  say("unicode round trip: %s (%d bytes of UTF-8)", sofa.name, #sofa.name)
end
local ADA = ids.customers["ada@example.com"]
local SOREN = ids.customers["soren@example.dk"]
local GRACE = ids.customers["grace@example.com"]
local P = ids.products

step("Catalog: in stock and at most 400.00 (filters travel as bound parameters)")
do
  local rows = must(store.list_products(engine, { in_stock = true, max_price = "400.00" }))
  say("%-4s %-8s %-9s %10s %6s  %s", "id", "sku", "category", "price", "stock", "name")
  local skus = {}
  for _, r in ipairs(rows) do
    say("%-4d %-8s %-9s %10s %6d  %s", r.id, r.sku, r.category, r.price, r.stock, r.name)
    skus[#skus + 1] = r.sku
  end
  local want = "LIG-001 TAB-002 LIG-002 CHA-001 CHA-002 BED-001"
  check(table.concat(skus, " ") == want, "filtered listing was %s, expected %s", table.concat(skus, " "), want)
  local sneaky = must(store.list_products(engine, { category = "Chairs' OR '1'='1" }))
  check(#sneaky == 0, "an injection attempt in a filter returned %d rows", #sneaky)
  say("(category = \"Chairs' OR '1'='1\" finds nothing: it is a value, not SQL)")
end

step("Orders: each one transaction with SELECT … FOR UPDATE, totals computed in SQL")
local placed = {}
do
  local story = {
    { who = "Ada Lovelace", customer = ADA, total = "1138.70",
      items = { { product_id = P["SOF-001"], quantity = 1 }, { product_id = P["TAB-002"], quantity = 3 } } },
    { who = "Søren Kierkegaard", customer = SOREN, total = "1165.50",
      items = { { product_id = P["TAB-001"], quantity = 1 }, { product_id = P["CHA-001"], quantity = 4 } } },
    { who = "Grace Hopper", customer = GRACE, total = "269.87",
      items = { { product_id = P["LIG-001"], quantity = 3 }, { product_id = P["LIG-002"], quantity = 1 } } },
  }
  for _, o in ipairs(story) do
    local before = {}
    for _, it in ipairs(o.items) do before[it.product_id] = stock_of(engine, it.product_id) end
    local order_id, total = must(store.place_order(engine, o.customer, o.items))
    check(total == o.total, "order total %s, expected exactly %s", tostring(total), o.total)
    local lines = {}
    for _, it in ipairs(o.items) do
      local after = stock_of(engine, it.product_id)
      check(after == before[it.product_id] - it.quantity, "stock of product #%d went %d -> %d after buying %d",
        it.product_id, before[it.product_id], after, it.quantity)
      local p = must(store.get_product(engine, it.product_id))
      lines[#lines + 1] = ("%d × %s @ %s"):format(it.quantity, p.name, p.price)
    end
    say("order #%d for %s: %s = %s", order_id, o.who, table.concat(lines, " + "), total)
    placed[#placed + 1] = order_id
  end
  local float = 79.90 * 3
  say("(3 × 79.90 is 239.70 as DECIMAL in SQL; with Lua floats it would be %.17g)", float)

  -- A business refusal: not enough stock. Nothing may change.
  local orders_before = count(engine, "SELECT COUNT(*) AS n FROM orders")
  local chesterfield = stock_of(engine, P["SOF-002"])
  local id, err, errno = store.place_order(engine, GRACE, {
    { product_id = P["LIG-002"], quantity = 1 }, { product_id = P["SOF-002"], quantity = 3 } })
  check(id == nil and err == "insufficient stock for Chesterfield Classic" and errno == nil,
    "Grace's 3 Chesterfields: %s, %s", tostring(id), tostring(err))
  check(stock_of(engine, P["SOF-002"]) == chesterfield, "refused order changed the stock")
  check(count(engine, "SELECT COUNT(*) AS n FROM orders") == orders_before, "refused order left an order row")
  say("Grace Hopper wants 3 Chesterfield Classic (%d in stock): refused: %s", chesterfield, err)
  say("  rolled back: stock still %d, still %d orders", chesterfield, orders_before)
end

step("Two buyers, one Lounge Chair Hygge left: row lock vs. lock wait timeout")
do
  local chair = P["CHA-002"]
  local items = { { product_id = chair, quantity = 1 } }
  check(stock_of(engine, chair) == 1, "the chair should have 1 in stock")
  local conn_a = must(engine:connect())
  local conn_b
  local ok, failure = pcall(function()
    -- Buyer A opens a transaction and locks the row: order written, not committed.
    exec(conn_a, "START TRANSACTION")
    local a_id, a_total, a_errno = store.order_in_transaction(conn_a, ADA, items)
    check(a_id, "buyer A could not reserve the chair: %s (%s)", tostring(a_total), tostring(a_errno))
    say("buyer A (Ada, thread %d): SELECT … FOR UPDATE holds the row; order #%d written, not committed",
      conn_a:thread_id(), a_id)

    -- Buyer B, on a second connection of the same engine, wants it too.
    conn_b = must(engine:connect())
    exec(conn_b, "SET SESSION innodb_lock_wait_timeout = 1")
    exec(conn_b, "START TRANSACTION")
    local t0 = exec(conn_b, "SELECT SYSDATE(6) AS t")[1].t
    local b_id, b_err, b_errno = store.order_in_transaction(conn_b, SOREN, items)
    local waited = exec(conn_b, "SELECT TIMESTAMPDIFF(MICROSECOND, ?, SYSDATE(6)) / 1e6 AS s", t0)[1].s
    exec(conn_b, "ROLLBACK")
    check(b_id == nil and b_errno == 1205,
      "buyer B should have waited for A's lock and timed out (1205), got %s, %s, %s",
      tostring(b_id), tostring(b_err), tostring(b_errno))
    say("buyer B (Søren, thread %d): waited %.1f s for that row, then: %s", conn_b:thread_id(), waited, b_err)
    say("buyer B: errno %d (lock wait timeout) -> rolled back, will try again", b_errno)

    exec(conn_a, "COMMIT")
    say("buyer A: order #%d placed, total %s", a_id, a_total)
    placed[#placed + 1] = a_id

    -- B's second try goes through the public API (its own transaction).
    exec(conn_b, "SET SESSION innodb_lock_wait_timeout = DEFAULT")
    conn_b:close()
    conn_b = nil
    local id2, err2, errno2 = store.place_order(engine, SOREN, items)
    check(id2 == nil and errno2 == nil and err2 == "insufficient stock for Lounge Chair Hygge",
      "buyer B's retry: %s, %s, %s", tostring(id2), tostring(err2), tostring(errno2))
    say("buyer B: refused: %s", err2)
  end)
  if conn_b then
    pcall(conn_b.execute, conn_b, "SET SESSION innodb_lock_wait_timeout = DEFAULT")
    conn_b:close()
  end
  conn_a:close()
  if not ok then error(failure, 0) end
  local left = stock_of(engine, chair)
  local sold = count(engine, "SELECT COUNT(*) AS n FROM order_items WHERE product_id = ?", chair)
  check(left == 0 and sold == 1, "after the race: stock %d, sold %d (expected 0 and 1)", left, sold)
  say("exactly one chair sold, stock now %d", left)
end

step("Cancel an order: stock goes back in the same transaction")
do
  local order_id = placed[3]
  local lamps = stock_of(engine, P["LIG-001"])
  local restored = must(store.cancel_order(engine, order_id))
  local parts = {}
  for _, it in ipairs(restored) do parts[#parts + 1] = ("%d × %s"):format(it.quantity, it.name) end
  check(stock_of(engine, P["LIG-001"]) == lamps + 3, "cancel did not restore the floor lamps")
  local order = must(store.get_order(engine, order_id))
  check(order.status == "cancelled", "order #%d has status %s", order_id, order.status)
  say("order #%d (%s, %s) cancelled; back in stock: %s", order_id, order.customer, order.total,
    table.concat(parts, ", "))
  local again, err = store.cancel_order(engine, order_id)
  check(again == nil and err == ("order #%d is already cancelled"):format(order_id),
    "cancelling twice: %s", tostring(err))
  say("cancelling it again: %s", err)
end

step("Sales report: SUM of DECIMAL per category (placed orders only)")
do
  local report = must(store.sales_report(engine))
  say("%-10s %6s %6s %12s", "category", "orders", "units", "revenue")
  local sum = 0
  local want = { Sofas = "899.00", Chairs = "865.00", Tables = "889.20", Beds = "0.00", Lighting = "0.00" }
  for _, r in ipairs(report) do
    say("%-10s %6d %6d %12s", r.category, r.orders, r.units, r.revenue)
    check(want[r.category] == r.revenue, "%s revenue %s, expected %s", r.category, r.revenue,
      tostring(want[r.category]))
    sum = sum + cents(r.revenue)
  end
  say("%-10s %6d %6s %12s", "total", report.orders, "", report.total)
  check(report.total == "2653.20" and report.orders == 3, "report total %s over %d orders",
    report.total, report.orders)
  check(sum == cents(report.total), "categories add up to %d cents, orders to %s", sum, report.total)
  say("the categories add up to the orders' totals to the cent")
end

step("Image in a LONGBLOB: store and fetch, byte for byte")
do
  -- A made-up "PNG": the real signature, every byte value, then noise.
  local parts = { "\137PNG\r\n\26\n" }
  for i = 0, 255 do parts[#parts + 1] = string.char(i) end
  local x = 1
  for _ = 1, 200000 do
    x = (x * 75 + 74) % 65537
    parts[#parts + 1] = string.char(x % 256)
  end
  local bytes = table.concat(parts)
  local product = P["SOF-001"]
  local n = must(store.store_image(engine, product, bytes))
  local back = must(store.fetch_image(engine, product))
  check(type(back) == "string" and back == bytes, "the image came back different (%s, %d bytes)",
    type(back), type(back) == "string" and #back or -1)
  say("stored %d bytes for product #%d, fetched %d bytes: identical byte for byte", n, product, #back)
  say("(NUL and 0xFF included; products.image_path is the lighter alternative: %s)",
    must(store.get_product(engine, product)).image_path)
  local none = must(store.fetch_image(engine, P["BED-001"]))
  check(none == fsdb.null, "a product without an image should give fsdb.null")
  say("a product without an image gives fsdb.null")
end

step("Stock after the story")
do
  local rows = must(store.list_products(engine, {}))
  table.sort(rows, function(a, b) return a.id < b.id end)
  local parts = {}
  for _, r in ipairs(rows) do parts[#parts + 1] = ("%s %d"):format(r.sku, r.stock) end
  say("%s", table.concat(parts, ", "))
  local want = { ["SOF-001"] = 2, ["SOF-002"] = 2, ["TAB-001"] = 4, ["TAB-002"] = 7, ["CHA-001"] = 8,
                 ["CHA-002"] = 0, ["CHA-003"] = 0, ["BED-001"] = 4, ["LIG-001"] = 7, ["LIG-002"] = 6 }
  for _, r in ipairs(rows) do
    check(want[r.sku] == r.stock, "%s has stock %d, expected %s", r.sku, r.stock, tostring(want[r.sku]))
  end
end

step("Pool status")
do
  local st = engine:status()
  local keys = { "size", "max_overflow", "checked_out", "idle", "overflow", "connects", "pings",
                 "invalidated", "timeouts", "waits" }
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = ("%s=%s"):format(k, tostring(st[k])) end
  say("%s", table.concat(parts, " "))
  check(st.checked_out == 0, "%d connection(s) still checked out", st.checked_out)
  say("checked_out = 0: every connection went back to the pool")
  engine:dispose()
end

io.write("\nThe furniture store demo finished: all checks passed.\n")
