#!/usr/bin/env bash
# Runs a benchmark from bench/ after setting up; a first argument that is
# not an option names it (default: local-vs-swarm).
#   npm run bench                     plain Blender vs blendnet, 24 frames
#   npm run bench -- --runs 5 --res 160x90
#   npm run bench -- chaos            250 frames while workers are killed
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
name=local-vs-swarm
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then name="$1"; shift; fi
[ -f "bench/$name.ts" ] || { echo "bench: no benchmark bench/$name.ts" >&2; exit 2; }
scripts/setup.sh --quiet
exec scripts/node.sh "dist/bench/$name.js" "$@"
