package local

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/textlogger"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagemode/imagemode/daemon/simnode"
	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/rollout"
)

// BenchmarkScaleRollout rolls a layered image and then a file change (disruption policy None) out across
// simulated nodes of the layered-image pool with maxUnavailable 10%, on the real API server, the nodes'
// daemons all in this process on directory hosts, the controllers in a child process (so that their CPU
// time and peak memory are theirs alone). For each rollout it reports the wall time against the ideal —
// waves (ceil(nodes / maxUnavailable)) × the mean time one node took from being targeted to Done, measured in
// the same run —, the daemons' and the controllers' API writes per node, the controllers' CPU seconds, their
// peak RSS and the API server's request count.
//
//	IMAGEMODE_SCALE_NODES=100,200 go test -run X -bench ScaleRollout -benchtime 1x -timeout 60m ./local/
//
// The node counts default to 100 and 200. IMAGEMODE_TEST_LOGS=2 prints the daemons' steps;
// IMAGEMODE_SCALE_STATE_DIR keeps the state (and the controllers' log) there.
func BenchmarkScaleRollout(b *testing.B) {
	counts := []int{100, 200}
	if v := os.Getenv("IMAGEMODE_SCALE_NODES"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("IMAGEMODE_SCALE_NODES=%q: want node counts separated by commas", v)
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				scaleRollout(b, n)
			}
		})
	}
}

// scalePhase is what one rollout measured.
type scalePhase struct {
	name                  string
	wall, ideal, meanNode time.Duration
	lead                  time.Duration // from the change to the first node targeted
	waves                 int
	nodeWrites            int64 // by the daemons
	ctrlWrites            float64
	passes                float64       // of the rollout controller
	passMean, queueMean   time.Duration // a rollout pass's mean time, and a key's mean wait in the queue
	ctrlCPU               float64       // seconds
	apiRequests           float64       // all requests the API server served (every client)
	apiWrites             float64
}

