package gc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/registry"
)

// Cleaner deletes one image when nothing uses it: the decision (registry.InUse) and the registry calls
// shared by the controllers and `imagemode prune images`.
type Cleaner struct {
	// Reader reads push secrets and the ControllerConfig (the API reader: secrets are never cached).
	Reader client.Reader
	// Namespace holds the push secrets.
	Namespace string
	// ControllerConfigName names the ControllerConfig with the registry CAs and proxy.
	ControllerConfigName string
	// Deleter deletes by digest; the controllers use one attempt and retry by requeueing.
	Deleter registry.Deleter
}

// Result is what Clean did with one image.
type Result struct {
	// InUseBy is non-empty when the image is in use: nothing else was done.
	InUseBy []registry.Reason
	// Deleted: the manifest was deleted now; Gone: it was not there any more.
	Deleted, Gone bool
	// Size is the manifest-listed size of a deleted image (compressed layers plus config), the bytes its
	// deletion frees once the registry collects blobs no other manifest shares.
	Size int64
	// Err is why the image could not be deleted (registry error, unreadable push secret).
	Err error
}

// Done reports whether the image is no longer in the registry.
func (r Result) Done() bool { return r.Err == nil && (r.Deleted || r.Gone) }

// Clean checks t.Image against inv and, when nothing uses it, inspects it (for its size) and deletes it by
// digest.
func (c *Cleaner) Clean(ctx context.Context, t Target, inv registry.Inventory) Result {
	inv.ImageBuild = t.MachineOSBuild
	if reasons := registry.InUse(t.Image, inv); len(reasons) > 0 {
		return Result{InUseBy: reasons}
	}
	sys, cleanup, err := registry.NewClusterSystemContext(ctx, c.Reader, registry.ClusterAuth{
		Namespace: c.Namespace, SecretName: t.PushSecret, ControllerConfigName: c.ControllerConfigName})
	if err != nil {
		return Result{Err: err}
	}
	defer cleanup()
	info, err := registry.Inspect(ctx, sys, t.Image)
	switch {
	case registry.IsNotFound(err):
		return Result{Gone: true}
	case err != nil:
		return Result{Err: err}
	}
	if err := c.Deleter.Delete(ctx, sys, t.Image); err != nil {
		return Result{Err: err}
	}
	return Result{Deleted: true, Size: info.Size}
}

// LoadInventory lists everything that can reference an image: all nodes, MachineOSConfigs,
// MachineOSBuilds and MachineConfigs. Any failure is an error: deciding without one of them is unsafe.
func LoadInventory(ctx context.Context, r client.Reader) (registry.Inventory, error) {
	var (
		nodes   corev1.NodeList
		moscs   mcfgv1.MachineOSConfigList
		mosbs   mcfgv1.MachineOSBuildList
		configs mcfgv1.MachineConfigList
	)
	for _, l := range []struct {
		kind string
		list client.ObjectList
	}{{"nodes", &nodes}, {"machineosconfigs", &moscs}, {"machineosbuilds", &mosbs}, {"machineconfigs", &configs}} {
		if err := r.List(ctx, l.list); err != nil {
			return registry.Inventory{}, fmt.Errorf("listing %s: %w", l.kind, err)
		}
	}
	inv := registry.Inventory{}
	for i := range nodes.Items {
		inv.Nodes = append(inv.Nodes, &nodes.Items[i])
	}
	for i := range moscs.Items {
		inv.MachineOSConfigs = append(inv.MachineOSConfigs, &moscs.Items[i])
	}
	for i := range mosbs.Items {
		inv.MachineOSBuilds = append(inv.MachineOSBuilds, &mosbs.Items[i])
	}
	for i := range configs.Items {
		inv.MachineConfigs = append(inv.MachineConfigs, &configs.Items[i])
	}
	return inv, nil
}

// ConditionImagePruneDegraded is the MachineOSConfig condition saying its images cannot be deleted.
const ConditionImagePruneDegraded = "ImagePruneDegraded"

// Reasons of the ImagePruneDegraded condition and of the Warning events.
const (
	ReasonAccessDenied        = "AccessDenied"
	ReasonRegistryUnavailable = "RegistryUnavailable"
	ReasonUntrusted           = "RegistryCertificateUntrusted"
	ReasonPushSecret          = "PushSecretUnavailable"
	ReasonRegistryError       = "RegistryError"
	// ReasonImagesDeleted is the reason of the False condition after a deletion succeeded.
	ReasonImagesDeleted = "ImagesDeleted"
)

// Event reasons.
const (
	EventImageDeleted       = "ImageDeleted"
	EventImageKept          = "ImageDeletionDeferred"
	EventImageDeleteFailed  = "ImageDeletionFailed"
	EventBuildsPruned       = "BuildsPruned"
	EventRetentionInvalid   = "RetentionInvalid"
	EventTombstoneMalformed = "TombstoneMalformed"
)

// FailureReason classifies a Clean error into a condition reason.
func FailureReason(err error) string {
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return ReasonPushSecret
	}
	var ie *registry.ImageError
	if !errors.As(err, &ie) && strings.HasPrefix(err.Error(), "reading registry secret") {
		return ReasonPushSecret
	}
	switch registry.KindOf(err) {
	case registry.KindAccessDenied:
		return ReasonAccessDenied
	case registry.KindTransient:
		return ReasonRegistryUnavailable
	case registry.KindUntrusted:
		return ReasonUntrusted
	}
	return ReasonRegistryError
}

// Condition returns the ImagePruneDegraded condition after Clean gave r for t; false when r says nothing
// about the registry (the image is in use).
func Condition(t Target, r Result) (metav1.Condition, bool) {
	switch {
	case r.Err != nil:
		return metav1.Condition{Type: ConditionImagePruneDegraded, Status: metav1.ConditionTrue, Reason: FailureReason(r.Err),
			Message: fmt.Sprintf("cannot delete image %s of MachineOSBuild %s with push secret %q: %v",
				t.Image, t.MachineOSBuild, t.PushSecret, r.Err)}, true
	case r.Done():
		return metav1.Condition{Type: ConditionImagePruneDegraded, Status: metav1.ConditionFalse, Reason: ReasonImagesDeleted,
			Message: fmt.Sprintf("deleted image %s of MachineOSBuild %s", t.Image, t.MachineOSBuild)}, true
	}
	return metav1.Condition{}, false
}

// MetricResult is the result label of imagemode_registry_images_deleted_total for r.
func MetricResult(r Result) string {
	switch {
	case len(r.InUseBy) > 0:
		return "in_use"
	case r.Deleted:
		return "deleted"
	case r.Gone:
		return "already_gone"
	case FailureReason(r.Err) == ReasonAccessDenied:
		return "access_denied"
	case FailureReason(r.Err) == ReasonRegistryUnavailable:
		return "unavailable"
	}
	return "error"
}

// reasonNames renders reasons as "Kind/name", sorted and without duplicates.
func reasonNames(reasons []registry.Reason) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reasons {
		s := r.Kind + "/" + r.Name
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
