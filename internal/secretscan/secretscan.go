// Package secretscan is a test helper that searches everything a user or another component can read for
// secret markers: unique strings a test uses as the tokens of its pull and push secrets (and, later,
// signing keys). It reads every object the API server lists except Secrets (events, statuses, conditions,
// annotations, pod termination messages, ConfigMaps, rendered MachineConfigs, …), log files, and captured
// log output. A marker found anywhere is a leak.
package secretscan

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Finding is one marker found.
type Finding struct {
	// Where names the object, file or stream; Context is the text around the marker (the marker itself
	// replaced by "<marker>").
	Where, Context string
}

func (f Finding) String() string { return f.Where + ": " + f.Context }

// Markers is a set of secret markers.
type Markers struct {
	mu      sync.Mutex
	markers []string
}

// Add adds each secret and the encodings it travels in: itself, base64 of it, and, for a registry
// password, base64 of "user:password" (the "auth" of a docker config) when user is given.
func (m *Markers) Add(user string, secrets ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range secrets {
		m.markers = append(m.markers, s, base64.StdEncoding.EncodeToString([]byte(s)))
		if user != "" {
			m.markers = append(m.markers, base64.StdEncoding.EncodeToString([]byte(user+":"+s)))
		}
	}
}

// All returns the markers.
func (m *Markers) All() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.markers...)
}

// Text returns where text (named where) holds a marker.
func (m *Markers) Text(where, text string) []Finding {
	var out []Finding
	for _, mk := range m.All() {
		if mk == "" {
			continue
		}
		for rest, off := text, 0; ; {
			i := strings.Index(rest, mk)
			if i < 0 {
				break
			}
			start, end := max(0, off+i-60), min(len(text), off+i+len(mk)+60)
			out = append(out, Finding{Where: where, Context: strings.ReplaceAll(text[start:end], mk, "<marker>")})
			off += i + len(mk)
			rest = text[off:]
		}
	}
	return out
}

// Files searches the files under root for which keep returns true (all when keep is nil).
func (m *Markers) Files(root string, keep func(path string) bool) ([]Finding, error) {
	var out []Finding
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || (keep != nil && !keep(path)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // gone meanwhile
		}
		out = append(out, m.Text(path, string(b))...)
		return nil
	})
	return out, err
}

// API searches every object of every resource the API server can list (all namespaces), except Secrets —
// the one place the secrets belong.
func (m *Markers) API(ctx context.Context, cfg *rest.Config) ([]Finding, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NoWarnings{} // deprecated resources are listed too, without the noise
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovering resources: %w", err)
	}
	var out []Finding
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !contains(r.Verbs, "list") || (gv.Group == "" && r.Name == "secrets") {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue // e.g. a resource the server lists only with a selector
			}
			for _, it := range items.Items {
				raw, err := json.Marshal(it.Object)
				if err != nil {
					continue
				}
				where := fmt.Sprintf("%s %s", r.Name, it.GetName())
				if ns := it.GetNamespace(); ns != "" {
					where = fmt.Sprintf("%s %s/%s", r.Name, ns, it.GetName())
				}
				out = append(out, m.Text(where, string(raw))...)
			}
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
