// Package kubeclient turns imagemode's kubectl-style connection flags into an API client: the kubeconfig is
// found as kubectl finds it (--kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the in-cluster
// service account), and the client knows the core types and machineconfiguration.openshift.io/v1.
package kubeclient

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/scheme"
)

// userAgent identifies imagemode's commands in the API server's logs and audit events.
const userAgent = "imagemode"

// Options are the connection flags shared by every command; the root command binds them.
type Options struct {
	// Kubeconfig is the --kubeconfig flag: a kubeconfig file that wins over $KUBECONFIG and ~/.kube/config.
	Kubeconfig string
}

// RESTConfig loads the client configuration named by the options, the way kubectl does.
func (o *Options) RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.UserAgent = userAgent
	// The API server's warnings (deprecations, validation) go to standard error once each, as kubectl
	// prints them, rather than to controller-runtime's logger, which a CLI does not set up.
	cfg.WarningHandler = rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})
	return cfg, nil
}

// Client returns a controller-runtime client (no cache) for the options' cluster, using the project's scheme (internal/scheme).
func (o *Options) Client() (client.Client, error) {
	cfg, err := o.RESTConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("creating API client for %s: %w", cfg.Host, err)
	}
	return c, nil
}
