#!/bin/bash
# Measures the engine crate's codegen-units (docs/RESULTS.md, "Release profile"): release build time of augur-engine and
# redis-benchmark GET throughput (cache hits), variants alternating.
set -u
cd "$(dirname "$0")/.."
eval "$(./x env)"
for cu in 1 4 16; do
  touch engine/src/lib.rs
  start=$(date +%s.%N)
  cargo build --locked --release -p augur-engine --bin augur --config "profile.release.package.augur-engine.codegen-units=$cu" >/dev/null 2>&1 || exit 1
  echo "build cu=$cu: $(echo "$(date +%s.%N) - $start" | bc) s"
  cp $CARGO_TARGET_DIR/release/augur /tmp/augur-cu$cu
done
# restore the committed setting's binary
cargo build --locked --release -p augur-engine --bin augur >/dev/null 2>&1
for cu in 1 4 16; do
  d=$(mktemp -d); port=$((7300 + cu))
  /tmp/augur-cu$cu serve --listen 127.0.0.1:$port --wal-dir $d/wal --store rocksdb:$d/db --cache-size 1GiB >/dev/null 2>&1 &
  echo $! > /tmp/augur-cu$cu.pid
done
sleep 2
for cu in 1 4 16; do redis-benchmark -p $((7300 + cu)) -t set -n 200000 -r 100000 -P 16 -q >/dev/null; done
for round in 1 2 3 4 5; do
  order="1 4 16"; [ $((round % 2)) = 0 ] && order="16 4 1"
  for cu in $order; do
    for p in 1 16; do
      r=$(redis-benchmark -p $((7300 + cu)) -t get -n 200000 -r 100000 -c 50 -P $p -q | tr '\r' '\n' | grep -E '^GET: [0-9]' | awk '{print $2}')
      echo "round=$round cu=$cu P=$p get=$r"
    done
  done
done
for cu in 1 4 16; do kill $(cat /tmp/augur-cu$cu.pid); done
