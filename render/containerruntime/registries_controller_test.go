package containerruntime

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/registries"
	"github.com/imagemode/imagemode/render/renderer"
)

// recordedEvent is one event of recorder.
type recordedEvent struct {
	regardingKind, regardingName, relatedName, eventType, reason, note string
}

// recorder records events with the objects they are about.
type recorder struct {
	mu     sync.Mutex
	events []recordedEvent
}

var _ events.EventRecorder = &recorder{}

func (r *recorder) Eventf(regarding, related runtime.Object, eventType, reason, _ string, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := recordedEvent{eventType: eventType, reason: reason, note: fmt.Sprintf(note, args...)}
	if o, ok := regarding.(client.Object); ok {
		e.regardingKind, e.regardingName = fmt.Sprintf("%T", o), o.GetName()
	}
	if o, ok := related.(client.Object); ok {
		e.relatedName = o.GetName()
	}
	r.events = append(r.events, e)
}

func (r *recorder) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.events...)
}

// countWrites wraps c so that every create, update, patch and delete is counted in n.
func countWrites(c client.WithWatch, n *atomic.Int32) client.WithWatch {
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			n.Add(1)
			return cl.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			n.Add(1)
			return cl.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			n.Add(1)
			return cl.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			n.Add(1)
			return cl.Delete(ctx, obj, opts...)
		},
	})
}

func builtInPool(name string) *mcfgv1.MachineConfigPool {
	return labelledPool(name, map[string]string{wellknown.BuiltInPoolLabel: ""})
}

