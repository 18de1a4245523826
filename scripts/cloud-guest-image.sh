#!/usr/bin/env bash
# Build the cloud-init test guest: Debian 12 with Debian's own cloud-init, from Debian's packages only.
#
#   scripts/cloud-guest-image.sh OUTDIR
#
# Writes into OUTDIR:
#   template.qcow2  a bootable disk (MBR: a FAT partition with SYSLINUX, the kernel and the
#                   initrd, then the ext4 root labelled wasmstack-root), a CloudStack-style template
#   cache/          the root folder (reused while the package list and settings stay the same)
#                   and a scratch folder
#
# The guest is unmodified Debian cloud-init (22.4 in bookworm): it finds the ConfigDrive datasource
# by a disk labelled config-2, and the CloudStack datasource by the SMBIOS product
# "CloudStack KVM Hypervisor" (and otherwise disables itself and boots to a login prompt).
# The kernel and systemd log to ttyS0 (115200); the default user is `debian` (passwordless sudo),
# whose keys and password come only from cloud-init. The build's SSH host keys are removed, so each
# VM gets its own. systemd-logind powers the guest off cleanly on ACPI's power button (a stop).
#
# No mount and no loop device: mmdebstrap builds the root folder, `mke2fs -d` turns it into the
# root file system, mtools + syslinux (its mtools installer) make the boot partition, and dd
# stitches both into the disk image after sfdisk wrote the partition table.
#
# Does nothing when template.qcow2 exists and is newer than this script.
set -euo pipefail

log() { printf 'cloud-guest-image: %s\n' "$*"; }
die() { printf 'cloud-guest-image: ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
SELF=$(readlink -f "${BASH_SOURCE[0]}")

if [ "$OUT/template.qcow2" -nt "$SELF" ]; then
  log "up to date: $OUT"
  exit 0
fi

for tool in mmdebstrap mke2fs mkfs.vfat mcopy syslinux sfdisk qemu-img; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/setup.sh first)"
done
MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin
[ -f $MBR_BIN ] || die "syslinux-common not installed (run scripts/setup.sh first)"

t0=$(date +%s%N)
WORK=$OUT/cache/work
rm -rf "$WORK"
mkdir -p "$WORK"

# ---------------------------------------------------------------- root file system
PACKAGES=systemd-sysv,udev,linux-image-cloud-amd64,cloud-init,openssh-server,ifupdown,isc-dhcp-client
PACKAGES=$PACKAGES,netbase,iproute2,sudo,ca-certificates,wget
# dbus, so that systemd-logind runs: it is what acts on ACPI's power button (libvirt's
# shutdown, the driver's graceful stop) with a clean power off; without it the guest ignores
# the button until the stop times out and powers it off.
PACKAGES=$PACKAGES,dbus
# Why these settings (all measured under TCG):
# - ConfigDrive and CloudStack first, shorter CloudStack waits: its defaults wait 120 s for the
#   metadata server;
# - C.UTF-8: minbase has no `locales`, and cloud-init's locale module fails on en_US.UTF-8;
# - manage_etc_hosts: otherwise sudo cannot resolve the host name cloud-init sets;
# - ed25519 host keys only: generating RSA + ECDSA + ed25519 took 10 s.
CLOUD_CFG='datasource_list: [ ConfigDrive, CloudStack, None ]
datasource:
  CloudStack:
    max_wait: 30
    timeout: 5
locale: C.UTF-8
manage_etc_hosts: localhost
ssh_genkeytypes: [ed25519]'

# The root folder is kept in cache/root and made again only when what goes into it changes
# (mmdebstrap downloads about 150 MB and takes 1-2 minutes).
MMDEBSTRAP_ARGS=(--quiet --variant=minbase --include="$PACKAGES"
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --customize-hook='echo wasmstack-cloud-guest > "$1/etc/hostname"'
  --customize-hook='echo "LABEL=wasmstack-root / ext4 defaults 0 1" > "$1/etc/fstab"'
  --customize-hook='echo LANG=C.UTF-8 > "$1/etc/default/locale"'
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*'
  --customize-hook="printf '%s\\n' '$CLOUD_CFG' > \"\$1/etc/cloud/cloud.cfg.d/90-wasmstack.cfg\""
  --customize-hook='chroot "$1" apt-get clean'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*'
  bookworm)
