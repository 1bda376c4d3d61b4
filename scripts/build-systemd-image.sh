#!/usr/bin/env bash
# Builds the local image of a host with systemd as PID 1, on top of the local base image
# (scripts/build-base-image.sh), for the tests of the systemd paths: chaos_process's systemd_unit,
# chaos_db's control=systemd (a PostgreSQL cluster "main", started at boot), the backstop timer and
# the boot hook. Installing systemd reaches the
# Debian mirror of the base image's apt sources. Idempotent: an existing image is kept (--force rebuilds).
#
#   scripts/build-systemd-image.sh [--force]
#
# Run it as docker run --cap-add SYS_ADMIN --tmpfs /run --tmpfs /run/lock --tmpfs /tmp
#   -v /sys/fs/cgroup:/sys/fs/cgroup:ro IMAGE   (no --privileged needed; the image sets container=docker
# and the stop signal systemd expects).
set -euo pipefail

image="${SYSTEMD_IMAGE:-magsasa/debian-systemd:bookworm}"
base="${BASE_IMAGE:-magsasa/debian-base:bookworm}"
force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "systemd image $image exists; skipping (use --force to rebuild)"
  exit 0
fi
docker image inspect "$base" >/dev/null 2>&1 || bash "$(dirname "$0")/build-base-image.sh"

context="$(mktemp -d /var/tmp/magsasa-systemd.XXXXXX)"
trap 'rm -rf "$context"' EXIT
cat > "$context/Dockerfile" <<DOCKERFILE
FROM $base
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd systemd-sysv dbus python3-psycopg \\
 && rm -rf /var/lib/apt/lists/* \\
 && systemctl mask systemd-logind.service getty.target console-getty.service \\
 && pg_createcluster "\$(ls /usr/lib/postgresql | sort -n | tail -1)" main
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
DOCKERFILE
docker build -t "$image" "$context"
echo "built $image"
