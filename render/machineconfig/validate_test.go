package machineconfig

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateMachineConfig(t *testing.T) {
	t.Parallel()
	spec := func(f func(*mcfgv1.MachineConfigSpec)) func(*mcfgv1.MachineConfig) {
		return func(m *mcfgv1.MachineConfig) { f(&m.Spec) }
	}
	tests := []struct {
		name string
		mc   *mcfgv1.MachineConfig
		want []string // substrings of the aggregated error, in any order; none = valid
	}{
		{name: "valid file, unit and ssh key",
			mc: mc("99-ok", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/ok.conf","mode":420,"contents":{"source":"data:,x"}}]},"systemd":{"units":[{"name":"x.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true"}]},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAA"]}]}}`)},
		{name: "valid /usr/local and /var paths",
			mc: mc("99-ok", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/usr/local/bin/tool","mode":493},{"path":"/var/lib/x"}]}}`)},
		{name: "no labels",
			mc:   mc("99-nolabels", "worker", "", func(m *mcfgv1.MachineConfig) { m.Labels = nil }),
			want: []string{"metadata.labels: Required value"}},
		{name: "unknown kernelType",
			mc:   mc("99-k", "worker", "", spec(func(s *mcfgv1.MachineConfigSpec) { s.KernelType = "lowlatency" })),
			want: []string{`spec.kernelType: Unsupported value: "lowlatency"`}},
		{name: "unsupported extension",
			mc:   mc("99-e", "worker", "", spec(func(s *mcfgv1.MachineConfigSpec) { s.Extensions = []string{"usbguard", "vim"} })),
			want: []string{`spec.extensions[1]: Invalid value: "vim": unsupported extension`}},
		{name: "kernel-devel with realtime in one config",
			mc: mc("99-kd", "worker", "", spec(func(s *mcfgv1.MachineConfigSpec) {
				s.Extensions = []string{"kernel-devel"}
				s.KernelType = "realtime"
			})),
			want: []string{`spec.extensions[0]: Invalid value: "kernel-devel": not supported with kernelType "realtime"`}},
		{name: "invalid ignition",
			mc:   mc("99-bad", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/x","contents":{"source":"data:,x","compression":"zstd"}}]}}`),
			want: []string{"spec.config: Invalid value", "compression"}},
		{name: "setuid file mode",
			mc:   mc("99-suid", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/a"},{"path":"/usr/local/bin/s","mode":2541}]}}`),
			want: []string{`spec.config.storage.files[1].mode: Invalid value: "04755": invalid mode 04755 for /usr/local/bin/s, cannot exceed 0777: only permission bits`}},
		{name: "setgid file mode in spec 2 names the path too",
			mc:   mc("99-sgid", "worker", `{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/sg","mode":1512,"contents":{"source":"data:,x"}}]}}`),
			want: []string{`spec.config.storage.files[0].mode: Invalid value: "02750": invalid mode 02750 for /etc/sg, cannot exceed 0777`}},
		{name: "sticky directory",
			mc:   mc("99-sticky", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"directories":[{"path":"/var/shared","mode":1023}]}}`),
			want: []string{`spec.config.storage.directories[0].mode: Invalid value: "01777": invalid mode 01777 for /var/shared, cannot exceed 0777`}},
		{name: "paths a node may not manage",
			mc:   mc("99-paths", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/ok"},{"path":"/usr/bin/x"}],"links":[{"path":"/proc/x","target":"/etc/x"}]}}`),
			want: []string{`spec.config.storage.files[1].path: Invalid value: "/usr/bin/x"`, `spec.config.storage.links[0].path: Invalid value: "/proc/x"`}},
		{name: "dot-dot path is refused by Ignition with its position",
			mc:   mc("99-dotdot", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/../boot/x"}]}}`),
			want: []string{"spec.config: Invalid value", "$.storage.files.0.path", "path is not fully simplified"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateMachineConfig(tc.mc)
			if len(tc.want) == 0 {
				assert.Empty(t, errs)
				return
			}
			require.NotEmpty(t, errs)
			msg := errs.ToAggregate().Error()
			for _, w := range tc.want {
				assert.Contains(t, msg, w)
			}
		})
	}
}

func TestManagedPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"etc file", "/etc/chrony.conf", true},
		{"var file", "/var/lib/kubelet/config.json", true},
		{"usr local", "/usr/local/bin/x", true},
		{"usr is the image's", "/usr/lib/x", false},
		{"root dir itself", "/etc", false},
		{"relative", "etc/x", false},
		{"dot-dot escaping", "/etc/../usr/x", false},
		{"prefix lookalike", "/etcetera/x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ManagedPath(tc.path))
		})
	}
}
