package containerruntime

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// InvalidInputsError is Desired's error for a registry configuration registries.Validate rejects: the
// generated config must then be left as it is. Each of Errs names its object and field, e.g.
// "imagedigestmirrorsets/foo: spec.imageDigestMirrors[0].mirrors[1]".
type InvalidInputsError struct {
	// Pool is the pool whose config could not be generated.
	Pool string
	// Errs are the validation errors, at least one.
	Errs field.ErrorList
}

// Error lists every validation error.
func (e *InvalidInputsError) Error() string {
	return fmt.Sprintf("validating registry configuration for %s: %v", GeneratedName(e.Pool), e.Errs.ToAggregate())
}

// Unwrap returns the validation errors as one aggregate error.
func (e *InvalidInputsError) Unwrap() error {
	return e.Errs.ToAggregate()
}

// Offender is an object (by resource and name, as registries.Validate names it) with the validation errors
// that blame it.
type Offender struct {
	// Resource is the plural resource, e.g. "imagedigestmirrorsets"; empty when an error names no object
	// (e.g. an unparsable release image pull spec).
	Resource string
	// Name is the object's name; empty with Resource.
	Name string
	// Errs are the errors blaming the object, in their original order.
	Errs field.ErrorList
}

// Offenders groups errs by the object each one names in its field ("<resource>/<name>: spec..."), ordered
// by resource and name, with the errors that name no object last.
func Offenders(errs field.ErrorList) []Offender {
	var out []Offender
	for _, e := range errs {
		resource, name := blamedObject(e.Field)
		i := slices.IndexFunc(out, func(o Offender) bool { return o.Resource == resource && o.Name == name })
		if i < 0 {
			out = append(out, Offender{Resource: resource, Name: name})
			i = len(out) - 1
		}
		out[i].Errs = append(out[i].Errs, e)
	}
	slices.SortStableFunc(out, func(a, b Offender) int {
		if (a.Resource == "") != (b.Resource == "") {
			if a.Resource == "" {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// blamedObject parses the "<resource>/<name>" prefix of a registries validation error's field; both are
// empty when the field names no object.
func blamedObject(fieldPath string) (resource, name string) {
	object, _, ok := strings.Cut(fieldPath, ": ")
	if !ok {
		return "", ""
	}
	resource, name, ok = strings.Cut(object, "/")
	if !ok || resource == "" || name == "" {
		return "", ""
	}
	return resource, name
}

// maxNoteBytes is the longest note events.k8s.io/v1 accepts.
const maxNoteBytes = 1024

// truncateNote shortens s to at most maxNoteBytes bytes, on a UTF-8 boundary, ending with "…" when cut.
func truncateNote(s string) string {
	if len(s) <= maxNoteBytes {
		return s
	}
	const ellipsis = "…"
	cut := maxNoteBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
