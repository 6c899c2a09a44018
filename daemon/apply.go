package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// Host paths the executor treats specially.
const (
	// KubeletCAPath is written by the certificate writer, not by configs: never removed as stale data, never
	// checked for drift.
	KubeletCAPath = "/etc/kubernetes/kubelet-ca.crt"
	// DockerCertsDir holds registry certificates the certificate writer manages: never removed as stale data.
	DockerCertsDir = "/etc/docker/certs.d"
	// InternalRegistryPullSecretPath is refreshed by the daemon from the ControllerConfig: never checked for
	// drift.
	InternalRegistryPullSecretPath = "/etc/mco/internal-registry-pull-secret.json"
	// PasswdPath and GroupPath are where file owners given by name are looked up.
	PasswdPath = "/etc/passwd"
	GroupPath  = "/etc/group"
)

// ApplyOptions tunes ApplyConfig.
type ApplyOptions struct {
	// Force writes every unit of the new config, changed or not, and sets the enablement of each unit that
	// says whether it is enabled without asking systemd first (the force file,
	// /run/machine-config-daemon-force).
	Force bool
}

// ApplyConfig makes the host's files, units and core user those of new, coming from old (nil when nothing is
// known to be applied). In order:
//   - every file of new is written atomically through root (data URL contents, gzip, hash verification;
//     mode 0644 unless set; owner by ID, else by name from <root>/etc/passwd and /etc/group, else root);
//   - the units added or changed from old (every unit with opts.Force) are written under
//     /etc/systemd/system (see applyUnits);
//   - the core user's ssh keys and password hash, when they changed;
//   - stale data: files and units of old that new does not have are removed (originals restored, see
//     Root.RemoveFile), except the certificate writer's files; a removed unit is preset first;
//   - systemd reloads its units once if any unit file changed, and units are enabled or disabled.
//
// What new asks for is checked first (paths a config may manage, contents decode, owners exist, no append,
// only the core user): such an error changes nothing. Every file's new content is then written and synced
// next to it before the first file is replaced (see writeFiles): a file that cannot be written in full (a
// full disk) changes nothing either and is returned as it is. When a later step fails, old is applied again
// (new→old, best effort) so the host goes back to old's files, and the error returned wraps the first
// failure, joined with the rollback's error if it failed too. With old nil there is nothing to roll back to.
//
// Applying the same (old, new) again changes nothing and asks systemd to change nothing, unless the host
// was changed in between (files are rewritten; units are compared with what is on disk).
func ApplyConfig(ctx context.Context, root Root, sd Systemd, old, new *mcfgv1.MachineConfig, opts ApplyOptions) error {
	if new == nil {
		return fmt.Errorf("applying config: %w", ErrNoConfig)
	}
	p, err := planApply(root, old, new, opts)
	if err != nil {
		return fmt.Errorf("applying config %q: %w", new.Name, err)
	}
	err = p.execute(ctx, root, sd)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("applying config %q: %w", new.Name, err)
	if _, unchanged := errors.AsType[*unchangedError](err); old == nil || unchanged {
		return err
	}
	back, rbErr := planApply(root, new, old, ApplyOptions{})
	if rbErr == nil {
		rbErr = back.execute(ctx, root, sd)
	}
	if rbErr != nil {
		return errors.Join(err, fmt.Errorf("rolling back to config %q: %w", old.Name, rbErr))
	}
	return err
}

// applyPlan is what ApplyConfig does, decided and checked before the first write.
type applyPlan struct {
	config string
	files  []plannedFile
	// units are the units to write, by name.
	units []ign3types.Unit
	force bool
	// staleFiles are old's files new does not have, with what old wrote there.
	staleFiles []plannedFile
	// staleUnits are old's units new does not have; staleUnitFiles the files of units new keeps that it
	// no longer gives: drop-ins it drops, a unit file or mask when it says nothing of either (an explicit
	// mask: false is handled when writing the unit).
	staleUnits     []ign3types.Unit
	staleUnitFiles []staleUnitFile
	// sshKeys and passwordHash are set when the core user's keys or hash change.
	sshKeys      *[]string
	passwordHash *string
	coreUID      int
	coreGID      int
}

// plannedFile is one host file and the content a config gives it.
type plannedFile struct {
	path     string
	data     []byte
	mode     fs.FileMode
	uid, gid int
}

