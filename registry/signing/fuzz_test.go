package signing_test

import (
	"strings"
	"testing"

	"github.com/imagemode/imagemode/registry/signing"
	"github.com/imagemode/imagemode/registry/signing/signingtest"
)

// FuzzParsePrivateKey: whatever a Secret holds, parsing returns a key or a *KeyError, and the error never
// repeats the input.
func FuzzParsePrivateKey(f *testing.F) {
	kp := signingtest.NewKeyPair(f)
	f.Add(kp.PrivatePEM, kp.Passphrase)
	f.Add(kp.PublicPEM, []byte("x"))
	f.Add([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), []byte(""))
	f.Fuzz(func(t *testing.T, pemBytes, pass []byte) {
		k, err := signing.ParsePrivateKey(pemBytes, pass)
		if err == nil {
			if k.Fingerprint == "" || len(k.PublicKeyPEM) == 0 {
				t.Fatal("a key without its public half")
			}
			return
		}
		ke, ok := signing.IsKeyError(err)
		if !ok {
			t.Fatalf("not a KeyError: %v", err)
		}
		if len(pass) > 8 && strings.Contains(err.Error(), string(pass)) {
			t.Fatalf("the passphrase in the error: %v", err)
		}
		if ke.Reason == "" {
			t.Fatal("no reason")
		}
	})
}

// FuzzParseKeys: a trusted keys list parses to public keys or fails; it never panics.
func FuzzParseKeys(f *testing.F) {
	f.Add(string(signingtest.NewKeyPair(f).PublicPEM))
	f.Add("junk")
	f.Fuzz(func(t *testing.T, raw string) {
		keys, err := signing.ParseKeys(raw)
		if err != nil {
			return
		}
		for _, k := range keys {
			if _, err := signing.Fingerprint(k); err != nil {
				t.Fatalf("accepted a key without a fingerprint: %v", err)
			}
		}
	})
}
