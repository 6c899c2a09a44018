package renderer

import (
	"encoding/json"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func pool(name string, sel *metav1.LabelSelector) *mcfgv1.MachineConfigPool {
	return &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigPoolSpec{MachineConfigSelector: sel}}
}

func roleSelector(roles ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: wellknown.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles}}}
}

func config(name, role, ign string) *mcfgv1.MachineConfig {
	m := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{wellknown.RoleLabel: role}}}
	if ign != "" {
		m.Spec.Config = runtime.RawExtension{Raw: []byte(ign)}
	}
	return m
}

func fileConfig(name, role, path, data string) *mcfgv1.MachineConfig {
	raw, _ := json.Marshal(map[string]any{"ignition": map[string]any{"version": "3.2.0"},
		"storage": map[string]any{"files": []any{map[string]any{"path": path, "contents": map[string]any{"source": "data:," + data}}}}})
	return config(name, role, string(raw))
}

func controllerConfig() *mcfgv1.ControllerConfig {
	return &mcfgv1.ControllerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: wellknown.ControllerConfigName, Annotations: map[string]string{wellknown.ReleaseImageVersionAnnotation: "4.19.0"}},
		Spec:       mcfgv1.ControllerConfigSpec{BaseOSContainerImage: "quay.io/openshift/rhcos@sha256:base", BaseOSExtensionsContainerImage: "quay.io/openshift/ext@sha256:base"},
	}
}

func TestRender(t *testing.T) {
	worker := pool("worker", roleSelector("worker"))
	infra := pool("infra", roleSelector("worker", "infra"))
	configs := []*mcfgv1.MachineConfig{
		fileConfig("00-worker", "worker", "/etc/a", "worker"),
		fileConfig("01-master", "master", "/etc/a", "master"),
		fileConfig("00-infra", "infra", "/etc/b", "infra"),
	}
	tests := []struct {
		name        string
		in          Inputs
		wantReason  string
		wantMessage string
		check       func(t *testing.T, out Outcome)
	}{
		{name: "worker pool renders its configs only",
			in: Inputs{Pool: worker, Configs: configs, ControllerConfig: controllerConfig(), Version: "v1"},
			check: func(t *testing.T, out Outcome) {
				assert.Regexp(t, `^rendered-worker-[0-9a-f]{32}$`, out.Rendered.Name)
				require.Len(t, out.Sources, 1)
				assert.Equal(t, "00-worker", out.Sources[0].Name)
				assert.Equal(t, "MachineConfig", out.Sources[0].Kind)
				assert.Equal(t, "v1", out.Rendered.Annotations[wellknown.GeneratedByControllerVersionAnnotation])
				assert.Equal(t, "4.19.0", out.Rendered.Annotations[wellknown.ReleaseImageVersionAnnotation])
				assert.NotContains(t, out.Rendered.Annotations, wellknown.OSImageURLOverriddenAnnotation)
				assert.Equal(t, "quay.io/openshift/rhcos@sha256:base", out.Rendered.Spec.OSImageURL)
				assert.Empty(t, out.Rendered.Labels, "rendered configs carry no labels, so no pool selects them")
			}},
		{name: "custom pool inherits worker configs, in merge order",
			in: Inputs{Pool: infra, Configs: configs, ControllerConfig: controllerConfig()},
			check: func(t *testing.T, out Outcome) {
				assert.Regexp(t, `^rendered-infra-`, out.Rendered.Name)
				require.Len(t, out.Sources, 2)
				assert.Equal(t, []string{"00-worker", "00-infra"}, []string{out.Sources[0].Name, out.Sources[1].Name})
			}},
		{name: "user osImageURL is marked as an override",
			in: Inputs{Pool: worker, ControllerConfig: controllerConfig(), Configs: []*mcfgv1.MachineConfig{func() *mcfgv1.MachineConfig {
				m := config("99-os", "worker", "")
				m.Spec.OSImageURL = "quay.io/me/os@sha256:mine"
				return m
			}()}},
			check: func(t *testing.T, out Outcome) {
				assert.Equal(t, "true", out.Rendered.Annotations[wellknown.OSImageURLOverriddenAnnotation])
				assert.Equal(t, "quay.io/me/os@sha256:mine", out.Rendered.Spec.OSImageURL)
			}},
		{name: "no selector", in: Inputs{Pool: pool("p", nil), Configs: configs, ControllerConfig: controllerConfig()},
			wantReason: ReasonNoSelector, wantMessage: "Failed to render configuration for pool p: spec.machineConfigSelector is not set"},
		{name: "empty selector selects nothing and says so", in: Inputs{Pool: pool("p", &metav1.LabelSelector{}), Configs: configs, ControllerConfig: controllerConfig()},
			wantReason: ReasonSelectingAll, wantMessage: "an empty selector would select every MachineConfig"},
		{name: "no ControllerConfig", in: Inputs{Pool: worker, Configs: configs},
			wantReason: ReasonMissingControllerConf, wantMessage: "ControllerConfig machine-config-controller not found"},
		{name: "no configs", in: Inputs{Pool: pool("empty", roleSelector("nobody")), Configs: configs, ControllerConfig: controllerConfig()},
			wantReason: ReasonNoMachineConfigs, wantMessage: "Failed to render configuration for pool empty: no MachineConfigs found matching selector"},
		{name: "invalid config is named",
			in:         Inputs{Pool: worker, ControllerConfig: controllerConfig(), Configs: append(configs[:1:1], config("50-bad", "worker", `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/x","mode":2541}]}}`))},
			wantReason: ReasonInvalidMachineConfig, wantMessage: `machineconfig "50-bad": spec.config.storage.files[0].mode`},
		{name: "too large",
			in:         Inputs{Pool: worker, ControllerConfig: controllerConfig(), Configs: []*mcfgv1.MachineConfig{fileConfig("00-big", "worker", "/etc/big", strings.Repeat("x", MaxRenderedSize))}},
			wantReason: ReasonTooLarge, wantMessage: "more than the 1572864 allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := Render(tc.in)
			if tc.wantReason != "" {
				require.NotNil(t, out.Failure, "want failure %s", tc.wantReason)
				assert.Nil(t, out.Rendered)
				assert.Equal(t, tc.wantReason, out.Failure.Reason)
				assert.Contains(t, out.Failure.Message, tc.wantMessage)
				return
			}
			require.Nil(t, out.Failure, "unexpected failure: %+v", out.Failure)
			tc.check(t, out)
		})
	}
}

