package daemon

import (
	"fmt"
	"path"
	"strings"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// The core user's files.
const (
	// CoreSSHKeysPath holds the core user's ssh keys from configs, one per line.
	CoreSSHKeysPath = "/home/core/.ssh/authorized_keys.d/ignition"
	// ShadowPath is where the core user's password hash is set.
	ShadowPath = "/etc/shadow"
	// lockedPasswordHash is the hash of a user without a password (no password login), as `usermod -p '*'`
	// sets it when a config no longer gives one.
	lockedPasswordHash = "*"
)

// applyCoreUser writes the core user's ssh keys and password hash when they changed.
func (p *applyPlan) applyCoreUser(root Root) error {
	if p.sshKeys != nil {
		if err := writeSSHKeys(root, *p.sshKeys, p.coreUID, p.coreGID); err != nil {
			return fmt.Errorf("core user ssh keys: %w", err)
		}
	}
	if p.passwordHash != nil {
		if err := setPasswordHash(root, *p.passwordHash); err != nil {
			return fmt.Errorf("core user password hash: %w", err)
		}
	}
	return nil
}

// writeSSHKeys writes keys to CoreSSHKeysPath atomically (mode 0600, its directories 0700, all owned by
// the core user); no keys removes the file.
func writeSSHKeys(root Root, keys []string, uid, gid int) error {
	if len(keys) == 0 {
		return root.removePrivate(CoreSSHKeysPath)
	}
	content := strings.Join(keys, "\n") + "\n"
	// ~core/.ssh and ~core/.ssh/authorized_keys.d belong to the core user.
	keysDir := path.Dir(CoreSSHKeysPath)
	return root.writePrivate(CoreSSHKeysPath, []byte(content), 0o600, uid, gid, 0o700, path.Dir(keysDir), keysDir)
}

// setPasswordHash sets the core user's password hash in <root>/etc/shadow, rewriting it atomically with its
// mode and owner; an empty hash locks the password. The hash never appears in errors.
func setPasswordHash(root Root, hash string) error {
	if hash == "" {
		hash = lockedPasswordHash
	}
	if strings.ContainsAny(hash, ":\n") {
		return fmt.Errorf("setting password hash in %s: the hash has a ':' or a newline", ShadowPath)
	}
	data, err := root.ReadFile(ShadowPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ShadowPath, err)
	}
	fi, err := root.Lstat(ShadowPath)
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", ShadowPath, err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	found := false
	for i, line := range lines {
		fields := strings.Split(line, ":")
		if len(fields) < 2 || fields[0] != machineconfig.CoreUser {
			continue
		}
		fields[1] = hash
		lines[i] = strings.Join(fields, ":")
		found = true
		break
	}
	if !found {
		return fmt.Errorf("setting password hash: user %q not found in %s", machineconfig.CoreUser, ShadowPath)
	}
	uid, gid := fileOwner(fi)
	if err := root.writePrivate(ShadowPath, []byte(strings.Join(lines, "")), fi.Mode().Perm(), uid, gid, 0); err != nil {
		return fmt.Errorf("setting password hash: %w", err)
	}
	return nil
}
