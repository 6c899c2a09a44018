package simhost

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/imagemode/imagemode/daemon"
)

// bootcUpdater is the OSTree backend as a bootc host shows it: Status renders `bootc status
// --format=json` (a BootcHost, org.containers.bootc/v1) from the sysroot and parses it with
// daemon.ParseBootcStatus, the parser of the daemon's bootc backend; a rebase is logged as `bootc switch
// --transport registry`; kernel argument and package changes are daemon.ErrUnsupportedByBootc, as
// daemon.BootcOS refuses them.
type bootcUpdater struct{ ostreeUpdater }

// Status returns the deployments as `bootc status --format=json` reports them, parsed.
func (b *bootcUpdater) Status(ctx context.Context) (*daemon.OSStatus, error) {
	raw, err := b.h.BootcStatusJSON(ctx)
	if err != nil {
		return nil, err
	}
	return daemon.ParseBootcStatus(raw)
}

// Kargs is daemon.ErrUnsupportedByBootc for any change.
func (b *bootcUpdater) Kargs(ctx context.Context, args []string) error {
	return (&daemon.BootcOS{}).Kargs(ctx, args)
}

func (b *bootcUpdater) OverrideKernel(ctx context.Context, remove, install []string) error {
	return (&daemon.BootcOS{}).OverrideKernel(ctx, remove, install)
}

func (b *bootcUpdater) ResetKernel(ctx context.Context, reset, uninstall []string) error {
	return (&daemon.BootcOS{}).ResetKernel(ctx, reset, uninstall)
}

func (b *bootcUpdater) UpdatePackages(ctx context.Context, install, uninstall []string) error {
	return (&daemon.BootcOS{}).UpdatePackages(ctx, install, uninstall)
}

// BootcStatusJSON renders the sysroot's deployments as `bootc status --format=json` does.
func (h *Host) BootcStatusJSON(ctx context.Context) ([]byte, error) {
	if h.sys == nil {
		return nil, fmt.Errorf("bootc status: %s has no OSTree sysroot", h)
	}
	var raw []byte
	err := h.locked(func(s *state) error {
		v, err := h.view(ctx, s)
		if err != nil {
			return err
		}
		doc := daemonBootcHost{APIVersion: daemon.BootcAPIVersion, Kind: daemon.BootcKind,
			Metadata: map[string]string{"name": "host"}}
		doc.Spec.BootOrder = "default"
		typ := "bootcHost"
		doc.Status.Type = &typ
		for _, e := range []struct {
			d   *ostreeDeployment
			dst **bootcEntry
		}{{v.staged, &doc.Status.Staged}, {v.booted, &doc.Status.Booted}, {v.rollback, &doc.Status.Rollback}} {
			if e.d == nil {
				continue
			}
			entry, err := h.bootcEntry(ctx, e.d)
			if err != nil {
				return err
			}
			*e.dst = entry
		}
		// The spec is the image the host tracks: the one last switched to.
		for _, e := range []*bootcEntry{doc.Status.Staged, doc.Status.Booted} {
			if e != nil && doc.Spec.Image == nil {
				img := e.Image.Image
				doc.Spec.Image = &img
			}
		}
		raw, err = json.MarshalIndent(doc, "", "  ")
		return err
	})
	return raw, err
}

// daemonBootcHost is the document BootcStatusJSON writes, with every field bootc prints.
type daemonBootcHost struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]string `json:"metadata"`
	Spec       struct {
		Image     *daemon.BootcImageReference `json:"image"`
		BootOrder string                      `json:"bootOrder"`
	} `json:"spec"`
	Status struct {
		Staged         *bootcEntry `json:"staged"`
		Booted         *bootcEntry `json:"booted"`
		Rollback       *bootcEntry `json:"rollback"`
		RollbackQueued bool        `json:"rollbackQueued"`
		Type           *string     `json:"type"`
		UsrOverlay     any         `json:"usrOverlay"`
	} `json:"status"`
}

type bootcEntry struct {
	Image struct {
		Image        daemon.BootcImageReference `json:"image"`
		Version      *string                    `json:"version"`
		Timestamp    *string                    `json:"timestamp"`
		ImageDigest  string                     `json:"imageDigest"`
		Architecture string                     `json:"architecture"`
	} `json:"image"`
	CachedUpdate      any                `json:"cachedUpdate"`
	Incompatible      bool               `json:"incompatible"`
	Pinned            bool               `json:"pinned"`
	SoftRebootCapable bool               `json:"softRebootCapable"`
	DownloadOnly      bool               `json:"downloadOnly"`
	Store             string             `json:"store"`
	Ostree            daemon.BootcOstree `json:"ostree"`
}

// bootcEntry describes a deployment as bootc does: its image (from the origin), digest and version (from
// the commit), and its ostree identity.
func (h *Host) bootcEntry(ctx context.Context, d *ostreeDeployment) (*bootcEntry, error) {
	ref, err := daemon.ParseImageReference(d.Origin.get("origin", "container-image-reference"))
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Name, err)
	}
	meta, err := h.sys.commitMetadata(ctx, d.Checksum)
	if err != nil {
		return nil, err
	}
	e := &bootcEntry{Store: "ostreeContainer", Ostree: daemon.BootcOstree{Checksum: d.Checksum, DeploySerial: d.Serial, Stateroot: d.OSName}}
	e.Image.Image = daemon.BootcImageReference{Image: ref.Image, Transport: ref.Transport}
	e.Image.ImageDigest, e.Image.Architecture = meta.Digest, runtime.GOARCH // Go's names are OCI's
	if meta.Version != "" {
		v := meta.Version
		e.Image.Version = &v
	}
	return e, nil
}
