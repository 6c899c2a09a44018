package disruption

import (
	"context"
	"testing"
	"time"

	opv1 "github.com/openshift/api/operator/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/imagemode/imagemode/examples"
	"github.com/imagemode/imagemode/internal/controlplane"
)

// TestDocsPoliciesReachStatus applies each of the docs' node disruption policy examples with kubectl, as a
// user does, and checks the status the controller writes: defaults merged with the user's policies.
func TestDocsPoliciesReachStatus(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	require.NoError(t, err)
	require.NoError(t, (&PolicyStatusReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr))
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); <-done })

	// The cluster's MachineConfiguration exists before users edit it, as on OpenShift.
	require.NoError(t, cp.Client.Create(ctx, NewClusterMachineConfiguration()))
	waitStatus(ctx, t, cp, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
		return assert.ObjectsAreEqual(DefaultClusterPolicies(), s)
	})

	tests := []struct {
		doc   string
		check func(s opv1.NodeDisruptionPolicyClusterStatus) bool
	}{
		{examples.NodeDisruptionPolicySSHKey, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
			return len(s.SSHKey.Actions) == 4 && s.SSHKey.Actions[0].Type == opv1.DrainStatusAction &&
				s.SSHKey.Actions[3].Restart != nil && s.SSHKey.Actions[3].Restart.ServiceName == "crio.service"
		}},
		{examples.NodeDisruptionPolicyFiles, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
			n := len(s.Files)
			return n == len(DefaultClusterPolicies().Files)+2 && s.Files[n-2].Path == "/etc/chrony.conf" &&
				s.Files[n-2].Actions[0].Reload.ServiceName == "chronyd.service" && s.Files[n-1].Path == "/var/run" &&
				s.SSHKey.Actions[0].Type == opv1.NoneStatusAction // the previous apply's sshkey policy is gone
		}},
		{examples.NodeDisruptionPolicyUnits, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
			return len(s.Units) == 2 && s.Units[0].Name == "iri-registry.service" && s.Units[1].Name == "auditd.service" &&
				len(s.Units[1].Actions) == 4 && len(s.Files) == len(DefaultClusterPolicies().Files)
		}},
		{examples.NodeDisruptionPolicyRegistries, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
			return len(s.Files) == len(DefaultClusterPolicies().Files) && s.Files[3].Path == "/etc/containers/registries.conf" &&
				len(s.Files[3].Actions) == 1 && s.Files[3].Actions[0].Type == opv1.NoneStatusAction &&
				assert.ObjectsAreEqual(DefaultClusterPolicies().Units, s.Units)
		}},
		{overrideDefaults, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
			d := DefaultClusterPolicies()
			n := len(d.Files)
			return len(s.Files) == n+1 && s.Files[8].Path == "/etc/kubernetes/credential-providers" &&
				len(s.Files[8].Actions) == 1 && s.Files[8].Actions[0].Type == opv1.NoneStatusAction && s.Files[n].Path == "/etc/mine" &&
				len(s.Units) == 2 && s.Units[0].Name == "iri-registry.service" && len(s.Units[0].Actions) == 1 &&
				s.Units[0].Actions[0].Type == opv1.DrainStatusAction && s.Units[1].Name == "mine.service"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			raw := []byte(tc.doc)
			if tc.doc != overrideDefaults {
				var err error
				raw, err = examples.Doc(tc.doc)
				require.NoError(t, err)
			}
			out, err := cp.Kubectl(ctx, raw, "apply", "-f", "-")
			require.NoError(t, err, out)
			waitStatus(ctx, t, cp, tc.check)
		})
	}
}

