package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// Paths the configs stage writes besides the Ignition config's own.
const (
	// CurrentConfigPath is the daemon's on-disk record of the config a node runs: the rendered MachineConfig
	// as JSON.
	CurrentConfigPath = "/etc/machine-config-daemon/currentconfig"
	// SSHKeysPath holds the core user's ssh keys, one per line. /home is a link to var/home on an ostree
	// host, and COPY must not replace the link, so the file is written through its real path.
	SSHKeysPath = "/var/home/core/.ssh/authorized_keys.d/ignition"
	// UnitDir is where units and their drop-ins are written, and their enablement symlinks created.
	UnitDir = "/etc/systemd/system"
)

// Paths of rendered-config files the build itself needs for its pulls (see BuildContext).
const (
	RegistriesConfPath = "/etc/containers/registries.conf"
	PolicyJSONPath     = "/etc/containers/policy.json"
	AdditionalCAPath   = "/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt"
)

// coreUID is the core user's (and group's) ID on RHCOS.
const coreUID = 1000

// Default modes Ignition gives files and directories.
const (
	defaultFileMode = 0o644
	defaultDirMode  = 0o755
)

// entry is one thing the configs stage puts in the image.
type entry struct {
	path     string      // absolute, clean destination in the image
	mode     fs.FileMode // type bits (fs.ModeDir, fs.ModeSymlink or none) and permission bits
	uid, gid int
	data     []byte // regular file content
	target   string // symlink target
	field    string // the input field it comes from, for errors
}

func (e *entry) isDir() bool { return e.mode&fs.ModeDir != 0 }

// content is what a rendered config bakes into the image.
type content struct {
	entries []*entry
	enable  []string          // units of the OS to `systemctl enable` (no contents in the config), sorted
	disable []string          // units of the OS to `systemctl disable`, sorted
	files   map[string][]byte // decoded contents of the config's Ignition files, by path
}

// collectContent decodes the rendered config's Ignition into entries, refusing what a layered build cannot
// bake. Field paths in errors are those of the MachineConfig (spec.config.storage.files[2].mode). Ignition's
// kernelArguments section, like spec.kernelArguments, is the node's business (rpm-ostree kargs), not the
// image's.
func collectContent(rendered *mcfgv1.MachineConfig, cfg ign3types.Config) (*content, error) {
	c := &content{files: map[string][]byte{}}
	const p = "spec.config."
	s := cfg.Storage
	for _, d := range []struct {
		field string
		n     int
	}{{"disks", len(s.Disks)}, {"filesystems", len(s.Filesystems)}, {"luks", len(s.Luks)}, {"raid", len(s.Raid)}} {
		if d.n > 0 {
			return nil, fieldErrorf(p+"storage."+d.field, "storage devices cannot be configured in a layered image")
		}
	}
	// Generated entries first, so that a conflict is reported on the config's field.
	current, err := currentConfigEntry(rendered)
	if err != nil {
		return nil, err
	}
	c.entries = append(c.entries, current)
	keys, err := sshKeyEntries(cfg.Passwd, p+"passwd")
	if err != nil {
		return nil, err
	}
	c.entries = append(c.entries, keys...)
	units, err := unitContent(cfg.Systemd.Units, p+"systemd.units")
	if err != nil {
		return nil, err
	}
	c.entries = append(c.entries, units.entries...)
	c.enable, c.disable = units.enable, units.disable
	for i, f := range s.Files {
		e, err := fileEntry(f, fmt.Sprintf("%sstorage.files[%d]", p, i))
		if err != nil {
			return nil, err
		}
		c.entries = append(c.entries, e)
		c.files[e.path] = e.data
	}
	for i, d := range s.Directories {
		field := fmt.Sprintf("%sstorage.directories[%d]", p, i)
		mode, err := permissions(d.Mode, defaultDirMode, field)
		if err != nil {
			return nil, err
		}
		uid, gid, err := owner(d.Node, field)
		if err != nil {
			return nil, err
		}
		c.entries = append(c.entries, &entry{path: d.Path, mode: fs.ModeDir | mode, uid: uid, gid: gid, field: field + ".path"})
	}
	for i, l := range s.Links {
		field := fmt.Sprintf("%sstorage.links[%d]", p, i)
		if l.Hard != nil && *l.Hard {
			return nil, fieldErrorf(field+".hard", "hard links are not supported in layered builds")
		}
		if l.Target == nil || *l.Target == "" {
			return nil, fieldErrorf(field+".target", "a link needs a target")
		}
		uid, gid, err := owner(l.Node, field)
		if err != nil {
			return nil, err
		}
		c.entries = append(c.entries, &entry{path: l.Path, mode: fs.ModeSymlink | 0o777, uid: uid, gid: gid, target: *l.Target, field: field + ".path"})
	}
	if c.entries, err = checkPaths(c.entries); err != nil {
		return nil, err
	}
	return c, nil
}

// fileEntry decodes one Ignition file.
func fileEntry(f ign3types.File, field string) (*entry, error) {
	if len(f.Append) > 0 {
		return nil, fieldErrorf(field+".append", "appending to files is not supported in layered builds")
	}
	data, err := decodeResource(f.Contents, f.Path, field+".contents")
	if err != nil {
		return nil, err
	}
	mode, err := permissions(f.Mode, defaultFileMode, field)
	if err != nil {
		return nil, err
	}
	uid, gid, err := owner(f.Node, field)
	if err != nil {
		return nil, err
	}
	return &entry{path: f.Path, mode: mode, uid: uid, gid: gid, data: data, field: field + ".path"}, nil
}