func scaleRollout(b *testing.B, nodes int) {
	b.StopTimer()
	if os.Getenv("IMAGEMODE_TEST_LOGS") == "2" {
		// The daemons' steps (V(1)) too: set before the control plane sets the quieter one.
		ctrllog.SetLogger(textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(1), textlogger.Output(os.Stderr))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	dir := b.TempDir()
	if keep := os.Getenv("IMAGEMODE_SCALE_STATE_DIR"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("nodes-%d", nodes)) // kept: the controllers' log is controllers.log
	}
	env, err := New(Options{StateDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer func() {
		stopWatch() // the API server waits for open watches when it stops
		if err := env.Stop(); err != nil {
			b.Errorf("stopping: %v", err)
		}
	}()
	for _, step := range []func(context.Context) error{env.StartControlPlane, env.StartRegistry, env.PushBaseImage, env.CreateClusterObjects} {
		if err := step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	c := env.ControlPlane.Client
	pool := &mcfgv1.MachineConfigPool{}
	if err := c.Get(ctx, client.ObjectKey{Name: LayeredPool}, pool); err != nil {
		b.Fatal(err)
	}
	patch := client.MergeFrom(pool.DeepCopy())
	pool.Spec.MaxUnavailable = ptrTo(intstr.FromString("10%"))
	if err := c.Patch(ctx, pool, patch); err != nil {
		b.Fatal(err)
	}
	metricsAddr := freeAddr(b)
	ctrlProc, err := env.StartControllersProcess(ctx, metricsAddr)
	if err != nil {
		b.Fatal(err)
	}
	if err := env.WaitPoolsRendered(ctx, 2*time.Minute); err != nil {
		b.Fatal(err)
	}

	// The daemons' client counts their writes.
	var nodeWrites atomic.Int64
	nodeCfg := rest.CopyConfig(env.ControlPlane.Config)
	nodeCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countWrites{rt, &nodeWrites} })
	ca, err := os.ReadFile(filepath.Join(env.Registry.CertDir, "ca.crt"))
	if err != nil {
		b.Fatal(err)
	}
	logger := logr.Discard()
	if os.Getenv("IMAGEMODE_TEST_LOGS") != "" {
		logger = textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(1), textlogger.Output(os.Stderr)))
	}
	started := time.Now()
	sem := make(chan struct{}, 4)
	var mu sync.Mutex
	var startErr error
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("scale-%03d", i)
			n, err := simnode.Start(ctx, nodeCfg, c, simnode.Options{
				Name: name, Dir: filepath.Join(env.opts.StateDir, "nodes", name),
				Labels: map[string]string{NodeRoleLabelPrefix + wellknown.WorkerPool: "", NodeRoleLabelPrefix + LayeredPool: "",
					"kubernetes.io/os": "linux"},
				BaseImage: env.BaseImage, AuthJSON: env.Registry.DockerConfigJSON(),
				CAs:    map[string][]byte{strings.Replace(env.Registry.Host, ":", "..", 1): ca},
				Logger: logger,
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				startErr = err
				return
			}
			env.Nodes = append(env.Nodes, n)
		}()
	}
	wg.Wait()
	if startErr != nil {
		b.Fatal(startErr)
	}
	b.Logf("%d nodes started in %s", nodes, time.Since(started).Round(time.Millisecond))

	cs := kubernetes.NewForConfigOrDie(env.ControlPlane.Config)
	tr := newNodeTracker(watchCtx, b, cs)
	if err := c.Get(ctx, client.ObjectKey{Name: LayeredPool}, pool); err != nil {
		b.Fatal(err)
	}
	cfg1 := pool.Spec.Configuration.Name
	tr.waitAll(ctx, nodes, func(n *corev1.Node) bool { return true }, doneOnConfig(cfg1), "Done on the first config")
	maxUnavailable, err := rollout.MaxUnavailable(pool, nodes)
	if err != nil {
		b.Fatal(err)
	}
	waves := (nodes + maxUnavailable - 1) / maxUnavailable

	measure := func(name string, change func() time.Time, targeted, done func(*corev1.Node) bool) scalePhase {
		ph := scalePhase{name: name, waves: waves}
		// The counters start when the change is made (for the image: when the build has succeeded, so
		// that the build's own work is not counted; the rollout starts at most one poll earlier).
		trigger := change()
		w0, ctrl0, cpu0 := nodeWrites.Load(), ctrlCountersNow(ctx, b, metricsAddr), procCPU(b, ctrlProc.Pid)
		api0, apiW0 := apiRequests(ctx, b, cs)
		b.StartTimer()
		starts, ends := tr.waitAll(ctx, nodes, targeted, done, name)
		b.StopTimer()
		firstStart := tr.firstStart(starts)
		first, last := minTime(trigger, firstStart), trigger
		var sum time.Duration
		for n, s := range starts {
			last = maxTime(last, ends[n])
			sum += ends[n].Sub(s)
		}
		ph.meanNode = sum / time.Duration(len(starts))
		ph.wall, ph.lead = last.Sub(first), max(0, firstStart.Sub(trigger))
		ph.ideal = time.Duration(waves) * ph.meanNode
		ph.nodeWrites = nodeWrites.Load() - w0
		ctrl1 := ctrlCountersNow(ctx, b, metricsAddr)
		ph.ctrlWrites = ctrl1.writes - ctrl0.writes
		ph.passes = ctrl1.passes - ctrl0.passes
		if ph.passes > 0 {
			ph.passMean = time.Duration((ctrl1.passSeconds - ctrl0.passSeconds) / ph.passes * float64(time.Second))
			ph.queueMean = time.Duration((ctrl1.queueSeconds - ctrl0.queueSeconds) / ph.passes * float64(time.Second))
		}
		ph.ctrlCPU = procCPU(b, ctrlProc.Pid) - cpu0
		api1, apiW1 := apiRequests(ctx, b, cs)
		ph.apiRequests, ph.apiWrites = api1-api0, apiW1-apiW0
		return ph
	}

	var image string
	imagePhase := measure("image", func() time.Time {
		raw, err := examples.Doc(examples.MachineOSConfigLayeredImage)
		if err != nil {
			b.Fatal(err)
		}
		raw = []byte(strings.ReplaceAll(string(raw), DocsRegistryHostname+":"+DocsRegistryPort, env.Registry.Host))
		if out, err := env.ControlPlane.Kubectl(ctx, raw, "apply", "-f", "-"); err != nil {
			b.Fatalf("applying the MachineOSConfig: %v\n%s", err, out)
		}
		buildStart := time.Now()
		if image, err = env.followBuild(ctx, io.Discard, ""); err != nil {
			b.Fatal(err)
		}
		b.Logf("build: %s", time.Since(buildStart).Round(time.Millisecond))
		return time.Now()
	}, func(n *corev1.Node) bool {
		return image != "" && n.Annotations[wellknown.DesiredImageAnnotation] == image
	}, func(n *corev1.Node) bool {
		a := n.Annotations
		return image != "" && a[wellknown.CurrentImageAnnotation] == image && doneOnConfig(a[wellknown.DesiredConfigAnnotation])(n)
	})

	var cfg2 string
	filePhase := measure("file", func() time.Time {
		mc := &mcfgv1.MachineConfig{
			ObjectMeta: metav1.ObjectMeta{Name: "50-layered-image-scale", Labels: map[string]string{RoleLabel: LayeredPool}},
		}
		mc.Spec.Config.Raw = []byte(`{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/nmstate/openshift/scale.yml","mode":420,"contents":{"source":"data:,scale%0A"}}]}}`)
		if err := c.Create(ctx, mc); err != nil {
			b.Fatal(err)
		}
		return time.Now()
	}, func(n *corev1.Node) bool {
		d := n.Annotations[wellknown.DesiredConfigAnnotation]
		if d != cfg1 && d != "" && cfg2 == "" {
			cfg2 = d
		}
		return cfg2 != "" && d == cfg2
	}, func(n *corev1.Node) bool {
		return cfg2 != "" && doneOnConfig(cfg2)(n) && n.Annotations[wellknown.CurrentImageAnnotation] == image
	})

	for _, n := range env.Nodes {
		if err := n.Err(); err != nil {
			b.Errorf("node %s: %v", n.Name(), err)
		}
	}
	peak := procPeakRSS(b, ctrlProc.Pid)
	b.Logf("nodes %d, maxUnavailable %d, waves %d; controllers peak RSS %.0f MiB", nodes, maxUnavailable, waves, peak/(1<<20))
	for _, ph := range []scalePhase{imagePhase, filePhase} {
		ratio := ph.wall.Seconds() / ph.ideal.Seconds()
		b.Logf("%-5s wall %s, ideal %s (%d waves × %s mean per node), ratio %.2f, first node targeted %s after the change; "+
			"API writes per node: daemons %.1f, controllers %.1f; controllers CPU %.1f s; API server requests %.0f (writes %.0f); "+
			"%.0f rollout passes of %s (queue wait %s) on average",
			ph.name, ph.wall.Round(time.Millisecond), ph.ideal.Round(time.Millisecond), ph.waves, ph.meanNode.Round(time.Millisecond), ratio,
			ph.lead.Round(time.Millisecond), float64(ph.nodeWrites)/float64(nodes), ph.ctrlWrites/float64(nodes), ph.ctrlCPU,
			ph.apiRequests, ph.apiWrites, ph.passes, ph.passMean.Round(time.Microsecond), ph.queueMean.Round(time.Microsecond))
		b.ReportMetric(ratio, ph.name+"-wall/ideal")
		b.ReportMetric(ph.wall.Seconds(), ph.name+"-wall-s")
		b.ReportMetric(float64(ph.nodeWrites)/float64(nodes), ph.name+"-daemon-writes/node")
		b.ReportMetric(ph.ctrlWrites/float64(nodes), ph.name+"-ctrl-writes/node")
		b.ReportMetric(ph.ctrlCPU, ph.name+"-ctrl-cpu-s")
		b.ReportMetric(ph.apiRequests, ph.name+"-apiserver-requests")
	}
	b.ReportMetric(peak/(1<<20), "ctrl-peak-MiB")
}

