package simhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.podman.io/image/v5/docker/reference"

	"github.com/imagemode/imagemode/daemon"
)

// ostreeUpdater is the OSTree backend's rpm-ostree: every operation runs the ostree CLI on the host's
// sysroot. A change for the next boot (rebase, kernel arguments, packages) deploys a new deployment with
// `ostree admin deploy --retain --not-as-default`, its origin marked staged, replacing a staged one; the
// reboot (Host.Boot) finalizes it. The commands the daemon asked for are logged as rpm-ostree's, as on
// the directory backend.
type ostreeUpdater struct{ h *Host }

// cleanupCall is the command logged for removing the staged (-p) or rollback (-r) deployment: rpm-ostree's,
// or on a bootc host the ostree command daemon.BootcOS runs.
func (h *Host) cleanupCall(flag string) string {
	if h.opts.Tool == ToolBootc {
		if flag == "-p" {
			return "ostree admin undeploy <staged>"
		}
		return "ostree admin undeploy <rollback>"
	}
	return "rpm-ostree cleanup " + flag
}

// rebaseCall is the host command a rebase to pullSpec stands for: rpm-ostree's, or bootc's on a host
// with Options.Tool ToolBootc.
func (h *Host) rebaseCall(pullSpec string, signed bool) string {
	if h.opts.Tool == ToolBootc {
		if signed {
			return "bootc switch --transport registry --enforce-container-sigpolicy " + pullSpec
		}
		return "bootc switch --transport registry " + pullSpec
	}
	return "rpm-ostree rebase --experimental " + imageReference(pullSpec, signed)
}

// view is the sysroot's deployments with the booted, staged and rollback ones picked out.
type view struct {
	all      []ostreeDeployment
	booted   *ostreeDeployment
	staged   *ostreeDeployment
	rollback *ostreeDeployment
}

// view reads the deployments; booted is the one the host last booted (its state), staged the first
// deployment whose origin is marked staged, rollback the first other one.
func (h *Host) view(ctx context.Context, s *state) (*view, error) {
	ds, err := h.sys.deployments(ctx)
	if err != nil {
		return nil, err
	}
	v := &view{all: ds}
	for i := range ds {
		d := &ds[i]
		switch {
		case d.Name == s.OSTreeBooted && v.booted == nil:
			v.booted = d
		case d.staged() && v.staged == nil:
			v.staged = d
		}
	}
	for i := range ds {
		d := &ds[i]
		if d != v.booted && !d.staged() && v.rollback == nil {
			v.rollback = d
		}
	}
	return v, nil
}

// nextBase is the deployment the next boot would use: the staged one, else the booted one.
func (v *view) nextBase() *ostreeDeployment {
	if v.staged != nil {
		return v.staged
	}
	return v.booted
}

// imageRef is the repo ref an image by digest is imported under.
func imageRef(ref reference.Canonical) string {
	return imageRefPrefix + ref.Digest().Algorithm().String() + "/" + ref.Digest().Encoded()
}

// Status renders the deployments as `rpm-ostree status --json` does (staged first, then booted, then the
// others) from the sysroot — ostree admin status, origin files, boot entries, commit metadata — and parses
// the result with daemon.ParseStatus, the parser the daemon uses on a real node.
func (o *ostreeUpdater) Status(ctx context.Context) (*daemon.OSStatus, error) {
	raw, err := o.h.StatusJSON(ctx)
	if err != nil {
		return nil, err
	}
	return daemon.ParseStatus(raw)
}

// StatusJSON returns the OSTree backend's `rpm-ostree status --json`-shaped document.
func (h *Host) StatusJSON(ctx context.Context) ([]byte, error) {
	if h.sys == nil {
		s, err := h.read()
		if err != nil {
			return nil, err
		}
		return statusJSON(s)
	}
	var raw []byte
	err := h.locked(func(s *state) error {
		v, err := h.view(ctx, s)
		if err != nil {
			return err
		}
		raw, err = h.renderStatus(ctx, v)
		return err
	})
	return raw, err
}

