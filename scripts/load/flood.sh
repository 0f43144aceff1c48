#!/usr/bin/env bash
# A flood of signed webhooks with wrk, next to a bare HTTP server's ceiling
# on the same machine and run: accepted/s for each, and answered/s at a fake
# Graph API (`local load --duration 0`). See the README's "Performance".
#
#   bash scripts/load/flood.sh [seconds] [connections]
#
# SKIP_NGINX=1 skips the bare server; RSS_EVERY=N prints the server's memory
# every N seconds; ANSWER_SECS (60) bounds how long answers are counted;
# NUMBERS=4 (with a fresh WEBHOOKS file) spreads users over four numbers.
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
# (at most a million, about 550 MB: a longer flood repeats them, and the
# repeats are duplicates, cheaper to process).
NEED=$((SECS * 100000 < 1000000 ? SECS * 100000 : 1000000))
if [ ! -f "$WEBHOOKS" ] || [ "$(wc -l < "$WEBHOOKS")" -lt "$NEED" ]; then
  python3 scripts/load/gen_webhooks.py "$NEED" > "$WEBHOOKS"
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

if [ -z "${SKIP_NGINX:-}" ]; then
  echo "== bare HTTP server (nginx, 200 without reading the body)"
  nginx -c "$PWD/scripts/load/nginx-bare.conf" -p /tmp
  sleep 0.5
  WRK_THREADS=2 wrk -t2 -c"$CONNS" -d"${SECS}s" -s scripts/load/webhooks.lua http://127.0.0.1:8089 -- "$WEBHOOKS" | grep -E "Requests/sec|non-200|p99:"
  nginx -c "$PWD/scripts/load/nginx-bare.conf" -p /tmp -s stop
fi

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
# RSS_EVERY=N: the server's resident memory every N seconds of the flood.
if [ -n "${RSS_EVERY:-}" ]; then
  (while kill -0 $server 2>/dev/null; do echo "RSS after $(($(date +%s) - ${started%.*})) s: $(ps -o rss= -p $server) KB"; sleep "$RSS_EVERY"; done) &
  pids+=($!)
fi
WRK_THREADS=2 wrk -t2 -c"$CONNS" -d"${SECS}s" -s scripts/load/webhooks.lua "http://127.0.0.1:$PORT" -- "$WEBHOOKS" | tee "$DATA/wrk.txt" | grep -E "Requests/sec|non-200|latency"
flood_end=$(date +%s.%N)
echo "RSS of the server: $(ps -o rss= -p $server) KB"
# Behind the 200s the journal's applier records and enqueues, holding back
# while 10,000 turns wait to be answered: the journal drains at the pace of
# the answers. Counted until it is empty or the answers stop being counted.
health() { curl -s "http://127.0.0.1:$PORT/healthz"; }
waiting() { health | python3 -c 'import json,sys; j=json.load(sys.stdin).get("journal") or {}; print(j.get("waiting", 0))'; }
at_end=$(waiting)
echo "journal at the end of the flood: $at_end waiting"
while [ "$(waiting)" != 0 ] && kill -0 "${pids[0]}" 2>/dev/null; do sleep 1; done
left=$(waiting)
python3 -c "import sys; n, t = int(sys.argv[1]) - int(sys.argv[2]), float(sys.argv[3]) - float(sys.argv[4]); print(f'processed after the flood: {n} webhooks in {t:.1f}s ({n / t:.0f}/s), {sys.argv[2]} still in the journal')" "$at_end" "$left" "$(date +%s.%N)" "$flood_end"
echo "queues: $(health)"
# The fake Graph API stops counting ANSWER_SECS after the first answer
# (answering a flood's backlog at one number's pace takes many minutes).
wait "${pids[0]}"
grep -E "messages sent" "$DATA/answers.txt" || echo "no answers"