func ptrTo[T any](v T) *T { return &v }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// doneOnConfig: the node is Done on config, its drain finished and uncordoned.
func doneOnConfig(config string) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		a := n.Annotations
		return config != "" && a[wellknown.CurrentConfigAnnotation] == config && a[wellknown.DesiredConfigAnnotation] == config &&
			a[wellknown.StateAnnotation] == wellknown.NodeStateDone && !n.Spec.Unschedulable
	}
}

// countWrites counts the requests that are not reads.
type countWrites struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.n.Add(1)
	}
	return c.rt.RoundTrip(r)
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// metricSum sums the samples of metric in a Prometheus text exposition whose labels satisfy keep.
func metricSum(text []byte, metric string, keep func(labels string) bool) float64 {
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		if end < 0 {
			continue
		}
		if !keep(line[len(metric)+1 : end]) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64); err == nil {
			sum += v
		}
	}
	return sum
}

func isWriteVerb(labels string) bool {
	for _, v := range []string{"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"} {
		if strings.Contains(labels, `"`+v+`"`) {
			return true
		}
	}
	return false
}

// ctrlMetrics scrapes the controllers process's metrics.
func ctrlMetrics(ctx context.Context, b *testing.B, addr string) []byte {
	var text []byte
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		text, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		b.Fatalf("scraping the controllers' metrics: %v", err)
	}
	return text
}

// ctrlCounters are the controllers' write requests so far (client-go's rest_client_requests_total) and
// the rollout controller's passes: how many, their total time and the total time keys waited in its queue.
type ctrlCounters struct {
	writes, passes, passSeconds, queueSeconds float64
}

