package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Commands and paths of a real host.
const (
	// SystemctlCmd is the systemctl binary; SystemdRunCmd the systemd-run binary.
	SystemctlCmd  = "systemctl"
	SystemdRunCmd = "systemd-run"
	// RebootUnit is the transient unit that reboots the node.
	RebootUnit = "machine-config-daemon-reboot"
	// OSTreeAuthPath is where rpm-ostree looks for registry credentials: a symlink to the pull secret.
	OSTreeAuthPath = "/run/ostree/auth.json"
)

// DefaultRebaseBackoff returns how rpm-ostree rebase is retried (the reference's OCPBUGS-43406 backoff):
// 10s, doubling, at most 60s, 7 attempts in all.
func DefaultRebaseBackoff() wait.Backoff {
	return wait.Backoff{Duration: 10 * time.Second, Factor: 2, Steps: 7, Cap: 60 * time.Second}
}

// CommandError is a host command that failed: its command line, exit status (-1 when it did not run to an
// exit) and trimmed standard error.
type CommandError struct {
	Argv     []string
	ExitCode int
	Stderr   string
	Err      error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("running %s: %v", quoteArgv(e.Argv), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

func quoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// ExecRunner runs host commands with os/exec.
type ExecRunner struct{}

var _ CommandRunner = ExecRunner{}

// Run runs name with args, killed when ctx is done, and returns its standard output. A failure is a
// *CommandError; the standard output got so far is returned with it (systemctl is-enabled answers on
// standard output with a non-zero status).
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		}
		const maxStderr = 4096
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > maxStderr {
			msg = msg[len(msg)-maxStderr:]
		}
		return stdout.Bytes(), &CommandError{Argv: append([]string{name}, args...), ExitCode: code, Stderr: msg, Err: err}
	}
	return stdout.Bytes(), nil
}

// RpmOstree is an OSUpdater running rpm-ostree.
type RpmOstree struct {
	Runner CommandRunner
	// Backoff paces rebase attempts; the zero value is DefaultRebaseBackoff.
	Backoff wait.Backoff
	// Root is the host's root, where the OSTreeAuthPath link is made ("" is "/").
	Root Root
}

var _ OSUpdater = (*RpmOstree)(nil)

func (r *RpmOstree) run(ctx context.Context, args ...string) ([]byte, error) {
	return r.Runner.Run(ctx, RPMOSTree, args...)
}

// Status runs `rpm-ostree status --json` and parses it.
func (r *RpmOstree) Status(ctx context.Context) (*OSStatus, error) {
	out, err := r.run(ctx, "status", "--json")
	if err != nil {
		return nil, fmt.Errorf("getting rpm-ostree status: %w", err)
	}
	return ParseStatus(out)
}

// Rebase runs `rpm-ostree rebase --experimental ostree-unverified-registry:<pullSpec>`, retried per Backoff.
// With an authFile, OSTreeAuthPath is first made a symlink to it (as the reference links the pull secret),
// so that rpm-ostree pulls with it; without one, an existing link is left as it is.
func (r *RpmOstree) Rebase(ctx context.Context, pullSpec, authFile string) error {
	return r.rebase(ctx, pullSpec, "ostree-unverified-registry:"+pullSpec, authFile)
}

// RebaseSigned runs `rpm-ostree rebase --experimental ostree-image-signed:docker://<pullSpec>`: rpm-ostree
// pulls through containers/image with the host's signature policy. Retried and authenticated as Rebase.
func (r *RpmOstree) RebaseSigned(ctx context.Context, pullSpec, authFile string) error {
	return r.rebase(ctx, pullSpec, "ostree-image-signed:docker://"+pullSpec, authFile)
}

