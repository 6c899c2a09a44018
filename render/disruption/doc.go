// Package disruption holds node disruption policy logic shared by the controllers, the daemon and the CLI:
// the default cluster policies of the reference release the project pins (ReferenceRelease; the OpenShift
// 4.19 docs' list is the baseline they are checked against), their merge with the user's
// MachineConfiguration spec.nodeDisruptionPolicy into status.nodeDisruptionPolicyStatus.clusterPolicies, and
// (for the daemon) the decision of what a config change does to a node.
package disruption
