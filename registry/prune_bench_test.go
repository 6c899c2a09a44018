package registry

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagemode/imagemode/registry/localregistry"
)

// pruneImages is how many stale images each benchmark round deletes.
const pruneImages = 500

// BenchmarkPrune deletes pruneImages distinct images (distinct manifests sharing their blobs) from the
// local TLS+htpasswd registry, one by one and with bounded concurrency, in the same run. It reports the
// wall time per round (ns/op), images per second and HTTP requests per image, counted through the
// SystemContext's DockerProxy hook, which containers/image's transport consults once per request.
//
//	go test -run '^$' -bench Prune -benchtime 3x ./registry/
func BenchmarkPrune(b *testing.B) {
	reg := localregistry.StartForTest(b)
	seed := newSeeder(b, reg, "os/stale")
	round := 0
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var requests atomic.Int64
			sys := reg.SystemContext()
			sys.DockerProxy = func(*url.URL) (*url.URL, error) {
				requests.Add(1)
				return nil, nil // no proxy: direct connection
			}
			var deleted int
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				round++
				images := seed.push(b, fmt.Sprintf("r%d", round), pruneImages)
				requests.Store(0)
				b.StartTimer()
				start := time.Now()
				errs := Deleter{}.DeleteAll(context.Background(), sys, images, workers)
				elapsed += time.Since(start)
				b.StopTimer()
				if len(errs) > 0 {
					for ps, err := range errs {
						b.Fatalf("deleting %s: %v (and %d more)", ps, err, len(errs)-1)
					}
				}
				if ok, err := Exists(context.Background(), reg.SystemContext(), images[pruneImages/2]); err != nil || ok {
					b.Fatalf("image still there after prune: exists=%v err=%v", ok, err)
				}
				deleted += len(images)
				b.ReportMetric(float64(requests.Load())/float64(len(images)), "requests/image")
				b.StartTimer()
			}
			b.ReportMetric(float64(workers), "workers")
			b.ReportMetric(float64(deleted)/elapsed.Seconds(), "images/s")
		})
	}
}
