package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-logr/logr"

	"github.com/imagemode/imagemode/daemon/simnode"
)

// NodeSpec names a simulated node and the pool role it starts in.
type NodeSpec struct {
	Name, Role string
}

// DefaultNodes are the embedded default's three simulated nodes.
var DefaultNodes = []NodeSpec{{"master-0", "master"}, {"worker-0", "worker"}, {"worker-1", "worker"}}

// StartNodes starts simulated nodes: each a Node object, a host on a real OSTree sysroot under the state directory
// provisioned with the base OS image from the registry (with the cluster's pull secret and registry CA),
// and the node agent (the daemon) in this process.
func (e *Env) StartNodes(ctx context.Context, specs []NodeSpec, logger logr.Logger) error {
	if e.Registry == nil || e.BaseImage == "" {
		return errors.New("registry not started or base image not pushed")
	}
	ca, err := os.ReadFile(filepath.Join(e.Registry.CertDir, "ca.crt"))
	if err != nil {
		return err
	}
	for _, s := range specs {
		n, err := simnode.Start(ctx, e.ControlPlane.Config, e.ControlPlane.Client, simnode.Options{
			Name: s.Name, Dir: filepath.Join(e.opts.StateDir, "nodes", s.Name),
			Labels:    map[string]string{NodeRoleLabelPrefix + s.Role: "", "kubernetes.io/os": "linux"},
			BaseImage: e.BaseImage, AuthJSON: e.Registry.DockerConfigJSON(),
			CAs:    map[string][]byte{strings.Replace(e.Registry.Host, ":", "..", 1): ca},
			Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("starting node %s: %w", s.Name, err)
		}
		e.Nodes = append(e.Nodes, n)
	}
	return nil
}

// Node returns the running simulated node called name, or nil.
func (e *Env) Node(name string) *simnode.Node {
	for _, n := range e.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

func (e *Env) stopNodes() error {
	var errs []error
	for _, n := range e.Nodes {
		errs = append(errs, n.Stop())
	}
	e.Nodes = nil
	return errors.Join(errs...)
}