func planApply(root Root, old, new *mcfgv1.MachineConfig, opts ApplyOptions) (*applyPlan, error) {
	var oldRaw []byte
	if old != nil {
		oldRaw = old.Spec.Config.Raw
	}
	oldIgn, err := machineconfig.ParseIgnition(oldRaw)
	if err != nil {
		return nil, fmt.Errorf("parsing current config %q: %w", nameOf(old), err)
	}
	newIgn, err := machineconfig.ParseIgnition(new.Spec.Config.Raw)
	if err != nil {
		return nil, fmt.Errorf("parsing new config %q: %w", new.Name, err)
	}
	diff, err := diffParsed(old, new, oldIgn, newIgn)
	if err != nil {
		return nil, err
	}
	ids := &idLookup{root: root}
	p := &applyPlan{config: new.Name, force: opts.Force}
	for i, f := range newIgn.Storage.Files {
		pf, err := planFile(root, f, ids)
		if err != nil {
			return nil, fmt.Errorf("spec.config.storage.files[%d] (%s): %w", i, f.Path, err)
		}
		p.files = append(p.files, pf)
	}

	for i, u := range newIgn.Systemd.Units {
		if err := checkUnitNames(u); err != nil {
			return nil, fmt.Errorf("spec.config.systemd.units[%d]: %w", i, err)
		}
	}
	newUnits := unitsByName(newIgn.Systemd.Units)
	write := slices.Concat(diff.Units.Added, diff.Units.Changed)
	if opts.Force {
		write = sortedKeys(newUnits)
	}
	slices.Sort(write)
	for _, name := range write {
		p.units = append(p.units, newUnits[name])
	}

	// Paths new manages as units or drop-ins are not stale files, and the other way round.
	newUnitPaths := map[string]bool{}
	for _, u := range newIgn.Systemd.Units {
		newUnitPaths[UnitPath(u.Name)] = true
		for _, d := range u.Dropins {
			newUnitPaths[DropinPath(u.Name, d.Name)] = true
		}
	}
	newFiles := map[string]bool{}
	for _, f := range p.files {
		newFiles[f.path] = true
	}
	for _, f := range oldIgn.Storage.Files {
		if newFiles[f.Path] || newUnitPaths[f.Path] || keptOnRemoval(f.Path) {
			continue
		}
		// What old wrote tells a file of old's from one put back since; an undecodable old file is
		// removed only if a backup says a config wrote it.
		data, err := DecodeFileContents(f)
		if err != nil {
			data = nil
		}
		p.staleFiles = append(p.staleFiles, plannedFile{path: f.Path, data: data})
	}
	for _, u := range oldIgn.Systemd.Units {
		nu, ok := newUnits[u.Name]
		if !ok {
			if !newFiles[UnitPath(u.Name)] {
				p.staleUnits = append(p.staleUnits, u)
			}
			continue
		}
		for _, d := range u.Dropins {
			if !slices.ContainsFunc(nu.Dropins, func(n ign3types.Dropin) bool { return n.Name == d.Name }) &&
				!newFiles[DropinPath(u.Name, d.Name)] {
				p.staleUnitFiles = append(p.staleUnitFiles, staleUnitFile{plannedFile: plannedFile{path: DropinPath(u.Name, d.Name), data: []byte(deref(d.Contents))}})
			}
		}
		oldMask := u.Mask != nil && *u.Mask
		if (deref(u.Contents) != "" || oldMask) && deref(nu.Contents) == "" && nu.Mask == nil {
			p.staleUnitFiles = append(p.staleUnitFiles, staleUnitFile{plannedFile: plannedFile{path: UnitPath(u.Name), data: []byte(deref(u.Contents))}, mask: oldMask})
		}
	}

	for _, u := range newIgn.Passwd.Users {
		if u.Name != machineconfig.CoreUser {
			return nil, fmt.Errorf("spec.config.passwd.users: only the %q user can be configured, not %q", machineconfig.CoreUser, u.Name)
		}
	}
	if diff.Passwd() {
		keys, hash := coreUser(newIgn.Passwd)
		if diff.SSHKeys {
			p.sshKeys = &keys
		}
		if diff.PasswordHash {
			p.passwordHash = &hash
		}
		if p.coreUID, err = ids.user(machineconfig.CoreUser); err != nil {
			return nil, fmt.Errorf("looking up the core user: %w", err)
		}
		if p.coreGID, err = ids.userGroup(machineconfig.CoreUser); err != nil {
			return nil, fmt.Errorf("looking up the core user: %w", err)
		}
	}
	return p, nil
}

