package buildscmd

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Description is what `builds describe` shows (and prints with -o json).
type Description struct {
	Name            string `json:"name"`
	MachineOSConfig string `json:"machineOSConfig"`
	Pool            string `json:"pool,omitempty"`
	RenderedConfig  string `json:"renderedConfig"`
	PushSpec        string `json:"pushSpec"`
	// Image is status.digestedImagePushSpec: the pushed image by digest.
	Image      string             `json:"image,omitempty"`
	State      string             `json:"state"`
	Created    *metav1.Time       `json:"created,omitempty"`
	BuildStart *metav1.Time       `json:"buildStart,omitempty"`
	BuildEnd   *metav1.Time       `json:"buildEnd,omitempty"`
	Duration   string             `json:"duration,omitempty"` // buildEnd - buildStart
	Queued     string             `json:"queued,omitempty"`   // buildStart - creation (waiting for its Job)
	Conditions []metav1.Condition `json:"conditions"`
	// Signature is set for a build with a signing key.
	Signature *Signature `json:"signature,omitempty"`
	Job       Job        `json:"job"`
	Log       *Log       `json:"log,omitempty"`
	Events    []Event    `json:"events"`
}

// Job is the build Job and its attempts (pods: active, succeeded and failed).
type Job struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Found     bool   `json:"found"`
	Active    int32  `json:"active"`
	Succeeded int32  `json:"succeeded"`
	Failed    int32  `json:"failed"`
	Attempts  int32  `json:"attempts"`
}

// Signature is how a build's image is signed.
type Signature struct {
	// Secret is the signing key Secret the build names.
	Secret string `json:"secret"`
	// Key is the fingerprint of the key the image is signed with ("" until signed).
	Key string `json:"key,omitempty"`
	// Provenance is the image's signed provenance (its attestation, repo@sha256:…), once stored.
	Provenance string `json:"provenance,omitempty"`
	// Status is the Signed condition's: "True" once the signature is stored, "False" when the key could not
	// be used, "" while the build runs; Message is the condition's.
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// Log is the kept build log's ConfigMap.
type Log struct {
	ConfigMap string `json:"configMap"`
	Pod       string `json:"pod"`
	Complete  bool   `json:"complete"`
	Bytes     int    `json:"bytes"`
}

// Event is an event of the build or of its Job.
type Event struct {
	Time    metav1.Time `json:"time"`
	Type    string      `json:"type"`
	Reason  string      `json:"reason"`
	Object  string      `json:"object"`
	Message string      `json:"message"`
}

func newDescribeCommand(newClients clients.Func, o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a MachineOSBuild's conditions, timings, Job and attempts, image and events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := printers.CheckOutput(output, printers.JSON); err != nil {
				return err
			}
			cs, err := newClients()
			if err != nil {
				return err
			}
			d, err := Describe(cmd.Context(), cs.Client, o.Namespace, args[0])
			if err != nil {
				return err
			}
			if output != "" {
				return printers.Write(cmd.OutOrStdout(), output, d)
			}
			return WriteDescription(cmd.OutOrStdout(), d)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json (default: text)")
	return cmd
}

// Describe reads a build, its Job, its log ConfigMap and the events of both.
func Describe(ctx context.Context, c client.Reader, namespace, name string) (*Description, error) {
	mosb := &mcfgv1.MachineOSBuild{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mosb); err != nil {
		return nil, fmt.Errorf("reading machineosbuild %s: %w", name, err)
	}
	s := mosb.Status
	d := &Description{Name: mosb.Name, MachineOSConfig: mosb.Spec.MachineOSConfig.Name,
		Pool: mosb.Labels[wellknown.TargetMachineConfigPoolLabel], RenderedConfig: mosb.Spec.MachineConfig.Name,
		PushSpec: string(mosb.Spec.RenderedImagePushSpec), Image: string(s.DigestedImagePushSpec), State: printers.BuildState(mosb),
		Created: &mosb.CreationTimestamp, BuildStart: s.BuildStart, BuildEnd: s.BuildEnd, Conditions: s.Conditions,
		Job: Job{Namespace: namespace, Name: osbuild.JobName(mosb.Name)}, Events: []Event{}}
	if d.Conditions == nil {
		d.Conditions = []metav1.Condition{}
	}
	if secret := mosb.Annotations[osbuild.SigningKeySecretAnnotation]; secret != "" {
		d.Signature = &Signature{Secret: secret, Key: mosb.Annotations[osbuild.SignatureKeyAnnotation],
			Provenance: mosb.Annotations[osbuild.ProvenanceAnnotation]}
		if c := apimeta.FindStatusCondition(s.Conditions, osbuild.ConditionSigned); c != nil {
			d.Signature.Status, d.Signature.Message = string(c.Status), c.Message
		}
	}
	if s.BuildStart != nil && s.BuildEnd != nil {
		d.Duration = s.BuildEnd.Sub(s.BuildStart.Time).String()
	}
	if s.BuildStart != nil && !s.BuildStart.Before(&mosb.CreationTimestamp) {
		d.Queued = s.BuildStart.Sub(mosb.CreationTimestamp.Time).String()
	}
	if s.Builder != nil && s.Builder.Job != nil {
		d.Job.Namespace, d.Job.Name = s.Builder.Job.Namespace, s.Builder.Job.Name
	}
	job := &batchv1.Job{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: d.Job.Namespace, Name: d.Job.Name}, job); {
	case err == nil:
		d.Job.Found = true
		d.Job.Active, d.Job.Succeeded, d.Job.Failed = job.Status.Active, job.Status.Succeeded, job.Status.Failed
		d.Job.Attempts = job.Status.Active + job.Status.Succeeded + job.Status.Failed
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading job %s/%s: %w", d.Job.Namespace, d.Job.Name, err)
	}
	cm := &corev1.ConfigMap{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: osbuild.BuildLogCMName(mosb.Name)}, cm); {
	case err == nil:
		d.Log = &Log{ConfigMap: cm.Name, Pod: cm.Annotations[osbuild.BuildLogPodAnnotation],
			Complete: cm.Annotations[osbuild.BuildLogCompleteAnnotation] == "true", Bytes: len(cm.Data[osbuild.BuildLogKey])}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading configmap %s/%s: %w", namespace, osbuild.BuildLogCMName(mosb.Name), err)
	}
	for _, q := range []struct{ namespace, kind, name string }{
		{"", "MachineOSBuild", mosb.Name}, {d.Job.Namespace, "Job", d.Job.Name},
	} {
		var events corev1.EventList
		if err := c.List(ctx, &events, client.InNamespace(q.namespace),
			client.MatchingFields{"involvedObject.kind": q.kind, "involvedObject.name": q.name}); err != nil {
			return nil, fmt.Errorf("listing the events of %s %s: %w", strings.ToLower(q.kind), q.name, err)
		}
		for _, e := range events.Items {
			d.Events = append(d.Events, Event{Time: eventTime(&e), Type: e.Type, Reason: e.Reason,
				Object: strings.ToLower(q.kind) + "/" + q.name, Message: strings.TrimSpace(e.Message)})
		}
	}
	sort.SliceStable(d.Events, func(i, j int) bool { return d.Events[i].Time.Before(&d.Events[j].Time) })
	return d, nil
}

