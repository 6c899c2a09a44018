package simhost

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// deployment is one simulated ostree deployment.
type deployment struct {
	// ID is rpm-ostree's deployment id, "<osname>-<checksum>.<serial>".
	ID       string `json:"id"`
	Checksum string `json:"checksum"`
	Serial   int    `json:"serial"`
	// Image is the pull spec it was rebased to (repo@sha256:…); Digest its manifest digest.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Signed: the image was pulled as ostree-image-signed, verified by the host's signature policy.
	Signed bool `json:"signed,omitempty"`
	// Version is the image's org.opencontainers.image.version label.
	Version string `json:"version,omitempty"`
	// Content names the unpacked tree under <dir>/content; deployments of one image share it.
	Content   string   `json:"content"`
	Kargs     []string `json:"kargs"`
	Timestamp int64    `json:"timestamp"`
	// Packages are the layered packages requested, sorted; BaseRemovals the base packages removed.
	Packages     []string `json:"packages,omitempty"`
	BaseRemovals []string `json:"baseRemovals,omitempty"`
}

func (d *deployment) clone() *deployment {
	if d == nil {
		return nil
	}
	c := *d
	c.Kargs = slices.Clone(d.Kargs)
	c.Packages, c.BaseRemovals = slices.Clone(d.Packages), slices.Clone(d.BaseRemovals)
	return &c
}

// state is everything a host remembers besides its files.
type state struct {
	Booted   *deployment `json:"booted,omitempty"`
	Staged   *deployment `json:"staged,omitempty"`
	Rollback *deployment `json:"rollback,omitempty"`
	BootID   string      `json:"bootID"`
	// RebootPending is set by Systemd.Reboot and cleared by Boot.
	RebootPending bool   `json:"rebootPending,omitempty"`
	RebootReason  string `json:"rebootReason,omitempty"`
	// Calls is the log of host commands run, argv-like.
	Calls []string `json:"calls,omitempty"`
	// OSTreeBooted is, on BackendOSTree, the deployment directory ("<checksum>.<serial>") the last boot
	// booted: the one the default boot loader entry's ostree= argument led to.
	OSTreeBooted string `json:"ostreeBooted,omitempty"`
	// OSTreeBooting is set while a Boot runs on BackendOSTree.
	OSTreeBooting bool `json:"ostreeBooting,omitempty"`
	// Pulls counts the images pulled from a registry.
	Pulls int `json:"pulls,omitempty"`
}

// deployments returns the deployments in rpm-ostree's order: staged, booted, rollback.
func (s *state) deployments() []*deployment {
	var out []*deployment
	for _, d := range []*deployment{s.Staged, s.Booted, s.Rollback} {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// contentInUse reports whether a deployment uses the content tree name.
func (s *state) contentInUse(name string) bool {
	for _, d := range s.deployments() {
		if d.Content == name {
			return true
		}
	}
	return false
}

// nextSerial returns the smallest deployment serial not used by a deployment of checksum.
func (s *state) nextSerial(checksum string) int {
	for n := 0; ; n++ {
		used := false
		for _, d := range s.deployments() {
			if d.Checksum == checksum && d.Serial == n {
				used = true
			}
		}
		if !used {
			return n
		}
	}
}

const (
	stateFile  = "state.json"
	lockFile   = "lock"
	contentDir = "content"
	tmpDir     = "tmp"
	rootDir    = "root"
	installDir = "install"
	osName     = "rhcos"
)

// loadState reads the state file; a missing one is a fresh host with a new boot id.
func loadState(dir string) (*state, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		id, err := newBootID()
		if err != nil {
			return nil, err
		}
		return &state{BootID: id}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading host state: %w", err)
	}
	var s state
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("parsing host state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

// saveState replaces the state file atomically.
func saveState(dir string, s *state) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding host state: %w", err)
	}
	if err := renameio.WriteFile(filepath.Join(dir, stateFile), raw, 0o600); err != nil {
		return fmt.Errorf("writing host state: %w", err)
	}
	return nil
}

// lockDir takes the host directory's exclusive lock; the returned function releases it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening host lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking host: %w", err)
	}
	return func() { f.Close() }, nil // closing the descriptor releases the lock
}

// newBootID returns a random UUID, as /proc/sys/kernel/random/boot_id holds.
func newBootID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating boot id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
