package rollout

import (
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type nodeOpt func(*corev1.Node)

// testNode is a ready, schedulable node with the given options applied.
func testNode(name string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{},
			CreationTimestamp: metav1.NewTime(t0)},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// on: the daemon finished config (current = desired = config, state Done).
func on(config string) nodeOpt { return withConfigs(config, config, wellknown.NodeStateDone) }

func withConfigs(current, desired, state string) nodeOpt {
	return func(n *corev1.Node) {
		set := func(k, v string) {
			if v != "" {
				n.Annotations[k] = v
			}
		}
		set(wellknown.CurrentConfigAnnotation, current)
		set(wellknown.DesiredConfigAnnotation, desired)
		set(wellknown.StateAnnotation, state)
	}
}

func withImages(current, desired string) nodeOpt {
	return func(n *corev1.Node) {
		if current != "" {
			n.Annotations[wellknown.CurrentImageAnnotation] = current
		}
		if desired != "" {
			n.Annotations[wellknown.DesiredImageAnnotation] = desired
		}
	}
}

func withAnnotation(k, v string) nodeOpt { return func(n *corev1.Node) { n.Annotations[k] = v } }

func withLabel(k, v string) nodeOpt { return func(n *corev1.Node) { n.Labels[k] = v } }

func inZone(z string) nodeOpt { return withLabel(corev1.LabelTopologyZone, z) }

func createdAt(d time.Duration) nodeOpt {
	return func(n *corev1.Node) { n.CreationTimestamp = metav1.NewTime(t0.Add(d)) }
}

func withCondition(t corev1.NodeConditionType, s corev1.ConditionStatus) nodeOpt {
	return func(n *corev1.Node) {
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == t {
				n.Status.Conditions[i].Status = s
				return
			}
		}
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: t, Status: s})
	}
}

func notReady() nodeOpt { return withCondition(corev1.NodeReady, corev1.ConditionFalse) }

func cordoned() nodeOpt { return func(n *corev1.Node) { n.Spec.Unschedulable = true } }

func tainted() nodeOpt {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, UpdateInProgressTaint()) }
}

func workerRole() nodeOpt { return withLabel("node-role.kubernetes.io/worker", "") }

// testPool is a pool selecting nodes by labels, at the given rendered config.
func testPool(name string, selector map[string]string, config string) *mcfgv1.MachineConfigPool {
	p := &mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{wellknown.RoleLabel: name}},
			Configuration:         mcfgv1.MachineConfigPoolStatusConfiguration{ObjectReference: corev1.ObjectReference{Name: config}},
		},
	}
	if selector != nil {
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: selector}
	}
	return p
}

func workerPool(config string) *mcfgv1.MachineConfigPool {
	return testPool("worker", map[string]string{"node-role.kubernetes.io/worker": ""}, config)
}

func withMaxUnavailable(p *mcfgv1.MachineConfigPool, v intstr.IntOrString) *mcfgv1.MachineConfigPool {
	p.Spec.MaxUnavailable = &v
	return p
}

func paused(p *mcfgv1.MachineConfigPool) *mcfgv1.MachineConfigPool {
	p.Spec.Paused = true
	return p
}

func mosc(name, pool, image string) *mcfgv1.MachineOSConfig {
	return &mcfgv1.MachineOSConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       mcfgv1.MachineOSConfigSpec{MachineConfigPool: mcfgv1.MachineConfigPoolReference{Name: pool}},
		Status:     mcfgv1.MachineOSConfigStatus{CurrentImagePullSpec: mcfgv1.ImageDigestFormat(image)},
	}
}

func mosb(name, config, rendered string, state osbuild.State, digest string) *mcfgv1.MachineOSBuild {
	return &mcfgv1.MachineOSBuild{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0)},
		Spec: mcfgv1.MachineOSBuildSpec{
			MachineConfig:   mcfgv1.MachineConfigReference{Name: rendered},
			MachineOSConfig: mcfgv1.MachineOSConfigReference{Name: config},
		},
		Status: mcfgv1.MachineOSBuildStatus{
			Conditions:            osbuild.Conditions(state, nil, metav1.NewTime(t0)),
			DigestedImagePushSpec: mcfgv1.ImageDigestFormat(digest),
		},
	}
}

func names(nodes []*corev1.Node) []string {
	out := []string{}
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}
