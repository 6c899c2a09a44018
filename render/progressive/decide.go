package progressive

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	rolloutsv1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

// Condition types and reasons of a RolloutPolicy.
const (
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"

	ReasonInvalidSpec = "InvalidSpec"
	ReasonGateFailed  = "GateFailed"
	ReasonAborted     = "Aborted"
	ReasonHealthy     = "Healthy"
)

// wave is one wave of this pass: its spec, its members (indexes into Inputs.Nodes) and status.
type wave struct {
	spec    rolloutsv1.Wave
	members []int
	status  rolloutsv1.WaveStatus
}

type pass struct {
	in      Inputs
	now     metav1.Time
	waves   []wave
	nodes   map[string]*rolloutsv1.NodeStatus // started waves' members, by name
	failure *rolloutsv1.GateFailure
	requeue time.Duration
}

// Decide decides one pass of a policy's rollout (see the package doc). A change of the pool's target
// starts a new rollout from the first wave: nodes keep what they run until their wave starts (a change that
// arrives mid-rollout supersedes the one in flight; the rollback target of a node is what it ran when its
// wave of the new rollout started).
func Decide(in Inputs) Decision {
	p := in.Policy
	st := *p.Status.DeepCopy()
	st.ObservedGeneration = p.Generation
	now := metav1.NewTime(in.Now.Truncate(time.Second))
	var d Decision
	if err := Validate(p); err != nil {
		d.Err = err
		st.Message = err.Error()
		setCondition(&st, ConditionDegraded, metav1.ConditionTrue, ReasonInvalidSpec, err.Error(), now)
		d.Status = st
		return d
	}
	if st.Target != in.Target {
		st = rolloutsv1.RolloutPolicyStatus{ObservedGeneration: p.Generation, Target: in.Target, Conditions: st.Conditions}
	}
	ps := &pass{in: in, now: now, nodes: map[string]*rolloutsv1.NodeStatus{}, failure: st.FailedGate}
	ps.planWaves(st)
	wantsRollback := func() bool {
		return p.Spec.Abort || (ps.failure != nil && p.Spec.OnFailure == rolloutsv1.FailureRollback)
	}
	rollback := wantsRollback()
	ps.evaluate(rollback)
	if !rollback && wantsRollback() {
		// A gate failed in this pass: its nodes go back at once.
		rollback = true
		ps.evaluate(rollback)
	}
	current := ps.advance(rollback)

	inWindow, nextOpen := InWindow(p.Spec.MaintenanceWindows, in.Now)
	permitted := ps.failure == nil && !p.Spec.Abort && !p.Spec.Paused && inWindow
	if current < len(ps.waves) && permitted {
		d.Allowed = ps.allowed(current)
		d.MaxUnavailable = ps.maxUnavailable(current)
	}
	if !inWindow && !nextOpen.IsZero() {
		ps.after(nextOpen.Sub(in.Now))
	}
	if rollback {
		d.Rollback = ps.rollback(current)
	}
	if c := p.Spec.HealthChecks; len(c.Commands)+len(c.Units) > 0 {
		d.HealthChecks = &rolloutsv1.NodeHealthChecks{Config: in.Target.Config, Image: in.Target.Image, Commands: c.Commands, Units: c.Units}
	}

	// The status: waves, nodes in wave then pool order, the failure, phase and message.
	st.Waves = nil
	for _, w := range ps.waves {
		st.Waves = append(st.Waves, w.status)
	}
	st.Nodes = nil
	for _, w := range ps.waves {
		for _, i := range w.members {
			if ns, ok := ps.nodes[in.Nodes[i].Name]; ok {
				st.Nodes = append(st.Nodes, *ns)
			}
		}
	}
	st.CurrentWave = int32(current)
	st.FailedGate = ps.failure
	st.Phase, st.Message = ps.phase(current, rollback, inWindow, nextOpen)
	switch {
	case ps.failure != nil:
		setCondition(&st, ConditionDegraded, metav1.ConditionTrue, ReasonGateFailed, failureMessage(ps.failure), now)
	case p.Spec.Abort:
		setCondition(&st, ConditionDegraded, metav1.ConditionFalse, ReasonAborted, "the rollout was aborted", now)
	default:
		setCondition(&st, ConditionDegraded, metav1.ConditionFalse, ReasonHealthy, "no gate failed", now)
	}
	progressing := metav1.ConditionFalse
	if st.Phase == rolloutsv1.RolloutProgressing {
		progressing = metav1.ConditionTrue
	}
	setCondition(&st, ConditionProgressing, progressing, string(st.Phase), st.Message, now)
	d.Status = st
	d.RequeueAfter = ps.requeue
	return d
}

