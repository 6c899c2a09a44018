package registries

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.podman.io/image/v5/signature"
)

// Policy returns the policy.json for in: base (empty means DefaultPolicyJSON) with the allowed and blocked
// registries of in applied, or base unchanged when neither is set. allowedRegistries make the default reject and
// accept each allowed scope (and keep docker-daemon accepting anything); blockedRegistries keep the default
// accepting anything and reject each blocked scope. Scopes go to the "docker" transport and, when they have
// fewer than three "/", to "atomic"; scopes base already lists for other registries are kept. A blocked scope
// covering the release payload repository (allowed by Validate only because the payload has an unblocked
// digest mirror) stays blocked in registries.conf but the payload repository is accepted here, so that its
// mirrors can be used.
//
// in is validated first (see Validate); validation errors are returned as the error.
func Policy(base []byte, in Inputs) ([]byte, error) {
	if errs := Validate(in); len(errs) > 0 {
		return nil, fmt.Errorf("validating registry configuration: %w", errs.ToAggregate())
	}
	if len(bytes.TrimSpace(base)) == 0 {
		base = []byte(DefaultPolicyJSON)
	}
	src := in.registrySources()
	if len(src.AllowedRegistries) == 0 && len(src.BlockedRegistries) == 0 {
		return slices.Clone(base), nil
	}
	var policy signature.Policy
	if err := json.Unmarshal(base, &policy); err != nil {
		return nil, fmt.Errorf("parsing base policy.json: %w", err)
	}

	scopes := signature.PolicyTransportScopes{}
	if len(src.AllowedRegistries) > 0 {
		policy.Default = signature.PolicyRequirements{signature.NewPRReject()}
		for _, scope := range src.AllowedRegistries {
			scopes[scope] = signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}
		}
	}
	if len(src.BlockedRegistries) > 0 {
		policy.Default = signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}
		payload := payloadRepository(in)
		for _, scope := range src.BlockedRegistries {
			if payload != "" && scopeNested(payload, scope) {
				scopes[payload] = signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}
				if scope == payload {
					continue
				}
			}
			scopes[scope] = signature.PolicyRequirements{signature.NewPRReject()}
		}
	}

	if policy.Transports == nil {
		policy.Transports = map[string]signature.PolicyTransportScopes{}
	}
	for _, transport := range []string{"docker", "atomic"} {
		merged := policy.Transports[transport]
		if merged == nil {
			merged = signature.PolicyTransportScopes{}
		}
		for scope, reqs := range scopes {
			if transport == "atomic" && strings.Count(scope, "/") >= 3 {
				continue // the atomic transport does not support scopes this deep
			}
			merged[scope] = reqs
		}
		policy.Transports[transport] = merged
	}
	if len(src.AllowedRegistries) > 0 {
		daemon := policy.Transports["docker-daemon"]
		if daemon == nil {
			daemon = signature.PolicyTransportScopes{}
			policy.Transports["docker-daemon"] = daemon
		}
		if _, ok := daemon[""]; !ok {
			daemon[""] = signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}
		}
	}

	out, err := json.MarshalIndent(&policy, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding policy.json: %w", err)
	}
	return append(out, '\n'), nil
}
