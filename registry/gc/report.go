package gc

import (
	"context"
	"fmt"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// reporter tells what Clean did: events, metrics and the MachineOSConfig's ImagePruneDegraded condition.
type reporter struct {
	Client    client.Client
	Recorder  events.EventRecorder
	Namespace string
	Metrics   *Metrics
}

// report records r for t. regarding is the object the events are about when the MachineOSConfig is gone
// (the build or the tombstone).
func (p *reporter) report(ctx context.Context, t Target, r Result, regarding runtime.Object) error {
	p.Metrics.ImagesDeleted.WithLabelValues(MetricResult(r)).Inc()
	mosc := &mcfgv1.MachineOSConfig{}
	if t.MachineOSConfig == "" {
		mosc = nil
	} else if err := p.Client.Get(ctx, types.NamespacedName{Name: t.MachineOSConfig}, mosc); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading machineosconfig %s: %w", t.MachineOSConfig, err)
		}
		mosc = nil
	}
	var related runtime.Object
	if mosc != nil {
		regarding, related = mosc, regarding
	}
	switch {
	case len(r.InUseBy) > 0:
		p.Recorder.Eventf(regarding, related, corev1.EventTypeNormal, EventImageKept, "DeleteImage",
			"Kept image %s of MachineOSBuild %s: in use by %s; it will be deleted when nothing uses it",
			t.Image, t.MachineOSBuild, strings.Join(reasonNames(r.InUseBy), ", "))
	case r.Done():
		p.Metrics.BytesFreed.Add(float64(r.Size))
		if r.Deleted {
			p.Recorder.Eventf(regarding, related, corev1.EventTypeNormal, EventImageDeleted, "DeleteImage",
				"Deleted image %s of MachineOSBuild %s (%d bytes freed)", t.Image, t.MachineOSBuild, r.Size)
		}
	default:
		p.Recorder.Eventf(regarding, related, corev1.EventTypeWarning, EventImageDeleteFailed, "DeleteImage",
			"%s: cannot delete image %s of MachineOSBuild %s with push secret %q: %v (will retry)",
			FailureReason(r.Err), t.Image, t.MachineOSBuild, t.PushSecret, r.Err)
	}
	cond, ok := Condition(t, r)
	if !ok || mosc == nil {
		return nil
	}
	if cond.Status == "False" {
		// Another image of this MachineOSConfig may still be failing: keep its report.
		if failing, err := p.otherFailures(ctx, t); err != nil || failing {
			return err
		}
		if c := apimeta.FindStatusCondition(mosc.Status.Conditions, ConditionImagePruneDegraded); c == nil {
			return nil // never degraded: nothing to clear
		}
	}
	before := mosc.DeepCopy()
	cond.ObservedGeneration = mosc.Generation
	if !apimeta.SetStatusCondition(&mosc.Status.Conditions, cond) {
		return nil
	}
	if err := p.Client.Status().Patch(ctx, mosc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing condition %s of machineosconfig %s: %w", ConditionImagePruneDegraded, mosc.Name, err)
	}
	log.FromContext(ctx).Info("image prune condition", "machineosconfig", mosc.Name, "status", cond.Status, "reason", cond.Reason)
	return nil
}

// otherFailures reports whether another tombstone of t's MachineOSConfig records a registry error.
func (p *reporter) otherFailures(ctx context.Context, t Target) (bool, error) {
	var cms corev1.ConfigMapList
	if err := p.Client.List(ctx, &cms, client.InNamespace(p.Namespace),
		client.MatchingLabels{TombstoneLabel: "", wellknown.MachineOSConfigLabel: t.MachineOSConfig}); err != nil {
		return false, fmt.Errorf("listing tombstones: %w", err)
	}
	for _, cm := range cms.Items {
		if cm.Name != TombstoneName(t.Image) && cm.Data[KeyLastError] != "" {
			return true, nil
		}
	}
	return false, nil
}

// saveTombstone creates t's tombstone, or updates its reasons and last error when they changed.
func (p *reporter) saveTombstone(ctx context.Context, t Target, r Result) error {
	lastErr := ""
	if r.Err != nil {
		lastErr = r.Err.Error()
	}
	want := NewTombstone(p.Namespace, t, r.InUseBy, lastErr)
	err := p.Client.Create(ctx, want)
	if err == nil {
		log.FromContext(ctx).Info("recorded pending image deletion", "image", t.Image, "tombstone", want.Name)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating tombstone configmap %s for image %s: %w", want.Name, t.Image, err)
	}
	cur := &corev1.ConfigMap{}
	if err := p.Client.Get(ctx, client.ObjectKeyFromObject(want), cur); err != nil {
		return fmt.Errorf("reading tombstone configmap %s: %w", want.Name, err)
	}
	if cur.Data[KeyInUseBy] == want.Data[KeyInUseBy] && cur.Data[KeyLastError] == lastErr {
		return nil
	}
	before := cur.DeepCopy()
	if cur.Data == nil {
		cur.Data = map[string]string{}
	}
	cur.Data[KeyInUseBy], cur.Data[KeyLastError] = want.Data[KeyInUseBy], lastErr
	if err := p.Client.Patch(ctx, cur, client.MergeFrom(before)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("updating tombstone configmap %s: %w", cur.Name, err)
	}
	return nil
}

// deleteConfigMap deletes a ConfigMap of the namespace; a missing one is fine.
func (p *reporter) deleteConfigMap(ctx context.Context, name string) error {
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = p.Namespace, name
	if err := p.Client.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting configmap %s/%s: %w", p.Namespace, name, err)
	}
	return nil
}
