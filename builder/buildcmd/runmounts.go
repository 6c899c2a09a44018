package buildcmd

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// runMountVolumes copies each --run-mount source directory into dst and returns buildah volume specs
// mounting the copies read-only at their paths. Copying (as the reference's build script does) keeps the
// kubelet's projection layout (..data symlinks) out of the build and gives RUN steps plain readable files.
func runMountVolumes(specs []string, dst string) ([]string, error) {
	var volumes []string
	for i, spec := range specs {
		src, target, ok := strings.Cut(spec, ":")
		if !ok || src == "" || !filepath.IsAbs(target) || strings.Contains(target, ":") {
			return nil, fmt.Errorf("--run-mount %q: want dir:/absolute/path", spec)
		}
		copyDir := filepath.Join(dst, strconv.Itoa(i))
		if err := copyVisible(src, copyDir); err != nil {
			return nil, fmt.Errorf("--run-mount %s: %w", target, err)
		}
		volumes = append(volumes, copyDir+":"+filepath.Clean(target)+":ro")
	}
	return volumes, nil
}

// copyVisible copies the regular files of src (following symlinks, skipping entries whose name starts with
// a dot, which the kubelet uses for its own bookkeeping) into dst, directories 0755, files 0644.
func copyVisible(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		st, err := os.Stat(from) // follows the projection's symlinks
		if err != nil {
			return err
		}
		switch {
		case st.IsDir():
			if err := copyVisible(from, to); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			data, err := os.ReadFile(from)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, data, 0o644); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: not a regular file or directory (%s)", e.Name(), st.Mode().Type()&fs.ModeType)
		}
	}
	return nil
}
