// Package v1alpha1 is the project's own API, group rollouts.imagemode.io: RolloutPolicy, one declarative
// object for a pool's progressive rollout (a canary wave, then waves by count or percentage, each with its
// maxUnavailable and soak time; health gates after each node's update; pause or roll back on a failed gate;
// maintenance windows; manual pause, promote and abort). It is a leaf: it imports only API machinery. The
// CRD is manifests/crds/rollouts.imagemode.io_rolloutpolicies.crd.yaml (its schema is checked against these
// types on a real API server); deepcopy functions are in zz_deepcopy.go.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// GroupName is the API group of the project's own objects (never an openshift group).
const GroupName = "rollouts.imagemode.io"

// GroupVersion is the group and version of this package's types.
var GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// AddToScheme registers this package's types.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &RolloutPolicy{}, &RolloutPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// RolloutPolicy rolls a MachineConfigPool's changes (rendered configs and layered images alike) out in
// waves with health gates. It is cluster-scoped, like pools; at most one policy may name a pool.
type RolloutPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RolloutPolicySpec   `json:"spec"`
	Status RolloutPolicyStatus `json:"status,omitempty"`
}

// RolloutPolicyList is a list of RolloutPolicy.
type RolloutPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RolloutPolicy `json:"items"`
}

// FailureAction is what a failed health gate does.
type FailureAction string

const (
	// FailurePause stops the rollout: no further node starts until the pool's target changes.
	FailurePause FailureAction = "Pause"
	// FailureRollback pauses and also moves the failed nodes and every node of the started waves back to
	// the rendered config and image each ran before the rollout, in one update (one reboot) each.
	FailureRollback FailureAction = "Rollback"
)

// RolloutPolicySpec is the desired rollout.
type RolloutPolicySpec struct {
	// MachineConfigPool names the pool this policy rolls out.
	MachineConfigPool PoolReference `json:"machineConfigPool"`
	// Waves are the rollout's waves, in order; the first is the canary. A pool node no wave takes is in an
	// implicit last wave (maxUnavailable 1, no soak).
	Waves []Wave `json:"waves"`
	// HealthChecks are the gates a node must pass after its update before its wave counts as healthy.
	HealthChecks HealthChecks `json:"healthChecks,omitempty"`
	// OnFailure is Pause (default) or Rollback.
	OnFailure FailureAction `json:"onFailure,omitempty"`
	// MaintenanceWindows, when set, are the only times a node may start an update (drain, reboot); work
	// in flight finishes outside them.
	MaintenanceWindows []MaintenanceWindow `json:"maintenanceWindows,omitempty"`
	// PreStage limits the nodes pulling a new image ahead of their drain (not yet acted on).
	PreStage *PreStage `json:"preStage,omitempty"`
	// Paused stops new nodes from starting; nodes in flight finish.
	Paused bool `json:"paused,omitempty"`
	// PromoteWave lets waves up to this index (0 is the canary) start without waiting for the previous
	// wave's soak time. Gates still apply.
	PromoteWave *int32 `json:"promoteWave,omitempty"`
	// Abort stops the rollout in progress and moves every node it changed back to what it ran before, as a
	// failed gate with Rollback does. While set, no change of the pool rolls out.
	Abort bool `json:"abort,omitempty"`
}

// PoolReference names a MachineConfigPool.
type PoolReference struct {
	Name string `json:"name"`
}

// Wave is one step of the rollout. Its nodes are given by exactly one of Nodes, NodeSelector and Count;
// with none, the wave takes every node no earlier wave took ("the rest").
type Wave struct {
	// Name is shown in status and events (default "wave-<index>").
	Name string `json:"name,omitempty"`
	// Nodes names the wave's nodes (those not in the pool are ignored).
	Nodes []string `json:"nodes,omitempty"`
	// NodeSelector selects the wave's nodes among the pool's nodes no earlier wave took.
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Count is the wave's size: a number of nodes, or a percentage of the pool's nodes (rounded up), taken
	// in update order (zone, then age) among the nodes no earlier wave took.
	Count *intstr.IntOrString `json:"count,omitempty"`
	// MaxUnavailable is how many of the wave's nodes may update at once: a number or a percentage of the
	// wave's nodes (rounded down, at least 1). Default 1.
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	// SoakTime is how long every node of the wave must stay healthy after its last node passed the gates
	// before the next wave starts.
	SoakTime *metav1.Duration `json:"soakTime,omitempty"`
}

