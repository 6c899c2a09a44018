// Package disruption holds node disruption policy logic shared by the controllers, the daemon and the CLI:
// the documented default cluster policies, their merge with the user's MachineConfiguration
// spec.nodeDisruptionPolicy into status.nodeDisruptionPolicyStatus.clusterPolicies, and (for the daemon)
// the decision of what a config change does to a node.
package disruption
