package simnode_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/imagemode/imagemode/daemon/simnode"
)

// What the tests read from a node's OSTree sysroot themselves — ostree's files, not the host's records:
// the boot loader entries and the deployment each boots (its ostree= argument's links, as
// ostree-prepare-root follows them), the deployments' origin files.

// sysrootEntry is a boot loader entry of a node's sysroot.
type sysrootEntry struct {
	File       string
	Version    int
	Options    string
	Deployment string // the deployment directory it boots, "<checksum>.<serial>"
}

// ostreeNode skips the rest of a test's OSTree assertions on a node whose host is the directory backend
// (IMAGEMODE_NODE_BACKEND=directory).
func ostreeNode(t *testing.T, n *simnode.Node) bool {
	t.Helper()
	if n.Host.Sysroot() == "" {
		t.Logf("node %s: directory backend, no OSTree sysroot to check", n.Name())
		return false
	}
	return true
}

// bootEntries reads the node's boot loader entries, the default (highest version) first.
func bootEntries(t *testing.T, n *simnode.Node) []sysrootEntry {
	t.Helper()
	sysroot := n.Host.Sysroot()
	dir := filepath.Join(sysroot, "boot", "loader", "entries")
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []sysrootEntry
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		e := sysrootEntry{File: f.Name()}
		for _, line := range strings.Split(string(raw), "\n") {
			k, v, _ := strings.Cut(line, " ")
			switch k {
			case "version":
				if e.Version, err = strconv.Atoi(v); err != nil {
					t.Fatalf("%s: version %q", f.Name(), v)
				}
			case "options":
				e.Options = v
				for _, o := range strings.Fields(v) {
					if p, ok := strings.CutPrefix(o, "ostree="); ok {
						target, err := filepath.EvalSymlinks(filepath.Join(sysroot, p))
						if err != nil {
							t.Fatalf("%s: %s leads nowhere: %v", f.Name(), o, err)
						}
						e.Deployment = filepath.Base(target)
					}
				}
			}
		}
		if e.Deployment == "" {
			t.Fatalf("boot entry %s boots no deployment:\n%s", f.Name(), raw)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b sysrootEntry) int { return b.Version - a.Version })
	return out
}

// bootedDeployment is the deployment the node runs: its host root.
func bootedDeployment(n *simnode.Node) string { return filepath.Base(string(n.Host.Root())) }

// originOf reads a deployment's origin file.
func originOf(t *testing.T, n *simnode.Node, deployment string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(n.Host.Sysroot(), "ostree", "deploy", "rhcos", "deploy", deployment+".origin"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// checksumOf is the commit a deployment directory "<checksum>.<serial>" checks out.
func checksumOf(deployment string) string {
	c, _, _ := strings.Cut(deployment, ".")
	return c
}

// hasKarg reports whether a boot entry's options hold the argument k.
func hasKarg(e sysrootEntry, k string) bool { return slices.Contains(strings.Fields(e.Options), k) }
