package osbuild

import (
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// Names of a build's objects, from the MachineOSBuild's name (the reference's names).
func JobName(mosb string) string             { return "build-" + mosb }
func ContainerfileCMName(mosb string) string { return "containerfile-" + mosb }
func MachineConfigCMName(mosb string) string { return "mc-" + mosb }
func DigestCMName(mosb string) string        { return "digest-" + mosb }
func RegistryCertsCMName(mosb string) string { return "registry-certs-" + mosb }
func BaseSecretName(mosb string) string      { return "base-" + mosb }
func FinalSecretName(mosb string) string     { return "final-" + mosb }

// BuildLogCMName names the ConfigMap the build pod keeps its log in (the last attempt's, truncated to its
// last BuildLogMaxBytes). It is owned by the MachineOSBuild, not the Job: the log outlives the pod and the
// cleanup of a successful build's ephemeral objects, and goes with the build.
func BuildLogCMName(mosb string) string { return "build-log-" + mosb }

// Keys of the ConfigMaps.
const (
	ContainerfileKey = "Containerfile"
	// ContextKey holds, next to the Containerfile, the rest of the build context the build service composed
	// (a gzipped tar, layering.BuildContext.Archive); the build pod unpacks it and composes nothing.
	ContextKey       = "context.tar.gz"
	MachineConfigKey = "machineconfig.json.gz"
	DigestKey        = "digest"
	// BuildLogKey holds the log text in the build-log ConfigMap.
	BuildLogKey = "log"
)

// The build-log ConfigMap's annotations, written by the build pod.
const (
	// BuildLogPodAnnotation names the pod (attempt) whose output the log holds.
	BuildLogPodAnnotation = "imagemode.io/build-log-pod"
	// BuildLogCompleteAnnotation is "true" once the attempt ended (successfully or not) and its log is whole.
	BuildLogCompleteAnnotation = "imagemode.io/build-log-complete"
	// BuildLogOffsetAnnotation is the byte offset, in the attempt's whole output, of the log's first byte
	// (non-zero once the front was cut to keep the last BuildLogMaxBytes); followers use it to print only
	// what is new.
	BuildLogOffsetAnnotation = "imagemode.io/build-log-offset"
)

// Signed builds (see machineos/signing.go).
const (
	// SigningKeySecretAnnotation on a MachineOSConfig, and on each build it makes, names the signing key
	// Secret of the build namespace (cosign.key, cosign.password).
	SigningKeySecretAnnotation = "imagemode.io/signing-key-secret"
	// SignatureKeyAnnotation on a signed build is the fingerprint (SHA256:<hex> of the public key's DER) of
	// the key its image is signed with.
	SignatureKeyAnnotation = "imagemode.io/signature-key"
	// ProvenanceAnnotation on a signed build is its image's signed provenance (an in-toto SLSA statement
	// stored as a sigstore attestation): the attestation's manifest, repo@sha256:….
	ProvenanceAnnotation = "imagemode.io/provenance"
	// ConditionSigned is the condition of a build that signs: True once the signature is stored, False
	// (reason SigningKey*) when the key cannot be used.
	ConditionSigned = "Signed"
)

// BuildLogMaxBytes bounds the log kept in the build-log ConfigMap (its last bytes are kept).
const BuildLogMaxBytes = 512 << 10

// CurrentName is the name of the MachineOSConfig's current build: the one its
// current-machine-os-build annotation names (the build service sets it), "" before the first build.
func CurrentName(mosc *mcfgv1.MachineOSConfig) string {
	return mosc.Annotations[wellknown.CurrentMachineOSBuildAnnotation]
}
