package prunecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/prune"
)

const (
	oldUnused = "rendered-worker-00000000000000000000000000000001"
	inUse     = "rendered-worker-00000000000000000000000000000002"
	newUnused = "rendered-worker-00000000000000000000000000000003"
)

// objects is a worker pool using one of three rendered configs, plus a user config.
func objects() []client.Object {
	pool := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: "worker", UID: "pool-uid"}}
	pool.Spec.Configuration.Name = inUse
	pool.Status.Configuration.Name = inUse
	objs := []client.Object{pool, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "99-user", Labels: map[string]string{wellknown.RoleLabel: "worker"}}}}
	for i, name := range []string{oldUnused, inUse, newUnused} {
		objs = append(objs, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			CreationTimestamp: metav1.Unix(int64(1000+i), 0),
			Annotations:       map[string]string{wellknown.GeneratedByControllerVersionAnnotation: "v1"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "machineconfiguration.openshift.io/v1", Kind: "MachineConfigPool",
				Name: "worker", UID: "pool-uid", Controller: ptr.To(true)}},
		}})
	}
	return objs
}

type result struct {
	stdout, stderr string
	err            error
}

func run(t *testing.T, c client.Client, args ...string) result {
	t.Helper()
	cmd := NewCommand(func() (client.Client, error) { return c, nil })
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

func remaining(t *testing.T, c client.Client) []string {
	t.Helper()
	var list mcfgv1.MachineConfigList
	require.NoError(t, c.List(context.Background(), &list))
	var names []string
	for _, mc := range list.Items {
		names = append(names, mc.Name)
	}
	return names
}

func TestPruneCommand(t *testing.T) {
	all := []string{"99-user", oldUnused, inUse, newUnused}
	failDelete := func(name string, err error) interceptor.Funcs {
		return interceptor.Funcs{Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if obj.GetName() == name {
				return err
			}
			return c.Delete(ctx, obj, opts...)
		}}
	}
	tests := []struct {
		name          string
		args          []string
		funcs         interceptor.Funcs
		wantStdout    string
		wantStderr    string
		wantErr       string
		wantRemaining []string
		check         func(t *testing.T, r result)
	}{
		{name: "dry run by default",
			args:          []string{"renderedmachineconfigs"},
			wantStdout:    "dry-run deleting rendered MachineConfig " + oldUnused + "\ndry-run deleting rendered MachineConfig " + newUnused + "\n",
			wantStderr:    prune.DryRunNotice + "\nSkip dry-run deleting rendered MachineConfig " + inUse + " as it's currently in use\n",
			wantRemaining: all},
		{name: "confirm deletes the unused ones",
			args:          []string{"renderedmachineconfigs", "--confirm"},
			wantStdout:    "deleting rendered MachineConfig " + oldUnused + "\ndeleting rendered MachineConfig " + newUnused + "\n",
			wantStderr:    "Skip deleting rendered MachineConfig " + inUse + " as it's currently in use\n",
			wantRemaining: []string{"99-user", inUse}},
		{name: "count and pool flags",
			args:          []string{"renderedmachineconfigs", "-p", "worker", "--count=1", "--confirm"},
			wantStdout:    "deleting rendered MachineConfig " + oldUnused + "\n",
			wantRemaining: []string{"99-user", inUse, newUnused}},
		{name: "a failed deletion does not stop the others but fails the command",
			args:          []string{"renderedmachineconfigs", "--confirm"},
			funcs:         failDelete(oldUnused, apierrors.NewForbidden(schema.GroupResource{Group: "machineconfiguration.openshift.io", Resource: "machineconfigs"}, oldUnused, errors.New("no"))),
			wantStdout:    "deleting rendered MachineConfig " + newUnused + "\n",
			wantStderr:    "Skip deleting rendered MachineConfig " + inUse + " as it's currently in use\n",
			wantErr:       "deleting rendered MachineConfig " + oldUnused + `: machineconfigs.machineconfiguration.openshift.io "` + oldUnused + `" is forbidden: no`,
			wantRemaining: []string{"99-user", oldUnused, inUse}},
		{name: "a config deleted meanwhile is not an error",
			args:          []string{"renderedmachineconfigs", "--confirm"},
			funcs:         failDelete(oldUnused, apierrors.NewNotFound(schema.GroupResource{Resource: "machineconfigs"}, oldUnused)),
			wantStdout:    "deleting rendered MachineConfig " + oldUnused + "\ndeleting rendered MachineConfig " + newUnused + "\n",
			wantStderr:    "Skip deleting rendered MachineConfig " + inUse + " as it's currently in use\n",
			wantRemaining: []string{"99-user", oldUnused, inUse}},
		{name: "json",
			args:          []string{"renderedmachineconfigs", "-o", "json", "--confirm"},
			funcs:         failDelete(newUnused, apierrors.NewInternalError(errors.New("boom"))),
			wantErr:       "deleting rendered MachineConfig " + newUnused + ": Internal error occurred: boom",
			wantRemaining: []string{"99-user", inUse, newUnused},
			check: func(t *testing.T, r result) {
				var report prune.PruneReport
				require.NoError(t, json.Unmarshal([]byte(r.stdout), &report))
				assert.False(t, report.DryRun)
				require.Len(t, report.Items, 3)
				assert.Equal(t, prune.Item{Name: oldUnused, Pool: "worker", Created: "1970-01-01T00:16:40Z", Reasons: []string{}, Action: prune.Delete, Result: prune.Deleted}, report.Items[0])
				assert.Equal(t, []string{"pool worker spec.configuration", "pool worker status.configuration"}, report.Items[1].Reasons)
				assert.Equal(t, prune.Skip, report.Items[1].Action)
				assert.Equal(t, prune.Failed, report.Items[2].Result)
				assert.Equal(t, "deleting rendered MachineConfig "+newUnused+": Internal error occurred: boom", report.Items[2].Error)
				assert.Empty(t, r.stderr, "json mode prints no text lines")
			}},
		{name: "unknown pool", args: []string{"renderedmachineconfigs", "--pool-name", "infra"},
			wantErr: "MachineConfigPool with name 'infra' not found", wantRemaining: all},
		{name: "negative count", args: []string{"renderedmachineconfigs", "--count", "-1"}, wantErr: "count cannot be negative", wantRemaining: all},
		{name: "unsupported output", args: []string{"renderedmachineconfigs", "-o", "yaml"},
			wantErr: `unsupported output format "yaml" (allowed: json)`, wantRemaining: all},
		{name: "listing nodes forbidden",
			args: []string{"renderedmachineconfigs", "--confirm"},
			funcs: interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				if _, ok := list.(*corev1.NodeList); ok {
					return apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("no"))
				}
				return c.List(ctx, list, opts...)
			}},
			wantErr: `listing Nodes: nodes is forbidden: no`, wantRemaining: all},
		{name: "MachineOSBuilds and MachineConfigNodes not served",
			args: []string{"renderedmachineconfigs", "--confirm"},
			funcs: interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				switch list.(type) {
				case *mcfgv1.MachineOSBuildList, *mcfgv1.MachineConfigNodeList:
					return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "machineconfiguration.openshift.io", Kind: "MachineOSBuild"}}
				}
				return c.List(ctx, list, opts...)
			}},
			wantStdout:    "deleting rendered MachineConfig " + oldUnused + "\ndeleting rendered MachineConfig " + newUnused + "\n",
			wantStderr:    "Skip deleting rendered MachineConfig " + inUse + " as it's currently in use\n",
			wantRemaining: []string{"99-user", inUse}},
		{name: "MachineOSBuilds forbidden",
			args: []string{"renderedmachineconfigs", "--confirm"},
			funcs: interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				if _, ok := list.(*mcfgv1.MachineOSBuildList); ok {
					return apierrors.NewForbidden(schema.GroupResource{Group: "machineconfiguration.openshift.io", Resource: "machineosbuilds"}, "", errors.New("no"))
				}
				return c.List(ctx, list, opts...)
			}},
			wantErr: "listing MachineOSBuilds: machineosbuilds.machineconfiguration.openshift.io is forbidden: no", wantRemaining: all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objects()...).WithInterceptorFuncs(tt.funcs).Build()
			r := run(t, c, tt.args...)
			if tt.wantErr != "" {
				require.EqualError(t, r.err, tt.wantErr)
			} else {
				require.NoError(t, r.err)
			}
			if tt.check != nil {
				tt.check(t, r)
			} else {
				assert.Equal(t, tt.wantStdout, r.stdout)
				assert.Equal(t, tt.wantStderr, r.stderr)
			}
			assert.ElementsMatch(t, tt.wantRemaining, remaining(t, c))
		})
	}
}

