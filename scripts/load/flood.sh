#!/usr/bin/env bash
# A flood of signed webhooks with wrk, next to a bare HTTP server's ceiling
# on the same machine and run: accepted/s for each, and answered/s at a fake
# Graph API (`local load --duration 0`). See the README's "Performance".
#
#   bash scripts/load/flood.sh [seconds] [connections]
#
# Needs wrk and nginx (Debian: apt-get install -y wrk nginx-light) and a
# release build (`cargo build --release -p local`). Starts its own Charla on
# a fresh data dir with the demo profile and no model, and stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-64}
BIN=${CHARLA_BIN:-${CARGO_TARGET_DIR:-target}/release/local}
# The fake Graph API's counter (`local load --duration 0`), from this build
# even when CHARLA_BIN is an older one being compared.
LOAD_BIN=${LOAD_BIN:-$BIN}
WEBHOOKS=${WEBHOOKS:-/tmp/charla-webhooks.tsv}
PORT=${PORT:-3000}
GRAPH=${GRAPH:-127.0.0.1:3901}
DATA=$(mktemp -d /tmp/charla-flood.XXXXXX)
# Enough distinct webhooks for the run: every one a new message of its own user.
NEED=$((SECS * 100000))
if [ ! -f "$WEBHOOKS" ] || [ "$(wc -l < "$WEBHOOKS")" -lt "$NEED" ]; then
  python3 scripts/load/gen_webhooks.py "$NEED" > "$WEBHOOKS"
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

echo "== bare HTTP server (nginx, 200 without reading the body)"
nginx -c "$PWD/scripts/load/nginx-bare.conf" -p /tmp
sleep 0.5
WRK_THREADS=2 wrk -t2 -c"$CONNS" -d"${SECS}s" -s scripts/load/webhooks.lua http://127.0.0.1:8089 -- "$WEBHOOKS" | grep -E "Requests/sec|non-200|p99:"
nginx -c "$PWD/scripts/load/nginx-bare.conf" -p /tmp -s stop

echo "== Charla (durable acceptance, answering at the same time)"
"$LOAD_BIN" load --duration 0 --drain "${DRAIN:-5}" --at-most "${ANSWER_SECS:-60}" --graph-listen "$GRAPH" > "$DATA/answers.txt" &
pids+=($!)
CHARLA_DEBOUNCE_MS=0 WHATSAPP_MESSAGES_PER_SECOND=${TIER:-1000} WHATSAPP_ACCESS_TOKEN=x \
  WHATSAPP_API_BASE="http://$GRAPH" RUST_LOG=${RUST_LOG:-info} \
  "$BIN" --listen "127.0.0.1:$PORT" --data-dir "$DATA/data" 2> "$DATA/server.log" &
server=$!
pids+=($server)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
started=$(date +%s.%N)
WRK_THREADS=2 wrk -t2 -c"$CONNS" -d"${SECS}s" -s scripts/load/webhooks.lua "http://127.0.0.1:$PORT" -- "$WEBHOOKS" | tee "$DATA/wrk.txt" | grep -E "Requests/sec|non-200|latency"
echo "RSS of the server: $(ps -o rss= -p $server) KB"
# The journal's applier records what was accepted behind the 200s: the time
# until its backlog is empty gives the rate at which webhooks are processed.
health() { curl -s "http://127.0.0.1:$PORT/healthz"; }
echo "journal at the end of the flood: $(health | python3 -c 'import json,sys; print(json.load(sys.stdin).get("journal"))')"
while [ "$(health | python3 -c 'import json,sys; j=json.load(sys.stdin).get("journal") or {}; print(j.get("waiting", 0))')" != 0 ]; do sleep 0.2; done
applied=$(date +%s.%N)
requests=$(grep -oE "[0-9]+ requests in" "$DATA/wrk.txt" | grep -oE "^[0-9]+")
python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[2]) - float(sys.argv[3]); print(f'processed: {n} webhooks in {t:.1f}s from the first ({n / t:.0f}/s)')" "$requests" "$applied" "$started"
wait "${pids[0]}"
grep -E "messages sent" "$DATA/answers.txt" || echo "no answers"
echo "queue: $(curl -s "http://127.0.0.1:$PORT/healthz")"
