package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/imagemode/imagemode/daemon"
)

func TestDecide(t *testing.T) {
	c1, c2 := Target{Config: "rendered-worker-1"}, Target{Config: "rendered-worker-2"}
	l2 := Target{Config: "rendered-worker-2", Image: "r.example/os@sha256:bb"}
	reboot := []daemon.Action{{Type: daemon.ActionReboot}}
	reload := []daemon.Action{{Type: daemon.ActionReload, Service: "crio.service"}}
	ptr := func(t Target) *Target { return &t }
	tests := []struct {
		name     string
		facts    Facts
		want     StepKind
		rebooted bool
	}{
		{"no desired config", Facts{OnDisk: ptr(c1)}, StepWait, false},
		{"never configured", Facts{Desired: c1, BootID: "b1"}, StepUpdate, false},
		{"new config", Facts{Desired: c2, OnDisk: ptr(c1), BootID: "b1"}, StepUpdate, false},
		{"new image, same config", Facts{Desired: l2, OnDisk: ptr(c2), BootID: "b1"}, StepUpdate, false},
		{"leaving the layered pool", Facts{Desired: c2, OnDisk: ptr(l2), BootID: "b1"}, StepUpdate, false},
		{"in sync", Facts{Desired: c1, OnDisk: ptr(c1), Annotated: c1, State: "Done", BootID: "b1"}, StepValidate, false},
		{"in sync but degraded", Facts{Desired: c1, OnDisk: ptr(c1), State: "Degraded", BootID: "b1"}, StepValidate, false},
		{"drained for the update: uncordon", Facts{Desired: c2, OnDisk: ptr(c2), DesiredDrain: "drain-rendered-worker-2",
			LastAppliedDrain: "drain-rendered-worker-2", BootID: "b1"}, StepUncordon, false},
		{"drained for an older target: uncordon too", Facts{Desired: c2, OnDisk: ptr(c2), DesiredDrain: "drain-rendered-worker-1",
			LastAppliedDrain: "drain-rendered-worker-1", BootID: "b1"}, StepUncordon, false},
		{"uncordon pending", Facts{Desired: c2, OnDisk: ptr(c2), DesiredDrain: "uncordon-rendered-worker-2",
			LastAppliedDrain: "drain-rendered-worker-2", BootID: "b1"}, StepWait, false},
		{"uncordoned", Facts{Desired: c2, OnDisk: ptr(c2), DesiredDrain: "uncordon-rendered-worker-2",
			LastAppliedDrain: "uncordon-rendered-worker-2", BootID: "b1"}, StepValidate, false},
		{"killed while writing", Facts{Desired: c2, OnDisk: ptr(c1), BootID: "b1",
			Journal: &Journal{Target: c2, Phase: PhaseApplying, Actions: reboot}}, StepUpdate, false},
		{"killed before the reboot", Facts{Desired: c2, OnDisk: ptr(c2), BootID: "b1",
			Journal: &Journal{Target: c2, Phase: PhaseApplied, Actions: reboot, BootID: "b1"}}, StepReboot, false},
		{"rebooted", Facts{Desired: c2, OnDisk: ptr(c2), BootID: "b2",
			Journal: &Journal{Target: c2, Phase: PhaseApplied, Actions: reboot, BootID: "b1"}}, StepFinish, true},
		{"killed before the rebootless actions", Facts{Desired: c2, OnDisk: ptr(c2), BootID: "b1",
			Journal: &Journal{Target: c2, Phase: PhaseApplied, Actions: reload, BootID: "b1"}}, StepPostActions, false},
		{"rebooted anyway before the rebootless actions", Facts{Desired: c2, OnDisk: ptr(c2), BootID: "b2",
			Journal: &Journal{Target: c2, Phase: PhaseApplied, Actions: reload, BootID: "b1"}}, StepFinish, true},
		{"actions done", Facts{Desired: c2, OnDisk: ptr(c2), BootID: "b1",
			Journal: &Journal{Target: c2, Phase: PhaseActionsDone, Actions: reload, BootID: "b1"}}, StepFinish, false},
		{"target changed mid-update", Facts{Desired: l2, OnDisk: ptr(c2), BootID: "b1",
			Journal: &Journal{Target: c2, Phase: PhaseApplied, Actions: reboot, BootID: "b1"}}, StepUpdate, false},
		{"force file", Facts{Desired: c1, OnDisk: ptr(c1), Annotated: c1, State: "Done", BootID: "b1", Force: true}, StepUpdate, false},
		{"force file, forced update written", Facts{Desired: c1, OnDisk: ptr(c1), BootID: "b1", Force: true,
			Journal: &Journal{Target: c1, Phase: PhaseApplied, Actions: reboot, BootID: "b1"}}, StepReboot, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.facts)
			assert.Equal(t, tt.want, got.Kind, got.Why)
			assert.Equal(t, tt.rebooted, got.Rebooted)
			assert.NotEmpty(t, got.Why)
		})
	}
}

func TestMergePendingActions(t *testing.T) {
	reboot := daemon.Action{Type: daemon.ActionReboot}
	none := daemon.Action{Type: daemon.ActionNone}
	reloadCrio := daemon.Action{Type: daemon.ActionReload, Service: "crio.service"}
	restartKubelet := daemon.Action{Type: daemon.ActionRestart, Service: "kubelet.service"}
	tests := []struct {
		name    string
		pending *Journal
		planned []daemon.Action
		want    []daemon.Action
	}{
		{"no journal", nil, []daemon.Action{none}, []daemon.Action{none}},
		{"journal still writing owes nothing", &Journal{Phase: PhaseApplying, Actions: []daemon.Action{reboot}, BootID: "b1"},
			[]daemon.Action{none}, []daemon.Action{none}},
		{"owed reboot stays", &Journal{Phase: PhaseApplied, Actions: []daemon.Action{reboot}, BootID: "b1"},
			[]daemon.Action{reloadCrio}, []daemon.Action{reboot}},
		{"reboot already happened", &Journal{Phase: PhaseApplied, Actions: []daemon.Action{reboot}, BootID: "b0"},
			[]daemon.Action{reloadCrio}, []daemon.Action{reloadCrio}},
		{"owed actions merged without repeats", &Journal{Phase: PhaseApplied, Actions: []daemon.Action{reloadCrio}, BootID: "b1"},
			[]daemon.Action{restartKubelet, reloadCrio}, []daemon.Action{reloadCrio, restartKubelet}},
		{"new reboot wins", &Journal{Phase: PhaseApplied, Actions: []daemon.Action{reloadCrio}, BootID: "b1"},
			[]daemon.Action{reboot}, []daemon.Action{reboot}},
		{"only nones", &Journal{Phase: PhaseApplied, Actions: []daemon.Action{none}, BootID: "b1"},
			[]daemon.Action{none}, []daemon.Action{none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, MergePendingActions(tt.pending, "b1", tt.planned))
		})
	}
}
