// Package clients holds the API clients the status, builds, rebuild and version commands use, made once per
// command run from the root command's connection flags: a controller-runtime client that can also watch
// (for --watch and -f) and a typed clientset (events, pod logs, the server's version).
package clients

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/kubeclient"
	"github.com/imagemode/imagemode/internal/scheme"
)

// Clients are a command's connections to one cluster.
type Clients struct {
	// Client reads, writes and watches the core types and machineconfiguration.openshift.io/v1.
	Client client.WithWatch
	// Kube is the typed clientset: pod logs and the server's version.
	Kube kubernetes.Interface
}

// Func returns a command's clients; commands call it when they run, after the flags are parsed.
type Func func() (*Clients, error)

// New returns the clients for a REST configuration.
func New(cfg *rest.Config) (*Clients, error) {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("creating API client for %s: %w", cfg.Host, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating API clientset for %s: %w", cfg.Host, err)
	}
	return &Clients{Client: c, Kube: kube}, nil
}

// FromOptions returns a Func that loads the options' kubeconfig when called.
func FromOptions(o *kubeclient.Options) Func {
	return func() (*Clients, error) {
		cfg, err := o.RESTConfig()
		if err != nil {
			return nil, err
		}
		return New(cfg)
	}
}
