package machineos_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// tracer records when the objects of builds are first seen in each state (as a watcher sees them: a few
// milliseconds after the API server wrote them), to show where a build's time goes.
type tracer struct {
	mu     sync.Mutex
	events map[string]time.Time // "<what>" -> first seen
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startTracer(ctx context.Context, c client.WithWatch) (*tracer, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &tracer{events: map[string]time.Time{}, cancel: cancel}
	lists := []client.ObjectList{&mcfgv1.MachineOSBuildList{}, &batchv1.JobList{}, &corev1.PodList{}, &corev1.ConfigMapList{}}
	for _, l := range lists {
		w, err := c.Watch(ctx, l, client.InNamespace(""))
		if err != nil {
			cancel()
			return nil, err
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					if ev.Type == watch.Added || ev.Type == watch.Modified {
						t.observe(ev.Object)
					}
				}
			}
		}()
	}
	return t, nil
}

func (t *tracer) mark(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.events[key]; !ok {
		t.events[key] = time.Now()
	}
}

func (t *tracer) observe(obj any) {
	switch o := obj.(type) {
	case *mcfgv1.MachineOSBuild:
		t.mark(o.Name + " mosb created")
		if s := osbuild.StateOf(o); s != osbuild.StateInitial {
			t.mark(o.Name + " mosb " + string(s))
		}
	case *batchv1.Job:
		b := o.Labels[wellknown.MachineOSBuildLabel]
		t.mark(b + " job created")
		if o.Status.Succeeded > 0 {
			t.mark(b + " job succeeded")
		}
	case *corev1.Pod:
		b := o.Labels[wellknown.MachineOSBuildLabel]
		t.mark(b + " pod created")
		if o.Status.Phase != "" && o.Status.Phase != corev1.PodPending {
			t.mark(b + " pod " + string(o.Status.Phase))
		}
	case *corev1.ConfigMap:
		b := o.Labels[wellknown.MachineOSBuildLabel]
		if strings.HasPrefix(o.Name, "digest-") {
			t.mark(b + " digest configmap")
		}
	}
}

// timeline returns build's events in order, as offsets from start.
func (t *tracer) timeline(build string, start time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	type ev struct {
		what string
		at   time.Duration
	}
	var evs []ev
	for k, at := range t.events {
		if what, ok := strings.CutPrefix(k, build+" "); ok {
			evs = append(evs, ev{what, at.Sub(start)})
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %6dms %s\n", e.at.Milliseconds(), e.what)
	}
	return b.String()
}

func (t *tracer) stop() {
	t.cancel()
	t.wg.Wait()
}
