#!/usr/bin/env bash
# Installs the npm packages that SRC's package.json and package-lock.json pin
# (`npm ci`) into DEST (under .tools/, gitignored). Idempotent: a stamp named
# after the two files' hash makes a second run instant; editing them
# reinstalls. --ignore-scripts: nothing is downloaded beyond the registry's
# packages (esbuild's binary is its own npm package; playwright-core fetches
# no browser).
#
#   bash scripts/npm-tools.sh SRC DEST WHAT      (from the repository's root)
set -euo pipefail
src=$1 dest=$2 what=$3

hash=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
if [[ -f "$dest/.stamp-$hash" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm-tools.sh: npm not found (need Node.js 18+ for $what)" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
touch "$dest/.stamp-$hash"
echo "npm-tools.sh: installed $what into $dest ($hash)"