// planFile checks an Ignition file's path (Root.WriteFile checks it again when writing), decodes it and
// resolves its mode and owner.
func planFile(root Root, f ign3types.File, ids *idLookup) (plannedFile, error) {
	if len(f.Append) > 0 {
		return plannedFile{}, errors.New("append is not supported")
	}
	if _, err := root.managed(f.Path); err != nil {
		return plannedFile{}, err
	}
	data, err := DecodeFileContents(f)
	if err != nil {
		return plannedFile{}, err
	}
	mode := fs.FileMode(defaultFileMode)
	if f.Mode != nil {
		mode = fs.FileMode(*f.Mode)
	}
	uid, err := ids.owner(f.User.ID, f.User.Name, ids.user)
	if err != nil {
		return plannedFile{}, fmt.Errorf("user: %w", err)
	}
	gid, err := ids.owner(f.Group.ID, f.Group.Name, ids.group)
	if err != nil {
		return plannedFile{}, fmt.Errorf("group: %w", err)
	}
	return plannedFile{path: f.Path, data: data, mode: mode, uid: uid, gid: gid}, nil
}

// keptOnRemoval reports whether a file stays when a config stops listing it: the certificate writer's.
func keptOnRemoval(p string) bool {
	p = path.Clean(p)
	return p == KubeletCAPath || coveredBy(p, DockerCertsDir)
}

func (p *applyPlan) execute(ctx context.Context, root Root, sd Systemd) error {
	if err := writeFiles(root, p.files); err != nil {
		return err
	}
	us := &unitSession{root: root, sd: sd, force: p.force}
	for _, u := range p.units {
		if err := us.write(ctx, u); err != nil {
			return fmt.Errorf("unit %s: %w", u.Name, err)
		}
	}
	if err := p.applyCoreUser(root); err != nil {
		return err
	}
	if err := removeStaleFiles(root, p.staleFiles); err != nil {
		return err
	}
	for _, d := range p.staleUnitFiles {
		removed, err := us.removeFile(d)
		if err != nil {
			return fmt.Errorf("removing stale unit file %s: %w", d.path, err)
		}
		us.changed = us.changed || removed
	}
	for _, u := range p.staleUnits {
		if err := us.remove(ctx, u); err != nil {
			return fmt.Errorf("removing stale unit %s: %w", u.Name, err)
		}
	}
	return us.finish(ctx)
}

// writeFiles writes a config's files in two phases. First each file's content is written and synced under a
// temporary name next to it (its original backed up first), by up to applyWorkers goroutines: the files are
// distinct paths, so their order does not matter. If one fails (a full disk), the temporary files and the
// backups made for them are removed and the error is an *unchangedError: every file is as it was. Then the
// temporary files are renamed over the files in the config's order, and each directory whose entries
// changed is synced once, before the files are reported written.
func writeFiles(root Root, files []plannedFile) error {
	if len(files) == 0 {
		return nil
	}
	b, err := root.newBatch()
	if err != nil {
		return &unchangedError{err}
	}
	pending := make([]*pendingWrite, len(files))
	err = forEach(len(files), applyWorkers, func(i int) error {
		f := files[i]
		w, err := root.stageFrom(f.path, bytes.NewReader(f.data), f.mode, f.uid, f.gid, b)
		if err != nil {
			return fmt.Errorf("file %s: %w", f.path, err)
		}
		pending[i] = w
		return nil
	})
	if err != nil {
		errs := []error{&unchangedError{err}}
		for _, w := range pending {
			if w != nil {
				errs = append(errs, w.discard(b))
			}
		}
		return errors.Join(append(errs, b.flush())...)
	}
	for i, w := range pending {
		if err := w.commit(b); err != nil {
			errs := []error{fmt.Errorf("file %s: writing %s: %w", files[i].path, w.path, err)}
			for _, rest := range pending[i+1:] {
				errs = append(errs, rest.discard(b))
			}
			return errors.Join(append(errs, b.flush())...)
		}
	}
	return b.flush()
}