// TestRenderNamesUnreconcilableCulprit checks that a change a node cannot apply is refused naming the config
// that introduced it.
func TestRenderNamesUnreconcilableCulprit(t *testing.T) {
	worker := pool("worker", roleSelector("worker"))
	base := []*mcfgv1.MachineConfig{fileConfig("00-a", "worker", "/etc/a", "1"), fileConfig("01-b", "worker", "/etc/b", "1")}
	first := Render(Inputs{Pool: worker, Configs: base, ControllerConfig: controllerConfig()})
	require.Nil(t, first.Failure)

	withUser := append(base[:2:2], config("50-users", "worker", `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"alice","sshAuthorizedKeys":["k"]}]}}`))
	out := Render(Inputs{Pool: worker, Configs: withUser, ControllerConfig: controllerConfig(), Current: first.Rendered})
	require.NotNil(t, out.Failure)
	assert.Equal(t, ReasonUnreconcilable, out.Failure.Reason)
	assert.Contains(t, out.Failure.Message, "reconciliation failed between current config "+first.Rendered.Name+" and config 50-users")
	assert.Contains(t, out.Failure.Message, `only the "core" user can be configured, not "alice"`)

	// A reconcilable change (file content) renders a new name.
	changed := Render(Inputs{Pool: worker, Configs: []*mcfgv1.MachineConfig{base[0], fileConfig("01-b", "worker", "/etc/b", "2")}, ControllerConfig: controllerConfig(), Current: first.Rendered})
	require.Nil(t, changed.Failure)
	assert.NotEqual(t, first.Rendered.Name, changed.Rendered.Name)
}
