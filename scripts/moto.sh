#!/usr/bin/env bash
# Starts or stops moto's server (emulated AWS) for the adapter and pipeline tests.
#
#   bash scripts/moto.sh start   # prints MOTO_ENDPOINT=http://127.0.0.1:PORT
#   bash scripts/moto.sh stop
#   bash scripts/moto.sh status  # prints the endpoint if running, exit 1 if not
#
# Needs .tools/venv (bash scripts/tools.sh). Listens on 127.0.0.1 only, on a
# free port; state in .tools/moto.pid, .tools/moto.port, log in .tools/moto.log.
# MOTO_WAIT_SECONDS bounds the start-up wait (default 30).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools=.tools
pidfile=$tools/moto.pid
portfile=$tools/moto.port
logfile=$tools/moto.log
server=$tools/venv/bin/moto_server
python=$tools/venv/bin/python

running_pid() {
  # Prints the pid of our moto server if it is still alive.
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

answers() {
  # True when moto answers HTTP on the port (any status means it is up).
  "$python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request, urllib.error
url = "http://127.0.0.1:%s/moto-api/" % sys.argv[1]
try:
    urllib.request.urlopen(url, timeout=1)
except urllib.error.HTTPError:
    pass
PY
}

start() {
  if [[ ! -x "$server" ]]; then
    echo "moto.sh: $server not found; run: bash scripts/tools.sh" >&2
    exit 1
  fi
  local pid port
  if pid=$(running_pid) && port=$(cat "$portfile" 2>/dev/null) && answers "$port"; then
    echo "MOTO_ENDPOINT=http://127.0.0.1:$port"
    return 0
  fi
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  mkdir -p "$tools"
  # setsid: own session, so that stopping it never touches the caller's group.
  # stdin from /dev/null: works in CI with no standard input.
  # scripts/moto_server.py: moto with DynamoDB requests serialised, so that
  # conditional transactions are atomic as in DynamoDB (moto alone races).
  setsid "$python" scripts/moto_server.py -H 127.0.0.1 -p "$port" </dev/null >"$logfile" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  echo "$port" >"$portfile"

  local wait=${MOTO_WAIT_SECONDS:-30}
  local deadline=$((SECONDS + wait))
  until answers "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "moto.sh: moto_server exited during start-up; last lines of $logfile:" >&2
      tail -n 20 "$logfile" >&2 || true
      rm -f "$pidfile" "$portfile"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "moto.sh: moto_server did not answer on 127.0.0.1:$port within ${wait}s; last lines of $logfile:" >&2
      tail -n 20 "$logfile" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$pidfile" "$portfile"
      exit 1
    fi
    sleep 0.2
  done
  echo "MOTO_ENDPOINT=http://127.0.0.1:$port"
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    echo "moto.sh: stopped moto_server (pid $pid)"
  else
    echo "moto.sh: moto_server not running"
  fi
  rm -f "$pidfile" "$portfile"
}

status() {
  local pid port
  if pid=$(running_pid) && port=$(cat "$portfile" 2>/dev/null) && answers "$port"; then
    echo "MOTO_ENDPOINT=http://127.0.0.1:$port"
  else
    echo "moto.sh: moto_server not running" >&2
    exit 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: bash scripts/moto.sh start|stop|status" >&2
    exit 2
    ;;
esac
