package registry

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Inventory is everything that may still reference an image: it is read from the cluster by the caller
// and judged by InUse without I/O.
type Inventory struct {
	// Nodes are all nodes, of every pool: their currentImage and desiredImage annotations count.
	Nodes []*corev1.Node
	// MachineOSConfigs count through status.currentImagePullSpec.
	MachineOSConfigs []*mcfgv1.MachineOSConfig
	// MachineOSBuilds count through status.digestedImagePushSpec, except the one named ExcludeBuild.
	MachineOSBuilds []*mcfgv1.MachineOSBuild
	// MachineConfigs count through spec.osImageURL (rendered and user configs alike).
	MachineConfigs []*mcfgv1.MachineConfig
	// ExcludeBuild names the MachineOSBuild whose image is being deleted: its own status does not count.
	ExcludeBuild string
	// ImageBuild names the MachineOSBuild the image was built for. A build of that name that has not
	// finished is building the same inputs again (build names are a hash of their inputs: a rebuild keeps
	// the name) and may be pushing this very image — the layer cache makes the rebuilt image identical —
	// before it records the digest: it uses the image until it finishes.
	ImageBuild string
}

// Reason names one object that uses an image, and how.
type Reason struct {
	// Kind is the object's kind: Node, MachineOSConfig, MachineOSBuild or MachineConfig.
	Kind string
	// Name is the object's name.
	Name string
	// Field is where the object names the image: an annotation key or a field path.
	Field string
}

// String renders the reason as "Kind/name field".
func (r Reason) String() string { return fmt.Sprintf("%s/%s %s", r.Kind, r.Name, r.Field) }

// InUse returns the objects of inv that reference image, in inventory order; empty means the image may be
// deleted. References are compared by normalized repository plus digest; a reference without a digest
// (a tag, as a MachineConfig's osImageURL may be) matches only when image names the same repository and
// tag. image should be digested (repository@sha256:… or repository:tag@sha256:…); an image that cannot be
// parsed is reported as used by every object naming the same text, so that nothing is deleted by mistake.
func InUse(image string, inv Inventory) []Reason {
	target, targetErr := reference.ParseNormalizedNamed(image)
	matches := func(candidate string) bool {
		if candidate == "" {
			return false
		}
		if targetErr != nil {
			return strings.TrimSpace(candidate) == strings.TrimSpace(image)
		}
		return sameImage(target, candidate)
	}
	var out []Reason
	for _, n := range inv.Nodes {
		for _, key := range []string{wellknown.CurrentImageAnnotation, wellknown.DesiredImageAnnotation} {
			if matches(n.Annotations[key]) {
				out = append(out, Reason{Kind: "Node", Name: n.Name, Field: "metadata.annotations[" + key + "]"})
			}
		}
	}
	for _, c := range inv.MachineOSConfigs {
		if matches(string(c.Status.CurrentImagePullSpec)) {
			out = append(out, Reason{Kind: "MachineOSConfig", Name: c.Name, Field: "status.currentImagePullSpec"})
		}
	}
	for _, b := range inv.MachineOSBuilds {
		if inv.ImageBuild != "" && b.Name == inv.ImageBuild && b.DeletionTimestamp.IsZero() && !osbuild.StateOf(b).IsTerminal() &&
			b.Status.DigestedImagePushSpec == "" {
			out = append(out, Reason{Kind: "MachineOSBuild", Name: b.Name, Field: "spec.renderedImagePushSpec (building it again)"})
			continue
		}
		if b.Name == inv.ExcludeBuild {
			continue
		}
		if matches(string(b.Status.DigestedImagePushSpec)) {
			out = append(out, Reason{Kind: "MachineOSBuild", Name: b.Name, Field: "status.digestedImagePushSpec"})
		}
	}
	for _, mc := range inv.MachineConfigs {
		if matches(mc.Spec.OSImageURL) {
			out = append(out, Reason{Kind: "MachineConfig", Name: mc.Name, Field: "spec.osImageURL"})
		}
	}
	return out
}

// sameImage compares a parsed target with a candidate pull spec: same repository and, when the candidate
// has a digest, the same digest; when it has only a tag, the target must carry the same tag. An
// unparsable candidate matches only when it is textually the target.
func sameImage(target reference.Named, candidate string) bool {
	c, err := reference.ParseNormalizedNamed(strings.TrimSpace(candidate))
	if err != nil {
		return strings.TrimSpace(candidate) == target.String()
	}
	if repoKey(c) != repoKey(target) {
		return false
	}
	if cd, ok := c.(reference.Digested); ok {
		td, ok := target.(reference.Digested)
		return ok && td.Digest() == cd.Digest()
	}
	ct, ok := c.(reference.Tagged)
	if !ok {
		// A bare repository means its latest tag.
		ct, _ = reference.WithTag(c, "latest")
	}
	tt, ok := target.(reference.Tagged)
	return ok && tt.Tag() == ct.Tag()
}

// repoKey is the repository a reference names, with the registry host in lower case (host names are case
// insensitive; paths are lower case by grammar).
func repoKey(n reference.Named) string {
	return strings.ToLower(reference.Domain(n)) + "/" + reference.Path(n)
}
