package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.podman.io/image/v5/types"
)

// CertsDir writes registry CA bundles, named host..port as in the ControllerConfig's image registry bundles,
// into dir as a certs.d tree (dir/host:port/ca.crt), the layout containers/image reads per host.
func CertsDir(dir string, cas map[string][]byte) error {
	for name, pem := range cas {
		if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
			return fmt.Errorf("registry CA bundle name %q is not host..port", name)
		}
		host := strings.ReplaceAll(name, "..", ":")
		if err := os.MkdirAll(filepath.Join(dir, host), 0o755); err != nil {
			return fmt.Errorf("writing registry CAs: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, host, "ca.crt"), pem, 0o644); err != nil {
			return fmt.Errorf("writing registry CAs: %w", err)
		}
	}
	return nil
}

// NewSystemContext writes authJSON (dockerconfigjson) and the CA bundles into workDir and returns a system
// context using them. The caller removes workDir when done; the credentials never leave it.
func NewSystemContext(workDir string, authJSON []byte, cas map[string][]byte) (*types.SystemContext, error) {
	auth := filepath.Join(workDir, "auth.json")
	if err := os.WriteFile(auth, authJSON, 0o600); err != nil {
		return nil, fmt.Errorf("writing registry credentials: %w", err)
	}
	certs := filepath.Join(workDir, "certs.d")
	if err := CertsDir(certs, cas); err != nil {
		return nil, err
	}
	return &types.SystemContext{AuthFilePath: auth, DockerPerHostCertDirPath: certs, BlobInfoCacheDir: workDir}, nil
}
