package layering

import (
	"github.com/imagemode/imagemode/internal/golden"

	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testOSImage = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:3f1c7e0f2b5a4d6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"

const helloUnit = `[Unit]
Description=Say hello

[Service]
Type=oneshot
ExecStart=/usr/bin/echo hello

[Install]
WantedBy=multi-user.target
`

// docsIgnition is a rendered config with one of everything a layered build bakes in.
func docsIgnition(t testing.TB) ign3types.Config {
	return ign3types.Config{
		Passwd: ign3types.Passwd{Users: []ign3types.PasswdUser{{Name: "core",
			SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 admin@example.com", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQKey2 ops@example.com"},
			PasswordHash:      ptr("$6$rounds=4096$salt$hash")}}},
		Storage: ign3types.Storage{
			Files: []ign3types.File{
				file("/etc/motd", plainSource("Welcome to a layered node\n")),
				file("/etc/layered/tuning.conf", base64Source(gzipped(t, "vm.swappiness=10\n")), func(f *ign3types.File) {
					f.Contents.Compression = ptr("gzip")
					f.Mode = ptr(0o600)
				}),
				file("/etc/containers/registries.conf", plainSource("unqualified-search-registries = ['registry.access.redhat.com']\n")),
				file("/etc/app/conf.d/app.conf", base64Source([]byte("level=debug\n")), func(f *ign3types.File) {
					f.User.ID, f.Group.ID = ptr(1001), ptr(1001)
				}),
				file("/var/home/core/notes.txt", plainSource("hi\n"), func(f *ign3types.File) {
					f.User.Name, f.Group.Name = ptr("core"), ptr("core")
				}),
			},
			Directories: []ign3types.Directory{{Node: ign3types.Node{Path: "/etc/app"}, DirectoryEmbedded1: ign3types.DirectoryEmbedded1{Mode: ptr(0o750)}}},
			Links:       []ign3types.Link{{Node: ign3types.Node{Path: "/etc/localtime"}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: ptr("../usr/share/zoneinfo/UTC")}}},
		},
		Systemd: ign3types.Systemd{Units: []ign3types.Unit{
			{Name: "hello.service", Enabled: ptr(true), Contents: ptr(helloUnit),
				Dropins: []ign3types.Dropin{{Name: "10-env.conf", Contents: ptr("[Service]\nEnvironment=GREETING=hi\n")}}},
			{Name: "masked.service", Mask: ptr(true)},
			{Name: "crio.service", Dropins: []ign3types.Dropin{{Name: "10-mco-default-madv.conf", Contents: ptr("[Service]\nEnvironment=GODEBUG=madvdontneed=1\n")}}},
			{Name: "kubelet-auto-node-size.service", Enabled: ptr(true)},
			{Name: "zincati.service", Enabled: ptr(false)},
		}},
	}
}

func TestComposeGolden(t *testing.T) {
	t.Parallel()
	docs := docsMachineOSConfig(t)
	multiArch := docsMachineOSConfig(t)
	multiArch.Spec.Containerfile = []mcfgv1.MachineOSContainerfile{
		{ContainerfileArch: mcfgv1.NoArch, Content: "FROM configs AS final\nRUN echo any arch && ostree container commit\n"},
		{ContainerfileArch: mcfgv1.Arm64, Content: "FROM configs AS final\nRUN echo arm64 only && ostree container commit\n"},
		{ContainerfileArch: mcfgv1.Amd64, Content: "FROM configs AS final\nRUN echo amd64 only && ostree container commit\n"},
	}
	minimal := ign3types.Config{Storage: ign3types.Storage{Files: []ign3types.File{file("/etc/motd", plainSource("hi\n"))}}}
	tests := []struct {
		name string
		in   Inputs
	}{
		{name: "docs", in: Inputs{Rendered: renderedMC(t, testOSImage, docsIgnition(t)), MachineOSConfig: docs, Arch: "amd64",
			MachineOSBuild: &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: "layered-image-6f4e1b2a"}}}},
		{name: "arch-arm64", in: Inputs{Rendered: renderedMC(t, testOSImage, minimal), MachineOSConfig: multiArch, Arch: "arm64"}},
		{name: "arch-riscv64-noarch", in: Inputs{Rendered: renderedMC(t, testOSImage, minimal), MachineOSConfig: multiArch, Arch: "riscv64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bc, err := Compose(tc.in)
			require.NoError(t, err)
			golden.Check(t, tc.name+".Containerfile", bc.Containerfile)
			golden.Check(t, tc.name+".context", []byte(listing(bc.Files)))
		})
	}
}

