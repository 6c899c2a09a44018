package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
)

// fakeRunner records every command line and answers with respond (nil: empty output, no error).
type fakeRunner struct {
	mu      sync.Mutex
	calls   [][]string
	respond func(argv []string) ([]byte, error)
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	argv := append([]string{name}, args...)
	f.mu.Lock()
	f.calls = append(f.calls, argv)
	f.mu.Unlock()
	if f.respond == nil {
		return nil, nil
	}
	return f.respond(argv)
}

var _ CommandRunner = (*fakeRunner)(nil)

// failure is what a CommandRunner returns for a failed command.
func failure(argv []string, code int, stderr string) error {
	return &CommandError{Argv: argv, ExitCode: code, Stderr: stderr, Err: fmt.Errorf("exit status %d", code)}
}

func TestRpmOstreeCommands(t *testing.T) {
	t.Parallel()
	status, err := os.ReadFile(filepath.Join("testdata", "rpm-ostree-status-staged.json"))
	require.NoError(t, err)
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func(r *RpmOstree) error
		output   string
		wantArgv [][]string
	}{
		{
			name: "status", output: string(status),
			call: func(r *RpmOstree) error {
				s, err := r.Status(ctx)
				if err == nil && !strings.HasPrefix(s.BootedImage(), "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:") {
					return errors.New("wrong booted image " + s.BootedImage())
				}
				return err
			},
			wantArgv: [][]string{{"rpm-ostree", "status", "--json"}},
		},
		{
			name:     "rebase",
			call:     func(r *RpmOstree) error { return r.Rebase(ctx, "quay.io/x/os@sha256:abc", "") },
			wantArgv: [][]string{{"rpm-ostree", "rebase", "--experimental", "ostree-unverified-registry:quay.io/x/os@sha256:abc"}},
		},
		{
			name: "kargs as KargsArgs returns them",
			call: func(r *RpmOstree) error {
				return r.Kargs(ctx, []string{"kargs", "--delete-if-present=a=1", "--append=b=2"})
			},
			wantArgv: [][]string{{"rpm-ostree", "kargs", "--delete-if-present=a=1", "--append=b=2"}},
		},
		{
			name:     "kargs without the verb",
			call:     func(r *RpmOstree) error { return r.Kargs(ctx, []string{"--append=b=2"}) },
			wantArgv: [][]string{{"rpm-ostree", "kargs", "--append=b=2"}},
		},
		{name: "no kargs", call: func(r *RpmOstree) error { return r.Kargs(ctx, nil) }},
		{
			name: "kernel args", output: "rw quiet foo=\"a b\" root=UUID=x\n",
			call: func(r *RpmOstree) error {
				args, err := r.KernelArgs(ctx)
				if err == nil && strings.Join(args, "|") != `rw|quiet|foo="a b"|root=UUID=x` {
					return errors.New("wrong split: " + strings.Join(args, "|"))
				}
				return err
			},
			wantArgv: [][]string{{"rpm-ostree", "kargs"}},
		},
		{
			name: "override kernel",
			call: func(r *RpmOstree) error {
				return r.OverrideKernel(ctx, []string{"kernel", "kernel-core"}, []string{"kernel-rt-core", "kernel-rt-kvm"})
			},
			wantArgv: [][]string{{"rpm-ostree", "override", "remove", "kernel", "kernel-core", "--install", "kernel-rt-core", "--install", "kernel-rt-kvm"}},
		},
		{
			name: "reset kernel",
			call: func(r *RpmOstree) error {
				return r.ResetKernel(ctx, []string{"kernel", "kernel-core"}, []string{"kernel-64k-core"})
			},
			wantArgv: [][]string{{"rpm-ostree", "override", "reset", "kernel", "kernel-core", "--uninstall", "kernel-64k-core"}},
		},
		{
			name: "update packages",
			call: func(r *RpmOstree) error {
				return r.UpdatePackages(ctx, []string{"sysstat", "usbguard"}, []string{"libreswan"})
			},
			wantArgv: [][]string{{"rpm-ostree", "update", "--install", "sysstat", "--install", "usbguard", "--uninstall", "libreswan"}},
		},
		{name: "no packages", call: func(r *RpmOstree) error { return r.UpdatePackages(ctx, nil, nil) }},
		{name: "cleanup pending", call: func(r *RpmOstree) error { return r.CleanupPending(ctx) }, wantArgv: [][]string{{"rpm-ostree", "cleanup", "-p"}}},
		{name: "cleanup rollback", call: func(r *RpmOstree) error { return r.CleanupRollback(ctx) }, wantArgv: [][]string{{"rpm-ostree", "cleanup", "-r"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner := &fakeRunner{respond: func([]string) ([]byte, error) { return []byte(tc.output), nil }}
			require.NoError(t, tc.call(&RpmOstree{Runner: runner, Root: Root(t.TempDir())}))
			assert.Equal(t, tc.wantArgv, runner.calls)
		})
	}
}

func TestRpmOstreeRebaseRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tiny := wait.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 4}
	want := []string{"rpm-ostree", "rebase", "--experimental", "ostree-unverified-registry:reg.example/os@sha256:1"}

	t.Run("succeeds on the third attempt", func(t *testing.T) {
		t.Parallel()
		attempts := 0
		runner := &fakeRunner{respond: func(argv []string) ([]byte, error) {
			if attempts++; attempts < 3 {
				return nil, failure(argv, 1, "error: pulling: 502 Bad Gateway")
			}
			return nil, nil
		}}
		require.NoError(t, (&RpmOstree{Runner: runner, Backoff: tiny}).Rebase(ctx, "reg.example/os@sha256:1", ""))
		assert.Equal(t, [][]string{want, want, want}, runner.calls)
	})
	t.Run("gives up after Steps attempts", func(t *testing.T) {
		t.Parallel()
		runner := &fakeRunner{respond: func(argv []string) ([]byte, error) { return nil, failure(argv, 1, "error: manifest unknown") }}
		err := (&RpmOstree{Runner: runner, Backoff: tiny}).Rebase(ctx, "reg.example/os@sha256:1", "")
		require.Error(t, err)
		assert.Len(t, runner.calls, 4)
		var cmdErr *CommandError
		require.ErrorAs(t, err, &cmdErr)
		assert.Equal(t, want, cmdErr.Argv)
		assert.Contains(t, err.Error(), "rebasing to reg.example/os@sha256:1 (4 attempts)")
		assert.Contains(t, err.Error(), "manifest unknown")
	})
	t.Run("stops when the context is done", func(t *testing.T) {
		t.Parallel()
		cctx, cancel := context.WithCancel(ctx)
		runner := &fakeRunner{respond: func(argv []string) ([]byte, error) { cancel(); return nil, failure(argv, 1, "x") }}
		err := (&RpmOstree{Runner: runner, Backoff: wait.Backoff{Duration: time.Hour, Steps: 3}}).Rebase(cctx, "reg.example/os@sha256:1", "")
		require.Error(t, err)
		assert.Len(t, runner.calls, 1)
	})
}

func TestRpmOstreeRebaseAuthLink(t *testing.T) {
	t.Parallel()
	root := Root(t.TempDir())
	runner := &fakeRunner{}
	const secret = "/etc/mco/internal-registry-pull-secret.json"
	r := &RpmOstree{Runner: runner, Root: root}
	require.NoError(t, r.Rebase(context.Background(), "reg.example/os@sha256:1", secret))
	target, err := os.Readlink(root.HostPath(OSTreeAuthPath))
	require.NoError(t, err)
	assert.Equal(t, secret, target)
	// A second rebase with another file replaces the link.
	require.NoError(t, r.Rebase(context.Background(), "reg.example/os@sha256:1", "/var/lib/kubelet/config.json"))
	target, err = os.Readlink(root.HostPath(OSTreeAuthPath))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/kubelet/config.json", target)
	assert.Len(t, runner.calls, 2)
}

func TestSystemctlCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func(s *Systemctl) error
		wantArgv []string
	}{
		{name: "daemon-reload", call: func(s *Systemctl) error { return s.DaemonReload(ctx) }, wantArgv: []string{"systemctl", "daemon-reload"}},
		{name: "reload", call: func(s *Systemctl) error { return s.Reload(ctx, "crio.service") }, wantArgv: []string{"systemctl", "reload", "crio.service"}},
		{name: "restart", call: func(s *Systemctl) error { return s.Restart(ctx, "kubelet.service") }, wantArgv: []string{"systemctl", "restart", "kubelet.service"}},
		{name: "enable", call: func(s *Systemctl) error { return s.Enable(ctx, "a.service", "b.service") }, wantArgv: []string{"systemctl", "enable", "a.service", "b.service"}},
		{name: "disable", call: func(s *Systemctl) error { return s.Disable(ctx, "a.service") }, wantArgv: []string{"systemctl", "disable", "a.service"}},
		{name: "preset", call: func(s *Systemctl) error { return s.Preset(ctx, "a.service") }, wantArgv: []string{"systemctl", "preset", "a.service"}},
		{name: "enable nothing", call: func(s *Systemctl) error { return s.Enable(ctx) }},
		{
			name: "reboot", call: func(s *Systemctl) error { return s.Reboot(ctx, "config rendered-worker-2") },
			wantArgv: []string{"systemd-run", "--unit", "machine-config-daemon-reboot", "--description", "machine-config-daemon: config rendered-worker-2", "/bin/sh", "-c", "systemctl reboot"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner := &fakeRunner{}
			require.NoError(t, tc.call(&Systemctl{Runner: runner}))
			if tc.wantArgv == nil {
				assert.Empty(t, runner.calls)
				return
			}
			assert.Equal(t, [][]string{tc.wantArgv}, runner.calls)
		})
	}
}

func TestSystemctlIsEnabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		output  string
		fail    bool
		want    bool
		wantErr string
	}{
		{name: "enabled", output: "enabled\n", want: true},
		{name: "enabled-runtime", output: "enabled-runtime\n", want: true},
		{name: "disabled exits 1", output: "disabled\n", fail: true},
		{name: "masked exits 1", output: "masked\n", fail: true},
		{name: "static", output: "static\n"},
		{name: "indirect", output: "indirect\n"},
		{name: "not found", output: "not-found\n", fail: true},
		{name: "no answer", fail: true, wantErr: "checking whether unit a.service is enabled: running systemctl is-enabled a.service"},
		{name: "unknown answer", output: "sideways\n", wantErr: `unexpected answer "sideways"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runner := &fakeRunner{respond: func(argv []string) ([]byte, error) {
				if tc.fail {
					return []byte(tc.output), failure(argv, 1, "Failed to get unit file state")
				}
				return []byte(tc.output), nil
			}}
			got, err := (&Systemctl{Runner: runner}).IsEnabled(context.Background(), "a.service")
			assert.Equal(t, [][]string{{"systemctl", "is-enabled", "a.service"}}, runner.calls)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCommandErrorsWrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runner := &fakeRunner{respond: func(argv []string) ([]byte, error) { return nil, failure(argv, 5, "Job for kubelet.service failed") }}
	s := &Systemctl{Runner: runner}
	err := s.Restart(ctx, "kubelet.service")
	var cmdErr *CommandError
	require.ErrorAs(t, err, &cmdErr)
	assert.Equal(t, 5, cmdErr.ExitCode)
	assert.Equal(t, "restarting unit kubelet.service: running systemctl restart kubelet.service: exit status 5: Job for kubelet.service failed", err.Error())
	err = (&RpmOstree{Runner: runner}).CleanupPending(ctx)
	require.ErrorAs(t, err, &cmdErr)
	assert.Contains(t, err.Error(), "removing the pending deployment: running rpm-ostree cleanup -p")
	_, err = (&RpmOstree{Runner: runner}).Status(ctx)
	require.ErrorAs(t, err, &cmdErr)
}

// TestExecRunner runs real processes.
func TestExecRunner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out, err := ExecRunner{}.Run(ctx, "sh", "-c", "echo hello")
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(out))

	out, err = ExecRunner{}.Run(ctx, "sh", "-c", "echo disabled; echo '  no such unit ' >&2; exit 3")
	assert.Equal(t, "disabled\n", string(out), "standard output comes back with the error")
	var cmdErr *CommandError
	require.ErrorAs(t, err, &cmdErr)
	assert.Equal(t, 3, cmdErr.ExitCode)
	assert.Equal(t, "no such unit", cmdErr.Stderr)
	assert.Equal(t, `running sh -c "echo disabled; echo '  no such unit ' >&2; exit 3": exit status 3: no such unit`, err.Error())

	_, err = ExecRunner{}.Run(ctx, "/nonexistent/binary")
	require.ErrorAs(t, err, &cmdErr)
	assert.Equal(t, -1, cmdErr.ExitCode)

	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = ExecRunner{}.Run(cctx, "sleep", "30")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second, "killed when the context is done")
}
