#!/usr/bin/env bash
# Build the tiny test guest from Debian packages only (Debian cloud kernel + busybox-static).
#
#   scripts/guest-image.sh OUTDIR
#
# Writes into OUTDIR:
#   vmlinuz         the Debian cloud kernel (serial 8250 built in, virtio as modules)
#   initrd.gz       busybox initramfs with the virtio modules and the /init below
#   tiny.iso        hybrid isolinux ISO booting vmlinuz+initrd.gz, console on ttyS0 (115200)
#   template.qcow2  the ISO converted to qcow2: a CloudStack-style template, boots as a disk
#   cache/          downloaded .deb files (kept) and a scratch folder
#
# The guest's /init prints on the serial console, one line each:
#   WASMSTACK-GUEST-UP
#   WASMSTACK-GUEST-IP <addr/prefix|none>   (DHCP on eth0, or gip=ADDR/PREFIX on the cmdline)
#   WASMSTACK-GUEST-NET up|down          (each time http://<its DNS server>/beacon/<addr> starts or
#                                          stops answering; it also serves a page on port 80)
# then echoes each line typed on the screen's keyboard as "WASMSTACK-GUEST-KEYS <line>" and runs a
# root shell on ttyS0 (prompt "guest# "), restarted when it exits.
# halt=1 on the kernel cmdline (direct kernel boot) powers off right after the IP line.
#
# Does nothing when all four outputs exist and are newer than this script.
set -euo pipefail

log() { printf 'guest-image: %s\n' "$*"; }
die() { printf 'guest-image: ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
SELF=$(readlink -f "${BASH_SOURCE[0]}")
OUTPUTS=(vmlinuz initrd.gz tiny.iso template.qcow2)

# libvirt runs QEMU as libvirt-qemu, which may not reach OUTDIR (e.g. under a 0700
# home): tests copy these files into a folder of their own before booting them.

uptodate=1
for f in "${OUTPUTS[@]}"; do
  [ "$OUT/$f" -nt "$SELF" ] || uptodate=0
done
if [ $uptodate = 1 ]; then
  log "up to date: $OUT"
  exit 0
fi

for tool in apt-get apt-cache dpkg-deb cpio gzip genisoimage isohybrid qemu-img; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/setup.sh first)"
done
ISOLINUX_BIN=/usr/lib/ISOLINUX/isolinux.bin
LDLINUX_C32=/usr/lib/syslinux/modules/bios/ldlinux.c32
[ -f $ISOLINUX_BIN ] && [ -f $LDLINUX_C32 ] || die "isolinux/syslinux-common not installed (run scripts/setup.sh first)"

t0=$(date +%s%N)
CACHE=$OUT/cache
DEBS=$CACHE/debs
WORK=$CACHE/work
mkdir -p "$DEBS"
rm -rf "$WORK"
mkdir -p "$WORK"

# ---------------------------------------------------------------- packages
apt_updated=
apt_retry() { # run a command; on failure refresh the apt lists once and retry
  "$@" && return 0
  [ -z "$apt_updated" ] || return 1
  log "refreshing apt lists and retrying"
  apt-get update -q >/dev/null
  apt_updated=1
  "$@"
}
kernel_pkg_name() {
  local name
  name=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
  [ -n "$name" ] && echo "$name"
}
download() { (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null); }
newest_deb() { { ls "$DEBS"/$1 2>/dev/null || true; } | sort -V | tail -n 1; }

kernel_deb=$(newest_deb 'linux-image-*-cloud-amd64_*.deb')
if [ -z "$kernel_deb" ]; then
  kpkg=$(apt_retry kernel_pkg_name) || die "cannot resolve linux-image-cloud-amd64"
  log "downloading $kpkg"
  apt_retry download "$kpkg" || die "apt-get download $kpkg failed"
  kernel_deb=$(newest_deb 'linux-image-*-cloud-amd64_*.deb')
fi
busybox_deb=$(newest_deb 'busybox-static_*.deb')
if [ -z "$busybox_deb" ]; then
  log "downloading busybox-static"
  apt_retry download busybox-static || die "apt-get download busybox-static failed"
  busybox_deb=$(newest_deb 'busybox-static_*.deb')
