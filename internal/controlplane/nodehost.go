package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// mountInfo is one line of /proc/self/mountinfo: where it is mounted and its filesystem type.
type mountInfo struct {
	point, fstype string
}

// parseMountInfo reads /proc/self/mountinfo's format: the mount point is the fifth field (octal escapes for
// spaces and the like), the filesystem type the first field after the " - " separator.
func parseMountInfo(text string) []mountInfo {
	var mounts []mountInfo
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, postFields := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(postFields) < 1 {
			continue
		}
		mounts = append(mounts, mountInfo{point: unescapeMount(fields[4]), fstype: postFields[0]})
	}
	return mounts
}

// unescapeMount undoes the kernel's \ooo octal escapes in a mountinfo path.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func readMounts() ([]mountInfo, error) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	return parseMountInfo(string(raw)), nil
}

// mountsUnder returns the mount points at or below dir, deepest first (the order to unmount them in).
func mountsUnder(mounts []mountInfo, dir string) []string {
	var under []string
	for _, m := range mounts {
		if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
			under = append(under, m.point)
		}
	}
	slices.SortFunc(under, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(under)
}

// unmountUnder lazily unmounts everything mounted under dir: the containers' rootfs overlays, shm and the
// kubelet's volume tmpfs mounts that outlive the processes.
func unmountUnder(dir string) error {
	if dir == "" {
		return nil
	}
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range mountsUnder(mounts, filepath.Clean(dir)) {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupV1Hierarchies returns the mount points of the cgroup v1 hierarchies (cpu, memory, ..., name=systemd).
// The kubelet needs its cgroup root to exist in each of them (on the unified v2 mount of a hybrid host it
// does not look).
func cgroupV1Hierarchies(mounts []mountInfo) []string {
	var dirs []string
	for _, m := range mounts {
		if m.fstype == "cgroup" {
			dirs = append(dirs, m.point)
		}
	}
	return dirs
}

// cgroupHierarchies returns the mount points of every cgroup hierarchy, v1 and the unified v2 one (runc
// also makes the containers' cgroups there on a hybrid host).
func cgroupHierarchies(mounts []mountInfo) []string {
	var dirs []string
	for _, m := range mounts {
		if m.fstype == "cgroup" || m.fstype == "cgroup2" {
			dirs = append(dirs, m.point)
		}
	}
	return dirs
}

// makeCgroupRoot creates the kubelet's cgroup root in every cgroup v1 hierarchy.
func makeCgroupRoot(root string) error {
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	hierarchies := cgroupV1Hierarchies(mounts)
	if len(hierarchies) == 0 {
		return errors.New("no cgroup v1 hierarchy mounted: the node set-up is written for this machine kind's cgroup v1 hybrid hierarchy")
	}
	for _, h := range hierarchies {
		if err := os.MkdirAll(filepath.Join(h, root), 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", filepath.Join(h, root), err)
		}
	}
	return nil
}

// removeCgroupRoot removes the cgroup root and every cgroup below it (deepest first) from every
// hierarchy, retrying for a few seconds while the killed containers' processes leave them.
func removeCgroupRoot(root string) error {
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	var last error
	for range 50 {
		last = nil
		for _, h := range cgroupHierarchies(mounts) {
			if err := removeCgroupTree(filepath.Join(h, root)); err != nil {
				last = err
			}
		}
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// removeCgroupTree rmdirs dir's cgroup directories bottom-up (a cgroup's files cannot be removed, only
// the empty directory).
func removeCgroupTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing cgroup %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}
