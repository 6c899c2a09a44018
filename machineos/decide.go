package machineos

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Annotations this project adds to MachineOSBuilds (beyond the reference's).
const (
	// SpecHashAnnotation records the MachineOSConfig spec a build was made for, so a later build that only
	// changes files or units can reuse its image.
	SpecHashAnnotation = "imagemode.io/machine-os-config-spec"
	// ReusedFromAnnotation names the build whose image a build reuses (no build ran).
	ReusedFromAnnotation = "imagemode.io/reused-image-from"
	// BaseImageAnnotation records the base image a build is made from, pinned by digest
	// (repository@sha256:…): the rendered config's osImageURL as resolved when the build was decided. The
	// build's configs stage starts FROM it.
	BaseImageAnnotation = "imagemode.io/base-image"
	// WaitingAnnotation says why a build that has not started waits (a push or pull secret that is
	// missing or invalid); it goes when the build's Job is created.
	WaitingAnnotation = "imagemode.io/waiting-for"
)

// ConditionBaseImageResolved is the MachineOSConfig condition that says whether the base image's tag
// could be resolved to a digest (reasons ReasonBaseImageResolved, ReasonBaseImageUnavailable).
const ConditionBaseImageResolved = "BaseImageResolved"

// Reasons of the MachineOSConfig Ready condition and the pool's ImageBuildDegraded condition.
const (
	ConditionReady           = "Ready"
	ReasonBuilt              = "Built"
	ReasonBuilding           = "Building"
	ReasonBuildFailed        = "BuildFailed"
	ReasonBuildInterrupted   = "BuildInterrupted"
	ReasonBuildPending       = "BuildPending"
	ReasonBuildWaiting       = "BuildWaiting"
	ReasonBuildSuccess       = "BuildSuccess"
	ReasonPoolNotFound       = "PoolNotFound"
	ReasonPoolNotRendered    = "PoolNotRendered"
	ReasonConflict           = "ConflictingMachineOSConfig"
	ReasonRebuildRequested   = "RebuildRequested"
	ReasonInvalidBuildInputs = "InvalidBuildInputs"
	ReasonImageMissing       = "ImageMissing"
	// ReasonBaseImageResolved: osImageURL is pinned by digest or its tag resolved.
	ReasonBaseImageResolved = "Resolved"
	// ReasonBaseImageUnavailable: the base image's tag could not be resolved (registry down, credentials);
	// nothing is rebuilt because of it.
	ReasonBaseImageUnavailable = "BaseImageUnavailable"
)

// ConfigInputs is what a MachineOSConfig's next step depends on.
type ConfigInputs struct {
	MOSC *mcfgv1.MachineOSConfig
	// Others are the other MachineOSConfigs of the cluster.
	Others []*mcfgv1.MachineOSConfig
	// Pool and Rendered (the pool's spec.configuration) are nil when missing.
	Pool     *mcfgv1.MachineConfigPool
	Rendered *mcfgv1.MachineConfig
	// Builds are the MachineOSBuilds this MachineOSConfig controls.
	Builds []*mcfgv1.MachineOSBuild
	// CurrentRendered is the rendered config of the build the MachineOSConfig currently points at (nil if
	// none or gone).
	CurrentRendered *mcfgv1.MachineConfig
	// MissingImages names the builds whose image is known to be gone from the registry.
	MissingImages map[string]bool
	// BaseImage is Rendered's osImageURL resolved to its digested pull spec (repository@sha256:…), when it
	// is a tag that was resolved; BaseImageError says why resolving it failed. Both empty: not resolved (an
	// osImageURL pinned by digest needs no resolving; without a resolver, base images are not tracked).
	BaseImage, BaseImageError string
}

// Action is what to do to the builds.
type Action string

// Actions.
const (
	ActionNone   Action = ""       // nothing to create or delete
	ActionCreate Action = "Create" // create Decision.Build
	ActionReuse  Action = "Reuse"  // create Decision.Build as Succeeded with Decision.ReuseFrom's image
	ActionDelete Action = "Delete" // delete Decision.Build (a rebuild: it is created again once gone)
)

// Decision is a MachineOSConfig's next step and what to report.
type Decision struct {
	Action Action
	// Build is the name of the build for the pool's current config (empty when there is none yet).
	Build     string
	ReuseFrom *mcfgv1.MachineOSBuild
	// DeleteStale are other builds of this MachineOSConfig that did not succeed: replaced, they go.
	DeleteStale []string
	// RemoveRebuildAnnotation is set once the requested rebuild has begun.
	RemoveRebuildAnnotation bool
	// CurrentBuild is the value of the current-machine-os-build annotation (empty: leave it).
	CurrentBuild string
	// Image is the digested pull spec to publish in status.currentImagePullSpec (empty: leave it).
	Image string
	// Ready is the MachineOSConfig's Ready condition.
	Ready metav1.Condition
	// PoolCondition is the pool's ImageBuildDegraded condition (nil: no pool to report on).
	PoolCondition *mcfgv1.MachineConfigPoolCondition
	// BaseImage is the pinned base image of Build, recorded on a build Decide creates ("" when untracked).
	BaseImage string
	// BaseImageCondition is the MachineOSConfig's BaseImageResolved condition (empty Type: leave it).
	BaseImageCondition metav1.Condition
}

// Decide computes a MachineOSConfig's next step. It is pure.
func Decide(in ConfigInputs) Decision {
	mosc := in.MOSC
	pool := mosc.Spec.MachineConfigPool.Name
	if other := olderFor(pool, mosc, in.Others); other != "" {
		return wait(ReasonConflict, fmt.Sprintf("MachineOSConfig %s already targets pool %s; a pool can have one MachineOSConfig", other, pool), nil)
	}
	if in.Pool == nil {
		return wait(ReasonPoolNotFound, fmt.Sprintf("MachineConfigPool %s not found; the build starts when it exists", pool), nil)
	}
	if in.Rendered == nil {
		return wait(ReasonPoolNotRendered, fmt.Sprintf("pool %s has no rendered config yet", pool), poolPending())
	}
	base, baseCond := baseImageOf(in)
	if base == "" && baseCond.Status == metav1.ConditionFalse {
		// A tag that cannot be resolved and no build to keep: nothing can be decided (a registry error never
		// starts a build).
		d := wait(ReasonBaseImageUnavailable, baseCond.Message, nil)
		d.BaseImageCondition = baseCond
		return d
	}
	name, err := BuildName(mosc, in.Pool, in.Rendered, base)
	if err != nil {
		return wait(ReasonInvalidBuildInputs, err.Error(), poolPending())
	}
	d := Decision{Build: name, BaseImage: base, BaseImageCondition: baseCond}
	builds := map[string]*mcfgv1.MachineOSBuild{}
	for _, b := range in.Builds {
		builds[b.Name] = b
	}
	target := builds[name]
	_, rebuild := mosc.Annotations[wellknown.RebuildAnnotation]

	switch {
	case rebuild && target != nil && target.DeletionTimestamp == nil:
		d.Action = ActionDelete
		d.Ready = condition(metav1.ConditionFalse, ReasonRebuildRequested, fmt.Sprintf("rebuilding %s: deleting the previous build", name))
		return d
	case rebuild && target != nil:
		d.Ready = condition(metav1.ConditionFalse, ReasonRebuildRequested, fmt.Sprintf("rebuilding %s: waiting for the previous build to go", name))
		return d
	case target != nil && target.DeletionTimestamp == nil && in.MissingImages[target.Name]:
		// The build succeeded once, but its image is gone from the registry: build it again.
		d.Action = ActionDelete
		d.Ready = condition(metav1.ConditionFalse, ReasonImageMissing, fmt.Sprintf("the image of %s (%s) is gone from the registry; rebuilding", name, target.Status.DigestedImagePushSpec))
		return d
	case target == nil:
		current := builds[osbuild.CurrentName(mosc)]
		if !rebuild && current != nil && !in.MissingImages[current.Name] && canReuse(current, in.CurrentRendered, in.Rendered, mosc, base) {
			d.Action, d.ReuseFrom = ActionReuse, current
			d.Image = string(current.Status.DigestedImagePushSpec)
		} else {
			d.Action = ActionCreate
		}
		d.RemoveRebuildAnnotation = rebuild
		d.CurrentBuild = name
		d.DeleteStale = staleBuilds(in.Builds, name)
		if d.Action == ActionReuse {
			d.Ready = condition(metav1.ConditionTrue, ReasonBuilt, fmt.Sprintf("image %s reused for %s: only files or units changed", d.Image, in.Rendered.Name))
			d.PoolCondition = poolCondition(corev1.ConditionFalse, ReasonBuildSuccess, "")
		} else {
			d.Ready = condition(metav1.ConditionFalse, ReasonBuildPending, fmt.Sprintf("build %s created", name))
			d.PoolCondition = poolCondition(corev1.ConditionFalse, ReasonBuilding, "")
		}
		return d
	}

	d.CurrentBuild = name
	if from := builds[target.Annotations[ReusedFromAnnotation]]; from != nil && osbuild.StateOf(target) == osbuild.StateInitial && osbuild.StateOf(from) == osbuild.StateSucceeded {
		// A reuse whose status was not recorded yet (interrupted between creation and status): finish it.
		d.Action, d.ReuseFrom, d.Image = ActionReuse, from, string(from.Status.DigestedImagePushSpec)
		d.Ready = condition(metav1.ConditionTrue, ReasonBuilt, fmt.Sprintf("image %s reused for %s: only files or units changed", d.Image, in.Rendered.Name))
		d.PoolCondition = poolCondition(corev1.ConditionFalse, ReasonBuildSuccess, "")
		return d
	}
	switch state := osbuild.StateOf(target); state {
	case osbuild.StateSucceeded:
		d.Image = string(target.Status.DigestedImagePushSpec)
		d.DeleteStale = staleBuilds(in.Builds, name)
		d.Ready = condition(metav1.ConditionTrue, ReasonBuilt, fmt.Sprintf("image %s built by %s", d.Image, name))
		d.PoolCondition = poolCondition(corev1.ConditionFalse, ReasonBuildSuccess, "")
	case osbuild.StateFailed, osbuild.StateInterrupted:
		reason := ReasonBuildFailed
		if state == osbuild.StateInterrupted {
			reason = ReasonBuildInterrupted
		}
		msg := fmt.Sprintf("Failed to build OS image for pool %s (MachineOSBuild: %s): %s", pool, name, conditionSummary(target, state))
		d.Ready = condition(metav1.ConditionFalse, reason, msg+"; change the MachineOSConfig or add the rebuild annotation to build again")
		d.PoolCondition = poolCondition(corev1.ConditionTrue, ReasonBuildFailed, msg)
	default:
		d.DeleteStale = staleBuilds(in.Builds, name)
		d.Ready = condition(metav1.ConditionFalse, ReasonBuilding, fmt.Sprintf("build %s is %s", name, stateWord(state)))
		if why := target.Annotations[WaitingAnnotation]; why != "" && state == osbuild.StateInitial {
			d.Ready = condition(metav1.ConditionFalse, ReasonBuildWaiting, fmt.Sprintf("build %s waits: %s", name, why))
		}
		d.PoolCondition = poolCondition(corev1.ConditionFalse, ReasonBuilding, "")
	}
	return d
}

// SpecHash is a short digest of a MachineOSConfig spec.
func SpecHash(spec mcfgv1.MachineOSConfigSpec) string {
	raw, _ := json.Marshal(spec) // a spec of strings always encodes
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:16]
}

