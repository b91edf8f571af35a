#!/usr/bin/env bash
# Sets up what blendnet needs on this machine, doing only what is missing:
#   - a Node.js >= 22 (from the npm registry's `node` package into .node/
#     when the system Node is older),
#   - Blender (Debian's `blender` package, when running as root with apt),
#   - on Linux, bubblewrap, which workers run Blender in (the same way;
#     without it they run Blender unsandboxed and say so),
#   - the npm dependencies, and the build in dist/ (scripts/build.sh).
# Safe to run again: each step checks first. `--quiet` prints only failures.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "setup: $*"; }
# Steps that take a while are said even with --quiet (on stderr): the
# first `blendnet` command of a checkout sets it up, and must not look hung.
slow() { if [ "$quiet" = 1 ]; then echo "blendnet: setting up: $* ..." >&2; else say "$*"; fi; }

node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# 1. Node.js >= 22.
# Every `blendnet` command runs this script first: the checks that start a
# process (a Node.js, for its version) run only when their answer matters.
if [ ! -x .node/node_modules/.bin/node ] && [ "$(node_major)" -lt 22 ]; then
  command -v npm >/dev/null 2>&1 || {
    echo "setup: neither Node.js 22+ nor npm is installed; install Node.js 22 or newer." >&2
    exit 1
  }
  slow "system Node is $(node --version 2>/dev/null || echo missing); installing Node 24 into .node/"
  mkdir -p .node
  npm install --prefix .node --no-save --no-package-lock --loglevel=error \
    node@24 >/dev/null
fi
[ "$quiet" = 1 ] || say "node $(scripts/node.sh --version)"

# 2. Blender.
if ! command -v blender >/dev/null 2>&1 && [ -z "${BLENDNET_BLENDER:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    slow "installing Blender with apt-get (this takes a few minutes)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q blender >/dev/null 2>&1 || {
      apt-get update -q >/dev/null
      apt-get install -y -q blender >/dev/null
    }
  else
    echo "setup: Blender is not installed; install it (Debian: sudo apt-get install blender) or set BLENDNET_BLENDER." >&2
    exit 1
  fi
fi

# 2b. bubblewrap: optional, so its absence is a note, not a failure.
if [ "$(uname -s)" = Linux ] && ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    slow "installing bubblewrap with apt-get (Blender's sandbox)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q bubblewrap >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; } ||
      echo "setup: could not install bubblewrap; workers will run Blender without a sandbox." >&2
  else
    say "bubblewrap is not installed: workers will run Blender without a sandbox (Debian: sudo apt-get install bubblewrap)"
  fi
fi

# 3. npm dependencies, when missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  slow "installing npm dependencies"
  npm ci --loglevel=error --no-fund --no-audit >/dev/null
fi

# 4. The build, when any source is newer than the last one.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ ! -f dist/blendnet.mjs ] || [ -n "$(find src test bench proto tsconfig.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  slow "building (scripts/build.sh)"
  scripts/build.sh
  touch "$stamp"
fi
say "ready"
