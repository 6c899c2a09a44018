package podrunner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/imagemode/imagemode/internal/scheme"
)

// TestMaterializeAgainAfterVolumeNotReady: a pod whose ConfigMap appears after the pod is prepared again
// from the start (as the runner does on the ConfigMap's event); its hostPath link, made the first time, must
// not fail the second preparation (it did: a build pod created before its ConfigMaps failed at once, and its
// Job waited out the Job controller's 10 s back-off for a second pod).
func TestMaterializeAgainAfterVolumeNotReady(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	r := &Runner{Client: c, Opts: Options{HostPathRoot: t.TempDir(), StateDir: t.TempDir()}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "cache", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/cache"}}},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
	}}}
	dir := filepath.Join(t.TempDir(), "volumes")
	ctx := context.Background()
	require.ErrorIs(t, r.materialize(ctx, pod, dir), errVolumeNotReady)

	require.NoError(t, c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}, Data: map[string]string{"k": "v"}}))
	require.NoError(t, r.materialize(ctx, pod, dir))
	dest, err := os.Readlink(filepath.Join(dir, "cache"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(r.Opts.HostPathRoot, "var/lib/cache"), dest)
	data, err := os.ReadFile(filepath.Join(dir, "config", "k"))
	require.NoError(t, err)
	assert.Equal(t, "v", string(data))

	// A link to somewhere else is still refused, not silently replaced.
	other := &corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "cache", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/other"}}},
	}}}
	assert.Error(t, r.materialize(ctx, other, dir))
}
