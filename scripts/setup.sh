#!/usr/bin/env bash
# Prepare this machine for building and testing wasmstack (Debian 12, root, no systemd needed).
# Idempotent: a second run installs nothing and only checks that the services answer.
#
#   - apt packages: libvirt + QEMU (TCG), NFS (nfs-ganesha, libnfs + its headers), ISO tools, OVS, busybox,
#     disk image tools for the cloud-init guest (mmdebstrap, mtools, syslinux, dosfstools, sfdisk),
#     nftables and HAProxy (routers)
#   - rustup targets for the WebAssembly plugins, and rustfmt and clippy
#   - virtlogd + libvirtd, started by hand (no systemd socket activation)
#   - a second libvirtd for libvirt's LXC driver, with its own socket (scripts/lxc-daemon.sh)
#   - rpcbind + nfs-ganesha serving $WASMSTACK_NFS_ROOT/export (default ~/.cache/wasmstack/nfs)
#     as nfs://127.0.0.1/export (NFSv3), and a 64 MiB tmpfs at $WASMSTACK_NFS_ROOT/small as
#     nfs://127.0.0.1/small (to fill up), for the storage tests
#   - Open vSwitch (userspace datapath), started by hand with its default paths
#   - PostgreSQL, started by hand, with a `wasmstack` role (password `wasmstack`) for the
#     database tests on 127.0.0.1:5432
#   - a Python venv for the real-client API suite (tests/clients) at $WASMSTACK_VENV
#     (default ~/.cache/wasmstack/venv), reinstalled only when its requirements.txt changes
#   - the web console's tools: wasm-bindgen-cli of the version Cargo.toml pins, and the npm
#     packages of tests/console/package.json (wasm-opt from binaryen, playwright-core) at
#     $WASMSTACK_NODE_DIR (default ~/.cache/wasmstack/node); Debian's chromium for the browser test
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts libvirtd)"

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  libvirt-daemon-system libvirt-daemon-driver-lxc libvirt-clients libvirt-dev pkg-config
  qemu-system-x86 qemu-block-extra qemu-utils
  nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils libnfs-dev
  isolinux syslinux-common syslinux-utils genisoimage
  mmdebstrap mtools syslinux dosfstools fdisk
  iproute2 cpio openvswitch-switch busybox-static nftables haproxy
  postgresql python3-venv
  chromium fonts-wqy-microhei
)

installed_version() { # pkg -> version, or nothing when not installed
  # dpkg-query fails for a package it has never seen; that is "not installed", not an error.
  { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null || true; } |
    awk '$1 == "install" && $3 == "installed" { print $4 }'
}

