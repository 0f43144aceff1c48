#!/usr/bin/env bash
# The console's Node tools (esbuild, preact, playwright-core, axe-core) into
# .tools/console (gitignored), exactly as console/package-lock.json pins them
# (`npm ci`); with --browser, also Debian's chromium for the browser test
# (only when missing: Playwright's own browser downloads are not used).
# Idempotent: a stamp named after the lockfile's hash makes a second run
# instant. scripts/tools.sh runs it with --browser.
#
#   bash scripts/console-tools.sh [--browser]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

browser=false
for arg in "$@"; do
  case "$arg" in
    --browser) browser=true ;;
    *) echo "console-tools.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

bash scripts/npm-tools.sh console .tools/console "esbuild, preact, playwright-core, axe-core"

if $browser && [[ -z "${CHARLA_CHROMIUM:-}" ]] && [[ ! -x /usr/bin/chromium ]]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "console-tools.sh: no /usr/bin/chromium and no apt-get: install Chromium, or set CHARLA_CHROMIUM" >&2
    exit 1
  fi
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  start=$SECONDS
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  echo "console-tools.sh: installed chromium in $((SECONDS - start))s"
fi
