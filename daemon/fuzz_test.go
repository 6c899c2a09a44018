package daemon

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	opv1 "github.com/openshift/api/operator/v1"

	"github.com/imagemode/imagemode/render/disruption"
)

// FuzzParseStatus checks that any `rpm-ostree status --json` output either fails to parse or gives a status
// whose booted and staged deployments are the first ones so marked, that survives a JSON round trip, and
// whose image accessors do not panic.
func FuzzParseStatus(f *testing.F) {
	files, _ := filepath.Glob("testdata/rpm-ostree-status-*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"deployments":[{"booted":true,"container-image-reference":"ostree-unverified-registry:quay.io/x/os@sha256:abc"}]}`))
	f.Add([]byte(`{"deployments":[{"staged":true},{"booted":true,"staged":true},{"booted":true}]}`))
	f.Add([]byte(`{"deployments":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStatus(data)
		if err != nil {
			if s != nil {
				t.Fatalf("a status with error %v", err)
			}
			return
		}
		if s.Booted == nil || !s.Booted.Booted {
			t.Fatalf("no booted deployment: %+v", s)
		}
		first := func(is func(Deployment) bool) *Deployment {
			for i := range s.Deployments {
				if is(s.Deployments[i]) {
					return &s.Deployments[i]
				}
			}
			return nil
		}
		if b := first(func(d Deployment) bool { return d.Booted }); b != s.Booted {
			t.Fatalf("booted is not the first booted deployment")
		}
		if st := first(func(d Deployment) bool { return d.Staged }); st != s.Staged {
			t.Fatalf("staged is not the first staged deployment")
		}
		img, dgst := s.BootedImage(), s.BootedImageDigest()
		if ref, err := ParseImageReference(s.Booted.ContainerImageReference); err == nil && img != ref.Image {
			t.Fatalf("booted image %q, reference says %q", img, ref.Image)
		}
		if s.Booted.ContainerImageReferenceDigest != "" && dgst != s.Booted.ContainerImageReferenceDigest {
			t.Fatalf("booted digest %q, rpm-ostree says %q", dgst, s.Booted.ContainerImageReferenceDigest)
		}
		out, err := json.Marshal(map[string]any{"deployments": s.Deployments})
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseStatus(out)
		if err != nil || !reflect.DeepEqual(again.Deployments, s.Deployments) {
			t.Fatalf("round trip changed the status (%v):\n%s", err, out)
		}
	})
}

// formatImageReference is ParseImageReference's inverse, for the round trip.
func formatImageReference(r ImageReference) string {
	if remote, ok := strings.CutPrefix(r.Verification, "ostree-remote:"); ok {
		if r.Transport == "registry" {
			return "ostree-remote-registry:" + remote + ":" + r.Image
		}
		return "ostree-remote-image:" + remote + ":" + r.Transport + ":" + r.Image
	}
	if r.Verification == "ostree-unverified" && r.Transport == "registry" {
		return "ostree-unverified-registry:" + r.Image
	}
	prefix := map[string]string{"ostree-unverified": "ostree-unverified-image:", "ostree-image-signed": "ostree-image-signed:"}[r.Verification]
	return prefix + r.Transport + ":" + r.Image
}

// FuzzParseImageReference checks that a parsed ostree image reference has every part set and formats back
// to a reference that parses to the same parts.
func FuzzParseImageReference(f *testing.F) {
	for _, s := range []string{
		"ostree-unverified-registry:quay.io/x/os:latest",
		"ostree-unverified-image:docker://quay.io/x/os",
		"ostree-image-signed:containers-storage:quay.io/x/os",
		"ostree-remote-registry:fedora:quay.io/fedora/fedora-coreos:stable",
		"ostree-remote-image:fedora:oci:/var/lib/x",
		"ostree-unverified-image:registry:quay.io/x/os@sha256:abc",
		"ostree-unverified-registry:",
		"quay.io/x/os",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseImageReference(s)
		if err != nil {
			return
		}
		if ref.Verification == "" || ref.Transport == "" || ref.Image == "" {
			t.Fatalf("%q parsed with an empty part: %+v", s, ref)
		}
		again, err := ParseImageReference(formatImageReference(ref))
		if err != nil || again != ref {
			t.Fatalf("%q: %+v formats to %q, which parses to %+v (%v)", s, ref, formatImageReference(ref), again, err)
		}
	})
}

// ancestors returns the clean absolute path p and every directory above it, up to "/".
func ancestors(p string) []string {
	out := []string{p}
	for p != "/" {
		p = path.Dir(p)
		out = append(out, p)
	}
	return out
}

// fuzzPolicyActions are the actions a fuzzed policy takes, picked by a byte.
var fuzzPolicyActions = [][]opv1.NodeDisruptionPolicyStatusAction{
	{statusAction(opv1.NoneStatusAction)},
	{statusAction(opv1.RebootStatusAction)},
	{statusAction(opv1.DrainStatusAction), statusReload("crio.service")},
	{statusAction(opv1.DaemonReloadStatusAction), statusRestart("kubelet.service")},
	{statusRestart("crio.service"), statusReload("crio.service")},
	{statusAction(opv1.SpecialStatusAction)},
	{statusAction("Bogus")},
	{},
}

// FuzzActions matches fuzzed file changes against the default node disruption policies plus fuzzed ones and
// checks the decision: the policy chosen for a path is the longest one equal to it or to a directory above
// it (checked against a walk up the path, so /etc/foo never covers /etc/foobar), and the actions follow the
// documented shape (Reboot or None alone, no repeats, Drain then DaemonReload then services).
func FuzzActions(f *testing.F) {
	f.Add("/etc/foobar\n/etc/containers/registries.conf", "/etc/foo\n/etc/foobar/", []byte{0, 1})
	f.Add("/etc/nmstate/openshift/x.yaml", "/etc/nmstate\n/", []byte{1, 2})
	f.Add("/etc/kubernetes/credential-providers/../x", "/etc/kubernetes//credential-providers", []byte{3})
	f.Add("/var/lib/kubelet/config.json\n/etc/containers/policy.json", "/var/lib\n/etc/containers/policy.json", []byte{4, 5, 6})
	f.Add("/etc/a\n/etc/a/b/c", "/etc/a/b\n/etc/a", []byte{7, 2})
	f.Fuzz(func(t *testing.T, changed, policyPaths string, actions []byte) {
		policies := disruption.DefaultClusterPolicies()
		for i, p := range strings.Split(policyPaths, "\n") {
			if i >= 16 || p == "" {
				continue
			}
			a := fuzzPolicyActions[0]
			if i < len(actions) {
				a = fuzzPolicyActions[int(actions[i])%len(fuzzPolicyActions)]
			}
			policies.Files = append(policies.Files, opv1.NodeDisruptionPolicyStatusFile{Path: "/" + p, Actions: a})
		}
		var paths []string
		for i, p := range strings.Split(changed, "\n") {
			if i >= 16 {
				break
			}
			paths = append(paths, path.Clean("/"+p))
		}
		slices.Sort(paths)
		paths = slices.Compact(paths)

		for _, p := range paths {
			got, ok := closestFilePolicy(p, policies.Files)
			wantLen, want := -1, -1
			for _, a := range ancestors(p) {
				for i, f := range policies.Files {
					if path.Clean(f.Path) == a && len(a) > wantLen {
						wantLen, want = len(a), i
					}
				}
			}
			if ok != (want >= 0) {
				t.Fatalf("%q: policy found %v, a walk up the path finds %v", p, ok, want >= 0)
			}
			if ok && path.Clean(got.Path) != path.Clean(policies.Files[want].Path) {
				t.Fatalf("%q: policy %q chosen, the closest is %q", p, got.Path, policies.Files[want].Path)
			}
		}

		diff := &ConfigDiff{Files: PathChanges{Changed: paths}}
		out := Actions(diff, policies, []byte(regsBase), []byte(regsSafe))
		if !reflect.DeepEqual(out, Actions(diff, policies, []byte(regsBase), []byte(regsSafe))) {
			t.Fatal("actions are not deterministic")
		}
		if len(out) == 0 {
			t.Fatal("no actions")
		}
		rank := map[ActionType]int{ActionDrain: 0, ActionDaemonReload: 1, ActionReload: 2, ActionRestart: 2}
		last := -1
		for i, a := range out {
			if (a.Type == ActionReboot || a.Type == ActionNone) && len(out) != 1 {
				t.Fatalf("%s among other actions: %v", a, out)
			}
			if slices.Contains(out[i+1:], a) {
				t.Fatalf("%s repeated: %v", a, out)
			}
			if (a.Type == ActionReload || a.Type == ActionRestart) && a.Service == "" {
				t.Fatalf("%s without a service", a.Type)
			}
			if r, ok := rank[a.Type]; ok {
				if r < last {
					t.Fatalf("actions out of order: %v", out)
				}
				last = r
			}
			if a.Type == ActionReload && slices.Contains(out, restartA(a.Service)) {
				t.Fatalf("reload and restart of %s: %v", a.Service, out)
			}
		}
	})
}
