package registries

import (
	"strings"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// scopeNested reports whether scope sub is super itself or lies inside it: a namespace or repository below a
// non-wildcard super ("quay.io/ns" inside "quay.io", but not "quay.io.example.com" nor "quay.io:443"), or, for a
// wildcard super "*.example.com", any scope whose host (port and path ignored) is a subdomain of example.com,
// including narrower wildcards such as "*.foo.example.com".
func scopeNested(sub, super string) bool {
	if sub == super {
		return true
	}
	if len(sub) > len(super) && strings.HasPrefix(sub, super) && sub[len(super)] == '/' {
		return true
	}
	if !strings.HasPrefix(super, "*.") {
		return false
	}
	host, _, _ := strings.Cut(sub, "/")
	host, _, _ = strings.Cut(host, ":")
	return strings.HasSuffix(host, super[1:])
}

// registryScope is the scope a registries.conf entry is keyed and matched by: its prefix, else its location.
func registryScope(r *sysregistriesv2.Registry) string {
	if r.Prefix != "" {
		return r.Prefix
	}
	return r.Location
}

// isWildcardScope reports whether scope has the "*.domain" form.
func isWildcardScope(scope string) bool {
	return strings.HasPrefix(scope, "*.")
}

// validRepository reports whether s is host[:port][/component...] as the mirror-set APIs define it: DNS labels
// for the host, lowercase path components, no wildcard, tag or digest.
func validRepository(s string) bool {
	hostPort, path, hasPath := strings.Cut(s, "/")
	if !validHostPort(hostPort) {
		return false
	}
	if !hasPath {
		return true
	}
	for _, c := range strings.Split(path, "/") {
		if !validPathComponent(c) {
			return false
		}
	}
	return true
}

// validScope reports whether s is a registries.conf scope as the image config accepts it: a repository (see
// validRepository) or a wildcard "*.domain".
func validScope(s string) bool {
	if isWildcardScope(s) {
		return validDomain(s[2:])
	}
	return validRepository(s)
}

// validHostPort reports whether s is a DNS name with an optional numeric port.
func validHostPort(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
		return false
	}
	return validDomain(host)
}

// validDomain reports whether s is one or more dot-separated labels of letters, digits and inner hyphens.
func validDomain(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if label == "" || !isAlnum(label[0]) || !isAlnum(label[len(label)-1]) {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

// validPathComponent reports whether c is runs of [a-z0-9] joined by ".", "_", "__" or one or more "-".
func validPathComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && isLowerAlnum(c[i]) {
			i++
		}
		if i == start {
			return false // empty component, or a separator not followed by a run
		}
		if i == len(c) {
			return true
		}
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

func isAlnum(b byte) bool {
	return isLowerAlnum(b) || (b >= 'A' && b <= 'Z')
}

func isLowerAlnum(b byte) bool {
	return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')
}
