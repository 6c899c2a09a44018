package machineos_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/layering"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/testimages"
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
//
// BENCH_BASE_MB=N (default 0: the few-MB busybox base) gives the base OS image a second layer of N MiB of
// incompressible files (testimages.Options.PayloadMB), pushed and named by digest in the ControllerConfig
// before anything is timed, so cold builds pay for pulling a base of realistic weight (RHCOS is 1–2 GB)
// as they do on a cluster; the size is reported as base-MB.
//
// Measured 2026-11-23 on the shared 2-core dev machine (other agents running; seconds, one line per run;
// the base is ~5 MB plus base-MB MiB; raw w/c is raw buildah's own warm/cold, the floor for the service's):
//
//	base-MB  raw cold  raw warm  svc cold  svc warm  svc/raw cold  svc/raw warm  svc w/c  raw w/c
//	   0       3.74      2.19      5.54      2.83       1.48          1.29        0.51     0.59
//	   0       4.62      1.99      4.22      2.92       0.91          1.47        0.69     0.43
//	   0       3.78      1.70      4.17      2.34       1.10          1.38        0.56     0.45
//	 256       5.23      1.86      6.86      2.83       1.31          1.52        0.41     0.36
//	 256       5.22      1.90      5.60      2.10       1.07          1.11        0.37     0.36
//	 512      11.85      3.54     12.36      3.14       1.04          0.89        0.25     0.30
//	 512       7.75      2.71      7.62      2.86       0.98          1.06        0.38     0.35
//	1024      20.08      2.83     20.47      3.25       1.02          1.15        0.16     0.14
//	1024      17.38      2.89     18.53      4.21       1.07          1.46        0.23     0.17
//
// With a base of realistic weight the cold build is the base pull (the 1 GiB cold build pod: 17.9 s
// building, 0.3 s pushing, the base layer being in the registry already), which the warm build skips:
// warm/cold falls to 0.16–0.23 at 1 GiB (target ≤ 0.33), and cold service/raw to 0.98–1.07 from 512 MiB
// up (target ≤ 1.10). Warm builds stay 2–4 s whatever the base size, so warm service/raw (0.89–1.52) is
// the fixed overhead of Job, pod and status over a ~2 s build, and the noisiest number here.
func BenchmarkBuildService(b *testing.B) {
	baseMB := 0
	if v := os.Getenv("BENCH_BASE_MB"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, "BENCH_BASE_MB")
		baseMB = n
	}
	for i := 0; i < b.N; i++ {
		benchOnce(b, i, baseMB)
	}
}

func benchOnce(b *testing.B, iter, baseMB int) {
	b.StopTimer()
	e, ctx := startEnv(b)
	if baseMB > 0 {
		useHeavyBase(ctx, b, e, baseMB)
	}
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
	start = time.Now()
	// The controllers may still be writing the MachineOSConfig's annotations after the build succeeded.
	require.NoError(b, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest := &mcfgv1.MachineOSConfig{}
		if err := e.c.Get(ctx, types.NamespacedName{Name: mosc.Name}, latest); err != nil {
			return err
		}
		latest.Spec.Containerfile[0].Content = containerfile("two")
		return e.c.Update(ctx, latest)
	}))
	second := waitServiceBuild(ctx, b, e, first)
	svcWarm := time.Since(start)
	b.StopTimer()
	fmt.Printf("cold build %s:\n%s%s", first, tr.timeline(first, coldStart), buildLog(ctx, e, first))
	fmt.Printf("warm build %s:\n%s%s", second, tr.timeline(second, start), buildLog(ctx, e, second))

	b.ReportMetric(float64(baseMB), "base-MB")
	b.ReportMetric(rawCold.Seconds(), "raw-cold-s")
	b.ReportMetric(rawWarm.Seconds(), "raw-warm-s")
	b.ReportMetric(svcCold.Seconds(), "service-cold-s")
	b.ReportMetric(svcWarm.Seconds(), "service-warm-s")
	b.ReportMetric(svcCold.Seconds()/rawCold.Seconds(), "service/raw-cold")
	b.ReportMetric(svcWarm.Seconds()/rawWarm.Seconds(), "service/raw-warm")
	b.ReportMetric(svcWarm.Seconds()/svcCold.Seconds(), "warm/cold")
	b.Logf("iteration %d, base +%d MB: raw %s cold, %s warm; service %s cold, %s warm", iter, baseMB, rawCold, rawWarm, svcCold, svcWarm)
}

// useHeavyBase pushes a base image carrying mb MiB of payload and points the ControllerConfig at it by
// digest, then waits for pool layered-image's rendered config to name it (nothing builds yet: no
// MachineOSConfig exists).
func useHeavyBase(ctx context.Context, b *testing.B, e *env, mb int) {
	start := time.Now()
	base, err := testimages.Push(ctx, e.reg.SystemContext(), testimages.Options{PayloadMB: mb}, e.reg.Ref("openshift/rhcos", fmt.Sprintf(":payload-%d", mb)))
	require.NoError(b, err)
	cc := &mcfgv1.ControllerConfig{}
	require.NoError(b, e.c.Get(ctx, types.NamespacedName{Name: wellknown.ControllerConfigName}, cc))
	cc.Spec.BaseOSContainerImage = base
	require.NoError(b, e.c.Update(ctx, cc))
	p := &mcfgv1.MachineConfigPool{}
	for i := 0; ; i++ {
		require.NoError(b, waitRendered(ctx, e, "layered-image", p))
		r := &mcfgv1.MachineConfig{}
		require.NoError(b, e.c.Get(ctx, types.NamespacedName{Name: p.Spec.Configuration.Name}, r))
		if r.Spec.OSImageURL == base {
			break
		}
		require.Less(b, i, 600, "pool layered-image never rendered with base %s", base)
		time.Sleep(100 * time.Millisecond)
	}
	e.base = base
	b.Logf("base image +%d MB %s ready in %s (untimed)", mb, base, time.Since(start).Round(time.Millisecond))
}

// waitServiceBuild waits for a succeeded build of pool layered-image other than not and returns its name.
func waitServiceBuild(ctx context.Context, b *testing.B, e *env, not string) string {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		var list mcfgv1.MachineOSBuildList
		require.NoError(b, e.c.List(ctx, &list))
		for _, m := range list.Items {
			s := osbuild.StateOf(&m)
			if m.Name != not && s == osbuild.StateSucceeded {
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
	// The pod writes its whole log when it exits, a moment after the build succeeded (untimed here).
	for i := 0; ; i++ {
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: wellknown.MCONamespace, Name: osbuild.BuildLogCMName(build)}, cm); err != nil {
			return "  (no build log: " + err.Error() + ")\n"
		}
		if cm.Annotations[osbuild.BuildLogCompleteAnnotation] == "true" || i == 100 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var b strings.Builder
	for _, l := range strings.Split(cm.Data[osbuild.BuildLogKey], "\n") {
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
