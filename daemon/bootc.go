package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The bootc backend: an OSUpdater for hosts that have bootc (bootc-dev/bootc) rather than rpm-ostree.
// bootc manages the same ostree deployments; the daemon switches images with `bootc switch --transport
// registry <pull spec>` and reads `bootc status --format=json` (a BootcHost object,
// org.containers.bootc/v1), turned into the OSStatus rpm-ostree's status gives.

// Bootc is the bootc binary the daemon runs.
const Bootc = "bootc"

// BootcAPIVersion and BootcKind identify `bootc status --format=json` output this parser reads.
const (
	BootcAPIVersion = "org.containers.bootc/v1"
	BootcKind       = "BootcHost"
)

// ErrUnsupportedByBootc is an OS change a bootc host does not make at run time.
var ErrUnsupportedByBootc = errors.New("not supported on a bootc host")

// BootcHost is `bootc status --format=json` (the fields the daemon reads).
type BootcHost struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Spec       BootcHostSpec   `json:"spec"`
	Status     BootcHostStatus `json:"status"`
}

// BootcHostSpec is the host's desired state: the image it tracks and the boot order.
type BootcHostSpec struct {
	Image *BootcImageReference `json:"image"`
	// BootOrder is "default", or "rollback" once `bootc rollback` queued the rollback deployment.
	BootOrder string `json:"bootOrder"`
}

// BootcImageReference is an image and the containers transport it comes from.
type BootcImageReference struct {
	Image     string `json:"image"`
	Transport string `json:"transport"`
	// Signature is how the image is verified (absent: unverified).
	Signature json.RawMessage `json:"signature,omitempty"`
}

// BootcHostStatus is the host's deployments.
type BootcHostStatus struct {
	Staged   *BootcBootEntry `json:"staged"`
	Booted   *BootcBootEntry `json:"booted"`
	Rollback *BootcBootEntry `json:"rollback"`
	// RollbackQueued says the next boot is the rollback deployment.
	RollbackQueued bool `json:"rollbackQueued"`
	// Type is "bootcHost" on a host booted by bootc, null elsewhere.
	Type *string `json:"type"`
}

// BootcBootEntry is one deployment.
type BootcBootEntry struct {
	Image        *BootcImageStatus `json:"image"`
	CachedUpdate *BootcImageStatus `json:"cachedUpdate"`
	Incompatible bool              `json:"incompatible"`
	Pinned       bool              `json:"pinned"`
	Ostree       *BootcOstree      `json:"ostree"`
}

// BootcImageStatus is a deployment's image.
type BootcImageStatus struct {
	Image       BootcImageReference `json:"image"`
	Version     *string             `json:"version"`
	Timestamp   *string             `json:"timestamp"`
	ImageDigest string              `json:"imageDigest"`
}

// BootcOstree is a deployment's ostree identity.
type BootcOstree struct {
	Checksum     string `json:"checksum"`
	DeploySerial int    `json:"deploySerial"`
	Stateroot    string `json:"stateroot"`
}

// ParseBootcStatus parses `bootc status --format=json` into the deployments rpm-ostree would list: staged,
// booted, rollback. Another apiVersion or kind is an error, and so is a host without a booted deployment
// (ErrNoBootedDeployment: a host not booted by bootc) or a deployment without an image (not a container
// image deployment, which bootc cannot switch).
func ParseBootcStatus(data []byte) (*OSStatus, error) {
	var h BootcHost
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("parsing bootc status: %w", err)
	}
	if h.APIVersion != BootcAPIVersion || h.Kind != BootcKind {
		return nil, fmt.Errorf("parsing bootc status: apiVersion %q kind %q, want %s %s", h.APIVersion, h.Kind, BootcAPIVersion, BootcKind)
	}
	s := &OSStatus{}
	for _, e := range []struct {
		entry  *BootcBootEntry
		what   string
		booted bool
		staged bool
	}{
		{h.Status.Staged, "staged", false, true},
		{h.Status.Booted, "booted", true, false},
		{h.Status.Rollback, "rollback", false, false},
	} {
		if e.entry == nil {
			continue
		}
		d, err := bootcDeployment(e.entry)
		if err != nil {
			return nil, fmt.Errorf("parsing bootc status: status.%s: %w", e.what, err)
		}
		d.Booted, d.Staged = e.booted, e.staged
		s.Deployments = append(s.Deployments, d)
	}
	for i := range s.Deployments {
		d := &s.Deployments[i]
		if d.Booted {
			s.Booted = d
		}
		if d.Staged {
			s.Staged = d
		}
	}
	if s.Booted == nil {
		return nil, fmt.Errorf("parsing bootc status: %w", ErrNoBootedDeployment)
	}
	return s, nil
}

