package buildscmd

import (
	"github.com/imagemode/imagemode/internal/golden"

	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

const ns = wellknown.MCONamespace

var (
	digested = "registry.example.com:5000/os/layered@sha256:" + strings.Repeat("0123456789abcdef", 4)
	t0       = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
)

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

// setState gives a build the five conditions of a state, as the build service writes them.
func setState(b *mcfgv1.MachineOSBuild, state string, when metav1.Time) {
	b.Status.Conditions = nil
	for _, k := range []struct{ typ, reason, msg string }{
		{"Prepared", "Prepared", "Build Prepared and Pending"}, {"Building", "Building", "Image Build In Progress"},
		{"Failed", "Failed", "Build Failed"}, {"Interrupted", "Interrupted", "Build Interrupted"}, {"Succeeded", "Ready", "Build Ready"},
	} {
		s := metav1.ConditionFalse
		if k.typ == state {
			s = metav1.ConditionTrue
		}
		b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: k.typ, Status: s, Reason: k.reason, Message: k.msg, LastTransitionTime: when})
	}
}

func createBuild(ctx context.Context, t *testing.T, c client.Client, mosc, name, state string, status func(*mcfgv1.MachineOSBuild)) *mcfgv1.MachineOSBuild {
	t.Helper()
	b := &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		wellknown.TargetMachineConfigPoolLabel: mosc, wellknown.MachineOSConfigLabel: mosc}}}
	b.Spec.MachineConfig.Name = "rendered-" + mosc + "-" + strings.Repeat("a", 32)
	b.Spec.MachineOSConfig.Name = mosc
	b.Spec.RenderedImagePushSpec = mcfgv1.ImageTagFormat("registry.example.com:5000/os/layered:" + name)
	require.NoError(t, c.Create(ctx, b))
	if state != "" {
		setState(b, state, at(time.Minute))
	}
	if status != nil {
		status(b)
	}
	require.NoError(t, c.Status().Update(ctx, b))
	return b
}

func logCM(name, pod, text string, offset int, complete bool) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: osbuild.BuildLogCMName(name), Annotations: map[string]string{
		osbuild.BuildLogPodAnnotation: pod, osbuild.BuildLogOffsetAnnotation: itoa(offset), osbuild.BuildLogCompleteAnnotation: boolString(complete)}},
		Data: map[string]string{osbuild.BuildLogKey: text}}
}

func itoa(i int) string { return strconv.Itoa(i) }

func boolString(b bool) string { return strconv.FormatBool(b) }

// relativeTimes replaces a build's times, which the API server's creation time decides, with placeholders.
func relativeTimes(s string, b *mcfgv1.MachineOSBuild) string {
	r := []string{b.CreationTimestamp.UTC().Format(time.RFC3339), "<created>"}
	if t := b.Status.BuildStart; t != nil {
		r = append(r, t.UTC().Format(time.RFC3339), "<buildStart>")
	}
	if t := b.Status.BuildEnd; t != nil {
		r = append(r, t.UTC().Format(time.RFC3339), "<buildEnd>")
	}
	return strings.NewReplacer(r...).Replace(s)
}

type result struct {
	stdout, stderr string
	err            error
}

func run(ctx context.Context, cs *clients.Clients, now time.Time, args ...string) result {
	cmd := NewCommand(func() (*clients.Clients, error) { return cs, nil }, Options{Now: func() time.Time { return now }})
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs(append([]string{}, args...))
	err := cmd.ExecuteContext(ctx)
	return result{stdout.String(), stderr.String(), err}
}

