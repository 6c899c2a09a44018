// Package builder builds layered OS images. Subpackage buildah runs the build in-process with the buildah
// Go library (chroot isolation, overlay storage) and pushes the result; later parts add the Kubernetes Job
// backend that runs such builds as build pods, and the local pod runner that plays the kubelet here.
package builder
