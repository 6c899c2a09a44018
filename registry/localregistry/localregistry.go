// Package localregistry runs a real OCI registry on this machine for tests and the embedded local default:
// Debian's docker-registry (CNCF distribution) listening on 127.0.0.1 with TLS from a freshly generated CA,
// htpasswd (bcrypt) basic auth and manifest deletes enabled — the same shape as a production registry the
// build service pushes to and the pruner deletes from.
//
// A started Registry gives clients everything they need: the host, a certificate directory holding the CA
// (containers/image DockerCertPath), an auth file, and a dockerconfigjson for Kubernetes Secrets.
package localregistry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"go.podman.io/image/v5/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/imagemode/imagemode/internal/childproc"
)

// Binary is the registry executable installed by Debian's docker-registry package.
const Binary = "docker-registry"

// DefaultUser is the user name of the registry's single account.
const DefaultUser = "builder"

// Options configures a registry.
type Options struct {
	// Dir holds the certificates, credentials, configuration, log and image data. Required.
	Dir string
	// Addr is the listen address; "127.0.0.1:0" (the default) picks a free port.
	Addr string
	// Username and Password of the single account; DefaultUser and a random password when empty.
	Username, Password string
	// Output also receives the registry's log when not nil.
	Output io.Writer
	// Hostname, when set, is the name clients use (Host becomes Hostname:port) and is added to the
	// certificate; it must resolve to the listen address (e.g. an /etc/hosts entry).
	Hostname string
}

// Registry is a running local registry.
type Registry struct {
	// Host is host:port, as it appears in image references (e.g. 127.0.0.1:41234).
	Host string
	// CertDir contains only ca.crt, the CA that signed the registry's certificate.
	CertDir string
	// AuthFile is a containers-auth.json with the account's credentials for Host.
	AuthFile string
	// Username and Password of the account.
	Username, Password string
	// Dir is the registry's state directory.
	Dir string

	listen   string
	hostname string
	proc     *childproc.Process
}

// Start writes the registry's certificates, htpasswd and configuration into opts.Dir, starts the registry
// and waits until it answers an unauthenticated request with 401.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	if opts.Dir == "" {
		return nil, errors.New("localregistry: Options.Dir is required")
	}
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return nil, fmt.Errorf("finding %s (install Debian's docker-registry package): %w", Binary, err)
	}
	r := &Registry{Dir: opts.Dir, CertDir: filepath.Join(opts.Dir, "certs"), Username: opts.Username, Password: opts.Password}
	if r.Username == "" {
		r.Username = DefaultUser
	}
	if r.Password == "" {
		if r.Password, err = randomHex(16); err != nil {
			return nil, err
		}
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if addr, err = resolvePort(addr); err != nil {
		return nil, err
	}
	r.Host, r.listen, r.hostname = addr, addr, opts.Hostname
	if opts.Hostname != "" {
		_, port, _ := net.SplitHostPort(addr)
		r.Host = net.JoinHostPort(opts.Hostname, port)
	}
	if err := r.writeConfig(); err != nil {
		return nil, err
	}
	r.proc, err = childproc.Start(bin, []string{"serve", filepath.Join(r.Dir, "config.yml")},
		filepath.Join(r.Dir, "registry.log"), opts.Output)
	if err != nil {
		return nil, err
	}
	if err := r.waitReady(ctx, 30*time.Second); err != nil {
		_ = r.proc.Stop(5 * time.Second)
		return nil, err
	}
	return r, nil
}

func (r *Registry) writeConfig() error {
	serverDir := filepath.Join(r.Dir, "server")
	for _, d := range []string{r.CertDir, serverDir, filepath.Join(r.Dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := writePKI(r.CertDir, serverDir, r.hostname); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hashing registry password: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "htpasswd"), []byte(r.Username+":"+string(hash)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing htpasswd: %w", err)
	}
	r.AuthFile = filepath.Join(r.Dir, "auth.json")
	if err := os.WriteFile(r.AuthFile, r.DockerConfigJSON(), 0o600); err != nil {
		return fmt.Errorf("writing auth file: %w", err)
	}
	secret, err := randomHex(16)
	if err != nil {
		return err
	}
	// No blob descriptor cache: an in-memory cache answers for blobs after their deletion.
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: true}
  maintenance:
    uploadpurging: {enabled: false}
http:
  addr: %q
  secret: %q
  tls: {certificate: %q, key: %q}
auth:
  htpasswd: {realm: imagemode-local-registry, path: %q}
`, filepath.Join(r.Dir, "data"), r.listen, secret, filepath.Join(serverDir, "server.crt"),
		filepath.Join(serverDir, "server.key"), filepath.Join(r.Dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(r.Dir, "config.yml"), []byte(config), 0o600); err != nil {
		return fmt.Errorf("writing registry config: %w", err)
	}
	return nil
}

func (r *Registry) waitReady(ctx context.Context, timeout time.Duration) error {
	pool, err := r.CertPool()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.proc.Exited():
			return fmt.Errorf("registry exited during start: %v (log: %s)", r.proc.ExitErr(), filepath.Join(r.Dir, "registry.log"))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+r.Host+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			last = fmt.Errorf("GET /v2/ answered %s, want 401", resp.Status)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("registry at %s not ready after %s: %w", r.Host, timeout, last)
}

// Stop stops the registry process. Its directory (and the images in it) stays.
func (r *Registry) Stop() error {
	if r.proc == nil {
		return nil
	}
	err := r.proc.Stop(5 * time.Second)
	r.proc = nil
	return err
}

// Restart starts a stopped registry again at the same address, with the same certificates, account and
// images (its configuration is kept in its directory); it is a no-op for a running one.
func (r *Registry) Restart(ctx context.Context) error {
	if r.proc != nil {
		return nil
	}
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return err
	}
	if r.proc, err = childproc.Start(bin, []string{"serve", filepath.Join(r.Dir, "config.yml")},
		filepath.Join(r.Dir, "registry.log"), nil); err != nil {
		return err
	}
	if err := r.waitReady(ctx, 30*time.Second); err != nil {
		_ = r.Stop()
		return err
	}
	return nil
}

// CertPool returns a pool holding the registry's CA.
func (r *Registry) CertPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(filepath.Join(r.CertDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading registry CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("registry CA holds no certificate")
	}
	return pool, nil
}

// DockerConfigJSON returns the credentials as the content of a kubernetes.io/dockerconfigjson Secret.
func (r *Registry) DockerConfigJSON() []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))
	raw, _ := json.Marshal(map[string]any{"auths": map[string]any{r.Host: map[string]string{"auth": auth}}})
	return raw
}

// SystemContext returns a containers/image system context that trusts the registry's CA and uses the
// account's credentials; blob-info caching is kept in dir (containers/image writes to /var/lib otherwise).
func (r *Registry) SystemContext() *types.SystemContext {
	return &types.SystemContext{
		AuthFilePath:     r.AuthFile,
		DockerCertPath:   r.CertDir,
		BlobInfoCacheDir: r.Dir,
	}
}

// Ref returns a reference to repository (e.g. "os/base") in this registry with the given tag or digest
// suffix (":v1" or "@sha256:...").
func (r *Registry) Ref(repository, suffix string) string {
	return r.Host + "/" + repository + suffix
}

func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("parsing listen address %q: %w", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