func (h *Host) renderStatus(ctx context.Context, v *view) ([]byte, error) {
	doc := struct {
		Deployments  []statusDeployment `json:"deployments"`
		Transaction  any                `json:"transaction"`
		CachedUpdate any                `json:"cached-update"`
		UpdateDriver any                `json:"update-driver"`
	}{Deployments: []statusDeployment{}}
	var order []*ostreeDeployment
	if v.staged != nil {
		order = append(order, v.staged)
	}
	if v.booted != nil {
		order = append(order, v.booted)
	}
	for i := range v.all {
		if d := &v.all[i]; d != v.staged && d != v.booted {
			order = append(order, d)
		}
	}
	for _, d := range order {
		meta, err := h.sys.commitMetadata(ctx, d.Checksum)
		if err != nil {
			return nil, err
		}
		base := map[string]string{}
		if meta.Digest != "" {
			base["ostree.manifest-digest"] = meta.Digest
		}
		if meta.Version != "" {
			base["version"] = meta.Version
		}
		doc.Deployments = append(doc.Deployments, statusDeployment{
			ID: d.OSName + "-" + d.Name, OSName: d.OSName, Serial: d.Serial, Checksum: d.Checksum,
			Version: meta.Version, Booted: d == v.booted, Staged: d == v.staged, Unlocked: "none",
			ContainerImageReference:       d.Origin.get("origin", "container-image-reference"),
			ContainerImageReferenceDigest: meta.Digest,
			BaseCommitMeta:                base,
			RequestedPackages:             nonNil(list(d.Origin.get("packages", "requested"))),
			RequestedBaseRemovals:         nonNil(list(d.Origin.get("overrides", "remove"))),
			Packages:                      []string{}, BaseRemovals: []string{},
		})
	}
	return json.MarshalIndent(doc, "", "  ")
}

// Rebase stages a deployment of pullSpec (repo@sha256:…). An image the repo already holds (a booted or
// rollback deployment's) is deployed again without a pull; another is pulled with the host's auth file
// authFile and CAs, unpacked and committed into the repo (its /etc moved to /usr/etc, as ostree wants).
// Kernel arguments and package requests come from the booted deployment; /etc is merged from it by
// ostree. Rebasing to the booted image with nothing staged, or to the staged image, changes nothing.
func (o *ostreeUpdater) Rebase(ctx context.Context, pullSpec, authFile string) error {
	return o.rebase(ctx, pullSpec, authFile, false)
}

// RebaseSigned is Rebase of ostree-image-signed:docker://<pullSpec>: before anything is pulled or deployed
// the image is checked against the host's signature policy (its /etc/containers/policy.json and
// registries.d) with containers/image's policy evaluation, as rpm-ostree does; a refused image is an error
// saying why, and changes nothing. The check is made even when the repo already holds the image's commit.
func (o *ostreeUpdater) RebaseSigned(ctx context.Context, pullSpec, authFile string) error {
	return o.rebase(ctx, pullSpec, authFile, true)
}

func (o *ostreeUpdater) rebase(ctx context.Context, pullSpec, authFile string, signed bool) error {
	ref, err := parseDigested(pullSpec)
	if err != nil {
		return fmt.Errorf("rpm-ostree rebase: %w", err)
	}
	imgRef := imageReference(pullSpec, signed)
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, o.h.rebaseCall(pullSpec, signed))
		v, err := o.h.view(ctx, s)
		if err != nil {
			return fmt.Errorf("rpm-ostree rebase: %w", err)
		}
		if (v.staged == nil && v.booted != nil && v.booted.Origin.get("origin", "container-image-reference") == imgRef) ||
			(v.staged != nil && v.staged.Origin.get("origin", "container-image-reference") == imgRef) {
			return nil
		}
		if signed {
			if err := o.h.verify(ctx, ref, authFile); err != nil {
				return fmt.Errorf("rpm-ostree rebase to %s: %w", imgRef, err)
			}
		}
		checksum, err := o.h.importImage(ctx, s, ref, authFile)
		if err != nil {
			return fmt.Errorf("rpm-ostree rebase to %s: %w", pullSpec, err)
		}
		origin, kargs := &keyFile{}, slices.Clone(o.h.opts.Kargs)
		if v.booted != nil {
			origin, kargs = v.booted.Origin.clone(), v.booted.userKargs()
		}
		origin.set("origin", "refspec", "")
		origin.set("origin", "container-image-reference", imgRef)
		if err := o.h.stage(ctx, v, checksum, origin, kargs); err != nil {
			return fmt.Errorf("rpm-ostree rebase to %s: %w", pullSpec, err)
		}
		return nil
	})
}

