package daemon

import (
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	unit := func(name, contents string, f ...func(*ign3types.Unit)) ign3types.Unit {
		u := ign3types.Unit{Name: name, Contents: ptr(contents)}
		for _, fn := range f {
			fn(&u)
		}
		return u
	}
	tests := []struct {
		name     string
		old, new []cfgOpt
		nilOld   bool
		want     ConfigDiff
	}{
		{
			name: "identical configs",
			old:  []cfgOpt{withFile("/etc/a", plainURL("x")), withUnit(unit("a.service", "[Unit]")), withCore("h", "k1")},
			new:  []cfgOpt{withFile("/etc/a", plainURL("x")), withUnit(unit("a.service", "[Unit]")), withCore("h", "k1")},
		},
		{
			name: "same content encoded differently is no change",
			old:  []cfgOpt{withFile("/etc/a", plainURL("hello")), withFile("/etc/b", base64URL("b"))},
			new: []cfgOpt{
				withFile("/etc/a", gzipURL(t, "hello"), func(f *ign3types.File) { f.Contents.Compression = ptr("gzip") }),
				withFile("/etc/b", plainURL("b"), func(f *ign3types.File) { f.Mode = ptr(0o644) }),
			},
		},
		{
			name: "files added changed removed, sorted",
			old: []cfgOpt{
				withFile("/etc/z", plainURL("z")), withFile("/etc/c", plainURL("c")), withFile("/etc/gone2", ""), withFile("/etc/gone1", ""),
			},
			new: []cfgOpt{
				withFile("/etc/z", plainURL("z2")), withFile("/etc/c", plainURL("c2")), withFile("/etc/new2", ""), withFile("/etc/new1", ""),
			},
			want: ConfigDiff{Files: PathChanges{
				Added: []string{"/etc/new1", "/etc/new2"}, Changed: []string{"/etc/c", "/etc/z"}, Removed: []string{"/etc/gone1", "/etc/gone2"},
			}},
		},
		{
			name: "mode change",
			old:  []cfgOpt{withFile("/etc/a", plainURL("x"))},
			new:  []cfgOpt{withFile("/etc/a", plainURL("x"), func(f *ign3types.File) { f.Mode = ptr(0o600) })},
			want: ConfigDiff{Files: PathChanges{Changed: []string{"/etc/a"}}},
		},
		{
			name: "owner change; root by name equals no owner",
			old: []cfgOpt{
				withFile("/etc/a", plainURL("x")),
				withFile("/etc/b", plainURL("x")),
			},
			new: []cfgOpt{
				withFile("/etc/a", plainURL("x"), func(f *ign3types.File) { f.User.ID = ptr(1000) }),
				withFile("/etc/b", plainURL("x"), func(f *ign3types.File) { f.User.Name = ptr("root"); f.Group.ID = ptr(0) }),
			},
			want: ConfigDiff{Files: PathChanges{Changed: []string{"/etc/a"}}},
		},
		{
			name: "units added updated removed, incl. enabled, mask and drop-ins",
			old: []cfgOpt{
				withUnit(unit("a.service", "A")),
				withUnit(unit("b.service", "B")),
				withUnit(unit("c.service", "C", func(u *ign3types.Unit) { u.Dropins = []ign3types.Dropin{{Name: "10.conf", Contents: ptr("x")}} })),
				withUnit(unit("d.service", "D")),
				withUnit(unit("e.service", "E")),
				withUnit(unit("same.service", "S", func(u *ign3types.Unit) {
					u.Dropins = []ign3types.Dropin{{Name: "1.conf", Contents: ptr("1")}, {Name: "2.conf", Contents: ptr("2")}}
				})),
			},
			new: []cfgOpt{
				withUnit(unit("a.service", "A", func(u *ign3types.Unit) { u.Enabled = ptr(true) })),
				withUnit(unit("b.service", "B", func(u *ign3types.Unit) { u.Mask = ptr(true) })),
				withUnit(unit("c.service", "C", func(u *ign3types.Unit) { u.Dropins = []ign3types.Dropin{{Name: "10.conf", Contents: ptr("y")}} })),
				withUnit(unit("e.service", "E2")),
				withUnit(unit("f.service", "F")),
				withUnit(unit("same.service", "S", func(u *ign3types.Unit) {
					u.Dropins = []ign3types.Dropin{{Name: "2.conf", Contents: ptr("2")}, {Name: "1.conf", Contents: ptr("1")}}
				})),
			},
			want: ConfigDiff{Units: PathChanges{
				Added: []string{"f.service"}, Changed: []string{"a.service", "b.service", "c.service", "e.service"}, Removed: []string{"d.service"},
			}},
		},
		{
			name: "ssh keys and password hash",
			old:  []cfgOpt{withCore("h1", "k1")},
			new:  []cfgOpt{withCore("h2", "k1", "k2")},
			want: ConfigDiff{SSHKeys: true, PasswordHash: true},
		},
		{
			name: "whitespace around keys is no change",
			old:  []cfgOpt{withCore("", "k1")},
			new:  []cfgOpt{withCore("", " k1\n", "")},
		},
		{
			name: "os fields",
			old: []cfgOpt{withSpec(func(s *mcfgv1.MachineConfigSpec) {
				s.OSImageURL, s.KernelArguments, s.Extensions = "quay.io/os@sha256:1", []string{"a"}, []string{"usbguard"}
			})},
			new: []cfgOpt{withSpec(func(s *mcfgv1.MachineConfigSpec) {
				s.OSImageURL, s.KernelArguments, s.Extensions = "quay.io/os@sha256:2", []string{"a", "b"}, []string{"usbguard", "sysstat"}
				s.KernelType, s.FIPS = KernelTypeRealtime, true
			})},
			want: ConfigDiff{OSImageURL: true, KernelArguments: true, KernelType: true, Extensions: true, FIPS: true},
		},
		{
			name: "default kernel type and reordered extensions are no change",
			old:  []cfgOpt{withSpec(func(s *mcfgv1.MachineConfigSpec) { s.Extensions = []string{"b", "a"} })},
			new: []cfgOpt{withSpec(func(s *mcfgv1.MachineConfigSpec) {
				s.KernelType, s.Extensions = KernelTypeDefault, []string{"a", "b", "a"}
			})},
		},
		{
			name:   "nil old config adds everything",
			nilOld: true,
			new:    []cfgOpt{withFile("/etc/a", ""), withUnit(unit("a.service", "A")), withCore("", "k")},
			want:   ConfigDiff{Files: PathChanges{Added: []string{"/etc/a"}}, Units: PathChanges{Added: []string{"a.service"}}, SSHKeys: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var old *mcfgv1.MachineConfig
			if !tc.nilOld {
				old = newMC(t, "old", tc.old...)
			}
			got, err := Diff(old, newMC(t, "new", tc.new...))
			require.NoError(t, err)
			assert.Equal(t, tc.want, *got)
			assert.Equal(t, tc.want.Empty(), got.Empty())
		})
	}
}

func TestDiffErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		old     *mcfgv1.MachineConfig
		new     *mcfgv1.MachineConfig
		wantErr error
		wantMsg string
	}{
		{name: "no new config", old: newMC(t, "old"), wantErr: ErrNoConfig},
		{name: "remote source", old: newMC(t, "old"), new: newMC(t, "new", withFile("/etc/a", "https://example.com/a")), wantErr: ErrRemoteSource},
		{
			name: "bad gzip", old: newMC(t, "old"),
			new:     newMC(t, "new", withFile("/etc/a", plainURL("x"), func(f *ign3types.File) { f.Contents.Compression = ptr("gzip") })),
			wantMsg: `decoding files of new config "new": file /etc/a: source: decompressing gzip content`,
		},
		{
			name: "unparsable old config",
			old: func() *mcfgv1.MachineConfig {
				m := newMC(t, "old")
				m.Spec.Config = runtime.RawExtension{Raw: []byte("{")}
				return m
			}(),
			new:     newMC(t, "new"),
			wantMsg: `parsing current config "old"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Diff(tc.old, tc.new)
			require.Error(t, err)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

func TestPathChangesAll(t *testing.T) {
	t.Parallel()
	c := PathChanges{Added: []string{"/b"}, Changed: []string{"/c", "/a2"}, Removed: []string{"/a"}}
	assert.Equal(t, []string{"/a", "/a2", "/b", "/c"}, c.All())
}

func TestDecodeFileContents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		source      *string
		compression *string
		want        string
		wantErr     error
	}{
		{name: "no source is empty", want: ""},
		{name: "percent-encoded", source: ptr(plainURL("a b\n")), want: "a b\n"},
		{name: "base64", source: ptr(base64URL("secret")), want: "secret"},
		{name: "gzip", source: ptr(gzipURL(t, "zipped")), compression: ptr("gzip"), want: "zipped"},
		{name: "empty compression is none", source: ptr(plainURL("x")), compression: ptr(""), want: "x"},
		{name: "unsupported compression", source: ptr(plainURL("x")), compression: ptr("xz"), wantErr: ErrUnsupportedCompression},
		{name: "remote", source: ptr("s3://bucket/x"), wantErr: ErrRemoteSource},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := ign3types.File{Node: ign3types.Node{Path: "/etc/x"}}
			f.Contents.Source, f.Contents.Compression = tc.source, tc.compression
			got, err := DecodeFileContents(f)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}

func TestConfigFile(t *testing.T) {
	t.Parallel()
	mc := newMC(t, "c", withFile("/etc/a", gzipURL(t, "zipped"), func(f *ign3types.File) { f.Contents.Compression = ptr("gzip") }),
		withFile("/etc/remote", "http://example.com/x"))
	tests := []struct {
		name    string
		mc      *mcfgv1.MachineConfig
		path    string
		want    string
		wantOK  bool
		wantErr error
	}{
		{name: "decoded", mc: mc, path: "/etc/a", want: "zipped", wantOK: true},
		{name: "absent", mc: mc, path: "/etc/b"},
		{name: "nil config", path: "/etc/a"},
		{name: "undecodable", mc: mc, path: "/etc/remote", wantErr: ErrRemoteSource},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := ConfigFile(tc.mc, tc.path)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.want, string(got))
		})
	}
}