func ctrlCountersNow(ctx context.Context, b *testing.B, addr string) ctrlCounters {
	text := ctrlMetrics(ctx, b, addr)
	rollout := func(l string) bool {
		return strings.Contains(l, `controller="rollout"`) || strings.Contains(l, `name="rollout"`)
	}
	return ctrlCounters{
		writes:       metricSum(text, "rest_client_requests_total", isWriteVerb),
		passes:       metricSum(text, "controller_runtime_reconcile_time_seconds_count", rollout),
		passSeconds:  metricSum(text, "controller_runtime_reconcile_time_seconds_sum", rollout),
		queueSeconds: metricSum(text, "workqueue_queue_duration_seconds_sum", rollout),
	}
}

// apiRequests is the API server's request count so far (apiserver_request_total), all and writes.
func apiRequests(ctx context.Context, b *testing.B, cs kubernetes.Interface) (all, writes float64) {
	text, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Fatalf("scraping the API server's metrics: %v", err)
	}
	verb := func(labels string) string {
		i := strings.Index(labels, `verb="`)
		if i < 0 {
			return ""
		}
		rest := labels[i+len(`verb="`):]
		return rest[:strings.Index(rest, `"`)]
	}
	all = metricSum(text, "apiserver_request_total", func(string) bool { return true })
	writes = metricSum(text, "apiserver_request_total", func(l string) bool {
		switch verb(l) {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE", "DELETECOLLECTION":
			return true
		}
		return false
	})
	return all, writes
}

// procCPU is the user+system CPU seconds of process pid so far.
func procCPU(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (in parentheses, possibly with spaces): utime and stime are the 12th
	// and 13th of them.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// procPeakRSS is the peak resident set size of process pid, in bytes (VmHWM).
func procPeakRSS(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return math.NaN()
}

// nodeTracker watches the Nodes and, for the phase waited for, records when each node was first seen
// targeted and when first seen done afterwards.
type nodeTracker struct {
	b  *testing.B
	mu sync.Mutex
	// nodes holds the latest version of every Node seen.
	nodes   map[string]*corev1.Node
	changed chan struct{}
}

func newNodeTracker(ctx context.Context, b *testing.B, cs kubernetes.Interface) *nodeTracker {
	t := &nodeTracker{b: b, nodes: map[string]*corev1.Node{}, changed: make(chan struct{}, 1)}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range list.Items {
		t.nodes[list.Items[i].Name] = &list.Items[i]
	}
	rv := list.ResourceVersion
	go func() {
		for ctx.Err() == nil {
			w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				n, ok := ev.Object.(*corev1.Node)
				if !ok {
					continue
				}
				rv = n.ResourceVersion
				if ev.Type == watch.Bookmark {
					continue
				}
				t.mu.Lock()
				if ev.Type == watch.Deleted {
					delete(t.nodes, n.Name)
				} else {
					t.nodes[n.Name] = n
				}
				t.mu.Unlock()
				select {
				case t.changed <- struct{}{}:
				default:
				}
			}
		}
	}()
	return t
}

// waitAll waits until count simulated nodes are done (each having been seen targeted before), and returns
// when each was first seen targeted and then done.
func (t *nodeTracker) waitAll(ctx context.Context, count int, targeted, done func(*corev1.Node) bool, what string) (starts, ends map[string]time.Time) {
	starts, ends = map[string]time.Time{}, map[string]time.Time{}
	check := func() bool {
		now := time.Now()
		t.mu.Lock()
		defer t.mu.Unlock()
		for name, n := range t.nodes {
			if !strings.HasPrefix(name, "scale-") {
				continue
			}
			if _, ok := starts[name]; !ok && targeted(n) {
				starts[name] = now
			}
			if _, ok := starts[name]; ok {
				if _, ok := ends[name]; !ok && done(n) {
					ends[name] = now
				}
			}
		}
		return len(ends) >= count
	}
	deadline := time.After(20 * time.Minute)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !check() {
		select {
		case <-t.changed:
		case <-tick.C:
		case <-deadline:
			t.b.Fatalf("%s: %d of %d nodes after 20 minutes", what, len(ends), count)
		case <-ctx.Done():
			t.b.Fatalf("%s: %v", what, ctx.Err())
		}
	}
	return starts, ends
}

func (t *nodeTracker) firstStart(starts map[string]time.Time) time.Time {
	var all []time.Time
	for _, s := range starts {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Before(all[j]) })
	return all[0]
}
