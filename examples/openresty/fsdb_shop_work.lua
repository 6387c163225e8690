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
-- The tables are the furniture store's default bind (plain DDL in
-- schema.sql next to this file, so that this example can make them on its
-- own), and the store logic is the furniture store's (examples/
-- furniture_store/store.lua), called with the request's session in place
-- of the store's db: this module adds only what HTTP needs (argument
-- checks that answer 400, statuses, JSON). The store's `auth` bind is not
-- used here.

local cjson = require("cjson")
local store = require("furniture_store.store")

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

-- The outcome of a unit of work as status, body: a refusal (nil, err
-- without errno) becomes its HTTP status; a database failure stays
-- nil, err, errno, sqlstate.
local function outcome(a, b, c, d)
  if a ~= nil then return a, b end
  if c == nil then return refusal(b) end
  return nil, b, c, d
end

-- Runs fn() in a transaction of the request's session, with meta.conn_id
-- recorded first. fn returns status, body on success; nil, err (no errno)
-- for a refusal; nil, err, errno, sqlstate for a database failure.
local function in_transaction(s, meta, fn)
  return outcome(s:transaction(function()
    local conn, err, errno, sqlstate = conn_of(s, meta)
    if not conn then return nil, err, errno, sqlstate end
    return fn()
  end))
end

----------------------------------------------------------------------------
-- Products
----------------------------------------------------------------------------

-- A price filter as the DECIMAL text the store binds, or nil.
local function price_text(v)
  v = tostring(v)
  if v:match("^%d+$") or v:match("^%d+%.%d+$") then return v end
  return nil
end

--- GET /products?category=&min_price=&max_price=&in_stock= — products,
--- cheapest first (store.list_products: category by name or slug, prices
--- compared as DECIMAL, every filter bound).
-- syntax: status, body = work.list_products(s, args, meta)
function work.list_products(s, args, meta)
  local filter = {}
  if args.category ~= nil then
    if type(args.category) ~= "string" or args.category == "" then
      return bad_request("category must be a non-empty string")
    end
    filter.category = args.category
  end
  for _, k in ipairs({ "min_price", "max_price" }) do
    if args[k] ~= nil then
      filter[k] = price_text(args[k])
      if not filter[k] then
        return bad_request(k .. " must be a decimal number such as 400 or 399.90")
      end
    end
  end
  if args.in_stock ~= nil then
    local v = tostring(args.in_stock)
    if v == "1" or v == "true" then
      filter.in_stock = true
    elseif v == "0" or v == "false" then
      filter.in_stock = false
    else
      return bad_request("in_stock must be 1, 0, true or false")
    end
  end
  return in_transaction(s, meta, function()
    local rows, err, errno, sqlstate = store.list_products(s, filter)
    if not rows then return nil, err, errno, sqlstate end
    rows.columns = nil
    return 200, { products = work.array(rows) }
  end)
end

----------------------------------------------------------------------------
-- Orders
----------------------------------------------------------------------------

--- POST /orders {customer_id =, items = {{product_id =, quantity =}, …}}
--- → 201 {order_id, total}; out of stock → 409; unknown customer or
--- product → 404. store.place_order in the request's session: one
--- transaction, product rows locked in id order with SELECT … FOR UPDATE,
--- the total summed by the server; a deadlock or lock-wait timeout runs it
--- again (work.retries times).
-- syntax: status, body = work.place_order(s, args, meta)
function work.place_order(s, args, meta)
  local customer_id = positive_int(args.customer_id)
  if not customer_id then
    return bad_request("customer_id must be a positive whole number")
  end
  if type(args.items) ~= "table" or #args.items == 0 or #args.items > 100 then
    return bad_request("items must be a list of 1 to 100 {product_id, quantity}")
  end
  local items = {}
  for i, item in ipairs(args.items) do
    local product_id = type(item) == "table" and positive_int(item.product_id)
    local quantity = type(item) == "table" and positive_int(item.quantity)
    if not product_id or not quantity then
      return bad_request(("item #%d needs a positive whole product_id and quantity"):format(i))
    end
    items[i] = { product_id = product_id, quantity = quantity }
  end
  local order_id, total, errno, sqlstate = store.place_order(s, customer_id, items, {
    retries = work.retries,
    on_locked = function(locked) conn_of(locked, meta) end,
  })
  if order_id then return 201, { order_id = order_id, total = total } end
  return outcome(nil, total, errno, sqlstate)
end

--- GET /orders/<id> → {id, customer_id, customer, status, total, created_at,
--- items = {{product_id, name, quantity, unit_price, amount}, …}}.
-- syntax: status, body = work.get_order(s, args, meta)
function work.get_order(s, args, meta)
  local order_id = positive_int(args.id)
  if not order_id then
    return bad_request("the order id must be a positive whole number")
  end
  return in_transaction(s, meta, function()
    local order, err, errno, sqlstate = store.get_order(s, order_id)
    if not order then return nil, err, errno, sqlstate end
    order.items.columns = nil
    order.items = work.array(order.items)
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
  return in_transaction(s, meta, function()
    local id, err, errno, sqlstate = s:insert("customers", { name = args.name, email = args.email })
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
  return in_transaction(s, meta, function()
    local rows, err, errno, sqlstate = s:execute("SELECT CONNECTION_ID() AS id")
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

--- The furniture store's demo catalog (store.CATALOG; the customers'
--- passwords belong to the auth bind, which this example does not use).
work.CATALOG = store.CATALOG

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
    for _, t in ipairs(store.TABLES.default) do
      local n, err, errno, sqlstate = s:delete(t, require("fsdb").all)
      if not n then return nil, err, errno, sqlstate end
    end
    local ids = { categories = {}, products = {}, customers = {} }
    for _, name in ipairs(work.CATALOG.categories) do
      local slug = name:lower():gsub("%s+", "-")
      local id, err, errno, sqlstate = s:insert("categories", { name = name, slug = slug })
      if not id then return nil, err, errno, sqlstate end
      ids.categories[name] = id
    end
    for _, p in ipairs(work.CATALOG.products) do
      local id, err, errno, sqlstate = s:insert("products", { category_id = ids.categories[p.category],
        sku = p.sku, name = p.name, price = p.price, stock = p.stock, image_path = p.image_path })
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
