package simnode_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
	"github.com/imagemode/imagemode/builder/buildah/buildahtest"
	"github.com/imagemode/imagemode/daemon/simnode"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/local"
)

// brokenCheck fails, with output, on a host holding /etc/imagemode/broken.
const brokenCheck = `if [ -e /etc/imagemode/broken ]; then echo "broken: $(cat /etc/imagemode/broken)"; exit 1; fi`

// TestProgressiveRollout is the docs' canary story done with one RolloutPolicy, on simulated nodes (real
// hosts' daemons, the render, rollout and drain controllers, a real API server): 2 canary nodes, then 50 %,
// then the rest, each wave starting only once the previous one passed its gates (node Ready,
// MachineConfigNode Updated, the daemon's health check run on the host) and soaked. Then a change whose
// health check fails on the canary: the rollout pauses after the canary and no other node changes; with
// onFailure Rollback the canary nodes go back to the previous config in one reboot each. The controllers are
// restarted while the canary soaks.
func TestProgressiveRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	env, restart := startRestartableRenderEnv(t, ctx)
	c := env.ControlPlane.Client
	const pool = "web"
	ownPool(t, ctx, c, pool)
	var nodes []*simnode.Node
	for i := 0; i < 6; i++ {
		nodes = append(nodes, startNodeSpec(t, ctx, env, nodeSpec{name: fmt.Sprintf("web-%d", i), pools: []string{pool}, delete: true}))
	}
	first := poolTarget(t, ctx, c, pool, "")
	for _, n := range nodes {
		waitNode(t, ctx, c, n, "the first config", doneOn(first))
	}
	canary := []string{"web-4", "web-5"}
	policy := &rolloutsv1.RolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web-rollout"},
		Spec: rolloutsv1.RolloutPolicySpec{
			MachineConfigPool: rolloutsv1.PoolReference{Name: pool},
			Waves: []rolloutsv1.Wave{
				{Name: "canary", Nodes: canary, MaxUnavailable: ptr.To(intstr.FromInt32(2)), SoakTime: &metav1.Duration{Duration: 3 * time.Second}},
				{Name: "half", Count: ptr.To(intstr.FromString("50%")), MaxUnavailable: ptr.To(intstr.FromString("100%"))},
				{Name: "rest"},
			},
			HealthChecks: rolloutsv1.HealthChecks{Commands: []rolloutsv1.HealthCommand{{Name: "not-broken", Command: brokenCheck}}},
		},
	}
	if err := c.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, ctx, c, policy.Name, "the policy to see the pool at rest", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Phase == rolloutsv1.RolloutCompleted && p.Status.Target.Config == first
	})

	// A good change: wave by wave.
	seen := watchTargeted(ctx, t, c, pool)
	changed := time.Now()
	if err := c.Create(ctx, roleConfig("50-web-good", pool, filesIgn(map[string]string{"/etc/imagemode/good": "yes\n"}, ""))); err != nil {
		t.Fatal(err)
	}
	good := poolTarget(t, ctx, c, pool, first)
	seen.target(good)
	// A controller restart once the canary is healthy (soaking, or past it on a loaded machine): the rollout
	// keeps its place (the status is its memory).
	soaking := waitPolicy(t, ctx, c, policy.Name, "the canary healthy", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Target.Config == good && len(p.Status.Waves) > 0 && p.Status.Waves[0].HealthyAt != nil
	})
	restart()
	st := waitPolicy(t, ctx, c, policy.Name, "the good change rolled out", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Phase == rolloutsv1.RolloutCompleted && p.Status.Target.Config == good
	}).Status
	for _, n := range nodes {
		waitNode(t, ctx, c, n, "the good config", doneOn(good))
	}
	firstSeen := seen.stop()
	t.Logf("3-wave rollout of a rebooting change over 6 nodes (canary soak 3s, a controller restart): %s from the MachineConfig to every wave done",
		time.Since(changed).Round(100*time.Millisecond))
	for _, w := range st.Waves {
		if w.StartedAt != nil && w.CompletedAt != nil {
			t.Logf("  wave %s (%d nodes): %s", w.Name, w.Size, w.CompletedAt.Sub(w.StartedAt.Time))
		}
	}
	if got := waveSizes(st); !slices.Equal(got, []int32{2, 3, 1}) {
		t.Fatalf("wave sizes %v, want canary 2, half 3 (50 %% of 6), rest 1", got)
	}
	waveOf := map[string]int32{}
	for _, ns := range st.Nodes {
		waveOf[ns.Name] = ns.Wave
		if ns.Phase != rolloutsv1.NodeDone {
			t.Errorf("node %s: phase %s, want Done", ns.Name, ns.Phase)
		}
	}
	for _, name := range canary {
		if waveOf[name] != 0 {
			t.Errorf("%s is in wave %d, want the canary", name, waveOf[name])
		}
	}
	for name, at := range firstSeen {
		w := waveOf[name]
		if w == 0 {
			continue
		}
		prev := st.Waves[w-1]
		if prev.CompletedAt == nil || at.Before(prev.CompletedAt.Time) {
			t.Errorf("%s (wave %s) was targeted at %s, before wave %s completed (%v)", name, st.Waves[w].Name,
				at.Format(time.RFC3339Nano), prev.Name, prev.CompletedAt)
		}
	}
	if w := st.Waves[0]; w.HealthyAt == nil || w.CompletedAt.Sub(w.HealthyAt.Time) < 3*time.Second {
		t.Errorf("the canary did not soak 3s: healthy %v, completed %v", w.HealthyAt, w.CompletedAt)
	} else if !w.HealthyAt.Equal(soaking.Status.Waves[0].HealthyAt) || !w.StartedAt.Equal(soaking.Status.Waves[0].StartedAt) {
		t.Errorf("the restart lost the canary's place: started %v healthy %v, before the restart %v %v",
			w.StartedAt, w.HealthyAt, soaking.Status.Waves[0].StartedAt, soaking.Status.Waves[0].HealthyAt)
	}
	for _, n := range nodes {
		node := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: n.Name()}, node); err != nil {
			t.Fatal(err)
		}
		var r rolloutsv1.HealthReport
		if err := json.Unmarshal([]byte(node.Annotations[rolloutsv1.HealthReportAnnotation]), &r); err != nil || !r.Passed || r.Config != good {
			t.Errorf("node %s: health report %q, want passed on %s", n.Name(), node.Annotations[rolloutsv1.HealthReportAnnotation], good)
		}
	}

	// A change whose health check fails on the canary: paused after the canary, nobody else moves.
	reboots := map[string]int{}
	for _, n := range nodes {
		reboots[n.Name()] = n.Reboots()
	}
	if err := c.Create(ctx, roleConfig("51-web-broken", pool, filesIgn(map[string]string{"/etc/imagemode/broken": "on-purpose\n"}, ""))); err != nil {
		t.Fatal(err)
	}
	broken := poolTarget(t, ctx, c, pool, good)
	failed := waitPolicy(t, ctx, c, policy.Name, "the failed gate", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Target.Config == broken && p.Status.Phase == rolloutsv1.RolloutFailed
	})
	g := failed.Status.FailedGate
	if g == nil || g.Gate != rolloutsv1.GateHealthCheck || g.Check != "not-broken" || !slices.Contains(canary, g.Node) ||
		!strings.Contains(g.Output, "broken: on-purpose") {
		t.Fatalf("failed gate %+v, want the not-broken health check on a canary node with its output", g)
	}
	time.Sleep(3 * time.Second) // time enough for a wrong controller to move another node
	for _, n := range nodes {
		node := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: n.Name()}, node); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(canary, n.Name()) {
			continue
		}
		if d := node.Annotations[wellknown.DesiredConfigAnnotation]; d != good || n.Reboots() != reboots[n.Name()] {
			t.Errorf("%s changed while the rollout is paused: desired %s, reboots %d → %d", n.Name(), d, reboots[n.Name()], n.Reboots())
		}
	}
	if p := getPolicy(t, ctx, c, policy.Name); p.Status.Phase != rolloutsv1.RolloutFailed || !strings.Contains(p.Status.Message, "paused") {
		t.Errorf("phase %s (%s), want Failed and paused", p.Status.Phase, p.Status.Message)
	}
	wantEvent(t, ctx, c, policy.Name, "GateFailed", "broken: on-purpose")

	// Rollback: the canary goes back to the good config, in one reboot each (once the canary nodes in
	// flight have finished their update to the broken config, as a paused rollout lets them).
	for _, n := range nodes {
		if slices.Contains(canary, n.Name()) {
			waitNode(t, ctx, c, n, "the broken config", doneOn(broken))
		}
		reboots[n.Name()] = n.Reboots()
	}
	p := getPolicy(t, ctx, c, policy.Name)
	p.Spec.OnFailure = rolloutsv1.FailureRollback
	if err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	back := waitPolicy(t, ctx, c, policy.Name, "the canary rolled back", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Phase == rolloutsv1.RolloutRolledBack && strings.HasSuffix(p.Status.Message, "rolled back")
	})
	for _, ns := range back.Status.Nodes {
		if slices.Contains(canary, ns.Name) && ns.Phase != rolloutsv1.NodeRolledBack {
			t.Errorf("%s: phase %s, want RolledBack", ns.Name, ns.Phase)
		}
	}
	for _, n := range nodes {
		node := waitNode(t, ctx, c, n, "the good config", doneOn(good))
		if d := node.Annotations[wellknown.DesiredConfigAnnotation]; d != good {
			t.Errorf("%s: desired %s, want %s", n.Name(), d, good)
		}
		want := reboots[n.Name()]
		if slices.Contains(canary, n.Name()) {
			want++
			if got := hostFile(n, "/etc/imagemode/broken"); got != "<absent>" {
				t.Errorf("%s still holds /etc/imagemode/broken (%q)", n.Name(), got)
			}
		}
		if got := n.Reboots(); got != want {
			t.Errorf("%s rebooted %d times during the rollback, want %d", n.Name(), got-reboots[n.Name()], want-reboots[n.Name()])
		}
	}
	wantEvent(t, ctx, c, policy.Name, "RolledBack", "")

	// The way on: revert the bad change. The pool renders the good config again; every node is on it, so
	// the waves pass at once and nobody reboots.
	for _, n := range nodes {
		reboots[n.Name()] = n.Reboots()
	}
	if err := c.Delete(ctx, roleConfig("51-web-broken", pool, "")); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, ctx, c, policy.Name, "the revert completed", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Target.Config == good && p.Status.Phase == rolloutsv1.RolloutCompleted
	})
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		mcp := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, client.ObjectKey{Name: pool}, mcp); err != nil {
			return false, err
		}
		return mcp.Status.Configuration.Name == good && mcp.Status.UpdatedMachineCount == 6, nil
	})
	if err != nil {
		t.Fatalf("pool %s never reported its 6 nodes updated on %s: %v", pool, good, err)
	}
	for _, n := range nodes {
		if n.Reboots() != reboots[n.Name()] {
			t.Errorf("%s rebooted for the revert", n.Name())
		}
	}

	t.Run("LayeredRollback", func(t *testing.T) { testLayeredRollback(t, ctx, env) })
}

