package gc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/gc"
	"github.com/imagemode/imagemode/registry/gc/gctest"
	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
)

// startCollector runs the collector in a manager with the build service's cache restrictions.
func startCollector(t *testing.T, e *gctest.Env, reg *prometheus.Registry) {
	t.Helper()
	mgr, err := ctrl.NewManager(e.CP.Config, ctrl.Options{Scheme: e.CP.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}, Cache: machineos.CacheOptions(wellknown.MCONamespace)})
	require.NoError(t, err)
	require.NoError(t, gc.AddToManager(mgr, gc.Options{Namespace: gctest.Namespace, ControllerConfigName: gctest.ControllerConfigName,
		RetryBackoff: 200 * time.Millisecond, MaxRetryBackoff: time.Second, Registerer: reg}))
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 100*time.Millisecond, what)
}

func gone(e *gctest.Env, obj client.Object) bool {
	return apierrors.IsNotFound(e.C.Get(e.Ctx, client.ObjectKeyFromObject(obj), obj))
}

func tombstone(e *gctest.Env, image string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: gctest.Namespace, Name: gc.TombstoneName(image)}}
}

func pruneCondition(t *testing.T, e *gctest.Env, mosc string) *metav1.Condition {
	t.Helper()
	m := &mcfgv1.MachineOSConfig{}
	require.NoError(t, e.C.Get(e.Ctx, client.ObjectKey{Name: mosc}, m))
	return apimeta.FindStatusCondition(m.Status.Conditions, gc.ConditionImagePruneDegraded)
}

