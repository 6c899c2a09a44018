package buildcmd

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

func TestTailStart(t *testing.T) {
	tests := []struct {
		name string
		in   string
		min  int
		want int
	}{
		{name: "cut at the next line start", in: "aaaa\nbbbb\ncccc\n", min: 2, want: 5},
		{name: "already at a line start", in: "aaaa\nbbbb\n", min: 5, want: 5},
		{name: "no newline: rune start", in: "ééééé", min: 3, want: 4},
		{name: "exactly at a rune start", in: "ééééé", min: 2, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tailStart([]byte(tt.in), tt.min))
		})
	}
}

func TestLogWriterOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := wellknown.MCONamespace
	require.NoError(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	mosb := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: "layered-abc"}}
	mosb.Spec.MachineConfig.Name = "rendered-layered-1"
	mosb.Spec.MachineOSConfig.Name = "layered"
	mosb.Spec.RenderedImagePushSpec = "registry.example.com/os:layered-abc"
	require.NoError(t, cp.Client.Create(ctx, mosb))
	cms := cp.Kube.CoreV1().ConfigMaps(ns)
	name := osbuild.BuildLogCMName(mosb.Name)
	owner := &metav1.OwnerReference{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineOSBuild", Name: mosb.Name, UID: mosb.UID}
	labels := map[string]string{wellknown.OnClusterLayeringLabel: "", wellknown.MachineOSBuildLabel: mosb.Name}
	get := func() *corev1.ConfigMap {
		t.Helper()
		cm, err := cms.Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return cm
	}

	// First attempt: an empty log at Start, then the text within the interval, complete only at Close.
	var warnings bytes.Buffer
	w := NewLogWriter(cms, LogOptions{Namespace: ns, Name: name, Pod: "build-layered-abc-aaaaa", Owner: owner, Labels: labels,
		MaxBytes: 64, Interval: 100 * time.Millisecond, Warnings: &warnings})
	w.Start(ctx)
	cm := get()
	assert.Equal(t, "", cm.Data[osbuild.BuildLogKey])
	assert.Equal(t, "false", cm.Annotations[osbuild.BuildLogCompleteAnnotation])
	assert.Equal(t, "build-layered-abc-aaaaa", cm.Annotations[osbuild.BuildLogPodAnnotation])
	assert.Equal(t, []metav1.OwnerReference{*owner}, cm.OwnerReferences)
	assert.Equal(t, labels, cm.Labels)
	assert.NotContains(t, cm.Labels, wellknown.EphemeralBuildObjectLabel, "the log survives the cleanup of ephemeral objects")

	_, _ = w.Write([]byte("STEP 1/3: FROM base\n"))
	require.Eventually(t, func() bool { return get().Data[osbuild.BuildLogKey] == "STEP 1/3: FROM base\n" }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, "false", get().Annotations[osbuild.BuildLogCompleteAnnotation])

	// Past MaxBytes only the tail is kept, cut at a line start, and the offset says how much went.
	var all strings.Builder
	all.WriteString("STEP 1/3: FROM base\n")
	for _, line := range []string{"STEP 2/3: RUN dnf install -y cowsay\n", "installed cowsay\n", "STEP 3/3: RUN ostree container commit\n"} {
		_, _ = w.Write([]byte(line))
		all.WriteString(line)
	}
	require.NoError(t, w.Close())
	cm = get()
	text := cm.Data[osbuild.BuildLogKey]
	assert.Equal(t, "installed cowsay\nSTEP 3/3: RUN ostree container commit\n", text)
	assert.Equal(t, "true", cm.Annotations[osbuild.BuildLogCompleteAnnotation])
	offset := len(all.String()) - len(text)
	assert.Equal(t, all.String()[offset:], text)
	assert.Equal(t, strconv.Itoa(offset), cm.Annotations[osbuild.BuildLogOffsetAnnotation])
	assert.Empty(t, warnings.String())

	// A second attempt replaces the first one's log.
	w = NewLogWriter(cms, LogOptions{Namespace: ns, Name: name, Pod: "build-layered-abc-bbbbb", Owner: owner, Labels: labels})
	w.Start(ctx)
	cm = get()
	assert.Equal(t, "", cm.Data[osbuild.BuildLogKey])
	assert.Equal(t, "build-layered-abc-bbbbb", cm.Annotations[osbuild.BuildLogPodAnnotation])
	assert.Equal(t, "false", cm.Annotations[osbuild.BuildLogCompleteAnnotation])
	_, _ = w.Write([]byte("error: pulling base: unauthorized\n"))
	require.NoError(t, w.Close())
	cm = get()
	assert.Equal(t, "error: pulling base: unauthorized\n", cm.Data[osbuild.BuildLogKey])
	assert.Equal(t, "0", cm.Annotations[osbuild.BuildLogOffsetAnnotation])
	assert.Equal(t, "true", cm.Annotations[osbuild.BuildLogCompleteAnnotation])

	// A writer that cannot reach its ConfigMap warns once and never fails the build's writes.
	warnings.Reset()
	w = NewLogWriter(cp.Kube.CoreV1().ConfigMaps("no-such-namespace"), LogOptions{Namespace: "no-such-namespace", Name: name,
		Pod: "p", Interval: 50 * time.Millisecond, Warnings: &warnings})
	w.Start(ctx)
	n, err := w.Write([]byte("still building\n"))
	assert.NoError(t, err)
	assert.Equal(t, 15, n)
	assert.Error(t, w.Close())
	assert.Equal(t, 1, strings.Count(warnings.String(), "warning: keeping the build log in configmap no-such-namespace/"+name), warnings.String())

	// Run keeps its output and its error in the ConfigMap, owned by the build, marked complete.
	t.Setenv("KUBECONFIG", cp.KubeconfigPath)
	var out bytes.Buffer
	err = Run(ctx, Options{Containerfile: t.TempDir() + "/missing", DigestNamespace: ns, DigestLabels: "a=b",
		BuildLogConfigMap: name, MachineOSBuild: mosb.Name, MachineOSBuildUID: string(mosb.UID), PodName: "build-layered-abc-ccccc"}, &out)
	require.ErrorContains(t, err, "reading Containerfile")
	cm = get()
	assert.Equal(t, "error: "+err.Error()+"\n", cm.Data[osbuild.BuildLogKey])
	assert.Equal(t, "build-layered-abc-ccccc", cm.Annotations[osbuild.BuildLogPodAnnotation])
	assert.Equal(t, "true", cm.Annotations[osbuild.BuildLogCompleteAnnotation])
	assert.Equal(t, []metav1.OwnerReference{*owner}, cm.OwnerReferences)
	assert.Equal(t, "b", cm.Labels["a"])
}