func getPolicy(t *testing.T, ctx context.Context, c client.Client, name string) *rolloutsv1.RolloutPolicy {
	t.Helper()
	p := &rolloutsv1.RolloutPolicy{}
	if err := c.Get(ctx, types.NamespacedName{Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitPolicy(t *testing.T, ctx context.Context, c client.Client, name, what string, cond func(*rolloutsv1.RolloutPolicy) bool) *rolloutsv1.RolloutPolicy {
	t.Helper()
	p := &rolloutsv1.RolloutPolicy{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, types.NamespacedName{Name: name}, p); err != nil {
			return false, err
		}
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("RolloutPolicy %s: waiting for %s: %v\nstatus: %+v", name, what, err, p.Status)
	}
	return p
}

func waveSizes(st rolloutsv1.RolloutPolicyStatus) []int32 {
	var out []int32
	for _, w := range st.Waves {
		out = append(out, w.Size)
	}
	return out
}

func wantEvent(t *testing.T, ctx context.Context, c client.Client, name, reason, substr string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := c.List(ctx, &list); err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "RolloutPolicy" && e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, substr) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no %s event on RolloutPolicy %s (with %q): %v", reason, name, substr, err)
	}
}

// targetWatch records when each of a pool's nodes was first seen targeting a config.
type targetWatch struct {
	mu     sync.Mutex
	config string
	first  map[string]time.Time
	done   chan struct{}
	cancel context.CancelFunc
}

