// Package daemon is the node agent: it applies a node's desired MachineConfig (files, units, ssh keys,
// kernel arguments) and desired OS image (rpm-ostree rebase) through narrow host interfaces, honours node
// disruption policies and reports its state on the Node and its MachineConfigNode.
//
// Not implemented yet: this package is the home of issue #8.
package daemon
