--- fsdb.markers — commit markers: what a lost COMMIT did.
--
-- With the engine option commit_markers = true, a session writes one row
-- into fsdb_commit_markers inside each transaction, right before COMMIT,
-- keyed by a random id. When the connection dies during COMMIT, a fresh
-- connection looks the id up: found, the transaction committed; absent,
-- it did not. The lookup is a locking read, so a transaction the server is
-- still finishing is waited for (up to 10 s) instead of being misread as
-- rolled back. On a Galera node it is also a causal read (wsrep_sync_wait
-- = 1): the fresh connection may be on another node, which answers from
-- what it has applied so far, and a commit certified elsewhere may not be
-- applied there yet. Old markers are deleted now and then by later commits.
local sqltext = require("fsdb.sqltext")

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

--- The lookup statement (one ? for the id); galera: the server is a
--- Galera node (wsrep on), where the read must be causal.
-- syntax: sql = markers.lookup_sql(galera)
function _M.lookup_sql(galera)
  local settings = "innodb_lock_wait_timeout = " .. sqltext.number(LOOKUP_WAIT)
  if galera then settings = settings .. ", wsrep_sync_wait = 1" end
  return "SET STATEMENT " .. settings .. " FOR SELECT COUNT(*) AS n FROM " .. sqltext.ident(_M.TABLE)
    .. " WHERE id = ? LOCK IN SHARE MODE"
end

local UNKNOWN_VARIABLE = 1193 -- a server built without wsrep has no wsrep_on

-- Whether conn's server is a Galera node: true/false, or nil, err, errno,
-- sqlstate when that cannot be asked (the outcome stays unknown).
local function galera(conn)
  local res, err, errno, sqlstate = conn:query("SELECT @@global.wsrep_on AS w")
  if res then return tonumber(res[1].w) == 1 end
  if errno == UNKNOWN_VARIABLE then return false end
  return nil, err, errno, sqlstate
end

--- After a COMMIT lost with its connection: true = committed, false = not
--- committed, nil, err, errno, sqlstate = still unknown (no connection).
function _M.resolve(engine, id)
  local conn, err, errno, sqlstate = engine:connect()
  if not conn then return nil, err, errno, sqlstate end
  local on_galera, res
  on_galera, err, errno, sqlstate = galera(conn)
  if on_galera ~= nil then
    res, err, errno, sqlstate = conn:query(_M.lookup_sql(on_galera), { id })
  end
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