// TestBadPoliciesOnAPIServer applies node disruption policies a user gets wrong (issue 14's bad input), with
// kubectl: a unit name without a unit type is refused by the API server naming the field; file paths no file
// can have (relative, with "..") are accepted by the schema, so the controller leaves them out of the status
// the daemons read and says why in the NodeDisruptionPolicyDegraded condition, naming each field; the valid
// policy next to them is in effect; fixing them clears the condition.
func TestBadPoliciesOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: cp.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}}) // a second manager in this binary
	require.NoError(t, err)
	require.NoError(t, (&PolicyStatusReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr))
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); <-done })
	require.NoError(t, cp.Client.Create(ctx, NewClusterMachineConfiguration()))

	policy := func(files, units string) []byte {
		return []byte(`apiVersion: operator.openshift.io/v1
kind: MachineConfiguration
metadata:
  name: cluster
spec:
  managementState: Managed
  nodeDisruptionPolicy:
    files:` + files + `
    units:` + units + "\n")
	}
	out, err := cp.Kubectl(ctx, policy(" []", `
    - name: auditd
      actions:
      - type: None`), "apply", "-f", "-")
	require.Error(t, err, "a unit name without a unit type is refused")
	assert.Contains(t, out, "spec.nodeDisruptionPolicy.units[0].name")
	assert.Contains(t, out, "Invalid ${SERVICETYPE} in service name")

	out, err = cp.Kubectl(ctx, policy(`
    - path: etc/chrony.conf
      actions:
      - type: None
    - path: /etc/../boot/loader.conf
      actions:
      - type: None
    - path: /etc/valid.conf
      actions:
      - type: None`, " []"), "apply", "-f", "-")
	require.NoError(t, err, out)
	waitStatus(ctx, t, cp, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
		n := len(s.Files)
		return n == len(DefaultClusterPolicies().Files)+1 && s.Files[n-1].Path == "/etc/valid.conf"
	})
	c := policyCondition(ctx, t, cp)
	assert.Equal(t, metav1.ConditionTrue, c.Status)
	assert.Equal(t, ReasonInvalidPolicy, c.Reason)
	assert.Equal(t, `MachineConfiguration cluster: ignoring 2 node disruption policies: `+
		`spec.nodeDisruptionPolicy.files[0].path "etc/chrony.conf": must be an absolute path; `+
		`spec.nodeDisruptionPolicy.files[1].path "/etc/../boot/loader.conf": must not contain ".."`, c.Message)

	out, err = cp.Kubectl(ctx, policy(`
    - path: /etc/chrony.conf
      actions:
      - type: None`, " []"), "apply", "-f", "-")
	require.NoError(t, err, out)
	waitStatus(ctx, t, cp, func(s opv1.NodeDisruptionPolicyClusterStatus) bool {
		return s.Files[len(s.Files)-1].Path == "/etc/chrony.conf"
	})
	c = policyCondition(ctx, t, cp)
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, ReasonPoliciesValid, c.Reason)
}

func policyCondition(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane) *metav1.Condition {
	t.Helper()
	var m opv1.MachineConfiguration
	require.NoError(t, cp.Client.Get(ctx, types.NamespacedName{Name: ClusterName}, &m))
	c := apimeta.FindStatusCondition(m.Status.Conditions, ConditionPolicyDegraded)
	require.NotNil(t, c, "no %s condition", ConditionPolicyDegraded)
	return c
}

func waitStatus(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, ok func(opv1.NodeDisruptionPolicyClusterStatus) bool) {
	t.Helper()
	var last opv1.MachineConfiguration
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := cp.Client.Get(ctx, types.NamespacedName{Name: ClusterName}, &last); err != nil {
			return false, err
		}
		return last.Status.ObservedGeneration == last.Generation && ok(last.Status.NodeDisruptionPolicyStatus.ClusterPolicies), nil
	})
	require.NoError(t, err, "status never matched; last: generation %d observed %d policies %+v", last.Generation,
		last.Status.ObservedGeneration, last.Status.NodeDisruptionPolicyStatus.ClusterPolicies)
}

// overrideDefaults overrides a default file and the default unit, and adds a file and a unit of its own, new
// ones listed first: the defaults keep their places, the new entries follow them.
const overrideDefaults = `apiVersion: operator.openshift.io/v1
kind: MachineConfiguration
metadata:
  name: cluster
spec:
  nodeDisruptionPolicy:
    files:
    - path: /etc/mine
      actions:
      - type: Drain
    - path: /etc/kubernetes/credential-providers
      actions:
      - type: None
    units:
    - name: mine.service
      actions:
      - type: None
    - name: iri-registry.service
      actions:
      - type: Drain
`
