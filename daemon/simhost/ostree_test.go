package simhost

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagemode/imagemode/daemon"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

// requireOSTree skips a test when the ostree CLI is missing (hack/install-deps.sh installs it).
func requireOSTree(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(OSTreeBinary); err != nil {
		t.Skipf("the OSTree backend needs %s (Debian package ostree): %v", OSTreeBinary, err)
	}
}

// bootEntryOf returns the boot loader entry (file name and content) of a deployment, read from the
// sysroot's files and matched by the ostree= argument's link to its directory.
func bootEntryOf(t *testing.T, h *Host, deployment string) (string, string) {
	t.Helper()
	entries, err := h.sys.bootEntries()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n, err := h.sys.entryDeployment(e); err == nil && n == deployment {
			raw, err := os.ReadFile(filepath.Join(h.sys.dir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			return e.File, string(raw)
		}
	}
	t.Fatalf("no boot loader entry boots deployment %s", deployment)
	return "", ""
}

// entryOptions returns the options line of a boot loader entry.
func entryOptions(entry string) string {
	for _, l := range strings.Split(entry, "\n") {
		if o, ok := strings.CutPrefix(l, "options "); ok {
			return o
		}
	}
	return ""
}

// defaultDeployment returns the deployment the default boot loader entry boots.
func defaultDeployment(t *testing.T, h *Host) string {
	t.Helper()
	entries, err := h.sys.bootEntries()
	if err != nil || len(entries) == 0 {
		t.Fatalf("boot entries: %v %v", entries, err)
	}
	n, err := h.sys.entryDeployment(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func deploymentNames(t *testing.T, h *Host) []string {
	t.Helper()
	entries, err := os.ReadDir(h.sys.deployRoot())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestOSTreeHostAgainstRegistry runs the OSTree backend on a real sysroot: provisioning from the TLS+auth
// registry, a staged rebase to a layered image with a kernel argument change, a file written to /etc after
// the deploy (it survives the reboot by ostree's merge at finalization), the boot, and the revert to the
// base image from the rollback deployment without a pull. It asserts on ostree's own files: the boot
// loader entries, the deployment directories, the origin files and `ostree admin status`.
func TestOSTreeHostAgainstRegistry(t *testing.T) {
	requireOSTree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	base, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref("testimages/base", ":latest"))
	if err != nil {
		t.Fatal(err)
	}
	layered := buildLayered(ctx, t, reg, base)
	ca, err := os.ReadFile(filepath.Join(reg.CertDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cas := map[string][]byte{strings.ReplaceAll(reg.Host, ":", ".."): ca}

	dir := t.TempDir()
	h, err := New(dir, Options{Kargs: []string{"rw", "console=tty0", "console=ttyS0"}, Backend: BackendOSTree})
	if err != nil {
		t.Fatal(err)
	}
	osu := h.OS()
	if err := h.Provision(ctx, base, reg.DockerConfigJSON(), cas); err != nil {
		t.Fatal(err)
	}

	// One deployment, booted, with a real boot loader entry naming the image's kernel.
	names := deploymentNames(t, h)
	if len(names) != 1 {
		t.Fatalf("deployments after provisioning: %v", names)
	}
	baseDep := names[0]
	if got := string(h.Root()); got != h.sys.deployment(baseDep) {
		t.Errorf("root %s is not the booted deployment %s", got, baseDep)
	}
	_, entry := bootEntryOf(t, h, baseDep)
	if !strings.HasPrefix(entryOptions(entry), "rw console=tty0 console=ttyS0 ostree=/ostree/boot.") ||
		!strings.Contains(entry, "vmlinuz-"+testimages.KernelVersion) || !strings.Contains(entry, "initramfs-"+testimages.KernelVersion+".img") {
		t.Errorf("boot entry of the base:\n%s", entry)
	}
	st, err := osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != base || st.Staged != nil || st.Booted.Version != testimages.DefaultVersion ||
		st.BootedImageDigest() == "" || !strings.HasSuffix(base, st.BootedImageDigest()) ||
		st.Booted.ID != osName+"-"+baseDep {
		t.Fatalf("after provisioning: %+v", st.Deployments)
	}
	if fi, err := os.Stat(h.Root().HostPath(KubeletAuthFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("auth file in the booted deployment's /var: %v %v", fi, err)
	}
	if got := readHostFile(t, h, "/etc/os-release"); !strings.Contains(got, testimages.DefaultVersion) {
		t.Errorf("/etc/os-release of the deployment: %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.sys.deployment(baseDep), "usr", "etc", "passwd")); err != nil {
		t.Errorf("the commit's /etc is not under /usr/etc: %v", err)
	}
	pulls := h.pulls(t)

	// A local /etc change, then the staged rebase: the base stays the default entry until the reboot.
	passwd := readHostFile(t, h, "/etc/passwd") + "local:x:1001:1001::/var/home/local:/bin/sh\n"
	writeHostFile(t, h, "/etc/passwd", passwd)
	writeHostFile(t, h, "/var/lib/simhost-var", "kept\n")
	if err := osu.Rebase(ctx, layered, KubeletAuthFile); err != nil {
		t.Fatal(err)
	}
	if err := osu.Kargs(ctx, []string{"kargs", "--append=simhost=1", "--delete-if-present=console=tty0"}); err != nil {
		t.Fatal(err)
	}
	st, err = osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Staged == nil || st.Staged.Image() != layered || st.BootedImage() != base || len(st.Deployments) != 2 {
		t.Fatalf("after rebase: %+v", st.Deployments)
	}
	if got := defaultDeployment(t, h); got != baseDep {
		t.Errorf("the default entry boots %s before the reboot, want the booted %s", got, baseDep)
	}
	stagedDep := strings.TrimPrefix(st.Staged.ID, osName+"-")
	if _, entry := bootEntryOf(t, h, stagedDep); !strings.HasPrefix(entryOptions(entry), "rw console=ttyS0 simhost=1 ostree=") {
		t.Errorf("staged entry options %q", entryOptions(entry))
	}
	if got := readHostFile(t, h, "/usr/share/simhost-test"); got != "<absent>" {
		t.Errorf("layered file visible before the reboot: %q", got)
	}
	// A crash between the deploy and the reboot: the host opened again has both deployments bootable
	// (two boot entries, the booted one the default) and still the staged one.
	h, err = New(dir, Options{Backend: BackendOSTree})
	if err != nil {
		t.Fatal(err)
	}
	osu = h.OS()
	if again, err := osu.Status(ctx); err != nil || again.Staged == nil || again.Staged.ID != st.Staged.ID || again.Booted.ID != st.Booted.ID {
		t.Fatalf("after reopening between deploy and reboot: %+v %v", again, err)
	}
	if entries, err := h.sys.bootEntries(); err != nil || len(entries) != 2 || defaultDeployment(t, h) != baseDep {
		t.Fatalf("boot entries between deploy and reboot: %+v %v", entries, err)
	}
	// Written after the deploy, as the daemon writes its on-disk record: the finalization merges it.
	writeHostFile(t, h, "/etc/machine-config-daemon/currentconfig", "after-deploy\n")
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	booted := h.bootedName()
	bootID, _ := h.BootID()
	if booted == baseDep || defaultDeployment(t, h) != booted {
		t.Fatalf("booted %s, default %s, base %s", booted, defaultDeployment(t, h), baseDep)
	}
	if got := deploymentNames(t, h); len(got) != 2 || !slices.Contains(got, baseDep) {
		t.Errorf("deployments after the reboot: %v (want the layered one and the base kept for rollback)", got)
	}
	if _, entry := bootEntryOf(t, h, booted); !strings.Contains(entryOptions(entry), "simhost=1") || strings.Contains(entryOptions(entry), "console=tty0 ") {
		t.Errorf("booted entry options %q", entryOptions(entry))
	}
	if _, entry := bootEntryOf(t, h, baseDep); !strings.HasPrefix(entryOptions(entry), "rw console=tty0 console=ttyS0 ") {
		t.Errorf("rollback entry options %q", entryOptions(entry))
	}
	for p, want := range map[string]string{
		"/usr/share/simhost-test":                  "hi\n",
		"/etc/simhost-test.conf":                   "layered\n",
		"/etc/passwd":                              passwd, // modified locally: kept by the merge
		"/etc/machine-config-daemon/currentconfig": "after-deploy\n",
		"/var/lib/simhost-var":                     "kept\n",
		"/usr/bin/testrepo-install":                "<absent>",
	} {
		if got := readHostFile(t, h, p); got != want {
			t.Errorf("after boot %s = %q, want %q", p, got, want)
		}
	}
	origin, err := os.ReadFile(h.sys.origin(booted))
	if err != nil || !strings.Contains(string(origin), "container-image-reference=ostree-unverified-registry:"+layered) ||
		strings.Contains(string(origin), stagedKey) {
		t.Errorf("origin of the booted deployment: %q %v", origin, err)
	}
	st, err = osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != layered || st.Staged != nil || len(st.Deployments) != 2 || st.Deployments[1].Image() != base {
		t.Fatalf("after boot: %+v", st.Deployments)
	}

	// Back to the base: the rollback deployment's commit is deployed again, no pull. The boot crashes
	// right after the finalizing deploy; opening the host again finishes it.
	if err := osu.Rebase(ctx, base, KubeletAuthFile); err != nil {
		t.Fatal(err)
	}
	crashPoint = func(step string) error { return errors.New("crashed at " + step) }
	err = h.Boot()
	crashPoint = func(string) error { return nil }
	if err == nil || !strings.Contains(err.Error(), "crashed at finalized") {
		t.Fatalf("boot with a crash: %v", err)
	}
	if h, err = New(dir, Options{Backend: BackendOSTree}); err != nil {
		t.Fatal(err)
	}
	osu = h.OS()
	if id, _ := h.BootID(); id == bootID {
		t.Error("the interrupted boot finished without a new boot id")
	}
	if got := h.pulls(t); got != pulls+1 {
		t.Errorf("pulls: %d, want %d (the layered image only)", got, pulls+1)
	}
	st, err = osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != base || h.bootedName() == baseDep || !strings.HasPrefix(baseDep, st.Booted.Checksum+".") ||
		st.Deployments[1].Image() != layered {
		t.Fatalf("after the revert: %+v (base deployment was %s)", st.Deployments, baseDep)
	}
	if got := readHostFile(t, h, "/usr/share/simhost-test"); got != "<absent>" {
		t.Errorf("layered file after the revert: %q", got)
	}
	if got := readHostFile(t, h, "/etc/passwd"); got != passwd {
		t.Errorf("/etc/passwd after the revert: %q", got)
	}

	// Dropping the rollback (the layered deployment), then a plain reboot: its boot entry and directory
	// go, and its image's ref and commit leave the repo.
	layeredDep := ""
	for _, n := range deploymentNames(t, h) {
		if n != h.bootedName() {
			layeredDep = n
		}
	}
	if err := osu.CleanupRollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := deploymentNames(t, h); len(got) != 1 || got[0] != h.bootedName() {
		t.Errorf("deployments after cleanup -r: %v", got)
	}
	if entries, err := h.sys.bootEntries(); err != nil || len(entries) != 1 {
		t.Errorf("boot entries after cleanup -r: %+v %v", entries, err)
	}
	bootedBefore := h.bootedName()
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	if h.bootedName() != bootedBefore {
		t.Errorf("a plain reboot booted %s, want %s", h.bootedName(), bootedBefore)
	}
	refs, err := runOSTree(ctx, "refs", h.sys.repoFlag(), "--list")
	if err != nil {
		t.Fatal(err)
	}
	var imageRefs []string
	for _, r := range strings.Fields(string(refs)) {
		if strings.HasPrefix(r, imageRefPrefix) { // not ostree's own ostree/<bootversion>/… deployment refs
			imageRefs = append(imageRefs, r)
		}
	}
	if len(imageRefs) != 1 || !strings.HasSuffix(base, strings.ReplaceAll(strings.TrimPrefix(imageRefs[0], imageRefPrefix), "/", ":")) {
		t.Errorf("image refs after the layered deployment went: %q (base %s)", imageRefs, base)
	}
	if _, err := runOSTree(ctx, "show", h.sys.repoFlag(), checksumOfName(layeredDep)); err == nil {
		t.Errorf("the layered commit of %s is still in the repo", layeredDep)
	}

	// Reopened from its directory, the host reports the same.
	again, err := New(dir, Options{Backend: BackendOSTree})
	if err != nil {
		t.Fatal(err)
	}
	after, err := again.OS().Status(ctx)
	if err != nil || after.BootedImage() != base || len(after.Deployments) != 1 {
		t.Errorf("status after reopening: %+v %v", after, err)
	}
}

func (h *Host) pulls(t *testing.T) int {
	t.Helper()
	s, err := h.read()
	if err != nil {
		t.Fatal(err)
	}
	return s.Pulls
}

func checksumOfName(deployment string) string {
	c, _, _ := strings.Cut(deployment, ".")
	return c
}

// TestOSTreeHostBootc runs the OSTree backend as a bootc host: its `bootc status --format=json`, rendered
// from the real sysroot, is parsed by the daemon's bootc parser through provisioning, a switch to a
// layered image and the reboot; kernel argument changes are refused as bootc does.
func TestOSTreeHostBootc(t *testing.T) {
	requireOSTree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	base, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref("testimages/base", ":latest"))
	if err != nil {
		t.Fatal(err)
	}
	layered := buildLayered(ctx, t, reg, base)
	ca, err := os.ReadFile(filepath.Join(reg.CertDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(t.TempDir(), Options{Backend: BackendOSTree, Tool: ToolBootc, Kargs: []string{"rw"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Provision(ctx, base, reg.DockerConfigJSON(), map[string][]byte{strings.ReplaceAll(reg.Host, ":", ".."): ca}); err != nil {
		t.Fatal(err)
	}
	osu := h.OS()
	if err := osu.Rebase(ctx, layered, KubeletAuthFile); err != nil {
		t.Fatal(err)
	}
	raw, err := h.BootcStatusJSON(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil || doc["apiVersion"] != "org.containers.bootc/v1" || doc["kind"] != "BootcHost" {
		t.Fatalf("bootc status: %s (%v)", raw, err)
	}
	st, err := osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Staged == nil || st.Staged.Image() != layered || st.BootedImage() != base || st.Booted.Version != testimages.DefaultVersion ||
		!strings.HasSuffix(base, st.BootedImageDigest()) || st.Booted.ID != osName+"-"+h.bootedName() {
		t.Fatalf("bootc status after the switch: %+v\n%s", st.Deployments, raw)
	}
	if err := osu.Kargs(ctx, []string{"--append=x=1"}); !errors.Is(err, daemon.ErrUnsupportedByBootc) {
		t.Errorf("kargs on a bootc host: %v", err)
	}
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	st, err = osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != layered || st.Staged != nil || len(st.Deployments) != 2 || st.Deployments[1].Image() != base {
		t.Fatalf("bootc status after the reboot: %+v", st.Deployments)
	}
	if got := readHostFile(t, h, "/usr/share/simhost-test"); got != "hi\n" {
		t.Errorf("layered file after the reboot: %q", got)
	}
	if calls := h.Calls(); !slices.Contains(calls, "bootc switch --transport registry "+layered) {
		t.Errorf("calls %q lack the bootc switch", calls)
	}
}
