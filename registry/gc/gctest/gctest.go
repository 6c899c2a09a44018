// Package gctest is the test bed of the registry garbage collector and `imagemode prune images`: a real
// API server (internal/controlplane), a real TLS+htpasswd registry (registry/localregistry), the namespace,
// push secret and ControllerConfig the collector reads, fast pushes of distinct small images, and
// MachineOSConfigs and MachineOSBuilds created directly (no build service).
package gctest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/render/renderer"
	"github.com/imagemode/imagemode/testimages"
)

// Names of the objects Start creates.
const (
	Namespace            = wellknown.MCONamespace
	PushSecret           = "builder-dockercfg-test"
	ControllerConfigName = wellknown.ControllerConfigName
	Repo                 = "os/layered"
)

// Env is a running API server and registry with the collector's inputs.
type Env struct {
	CP  *controlplane.ControlPlane
	Reg *localregistry.Registry
	C   client.Client
	Ctx context.Context

	hc        *http.Client
	manifest  map[string]any
	mediaType string
}

// Start starts the control plane and the registry, pushes the base image and creates the namespace, the
// push secret (legacy dockercfg) and the ControllerConfig holding the registry's CA.
func Start(t testing.TB) *Env {
	t.Helper()
	cp := controlplane.Start(t, controlplane.Options{})
	reg := localregistry.StartForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &Env{CP: cp, Reg: reg, C: cp.Client, Ctx: ctx}
	_, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref(Repo, ":base"))
	require.NoError(t, err)
	pool, err := reg.CertPool()
	require.NoError(t, err)
	e.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(e.hc.CloseIdleConnections)
	raw, mediaType := e.getManifest(t, "base")
	require.NoError(t, json.Unmarshal(raw, &e.manifest))
	e.mediaType = mediaType

	ca, err := os.ReadFile(reg.CertDir + "/ca.crt")
	require.NoError(t, err)
	cc := renderer.NewControllerConfig("base:test", "", "4.19.0-test")
	cc.Spec.ImageRegistryBundleUserData = []mcfgv1.ImageRegistryBundle{{File: strings.ReplaceAll(reg.Host, ":", ".."), Data: ca}}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}},
		e.secret(reg.Password),
		cc,
	} {
		require.NoError(t, e.C.Create(ctx, obj))
	}
	return e
}

func (e *Env) secret(password string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(e.Reg.Username + ":" + password))
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: PushSecret}, Type: corev1.SecretTypeDockercfg,
		Data: map[string][]byte{corev1.DockerConfigKey: []byte(fmt.Sprintf(`{%q:{"auth":%q}}`, e.Reg.Host, auth))}}
}

// SetPushPassword rewrites the push secret with password (the registry's own password fixes it).
func (e *Env) SetPushPassword(t testing.TB, password string) {
	t.Helper()
	require.NoError(t, e.C.Update(e.Ctx, e.secret(password)))
}

func (e *Env) request(method, ref string, body []byte) *http.Request {
	url := fmt.Sprintf("https://%s/v2/%s/manifests/%s", e.Reg.Host, Repo, ref)
	req, _ := http.NewRequestWithContext(e.Ctx, method, url, bytes.NewReader(body))
	req.SetBasicAuth(e.Reg.Username, e.Reg.Password)
	return req
}

func (e *Env) getManifest(t testing.TB, tag string) ([]byte, string) {
	t.Helper()
	req := e.request(http.MethodGet, tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := e.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	return raw, strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
}

// Push pushes one distinct image per tag into Repo (the base's blobs, a manifest annotated with the tag)
// and returns their digested pull specs, in order. The same tag always gives the same digest.
func (e *Env) Push(t testing.TB, tags ...string) []string {
	t.Helper()
	var out []string
	for _, tag := range tags {
		m := make(map[string]any, len(e.manifest)+1)
		for k, v := range e.manifest {
			m[k] = v
		}
		m["annotations"] = map[string]string{"io.imagemode.test.variant": tag}
		raw, err := json.Marshal(m)
		require.NoError(t, err)
		req := e.request(http.MethodPut, tag, raw)
		req.Header.Set("Content-Type", e.mediaType)
		resp, err := e.hc.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode, "pushing %s: %s", tag, body)
		out = append(out, e.Reg.Ref(Repo, "@"+digest.FromBytes(raw).String()))
	}
	return out
}

// Exists reports whether image's manifest is in the registry (admin credentials).
func (e *Env) Exists(t testing.TB, image string) bool {
	t.Helper()
	ok, err := registry.Exists(e.Ctx, e.Reg.SystemContext(), image)
	require.NoError(t, err)
	return ok
}

