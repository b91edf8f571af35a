#!/usr/bin/env bash
# The test command: unit tests, integration tests with real libp2p nodes on
# 127.0.0.1, and end-to-end tests with real `blendnet` processes and the real
# Blender. Files run one at a time: end-to-end tests load both cores.
#   scripts/test.sh                 everything
#   scripts/test.sh unit            only test/unit (also: integration, e2e)
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
scripts/setup.sh --quiet
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit integration e2e)
files=()
for suite in "${suites[@]}"; do
  files+=(dist/test/"$suite"/*.test.js)
done
# No blendnet.toml lying in this folder may set the tested commands' flags.
export BLENDNET_CONFIG=/dev/null
exec scripts/node.sh --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
