package gc

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry"
)

const (
	imgA = "reg.example:5000/os/layered@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	imgB = "reg.example:5000/os/layered@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	imgC = "reg.example:5000/os/layered@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func TestTombstoneRoundTrip(t *testing.T) {
	tgt := Target{Image: imgA, PushSecret: "push", MachineOSConfig: "layered", MachineOSBuild: "layered-1"}
	cm := NewTombstone("ns", tgt, []registry.Reason{{Kind: "Node", Name: "n1", Field: "f"}}, "boom")
	assert.True(t, IsTombstone(cm.Labels))
	assert.Contains(t, cm.Labels, wellknown.OnClusterLayeringLabel, "the build service's cache must see tombstones")
	assert.Equal(t, TombstoneName(imgA), cm.Name)
	assert.NotEqual(t, TombstoneName(imgA), TombstoneName(imgB))
	assert.LessOrEqual(t, len(cm.Name), 63)
	assert.Equal(t, "Node/n1 f", cm.Data[KeyInUseBy])
	got, err := TargetOfTombstone(cm)
	require.NoError(t, err)
	assert.Equal(t, tgt, got)

	delete(cm.Data, KeyPushSecret)
	_, err = TargetOfTombstone(cm)
	assert.EqualError(t, err, "tombstone configmap ns/"+cm.Name+": data.pushSecret is empty")
}

func TestTargetOfBuild(t *testing.T) {
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: "m-1",
		Labels:      map[string]string{wellknown.MachineOSConfigLabel: "from-label"},
		Annotations: map[string]string{wellknown.RenderedImagePushSecretAnnotation: "push"}}}
	b.Status.DigestedImagePushSpec = imgA
	assert.Equal(t, Target{Image: imgA, PushSecret: "push", MachineOSConfig: "from-label", MachineOSBuild: "m-1"}, TargetOfBuild(b))
	b.Spec.MachineOSConfig.Name = "from-spec"
	assert.Equal(t, "from-spec", TargetOfBuild(b).MachineOSConfig)
}

func TestConditionAndReasons(t *testing.T) {
	tgt := Target{Image: imgA, PushSecret: "push", MachineOSBuild: "m-1"}
	denied := &registry.ImageError{Op: "deleting", Ref: imgA, Kind: registry.KindAccessDenied, Err: errors.New("authentication required")}
	refused := fmt.Errorf("pinging: %w", syscall.ECONNREFUSED)
	tests := []struct {
		name       string
		res        Result
		wantOK     bool
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMetric string
	}{
		{"in use says nothing", Result{InUseBy: []registry.Reason{{Kind: "Node", Name: "n"}}}, false, "", "", "in_use"},
		{"deleted clears", Result{Deleted: true, Size: 5}, true, metav1.ConditionFalse, ReasonImagesDeleted, "deleted"},
		{"gone clears", Result{Gone: true}, true, metav1.ConditionFalse, ReasonImagesDeleted, "already_gone"},
		{"access denied", Result{Err: denied}, true, metav1.ConditionTrue, ReasonAccessDenied, "access_denied"},
		{"registry down", Result{Err: refused}, true, metav1.ConditionTrue, ReasonRegistryUnavailable, "unavailable"},
		{"secret missing", Result{Err: fmt.Errorf("reading registry secret ns/push: %w",
			apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, "push"))}, true, metav1.ConditionTrue, ReasonPushSecret, "error"},
		{"other", Result{Err: errors.New("weird")}, true, metav1.ConditionTrue, ReasonRegistryError, "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := Condition(tgt, tc.res)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.wantMetric, MetricResult(tc.res))
			if !ok {
				return
			}
			assert.Equal(t, ConditionImagePruneDegraded, c.Type)
			assert.Equal(t, tc.wantStatus, c.Status)
			assert.Equal(t, tc.wantReason, c.Reason)
			assert.Contains(t, c.Message, imgA)
			assert.Contains(t, c.Message, "m-1")
			if tc.res.Err != nil {
				assert.Contains(t, c.Message, `"push"`, "the message names the secret")
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBackoff(time.Second, 5*time.Second)
	b.now = func() time.Time { return now }
	assert.Zero(t, b.remaining("x"))
	var waits []time.Duration
	for range 5 {
		waits = append(waits, b.failed("x"))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, waits)
	assert.Equal(t, 5*time.Second, b.remaining("x"))
	now = now.Add(3 * time.Second)
	assert.Equal(t, 2*time.Second, b.remaining("x"))
	assert.Zero(t, b.remaining("y"))
	b.forget("x")
	assert.Zero(t, b.remaining("x"))
	assert.Equal(t, time.Second, b.failed("x"))
}

func build(name, mosc string, state mcfgv1.BuildProgress, endMin int, image string, finalizer bool) *mcfgv1.MachineOSBuild {
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.MachineOSConfigLabel: mosc},
		Annotations: map[string]string{wellknown.RenderedImagePushSecretAnnotation: "push"}}}
	b.Spec.MachineOSConfig.Name = mosc
	b.Status.Conditions = []metav1.Condition{{Type: string(state), Status: metav1.ConditionTrue}}
	if state == mcfgv1.MachineOSBuildSucceeded || state == mcfgv1.MachineOSBuildFailed {
		end := metav1.Unix(int64(endMin*60), 0)
		b.Status.BuildEnd = &end
	}
	b.Status.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(image)
	if finalizer {
		b.Finalizers = []string{FinalizerName}
	}
	return b
}

