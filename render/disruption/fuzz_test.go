package disruption

import (
	"reflect"
	"strings"
	"testing"

	opv1 "github.com/openshift/api/operator/v1"
)

// FuzzMergeClusterPolicies merges fuzzed user file and unit policies into the defaults and checks the merge
// rules: every path and unit name appears once; a user policy's actions are those of the last user policy
// of that path or name; an untouched default keeps its place and actions; the defaults come first, in their
// order, then the user's new paths in the order first given.
func FuzzMergeClusterPolicies(f *testing.F) {
	f.Add("/etc/containers/registries.conf\n/etc/foo\n/etc/foo\n/etc/nmstate/openshift", "crio.service\nkubelet.service\ncrio.service", []byte{0, 1, 2, 3, 4})
	f.Add("/etc/foo/\n/etc/foo", "", []byte{5})
	f.Add("", "a.service", []byte{})
	f.Add("/etc/kubernetes/credential-providers\n/etc/mine", "mine.service\niri-registry.service\nmine.service", []byte{2, 0, 1, 4, 3})
	f.Fuzz(func(t *testing.T, paths, units string, actionKinds []byte) {
		kinds := []opv1.NodeDisruptionPolicySpecAction{
			{Type: opv1.NoneSpecAction},
			{Type: opv1.RebootSpecAction},
			{Type: opv1.DrainSpecAction},
			{Type: opv1.DaemonReloadSpecAction},
			{Type: opv1.ReloadSpecAction, Reload: &opv1.ReloadService{ServiceName: "crio.service"}},
			{Type: opv1.RestartSpecAction, Restart: &opv1.RestartService{ServiceName: "kubelet.service"}},
		}
		pick := func(i int) []opv1.NodeDisruptionPolicySpecAction {
			if i >= len(actionKinds) {
				return nil
			}
			return []opv1.NodeDisruptionPolicySpecAction{kinds[int(actionKinds[i])%len(kinds)]}
		}
		var spec opv1.NodeDisruptionPolicyConfig
		for i, p := range strings.Split(paths, "\n") {
			if p != "" && i < 16 {
				spec.Files = append(spec.Files, opv1.NodeDisruptionPolicySpecFile{Path: p, Actions: pick(i)})
			}
		}
		for i, u := range strings.Split(units, "\n") {
			if u != "" && i < 16 {
				spec.Units = append(spec.Units, opv1.NodeDisruptionPolicySpecUnit{Name: opv1.NodeDisruptionPolicyServiceName(u), Actions: pick(len(spec.Files) + i)})
			}
		}
		got := MergeClusterPolicies(spec)
		if !reflect.DeepEqual(got, MergeClusterPolicies(spec)) {
			t.Fatal("not deterministic")
		}
		defaults := DefaultClusterPolicies()

		lastFile := map[string][]opv1.NodeDisruptionPolicyStatusAction{}
		var newPaths []string
		isDefault := map[string]bool{}
		for _, d := range defaults.Files {
			isDefault[d.Path] = true
		}
		for _, f := range spec.Files {
			if _, ok := lastFile[f.Path]; !ok && !isDefault[f.Path] {
				newPaths = append(newPaths, f.Path)
			}
			lastFile[f.Path] = convertActions(f.Actions)
		}
		var wantPaths []string
		for _, d := range defaults.Files {
			wantPaths = append(wantPaths, d.Path)
		}
		wantPaths = append(wantPaths, newPaths...)
		var gotPaths []string
		for _, f := range got.Files {
			gotPaths = append(gotPaths, f.Path)
			want, user := lastFile[f.Path]
			if !user {
				for _, d := range defaults.Files {
					if d.Path == f.Path {
						want = d.Actions
					}
				}
			}
			if !reflect.DeepEqual(f.Actions, want) {
				t.Fatalf("%s: actions %v, want %v", f.Path, f.Actions, want)
			}
		}
		if !reflect.DeepEqual(gotPaths, wantPaths) {
			t.Fatalf("paths %q, want %q", gotPaths, wantPaths)
		}

		lastUnit := map[opv1.NodeDisruptionPolicyServiceName][]opv1.NodeDisruptionPolicyStatusAction{}
		defaultUnit := map[opv1.NodeDisruptionPolicyServiceName][]opv1.NodeDisruptionPolicyStatusAction{}
		var wantUnits []opv1.NodeDisruptionPolicyServiceName
		for _, d := range defaults.Units {
			defaultUnit[d.Name] = d.Actions
			wantUnits = append(wantUnits, d.Name)
		}
		for _, u := range spec.Units {
			if _, ok := lastUnit[u.Name]; !ok && defaultUnit[u.Name] == nil {
				wantUnits = append(wantUnits, u.Name)
			}
			lastUnit[u.Name] = convertActions(u.Actions)
		}
		var gotUnits []opv1.NodeDisruptionPolicyServiceName
		for _, u := range got.Units {
			gotUnits = append(gotUnits, u.Name)
			want, user := lastUnit[u.Name]
			if !user {
				want = defaultUnit[u.Name]
			}
			if !reflect.DeepEqual(u.Actions, want) {
				t.Fatalf("%s: actions %v, want %v", u.Name, u.Actions, want)
			}
		}
		if !reflect.DeepEqual(gotUnits, wantUnits) {
			t.Fatalf("units %q, want %q", gotUnits, wantUnits)
		}
	})
}
