-- report.lua — turns what bench/run collected into bench/RESULTS.md.
--   usage: lua5.4 bench/report.lua WORKDIR OUT.md
-- WORKDIR holds results.txt (one line per run: rep, stack, workload, ops,
-- seconds, cpu_seconds, check, rss_kib, status), meta.txt (key <TAB>
-- value), startup_split.txt and profiles/ (callgrind summaries, cgtop.lua).
local workdir, out_path = arg[1], arg[2]
assert(workdir and out_path, "usage: report.lua WORKDIR OUT.md")

local function read_lines(path)
  local f = io.open(path)
  if not f then return {} end
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  return lines
end

local function read_all(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local meta, skipped = {}, {}
for _, line in ipairs(read_lines(workdir .. "/meta.txt")) do
  local k, v = line:match("^([^\t]+)\t(.*)$")
  if k == "skipped" then skipped[#skipped + 1] = v elseif k then meta[k] = v end
end

local STACKS = {
  { id = "fsdb54", label = "fsdb Lua 5.4" },
  { id = "fsdbjit", label = "fsdb LuaJIT" },
  { id = "thin54", label = "thin binding Lua 5.4" },
  { id = "thinjit", label = "thin binding LuaJIT" },
  { id = "rawtext", label = "raw C text" },
  { id = "rawprep", label = "raw C prepared" },
  { id = "luasql", label = "LuaSQL" },
  { id = "luadbi", label = "luadbi" },
  { id = "luasqljit", label = "LuaSQL LuaJIT" },
  { id = "luadbijit", label = "luadbi LuaJIT" },
  { id = "sqla_pymysql", label = "SQLAlchemy + PyMySQL" },
  { id = "sqla_mysqldb", label = "SQLAlchemy + mysqlclient" },
}
local LABEL = {}
for _, s in ipairs(STACKS) do LABEL[s.id] = s.label end

local n_loop, n_w4, n_rows = meta.n_loop or "20000", meta.n_w4 or "10000", meta.n_rows or "100000"
local function thousands(s)
  s = tostring(s)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local WORKLOADS = {
  { id = "w1", label = "W1 `SELECT 1` ×" .. thousands(n_loop), unit = "µs/op" },
  { id = "w2", label = "W2 primary-key lookup ×" .. thousands(n_loop), unit = "µs/op" },
  { id = "w3", label = "W3 fetch " .. thousands(n_rows) .. " rows", unit = "µs/row" },
  { id = "w3a", label = "W3a fetch " .. thousands(n_rows) .. " rows as arrays", unit = "µs/row" },
  { id = "w3c", label = "W3c fetch " .. thousands(n_rows) .. " rows as column arrays", unit = "µs/row" },
  { id = "w3s", label = "W3s stream " .. thousands(n_rows) .. " rows", unit = "µs/row" },
  { id = "w3r", label = "W3r stream " .. thousands(n_rows) .. " rows, one row table reused", unit = "µs/row" },
  { id = "w4", label = "W4 " .. thousands(n_w4) .. " single-row INSERTs, 1 tx", unit = "µs/row" },
  { id = "w5", label = "W5 bulk insert " .. thousands(n_rows) .. " rows", unit = "µs/row" },
  { id = "w6q_on", label = "W6 checkout + `SELECT 1` + return, pre-ping on", unit = "µs/op" },
  { id = "w6q_off", label = "W6 checkout + `SELECT 1` + return, pre-ping off", unit = "µs/op" },
  { id = "w6q_ping", label = "W6 checkout + `SELECT 1` + return, COM_PING at every checkout", unit = "µs/op" },
  { id = "w6c_on", label = "W6 checkout + return, pre-ping on", unit = "µs/op" },
  { id = "w6c_off", label = "W6 checkout + return, pre-ping off", unit = "µs/op" },
  { id = "w6c_ping", label = "W6 checkout + return, COM_PING at every checkout", unit = "µs/op" },
  { id = "start", label = "process start to first query", unit = "µs" },
}

-- samples[stack][workload] = { {rep=, us=, rss=}, ... } for runs that passed
local samples, status_count, failures = {}, { ok = 0 }, {}
for _, line in ipairs(read_lines(workdir .. "/results.txt")) do
  local rep, stack, w, ops, secs, cpu, _, rss, status =
    line:match("^(%d+)\t([^\t]+)\t([^\t]+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
  if rep then
    status_count[status] = (status_count[status] or 0) + 1
    if status == "ok" then
      samples[stack] = samples[stack] or {}
      samples[stack][w] = samples[stack][w] or {}
      local c = tonumber(cpu)
      table.insert(samples[stack][w], {
        rep = tonumber(rep), us = tonumber(secs) / tonumber(ops) * 1e6, rss = tonumber(rss) / 1024,
        cpu = c and c >= 0 and c / tonumber(ops) * 1e6 or nil,
      })
    else
      failures[#failures + 1] = ("%s %s rep %s: %s"):format(LABEL[stack] or stack, w, rep, status)
    end
  end
end

local function median(list)
  if #list == 0 then return nil end
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local m = (#t + 1) // 2
  if #t % 2 == 1 then return t[m] end
  return (t[m] + t[m + 1]) / 2
end

local function values(stack, w, field)
  local list = {}
  for _, s in ipairs((samples[stack] or {})[w] or {}) do list[#list + 1] = s[field or "us"] end
  return list
end

local function stat(stack, w, field)
  local list = values(stack, w, field)
  if #list == 0 then return nil end
  return median(list), math.min(table.unpack(list)), math.max(table.unpack(list)), #list
end

local function fmt(v)
  if v == nil then return "–" end
  if v >= 1000 then return ("%.0f"):format(v) end
  if v >= 100 then return ("%.1f"):format(v) end
  if v >= 10 then return ("%.2f"):format(v) end
  return ("%.3f"):format(v)
end

local function cell(stack, w, field)
  local med, lo, hi, n = stat(stack, w, field)
  if not med then return "–" end
  if n == 1 then return fmt(med) end
  return ("%s [%s–%s]"):format(fmt(med), fmt(lo), fmt(hi))
end

-- time(a) / time(b): ratio of the medians, and the spread of the ratios of
-- runs of the same repetition (which ran next to each other).
local function ratio(a, wa, b, wb, field)
  field = field or "us"
  local ma, mb = stat(a, wa, field), stat(b, wb or wa, field)
  if not ma or not mb then return nil end
  local by_rep, paired = {}, {}
  for _, s in ipairs((samples[b] or {})[wb or wa] or {}) do by_rep[s.rep] = s[field] end
  for _, s in ipairs((samples[a] or {})[wa] or {}) do
    if by_rep[s.rep] and s[field] then paired[#paired + 1] = s[field] / by_rep[s.rep] end
  end
  local lo, hi
  if #paired > 1 then lo, hi = math.min(table.unpack(paired)), math.max(table.unpack(paired)) end
  return ma / mb, lo, hi
end

local function ratio_cell(a, wa, b, wb, field)
  local r, lo, hi = ratio(a, wa, b, wb, field)
  if not r then return "–" end
  local f = r < 0.1 and "%.3f" or "%.2f"
  if lo then return (f .. " (" .. f .. "–" .. f .. ")"):format(r, lo, hi) end
  return f:format(r)
end

local out = {}
local function p(...) out[#out + 1] = table.concat({ ... }) end

local present = {}
for _, s in ipairs(STACKS) do
  if samples[s.id] then present[#present + 1] = s end
end

-- ------------------------------------------------------------------ head --
p("# fsdb benchmark results")
p("")
p("Written by `bench/report.lua` at the end of `", meta.command or "bench/run", "` — do not edit by hand;")
p("run `make bench` again. Settings: `", meta.settings or "?", "`.")
p("")
p("| | |")
p("|---|---|")
p("| date | ", meta.date or "?", " |")
p("| fsdb | ", meta.fsdb or "?", " at commit ", meta.commit or "?", " |")
p("| machine | ", meta.cpu or "?", ", Linux ", meta.kernel or "?", " |")
p("| server | ", meta.server or "?", " (scripts/testdb, TCP on 127.0.0.1; InnoDB buffer pool and redo log raised to 512 MiB for the run) |")
p("| client library | ", meta.libmariadb or "?", " (libmariadb, used by fsdb, raw C, LuaSQL, luadbi, mysqlclient) |")
p("| Lua | ", meta.lua54 or "?", "; ", meta.luajit or "no LuaJIT", " |")
p("| Python | ", meta.python or "?", " (Debian's /usr/bin/python3) |")
p("| peers | lua-sql-mysql ", meta["pkg_lua-sql-mysql"] or "?", ", lua-dbi-mysql ", meta["pkg_lua-dbi-mysql"] or "?",
  ", python3-sqlalchemy ", meta["pkg_python3-sqlalchemy"] or "?", ", python3-pymysql ", meta["pkg_python3-pymysql"] or "?",
  ", python3-mysqldb ", meta["pkg_python3-mysqldb"] or "?", " (Debian 12 packages) |")
p("| compiler | ", meta.cc or "?", " (raw C: -O2; fsdb: the Makefile's flags) |")
p("")

local reps = tonumber(meta.reps) or 0
p("**Read the ratios more than the absolute numbers.** This machine's loopback is slow: in this run")
p("a `SELECT 1` round trip from C took ", meta.rtt_unpinned or "?", " µs with server and client placed by the")
p("scheduler and ", meta.rtt_pinned and (meta.rtt_pinned .. " µs") or "(not measured)",
  " with both pinned to the same core (on a quiet machine: about 140 µs and 30 µs).")
if meta.pin == "same" then
  p("This run pinned the server (all threads) and every client process to CPU 0 (`BENCH_PIN=same`):")
  p("round trips are then faster and much steadier (on a quiet machine ±3% between runs instead of")
  p("±15%), and the client's own CPU time counts in full, which is what the ratios to raw C are")
  p("about. Server work (InnoDB inserts, producing rows) shares that CPU too, so W3 and W5 include")
  p("it. `BENCH_PIN=off make bench` runs unpinned. All stacks use plain TCP (no TLS).")
else
  p("This run was not pinned (`BENCH_PIN=off`): expect more spread. All stacks use plain TCP (no TLS).")
end
p("The machine has 2 cores and may be shared with other jobs (other test servers ran during")
p("development), hence ", reps, " interleaved repetitions: every cell is the median, with [min–max];")
p("each stack runs as its own process per workload, and each repetition starts the round of")
p("stacks with a different one.")
p("")

-- ---------------------------------------------------------------- stacks --
p("## Stacks")
p("")
p("| stack | runs on | how each workload is done |")
p("|---|---|---|")
p("| fsdb Lua 5.4 | lua5.4, build/lua5.4 | `conn:execute` (no parameters: text protocol; parameters: prepared, cached); W3 buffered rows keyed by column name; W3s `conn:rows()`; W3r `conn:query_rows(sql, nil, {reuse = true})`; W5 `conn:executemany` (MariaDB array binding); W6 `engine:connect()` / `conn:close()` |")
p("| fsdb LuaJIT | luajit, build/luajit | the same script (bench/fsdb_stack.lua) |")
p("| raw C text | bench/raw.c | `mysql_real_query` + `mysql_use_result`/`mysql_store_result`, values escaped with `mysql_real_escape_string`; W5 multi-row INSERTs of ~1 MiB |")
p("| raw C prepared | bench/raw.c | `mysql_stmt_*`, bound once, W5 array binding in batches of 20,000 rows (as fsdb) |")
p("| LuaSQL | lua5.4 (Debian builds it for 5.1–5.4) | text only (no parameters in LuaSQL): ids formatted into the SQL, values through `conn:escape`; rows `cur:fetch({}, \"a\")` (all values strings); W5 multi-row INSERTs of ~1 MiB; no pool (no W6) |")
p("| luadbi | lua5.4 (Debian builds it for 5.1–5.4) | statements prepared once (binary protocol), `st:execute(...)`, `st:fetch(true)`; W5 a prepared 1,000-row multi-VALUES INSERT; no pool (no W6) |")
p("| SQLAlchemy + PyMySQL | /usr/bin/python3, SQLAlchemy Core 1.4 (future mode) | `conn.execute(select(items).where(...))`, `.fetchall()`; W4 `conn.execute(insert, row)`; W5 `conn.execute(insert, rows)` (executemany → multi-row INSERTs); W6 `engine.connect()` with QueuePool, `pool_pre_ping` on/off |")
p("| SQLAlchemy + mysqlclient | the same with `mysql+mysqldb` | the same |")
p("")
p("Every stack does the same work: the same statements, the same ", thousands(n_loop), " ids for W2, the")
p("same generated rows for W4/W5 (prices and datetimes passed as strings, every fifth note NULL), all")
p("of W3/W4/W5 inside one transaction where they write. Every timed loop is preceded by 200 untimed")
p("round trips (W1, W2, W6). Every run reports a check value that bench/run compares with what")
p("the server computes from the data; see \"Verification\".")
if #skipped > 0 then
  p("")
  p("Skipped on this machine:")
  for _, s in ipairs(skipped) do p("- ", s) end
end
p("")

-- A table's header and rule lines: the fixed first columns, then one
-- right-aligned column per stack and per extra label.
local function table_head(first, first_rule, stacks, extra)
  local head, rule = { first }, { first_rule }
  for _, s in ipairs(stacks) do
    head[#head + 1] = " " .. s.label .. " |"
    rule[#rule + 1] = "---:|"
  end
  for _, label in ipairs(extra or {}) do
    head[#head + 1] = " " .. label .. " |"
    rule[#rule + 1] = "---:|"
  end
  p(table.concat(head))
  p(table.concat(rule))
end

-- --------------------------------------------------------------- results --
p("## Results: time per operation")
p("")
p("Median [min–max] of ", reps, " repetitions, in µs per operation (per row for W3–W5).")
p("")
table_head("| workload | unit |", "|---|---|", present)
for _, w in ipairs(WORKLOADS) do
  local row = { "| ", w.label, " | ", w.unit, " |" }
  local any = false
  for _, s in ipairs(present) do
    local c = cell(s.id, w.id)
    if c ~= "–" then any = true end
    row[#row + 1] = " " .. c .. " |"
  end
  if any then p(table.concat(row)) end
end
p("")
do
  local single, many = stat("fsdb54", "w4"), stat("fsdb54", "w5")
  if single and many then
    p(("fsdb's `executemany` (W5) inserts a row %.0f × faster than single-row INSERTs in a transaction (W4)."):format(single / many))
    p("")
  end
end
p("Peak resident set size of the process (VmHWM, MiB, median) for the row-heavy workloads:")
p("")
table_head("| workload |", "|---|", present)
for _, wid in ipairs({ "w3", "w3s", "w5" }) do
  local row = { "| ", wid == "w3" and "W3 fetch all" or wid == "w3s" and "W3s stream" or "W5 bulk insert", " |" }
  for _, s in ipairs(present) do
    local m = stat(s.id, wid, "rss")
    row[#row + 1] = " " .. (m and ("%.1f"):format(m) or "–") .. " |"
  end
  p(table.concat(row))
end
p("")

-- ------------------------------------------------------------------- cpu --
p("## Client CPU per operation")
p("")
p("The process's own CPU time (user + system, `os.clock()` / `CLOCK_PROCESS_CPUTIME_ID` /")
p("`time.process_time()`) during the timed section, per operation, median [min–max]. Waiting for")
p("the server is not in it, and it moves much less with the machine's load than the wall clock: it")
p("is what each client adds to the round trip.")
p("")
table_head("| workload |", "|---|", present, { "fsdb 5.4 − raw C (same protocol)" })
local SAME_CPU = { w1 = "rawtext", w2 = "rawprep", w3 = "rawtext", w3a = "rawtext", w3c = "rawtext", w3s = "rawtext", w3r = "rawtext",
  w4 = "rawprep", w5 = "rawprep", w6q_on = "rawtext", w6q_off = "rawtext", w6q_ping = "rawtext" }
local SAME_CPU_W = { w3a = "w3", w3c = "w3", w3r = "w3s", w6q_on = "w1", w6q_off = "w1", w6q_ping = "w1" }
for _, w in ipairs(WORKLOADS) do
  if w.id ~= "start" then
    local row = { "| ", w.label, " |" }
    local any = false
    for _, s in ipairs(present) do
      local c = cell(s.id, w.id, "cpu")
      if c ~= "–" then any = true end
      row[#row + 1] = " " .. c .. " |"
    end
    local raw = SAME_CPU[w.id]
    local a = stat("fsdb54", w.id, "cpu")
    local b = raw and stat(raw, SAME_CPU_W[w.id] or w.id, "cpu")
    row[#row + 1] = " " .. ((a and b) and ("%+.2f µs (%.2f ×)"):format(a - b, a / b) or "–") .. " |"
    if any then p(table.concat(row)) end
  end
end
p("")

-- ------------------------------------------------------------ cpu ratios --
-- Each stack's client CPU against raw C doing the same over the same
-- protocol: fsdb as SAME_CPU says; LuaSQL and SQLAlchemy (text, values in
-- the SQL) against raw C text; luadbi (prepared) against raw C prepared.
local PROTO = { luasql = "rawtext", luasqljit = "rawtext", sqla_pymysql = "rawtext", sqla_mysqldb = "rawtext",
  luadbi = "rawprep", luadbijit = "rawprep" }
-- The thin binding (bench/thin.c) runs fsdb's statements: compared as fsdb is.
local LIKE_FSDB = { fsdb54 = true, fsdbjit = true, thin54 = true, thinjit = true }
local function raw_for(stack, w)
  if LIKE_FSDB[stack] then return SAME_CPU[w], SAME_CPU_W[w] or w end
  if w:match("^w6") then return nil end
  return PROTO[stack], w
end
local ratio_stacks = {}
for _, s in ipairs(present) do
  if PROTO[s.id] or LIKE_FSDB[s.id] then ratio_stacks[#ratio_stacks + 1] = s end
end
p("## Client CPU per operation, ratio to raw C with the same protocol")
p("")
p("Each stack's client CPU per operation (the table above) divided by raw C's doing the same over")
p("the same protocol: fsdb as in the last column above (text for W1, W3, W3s and W6 against raw W1;")
p("prepared for W2, W4, W5), LuaSQL and SQLAlchemy against raw C text, luadbi against raw C")
p("prepared. The ratio of the medians, in brackets the lowest and highest ratio within one")
p("repetition. 1.00 is the cost of libmariadb itself; what is above it is the stack's own work.")
p("The thin binding (bench/thin.c) is raw C's statements handing fresh Lua rows over the cheapest")
p("way the Lua C API allows and doing nothing else: its ratio is what the Lua values alone cost.")
p("")
table_head("| workload |", "|---|", ratio_stacks)
for _, w in ipairs(WORKLOADS) do
  if w.id ~= "start" then
    local row, any = { "| ", w.label, " |" }, false
    for _, s in ipairs(ratio_stacks) do
      local raw, rw = raw_for(s.id, w.id)
      local c = raw and ratio_cell(s.id, w.id, raw, rw, "cpu") or "–"
      if c ~= "–" then any = true end
      row[#row + 1] = " " .. c .. " |"
    end
    if any then p(table.concat(row)) end
  end
end
p("")

-- ---------------------------------------------------------------- ratios --
p("## Ratios: fsdb's time ÷ the other stack's time")
p("")
p("Below 1 fsdb is faster (0.25 = four times as fast). The ratio of the medians, then in brackets")
p("the lowest and highest ratio of two runs of the same repetition. \"raw C\" is the same protocol")
p("as fsdb uses: text for W1, W3, W3s and for W6 (against raw W1); prepared for W2, W4, W5.")
p("")
local SAME = { w1 = "rawtext", w2 = "rawprep", w3 = "rawtext", w3a = "rawtext", w3c = "rawtext", w3s = "rawtext", w3r = "rawtext",
  w4 = "rawprep", w5 = "rawprep", w6q_on = "rawtext", w6q_off = "rawtext", w6q_ping = "rawtext", start = "rawtext" }
local SAME_W = { w3a = "w3", w3c = "w3", w3r = "w3s", w6q_on = "w1", w6q_off = "w1", w6q_ping = "w1" }
-- Each peer against fsdb on the same runtime.
local peers = {}
for _, id in ipairs({ "luasql", "luadbi", "luasqljit", "luadbijit", "sqla_pymysql", "sqla_mysqldb" }) do
  if samples[id] then peers[#peers + 1] = id end
end
local function fsdb_for(peer) return peer:match("jit$") and "fsdbjit" or "fsdb54" end
local function fsdb_label(peer) return peer:match("jit$") and "fsdb LuaJIT" or "fsdb 5.4" end
do
  local extra = {}
  if samples.fsdbjit then extra[#extra + 1] = "fsdb LuaJIT ÷ raw C" end
  for _, id in ipairs(peers) do extra[#extra + 1] = fsdb_label(id) .. " ÷ " .. LABEL[id] end
  table_head("| workload | fsdb 5.4 ÷ raw C |", "|---|---:|", {}, extra)
end
for _, w in ipairs(WORKLOADS) do
  if samples.fsdb54 and samples.fsdb54[w.id] then
    local row = { "| ", w.label, " |" }
    local raw = SAME[w.id]
    row[#row + 1] = " " .. (raw and ratio_cell("fsdb54", w.id, raw, SAME_W[w.id] or w.id) or "–") .. " |"
    if samples.fsdbjit then
      row[#row + 1] = " " .. (raw and ratio_cell("fsdbjit", w.id, raw, SAME_W[w.id] or w.id) or "–") .. " |"
    end
    for _, id in ipairs(peers) do
      row[#row + 1] = " " .. (samples[fsdb_for(id)] and ratio_cell(fsdb_for(id), w.id, id) or "–") .. " |"
    end
    p(table.concat(row))
  end
end
p("")

-- --------------------------------------------------------------- targets --
p("## Targets (fsdb on Lua 5.4 unless a runtime is named)")
p("")
p("| target | measured | |")
p("|---|---|---|")
local misses = {}
local function verdict(name, ok, measured, key)
  if ok == nil then
    p("| ", name, " | ", measured or "not measured", " | – |")
    return
  end
  p("| ", name, " | ", measured, " | ", ok and "met" or "**missed**", " |")
  if not ok then misses[#misses + 1] = name end
end
local function target_ratio(name, key, a, wa, b, wb, limit)
  local r = ratio(a, wa, b, wb)
  verdict(name, r and r <= limit, r and ("%.2f ×"):format(r), key)
end
target_ratio("W1 ≤ 1.05 × raw C (text)", "w1", "fsdb54", "w1", "rawtext", "w1", 1.05)
target_ratio("W2 ≤ 1.05 × raw C (prepared)", "w2", "fsdb54", "w2", "rawprep", "w2", 1.05)
target_ratio("W4 ≤ 1.05 × raw C (prepared)", "w4", "fsdb54", "w4", "rawprep", "w4", 1.05)
do
  local m = stat("fsdb54", "w3")
  verdict("W3 ≤ 1.0 µs per row", m and m <= 1.0, m and ("%.2f µs"):format(m), "w3")
  local r = ratio("luasql", "w3", "fsdb54", "w3")
  verdict("W3 ≥ 2.5 × LuaSQL", r and r >= 2.5, r and ("%.2f × as fast"):format(r), "w3")
  local rss = stat("fsdb54", "w3", "rss")
  verdict("W3 peak RSS ≤ 50 MiB", rss and rss <= 50, rss and ("%.1f MiB"):format(rss), "w3rss")
  rss = stat("fsdb54", "w3s", "rss")
  verdict("W3 streaming peak RSS ≤ 10 MiB", rss and rss <= 10, rss and ("%.1f MiB"):format(rss), "w3s")
  m = stat("fsdb54", "w5")
  verdict("W5 ≤ 2.5 µs per row", m and m <= 2.5, m and ("%.2f µs"):format(m), "w5")
  for _, id in ipairs({ "sqla_pymysql", "sqla_mysqldb" }) do
    r = ratio(id, "w5", "fsdb54", "w5")
    verdict("W5 ≥ 4 × " .. LABEL[id], r and r >= 4, r and ("%.1f × as fast"):format(r), "w5")
  end
  m = stat("fsdb54", "w6c_on")
  verdict("W6 checkout + return ≤ 1 µs (clean connection, pre-ping on)", m and m <= 1.0,
    m and ("%.2f µs"):format(m), "w6c")
  m = stat("fsdb54", "w6c_off")
  verdict("W6 checkout + return ≤ 1 µs (clean connection, pre-ping off)", m and m <= 1.0,
    m and ("%.2f µs"):format(m), "w6c")
  target_ratio("W6 checkout + `SELECT 1` + return ≤ 1.10 × raw C W1, pre-ping on", "w6q",
    "fsdb54", "w6q_on", "rawtext", "w1", 1.10)
  -- Client CPU per operation against raw C with the same protocol, on both runtimes.
  local CPU_TARGETS = {
    { "w2", "W2 primary-key lookup", 1.10 }, { "w4", "W4 single-row INSERT", 1.10 },
    { "w3", "W3 100,000 rows keyed by name", 2.5 }, { "w3a", "W3 100,000 rows as arrays", 2.0 },
    { "w3s", "W3s streaming", 3.0 }, { "w5", "W5 bulk insert (array binding)", 3.0 },
  }
  for _, runtime in ipairs({ { "fsdb54", "Lua 5.4" }, { "fsdbjit", "LuaJIT" } }) do
    if samples[runtime[1]] then
      for _, t in ipairs(CPU_TARGETS) do
        local raw, rw = raw_for(runtime[1], t[1])
        local r = ratio(runtime[1], t[1], raw, rw, "cpu")
        verdict(("%s, %s: client CPU ≤ %.2f × raw C (%s)"):format(t[2], runtime[2], t[3],
          raw == "rawtext" and "text" or "prepared"), r and r <= t[3], r and ("%.2f ×"):format(r), t[1])
      end
    end
  end
  rss = stat("fsdbjit", "w3", "rss")
  if rss then verdict("W3 peak RSS ≤ 50 MiB, LuaJIT", rss <= 50, ("%.1f MiB"):format(rss), "w3rss") end
  rss = stat("fsdbjit", "w3s", "rss")
  if rss then verdict("W3 streaming peak RSS ≤ 10 MiB, LuaJIT", rss <= 10, ("%.1f MiB"):format(rss), "w3s") end
  m = stat("fsdb54", "start")
  verdict("process start to first query ≤ 5 ms", m and m <= 5000, m and ("%.2f ms"):format(m / 1000), "start")
end
p("")

-- ---------------------------------------------------------- verification --
p("## Verification")
p("")
local total = 0
for _, n in pairs(status_count) do total = total + n end
p("- ", status_count.ok, " of ", total, " runs passed their checks; failed runs are left out of every table.")
p("- W4 and W5: before each run `items_w` is emptied; after it, `COUNT(*)` and")
p("  `SUM(CRC32(CONCAT_WS('|', name, price, qty, created, note)))` of `items_w` must equal those of the")
p("  first N rows of `items` (generated by the server with the same rule), and the stack must report")
p("  N affected rows.")
p("- W2, W3, W3s: each stack adds up id + qty + the length of every text value of the rows it got;")
p("  the sum must equal what the server computes over the same rows. W1 and W6 add up the `1`s.")
if #failures > 0 then
  p("- Failed runs:")
  for _, f in ipairs(failures) do p("  - ", f) end
end
p("")

-- -------------------------------------------------------------- profiles --
local profdir = workdir .. "/profiles"
local function load_top(name)
  local s = read_all(profdir .. "/" .. name)
  if not s then return nil end
  local total = tonumber(s:match("instructions_per_op (%d+)"))
  local rows = {}
  for n, share, fn in s:gmatch("\n(%d+) ([%d.]+)%% ([^\n]+)") do
    rows[#rows + 1] = { n = tonumber(n), share = share, fn = fn }
  end
  return total, rows
end

-- Inclusive entries worth showing: fsdb's own functions and the Lua /
-- libmariadb / libc calls they spend in.
local SHOW = {
  "lua_createtable", "lua_pushlstring", "lua_rawset", "lua_rawseti", "lua_setfield", "luaC_step",
  "luaH_resize", "luaH_newkey", "internshrstr", "lua_newuserdatauv", "luaL_checkudata", "lua_rotate",
  "snprintf", "strtoll", "strtol", "strtoull", "malloc", "free", "realloc", "poll",
  "mysql_real_query", "mysql_use_result", "mysql_store_result", "mysql_fetch_row", "mysql_free_result",
  "mysql_stmt_execute", "mysql_stmt_fetch", "mysql_stmt_bind_param", "mysql_stmt_free_result",
  "ma_duplicate_resultset_metadata", "mysql_rollback", "mysql_ping", "mysql_real_connect",
  "mysql_library_init", "luaL_loadfilex", "luaY_parser", "ll_require", "_dl_open", "dlopen",
  "luaopen_fsdb_core", "mysql_init",
}
local show = {}
for _, n in ipairs(SHOW) do show[n] = true end
local OWN = { ["lconn.c"] = true, ["lengine.c"] = true, ["lcursor.c"] = true, ["result.c"] = true,
  ["stmt.c"] = true, ["conn.c"] = true, ["pool.c"] = true, ["sqlscan.c"] = true, ["error.c"] = true,
  ["luri.c"] = true, ["uri.c"] = true, ["core.c"] = true, ["columnar.c"] = true }
local function interesting(fn)
  local file = fn:match("%(([%w_]+%.c)%)$")
  if file and OWN[file] then return true end
  return show[fn] == true
end

local PROFILED = {
  { name = "w1", raw = "raw_w1", label = "W1 `SELECT 1`", per = "operation", rawlabel = "raw C text" },
  { name = "w2", raw = "raw_w2", label = "W2 primary-key lookup", per = "operation", rawlabel = "raw C prepared" },
  { name = "w3", raw = "raw_w3", label = "W3 fetch all rows", per = "row", rawlabel = "raw C text" },
  { name = "w3a", raw = "raw_w3", label = "W3a fetch all rows as arrays", per = "row", rawlabel = "raw C text" },
  { name = "w3c", raw = "raw_w3", label = "W3c fetch all rows as column arrays", per = "row", rawlabel = "raw C text" },
  { name = "w3s", raw = "raw_w3s", label = "W3s stream all rows", per = "row", rawlabel = "raw C text" },
  { name = "w3r", raw = "raw_w3s", label = "W3r stream all rows, one row table reused", per = "row", rawlabel = "raw C text" },
  { name = "w4", raw = "raw_w4", label = "W4 single-row INSERT", per = "row", rawlabel = "raw C prepared" },
  { name = "w5", raw = "raw_w5", label = "W5 executemany", per = "row", rawlabel = "raw C prepared" },
  { name = "w6q_on", raw = "raw_w1", label = "W6 checkout + `SELECT 1` + return (pre-ping on)", per = "operation",
    rawlabel = "raw C W1" },
  { name = "w6c_on", label = "W6 checkout + return (pre-ping on)", per = "operation" },
  { name = "start", label = "start: process start to first query (whole program)", per = "start" },
}
p("## Where the time goes (callgrind, fsdb on Lua 5.4)")
p("")
if not read_all(profdir .. "/w1.self") then
  p("No profiles in this run (`BENCH_PROFILE=0`, `BENCH_QUICK=1`, or valgrind or the static libraries")
  p("were missing).")
  p("")
else
  p("bench/run runs each workload once more under `valgrind --tool=callgrind --collect-atstart=no`,")
  p("collecting only the timed section (the same `timer()` that measures it switches collection on")
  p("and off), in `build/bench/profile_lua` — Lua 5.4 and libmariadb linked statically from Debian's")
  p("`.a` files so that their functions have names, fsdb's core compiled from csrc/ with -O2 -g —")
  p("and the raw C reference built the same way. Costs are instructions per operation: not time (a")
  p("round trip is a wait, not instructions), but what the client adds to each round trip.")
  p("\"Inclusive\" is a function with everything it calls; the Lua VM's own frames are left out.")
  p("")
  for _, pr in ipairs(PROFILED) do
    local total, incl = load_top(pr.name .. ".incl")
    local _, self = load_top(pr.name .. ".self")
    if total then
      local line = ("### %s: %s instructions per %s"):format(pr.label, thousands(total), pr.per)
      if pr.raw then
        local rt = load_top(pr.raw .. ".self")
        if rt then
          line = line .. (" (%s: %s, so fsdb adds %s)"):format(pr.rawlabel, thousands(rt), thousands(total - rt))
        end
      end
      local thin = load_top("thin_" .. pr.name .. ".self")
      if thin then line = line .. ("; the thin binding: %s"):format(thousands(thin)) end
      p(line)
      p("")
      p("| instructions/", pr.per, " | share | function (inclusive) |")
      p("|---:|---:|---|")
      local shown = 0
      for _, r in ipairs(incl) do
        if interesting(r.fn) and shown < 16 and r.n <= total then
          p("| ", thousands(("%.0f"):format(r.n)), " | ", r.share, "% | `", r.fn, "` |")
          shown = shown + 1
        end
      end
      p("")
      local parts = {}
      for i = 1, math.min(8, #self) do
        parts[#parts + 1] = ("`%s` %s"):format(self[i].fn, thousands(("%.0f"):format(self[i].n)))
      end
      p("Largest self costs: ", table.concat(parts, ", "), ".")
      p("")
    end
  end
end
local split = read_lines(workdir .. "/startup_split.txt")
if #split > 0 then
  local parts = {}
  for _, line in ipairs(split) do
    for k, v in line:gmatch("(%a+) ([%d.]+)") do
      parts[k] = parts[k] or {}
      table.insert(parts[k], tonumber(v))
    end
  end
  p("### Process start to first query, fsdb on Lua 5.4 (wall clock, median of ", #split, ")")
  p("")
  p("| interpreter start | `require \"fsdb\"` | `engine.new` | `engine:connect()` | first `SELECT 1` | total |")
  p("|---:|---:|---:|---:|---:|---:|")
  local function ms(k) return parts[k] and ("%.2f ms"):format(median(parts[k])) or "–" end
  p("| ", ms("interpreter"), " | ", ms("require"), " | ", ms("engine"), " | ", ms("connect"), " | ",
    ms("query"), " | ", ms("total"), " |")
  p("")
end

-- -------------------------------------------------------------- analysis --
local analysis = read_all("bench/ANALYSIS.md")
if analysis then
  p((analysis:gsub("%s+$", "")))
  p("")
end
p("Targets missed in this run: ", #misses == 0 and "none." or (#misses .. " — " .. table.concat(misses, "; ") .. "."))
p("")

local f = assert(io.open(out_path, "w"))
f:write(table.concat(out, "\n"), "\n")
f:close()
