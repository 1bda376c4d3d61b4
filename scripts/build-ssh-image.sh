#!/usr/bin/env bash
# Builds the local image of a host reached over SSH (openssh-server on top of the local base
# image, scripts/build-base-image.sh), for the lost-link test: a container host whose control
# connection is a network link that nftables can cut. Installing openssh-server reaches the Debian
# mirror of the base image's apt sources. The image has no host keys and no authorized keys: a
# test mounts its own at run time. Idempotent: an existing image is kept (--force rebuilds).
#
#   scripts/build-ssh-image.sh [--force]
#
# Run it as docker run -v KEYS:/etc/ssh/keys:ro IMAGE, with KEYS holding ssh_host_ed25519_key and
# authorized_keys (root's); sshd then listens on port 22 of the container.
set -euo pipefail

image="${SSH_IMAGE:-magsasa/debian-ssh:bookworm}"
base="${BASE_IMAGE:-magsasa/debian-base:bookworm}"
force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "ssh image $image exists; skipping (use --force to rebuild)"
  exit 0
fi
docker image inspect "$base" >/dev/null 2>&1 || BASE_IMAGE="$base" bash "$(dirname "$0")/build-base-image.sh"

context="$(mktemp -d /var/tmp/magsasa-ssh.XXXXXX)"
trap 'rm -rf "$context"' EXIT
cat > "$context/Dockerfile" <<DOCKERFILE
FROM $base
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server \\
 && rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_*key* \\
 && mkdir -p /run/sshd
CMD ["/usr/sbin/sshd", "-D", "-e", "-o", "HostKey=/etc/ssh/keys/ssh_host_ed25519_key", \\
     "-o", "AuthorizedKeysFile=/etc/ssh/keys/authorized_keys", "-o", "PermitRootLogin=prohibit-password", \\
     "-o", "PasswordAuthentication=no", "-o", "StrictModes=no"]
DOCKERFILE
docker build -t "$image" "$context"
echo "built $image"
