package registries

import (
	"fmt"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks in the way the MCO does before rendering and returns every problem found, nil when there is
// none. Each error's field names the object and the field, e.g.
// "imagedigestmirrorsets/foo: spec.imageDigestMirrors[2].source". It rejects:
//   - insecure, blocked and allowed registries that are not registry scopes (host[:port][/path] or *.domain);
//   - allowedRegistries and blockedRegistries set together;
//   - mirror sources and mirrors that are not repositories (host[:port][/path], no wildcard, tag or digest);
//   - an unknown mirrorSourcePolicy, and different policies for one source across the ICSPs (which imply
//     AllowContactingSource), IDMSs and ITMSs;
//   - NeverContactSource with the source among the mirrors;
//   - blocking the release payload repository when it has no digest mirror that is not blocked itself.
func Validate(in Inputs) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateRegistrySources(in)...)
	errs = append(errs, validateMirrorEntries(in.mirrorEntries())...)
	errs = append(errs, validatePayloadNotBlocked(in)...)
	return errs
}

// validateRegistrySources checks images.config.openshift.io's spec.registrySources.
func validateRegistrySources(in Inputs) field.ErrorList {
	var errs field.ErrorList
	src := in.registrySources()
	p := specPath(in.imageObject()).Child("registrySources")
	for _, list := range []struct {
		name   string
		scopes []string
	}{
		{"insecureRegistries", src.InsecureRegistries},
		{"blockedRegistries", src.BlockedRegistries},
		{"allowedRegistries", src.AllowedRegistries},
	} {
		for i, scope := range list.scopes {
			switch {
			case scope == "":
				errs = append(errs, field.Required(p.Child(list.name).Index(i), "a registry scope is required"))
			case !validScope(scope):
				errs = append(errs, field.Invalid(p.Child(list.name).Index(i), scope, repositoryProblem(scope, true)))
			}
		}
	}
	if len(src.BlockedRegistries) > 0 && len(src.AllowedRegistries) > 0 {
		errs = append(errs, field.Forbidden(p.Child("allowedRegistries"),
			"only one of blockedRegistries or allowedRegistries may be set"))
	}
	for i, reg := range src.ContainerRuntimeSearchRegistries {
		if !validHostPort(reg) {
			errs = append(errs, field.Invalid(p.Child("containerRuntimeSearchRegistries").Index(i), reg,
				"must be a registry host name with an optional port"))
		}
	}
	return errs
}

// validateMirrorEntries checks the sources, mirrors and mirrorSourcePolicies of all mirror entries.
func validateMirrorEntries(entries []mirrorEntry) field.ErrorList {
	type firstPolicy struct {
		policy configv1.MirrorSourcePolicy
		object string
	}
	var errs field.ErrorList
	policies := map[string]firstPolicy{} // by source
	for _, e := range entries {
		switch {
		case e.source == "":
			errs = append(errs, field.Required(e.path.Child("source"), "a source repository is required"))
		case !validRepository(e.source):
			errs = append(errs, field.Invalid(e.path.Child("source"), e.source, repositoryProblem(e.source, false)))
		}
		switch e.policy {
		case "", configv1.AllowContactingSource, configv1.NeverContactSource:
			policy := e.effectivePolicy()
			if prev, ok := policies[e.source]; !ok {
				policies[e.source] = firstPolicy{policy: policy, object: e.object}
			} else if prev.policy != policy {
				errs = append(errs, field.Invalid(e.policyPath, string(policy), fmt.Sprintf(
					"mirrorSourcePolicy %s conflicts with %s set for the same source %q by %s",
					policy, prev.policy, e.source, prev.object)))
			}
		default:
			errs = append(errs, field.NotSupported(e.policyPath, e.policy,
				[]string{string(configv1.NeverContactSource), string(configv1.AllowContactingSource)}))
		}
		for j, m := range e.mirrors {
			mp := e.path.Child("mirrors").Index(j)
			switch {
			case m == "":
				errs = append(errs, field.Required(mp, "a mirror repository is required"))
			case !validRepository(m):
				errs = append(errs, field.Invalid(mp, m, repositoryProblem(m, false)))
			case m == e.source && e.policy == configv1.NeverContactSource:
				errs = append(errs, field.Invalid(mp, m,
					"the source cannot be one of the mirrors when mirrorSourcePolicy is NeverContactSource"))
			}
		}
	}
	return errs
}

// repositoryProblem explains why s is not a valid repository (or, with wildcardOK, scope).
func repositoryProblem(s string, wildcardOK bool) string {
	lastSlash := strings.LastIndex(s, "/")
	switch {
	case strings.Contains(s, "*") && !wildcardOK:
		return "wildcards are only supported in insecureRegistries, blockedRegistries and allowedRegistries"
	case strings.Contains(s, "*"):
		return "a wildcard scope must have the form *.domain"
	case strings.Contains(s, "@"):
		return "must not include a digest"
	case lastSlash >= 0 && strings.Contains(s[lastSlash+1:], ":"):
		return "must not include a tag"
	case wildcardOK:
		return "must have the form host[:port][/namespace...][/repository] or *.domain"
	default:
		return "must have the form host[:port][/namespace...][/repository]"
	}
}
