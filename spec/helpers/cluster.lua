-- Test clusters for the integration specs: scripts/testdb's replication
-- mode (a primary and two GTID replicas) and galera mode (three nodes), on
-- loopback ports, started and stopped by the spec that needs one.
--
--   local cluster = require("helpers.cluster")
--   local c = cluster.start("replication")   -- raises when it cannot start
--   c.url                   -- a multi-host URL of all nodes
--   c.nodes[i].url / .root_url / .port / .state
--   c:sql(i, "SQL")         -- as root over the node's socket; raises on error
--   c:kill(i)               -- SIGKILL the node's mariadbd
--   c:restart(i)            -- start it again on its datadir and port
--   c:stop()               -- stop every node, remove the state directory
--
--   local c = cluster.shared("galera")  -- inside describe(): one cluster for
--   c:track(engine)        -- the block (setup/teardown); tracked engines are
--                          -- disposed before it stops
--
-- Each process keeps its cluster in .testdb-<kind>.<pid>, so parallel runs
-- in one checkout do not collide; a start sweeps the directories of runs
-- whose process is gone.
local busted = require("busted")

local _M = {}

local Cluster = {}
Cluster.__index = Cluster

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The ASan run preloads its runtime into every child; the shell tools
-- testdb runs (chown, sed, date…) would each report their own leaks.
local CLEAN_ENV = "env -u LD_PRELOAD "

local function run(cmd)
  local ok = os.execute(CLEAN_ENV .. cmd)
  return ok == true or ok == 0
end

-- The values of a file of `export NAME='value'` lines written by testdb.
local function read_env(path)
  local f = assert(io.open(path, "rb"))
  local vars = {}
  for line in f:lines() do
    local name, rest = line:match("^export ([%w_]+)=(.*)$")
    if name then
      -- 'a'\''b' -> a'b ; a bare word stays as it is
      local v = rest:gsub("'\\''", "\0"):gsub("^'(.*)'$", "%1"):gsub("%z", "'")
      vars[name] = v
    end
  end
  f:close()
  return vars
end

-- This process's id: each run keeps its cluster in a directory of its own,
-- so two runs in one checkout (make test and make asan, two busted
-- processes) never share one.
local function own_pid()
  local f = io.open("/proc/self/stat", "rb")
  if f then
    local pid = tonumber((f:read("*l") or ""):match("^%d+"))
    f:close()
    if pid then return pid end
  end
  local p = io.popen("echo $PPID")   -- the shell's parent: this process
  local pid = tonumber(p:read("*a"):match("%d+"))
  p:close()
  return assert(pid, "cannot find this process's id")
end

local function alive(pid)
  return run("kill -0 " .. pid .. " 2>/dev/null")
end

-- A run that crashed (or was killed) left its directory, and maybe its
-- servers, behind: stop and remove those whose process is gone.
local function sweep(kind)
  local p = io.popen("ls -1d .testdb-" .. kind .. ".* 2>/dev/null")
  local names = p:read("*a")
  p:close()
  for name in names:gmatch("[^\n]+") do
    local dir_pid = name:match("^%.testdb%-%a+%.(%d+)$")
    local pid = dir_pid or name:match("^%.testdb%-%a+%.(%d+)%.log$")
    if pid and not alive(pid) then
      if dir_pid then
        run("scripts/testdb stop " .. sh_quote(name) .. " >/dev/null 2>&1")
      end
      run("rm -rf -- " .. sh_quote(name))
    end
  end
end

--- Starts a cluster of kind "replication" or "galera" in
--- .testdb-<kind>.<pid>, removed again by stop().
function _M.start(kind)
  assert(kind == "replication" or kind == "galera", "unknown cluster kind")
  sweep(kind)
  local state = ".testdb-" .. kind .. "." .. own_pid()
  run("scripts/testdb stop " .. sh_quote(state) .. " >/dev/null 2>&1")
  if not run("scripts/testdb " .. kind .. " " .. sh_quote(state) .. " >" .. sh_quote(state .. ".log") .. " 2>&1") then
    local f = io.open(state .. ".log", "rb")
    local log = f and f:read("*a") or ""
    if f then f:close() end
    os.remove(state .. ".log")
    run("rm -rf -- " .. sh_quote(state))
    error("could not start the " .. kind .. " cluster:\n" .. log, 2)
  end
  os.remove(state .. ".log")
  local env = read_env(state .. "/cluster.env")
  local c = setmetatable({ kind = kind, state = state, url = env.FSDB_CLUSTER_URL, engines = {},
                           password = env.FSDB_CLUSTER_PASSWORD,
                           start_seconds = tonumber(env.FSDB_CLUSTER_START_SECONDS), nodes = {} }, Cluster)
  for i = 1, tonumber(env.FSDB_CLUSTER_NODES) do
    local p = "FSDB_CLUSTER_NODE" .. i .. "_"
    c.nodes[i] = { port = tonumber(env[p .. "PORT"]), url = env[p .. "URL"], root_url = env[p .. "ROOT_URL"],
                   state = env[p .. "STATE"], pid_file = env[p .. "PID_FILE"] }
  end
  return c
end

local LABEL = { replication = "replication cluster", galera = "Galera cluster" }

--- One cluster of kind for the enclosing describe block: the handle is
--- filled in by its setup and the cluster stopped by its teardown.
function _M.shared(kind)
  local c = setmetatable({ engines = {} }, Cluster)
  busted.setup(function()
    for k, v in pairs(_M.start(kind)) do c[k] = v end
    print(("\n  %s (%d nodes) up in %.1f s"):format(LABEL[kind], #c.nodes, c.start_seconds))
  end)
  busted.teardown(function()
    for _, e in ipairs(c.engines) do pcall(e.dispose, e) end
    c.engines = {}
    if c.state then c:stop() end
  end)
  return c
end

--- Disposes e when a shared cluster stops; returns e.
function Cluster:track(e)
  self.engines[#self.engines + 1] = e
  return e
end

--- Runs SQL as root on node i; returns its batch output (tab-separated).
function Cluster:sql(i, sql)
  local p = io.popen(CLEAN_ENV .. "scripts/testdb sql " .. sh_quote(self.nodes[i].state) .. " -- " .. sh_quote(sql)
    .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)rc=(%d+)%s*$")
  if rc ~= "0" then
    error(("node%d: %s"):format(i, body), 2)
  end
  return body
end

function Cluster:pid(i)
  local f = io.open(self.nodes[i].pid_file, "rb")
  if not f then return nil end
  local pid = tonumber((f:read("*a") or ""):match("%d+"))
  f:close()
  return pid
end

--- SIGKILLs node i's server (a crash: no clean shutdown).
function Cluster:kill(i, signal)
  local pid = self:pid(i)
  if pid then
    run("kill -" .. (signal or "KILL") .. " " .. pid .. " 2>/dev/null")
  end
  return pid
end

--- Starts node i again (same datadir, port and options).
function Cluster:restart(i)
  if not run("scripts/testdb restart " .. sh_quote(self.nodes[i].state) .. " >/dev/null 2>&1") then
    error("could not restart node" .. i, 2)
  end
end

function Cluster:stop()
  run("scripts/testdb stop " .. sh_quote(self.state) .. " >/dev/null 2>&1")
  run("rm -rf -- " .. sh_quote(self.state))
end

return _M
