#!/usr/bin/env bash
# Builds the local Debian base image (Python, the PostgreSQL driver, PostgreSQL, supervisor)
# that the demo containers and Molecule use. Without a registry, debootstrap a minimal
# bookworm, verified with the Debian archive keyring, and import the tree into docker; where a
# registry is reachable (BASE_SOURCE=registry), build the same packages on debian:bookworm-slim
# from scripts/base-image/Dockerfile. Idempotent: an existing image is kept (--force rebuilds).
#
#   scripts/build-base-image.sh [--force]
#
# Environment: BASE_IMAGE (default magsasa/debian-base:bookworm), BASE_SOURCE (debootstrap or
# registry; default debootstrap), DEBIAN_MIRROR (default: the first Debian mirror of this
# machine's apt sources, else deb.debian.org), SUITE, KEYRING (default Debian's archive keyring).
set -euo pipefail

image="${BASE_IMAGE:-magsasa/debian-base:bookworm}"
suite="${SUITE:-bookworm}"
packages="python3,python3-psycopg2,python3-psutil,postgresql,supervisor,procps,iproute2,ca-certificates,curl"
base_source="${BASE_SOURCE:-debootstrap}"
keyring="${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists; skipping (use --force to rebuild)"
  exit 0
fi

if [ "$base_source" = registry ]; then
  docker build --pull -t "$image" --build-arg "FROM_IMAGE=debian:$suite-slim" \
    --build-arg "PACKAGES=${packages//,/ }" "$(dirname "$0")/base-image"
  echo "built $image from debian:$suite-slim"
  exit 0
fi
[ "$base_source" = debootstrap ] || { echo "BASE_SOURCE must be debootstrap or registry, got '$base_source'" >&2; exit 1; }

[ -s "$keyring" ] || { echo "missing keyring $keyring (apt-get install debian-archive-keyring)" >&2; exit 1; }
for tool in debootstrap docker tar; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool (apt-get install $tool)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }

mirror_from_apt_sources() {
  # One-line (.list) and deb822 (.sources) formats; the first plain Debian archive wins.
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true
}
mirror="${DEBIAN_MIRROR:-$(mirror_from_apt_sources)}"
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d /var/tmp/magsasa-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap $suite from $mirror into $rootfs"
debootstrap --variant=minbase --keyring="$keyring" --include="$packages" "$suite" "$rootfs" "$mirror"
# Keep the image small and let the images built from it run apt-get without stale state.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
echo "deb $mirror $suite main" > "$rootfs/etc/apt/sources.list"

tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$image"
echo "built $image"
