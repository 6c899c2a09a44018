// Package drain is the drain controller: keyed by node, it performs what the node's daemon asks for in the
// machineconfiguration.openshift.io/desiredDrain annotation — drain-<config> (cordon, then evict the node's
// pods through the Eviction API, so PodDisruptionBudgets are respected; DaemonSet pods are left, emptyDir
// data may be lost) or uncordon-<config> — and then copies the value to lastAppliedDrain, which the daemon
// waits for. A drain that fails (a budget that does not allow the eviction, an unmanaged pod) is retried
// with back-off without holding other nodes up; one stuck for long (an hour by default) is reported with a
// Warning event DrainFailed and the gauge mcc_drain_err{node}=1, and still retried.
//
// The decision (NextAction, RetryAfter) is pure; eviction and cordoning use k8s.io/kubectl/pkg/drain.
package drain
