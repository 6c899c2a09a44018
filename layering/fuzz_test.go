package layering

import (
	"bytes"
	"errors"
	"path"
	"reflect"
	"regexp"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/openshift/imagebuilder/dockerfile/parser"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// FuzzValidateContainerfile checks that any Containerfile either validates or gives a *ContainerfileError
// whose line is within the file.
func FuzzValidateContainerfile(f *testing.F) {
	for _, s := range []string{
		"FROM configs AS final\nRUN dnf install -y cowsay && ostree container commit\n",
		"RUN echo no from\n",
		"FROM a\nBOGUS x\n",
		"FROM a\nRUN <<EOF\necho hi\nEOF\n",
		"# escape=`\nFROM a\nRUN echo `\n  b\n",
		"FROM a\nCMD []\nLABEL\n",
		"FROM a\nRUN echo \\\n",
		"FROM a\nONBUILD\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		err := ValidateContainerfile(content)
		if err == nil {
			return
		}
		var cerr *ContainerfileError
		if !errors.As(err, &cerr) {
			t.Fatalf("error %T %v is not a *ContainerfileError", err, err)
		}
		if lines := bytes.Count(content, []byte("\n")) + 1; cerr.Line < 0 || cerr.Line > lines {
			t.Fatalf("error at line %d of a %d-line Containerfile: %v", cerr.Line, lines, err)
		}
	})
}

// configsStageRun is the only kind of RUN step the configs stage may have.
var configsStageRun = regexp.MustCompile(`^RUN systemctl (enable|disable)( '[A-Za-z0-9:_.@\\-]+')+$`)

// FuzzCompose composes layered builds from fuzzed rendered configs and user Containerfiles and checks the
// invariants a build relies on: the result is deterministic and validates; the user's Containerfile comes
// verbatim after the configs stage; nothing in the rendered config adds a step to the configs stage other
// than FROM, COPY of the context, `systemctl enable|disable` of quoted unit names and the three labels; every
// context path is relative, clean and inside the context.
func FuzzCompose(f *testing.F) {
	docs := docsMachineOSConfig(f).Spec.Containerfile[0].Content
	ign := []string{
		`{"ignition":{"version":"3.5.0"}}`,
		`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/motd","mode":420,"contents":{"source":"data:,hi"}}]}}`,
		`{"ignition":{"version":"3.4.0"},"storage":{"directories":[{"path":"/var/lib/app","mode":448,"user":{"id":1000}}],"files":[{"path":"/var/lib/app/x","user":{"id":1000},"contents":{"source":"data:,x"}}],"links":[{"path":"/etc/l","target":"/etc/motd"}]}}`,
		`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"},{"name":"zincati.service","enabled":false},{"name":"masked.service","mask":true}]}}`,
		`{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAA one"]}]}}`,
		`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/a b/c$d","contents":{"source":"data:,x"}}]}}`,
		`{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"x'y.service","enabled":true}]}}`,
	}
	for i, s := range ign {
		f.Add([]byte(s), docs, "rendered-layered-image-0123", "layered-image", "quay.io/example/os:latest", i%2 == 0)
	}
	f.Add([]byte(ign[1]), "FROM configs\nRUN echo \"$X\"\n", "rendered-x", "pool\"x", "quay.io/example/os@sha256:0123456789012345678901234567890123456789012345678901234567890123", false)
	f.Add([]byte(ign[0]), "# escape=`\nFROM configs\n", "n", "p", "os", false)
	f.Fuzz(func(t *testing.T, ignition []byte, userContainerfile, mcName, pool, osImageURL string, withBuild bool) {
		in := func() Inputs {
			in := Inputs{
				Rendered: &mcfgv1.MachineConfig{
					ObjectMeta: metav1.ObjectMeta{Name: mcName, Annotations: map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "fuzz"}},
					Spec:       mcfgv1.MachineConfigSpec{OSImageURL: osImageURL, Config: runtime.RawExtension{Raw: ignition}},
				},
				MachineOSConfig: &mcfgv1.MachineOSConfig{
					ObjectMeta: metav1.ObjectMeta{Name: "fuzz"},
					Spec: mcfgv1.MachineOSConfigSpec{
						MachineConfigPool: mcfgv1.MachineConfigPoolReference{Name: pool},
						Containerfile:     []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.NoArch, Content: userContainerfile}},
					},
				},
				Arch: "amd64",
			}
			if withBuild {
				in.MachineOSBuild = &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: mcName + "-build"}}
			}
			return in
		}
		bc, err := Compose(in())
		again, err2 := Compose(in())
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(bc, again) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			return
		}
		if err := ValidateContainerfile(bc.Containerfile); err != nil {
			t.Fatalf("the composed Containerfile does not validate: %v\n%s", err, bc.Containerfile)
		}
		cf := string(bc.Containerfile)
		header := "\n# The Containerfile of MachineOSConfig fuzz (spec.containerFile[0].content), verbatim.\n"
		stage, user, ok := strings.Cut(cf, header)
		if !ok || strings.TrimSuffix(user, "\n") != strings.TrimSuffix(userContainerfile, "\n") {
			t.Fatalf("the user's Containerfile is not kept verbatim after the configs stage:\n%s", cf)
		}
		res, err := parser.Parse(strings.NewReader(stage))
		if err != nil {
			t.Fatalf("the configs stage does not parse on its own: %v\n%s", err, stage)
		}
		counts := map[string]int{}
		for _, n := range res.AST.Children {
			instr := strings.ToLower(n.Value)
			counts[instr]++
			switch instr {
			case "from", "copy", "label":
			case "run":
				if !configsStageRun.MatchString(n.Original) {
					t.Fatalf("unexpected RUN step in the configs stage: %q", n.Original)
				}
			default:
				t.Fatalf("unexpected %s step in the configs stage: %q", instr, n.Original)
			}
		}
		if counts["from"] != 1 || counts["label"] != 3 || counts["run"] > 2 {
			t.Fatalf("configs stage has %v:\n%s", counts, stage)
		}
		for _, f := range bc.Files {
			if f.Path == "" || path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == ".." || strings.HasPrefix(f.Path, "../") {
				t.Fatalf("context path %q is not a clean relative path inside the context", f.Path)
			}
		}
	})
}
