package machineos

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

func build(name string, state osbuild.State, mosc *mcfgv1.MachineOSConfig, rendered string) *mcfgv1.MachineOSBuild {
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{SpecHashAnnotation: SpecHash(mosc.Spec)}},
		Spec: mcfgv1.MachineOSBuildSpec{MachineConfig: mcfgv1.MachineConfigReference{Name: rendered}}}
	if state != osbuild.StateInitial {
		b.Status.Conditions = osbuild.Conditions(state, nil, metav1.Now())
	}
	if state == osbuild.StateSucceeded {
		b.Status.DigestedImagePushSpec = "registry.example.com/os/image@sha256:aaa"
	}
	return b
}

func waiting(b *mcfgv1.MachineOSBuild, why string) *mcfgv1.MachineOSBuild {
	b.Annotations[WaitingAnnotation] = why
	return b
}

func renderedMC(name, osImage string, files string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigSpec{OSImageURL: osImage,
		Config: runtimeRaw(files)}}
}

func TestDecide(t *testing.T) {
	mosc, pool, rendered := fixture()
	name, err := BuildName(mosc, pool, rendered, "")
	require.NoError(t, err)
	withAnnotation := func(k, v string) *mcfgv1.MachineOSConfig {
		m := mosc.DeepCopy()
		m.Annotations = map[string]string{k: v}
		return m
	}
	oldRendered := renderedMC("rendered-layered-image-old", rendered.Spec.OSImageURL, `{"old":1}`)
	oldBuild := build("layered-image-old", osbuild.StateSucceeded, mosc, oldRendered.Name)
	current := withAnnotation(wellknown.CurrentMachineOSBuildAnnotation, oldBuild.Name)

	tests := []struct {
		name       string
		in         ConfigInputs
		wantAction Action
		wantReason string
		wantStale  []string
		wantImage  string
		wantPool   corev1.ConditionStatus
		wantRemove bool
	}{
		{name: "pool missing", in: ConfigInputs{MOSC: mosc}, wantReason: ReasonPoolNotFound},
		{name: "pool not rendered", in: ConfigInputs{MOSC: mosc, Pool: pool}, wantReason: ReasonPoolNotRendered, wantPool: corev1.ConditionFalse},
		{name: "an older MachineOSConfig has the pool", in: ConfigInputs{MOSC: created(mosc, 100), Pool: pool, Rendered: rendered,
			Others: []*mcfgv1.MachineOSConfig{{ObjectMeta: metav1.ObjectMeta{Name: "first", CreationTimestamp: metav1.NewTime(time.Unix(1, 0))},
				Spec: mcfgv1.MachineOSConfigSpec{MachineConfigPool: mosc.Spec.MachineConfigPool}}}},
			wantReason: ReasonConflict},
		{name: "first build", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered}, wantAction: ActionCreate,
			wantReason: ReasonBuildPending, wantPool: corev1.ConditionFalse},
		{name: "build running, failed earlier build cleaned up", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{build(name, osbuild.StateBuilding, mosc, rendered.Name), build("layered-image-failed", osbuild.StateFailed, mosc, "x")}},
			wantReason: ReasonBuilding, wantStale: []string{"layered-image-failed"}, wantPool: corev1.ConditionFalse},
		{name: "build waiting for its push secret", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{waiting(build(name, osbuild.StateInitial, mosc, rendered.Name), "secret ns/push not found; the build starts when it exists")}},
			wantReason: ReasonBuildWaiting, wantPool: corev1.ConditionFalse},
		{name: "build succeeded: image published", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{build(name, osbuild.StateSucceeded, mosc, rendered.Name)}},
			wantReason: ReasonBuilt, wantImage: "registry.example.com/os/image@sha256:aaa", wantPool: corev1.ConditionFalse},
		{name: "build failed: pool degraded", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{build(name, osbuild.StateFailed, mosc, rendered.Name)}},
			wantReason: ReasonBuildFailed, wantPool: corev1.ConditionTrue},
		{name: "files-only change reuses the current image", in: ConfigInputs{MOSC: current, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{oldBuild}, CurrentRendered: oldRendered},
			wantAction: ActionReuse, wantReason: ReasonBuilt, wantImage: "registry.example.com/os/image@sha256:aaa", wantPool: corev1.ConditionFalse},
		{name: "base image change rebuilds", in: ConfigInputs{MOSC: current, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{oldBuild}, CurrentRendered: renderedMC(oldRendered.Name, "other@sha256:1", "")},
			wantAction: ActionCreate, wantReason: ReasonBuildPending, wantPool: corev1.ConditionFalse},
		{name: "a reuse interrupted before its status is finished", in: ConfigInputs{MOSC: current, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{oldBuild, reuseOf(build(name, osbuild.StateInitial, mosc, rendered.Name), oldBuild.Name)}, CurrentRendered: oldRendered},
			wantAction: ActionReuse, wantReason: ReasonBuilt, wantImage: "registry.example.com/os/image@sha256:aaa", wantPool: corev1.ConditionFalse},
		{name: "an earlier build adopted again whose image is gone is built again", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{build(name, osbuild.StateSucceeded, mosc, rendered.Name)}, MissingImages: map[string]bool{name: true}},
			wantAction: ActionDelete, wantReason: ReasonImageMissing},
		{name: "files-only change whose image is gone builds", in: ConfigInputs{MOSC: current, Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{oldBuild}, CurrentRendered: oldRendered, MissingImages: map[string]bool{oldBuild.Name: true}},
			wantAction: ActionCreate, wantReason: ReasonBuildPending, wantPool: corev1.ConditionFalse},
		{name: "rebuild annotation deletes the build", in: ConfigInputs{MOSC: withAnnotation(wellknown.RebuildAnnotation, ""), Pool: pool, Rendered: rendered,
			Builds: []*mcfgv1.MachineOSBuild{build(name, osbuild.StateSucceeded, mosc, rendered.Name)}},
			wantAction: ActionDelete, wantReason: ReasonRebuildRequested},
		{name: "rebuild annotation, build gone: created again, annotation removed", in: ConfigInputs{MOSC: withAnnotation(wellknown.RebuildAnnotation, ""), Pool: pool, Rendered: rendered},
			wantAction: ActionCreate, wantReason: ReasonBuildPending, wantRemove: true, wantPool: corev1.ConditionFalse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			assert.Equal(t, tc.wantAction, d.Action)
			assert.Equal(t, tc.wantReason, d.Ready.Reason, d.Ready.Message)
			assert.Equal(t, tc.wantStale, d.DeleteStale)
			assert.Equal(t, tc.wantImage, d.Image)
			assert.Equal(t, tc.wantRemove, d.RemoveRebuildAnnotation)
			if tc.wantPool == "" {
				assert.Nil(t, d.PoolCondition)
			} else {
				require.NotNil(t, d.PoolCondition)
				assert.Equal(t, tc.wantPool, d.PoolCondition.Status)
			}
			if d.Action == ActionCreate || d.Action == ActionReuse || d.Action == ActionDelete {
				assert.Equal(t, name, d.Build)
			}
		})
	}
}