// RequiresRebuild reports whether moving from one rendered config to another changes the image itself: a new
// base image, extensions or kernel. Files, units, ssh keys and kernel arguments (which nodes apply) do not.
func RequiresRebuild(old, new *mcfgv1.MachineConfig) bool {
	o, n := old.Spec, new.Spec
	return o.OSImageURL != n.OSImageURL || o.BaseOSExtensionsContainerImage != n.BaseOSExtensionsContainerImage ||
		kernelType(o.KernelType) != kernelType(n.KernelType) || !reflect.DeepEqual(nonNil(o.Extensions), nonNil(n.Extensions))
}

// canReuse: the current build succeeded for the same MachineOSConfig spec and base image, and the config
// change does not touch the image.
func canReuse(current *mcfgv1.MachineOSBuild, currentRendered, rendered *mcfgv1.MachineConfig, mosc *mcfgv1.MachineOSConfig, base string) bool {
	return current != nil && current.DeletionTimestamp == nil && osbuild.StateOf(current) == osbuild.StateSucceeded &&
		current.Status.DigestedImagePushSpec != "" && currentRendered != nil &&
		current.Annotations[SpecHashAnnotation] == SpecHash(mosc.Spec) && !RequiresRebuild(currentRendered, rendered) &&
		sameBase(current, rendered, base)
}