// HealthChecks are a node's gates after an update. The node must be Ready and its MachineConfigNode's
// conditions done (Updated True, no degradation) in every case; Commands and Units are run by the node's
// daemon on the host once it runs the new config (as greenboot does) and reported back.
type HealthChecks struct {
	// Commands are run with /bin/sh -c on the host; a non-zero exit fails the gate.
	Commands []HealthCommand `json:"commands,omitempty"`
	// Units are systemd units that must be active (`systemctl is-active`).
	Units []string `json:"units,omitempty"`
	// Timeout bounds how long a node that finished its update may take to pass every gate (default 30m).
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// HealthCommand is one command a node's daemon runs on the host.
type HealthCommand struct {
	Name    string `json:"name"`
	Command string `json:"command"`
}

// MaintenanceWindow is a recurring time span.
type MaintenanceWindow struct {
	// Days are the days the window opens on (Monday … Sunday); every day when empty.
	Days []string `json:"days,omitempty"`
	// Start is when the window opens, "HH:MM" in TimeZone.
	Start string `json:"start"`
	// Duration is how long it stays open.
	Duration metav1.Duration `json:"duration"`
	// TimeZone is an IANA time zone name (default UTC).
	TimeZone string `json:"timeZone,omitempty"`
}

// PreStage configures pulling new images before the drain.
type PreStage struct {
	// MaxConcurrentPulls is how many nodes may pull at once.
	MaxConcurrentPulls int32 `json:"maxConcurrentPulls,omitempty"`
}

// RolloutTarget is what a pool's nodes run: a rendered config and, for a layered pool, an image.
type RolloutTarget struct {
	Config string `json:"config,omitempty"`
	Image  string `json:"image,omitempty"`
}

// RolloutPhase is the state of the rollout as a whole.
type RolloutPhase string

const (
	RolloutIdle        RolloutPhase = "Idle"
	RolloutProgressing RolloutPhase = "Progressing"
	RolloutPaused      RolloutPhase = "Paused"
	RolloutWaiting     RolloutPhase = "WaitingForWindow"
	RolloutFailed      RolloutPhase = "Failed"
	RolloutRolledBack  RolloutPhase = "RolledBack"
	RolloutAborted     RolloutPhase = "Aborted"
	RolloutCompleted   RolloutPhase = "Completed"
)

// WavePhase is the state of one wave.
type WavePhase string

const (
	WavePending    WavePhase = "Pending"
	WaveInProgress WavePhase = "InProgress"
	WaveSoaking    WavePhase = "Soaking"
	WaveDone       WavePhase = "Done"
	WaveFailed     WavePhase = "Failed"
)

// NodePhase is one node's state in the rollout.
type NodePhase string

const (
	NodeWaiting     NodePhase = "Waiting"
	NodeUpdating    NodePhase = "Updating"
	NodeDraining    NodePhase = "Draining"
	NodeRebooting   NodePhase = "Rebooting"
	NodeChecking    NodePhase = "Checking"
	NodeDone        NodePhase = "Done"
	NodeFailed      NodePhase = "Failed"
	NodeRollingBack NodePhase = "RollingBack"
	NodeRolledBack  NodePhase = "RolledBack"
)

// RolloutPolicyStatus is the observed rollout; it is also the rollout's memory (wave membership, when
// each wave became healthy, what each node ran before), so a restarted controller carries on where it was.
type RolloutPolicyStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is the rollout's state.
	Phase RolloutPhase `json:"phase,omitempty"`
	// Target is the pool's config and image being rolled out.
	Target RolloutTarget `json:"target,omitempty"`
	// CurrentWave is the index of the first wave not done (len(waves) when all are).
	CurrentWave int32 `json:"currentWave"`
	// Waves is each wave's state, in spec order.
	Waves []WaveStatus `json:"waves,omitempty"`
	// Nodes is each node's state, for the nodes of the started waves, by name.
	Nodes []NodeStatus `json:"nodes,omitempty"`
	// FailedGate is the gate that failed, when one did.
	FailedGate *GateFailure `json:"failedGate,omitempty"`
	// Message says what the rollout waits for.
	Message string `json:"message,omitempty"`
	// Conditions: Progressing, Degraded.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// WaveStatus is one wave's state.
type WaveStatus struct {
	Name  string    `json:"name"`
	Phase WavePhase `json:"phase"`
	// Size is the number of the wave's nodes.
	Size int32 `json:"size"`
	// StartedAt is when the wave's first node could start.
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// HealthyAt is when the wave's last node passed the gates (its soak time counts from here).
	HealthyAt *metav1.Time `json:"healthyAt,omitempty"`
	// CompletedAt is when its soak time passed.
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// NodeStatus is one node's state in the rollout.
type NodeStatus struct {
	Name string `json:"name"`
	// Wave is the index of the node's wave.
	Wave  int32     `json:"wave"`
	Phase NodePhase `json:"phase"`
	// From is what the node ran when its wave started (the rollback target).
	From RolloutTarget `json:"from,omitempty"`
	// Since is when the node entered its phase.
	Since *metav1.Time `json:"since,omitempty"`
	// Message details the phase (a failure's cause).
	Message string `json:"message,omitempty"`
}

// Gates a node can fail.
const (
	// GateUpdate: the daemon failed to apply the update (the node is Degraded or Unreconcilable).
	GateUpdate = "Update"
	// GateNodeReady: the node stopped being Ready after it passed its gates, during its wave's soak.
	GateNodeReady = "NodeReady"
	// GateMachineConfigNode: the node's MachineConfigNode reports it degraded.
	GateMachineConfigNode = "MachineConfigNode"
	// GateHealthCheck: a health check failed on the host.
	GateHealthCheck = "HealthCheck"
	// GateTimeout: the node did not pass its gates within healthChecks.timeout of its update's end.
	GateTimeout = "Timeout"
)

// GateFailure is a failed gate.
type GateFailure struct {
	Node string `json:"node"`
	// Gate is Update, NodeReady, MachineConfigNode, HealthCheck or Timeout.
	Gate string `json:"gate"`
	// Check names the failed health check (HealthCheck only).
	Check string `json:"check,omitempty"`
	// Output is the check's output, or the condition's message.
	Output string      `json:"output,omitempty"`
	Time   metav1.Time `json:"time"`
}