func TestRequiresRebuild(t *testing.T) {
	base := renderedMC("a", "os@sha256:1", `{"a":1}`)
	tests := []struct {
		name   string
		mutate func(*mcfgv1.MachineConfig)
		want   bool
	}{
		{"files only", func(m *mcfgv1.MachineConfig) { m.Spec.Config = runtimeRaw(`{"b":2}`) }, false},
		{"kernel arguments (nodes apply them)", func(m *mcfgv1.MachineConfig) { m.Spec.KernelArguments = []string{"nosmt"} }, false},
		{"default kernel spelled out", func(m *mcfgv1.MachineConfig) { m.Spec.KernelType = "default" }, false},
		{"base image", func(m *mcfgv1.MachineConfig) { m.Spec.OSImageURL = "os@sha256:2" }, true},
		{"extensions image", func(m *mcfgv1.MachineConfig) { m.Spec.BaseOSExtensionsContainerImage = "ext@sha256:2" }, true},
		{"kernel type", func(m *mcfgv1.MachineConfig) { m.Spec.KernelType = "realtime" }, true},
		{"extensions", func(m *mcfgv1.MachineConfig) { m.Spec.Extensions = []string{"usbguard"} }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := base.DeepCopy()
			tc.mutate(n)
			assert.Equal(t, tc.want, RequiresRebuild(base, n))
		})
	}
}

func runtimeRaw(s string) runtime.RawExtension { return runtime.RawExtension{Raw: []byte(s)} }

func created(m *mcfgv1.MachineOSConfig, unix int64) *mcfgv1.MachineOSConfig {
	m = m.DeepCopy()
	m.CreationTimestamp = metav1.NewTime(time.Unix(unix, 0))
	return m
}

func reuseOf(b *mcfgv1.MachineOSBuild, from string) *mcfgv1.MachineOSBuild {
	b.Annotations[ReusedFromAnnotation] = from
	return b
}
