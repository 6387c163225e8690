--- fsdb.markers — commit markers: what a lost COMMIT did.
--
-- With the engine option commit_markers = true, a session writes one row
-- into fsdb_commit_markers inside each transaction, right before COMMIT,
-- keyed by a random id. When the connection dies during COMMIT, a fresh
-- connection looks the id up: found, the transaction committed; absent,
-- it did not. The lookup is a locking read, so a transaction the server is
-- still finishing is waited for (up to 10 s) instead of being misread as
-- rolled back. Old markers are deleted now and then by later commits.
local _M = {}

_M.TABLE = "fsdb_commit_markers"
local KEEP_SECONDS = 3600       -- markers older than this are deleted
local CLEAN_EVERY = 600         -- seconds between two clean-ups per engine
local LOOKUP_WAIT = 10          -- innodb_lock_wait_timeout of the lookup

local CREATE = "CREATE TABLE IF NOT EXISTS " .. _M.TABLE
  .. " (id CHAR(32) NOT NULL PRIMARY KEY, created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
  .. " KEY (created)) ENGINE=InnoDB"

--- Whether the engine (an fsdb.engine object) writes markers.
function _M.enabled(engine)
  return type(engine) == "table" and type(engine.options) == "table" and engine.options.commit_markers == true
end

local counter = 0

--- A random id: 16 bytes of /dev/urandom as hex (a clock, the address of
--- a fresh table and a counter when that cannot be read).
function _M.new_id()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(16)
  if f then f:close() end
  if bytes and #bytes == 16 then
    return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  end
  counter = counter + 1
  local seed = ("%s%s%d%d"):format(os.time(), tostring({}), counter, math.random(0, 0x7fffffff))
  local h = 0
  local out = {}
  for i = 1, 4 do
    for k = 1, #seed do h = (h * 31 + seed:byte(k) + i) % 4294967296 end
    out[i] = ("%08x"):format(h)
  end
  return table.concat(out)
end

--- Makes sure the table exists (once per engine, on a pooled connection of
--- its own, outside any transaction).
-- syntax: ok, err, errno, sqlstate = markers.prepare(engine)
function _M.prepare(engine)
  if engine._markers_ready then return true end
  local ok, err, errno, sqlstate = engine:execute(CREATE)
  if not ok then return nil, err, errno, sqlstate end
  engine._markers_ready = true
  return true
end

--- Writes the marker inside conn's transaction.
-- syntax: ok, err, errno, sqlstate = markers.write(conn, id)
function _M.write(conn, id)
  return conn:execute("INSERT INTO " .. _M.TABLE .. " (id) VALUES (?)", id)
end

--- After a COMMIT lost with its connection: true = committed, false = not
--- committed, nil, err, errno, sqlstate = still unknown (no connection).
function _M.resolve(engine, id)
  local conn, err, errno, sqlstate = engine:connect()
  if not conn then return nil, err, errno, sqlstate end
  local res
  res, err, errno, sqlstate = conn:query("SET STATEMENT innodb_lock_wait_timeout = " .. LOOKUP_WAIT
    .. " FOR SELECT COUNT(*) AS n FROM " .. _M.TABLE .. " WHERE id = ? LOCK IN SHARE MODE", { id })
  conn:close()
  if not res then return nil, err, errno, sqlstate end
  return tonumber(res[1].n) > 0
end

--- Deletes old markers, at most every CLEAN_EVERY seconds per engine.
function _M.maybe_clean(engine)
  local now = os.time()
  if engine._markers_cleaned and now - engine._markers_cleaned < CLEAN_EVERY then return end
  engine._markers_cleaned = now
  engine:execute("DELETE FROM " .. _M.TABLE .. " WHERE created < NOW() - INTERVAL " .. KEEP_SECONDS
    .. " SECOND LIMIT 10000")
end

return _M
