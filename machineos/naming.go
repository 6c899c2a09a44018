package machineos

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// buildSalt makes build names this project's own (the reference's shape, not its values).
const buildSalt = "imagemode/machineosbuild/v1\x00"

// buildHashInputs is everything a build's result depends on: the pool's rendered config (its name and the
// configs it came from), the MachineOSConfig's spec (Containerfile, push target, secret names, builder) and
// the base images and release of the rendered config. Paused state and secret contents are not in it.
type buildHashInputs struct {
	PoolConfiguration mcfgv1.MachineConfigPoolStatusConfiguration `json:"poolConfiguration"`
	MachineOSConfig   mcfgv1.MachineOSConfigSpec                  `json:"machineOSConfig"`
	BaseOSImage       string                                      `json:"baseOSImage"`
	ExtensionsImage   string                                      `json:"extensionsImage"`
	ReleaseVersion    string                                      `json:"releaseVersion"`
	// BaseOSImageDigest is the digest the base image's tag resolved to; empty when osImageURL is itself
	// pinned by digest (it adds nothing then, and builds keep the names they had before it was hashed).
	BaseOSImageDigest string `json:"baseOSImageDigest,omitempty"`
}

// BuildName names the MachineOSBuild that builds mosc for pool at the rendered config the pool's
// spec.configuration names, from base image baseImage (the rendered osImageURL resolved to
// repository@sha256:…; empty when osImageURL is pinned by digest): <mosc>-<32 hex>. The same inputs always
// give the same name, so reverting a change — or a base image tag moving back — gives the previous build's
// name (and image) back, and a tag moving to a new image gives a new name.
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
	var baseDigest string
	if baseImage != "" && !IsDigested(rendered.Spec.OSImageURL) {
		named, err := reference.ParseNormalizedNamed(baseImage)
		if err != nil {
			return "", fmt.Errorf("base image %q of machineconfig %q: %w", baseImage, rendered.Name, err)
		}
		d, ok := named.(reference.Digested)
		if !ok {
			return "", fmt.Errorf("base image %q of machineconfig %q is not pinned by digest", baseImage, rendered.Name)
		}
		baseDigest = d.Digest().String()
	}
	raw, err := json.Marshal(buildHashInputs{
		PoolConfiguration: pool.Spec.Configuration,
		MachineOSConfig:   mosc.Spec,
		BaseOSImage:       rendered.Spec.OSImageURL,
		ExtensionsImage:   rendered.Spec.BaseOSExtensionsContainerImage,
		ReleaseVersion:    rendered.Annotations[wellknown.ReleaseImageVersionAnnotation],
		BaseOSImageDigest: baseDigest,
	})
	if err != nil {
		return "", fmt.Errorf("encoding build inputs of machineosconfig %q: %w", mosc.Name, err)
	}
	h := sha256.New()
	h.Write([]byte(buildSalt))
	h.Write(raw)
	return mosc.Name + "-" + hex.EncodeToString(h.Sum(nil))[:32], nil
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
