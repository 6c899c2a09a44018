package simhost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/imagemode/imagemode/daemon"
)

// The OSTree backend's view of a real OSTree sysroot, read through the ostree CLI and the files libostree
// writes: `ostree admin status` for the deployments and their order, the boot loader entries
// (boot/loader/entries/*.conf) for their kernel arguments, the origin files for what they track, and the
// commits' metadata for the image digest and version.

// OSTreeBinary is the ostree CLI the OSTree backend runs (Debian's `ostree` package).
const OSTreeBinary = "ostree"

// Layout of the sysroot under a host directory, and the keys this backend keeps in origin files.
const (
	sysrootDir = "sysroot"
	// stagedGroup/stagedKey mark a deployment's origin as staged: written with --not-as-default, it
	// becomes the default only when the reboot finalizes it (see bootOSTree), as a staged deployment does.
	stagedGroup = "imagemode"
	stagedKey   = "staged"
	// liveVarMarker, in the stateroot's /var, tells where that /var is: in the booted deployment, or in
	// the stateroot when nothing is booted (a real node bind-mounts it; here it is moved by rename).
	liveVarMarker = ".imagemode-stateroot-var"
	// imageRefPrefix prefixes the repo ref of an imported image: <prefix><digest algorithm>/<hex>.
	imageRefPrefix = "imagemode/image/"
)

// runOSTree runs the ostree CLI; a failure names the command line, exit status and standard error.
//
// Deployments are left mutable (libostree's OSTREE_SYSROOT_DEBUG=mutable-deployments): ostree otherwise
// sets the immutable attribute on each deployment's top directory, which on a real node is a mount point
// of /var and /run; here /var is moved into it and tests remove the whole sysroot.
func runOSTree(ctx context.Context, args ...string) ([]byte, error) {
	out, err := ostreeRunner.Run(ctx, OSTreeBinary, args...)
	if errors.Is(err, exec.ErrNotFound) {
		return nil, fmt.Errorf("the OSTree backend needs the %s CLI (Debian package ostree, hack/install-deps.sh): %w", OSTreeBinary, err)
	}
	return out, err
}

// ostreeRunner runs the ostree CLI with the environment runOSTree describes.
var ostreeRunner = envRunner{env: []string{"OSTREE_SYSROOT_DEBUG=mutable-deployments"}}

// envRunner runs commands with extra environment variables, errors as daemon.ExecRunner's.
type envRunner struct{ env []string }

func (r envRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), r.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
			code = exitErr.ExitCode()
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > maxStderr {
			msg = msg[len(msg)-maxStderr:]
		}
		return stdout.Bytes(), &daemon.CommandError{Argv: append([]string{name}, args...), ExitCode: code, Stderr: msg, Err: err}
	}
	return stdout.Bytes(), nil
}

const maxStderr = 4096

// sysroot is the OSTree sysroot of a host directory.
type sysroot struct {
	dir string // the sysroot (…/sysroot)
	os  string // the stateroot (osname)
}

func (r sysroot) repo() string               { return filepath.Join(r.dir, "ostree", "repo") }
func (r sysroot) stateroot() string          { return filepath.Join(r.dir, "ostree", "deploy", r.os) }
func (r sysroot) varDir() string             { return filepath.Join(r.stateroot(), "var") }
func (r sysroot) deployRoot() string         { return filepath.Join(r.stateroot(), "deploy") }
func (r sysroot) deployment(n string) string { return filepath.Join(r.deployRoot(), n) }
func (r sysroot) origin(n string) string     { return filepath.Join(r.deployRoot(), n+".origin") }
func (r sysroot) sysrootFlag() string        { return "--sysroot=" + r.dir }
func (r sysroot) repoFlag() string           { return "--repo=" + r.repo() }

// ensure creates the sysroot (`ostree admin init-fs`, `ostree admin os-init`) unless it exists.
func (r sysroot) ensure(ctx context.Context) error {
	if _, err := os.Stat(r.stateroot()); err == nil {
		return nil
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("creating the OSTree sysroot: %w", err)
	}
	if _, err := runOSTree(ctx, "admin", "init-fs", r.dir); err != nil {
		return fmt.Errorf("creating the OSTree sysroot: %w", err)
	}
	if _, err := runOSTree(ctx, "admin", "os-init", r.sysrootFlag(), r.os); err != nil {
		return fmt.Errorf("creating the OSTree stateroot %s: %w", r.os, err)
	}
	if err := os.WriteFile(filepath.Join(r.varDir(), liveVarMarker), nil, 0o644); err != nil {
		return fmt.Errorf("marking the stateroot's /var: %w", err)
	}
	return nil
}

