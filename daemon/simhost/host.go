package simhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/registry"
)

// Host paths Provision writes the node's registry credentials and CAs to.
const (
	KubeletAuthFile = "/var/lib/kubelet/config.json"
	CertsDir        = "/etc/containers/certs.d"
)

var (
	_ daemon.Host      = (*Host)(nil)
	_ daemon.OSUpdater = (*osUpdater)(nil)
	_ daemon.Systemd   = (*systemd)(nil)
)

// Options configures a simulated host.
type Options struct {
	// OnReboot, when set, is called (without any lock held) after Systemd().Reboot queued a reboot: the
	// harness cancels the daemon's context there, as a real reboot kills the daemon.
	OnReboot func(reason string)
	// Kargs are the kernel arguments of the first deployment (when nothing is booted yet).
	Kargs []string
	// Backend is how the host keeps its OS: BackendDirectory (the default) or BackendOSTree.
	Backend Backend
	// Tool is the image tool the host has, on BackendOSTree: ToolRPMOSTree (the default) or ToolBootc,
	// whose `bootc status --format=json` the host renders and daemon.ParseBootcStatus reads.
	Tool Tool
}

// Tool is the image tool of a simulated OSTree host.
type Tool string

const (
	ToolRPMOSTree Tool = "rpm-ostree"
	ToolBootc     Tool = "bootc"
)

// Backend is how a simulated host keeps its OS deployments.
type Backend string

const (
	// BackendDirectory keeps deployments as unpacked trees and the project's own records (state.json):
	// the booted one's /usr is swapped into <dir>/root, /etc merged by this package.
	BackendDirectory Backend = "directory"
	// BackendOSTree keeps them in a real OSTree sysroot at <dir>/sysroot, with the ostree CLI: images are
	// committed into its repo, deployed with `ostree admin deploy` (boot loader entries with the kernel
	// arguments, /etc by ostree's three-way merge, the previous deployment kept for rollback); the host
	// root is the booted deployment.
	BackendOSTree Backend = "ostree"
)

// Host is a simulated node host rooted in a directory. Every method reads the state afresh under the
// directory's lock, so several Hosts (or processes) may use the same directory.
type Host struct {
	dir  string
	opts Options
	// sys is the OSTree sysroot on BackendOSTree, nil on BackendDirectory.
	sys *sysroot
}

// New opens the host at dir, creating it when needed. Opening a host again gives back its state: the
// booted deployment's /usr is put back in place if a Boot was interrupted, and leftovers of interrupted
// pulls are removed.
func New(dir string, opts Options) (*Host, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening host %s: %w", dir, err)
	}
	h := &Host{dir: abs, opts: opts}
	switch opts.Backend {
	case "", BackendDirectory:
	case BackendOSTree:
		h.sys = &sysroot{dir: h.path(sysrootDir), os: osName}
		if opts.Tool != "" && opts.Tool != ToolRPMOSTree && opts.Tool != ToolBootc {
			return nil, fmt.Errorf("opening host %s: unknown tool %q (want %q or %q)", dir, opts.Tool, ToolRPMOSTree, ToolBootc)
		}
	default:
		return nil, fmt.Errorf("opening host %s: unknown backend %q (want %q or %q)", dir, opts.Backend, BackendDirectory, BackendOSTree)
	}
	for _, d := range []string{abs, h.path(contentDir), h.path(tmpDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("opening host %s: %w", dir, err)
		}
	}
	unlock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := emptyDir(h.path(tmpDir)); err != nil {
		return nil, fmt.Errorf("opening host %s: clearing pulls in progress: %w", dir, err)
	}
	s, err := loadState(abs)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(h.path(stateFile)); errors.Is(err, fs.ErrNotExist) {
		for _, d := range []string{"etc", "var", "run"} {
			if err := os.MkdirAll(filepath.Join(h.path(rootDir), d), 0o755); err != nil {
				return nil, fmt.Errorf("creating host root: %w", err)
			}
		}
		if err := saveState(abs, s); err != nil {
			return nil, err
		}
	}
	if h.sys != nil {
		if err := h.sys.ensure(context.Background()); err != nil {
			return nil, fmt.Errorf("opening host %s: %w", dir, err)
		}
		switch {
		case s.OSTreeBooting:
			// A boot interrupted after it began: finished (the staged deployment finalized if it is not
			// yet, the default entry booted), with a new boot id.
			if err := h.bootOSTree(context.Background(), s); err != nil {
				return nil, fmt.Errorf("opening host %s: finishing an interrupted boot: %w", dir, err)
			}
			if s.BootID, err = newBootID(); err != nil {
				return nil, err
			}
			s.OSTreeBooting, s.RebootPending, s.RebootReason = false, false, ""
			if err := saveState(abs, s); err != nil {
				return nil, err
			}
		case s.OSTreeBooted != "":
			// A boot interrupted while moving /var finishes here.
			if err := h.placeVar(s.OSTreeBooted); err != nil {
				return nil, fmt.Errorf("opening host %s: %w", dir, err)
			}
		}
	}
	if s.Booted != nil && h.sys == nil {
		if err := h.placeUsr(s.Booted.Content); err != nil {
			return nil, fmt.Errorf("opening host %s: %w", dir, err)
		}
	}
	if err := h.removeUnusedContent(s); err != nil {
		return nil, fmt.Errorf("opening host %s: %w", dir, err)
	}
	return h, nil
}

