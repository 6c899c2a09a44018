package plancmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/internal/scheme"
)

// Kinds a change may hold.
const (
	KindMachineConfig     = "MachineConfig"
	KindMachineConfigPool = "MachineConfigPool"
	KindMachineOSConfig   = "MachineOSConfig"
	KindICSP              = "ImageContentSourcePolicy"
	KindIDMS              = "ImageDigestMirrorSet"
	KindITMS              = "ImageTagMirrorSet"
	KindImage             = "Image"
)

// Kinds only a cluster snapshot (--offline DIR) holds, besides the kinds of a change.
const (
	KindNode                 = "Node"
	KindMachineOSBuild       = "MachineOSBuild"
	KindControllerConfig     = "ControllerConfig"
	KindMachineConfiguration = "MachineConfiguration"
)

// changeKinds are the kinds -f accepts, with the group each must be in.
var changeKinds = map[string]string{
	KindMachineConfig: mcfgv1.GroupName, KindMachineConfigPool: mcfgv1.GroupName, KindMachineOSConfig: mcfgv1.GroupName,
	KindICSP: operatorv1alpha1.GroupName, KindIDMS: configv1.GroupName, KindITMS: configv1.GroupName, KindImage: configv1.GroupName,
}

// snapshotKinds are the kinds an --offline folder may hold; documents of other kinds there are skipped.
var snapshotKinds = func() map[string]string {
	m := map[string]string{KindNode: "", KindMachineOSBuild: mcfgv1.GroupName, KindControllerConfig: mcfgv1.GroupName,
		KindMachineConfiguration: operatorv1.GroupName}
	for k, g := range changeKinds {
		m[k] = g
	}
	return m
}()

// Document is one object read from YAML, and where it came from (for errors).
type Document struct {
	// Source is the file it was read from ("-" for standard input).
	Source string
	// Index is its position in the file, from 1 (items of a List count one each).
	Index int
	// Object is the typed object.
	Object client.Object
}

// Kind is the document's kind.
func (d Document) Kind() string { return d.Object.GetObjectKind().GroupVersionKind().Kind }

// String names the document for errors: `document 2 (MachineConfig/99-worker-foo) of change.yaml`.
func (d Document) String() string {
	return fmt.Sprintf("document %d (%s/%s) of %s", d.Index, d.Kind(), d.Object.GetName(), d.Source)
}

// DocumentError is a document that cannot be used; it names the document and, when known, the field.
type DocumentError struct {
	Source string
	Index  int
	// Kind and Name are empty when the document could not be read that far.
	Kind, Name string
	Err        error
}

func (e *DocumentError) Error() string {
	id := ""
	if e.Kind != "" || e.Name != "" {
		id = fmt.Sprintf(" (%s/%s)", e.Kind, e.Name)
	}
	return fmt.Sprintf("document %d%s of %s: %v", e.Index, id, e.Source, e.Err)
}

func (e *DocumentError) Unwrap() error { return e.Err }

func docError(d Document, format string, args ...any) error {
	return &DocumentError{Source: d.Source, Index: d.Index, Kind: d.Kind(), Name: d.Object.GetName(), Err: fmt.Errorf(format, args...)}
}

// ParseChange reads the documents of a change file: only the kinds a change may hold, each with a name.
func ParseChange(source string, r io.Reader) ([]Document, error) {
	docs, err := parse(source, r, changeKinds, false)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s holds no objects", source)
	}
	return docs, nil
}

// parse reads YAML (or JSON) documents, a List's items each counting as one. Kinds outside allowed are an
// error, or skipped when skipOthers.
func parse(source string, r io.Reader, allowed map[string]string, skipOthers bool) ([]Document, error) {
	decoder := serializer.NewCodecFactory(scheme.New(), serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []Document
	index := 0
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", source, err)
		}
		if isEmptyDocument(raw) {
			continue
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, &DocumentError{Source: source, Index: index + 1, Err: fmt.Errorf("not valid YAML: %w", err)}
		}
		items := []json.RawMessage{js}
		var list struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if json.Unmarshal(js, &list) == nil && strings.HasSuffix(list.Kind, "List") {
			items = list.Items
		}
		for _, it := range items {
			index++
			doc, err := decodeOne(decoder, source, index, it, allowed, skipOthers)
			if err != nil {
				return nil, err
			}
			if doc != nil {
				docs = append(docs, *doc)
			}
		}
	}
}

// decodeOne decodes one object strictly (unknown and duplicate fields are errors) into its typed form.
func decodeOne(decoder runtime.Decoder, source string, index int, js []byte, allowed map[string]string, skipOthers bool) (*Document, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return nil, &DocumentError{Source: source, Index: index, Err: fmt.Errorf("not an object: %w", err)}
	}
	fail := func(err error) error {
		return &DocumentError{Source: source, Index: index, Kind: meta.Kind, Name: meta.Metadata.Name, Err: err}
	}
	switch {
	case meta.Kind == "":
		return nil, fail(errors.New("kind: Required value"))
	case meta.APIVersion == "":
		return nil, fail(errors.New("apiVersion: Required value"))
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil {
		return nil, fail(fmt.Errorf("apiVersion: %w", err))
	}
	group, ok := allowed[meta.Kind]
	if !ok || group != gv.Group {
		if skipOthers {
			return nil, nil
		}
		return nil, fail(fmt.Errorf("kind: unsupported %s %s; a change holds %s", meta.APIVersion, meta.Kind, kindList(allowed)))
	}
	if meta.Metadata.Name == "" {
		return nil, fail(errors.New("metadata.name: Required value"))
	}
	obj, _, err := decoder.Decode(js, nil, nil)
	if err != nil {
		return nil, fail(err)
	}
	co, ok := obj.(client.Object)
	if !ok {
		return nil, fail(fmt.Errorf("%T is not an API object", obj))
	}
	co.GetObjectKind().SetGroupVersionKind(gv.WithKind(meta.Kind))
	return &Document{Source: source, Index: index, Object: co}, nil
}

// kindList lists the kinds of allowed, sorted, for an error.
func kindList(allowed map[string]string) string {
	kinds := make([]string, 0, len(allowed))
	for k := range allowed {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return strings.Join(kinds, ", ")
}

// isEmptyDocument reports whether a YAML document holds nothing but blank lines and comments.
func isEmptyDocument(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' && string(l) != "---" {
			return false
		}
	}
	return true
}
