#!/usr/bin/env bash
# Proves the container image on a machine with no registry and no container runtime able
# to start processes: a debian:bookworm-slim base made from Debian's packages
# (debootstrap, cached in $OLLA_CI_CACHE), `deno task image --pull=never`, the image's
# user and added size checked, then its filesystem run under chroot (scripts/container_smoke.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${OLLA_CI_CACHE:-/var/cache/olla-ts-ci}"
base="docker.io/library/debian:bookworm-slim"
image="localhost/olla-ts:$(node -p 'require("./package.json").version')"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi

if ! podman image exists "$base"; then
  if [ ! -x "$cache/bookworm-minbase/bin/sh" ]; then
    echo "making the base rootfs with debootstrap (cached in $cache)"
    $sudo mkdir -p "$cache"
    $sudo rm -rf "$cache/bookworm-minbase.partial"
    $sudo debootstrap --variant=minbase bookworm "$cache/bookworm-minbase.partial" \
      http://deb.debian.org/debian >/dev/null
    $sudo mv "$cache/bookworm-minbase.partial" "$cache/bookworm-minbase"
  fi
  $sudo tar -C "$cache/bookworm-minbase" -c . | podman import - "$base" >/dev/null
fi

deno task image --pull=never

user=$(podman image inspect --format '{{.Config.User}}' "$image")
case "${user%%:*}" in "" | root | 0) echo "the image runs as root ($user)" >&2; exit 1 ;; esac
added=$(($(podman image inspect --format '{{.Size}}' "$image") -
  $(podman image inspect --format '{{.Size}}' "$base")))
echo "image user: $user; layers added by olla-ts: $((added / 1000000)) MB"
[ "$added" -le 130000000 ] || { echo "olla-ts adds more than 130 MB" >&2; exit 1; }

root="$(mktemp -d)"
# The image's user must be able to enter its root.
chmod 755 "$root"
cleanup() {
  $sudo umount "$root/proc" "$root/dev" 2>/dev/null || true
  $sudo rm -rf "$root"
}
trap cleanup EXIT
container=$(podman create --no-healthcheck "$image")
podman export "$container" | $sudo tar -x -C "$root"
podman rm "$container" >/dev/null
$sudo mount --bind /proc "$root/proc"
$sudo mount --bind /dev "$root/dev"
deno run -A scripts/container_smoke.ts "$root" "$user" \
  "$(podman image inspect --format '{{json .Config.Env}}' "$image")" \
  "$(podman image inspect --format '{{.Config.WorkingDir}}' "$image")"
