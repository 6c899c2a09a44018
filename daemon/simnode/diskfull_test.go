package simnode_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
)

// diskSize is the size of the filesystem the disk-full node's host lives on: room for the test base image
// (unpacked twice at most) and the node's state.
const diskSize = 96 << 20

// testDiskFull (issue 14, fault row 8): the node's disk fills while a config's files are written. The host
// lives on a small tmpfs of its own; once the node runs a first config, the filesystem is filled with a
// filler file to within a little of its size and the node is given a config with a file larger than what
// is left. Expected: the node is Degraded with a reason naming the file and "no space left on device" (on
// the node and its MachineConfigNode), the previous files are intact, no temporary file or half-written file
// stays; once the filler is removed the node moves to the new config by itself.
func testDiskFull(t *testing.T, ctx context.Context, env *local.Env) {
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", diskSize)); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(disk, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", disk, err)
		}
	})

	c := env.ControlPlane.Client
	ownPool(t, ctx, c, "diskfull")
	node := startNodeSpec(t, ctx, env, nodeSpec{name: "diskfull-0", pools: []string{"diskfull"}, delete: true,
		dir: filepath.Join(disk, "host")})
	waitNode(t, ctx, c, node, "the first config", doneOn(poolTarget(t, ctx, c, "diskfull", "")))
	if err := c.Delete(ctx, local.Pool("diskfull")); err != nil {
		t.Fatal(err)
	}

	const a, big = "/etc/nmstate/openshift/a.yml", "/etc/nmstate/openshift/big.bin"
	const bigSize = 8 << 20
	for name, ign := range map[string]string{
		"rendered-diskfull-0": filesIgn(map[string]string{a: "zero\n"}, ""),
		"rendered-diskfull-1": bigFileIgn(t, map[string]string{a: "one\n"}, big, bigSize),
	} {
		mc := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}}}
		if err := c.Create(ctx, mc); err != nil {
			t.Fatal(err)
		}
	}
	target := func(name string) {
		t.Helper()
		setAnnotations(t, ctx, c, node.Name(), map[string]string{wellknown.DesiredConfigAnnotation: name})
	}
	target("rendered-diskfull-0")
	waitNode(t, ctx, c, node, "rendered-diskfull-0", doneOn("rendered-diskfull-0"))

	// Fill the disk, leaving 1 MiB: enough for the daemon's own small records, not for the big file.
	filler := filepath.Join(disk, "filler")
	fill(t, disk, filler, 1<<20)
	t.Cleanup(func() { _ = os.Remove(filler) })

	reboots := node.Reboots()
	target("rendered-diskfull-1")
	n := waitNode(t, ctx, c, node, "Degraded by the full disk", stateIs(wellknown.NodeStateDegraded))
	reason := n.Annotations[wellknown.ReasonAnnotation]
	t.Logf("reason: %s", reason)
	if !strings.Contains(reason, big) || !strings.Contains(reason, "no space left on device") {
		t.Errorf("reason %q does not name %s and \"no space left on device\"", reason, big)
	}
	mcn := &mcfgv1.MachineConfigNode{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, mcn); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		cond := meta.FindStatusCondition(mcn.Status.Conditions, string(mcfgv1.MachineConfigNodeNodeDegraded))
		return cond != nil && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, "no space left on device"), nil
	})
	if err != nil {
		t.Errorf("MachineConfigNode %s not NodeDegraded by the full disk: %v\n%+v", node.Name(), err, mcn.Status.Conditions)
	}
	// Between the agent's retries (each fails the same way) the host holds the previous files, and nothing
	// half-written: no temporary file, no part of the big file, no backup made for it. A temporary file
	// seen once may be a retry's write in progress (each has a new random name); one seen twice is left.
	seen := map[string]bool{}
	for range 4 {
		if got := hostFile(node, a); got != "zero\n" {
			t.Errorf("%s = %q while the disk is full, want the previous content", a, got)
		}
		if got := hostFile(node, big); got != "<absent>" {
			t.Errorf("%s exists (%d bytes) while the disk is full", big, len(got))
		}
		for _, left := range leftovers(t, node.Host.Root().HostPath("/")) {
			if seen[left] {
				t.Errorf("half-written file left: %s", left)
			}
			seen[left] = true
		}
		time.Sleep(300 * time.Millisecond)
	}
	if node.Reboots() != reboots {
		t.Errorf("%d reboots, want none (the change needs none, and it failed)", node.Reboots()-reboots)
	}

	// Space freed: the retry succeeds by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitNode(t, ctx, c, node, "rendered-diskfull-1 after space was freed", doneOn("rendered-diskfull-1"))
	if got := hostFile(node, a); got != "one\n" {
		t.Errorf("%s = %q after recovery", a, got)
	}
	if fi, err := os.Stat(node.Host.Root().HostPath(big)); err != nil || fi.Size() != bigSize {
		t.Errorf("%s after recovery: %v, %v", big, fi, err)
	}
	if left := leftovers(t, node.Host.Root().HostPath("/")); len(left) > 0 {
		t.Errorf("temporary files left after recovery: %v", left)
	}
	n = &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: node.Name()}, n); err != nil {
		t.Fatal(err)
	}
	if r := n.Annotations[wellknown.ReasonAnnotation]; r != "" {
		t.Errorf("reason %q still set after recovery", r)
	}
}

// bigFileIgn is filesIgn plus the file p of size zero bytes (gzip-compressed in the config, so that the
// MachineConfig stays small).
func bigFileIgn(t *testing.T, files map[string]string, p string, size int) string {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	ign := filesIgn(files, "")
	entry := fmt.Sprintf(`{"path":%q,"mode":420,"contents":{"compression":"gzip","source":"data:;base64,%s"}},`, p,
		base64.StdEncoding.EncodeToString(gz.Bytes()))
	return strings.Replace(ign, `"files":[`, `"files":[`+entry, 1)
}

// fill writes zeros to the new file p on the filesystem at mount until the filesystem is full, then
// truncates p so that free bytes stay free.
func fill(t *testing.T, mount, p string, free int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var written int64
	for {
		n, err := f.Write(chunk)
		written += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(max(0, written-free)); err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mount, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %s: %d bytes free", mount, int64(st.Bavail)*st.Bsize)
}

// leftovers lists the temporary files of atomic writes under dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			return nil // removed while the walk ran (a retry's temporary file)
		}
		if err != nil {
			return err
		}
		if strings.HasSuffix(d.Name(), ".mcdtmp") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