// CreateMOSC creates a MachineOSConfig for pool pushing to Repo with PushSecret.
func (e *Env) CreateMOSC(t testing.TB, name, pool string, annotations map[string]string) *mcfgv1.MachineOSConfig {
	t.Helper()
	mosc := &mcfgv1.MachineOSConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: mcfgv1.MachineOSConfigSpec{
			MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: pool},
			ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
			RenderedImagePushSpec:   mcfgv1.ImageTagFormat(e.Reg.Ref(Repo, ":latest")),
			RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: PushSecret},
		},
	}
	require.NoError(t, e.C.Create(e.Ctx, mosc))
	return mosc
}

// SetCurrent points mosc at build and its image (annotation and status), as the build service does.
func (e *Env) SetCurrent(t testing.TB, moscName, build, image string) {
	t.Helper()
	mosc := &mcfgv1.MachineOSConfig{}
	require.NoError(t, e.C.Get(e.Ctx, client.ObjectKey{Name: moscName}, mosc))
	metav1.SetMetaDataAnnotation(&mosc.ObjectMeta, wellknown.CurrentMachineOSBuildAnnotation, build)
	require.NoError(t, e.C.Update(e.Ctx, mosc))
	mosc.Status.CurrentImagePullSpec = mcfgv1.ImageDigestFormat(image)
	mosc.Status.MachineOSBuild = &mcfgv1.ObjectReference{Group: wellknown.Group, Resource: "machineosbuilds", Name: build}
	require.NoError(t, e.C.Status().Update(e.Ctx, mosc))
}

// CreateBuild creates a MachineOSBuild of mosc named name (the tag image was pushed with), finished at end
// in state (Succeeded, Failed, Building…), with image as status.digestedImagePushSpec when not empty.
func (e *Env) CreateBuild(t testing.TB, mosc, name, image string, state mcfgv1.BuildProgress, end time.Time) *mcfgv1.MachineOSBuild {
	t.Helper()
	b := &mcfgv1.MachineOSBuild{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{wellknown.MachineOSConfigLabel: mosc, wellknown.TargetMachineConfigPoolLabel: "layered"},
			Annotations: map[string]string{wellknown.RenderedImagePushSecretAnnotation: PushSecret}},
		Spec: mcfgv1.MachineOSBuildSpec{
			MachineConfig:         mcfgv1.MachineConfigReference{Name: "rendered-layered-0"},
			MachineOSConfig:       mcfgv1.MachineOSConfigReference{Name: mosc},
			RenderedImagePushSpec: mcfgv1.ImageTagFormat(e.Reg.Ref(Repo, ":"+name)),
		},
	}
	require.NoError(t, e.C.Create(e.Ctx, b))
	start := metav1.NewTime(end.Add(-time.Minute))
	b.Status.BuildStart = &start
	b.Status.Conditions = []metav1.Condition{{Type: string(state), Status: metav1.ConditionTrue, Reason: string(state),
		Message: "test", LastTransitionTime: start}}
	if state == mcfgv1.MachineOSBuildSucceeded || state == mcfgv1.MachineOSBuildFailed {
		e := metav1.NewTime(end)
		b.Status.BuildEnd = &e
	}
	b.Status.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(image)
	require.NoError(t, e.C.Status().Update(e.Ctx, b))
	return b
}

// CreateDigestConfigMap creates the digest-<build> ConfigMap the build service writes.
func (e *Env) CreateDigestConfigMap(t testing.TB, build, image string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: "digest-" + build,
		Labels: map[string]string{wellknown.OnClusterLayeringLabel: "", wellknown.MachineOSBuildLabel: build}},
		Data: map[string]string{"digest": image[strings.Index(image, "@")+1:]}}
	require.NoError(t, e.C.Create(e.Ctx, cm))
}

// CreateNode creates a node of pool with image as its currentImage annotation.
func (e *Env) CreateNode(t testing.TB, name, pool, image string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels:      map[string]string{"node-role.kubernetes.io/" + pool: ""},
		Annotations: map[string]string{wellknown.CurrentImageAnnotation: image, wellknown.DesiredImageAnnotation: image}}}
	require.NoError(t, e.C.Create(e.Ctx, n))
}

// RestartRegistry starts the (stopped) registry again on the same address with the same storage and
// account. It comes back with a new CA: the HTTP client and the ControllerConfig's CA bundle are updated,
// as an administrator would. The new registry is stopped when t ends.
func (e *Env) RestartRegistry(t testing.TB) {
	t.Helper()
	old := e.Reg
	reg, err := localregistry.Start(e.Ctx, localregistry.Options{Dir: old.Dir, Addr: old.Host, Username: old.Username, Password: old.Password})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Stop() })
	e.Reg = reg
	pool, err := reg.CertPool()
	require.NoError(t, err)
	e.hc.CloseIdleConnections()
	e.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ca, err := os.ReadFile(reg.CertDir + "/ca.crt")
	require.NoError(t, err)
	cc := &mcfgv1.ControllerConfig{}
	require.NoError(t, e.C.Get(e.Ctx, client.ObjectKey{Name: ControllerConfigName}, cc))
	cc.Spec.ImageRegistryBundleUserData[0].Data = ca
	require.NoError(t, e.C.Update(e.Ctx, cc))
}
