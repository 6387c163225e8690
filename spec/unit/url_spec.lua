-- URL parsing, rendering and redaction (no server needed).
--
-- Each case gives the exact parse result (the whole table) or the exact
-- error text; every error is also checked for its errno/sqlstate and for
-- the password, which must never appear in it.

local url = require("fsdb.url")

-- The parse result for the given fields; the fields fsdb.options fills in
-- get its defaults unless given.
local function R(fields)
  local t = { scheme = "mysql", host = "localhost", port = 3306, charset = "utf8mb4", local_infile = false,
              connect_timeout = 10, read_timeout = 300, write_timeout = 60 }
  for k, v in pairs(fields) do
    t[k] = v
  end
  return t
end

local E_INVALID = "fsdb: invalid URL: expected mysql://user:password@host:port/database"
local E_GUARDED = E_INVALID .. " (percent-encode '/', '?' and '@' in the user name and password as %2F, %3F and %40)"
local E_PCT = "fsdb: invalid percent-encoding in URL"
local HINT_HOSTLESS = "; a user name and password go before an '@' and the host: mysql://user:password@host/db"
local E_HOSTLESS_PORT = "fsdb: invalid port in URL (expected 1-65535)" .. HINT_HOSTLESS
local E_KNOWN = "(known: charset, collation, connect_timeout, read_timeout, write_timeout, ssl_mode, ssl_ca, ssl_cert, "
  .. "ssl_key, ssl_capath, ssl_cipher, auth_plugins, local_infile, unix_socket, target_session_attrs, "
  .. "load_balance_hosts, host_recheck_seconds)"
local E_SSL = "(expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)"
local E_BOOL = "(expected 1, 0, true, false, on, off, yes or no)"
local E_PLUGINS = "a comma-separated list of mysql_native_password, client_ed25519, auth_gssapi_client, "
  .. "caching_sha2_password, sha256_password, mysql_clear_password or dialog"

local function unsupported(s)
  return "fsdb: unsupported URL scheme '" .. s .. "' (use mysql:// or mariadb://)"
end
local function bad_port(s)
  return "fsdb: invalid port '" .. s .. "' in URL (expected 1-65535)"
end
local function bad_value(v, opt, expected)
  return "fsdb: invalid value '" .. v .. "' for option " .. opt .. " (expected " .. expected .. ")"
end

