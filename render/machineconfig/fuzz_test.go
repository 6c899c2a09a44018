package machineconfig

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// fuzzSeeds are Ignition configs of every spec the parser takes, valid and not, for the fuzz targets.
var fuzzSeeds = []string{
	``,
	`{"ignition":{"version":"3.2.0"}}`,
	`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/ok.conf","mode":420,"contents":{"source":"data:,x"}}]},"systemd":{"units":[{"name":"x.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true"}]},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAA"]}]}}`,
	`{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"a.service","enabled":false},{"name":"b.service","dropins":[{"name":"10.conf","contents":"y"},{"name":"20.conf","contents":"z"}]}]}}`,
	`{"ignition":{"version":"3.5.0"},"storage":{"files":[{"path":"/etc/z","contents":{"source":"data:;base64,H4sIAAAAAAAA/8tIzcnJBwCGphA2BQAAAA==","compression":"gzip"}}],"links":[{"path":"/etc/l","target":"/etc/z"}],"directories":[{"path":"/var/d","mode":493}]}}`,
	`{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/from-spec2","mode":420,"contents":{"source":"data:,two"}}]}}`,
	`{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/etc/from-spec31","overwrite":false,"contents":{"source":"data:,three"}}]}}`,
	`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"relative/path"}]}}`,
	`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/../boot/x"},{"path":"/usr/local/bin/s","mode":2541}]}}`,
	`{"ignition":{"version":"3.3.0"},"kernelArguments":{"shouldExist":["nosmt"]}}`,
	`{"ignition":{"version":"4.0.0"}}`,
	`{"ignition":{"version":""}}`,
	`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/x","contents":{"source":"data:,x","compression":"zstd"}}]}}`,
	`[]`,
}

// fuzzMC makes a MachineConfig of role worker (or the custom role infra) from fuzzed fields.
func fuzzMC(name string, infra bool, ign []byte, kernelType string, extension string, karg string) *mcfgv1.MachineConfig {
	role := wellknown.WorkerPool
	if infra {
		role = "infra"
	}
	m := &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}},
		Spec: mcfgv1.MachineConfigSpec{
			Config:     runtime.RawExtension{Raw: ign},
			KernelType: kernelType,
		},
	}
	if extension != "" {
		m.Spec.Extensions = []string{extension}
	}
	if karg != "" {
		m.Spec.KernelArguments = []string{karg}
	}
	return m
}

// FuzzParseIgnition checks that any input either fails to parse or gives a config that survives a JSON round
// trip unchanged, and that validation never panics and agrees with the parse error.
func FuzzParseIgnition(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ParseIgnition(raw)
		p := Parse(fuzzMC("99-fuzz", false, raw, "", "", ""))
		if (err == nil) != (p.ParseErr == nil) {
			t.Fatalf("ParseIgnition error %v but Parse error %v", err, p.ParseErr)
		}
		if err != nil {
			if len(p.Invalid) == 0 {
				t.Fatalf("a config that does not parse (%v) validated", err)
			}
			return
		}
		if cfg.Ignition.Version != IgnitionVersion {
			t.Fatalf("parsed config has version %q, want %q", cfg.Ignition.Version, IgnitionVersion)
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("encoding a parsed config: %v", err)
		}
		again, err := ParseIgnition(out)
		if err != nil {
			t.Fatalf("a parsed config does not parse again: %v\n%s", err, out)
		}
		// Compared encoded: Ignition does not tell an empty list from none.
		if out2, err := json.Marshal(again); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config (%v):\n%s\n%s", err, out, out2)
		}
	})
}

// FuzzMerge merges two fuzzed configs and checks the renderer's invariants: the keyed merge gives Ignition's
// own result; merging is deterministic (same spec, same rendered name, whatever the input order); a merge of
// valid configs succeeds and its result validates again and is a fixed point (rendering the rendered config
// alone gives it back).
func FuzzMerge(f *testing.F) {
	for i, a := range fuzzSeeds {
		b := fuzzSeeds[(i+3)%len(fuzzSeeds)]
		f.Add([]byte(a), []byte(b), i%2 == 0, "", "", "")
	}
	f.Add([]byte(fuzzSeeds[2]), []byte(fuzzSeeds[4]), true, "realtime", "kernel-devel", "nosmt")
	f.Add([]byte(fuzzSeeds[5]), []byte(fuzzSeeds[6]), false, "64k-pages", "usbguard", "a=b")
	f.Add([]byte(fuzzSeeds[1]), []byte(fuzzSeeds[1]), false, "bogus", "bogus", "")
	f.Fuzz(func(t *testing.T, a, b []byte, infra bool, kernelType, extension, karg string) {
		base := Base{OSImageURL: "quay.io/example/os@sha256:0123"}
		first := fuzzMC("00-first", false, a, "", "", karg)
		second := fuzzMC("50-second", infra, b, kernelType, extension, "")
		pa, pb := Parse(first), Parse(second)

		if pa.ParseErr == nil && pb.ParseErr == nil {
			fast := mergeIgnition(mergeIgnition(EmptyIgnition(), pa.Ignition), pb.Ignition)
			ref := normalizeEmpty(referenceMerge(referenceMerge(EmptyIgnition(), pa.Ignition), pb.Ignition))
			if !reflect.DeepEqual(fast, ref) {
				t.Fatalf("keyed merge differs from Ignition's:\n%s", describeDiff(ref, fast))
			}
		}

		spec, err := MergeParsed([]*Parsed{pa, pb}, base)
		reversed, rerr := MergeParsed([]*Parsed{pb, pa}, base)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("merge depends on input order: %v vs %v", err, rerr)
		}
		if len(pa.Invalid) == 0 && len(pb.Invalid) == 0 && err != nil {
			t.Fatalf("valid configs do not merge: %v", err)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(spec, reversed) {
			t.Fatalf("merge depends on input order:\n%s\n%s", spec.Config.Raw, reversed.Config.Raw)
		}
		again, err := MergeParsed([]*Parsed{Parse(first), Parse(second)}, base)
		if err != nil || !reflect.DeepEqual(spec, again) {
			t.Fatalf("merge is not deterministic (%v)", err)
		}
		n1, err1 := RenderedName("worker", spec)
		n2, err2 := RenderedName("worker", again)
		if err1 != nil || err2 != nil || n1 != n2 {
			t.Fatalf("rendered names differ: %q (%v) %q (%v)", n1, err1, n2, err2)
		}
		if len(pa.Invalid) > 0 || len(pb.Invalid) > 0 {
			return
		}

		rendered := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: n1, Labels: map[string]string{wellknown.RoleLabel: wellknown.WorkerPool}},
			Spec:       *spec.DeepCopy(),
		}
		if errs := ValidateMachineConfig(rendered); len(errs) > 0 {
			t.Fatalf("the merge of valid configs does not validate: %v\n%s", errs.ToAggregate(), spec.Config.Raw)
		}
		fixed, err := Merge([]*mcfgv1.MachineConfig{rendered}, base)
		if err != nil {
			t.Fatalf("rendering the rendered config: %v", err)
		}
		if !bytes.Equal(fixed.Config.Raw, spec.Config.Raw) || !reflect.DeepEqual(fixed.KernelArguments, spec.KernelArguments) ||
			fixed.KernelType != spec.KernelType || !reflect.DeepEqual(fixed.Extensions, spec.Extensions) {
			t.Fatalf("the rendered config is not a fixed point of the render:\n%s\n%s", spec.Config.Raw, fixed.Config.Raw)
		}
		if err := Reconcilable(spec, fixed); err != nil {
			t.Fatalf("a config is not reconcilable with itself: %v", err)
		}
	})
}
