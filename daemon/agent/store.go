package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/daemon"
)

// The daemon's on-disk record (Appendix C of the reference), the truth after a reboot or an etcd restore,
// plus this project's update journal.
const (
	CurrentConfigPath = daemon.StateDir + "/currentconfig"
	CurrentImagePath  = daemon.StateDir + "/currentimage"
	JournalPath       = daemon.StateDir + "/update-journal.json"
)

// Store reads and writes the on-disk record under a host root. Every write is atomic (a temporary file
// renamed over the old one), so a daemon killed mid-write leaves the old record or the new one.
type Store struct {
	Root daemon.Root
}

// CurrentConfig returns the config the host last applied, or nil when it has none.
func (s Store) CurrentConfig() (*mcfgv1.MachineConfig, error) {
	data, err := os.ReadFile(s.Root.HostPath(CurrentConfigPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the on-disk current config: %w", err)
	}
	mc := &mcfgv1.MachineConfig{}
	if err := json.Unmarshal(data, mc); err != nil {
		return nil, fmt.Errorf("decoding the on-disk current config %s: %w", CurrentConfigPath, err)
	}
	return mc, nil
}

// CurrentImage returns the OS image the host last applied in a layered pool ("" when none).
func (s Store) CurrentImage() (string, error) {
	data, err := os.ReadFile(s.Root.HostPath(CurrentImagePath))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the on-disk current image: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// Current returns the on-disk target (nil when the host has no current config).
func (s Store) Current() (*Target, *mcfgv1.MachineConfig, error) {
	mc, err := s.CurrentConfig()
	if err != nil || mc == nil {
		return nil, nil, err
	}
	img, err := s.CurrentImage()
	if err != nil {
		return nil, nil, err
	}
	return &Target{Config: mc.Name, Image: img}, mc, nil
}

// SetCurrent records mc (without server-side metadata) and image as what the host runs: the image file is
// written first, so that a crash between the two writes leaves a config that does not match the
// node's target and is applied again.
func (s Store) SetCurrent(mc *mcfgv1.MachineConfig, image string) error {
	rec := &mcfgv1.MachineConfig{
		TypeMeta:   mc.TypeMeta,
		ObjectMeta: mc.ObjectMeta,
		Spec:       mc.Spec,
	}
	rec.APIVersion, rec.Kind = mcfgv1.GroupVersion.String(), "MachineConfig"
	rec.ManagedFields, rec.ResourceVersion, rec.UID, rec.Generation = nil, "", "", 0
	rec.OwnerReferences = nil
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding the on-disk current config: %w", err)
	}
	if image == "" {
		if err := os.Remove(s.Root.HostPath(CurrentImagePath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the on-disk current image: %w", err)
		}
	} else if err := s.write(CurrentImagePath, []byte(image+"\n")); err != nil {
		return err
	}
	return s.write(CurrentConfigPath, data)
}

// Journal returns the update in progress, or nil.
func (s Store) Journal() (*Journal, error) {
	data, err := os.ReadFile(s.Root.HostPath(JournalPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the update journal: %w", err)
	}
	j := &Journal{}
	if err := json.Unmarshal(data, j); err != nil {
		return nil, fmt.Errorf("decoding the update journal %s: %w", JournalPath, err)
	}
	return j, nil
}

// SetJournal records j.
func (s Store) SetJournal(j *Journal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encoding the update journal: %w", err)
	}
	return s.write(JournalPath, data)
}

// ClearJournal removes the journal: the update is complete.
func (s Store) ClearJournal() error {
	if err := os.Remove(s.Root.HostPath(JournalPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the update journal: %w", err)
	}
	return nil
}

func (s Store) write(p string, data []byte) error {
	local := s.Root.HostPath(p)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := renameio.WriteFile(local, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}
