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

// DefaultClusterPolicies returns the policies every cluster has before the user adds any: the list the
// OpenShift 4.19 docs show in MachineConfiguration status (in that order), then the policies newer
// releases add for CRI-O signature policies and kubelet credential providers.
func DefaultClusterPolicies() opv1.NodeDisruptionPolicyClusterStatus {
	crio := "crio.service"
	return opv1.NodeDisruptionPolicyClusterStatus{
		Files: []opv1.NodeDisruptionPolicyStatusFile{
			file("/etc/mco/internal-registry-pull-secret.json", action(opv1.NoneStatusAction)),
			file("/var/lib/kubelet/config.json", action(opv1.NoneStatusAction)),
			file("/etc/machine-config-daemon/no-reboot/containers-gpg.pub", reload(crio)),
			file("/etc/containers/policy.json", reload(crio)),
			file("/etc/containers/registries.conf", action(opv1.SpecialStatusAction)),
			file("/etc/containers/registries.d", reload(crio)),
			file("/etc/nmstate/openshift", action(opv1.NoneStatusAction)),
			file("/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt",
				restart("coreos-update-ca-trust.service"), restart(crio)),
			file("/etc/crio/policies", reload(crio)),
			file("/etc/kubernetes/credential-providers", restart("kubelet.service")),
			file("/etc/systemd/system/kubelet.service.d/40-kubelet-crio-image-credential-provider.conf",
				action(opv1.DaemonReloadStatusAction), restart("kubelet.service")),
		},
		SSHKey: opv1.NodeDisruptionPolicyStatusSSHKey{Actions: []opv1.NodeDisruptionPolicyStatusAction{action(opv1.NoneStatusAction)}},
	}
}

// MergeClusterPolicies merges the user's policies into the defaults: a user file policy for exactly the
// same path replaces the default in place, otherwise it is appended in the user's order; units likewise
// by name; user ssh key actions, if any, replace the default ones.
func MergeClusterPolicies(spec opv1.NodeDisruptionPolicyConfig) opv1.NodeDisruptionPolicyClusterStatus {
	out := DefaultClusterPolicies()
	for _, f := range spec.Files {
		converted := opv1.NodeDisruptionPolicyStatusFile{Path: f.Path, Actions: convertActions(f.Actions)}
		replaced := false
		for i := range out.Files {
			if out.Files[i].Path == f.Path {
				out.Files[i] = converted
				replaced = true
				break
			}
		}
		if !replaced {
			out.Files = append(out.Files, converted)
		}
	}
	for _, u := range spec.Units {
		converted := opv1.NodeDisruptionPolicyStatusUnit{Name: u.Name, Actions: convertActions(u.Actions)}
		replaced := false
		for i := range out.Units {
			if out.Units[i].Name == u.Name {
				out.Units[i] = converted
				replaced = true
				break
			}
		}
		if !replaced {
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
