package machineos

import (
	"context"
	"sync"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// Defaults of the base image re-check.
const (
	// DefaultBaseImageRecheck is how often a base image given by tag is resolved again.
	DefaultBaseImageRecheck = 10 * time.Minute
	// DefaultBaseImageTimeout bounds one resolution, so an unreachable registry holds a reconcile briefly.
	DefaultBaseImageTimeout = 20 * time.Second
	// baseImageRetry is how soon a failed resolution is tried again (at most the re-check interval).
	baseImageRetry = 30 * time.Second
)

// baseImages resolves base images and remembers the answers for a while: the MachineOSConfig controller
// reconciles on every build event, but asks the registry only once per re-check interval (and once per
// retry interval after a failure).
type baseImages struct {
	resolver BaseImageResolver
	recheck  time.Duration
	timeout  time.Duration
	now      func() time.Time

	mu    sync.Mutex
	known map[string]resolvedBase
}

type resolvedBase struct {
	image, err string
	at         time.Time
}

// retry is how long after a failure the next attempt is due.
func (b *baseImages) retry() time.Duration {
	return min(b.recheck, baseImageRetry)
}

// resolve fills in.BaseImage or in.BaseImageError for the rendered config's osImageURL, when it is a tag.
// It returns whether an attempt was made now and failed (to be reported), and when to look again (0: no
// need).
func (b *baseImages) resolve(ctx context.Context, in *ConfigInputs, force bool) (failedNow bool, again time.Duration) {
	if b == nil || b.resolver == nil || in.Rendered == nil || in.Rendered.Spec.OSImageURL == "" || IsDigested(in.Rendered.Spec.OSImageURL) {
		return false, 0
	}
	url := in.Rendered.Spec.OSImageURL
	key := in.MOSC.Name + "\x00" + url + "\x00" + basePullSecretName(in.MOSC)
	now := b.now()
	b.mu.Lock()
	prev, ok := b.known[key]
	b.mu.Unlock()
	// A little slack: the requeue that asks again fires at, not after, the interval's end.
	fresh := ok && ((prev.err == "" && now.Sub(prev.at) < b.recheck*9/10) || (prev.err != "" && now.Sub(prev.at) < b.retry()*9/10))
	if !fresh || force {
		rctx, cancel := context.WithTimeout(ctx, b.timeout)
		image, err := b.resolver.ResolveBaseImage(rctx, in.MOSC, url)
		cancel()
		prev = resolvedBase{image: image, at: now}
		if err != nil {
			prev = resolvedBase{err: err.Error(), at: now}
			failedNow = true
		}
		b.mu.Lock()
		if b.known == nil {
			b.known = map[string]resolvedBase{}
		}
		b.known[key] = prev
		b.mu.Unlock()
	}
	in.BaseImage, in.BaseImageError = prev.image, prev.err
	if prev.err != "" {
		return failedNow, b.retry()
	}
	return false, b.recheck
}

// forget drops what is known about a MachineOSConfig's base images (it was deleted).
func (b *baseImages) forget(mosc string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.known {
		if len(k) > len(mosc) && k[:len(mosc)+1] == mosc+"\x00" {
			delete(b.known, k)
		}
	}
}

// reportBaseImage emits a warning when resolving the base image failed just now.
func (r *ConfigReconciler) reportBaseImage(mosc *mcfgv1.MachineOSConfig, in ConfigInputs, failedNow bool) {
	if failedNow {
		r.Recorder.Eventf(mosc, nil, corev1.EventTypeWarning, ReasonBaseImageUnavailable, "ResolveBaseImage",
			"Cannot resolve the base image %s (nothing is rebuilt until it resolves): %s", in.Rendered.Spec.OSImageURL, in.BaseImageError)
	}
}

// rebuildRequested: a requested rebuild resolves the base image afresh.
func rebuildRequested(mosc *mcfgv1.MachineOSConfig) bool {
	_, ok := mosc.Annotations[wellknown.RebuildAnnotation]
	return ok
}
