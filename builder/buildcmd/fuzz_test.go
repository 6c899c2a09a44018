package buildcmd

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzLogWriterTail writes fuzzed chunks into a LogWriter with a small bound and checks the kept tail after
// every compaction: it is exactly the end of everything written, starting at the recorded offset, within
// the bound, and valid UTF-8 whenever what was written is.
func FuzzLogWriterTail(f *testing.F) {
	f.Add([]byte("step 1/3: FROM configs\nstep 2/3: RUN dnf install -y cowsay\nstep 3/3: COMMIT\n"), uint8(16), uint8(7))
	f.Add([]byte("ééééééééééééééééééééé no newline at all, only runes ééééé"), uint8(5), uint8(3))
	f.Add([]byte("\n\n\n\n\n\n\n\n"), uint8(1), uint8(1))
	f.Add([]byte{0xff, 0xfe, 'a', '\n', 0xc3}, uint8(2), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, maxBytes, chunk uint8) {
		max := int(maxBytes%64) + 1
		step := int(chunk%32) + 1
		w := NewLogWriter(nil, LogOptions{MaxBytes: max})
		var all []byte
		for len(data) > 0 {
			n := min(step, len(data))
			if got, err := w.Write(data[:n]); got != n || err != nil {
				t.Fatalf("Write = %d, %v", got, err)
			}
			all = append(all, data[:n]...)
			data = data[n:]
			w.compact()
			if w.offset+int64(len(w.buf)) != int64(len(all)) {
				t.Fatalf("offset %d + kept %d != written %d", w.offset, len(w.buf), len(all))
			}
			if !bytes.Equal(w.buf, all[w.offset:]) {
				t.Fatalf("kept %q is not the tail of %q from %d", w.buf, all, w.offset)
			}
			if len(w.buf) > max {
				t.Fatalf("kept %d bytes, bound %d", len(w.buf), max)
			}
			if utf8.Valid(all) && !utf8.Valid(w.buf) {
				t.Fatalf("the tail of valid UTF-8 is not: %q", w.buf)
			}
		}
	})
}
