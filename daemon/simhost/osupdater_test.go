package simhost

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/imagemode/imagemode/daemon"
)

func TestApplyKargs(t *testing.T) {
	tests := []struct {
		name    string
		cur     []string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "append", cur: []string{"rw"}, args: []string{"--append=a=1", "--append=b"}, want: []string{"rw", "a=1", "b"}},
		{name: "delete then append, whatever the order", cur: []string{"rw", "a=1"},
			args: []string{"--append=a=2", "--delete-if-present=a=1"}, want: []string{"rw", "a=2"}},
		{name: "delete-if-present of an absent one", cur: []string{"rw"}, args: []string{"--delete-if-present=x"}, want: []string{"rw"}},
		{name: "delete removes the first equal one", cur: []string{"x", "y", "x"}, args: []string{"--delete=x"}, want: []string{"y", "x"}},
		{name: "delete of an absent one", cur: []string{"rw"}, args: []string{"--delete=x"}, wantErr: `no kernel argument "x"`},
		{name: "append-if-missing", cur: []string{"a"}, args: []string{"--append-if-missing=a", "--append-if-missing=b"}, want: []string{"a", "b"}},
		{name: "quoted value", cur: nil, args: []string{`--append=foo="a b"`}, want: []string{`foo="a b"`}},
		{name: "unknown option", cur: []string{"rw"}, args: []string{"--replace=a=1=2"}, wantErr: "unknown option --replace"},
		{name: "no value", cur: []string{"rw"}, args: []string{"--append"}, wantErr: `argument "--append"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyKargs(tc.cur, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// What the daemon passes: KargsArgs' output, leading "kargs" included, applies to the old arguments.
	args, err := daemon.KargsArgs([]string{"a=1 b"}, []string{"a=1 c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := applyKargs([]string{"rw", "a=1", "b"}, args[1:])
	if err != nil || !slices.Equal(got, []string{"rw", "a=1", "c", "d"}) {
		t.Errorf("KargsArgs %q applied: %q, %v", args, got, err)
	}
}

// seedImage unpacks a fake image (files: path → content; "->target" makes a symlink) as content of dgst,
// as a finished pull would, so Rebase to an image of that digest needs no registry.
func seedImage(t *testing.T, h *Host, dgst digest.Digest, version string, files map[string]string) {
	t.Helper()
	tree := h.tree(dgst.Encoded())
	for p, c := range files {
		full := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(contentMeta{Digest: dgst.String(), Version: version})
	if err := os.WriteFile(h.path(contentDir, dgst.Encoded(), contentMetaFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readHostFile(t *testing.T, h *Host, p string) string {
	t.Helper()
	b, err := os.ReadFile(h.Root().HostPath(p))
	if errors.Is(err, fs.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRebaseBootKargsWithoutRegistry drives deployments over images already unpacked: staging, the /usr
// swap and /etc merge of Boot, an interrupted Boot, kargs and cleanups.
func TestRebaseBootKargsWithoutRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h, err := New(dir, Options{Kargs: []string{"rw", "root=LABEL=root"}})
	if err != nil {
		t.Fatal(err)
	}
	osu := h.OS()
	if _, err := osu.Status(ctx); !errors.Is(err, daemon.ErrNoBootedDeployment) {
		t.Fatalf("status of an unprovisioned host: %v", err)
	}
	dA, dB := digest.FromString("image A"), digest.FromString("image B")
	imgA, imgB := "registry.example/os@"+dA.String(), "registry.example/os@"+dB.String()
	seedImage(t, h, dA, "A.1", map[string]string{
		"usr/bin/a": "A", "usr/lib/os-release": "A", "bin": "->usr/bin", "tmp/.keep": "",
		"etc/keep.conf": "A1", "etc/mod.conf": "A1", "etc/gone.conf": "A1", "etc/gonemod.conf": "A1",
		"etc/locdel.conf": "A1", "etc/os-release": "->../usr/lib/os-release",
	})
	if err := osu.Rebase(ctx, "registry.example/os:latest", ""); err == nil || !strings.Contains(err.Error(), "by digest") {
		t.Fatalf("rebase by tag: %v", err)
	}
	if err := osu.Rebase(ctx, imgA, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	st, err := osu.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BootedImage() != imgA || st.BootedImageDigest() != dA.String() || st.Staged != nil || st.Booted.Version != "A.1" {
		t.Fatalf("after first boot: %+v", st.Deployments)
	}
	for p, want := range map[string]string{"/usr/bin/a": "A", "/bin/a": "A", "/etc/keep.conf": "A1", "/etc/os-release": "A"} {
		if got := readHostFile(t, h, p); got != want {
			t.Errorf("after first boot %s = %q, want %q", p, got, want)
		}
	}

	// Local changes.
	writeHostFile(t, h, "/etc/mod.conf", "LOCAL")
	writeHostFile(t, h, "/etc/gonemod.conf", "LOCAL")
	writeHostFile(t, h, "/etc/local.conf", "LOCAL")
	writeHostFile(t, h, "/var/lib/data", "DATA")
	writeHostFile(t, h, "/run/x", "RUN")
	if err := h.Root().RemoveFile("/etc/locdel.conf"); err != nil {
		t.Fatal(err)
	}

	// Seeded now: content no deployment uses is removed at every change.
	seedImage(t, h, dB, "B.1", map[string]string{
		"usr/bin/b": "B", "usr/lib/os-release": "B", "bin": "->usr/bin",
		"etc/keep.conf": "B1", "etc/mod.conf": "B1", "etc/locdel.conf": "B1", "etc/sub/new.conf": "B1",
		"etc/os-release": "->../usr/lib/os-release",
	})
	if err := osu.Rebase(ctx, imgB, ""); err != nil {
		t.Fatal(err)
	}
	st, _ = osu.Status(ctx)
	if st.Staged == nil || st.Staged.Image() != imgB || st.BootedImage() != imgA || st.Deployments[0].ID != st.Staged.ID {
		t.Fatalf("after rebase: %+v", st.Deployments)
	}
	if got := readHostFile(t, h, "/usr/bin/b"); got != "<absent>" {
		t.Errorf("staged file visible before boot: %q", got)
	}
	// Kargs carried over from the booted deployment, changed on the staged one.
	if err := osu.Kargs(ctx, []string{"kargs", "--append=x=1"}); err != nil {
		t.Fatal(err)
	}
	bootID, _ := h.BootID()
	if err := h.Boot(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"/usr/bin/b": "B", "/usr/bin/a": "<absent>", "/etc/os-release": "B",
		"/etc/keep.conf": "B1", "/etc/mod.conf": "LOCAL", "/etc/gone.conf": "<absent>", "/etc/gonemod.conf": "LOCAL",
		"/etc/locdel.conf": "<absent>", "/etc/sub/new.conf": "B1", "/etc/local.conf": "LOCAL",
		"/var/lib/data": "DATA", "/run/x": "<absent>",
	} {
		if got := readHostFile(t, h, p); got != want {
			t.Errorf("after boot into B %s = %q, want %q", p, got, want)
		}
	}
	if got, _ := h.BootID(); got == bootID {
		t.Error("boot id unchanged")
	}
	if b, err := fsRead(filepath.Join(h.tree(dA.Encoded()), "usr/bin/a")); err != nil || b != "A" {
		t.Errorf("rollback's /usr not swapped back into its deployment: %q %v", b, err)
	}
	st, _ = osu.Status(ctx)
	if len(st.Deployments) != 2 || st.BootedImage() != imgB || st.Deployments[1].Image() != imgA || st.Deployments[1].Booted {
		t.Fatalf("after boot into B: %+v", st.Deployments)
	}
	if ka, _ := osu.KernelArgs(ctx); !slices.Equal(ka, []string{"rw", "root=LABEL=root", "x=1"}) {
		t.Errorf("kargs after boot: %q", ka)
	}

	// A Boot back to A interrupted after swapping /usr: reopening puts B's /usr back.
	if err := h.placeUsr(dA.Encoded()); err != nil {
		t.Fatal(err)
	}
	if got := readHostFile(t, h, "/usr/bin/a"); got != "A" {
		t.Fatalf("simulated interruption did not swap: %q", got)
	}
	h, err = New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	osu = h.OS()
	if got := readHostFile(t, h, "/usr/bin/b"); got != "B" {
		t.Errorf("after reopening, /usr/bin/b = %q", got)
	}

	// Kargs with nothing staged stage the booted image again (same content, next serial).
	if err := osu.Kargs(ctx, []string{"--delete-if-present=x=1", "--append=y"}); err != nil {
		t.Fatal(err)
	}
	st, _ = osu.Status(ctx)
	if st.Staged == nil || st.Staged.Checksum != st.Booted.Checksum || st.Staged.ID == st.Booted.ID || st.Staged.Image() != imgB {
		t.Fatalf("kargs staging: %+v", st.Deployments)
	}
	if ka, _ := osu.KernelArgs(ctx); !slices.Equal(ka, []string{"rw", "root=LABEL=root", "y"}) {
		t.Errorf("kargs staged: %q", ka)
	}
	if err := osu.Kargs(ctx, []string{"--bogus=1"}); err == nil {
		t.Error("unknown kargs option accepted")
	}
	if err := osu.CleanupPending(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = osu.Status(ctx)
	if st.Staged != nil || len(st.Deployments) != 2 {
		t.Fatalf("after cleanup -p: %+v", st.Deployments)
	}
	if got := readHostFile(t, h, "/usr/bin/b"); got != "B" {
		t.Errorf("cleanup of a staged deployment sharing the booted content broke /usr: %q", got)
	}
	if ka, _ := osu.KernelArgs(ctx); !slices.Equal(ka, []string{"rw", "root=LABEL=root", "x=1"}) {
		t.Errorf("kargs after cleanup: %q", ka)
	}
	// Rebasing to the booted image with nothing staged changes nothing.
	if err := osu.Rebase(ctx, imgB, ""); err != nil {
		t.Fatal(err)
	}
	if st, _ := osu.Status(ctx); st.Staged != nil {
		t.Error("rebase to the booted image staged a deployment")
	}
	if err := osu.CleanupRollback(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = osu.Status(ctx)
	if len(st.Deployments) != 1 {
		t.Fatalf("after cleanup -r: %+v", st.Deployments)
	}
	if _, err := fsRead(h.path(contentDir, dA.Encoded(), contentMetaFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rollback content not removed: %v", err)
	}
	wantCalls := []string{
		"rpm-ostree rebase --experimental ostree-unverified-registry:" + imgA,
		"rpm-ostree rebase --experimental ostree-unverified-registry:" + imgB,
		"rpm-ostree kargs --append=x=1",
		"rpm-ostree kargs --delete-if-present=x=1 --append=y",
		"rpm-ostree kargs --bogus=1",
		"rpm-ostree cleanup -p",
		"rpm-ostree rebase --experimental ostree-unverified-registry:" + imgB,
		"rpm-ostree cleanup -r",
	}
	if got := h.Calls(); !slices.Equal(got, wantCalls) {
		t.Errorf("calls:\n got %q\nwant %q", got, wantCalls)
	}
}

func fsRead(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
