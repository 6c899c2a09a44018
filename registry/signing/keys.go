// Package signing signs built images in their registry and verifies them, with the containers ecosystem's
// own mechanisms: sigstore signatures made from a cosign key (go.podman.io/image/v5/signature/sigstore),
// stored as sigstore attachments (the <repo>:sha256-<digest>.sig tag, `use-sigstore-attachments: true` in
// registries.d), and checked by containers/image's policy evaluation (a sigstoreSigned requirement). It also
// writes the policy.json and registries.d documents a node needs to require those signatures, so podman,
// CRI-O and rpm-ostree enforce the same policy.
//
// Keys come from a Kubernetes Secret in cosign's own layout (cosign.key, cosign.password, as `cosign
// generate-key-pair k8s://ns/name` writes it). A key's bytes never appear in an error, a log line or a
// String(): errors carry a reason and the Secret's name only.
package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"go.podman.io/image/v5/signature/sigstore"
	corev1 "k8s.io/api/core/v1"
)

// Keys of a signing key Secret: cosign's layout.
const (
	// SecretPrivateKey holds the encrypted private key PEM ("ENCRYPTED SIGSTORE PRIVATE KEY" or the older
	// "ENCRYPTED COSIGN PRIVATE KEY").
	SecretPrivateKey = "cosign.key"
	// SecretPassword holds the private key's passphrase (may be empty).
	SecretPassword = "cosign.password"
	// SecretPublicKey optionally holds the public key PEM; the public key is always derived from the
	// private key, and a cosign.pub that does not match it is an error.
	SecretPublicKey = "cosign.pub"
)

// PEM block types of the private keys sigstore's signer accepts.
const (
	sigstorePrivateKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignPrivateKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// Reasons a key is refused (KeyError.Reason); they are condition reasons.
const (
	ReasonKeyMissing         = "SigningKeyMissing"
	ReasonKeyMalformed       = "SigningKeyMalformed"
	ReasonKeyWrongType       = "SigningKeyWrongType"
	ReasonKeyWrongPassphrase = "SigningKeyWrongPassphrase"
	ReasonKeyMismatch        = "SigningKeyMismatch"
)

// KeyError says why a signing key cannot be used. It names the Secret (when known) and never holds key
// material.
type KeyError struct {
	// Secret is namespace/name of the Secret the key came from ("" when parsed from bytes).
	Secret string
	Reason string
	// Detail is a human sentence, free of key material.
	Detail string
}

func (e *KeyError) Error() string {
	if e.Secret == "" {
		return "signing key: " + e.Detail
	}
	return fmt.Sprintf("signing key secret %s: %s", e.Secret, e.Detail)
}

// IsKeyError reports whether err is (or wraps) a *KeyError, and returns it.
func IsKeyError(err error) (*KeyError, bool) {
	var ke *KeyError
	ok := errors.As(err, &ke)
	return ke, ok
}

// PrivateKey is a usable signing key: its encrypted PEM and passphrase (kept only to hand to the sigstore
// signer), and its public key. Printing it shows the fingerprint only.
type PrivateKey struct {
	pem, passphrase []byte
	priv            crypto.PrivateKey
	// PublicKeyPEM is the public key, PEM "PUBLIC KEY".
	PublicKeyPEM []byte
	// Fingerprint identifies the key pair (Fingerprint of the public key).
	Fingerprint string
}

// String never shows key material.
func (k *PrivateKey) String() string { return "signing key " + k.Fingerprint }

// GoString never shows key material either (%#v).
func (k *PrivateKey) GoString() string { return k.String() }

// ParsePrivateKey checks that pemBytes is an encrypted sigstore/cosign private key that passphrase opens,
// of a kind sigstore signs with (ECDSA, RSA, Ed25519), and returns it with its public key. Errors are
// *KeyError.
func ParsePrivateKey(pemBytes, passphrase []byte) (*PrivateKey, error) {
	block, rest := pem.Decode(pemBytes)
	switch {
	case len(pemBytes) == 0:
		return nil, &KeyError{Reason: ReasonKeyMissing, Detail: "the private key is empty"}
	case block == nil:
		return nil, &KeyError{Reason: ReasonKeyMalformed, Detail: "the private key is not PEM"}
	case block.Type != sigstorePrivateKeyType && block.Type != cosignPrivateKeyType:
		return nil, &KeyError{Reason: ReasonKeyWrongType, Detail: fmt.Sprintf("the private key is a PEM %q block, not an encrypted sigstore private key (%q, as cosign generate-key-pair writes)",
			safeType(block.Type), sigstorePrivateKeyType)}
	case len(trimSpace(rest)) != 0:
		return nil, &KeyError{Reason: ReasonKeyMalformed, Detail: "the private key has data after its PEM block"}
	}
	der, err := encrypted.Decrypt(block.Bytes, passphrase)
	if err != nil {
		// The library's messages say "decryption failed" for a wrong passphrase and name JSON errors for a
		// corrupt body; neither carries key bytes, but only the classification is passed on.
		if isCorrupt(block.Bytes) {
			return nil, &KeyError{Reason: ReasonKeyMalformed, Detail: "the encrypted private key is corrupt"}
		}
		return nil, &KeyError{Reason: ReasonKeyWrongPassphrase, Detail: "the passphrase does not open the private key"}
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, &KeyError{Reason: ReasonKeyMalformed, Detail: "the decrypted private key is not PKCS#8"}
	}
	var pub crypto.PublicKey
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		pub = p.Public()
	case *rsa.PrivateKey:
		pub = p.Public()
	case ed25519.PrivateKey:
		pub = p.Public()
	default:
		return nil, &KeyError{Reason: ReasonKeyWrongType, Detail: fmt.Sprintf("the private key is a %T, not ECDSA, RSA or Ed25519", priv)}
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, &KeyError{Reason: ReasonKeyMalformed, Detail: "the public key cannot be encoded"}
	}
	fp, err := Fingerprint(pubPEM)
	if err != nil {
		return nil, &KeyError{Reason: ReasonKeyMalformed, Detail: err.Error()}
	}
	return &PrivateKey{pem: append([]byte(nil), pemBytes...), passphrase: append([]byte(nil), passphrase...), priv: priv, PublicKeyPEM: pubPEM, Fingerprint: fp}, nil
}

