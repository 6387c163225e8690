--- The furniture store, told as a story: the databases as the migrations
--- left them, the catalog, a sign-in, orders, two buyers (two processes)
--- racing for the last chair, a deadlock and its retry, a cancellation,
--- the sales report, an image in a LONGBLOB and as a file, and the pool of
--- each database at the end.
---
--- The databases come from the environment, as in the store itself:
--- DATABASE_URL (else DB_USER / DB_PASSWORD / DB_HOST / DB_PORT / DB_NAME
--- or DB_SOCKET, else ./.env) and DATABASE_URL_AUTH (else the main
--- database's name + "_auth"). Both must be at the head revision of
--- migrations/ and migrations_auth/ (`fsdb upgrade`). `make demo`
--- (scripts/demo) starts a throwaway MariaDB, runs the migrations and then
--- this file with lua5.4.
---
--- The demo empties the store's tables first. Every step checks what it
--- did; anything unexpected raises an error, so the process exits non-zero.

local here = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = here .. "/../?.lua;" .. package.path

local fsdb = require("fsdb")
local store = require("furniture_store.store")

io.stdout:setvbuf("line")

local STEPS = 12
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

-- "1058.80" -> 105880: exact integer cents, for checking sums without floats.
local function cents(s)
  local int, frac = tostring(s):match("^(%d+)%.(%d%d)$")
  check(int, "not a DECIMAL(…,2) string: %s", tostring(s))
  return tonumber(int) * 100 + tonumber(frac)
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

-- The interpreter running this file, to start the helper processes with.
local function interpreter()
  local i, lua = -1, nil
  while arg and arg[i] do lua = arg[i]; i = i - 1 end
  return lua or "lua5.4"
end

-- Starts `lua <here>/<script> args…` in the background; returns a reader
-- for its output (which waits for the process to end).
local function spawn(script, ...)
  local words = { shell_quote(interpreter()), shell_quote(here .. "/" .. script) }
  for _, a in ipairs({ ... }) do words[#words + 1] = shell_quote(a) end
  local p = assert(io.popen(table.concat(words, " ") .. " 2>&1", "r"))
  return function()
    local out = p:read("*a")
    p:close()
    return (out:gsub("%s+$", ""))
  end
end

local db = must(store.open())
local engine = db.engine

local function one(sql, ...)
  return must(engine:execute(sql, ...))[1]
end

local function stock_of(sku)
  return one("SELECT stock FROM products WHERE sku = ?", sku).stock
end

----------------------------------------------------------------------------

step("Two databases, as the migrations left them")
local P, C
do
  for _, bind in ipairs({ "default", "auth" }) do
    local e = db:get_engine(bind)
    local row = must(e:execute("SELECT DATABASE() AS db, VERSION() AS version,"
      .. " (SELECT GROUP_CONCAT(version_num) FROM alembic_version) AS revision"))[1]
    say("%-7s %s  (MariaDB/MySQL %s, revision %s)", bind, e:url(), row.version, tostring(row.revision))
    check(row.revision ~= fsdb.null, "bind %s has no revision: run `fsdb upgrade` first", bind)
  end
  local slugs = {}
  for _, r in ipairs(must(engine:execute("SELECT slug FROM categories ORDER BY id"))) do slugs[#slugs + 1] = r.slug end
  say("categories from the first migration, slugs backfilled by the third: %s", table.concat(slugs, ", "))
  check(#slugs == 5, "expected the 5 categories of the first migration, found %d", #slugs)
end

step("Seed: products (one executemany) and customers with their credentials")
do
  must(store.reset(db))
  local ids = must(store.seed(db))
  P, C = ids.products, ids.customers
  local n = one("SELECT (SELECT COUNT(*) FROM products) AS products, (SELECT COUNT(*) FROM customers) AS customers")
  local users = must(db.engines.auth:execute("SELECT COUNT(*) AS n FROM users"))[1].n
  check(n.products == #store.CATALOG.products and n.customers == #store.CATALOG.customers
    and users == n.customers, "seeded %d products, %d customers, %d users", n.products, n.customers, users)
  say("%d products and %d customers in the store database, %d users (salted SHA-256) in the auth database",
    n.products, n.customers, users)
  local sofa = must(store.get_product(db, P["SOF-001"]))
  check(sofa.name == "Kanapé Ølstrup 🛋", "unicode name came back as %q", sofa.name)
  say("utf8mb4 round trip: %s (%d bytes of UTF-8)", sofa.name, #sofa.name)
end

step("Sign-in on the auth bind (passwords are bound parameters, never printed)")
do
  local ada = store.CATALOG.customers[1]
  local id, name = must(store.authenticate(db, ada.email, ada.password))
  check(id == C[ada.email], "Ada signed in as customer #%s", tostring(id))
  say("%s with the right password: signed in as customer #%d, %s", ada.email, id, name)
  local nope, err = store.authenticate(db, ada.email, ada.password .. "!")
  check(nope == nil and err == "wrong email or password", "a wrong password gave %s, %s", tostring(nope), tostring(err))
  say("%s with a wrong password: %s", ada.email, err)
  local logins = must(db.engines.auth:execute(
    "SELECT SUM(succeeded) AS ok, SUM(NOT succeeded) AS failed FROM logins"))[1]
  check(tonumber(logins.ok) == 1 and tonumber(logins.failed) == 1, "logins: %s ok, %s failed",
    tostring(logins.ok), tostring(logins.failed))
  say("the auth database's logins table recorded 1 successful and 1 failed attempt")
end

step("Catalog: in stock and at most 400.00 (filters travel as bound parameters)")
do
  local rows = must(store.list_products(db, { in_stock = true, max_price = "400.00" }))
  say("%-8s %-9s %10s %6s  %s", "sku", "category", "price", "stock", "name")
  local skus = {}
  for _, r in ipairs(rows) do
    say("%-8s %-9s %10s %6d  %s", r.sku, r.category, r.price, r.stock, r.name)
    skus[#skus + 1] = r.sku
  end
  local want = "LIG-001 TAB-002 LIG-002 CHA-001 CHA-002 BED-001"
  check(table.concat(skus, " ") == want, "filtered listing was %s, expected %s", table.concat(skus, " "), want)
  local sneaky = must(store.list_products(db, { category = "chairs' OR '1'='1" }))
  check(#sneaky == 0, "an injection attempt in a filter returned %d rows", #sneaky)
  say("(category = \"chairs' OR '1'='1\" finds nothing: it is a value, not SQL)")
end

step("Orders: each one transaction with SELECT … FOR UPDATE, totals computed in SQL")
local placed = {}
do
  local story = {
    { email = "ada@example.com", total = "1138.70", items = { { "SOF-001", 1 }, { "TAB-002", 3 } } },
    { email = "soren@example.dk", total = "1165.50", items = { { "TAB-001", 1 }, { "CHA-001", 4 } } },
    { email = "grace@example.com", total = "269.87", items = { { "LIG-001", 3 }, { "LIG-002", 1 } } },
  }
  for _, o in ipairs(story) do
    local items, before, lines = {}, {}, {}
    for i, it in ipairs(o.items) do
      items[i] = { product_id = P[it[1]], quantity = it[2] }
      before[it[1]] = stock_of(it[1])
    end
    local order_id, total = must(store.place_order(db, C[o.email], items))
    check(total == o.total, "order total %s, expected exactly %s", tostring(total), o.total)
    local order = must(store.get_order(db, order_id))
    for _, it in ipairs(order.items) do
      lines[#lines + 1] = ("%d × %s @ %s"):format(it.quantity, it.name, it.unit_price)
    end
    for _, it in ipairs(o.items) do
      check(stock_of(it[1]) == before[it[1]] - it[2], "stock of %s did not go down by %d", it[1], it[2])
    end
    say("order #%d for %s: %s = %s", order_id, order.customer, table.concat(lines, " + "), total)
    placed[#placed + 1] = order_id
  end
  say("(3 × 79.90 is 239.70 as DECIMAL in SQL; with Lua floats it would be %.17g)", 79.90 * 3)

  -- A business refusal: not enough stock. Nothing may change.
  local orders_before = one("SELECT COUNT(*) AS n FROM orders").n
  local chesterfields = stock_of("SOF-002")
  local id, err, errno = store.place_order(db, C["grace@example.com"], {
    { product_id = P["LIG-002"], quantity = 1 }, { product_id = P["SOF-002"], quantity = 3 } })
  check(id == nil and err == "insufficient stock for Chesterfield Classic" and errno == nil,
    "Grace's 3 Chesterfields: %s, %s", tostring(id), tostring(err))
  check(stock_of("SOF-002") == chesterfields and stock_of("LIG-002") == 5, "the refused order changed the stock")
  check(one("SELECT COUNT(*) AS n FROM orders").n == orders_before, "the refused order left an order row")
  say("Grace Hopper wants a pendant lamp and 3 Chesterfield Classic (%d in stock): refused: %s", chesterfields, err)
  say("  rolled back as a whole: the lamp's stock is untouched, still %d orders", orders_before)
end

step("Two buyers (two processes), one Lounge Chair Hygge left")
do
  check(stock_of("CHA-002") == 1, "the chair should have 1 in stock")
  -- A start line on the server's clock, half a second from now; each buyer
  -- keeps the row locked for 0.4 s once it has it ("taking the payment").
  local start_at = one("SELECT SYSDATE(6) + INTERVAL 500000 MICROSECOND AS t").t
  say("two processes (buyer.lua), Ada and Søren, both start at %s server time", start_at)
  local a = spawn("buyer.lua", "ada@example.com", "CHA-002", "1", start_at, "0.4")
  local b = spawn("buyer.lua", "soren@example.dk", "CHA-002", "1", start_at, "0.4")
  local outs = { a(), b() }
  local won, lost = 0, 0
  for _, out in ipairs(outs) do
    say("%s", out)
    if out:match("^buyer .-: order #%d+ placed, total 349%.00 ") then
      won = won + 1
    elseif out:match("^buyer .-: refused: insufficient stock for Lounge Chair Hygge ") then
      lost = lost + 1
    end
  end
  check(won == 1 and lost == 1, "expected one order and one refusal, got %d and %d", won, lost)
  local sold = one("SELECT COUNT(*) AS n FROM order_items WHERE product_id = ?", P["CHA-002"]).n
  check(stock_of("CHA-002") == 0 and sold == 1, "after the race: stock %d, sold %d", stock_of("CHA-002"), sold)
  say("the loser waited for the winner's row lock (SELECT … FOR UPDATE), then saw stock 0")
  say("exactly one chair sold, stock now 0")
end

step("A deadlock and its retry: a delivery locks the lamps the other way round")
do
  -- The delivery (its own process) books in +1 TAB-001, +4 CHA-001 and
  -- +2 LIG-002, then pauses 0.8 s before +3 LIG-001. Grace orders both
  -- lamps meanwhile: place_order locks LIG-001 first (id order), then
  -- waits for LIG-002. When the delivery reaches LIG-001, each waits for
  -- the other: InnoDB rolls back the transaction that did less work.
  local d = spawn("delivery.lua", "0.8", "TAB-001:+1", "CHA-001:+4", "LIG-002:+2", "LIG-001:+3")
  local seen = false
  for _ = 1, 100 do
    if one("SELECT IS_USED_LOCK('furniture_store.delivery') AS id").id ~= fsdb.null then
      seen = true
      break
    end
    must(engine:execute("DO SLEEP(0.05)"))
  end
  check(seen, "the delivery process did not start (output: %s)", seen or d())
  local retries = {}
  local order_id, total, errno = store.place_order(db, C["grace@example.com"], {
    { product_id = P["LIG-001"], quantity = 1 }, { product_id = P["LIG-002"], quantity = 1 } }, {
    on_retry = function(attempt, last_errno)
      retries[#retries + 1] = ("attempt %d after errno %s"):format(attempt, tostring(last_errno))
    end,
  })
  local out = d()
  check(order_id, "Grace's lamps: %s (errno %s)", tostring(total), tostring(errno))
  say("%s", out)
  check(out:match("^delivery: booked in ") ~= nil, "the delivery failed: %s", out)
  if #retries == 0 then
    -- On a very busy machine the delivery may finish its pause before
    -- Grace's order locks the first lamp (no deadlock then), or InnoDB may
    -- pick the delivery as the victim (it retries on its own).
    say("no retry this time (%s): order #%d placed, total %s",
      out:match("attempt 1") and "the delivery was done first" or "the delivery was rolled back", order_id, total)
  else
    check(#retries == 1 and retries[1] == "attempt 2 after errno 1213",
      "expected one retry after a deadlock (1213), got: %s", table.concat(retries, "; "))
    say("Grace's order: deadlock (errno 1213), InnoDB rolled her attempt back; place_order ran it again")
    say("%s: order #%d placed, total %s", retries[1], order_id, total)
  end
  check(total == "149.89", "lamps total %s", total)
  placed[#placed + 1] = order_id
end

step("Cancel an order: stock goes back in the same transaction")
do
  local order_id = placed[3]
  local lamps = stock_of("LIG-001")
  local restored = must(store.cancel_order(db, order_id))
  local parts = {}
  for _, it in ipairs(restored) do parts[#parts + 1] = ("%d × %s"):format(it.quantity, it.name) end
  check(stock_of("LIG-001") == lamps + 3, "cancel did not restore the floor lamps")
  local order = must(store.get_order(db, order_id))
  check(order.status == "cancelled", "order #%d has status %s", order_id, order.status)
  say("order #%d (%s, %s) cancelled; back in stock: %s", order_id, order.customer, order.total,
    table.concat(parts, ", "))
  local again, err = store.cancel_order(db, order_id)
  check(again == nil and err == ("order #%d is already cancelled"):format(order_id),
    "cancelling twice: %s", tostring(err))
  say("cancelling it again: %s", err)
end

step("Sales report: SUM of DECIMAL per category, one snapshot")
do
  local report = must(store.sales_report(db))
  say("%-10s %6s %6s %12s", "category", "orders", "units", "revenue")
  local sum = 0
  local want = { Sofas = "899.00", Chairs = "865.00", Tables = "889.20", Lighting = "149.89", Beds = "0.00" }
  for _, r in ipairs(report) do
    say("%-10s %6d %6d %12s", r.category, r.orders, r.units, r.revenue)
    check(want[r.category] == r.revenue, "%s revenue %s, expected %s", r.category, r.revenue,
      tostring(want[r.category]))
    sum = sum + cents(r.revenue)
  end
  say("%-10s %6d %6d %12s", "total", report.orders, report.units, report.total)
  check(report.total == "2803.09" and report.orders == 4 and report.cancelled == 1,
    "report total %s over %d orders (%d cancelled)", report.total, report.orders, report.cancelled)
  check(sum == cents(report.total), "categories add up to %d cents, orders to %s", sum, report.total)
  say("%d placed orders, %d cancelled; the categories add up to the orders' totals to the cent",
    report.orders, report.cancelled)
  local top = {}
  for i, p in ipairs(report.top_products) do top[i] = ("%s (%d, %s)"):format(p.name, p.units, p.revenue) end
  say("best sellers: %s", table.concat(top, ", "))
end

step("Images: a LONGBLOB byte for byte, and the recommended file + path")
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
  local product = P["SOF-002"]
  local n = must(store.store_image(db, product, bytes))
  local back = must(store.fetch_image(db, product))
  check(type(back) == "string" and back == bytes, "the image came back different (%s, %d bytes)",
    type(back), type(back) == "string" and #back or -1)
  say("LONGBLOB: stored %d bytes, fetched %d: identical byte for byte (NUL and 0xFF included)", n, #back)
  check(must(store.fetch_image(db, P["BED-001"])) == fsdb.null, "a product without an image should give fsdb.null")
  say("a product without an image gives fsdb.null")

  local root = os.tmpname()
  os.remove(root)
  check(os.execute("mkdir -p " .. shell_quote(root .. "/images/products")), "cannot create %s", root)
  local ok, failure = pcall(function()
    local path = must(store.save_image_file(db, product, bytes, root))
    local again, stored = must(store.load_image_file(db, product, root))
    check(again == bytes and stored == path, "the image file came back different")
    say("file: %d bytes written to <images root>/%s, only the path is in products.image_path", #bytes, path)
  end)
  os.remove(root .. "/images/products/SOF-002.png")
  os.remove(root .. "/images/products")
  os.remove(root .. "/images")
  os.remove(root)
  if not ok then error(failure, 0) end
  say("(the file is the lighter choice: pages and backups do not drag the bytes through the database)")
end

step("Stock after the story")
do
  local rows = must(engine:execute("SELECT sku, stock FROM products ORDER BY id"))
  local parts = {}
  local want = { ["SOF-001"] = 2, ["SOF-002"] = 2, ["TAB-001"] = 5, ["TAB-002"] = 7, ["CHA-001"] = 12,
                 ["CHA-002"] = 0, ["CHA-003"] = 0, ["BED-001"] = 4, ["LIG-001"] = 9, ["LIG-002"] = 7 }
  for _, r in ipairs(rows) do
    parts[#parts + 1] = ("%s %d"):format(r.sku, r.stock)
    check(want[r.sku] == r.stock, "%s has stock %d, expected %s", r.sku, r.stock, tostring(want[r.sku]))
  end
  say("%s", table.concat(parts, ", "))
end

step("Pool status of each bind")
do
  local keys = { "size", "max_overflow", "checked_out", "idle", "overflow", "connects", "pings",
                 "invalidated", "timeouts", "waits" }
  local status = store.pool_status(db)
  for _, bind in ipairs({ "default", "auth" }) do
    local st = status[bind]
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = ("%s=%s"):format(k, tostring(st[k])) end
    say("%-7s %s", bind, table.concat(parts, " "))
    check(st.checked_out == 0, "%d connection(s) of bind %s still checked out", st.checked_out, bind)
  end
  say("checked_out=0 on both: every session returned its connections")
  db:dispose()
end

io.write("\nThe furniture store demo finished: all checks passed.\n")
