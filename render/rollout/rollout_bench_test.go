package rollout

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/imagemode/imagemode/internal/wellknown"
)

const (
	benchNodes     = 5000
	benchOldConfig = "rendered-worker-0001"
	benchNewConfig = "rendered-worker-0002"
)

// benchCluster is a 5,000-node worker pool (maxUnavailable 10%) in three zones, with a MachineConfigNode per
// node, every node on benchOldConfig except: targeted nodes (desired new, working) and completed ones.
func benchCluster(targeted, completed int) []client.Object {
	pool := workerPool(benchNewConfig)
	pool.Spec.MaxUnavailable = new(intstr.FromString("10%"))
	pool.Status.Configuration.Name = benchOldConfig
	objs := []client.Object{pool}
	for i := 0; i < benchNodes; i++ {
		n := testNode(fmt.Sprintf("worker-%04d", i), workerRole(), inZone(fmt.Sprintf("zone-%c", 'a'+i%3)),
			createdAt(time.Duration(i)*time.Second))
		desired := benchOldConfig
		switch {
		case i < completed:
			desired = benchNewConfig
			for k, v := range map[string]string{wellknown.CurrentConfigAnnotation: benchNewConfig, wellknown.DesiredConfigAnnotation: benchNewConfig, wellknown.StateAnnotation: wellknown.NodeStateDone} {
				n.Annotations[k] = v
			}
		case i < completed+targeted:
			desired = benchNewConfig
			withConfigs(benchOldConfig, benchNewConfig, wellknown.NodeStateWorking)(n)
		default:
			on(benchOldConfig)(n)
			tainted()(n)
		}
		n.Status.Images = []corev1.ContainerImage{{Names: []string{"quay.io/openshift/some-image@sha256:0123456789"}, SizeBytes: 1 << 30}}
		objs = append(objs, n, &mcfgv1.MachineConfigNode{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name},
			Spec: mcfgv1.MachineConfigNodeSpec{
				Node: mcfgv1.MCOObjectReference{Name: n.Name}, Pool: mcfgv1.MCOObjectReference{Name: "worker"},
				ConfigVersion: mcfgv1.MachineConfigNodeSpecMachineConfigVersion{Desired: desired},
			},
		})
	}
	return objs
}

// memClient is the benchmark's in-memory API: reads behave like controller-runtime's informer cache (List
// deep-copies unless client.UnsafeDisableDeepCopy is passed), writes build their patch (the controller's
// share of the cost), store the object and count. controller-runtime's fake client is not used: each of its
// patches rebuilds a REST mapper from the scheme (about 10 ms), which would measure only that.
type memClient struct {
	client.Client // nil: methods the rollout does not use panic
	objs          map[string]client.Object
	rv            int
	nodes, mcns   int
	status, other int
}

func newMemClient(objs []client.Object) *memClient {
	m := &memClient{objs: map[string]client.Object{}}
	for _, o := range objs {
		m.rv++
		o.SetResourceVersion(fmt.Sprint(m.rv))
		m.objs[memKey(o)] = o
	}
	return m
}

func memKey(o client.Object) string { return fmt.Sprintf("%T/%s", o, o.GetName()) }

func (m *memClient) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	stored, ok := m.objs[fmt.Sprintf("%T/%s", obj, key.Name)]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(stored.DeepCopyObject()).Elem())
	return nil
}

func (m *memClient) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := &client.ListOptions{}
	lo.ApplyOptions(opts)
	copyOf := func(o client.Object) client.Object {
		if lo.UnsafeDisableDeepCopy != nil && *lo.UnsafeDisableDeepCopy {
			return o
		}
		return o.DeepCopyObject().(client.Object)
	}
	items := reflect.ValueOf(list).Elem().FieldByName("Items")
	elem := items.Type().Elem()
	out := reflect.MakeSlice(items.Type(), 0, 0)
	for _, o := range m.objs {
		if reflect.TypeOf(o).Elem() == elem {
			out = reflect.Append(out, reflect.ValueOf(copyOf(o)).Elem())
		}
	}
	items.Set(out)
	return nil
}

func (m *memClient) write(obj client.Object) {
	m.rv++
	obj.SetResourceVersion(fmt.Sprint(m.rv))
	m.objs[memKey(obj)] = obj.DeepCopyObject().(client.Object)
	switch obj.(type) {
	case *corev1.Node:
		m.nodes++
	case *mcfgv1.MachineConfigNode:
		m.mcns++
	default:
		m.other++
	}
}

func (m *memClient) Patch(_ context.Context, obj client.Object, patch client.Patch, _ ...client.PatchOption) error {
	if _, err := patch.Data(obj); err != nil {
		return err
	}
	m.write(obj)
	return nil
}

