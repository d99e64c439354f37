#!/bin/bash
# A deliberately bad model, promoted by hand and rolled back by its live trial
# (docs/RESULTS.md, "Adaptation, rollback and live A/B").
#
# Usage: bench/scripts/rollback-demo.sh AUGUR_BINARY [WORKDIR]
#
# Phase 1 trains the learned prefetcher on Zipf traffic (no session structure), so
# its first model is a bad fit for phase 2, which restarts the server on the same
# model directory under sessions traffic. As soon as a sessions-trained model has
# taken over, an operator promotes the Zipf-trained one; the replaced model goes on
# the rollback trial and, if the live samples say it is better, takes over again.
set -euo pipefail
A=${1:?usage: rollback-demo.sh AUGUR_BINARY [WORKDIR]}
W=${2:-$(mktemp -d)}
PORT=${PORT:-7402}
mkdir -p "$W"; M=$W/models; rm -rf "$M" "$W"/wal*
cli() { redis-cli -p "$PORT" "$@"; }
serve() { # serve WAL_DIR LOG: a server on the trace store, ml prefetching, models in $M
  "$A" serve --listen 127.0.0.1:$PORT --store rocksdb:$W/store --wal-dir "$1" --cache-size 4MiB \
    --prefetch ml --model-dir "$M" > "$2" 2>&1 &
  for _ in $(seq 100); do cli ping >/dev/null 2>&1 && return; sleep 0.2; done
  echo "server did not start: $(tail -5 "$2")" >&2; exit 1
}
active() { cli AUGUR.MODEL LIST | python3 -c "import json,sys; print(next((m['version'] for m in json.load(sys.stdin) if m['state']=='active'),0))"; }
"$A" gen --kind zipf --requests 150000 --keys 50000 --seed 3 --value-size fixed:1024 -o "$W/z.oracleGeneral.bin" >/dev/null
"$A" gen --kind sessions --requests 300000 --keys 50000 --seed 7 --value-size fixed:1024 -o "$W/s.oracleGeneral.bin" >/dev/null

# Load both traces' keys into the store first (cache-aside fills, no prefetching).
"$A" serve --listen 127.0.0.1:$PORT --store rocksdb:$W/store --wal-dir "$W/wal-load" --cache-size 1GiB \
  --access-log false > "$W/load.log" 2>&1 &
for _ in $(seq 100); do cli ping >/dev/null 2>&1 && break; sleep 0.2; done
for t in z s; do "$A" replay --trace "$W/$t.oracleGeneral.bin" --target 127.0.0.1:$PORT --concurrency 4 >/dev/null; done
cli shutdown >/dev/null 2>&1 || true; sleep 2

serve "$W/wal1" "$W/phase1.log"
"$A" replay --trace "$W/z.oracleGeneral.bin" --target 127.0.0.1:$PORT --concurrency 1 >/dev/null
echo "after Zipf traffic:"; cli AUGUR.MODEL LIST | python3 -c "import json,sys; [print(' v%d %s %s'%(m['version'],m['kind'],m['state'])) for m in json.load(sys.stdin)]"
cli shutdown >/dev/null 2>&1 || true; sleep 2

serve "$W/wal2" "$W/phase2.log"
ZV=$(active); echo "reloaded active: v$ZV"
"$A" replay --trace "$W/s.oracleGeneral.bin" --target 127.0.0.1:$PORT --concurrency 1 > "$W/replay2.txt" 2>&1 &
RP=$!
for i in $(seq 300); do
  V=$(active); if [ "$V" != "$ZV" ]; then echo "t=$((i / 5)).$((i % 5 * 2))s: sessions model v$V promoted over v$ZV"; break; fi; sleep 0.2
done
echo "operator: AUGUR.MODEL PROMOTE $ZV -> $(cli AUGUR.MODEL PROMOTE "$ZV")"
for i in $(seq 300); do
  V2=$(active); if [ "$V2" != "$ZV" ]; then echo "t=+$((i / 5)).$((i % 5 * 2))s after the promotion: active is v$V2 again"; break; fi; sleep 0.2
done
wait $RP
cli AUGUR.MODEL LIST | python3 -c "import json,sys; [print(' v%d %s %s'%(m['version'],m['kind'],m['state'])) for m in json.load(sys.stdin)]"
grep -E "Promoted|RolledBack" "$W/phase2.log" | sed 's/\x1b\[[0-9;]*m//g' | head -4
cli shutdown >/dev/null 2>&1 || true
