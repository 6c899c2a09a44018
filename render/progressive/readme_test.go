package progressive

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

// TestREADMEExample: the README's RolloutPolicy decodes strictly into the API types and is valid.
func TestREADMEExample(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```yaml\napiVersion: rollouts.imagemode.io/v1alpha1\n"
	i := strings.Index(string(raw), start)
	if i < 0 {
		t.Fatal("the README has no RolloutPolicy example")
	}
	body := string(raw)[i+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	var p rolloutsv1.RolloutPolicy
	if err := yaml.UnmarshalStrict([]byte(body), &p); err != nil {
		t.Fatalf("the README's example: %v", err)
	}
	if err := Validate(&p); err != nil {
		t.Fatal(err)
	}
	if p.Kind != "RolloutPolicy" || len(p.Spec.Waves) != 3 || p.Spec.OnFailure != rolloutsv1.FailureRollback {
		t.Fatalf("the README's example decoded as %+v", p)
	}
}