MIRRORS=("deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main")
R=$OUT/cache/root
KEY=$(printf '%s\n' "${MMDEBSTRAP_ARGS[@]}" "${MIRRORS[@]}" | sha256sum | cut -d' ' -f1)
if [ -d "$R" ] && [ "$(cat "$OUT/cache/root.key" 2>/dev/null)" = "$KEY" ]; then
  log "root folder up to date: $R"
else
  log "mmdebstrap bookworm (minbase + cloud-init)"
  t1=$(date +%s%N)
  rm -rf "$R" "$OUT/cache/root.key"
  mmdebstrap "${MMDEBSTRAP_ARGS[@]}" "$R" "${MIRRORS[@]}"
  echo "$KEY" > "$OUT/cache/root.key"
  log "mmdebstrap took $(( ($(date +%s%N) - t1) / 1000000 )) ms"
fi

KERNEL=$(ls "$R"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
INITRD=$(ls "$R"/boot/initrd.img-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$KERNEL" ] && [ -n "$INITRD" ] || die "no kernel or initrd in $R/boot"
log "kernel: $(basename "$KERNEL")"

# ---------------------------------------------------------------- disk image
# 2 GiB disk: sectors 2048.. (64 MiB) FAT boot partition, then the root to the end.
SECTOR=512
BOOT_START=2048
BOOT_SECTORS=131072
ROOT_START=$((BOOT_START + BOOT_SECTORS))
DISK_BYTES=$((2 * 1024 * 1024 * 1024))
ROOT_SECTORS=$((DISK_BYTES / SECTOR - ROOT_START))

# Boot partition. -h: the partition's offset on the disk (hidden sectors) in its boot sector.
BOOT=$WORK/boot.raw
mkfs.vfat -F 16 -n WSBOOT -h $BOOT_START -C "$BOOT" $((BOOT_SECTORS * SECTOR / 1024)) >/dev/null
cat > "$WORK/syslinux.cfg" <<'CFG'
SERIAL 0 115200
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND root=LABEL=wasmstack-root rw console=tty0 console=ttyS0,115200
CFG
export MTOOLS_SKIP_CHECK=1
mcopy -i "$BOOT" "$KERNEL" ::/vmlinuz
mcopy -i "$BOOT" "$INITRD" ::/initrd.img
mcopy -i "$BOOT" "$WORK/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$BOOT"

# Root partition: the folder as an ext4 file system, without mounting anything.
ROOTFS=$WORK/root.raw
rm -f "$ROOTFS"
mke2fs -q -t ext4 -L wasmstack-root -d "$R" "$ROOTFS" $((ROOT_SECTORS * SECTOR / 1024))k >/dev/null

DISK=$WORK/disk.raw
truncate -s $DISK_BYTES "$DISK"
sfdisk -q "$DISK" <<EOF
label: dos
start=$BOOT_START, size=$BOOT_SECTORS, type=c, bootable
start=$ROOT_START, size=$ROOT_SECTORS, type=83
EOF
dd if=$MBR_BIN of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$BOOT" of="$DISK" bs=$SECTOR seek=$BOOT_START conv=notrunc,sparse status=none
dd if="$ROOTFS" of="$DISK" bs=1M seek=$((ROOT_START * SECTOR / 1024 / 1024)) conv=notrunc,sparse status=none
qemu-img convert -q -f raw -O qcow2 "$DISK" "$WORK/template.qcow2"

# Publish last, so an interrupted run never looks complete.
chmod 644 "$WORK/template.qcow2"
mv -f "$WORK/template.qcow2" "$OUT/template.qcow2"
rm -rf "$WORK"
log "built in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $OUT/template.qcow2 ($(du -m "$OUT/template.qcow2" | cut -f1) MB)"
