// Package daemon is the node agent: it applies a node's desired MachineConfig (files, units, ssh keys,
// kernel arguments) and desired OS image (rpm-ostree rebase), honours node disruption policies and reports
// its state on the Node and its MachineConfigNode.
//
// It is built as a pure planner and a thin executor. The planner takes what the node runs and what it should
// run and returns what to do, with no I/O: Diff compares two rendered configs (files, units, core user,
// kernel arguments and type, extensions, FIPS, OS image) with sorted output; Actions turns a diff and the
// cluster's node disruption policies into an ordered, de-duplicated list of post-change actions, and
// NeedsDrain says whether they need a drain; KargsArgs builds the `rpm-ostree kargs` arguments;
// PackageChanges the rpm-ostree package changes (kernel override, extension packages) of a classic pool's
// kernel type and extensions, and VerifyPackages checks a deployment carries them; ParseStatus reads
// `rpm-ostree status --json`. The executor performs a plan through narrow interfaces, each faked in
// tests: a Root through which every host file is written (symlinks resolved inside it, atomic writes,
// backups of the files configs replace), a CommandRunner (ctx first), an OSUpdater (rpm-ostree) and Systemd,
// bundled with the boot identity in a Host. The state machine (daemon/agent) reaches the API server through
// controller-runtime's client and takes an injected clock.
//
// Implemented: the planner (Diff, ConfigFile, Actions, NeedsDrain, kernel argument splitting and KargsArgs,
// ParseStatus and ParseImageReference, CheckPaths); Root (WriteFile, WriteFrom, WriteSymlink, Delete,
// RemoveFile, Resolve, reads); the executor's interfaces (CommandRunner, OSUpdater, Systemd, Host) and their
// real implementations over commands (ExecRunner, RpmOstree, BootcOS — DetectOSUpdater picks one —, Systemctl); ApplyConfig, which writes a config's
// files (one fsync per file, each directory synced once per config), units and core user, removes stale ones
// and rolls back to the previous config on failure; ValidateOnDisk, which reports the first difference from
// a config as a *DriftError; and the config DriftMonitor (inotify). The state machine is package
// daemon/agent, the simulated host (a real OSTree sysroot, or directory-backed) daemon/simhost, and simulated nodes running the agent
// daemon/simnode.
package daemon
