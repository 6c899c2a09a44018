package registries

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// fuzzInputs reads mirror sets and registry sources from a small line language, one entry a line:
// "icsp SRC MIRROR...", "idms SRC MIRROR...", "never SRC MIRROR..." (an IDMS with NeverContactSource),
// "itms SRC MIRROR...", "insecure SCOPE", "blocked SCOPE", "search HOST". Each entry is its own object.
func fuzzInputs(spec string) Inputs {
	var in Inputs
	var src configv1.RegistrySources
	for i, line := range strings.Split(spec, "\n") {
		if i >= 24 {
			break
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := "f" + string(rune('a'+i))
		switch f[0] {
		case "icsp":
			in.ICSPs = append(in.ICSPs, icsp(name, rdm(f[1], f[2:]...)))
		case "idms":
			in.IDMSs = append(in.IDMSs, idms(name, idm(f[1], "", f[2:]...)))
		case "never":
			in.IDMSs = append(in.IDMSs, idms(name, idm(f[1], configv1.NeverContactSource, f[2:]...)))
		case "itms":
			in.ITMSs = append(in.ITMSs, itms(name, itm(f[1], configv1.AllowContactingSource, f[2:]...)))
		case "insecure":
			src.InsecureRegistries = append(src.InsecureRegistries, f[1])
		case "blocked":
			src.BlockedRegistries = append(src.BlockedRegistries, f[1])
		case "search":
			src.ContainerRuntimeSearchRegistries = append(src.ContainerRuntimeSearchRegistries, f[1])
		}
	}
	if len(src.InsecureRegistries)+len(src.BlockedRegistries)+len(src.ContainerRuntimeSearchRegistries) > 0 {
		in.Image = image(src)
	}
	return in
}

// FuzzGenerate checks Generate on fuzzed bases and mirror sets: invalid inputs are refused; otherwise the
// result is deterministic, does not depend on the order of the objects, decodes strictly as registries.conf,
// is a safe change from itself; from the stock base, every mirror of every source is written once under the
// source's entry, with the source's pull-from-mirror, and every blocked scope is blocked. (Mirrors already in
// the base are not deduplicated, as in the reference: its base is always the stock template.)
func FuzzGenerate(f *testing.F) {
	f.Add([]byte(DefaultRegistriesConf), "icsp registry.redhat.io mirror.example.com/rh\nidms quay.io/ns m1.example/ns m2.example/ns\nitms docker.io/library tags.example/lib")
	f.Add([]byte(DefaultRegistriesConf), "never quay.io/ns/app m.example/app\nidms quay.io/ns m.example/ns\nidms quay.io/ns/app/sub x.example/sub")
	f.Add([]byte(""), "insecure *.insecure.example\nblocked quay.example/ns/blocked\nicsp quay.example/ns m0.example/ns\nsearch reg.example:5000")
	f.Add([]byte("[[registry]]\nlocation = \"quay.io/ns\"\n[[registry.mirror]]\nlocation = \"old.example/ns\"\n"), "idms quay.io/ns new.example/ns old.example/ns")
	f.Add([]byte("unknown-key = 1\n"), "icsp a.example b.example")
	f.Add([]byte(DefaultRegistriesConf), "idms quay.io/ns:tag m.example\nblocked *\ninsecure a.example/x/")
	f.Fuzz(func(t *testing.T, base []byte, spec string) {
		in := fuzzInputs(spec)
		out, err := Generate(base, in)
		if len(Validate(in)) > 0 {
			if err == nil {
				t.Fatalf("invalid inputs generated:\n%s", out)
			}
			return
		}
		if err != nil {
			return // the base does not parse
		}
		if again, err := Generate(base, in); err != nil || !bytes.Equal(out, again) {
			t.Fatalf("not deterministic (%v):\n%s\n---\n%s", err, out, again)
		}
		permuted := Inputs{ICSPs: reversed(in.ICSPs), IDMSs: reversed(in.IDMSs), ITMSs: reversed(in.ITMSs), Image: in.Image}
		if got, err := Generate(base, permuted); err != nil || !bytes.Equal(out, got) {
			t.Fatalf("depends on the order of the objects (%v):\n%s\n---\n%s", err, out, got)
		}
		if _, err := parseRegistriesConf(out); err != nil {
			t.Fatalf("the result does not decode: %v\n%s", err, out)
		}
		checkMirrorsWritten(t, in)
		if safe, reason, err := IsSafeChange(out, out); err != nil || !safe {
			t.Fatalf("no change is unsafe: %s %v", reason, err)
		}
		if in.Image != nil && len(in.Image.Spec.RegistrySources.ContainerRuntimeSearchRegistries) > 0 {
			dropIn, err := SearchRegistriesConf(in)
			if err != nil {
				t.Fatalf("search registries drop-in: %v", err)
			}
			for _, r := range in.Image.Spec.RegistrySources.ContainerRuntimeSearchRegistries {
				if !strings.Contains(string(dropIn), r) {
					t.Fatalf("search registry %q not in the drop-in:\n%s", r, dropIn)
				}
			}
		}
	})
}

// checkMirrorsWritten generates from the stock base and checks that every input mirror is under its source
// once, and every blocked scope blocked.
func checkMirrorsWritten(t *testing.T, in Inputs) {
	t.Helper()
	out, err := Generate([]byte(DefaultRegistriesConf), in)
	if err != nil {
		t.Fatalf("valid inputs fail on the stock base: %v", err)
	}
	conf, err := parseRegistriesConf(out)
	if err != nil {
		t.Fatalf("the result does not decode: %v\n%s", err, out)
	}
	for _, reg := range conf.Registries {
		seen := map[[2]string]bool{}
		for _, m := range reg.Mirrors {
			k := [2]string{m.Location, m.PullFromMirror}
			if seen[k] {
				t.Fatalf("mirror %s (%s) written twice for %s:\n%s", m.Location, m.PullFromMirror, registryScope(&reg), out)
			}
			seen[k] = true
		}
	}
	want := func(source string, mirrors []string, pullFrom string) {
		// The source itself among its mirrors is where registries.conf goes anyway: not written.
		mirrors = slices.DeleteFunc(slices.Clone(mirrors), func(m string) bool { return m == source })
		if len(mirrors) == 0 {
			return // a source without mirrors gets no entry of its own
		}
		i, ok := findRegistry(&conf, source)
		if !ok {
			t.Fatalf("no entry for source %s:\n%s", source, out)
		}
		for _, m := range mirrors {
			found := false
			for _, e := range conf.Registries[i].Mirrors {
				found = found || (e.Location == m && e.PullFromMirror == pullFrom)
			}
			if !found {
				t.Fatalf("mirror %s (%s) of %s not written:\n%s", m, pullFrom, source, out)
			}
		}
	}
	for _, o := range in.ICSPs {
		for _, e := range o.Spec.RepositoryDigestMirrors {
			want(e.Source, e.Mirrors, sysregistriesv2.MirrorByDigestOnly)
		}
	}
	for _, o := range in.IDMSs {
		for _, e := range o.Spec.ImageDigestMirrors {
			want(e.Source, mirrorStrings(e.Mirrors), sysregistriesv2.MirrorByDigestOnly)
		}
	}
	for _, o := range in.ITMSs {
		for _, e := range o.Spec.ImageTagMirrors {
			want(e.Source, mirrorStrings(e.Mirrors), sysregistriesv2.MirrorByTagOnly)
		}
	}
	if in.Image != nil {
		for _, scope := range in.Image.Spec.RegistrySources.BlockedRegistries {
			if i, ok := findRegistry(&conf, scope); !ok || !conf.Registries[i].Blocked {
				t.Fatalf("blocked scope %s not blocked:\n%s", scope, out)
			}
		}
	}
}

func mirrorStrings(ms []configv1.ImageMirror) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}