// planWaves computes each wave's members: a started wave keeps the members the status recorded (those
// still in the pool); a wave not started takes, among the nodes no earlier wave took, its named nodes, the
// nodes its selector selects, its count (in update order), or all. Nodes left over go to an implicit last
// wave.
func (ps *pass) planWaves(st rolloutsv1.RolloutPolicyStatus) {
	in := ps.in
	index := make(map[string]int, len(in.Nodes))
	for i, n := range in.Nodes {
		index[n.Name] = i
	}
	recorded := map[string]rolloutsv1.NodeStatus{}
	for _, ns := range st.Nodes {
		if _, ok := index[ns.Name]; ok {
			recorded[ns.Name] = ns
		}
	}
	specs := append([]rolloutsv1.Wave(nil), in.Policy.Spec.Waves...)
	specs = append(specs, rolloutsv1.Wave{Name: RestWaveName})
	taken := map[string]bool{}
	for wi, spec := range specs {
		w := wave{spec: spec}
		if spec.Name == "" {
			w.spec.Name = fmt.Sprintf("wave-%d", wi)
		}
		w.status = rolloutsv1.WaveStatus{Name: w.spec.Name, Phase: rolloutsv1.WavePending}
		if wi < len(st.Waves) && st.Waves[wi].StartedAt != nil {
			w.status = st.Waves[wi]
			w.status.Name = w.spec.Name
			for i, n := range in.Nodes {
				if ns, ok := recorded[n.Name]; ok && int(ns.Wave) == wi && !taken[n.Name] {
					w.members = append(w.members, i)
					taken[n.Name] = true
					ns := ns
					ps.nodes[n.Name] = &ns
				}
			}
		}
		last := wi == len(specs)-1
		if w.status.StartedAt == nil || last {
			// A wave not started takes its nodes now; the last wave also takes nodes that joined the pool
			// after it started.
			want := -1
			if spec.Count != nil {
				want, _ = scaled(spec.Count, len(in.Nodes), true)
			}
			for i, n := range in.Nodes {
				if taken[n.Name] || (want >= 0 && len(w.members) >= want) {
					continue
				}
				switch {
				case len(spec.Nodes) > 0 && !contains(spec.Nodes, n.Name):
					continue
				case spec.NodeSelector != nil && !selects(spec.NodeSelector, n.Labels):
					continue
				}
				w.members = append(w.members, i)
				taken[n.Name] = true
				if w.status.StartedAt != nil {
					ps.join(n, wi)
				}
			}
		}
		w.status.Size = int32(len(w.members))
		if last && len(w.members) == 0 && w.status.StartedAt == nil {
			continue // no implicit wave
		}
		ps.waves = append(ps.waves, w)
	}
}

// join records a node as a member of a started wave: waiting, with what it runs now as its rollback target.
func (ps *pass) join(n Node, wi int) {
	now := ps.now
	ps.nodes[n.Name] = &rolloutsv1.NodeStatus{Name: n.Name, Wave: int32(wi), Phase: rolloutsv1.NodeWaiting, From: n.Current, Since: &now}
}

