package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// assetsEnv names the directory holding etcd, kube-apiserver, kube-controller-manager and kubectl.
const assetsEnv = "KUBEBUILDER_ASSETS"

// setupScript builds (or finds cached) control-plane binaries and prints their directory.
const setupScript = "hack/setup-kube-assets.sh"

// ErrNoRepoRoot is returned when the repository root cannot be found from the working directory.
var ErrNoRepoRoot = errors.New("repository root not found (no " + setupScript + " above the working directory)")

// AssetsDir returns the directory holding the control-plane binaries: $KUBEBUILDER_ASSETS when set, else
// the per-machine cache that hack/setup-kube-assets.sh fills (building the binaries on first use).
func AssetsDir() (string, error) {
	if dir := os.Getenv(assetsEnv); dir != "" {
		return dir, checkAssets(dir)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, setupScript))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("running %s: %w", setupScript, err)
	}
	dir := strings.TrimSpace(string(out))
	return dir, checkAssets(dir)
}

func checkAssets(dir string) error {
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("control-plane binary %s missing in %s (run %s): %w", bin, dir, setupScript, err)
		}
	}
	return nil
}

// RepoRoot walks up from the working directory to the directory holding hack/setup-kube-assets.sh.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, setupScript)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRepoRoot
		}
		dir = parent
	}
}