func (h *Host) path(elem ...string) string { return filepath.Join(append([]string{h.dir}, elem...)...) }

// tree returns the directory holding the unpacked image of content name.
func (h *Host) tree(name string) string { return h.path(contentDir, name, "rootfs") }

// String names the host by its directory.
func (h *Host) String() string {
	if h.sys != nil {
		return "simulated OSTree host " + h.dir
	}
	return "simulated host " + h.dir
}

// Dir returns the host's directory.
func (h *Host) Dir() string { return h.dir }

// Root returns the host's filesystem root. On BackendOSTree it is the booted deployment's directory (its
// /var the stateroot's), before the first boot an installer's scratch root.
func (h *Host) Root() daemon.Root {
	if h.sys != nil {
		if name := h.bootedName(); name != "" {
			return daemon.Root(h.sys.deployment(name))
		}
		return daemon.Root(h.path(installDir))
	}
	return daemon.Root(h.path(rootDir))
}

// OS returns the host's rpm-ostree.
func (h *Host) OS() daemon.OSUpdater {
	if h.sys != nil {
		if h.opts.Tool == ToolBootc {
			return &bootcUpdater{ostreeUpdater{h}}
		}
		return &ostreeUpdater{h}
	}
	return &osUpdater{h}
}

// Systemd returns the host's systemctl.
func (h *Host) Systemd() daemon.Systemd { return &systemd{h} }

// BootID returns the current boot's id; it changes on every Boot.
func (h *Host) BootID() (string, error) {
	s, err := h.read()
	if err != nil {
		return "", err
	}
	return s.BootID, nil
}

// PendingReboot returns the reason of a reboot queued by Systemd().Reboot and not yet done by Boot.
func (h *Host) PendingReboot() (reason string, ok bool) {
	s, err := h.read()
	if err != nil {
		return "", false
	}
	return s.RebootReason, s.RebootPending
}

// Calls returns the host commands run so far, argv-like: "systemctl restart crio.service",
// "rpm-ostree rebase --experimental ostree-unverified-registry:<image>", "rpm-ostree kargs --append=x",
// "rpm-ostree override remove kernel … --install kernel-rt-core …", "rpm-ostree update --install usbguard",
// "reboot: <reason>".
func (h *Host) Calls() []string {
	s, err := h.read()
	if err != nil {
		return nil
	}
	return slices.Clone(s.Calls)
}