// ostreeDeployment is one deployment of the sysroot, as read from ostree's files.
type ostreeDeployment struct {
	// Name is the deployment directory's name, "<checksum>.<serial>".
	Name     string
	OSName   string
	Checksum string
	Serial   int
	// Index is its position in `ostree admin status` (the boot loader order; 0 is the default).
	Index int
	// Kargs are the options of its boot loader entry, ostree= included, in order.
	Kargs []string
	// Entry is the boot loader entry file naming it.
	Entry  string
	Origin *keyFile
}

// userKargs returns the kernel arguments without the ostree= argument ostree adds itself.
func (d *ostreeDeployment) userKargs() []string {
	return slices.DeleteFunc(slices.Clone(d.Kargs), func(k string) bool { return strings.HasPrefix(k, "ostree=") })
}

func (d *ostreeDeployment) staged() bool { return d.Origin.get(stagedGroup, stagedKey) == "true" }

// statusLine matches a deployment line of `ostree admin status`: "* rhcos <checksum>.<serial> (pending)".
var statusLine = regexp.MustCompile(`^\s*(\*\s+)?(\S+)\s+([0-9a-f]{64})\.(\d+)(\s+\(\w+\))?\s*$`)

// parseAdminStatus returns the deployments `ostree admin status` lists, in its order.
func parseAdminStatus(out []byte) ([]ostreeDeployment, error) {
	var ds []ostreeDeployment
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := statusLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		serial, err := strconv.Atoi(m[4])
		if err != nil {
			return nil, fmt.Errorf("parsing ostree admin status line %q: %w", sc.Text(), err)
		}
		ds = append(ds, ostreeDeployment{Name: m[3] + "." + m[4], OSName: m[2], Checksum: m[3], Serial: serial, Index: len(ds)})
	}
	return ds, sc.Err()
}

// bootEntry is a Boot Loader Specification entry as ostree writes it.
type bootEntry struct {
	File    string
	Title   string
	Version int
	Options []string
	Linux   string
	Initrd  string
}

// parseBootEntry parses a BLS entry file's "key value" lines.
func parseBootEntry(name string, data []byte) (bootEntry, error) {
	e := bootEntry{File: name}
	for _, line := range strings.Split(string(data), "\n") {
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		val = strings.TrimSpace(val)
		switch key {
		case "title":
			e.Title = val
		case "version":
			v, err := strconv.Atoi(val)
			if err != nil {
				return e, fmt.Errorf("boot entry %s: version %q: %w", name, val, err)
			}
			e.Version = v
		case "options":
			opts, err := daemon.SplitKernelArgs(val)
			if err != nil {
				return e, fmt.Errorf("boot entry %s: options: %w", name, err)
			}
			e.Options = opts
		case "linux":
			e.Linux = val
		case "initrd":
			e.Initrd = val
		}
	}
	return e, nil
}

// bootEntries reads the sysroot's current boot loader entries (boot/loader is ostree's link to the
// current loader.N), the default (highest version) first.
func (r sysroot) bootEntries() ([]bootEntry, error) {
	dir := filepath.Join(r.dir, "boot", "loader", "entries")
	files, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading boot loader entries: %w", err)
	}
	var out []bootEntry
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".conf") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading boot loader entry: %w", err)
		}
		e, err := parseBootEntry(filepath.Join("boot", "loader", "entries", f.Name()), data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b bootEntry) int { return b.Version - a.Version })
	return out, nil
}

// entryDeployment resolves the ostree= argument of a boot entry to the deployment directory it boots, as
// ostree-prepare-root does (the /ostree/boot.N/<os>/<bootcsum>/<i> links), and returns its name.
func (r sysroot) entryDeployment(e bootEntry) (string, error) {
	for _, o := range e.Options {
		p, ok := strings.CutPrefix(o, "ostree=")
		if !ok {
			continue
		}
		target, err := filepath.EvalSymlinks(filepath.Join(r.dir, filepath.FromSlash(p)))
		if err != nil {
			return "", fmt.Errorf("boot entry %s: resolving %s: %w", e.File, o, err)
		}
		if filepath.Dir(target) != r.deployRoot() {
			return "", fmt.Errorf("boot entry %s: %s leads to %s, not a deployment", e.File, o, target)
		}
		return filepath.Base(target), nil
	}
	return "", fmt.Errorf("boot entry %s: no ostree= kernel argument", e.File)
}

