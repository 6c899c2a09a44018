// Package wellknown defines, once, the strings this project shares with OpenShift's Machine Config Operator
// and that users or other components can observe: label and annotation keys, values and object names.
// Their values must match the reference implementation exactly (shared/reference/mco-behaviour.md).
package wellknown

// Group is the API group of MachineConfigs, pools and the layering objects.
const Group = "machineconfiguration.openshift.io"

// MachineConfig labels and annotations.
const (
	// RoleLabel selects MachineConfigs into pools (e.g. "worker").
	RoleLabel = Group + "/role"
	// GeneratedByControllerVersionAnnotation marks a MachineConfig written by a controller (rendered configs,
	// generated registries configs); configs without it are user configs, whose osImageURL overrides the base.
	GeneratedByControllerVersionAnnotation = Group + "/generated-by-controller-version"
	// ReleaseImageVersionAnnotation carries the release version a rendered config was made for.
	ReleaseImageVersionAnnotation = Group + "/release-image-version"
	// OSImageURLOverriddenAnnotation is set on a rendered config whose osImageURL differs from the base.
	OSImageURLOverriddenAnnotation = Group + "/os-image-url-overridden"
	// RenderedPrefix starts every rendered MachineConfig's name: rendered-<pool>-<hash>.
	RenderedPrefix = "rendered-"
)

// Node annotations written by the rollout and the daemon.
const (
	CurrentConfigAnnotation = Group + "/currentConfig"
	DesiredConfigAnnotation = Group + "/desiredConfig"
	CurrentImageAnnotation  = Group + "/currentImage"
	DesiredImageAnnotation  = Group + "/desiredImage"
	StateAnnotation         = Group + "/state"
	ReasonAnnotation        = Group + "/reason"
	// FirstPivotConfigAnnotation names the rendered config a node was first installed with (served with its
	// first-boot Ignition); it is never cleared.
	FirstPivotConfigAnnotation = Group + "/firstPivotConfig"
	// PostConfigActionAnnotation is "Rebooting" while the daemon has queued a reboot; it is cleared after
	// the boot.
	PostConfigActionAnnotation = Group + "/post-config-action"
	PostConfigActionRebooting  = "Rebooting"
)

// Drain handshake between the daemon and the drain controller: the daemon writes DesiredDrainAnnotation
// (drain-<config> or uncordon-<config>), the drain controller performs it and then copies the value to
// LastAppliedDrainAnnotation.
const (
	DesiredDrainAnnotation     = Group + "/desiredDrain"
	LastAppliedDrainAnnotation = Group + "/lastAppliedDrain"
	// DrainVerb and UncordonVerb are the verbs before the first "-" of a desiredDrain value.
	DrainVerb    = "drain"
	UncordonVerb = "uncordon"
)

// Values of the node StateAnnotation, written by the daemon.
const (
	NodeStateDone           = "Done"
	NodeStateWorking        = "Working"
	NodeStateDegraded       = "Degraded"
	NodeStateUnreconcilable = "Unreconcilable"
)

// UpdateInProgressTaintKey is the key of the PreferNoSchedule taint the rollout puts on a pool's nodes that
// do not yet target the pool's config, so that pods drained elsewhere avoid nodes about to be drained.
const UpdateInProgressTaintKey = "UpdateInProgress"

// Built-in pool names.
const (
	MasterPool = "master"
	WorkerPool = "worker"
)

// BuiltInPoolLabel marks the pools OpenShift ships (master, worker, arbiter; the value is empty). Controllers
// that generate per-role MachineConfigs (e.g. 99-<pool>-generated-registries) write them for these pools only;
// custom pools get them through the worker role.
const BuiltInPoolLabel = Group + "/mco-built-in"

// Labels and annotations of on-cluster layering (builds and their ephemeral objects).
const (
	// OnClusterLayeringLabel marks every object of the build service.
	OnClusterLayeringLabel = Group + "/on-cluster-layering"
	// EphemeralBuildObjectLabel marks the Job, ConfigMaps and Secrets of one build.
	EphemeralBuildObjectLabel = Group + "/ephemeral-build-object"
	// RenderedMachineConfigLabel names the rendered config a build is for.
	RenderedMachineConfigLabel = Group + "/rendered-machine-config"
	// TargetMachineConfigPoolLabel names the pool a build is for.
	TargetMachineConfigPoolLabel = Group + "/target-machine-config-pool"
	// MachineOSConfigLabel names the MachineOSConfig (also an annotation key).
	MachineOSConfigLabel = Group + "/machine-os-config"
	// MachineOSBuildLabel names the MachineOSBuild (also an annotation key).
	MachineOSBuildLabel = Group + "/machine-os-build"
	// CurrentMachineOSBuildAnnotation on a MachineOSConfig names its current build.
	CurrentMachineOSBuildAnnotation = Group + "/current-machine-os-build"
	// RebuildAnnotation on a MachineOSConfig asks for its current build to be rebuilt (any value).
	RebuildAnnotation = Group + "/rebuild"
	// RenderedImagePushSecretAnnotation on a MachineOSBuild names the push secret it was pushed with.
	RenderedImagePushSecretAnnotation = Group + "/rendered-image-push-secret"
	// JobUIDAnnotation on a MachineOSBuild holds the UID of its build Job.
	JobUIDAnnotation = Group + "/job-uid"
)

// ControllerConfigName is the cluster's single ControllerConfig, which supplies the base OS images, the
// registry CAs and the proxy settings.
const ControllerConfigName = "machine-config-controller"

// MCONamespace is where the build service keeps its objects and where the docs keep the pull secrets.
const MCONamespace = "openshift-machine-config-operator"

// GlobalPullSecretCopy is the base image pull secret used when a MachineOSConfig names none.
const GlobalPullSecretCopy = "global-pull-secret-copy"

// ForceFile makes the daemon skip validation and reboot; a MachineConfig may not write it.
const ForceFile = "/run/machine-config-daemon-force"

// RetainBuildsAnnotation on a MachineOSConfig sets how many successful builds (besides the current one)
// the retention keeps, with their images; a non-negative integer. This project's own key: the reference
// keeps every build until its MachineOSConfig is deleted.
const RetainBuildsAnnotation = "imagemode.io/retain-builds"
