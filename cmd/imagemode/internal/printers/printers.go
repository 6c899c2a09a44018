// Package printers is how imagemode's commands show things: kubectl-style tables (upper-case headers,
// columns padded with spaces, AGE as kubectl prints it), one structured document for -o json|yaml, image
// pull specs shortened for tables, and a MachineOSBuild's state read from its conditions.
package printers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/imagemode/imagemode/machineos/osbuild"
)

// Output formats of -o.
const (
	JSON = "json"
	YAML = "yaml"
)

// CheckOutput returns an error unless format is empty (the table) or one of allowed.
func CheckOutput(format string, allowed ...string) error {
	if format == "" {
		return nil
	}
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("unsupported output format %q (allowed: %s)", format, strings.Join(allowed, ", "))
}

// Write prints doc as format (JSON indented with four spaces, like prune's, or YAML).
func Write(out io.Writer, format string, doc any) error {
	var raw []byte
	var err error
	switch format {
	case JSON:
		raw, err = json.MarshalIndent(doc, "", "    ")
		raw = append(raw, '\n')
	case YAML:
		raw, err = yaml.Marshal(doc)
	default:
		return fmt.Errorf("unsupported output format %q", format)
	}
	if err != nil {
		return fmt.Errorf("writing %s output: %w", format, err)
	}
	_, err = out.Write(raw)
	return err
}

// Table is a kubectl-style table: upper-case headers, then one row per object.
type Table struct {
	headers []string
	rows    [][]string
}

// NewTable returns a table with these column headers (upper-cased).
func NewTable(headers ...string) *Table {
	h := make([]string, len(headers))
	for i, s := range headers {
		h[i] = strings.ToUpper(s)
	}
	return &Table{headers: h}
}

// AddRow adds a row; a missing cell is empty.
func (t *Table) AddRow(cells ...string) { t.rows = append(t.rows, cells) }

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Write prints the table with kubectl's tab writer settings (minimum width 6, padding 3), without the
// trailing spaces an empty last cell would leave.
func (t *Table) Write(out io.Writer) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.headers, "\t"))
	for _, r := range t.rows {
		cells := make([]string, len(t.headers))
		copy(cells, r)
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(out, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// Age is kubectl's AGE column: the time since t, as duration.HumanDuration prints it; "<unknown>" for a
// zero time.
func Age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// Time prints a time in UTC, RFC 3339; "" for a zero or nil time.
func Time(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// OrNone returns s, or "<none>" when s is empty.
func OrNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

var digestRE = regexp.MustCompile(`@sha256:([0-9a-f]{12})[0-9a-f]{52}$`)

// ShortImage shortens a digested pull spec's digest to its first 12 hex digits (repo@sha256:0123456789ab),
// for tables; other pull specs are returned unchanged.
func ShortImage(pullSpec string) string {
	return digestRE.ReplaceAllString(pullSpec, "@sha256:$1")
}

// ConditionStatus is a condition's status ("True", "False", "Unknown"), or "" if there is none: what a
// CRD printer column on .status.conditions[?(@.type==T)].status shows.
func ConditionStatus(conds []metav1.Condition, condType string) string {
	if c := meta.FindStatusCondition(conds, condType); c != nil {
		return string(c.Status)
	}
	return ""
}

// BuildState is a build's state as tables show it (osbuild.State.Display: Pending before it starts).
func BuildState(mosb *mcfgv1.MachineOSBuild) string { return osbuild.StateOf(mosb).Display() }

// IsTerminal reports whether a build state, as BuildState shows it, never changes again.
func IsTerminal(state string) bool { return osbuild.State(state).IsTerminal() }