func watchTargeted(ctx context.Context, t *testing.T, c client.Client, pool string) *targetWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &targetWatch{first: map[string]time.Time{}, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			var list corev1.NodeList
			if err := c.List(ctx, &list, client.MatchingLabels{local.NodeRoleLabelPrefix + pool: ""}); err == nil {
				now := time.Now()
				w.mu.Lock()
				for _, n := range list.Items {
					if _, ok := w.first[n.Name]; !ok && w.config != "" && n.Annotations[wellknown.DesiredConfigAnnotation] == w.config {
						w.first[n.Name] = now
					}
				}
				w.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *targetWatch) target(config string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.config = config
}

func (w *targetWatch) stop() map[string]time.Time {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// testLayeredRollback: the layered-image pool under a RolloutPolicy (canary 1 node, then the rest; health
// check: the image must not carry /usr/share/imagemode-bad; onFailure Rollback). A good image rolls out
// wave by wave; a bad image fails the check on the canary after its reboot: the canary is back on the good
// image in one reboot, the other nodes never leave it.
func testLayeredRollback(t *testing.T, ctx context.Context, env *local.Env) {
	c := env.ControlPlane.Client
	const pool = "layered-image"
	var nodes []*simnode.Node
	for i := 0; i < 3; i++ {
		nodes = append(nodes, startNodeSpec(t, ctx, env, nodeSpec{name: fmt.Sprintf("layered-%d", i), pools: []string{"worker", pool}, delete: true}))
	}
	cfg := poolTarget(t, ctx, c, pool, "")
	for _, n := range nodes {
		waitNode(t, ctx, c, n, "the first config", doneOn(cfg))
	}
	policy := &rolloutsv1.RolloutPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "layered-rollout"},
		Spec: rolloutsv1.RolloutPolicySpec{
			MachineConfigPool: rolloutsv1.PoolReference{Name: pool},
			Waves:             []rolloutsv1.Wave{{Name: "canary", Count: ptr.To(intstr.FromInt32(1))}, {Name: "rest", MaxUnavailable: ptr.To(intstr.FromString("100%"))}},
			HealthChecks: rolloutsv1.HealthChecks{Commands: []rolloutsv1.HealthCommand{{Name: "image-not-bad",
				Command: `if [ -e /usr/share/imagemode-bad ]; then echo "bad image: $(cat /usr/share/imagemode-bad)"; exit 1; fi`}}},
			OnFailure: rolloutsv1.FailureRollback,
		},
	}
	if err := c.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	mosc := &mcfgv1.MachineOSConfig{
		ObjectMeta: metav1.ObjectMeta{Name: pool},
		Spec: mcfgv1.MachineOSConfigSpec{
			MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: pool},
			ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
			RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: local.PushSecretName},
			RenderedImagePushSpec:   mcfgv1.ImageTagFormat(env.Registry.Ref("os/layered", ":latest")),
		},
	}
	if err := c.Create(ctx, mosc); err != nil {
		t.Fatal(err)
	}
	goodImage := buildLayeredImage(ctx, t, env)
	publishBuild(ctx, t, c, mosc, "layered-image-good", cfg, goodImage)
	waitPolicy(t, ctx, c, policy.Name, "the good image rolled out", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Target.Image == goodImage && p.Status.Phase == rolloutsv1.RolloutCompleted
	})
	reboots := map[string]int{}
	for _, n := range nodes {
		waitNode(t, ctx, c, n, "the good image", func(node *corev1.Node) bool {
			return doneOn(cfg)(node) && node.Annotations[wellknown.CurrentImageAnnotation] == goodImage
		})
		reboots[n.Name()] = n.Reboots()
	}

	badImage := buildahtest.BuildAndPush(ctx, t, env.Registry.SystemContext(),
		"FROM "+goodImage+"\nRUN echo broken > /usr/share/imagemode-bad && ostree container commit\n", env.Registry.Ref("os/layered", ":v2"))
	publishBuild(ctx, t, c, mosc, "layered-image-bad", cfg, badImage)
	back := waitPolicy(t, ctx, c, policy.Name, "the canary rolled back", func(p *rolloutsv1.RolloutPolicy) bool {
		return p.Status.Target.Image == badImage && p.Status.Phase == rolloutsv1.RolloutRolledBack &&
			strings.HasSuffix(p.Status.Message, "rolled back")
	})
	g := back.Status.FailedGate
	if g == nil || g.Gate != rolloutsv1.GateHealthCheck || !strings.Contains(g.Output, "bad image: broken") {
		t.Fatalf("failed gate %+v, want the image-not-bad check with its output", g)
	}
	for _, n := range nodes {
		node := waitNode(t, ctx, c, n, "the good image", func(node *corev1.Node) bool {
			return doneOn(cfg)(node) && node.Annotations[wellknown.CurrentImageAnnotation] == goodImage
		})
		want := reboots[n.Name()]
		if n.Name() == g.Node {
			want += 2 // into the bad image, and back
		} else if node.Annotations[wellknown.DesiredImageAnnotation] != goodImage {
			t.Errorf("%s: desired image %s while the rollout failed", n.Name(), node.Annotations[wellknown.DesiredImageAnnotation])
		}
		if got := n.Reboots(); got != want {
			t.Errorf("%s rebooted %d times for the bad image, want %d", n.Name(), got-reboots[n.Name()], want-reboots[n.Name()])
		}
		st, err := n.Host.OS().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.BootedImage() != goodImage {
			t.Errorf("%s booted %s, want the good image %s", n.Name(), st.BootedImage(), goodImage)
		}
	}
}
