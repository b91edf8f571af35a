#!/usr/bin/env bash
# Runs the Node.js blendnet uses: the system `node` when it is 22 or newer
# (libp2p 3 needs 22), otherwise the Node 24 that setup.sh installed from the
# npm registry into .node/.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
local_node="$root/.node/node_modules/.bin/node"

system_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

if [ -x "$local_node" ]; then
  exec "$local_node" "$@"
elif [ "$(system_major)" -ge 22 ]; then
  exec node "$@"
fi
echo "blendnet needs Node.js 22 or newer; run scripts/setup.sh to install one." >&2
exit 1
