package disruption

import (
	"fmt"
	"path"
	"slices"
	"strings"

	opv1 "github.com/openshift/api/operator/v1"
)

func reload(svc string) opv1.NodeDisruptionPolicyStatusAction {
	return opv1.NodeDisruptionPolicyStatusAction{Type: opv1.ReloadStatusAction, Reload: &opv1.ReloadService{ServiceName: opv1.NodeDisruptionPolicyServiceName(svc)}}
}

func restart(svc string) opv1.NodeDisruptionPolicyStatusAction {
	return opv1.NodeDisruptionPolicyStatusAction{Type: opv1.RestartStatusAction, Restart: &opv1.RestartService{ServiceName: opv1.NodeDisruptionPolicyServiceName(svc)}}
}

func action(t opv1.NodeDisruptionPolicyStatusActionType) opv1.NodeDisruptionPolicyStatusAction {
	return opv1.NodeDisruptionPolicyStatusAction{Type: t}
}

func file(path string, actions ...opv1.NodeDisruptionPolicyStatusAction) opv1.NodeDisruptionPolicyStatusFile {
	return opv1.NodeDisruptionPolicyStatusFile{Path: path, Actions: actions}
}

// ReferenceRelease is the reference release whose default node disruption policies DefaultClusterPolicies
// returns: the Machine Config Operator at commit 7ff337a4ffac (August 2026), the release this project pins:
// its compatibility facts are read from that commit, and go.mod's openshift/api is of the same month.
const ReferenceRelease = "machine-config-operator 7ff337a4ffac (August 2026)"

// Service names the default policies use.
const (
	crioService        = "crio.service"
	kubeletService     = "kubelet.service"
	updateCATrust      = "coreos-update-ca-trust.service"
	iriRegistryService = "iri-registry.service"
)

// docs419Files is the baseline: the default file policies the OpenShift 4.19 docs show in
// MachineConfiguration status.nodeDisruptionPolicyStatus.clusterPolicies, in their order.
func docs419Files() []opv1.NodeDisruptionPolicyStatusFile {
	return []opv1.NodeDisruptionPolicyStatusFile{
		file("/etc/mco/internal-registry-pull-secret.json", action(opv1.NoneStatusAction)),
		file("/var/lib/kubelet/config.json", action(opv1.NoneStatusAction)),
		file("/etc/machine-config-daemon/no-reboot/containers-gpg.pub", reload(crioService)),
		file("/etc/containers/policy.json", reload(crioService)),
		file("/etc/containers/registries.conf", action(opv1.SpecialStatusAction)),
		file("/etc/containers/registries.d", reload(crioService)),
		file("/etc/nmstate/openshift", action(opv1.NoneStatusAction)),
		file("/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt",
			restart(updateCATrust), restart(crioService)),
	}
}

// DefaultClusterPolicies returns the policies every cluster has before the user adds any: those of
// ReferenceRelease, in its order. They are the 4.19 docs' list (docs419Files) with that release's changes:
//   - /etc/mco/internal-registry-pull-secret.json is gone (the daemon keeps that file from the
//     ControllerConfig; no MachineConfig writes it);
//   - /etc/crio/policies (CRI-O's per-namespace signature policies) reloads crio, after registries.d;
//   - at the end: /etc/kubernetes/credential-providers restarts the kubelet; the kubelet's
//     40-kubelet-crio-image-credential-provider.conf drop-in reloads systemd and restarts the kubelet; the
//     internal release image registry's /etc/iri-registry and /usr/local/bin/load-registry-image.sh restart
//     iri-registry.service and its /etc/pki/ca-trust/source/anchors/iri-root-ca.crt restarts
//     coreos-update-ca-trust.service;
//   - a unit policy: iri-registry.service reloads systemd and restarts itself.
//
// SSH key changes do nothing (None).
func DefaultClusterPolicies() opv1.NodeDisruptionPolicyClusterStatus {
	var files []opv1.NodeDisruptionPolicyStatusFile
	for _, f := range docs419Files() {
		switch f.Path {
		case "/etc/mco/internal-registry-pull-secret.json":
			continue
		case "/etc/containers/registries.d":
			files = append(files, f, file("/etc/crio/policies", reload(crioService)))
			continue
		}
		files = append(files, f)
	}
	files = append(files,
		file("/etc/kubernetes/credential-providers", restart(kubeletService)),
		file("/etc/systemd/system/kubelet.service.d/40-kubelet-crio-image-credential-provider.conf",
			action(opv1.DaemonReloadStatusAction), restart(kubeletService)),
		file("/etc/iri-registry", restart(iriRegistryService)),
		file("/usr/local/bin/load-registry-image.sh", restart(iriRegistryService)),
		file("/etc/pki/ca-trust/source/anchors/iri-root-ca.crt", restart(updateCATrust)),
	)
	return opv1.NodeDisruptionPolicyClusterStatus{
		Files: files,
		Units: []opv1.NodeDisruptionPolicyStatusUnit{{
			Name:    iriRegistryService,
			Actions: []opv1.NodeDisruptionPolicyStatusAction{action(opv1.DaemonReloadStatusAction), restart(iriRegistryService)},
		}},
		SSHKey: opv1.NodeDisruptionPolicyStatusSSHKey{Actions: []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}},
	}
}

