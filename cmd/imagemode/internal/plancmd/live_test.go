package plancmd

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/kubeclient"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/render/containerruntime"
	"github.com/imagemode/imagemode/render/disruption"
	"github.com/imagemode/imagemode/render/renderer"
)

// TestPlanPredictsTheRenderController plans changes against a real API server, applies them with kubectl and
// checks that the render controllers (render and generated registries, as imagemode-controller runs them)
// point the pool at exactly the rendered config the plan predicted.
func TestPlanPredictsTheRenderController(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cp.Client

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	require.NoError(t, err)
	require.NoError(t, (&renderer.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("render"), Version: "test"}).SetupWithManager(mgr))
	require.NoError(t, (&containerruntime.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("registries"), Version: "test"}).SetupWithManager(mgr))
	mgrCtx, stopMgr := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stopMgr(); <-done })

	icsp := &operatorv1alpha1.ImageContentSourcePolicy{}
	icsp.Name = "mirror-registry"
	icsp.Spec.RepositoryDigestMirrors = []operatorv1alpha1.RepositoryDigestMirrors{
		{Source: "registry.example.com/team", Mirrors: []string{"mirror-a.example.net/team", "mirror-b.example.net/team"}}}
	worker := fixturePool("worker", "worker")
	worker.Labels = map[string]string{wellknown.BuiltInPoolLabel: ""}
	for _, o := range []client.Object{renderer.NewControllerConfig(baseOSImage, "", "4.19.0-live"), icsp,
		baseConfig("00-worker", "worker"), disruption.NewClusterMachineConfiguration(), worker,
		fixtureNode("worker-0", []string{"worker"}, nil)} {
		require.NoError(t, c.Create(ctx, o))
	}
	current := waitPoolConfig(ctx, t, c, "worker", func(p *mcfgv1.MachineConfigPool) bool {
		return len(p.Spec.Configuration.Source) == 2 // 00-worker and 99-worker-generated-registries
	})
	// The node runs the pool's config.
	require.NoError(t, c.Patch(ctx, fixtureNode("worker-0", nil, map[string]string{wellknown.CurrentConfigAnnotation: current}),
		client.Merge))

	kube := &kubeclient.Options{Kubeconfig: cp.KubeconfigPath}
	for _, tc := range []struct {
		file    string
		actions []string
	}{
		{"idms.yaml", []string{"Reload crio.service"}},
		{"nmstate.yaml", []string{"None"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cmd := NewCommand(ReaderFromOptions(kube))
			var out jsonBuffer
			cmd.SetOut(&out)
			cmd.SetArgs([]string{"-f", "testdata/changes/" + tc.file, "-o", "json"})
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			require.NoError(t, cmd.ExecuteContext(ctx))
			var plan Plan
			require.NoError(t, json.Unmarshal(out.Bytes(), &plan), out.String())
			require.Len(t, plan.Pools, 1, out.String())
			pp := plan.Pools[0]
			assert.Equal(t, current, pp.CurrentConfig)
			require.True(t, pp.ConfigChanged, out.String())
			require.Len(t, pp.Nodes, 1)
			assert.Equal(t, tc.actions, pp.Nodes[0].Actions)
			assert.Empty(t, plan.RenderedConfigs, "live plans print no rendered config")

			_, err := cp.Kubectl(ctx, nil, "apply", "-f", "testdata/changes/"+tc.file)
			require.NoError(t, err)
			got := waitPoolConfig(ctx, t, c, "worker", func(p *mcfgv1.MachineConfigPool) bool {
				return p.Spec.Configuration.Name != current
			})
			// Let the controllers settle: the name must stay what they rendered.
			time.Sleep(time.Second)
			got = waitPoolConfig(ctx, t, c, "worker", func(*mcfgv1.MachineConfigPool) bool { return true })
			assert.Equal(t, pp.NewConfig, got, "the render controller's rendered config is the one the plan predicted")
			current = got
			require.NoError(t, c.Patch(ctx, fixtureNode("worker-0", nil, map[string]string{wellknown.CurrentConfigAnnotation: current}),
				client.Merge))
		})
	}
}

type jsonBuffer struct{ b []byte }

func (j *jsonBuffer) Write(p []byte) (int, error) { j.b = append(j.b, p...); return len(p), nil }
func (j *jsonBuffer) Bytes() []byte               { return j.b }
func (j *jsonBuffer) String() string              { return string(j.b) }

// waitPoolConfig waits until the pool's spec.configuration satisfies ok and returns its name.
func waitPoolConfig(ctx context.Context, t *testing.T, c client.Client, pool string, ok func(*mcfgv1.MachineConfigPool) bool) string {
	t.Helper()
	var name string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := &mcfgv1.MachineConfigPool{}
		if err := c.Get(ctx, types.NamespacedName{Name: pool}, p); err != nil {
			return false, err
		}
		name = p.Spec.Configuration.Name
		return name != "" && ok(p), nil
	})
	require.NoError(t, err, fmt.Sprintf("pool %s: spec.configuration is %q", pool, name))
	return name
}
