package machineos

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/internal/refhash"
	"github.com/imagemode/imagemode/internal/wellknown"
)

// osImageURLConfig is the third object the reference hashes into a build name, with its field names (it has
// no JSON tags, so the YAML keys are the Go names): the rendered config's base and extensions images and
// release version. OSImageURL is always empty there, on purpose (the reference leaves it empty so that the
// names stay stable).
type osImageURLConfig struct {
	BaseOSContainerImage           string
	BaseOSExtensionsContainerImage string
	OSImageURL                     string
	ReleaseVersion                 string
}

// BuildName names the MachineOSBuild that builds mosc for pool at the rendered config the pool's
// spec.configuration names, from base image baseImage (the rendered osImageURL resolved to
// repository@sha256:…; empty when osImageURL is pinned by digest): <mosc>-<32 hex>.
//
// The hash is the reference's (its buildrequest/machineosbuild.go): MD5 of the shared salt and the YAML of,
// in order, the pool's spec.configuration (rendered config name and its source configs), the
// MachineOSConfig's spec (Containerfile, push target, secret names, builder) and osImageURLConfig. So a
// cluster taken over from the reference finds its builds under the names it gave them, and reverting a change
// gives the previous build's name (and image) back. Paused state and secret contents are not in it.
//
// One addition, only when osImageURL is a tag: the digest the tag resolved to is hashed after the reference's
// three objects, so a tag moving to a new image gives a new name (a rebuild on the new base) and moving back
// gives the old one. When osImageURL is pinned by digest — as it always is on OpenShift, where the release
// payload pins it — nothing is added and the name is exactly the reference's; a tag's name cannot match the
// reference's anyway without giving up the rebuild when the tag moves, which the reference does not do.
func BuildName(mosc *mcfgv1.MachineOSConfig, pool *mcfgv1.MachineConfigPool, rendered *mcfgv1.MachineConfig, baseImage string) (string, error) {
	switch {
	case mosc.Spec.MachineConfigPool.Name != pool.Name:
		return "", fmt.Errorf("machineosconfig %q is for pool %q, not %q", mosc.Name, mosc.Spec.MachineConfigPool.Name, pool.Name)
	case pool.Spec.Configuration.Name == "":
		return "", fmt.Errorf("pool %q has no rendered config yet", pool.Name)
	case rendered.Name != pool.Spec.Configuration.Name:
		return "", fmt.Errorf("rendered config %q is not pool %q's current one (%q)", rendered.Name, pool.Name, pool.Spec.Configuration.Name)
	case !strings.HasPrefix(rendered.Name, wellknown.RenderedPrefix):
		return "", fmt.Errorf("machineconfig %q is not a rendered config", rendered.Name)
	}
	objects := []any{
		pool.Spec.Configuration,
		mosc.Spec,
		osImageURLConfig{
			BaseOSContainerImage:           rendered.Spec.OSImageURL,
			BaseOSExtensionsContainerImage: rendered.Spec.BaseOSExtensionsContainerImage,
			ReleaseVersion:                 rendered.Annotations[wellknown.ReleaseImageVersionAnnotation],
		},
	}
	if baseImage != "" && !IsDigested(rendered.Spec.OSImageURL) {
		named, err := reference.ParseNormalizedNamed(baseImage)
		if err != nil {
			return "", fmt.Errorf("base image %q of machineconfig %q: %w", baseImage, rendered.Name, err)
		}
		d, ok := named.(reference.Digested)
		if !ok {
			return "", fmt.Errorf("base image %q of machineconfig %q is not pinned by digest", baseImage, rendered.Name)
		}
		objects = append(objects, d.Digest().String())
	}
	sum, err := refhash.Sum(objects...)
	if err != nil {
		return "", fmt.Errorf("naming the build of machineosconfig %q: %w", mosc.Name, err)
	}
	return mosc.Name + "-" + sum, nil
}

// BuildPushSpec is the MachineOSConfig's push spec with its tag replaced by the build's name: every build
// pushes to its own tag.
func BuildPushSpec(pushSpec, buildName string) (string, error) {
	named, err := reference.ParseNormalizedNamed(pushSpec)
	if err != nil {
		return "", fmt.Errorf("parsing renderedImagePushSpec %q: %w", pushSpec, err)
	}
	tagged, err := reference.WithTag(reference.TrimNamed(named), buildName)
	if err != nil {
		return "", fmt.Errorf("tagging %q with %q: %w", pushSpec, buildName, err)
	}
	return tagged.String(), nil
}

// DigestedPullSpec is the push spec's repository with the pushed manifest digest: repo@sha256:….
func DigestedPullSpec(pushSpec, digest string) (string, error) {
	named, err := reference.ParseNormalizedNamed(pushSpec)
	if err != nil {
		return "", fmt.Errorf("parsing pull spec %q: %w", pushSpec, err)
	}
	return reference.TrimNamed(named).String() + "@" + digest, nil
}

// IsDigested reports whether pullspec names its image by digest (repository@sha256:…).
func IsDigested(pullspec string) bool {
	named, err := reference.ParseNormalizedNamed(pullspec)
	if err != nil {
		return false
	}
	_, ok := named.(reference.Digested)
	return ok
}
