package daemon

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Deployment is one rpm-ostree deployment as `rpm-ostree status --json` reports it (the fields the daemon
// reads).
type Deployment struct {
	ID           string `json:"id"`
	OSName       string `json:"osname"`
	Checksum     string `json:"checksum"`
	BaseChecksum string `json:"base-checksum"`
	Version      string `json:"version"`
	Booted       bool   `json:"booted"`
	Staged       bool   `json:"staged"`
	Pinned       bool   `json:"pinned"`
	// Origin is the ostree ref or remote the deployment tracks when it is not a container image.
	Origin string `json:"origin"`
	// CustomOrigin is the legacy pivot:// origin the MCO wrote before container images.
	CustomOrigin []string `json:"custom-origin"`
	// ContainerImageReference is the ostree image reference the deployment was pulled from, e.g.
	// "ostree-unverified-registry:quay.io/x/os@sha256:…".
	ContainerImageReference string `json:"container-image-reference"`
	// ContainerImageReferenceDigest is the manifest digest of that image.
	ContainerImageReferenceDigest string   `json:"container-image-reference-digest"`
	RequestedPackages             []string `json:"requested-packages"`
	RequestedBaseRemovals         []string `json:"requested-base-removals"`
}

// Image returns the image pull spec of the deployment's container image reference (without the ostree
// signature and transport prefix), or "" when it has none or the reference does not parse.
func (d *Deployment) Image() string {
	if d == nil || d.ContainerImageReference == "" {
		return ""
	}
	ref, err := ParseImageReference(d.ContainerImageReference)
	if err != nil {
		return ""
	}
	return ref.Image
}

// ImageDigest returns the manifest digest of the deployment's image: the one rpm-ostree recorded, else the
// digest of a by-digest pull spec, else "".
func (d *Deployment) ImageDigest() string {
	if d == nil {
		return ""
	}
	if d.ContainerImageReferenceDigest != "" {
		return d.ContainerImageReferenceDigest
	}
	if _, dgst, ok := strings.Cut(d.Image(), "@"); ok {
		return dgst
	}
	return ""
}

// OSStatus is the state of a node's rpm-ostree deployments.
type OSStatus struct {
	// Deployments lists every deployment, in rpm-ostree's order (staged or newest first).
	Deployments []Deployment
	// Booted is the booted deployment (never nil after ParseStatus succeeds).
	Booted *Deployment
	// Staged is the deployment staged for the next boot, or nil.
	Staged *Deployment
}

// BootedImage returns the booted deployment's image pull spec, or "" when it does not run a container image.
func (s *OSStatus) BootedImage() string { return s.Booted.Image() }

// BootedImageDigest returns the booted image's manifest digest, or "".
func (s *OSStatus) BootedImageDigest() string { return s.Booted.ImageDigest() }

// ParseStatus parses the output of `rpm-ostree status --json`. A status without a booted deployment is
// ErrNoBootedDeployment.
func ParseStatus(data []byte) (*OSStatus, error) {
	var raw struct {
		Deployments []Deployment `json:"deployments"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parsing rpm-ostree status: %w", err)
	}
	s := &OSStatus{Deployments: raw.Deployments}
	for i := range s.Deployments {
		d := &s.Deployments[i]
		if d.Booted && s.Booted == nil {
			s.Booted = d
		}
		if d.Staged && s.Staged == nil {
			s.Staged = d
		}
	}
	if s.Booted == nil {
		return nil, fmt.Errorf("parsing rpm-ostree status: %w", ErrNoBootedDeployment)
	}
	return s, nil
}

// ImageReference is an ostree container image reference, split: how it is verified, from which transport,
// and the image.
type ImageReference struct {
	// Verification is "ostree-unverified", "ostree-image-signed" or "ostree-remote:<remote>".
	Verification string
	// Transport is the containers transport: "registry" (the default), "containers-storage", "oci",
	// "oci-archive", "dir", "docker-archive".
	Transport string
	// Image is the reference within the transport; for "registry", a pull spec such as
	// "quay.io/x/os@sha256:…".
	Image string
}

// ParseImageReference parses an ostree container image reference such as
// "ostree-unverified-registry:quay.io/x/os:latest", "ostree-unverified-image:docker://quay.io/x/os",
// "ostree-image-signed:containers-storage:quay.io/x/os" or
// "ostree-remote-registry:fedora:quay.io/fedora/fedora-coreos:stable".
func ParseImageReference(s string) (ImageReference, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return ImageReference{}, fmt.Errorf("parsing image reference %q: no image", s)
	}
	var ref ImageReference
	switch kind {
	case "ostree-unverified-registry":
		return ImageReference{Verification: "ostree-unverified", Transport: "registry", Image: rest}, nil
	case "ostree-unverified-image":
		ref.Verification = "ostree-unverified"
	case "ostree-image-signed":
		ref.Verification = "ostree-image-signed"
	case "ostree-remote-registry", "ostree-remote-image":
		remote, after, ok := strings.Cut(rest, ":")
		if !ok || remote == "" || after == "" {
			return ImageReference{}, fmt.Errorf("parsing image reference %q: no remote", s)
		}
		ref.Verification = "ostree-remote:" + remote
		if kind == "ostree-remote-registry" {
			ref.Transport, ref.Image = "registry", after
			return ref, nil
		}
		rest = after
	default:
		return ImageReference{}, fmt.Errorf("parsing image reference %q: unknown kind %q", s, kind)
	}
	transport, image, err := splitTransport(rest)
	if err != nil {
		return ImageReference{}, fmt.Errorf("parsing image reference %q: %w", s, err)
	}
	ref.Transport, ref.Image = transport, image
	return ref, nil
}

// splitTransport splits "<transport>:<image>"; docker://<image> is the registry transport.
func splitTransport(s string) (string, string, error) {
	if image, ok := strings.CutPrefix(s, "docker://"); ok {
		return "registry", image, nil
	}
	transport, image, ok := strings.Cut(s, ":")
	if !ok || image == "" {
		return "", "", fmt.Errorf("no transport in %q", s)
	}
	switch transport {
	case "registry", "containers-storage", "oci", "oci-archive", "dir", "docker-archive":
		return transport, image, nil
	}
	return "", "", fmt.Errorf("unknown transport %q", transport)
}
