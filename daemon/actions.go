package daemon

import (
	"path"
	"strings"

	opv1 "github.com/openshift/api/operator/v1"

	"github.com/imagemode/imagemode/render/registries"
)

// ActionType is what the daemon does after writing a config change, with the names of node disruption
// policy actions. Special does not appear here: Actions resolves it.
type ActionType string

// The action types, in the order they are performed.
const (
	ActionReboot       ActionType = "Reboot"
	ActionDrain        ActionType = "Drain"
	ActionDaemonReload ActionType = "DaemonReload"
	ActionReload       ActionType = "Reload"
	ActionRestart      ActionType = "Restart"
	ActionNone         ActionType = "None"
)

// CRIOService is the unit a registries.conf change reloads.
const CRIOService = "crio.service"

// RegistriesConfPath is the file whose policy action is Special.
const RegistriesConfPath = "/etc/containers/registries.conf"

// Action is one post-change action; Service is set for Reload and Restart.
type Action struct {
	Type    ActionType
	Service string
}

func (a Action) String() string {
	if a.Service == "" {
		return string(a.Type)
	}
	return string(a.Type) + " " + a.Service
}

// Actions decides what a node does after applying diff, following the cluster's node disruption policies
// (MachineConfiguration status.nodeDisruptionPolicyStatus.clusterPolicies):
//   - an OS image, kernel argument, kernel type, extensions or FIPS change is a reboot;
//   - each added, changed or removed file takes the actions of the policy with the longest path equal to
//     it or a directory above it ("/etc/foo" covers "/etc/foo/bar", not "/etc/foobar"); a file no policy
//     covers is a reboot;
//   - each added, updated or removed unit takes the actions of the policy with its exact name; an unknown
//     unit is a reboot;
//   - an ssh key or password hash change takes the sshkey actions;
//   - a Special action (registries.conf) is a reload of crio when render/registries.IsSafeChange says the
//     change from oldRegistriesConf to newRegistriesConf is safe, else a drain and a reload of crio (a
//     registries.conf that does not parse counts as unsafe).
//
// The result is [Reboot] alone when any action is a reboot, [None] when nothing but None remains, and
// otherwise, without None and without repeats: Drain, DaemonReload, then reloads and restarts in the order
// first met (files by path, then units by name, then ssh keys). A Reload of a service that is also restarted
// is dropped: the restart reloads it.
func Actions(diff *ConfigDiff, policies opv1.NodeDisruptionPolicyClusterStatus, oldRegistriesConf, newRegistriesConf []byte) []Action {
	reboot := []Action{{Type: ActionReboot}}
	if diff == nil || diff.Empty() {
		return []Action{{Type: ActionNone}}
	}
	if diff.OSChanged() {
		return reboot
	}
	var collected []opv1.NodeDisruptionPolicyStatusAction
	for _, p := range diff.Files.All() {
		f, ok := closestFilePolicy(p, policies.Files)
		if !ok {
			return reboot
		}
		collected = append(collected, f.Actions...)
	}
	for _, name := range diff.Units.All() {
		found := false
		for _, u := range policies.Units {
			if string(u.Name) == name {
				collected = append(collected, u.Actions...)
				found = true
				break
			}
		}
		if !found {
			return reboot
		}
	}
	if diff.Passwd() {
		collected = append(collected, policies.SSHKey.Actions...)
	}
	return normalize(collected, func() bool {
		safe, _, err := registries.IsSafeChange(oldRegistriesConf, newRegistriesConf)
		return err == nil && safe
	})
}

// closestFilePolicy returns the policy with the longest path equal to p or a directory above it.
func closestFilePolicy(p string, files []opv1.NodeDisruptionPolicyStatusFile) (opv1.NodeDisruptionPolicyStatusFile, bool) {
	p = path.Clean(p)
	best, bestLen := -1, -1
	for i, f := range files {
		pp := path.Clean(f.Path)
		if !coveredBy(p, pp) || len(pp) <= bestLen {
			continue
		}
		best, bestLen = i, len(pp)
	}
	if best < 0 {
		return opv1.NodeDisruptionPolicyStatusFile{}, false
	}
	return files[best], true
}

// coveredBy reports whether the clean path p is dir or lies below it.
func coveredBy(p, dir string) bool {
	if p == dir || dir == "/" {
		return true
	}
	return strings.HasPrefix(p, dir+"/")
}

// normalize applies the precedence and ordering rules of Actions to policy actions; registriesSafe is
// consulted only when a Special action is present.
func normalize(in []opv1.NodeDisruptionPolicyStatusAction, registriesSafe func() bool) []Action {
	var (
		drain, daemonReload bool
		services            []Action // reloads and restarts, first met first, without repeats
	)
	addService := func(a Action) {
		for _, s := range services {
			if s == a {
				return
			}
		}
		services = append(services, a)
	}
	for _, a := range in {
		switch a.Type {
		case opv1.RebootStatusAction:
			return []Action{{Type: ActionReboot}}
		case opv1.DrainStatusAction:
			drain = true
		case opv1.DaemonReloadStatusAction:
			daemonReload = true
		case opv1.ReloadStatusAction:
			if a.Reload != nil {
				addService(Action{Type: ActionReload, Service: string(a.Reload.ServiceName)})
			}
		case opv1.RestartStatusAction:
			if a.Restart != nil {
				addService(Action{Type: ActionRestart, Service: string(a.Restart.ServiceName)})
			}
		case opv1.SpecialStatusAction:
			if !registriesSafe() {
				drain = true
			}
			addService(Action{Type: ActionReload, Service: CRIOService})
		case opv1.NoneStatusAction:
		default:
			// An action type this daemon does not know: be safe.
			return []Action{{Type: ActionReboot}}
		}
	}
	var out []Action
	if drain {
		out = append(out, Action{Type: ActionDrain})
	}
	if daemonReload {
		out = append(out, Action{Type: ActionDaemonReload})
	}
	for _, s := range services {
		if s.Type == ActionReload && containsAction(services, Action{Type: ActionRestart, Service: s.Service}) {
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return []Action{{Type: ActionNone}}
	}
	return out
}

func containsAction(actions []Action, a Action) bool {
	for _, x := range actions {
		if x == a {
			return true
		}
	}
	return false
}

// NeedsDrain reports whether the node must be drained before the actions: a reboot or a drain among them.
func NeedsDrain(actions []Action) bool {
	for _, a := range actions {
		if a.Type == ActionReboot || a.Type == ActionDrain {
			return true
		}
	}
	return false
}
