// Package signingtest helps tests of signed images: key pairs and the Secrets holding them, and tampering
// with a registry's signatures as an attacker would (a valid signature copied onto another image).
package signingtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/registry/signing"
)

// KeyPair is a generated cosign key pair.
type KeyPair struct {
	PrivatePEM, PublicPEM, Passphrase []byte
}

// NewKeyPair generates a key pair with a random passphrase.
func NewKeyPair(tb testing.TB) KeyPair {
	tb.Helper()
	r := make([]byte, 12)
	if _, err := rand.Read(r); err != nil {
		tb.Fatal(err)
	}
	pass := []byte("pass-" + hex.EncodeToString(r))
	priv, pub, err := signing.GenerateKeyPair(pass)
	if err != nil {
		tb.Fatalf("generating key pair: %v", err)
	}
	return KeyPair{PrivatePEM: priv, PublicPEM: pub, Passphrase: pass}
}

// Secret is the key pair as a signing key Secret (cosign's layout).
func (k KeyPair) Secret(namespace, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{signing.SecretPrivateKey: k.PrivatePEM, signing.SecretPassword: k.Passphrase, signing.SecretPublicKey: k.PublicPEM}}
}

// Key parses the private key.
func (k KeyPair) Key(tb testing.TB) *signing.PrivateKey {
	tb.Helper()
	key, err := signing.ParsePrivateKey(k.PrivatePEM, k.Passphrase)
	if err != nil {
		tb.Fatalf("parsing generated key: %v", err)
	}
	return key
}

// CopySignatures copies the sigstore attachments of image from (repo@sha256:…) onto image to, in the same
// repository, byte for byte: valid signatures, made for another digest.
func CopySignatures(ctx context.Context, sys *types.SystemContext, from, to string) error {
	src, err := sigRef(from)
	if err != nil {
		return err
	}
	dst, err := sigRef(to)
	if err != nil {
		return err
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return err
	}
	defer pc.Destroy() //nolint:errcheck // test helper
	_, err = copy.Image(ctx, pc, dst, src, &copy.Options{SourceCtx: sys, DestinationCtx: sys, PreserveDigests: true})
	return err
}

func sigRef(pullSpec string) (types.ImageReference, error) {
	named, err := reference.ParseNormalizedNamed(pullSpec)
	if err != nil {
		return nil, err
	}
	c, ok := named.(reference.Canonical)
	if !ok {
		return nil, fmt.Errorf("%s: not by digest", pullSpec)
	}
	tagged, err := reference.WithTag(reference.TrimNamed(c), signing.SignatureTag(c.Digest().String()))
	if err != nil {
		return nil, err
	}
	return docker.NewReference(tagged)
}
