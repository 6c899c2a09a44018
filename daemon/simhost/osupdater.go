package simhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"go.podman.io/image/v5/docker/reference"

	"github.com/imagemode/imagemode/daemon"
)

// osUpdater is the host's rpm-ostree.
type osUpdater struct{ h *Host }

// statusDeployment is a deployment in the shape of `rpm-ostree status --json`.
type statusDeployment struct {
	ID                            string            `json:"id"`
	OSName                        string            `json:"osname"`
	Serial                        int               `json:"serial"`
	Checksum                      string            `json:"checksum"`
	Version                       string            `json:"version,omitempty"`
	Timestamp                     int64             `json:"timestamp"`
	Booted                        bool              `json:"booted"`
	Staged                        bool              `json:"staged"`
	Pinned                        bool              `json:"pinned"`
	Unlocked                      string            `json:"unlocked"`
	ContainerImageReference       string            `json:"container-image-reference"`
	ContainerImageReferenceDigest string            `json:"container-image-reference-digest"`
	BaseCommitMeta                map[string]string `json:"base-commit-meta"`
	RequestedPackages             []string          `json:"requested-packages"`
	RequestedBaseRemovals         []string          `json:"requested-base-removals"`
	Packages                      []string          `json:"packages"`
	BaseRemovals                  []string          `json:"base-removals"`
	RegenerateInitramfs           bool              `json:"regenerate-initramfs"`
}

// statusJSON renders the deployments as `rpm-ostree status --json` does.
func statusJSON(s *state) ([]byte, error) {
	doc := struct {
		Deployments  []statusDeployment `json:"deployments"`
		Transaction  any                `json:"transaction"`
		CachedUpdate any                `json:"cached-update"`
		UpdateDriver any                `json:"update-driver"`
	}{Deployments: []statusDeployment{}}
	for _, d := range s.deployments() {
		meta := map[string]string{"ostree.manifest-digest": d.Digest}
		if d.Version != "" {
			meta["version"] = d.Version
		}
		doc.Deployments = append(doc.Deployments, statusDeployment{
			ID: d.ID, OSName: osName, Serial: d.Serial, Checksum: d.Checksum, Version: d.Version,
			Timestamp: d.Timestamp, Booted: d == s.Booted, Staged: d == s.Staged, Unlocked: "none",
			ContainerImageReference:       imageReference(d.Image, d.Signed),
			ContainerImageReferenceDigest: d.Digest,
			BaseCommitMeta:                meta,
			RequestedPackages:             nonNil(d.Packages), RequestedBaseRemovals: nonNil(d.BaseRemovals), Packages: []string{},
			BaseRemovals: []string{},
		})
	}
	return json.MarshalIndent(doc, "", "  ")
}

// nonNil returns s, or an empty list for nil (rpm-ostree prints [] rather than null).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// imageReference is the ostree image reference rpm-ostree records for a rebase to pullSpec.
func imageReference(pullSpec string, signed bool) string {
	if signed {
		return "ostree-image-signed:docker://" + pullSpec
	}
	return "ostree-unverified-registry:" + pullSpec
}

// Status returns the deployments as `rpm-ostree status --json` reports them, parsed by daemon.ParseStatus;
// a host never provisioned has no booted deployment (daemon.ErrNoBootedDeployment).
func (o *osUpdater) Status(ctx context.Context) (*daemon.OSStatus, error) {
	s, err := o.h.read()
	if err != nil {
		return nil, err
	}
	raw, err := statusJSON(s)
	if err != nil {
		return nil, fmt.Errorf("rendering rpm-ostree status: %w", err)
	}
	return daemon.ParseStatus(raw)
}

// parseDigested parses a pull spec that must name its image by digest.
func parseDigested(pullSpec string) (reference.Canonical, error) {
	named, err := reference.ParseNormalizedNamed(pullSpec)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", pullSpec, err)
	}
	canonical, ok := named.(reference.Canonical)
	if !ok {
		return nil, fmt.Errorf("image %q: not a pull spec by digest (repo@sha256:…)", pullSpec)
	}
	return canonical, nil
}

// Rebase stages a deployment of pullSpec (repo@sha256:…): the image is pulled with the host's auth file
// authFile ("" for none) and the CAs under /etc/containers/certs.d of the root, and unpacked. It replaces a
// staged deployment; kernel arguments and package requests come from the booted deployment. Rebasing to
// the booted image with nothing staged, or to the staged image, changes nothing. A failed pull changes
// nothing either.
func (o *osUpdater) Rebase(ctx context.Context, pullSpec, authFile string) error {
	return o.rebase(ctx, pullSpec, authFile, false)
}

// RebaseSigned is Rebase of ostree-image-signed:docker://<pullSpec>: before anything is pulled or staged,
// the image is checked against the host's signature policy (/etc/containers/policy.json and
// /etc/containers/registries.d of the root) with containers/image's policy evaluation, as rpm-ostree does;
// a refused image (unsigned, signed by another key, a signature of another image) is an error saying which,
// and changes nothing. The check is made even when the image's content is already on the host.
func (o *osUpdater) RebaseSigned(ctx context.Context, pullSpec, authFile string) error {
	return o.rebase(ctx, pullSpec, authFile, true)
}

