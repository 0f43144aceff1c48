#!/usr/bin/env bash
# Installs Charla's developer and CI tools into .tools/venv (gitignored):
#   moto_server (emulated AWS), cfn-lint, sam (aws-sam-cli), cargo-lambda (and
#   zig, its cross linker); and the aarch64-unknown-linux-gnu rust target.
# Also the Node tools: asl-validator into .tools/node, and the console's
# (esbuild, preact, playwright-core, axe-core) into .tools/console with Debian's
# chromium when missing (scripts/console-tools.sh).
# Versions are pinned in scripts/requirements-tools.txt. Idempotent: a stamp
# file named after the hash of that file (and the Python version) makes a
# second run instant; editing the requirements reinstalls.
#
# Usage: bash scripts/tools.sh        (from anywhere)
#   PYTHON=python3.11 bash scripts/tools.sh   to pick the interpreter.
#
# Template lints, offline (no AWS account, no network):
#   .tools/venv/bin/cfn-lint template.yaml
#   AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
#     SAM_CLI_TELEMETRY=0 .tools/venv/bin/sam validate --lint --template template.yaml
# Both run offline. `sam validate --lint` runs cfn-lint's rules on the
# transformed template and needs no credentials or region (samconfig.toml sets
# lint = true, so a bare `sam validate` lints too); the dummy region and keys
# above only keep SAM CLI from looking for a profile. Without --lint, SAM CLI
# insists on a region.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# asl-validator (npm) for the state machines, into .tools/node (gitignored),
# exactly as scripts/asl/package-lock.json pins it (`npm ci`). A stamp named
# after the lockfile's hash makes a second run instant.
bash scripts/npm-tools.sh scripts/asl .tools/node asl-validator

# The console's build tools and browser test (esbuild, preact, axe-core,
# playwright-core from console/package-lock.json; chromium from apt).
bash scripts/console-tools.sh --browser

# The rust target of the Lambda binaries (template.yaml: arm64), for
# scripts/build-lambdas and `sam build`; rust-std only, added once.
lambda_target=aarch64-unknown-linux-gnu
# Only `sam build` needs it: where rustup cannot fetch it, say so and go on.
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$lambda_target"; then
  rustup target add "$lambda_target" ||
    echo "tools.sh: could not add the $lambda_target target; sam build needs it" >&2
fi

req=scripts/requirements-tools.txt
venv=.tools/venv
python=${PYTHON:-}
if [[ -z "$python" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
if [[ -z "$python" ]]; then
  echo "tools.sh: no python3 found (need Python 3.11+)" >&2
  exit 1
fi

pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
hash=$( { cat "$req"; echo "python=$pyver"; } | sha256sum | cut -c1-16)
stamp="$venv/.stamp-$hash"

if [[ -f "$stamp" ]]; then
  echo "tools.sh: .tools/venv up to date ($hash)"
  exit 0
fi

start=$SECONDS
if [[ ! -x "$venv/bin/python" ]] || [[ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$pyver" ]]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$req"
"$venv/bin/python" -m pip check >/dev/null || {
  echo "tools.sh: pip check failed in $venv:" >&2
  "$venv/bin/python" -m pip check >&2 || true
  exit 1
}
rm -f "$venv"/.stamp-*
touch "$stamp"
echo "tools.sh: installed moto, cfn-lint, sam, cargo-lambda into .tools/venv in $((SECONDS - start))s ($hash)"
