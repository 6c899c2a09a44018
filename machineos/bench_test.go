package machineos_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/layering"
	"github.com/imagemode/imagemode/machineos"
)

// BenchmarkBuildService times, in one run on the same machine and registry:
//
//	(a) a raw in-process buildah build and push of the composed Containerfile (what a build costs by itself);
//	(b) the service: MachineOSConfig change → MachineOSBuild Succeeded (Job, pod runner, build pod, push,
//	    digest ConfigMap, status);
//
// each cold (empty image store) and warm (a second build whose user Containerfile changes its last step,
// with the store kept: the service's layer cache is the build pods' hostPath store). It reports
// service/raw (target ≤ 1.10) and warm/cold of the service (target ≤ 0.33). One iteration is a full
// sequence; use -benchtime 1x. It prints each service build's timeline (MachineOSBuild, Job, pod and digest
// ConfigMap as a watcher saw them) and the build pod's own timed lines (its whole log with
// BENCH_FULL_LOG=1).
func BenchmarkBuildService(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchOnce(b, i)
	}
}

func benchOnce(b *testing.B, iter int) {
	b.StopTimer()
	e, ctx := startEnv(b)
	containerfile := func(step string) string {
		return "FROM configs AS final\nRUN dnf install -y cowsay && dnf clean all && ostree container commit\nRUN echo " + step + " > /etc/bench-step\n"
	}

	// (a) raw builds of the Containerfile the service would compose for the same pool.
	p := &mcfgv1.MachineConfigPool{}
	require.NoError(b, waitRendered(ctx, e, "layered-image", p))
	rendered := &mcfgv1.MachineConfig{}
	require.NoError(b, e.c.Get(ctx, types.NamespacedName{Name: p.Spec.Configuration.Name}, rendered))
	store, err := buildah.OpenStore(buildah.StoreOptions{Root: filepath.Join(b.TempDir(), "raw-store")})
	require.NoError(b, err)
	defer buildah.CloseStore(store)
	raw := func(step string) time.Duration {
		mosc := docsMOSC(e.reg.Ref("bench/raw", ":latest"), containerfile(step))
		bc, err := layering.Compose(layering.Inputs{Rendered: rendered, MachineOSConfig: mosc})
		require.NoError(b, err)
		dir := filepath.Join(b.TempDir(), "ctx-"+step)
		require.NoError(b, bc.WriteDir(dir))
		start := time.Now()
		id, err := buildah.Build(ctx, store, buildah.BuildOptions{ContextDir: dir, Containerfile: layering.ContainerfileName,
			Tag: "localhost/bench:" + step, SystemContext: e.reg.SystemContext(), Layers: true})
		require.NoError(b, err)
		_, err = buildah.Push(ctx, store, id, e.reg.Ref("bench/raw", ":"+step), e.reg.SystemContext(), nil)
		require.NoError(b, err)
		return time.Since(start)
	}
	rawCold, rawWarm := raw("one"), raw("two")

	// (b) the service, cold then warm.
	wc, err := client.NewWithWatch(e.cp.Config, client.Options{Scheme: e.cp.Scheme})
	require.NoError(b, err)
	tr, err := startTracer(ctx, wc)
	require.NoError(b, err)
	defer tr.stop()
	mosc := docsMOSC(e.reg.Ref("bench/service", ":latest"), containerfile("one"))
	b.StartTimer()
	start := time.Now()
	require.NoError(b, e.c.Create(ctx, mosc))
	first := waitServiceBuild(ctx, b, e, "")
	svcCold := time.Since(start)
	coldStart := start
	latest := &mcfgv1.MachineOSConfig{}
	require.NoError(b, e.c.Get(ctx, types.NamespacedName{Name: mosc.Name}, latest))
	latest.Spec.Containerfile[0].Content = containerfile("two")
	start = time.Now()
	require.NoError(b, e.c.Update(ctx, latest))
	second := waitServiceBuild(ctx, b, e, first)
	svcWarm := time.Since(start)
	b.StopTimer()
	fmt.Printf("cold build %s:\n%s%s", first, tr.timeline(first, coldStart), buildLog(ctx, e, first))
	fmt.Printf("warm build %s:\n%s%s", second, tr.timeline(second, start), buildLog(ctx, e, second))

	b.ReportMetric(rawCold.Seconds(), "raw-cold-s")
	b.ReportMetric(rawWarm.Seconds(), "raw-warm-s")
	b.ReportMetric(svcCold.Seconds(), "service-cold-s")
	b.ReportMetric(svcWarm.Seconds(), "service-warm-s")
	b.ReportMetric(svcCold.Seconds()/rawCold.Seconds(), "service/raw-cold")
	b.ReportMetric(svcWarm.Seconds()/rawWarm.Seconds(), "service/raw-warm")
	b.ReportMetric(svcWarm.Seconds()/svcCold.Seconds(), "warm/cold")
	b.Logf("iteration %d: raw %s cold, %s warm; service %s cold, %s warm", iter, rawCold, rawWarm, svcCold, svcWarm)
}

// waitServiceBuild waits for a succeeded build of pool layered-image other than not and returns its name.
func waitServiceBuild(ctx context.Context, b *testing.B, e *env, not string) string {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		var list mcfgv1.MachineOSBuildList
		require.NoError(b, e.c.List(ctx, &list))
		for _, m := range list.Items {
			s := machineos.StateOf(&m)
			if m.Name != not && s == machineos.StateSucceeded {
				return m.Name
			}
			if m.Name != not && s.IsTerminal() {
				b.Fatalf("build %s ended %s", m.Name, s)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("no build succeeded in 5 minutes")
	return ""
}

// buildLog is the build pod's own log of a build (its timings), indented.
func buildLog(ctx context.Context, e *env, build string) string {
	cm := &corev1.ConfigMap{}
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: jobs.BuildLogCMName(build)}, cm); err != nil {
		return "  (no build log: " + err.Error() + ")\n"
	}
	var b strings.Builder
	for _, l := range strings.Split(cm.Data[jobs.BuildLogKey], "\n") {
		if l != "" && (os.Getenv("BENCH_FULL_LOG") != "" || l[0] >= '0' && l[0] <= '9') { // the builder's timed lines
			b.WriteString("    pod: " + l + "\n")
		}
	}
	return b.String()
}

func waitRendered(ctx context.Context, e *env, pool string, p *mcfgv1.MachineConfigPool) error {
	for i := 0; i < 300; i++ {
		if err := e.c.Get(ctx, types.NamespacedName{Name: pool}, p); err != nil {
			return err
		}
		if p.Spec.Configuration.Name != "" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pool %s never rendered", pool)
}