func (o *osUpdater) rebase(ctx context.Context, pullSpec, authFile string, signed bool) error {
	ref, err := parseDigested(pullSpec)
	if err != nil {
		return fmt.Errorf("rpm-ostree rebase: %w", err)
	}
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, "rpm-ostree rebase --experimental "+imageReference(pullSpec, signed))
		same := func(d *deployment) bool { return d != nil && d.Image == pullSpec && d.Signed == signed }
		if (s.Staged == nil && same(s.Booted)) || same(s.Staged) {
			return nil
		}
		if signed {
			if err := o.h.verify(ctx, ref, authFile); err != nil {
				return fmt.Errorf("rpm-ostree rebase to %s: %w", imageReference(pullSpec, true), err)
			}
		}
		name := ref.Digest().Encoded()
		meta, err := o.h.readContentMeta(name)
		if errors.Is(err, fs.ErrNotExist) {
			meta, err = o.h.pull(ctx, ref, authFile, name)
		}
		if err != nil {
			return fmt.Errorf("rpm-ostree rebase to %s: %w", pullSpec, err)
		}
		kargs := slices.Clone(o.h.opts.Kargs)
		var pkgs, removals []string
		if s.Booted != nil {
			kargs = slices.Clone(s.Booted.Kargs)
			pkgs, removals = slices.Clone(s.Booted.Packages), slices.Clone(s.Booted.BaseRemovals)
		}
		s.Staged = nil
		sum := sha256.Sum256([]byte(ref.Digest().String()))
		d := &deployment{Checksum: hex.EncodeToString(sum[:]), Image: pullSpec, Digest: ref.Digest().String(), Signed: signed,
			Version: meta.Version, Content: name, Kargs: kargs, Timestamp: time.Now().Unix(),
			Packages: pkgs, BaseRemovals: removals}
		d.Serial = s.nextSerial(d.Checksum)
		d.ID = fmt.Sprintf("%s-%s.%d", osName, d.Checksum, d.Serial)
		s.Staged = d
		return nil
	})
}

// Kargs changes the kernel arguments of the staged deployment, staging a copy of the booted one (same
// content) when none is. args are `rpm-ostree kargs` options (an optional leading "kargs", then
// --append=, --append-if-missing=, --delete=, --delete-if-present=); an unknown one is an error.
func (o *osUpdater) Kargs(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "kargs" {
		args = args[1:]
	}
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, strings.Join(append([]string{daemon.RPMOSTree, "kargs"}, args...), " "))
		base := s.Staged
		if base == nil {
			base = s.Booted
		}
		if base == nil {
			return fmt.Errorf("rpm-ostree kargs: %w", daemon.ErrNoBootedDeployment)
		}
		next, err := applyKargs(base.Kargs, args)
		if err != nil {
			return fmt.Errorf("rpm-ostree kargs: %w", err)
		}
		if slices.Equal(next, base.Kargs) {
			return nil
		}
		if s.Staged != nil {
			s.Staged.Kargs = next
			return nil
		}
		d := s.Booted.clone()
		d.Kargs, d.Timestamp = next, time.Now().Unix()
		d.Serial = s.nextSerial(d.Checksum)
		d.ID = fmt.Sprintf("%s-%s.%d", osName, d.Checksum, d.Serial)
		s.Staged = d
		return nil
	})
}

// applyKargs applies `rpm-ostree kargs` options to the kernel arguments cur, as rpm-ostree does: deletions
// first, then appends. --delete= of an argument not present is an error; --delete-if-present= of one is
// not. A deletion removes the first argument equal to its value.
func applyKargs(cur, args []string) ([]string, error) {
	out := slices.Clone(cur)
	var appends []string
	for _, a := range args {
		flag, val, ok := strings.Cut(a, "=")
		if !ok || val == "" {
			return nil, fmt.Errorf("argument %q: want --append=, --append-if-missing=, --delete= or --delete-if-present= with a value", a)
		}
		switch flag {
		case "--append", "--append-if-missing":
			appends = append(appends, a)
		case "--delete", "--delete-if-present":
			i := slices.Index(out, val)
			if i < 0 {
				if flag == "--delete" {
					return nil, fmt.Errorf("argument %q: no kernel argument %q to delete", a, val)
				}
				continue
			}
			out = slices.Delete(out, i, i+1)
		default:
			return nil, fmt.Errorf("argument %q: unknown option %s", a, flag)
		}
	}
	for _, a := range appends {
		flag, val, _ := strings.Cut(a, "=")
		if flag == "--append-if-missing" && slices.Contains(out, val) {
			continue
		}
		out = append(out, val)
	}
	return out, nil
}

// KernelArgs returns the kernel arguments of the next boot's deployment: the staged one, else the booted.
func (o *osUpdater) KernelArgs(ctx context.Context) ([]string, error) {
	s, err := o.h.read()
	if err != nil {
		return nil, err
	}
	d := s.Staged
	if d == nil {
		d = s.Booted
	}
	if d == nil {
		return nil, fmt.Errorf("rpm-ostree kargs: %w", daemon.ErrNoBootedDeployment)
	}
	return slices.Clone(d.Kargs), nil
}

// CleanupPending drops the staged deployment and its files (unless another deployment shares them).
func (o *osUpdater) CleanupPending(ctx context.Context) error {
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, "rpm-ostree cleanup -p")
		s.Staged = nil
		return nil
	})
}

// CleanupRollback drops the rollback deployment and its files (unless another deployment shares them).
func (o *osUpdater) CleanupRollback(ctx context.Context) error {
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, "rpm-ostree cleanup -r")
		s.Rollback = nil
		return nil
	})
}

// contentMeta describes an unpacked image, next to its tree.
type contentMeta struct {
	Digest  string `json:"digest"`
	Version string `json:"version,omitempty"`
}

// readContentMeta reads the metadata of content name; fs.ErrNotExist when that image is not unpacked.
func (h *Host) readContentMeta(name string) (*contentMeta, error) {
	raw, err := os.ReadFile(h.path(contentDir, name, contentMetaFile))
	if err != nil {
		return nil, err
	}
	var m contentMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parsing %s of %s: %w", contentMetaFile, name, err)
	}
	return &m, nil
}

const contentMetaFile = "image.json"
