package daemon

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	defaultKernel = []string{"kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra"}
	rtKernel      = []string{"kernel-rt-core", "kernel-rt-modules", "kernel-rt-modules-extra", "kernel-rt-kvm"}
	k64Kernel     = []string{"kernel-64k-core", "kernel-64k-modules", "kernel-64k-modules-core", "kernel-64k-modules-extra"}
)

func withKernel(kt string, exts ...string) cfgOpt {
	return withSpec(func(s *mcfgv1.MachineConfigSpec) { s.KernelType, s.Extensions = kt, exts })
}

func TestKernelPackages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", defaultKernel, true},
		{"default", defaultKernel, true},
		{"realtime", rtKernel, true},
		{"64k-pages", k64Kernel, true},
		{"rt", nil, false},
	} {
		got, ok := KernelPackages(tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestExtensionsPackages(t *testing.T) {
	t.Parallel()
	got, err := ExtensionsPackages([]string{"usbguard", "kerberos", "usbguard"})
	require.NoError(t, err)
	assert.Equal(t, []string{"krb5-workstation", "libkadm5", "usbguard"}, got)
	got, err = ExtensionsPackages(nil)
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = ExtensionsPackages([]string{"usbguard", "wireshark"})
	assert.ErrorContains(t, err, `"wireshark"`)
}

func TestPackageChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		old     *mcfgv1.MachineConfig // nil: the bare OS
		new     *mcfgv1.MachineConfig
		want    [][]string
		wantErr string
	}{
		{name: "nothing", old: newMC(t, "a"), new: newMC(t, "b")},
		{name: "empty kernel type is default", old: newMC(t, "a", withKernel("default")), new: newMC(t, "b", withKernel(""))},
		{name: "first boot, default", new: newMC(t, "b")},
		{
			name: "default to realtime", old: newMC(t, "a"), new: newMC(t, "b", withKernel("realtime")),
			want: [][]string{{"override", "remove", "kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra",
				"--install", "kernel-rt-core", "--install", "kernel-rt-modules", "--install", "kernel-rt-modules-extra", "--install", "kernel-rt-kvm"}},
		},
		{
			name: "first boot to 64k", new: newMC(t, "b", withKernel("64k-pages")),
			want: [][]string{{"override", "remove", "kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra",
				"--install", "kernel-64k-core", "--install", "kernel-64k-modules", "--install", "kernel-64k-modules-core", "--install", "kernel-64k-modules-extra"}},
		},
		{
			name: "realtime to default", old: newMC(t, "a", withKernel("realtime")), new: newMC(t, "b"),
			want: [][]string{{"override", "reset", "kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra",
				"--uninstall", "kernel-rt-core", "--uninstall", "kernel-rt-modules", "--uninstall", "kernel-rt-modules-extra", "--uninstall", "kernel-rt-kvm"}},
		},
		{
			name: "realtime to 64k resets then overrides", old: newMC(t, "a", withKernel("realtime")), new: newMC(t, "b", withKernel("64k-pages")),
			want: [][]string{
				{"override", "reset", "kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra",
					"--uninstall", "kernel-rt-core", "--uninstall", "kernel-rt-modules", "--uninstall", "kernel-rt-modules-extra", "--uninstall", "kernel-rt-kvm"},
				{"override", "remove", "kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra",
					"--install", "kernel-64k-core", "--install", "kernel-64k-modules", "--install", "kernel-64k-modules-core", "--install", "kernel-64k-modules-extra"},
			},
		},
		{
			name: "extensions added, sorted packages", old: newMC(t, "a"), new: newMC(t, "b", withKernel("", "usbguard", "kerberos")),
			want: [][]string{{"update", "--install", "krb5-workstation", "--install", "libkadm5", "--install", "usbguard"}},
		},
		{
			name: "extension swapped, order of extensions irrelevant", old: newMC(t, "a", withKernel("", "sysstat", "usbguard")),
			new:  newMC(t, "b", withKernel("", "kerberos", "sysstat")),
			want: [][]string{{"update", "--install", "krb5-workstation", "--install", "libkadm5", "--uninstall", "usbguard"}},
		},
		{name: "same extensions reordered", old: newMC(t, "a", withKernel("", "sysstat", "usbguard")), new: newMC(t, "b", withKernel("", "usbguard", "sysstat"))},
		{
			name: "kernel then extensions", old: newMC(t, "a", withKernel("", "usbguard")), new: newMC(t, "b", withKernel("realtime")),
			want: [][]string{
				{"override", "remove", "kernel", "kernel-core", "kernel-modules", "kernel-modules-core", "kernel-modules-extra",
					"--install", "kernel-rt-core", "--install", "kernel-rt-modules", "--install", "kernel-rt-modules-extra", "--install", "kernel-rt-kvm"},
				{"update", "--uninstall", "usbguard"},
			},
		},
		{name: "unknown kernel type", old: newMC(t, "a"), new: newMC(t, "b", withKernel("rt")), wantErr: `config "b": spec.kernelType: unsupported value "rt"`},
		{name: "unknown extension", old: newMC(t, "a", withKernel("", "nope")), new: newMC(t, "b"), wantErr: `current config "a": spec.extensions: extension "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := PackageChanges(tc.old, tc.new)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var argv [][]string
			for _, c := range got {
				argv = append(argv, c.Argv())
			}
			assert.Equal(t, tc.want, argv)
		})
	}
	_, err := PackageChanges(nil, nil)
	assert.ErrorIs(t, err, ErrNoConfig)
}

func TestVerifyPackages(t *testing.T) {
	t.Parallel()
	plain, rt := newMC(t, "a", withKernel("", "sysstat")), newMC(t, "b", withKernel("realtime", "usbguard"))
	tests := []struct {
		name     string
		d        *Deployment
		old, new *mcfgv1.MachineConfig
		wantErr  string
	}{
		{name: "rt applied", old: plain, new: rt,
			d: &Deployment{ID: "d", RequestedPackages: append([]string{"usbguard", "other"}, rtKernel...), RequestedBaseRemovals: defaultKernel}},
		{name: "rt kernel missing", old: plain, new: rt,
			d:       &Deployment{ID: "d", RequestedPackages: []string{"usbguard"}, RequestedBaseRemovals: defaultKernel},
			wantErr: "deployment d does not carry config \"b\"'s kernel type and extensions: packages not requested: kernel-rt-core"},
		{name: "old extension left", old: plain, new: rt,
			d:       &Deployment{ID: "d", RequestedPackages: append([]string{"usbguard", "sysstat"}, rtKernel...), RequestedBaseRemovals: defaultKernel},
			wantErr: "packages still requested: sysstat"},
		{name: "default kernel not removed", old: plain, new: rt,
			d:       &Deployment{ID: "d", RequestedPackages: append([]string{"usbguard"}, rtKernel...)},
			wantErr: "base packages not removed: kernel kernel-core"},
		{name: "back to default", old: rt, new: plain, d: &Deployment{ID: "d", RequestedPackages: []string{"sysstat"}}},
		{name: "rt kernel left behind", old: rt, new: plain,
			d:       &Deployment{ID: "d", RequestedPackages: append([]string{"sysstat"}, rtKernel...), RequestedBaseRemovals: defaultKernel},
			wantErr: "packages still requested: kernel-rt-core kernel-rt-modules kernel-rt-modules-extra kernel-rt-kvm; base packages still removed: kernel"},
		{name: "no staged deployment", old: rt, new: plain, wantErr: "no staged deployment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyPackages(tc.d, tc.old, tc.new)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			assert.NoError(t, err)
		})
	}
}