// KeyFromSecret reads a signing key Secret (cosign.key, cosign.password, optionally cosign.pub). Errors are
// *KeyError naming the Secret.
func KeyFromSecret(s *corev1.Secret) (*PrivateKey, error) {
	name := s.Namespace + "/" + s.Name
	keyPEM, ok := s.Data[SecretPrivateKey]
	if !ok || len(keyPEM) == 0 {
		return nil, &KeyError{Secret: name, Reason: ReasonKeyMissing, Detail: fmt.Sprintf("no %s key", SecretPrivateKey)}
	}
	pass, ok := s.Data[SecretPassword]
	if !ok {
		return nil, &KeyError{Secret: name, Reason: ReasonKeyMissing, Detail: fmt.Sprintf("no %s key (it may be empty, but must exist)", SecretPassword)}
	}
	k, err := ParsePrivateKey(keyPEM, pass)
	if err != nil {
		ke, _ := IsKeyError(err)
		ke.Secret = name
		return nil, ke
	}
	if pub, ok := s.Data[SecretPublicKey]; ok && len(pub) > 0 {
		fp, err := Fingerprint(pub)
		if err != nil || fp != k.Fingerprint {
			return nil, &KeyError{Secret: name, Reason: ReasonKeyMismatch, Detail: fmt.Sprintf("%s is not the public key of %s", SecretPublicKey, SecretPrivateKey)}
		}
	}
	return k, nil
}

// Fingerprint returns "SHA256:<hex>" of a PEM public key's DER SubjectPublicKeyInfo.
func Fingerprint(pubPEM []byte) (string, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return "", errors.New("not a PEM public key")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:]), nil
}

// GenerateKeyPair makes a new ECDSA P-256 key pair in cosign's format: the private key encrypted with
// passphrase (PEM "ENCRYPTED SIGSTORE PRIVATE KEY") and the public key PEM.
func GenerateKeyPair(passphrase []byte) (privatePEM, publicPEM []byte, err error) {
	kp, err := sigstore.GenerateKeyPair(passphrase)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(kp.PrivateKey)
	if block == nil {
		return nil, nil, errors.New("generating key pair: no PEM private key")
	}
	block.Type = sigstorePrivateKeyType // what cosign writes today; both types are accepted
	return pem.EncodeToMemory(block), kp.PublicKey, nil
}

// isCorrupt reports whether an encrypted key body is not even the JSON envelope the encryption writes.
func isCorrupt(body []byte) bool { return !json.Valid(body) }

// safeType keeps a PEM type printable and short (it comes from user input).
func safeType(t string) string {
	if len(t) > 40 {
		t = t[:40] + "…"
	}
	out := make([]rune, 0, len(t))
	for _, r := range t {
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
