// Package progress shows how a long operation (a build, a rollout) is going. On a terminal it keeps one
// updating line: a spinner, the current message and the elapsed time. Elsewhere (a pipe, a file, CI) it
// prints one plain line per change of message, with no escape codes, so the output stays machine-readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

var frames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Line is an operation's progress line. Its methods are safe for concurrent use.
type Line struct {
	out   io.Writer
	tty   bool
	now   func() time.Time
	start time.Time

	mu    sync.Mutex
	msg   string
	frame int
	done  bool
	stop  chan struct{}
	wg    sync.WaitGroup
}

// Options configure a Line.
type Options struct {
	// Terminal draws the updating line; false prints one line per change.
	Terminal bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Interval between redraws on a terminal (100 ms when zero).
	Interval time.Duration
}

// New starts a progress line on out.
func New(out io.Writer, o Options) *Line {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	l := &Line{out: out, tty: o.Terminal, now: o.Now, start: o.Now(), stop: make(chan struct{})}
	if l.tty {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			t := time.NewTicker(o.Interval)
			defer t.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-t.C:
					l.mu.Lock()
					l.frame++
					l.draw()
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

// Set changes the message. Without a terminal, a message equal to the previous one prints nothing.
func (l *Line) Set(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done || msg == l.msg {
		return
	}
	l.msg = msg
	if l.tty {
		l.draw()
		return
	}
	fmt.Fprintln(l.out, msg)
}

// draw redraws the terminal line; l.mu is held.
func (l *Line) draw() {
	if l.msg == "" || l.done {
		return
	}
	fmt.Fprintf(l.out, "\r\x1b[K%s %s (%s)", frames[l.frame%len(frames)], l.msg, l.elapsed())
}

func (l *Line) elapsed() string {
	return l.now().Sub(l.start).Round(time.Second).String()
}

// Done ends the line with a final message (on a terminal, replacing the updating line, with the elapsed
// time); an empty message only clears a terminal line. Later calls do nothing.
func (l *Line) Done(msg string) {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.done = true
	close(l.stop)
	switch {
	case l.tty && msg == "":
		fmt.Fprint(l.out, "\r\x1b[K")
	case l.tty:
		fmt.Fprintf(l.out, "\r\x1b[K%s (%s)\n", msg, l.elapsed())
	case msg != "" && msg != l.msg:
		fmt.Fprintln(l.out, msg)
	}
	l.mu.Unlock()
	l.wg.Wait()
}
