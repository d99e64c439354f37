#!/usr/bin/env bash
# Where time goes on Augur's GET-hit path: `perf record` on `augur serve` while
# `redis-benchmark -t get -P 16` reads cached keys, then the top functions by self
# time and by inclusive time (children).
#
#   bench/scripts/profile-get.sh [AUGUR_BINARY] [OUT_DIR]
#
# Needs perf (Debian: linux-perf) and redis-tools. The release profile keeps line
# tables (`debug = "line-tables-only"`), so perf names Rust functions and unwinds
# through DWARF. Environment: SECONDS_RECORDED (default 8), PIPELINE (16),
# CLIENTS (50), FREQ (sampling Hz, 499).
set -euo pipefail

AUGUR=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/augur/target}/release/augur}
OUT=${2:-$(mktemp -d /tmp/augur-profile.XXXXXX)}
SECONDS_RECORDED=${SECONDS_RECORDED:-8}
PIPELINE=${PIPELINE:-16}
CLIENTS=${CLIENTS:-50}
FREQ=${FREQ:-499}
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/augur-profile-data.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$AUGUR" serve --listen "127.0.0.1:$PORT" --cache-size 1GiB --wal-dir "$DATA/wal" \
  --store "rocksdb:$DATA/rocksdb" >"$OUT/serve.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
until [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ]; do sleep 0.1; done

# Cached keys: write every key redis-benchmark's -r 100000 can pick (key:000000000000
# to key:000000099999; a random SET run would miss about 5% of them, and those GETs
# would read RocksDB), then wait until nothing is dirty.
awk 'BEGIN { v = sprintf("%64s", ""); gsub(/ /, "x", v);
             for (i = 0; i < 100000; i++) { k = sprintf("key:%012d", i);
               printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n", length(k), k, v } }' |
  redis-cli -p "$PORT" --pipe >/dev/null
until redis-cli -p "$PORT" INFO persistence | grep -q '^dirty_keys:0'; do sleep 0.1; done

redis-benchmark -p "$PORT" -t get -n 100000000 -r 100000 -P "$PIPELINE" -c "$CLIENTS" -d 64 -q \
  >"$OUT/benchmark.txt" 2>&1 &
LOAD=$!
sleep 1
perf record -F "$FREQ" --call-graph dwarf,16384 -p "$SERVER" -o "$OUT/perf.data" -- sleep "$SECONDS_RECORDED" \
  2>"$OUT/record.log"
kill "$LOAD" 2>/dev/null || true
wait "$LOAD" 2>/dev/null || true
redis-cli -p "$PORT" INFO stats | tr -d '\r' | grep -E '^keyspace_(hits|misses):' >"$OUT/hits.txt" || true

perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio --percent-limit 0.7 -g none \
  >"$OUT/self.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --children --sort symbol --stdio --percent-limit 3 -g none \
  >"$OUT/children.txt" 2>/dev/null
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio -g none >"$OUT/dso.txt" 2>/dev/null
echo "profile in $OUT: self.txt (self time), children.txt (inclusive), dso.txt (per library)"
grep -v '^#' "$OUT/self.txt" | grep -v '^$' | head -25