func (r *RpmOstree) rebase(ctx context.Context, pullSpec, imageRef, authFile string) error {
	if authFile != "" {
		if err := r.linkAuth(authFile); err != nil {
			return fmt.Errorf("rebasing to %s: %w", pullSpec, err)
		}
	}
	backoff := r.Backoff
	if backoff.Steps == 0 {
		backoff = DefaultRebaseBackoff()
	}
	var lastErr error
	attempts := 0
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		attempts++
		_, lastErr = r.run(ctx, "rebase", "--experimental", imageRef)
		if lastErr != nil {
			log.FromContext(ctx).Info("rpm-ostree rebase failed", "image", pullSpec, "attempt", attempts, "error", lastErr.Error())
		}
		return lastErr == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case lastErr != nil:
		return fmt.Errorf("rebasing to %s (%d attempts): %w", pullSpec, attempts, lastErr)
	default:
		return fmt.Errorf("rebasing to %s: %w", pullSpec, err)
	}
}

// linkAuth makes OSTreeAuthPath a symlink to authFile, atomically.
func (r *RpmOstree) linkAuth(authFile string) error { return linkAuthFile(r.Root, authFile) }

// linkAuthFile makes OSTreeAuthPath under root ("" is "/") a symlink to authFile, atomically: rpm-ostree
// and bootc both pull with the credentials found there.
func linkAuthFile(root Root, authFile string) error {
	if root == "" {
		root = "/"
	}
	real, err := root.Resolve(OSTreeAuthPath)
	if err != nil {
		return err
	}
	local := root.HostPath(real)
	if err := os.MkdirAll(path.Dir(local), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", path.Dir(real), err)
	}
	if err := renameio.Symlink(authFile, local); err != nil {
		return fmt.Errorf("linking %s to the pull secret: %w", OSTreeAuthPath, err)
	}
	return nil
}

// Kargs runs `rpm-ostree kargs <args…>`; args may start with "kargs" as KargsArgs returns them. No
// arguments is a no-op.
func (r *RpmOstree) Kargs(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "kargs" {
		args = args[1:]
	}
	if len(args) == 0 {
		return nil
	}
	if _, err := r.run(ctx, append([]string{"kargs"}, args...)...); err != nil {
		return fmt.Errorf("changing kernel arguments: %w", err)
	}
	return nil
}

// OverrideKernel runs `rpm-ostree override remove <remove…> --install <pkg>…`.
func (r *RpmOstree) OverrideKernel(ctx context.Context, remove, install []string) error {
	return r.changePackages(ctx, PackageChange{Op: PackageOverrideRemove, Base: remove, Install: install})
}

// ResetKernel runs `rpm-ostree override reset <reset…> --uninstall <pkg>…`.
func (r *RpmOstree) ResetKernel(ctx context.Context, reset, uninstall []string) error {
	return r.changePackages(ctx, PackageChange{Op: PackageOverrideReset, Base: reset, Uninstall: uninstall})
}

// UpdatePackages runs `rpm-ostree update --install <pkg>… --uninstall <pkg>…`; no packages is a no-op.
func (r *RpmOstree) UpdatePackages(ctx context.Context, install, uninstall []string) error {
	if len(install) == 0 && len(uninstall) == 0 {
		return nil
	}
	return r.changePackages(ctx, PackageChange{Op: PackageUpdate, Install: install, Uninstall: uninstall})
}

func (r *RpmOstree) changePackages(ctx context.Context, c PackageChange) error {
	if c.Op != PackageUpdate && len(c.Base) == 0 {
		return fmt.Errorf("running %s: no base packages", c)
	}
	if _, err := r.run(ctx, c.Argv()...); err != nil {
		return fmt.Errorf("changing packages: %w", err)
	}
	return nil
}

// KernelArgs runs `rpm-ostree kargs` and splits its output.
func (r *RpmOstree) KernelArgs(ctx context.Context) ([]string, error) {
	out, err := r.run(ctx, "kargs")
	if err != nil {
		return nil, fmt.Errorf("getting kernel arguments: %w", err)
	}
	args, err := SplitKernelArgs(string(out))
	if err != nil {
		return nil, fmt.Errorf("getting kernel arguments: %w", err)
	}
	return args, nil
}

// CleanupPending runs `rpm-ostree cleanup -p`.
func (r *RpmOstree) CleanupPending(ctx context.Context) error {
	if _, err := r.run(ctx, "cleanup", "-p"); err != nil {
		return fmt.Errorf("removing the pending deployment: %w", err)
	}
	return nil
}

