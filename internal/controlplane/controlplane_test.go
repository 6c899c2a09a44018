package controlplane_test

import (
	"context"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/internal/controlplane"
)

// TestJobGetsPodFromControllerManager creates a Job through the real API server and waits for the real
// kube-controller-manager's Job controller to create its pod; the test then plays the kubelet (there is
// none) by marking the pod Succeeded, and the Job controller completes the Job. Deleting the Job lets the
// real garbage collector remove the pod.
func TestJobGetsPodFromControllerManager(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := cp.Kube

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "build-layered-image-0", Namespace: metav1.NamespaceDefault},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](3),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "image-build", Image: "imagemode:latest"}},
			}},
		},
	}
	created := time.Now()
	if _, err := kube.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job.Name})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = pods.Items[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("no pod for the Job: %v", err)
	}
	t.Logf("Job → pod %s in %s", pod.Name, time.Since(created).Round(time.Millisecond))
	if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].Name != job.Name || pod.Spec.Containers[0].Name != "image-build" {
		t.Errorf("pod not made from the Job's template: owners %+v", pod.OwnerReferences)
	}

	now := metav1.Now()
	pod.Status.Phase = corev1.PodSucceeded
	pod.Status.StartTime = &now
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "image-build", Image: "imagemode:latest",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}}}
	if _, err := kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, &pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		j, err := kube.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("Job never completed: %v", err)
	}
	t.Logf("Job complete %s after creation", time.Since(created).Round(time.Millisecond))

	if err := kube.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("garbage collector never removed the pod: %v", err)
	}
}

// TestGarbageCollectorSeesCRDs checks that the CRDs are installed before kube-controller-manager starts: a
// MachineOSBuild owned by a MachineOSConfig is collected promptly when its owner is deleted.
func TestGarbageCollectorSeesCRDs(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := cp.Client
	mosc := &mcfgv1.MachineOSConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "worker"},
		Spec: mcfgv1.MachineOSConfigSpec{
			MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: "worker"},
			ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
			RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: "push-secret"},
			RenderedImagePushSpec:   "registry.example.com/ocp/os-image:latest",
			Containerfile:           []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.NoArch, Content: "FROM configs AS final\n"}},
		},
	}
	if err := c.Create(ctx, mosc); err != nil {
		t.Fatal(err)
	}
	mosb := &mcfgv1.MachineOSBuild{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-0123456789abcdef0123456789abcdef",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "machineconfiguration.openshift.io/v1",
				Kind: "MachineOSConfig", Name: mosc.Name, UID: mosc.UID, Controller: ptr.To(true)}}},
		Spec: mcfgv1.MachineOSBuildSpec{
			MachineConfig:         mcfgv1.MachineConfigReference{Name: "rendered-worker-1"},
			MachineOSConfig:       mcfgv1.MachineOSConfigReference{Name: mosc.Name},
			RenderedImagePushSpec: "registry.example.com/ocp/os-image:worker-0123456789abcdef0123456789abcdef",
		},
	}
	if err := c.Create(ctx, mosb); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, mosc, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(mosb), &mcfgv1.MachineOSBuild{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("owned MachineOSBuild not collected within 20s of its MachineOSConfig's deletion: %v", err)
	}
	t.Logf("MachineOSBuild collected %s after its owner's deletion", time.Since(start).Round(time.Millisecond))
}
