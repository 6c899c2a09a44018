package buildcmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/imagemode/imagemode/machineos/osbuild"
)

// LogOptions configure a LogWriter.
type LogOptions struct {
	// Namespace and Name of the build-log ConfigMap.
	Namespace, Name string
	// Pod names the attempt (the build pod); recorded in osbuild.BuildLogPodAnnotation.
	Pod string
	// Owner, when set, owns the ConfigMap (the MachineOSBuild), so it goes with the build.
	Owner *metav1.OwnerReference
	// Labels of the ConfigMap.
	Labels map[string]string
	// MaxBytes bounds the kept log (its last bytes); osbuild.BuildLogMaxBytes when zero.
	MaxBytes int
	// Interval is the longest a written line waits before it reaches the ConfigMap; 2 s when zero.
	Interval time.Duration
	// Warnings receives, once, why the ConfigMap cannot be written (the build goes on without it).
	Warnings io.Writer
}

// LogWriter keeps the tail of what is written to it and mirrors it into the build-log ConfigMap: at Start
// (an empty log for a new attempt), at most every Interval while text arrives, and once more at Close with
// osbuild.BuildLogCompleteAnnotation set. Writes never fail and never block on the API server: the log is a
// convenience, a build must not fail because of it.
type LogWriter struct {
	cms corev1client.ConfigMapInterface
	o   LogOptions

	mu      sync.Mutex
	buf     []byte // the kept tail
	offset  int64  // bytes of the attempt's output dropped before buf
	dirty   bool   // buf changed since the last flush
	warned  bool
	stop    chan struct{}
	stopped chan struct{}
}

// NewLogWriter returns a writer for the ConfigMap o.Namespace/o.Name through cms.
func NewLogWriter(cms corev1client.ConfigMapInterface, o LogOptions) *LogWriter {
	if o.MaxBytes <= 0 {
		o.MaxBytes = osbuild.BuildLogMaxBytes
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Warnings == nil {
		o.Warnings = io.Discard
	}
	return &LogWriter{cms: cms, o: o}
}

// Write appends p to the log; it always succeeds.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	// Compact only past twice the bound, so a long build does not copy the tail on every line.
	if len(w.buf) > 2*w.o.MaxBytes {
		w.compact()
	}
	w.dirty = true
	return len(p), nil
}

// compact drops the front of buf beyond MaxBytes.
func (w *LogWriter) compact() {
	if over := len(w.buf) - w.o.MaxBytes; over > 0 {
		cut := tailStart(w.buf, over)
		w.offset += int64(cut)
		w.buf = append(w.buf[:0], w.buf[cut:]...)
	}
}

// tailStart returns where to cut b so that at least min bytes go: at the first line start at or after min
// if one is near (within 4 KiB), else at the first rune start, so the kept text stays valid UTF-8.
func tailStart(b []byte, min int) int {
	for i := min; i < len(b) && i < min+4096; i++ {
		if b[i-1] == '\n' {
			return i
		}
	}
	i := min
	for i < len(b) && !utf8.RuneStart(b[i]) {
		i++
	}
	return i
}

// Start writes the attempt's empty log (replacing a previous attempt's) and starts flushing in the
// background until Close.
func (w *LogWriter) Start(ctx context.Context) {
	w.flush(ctx, false, true)
	w.stop, w.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.stopped)
		t := time.NewTicker(w.o.Interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				w.flush(ctx, false, false)
			}
		}
	}()
}

// Close stops the background flushes and writes the whole kept log, marked complete. It uses its own
// short deadline, so it also works after the build's context was cancelled (SIGTERM).
func (w *LogWriter) Close() error {
	if w.stop != nil {
		close(w.stop)
		<-w.stopped
		w.stop = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return w.flush(ctx, true, true)
}

// flush writes the log to the ConfigMap if it changed (or force).
func (w *LogWriter) flush(ctx context.Context, complete, force bool) error {
	w.mu.Lock()
	if !w.dirty && !force {
		w.mu.Unlock()
		return nil
	}
	w.compact()
	text, offset := string(w.buf), w.offset
	w.dirty = false
	w.mu.Unlock()

	err := w.store(ctx, text, offset, complete)
	if err != nil {
		w.mu.Lock()
		w.dirty = true
		if !w.warned {
			w.warned = true
			fmt.Fprintf(w.o.Warnings, "warning: keeping the build log in configmap %s/%s: %v\n", w.o.Namespace, w.o.Name, err)
		}
		w.mu.Unlock()
	}
	return err
}

func (w *LogWriter) store(ctx context.Context, text string, offset int64, complete bool) error {
	annotations := map[string]string{
		osbuild.BuildLogPodAnnotation:      w.o.Pod,
		osbuild.BuildLogCompleteAnnotation: strconv.FormatBool(complete),
		osbuild.BuildLogOffsetAnnotation:   strconv.FormatInt(offset, 10),
	}
	var owners []metav1.OwnerReference
	if w.o.Owner != nil {
		owners = []metav1.OwnerReference{*w.o.Owner}
	}
	for range 3 {
		cm, err := w.cms.Get(ctx, w.o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: w.o.Name, Namespace: w.o.Namespace, Labels: w.o.Labels,
				Annotations: annotations, OwnerReferences: owners}, Data: map[string]string{osbuild.BuildLogKey: text}}
			_, err = w.cms.Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			return err
		}
		if err != nil {
			return err
		}
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		for k, v := range annotations {
			cm.Annotations[k] = v
		}
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		for k, v := range w.o.Labels {
			cm.Labels[k] = v
		}
		if owners != nil {
			cm.OwnerReferences = owners // a previous build of the same name owned it
		}
		cm.Data = map[string]string{osbuild.BuildLogKey: text}
		cm.BinaryData = nil
		_, err = w.cms.Update(ctx, cm, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("configmap %s/%s kept changing", w.o.Namespace, w.o.Name)
}