func TestBuildsOnAPIServer(t *testing.T) {
	cp := controlplane.Start(t, controlplane.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cp.Client
	cs, err := clients.New(cp.Config)
	require.NoError(t, err)
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))

	r := run(ctx, cs, time.Now(), "list")
	require.NoError(t, r.err)
	assert.Empty(t, r.stdout)
	assert.Equal(t, "No MachineOSBuilds found.\n", r.stderr)

	done := createBuild(ctx, t, c, "layered-image", "layered-image-1111", "Succeeded", func(b *mcfgv1.MachineOSBuild) {
		b.Status.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(digested)
	})
	running := createBuild(ctx, t, c, "layered-image", "layered-image-2222", "Building", func(b *mcfgv1.MachineOSBuild) {
		b.Status.BuildStart = ptr.To(metav1.NewTime(b.CreationTimestamp.Add(30 * time.Second)))
		b.Status.Builder = &mcfgv1.MachineOSBuilderReference{ImageBuilderType: mcfgv1.JobBuilder,
			Job: &mcfgv1.ObjectReference{Group: "batch", Resource: "jobs", Namespace: ns, Name: osbuild.JobName("layered-image-2222")}}
	})
	failed := createBuild(ctx, t, c, "infra", "infra-3333", "Failed", func(b *mcfgv1.MachineOSBuild) {
		b.Status.BuildStart = ptr.To(metav1.NewTime(b.CreationTimestamp.Add(5 * time.Second)))
		b.Status.BuildEnd = ptr.To(metav1.NewTime(b.CreationTimestamp.Add(5*time.Second + 4*time.Minute + 2*time.Second)))
	})
	pending := createBuild(ctx, t, c, "infra", "infra-4444", "", nil)
	now := pending.CreationTimestamp.Add(3*time.Hour + 5*time.Second) // every AGE reads 3h

	// The running build's Job: its second attempt (the first pod failed).
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: osbuild.JobName(running.Name)}, Spec: batchv1.JobSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "image-build", Image: "imagemode"}}}}}}
	require.NoError(t, c.Create(ctx, job))
	job.Status.Active, job.Status.Failed, job.Status.StartTime = 1, 1, ptr.To(at(0))
	require.NoError(t, c.Status().Update(ctx, job))
	for i, e := range []struct {
		namespace, kind, name, typ, reason, msg string
		when                                    time.Duration
	}{
		{"default", "MachineOSBuild", running.Name, "Normal", "BuildStarted", "Build started for pool layered-image (job build-layered-image-2222)", 30 * time.Second},
		{ns, "Job", job.Name, "Normal", "SuccessfulCreate", "Created pod: build-layered-image-2222-aaaaa", 31 * time.Second},
		{ns, "Job", job.Name, "Normal", "SuccessfulCreate", "Created pod: build-layered-image-2222-bbbbb", 95 * time.Second},
		{"default", "MachineOSBuild", done.Name, "Normal", "BuildSucceeded", "not this build's", 0},
	} {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: e.name + "." + itoa(i)},
			InvolvedObject: corev1.ObjectReference{Kind: e.kind, Name: e.name, Namespace: map[bool]string{true: ns}[e.kind == "Job"]},
			Type:           e.typ, Reason: e.reason, Message: e.msg, FirstTimestamp: at(e.when), LastTimestamp: at(e.when), Count: 1,
			Source: corev1.EventSource{Component: "test"}}
		require.NoError(t, c.Create(ctx, ev))
	}
	require.NoError(t, c.Create(ctx, logCM(running.Name, "build-layered-image-2222-bbbbb", "STEP 1/2: FROM configs AS final\n", 0, false)))

	t.Run("list", func(t *testing.T) {
		r := run(ctx, cs, now, "list")
		require.NoError(t, r.err)
		golden.Check(t, "list.txt", r.stdout)
		r = run(ctx, cs, now, "list", "--mosc", "infra")
		require.NoError(t, r.err)
		golden.Check(t, "list-infra.txt", r.stdout)

		r = run(ctx, cs, now, "list", "-o", "json")
		require.NoError(t, r.err)
		var l BuildList
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &l), r.stdout)
		require.Len(t, l.Items, 4)
		assert.Equal(t, []string{"infra-3333", "infra-4444", "layered-image-1111", "layered-image-2222"},
			[]string{l.Items[0].Name, l.Items[1].Name, l.Items[2].Name, l.Items[3].Name}, "by name, as kubectl")
		assert.Equal(t, Build{Name: done.Name, MachineOSConfig: "layered-image", State: "Succeeded", Prepared: "False", Building: "False",
			Succeeded: "True", Interrupted: "False", Failed: "False", Created: done.CreationTimestamp.UTC().Format(time.RFC3339), Image: digested}, l.Items[2])
		assert.Equal(t, "Pending", l.Items[1].State)
		assert.Empty(t, l.Items[1].Prepared, "no condition: an empty column, as kubectl shows it")
	})

	t.Run("describe", func(t *testing.T) {
		r := run(ctx, cs, now, "describe", running.Name)
		require.NoError(t, r.err)
		golden.Check(t, "describe-running.txt", relativeTimes(r.stdout, running))
		r = run(ctx, cs, now, "describe", failed.Name)
		require.NoError(t, r.err)
		golden.Check(t, "describe-failed.txt", relativeTimes(r.stdout, failed))

		// A signed build shows its key's fingerprint.
		signed := createBuild(ctx, t, c, "layered-image", "layered-image-5555", "Succeeded", func(b *mcfgv1.MachineOSBuild) {
			b.Status.Conditions = append(b.Status.Conditions, metav1.Condition{Type: osbuild.ConditionSigned, Status: metav1.ConditionTrue,
				Reason: "Signed", Message: "Image signed", LastTransitionTime: at(time.Minute)})
		})
		signed.Annotations = map[string]string{osbuild.SigningKeySecretAnnotation: "os-signing-key", osbuild.SignatureKeyAnnotation: "SHA256:" + strings.Repeat("ab", 32)}
		require.NoError(t, c.Update(ctx, signed))
		r = run(ctx, cs, now, "describe", signed.Name)
		require.NoError(t, r.err)
		assert.Contains(t, r.stdout, "Signature:        sigstore, key SHA256:"+strings.Repeat("ab", 32)+" (secret os-signing-key)\n")
		r = run(ctx, cs, now, "describe", running.Name)
		require.NoError(t, r.err)
		assert.NotContains(t, r.stdout, "Signature:")

		r = run(ctx, cs, now, "describe", running.Name, "-o", "json")
		require.NoError(t, r.err)
		var d Description
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
		assert.Equal(t, Job{Namespace: ns, Name: "build-layered-image-2222", Found: true, Active: 1, Failed: 1, Attempts: 2}, d.Job)
		assert.Equal(t, "30s", d.Queued)
		assert.Equal(t, &Log{ConfigMap: "build-log-layered-image-2222", Pod: "build-layered-image-2222-bbbbb", Bytes: 32}, d.Log)
		require.Len(t, d.Events, 3, "the build's and its Job's, not another build's")
		assert.Equal(t, "BuildStarted", d.Events[0].Reason)
		assert.Equal(t, "job/build-layered-image-2222", d.Events[2].Object)

		r = run(ctx, cs, now, "describe", "nope")
		assert.ErrorContains(t, r.err, "reading machineosbuild nope")
	})

	t.Run("logs", func(t *testing.T) {
		r := run(ctx, cs, now, "logs", running.Name)
		require.NoError(t, r.err)
		assert.Equal(t, "STEP 1/2: FROM configs AS final\n", r.stdout)
		assert.Empty(t, r.stderr)

		r = run(ctx, cs, now, "logs", failed.Name)
		assert.EqualError(t, r.err, "build infra-3333 has no log yet (configmap "+ns+"/build-log-infra-3333 not found)")

		// A log whose front was cut says so on stderr; stdout has only the log.
		require.NoError(t, c.Create(ctx, logCM(failed.Name, "build-infra-3333-zzzzz", "error: pushing: unauthorized\n", 1000, true)))
		r = run(ctx, cs, now, "logs", failed.Name)
		require.NoError(t, r.err)
		assert.Equal(t, "error: pushing: unauthorized\n", r.stdout)
		assert.Equal(t, "(1000 bytes of attempt build-infra-3333-zzzzz's log are not kept)\n", r.stderr)

		// -f on a finished build prints its log and ends.
		r = run(ctx, cs, now, "logs", "-f", failed.Name)
		require.NoError(t, r.err)
		assert.Equal(t, "error: pushing: unauthorized\n", r.stdout)
		assert.Contains(t, r.stderr, "build infra-3333: Failed\n")
	})

	t.Run("logs -f follows until the build succeeds", func(t *testing.T) {
		var out, errOut lockedBuffer
		followed := make(chan error, 1)
		go func() { followed <- Follow(ctx, cs.Client, &out, &errOut, ns, running.Name) }()
		require.Eventually(t, func() bool { return out.String() == "STEP 1/2: FROM configs AS final\n" }, 20*time.Second, 20*time.Millisecond)

		writeLog := func(pod, text string, offset int, complete bool) {
			t.Helper()
			cm := &corev1.ConfigMap{}
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: osbuild.BuildLogCMName(running.Name)}, cm))
			want := logCM(running.Name, pod, text, offset, complete)
			cm.Annotations, cm.Data = want.Annotations, want.Data
			require.NoError(t, c.Update(ctx, cm))
		}
		writeLog("build-layered-image-2222-bbbbb", "STEP 1/2: FROM configs AS final\nSTEP 2/2: RUN dnf install -y cowsay\n", 0, false)
		require.Eventually(t, func() bool { return strings.HasSuffix(out.String(), "cowsay\n") }, 20*time.Second, 20*time.Millisecond)
		// The front is cut (the writer keeps the tail): only what is new is printed.
		writeLog("build-layered-image-2222-bbbbb", "STEP 2/2: RUN dnf install -y cowsay\nerror: no network\n", 32, true)
		require.Eventually(t, func() bool { return strings.HasSuffix(out.String(), "no network\n") }, 20*time.Second, 20*time.Millisecond)
		// A third attempt.
		writeLog("build-layered-image-2222-ccccc", "STEP 1/2: FROM configs AS final\n", 0, false)
		require.Eventually(t, func() bool {
			return strings.HasSuffix(out.String(), "--- attempt build-layered-image-2222-ccccc ---\nSTEP 1/2: FROM configs AS final\n")
		},
			20*time.Second, 20*time.Millisecond)
		// The attempt's last lines and the build's success arrive together.
		writeLog("build-layered-image-2222-ccccc", "STEP 1/2: FROM configs AS final\nSTEP 2/2: RUN dnf install -y cowsay\npushed\n", 0, true)
		b := &mcfgv1.MachineOSBuild{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: running.Name}, b))
		setState(b, "Succeeded", at(5*time.Minute))
		require.NoError(t, c.Status().Update(ctx, b))

		select {
		case err := <-followed:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("logs -f did not end when the build succeeded")
		}
		assert.Equal(t, "STEP 1/2: FROM configs AS final\nSTEP 2/2: RUN dnf install -y cowsay\nerror: no network\n"+
			"--- attempt build-layered-image-2222-ccccc ---\nSTEP 1/2: FROM configs AS final\nSTEP 2/2: RUN dnf install -y cowsay\npushed\n", out.String())
		assert.Equal(t, "build layered-image-2222: Succeeded\n", errOut.String())
	})
}

// lockedBuffer is written by Follow and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