func hasEvent(t *testing.T, e *gctest.Env, eventType, reason, contains string) bool {
	t.Helper()
	list, err := e.CP.Kube.EventsV1().Events("").List(e.Ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, ev := range list.Items {
		if ev.Type == eventType && ev.Reason == reason && strings.Contains(ev.Note, contains) {
			return true
		}
	}
	return false
}

func waitFinalizer(t *testing.T, e *gctest.Env, b *mcfgv1.MachineOSBuild) {
	t.Helper()
	eventually(t, "finalizer on "+b.Name, func() bool {
		require.NoError(t, e.C.Get(e.Ctx, client.ObjectKeyFromObject(b), b))
		return controllerutil.ContainsFinalizer(b, gc.FinalizerName)
	})
}

// TestCollector runs the collector against a real API server and a real TLS+htpasswd registry: deletion of
// unused images, protection by a node of another pool and deletion once it moves, a wrong password, a
// stopped registry, and retention.
func TestCollector(t *testing.T) {
	top := t
	e := gctest.Start(t)
	metrics := prometheus.NewRegistry()
	startCollector(t, e, metrics)
	const mosc = "layered"
	e.CreateMOSC(t, mosc, "layered", nil)
	images := e.Push(t, "layered-a", "layered-b", "layered-c")
	var builds []*mcfgv1.MachineOSBuild
	now := time.Now()
	for i, name := range []string{"layered-a", "layered-b", "layered-c"} {
		builds = append(builds, e.CreateBuild(t, mosc, name, images[i], mcfgv1.MachineOSBuildSucceeded, now.Add(time.Duration(i)*time.Minute)))
		e.CreateDigestConfigMap(t, name, images[i])
	}
	for _, b := range builds {
		waitFinalizer(t, e, b)
	}
	// A node of another pool runs image b.
	e.CreateNode(t, "worker-0", "worker", images[1])

	t.Run("unused image deleted with its build", func(t *testing.T) {
		require.NoError(t, e.C.Delete(e.Ctx, builds[0]))
		eventually(t, "build a gone", func() bool { return gone(e, builds[0]) })
		assert.False(t, e.Exists(t, images[0]), "image a must be deleted")
		assert.True(t, gone(e, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: gctest.Namespace, Name: "digest-layered-a"}}))
		assert.True(t, e.Exists(t, images[1]))
		assert.True(t, e.Exists(t, images[2]))
		eventually(t, "ImageDeleted event", func() bool { return hasEvent(t, e, corev1.EventTypeNormal, gc.EventImageDeleted, images[0]) })
		assert.Equal(t, 1.0, testutil.ToFloat64(mustCounter(t, metrics, "deleted")))
	})

	t.Run("image in use by a node of another pool kept, then deleted when the node moves", func(t *testing.T) {
		require.NoError(t, e.C.Delete(e.Ctx, builds[1]))
		eventually(t, "build b gone", func() bool { return gone(e, builds[1]) })
		ts := tombstone(e, images[1])
		require.NoError(t, e.C.Get(e.Ctx, client.ObjectKeyFromObject(ts), ts))
		assert.Contains(t, ts.Data[gc.KeyInUseBy], "Node/worker-0")
		assert.Equal(t, "layered-b", ts.Data[gc.KeyMachineOSBuild])
		assert.True(t, e.Exists(t, images[1]), "image b is in use")
		assert.True(t, gone(e, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: gctest.Namespace, Name: "digest-layered-b"}}))

		node := &corev1.Node{}
		require.NoError(t, e.C.Get(e.Ctx, client.ObjectKey{Name: "worker-0"}, node))
		node.Annotations[wellknown.CurrentImageAnnotation] = images[2]
		node.Annotations[wellknown.DesiredImageAnnotation] = images[2]
		require.NoError(t, e.C.Update(e.Ctx, node))
		eventually(t, "tombstone of b removed", func() bool { return gone(e, ts) })
		assert.False(t, e.Exists(t, images[1]), "image b must be deleted once unused")
		assert.True(t, e.Exists(t, images[2]))
	})

	t.Run("wrong password reported, then deleted after the fix", func(t *testing.T) {
		img := e.Push(t, "layered-d")[0]
		b := e.CreateBuild(t, mosc, "layered-d", img, mcfgv1.MachineOSBuildSucceeded, now.Add(10*time.Minute))
		waitFinalizer(t, e, b)
		e.SetPushPassword(t, "wrong-password")
		require.NoError(t, e.C.Delete(e.Ctx, b))
		eventually(t, "build d gone", func() bool { return gone(e, b) })
		eventually(t, "AccessDenied condition", func() bool {
			c := pruneCondition(t, e, mosc)
			return c != nil && c.Status == metav1.ConditionTrue && c.Reason == gc.ReasonAccessDenied
		})
		c := pruneCondition(t, e, mosc)
		assert.Contains(t, c.Message, "layered-d")
		assert.Contains(t, c.Message, img)
		assert.Contains(t, c.Message, gctest.PushSecret)
		assert.NotContains(t, c.Message, "wrong-password")
		assert.NotContains(t, c.Message, e.Reg.Password)
		eventually(t, "Warning event", func() bool {
			return hasEvent(t, e, corev1.EventTypeWarning, gc.EventImageDeleteFailed, img)
		})
		assert.True(t, e.Exists(t, img))
		require.NoError(t, e.C.Get(e.Ctx, client.ObjectKeyFromObject(tombstone(e, img)), tombstone(e, img)))

		e.SetPushPassword(t, e.Reg.Password)
		eventually(t, "tombstone of d removed", func() bool { return gone(e, tombstone(e, img)) })
		assert.False(t, e.Exists(t, img))
		eventually(t, "condition cleared", func() bool {
			c := pruneCondition(t, e, mosc)
			return c.Status == metav1.ConditionFalse && c.Reason == gc.ReasonImagesDeleted
		})
	})

	t.Run("registry stopped: retried and reported, deleted once it is back", func(t *testing.T) {
		img := e.Push(t, "layered-e")[0]
		b := e.CreateBuild(t, mosc, "layered-e", img, mcfgv1.MachineOSBuildSucceeded, now.Add(11*time.Minute))
		waitFinalizer(t, e, b)
		old := e.Reg
		require.NoError(t, old.Stop())
		require.NoError(t, e.C.Delete(e.Ctx, b))
		eventually(t, "build e gone", func() bool { return gone(e, b) })
		eventually(t, "RegistryUnavailable condition", func() bool {
			c := pruneCondition(t, e, mosc)
			return c != nil && c.Status == metav1.ConditionTrue && c.Reason == gc.ReasonRegistryUnavailable
		})
		assert.Contains(t, pruneCondition(t, e, mosc).Message, "connection refused")
		before := testutil.ToFloat64(mustCounter(t, metrics, "unavailable"))
		eventually(t, "retried with back-off", func() bool {
			return testutil.ToFloat64(mustCounter(t, metrics, "unavailable")) >= before+2
		})

		// The same registry (same address, same storage) comes back.
		e.RestartRegistry(top)
		eventually(t, "tombstone of e removed", func() bool { return gone(e, tombstone(e, img)) })
		assert.False(t, e.Exists(t, img))
		assert.Equal(t, metav1.ConditionFalse, pruneCondition(t, e, mosc).Status)
	})

	t.Run("an image its build is pushing again is never deleted (issue 14 fault row 10)", func(t *testing.T) {
		img := e.Push(t, "layered-f")[0]
		b := e.CreateBuild(t, mosc, "layered-f", img, mcfgv1.MachineOSBuildSucceeded, now.Add(12*time.Minute))
		waitFinalizer(t, e, b)
		e.CreateNode(t, "worker-f", "worker", img) // keeps the image while its build is deleted: a tombstone waits
		require.NoError(t, e.C.Delete(e.Ctx, b))
		eventually(t, "build f gone", func() bool { return gone(e, b) })
		ts := tombstone(e, img)
		require.NoError(t, e.C.Get(e.Ctx, client.ObjectKeyFromObject(ts), ts))

		// The rebuild (same inputs, same name) runs and pushes the identical image (the layer cache makes it
		// so) but has not recorded the digest yet, when the node moves off the image and the collector
		// looks again: the image being pushed stays.
		again := e.CreateBuild(t, mosc, "layered-f", "", mcfgv1.MachineOSBuilding, now)
		assert.Equal(t, img, e.Push(t, "layered-f")[0], "the same image pushed again")
		node := &corev1.Node{}
		require.NoError(t, e.C.Get(e.Ctx, client.ObjectKey{Name: "worker-f"}, node))
		node.Annotations[wellknown.CurrentImageAnnotation] = images[2]
		node.Annotations[wellknown.DesiredImageAnnotation] = images[2]
		require.NoError(t, e.C.Update(e.Ctx, node))
		for range 30 { // 3 s: the collector reacts to a node change within milliseconds
			require.True(t, e.Exists(t, img), "the image the running build pushes was deleted")
			time.Sleep(100 * time.Millisecond)
		}
		require.False(t, gone(e, ts), "the deletion waits")

		// The rebuild fails without recording the image: nothing uses it any more, it goes.
		require.NoError(t, e.C.Get(e.Ctx, client.ObjectKeyFromObject(again), again))
		end := metav1.Now()
		again.Status.Conditions = []metav1.Condition{{Type: string(mcfgv1.MachineOSBuildFailed), Status: metav1.ConditionTrue,
			Reason: "Failed", Message: "Build Failed", LastTransitionTime: end}}
		again.Status.BuildEnd = &end
		require.NoError(t, e.C.Status().Update(e.Ctx, again))
		eventually(t, "tombstone of f removed", func() bool { return gone(e, ts) })
		assert.False(t, e.Exists(t, img))
	})

	t.Run("retention keeps the current build and the newest N", func(t *testing.T) {
		const rmosc = "retained"
		e.CreateMOSC(t, rmosc, "retained", map[string]string{wellknown.RetainBuildsAnnotation: "3"})
		names := []string{"retained-1", "retained-2", "retained-3", "retained-4", "retained-5"}
		imgs := e.Push(t, names...)
		e.SetCurrent(t, rmosc, names[0], imgs[0]) // the oldest is current
		var rb []*mcfgv1.MachineOSBuild
		for i, n := range names {
			rb = append(rb, e.CreateBuild(t, rmosc, n, imgs[i], mcfgv1.MachineOSBuildSucceeded, now.Add(time.Duration(20+i)*time.Minute)))
		}
		building := e.CreateBuild(t, rmosc, "retained-6", "", mcfgv1.MachineOSBuilding, now)
		eventually(t, "retained-2 deleted", func() bool { return gone(e, rb[1]) })
		eventually(t, "image of retained-2 deleted", func() bool { return !e.Exists(t, imgs[1]) })
		for _, i := range []int{0, 2, 3, 4} {
			assert.False(t, gone(e, rb[i]), names[i])
			assert.True(t, e.Exists(t, imgs[i]), names[i])
		}
		assert.False(t, gone(e, building), "an unfinished build is never deleted")
		eventually(t, "BuildsPruned event", func() bool {
			return hasEvent(t, e, corev1.EventTypeNormal, gc.EventBuildsPruned, "retained-2")
		})
	})
	t.Run("a signed image goes with its signature and provenance", func(t *testing.T) {
		img := e.Push(t, "layered-signed")[0]
		sys := e.Reg.SystemContext()
		key := signingtest.NewKeyPair(t).Key(t)
		_, err := signing.Sign(e.Ctx, sys, img, key)
		require.NoError(t, err)
		st, err := signing.Statement(img, signing.Provenance{Build: "layered-signed", BuildUID: "uid"})
		require.NoError(t, err)
		_, err = signing.Attest(e.Ctx, sys, img, key, st)
		require.NoError(t, err)
		repo, dgst, _ := strings.Cut(img, "@")
		attachments := []string{}
		for _, tag := range registry.AttachmentTags(digest.Digest(dgst)) {
			attachments = append(attachments, repo+":"+tag)
		}
		for _, a := range attachments {
			require.True(t, e.Exists(t, a), "%s stored", a)
		}
		b := e.CreateBuild(t, mosc, "layered-signed", img, mcfgv1.MachineOSBuildSucceeded, now.Add(30*time.Minute))
		waitFinalizer(t, e, b)
		require.NoError(t, e.C.Delete(e.Ctx, b))
		eventually(t, "signed build gone", func() bool { return gone(e, b) })
		assert.False(t, e.Exists(t, img), "the signed image must be deleted")
		for _, a := range attachments {
			assert.False(t, e.Exists(t, a), "%s left behind", a)
		}
	})
	assert.Greater(t, testutil.ToFloat64(mustBytes(t, metrics)), 0.0)
}

func mustCounter(t *testing.T, reg *prometheus.Registry, result string) prometheus.Collector {
	t.Helper()
	m, err := gc.NewMetrics(reg)
	require.NoError(t, err)
	return m.ImagesDeleted.WithLabelValues(result)
}

func mustBytes(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	m, err := gc.NewMetrics(reg)
	require.NoError(t, err)
	return m.BytesFreed
}
