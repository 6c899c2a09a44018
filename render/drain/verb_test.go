package drain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

func nodeWith(ann map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: ann}}
}

func TestNextAction(t *testing.T) {
	const d, la = wellknown.DesiredDrainAnnotation, wellknown.LastAppliedDrainAnnotation
	tests := []struct {
		name        string
		annotations map[string]string
		want        Action
		wantErr     bool
	}{
		{name: "no request", want: ActionNone},
		{name: "drain requested", annotations: map[string]string{d: "drain-rendered-worker-abc"}, want: ActionDrain},
		{name: "drain already applied", annotations: map[string]string{d: "drain-rendered-worker-abc", la: "drain-rendered-worker-abc"}, want: ActionNone},
		{name: "uncordon after a drain", annotations: map[string]string{d: "uncordon-rendered-worker-abc", la: "drain-rendered-worker-abc"}, want: ActionUncordon},
		{name: "new drain after an uncordon", annotations: map[string]string{d: "drain-rendered-worker-def", la: "uncordon-rendered-worker-abc"}, want: ActionDrain},
		{name: "verb only", annotations: map[string]string{d: "drain"}, want: ActionDrain},
		{name: "unknown verb", annotations: map[string]string{d: "reboot-rendered-worker-abc"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, desired, err := NextAction(nodeWith(tc.annotations))
			assert.Equal(t, tc.wantErr, err != nil, "error: %v", err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.annotations[d], desired)
		})
	}
}

func TestRetryAfterAndStuck(t *testing.T) {
	o := DefaultOptions()
	tests := []struct {
		name       string
		failingFor time.Duration
		wantRetry  time.Duration
		wantStuck  bool
	}{
		{name: "first failure", failingFor: 0, wantRetry: time.Minute},
		{name: "9 minutes", failingFor: 9 * time.Minute, wantRetry: time.Minute},
		{name: "10 minutes: slower", failingFor: 10 * time.Minute, wantRetry: 5 * time.Minute},
		{name: "59 minutes", failingFor: 59 * time.Minute, wantRetry: 5 * time.Minute},
		{name: "an hour: reported, still retried", failingFor: time.Hour, wantRetry: 5 * time.Minute, wantStuck: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.wantRetry, o.RetryAfter(tc.failingFor))
			assert.Equal(t, tc.wantStuck, o.IsStuck(tc.failingFor))
		})
	}
	custom := Options{StuckAfter: time.Second}.withDefaults()
	assert.Equal(t, time.Second, custom.StuckAfter, "set values are kept")
	assert.Equal(t, 90*time.Second, custom.AttemptTimeout, "zero values take the defaults")
	assert.Equal(t, 5, custom.MaxConcurrentDrains)
}
