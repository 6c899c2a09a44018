package machineos

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

const (
	taggedBase = "registry.example.com/rhcos:4.19"
	digestV1   = "registry.example.com/rhcos@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digestV2   = "registry.example.com/rhcos@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// TestBuildNameBaseImage: a tag's digest is part of the name (a moved tag gives a new name, moving it back
// the old one); an osImageURL pinned by digest keeps the name it had before base images were tracked.
func TestBuildNameBaseImage(t *testing.T) {
	mosc, pool, rendered := fixture()
	rendered.Spec.OSImageURL = taggedBase
	n := func(base string) string {
		name, err := BuildName(mosc, pool, rendered, base)
		require.NoError(t, err)
		return name
	}
	v1, v2 := n(digestV1), n(digestV2)
	assert.NotEqual(t, v1, v2, "a moved tag gives a new build")
	assert.Equal(t, v1, n(digestV1), "moving the tag back gives the old build")
	assert.NotEqual(t, n(""), v1)
	_, err := BuildName(mosc, pool, rendered, taggedBase)
	assert.ErrorContains(t, err, "not pinned by digest")

	rendered.Spec.OSImageURL = digestV1
	assert.Equal(t, n(""), n(digestV1), "a pinned osImageURL: nothing to add")
}

func TestDecideBaseImage(t *testing.T) {
	mosc, pool, _ := fixture()
	rendered := renderedMC(pool.Spec.Configuration.Name, taggedBase, `{}`)
	rendered.Annotations = map[string]string{wellknown.ReleaseImageVersionAnnotation: "4.19.0"}
	nameFor := func(base string) string {
		n, err := BuildName(mosc, pool, rendered, base)
		require.NoError(t, err)
		return n
	}
	built := func(base string) *mcfgv1.MachineOSBuild {
		b := build(nameFor(base), osbuild.StateSucceeded, mosc, rendered.Name)
		b.Annotations[BaseImageAnnotation] = base
		return b
	}
	current := func(b *mcfgv1.MachineOSBuild) *mcfgv1.MachineOSConfig {
		m := mosc.DeepCopy()
		m.Annotations = map[string]string{wellknown.CurrentMachineOSBuildAnnotation: b.Name}
		return m
	}
	v1 := built(digestV1)
	filesOnly := renderedMC("rendered-layered-image-files", taggedBase, `{"files":1}`)
	filesOnly.Annotations = rendered.Annotations
	poolFiles := pool.DeepCopy()
	poolFiles.Spec.Configuration.Name = filesOnly.Name

	tests := []struct {
		name       string
		in         ConfigInputs
		wantAction Action
		wantBuild  string
		wantBase   string
		wantCond   metav1.ConditionStatus
		wantReason string
	}{
		{name: "first build records the resolved base", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered, BaseImage: digestV1},
			wantAction: ActionCreate, wantBuild: nameFor(digestV1), wantBase: digestV1, wantCond: metav1.ConditionTrue, wantReason: ReasonBuildPending},
		{name: "same digest: the build stands", in: ConfigInputs{MOSC: current(v1), Pool: pool, Rendered: rendered, BaseImage: digestV1,
			Builds: []*mcfgv1.MachineOSBuild{v1}, CurrentRendered: rendered},
			wantBuild: v1.Name, wantBase: digestV1, wantCond: metav1.ConditionTrue, wantReason: ReasonBuilt},
		{name: "tag moved: a new build", in: ConfigInputs{MOSC: current(v1), Pool: pool, Rendered: rendered, BaseImage: digestV2,
			Builds: []*mcfgv1.MachineOSBuild{v1}, CurrentRendered: rendered},
			wantAction: ActionCreate, wantBuild: nameFor(digestV2), wantBase: digestV2, wantCond: metav1.ConditionTrue, wantReason: ReasonBuildPending},
		{name: "tag moved back: the earlier build is adopted", in: ConfigInputs{MOSC: current(built(digestV2)), Pool: pool, Rendered: rendered, BaseImage: digestV1,
			Builds: []*mcfgv1.MachineOSBuild{v1, built(digestV2)}, CurrentRendered: rendered},
			wantBuild: v1.Name, wantBase: digestV1, wantCond: metav1.ConditionTrue, wantReason: ReasonBuilt},
		{name: "registry error keeps the current build", in: ConfigInputs{MOSC: current(v1), Pool: pool, Rendered: rendered, BaseImageError: "connection refused",
			Builds: []*mcfgv1.MachineOSBuild{v1}, CurrentRendered: rendered},
			wantBuild: v1.Name, wantBase: digestV1, wantCond: metav1.ConditionFalse, wantReason: ReasonBuilt},
		{name: "registry error on the first build: wait, no build", in: ConfigInputs{MOSC: mosc, Pool: pool, Rendered: rendered, BaseImageError: "connection refused"},
			wantCond: metav1.ConditionFalse, wantReason: ReasonBaseImageUnavailable},
		{name: "files-only change with the same base reuses the image", in: ConfigInputs{MOSC: current(v1), Pool: poolFiles, Rendered: filesOnly, BaseImage: digestV1,
			Builds: []*mcfgv1.MachineOSBuild{v1}, CurrentRendered: rendered},
			wantAction: ActionReuse, wantBase: digestV1, wantCond: metav1.ConditionTrue, wantReason: ReasonBuilt},
		{name: "files-only change while the tag moved builds", in: ConfigInputs{MOSC: current(v1), Pool: poolFiles, Rendered: filesOnly, BaseImage: digestV2,
			Builds: []*mcfgv1.MachineOSBuild{v1}, CurrentRendered: rendered},
			wantAction: ActionCreate, wantBase: digestV2, wantCond: metav1.ConditionTrue, wantReason: ReasonBuildPending},
		{name: "files-only change during a registry error reuses (no evidence of a move)", in: ConfigInputs{MOSC: current(v1), Pool: poolFiles, Rendered: filesOnly,
			BaseImageError: "503", Builds: []*mcfgv1.MachineOSBuild{v1}, CurrentRendered: rendered},
			wantAction: ActionReuse, wantBase: digestV1, wantCond: metav1.ConditionFalse, wantReason: ReasonBuilt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			assert.Equal(t, tc.wantAction, d.Action)
			if tc.wantBuild != "" {
				assert.Equal(t, tc.wantBuild, d.Build)
			}
			assert.Equal(t, tc.wantBase, d.BaseImage)
			assert.Equal(t, ConditionBaseImageResolved, d.BaseImageCondition.Type)
			assert.Equal(t, tc.wantCond, d.BaseImageCondition.Status, d.BaseImageCondition.Message)
			assert.Equal(t, tc.wantReason, d.Ready.Reason, d.Ready.Message)
			if tc.in.BaseImageError != "" {
				assert.Contains(t, d.BaseImageCondition.Message, tc.in.BaseImageError)
			}
		})
	}

	pinned := rendered.DeepCopy()
	pinned.Spec.OSImageURL = digestV1
	d := Decide(ConfigInputs{MOSC: mosc, Pool: pool, Rendered: pinned})
	assert.Equal(t, digestV1, d.BaseImage, "a pinned osImageURL is its own base")
	assert.Equal(t, metav1.ConditionTrue, d.BaseImageCondition.Status)
}

