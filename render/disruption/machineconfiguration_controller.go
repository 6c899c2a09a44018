package disruption

import (
	"context"
	"fmt"
	"strings"

	opv1 "github.com/openshift/api/operator/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// ClusterName is the name of the cluster's single MachineConfiguration.
const ClusterName = "cluster"

// PolicyStatusReconciler writes MachineConfiguration/cluster status.nodeDisruptionPolicyStatus from its
// spec.nodeDisruptionPolicy (merged with the defaults) and sets status.observedGeneration, which the daemon
// waits for before it trusts the policies.
type PolicyStatusReconciler struct {
	Client client.Client
}

// Reconcile brings the status of MachineConfiguration/cluster up to date; it writes only on a change.
func (r *PolicyStatusReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	mc := &opv1.MachineConfiguration{}
	if err := r.Client.Get(ctx, req.NamespacedName, mc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// File policies no file can match are refused (left out of the status the daemons read) and reported.
	want := opv1.NodeDisruptionPolicyStatus{ClusterPolicies: MergeClusterPolicies(ValidFilePolicies(mc.Spec.NodeDisruptionPolicy))}
	cond := metav1.Condition{Type: ConditionPolicyDegraded, Status: metav1.ConditionFalse, Reason: ReasonPoliciesValid,
		Message: "every node disruption policy is in effect", ObservedGeneration: mc.Generation}
	if invalid := InvalidFilePolicies(mc.Spec.NodeDisruptionPolicy); len(invalid) > 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, ReasonInvalidPolicy
		cond.Message = fmt.Sprintf("MachineConfiguration %s: ignoring %d node disruption policies: %s", mc.Name, len(invalid), strings.Join(invalid, "; "))
	}
	old := apimeta.FindStatusCondition(mc.Status.Conditions, ConditionPolicyDegraded)
	sameCond := old != nil && old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message && old.ObservedGeneration == cond.ObservedGeneration
	if equality.Semantic.DeepEqual(mc.Status.NodeDisruptionPolicyStatus, want) && mc.Status.ObservedGeneration == mc.Generation && sameCond {
		return ctrl.Result{}, nil
	}
	before := mc.DeepCopy()
	mc.Status.NodeDisruptionPolicyStatus = want
	mc.Status.ObservedGeneration = mc.Generation
	apimeta.SetStatusCondition(&mc.Status.Conditions, cond)
	if err := r.Client.Status().Patch(ctx, mc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing node disruption policy status of machineconfiguration %s: %w", mc.Name, err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager watches MachineConfiguration/cluster (status writes of its own do not trigger it).
func (r *PolicyStatusReconciler) SetupWithManager(mgr ctrl.Manager) error {
	isCluster := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == ClusterName })
	return ctrl.NewControllerManagedBy(mgr).
		Named("node-disruption-policy-status").
		For(&opv1.MachineConfiguration{}, builder.WithPredicates(isCluster, predicate.GenerationChangedPredicate{})).
		Complete(r)
}

// NewClusterMachineConfiguration returns MachineConfiguration/cluster as a cluster has it before users edit
// it (managed, no policies of its own). It is unstructured: the typed struct would serialize empty policy
// lists the CRD rejects.
func NewClusterMachineConfiguration() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"managementState": string(opv1.Managed)},
	}}
	u.SetAPIVersion(opv1.GroupVersion.String())
	u.SetKind("MachineConfiguration")
	u.SetName(ClusterName)
	return u
}
