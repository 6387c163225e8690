-- TLS end to end against the throwaway server, which scripts/testdb starts
-- with its own CA, a server certificate for IP:127.0.0.1 only (the server
-- also listens on 127.0.0.2, a name the certificate does not carry) and a
-- client certificate for the REQUIRE X509 user. What each ssl_mode checks
-- is the table in docs/SECURITY.md; each case here is one row of it.
local fsdb = require("fsdb")
local db = require("helpers.db")
local h = require("support.hardening")

local TLS_ERR = 2026

describe("TLS #mariadb", function()
  local ca = h.encode(h.ca)
  local engines = {}

  setup(function()
    assert(h.ca ~= "", "the test server runs without TLS: scripts/testdb found no openssl")
  end)

  teardown(function()
    for _, e in ipairs(engines) do e:dispose() end
  end)

  local function engine(url, options)
    local e = fsdb.engine.new(url, options or { pool_size = 1, max_overflow = 0 })
    engines[#engines + 1] = e
    return e
  end

  -- Connects; returns conn:info() and the server's own view of the cipher,
  -- or the four failure values.
  local function try(opts)
    local e = engine(h.url(opts))
    local conn, err, errno, sqlstate = e:connect()
    if not conn then
      return nil, err, errno, sqlstate
    end
    local info = conn:info()
    local row = db.must(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")[1]
    local user = db.must(conn, "SELECT CURRENT_USER() AS u")[1].u
    conn:close()
    h.no_secret(tostring(e))
    return { cipher = info.tls_cipher, server_cipher = row.Value, user = user }
  end

  local function encrypted(r)
    assert.is_table(r)
    assert.is_string(r.cipher)
    assert.are.equal(r.server_cipher, r.cipher)
  end

  describe("ssl_mode", function()
    it("DISABLED stays in plain text even with ssl_ca given", function()
      local r = assert(try({ params = { "ssl_mode=DISABLED", "ssl_ca=" .. ca } }))
      assert.is_nil(r.cipher)
      assert.are.equal("", r.server_cipher)
    end)

    it("no ssl_mode and no ssl_* option: Connector/C's default, plain text", function()
      local r = assert(try({}))
      assert.is_nil(r.cipher)
    end)

    it("PREFERRED encrypts when the server offers TLS", function()
      encrypted(try({ params = { "ssl_mode=PREFERRED" } }))
    end)

    it("REQUIRED encrypts without checking the certificate", function()
      encrypted(try({ params = { "ssl_mode=REQUIRED" } }))
      encrypted(try({ host = h.alt_host ~= "" and h.alt_host or nil, params = { "ssl_mode=REQUIRED" } }))
    end)

    it("REQUIRED with ssl_ca checks the chain: a foreign CA is refused", function()
      -- Connector/C verifies the chain whenever a CA is given.
      local res, err, errno, sqlstate = try({ params = {
        "ssl_mode=REQUIRED", "ssl_ca=" .. h.encode(h.client_cert) } })
      h.failure(res, err, errno, sqlstate, { errno = TLS_ERR, sqlstate = "HY000",
        contains = { "TLS/SSL error", "hint: ssl_ca must be the CA" } })
    end)

    it("VERIFY_CA accepts the server's certificate from our CA", function()
      encrypted(try({ params = { "ssl_mode=VERIFY_CA", "ssl_ca=" .. ca } }))
    end)

    it("VERIFY_CA does not check the host name: 127.0.0.2 is accepted", function()
      assert(h.alt_host ~= "", "the test server listens on one address only")
      encrypted(try({ host = h.alt_host, params = { "ssl_mode=VERIFY_CA", "ssl_ca=" .. ca } }))
    end)

    it("VERIFY_CA refuses a certificate from another CA", function()
      -- The client certificate is no CA: nothing the server sent chains to it.
      local res, err, errno, sqlstate = try({ params = {
        "ssl_mode=VERIFY_CA", "ssl_ca=" .. h.encode(h.client_cert) } })
      h.failure(res, err, errno, sqlstate, { errno = TLS_ERR, sqlstate = "HY000",
        contains = { "TLS/SSL error", "hint: ssl_ca must be the CA" } })
    end)

    it("VERIFY_CA without ssl_ca or ssl_capath is refused before connecting", function()
      local res, err, errno, sqlstate = try({ params = { "ssl_mode=VERIFY_CA" } })
      h.failure(res, err, errno, sqlstate, { errno = 9001, sqlstate = "HY000",
        contains = { "ssl_mode=VERIFY_CA needs ssl_ca or ssl_capath" } })
    end)

    it("VERIFY_IDENTITY accepts 127.0.0.1, the name in the certificate", function()
      encrypted(try({ params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } }))
    end)

    it("VERIFY_IDENTITY refuses 127.0.0.2, a name the certificate lacks", function()
      assert(h.alt_host ~= "", "the test server listens on one address only")
      local res, err, errno, sqlstate = try({ host = h.alt_host,
        params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } })
      h.failure(res, err, errno, sqlstate, { errno = TLS_ERR, sqlstate = "HY000",
        contains = { "Validation of SSL server certificate failed",
                     "does not name the host in the URL" } })
    end)

    it("VERIFY_IDENTITY without ssl_ca checks the system's CA store, which lacks ours", function()
      local res, err, errno, sqlstate = try({ params = { "ssl_mode=VERIFY_IDENTITY" } })
      h.failure(res, err, errno, sqlstate, { errno = TLS_ERR, sqlstate = "HY000",
        contains = { "TLS/SSL error", "add ssl_ca=" } })
    end)

    it("a missing ssl_ca file is a connect error, not a plain-text connection", function()
      local res, err, errno, sqlstate = try({ params = {
        "ssl_mode=VERIFY_CA", "ssl_ca=%2Fnonexistent%2Fca.pem" } })
      h.failure(res, err, errno, sqlstate, { errno = TLS_ERR, sqlstate = "HY000" })
    end)
  end)

  describe("users that require TLS", function()
    it("REQUIRE SSL: logs in over TLS", function()
      local r = assert(try({ user = h.tls_user, params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } }))
      encrypted(r)
      assert.matches("^" .. h.tls_user .. "@", r.user)
    end)

    it("REQUIRE SSL: plain text gets 1045 with a TLS hint", function()
      local res, err, errno, sqlstate = try({ user = h.tls_user })
      h.failure(res, err, errno, sqlstate, { errno = 1045, sqlstate = "28000",
        contains = { "DB_USER/DB_PASSWORD", "REQUIRE SSL/X509", "ssl_mode=VERIFY_IDENTITY" } })
    end)

    it("REQUIRE X509: a client certificate from our CA logs in (mTLS)", function()
      local r = assert(try({ user = h.x509_user, params = { "ssl_mode=VERIFY_IDENTITY",
        "ssl_ca=" .. ca, "ssl_cert=" .. h.encode(h.client_cert), "ssl_key=" .. h.encode(h.client_key) } }))
      encrypted(r)
      assert.matches("^" .. h.x509_user .. "@", r.user)
    end)

    it("REQUIRE X509: TLS without a client certificate is refused", function()
      local res, err, errno, sqlstate = try({ user = h.x509_user,
        params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } })
      h.failure(res, err, errno, sqlstate, { errno = 1045, sqlstate = "28000" })
    end)

    it("a client key that does not match the certificate is a TLS error", function()
      -- The CA file holds a certificate but no key for it.
      local res, err, errno, sqlstate = try({ user = h.x509_user, params = { "ssl_mode=VERIFY_IDENTITY",
        "ssl_ca=" .. ca, "ssl_cert=" .. ca, "ssl_key=" .. h.encode(h.client_key) } })
      h.failure(res, err, errno, sqlstate, { errno = TLS_ERR, sqlstate = "HY000" })
    end)
  end)

  describe("a server that requires TLS (require_secure_transport)", function()
    it("refuses plain text with a hint, takes TLS", function()
      local root = engine(h.root_socket_url())
      db.must(root, "SET GLOBAL require_secure_transport = ON")
      finally(function()
        db.must(root, "SET GLOBAL require_secure_transport = OFF")
      end)
      local res, err, errno, sqlstate = try({})
      h.failure(res, err, errno, sqlstate, { errno = 1045, sqlstate = "28000",
        contains = { "require_secure_transport", "ssl_mode=VERIFY_IDENTITY" } })
      encrypted(try({ params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } }))
      encrypted(try({ params = { "ssl_mode=REQUIRED" } }))
    end)
  end)

  describe("a server that offers no TLS (the proxy hides it)", function()
    local proxy
    before_each(function()
      proxy = h.proxy()
      proxy:set("nossl")
    end)
    after_each(function()
      proxy:close()
    end)

    it("PREFERRED falls back to plain text", function()
      local r = assert(try({ port = proxy:port(), params = { "ssl_mode=PREFERRED" } }))
      assert.is_nil(r.cipher)
    end)

    for _, mode in ipairs({ "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY" }) do
      it(mode .. " refuses it: no statement runs in plain text", function()
        local res, err, errno, sqlstate = try({ port = proxy:port(),
          params = { "ssl_mode=" .. mode, "ssl_ca=" .. ca } })
        h.failure(res, err, errno, sqlstate, { errno = TLS_ERR, sqlstate = "HY000",
          contains = { "SSL is required, but the server does not support it", "hint: the server offers no TLS" } })
      end)
    end

    it("the same URL works once the proxy passes TLS through", function()
      proxy:set("pass")
      encrypted(try({ port = proxy:port(), params = { "ssl_mode=REQUIRED" } }))
    end)
  end)

  describe("pool and CLI over TLS", function()
    it("reuses TLS connections from the pool and reports the cipher in info()", function()
      local e = engine(h.url({ params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } }),
        { pool_size = 2, pool_pre_ping = true })
      local seen = {}
      for i = 1, 20 do
        local conn = assert(e:connect())
        local info = conn:info()
        assert.is_string(info.tls_cipher)
        seen[info.thread_id] = true
        assert.are.equal(i, db.must(conn, "SELECT ? AS n", i)[1].n)
        conn:close()
      end
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.are.equal(1, n, "one connection, reused")
      local st = e:status()
      assert.are.equal(1, st.connects)
      assert.are.equal(0, st.checked_out)
    end)

    it("fsdb check prints the protocol and cipher", function()
      local url = h.url({ params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } })
      local status, out, err = h.cli({ "check", "--url", url })
      assert.are.equal(0, status, err)
      assert.matches("\ntls: +TLSv1%.[23] [%w_-]+\n", out)
      assert.matches("ssl_mode=VERIFY_IDENTITY", out, 1, true)
      h.no_secret(out)
    end)

    it("fsdb check prints tls: off for a plain connection", function()
      local status, out, err = h.cli({ "check", "--url", h.url({ params = { "ssl_mode=DISABLED" } }) })
      assert.are.equal(0, status, err)
      assert.matches("\ntls: +off\n", out)
    end)

    it("fsdb check fails on the wrong host name with the TLS hint, without the password", function()
      assert(h.alt_host ~= "", "the test server listens on one address only")
      local url = h.url({ host = h.alt_host, params = { "ssl_mode=VERIFY_IDENTITY", "ssl_ca=" .. ca } })
      local status, out, err = h.cli({ "check", "--url", url })
      assert.are.equal(1, status)
      assert.are.equal("", out)
      assert.matches("errno: +2026", err)
      assert.matches("does not name the host", err, 1, true)
      h.no_secret(err)
    end)
  end)
end)
