#!/usr/bin/env bash
# Installs the Debian packages the tests and the local default need, once per machine (idempotent: it does
# nothing when they are present). Needs root, as on CI and the developers' machines.
#   docker-registry  the OCI registry (CNCF distribution) tests and the local default push to
#   busybox-static   the userland of the test base OS image (testimages/)
#   buildah          the buildah CLI and containers-common configuration (the project builds with the
#                    buildah Go library; the CLI is there for people debugging a build by hand)
#   ostree           libostree and its CLI: the simulated nodes' hosts are real OSTree sysroots (daemon/simhost)
set -euo pipefail
PKGS=(docker-registry busybox-static buildah ostree)
# Every simulated node's daemon holds an inotify instance (the drift monitor), and the test packages run at
# once: the kernel's default of 128 instances per user can run out. Raise it where we may (root), else go on.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 1024)" -lt 1024 ] && [ "$(id -u)" -eq 0 ]; then
  sysctl -q -w fs.inotify.max_user_instances=1024 >/dev/null 2>&1 || true
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