fi
[ -n "$kernel_deb" ] && [ -n "$busybox_deb" ] || die "downloads missing in $DEBS"
log "kernel: $(basename "$kernel_deb")"
log "busybox: $(basename "$busybox_deb")"

# Only the kernel, the few modules the guest loads and modules.builtin (faster than dpkg-deb -x).
mkdir -p "$WORK/kx"
dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$WORK/kx" --wildcards \
  './boot/vmlinuz-*' './lib/modules/*/modules.builtin' './lib/modules/*/kernel/drivers/virtio/*' \
  './lib/modules/*/kernel/drivers/net/*' './lib/modules/*/kernel/net/core/*' './lib/modules/*/kernel/drivers/block/*'
dpkg-deb -x "$busybox_deb" "$WORK/bbx"
KV=$(ls "$WORK/kx/lib/modules")
[ "$(echo "$KV" | wc -l)" = 1 ] || die "expected one kernel in $kernel_deb, got: $KV"
MODDIR=$WORK/kx/lib/modules/$KV/kernel
BUSYBOX=$WORK/bbx/bin/busybox

# ---------------------------------------------------------------- initramfs
R=$WORK/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,root,etc,lib/mod,usr/share/udhcpc,etc/udhcpc}
cp "$BUSYBOX" "$R/bin/busybox"
# every applet (sh mount echo cat sleep poweroff insmod ip ifconfig ping udhcpc uname ls
# sed grep awk setsid ... ) so that tests can type anything busybox knows into the console
for a in $("$BUSYBOX" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done

# Load order matters: virtio_ring before virtio ("unknown symbol" otherwise).
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk"
: > "$R/lib/mod/order"
for m in $MODULES; do
  ko=$(find "$MODDIR" -name "$m.ko" | head -n 1)
  if [ -n "$ko" ]; then
    cp "$ko" "$R/lib/mod/"
    echo "$m" >> "$R/lib/mod/order"
  fi   # otherwise built into the kernel
done
for m in virtio_pci virtio_net; do
  grep -qx "$m" "$R/lib/mod/order" || grep -q "/$m.ko$" "$WORK/kx/lib/modules/$KV/modules.builtin" 2>/dev/null ||
    die "module $m neither a module nor built in for $KV"
done

cat > "$R/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo WASMSTACK-GUEST-UP
hostname wasmstack-guest
for m in $(cat /lib/mod/order); do
  insmod /lib/mod/$m.ko || echo "wasmstack-guest: insmod $m failed"
done
ip link set lo up

cmdline_arg() { for w in $(cat /proc/cmdline); do case $w in "$1"=*) echo "${w#*=}";; esac; done; }

addr=none
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  gip=$(cmdline_arg gip)
  if [ -n "$gip" ]; then
    ip addr add "$gip" dev eth0
    gw=$(cmdline_arg ggw)
    [ -z "$gw" ] || ip route add default via "$gw" dev eth0
  elif command -v udhcpc >/dev/null 2>&1; then
    udhcpc -i eth0 -n -q -t 5 -T 2 -s /usr/share/udhcpc/default.script || true
  fi
  a=$(ip -o -4 addr show dev eth0 | awk '{ print $4; exit }')
  [ -z "$a" ] || addr=$a
fi
echo "WASMSTACK-GUEST-IP $addr"

if [ "$(cmdline_arg halt)" = 1 ]; then
  sync
  poweroff -f
fi

# For network tests: a page naming this guest on port 80 (reached through port forwarding,
# static NAT, load balancing), and a beacon that fetches http://<first DNS server>/beacon
# every second and says on the serial port each time reaching it starts or stops working
# (source NAT and egress rules, seen from inside).
if [ "$addr" != none ]; then
  mkdir -p /www
  echo "wasmstack-guest ${addr%/*}" > /www/index.html
  httpd -p 80 -h /www
  dns=$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf 2>/dev/null)
  if [ -n "$dns" ]; then
    (last=
     while :; do
       # timeout, not wget -T: this BusyBox's wget crashes with -T.
       if timeout 3 wget -q -O /dev/null "http://$dns/beacon/${addr%/*}" 2>/dev/null; then now=up; else now=down; fi
       [ "$now" = "$last" ] || echo "WASMSTACK-GUEST-NET $now"
       last=$now
       sleep 1
     done) >/dev/ttyS0 2>&1 &
  fi
