#!/usr/bin/env bash
# Installs and builds what a real Kubernetes node needs on this machine, once per machine, and prints the
# directory holding the locally made images (internal/controlplane's StartNode uses it):
#   containerd + runc  Debian's packages (apt; containerd 1.6.20 with its CRI plugin, runc 1.1.5)
#   kubelet, kube-scheduler  built with the control plane from hack/kube-assets (hack/setup-kube-assets.sh)
#   pause.tar    registry.k8s.io/pause:3.10, the pod sandbox image: hack/node-runtime/pause, a static Go binary
#   busybox.tar  localhost/imagemode/busybox:latest, busybox-static with every applet in /bin, for test pods
# The images are OCI image-layout tars made by hack/node-runtime/mkimage.sh (no image can be pulled here);
# StartNode imports them with `ctr images import`. Cached in ~/.cache/imagemode/node-runtime/<key>, the key
# hashing this script, hack/node-runtime/, the busybox binary and the Go version.
#   dir=$(hack/setup-node-runtime.sh)
#
# What works on this machine kind (2 cores, cgroup v1 hybrid hierarchy, no systemd as PID 1, root without
# CAP_SYS_RESOURCE, measured 2026-12-04; details and every attempt in hack/NODE-RUNTIME.md):
#   - containerd 1.6.20 (Debian) + runc 1.1.5 (Debian) under a private root, state, socket and CNI dirs;
#     CRI config: restrict_oom_score_adj = true (the one setting that matters, see below), snapshotter overlayfs,
#     sandbox_image = the local pause image, a loopback-only CNI conflist (marks the runtime's network ready;
#     pods must use hostNetwork: there are no CNI plugins or kube-proxy), SystemdCgroup = false.
#   - kubelet v1.36.3 with failCgroupV1: false, cgroupDriver: cgroupfs, failSwapOn: false, a private
#     cgroupRoot (made in every v1 hierarchy), root dir and podLogsDir; it registers a Ready node, runs static
#     and API-created hostNetwork pods; `kubectl logs` and `kubectl exec` go through the API server to it
#     (the API server needs --kubelet-preferred-address-types=InternalIP,... and a kubelet client cert).
#   - kube-scheduler v1.36.3 binds API-created pods to it; kube-controller-manager's node-lifecycle-controller
#     lifts the node.kubernetes.io/not-ready taint the kubelet registers with.
# What failed, and why:
#   - every pod sandbox, with runc 1.1.5: `runc create failed: unable to start container process: can't get
#     final child's PID from pipe: EOF`. runc 1.5.3 (built from the Go module proxy) names the cause:
#     `nsexec: failed to update /proc/self/oom_score_adj: Permission denied`: the CRI plugin gives the sandbox
#     oom_score_adj -998, and lowering it needs CAP_SYS_RESOURCE, which this machine's bounding set lacks
#     (CapBnd 000001fffeffffff: bit 24 clear; `echo -5 >/proc/self/oom_score_adj` fails as root).
#     restrict_oom_score_adj = true clamps every container's value to containerd's own (0 here): then
#     Debian's runc 1.1.5 runs pods, so no newer runc and no containerd 2.x is needed.
#   - crun 1.8.1 (Debian): `cgroups in hybrid mode not supported, drop all controllers from cgroupv2`.
#   - the kubelet also logs, harmlessly: `Failed to set rlimit on max file handles: operation not permitted`
#     and `Failed to ensure process in container with oom score` (the same missing capability).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/hack/env.sh"
NR=$ROOT/hack/node-runtime
BUSYBOX=/bin/busybox

PKGS=(containerd runc busybox-static)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
"$ROOT/hack/setup-kube-assets.sh" >/dev/null   # kubelet and kube-scheduler

KEY=$( { cat "$0" "$NR/mkimage.sh" "$NR/pause/go.mod" "$NR/pause/main.go"; sha256sum <"$BUSYBOX"; go version; } \
  | sha256sum | cut -c1-12)
OUT=${NODE_RUNTIME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imagemode/node-runtime/$KEY}
if [ -f "$OUT/pause.tar" ] && [ -f "$OUT/busybox.tar" ]; then echo "$OUT"; exit 0; fi

start=$(date +%s)
TMP="$OUT.tmp.$$"; rm -rf "$TMP"; mkdir -p "$TMP/pause-root" "$TMP/busybox-root/bin"
trap 'rm -rf "$TMP"' EXIT
( cd "$NR/pause" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags="-s -w" \
    -o "$TMP/pause-root/pause" . ) >&2
"$NR/mkimage.sh" registry.k8s.io/pause:3.10 "$TMP/pause-root" "$TMP/pause.tar" '["/pause"]'
cp "$BUSYBOX" "$TMP/busybox-root/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$TMP/busybox-root/bin/$a"; done
mkdir -p "$TMP/busybox-root/"{etc,proc,sys,dev,tmp,root}
echo 'root:x:0:0:root:/root:/bin/sh' >"$TMP/busybox-root/etc/passwd"
echo 'root:x:0:' >"$TMP/busybox-root/etc/group"
"$NR/mkimage.sh" localhost/imagemode/busybox:latest "$TMP/busybox-root" "$TMP/busybox.tar" '["/bin/sh"]'
rm -rf "$TMP/pause-root" "$TMP/busybox-root"
mkdir -p "$(dirname "$OUT")"; rm -rf "$OUT"; mv "$TMP" "$OUT"; trap - EXIT
echo "built node runtime images in $(( $(date +%s) - start ))s -> $OUT" >&2
echo "$OUT"
