#!/usr/bin/env bash
# Writes a one-layer OCI image (image-layout tar, what `ctr images import` reads) from a root filesystem
# directory, reproducibly (sorted entries, mtime 0, uid/gid 0), without any registry or image tool.
#   mkimage.sh NAME ROOTFS_DIR OUT.tar ENTRYPOINT_JSON      e.g. mkimage.sh registry.k8s.io/pause:3.10 dir p.tar '["/pause"]'
set -euo pipefail
name=$1 rootfs=$2 out=$3 entry=$4
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
mkdir -p "$w/blobs/sha256"
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$w/blobs/sha256/$d"; echo "$d $(stat -c %s "$w/blobs/sha256/$d")"; }
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$w/layer.tar" .
diffid=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
gzip -n -6 <"$w/layer.tar" >"$w/layer.tgz"; rm "$w/layer.tar"
read -r ld lsz < <(blob "$w/layer.tgz")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$entry" "$diffid" >"$w/config.json"
read -r cd csz < <(blob "$w/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$cd" "$csz" "$ld" "$lsz" >"$w/manifest.json"
read -r md msz < <(blob "$w/manifest.json")
# io.containerd.image.name is the full name ctr import gives the image
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$md" "$msz" "$name" "${name##*:}" >"$w/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci-layout"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$w" -cf "$out" oci-layout index.json blobs