// bootcDeployment maps a bootc boot entry onto rpm-ostree's deployment fields.
func bootcDeployment(e *BootcBootEntry) (Deployment, error) {
	if e.Image == nil {
		return Deployment{}, errors.New("no image: not a container image deployment")
	}
	ref, err := bootcImageReference(e.Image.Image)
	if err != nil {
		return Deployment{}, err
	}
	d := Deployment{ContainerImageReference: ref, ContainerImageReferenceDigest: e.Image.ImageDigest, Pinned: e.Pinned}
	if e.Image.Version != nil {
		d.Version = *e.Image.Version
	}
	if e.Ostree != nil {
		d.OSName, d.Checksum = e.Ostree.Stateroot, e.Ostree.Checksum
		d.ID = fmt.Sprintf("%s-%s.%d", e.Ostree.Stateroot, e.Ostree.Checksum, e.Ostree.DeploySerial)
	}
	return d, nil
}

// bootcImageReference writes a bootc image reference as the ostree image reference rpm-ostree reports
// ("ostree-unverified-registry:quay.io/x/os@sha256:…"), so Deployment.Image gives the pull spec.
func bootcImageReference(r BootcImageReference) (string, error) {
	if r.Image == "" {
		return "", errors.New("image reference without an image")
	}
	verification := "ostree-unverified"
	if len(r.Signature) > 0 && string(r.Signature) != "null" {
		verification = "ostree-image-signed"
	}
	switch r.Transport {
	case "", "registry":
		if verification == "ostree-unverified" {
			return "ostree-unverified-registry:" + r.Image, nil
		}
		return verification + ":registry:" + r.Image, nil
	case "containers-storage", "oci", "oci-archive", "dir", "docker-archive":
		return verification + "-image:" + r.Transport + ":" + r.Image, nil
	}
	return "", fmt.Errorf("image %q: unknown transport %q", r.Image, r.Transport)
}

// BootcOS is an OSUpdater running bootc. Changes bootc does not make at run time — kernel arguments
// (bootc takes them from the image's /usr/lib/bootc/kargs.d) and package layering — are
// ErrUnsupportedByBootc; removing a staged or rollback deployment uses ostree, which bootc hosts have.
type BootcOS struct {
	Runner CommandRunner
	// Root is the host's root, where the OSTreeAuthPath link is made ("" is "/").
	Root Root
	// Cmdline is the file with the current boot's kernel command line; "" is /proc/cmdline (the same
	// in every container).
	Cmdline string
}

var _ OSUpdater = (*BootcOS)(nil)

func (b *BootcOS) run(ctx context.Context, args ...string) ([]byte, error) {
	return b.Runner.Run(ctx, Bootc, args...)
}

// Status runs `bootc status --format=json` and parses it.
func (b *BootcOS) Status(ctx context.Context) (*OSStatus, error) {
	out, err := b.run(ctx, "status", "--format=json")
	if err != nil {
		return nil, fmt.Errorf("getting bootc status: %w", err)
	}
	return ParseBootcStatus(out)
}

// host runs `bootc status --format=json` and returns both the document and its deployments.
func (b *BootcOS) host(ctx context.Context) (*BootcHost, *OSStatus, error) {
	out, err := b.run(ctx, "status", "--format=json")
	if err != nil {
		return nil, nil, fmt.Errorf("getting bootc status: %w", err)
	}
	st, err := ParseBootcStatus(out)
	if err != nil {
		return nil, nil, err
	}
	var h BootcHost
	if err := json.Unmarshal(out, &h); err != nil {
		return nil, nil, fmt.Errorf("parsing bootc status: %w", err)
	}
	return &h, st, nil
}

// Rebase runs `bootc switch --transport registry <pullSpec>` (staged for the next boot; the daemon
// reboots), pulling with authFile linked at OSTreeAuthPath when given.
func (b *BootcOS) Rebase(ctx context.Context, pullSpec, authFile string) error {
	if authFile != "" {
		if err := linkAuthFile(b.Root, authFile); err != nil {
			return fmt.Errorf("switching to %s: %w", pullSpec, err)
		}
	}
	if _, err := b.run(ctx, "switch", "--transport", "registry", pullSpec); err != nil {
		return fmt.Errorf("switching to %s: %w", pullSpec, err)
	}
	return nil
}

// RebaseSigned runs `bootc switch --transport registry --enforce-container-sigpolicy <pullSpec>`: bootc
// pulls through containers/image and refuses the image unless the host's /etc/containers/policy.json
// accepts its signatures (the daemon writes that policy for a signed pool before it calls this).
func (b *BootcOS) RebaseSigned(ctx context.Context, pullSpec, authFile string) error {
	if authFile != "" {
		if err := linkAuthFile(b.Root, authFile); err != nil {
			return fmt.Errorf("switching to %s: %w", pullSpec, err)
		}
	}
	if _, err := b.run(ctx, "switch", "--transport", "registry", "--enforce-container-sigpolicy", pullSpec); err != nil {
		return fmt.Errorf("switching to %s: %w", pullSpec, err)
	}
	return nil
}

// Upgrade runs `bootc upgrade`: the tracked image's newer version is staged.
func (b *BootcOS) Upgrade(ctx context.Context) error {
	if _, err := b.run(ctx, "upgrade"); err != nil {
		return fmt.Errorf("upgrading: %w", err)
	}
	return nil
}

