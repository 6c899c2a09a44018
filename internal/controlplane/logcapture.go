package controlplane

import "sync"

// maxCaptured bounds the captured log output; beyond it the oldest half is dropped.
const maxCaptured = 64 << 20

// logCapture keeps the controllers' log output of this process.
type logCapture struct {
	mu      sync.Mutex
	on      bool
	buf     []byte
	dropped int
}

var captured logCapture

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if len(c.buf) > maxCaptured {
		cut := len(c.buf) / 2
		c.dropped += cut
		c.buf = append([]byte(nil), c.buf[cut:]...)
	}
	return len(p), nil
}

func (c *logCapture) enabled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.on
}

// CaptureLogs keeps the log output of every controller of this process (controller-runtime's global
// logger), for CapturedLogs (e.g. to search it for secrets). Call it before the first control plane starts,
// in TestMain: the global logger keeps the first sink it is given.
func CaptureLogs() {
	captured.mu.Lock()
	defer captured.mu.Unlock()
	captured.on = true
}

// CapturedLogs returns the captured log output and how many bytes were dropped to bound it.
func CapturedLogs() (string, int) {
	captured.mu.Lock()
	defer captured.mu.Unlock()
	return string(captured.buf), captured.dropped
}
