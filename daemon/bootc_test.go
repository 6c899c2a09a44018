package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The bootc backend on outputs of `bootc status --format=json` in bootc's documented schema
// (org.containers.bootc/v1 BootcHost: spec.image, spec.bootOrder, status.staged/booted/rollback with
// image.image.{image,transport}, version, timestamp, imageDigest, architecture, ostree.{stateroot,
// checksum,deploySerial}; status.rollbackQueued, status.type), and on a host not booted by bootc.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return raw
}

func TestParseBootcStatus(t *testing.T) {
	t.Parallel()
	st, err := ParseBootcStatus(readTestdata(t, "bootc-status-staged.json"))
	require.NoError(t, err)
	require.Len(t, st.Deployments, 3)
	const staged = "quay.io/example/os@sha256:2b5c7f4b0d1e8a9c3f6e5d4c3b2a19080706050403020100f0e0d0c0b0a09080"
	const booted = "quay.io/example/os@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	assert.Equal(t, staged, st.Staged.Image())
	assert.True(t, st.Deployments[0].Staged)
	assert.Equal(t, booted, st.BootedImage())
	assert.Equal(t, "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", st.BootedImageDigest())
	assert.Equal(t, "9.6.20261101-0", st.Booted.Version)
	assert.Equal(t, "default-4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce.0", st.Booted.ID)
	assert.Equal(t, "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce", st.Booted.Checksum)
	assert.Equal(t, "ostree-unverified-registry:"+booted, st.Booted.ContainerImageReference)
	rollback := st.Deployments[2]
	assert.False(t, rollback.Booted || rollback.Staged)
	assert.True(t, rollback.Pinned)
	assert.Equal(t, "quay.io/example/os:9.6", rollback.Image(), "a tag stays a tag")
	assert.Equal(t, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", rollback.ImageDigest(), "the digest bootc recorded")
	assert.Equal(t, "default-6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b.1", rollback.ID)

	queued, err := ParseBootcStatus(readTestdata(t, "bootc-status-rollback-queued.json"))
	require.NoError(t, err)
	assert.Nil(t, queued.Staged)
	assert.Len(t, queued.Deployments, 2)
	assert.Equal(t, "", queued.Booted.Version, "a null version")

	_, err = ParseBootcStatus(readTestdata(t, "bootc-status-not-bootc.json"))
	assert.ErrorIs(t, err, ErrNoBootedDeployment)
}

func TestParseBootcStatusErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{name: "not json", in: "booted: yes", want: "parsing bootc status"},
		{name: "older api", in: `{"apiVersion":"org.containers.bootc/v1alpha1","kind":"BootcHost"}`, want: `apiVersion "org.containers.bootc/v1alpha1"`},
		{name: "other kind", in: `{"apiVersion":"org.containers.bootc/v1","kind":"Host"}`, want: `kind "Host"`},
		{name: "no image", in: `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","status":{"booted":{"image":null}}}`, want: "status.booted: no image"},
		{name: "unknown transport", in: `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","status":{"booted":{"image":{"image":{"image":"x","transport":"ftp"}}}}}`, want: `unknown transport "ftp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBootcStatus([]byte(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBootcImageReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   BootcImageReference
		want string
	}{
		{BootcImageReference{Image: "q/os@sha256:1", Transport: "registry"}, "ostree-unverified-registry:q/os@sha256:1"},
		{BootcImageReference{Image: "q/os:9", Transport: "containers-storage"}, "ostree-unverified-image:containers-storage:q/os:9"},
		{BootcImageReference{Image: "q/os:9", Transport: "registry", Signature: []byte(`{"ostreeRemote":"rhel"}`)}, "ostree-image-signed:registry:q/os:9"},
	} {
		got, err := bootcImageReference(tc.in)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
		ref, err := ParseImageReference(got)
		require.NoError(t, err, "the daemon's image reference parser reads it back")
		assert.Equal(t, tc.in.Image, ref.Image)
	}
}

// TestBootcCommands checks the commands the bootc backend runs.
func TestBootcCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	staged := readTestdata(t, "bootc-status-staged.json")
	queued := readTestdata(t, "bootc-status-rollback-queued.json")
	statusArgv := []string{"bootc", "status", "--format=json"}
	tests := []struct {
		name     string
		status   []byte
		call     func(b *BootcOS) error
		wantArgv [][]string
		wantErr  error
	}{
		{name: "switch", call: func(b *BootcOS) error { return b.Rebase(ctx, "q/os@sha256:1", "") },
			wantArgv: [][]string{{"bootc", "switch", "--transport", "registry", "q/os@sha256:1"}}},
		{name: "upgrade", call: func(b *BootcOS) error { return b.Upgrade(ctx) }, wantArgv: [][]string{{"bootc", "upgrade"}}},
		{name: "rollback", call: func(b *BootcOS) error { return b.Rollback(ctx) }, wantArgv: [][]string{{"bootc", "rollback"}}},
		{name: "cleanup pending", status: staged, call: func(b *BootcOS) error { return b.CleanupPending(ctx) },
			wantArgv: [][]string{statusArgv, {"ostree", "admin", "undeploy", "0"}}},
		{name: "cleanup pending, none staged", status: queued, call: func(b *BootcOS) error { return b.CleanupPending(ctx) },
			wantArgv: [][]string{statusArgv}},
		{name: "cleanup rollback after staged and booted", status: staged, call: func(b *BootcOS) error { return b.CleanupRollback(ctx) },
			wantArgv: [][]string{statusArgv, {"ostree", "admin", "undeploy", "2"}}},
		{name: "cleanup a queued rollback (the default)", status: queued, call: func(b *BootcOS) error { return b.CleanupRollback(ctx) },
			wantArgv: [][]string{statusArgv, {"ostree", "admin", "undeploy", "0"}}},
		{name: "kargs", call: func(b *BootcOS) error { return b.Kargs(ctx, []string{"kargs", "--append=a=1"}) }, wantErr: ErrUnsupportedByBootc},
		{name: "no kargs", call: func(b *BootcOS) error { return b.Kargs(ctx, []string{"kargs"}) }},
		{name: "packages", call: func(b *BootcOS) error { return b.UpdatePackages(ctx, []string{"usbguard"}, nil) }, wantErr: ErrUnsupportedByBootc},
		{name: "no packages", call: func(b *BootcOS) error { return b.UpdatePackages(ctx, nil, nil) }},
		{name: "kernel override", call: func(b *BootcOS) error { return b.OverrideKernel(ctx, []string{"kernel"}, []string{"kernel-rt-core"}) }, wantErr: ErrUnsupportedByBootc},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner := &fakeRunner{respond: func(argv []string) ([]byte, error) {
				if argv[0] == "bootc" && argv[1] == "status" {
					return tc.status, nil
				}
				return nil, nil
			}}
			err := tc.call(&BootcOS{Runner: runner, Root: Root(t.TempDir())})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Empty(t, runner.calls, "nothing runs")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantArgv, runner.calls)
		})
	}
}

func TestBootcRebaseLinksAuth(t *testing.T) {
	t.Parallel()
	root := Root(t.TempDir())
	runner := &fakeRunner{respond: func([]string) ([]byte, error) { return nil, nil }}
	require.NoError(t, (&BootcOS{Runner: runner, Root: root}).Rebase(context.Background(), "q/os@sha256:1", "/var/lib/kubelet/config.json"))
	target, err := os.Readlink(root.HostPath(OSTreeAuthPath))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/kubelet/config.json", target)

	failing := &fakeRunner{respond: func(argv []string) ([]byte, error) {
		return nil, failure(argv, 1, "error: Switching: pulling: unauthorized")
	}}
	err = (&BootcOS{Runner: failing, Root: root}).Rebase(context.Background(), "q/os@sha256:1", "")
	var ce *CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "switching to q/os@sha256:1: running bootc switch --transport registry q/os@sha256:1: exit status 1: error: Switching: pulling: unauthorized", err.Error())
}

func TestBootcKernelArgs(t *testing.T) {
	t.Parallel()
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	require.NoError(t, os.WriteFile(cmdline, []byte("BOOT_IMAGE=(hd0,gpt3)/boot/ostree/default-1/vmlinuz rw ostree=/ostree/boot.1/default/1/0 foo=\"a b\"\n"), 0o644))
	got, err := (&BootcOS{Cmdline: cmdline}).KernelArgs(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"BOOT_IMAGE=(hd0,gpt3)/boot/ostree/default-1/vmlinuz", "rw", "ostree=/ostree/boot.1/default/1/0", `foo="a b"`}, got)
}

func TestDetectOSUpdater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	has := func(tools ...string) *fakeRunner {
		return &fakeRunner{respond: func(argv []string) ([]byte, error) {
			for _, tool := range tools {
				if argv[0] == tool {
					return []byte(tool + " 1.0\n"), nil
				}
			}
			return nil, failure(argv, 127, "chroot: failed to run command '"+argv[0]+"': No such file or directory")
		}}
	}
	osu, err := DetectOSUpdater(ctx, has("rpm-ostree", "bootc"), "/")
	require.NoError(t, err)
	assert.IsType(t, &RpmOstree{}, osu, "rpm-ostree first, as the reference")
	osu, err = DetectOSUpdater(ctx, has("bootc"), "/")
	require.NoError(t, err)
	assert.IsType(t, &BootcOS{}, osu)
	_, err = DetectOSUpdater(ctx, has(), "/")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "neither rpm-ostree nor bootc") && strings.Contains(err.Error(), "No such file"), err.Error())
	assert.False(t, errors.Is(err, ErrNoBootedDeployment))
}

func FuzzParseBootcStatus(f *testing.F) {
	for _, name := range []string{"bootc-status-staged.json", "bootc-status-rollback-queued.json", "bootc-status-not-bootc.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseBootcStatus(data)
		if err != nil {
			return
		}
		if st.Booted == nil || !st.Booted.Booted {
			t.Fatalf("parsed without a booted deployment: %+v", st)
		}
		for _, d := range st.Deployments {
			if _, err := ParseImageReference(d.ContainerImageReference); err != nil {
				t.Fatalf("deployment %s: image reference %q does not parse back: %v", d.ID, d.ContainerImageReference, err)
			}
		}
	})
}
