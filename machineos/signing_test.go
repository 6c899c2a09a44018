package machineos_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
)

// gateSigner holds signing until released, and times it.
type gateSigner struct {
	inner   machineos.ImageSigner
	release chan struct{}
	called  chan time.Time
	mu      sync.Mutex
	took    time.Duration
}

func (g *gateSigner) AttestImage(ctx context.Context, pushSecret, pullspec string, key *signing.PrivateKey, statement []byte) (string, error) {
	start := time.Now()
	d, err := g.inner.AttestImage(ctx, pushSecret, pullspec, key, statement)
	g.mu.Lock()
	g.took += time.Since(start)
	g.mu.Unlock()
	return d, err
}

func (g *gateSigner) SignImage(ctx context.Context, pushSecret, pullspec string, key *signing.PrivateKey) (signing.SignResult, error) {
	select {
	case g.called <- time.Now():
	default:
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return signing.SignResult{}, ctx.Err()
	}
	start := time.Now()
	res, err := g.inner.SignImage(ctx, pushSecret, pullspec, key)
	g.mu.Lock()
	g.took += time.Since(start)
	g.mu.Unlock()
	return res, err
}

// TestSignedBuild builds with a signing key on the real parts: the image is signed in the real registry
// after the push, the MachineOSConfig publishes it only once the signature is stored, the signature verifies
// with the public key, and the key is in no Job, pod spec, event or condition. It logs the time signing adds
// as a ratio of the build's own time.
func TestSignedBuild(t *testing.T) {
	gate := &gateSigner{release: make(chan struct{}), called: make(chan time.Time, 1)}
	e, ctx := startEnvWith(t, envOptions{service: func(o *machineos.Options) {
		o.Signer = func(inner machineos.ImageSigner) machineos.ImageSigner { gate.inner = inner; return gate }
	}})
	kp := signingtest.NewKeyPair(t)
	require.NoError(t, e.c.Create(ctx, kp.Secret(wellknown.MCONamespace, "os-signing-key")))
	mosc := docsMOSC(e.reg.Ref("openshift/os-image", ":latest"), "FROM configs AS final\nRUN echo signed > /etc/signed-build\n")
	mosc.Annotations = map[string]string{machineos.SigningKeySecretAnnotation: "os-signing-key"}
	created := time.Now()
	require.NoError(t, e.c.Create(ctx, mosc))

	// The image is pushed (its digest recorded) and signing waits: the build is not Succeeded and the
	// MachineOSConfig publishes nothing.
	var pushed time.Time
	select {
	case pushed = <-gate.called:
	case <-ctx.Done():
		t.Fatal("the build service never asked to sign")
	}
	var list mcfgv1.MachineOSBuildList
	require.NoError(t, e.c.List(ctx, &list))
	require.Len(t, list.Items, 1)
	build := list.Items[0]
	assert.Equal(t, "os-signing-key", build.Annotations[machineos.SigningKeySecretAnnotation])
	assert.Equal(t, osbuild.StateBuilding, osbuild.StateOf(&build))
	got := &mcfgv1.MachineOSConfig{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Name: mosc.Name}, got))
	assert.Empty(t, got.Status.CurrentImagePullSpec, "published before its signature is stored")
	job := &batchv1.Job{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: "build-" + build.Name}, job))
	assertNoKey(t, fmt.Sprintf("%+v", job.Spec.Template), kp, "the build Job's pod template")
	var secrets corev1.SecretList
	require.NoError(t, e.c.List(ctx, &secrets, client.InNamespace(wellknown.MCONamespace)))
	for _, s := range secrets.Items {
		if s.Name != "os-signing-key" {
			assertNoKey(t, fmt.Sprintf("%s", s.Data), kp, "secret "+s.Name)
		}
	}
	close(gate.release)

	done := waitBuild(ctx, t, e.c, osbuild.StateSucceeded)
	signed := time.Now()
	digested := string(done.Status.DigestedImagePushSpec)
	fp, err := signing.Fingerprint(kp.PublicPEM)
	require.NoError(t, err)
	assert.Equal(t, fp, done.Annotations[machineos.SignatureKeyAnnotation])
	cond := apimeta.FindStatusCondition(done.Status.Conditions, machineos.ConditionSigned)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionTrue, cond.Status)
	assert.Contains(t, cond.Message, fp)
	assert.Len(t, done.Status.Conditions, 6, "the five state conditions and Signed")
	waitMOSC(ctx, t, e.c, func(m *mcfgv1.MachineOSConfig) bool { return string(m.Status.CurrentImagePullSpec) == digested })

	// The provenance: recorded on the build, stored next to the image, signed with the key, about this build.
	att := done.Annotations[osbuild.ProvenanceAnnotation]
	assert.Regexp(t, `^127\.0\.0\.1:\d+/openshift/os-image@sha256:[0-9a-f]{64}$`, att)
	st, err := signing.ReadProvenance(ctx, e.reg.SystemContext(), digested, kp.PublicPEM)
	require.NoError(t, err)
	for _, want := range []string{`"name":"` + done.Name + `"`, `"uid":"` + string(done.UID) + `"`, `"name":"` + done.Spec.MachineConfig.Name + `"`,
		`"uri":"docker://` + done.Annotations[machineos.BaseImageAnnotation] + `"`, `"buildType":"https://imagemode.io/MachineOSBuild/v1"`} {
		assert.Contains(t, string(st), want)
	}
	// The nodes' trusted keys: the public key, for the image's repository.
	cm := &corev1.ConfigMap{}
	require.NoError(t, e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: signing.TrustedKeysName(mosc.Name)}, cm))
	assert.Equal(t, e.reg.Host+"/openshift/os-image", cm.Data[signing.TrustedKeysRepositoryKey])
	assert.Equal(t, string(kp.PublicPEM), cm.Data[signing.TrustedKeysPEMKey])

	v, err := signing.Verify(ctx, e.reg.SystemContext(), digested, kp.PublicPEM)
	require.NoError(t, err)
	assert.True(t, v.Verified, v.Describe())
	v, err = signing.Verify(ctx, e.reg.SystemContext(), digested, signingtest.NewKeyPair(t).PublicPEM)
	require.NoError(t, err)
	assert.Equal(t, signing.RefusedWrongKey, v.Refusal)

	var events corev1.EventList
	require.NoError(t, e.c.List(ctx, &events))
	for _, ev := range events.Items {
		assertNoKey(t, ev.Message, kp, "event "+ev.Reason)
	}
	assertNoKey(t, fmt.Sprintf("%+v", done.Status), kp, "the build's status")

	gate.mu.Lock()
	took := gate.took
	gate.mu.Unlock()
	parseStart := time.Now()
	_ = kp.Key(t) // the build service decrypts the key to sign (and sigstore's signer once more)
	decrypt := time.Since(parseStart)
	buildTime := pushed.Sub(created)
	total := took + decrypt // took includes the signer's own decryption
	t.Logf("build (create to pushed) %v; signing adds %v (ratio %.3f): signing, attesting and publishing %v (with the signer's key decryption) plus the service's own key decryption (scrypt) %v; pushed to Succeeded observed %v",
		buildTime.Round(time.Millisecond), total.Round(time.Millisecond), total.Seconds()/buildTime.Seconds(), took.Round(time.Millisecond),
		decrypt.Round(time.Millisecond), signed.Sub(pushed).Round(time.Millisecond))
}