// sameBase: the build was made from base. A build without the annotation (made before base images were
// tracked) counts as made from its osImageURL, which RequiresRebuild compares, when that is pinned.
func sameBase(b *mcfgv1.MachineOSBuild, rendered *mcfgv1.MachineConfig, base string) bool {
	if base == "" {
		return true // untracked
	}
	had := b.Annotations[BaseImageAnnotation]
	return had == base || (had == "" && base == rendered.Spec.OSImageURL)
}

// baseImageOf returns the pinned base image a build of in.Rendered is made from and the BaseImageResolved
// condition. A tag that could not be resolved keeps the current build's base image when the osImageURL is
// unchanged (a registry error is no evidence that the tag moved); with nothing to keep, the base is "" and
// the condition False.
func baseImageOf(in ConfigInputs) (string, metav1.Condition) {
	url := in.Rendered.Spec.OSImageURL
	resolved := func(msg string) metav1.Condition {
		return metav1.Condition{Type: ConditionBaseImageResolved, Status: metav1.ConditionTrue, Reason: ReasonBaseImageResolved, Message: msg}
	}
	unavailable := func(msg string) metav1.Condition {
		return metav1.Condition{Type: ConditionBaseImageResolved, Status: metav1.ConditionFalse, Reason: ReasonBaseImageUnavailable, Message: msg}
	}
	switch {
	case IsDigested(url):
		return url, resolved(fmt.Sprintf("osImageURL %s is pinned by digest", url))
	case in.BaseImage != "":
		return in.BaseImage, resolved(fmt.Sprintf("osImageURL %s resolves to %s", url, in.BaseImage))
	case in.BaseImageError == "":
		return "", metav1.Condition{} // not tracked
	}
	msg := fmt.Sprintf("resolving the base image %s of %s: %s", url, in.Rendered.Name, in.BaseImageError)
	var current *mcfgv1.MachineOSBuild
	for _, b := range in.Builds {
		if b.Name == osbuild.CurrentName(in.MOSC) {
			current = b
		}
	}
	if current != nil && in.CurrentRendered != nil && in.CurrentRendered.Spec.OSImageURL == url && current.Annotations[BaseImageAnnotation] != "" {
		kept := current.Annotations[BaseImageAnnotation]
		return kept, unavailable(fmt.Sprintf("%s; keeping %s, the base image of %s, until it resolves", msg, kept, current.Name))
	}
	return "", unavailable(msg + "; no build until it resolves")
}

