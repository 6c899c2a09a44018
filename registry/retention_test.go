package registry

import (
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// Build states, by the type of their True condition ("" for a build that has not started).
const (
	stInitial     mcfgv1.BuildProgress = ""
	stPrepared                         = mcfgv1.MachineOSBuildPrepared
	stBuilding                         = mcfgv1.MachineOSBuilding
	stSucceeded                        = mcfgv1.MachineOSBuildSucceeded
	stFailed                           = mcfgv1.MachineOSBuildFailed
	stInterrupted                      = mcfgv1.MachineOSBuildInterrupted
)

// conditions returns the five progress conditions with only s True, as the build controller writes them.
func conditions(s mcfgv1.BuildProgress) []metav1.Condition {
	var out []metav1.Condition
	for _, t := range []mcfgv1.BuildProgress{stPrepared, stBuilding, stFailed, stInterrupted, stSucceeded} {
		status := metav1.ConditionFalse
		if t == s {
			status = metav1.ConditionTrue
		}
		out = append(out, metav1.Condition{Type: string(t), Status: status, Reason: string(t)})
	}
	return out
}

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// build returns a build of MachineOSConfig "worker" in state s, created at minute created and finished
// at minute ended (no buildEnd when ended < 0).
func build(name string, s mcfgv1.BuildProgress, created, ended int) *mcfgv1.MachineOSBuild {
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{
		Name:              name,
		CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(created) * time.Minute)),
	}}
	b.Spec.MachineOSConfig.Name = "worker"
	b.Status.Conditions = conditions(s)
	if ended >= 0 {
		end := metav1.NewTime(t0.Add(time.Duration(ended) * time.Minute))
		b.Status.BuildEnd = &end
	}
	return b
}

func workerMOSC(annotations map[string]string, statusBuild string) *mcfgv1.MachineOSConfig {
	c := &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "worker", Annotations: annotations}}
	if statusBuild != "" {
		c.Status.MachineOSBuild = &mcfgv1.ObjectReference{Name: statusBuild}
	}
	return c
}

func TestSelectForRetention(t *testing.T) {
	t.Parallel()
	ok := stSucceeded
	five := []*mcfgv1.MachineOSBuild{
		build("b1", ok, 1, 2), build("b2", ok, 3, 4), build("b3", ok, 5, 6), build("b4", ok, 7, 8), build("b5", ok, 9, 10),
	}
	tests := []struct {
		name       string
		builds     []*mcfgv1.MachineOSBuild
		mosc       *mcfgv1.MachineOSConfig
		keep       int
		wantKeep   []string
		wantDelete []string
		wantErr    string
	}{
		{
			name:       "default keeps the three newest successful builds",
			builds:     five,
			mosc:       workerMOSC(nil, ""),
			keep:       -1,
			wantKeep:   []string{"b3", "b4", "b5"},
			wantDelete: []string{"b1", "b2"},
		},
		{
			name:       "the current build is kept besides the newest ones (annotation)",
			builds:     five,
			mosc:       workerMOSC(map[string]string{wellknown.CurrentMachineOSBuildAnnotation: "b1"}, ""),
			keep:       2,
			wantKeep:   []string{"b1", "b4", "b5"},
			wantDelete: []string{"b2", "b3"},
		},
		{
			name:       "the current build is kept (status)",
			builds:     five,
			mosc:       workerMOSC(nil, "b2"),
			keep:       0,
			wantKeep:   []string{"b2"},
			wantDelete: []string{"b1", "b3", "b4", "b5"},
		},
		{
			name: "non-terminal builds are never selected; failed and interrupted ones are",
			builds: []*mcfgv1.MachineOSBuild{
				build("initial", stInitial, 1, -1),
				build("prepared", stPrepared, 2, -1),
				build("building", stBuilding, 3, -1),
				build("failed", stFailed, 4, 5),
				build("interrupted", stInterrupted, 6, 7),
				build("ok", ok, 8, 9),
			},
			mosc:       workerMOSC(nil, ""),
			keep:       0,
			wantKeep:   []string{"building", "initial", "prepared"},
			wantDelete: []string{"failed", "interrupted", "ok"},
		},
		{
			name:       "a failed current build is kept",
			builds:     []*mcfgv1.MachineOSBuild{build("failed", stFailed, 1, 2), build("ok", ok, 3, 4)},
			mosc:       workerMOSC(map[string]string{wellknown.CurrentMachineOSBuildAnnotation: "failed"}, ""),
			keep:       1,
			wantKeep:   []string{"failed", "ok"},
			wantDelete: nil,
		},
		{
			name: "newest by buildEnd, then creationTimestamp, then name",
			builds: []*mcfgv1.MachineOSBuild{
				build("late-end-early-create", ok, 1, 50),
				build("early-end-late-create", ok, 40, 41),
				build("same-end-newer-create", ok, 30, 45),
				build("same-end-older-create", ok, 20, 45),
				build("tie-a", ok, 10, 12),
				build("tie-b", ok, 10, 12),
				build("no-end", ok, 60, -1),
			},
			mosc:       workerMOSC(nil, ""),
			keep:       5,
			wantKeep:   []string{"early-end-late-create", "late-end-early-create", "same-end-newer-create", "same-end-older-create", "tie-a"},
			wantDelete: []string{"no-end", "tie-b"},
		},
		{
			name: "builds of other MachineOSConfigs and builds being deleted are left alone",
			builds: func() []*mcfgv1.MachineOSBuild {
				other := build("infra-1", ok, 1, 2)
				other.Spec.MachineOSConfig.Name = "infra"
				labelled := build("labelled", ok, 3, 4)
				labelled.Spec.MachineOSConfig.Name = ""
				labelled.Labels = map[string]string{wellknown.MachineOSConfigLabel: "worker"}
				gone := build("gone", ok, 5, 6)
				gone.DeletionTimestamp = &metav1.Time{Time: t0}
				return []*mcfgv1.MachineOSBuild{other, labelled, gone}
			}(),
			mosc:       workerMOSC(nil, ""),
			keep:       0,
			wantDelete: []string{"labelled"},
		},
		{
			name:       "the annotation overrides the default",
			builds:     five,
			mosc:       workerMOSC(map[string]string{wellknown.RetainBuildsAnnotation: "1"}, ""),
			keep:       3,
			wantKeep:   []string{"b5"},
			wantDelete: []string{"b1", "b2", "b3", "b4"},
		},
		{
			name:    "a negative annotation is an error naming object and annotation",
			builds:  five,
			mosc:    workerMOSC(map[string]string{wellknown.RetainBuildsAnnotation: "-1"}, ""),
			keep:    3,
			wantErr: `reading annotation imagemode.io/retain-builds of MachineOSConfig "worker": "-1" is not a non-negative integer`,
		},
		{
			name:    "a non-numeric annotation is an error",
			builds:  five,
			mosc:    workerMOSC(map[string]string{wellknown.RetainBuildsAnnotation: "three"}, ""),
			keep:    3,
			wantErr: `reading annotation imagemode.io/retain-builds of MachineOSConfig "worker": "three" is not a non-negative integer`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keep, del, err := SelectForRetention(tc.builds, tc.mosc, tc.keep)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantKeep, keep, "keep")
			assert.Equal(t, tc.wantDelete, del, "delete")
		})
	}
}
