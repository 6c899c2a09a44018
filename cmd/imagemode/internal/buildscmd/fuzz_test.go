package buildscmd

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/machineos/osbuild"
)

// logRecorder records what a follower prints: text on out, gap notices on errOut, in order.
type logRecorder struct {
	events []logEvent
}

type logEvent struct {
	gap  bool
	text string
}

type recorderOut struct {
	r   *logRecorder
	gap bool
}

func (o recorderOut) Write(p []byte) (int, error) {
	o.r.events = append(o.r.events, logEvent{gap: o.gap, text: string(p)})
	return len(p), nil
}

func fuzzLogCM(pod, offset, text string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			osbuild.BuildLogPodAnnotation: pod, osbuild.BuildLogOffsetAnnotation: offset,
		}},
		Data: map[string]string{osbuild.BuildLogKey: text},
	}
}

// FuzzFollowLog feeds a follower successive versions of a build-log ConfigMap, as the build pod writes them
// (a window [start, end) of one attempt's output, both ends moving forward), and then arbitrary versions
// with any offset annotation. The consistent versions must print the output exactly once and in order,
// every byte either printed at its position or reported missing; the arbitrary ones must not panic.
func FuzzFollowLog(f *testing.F) {
	f.Add([]byte("line one\nline two\nline three\n"), []byte{0, 9, 0, 18, 9, 27}, "-5", "pod-b", "x")
	f.Add([]byte("abcdefghijklmnopqrstuvwxyz"), []byte{5, 10, 2, 8, 20, 26}, "99999999999999999999", "pod-a", "")
	f.Add([]byte("é€😀"), []byte{0, 1, 1, 3}, "9223372036854775807", "", "tail")
	f.Fuzz(func(t *testing.T, output, windows []byte, badOffset, badPod, badText string) {
		rec := &logRecorder{}
		fl := &follower{out: recorderOut{r: rec}, errOut: recorderOut{r: rec, gap: true}}
		start, end := 0, 0
		for i := 0; i+1 < len(windows) && i < 32; i += 2 {
			start = max(start, min(int(windows[i]), len(output)))
			end = max(end, start, min(int(windows[i+1]), len(output)))
			if err := fl.show(fuzzLogCM("pod-a", strconv.Itoa(start), string(output[start:end]))); err != nil {
				t.Fatal(err)
			}
		}
		pos := 0
		for _, e := range rec.events {
			if e.gap {
				var n int
				var pod string
				if _, err := fmt.Sscanf(e.text, "(%d bytes of attempt %s", &n, &pod); err != nil || n <= 0 {
					t.Fatalf("bad gap notice %q (%v)", e.text, err)
				}
				pos += n
				continue
			}
			if pos+len(e.text) > len(output) || e.text != string(output[pos:pos+len(e.text)]) {
				t.Fatalf("printed %q at %d, the output there is %q", e.text, pos, output[pos:min(len(output), pos+len(e.text))])
			}
			pos += len(e.text)
		}
		if pos != end {
			t.Fatalf("printed up to %d, the log reached %d", pos, end)
		}

		var out bytes.Buffer
		fl.out, fl.errOut = &out, &out
		for _, cm := range []*corev1.ConfigMap{
			fuzzLogCM("pod-a", badOffset, badText),
			fuzzLogCM(badPod, badOffset, badText),
			fuzzLogCM(badPod, "0", badText+badText),
			fuzzLogCM(badPod, badOffset, ""),
		} {
			if err := fl.show(cm); err != nil {
				t.Fatal(err)
			}
		}
		if badPod != "pod-a" && !strings.Contains(out.String(), "--- attempt "+badPod+" ---\n") {
			t.Fatalf("no header for the new attempt %q:\n%s", badPod, out.String())
		}
	})
}
