-- Authentication plugins: the password goes only to a verified server.
--
-- A rogue server (spec/support/authserver.py, on 127.0.0.1 or a unix
-- socket) asks for each plugin that would hand it the password, in its
-- handshake and by an auth switch request, with and without TLS, and
-- records every byte the client sends; for the RSA paths it also decrypts
-- what it gets with its own private key. Against it, fsdb must refuse every
-- such plugin in every ssl_mode short of VERIFY_IDENTITY; the same rogue
-- shows that an unrestricted client (the mariadb command) does leak, so the
-- checks can fail. The real test server then shows that the default
-- (mysql_native_password, client_ed25519) and the opt-in still log in.
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")

local PLUGIN_NOT_ALLOWED = 5010
local EXPOSING = { "mysql_clear_password", "dialog", "caching_sha2_password", "sha256_password" }
local ALL = "mysql_native_password,client_ed25519,mysql_clear_password,dialog,"
  .. "caching_sha2_password,sha256_password"
-- Characters a URL, a shell or a packet parser could trip on.
local PASSWORD = "rogue'Pw\"@:/?#%&=;-8472"
-- The helpers run outside the sanitizers of `make asan` (their own leaks
-- are not fsdb's).
local PLAIN = "env -u LD_PRELOAD "

local function unhex(s)
  return (s:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

describe("authentication plugins #mariadb", function()
  local root = h.checkout_root()
  local dir, engines = nil, {}

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    local status, out = h.sh(PLAIN .. "/usr/bin/python3 " .. h.shell_quote(root .. "/spec/support/authserver.py")
      .. " --setup " .. h.shell_quote(dir))
    assert(status == 0, "the rogue server's set-up failed: " .. out)
  end)

  teardown(function()
    for _, e in ipairs(engines) do e:dispose() end
    if dir then h.sh("rm -rf " .. h.shell_quote(dir)) end
  end)

  -- Starts the rogue; returns its port (nil on a socket) and a function
  -- that waits for it to finish and returns what it recorded.
  local function rogue(o)
    local cmd = (PLAIN .. "/usr/bin/python3 %s --dir %s --plugin %s --as %s"):format(
      h.shell_quote(root .. "/spec/support/authserver.py"), h.shell_quote(dir), o.plugin, o.as or "switch")
    if o.tls then cmd = cmd .. " --tls " .. o.tls end
    if o.unix then cmd = cmd .. " --unix " .. h.shell_quote(o.unix) end
    if o.wait then cmd = cmd .. " --wait " .. o.wait end
    local p = assert(io.popen(cmd))
    local first = assert(p:read("l"), "the rogue server did not start")
    local port = tonumber(first:match("^port (%d+)$"))
    assert(port or first == "ready", first)
    return port, function()
      local rec = { packets = {}, decrypted = {}, accepted = false, tls = false }
      for line in p:lines() do
        local kind, value = line:match("^(%S+) ?(.*)$")
        if kind == "packet" then rec.packets[#rec.packets + 1] = unhex(value)
        elseif kind == "decrypted" then rec.decrypted[#rec.decrypted + 1] = unhex(value)
        elseif kind == "switch_at" then rec.switch_at = tonumber(value)
        elseif kind == "accepted" then rec.accepted = value == "1"
        elseif kind == "tls" then rec.tls = true
        end
      end
      p:close()
      return rec
    end
  end

  -- True when the password reached the rogue, in clear or decryptable.
  local function leaked(rec)
    for _, list in ipairs({ rec.packets, rec.decrypted }) do
      for _, bytes in ipairs(list) do
        if bytes:find(PASSWORD, 1, true) then return true end
      end
    end
    return false
  end

  local function connect(url)
    local e = fsdb.engine.new(url, { pool_size = 1, max_overflow = 0 })
    engines[#engines + 1] = e
    local conn, err, errno, sqlstate = e:connect()
    if conn then
      conn:close()
      return true
    end
    return nil, err, errno, sqlstate
  end

  local function rogue_url(port, params)
    local s = ("mysql://fsdb:%s@127.0.0.1:%d/shop"):format(h.encode(PASSWORD), port)
    if params ~= "" then s = s .. "?" .. params end
    return s
  end

  -- The rogue's CA verifies its certificates: VERIFY_CA then passes the
  -- chain, as it would for a man in the middle holding any certificate of
  -- the user's CA.
  local MODES = {
    { name = "no ssl_mode", params = "" },
    { name = "DISABLED", params = "ssl_mode=DISABLED" },
    { name = "PREFERRED", params = "ssl_mode=PREFERRED", tls = true },
    { name = "REQUIRED", params = "ssl_mode=REQUIRED", tls = true },
    { name = "VERIFY_CA", params = "ssl_mode=VERIFY_CA&ssl_ca=", tls = true },
  }

  local function mode_params(mode)
    local ca = h.encode(dir .. "/ca.pem")
    return (mode.params:gsub("ssl_ca=$", function() return "ssl_ca=" .. ca end))
  end

  describe("a rogue server never gets the password", function()
    for _, plugin in ipairs(EXPOSING) do
      for _, mode in ipairs(MODES) do
        for _, tls in ipairs({ "rogue", false }) do
          local offer = tls and "offering TLS" or "without TLS"
          it(("%s in its handshake, %s, %s"):format(plugin, mode.name, offer), function()
            local port, finish = rogue({ plugin = plugin, as = "initial", tls = tls or nil })
            local res, err, errno, sqlstate = connect(rogue_url(port, mode_params(mode)))
            local rec = finish()
            h.failure(res, err, errno, sqlstate, { errno = PLUGIN_NOT_ALLOWED, sqlstate = "HY000",
              contains = { "'" .. plugin .. "'", "auth_plugins=" .. plugin, "ssl_mode=VERIFY_IDENTITY" } })
            h.no_secret(err, { PASSWORD, h.encode(PASSWORD) })
            assert.is_true(rec.accepted)
            -- Refused before the login packet: not a byte was sent.
            assert.are.same({}, rec.packets)
            assert.is_false(leaked(rec))
          end)

          it(("%s by an auth switch request, %s, %s"):format(plugin, mode.name, offer), function()
            local port, finish = rogue({ plugin = plugin, as = "switch", tls = tls or nil })
            local res, err, errno, sqlstate = connect(rogue_url(port, mode_params(mode)))
            local rec = finish()
            h.failure(res, err, errno, sqlstate, { errno = PLUGIN_NOT_ALLOWED, sqlstate = "HY000",
              contains = { "auth switch request", "auth_plugins",
                "ssl_mode=VERIFY_IDENTITY" } })
            h.no_secret(err, { PASSWORD, h.encode(PASSWORD) })
            -- The login packet (native scramble) went; nothing after the switch.
            assert.is_number(rec.switch_at)
            assert.are.equal(rec.switch_at, #rec.packets)
            assert.is_false(leaked(rec))
            assert.are.equal(mode.tls == true and tls ~= false, rec.tls)
          end)
        end
      end

      it(plugin .. ": VERIFY_IDENTITY with the opt-in stops at a certificate for another name", function()
        local port, finish = rogue({ plugin = plugin, as = "switch", tls = "rogue" })
        local res, err, errno, sqlstate = connect(rogue_url(port, "ssl_mode=VERIFY_IDENTITY&ssl_ca="
          .. h.encode(dir .. "/ca.pem") .. "&auth_plugins=" .. ALL))
        local rec = finish()
        h.failure(res, err, errno, sqlstate, { errno = 2026, sqlstate = "HY000" })
        -- Only the request for TLS went, before the certificate was seen.
        assert.are.equal(1, #rec.packets)
        assert.are.equal(32, #rec.packets[1])
        assert.is_false(leaked(rec))
      end)

      it(plugin .. ": the opt-in alone, without a verified channel, is refused before connecting", function()
        local port, finish = rogue({ plugin = plugin, as = "switch", tls = "rogue", wait = 1 })
        for _, mode in ipairs(MODES) do
          local params = mode_params(mode)
          params = (params == "" and "" or params .. "&") .. "auth_plugins=mysql_native_password," .. plugin
          local res, err, errno, sqlstate = connect(rogue_url(port, params))
          h.failure(res, err, errno, sqlstate, { errno = 9001, sqlstate = "HY000",
            contains = { "auth_plugins lists " .. plugin, "ssl_mode=VERIFY_IDENTITY", "unix socket" } })
        end
        -- "localhost" is TCP for fsdb, not a socket.
        local res, err, errno, sqlstate = connect(("mysql://fsdb:%s@localhost:%d/shop?auth_plugins=%s")
          :format(h.encode(PASSWORD), port, plugin))
        h.failure(res, err, errno, sqlstate, { errno = 9001, sqlstate = "HY000",
          contains = { "auth_plugins lists " .. plugin } })
        assert.is_false(finish().accepted)
      end)
    end
  end)

  describe("the rogue server's checks can fail", function()
    -- Connector/C without a plugin list, as the mariadb command uses it.
    for _, plugin in ipairs(EXPOSING) do
      it("the mariadb command gives " .. plugin .. " the password", function()
        local port, finish = rogue({ plugin = plugin, as = "switch" })
        h.sh((PLAIN .. "MYSQL_PWD=%s mariadb --ssl=0 --connect-timeout=10 -h 127.0.0.1 -P %d -u fsdb -e 'SELECT 1'")
          :format(h.shell_quote(PASSWORD), port))
        local rec = finish()
        assert.is_true(leaked(rec))
        -- The RSA paths leak only through the rogue's own key.
        local rsa = plugin == "caching_sha2_password" or plugin == "sha256_password"
        assert.are.equal(rsa, #rec.decrypted > 0)
      end)
    end
  end)

  describe("opting in", function()
    for _, plugin in ipairs(EXPOSING) do
      it(plugin .. " with VERIFY_IDENTITY: the verified server gets the password, inside TLS", function()
        local port, finish = rogue({ plugin = plugin, as = "switch", tls = "good" })
        local res, err, errno = connect(rogue_url(port, "ssl_mode=VERIFY_IDENTITY&ssl_ca="
          .. h.encode(dir .. "/ca.pem") .. "&auth_plugins=mysql_native_password," .. plugin))
        local rec = finish()
        assert.is_nil(res)
        assert.are.equal(1045, errno, err) -- the rogue's answer, once it has the password
        h.no_secret(err, { PASSWORD, h.encode(PASSWORD) })
        assert.is_true(rec.tls)
        assert.is_true(leaked(rec))
        assert.are.same({}, rec.decrypted)
      end)

      it(plugin .. " over a unix socket: the password goes over the socket", function()
        local path = dir .. "/rogue.sock"
        local _, finish = rogue({ plugin = plugin, as = "switch", unix = path })
        local res, err, errno = connect(("mysql://fsdb:%s@localhost/shop?unix_socket=%s&auth_plugins=mysql_native_password,%s")
          :format(h.encode(PASSWORD), h.encode(path), plugin))
        local rec = finish()
        assert.is_nil(res)
        assert.are.equal(1045, errno, err)
        assert.is_true(leaked(rec))
      end)
    end
  end)

  describe("the real server", function()
    local root_engine, installed
    local ed_user, ed_password = "fsdb_ed25519", "ed-Pw-5521"

    setup(function()
      root_engine = fsdb.engine.new(h.root_socket_url(), { pool_size = 1 })
      local rows = db.must(root_engine, "SELECT COUNT(*) AS n FROM information_schema.plugins "
        .. "WHERE plugin_name = 'ed25519' AND plugin_status = 'ACTIVE'")
      if tonumber(rows[1].n) == 0 then
        db.must(root_engine, "INSTALL SONAME 'auth_ed25519'")
        installed = true
      end
      db.must(root_engine, ("CREATE OR REPLACE USER '%s'@'%%' IDENTIFIED VIA ed25519 USING PASSWORD('%s')")
        :format(ed_user, ed_password))
      db.must(root_engine, ("GRANT SELECT ON `%s`.* TO '%s'@'%%'"):format(db.db, ed_user))
    end)

    teardown(function()
      if root_engine then
        root_engine:execute(("DROP USER IF EXISTS '%s'@'%%'"):format(ed_user))
        if installed then root_engine:execute("UNINSTALL SONAME 'auth_ed25519'") end
        root_engine:dispose()
      end
    end)

    local function who(url)
      local e = fsdb.engine.new(url, { pool_size = 1, max_overflow = 0 })
      engines[#engines + 1] = e
      local conn, err, errno, sqlstate = e:connect()
      if not conn then return nil, err, errno, sqlstate end
      local row = db.must(conn, "SELECT CURRENT_USER() AS u")[1]
      local info = conn:info()
      conn:close()
      return { user = row.u:match("^[^@]*"), tls = info.tls_cipher }
    end

    it("logs in with mysql_native_password by default", function()
      local r = assert(who(h.url({})))
      assert.are.equal("fsdb", r.user)
    end)

    it("logs in with client_ed25519 by default", function()
      local r = assert(who(h.url({ user = ed_user, password = ed_password })))
      assert.are.equal(ed_user, r.user)
    end)

    it("refuses client_ed25519 when auth_plugins leaves it out", function()
      local res, err, errno, sqlstate = who(h.url({ user = ed_user, password = ed_password,
        params = { "auth_plugins=mysql_native_password" } }))
      h.failure(res, err, errno, sqlstate, { errno = PLUGIN_NOT_ALLOWED, sqlstate = "HY000",
        contains = { "allowed: mysql_native_password" } })
    end)

    it("logs in with every plugin opted in and VERIFY_IDENTITY", function()
      assert(h.ca ~= "", "the test server runs without TLS")
      for user, password in pairs({ fsdb = db.password, [ed_user] = ed_password }) do
        local r = assert(who(h.url({ user = user, password = password,
          params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. h.encode(h.ca), "auth_plugins=" .. ALL } })))
        assert.are.equal(user, r.user)
        assert.is_string(r.tls)
      end
    end)

    it("logs in with every plugin opted in over the unix socket", function()
      local r = assert(who(("mysql://fsdb:%s@localhost/%s?unix_socket=%s&auth_plugins=%s")
        :format(h.encode(db.password), db.db, h.encode(db.socket), ALL)))
      assert.are.equal("fsdb", r.user)
    end)
  end)
end)