// staleBuilds are the builds other than keep that did not succeed.
func staleBuilds(builds []*mcfgv1.MachineOSBuild, keep string) []string {
	var out []string
	for _, b := range builds {
		if b.Name != keep && b.DeletionTimestamp == nil && osbuild.StateOf(b) != osbuild.StateSucceeded {
			out = append(out, b.Name)
		}
	}
	sort.Strings(out)
	return out
}

// olderFor returns the name of another MachineOSConfig for pool created before mosc (ties: by name).
func olderFor(pool string, mosc *mcfgv1.MachineOSConfig, others []*mcfgv1.MachineOSConfig) string {
	for _, o := range others {
		if o.Name == mosc.Name || o.Spec.MachineConfigPool.Name != pool || o.DeletionTimestamp != nil {
			continue
		}
		if o.CreationTimestamp.Before(&mosc.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&mosc.CreationTimestamp) && o.Name < mosc.Name) {
			return o.Name
		}
	}
	return ""
}

func wait(reason, msg string, pool *mcfgv1.MachineConfigPoolCondition) Decision {
	return Decision{Ready: condition(metav1.ConditionFalse, reason, msg), PoolCondition: pool}
}

func poolPending() *mcfgv1.MachineConfigPoolCondition {
	return poolCondition(corev1.ConditionFalse, ReasonBuildPending, "")
}

func condition(status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: ConditionReady, Status: status, Reason: reason, Message: msg}
}

func poolCondition(status corev1.ConditionStatus, reason, msg string) *mcfgv1.MachineConfigPoolCondition {
	return &mcfgv1.MachineConfigPoolCondition{Type: mcfgv1.MachineConfigPoolImageBuildDegraded, Status: status, Reason: reason, Message: msg}
}

// conditionSummary is "<reason>: <message>" of the build's True condition.
func conditionSummary(b *mcfgv1.MachineOSBuild, s osbuild.State) string {
	for _, c := range b.Status.Conditions {
		if c.Type == string(s) {
			return c.Reason + ": " + c.Message
		}
	}
	return string(s)
}

func stateWord(s osbuild.State) string {
	if s == osbuild.StateInitial {
		return "pending"
	}
	return string(s)
}

func kernelType(k string) string {
	if k == "" {
		return "default"
	}
	return k
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
