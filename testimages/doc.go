// Package testimages builds the tiny base "OS" images that tests and the embedded local default layer on.
// No registry on the internet is reachable here, so the base is made locally: a merged-/usr busybox-static
// rootfs shaped like an RHCOS image (os-release, the core user, systemd unit directories, bootc/ostree
// labels, and what an OSTree deployment needs: os-release and a stub kernel with its initramfs under
// /usr/lib/modules/<KernelVersion>/) plus stand-ins for the tools layered Containerfiles call — `ostree container commit`, `dnf`,
// `rpm-ostree install`, `systemctl enable` — and a small local package set, so the docs' Containerfiles
// (`dnf install -y cowsay && dnf clean all && ostree container commit`) build unchanged and offline.
//
// The image is written reproducibly (fixed timestamps, sorted entries) as an OCI layout in a per-machine
// cache keyed by its inputs, and pushed to a registry with containers/image preserving its digest.
//
// BuildServiceImage builds the service image the same way, for real kubelets (no registry on the internet,
// and Containerfile needs one): the project's programs linked statically on busybox-static, written as an
// OCI archive named as the manifests name the image, for `ctr images import`.
//
// Options.PayloadMB adds a second layer of incompressible, reproducible files so a base weighs like a real
// OS image (1–2 GB) where its size matters, as in the build service's benchmark.
package testimages
