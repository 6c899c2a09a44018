package layering

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/internal/wellknown"
)

func ptr[T any](v T) *T { return &v }

// docsMachineOSConfig returns the docs' MachineOSConfig, parsed from the embedded YAML.
func docsMachineOSConfig(t testing.TB) *mcfgv1.MachineOSConfig {
	t.Helper()
	raw, err := examples.Doc(examples.MachineOSConfigLayeredImage)
	require.NoError(t, err)
	var mosc mcfgv1.MachineOSConfig
	require.NoError(t, yaml.UnmarshalStrict(raw, &mosc))
	return &mosc
}

// renderedMC returns a rendered config of pool layered-image with cfg as its Ignition.
func renderedMC(t testing.TB, osImageURL string, cfg ign3types.Config) *mcfgv1.MachineConfig {
	t.Helper()
	cfg.Ignition.Version = "3.5.0"
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "rendered-layered-image-0123456789abcdef0123456789abcdef",
			Annotations: map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "imagemode-test"}},
		Spec: mcfgv1.MachineConfigSpec{OSImageURL: osImageURL, Config: runtime.RawExtension{Raw: raw}},
	}
}

// plainSource is a data URL with percent-encoded (not base64) content.
func plainSource(s string) string { return "data:," + url.PathEscape(s) }

func base64Source(b []byte) string { return "data:;base64," + base64.StdEncoding.EncodeToString(b) }

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func file(p, source string, mutate ...func(*ign3types.File)) ign3types.File {
	f := ign3types.File{Node: ign3types.Node{Path: p, Overwrite: ptr(true)},
		FileEmbedded1: ign3types.FileEmbedded1{Contents: ign3types.Resource{Source: ptr(source)}}}
	for _, m := range mutate {
		m(&f)
	}
	return f
}

// listing renders the context one entry per line: mode, owner, path, and size or link target.
func listing(files []ContextFile) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s %d:%d %s", f.Mode, f.UID, f.GID, f.Path)
		switch {
		case f.Mode&fs.ModeSymlink != 0:
			fmt.Fprintf(&b, " -> %s", f.Target)
		case f.Mode.IsRegular():
			fmt.Fprintf(&b, " %d", len(f.Content))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// contextFile returns the entry that COPY puts at dest, with the step carrying it.
func contextFile(t testing.TB, bc *BuildContext, dest string) ContextFile {
	t.Helper()
	for _, line := range strings.Split(string(bc.Containerfile), "\n") {
		var uid, gid int
		var src, dir string
		if n, _ := fmt.Sscanf(line, "COPY --chown=%d:%d %s %s", &uid, &gid, &src, &dir); n != 4 || !strings.HasPrefix(dest, dir) {
			continue
		}
		want := strings.TrimSuffix(src, "/") + "/" + strings.TrimPrefix(dest, dir)
		for _, f := range bc.Files {
			if f.Path == want {
				return f
			}
		}
	}
	t.Fatalf("no COPY puts anything at %s", dest)
	return ContextFile{}
}
