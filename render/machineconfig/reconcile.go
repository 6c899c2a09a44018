package machineconfig

import (
	"fmt"
	"reflect"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// CoreUser is the only user a MachineConfig may manage, and only its ssh keys and password hash.
const CoreUser = "core"

// UnreconcilableError says why a config change cannot be applied to a running node.
type UnreconcilableError struct {
	// Field is the path of what changed, e.g. "spec.config.storage.disks".
	Field string
	// Reason says what is not allowed.
	Reason string
}

func (e *UnreconcilableError) Error() string { return e.Field + ": " + e.Reason }

func unreconcilable(field, format string, args ...any) error {
	return &UnreconcilableError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Reconcilable decides whether a node running old can move to new without reinstalling. Refused: changes
// to passwd groups; any user but core, or core with fields other than sshAuthorizedKeys and passwordHash
// (core must then have a key or a hash); changes to Ignition's kernelArguments section, disks,
// filesystems, raid or directories; changed links (unless all are removed); files that append; the
// daemon's force file; a fips change.
func Reconcilable(old, new *mcfgv1.MachineConfigSpec) error {
	oldIgn, err := IgnitionOf(old)
	if err != nil {
		return fmt.Errorf("parsing current config: %w", err)
	}
	newIgn, err := IgnitionOf(new)
	if err != nil {
		return fmt.Errorf("parsing new config: %w", err)
	}
	if old.FIPS != new.FIPS {
		return unreconcilable("spec.fips", "FIPS mode cannot change on an installed node (%t to %t)", old.FIPS, new.FIPS)
	}
	return ReconcilableIgnition(oldIgn, newIgn)
}

// ReconcilableIgnition applies the Ignition part of Reconcilable.
func ReconcilableIgnition(old, new ign3types.Config) error {
	const p = "spec.config."
	if !reflect.DeepEqual(old.Passwd.Groups, new.Passwd.Groups) {
		return unreconcilable(p+"passwd.groups", "groups cannot be changed on an installed node")
	}
	for i, u := range new.Passwd.Users {
		up := fmt.Sprintf("%spasswd.users[%d]", p, i)
		if u.Name != CoreUser {
			return unreconcilable(up+".name", "only the %q user can be configured, not %q", CoreUser, u.Name)
		}
		onlyKeysAndHash := ign3types.PasswdUser{Name: u.Name, SSHAuthorizedKeys: u.SSHAuthorizedKeys, PasswordHash: u.PasswordHash}
		if !reflect.DeepEqual(u, onlyKeysAndHash) {
			return unreconcilable(up, "only sshAuthorizedKeys and passwordHash of user %q can be configured", CoreUser)
		}
		if len(u.SSHAuthorizedKeys) == 0 && (u.PasswordHash == nil || *u.PasswordHash == "") {
			return unreconcilable(up, "user %q needs at least one ssh key or a password hash", CoreUser)
		}
	}
	if !reflect.DeepEqual(old.KernelArguments, new.KernelArguments) {
		return unreconcilable(p+"kernelArguments", "Ignition kernelArguments cannot change on an installed node; use spec.kernelArguments")
	}
	for _, c := range []struct {
		name     string
		old, new any
	}{
		{"storage.disks", old.Storage.Disks, new.Storage.Disks},
		{"storage.filesystems", old.Storage.Filesystems, new.Storage.Filesystems},
		{"storage.raid", old.Storage.Raid, new.Storage.Raid},
		{"storage.directories", old.Storage.Directories, new.Storage.Directories},
	} {
		if !reflect.DeepEqual(c.old, c.new) {
			return unreconcilable(p+c.name, "%s cannot change on an installed node", c.name)
		}
	}
	if len(new.Storage.Links) > 0 && !reflect.DeepEqual(old.Storage.Links, new.Storage.Links) {
		return unreconcilable(p+"storage.links", "links cannot change on an installed node (only removing all of them is allowed)")
	}
	for i, f := range new.Storage.Files {
		fp := fmt.Sprintf("%sstorage.files[%d]", p, i)
		if len(f.Append) > 0 {
			return unreconcilable(fp+".append", "file %s: appending is not supported; write the whole content", f.Path)
		}
		if f.Path == wellknown.ForceFile {
			return unreconcilable(fp+".path", "%s is reserved for the node daemon", wellknown.ForceFile)
		}
	}
	return nil
}