// decodeResource returns the content of file's inline (data URL) resource, verified against its hash and
// decompressed (render/machineconfig.DecodeContents), with errors naming the field.
func decodeResource(r ign3types.Resource, file, field string) ([]byte, error) {
	data, err := machineconfig.DecodeContents(r)
	var ce *machineconfig.ContentError
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, machineconfig.ErrRemoteSource):
		scheme, _, _ := strings.Cut(*r.Source, ":")
		return nil, fieldErrorf(field+".source", "remote sources (%s) are not supported in layered builds: builds run offline, so give the content of %s inline as a data URL", scheme, file)
	case errors.As(err, &ce):
		return nil, fieldErrorf(field+"."+ce.Field, "%w", ce.Err)
	default:
		return nil, fieldErrorf(field, "%w", err)
	}
}

// permissions returns mode (def when unset), refusing anything but permission bits.
func permissions(mode *int, def fs.FileMode, field string) (fs.FileMode, error) {
	if mode == nil {
		return def, nil
	}
	if *mode&^0o777 != 0 || *mode < 0 {
		return 0, fieldErrorf(field+".mode", "%#o: only permission bits (0777) are allowed", *mode)
	}
	return fs.FileMode(*mode), nil
}

// owner resolves a node's user and group to numeric IDs: IDs as given, the names root and core; other names
// would need the base image's passwd and group files, which a build context cannot read.
func owner(n ign3types.Node, field string) (int, int, error) {
	uid, err := ownerID(n.User.ID, n.User.Name, field+".user")
	if err != nil {
		return 0, 0, err
	}
	gid, err := ownerID(n.Group.ID, n.Group.Name, field+".group")
	if err != nil {
		return 0, 0, err
	}
	return uid, gid, nil
}

func ownerID(id *int, name *string, field string) (int, error) {
	switch {
	case id != nil && *id < 0:
		return 0, fieldErrorf(field+".id", "%d is not a valid ID", *id)
	case id != nil:
		return *id, nil
	case name == nil, *name == "", *name == "root":
		return 0, nil
	case *name == machineconfig.CoreUser:
		return coreUID, nil
	default:
		return 0, fieldErrorf(field+".name", "%q cannot be resolved in a layered build (only root and core can): give its numeric id", *name)
	}
}

// sshKeyEntries writes the core user's ssh keys. Its passwordHash is not baked: the daemon applies it on
// the node, as for non-layered nodes.
func sshKeyEntries(pw ign3types.Passwd, field string) ([]*entry, error) {
	if len(pw.Groups) > 0 {
		return nil, fieldErrorf(field+".groups", "groups cannot be configured in a layered image")
	}
	var keys []string
	for i, u := range pw.Users {
		if u.Name != machineconfig.CoreUser {
			return nil, fieldErrorf(fmt.Sprintf("%s.users[%d].name", field, i), "only the %q user can be configured, not %q", machineconfig.CoreUser, u.Name)
		}
		for _, k := range u.SSHAuthorizedKeys {
			if k := strings.TrimSpace(string(k)); k != "" {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	field = "the core user's ssh keys (" + field + ".users.sshAuthorizedKeys)"
	sshDir := path.Dir(path.Dir(SSHKeysPath))
	return []*entry{
		{path: sshDir, mode: fs.ModeDir | 0o700, uid: coreUID, gid: coreUID, field: field},
		{path: path.Dir(SSHKeysPath), mode: fs.ModeDir | 0o700, uid: coreUID, gid: coreUID, field: field},
		{path: SSHKeysPath, mode: 0o600, uid: coreUID, gid: coreUID, data: []byte(strings.Join(keys, "\n") + "\n"), field: field},
	}, nil
}

// currentConfigEntry records the rendered config where the daemon reads it back, as the API serves it
// (kind and apiVersion set, managed fields left out).
func currentConfigEntry(rendered *mcfgv1.MachineConfig) (*entry, error) {
	mc := rendered.DeepCopy()
	mc.Kind, mc.APIVersion = "MachineConfig", mcfgv1.GroupVersion.String()
	mc.ManagedFields = nil
	raw, err := json.Marshal(mc)
	if err != nil {
		return nil, fmt.Errorf("encoding machineconfig %q: %w", rendered.Name, err)
	}
	return &entry{path: CurrentConfigPath, mode: defaultFileMode, data: raw, field: "the daemon's record of the rendered config"}, nil
}

// checkPaths refuses paths a node does not let configs manage, two different entries at one path, and
// entries below something that is not a directory. It returns entries without repeats (the same link made
// by two enabled units).
func checkPaths(entries []*entry) ([]*entry, error) {
	byPath := make(map[string]*entry, len(entries))
	out := entries[:0:0]
	for _, e := range entries {
		if !machineconfig.ManagedPath(e.path) {
			return nil, fieldErrorf(e.field, "%q is not a path a layered image can manage: it must be an absolute, clean path under /etc, /var, /usr/local, /opt, /home or /root", e.path)
		}
		if other, ok := byPath[e.path]; ok {
			if e.mode == other.mode && e.target == other.target && e.uid == other.uid && e.gid == other.gid && bytes.Equal(e.data, other.data) {
				continue
			}
			return nil, fieldErrorf(e.field, "%s is also written by %s", e.path, other.field)
		}
		byPath[e.path] = e
		out = append(out, e)
	}
	for _, e := range out {
		for dir := path.Dir(e.path); dir != "/"; dir = path.Dir(dir) {
			if parent, ok := byPath[dir]; ok && !parent.isDir() {
				return nil, fieldErrorf(e.field, "%s is below %s, which %s does not make a directory", e.path, dir, parent.field)
			}
		}
	}
	return out, nil
}
