package registries

import (
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePayloadNotBlocked rejects every blocked scope that covers the release payload repository unless the
// payload can still be pulled from a digest mirror that is not blocked itself.
func validatePayloadNotBlocked(in Inputs) field.ErrorList {
	blocked := in.registrySources().BlockedRegistries
	if in.ReleaseImage == "" || len(blocked) == 0 {
		return nil
	}
	ref, err := reference.ParseNormalizedNamed(in.ReleaseImage)
	if err != nil {
		return field.ErrorList{field.Invalid(field.NewPath("releaseImage"), in.ReleaseImage,
			fmt.Sprintf("parsing the release payload pull spec: %v", err))}
	}
	var errs field.ErrorList
	p := specPath(in.imageObject()).Child("registrySources", "blockedRegistries")
	mirrored, checked := false, false
	for i, scope := range blocked {
		if !scopeNested(ref.Name(), scope) {
			continue
		}
		if !checked {
			mirrored, checked = payloadHasUnblockedMirror(in, ref), true
		}
		if !mirrored {
			errs = append(errs, field.Invalid(p.Index(i), scope, fmt.Sprintf(
				"cannot block the repository the release payload is pulled from (%s): it has no digest mirror that is not blocked",
				ref.Name())))
		}
	}
	return errs
}

// payloadRepository returns the release payload's repository name, or "" when there is no release image or it
// does not parse (Validate reports the latter).
func payloadRepository(in Inputs) string {
	if in.ReleaseImage == "" {
		return ""
	}
	ref, err := reference.ParseNormalizedNamed(in.ReleaseImage)
	if err != nil {
		return ""
	}
	return ref.Name()
}

// payloadHasUnblockedMirror reports whether pulling ref with the digest mirrors (ICSPs, IDMSs) and the
// insecure and blocked registries of in would try at least one mirror outside every blocked scope.
func payloadHasUnblockedMirror(in Inputs, ref reference.Named) bool {
	src := in.registrySources()
	conf := sysregistriesv2.V2RegistriesConf{}
	applyRegistryConfig(&conf, mergeMirrorSets(in.mirrorEntries(), digestMirrors), nil,
		src.InsecureRegistries, src.BlockedRegistries)
	repo := ref.Name()
	reg := mostSpecificRegistry(&conf, repo)
	if reg == nil || isWildcardScope(registryScope(reg)) {
		return false
	}
	if _, digested := ref.(reference.Canonical); !digested {
		return false // conf only has digest mirrors, which a pull by tag does not use
	}
	suffix := repo[len(registryScope(reg)):]
	for _, m := range reg.Mirrors {
		location := m.Location + suffix
		usable := true
		for _, scope := range src.BlockedRegistries {
			if scopeNested(location, scope) {
				usable = false
				break
			}
		}
		if usable {
			return true
		}
	}
	return false
}

// mostSpecificRegistry returns the entry registries.conf uses for repo: the longest matching scope, where a
// wildcard scope matches as long as repo's host; the first entry wins a tie.
func mostSpecificRegistry(conf *sysregistriesv2.V2RegistriesConf, repo string) *sysregistriesv2.Registry {
	var best *sysregistriesv2.Registry
	bestLen := -1
	host, _, _ := strings.Cut(repo, "/")
	for i := range conf.Registries {
		scope := registryScope(&conf.Registries[i])
		if !scopeNested(repo, scope) {
			continue
		}
		n := len(scope)
		if isWildcardScope(scope) {
			n = len(host)
		}
		if n > bestLen {
			best, bestLen = &conf.Registries[i], n
		}
	}
	return best
}
