#!/usr/bin/env bash
# A libvirtd for libvirt's LXC driver, beside the main one, for the outside-driver tests
# (tests/clients/test_outside_drivers.py runs containers through it). Idempotent: when the
# daemon answers it only prints its URI.
#
#   scripts/lxc-daemon.sh          start it if needed; print its connection URI on stdout
#   scripts/lxc-daemon.sh --uri    only print the URI
#   scripts/lxc-daemon.sh --stop   stop it (its containers are destroyed first)
#
# Why a daemon of its own: on a host with the hybrid cgroup layout (cgroup v1 controllers
# plus an empty cgroup2 at /sys/fs/cgroup/unified) libvirt_lxc fails every start with
# "Unable to create directory /sys/fs/cgroup/unified". This daemon runs in a mount
# namespace without that mount, and loads the LXC driver only: it never probes QEMU, never
# sees the main daemon's domains and networks, and keeps its state under $WASMSTACK_LXC_DIR
# (default ~/.cache/wasmstack/lxc). It shares the host's network namespace, so containers
# plug into the bridges that network drivers make.
set -euo pipefail

dir=${WASMSTACK_LXC_DIR:-$HOME/.cache/wasmstack/lxc}
uri="lxc:///system?socket=$dir/sock/libvirt-sock"

log() { printf 'lxc-daemon: %s\n' "$*" >&2; }
die() { printf 'lxc-daemon: ERROR: %s\n' "$*" >&2; exit 1; }
up() { virsh -q -c "$uri" version >/dev/null 2>&1; }

# The daemon this script started, if it still runs (its pid file names it).
daemon_pid() {
  local pid
  pid=$(cat "$dir/libvirtd.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] && printf '%s\n' "$pid"
}

case "${1:-}" in
  --uri)
    printf '%s\n' "$uri"
    exit 0 ;;
  --stop)
    if pid=$(daemon_pid); then
      for d in $(virsh -q -c "$uri" list --name 2>/dev/null); do virsh -q -c "$uri" destroy "$d" >/dev/null || true; done
      kill -TERM "$pid"
      for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
      log "stopped (pid $pid)"
    fi
    exit 0 ;;
  "") ;;
  *) die "unknown argument $1 (takes --uri or --stop)" ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root (it starts a libvirtd)"

if up; then
  log "running at $uri"
  printf '%s\n' "$uri"
  exit 0
fi

driver=$(dpkg -L libvirt-daemon-driver-lxc 2>/dev/null | grep '/libvirt_driver_lxc\.so$' || true)
[ -n "$driver" ] && [ -f "$driver" ] || die "libvirt's LXC driver is not installed (apt-get install libvirt-daemon-driver-lxc)"

if pid=$(daemon_pid); then
  # Ours, but not answering: start afresh.
  log "restarting the daemon (pid $pid does not answer)"
  kill -TERM "$pid"
  for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  [ ! -d "/proc/$pid" ] || kill -KILL "$pid"
fi

mkdir -p "$dir"/{sock,etc,lib,log,drivers}
# Only the LXC connection driver: libvirtd loads every module in LIBVIRT_DRIVER_DIR.
ln -sfn "$driver" "$dir/drivers/libvirt_driver_lxc.so"
# No security driver: AppArmor/SELinux profiles are the host's business, not the tests'.
printf 'security_driver = "none"\n' > "$dir/etc/lxc.conf"
printf 'unix_sock_dir = "%s/sock"\nunix_sock_rw_perms = "0700"\nlog_outputs = "3:file:%s/log/libvirtd.log"\n' \
  "$dir" "$dir" > "$dir/libvirtd.conf"
rm -f "$dir/sock/"*

log "starting libvirtd (LXC only) at $uri"
# The daemon's own mount namespace: without the cgroup2 `unified` mount where the host has
# it, with its own /run/libvirt (container state, sockets of libvirt_lxc) and config, state
# and log folders. libvirtd -d forks into the background inside that namespace.
unified=
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then unified=1; fi
setsid unshare -m --propagation private env LIBVIRT_DRIVER_DIR="$dir/drivers" UNIFIED="$unified" D="$dir" bash -c '
  set -e
  [ -z "$UNIFIED" ] || umount /sys/fs/cgroup/unified
  mount -t tmpfs -o mode=0755 lxcrun /run/libvirt 2>/dev/null || { mkdir -p /run/libvirt; mount -t tmpfs -o mode=0755 lxcrun /run/libvirt; }
  mount --bind "$D/etc" /etc/libvirt
  mount --bind "$D/lib" /var/lib/libvirt
  mount --bind "$D/log" /var/log/libvirt
  exec libvirtd -d -f "$D/libvirtd.conf" -p "$D/libvirtd.pid"
' </dev/null >"$dir/log/start.log" 2>&1 || die "libvirtd did not start: $(cat "$dir/log/start.log")"

for _ in $(seq 150); do up && break; sleep 0.1; done
up || die "libvirtd did not answer at $uri within 15 s (see $dir/log)"
log "answering at $uri"
printf '%s\n' "$uri"
