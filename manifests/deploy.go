package manifests

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The components' service accounts, in namespace openshift-machine-config-operator (wellknown.MCONamespace).
const (
	// ControllerServiceAccount runs imagemode-controller (render, rollout, drain, build service).
	ControllerServiceAccount = "imagemode-controller"
	// BuilderServiceAccount runs build pods; it must equal builder/jobs.ServiceAccount.
	BuilderServiceAccount = "machine-os-builder"
	// DaemonServiceAccount runs imagemode-daemon on every node.
	DaemonServiceAccount = "imagemode-daemon"
)

// deployKustomization is the kustomization file of deploy/; it is not an object.
const deployKustomization = "kustomization.yaml"

//go:embed deploy/*.yaml
var deployFS embed.FS

// Deploy returns the objects of deploy/ (without the CRDs, which CRDs returns), ordered by file name and
// then by position in the file. They are the files kustomization.yaml lists, before kustomize's image
// override.
func Deploy() ([]*unstructured.Unstructured, error) {
	names, err := fs.Glob(deployFS, "deploy/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing embedded deployment manifests: %w", err)
	}
	sort.Strings(names)
	var out []*unstructured.Unstructured
	for _, name := range names {
		if path.Base(name) == deployKustomization {
			continue
		}
		raw, err := deployFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		objs, err := decodeObjects(raw)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", path.Base(name), err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// decodeObjects decodes every YAML document of raw; each must be an object with a kind and a name.
func decodeObjects(raw []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if obj.Object == nil {
			continue // an empty document
		}
		if obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("document %d: no kind or metadata.name", i)
		}
		out = append(out, obj)
	}
}
