package signing

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Trusted keys: the build service publishes, for each signed repository, the public keys its images must be
// signed with, in a ConfigMap of the build namespace labelled TrustedKeysLabel; node agents read them and
// require those signatures. Public keys are not secret. While the ConfigMap exists the repository's images
// must be signed: going back to unsigned images takes deleting it, explicitly.
const (
	// TrustedKeysLabel marks a trusted keys ConfigMap.
	TrustedKeysLabel = "imagemode.io/image-signing-keys"
	// TrustedKeysRepositoryKey holds the repository (host[:port]/path) the keys are for.
	TrustedKeysRepositoryKey = "repository"
	// TrustedKeysPEMKey holds the accepted public keys, PEM blocks one after the other: the current key
	// first, then the previous one while a rotation lasts.
	TrustedKeysPEMKey = "keys.pem"
	// MaxTrustedKeys is how many keys a repository accepts at once (the current and the previous).
	MaxTrustedKeys = 2
)

// TrustedKeysName is the trusted keys ConfigMap of a MachineOSConfig.
func TrustedKeysName(mosc string) string { return "image-signing-keys-" + mosc }

// TrustedKeysConfigMap returns the ConfigMap trusting keys (PEM public keys, current first) for repository.
func TrustedKeysConfigMap(namespace, name, repository string, keys [][]byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{TrustedKeysLabel: ""}},
		Data: map[string]string{TrustedKeysRepositoryKey: repository, TrustedKeysPEMKey: string(bytes.Join(keys, nil))}}
}

// RotateKeys returns the keys to trust after signing with current: current first, then the ones trusted
// before that are not current, up to MaxTrustedKeys.
func RotateKeys(current []byte, before [][]byte) [][]byte {
	out := [][]byte{current}
	fp, _ := Fingerprint(current)
	for _, k := range before {
		if len(out) == MaxTrustedKeys {
			break
		}
		if f, err := Fingerprint(k); err == nil && f != fp {
			out = append(out, k)
		}
	}
	return out
}

// ParseKeys splits concatenated PEM public keys; anything that is not a PEM public key is an error.
func ParseKeys(raw string) ([][]byte, error) {
	var out [][]byte
	rest := []byte(raw)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		k := pem.EncodeToMemory(block)
		if _, err := Fingerprint(k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("data after the PEM public keys")
	}
	return out, nil
}

// TrustedKeys tells which public keys must have signed a repository's images (none: they need not be signed).
type TrustedKeys interface {
	KeysFor(ctx context.Context, repository string) ([][]byte, error)
}

// ConfigMapKeys reads the trusted keys ConfigMaps of Namespace (read straight from the API server).
type ConfigMapKeys struct {
	Reader    client.Reader
	Namespace string
}

// KeysFor returns the keys every trusted keys ConfigMap for repository accepts. A ConfigMap that cannot be
// parsed is an error: a node never falls back to unverified pulls because the trust was damaged.
func (c *ConfigMapKeys) KeysFor(ctx context.Context, repository string) ([][]byte, error) {
	var list corev1.ConfigMapList
	if err := c.Reader.List(ctx, &list, client.InNamespace(c.Namespace), client.HasLabels{TrustedKeysLabel}); err != nil {
		return nil, fmt.Errorf("reading the trusted image signing keys: %w", err)
	}
	var out [][]byte
	for _, cm := range list.Items {
		if cm.Data[TrustedKeysRepositoryKey] != repository {
			continue
		}
		keys, err := ParseKeys(cm.Data[TrustedKeysPEMKey])
		if err != nil || len(keys) == 0 {
			return nil, fmt.Errorf("configmap %s/%s: %s holds no valid public key", cm.Namespace, cm.Name, TrustedKeysPEMKey)
		}
		out = append(out, keys...)
	}
	return out, nil
}