// unchangedError is a failure that left the host as it was: ApplyConfig does not roll it back.
type unchangedError struct{ err error }

func (e *unchangedError) Error() string { return e.err.Error() }
func (e *unchangedError) Unwrap() error { return e.err }

// removeStaleFiles removes (see removeStale) old's files new does not have, by up to applyWorkers
// goroutines, and syncs each directory whose entries changed once.
func removeStaleFiles(root Root, files []plannedFile) error {
	if len(files) == 0 {
		return nil
	}
	b, err := root.newBatch()
	if err != nil {
		return err
	}
	err = forEach(len(files), applyWorkers, func(i int) error {
		if err := removeStale(root, files[i], b); err != nil {
			return fmt.Errorf("removing stale file %s: %w", files[i].path, err)
		}
		return nil
	})
	return errors.Join(err, b.flush())
}

// removeStale removes a stale file if a config put it there: a backup is recorded for it, or (a file written
// before backups were kept) it still holds what the old config wrote. A file already put back, or never
// written, is left alone, so that removing twice does not delete a restored original.
func removeStale(root Root, f plannedFile, b *batch) error {
	ours, err := root.HasBackup(f.path)
	if err != nil {
		return err
	}
	if !ours {
		if f.data == nil {
			return nil
		}
		data, err := root.ReadFile(f.path)
		if err != nil || !bytes.Equal(data, f.data) {
			return nil //nolint:nilerr // not a file of ours: nothing to remove
		}
	}
	return root.removeFile(f.path, b)
}

// idLookup resolves user and group names in the root's /etc/passwd and /etc/group, read once.
type idLookup struct {
	root   Root
	users  map[string][2]int // name → uid, primary gid
	groups map[string]int
}

// owner returns id when set, else the ID of name (looked up by find), else 0 (root).
func (l *idLookup) owner(id *int, name *string, find func(string) (int, error)) (int, error) {
	switch {
	case id != nil:
		return *id, nil
	case name != nil && *name != "" && *name != "root":
		return find(*name)
	default:
		return 0, nil
	}
}

func (l *idLookup) user(name string) (int, error) {
	u, err := l.lookupUser(name)
	return u[0], err
}

func (l *idLookup) userGroup(name string) (int, error) {
	u, err := l.lookupUser(name)
	return u[1], err
}

func (l *idLookup) lookupUser(name string) ([2]int, error) {
	if l.users == nil {
		entries, err := readIDFile(l.root, PasswdPath, 4)
		if err != nil {
			return [2]int{}, err
		}
		l.users = map[string][2]int{}
		for n, f := range entries {
			l.users[n] = [2]int{f[0], f[1]}
		}
	}
	u, ok := l.users[name]
	if !ok {
		return [2]int{}, fmt.Errorf("user %q not found in %s", name, PasswdPath)
	}
	return u, nil
}

func (l *idLookup) group(name string) (int, error) {
	if l.groups == nil {
		entries, err := readIDFile(l.root, GroupPath, 3)
		if err != nil {
			return 0, err
		}
		l.groups = map[string]int{}
		for n, f := range entries {
			l.groups[n] = f[0]
		}
	}
	g, ok := l.groups[name]
	if !ok {
		return 0, fmt.Errorf("group %q not found in %s", name, GroupPath)
	}
	return g, nil
}

// readIDFile parses a passwd-style file: name, password, then numeric fields from index 2 on (minFields
// fields at least); malformed lines are skipped.
func readIDFile(root Root, p string, minFields int) (map[string][]int, error) {
	data, err := root.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	out := map[string][]int{}
	for line := range strings.Lines(string(data)) {
		fields := strings.Split(strings.TrimRight(line, "\n"), ":")
		if len(fields) < minFields || strings.HasPrefix(fields[0], "#") {
			continue
		}
		var ids []int
		for _, s := range fields[2:minFields] {
			n, err := strconv.Atoi(s)
			if err != nil {
				ids = nil
				break
			}
			ids = append(ids, n)
		}
		if ids != nil {
			if _, dup := out[fields[0]]; !dup {
				out[fields[0]] = ids
			}
		}
	}
	return out, nil
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