// TestReconcile drives the reconciler on a fake client: what it writes for each starting state, and that a
// second pass writes nothing.
func TestReconcile(t *testing.T) {
	docs := docsICSP(t)
	ours, err := Desired("worker", registries.Inputs{ICSPs: []operatorv1alpha1.ImageContentSourcePolicy{docs}}, "v1")
	require.NoError(t, err)
	usersConfig := func() *mcfgv1.MachineConfig {
		mc := ours.DeepCopy()
		mc.Annotations = nil
		mc.Labels["team"] = "platform"
		mc.Spec.Config = runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"}}`)}
		return mc
	}
	badIDMS := idms("bad", configv1.NeverContactSource, "quay.io/team", "quay.io/team")

	tests := []struct {
		name    string
		pool    string
		objects []client.Object
		// wantConfig checks the config after the pass; nil means it must not exist.
		wantConfig func(t *testing.T, mc *mcfgv1.MachineConfig)
		wantErr    string
		wantEvents []recordedEvent
	}{
		{name: "creates the config of a built-in pool", pool: "worker",
			objects: []client.Object{builtInPool("worker"), docs.DeepCopy()},
			wantConfig: func(t *testing.T, mc *mcfgv1.MachineConfig) {
				assert.True(t, sameSpec(ours.Spec, mc.Spec))
				assert.Equal(t, "v1", mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation])
				assert.Empty(t, mc.OwnerReferences)
			}},
		{name: "ignores a custom pool", pool: "infra",
			objects: []client.Object{labelledPool("infra", nil), docs.DeepCopy()}},
		{name: "ignores a pool that is gone", pool: "worker", objects: []client.Object{docs.DeepCopy()}},
		{name: "takes over a user's config of its name, keeping the user's labels", pool: "worker",
			objects: []client.Object{builtInPool("worker"), docs.DeepCopy(), usersConfig()},
			wantConfig: func(t *testing.T, mc *mcfgv1.MachineConfig) {
				assert.True(t, sameSpec(ours.Spec, mc.Spec))
				assert.Equal(t, "v1", mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation])
				assert.Equal(t, "platform", mc.Labels["team"])
			}},
		{name: "updates its config written by another controller version", pool: "worker",
			objects: []client.Object{builtInPool("worker"), docs.DeepCopy(), func() client.Object {
				mc := ours.DeepCopy()
				mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation] = "v0"
				return mc
			}()},
			wantConfig: func(t *testing.T, mc *mcfgv1.MachineConfig) {
				assert.Equal(t, "v1", mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation])
			}},
		{name: "deletes its config when there is nothing to configure", pool: "worker",
			objects: []client.Object{builtInPool("worker"), ours.DeepCopy()}},
		{name: "leaves a user's config of its name alone when there is nothing to configure", pool: "worker",
			objects: []client.Object{builtInPool("worker"), usersConfig()},
			wantConfig: func(t *testing.T, mc *mcfgv1.MachineConfig) {
				assert.Equal(t, `{"ignition":{"version":"3.2.0"}}`, string(mc.Spec.Config.Raw))
				assert.NotContains(t, mc.Annotations, wellknown.GeneratedByControllerVersionAnnotation)
			}},
		{name: "invalid input keeps the config and blames the object", pool: "worker",
			objects: []client.Object{builtInPool("worker"), docs.DeepCopy(), badIDMS.DeepCopy(), func() client.Object {
				mc := ours.DeepCopy()
				mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation] = "v0"
				return mc
			}()},
			wantConfig: func(t *testing.T, mc *mcfgv1.MachineConfig) {
				assert.Equal(t, "v0", mc.Annotations[wellknown.GeneratedByControllerVersionAnnotation], "not touched")
			},
			wantErr: "imagedigestmirrorsets/bad: spec.imageDigestMirrors[0].mirrors[0]",
			wantEvents: []recordedEvent{{
				regardingKind: "*v1.ImageDigestMirrorSet", regardingName: "bad", relatedName: "worker",
				eventType: "Warning", reason: ReasonInvalidRegistryConfig,
				note: `not changing 99-worker-generated-registries, nodes keep their current registries configuration: imagedigestmirrorsets/bad: spec.imageDigestMirrors[0].mirrors[0]: Invalid value: "quay.io/team": the source cannot be one of the mirrors when mirrorSourcePolicy is NeverContactSource`,
			}}},
		{name: "invalid input does not create the config either", pool: "master",
			objects: []client.Object{builtInPool("master"), docs.DeepCopy(), badIDMS.DeepCopy()},
			wantErr: "imagedigestmirrorsets/bad",
			wantEvents: []recordedEvent{{
				regardingKind: "*v1.ImageDigestMirrorSet", regardingName: "bad", relatedName: "master",
				eventType: "Warning", reason: ReasonInvalidRegistryConfig,
				note: `not changing 99-master-generated-registries, nodes keep their current registries configuration: imagedigestmirrorsets/bad: spec.imageDigestMirrors[0].mirrors[0]: Invalid value: "quay.io/team": the source cannot be one of the mirrors when mirrorSourcePolicy is NeverContactSource`,
			}}},
		{name: "blocking the release payload repository is refused, blaming the image config", pool: "master",
			objects: []client.Object{builtInPool("master"), imageConfig(configv1.RegistrySources{BlockedRegistries: []string{"quay.io"}}),
				func() client.Object {
					cc := renderer.NewControllerConfig("quay.io/os@sha256:x", "quay.io/ext@sha256:x", "4.19.0")
					cc.Spec.ReleaseImage = releaseImage
					return cc
				}()},
			wantErr: "images/cluster: spec.registrySources.blockedRegistries[0]",
			wantEvents: []recordedEvent{{
				regardingKind: "*v1.Image", regardingName: "cluster", relatedName: "master", eventType: "Warning",
				reason: ReasonInvalidRegistryConfig,
				note:   "not changing 99-master-generated-registries, nodes keep their current registries configuration: images/cluster: spec.registrySources.blockedRegistries[0]: Invalid value: \"quay.io\": cannot block the repository the release payload is pulled from (quay.io/openshift-release-dev/ocp-release): it has no digest mirror that is not blocked",
			}}},
		{name: "a bare release version in the ControllerConfig is no payload to protect", pool: "master",
			objects: []client.Object{builtInPool("master"), imageConfig(configv1.RegistrySources{BlockedRegistries: []string{"docker.io"}}),
				renderer.NewControllerConfig("quay.io/os@sha256:x", "quay.io/ext@sha256:x", "4.19.0")},
			wantConfig: func(t *testing.T, mc *mcfgv1.MachineConfig) {
				_, contents := files(t, mc)
				assert.True(t, findRegistry(t, decodeRegistries(t, contents[RegistriesConfPath]), "docker.io").Blocked)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			base := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(tc.objects...).Build()
			var writes atomic.Int32
			rec := &recorder{}
			r := &Reconciler{Client: countWrites(base, &writes), Recorder: rec, Version: "v1"}
			req := reconcile.Request{NamespacedName: types.NamespacedName{Name: tc.pool}}

			_, err := r.Reconcile(ctx, req)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, reconcile.TerminalError(nil), "invalid input is not retried until it changes")
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Zero(t, writes.Load(), "invalid input writes nothing")
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.wantEvents, rec.all())

			mc := &mcfgv1.MachineConfig{}
			err = base.Get(ctx, types.NamespacedName{Name: GeneratedName(tc.pool)}, mc)
			if tc.wantConfig == nil {
				assert.True(t, apierrors.IsNotFound(err), "config %s must not exist: %v", GeneratedName(tc.pool), err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.pool, mc.Labels[wellknown.RoleLabel])
				tc.wantConfig(t, mc)
			}

			writes.Store(0)
			_, _ = r.Reconcile(ctx, req)
			assert.Zero(t, writes.Load(), "a second pass over unchanged state must not write")
		})
	}
}

// TestBuiltInPoolsMapping checks that an input event reaches every built-in pool and no custom pool.
func TestBuiltInPoolsMapping(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(
		builtInPool("master"), builtInPool("worker"), labelledPool("infra", nil)).Build()
	r := &Reconciler{Client: c}
	reqs := r.builtInPools(context.Background(), &configv1.ImageDigestMirrorSet{ObjectMeta: metav1.ObjectMeta{Name: "x"}})
	var names []string
	for _, req := range reqs {
		names = append(names, req.Name)
	}
	assert.ElementsMatch(t, []string{"master", "worker"}, names)
	assert.Equal(t, []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "infra"}}},
		poolOfGeneratedConfig(context.Background(), &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "99-infra-generated-registries"}}))
	assert.Empty(t, poolOfGeneratedConfig(context.Background(), &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "00-worker"}}))
}
