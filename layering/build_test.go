package layering

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

func TestMain(m *testing.M) {
	if buildah.Reexec() {
		return
	}
	os.Exit(m.Run())
}

// buildChecks is appended to the docs' Containerfile: the build itself asserts what the configs stage baked
// in, in the image buildah made (set -x shows the failing check in the build log).
const buildChecks = `
RUN <<EOF
set -ex
command -v cowsay
test "$(cat /etc/layered/plain.conf)" = hello
test "$(cat /etc/layered/tuning.conf)" = vm.swappiness=10
test "$(stat -c %u:%g:%a /etc/layered/tuning.conf)" = 0:0:600
test "$(readlink /etc/layered/link)" = plain.conf
test "$(stat -c %u:%g:%a /etc/app)" = 0:0:750
test "$(stat -c %u:%g:%a /etc/app/conf.d)" = 0:0:755
test "$(stat -c %u:%g:%a /etc/app/conf.d/app.conf)" = 1001:1001:640
test "$(readlink /etc/systemd/system/multi-user.target.wants/hello.service)" = /etc/systemd/system/hello.service
grep -q GREETING=hi /etc/systemd/system/hello.service.d/10-env.conf
test "$(readlink /etc/systemd/system/masked.service)" = /dev/null
test "$(readlink /etc/systemd/system/multi-user.target.wants/osunit.service)" = /etc/systemd/system/osunit.service
test "$(stat -c %u:%g:%a /var/home/core/.ssh)" = 1000:1000:700
test "$(stat -c %u:%g:%a /var/home/core/.ssh/authorized_keys.d)" = 1000:1000:700
test "$(stat -c %u:%g:%a /var/home/core/.ssh/authorized_keys.d/ignition)" = 1000:1000:600
test "$(cat /home/core/.ssh/authorized_keys.d/ignition)" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 admin@example.com"
test "$(stat -c %u:%g:%a /var/home/core)" = 0:0:700
test "$(stat -c %u:%g:%a /var/home)" = 0:0:755
test "$(stat -c %u:%g:%a /etc)" = 0:0:755
test -L /home
grep -q '"name":"rendered-layered-image-' /etc/machine-config-daemon/currentconfig
EOF
`

// TestLayeredBuild composes a layered build from the docs' MachineOSConfig and a rendered config, builds it
// for real with buildah on the test base image, pushes it and reads its labels back.
func TestLayeredBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	sys := reg.SystemContext()
	base, err := testimages.Push(ctx, sys, testimages.Options{}, reg.Ref("testimages/base", ":latest"))
	require.NoError(t, err)

	cfg := ign3types.Config{
		Passwd: ign3types.Passwd{Users: []ign3types.PasswdUser{{Name: "core",
			SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 admin@example.com"}}}},
		Storage: ign3types.Storage{
			Files: []ign3types.File{
				file("/etc/layered/plain.conf", plainSource("hello\n")),
				file("/etc/layered/tuning.conf", base64Source(gzipped(t, "vm.swappiness=10\n")), func(f *ign3types.File) {
					f.Contents.Compression = ptr("gzip")
					f.Mode = ptr(0o600)
				}),
				file("/etc/app/conf.d/app.conf", plainSource("level=debug\n"), func(f *ign3types.File) {
					f.User.ID, f.Group.ID, f.Mode = ptr(1001), ptr(1001), ptr(0o640)
				}),
				// A unit the "OS" ships (written as a plain file here, since the test base has none to enable).
				file("/etc/systemd/system/osunit.service", plainSource("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")),
			},
			Directories: []ign3types.Directory{{Node: ign3types.Node{Path: "/etc/app"}, DirectoryEmbedded1: ign3types.DirectoryEmbedded1{Mode: ptr(0o750)}}},
			Links:       []ign3types.Link{{Node: ign3types.Node{Path: "/etc/layered/link"}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: ptr("plain.conf")}}},
		},
		Systemd: ign3types.Systemd{Units: []ign3types.Unit{
			{Name: "hello.service", Enabled: ptr(true), Contents: ptr(helloUnit),
				Dropins: []ign3types.Dropin{{Name: "10-env.conf", Contents: ptr("[Service]\nEnvironment=GREETING=hi\n")}}},
			{Name: "masked.service", Mask: ptr(true)},
			{Name: "osunit.service", Enabled: ptr(true)},
		}},
	}
	rendered := renderedMC(t, base, cfg)
	mosc := docsMachineOSConfig(t)
	mosc.Spec.Containerfile[0].Content += "\n" + buildChecks

	bc, err := Compose(Inputs{Rendered: rendered, MachineOSConfig: mosc})
	require.NoError(t, err)
	ctxDir := filepath.Join(t.TempDir(), "context")
	require.NoError(t, bc.WriteDir(ctxDir))

	store, err := buildah.OpenStore(buildah.StoreOptions{Root: filepath.Join(t.TempDir(), "storage")})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := buildah.CloseStore(store); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	var log bytes.Buffer
	id, err := buildah.Build(ctx, store, buildah.BuildOptions{ContextDir: ctxDir, Containerfile: ContainerfileName,
		Tag: "localhost/layered:test", SystemContext: sys, Output: &log})
	require.NoError(t, err, "build log:\n%s\nContainerfile:\n%s", log.String(), bc.Containerfile)
	assert.Contains(t, log.String(), "Installed: cowsay", "the docs' dnf step ran")

	dest := reg.Ref("os/layered", ":v1")
	_, err = buildah.Push(ctx, store, id, dest, sys, nil)
	require.NoError(t, err)
	info, err := registry.Inspect(ctx, sys, dest)
	require.NoError(t, err)
	assert.Equal(t, rendered.Name, info.Labels[LabelMachineConfig])
	assert.Equal(t, "layered-image", info.Labels[LabelMachineConfigPool])
	assert.Equal(t, base, info.Labels[LabelBaseOSImage])
	assert.Equal(t, testimages.DefaultVersion, info.Labels[testimages.LabelVersion], "the base image's labels are inherited")
}