// importImage returns the commit of image ref in the repo, pulling and committing it when the repo does
// not hold it yet.
func (h *Host) importImage(ctx context.Context, s *state, ref reference.Canonical, authFile string) (string, error) {
	branch := imageRef(ref)
	if out, err := runOSTree(ctx, "rev-parse", h.sys.repoFlag(), branch); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	name := ref.Digest().Encoded()
	_ = os.RemoveAll(h.path(contentDir, name))
	defer os.RemoveAll(h.path(contentDir, name))
	meta, err := h.pull(ctx, ref, authFile, name)
	if err != nil {
		return "", err
	}
	s.Pulls++
	tree := h.tree(name)
	if err := moveEtcToUsr(tree); err != nil {
		return "", err
	}
	args := []string{"commit", h.sys.repoFlag(), "--branch=" + branch, "--tree=dir=" + tree,
		"--subject=" + ref.String(),
		"--add-metadata-string=ostree.manifest-digest=" + ref.Digest().String(),
		"--add-metadata-string=ostree.container-image-reference=" + imageReference(ref.String(), false)}
	if meta.Version != "" {
		args = append(args, "--add-metadata-string=version="+meta.Version)
	}
	out, err := runOSTree(ctx, args...)
	if err != nil {
		return "", fmt.Errorf("committing the image into the OSTree repo: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// moveEtcToUsr moves a container image tree's /etc to /usr/etc, where ostree keeps a commit's default
// configuration (the deployment's /etc is made from it by the three-way merge).
func moveEtcToUsr(tree string) error {
	etc, usrEtc := filepath.Join(tree, "etc"), filepath.Join(tree, "usr", "etc")
	if _, err := os.Lstat(usrEtc); err == nil {
		if _, err := os.Lstat(etc); err == nil {
			return errors.New("the image has both /etc and /usr/etc")
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Join(tree, "usr"), 0o755); err != nil {
		return err
	}
	if err := os.Rename(etc, usrEtc); err != nil {
		return fmt.Errorf("the image has no /etc: %w", err)
	}
	return nil
}

// stage deploys commit checksum with origin and the kernel arguments kargs as the staged deployment
// (after the default one in the boot order, origin marked staged) and then removes the deployment staged
// before, so a crash in between leaves a bootable sysroot with the older staged one still listed. v is the
// sysroot before.
func (h *Host) stage(ctx context.Context, v *view, checksum string, origin *keyFile, kargs []string) error {
	origin = origin.clone()
	origin.set(stagedGroup, stagedKey, "true")
	if err := h.deploy(ctx, checksum, origin, kargs, "--retain", "--not-as-default"); err != nil {
		return err
	}
	return h.undeploy(ctx, func(d *ostreeDeployment) bool {
		for _, old := range v.all {
			if old.Name == d.Name && old.staged() {
				return true
			}
		}
		return false
	})
}

// deploy runs `ostree admin deploy` of checksum with the origin file and exactly the kernel arguments
// kargs, plus flags.
func (h *Host) deploy(ctx context.Context, checksum string, origin *keyFile, kargs []string, flags ...string) error {
	f, err := os.CreateTemp(h.path(tmpDir), "origin-")
	if err != nil {
		return fmt.Errorf("writing the origin file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(origin.bytes()); err != nil {
		f.Close()
		return fmt.Errorf("writing the origin file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the origin file: %w", err)
	}
	args := append([]string{"admin", "deploy", h.sys.sysrootFlag(), "--os=" + h.sys.os, "--origin-file=" + f.Name(), "--karg-none"}, flags...)
	for _, k := range kargs {
		args = append(args, "--karg-append="+k)
	}
	if _, err := runOSTree(ctx, append(args, checksum)...); err != nil {
		return fmt.Errorf("deploying commit %s: %w", checksum, err)
	}
	return nil
}

// undeploy removes every deployment drop selects (`ostree admin undeploy <index>`, the highest index
// first so the others keep theirs). The booted deployment is never removed.
func (h *Host) undeploy(ctx context.Context, drop func(d *ostreeDeployment) bool) error {
	ds, err := h.sys.deployments(ctx)
	if err != nil {
		return err
	}
	booted := h.bootedName()
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].Name == booted || !drop(&ds[i]) {
			continue
		}
		if _, err := runOSTree(ctx, "admin", "undeploy", h.sys.sysrootFlag(), fmt.Sprint(ds[i].Index)); err != nil {
			return fmt.Errorf("removing deployment %s: %w", ds[i].Name, err)
		}
	}
	return nil
}

// restage stages a copy of the next boot's deployment (same commit) changed by fn, which gets its origin
// and kernel arguments.
func (o *ostreeUpdater) restage(ctx context.Context, call string, fn func(origin *keyFile, kargs []string) ([]string, error)) error {
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, call)
		v, err := o.h.view(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w", call, err)
		}
		base := v.nextBase()
		if base == nil {
			return fmt.Errorf("%s: %w", call, daemon.ErrNoBootedDeployment)
		}
		origin, kargs := base.Origin.clone(), base.userKargs()
		next, err := fn(origin, kargs)
		if err != nil {
			return fmt.Errorf("%s: %w", call, err)
		}
		if next == nil {
			return nil // nothing changes
		}
		if err := o.h.stage(ctx, v, base.Checksum, origin, next); err != nil {
			return fmt.Errorf("%s: %w", call, err)
		}
		return nil
	})
}

