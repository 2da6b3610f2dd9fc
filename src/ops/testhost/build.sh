#!/usr/bin/env bash
# Builds the image of `fleet test` (run by fleet as `bash -c SCRIPT fleet-testhost TAG INIT`):
# Debian bookworm with openssh-server, sudo, python3, rsync, ufw, iproute2, curl, made
# with debootstrap and `docker import`, so no container registry is needed. Once per
# machine (the tag carries a hash of this script and the init), or on --build-image.
set -euo pipefail
tag="$1"
init="$2"
mirror="${FLEET_TESTHOST_MIRROR:-http://deb.debian.org/debian}"
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "building the fleet test image needs debootstrap: install it (Debian: apt-get install debootstrap)" >&2
  exit 3
fi
if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo -n); fi
root="$(mktemp -d "${TMPDIR:-/tmp}/fleet-testhost.XXXXXX")"
trap '"${sudo[@]}" rm -rf "$root"' EXIT
packages=(
  openssh-server sudo python3 rsync ufw iproute2 iptables procps curl
  ca-certificates locales netbase
)
echo "building $tag (debootstrap bookworm from $mirror); this takes a few minutes once per machine" >&2
"${sudo[@]}" debootstrap --variant=minbase bookworm "$root" "$mirror" >&2
# policy-rc.d keeps the packages' services from starting inside the chroot.
"${sudo[@]}" sh -c "
  set -e
  printf '#!/bin/sh\nexit 101\n' > '$root/usr/sbin/policy-rc.d'
  chmod +x '$root/usr/sbin/policy-rc.d'
  mount -t proc proc '$root/proc'
  trap 'umount $root/proc' EXIT
  chroot '$root' apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive chroot '$root' apt-get install -y -q --no-install-recommends ${packages[*]} >&2
  rm -f '$root/usr/sbin/policy-rc.d'
  printf 'en_US.UTF-8 UTF-8\n' > '$root/etc/locale.gen'
  chroot '$root' locale-gen >/dev/null
  rm -f '$root'/etc/ssh/ssh_host_*
  install -m 0755 '$init' '$root/usr/local/sbin/fleet-testhost-init'
  rm -rf '$root'/var/lib/apt/lists/* '$root'/var/cache/apt/*.bin '$root'/var/cache/apt/archives/*.deb
"
"${sudo[@]}" tar -C "$root" -c . |
  docker import -c 'CMD ["/usr/local/sbin/fleet-testhost-init"]' - "$tag" >&2
