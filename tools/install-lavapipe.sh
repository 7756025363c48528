#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) from Debian bookworm-backports, for
# machines without a GPU. Dawn refuses the Mesa 22 that bookworm ships, so >= 24 is needed.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-lavapipe: needs root (apt-get); run: sudo bash tools/install-lavapipe.sh" >&2
  exit 1
fi
. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}
list=/etc/apt/sources.list.d/peft-ts-backports.sources
if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat > "$list" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -t "${codename}-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
dpkg-query -W -f='installed ${Package} ${Version}\n' mesa-vulkan-drivers
