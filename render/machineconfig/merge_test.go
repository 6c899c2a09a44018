package machineconfig

import (
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func TestSortForMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		configs []*mcfgv1.MachineConfig
		want    []string
		wantErr string
	}{
		{name: "plain name order in a master pool",
			configs: []*mcfgv1.MachineConfig{mc("99-b", "master", ""), mc("00-a", "master", ""), mc("50-c", "master", "")},
			want:    []string{"00-a", "50-c", "99-b"}},
		{name: "worker configs first, then custom-pool configs, whatever the names",
			configs: []*mcfgv1.MachineConfig{mc("00-infra", "infra", ""), mc("99-worker", "worker", ""), mc("01-worker", "worker", "")},
			want:    []string{"01-worker", "99-worker", "00-infra"}},
		{name: "config without labels",
			configs: []*mcfgv1.MachineConfig{mc("a", "worker", ""), mc("b", "worker", "", func(m *mcfgv1.MachineConfig) { m.Labels = nil })},
			wantErr: `machineconfig "b": metadata.labels: Required value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SortForMerge(tc.configs)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			assert.Equal(t, tc.want, names)
		})
	}
}

func TestMergeIgnition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		configs []*mcfgv1.MachineConfig
		check   func(t *testing.T, spec *mcfgv1.MachineConfigSpec)
		wantErr string
	}{
		{
			name: "custom pool config beats every worker config at the same path",
			configs: []*mcfgv1.MachineConfig{
				mc("00-infra", "infra", fileIgn("/etc/a", "data:,infra", "")),
				mc("99-worker", "worker", fileIgn("/etc/a", "data:,worker", "")),
			},
			check: func(t *testing.T, spec *mcfgv1.MachineConfigSpec) {
				f := fileByPath(mustIgnition(t, spec), "/etc/a")
				require.NotNil(t, f)
				assert.Equal(t, "data:,infra", *f.Contents.Source)
			},
		},
		{
			name: "later file without compression does not inherit gzip",
			configs: []*mcfgv1.MachineConfig{
				mc("00-a", "worker", fileIgn("/etc/x", "data:;base64,H4sIAAAAAAAA/0rLz+cCAAAA//8BAAD//wOZNrAEAAAA", "gzip")),
				mc("01-b", "worker", fileIgn("/etc/x", "data:,plain", "")),
			},
			check: func(t *testing.T, spec *mcfgv1.MachineConfigSpec) {
				f := fileByPath(mustIgnition(t, spec), "/etc/x")
				require.NotNil(t, f)
				assert.Equal(t, "data:,plain", *f.Contents.Source)
				assert.Nil(t, f.Contents.Compression, "compression must not leak from the earlier file")
				assert.NotContains(t, string(spec.Config.Raw), `"compression":""`, "the merge marker must not reach the output")
			},
		},
		{
			name: "later gzip file keeps its compression",
			configs: []*mcfgv1.MachineConfig{
				mc("00-a", "worker", fileIgn("/etc/x", "data:,plain", "")),
				mc("01-b", "worker", fileIgn("/etc/x", "data:;base64,H4sI", "gzip")),
			},
			check: func(t *testing.T, spec *mcfgv1.MachineConfigSpec) {
				f := fileByPath(mustIgnition(t, spec), "/etc/x")
				require.NotNil(t, f)
				require.NotNil(t, f.Contents.Compression)
				assert.Equal(t, "gzip", *f.Contents.Compression)
			},
		},
		{
			name: "files default to overwrite true, an explicit false stays",
			configs: []*mcfgv1.MachineConfig{
				mc("00-a", "worker", fileIgn("/etc/default", "data:,x", "")),
				mc("01-b", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/keep","overwrite":false,"contents":{"source":"data:,y"}}]}}`),
			},
			check: func(t *testing.T, spec *mcfgv1.MachineConfigSpec) {
				cfg := mustIgnition(t, spec)
				assert.Equal(t, ptr.To(true), fileByPath(cfg, "/etc/default").Overwrite)
				assert.Equal(t, ptr.To(false), fileByPath(cfg, "/etc/keep").Overwrite)
			},
		},
		{
			name: "units and drop-ins merge by name, later wins",
			configs: []*mcfgv1.MachineConfig{
				mc("00-a", "worker", `{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"a.service","enabled":true,"contents":"[Service]\nExecStart=/a"},{"name":"b.service","dropins":[{"name":"10.conf","contents":"x"}]}]}}`),
				mc("01-b", "worker", `{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"a.service","enabled":false},{"name":"b.service","dropins":[{"name":"10.conf","contents":"y"},{"name":"20.conf","contents":"z"}]}]}}`),
			},
			check: func(t *testing.T, spec *mcfgv1.MachineConfigSpec) {
				cfg := mustIgnition(t, spec)
				require.Len(t, cfg.Systemd.Units, 2)
				a := cfg.Systemd.Units[0]
				assert.Equal(t, "a.service", a.Name)
				assert.Equal(t, ptr.To(false), a.Enabled, "later enabled wins")
				assert.Equal(t, "[Service]\nExecStart=/a", *a.Contents, "unset contents keep the earlier value")
				b := cfg.Systemd.Units[1]
				require.Len(t, b.Dropins, 2)
				assert.Equal(t, "y", *b.Dropins[0].Contents)
				assert.Equal(t, "20.conf", b.Dropins[1].Name)
			},
		},
		{
			name: "ssh keys are a union in order",
			configs: []*mcfgv1.MachineConfig{
				mc("00-a", "worker", `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAA one","ssh-ed25519 AAA two"]}]}}`),
				mc("01-b", "worker", `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAA two","ssh-ed25519 AAA three"]}]}}`),
			},
			check: func(t *testing.T, spec *mcfgv1.MachineConfigSpec) {
				cfg := mustIgnition(t, spec)
				require.Len(t, cfg.Passwd.Users, 1)
				var keys []string
				for _, k := range cfg.Passwd.Users[0].SSHAuthorizedKeys {
					keys = append(keys, string(k))
				}
				assert.Equal(t, []string{"ssh-ed25519 AAA one", "ssh-ed25519 AAA two", "ssh-ed25519 AAA three"}, keys)
			},
		},
		{
			name: "spec 2.2 and 3.1 inputs are converted",
			configs: []*mcfgv1.MachineConfig{
				mc("00-spec2", "worker", `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/from-spec2","mode":420,"contents":{"source":"data:,two"}}]}}`),
				mc("01-spec31", "worker", `{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/etc/from-spec31","contents":{"source":"data:,three"}}]}}`),
			},
			check: func(t *testing.T, spec *mcfgv1.MachineConfigSpec) {
				cfg := mustIgnition(t, spec)
				assert.Equal(t, IgnitionVersion, cfg.Ignition.Version)
				f := fileByPath(cfg, "/etc/from-spec2")
				require.NotNil(t, f, "spec 2 file missing")
				assert.Equal(t, "data:,two", *f.Contents.Source)
				assert.Equal(t, ptr.To(0o644), f.Mode)
				assert.NotNil(t, fileByPath(cfg, "/etc/from-spec31"))
			},
		},
		{
			name:    "invalid ignition names the config",
			configs: []*mcfgv1.MachineConfig{mc("00-ok", "worker", ""), mc("50-broken", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"relative/path"}]}}`)},
			wantErr: `machineconfig "50-broken": spec.config: parsing Ignition 3.2.0`,
		},
		{
			name:    "unknown ignition version",
			configs: []*mcfgv1.MachineConfig{mc("50-future", "worker", `{"ignition":{"version":"4.0.0"}}`)},
			wantErr: `machineconfig "50-future": spec.config: unsupported Ignition version 4.0.0`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := Merge(tc.configs, Base{})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, spec)
		})
	}
}

func TestMergeSpecFields(t *testing.T) {
	t.Parallel()
	base := Base{OSImageURL: "quay.io/openshift/rhcos@sha256:base", BaseOSExtensionsContainerImage: "quay.io/openshift/ext@sha256:base"}
	generated := func(m *mcfgv1.MachineConfig) {
		m.Annotations = map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "v1"}
	}
	with := func(f func(*mcfgv1.MachineConfigSpec)) func(*mcfgv1.MachineConfig) {
		return func(m *mcfgv1.MachineConfig) { f(&m.Spec) }
	}
	tests := []struct {
		name    string
		configs []*mcfgv1.MachineConfig
		want    mcfgv1.MachineConfigSpec
		wantErr string
	}{
		{name: "defaults from the base",
			configs: []*mcfgv1.MachineConfig{mc("00-a", "worker", "")},
			want:    mcfgv1.MachineConfigSpec{OSImageURL: base.OSImageURL, BaseOSExtensionsContainerImage: base.BaseOSExtensionsContainerImage, KernelType: "default", KernelArguments: []string{}, Extensions: []string{}}},
		{name: "fips is an OR",
			configs: []*mcfgv1.MachineConfig{mc("00-a", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.FIPS = true })), mc("01-b", "worker", "")},
			want:    mcfgv1.MachineConfigSpec{OSImageURL: base.OSImageURL, BaseOSExtensionsContainerImage: base.BaseOSExtensionsContainerImage, KernelType: "default", FIPS: true, KernelArguments: []string{}, Extensions: []string{}}},
		{name: "last non-default kernelType wins",
			configs: []*mcfgv1.MachineConfig{
				mc("00-a", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.KernelType = "realtime" })),
				mc("01-b", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.KernelType = "64k-pages" })),
				mc("02-c", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.KernelType = "default" })),
			},
			want: mcfgv1.MachineConfigSpec{OSImageURL: base.OSImageURL, BaseOSExtensionsContainerImage: base.BaseOSExtensionsContainerImage, KernelType: "64k-pages", KernelArguments: []string{}, Extensions: []string{}}},
		{name: "kernel arguments and extensions concatenate without dedupe",
			configs: []*mcfgv1.MachineConfig{
				mc("00-a", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) {
					s.KernelArguments = []string{"nosmt", "audit=1"}
					s.Extensions = []string{"usbguard"}
				})),
				mc("01-b", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) {
					s.KernelArguments = []string{"audit=1"}
					s.Extensions = []string{"usbguard", "sysstat"}
				})),
			},
			want: mcfgv1.MachineConfigSpec{OSImageURL: base.OSImageURL, BaseOSExtensionsContainerImage: base.BaseOSExtensionsContainerImage, KernelType: "default",
				KernelArguments: []string{"nosmt", "audit=1", "audit=1"}, Extensions: []string{"usbguard", "usbguard", "sysstat"}}},
		{name: "last user config sets the OS image; controller-generated ones do not",
			configs: []*mcfgv1.MachineConfig{
				mc("00-user", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.OSImageURL = "quay.io/me/os@sha256:first" })),
				mc("10-user", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.OSImageURL = "quay.io/me/os@sha256:second" })),
				mc("99-generated", "worker", "", generated, with(func(s *mcfgv1.MachineConfigSpec) {
					s.OSImageURL = "quay.io/ignored@sha256:gen"
					s.BaseOSExtensionsContainerImage = "quay.io/ignored-ext@sha256:gen"
				})),
			},
			want: mcfgv1.MachineConfigSpec{OSImageURL: "quay.io/me/os@sha256:second", BaseOSExtensionsContainerImage: base.BaseOSExtensionsContainerImage, KernelType: "default", KernelArguments: []string{}, Extensions: []string{}}},
		{name: "kernel-devel with a realtime kernel is refused, naming the config",
			configs: []*mcfgv1.MachineConfig{
				mc("00-devel", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.Extensions = []string{"kernel-devel"} })),
				mc("01-rt", "worker", "", with(func(s *mcfgv1.MachineConfigSpec) { s.KernelType = "realtime" })),
			},
			wantErr: `machineconfig "00-devel": spec.extensions: Invalid value: "kernel-devel": not supported with kernelType "realtime"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := Merge(tc.configs, base)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			spec.Config.Raw = nil
			assert.Equal(t, tc.want, *spec)
		})
	}
}

func TestMergeDoesNotModifyInputs(t *testing.T) {
	t.Parallel()
	a := mc("00-a", "worker", fileIgn("/etc/x", "data:,a", ""))
	b := mc("01-b", "worker", fileIgn("/etc/x", "data:,b", ""))
	before := string(a.Spec.Config.Raw) + string(b.Spec.Config.Raw)
	configs := []*mcfgv1.MachineConfig{b, a}
	_, err := Merge(configs, Base{})
	require.NoError(t, err)
	assert.Equal(t, before, string(a.Spec.Config.Raw)+string(b.Spec.Config.Raw))
	assert.Equal(t, "01-b", configs[0].Name, "caller's slice order must stay")
	assert.False(t, strings.Contains(string(a.Spec.Config.Raw), "overwrite"))
}
