package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"

	"github.com/imagemode/imagemode/registry/signing"
)

// Signed images. When a pool's images are signed, the node requires it the containers way, so rpm-ostree,
// podman and CRI-O enforce the same rule: /etc/containers/policy.json gets a sigstoreSigned requirement for
// the image's repository (the accepted public keys inline, the signature's identity that repository), and a
// registries.d file turns on sigstore attachments for it; the image is then pulled as
// ostree-image-signed:docker://<repo>@<digest>.
const (
	// SignaturePolicyPath is the node's containers signature policy.
	SignaturePolicyPath = "/etc/containers/policy.json"
	// RegistriesDDir holds the node's registries.d (lookaside and sigstore attachment settings).
	RegistriesDDir = "/etc/containers/registries.d"
)

// defaultPolicy is containers' own default policy.json: anything is accepted.
const defaultPolicy = `{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker-daemon":{"":[{"type":"insecureAcceptAnything"}]}}}`

// SignedPolicy returns base (a policy.json; empty means containers' default) with the docker transport's
// scope repo requiring a sigstore signature from one of keys (PEM public keys) for that repository. Every
// other scope, transport and field of base is kept; an existing requirement for repo is replaced. The
// result is checked with containers/image's own policy parser.
func SignedPolicy(base []byte, repo string, keys [][]byte) ([]byte, error) {
	if len(keys) == 0 {
		return nil, errors.New("signature policy: no public key")
	}
	for i, k := range keys {
		if _, err := signing.Fingerprint(k); err != nil {
			return nil, fmt.Errorf("signature policy: public key %d: %w", i+1, err)
		}
	}
	if _, err := reference.ParseNormalizedNamed(repo); err != nil {
		return nil, fmt.Errorf("signature policy: repository %q: %w", repo, err)
	}
	if len(bytes.TrimSpace(base)) == 0 {
		base = []byte(defaultPolicy)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", SignaturePolicyPath, err)
	}
	transports := map[string]map[string]json.RawMessage{}
	if raw, ok := doc["transports"]; ok {
		if err := json.Unmarshal(raw, &transports); err != nil {
			return nil, fmt.Errorf("parsing %s: transports: %w", SignaturePolicyPath, err)
		}
	}
	req := map[string]any{"type": "sigstoreSigned", "signedIdentity": map[string]string{"type": "matchRepository"}}
	if len(keys) == 1 {
		req["keyData"] = keys[0] // []byte: base64, as policy.json's keyData
	} else {
		req["keyDatas"] = keys
	}
	reqs, err := json.Marshal([]any{req})
	if err != nil {
		return nil, err
	}
	if transports["docker"] == nil {
		transports["docker"] = map[string]json.RawMessage{}
	}
	transports["docker"][repo] = reqs
	if doc["transports"], err = json.Marshal(transports); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := signature.NewPolicyFromBytes(out); err != nil {
		return nil, fmt.Errorf("signature policy for %s: %w", repo, err)
	}
	return append(out, '\n'), nil
}

// SigstoreRegistriesD returns the registries.d file (its host path and content) that turns sigstore
// attachments on for repo. Each repository has a file of its own, so two never collide.
func SigstoreRegistriesD(repo string) (string, []byte) {
	sum := sha256.Sum256([]byte(repo))
	name := "imagemode-sigstore-" + hex.EncodeToString(sum[:6]) + ".yaml"
	content := fmt.Sprintf("# Written by imagemode: %s is signed with sigstore signatures stored as attachments.\ndocker:\n  %s:\n    use-sigstore-attachments: true\n", repo, quoteYAML(repo))
	return path.Join(RegistriesDDir, name), []byte(content)
}

// quoteYAML double-quotes s for YAML (a repository name has no quote or backslash, but be safe).
func quoteYAML(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// WriteSignaturePolicy makes the node require signatures from keys for repo: policy.json (merged into the
// node's own) and the repository's registries.d file, each written atomically, only when it changes.
func WriteSignaturePolicy(root Root, repo string, keys [][]byte) error {
	base, err := root.ReadFile(SignaturePolicyPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", SignaturePolicyPath, err)
	}
	policy, err := SignedPolicy(base, repo, keys)
	if err != nil {
		return err
	}
	regPath, regContent := SigstoreRegistriesD(repo)
	for _, f := range []struct {
		path    string
		content []byte
	}{{regPath, regContent}, {SignaturePolicyPath, policy}} {
		cur, err := root.ReadFile(f.path)
		if err == nil && bytes.Equal(cur, f.content) {
			continue
		}
		if err := root.WriteFile(f.path, f.content, 0o644, 0, 0); err != nil {
			return fmt.Errorf("writing the signature policy: %w", err)
		}
	}
	return nil
}
