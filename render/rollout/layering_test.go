package rollout

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

func TestLayeringFor(t *testing.T) {
	const cfg, img = "rendered-layered-b", "quay.io/x/os@sha256:1"
	pool := testPool("layered", map[string]string{"node-role.kubernetes.io/layered": ""}, cfg)
	annotated := func(m *mcfgv1.MachineOSConfig, build string) *mcfgv1.MachineOSConfig {
		m.Annotations = map[string]string{wellknown.CurrentMachineOSBuildAnnotation: build}
		return m
	}
	newer := func(b *mcfgv1.MachineOSBuild) *mcfgv1.MachineOSBuild {
		b.CreationTimestamp = metav1.NewTime(t0.Add(time.Hour))
		return b
	}
	tests := []struct {
		name      string
		configs   []*mcfgv1.MachineOSConfig
		builds    []*mcfgv1.MachineOSBuild
		wantNil   bool
		wantBuild string
		wantReady bool
	}{
		{name: "no MachineOSConfig: not layered", configs: []*mcfgv1.MachineOSConfig{mosc("other", "worker", "")}, wantNil: true},
		{name: "MachineOSConfig, no build yet", configs: []*mcfgv1.MachineOSConfig{mosc("m", "layered", "")}},
		{
			name:      "the annotated build, succeeded, image published",
			configs:   []*mcfgv1.MachineOSConfig{annotated(mosc("m", "layered", img), "m-1")},
			builds:    []*mcfgv1.MachineOSBuild{mosb("m-1", "m", cfg, osbuild.StateSucceeded, img), newer(mosb("m-2", "m", cfg, osbuild.StateBuilding, ""))},
			wantBuild: "m-1", wantReady: true,
		},
		{
			name:      "succeeded, but the MachineOSConfig does not name its image yet",
			configs:   []*mcfgv1.MachineOSConfig{annotated(mosc("m", "layered", ""), "m-1")},
			builds:    []*mcfgv1.MachineOSBuild{mosb("m-1", "m", cfg, osbuild.StateSucceeded, img)},
			wantBuild: "m-1",
		},
		{
			name:      "annotation names a build for an older config: fall back to one for the current config",
			configs:   []*mcfgv1.MachineOSConfig{annotated(mosc("m", "layered", img), "m-old")},
			builds:    []*mcfgv1.MachineOSBuild{mosb("m-old", "m", "rendered-layered-a", osbuild.StateSucceeded, img), mosb("m-new", "m", cfg, osbuild.StateBuilding, "")},
			wantBuild: "m-new",
		},
		{
			name:    "no build for the current config",
			configs: []*mcfgv1.MachineOSConfig{annotated(mosc("m", "layered", img), "m-old")},
			builds:  []*mcfgv1.MachineOSBuild{mosb("m-old", "m", "rendered-layered-a", osbuild.StateSucceeded, img)},
		},
		{
			name:      "fallback prefers the build whose image the MachineOSConfig names, then the newest",
			configs:   []*mcfgv1.MachineOSConfig{mosc("m", "layered", img)},
			builds:    []*mcfgv1.MachineOSBuild{newer(mosb("m-b", "m", cfg, osbuild.StateFailed, "")), mosb("m-a", "m", cfg, osbuild.StateSucceeded, img)},
			wantBuild: "m-a", wantReady: true,
		},
		{
			name:      "builds of another MachineOSConfig are ignored",
			configs:   []*mcfgv1.MachineOSConfig{mosc("m", "layered", "")},
			builds:    []*mcfgv1.MachineOSBuild{mosb("x-1", "x", cfg, osbuild.StateSucceeded, img), mosb("m-1", "m", cfg, osbuild.StatePrepared, "")},
			wantBuild: "m-1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := LayeringFor(pool, tc.configs, tc.builds)
			if tc.wantNil {
				assert.Nil(t, l)
				assert.Equal(t, Target{Config: cfg}, l.TargetFor(pool), "a nil Layering targets the config only")
				return
			}
			if assert.NotNil(t, l) {
				got := ""
				if l.Build != nil {
					got = l.Build.Name
				}
				assert.Equal(t, tc.wantBuild, got)
				assert.Equal(t, tc.wantReady, l.Ready())
				assert.True(t, l.TargetFor(pool).Layered)
			}
		})
	}
}