// CleanupRollback runs `rpm-ostree cleanup -r`.
func (r *RpmOstree) CleanupRollback(ctx context.Context) error {
	if _, err := r.run(ctx, "cleanup", "-r"); err != nil {
		return fmt.Errorf("removing the rollback deployment: %w", err)
	}
	return nil
}

// Systemctl is a Systemd running systemctl.
type Systemctl struct {
	Runner CommandRunner
}

var _ Systemd = (*Systemctl)(nil)

func (s *Systemctl) run(ctx context.Context, what string, args ...string) error {
	if _, err := s.Runner.Run(ctx, SystemctlCmd, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// DaemonReload runs `systemctl daemon-reload`.
func (s *Systemctl) DaemonReload(ctx context.Context) error {
	return s.run(ctx, "reloading systemd units", "daemon-reload")
}

// Reload runs `systemctl reload <unit>`.
func (s *Systemctl) Reload(ctx context.Context, unit string) error {
	return s.run(ctx, "reloading unit "+unit, "reload", unit)
}

// Restart runs `systemctl restart <unit>`.
func (s *Systemctl) Restart(ctx context.Context, unit string) error {
	return s.run(ctx, "restarting unit "+unit, "restart", unit)
}

// Enable runs `systemctl enable <units>`; no units is a no-op.
func (s *Systemctl) Enable(ctx context.Context, units ...string) error {
	return s.onUnits(ctx, "enabling", "enable", units)
}

// Disable runs `systemctl disable <units>`; no units is a no-op.
func (s *Systemctl) Disable(ctx context.Context, units ...string) error {
	return s.onUnits(ctx, "disabling", "disable", units)
}

// Preset runs `systemctl preset <units>`; no units is a no-op.
func (s *Systemctl) Preset(ctx context.Context, units ...string) error {
	return s.onUnits(ctx, "presetting", "preset", units)
}

func (s *Systemctl) onUnits(ctx context.Context, what, verb string, units []string) error {
	if len(units) == 0 {
		return nil
	}
	return s.run(ctx, what+" units "+strings.Join(units, " "), append([]string{verb}, units...)...)
}

// IsEnabled runs `systemctl is-enabled <unit>`: "enabled" and "enabled-runtime" are enabled; any other
// state it prints (disabled, masked, static, indirect, alias, not-found, …) is not, whatever its exit
// status. A failure that prints no state is an error.
func (s *Systemctl) IsEnabled(ctx context.Context, unit string) (bool, error) {
	out, err := s.Runner.Run(ctx, SystemctlCmd, "is-enabled", unit)
	state := ""
	if lines := strings.Fields(string(out)); len(lines) > 0 {
		state = lines[0]
	}
	switch {
	case state == "enabled" || state == "enabled-runtime":
		return true, nil
	case isUnitFileState(state):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("checking whether unit %s is enabled: %w", unit, err)
	default:
		return false, fmt.Errorf("checking whether unit %s is enabled: unexpected answer %q", unit, strings.TrimSpace(string(out)))
	}
}

// isUnitFileState reports whether s is a state `systemctl is-enabled` prints, other than enabled.
func isUnitFileState(s string) bool {
	switch s {
	case "linked", "linked-runtime", "alias", "masked", "masked-runtime", "static", "indirect", "disabled",
		"generated", "transient", "bad", "not-found":
		return true
	}
	return false
}

// Reboot queues a reboot through a transient unit: `systemd-run --unit machine-config-daemon-reboot
// --description "machine-config-daemon: <reason>" /bin/sh -c "systemctl reboot"`.
func (s *Systemctl) Reboot(ctx context.Context, reason string) error {
	_, err := s.Runner.Run(ctx, SystemdRunCmd, "--unit", RebootUnit, "--description", "machine-config-daemon: "+reason,
		"/bin/sh", "-c", "systemctl reboot")
	if err != nil {
		return fmt.Errorf("queueing reboot: %w", err)
	}
	return nil
}
