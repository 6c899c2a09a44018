package signing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
)

func TestRotateKeys(t *testing.T) {
	a, b, c := signingtest.NewKeyPair(t).PublicPEM, signingtest.NewKeyPair(t).PublicPEM, signingtest.NewKeyPair(t).PublicPEM
	for _, tc := range []struct {
		name    string
		current []byte
		before  [][]byte
		want    [][]byte
	}{
		{"first key", a, nil, [][]byte{a}},
		{"same key again", a, [][]byte{a}, [][]byte{a}},
		{"rotation keeps the previous key", b, [][]byte{a}, [][]byte{b, a}},
		{"a second rotation drops the oldest", c, [][]byte{b, a}, [][]byte{c, b}},
		{"back to an earlier key", a, [][]byte{b, a}, [][]byte{a, b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, signing.RotateKeys(tc.current, tc.before))
		})
	}
}

func TestConfigMapKeys(t *testing.T) {
	a, b := signingtest.NewKeyPair(t).PublicPEM, signingtest.NewKeyPair(t).PublicPEM
	const ns = "openshift-machine-config-operator"
	s := runtime.NewScheme()
	require.NoError(t, corev1.AddToScheme(s))
	objs := []runtime.Object{
		signing.TrustedKeysConfigMap(ns, "image-signing-keys-a", "r.example.com/os/a", [][]byte{a, b}),
		signing.TrustedKeysConfigMap(ns, "image-signing-keys-b", "r.example.com/os/b", [][]byte{b}),
		// Not a trusted keys ConfigMap (no label), and one in another namespace: ignored.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}, Data: map[string]string{signing.TrustedKeysRepositoryKey: "r.example.com/os/c", signing.TrustedKeysPEMKey: string(a)}},
		signing.TrustedKeysConfigMap("default", "image-signing-keys-c", "r.example.com/os/c", [][]byte{a}),
	}
	c := fake.NewClientBuilder().WithScheme(s).WithRuntimeObjects(objs...).Build()
	k := &signing.ConfigMapKeys{Reader: c, Namespace: ns}
	ctx := context.Background()
	got, err := k.KeysFor(ctx, "r.example.com/os/a")
	require.NoError(t, err)
	require.Equal(t, [][]byte{a, b}, got)
	got, err = k.KeysFor(ctx, "r.example.com/os/c")
	require.NoError(t, err)
	require.Empty(t, got, "an unsigned repository")

	// A damaged list is an error: a node never falls back to unverified pulls.
	bad := signing.TrustedKeysConfigMap(ns, "image-signing-keys-d", "r.example.com/os/d", nil)
	bad.Data[signing.TrustedKeysPEMKey] = "garbage"
	require.NoError(t, c.Create(ctx, bad))
	_, err = k.KeysFor(ctx, "r.example.com/os/d")
	require.ErrorContains(t, err, "configmap "+ns+"/image-signing-keys-d: keys.pem holds no valid public key")
}