# ---------------------------------------------------------------- apt packages
missing=()
for p in "${PACKAGES[@]}"; do
  [ -n "$(installed_version "$p")" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  log "apt: all ${#PACKAGES[@]} packages already installed"
else
  log "apt: missing: ${missing[*]}"
  t0=$SECONDS
  apt-get update -q
  install=("${missing[@]}")
  apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

  # Some images ship a newer qemu-utils (e.g. from bookworm-backports) without the
  # matching apt source; it then Breaks the installable qemu-system-common. Pin the
  # qemu binaries to the qemu-system-x86 version that apt can install.
  want=$(installed_version qemu-system-x86)
  [ -n "$want" ] || want=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ { print $2 }')
  have=$(installed_version qemu-utils)
  if [ -n "$want" ] && [ "$want" != "(none)" ] && [ -n "$have" ] && [ "$have" != "$want" ]; then
    log "apt: installed qemu-utils $have does not match qemu-system-x86 $want; pinning qemu packages to $want"
    pinned=()
    for p in "${install[@]}" qemu-utils qemu-block-extra; do
      case "$p" in
        qemu-utils|qemu-block-extra|qemu-system-x86)
          if apt-cache madison "$p" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep -qxF "$want"; then
            pinned+=("$p=$want")
          else
            pinned+=("$p")
          fi ;;
        *) pinned+=("$p") ;;
      esac
    done
    # de-duplicate (qemu-utils / qemu-block-extra may already be in the list)
    mapfile -t install < <(printf '%s\n' "${pinned[@]}" | awk '!seen[$0]++')
    apt_opts+=(--allow-downgrades)
  fi

  # Do not let package scripts start services: this script starts what it needs.
  policy_created=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  rc=0
  apt-get install "${apt_opts[@]}" "${install[@]}" || rc=$?
  [ -z "$policy_created" ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get install failed ($rc)"
  log "apt: installed ${#missing[@]} package(s) in $((SECONDS - t0)) s"
fi

# ---------------------------------------------------------------- rust targets
if ! command -v rustup >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
if command -v rustup >/dev/null 2>&1; then
  have_targets=$(rustup target list --installed)
  for t in wasm32-wasip2 wasm32-unknown-unknown; do
    if grep -qxF "$t" <<<"$have_targets"; then
      log "rustup: target $t present"
    else
      log "rustup: adding target $t"
      rustup target add "$t"
    fi
  done
  # The test run's quick tier (scripts/test.sh) needs both; a minimal rustup profile lacks them.
  have_components=$(rustup component list --installed)
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$have_components" || { log "rustup: adding component $c"; rustup component add "$c"; }
  done
else
  die "rustup not found; install Rust with rustup first (https://rustup.rs)"
fi

# ---------------------------------------------------------------- /dev/kvm group
# libvirt runs QEMU as libvirt-qemu:kvm. If that user cannot open /dev/kvm while the
# capabilities probe saw KVM (or the other way round), libvirt throws its capabilities
# cache away on every call: `virsh version` takes seconds, `define` tens of seconds.
# Give /dev/kvm to the kvm group, as udev does on a normal Debian host.
# (Guests always use TCG, <domain type='qemu'>; KVM itself is never used.)
if [ -e /dev/kvm ] && kvm_gid=$(getent group kvm | cut -d: -f3) && [ -n "$kvm_gid" ]; then
  dev_gid=$(stat -c %g /dev/kvm)
  dev_mode=$(stat -c %a /dev/kvm)
  if [ "$dev_gid" != "$kvm_gid" ] || [ $(( 8#$dev_mode & 8#060 )) != $(( 8#060 )) ]; then
    log "kvm: /dev/kvm is gid $dev_gid mode $dev_mode, kvm group is $kvm_gid; fixing to kvm, g+rw"
    chgrp kvm /dev/kvm
    chmod g+rw /dev/kvm
  else
    log "kvm: /dev/kvm group matches the kvm group ($kvm_gid)"
  fi
fi

# ---------------------------------------------------------------- libvirt
virtlogd_up() { virt-admin -c virtlogd:///system version >/dev/null 2>&1; }
libvirtd_up() { virsh -c qemu:///system version >/dev/null 2>&1; }

# The QEMU driver needs virtlogd; without systemd nothing socket-activates it.
# (A stale socket file from a dead daemon is not enough, so ask the daemon itself.)
if virtlogd_up; then
  log "virtlogd: running"
else
  log "virtlogd: starting"
  virtlogd -d
  for _ in $(seq 100); do virtlogd_up && break; sleep 0.1; done
  virtlogd_up || die "virtlogd did not start"
fi

if libvirtd_up; then
  log "libvirtd: running"
else
  log "libvirtd: starting (the first start probes QEMU and can take ~10 s)"
  t0=$SECONDS
  libvirtd -d
  deadline=$((SECONDS + 60))
  until libvirtd_up; do
    [ $SECONDS -lt $deadline ] || die "libvirtd did not answer within 60 s (see /var/log/libvirt/libvirtd.log)"
    sleep 0.2
  done
  log "libvirtd: answering after $((SECONDS - t0)) s"
fi

# Containers for the outside-driver tests: a libvirtd of its own for the LXC driver (the
# script says why), at the URI it prints.
lxc_uri=$(bash scripts/lxc-daemon.sh)
log "lxc: daemon answering at $lxc_uri"

# ---------------------------------------------------------------- NFS (nfs-ganesha, v3)
# The kernel has no NFS client or server: nfs-ganesha serves a folder as
# nfs://127.0.0.1/export over NFSv3 (what qemu's nfs driver and libnfs speak), and the
# storage tests read that folder directly to check what the drivers left on it.
# A second export, nfs://127.0.0.1/small, is a 64 MiB tmpfs: small enough for the tests to
# fill it up (ENOSPC) without touching the disk the rest of the machine uses.
# v3 needs rpcbind first; `rpcbind -h 127.0.0.1` aborts, so it listens on 0.0.0.0:111.
nfs_root=${WASMSTACK_NFS_ROOT:-$HOME/.cache/wasmstack/nfs}
nfs_export=$nfs_root/export
nfs_small=$nfs_root/small
nfs_small_size=64m
nfs_marker=.wasmstack-export
# grep reads the whole listing (no -q): quitting at the first match would kill nfs-ls with
# SIGPIPE on a long listing, and pipefail would count that as "not served".
nfs_serves() { nfs-ls "nfs://127.0.0.1/$1/" 2>/dev/null | grep -F "$nfs_marker" >/dev/null; }
nfs_up() { nfs_serves export && nfs_serves small; }
# The ganesha this script started, if it still runs (its pid file names it).
ganesha_pid() {
  local pid
  pid=$(cat "$nfs_root/ganesha.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = ganesha.nfsd ] && printf '%s\n' "$pid"
}

mkdir -p "$nfs_export" "$nfs_small" "$nfs_root/recov" /run/rpcbind
# Mounted once: a second mount would hide the first (and whatever a test left in it).
if ! mountpoint -q "$nfs_small"; then
  log "nfs: mounting a $nfs_small_size tmpfs on $nfs_small"
  mount -t tmpfs -o "size=$nfs_small_size,mode=0755" tmpfs "$nfs_small"
fi
[ "$(findmnt -n -o FSTYPE --target "$nfs_small")" = tmpfs ] || die "nfs: $nfs_small is a mount point, but not a tmpfs"
touch "$nfs_export/$nfs_marker" "$nfs_small/$nfs_marker"

# Attr_Expiration_Time=0 and Dir_Chunk=0: files the tests look at (or make) directly in
# the folders are seen by NFS clients at once. Graceless: no 90 s NFSv4 grace period.
# Written next to the running config first, so ganesha restarts only when it changed.
nfs_export_block() { # Export_Id Path Pseudo
  cat <<CONF
EXPORT {
    Export_Id = $1;
    Path = $2;
    Pseudo = $3;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 3, 4;
    Transports = TCP;
    Attr_Expiration_Time = 0;
    FSAL { Name = VFS; }
}
CONF
}
{
  cat <<CONF
NFS_CORE_PARAM {
    Bind_addr = 127.0.0.1;
    NFS_Port = 2049;
    Protocols = 3, 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    MNT_Port = 20048;
    Mount_Path_Pseudo = true;
}
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = $nfs_root/recov; }
NFS_KRB5 { Active_krb5 = false; }
CONF
  nfs_export_block 1 "$nfs_export" /export
  nfs_export_block 2 "$nfs_small" /small
  cat <<CONF
MDCACHE { Dir_Chunk = 0; }
LOG { Default_Log_Level = EVENT; }
CONF
} > "$nfs_root/ganesha.conf.new"

if cmp -s "$nfs_root/ganesha.conf.new" "$nfs_root/ganesha.conf" && nfs_up; then
  rm -f "$nfs_root/ganesha.conf.new"
  log "nfs: ganesha serving $nfs_export as nfs://127.0.0.1/export and $nfs_small as nfs://127.0.0.1/small"
else
  if pid=$(ganesha_pid); then
    # Ours, but on an older config (or no longer serving both folders): ganesha does not
    # reread its exports reliably, so it is stopped and started again.
    log "nfs: restarting ganesha (pid $pid) for its new config"
    kill -TERM "$pid"
    for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then
      kill -KILL "$pid"
      for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
    [ ! -d "/proc/$pid" ] || die "nfs: ganesha (pid $pid) did not stop"
  elif nfs-ls nfs://127.0.0.1/export/ >/dev/null 2>&1; then
    die "nfs: nfs://127.0.0.1/export is served, but not by the ganesha of $nfs_root (another NFS server?)"
  fi
  if rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
    log "nfs: rpcbind running"
  else
    log "nfs: starting rpcbind"
    rpcbind -w
    for _ in $(seq 50); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
    rpcinfo -p 127.0.0.1 >/dev/null 2>&1 || die "rpcbind did not answer"
  fi
  mv "$nfs_root/ganesha.conf.new" "$nfs_root/ganesha.conf"
  log "nfs: starting ganesha on $nfs_export and $nfs_small (log $nfs_root/ganesha.log)"
  # A stale pid file from a killed ganesha makes it refuse to start.
  rm -f "$nfs_root/ganesha.pid"
  ganesha.nfsd -L "$nfs_root/ganesha.log" -f "$nfs_root/ganesha.conf" -p "$nfs_root/ganesha.pid" -N NIV_EVENT
  for _ in $(seq 100); do nfs_up && break; sleep 0.1; done
  nfs_serves export || die "nfs: ganesha did not serve nfs://127.0.0.1/export within 10 s (see $nfs_root/ganesha.log)"
  nfs_serves small || die "nfs: ganesha did not serve nfs://127.0.0.1/small within 10 s (see $nfs_root/ganesha.log)"
  log "nfs: serving $nfs_export as nfs://127.0.0.1/export and $nfs_small as nfs://127.0.0.1/small"
fi

# ---------------------------------------------------------------- open vswitch
# The kernel has no openvswitch module: OVS runs with the userspace datapath
# (bridges get datapath_type=netdev). Default paths (/run/openvswitch/db.sock), so that a
# plain `ovs-vsctl` (and libvirt) finds it. No systemd, so both daemons start by hand.
ovs_up() { ovs-vsctl --timeout=2 show >/dev/null 2>&1; }
if ovs_up; then
  log "ovs: running"
else
  log "ovs: starting ovsdb-server + ovs-vswitchd (userspace datapath)"
  mkdir -p /etc/openvswitch /run/openvswitch /var/log/openvswitch
  [ -f /etc/openvswitch/conf.db ] ||
    ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
  if ! ovs-appctl -t ovsdb-server version >/dev/null 2>&1; then
    ovsdb-server /etc/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
      --pidfile --detach --log-file
  fi
  ovs-vsctl --no-wait init
  if ! ovs-appctl -t ovs-vswitchd version >/dev/null 2>&1; then
    ovs-vswitchd unix:/run/openvswitch/db.sock --pidfile --detach --log-file
  fi
  for _ in $(seq 100); do ovs_up && break; sleep 0.1; done
  ovs_up || die "ovs: ovs-vsctl show did not answer within 10 s (see /var/log/openvswitch)"
  log "ovs: up"
fi

# ---------------------------------------------------------------- postgresql
# The Debian package creates the cluster; policy-rc.d above kept it from starting, and
# nothing else will, so start it with pg_ctlcluster.
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

if pg_up; then
  log "postgresql: running"
else
  pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  [ -n "$pg_version" ] || die "postgresql: no server version under /usr/lib/postgresql"
  if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    log "postgresql: creating cluster $pg_version/main"
    pg_createcluster "$pg_version" main
  fi
  log "postgresql: starting cluster $pg_version/main"
  pg_ctlcluster "$pg_version" main start
  for _ in $(seq 150); do pg_up && break; sleep 0.2; done
  pg_up || die "postgresql did not answer on 127.0.0.1:5432 within 30 s"
fi

if [ "$(as_postgres psql -XtAc "SELECT 1 FROM pg_roles WHERE rolname = 'wasmstack'")" = 1 ]; then
  log "postgresql: role wasmstack present"
else
  log "postgresql: creating role wasmstack"
  as_postgres psql -Xq -v ON_ERROR_STOP=1 -c "CREATE ROLE wasmstack WITH LOGIN CREATEDB PASSWORD 'wasmstack'"
fi
# Tests drop their databases WITH (FORCE); an autovacuum worker inside one can only be
# ended by a member of pg_signal_backend.
as_postgres psql -Xq -v ON_ERROR_STOP=1 -c "GRANT pg_signal_backend TO wasmstack"

# ---------------------------------------------------------------- python venv
# Built from Debian's python3 rather than whichever python3 is first on PATH, so the
# venv only depends on what this script installs.
venv=${WASMSTACK_VENV:-$HOME/.cache/wasmstack/venv}
requirements=tests/clients/requirements.txt
want_hash=$(sha256sum "$requirements" | cut -d' ' -f1)
stamp=$venv/.requirements.sha256
if [ "$(cat "$stamp" 2>/dev/null)" = "$want_hash" ] &&
   "$venv/bin/python" -c 'import pytest, cs, libcloud, requests' >/dev/null 2>&1; then
  log "venv: $venv up to date"
else
  t0=$SECONDS
  if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "venv: creating $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
  fi
  log "venv: installing $requirements"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
  printf '%s\n' "$want_hash" > "$stamp"
  log "venv: ready in $((SECONDS - t0)) s"
fi

# ---------------------------------------------------------------- web console tools
# Node.js comes with the machine (playwright-core needs 20 or newer); Debian's when it is missing.
if ! command -v npm >/dev/null 2>&1; then
  log "node: installing Debian's nodejs and npm"
  apt-get install -y -q --no-install-recommends nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || log "node: WARNING: Node.js $node_major is older than playwright-core needs (20)"

# wasm-bindgen-cli must be the exact version of the wasm-bindgen crate the console links.
wb_want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)
[ -n "$wb_want" ] || die "wasm-bindgen: no exact version pinned in Cargo.toml"
wb_have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$wb_have" = "$wb_want" ]; then
  log "wasm-bindgen-cli: $wb_want present"
else
  log "wasm-bindgen-cli: installing $wb_want (have: ${wb_have:-none}; about 2 minutes)"
  t0=$SECONDS
  # Not --locked: its lock file wants a crate version the registry lacks. Its own target
  # folder (cargo's temporary one), so that the shared one stays free for builds.
  env -u CARGO_TARGET_DIR cargo install -q wasm-bindgen-cli --version "$wb_want"
  log "wasm-bindgen-cli: installed in $((SECONDS - t0)) s"
fi

node_dir=${WASMSTACK_NODE_DIR:-$HOME/.cache/wasmstack/node}
node_pkg=tests/console/package.json
if cmp -s "$node_pkg" "$node_dir/package.json" && [ -x "$node_dir/node_modules/.bin/wasm-opt" ] &&
   [ -f "$node_dir/node_modules/playwright-core/package.json" ] && [ -x "$node_dir/node_modules/.bin/esbuild" ] &&
   [ -f "$node_dir/node_modules/@novnc/novnc/package.json" ]; then
  log "npm: $node_dir up to date"
else
  log "npm: installing $node_pkg into $node_dir"
  t0=$SECONDS
  mkdir -p "$node_dir"
  cp "$node_pkg" "$node_dir/package.json"
  (cd "$node_dir" && npm install -q --no-audit --no-fund)
  log "npm: ready in $((SECONDS - t0)) s"
fi

log "done"
