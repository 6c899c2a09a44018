package machineos_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/testimages"
)

// TestBaseImageTagMoves: the ControllerConfig names the base OS image by tag. The first build pins the
// tag's digest; pushing another image under the tag gives a new build from it at the next re-check; a
// registry that refuses the base pull secret builds nothing and says so; moving the tag back adopts the
// first build again (same name, its image still there: no build).
func TestBaseImageTagMoves(t *testing.T) {
	t.Parallel() // each test has its own control plane, registry and pod runner
	e, ctx := startEnvWith(t, envOptions{baseTag: ":moving", service: func(o *machineos.Options) {
		o.BaseImageRecheck = 2 * time.Second
		o.BaseImageTimeout = 5 * time.Second
	}})
	sys := e.reg.SystemContext()
	tag := e.reg.Ref("openshift/rhcos", ":moving")
	require.NoError(t, e.c.Create(ctx, docsMOSC(e.reg.Ref("openshift/os-image", ":latest"), "FROM configs AS final\nRUN cp /etc/os-release /usr/share/base-os-release\n")))

	first := waitBuild(ctx, t, e.c, osbuild.StateSucceeded)
	assert.Equal(t, e.base, first.Annotations[machineos.BaseImageAnnotation], "the tag's digest is pinned")
	files := imageFiles(ctx, t, sys, string(first.Status.DigestedImagePushSpec), "usr/share/base-os-release")
	assert.Contains(t, files["usr/share/base-os-release"], testimages.DefaultVersion)
	waitMOSCCondition(ctx, t, e.c, machineos.ConditionBaseImageResolved, metav1.ConditionTrue, machineos.ReasonBaseImageResolved)

	// The tag moves to a new image: a new build, from it.
	v2, err := testimages.Push(ctx, sys, testimages.Options{Version: "9.9.test-v2"}, tag)
	require.NoError(t, err)
	require.NotEqual(t, e.base, v2)
	second := waitBuildOther(ctx, t, e.c, first.Name, osbuild.StateSucceeded)
	assert.Equal(t, v2, second.Annotations[machineos.BaseImageAnnotation])
	files = imageFiles(ctx, t, sys, string(second.Status.DigestedImagePushSpec), "usr/share/base-os-release")
	assert.Contains(t, files["usr/share/base-os-release"], "9.9.test-v2")
	waitMOSC(ctx, t, e.c, func(m *mcfgv1.MachineOSConfig) bool {
		return m.Status.CurrentImagePullSpec == second.Status.DigestedImagePushSpec
	})

	// The base pull secret stops working: the condition says so, nothing is built.
	pull := &corev1.Secret{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: wellknown.GlobalPullSecretCopy}, pull))
	good := pull.Data[corev1.DockerConfigJsonKey]
	pull.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"` + e.reg.Host + `":{"auth":"` + b64("nobody:wrong") + `"}}}`)
	require.NoError(t, e.c.Update(ctx, pull))
	waitMOSCCondition(ctx, t, e.c, machineos.ConditionBaseImageResolved, metav1.ConditionFalse, machineos.ReasonBaseImageUnavailable)
	// Moving the tag now must not be seen, and the registry error itself must not start a build.
	_, err = testimages.Push(ctx, sys, testimages.Options{}, tag)
	require.NoError(t, err)
	time.Sleep(5 * time.Second) // two re-checks
	var builds mcfgv1.MachineOSBuildList
	require.NoError(t, e.c.List(ctx, &builds))
	assert.Len(t, builds.Items, 2, "no build while the base image cannot be resolved")
	m := &mcfgv1.MachineOSConfig{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Name: "layered-image"}, m))
	assert.Equal(t, second.Name, m.Annotations[wellknown.CurrentMachineOSBuildAnnotation])
	assert.True(t, hasEvent(ctx, t, e.c, "layered-image", machineos.ReasonBaseImageUnavailable), "a warning event")

	// Credentials fixed: the tag is back on the first image, whose build is adopted again without a build.
	pull.Data[corev1.DockerConfigJsonKey] = good
	require.NoError(t, e.c.Update(ctx, pull))
	waitMOSC(ctx, t, e.c, func(m *mcfgv1.MachineOSConfig) bool {
		return m.Annotations[wellknown.CurrentMachineOSBuildAnnotation] == first.Name && m.Status.CurrentImagePullSpec == first.Status.DigestedImagePushSpec
	})
	again := &mcfgv1.MachineOSBuild{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Name: first.Name}, again))
	assert.Equal(t, first.UID, again.UID, "the first build itself, not a rebuild")
}

// TestEntitlementsAndConflicts: the entitlement Secret and the yum repos ConfigMap are seen by RUN steps
// (a checksum of the entitlement lands in the image, the entitlement itself does not) and flagged on the
// build's objects; a second MachineOSConfig for the same pool is refused.
func TestEntitlementsAndConflicts(t *testing.T) {
	t.Parallel() // each test has its own control plane, registry and pod runner
	e, ctx := startEnv(t)
	ns := wellknown.MCONamespace
	entitlement := "-----BEGIN CERTIFICATE-----\nentitled to test\n-----END CERTIFICATE-----\n"
	repo := "[test]\nname=entitled repo\nbaseurl=https://cdn.example.com/rhel9\n"
	require.NoError(t, e.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "etc-pki-entitlement"},
		Data: map[string][]byte{"entitlement.pem": []byte(entitlement), "entitlement-key.pem": []byte("key")}}))
	require.NoError(t, e.c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "etc-yum-repos-d"},
		Data: map[string]string{"entitled.repo": repo}}))
	require.NoError(t, e.c.Create(ctx, docsMOSC(e.reg.Ref("openshift/os-image", ":latest"),
		"FROM configs AS final\n"+
			"RUN mkdir -p /usr/share/test && sha256sum /etc/pki/entitlement/entitlement.pem | cut -d' ' -f1 > /usr/share/test/entitlement.sha256 && "+
			"cp /etc/yum.repos.d/entitled.repo /usr/share/test/ && sleep 2\n")))

	var job *batchv1.Job
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var list batchv1.JobList
		if err := e.c.List(ctx, &list, client.InNamespace(ns)); err != nil || len(list.Items) == 0 {
			return false, err
		}
		job = &list.Items[0]
		return true, nil
	}), "no build Job")
	// A second MachineOSConfig for the pool: the API server's CRD rule refuses it at once with a clear
	// message (the name must be the pool's), so it can never start a build. (Decide's
	// ConflictingMachineOSConfig covers CRDs without that rule.)
	second := docsMOSC(e.reg.Ref("openshift/second", ":latest"), "FROM configs AS final\n")
	second.Name = "second"
	err := e.c.Create(ctx, second)
	require.True(t, apierrors.IsInvalid(err), "a second MachineOSConfig for the pool is refused: %v", err)
	assert.Contains(t, err.Error(), "can only have one MachineOSConfig per MachineConfigPool")

	assert.Contains(t, job.Annotations, jobs.HasEtcPkiEntitlementAnnotation)
	assert.Contains(t, job.Annotations, jobs.HasEtcYumReposDAnnotation)
	assert.NotContains(t, job.Annotations, jobs.HasEtcPkiRpmGpgAnnotation, "no etc-pki-rpm-gpg secret")
	// The Job and its ConfigMaps are created together (the pod waits for its ConfigMaps): wait for it.
	cm := &corev1.ConfigMap{}
	cmKey := types.NamespacedName{Namespace: ns, Name: osbuild.ContainerfileCMName(job.Labels[wellknown.MachineOSBuildLabel])}
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := e.c.Get(ctx, cmKey, cm)
		return err == nil, client.IgnoreNotFound(err)
	}), "the build's Containerfile ConfigMap")
	assert.Contains(t, cm.Annotations, jobs.HasEtcPkiEntitlementAnnotation)

	built := waitBuild(ctx, t, e.c, osbuild.StateSucceeded)
	assert.Equal(t, "layered-image", built.Labels[wellknown.MachineOSConfigLabel])
	files := imageFiles(ctx, t, e.reg.SystemContext(), string(built.Status.DigestedImagePushSpec), "usr/share/test/", "etc/pki/entitlement/", "etc/yum.repos.d/")
	sum := sha256.Sum256([]byte(entitlement))
	assert.Equal(t, hex.EncodeToString(sum[:]), strings.TrimSpace(files["usr/share/test/entitlement.sha256"]), "RUN saw the entitlement")
	assert.Equal(t, repo, files["usr/share/test/entitled.repo"], "RUN saw the repo")
	for p := range files {
		assert.False(t, strings.HasPrefix(p, "etc/pki/entitlement/") || p == "etc/yum.repos.d/entitled.repo", "%s is baked into the image", p)
	}

	var builds mcfgv1.MachineOSBuildList
	require.NoError(t, e.c.List(ctx, &builds))
	assert.Len(t, builds.Items, 1, "one build: the first MachineOSConfig's")
}

func waitMOSCCondition(ctx context.Context, t *testing.T, c client.Client, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	var last *metav1.Condition
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		m := &mcfgv1.MachineOSConfig{}
		if err := c.Get(ctx, types.NamespacedName{Name: "layered-image"}, m); err != nil {
			return false, err
		}
		last = apimeta.FindStatusCondition(m.Status.Conditions, typ)
		return last != nil && last.Status == status && last.Reason == reason, nil
	})
	require.NoError(t, err, "condition %s never became %s/%s (last: %+v)", typ, status, reason, last)
}

// hasEvent reports whether an event with reason was recorded about the MachineOSConfig name (waiting a
// little: events are written asynchronously).
func hasEvent(ctx context.Context, t *testing.T, c client.Client, name, reason string) bool {
	t.Helper()
	found := false
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var evs eventsv1.EventList
		if err := c.List(ctx, &evs); err != nil {
			return false, nil
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Kind == "MachineOSConfig" && ev.Regarding.Name == name && ev.Reason == reason {
				found = true
			}
		}
		return found, nil
	})
	return found
}
