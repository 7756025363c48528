#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) for machines without a GPU. Dawn needs
# Mesa >= 24: Ubuntu 24.04 and later and Debian 13 and later ship it; Debian 12 ships Mesa 22,
# so there it comes from bookworm-backports. Other Debian-family releases get the distribution's
# own package when it is new enough, and an error naming the version otherwise.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-lavapipe: needs root (apt-get); run: sudo bash tools/install-lavapipe.sh" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-lavapipe: no apt-get; install Mesa >= 24 with its Vulkan drivers (lavapipe) from your distribution" >&2
  exit 1
fi
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
MIN_MESA=24

candidate_major() {
  apt-cache policy "$@" mesa-vulkan-drivers 2>/dev/null | awk '/Candidate:/ { sub(/^[0-9]+:/, "", $2); split($2, v, /[.:~+-]/); print (v[1] ~ /^[0-9]+$/ ? v[1] : 0); exit }'
}

apt-get update -qq
target=()
major=$(candidate_major)
if [ -z "$major" ] || [ "$major" -lt "$MIN_MESA" ]; then
  codename=${VERSION_CODENAME:-}
  if [ "${ID:-}" = debian ] && [ -n "$codename" ]; then
    # Debian: the release's backports carry a newer Mesa, signed with the Debian archive key.
    if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      cat > /etc/apt/sources.list.d/peft-ts-backports.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      apt-get update -qq
    fi
    target=(-t "${codename}-backports")
  fi
  major=$(candidate_major "${target[@]}")
  if [ -z "$major" ] || [ "$major" -lt "$MIN_MESA" ]; then
    echo "install-lavapipe: ${PRETTY_NAME:-this system} offers Mesa ${major:-none}; Dawn needs Mesa >= ${MIN_MESA} (Ubuntu 24.04+, Debian 12 with backports, Debian 13+)" >&2
    exit 1
  fi
fi
apt-get install -y -qq "${target[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
dpkg-query -W -f='installed ${Package} ${Version}\n' mesa-vulkan-drivers