// MergeClusterPolicies merges the user's policies into the defaults as the reference does: the defaults
// first, in their order; a user file policy for exactly the path of one already in the list (a default, or
// an earlier user entry the API server would not have let through) replaces it in place, any other is
// appended after the defaults in the user's order; units likewise by name; the user's ssh key actions, if
// any, replace the default ones.
func MergeClusterPolicies(spec opv1.NodeDisruptionPolicyConfig) opv1.NodeDisruptionPolicyClusterStatus {
	out := DefaultClusterPolicies()
	for _, f := range spec.Files {
		converted := opv1.NodeDisruptionPolicyStatusFile{Path: f.Path, Actions: convertActions(f.Actions)}
		if i := slices.IndexFunc(out.Files, func(d opv1.NodeDisruptionPolicyStatusFile) bool { return d.Path == f.Path }); i >= 0 {
			out.Files[i] = converted
		} else {
			out.Files = append(out.Files, converted)
		}
	}
	for _, u := range spec.Units {
		converted := opv1.NodeDisruptionPolicyStatusUnit{Name: u.Name, Actions: convertActions(u.Actions)}
		if i := slices.IndexFunc(out.Units, func(d opv1.NodeDisruptionPolicyStatusUnit) bool { return d.Name == u.Name }); i >= 0 {
			out.Units[i] = converted
		} else {
			out.Units = append(out.Units, converted)
		}
	}
	if len(spec.SSHKey.Actions) > 0 {
		out.SSHKey = opv1.NodeDisruptionPolicyStatusSSHKey{Actions: convertActions(spec.SSHKey.Actions)}
	}
	return out
}

// convertActions turns spec actions into status actions (the same shapes; Special exists only in status).
func convertActions(in []opv1.NodeDisruptionPolicySpecAction) []opv1.NodeDisruptionPolicyStatusAction {
	out := make([]opv1.NodeDisruptionPolicyStatusAction, 0, len(in))
	for _, a := range in {
		s := opv1.NodeDisruptionPolicyStatusAction{Type: opv1.NodeDisruptionPolicyStatusActionType(a.Type)}
		if a.Reload != nil {
			s.Reload = &opv1.ReloadService{ServiceName: a.Reload.ServiceName}
		}
		if a.Restart != nil {
			s.Restart = &opv1.RestartService{ServiceName: a.Restart.ServiceName}
		}
		out = append(out, s)
	}
	return out
}

// ConditionPolicyDegraded is the MachineConfiguration condition that reports node disruption policies the
// controller refused (reason ReasonInvalidPolicy) or none (reason ReasonPoliciesValid).
const (
	ConditionPolicyDegraded = "NodeDisruptionPolicyDegraded"
	ReasonInvalidPolicy     = "InvalidNodeDisruptionPolicy"
	ReasonPoliciesValid     = "AsExpected"
)

// InvalidFilePolicies returns, for each file policy whose path no MachineConfig file can have — not
// absolute, or with a ".." element — the field and why, in spec order. (Trailing or repeated slashes are
// fine: policy paths are matched cleaned, as the reference does.) The API server's schema checks unit names
// and actions; it accepts any path.
func InvalidFilePolicies(spec opv1.NodeDisruptionPolicyConfig) []string {
	var out []string
	for i, f := range spec.Files {
		if why := invalidPolicyPath(f.Path); why != "" {
			out = append(out, fmt.Sprintf("spec.nodeDisruptionPolicy.files[%d].path %q: %s", i, f.Path, why))
		}
	}
	return out
}

func invalidPolicyPath(p string) string {
	switch {
	case !path.IsAbs(p):
		return "must be an absolute path"
	case slices.Contains(strings.Split(p, "/"), ".."):
		return `must not contain ".."`
	}
	return ""
}

// ValidFilePolicies returns spec without the file policies InvalidFilePolicies reports.
func ValidFilePolicies(spec opv1.NodeDisruptionPolicyConfig) opv1.NodeDisruptionPolicyConfig {
	out := spec
	out.Files = nil
	for _, f := range spec.Files {
		if invalidPolicyPath(f.Path) == "" {
			out.Files = append(out.Files, f)
		}
	}
	return out
}
