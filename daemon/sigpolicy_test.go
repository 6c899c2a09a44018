package daemon

import (
	"encoding/json"
	"strings"
	"testing"

	"go.podman.io/image/v5/signature"

	"github.com/imagemode/imagemode/registry/signing"
)

func testKey(t testing.TB) []byte {
	t.Helper()
	_, pub, err := signing.GenerateKeyPair([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestSignedPolicy(t *testing.T) {
	k1, k2 := testKey(t), testKey(t)
	const repo = "registry.example.com:5000/os/layered"
	withBlocked := `{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"blocked.example.com":[{"type":"reject"}]},` +
		`"atomic":{"x.example.com":[{"type":"reject"}]}}}`
	for _, tc := range []struct {
		name     string
		base     string
		keys     [][]byte
		wantErr  string
		wantKeys int
		check    func(t *testing.T, doc map[string]any)
	}{
		{name: "no base: containers' default plus the requirement", keys: [][]byte{k1}, wantKeys: 1,
			check: func(t *testing.T, doc map[string]any) {
				if _, ok := doc["transports"].(map[string]any)["docker-daemon"]; !ok {
					t.Error("default's docker-daemon scope lost")
				}
			}},
		{name: "a rendered policy keeps its scopes, transports and fields", base: withBlocked, keys: [][]byte{k1}, wantKeys: 1,
			check: func(t *testing.T, doc map[string]any) {
				tr := doc["transports"].(map[string]any)
				if _, ok := tr["docker"].(map[string]any)["blocked.example.com"]; !ok {
					t.Error("blocked scope lost")
				}
				if _, ok := tr["atomic"]; !ok {
					t.Error("atomic transport lost")
				}
			}},
		{name: "two keys during a rotation", keys: [][]byte{k1, k2}, wantKeys: 2},
		{name: "replaces an earlier requirement for the repository",
			base: `{"default":[{"type":"reject"}],"transports":{"docker":{"` + repo + `":[{"type":"insecureAcceptAnything"}]}}}`, keys: [][]byte{k2}, wantKeys: 1},
		{name: "no key", keys: nil, wantErr: "no public key"},
		{name: "not JSON", base: "{", keys: [][]byte{k1}, wantErr: "parsing /etc/containers/policy.json"},
		{name: "transports of the wrong shape", base: `{"default":[{"type":"reject"}],"transports":[]}`, keys: [][]byte{k1}, wantErr: "transports"},
		{name: "not a public key", keys: [][]byte{[]byte("junk")}, wantErr: "public key 1: not a PEM public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := SignedPolicy([]byte(tc.base), repo, tc.keys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := signature.NewPolicyFromBytes(out)
			if err != nil {
				t.Fatal(err)
			}
			reqs := p.Transports["docker"][repo]
			if len(reqs) != 1 {
				t.Fatalf("requirements for %s: %v", repo, reqs)
			}
			var doc map[string]any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			req := doc["transports"].(map[string]any)["docker"].(map[string]any)[repo].([]any)[0].(map[string]any)
			if req["type"] != "sigstoreSigned" || req["signedIdentity"].(map[string]any)["type"] != "matchRepository" {
				t.Errorf("requirement %v", req)
			}
			n := 0
			if req["keyData"] != nil {
				n = 1
			}
			if kd, ok := req["keyDatas"].([]any); ok {
				n = len(kd)
			}
			if n != tc.wantKeys {
				t.Errorf("%d keys, want %d: %v", n, tc.wantKeys, req)
			}
			if tc.check != nil {
				tc.check(t, doc)
			}
		})
	}
}

func TestSigstoreRegistriesD(t *testing.T) {
	p1, c1 := SigstoreRegistriesD("a.example.com/os/x")
	p2, _ := SigstoreRegistriesD("a.example.com/os/y")
	if p1 == p2 || !strings.HasPrefix(p1, RegistriesDDir+"/imagemode-sigstore-") {
		t.Errorf("paths %s %s", p1, p2)
	}
	if !strings.Contains(string(c1), "docker:\n  \"a.example.com/os/x\":\n    use-sigstore-attachments: true\n") {
		t.Errorf("content %s", c1)
	}
}

// FuzzSignedPolicy: whatever the node's policy.json holds, the result is either an error or a policy
// containers/image parses that requires the key for the repository.
func FuzzSignedPolicy(f *testing.F) {
	key := testKey(f)
	f.Add(`{"default":[{"type":"insecureAcceptAnything"}]}`)
	f.Add(`{"default":[{"type":"reject"}],"transports":{"docker":{"x":[{"type":"reject"}]}}}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, base string) {
		out, err := SignedPolicy([]byte(base), "quay.example.com/os/image", [][]byte{key})
		if err != nil {
			return
		}
		p, err := signature.NewPolicyFromBytes(out)
		if err != nil {
			t.Fatalf("result does not parse: %v", err)
		}
		if len(p.Transports["docker"]["quay.example.com/os/image"]) != 1 {
			t.Fatalf("requirement missing: %s", out)
		}
	})
}