func TestPruneCommandReportsEveryFailure(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objects()...).WithInterceptorFuncs(interceptor.Funcs{
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			return apierrors.NewServiceUnavailable("down")
		},
	}).Build()
	r := run(t, c, "renderedmachineconfigs", "--confirm")
	require.Error(t, r.err)
	msg := r.err.Error()
	assert.Contains(t, msg, "deleting rendered MachineConfig "+oldUnused+": down")
	assert.Contains(t, msg, "deleting rendered MachineConfig "+newUnused+": down")
	assert.Empty(t, r.stdout, "nothing was deleted")
}

func TestListCommand(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string
		wantErr    string
		check      func(t *testing.T, stdout string)
	}{
		{name: "list",
			args: []string{"renderedmachineconfigs", "list"},
			wantStdout: "\n" + strings.Repeat(" ", 37) + "worker\n" +
				"\n" + oldUnused + " -- 1970-01-01 00:16:40 +0000 UTC (Currently in use: false)\n" +
				"\n" + inUse + " -- 1970-01-01 00:16:41 +0000 UTC (Currently in use: true)\n" +
				"\n" + newUnused + " -- 1970-01-01 00:16:42 +0000 UTC (Currently in use: false)\n"},
		{name: "list --in-use", args: []string{"renderedmachineconfigs", "list", "--in-use"},
			wantStdout: "worker\nstatus: " + inUse + "\nspec: " + inUse + "\n"},
		{name: "list --in-use unknown pool", args: []string{"renderedmachineconfigs", "list", "--in-use", "-p", "infra"},
			wantErr: "MachineConfigPool with name 'infra' not found"},
		{name: "list unknown pool", args: []string{"renderedmachineconfigs", "list", "-p", "infra"},
			wantErr: "MachineConfigPool with name 'infra' not found"},
		{name: "list json", args: []string{"renderedmachineconfigs", "list", "-o", "json"},
			check: func(t *testing.T, stdout string) {
				var report prune.ListReport
				require.NoError(t, json.Unmarshal([]byte(stdout), &report))
				require.Len(t, report.Items, 3)
				assert.Equal(t, inUse, report.Items[1].Name)
				assert.True(t, report.Items[1].InUse)
				assert.Empty(t, report.Items[1].Action)
			}},
		{name: "list --in-use json", args: []string{"renderedmachineconfigs", "list", "--in-use", "-o", "json"},
			check: func(t *testing.T, stdout string) {
				assert.JSONEq(t, `{"pools":[{"name":"worker","status":"`+inUse+`","spec":"`+inUse+`"}]}`, stdout)
			}},
		{name: "unknown subcommand", args: []string{"nosuch"}, wantErr: `unknown command "nosuch" for "prune"`},
		{name: "list does not take --confirm", args: []string{"renderedmachineconfigs", "list", "--confirm"},
			wantErr: "unknown flag: --confirm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objects()...).Build()
			r := run(t, c, tt.args...)
			if tt.wantErr != "" {
				require.EqualError(t, r.err, tt.wantErr)
				return
			}
			require.NoError(t, r.err)
			if tt.check != nil {
				tt.check(t, r.stdout)
			} else {
				assert.Equal(t, tt.wantStdout, r.stdout)
			}
			assert.Empty(t, r.stderr)
			assert.Len(t, remaining(t, c), 4, "list deletes nothing")
		})
	}
}
