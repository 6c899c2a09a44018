package simhost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/builder/buildah/buildahtest"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

func TestMain(m *testing.M) {
	if buildah.Reexec() {
		return
	}
	os.Exit(m.Run())
}

// layeredContainerfile adds a file under /usr and one under /etc, changes /etc/passwd and /etc/group and
// deletes a directory and a file of the base (whiteouts in the pushed layer).
const layeredContainerfile = `RUN echo hi > /usr/share/simhost-test && echo layered > /etc/simhost-test.conf && \
    echo 'simhost:x:1000:' >> /etc/group && echo 'simhost:x:1000:1000::/var/home/simhost:/bin/sh' >> /etc/passwd && \
    rm -r /usr/share/testrepo/htop && rm /usr/bin/testrepo-install && ostree container commit
`

// TestProvisionRebaseBootAgainstRegistry pulls the test base OS image and a layered image built with buildah
// from the local TLS+auth registry, with the node's own credentials and CAs, and boots them.
func TestProvisionRebaseBootAgainstRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	sys := reg.SystemContext()
	base, err := testimages.Push(ctx, sys, testimages.Options{}, reg.Ref("testimages/base", ":latest"))
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
	h, err := New(dir, Options{Kargs: []string{"rw"}})
	if err != nil {
		t.Fatal(err)
	}
	osu := h.OS()
	if err := h.Provision(ctx, base, reg.DockerConfigJSON(), cas); err != nil {
		t.Fatal(err)
	}
	st, err := osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != base || st.Staged != nil || st.Booted.Version != testimages.DefaultVersion {
		t.Fatalf("after provisioning: %+v", st.Deployments)
	}
	if fi, err := os.Stat(h.Root().HostPath(KubeletAuthFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("auth file: %v %v", fi, err)
	}
	if got := readHostFile(t, h, "/usr/lib/os-release"); !strings.Contains(got, testimages.DefaultVersion) {
		t.Errorf("base os-release not booted: %q", got)
	}
	if got := readHostFile(t, h, "/usr/bin/testrepo-install"); got == "<absent>" {
		t.Error("base file /usr/bin/testrepo-install missing")
	}
	if _, err := os.Stat(h.Root().HostPath("/usr/share/testrepo/htop")); err != nil {
		t.Errorf("base directory /usr/share/testrepo/htop missing: %v", err)
	}

	// A local change to a file the layered image also changes.
	passwd := readHostFile(t, h, "/etc/passwd") + "local:x:1001:1001::/var/home/local:/bin/sh\n"
	writeHostFile(t, h, "/etc/passwd", passwd)
	group := readHostFile(t, h, "/etc/group")

	// Wrong password in the node's auth file: an authentication error without secrets, nothing changes.
	wrong := "wrong-" + reg.Password
	wrongAuth, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + wrong))}}})
	writeHostFile(t, h, "/var/lib/kubelet/wrong.json", string(wrongAuth))
	err = osu.Rebase(ctx, layered, "/var/lib/kubelet/wrong.json")
	if err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Fatalf("rebase with a wrong password: %v", err)
	}
	t.Logf("wrong password: %v", err)
	if strings.Contains(err.Error(), reg.Password) {
		t.Error("error carries the password")
	}
	cancelled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if err := osu.Rebase(cancelled, layered, KubeletAuthFile); err == nil {
		t.Error("rebase with a cancelled context succeeded")
	}
	if after, err := osu.Status(ctx); err != nil || !reflect.DeepEqual(after.Deployments, st.Deployments) {
		t.Errorf("failed rebases changed the deployments: %+v, %v", after, err)
	}
	if entries, _ := os.ReadDir(h.path(contentDir)); len(entries) != 1 {
		t.Errorf("failed rebases left content: %v", entries)
	}
	if entries, _ := os.ReadDir(h.path(tmpDir)); len(entries) != 0 {
		t.Errorf("failed rebases left pulls: %v", entries)
	}

	if err := osu.Rebase(ctx, layered, KubeletAuthFile); err != nil {
		t.Fatal(err)
	}
	st, err = osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Staged == nil || st.Staged.Image() != layered || st.BootedImage() != base {
		t.Fatalf("after rebase: %+v", st.Deployments)
	}
	if got := readHostFile(t, h, "/usr/share/simhost-test"); got != "<absent>" {
		t.Errorf("layered file visible before the reboot: %q", got)
	}
	if err := osu.Kargs(ctx, []string{"kargs", "--append=simhost=1"}); err != nil {
		t.Fatal(err)
	}
	bootID, _ := h.BootID()
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"/usr/share/simhost-test":       "hi\n",
		"/etc/simhost-test.conf":        "layered\n",
		"/etc/passwd":                   passwd, // modified locally: kept
		"/etc/group":                    group + "simhost:x:1000:\n",
		"/usr/bin/testrepo-install":     "<absent>",
		"/usr/share/testrepo/htop/none": "<absent>",
	} {
		if got := readHostFile(t, h, p); got != want {
			t.Errorf("after boot %s = %q, want %q", p, got, want)
		}
	}
	if _, err := os.Lstat(h.Root().HostPath("/usr/share/testrepo/htop")); err == nil {
		t.Error("/usr/share/testrepo/htop deleted in the image but still on the node")
	}
	if id, _ := h.BootID(); id == bootID {
		t.Error("boot id unchanged by Boot")
	}
	st, err = osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != layered || st.Staged != nil || len(st.Deployments) != 2 || st.Deployments[1].Image() != base {
		t.Fatalf("after boot: %+v", st.Deployments)
	}
	if ka, _ := osu.KernelArgs(ctx); !slices.Equal(ka, []string{"rw", "simhost=1"}) {
		t.Errorf("kargs after boot: %q", ka)
	}

	// Kargs round trip on a staged copy of the booted deployment, then dropped.
	if err := osu.Kargs(ctx, []string{"--delete-if-present=simhost=1", "--append=simhost=2"}); err != nil {
		t.Fatal(err)
	}
	if ka, _ := osu.KernelArgs(ctx); !slices.Equal(ka, []string{"rw", "simhost=2"}) {
		t.Errorf("staged kargs: %q", ka)
	}
	if err := osu.CleanupPending(ctx); err != nil {
		t.Fatal(err)
	}
	if ka, _ := osu.KernelArgs(ctx); !slices.Equal(ka, []string{"rw", "simhost=1"}) {
		t.Errorf("kargs after cleanup -p: %q", ka)
	}

	// A "crash": the host opened again from its directory reports the same.
	before, _ := osu.Status(ctx)
	again, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := again.OS().Status(ctx)
	if err != nil || !reflect.DeepEqual(before.Deployments, after.Deployments) {
		t.Errorf("status after reopening:\n%+v\nwant\n%+v (%v)", after, before, err)
	}
	if got := readHostFile(t, again, "/usr/share/simhost-test"); got != "hi\n" {
		t.Errorf("after reopening /usr/share/simhost-test = %q", got)
	}
	calls := again.Calls()
	if !slices.Contains(calls, "rpm-ostree rebase --experimental ostree-unverified-registry:"+layered) {
		t.Errorf("calls %q lack the rebase", calls)
	}
}

// buildLayered builds layeredContainerfile on base with buildah and pushes it, returning repo@digest.
func buildLayered(ctx context.Context, t *testing.T, reg *localregistry.Registry, base string) string {
	t.Helper()
	return buildahtest.BuildAndPush(ctx, t, reg.SystemContext(), "FROM "+base+"\n"+layeredContainerfile, reg.Ref("os/layered", ":v1"))
}
