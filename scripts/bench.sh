#!/usr/bin/env bash
# Runs a benchmark from bench/ (default: local-vs-swarm) after setting up.
#   npm run bench                     plain Blender vs blendnet, 24 frames
#   npm run bench -- --runs 5 --res 160x90
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
scripts/setup.sh --quiet
exec scripts/node.sh dist/bench/local-vs-swarm.js "$@"