// evaluate sets the phase of every member of the started waves.
func (ps *pass) evaluate(rollback bool) {
	for wi := range ps.waves {
		w := &ps.waves[wi]
		if w.status.StartedAt == nil {
			continue
		}
		for _, i := range w.members {
			n := &ps.in.Nodes[i]
			ns := ps.nodes[n.Name]
			phase, msg, fail := ps.nodePhase(n, ns, w.status.Phase == rolloutsv1.WaveDone, rollback)
			if phase != ns.Phase {
				now := ps.now
				ns.Since = &now
			}
			ns.Phase, ns.Message = phase, msg
			if fail != nil && ps.failure == nil {
				fail.Node, fail.Time = n.Name, ps.now
				ps.failure = fail
			}
		}
	}
}

// nodePhase is a member's phase and, for a new failure, the gate that failed.
func (ps *pass) nodePhase(n *Node, ns *rolloutsv1.NodeStatus, waveDone, rollback bool) (rolloutsv1.NodePhase, string, *rolloutsv1.GateFailure) {
	target := ps.in.Target
	if rollback && ns.From != target && (ns.Phase != rolloutsv1.NodeWaiting || n.Desired != ns.From) {
		if n.Desired == ns.From && n.Done {
			return rolloutsv1.NodeRolledBack, "back on " + describe(ns.From), nil
		}
		return rolloutsv1.NodeRollingBack, "going back to " + describe(ns.From), nil
	}
	if ns.Phase == rolloutsv1.NodeFailed {
		return ns.Phase, ns.Message, nil
	}
	if n.Desired != target {
		return rolloutsv1.NodeWaiting, "", nil
	}
	if n.Degraded {
		return failed(rolloutsv1.GateUpdate, "", n.Reason)
	}
	if !n.Done {
		switch {
		case n.Rebooting:
			return rolloutsv1.NodeRebooting, "", nil
		case n.Draining:
			return rolloutsv1.NodeDraining, "", nil
		}
		return rolloutsv1.NodeUpdating, "", nil
	}
	if ns.From == target || waveDone && ns.Phase == rolloutsv1.NodeDone {
		return rolloutsv1.NodeDone, "", nil
	}
	if n.MCNDegraded != "" {
		return failed(rolloutsv1.GateMachineConfigNode, "", n.MCNDegraded)
	}
	checks := ps.in.Policy.Spec.HealthChecks
	wantReport := len(checks.Commands)+len(checks.Units) > 0
	report := n.Health
	if report != nil && (report.Config != target.Config || report.Image != target.Image) {
		report = nil
	}
	if wantReport && report != nil && !report.Passed {
		return failed(rolloutsv1.GateHealthCheck, report.Check, report.Output)
	}
	var pending []string
	if !n.Ready {
		pending = append(pending, "the node to be Ready")
	}
	if !n.MCNUpdated {
		pending = append(pending, "its MachineConfigNode to report Updated")
	}
	if wantReport && report == nil {
		pending = append(pending, "its health checks")
	}
	if len(pending) == 0 {
		return rolloutsv1.NodeDone, "", nil
	}
	if ns.Phase == rolloutsv1.NodeDone && !n.Ready {
		return failed(rolloutsv1.GateNodeReady, "", "the node is not Ready")
	}
	msg := "waiting for " + strings.Join(pending, ", ")
	if ns.Phase == rolloutsv1.NodeChecking && ns.Since != nil {
		left := ns.Since.Add(healthTimeout(ps.in.Policy)).Sub(ps.in.Now)
		if left <= 0 {
			return failed(rolloutsv1.GateTimeout, "", "timed out "+msg)
		}
		ps.after(left)
	} else {
		ps.after(healthTimeout(ps.in.Policy))
	}
	return rolloutsv1.NodeChecking, msg, nil
}

func failed(gate, check, output string) (rolloutsv1.NodePhase, string, *rolloutsv1.GateFailure) {
	if len(output) > rolloutsv1.MaxHealthOutput {
		output = output[:rolloutsv1.MaxHealthOutput]
	}
	f := &rolloutsv1.GateFailure{Gate: gate, Check: check, Output: output}
	return rolloutsv1.NodeFailed, failureMessage(f), f
}