func names(bs []*mcfgv1.MachineOSBuild) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

func TestRetentionDeletions(t *testing.T) {
	mosc := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "m",
		Annotations: map[string]string{wellknown.CurrentMachineOSBuildAnnotation: "m-1"}}}
	builds := []*mcfgv1.MachineOSBuild{
		build("m-1", "m", mcfgv1.MachineOSBuildSucceeded, 1, imgA, true),
		build("m-2", "m", mcfgv1.MachineOSBuildSucceeded, 2, imgB, true),
		build("m-3", "m", mcfgv1.MachineOSBuildSucceeded, 3, imgC, false), // no finalizer yet: not now
		build("m-4", "m", mcfgv1.MachineOSBuildSucceeded, 4, imgC, true),
		build("m-5", "m", mcfgv1.MachineOSBuildFailed, 5, "", false), // failed, no image: deleted
		build("m-6", "m", mcfgv1.MachineOSBuilding, 0, "", false),    // unfinished: never
		build("o-1", "other", mcfgv1.MachineOSBuildSucceeded, 0, imgA, true),
	}
	got, err := RetentionDeletions(builds, mosc, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"m-2", "m-5"}, names(got))

	mosc.Annotations[wellknown.RetainBuildsAnnotation] = "0"
	got, err = RetentionDeletions(builds, mosc, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"m-2", "m-4", "m-5"}, names(got))

	mosc.Annotations[wellknown.RetainBuildsAnnotation] = "many"
	_, err = RetentionDeletions(builds, mosc, 1)
	assert.Error(t, err)
}

func TestPlan(t *testing.T) {
	mosc := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "m",
		Annotations: map[string]string{wellknown.CurrentMachineOSBuildAnnotation: "m-1", wellknown.RetainBuildsAnnotation: "0"}}}
	mosc.Status.CurrentImagePullSpec = imgA
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: map[string]string{wellknown.DesiredImageAnnotation: imgC}}}
	inv := registry.Inventory{
		Nodes:            []*corev1.Node{node},
		MachineOSConfigs: []*mcfgv1.MachineOSConfig{mosc},
		MachineOSBuilds: []*mcfgv1.MachineOSBuild{
			build("m-1", "m", mcfgv1.MachineOSBuildSucceeded, 1, imgA, true),
			build("m-2", "m", mcfgv1.MachineOSBuildSucceeded, 2, imgB, true),
		},
	}
	imgD := imgC[:len(imgC)-4] + "dddd"
	tombs := []corev1.ConfigMap{
		*NewTombstone("ns", Target{Image: imgC, PushSecret: "p", MachineOSConfig: "m", MachineOSBuild: "m-0"}, nil, ""),
		*NewTombstone("ns", Target{Image: imgB, PushSecret: "p", MachineOSConfig: "m", MachineOSBuild: "m-2"}, nil, ""), // duplicate image
	}
	tags := []TagCandidate{{MachineOSConfig: "m", Tag: "m-9", Image: imgD, PushSecret: "p"}}
	items := Plan(inv, tombs, tags, 3)
	type row struct{ build, source, action, inUse string }
	var got []row
	for _, it := range items {
		got = append(got, row{it.Build, it.Source, it.Action, fmt.Sprint(it.InUseBy)})
	}
	assert.Equal(t, []row{
		{"m-0", SourceTombstone, ActionKeep, "[Node/n]"},
		{"m-1", SourceBuild, ActionKeep, "[MachineOSBuild/m-1 MachineOSConfig/m]"},
		{"m-2", SourceBuild, ActionDelete, "[]"},
		{"m-9", SourceRegistryTag, ActionDelete, "[]"},
	}, got)
}
