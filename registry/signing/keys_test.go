package signing_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
)

func TestParsePrivateKey(t *testing.T) {
	kp := signingtest.NewKeyPair(t)
	other := signingtest.NewKeyPair(t)
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(raw)
	require.NoError(t, err)
	plain := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	block, _ := pem.Decode(kp.PrivatePEM)
	corrupt := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: []byte("not json at all")})
	cosignType := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED COSIGN PRIVATE KEY", Bytes: block.Bytes})

	for _, tc := range []struct {
		name       string
		pem, pass  []byte
		wantReason string
	}{
		{name: "sigstore type", pem: kp.PrivatePEM, pass: kp.Passphrase},
		{name: "older cosign type", pem: cosignType, pass: kp.Passphrase},
		{name: "empty", pem: nil, pass: kp.Passphrase, wantReason: signing.ReasonKeyMissing},
		{name: "not PEM", pem: []byte("hello"), pass: kp.Passphrase, wantReason: signing.ReasonKeyMalformed},
		{name: "public key", pem: kp.PublicPEM, pass: kp.Passphrase, wantReason: signing.ReasonKeyWrongType},
		{name: "unencrypted private key", pem: plain, pass: nil, wantReason: signing.ReasonKeyWrongType},
		{name: "wrong passphrase", pem: kp.PrivatePEM, pass: []byte("nope"), wantReason: signing.ReasonKeyWrongPassphrase},
		{name: "other key's passphrase", pem: kp.PrivatePEM, pass: other.Passphrase, wantReason: signing.ReasonKeyWrongPassphrase},
		{name: "corrupt body", pem: corrupt, pass: kp.Passphrase, wantReason: signing.ReasonKeyMalformed},
		{name: "trailing data", pem: append(append([]byte{}, kp.PrivatePEM...), "junk"...), pass: kp.Passphrase, wantReason: signing.ReasonKeyMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := signing.ParsePrivateKey(tc.pem, tc.pass)
			if tc.wantReason == "" {
				require.NoError(t, err)
				fp, err := signing.Fingerprint(kp.PublicPEM)
				require.NoError(t, err)
				require.Equal(t, fp, k.Fingerprint)
				require.Equal(t, "signing key "+fp, fmt.Sprintf("%v %+v %#v", k, k, k)[:len("signing key ")+len(fp)])
				require.NotContains(t, fmt.Sprintf("%v %+v %#v %s", k, k, k, k), string(kp.Passphrase))
				return
			}
			require.Error(t, err)
			ke, ok := signing.IsKeyError(err)
			require.True(t, ok)
			require.Equal(t, tc.wantReason, ke.Reason, err.Error())
			assertNoKeyMaterial(t, err.Error(), kp)
		})
	}
}

func TestKeyFromSecret(t *testing.T) {
	kp := signingtest.NewKeyPair(t)
	other := signingtest.NewKeyPair(t)
	for _, tc := range []struct {
		name       string
		mutate     func(*corev1.Secret)
		wantReason string
	}{
		{name: "ok", mutate: func(*corev1.Secret) {}},
		{name: "no public key is fine", mutate: func(s *corev1.Secret) { delete(s.Data, signing.SecretPublicKey) }},
		{name: "no private key", mutate: func(s *corev1.Secret) { delete(s.Data, signing.SecretPrivateKey) }, wantReason: signing.ReasonKeyMissing},
		{name: "no password key", mutate: func(s *corev1.Secret) { delete(s.Data, signing.SecretPassword) }, wantReason: signing.ReasonKeyMissing},
		{name: "public key of another pair", mutate: func(s *corev1.Secret) { s.Data[signing.SecretPublicKey] = other.PublicPEM }, wantReason: signing.ReasonKeyMismatch},
		{name: "wrong type", mutate: func(s *corev1.Secret) { s.Data[signing.SecretPrivateKey] = kp.PublicPEM }, wantReason: signing.ReasonKeyWrongType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := kp.Secret("ns", "signing-key")
			tc.mutate(s)
			_, err := signing.KeyFromSecret(s)
			if tc.wantReason == "" {
				require.NoError(t, err)
				return
			}
			ke, ok := signing.IsKeyError(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tc.wantReason, ke.Reason)
			require.Contains(t, err.Error(), "signing key secret ns/signing-key")
			assertNoKeyMaterial(t, err.Error(), kp)
		})
	}
}

// assertNoKeyMaterial fails when msg holds any line of the key pair's PEM bodies or the passphrase.
func assertNoKeyMaterial(t *testing.T, msg string, kp signingtest.KeyPair) {
	t.Helper()
	require.NotContains(t, msg, string(kp.Passphrase))
	for _, line := range strings.Split(string(kp.PrivatePEM), "\n") {
		if len(line) > 16 && !strings.HasPrefix(line, "-----") {
			require.NotContains(t, msg, line)
		}
	}
}
