package simhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Booting the OSTree backend: what the boot loader, ostree-prepare-root and ostree-finalize-staged do on a
// real node, on the sysroot's files.

// bootOSTree reboots the host. A staged deployment is finalized first, as ostree-finalize-staged does at
// shutdown: its commit is deployed again as the default, with its kernel arguments and origin (the staged
// mark dropped) and /etc merged by ostree from the booted deployment's /etc as it is now; ostree keeps the
// booted deployment as the rollback and drops older ones. Then the default boot loader entry is booted:
// its ostree= argument is resolved to a deployment, as ostree-prepare-root does, the stateroot's /var is
// moved into it (a real node bind-mounts it), its /run emptied, and the state records it with a new boot
// id. A crash anywhere leaves a sysroot that boots the old deployment or the new one.
func (h *Host) bootOSTree(ctx context.Context, s *state) error {
	v, err := h.view(ctx, s)
	if err != nil {
		return fmt.Errorf("booting: %w", err)
	}
	// Finalized already when the default entry is neither the booted deployment nor a staged one: a boot
	// interrupted after the finalizing deploy only has the staged leftover to remove. (ostree's own
	// cleanup drops the staged deployment in the finalizing deploy unless it is the merge deployment, as
	// on the first boot.)
	if v.staged != nil && (v.all[0].Name == s.OSTreeBooted || v.all[0].staged()) {
		origin := v.staged.Origin.clone()
		origin.set(stagedGroup, stagedKey, "")
		if err := h.deploy(ctx, v.staged.Checksum, origin, v.staged.userKargs()); err != nil {
			return fmt.Errorf("booting: finalizing the staged deployment %s: %w", v.staged.Name, err)
		}
		if err := crashPoint("finalized"); err != nil {
			return err
		}
	}
	if v.staged != nil {
		if err := h.undeploy(ctx, (*ostreeDeployment).staged); err != nil {
			return fmt.Errorf("booting: %w", err)
		}
	}
	entries, err := h.sys.bootEntries()
	if err != nil {
		return fmt.Errorf("booting: %w", err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("booting: no boot loader entry under %s", filepath.Join(h.sys.dir, "boot", "loader", "entries"))
	}
	name, err := h.sys.entryDeployment(entries[0])
	if err != nil {
		return fmt.Errorf("booting: %w", err)
	}
	if err := h.placeVar(name); err != nil {
		return fmt.Errorf("booting %s: %w", name, err)
	}
	run := filepath.Join(h.sys.deployment(name), "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		return fmt.Errorf("booting %s: %w", name, err)
	}
	if err := emptyDir(run); err != nil {
		return fmt.Errorf("booting %s: clearing /run: %w", name, err)
	}
	s.OSTreeBooted = name
	return h.pruneImageRefs(ctx)
}

// crashPoint lets a test stop a boot at a named step, as a crash would (nil outside tests).
var crashPoint = func(step string) error { return nil }

// placeVar moves the stateroot's /var (the directory holding liveVarMarker: in a deployment, or in the
// stateroot when nothing is booted) into deployment name. What the deployment's commit has under /var is
// copied into it where missing, as systemd-tmpfiles would create it. An empty /var stays in the stateroot,
// which ostree expects. Every step is a rename or a copy of what is missing, so calling it again after an
// interruption finishes the move.
func (h *Host) placeVar(name string) error {
	target := filepath.Join(h.sys.deployment(name), "var")
	live, err := h.liveVar()
	if err != nil {
		return err
	}
	if live != target {
		if _, err := os.Lstat(target); err == nil {
			if err := copyMissing(target, live); err != nil {
				return fmt.Errorf("creating /var content of the image: %w", err)
			}
			if err := os.RemoveAll(target); err != nil {
				return fmt.Errorf("removing the image's /var: %w", err)
			}
		}
		if err := os.Rename(live, target); err != nil {
			return fmt.Errorf("moving the stateroot's /var into the deployment: %w", err)
		}
	}
	if err := os.MkdirAll(h.sys.varDir(), 0o755); err != nil {
		return fmt.Errorf("recreating the stateroot's /var: %w", err)
	}
	return nil
}

// liveVar returns where the stateroot's /var is.
func (h *Host) liveVar() (string, error) {
	candidates := []string{h.sys.varDir()}
	entries, err := os.ReadDir(h.sys.deployRoot())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("listing deployments: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			candidates = append(candidates, filepath.Join(h.sys.deployment(e.Name()), "var"))
		}
	}
	for _, c := range candidates {
		if _, err := os.Lstat(filepath.Join(c, liveVarMarker)); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("the stateroot's /var (holding %s) is nowhere under %s", liveVarMarker, h.sys.stateroot())
}

// copyMissing copies the directories, files and symlinks of src that dst lacks into dst.
func copyMissing(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		out := filepath.Join(dst, rel)
		if _, err := os.Lstat(out); err == nil {
			return nil
		}
		if d.IsDir() {
			return mkdirLike(p, out)
		}
		return installEntry(p, out)
	})
}

// pruneImageRefs deletes the repo refs of imported images no deployment uses any more, and prunes the
// objects only they held (`ostree prune --refs-only`).
func (h *Host) pruneImageRefs(ctx context.Context) error {
	ds, err := h.sys.deployments(ctx)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, d := range ds {
		used[d.Checksum] = true
	}
	out, err := runOSTree(ctx, "refs", h.sys.repoFlag(), "--list")
	if err != nil {
		return fmt.Errorf("listing repo refs: %w", err)
	}
	pruned := false
	for _, ref := range strings.Fields(string(out)) {
		if !strings.HasPrefix(ref, imageRefPrefix) {
			continue
		}
		rev, err := runOSTree(ctx, "rev-parse", h.sys.repoFlag(), ref)
		if err != nil {
			return fmt.Errorf("reading repo ref %s: %w", ref, err)
		}
		if used[strings.TrimSpace(string(rev))] {
			continue
		}
		if _, err := runOSTree(ctx, "refs", h.sys.repoFlag(), "--delete", ref); err != nil {
			return fmt.Errorf("deleting repo ref %s: %w", ref, err)
		}
		pruned = true
	}
	if pruned {
		if _, err := runOSTree(ctx, "prune", h.sys.repoFlag(), "--refs-only"); err != nil {
			return fmt.Errorf("pruning the repo: %w", err)
		}
	}
	return nil
}

// bootedName returns the deployment the host booted ("" before its first boot).
func (h *Host) bootedName() string {
	s, err := loadState(h.dir)
	if err != nil {
		return ""
	}
	return s.OSTreeBooted
}

// Pulls returns how many images the host pulled from a registry.
func (h *Host) Pulls() int {
	s, err := h.read()
	if err != nil {
		return -1
	}
	return s.Pulls
}

// Sysroot returns the OSTree sysroot of a host on the OSTree backend ("" on the directory backend).
func (h *Host) Sysroot() string {
	if h.sys == nil {
		return ""
	}
	return h.sys.dir
}