// locked runs fn on the current state under the lock, without saving.
func (h *Host) locked(fn func(s *state) error) error {
	unlock, err := lockDir(h.dir)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := loadState(h.dir)
	if err != nil {
		return err
	}
	return fn(s)
}

// read returns the current state.
func (h *Host) read() (*state, error) {
	var out *state
	err := h.locked(func(s *state) error { out = s; return nil })
	return out, err
}

// update runs fn on the current state under the lock and saves what it changed. When fn fails, only the
// calls it logged are kept: its other changes are dropped.
func (h *Host) update(fn func(s *state) error) error {
	return h.locked(func(s *state) error {
		n := len(s.Calls)
		if ferr := fn(s); ferr != nil {
			calls := s.Calls[n:]
			if len(calls) == 0 {
				return ferr
			}
			fresh, err := loadState(h.dir)
			if err != nil {
				return errors.Join(ferr, err)
			}
			fresh.Calls = append(fresh.Calls, calls...)
			return errors.Join(ferr, saveState(h.dir, fresh))
		}
		if err := saveState(h.dir, s); err != nil {
			return err
		}
		return h.removeUnusedContent(s)
	})
}

// Boot reboots the host: the staged deployment, if any, becomes the booted one (the booted one becomes the
// rollback, an older rollback is dropped), its /usr replaces the root's and its /etc is merged into the
// root's (see mergeEtc); top-level entries of the image the root lacks (bin, lib, … links) are created;
// /var is untouched. /run is emptied, the boot id renewed and a pending reboot cleared. With nothing staged
// it is a plain reboot.
func (h *Host) Boot() error { return h.locked(h.boot) }

// boot is Boot on the state s, under the lock.
func (h *Host) boot(s *state) error {
	if h.sys != nil {
		// Recorded first: a host opened again after a crash in the middle finishes the boot (New), as a
		// machine that lost power while shutting down boots its default entry when it comes back.
		s.OSTreeBooting = true
		if err := saveState(h.dir, s); err != nil {
			return err
		}
		if err := h.bootOSTree(context.Background(), s); err != nil {
			return err
		}
		s.OSTreeBooting = false
	} else if s.Staged != nil {
		next := s.Staged
		var oldEtc string
		if s.Booted != nil {
			oldEtc = filepath.Join(h.tree(s.Booted.Content), "etc")
		}
		if err := h.placeUsr(next.Content); err != nil {
			return fmt.Errorf("booting %s: %w", next.ID, err)
		}
		newTree := h.tree(next.Content)
		if err := mergeEtc(oldEtc, filepath.Join(newTree, "etc"), filepath.Join(h.path(rootDir), "etc")); err != nil {
			return fmt.Errorf("booting %s: merging /etc: %w", next.ID, err)
		}
		if err := setUpTopLevel(newTree, h.path(rootDir)); err != nil {
			return fmt.Errorf("booting %s: %w", next.ID, err)
		}
		if s.Booted != nil {
			s.Rollback = s.Booted
		}
		s.Booted, s.Staged = next, nil
	}
	if h.sys == nil {
		if err := emptyDir(filepath.Join(h.path(rootDir), "run")); err != nil {
			return fmt.Errorf("booting: clearing /run: %w", err)
		}
	}
	id, err := newBootID()
	if err != nil {
		return err
	}
	s.BootID, s.RebootPending, s.RebootReason = id, false, ""
	if err := saveState(h.dir, s); err != nil {
		return err
	}
	return h.removeUnusedContent(s)
}

