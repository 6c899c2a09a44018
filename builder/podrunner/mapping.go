package podrunner

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// mountMap maps a container's mount paths to the host directories of its volumes.
type mountMap []struct{ mountPath, hostPath string }

// newMountMap pairs each volume mount of c with its volume's directory under volumesDir (plus subPath).
func newMountMap(c *corev1.Container, volumesDir string) (mountMap, error) {
	var m mountMap
	for _, vm := range c.VolumeMounts {
		if !filepath.IsAbs(vm.MountPath) {
			return nil, fmt.Errorf("volumeMounts %q: mountPath %q is not absolute", vm.Name, vm.MountPath)
		}
		host := filepath.Join(volumesDir, vm.Name, vm.SubPath)
		m = append(m, struct{ mountPath, hostPath string }{filepath.Clean(vm.MountPath), host})
	}
	// Longest mount path first, so a nested mount wins over its parent.
	sort.SliceStable(m, func(i, j int) bool { return len(m[i].mountPath) > len(m[j].mountPath) })
	return m, nil
}

// rewrite replaces, in s, every path that is a mount path or under one with the host path. A path must
// start at the beginning of s or after '=', ':' or a space, and end at the end of s or before '/', ':' or a
// space, so "/tmp/cache" does not rewrite "/tmp/cachedir".
func (m mountMap) rewrite(s string) string {
	var b strings.Builder
	i := 0
	for i < len(s) {
		matched := false
		if i == 0 || strings.ContainsRune("=: ", rune(s[i-1])) {
			for _, e := range m {
				if strings.HasPrefix(s[i:], e.mountPath) {
					end := i + len(e.mountPath)
					if end == len(s) || strings.ContainsRune("/: ", rune(s[end])) {
						b.WriteString(e.hostPath)
						i = end
						matched = true
						break
					}
				}
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// commandLine returns the argv and environment the runner executes for container c: the program for
// command[0] from programs, the rest of command and args, env values — all with mount paths rewritten.
// Environment variables from fieldRef/secretKeyRef and the like are not supported and are an error.
func commandLine(c *corev1.Container, m mountMap, programs map[string]string) ([]string, []string, error) {
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("container %q has no command: the runner does not read images' entrypoints", c.Name)
	}
	prog, ok := programs[argv[0]]
	if !ok {
		return nil, nil, fmt.Errorf("container %q: program %q is not available on this runner", c.Name, argv[0])
	}
	argv[0] = prog
	for i := 1; i < len(argv); i++ {
		argv[i] = m.rewrite(argv[i])
	}
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return nil, nil, fmt.Errorf("container %q: env %q uses valueFrom, which the runner does not support", c.Name, e.Name)
		}
		env = append(env, e.Name+"="+m.rewrite(e.Value))
	}
	return argv, env, nil
}
