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
package simhost
