--- The furniture store's units of work for the OpenResty example.
--
-- Every function here takes a session, the request's arguments (a plain
-- table) and a `meta` table it fills with diagnostics (meta.conn_id: the
-- server's id of the connection the work ran on), and returns
--
--   status, body                 the HTTP status and a table to send as JSON
--                                (success, or a refusal after rollback)
--   nil, err, errno, sqlstate    a database failure (fsdb's four values)
--
-- Nothing here touches `ngx`: the same code runs in the request's Lua VM
-- (blocking mode) and in a worker-thread VM (ngx.run_worker_thread), where
-- most of the ngx API does not exist. Each unit of work is one transaction
-- (s:transaction), so it is committed or rolled back before the function
-- returns; the request's log phase only has to clean up after a Lua error.
--
-- The tables are the furniture store's (examples/furniture_store; plain DDL
-- in schema.sql next to this file), and the order is placed the way the
-- store places it: product rows locked in id order with SELECT … FOR
-- UPDATE, stock checked and decremented, money summed by the server as
-- DECIMAL. This module keeps its own copy of that logic and of a small
-- catalog, so the example stands on its own.

local cjson = require("cjson")

local unpack = table.unpack or unpack

local work = {}

-- Lists that must stay JSON arrays when empty (cjson would write {}).
local ARRAY = {}
local EMPTY_ARRAY = "\0fsdb:empty-array\0"

--- Marks t as a list for work.to_json (an empty one becomes []).
-- syntax: t = work.array(t)
function work.array(t)
  return setmetatable(t, ARRAY)
end

local function mark_empty(v)
  if type(v) ~= "table" then return v end
  if getmetatable(v) == ARRAY and next(v) == nil then return EMPTY_ARRAY end
  local copy = {}
  for k, x in pairs(v) do copy[k] = mark_empty(x) end
  return copy
end

--- The JSON text of a response body (fsdb.null → null, empty lists → []).
-- syntax: text = work.to_json(body)
function work.to_json(body)
  local text = cjson.encode(mark_empty(body))
  return (text:gsub('"\\u0000fsdb:empty%-array\\u0000"', "[]"))
end

--- How often an order is run again after a deadlock or lock-wait timeout.
work.retries = 2

--- Seconds an order waits for a row lock before failing with 1205 (a web
--- request should fail fast and let the client retry on 503 Retry-After,
--- rather than hold a worker for the server's default of 50 s).
work.lock_wait_timeout = 1

--- Engine options for a pool used by ONE request at a time: a blocking
--- worker (one request in the database at a time: it never yields while a
--- session holds a connection) or one worker-thread VM (one call at a time).
--- pool_timeout is short on purpose: in blocking mode a wait for a free
--- connection blocks the whole worker, and nothing in that worker can
--- return one meanwhile.
-- syntax: opts = work.engine_options()
function work.engine_options()
  return {
    pool_size = 1,
    max_overflow = 2,
    pool_timeout = 1,
    pool_recycle = 3600,
    init_command = ("SET SESSION innodb_lock_wait_timeout = %d"):format(work.lock_wait_timeout),
  }
end

-- A refusal (nil, err without errno) → its HTTP status.
local function refusal(err)
  err = tostring(err)
  if err:find("^no such ") then
    return 404, { error = err }
  end
  return 409, { error = err }
end

local function bad_request(msg)
  return 400, { error = msg }
end

-- A positive whole number from a JSON or query-string value, or nil.
local function positive_int(v)
  if type(v) == "string" and v:match("^%d+$") then v = tonumber(v) end
  if type(v) ~= "number" or v < 1 or v ~= math.floor(v) or v > 2 ^ 31 then
    return nil
  end
  return math.tointeger and math.tointeger(v) or v -- Lua 5.4: 5.0 → 5
end

-- The connection of the session's default bind (inside its transaction);
-- records its server id in meta.
local function conn_of(s, meta)
  local conn, err, errno, sqlstate = s:connection()
  if not conn then return nil, err, errno, sqlstate end
  meta.conn_id = conn:thread_id()
  return conn
end

-- Runs fn(s) in a transaction and turns the outcome into status, body:
-- fn returns status, body on success; nil, err (no errno) for a refusal;
-- nil, err, errno, sqlstate for a database failure.
local function in_transaction(s, opts, fn)
  local a, b, c, d = s:transaction(fn, opts)
  if a ~= nil then return a, b end
  if c == nil then return refusal(b) end
  return nil, b, c, d
end

----------------------------------------------------------------------------
-- Products
----------------------------------------------------------------------------

local PRODUCTS_SQL = "SELECT p.id, p.sku, p.name, c.name AS category, p.price, p.stock"
  .. " FROM products p JOIN categories c ON c.id = p.category_id"

--- GET /products?category=&max_price=&in_stock= — products, cheapest
--- first (the furniture store's filters, all bound).
-- syntax: status, body = work.list_products(s, args, meta)
function work.list_products(s, args, meta)
  local where, params = {}, {}
  if args.category ~= nil then
    if type(args.category) ~= "string" or args.category == "" then
      return bad_request("category must be a non-empty string")
    end
    where[#where + 1] = "c.name = ?"
    params[#params + 1] = args.category
  end
  if args.max_price ~= nil then
    local v = tostring(args.max_price)
    if not v:match("^%d+$") and not v:match("^%d+%.%d+$") then
      return bad_request("max_price must be a decimal number such as 400 or 399.90")
    end
    where[#where + 1] = "p.price <= CAST(? AS DECIMAL(12,2))"
    params[#params + 1] = v
  end
  if args.in_stock ~= nil then
    local v = tostring(args.in_stock)
    if v == "1" or v == "true" then
      where[#where + 1] = "p.stock > 0"
    elseif v == "0" or v == "false" then
      where[#where + 1] = "p.stock = 0"
    else
      return bad_request("in_stock must be 1, 0, true or false")
    end
  end
  local sql = PRODUCTS_SQL
    .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "")
    .. " ORDER BY p.price, p.id"
  return in_transaction(s, nil, function()
    local conn, err, errno, sqlstate = conn_of(s, meta)
    if not conn then return nil, err, errno, sqlstate end
    local rows
    rows, err, errno, sqlstate = s:execute(sql, unpack(params, 1, #params))
    if not rows then return nil, err, errno, sqlstate end
    rows.columns = nil
    return 200, { products = work.array(rows) }
  end)
end

----------------------------------------------------------------------------
-- Orders
----------------------------------------------------------------------------

-- One attempt at an order, inside the session transaction. Returns
-- order_id, total; nil, err for a refusal; nil, err, errno, sqlstate.
local function order_body(s, customer_id, lines)
  local rows, err, errno, sqlstate = s:select("customers",
    { columns = { "id" }, where = { id = customer_id } })
  if not rows then return nil, err, errno, sqlstate end
  if not rows[1] then return nil, ("no such customer #%d"):format(customer_id) end

  -- Lock the product rows in id order until commit: a second buyer of the
  -- same product waits here, then sees the stock this order left.
  local ids = {}
  for i, line in ipairs(lines) do ids[i] = line.product_id end
  local products
  products, err, errno, sqlstate = s:select("products", { columns = { "id", "name", "price", "stock" },
    where = { id = ids }, order_by = "id", for_update = true })
  if not products then return nil, err, errno, sqlstate end
  local by_id = {}
  for _, p in ipairs(products) do by_id[p.id] = p end
  for _, line in ipairs(lines) do
    local p = by_id[line.product_id]
    if not p then return nil, ("no such product #%d"):format(line.product_id) end
    if p.stock < line.quantity then return nil, "insufficient stock for " .. p.name end
  end

  local order_id
  order_id, err, errno, sqlstate = s:insert("orders", { customer_id = customer_id })
  if not order_id then return nil, err, errno, sqlstate end
  for _, line in ipairs(lines) do
    local res
    res, err, errno, sqlstate = s:execute("UPDATE products SET stock = stock - ? WHERE id = ?",
      line.quantity, line.product_id)
    if not res then return nil, err, errno, sqlstate end
    -- unit_price: the locked row's DECIMAL string, stored exactly.
    res, err, errno, sqlstate = s:insert("order_items", { order_id = order_id,
      product_id = line.product_id, quantity = line.quantity, unit_price = by_id[line.product_id].price })
    if not res then return nil, err, errno, sqlstate end
  end
  local res
  res, err, errno, sqlstate = s:execute("UPDATE orders SET total = (SELECT SUM(quantity * unit_price)"
    .. " FROM order_items WHERE order_id = ?) WHERE id = ?", order_id, order_id)
  if not res then return nil, err, errno, sqlstate end
  rows, err, errno, sqlstate = s:select("orders", { columns = { "total" }, where = { id = order_id } })
  if not rows then return nil, err, errno, sqlstate end
  return order_id, rows[1].total
end

--- POST /orders {customer_id =, items = {{product_id =, quantity =}, …}}
--- → 201 {order_id, total}; out of stock → 409; unknown customer or
--- product → 404. One transaction, rows locked with SELECT … FOR UPDATE;
--- a deadlock or lock-wait timeout runs it again (work.retries times).
-- syntax: status, body = work.place_order(s, args, meta)
function work.place_order(s, args, meta)
  local customer_id = positive_int(args.customer_id)
  if not customer_id then
    return bad_request("customer_id must be a positive whole number")
  end
  if type(args.items) ~= "table" or #args.items == 0 or #args.items > 100 then
    return bad_request("items must be a list of 1 to 100 {product_id, quantity}")
  end
  -- Repeated products merged; sorted by id so that every order locks its
  -- rows in the same order (fewer deadlocks).
  local by_id, lines = {}, {}
  for i, item in ipairs(args.items) do
    local product_id = type(item) == "table" and positive_int(item.product_id)
    local quantity = type(item) == "table" and positive_int(item.quantity)
    if not product_id or not quantity then
      return bad_request(("item #%d needs a positive whole product_id and quantity"):format(i))
    end
    local line = by_id[product_id]
    if line then
      line.quantity = line.quantity + quantity
    else
      line = { product_id = product_id, quantity = quantity }
      by_id[product_id] = line
      lines[#lines + 1] = line
    end
  end
  table.sort(lines, function(a, b) return a.product_id < b.product_id end)
  return in_transaction(s, { retries = work.retries }, function()
    local conn, err, errno, sqlstate = conn_of(s, meta)
    if not conn then return nil, err, errno, sqlstate end
    local order_id, total
    order_id, total, errno, sqlstate = order_body(s, customer_id, lines)
    if not order_id then return nil, total, errno, sqlstate end
    return 201, { order_id = order_id, total = total }
  end)
end

--- GET /orders/<id> → {id, customer_id, customer, status, total, items}.
-- syntax: status, body = work.get_order(s, args, meta)
function work.get_order(s, args, meta)
  local order_id = positive_int(args.id)
  if not order_id then
    return bad_request("the order id must be a positive whole number")
  end
  return in_transaction(s, nil, function()
    local conn, err, errno, sqlstate = conn_of(s, meta)
    if not conn then return nil, err, errno, sqlstate end
    local rows
    rows, err, errno, sqlstate = s:execute(
      "SELECT o.id, o.customer_id, c.name AS customer, o.status, o.total, o.created_at"
        .. " FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", order_id)
    if not rows then return nil, err, errno, sqlstate end
    local order = rows[1]
    if not order then return nil, ("no such order #%d"):format(order_id) end
    local items
    items, err, errno, sqlstate = s:execute(
      "SELECT oi.product_id, p.name, oi.quantity, oi.unit_price"
        .. " FROM order_items oi JOIN products p ON p.id = oi.product_id"
        .. " WHERE oi.order_id = ? ORDER BY oi.id", order_id)
    if not items then return nil, err, errno, sqlstate end
    items.columns = nil
    order.items = work.array(items)
    return 200, order
  end)
end

----------------------------------------------------------------------------
-- Customers
----------------------------------------------------------------------------

--- POST /customers {name =, email =} → 201 {id}; a taken email is the
--- server's duplicate-key error (1062), which the caller maps to 409.
-- syntax: status, body = work.create_customer(s, args, meta)
function work.create_customer(s, args, meta)
  if type(args.name) ~= "string" or args.name == "" or #args.name > 200 then
    return bad_request("name must be a string of 1 to 200 bytes")
  end
  if type(args.email) ~= "string" or not args.email:match("^[^@%s]+@[^@%s]+$") or #args.email > 254 then
    return bad_request("email must look like an e-mail address")
  end
  return in_transaction(s, nil, function()
    local conn, err, errno, sqlstate = conn_of(s, meta)
    if not conn then return nil, err, errno, sqlstate end
    local id
    id, err, errno, sqlstate = s:insert("customers", { name = args.name, email = args.email })
    if not id then return nil, err, errno, sqlstate end
    return 201, { id = id }
  end)
end

----------------------------------------------------------------------------
-- Diagnostics (the /_debug/ locations; loopback only)
----------------------------------------------------------------------------

--- Which connection serves this request: the server's CONNECTION_ID()
--- (asked with a round trip) next to the client's idea of it.
-- syntax: status, body = work.whoami(s, args, meta)
function work.whoami(s, args, meta)
  return in_transaction(s, nil, function()
    local conn, err, errno, sqlstate = conn_of(s, meta)
    if not conn then return nil, err, errno, sqlstate end
    local rows
    rows, err, errno, sqlstate = s:execute("SELECT CONNECTION_ID() AS id")
    if not rows then return nil, err, errno, sqlstate end
    return 200, { conn_id = rows[1].id, client_thread_id = meta.conn_id }
  end)
end

--- A request that fails half-way: it changes a product's stock through the
--- session (outside any transaction(), so the session transaction stays
--- open), then raises. Nothing may stay locked or written: in blocking mode
--- the log phase closes the session (rolling back), in worker-thread mode
--- the thread's own wrapper does.
-- syntax: work.fail_after_write(s, args, meta)  -- always raises
function work.fail_after_write(s, args, meta)
  local product_id = positive_int(args.product_id)
  if not product_id then
    return bad_request("product_id must be a positive whole number")
  end
  local conn, err, errno, sqlstate = conn_of(s, meta)
  if not conn then return nil, err, errno, sqlstate end
  local n
  n, err, errno, sqlstate = s:update("products", { stock = 1000000 }, { id = product_id })
  if not n then return nil, err, errno, sqlstate end
  error("simulated failure after a write (this request must leave nothing behind)", 0)
end

----------------------------------------------------------------------------
-- Set-up (scripts/openresty and the spec; not used by requests)
----------------------------------------------------------------------------

--- A small catalog. Prices are strings: they go to DECIMAL columns exactly.
work.CATALOG = {
  categories = { { "Sofas", "sofas" }, { "Tables", "tables" }, { "Chairs", "chairs" },
                 { "Lighting", "lighting" } },
  products = {
    { sku = "SOF-001", category = "Sofas", name = "Kanapé Ølstrup 🛋", price = "899.00", stock = 3 },
    { sku = "SOF-002", category = "Sofas", name = "Chesterfield Classic", price = "1499.99", stock = 2 },
    { sku = "TAB-001", category = "Tables", name = "Oak Dining Table", price = "649.50", stock = 5 },
    { sku = "TAB-002", category = "Tables", name = "Side Table Birk", price = "79.90", stock = 10 },
    { sku = "CHA-001", category = "Chairs", name = "Windsor Chair", price = "129.00", stock = 12 },
    { sku = "CHA-003", category = "Chairs", name = "Desk Chair Ergo", price = "249.95", stock = 0 },
    { sku = "LIG-001", category = "Lighting", name = "Floor Lamp Lumen", price = "59.99", stock = 7 },
    { sku = "LIG-002", category = "Lighting", name = "Pendant Lamp Ängsö", price = "89.90", stock = 6 },
  },
  customers = {
    { name = "Ada Lovelace", email = "ada@example.com" },
    { name = "Søren Kierkegaard", email = "soren@example.dk" },
    { name = "Grace Hopper", email = "grace@example.com" },
  },
}

--- Runs schema.sql (CREATE TABLE IF NOT EXISTS …), one statement at a time.
-- syntax: n, err, errno, sqlstate = work.create_schema(engine, path)
function work.create_schema(engine, path)
  local f, ferr = io.open(path, "rb")
  if not f then return nil, "cannot read the schema: " .. tostring(ferr) end
  local text = f:read("*a")
  f:close()
  local kept = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if not line:match("^%s*%-%-") then kept[#kept + 1] = line end
  end
  local n = 0
  for stmt in (table.concat(kept, "\n") .. "\n"):gmatch("(.-);[ \t\r]*\n") do
    if stmt:match("%S") then
      local ok, err, errno, sqlstate = engine:execute(stmt)
      if not ok then return nil, err, errno, sqlstate end
      n = n + 1
    end
  end
  return n
end

--- Empties the tables and inserts work.CATALOG in one transaction.
--- Returns { categories = {name → id}, products = {sku → id},
--- customers = {email → id} }.
-- syntax: ids, err, errno, sqlstate = work.seed(session)
function work.seed(s)
  return s:transaction(function()
    for _, t in ipairs({ "order_items", "orders", "products", "customers", "categories" }) do
      local n, err, errno, sqlstate = s:delete(t, {})
      if not n then return nil, err, errno, sqlstate end
    end
    local ids = { categories = {}, products = {}, customers = {} }
    for _, c in ipairs(work.CATALOG.categories) do
      local id, err, errno, sqlstate = s:insert("categories", { name = c[1], slug = c[2] })
      if not id then return nil, err, errno, sqlstate end
      ids.categories[c[1]] = id
    end
    for _, p in ipairs(work.CATALOG.products) do
      local id, err, errno, sqlstate = s:insert("products", { category_id = ids.categories[p.category],
        sku = p.sku, name = p.name, price = p.price, stock = p.stock })
      if not id then return nil, err, errno, sqlstate end
      ids.products[p.sku] = id
    end
    for _, c in ipairs(work.CATALOG.customers) do
      local id, err, errno, sqlstate = s:insert("customers", { name = c.name, email = c.email })
      if not id then return nil, err, errno, sqlstate end
      ids.customers[c.email] = id
    end
    return ids
  end)
end

--- Operations the HTTP layer may call by name (run_worker_thread passes names).
work.OPS = {
  list_products = true, place_order = true, get_order = true,
  create_customer = true, whoami = true, fail_after_write = true,
}

return work
