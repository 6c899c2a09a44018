package registry

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// ImageInfo is what the project needs to know about a pushed image.
type ImageInfo struct {
	// Digest is the registry manifest digest: the digest a node pulls by.
	Digest digest.Digest
	// Labels are the image config's labels.
	Labels map[string]string
	// Size is the sum of the compressed layer sizes and the config, as listed in the manifest.
	Size int64
}

// ParseReference parses a pull spec such as "quay.io/org/os:tag" or "host:5000/os@sha256:…" into a docker
// transport reference.
func ParseReference(pullspec string) (types.ImageReference, error) {
	ref, err := docker.ParseReference("//" + pullspec)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", pullspec, err)
	}
	return ref, nil
}

// Inspect reads the manifest and config of the image at pullspec.
func Inspect(ctx context.Context, sys *types.SystemContext, pullspec string) (*ImageInfo, error) {
	ref, err := ParseReference(pullspec)
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", pullspec, err)
	}
	defer src.Close()
	raw, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading manifest of %s: %w", pullspec, err)
	}
	dgst, err := manifest.Digest(raw)
	if err != nil {
		return nil, fmt.Errorf("digesting manifest of %s: %w", pullspec, err)
	}
	img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, nil))
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", pullspec, err)
	}
	info, err := img.Inspect(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading config of %s: %w", pullspec, err)
	}
	size := img.ConfigInfo().Size
	for _, l := range img.LayerInfos() {
		size += l.Size
	}
	return &ImageInfo{Digest: dgst, Labels: info.Labels, Size: size}, nil
}