// TestComposeContent checks what the golden listing does not show: decoded contents, the owners and modes
// each COPY gives, the systemctl steps and the files exposed for the build's pulls.
func TestComposeContent(t *testing.T) {
	t.Parallel()
	rendered := renderedMC(t, testOSImage, docsIgnition(t))
	bc, err := Compose(Inputs{Rendered: rendered, MachineOSConfig: docsMachineOSConfig(t), Arch: "amd64"})
	require.NoError(t, err)
	cf := string(bc.Containerfile)

	assert.True(t, strings.HasPrefix(cf, "# "), "starts with the header comment")
	assert.Contains(t, cf, "FROM "+testOSImage+" AS configs\n")
	assert.Contains(t, cf, "\nFROM configs AS final\nRUN dnf install -y cowsay && \\\n  dnf clean all && \\\n  ostree container commit\n",
		"the docs' Containerfile is appended verbatim")
	assert.Contains(t, cf, "RUN systemctl enable 'kubelet-auto-node-size.service'\n")
	assert.Contains(t, cf, "RUN systemctl disable 'zincati.service'\n")
	assert.NotContains(t, cf, "hello.service'", "units with contents are enabled by the context's symlinks, not systemctl")
	assert.Contains(t, cf, `LABEL machineconfig="`+rendered.Name+`"`)
	assert.Contains(t, cf, `LABEL machineconfigpool="layered-image"`)
	assert.Contains(t, cf, `LABEL baseOSContainerImage="`+testOSImage+`"`)

	tests := []struct {
		dest     string
		mode     fs.FileMode
		uid, gid int
		content  string
		target   string
	}{
		{dest: "/etc/motd", mode: 0o644, content: "Welcome to a layered node\n"},
		{dest: "/etc/layered/tuning.conf", mode: 0o600, content: "vm.swappiness=10\n"},
		{dest: "/etc/app", mode: fs.ModeDir | 0o750},
		{dest: "/etc/app/conf.d/app.conf", mode: 0o644, uid: 1001, gid: 1001, content: "level=debug\n"},
		{dest: "/var/home/core/notes.txt", mode: 0o644, uid: 1000, gid: 1000, content: "hi\n"},
		{dest: "/var/home/core/.ssh", mode: fs.ModeDir | 0o700, uid: 1000, gid: 1000},
		{dest: "/var/home/core/.ssh/authorized_keys.d", mode: fs.ModeDir | 0o700, uid: 1000, gid: 1000},
		{dest: SSHKeysPath, mode: 0o600, uid: 1000, gid: 1000,
			content: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 admin@example.com\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQKey2 ops@example.com\n"},
		{dest: "/etc/localtime", mode: fs.ModeSymlink | 0o777, target: "../usr/share/zoneinfo/UTC"},
		{dest: "/etc/systemd/system/hello.service", mode: 0o644, content: helloUnit},
		{dest: "/etc/systemd/system/hello.service.d/10-env.conf", mode: 0o644, content: "[Service]\nEnvironment=GREETING=hi\n"},
		{dest: "/etc/systemd/system/multi-user.target.wants/hello.service", mode: fs.ModeSymlink | 0o777, target: "/etc/systemd/system/hello.service"},
		{dest: "/etc/systemd/system/masked.service", mode: fs.ModeSymlink | 0o777, target: "/dev/null"},
		{dest: "/etc/systemd/system/crio.service.d/10-mco-default-madv.conf", mode: 0o644, content: "[Service]\nEnvironment=GODEBUG=madvdontneed=1\n"},
	}
	for _, tc := range tests {
		f := contextFile(t, bc, tc.dest)
		assert.Equal(t, tc.mode, f.Mode, "%s mode", tc.dest)
		assert.Equal(t, [2]int{tc.uid, tc.gid}, [2]int{f.UID, f.GID}, "%s owner", tc.dest)
		assert.Equal(t, tc.content, string(f.Content), "%s content", tc.dest)
		assert.Equal(t, tc.target, f.Target, "%s link target", tc.dest)
	}

	current := contextFile(t, bc, CurrentConfigPath)
	var mc mcfgv1.MachineConfig
	require.NoError(t, json.Unmarshal(current.Content, &mc))
	assert.Equal(t, rendered.Name, mc.Name)
	assert.Equal(t, "MachineConfig", mc.Kind)
	assert.JSONEq(t, string(rendered.Spec.Config.Raw), string(mc.Spec.Config.Raw))

	assert.Equal(t, "unqualified-search-registries = ['registry.access.redhat.com']\n", string(bc.RegistriesConf))
	assert.Nil(t, bc.PolicyJSON)
	assert.Nil(t, bc.AdditionalCA)

	// A non-root COPY goes to a directory that may not exist: a root-owned empty COPY creates it first.
	assert.Regexp(t, `COPY --chown=0:0 files/empty/ /etc/app/conf.d/\nCOPY --chown=1001:1001 files/\d+/ /etc/app/conf.d/\n`, cf)
	// The core user's home exists: only its declared subdirectories are copied, never /var/home/core itself.
	assert.Regexp(t, `\nCOPY --chown=0:0 files/empty/ /var/home/core/\nCOPY --chown=1000:1000 files/\d+/ /var/home/core/\n`, cf)
}

func TestComposeIsDeterministic(t *testing.T) {
	t.Parallel()
	in := func() Inputs {
		return Inputs{Rendered: renderedMC(t, testOSImage, docsIgnition(t)), MachineOSConfig: docsMachineOSConfig(t), Arch: "amd64"}
	}
	a, err := Compose(in())
	require.NoError(t, err)
	b, err := Compose(in())
	require.NoError(t, err)
	assert.Equal(t, a, b)

	dirA, dirB := filepath.Join(t.TempDir(), "ctx"), filepath.Join(t.TempDir(), "ctx")
	require.NoError(t, a.WriteDir(dirA))
	require.NoError(t, b.WriteDir(dirB))
	assert.Equal(t, tree(t, dirA), tree(t, dirB))
}

func TestArchSelection(t *testing.T) {
	t.Parallel()
	cf := func(arch mcfgv1.ContainerfileArch, marker string) mcfgv1.MachineOSContainerfile {
		return mcfgv1.MachineOSContainerfile{ContainerfileArch: arch, Content: "FROM configs AS final\nRUN echo " + marker + "\n"}
	}
	tests := []struct {
		name  string
		files []mcfgv1.MachineOSContainerfile
		arch  string
		want  string
	}{
		{name: "exact arch over NoArch listed first", files: []mcfgv1.MachineOSContainerfile{cf(mcfgv1.NoArch, "noarch"), cf(mcfgv1.S390, "s390x")}, arch: "s390x", want: "s390x"},
		{name: "NoArch when the arch has none", files: []mcfgv1.MachineOSContainerfile{cf(mcfgv1.Amd64, "amd64"), cf(mcfgv1.NoArch, "noarch")}, arch: "ppc64le", want: "noarch"},
		{name: "empty arch means NoArch", files: []mcfgv1.MachineOSContainerfile{cf("", "unset")}, arch: "arm64", want: "unset"},
		{name: "the first NoArch", files: []mcfgv1.MachineOSContainerfile{cf(mcfgv1.NoArch, "first"), cf(mcfgv1.NoArch, "second")}, arch: "amd64", want: "first"},
		{name: "ppc64le", files: []mcfgv1.MachineOSContainerfile{cf(mcfgv1.Ppc, "ppc"), cf(mcfgv1.NoArch, "noarch")}, arch: "ppc64le", want: "ppc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mosc := docsMachineOSConfig(t)
			mosc.Spec.Containerfile = tc.files
			bc, err := Compose(Inputs{Rendered: renderedMC(t, testOSImage, ign3types.Config{}), MachineOSConfig: mosc, Arch: tc.arch})
			require.NoError(t, err)
			assert.Contains(t, string(bc.Containerfile), "RUN echo "+tc.want+"\n")
			assert.Equal(t, 1, strings.Count(string(bc.Containerfile), "RUN echo "))
		})
	}
}

