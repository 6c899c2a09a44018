package gc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry"
)

// FinalizerName is the finalizer the collector puts on MachineOSBuilds with a pushed image; it is removed
// once the image is deleted or handed to a tombstone. The build service's foregroundDeletion finalizer is
// left alone.
const FinalizerName = "imagemode.io/image-cleanup"

// TombstoneLabel marks the ConfigMaps that record an image still to be deleted (value empty). Tombstones
// also carry the on-cluster-layering label (the build service's cache holds only ConfigMaps with it) and
// the machine-os-config label.
const TombstoneLabel = "imagemode.io/pending-image-deletion"

// TombstonePrefix starts every tombstone's name; the rest is a hash of the image.
const TombstonePrefix = "pending-image-deletion-"

// Keys of a tombstone's data.
const (
	KeyImage           = "image"
	KeyPushSecret      = "pushSecret"
	KeyMachineOSConfig = "machineOSConfig"
	KeyMachineOSBuild  = "machineOSBuild"
	// KeyInUseBy lists the objects using the image, one per line, when it was last checked.
	KeyInUseBy = "inUseBy"
	// KeyLastError is the last registry error ("" after a check that found the image in use).
	KeyLastError = "lastError"
)

// Target is one image to delete and where its credentials come from.
type Target struct {
	// Image is the digested pull spec (repository@sha256:…).
	Image string
	// PushSecret names the Secret, in the collector's namespace, the image was pushed with.
	PushSecret string
	// MachineOSConfig and MachineOSBuild name the objects the image was built for (the build may be gone).
	MachineOSConfig, MachineOSBuild string
}

// TargetOfBuild returns the image of a MachineOSBuild: status.digestedImagePushSpec, the push secret
// annotation and the MachineOSConfig (spec, else the machine-os-config label).
func TargetOfBuild(b *mcfgv1.MachineOSBuild) Target {
	mosc := b.Spec.MachineOSConfig.Name
	if mosc == "" {
		mosc = b.Labels[wellknown.MachineOSConfigLabel]
	}
	return Target{
		Image:           string(b.Status.DigestedImagePushSpec),
		PushSecret:      b.Annotations[wellknown.RenderedImagePushSecretAnnotation],
		MachineOSConfig: mosc,
		MachineOSBuild:  b.Name,
	}
}

// TombstoneName is the name of the tombstone of image: one per image, whichever builds pushed it.
func TombstoneName(image string) string {
	sum := sha256.Sum256([]byte(image))
	return TombstonePrefix + hex.EncodeToString(sum[:])[:20]
}

// IsTombstone reports whether a ConfigMap is a tombstone (by its label).
func IsTombstone(labels map[string]string) bool {
	_, ok := labels[TombstoneLabel]
	return ok
}

// NewTombstone returns the tombstone of t in namespace, with the reasons the image was kept and the last
// registry error (never a secret: errors name secrets, not their content).
func NewTombstone(namespace string, t Target, reasons []registry.Reason, lastErr string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      TombstoneName(t.Image),
			Labels: map[string]string{
				wellknown.OnClusterLayeringLabel: "",
				TombstoneLabel:                   "",
				wellknown.MachineOSConfigLabel:   t.MachineOSConfig,
			},
		},
		Data: map[string]string{
			KeyImage:           t.Image,
			KeyPushSecret:      t.PushSecret,
			KeyMachineOSConfig: t.MachineOSConfig,
			KeyMachineOSBuild:  t.MachineOSBuild,
			KeyInUseBy:         formatReasons(reasons),
			KeyLastError:       lastErr,
		},
	}
}

// TargetOfTombstone reads a tombstone; one without an image or push secret is an error naming it.
func TargetOfTombstone(cm *corev1.ConfigMap) (Target, error) {
	t := Target{
		Image:           cm.Data[KeyImage],
		PushSecret:      cm.Data[KeyPushSecret],
		MachineOSConfig: cm.Data[KeyMachineOSConfig],
		MachineOSBuild:  cm.Data[KeyMachineOSBuild],
	}
	for key, v := range map[string]string{KeyImage: t.Image, KeyPushSecret: t.PushSecret} {
		if strings.TrimSpace(v) == "" {
			return Target{}, fmt.Errorf("tombstone configmap %s/%s: data.%s is empty", cm.Namespace, cm.Name, key)
		}
	}
	return t, nil
}

func formatReasons(reasons []registry.Reason) string {
	lines := make([]string, len(reasons))
	for i, r := range reasons {
		lines[i] = r.String()
	}
	return strings.Join(lines, "\n")
}
