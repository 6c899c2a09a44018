package containerruntime

import (
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func labelledPool(name string, labels map[string]string) *mcfgv1.MachineConfigPool {
	return &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func TestBuiltInPoolChanged(t *testing.T) {
	builtIn := map[string]string{wellknown.BuiltInPoolLabel: ""}
	p := builtInPoolChanged()
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{name: "built-in pool created", got: p.Create(event.CreateEvent{Object: labelledPool("worker", builtIn)}), want: true},
		{name: "label value does not matter", got: p.Create(event.CreateEvent{Object: labelledPool("worker", map[string]string{wellknown.BuiltInPoolLabel: "true"})}), want: true},
		{name: "custom pool created", got: p.Create(event.CreateEvent{Object: labelledPool("infra", nil)}), want: false},
		{name: "built-in pool deleted", got: p.Delete(event.DeleteEvent{Object: labelledPool("worker", builtIn)}), want: true},
		{name: "built-in pool status or spec update", got: p.Update(event.UpdateEvent{
			ObjectOld: labelledPool("worker", builtIn), ObjectNew: labelledPool("worker", builtIn)}), want: false},
		{name: "pool becomes built-in", got: p.Update(event.UpdateEvent{
			ObjectOld: labelledPool("infra", nil), ObjectNew: labelledPool("infra", builtIn)}), want: true},
		{name: "custom pool relabelled", got: p.Update(event.UpdateEvent{
			ObjectOld: labelledPool("infra", nil), ObjectNew: labelledPool("infra", map[string]string{"a": "b"})}), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.got)
		})
	}
}

func TestNamePredicates(t *testing.T) {
	named := func(n string) *mcfgv1.MachineConfig {
		return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: n}}
	}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{name: "image config cluster", got: isImageConfig().Generic(event.GenericEvent{Object: named("cluster")}), want: true},
		{name: "other image config", got: isImageConfig().Generic(event.GenericEvent{Object: named("other")}), want: false},
		{name: "controller config", got: isControllerConfig().Generic(event.GenericEvent{Object: named(wellknown.ControllerConfigName)}), want: true},
		{name: "other controller config", got: isControllerConfig().Generic(event.GenericEvent{Object: named("other")}), want: false},
		{name: "generated config", got: isGeneratedConfig().Generic(event.GenericEvent{Object: named("99-master-generated-registries")}), want: true},
		{name: "user config", got: isGeneratedConfig().Generic(event.GenericEvent{Object: named("99-worker-ssh")}), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.got)
		})
	}
}

func TestReleasePullSpec(t *testing.T) {
	tests := []struct {
		name, releaseImage, want string
	}{
		{name: "pull spec", releaseImage: releaseImage, want: releaseImage},
		{name: "bare version is no image", releaseImage: "4.19.0", want: ""},
		{name: "empty", releaseImage: "", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := &mcfgv1.ControllerConfig{Spec: mcfgv1.ControllerConfigSpec{ReleaseImage: tc.releaseImage}}
			assert.Equal(t, tc.want, releasePullSpec(cc))
		})
	}
}
