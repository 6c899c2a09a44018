package registries

import (
	"cmp"
	"slices"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultRegistriesConf is the registries.conf the MCO templates start every pool from; pass it as Generate's
// base to reproduce a stock OpenShift node.
const DefaultRegistriesConf = `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
short-name-mode = ""
`

// DefaultPolicyJSON is the policy.json the MCO templates start every pool from. Policy uses it when its base is
// empty.
const DefaultPolicyJSON = `{
  "default": [
    {
      "type": "insecureAcceptAnything"
    }
  ],
  "transports": {
    "docker-daemon": {
      "": [
        {
          "type": "insecureAcceptAnything"
        }
      ]
    }
  }
}
`

// Inputs is the cluster configuration registries.conf and policy.json are rendered from.
type Inputs struct {
	// ICSPs are the ImageContentSourcePolicies; their mirrors are digest mirrors that allow contacting the source.
	ICSPs []operatorv1alpha1.ImageContentSourcePolicy
	// IDMSs are the ImageDigestMirrorSets.
	IDMSs []configv1.ImageDigestMirrorSet
	// ITMSs are the ImageTagMirrorSets.
	ITMSs []configv1.ImageTagMirrorSet
	// Image is images.config.openshift.io/cluster; nil means no registry sources are configured.
	Image *configv1.Image
	// ReleaseImage is the release payload's pull spec. When set, blocking the payload repository is rejected
	// unless the payload has a digest mirror that is not blocked; empty skips that check.
	ReleaseImage string
}

// mirrorKind tells digest mirrors (ICSP, IDMS) from tag mirrors (ITMS).
type mirrorKind int

const (
	digestMirrors mirrorKind = iota
	tagMirrors
)

// mirrorEntry is one source→mirrors item of any of the three mirror kinds, with where it came from.
type mirrorEntry struct {
	kind mirrorKind
	// object names the configuring object, e.g. "imagedigestmirrorsets/foo".
	object string
	// path is the item's field path, e.g. "imagedigestmirrorsets/foo: spec.imageDigestMirrors[2]".
	path *field.Path
	// policyPath is the field blamed for a mirrorSourcePolicy problem (source for ICSPs, which have no policy
	// field; as ICSPs are checked first and all imply AllowContactingSource, a conflict never blames them).
	policyPath *field.Path
	source     string
	mirrors    []string
	// policy is the mirrorSourcePolicy as written (empty for ICSPs and when unset).
	policy configv1.MirrorSourcePolicy
}

// effectivePolicy is the entry's mirrorSourcePolicy with the API default applied.
func (e mirrorEntry) effectivePolicy() configv1.MirrorSourcePolicy {
	if e.policy == "" {
		return configv1.AllowContactingSource
	}
	return e.policy
}

// hasRealMirror reports whether the entry lists at least one mirror other than its source; entries that do not
// are ignored when rendering.
func (e mirrorEntry) hasRealMirror() bool {
	for _, m := range e.mirrors {
		if m != e.source {
			return true
		}
	}
	return false
}

// objectRef names an object as resource/name, the prefix of every validation error.
func objectRef(resource, name string) string {
	if name == "" {
		return resource
	}
	return resource + "/" + name
}

// specPath is the field path of an object's spec, prefixed with the object's name so that field errors read
// "imagedigestmirrorsets/foo: spec.imageDigestMirrors[2].source: ...".
func specPath(object string) *field.Path {
	return field.NewPath(object + ": spec")
}

// mirrorEntries flattens the ICSPs, IDMSs and ITMSs of in into mirror entries, each kind ordered by object name
// so that anything derived from the list does not depend on the order of the input slices.
func (in Inputs) mirrorEntries() []mirrorEntry {
	var out []mirrorEntry
	for _, icsp := range sortedByName(in.ICSPs, func(o operatorv1alpha1.ImageContentSourcePolicy) string { return o.Name }) {
		object := objectRef("imagecontentsourcepolicies", icsp.Name)
		for i, rdm := range icsp.Spec.RepositoryDigestMirrors {
			p := specPath(object).Child("repositoryDigestMirrors").Index(i)
			out = append(out, mirrorEntry{
				kind: digestMirrors, object: object, path: p, policyPath: p.Child("source"),
				source: rdm.Source, mirrors: slices.Clone(rdm.Mirrors),
			})
		}
	}
	for _, idms := range sortedByName(in.IDMSs, func(o configv1.ImageDigestMirrorSet) string { return o.Name }) {
		object := objectRef("imagedigestmirrorsets", idms.Name)
		for i, idm := range idms.Spec.ImageDigestMirrors {
			p := specPath(object).Child("imageDigestMirrors").Index(i)
			out = append(out, mirrorEntry{
				kind: digestMirrors, object: object, path: p, policyPath: p.Child("mirrorSourcePolicy"),
				source: idm.Source, mirrors: imageMirrors(idm.Mirrors), policy: idm.MirrorSourcePolicy,
			})
		}
	}
	for _, itms := range sortedByName(in.ITMSs, func(o configv1.ImageTagMirrorSet) string { return o.Name }) {
		object := objectRef("imagetagmirrorsets", itms.Name)
		for i, itm := range itms.Spec.ImageTagMirrors {
			p := specPath(object).Child("imageTagMirrors").Index(i)
			out = append(out, mirrorEntry{
				kind: tagMirrors, object: object, path: p, policyPath: p.Child("mirrorSourcePolicy"),
				source: itm.Source, mirrors: imageMirrors(itm.Mirrors), policy: itm.MirrorSourcePolicy,
			})
		}
	}
	return out
}

// registrySources returns the image config's registry sources (zero when Image is nil).
func (in Inputs) registrySources() configv1.RegistrySources {
	if in.Image == nil {
		return configv1.RegistrySources{}
	}
	return in.Image.Spec.RegistrySources
}

// imageObject names the image config in validation errors.
func (in Inputs) imageObject() string {
	name := ""
	if in.Image != nil {
		name = in.Image.Name
	}
	return objectRef("images", name)
}

func imageMirrors(ms []configv1.ImageMirror) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}

// sortedByName returns a copy of objs ordered by name (stable, so equal names keep their input order).
func sortedByName[T any](objs []T, name func(T) string) []T {
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(a, b T) int { return cmp.Compare(name(a), name(b)) })
	return out
}