func TestComposeErrors(t *testing.T) {
	t.Parallel()
	withFiles := func(files ...ign3types.File) ign3types.Config {
		return ign3types.Config{Storage: ign3types.Storage{Files: files}}
	}
	tests := []struct {
		name          string
		cfg           ign3types.Config
		mutate        func(*Inputs)
		want          string
		containerfile *ContainerfileError // when set, the error must be a *ContainerfileError equal to it
	}{
		{name: "no Containerfile", mutate: func(in *Inputs) { in.MachineOSConfig.Spec.Containerfile = nil },
			want: "has no Containerfile", containerfile: &ContainerfileError{Field: "spec.containerFile",
				Message: `MachineOSConfig "layered-image" has no Containerfile for architecture amd64 or NoArch`}},
		{name: "only another arch's Containerfile", mutate: func(in *Inputs) {
			in.MachineOSConfig.Spec.Containerfile = []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.Arm64, Content: "FROM configs\n"}}
		}, want: "has no Containerfile for architecture amd64"},
		{name: "empty Containerfile", mutate: func(in *Inputs) { in.MachineOSConfig.Spec.Containerfile[0].Content = " \n" },
			want: "spec.containerFile[0].content: MachineOSConfig \"layered-image\" has an empty Containerfile"},
		{name: "unknown instruction", mutate: func(in *Inputs) {
			in.MachineOSConfig.Spec.Containerfile[0].Content = "FROM configs AS final\nRUN true\nRUNN dnf install -y cowsay\n"
		}, containerfile: &ContainerfileError{Field: "spec.containerFile[0].content", Line: 3, Message: "unknown instruction: RUNN"}},
		{name: "parse error", mutate: func(in *Inputs) {
			in.MachineOSConfig.Spec.Containerfile[0].Content = "FROM configs AS final\nENV A=1 \\\n  B\n"
		}, containerfile: &ContainerfileError{Field: "spec.containerFile[0].content", Line: 3,
			Message: `Syntax error - can't find = in "B". Must be of the form: name=value`}},
		{name: "instruction without arguments", mutate: func(in *Inputs) {
			in.MachineOSConfig.Spec.Containerfile[0].Content = "FROM configs AS final\nRUN\n"
		}, containerfile: &ContainerfileError{Field: "spec.containerFile[0].content", Line: 2, Message: "RUN requires at least one argument"}},
		{name: "escape directive", mutate: func(in *Inputs) {
			in.MachineOSConfig.Spec.Containerfile[0].Content = "# escape=`\nFROM configs AS final\nRUN echo `\n  hi\n"
		}, want: "escape parser directive"},
		{name: "remote source", cfg: withFiles(file("/etc/a", "data:,a"), file("/etc/b", "https://example.com/b")),
			want: "spec.config.storage.files[1].contents.source: remote sources (https) are not supported in layered builds: builds run offline, so give the content of /etc/b inline"},
		{name: "s3 source", cfg: withFiles(file("/etc/b", "s3://bucket/b")), want: "remote sources (s3)"},
		{name: "append", cfg: withFiles(file("/etc/a", "data:,a", func(f *ign3types.File) {
			f.Append = []ign3types.Resource{{Source: ptr("data:,b")}}
		})), want: "spec.config.storage.files[0].append: appending to files is not supported"},
		{name: "hard link", cfg: ign3types.Config{Storage: ign3types.Storage{Links: []ign3types.Link{
			{Node: ign3types.Node{Path: "/etc/a"}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: ptr("/etc/b"), Hard: ptr(true)}}}}},
			want: "spec.config.storage.links[0].hard: hard links are not supported in layered builds"},
		{name: "unmanaged file path", cfg: withFiles(file("/usr/lib/foo.conf", "data:,a")),
			want: `spec.config.storage.files[0].path: "/usr/lib/foo.conf" is not a path a layered image can manage`},
		{name: "unmanaged directory", cfg: ign3types.Config{Storage: ign3types.Storage{Directories: []ign3types.Directory{{Node: ign3types.Node{Path: "/boot/x"}}}}},
			want: `spec.config.storage.directories[0].path: "/boot/x" is not a path`},
		{name: "extensions requested", mutate: func(in *Inputs) { in.Rendered.Spec.Extensions = []string{"usbguard", "kerberos"} },
			want: "spec.extensions: extensions (usbguard, kerberos) are not supported in layered builds yet"},
		{name: "realtime kernel", mutate: func(in *Inputs) { in.Rendered.Spec.KernelType = "realtime" },
			want: `spec.kernelType: kernel type "realtime" is not supported in layered builds yet`},
		{name: "no base image", mutate: func(in *Inputs) { in.Rendered.Spec.OSImageURL = "" }, want: "spec.osImageURL: a base OS image is required"},
		{name: "base image with a newline", mutate: func(in *Inputs) { in.Rendered.Spec.OSImageURL = "quay.io/a\nRUN evil" }, want: "spec.osImageURL"},
		{name: "user by unknown name", cfg: withFiles(file("/etc/a", "data:,a", func(f *ign3types.File) { f.User.Name = ptr("bob") })),
			want: `spec.config.storage.files[0].user.name: "bob" cannot be resolved in a layered build`},
		{name: "unsupported compression", cfg: withFiles(file("/etc/a", "data:,a", func(f *ign3types.File) { f.Contents.Compression = ptr("xz") })),
			want: "invalid compression method"}, // Ignition's own validation
		{name: "corrupt gzip", cfg: withFiles(file("/etc/a", "data:,notgzip", func(f *ign3types.File) { f.Contents.Compression = ptr("gzip") })),
			want: "spec.config.storage.files[0].contents.source: decompressing gzip content"},
		{name: "hash mismatch", cfg: withFiles(file("/etc/a", "data:,a", func(f *ign3types.File) {
			f.Contents.Verification.Hash = ptr("sha256-0000000000000000000000000000000000000000000000000000000000000000")
		})), want: "spec.config.storage.files[0].contents.verification.hash: content does not match its hash"},
		{name: "file where an enabled unit's link goes", cfg: ign3types.Config{
			Storage: ign3types.Storage{Files: []ign3types.File{file("/etc/systemd/system/multi-user.target.wants/hello.service", "data:,x")}},
			Systemd: ign3types.Systemd{Units: []ign3types.Unit{{Name: "hello.service", Contents: ptr(helloUnit), Enabled: ptr(true)}}}},
			want: "spec.config.storage.files[0].path: /etc/systemd/system/multi-user.target.wants/hello.service is also written by spec.config.systemd.units[0].enabled"},
		{name: "file over the daemon's record", cfg: withFiles(file(CurrentConfigPath, "data:,x")),
			want: "spec.config.storage.files[0].path: /etc/machine-config-daemon/currentconfig is also written by the daemon's record"},
		{name: "file below a file", cfg: withFiles(file("/etc/a", "data:,a"), file("/etc/a/b", "data:,b")),
			want: "spec.config.storage.files[1].path: /etc/a/b is below /etc/a, which spec.config.storage.files[0].path does not make a directory"},
		{name: "directory name a COPY cannot carry", cfg: withFiles(file("/etc/my dir/a", "data:,a")),
			want: `spec.config.storage.files[0].path: directory "/etc/my dir" cannot be a COPY destination`},
		{name: "other user", cfg: ign3types.Config{Passwd: ign3types.Passwd{Users: []ign3types.PasswdUser{{Name: "core"}, {Name: "alice"}}}},
			want: `spec.config.passwd.users[1].name: only the "core" user can be configured, not "alice"`},
		{name: "bad unit name", cfg: ign3types.Config{Systemd: ign3types.Systemd{Units: []ign3types.Unit{{Name: "x'; rm -rf /; '.service", Enabled: ptr(true)}}}},
			want: "spec.config.systemd.units[0].name"},
		{name: "disks", cfg: ign3types.Config{Storage: ign3types.Storage{Disks: []ign3types.Disk{{Device: "/dev/sdb"}}}},
			want: "spec.config.storage.disks: storage devices cannot be configured in a layered image"},
		{name: "missing inputs", mutate: func(in *Inputs) { in.MachineOSConfig = nil }, want: "are required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Inputs{Rendered: renderedMC(t, testOSImage, tc.cfg), MachineOSConfig: docsMachineOSConfig(t), Arch: "amd64"}
			if tc.mutate != nil {
				tc.mutate(&in)
			}
			_, err := Compose(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var cerr *ContainerfileError
			isContainerfile := errors.As(err, &cerr)
			if tc.containerfile != nil {
				require.True(t, isContainerfile, "want a *ContainerfileError, got %T: %v", err, err)
				assert.Equal(t, tc.containerfile, cerr)
			} else if !strings.Contains(tc.name, "Containerfile") && tc.name != "escape directive" {
				assert.False(t, isContainerfile, "a config error must not look like an invalid Containerfile: %v", err)
			}
		})
	}
}

