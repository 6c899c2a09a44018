// Package leakcheck fails a test package whose tests leave goroutines running (go.uber.org/goleak), with
// the one list of long-lived library goroutines that are not leaks: started once per process by a
// library's init or first use, they outlive every test by design. A goroutine of a cache, watch, manager,
// runner or host a test started is not on the list: a test that leaves one running must stop it.
package leakcheck

import (
	"testing"

	"go.uber.org/goleak"
)

// processGoroutines are started once per process by libraries and never stop, or stay behind in a
// library after its owner was stopped properly.
var processGoroutines = []goleak.Option{
	// klog's flush daemon, started by klog's init.
	goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	// controller-runtime wraps metadata-only informers' watches in watch.Filter, whose goroutine blocks
	// forever on sending an event it received just before the reflector stopped reading
	// (kubernetes/kubernetes#113254): one may remain after a manager stopped cleanly.
	goleak.IgnoreTopFunction("k8s.io/apimachinery/pkg/watch.(*filteredWatch).loop"),
	// controller-runtime's priority queue hands a ready item to a waiting worker with a bare channel send
	// (priorityqueue.go, handleReadyItems): when the worker stopped waiting because its controller shut
	// down, that send blocks forever; seen once after a clean manager stop.
	goleak.IgnoreTopFunction("sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue.(*priorityqueue[...]).handleReadyItems.func1.1"),
}

// Options returns the options VerifyTestMain uses, for a package that needs to add its own.
func Options(extra ...goleak.Option) []goleak.Option {
	return append(append([]goleak.Option{}, processGoroutines...), extra...)
}

// VerifyTestMain runs the tests and then fails (exit code 1, listing the goroutines) if any goroutine
// outside Options is still running. Call it from TestMain instead of os.Exit(m.Run()).
func VerifyTestMain(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, Options(extra...)...)
}
