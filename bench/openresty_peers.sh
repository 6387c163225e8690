#!/usr/bin/env bash
# fsdb against lua-resty-mysql in Debian's nginx (2 workers): a PK lookup
# and a 100-row listing of the same table, at 10, 50 and 200 concurrent
# clients (ab -k on loopback), for fsdb's three OpenResty modes (cosocket:
# the non-blocking transport; blocking; worker thread) and for
# lua-resty-mysql. Prints a markdown table of req/s and p50/p99 (ms).
#
#   usage: bench/openresty_peers.sh [REQUESTS]     (per cell; default 4000)
#
# lua-resty-mysql is not in Debian: it is taken at run time from a peers
# directory (FSDB_PEERS, else ../shared/peers or ../../shared/peers next to
# this checkout) into a temporary directory, never into the project; without
# it its column is left out. A throwaway MariaDB (scripts/testdb) holds the
# table; every server and client is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${1:-4000}

if ! scripts/openresty check >/dev/null 2>&1; then
  echo "openresty_peers: nginx with the Lua module is not available; skipped" >&2
  exit 0
fi
command -v ab >/dev/null || { echo "openresty_peers: ab (apache2-utils) missing; skipped" >&2; exit 0; }

pkg_file() { dpkg -L "$1" 2>/dev/null | grep -E -- "$2" | head -n 1; }
NGINX=$(command -v nginx || pkg_file nginx-core '/sbin/nginx$' || pkg_file nginx '/sbin/nginx$')
[[ -x "$NGINX" ]] || NGINX=/usr/sbin/nginx
LUA_MODULE=$(pkg_file libnginx-mod-http-lua '/ngx_http_lua_module\.so$')
NDK_MODULE=$(pkg_file libnginx-mod-http-ndk '/ndk_http_module\.so$')
RESTY_DIR=$(dirname "$(dirname "$(pkg_file lua-resty-core '/resty/core\.lua$')")")

peers=${FSDB_PEERS:-}
for d in "$root/../shared/peers" "$root/../../shared/peers"; do
  if [[ -z "$peers" && -f "$d/lua-resty-mysql/lib/resty/mysql.lua" ]]; then peers=$(cd "$d" && pwd); fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fsdb-orpeers.XXXXXX")
