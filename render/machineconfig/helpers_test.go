package machineconfig

import (
	"encoding/json"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// mc returns a MachineConfig with the given role label and raw Ignition (empty: none).
func mc(name, role, ign string, mutate ...func(*mcfgv1.MachineConfig)) *mcfgv1.MachineConfig {
	m := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}}}
	if ign != "" {
		m.Spec.Config = runtime.RawExtension{Raw: []byte(ign)}
	}
	for _, f := range mutate {
		f(m)
	}
	return m
}

// fileIgn returns a 3.2 Ignition config writing one file with a data URL; compression "" means unset.
func fileIgn(path, source, compression string) string {
	contents := map[string]any{"source": source}
	if compression != "" {
		contents["compression"] = compression
	}
	raw, _ := json.Marshal(map[string]any{
		"ignition": map[string]any{"version": "3.2.0"},
		"storage":  map[string]any{"files": []any{map[string]any{"path": path, "contents": contents}}},
	})
	return string(raw)
}

func mustIgnition(t *testing.T, spec *mcfgv1.MachineConfigSpec) ign3types.Config {
	t.Helper()
	cfg, err := IgnitionOf(spec)
	if err != nil {
		t.Fatalf("parsing merged ignition: %v", err)
	}
	return cfg
}

func fileByPath(cfg ign3types.Config, path string) *ign3types.File {
	for i := range cfg.Storage.Files {
		if cfg.Storage.Files[i].Path == path {
			return &cfg.Storage.Files[i]
		}
	}
	return nil
}