func TestDecodeResource(t *testing.T) {
	t.Parallel()
	compressed := gzipped(t, "unpacked\n")
	sha256Of := func(b []byte) string { h := sha256.Sum256(b); return "sha256-" + hex.EncodeToString(h[:]) }
	sha512Of := func(b []byte) string { h := sha512.Sum512(b); return "sha512-" + hex.EncodeToString(h[:]) }
	tests := []struct {
		name    string
		r       ign3types.Resource
		want    string
		wantErr string
	}{
		{name: "no source is an empty file", r: ign3types.Resource{}, want: ""},
		{name: "percent-encoded", r: ign3types.Resource{Source: ptr(plainSource("a b\n"))}, want: "a b\n"},
		{name: "base64", r: ign3types.Resource{Source: ptr(base64Source([]byte{0, 1, 'x'}))}, want: "\x00\x01x"},
		{name: "gzip", r: ign3types.Resource{Source: ptr(base64Source(compressed)), Compression: ptr("gzip")}, want: "unpacked\n"},
		{name: "empty compression is none", r: ign3types.Resource{Source: ptr("data:,x"), Compression: ptr("")}, want: "x"},
		{name: "sha512 of the content", r: ign3types.Resource{Source: ptr("data:,x"),
			Verification: ign3types.Verification{Hash: ptr(sha512Of([]byte("x")))}}, want: "x"},
		{name: "sha256 of the compressed content", r: ign3types.Resource{Source: ptr(base64Source(compressed)), Compression: ptr("gzip"),
			Verification: ign3types.Verification{Hash: ptr(sha256Of(compressed))}}, want: "unpacked\n"},
		{name: "sha256 of the uncompressed content is wrong", r: ign3types.Resource{Source: ptr(base64Source(compressed)), Compression: ptr("gzip"),
			Verification: ign3types.Verification{Hash: ptr(sha256Of([]byte("unpacked\n")))}}, wantErr: "f.verification.hash: content does not match its hash"},
		{name: "unknown hash function", r: ign3types.Resource{Source: ptr("data:,x"), Verification: ign3types.Verification{Hash: ptr("md5-00")}},
			wantErr: `f.verification.hash: unsupported hash function "md5"`},
		{name: "bad data URL", r: ign3types.Resource{Source: ptr("data:;base64,@@@")}, wantErr: "f.source: decoding data URL"},
		{name: "http", r: ign3types.Resource{Source: ptr("http://example.com/x")}, wantErr: "f.source: remote sources (http)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeResource(tc.r, "/etc/f", "f")
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			assert.NotNil(t, got)
		})
	}
}

// TestComposePinnedBase: a pinned base image replaces the osImageURL in FROM only; the label keeps the
// osImageURL, and an invalid pin is refused.
func TestComposePinnedBase(t *testing.T) {
	t.Parallel()
	const tagged = "registry.example.com/os/rhcos:4.19"
	const pinned = "registry.example.com/os/rhcos@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	in := Inputs{Rendered: renderedMC(t, tagged, docsIgnition(t)), MachineOSConfig: docsMachineOSConfig(t), Arch: "amd64"}
	plain, err := Compose(in)
	require.NoError(t, err)
	assert.Contains(t, string(plain.Containerfile), "FROM "+tagged+" AS configs\n")

	in.BaseImage = pinned
	bc, err := Compose(in)
	require.NoError(t, err)
	cf := string(bc.Containerfile)
	assert.Contains(t, cf, "FROM "+pinned+" AS configs\n")
	assert.NotContains(t, cf, "FROM "+tagged)
	assert.Contains(t, cf, `LABEL baseOSContainerImage="`+tagged+`"`)
	assert.Equal(t, plain.Files, bc.Files, "only the FROM line changes")

	in.BaseImage = "Not A Reference"
	_, err = Compose(in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "base image")
}
