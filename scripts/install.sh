#!/usr/bin/env bash
# Installs blendnet from this checkout for a render machine, a relay host
# or a Docker image (the Dockerfile runs this script too):
#   1. Debian packages, with apt-get, only those missing: blender,
#      bubblewrap (Blender's sandbox) and ffmpeg (movies); none of them
#      with --no-blender; npm when no npm is there to install Node with,
#   2. a Node.js >= 22: --node, else the system's, else Node 24 from the
#      npm registry into PREFIX/node,
#   3. blendnet itself, its npm dependencies and its build, in PREFIX/app,
#   4. the `blendnet` command: PREFIX/bin/blendnet, linked from BIN_DIR,
#   5. with --service worker|relay, that systemd unit from deploy/,
#      enabled and started where systemd runs; with --bootstrap, the
#      worker's peers to join through in /etc/blendnet/worker.env.
# BLENDNET_SYSTEMD_DIR and BLENDNET_ETC_DIR stage the unit and its
# settings in other folders (for an image or a package): then no user is
# added and nothing is started.
# Safe to run again: each step checks first, and an update replaces only
# PREFIX/app's files. It deletes nothing outside PREFIX, refuses a PREFIX
# that holds anything but an earlier install, and never replaces a
# `blendnet` in BIN_DIR that is not a link.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/install.sh [options]

  --prefix DIR        where blendnet goes (default /opt/blendnet)
  --bin-dir DIR       where the `blendnet` link goes (default /usr/local/bin)
  --service NAME      also install and enable deploy/blendnet-NAME.service:
                      worker or relay (a relay needs no Blender)
  --bootstrap ADDR    with --service worker: a peer the worker joins the swarm
                      through (repeatable), written with a fixed --listen
                      port, 4001, to /etc/blendnet/worker.env
  --no-blender        install no Blender, bubblewrap or ffmpeg: for a relay
                      or a machine that only runs `blendnet status`
  --no-apt            never run apt-get; stop if a package is missing
  --node PATH         the Node.js (22 or newer) to run blendnet with
EOF
}

root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
prefix=/opt/blendnet
bin_dir=/usr/local/bin
service=""
blender=1
apt=1
node=""
bootstrap=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a folder}"; shift 2 ;;
    --service) service="${2:?--service needs worker or relay}"; shift 2 ;;
    --bootstrap) bootstrap+=("${2:?--bootstrap needs a peer address}"); shift 2 ;;
    --no-blender) blender=0; shift ;;
    --no-apt) apt=0; shift ;;
    --node) node="${2:?--node needs the path of a node binary}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install: unknown option $1 (see scripts/install.sh --help)" >&2; exit 2 ;;
  esac
done

say() { echo "install: $*"; }
fail() { echo "install: $*" >&2; exit 1; }

node_major() {
  "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# --- 0. Where things go: checked before anything is changed. ------------
case "$service" in
  ""|worker) ;;
  relay) blender=0 ;;
  *) fail "--service must be worker or relay, not \"$service\"" ;;
esac
if [ "${#bootstrap[@]}" -gt 0 ] && [ "$service" != worker ]; then
  fail "--bootstrap goes with --service worker: it is written to the worker's settings"