// eventTime is when an event last happened, whichever API wrote it.
func eventTime(e *corev1.Event) metav1.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return metav1.NewTime(e.Series.LastObservedTime.Time)
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.NewTime(e.EventTime.Time)
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp
	}
	return e.CreationTimestamp
}

// WriteDescription prints a description in the style of kubectl describe.
func WriteDescription(out io.Writer, d *Description) error {
	var b strings.Builder
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-17s %s\n", k+":", v)
		}
	}
	field("Name", d.Name)
	field("MachineOSConfig", d.MachineOSConfig)
	field("Pool", d.Pool)
	field("Rendered config", d.RenderedConfig)
	field("Push spec", d.PushSpec)
	field("Image", printers.OrNone(d.Image))
	field("State", d.State)
	field("Created", printers.Time(d.Created))
	field("Build start", printers.Time(d.BuildStart))
	field("Build end", printers.Time(d.BuildEnd))
	field("Queued", d.Queued)
	field("Duration", d.Duration)
	job := d.Job.Namespace + "/" + d.Job.Name
	if d.Job.Found {
		job += fmt.Sprintf(" (attempts: %d; active %d, succeeded %d, failed %d)", d.Job.Attempts, d.Job.Active, d.Job.Succeeded, d.Job.Failed)
	} else {
		job += " (gone)"
	}
	field("Job", job)
	if sig := d.Signature; sig != nil {
		v := "not yet signed"
		switch {
		case sig.Status == string(metav1.ConditionTrue) && sig.Key != "":
			v = "sigstore, key " + sig.Key
		case sig.Status == string(metav1.ConditionFalse):
			v = "failed: " + sig.Message
		}
		field("Signature", fmt.Sprintf("%s (secret %s)", v, sig.Secret))
		field("Provenance", sig.Provenance)
	}
	if d.Log != nil {
		state := "in progress"
		if d.Log.Complete {
			state = "complete"
		}
		field("Log", fmt.Sprintf("configmap %s (pod %s, %s, %d bytes)", d.Log.ConfigMap, printers.OrNone(d.Log.Pod), state, d.Log.Bytes))
	} else {
		field("Log", "<none>")
	}
	b.WriteString("Conditions:\n")
	if len(d.Conditions) == 0 {
		b.WriteString("  <none>\n")
	} else {
		t := printers.NewTable("TYPE", "STATUS", "REASON", "MESSAGE", "LAST TRANSITION")
		for _, c := range d.Conditions {
			t.AddRow(c.Type, string(c.Status), c.Reason, c.Message, printers.Time(&c.LastTransitionTime))
		}
		if err := indent(&b, t); err != nil {
			return err
		}
	}
	b.WriteString("Events:\n")
	if len(d.Events) == 0 {
		b.WriteString("  <none>\n")
	} else {
		t := printers.NewTable("TIME", "TYPE", "REASON", "OBJECT", "MESSAGE")
		for _, e := range d.Events {
			t.AddRow(printers.Time(&e.Time), e.Type, e.Reason, e.Object, e.Message)
		}
		if err := indent(&b, t); err != nil {
			return err
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// indent writes a table indented by two spaces.
func indent(b *strings.Builder, t *printers.Table) error {
	var tb strings.Builder
	if err := t.Write(&tb); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(tb.String(), "\n") {
		if line != "" {
			b.WriteString("  " + line)
		}
	}
	return nil
}