func failureMessage(f *rolloutsv1.GateFailure) string {
	msg := "gate " + f.Gate
	if f.Check != "" {
		msg += " (check " + f.Check + ")"
	}
	if f.Node != "" {
		msg += " failed on node " + f.Node
	} else {
		msg += " failed"
	}
	if f.Output != "" {
		msg += ": " + f.Output
	}
	return msg
}

// advance updates the started waves' phases and starts the next wave when the current one is done; it
// returns the index of the first wave not done.
func (ps *pass) advance(rollback bool) int {
	p := ps.in.Policy
	inWindow, _ := InWindow(p.Spec.MaintenanceWindows, ps.in.Now)
	for wi := range ps.waves {
		w := &ps.waves[wi]
		if w.status.Phase == rolloutsv1.WaveDone {
			continue
		}
		if w.status.StartedAt == nil {
			if ps.failure != nil || rollback || p.Spec.Paused || p.Spec.Abort || !inWindow {
				return wi
			}
			now := ps.now
			w.status.StartedAt = &now
			for _, i := range w.members {
				ps.join(ps.in.Nodes[i], wi)
			}
			ps.evaluateWave(wi, rollback)
		}
		if ps.failure != nil && ps.memberOf(wi, ps.failure.Node) {
			w.status.Phase = rolloutsv1.WaveFailed
			return wi
		}
		if !ps.all(wi, rolloutsv1.NodeDone) {
			w.status.Phase, w.status.HealthyAt = rolloutsv1.WaveInProgress, nil
			return wi
		}
		now := ps.now
		if w.status.HealthyAt == nil {
			w.status.HealthyAt = &now
		}
		soak := time.Duration(0)
		if w.spec.SoakTime != nil && !ps.untouched(wi) {
			soak = w.spec.SoakTime.Duration
		}
		promoted := p.Spec.PromoteWave != nil && int(*p.Spec.PromoteWave) > wi
		if left := w.status.HealthyAt.Add(soak).Sub(ps.in.Now); left > 0 && !promoted {
			w.status.Phase = rolloutsv1.WaveSoaking
			ps.after(left)
			return wi
		}
		w.status.Phase, w.status.CompletedAt = rolloutsv1.WaveDone, &now
	}
	return len(ps.waves)
}

func (ps *pass) evaluateWave(wi int, rollback bool) {
	w := &ps.waves[wi]
	for _, i := range w.members {
		n := &ps.in.Nodes[i]
		ns := ps.nodes[n.Name]
		ns.Phase, ns.Message, _ = ps.nodePhase(n, ns, false, rollback)
	}
}

func (ps *pass) all(wi int, phase rolloutsv1.NodePhase) bool {
	for _, i := range ps.waves[wi].members {
		if ps.nodes[ps.in.Nodes[i].Name].Phase != phase {
			return false
		}
	}
	return true
}

func (ps *pass) memberOf(wi int, name string) bool {
	for _, i := range ps.waves[wi].members {
		if ps.in.Nodes[i].Name == name {
			return true
		}
	}
	return false
}

// untouched reports whether every member of a wave already ran the target when the wave started: such a
// wave does not soak.
func (ps *pass) untouched(wi int) bool {
	for _, i := range ps.waves[wi].members {
		if ps.nodes[ps.in.Nodes[i].Name].From != ps.in.Target {
			return false
		}
	}
	return true
}

// allowed lists the waiting members of the started waves, in order.
func (ps *pass) allowed(current int) []string {
	var out []string
	for wi := 0; wi <= current && wi < len(ps.waves); wi++ {
		for _, i := range ps.waves[wi].members {
			name := ps.in.Nodes[i].Name
			if ns, ok := ps.nodes[name]; ok && ns.Phase == rolloutsv1.NodeWaiting {
				out = append(out, name)
			}
		}
	}
	return out
}