// Kargs changes the kernel arguments of the next boot's deployment by staging a copy of it with them.
// args are `rpm-ostree kargs` options (see applyKargs).
func (o *ostreeUpdater) Kargs(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "kargs" {
		args = args[1:]
	}
	call := strings.Join(append([]string{daemon.RPMOSTree, "kargs"}, args...), " ")
	return o.restage(ctx, call, func(_ *keyFile, kargs []string) ([]string, error) {
		next, err := applyKargs(kargs, args)
		if err != nil || slices.Equal(next, kargs) {
			return nil, err
		}
		if next == nil {
			next = []string{}
		}
		return next, nil
	})
}

// KernelArgs returns the kernel arguments of the next boot's boot loader entry, as `rpm-ostree kargs`
// prints them (ostree= included).
func (o *ostreeUpdater) KernelArgs(ctx context.Context) ([]string, error) {
	var out []string
	err := o.h.locked(func(s *state) error {
		v, err := o.h.view(ctx, s)
		if err != nil {
			return err
		}
		d := v.nextBase()
		if d == nil {
			return fmt.Errorf("rpm-ostree kargs: %w", daemon.ErrNoBootedDeployment)
		}
		out = slices.Clone(d.Kargs)
		return nil
	})
	return out, err
}

// CleanupPending removes the staged deployment(s); none is not an error.
func (o *ostreeUpdater) CleanupPending(ctx context.Context) error {
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, o.h.cleanupCall("-p"))
		return o.h.undeploy(ctx, (*ostreeDeployment).staged)
	})
}

// CleanupRollback removes the deployments neither booted nor staged.
func (o *ostreeUpdater) CleanupRollback(ctx context.Context) error {
	return o.h.update(func(s *state) error {
		s.Calls = append(s.Calls, o.h.cleanupCall("-r"))
		return o.h.undeploy(ctx, func(d *ostreeDeployment) bool { return !d.staged() })
	})
}

// OverrideKernel stages the next boot's deployment with the base packages remove removed and install
// requested (the origin's [overrides] remove and [packages] requested); the tree is not changed.
func (o *ostreeUpdater) OverrideKernel(ctx context.Context, remove, install []string) error {
	c := daemon.PackageChange{Op: daemon.PackageOverrideRemove, Base: remove, Install: install}
	return o.changePackages(ctx, c, func(pkgs, removals []string) ([]string, []string, error) {
		if len(remove) == 0 {
			return nil, nil, fmt.Errorf("no packages to remove")
		}
		removals, err := addAll(removals, remove, "already removed")
		if err != nil {
			return nil, nil, err
		}
		pkgs, err = addAll(pkgs, install, "already requested")
		return pkgs, removals, err
	})
}

// ResetKernel stages the next boot's deployment with the removed base packages reset restored and the
// packages uninstall no longer requested.
func (o *ostreeUpdater) ResetKernel(ctx context.Context, reset, uninstall []string) error {
	c := daemon.PackageChange{Op: daemon.PackageOverrideReset, Base: reset, Uninstall: uninstall}
	return o.changePackages(ctx, c, func(pkgs, removals []string) ([]string, []string, error) {
		if len(reset) == 0 {
			return nil, nil, fmt.Errorf("no packages to reset")
		}
		removals, err := removeAll(removals, reset, "no override for")
		if err != nil {
			return nil, nil, err
		}
		pkgs, err = removeAll(pkgs, uninstall, "not requested:")
		return pkgs, removals, err
	})
}

// UpdatePackages stages the next boot's deployment with install requested and uninstall no longer.
func (o *ostreeUpdater) UpdatePackages(ctx context.Context, install, uninstall []string) error {
	if len(install) == 0 && len(uninstall) == 0 {
		return nil
	}
	c := daemon.PackageChange{Op: daemon.PackageUpdate, Install: install, Uninstall: uninstall}
	return o.changePackages(ctx, c, func(pkgs, removals []string) ([]string, []string, error) {
		pkgs, err := removeAll(pkgs, uninstall, "not requested:")
		if err != nil {
			return nil, nil, err
		}
		pkgs, err = addAll(pkgs, install, "already requested")
		return pkgs, removals, err
	})
}

func (o *ostreeUpdater) changePackages(ctx context.Context, c daemon.PackageChange, fn func(pkgs, removals []string) ([]string, []string, error)) error {
	return o.restage(ctx, c.String(), func(origin *keyFile, kargs []string) ([]string, error) {
		pkgs, removals, err := fn(list(origin.get("packages", "requested")), list(origin.get("overrides", "remove")))
		if err != nil {
			return nil, err
		}
		origin.set("packages", "requested", joinList(pkgs))
		origin.set("overrides", "remove", joinList(removals))
		if kargs == nil {
			kargs = []string{}
		}
		return kargs, nil
	})
}
