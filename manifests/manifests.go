// Package manifests embeds the Kubernetes manifests this project installs: the CustomResourceDefinitions
// it serves, copied unchanged from the pinned github.com/openshift/api module by hack/update-crds.sh (one
// feature-set variant per kind), and the deployment manifests of deploy/ (namespace, service accounts,
// least-privilege RBAC per component, the controller Deployment and the daemon DaemonSet; `kubectl apply -k
// manifests/deploy` installs them with the CRDs). Tests, the embedded local default and the installer read
// them from here, so all three install the same definitions.
package manifests

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

//go:embed crds/*.crd.yaml
var crdFS embed.FS

// CRDs returns every embedded CustomResourceDefinition, ordered by file name.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	names, err := fs.Glob(crdFS, "crds/*.crd.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing embedded CRDs: %w", err)
	}
	sort.Strings(names)
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(names))
	for _, name := range names {
		raw, err := crdFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		crd, err := decodeCRD(raw)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", path.Base(name), err)
		}
		out = append(out, crd)
	}
	return out, nil
}

func decodeCRD(raw []byte) (*apiextensionsv1.CustomResourceDefinition, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := dec.Decode(crd); err != nil {
		return nil, err
	}
	if crd.Kind != "CustomResourceDefinition" || crd.Spec.Names.Kind == "" {
		return nil, fmt.Errorf("not a CustomResourceDefinition (kind %q)", crd.Kind)
	}
	// Exactly one document per file: a second one would be silently dropped by callers.
	var extra map[string]any
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, fmt.Errorf("expected one document, found more")
	}
	return crd, nil
}
