package jobs

import (
	"path"

	corev1 "k8s.io/api/core/v1"
)

// Annotations a build's objects carry when an entitlement object is mounted into its RUN steps (the
// reference's strings; the value is empty).
const (
	HasEtcPkiEntitlementAnnotation = "machineconfiguration.openshift.io/has-etc-pki-entitlement"
	HasEtcYumReposDAnnotation      = "machineconfiguration.openshift.io/has-etc-yum-repos-d"
	HasEtcPkiRpmGpgAnnotation      = "machineconfiguration.openshift.io/has-etc-pki-rpm-gpg"
)

// runMountsDir is where the build pod sees the objects it hands to RUN steps.
const runMountsDir = "/var/run/imagemode/run-mounts"

// RunMount is a ConfigMap or Secret of the build namespace whose files the build's RUN steps see at Path
// (read-only, for the duration of each step: nothing of it is committed to the image).
type RunMount struct {
	// Kind says which object it is; Names are the names to look for, first found wins. Name is the one
	// found (set by the caller).
	Kind  RunMountKind
	Names []string
	Name  string
	// Path is the directory RUN steps see the object's keys in.
	Path string
	// Annotation is the has-* annotation the build's objects get when it is mounted.
	Annotation string
	// Volume is the build pod's volume name.
	Volume string
}

// RunMountKind is the kind of a RunMount's object.
type RunMountKind string

// Kinds of RunMount objects.
const (
	SecretMount    RunMountKind = "Secret"
	ConfigMapMount RunMountKind = "ConfigMap"
)

// EntitlementMounts are the objects a build of pool mounts into its RUN steps when they exist, as in the
// reference: the Secret etc-pki-entitlement-<pool> (the per-pool copy the operator keeps) or else
// etc-pki-entitlement at /etc/pki/entitlement (RHEL entitlement certificates), the ConfigMap
// etc-yum-repos-d at /etc/yum.repos.d and the Secret etc-pki-rpm-gpg at /etc/pki/rpm-gpg.
func EntitlementMounts(pool string) []RunMount {
	return []RunMount{
		{Kind: SecretMount, Names: []string{"etc-pki-entitlement-" + pool, "etc-pki-entitlement"}, Path: "/etc/pki/entitlement",
			Annotation: HasEtcPkiEntitlementAnnotation, Volume: "etc-pki-entitlement"},
		{Kind: ConfigMapMount, Names: []string{"etc-yum-repos-d"}, Path: "/etc/yum.repos.d",
			Annotation: HasEtcYumReposDAnnotation, Volume: "etc-yum-repos-d"},
		{Kind: SecretMount, Names: []string{"etc-pki-rpm-gpg"}, Path: "/etc/pki/rpm-gpg",
			Annotation: HasEtcPkiRpmGpgAnnotation, Volume: "etc-pki-rpm-gpg"},
	}
}

// podPath is where the build pod sees the mount's object.
func (m RunMount) podPath() string { return path.Join(runMountsDir, m.Volume) }

// volume is the build pod's volume of the mount's object. It is optional: an object deleted after the
// build started leaves the directory empty instead of holding the pod.
func (m RunMount) volume() corev1.Volume {
	optional := true
	if m.Kind == ConfigMapMount {
		return corev1.Volume{Name: m.Volume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: m.Name}, Optional: &optional}}}
	}
	return corev1.Volume{Name: m.Volume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: m.Name, Optional: &optional}}}
}

// arg is the builder's --run-mount flag for the mount.
func (m RunMount) arg() string { return "--run-mount=" + m.podPath() + ":" + m.Path }
