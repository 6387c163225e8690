--- fsdb.sqltext — the one place that writes values and names into SQL text.
--
--   local sqltext = require("fsdb.sqltext")
--   local d = sqltext.dialect_of(conn)        -- or sqltext.dialect{...}, or nil
--   sqltext.literal("C:\\temp", d)            --> _utf8mb4 X'433A5C74656D70'
--   sqltext.ident("order", d)                 --> `order`
--   sqltext.number(0.5)                       --> 0.5 (whatever the C locale)
--
-- Statements that run bind their values as parameters; text is written only
-- for migration DDL (defaults, comments), `--sql` output and failure reports,
-- and identifiers everywhere. The rules (ARCHITECTURE.md explains why):
--   * a string literal is written plainly ('…', a quote doubled) only when
--     every byte is printable ASCII other than the backslash; anything else
--     is hex: _utf8mb4 X'…' for well-formed UTF-8, X'…' (binary) otherwise.
--     Hex digits mean the same under every client charset and whether or
--     not NO_BACKSLASH_ESCAPES is set;
--   * numbers are written in C-locale form whatever LC_NUMERIC says; NaN and
--     infinities are refused;
--   * an identifier is backtick-quoted (a backtick doubled) after checking
--     that it is well-formed UTF-8 without NUL and outside the Basic
--     Multilingual Plane (the server's own rule). For text that a client may
--     read in another charset (the offline dialect, `--sql`), a name must
--     also end every multibyte run cleanly under gbk, big5, sjis and cp932:
--     else a trailing byte of the name and the closing backtick read as one
--     character there, and the rest of the statement is parsed as SQL;
--   * COMMENT takes only a plain string (no hex): sqltext.text writes one,
--     honouring NO_BACKSLASH_ESCAPES; offline it refuses a backslash;
--   * the connection charsets whose multibyte characters can contain ASCII
--     bytes (big5, cp932, gbk, sjis) are refused, as are those no client can
--     use (ucs2, utf16, utf16le, utf32).

-- Errors are "fsdb: …" without a position: the modules that call these
-- (fsdb.sql, fsdb.migrate.ops) re-raise them at their own caller.

local _M = {}

local byte, format = string.byte, string.format
local floor, huge = math.floor, math.huge

local NULL
local function null_value()
  if NULL == nil then
    local ok, core = pcall(require, "fsdb.core")
    NULL = ok and core.null or false
  end
  return NULL
end

---------------------------------------------------------------------------
-- Charsets.

-- A multibyte character in these can end with a byte in 0x40..0x7E ('\',
-- '`', letters, ...), so escaping or quoting byte by byte is not enough.
local ASCII_UNSAFE = { big5 = true, cp932 = true, gbk = true, sjis = true }
-- Not accepted by the server as a client charset at all.
local NOT_CLIENT = { ucs2 = true, utf16 = true, utf16le = true, utf32 = true }

--- nil when fsdb can talk to the server in this charset; else the reason.
-- syntax: why = sqltext.charset_problem(name)
function _M.charset_problem(name)
  local n = type(name) == "string" and name:lower() or ""
  if ASCII_UNSAFE[n] then
    return ("charset %s is not supported: its multibyte characters can contain the bytes of "
      .. "quotes and backslashes, so SQL text cannot be scanned or written safely in it; "
      .. "use utf8mb4 (the default) and convert at the edges"):format(n)
  end
  if NOT_CLIENT[n] then
    return ("charset %s cannot be a connection charset; use utf8mb4 (the default)"):format(n)
  end
  return nil
end

-- Lead and trail byte ranges of the double-byte charsets above, as the
-- server's ctype files define them: {lead ranges}, {trail ranges}.
local MB2 = {
  { name = "gbk", lead = { { 0x81, 0xFE } }, trail = { { 0x40, 0x7E }, { 0x80, 0xFE } } },
  { name = "big5", lead = { { 0xA1, 0xF9 } }, trail = { { 0x40, 0x7E }, { 0xA1, 0xFE } } },
  -- cp932 has the same lead and trail ranges as sjis.
  { name = "sjis/cp932", lead = { { 0x81, 0x9F }, { 0xE0, 0xFC } }, trail = { { 0x40, 0x7E }, { 0x80, 0xFC } } },
}

local function in_ranges(b, ranges)
  for i = 1, #ranges do
    if b >= ranges[i][1] and b <= ranges[i][2] then return true end
  end
  return false
end

-- The name of a charset under which s (read from its first byte) has a
-- double-byte character made of a non-ASCII lead and an ASCII trail; nil if
-- none. s is the whole quoted text, closing quote included.
local function swallows_ascii(s)
  for _, cs in ipairs(MB2) do
    local i, n = 1, #s
    while i <= n do
      local b = byte(s, i)
      if i < n and in_ranges(b, cs.lead) and in_ranges(byte(s, i + 1), cs.trail) then
        if byte(s, i + 1) < 0x80 then return cs.name end
        i = i + 2
      else
        i = i + 1
      end
    end
  end
  return nil
end
_M.swallows_ascii = swallows_ascii

-- Length of the well-formed UTF-8 character at i (max_cp: the highest code
-- point allowed), or nil.
local function utf8_len(s, i, max_cp)
  local c = byte(s, i)
  if c < 0x80 then return 1 end
  local n, cp, min
  if c >= 0xC2 and c <= 0xDF then n, cp, min = 2, c - 0xC0, 0x80
  elseif c >= 0xE0 and c <= 0xEF then n, cp, min = 3, c - 0xE0, 0x800
  elseif c >= 0xF0 and c <= 0xF4 then n, cp, min = 4, c - 0xF0, 0x10000
  else return nil end
  for k = 1, n - 1 do
    local t = byte(s, i + k)
    if not t or t < 0x80 or t > 0xBF then return nil end
    cp = cp * 64 + (t - 0x80)
  end
  if cp < min or cp > max_cp or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
  return n
end

--- True when s is well-formed UTF-8 (utf8mb4: up to U+10FFFF, no surrogates).
-- syntax: b = sqltext.is_utf8(s)
local function is_utf8(s, max_cp)
  max_cp = max_cp or 0x10FFFF
  local i, n = 1, #s
  while i <= n do
    local l = utf8_len(s, i, max_cp)
    if not l then return false end
    i = i + l
  end
  return true
end
_M.is_utf8 = function(s) return type(s) == "string" and is_utf8(s) end

---------------------------------------------------------------------------
-- Dialects.

local Dialect = {}
Dialect.__index = Dialect
Dialect.__tostring = function(d)
  return ("sqltext.dialect{charset = %s, no_backslash_escapes = %s, portable = %s}"):format(
    d.charset, tostring(d.no_backslash_escapes), tostring(d.portable))
end

local DIALECT_KEYS = { charset = true, sql_mode = true, portable = true }

local function has_mode(sql_mode, name)
  for m in (sql_mode .. ","):gmatch("([^,]*),") do
    if m:upper():match("^%s*(.-)%s*$") == name then return true end
  end
  return false
end

--- A dialect: what the text is written for. charset (default utf8mb4) is
--- the connection charset; sql_mode the server's @@sql_mode (only
--- NO_BACKSLASH_ESCAPES matters); portable (default true) asks for text
--- that reads the same to a client in any charset, as `--sql` output must.
-- syntax: d = sqltext.dialect{charset = "utf8mb4", sql_mode = "...", portable = true}
function _M.dialect(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("fsdb: sqltext.dialect: options must be a table, got " .. type(opts), 0)
  end
  for k in pairs(opts) do
    if not DIALECT_KEYS[k] then
      error(("fsdb: sqltext.dialect: unknown option '%s' (known: charset, portable, sql_mode)"):format(
        tostring(k)), 2)
    end
  end
  local charset = opts.charset == nil and "utf8mb4" or opts.charset
  if type(charset) ~= "string" or not charset:match("^[%w_]+$") then
    error("fsdb: sqltext.dialect: charset must be a charset name such as utf8mb4", 0)
  end
  charset = charset:lower()
  local why = _M.charset_problem(charset)
  if why then error("fsdb: " .. why, 2) end
  local sql_mode = opts.sql_mode == nil and "" or opts.sql_mode
  if type(sql_mode) ~= "string" then
    error("fsdb: sqltext.dialect: sql_mode must be a string, got " .. type(sql_mode), 0)
  end
  if opts.portable ~= nil and type(opts.portable) ~= "boolean" then
    error("fsdb: sqltext.dialect: portable must be a boolean, got " .. type(opts.portable), 0)
  end
  return setmetatable({
    charset = charset,
    utf8 = charset == "utf8mb4" or charset == "utf8mb3" or charset == "utf8",
    no_backslash_escapes = has_mode(sql_mode, "NO_BACKSLASH_ESCAPES"),
    portable = opts.portable ~= false,
  }, Dialect)
end

local OFFLINE = _M.dialect()
_M.offline = OFFLINE

--- The dialect of a live connection: its charset and SQL mode, text not
--- meant for other clients. Returns nil, err, errno, sqlstate on failure.
-- syntax: d, err = sqltext.dialect_of(conn)
function _M.dialect_of(conn)
  local res, err, errno, sqlstate = conn:execute(
    "SELECT @@character_set_connection AS charset, @@sql_mode AS sql_mode")
  if not res then return nil, err, errno, sqlstate end
  local row = res[1]
  if type(row) ~= "table" then return nil, "fsdb: cannot read the connection's charset and sql_mode" end
  local charset, mode = row.charset, row.sql_mode
  local why = _M.charset_problem(charset)
  if why then return nil, "fsdb: " .. why end
  return _M.dialect{ charset = tostring(charset), sql_mode = tostring(mode or ""), portable = false }
end

--- True for a value made by sqltext.dialect or sqltext.dialect_of.
-- syntax: b = sqltext.is_dialect(v)
function _M.is_dialect(v)
  return getmetatable(v) == Dialect
end

local function check_dialect(d)
  if d == nil then return OFFLINE end
  if getmetatable(d) ~= Dialect then
    error("fsdb: sqltext: the dialect must come from sqltext.dialect or sqltext.dialect_of, got "
      .. type(d), 0)
  end
  return d
end

--- The line `--sql` output starts with, so that the server reads the text
--- in the charset it was written for.
-- syntax: s = sqltext.header(dialect)
function _M.header(d)
  d = check_dialect(d)
  return ("SET NAMES %s;"):format(d.charset == "utf8" and "utf8mb3" or d.charset)
end

---------------------------------------------------------------------------
-- Numbers.

-- The decimal point the C library uses right now ("," under de_DE).
local function decimal_point()
  return (format("%.1f", 0.5):match("^0(.-)5$")) or "."
end

local function c_locale(s)
  local dp = decimal_point()
  if dp ~= "." then
    local i, j = s:find(dp, 1, true)
    if i then s = s:sub(1, i - 1) .. "." .. s:sub(j + 1) end
  end
  return s
end

--- The shortest decimal text that reads back as the same number, in C-locale
--- form whatever LC_NUMERIC says; nil for NaN and infinities.
-- syntax: s = sqltext.number_text(n)
local function number_text(v)
  if type(v) ~= "number" or v ~= v or v == huge or v == -huge then return nil end
  if math.type and math.type(v) == "integer" then return format("%d", v) end
  if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return format("%d", v) end
  for digits = 15, 17 do
    local s = c_locale(format("%." .. digits .. "g", v))
    if tonumber(s) == v then return s end
  end
  return c_locale(format("%.17g", v))
end
_M.number_text = number_text

--- v with a fixed number of decimals, with a point whatever LC_NUMERIC says:
--- for the figures in messages and echo lines.
-- syntax: s = sqltext.fixed(v, decimals)
function _M.fixed(v, decimals)
  return c_locale(format("%." .. decimals .. "f", v))
end

--- A number as SQL text; raises on NaN, infinities and non-numbers.
-- syntax: s = sqltext.number(n)
function _M.number(v)
  local s = number_text(v)
  if not s then
    error(("fsdb: %s cannot be written as a SQL number"):format(
      type(v) == "number" and tostring(v) or ("a " .. type(v))), 0)
  end
  return s
end

---------------------------------------------------------------------------
-- Literals.

local function hex(s)
  return (s:gsub(".", function(c) return format("%02X", byte(c)) end))
end

local function string_literal(s)
  if not s:find("[%z\1-\31\\\127-\255]") then
    return "'" .. s:gsub("'", "''") .. "'"
  end
  if is_utf8(s) then return "_utf8mb4 X'" .. hex(s) .. "'" end
  return "X'" .. hex(s) .. "'"
end

--- A Lua value as a SQL literal: nil and fsdb.null → NULL, booleans → 1/0,
--- numbers (finite), strings (see the rules at the top). Raises on others.
-- syntax: s = sqltext.literal(v, dialect)
function _M.literal(v, d)
  check_dialect(d)
  local t = type(v)
  if t == "string" then return string_literal(v) end
  if t == "number" then
    local s = number_text(v)
    if not s then error(("fsdb: %s cannot be written as a SQL value"):format(tostring(v)), 0) end
    return s
  end
  if t == "boolean" then return v and "1" or "0" end
  if v == nil or v == null_value() then return "NULL" end
  error(("fsdb: a SQL value must be nil, fsdb.null, a boolean, a number or a string, got %s"):format(t), 0)
end

--- A plain '…' string, for the places the grammar takes no hex literal
--- (COMMENT). Raises when it cannot be written safely for the dialect: a NUL
--- byte; text that is not UTF-8 in a UTF-8 dialect; offline, a backslash
--- (it would read differently with and without NO_BACKSLASH_ESCAPES).
-- syntax: s = sqltext.text(str, dialect)
function _M.text(s, d)
  d = check_dialect(d)
  if type(s) ~= "string" then
    error("fsdb: sqltext.text: expected a string, got " .. type(s), 0)
  end
  if s:find("\0", 1, true) then
    error("fsdb: a comment cannot contain a NUL byte", 0)
  end
  if (d.utf8 or d.portable) and not is_utf8(s) then
    error("fsdb: a comment must be well-formed UTF-8", 0)
  end
  if not d.utf8 and s:find("[\128-\255]") then
    error(("fsdb: a non-ASCII comment needs a utf8mb4 connection (this one is %s)"):format(d.charset), 0)
  end
  if s:find("\\", 1, true) then
    if d.portable then
      error("fsdb: a comment with a backslash cannot be written for --sql (it reads differently "
        .. "with and without NO_BACKSLASH_ESCAPES); run the migration online or drop the backslash", 0)
    end
    if not d.no_backslash_escapes then
      s = s:gsub("\\", "\\\\")
    end
  end
  -- A quote (0x27) is never part of a multibyte character in any charset
  -- fsdb accepts or a client may read the text in, so doubling it is enough.
  return "'" .. s:gsub("'", "''") .. "'"
end

---------------------------------------------------------------------------
-- Identifiers.

--- One identifier, backtick-quoted (a backtick doubled). Raises on a name
--- that is not a non-empty string of well-formed UTF-8 in the Basic
--- Multilingual Plane without NUL, on a non-ASCII name in a charset other
--- than UTF-8 and, for portable text, on a name that a gbk/big5/sjis/cp932
--- reader would not end at its closing backtick.
-- syntax: s = sqltext.ident(name, dialect)
function _M.ident(name, d)
  d = check_dialect(d)
  if type(name) ~= "string" then
    error("fsdb: an identifier must be a string, got " .. type(name), 0)
  end
  if name == "" then error("fsdb: an identifier must not be empty", 0) end
  if name:find("\0", 1, true) then error("fsdb: an identifier cannot contain a NUL byte", 0) end
  if not is_utf8(name, 0xFFFF) then
    error("fsdb: an identifier must be well-formed UTF-8 without characters above U+FFFF", 0)
  end
  local q = "`" .. name:gsub("`", "``") .. "`"
  if name:find("[\128-\255]") then
    if not d.utf8 then
      error(("fsdb: a non-ASCII identifier needs a utf8mb4 connection (this one is %s)"):format(d.charset), 0)
    end
    local cs = d.portable and swallows_ascii(q)
    if cs then
      error(("fsdb: identifier %s cannot be written for --sql: a client reading the text as %s would "
        .. "take its last byte and the next quote or letter for one character; run it online or "
        .. "rename it"):format(string_literal(name), cs), 0)
    end
  end
  return q
end

return _M