-- { input, expected table } or { input, err = message, secret = text that must not leak }
local cases = {
  -- schemes
  { "mysql://app:s3cret@db.example:3307/shop",
    R { user = "app", password = "s3cret", host = "db.example", port = 3307, database = "shop" } },
  { "MySQL://db.example/shop", R { host = "db.example", database = "shop" } },
  { "mariadb://app:s3cret@db.example/shop",
    R { scheme = "mariadb", user = "app", password = "s3cret", host = "db.example", database = "shop" } },
  { "mysql+pymysql://app:s3cret@db.example/shop",
    R { scheme = "mysql+pymysql", user = "app", password = "s3cret", host = "db.example", database = "shop" } },
  { "mysql+mysqldb://db.example", R { scheme = "mysql+mysqldb", host = "db.example" } },
  { "MariaDB+MariaDBConnector://db.example", R { scheme = "mariadb+mariadbconnector", host = "db.example" } },
  { "postgresql://app:Zx9secret@db.example/shop", err = unsupported("postgresql"), secret = "Zx9secret" },
  { "sqlite:///shop.db", err = unsupported("sqlite") },
  { "mysqlx://db.example", err = unsupported("mysqlx") },
  { "mysql+://db.example", err = unsupported("mysql+") },
  { "app:Zx9secret@db.example/shop", err = E_INVALID, secret = "Zx9secret" },
  { "mysql:/db.example", err = E_INVALID },
  { "", err = E_INVALID },
  { "mysql://db.example/shop\n", err = "fsdb: invalid URL: control characters must be percent-encoded" },

  -- user and password
  { "mysql://app@db.example", R { user = "app", host = "db.example" } },
  { "mysql://app:@db.example", R { user = "app", password = "", host = "db.example" } },
  { "mysql://:s3cret@db.example", R { password = "s3cret", host = "db.example" } },
  { "mysql://db.example/shop", R { host = "db.example", database = "shop" } },
  { "mysql://us%65r:p%40ss%3Aw%2Frd%2542@db.example/shop",
    R { user = "user", password = "p@ss:w/rd%42", host = "db.example", database = "shop" } },
  { "mysql://app:p@ss@db.example/shop",
    R { user = "app", password = "p@ss", host = "db.example", database = "shop" } },
  { "mysql://app:a:b+c@db.example", R { user = "app", password = "a:b+c", host = "db.example" } },
  { "mysql://app:%E2%82%AC@db.example", R { user = "app", password = "\226\130\172", host = "db.example" } },
  { "mysql://app:Zx9%ZZsecret@db.example", err = E_PCT, secret = "Zx9" },
  { "mysql://app:Zx9secret%4@db.example", err = E_PCT, secret = "Zx9secret" },
  { "mysql://app:Zx9%00secret@db.example", err = E_PCT, secret = "Zx9" },
  -- a raw '/' or '?' in the password: nothing after it may be quoted
  { "mysql://app:Zx9/Qw7@db.example/shop", err = E_GUARDED, secret = "Zx9" },
  { "mysql://app:123/Qw7@db.example/shop", err = E_GUARDED, secret = "Qw7" },
  { "mysql://app:123?Qw7@db.example/shop", err = E_GUARDED, secret = "Qw7" },
  { "mysql://app:Zx9@Qw7/Rt5@db.example/shop", err = E_GUARDED, secret = "Qw7" },

  -- host lists (libpq's multi-host form) and the options that choose among them
  { "mysql://app:s3cret@h1:3306,h2:3307,[::1]:3308/shop",
    R { user = "app", password = "s3cret", host = "h1", database = "shop",
        hosts = { { host = "h1", port = 3306 }, { host = "h2", port = 3307 }, { host = "::1", port = 3308 } } } },
  { "mysql://h1,h2?target_session_attrs=read-write&load_balance_hosts=random&host_recheck_seconds=3",
    R { host = "h1", hosts = { { host = "h1", port = 3306 }, { host = "h2", port = 3306 } },
        target_session_attrs = "read-write", load_balance_hosts = "random", host_recheck_seconds = 3 } },
  { "mysql://db.example?target_session_attrs=Prefer-Standby",
    R { host = "db.example", target_session_attrs = "prefer-standby" } },
  { "mysql://db.example?target_session_attrs=primary",
    err = bad_value("primary", "target_session_attrs", "any, read-write, read-only or prefer-standby") },
  { "mysql://db.example?load_balance_hosts=yes", err = bad_value("yes", "load_balance_hosts", "disable or random") },
  { "mysql://h1,,h2", err = "fsdb: invalid URL: every host of a host list needs a name (no empty host, no socket path)" },
  { "mysql://app:s3/cret@h1,h2/shop", err = E_GUARDED, secret = "cret" },
  { "mysql://localhost,h2?unix_socket=/tmp/s",
    err = "fsdb: invalid URL: option unix_socket cannot be combined with a host list" },

  -- hosts
  { "mysql://", R {} },
  { "mysql://app:s3cret@/shop", R { user = "app", password = "s3cret", database = "shop" } },
  { "mysql://:3307", R { port = 3307 } },
  { "mysql://[::1]", R { host = "::1" } },
  { "mysql://app:s3cret@[::1]:3307/shop",
    R { user = "app", password = "s3cret", host = "::1", port = 3307, database = "shop" } },
  { "mysql://[fe80::1%25eth0]:3307", R { host = "fe80::1%eth0", port = 3307 } },
  { "mysql://[::1/shop", err = "fsdb: invalid IPv6 host in URL (missing ']')" },
  { "mysql://[db.example]/shop", err = "fsdb: invalid IPv6 host '[db.example]' in URL" },
  { "mysql://bad host/shop", err = "fsdb: invalid host 'bad host' in URL" },
  { "mysql://app:s3cret@%2Ftmp%2Fmy.sock/shop",
    R { user = "app", password = "s3cret", database = "shop", unix_socket = "/tmp/my.sock" } },

  -- ports
  { "mysql://db.example:1", R { host = "db.example", port = 1 } },
  { "mysql://db.example:65535", R { host = "db.example", port = 65535 } },
  { "mysql://app@db.example:0", err = bad_port("0") },
  { "mysql://app@db.example:65536", err = bad_port("65536") },
  { "mysql://@db.example:-1", err = bad_port("-1") },
  { "mysql://app:Zx9secret@db.example:abc/shop", err = bad_port("abc"), secret = "Zx9secret" },
  { "mysql://app@db.example:/shop", err = bad_port("") },
  { "mysql://app@[::1]:x", err = bad_port("x") },
  -- No '@': the host and port may be a user name and a password.
  { "mysql://db.example:0", err = E_HOSTLESS_PORT },
  { "mysql://db.example:65536", err = E_HOSTLESS_PORT },
  { "mysql://[::1]:x", err = E_HOSTLESS_PORT },
  { "mysql://app:Zx9secret/shop", err = E_HOSTLESS_PORT, secret = "Zx9secret" },
  { "mysql://app:123456/shop", err = E_HOSTLESS_PORT, secret = "123456" },
  { "mysql://ap p:Zx9secret/shop", err = "fsdb: invalid host in URL" .. HINT_HOSTLESS, secret = "ap p" },
  { "mysql://app:3306/shop", R { host = "app", database = "shop" } },
  -- An '@' past the authority with a ':' before it: the password may have
  -- spilled into the database name or the options.
  { "mysql://app:3306/Zx9@db.example", err = E_GUARDED, secret = "3306/Zx9" },
  { "mysql://app@db.example/x:Zx9secret@h", err = E_GUARDED, secret = "Zx9secret" },
  { "mysql://db.example:3306/shop@2", err = E_GUARDED },
  { "mysql://db.example/shop@2", R { host = "db.example", database = "shop@2" } },

  -- database
  { "mysql://db.example/", R { host = "db.example" } },
  { "mysql://db.example/my%20shop", R { host = "db.example", database = "my shop" } },
  { "mysql://db.example/a/b", err = "fsdb: invalid URL: the database name must not contain '/'" },
  { "mysql://db.example/a%2Fb", err = "fsdb: invalid URL: the database name must not contain '/'" },

  -- options
  { "mysql://db.example/shop?charset=latin1", R { host = "db.example", database = "shop", charset = "latin1" } },
  { "mysql://db.example?charset=", err = bad_value("", "charset", "a character set name such as utf8mb4") },
  { "mysql://db.example?charset=utf8;x",
    err = bad_value("utf8;x", "charset", "a character set name such as utf8mb4") },
  { "mysql://db.example?collation=utf8mb4_unicode_ci", R { host = "db.example", collation = "utf8mb4_unicode_ci" } },
  { "mysql://db.example?charset=utf9",
    err = "fsdb: unknown charset 'utf9' in URL (use utf8mb4; SHOW CHARACTER SET lists the others)", sqlstate = "42000" },
  { "mysql://u:s3cret@db.example?charset=utf32", secret = "s3cret",
    err = "fsdb: charset utf32 cannot be a connection charset; use charset=utf8mb4 (the default)" },
  { "mysql://db.example?charset=UTF8MB3", R { host = "db.example", charset = "UTF8MB3" } },
  { "mysql://db.example?charset=latin1&collation=latin1_bin",
    R { host = "db.example", charset = "latin1", collation = "latin1_bin" } },
  { "mysql://db.example?collation=", err = bad_value("", "collation", "a collation name such as utf8mb4_unicode_ci") },
  { "mysql://db.example?collation=x%27%20OR%201",
    err = bad_value("x' OR 1", "collation", "a collation name such as utf8mb4_unicode_ci") },
  { "mysql://db.example?collation=" .. ("c"):rep(65),
    err = bad_value(("c"):rep(60) .. "...", "collation", "a collation name such as utf8mb4_unicode_ci") },
  { "mysql://db.example?connect_timeout=5&read_timeout=30&write_timeout=31536000",
    R { host = "db.example", connect_timeout = 5, read_timeout = 30, write_timeout = 31536000 } },
  { "mysql://db.example?read_timeout=0", R { host = "db.example" } },
  { "mysql://db.example?connect_timeout=1.5", err = bad_value("1.5", "connect_timeout", "whole seconds") },
  { "mysql://db.example?read_timeout=x", err = bad_value("x", "read_timeout", "whole seconds") },
  { "mysql://db.example?write_timeout=31536001", err = bad_value("31536001", "write_timeout", "whole seconds") },
  { "mysql://db.example?ssl_mode=verify_identity", R { host = "db.example", ssl_mode = "VERIFY_IDENTITY" } },
  { "mysql://db.example?ssl_mode=Disabled", R { host = "db.example", ssl_mode = "DISABLED" } },
  { "mysql://db.example?ssl_mode=PREFERRED", R { host = "db.example", ssl_mode = "PREFERRED" } },
  { "mysql://db.example?ssl_mode=required", R { host = "db.example", ssl_mode = "REQUIRED" } },
  { "mysql://db.example?ssl_mode=VERIFY_CA", R { host = "db.example", ssl_mode = "VERIFY_CA" } },
  { "mysql://db.example?ssl_mode=on", err = "fsdb: invalid value 'on' for option ssl_mode " .. E_SSL },
  { "mysql://db.example?ssl_ca=/etc/ssl/ca.pem&ssl_cert=my%20cert.pem&ssl_key=/k.pem"
      .. "&ssl_capath=/etc/ssl/certs&ssl_cipher=ECDHE-RSA-AES128-GCM-SHA256:AES+256",
    R { host = "db.example", ssl_ca = "/etc/ssl/ca.pem", ssl_cert = "my cert.pem", ssl_key = "/k.pem",
        ssl_capath = "/etc/ssl/certs", ssl_cipher = "ECDHE-RSA-AES128-GCM-SHA256:AES+256" } },
  { "mysql://db.example?ssl_ca=", err = bad_value("", "ssl_ca", "a non-empty value") },
  { "mysql://db.example?ssl_cert=", err = bad_value("", "ssl_cert", "a non-empty value") },
  { "mysql://db.example?ssl_key=", err = bad_value("", "ssl_key", "a non-empty value") },
  { "mysql://db.example?ssl_capath=", err = bad_value("", "ssl_capath", "a non-empty value") },
  { "mysql://db.example?ssl_cipher=", err = bad_value("", "ssl_cipher", "a non-empty value") },
  { "mysql://db.example?auth_plugins=client_ed25519", R { host = "db.example", auth_plugins = "client_ed25519" } },
  { "mysql://db.example?auth_plugins=mysql_native_password,client_ed25519,mysql_clear_password,dialog,"
      .. "sha256_password,caching_sha2_password,auth_gssapi_client",
    R { host = "db.example", auth_plugins = "mysql_native_password,client_ed25519,mysql_clear_password,dialog,"
      .. "sha256_password,caching_sha2_password,auth_gssapi_client" } },
  -- Connector/C matches its list by substring: only whole known names pass.
  { "mysql://db.example?auth_plugins=password", err = bad_value("password", "auth_plugins", E_PLUGINS) },
  { "mysql://db.example?auth_plugins=dialog,", err = bad_value("dialog,", "auth_plugins", E_PLUGINS) },
  { "mysql://db.example?auth_plugins=,dialog", err = bad_value(",dialog", "auth_plugins", E_PLUGINS) },
  { "mysql://db.example?auth_plugins=Dialog", err = bad_value("Dialog", "auth_plugins", E_PLUGINS) },
  { "mysql://db.example?auth_plugins=dialog%20", err = bad_value("dialog ", "auth_plugins", E_PLUGINS) },
  { "mysql://db.example?auth_plugins=", err = bad_value("", "auth_plugins", E_PLUGINS) },
  { "mysql://db.example?local_infile=1", R { host = "db.example", local_infile = true } },
  { "mysql://db.example?local_infile=Yes", R { host = "db.example", local_infile = true } },
  { "mysql://db.example?local_infile=off", R { host = "db.example" } },
  { "mysql://db.example?local_infile=2", err = "fsdb: invalid value '2' for option local_infile " .. E_BOOL },
  { "mysql://app:s3cret@localhost/shop?unix_socket=/run/mysqld/mysqld.sock",
    R { user = "app", password = "s3cret", database = "shop", unix_socket = "/run/mysqld/mysqld.sock" } },
  { "mysql://app:s3cret@/shop?unix_socket=%2Ftmp%2Fmy.sock",
    R { user = "app", password = "s3cret", database = "shop", unix_socket = "/tmp/my.sock" } },
  { "mysql://db.example?unix_socket=", err = bad_value("", "unix_socket", "a non-empty value") },
  { "mysql://%2Ftmp%2Fa.sock?unix_socket=/tmp/b.sock",
    err = "fsdb: invalid URL: a socket path is given both as host and as option unix_socket; give it once" },
  { "mysql://db.example/shop?unix_socket=/tmp/b.sock",
    err = "fsdb: invalid URL: option unix_socket needs host localhost or no host, not 'db.example'" },
  { "mysql://app:Zx9secret@db.example?foo=1", err = "fsdb: unknown option 'foo' in URL " .. E_KNOWN,
    secret = "Zx9secret" },
  { "mysql://db.example?Charset=utf8", err = "fsdb: unknown option 'Charset' in URL " .. E_KNOWN },
  { "mysql://db.example?charset=utf8&charset=latin1", err = "fsdb: option 'charset' is given more than once in URL" },
  { "mysql://app:Zx9secret@db.example?ssl_ca", secret = "Zx9secret",
    err = "fsdb: option 'ssl_ca' in URL has no value (expected ssl_ca=value)" },
  { "mysql://db.example/shop?&charset=utf8mb4&&", R { host = "db.example", database = "shop" } },
}

local renders = {
  { "mysql://app:s3cret@h1,h2:3307,[::1]/shop?load_balance_hosts=random&target_session_attrs=read-only",
    "mysql://app:***@h1:3306,h2:3307,[::1]:3306/shop?target_session_attrs=read-only&load_balance_hosts=random" },
  { "mysql://app:s3cret@db.example/shop", "mysql://app:***@db.example:3306/shop" },
  { "mysql+pymysql://app:@db.example:3307", "mysql+pymysql://app:***@db.example:3307" },
  { "MariaDB://app@db.example", "mariadb://app@db.example:3306" },
  { "mysql://us%40er:p%40ss%3Aw%2Frd%2542@db.example/shop", "mysql://us%40er:***@db.example:3306/shop" },
  { "mysql://app:p@ss@[::1]:3307/shop", "mysql://app:***@[::1]:3307/shop" },
  { "mysql://app:s3cret@%2Ftmp%2Fmy.sock:3307/shop", "mysql://app:***@localhost/shop?unix_socket=/tmp/my.sock" },
  { "mysql://db.example/my%20shop?charset=UTF8MB4&read_timeout=0", "mysql://db.example:3306/my%20shop" },
  { "mysql://db.example?collation=utf8mb4_unicode_ci", "mysql://db.example:3306?collation=utf8mb4_unicode_ci" },
  { "mysql://db.example?local_infile=1&auth_plugins=client_ed25519%2Cdialog&ssl_mode=VERIFY_IDENTITY",
    "mysql://db.example:3306?ssl_mode=VERIFY_IDENTITY&auth_plugins=client_ed25519,dialog&local_infile=1" },
  { "mysql://db.example?local_infile=on&ssl_mode=verify_ca&write_timeout=3&read_timeout=2&connect_timeout=1"
      .. "&charset=latin1&ssl_cipher=AES+256&ssl_capath=/c&ssl_key=/k&ssl_cert=/c%20t&ssl_ca=/a",
    "mysql://db.example:3306?charset=latin1&connect_timeout=1&read_timeout=2&write_timeout=3&ssl_mode=VERIFY_CA"
      .. "&ssl_ca=/a&ssl_cert=/c%20t&ssl_key=/k&ssl_capath=/c&ssl_cipher=AES+256&local_infile=1" },
}

local redactions = {
  { "mysql://app:s3cret@db.example/shop", "mysql://app:***@db.example/shop" },
  { "mysql://app@db.example/shop", "mysql://app@db.example/shop" },
  { "mysql://db.example:3306/shop", "mysql://db.example:3306/shop" },
  { "mysql://app:@db.example", "mysql://app:***@db.example" },
  { "mysql://app:p@ss@db.example", "mysql://app:***@db.example" },
  { "mysql://app:pa/ss?x@db.example/shop", "mysql://app:***@db.example/shop" },
  { "postgresql://app:s3cret@db.example", "postgresql://app:***@db.example" },
  { "mysql://app:pass word@db.example", "mysql://app:***@db.example" },
  { "cannot reach mysql://app:s3cret@db.example:3307/shop: refused",
    "cannot reach mysql://app:***@db.example:3307/shop: refused" },
  { "a mysql://u:x1@h and 'mariadb://v:y2@k'", "a mysql://u:***@h and 'mariadb://v:***@k'" },
  { "no url here", "no url here" },
  -- host-less: the "port" that is not a number is the password
  { "mysql://user:s3cret/shop", "mysql://user:***" },
  { "mysql://user:s3/cr?et/shop", "mysql://user:***" },
  { "mysql://db.example:3306/shop", "mysql://db.example:3306/shop" },
  { "mysql://[::1]:3306/shop", "mysql://[::1]:3306/shop" },
  { "mysql://[::1]:s3cret", "mysql://[::1]:***" },
  { "fsdb: at mysql://user:s3cret/shop now", "fsdb: at mysql://user:*** now" },
  -- spilled past the authority, one or three slashes, no scheme
  { "mysql://app:3306/s3cret@db.example", "mysql://app:***@db.example" },
  { "mysql://app@db.example/x:s3cret@h", "mysql://app@db.example/x:***@h" },
  { "mysql:/app:s3cret@db.example", "mysql:***@db.example" },
  { "app:/s3cret@db.example", "app:***@db.example" },
  { "mysql://user:/s3cret/shop", "mysql://user:***" },
  { "mysql:///app:s3cret@db.example", "mysql:///app:***@db.example" },
  { "app:s3cret@db.example/shop", "app:***@db.example/shop" },
  { "app:s3cret/shop", "app:***" },
  { "db.example:3306", "db.example:3306" },
}

-- Spec titles land in the test logs: show inputs with any password
-- redacted (the suite's secrets spec greps those logs for it).
local function show(s)
  local redacted = require("fsdb.url").redact(s)
  return (string.format("%q", redacted):gsub("\n", "n"))
end

describe("fsdb.url", function()
  describe("parse", function()
    it("has a table of at least 45 cases", function()
      assert.is_true(#cases >= 45)
    end)

    for _, c in ipairs(cases) do
      local input, want = c[1], c[2]
      if want then
        it("parses " .. show(input), function()
          local t, err = url.parse(input)
          assert.is_nil(err)
          assert.same(want, t)
        end)
      else
        it("rejects " .. show(input), function()
          local t, err, errno, sqlstate = url.parse(input)
          assert.is_nil(t)
          assert.equal(c.err, err)
          assert.equal(9001, errno)
          assert.equal(c.sqlstate or "HY000", sqlstate)
          if c.secret then
            assert.is_nil(err:find(c.secret, 1, true))
          end
          -- render fails the same way
          local r, rerr, rerrno, rstate = url.render(input)
          assert.is_nil(r)
          assert.same({ c.err, 9001, c.sqlstate or "HY000" }, { rerr, rerrno, rstate })
        end)
      end
    end

    it("reports only what the URL says when asked for the raw result (no default from C)", function()
      assert.same({ scheme = "mysql", host = "h", database = "db", local_infile = false },
        (url.parse("mysql://h/db", true)))
      assert.same({ scheme = "mysql", database = "db", local_infile = false },
        (url.parse("mysql:///db", true)))
      assert.same({ scheme = "mysql", host = "h1", local_infile = false, hosts = { { host = "h1" }, { host = "h2", port = 3307 } } },
        (url.parse("mysql://h1,h2:3307", true)))
      -- the C core's own answer, without fsdb.url in between
      local t = require("fsdb.core").parse_url("mysql://u@h/db")
      assert.is_nil(t.port)
      assert.is_nil(t.charset)
      assert.is_nil(t.connect_timeout)
    end)

    it("fills what the URL leaves out with the values it is handed, and nothing else", function()
      local core = require("fsdb.core")
      local other = { host = "dflt.example", port = 4000, charset = "latin1", connect_timeout = 1,
                      read_timeout = 2, write_timeout = 3 }
      assert.same({ scheme = "mysql", host = "dflt.example", port = 4000, charset = "latin1", database = "db",
                    connect_timeout = 1, read_timeout = 9, write_timeout = 3, local_infile = false },
        (core.parse_url("mysql:///db?read_timeout=9", other)))
      assert.same({ { host = "h1", port = 4000 }, { host = "h2", port = 3307 } },
        core.parse_url("mysql://h1,h2:3307", other).hosts)
      assert.equal("mysql://h1:4000,h2:3307?charset=utf8mb4", (core.render_url("mysql://h1,h2:3307?charset=utf8mb4", other)))
      assert.equal("mysql://h1,h2:3307?charset=utf8mb4", (core.render_url("mysql://h1,h2:3307?charset=utf8mb4")))
      -- what fsdb.url fills comes from fsdb.options
      local d = require("fsdb.options").url_defaults()
      local t = url.parse("mysql:///db")
      for name, v in pairs(d) do assert.equal(v, t[name], name) end
      -- a bad defaults table is a caller's bug: it raises
      local bad = { host = "h", port = 0, charset = "utf8mb4", connect_timeout = 1, read_timeout = 1, write_timeout = 1 }
      assert.has_error(function() core.parse_url("mysql://h", bad) end,
        "fsdb: URL default 'port' missing or bad (fsdb.options states it)")
      assert.has_error(function() core.render_url("mysql://h", { port = 1 }) end)
    end)

    it("returns the four failure values for a NUL byte", function()
      assert.same({ nil, "fsdb: invalid URL: it contains a NUL byte", 9001, "HY000" },
        { url.parse("mysql://h/db\0x") })
    end)

    it("raises on a non-string argument", function()
      assert.has_error(function() url.parse(nil) end)
      assert.has_error(function() url.parse(3306) end)
      assert.has_error(function() url.parse({}) end)
      assert.has_error(function() url.render(false) end)
      local ok, msg = pcall(url.parse, 42)
      assert.is_false(ok)
      assert.truthy(msg:find("string expected, got number", 1, true))
    end)

    it("never puts a password into an error message", function()
      local secrets = { "Zx9secret", "Qw7", "h4ck3r" }
      local templates = {
        "mysql://app:%s@db.example:abc/shop", "mysql://app:%s@db.example?foo=1",
        "mysql://app:%s@db.example/a/b", "mysql://app:%s/x@db.example/shop",
        "mysql://app:%s?x@db.example/shop", "mysql://app:x/%s@db.example:0/shop",
        "mysql://app:%s%%ZZ@db.example", "mysql://app:%s@[::1/shop",
        "mysql://app:%s@db.example?read_timeout=x", "pgsql://app:%s@db.example",
        "app:%s@db.example", "mysql://app:%s@db.example?charset",
        "mysql://app:1/%s@db.example?local_infile=9", "mysql://app:%s@bad host/shop",
      }
      for _, secret in ipairs(secrets) do
        for _, tpl in ipairs(templates) do
          local input = tpl:format(secret)
          local t, err = url.parse(input)
          assert.is_nil(t, input)
          assert.is_nil(err:find(secret, 1, true), input .. " -> " .. err)
        end
      end
    end)
  end)

  describe("render", function()
    for _, c in ipairs(renders) do
      it("renders " .. show(c[1]), function()
        local s = assert(url.render(c[1]))
        assert.equal(c[2], s)
        -- the rendering parses back and renders the same
        assert.equal(c[2], (url.render(s)))
      end)
    end

    it("always hides the password", function()
      for _, c in ipairs(cases) do
        if c[2] then
          local s = assert(url.render(c[1]))
          if c[2].password then
            assert.truthy(s:find(":***@", 1, true), s)
            if #c[2].password > 0 then
              assert.is_nil(s:find(c[2].password, 1, true), s)
            end
          else
            assert.is_nil(s:find("***", 1, true), s)
          end
        end
      end
    end)
  end)

  describe("redact", function()
    for _, c in ipairs(redactions) do
      it("redacts " .. show(c[1]), function()
        assert.equal(c[2], url.redact(c[1]))
      end)
    end

    it("returns non-strings unchanged", function()
      assert.is_nil(url.redact(nil))
      assert.equal(5, url.redact(5))
    end)

    -- Random URLs around a password holding URL syntax: redact never shows
    -- it, raw or percent-encoded, and neither does parse, whatever it makes
    -- of the URL (errors never quote it; the rendering masks it).
    it("never shows the password of a generated URL", function()
      local seed = os.time()
      math.randomseed(seed)
      local bits = { "Q", "z", "9", "'", '"', "\\", "@", ":", "/", "?", "#", "%", "&", "=", ";", " " }
      local function encode(x)
        return (x:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
      end
      local forms = {
        "mysql://app:%s@db.example/shop", "mysql://app:%s/shop", "mysql://app:%s",
        "mysql://app:%s@db.example:3306/shop?charset=utf8mb4", "mysql:/app:%s@h",
        "mysql://app:%s@h/db@2", "app:%s@db.example", "fsdb: in mysql://app:%s@db.example",
      }
      for n = 1, 400 do
        local parts = { "Kx", "Wv" }
        for _ = 1, math.random(1, 8) do
          table.insert(parts, math.random(1, #parts + 1), bits[math.random(#bits)])
        end
        local secret = table.concat(parts)
        for _, form in ipairs(forms) do
          for _, written in ipairs({ secret, encode(secret) }) do
            local input = form:format((written:gsub("%%", "%%%%")))
            local shown = url.redact(input)
            -- What redact promises: a URL in a message ends at a blank or
            -- quote, so does a string without a scheme, and a raw '@' in a
            -- password with no '@' after it reads as the end of the
            -- userinfo (the rest is a host), as it does for the parser.
            -- Nor can anything tell "app:9/x/shop" (host app, port 9) or
            -- "app://x@h" (scheme app) from a password written raw.
            local raw = written == secret
            local hostless = not form:find("%%s.*@")
            local skip = raw and ((secret:find("[%s'\"]") and not form:find("^mysql"))
              or (hostless and (secret:find("@", 1, true) or secret:find("^%d*[/?]")))
              or (not form:find("^mysql") and secret:find("^/")))
            if not skip then
              for _, x in ipairs({ "Kx", "Wv" }) do
                assert.is_nil(shown:find(x, 1, true),
                  ("seed %d #%d: %s -> %s"):format(seed, n, show(input), show(shown)))
              end
            end
            local t, err = url.parse(input)
            local r = t and url.render(input) or err
            for _, x in ipairs(skip and {} or { secret, encode(secret) }) do
              assert.is_nil(r:find(x, 1, true), ("seed %d #%d: %s"):format(seed, n, show(input)))
            end
          end
        end
      end
    end)
  end)
end)