type fakeResolver struct {
	mu    sync.Mutex
	calls int
	image string
	err   error
}

func (f *fakeResolver) ResolveBaseImage(ctx context.Context, _ *mcfgv1.MachineOSConfig, _ string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := ctx.Deadline(); !ok {
		return "", errors.New("no timeout")
	}
	return f.image, f.err
}

// TestBaseImagesCache: the registry is asked once per re-check interval (after a failure, sooner), a
// pinned osImageURL is never resolved, and forcing asks again.
func TestBaseImagesCache(t *testing.T) {
	now := time.Unix(1000, 0)
	f := &fakeResolver{image: digestV1}
	b := &baseImages{resolver: f, recheck: 10 * time.Minute, timeout: time.Second, now: func() time.Time { return now }}
	mosc, _, _ := fixture()
	in := func(url string) *ConfigInputs {
		return &ConfigInputs{MOSC: mosc, Rendered: renderedMC("rendered-x", url, `{}`)}
	}

	c := in(taggedBase)
	failed, again := b.resolve(context.Background(), c, false)
	assert.False(t, failed)
	assert.Equal(t, 10*time.Minute, again)
	assert.Equal(t, digestV1, c.BaseImage)
	now = now.Add(5 * time.Minute)
	f.image = digestV2
	c = in(taggedBase)
	b.resolve(context.Background(), c, false)
	assert.Equal(t, digestV1, c.BaseImage, "cached within the interval")
	assert.Equal(t, 1, f.calls)
	b.resolve(context.Background(), c, true)
	assert.Equal(t, digestV2, c.BaseImage, "forced")
	now = now.Add(10 * time.Minute)
	f.err = errors.New("registry down")
	c = in(taggedBase)
	failed, again = b.resolve(context.Background(), c, false)
	assert.True(t, failed)
	assert.Equal(t, baseImageRetry, again)
	assert.Equal(t, "", c.BaseImage)
	assert.True(t, strings.Contains(c.BaseImageError, "registry down"))
	failed, _ = b.resolve(context.Background(), in(taggedBase), false)
	assert.False(t, failed, "a failure is reported once per attempt")
	assert.Equal(t, 3, f.calls)

	c = in(digestV1)
	_, again = b.resolve(context.Background(), c, false)
	assert.Equal(t, time.Duration(0), again)
	assert.Equal(t, 3, f.calls, "a pinned osImageURL is not resolved")
	b.forget(mosc.Name)
	assert.Empty(t, b.known)
}
