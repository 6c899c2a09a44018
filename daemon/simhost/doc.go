// Package simhost is a simulated RHCOS node host backed by a directory, for tests and the embedded local
// default: it implements daemon.Host (and its OSUpdater and Systemd) the way rpm-ostree and systemctl behave
// on a real node, but on files.
//
// The OS image is real: Rebase pulls the container image from its registry with containers/image (the
// node's auth file and per-registry CAs, read from the host root), unpacks its layers in order honouring OCI
// whiteouts, and stages the result as a deployment. Boot — what the test harness calls to "reboot" —
// promotes the staged deployment: its /usr replaces the root's /usr (directories swapped by rename), its
// /etc is merged into the root's /etc the ostree way (local changes kept), /var is left alone and /run is
// cleared. So a file a user's Containerfile added to the image is visible on the node after the reboot.
// Package changes (kernel overrides, layered extensions) are recorded on the deployments and reported by
// Status as rpm-ostree does, but do not change the tree.
//
// Layout of a host directory:
//
//	<dir>/root            the host root (Host.Root)
//	<dir>/state.json      deployments (staged, booted, rollback), boot id, pending reboot, call log
//	<dir>/content/<id>/   the unpacked tree of an image; the booted one's usr lives at <dir>/root/usr
//	<dir>/tmp/            pulls in progress; emptied on open
//	<dir>/lock            serializes operations of every Host opened on the directory
//
// State is written atomically (temporary file, fsync, rename), and every operation reads it afresh under
// the lock, so a process killed at any point leaves a consistent host that New opens again.
//
// # The OSTree backend
//
// With Options.Backend BackendOSTree the deployments are real: <dir>/sysroot is an OSTree sysroot made
// with `ostree admin init-fs` and `os-init`, and every OS operation runs the ostree CLI (Debian's ostree
// package). Rebase pulls the image as above, moves its /etc to /usr/etc and commits it into the sysroot's
// repo (ref imagemode/image/sha256/<hex>, metadata ostree.manifest-digest and version); an image the repo
// holds already (a rollback deployment's) is not pulled again. A change for the next boot — rebase,
// kernel arguments, packages (the origin's [packages] and [overrides]) — is `ostree admin deploy --retain
// --not-as-default --karg-none --karg-append=…` with an origin file marked staged: a real boot loader entry
// exists at once, but the booted deployment stays the default. Boot finalizes it as ostree-finalize-staged
// does at shutdown — the commit is deployed again as the default, /etc three-way merged by ostree from the
// booted deployment's /etc as it is then, the booted deployment kept as the rollback — and then boots the
// default boot loader entry, resolving its ostree= argument to a deployment as ostree-prepare-root does.
// The host root is the booted deployment's directory; the stateroot's /var is moved into it (a real node
// bind-mounts it). Status renders `rpm-ostree status --json` from `ostree admin status`, the boot loader
// entries, the origin files and the commits' metadata, and parses it with daemon.ParseStatus. With
// Options.Tool ToolBootc the host is a bootc host instead: Status renders `bootc status --format=json` (a
// BootcHost) from the same files and parses it with daemon.ParseBootcStatus, and kernel argument and
// package changes are refused as daemon.BootcOS refuses them.
//
//	<dir>/sysroot/ostree/repo                          the OSTree repo
//	<dir>/sysroot/ostree/deploy/rhcos/deploy/<c>.<n>   deployments (the booted one is the host root)
//	<dir>/sysroot/boot/loader/entries/ostree-*.conf    the boot loader entries
//	<dir>/state.json                                   boot id, booted deployment, pending reboot, call log
package simhost
