// Package jobs is the Kubernetes Job backend of the build service: from a build request (MachineOSConfig,
// MachineOSBuild, pool, rendered config, secrets) it makes the Job build-<mosb> and its ephemeral
// ConfigMaps and Secrets — names, labels, annotations and ownership as in the reference (the Job is
// controlled by the MachineOSBuild; the ConfigMaps and Secrets are owned by the Job, so they go when it
// goes) — and it reads a build's state from its Job. The build pod runs this project's own builder binary
// (`imagemode-builder build`), which builds in-process with the buildah library, pushes, and reports the
// pushed digest in the ConfigMap digest-<mosb>. It also tees its output into the ConfigMap build-log-<mosb>
// (owned by the MachineOSBuild, so the last attempt's log outlives the pod); this package names it and its
// annotations. The entitlement objects of the namespace (EntitlementMounts: the Secret etc-pki-entitlement,
// the ConfigMap etc-yum-repos-d, the Secret etc-pki-rpm-gpg), when present, are mounted into the build pod
// and handed to its RUN steps (never to the image), with the reference's has-* annotations.
package jobs
