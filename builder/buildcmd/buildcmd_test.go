package buildcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/layering"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

func TestMain(m *testing.M) {
	if buildah.Reexec() {
		return
	}
	os.Exit(m.Run())
}

// TestRunFallsBackFromUnusableCache runs the build pod's program with a layer cache that cannot be opened
// (its root is a file): the build goes on with a private store, pushes, and records the pushed digest in
// the digest ConfigMap on a real API server.
func TestRunFallsBackFromUnusableCache(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	reg := localregistry.StartForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Setenv("KUBECONFIG", cp.KubeconfigPath)
	base, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref("os/base", ":latest"))
	require.NoError(t, err)
	const ns = "builds"
	require.NoError(t, cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))

	dir := t.TempDir()
	rendered := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "rendered-worker-1"}, Spec: mcfgv1.MachineConfigSpec{OSImageURL: base,
		Config: runtime.RawExtension{Raw: []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/from-config","mode":420,"contents":{"source":"data:,baked"}}]}}`)}}}
	mosc := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "worker"}, Spec: mcfgv1.MachineOSConfigSpec{
		MachineConfigPool: mcfgv1.MachineConfigPoolReference{Name: "worker"},
		Containerfile:     []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.NoArch, Content: "FROM configs AS final\nRUN test \"$(cat /etc/from-config)\" = baked\n"}}}}
	bc, err := layering.Compose(layering.Inputs{Rendered: rendered, MachineOSConfig: mosc})
	require.NoError(t, err)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	archive, err := bc.Archive()
	require.NoError(t, err)
	ca, err := os.ReadFile(filepath.Join(reg.CertDir, "ca.crt"))
	require.NoError(t, err)
	certs := filepath.Join(dir, "registry-certs")
	require.NoError(t, os.MkdirAll(certs, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(certs, strings.ReplaceAll(reg.Host, ":", "..")), ca, 0o644))

	tag := reg.Ref("os/layered", ":worker-1")
	var out bytes.Buffer
	err = Run(ctx, Options{
		Containerfile: write("Containerfile", bc.Containerfile), ContextArchive: write("context.tar.gz", archive), RenderedConfig: rendered.Name,
		BasePullAuthFile: write("base.json", reg.DockerConfigJSON()), PushAuthFile: write("push.json", reg.DockerConfigJSON()),
		Tag: tag, StorageRoot: write("not-a-directory", []byte("poisoned")), RegistryCertsDir: certs,
		DigestConfigMap: "digest-worker-1", DigestNamespace: ns, DigestLabels: "a=b", WorkDir: t.TempDir(),
	}, &out)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "cannot be used", "the fallback is reported")

	cm := &corev1.ConfigMap{}
	require.NoError(t, cp.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "digest-worker-1"}, cm))
	assert.Equal(t, "b", cm.Labels["a"])
	pushed, err := registry.ResolveDigest(ctx, reg.SystemContext(), tag)
	require.NoError(t, err)
	assert.Equal(t, pushed, reg.Ref("os/layered", "@"+cm.Data[osbuild.DigestKey]), "the recorded digest is the pushed image's")
}
