#!/usr/bin/env bash
# Runs a benchmark from bench/ after setting up; a first argument that is
# not an option names it (default: local-vs-swarm).
#   npm run bench                     plain Blender vs blendnet, 24 frames
#   npm run bench -- --runs 5 --res 160x90
#   npm run bench -- chaos            250 frames while workers are killed
#   npm run bench -- scheduling       makespan against the ideal, 1-100 workers
#   npm run bench -- claims           claim latency at 8 and 32 workers
#   npm run bench -- idle-memory      RSS of an idle worker process
#   npm run bench -- dashboard-screenshot   docs/dashboard.png from a real run
#   npm run bench -- transfer         a 500 MB scene to 8 workers: coordinator upload
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
name=local-vs-swarm
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then name="$1"; shift; fi
# bench/lib-*.ts are the benchmarks' shared code, not benchmarks.
if [ ! -f "bench/$name.ts" ] || [ "${name#lib-}" != "$name" ]; then
  echo "bench: no benchmark bench/$name.ts" >&2; exit 2
fi
scripts/setup.sh --quiet
exec scripts/node.sh "dist/bench/$name.js" "$@"
