// Package childproc runs the long-lived helper processes of the local environment (kube-controller-manager,
// the OCI registry): each in its own process group, with output to a log file, stopped with SIGTERM and,
// past a grace period, SIGKILL — so a stopped test leaves no process behind.
package childproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Process is a started child process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// Start runs path with args, appending its stdout and stderr to logPath (and to extra, when not nil). The
// process inherits this process's environment.
func Start(path string, args []string, logPath string, extra io.Writer) (*Process, error) {
	return StartCommand(Command{Path: path, Args: args, LogPath: logPath, Extra: extra})
}

// Command describes a process to start.
type Command struct {
	Path    string
	Args    []string
	LogPath string
	// Extra also receives the output when not nil.
	Extra io.Writer
	// Env is the whole environment when not nil (nil: inherit this process's).
	Env []string
	// Dir is the working directory (empty: this process's).
	Dir string
	// PrivateMounts starts the process in a mount namespace of its own (propagation private), as a
	// container runtime does: what it mounts is its own, and goes when its last process ends, however it
	// ends. Needs CAP_SYS_ADMIN.
	PrivateMounts bool
}

// StartCommand starts c.
func StartCommand(c Command) (*Process, error) {
	path, args, logPath, extra := c.Path, c.Args, c.LogPath, c.Extra
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", logPath, err)
	}
	var out io.Writer = logf
	if extra != nil {
		out = io.MultiWriter(logf, extra)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env, cmd.Dir = c.Env, c.Dir
	// Pdeathsig kills the child if this process dies without stopping it. Linux sends it when the *thread*
	// that forked the child exits, so the fork happens on a locked thread that lives until the child exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.PrivateMounts {
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS // Go makes / private in it before exec
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), log: logf}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine, after the child
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return p, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// ExitCode returns the exit code once Exited is closed (-1 when killed by a signal).
func (p *Process) ExitCode() int { return p.cmd.ProcessState.ExitCode() }

// ContainerExitCode is the exit code a container runtime reports once Exited is closed: the exit code, or
// 128 plus the signal's number for a process killed by a signal (137 for SIGKILL, as after an OOM kill).
func (p *Process) ContainerExitCode() int {
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Exited returns a channel closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// ExitErr returns the process's exit error once Exited is closed.
func (p *Process) ExitErr() error { return p.err }

// Stop sends SIGTERM to the process group and waits up to grace before sending SIGKILL. A process that
// exits because of the signal is not an error.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pgid := -p.cmd.Process.Pid
	if err := syscall.Kill(pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling process %d: %w", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	<-p.done
	return nil
}
