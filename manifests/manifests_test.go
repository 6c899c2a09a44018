package manifests

import (
	"testing"
)

func TestCRDsOneVariantPerKind(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"MachineConfig":            "machineconfiguration.openshift.io",
		"MachineConfigPool":        "machineconfiguration.openshift.io",
		"MachineOSConfig":          "machineconfiguration.openshift.io",
		"MachineOSBuild":           "machineconfiguration.openshift.io",
		"MachineConfigNode":        "machineconfiguration.openshift.io",
		"ControllerConfig":         "machineconfiguration.openshift.io",
		"PinnedImageSet":           "machineconfiguration.openshift.io",
		"MachineConfiguration":     "operator.openshift.io",
		"ImageDigestMirrorSet":     "config.openshift.io",
		"ImageTagMirrorSet":        "config.openshift.io",
		"Image":                    "config.openshift.io",
		"ImageContentSourcePolicy": "operator.openshift.io",
		"RolloutPolicy":            "rollouts.imagemode.io",
	}
	seen := map[string]int{}
	for _, c := range crds {
		seen[c.Spec.Names.Kind]++
		if g, ok := want[c.Spec.Names.Kind]; !ok {
			t.Errorf("unexpected CRD kind %s", c.Spec.Names.Kind)
		} else if g != c.Spec.Group {
			t.Errorf("%s: group %s, want %s", c.Spec.Names.Kind, c.Spec.Group, g)
		}
	}
	for kind := range want {
		if seen[kind] != 1 {
			t.Errorf("kind %s: %d CRDs, want exactly 1", kind, seen[kind])
		}
	}
}

func TestDecodeCRDRejectsOtherKinds(t *testing.T) {
	tests := []struct {
		name string
		raw  string
	}{
		{name: "configmap", raw: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
		{name: "two documents", raw: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec: {names: {kind: A}}\n---\nkind: B\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeCRD([]byte(tc.raw)); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}
