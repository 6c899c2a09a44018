package registries

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

// SearchRegistriesDropInPath is the drop-in the image config's containerRuntimeSearchRegistries are written
// to, as the reference writes them; a registries.conf.d drop-in's unqualified-search-registries replace the
// main file's.
const SearchRegistriesDropInPath = "/etc/containers/registries.conf.d/01-image-searchRegistries.conf"

// Which files the image configuration and mirror sets need, decided as the reference decides them (its
// container-runtime-config controller): registries.conf when there are mirror sets or insecure or blocked
// registries; policy.json when there are allowed or blocked registries; the search-registries drop-in when
// containerRuntimeSearchRegistries is set (even to an empty list: the drop-in then empties the search list).
// Search registries alone write only the drop-in.

// NeedsRegistriesConf reports whether in changes registries.conf.
func NeedsRegistriesConf(in Inputs) bool {
	src := in.registrySources()
	return len(in.ICSPs) > 0 || len(in.IDMSs) > 0 || len(in.ITMSs) > 0 || src.InsecureRegistries != nil || len(src.BlockedRegistries) > 0
}

// NeedsPolicy reports whether in changes policy.json.
func NeedsPolicy(in Inputs) bool {
	src := in.registrySources()
	return len(src.AllowedRegistries) > 0 || len(src.BlockedRegistries) > 0
}

// NeedsSearchRegistries reports whether in has a search-registries drop-in.
func NeedsSearchRegistries(in Inputs) bool {
	return in.registrySources().ContainerRuntimeSearchRegistries != nil
}

// SearchRegistriesConf returns the drop-in for in's containerRuntimeSearchRegistries: a registries.conf (v2)
// holding only unqualified-search-registries, TOML-encoded as the reference encodes it (the v2 model with
// only that list set).
func SearchRegistriesConf(in Inputs) ([]byte, error) {
	if errs := Validate(in); len(errs) > 0 {
		return nil, fmt.Errorf("validating registry configuration: %w", errs.ToAggregate())
	}
	conf := sysregistriesv2.V2RegistriesConf{
		UnqualifiedSearchRegistries: slices.Clone(in.registrySources().ContainerRuntimeSearchRegistries),
	}
	if conf.UnqualifiedSearchRegistries == nil {
		conf.UnqualifiedSearchRegistries = []string{}
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(conf); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", SearchRegistriesDropInPath, err)
	}
	return buf.Bytes(), nil
}
