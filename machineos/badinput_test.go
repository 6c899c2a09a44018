package machineos_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/secretscan"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry/localregistry"
)

func marker(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "imagemode-marker-" + what + "-" + hex.EncodeToString(b)
}

func dockerConfigJSONSecret(name, host, user, password string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: wellknown.MCONamespace, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, host, b64(user+":"+password))}}
}

// failedCondition returns the Failed condition's message of pool's build once it ended, requiring it Failed.
func failedCondition(ctx context.Context, t *testing.T, e *env, pool string) (*mcfgv1.MachineOSBuild, string) {
	t.Helper()
	b := waitPoolBuild(ctx, t, e.c, pool, func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	require.Equal(t, osbuild.StateFailed, osbuild.StateOf(b), "build of pool %s", pool)
	c := apimeta.FindStatusCondition(b.Status.Conditions, string(mcfgv1.MachineOSBuildFailed))
	require.NotNil(t, c)
	return b, c.Message
}

// TestBadBuildInputs applies the build inputs a user gets wrong (issue 14's bad-input rows), each in a
// pool of its own in one environment, then searches everything readable for the secrets' markers:
//   - a push secret that does not exist: the build waits, the MachineOSConfig's Ready condition names the
//     secret, and the build starts by itself once the secret appears (and succeeds);
//   - wrong credentials at push time, a push registry whose certificate is not trusted, a FROM that cannot
//     be pulled: four attempts, then Failed with a condition naming the registry (or image) and the error.
//
// The registries' passwords and the wrong password are unique markers: no event, status, condition,
// annotation, ConfigMap, pod status, rendered config, build pod log or controller log line may hold one.
func TestBadBuildInputs(t *testing.T) {
	t.Parallel()
	pushPassword := marker(t, "push")
	e, ctx := startEnvWith(t, envOptions{registryPassword: pushPassword})
	wrongPassword := marker(t, "wrong")
	otherPassword := marker(t, "other")
	other, err := localregistry.Start(ctx, localregistry.Options{Dir: t.TempDir(), Password: otherPassword}) // its CA is trusted nowhere
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Stop() })
	var markers secretscan.Markers
	markers.Add(e.reg.Username, pushPassword, wrongPassword, otherPassword)

	// A push secret that does not exist yet.
	late := docsMOSC(e.reg.Ref("openshift/late", ":latest"), "FROM configs AS final\nRUN echo late > /etc/late\n")
	late.Name, late.Spec.MachineConfigPool.Name = "late", "late"
	late.Spec.RenderedImagePushSecret.Name = "late-push-secret"
	require.NoError(t, e.c.Create(ctx, pool("late", "worker", "late")))
	require.NoError(t, e.c.Create(ctx, late))

	// Wrong credentials; an untrusted registry; an image that cannot be pulled.
	require.NoError(t, e.c.Create(ctx, dockerConfigJSONSecret("wrong-push-secret", e.reg.Host, e.reg.Username, wrongPassword)))
	require.NoError(t, e.c.Create(ctx, dockerConfigJSONSecret("other-push-secret", other.Host, other.Username, otherPassword)))
	for _, tc := range []struct{ pool, push, secret, containerfile string }{
		{"badcreds", e.reg.Ref("openshift/badcreds", ":latest"), "wrong-push-secret", "FROM configs AS final\nRUN true\n"},
		{"untrusted", other.Ref("openshift/untrusted", ":latest"), "other-push-secret", "FROM configs AS final\nRUN true\n"},
		{"unpullable", e.reg.Ref("openshift/unpullable", ":latest"), "builder-dockercfg-mtcl23", "FROM configs AS final\nRUN true\nFROM " + e.reg.Ref("openshift/absent", ":nope") + "\n"},
	} {
		m := docsMOSC(tc.push, tc.containerfile)
		m.Name, m.Spec.MachineConfigPool.Name, m.Spec.RenderedImagePushSecret.Name = tc.pool, tc.pool, tc.secret
		require.NoError(t, e.c.Create(ctx, pool(tc.pool, "worker", tc.pool)))
		require.NoError(t, e.c.Create(ctx, m))
	}

	// The missing secret: the MachineOSConfig says what the build waits for; creating it starts the build.
	waitMOSCNamed(ctx, t, e, "late", func(m *mcfgv1.MachineOSConfig) bool {
		c := apimeta.FindStatusCondition(m.Status.Conditions, machineos.ConditionReady)
		return c != nil && c.Reason == machineos.ReasonBuildWaiting &&
			strings.Contains(c.Message, "secret openshift-machine-config-operator/late-push-secret not found; the build starts when it exists")
	})
	require.NoError(t, e.c.Create(ctx, dockerConfigJSONSecret("late-push-secret", e.reg.Host, e.reg.Username, pushPassword)))
	built := waitPoolBuild(ctx, t, e.c, "late", func(b *mcfgv1.MachineOSBuild) bool { return osbuild.StateOf(b).IsTerminal() })
	require.Equal(t, osbuild.StateSucceeded, osbuild.StateOf(built))
	assert.NotContains(t, built.Annotations, machineos.WaitingAnnotation, "the wait is over")

	for _, tc := range []struct {
		pool string
		want []string
		re   string
	}{
		{"badcreds", []string{e.reg.Host}, `(?i)unauthorized|authentication required`},
		{"untrusted", []string{other.Host}, `x509|certificate signed by unknown authority`},
		{"unpullable", []string{e.reg.Host + "/openshift/absent"}, `(?i)manifest unknown|not found`},
	} {
		b, msg := failedCondition(ctx, t, e, tc.pool)
		assert.True(t, strings.HasPrefix(msg, "Build Failed: attempt 4 (pod build-"+b.Name+"-"), "%s: %s", tc.pool, msg)
		for _, w := range tc.want {
			assert.Contains(t, msg, w, tc.pool)
		}
		assert.Regexp(t, regexp.MustCompile(tc.re), msg, tc.pool)
	}

	// Nothing readable holds a secret. (A planted ConfigMap shows the search would see one.)
	planted := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "planted-marker"}, Data: map[string]string{"x": "auth " + otherPassword}}
	require.NoError(t, e.c.Create(ctx, planted))
	all, err := markers.API(ctx, e.cp.Config)
	require.NoError(t, err)
	var found []secretscan.Finding
	for _, f := range all {
		if f.Where != "configmaps default/planted-marker" {
			found = append(found, f)
		}
	}
	require.Len(t, all, len(found)+1, "the planted marker is found")
	files, err := markers.Files(e.runner.Opts.StateDir, func(p string) bool { return strings.HasSuffix(p, ".log") })
	require.NoError(t, err)
	found = append(found, files...)
	logs, _ := controlplane.CapturedLogs()
	require.NotEmpty(t, logs, "the controllers' logs are captured")
	found = append(found, markers.Text("controller logs", logs)...)
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
}

func waitMOSCNamed(ctx context.Context, t *testing.T, e *env, name string, ok func(*mcfgv1.MachineOSConfig) bool) {
	t.Helper()
	var last *mcfgv1.MachineOSConfig
	err := pollUntil(ctx, func(ctx context.Context) (bool, error) {
		m := &mcfgv1.MachineOSConfig{}
		if err := e.c.Get(ctx, types.NamespacedName{Name: name}, m); err != nil {
			return false, err
		}
		last = m
		return ok(m), nil
	})
	require.NoError(t, err, "MachineOSConfig %s never got there (conditions: %+v)", name, last.Status.Conditions)
}

func pollUntil(ctx context.Context, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, cond)
}