// Rollback runs `bootc rollback`: the next boot is the rollback deployment.
func (b *BootcOS) Rollback(ctx context.Context) error {
	if _, err := b.run(ctx, "rollback"); err != nil {
		return fmt.Errorf("rolling back: %w", err)
	}
	return nil
}

// Kargs is ErrUnsupportedByBootc unless args is empty: bootc applies the kernel arguments of the image's
// /usr/lib/bootc/kargs.d at switch and upgrade, so a layered image carries them.
func (b *BootcOS) Kargs(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "kargs" {
		args = args[1:]
	}
	if len(args) == 0 {
		return nil
	}
	return fmt.Errorf("changing kernel arguments %q: %w (bootc takes them from the image's /usr/lib/bootc/kargs.d)", args, ErrUnsupportedByBootc)
}

// KernelArgs returns the arguments of the current boot (/proc/cmdline): bootc has no pending kernel
// arguments of its own to report.
func (b *BootcOS) KernelArgs(ctx context.Context) ([]string, error) {
	cmdline := b.Cmdline
	if cmdline == "" {
		cmdline = "/proc/cmdline"
	}
	raw, err := os.ReadFile(cmdline)
	if err != nil {
		return nil, fmt.Errorf("getting kernel arguments: %w", err)
	}
	return SplitKernelArgs(strings.TrimSpace(string(raw)))
}

// OverrideKernel is ErrUnsupportedByBootc: a bootc host's kernel comes with its image.
func (b *BootcOS) OverrideKernel(ctx context.Context, remove, install []string) error {
	return fmt.Errorf("overriding the kernel (%v → %v): %w", remove, install, ErrUnsupportedByBootc)
}

// ResetKernel is ErrUnsupportedByBootc.
func (b *BootcOS) ResetKernel(ctx context.Context, reset, uninstall []string) error {
	return fmt.Errorf("resetting the kernel (%v, %v): %w", reset, uninstall, ErrUnsupportedByBootc)
}

// UpdatePackages is ErrUnsupportedByBootc unless there is nothing to change: bootc does not layer
// packages on the host.
func (b *BootcOS) UpdatePackages(ctx context.Context, install, uninstall []string) error {
	if len(install) == 0 && len(uninstall) == 0 {
		return nil
	}
	return fmt.Errorf("layering packages (install %v, uninstall %v): %w", install, uninstall, ErrUnsupportedByBootc)
}

// CleanupPending removes the staged deployment, if any: `ostree admin undeploy 0` (ostree lists a staged
// deployment first).
func (b *BootcOS) CleanupPending(ctx context.Context) error {
	st, err := b.Status(ctx)
	if err != nil {
		return fmt.Errorf("removing the pending deployment: %w", err)
	}
	if st.Staged == nil {
		return nil
	}
	if _, err := b.Runner.Run(ctx, "ostree", "admin", "undeploy", "0"); err != nil {
		return fmt.Errorf("removing the pending deployment %s: %w", st.Staged.ID, err)
	}
	return nil
}

// CleanupRollback removes the rollback deployment, if any, with `ostree admin undeploy <index>`, its
// index in ostree's boot order: after a staged one, and after the booted one unless a rollback is queued
// (then it is the default).
func (b *BootcOS) CleanupRollback(ctx context.Context) error {
	h, _, err := b.host(ctx)
	if err != nil {
		return fmt.Errorf("removing the rollback deployment: %w", err)
	}
	if h.Status.Rollback == nil {
		return nil
	}
	index := bootcRollbackIndex(h)
	if _, err := b.Runner.Run(ctx, "ostree", "admin", "undeploy", fmt.Sprint(index)); err != nil {
		return fmt.Errorf("removing the rollback deployment (index %d): %w", index, err)
	}
	return nil
}

// bootcRollbackIndex is the rollback deployment's index in `ostree admin status`.
func bootcRollbackIndex(h *BootcHost) int {
	index := 0
	if h.Status.Staged != nil {
		index++
	}
	if !h.Status.RollbackQueued && h.Spec.BootOrder != "rollback" {
		index++ // after the booted one
	}
	return index
}

// DetectOSUpdater returns the OSUpdater for the host's image tool: rpm-ostree when `rpm-ostree --version`
// runs (RHCOS has both; the reference uses rpm-ostree), else bootc when `bootc --version` does.
func DetectOSUpdater(ctx context.Context, runner CommandRunner, root Root) (OSUpdater, error) {
	_, rerr := runner.Run(ctx, RPMOSTree, "--version")
	if rerr == nil {
		return &RpmOstree{Runner: runner, Root: root}, nil
	}
	_, berr := runner.Run(ctx, Bootc, "--version")
	if berr == nil {
		return &BootcOS{Runner: runner, Root: root}, nil
	}
	return nil, fmt.Errorf("the host has neither rpm-ostree nor bootc: %w", errors.Join(rerr, berr))
}