fi
case "$prefix" in
  /*) ;;
  *) fail "--prefix must be an absolute path, not \"$prefix\"" ;;
esac
prefix="$(realpath -m "$prefix")"
[ "$prefix" != / ] || fail "--prefix / would install into the root folder; give blendnet a folder of its own"
marker="$prefix/.blendnet-install"
if [ -d "$prefix" ] && [ ! -f "$marker" ] && [ -n "$(ls -A "$prefix")" ]; then
  fail "$prefix holds files of something else; give blendnet an empty or new folder with --prefix"
fi
[ ! -e "$prefix" ] || [ -d "$prefix" ] || fail "--prefix $prefix is a file, not a folder"
case "$bin_dir" in /*) ;; *) bin_dir="$(realpath -m "$bin_dir")" ;; esac
link="$bin_dir/blendnet"
if [ -e "$link" ] && [ ! -L "$link" ]; then
  fail "$link exists and is not a link; move it away, or choose another --bin-dir"
fi
etc_dir="${BLENDNET_ETC_DIR:-/etc/blendnet}"
settings="$etc_dir/worker.env"
mine="# Written by blendnet's scripts/install.sh: flags of blendnet worker,"
if [ "${#bootstrap[@]}" -gt 0 ] && [ -f "$settings" ] && [ "$(head -1 "$settings")" != "$mine" ]; then
  fail "$settings was written by someone else; add the peers to it yourself (BLENDNET_WORKER_BOOTSTRAP=addr,addr)"
fi
unit_src=""
if [ -n "$service" ]; then
  unit_src="$root/deploy/blendnet-$service.service"
  [ -f "$unit_src" ] || fail "there is no $unit_src to install"
fi

# --- 1. Debian packages. ----------------------------------------------------
missing=()
if [ "$blender" = 1 ]; then
  command -v blender >/dev/null 2>&1 || [ -n "${BLENDNET_BLENDER:-}" ] || missing+=(blender)
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
fi
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$apt" = 0 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    fail "missing ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]}) or run this as root without --no-apt"
  fi
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. Node.js >= 22. --------------------------------------------------------
mkdir -p "$prefix"
touch "$marker"
local_node="$prefix/node/node_modules/.bin/node"
if [ -n "$node" ]; then
  node="$(realpath "$node")"
  [ "$(node_major "$node")" -ge 22 ] || fail "--node $node is not a Node.js 22 or newer"
elif command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 22 ]; then
  node="$(command -v node)"
elif [ -x "$local_node" ] && [ "$(node_major "$local_node")" -ge 22 ]; then
  node="$local_node"
else
  say "installing Node 24 from the npm registry into $prefix/node"
  npm install --prefix "$prefix/node" --no-save --no-package-lock --no-fund --no-audit \
    --loglevel=error node@24 >/dev/null
  node="$local_node"
fi
say "node $("$node" --version) at $node"
# npm and the packages' install scripts run on that Node too.
export PATH="$(dirname "$node"):$PATH"
export npm_config_update_notifier=false

# --- 3. blendnet: sources, dependencies, build. ------------------------------
app="$prefix/app"
mkdir -p "$app"
if [ "$(realpath "$app")" != "$root" ]; then
  for item in package.json package-lock.json tsconfig.json bin scripts src proto; do
    rm -rf "${app:?}/$item"
    cp -R "$root/$item" "$app/$item"
  done
  find "$app/scripts" -name __pycache__ -prune -exec rm -rf {} +
fi
cd "$app"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.blendnet-lock 2>/dev/null)" != "$lock_sum" ]; then
  say "installing npm dependencies"
  npm ci --no-fund --no-audit --loglevel=error >/dev/null
  echo "$lock_sum" > node_modules/.blendnet-lock
fi
source_sum="$(find src proto tsconfig.json package-lock.json scripts/build.sh -type f -print0 | sort -z |
  xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat dist/.blendnet-source 2>/dev/null)" != "$source_sum" ]; then
  say "building"
  # Built beside the running one, which stays in place if this fails.
  rm -rf "${app:?}/dist.new"
  scripts/build.sh dist.new ||
    fail "the build failed (see above); the blendnet installed before is unchanged"
  echo "$source_sum" > dist.new/.blendnet-source
  rm -rf "${app:?}/dist"
  mv dist.new dist
else
  say "build is up to date"
fi

# --- 4. The command. ----------------------------------------------------------
mkdir -p "$prefix/bin" "$bin_dir"
{
  echo '#!/usr/bin/env bash'
  echo '# Written by blendnet'"'"'s scripts/install.sh: runs the installed blendnet.'
  echo '# Workers and relays idle for days: with a 1 MiB young generation they'
  echo '# stay about 25 MiB smaller, as under bin/blendnet (docs/performance.md).'
  echo 'case "${1:-}" in'
  echo "  worker|relay) exec $(printf %q "$node") --max-semi-space-size=1 $(printf %q "$app/dist/blendnet.mjs") \"\$@\" ;;"
  echo 'esac'
  echo "exec $(printf %q "$node") $(printf %q "$app/dist/blendnet.mjs") \"\$@\""
} > "$prefix/bin/blendnet.new"
chmod 755 "$prefix/bin/blendnet.new"
mv -f "$prefix/bin/blendnet.new" "$prefix/bin/blendnet"
ln -sfn "$prefix/bin/blendnet" "$link"
version="$("$node" -p 'require(process.argv[1]).version' "$app/package.json")"
say "blendnet $version installed in $prefix; the command is $link"

# --- 5. The systemd unit. ---------------------------------------------------
# The units name /opt/blendnet; another prefix is written into the copy.
if [ -n "$service" ]; then
  unit_dir="${BLENDNET_SYSTEMD_DIR:-/etc/systemd/system}"
  staged=0
  [ "$unit_dir" = /etc/systemd/system ] && [ "$etc_dir" = /etc/blendnet ] || staged=1
  unit_user="$(sed -n 's/^User=//p' "$unit_src" | head -1)"
  if [ "$staged" = 0 ] && [ -n "$unit_user" ] && ! id "$unit_user" >/dev/null 2>&1; then
    say "adding the system user $unit_user"
    useradd --system --user-group --home-dir "/var/lib/$unit_user" --shell /usr/sbin/nologin "$unit_user"
  fi
  mkdir -p "$unit_dir"
  sed "s#/opt/blendnet/bin/blendnet#$prefix/bin/blendnet#g" "$unit_src" > "$unit_dir/blendnet-$service.service"
  if [ "${#bootstrap[@]}" -gt 0 ]; then
    mkdir -p "$etc_dir"
    # The worker reads BLENDNET_WORKER_<FLAG> variables as its flags.
    {
      echo "$mine"
      echo "# BLENDNET_WORKER_<FLAG>=value (a list: comma-separated); docs/config.md."
      echo "BLENDNET_WORKER_LISTEN=/ip4/0.0.0.0/tcp/4001"
      echo "BLENDNET_WORKER_BOOTSTRAP=$(IFS=,; echo "${bootstrap[*]}")"
    } > "$settings.new"
    mv -f "$settings.new" "$settings"
    say "wrote $settings: the worker listens on TCP port 4001 and joins through ${bootstrap[*]}"
  fi
  if [ "$staged" = 0 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable "blendnet-$service.service"
    systemctl restart "blendnet-$service.service"
    say "blendnet-$service is running: journalctl -u blendnet-$service -f shows what it says"
  else
    say "installed $unit_dir/blendnet-$service.service; start it with systemctl enable --now blendnet-$service"
  fi
fi