cleanup() {
  for p in "$work"/*/logs/nginx.pid; do
    [[ -f "$p" ]] && kill -QUIT "$(cat "$p")" 2>/dev/null || true
  done
  scripts/testdb stop "$work/db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

scripts/testdb start "$work/db" >/dev/null
# shellcheck disable=SC1091
source "$work/db/env"
scripts/testdb sql "$work/db" -- "CREATE TABLE fsdb_test.bench_items (
    id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10,2) NOT NULL,
    qty INT NOT NULL, created DATETIME NOT NULL) CHARACTER SET utf8mb4;
  INSERT INTO fsdb_test.bench_items
    SELECT seq, CONCAT('item ', seq), seq * 1.25, seq % 17, '2026-01-01 00:00:00' + INTERVAL seq MINUTE
    FROM fsdb_test.seq_1_to_1000;" >/dev/null

modes=(cosocket blocking thread)
if [[ -n "$peers" ]]; then
  mkdir -p "$work/peer"
  cp -R "$peers/lua-resty-mysql/lib/." "$work/peer/"
  # lua-resty-mysql loads resty.sha256 (lua-resty-string, not in Debian)
  # for caching_sha2_password only; the test server uses
  # mysql_native_password, so a stand-in that refuses is enough.
  mkdir -p "$work/peer/resty"
  [[ -f "$work/peer/resty/sha256.lua" ]] ||
    printf 'return { new = function() return nil end }\n' > "$work/peer/resty/sha256.lua"
  modes+=(resty)
else
  echo "openresty_peers: no lua-resty-mysql in a peers directory; its column is left out" >&2
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ab → "req/s p50 p99 failed" (failed: non-2xx + connect/receive/exceptions)
measure() {
  local out
  out=$(ab -q -k -s 60 -c "$1" -n "$n" "$2" 2>&1) || { echo "0 - - ab-failed"; return; }
  awk '
    /^Requests per second:/ {rps = $4}
    /^Non-2xx responses:/ {bad += $3}
    /Exceptions:/ {gsub(/[(),]/, " "); for (i = 1; i <= NF; i++) if ($i == "Connect:" || $i == "Receive:" || $i == "Exceptions:") bad += $(i + 1)}
    /^ +50%/ {p50 = $2}
    /^ +99%/ {p99 = $2}
    END {printf "%.0f %s %s %d\n", rps, p50, p99, bad}' <<<"$out"
}

declare -A res
user_directive=""
[[ $(id -u) == 0 ]] && user_directive="user root;"
for mode in "${modes[@]}"; do
  prefix=$work/$mode
  mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
  port=$(free_port)
  sed -e "s|@NDK_MODULE@|$NDK_MODULE|; s|@LUA_MODULE@|$LUA_MODULE|; s|@USER_DIRECTIVE@|$user_directive|" \
      -e "s|@PORT@|$port|; s|@MODE@|$mode|" \
      -e "s|@LUA_PATH@|$root/lua/?.lua;$root/lua/?/init.lua;$root/bench/openresty_peers/?.lua;$work/peer/?.lua;$RESTY_DIR/?.lua;;|" \
      -e "s|@LUA_CPATH@|$root/build/luajit/?.so;;|" \
      bench/openresty_peers/nginx.conf > "$prefix/conf/nginx.conf"
  DATABASE_URL=$FSDB_TEST_URL "$NGINX" -p "$prefix/" -c conf/nginx.conf
  base=http://127.0.0.1:$port
  for _ in $(seq 50); do curl -fsS -o /dev/null "$base/pk?id=1" 2>/dev/null && break; sleep 0.1; done
  ab -q -k -c 50 -n 2000 "$base/pk?id=7" >/dev/null 2>&1 || true   # warm the pools
  ab -q -k -c 50 -n 1000 "$base/list?from=100" >/dev/null 2>&1 || true
  for c in 10 50 200; do
    res[$mode.pk.$c]=$(measure "$c" "$base/pk?id=42")
    res[$mode.list.$c]=$(measure "$c" "$base/list?from=100")
  done
  kill -QUIT "$(cat "$prefix/logs/nginx.pid")"
  for _ in $(seq 100); do [[ -f "$prefix/logs/nginx.pid" ]] || break; sleep 0.1; done
  grep -E '\[(error|crit|alert|emerg)\]' "$prefix/logs/error.log" | head -3 >&2 || true
done

cell() { # "rps p50 p99 bad" → "rps (p50/p99)"
  local r p50 p99 bad
  read -r r p50 p99 bad <<<"$1"
  if [[ "$bad" != 0 ]]; then printf '%s (%s/%s, %s failed)' "$r" "$p50" "$p99" "$bad"
  else printf '%s (%s/%s)' "$r" "$p50" "$p99"; fi
}

echo "### OpenResty: fsdb's modes and lua-resty-mysql (req/s, p50/p99 ms)"
echo
echo "nginx with 2 workers, \`ab -k -n $n\` on loopback, MariaDB over TCP, all on"
echo "the same cores; \`pk\`: one row by primary key, \`list\`: 100 rows."
echo
header="| request | c |"
rule="|---|--:|"
for mode in "${modes[@]}"; do
  case $mode in
    cosocket) header+=" fsdb cosocket |" ;;
    blocking) header+=" fsdb blocking |" ;;
    thread) header+=" fsdb thread |" ;;
    resty) header+=" lua-resty-mysql |" ;;
  esac
  rule+="--:|"
done
echo "$header"
echo "$rule"
for ep in pk list; do
  for c in 10 50 200; do
    line="| \`$ep\` | $c |"
    for mode in "${modes[@]}"; do line+=" $(cell "${res[$mode.$ep.$c]}") |"; done
    echo "$line"
  done
done
