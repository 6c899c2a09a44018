package machineos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry/signing"
)

// attest stores a signed build's provenance next to its image — an in-toto statement with a SLSA v1
// predicate (the base image by digest, the Containerfiles and the rendered MachineConfig by name and hash,
// the builder image, the build's start and end, the MachineOSBuild's name and UID), signed with the build's
// key as a sigstore attestation — and returns the attestation as repo@sha256:….
func (r *BuildReconciler) attest(ctx context.Context, mosb *mcfgv1.MachineOSBuild, job *batchv1.Job, digested string, key *signing.PrivateKey) (string, error) {
	mosc := &mcfgv1.MachineOSConfig{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: mosb.Spec.MachineOSConfig.Name}, mosc); err != nil {
		return "", fmt.Errorf("reading machineosconfig %s: %w", mosb.Spec.MachineOSConfig.Name, err)
	}
	rendered := &mcfgv1.MachineConfig{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: mosb.Spec.MachineConfig.Name}, rendered); err != nil {
		return "", fmt.Errorf("reading machineconfig %s: %w", mosb.Spec.MachineConfig.Name, err)
	}
	spec, err := json.Marshal(rendered.Spec)
	if err != nil {
		return "", err
	}
	p := signing.Provenance{
		BaseImage: mosb.Annotations[BaseImageAnnotation], Containerfiles: map[string]string{},
		RenderedConfig: rendered.Name, RenderedConfigSHA256: sha256Hex(spec), BuilderImage: r.Jobs.Image,
		BuildStart: job.CreationTimestamp.Time, BuildEnd: r.Clock.Now(),
		Build: mosb.Name, BuildUID: string(mosb.UID), MachineOSConfig: mosc.Name,
	}
	for _, cf := range mosc.Spec.Containerfile {
		p.Containerfiles[string(cf.ContainerfileArch)] = sha256Hex([]byte(cf.Content))
	}
	st, err := signing.Statement(digested, p)
	if err != nil {
		return "", err
	}
	att, err := r.Signer.AttestImage(ctx, mosb.Annotations[wellknown.RenderedImagePushSecretAnnotation], digested, key, st)
	if err != nil {
		return "", fmt.Errorf("attaching the provenance of %s (machineosbuild %s): %w", digested, mosb.Name, err)
	}
	repo, _, _ := cutDigest(digested)
	return repo + "@" + att, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cutDigest splits repo@digest.
func cutDigest(s string) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
