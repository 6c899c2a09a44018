package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// syncBuffer is a bytes.Buffer safe for the line's redraw goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPlainOutputIsOneLinePerChange(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{})
	l.Set("build layered-abc: Prepared")
	l.Set("build layered-abc: Prepared")
	l.Set("build layered-abc: Building")
	l.Done("build layered-abc: Succeeded")
	l.Set("ignored after Done")
	l.Done("ignored too")
	assert.Equal(t, "build layered-abc: Prepared\nbuild layered-abc: Building\nbuild layered-abc: Succeeded\n", out.String())
	assert.NotContains(t, out.String(), "\x1b")
}

func TestTerminalOutputUpdatesOneLine(t *testing.T) {
	var out syncBuffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := New(&out, Options{Terminal: true, Now: clock, Interval: 5 * time.Millisecond})
	l.Set("build layered-abc: Building")
	mu.Lock()
	now = now.Add(42 * time.Second)
	mu.Unlock()
	assert.Eventually(t, func() bool { return strings.Contains(out.String(), "build layered-abc: Building (42s)") }, 5*time.Second, 5*time.Millisecond)
	l.Done("build layered-abc: Succeeded")
	s := out.String()
	assert.True(t, strings.HasSuffix(s, "\r\x1b[Kbuild layered-abc: Succeeded (42s)\n"), "%q", s)
	assert.Equal(t, 1, strings.Count(s, "\n"), "a single line, redrawn in place")
}
