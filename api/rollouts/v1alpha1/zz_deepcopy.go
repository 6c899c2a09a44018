package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Deepcopy functions, written out (the project has no code generator); TestDeepCopy fills every field
// at random and checks that a copy is equal and shares nothing with the original.

// DeepCopyObject implements runtime.Object.
func (in *RolloutPolicy) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopy returns a deep copy.
func (in *RolloutPolicy) DeepCopy() *RolloutPolicy {
	if in == nil {
		return nil
	}
	out := new(RolloutPolicy)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *RolloutPolicy) DeepCopyInto(out *RolloutPolicy) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopyObject implements runtime.Object.
func (in *RolloutPolicyList) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopy returns a deep copy.
func (in *RolloutPolicyList) DeepCopy() *RolloutPolicyList {
	if in == nil {
		return nil
	}
	out := new(RolloutPolicyList)
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]RolloutPolicy, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *RolloutPolicySpec) DeepCopyInto(out *RolloutPolicySpec) {
	*out = *in
	if in.Waves != nil {
		out.Waves = make([]Wave, len(in.Waves))
		for i := range in.Waves {
			in.Waves[i].DeepCopyInto(&out.Waves[i])
		}
	}
	in.HealthChecks.DeepCopyInto(&out.HealthChecks)
	if in.MaintenanceWindows != nil {
		out.MaintenanceWindows = make([]MaintenanceWindow, len(in.MaintenanceWindows))
		for i := range in.MaintenanceWindows {
			in.MaintenanceWindows[i].DeepCopyInto(&out.MaintenanceWindows[i])
		}
	}
	if in.PreStage != nil {
		out.PreStage = new(PreStage)
		*out.PreStage = *in.PreStage
	}
	if in.PromoteWave != nil {
		out.PromoteWave = new(int32)
		*out.PromoteWave = *in.PromoteWave
	}
}

// DeepCopyInto copies in into out.
func (in *Wave) DeepCopyInto(out *Wave) {
	*out = *in
	if in.Nodes != nil {
		out.Nodes = append([]string(nil), in.Nodes...)
	}
	if in.NodeSelector != nil {
		out.NodeSelector = in.NodeSelector.DeepCopy()
	}
	out.Count = copyIntOrString(in.Count)
	out.MaxUnavailable = copyIntOrString(in.MaxUnavailable)
	if in.SoakTime != nil {
		out.SoakTime = new(metav1.Duration)
		*out.SoakTime = *in.SoakTime
	}
}

func copyIntOrString(in *intstr.IntOrString) *intstr.IntOrString {
	if in == nil {
		return nil
	}
	out := *in
	return &out
}

// DeepCopyInto copies in into out.
func (in *HealthChecks) DeepCopyInto(out *HealthChecks) {
	*out = *in
	if in.Commands != nil {
		out.Commands = append([]HealthCommand(nil), in.Commands...)
	}
	if in.Units != nil {
		out.Units = append([]string(nil), in.Units...)
	}
	if in.Timeout != nil {
		out.Timeout = new(metav1.Duration)
		*out.Timeout = *in.Timeout
	}
}

// DeepCopyInto copies in into out.
func (in *MaintenanceWindow) DeepCopyInto(out *MaintenanceWindow) {
	*out = *in
	if in.Days != nil {
		out.Days = append([]string(nil), in.Days...)
	}
}

// DeepCopyInto copies in into out.
func (in *RolloutPolicyStatus) DeepCopyInto(out *RolloutPolicyStatus) {
	*out = *in
	if in.Waves != nil {
		out.Waves = make([]WaveStatus, len(in.Waves))
		for i := range in.Waves {
			in.Waves[i].DeepCopyInto(&out.Waves[i])
		}
	}
	if in.Nodes != nil {
		out.Nodes = make([]NodeStatus, len(in.Nodes))
		for i := range in.Nodes {
			in.Nodes[i].DeepCopyInto(&out.Nodes[i])
		}
	}
	if in.FailedGate != nil {
		out.FailedGate = new(GateFailure)
		in.FailedGate.DeepCopyInto(out.FailedGate)
	}
	if in.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(in.Conditions))
		for i := range in.Conditions {
			in.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies in into out.
func (in *WaveStatus) DeepCopyInto(out *WaveStatus) {
	*out = *in
	out.StartedAt = copyTime(in.StartedAt)
	out.HealthyAt = copyTime(in.HealthyAt)
	out.CompletedAt = copyTime(in.CompletedAt)
}

// DeepCopyInto copies in into out.
func (in *NodeStatus) DeepCopyInto(out *NodeStatus) {
	*out = *in
	out.Since = copyTime(in.Since)
}

// DeepCopyInto copies in into out.
func (in *GateFailure) DeepCopyInto(out *GateFailure) {
	*out = *in
	in.Time.DeepCopyInto(&out.Time)
}

func copyTime(in *metav1.Time) *metav1.Time {
	if in == nil {
		return nil
	}
	return in.DeepCopy()
}

// DeepCopy returns a deep copy.
func (in *RolloutPolicyStatus) DeepCopy() *RolloutPolicyStatus {
	if in == nil {
		return nil
	}
	out := new(RolloutPolicyStatus)
	in.DeepCopyInto(out)
	return out
}