// maxUnavailable is the wave's maxUnavailable over its size, rounded down, at least 1 (validated before).
func (ps *pass) maxUnavailable(wi int) int {
	w := ps.waves[wi]
	v := intstr.FromInt32(1)
	if w.spec.MaxUnavailable != nil {
		v = *w.spec.MaxUnavailable
	}
	n, _ := scaled(&v, len(w.members), false)
	return max(n, 1)
}

// rollback maps the nodes to move back to their previous target: those already going back, then at most the
// failed (or current) wave's maxUnavailable more, failed nodes first.
func (ps *pass) rollback(current int) map[string]Target {
	out := map[string]Target{}
	budget := 1
	if current < len(ps.waves) {
		budget = ps.maxUnavailable(current)
	}
	var candidates []string
	for _, w := range ps.waves {
		for _, i := range w.members {
			n := ps.in.Nodes[i]
			ns, ok := ps.nodes[n.Name]
			if !ok || (ns.Phase != rolloutsv1.NodeRollingBack && ns.Phase != rolloutsv1.NodeRolledBack) {
				continue
			}
			if n.Desired == ns.From {
				out[n.Name] = ns.From
				if !n.Done {
					budget--
				}
				continue
			}
			candidates = append(candidates, n.Name)
		}
	}
	failedFirst := func(name string) bool { return ps.failure != nil && ps.failure.Node == name }
	for _, first := range []bool{true, false} {
		for _, name := range candidates {
			if failedFirst(name) == first && budget > 0 {
				out[name] = ps.nodes[name].From
				budget--
			}
		}
	}
	return out
}

func (ps *pass) phase(current int, rollback, inWindow bool, nextOpen time.Time) (rolloutsv1.RolloutPhase, string) {
	p := ps.in.Policy
	backDone := true
	for _, ns := range ps.nodes {
		if ns.Phase == rolloutsv1.NodeRollingBack {
			backDone = false
		}
	}
	where := ""
	if current < len(ps.waves) {
		w := ps.waves[current]
		done := 0
		for _, i := range w.members {
			if ns, ok := ps.nodes[ps.in.Nodes[i].Name]; ok && ns.Phase == rolloutsv1.NodeDone {
				done++
			}
		}
		where = fmt.Sprintf("wave %s (%d of %d): %d of %d nodes done", w.spec.Name, current+1, len(ps.waves), done, len(w.members))
	}
	switch {
	case p.Spec.Abort:
		if backDone {
			return rolloutsv1.RolloutAborted, "aborted; every node changed is back on what it ran before"
		}
		return rolloutsv1.RolloutAborted, "aborted; rolling nodes back"
	case ps.failure != nil && rollback:
		if backDone {
			return rolloutsv1.RolloutRolledBack, failureMessage(ps.failure) + "; rolled back"
		}
		return rolloutsv1.RolloutRolledBack, failureMessage(ps.failure) + "; rolling back"
	case ps.failure != nil:
		return rolloutsv1.RolloutFailed, failureMessage(ps.failure) + "; paused"
	case current >= len(ps.waves):
		return rolloutsv1.RolloutCompleted, "every wave is done"
	case p.Spec.Paused:
		return rolloutsv1.RolloutPaused, "paused at " + where
	case !inWindow:
		msg := "outside the maintenance windows at " + where
		if !nextOpen.IsZero() {
			msg += "; the next opens at " + nextOpen.UTC().Format(time.RFC3339)
		}
		return rolloutsv1.RolloutWaiting, msg
	case ps.waves[current].status.Phase == rolloutsv1.WaveSoaking:
		return rolloutsv1.RolloutProgressing, "soaking " + where
	}
	return rolloutsv1.RolloutProgressing, where
}

func (ps *pass) after(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	if ps.requeue == 0 || d < ps.requeue {
		ps.requeue = d
	}
}

func setCondition(st *rolloutsv1.RolloutPolicyStatus, typ string, status metav1.ConditionStatus, reason, msg string, now metav1.Time) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: st.ObservedGeneration, LastTransitionTime: now})
}

func describe(t Target) string {
	if t.Image == "" {
		return t.Config
	}
	return t.Config + " / " + t.Image
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