// deployments lists the sysroot's deployments in ostree's order, with their boot entries' kernel
// arguments and their origins.
func (r sysroot) deployments(ctx context.Context) ([]ostreeDeployment, error) {
	out, err := runOSTree(ctx, "admin", "status", r.sysrootFlag())
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	ds, err := parseAdminStatus(out)
	if err != nil {
		return nil, err
	}
	entries, err := r.bootEntries()
	if err != nil {
		return nil, err
	}
	byName := map[string]bootEntry{}
	for _, e := range entries {
		n, err := r.entryDeployment(e)
		if err != nil {
			return nil, err
		}
		byName[n] = e
	}
	for i := range ds {
		d := &ds[i]
		e, ok := byName[d.Name]
		if !ok {
			return nil, fmt.Errorf("deployment %s has no boot loader entry", d.Name)
		}
		d.Kargs, d.Entry = e.Options, e.File
		raw, err := os.ReadFile(r.origin(d.Name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading the origin of deployment %s: %w", d.Name, err)
		}
		if d.Origin, err = parseKeyFile(raw); err != nil {
			return nil, fmt.Errorf("parsing the origin of deployment %s: %w", d.Name, err)
		}
	}
	return ds, nil
}

// commitMeta is the metadata of an imported image's commit.
type commitMeta struct {
	Digest  string
	Version string
}

// metaCache keeps commits' metadata by checksum (a commit never changes).
var metaCache sync.Map

// commitMetadata reads the manifest digest and version of a commit (`ostree show
// --print-metadata-key`); a key the commit lacks is "".
func (r sysroot) commitMetadata(ctx context.Context, checksum string) (commitMeta, error) {
	if m, ok := metaCache.Load(checksum); ok {
		return m.(commitMeta), nil
	}
	var m commitMeta
	for key, dst := range map[string]*string{"ostree.manifest-digest": &m.Digest, "version": &m.Version} {
		out, err := runOSTree(ctx, "show", r.repoFlag(), "--print-metadata-key="+key, checksum)
		if err != nil {
			var ce *daemon.CommandError
			if errors.As(err, &ce) && strings.Contains(ce.Stderr, "No such metadata key") {
				continue
			}
			return m, fmt.Errorf("reading metadata %s of commit %s: %w", key, checksum, err)
		}
		*dst = unquoteGVariant(strings.TrimSpace(string(out)))
	}
	metaCache.Store(checksum, m)
	return m, nil
}

// unquoteGVariant turns the text form of a GVariant string ('…') into the string.
func unquoteGVariant(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		s = s[1 : len(s)-1]
		s = strings.ReplaceAll(s, `\'`, `'`)
		s = strings.ReplaceAll(s, `\"`, `"`)
		s = strings.ReplaceAll(s, `\\`, `\`)
	}
	return s
}

// keyFile is a GKeyFile (an origin file): groups of key=value lines, in order.
type keyFile struct {
	groups []keyGroup
}

type keyGroup struct {
	name string
	keys [][2]string
}

// parseKeyFile parses a GKeyFile; comments and blank lines are dropped.
func parseKeyFile(data []byte) (*keyFile, error) {
	kf := &keyFile{}
	var cur *keyGroup
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			kf.groups = append(kf.groups, keyGroup{name: line[1 : len(line)-1]})
			cur = &kf.groups[len(kf.groups)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				return nil, fmt.Errorf("line %d: %q is not key=value in a group", i+1, line)
			}
			cur.keys = append(cur.keys, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return kf, nil
}

func (kf *keyFile) get(group, key string) string {
	if kf == nil {
		return ""
	}
	for _, g := range kf.groups {
		if g.name != group {
			continue
		}
		for _, kv := range g.keys {
			if kv[0] == key {
				return kv[1]
			}
		}
	}
	return ""
}

// set sets group.key to val; an empty val removes the key (and a group left empty).
func (kf *keyFile) set(group, key, val string) {
	for gi := range kf.groups {
		g := &kf.groups[gi]
		if g.name != group {
			continue
		}
		for i, kv := range g.keys {
			if kv[0] == key {
				if val == "" {
					g.keys = slices.Delete(g.keys, i, i+1)
					if len(g.keys) == 0 {
						kf.groups = slices.Delete(kf.groups, gi, gi+1)
					}
				} else {
					g.keys[i][1] = val
				}
				return
			}
		}
		if val != "" {
			g.keys = append(g.keys, [2]string{key, val})
		}
		return
	}
	if val != "" {
		kf.groups = append(kf.groups, keyGroup{name: group, keys: [][2]string{{key, val}}})
	}
}

func (kf *keyFile) clone() *keyFile {
	c := &keyFile{}
	if kf == nil {
		return c
	}
	for _, g := range kf.groups {
		c.groups = append(c.groups, keyGroup{name: g.name, keys: slices.Clone(g.keys)})
	}
	return c
}

func (kf *keyFile) bytes() []byte {
	var b strings.Builder
	for i, g := range kf.groups {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "[%s]\n", g.name)
		for _, kv := range g.keys {
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	return []byte(b.String())
}

// list reads a GKeyFile string list ("a;b;").
func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// joinList writes a GKeyFile string list; an empty list is "".
func joinList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, ";") + ";"
}