func (m *memClient) Create(_ context.Context, obj client.Object, _ ...client.CreateOption) error {
	m.write(obj)
	return nil
}

func (m *memClient) Status() client.SubResourceWriter { return memStatus{m} }

type memStatus struct{ m *memClient }

func (s memStatus) Create(context.Context, client.Object, client.Object, ...client.SubResourceCreateOption) error {
	return nil
}

func (s memStatus) Update(_ context.Context, obj client.Object, _ ...client.SubResourceUpdateOption) error {
	s.m.write(obj)
	s.m.other--
	s.m.status++
	return nil
}

func (s memStatus) Patch(ctx context.Context, obj client.Object, _ client.Patch, opts ...client.SubResourcePatchOption) error {
	return s.Update(ctx, obj)
}

func (s memStatus) Apply(context.Context, runtime.ApplyConfiguration, ...client.SubResourceApplyOption) error {
	return nil
}

// BenchmarkReconcile5000 runs one reconcile pass over a 5,000-node pool (maxUnavailable 10% = 500) held in
// memory (memClient), and reports the time per pass relative to a baseline measured in the same run (one
// List of the 5,000 nodes from the same client, deep-copied as a cache List is) and the API writes per pass
// by kind.
// Scenarios: first (nothing targeted yet: 500 nodes newly targeted), mid (500 targeted, 20 of them just
// finished: 20 newly targeted) and steady (nothing changed since the last pass: no write).
func BenchmarkReconcile5000(b *testing.B) {
	scenarios := []struct {
		name                string
		targeted, completed int
		wantTargeted        int64
	}{
		{name: "first", wantTargeted: 500},
		{name: "mid", targeted: 480, completed: 20, wantTargeted: 20},
		{name: "steady", targeted: 500, wantTargeted: 0},
	}
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			objs := benchCluster(sc.targeted, sc.completed)
			ctx := context.Background()
			var baseline, pass time.Duration
			var m *memClient
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fresh := make([]client.Object, len(objs))
				for j, o := range objs {
					fresh[j] = o.DeepCopyObject().(client.Object)
				}
				m = newMemClient(fresh)
				r := &Reconciler{Client: m, Recorder: &events.FakeRecorder{}, Clock: clock.RealClock{}}
				req := reconcile.Request{NamespacedName: types.NamespacedName{Name: "worker"}}
				if sc.name == "steady" {
					// The pass before: it writes the status; the measured pass sees nothing new.
					if _, err := r.Reconcile(ctx, req); err != nil {
						b.Fatal(err)
					}
					m.nodes, m.mcns, m.status, m.other = 0, 0, 0, 0
				}
				var nodes corev1.NodeList
				start := time.Now()
				if err := m.List(ctx, &nodes); err != nil {
					b.Fatal(err)
				}
				baseline += time.Since(start)
				b.StartTimer()
				start = time.Now()
				if _, err := r.Reconcile(ctx, req); err != nil {
					b.Fatal(err)
				}
				pass += time.Since(start)
			}
			n := float64(b.N)
			b.ReportMetric(float64(pass.Microseconds())/n/1000, "ms/pass")
			b.ReportMetric(float64(baseline.Microseconds())/n/1000, "ms/list-baseline")
			b.ReportMetric(float64(pass)/float64(baseline), "x-list-baseline")
			b.ReportMetric(float64(m.nodes), "node-writes/pass")
			b.ReportMetric(float64(m.mcns), "mcn-writes/pass")
			b.ReportMetric(float64(m.status+m.other), "other-writes/pass")
			if int64(m.nodes) != sc.wantTargeted {
				b.Errorf("node writes %d, want %d (newly targeted)", m.nodes, sc.wantTargeted)
			}
		})
	}
}

// BenchmarkDecide5000 is the pure decision of the first pass alone (no client): 500 of 5,000 nodes targeted.
func BenchmarkDecide5000(b *testing.B) {
	objs := benchCluster(0, 0)
	in := Inputs{Pool: objs[0].(*mcfgv1.MachineConfigPool), MachineConfigNodes: map[string]*mcfgv1.MachineConfigNode{}, Now: metav1.Now()}
	for _, o := range objs[1:] {
		switch v := o.(type) {
		case *corev1.Node:
			in.Nodes = append(in.Nodes, v)
		case *mcfgv1.MachineConfigNode:
			in.MachineConfigNodes[v.Name] = v
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := Decide(in)
		if len(d.Targeted()) != 500 {
			b.Fatalf("targeted %d", len(d.Targeted()))
		}
	}
}
