// Package registries renders a node's /etc/containers/registries.conf and /etc/containers/policy.json from the
// cluster's mirror and image configuration (ImageContentSourcePolicy, ImageDigestMirrorSet, ImageTagMirrorSet and
// images.config.openshift.io/cluster) the way OpenShift's Machine Config Operator does, validates that
// configuration (Validate), and decides whether a registries.conf change can be applied without draining the
// node (IsSafeChange). Everything here is a pure function of its arguments: no cluster client, no file I/O, and
// the output is byte-for-byte deterministic whatever the order of the input objects.
package registries
