package v1alpha1

// The health-check handshake between the rollout controller and a node's daemon, through the node's
// annotations (so the daemon needs no access to RolloutPolicies): when the controller moves a node under a
// policy with health checks, it writes the checks (HealthChecksAnnotation, JSON of NodeHealthChecks) with the
// node's new desired config; once the daemon has validated the node on that config, it runs them on the host
// and writes the outcome (HealthReportAnnotation, JSON of HealthReport) for that config and image.
const (
	HealthChecksAnnotation = GroupName + "/health-checks"
	HealthReportAnnotation = GroupName + "/health-report"
)

// NodeHealthChecks are the checks a node's daemon runs once it runs Config (and Image).
type NodeHealthChecks struct {
	Config   string          `json:"config"`
	Image    string          `json:"image,omitempty"`
	Commands []HealthCommand `json:"commands,omitempty"`
	Units    []string        `json:"units,omitempty"`
}

// HealthReport is the outcome of a node's health checks for one config and image.
type HealthReport struct {
	Config string `json:"config"`
	Image  string `json:"image,omitempty"`
	Passed bool   `json:"passed"`
	// Check names the first check that failed; Output is its output (truncated).
	Check  string `json:"check,omitempty"`
	Output string `json:"output,omitempty"`
}

// MaxHealthOutput bounds the output a report carries.
const MaxHealthOutput = 1024