// TestSigningKeyProblems: a missing Secret, a key of the wrong type and a wrong passphrase each fail the
// build before it runs, with a Signed condition naming the Secret and the reason, and no key material.
func TestSigningKeyProblems(t *testing.T) {
	e, ctx := startEnv(t)
	kp := signingtest.NewKeyPair(t)
	wrongType := kp.Secret(wellknown.MCONamespace, "key-wrong-type")
	wrongType.Data[signing.SecretPrivateKey] = kp.PublicPEM
	delete(wrongType.Data, signing.SecretPublicKey)
	wrongPass := kp.Secret(wellknown.MCONamespace, "key-wrong-pass")
	wrongPass.Data[signing.SecretPassword] = []byte("not-it")
	require.NoError(t, e.c.Create(ctx, wrongType))
	require.NoError(t, e.c.Create(ctx, wrongPass))

	mosc := docsMOSC(e.reg.Ref("openshift/os-image", ":latest"), "FROM configs AS final\nRUN true\n")
	mosc.Annotations = map[string]string{machineos.SigningKeySecretAnnotation: "no-such-key"}
	require.NoError(t, e.c.Create(ctx, mosc))
	var uid types.UID
	for i, tc := range []struct{ secret, reason string }{
		{"no-such-key", signing.ReasonKeyMissing},
		{"key-wrong-type", signing.ReasonKeyWrongType},
		{"key-wrong-pass", signing.ReasonKeyWrongPassphrase},
	} {
		if i > 0 {
			require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				m := &mcfgv1.MachineOSConfig{}
				if err := e.c.Get(ctx, types.NamespacedName{Name: mosc.Name}, m); err != nil {
					return false, err
				}
				m.Annotations[machineos.SigningKeySecretAnnotation] = tc.secret
				m.Annotations[wellknown.RebuildAnnotation] = ""
				return e.c.Update(ctx, m) == nil, nil
			}))
		}
		var failed *mcfgv1.MachineOSBuild
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			var list mcfgv1.MachineOSBuildList
			if err := e.c.List(ctx, &list); err != nil {
				return false, err
			}
			for i := range list.Items {
				b := &list.Items[i]
				if b.UID != uid && osbuild.StateOf(b) == osbuild.StateFailed {
					failed = b
					return true, nil
				}
			}
			return false, nil
		}), "case %s: the build never failed", tc.secret)
		uid = failed.UID
		cond := apimeta.FindStatusCondition(failed.Status.Conditions, machineos.ConditionSigned)
		require.NotNil(t, cond, tc.secret)
		assert.Equal(t, metav1.ConditionFalse, cond.Status)
		assert.Equal(t, tc.reason, cond.Reason)
		assert.Contains(t, cond.Message, "signing key secret "+wellknown.MCONamespace+"/"+tc.secret)
		assertNoKey(t, cond.Message, kp, "the Signed condition")
		err := e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: "build-" + failed.Name}, &batchv1.Job{})
		assert.True(t, client.IgnoreNotFound(err) == nil && err != nil, "case %s: no Job runs for a build whose key cannot be used", tc.secret)
	}
}

func assertNoKey(t *testing.T, s string, kp signingtest.KeyPair, where string) {
	t.Helper()
	assert.NotContains(t, s, string(kp.Passphrase), "passphrase in %s", where)
	for _, line := range strings.Split(string(kp.PrivatePEM), "\n") {
		if len(line) > 16 && !strings.HasPrefix(line, "-----") {
			assert.NotContains(t, s, line, "private key in %s", where)
		}
	}
}
