package daemon

import (
	"context"
)

// The executor's narrow interfaces to the host. A real node implements them by running rpm-ostree or bootc
// and systemctl (RpmOstree or BootcOS, Systemctl over an ExecRunner); tests and the embedded default use a
// simulated host (package daemon/simhost) whose OS image is really pulled from a registry and, by default,
// committed and deployed into a real OSTree sysroot.

// CommandRunner runs a host command and returns its standard output. An error carries the command line,
// exit status and standard error.
type CommandRunner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// OSUpdater is the part of rpm-ostree the daemon uses.
type OSUpdater interface {
	// Status returns the deployments, as `rpm-ostree status --json` reports them.
	Status(ctx context.Context) (*OSStatus, error)
	// Rebase stages a deployment of the container image pullSpec (repo@sha256:…) for the next boot, pulling
	// it with the auth file at authFile ("" for none): `rpm-ostree rebase --experimental
	// ostree-unverified-registry:<pullSpec>`. Kernel arguments of the booted deployment carry over.
	Rebase(ctx context.Context, pullSpec, authFile string) error
	// RebaseSigned is Rebase for a signed image: `rpm-ostree rebase --experimental
	// ostree-image-signed:docker://<pullSpec>`, which pulls only what the host's containers signature
	// policy (/etc/containers/policy.json, registries.d) accepts.
	RebaseSigned(ctx context.Context, pullSpec, authFile string) error
	// Kargs changes the kernel arguments of the next boot's deployment (staging one if none is): args are
	// KargsArgs' `--delete-if-present=…`/`--append=…` arguments of `rpm-ostree kargs`.
	Kargs(ctx context.Context, args []string) error
	// OverrideKernel removes the base packages remove from the next boot's deployment and installs the
	// packages install in their place, staging one if none is: `rpm-ostree override remove <remove…>
	// --install <pkg>…`.
	OverrideKernel(ctx context.Context, remove, install []string) error
	// ResetKernel restores the removed base packages reset in the next boot's deployment and uninstalls the
	// packages uninstall, staging one if none is: `rpm-ostree override reset <reset…> --uninstall <pkg>…`.
	ResetKernel(ctx context.Context, reset, uninstall []string) error
	// UpdatePackages layers the packages install onto the next boot's deployment and unlayers the packages
	// uninstall, staging one if none is: `rpm-ostree update --install <pkg>… --uninstall <pkg>…`.
	UpdatePackages(ctx context.Context, install, uninstall []string) error
	// KernelArgs returns the kernel arguments of the deployment the next boot uses (`rpm-ostree kargs`).
	KernelArgs(ctx context.Context) ([]string, error)
	// CleanupPending removes a staged deployment (`rpm-ostree cleanup -p`); none staged is not an error.
	CleanupPending(ctx context.Context) error
	// CleanupRollback removes the rollback deployment (`rpm-ostree cleanup -r`).
	CleanupRollback(ctx context.Context) error
}

// Systemd is the part of systemctl the daemon uses.
type Systemd interface {
	DaemonReload(ctx context.Context) error
	Reload(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	// Enable and Disable change the enablement of units (`systemctl enable|disable <units>`).
	Enable(ctx context.Context, units ...string) error
	Disable(ctx context.Context, units ...string) error
	// Preset resets units to their preset enablement (`systemctl preset <units>`).
	Preset(ctx context.Context, units ...string) error
	// IsEnabled reports whether a unit is enabled (`systemctl is-enabled`: "enabled" or "enabled-runtime").
	IsEnabled(ctx context.Context, unit string) (bool, error)
	// Reboot queues a reboot through a transient unit (`systemd-run --unit machine-config-daemon-reboot
	// --description "machine-config-daemon: <reason>" /bin/sh -c "systemctl reboot"`). It returns once the
	// reboot is queued; the daemon then stops doing work and waits to be killed.
	Reboot(ctx context.Context, reason string) error
}

// CommandHost is a Host that runs commands on the host itself (chrooted into its root): a RolloutPolicy's
// health checks.
type CommandHost interface {
	Commands() CommandRunner
}

// Host is what a node agent runs on: its filesystem root, OS updater, systemd and boot identity.
type Host interface {
	Root() Root
	OS() OSUpdater
	Systemd() Systemd
	// BootID identifies the current boot (/proc/sys/kernel/random/boot_id); it changes on every reboot.
	BootID() (string, error)
}