// Provision installs a fresh node: it writes the pull secret authJSON to /var/lib/kubelet/config.json (0600)
// and the registry CAs (named host..port, as in a ControllerConfig) under /etc/containers/certs.d in the
// root, rebases to pullSpec and boots it. A host already booted into pullSpec with nothing staged only gets
// the credentials and CAs written again.
//
// On BackendOSTree the credentials go to an installer's scratch root for the first pull, and into the
// booted deployment once it is booted.
func (h *Host) Provision(ctx context.Context, pullSpec string, authJSON []byte, cas map[string][]byte) error {
	if err := writeCredentials(h.Root(), authJSON, cas); err != nil {
		return err
	}
	st, err := h.OS().Status(ctx)
	if err != nil && !errors.Is(err, daemon.ErrNoBootedDeployment) {
		return err
	}
	if err == nil && st.BootedImage() == pullSpec && st.Staged == nil {
		return nil
	}
	if err := h.OS().Rebase(ctx, pullSpec, KubeletAuthFile); err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	if err := h.Boot(); err != nil {
		return err
	}
	if h.sys != nil {
		if err := writeCredentials(h.Root(), authJSON, cas); err != nil {
			return err
		}
		return os.RemoveAll(h.path(installDir))
	}
	return nil
}

// writeCredentials writes the pull secret and the registry CAs under root.
func writeCredentials(root daemon.Root, authJSON []byte, cas map[string][]byte) error {
	auth := root.HostPath(KubeletAuthFile)
	if err := os.MkdirAll(filepath.Dir(auth), 0o755); err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	if err := writeFileAtomic(auth, authJSON, 0o600); err != nil {
		return fmt.Errorf("provisioning: writing %s: %w", KubeletAuthFile, err)
	}
	if err := registry.CertsDir(root.HostPath(CertsDir), cas); err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	return nil
}

// placeUsr makes the root's /usr the usr tree of content name, swapping by rename: the tree now at the
// root goes back to its content directory. A content directory whose usr is at the root lacks usr and
// holds the usrMarker file; the steps are ordered so an interruption anywhere leaves that true, and
// calling placeUsr again finishes the swap.
func (h *Host) placeUsr(name string) error {
	rootUsr := filepath.Join(h.path(rootDir), "usr")
	owner, err := h.usrOwner()
	if err != nil {
		return err
	}
	if owner == name {
		return nil
	}
	if owner != "" {
		if err := os.Rename(rootUsr, filepath.Join(h.tree(owner), "usr")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("moving /usr back to %s: %w", owner, err)
		}
		if err := os.Remove(h.path(contentDir, owner, usrMarker)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	} else if _, err := os.Lstat(rootUsr); err == nil {
		// A /usr no deployment owns (a fresh root prepared by hand): replaced.
		if err := os.RemoveAll(rootUsr); err != nil {
			return fmt.Errorf("removing unowned /usr: %w", err)
		}
	}
	if err := os.WriteFile(h.path(contentDir, name, usrMarker), nil, 0o644); err != nil {
		return fmt.Errorf("marking %s booted: %w", name, err)
	}
	if err := os.Rename(filepath.Join(h.tree(name), "usr"), rootUsr); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("moving /usr of %s into the root: %w", name, err)
	}
	return nil
}

// usrMarker, in a content directory, says its usr tree is (or is being moved) at the root.
const usrMarker = "usr-at-root"

// usrOwner returns the content directory whose usr is at the root, or "".
func (h *Host) usrOwner() (string, error) {
	entries, err := os.ReadDir(h.path(contentDir))
	if err != nil {
		return "", fmt.Errorf("listing deployments' content: %w", err)
	}
	for _, e := range entries {
		if _, err := os.Lstat(h.path(contentDir, e.Name(), usrMarker)); err != nil {
			continue
		}
		if _, err := os.Lstat(filepath.Join(h.tree(e.Name()), "usr")); errors.Is(err, fs.ErrNotExist) {
			return e.Name(), nil
		}
	}
	return "", nil
}

// removeUnusedContent deletes content trees no deployment uses (and unfinished unpacks).
func (h *Host) removeUnusedContent(s *state) error {
	entries, err := os.ReadDir(h.path(contentDir))
	if err != nil {
		return fmt.Errorf("listing deployments' content: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && s.contentInUse(e.Name()) {
			continue
		}
		if err := os.RemoveAll(h.path(contentDir, e.Name())); err != nil {
			return fmt.Errorf("removing unused content %s: %w", e.Name(), err)
		}
	}
	return nil
}