fi

# Lines typed on the screen's keyboard (e.g. through the VNC console) are echoed on the
# serial port, so that tests can see keystrokes arrive.
if [ -e /dev/tty1 ]; then
  (while read -r line; do echo "WASMSTACK-GUEST-KEYS $line"; done </dev/tty1 >/dev/ttyS0 2>&1) &
fi

# A root shell on the serial port, with ttyS0 as its controlling terminal; restarted on exit.
while :; do
  setsid -c sh -l </dev/ttyS0 >/dev/ttyS0 2>&1
  sleep 1
done
INIT
chmod 755 "$R/init"

cat > "$R/etc/profile" <<'PROFILE'
export PATH=/bin:/sbin HOME=/root
PS1='guest# '
cd /root
PROFILE

cat > "$R/usr/share/udhcpc/default.script" <<'DHCP'
#!/bin/sh
# busybox udhcpc hook. $1: deconfig|bound|renew|leasefail|nak; the lease is in the environment.
[ -n "$interface" ] || exit 0
prefix_of() { # dotted mask -> prefix length
  n=0
  for o in $(echo "$1" | tr . ' '); do
    case $o in
      255) n=$((n + 8)) ;; 254) n=$((n + 7)) ;; 252) n=$((n + 6)) ;; 248) n=$((n + 5)) ;;
      240) n=$((n + 4)) ;; 224) n=$((n + 3)) ;; 192) n=$((n + 2)) ;; 128) n=$((n + 1)) ;;
    esac
  done
  echo $n
}
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    prefix=$mask
    [ -n "$prefix" ] || prefix=$(prefix_of "${subnet:-255.255.255.0}")
    ip -4 addr flush dev "$interface"
    if [ -n "$broadcast" ]; then
      ip addr add "$ip/$prefix" broadcast "$broadcast" dev "$interface"
    else
      ip addr add "$ip/$prefix" dev "$interface"
    fi
    if [ -n "$router" ]; then
      while ip route del default dev "$interface" 2>/dev/null; do :; done
      for r in $router; do
        ip route add default via "$r" dev "$interface"
        break
      done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "udhcpc: $interface $ip/$prefix router ${router:-none}"
    ;;
esac
exit 0
DHCP
chmod 755 "$R/usr/share/udhcpc/default.script"
ln -sf /usr/share/udhcpc/default.script "$R/etc/udhcpc/default.script"

B=$WORK/out
mkdir -p "$B"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R +0:+0 --quiet) | gzip -9 > "$B/initrd.gz"
cp "$WORK/kx/boot/vmlinuz-$KV" "$B/vmlinuz"

# ---------------------------------------------------------------- ISO + template
I=$WORK/iso
mkdir -p "$I/isolinux"
cp $ISOLINUX_BIN $LDLINUX_C32 "$I/isolinux/"
cp "$B/vmlinuz" "$B/initrd.gz" "$I/"
cat > "$I/isolinux/isolinux.cfg" <<'CFG'
SERIAL 0 115200
DEFAULT wasmstack
PROMPT 0
TIMEOUT 0
LABEL wasmstack
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0,115200 quiet
CFG
genisoimage -quiet -o "$B/tiny.iso" -V WASMSTACK-GUEST -J -R \
  -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table "$I"
isohybrid "$B/tiny.iso"
qemu-img convert -q -f raw -O qcow2 "$B/tiny.iso" "$B/template.qcow2"

# Publish; template.qcow2 last so an interrupted run never looks complete.
rm -f "$OUT/template.qcow2"
for f in "${OUTPUTS[@]}"; do
  chmod 644 "$B/$f"
  mv -f "$B/$f" "$OUT/$f"
done
rm -rf "$WORK"
log "built in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $OUT/{$(IFS=,; echo "${OUTPUTS[*]}")}"
